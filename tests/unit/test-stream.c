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

static void test_events_requested(void **state) {
        char *names[] = { UNCONST("opt-out"), UNCONST("session-revoked"), NULL };
        char *none[] = { UNCONST("verification"), NULL };
        json_t *all = stream_events_requested(NULL), *some = stream_events_requested(names);
        json_t *empty = stream_events_requested(none);
        size_t i;
        json_t *v;

        /* events = all: every detection, and nothing that is not one (Okta's ip-change). */
        assert_non_null(all);
        assert_int_equal(json_array_size(all), 24);
        json_array_foreach(all, i, v)
                assert_null(strstr(json_string_value(v), "ip-change"));
        assert_string_equal(json_string_value(json_array_get(all, 0)),
                            "https://schemas.openid.net/secevent/caep/event-type/session-revoked");
        /* A name and a family, in the table's order. */
        assert_non_null(some);
        assert_int_equal(json_array_size(some), 4);
        assert_string_equal(json_string_value(json_array_get(some, 0)),
                            "https://schemas.openid.net/secevent/caep/event-type/session-revoked");
        assert_string_equal(json_string_value(json_array_get(some, 1)),
                            "https://schemas.openid.net/secevent/risc/event-type/opt-out-initiated");
        assert_string_equal(json_string_value(json_array_get(some, 3)),
                            "https://schemas.openid.net/secevent/risc/event-type/opt-out-effective");
        assert_int_equal(json_array_size(empty), 0);
        json_decref(all);
        json_decref(some);
        json_decref(empty);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_discovery_url),
                cmocka_unit_test(test_discovery_url_needs_https),
                cmocka_unit_test(test_events_requested),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
