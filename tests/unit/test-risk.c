/* SPDX-License-Identifier: MIT */
/* Event -> detection classification (PRODUCT.md "Detections"), on SETs signed by
 * python3-jwcrypto (tests/data/gen-jose.py) and on hand-built payloads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "jwks.h"
#include "macro.h"
#include "risk.h"
#include "set.h"
#include "tests.h"

#define IAT 1700000000u

static Jwks *keys;

static int setup(void **state) {
        size_t len;
        _cleanup_free_ char *json = test_data_read("jose", "jwks.json", &len);
        return jwks_parse(json, len, &keys) == 0 ? 0 : -1;
}

static int teardown(void **state) {
        keys = jwks_free(keys);
        return 0;
}

static int classify_with(const char *fixture, const Config *c, Detection *d) {
        static const SetExpect expect = {
                .issuer = "https://tr.example.test",
                .audience = "https://host1.example.test/ssf",
                .now_sec = IAT,
                .max_skew_sec = 60,
        };
        _cleanup_free_ char *file = NULL, *tok = NULL;
        SsfSet *s = NULL;
        SetError err;
        size_t len;
        int r;

        assert_true(asprintf(&file, "risk-%s.jwt", fixture) > 0);
        tok = test_data_read("jose", file, &len);
        r = set_verify(tok, len, keys, &expect, NULL, &s, &err);
        if (r < 0)
                fail_msg("%s: set_verify %d: %s", fixture, r, err.description);
        memset(d, 0xaa, sizeof *d);
        r = risk_classify(s->event_uri, s->event, c, d);
        ssf_set_free(s);
        return r;
}

static int classify(const char *fixture, Detection *d) {
        Config c = {}; /* no [detections] overrides: the built-in defaults */
        return classify_with(fixture, &c, d);
}

static void expect_raise(const char *fixture, const char *name, RiskLevel level) {
        Detection d;
        assert_int_equal(classify(fixture, &d), 0);
        if (d.effect != DETECTION_RAISE || d.level != level)
                fail_msg("%s: effect %d level %d, expected raise %d", fixture, d.effect, d.level, level);
        assert_string_equal(d.name, name);
        assert_false(d.carries_level);
}

static void expect_effect(const char *fixture, const char *name, DetectionEffect effect) {
        Detection d;
        assert_int_equal(classify(fixture, &d), 0);
        if (d.effect != effect)
                fail_msg("%s: effect %d, expected %d", fixture, d.effect, effect);
        assert_string_equal(d.name, name);
        if (effect != DETECTION_RAISE)
                assert_int_equal(d.level, RISK_NONE);
}

static void test_high_defaults(void **state) {
        expect_raise("session-revoked", "session-revoked", RISK_HIGH);
        expect_raise("sessions-revoked", "sessions-revoked", RISK_HIGH);
        expect_raise("compliance-not", "device-compliance-change", RISK_HIGH);
        expect_raise("account-disabled", "account-disabled", RISK_HIGH);
        expect_raise("account-purged", "account-purged", RISK_HIGH);
        expect_raise("credential-compromise", "credential-compromise", RISK_HIGH);
        expect_raise("identifier-recycled", "identifier-recycled", RISK_HIGH);
}

static void test_medium_defaults(void **state) {
        expect_raise("credential-change", "credential-change", RISK_MEDIUM);
        expect_raise("account-credential-change-required", "account-credential-change-required", RISK_MEDIUM);
        expect_raise("assurance-down", "assurance-level-change", RISK_MEDIUM);
        expect_raise("token-claims-change", "token-claims-change", RISK_MEDIUM);
        expect_raise("identifier-changed", "identifier-changed", RISK_MEDIUM);
        expect_raise("recovery-activated", "recovery-activated", RISK_MEDIUM);
        expect_raise("recovery-information-changed", "recovery-information-changed", RISK_MEDIUM);
}

