/* SPDX-License-Identifier: MIT */
/*
 * The account the network worker runs as (privsep.h): root looks it up to start the worker,
 * the worker to drop to it. Linked by both processes.
 */
#include <errno.h>
#include <pwd.h>
#include <stddef.h>

#include "privsep.h"

int worker_user(uid_t *ret_uid, gid_t *ret_gid, bool *ret_fallback) {
        struct passwd pw, *res = NULL;
        char buf[4096];

        if (getpwnam_r(SSF_WORKER_USER, &pw, buf, sizeof(buf), &res) == 0 && res)
                *ret_fallback = false;
        else if (getpwnam_r("nobody", &pw, buf, sizeof(buf), &res) == 0 && res)
                *ret_fallback = true;
        else
                return -ESRCH;
        *ret_uid = pw.pw_uid;
        *ret_gid = pw.pw_gid;
        return 0;
}
