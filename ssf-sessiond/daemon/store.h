/* SPDX-License-Identifier: MIT */
#pragma once

/* Durable state in SQLite (state_dir/state.db, WAL, synchronous=FULL, mode 0600): received jtis
 * (replay cache), per-user detections, the risk history, pending actions (the claims of their SET
 * stored once per SET, for hooks), and key/value facts (stream id, push secret). Users are
 * identified by uid: the names NSS resolves to one account share one level; the history and actions
 * also keep the name the event was applied under. One Store is used by one thread at a time (the
 * Manager's lock). All functions return 0 or -errno (-ENOENT: no such row; -EIO: SQLite error,
 * logged at debug with sqlite3_errmsg). Times are epoch seconds. Runs in the root daemon. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "level.h"

typedef struct Store Store;

typedef struct StoreDetection {
        uid_t uid;
        char *detection;
        RiskLevel level;
        uint64_t since;      /* first seen */
        uint64_t updated;    /* last renewed */
        uint64_t expires;    /* 0: never */
        uint64_t event_time; /* time of the event that set it (for ordering) */
        char *jti;
        char *reason;
        char *reason_user;   /* CAEP reason_user of the SET that set it, sanitised, or NULL */
} StoreDetection;

typedef struct StoreUser {
        uid_t uid;
        char detection[64];  /* the detection at the top level that was updated last */
        RiskLevel level;
        uint64_t updated;
        uint64_t until;      /* when the current level lapses unless renewed (0: never) */
        char *reason_user;   /* that detection's reason_user, or NULL (owned) */
} StoreUser;

typedef struct HistoryEntry {
        int64_t id;
        uint64_t time;
        char *user;          /* may be NULL (e.g. unmapped subject, stream event) */
        int64_t uid;         /* the user's uid, -1 when there is no user */
        char *jti;
        char *txn;           /* the SET's txn claim, or NULL */
        char *transmitter;   /* the transmitter the SET came from, NULL for admin entries */
        char *event;         /* event short name, or "reset", "set-risk", … */
        char *detection;
        RiskLevel level_before, level_after;
        char *rule;
        char *action;        /* "logout", "workflow", "none", "received", … */
        char *result;        /* "ok", "failed: …", "pending", "skipped: …", "unmapped", … */
        int64_t duration_ms; /* -1 when not applicable */
} HistoryEntry;

typedef enum ActionState { ACTION_STATE_PENDING, ACTION_STATE_DONE } ActionState;

/* A durable action: enqueued in the same transaction as the risk change, run after commit,
 * marked done when finished; pending ones run again after a restart. */
typedef struct PendingAction {
        int64_t id;
        uint64_t created;
        uid_t uid;
        char *user;          /* the user's name when it was enqueued */
        char *rule;
        char *action;        /* "logout" | "workflow" */
        char *sessions;      /* "all" | "remote" | "local" | "graphical" */
        bool reset;
        char *workflow;
        char *jti, *event_uri, *detection, *issuer, *reason;
        char *txn;           /* the SET's txn claim, or NULL */
        RiskLevel level_before, level_after;
        char *claims_json;   /* the SET's claims, for hook stdin (stored once per SET) */
        void *claims_ref;    /* set by store_action_list_pending(): the actions of one SET in
                              * a list share one copy of its claims, released by
                              * pending_action_done() (thread-safe); claims_json points into it */
        int64_t history_id;  /* the history row this action updates when done */
        uint64_t warn_usec;  /* logout: warn the terminals this long before (rule's warn) */
        uint64_t due_usec;   /* warned logout: when it is due (CLOCK_REALTIME µs); 0 = not
                              * warned yet */
} PendingAction;

int store_open(const char *path, Store **ret);
Store *store_free(Store *s);
/* Checkpoints of the WAL into the database the store's checkpoint thread ran so far (they run
 * there, not in the commit that fills the WAL). */
uint64_t store_checkpoints(Store *s);

int store_begin(Store *s);
int store_commit(Store *s);
int store_rollback(Store *s);
/* Many reads as one read transaction (one snapshot, one WAL read lock instead of one per
 * statement): returns 1 when one was begun, 0 when a transaction is open already (then nothing
 * is begun), or -errno; store_read_end() takes what it returned. */
int store_read_begin(Store *s);
void store_read_end(Store *s, int began);
/* One savepoint inside the open transaction (not nested), so that one SET of a batch can be
 * undone without the others: release keeps its changes, rollback undoes them (and releases
 * it). -EIO from rollback when SQLite already undid the whole transaction. */
int store_savepoint(Store *s);
int store_savepoint_release(Store *s);
int store_savepoint_rollback(Store *s);

/* Records a received jti. Returns 0 when new, -EALREADY when seen before. */
int store_jti_insert(Store *s, const char *jti, const char *iss, const char *event_uri,
                     uint64_t iat, uint64_t now);
/* Drops replay-cache rows received and issued before cutoff (all at once: store_prune() works
 * in batches). Returns the number dropped. */
int store_jti_prune(Store *s, uint64_t cutoff);
/* The rows of the replay cache, the open transaction's included (kept in memory, no query). */
uint64_t store_jti_count(Store *s);

