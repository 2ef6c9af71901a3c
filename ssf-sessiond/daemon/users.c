/* SPDX-License-Identifier: MIT */
/*
 * Local users as root identifies them (users.h): NSS lookups to a uid and its canonical name,
 * and the protection of system and listed accounts. Runs in the root daemon.
 */
#include <errno.h>
#include <pwd.h>
#include <stdint.h>
#include <time.h>
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

/* The answers NSS gave while root applied batches of SETs (local_user_cache_begin()): open
 * addressing on the name (or the uid), on the thread that applies the batches only. A backlog
 * names the same accounts again and again (the subject's mapping, then the target, then the
 * protect list, in SET after SET), and each NSS lookup may read /etc/passwd or ask sssd or LDAP.
 * Within one batch every answer is kept (an account, or none; a failure of NSS is asked again);
 * an account found is kept for the next batches too, until USER_CACHE_TTL_USEC after the table
 * was started (nscd keeps one for 10 minutes), "no such account" for the batch only, so that an
 * account created meanwhile is found by the next batch. Each entry carries the number of the
 * batch that answered it: a "no such account" of an earlier batch is stale, asked again when its
 * key is, and its slot taken by the next key that needs one on its chain (it stays in place
 * meanwhile, a tombstone: a hole would hide what lies past it on the chain). So the end of a
 * batch costs nothing; the table is rebuilt without the stale answers only when it is full and
 * a new key finds none of them on its chain to take. Outside a batch, NSS is asked. */
#define USER_CACHE_SLOTS 16384u
#define USER_CACHE_MAX (USER_CACHE_SLOTS / 2)
#define USER_CACHE_TTL_USEC (5u * 1000u * 1000u)

typedef struct UserCacheEntry {
        bool by_name;
        uid_t uid;      /* the key when !by_name */
        char *name;     /* the key when by_name */
        int r;          /* 0 or -ESRCH or -EINVAL */
        uint64_t batch; /* the batch that answered it (user_cache_batch then) */
        LocalUser u;
} UserCacheEntry;

static __thread UserCacheEntry **user_cache; /* slots; an entry is allocated when used */
static __thread size_t user_cache_n;         /* slots in use, stale ones included */
static __thread uint64_t user_cache_born;
static __thread uint64_t user_cache_batch;   /* the current batch's number, from 1 */
static __thread bool user_cache_on;

static uint64_t user_cache_now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void user_cache_entry_free(UserCacheEntry *e) {
        if (e) {
                free(e->name);
                free(e);
        }
}

static void user_cache_free(void) {
        for (size_t i = 0; user_cache && i < USER_CACHE_SLOTS; i++)
                user_cache_entry_free(user_cache[i]);
        user_cache = mfree(user_cache);
        user_cache_n = 0;
}

/* Whether e answers in the current batch: an account until the table expires, "none" only in
 * the batch that asked. */
static bool user_cache_entry_live(const UserCacheEntry *e) {
        return e->r >= 0 || e->batch == user_cache_batch;
}

void local_user_cache_begin(void) {
        uint64_t now = user_cache_now();

        if (user_cache && now - user_cache_born >= USER_CACHE_TTL_USEC)
                user_cache_free();
        if (!user_cache) {
                user_cache = calloc(USER_CACHE_SLOTS, sizeof(UserCacheEntry *)); /* none: no cache */
                user_cache_born = now;
        }
        /* The answers "none" of the batches before are stale from now on. */
        user_cache_batch++;
        user_cache_on = true;
}

void local_user_cache_end(void) {
        user_cache_on = false;
        if (user_cache && user_cache_now() - user_cache_born >= USER_CACHE_TTL_USEC)
                user_cache_free();
}

static uint32_t user_cache_hash(const char *name, uid_t uid) {
        uint32_t h = 2166136261u; /* FNV-1a */

        if (!name)
                return ((uint32_t) uid * 2654435761u) ^ 0x5bd1e995u;
        for (const unsigned char *p = (const unsigned char *) name; *p; p++)
                h = (h ^ *p) * 16777619u;
        return h;
}

