/* SPDX-License-Identifier: MIT */
/* ssfctl's pure half: argument parsing, request building, reply formatting. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ctl-format.h"
#include "macro.h"
#include "ssf-ipc.h"

/* Parses a NULL-terminated list of arguments (argv[0] is added). */
static int parse(CtlArgs *ret, char **ret_error, ...) {
        char *argv[32] = { (char *) (uintptr_t) "ssfctl" };
        int argc = 1, r;
        va_list ap;

        va_start(ap, ret_error);
        for (const char *a; (a = va_arg(ap, const char *));) {
                assert_true(argc < 31);
                argv[argc++] = (char *) (uintptr_t) a;
        }
        va_end(ap);
        argv[argc] = NULL;

        r = ctl_parse_args(argc, argv, ret, ret_error);
        return r;
}

/* Expects a usage error whose message contains needle. */
static void expect_usage_error(const char *needle, ...) {
        char *argv[32] = { (char *) (uintptr_t) "ssfctl" };
        _cleanup_free_ char *error = NULL;
        CtlArgs a = { .limit = 12345 };
        int argc = 1;
        va_list ap;

        va_start(ap, needle);
        for (const char *s; (s = va_arg(ap, const char *));)
                argv[argc++] = (char *) (uintptr_t) s;
        va_end(ap);
        argv[argc] = NULL;

        assert_int_equal(ctl_parse_args(argc, argv, &a, &error), -EINVAL);
        assert_non_null(error);
        if (!strstr(error, needle))
                fail_msg("error '%s' does not contain '%s'", error, needle);
        /* *ret is left alone on failure. */
        assert_int_equal(a.limit, 12345);
}

static void test_parse_good(void **state) {
        CtlArgs a;
        char *error = NULL;

        assert_int_equal(parse(&a, &error, "status", NULL), 0);
        assert_null(error);
        assert_int_equal(a.action, CTL_ACTION_RUN);
        assert_int_equal(a.verb, CTL_VERB_STATUS);
        assert_false(a.json);
        assert_string_equal(a.socket, SSF_IPC_DEFAULT_SOCKET);
        assert_null(a.user);

        assert_int_equal(parse(&a, NULL, "--json", "users", NULL), 0);
        assert_int_equal(a.verb, CTL_VERB_USERS);
        assert_true(a.json);

        assert_int_equal(parse(&a, NULL, "users", "--json", NULL), 0);
        assert_true(a.json);

        assert_int_equal(parse(&a, NULL, "--socket", "/x/sock", "risk", "alice", NULL), 0);
        assert_int_equal(a.verb, CTL_VERB_RISK);
        assert_string_equal(a.socket, "/x/sock");
        assert_string_equal(a.user, "alice");

        assert_int_equal(parse(&a, NULL, "--socket=/y", "reset", "bob", NULL), 0);
        assert_int_equal(a.verb, CTL_VERB_RESET);
        assert_string_equal(a.socket, "/y");
        assert_string_equal(a.user, "bob");

        assert_int_equal(parse(&a, NULL, "history", NULL), 0);
        assert_int_equal(a.verb, CTL_VERB_HISTORY);
        assert_null(a.user);
        assert_int_equal(a.limit, CTL_HISTORY_LIMIT_DEFAULT);

        assert_int_equal(parse(&a, NULL, "history", "alice", "-n", "5", NULL), 0);
        assert_string_equal(a.user, "alice");
        assert_int_equal(a.limit, 5);

        assert_int_equal(parse(&a, NULL, "history", "-n7", "carol", NULL), 0);
        assert_string_equal(a.user, "carol");
        assert_int_equal(a.limit, 7);

        assert_int_equal(parse(&a, NULL, "-n", "10000", "history", NULL), 0);
        assert_int_equal(a.limit, 10000);
        assert_int_equal(parse(&a, NULL, "history", "-n", "1", NULL), 0);
        assert_int_equal(a.limit, 1);

        assert_int_equal(parse(&a, NULL, "set-risk", "alice", "HIGH", "--reason", "phished", NULL), 0);
        assert_int_equal(a.verb, CTL_VERB_SET_RISK);
        assert_string_equal(a.user, "alice");
        assert_string_equal(a.level, "high");
        assert_string_equal(a.reason, "phished");

        assert_int_equal(parse(&a, NULL, "set-risk", "--reason=lost laptop", "dave", "medium", NULL), 0);
        assert_string_equal(a.user, "dave");
        assert_string_equal(a.level, "medium");
        assert_string_equal(a.reason, "lost laptop");

        assert_int_equal(parse(&a, NULL, "set-risk", "erin", "none", NULL), 0);
        assert_string_equal(a.level, "none");
        assert_null(a.reason);

        assert_int_equal(parse(&a, NULL, "verify", NULL), 0);
        assert_int_equal(a.verb, CTL_VERB_VERIFY);
        assert_int_equal(parse(&a, NULL, "stream", NULL), 0);
        assert_int_equal(a.verb, CTL_VERB_STREAM);
        assert_int_equal(parse(&a, NULL, "metrics", NULL), 0);
        assert_int_equal(a.verb, CTL_VERB_METRICS);

        /* "--" ends the options. */
        assert_int_equal(parse(&a, NULL, "risk", "--", "-odd", NULL), 0);
        assert_string_equal(a.user, "-odd");

        /* --help and --version win over everything else. */
        assert_int_equal(parse(&a, NULL, "--help", NULL), 0);
        assert_int_equal(a.action, CTL_ACTION_HELP);
        assert_int_equal(parse(&a, NULL, "bogus", "-h", NULL), 0);
        assert_int_equal(a.action, CTL_ACTION_HELP);
        assert_int_equal(parse(&a, NULL, "--version", NULL), 0);
        assert_int_equal(a.action, CTL_ACTION_VERSION);
}

