/* SPDX-License-Identifier: MIT */
/* oauth2.c's pure parts (form encoding, the Basic header, token and error responses, the
 * refresh rule, the private_key_jwt client assertion: decoded and verified with OpenSSL here)
 * and secret.c's file rules. The token endpoint itself is exercised by
 * tests/integration/test_oauth2.py against the local transmitter. */
#include <errno.h>
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
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "config.h"
#include "jws.h"
#include "macro.h"
#include "oauth2.h"
#include "secret.h"

#define USEC_PER_SEC UINT64_C(1000000)

static void check_encode(const char *in, const char *want) {
        _cleanup_free_ char *out = NULL;

        assert_int_equal(oauth2_form_encode(in, &out), 0);
        assert_string_equal(out, want);
}

static void test_form_encode(void **state) {
        check_encode("", "");
        check_encode("AZaz09-._~", "AZaz09-._~");
        check_encode("ssf.read ssf.manage", "ssf.read+ssf.manage");
        check_encode("a:b", "a%3Ab");
        check_encode("+/%&=?#", "%2B%2F%25%26%3D%3F%23");
        check_encode("\"\\'*", "%22%5C%27%2A");
        check_encode("\xc3\xa9", "%C3%A9"); /* UTF-8 octets, upper-case hex */
        check_encode("\x01\x7f", "%01%7F");
        assert_int_equal(oauth2_form_encode(NULL, &(char *){ NULL }), -EINVAL);
}

static void test_request_body(void **state) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;

        assert_int_equal(oauth2_request_body("ssf.read ssf.manage", &a), 0);
        assert_string_equal(a, "grant_type=client_credentials&scope=ssf.read+ssf.manage");
        assert_int_equal(oauth2_request_body("a&b=c", &b), 0);
        assert_string_equal(b, "grant_type=client_credentials&scope=a%26b%3Dc");
        /* No scope: no scope parameter at all. */
        assert_int_equal(oauth2_request_body("", &c), 0);
        assert_string_equal(c, "grant_type=client_credentials");
        assert_int_equal(oauth2_request_body(NULL, &d), 0);
        assert_string_equal(d, "grant_type=client_credentials");
}

static void test_basic_authorization(void **state) {
        _cleanup_erase_free_ char *a = NULL, *b = NULL;
        char *none = NULL;

        /* RFC 6749 §2.3.1's example. */
        assert_int_equal(oauth2_basic_authorization("s6BhdRkqt3", "7Fjfp0ZBr1KtDRbnfVdmIw", &a), 0);
        assert_string_equal(a, "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3");

        /* Both parts are form-encoded before base64: a ':' in the id cannot split it. */
        assert_int_equal(oauth2_basic_authorization("host:1", "p@ss w+rd/%\xc3\xa9", &b), 0);
        assert_string_equal(b, "Basic aG9zdCUzQTE6cCU0MHNzK3clMkJyZCUyRiUyNSVDMyVBOQ==");

        assert_int_equal(oauth2_basic_authorization("", "x", &none), -EINVAL);
        assert_int_equal(oauth2_basic_authorization(NULL, "x", &none), -EINVAL);
        assert_int_equal(oauth2_basic_authorization("id", NULL, &none), -EINVAL);
        assert_null(none);
}

static int parse(const char *body, char **token, int64_t *expires_in, const char **why) {
        return oauth2_parse_token_response(body, body ? strlen(body) : 0, token, expires_in, why);
}

