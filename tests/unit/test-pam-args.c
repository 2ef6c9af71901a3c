/* SPDX-License-Identifier: MIT */
/* pam_ssf.so module arguments (pam_ssf/args.c), and the text a denied user reads
 * (pam_ssf/client.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "args.h"
#include "client.h"
#include "macro.h"
#include "ssf-ipc.h"

static int parse(PamSsfArgs *a, const char **bad, int argc, ...) {
        const char *argv[16];
        va_list ap;

        assert_true(argc <= (int) ARRAY_SIZE(argv));
        va_start(ap, argc);
        for (int i = 0; i < argc; i++)
                argv[i] = va_arg(ap, const char *);
        va_end(ap);
        return pam_ssf_args_parse(argc, argv, a, bad);
}

static void test_defaults(void **state) {
        PamSsfArgs a;

        assert_int_equal(pam_ssf_args_parse(0, NULL, &a, NULL), 0);
        assert_int_equal(a.deny, RISK_HIGH);
        assert_int_equal(a.failmode, PAM_SSF_FAILMODE_OPEN);
        assert_int_equal(a.timeout_ms, 1000);
        assert_string_equal(a.socket, "/run/ssf-sessiond/socket");
        assert_string_equal(a.snapshot, "/var/lib/ssf-sessiond/pam-snapshot");
        assert_false(a.quiet);
        assert_false(a.explain);
        assert_false(a.debug);
        assert_string_equal(pam_ssf_failmode_to_string(a.failmode), "open");
}

static void test_all_arguments(void **state) {
        const char *bad = NULL;
        PamSsfArgs a;

        assert_int_equal(parse(&a, &bad, 8, "deny=medium", "failmode=closed", "timeout=250",
                               "socket=/tmp/x.sock", "snapshot=/etc/snap", "quiet", "explain", "debug"),
                         0);
        assert_null(bad);
        assert_int_equal(a.deny, RISK_MEDIUM);
        assert_int_equal(a.failmode, PAM_SSF_FAILMODE_CLOSED);
        assert_string_equal(pam_ssf_failmode_to_string(a.failmode), "closed");
        assert_int_equal(a.timeout_ms, 250);
        assert_string_equal(a.socket, "/tmp/x.sock");
        assert_string_equal(a.snapshot, "/etc/snap");
        assert_true(a.quiet);
        assert_true(a.explain);
        assert_true(a.debug);

        assert_int_equal(parse(&a, &bad, 1, "deny=low"), 0);
        assert_int_equal(a.deny, RISK_LOW);
        assert_int_equal(parse(&a, &bad, 1, "deny=high"), 0);
        assert_int_equal(a.deny, RISK_HIGH);
        assert_int_equal(parse(&a, &bad, 1, "failmode=open"), 0);
        assert_int_equal(a.failmode, PAM_SSF_FAILMODE_OPEN);

        /* A later argument overrides an earlier one. */
        assert_int_equal(parse(&a, &bad, 2, "deny=low", "deny=high"), 0);
        assert_int_equal(a.deny, RISK_HIGH);
}

static void test_timeout_range(void **state) {
        const char *bad = NULL;
        PamSsfArgs a;

        assert_int_equal(parse(&a, &bad, 1, "timeout=1"), 0);
        assert_int_equal(a.timeout_ms, 1);
        assert_int_equal(parse(&a, &bad, 1, "timeout=10000"), 0);
        assert_int_equal(a.timeout_ms, 10000);
        /* Capped at 10 s. */
        assert_int_equal(parse(&a, &bad, 1, "timeout=10001"), 0);
        assert_int_equal(a.timeout_ms, PAM_SSF_MAX_TIMEOUT_MS);
        assert_int_equal(parse(&a, &bad, 1, "timeout=4294967295"), 0);
        assert_int_equal(a.timeout_ms, PAM_SSF_MAX_TIMEOUT_MS);

        assert_int_equal(parse(&a, &bad, 1, "timeout=0"), -ERANGE);
        assert_string_equal(bad, "timeout=0");
        assert_int_equal(parse(&a, &bad, 1, "timeout=4294967296"), -ERANGE);
        assert_int_equal(parse(&a, &bad, 1, "timeout=99999999999999999999"), -ERANGE);
}