static void test_parse_usage_errors(void **state) {
        char long_user[SSF_IPC_MAX_USER + 8];
        char long_reason[CTL_REASON_MAX + 2];

        expect_usage_error("missing COMMAND", NULL);
        expect_usage_error("missing COMMAND", "--json", NULL);
        expect_usage_error("unknown command 'frobnicate'", "frobnicate", NULL);
        expect_usage_error("unknown command 'Status'", "Status", NULL);
        expect_usage_error("unknown option '--frob'", "--frob", "status", NULL);
        expect_usage_error("unknown option '-x'", "status", "-x", NULL);

        expect_usage_error("risk needs a USER", "risk", NULL);
        expect_usage_error("reset needs a USER", "reset", NULL);
        expect_usage_error("too many arguments for risk", "risk", "a", "b", NULL);
        expect_usage_error("too many arguments for status", "status", "extra", NULL);
        expect_usage_error("too many arguments for users", "users", "alice", NULL);
        expect_usage_error("too many arguments for history", "history", "a", "b", NULL);
        expect_usage_error("too many arguments", "history", "a", "b", "c", "d", "e", NULL);
        expect_usage_error("empty user name", "risk", "", NULL);
        expect_usage_error("option --transmitter is not valid with status", "status", "--transmitter",
                           "okta", NULL);
        expect_usage_error("option --transmitter needs a NAME", "stream", "--transmitter", NULL);
        expect_usage_error("invalid transmitter name 'Okta'", "stream", "--transmitter", "Okta", NULL);
        expect_usage_error("invalid transmitter name", "verify", "--transmitter",
                           "abcdefghijabcdefghijabcdefghijabc", NULL);

        expect_usage_error("set-risk needs a USER and a LEVEL", "set-risk", NULL);
        expect_usage_error("set-risk needs a USER and a LEVEL", "set-risk", "alice", NULL);
        expect_usage_error("invalid risk level 'extreme'", "set-risk", "alice", "extreme", NULL);
        expect_usage_error("invalid risk level ''", "set-risk", "alice", "", NULL);
        expect_usage_error("too many arguments for set-risk", "set-risk", "alice", "high", "x", NULL);

        expect_usage_error("-n needs a whole number", "history", "-n", "0", NULL);
        expect_usage_error("-n needs a whole number", "history", "-n", "100000001", NULL);
        expect_usage_error("--since needs", "history", "--since", "yesterday", NULL);
        expect_usage_error("--since is only valid with history", "users", "--since", "1d", NULL);
        expect_usage_error("-n needs a whole number", "history", "-n", "-1", NULL);
        expect_usage_error("-n needs a whole number", "history", "-n", "+5", NULL);
        expect_usage_error("-n needs a whole number", "history", "-n", " 5", NULL);
        expect_usage_error("-n needs a whole number", "history", "-n", "5x", NULL);
        expect_usage_error("-n needs a whole number", "history", "-n", "", NULL);
        expect_usage_error("-n needs a whole number", "history", "-n", "0x10", NULL);
        expect_usage_error("-n needs a whole number", "history", "-n", "99999999999999999999999", NULL);
        expect_usage_error("-n needs a whole number", "history", "-n", "4294967297", NULL);
        expect_usage_error("option -n needs a number", "history", "-n", NULL);
        expect_usage_error("option -n is only valid with history", "risk", "alice", "-n", "3", NULL);

        expect_usage_error("option --reason is only valid with set-risk", "reset", "alice", "--reason", "x", NULL);
        expect_usage_error("option --reason needs a TEXT", "set-risk", "alice", "high", "--reason", NULL);
        expect_usage_error("option --socket needs a PATH", "status", "--socket", NULL);
        expect_usage_error("option --socket needs a PATH", "--socket=", "status", NULL);
        expect_usage_error("control characters", "set-risk", "a", "high", "--reason", "x\033[2J", NULL);

        memset(long_reason, 'r', sizeof long_reason - 1);
        long_reason[sizeof long_reason - 1] = 0;
        expect_usage_error("--reason is longer than", "set-risk", "a", "high", "--reason", long_reason, NULL);

        memset(long_user, 'u', sizeof long_user - 1);
        long_user[sizeof long_user - 1] = 0;
        expect_usage_error("invalid user name", "risk", long_user, NULL);
        expect_usage_error("invalid user name", "risk", "al\nice", NULL);
}

