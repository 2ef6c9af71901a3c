/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's side of the local IPC socket (common/ssf-ipc.h): answers pam_ssf.so and
 * ssfctl on the main loop. The listening socket comes from socket activation when there is
 * one, else it is created at the configured path (mode 0666: non-root callers may ask about
 * themselves; SO_PEERCRED decides what each caller may do). Runs in the root daemon. */

#include <systemd/sd-event.h>

#include "broker.h"
#include "state.h"

typedef struct IpcServer IpcServer;

#define IPC_MAX_CLIENTS 128u
#define IPC_CLIENT_TIMEOUT_USEC (5u * 1000000u)

/* Serves st on event; `ssfctl verify` goes to broker. Returns 0 or -errno. */
int ipc_server_new(State *st, sd_event *event, Broker *broker, const char *path,
                   IpcServer **ret);
IpcServer *ipc_server_free(IpcServer *s);
/* Answers clients waiting on something another thread finished (ssfctl verify). */
void ipc_server_dispatch_waiting(IpcServer *s);
