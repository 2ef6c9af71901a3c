/* SPDX-License-Identifier: MIT */
/* JWKS parsing and key selection, on documents written by python3-jwcrypto
 * (tests/data/gen-jose.py) and on hand-made hostile ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "jwks.h"
#include "jws.h"
#include "macro.h"
#include "tests.h"

static int parse_file(const char *name, Jwks **ret) {
        size_t len;
        _cleanup_free_ char *json = test_data_read("jose", name, &len);
        return jwks_parse(json, len, ret);
}

static int parse_str(const char *json) {
        Jwks *j = NULL;
        int r = jwks_parse(json, strlen(json), &j);
        if (r < 0)
                assert_null(j);
        else
                r = (int) jwks_count(j);
        jwks_free(j);
        return r;
}

static void test_alg_names(void **state) {
        static const char *const ok[] = { "RS256", "RS384", "RS512", "PS256", "PS384",
                                          "PS512", "ES256", "ES384", "ES512", "EdDSA" };
        for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
                JwsAlg a = jws_alg_from_string(ok[i]);
                assert_true(a >= 0);
                assert_string_equal(jws_alg_to_string(a), ok[i]);
        }
        assert_int_equal(jws_alg_from_string("Ed25519"), JWS_ALG_EDDSA);
        static const char *const bad[] = { "none", "None", "HS256", "HS384", "HS512", "rs256", "ES256K",
                                           "Ed448", "RSA-OAEP", "", "RS256 " };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                assert_int_equal(jws_alg_from_string(bad[i]), _JWS_ALG_INVALID);
        assert_int_equal(jws_alg_from_string(NULL), _JWS_ALG_INVALID);
        assert_null(jws_alg_to_string(_JWS_ALG_MAX));
        assert_null(jws_alg_to_string(_JWS_ALG_INVALID));
}

static void test_transmitter_jwks(void **state) {
        Jwks *j = NULL;
        const JwksKey *k;

        assert_int_equal(parse_file("jwks.json", &j), 0);
        assert_int_equal(jwks_count(j), 5);

        k = jwks_find(j, "rsa1", JWS_ALG_RS256);
        assert_non_null(k);
        assert_string_equal(k->kid, "rsa1");
        assert_int_equal(k->alg, _JWS_ALG_INVALID);
        assert_non_null(k->ready); /* set up for RS256 once, copied per SET */
        assert_int_equal(k->ready_alg, JWS_ALG_RS256);
        assert_ptr_equal(jwks_find(j, "rsa1", JWS_ALG_PS512), k);
        assert_null(jwks_find(j, "rsa1", JWS_ALG_ES256));
        assert_null(jwks_find(j, "rsa1", JWS_ALG_EDDSA));

        /* Pinned by its "alg". */
        k = jwks_find(j, "rsa-ps", JWS_ALG_PS256);
        assert_non_null(k);
        assert_int_equal(k->alg, JWS_ALG_PS256);
        assert_non_null(k->ready);
        assert_int_equal(k->ready_alg, JWS_ALG_PS256);
        assert_null(jwks_find(j, "rsa-ps", JWS_ALG_RS256));
        assert_null(jwks_find(j, "rsa-ps", JWS_ALG_PS384));

        /* Curves fit exactly one alg. */
        assert_non_null(jwks_find(j, "ec1", JWS_ALG_ES256));
        assert_null(jwks_find(j, "ec1", JWS_ALG_ES256)->ready);
        assert_null(jwks_find(j, "ec1", JWS_ALG_ES384));
        assert_non_null(jwks_find(j, "ec384", JWS_ALG_ES384));
        assert_null(jwks_find(j, "ec384", JWS_ALG_ES512));
        assert_non_null(jwks_find(j, "ed1", JWS_ALG_EDDSA));
        assert_null(jwks_find(j, "ed1", JWS_ALG_RS256));

        /* Unknown kid; no kid: only an unambiguous key. */
        assert_null(jwks_find(j, "nope", JWS_ALG_RS256));
        assert_null(jwks_find(j, "", JWS_ALG_RS256));
        assert_non_null(jwks_find(j, NULL, JWS_ALG_RS256)); /* rsa-ps is pinned to PS256 */
        assert_null(jwks_find(j, NULL, JWS_ALG_PS256));     /* rsa1 and rsa-ps both fit */
        assert_non_null(jwks_find(j, NULL, JWS_ALG_ES256));
        assert_null(jwks_find(j, NULL, JWS_ALG_ES512));
        assert_null(jwks_find(j, "rsa1", _JWS_ALG_INVALID));
        assert_null(jwks_find(NULL, "rsa1", JWS_ALG_RS256));
        jwks_free(j);
}

