/* SPDX-License-Identifier: MIT */
/* events.c: the one event vocabulary, as the SET parser, the risk engine, [detections],
 * rules and events = use it; "opt-out" names RISC's three opt-out events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "events.h"
#include "policy.h"

/* The transmitter single-transmitter configurations describe. */
#define DT(c) config_transmitter_main(c)

static Config *load(const char *extra) {
        char text[4096];
        Config *c = NULL;

        snprintf(text, sizeof(text), "[subjects]\ndomains = example.com\n"
                                     "[transmitter]\nissuer = https://idp.example.com\n"
                                     "auth = none\n%s", extra);
        assert_int_equal(config_load_buffer("events.conf", text, strlen(text), &c), 0);
        return c;
}

static void test_table(void **state) {
        const EventType *e;

        for (size_t i = 0; i < n_event_types; i++) {
                e = &event_types[i];
                /* The name is the URI's last path segment, and both lead back to the entry. */
                assert_true(strlen(e->uri) > strlen(e->name));
                assert_string_equal(e->uri + strlen(e->uri) - strlen(e->name), e->name);
                assert_ptr_equal(event_type_by_uri(e->uri), e);
                if (e->detection)
                        assert_ptr_equal(event_type_by_name(e->name), e);
                else
                        assert_null(event_type_by_name(e->name));
        }
        e = event_type_by_name("session-revoked");
        assert_non_null(e);
        assert_string_equal(e->uri,
                            "https://schemas.openid.net/secevent/caep/event-type/session-revoked");
        assert_int_equal(e->level, RISK_HIGH);
        assert_int_equal(event_type_by_name("risk-level-change")->level, _RISK_INVALID);
        assert_int_equal(event_type_by_name("user-risk-change")->level, _RISK_INVALID);
        assert_int_equal(event_type_by_name("credential-change")->level, RISK_MEDIUM);
        assert_int_equal(event_type_by_name("opt-in")->level, RISK_NONE);
        assert_non_null(event_type_by_uri(OKTA_EVENT_PREFIX "ip-change"));
        assert_null(event_type_by_name("ip-change"));
        assert_null(event_type_by_name("verification"));
        assert_null(event_type_by_uri(SSF_EVENT_VERIFICATION));
        assert_null(event_type_by_uri(CAEP_EVENT_PREFIX "no-such-event"));
        assert_null(event_type_by_name(NULL));
        assert_null(event_type_by_uri(NULL));
}

static void test_names(void **state) {
        assert_true(event_name_is_known("session-revoked"));
        assert_true(event_name_is_known("opt-out"));
        assert_true(event_name_is_known("opt-out-effective"));
        assert_false(event_name_is_known("opt-out-x"));
        assert_false(event_name_is_known("ip-change"));
        assert_false(event_name_is_known("stream-updated"));
        assert_false(event_name_is_known(NULL));

        assert_true(event_name_covers("session-revoked", "session-revoked"));
        assert_true(event_name_covers("opt-out", "opt-out-initiated"));
        assert_true(event_name_covers("opt-out", "opt-out-cancelled"));
        assert_false(event_name_covers("opt-out", "opt-in"));
        assert_false(event_name_covers("opt-out", "opt-out-x"));
        assert_false(event_name_covers("opt-out-initiated", "opt-out-effective"));
        assert_false(event_name_covers("session-revoked", NULL));
}

static void test_config_levels(void **state) {
        Config *c = load("[detections]\nopt-out = medium\nopt-out-cancelled = low\n"
                         "session-revoked = medium\n");

        assert_int_equal(config_detection_level(c, "opt-out-initiated"), RISK_MEDIUM);
        assert_int_equal(config_detection_level(c, "opt-out-effective"), RISK_MEDIUM);
        assert_int_equal(config_detection_level(c, "opt-out-cancelled"), RISK_LOW);
        assert_int_equal(config_detection_level(c, "session-revoked"), RISK_MEDIUM);
        assert_int_equal(config_detection_level(c, "account-purged"), RISK_HIGH);
        assert_int_equal(config_detection_level(c, "opt-in"), RISK_NONE);
        /* "opt-out" itself is no event: it has no level of its own. */
        assert_int_equal(config_detection_level(c, "opt-out"), _RISK_INVALID);
        assert_int_equal(config_detection_level(c, "ip-change"), _RISK_INVALID);
        config_free(c);
        assert_int_equal(config_detection_level(NULL, "identifier-recycled"), RISK_HIGH);
}

static void test_rules_and_events(void **state) {
        Config *c = load("events = opt-out, session-revoked\n"
                         "[rule leaving]\ndetections = opt-out\naction = none\n"
                         "[rule other]\naction = logout\n");
        char *g[] = { NULL };
        const Rule *r;

        assert_non_null(DT(c)->events);
        r = policy_match(c, NULL, "nosuchuser-ssf-test", g, "opt-out-effective", RISK_NONE);
        assert_non_null(r);
        assert_string_equal(r->name, "leaving");
        r = policy_match(c, NULL, "nosuchuser-ssf-test", g, "opt-in", RISK_NONE);
        assert_non_null(r);
        assert_string_equal(r->name, "other");
        config_free(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_config_levels),
                cmocka_unit_test(test_rules_and_events),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
