/* SPDX-License-Identifier: MIT */
/* ttywarn.c: which TTY names are written to, the wall-style text with hostile facts made
 * printable, and the bounded write to a real pseudo-terminal (opened here; its slave's path is
 * what logind would report). Files the test creates under /dev (a regular file, a symlink to the
 * pseudo-terminal) and writing as another user need root; without it those cases are skipped. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cmocka.h>

#include "macro.h"
#include "ttywarn.h"

static void test_device_names(void **state) {
        static const struct {
                const char *tty, *name;
        } good[] = {
                { "pts/0", "pts/0" },      { "/dev/pts/17", "pts/17" }, { "tty1", "tty1" },
                { "/dev/ttyS0", "ttyS0" }, { "ttyUSB0", "ttyUSB0" },
        };
        static const char *const bad[] = {
                "", "/", "/dev/", "pts/", "pts/x", "pts/1/2", "pts/../tty1", "/dev/pts/../../etc/passwd",
                "tty1/", "tty/1", "../tty1", "/etc/tty1", "/dev/shm/tty1", "console", "ssh", "notty",
                ":0", "tty\n1", "/dev//pts/1", "tty-1", "ttyS0 ",
        };
        char name[80];

        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                assert_int_equal(ttywarn_device_name(good[i].tty, name, sizeof(name)), 0);
                assert_string_equal(name, good[i].name);
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                if (ttywarn_device_name(bad[i], name, sizeof(name)) != -EINVAL) {
                        print_error("'%s' was accepted\n", bad[i]);
                        fail();
                }
        assert_int_equal(ttywarn_device_name(NULL, name, sizeof(name)), -EINVAL);
        assert_int_equal(ttywarn_device_name("pts/12345", name, 6), -ENAMETOOLONG);
}

static void test_format(void **state) {
        char buf[TTYWARN_MESSAGE_MAX], big[12000];
        size_t l;

        /* 2026-12-06 01:20:00 UTC */
        l = ttywarn_format(buf, sizeof(buf), "host1", 1796520000ULL * 1000000ULL, "session-revoked",
                           90 * 1000000ULL, NULL);
        assert_int_equal(l, strlen(buf));
        assert_string_equal(buf, "\r\n\aBroadcast message from ssf-sessiond@host1 (Sun 2026-12-06 "
                                 "01:20:00 UTC):\r\n\r\nssf: session-revoked -- you will be logged out "
                                 "in 90 seconds.\r\n\r\n");
        /* Rounded up; singular. */
        ttywarn_format(buf, sizeof(buf), "h", 0, "x", 1, NULL);
        assert_non_null(strstr(buf, "in 1 second.\r\n"));

        /* reason_user: shown after the line, printable only, cut at 200 characters. */
        ttywarn_format(buf, sizeof(buf), "h", 0, "x", 5000000, "Your laptop\x1b]0;pwned\a\x1b[2J is "
                       "not\r\ncompliant \xc2\x9b""31m caf\xc3\xa9 \xff");
        assert_non_null(strstr(buf, "in 5 seconds.\r\nYour laptop?]0;pwned?\?[2J is not??compliant ?31m "
                                    "caf\xc3\xa9 ?\r\n\r\n"));
        memset(big, 'A', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        l = ttywarn_format(buf, sizeof(buf), "h", 0, "x", 5000000, big);
        assert_true(l < sizeof(buf));
        {
                const char *p = strstr(buf, "seconds.\r\n") + strlen("seconds.\r\n");
                size_t as = strspn(p, "A");
                assert_int_equal(as, TTYWARN_REASON_MAX);
                assert_true(startswith(p + as, "...\r\n\r\n") != NULL);
        }
        /* No control byte but the layout's own anywhere, whatever the facts. */
        ttywarn_format(buf, sizeof(buf), "evil\x1b[1mhost", 0, "det\x07\x1b[H", 1000000, "\x1b\x9b\x7f");
        for (const char *p = buf; *p; p++)
                if ((unsigned char) *p < 0x20)
                        assert_true(*p == '\r' || *p == '\n' || (*p == '\a' && p == buf + 2));
        /* A small buffer is filled, never overrun. */
        memset(big, 'x', 64);
        l = ttywarn_format(big, 40, "host", 0, "det", 1, NULL);
        assert_true(l == 39 && big[39] == '\0' && big[40] == 'x');
}

static int open_pty(int *ret_master, char *slave_path, size_t size) {
        int master, slave;

        if (openpty(&master, &slave, NULL, NULL, NULL) < 0)
                return -errno;
        if (ttyname_r(slave, slave_path, size) != 0) {
                close(master);
                close(slave);
                return -EIO;
        }
        close(slave); /* the daemon opens it by name */
        *ret_master = master;
        return 0;
}