/* The slot holding the key (live or stale), else the first stale slot on its chain, else the
 * free slot that ends the chain (NULL: no cache). The table is never more than half full, so
 * every chain ends. */
static UserCacheEntry **user_cache_slot_of(const char *name, uid_t uid) {
        UserCacheEntry **stale = NULL;

        if (!user_cache)
                return NULL;
        for (uint32_t i = user_cache_hash(name, uid) & (USER_CACHE_SLOTS - 1);;
             i = (i + 1) & (USER_CACHE_SLOTS - 1)) {
                UserCacheEntry *e = user_cache[i];

                if (!e)
                        return stale ?: &user_cache[i];
                if (name ? e->by_name && streq(e->name, name) : !e->by_name && e->uid == uid)
                        return &user_cache[i];
                if (!stale && !user_cache_entry_live(e))
                        stale = &user_cache[i];
        }
}

/* Drops the stale answers, rebuilding the table (the only time it is rebuilt: when it is full
 * and a key finds no stale slot on its chain to take). Returns how many slots it freed, or
 * -ENOMEM (then the table is as it was). */
static int user_cache_sweep(void) {
        _cleanup_free_ UserCacheEntry **old = NULL;
        size_t freed = 0;

        old = TAKE_PTR(user_cache);
        user_cache = calloc(USER_CACHE_SLOTS, sizeof(UserCacheEntry *));
        if (!user_cache) {
                user_cache = TAKE_PTR(old);
                return -ENOMEM;
        }
        for (size_t i = 0; i < USER_CACHE_SLOTS; i++) {
                UserCacheEntry *e = old[i];

                if (!e)
                        continue;
                if (!user_cache_entry_live(e)) {
                        user_cache_entry_free(e);
                        freed++;
                        continue;
                }
                *user_cache_slot_of(e->by_name ? e->name : NULL, e->uid) = e;
        }
        user_cache_n -= freed;
        return (int) freed;
}

static int lookup_nss(const char *name, uid_t uid, LocalUser *ret);

/* getpwnam_r (name) or getpwuid_r (else uid), from the batch's cache when it has the answer.
 * Returns 0 with the uid and name filled, -ESRCH when there is no such account, or -errno. */
static int lookup(const char *name, uid_t uid, LocalUser *ret) {
        UserCacheEntry **slot = user_cache_on ? user_cache_slot_of(name, uid) : NULL, *e;
        _cleanup_free_ char *key = NULL;
        LocalUser u = {};
        int r;

        /* A live entry in the slot is the key's (user_cache_slot_of() gives only stale others). */
        if (slot && *slot && user_cache_entry_live(*slot)) {
                if ((*slot)->r >= 0)
                        *ret = (*slot)->u;
                return (*slot)->r;
        }
        r = lookup_nss(name, uid, &u);
        if (r >= 0)
                *ret = u;
        if (!slot || (r < 0 && r != -ESRCH && r != -EINVAL))
                return r;
        if (name) {
                key = strdup(name);
                if (!key)
                        return r;
        }
        if (*slot) {
                /* A stale answer, this key's or another's, gives its slot (never emptied: that
                 * would cut the chains through it). */
                e = *slot;
                free(e->name);
        } else {
                if (user_cache_n >= USER_CACHE_MAX) {
                        /* Full, and no stale slot on this key's chain: make room, if stale
                         * answers hold it. */
                        if (user_cache_sweep() <= 0)
                                return r;
                        slot = user_cache_slot_of(name, uid);
                        if (!slot)
                                return r;
                }
                e = malloc(sizeof(*e));
                if (!e)
                        return r;
                *slot = e;
                user_cache_n++;
        }
        *e = (UserCacheEntry) { .by_name = !!name, .uid = uid, .name = TAKE_PTR(key), .r = r,
                                .batch = user_cache_batch, .u = u };
        return r;
}

static int lookup_nss(const char *name, uid_t uid, LocalUser *ret) {
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
