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
#include <limits.h>
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
        bool found;
        RiskLevel level;
        /* the file being read */
        bool journal;        /* the journal: entries only, the last one for a user wins */
        unsigned lineno;
        size_t total, line_len;
        bool overlong;
        char line[SSF_SNAPSHOT_MAX_LINE + 1];
} LookupState;

static int lookup_line(LookupState *s, const char *line, size_t len) {
        const char *header = s->journal ? SSF_SNAPSHOT_JOURNAL_HEADER : SSF_SNAPSHOT_HEADER;
        char buf[SSF_SNAPSHOT_MAX_LINE + 1];
        SsfSnapshotEntry e;
        RiskLevel l;
        int r;

        s->lineno++;
        if (s->lineno == 1) {
                /* The header says which format this is; anything else is not ours. */
                if (len != strlen(header) || memcmp(line, header, len) != 0)
                        return -EBADMSG;
                return 0;
        }

        r = ssf_snapshot_parse_line_policy(line, len, buf, &e, s->journal ? NULL : &s->policy);
        if (r == 2 && s->journal)
                return -EBADMSG; /* the policy is the base file's alone */
        if (r <= 0 || r == 2)
                return r < 0 ? r : 0;
        if (!streq(e.user, s->user))
                return 0;

        l = (e.until != 0 && e.until <= s->now_sec) ? RISK_NONE : e.level;
        if (s->journal) {
                /* Each journal line is the user's state as of that change: the last one is
                 * current, whatever the base file or earlier lines said. "none" removes. */
                s->level = l;
                s->found = e.level > RISK_NONE;
                return 0;
        }
        /* Should a user appear twice in the base file, the higher level wins. */
        if (!s->found || l > s->level)
                s->level = l;
        s->found = true;
        return 0;
}

static void lookup_begin(LookupState *s, bool journal) {
        s->journal = journal;
        s->lineno = 0;
        s->total = s->line_len = 0;
        s->overlong = false;
}

/* Feeds the next n bytes of the file being read. */
static int lookup_feed(LookupState *s, const char *p, size_t n) {
        int r;

        s->total += n;
        if (s->total > SSF_SNAPSHOT_MAX_SIZE)
                return -EFBIG;
        for (size_t i = 0; i < n; i++) {
                if (p[i] != '\n') {
                        if (s->line_len >= SSF_SNAPSHOT_MAX_LINE)
                                s->overlong = true;
                        else
                                s->line[s->line_len++] = p[i];
                        continue;
                }
                if (s->overlong)
                        return -EBADMSG;
                r = lookup_line(s, s->line, s->line_len);
                if (r < 0)
                        return r;
                s->line_len = 0;
        }
        return 0;
}

/* The end of the file being read. */
static int lookup_end(LookupState *s) {
        int r;

        if (s->overlong)
                return -EBADMSG;
        if (s->line_len > 0) {
                /* The journal is appended to line by line: a last line without its newline is
                 * a torn write, and what it said is unknown. */
                if (s->journal)
                        return -EBADMSG;
                /* A base file's last line without its newline. */
                r = lookup_line(s, s->line, s->line_len);
                if (r < 0)
                        return r;
        }
        if (s->lineno == 0)
                return -EBADMSG; /* empty: not even the header */
        return 0;
}

static int lookup_result(const LookupState *s, RiskLevel *ret_level, SsfSnapshotPolicy *ret_policy) {
        if (ret_policy)
                *ret_policy = s->policy;
        if (!s->found)
                return -ENOENT;
        *ret_level = s->level;
        return 0;
}

int ssf_snapshot_lookup_buffers(const char *base, size_t base_len, const char *journal,
                                size_t journal_len, const char *user, uint64_t now_sec,
                                RiskLevel *ret_level, SsfSnapshotPolicy *ret_policy) {
        _cleanup_free_ LookupState *s = NULL;
        int r;

        if ((!base && base_len > 0) || (!journal && journal_len > 0) || isempty(user) || !ret_level)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->user = user;
        s->now_sec = now_sec;
        lookup_begin(s, false);
        r = lookup_feed(s, base, base_len);
        if (r >= 0)
                r = lookup_end(s);
        if (r >= 0 && journal) {
                lookup_begin(s, true);
                r = lookup_feed(s, journal, journal_len);
                if (r >= 0)
                        r = lookup_end(s);
        }
        if (r < 0)
                return r;
        return lookup_result(s, ret_level, ret_policy);
}

static int lookup_fd(LookupState *s, int fd, bool journal) {
        char chunk[4096];

        lookup_begin(s, journal);
        for (;;) {
                ssize_t n = read_eintr(fd, chunk, sizeof(chunk));
                int r;

                if (n < 0)
                        return (int) n;
                if (n == 0)
                        break;
                r = lookup_feed(s, chunk, (size_t) n); /* -EFBIG: it grew after fstat() */
                if (r < 0)
                        return r;
        }
        return lookup_end(s);
}

int ssf_snapshot_journal_path(const char *path, char *buf, size_t size) {
        int k;

        if (isempty(path) || !buf)
                return -EINVAL;
        k = snprintf(buf, size, "%s%s", path, SSF_SNAPSHOT_JOURNAL_SUFFIX);
        if (k < 0 || (size_t) k >= size)
                return -ENAMETOOLONG;
        return 0;
}

