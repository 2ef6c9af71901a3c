/* SPDX-License-Identifier: MIT */
#pragma once

/* CAEP reason_user: text meant for the user, shown at the end of the PAM denial message
 * (PRODUCT.md "Actions"). It comes from the network and ends up on terminals, so both the root
 * daemon (before storing it) and pam_ssf.so (before printing it) pass it through
 * ssf_reason_user_sanitize(). Pure, no allocation; linked into pam_ssf.so and ssf-sessiond. */

#include <stddef.h>

#define SSF_REASON_USER_MAX_CHARS 200u
/* UTF-8 takes at most 4 bytes a character. */
#define SSF_REASON_USER_MAX_BYTES (4u * SSF_REASON_USER_MAX_CHARS)
/* A buffer that holds any sanitised text and its NUL. */
#define SSF_REASON_USER_SIZE (SSF_REASON_USER_MAX_BYTES + 1u)

/* Copies the first len bytes of s (or up to its first NUL) into out as one line of printable
 * text: only valid UTF-8 (invalid bytes are dropped), no control characters (C0, DEL, C1),
 * terminal escape sequences (ESC, CSI, OSC, DCS, ... with their parameters and strings) dropped
 * whole, bidirectional and invisible format characters dropped, every run of white space
 * (newlines and tabs included) one space, none leading or trailing; at most
 * SSF_REASON_USER_MAX_CHARS characters, cut on a character boundary, and never more than
 * size - 1 bytes. Always NUL-terminates out when size > 0. Returns the length of out. */
size_t ssf_reason_user_sanitize(const char *s, size_t len, char *out, size_t size);