static void test_record_only(void **state) {
        expect_effect("session-established", "session-established", DETECTION_RECORD);
        expect_effect("session-presented", "session-presented", DETECTION_RECORD);
        expect_effect("opt-in", "opt-in", DETECTION_RECORD);
        expect_effect("opt-out-initiated", "opt-out-initiated", DETECTION_RECORD);
        expect_effect("opt-out-cancelled", "opt-out-cancelled", DETECTION_RECORD);
        expect_effect("opt-out-effective", "opt-out-effective", DETECTION_RECORD);
        /* An upgrade of the assurance level is no risk. */
        expect_effect("assurance-up", "assurance-level-change", DETECTION_RECORD);
}

static void test_ignored(void **state) {
        expect_effect("verification", "verification", DETECTION_IGNORE);
        expect_effect("stream-updated", "stream-updated", DETECTION_IGNORE);
        expect_effect("unknown", "whatever", DETECTION_IGNORE);
        expect_effect("okta-ip-change", "ip-change", DETECTION_IGNORE);
}

static void test_clears(void **state) {
        Detection d;

        assert_int_equal(classify("compliance-ok", &d), 0);
        assert_int_equal(d.effect, DETECTION_CLEAR);
        assert_string_equal(d.name, "device-compliance-change");
        assert_string_equal(d.clears, "device-compliance-change");

        assert_int_equal(classify("account-enabled", &d), 0);
        assert_int_equal(d.effect, DETECTION_CLEAR);
        assert_string_equal(d.name, "account-enabled");
        assert_string_equal(d.clears, "account-disabled");
}

static void expect_carried(const char *fixture, const char *name, RiskLevel level) {
        Detection d;
        assert_int_equal(classify(fixture, &d), 0);
        assert_int_equal(d.effect, DETECTION_RAISE);
        assert_true(d.carries_level);
        assert_int_equal(d.level, level);
        assert_string_equal(d.name, name);
}

static void test_carried_levels(void **state) {
        expect_carried("risk-level-high", "risk-level-change", RISK_HIGH);
        expect_carried("risk-level-low-lower", "risk-level-change", RISK_LOW);
        expect_carried("okta-user-risk-medium", "user-risk-change", RISK_MEDIUM);
        expect_carried("okta-user-risk-secure", "user-risk-change", RISK_NONE);
        expect_carried("okta-device-risk-none", "device-risk-change", RISK_NONE);
}

static void test_required_members(void **state) {
        Detection d;

        assert_int_equal(classify("compliance-missing", &d), -EBADMSG);
        assert_int_equal(classify("compliance-bogus", &d), -EBADMSG);
        assert_int_equal(classify("risk-level-missing", &d), -EBADMSG);
        assert_int_equal(classify("risk-level-bogus", &d), -EBADMSG);
        assert_int_equal(classify("credential-change-missing", &d), -EBADMSG);
}

static void test_reasons(void **state) {
        Detection d;

        /* reason_admin without "en": its first value. */
        assert_int_equal(classify("compliance-not", &d), 0);
        assert_string_equal(d.reason, "Nicht konform");
        assert_int_equal(classify("risk-level-high", &d), 0);
        assert_string_equal(d.reason, "PASSWORD_FOUND_IN_DATA_BREACH");
        assert_int_equal(classify("account-disabled-reason", &d), 0);
        assert_string_equal(d.reason, "hijacking");
        assert_int_equal(classify("session-presented", &d), 0);
        assert_string_equal(d.reason, "");
}