static void test_token_response_good(void **state) {
        static const struct {
                const char *body, *token;
                int64_t expires_in;
        } cases[] = {
                { "{\"access_token\":\"abc.DEF-_~+/==\",\"token_type\":\"Bearer\",\"expires_in\":3600}",
                  "abc.DEF-_~+/==", 3600 },
                /* token_type is case-insensitive; expires_in is optional; extra members ignored. */
                { "{\"token_type\":\"bearer\",\"access_token\":\"t1\"}", "t1", -1 },
                { "{\"access_token\":\"t2\",\"token_type\":\"BEARER\",\"expires_in\":0,"
                  "\"scope\":\"ssf.read\",\"refresh_token\":\"r\",\"x\":{\"y\":[1]}}", "t2", 0 },
                /* Absurd lifetimes are shortened. */
                { "{\"access_token\":\"t3\",\"token_type\":\"Bearer\",\"expires_in\":1000000000000}", "t3",
                  OAUTH2_EXPIRES_IN_MAX },
                { " \n{\"access_token\":\"t4\",\"token_type\":\"Bearer\"}\n ", "t4", -1 },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                _cleanup_erase_free_ char *token = NULL;
                int64_t expires_in = -2;

                assert_int_equal(parse(cases[i].body, &token, &expires_in, NULL), 0);
                assert_string_equal(token, cases[i].token);
                assert_true(expires_in == cases[i].expires_in);
        }
}

static void test_token_response_bad(void **state) {
        static const struct {
                const char *body;
                int r;
        } cases[] = {
                /* not JSON, not an object, trailing data, duplicates */
                { "", -EBADMSG },
                { "<html><body>Bad gateway</body></html>", -EBADMSG },
                { "access_token=abc&token_type=bearer", -EBADMSG },
                { "[{\"access_token\":\"a\",\"token_type\":\"Bearer\"}]", -EBADMSG },
                { "\"a\"", -EBADMSG },
                { "{\"access_token\":\"a\",\"token_type\":\"Bearer\"} x", -EBADMSG },
                { "{\"access_token\":\"a\",\"token_type\":\"Bearer\"", -EBADMSG },
                { "{\"access_token\":\"a\",\"access_token\":\"b\",\"token_type\":\"Bearer\"}", -EBADMSG },
                /* access_token missing or unusable */
                { "{\"token_type\":\"Bearer\",\"expires_in\":60}", -EBADMSG },
                { "{\"access_token\":null,\"token_type\":\"Bearer\"}", -EBADMSG },
                { "{\"access_token\":12345,\"token_type\":\"Bearer\"}", -EBADMSG },
                { "{\"access_token\":\"\",\"token_type\":\"Bearer\"}", -EBADMSG },
                { "{\"access_token\":\"a b\",\"token_type\":\"Bearer\"}", -EBADMSG },
                { "{\"access_token\":\"a\\r\\nX-Injected: 1\",\"token_type\":\"Bearer\"}", -EBADMSG },
                { "{\"access_token\":\"a\\u0000b\",\"token_type\":\"Bearer\"}", -EBADMSG },
                { "{\"access_token\":\"=abc\",\"token_type\":\"Bearer\"}", -EBADMSG },
                { "{\"access_token\":\"ab=c\",\"token_type\":\"Bearer\"}", -EBADMSG },
                { "{\"access_token\":\"t\\u00e9\",\"token_type\":\"Bearer\"}", -EBADMSG },
                /* token_type missing or not Bearer */
                { "{\"access_token\":\"a\"}", -EBADMSG },
                { "{\"access_token\":\"a\",\"token_type\":1}", -EBADMSG },
                { "{\"access_token\":\"a\",\"token_type\":\"MAC\"}", -EPROTONOSUPPORT },
                { "{\"access_token\":\"a\",\"token_type\":\"DPoP\"}", -EPROTONOSUPPORT },
                { "{\"access_token\":\"a\",\"token_type\":\"Bearer \"}", -EPROTONOSUPPORT },
                { "{\"access_token\":\"a\",\"token_type\":\"N_A\"}", -EPROTONOSUPPORT },
                /* expires_in not a non-negative integer */
                { "{\"access_token\":\"a\",\"token_type\":\"Bearer\",\"expires_in\":\"3600\"}", -EBADMSG },
                { "{\"access_token\":\"a\",\"token_type\":\"Bearer\",\"expires_in\":3600.5}", -EBADMSG },
                { "{\"access_token\":\"a\",\"token_type\":\"Bearer\",\"expires_in\":-1}", -EBADMSG },
                { "{\"access_token\":\"a\",\"token_type\":\"Bearer\",\"expires_in\":null}", -EBADMSG },
                { "{\"access_token\":\"a\",\"token_type\":\"Bearer\",\"expires_in\":true}", -EBADMSG },
        };

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                char *token = NULL;
                int64_t expires_in = -2;
                const char *why = NULL;

                assert_int_equal(parse(cases[i].body, &token, &expires_in, &why), cases[i].r);
                /* Nothing written on failure, and always a reason. */
                assert_null(token);
                assert_true(expires_in == -2);
                assert_non_null(why);
                /* The reason never quotes the body (it may hold a token). */
                assert_null(strstr(why, "X-Injected"));
        }

        /* NULL body; NULL outputs. */
        assert_int_equal(oauth2_parse_token_response(NULL, 0, &(char *){ NULL }, &(int64_t){ 0 }, NULL),
                         -EBADMSG);
        assert_int_equal(oauth2_parse_token_response("{}", 2, NULL, &(int64_t){ 0 }, NULL), -EINVAL);
}

