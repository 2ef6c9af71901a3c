/* SPDX-License-Identifier: MIT */
/*
 * CAEP reason_user made safe for a terminal (reason-user.h). The input is hostile bytes: every
 * read is bounded by len, output by size. Linked by both processes of ssf-sessiond (root
 * sanitises before storing) and by pam_ssf.so (which sanitises again before printing: it never
 * trusts bytes from a socket).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "reason-user.h"
#include "utf8.h"

#define ESC 0x1b
#define BEL 0x07
#define CAN 0x18
#define SUB 0x1a

/* After the introducer of a control string (OSC, DCS, SOS, PM, APC) at i: the index after its
 * terminator (BEL, ESC \, U+009C ST; CAN and SUB abort it), or n when it never ends. */
static size_t skip_string(const uint8_t *p, size_t n, size_t i) {
        for (; i < n; i++) {
                if (p[i] == BEL || p[i] == CAN || p[i] == SUB)
                        return i + 1;
                if (p[i] == ESC)
                        return i + 1 < n && p[i + 1] == '\\' ? i + 2 : i + 1;
                if (p[i] == 0xc2 && i + 1 < n && p[i + 1] == 0x9c)
                        return i + 2;
        }
        return n;
}

/* After a CSI introducer at i: parameter bytes, intermediate bytes, one final byte. A byte that
 * fits none ends the sequence without being consumed. */
static size_t skip_csi(const uint8_t *p, size_t n, size_t i) {
        while (i < n && p[i] >= 0x30 && p[i] <= 0x3f)
                i++;
        while (i < n && p[i] >= 0x20 && p[i] <= 0x2f)
                i++;
        if (i < n && p[i] >= 0x40 && p[i] <= 0x7e)
                i++;
        return i;
}

/* After ESC at i - 1: the index after the whole escape sequence. */
static size_t skip_escape(const uint8_t *p, size_t n, size_t i) {
        if (i >= n)
                return n;
        switch (p[i]) {
        case '[':
                return skip_csi(p, n, i + 1);
        case ']':
        case 'P':
        case 'X':
        case '^':
        case '_':
                return skip_string(p, n, i + 1);
        default:
                /* nF/Fp/Fe/Fs: intermediates, then one final byte. */
                while (i < n && p[i] >= 0x20 && p[i] <= 0x2f)
                        i++;
                if (i < n && p[i] >= 0x30 && p[i] <= 0x7e)
                        i++;
                return i;
        }
}

static bool is_space(uint32_t cp) {
        return (cp >= 0x09 && cp <= 0x0d) || cp == ' ' || cp == 0x85 || cp == 0x2028 ||
               cp == 0x2029;
}

size_t ssf_reason_user_sanitize(const char *s, size_t len, char *out, size_t size) {
        const uint8_t *p = (const uint8_t *) s;
        size_t o = 0, chars = 0, i = 0, n;
        bool space = false;

        if (!out || size == 0)
                return 0;
        out[0] = 0;
        if (!s)
                return 0;
        n = strnlen(s, len);

        while (i < n && chars < SSF_REASON_USER_MAX_CHARS) {
                size_t start = i, l;
                uint32_t cp;

                l = ssf_utf8_decode(p + i, n - i, &cp);
                i += l;
                if (cp == SSF_UTF8_INVALID)
                        continue;
                if (cp == ESC) {
                        i = skip_escape(p, n, i);
                        continue;
                }
                if (cp == 0x9b) { /* C1 CSI */
                        i = skip_csi(p, n, i);
                        continue;
                }
                if (cp == 0x90 || cp == 0x98 || cp == 0x9d || cp == 0x9e || cp == 0x9f) {
                        i = skip_string(p, n, i); /* C1 DCS, SOS, OSC, PM, APC */
                        continue;
                }
                if (is_space(cp)) {
                        space = o > 0; /* none leading; collapsed; trailing ones are never written */
                        continue;
                }
                if (ssf_utf8_unsafe(cp))
                        continue;

                if (space) {
                        if (chars + 1 >= SSF_REASON_USER_MAX_CHARS || o + 1 + l >= size)
                                break;
                        out[o++] = ' ';
                        chars++;
                        space = false;
                }
                if (o + l >= size)
                        break;
                memcpy(out + o, p + start, l);
                o += l;
                chars++;
        }
        out[o] = 0;
        return o;
}
