/* SPDX-License-Identifier: MIT */
/* RFC 8935 push listener: the HTTP/1.1 request head parser, the checks before the body is
 * read, the bearer secret comparison, the responses, the per-peer key of the connection limit
 * and the log limit. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/un.h>

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

        /* A configured value without a scheme (stream = none): exactly those bytes. */
#define AUTH(value) (req.authorization = (value), req.authorization_len = strlen(value), \
                     push_authorized(&req, "c2VjcmV0"))
        assert_true(AUTH("c2VjcmV0"));
        assert_false(AUTH("C2VjcmV0"));
        assert_false(AUTH("c2VjcmV0 "));
        assert_false(AUTH("Bearer c2VjcmV0"));
        assert_false(AUTH(""));
#undef AUTH
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

        /* Keep-alive: no Connection field (HTTP/1.1 keeps the connection by default). */
        assert_int_equal(push_format_response_full(503, "Retry-After: 28\r\n", NULL, true, &out,
                                                   &len), 0);
        assert_string_equal(out, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                 "Cache-Control: no-store\r\nRetry-After: 28\r\n\r\n");
        free(out);
        assert_int_equal(push_format_response_full(202, NULL, NULL, false, &out, &len), 0);
        assert_non_null(strstr(out, "\r\nConnection: close\r\n"));
        free(out);
        out = NULL;

        err.err = NULL;
        strcpy(err.description, "x");
        body = push_error_body(&err);
        assert_string_equal(body, "{\"err\":\"invalid_request\",\"description\":\"x\"}");
        free(body);
}

static void test_connection_close(void **state) {
        static const struct {
                const char *field;
                bool close;
        } cases[] = {
                { "", false },
                { "Connection: keep-alive\r\n", false },
                { "Connection: close\r\n", true },
                { "Connection: Close\r\n", true },
                { "Connection: keep-alive, close\r\n", true },
                { "Connection: te ,\tclose \r\n", true },
                { "Connection: closed\r\n", false },
                { "Connection: x-close\r\n", false },
                { "Connection: te\r\nConnection: close\r\n", true },
                { "Connection:\r\n", false },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char text[512];
                PushRequest req;
                unsigned status = 0;

                (void) snprintf(text, sizeof(text), "POST /e HTTP/1.1\r\nHost: h\r\n%s"
                                "Content-Length: 0\r\n\r\n", cases[i].field);
                assert_int_equal(push_parse_head(text, strlen(text), &req, &status), 0);
                if (req.connection_close != cases[i].close)
                        fail_msg("case %zu: '%s'", i, cases[i].field);
        }
}

static void test_pick_victim(void **state) {
        const uint64_t now = 100 * PUSH_EVICT_AFTER_USEC, old = now - 5 * PUSH_EVICT_AFTER_USEC;
        PushConnPhase ph[4];
        uint64_t since[4];

        /* Nobody has waited long enough: none (the new connection is refused). */
        for (unsigned i = 0; i < 4; i++) {
                ph[i] = PUSH_PHASE_WAITING;
                since[i] = now - PUSH_EVICT_AFTER_USEC + 1 + i;
        }
        assert_int_equal(push_pick_victim(ph, since, 4, now), -1);
        /* Busy ones are never taken, however old. */
        ph[2] = PUSH_PHASE_BUSY;
        since[2] = old - 1000;
        assert_int_equal(push_pick_victim(ph, since, 4, now), -1);
        /* The one waiting longest, once past the threshold. */
        since[1] = now - PUSH_EVICT_AFTER_USEC;
        assert_int_equal(push_pick_victim(ph, since, 4, now), 1);
        since[3] = old;
        assert_int_equal(push_pick_victim(ph, since, 4, now), 3);
        /* A connection that is done goes first. */
        ph[0] = PUSH_PHASE_DONE;
        since[0] = now;
        assert_int_equal(push_pick_victim(ph, since, 4, now), 0);
        assert_int_equal(push_pick_victim(ph, since, 0, now), -1);
        /* A time ahead of now (clock read earlier elsewhere) is not "old". */
        ph[0] = PUSH_PHASE_WAITING;
        since[0] = now + 5;
        assert_int_equal(push_pick_victim(ph, since, 1, now), -1);
}

static void peer_of(const char *text, PushPeer *ret) {
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(443) };
        struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };

        if (inet_pton(AF_INET, text, &in.sin_addr) == 1)
                push_peer_from_sockaddr((struct sockaddr *) &in, sizeof(in), ret);
        else {
                assert_int_equal(inet_pton(AF_INET6, text, &in6.sin6_addr), 1);
                push_peer_from_sockaddr((struct sockaddr *) &in6, sizeof(in6), ret);
        }
}

