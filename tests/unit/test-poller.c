/* SPDX-License-Identifier: MIT */
/* The RFC 8936 poll response: its parser and the check of each delivered member. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jws.h"
#include "poller.h"
#include "set.h"

#define TOKEN "eyJhbGciOiJSUzI1NiJ9.eyJqdGkiOiJhIn0.c2ln"

static int parse(const char *text, PollResponse *ret) {
        return poller_parse_response(text, text ? strlen(text) : 0, ret);
}

static void test_parse_response(void **state) {
        PollResponse pr = {};

        assert_int_equal(parse("{\"sets\":{\"a1\":\"" TOKEN "\",\"a2\":\"" TOKEN "\"},"
                               "\"moreAvailable\":true}", &pr), 0);
        assert_true(json_is_object(pr.root));
        assert_int_equal(json_object_size(pr.sets), 2);
        assert_string_equal(json_string_value(json_object_get(pr.sets, "a2")), TOKEN);
        assert_true(pr.more);
        poll_response_done(&pr);
        assert_null(pr.root);
        assert_null(pr.sets);

        /* Nothing delivered; moreAvailable absent or not true. */
        assert_int_equal(parse("{\"sets\":{}}", &pr), 0);
        assert_int_equal(json_object_size(pr.sets), 0);
        assert_false(pr.more);
        poll_response_done(&pr);
        assert_int_equal(parse("{\"sets\":{},\"moreAvailable\":\"true\"}", &pr), 0);
        assert_false(pr.more);
        poll_response_done(&pr);
        assert_int_equal(parse("{\"sets\":{},\"moreAvailable\":false}", &pr), 0);
        assert_false(pr.more);
        poll_response_done(&pr);
        /* Members that are not SET strings are parsed; poller_check_entry() refuses them. */
        assert_int_equal(parse("{\"sets\":{\"j\":{\"a\":1}}}", &pr), 0);
        assert_int_equal(json_object_size(pr.sets), 1);
        poll_response_done(&pr);
}

static void test_parse_response_refused(void **state) {
        static const char *const bad[] = {
                "",
                "{\"moreAvailable\":true}",
                "{\"sets\":null}",
                "{\"sets\":[\"" TOKEN "\"]}",
                "{\"sets\":\"" TOKEN "\"}",
                "{\"sets\":{\"a\":\"x\",\"a\":\"y\"}}", /* the same jti twice */
                "{\"sets\":{},\"sets\":{\"a\":\"x\"}}",
                "{\"sets\":{\"a\":\"x\\u0000y\"}}",
                "[{\"sets\":{}}]",
                "{\"sets\":{}",
                "<html><body>503 Service Unavailable</body></html>",
        };
        PollResponse pr = { .more = true };
        char *big;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(parse(bad[i], &pr), -EBADMSG);
        assert_int_equal(poller_parse_response(NULL, 0, &pr), -EBADMSG);
        /* Untouched on failure. */
        assert_null(pr.root);
        assert_null(pr.sets);
        assert_true(pr.more);

        /* 8 MiB at most. */
        big = malloc(POLLER_RESPONSE_MAX + 1);
        assert_non_null(big);
        memset(big, ' ', POLLER_RESPONSE_MAX + 1);
        memcpy(big, "{\"sets\":{}}", 11);
        assert_int_equal(poller_parse_response(big, POLLER_RESPONSE_MAX, &pr), 0);
        poll_response_done(&pr);
        assert_int_equal(poller_parse_response(big, POLLER_RESPONSE_MAX + 1, &pr), -EFBIG);
        assert_null(pr.root);
        free(big);
}

/* The common shape is read without jansson's lexer (poller.c); every answer must be the one
 * json_loadb() gives. */
