/* SPDX-License-Identifier: MIT */
/* logind.c against a logind on a test bus.
 *
 * The scope tests need no bus. The others talk to whatever logind is on the system bus and run
 * only when SSF_TEST_LOGIND_BUS is set (tests/integration/test_logind.py sets it together with
 * DBUS_SYSTEM_BUS_ADDRESS, after populating a python-dbusmock logind with this fixture):
 *
 *   uid 2001 "alice": session 3 (sshd, Remote=yes from 10.0.0.1, tty, pts/0)
 *                     session 5 (su-l, Remote=no, tty, pts/1)
 *   uid 2002 "bob":   session 7 (sshd, Remote=yes)
 *   uid 2003 "carol": session 9 with only Id, Name, User and Seat properties
 *   uid 2004 "dave":  session 11 (sshd, remote), session 12 (su-l, local) whose
 *                     TerminateSession fails with AccessDenied
 *   uid 2005:         no sessions
 *   uid 2006 "erin":  session 14 (sshd), which ends by itself before TerminateSession
 *                     (NoSuchSession)
 *
 * TerminateSession removes the session (as logind does once it is gone). SSF_TEST_LOGIND_CASE
 * selects the one test to run (a cmocka filter pattern), so that each case gets a fresh mock. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "logind.h"
#include "macro.h"

static int have_bus(void) {
        if (getenv("SSF_TEST_LOGIND_BUS"))
                return 1;
        print_message("SSF_TEST_LOGIND_BUS is not set: skipping a test that needs a logind on a test "
                      "bus (tests/integration/test_logind.py runs it)\n");
        return 0;
}

/* The test bus, or skips the test when there is none. */
static sd_bus *open_bus(void) {
        sd_bus *bus = NULL;

        if (!have_bus())
                skip();
        assert_int_equal(logind_open(&bus), 0);
        assert_non_null(bus);
        return bus;
}

/* Logs uid out of the sessions in scope: logind_logout_user() must return rc with these counts. */
static void logout(sd_bus *bus, uid_t uid, SessionScope scope, int rc, unsigned matched, unsigned terminated,
                   unsigned failed, LogoutResult *res) {
        assert_int_equal(logind_logout_user(bus, uid, scope, res), rc);
        assert_int_equal(res->matched, matched);
        assert_int_equal(res->terminated, terminated);
        assert_int_equal(res->failed, failed);
}

static const LogindSession *find_session(const LogindSession *s, size_t n, const char *id) {
        for (size_t i = 0; i < n; i++)
                if (streq(s[i].id, id))
                        return &s[i];
        return NULL;
}

/* Sorted, comma-separated ids of uid's sessions, e.g. "3,5". */
static void session_ids(sd_bus *bus, uid_t uid, char *buf, size_t size) {
        LogindSession *s = NULL;
        size_t n = 0;
        long ids[64];
        size_t k = 0;

        assert_int_equal(logind_list_user_sessions(bus, uid, &s, &n), 0);
        assert_true(n < ARRAY_SIZE(ids));
        for (size_t i = 0; i < n; i++)
                ids[k++] = strtol(s[i].id, NULL, 10);
        logind_sessions_free(s, n);
        for (size_t i = 1; i < k; i++)
                for (size_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
                        long t = ids[j];
                        ids[j] = ids[j - 1];
                        ids[j - 1] = t;
                }
        buf[0] = 0;
        for (size_t i = 0; i < k; i++)
                snprintf(buf + strlen(buf), size - strlen(buf), "%s%ld", i ? "," : "", ids[i]);
}