static void test_token_response_huge(void **state) {
        _cleanup_free_ char *body = NULL, *tok = NULL;
        size_t n = OAUTH2_RESPONSE_MAX + 1;
        char *token = NULL;
        int64_t expires_in = -2;
        const char *why = NULL;
        int k;

        /* A valid response padded beyond the size cap is refused before parsing. */
        body = malloc(n + 1);
        assert_non_null(body);
        k = snprintf(body, n + 1, "{\"access_token\":\"a\",\"token_type\":\"Bearer\",\"pad\":\"");
        assert_true(k > 0);
        memset(body + k, 'x', n - (size_t) k - 2);
        memcpy(body + n - 2, "\"}", 3);
        assert_int_equal(strlen(body), n);
        assert_int_equal(oauth2_parse_token_response(body, n, &token, &expires_in, &why), -EFBIG);
        assert_null(token);
        assert_non_null(why);
        /* Just under the cap it parses. */
        memcpy(body + n - 3, "\"}", 3);
        assert_int_equal(oauth2_parse_token_response(body, n - 1, &token, &expires_in, NULL), 0);
        assert_string_equal(token, "a");
        token = erase_and_free(token);

        /* An access token above its own cap. */
        tok = malloc(OAUTH2_ACCESS_TOKEN_MAX + 64);
        assert_non_null(tok);
        k = snprintf(tok, 64, "{\"token_type\":\"Bearer\",\"access_token\":\"");
        memset(tok + k, 'A', OAUTH2_ACCESS_TOKEN_MAX + 1);
        memcpy(tok + k + OAUTH2_ACCESS_TOKEN_MAX + 1, "\"}", 3);
        assert_int_equal(parse(tok, &token, &expires_in, NULL), -EBADMSG);
        assert_null(token);
        /* ... and at it. */
        memcpy(tok + k + OAUTH2_ACCESS_TOKEN_MAX, "\"}", 3);
        assert_int_equal(parse(tok, &token, &expires_in, NULL), 0);
        assert_int_equal(strlen(token), OAUTH2_ACCESS_TOKEN_MAX);
        token = erase_and_free(token);
}

