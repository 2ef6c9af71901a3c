/* SPDX-License-Identifier: MIT */
/*
 * Strict UTF-8 decoding (utf8.h) for the sanitisers of hostile text. Every read is bounded by
 * the length given. Linked into pam_ssf.so, ssf-sessiond (both processes) and ssfctl.
 */
#include <string.h>

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

/* Characters that print nothing but may reorder, hide or smuggle text: bidirectional controls,
 * zero-width and other format characters, tag characters, noncharacters. */
static bool is_invisible(uint32_t cp) {
        return cp == 0x061c || cp == 0x180e || cp == 0x200b || cp == 0x200e || cp == 0x200f ||
               (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff ||
               (cp >= 0xfff9 && cp <= 0xfffb) || (cp >= 0xe0000 && cp <= 0xe007f) ||
               (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe;
}

bool ssf_utf8_unsafe(uint32_t cp) {
        return cp == SSF_UTF8_INVALID || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || is_invisible(cp);
}

size_t ssf_utf8_make_printable(char *s, size_t n, const char *keep) {
        size_t i = 0, o = 0;

        if (!s)
                return 0;
        while (i < n) {
                uint32_t cp;
                size_t len = ssf_utf8_decode((const uint8_t *) s + i, n - i, &cp);

                if (ssf_utf8_unsafe(cp) && !(cp > 0 && cp < 0x80 && keep && strchr(keep, (int) cp)))
                        s[o++] = '?';
                else {
                        memmove(s + o, s + i, len);
                        o += len;
                }
                i += len;
        }
        s[o] = 0;
        return o;
}
