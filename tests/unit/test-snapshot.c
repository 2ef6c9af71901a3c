/* SPDX-License-Identifier: MIT */
/* The PAM snapshot (common/snapshot.c): line parser, lookup with its file trust checks, and the
 * atomic writer. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "level.h"
#include "macro.h"
#include "snapshot.h"

#define NOW UINT64_C(1700000000)

static int parse(const char *line, SsfSnapshotEntry *e, char *buf) {
        return ssf_snapshot_parse_line(line, strlen(line), buf, e);
}

static void test_parse_entries(void **state) {
        char buf[SSF_SNAPSHOT_MAX_LINE + 1];
        SsfSnapshotEntry e;

        assert_int_equal(parse("alice high 0", &e, buf), 1);
        assert_string_equal(e.user, "alice");
        assert_int_equal(e.level, RISK_HIGH);
        assert_int_equal(e.until, 0);

        assert_int_equal(parse("  bob\tmedium   1700000123  ", &e, buf), 1);
        assert_string_equal(e.user, "bob");
        assert_int_equal(e.level, RISK_MEDIUM);
        assert_int_equal(e.until, 1700000123);

        assert_int_equal(parse("carol low 18446744073709551615", &e, buf), 1);
        assert_int_equal(e.until, UINT64_MAX);
        assert_int_equal(parse("dave none 7", &e, buf), 1);
        assert_int_equal(e.level, RISK_NONE);
        assert_int_equal(parse("user.name@example.com high 1", &e, buf), 1);
        assert_string_equal(e.user, "user.name@example.com");

        /* The line need not be NUL-terminated: only len bytes count. */
        assert_int_equal(ssf_snapshot_parse_line("erin high 5XXXX", 11, buf, &e), 1);
        assert_string_equal(e.user, "erin");
        assert_int_equal(e.until, 5);
}

static void test_parse_comments_and_blanks(void **state) {
        char buf[SSF_SNAPSHOT_MAX_LINE + 1];
        SsfSnapshotEntry e;

        assert_int_equal(parse("", &e, buf), 0);
        assert_int_equal(parse("   \t ", &e, buf), 0);
        assert_int_equal(parse("# ssf-sessiond pam-snapshot v2", &e, buf), 0);
        assert_int_equal(parse("   # alice high 0", &e, buf), 0);
        assert_int_equal(ssf_snapshot_parse_line(NULL, 0, buf, &e), 0);
}

static void test_parse_malformed(void **state) {
        static const char *const bad[] = {
                "alice",
                "alice high",
                "alice high 0 extra",
                "alice HIGH 0",
                "alice secure 0",
                "alice critical 0",
                "alice high -1",
                "alice high +1",
                "alice high 0x10",
                "alice high 1e3",
                "alice high 18446744073709551616",
                "alice high 99999999999999999999999",
                "alice high 0\r",
                ("ali\x01" "ce high 0"),
                "alice\x7f high 0",
                "alice\vhigh 0",
        };
        char buf[SSF_SNAPSHOT_MAX_LINE + 1];
        SsfSnapshotEntry e = { .user = "untouched" };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                assert_int_equal(parse(bad[i], &e, buf), -EBADMSG);
                assert_string_equal(e.user, "untouched");
        }

        /* Embedded NUL. */
        assert_int_equal(ssf_snapshot_parse_line("alice\0high 0", 12, buf, &e), -EBADMSG);

        /* Line length: MAX_LINE is fine, one more is not. A user name over 256 bytes is not. */
        char *line = malloc(SSF_SNAPSHOT_MAX_LINE + 2);
        char *big = malloc(SSF_SNAPSHOT_MAX_LINE + 2);
        assert_non_null(line);
        assert_non_null(big);
        memset(line, ' ', SSF_SNAPSHOT_MAX_LINE + 1);
        memcpy(line, "alice high 0", 12);
        assert_int_equal(ssf_snapshot_parse_line(line, SSF_SNAPSHOT_MAX_LINE, big, &e), 1);
        assert_int_equal(ssf_snapshot_parse_line(line, SSF_SNAPSHOT_MAX_LINE + 1, big, &e), -EBADMSG);

        memset(line, 'u', 257);
        strcpy(line + 257, " high 0");
        assert_int_equal(parse(line, &e, big), -EBADMSG);
        line[256] = 0;
        strcat(line, " high 0");
        assert_int_equal(parse(line, &e, big), 1);
        free(line);
        free(big);

        assert_int_equal(ssf_snapshot_parse_line("a", 1, NULL, &e), -EINVAL);
        assert_int_equal(ssf_snapshot_parse_line("a", 1, buf, NULL), -EINVAL);
}

