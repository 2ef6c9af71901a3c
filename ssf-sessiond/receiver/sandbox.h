/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The network worker's seccomp allow-list (sandbox.c). Runs in the network worker, which
 * applies it to itself once its setup is done (files read, sockets open, privileges dropped):
 * from then on it can do what receiving SETs needs (memory, threads, time, reading files, UNIX
 * and IP sockets) and nothing else; it cannot execute programs or create processes.
 */

#include <stdbool.h>

/* Applies the filter to the calling process, all its threads included, and sets
 * no_new_privs. Irreversible. Returns 0 or -errno (the filter could not be built or loaded:
 * the caller must not go on without it). */
int sandbox_apply(void);

/* Whether this build relaxes the filter for a sanitizer's runtime (see sandbox.c). */
bool sandbox_relaxed_for_sanitizer(void);
