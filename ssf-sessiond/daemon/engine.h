/* SPDX-License-Identifier: MIT */
#pragma once

/* Applying one verified SET to the durable state: replay check, detection, risk levels, the
 * entity risk policy, history, and the pending actions — all in one SQLite transaction, so a
 * SET is acknowledged only once all of this is committed. Runs in the root daemon. */

#include "ingest.h"
#include "state.h"
#include "users.h"

/* Applies the facts the network worker handed over for one verified SET, after deriving the
 * detection and the users itself and checking the record against its own clock and bounds;
 * protected accounts are recorded, never acted upon. Returns 0 when it was committed
 * (acknowledge it), -EALREADY for a replayed jti (acknowledge it, nothing changed),
 * -EBADMSG with *err filled when the SET must be reported in setErrs, or another -errno for a
 * local failure (neither acknowledge nor report: the transmitter redelivers it). Takes
 * st->lock. */
int engine_apply(State *st, const IngestRequest *set, SetError *err);
/* The same for n SETs at once, in one transaction (one synced commit) with a savepoint per
 * SET: ret[i] and errs[i] are what engine_apply() would have returned for sets[i] (a failed
 * commit fails every SET that was to be committed with it). Acknowledge after it returns. */
void engine_apply_batch(State *st, const IngestRequest *const *sets, size_t n, SetError *errs,
                        int *ret);

/* Admin operations (ssfctl reset / set-risk), recorded in the history. Take st->lock. */
int engine_reset_user(State *st, const LocalUser *user, const char *why, RiskLevel *ret_before);
int engine_set_risk(State *st, const LocalUser *user, RiskLevel level, const char *reason,
                    RiskLevel *ret_before);
