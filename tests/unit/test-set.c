/* SPDX-License-Identifier: MIT */
/* SET validation against fixtures signed by python3-jwcrypto (tests/data/gen-jose.py). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "jwks.h"
#include "macro.h"
#include "set.h"
#include "tests.h"

#define ISS "https://tr.example.test"
#define AUD "https://host1.example.test/ssf"
#define IAT 1700000000u
#define CAEP CAEP_EVENT_PREFIX
#define RISC RISC_EVENT_PREFIX

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

static const SetExpect expect = {
        .issuer = ISS,
        .audience = AUD,
        .now_sec = IAT + 10,
        .max_skew_sec = 300,
};

static int verify_full(const char *name, const SetExpect *e, const char *jti, SsfSet **ret, SetError *err) {
        _cleanup_free_ char *file = NULL;
        _cleanup_free_ char *tok = NULL;
        size_t len;
        int r;

        assert_true(asprintf(&file, "%s.jwt", name) > 0);
        tok = test_data_read("jose", file, &len);
        memset(err, 0, sizeof *err);
        r = set_verify(tok, len, keys, e, jti, ret, err);
        if (r < 0) {
                assert_null(*ret);
                assert_non_null(err->err);
                assert_true(strlen(err->description) > 0);
                /* The description never echoes the token. */
                assert_null(strstr(err->description, "eyJ"));
        }
        return r;
}

static SsfSet *ok(const char *name) {
        SsfSet *s = NULL;
        SetError err;
        int r = verify_full(name, &expect, NULL, &s, &err);
        if (r != 0)
                fail_msg("%s: %d (%s: %s)", name, r, strempty(err.err), err.description);
        assert_non_null(s);
        return s;
}

static void bad(const char *name, int expected_r, const char *expected_err) {
        SsfSet *s = NULL;
        SetError err;
        int r = verify_full(name, &expect, NULL, &s, &err);
        if (r != expected_r || !streq_ptr(err.err, expected_err))
                fail_msg("%s: got %d/%s (%s), expected %d/%s", name, r, strempty(err.err),
                         err.description, expected_r, expected_err);
}

static void test_ok_algorithms(void **state) {
        static const char *const names[] = {
                "set-ok-rs256", "set-ok-ps256", "set-ok-ps256-pinned", "set-ok-es256", "set-ok-es384",
                "set-ok-eddsa", "set-ok-typ-application", "set-ok-typ-upper", "set-ok-aud-array",
                "set-ok-iat-within-skew", "set-ok-ignored-headers", "set-ok-no-kid-single",
                "set-ok-ps256-raw", "set-ok-ed25519-alg",
        };
        for (size_t i = 0; i < ARRAY_SIZE(names); i++)
                ssf_set_free(ok(names[i]));
}

static void test_extraction(void **state) {
        SsfSet *s = ok("set-ok-rs256");

        assert_string_equal(s->iss, ISS);
        assert_string_equal(s->jti, "jti-0001");
        assert_string_equal(s->txn, "txn-1");
        assert_int_equal(s->iat, IAT);
        assert_string_equal(s->event_uri, CAEP "session-revoked");
        assert_string_equal(event_short_name(s->event_uri), "session-revoked");
        assert_true(json_is_object(s->event));
        assert_string_equal(json_string_value(json_object_get(s->event, "initiating_entity")), "policy");
        assert_string_equal(json_string_value(json_object_get(s->subject, "email")), "alice@example.com");
        assert_int_equal(s->event_time, IAT - 100);
        ssf_set_free(s);
}

static void test_delivered_jti(void **state) {
        SsfSet *s = NULL;
        SetError err;

        assert_int_equal(verify_full("set-ok-rs256", &expect, "jti-0001", &s, &err), 0);
        ssf_set_free(s);
        s = NULL;
        assert_int_equal(verify_full("set-ok-rs256", &expect, "jti-0002", &s, &err), -EBADMSG);
        assert_string_equal(err.err, "invalid_request");
}

