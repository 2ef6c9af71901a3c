/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The Manager owns the daemon's state and its threads:
 *
 *   main thread   sd-event loop: the IPC socket (PAM and ssfctl), signals (SIGTERM, SIGINT,
 *                 SIGHUP), the expiry timer, the watchdog, wake-ups from the other threads.
 *   (worker)      a separate, unprivileged process talks to the transmitter (discovery,
 *                 JWKS, stream, RFC 8936 poll), verifies SETs, and hands what it extracted
 *                 to the main loop over a channel (broker.c, worker.c, poller.c); the main
 *                 loop commits it (engine_apply) before the worker acknowledges it.
 *   actions       run the durable pending actions that engine_apply() enqueued, in two
 *                 lanes (actions.h): one thread for logouts through logind, a few for workflow
 *                 hooks, so that a logout never waits behind a hook.
 *
 * What the threads and parts share (config, store, counters, stream facts) is the State
 * (state.h), guarded by its lock; the config is an immutable, reference-counted ConfigHandle
 * swapped on reload. The Manager adds what only the main loop uses. Runs in the root daemon.
 */

#include <pthread.h>
#include <stdbool.h>

#include <systemd/sd-event.h>

#include "config.h"
#include "state.h"

typedef struct IpcServer IpcServer;
typedef struct Broker Broker;
typedef struct Actions Actions;

typedef struct Manager {
        State state;                /* shared with the engine, IPC server, broker, actions */

        char *config_path;
        sd_event *event;
        IpcServer *ipc;
        sd_event_source *wake_source;
        Broker *broker;             /* the unprivileged network worker (broker.c) */
        bool foreground;

        Actions *actions;           /* the logind and hook lanes (actions.h) */
        bool threads_alive;         /* a thread did not stop in time: never free */
} Manager;

/* Takes config (owned, also on failure). Returns 0 or -errno. */
int manager_new(const char *config_path, Config *config, Manager **ret);
Manager *manager_free(Manager *m);
/* Runs until SIGTERM/SIGINT. Returns 0 or -errno. */
int manager_run(Manager *m);
