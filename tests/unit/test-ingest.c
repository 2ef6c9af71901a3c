/* SPDX-License-Identifier: MIT */
/* The record the network worker sends the daemon: facts only (no detection, no users), round
 * trips, strict rejection of what is malformed (a protocol violation) and of what is past root's
 * bounds (the SET is refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "config.h"
#include "ingest-prepare.h"
#include "set.h"
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
        r->event = json_pack("{s:{s:s}}", "reason_admin", "en", "Policy Violation");
        r->subject = json_pack("{s:s, s:s}", "format", "email", "email", "alice@example.com");
        assert_int_equal(strv_extend(&r->critical, "device"), 0);
        assert_non_null(r->event);
        assert_non_null(r->subject);
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
        assert_true(json_equal(b.event, a.event));
        assert_true(json_equal(b.subject, a.subject));
        assert_string_equal(b.critical[0], "device");
        assert_null(b.critical[1]);
        json_decref(j);
        ingest_request_done(&a);
        ingest_request_done(&b);
}

/* A record whose claims are in its frame's attachment (link.h): it takes its "claims_len" bytes,
 * the cursor moves past them, also for a record refused for its bounds; what the bytes or the
 * length may not be. */
static json_t *attached(const char *claims, json_int_t len) {
        IngestRequest a;
        json_t *j;

        fill(&a);
        j = ingest_to_json(&a);
        assert_non_null(j);
        json_object_del(j, "claims");
        if (len >= 0)
                json_object_set_new(j, "claims_len", json_integer(len));
        if (claims)
                json_object_set_new(j, "claims", json_string(claims));
        ingest_request_done(&a);
        return j;
}

static int take(json_t *j, const char *att, size_t att_len, size_t *ret_left, IngestRequest *r) {
        const char *p = att;
        size_t left = att_len;
        int k;

        memset(r, 0, sizeof(*r));
        k = ingest_from_json_attached(j, att ? &p : &att, &left, r);
        assert_ptr_equal(p, att ? att + (att_len - left) : NULL);
        *ret_left = left;
        json_decref(j);
        return k;
}

static void test_attached_claims(void **state) {
        static const char att[] = "{\"a\":\"\u00e9\"}{\"b\":2}\0{\"c\":\xff}";
        IngestRequest r;
        json_t *big;
        size_t left;

        /* Two records, one after the other. */
        assert_int_equal(take(attached(NULL, 10), att, 18, &left, &r), 0);
        assert_string_equal(r.claims_json, "{\"a\":\"\u00e9\"}");
        assert_int_equal(left, 8);
        ingest_request_done(&r);
        assert_int_equal(take(attached(NULL, 7), att + 10, 8, &left, &r), 0);
        assert_string_equal(r.claims_json, "{\"b\":2}");
        assert_int_equal(left, 1);
        ingest_request_done(&r);
        /* Without claims_len the record's own "claims" (or none); the attachment is untouched. */
        assert_int_equal(take(attached("{}", -1), att, 18, &left, &r), 0);
        assert_string_equal(r.claims_json, "{}");
        assert_int_equal(left, 18);
        ingest_request_done(&r);

        /* Refused for its bounds, it still takes its bytes. */
        static char pad[INGEST_MAX_EVENT + 1];
        big = attached(NULL, 10);
        memset(pad, 'x', INGEST_MAX_EVENT);
        json_object_set_new(json_object_get(big, "event"), "pad", json_string(pad));
        assert_int_equal(take(big, att, 18, &left, &r), -E2BIG);
        assert_int_equal(left, 8);

        /* Malformed: past the end, empty, both forms, no attachment, a NUL, not UTF-8, not an
         * integer, past INGEST_MAX_CLAIMS. */
        assert_int_equal(take(attached(NULL, 19), att, 18, &left, &r), -EBADMSG);
        assert_int_equal(take(attached(NULL, 0), att, 18, &left, &r), -EBADMSG);
        assert_int_equal(take(attached("{}", 10), att, 18, &left, &r), -EBADMSG);
        assert_int_equal(take(attached(NULL, 2), NULL, 0, &left, &r), -EBADMSG);
        assert_int_equal(take(attached(NULL, 9), att + 10, 9, &left, &r), -EBADMSG);
        assert_int_equal(take(attached(NULL, 7), att + 19, 7, &left, &r), -EBADMSG);
        big = attached(NULL, -1);
        json_object_set_new(big, "claims_len", json_string("7"));
        assert_int_equal(take(big, att + 10, 8, &left, &r), -EBADMSG);
        assert_int_equal(take(attached(NULL, INGEST_MAX_CLAIMS + 1), att, 18, &left, &r),
                         -EBADMSG);
}

/* Mutates one member of a valid record and expects code (-EBADMSG: malformed; -E2BIG: past
 * root's bounds). */
static void expect_code(const char *key, json_t *value, const char *sub, int code) {
        IngestRequest a, b = {};
        json_t *j;

        fill(&a);
        j = ingest_to_json(&a);
        assert_non_null(j);
        if (sub)
                json_object_set_new(json_object_get(j, sub), key, value);
        else
                json_object_set_new(j, key, value);
        assert_int_equal(ingest_from_json(j, &b), code);
        json_decref(j);
        ingest_request_done(&a);
        ingest_request_done(&b);
}

static void expect_rejected(const char *key, json_t *value, const char *sub) {
        expect_code(key, value, sub, -EBADMSG);
}

