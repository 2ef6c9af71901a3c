/* SPDX-License-Identifier: MIT */
#pragma once

/* The daemon's side of privilege separation: starts the unprivileged network worker
 * (worker.h) with a channel (link.h), answers its requests on the main loop — applying each
 * IngestRequest through the engine, reading and writing the few facts the worker may keep
 * (the stream id) — and restarts it with a backoff when it dies, or on reload: the
 * supervision of the worker. Runs in the root daemon. */

#include <jansson.h>

#include <stdbool.h>

#include <systemd/sd-event.h>

#include "state.h"

typedef struct Broker Broker;

/* Sets up supervision on event; config_path (borrowed) is passed to the worker. Starts nothing.
 * Returns 0 or -ENOMEM. */
int broker_new(State *st, sd_event *event, const char *config_path, bool foreground,
               Broker **ret);
/* Starts one worker per configured transmitter (a worker that cannot start is retried with
 * its backoff). Returns 0 or -errno. */
int broker_start(Broker *b);
/* Asks the worker to stop (it flushes its acknowledgements) and waits at most timeout_usec
 * before killing it. */
void broker_stop(Broker *b, uint64_t timeout_usec);
/* Stops and starts the workers again (configuration reloaded): transmitters no longer
 * configured lose theirs, new ones get one. */
int broker_restart(Broker *b);
/* Asks transmitter (through its worker) for a verification event with a new random state,
 * written to state (`ssfctl verify`). -ESRCH when no transmitter has that name, -ENOENT when
 * no stream is known yet, -ENOTCONN when its worker does not run. */
int broker_request_verification(Broker *b, const char *transmitter, char state[static 33]);
/* Stream administration (`ssfctl stream pause|resume|disable|delete|create`, `ssfctl subjects
 * add|remove`): sends request (an object with "op": "status", "delete", "create",
 * "add-subject" or "remove-subject", and its members) to the worker under a new id, which is
 * returned; transmitter's worker answers with an "admin-result" (link.h). "create" also ends
 * the idle state a delete left. -ESRCH when no transmitter has that name, -ENOTCONN when its
 * worker does not run. */
int broker_admin(Broker *b, const char *transmitter, json_t *request, uint64_t *ret_id);
/* The outcome of request id once the worker answered: 0 with its status (0 or -errno) and
 * message; -EAGAIN while it has not; -ESTALE when the slot was reused (too many requests since). */
int broker_admin_result(State *st, const char *transmitter, uint64_t id, int *ret_status,
                        char *message, size_t size);
/* Stops what runs (killing it) and frees b. Returns NULL. */
Broker *broker_free(Broker *b);

/* Handles one message from the network worker, as link_parse() accepted it (an object with a
 * string "type"; link.h lists the messages): applies an ingest request through the engine,
 * reads or writes one of the facts the worker may keep, takes stream facts, counters and a
 * verification result — all about transmitter, the one whose worker's channel msg arrived on
 * (root's knowledge, never the worker's word). Returns 0 with *ret_reply the reply to send
 * (new reference) or NULL when none is due, -EPROTO for a protocol violation (an unknown
 * type, a request without an integer id, a malformed message: the caller kills the worker),
 * or -ENOMEM. A compromised
 * worker controls msg entirely (tests/fuzz/fuzz-broker.c). */
int broker_handle_message(State *st, const char *transmitter, json_t *msg, json_t **ret_reply);
/* n_msgs (1 to LINK_BATCH_AHEAD) ingest-batch frames read one after the other, committed in one
 * transaction: replies[i] is frame i's answer (as broker_handle_message() would make it for that
 * frame alone). -EPROTO for a malformed frame (nothing applied), -ENOMEM. */
int broker_ingest_batches(State *st, const char *transmitter, json_t *const *msgs, size_t n_msgs,
                          json_t **replies);
