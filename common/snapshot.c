/* SPDX-License-Identifier: MIT */
/*
 * The PAM snapshot (format in snapshot.h): written by ssf-sessiond, read by pam_ssf.so when
 * the daemon cannot be reached. The reader runs inside the PAM host process, so it is strict
 * and bounded: the file must be trusted (regular, root-owned, not group/world-writable, no
 * symlink), lines and the file have maximum sizes, and any malformed line makes the whole
 * file unusable rather than half-read.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "level.h"
#include "macro.h"
#include "snapshot.h"
#include "ssf-ipc.h"

static bool is_blank(char c) {
        return c == ' ' || c == '\t';
}

/* A user name as it may appear in the file: printable ASCII or UTF-8, no blanks or controls. */
static bool user_valid(const char *s, size_t l) {
        if (l == 0 || l > SSF_IPC_MAX_USER)
                return false;
        for (size_t i = 0; i < l; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c <= ' ' || c == 0x7f)
                        return false;
        }
        return true;
}

/* Decimal digits only, no sign, no leading '+', no overflow. */
static int parse_u64(const char *s, uint64_t *ret) {
        uint64_t v = 0;

        if (!*s)
                return -EBADMSG;
        for (; *s; s++) {
                unsigned d;
                if (*s < '0' || *s > '9')
                        return -EBADMSG;
                d = (unsigned) (*s - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -EBADMSG;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

/* Cuts the next blank-separated field out of *p (NUL-terminating it in place). */
static char *next_field(char **p) {
        char *s = *p, *start;

        while (is_blank(*s))
                s++;
        if (!*s) {
                *p = s;
                return NULL;
        }
        start = s;
        while (*s && !is_blank(*s))
                s++;
        if (*s)
                *s++ = 0;
        *p = s;
        return start;
}

/* "min_uid N", "max_uid N", "protect NAME…" into policy. */
static int parse_policy(char *key, char *p, SsfSnapshotPolicy *policy) {
        SsfSnapshotPolicy ignored;
        uint64_t v;
        char *f;

        if (!policy)
                policy = &ignored;
        if (streq(key, "protect")) {
                size_t o = 0;

                policy->protect[0] = 0;
                while ((f = next_field(&p))) {
                        size_t l = strlen(f);

                        if (!user_valid(f, l) || o + l + 2 > sizeof(policy->protect))
                                return -EBADMSG;
                        if (o > 0)
                                policy->protect[o++] = ' ';
                        memcpy(policy->protect + o, f, l + 1);
                        o += l;
                }
                policy->have_protect = true;
                return 2;
        }
        f = next_field(&p);
        if (!f || next_field(&p) || parse_u64(f, &v) < 0 || v >= UINT32_MAX)
                return -EBADMSG;
        if (streq(key, "min_uid")) {
                policy->min_uid = (uint32_t) v;
                policy->have_min = true;
        } else {
                policy->max_uid = (uint32_t) v;
                policy->have_max = true;
        }
        return 2;
}

int ssf_snapshot_parse_line(const char *line, size_t len, char *linebuf, SsfSnapshotEntry *ret) {
        return ssf_snapshot_parse_line_policy(line, len, linebuf, ret, NULL);
}

int ssf_snapshot_parse_line_policy(const char *line, size_t len, char *linebuf,
                                   SsfSnapshotEntry *ret, SsfSnapshotPolicy *policy) {
        char *p, *user, *level, *until, *extra;
        RiskLevel l;
        uint64_t u;
        const char *name;

        if ((!line && len > 0) || !linebuf || !ret)
                return -EINVAL;
        if (len > SSF_SNAPSHOT_MAX_LINE || (len > 0 && memchr(line, 0, len)))
                return -EBADMSG;

        if (len > 0)
                memcpy(linebuf, line, len);
        linebuf[len] = 0;

        p = linebuf;
        while (is_blank(*p))
                p++;
        if (*p == 0 || *p == '#')
                return 0;

        /* Only spaces and tabs separate fields; any other control character is malformed. */
        for (const char *c = p; *c; c++)
                if (((unsigned char) *c < ' ' && *c != '\t') || *c == 0x7f)
                        return -EBADMSG;

        user = next_field(&p);
        if (user && (streq(user, "min_uid") || streq(user, "max_uid") || streq(user, "protect")))
                return parse_policy(user, p, policy);
        level = next_field(&p);
        until = next_field(&p);
        extra = next_field(&p);
        if (!user || !level || !until || extra)
                return -EBADMSG;

        if (!user_valid(user, strlen(user)))
                return -EBADMSG;

        l = risk_level_from_string(level);
        name = risk_level_to_string(l);
        if (!name || !streq(name, level)) /* lower-case names only, no aliases */
                return -EBADMSG;

        if (parse_u64(until, &u) < 0)
                return -EBADMSG;

        *ret = (SsfSnapshotEntry) {
                .user = user,
                .level = l,
                .until = u,
        };
        return 1;
}

typedef struct LookupState {
        SsfSnapshotPolicy policy;
        const char *user;
        uint64_t now_sec;
        unsigned lineno;
        bool found;
        RiskLevel level;
} LookupState;

static int lookup_line(LookupState *s, const char *line, size_t len) {
        char buf[SSF_SNAPSHOT_MAX_LINE + 1];
        SsfSnapshotEntry e;
        RiskLevel l;
        int r;

        s->lineno++;
        if (s->lineno == 1) {
                /* The header says which format this is; anything else is not ours. */
                if (len != strlen(SSF_SNAPSHOT_HEADER) || memcmp(line, SSF_SNAPSHOT_HEADER, len) != 0)
                        return -EBADMSG;
                return 0;
        }

        r = ssf_snapshot_parse_line_policy(line, len, buf, &e, &s->policy);
        if (r <= 0 || r == 2)
                return r < 0 ? r : 0;
        if (!streq(e.user, s->user))
                return 0;

        l = (e.until != 0 && e.until <= s->now_sec) ? RISK_NONE : e.level;
        /* Should a user appear twice, the higher level wins. */
        if (!s->found || l > s->level)
                s->level = l;
        s->found = true;
        return 0;
}

int ssf_snapshot_lookup(const char *path, const char *user, uint64_t now_sec, uid_t owner_uid,
                        RiskLevel *ret_level, SsfSnapshotPolicy *ret_policy) {
        _cleanup_close_ int fd = -EBADF;
        LookupState s = { .user = user, .now_sec = now_sec };
        char chunk[4096], line[SSF_SNAPSHOT_MAX_LINE + 1];
        size_t line_len = 0, total = 0;
        bool overlong = false;
        int r;

        if (isempty(path) || isempty(user) || !ret_level)
                return -EINVAL;

        /* A trusted file: no symlink, regular, owned by root or owner_uid, not group/world-writable,
         * not larger than the maximum. O_NONBLOCK so that a FIFO planted in the path cannot block
         * us. */
        fd = open_checked(path, FILE_NOFOLLOW | FILE_NONBLOCK | FILE_REGULAR | FILE_OWNER | FILE_NO_WRITE,
                          owner_uid, SSF_SNAPSHOT_MAX_SIZE);
        if (fd < 0)
                return fd;

        for (;;) {
                ssize_t n = read_eintr(fd, chunk, sizeof(chunk));
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        break;
                total += (size_t) n;
                if (total > SSF_SNAPSHOT_MAX_SIZE)
                        return -EFBIG; /* it grew after fstat() */

                for (size_t i = 0; i < (size_t) n; i++) {
                        if (chunk[i] != '\n') {
                                if (line_len >= SSF_SNAPSHOT_MAX_LINE)
                                        overlong = true;
                                else
                                        line[line_len++] = chunk[i];
                                continue;
                        }
                        if (overlong)
                                return -EBADMSG;
                        r = lookup_line(&s, line, line_len);
                        if (r < 0)
                                return r;
                        line_len = 0;
                }
        }

        if (overlong)
                return -EBADMSG;
        if (line_len > 0) {
                /* A last line without its newline. */
                r = lookup_line(&s, line, line_len);
                if (r < 0)
                        return r;
        }
        if (s.lineno == 0)
                return -EBADMSG; /* empty: not even the header */

        if (ret_policy)
                *ret_policy = s.policy;
        if (!s.found)
                return -ENOENT;
        *ret_level = s.level;
        return 0;
}

bool ssf_snapshot_policy_protects(const SsfSnapshotPolicy *policy, uid_t uid, const char *name) {
        const char *p;
        size_t l;

        if (!policy)
                return false;
        if ((policy->have_min && uid < policy->min_uid) || (policy->have_max && uid > policy->max_uid))
                return true;
        if (!name || !policy->have_protect)
                return false;
        l = strlen(name);
        for (p = policy->protect; *p;) {
                size_t k = strcspn(p, " ");

                if (k == l && memcmp(p, name, l) == 0)
                        return true;
                p += k;
                if (*p == ' ')
                        p++;
        }
        return false;
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int ssf_snapshot_write(const char *path, const SsfSnapshotPolicy *policy,
                       const SsfSnapshotEntry *entries, size_t n) {
        char head[SSF_SNAPSHOT_MAX_LINE * 2 + 128];
        size_t head_len;
        _cleanup_free_ char *tmp = NULL, *dircopy = NULL;
        _cleanup_close_ int fd = -EBADF, dfd = -EBADF;
        size_t total;
        int r;

        if (isempty(path) || (!entries && n > 0))
                return -EINVAL;

        if (policy) {
                int k = snprintf(head, sizeof(head), "%s\nmin_uid %" PRIu32 "\nmax_uid %" PRIu32
                                 "\nprotect %s\n", SSF_SNAPSHOT_HEADER, policy->min_uid,
                                 policy->max_uid, policy->protect);
                if (k < 0 || (size_t) k >= sizeof(head) ||
                    strlen(policy->protect) + 8 > SSF_SNAPSHOT_MAX_LINE ||
                    strpbrk(policy->protect, "\n\t"))
                        return -EINVAL;
                head_len = (size_t) k;
        } else {
                (void) snprintf(head, sizeof(head), "%s\n", SSF_SNAPSHOT_HEADER);
                head_len = strlen(head);
        }
        total = head_len;
        for (size_t i = 0; i < n; i++) {
                const char *name = risk_level_to_string(entries[i].level);
                if (!entries[i].user || !user_valid(entries[i].user, strlen(entries[i].user)) || !name)
                        return -EINVAL;
                total += strlen(entries[i].user) + strlen(name) + 23;
                if (total > SSF_SNAPSHOT_MAX_SIZE)
                        return -EFBIG;
        }

        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;

        if (fchmod(fd, 0600) < 0) {
                r = -errno;
                goto fail;
        }

        r = write_all(fd, head, head_len);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                char l[SSF_SNAPSHOT_MAX_LINE + 2];
                int k = snprintf(l, sizeof(l), "%s %s %" PRIu64 "\n", entries[i].user,
                                 risk_level_to_string(entries[i].level), entries[i].until);
                if (k < 0 || (size_t) k > SSF_SNAPSHOT_MAX_LINE + 1)
                        r = -EINVAL;
                else
                        r = write_all(fd, l, (size_t) k);
        }
        if (r < 0)
                goto fail;
        if (fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                goto fail;
        }

        /* Make the rename durable too; a failure here does not undo it. */
        dircopy = strdup(path);
        if (dircopy) {
                dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0)
                        (void) fsync(dfd);
        }
        return 0;

fail:
        (void) unlink(tmp);
        return r;
}