static void test_error_response(void **state) {
        char *error = NULL, *desc = NULL;
        char body[1024];

        snprintf(body, sizeof body, "{\"error\":\"invalid_client\",\"error_description\":\"%s\"}",
                 "Client authentication failed");
        assert_int_equal(oauth2_parse_error_response(body, strlen(body), &error, &desc), 0);
        assert_string_equal(error, "invalid_client");
        assert_string_equal(desc, "Client authentication failed");
        error = mfree(error);
        desc = mfree(desc);

        snprintf(body, sizeof body, "{\"error\":\"invalid_scope\",\"error_uri\":\"https://x\"}");
        assert_int_equal(oauth2_parse_error_response(body, strlen(body), &error, &desc), 0);
        assert_string_equal(error, "invalid_scope");
        assert_null(desc);
        error = mfree(error);

        /* The description is cut and cleaned of characters outside RFC 6749 §5.2's set. */
        snprintf(body, sizeof body, "{\"error\":\"invalid_request\",\"error_description\":\"a\\nb\\\"c\\u00e9%0300d\"}",
                 0);
        assert_int_equal(oauth2_parse_error_response(body, strlen(body), &error, &desc), 0);
        assert_int_equal(strlen(desc), OAUTH2_DESCRIPTION_MAX);
        assert_memory_equal(desc, "a?b?c??0000", 11);
        error = mfree(error);
        desc = mfree(desc);

        /* No usable error code: not an error response. */
        static const char *const bad[] = {
                "", "oops", "[]", "{}", "{\"error\":\"\"}", "{\"error\":42}",
                "{\"error\":\"bad\\\"quote\"}", "{\"error\":\"new\\nline\"}",
                "{\"error\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
                "{\"err\":\"invalid_request\",\"description\":\"RFC 8935 style\"}",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                assert_int_equal(oauth2_parse_error_response(bad[i], strlen(bad[i]), &error, &desc),
                                 -EBADMSG);
                assert_null(error);
                assert_null(desc);
        }
}

static void test_refresh_due(void **state) {
        uint64_t t0 = 1000 * USEC_PER_SEC;

        /* Unknown lifetime: used until refused. */
        assert_false(oauth2_refresh_due(t0, -1, t0 + 365ull * 24 * 3600 * USEC_PER_SEC));
        /* One hour: refreshed 60 s before it ends. */
        assert_false(oauth2_refresh_due(t0, 3600, t0));
        assert_false(oauth2_refresh_due(t0, 3600, t0 + 3539 * USEC_PER_SEC));
        assert_true(oauth2_refresh_due(t0, 3600, t0 + 3540 * USEC_PER_SEC));
        assert_true(oauth2_refresh_due(t0, 3600, t0 + 7200 * USEC_PER_SEC));
        /* 90 s: half its lifetime. */
        assert_false(oauth2_refresh_due(t0, 90, t0 + 44 * USEC_PER_SEC));
        assert_true(oauth2_refresh_due(t0, 90, t0 + 45 * USEC_PER_SEC));
        /* 2 s: after 1 s. */
        assert_false(oauth2_refresh_due(t0, 2, t0 + 999999));
        assert_true(oauth2_refresh_due(t0, 2, t0 + USEC_PER_SEC));
        /* 0 s: always. */
        assert_true(oauth2_refresh_due(t0, 0, t0));
}

/* ---- files ------------------------------------------------------------------------------- */

