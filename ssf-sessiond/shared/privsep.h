/* SPDX-License-Identifier: MIT */
#pragma once

/* The account the unprivileged network worker runs as: root looks it up to start the worker,
 * the worker to drop to it. Linked by both processes. */

#include <sys/types.h>

#define SSF_WORKER_USER "ssf-sessiond"

/* How an admin creates the account: said by every message about a missing one. */
#define SSF_WORKER_USER_HINT                                                                  \
        "create it with systemd-sysusers (the shipped /usr/lib/sysusers.d/ssf-sessiond.conf), " \
        "or: useradd --system --home-dir / --no-create-home --shell /usr/sbin/nologin "         \
        SSF_WORKER_USER

/* The user the worker runs as: SSF_WORKER_USER, resolved through NSS, and nothing else.
 * -ESRCH when it does not exist; -EPERM when it is root (uid or gid 0) or the shared "nobody"
 * account (its uid is nobody's, or the overflow uid 65534), which other services' processes
 * run as too; another -errno when the lookup failed. *ret_* are written only on success. */
int worker_user(uid_t *ret_uid, gid_t *ret_gid);

/* Logs why worker_user() failed with r (a missing user: how to create it). Returns r. */
int worker_user_log_error(int r);