static void assert_json_equal(const char *text, const char *expected) {
        json_t *a = json_loads(text, JSON_REJECT_DUPLICATES, NULL), *b = json_loads(expected, 0, NULL);

        assert_non_null(a);
        assert_non_null(b);
        if (!json_equal(a, b))
                fail_msg("JSON '%s' != expected '%s'", text, expected);
        json_decref(a);
        json_decref(b);
}

static void expect_request(const char *expected, ...) {
        char *argv[32] = { (char *) (uintptr_t) "ssfctl" };
        _cleanup_free_ char *args = NULL;
        int argc = 1;
        CtlArgs a;
        va_list ap;

        va_start(ap, expected);
        for (const char *s; (s = va_arg(ap, const char *));)
                argv[argc++] = (char *) (uintptr_t) s;
        va_end(ap);

        assert_int_equal(ctl_parse_args(argc, argv, &a, NULL), 0);
        assert_int_equal(ctl_build_request(&a, &args), 0);
        assert_json_equal(args, expected);
}

static void test_build_request(void **state) {
        expect_request("{}", "status", NULL);
        expect_request("{}", "users", NULL);
        expect_request("{}", "stream", NULL);
        expect_request("{}", "metrics", NULL);
        expect_request("{\"user\": \"alice\"}", "risk", "alice", NULL);
        expect_request("{\"user\": \"bob\"}", "reset", "bob", NULL);
        expect_request("{\"limit\": 20}", "history", NULL);
        expect_request("{\"user\": \"alice\", \"limit\": 3}", "history", "alice", "-n", "3", NULL);
        expect_request("{\"user\": \"alice\", \"level\": \"low\", \"reason\": null}", "set-risk", "alice", "Low",
                       NULL);
        expect_request("{\"user\": \"alice\", \"level\": \"high\", \"reason\": \"seen on a paste site\"}",
                       "set-risk", "alice", "high", "--reason", "seen on a paste site", NULL);
        expect_request("{\"timeout_ms\": 30000}", "verify", NULL);
        expect_request("{}", "transmitters", NULL);
        expect_request("{\"transmitter\": \"okta\"}", "stream", "--transmitter", "okta", NULL);
        expect_request("{\"timeout_ms\": 30000, \"transmitter\": \"mdm-2\"}", "--transmitter=mdm-2",
                       "verify", NULL);

        assert_string_equal(ctl_verb_to_string(CTL_VERB_SET_RISK), "set-risk");
        assert_int_equal(ctl_verb_from_string("set-risk"), CTL_VERB_SET_RISK);
        assert_int_equal(ctl_verb_from_string("nope"), _CTL_VERB_INVALID);
        assert_null(ctl_verb_to_string(_CTL_VERB_MAX));
}

static void expect_text(CtlVerb verb, bool json, const char *body, int expected_r, const char *expected) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = ctl_format_reply(verb, json, body, &text);
        assert_int_equal(r, expected_r);
        assert_non_null(text);
        if (!streq(text, expected))
                fail_msg("got:\n%s\nexpected:\n%s", text, expected);
}

static void expect_bad(CtlVerb verb, bool json, const char *body) {
        char *text = (char *) (uintptr_t) "untouched";

        assert_int_equal(ctl_format_reply(verb, json, body, &text), -EBADMSG);
        assert_string_equal(text, "untouched");
}

static const char status_body[] =
        "{\"stream\": {\"stream_id\": \"s-1\", \"issuer\": \"https://idp.example.com\", \"status\": \"enabled\","
        " \"delivery\": \"poll\", \"endpoint_url\": \"https://idp.example.com/ssf/poll\","
        " \"audience\": \"https://host1.example.com/ssf\","
        " \"events_delivered\": [\"https://schemas.openid.net/secevent/caep/event-type/session-revoked\","
        " \"https://schemas.openid.net/secevent/risc/event-type/account-disabled\"],"
        " \"last_poll\": \"2025-03-01T10:00:00Z\", \"last_error\": null},"
        " \"counters\": {\"sets_received\": 12, \"sets_acknowledged\": 11, \"sets_rejected\": 1,"
        " \"sets_duplicate\": 0, \"subjects_unmapped\": 2, \"actions_logout\": 3, \"actions_workflow\": 1,"
        " \"actions_failed\": 0},"
        " \"version\": \"0.1.0\", \"started\": \"2025-03-01T09:00:00Z\"}";

static void test_format_status(void **state) {
        expect_text(CTL_VERB_STATUS, false, status_body, 0,
                    "version: 0.1.0\n"
                    "started: 2025-03-01T09:00:00Z\n"
                    "stream_id: s-1\n"
                    "issuer: https://idp.example.com\n"
                    "status: enabled\n"
                    "delivery: poll\n"
                    "endpoint_url: https://idp.example.com/ssf/poll\n"
                    "audience: https://host1.example.com/ssf\n"
                    "events_delivered: session-revoked, account-disabled\n"
                    "last_poll: 2025-03-01T10:00:00Z\n"
                    "last_error: -\n"
                    "sets_received: 12\n"
                    "sets_acknowledged: 11\n"
                    "sets_rejected: 1\n"
                    "sets_duplicate: 0\n"
                    "subjects_unmapped: 2\n"
                    "actions_logout: 3\n"
                    "actions_workflow: 1\n"
                    "actions_failed: 0\n");

        expect_text(CTL_VERB_STATUS, true, "{\"stream\": {\"status\": \"enabled\"}, \"counters\": {}}", 0,
                    "{\n"
                    "  \"stream\": {\n"
                    "    \"status\": \"enabled\"\n"
                    "  },\n"
                    "  \"counters\": {}\n"
                    "}\n");

        expect_bad(CTL_VERB_STATUS, false, "{\"counters\": {}}");
        expect_bad(CTL_VERB_STATUS, false, "{\"stream\": [], \"counters\": {}}");
}