typedef struct Fixture {
        char dir[64];
        char path[128];
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        const char *tmp = getenv("TMPDIR");

        if (!f)
                return -1;
        snprintf(f->dir, sizeof f->dir, "%s/test-oauth2-XXXXXX", tmp && strlen(tmp) < 30 ? tmp : "/tmp");
        if (!mkdtemp(f->dir))
                return -1;
        snprintf(f->path, sizeof f->path, "%s/secret", f->dir);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char link[160];

        snprintf(link, sizeof link, "%s/link", f->dir);
        (void) unlink(link);
        (void) unlink(f->path);
        (void) rmdir(f->dir);
        free(f);
        return 0;
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode) {
        int fd;

        (void) unlink(path);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, n), (ssize_t) n);
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static void test_secret_file(void **state) {
        Fixture *f = *state;
        char *s = NULL, link[160], *big;

        if (geteuid() != 0) {
                print_message("not root: skipping (secret files must be root-owned)\n");
                skip();
        }

        write_file(f->path, "s3cr:et/+\n\n", 11, 0600);
        assert_int_equal(secret_read_file(f->path, "test secret", &s), 0);
        assert_string_equal(s, "s3cr:et/+");
        s = erase_and_free(s);
        write_file(f->path, "s3cret", 6, 0400);
        assert_int_equal(secret_read_file(f->path, "test secret", &s), 0);
        s = erase_and_free(s);

        /* Group- or world-accessible. */
        write_file(f->path, "s3cret\n", 7, 0640);
        assert_int_equal(secret_read_file(f->path, "test secret", &s), -EPERM);
        write_file(f->path, "s3cret\n", 7, 0604);
        assert_int_equal(secret_read_file(f->path, "test secret", &s), -EPERM);
        /* Not one secret on one line. */
        write_file(f->path, "two words\n", 10, 0600);
        assert_int_equal(secret_read_file(f->path, "test secret", &s), -EINVAL);
        /* An Authorization value (push_authorization_file): single spaces inside only. */
        assert_int_equal(secret_read_header_file(f->path, "test header", &s), 0);
        assert_string_equal(s, "two words");
        s = erase_and_free(s);
        write_file(f->path, "two  words\n", 11, 0600);
        assert_int_equal(secret_read_header_file(f->path, "test header", &s), -EINVAL);
        write_file(f->path, " lead\n", 6, 0600);
        assert_int_equal(secret_read_header_file(f->path, "test header", &s), -EINVAL);
        write_file(f->path, "a\tb\n", 4, 0600);
        assert_int_equal(secret_read_header_file(f->path, "test header", &s), -EINVAL);
        write_file(f->path, "a\x01b\n", 4, 0600);
        assert_int_equal(secret_read_header_file(f->path, "test header", &s), -EINVAL);
        write_file(f->path, "line1\nline2\n", 12, 0600);
        assert_int_equal(secret_read_file(f->path, "test secret", &s), -EINVAL);
        write_file(f->path, " \n", 2, 0600);
        assert_int_equal(secret_read_file(f->path, "test secret", &s), -EINVAL);
        write_file(f->path, "ab\0cd", 5, 0600);
        assert_int_equal(secret_read_file(f->path, "test secret", &s), -EINVAL);
        write_file(f->path, "abcd\0", 5, 0600);
        assert_int_equal(secret_read_file(f->path, "test secret", &s), -EINVAL);
        /* Too large. */
        big = malloc(SECRET_FILE_MAX + 1);
        assert_non_null(big);
        memset(big, 'a', SECRET_FILE_MAX + 1);
        write_file(f->path, big, SECRET_FILE_MAX + 1, 0600);
        assert_int_equal(secret_read_file(f->path, "test secret", &s), -EFBIG);
        write_file(f->path, big, SECRET_FILE_MAX, 0600);
        assert_int_equal(secret_read_file(f->path, "test secret", &s), 0);
        assert_int_equal(strlen(s), SECRET_FILE_MAX);
        s = erase_and_free(s);
        free(big);
        /* A symbolic link, even to a good file; a directory; nothing. */
        write_file(f->path, "s3cret\n", 7, 0600);
        snprintf(link, sizeof link, "%s/link", f->dir);
        assert_int_equal(symlink(f->path, link), 0);
        assert_int_equal(secret_read_file(link, "test secret", &s), -ELOOP);
        assert_int_equal(secret_read_file(f->dir, "test secret", &s), -EPERM);
        (void) unlink(f->path);
        assert_int_equal(secret_read_file(f->path, "test secret", &s), -ENOENT);
        assert_null(s);
}

