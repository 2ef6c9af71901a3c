/* SPDX-License-Identifier: MIT */
/* oauth2.c's pure parts (form encoding, the Basic header, token and error responses, the
 * refresh rule) and secret.c's file rules. The token endpoint itself is exercised by
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

#include "config.h"
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
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