/* ---- lookup ---- */

typedef struct Dir {
        char path[64];
        char file[128];
} Dir;

static int dir_setup(void **state) {
        Dir *d = calloc(1, sizeof(Dir));
        const char *tmp = getenv("TMPDIR");

        if (!d)
                return -1;
        snprintf(d->path, sizeof(d->path), "%s/test-snapshot-XXXXXX", isempty(tmp) ? "/tmp" : tmp);
        if (!mkdtemp(d->path))
                return -1;
        snprintf(d->file, sizeof(d->file), "%s/pam-snapshot", d->path);
        *state = d;
        return 0;
}

static int dir_teardown(void **state) {
        Dir *d = *state;
        DIR *dir = opendir(d->path);
        struct dirent *de;

        while (dir && (de = readdir(dir)))
                if (de->d_name[0] != '.') {
                        char p[sizeof(d->path) + 258];
                        snprintf(p, sizeof(p), "%s/%s", d->path, de->d_name);
                        unlink(p);
                }
        if (dir)
                closedir(dir);
        rmdir(d->path);
        free(d);
        return 0;
}

static void write_raw(const char *path, const char *content, mode_t mode) {
        int fd;

        unlink(path);
        fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, strlen(content)), (ssize_t) strlen(content));
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static int lookup(const char *path, const char *user, RiskLevel *l) {
        return ssf_snapshot_lookup(path, user, NOW, (uid_t) -1, l, NULL);
}

static void test_lookup(void **state) {
        Dir *d = *state;
        RiskLevel l = _RISK_INVALID;

        write_raw(d->file,
                  SSF_SNAPSHOT_HEADER "\n"
                  "alice high 0\n"
                  "# a comment\n"
                  "\n"
                  "bob medium 1700000100\n"
                  "carol high 1699999999\n"
                  "dave low 1700000000\n"
                  "erin low 0\n"
                  "erin high 0\n"
                  "frank none 0\n"
                  "gina medium 0",
                  0600);

        assert_int_equal(lookup(d->file, "alice", &l), 0);
        assert_int_equal(l, RISK_HIGH);
        assert_int_equal(lookup(d->file, "bob", &l), 0); /* until in the future */
        assert_int_equal(l, RISK_MEDIUM);
        assert_int_equal(lookup(d->file, "carol", &l), 0); /* lapsed */
        assert_int_equal(l, RISK_NONE);
        assert_int_equal(lookup(d->file, "dave", &l), 0); /* lapses exactly now */
        assert_int_equal(l, RISK_NONE);
        assert_int_equal(lookup(d->file, "erin", &l), 0); /* listed twice: the higher wins */
        assert_int_equal(l, RISK_HIGH);
        assert_int_equal(lookup(d->file, "frank", &l), 0);
        assert_int_equal(l, RISK_NONE);
        assert_int_equal(lookup(d->file, "gina", &l), 0); /* last line without newline */
        assert_int_equal(l, RISK_MEDIUM);

        l = _RISK_INVALID;
        assert_int_equal(lookup(d->file, "mallory", &l), -ENOENT);
        assert_int_equal(lookup(d->file, "alic", &l), -ENOENT);
        assert_int_equal(lookup(d->file, "alice ", &l), -ENOENT);
        assert_int_equal(l, _RISK_INVALID);

        /* World-readable is fine; the file holds no secret. */
        assert_int_equal(chmod(d->file, 0644), 0);
        assert_int_equal(lookup(d->file, "alice", &l), 0);

        assert_int_equal(lookup(d->file, "", &l), -EINVAL);
        assert_int_equal(lookup("", "alice", &l), -EINVAL);
        assert_int_equal(lookup(d->file, "alice", NULL), -EINVAL);
}

