/* SPDX-License-Identifier: MIT */
#pragma once

/* Signals a process (or, with pid < 0, a process group) owned by another user without
 * CAP_KILL: the unit file grants the daemon only CAP_SETUID/CAP_SETGID, so when kill() is
 * refused a short-lived child switches to the target's uid and sends the signal from there.
 * Used for the network worker and for hooks run as another user. Runs in the root daemon. */

#include <sys/types.h>

/* Returns 0 or -errno (-ESRCH when the process is gone). */
int kill_as(uid_t uid, pid_t pid, int sig);