static void test_overrides(void **state) {
        DetectionLevel levels[] = {
                { .detection = (char *) (uintptr_t) "session-established", .level = RISK_LOW },
                { .detection = (char *) (uintptr_t) "session-revoked", .level = RISK_NONE },
                { .detection = (char *) (uintptr_t) "credential-change", .level = RISK_HIGH },
                { .detection = (char *) (uintptr_t) "risk-level-change", .level = RISK_HIGH },
        };
        Config c = { .detection_levels = levels, .n_detection_levels = ARRAY_SIZE(levels) };
        Detection d;

        assert_int_equal(classify_with("session-established", &c, &d), 0);
        assert_int_equal(d.effect, DETECTION_RAISE);
        assert_int_equal(d.level, RISK_LOW);
        assert_int_equal(classify_with("session-revoked", &c, &d), 0);
        assert_int_equal(d.effect, DETECTION_RECORD);
        assert_int_equal(classify_with("credential-change", &c, &d), 0);
        assert_int_equal(d.effect, DETECTION_RAISE);
        assert_int_equal(d.level, RISK_HIGH);
        /* A carried level is what the event is about: the override does not replace it. */
        assert_int_equal(classify_with("risk-level-low-lower", &c, &d), 0);
        assert_int_equal(d.level, RISK_LOW);
        assert_true(d.carries_level);
}

static void test_hand_built(void **state) {
        Config c = {};
        Detection d;
        SsfSet s = { .event_uri = CAEP_EVENT_PREFIX "session-revoked" };
        _cleanup_(json_decrefp) json_t *ev = json_pack(
                "{s:{s:s}}", "reason_admin", "en", "line one\nline two\x01 \xe2\x80\x99 end");

        assert_non_null(ev);
        s.event = ev;
        assert_int_equal(risk_classify(s.event_uri, s.event, &c, &d), 0);
        assert_string_equal(d.reason, "line one line two  \xe2\x80\x99 end");

        /* A long reason is cut on a character boundary. */
        char long_reason[600];
        for (size_t i = 0; i + 3 < sizeof long_reason; i += 3)
                memcpy(long_reason + i, "\xe2\x80\x99", 3);
        long_reason[597] = 0;
        assert_int_equal(json_object_set_new(ev, "reason_admin", json_pack("{s:s}", "en", long_reason)), 0);
        assert_int_equal(risk_classify(s.event_uri, s.event, &c, &d), 0);
        assert_int_equal(strlen(d.reason) % 3, 0);
        assert_true(strlen(d.reason) < sizeof d.reason);
        assert_true(strlen(d.reason) >= sizeof d.reason - 4);

        /* Case-insensitive enums. */
        s.event_uri = CAEP_EVENT_PREFIX "device-compliance-change";
        assert_int_equal(json_object_set_new(ev, "current_status", json_string("Not-Compliant")), 0);
        assert_int_equal(risk_classify(s.event_uri, s.event, &c, &d), 0);
        assert_int_equal(d.effect, DETECTION_RAISE);
        s.event_uri = CAEP_EVENT_PREFIX "risk-level-change";
        assert_int_equal(json_object_set_new(ev, "current_level", json_string("Medium")), 0);
        assert_int_equal(risk_classify(s.event_uri, s.event, &c, &d), 0);
        assert_int_equal(d.level, RISK_MEDIUM);
        /* CAEP has no "none" level; only Okta's events carry it. */
        assert_int_equal(json_object_set_new(ev, "current_level", json_string("NONE")), 0);
        assert_int_equal(risk_classify(s.event_uri, s.event, &c, &d), -EBADMSG);
        assert_int_equal(json_object_set_new(ev, "current_level", json_integer(3)), 0);
        assert_int_equal(risk_classify(s.event_uri, s.event, &c, &d), -EBADMSG);
        /* Not an object. */
        s.event = NULL;
        assert_int_equal(risk_classify(s.event_uri, s.event, &c, &d), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_high_defaults),
                cmocka_unit_test(test_medium_defaults),
                cmocka_unit_test(test_record_only),
                cmocka_unit_test(test_ignored),
                cmocka_unit_test(test_clears),
                cmocka_unit_test(test_carried_levels),
                cmocka_unit_test(test_required_members),
                cmocka_unit_test(test_reasons),
                cmocka_unit_test(test_overrides),
                cmocka_unit_test(test_hand_built),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
