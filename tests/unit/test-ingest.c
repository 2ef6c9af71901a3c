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

/* The binary record of an ingest-batch frame (ingest.h): what ingest_record_put() writes,
 * ingest_record_take() reads back the same, for each kind, one after the other; a buffer too
 * small is said; whatever is cut short, a NUL, bytes that are not UTF-8, a control character, a
 * wrong kind or a member the kind does not have are malformed; past root's bounds it is -E2BIG
 * and its bytes are used all the same. */
static size_t put(const IngestRequest *r, char *buf, size_t size) {
        size_t len = 0;

        assert_int_equal(ingest_record_put(r, buf, size, &len), 0);
        assert_true(len > 0 && len <= size);
        return len;
}

static int take_bin(const char *buf, size_t len, size_t *ret_left, IngestRequest *r) {
        const char *p = buf;
        size_t left = len;
        int k;

        memset(r, 0, sizeof(*r));
        k = ingest_record_take(&p, &left, r);
        assert_ptr_equal(p, buf + (len - left));
        if (ret_left)
                *ret_left = left;
        return k;
}

static void test_binary_round_trip(void **state) {
        static char buf[2 * INGEST_MAX_EVENT];
        IngestRequest a, v = {}, u = {}, b;
        size_t n1, n2, n3, left, len;

        (void) state;
        fill(&a);
        v.kind = INGEST_VERIFICATION;
        v.jti = UNCONST("v-1");
        v.iss = UNCONST("https://idp.example.com");
        v.event_uri = UNCONST("https://schemas.openid.net/secevent/ssf/event-type/verification");
        v.stream_id = UNCONST("s-1");
        v.state = UNCONST("0123");
        u = v;
        u.kind = INGEST_STREAM_UPDATED;
        u.state = NULL;
        u.status = UNCONST("paused");
        u.reason = UNCONST("maintenance");
        u.txn = UNCONST("t-9");
        u.claims_json = UNCONST("{}");

        n1 = put(&a, buf, sizeof(buf));
        n2 = put(&v, buf + n1, sizeof(buf) - n1);
        n3 = put(&u, buf + n1 + n2, sizeof(buf) - n1 - n2);
        /* Every buffer too small for one is said, nothing written past it. */
        for (size_t size = 0; size < n1; size++)
                assert_int_equal(ingest_record_put(&a, buf + n1 + n2 + n3, size, &len), -ENOSPC);

        assert_int_equal(take_bin(buf, n1 + n2 + n3, &left, &b), 0);
        assert_int_equal(left, n2 + n3);
        assert_int_equal(b.kind, INGEST_SUBJECT);
        assert_string_equal(b.jti, a.jti);
        assert_string_equal(b.iss, a.iss);
        assert_string_equal(b.event_uri, a.event_uri);
        assert_null(b.txn);
        assert_int_equal(b.iat, a.iat);
        assert_int_equal(b.event_time, a.event_time);
        assert_string_equal(b.claims_json, a.claims_json);
        assert_true(json_equal(b.event, a.event));
        assert_true(json_equal(b.subject, a.subject));
        assert_string_equal(b.critical[0], "device");
        assert_null(b.critical[1]);
        ingest_request_done(&b);

        assert_int_equal(take_bin(buf + n1, n2 + n3, &left, &b), 0);
        assert_int_equal(left, n3);
        assert_int_equal(b.kind, INGEST_VERIFICATION);
        assert_string_equal(b.stream_id, "s-1");
        assert_string_equal(b.state, "0123");
        assert_null(b.event);
        assert_null(b.subject);
        assert_null(b.claims_json);
        assert_null(b.critical);
        ingest_request_done(&b);

        assert_int_equal(take_bin(buf + n1 + n2, n3, &left, &b), 0);
        assert_int_equal(left, 0);
        assert_int_equal(b.kind, INGEST_STREAM_UPDATED);
        assert_string_equal(b.status, "paused");
        assert_string_equal(b.reason, "maintenance");
        assert_string_equal(b.txn, "t-9");
        ingest_request_done(&b);

        /* Cut short anywhere: malformed, never read past the end. */
        for (size_t cut = 0; cut < n1; cut++) {
                char *copy = malloc(cut + 1);

                assert_non_null(copy);
                memcpy(copy, buf, cut);
                assert_int_equal(take_bin(copy, cut, NULL, &b), -EBADMSG);
                free(copy);
        }
        ingest_request_done(&a);
}

/* a with one change made by change(), written and read back: the code. Unless its bytes were
 * mangled, the JSON reader and the worker's own check (ingest_check()) say the same. */
