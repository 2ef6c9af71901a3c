/* SPDX-License-Identifier: MIT */
/* Compact JWS parsing and verification against published vectors: RFC 7520 §4.1-4.4, RFC 7515
 * App. A.3/A.5, RFC 8037 App. A.4. These lack "typ", so they are tested at the JWS layer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jwks.h"
#include "jws.h"
#include "macro.h"

/* RFC 7520 §3.3 RSA public key and §3.2 P-521 public key. */
#define RFC7520_KID "bilbo.baggins@hobbiton.example"
#define RFC7520_N                                                                                  \
        "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpM" \
        "aJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6" \
        "cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYw" \
        "dq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw"
#define RFC7520_RSA_JWK(kid, extra) \
        "{\"kty\":\"RSA\",\"kid\":\"" kid "\",\"use\":\"sig\"" extra ",\"n\":\"" RFC7520_N "\",\"e\":\"AQAB\"}"
#define RFC7520_EC_JWK(kid)                                                                        \
        "{\"kty\":\"EC\",\"kid\":\"" kid "\",\"use\":\"sig\",\"crv\":\"P-521\","                    \
        "\"x\":\"AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt\"," \
        "\"y\":\"AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1\"}"

#define RFC7520_PAYLOAD                                                                            \
        "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0" \
        "aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91" \
        "IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4"
#define RFC7520_PAYLOAD_TEXT                                                                       \
        "It\xe2\x80\x99s a dangerous business, Frodo, going out your door. You step onto the road, and if " \
        "you don't keep your feet, there\xe2\x80\x99s no knowing where you might be swept off to."

static const char rs256_41[] =
        "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9." RFC7520_PAYLOAD
        ".MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996ivp83xugl"
        "II7PNDi84wnB-BDkoBwA78185hX-Es4JIwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aAE6x8w"
        "W1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluPxUAhb6L2aXic1U12podGU0KLUQSE_oI-Z"
        "nmKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18kDquDg";
static const char ps384_42[] =
        "eyJhbGciOiJQUzM4NCIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9." RFC7520_PAYLOAD
        ".cu22eBqkYDKgIlTpzDXGvaFfz6WGoz7fUDcfT0kkOy42miAh2qyBzk1xEsnk2IpN6-tPid6VrklHkqsGqDqHCdP6O8TT"
        "B5dDDItllVo6_1OLPpcbUrhiUSMxbbXUvdvWXzg-UD8biiReQFlfz28zGWVsdiNAUf8ZnyPEgVFn442ZdNqiVJRmBqrYRX"
        "e8P_ijQ7p8Vdz0TTrxUeT3lm8d9shnr2lfJT8ImUjvAA2Xez2Mlp8cBE5awDzT0qI0n6uiP1aCN_2_jLAeQTlqRHtfa64Q"
        "QSUmFAAjVKPbByi7xho0uTOcbH510a6GYmJUAfmWjwZ6oD4ifKo8DYM-X72Eaw";
static const char es512_43[] =
        "eyJhbGciOiJFUzUxMiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9." RFC7520_PAYLOAD
        ".AE_R_YZCChjn4791jSQCrdPZCNYqHXCTZH0-JZGYNlaAjP2kqaluUIIUnC9qvbu9Plon7KRTzoNEuT4Va2cmL1eJAQy3m"
        "tPBu_u_sDDyYjnAMDxXPn7XrT0lw-kvAD890jl8e2puQens_IEKBpHABlsbEPX6sFY8OcGDqoRuBomu9xQ2";
static const char hs256_44[] =
        "eyJhbGciOiJIUzI1NiIsImtpZCI6IjAxOGMwYWU1LTRkOWItNDcxYi1iZmQ2LWVlZjMxNGJjNzAzNyJ9." RFC7520_PAYLOAD
        ".s0h6KThzkfBBBkLspW1h84VsJZFTsPPqMDA7g1Md7p0";

/* RFC 7515 App. A.3 (ES256, header with no kid) and App. A.5 (unsecured). */
static const char a3_jwks[] =
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
        "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";
static const char a3_es256[] =
        "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS"
        "9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqP"
        "P3-Kg6NU1Q";
static const char a5_none[] =
        "eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9p"
        "c19yb290Ijp0cnVlfQ.";