int store_detection_get(Store *s, uid_t uid, const char *detection, StoreDetection *ret);
/* Insert or replace (user, detection). */
int store_detection_put(Store *s, const StoreDetection *d);
int store_detection_delete(Store *s, uid_t uid, const char *detection);
/* Deletes every detection of user. */
int store_user_reset(Store *s, uid_t uid);
/* Active (not expired at now) detections of user, highest level first. */
int store_detections_list(Store *s, uid_t uid, uint64_t now, StoreDetection **ret,
                          size_t *ret_n);
/* Highest active level of user (none when there is no active detection) and when it lapses. */
int store_user_level(Store *s, uid_t uid, uint64_t now, RiskLevel *ret_level,
                     uint64_t *ret_until);
/* Users with an active level above none, by uid: all of them (no bound), since PAM's level
 * table and snapshot are built from this list. */
int store_users_list(Store *s, uint64_t now, StoreUser **ret, size_t *ret_n);
/* One user's entry as store_users_list() would list it, at level none (and nothing else set)
 * when they are not at risk. */
int store_user_get(Store *s, uid_t uid, uint64_t now, StoreUser *ret);
/* Deletes detections that expired before now; returns the number deleted. */
int store_detections_expire(Store *s, uint64_t now);

int store_history_add(Store *s, const HistoryEntry *h, int64_t *ret_id);
int store_history_update_result(Store *s, int64_t id, const char *result, int64_t duration_ms);
/* One page of history, newest first: rows with id below before_id (INT64_MAX: from the newest)
 * and time at or after since (0: any), at most limit (1..100000); uid -1 for all users. The
 * caller pages with before_id = the last row's id, so a long listing never holds the lock
 * long. */
int store_history_page(Store *s, int64_t uid, uint64_t since, int64_t before_id, size_t limit,
                       HistoryEntry **ret, size_t *ret_n);
/* Newest first; uid -1 for all users. */
int store_history_list(Store *s, int64_t uid, size_t limit, HistoryEntry **ret,
                       size_t *ret_n);

int store_action_add(Store *s, const PendingAction *a, int64_t *ret_id);
int store_action_list_pending(Store *s, PendingAction **ret, size_t *ret_n);
int store_action_finish(Store *s, int64_t id, const char *result);
/* Records that pending action id warned its sessions and is due at due_usec (CLOCK_REALTIME µs):
 * once only, a later call changes nothing. Returns 0, -ESRCH when id is not pending or has its
 * due time already, or -errno. */
int store_action_set_due(Store *s, int64_t id, uint64_t due_usec);
/* An earlier action of the transaction txn of issuer (the SETs' txn claim) for user, of kind
 * action ("logout", "workflow"), that is pending or succeeded; sessions and workflow, unless
 * NULL, must match too. Returns 0 with *ret_jti a new copy of its SET's jti (NULL if it had
 * none), -ENOENT when there is none, -EINVAL for an empty txn. Uses an index. */
int store_action_find_txn(Store *s, const char *issuer, const char *txn, uid_t uid,
                          const char *action, const char *sessions, const char *workflow,
                          char **ret_jti);

/* Retention (PRODUCT.md "Limits, retention and protection of the login gate"). Each call
 * deletes at most batch rows of each kind, in one transaction, so that the lock is held only
 * briefly; call again while ret->more. Zero fields prune nothing of their kind. */
typedef struct StorePruneLimits {
        uint64_t history_before;   /* history rows and finished actions created before this */
        uint64_t history_max_rows; /* history rows and finished actions below the newest this
                                    * many ids */
        uint64_t jti_before;       /* replay-cache rows of SETs issued and received before this
                                    * (now - max_event_age: older SETs are refused anyway) */
        size_t batch;              /* 0: 1000 */
} StorePruneLimits;

typedef struct StorePruneCounts {
        unsigned history, actions, sets, jti; /* rows deleted */
        bool more;                            /* a batch was full: call again */
} StorePruneCounts;

/* The history row of a pending action is never pruned (its result is written there), nor are
 * pending actions; a SET's claims go when no pending action refers to them. Returns 0 or
 * -errno (nothing deleted then). */
int store_prune(Store *s, const StorePruneLimits *l, StorePruneCounts *ret);

/* Returns -ENOENT when key is not set; *ret is a new string. */
int store_kv_get(Store *s, const char *key, char **ret);
int store_kv_set(Store *s, const char *key, const char *value);

/* Counts for status/metrics. table is one of "jti", "detections", "history", "actions",
 * "pending_actions", "kv", "sets" (SETs whose claims are kept), "users" (distinct users with
 * detections); else -EINVAL. */
int store_count(Store *s, const char *table, uint64_t *ret);

void store_detection_done(StoreDetection *d);
void store_detections_free(StoreDetection *d, size_t n);
void store_users_free(StoreUser *u, size_t n);
void history_entry_done(HistoryEntry *h);
void history_entries_free(HistoryEntry *h, size_t n);
void pending_action_done(PendingAction *a);
void pending_actions_free(PendingAction *a, size_t n);
