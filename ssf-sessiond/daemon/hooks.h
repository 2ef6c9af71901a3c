/* SPDX-License-Identifier: MIT */
#pragma once

/* Workflow hooks: <hooks dir>/NAME run without a shell, as the configured user, in its own
 * session and process group, with working directory "/", every fd but 0-2 closed and signal
 * dispositions/mask reset. The file is opened once (O_PATH, no symlink), checked through that
 * fd, and that fd is what runs: execveat(fd, "", argv, envp, AT_EMPTY_PATH), argv[0] the path.
 * The fd stays open in the hook (without O_CLOEXEC): for a "#!" script the kernel hands the
 * interpreter /dev/fd/N (so a script's $0 is /dev/fd/N, and /proc must be mounted), and a
 * file renamed over the path after the check is not what runs.
 *
 * Containment (hook-tree.h): the hook runs in a cgroup of its own when the daemon's cgroup is
 * delegated, else under an intermediate subreaper; when it exits, times out or is cancelled,
 * every process it started is stopped too (SIGTERM, SIGKILL one second later), including
 * those that called setsid().
 *
 * Environment, exactly (nothing inherited from the daemon):
 *   PATH=/usr/sbin:/usr/bin:/sbin:/bin
 *   SSF_USER SSF_UID SSF_RISK_LEVEL SSF_PREVIOUS_RISK_LEVEL SSF_DETECTION SSF_EVENT_TYPE
 *   SSF_JTI SSF_ISSUER SSF_RULE SSF_REASON
 * A NULL fact is an empty value (SSF_UID is empty when uid is (uid_t) -1).
 *
 * Standard input: one JSON object on one line, then EOF. Keys are the lowercase names of the
 * variables without the prefix: "user", "uid" (number, or null), "risk_level",
 * "previous_risk_level", "detection", "event_type", "jti", "issuer", "rule", "reason", "txn"
 * (strings, "" when NULL), plus "claims": the SET's claims object (null when claims_json is
 * NULL, not JSON, or over 1 MiB). A hook need not read it.
 *
 * Standard output and error: one pipe; the first 1023 bytes are kept, the rest is read and
 * discarded. What is kept goes to the journal and the history, so it is made printable by the
 * rule of terminal warnings and reason_user (ssf_utf8_make_printable()): invalid UTF-8, C0
 * controls other than newline and tab, DEL, C1 controls, bidirectional and invisible
 * characters each become one '?'.
 * Runs in the root daemon. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The facts given to a hook (all strings may be NULL -> empty). */
typedef struct HookFacts {
        const char *user;
        uid_t uid;
        const char *risk_level, *previous_risk_level;
        const char *detection, *event_type, *jti, *issuer, *rule, *reason;
        const char *txn;         /* the SET's txn claim (standard input only) */
        const char *claims_json; /* the SET's claims, embedded in the stdin object as "claims" */
} HookFacts;

typedef struct HookResult {
        int exit_status;      /* exit code, or 128+signal, or -1 when it could not run */
        int timed_out;
        int cancelled;        /* stopped because cancel_fd became readable (shutdown) */
        int64_t duration_ms;
        char output[1024];    /* first lines of stdout/stderr */
        char summary[1280];   /* "exit 0 in 12 ms: <first line>", "killed by signal 9 in 5 ms",
                               * "timed out, killed by signal TERM in 30002 ms: <first line>",
                               * "could not be run: <strerror>" */
} HookResult;

/* Checks that dir/name is a regular executable file owned by root and not group/world-writable,
 * not a symlink, in an absolute directory owned by root and not group/world-writable, and that
 * name is a safe name: [A-Za-z0-9._@+-], at most 128 characters, not starting with '.'.
 * Returns 0, -EINVAL (bad name or directory), -ENOENT, or -EPERM (unsafe: symlink, not a
 * regular file, not executable, ownership or modes). */
int hooks_check(const char *dir, const char *name);

/* Checks the hook (hooks_check()), runs it and waits for it: at most timeout_usec (0 means the
 * default, 30 s), then SIGTERM to it and everything it started, 1 s later SIGKILL; it is always
 * reaped, and so is whatever it left behind.
 * run_as: user name to run as (NULL or "" = root); the child sets the supplementary groups
 * (computed with getgrouplist() before fork()), gid and uid before execve(); when already
 * running as run_as nothing is dropped. Blocks the calling thread (meant for the daemon's
 * action thread); SIGPIPE is blocked in that thread meanwhile and never delivered to the daemon.
 * Returns 0 when the hook ran (whatever its exit status; see *ret), or -errno when it could not
 * be run (hooks_check() errors, -ESRCH unknown user, -EPERM not root and run_as is another user,
 * execve() errors such as -ENOENT for a missing interpreter); then ret->exit_status is -1 and
 * ret->summary says why. */
int hooks_run(const char *dir, const char *name, const char *run_as, uint64_t timeout_usec,
              const HookFacts *facts, HookResult *ret);

/* The same, and stops the hook (SIGTERM, then SIGKILL, as on timeout) as soon as cancel_fd
 * becomes readable, setting ret->cancelled. cancel_fd may be negative. */
int hooks_run_cancellable(const char *dir, const char *name, const char *run_as,
                          uint64_t timeout_usec, int cancel_fd, const HookFacts *facts,
                          HookResult *ret);

/* For tests: when set, called after the hook was opened and checked and before it runs (a test
 * replaces the file there to show that the checked one runs). NULL in the daemon. */
extern void (*hooks_test_checked)(const char *dir, const char *name);