static void test_rejects(void **state) {
        json_t *crit;
        char big[INGEST_MAX_EVENT + 16];

        expect_rejected("kind", json_string("root-shell"), NULL);
        expect_rejected("jti", json_string(""), NULL);
        expect_rejected("jti", json_integer(5), NULL);
        expect_rejected("jti", json_stringn("a\0b", 3), NULL);
        expect_rejected("iss", json_string("bad\nline"), NULL);
        expect_rejected("iat", json_integer(-1), NULL);
        expect_rejected("event_time", json_string("1"), NULL);
        /* The event's members and the subject are objects. */
        expect_rejected("event", json_null(), NULL);
        expect_rejected("event", json_string("{}"), NULL);
        expect_rejected("subject", json_string("alice"), NULL);
        expect_rejected("critical", json_string("device"), NULL);
        crit = json_array();
        json_array_append_new(crit, json_integer(1));
        expect_rejected("critical", crit, NULL);
        /* Conclusions are not the worker's to send: they are ignored, never read. */
        {
                IngestRequest a, b = {};
                json_t *j;

                fill(&a);
                j = ingest_to_json(&a);
                json_object_set_new(j, "users", json_pack("[s]", "root"));
                json_object_set_new(j, "detection", json_pack("{s:s, s:s}", "effect", "clear",
                                                              "clears", "manual"));
                assert_int_equal(ingest_from_json(j, &b), 0);
                json_decref(j);
                ingest_request_done(&a);
                ingest_request_done(&b);
        }

        /* Past root's bounds: the SET is refused, the record is not malformed. */
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        expect_code("event", json_pack("{s:s}", "reason_admin", big), NULL, -E2BIG);
        expect_code("subject", json_pack("{s:s, s:s}", "format", "opaque", "id", big), NULL, -E2BIG);
        /* At the bound exactly, by the compact form: {"reason_admin":"…"} is 19 bytes more than
         * its text; one more byte is past it. Escapes count as written. */
        big[INGEST_MAX_EVENT - 19] = 0;
        expect_code("event", json_pack("{s:s}", "reason_admin", big), NULL, 0);
        big[INGEST_MAX_EVENT - 19] = 'x';
        big[INGEST_MAX_EVENT - 18] = 0;
        expect_code("event", json_pack("{s:s}", "reason_admin", big), NULL, -E2BIG);
        big[0] = '\n'; /* written \n: one more byte */
        big[INGEST_MAX_EVENT - 19] = 0;
        expect_code("event", json_pack("{s:s}", "reason_admin", big), NULL, -E2BIG);
        memset(big, 'x', sizeof(big) - 1);
        crit = json_array();
        for (unsigned i = 0; i <= INGEST_MAX_CRITICAL; i++)
                json_array_append_new(crit, json_string("m"));
        expect_code("critical", crit, NULL, -E2BIG);
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

/* A signed SET's claims, as the worker prepares them for the daemon. */
static int prepare(const char *jti, const char *txn, IngestRequest *r, SetError *err) {
        static const char *conf = "[transmitter]\nissuer = https://idp.example.com\nauth = none\n"
                                  "[subjects]\ndomains = example.com\n";
        SetExpect expect = { .issuer = "https://idp.example.com", .now_sec = 1767225600,
                             .max_skew_sec = 300 };
        json_t *claims = json_pack("{s:s, s:s, s:i, s:{s:s, s:s}, s:{s:{}}}", "iss",
                                   "https://idp.example.com", "jti", jti, "iat", 1767225600,
                                   "sub_id", "format", "email", "email", "nosuch@example.com",
                                   "events", CAEP_EVENT_PREFIX "session-revoked");
        Config *c = NULL;
        SsfSet *set = NULL;
        char *text;
        int k;

        assert_non_null(claims);
        if (txn)
                json_object_set_new(claims, "txn", json_string(txn));
        text = json_dumps(claims, JSON_COMPACT);
        assert_int_equal(config_load_buffer("mem", conf, strlen(conf), &c), 0);
        assert_int_equal(set_validate_claims(text, strlen(text), &expect, &set, err), 0);
        memset(err, 0, sizeof(*err));
        k = ingest_prepare(c, NULL, set, r, err);
        ssf_set_free(set);
        config_free(c);
        free(text);
        json_decref(claims);
        return k;
}

/* What the daemon would refuse is refused in the worker, as the SET's fault (reported, not
 * delivered again and again); an unrecordable txn is only left out. */
static void test_prepare_refuses_what_the_daemon_would(void **state) {
        IngestRequest r = {};
        SetError err = {};

        assert_int_equal(prepare("jti-1", "txn-1", &r, &err), 0);
        assert_string_equal(r.txn, "txn-1");
        ingest_request_done(&r);

        assert_int_equal(prepare("a\tb", NULL, &r, &err), -EBADMSG);
        assert_string_equal(err.err, "invalid_request");
        assert_non_null(strstr(err.description, "control characters"));

        assert_int_equal(prepare("jti-2", "t\x01", &r, &err), 0);
        assert_null(r.txn);
        assert_string_equal(r.jti, "jti-2");
        ingest_request_done(&r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_attached_claims),
                cmocka_unit_test(test_rejects),
                cmocka_unit_test(test_stream_updated_needs_status),
                cmocka_unit_test(test_prepare_refuses_what_the_daemon_would),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
