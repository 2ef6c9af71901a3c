/* SPDX-License-Identifier: MIT */
#pragma once

/* pam_ssf.so module arguments (see pam_ssf(8)):
 *   deny=low|medium|high  below=low|medium|high  failmode=open|closed  timeout=MS
 *   socket=PATH  snapshot=PATH  quiet  explain  debug
 * below= makes the line a branch (PRODUCT.md "Risk-adaptive PAM (step-up)"): it never denies,
 * so it excludes deny= on the same line.
 * The parser is pure (no logging, no allocation) and fuzzed; the caller logs the error. */

#include <stdbool.h>
#include <stdint.h>

#include "level.h"

#define PAM_SSF_DEFAULT_DENY RISK_HIGH
#define PAM_SSF_DEFAULT_TIMEOUT_MS 1000u
#define PAM_SSF_MAX_TIMEOUT_MS 10000u /* larger values are capped to this */

typedef enum PamSsfFailMode {
        PAM_SSF_FAILMODE_OPEN,
        PAM_SSF_FAILMODE_CLOSED,
} PamSsfFailMode;

typedef struct PamSsfArgs {
        RiskLevel deny;          /* deny access when the level is >= this */
        RiskLevel below;         /* RISK_NONE: a deny line; else a branch line: PAM_SUCCESS when
                                  * the level is below this, PAM_IGNORE otherwise */
        PamSsfFailMode failmode; /* daemon unavailable and no snapshot verdict */
        uint32_t timeout_ms;     /* 1..PAM_SSF_MAX_TIMEOUT_MS, one deadline for the whole query */
        const char *socket;      /* points into argv or a static default */
        const char *snapshot;    /* points into argv or a static default */
        bool quiet;              /* no conversation message (the log line stays) */
        bool explain;            /* auth phase too: the denial message names level and detection */
        bool debug;
} PamSsfArgs;

/* Parses argc/argv into *ret (defaults for what is not given; a later argument overrides an
 * earlier one). Returns 0, or -EINVAL for an unknown or malformed argument, -ERANGE for a
 * number out of range, -EEXIST when both below= and deny= are given (*ret_bad: the later of
 * them); then *ret_bad (if not NULL) points to the offending argument and *ret is untouched.
 * The strings in *ret borrow from argv. */
int pam_ssf_args_parse(int argc, const char **argv, PamSsfArgs *ret, const char **ret_bad);

/* "open" / "closed". */
const char *pam_ssf_failmode_to_string(PamSsfFailMode m);