static void test_header_failures(void **state) {
        bad("set-typ-missing", -EBADMSG, "invalid_request");
        bad("set-typ-jwt", -EBADMSG, "invalid_request");
        bad("set-crit", -EBADMSG, "invalid_request");
        bad("set-alg-none", -EKEYREJECTED, "invalid_key");
        bad("set-alg-none-sig", -EKEYREJECTED, "invalid_key");
        bad("set-hs256", -EKEYREJECTED, "invalid_key");
        bad("set-unknown-kid", -ENOKEY, "invalid_key");
        bad("set-wrong-key", -EKEYREJECTED, "invalid_key");
        bad("set-alg-pinned-mismatch", -ENOKEY, "invalid_key");
        bad("set-no-kid-ambiguous", -ENOKEY, "invalid_key");
        bad("set-weak-rsa", -ENOKEY, "invalid_key");
        /* PSS must use salt length = hash length and MGF1 with the same hash. */
        bad("set-ps256-salt-max", -EKEYREJECTED, "invalid_key");
        bad("set-ps256-mgf1-sha1", -EKEYREJECTED, "invalid_key");
}

static void test_claim_failures(void **state) {
        bad("set-iss-wrong", -EPROTO, "invalid_issuer");
        bad("set-iss-missing", -EBADMSG, "invalid_request");
        bad("set-aud-missing", -EPROTO, "invalid_audience");
        bad("set-aud-wrong", -EPROTO, "invalid_audience");
        bad("set-aud-array-wrong", -EPROTO, "invalid_audience");
        bad("set-iat-future", -EBADMSG, "invalid_request");
        bad("set-iat-missing", -EBADMSG, "invalid_request");
        bad("set-iat-string", -EBADMSG, "invalid_request");
        bad("set-jti-missing", -EBADMSG, "invalid_request");
        bad("set-jti-empty", -EBADMSG, "invalid_request");
        bad("set-jti-long", -EBADMSG, "invalid_request");
        bad("set-events-missing", -EBADMSG, "invalid_request");
        bad("set-events-empty", -EBADMSG, "invalid_request");
        bad("set-events-array", -EBADMSG, "invalid_request");
        bad("set-event-not-object", -EBADMSG, "invalid_request");
        bad("set-sub-present", -EBADMSG, "invalid_request");
        bad("set-exp-present", -EBADMSG, "invalid_request");
        bad("set-two-events", -EBADMSG, "invalid_request");
        bad("set-duplicate-claim", -EBADMSG, "invalid_request");
        bad("set-not-json", -EBADMSG, "invalid_request");
        bad("set-sub-id-not-object", -EBADMSG, "invalid_request");
}

static void test_skew_and_audience_options(void **state) {
        SetExpect e = expect;
        SsfSet *s = NULL;
        SetError err;

        /* iat 3600 s ahead passes with enough skew, and fails with none. */
        e.max_skew_sec = 3600;
        assert_int_equal(verify_full("set-iat-future", &e, NULL, &s, &err), 0);
        s = ssf_set_free(s);
        e.max_skew_sec = 0;
        e.now_sec = IAT + 199;
        assert_int_equal(verify_full("set-ok-iat-within-skew", &e, NULL, &s, &err), -EBADMSG);
        /* No audience expected: aud is not checked (but must be well-formed when present). */
        e = expect;
        e.audience = NULL;
        assert_int_equal(verify_full("set-aud-missing", &e, NULL, &s, &err), 0);
        s = ssf_set_free(s);
        assert_int_equal(verify_full("set-aud-wrong", &e, NULL, &s, &err), 0);
        s = ssf_set_free(s);
        /* Wrong expected issuer for a good SET. */
        e = expect;
        e.issuer = "https://tr.example.test/";
        assert_int_equal(verify_full("set-ok-rs256", &e, NULL, &s, &err), -EPROTO);
        assert_string_equal(err.err, "invalid_issuer");
}

static void test_tampered(void **state) {
        size_t len;
        _cleanup_free_ char *tok = test_data_read("jose", "set-ok-rs256.jwt", &len);
        SsfSet *s = NULL;
        SetError err;
        char *p = strchr(tok, '.') + 5;

        *p = *p == 'A' ? 'B' : 'A';
        assert_int_equal(set_verify(tok, len, keys, &expect, NULL, &s, &err), -EKEYREJECTED);
        assert_string_equal(err.err, "invalid_key");
        assert_null(s);
        /* Truncated and oversized tokens. */
        assert_int_equal(set_verify(tok, 10, keys, &expect, NULL, &s, &err), -EBADMSG);
        assert_int_equal(set_verify(tok, JWS_MAX_SIZE + 1, keys, &expect, NULL, &s, &err), -EBADMSG);
        assert_string_equal(err.err, "invalid_request");
}

