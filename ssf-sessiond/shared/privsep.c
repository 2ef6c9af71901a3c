/* SPDX-License-Identifier: MIT */
/*
 * The account the network worker runs as (privsep.h): root looks it up before it starts the
 * worker and refuses to start without it, the worker to drop to it. There is no fallback to
 * "nobody": a compromised worker must not share its uid with other services. Linked by both
 * processes.
 */
#include <errno.h>
#include <pwd.h>
#include <stddef.h>

#include "log.h"
#include "privsep.h"

#define OVERFLOW_UID 65534 /* nobody on Linux (/proc/sys/kernel/overflowuid) */

int worker_user(uid_t *ret_uid, gid_t *ret_gid) {
        struct passwd pw, *res = NULL, nobody, *nres = NULL;
        char buf[4096], nbuf[4096];
        int r;

        r = getpwnam_r(SSF_WORKER_USER, &pw, buf, sizeof(buf), &res);
        if (r > 0 && r != ENOENT && r != ESRCH)
                return -r;
        if (!res)
                return -ESRCH;
        if (pw.pw_uid == 0 || pw.pw_gid == 0 || pw.pw_uid == OVERFLOW_UID)
                return -EPERM;
        if (getpwnam_r("nobody", &nobody, nbuf, sizeof(nbuf), &nres) == 0 && nres &&
            nobody.pw_uid == pw.pw_uid)
                return -EPERM;
        *ret_uid = pw.pw_uid;
        *ret_gid = pw.pw_gid;
        return 0;
}

int worker_user_log_error(int r) {
        if (r == -ESRCH)
                return log_error_errno(r, "User '%s' does not exist: the network worker runs as "
                                       "this dedicated user and never as root or 'nobody'; "
                                       SSF_WORKER_USER_HINT, SSF_WORKER_USER);
        if (r == -EPERM)
                return log_error_errno(r, "User '%s' is root or shares its uid with 'nobody': the "
                                       "network worker needs a dedicated unprivileged user",
                                       SSF_WORKER_USER);
        return log_error_errno(r, "Cannot look up user '%s': %m", SSF_WORKER_USER);
}
