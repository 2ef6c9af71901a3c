/* SPDX-License-Identifier: MIT */
#pragma once

/* Local users as root identifies them: the account NSS resolves a name to (its uid, and the
 * canonical name getpwuid() gives that uid), and whether the account is protected — never
 * acted upon (PRODUCT.md "Subjects, users and who is never acted upon"). State and the PAM
 * snapshot are keyed by uid, so every name of one account shares its level. Runs in the root
 * daemon. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

#define LOCAL_USER_NAME_MAX 256u

typedef struct LocalUser {
        uid_t uid;
        char name[LOCAL_USER_NAME_MAX]; /* canonical: getpwuid(uid)'s pw_name */
} LocalUser;

/* Whether name is something to look up at all: 1..LOCAL_USER_NAME_MAX-1 bytes, no leading '-',
 * no control characters, no '/' or ':' (AD names with spaces and fully qualified names are
 * fine). */
bool local_user_name_ok(const char *name);

/* Resolves name through NSS (getpwnam_r), then the canonical name of its uid. Returns 0, -ESRCH
 * when NSS knows no such user, -EINVAL for a name local_user_name_ok() refuses, or another
 * -errno when NSS failed (then nothing is known). */
int local_user_resolve(const char *name, LocalUser *ret);

/* From local_user_cache_begin() to local_user_cache_end(), on the calling thread only, the
 * lookups of this file answer a name or uid asked before from memory: root applies a batch of
 * SETs between the two. Within a batch every answer is kept (an account, or none; NSS failures
 * are asked again); an account found is also answered in the batches that begin within 5
 * seconds of the table's first answer (nscd keeps one for 10 minutes). Other threads (the PAM
 * front), and this one outside a batch, always ask NSS. Without memory for it, every lookup goes
 * to NSS. */
void local_user_cache_begin(void);
void local_user_cache_end(void);

/* The canonical name of uid into ret (getpwuid_r); with no such account, the decimal uid. */
int local_user_from_uid(uid_t uid, LocalUser *ret);

/* Why u is never acted upon, as a history result ("protected: …"), into buf; NULL when it may
 * be. Protected: a uid outside min_uid…max_uid, or an account that a name in protect resolves
 * to (so an alias of root is protected as root is). */
const char *local_user_protected(const Config *c, const LocalUser *u, char *buf, size_t size);
