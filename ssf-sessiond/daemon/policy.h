/* SPDX-License-Identifier: MIT */
#pragma once

/* Entity risk policy: ordered rules, first match wins. Pure. Runs in the root daemon. */

#include "config.h"
#include "level.h"
#include "strv.h"

/* Returns the first rule of c matching: the user's groups (primary and supplementary, from the
 * group database; "!pattern" excludes, fnmatch globs), the detection name, and the new level.
 * NULL when no rule matches. user_groups may be passed (NULL-terminated) to avoid the lookup;
 * when NULL the groups of user are looked up. A rule with a transmitters = list matches only
 * SETs from those transmitters (transmitter: the one root received it from; NULL matches only
 * rules without such a list). */
const Rule *policy_match(const Config *c, const char *transmitter, const char *user,
                         char *const *user_groups,
                         const char *detection, RiskLevel new_level);

/* The same, for a detection at level none (PRODUCT.md "Detections derived from event claims"):
 * only rules whose detections name it (or its family) explicitly are considered, never one
 * with "*" or without detections; level is the user's level, which the detection left as it
 * was. */
const Rule *policy_match_named(const Config *c, const char *transmitter, const char *user,
                               char *const *user_groups, const char *detection, RiskLevel level);

/* The groups of user, NULL-terminated strv (owned), or NULL on error. */
char **policy_user_groups(const char *user);