static void test_invalid(void **state) {
        static const char *const bad_args[] = {
                "bogus", "deny", "deny=", "deny=none", "deny=HIGH", "deny=High", "deny=critical",
                "deny=high ", "failmode=", "failmode=OPEN", "failmode=fail", "timeout=", "timeout=-1",
                "timeout=+5", "timeout= 5", "timeout=5 ", "timeout=0x10", "timeout=1.5", "timeout=1s",
                "socket=", "socket=relative/path", "snapshot=", "snapshot=var/lib/x", "quiet=1",
                "debug=yes", "Debug", "", " debug", "socket=/a\nb", "snapshot=/a\tb",
                "explain=yes", "explain=1", "Explain", "explain ", "explained",
                "below", "below=", "below=none", "below=MEDIUM", "below=critical", "below=high ",
        };
        PamSsfArgs a = { .deny = (RiskLevel) 42 };

        for (size_t i = 0; i < ARRAY_SIZE(bad_args); i++) {
                const char *bad = NULL;
                int r = parse(&a, &bad, 3, "debug", bad_args[i], "quiet");
                assert_true(r == -EINVAL || r == -ERANGE);
                assert_ptr_equal(bad, bad_args[i]);
                assert_int_equal(a.deny, 42); /* *ret untouched on failure */
        }

        /* socket= must fit in sockaddr_un.sun_path (108 bytes with its NUL). */
        char sock[8 + 120];
        strcpy(sock, "socket=/");
        memset(sock + 8, 'a', 106);
        sock[8 + 106] = 0; /* "/" + 106 = 107 bytes */
        assert_int_equal(parse(&a, NULL, 1, sock), 0);
        strcat(sock, "a");
        assert_int_equal(parse(&a, NULL, 1, sock), -EINVAL);

        /* NULL entries and bad parameters. */
        const char *argv[] = { "debug", NULL };
        const char *bad = "x";
        assert_int_equal(pam_ssf_args_parse(2, argv, &a, &bad), -EINVAL);
        assert_null(bad);
        assert_int_equal(pam_ssf_args_parse(1, argv, NULL, NULL), -EINVAL);
        assert_int_equal(pam_ssf_args_parse(-1, argv, &a, NULL), -EINVAL);
        assert_int_equal(pam_ssf_args_parse(1, NULL, &a, NULL), -EINVAL);
}

static void test_below(void **state) {
        const char *bad = NULL;
        PamSsfArgs a;

        /* Not given: a deny line. */
        assert_int_equal(parse(&a, &bad, 1, "failmode=closed"), 0);
        assert_int_equal(a.below, RISK_NONE);

        assert_int_equal(parse(&a, &bad, 1, "below=low"), 0);
        assert_int_equal(a.below, RISK_LOW);
        assert_int_equal(parse(&a, &bad, 2, "below=medium", "failmode=closed"), 0);
        assert_int_equal(a.below, RISK_MEDIUM);
        assert_int_equal(a.failmode, PAM_SSF_FAILMODE_CLOSED);
        assert_int_equal(parse(&a, &bad, 2, "below=low", "below=high"), 0);
        assert_int_equal(a.below, RISK_HIGH);

        /* A branch line never denies: deny= with it is refused, in either order. */
        a.deny = (RiskLevel) 42;
        bad = NULL;
        assert_int_equal(parse(&a, &bad, 3, "below=medium", "debug", "deny=high"), -EEXIST);
        assert_string_equal(bad, "deny=high");
        assert_int_equal(a.deny, 42);
        assert_int_equal(parse(&a, &bad, 2, "deny=high", "below=medium"), -EEXIST);
        assert_string_equal(bad, "below=medium");
        /* A malformed below= is a plain error. */
        assert_int_equal(parse(&a, &bad, 2, "deny=high", "below=none"), -EINVAL);
        assert_string_equal(bad, "below=none");
}