static void test_scope(void **state) {
        LogindSession ssh = { .id = (char[]){ "1" }, .remote = 1, .type = (char[]){ "tty" },
                              .class = (char[]){ "user" } };
        LogindSession tty = { .id = (char[]){ "2" }, .remote = 0, .type = (char[]){ "tty" },
                              .class = (char[]){ "user" } };
        LogindSession x11 = { .id = (char[]){ "3" }, .remote = 0, .type = (char[]){ "x11" },
                              .class = (char[]){ "user" } };
        LogindSession wl = { .id = (char[]){ "4" }, .remote = 0, .type = (char[]){ "wayland" } };
        LogindSession greeter = { .id = (char[]){ "5" }, .remote = 0, .type = (char[]){ "x11" },
                                  .class = (char[]){ "greeter" } };
        LogindSession lock = { .id = (char[]){ "6" }, .remote = 0, .type = (char[]){ "wayland" },
                               .class = (char[]){ "lock-screen" } };
        LogindSession unknown = { .id = (char[]){ "7" }, .remote = -1 };
        LogindSession cron = { .id = (char[]){ "8" }, .remote = 0, .type = (char[]){ "unspecified" },
                               .class = (char[]){ "background" } };

        assert_true(logind_session_in_scope(&ssh, SESSIONS_ALL));
        assert_true(logind_session_in_scope(&ssh, SESSIONS_REMOTE));
        assert_false(logind_session_in_scope(&ssh, SESSIONS_LOCAL));
        assert_false(logind_session_in_scope(&ssh, SESSIONS_GRAPHICAL));

        assert_true(logind_session_in_scope(&tty, SESSIONS_ALL));
        assert_false(logind_session_in_scope(&tty, SESSIONS_REMOTE));
        assert_true(logind_session_in_scope(&tty, SESSIONS_LOCAL));
        assert_false(logind_session_in_scope(&tty, SESSIONS_GRAPHICAL));

        assert_true(logind_session_in_scope(&x11, SESSIONS_GRAPHICAL));
        assert_true(logind_session_in_scope(&x11, SESSIONS_LOCAL));
        assert_true(logind_session_in_scope(&wl, SESSIONS_GRAPHICAL));

        for (SessionScope sc = SESSIONS_ALL; sc <= SESSIONS_GRAPHICAL; sc++) {
                assert_false(logind_session_in_scope(&greeter, sc));
                assert_false(logind_session_in_scope(&lock, sc));
        }

        assert_true(logind_session_in_scope(&unknown, SESSIONS_ALL));
        assert_false(logind_session_in_scope(&unknown, SESSIONS_REMOTE));
        assert_false(logind_session_in_scope(&unknown, SESSIONS_LOCAL));
        assert_false(logind_session_in_scope(&unknown, SESSIONS_GRAPHICAL));

        assert_true(logind_session_in_scope(&cron, SESSIONS_ALL));
        assert_true(logind_session_in_scope(&cron, SESSIONS_LOCAL));
        assert_false(logind_session_in_scope(&cron, SESSIONS_GRAPHICAL));

        assert_false(logind_session_in_scope(NULL, SESSIONS_ALL));
}

static void test_invalid_args(void **state) {
        LogoutResult r;
        LogindSession *s;
        size_t n;

        assert_int_equal(logind_open(NULL), -EINVAL);
        assert_int_equal(logind_logout_user(NULL, 1000, SESSIONS_ALL, &r), -EINVAL);
        assert_int_equal(logind_list_user_sessions(NULL, 1000, &s, &n), -EINVAL);
        logind_sessions_free(NULL, 0);
}

