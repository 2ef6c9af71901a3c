/* SPDX-License-Identifier: MIT */
#pragma once

/* The Retry-After header field (RFC 9110 §10.2.3) of a transmitter's 429 or 503 answer,
 * parsed without I/O (tests/fuzz/fuzz-retry-after.c). Runs in the network worker. */

#include <stdint.h>

/* However far away a transmitter asks us to come back, we come back after at most this. */
#define RETRY_AFTER_MAX_SEC 300u
/* Longest field value looked at; a longer one is not a Retry-After value. */
#define RETRY_AFTER_MAX_LEN 64u

/* value: the field value (leading and trailing spaces and tabs are ignored), either
 * delta-seconds (1*DIGIT) or an HTTP-date in any of the three forms recipients must accept
 * (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", obsolete RFC 850 "Sunday, 06-Nov-94 08:49:37
 * GMT" and asctime "Sun Nov  6 08:49:37 1994"). now_sec: the current time in seconds since
 * the epoch, to turn a date into a delay. Returns 0 with *ret_sec the delay in seconds, capped
 * at RETRY_AFTER_MAX_SEC (a date in the past is 0), or -EINVAL (NULL, empty, longer than
 * RETRY_AFTER_MAX_LEN, or neither form) without touching *ret_sec. */
int retry_after_parse(const char *value, uint64_t now_sec, uint64_t *ret_sec);