static void test_lookup_malformed(void **state) {
        Dir *d = *state;
        RiskLevel l;

        write_raw(d->file, "", 0600);
        assert_int_equal(lookup(d->file, "alice", &l), -EBADMSG);

        write_raw(d->file, "alice high 0\n", 0600); /* no header */
        assert_int_equal(lookup(d->file, "alice", &l), -EBADMSG);

        /* The old, name-keyed format (v1) is not read. */
        write_raw(d->file, "# ssf-sessiond pam-snapshot v1\nalice high 0\n", 0600);
        assert_int_equal(lookup(d->file, "alice", &l), -EBADMSG);

        /* A bad line anywhere, even after the user's entry, makes the file unusable. */
        write_raw(d->file, SSF_SNAPSHOT_HEADER "\nalice high 0\nbob severe 0\n", 0600);
        assert_int_equal(lookup(d->file, "alice", &l), -EBADMSG);

        /* An overlong line. */
        char *big = malloc(SSF_SNAPSHOT_MAX_LINE * 3);
        assert_non_null(big);
        strcpy(big, SSF_SNAPSHOT_HEADER "\n");
        size_t o = strlen(big);
        memset(big + o, 'x', SSF_SNAPSHOT_MAX_LINE + 1);
        strcpy(big + o + SSF_SNAPSHOT_MAX_LINE + 1, " high 0\nalice high 0\n");
        write_raw(d->file, big, 0600);
        assert_int_equal(lookup(d->file, "alice", &l), -EBADMSG);
        free(big);

        /* Larger than the maximum size. */
        write_raw(d->file, SSF_SNAPSHOT_HEADER "\n", 0600);
        assert_int_equal(truncate(d->file, SSF_SNAPSHOT_MAX_SIZE + 1), 0);
        assert_int_equal(lookup(d->file, "alice", &l), -EFBIG);
}

static void test_lookup_untrusted_file(void **state) {
        Dir *d = *state;
        char link[160], fifo[160];
        RiskLevel l;

        write_raw(d->file, SSF_SNAPSHOT_HEADER "\nalice high 0\n", 0600);
        assert_int_equal(lookup(d->file, "alice", &l), 0);

        /* Group- or world-writable. */
        assert_int_equal(chmod(d->file, 0620), 0);
        assert_int_equal(lookup(d->file, "alice", &l), -EPERM);
        assert_int_equal(chmod(d->file, 0602), 0);
        assert_int_equal(lookup(d->file, "alice", &l), -EPERM);
        assert_int_equal(chmod(d->file, 0600), 0);

        /* A symlink, even to a good file. */
        snprintf(link, sizeof(link), "%s/link", d->path);
        assert_int_equal(symlink(d->file, link), 0);
        assert_int_equal(lookup(link, "alice", &l), -ELOOP);

        /* Not a regular file: a directory, a FIFO (which must not block us). */
        assert_int_equal(lookup(d->path, "alice", &l), -EBADFD);
        snprintf(fifo, sizeof(fifo), "%s/fifo", d->path);
        assert_int_equal(mkfifo(fifo, 0600), 0);
        assert_int_equal(lookup(fifo, "alice", &l), -EBADFD);

        assert_int_equal(lookup("/nonexistent/pam-snapshot", "alice", &l), -ENOENT);

        /* Not owned by root (or the given owner). */
        if (geteuid() == 0) {
                assert_int_equal(chown(d->file, 65534, 65534), 0);
                assert_int_equal(lookup(d->file, "alice", &l), -EPERM);
                assert_int_equal(ssf_snapshot_lookup(d->file, "alice", NOW, 65534, &l, NULL), 0);
                assert_int_equal(l, RISK_HIGH);
                assert_int_equal(ssf_snapshot_lookup(d->file, "alice", NOW, 1000, &l, NULL), -EPERM);
        } else {
                /* Our own file is not root's. */
                assert_int_equal(lookup(d->file, "alice", &l), -EPERM);
                assert_int_equal(ssf_snapshot_lookup(d->file, "alice", NOW, geteuid(), &l, NULL), 0);
        }
}

/* ---- write ---- */

#define BASE SSF_SNAPSHOT_HEADER "\nmin_uid 1000\nmax_uid 60000\nprotect root\n1000 high 0\n1001 low 0\n"
#define JHEAD SSF_SNAPSHOT_JOURNAL_HEADER "\n"