static void test_event_selection(void **state) {
        SsfSet *s;

        s = ok("set-extension-event");
        assert_string_equal(s->event_uri, CAEP "session-revoked");
        assert_int_equal(s->event_time, IAT - 5);
        ssf_set_free(s);

        s = ok("set-unknown-event");
        assert_string_equal(s->event_uri, "https://vendor.example/ev/x");
        ssf_set_free(s);

        s = ok("set-legacy-token-claims");
        assert_string_equal(s->event_uri, CAEP "token-claims-change");
        assert_non_null(json_object_get(s->event, "claims"));
        ssf_set_free(s);

        s = ok("set-legacy-verification");
        assert_string_equal(s->event_uri, SSF_EVENT_VERIFICATION);
        assert_string_equal(json_string_value(json_object_get(s->event, "state")), "abc");
        assert_string_equal(json_string_value(json_object_get(s->subject, "id")), "stream-1");
        ssf_set_free(s);

        /* Two spellings of the same event: the current URI's payload is used. */
        s = ok("set-alternative-uris");
        assert_string_equal(s->event_uri, SSF_EVENT_VERIFICATION);
        assert_string_equal(json_string_value(json_object_get(s->event, "state")), "s1");
        ssf_set_free(s);
}

static void test_okta_shape(void **state) {
        SsfSet *s = ok("set-okta");
        json_t *user;

        assert_null(s->txn);
        assert_non_null(s->subject);
        user = json_object_get(s->subject, "user");
        assert_string_equal(json_string_value(json_object_get(user, "sub")), "00u1okta");
        /* event_timestamp in milliseconds. */
        assert_int_equal(s->event_time, IAT - 60);
        ssf_set_free(s);

        s = ok("set-okta-user-risk");
        assert_string_equal(s->event_uri, OKTA_EVENT_PREFIX "user-risk-change");
        assert_int_equal(s->event_time, IAT - 30);
        ssf_set_free(s);
}

static void test_subjects_and_times(void **state) {
        SsfSet *s;

        /* Google's subject_type and the legacy "iss-sub" spelling. */
        s = ok("set-google-subject-type");
        assert_string_equal(json_string_value(json_object_get(s->subject, "format")), "iss_sub");
        assert_string_equal(json_string_value(json_object_get(s->subject, "sub")), "g-123");
        ssf_set_free(s);

        s = ok("set-toe");
        assert_int_equal(s->event_time, IAT - 500);
        ssf_set_free(s);

        /* An event time after iat is capped at iat. */
        s = ok("set-event-time-future");
        assert_int_equal(s->event_time, IAT);
        ssf_set_free(s);

        s = ok("set-no-subject");
        assert_null(s->subject);
        ssf_set_free(s);

        s = ok("set-txn-number");
        assert_null(s->txn);
        ssf_set_free(s);
}

static int claims(const char *json, SetError *err) {
        SsfSet *s = NULL;
        int r = set_validate_claims(json, strlen(json), &expect, &s, err);
        ssf_set_free(s);
        return r;
}

/* The claims' text goes on (for hooks) as the transmitter signed it, unless a subject in them
 * was rewritten: then as they are now. */
static void test_claims_text(void **state) {
        static const char plain[] =
                "{ \"iss\": \"" ISS "\", \"aud\": \"" AUD "\", \"jti\": \"j\", \"iat\": 1700000000,"
                " \"sub_id\": {\"format\": \"email\", \"email\": \"a@example.com\"},"
                " \"events\": {\"" CAEP "session-revoked\": {}} }";
        static const char legacy[] =
                "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"jti\":\"j\",\"iat\":1700000000,"
                "\"sub_id\":{\"subject_type\":\"email\",\"email\":\"a@example.com\"},"
                "\"events\":{\"" CAEP "session-revoked\":{}}}";
        _cleanup_free_ char *text = NULL;
        SsfSet *s = NULL;
        SetError err;
        json_t *back;

        assert_int_equal(set_validate_claims(plain, strlen(plain), &expect, &s, &err), 0);
        assert_non_null(s->claims_text);
        assert_string_equal(s->claims_text, plain);
        ssf_set_free(s);
        s = NULL;

        assert_int_equal(set_validate_claims(legacy, strlen(legacy), &expect, &s, &err), 0);
        assert_null(s->claims_text);
        /* What is handed on then is the rewritten form. */
        text = json_dumps(s->claims, JSON_COMPACT);
        back = json_loads(text, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(json_object_get(back, "sub_id"),
                                                              "format")), "email");
        json_decref(back);
        ssf_set_free(s);
}

