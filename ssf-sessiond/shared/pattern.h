/* SPDX-License-Identifier: MIT */
#pragma once

/* Shell-style glob patterns for [detection NAME] claims (fnmatch(3) without flags: '*', '?',
 * '[...]' with '!' or '^' negation and ranges, '\' escapes), matched byte by byte in time
 * O(length of text × length of pattern): the text comes from the network, and a backtracking
 * fnmatch() can take exponential time on patterns with several '*'. Pure. Linked by both
 * processes (the configuration parser checks patterns, the root daemon matches them). */

#include <stdbool.h>
#include <stddef.h>

/* Whether pattern is one this matcher accepts: every '[' is closed, no character class
 * ("[:alpha:]"), no trailing lone '\'. */
bool pattern_valid(const char *pattern);

/* Whether text (len bytes, may hold any byte but is compared as bytes) matches pattern, which
 * must be pattern_valid(). Case-sensitive. */
bool pattern_match(const char *pattern, const char *text, size_t len);