static void test_client_new(void **state) {
        Fixture *f = *state;
        OAuth2Client *o = NULL;
        TransmitterConfig c = {
                .auth = AUTH_OAUTH2,
                .oauth2_token_url = UNCONST("https://idp.example.com/oauth2/token"),
                .oauth2_client_id = UNCONST("host1"),
                .oauth2_client_secret_file = f->path,
                .oauth2_scope = UNCONST("ssf.read ssf.manage"),
        };

        if (geteuid() != 0) {
                print_message("not root: skipping (secret files must be root-owned)\n");
                skip();
        }

        /* The secret file is read at once. */
        assert_int_equal(oauth2_client_new(&c, &o), -ENOENT);
        assert_null(o);
        write_file(f->path, "s3cret\n", 7, 0600);
        assert_int_equal(oauth2_client_new(&c, &o), 0);
        assert_non_null(o);
        /* No token yet. */
        assert_true(oauth2_client_needs_refresh(o));
        oauth2_client_invalidate(o);
        assert_true(oauth2_client_needs_refresh(o));
        o = oauth2_client_free(o);

        /* https only, and everything required. */
        c.oauth2_token_url = UNCONST("http://idp.example.com/oauth2/token");
        assert_int_equal(oauth2_client_new(&c, &o), -EINVAL);
        c.oauth2_token_url = UNCONST("https://idp.example.com/oauth2/token");
        c.oauth2_client_id = UNCONST("");
        assert_int_equal(oauth2_client_new(&c, &o), -EINVAL);
        c.oauth2_client_id = UNCONST("host1");
        c.oauth2_client_secret_file = NULL;
        assert_int_equal(oauth2_client_new(&c, &o), -EINVAL);
        assert_null(o);

        assert_null(oauth2_client_free(NULL));
        oauth2_client_invalidate(NULL);
        assert_true(oauth2_client_needs_refresh(NULL));
}

/* ---- private_key_jwt ---------------------------------------------------------------------- */

/* A new key's unencrypted PKCS#8 PEM text (free()). */
static char *key_pem(EVP_PKEY *k) {
        BIO *b = BIO_new(BIO_s_mem());
        char *data, *out;
        long n;

        assert_non_null(b);
        assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
        n = BIO_get_mem_data(b, &data);
        assert_true(n > 0);
        out = strndup(data, (size_t) n);
        assert_non_null(out);
        BIO_free(b);
        return out;
}

static json_t *decode_part(const char *s, size_t n) {
        _cleanup_free_ uint8_t *raw = NULL;
        size_t len;
        json_t *j;

        assert_int_equal(base64url_decode(s, n, &raw, &len), 0);
        j = json_loadb((const char *) raw, len, JSON_REJECT_DUPLICATES, NULL);
        assert_non_null(j);
        assert_true(json_is_object(j));
        return j;
}

/* Splits the assertion, checks its header and claims, verifies its signature against pub
 * with OpenSSL; returns its jti (free()). */