int ssf_snapshot_lookup(const char *path, const char *user, uint64_t now_sec, uid_t owner_uid,
                        RiskLevel *ret_level, SsfSnapshotPolicy *ret_policy) {
        /* A trusted file: no symlink, regular, owned by root or owner_uid, not group/world-writable,
         * not larger than the maximum. O_NONBLOCK so that a FIFO planted in the path cannot block
         * us. */
        const FileFlags flags = FILE_NOFOLLOW | FILE_NONBLOCK | FILE_REGULAR | FILE_OWNER | FILE_NO_WRITE;
        _cleanup_close_ int fd = -EBADF, jfd = -EBADF;
        _cleanup_free_ LookupState *s = NULL;
        char jpath[PATH_MAX];
        int r;

        if (isempty(path) || isempty(user) || !ret_level)
                return -EINVAL;
        r = ssf_snapshot_journal_path(path, jpath, sizeof(jpath));
        if (r < 0)
                return r;

        /* The journal first, then the base file: the daemon installs a new journal only after
         * the base file that covers everything the old one said, so the pair read this way
         * never misses a change (snapshot.h). */
        jfd = open_checked(jpath, flags, owner_uid, SSF_SNAPSHOT_MAX_SIZE);
        if (jfd < 0 && jfd != -ENOENT)
                return jfd;
        fd = open_checked(path, flags, owner_uid, SSF_SNAPSHOT_MAX_SIZE);
        if (fd < 0)
                return fd;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->user = user;
        s->now_sec = now_sec;
        r = lookup_fd(s, fd, false);
        if (r >= 0 && jfd >= 0)
                r = lookup_fd(s, jfd, true);
        if (r < 0)
                return r;
        return lookup_result(s, ret_level, ret_policy);
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

/* Makes the file written to fd (a temporary, tmp) durable and puts it in place as path, then
 * syncs the directory so the rename is durable too (a failure there does not undo it).
 * Returns 0 or -errno; fd stays open. */
static int install_synced(int fd, const char *tmp, const char *path) {
        _cleanup_free_ char *dircopy = NULL;
        _cleanup_close_ int dfd = -EBADF;

        if (fsync(fd) < 0 || rename(tmp, path) < 0)
                return -errno;
        dircopy = strdup(path);
        if (dircopy) {
                dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0)
                        (void) fsync(dfd);
        }
        return 0;
}

#define SNAPSHOT_WRITE_BUF (64u * 1024u)

int ssf_snapshot_write(const char *path, const SsfSnapshotPolicy *policy,
                       const SsfSnapshotEntry *entries, size_t n) {
        char head[SSF_SNAPSHOT_MAX_LINE * 2 + 128];
        size_t head_len;
        _cleanup_free_ char *tmp = NULL, *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t total, used = 0;
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

        /* Lines are gathered into buf and written SNAPSHOT_WRITE_BUF bytes at a time: one
         * write() per line cost a third of a start with 100,000 users at risk. */
        buf = malloc(SNAPSHOT_WRITE_BUF);
        if (!buf) {
                r = -ENOMEM;
                goto fail;
        }
        r = write_all(fd, head, head_len);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                int k;

                if (SNAPSHOT_WRITE_BUF - used < SSF_SNAPSHOT_MAX_LINE + 2) {
                        r = write_all(fd, buf, used);
                        used = 0;
                        if (r < 0)
                                break;
                }
                k = snprintf(buf + used, SSF_SNAPSHOT_MAX_LINE + 2, "%s %s %" PRIu64 "\n",
                             entries[i].user, risk_level_to_string(entries[i].level),
                             entries[i].until);
                if (k < 0 || (size_t) k > SSF_SNAPSHOT_MAX_LINE + 1)
                        r = -EINVAL;
                else
                        used += (size_t) k;
        }
        if (r >= 0)
                r = write_all(fd, buf, used);
        if (r < 0)
                goto fail;
        r = install_synced(fd, tmp, path);
        if (r < 0)
                goto fail;
        return 0;

fail:
        (void) unlink(tmp);
        return r;
}

int ssf_snapshot_journal_line(const SsfSnapshotEntry *e, char *buf, size_t size) {
        const char *name;
        int k;

        if (!e || !buf || !e->user || !user_valid(e->user, strlen(e->user)))
                return -EINVAL;
        name = risk_level_to_string(e->level);
        if (!name)
                return -EINVAL;
        k = snprintf(buf, size, "%s %s %" PRIu64 "\n", e->user, name, e->until);
        if (k < 0 || (size_t) k >= size || (size_t) k > SSF_SNAPSHOT_MAX_LINE + 1)
                return -EINVAL;
        return k;
}

int ssf_snapshot_journal_install(const char *path, const char *tail, size_t tail_len) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        char jpath[PATH_MAX];
        int r;

        if (!tail && tail_len > 0)
                return -EINVAL;
        if (tail_len > 0 && tail[tail_len - 1] != '\n')
                return -EINVAL; /* whole lines only */
        r = ssf_snapshot_journal_path(path, jpath, sizeof(jpath));
        if (r < 0)
                return r;
        if (asprintf(&tmp, "%s.XXXXXX", jpath) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, 0600) < 0) {
                r = -errno;
                goto fail;
        }
        r = write_all(fd, SSF_SNAPSHOT_JOURNAL_HEADER "\n", strlen(SSF_SNAPSHOT_JOURNAL_HEADER) + 1);
        if (r >= 0 && tail_len > 0)
                r = write_all(fd, tail, tail_len);
        if (r < 0)
                goto fail;
        r = install_synced(fd, tmp, jpath);
        if (r < 0)
                goto fail;
        return TAKE_FD(fd);

fail:
        (void) unlink(tmp);
        return r;
}

int ssf_snapshot_journal_append(int fd, const char *lines, size_t len) {
        if (fd < 0 || (!lines && len > 0))
                return -EINVAL;
        return write_all(fd, lines, len);
}
