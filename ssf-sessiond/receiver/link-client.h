/* SPDX-License-Identifier: MIT */
#pragma once

/* The network worker's end of the channel to root (the messages are listed in link.h): the
 * requests it makes (blocking, bounded), the notifications it sends, and what root asked of it
 * (verify, stop). Runs in the unprivileged network worker. */

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "http.h"
#include "ingest.h"
#include "link.h"

/* ---- the worker's side --------------------------------------------------------------------- */

typedef struct Link Link; /* also forward-declared in stream.h */

/* Takes fd (the channel) and config (owned). Starts the reader thread. */
int link_new(int fd, Config *config, Link **ret);
Link *link_free(Link *l);
const Config *link_config(Link *l);

/* Requests answered by the daemon (blocking, bounded). */
int link_ingest(Link *l, const IngestRequest *req, SetError *err);
/* Hands over the records in requests (a JSON array of ingest_to_json() objects, 1 to
 * LINK_BATCH_MAX, at most LINK_MAX_FRAME bytes in all), which root commits in one transaction.
 * Returns 0 with ret[i] and errs[i] as link_ingest() would have said for each, or -errno when
 * none is known to be applied. */
int link_ingest_batch(Link *l, json_t *requests, SetError *errs, int *ret);
int link_kv_get(Link *l, const char *key, char **ret);
int link_kv_set(Link *l, const char *key, const char *value);

/* Notifications. stream may be NULL; counters is a JSON object of increments. */
void link_facts(Link *l, json_t *stream, json_t *counters);
void link_verify_result(Link *l, const char *state, const char *result);

/* The verification state the daemon asked for (new string), or NULL. */
char *link_take_verify(Link *l);
/* The HTTP client a stop or verify request should interrupt (may be NULL). */
void link_set_http(Link *l, HttpClient *http);
bool link_stopping(Link *l);
/* Sleeps up to usec or until stop; returns true when stopping. */
bool link_wait_stop(Link *l, uint64_t usec);
