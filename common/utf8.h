/* SPDX-License-Identifier: MIT */
#pragma once

/* Strict UTF-8 decoding, the one rule every sanitiser of hostile text applies (reason_user,
 * terminal warnings, hook output). Pure, no allocation; linked into pam_ssf.so, ssf-sessiond and
 * ssfctl. */

#include <stddef.h>
#include <stdint.h>

/* What ssf_utf8_decode() gives for a byte that starts no valid sequence. */
#define SSF_UTF8_INVALID UINT32_C(0xffffffff)

/* Decodes one UTF-8 sequence at p (n > 0 bytes available) strictly: no overlong forms, no
 * surrogates, nothing above U+10FFFF, no sequence cut short by the end of p. Returns the bytes
 * consumed: the sequence's length with *ret its code point, or 1 for an invalid byte with *ret
 * SSF_UTF8_INVALID. */
size_t ssf_utf8_decode(const uint8_t *p, size_t n, uint32_t *ret);