static void test_denial_text_reason_user(void **state) {
        char buf[SSF_IPC_MAX_MESSAGE + 1 + 801];
        char big[10241];

        /* reason_user ends the message, after a space. */
        pam_ssf_denial_text(RISK_HIGH, "session-revoked", NULL, "Your laptop was reported stolen.",
                            buf, sizeof(buf));
        assert_string_equal(buf, "Access denied: your account's security risk is high (session-revoked). "
                                 "Contact your administrator. Your laptop was reported stolen.");
        pam_ssf_denial_text(RISK_HIGH, "x", "Denied.", "Call the desk.", buf, sizeof(buf));
        assert_string_equal(buf, "Denied. Call the desk.");

        /* Sanitised here again: escape sequences, newlines, bidi controls, invalid UTF-8. */
        pam_ssf_denial_text(RISK_HIGH, "x", "Denied.",
                            "\x1b]0;pwned\x07\x1b[2J Line one\n\nline\ttwo \xe2\x80\xae" "evil\xff\xc0\xaf",
                            buf, sizeof(buf));
        assert_string_equal(buf, "Denied. Line one line two evil");

        /* Nothing printable, or empty: no trailing space. */
        pam_ssf_denial_text(RISK_HIGH, "x", "Denied.", "\x1b[31m\n\t", buf, sizeof(buf));
        assert_string_equal(buf, "Denied.");
        pam_ssf_denial_text(RISK_HIGH, "x", "Denied.", "", buf, sizeof(buf));
        assert_string_equal(buf, "Denied.");

        /* 10 kB: 200 characters of it. */
        memset(big, 'r', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        pam_ssf_denial_text(RISK_HIGH, "x", "Denied.", big, buf, sizeof(buf));
        assert_int_equal(strlen(buf), strlen("Denied. ") + 200);

        /* A buffer too small for all of it: cut on a character boundary, terminated. */
        char small[12];
        pam_ssf_denial_text(RISK_HIGH, "x", "Denied.", "\xc3\xa9\xc3\xa9\xc3\xa9", small, sizeof(small));
        assert_string_equal(small, "Denied. \xc3\xa9");
        pam_ssf_denial_text(RISK_HIGH, "x", "Denied...", "abc", small, 11);
        assert_string_equal(small, "Denied...");
}

static void test_denial_text(void **state) {
        char buf[SSF_IPC_MAX_MESSAGE + 1];

        pam_ssf_denial_text(RISK_HIGH, "device-compliance-change", NULL, NULL, buf, sizeof(buf));
        assert_string_equal(buf, "Access denied: your account's security risk is high "
                                 "(device-compliance-change). Contact your administrator.");

        pam_ssf_denial_text(RISK_MEDIUM, NULL, "", NULL, buf, sizeof(buf));
        assert_string_equal(buf, "Access denied: your account's security risk is medium. "
                                 "Contact your administrator.");

        /* The daemon's message wins; control characters are replaced. */
        pam_ssf_denial_text(RISK_HIGH, "x", "Session revoked.\x1b[31m\nBye\x7f", NULL, buf, sizeof(buf));
        assert_string_equal(buf, "Session revoked.?[31m?Bye?");

        /* Detections come from the transmitter: control characters go there too. */
        pam_ssf_denial_text(RISK_LOW, "a\tb", NULL, NULL, buf, sizeof(buf));
        assert_string_equal(buf, "Access denied: your account's security risk is low (a?b). "
                                 "Contact your administrator.");

        /* Truncation keeps the result terminated. */
        char small[8];
        pam_ssf_denial_text(RISK_HIGH, NULL, NULL, NULL, small, sizeof(small));
        assert_string_equal(small, "Access ");
        pam_ssf_denial_text(RISK_HIGH, NULL, NULL, NULL, small, 0); /* no write, no crash */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_all_arguments),
                cmocka_unit_test(test_timeout_range),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_denial_text),
                cmocka_unit_test(test_below),
                cmocka_unit_test(test_denial_text_reason_user),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
