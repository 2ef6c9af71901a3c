/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The Manager owns the daemon's state and its three threads:
 *
 *   main thread   sd-event loop: the IPC socket (PAM and ssfctl), signals (SIGTERM, SIGINT,
 *                 SIGHUP), the expiry timer, the watchdog, wake-ups from the other threads.
 *   (worker)      a separate, unprivileged process talks to the transmitter (discovery,
 *                 JWKS, stream, RFC 8936 poll), verifies SETs, and hands what it extracted
 *                 to the main loop over a channel (broker.c, worker.c, poller.c); the main
 *                 loop commits it (engine_apply) before the worker acknowledges it.
 *   action thread runs the durable pending actions (logout through logind, workflow hooks)
 *                 that engine_apply() enqueued (actions.c).
 *
 * The store, the counters and the stream facts are guarded by Manager.lock; the config is an
 * immutable, reference-counted ConfigHandle swapped on reload.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "config.h"
#include "store.h"

typedef struct ConfigHandle {
        Config *config;
        unsigned n_ref; /* guarded by Manager.lock */
} ConfigHandle;

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
        uint64_t pam_queries;
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
} StreamFacts;

typedef struct Manager Manager;

typedef struct IpcServer IpcServer;
typedef struct Broker Broker;

struct Manager {
        pthread_mutex_t lock;
        pthread_cond_t action_cond;

        char *config_path;
        ConfigHandle *config;       /* current; guarded by lock */
        Store *store;               /* guarded by lock */
        Counters counters;          /* guarded by lock */
        StreamFacts stream;         /* guarded by lock */
        uint64_t started;

        sd_event *event;
        IpcServer *ipc;
        int wake_fd;                /* eventfd: other threads wake the main loop */
        int cancel_fd;              /* eventfd: readable once stopping (ends a running hook) */
        sd_event_source *wake_source;

        Broker *broker;             /* the unprivileged network worker (broker.c) */
        bool foreground;

        pthread_t action_thread;
        bool action_thread_started;
        bool threads_alive;         /* a thread did not stop in time: never free */
        volatile int stopping;      /* set once on SIGTERM */
        bool actions_kick;          /* guarded by lock */
};

int manager_new(const char *config_path, Config *config, Manager **ret);
Manager *manager_free(Manager *m);
/* Runs until SIGTERM/SIGINT. Returns 0 or -errno. */
int manager_run(Manager *m);

/* Takes a reference on the current config (thread-safe); release with manager_config_unref. */
ConfigHandle *manager_config_ref(Manager *m);
void manager_config_unref(Manager *m, ConfigHandle *h);

/* Rewrites the PAM snapshot from the store. Call with lock held. */
int manager_write_snapshot_locked(Manager *m, const Config *c);
/* Asks the transmitter (through the worker) for a verification event with a new random state,
 * written to state. -ENOENT when no stream is known yet. */
int manager_request_verification(Manager *m, char state[static 33]);

/* Wakes the action thread (call with lock held). */
void manager_kick_actions_locked(Manager *m);
/* Wakes the main loop (thread-safe), e.g. so it answers a waiting `ssfctl verify`. */
void manager_wake(Manager *m);

uint64_t now_sec(void);
/* RFC 3339 UTC ("2026-11-28T15:00:00Z") into buf (at least 32 bytes); "" for 0. */
const char *format_rfc3339(uint64_t t, char *buf, size_t size);
