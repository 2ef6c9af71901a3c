/* SPDX-License-Identifier: MIT */
#pragma once

/* The action thread: runs pending actions (logout, workflow) in order, after their risk change
 * was committed, and records each result. Pending actions survive restarts. */

#include "manager.h"

void *actions_thread(void *userdata);
