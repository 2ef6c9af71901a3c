/* SPDX-License-Identifier: MIT */
#pragma once

/* Containing a hook's processes, so that none of them outlives the hook's run, not even one
 * that left the hook's session with setsid() or was re-parented away from it:
 *
 *   cgroup mode   when the daemon's own cgroup (cgroup v2) is delegated to it (systemd's
 *                 Delegate=yes marks it with the trusted.delegate or user.delegate extended
 *                 attribute), each run gets a child cgroup "hook-PID-N" of the daemon's; the
 *                 forked child joins it before it executes the hook. Stopping is cgroup.kill
 *                 (kernel >= 5.14; else SIGKILL to each member of cgroup.procs until it is
 *                 empty); the cgroup is removed once empty.
 *   reaper mode   otherwise (no systemd, no delegation, no cgroup v2): the daemon forks a small
 *                 intermediate process, the reaper, which marks itself PR_SET_CHILD_SUBREAPER,
 *                 forks the hook and waits. Whatever the hook leaves behind is re-parented to the
 *                 reaper instead of init; the reaper finds it in /proc/self/task/PID/children
 *                 (kernel CONFIG_PROC_CHILDREN) and stops it, reaps everything, and exits with
 *                 the hook's own wait status (signal deaths are raised again), so that to the
 *                 daemon the reaper is the hook. The daemon only ever sends it SIGTERM.
 *
 * Either way, when the hook exits, or at its timeout or on shutdown, everything it started gets
 * SIGTERM, and SIGKILL after the grace period. Runs in the root daemon (the reaper is a forked
 * child of it that never executes anything else). */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum HookTreeMode {
        HOOK_TREE_REAPER,
        HOOK_TREE_CGROUP,
} HookTreeMode;

typedef struct HookTree {
        HookTreeMode mode;
        pid_t pid;              /* the daemon's child: the hook (cgroup mode) or its reaper */
        uid_t uid;              /* the hook's user: signals go through kill_as() when refused */
        uint64_t grace_usec;    /* SIGTERM, then SIGKILL this much later */
        int cgroup_fd;          /* cgroup mode: the hook's cgroup directory */
        int parent_fd;          /* cgroup mode: the daemon's cgroup directory */
        int procs_fd;           /* cgroup mode: its cgroup.procs, open for writing */
        char *cgroup_path;      /* cgroup mode: for messages */
        char name[64];          /* cgroup mode: "hook-PID-N" */
        pid_t daemon_pid;       /* the reaper stops when this parent goes away */
} HookTree;

#define HOOK_TREE_NULL                                                                       \
        (HookTree) {                                                                        \
                .cgroup_fd = -EBADF, .parent_fd = -EBADF, .procs_fd = -EBADF, .pid = -1        \
        }

/* The daemon's own cgroup directory (cgroup v2: /proc/self/cgroup's "0::" line under the
 * cgroup2 mount point in /proc/self/mountinfo) into *ret. Returns 0, -ENOENT (no cgroup v2), or
 * -errno. */
int hook_tree_own_cgroup(char **ret);
/* Whether dir carries systemd's delegation mark (trusted.delegate or user.delegate = 1). */
bool hook_tree_cgroup_is_delegated(const char *dir);

/* Sets t up for one run: cgroup mode when the daemon's cgroup is delegated and a child cgroup
 * can be created there, else reaper mode (never fails for lack of a cgroup). Returns 0 or
 * -ENOMEM. */
int hook_tree_prepare(HookTree *t, uid_t uid, uint64_t grace_usec);

/* In the forked child, cgroup mode: moves the calling process into the hook's cgroup.
 * Async-signal-safe. Returns 0 or -errno. */
int hook_tree_join(const HookTree *t);

/* In the forked child, reaper mode: becomes the reaper, forks the hook, which runs
 * run_hook(userdata) (that must execute the hook or _exit()), stops everything the hook leaves
 * behind, and exits with the hook's wait status. errfd: the child's error report pipe (written
 * with one int errno when the reaper cannot start the hook, then closed, so that only the hook
 * holds it). Only async-signal-safe calls. */
__attribute__((noreturn)) void hook_tree_reaper(const HookTree *t, int errfd,
                                                void (*run_hook)(void *userdata), void *userdata);

/* SIGTERM to everything of the run (the reaper passes it on and enforces the grace period
 * itself). */
void hook_tree_terminate(HookTree *t);
/* SIGKILL to everything of the run (cgroup mode); the reaper is never sent SIGKILL here. */
void hook_tree_kill(HookTree *t);
/* The last resort when the reaper itself does not exit in time: SIGKILL to it. */
void hook_tree_kill_reaper(HookTree *t);
/* After the daemon's child exited (not yet reaped): stops what the hook left behind in its
 * cgroup (SIGTERM, SIGKILL after the grace period), waits until the cgroup is empty (bounded)
 * and removes it. Returns the number of processes that were still there. */
int hook_tree_cleanup(HookTree *t);
void hook_tree_done(HookTree *t);