/* RFC 8037 App. A.1 key and A.4 JWS. */
static const char ed_jwks[] =
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";
static const char ed_a4[] =
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQ"
        "R6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

static Jwks *load_jwks(const char *json) {
        Jwks *j = NULL;
        assert_int_equal(jwks_parse(json, strlen(json), &j), 0);
        assert_non_null(j);
        return j;
}

static int parse_and_verify(const char *token, const char *jwks_json) {
        Jws *jws = NULL;
        Jwks *keys = load_jwks(jwks_json);
        int r = jws_parse(token, strlen(token), &jws);
        if (r == 0) {
                r = jws_verify(jws, keys);
                jws_free(jws);
        }
        jwks_free(keys);
        return r;
}

#define RSA_JWKS "{\"keys\":[" RFC7520_RSA_JWK(RFC7520_KID, "") "]}"
#define EC_JWKS "{\"keys\":[" RFC7520_EC_JWK(RFC7520_KID) "]}"

static void test_rfc7520_rs256(void **state) {
        Jws *jws = NULL;

        assert_int_equal(jws_parse(rs256_41, strlen(rs256_41), &jws), 0);
        assert_int_equal(jws->alg, JWS_ALG_RS256);
        assert_string_equal(jws->kid, RFC7520_KID);
        assert_null(jws->typ);
        assert_int_equal(jws->payload_len, strlen(RFC7520_PAYLOAD_TEXT));
        assert_memory_equal(jws->payload, RFC7520_PAYLOAD_TEXT, jws->payload_len);
        assert_int_equal(jws->signature_len, 256);
        jws_free(jws);

        assert_int_equal(parse_and_verify(rs256_41, RSA_JWKS), 0);
}

static char *tamper(const char *token, size_t pos) {
        char *t = strdup(token);
        assert_non_null(t);
        t[pos] = t[pos] == 'A' ? 'B' : 'A';
        return t;
}

static void test_rfc7520_rs256_tampered(void **state) {
        const char *dot = strchr(rs256_41, '.');
        _cleanup_free_ char *payload = tamper(rs256_41, (size_t) (dot - rs256_41) + 10);
        _cleanup_free_ char *sig = tamper(rs256_41, strlen(rs256_41) - 20);

        assert_int_equal(parse_and_verify(payload, RSA_JWKS), -EKEYREJECTED);
        assert_int_equal(parse_and_verify(sig, RSA_JWKS), -EKEYREJECTED);
}

static int verify_with(const char *token, const Jwks *keys) {
        Jws *jws = NULL;
        int r = jws_parse(token, strlen(token), &jws);

        if (r == 0)
                r = jws_verify(jws, keys);
        jws_free(jws);
        return r;
}

/* An RSA key's context is set up once (RS256 for a key without "alg") and copied for each
 * SET: one verification leaves it as it was, whatever its outcome, and another alg still
 * sets up a context of its own. */
static void test_prepared_context(void **state) {
        const char *dot = strchr(rs256_41, '.');
        _cleanup_free_ char *sig = tamper(rs256_41, strlen(rs256_41) - 20);
        _cleanup_free_ char *payload = tamper(rs256_41, (size_t) (dot - rs256_41) + 10);
        Jwks *keys = load_jwks(RSA_JWKS);
        const JwksKey *k = jwks_find(keys, RFC7520_KID, JWS_ALG_RS256);

        assert_non_null(k);
        assert_non_null(k->ready);
        assert_int_equal(k->ready_alg, JWS_ALG_RS256);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(verify_with(rs256_41, keys), 0);
                assert_int_equal(verify_with(sig, keys), -EKEYREJECTED);
                assert_int_equal(verify_with(payload, keys), -EKEYREJECTED);
                assert_int_equal(verify_with(ps384_42, keys), 0);
        }
        jwks_free(keys);

        keys = load_jwks(EC_JWKS);
        assert_null(jwks_find(keys, RFC7520_KID, JWS_ALG_ES512)->ready);
        jwks_free(keys);
}

static void test_rfc7520_ps384(void **state) {
        assert_int_equal(parse_and_verify(ps384_42, RSA_JWKS), 0);
        /* The same key pinned to another alg must not verify it. */
        assert_int_equal(parse_and_verify(ps384_42, "{\"keys\":[" RFC7520_RSA_JWK(RFC7520_KID, ",\"alg\":\"RS256\"") "]}"),
                         -ENOKEY);
        assert_int_equal(parse_and_verify(ps384_42, "{\"keys\":[" RFC7520_RSA_JWK(RFC7520_KID, ",\"alg\":\"PS384\"") "]}"),
                         0);
}

