/* SPDX-License-Identifier: MIT */
/* RFC 8935 push listener: the HTTP/1.1 request head parser, the checks before the body is
 * read, the bearer secret comparison, and the responses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "push.h"
#include "tests.h"

#define VALID "POST /ssf/events HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n" \
              "Content-Type: application/secevent+jwt\r\nAuthorization:  Bearer c2VjcmV0 \r\n" \
              "Content-Length: 9\r\n\r\n"

static unsigned parse_status(const char *text) {
        PushRequest req;
        unsigned status = 0;
        int r = push_parse_head(text, strlen(text), &req, &status);

        if (r == -EAGAIN)
                return 1;
        if (r == 0)
                return 0;
        assert_int_equal(r, -EBADMSG);
        return status;
}

static void test_parse_valid(void **state) {
        const char *text = VALID "aaa.b.ccc";
        PushRequest req;
        unsigned status = 0;

        assert_int_equal(push_parse_head(text, strlen(text), &req, &status), 0);
        assert_string_equal(req.method, "POST");
        assert_int_equal(req.target_len, strlen("/ssf/events"));
        assert_memory_equal(req.target, "/ssf/events", req.target_len);
        assert_int_equal(req.head_len, strlen(VALID));
        assert_true(req.has_content_length);
        assert_int_equal(req.content_length, 9);
        assert_false(req.has_transfer_encoding);
        assert_int_equal(req.n_headers, 4);
        assert_int_equal(req.authorization_len, strlen("Bearer c2VjcmV0")); /* trimmed */
        assert_memory_equal(req.authorization, "Bearer c2VjcmV0", req.authorization_len);
        assert_memory_equal(req.content_type, "application/secevent+jwt", req.content_type_len);
        assert_int_equal(push_check_head(&req, "/ssf/events"), 0);
        assert_int_equal(push_check_head(&req, "/ssf/events?x=1"), 404);
        assert_int_equal(push_check_head(&req, "/"), 404);
}

static void test_parse_incomplete(void **state) {
        const char *text = VALID;

        /* Every proper prefix of a valid head needs more bytes, none is refused. */
        for (size_t n = 0; n < strlen(text); n++) {
                PushRequest req;
                unsigned status = 0;
                assert_int_equal(push_parse_head(text, n, &req, &status), -EAGAIN);
        }
}

