/* SPDX-License-Identifier: MIT */
/* SSF §7.2 discovery URLs and the event vocabulary a stream asks for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stream.h"

static void expect_url(const char *issuer, const char *config_url, const char *want) {
        Config c = { .issuer = UNCONST(issuer),
                     .config_url = UNCONST(config_url) };
        char *url = NULL;

        assert_int_equal(stream_discovery_url(&c, &url), 0);
        assert_string_equal(url, want);
        free(url);
}

static void test_discovery_url(void **state) {
        /* The well-known segment goes between host and path; a trailing '/' is dropped. */
        expect_url("https://tr.example.com", NULL, "https://tr.example.com/.well-known/ssf-configuration");
        expect_url("https://tr.example.com/", NULL, "https://tr.example.com/.well-known/ssf-configuration");
        expect_url("https://tr.example.com/issuer1", NULL,
                   "https://tr.example.com/.well-known/ssf-configuration/issuer1");
        expect_url("https://tr.example.com:8443/a/b/", NULL,
                   "https://tr.example.com:8443/.well-known/ssf-configuration/a/b");
        /* The vendor's "SSF Well-Known URL" is used as given. */
        expect_url("https://tr.example.com", "https://tr.example.com/.well-known/ssf-configuration/x",
                   "https://tr.example.com/.well-known/ssf-configuration/x");
}

static void test_discovery_url_needs_https(void **state) {
        Config c = { .issuer = UNCONST("http://tr.example.com") };
        char *url = NULL;

        assert_int_equal(stream_discovery_url(&c, &url), -EINVAL);
        assert_null(url);
}

static void test_event_uri(void **state) {
        assert_string_equal(stream_event_uri("session-revoked"),
                            "https://schemas.openid.net/secevent/caep/event-type/session-revoked");
        assert_string_equal(stream_event_uri("account-disabled"),
                            "https://schemas.openid.net/secevent/risc/event-type/account-disabled");
        assert_string_equal(stream_event_uri("user-risk-change"),
                            "https://schemas.okta.com/secevent/okta/event-type/user-risk-change");
        assert_null(stream_event_uri("verification"));
        assert_null(stream_event_uri("no-such-event"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_discovery_url),
                cmocka_unit_test(test_discovery_url_needs_https),
                cmocka_unit_test(test_event_uri),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