static int binary_with(void (*change)(IngestRequest *r), void (*mangle)(char *rec, size_t len)) {
        static char buf[4 * INGEST_MAX_EVENT];
        IngestRequest a, b, c = {};
        size_t len, left;
        json_t *j;
        int k;

        fill(&a);
        if (change)
                change(&a);
        len = put(&a, buf, sizeof(buf));
        if (mangle)
                mangle(buf, len);
        /* A byte after it: what the next record would start with, never taken. */
        buf[len] = 'N';
        k = take_bin(buf, len + 1, &left, &b);
        if (k == 0 || k == -E2BIG)
                assert_int_equal(left, 1);
        if (k == 0)
                ingest_request_done(&b);
        if (!mangle) {
                j = ingest_to_json(&a);
                assert_int_equal(j ? ingest_from_json(j, &c) : -EBADMSG, k);
                assert_int_equal(ingest_check(&a), k);
                json_decref(j);
                ingest_request_done(&c);
        }
        ingest_request_done(&a);
        return k;
}

static void kind_7(char *rec, size_t len) {
        (void) len;
        rec[0] = 7;
}
static void iat_negative(char *rec, size_t len) {
        (void) len;
        rec[8] = (char) 0x80; /* the most significant byte of iat (little-endian host) */
}
static void nul_in_jti(char *rec, size_t len) {
        (void) len;
        rec[1 + 8 + 8 + 4 + 1] = '\0';
}
static void jti_past_end(char *rec, size_t len) {
        uint32_t l = (uint32_t) len;

        memcpy(rec + 1 + 8 + 8, &l, sizeof(l));
}
static void iat_too_large(IngestRequest *r) {
        r->iat = (uint64_t) INT64_MAX + 1;
}
static void bad_utf8_claims(IngestRequest *r) {
        free(r->claims_json);
        r->claims_json = strdup("{\"x\":\"\xed\xa0\x80\"}"); /* a surrogate */
}
static void control_in_iss(IngestRequest *r) {
        free(r->iss);
        r->iss = strdup("https://idp.example.com/\x7f");
}
static void empty_jti(IngestRequest *r) {
        free(r->jti);
        r->jti = strdup("");
}
static void no_iss(IngestRequest *r) {
        r->iss = mfree(r->iss);
}
static void long_jti(IngestRequest *r) {
        free(r->jti);
        r->jti = calloc(1, SET_MAX_JTI + 2);
        memset(r->jti, 'j', SET_MAX_JTI + 1);
}
static void no_event(IngestRequest *r) {
        json_decref(r->event);
        r->event = NULL;
}
static void event_not_object(IngestRequest *r) {
        json_decref(r->event);
        r->event = json_array();
}
static void verification_with_event(IngestRequest *r) {
        r->kind = INGEST_VERIFICATION;
}
static void stream_updated_bad_status(IngestRequest *r) {
        r->kind = INGEST_STREAM_UPDATED;
        json_decref(r->event);
        json_decref(r->subject);
        r->event = r->subject = NULL;
        r->status = strdup("on");
}
static void big_event(IngestRequest *r) {
        char *pad = calloc(1, INGEST_MAX_EVENT + 1);

        memset(pad, 'x', INGEST_MAX_EVENT);
        json_object_set_new(r->event, "pad", json_string(pad));
        free(pad);
}
static void big_subject(IngestRequest *r) {
        char *pad = calloc(1, INGEST_MAX_SUBJECT + 1);

        memset(pad, 'x', INGEST_MAX_SUBJECT);
        json_object_set_new(r->subject, "pad", json_string(pad));
        free(pad);
}
static void many_critical(IngestRequest *r) {
        for (unsigned i = 0; i < INGEST_MAX_CRITICAL; i++)
                assert_int_equal(strv_extend(&r->critical, "x"), 0);
}
static void empty_critical(IngestRequest *r) {
        assert_int_equal(strv_extend(&r->critical, ""), 0);
}
static void long_critical(IngestRequest *r) {
        char name[INGEST_MAX_CRITICAL_NAME + 2];

        memset(name, 'n', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        assert_int_equal(strv_extend(&r->critical, name), 0);
}
static void control_critical(IngestRequest *r) {
        assert_int_equal(strv_extend(&r->critical, "a\nb"), 0);
}

static void test_binary_rejects(void **state) {
        (void) state;
        assert_int_equal(binary_with(NULL, NULL), 0);
        assert_int_equal(binary_with(NULL, kind_7), -EBADMSG);
        assert_int_equal(binary_with(NULL, iat_negative), -EBADMSG);
        assert_int_equal(binary_with(NULL, nul_in_jti), -EBADMSG);
        assert_int_equal(binary_with(NULL, jti_past_end), -EBADMSG);
        assert_int_equal(binary_with(iat_too_large, NULL), -EBADMSG);
        assert_int_equal(binary_with(bad_utf8_claims, NULL), -EBADMSG);
        assert_int_equal(binary_with(control_in_iss, NULL), -EBADMSG);
        assert_int_equal(binary_with(empty_jti, NULL), -EBADMSG);
        assert_int_equal(binary_with(no_iss, NULL), -EBADMSG);
        assert_int_equal(binary_with(long_jti, NULL), -EBADMSG);
        assert_int_equal(binary_with(no_event, NULL), -EBADMSG);
        assert_int_equal(binary_with(event_not_object, NULL), -EBADMSG);
        assert_int_equal(binary_with(verification_with_event, NULL), -EBADMSG);
        assert_int_equal(binary_with(stream_updated_bad_status, NULL), -EBADMSG);
        assert_int_equal(binary_with(control_critical, NULL), -EBADMSG);
        /* Past root's bounds: its bytes are used (binary_with() checks). */
        assert_int_equal(binary_with(big_event, NULL), -E2BIG);
        assert_int_equal(binary_with(big_subject, NULL), -E2BIG);
        assert_int_equal(binary_with(many_critical, NULL), -E2BIG);
        assert_int_equal(binary_with(empty_critical, NULL), -E2BIG);
        assert_int_equal(binary_with(long_critical, NULL), -E2BIG);
}

/* The event's members and the subject as tagged values (ingest.c): every JSON type comes back
 * the same, nested to the bound, and what json_loadb() would not take of the same JSON text is
 * malformed. */
static json_t *nested(unsigned levels) {
        json_t *v = json_string("core");

        for (unsigned i = 1; i < levels; i++)
                v = i % 2 ? json_pack("[o]", v) : json_pack("{s:o}", "k", v);
        return json_pack("{s:o}", "deep", v);
}

static void expect_event(json_t *event, int code) {
        static char buf[4 * INGEST_MAX_EVENT];
        IngestRequest a, b;
        size_t len, left;

        fill(&a);
        json_decref(a.event);
        a.event = event;
        if (code == -E2BIG) {
                /* The worker refuses it before: its check, its writer and the JSON reader. */
                json_t *j = ingest_to_json(&a);

                assert_int_equal(ingest_check(&a), -E2BIG);
                assert_int_equal(ingest_record_put(&a, buf, sizeof(buf), &len), -E2BIG);
                assert_int_equal(ingest_from_json(j, &b), -E2BIG);
                json_decref(j);
                ingest_request_done(&a);
                return;
        }
        len = put(&a, buf, sizeof(buf));
        buf[len] = 'N';
        assert_int_equal(take_bin(buf, len + 1, &left, &b), code);
        if (code == 0 || code == -E2BIG)
                assert_int_equal(left, 1);
        if (code == 0) {
                assert_true(json_equal(b.event, a.event));
                assert_true(json_equal(b.subject, a.subject));
                ingest_request_done(&b);
        }
        ingest_request_done(&a);
}

/* A record of fill()'s whose event slice holds the bytes v (len of them): the code. */
static int event_bytes(const void *v, size_t len) {
        static char buf[4096];
        IngestRequest a, b;
        size_t n, at, left;
        uint32_t l = (uint32_t) len, absent = UINT32_MAX, none = 0;
        int k;

        fill(&a);
        json_decref(a.event);
        json_decref(a.subject);
        a.event = a.subject = NULL;
        a.critical = strv_free(a.critical);
        n = put(&a, buf, sizeof(buf));
        /* It ends with the event and subject absent and no critical names: 12 bytes. */
        at = n - 12;
        memcpy(buf + at, &l, 4);
        memcpy(buf + at + 4, v, len);
        memcpy(buf + at + 4 + len, &absent, 4);
        memcpy(buf + at + 8 + len, &none, 4);
        n = at + 12 + len;
        k = take_bin(buf, n, &left, &b);
        if (k == 0 || k == -E2BIG)
                assert_int_equal(left, 0);
        if (k == 0)
                ingest_request_done(&b);
        ingest_request_done(&a);
        return k;
}

#define TAGGED(...) ((const char[]) { __VA_ARGS__ }), sizeof((const char[]) { __VA_ARGS__ })

static void test_binary_values(void **state) {
        double nan = 0.0 / 0.0, inf = 1.0 / 0.0;
        char real_nan[9] = { 'r' }, real_inf[9] = { 'r' }, object_real[14] = { 'o', 1, 0, 0, 0,
                                                                                1, 0, 0, 0, 'x' };

        (void) state;
        expect_event(json_pack("{s:[i, f, b, b, n, s, {}, []], s:s, s:{s:s}, s:I}", "all", -7,
                               2.5, 1, 0, "caf\xc3\xa9 \xe4\xb8\xad", "", "", "reason_admin",
                               "en", "x", "big", (json_int_t) INT64_MIN),
                     0);
        expect_event(json_object(), 0);
        expect_event(nested(INGEST_MAX_DEPTH), 0);
        expect_event(nested(INGEST_MAX_DEPTH + 1), -E2BIG);

        /* The control: an object {"x": "y"}, as put_value() writes it. */
        assert_int_equal(event_bytes(TAGGED('o', 1, 0, 0, 0, 1, 0, 0, 0, 'x', 's', 1, 0, 0, 0, 'y')), 0);
        /* A key twice, a key absent, a key or a string with a NUL or not UTF-8. */
        assert_int_equal(event_bytes(TAGGED('o', 2, 0, 0, 0, 1, 0, 0, 0, 'x', 'n', 1, 0, 0, 0, 'x', 'n')),
                         -EBADMSG);
        assert_int_equal(event_bytes(TAGGED('o', 1, 0, 0, 0, -1, -1, -1, -1, 'n')), -EBADMSG);
        assert_int_equal(event_bytes(TAGGED('o', 1, 0, 0, 0, 1, 0, 0, 0, 0, 'n')), -EBADMSG);
        assert_int_equal(event_bytes(TAGGED('o', 1, 0, 0, 0, 1, 0, 0, 0, 'x', 's', 1, 0, 0, 0, 0)),
                         -EBADMSG);
        assert_int_equal(event_bytes(TAGGED('o', 1, 0, 0, 0, 1, 0, 0, 0, 'x', 's', 1, 0, 0, 0,
                                            (char) 0xff)),
                         -EBADMSG);
        /* Not an object at the top, an unknown tag, bytes left after the value, cut short,
         * more members than bytes, a string longer than what is left. */
        assert_int_equal(event_bytes(TAGGED('a', 0, 0, 0, 0)), -EBADMSG);
        assert_int_equal(event_bytes(TAGGED('o', 1, 0, 0, 0, 1, 0, 0, 0, 'x', '?')), -EBADMSG);
        assert_int_equal(event_bytes(TAGGED('o', 0, 0, 0, 0, 'n')), -EBADMSG);
        assert_int_equal(event_bytes(TAGGED('o', 0, 0)), -EBADMSG);
        assert_int_equal(event_bytes(TAGGED('o', -1, -1, -1, -1)), -EBADMSG);
        assert_int_equal(event_bytes(TAGGED('o', 1, 0, 0, 0, 1, 0, 0, 0, 'x', 's', 9, 0, 0, 0, 'y')),
                         -EBADMSG);
        assert_int_equal(event_bytes(TAGGED('o', 1, 0, 0, 0, 1, 0, 0, 0, 'x', 'i', 1, 2)), -EBADMSG);
        /* Nested past the bound, as a worker that did not check would write it: past root's
         * bounds (its bytes used), and at the bound exactly, taken. */
        {
                char deep[10 + 5 * INGEST_MAX_DEPTH + 1] = { 'o', 1, 0, 0, 0, 1, 0, 0, 0, 'k' };

                for (unsigned i = 0; i < INGEST_MAX_DEPTH; i++)
                        memcpy(deep + 10 + 5 * i, (const char[]) { 'a', 1, 0, 0, 0 }, 5);
                deep[sizeof(deep) - 1] = 'n';
                assert_int_equal(event_bytes(deep, sizeof(deep)), -E2BIG);
                deep[10 + 5 * (INGEST_MAX_DEPTH - 1)] = 'n';
                assert_int_equal(event_bytes(deep, 10 + 5 * (INGEST_MAX_DEPTH - 1) + 1), 0);
        }
        /* Numbers JSON cannot write. */
        memcpy(real_nan + 1, &nan, 8);
        memcpy(real_inf + 1, &inf, 8);
        memcpy(object_real + 10, real_nan, 4); /* 'r' and part of it: cut short */
        assert_int_equal(event_bytes(object_real, sizeof(object_real)), -EBADMSG);
        {
                char o[10 + 9] = { 'o', 1, 0, 0, 0, 1, 0, 0, 0, 'x' };

                memcpy(o + 10, real_nan, 9);
                assert_int_equal(event_bytes(o, sizeof(o)), -EBADMSG);
                memcpy(o + 10, real_inf, 9);
                assert_int_equal(event_bytes(o, sizeof(o)), -EBADMSG);
                real_inf[1 + 7] = 0; /* a finite double */
                memcpy(o + 10, real_inf, 9);
                assert_int_equal(event_bytes(o, sizeof(o)), 0);
        }
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
                cmocka_unit_test(test_binary_round_trip),
                cmocka_unit_test(test_binary_rejects),
                cmocka_unit_test(test_binary_values),
                cmocka_unit_test(test_rejects),
                cmocka_unit_test(test_stream_updated_needs_status),
                cmocka_unit_test(test_prepare_refuses_what_the_daemon_would),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
