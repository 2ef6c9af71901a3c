/* SPDX-License-Identifier: MIT */
/*
 * Local users as root identifies them (users.h): NSS lookups to a uid and its canonical name,
 * and the protection of system and listed accounts. Runs in the root daemon.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "users.h"

bool local_user_name_ok(const char *name) {
        size_t n;

        if (!name)
                return false;
        n = strnlen(name, LOCAL_USER_NAME_MAX);
        if (n == 0 || n >= LOCAL_USER_NAME_MAX || name[0] == '-')
                return false;
        for (const unsigned char *p = (const unsigned char *) name; *p; p++)
                if (*p < 0x20 || *p == 0x7f || *p == '/' || *p == ':')
                        return false;
        return true;
}

/* getpwnam_r (name) or getpwuid_r (else uid), growing the buffer. Returns 0 with the uid and
 * name filled, -ESRCH when there is no such account, or -errno. */
static int lookup(const char *name, uid_t uid, LocalUser *ret) {
        long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
        size_t bufsize = sz > 0 ? (size_t) sz : 4096;

        for (unsigned tries = 0; tries < 8; tries++) {
                _cleanup_free_ char *buf = malloc(bufsize);
                struct passwd pw, *res = NULL;
                int r;

                if (!buf)
                        return -ENOMEM;
                r = name ? getpwnam_r(name, &pw, buf, bufsize, &res)
                         : getpwuid_r(uid, &pw, buf, bufsize, &res);
                if (r == ERANGE) {
                        bufsize *= 2;
                        continue;
                }
                if (r != 0 && r != ENOENT && r != ESRCH && r != EBADF && r != EPERM)
                        return -r;
                if (!res)
                        return -ESRCH;
                if (!local_user_name_ok(res->pw_name))
                        return -EINVAL;
                ret->uid = res->pw_uid;
                (void) snprintf(ret->name, sizeof(ret->name), "%s", res->pw_name);
                return 0;
        }
        return -ERANGE;
}

int local_user_resolve(const char *name, LocalUser *ret) {
        LocalUser byname, canonical;
        int r;

        if (!local_user_name_ok(name))
                return -EINVAL;
        r = lookup(name, 0, &byname);
        if (r < 0)
                return r;
        /* The uid's own name: an alias or a case variant answers with the account's. */
        if (lookup(NULL, byname.uid, &canonical) < 0)
                canonical = byname;
        *ret = canonical;
        return 0;
}

int local_user_from_uid(uid_t uid, LocalUser *ret) {
        if (lookup(NULL, uid, ret) >= 0)
                return 0;
        ret->uid = uid;
        (void) snprintf(ret->name, sizeof(ret->name), "%u", (unsigned) uid);
        return 0;
}

const char *local_user_protected(const Config *c, const LocalUser *u, char *buf, size_t size) {
        if (u->uid < c->min_uid || u->uid > c->max_uid) {
                (void) snprintf(buf, size,
                                "protected: uid %u of '%s' is outside min_uid %u … max_uid %u",
                                (unsigned) u->uid, u->name, c->min_uid, c->max_uid);
                return buf;
        }
        for (char **p = c->protect; p && *p; p++) {
                LocalUser pu;

                if (streq(*p, u->name) || (lookup(*p, 0, &pu) >= 0 && pu.uid == u->uid)) {
                        (void) snprintf(buf, size, "protected: '%s' is in protect", u->name);
                        return buf;
                }
        }
        return NULL;
}
