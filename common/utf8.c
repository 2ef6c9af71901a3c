/* SPDX-License-Identifier: MIT */
/*
 * Strict UTF-8 decoding (utf8.h) for the sanitisers of hostile text. Every read is bounded by
 * the length given. Linked into pam_ssf.so, ssf-sessiond (both processes) and ssfctl.
 */
#include "utf8.h"

size_t ssf_utf8_decode(const uint8_t *p, size_t n, uint32_t *ret) {
        uint8_t c = p[0];
        uint32_t cp;
        size_t l;
        uint8_t lo = 0x80, hi = 0xbf; /* the range of the second byte */

        *ret = SSF_UTF8_INVALID;
        if (c < 0x80) {
                *ret = c;
                return 1;
        }
        if (c >= 0xc2 && c <= 0xdf) {
                l = 2;
                cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
                l = 3;
                cp = c & 0x0f;
                if (c == 0xe0)
                        lo = 0xa0; /* overlong */
                else if (c == 0xed)
                        hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
                l = 4;
                cp = c & 0x07;
                if (c == 0xf0)
                        lo = 0x90; /* overlong */
                else if (c == 0xf4)
                        hi = 0x8f; /* above U+10FFFF */
        } else
                return 1; /* a continuation byte, C0/C1 (overlong) or F5..FF */

        if (n < l || p[1] < lo || p[1] > hi)
                return 1;
        for (size_t i = 1; i < l; i++) {
                if (i > 1 && (p[i] & 0xc0) != 0x80)
                        return 1;
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        *ret = cp;
        return l;
}