static void test_rfc7520_es512(void **state) {
        assert_int_equal(parse_and_verify(es512_43, EC_JWKS), 0);

        /* A signature one byte short (not 2 * 66 bytes) is rejected, not "fixed up". */
        _cleanup_free_ char *shorter = strndup(es512_43, strlen(es512_43) - 4);
        assert_int_equal(parse_and_verify(shorter, EC_JWKS), -EKEYREJECTED);
        _cleanup_free_ char *bad = tamper(es512_43, strlen(es512_43) - 30);
        assert_int_equal(parse_and_verify(bad, EC_JWKS), -EKEYREJECTED);
}

static void test_rfc7520_hs256_rejected(void **state) {
        Jws *jws = NULL;
        assert_int_equal(jws_parse(hs256_44, strlen(hs256_44), &jws), -EPROTONOSUPPORT);
        assert_null(jws);
}

static void test_alg_none_rejected(void **state) {
        Jws *jws = NULL;
        assert_int_equal(jws_parse(a5_none, strlen(a5_none), &jws), -EPROTONOSUPPORT);
        assert_null(jws);
}

static void test_rfc7515_a3_es256(void **state) {
        assert_int_equal(parse_and_verify(a3_es256, a3_jwks), 0);
        /* ES256 token with a P-521 key: type/curve must fit the alg. */
        assert_int_equal(parse_and_verify(a3_es256,
                                          "{\"keys\":[" RFC7520_EC_JWK("x") "]}"),
                         -ENOKEY);
}

static void test_rfc8037_ed25519(void **state) {
        assert_int_equal(parse_and_verify(ed_a4, ed_jwks), 0);
        _cleanup_free_ char *bad = tamper(ed_a4, 25);
        assert_int_equal(parse_and_verify(bad, ed_jwks), -EKEYREJECTED);
}

static void test_key_alg_mismatch(void **state) {
        /* RS256 token, but the key with its kid is an EC key. */
        assert_int_equal(parse_and_verify(rs256_41, EC_JWKS), -ENOKEY);
        /* ES512 token, RSA key with that kid. */
        assert_int_equal(parse_and_verify(es512_43, RSA_JWKS), -ENOKEY);
        /* Ed25519 token, EC P-256 key. */
        assert_int_equal(parse_and_verify(ed_a4, a3_jwks), -ENOKEY);
}

static void test_kid(void **state) {
        /* Unknown kid. */
        assert_int_equal(parse_and_verify(rs256_41, "{\"keys\":[" RFC7520_RSA_JWK("someone-else", "") "]}"),
                         -ENOKEY);
        /* The token names a kid, the only key has none: no match. */
        assert_int_equal(parse_and_verify(rs256_41,
                                          "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"" RFC7520_N "\",\"e\":\"AQAB\"}]}"),
                         -ENOKEY);
        /* Right kid among several keys. */
        assert_int_equal(parse_and_verify(rs256_41, "{\"keys\":[" RFC7520_RSA_JWK("a", "") "," RFC7520_EC_JWK(
                                                             RFC7520_KID) "," RFC7520_RSA_JWK(RFC7520_KID, "") "]}"),
                         0);
        /* No kid in the token, one fitting key: used. Two fitting keys: ambiguous. */
        assert_int_equal(parse_and_verify(ed_a4, ed_jwks), 0);
        assert_int_equal(parse_and_verify(ed_a4,
                                          "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"1\",\"x\":\"11qYAYKx"
                                          "CrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
                                          "\"kid\":\"2\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}"),
                         -ENOKEY);
}

static void test_rsa_1024_rejected(void **state) {
        /* A 1024-bit modulus (128 bytes of 0xc5..., odd). */
        char n[200] = "";
        uint8_t raw[128];
        _cleanup_free_ char *b64 = NULL;
        char json[512];
        Jwks *j = NULL;

        memset(raw, 0xc5, sizeof raw);
        assert_int_equal(base64url_encode(raw, sizeof raw, &b64), 0);
        snprintf(n, sizeof n, "%s", b64);
        snprintf(json, sizeof json, "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k\",\"n\":\"%s\",\"e\":\"AQAB\"}]}", n);
        assert_int_equal(jwks_parse(json, strlen(json), &j), -ENOKEY);
        assert_null(j);
}

