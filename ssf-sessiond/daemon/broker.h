/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's side of privilege separation: starts the unprivileged network worker
 * (worker.h) with a channel (link.h), answers its requests on the main loop — applying each
 * IngestRequest through the engine, reading and writing the few facts the worker may keep
 * (the stream id) — and restarts it with a backoff when it dies, or on reload. */

#include <jansson.h>

#include "manager.h"

int broker_start(Manager *m);
/* Asks the worker to stop (it flushes its acknowledgements) and waits at most timeout_usec
 * before killing it. */
void broker_stop(Manager *m, uint64_t timeout_usec);
/* Stops and starts the worker again (configuration reloaded). */
int broker_restart(Manager *m);
/* Forwards `ssfctl verify` to the worker. */
int broker_request_verify(Manager *m, const char *state);
void broker_free(Manager *m);

/* Handles one message from the network worker, as link_parse() accepted it (an object with a
 * string "type"; link.h lists the messages): applies an ingest request through the engine,
 * reads or writes one of the facts the worker may keep, takes stream facts, counters and a
 * verification result. Returns the reply to send (new reference), or NULL when none is due (a
 * notification, a request without an integer id, or out of memory). A compromised worker
 * controls msg entirely (tests/fuzz/fuzz-broker.c). */
json_t *broker_handle_message(Manager *m, json_t *msg);