static int jlookup(const char *journal, const char *user, RiskLevel *l) {
        return ssf_snapshot_lookup_buffers(BASE, strlen(BASE), journal, journal ? strlen(journal) : 0,
                                           user, NOW, l, NULL);
}

/* The journal's lines override the base file, the last one for a user wins, "none" removes;
 * anything malformed, a policy line or a torn last line makes the whole snapshot unusable. */
static void test_journal(void **state) {
        SsfSnapshotPolicy pol = {};
        RiskLevel l = RISK_NONE;

        assert_int_equal(jlookup(NULL, "1000", &l), 0);
        assert_int_equal(l, RISK_HIGH);
        assert_int_equal(jlookup(JHEAD, "1000", &l), 0);
        assert_int_equal(l, RISK_HIGH);
        assert_int_equal(jlookup(JHEAD "1000 low 0\n1001 high 0\n1000 medium 0\n", "1000", &l), 0);
        assert_int_equal(l, RISK_MEDIUM);
        assert_int_equal(jlookup(JHEAD "1000 low 0\n1001 high 0\n1000 medium 0\n", "1001", &l), 0);
        assert_int_equal(l, RISK_HIGH);
        /* Lowered to none: no longer listed, as if absent from the base file. */
        assert_int_equal(jlookup(JHEAD "1000 none 0\n", "1000", &l), -ENOENT);
        assert_int_equal(jlookup(JHEAD "1000 none 0\n1000 low 0\n", "1000", &l), 0);
        assert_int_equal(l, RISK_LOW);
        /* A new account at risk, and one whose level lapsed. */
        assert_int_equal(jlookup(JHEAD "1002 high 0\n", "1002", &l), 0);
        assert_int_equal(l, RISK_HIGH);
        assert_int_equal(jlookup(JHEAD "1000 high 1699999999\n", "1000", &l), 0);
        assert_int_equal(l, RISK_NONE);
        /* The policy comes from the base file. */
        assert_int_equal(ssf_snapshot_lookup_buffers(BASE, strlen(BASE), JHEAD, strlen(JHEAD), "1000",
                                                     NOW, &l, &pol), 0);
        assert_true(pol.have_min && pol.min_uid == 1000 && streq(pol.protect, "root"));

        /* Rejected: a torn last line, even a complete-looking one; an empty journal; a wrong
         * header; a policy line; a malformed or overlong entry. */
        assert_int_equal(jlookup(JHEAD "1000 none 0", "1000", &l), -EBADMSG);
        assert_int_equal(jlookup(JHEAD "1000 no", "1001", &l), -EBADMSG);
        assert_int_equal(jlookup("", "1000", &l), -EBADMSG);
        assert_int_equal(jlookup(SSF_SNAPSHOT_HEADER "\n1000 none 0\n", "1000", &l), -EBADMSG);
        assert_int_equal(jlookup(JHEAD "protect 1000\n", "1000", &l), -EBADMSG);
        assert_int_equal(jlookup(JHEAD "min_uid 0\n", "1000", &l), -EBADMSG);
        assert_int_equal(jlookup(JHEAD "1000 severe 0\n", "1001", &l), -EBADMSG);
        assert_int_equal(jlookup(JHEAD "1000 high 0 extra\n", "1001", &l), -EBADMSG);
        {
                char big[SSF_SNAPSHOT_MAX_LINE + 64];

                snprintf(big, sizeof(big), JHEAD "%0*d high 0\n", (int) SSF_SNAPSHOT_MAX_LINE, 1);
                assert_int_equal(jlookup(big, "1001", &l), -EBADMSG);
        }
}

/* The files as the daemon writes them: a journal installed next to the base file and appended
 * to is read with it; no journal is the base file alone; a journal that cannot be trusted (mode)
 * makes the snapshot unusable. */
