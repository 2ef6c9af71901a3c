/* SPDX-License-Identifier: MIT */
#pragma once

/* The actions: the pending logouts (and other session actions through logind) and workflow
 * hooks that the engine committed with a risk change, run after that commit, each result
 * recorded. Two lanes, so that a logout never waits behind a hook:
 *
 *   logind lane   one thread runs every action that is not a workflow, in commit order. It
 *                 talks to logind only (bounded by D-Bus call timeouts). An immediate logout
 *                 or lock (a rule without warn) is handed to it by the engine before the
 *                 commit's sync (state.h, EarlyAction): it asks logind at once, ahead of what
 *                 is pending, while the commit syncs, and records the result once the commit
 *                 is durable and the action pending in the store; when the commit fails, the
 *                 result is dropped (asked for or not) and the SET, left unacknowledged, comes
 *                 again: a repeated logout finds nothing left to end. A commit wakes only the
 *                 lanes it gave work to.
 *   hook lane     ACTIONS_HOOK_WORKERS threads run workflow hooks: several at once, but for
 *                 one user one at a time and in commit order (a user's next hook waits until
 *                 the previous one finished; other users' hooks go ahead).
 *
 * Pending actions survive restarts (they are rows of the store until finished). An action
 * interrupted by shutdown stays pending and runs again, whole, at the next start; a hook may
 * thus run twice (at least once), a completed action never: once it finished it is not taken
 * again by this process even when the store could not record its result (recording is
 * retried). Runs in the root daemon. */

#include <stdbool.h>
#include <time.h>

#include "state.h"

#define ACTIONS_HOOK_WORKERS 4

typedef struct Actions Actions;

/* Starts both lanes on st. Returns 0 or -errno (nothing left running then). */
int actions_start(State *st, Actions **ret);
/* Waits for every lane's threads until deadline (CLOCK_REALTIME), once st->stopping is set and
 * the condition broadcast (running hooks end through st->cancel_fd). Returns true when all
 * stopped; false when some still run: then a must never be freed. */
bool actions_join(Actions *a, const struct timespec *deadline);
Actions *actions_free(Actions *a);
