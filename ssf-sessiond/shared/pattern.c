/* SPDX-License-Identifier: MIT */
/*
 * Glob patterns for detection claims (pattern.h): the classic single-backtrack wildcard
 * matcher, which is correct for '*' when every other token matches exactly one byte, and
 * never revisits more than the last '*'. Pure. Linked by both processes.
 */
#include <string.h>

#include "pattern.h"

/* Parses the bracket expression at p ('[' at p[0]). Returns its length including the closing
 * ']', or 0 when it is not closed or holds a character class. With c >= 0, *ret_match says
 * whether byte c is in the set. */
static size_t bracket(const char *p, int c, bool *ret_match) {
        size_t i = 1;
        bool neg = false, in = false;

        if (p[i] == '!' || p[i] == '^') {
                neg = true;
                i++;
        }
        /* A ']' first is a member, not the end. */
        for (bool first = true; p[i]; first = false) {
                unsigned char lo, hi;

                if (p[i] == ']' && !first)
                        break;
                if (p[i] == '[' && p[i + 1] == ':')
                        return 0;
                if (p[i] == '\\' && p[i + 1])
                        i++;
                lo = (unsigned char) p[i++];
                hi = lo;
                if (p[i] == '-' && p[i + 1] && p[i + 1] != ']') {
                        i++;
                        if (p[i] == '\\' && p[i + 1])
                                i++;
                        hi = (unsigned char) p[i++];
                }
                if (c >= lo && c <= hi)
                        in = true;
        }
        if (p[i] != ']')
                return 0;
        if (ret_match)
                *ret_match = in != neg;
        return i + 1;
}

bool pattern_valid(const char *pattern) {
        if (!pattern)
                return false;
        for (const char *p = pattern; *p;) {
                if (*p == '[') {
                        size_t n = bracket(p, -1, NULL);
                        if (n == 0)
                                return false;
                        p += n;
                } else if (*p == '\\') {
                        if (!p[1])
                                return false;
                        p += 2;
                } else
                        p++;
        }
        return true;
}

/* Whether the single-byte token at p matches c; *ret_len is the token's length. */
static bool token_matches(const char *p, unsigned char c, size_t *ret_len) {
        bool m = false;

        switch (*p) {
        case '?':
                *ret_len = 1;
                return true;
        case '[': {
                size_t n = bracket(p, c, &m);
                if (n > 0) {
                        *ret_len = n;
                        return m;
                }
                break; /* not a bracket expression: a literal '[' */
        }
        case '\\':
                if (p[1]) {
                        *ret_len = 2;
                        return (unsigned char) p[1] == c;
                }
                break;
        default:
                break;
        }
        *ret_len = 1;
        return (unsigned char) *p == c;
}

bool pattern_match(const char *pattern, const char *text, size_t len) {
        const char *p = pattern, *star = NULL;
        size_t i = 0, star_i = 0;

        if (!pattern || (!text && len > 0))
                return false;
        while (i < len) {
                size_t n;

                if (*p == '*') {
                        while (*p == '*')
                                p++;
                        if (!*p)
                                return true;
                        star = p;
                        star_i = i;
                        continue;
                }
                if (*p && token_matches(p, (unsigned char) text[i], &n)) {
                        p += n;
                        i++;
                        continue;
                }
                if (!star)
                        return false;
                /* Let the last '*' take one more byte, and try again after it. */
                p = star;
                i = ++star_i;
        }
        while (*p == '*')
                p++;
        return *p == '\0';
}
