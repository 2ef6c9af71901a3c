/* SPDX-License-Identifier: MIT */
#pragma once

/* Entity risk levels, ordered: none < low < medium < high. Linked into pam_ssf.so,
 * ssf-sessiond and ssfctl. */

#include <errno.h>
typedef enum RiskLevel {
        RISK_NONE = 0,
        RISK_LOW,
        RISK_MEDIUM,
        RISK_HIGH,
        _RISK_MAX,
        _RISK_INVALID = -EINVAL,
} RiskLevel;

/* "none", "low", "medium", "high"; NULL for out-of-range values. */
const char *risk_level_to_string(RiskLevel l);
/* Case-insensitive; also accepts Okta's "secure" as none. Returns _RISK_INVALID if unknown. */
RiskLevel risk_level_from_string(const char *s);
