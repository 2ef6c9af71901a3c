/* SPDX-License-Identifier: MIT */
/*
 * Signalling a process owned by another user without CAP_KILL (killas.h). Runs in the root
 * daemon.
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "killas.h"

int kill_as(uid_t uid, pid_t pid, int sig) {
        pid_t child;
        int status;

        if (kill(pid, sig) == 0)
                return 0;
        if (errno != EPERM || geteuid() != 0 || uid == 0 || uid == (uid_t) -1)
                return -errno;

        /* Only async-signal-safe calls in the child: the daemon has threads. */
        child = fork();
        if (child < 0)
                return -errno;
        if (child == 0) {
                if (setresuid(uid, uid, uid) < 0)
                        _exit(1);
                _exit(kill(pid, sig) == 0 ? 0 : errno == ESRCH ? 2 : 1);
        }
        while (waitpid(child, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (!WIFEXITED(status))
                return -EIO;
        switch (WEXITSTATUS(status)) {
        case 0:
                return 0;
        case 2:
                return -ESRCH;
        default:
                return -EPERM;
        }
}