static void test_skipped_keys(void **state) {
        Jwks *j = NULL;

        /* Weak RSA, symmetric, private, enc, key_ops without verify, alg/kty mismatch, HS alg,
         * Ed448, unknown kty, a non-object, a short EC coordinate: all skipped; one usable. */
        assert_int_equal(parse_file("jwks-skipped.json", &j), 0);
        assert_int_equal(jwks_count(j), 1);
        assert_non_null(jwks_find(j, "usable", JWS_ALG_EDDSA));
        assert_null(jwks_find(j, "private", JWS_ALG_RS256));
        assert_null(jwks_find(j, "enc", JWS_ALG_RS256));
        assert_null(jwks_find(j, "alg-mismatch", JWS_ALG_ES256));
        jwks_free(j);

        j = NULL;
        assert_int_equal(parse_file("jwks-weak.json", &j), -ENOKEY);
        assert_null(j);
}

static void test_malformed(void **state) {
        assert_int_equal(parse_str(""), -EBADMSG);
        assert_int_equal(parse_str("not json"), -EBADMSG);
        assert_int_equal(parse_str("[]"), -EBADMSG);
        assert_int_equal(parse_str("{}"), -EBADMSG);
        assert_int_equal(parse_str("{\"keys\":{}}"), -EBADMSG);
        assert_int_equal(parse_str("{\"keys\":[]}"), -ENOKEY);
        assert_int_equal(parse_str("{\"keys\":[],\"keys\":[]}"), -EBADMSG);
        assert_int_equal(parse_str("{\"keys\":[1,\"x\",null,[]]}"), -ENOKEY);

        /* Ed25519 key of the wrong length, bad base64url, padding. */
        assert_int_equal(parse_str("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}]}"), -ENOKEY);
        assert_int_equal(parse_str("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
                                   "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"}]}"),
                         -ENOKEY);
        assert_int_equal(parse_str("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
                                   "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}"),
                         1);
        /* EC point not on the curve (y changed). */
        assert_int_equal(parse_str("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
                                   "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                                   "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5b0\"}]}"),
                         -ENOKEY);
        assert_int_equal(parse_str("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
                                   "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                                   "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}"),
                         1);
        assert_int_equal(parse_str("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"AA\",\"y\":\"AA\"}]}"),
                         -ENOKEY);
        /* RSA with even exponent / e = 1 / missing n. */
        assert_int_equal(parse_str("{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\"}]}"), -ENOKEY);
        assert_int_equal(parse_str("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQ\"}]}"), -ENOKEY);
        /* kid that is not a string, or too long. */
        assert_int_equal(parse_str("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":5,"
                                   "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}"),
                         -ENOKEY);
}

static void test_limits(void **state) {
        static const char key[] = "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
        size_t cap = (JWKS_MAX_KEYS + 2) * sizeof key + 32;
        char *json = malloc(cap);
        size_t o;

        assert_non_null(json);
        for (unsigned n = JWKS_MAX_KEYS; n <= JWKS_MAX_KEYS + 1; n++) {
                o = (size_t) snprintf(json, cap, "{\"keys\":[");
                for (unsigned i = 0; i < n; i++)
                        o += (size_t) snprintf(json + o, cap - o, "%s%s", i ? "," : "", key);
                snprintf(json + o, cap - o, "]}");
                assert_int_equal(parse_str(json), n == JWKS_MAX_KEYS ? (int) JWKS_MAX_KEYS : -E2BIG);
        }
        free(json);

        /* Oversized document: rejected before parsing. */
        size_t big = JWKS_MAX_SIZE + 1;
        json = malloc(big);
        assert_non_null(json);
        memset(json, ' ', big);
        memcpy(json, "{\"keys\":[]}", 11);
        Jwks *j = NULL;
        assert_int_equal(jwks_parse(json, big, &j), -E2BIG);
        assert_null(j);
        free(json);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_alg_names),
                cmocka_unit_test(test_transmitter_jwks),
                cmocka_unit_test(test_skipped_keys),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_limits),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
