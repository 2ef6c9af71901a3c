/* SPDX-License-Identifier: MIT */
/* The one rule of the sanitisers of hostile text (common/utf8.c): which code points are unsafe,
 * and ssf_utf8_make_printable(), which hook output goes through before the journal and the
 * history: C0, C1 (as UTF-8 U+0080..U+009F), DEL, invalid UTF-8, bidirectional and invisible
 * characters each become one '?'. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

static char buf[1024];

/* s made printable with newline and tab kept, in buf. */
static const char *printable(const char *s, size_t n) {
        size_t l;

        assert_true(n < sizeof(buf));
        memcpy(buf, s, n);
        l = ssf_utf8_make_printable(buf, n, "\n\t");
        assert_int_equal(l, strlen(buf));
        return buf;
}

#define P(lit) printable(lit, sizeof(lit) - 1)

static void test_unsafe(void **state) {
        assert_true(ssf_utf8_unsafe(SSF_UTF8_INVALID));
        for (uint32_t cp = 0; cp < 0x20; cp++)
                assert_true(ssf_utf8_unsafe(cp));
        for (uint32_t cp = 0x7f; cp <= 0x9f; cp++)
                assert_true(ssf_utf8_unsafe(cp));
        for (uint32_t cp = 0x202a; cp <= 0x202e; cp++)
                assert_true(ssf_utf8_unsafe(cp));
        for (uint32_t cp = 0x2066; cp <= 0x2069; cp++)
                assert_true(ssf_utf8_unsafe(cp));
        assert_true(ssf_utf8_unsafe(0x200f));
        assert_true(ssf_utf8_unsafe(0xfeff));
        assert_true(ssf_utf8_unsafe(0xe0041));
        assert_true(ssf_utf8_unsafe(0xffff));

        assert_false(ssf_utf8_unsafe(' '));
        assert_false(ssf_utf8_unsafe('~'));
        assert_false(ssf_utf8_unsafe(0xa0));
        assert_false(ssf_utf8_unsafe(0xe9));
        assert_false(ssf_utf8_unsafe(0x200d)); /* the joiner some scripts need */
        assert_false(ssf_utf8_unsafe(0x10fffd));
}

static void test_c0_and_del(void **state) {
        assert_string_equal(P("a\x1b[31mb\x07" "c\rd\x7f" "e\x01\n\tf\n"), "a?[31mb?c?d?e?\n\tf\n");
        /* A NUL is never kept, whatever keep says. */
        assert_string_equal(P("x\0y"), "x?y");
        /* keep is ASCII only and nothing else passes. */
        memcpy(buf, "a\nb\tc", 6);
        assert_int_equal(ssf_utf8_make_printable(buf, 5, ""), 5);
        assert_string_equal(buf, "a?b?c");
}

static void test_c1(void **state) {
        /* U+009B CSI, U+009D OSC, U+0085 NEL, U+0080 and U+009F: one '?' each. */
        assert_string_equal(P("a\xc2\x9b" "31mb\xc2\x9d" "0;x\xc2\x9c" "c\xc2\x85" "d\xc2\x80\xc2\x9f" "e"),
                            "a?31mb?0;x?c?d??e");
        /* The bytes of C1 taken alone (not UTF-8) are invalid: '?' too. */
        assert_string_equal(P("a\x9b" "b\x85"), "a?b?");
        /* U+00A0 and U+00E9 are printable. */
        assert_string_equal(P("\xc2\xa0\xc3\xa9"), "\xc2\xa0\xc3\xa9");
}

static void test_invalid_utf8(void **state) {
        /* Stray bytes, overlong forms, surrogates, above U+10FFFF: one '?' a byte. */
        assert_string_equal(P("ok\xff\xfe|\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|end"),
                            "ok??|??|???|????|end");
        /* A sequence cut short, in the middle and at the end. */
        assert_string_equal(P("a\xe2\x82" "b\xf0\x9f\x98"), "a??b???");
        /* Valid multi-byte text stays as it is. */
        assert_string_equal(P("\xe2\x82\xac \xf0\x9f\x98\x80 \xe4\xb8\xad"),
                            "\xe2\x82\xac \xf0\x9f\x98\x80 \xe4\xb8\xad");
}

static void test_bidi_and_invisible(void **state) {
        /* RLO, LRE, PDF, LRI, PDI, RLM, ZWSP, BOM, a tag character: one '?' each. */
        assert_string_equal(P("evil\xe2\x80\xae" "txt.exe\xe2\x80\xaa" "a\xe2\x80\xac" "b\xe2\x81\xa6"
                              "c\xe2\x81\xa9" "d\xe2\x80\x8f" "e\xe2\x80\x8b" "f\xef\xbb\xbf"
                              "g\xf3\xa0\x81\x81"),
                            "evil?txt.exe?a?b?c?d?e?f?g?");
}

static void test_bounds(void **state) {
        char s[8] = "abc";

        /* Reads only n bytes, NUL-terminates at the new length; NULL is nothing. */
        assert_int_equal(ssf_utf8_make_printable(s, 2, NULL), 2);
        assert_string_equal(s, "ab");
        assert_int_equal(ssf_utf8_make_printable(s, 0, NULL), 0);
        assert_string_equal(s, "");
        assert_int_equal(ssf_utf8_make_printable(NULL, 5, NULL), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_unsafe),
                cmocka_unit_test(test_c0_and_del),
                cmocka_unit_test(test_c1),
                cmocka_unit_test(test_invalid_utf8),
                cmocka_unit_test(test_bidi_and_invisible),
                cmocka_unit_test(test_bounds),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
