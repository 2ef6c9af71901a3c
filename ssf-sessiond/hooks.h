/* SPDX-License-Identifier: MIT */
#pragma once

/* Workflow hooks: <hooks dir>/NAME run with posix_spawn (no shell), a minimal environment
 * (PATH=/usr/sbin:/usr/bin:/sbin:/bin plus SSF_* facts), stdin a JSON object, stdout+stderr
 * captured (first lines kept), killed after the timeout, as the configured user. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The facts given to a hook (all strings may be NULL -> empty). */
typedef struct HookFacts {
        const char *user;
        uid_t uid;
        const char *risk_level, *previous_risk_level;
        const char *detection, *event_type, *jti, *issuer, *rule, *reason;
        const char *claims_json; /* the SET's claims, embedded in the stdin object as "claims" */
} HookFacts;

typedef struct HookResult {
        int exit_status;      /* exit code, or 128+signal, or -1 when it could not run */
        int timed_out;
        int64_t duration_ms;
        char output[1024];    /* first lines of stdout/stderr */
        char summary[1280];   /* "exit 0 in 12 ms: <first line>" */
} HookResult;

/* Checks that dir/name is a regular executable file owned by root and not group/world-writable,
 * in a directory that is not group/world-writable, and that name has no '/' and does not start
 * with '.'. Returns 0 or -errno (-EPERM for unsafe ownership/modes). */
int hooks_check(const char *dir, const char *name);

/* Runs the hook and waits for it (at most timeout_usec, then SIGTERM, 1 s later SIGKILL).
 * run_as: user name to run as (setuid/setgid/initgroups done in the child via posix_spawn's
 * attributes is not possible, so the child is spawned through a small fork+exec path that
 * drops privileges before exec; when already running as run_as nothing is dropped). Returns 0
 * when the hook ran (whatever its exit status; see *ret), or -errno when it could not be run. */
int hooks_run(const char *dir, const char *name, const char *run_as, uint64_t timeout_usec,
              const HookFacts *facts, HookResult *ret);