static void test_base64url(void **state) {
        uint8_t buf[64];
        uint8_t *out = NULL;
        size_t out_len = 0;

        for (size_t i = 0; i < sizeof buf; i++)
                buf[i] = (uint8_t) (i * 37 + 11);
        for (size_t len = 0; len <= sizeof buf; len++) {
                _cleanup_free_ char *enc = NULL;
                assert_int_equal(base64url_encode(buf, len, &enc), 0);
                assert_null(strpbrk(enc, "=+/"));
                assert_int_equal(strlen(enc), (len * 4 + 2) / 3);
                assert_int_equal(base64url_decode(enc, strlen(enc), &out, &out_len), 0);
                assert_int_equal(out_len, len);
                assert_memory_equal(out, buf, len);
                assert_int_equal(out[len], 0);
                free(out);
        }

        static const char *const bad[] = {
                "QQ==",   /* padding */
                "QQ=",    "a+b_", "a/b_", "QQ QQ", "QQ\n", "\tQQ", "Q", "QUJDR", /* len % 4 == 1 */
                "QR",     /* non-canonical trailing bits */
                "QUJDRF", /* ditto (4 leftover bits nonzero) */
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                out = NULL;
                assert_int_equal(base64url_decode(bad[i], strlen(bad[i]), &out, &out_len), -EBADMSG);
                assert_null(out);
        }
        assert_int_equal(base64url_decode("QQ", 2, &out, &out_len), 0);
        assert_int_equal(out_len, 1);
        assert_int_equal(out[0], 'A');
        free(out);
        assert_int_equal(base64url_decode("", 0, &out, &out_len), 0);
        assert_int_equal(out_len, 0);
        free(out);
}

/* The decoder one character at a time, as RFC 4648 describes it: what base64url_decode(),
 * which takes four at a time, must agree with on every input. */
static int b64url_reference(const char *in, size_t len, uint8_t *out, size_t *ret_len) {
        static const char alphabet[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        uint32_t acc = 0;
        unsigned bits = 0;
        size_t o = 0;

        if (len % 4 == 1)
                return -EBADMSG;
        for (size_t i = 0; i < len; i++) {
                const char *p = in[i] ? memchr(alphabet, in[i], 64) : NULL;

                if (!p)
                        return -EBADMSG;
                acc = (acc << 6) | (uint32_t) (p - alphabet);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (uint8_t) (acc >> bits);
                        acc &= (1u << bits) - 1;
                }
        }
        if (acc != 0)
                return -EBADMSG;
        *ret_len = o;
        return 0;
}

static void test_base64url_reference(void **state) {
        uint32_t seed = 12345;
        char in[16];
        uint8_t want[16];

        /* Every byte value at every position of short strings, then random strings mostly
         * of the alphabet. */
        for (unsigned round = 0; round < 200000; round++) {
                size_t len = round % 13, want_len = 0, out_len = 0;
                uint8_t *out = NULL;
                int r, k;

                for (size_t i = 0; i < len; i++) {
                        seed = seed * 1103515245u + 12345u;
                        in[i] = (seed >> 16) % 8 == 0 ? (char) (seed >> 8)
                                : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                                        [(seed >> 16) % 64];
                }
                if (len > 0 && round < 256 * 13)
                        in[round % len] = (char) (round / 13);
                k = b64url_reference(in, len, want, &want_len);
                r = base64url_decode(in, len, &out, &out_len);
                assert_int_equal(r, k);
                if (r == 0) {
                        assert_int_equal(out_len, want_len);
                        assert_memory_equal(out, want, want_len);
                        assert_int_equal(out[out_len], 0);
                } else
                        assert_null(out);
                free(out);
        }
}

/* Builds "b64(header).b64(payload).b64(sig)" from plain header JSON. */
static char *make_token(const char *header, const char *payload, const char *sig) {
        _cleanup_free_ char *h = NULL, *p = NULL, *s = NULL;
        char *t = NULL;

        assert_int_equal(base64url_encode((const uint8_t *) header, strlen(header), &h), 0);
        assert_int_equal(base64url_encode((const uint8_t *) payload, strlen(payload), &p), 0);
        assert_int_equal(base64url_encode((const uint8_t *) sig, strlen(sig), &s), 0);
        assert_true(asprintf(&t, "%s.%s.%s", h, p, s) > 0);
        return t;
}