static void test_journal_files(void **state) {
        Dir *d = *state;
        const SsfSnapshotEntry e[] = { { "1000", RISK_HIGH, 0 } };
        uid_t owner = geteuid() == 0 ? (uid_t) -1 : geteuid();
        char jpath[PATH_MAX], line[64];
        RiskLevel l;
        int fd, k;

        assert_int_equal(ssf_snapshot_journal_path(d->file, jpath, sizeof(jpath)), 0);
        assert_int_equal(ssf_snapshot_write(d->file, NULL, e, 1), 0);
        assert_int_equal(ssf_snapshot_lookup(d->file, "1000", NOW, owner, &l, NULL), 0);
        assert_int_equal(l, RISK_HIGH);

        fd = ssf_snapshot_journal_install(d->file, "1001 medium 0\n", 14);
        assert_true(fd >= 0);
        k = ssf_snapshot_journal_line(&(SsfSnapshotEntry){ "1000", RISK_NONE, 0 }, line, sizeof(line));
        assert_int_equal(k, 12);
        assert_string_equal(line, "1000 none 0\n");
        assert_int_equal(ssf_snapshot_journal_append(fd, line, (size_t) k), 0);
        assert_int_equal(ssf_snapshot_lookup(d->file, "1000", NOW, owner, &l, NULL), -ENOENT);
        assert_int_equal(ssf_snapshot_lookup(d->file, "1001", NOW, owner, &l, NULL), 0);
        assert_int_equal(l, RISK_MEDIUM);
        /* A torn append. */
        assert_int_equal(ssf_snapshot_journal_append(fd, "1002 hi", 7), 0);
        assert_int_equal(ssf_snapshot_lookup(d->file, "1001", NOW, owner, &l, NULL), -EBADMSG);
        close(fd);
        assert_int_equal(ssf_snapshot_journal_install(d->file, "no newline", 10), -EINVAL);
        assert_int_equal(ssf_snapshot_journal_line(&(SsfSnapshotEntry){ "a b", RISK_LOW, 0 }, line,
                                                   sizeof(line)), -EINVAL);

        /* Group-writable: not trusted, like the base file. */
        fd = ssf_snapshot_journal_install(d->file, NULL, 0);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(ssf_snapshot_lookup(d->file, "1000", NOW, owner, &l, NULL), 0);
        assert_int_equal(chmod(jpath, 0620), 0);
        assert_true(ssf_snapshot_lookup(d->file, "1000", NOW, owner, &l, NULL) < 0);
        assert_int_equal(unlink(jpath), 0);
        assert_int_equal(ssf_snapshot_lookup(d->file, "1000", NOW, owner, &l, NULL), 0);
        assert_int_equal(l, RISK_HIGH);
}

