/* SPDX-License-Identifier: MIT */
/*
 * Risk levels (level.h): names and parsing. Linked into pam_ssf.so, ssf-sessiond and
 * ssfctl.
 */
#include <strings.h>

#include "level.h"
#include "macro.h"

static const char *const level_names[_RISK_MAX] = {
        [RISK_NONE] = "none",
        [RISK_LOW] = "low",
        [RISK_MEDIUM] = "medium",
        [RISK_HIGH] = "high",
};

const char *risk_level_to_string(RiskLevel l) {
        if (l < 0 || l >= _RISK_MAX)
                return NULL;
        return level_names[l];
}

RiskLevel risk_level_from_string(const char *s) {
        if (!s)
                return _RISK_INVALID;
        for (int i = 0; i < _RISK_MAX; i++)
                if (strcasecmp(s, level_names[i]) == 0)
                        return (RiskLevel) i;
        if (strcasecmp(s, "secure") == 0)
                return RISK_NONE;
        return _RISK_INVALID;
}
