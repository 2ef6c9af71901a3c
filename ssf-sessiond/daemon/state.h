/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The root daemon's shared state: the configuration in use, the store, the counters and what
 * the network worker reported of the stream, all guarded by one lock, and the two ways one part
 * wakes another (the main loop, the action thread). The main loop (manager.c) owns it; the
 * engine, the IPC server, worker supervision (broker.c) and the action thread are handed this
 * instead of the whole Manager, so none of them depends on the main loop. Runs in the root
 * daemon.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "snapshot.h"
#include "store.h"

typedef struct ConfigHandle {
        Config *config;
        unsigned n_ref; /* guarded by State.config_lock */
} ConfigHandle;

/* What PAM is answered from: every account whose level is above none, by uid, as the last
 * commit left them (a copy, never the store). A hash table (open addressing by uid) updated in
 * place after each commit for the accounts it changed, so that the cost of a commit does not
 * grow with the number of accounts at risk; guarded by State.levels_lock, which a lookup holds
 * only for the probe and the copy of the answer. */
typedef struct LevelEntry {
        uid_t uid;
        bool used;
        RiskLevel level;
        uint64_t until;        /* when the level lapses unless renewed (0: never) */
        const char *detection; /* the detection PAM names: in State.detection_names, or NULL */
        char *reason_user;     /* its CAEP reason_user (sanitised, owned), or NULL */
} LevelEntry;

typedef struct LevelTable {
        bool valid;          /* false until the store was read once: PAM then gets an error */
        size_t n;            /* entries in use */
        size_t cap;          /* slots: 0 or a power of two */
        LevelEntry *slots;
} LevelTable;

/* The PAM snapshot's writer (common/snapshot.h): the journal that each commit appends its
 * changes to, and the thread that compacts it into a new base file off the commit path. */
typedef struct SnapshotWriter {
        pthread_mutex_t base_lock;  /* serialises base file writers: compaction, full publish */
        pthread_mutex_t lock;       /* the fields below; taken before levels_lock */
        pthread_cond_t cond;
        pthread_t thread;
        bool thread_started, stop, compact;
        char *path;                 /* the base file the journal belongs to */
        SsfSnapshotPolicy policy;   /* what it was written with */
        int journal_fd;             /* -EBADF: no usable journal, a compaction is due */
        size_t journal_bytes;       /* its size */
        size_t journal_lines;       /* entries in it */
        uint64_t compactions;       /* how many ran (for tests and debug logs) */
} SnapshotWriter;

typedef struct Counters {
        uint64_t sets_received;
        uint64_t sets_acknowledged;
        uint64_t sets_rejected;
        uint64_t sets_duplicate;
        uint64_t subjects_unmapped;
        uint64_t actions_logout;
        uint64_t actions_workflow;
        uint64_t actions_failed;
        uint64_t polls;
        uint64_t poll_errors;
        uint64_t pam_queries;       /* updated atomically: the PAM path takes no lock */
} Counters;

/* What the poll thread knows of the stream (strings owned, guarded by lock). */
typedef struct StreamFacts {
        char *stream_id;
        char *issuer;
        char *status;        /* "enabled", "paused", "disabled", "unknown", "error" */
        char *endpoint_url;
        char *audience;
        char *delivery;
        char *config_json;   /* the stream configuration object as the transmitter returned it */
        char *events_delivered_json;
        char *verification_endpoint;
        char *last_error;
        uint64_t last_poll;  /* epoch seconds */
        uint64_t last_ok;
        /* verification (ssfctl verify) */
        char *verify_state;  /* state we asked for, until it arrives */
        bool verify_received;
        char *verify_result;
        uint64_t verify_requested; /* when the last verification was asked for */
        char recent_states[4][33]; /* earlier states we asked for: late arrivals are fine */
        uint64_t last_verified;    /* when the last requested verification event arrived */
        bool verify_warned;
        /* stream administration (ssfctl stream pause|resume|disable|delete|create, subjects
         * add|remove): each request to the worker has an id; the last outcomes are kept here
         * until the waiting ssfctl client takes them */
        uint64_t admin_last_id;
        struct {
                uint64_t id;
                char op[16];          /* "status", "delete", "create", "add-subject" … */
                bool done;
                int status;           /* 0 or -errno */
                char message[512];    /* what the transmitter answered (bounded), or why not */
        } admin[8];                   /* request id % 8 */
        bool deleted;        /* `ssfctl stream delete` succeeded: the worker stays idle until
                              * `ssfctl stream create` or a daemon restart */
} StreamFacts;

