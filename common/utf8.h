/* SPDX-License-Identifier: MIT */
#pragma once

/* Strict UTF-8 decoding, the one rule every sanitiser of hostile text applies (reason_user,
 * terminal warnings, hook output). Pure, no allocation; linked into pam_ssf.so, ssf-sessiond and
 * ssfctl. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What ssf_utf8_decode() gives for a byte that starts no valid sequence. */
#define SSF_UTF8_INVALID UINT32_C(0xffffffff)

/* Decodes one UTF-8 sequence at p (n > 0 bytes available) strictly: no overlong forms, no
 * surrogates, nothing above U+10FFFF, no sequence cut short by the end of p. Returns the bytes
 * consumed: the sequence's length with *ret its code point, or 1 for an invalid byte with *ret
 * SSF_UTF8_INVALID. */
size_t ssf_utf8_decode(const uint8_t *p, size_t n, uint32_t *ret);

/* Whether a decoded code point must never reach a terminal, the journal or the history as it
 * is: SSF_UTF8_INVALID, C0 controls, DEL, C1 controls (U+0080..U+009F, among them U+009B CSI,
 * which terminals may take as the start of an escape sequence), and the characters that print
 * nothing but may reorder, hide or smuggle text: bidirectional controls, zero-width and other
 * format characters, tag characters, noncharacters. The one rule of every sanitiser of hostile
 * text. */
bool ssf_utf8_unsafe(uint32_t cp);

/* Makes s[0..n) printable in place: every invalid byte and every unsafe code point
 * (ssf_utf8_unsafe()) becomes one '?', except the ASCII characters of keep (e.g. "\n\t"; NUL
 * is never kept). The text only shrinks (a multi-byte character becomes one byte). s must hold
 * n + 1 bytes: it is NUL-terminated at the new length, which is returned. */
size_t ssf_utf8_make_printable(char *s, size_t n, const char *keep);
