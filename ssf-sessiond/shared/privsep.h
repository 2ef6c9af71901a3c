/* SPDX-License-Identifier: MIT */
#pragma once

/* The account the unprivileged network worker runs as: root looks it up to start the worker,
 * the worker to drop to it. Linked by both processes. */

#include <stdbool.h>
#include <sys/types.h>

#define SSF_WORKER_USER "ssf-sessiond"

/* The user the worker runs as: SSF_WORKER_USER, else "nobody" (*ret_fallback). -ESRCH when
 * neither exists. */
int worker_user(uid_t *ret_uid, gid_t *ret_gid, bool *ret_fallback);
