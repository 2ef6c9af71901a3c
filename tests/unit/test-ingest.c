/* SPDX-License-Identifier: MIT */
/* The record the network worker sends the daemon: round trips and strict rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ingest.h"
#include "strv.h"

static void fill(IngestRequest *r) {
        memset(r, 0, sizeof(*r));
        r->kind = INGEST_SUBJECT;
        r->jti = strdup("jti-1");
        r->iss = strdup("https://idp.example.com");
        r->event_uri = strdup("https://schemas.openid.net/secevent/caep/event-type/session-revoked");
        r->iat = 1700000000;
        r->event_time = 1699999999;
        r->claims_json = strdup("{\"jti\":\"jti-1\",\"x\":\"\\u0001\"}");
        r->subject_desc = strdup("email alice@example.com");
        r->users = calloc(1, sizeof(char *));
        assert_int_equal(strv_extend(&r->users, "alice"), 0);
        strcpy(r->detection.name, "session-revoked");
        r->detection.effect = DETECTION_RAISE;
        r->detection.level = RISK_HIGH;
        strcpy(r->detection.reason, "Policy Violation");
}

static void test_round_trip(void **state) {
        IngestRequest a, b = {};
        json_t *j;

        fill(&a);
        j = ingest_to_json(&a);
        assert_non_null(j);
        assert_int_equal(ingest_from_json(j, &b), 0);
        assert_int_equal(b.kind, INGEST_SUBJECT);
        assert_string_equal(b.jti, "jti-1");
        assert_string_equal(b.iss, a.iss);
        assert_string_equal(b.event_uri, a.event_uri);
        assert_int_equal(b.iat, a.iat);
        assert_int_equal(b.event_time, a.event_time);
        assert_string_equal(b.claims_json, a.claims_json); /* passed through, not parsed */
        assert_string_equal(b.users[0], "alice");
        assert_null(b.users[1]);
        assert_string_equal(b.detection.name, "session-revoked");
        assert_int_equal(b.detection.effect, DETECTION_RAISE);
        assert_int_equal(b.detection.level, RISK_HIGH);
        assert_string_equal(b.detection.reason, "Policy Violation");
        json_decref(j);
        ingest_request_done(&a);
        ingest_request_done(&b);
}

/* Mutates one member of a valid record and expects -EBADMSG. */
static void expect_rejected(const char *key, json_t *value, const char *sub) {
        IngestRequest a, b = {};
        json_t *j;

        fill(&a);
        j = ingest_to_json(&a);
        assert_non_null(j);
        if (sub)
                json_object_set_new(json_object_get(j, sub), key, value);
        else
                json_object_set_new(j, key, value);
        assert_int_equal(ingest_from_json(j, &b), -EBADMSG);
        json_decref(j);
        ingest_request_done(&a);
}

static void test_rejects(void **state) {
        json_t *users;

        expect_rejected("kind", json_string("root-shell"), NULL);
        expect_rejected("jti", json_string(""), NULL);
        expect_rejected("jti", json_integer(5), NULL);
        expect_rejected("jti", json_stringn("a\0b", 3), NULL);
        expect_rejected("iss", json_string("bad\nline"), NULL);
        expect_rejected("iat", json_integer(-1), NULL);
        expect_rejected("event_time", json_string("1"), NULL);
        users = json_array();
        json_array_append_new(users, json_string("../etc"));
        expect_rejected("users", users, NULL);
        users = json_array();
        json_array_append_new(users, json_string("-rf"));
        expect_rejected("users", users, NULL);
        expect_rejected("users", json_string("alice"), NULL);
        expect_rejected("level", json_integer(4), "detection");
        expect_rejected("level", json_integer(-1), "detection");
        expect_rejected("effect", json_string("delete-everything"), "detection");
        expect_rejected("name", json_string(""), "detection");
        expect_rejected("carries_level", json_integer(1), "detection");
        expect_rejected("detection", json_null(), NULL);
}

static void test_stream_updated_needs_status(void **state) {
        IngestRequest a = {}, b = {};
        json_t *j;

        a.kind = INGEST_STREAM_UPDATED;
        a.jti = strdup("u1");
        a.iss = strdup("https://idp.example.com");
        a.event_uri = strdup("https://schemas.openid.net/secevent/ssf/event-type/stream-updated");
        a.status = strdup("exploded");
        j = ingest_to_json(&a);
        assert_int_equal(ingest_from_json(j, &b), -EBADMSG);
        json_decref(j);
        free(a.status);
        a.status = strdup("paused");
        j = ingest_to_json(&a);
        assert_int_equal(ingest_from_json(j, &b), 0);
        assert_string_equal(b.status, "paused");
        json_decref(j);
        ingest_request_done(&a);
        ingest_request_done(&b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_rejects),
                cmocka_unit_test(test_stream_updated_needs_status),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
