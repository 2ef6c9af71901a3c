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

int ssf_snapshot_parse_line(const char *line, size_t len, char *linebuf, SsfSnapshotEntry *ret) {
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

        r = ssf_snapshot_parse_line(line, len, buf, &e);
        if (r <= 0)
                return r;
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
                        RiskLevel *ret_level) {
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

        if (!s.found)
                return -ENOENT;
        *ret_level = s.level;
        return 0;
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

int ssf_snapshot_write(const char *path, const SsfSnapshotEntry *entries, size_t n) {
        _cleanup_free_ char *tmp = NULL, *dircopy = NULL;
        _cleanup_close_ int fd = -EBADF, dfd = -EBADF;
        size_t total;
        int r;

        if (isempty(path) || (!entries && n > 0))
                return -EINVAL;

        total = strlen(SSF_SNAPSHOT_HEADER) + 1;
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

        r = write_all(fd, SSF_SNAPSHOT_HEADER "\n", strlen(SSF_SNAPSHOT_HEADER) + 1);
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
