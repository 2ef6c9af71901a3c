/* SPDX-License-Identifier: MIT */
#pragma once

/* The action thread: runs pending actions (logout, workflow) in order, after their risk change
 * was committed, and records each result. Pending actions survive restarts.
 * Runs in the root daemon. */

#include "state.h"

void *actions_thread(void *userdata);