static void test_list(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        LogindSession *s = NULL;
        const LogindSession *a, *b;
        size_t n = 0;

        bus = open_bus();

        assert_int_equal(logind_list_user_sessions(bus, 2001, &s, &n), 0);
        assert_int_equal(n, 2);
        a = find_session(s, n, "3");
        b = find_session(s, n, "5");
        assert_non_null(a);
        assert_non_null(b);
        if (!a || !b)
                return;

        assert_int_equal(a->uid, 2001);
        assert_string_equal(a->user, "alice");
        assert_string_equal(a->path, "/org/freedesktop/login1/session/3");
        assert_string_equal(a->service, "sshd");
        assert_string_equal(a->type, "tty");
        assert_string_equal(a->remote_host, "10.0.0.1");
        assert_string_equal(a->tty, "pts/0");
        assert_string_equal(a->class, "user");
        assert_int_equal(a->remote, 1);

        assert_int_equal(b->uid, 2001);
        assert_string_equal(b->service, "su-l");
        assert_int_equal(b->remote, 0);
        assert_string_equal(b->tty, "pts/1");
        logind_sessions_free(s, n);

        /* Only the sessions of the uid asked for. */
        assert_int_equal(logind_list_user_sessions(bus, 2002, &s, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(s[0].id, "7");
        assert_int_equal(s[0].uid, 2002);
        logind_sessions_free(s, n);

        assert_int_equal(logind_list_user_sessions(bus, 2005, &s, &n), 0);
        assert_int_equal(n, 0);
        logind_sessions_free(s, n);
}

static void test_missing_properties(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        LogindSession *s = NULL;
        LogoutResult res;
        size_t n = 0;

        bus = open_bus();

        assert_int_equal(logind_list_user_sessions(bus, 2003, &s, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(s[0].id, "9");
        assert_string_equal(s[0].user, "carol");
        assert_int_equal(s[0].uid, 2003);
        assert_int_equal(s[0].remote, -1);
        assert_null(s[0].service);
        assert_null(s[0].type);
        assert_null(s[0].class);
        logind_sessions_free(s, n);

        /* Unknown Remote: neither remote nor local. */
        assert_int_equal(logind_logout_user(bus, 2003, SESSIONS_REMOTE, &res), 0);
        assert_int_equal(res.matched, 0);
        assert_int_equal(logind_logout_user(bus, 2003, SESSIONS_LOCAL, &res), 0);
        assert_int_equal(res.matched, 0);

        logout(bus, 2003, SESSIONS_ALL, 0, 1, 1, 0, &res);
        assert_non_null(strstr(res.summary, "9 (unknown service)"));
}

static void test_logout_all(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        LogoutResult res;
        char ids[128];

        bus = open_bus();

        logout(bus, 2001, SESSIONS_ALL, 0, 2, 2, 0, &res);
        print_message("summary: %s\n", res.summary);
        assert_non_null(strstr(res.summary, "terminated 2 of 2 sessions: "));
        assert_non_null(strstr(res.summary, "3 (sshd from 10.0.0.1)"));
        assert_non_null(strstr(res.summary, "5 (su-l on pts/1)"));

        session_ids(bus, 2001, ids, sizeof(ids));
        assert_string_equal(ids, "");
        session_ids(bus, 2002, ids, sizeof(ids));
        assert_string_equal(ids, "7");
}

static void test_logout_remote(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        LogoutResult res;
        char ids[128];

        bus = open_bus();

        logout(bus, 2001, SESSIONS_REMOTE, 0, 1, 1, 0, &res);
        assert_non_null(strstr(res.summary, "terminated 1 of 1 session: 3 (sshd from 10.0.0.1)"));
        assert_null(strstr(res.summary, "su-l"));

        session_ids(bus, 2001, ids, sizeof(ids));
        assert_string_equal(ids, "5");
}

static void test_logout_local(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        LogoutResult res;
        char ids[128];

        bus = open_bus();

        logout(bus, 2001, SESSIONS_LOCAL, 0, 1, 1, 0, &res);
        assert_non_null(strstr(res.summary, "5 (su-l on pts/1)"));
        assert_null(strstr(res.summary, "sshd"));

        session_ids(bus, 2001, ids, sizeof(ids));
        assert_string_equal(ids, "3");
}

static void test_logout_graphical(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        LogoutResult res;
        char ids[128];

        bus = open_bus();

        logout(bus, 2001, SESSIONS_GRAPHICAL, 0, 0, 0, 0, &res);
        assert_string_equal(res.summary, "no graphical sessions to terminate");

        session_ids(bus, 2001, ids, sizeof(ids));
        assert_string_equal(ids, "3,5");
}

static void test_logout_nobody(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        LogoutResult res;

        bus = open_bus();

        logout(bus, 2005, SESSIONS_ALL, 0, 0, 0, 0, &res);
        assert_string_equal(res.summary, "no sessions to terminate");
}

static void test_logout_partial_failure(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        LogoutResult res;
        char ids[128];

        bus = open_bus();

        logout(bus, 2004, SESSIONS_ALL, -EIO, 2, 1, 1, &res);
        print_message("summary: %s\n", res.summary);
        assert_non_null(strstr(res.summary, "terminated 1 of 2 sessions: 11 (sshd"));
        assert_non_null(strstr(res.summary, "; failed: 12 (su-l"));

        session_ids(bus, 2004, ids, sizeof(ids));
        assert_string_equal(ids, "12");
}

static void test_logout_already_gone(void **state) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        LogoutResult res;

        bus = open_bus();

        logout(bus, 2006, SESSIONS_ALL, 0, 1, 1, 0, &res);
        assert_non_null(strstr(res.summary, "terminated 1 of 1 session: 14 (sshd"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_scope),
                cmocka_unit_test(test_invalid_args),
                cmocka_unit_test(test_list),
                cmocka_unit_test(test_missing_properties),
                cmocka_unit_test(test_logout_all),
                cmocka_unit_test(test_logout_remote),
                cmocka_unit_test(test_logout_local),
                cmocka_unit_test(test_logout_graphical),
                cmocka_unit_test(test_logout_nobody),
                cmocka_unit_test(test_logout_partial_failure),
                cmocka_unit_test(test_logout_already_gone),
        };
        const char *filter = getenv("SSF_TEST_LOGIND_CASE");

        if (filter && *filter)
                cmocka_set_test_filter(filter);
        return cmocka_run_group_tests_name("logind", tests, NULL, NULL);
}