static void test_parse_rejects(void **state) {
        char big[PUSH_MAX_HEAD + 200];
        char many[4096] = "POST / HTTP/1.1\r\nHost: h\r\n";

        assert_int_equal(parse_status("POST  /x HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_int_equal(parse_status("post /x HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_int_equal(parse_status("POST x HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_int_equal(parse_status("POST /x\r\nHost: h\r\n\r\n"), 400);
        assert_int_equal(parse_status("POST /x HTTP/1.1 \r\nHost: h\r\n\r\n"), 400);
        assert_int_equal(parse_status("POST /x FOO/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_int_equal(parse_status("POST /x HTTP/1.0\r\nHost: h\r\n\r\n"), 505);
        assert_int_equal(parse_status("POST /x HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
        assert_int_equal(parse_status("POSTPOSTPOSTPOSTX /x HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        /* line endings: LF only, bare CR */
        assert_int_equal(parse_status("POST /x HTTP/1.1\nHost: h\n\n"), 400);
        assert_int_equal(parse_status("POST /x HTTP/1.1\r\nHost: h\n\r\n"), 400);
        assert_int_equal(parse_status("POST /x HTTP/1.1\r\nHost: h\rX: y\r\n\r\n"), 400);
        /* fields */
        assert_int_equal(parse_status("POST /x HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n"), 400);
        assert_int_equal(parse_status("POST /x HTTP/1.1\r\nHost : h\r\n\r\n"), 400);
        assert_int_equal(parse_status("POST /x HTTP/1.1\r\n: h\r\nHost: h\r\n\r\n"), 400);
        assert_int_equal(parse_status("POST /x HTTP/1.1\r\nHost: h\r\nX: a\x01\r\n\r\n"), 400);
        assert_int_equal(parse_status("POST /x HTTP/1.1\r\n\r\n"), 400); /* no Host */
        assert_int_equal(parse_status("POST /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_int_equal(parse_status("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
                                      "content-length: 1\r\n\r\n"), 400);
        assert_int_equal(parse_status("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1,1\r\n\r\n"), 400);
        assert_int_equal(parse_status("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"), 400);
        assert_int_equal(parse_status("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n"), 400);
        assert_int_equal(parse_status("POST /x HTTP/1.1\r\nHost: h\r\nAuthorization: a\r\n"
                                      "Authorization: b\r\n\r\n"), 400);
        assert_int_equal(parse_status("POST /x HTTP/1.1\r\nHost: h\r\nContent-Type: a\r\n"
                                      "Content-Type: b\r\n\r\n"), 400);
        /* sizes */
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        memcpy(big, "POST /x HTTP/1.1\r\nHost: h\r\nX: ", 30);
        assert_int_equal(parse_status(big), 431);
        for (unsigned i = 0; i < PUSH_MAX_HEADERS; i++)
                (void) snprintf(many + strlen(many), sizeof(many) - strlen(many), "X-%u: y\r\n", i);
        strcat(many, "\r\n");
        assert_int_equal(parse_status(many), 431); /* Host + 64 more */
        memset(big, 'a', sizeof(big) - 1);
        memcpy(big, "POST /", 6);
        strcpy(big + 6 + PUSH_MAX_TARGET, " HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_int_equal(parse_status(big), 414);
}

static void test_check_head(void **state) {
        PushRequest req;
        unsigned status = 0;
        const char *t;

#define CHECK(text, want)                                                                  \
        do {                                                                               \
                t = (text);                                                                \
                assert_int_equal(push_parse_head(t, strlen(t), &req, &status), 0);         \
                assert_int_equal(push_check_head(&req, "/ssf/events"), (want));            \
        } while (0)
        CHECK("POST /ssf/events HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 0);
        CHECK("POST /ssf/events HTTP/1.1\r\nHost: h\r\nContent-Length: 65536\r\n\r\n", 0);
        CHECK("POST /ssf/events HTTP/1.1\r\nHost: h\r\nContent-Length: 65537\r\n\r\n", 413);
        CHECK("POST /ssf/events HTTP/1.1\r\nHost: h\r\nContent-Length: "
              "99999999999999999999999999999\r\n\r\n", 413);
        CHECK("POST /ssf/events HTTP/1.1\r\nHost: h\r\n\r\n", 411);
        CHECK("POST /ssf/events HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
        CHECK("POST /ssf/events HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
              "Content-Length: 3\r\n\r\n", 400);
        CHECK("GET /ssf/events HTTP/1.1\r\nHost: h\r\n\r\n", 405);
        CHECK("POST /ssf/events/ HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\n", 404);
        CHECK("GET /other HTTP/1.1\r\nHost: h\r\n\r\n", 404);
#undef CHECK
}

static void test_authorized(void **state) {
        PushRequest req = {};

        assert_false(push_authorized(&req, "Bearer c2VjcmV0"));
#define AUTH(value) (req.authorization = (value), req.authorization_len = strlen(value), \
                     push_authorized(&req, "Bearer c2VjcmV0"))
        assert_true(AUTH("Bearer c2VjcmV0"));
        assert_true(AUTH("bearer c2VjcmV0"));
        assert_true(AUTH("BEARER   c2VjcmV0"));
        assert_false(AUTH("Bearer c2VjcmV1"));
        assert_false(AUTH("Bearer c2VjcmV0x"));
        assert_false(AUTH("Bearer c2VjcmV"));
        assert_false(AUTH("Bearer"));
        assert_false(AUTH("Bearerc2VjcmV0"));
        assert_false(AUTH("Basic c2VjcmV0"));
        assert_false(AUTH(""));
#undef AUTH
        req.authorization = "Bearer c2VjcmV0";
        req.authorization_len = 15;
        assert_false(push_authorized(&req, NULL));
}

static void test_url_target(void **state) {
        char *t = NULL;

        assert_int_equal(push_url_target("https://h.example:8443/ssf/events", &t), 0);
        assert_string_equal(t, "/ssf/events");
        free(t);
        assert_int_equal(push_url_target("https://h.example", &t), 0);
        assert_string_equal(t, "/");
        free(t);
        assert_int_equal(push_url_target("https://h.example?a=b#frag", &t), 0);
        assert_string_equal(t, "/?a=b");
        free(t);
        assert_int_equal(push_url_target("https://[::1]:8443/p?q=1#f", &t), 0);
        assert_string_equal(t, "/p?q=1");
        free(t);
        assert_int_equal(push_url_target("http://h/p", &t), -EINVAL);
        assert_int_equal(push_url_target("https://", &t), -EINVAL);
}

static void test_responses(void **state) {
        SetError err = { .err = "invalid_key" };
        char *out = NULL, *body;
        size_t len = 0;

        assert_int_equal(push_format_response(202, NULL, NULL, &out, &len), 0);
        assert_string_equal(out, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n"
                                 "Cache-Control: no-store\r\nConnection: close\r\n\r\n");
        assert_int_equal(len, strlen(out));
        free(out);

        strcpy(err.description, "no key \"k1\"");
        body = push_error_body(&err);
        assert_string_equal(body, "{\"err\":\"invalid_key\",\"description\":\"no key \\\"k1\\\"\"}");
        assert_int_equal(push_format_response(400, NULL, body, &out, &len), 0);
        assert_non_null(strstr(out, "HTTP/1.1 400 Bad Request\r\n"));
        assert_non_null(strstr(out, "\r\nContent-Type: application/json\r\n"));
        (void) snprintf(err.description, sizeof(err.description), "Content-Length: %zu\r\n",
                        strlen(body));
        assert_non_null(strstr(out, err.description));
        assert_memory_equal(out + len - strlen(body), body, strlen(body));
        free(out);
        free(body);

        assert_int_equal(push_format_response(401, "WWW-Authenticate: Bearer\r\n", NULL, &out,
                                              &len), 0);
        assert_string_equal(out, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n"
                                 "Cache-Control: no-store\r\nConnection: close\r\n"
                                 "WWW-Authenticate: Bearer\r\n\r\n");
        free(out);
        out = NULL;

        /* Unknown status, header injection: refused. */
        assert_int_equal(push_format_response(299, NULL, NULL, &out, &len), -EINVAL);
        assert_int_equal(push_format_response(503, "Retry-After: 5", NULL, &out, &len), -EINVAL);
        assert_int_equal(push_format_response(503, "A: b\r\n\r\nX: y\r\n", NULL, &out, &len),
                         -EINVAL);
        assert_int_equal(push_format_response(503, "A: b\nX: y\r\n", NULL, &out, &len), -EINVAL);
        assert_int_equal(push_format_response(503, "\r\n", NULL, &out, &len), -EINVAL);
        assert_null(out);

        err.err = NULL;
        strcpy(err.description, "x");
        body = push_error_body(&err);
        assert_string_equal(body, "{\"err\":\"invalid_request\",\"description\":\"x\"}");
        free(body);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_valid),
                cmocka_unit_test(test_parse_incomplete),
                cmocka_unit_test(test_parse_rejects),
                cmocka_unit_test(test_check_head),
                cmocka_unit_test(test_authorized),
                cmocka_unit_test(test_url_target),
                cmocka_unit_test(test_responses),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