static void test_claims_direct(void **state) {
        SetError err;

#define BASE "\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"jti\":\"j\",\"events\":{\"" CAEP "session-revoked\":{}}"
        assert_int_equal(claims("{" BASE ",\"iat\":1700000000}", &err), 0);
        assert_int_equal(claims("{" BASE ",\"iat\":1700000000.75}", &err), 0);
        assert_int_equal(claims("{" BASE ",\"iat\":-1}", &err), -EBADMSG);
        assert_int_equal(claims("{" BASE ",\"iat\":1e309}", &err), -EBADMSG);
        assert_int_equal(claims("{" BASE ",\"iat\":18446744073709551615}", &err), -EBADMSG);
        assert_int_equal(claims("{" BASE ",\"iat\":null}", &err), -EBADMSG);
        assert_int_equal(claims("{" BASE ",\"iat\":1700000000,\"aud\":\"x\"}", &err), -EBADMSG);
        assert_int_equal(claims("[1,2]", &err), -EBADMSG);
        assert_int_equal(claims("{\"iss\":\"" ISS "\",\"aud\":[],\"jti\":\"j\",\"iat\":1,\"events\":{}}", &err),
                         -EBADMSG);
        assert_int_equal(claims("{\"iss\":\"" ISS "\",\"aud\":[\"" AUD "\",1],\"jti\":\"j\",\"iat\":1,"
                                "\"events\":{\"" CAEP "session-revoked\":{}}}", &err),
                         -EBADMSG);
        /* Invalid UTF-8 in a string. */
        assert_int_equal(claims("{" BASE ",\"iat\":1,\"x\":\"\xff\xfe\"}", &err), -EBADMSG);
        /* Known event + known event of another type; two unknown types. */
        assert_int_equal(claims("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"jti\":\"j\",\"iat\":1,\"events\":{\"" RISC
                                "account-disabled\":{},\"" RISC "account-purged\":{}}}", &err),
                         -EBADMSG);
        assert_int_equal(claims("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"jti\":\"j\",\"iat\":1,"
                                "\"events\":{\"urn:a\":{},\"urn:b\":{}}}", &err),
                         -EBADMSG);
        /* Oversized payload. */
        size_t big = SET_MAX_PAYLOAD + 1;
        char *huge = malloc(big + 1);
        assert_non_null(huge);
        memset(huge, ' ', big);
        huge[big] = 0;
        huge[0] = '{';
        huge[big - 1] = '}';
        assert_int_equal(claims(huge, &err), -EBADMSG);
        free(huge);
#undef BASE
}

static void test_short_name(void **state) {
        assert_string_equal(event_short_name(CAEP "credential-change"), "credential-change");
        assert_string_equal(event_short_name("urn:example:thing"), "thing");
        assert_string_equal(event_short_name("plain"), "plain");
        assert_string_equal(event_short_name("https://x/"), "https://x/");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ok_algorithms),
                cmocka_unit_test(test_extraction),
                cmocka_unit_test(test_claims_text),
                cmocka_unit_test(test_delivered_jti),
                cmocka_unit_test(test_header_failures),
                cmocka_unit_test(test_claim_failures),
                cmocka_unit_test(test_skew_and_audience_options),
                cmocka_unit_test(test_tampered),
                cmocka_unit_test(test_event_selection),
                cmocka_unit_test(test_okta_shape),
                cmocka_unit_test(test_subjects_and_times),
                cmocka_unit_test(test_claims_direct),
                cmocka_unit_test(test_short_name),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