static char *check_assertion(const char *jwt, EVP_PKEY *pub, const char *alg, const char *kid,
                             int64_t now) {
        const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        _cleanup_free_ unsigned char *der = NULL;
        json_t *h, *c;
        EVP_MD_CTX *md;
        size_t sig_len, der_len;
        char *jti;

        assert_non_null(d2);
        assert_null(strchr(d2 + 1, '.'));

        h = decode_part(jwt, (size_t) (d1 - jwt));
        assert_string_equal(json_string_value(json_object_get(h, "alg")), alg);
        assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
        if (kid)
                assert_string_equal(json_string_value(json_object_get(h, "kid")), kid);
        else
                assert_null(json_object_get(h, "kid"));
        json_decref(h);

        c = decode_part(d1 + 1, (size_t) (d2 - d1 - 1));
        assert_string_equal(json_string_value(json_object_get(c, "iss")), "host1 client");
        assert_string_equal(json_string_value(json_object_get(c, "sub")), "host1 client");
        assert_string_equal(json_string_value(json_object_get(c, "aud")),
                            "https://idp.example.com/oauth2/token");
        assert_int_equal(json_integer_value(json_object_get(c, "iat")), now);
        assert_int_equal(json_integer_value(json_object_get(c, "exp")), now + OAUTH2_ASSERTION_LIFETIME_SEC);
        assert_true(OAUTH2_ASSERTION_LIFETIME_SEC > 0 && OAUTH2_ASSERTION_LIFETIME_SEC <= 300);
        assert_true(json_is_string(json_object_get(c, "jti")));
        assert_int_equal(strlen(json_string_value(json_object_get(c, "jti"))), 22); /* 128 bits */
        assert_int_equal(json_object_size(c), 6);
        jti = strdup(json_string_value(json_object_get(c, "jti")));
        json_decref(c);

        assert_int_equal(base64url_decode(d2 + 1, strlen(d2 + 1), &sig, &sig_len), 0);
        if (streq(alg, "ES256")) {
                /* JWS wants R || S; OpenSSL verifies DER. */
                ECDSA_SIG *es = ECDSA_SIG_new();
                unsigned char *p = NULL;
                int n;

                assert_int_equal(sig_len, 64);
                assert_int_equal(ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)), 1);
                n = i2d_ECDSA_SIG(es, &p);
                assert_true(n > 0);
                der = p;
                der_len = (size_t) n;
                ECDSA_SIG_free(es);
        } else {
                der = malloc(sig_len);
                assert_non_null(der);
                memcpy(der, sig, sig_len);
                der_len = sig_len;
        }
        md = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
        assert_int_equal(EVP_DigestVerify(md, der, der_len, (const unsigned char *) jwt, (size_t) (d2 - jwt)), 1);
        /* One changed byte of the signed part fails. */
        {
                char *t = strdup(jwt);

                t[d1 - jwt + 3] ^= 1;
                assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
                assert_int_not_equal(EVP_DigestVerify(md, der, der_len, (const unsigned char *) t,
                                                      (size_t) (d2 - jwt)), 1);
                free(t);
        }
        EVP_MD_CTX_free(md);
        return jti;
}

static void check_key_type(EVP_PKEY *k, const char *alg) {
        _cleanup_free_ char *pem = key_pem(k), *a1 = NULL, *a2 = NULL, *j1 = NULL, *j2 = NULL;
        EVP_PKEY *parsed = NULL;
        int64_t now = 1760000000;

        assert_int_equal(oauth2_private_key_parse(pem, strlen(pem), &parsed), 0);
        assert_int_equal(oauth2_client_assertion(parsed, "key-1", "host1 client",
                                                 "https://idp.example.com/oauth2/token", now, &a1), 0);
        j1 = check_assertion(a1, k, alg, "key-1", now);
        /* No kid when none is configured; every assertion has a fresh jti. */
        assert_int_equal(oauth2_client_assertion(parsed, NULL, "host1 client",
                                                 "https://idp.example.com/oauth2/token", now + 7, &a2), 0);
        j2 = check_assertion(a2, k, alg, NULL, now + 7);
        assert_string_not_equal(j1, j2);
        EVP_PKEY_free(parsed);
}

static void test_client_assertion(void **state) {
        EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
        EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
        EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        EVP_PKEY *k = NULL;
        char *pem, *a = NULL;

        assert_non_null(rsa);
        assert_non_null(ec);
        check_key_type(rsa, "RS256");
        check_key_type(ec, "ES256");

        /* Keys that cannot sign an RS256/ES256 assertion are refused when read, and by the
         * builder. */
        pem = key_pem(small);
        assert_int_equal(oauth2_private_key_parse(pem, strlen(pem), &k), -EKEYREJECTED);
        free(pem);
        pem = key_pem(p384);
        assert_int_equal(oauth2_private_key_parse(pem, strlen(pem), &k), -EKEYREJECTED);
        free(pem);
        pem = key_pem(ed);
        assert_int_equal(oauth2_private_key_parse(pem, strlen(pem), &k), -EKEYREJECTED);
        free(pem);
        assert_int_equal(oauth2_client_assertion(ed, NULL, "c", "https://a/t", 1, &a), -EKEYREJECTED);
        assert_null(k);
        /* Not PEM, or a public key only. */
        assert_int_equal(oauth2_private_key_parse("not a key", 9, &k), -EBADMSG);
        {
                BIO *b = BIO_new(BIO_s_mem());
                char *data;
                long n;

                assert_int_equal(PEM_write_bio_PUBKEY(b, rsa), 1);
                n = BIO_get_mem_data(b, &data);
                assert_int_equal(oauth2_private_key_parse(data, (size_t) n, &k), -EBADMSG);
                BIO_free(b);
        }
        assert_int_equal(oauth2_client_assertion(rsa, NULL, "", "https://a/t", 1, &a), -EINVAL);
        assert_int_equal(oauth2_client_assertion(rsa, NULL, "c", NULL, 1, &a), -EINVAL);
        assert_null(a);

        EVP_PKEY_free(rsa);
        EVP_PKEY_free(ec);
        EVP_PKEY_free(small);
        EVP_PKEY_free(p384);
        EVP_PKEY_free(ed);
}