static bool same_peer(const char *a, const char *b) {
        PushPeer pa, pb;

        peer_of(a, &pa);
        peer_of(b, &pb);
        return push_peer_equal(&pa, &pb);
}

static void test_peer(void **state) {
        struct sockaddr_in in = { .sin_family = AF_INET };
        struct sockaddr_un un = { .sun_family = AF_UNIX, .sun_path = "/x" };
        PushPeer p;

        assert_true(same_peer("127.0.0.1", "127.0.0.1"));
        assert_false(same_peer("127.0.0.1", "127.0.0.2"));
        assert_false(same_peer("10.0.0.1", "11.0.0.1"));
        /* IPv6: the /64 counts, not the interface identifier. */
        assert_true(same_peer("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_false(same_peer("2001:db8:1:2::1", "2001:db8:1:3::1"));
        assert_true(same_peer("::1", "::2")); /* both in ::/64 */
        /* An IPv4-mapped address is the IPv4 address; it is not the IPv6 peer 0::/64. */
        assert_true(same_peer("::ffff:192.0.2.7", "192.0.2.7"));
        assert_false(same_peer("::ffff:192.0.2.7", "::ffff:192.0.2.8"));
        assert_false(same_peer("::ffff:192.0.2.7", "::1"));
        assert_false(same_peer("0.0.0.0", "::"));
        peer_of("192.0.2.7", &p);
        assert_int_equal(p.family, AF_INET);
        peer_of("2001:db8::1", &p);
        assert_int_equal(p.family, AF_INET6);

        /* Other families and short addresses are one peer. */
        push_peer_from_sockaddr((struct sockaddr *) &un, sizeof(un), &p);
        assert_int_equal(p.family, AF_UNSPEC);
        push_peer_from_sockaddr((struct sockaddr *) &in, sizeof(in) - 1, &p);
        assert_int_equal(p.family, AF_UNSPEC);
        push_peer_from_sockaddr(NULL, 0, &p);
        assert_int_equal(p.family, AF_UNSPEC);
}

static void test_log_limit(void **state) {
        PushLogLimit l = {};
        uint64_t t0 = 5 * PUSH_LOG_INTERVAL_USEC, t1 = t0 + 7 * PUSH_LOG_INTERVAL_USEC;
        unsigned suppressed = 99, logged = 0;

        /* A burst: PUSH_LOG_BURST lines, the rest counted. */
        for (unsigned i = 0; i < 50; i++) {
                if (push_log_limit_allow(&l, t0 + i, &suppressed))
                        logged++;
                assert_int_equal(suppressed, 0);
        }
        assert_int_equal(logged, PUSH_LOG_BURST);
        /* Not over yet: nothing to report. */
        assert_int_equal(push_log_limit_flush(&l, t0 + PUSH_LOG_INTERVAL_USEC - 1), 0);
        assert_int_equal(l.suppressed, 50 - PUSH_LOG_BURST);
        /* Over: the count once, then afresh. */
        assert_int_equal(push_log_limit_flush(&l, t0 + PUSH_LOG_INTERVAL_USEC),
                         50 - PUSH_LOG_BURST);
        assert_int_equal(push_log_limit_flush(&l, t0 + 3 * PUSH_LOG_INTERVAL_USEC), 0);

        /* A new interval begins with the next line. */
        for (unsigned i = 0; i < PUSH_LOG_BURST; i++)
                assert_true(push_log_limit_allow(&l, t1, &suppressed));
        assert_false(push_log_limit_allow(&l, t1 + PUSH_LOG_INTERVAL_USEC - 1, &suppressed));
        assert_int_equal(suppressed, 0);
        /* The first line after the interval reports the one suppressed, and is logged. */
        assert_true(push_log_limit_allow(&l, t1 + PUSH_LOG_INTERVAL_USEC, &suppressed));
        assert_int_equal(suppressed, 1);
        assert_int_equal(l.logged, 1);
        assert_int_equal(l.begin, t1 + PUSH_LOG_INTERVAL_USEC);

        /* An interval without suppressed lines reports nothing. */
        l = (PushLogLimit) {};
        assert_true(push_log_limit_allow(&l, t0, &suppressed));
        assert_true(push_log_limit_allow(&l, t0 + PUSH_LOG_INTERVAL_USEC, &suppressed));
        assert_int_equal(suppressed, 0);
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
                cmocka_unit_test(test_connection_close),
                cmocka_unit_test(test_pick_victim),
                cmocka_unit_test(test_peer),
                cmocka_unit_test(test_log_limit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