static void test_parse_response_same_as_jansson(void **state) {
        static const char *const texts[] = {
                "{\"sets\":{\"a1\":\"" TOKEN "\",\"a2\":\"" TOKEN "\"},\"moreAvailable\":true}",
                " {\r\n \"moreAvailable\" : false ,\t\"sets\" : { \"a1\" : \"" TOKEN "\" } }\n",
                "{\"sets\":{}}",
                "{\"sets\":{\"a\":\"x\\u0062\"}}",      /* an escape: jansson's */
                "{\"sets\":{\"a\":\"x\xc3\xa9\"}}",     /* UTF-8: jansson's */
                "{\"sets\":{\"a\":\"x\xc3\"}}",          /* not UTF-8 */
                "{\"sets\":{\"a\":\"x\"},\"moreAvailable\":truex}",
                "{\"sets\":{\"a\":\"x\"}} x",
                "{\"sets\":{\"a\":\"x\"},\"sets\":{}}",
                "{\"sets\":{\"a\":\"x\",\"a\":\"y\"}}",
                "{\"sets\":{\"a\":\"x\",}}",
                "{\"sets\":{\"a\" \"x\"}}",
                "{\"sets\":{\"a\":\"x",
                "{\"sets\":{\"a\":\"x\"},\"moreAvailable\":1}",
                "{\"sets\":{\"a\":\"x\"},\"moreAvailable\":true,\"moreAvailable\":false}",
                "{\"sets\":{\"a\":\"x\\ty\"}}",
                "{\"sets\":{\"a\":\"x\ty\"}}",
                "{\"sets\":{\"\":\"x\"}}",
                "{\"sets\":{\"a\":\"x\"},\"other\":null}",
                "{}",
        };

        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                PollResponse a = {}, b = {};
                int r = parse(texts[i], &a);

                assert_int_equal(r, poller_parse_response_general(texts[i], strlen(texts[i]), &b));
                if (r >= 0) {
                        assert_true(json_equal(a.root, b.root));
                        assert_true(a.more == b.more);
                        assert_ptr_equal(json_object_get(a.root, "sets"), a.sets);
                }
                poll_response_done(&a);
                poll_response_done(&b);
        }
        /* An escaped SET is decoded (by jansson), as before. */
        {
                PollResponse pr = {};

                assert_int_equal(parse("{\"sets\":{\"a\":\"x\\u0062\"}}", &pr), 0);
                assert_string_equal(json_string_value(json_object_get(pr.sets, "a")), "xb");
                poll_response_done(&pr);
        }
}

static void expect_refused(const char *jti, json_t *v, const char *why_contains) {
        const char *why = NULL;

        assert_int_equal(poller_check_entry(jti, v, &why), -EBADMSG);
        assert_non_null(why);
        assert_non_null(strstr(why, why_contains));
}

static void test_check_entry(void **state) {
        json_t *token = json_string(TOKEN), *obj = json_object(), *num = json_integer(5);
        char jti[SET_MAX_JTI + 2], *huge;
        const char *why = NULL;
        json_t *big;

        assert_int_equal(poller_check_entry("4d3559ec67504aaba65d40b0363faad8", token, &why), 0);
        assert_null(why);

        /* jti: 1..SET_MAX_JTI bytes without control characters. */
        memset(jti, 'j', sizeof(jti));
        jti[SET_MAX_JTI] = 0;
        assert_int_equal(poller_check_entry(jti, token, &why), 0);
        jti[SET_MAX_JTI] = 'j';
        jti[SET_MAX_JTI + 1] = 0;
        expect_refused(jti, token, "too long");
        expect_refused("", token, "empty");
        expect_refused(NULL, token, "empty");
        expect_refused("a\tb", token, "control characters");
        expect_refused("a\x7f", token, "control characters");
        assert_int_equal(poller_check_entry("caf\xc3\xa9", token, &why), 0);

        /* The SET: a string of at most JWS_MAX_SIZE bytes. */
        expect_refused("a", obj, "not a JSON string");
        expect_refused("a", num, "not a JSON string");
        expect_refused("a", NULL, "not a JSON string");
        huge = malloc(JWS_MAX_SIZE + 2);
        assert_non_null(huge);
        memset(huge, 'x', JWS_MAX_SIZE + 1);
        huge[JWS_MAX_SIZE + 1] = 0;
        big = json_string(huge);
        expect_refused("a", big, "too large");
        json_decref(big);
        huge[JWS_MAX_SIZE] = 0;
        big = json_string(huge);
        assert_int_equal(poller_check_entry("a", big, &why), 0);
        json_decref(big);
        free(huge);

        json_decref(token);
        json_decref(obj);
        json_decref(num);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_response),
                cmocka_unit_test(test_parse_response_refused),
                cmocka_unit_test(test_parse_response_same_as_jansson),
                cmocka_unit_test(test_check_entry),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