static void test_form_append(void **state) {
        _cleanup_erase_free_ char *b = NULL;

        assert_int_equal(oauth2_request_body("ssf.read", &b), 0);
        assert_int_equal(oauth2_form_append(&b, "client_id", "host 1"), 0);
        assert_int_equal(oauth2_form_append(&b, "client_secret", "a:+/%&="), 0);
        assert_string_equal(b, "grant_type=client_credentials&scope=ssf.read&client_id=host+1"
                               "&client_secret=a%3A%2B%2F%25%26%3D");
        assert_int_equal(oauth2_form_append(&b, "", "x"), -EINVAL);
        assert_int_equal(oauth2_form_append(&b, "x", NULL), -EINVAL);
}

static void test_client_new_private_key_jwt(void **state) {
        Fixture *f = *state;
        EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        _cleanup_free_ char *pem = key_pem(ec);
        OAuth2Client *o = NULL;
        TransmitterConfig c = {
                .auth = AUTH_OAUTH2,
                .oauth2_token_url = UNCONST("https://idp.example.com/oauth2/token"),
                .oauth2_client_id = UNCONST("host1"),
                .oauth2_client_auth = OAUTH2_CLIENT_AUTH_PRIVATE_KEY_JWT,
                .oauth2_private_key = f->path,
                .oauth2_key_id = UNCONST("k1"),
        };

        EVP_PKEY_free(ec);
        if (geteuid() != 0) {
                print_message("not root: skipping (key files must be root-owned)\n");
                skip();
        }
        /* No secret file needed; the key is read at once, root-only. */
        assert_int_equal(oauth2_client_new(&c, &o), -ENOENT);
        write_file(f->path, pem, strlen(pem), 0644);
        assert_int_equal(oauth2_client_new(&c, &o), -EPERM);
        write_file(f->path, "garbage\n", 8, 0600);
        assert_int_equal(oauth2_client_new(&c, &o), -EBADMSG);
        write_file(f->path, pem, strlen(pem), 0600);
        assert_int_equal(oauth2_client_new(&c, &o), 0);
        o = oauth2_client_free(o);
        c.oauth2_private_key = NULL;
        assert_int_equal(oauth2_client_new(&c, &o), -EINVAL);
        assert_null(o);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_form_encode),
                cmocka_unit_test(test_request_body),
                cmocka_unit_test(test_basic_authorization),
                cmocka_unit_test(test_token_response_good),
                cmocka_unit_test(test_token_response_bad),
                cmocka_unit_test(test_token_response_huge),
                cmocka_unit_test(test_error_response),
                cmocka_unit_test(test_refresh_due),
                cmocka_unit_test_setup_teardown(test_secret_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_new, setup, teardown),
                cmocka_unit_test(test_client_assertion),
                cmocka_unit_test(test_form_append),
                cmocka_unit_test_setup_teardown(test_client_new_private_key_jwt, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
