/* SPDX-License-Identifier: MIT */
/* CAEP reason_user made safe for a terminal (common/reason-user.c): escape sequences, control,
 * bidirectional and invisible characters, white space, invalid UTF-8 and the 200-character
 * limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "reason-user.h"

static char out[SSF_REASON_USER_SIZE];

/* The sanitised form of s (NUL-terminated), in out. */
static const char *clean(const char *s) {
        size_t n = ssf_reason_user_sanitize(s, strlen(s), out, sizeof(out));
        assert_int_equal(n, strlen(out));
        return out;
}

static size_t count_chars(const char *s) {
        size_t c = 0;
        for (; *s; s++)
                if (((unsigned char) *s & 0xc0) != 0x80)
                        c++;
        return c;
}

static void test_plain_text_unchanged(void **state) {
        assert_string_equal(clean("Your device is not compliant. Call 555-0100."),
                            "Your device is not compliant. Call 555-0100.");
        assert_string_equal(clean("Votre appareil n\xe2\x80\x99" "est pas conforme \xf0\x9f\x94\x92 \xe4\xb8\xad"),
                            "Votre appareil n\xe2\x80\x99" "est pas conforme \xf0\x9f\x94\x92 \xe4\xb8\xad");
        assert_string_equal(clean(""), "");
}

static void test_escape_sequences_dropped_whole(void **state) {
        /* CSI (colours, clear screen), with parameters and intermediates. */
        assert_string_equal(clean("\x1b[2J\x1b[1;31mred\x1b[0m text\x1b[?25l"), "red text");
        /* OSC (window title, hyperlinks) ended by BEL or ST; charset designation. */
        assert_string_equal(clean("\x1b]0;owned\x07" "after \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"),
                            "after link");
        assert_string_equal(clean("a\x1b(Bb\x1b" "7c\x1b" "8"), "abc");
        /* DCS, APC, PM, SOS: their whole string; one that never ends takes the rest. */
        assert_string_equal(clean("x\x1bPq#0;2;0;0;0\x1b\\y\x1b_apc\x07z"), "xyz");
        assert_string_equal(clean("start\x1bPqqqqqq unterminated"), "start");
        /* A lone ESC at the end. */
        assert_string_equal(clean("abc\x1b"), "abc");
        /* C1 controls as UTF-8: CSI and OSC with their parameters, ST, NEL (a line break). */
        assert_string_equal(clean("a\xc2\x9b" "31mb\xc2\x9d" "0;t\xc2\x9c" "c\xc2\x85" "d"), "abc d");
        assert_string_equal(clean("\xc2\x80\xc2\x94" "ok"), "ok");
        assert_string_equal(clean("ok\xc2\x9f" "apc to the end"), "ok");
}

static void test_controls_and_white_space(void **state) {
        assert_string_equal(clean("\n\n first\r\n\tsecond  \n\n"), "first second");
        assert_string_equal(clean("bell\x07 back\bspace\x7f del\x01"), "bell backspace del");
        assert_string_equal(clean("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c\v\fd"), "a b c d");
        assert_string_equal(clean("   "), "");
}

static void test_bidi_and_invisible_dropped(void **state) {
        /* RLO, LRI..PDI, RLM, ALM, ZWSP, BOM, word joiner. */
        assert_string_equal(clean("abc\xe2\x80\xae" "dcba\xe2\x81\xa6" "x\xe2\x81\xa9\xe2\x80\x8b\xef\xbb\xbf"),
                            "abcdcbax");
        assert_string_equal(clean("a\xe2\x80\x8f" "b\xd8\x9c" "c\xe2\x81\xa0" "d"), "abcd");
        /* Tag characters and noncharacters. */
        assert_string_equal(clean("hi\xf3\xa0\x81\x81\xf3\xa0\x81\xbf there\xef\xb7\x90\xef\xbf\xbf"),
                            "hi there");
        /* Joiners some scripts need stay. */
        assert_string_equal(clean("\xe0\xa4\x95\xe2\x80\x8d\xe0\xa4\xb7"), "\xe0\xa4\x95\xe2\x80\x8d\xe0\xa4\xb7");
}