static void test_write(void **state) {
        Dir *d = *state;
        const SsfSnapshotEntry e[] = {
                { "alice", RISK_HIGH, 0 },
                { "bob", RISK_MEDIUM, NOW + 60 },
                { "carol", RISK_LOW, NOW - 60 },
        };
        uid_t owner = geteuid() == 0 ? (uid_t) -1 : geteuid();
        char content[512];
        struct stat st;
        RiskLevel l;
        ssize_t n;
        int fd;

        /* Replaces an existing file, whatever its mode was. */
        write_raw(d->file, "old\n", 0644);
        assert_int_equal(ssf_snapshot_write(d->file, NULL, e, ARRAY_SIZE(e)), 0);

        assert_int_equal(lstat(d->file, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);

        fd = open(d->file, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        n = read(fd, content, sizeof(content) - 1);
        close(fd);
        assert_true(n > 0);
        content[n] = 0;
        assert_string_equal(content, SSF_SNAPSHOT_HEADER "\n"
                                     "alice high 0\n"
                                     "bob medium 1700000060\n"
                                     "carol low 1699999940\n");

        assert_int_equal(ssf_snapshot_lookup(d->file, "alice", NOW, owner, &l, NULL), 0);
        assert_int_equal(l, RISK_HIGH);
        assert_int_equal(ssf_snapshot_lookup(d->file, "bob", NOW, owner, &l, NULL), 0);
        assert_int_equal(l, RISK_MEDIUM);
        assert_int_equal(ssf_snapshot_lookup(d->file, "carol", NOW, owner, &l, NULL), 0);
        assert_int_equal(l, RISK_NONE);

        /* Empty snapshot: header only, nobody listed. */
        assert_int_equal(ssf_snapshot_write(d->file, NULL, NULL, 0), 0);
        assert_int_equal(ssf_snapshot_lookup(d->file, "alice", NOW, owner, &l, NULL), -ENOENT);

        /* Invalid entries are refused and leave the old file (and no temporary file) behind. */
        const SsfSnapshotEntry bad1[] = { { "al ice", RISK_HIGH, 0 } };
        const SsfSnapshotEntry bad2[] = { { "alice", _RISK_MAX, 0 } };
        const SsfSnapshotEntry bad3[] = { { "", RISK_HIGH, 0 } };
        const SsfSnapshotEntry bad4[] = { { NULL, RISK_HIGH, 0 } };
        const SsfSnapshotEntry bad5[] = { { "a\nb", RISK_HIGH, 0 } };
        assert_int_equal(ssf_snapshot_write(d->file, NULL, e, ARRAY_SIZE(e)), 0);
        assert_int_equal(ssf_snapshot_write(d->file, NULL, bad1, 1), -EINVAL);
        assert_int_equal(ssf_snapshot_write(d->file, NULL, bad2, 1), -EINVAL);
        assert_int_equal(ssf_snapshot_write(d->file, NULL, bad3, 1), -EINVAL);
        assert_int_equal(ssf_snapshot_write(d->file, NULL, bad4, 1), -EINVAL);
        assert_int_equal(ssf_snapshot_write(d->file, NULL, bad5, 1), -EINVAL);
        assert_int_equal(ssf_snapshot_write(d->file, NULL, NULL, 1), -EINVAL);
        assert_int_equal(ssf_snapshot_lookup(d->file, "alice", NOW, owner, &l, NULL), 0);
        assert_int_equal(l, RISK_HIGH);

        DIR *dir = opendir(d->path);
        struct dirent *de;
        int files = 0;
        assert_non_null(dir);
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.')
                        files++;
        closedir(dir);
        assert_int_equal(files, 1);

        /* A directory that does not exist. */
        assert_true(ssf_snapshot_write("/nonexistent/dir/pam-snapshot", NULL, e, 1) < 0);
}

/* Many entries: the lines are written through a buffer flushed many times; the file holds
 * every line, in order, and each entry is found. */
static void test_write_large(void **state) {
        Dir *d = *state;
        const size_t n = 20000;
        uid_t owner = geteuid() == 0 ? (uid_t) -1 : geteuid();
        _cleanup_free_ SsfSnapshotEntry *e = calloc(n, sizeof(*e));
        _cleanup_free_ char *names = calloc(n, 16), *want = NULL, *got = NULL;
        size_t want_len = 0, got_len = 0;
        FILE *w;
        RiskLevel l;
        struct stat st;
        int fd;

        assert_non_null(e);
        assert_non_null(names);
        w = open_memstream(&want, &want_len);
        assert_non_null(w);
        fprintf(w, "%s\n", SSF_SNAPSHOT_HEADER);
        for (size_t i = 0; i < n; i++) {
                (void) snprintf(names + i * 16, 16, "%zu", 100000 + i);
                e[i] = (SsfSnapshotEntry) { names + i * 16, i % 2 ? RISK_HIGH : RISK_MEDIUM,
                                            i % 3 ? 0 : NOW + 1 + i };
                fprintf(w, "%s %s %" PRIu64 "\n", e[i].user, risk_level_to_string(e[i].level),
                        e[i].until);
        }
        assert_int_equal(fclose(w), 0);
        assert_true(want_len > 4 * 64 * 1024);

        assert_int_equal(ssf_snapshot_write(d->file, NULL, e, n), 0);
        assert_int_equal(stat(d->file, &st), 0);
        assert_int_equal((size_t) st.st_size, want_len);
        got = malloc(want_len + 1);
        assert_non_null(got);
        fd = open(d->file, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        while (got_len < want_len) {
                ssize_t k = read(fd, got + got_len, want_len + 1 - got_len);
                assert_true(k > 0);
                got_len += (size_t) k;
        }
        close(fd);
        assert_int_equal(got_len, want_len);
        assert_memory_equal(got, want, want_len);

        for (size_t i = 0; i < n; i += 997) {
                assert_int_equal(ssf_snapshot_lookup(d->file, e[i].user, NOW, owner, &l, NULL), 0);
                assert_int_equal(l, e[i].level);
        }
        assert_int_equal(ssf_snapshot_lookup(d->file, e[n - 1].user, NOW, owner, &l, NULL), 0);
        assert_int_equal(l, e[n - 1].level);
}

/* The policy lines: who pam_ssf.so admits on its own when the daemon is unreachable. */
static void test_policy(void **state) {
        char buf[SSF_SNAPSHOT_MAX_LINE + 1];
        SsfSnapshotPolicy p = {};
        SsfSnapshotEntry e;

        assert_int_equal(ssf_snapshot_parse_line_policy("min_uid 1000", 12, buf, &e, &p), 2);
        assert_int_equal(ssf_snapshot_parse_line_policy("max_uid 60000", 13, buf, &e, &p), 2);
        assert_int_equal(ssf_snapshot_parse_line_policy("protect root admin", 18, buf, &e, &p), 2);
        assert_true(p.have_min && p.have_max && p.have_protect);
        assert_int_equal(p.min_uid, 1000);
        assert_int_equal(p.max_uid, 60000);
        assert_string_equal(p.protect, "root admin");
        assert_true(ssf_snapshot_policy_protects(&p, 0, "root"));
        assert_true(ssf_snapshot_policy_protects(&p, 999, "svc"));
        assert_true(ssf_snapshot_policy_protects(&p, 60001, "big"));
        assert_true(ssf_snapshot_policy_protects(&p, 1500, "admin"));
        assert_false(ssf_snapshot_policy_protects(&p, 1500, "adm"));
        assert_false(ssf_snapshot_policy_protects(&p, 2001, "alice"));
        assert_false(ssf_snapshot_policy_protects(NULL, 0, "root"));

        assert_int_equal(ssf_snapshot_parse_line_policy("min_uid", 7, buf, &e, &p), -EBADMSG);
        assert_int_equal(ssf_snapshot_parse_line_policy("min_uid -1", 10, buf, &e, &p), -EBADMSG);
        assert_int_equal(ssf_snapshot_parse_line_policy("min_uid 1 2", 11, buf, &e, &p), -EBADMSG);
        assert_int_equal(ssf_snapshot_parse_line_policy("max_uid 4294967295", 18, buf, &e, &p), -EBADMSG);
}

static void test_policy_roundtrip(void **state) {
        Dir *d = *state;
        SsfSnapshotPolicy in = { .min_uid = 500, .max_uid = 7000 }, out = {};
        const SsfSnapshotEntry e[] = { { "2001", RISK_HIGH, 0 } };
        uid_t owner = geteuid() == 0 ? (uid_t) -1 : geteuid();
        RiskLevel l;

        strcpy(in.protect, "root ops");
        assert_int_equal(ssf_snapshot_write(d->file, &in, e, 1), 0);
        assert_int_equal(ssf_snapshot_lookup(d->file, "2001", NOW, owner, &l, &out), 0);
        assert_int_equal(l, RISK_HIGH);
        assert_int_equal(out.min_uid, 500);
        assert_int_equal(out.max_uid, 7000);
        assert_string_equal(out.protect, "root ops");
        /* Not listed: the policy still comes back. */
        memset(&out, 0, sizeof(out));
        assert_int_equal(ssf_snapshot_lookup(d->file, "2002", NOW, owner, &l, &out), -ENOENT);
        assert_true(out.have_min && out.min_uid == 500);
        /* A protect list with a line break is not written. */
        strcpy(in.protect, "root\nalice 2001 high 0");
        assert_int_equal(ssf_snapshot_write(d->file, &in, e, 1), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_entries),
                cmocka_unit_test(test_parse_comments_and_blanks),
                cmocka_unit_test(test_parse_malformed),
                cmocka_unit_test_setup_teardown(test_lookup, dir_setup, dir_teardown),
                cmocka_unit_test_setup_teardown(test_lookup_malformed, dir_setup, dir_teardown),
                cmocka_unit_test_setup_teardown(test_lookup_untrusted_file, dir_setup, dir_teardown),
                cmocka_unit_test_setup_teardown(test_write, dir_setup, dir_teardown),
                cmocka_unit_test_setup_teardown(test_write_large, dir_setup, dir_teardown),
                cmocka_unit_test(test_policy),
                cmocka_unit_test(test_journal),
                cmocka_unit_test_setup_teardown(test_journal_files, dir_setup, dir_teardown),
                cmocka_unit_test_setup_teardown(test_policy_roundtrip, dir_setup, dir_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