static int parse_header(const char *header) {
        _cleanup_free_ char *t = make_token(header, "{}", "signature");
        Jws *jws = NULL;
        int r = jws_parse(t, strlen(t), &jws);
        if (r < 0)
                assert_null(jws);
        jws_free(jws);
        return r;
}

/* The header, parsed from token built with header: alg, kid and typ ("-" for absent). */
static void expect_header(const char *header, JwsAlg alg, const char *kid, const char *typ) {
        _cleanup_free_ char *t = make_token(header, "{}", "signature");
        Jws *jws = NULL;

        assert_int_equal(jws_parse(t, strlen(t), &jws), 0);
        assert_int_equal(jws->alg, alg);
        if (kid)
                assert_string_equal(jws->kid, kid);
        else
                assert_null(jws->kid);
        if (typ)
                assert_string_equal(jws->typ, typ);
        else
                assert_null(jws->typ);
        jws_free(jws);
}

/* A header seen before is not parsed again (jws.c keeps the last one): what it says is the
 * same, and a header that differs by one byte, or was refused, is read for what it is. */
static void test_header_seen(void **state) {
        static const char a[] = "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"secevent+jwt\"}";
        static const char b[] = "{\"alg\":\"RS256\",\"kid\":\"k2\",\"typ\":\"secevent+jwt\"}";
        char long_kid[JWS_MAX_KID + 1], big[JWS_MAX_KID + 64];

        (void) state;
        for (int i = 0; i < 3; i++)
                expect_header(a, JWS_ALG_RS256, "k1", "secevent+jwt");
        expect_header(b, JWS_ALG_RS256, "k2", "secevent+jwt");
        expect_header(a, JWS_ALG_RS256, "k1", "secevent+jwt");
        expect_header("{\"alg\":\"ES256\"}", JWS_ALG_ES256, NULL, NULL);
        expect_header("{\"alg\":\"ES256\"}", JWS_ALG_ES256, NULL, NULL);
        assert_int_equal(parse_header("{\"alg\":\"ES256\",\"crit\":[]}"), -EBADMSG);
        assert_int_equal(parse_header("{\"alg\":\"ES256\",\"crit\":[]}"), -EBADMSG);
        assert_int_equal(parse_header("{\"alg\":\"HS256\"}"), -EPROTONOSUPPORT);
        assert_int_equal(parse_header("{\"alg\":\"HS256\"}"), -EPROTONOSUPPORT);
        expect_header(a, JWS_ALG_RS256, "k1", "secevent+jwt");
        /* A header too long to be kept is parsed each time. */
        memset(long_kid, 'k', sizeof(long_kid) - 1);
        long_kid[sizeof(long_kid) - 1] = 0;
        (void) snprintf(big, sizeof(big), "{\"alg\":\"PS256\",\"kid\":\"%s\"}", long_kid);
        expect_header(big, JWS_ALG_PS256, long_kid, NULL);
        expect_header(big, JWS_ALG_PS256, long_kid, NULL);
        expect_header(a, JWS_ALG_RS256, "k1", "secevent+jwt");
}