/* One transmitter ([transmitter NAME]): what its network worker reported of its stream, and
 * its own counters (sets_*, polls, poll_errors). Root knows which transmitter a message is
 * about by the worker's channel it arrived on, never from what the worker says. */
typedef struct TransmitterState {
        char name[TRANSMITTER_NAME_MAX + 1];
        StreamFacts stream;
        Counters counters;
} TransmitterState;

/* An immediate logout or lock (a rule without warn) that the commit in progress enqueued.
 * The engine hands it to the logind lane before the commit's sync, so that logind is asked
 * while the disk syncs; the lane records its result only once the commit is durable, and
 * forgets it when the commit fails (the SET then stays unacknowledged and comes again: a
 * repeated logout finds nothing to end). See actions.h. */
#define EARLY_ACTIONS_MAX 64u

typedef enum EarlyOutcome {
        EARLY_COMMITTING,    /* its commit has not finished */
        EARLY_COMMITTED,     /* its commit is durable: the action's row exists */
        EARLY_ABORTED,       /* its commit failed: there is no such action */
} EarlyOutcome;

typedef struct EarlyAction {
        int64_t id;          /* the action's row, in the transaction being committed */
        uid_t uid;
        bool lock;           /* LockSession rather than TerminateSession */
        SessionScope scope;
        /* Guarded by lane_lock: */
        EarlyOutcome outcome;
        bool ran;            /* the lane asked logind; r and result say how it went */
        int r;
        int64_t duration_ms;
        char result[600];
} EarlyAction;

typedef struct State {
        pthread_mutex_t lock;
        pthread_cond_t action_cond;  /* the hook lane's wake-up, with lock */

        /* The logind lane's wake-up. It has a lock of its own, taken after lock and never
         * before it, held for nothing slow: the engine hands it immediate actions while lock is
         * held for the commit's sync. */
        pthread_mutex_t lane_lock;
        pthread_cond_t lane_cond;
        uint64_t lane_kick;          /* guarded by lane_lock: the logind lane loads what is
                                      * pending when it changed */
        EarlyAction early[EARLY_ACTIONS_MAX]; /* guarded by lane_lock, in commit order */
        size_t n_early;

        /* Short locks of their own, never held across anything slow, so that the PAM path,
         * which takes only these, never waits for a commit (which holds lock). */
        pthread_mutex_t config_lock;
        pthread_mutex_t levels_lock;
        int nice;                   /* the daemon's own nice value, as started */
        ConfigHandle *config;       /* current; guarded by config_lock */
        LevelTable levels;          /* changed with snap.lock and levels_lock held; read
                                     * under either */
        /* The detection names level entries point to, each once (there are few: root's own
         * event table and the configuration name them). Added to under lock, never changed or
         * freed before state_done(), so a lookup may read them under levels_lock alone. */
        char **detection_names;
        size_t n_detection_names;
        SnapshotWriter snap;
        Store *store;               /* guarded by lock */
        Counters counters;          /* guarded by lock; the SET counters summed over transmitters */
        TransmitterState *transmitters; /* guarded by lock; one per configured transmitter, in
                                         * configuration order */
        size_t n_transmitters;
        uint64_t started;

        int wake_fd;                /* eventfd: other threads wake the main loop */
        int cancel_fd;              /* eventfd: readable once stopping (ends a running hook) */
        volatile int stopping;      /* set once on SIGTERM */
        uint64_t actions_kick;      /* guarded by lock; bumped by each kick: every lane of the
                                     * actions (actions.h) loads what is pending when it changed */
} State;

/* Sets up st around config (owned, also on failure); the caller opens st->store. Returns 0 or
 * -errno. */
int state_init(State *st, Config *config);
/* Frees what st owns (the store too); st itself is the caller's. */
void state_done(State *st);

/* Takes a reference on the current config (thread-safe); release with state_config_unref. */
ConfigHandle *state_config_ref(State *st);
void state_config_unref(State *st, ConfigHandle *h);
/* Makes c (owned, also on failure) the current config. The previous one lives on while
 * references to it remain. Returns 0 or -ENOMEM. */
