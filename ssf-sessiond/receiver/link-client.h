/* SPDX-License-Identifier: MIT */
#pragma once

/* The network worker's end of the channel to root (the messages are listed in link.h): the
 * requests it makes (blocking, bounded), the notifications it sends, and what root asked of it
 * (verify, admin, stop). Runs in the unprivileged network worker. */

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "http.h"
#include "ingest.h"
#include "link.h"

/* ---- the worker's side --------------------------------------------------------------------- */

typedef struct Link Link; /* also forward-declared in stream.h */

/* Takes fd (the channel) and config (owned); transmitter (in config) is the one this worker
 * serves, NULL: config_transmitter_main(). Starts the reader thread. -EINVAL when there is no
 * such transmitter. */
int link_new(int fd, Config *config, const TransmitterConfig *transmitter, Link **ret);
Link *link_free(Link *l);
const Config *link_config(Link *l);
const TransmitterConfig *link_transmitter(Link *l);

/* Requests answered by the daemon (blocking, bounded). */
int link_ingest(Link *l, const IngestRequest *req, SetError *err);
/* Hands over n records (1 to LINK_BATCH_MAX binary records, ingest_record_put(), back to back
 * in records, len bytes: the frame's attachment, link.h), which root commits in one
 * transaction, and returns at once: the worker verifies the next SETs while root commits these.
 * At most LINK_BATCH_AHEAD batches are outstanding (-EBUSY otherwise); -EMSGSIZE when the frame
 * would pass LINK_MAX_FRAME. */
int link_ingest_batch_send(Link *l, const char *records, size_t len, size_t n);
/* Waits for root's answer to the oldest batch outstanding (other requests may be made in
 * between; n is that batch's number of records). Returns 0
 * with ret[i] and errs[i] as link_ingest() would have said for each of its n records, or -errno
 * when none is known to be applied. A batch sent is always waited for: until root answered,
 * none of its SETs is known to be committed. errs or ret NULL (no memory for them): the answer
 * is taken and -ENOMEM returned. */
int link_ingest_batch_wait(Link *l, size_t n, SetError *errs, int *ret);
int link_kv_get(Link *l, const char *key, char **ret);
int link_kv_set(Link *l, const char *key, const char *value);

/* Notifications. stream may be NULL; counters is a JSON object of increments. */
void link_facts(Link *l, json_t *stream, json_t *counters);
void link_verify_result(Link *l, const char *state, const char *result);

/* subjects = local: the subjects of this host's users, as root computes them, and those it
 * handed out before that are no longer local (new arrays). */
int link_local_subjects(Link *l, json_t **ret, json_t **ret_removed);
/* Stream administration (link.h "admin"): the oldest request root sent and the worker has not
 * taken (a new reference), or NULL; and its outcome (status 0 or -errno, message: what the
 * transmitter answered or why nothing was done; stream_status: the status the transmitter now
 * reports, or NULL). At most LINK_ADMIN_MAX wait; more are dropped. */
#define LINK_ADMIN_MAX 16u
#define LINK_ADMIN_SUBJECTS_MAX 64u /* subjects in one add-subject or remove-subject */
json_t *link_take_admin(Link *l);
void link_admin_result(Link *l, json_int_t id, int status, const char *message,
                       const char *stream_status);

/* The verification state the daemon asked for (new string), or NULL. */
char *link_take_verify(Link *l);
/* The HTTP client a stop or verify request should interrupt (may be NULL). */
void link_set_http(Link *l, HttpClient *http);
/* The HTTP client of the poll sent ahead (its own thread): a stop aborts it as well, so that
 * whoever waits for its answer learns of the stop without looking. Unset it (NULL) before
 * freeing the client. */
void link_set_http_ahead(Link *l, HttpClient *http);
bool link_stopping(Link *l);
/* Stops as root's "stop" does (a worker serving several transmitters stops them all when one
 * stops: a signal reaches one channel's reader only). */
void link_stop(Link *l);
/* Sleeps up to usec or until stop; returns true when stopping. */
bool link_wait_stop(Link *l, uint64_t usec);