static void test_invalid_utf8_dropped(void **state) {
        /* Stray bytes, overlong forms, surrogates, above U+10FFFF, cut sequences. */
        assert_string_equal(clean("ok \xff\xfe \xc0\xaf \xe0\x80\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82 end \xc3"),
                            "ok end");
        assert_string_equal(clean("\x80\xbf" "a\xf8\x88\x80\x80\x80" "b"), "ab");
        /* The largest valid code point and the edges of the surrogate gap are fine. */
        assert_string_equal(clean("\xf4\x8f\xbf\xbd \xed\x9f\xbf \xee\x80\x80"),
                            "\xf4\x8f\xbf\xbd \xed\x9f\xbf \xee\x80\x80");
}

static void test_length_limits(void **state) {
        char big[10241], expect[SSF_REASON_USER_SIZE];

        /* 10 kB: the first 200 characters. */
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        assert_int_equal(strlen(clean(big)), SSF_REASON_USER_MAX_CHARS);

        /* Characters, not bytes: 300 two-byte characters become 200. */
        for (size_t i = 0; i < 300; i++)
                memcpy(big + 2 * i, "\xc3\xa9", 2);
        big[600] = 0;
        clean(big);
        assert_int_equal(count_chars(out), 200);
        assert_int_equal(strlen(out), 400);

        /* Four-byte characters: the buffer holds 200 of them. */
        for (size_t i = 0; i < 250; i++)
                memcpy(big + 4 * i, "\xf0\x9f\x94\x92", 4);
        big[1000] = 0;
        clean(big);
        assert_int_equal(count_chars(out), 200);
        assert_int_equal(strlen(out), SSF_REASON_USER_MAX_BYTES);

        /* A space that would be the 200th character is not written. */
        memset(big, 'a', 199);
        memcpy(big + 199, " b", 3);
        assert_int_equal(strlen(clean(big)), 199);
        memset(big, 'a', 198);
        memcpy(big + 198, " b", 3);
        memset(expect, 'a', 198);
        memcpy(expect + 198, " b", 3);
        assert_string_equal(clean(big), expect);

        /* A small buffer cuts on a character boundary. */
        char small[3];
        assert_int_equal(ssf_reason_user_sanitize("h\xc3\xa9llo", 6, small, sizeof(small)), 1);
        assert_string_equal(small, "h");
        assert_int_equal(ssf_reason_user_sanitize("\xc3\xa9" "a", 3, small, sizeof(small)), 2);
        assert_string_equal(small, "\xc3\xa9");

        /* len bounds the input; a NUL ends it earlier. */
        assert_int_equal(ssf_reason_user_sanitize("abcdef", 3, out, sizeof(out)), 3);
        assert_string_equal(out, "abc");
        assert_int_equal(ssf_reason_user_sanitize("ab\0cd", 5, out, sizeof(out)), 2);
        assert_string_equal(out, "ab");
        /* A sequence cut by len is invalid. */
        assert_int_equal(ssf_reason_user_sanitize("a\xc3\xa9", 2, out, sizeof(out)), 1);
}

static void test_null_and_empty_buffers(void **state) {
        char b[4] = "zzz";

        assert_int_equal(ssf_reason_user_sanitize(NULL, 10, b, sizeof(b)), 0);
        assert_string_equal(b, "");
        memcpy(b, "zzz", 4);
        assert_int_equal(ssf_reason_user_sanitize("abc", 3, b, 0), 0);
        assert_string_equal(b, "zzz"); /* size 0: nothing written */
        assert_int_equal(ssf_reason_user_sanitize("abc", 3, NULL, 10), 0);
        assert_int_equal(ssf_reason_user_sanitize("abc", 3, b, 1), 0);
        assert_string_equal(b, "");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain_text_unchanged),
                cmocka_unit_test(test_escape_sequences_dropped_whole),
                cmocka_unit_test(test_controls_and_white_space),
                cmocka_unit_test(test_bidi_and_invisible_dropped),
                cmocka_unit_test(test_invalid_utf8_dropped),
                cmocka_unit_test(test_length_limits),
                cmocka_unit_test(test_null_and_empty_buffers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