static const char risk_body[] =
        "{\"user\": \"alice\", \"level\": \"high\", \"detections\": ["
        "{\"detection\": \"device-compliance-change\", \"level\": \"high\", \"since\": \"2025-03-01T10:00:00Z\","
        " \"expires\": \"2025-03-02T10:00:00Z\", \"jti\": \"abc123\", \"reason\": null},"
        "{\"detection\": \"credential-change\", \"level\": \"medium\", \"since\": \"2025-03-01T09:30:00Z\","
        " \"expires\": null, \"jti\": \"def456\", \"reason\": \"admin says so\"}]}";

static void test_format_risk(void **state) {
        expect_text(CTL_VERB_RISK, false, risk_body, 0,
                    "alice: high\n"
                    "  device-compliance-change  high    since 2025-03-01T10:00:00Z  expires 2025-03-02T10:00:00Z"
                    "  jti abc123\n"
                    "  credential-change         medium  since 2025-03-01T09:30:00Z  expires -  jti def456"
                    "  reason admin says so\n");

        expect_text(CTL_VERB_RISK, false, "{\"user\": \"bob\", \"level\": \"none\", \"detections\": []}", 0,
                    "bob: none\n");

        /* --json keeps the daemon's key order. */
        expect_text(CTL_VERB_RISK, true, "{\"user\": \"bob\", \"level\": \"none\", \"detections\": []}", 0,
                    "{\n"
                    "  \"user\": \"bob\",\n"
                    "  \"level\": \"none\",\n"
                    "  \"detections\": []\n"
                    "}\n");

        /* Network-supplied strings cannot drive the terminal (C0, DEL, C1 controls) nor
         * disguise themselves (a bidi override, a zero-width space); other text stays. */
        expect_text(CTL_VERB_RISK, false,
                    "{\"user\": \"eve\", \"level\": \"low\", \"detections\": [{\"detection\": \"opt-in\","
                    " \"level\": \"low\", \"since\": null, \"expires\": null, \"jti\": \"x\\u001b[31my\\u007f\\u009bz\"}]}",
                    0,
                    "eve: low\n"
                    "  opt-in  low  since -  expires -  jti x?[31my??z\n");
        expect_text(CTL_VERB_RISK, false,
                    "{\"user\": \"eve\", \"level\": \"low\", \"detections\": [{\"detection\": \"opt-in\","
                    " \"level\": \"low\", \"since\": null, \"expires\": null,"
                    " \"jti\": \"exe.\\u202etxt\\u200b\u00e9\u4e2d\"}]}",
                    0,
                    "eve: low\n"
                    "  opt-in  low  since -  expires -  jti exe.?txt?\u00e9\u4e2d\n");

        expect_bad(CTL_VERB_RISK, false, "{\"level\": \"high\"}");
        expect_bad(CTL_VERB_RISK, false, "{\"user\": \"a\", \"level\": \"high\", \"detections\": {}}");
        expect_bad(CTL_VERB_RISK, false, "{\"user\": \"a\", \"level\": \"high\", \"detections\": [1]}");
}

static void test_format_history(void **state) {
        expect_text(CTL_VERB_HISTORY, false,
                    "{\"entries\": ["
                    "{\"time\": \"2025-03-01T10:00:05Z\", \"user\": \"alice\", \"jti\": \"j2\","
                    " \"event\": \"https://schemas.openid.net/secevent/caep/event-type/device-compliance-change\","
                    " \"detection\": \"device-compliance-change\", \"level_before\": \"none\", \"level_after\": \"high\","
                    " \"rule\": \"logout-high\", \"action\": \"logout\", \"result\": \"ok\", \"duration_ms\": 42},"
                    "{\"time\": \"2025-03-01T09:00:00Z\", \"user\": \"bob\", \"jti\": null, \"event\": null,"
                    " \"detection\": \"manual\", \"level_before\": \"low\", \"level_after\": \"medium\","
                    " \"rule\": null, \"action\": \"none\", \"result\": null, \"duration_ms\": null}]}",
                    0,
                    "TIME                  USER   EVENT                     DETECTION                 LEVEL       "
                    "RULE         ACTION  RESULT\n"
                    "2025-03-01T10:00:05Z  alice  device-compliance-change  device-compliance-change  none→high   "
                    "logout-high  logout  ok\n"
                    "2025-03-01T09:00:00Z  bob    -                         manual                    low→medium "
                    " -            none    -\n");

        expect_text(CTL_VERB_HISTORY, false, "{\"entries\": []}", 0, "No history.\n");
        expect_bad(CTL_VERB_HISTORY, false, "{}");
        expect_bad(CTL_VERB_HISTORY, false, "{\"entries\": [\"x\"]}");
}