int state_config_replace(State *st, Config *c);

/* Makes st->transmitters follow c's transmitters: keeps the state of those still configured,
 * adds the new ones (status "starting"), drops the others. Call with lock held. Returns 0 or
 * -ENOMEM. */
int state_transmitters_sync_locked(State *st, const Config *c);
/* The state of transmitter name, or NULL (call with lock held; valid until the next sync). */
TransmitterState *state_transmitter(State *st, const char *name);
/* The transmitter single-transmitter views describe: "default", else the only one; NULL when
 * there are several and none is named "default". */
TransmitterState *state_transmitter_main(State *st);

/* Publishes what PAM is answered from in full: the in-memory level table and the snapshot
 * (a new base file and an empty journal), both from the store. For start-up, a configuration
 * reload and expiry; its cost grows with the accounts at risk. Call with lock held. */
int state_publish_levels_locked(State *st, const Config *c);
/* Publishes the levels of the n accounts uids after a commit that changed them: the level
 * table at once, then one line each appended to the snapshot's journal (written, not synced:
 * what PAM falls back to when the daemon dies is current before the commit is acknowledged;
 * after a host crash the daemon rebuilds both from the store at start). Its cost does not grow
 * with the accounts at risk; the journal is compacted off this path. Call with lock held,
 * after the commit. Returns 0 or -errno (logged; the store stays the truth). */
int state_levels_changed_locked(State *st, const Config *c, const uid_t *uids, size_t n);

/* uid's level at now (none when absent or lapsed), the detection PAM names (into
 * detection, size bytes; may be NULL) and the CAEP reason_user of the SET that set it (into
 * reason_user, reason_size bytes, "" when none; may be NULL). Returns 0, or -EAGAIN before
 * the store was read once. Takes only levels_lock. */
int state_levels_lookup(State *st, uid_t uid, uint64_t now, RiskLevel *ret_level,
                        char *detection, size_t size, char *reason_user, size_t reason_size);
/* How many times the snapshot writer compacted the journal into a new base file. */
uint64_t state_snapshot_compactions(State *st);
/* After a commit: wakes the lanes of the actions (actions.h) it enqueued, logind's (logout,
 * lock) and the hooks' (workflow). Call with lock held. */
void state_kick_actions_locked(State *st, bool logind, bool hooks);
/* Sets stopping and wakes every lane of the actions. Call with lock held. */
void state_stop_actions_locked(State *st);
/* Hands the n immediate actions of the commit about to be made to the logind lane (with lock
 * held, before the commit); as many as it has room for. Returns how many it took: those are
 * the ones state_early_settle_locked() settles. */
size_t state_early_hand_locked(State *st, const EarlyAction *a, size_t n);
/* After that commit: the actions handed are durable (committed) or never were (with lock
 * held). */
void state_early_settle_locked(State *st, bool committed);
/* Wakes the main loop (thread-safe), e.g. so it answers a waiting `ssfctl verify`. */
void state_wake(State *st);

/* CPU priorities of the daemon's threads, as nice values above the one the daemon was started
 * with (Linux: nice and scheduling policy are per thread). Only the PAM front thread runs at
 * the daemon's own priority; the rest is background work for the scheduler (SCHED_BATCH: it
 * does not preempt on wake-up), so that a login's query does not wait for a CPU behind it. */
#define PRIO_MAIN_NICE 5         /* main loop: commits, ssfctl, supervision; so the worker */
#define PRIO_HOOK_NICE 5         /* the hook lanes, so the hooks they run */
#define PRIO_ADMIN_NICE 10       /* streamed admin queries (history), snapshot compaction */
/* The calling thread (and what it later creates or forks) at the daemon's priority plus
 * nice_delta, SCHED_BATCH. Best effort: a failure leaves the priority as it was. */
void state_thread_background(const State *st, int nice_delta);
/* The calling thread at the daemon's own priority, SCHED_OTHER, with a short time slice (Linux
 * 6.12+; ignored before): woken by a login, it gets the CPU ahead of longer-running work of
 * the same priority without a larger share of it. */
void state_thread_front(const State *st);

uint64_t now_sec(void);
/* RFC 3339 UTC ("2026-11-28T15:00:00Z") into buf (at least 32 bytes); "" for 0. */
const char *format_rfc3339(uint64_t t, char *buf, size_t size);