static size_t read_master(int master, char *buf, size_t size) {
        size_t n = 0;
        struct pollfd p = { .fd = master, .events = POLLIN };

        while (n + 1 < size && poll(&p, 1, 200) > 0) {
                ssize_t k = read(master, buf + n, size - 1 - n);
                if (k <= 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = '\0';
        return n;
}

static void test_write_pty(void **state) {
        char path[128], got[512];
        int master = -1;
        static const char msg[] = "\r\nssf: test -- you will be logged out in 5 seconds.\r\n";

        assert_int_equal(open_pty(&master, path, sizeof(path)), 0);
        assert_true(startswith(path, "/dev/pts/") != NULL);
        /* Both forms logind may report. */
        assert_int_equal(ttywarn_write(path, getuid(), msg, strlen(msg), TTYWARN_WRITE_TIMEOUT_USEC), 0);
        assert_int_equal(ttywarn_write(path + strlen("/dev/"), getuid(), msg, strlen(msg),
                                       TTYWARN_WRITE_TIMEOUT_USEC), 0);
        read_master(master, got, sizeof(got));
        assert_non_null(strstr(got, "logged out in 5 seconds."));
        assert_non_null(strstr(strstr(got, "seconds.") + 1, "logged out in 5 seconds."));
        close(master);
}

/* A terminal nobody reads: the write gives up at the deadline and never blocks. */
static void test_write_full_terminal(void **state) {
        char path[128], chunk[4096];
        int master = -1, r = 0;

        assert_int_equal(open_pty(&master, path, sizeof(path)), 0);
        memset(chunk, 'x', sizeof(chunk));
        for (int i = 0; i < 1000 && r == 0; i++)
                r = ttywarn_write(path, getuid(), chunk, sizeof(chunk), 50 * 1000ULL);
        assert_int_equal(r, -ETIMEDOUT);
        close(master);
}

static void test_not_a_terminal(void **state) {
        char path[128], file[64], link[64];
        int master = -1, fd;
        struct stat st;

        assert_int_equal(ttywarn_write("console", 0, "x", 1, 1000), -EINVAL);
        assert_int_equal(ttywarn_write("/tmp/tty1", 0, "x", 1, 1000), -EINVAL);
        if (geteuid() != 0) {
                print_message("not root: skipping files under /dev\n");
                return;
        }
        assert_int_equal(open_pty(&master, path, sizeof(path)), 0);
        snprintf(file, sizeof(file), "/dev/ttySSFTESTF%d", (int) getpid());
        snprintf(link, sizeof(link), "/dev/ttySSFTESTL%d", (int) getpid());
        (void) unlink(file);
        (void) unlink(link);
        fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(symlink(path, link), 0);

        assert_int_equal(ttywarn_write(file, 0, "x", 1, 1000), -ENOTTY);
        assert_int_equal(stat(file, &st), 0);
        assert_true(st.st_size == 0); /* not written */
        assert_int_equal(ttywarn_write(link + strlen("/dev/"), 0, "x", 1, 1000), -ELOOP);
        {
                char got[64];
                assert_int_equal(read_master(master, got, sizeof(got)), 0); /* nothing reached it */
        }
        /* A character device that is no terminal. */
        assert_int_equal(unlink(link), 0);
        if (mknod(link, S_IFCHR | 0600, makedev(1, 3)) == 0) { /* /dev/null's numbers */
                assert_int_equal(ttywarn_write(link, 0, "x", 1, 1000), -ENOTTY);
                (void) unlink(link);
        }
        (void) unlink(file);

        /* Opened as the session's user: a terminal of hers is written, one she cannot open is
         * not, nor one someone else owns even when she could. */
        assert_int_equal(chown(path, 2001, (gid_t) -1), 0);
        assert_int_equal(chmod(path, 0620), 0);
        assert_int_equal(ttywarn_write(path, 2001, "mine", 4, 100000), 0);
        assert_int_equal(ttywarn_write(path, 2002, "theirs", 6, 100000), -EACCES);
        assert_int_equal(chmod(path, 0666), 0);
        assert_int_equal(ttywarn_write(path, 2002, "theirs", 6, 100000), -EPERM);
        {
                char got[64];
                read_master(master, got, sizeof(got));
                assert_string_equal(got, "mine");
        }
        close(master);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_device_names),
                cmocka_unit_test(test_format),
                cmocka_unit_test(test_write_pty),
                cmocka_unit_test(test_write_full_terminal),
                cmocka_unit_test(test_not_a_terminal),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