static void test_format_users(void **state) {
        expect_text(CTL_VERB_USERS, false,
                    "{\"users\": [{\"user\": \"alice\", \"level\": \"high\", \"updated\": \"2025-03-01T10:00:05Z\"},"
                    " {\"user\": \"christopher\", \"level\": \"low\", \"updated\": null}]}",
                    0,
                    "USER         LEVEL  UPDATED\n"
                    "alice        high   2025-03-01T10:00:05Z\n"
                    "christopher  low    -\n");
        expect_text(CTL_VERB_USERS, false, "{\"users\": []}", 0, "No users with a risk level above none.\n");
        expect_text(CTL_VERB_USERS, true, "{\"users\": []}", 0, "{\n  \"users\": []\n}\n");
        expect_bad(CTL_VERB_USERS, false, "{\"users\": null}");
}

static void test_format_change(void **state) {
        const char body[] = "{\"user\": \"alice\", \"level_before\": \"high\", \"level_after\": \"none\"}";

        expect_text(CTL_VERB_RESET, false, body, 0, "alice: high → none\n");
        expect_text(CTL_VERB_SET_RISK, false,
                    "{\"user\": \"bob\", \"level_before\": \"none\", \"level_after\": \"medium\"}", 0,
                    "bob: none → medium\n");
        expect_text(CTL_VERB_RESET, true, body, 0,
                    "{\n  \"user\": \"alice\",\n  \"level_before\": \"high\",\n  \"level_after\": \"none\"\n}\n");
        expect_bad(CTL_VERB_SET_RISK, false, "{\"level_before\": \"none\"}");
}

static void test_format_verify(void **state) {
        expect_text(CTL_VERB_VERIFY, false,
                    "{\"state\": \"abc\", \"requested\": \"2025-03-01T10:00:00Z\", \"received\": true,"
                    " \"result\": \"ok\"}",
                    0,
                    "state: abc\n"
                    "requested: 2025-03-01T10:00:00Z\n"
                    "received: yes\n"
                    "result: ok\n");
        /* Not received: the text is printed and the command fails. */
        expect_text(CTL_VERB_VERIFY, false,
                    "{\"state\": \"abc\", \"requested\": \"2025-03-01T10:00:00Z\", \"received\": false,"
                    " \"result\": \"timeout\"}",
                    1,
                    "state: abc\n"
                    "requested: 2025-03-01T10:00:00Z\n"
                    "received: no\n"
                    "result: timeout\n");
        expect_text(CTL_VERB_VERIFY, true, "{\"received\": false}", 1, "{\n  \"received\": false\n}\n");
        expect_text(CTL_VERB_VERIFY, true, "{\"received\": true}", 0, "{\n  \"received\": true\n}\n");
        expect_bad(CTL_VERB_VERIFY, false, "{\"state\": \"abc\"}");
}

static void test_format_stream(void **state) {
        expect_text(CTL_VERB_STREAM, false,
                    "{\"stream_id\": \"s-1\", \"iss\": \"https://idp\", \"aud\": [\"https://a\", \"https://b\"],"
                    " \"delivery\": {\"method\": \"urn:ietf:rfc:8936\", \"endpoint_url\": \"https://idp/poll\"},"
                    " \"min_verification_interval\": 60, \"description\": null, \"status\": \"enabled\"}",
                    0,
                    "stream_id: s-1\n"
                    "iss: https://idp\n"
                    "aud: https://a, https://b\n"
                    "delivery.method: urn:ietf:rfc:8936\n"
                    "delivery.endpoint_url: https://idp/poll\n"
                    "min_verification_interval: 60\n"
                    "description: -\n"
                    "status: enabled\n");
}

/* ssfctl transmitters, and the stream of one transmitter (its new shape). */
static void test_format_transmitters(void **state) {
        expect_text(CTL_VERB_TRANSMITTERS, false,
                    "{\"transmitters\": [{\"name\": \"default\", \"issuer\": \"https://idp\", "
                    "\"delivery\": \"urn:ietf:rfc:8936\", \"stream_id\": \"s-1\", \"status\": \"enabled\", "
                    "\"counters\": {\"sets_received\": 3}}, {\"name\": \"mdm\", \"issuer\": \"https://mdm\", "
                    "\"delivery\": \"urn:ietf:rfc:8935\", \"stream_id\": null, \"status\": \"error\", "
                    "\"counters\": {\"sets_received\": 0}}]}",
                    0,
                    "transmitter.default.issuer: https://idp\n"
                    "transmitter.default.delivery: urn:ietf:rfc:8936\n"
                    "transmitter.default.stream_id: s-1\n"
                    "transmitter.default.status: enabled\n"
                    "transmitter.default.counters.sets_received: 3\n"
                    "transmitter.mdm.issuer: https://mdm\n"
                    "transmitter.mdm.delivery: urn:ietf:rfc:8935\n"
                    "transmitter.mdm.stream_id: -\n"
                    "transmitter.mdm.status: error\n"
                    "transmitter.mdm.counters.sets_received: 0\n");
        expect_text(CTL_VERB_STREAM, false,
                    "{\"transmitter\": \"okta\", \"stream_id\": \"s-1\", \"status\": \"paused\", "
                    "\"configuration\": {\"iss\": \"https://okta\"}}",
                    0,
                    "transmitter: okta\n"
                    "stream_id: s-1\n"
                    "status: paused\n"
                    "configuration.iss: https://okta\n");
        /* status with several transmitters and none named default: no single stream. */
        expect_text(CTL_VERB_STATUS, false,
                    "{\"stream\": null, \"transmitters\": [{\"name\": \"a\", \"status\": \"enabled\", "
                    "\"counters\": {\"polls\": 2}}], \"counters\": {\"sets_received\": 1}, "
                    "\"version\": \"1\"}",
                    0,
                    "version: 1\n"
                    "sets_received: 1\n"
                    "transmitter.a.status: enabled\n"
                    "transmitter.a.counters.polls: 2\n");
        expect_bad(CTL_VERB_TRANSMITTERS, false, "{\"transmitters\": [{\"issuer\": \"x\"}]}");
        expect_bad(CTL_VERB_TRANSMITTERS, false, "{\"transmitters\": {}}");
}