static void test_header_rules(void **state) {
        assert_int_equal(parse_header("{\"alg\":\"RS256\",\"typ\":\"secevent+jwt\"}"), 0);
        assert_int_equal(parse_header("{\"alg\":\"Ed25519\"}"), 0);
        assert_int_equal(parse_header("{\"alg\":\"RS256\",\"crit\":[\"exp\"],\"exp\":1}"), -EBADMSG);
        assert_int_equal(parse_header("{\"alg\":\"RS256\",\"crit\":[]}"), -EBADMSG);
        assert_int_equal(parse_header("{\"alg\":\"RS256\",\"b64\":false}"), -EBADMSG);
        assert_int_equal(parse_header("{\"alg\":\"RS256\",\"b64\":false,\"crit\":[\"b64\"]}"), -EBADMSG);
        assert_int_equal(parse_header("{\"alg\":\"RS256\",\"alg\":\"RS256\"}"), -EBADMSG);
        assert_int_equal(parse_header("{\"alg\":\"RS256\",\"kid\":7}"), -EBADMSG);
        assert_int_equal(parse_header("{\"alg\":\"RS256\",\"typ\":[]}"), -EBADMSG);
        assert_int_equal(parse_header("{\"kid\":\"x\"}"), -EBADMSG);
        assert_int_equal(parse_header("{\"alg\":256}"), -EBADMSG);
        assert_int_equal(parse_header("[\"alg\",\"RS256\"]"), -EBADMSG);
        assert_int_equal(parse_header("not json"), -EBADMSG);
        assert_int_equal(parse_header("{\"alg\":\"none\"}"), -EPROTONOSUPPORT);
        assert_int_equal(parse_header("{\"alg\":\"HS256\"}"), -EPROTONOSUPPORT);
        assert_int_equal(parse_header("{\"alg\":\"HS512\"}"), -EPROTONOSUPPORT);
        assert_int_equal(parse_header("{\"alg\":\"rs256\"}"), -EPROTONOSUPPORT);
        assert_int_equal(parse_header("{\"alg\":\"RSA-OAEP\"}"), -EPROTONOSUPPORT);
        assert_int_equal(parse_header("{\"alg\":\"Ed448\"}"), -EPROTONOSUPPORT);
}

static int parse_raw(const char *t, size_t len) {
        Jws *jws = NULL;
        int r = jws_parse(t, len, &jws);
        if (r < 0)
                assert_null(jws);
        jws_free(jws);
        return r;
}

static void test_structure(void **state) {
        char buf[sizeof rs256_41 + 16];

        assert_int_equal(parse_raw(rs256_41, strlen(rs256_41)), 0);
        /* Four parts, two parts, trailing data, whitespace, padding, NUL. */
        snprintf(buf, sizeof buf, "%s.AAAA", rs256_41);
        assert_int_equal(parse_raw(buf, strlen(buf)), -EBADMSG);
        assert_int_equal(parse_raw(rs256_41, (size_t) (strrchr(rs256_41, '.') - rs256_41)), -EBADMSG);
        snprintf(buf, sizeof buf, "%s\n", rs256_41);
        assert_int_equal(parse_raw(buf, strlen(buf)), -EBADMSG);
        snprintf(buf, sizeof buf, " %s", rs256_41);
        assert_int_equal(parse_raw(buf, strlen(buf)), -EBADMSG);
        snprintf(buf, sizeof buf, "%s==", rs256_41);
        assert_int_equal(parse_raw(buf, strlen(buf)), -EBADMSG);
        assert_int_equal(parse_raw(rs256_41, strlen(rs256_41) + 1), -EBADMSG); /* includes the NUL */
        memcpy(buf, rs256_41, strlen(rs256_41) + 1);
        buf[100] = '+';
        assert_int_equal(parse_raw(buf, strlen(buf)), -EBADMSG);
        /* Empty parts. */
        assert_int_equal(parse_raw("..", 2), -EBADMSG);
        assert_int_equal(parse_raw("", 0), -EBADMSG);
        assert_int_equal(parse_raw("eyJhbGciOiJSUzI1NiJ9.e30.", 25), -EBADMSG);
        /* Oversize: rejected before anything is decoded. */
        size_t big = JWS_MAX_SIZE + 1;
        char *huge = malloc(big);
        assert_non_null(huge);
        memset(huge, 'A', big);
        huge[10] = '.';
        huge[20] = '.';
        assert_int_equal(parse_raw(huge, big), -E2BIG);
        free(huge);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rfc7520_rs256),
                cmocka_unit_test(test_rfc7520_rs256_tampered),
                cmocka_unit_test(test_rfc7520_ps384),
                cmocka_unit_test(test_prepared_context),
                cmocka_unit_test(test_rfc7520_es512),
                cmocka_unit_test(test_rfc7520_hs256_rejected),
                cmocka_unit_test(test_alg_none_rejected),
                cmocka_unit_test(test_rfc7515_a3_es256),
                cmocka_unit_test(test_rfc8037_ed25519),
                cmocka_unit_test(test_key_alg_mismatch),
                cmocka_unit_test(test_kid),
                cmocka_unit_test(test_rsa_1024_rejected),
                cmocka_unit_test(test_base64url),
                cmocka_unit_test(test_base64url_reference),
                cmocka_unit_test(test_header_rules),
                cmocka_unit_test(test_header_seen),
                cmocka_unit_test(test_structure),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
