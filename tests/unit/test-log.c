/* SPDX-License-Identifier: MIT */
/* Logging to stderr (log.c): the line format, and the lines a thread holds (log_hold()):
 * written together at the release, in order, at once for a warning, when the buffer is full,
 * never for another thread's lines, and nested holds released by the outermost release. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "log.h"
#include "stderr-capture.h"

static char dir[128]; /* made in $TMPDIR (or /tmp) by setup() */

/* The bytes written to the captured stderr so far. */
static off_t written(void) {
        struct stat st;

        assert_int_equal(stat(capture_path, &st), 0);
        return st.st_size;
}

static int setup(void **state) {
        const char *t = getenv("TMPDIR");

        (void) state;
        if (isempty(t) || strlen(t) > 60)
                t = "/tmp";
        (void) snprintf(dir, sizeof(dir), "%s/ssf-test-log-XXXXXX", t);
        assert_non_null(mkdtemp(dir));
        unsetenv("JOURNAL_STREAM");
        log_setup(true);
        log_set_max_level(LOG_INFO);
        return 0;
}

static int teardown(void **state) {
        char p[300];

        (void) state;
        (void) snprintf(p, sizeof(p), "%s/stderr.txt", dir);
        (void) unlink(p);
        (void) rmdir(dir);
        return 0;
}

static void test_lines(void **state) {
        _cleanup_free_ char *out = NULL;

        (void) state;
        capture_begin(dir);
        log_info("one %d", 1);
        log_debug("not shown");
        log_struct(LOG_NOTICE, SSF_MESSAGE_RISK_CHANGED, "two", "SSF_USER=bob", "SSF_LEVEL=high",
                   NULL);
        assert_int_equal(log_error_errno(-ENOENT, "three: %m"), -ENOENT);
        out = capture_end();
        assert_string_equal(out, "ssf-sessiond: info: one 1\n"
                                 "ssf-sessiond: notice: two [SSF_USER=bob] [SSF_LEVEL=high]\n"
                                 "ssf-sessiond: err: three: No such file or directory\n");
}

static void test_hold(void **state) {
        _cleanup_free_ char *out = NULL;
        off_t at;

        (void) state;
        capture_begin(dir);
        log_info("before");
        at = written();
        assert_true(at > 0);

        log_hold();
        log_info("held 1");
        log_struct(LOG_INFO, SSF_MESSAGE_SET_RECEIVED, "held 2", "SSF_JTI=j", NULL);
        assert_int_equal(written(), at); /* nothing yet */

        log_hold(); /* nested: the outer release writes */
        log_info("held 3");
        log_release();
        assert_int_equal(written(), at);

        log_warning("a warning"); /* written at once, after the lines held before it */
        assert_true(written() > at);
        at = written();
        log_info("held 4");
        assert_int_equal(written(), at);
        log_release();
        assert_true(written() > at);

        log_release(); /* one too many: nothing */
        log_info("after");
        out = capture_end();
        assert_string_equal(out, "ssf-sessiond: info: before\n"
                                 "ssf-sessiond: info: held 1\n"
                                 "ssf-sessiond: info: held 2 [SSF_JTI=j]\n"
                                 "ssf-sessiond: info: held 3\n"
                                 "ssf-sessiond: warning: a warning\n"
                                 "ssf-sessiond: info: held 4\n"
                                 "ssf-sessiond: info: after\n");
}

static void test_hold_full(void **state) {
        _cleanup_free_ char *out = NULL, *all = NULL;
        char line[1501];
        size_t n = 0, len;
        FILE *f;

        (void) state;
        memset(line, 'x', sizeof(line) - 1);
        line[sizeof(line) - 1] = '\0';
        capture_begin(dir);
        log_hold();
        /* 80 lines of ~1,520 bytes: past the 64 KiB held, so some are written before the
         * release, and none is lost or cut. */
        for (int i = 0; i < 80; i++)
                log_info("%02d %s", i, line);
        assert_true(written() > 0);
        assert_true(written() < 80 * 1500);
        log_release();
        out = capture_end();
        all = calloc(1, 200000);
        assert_non_null(all);
        f = fopen(capture_path, "re");
        assert_non_null(f);
        len = fread(all, 1, 199999, f);
        fclose(f);
        assert_int_equal(len, 80 * (strlen("ssf-sessiond: info: 00 ") + 1500 + 1));
        for (const char *p = all; (p = strstr(p, "ssf-sessiond: info: ")); p++) {
                char want[8];

                (void) snprintf(want, sizeof(want), "%02zu x", n);
                assert_memory_equal(p + strlen("ssf-sessiond: info: "), want, 4);
                assert_int_equal(strcspn(p, "\n"), strlen("ssf-sessiond: info: 00 ") + 1500);
                n++;
        }
        assert_int_equal(n, 80);
}

static void *other_thread(void *arg) {
        (void) arg;
        log_info("from another thread");
        return NULL;
}

static void test_hold_is_per_thread(void **state) {
        _cleanup_free_ char *out = NULL;
        pthread_t t;
        off_t at;

        (void) state;
        capture_begin(dir);
        log_hold();
        log_info("held");
        at = written();
        assert_int_equal(at, 0);
        assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_true(written() > at); /* not held by this thread's hold */
        log_release();
        out = capture_end();
        assert_string_equal(out, "ssf-sessiond: info: from another thread\n"
                                 "ssf-sessiond: info: held\n");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lines),
                cmocka_unit_test(test_hold),
                cmocka_unit_test(test_hold_full),
                cmocka_unit_test(test_hold_is_per_thread),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