static void test_format_metrics(void **state) {
        const char body[] = "{\"text\": \"# TYPE ssf_sets_received_total counter\\nssf_sets_received_total 12\\n\"}";
        const char expected[] = "# TYPE ssf_sets_received_total counter\nssf_sets_received_total 12\n";

        /* The exposition text in both modes. */
        expect_text(CTL_VERB_METRICS, false, body, 0, expected);
        expect_text(CTL_VERB_METRICS, true, body, 0, expected);
        expect_text(CTL_VERB_METRICS, false, "{\"text\": \"a 1\"}", 0, "a 1\n");
        expect_bad(CTL_VERB_METRICS, false, "{\"text\": 3}");
}

static void test_format_bad_bodies(void **state) {
        _cleanup_free_ char *text = NULL;

        for (CtlVerb v = 0; v < _CTL_VERB_MAX; v++) {
                expect_bad(v, false, NULL);
                expect_bad(v, true, NULL);
                expect_bad(v, false, "");
                expect_bad(v, false, "not json");
                expect_bad(v, true, "[1, 2]");
                expect_bad(v, false, "{\"a\": 1, \"a\": 2}");
                expect_bad(v, false, "{\"user\": \"alice\"} trailing");
        }
        assert_int_equal(ctl_format_reply(_CTL_VERB_MAX, false, "{}", &text), -EINVAL);
        assert_null(text);
}

static void test_format_error(void **state) {
        _cleanup_free_ char *a = ctl_format_error(-ENOENT, "no such user 'zed'");
        _cleanup_free_ char *b = ctl_format_error(-EPERM, NULL);
        _cleanup_free_ char *c = ctl_format_error(-EPERM, "");
        _cleanup_free_ char *d = ctl_format_error(-ENOENT, NULL);
        _cleanup_free_ char *e = ctl_format_error(-EINVAL, "bad\033]0;title\007");

        assert_string_equal(a, "ssfctl: no such user 'zed'");
        assert_string_equal(b, "ssfctl: permission denied");
        assert_string_equal(c, "ssfctl: permission denied");
        assert_string_equal(d, "ssfctl: No such file or directory");
        assert_string_equal(e, "ssfctl: bad?]0;title?");
}

static void test_usage(void **state) {
        const char *u = ctl_usage();

        /* Every command is in the usage text. */
        for (CtlVerb v = 0; v < _CTL_VERB_MAX; v++) {
                _cleanup_free_ char *line = NULL;

                if (ctl_verb_is_admin(v))
                        continue; /* two words on the command line: below */

                assert_true(asprintf(&line, "\n  %s", ctl_verb_to_string(v)) > 0);
                if (!strstr(u, line))
                        fail_msg("usage lacks '%s'", ctl_verb_to_string(v));
        }
        assert_non_null(strstr(u, "\n  stream pause|resume|disable [--reason TEXT]"));
        assert_non_null(strstr(u, "\n  stream delete"));
        assert_non_null(strstr(u, "\n  stream create"));
        assert_non_null(strstr(u, "\n  subjects add|remove USER|SUBJECT-JSON"));
        assert_non_null(strstr(u, "--json"));
        assert_non_null(strstr(u, "--socket PATH"));
}

/* stream pause|resume|disable|delete|create, subjects add|remove: two words, the wire verbs. */
static void test_admin_verbs(void **state) {
        char big[CTL_SUBJECT_MAX + 2];
        CtlArgs a;

        assert_int_equal(parse(&a, NULL, "stream", "pause", "--reason", "maintenance", NULL), 0);
        assert_int_equal(a.verb, CTL_VERB_STREAM_STATUS);
        assert_string_equal(a.stream_status, "paused");
        assert_string_equal(a.reason, "maintenance");
        assert_int_equal(parse(&a, NULL, "stream", "resume", NULL), 0);
        assert_string_equal(a.stream_status, "enabled");
        assert_null(a.reason);
        assert_int_equal(parse(&a, NULL, "--json", "stream", "disable", NULL), 0);
        assert_string_equal(a.stream_status, "disabled");
        assert_int_equal(parse(&a, NULL, "stream", "delete", NULL), 0);
        assert_int_equal(a.verb, CTL_VERB_STREAM_DELETE);
        assert_int_equal(parse(&a, NULL, "stream", "create", NULL), 0);
        assert_int_equal(a.verb, CTL_VERB_STREAM_CREATE);
        assert_int_equal(parse(&a, NULL, "subjects", "add", "alice", NULL), 0);
        assert_int_equal(a.verb, CTL_VERB_SUBJECTS_ADD);
        assert_string_equal(a.subject, "alice");
        assert_int_equal(parse(&a, NULL, "subjects", "remove", "{\"format\":\"opaque\",\"id\":\"x\"}",
                               NULL), 0);
        assert_int_equal(a.verb, CTL_VERB_SUBJECTS_REMOVE);

        expect_request("{\"status\": \"paused\", \"reason\": \"why\"}", "stream", "pause", "--reason",
                       "why", NULL);
        expect_request("{\"status\": \"enabled\"}", "stream", "resume", NULL);
        expect_request("{}", "stream", "delete", NULL);
        expect_request("{\"subject\": \"bob\"}", "subjects", "add", "bob", NULL);
        assert_string_equal(ctl_verb_to_string(CTL_VERB_STREAM_STATUS), "stream-status");
        assert_string_equal(ctl_verb_to_string(CTL_VERB_SUBJECTS_REMOVE), "subjects-remove");

        /* The wire names are not commands. */
        expect_usage_error("unknown command 'stream-delete'", "stream-delete", NULL);
        assert_int_equal(ctl_verb_from_string("subjects-add"), _CTL_VERB_INVALID);
        expect_usage_error("unknown stream command 'stop'", "stream", "stop", NULL);
        expect_usage_error("too many arguments for stream delete", "stream", "delete", "x", NULL);
        expect_usage_error("subjects needs add or remove", "subjects", NULL);
        expect_usage_error("subjects needs add or remove", "subjects", "list", NULL);
        expect_usage_error("subjects add needs one USER", "subjects", "add", NULL);
        expect_usage_error("subjects remove needs one USER", "subjects", "remove", "a", "b", NULL);
        expect_usage_error("only valid with set-risk", "stream", "delete", "--reason", "x", NULL);
        expect_usage_error("control characters", "stream", "pause", "--reason", "a\tb", NULL);
        expect_usage_error("must be 1 to", "subjects", "add", "", NULL);
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        expect_usage_error("must be 1 to", "subjects", "add", big, NULL);
        expect_usage_error("not UTF-8", "subjects", "add", "\xff\xfe", NULL);
}

/* history: any N, and --since as epoch seconds, RFC 3339 UTC or a duration before now. */
static void test_history_since(void **state) {
        CtlArgs a;
        long long t;

        assert_int_equal(parse(&a, NULL, "history", "-n", "100000", NULL), 0);
        assert_int_equal(a.limit, 100000);
        assert_int_equal(a.since, -1);
        assert_int_equal(ctl_parse_since("1764547200", 2000000000, &t), 0);
        assert_true(t == 1764547200);
        assert_int_equal(ctl_parse_since("2025-12-01T00:00:00Z", 0, &t), 0);
        assert_true(t == 1764547200);
        assert_int_equal(ctl_parse_since("24h", 1764547200, &t), 0);
        assert_true(t == 1764547200 - 86400);
        assert_int_equal(ctl_parse_since("7d", 1000, &t), 0);
        assert_true(t == 0);
        assert_int_equal(ctl_parse_since("90s", 1000, &t), 0);
        assert_true(t == 910);
        assert_int_equal(ctl_parse_since("", 0, &t), -EINVAL);
        assert_int_equal(ctl_parse_since("5w", 0, &t), -EINVAL);
        assert_int_equal(ctl_parse_since("2025-12-01 00:00:00", 0, &t), -EINVAL);
        assert_int_equal(ctl_parse_since("2025-12-01T00:00:00Zjunk", 0, &t), -EINVAL);
}

/* The parts of a streamed answer are joined into one {"entries": [...]}. */
static void test_join_parts(void **state) {
        json_t *j = NULL;

        assert_int_equal(ctl_join_parts(&j, "{\"entries\":[{\"jti\":\"a\"}]}"), 0);
        assert_int_equal(ctl_join_parts(&j, "{\"entries\":[{\"jti\":\"b\"},{\"jti\":\"c\"}]}"), 0);
        assert_int_equal(ctl_join_parts(&j, "{\"entries\":[]}"), 0);
        assert_int_equal(json_array_size(json_object_get(j, "entries")), 3);
        assert_int_equal(ctl_join_parts(&j, "[1]"), -EBADMSG);
        assert_int_equal(ctl_join_parts(&j, "{\"users\":[]}"), -EBADMSG);
        assert_int_equal(ctl_join_parts(&j, NULL), -EBADMSG);
        json_decref(j);
        j = NULL;
        assert_int_equal(ctl_join_parts(&j, NULL), 0);
        assert_null(j);
}

static const char *const history_parts[] = {
        "{\"entries\":[{\"time\":\"2025-03-01T10:00:05Z\",\"user\":\"alice\",\"jti\":\"j2\","
        "\"event\":\"https://schemas.openid.net/secevent/caep/event-type/session-revoked\","
        "\"detection\":\"session-revoked\",\"level_before\":\"none\",\"level_after\":\"high\","
        "\"rule\":\"r\",\"action\":\"logout\",\"result\":\"ok: \\u001b[2J\\u009b1m\",\"duration_ms\":4}]}",
        "{\"entries\":[]}",
        "{\"entries\":[{\"time\":\"2025-03-01T09:00:00Z\",\"user\":\"a-much-longer-name\",\"jti\":null,"
        "\"event\":null,\"detection\":\"manual\",\"level_before\":\"low\",\"level_after\":\"medium\","
        "\"rule\":null,\"action\":\"none\",\"result\":null,\"duration_ms\":7},"
        "{\"time\":\"2025-03-01T08:00:00Z\",\"user\":\"bob\",\"jti\":\"j0\",\"event\":null,"
        "\"detection\":\"manual\",\"level_before\":\"high\",\"level_after\":\"none\",\"rule\":null,"
        "\"action\":\"none\",\"result\":\"a\\nb\",\"duration_ms\":null}]}",
};

/* What ctl_history_put() prints after the frames parts[0..n). */
static char *history_put_text(bool json, const char *const *parts, size_t n) {
        CtlHistory *h = ctl_history_new(json);
        char *text = NULL;
        size_t len = 0;
        FILE *f;

        assert_non_null(h);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(ctl_history_add(h, parts[i]), 0);
        f = open_memstream(&text, &len);
        assert_non_null(f);
        assert_int_equal(ctl_history_put(h, f), 0);
        assert_int_equal(fclose(f), 0);
        ctl_history_free(h);
        return text;
}

/* What ctl_format_reply() prints for the frames parts[0..n) joined. */
static char *history_joined_text(bool json, const char *const *parts, size_t n) {
        _cleanup_free_ char *joined_text = NULL;
        json_t *joined = NULL;
        char *text = NULL;

        for (size_t i = 0; i < n; i++)
                assert_int_equal(ctl_join_parts(&joined, parts[i]), 0);
        joined_text = json_dumps(joined, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(joined);
        assert_int_equal(ctl_format_reply(CTL_VERB_HISTORY, json, joined_text, &text), 0);
        return text;
}

/* history made frame by frame is what ctl_format_reply() makes of the joined answer, as a table
 * (widths over every frame's rows, control characters replaced, "No history." for none) and
 * as JSON. */
static void test_history_frames(void **state) {
        for (int json = 0; json <= 1; json++)
                for (size_t n = 1; n <= ARRAY_SIZE(history_parts); n++) {
                        _cleanup_free_ char *got = history_put_text(json, history_parts, n);
                        _cleanup_free_ char *want = history_joined_text(json, history_parts, n);

                        assert_string_equal(got, want);
                }
        {
                _cleanup_free_ char *t = history_put_text(false, history_parts, 3);

                assert_non_null(strstr(t, "a-much-longer-name  -      "));
                assert_non_null(strstr(t, "ok: ?[2J?1m\n"));
                assert_non_null(strstr(t, "a?b\n"));
        }
        {
                _cleanup_free_ char *t = history_put_text(false, history_parts + 1, 1);
                _cleanup_free_ char *j = history_put_text(true, history_parts + 1, 1);

                assert_string_equal(t, "No history.\n");
                assert_string_equal(j, "{\n  \"entries\": []\n}\n");
        }

        /* Bad frames. */
        for (int json = 0; json <= 1; json++) {
                CtlHistory *h = ctl_history_new(json);

                assert_non_null(h);
                assert_int_equal(ctl_history_add(h, NULL), -EBADMSG);
                assert_int_equal(ctl_history_add(h, "[1]"), -EBADMSG);
                assert_int_equal(ctl_history_add(h, "{}"), -EBADMSG);
                assert_int_equal(ctl_history_add(h, "{\"entries\":{}}"), -EBADMSG);
                assert_int_equal(ctl_history_add(h, "not json"), -EBADMSG);
                ctl_history_free(h);
        }
        {
                CtlHistory *h = ctl_history_new(false);

                assert_non_null(h);
                assert_int_equal(ctl_history_add(h, "{\"entries\":[\"x\"]}"), -EBADMSG);
                ctl_history_free(h);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_good),
                cmocka_unit_test(test_parse_usage_errors),
                cmocka_unit_test(test_history_since),
                cmocka_unit_test(test_join_parts),
                cmocka_unit_test(test_history_frames),
                cmocka_unit_test(test_build_request),
                cmocka_unit_test(test_format_status),
                cmocka_unit_test(test_format_risk),
                cmocka_unit_test(test_format_history),
                cmocka_unit_test(test_format_users),
                cmocka_unit_test(test_format_change),
                cmocka_unit_test(test_format_verify),
                cmocka_unit_test(test_format_stream),
                cmocka_unit_test(test_format_transmitters),
                cmocka_unit_test(test_format_metrics),
                cmocka_unit_test(test_format_bad_bodies),
                cmocka_unit_test(test_format_error),
                cmocka_unit_test(test_usage),
                cmocka_unit_test(test_admin_verbs),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
