/* SPDX-License-Identifier: MIT */
#pragma once

/* RFC 8936 poll delivery, in the unprivileged network worker: sets the stream up (stream.c),
 * long-polls, verifies each SET (set.c), classifies it and maps its subject
 * (ingest-prepare.c), has the daemon commit it over the link, reports invalid ones in setErrs,
 * acknowledges what was committed, and flushes pending acknowledgements when asked to stop. */

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "http.h"
#include "link-client.h"
#include "oauth2.h"

/* Runs until the link says stop, with http (made before the privilege drop; freed on return).
 * authorization: the Authorization header value, or NULL; oauth2 (auth = oauth2, else NULL):
 * where access tokens come from instead. */
int poller_run(Link *link, HttpClient *http, const char *authorization, OAuth2Client *oauth2);

/* ---- the poll response, parsed without I/O (tests/fuzz/fuzz-poll-response.c) -------------- */

#define POLLER_RESPONSE_MAX (8u * 1024u * 1024u)

typedef struct PollResponse {
        json_t *root; /* the response object (owned) */
        json_t *sets; /* its "sets" member: jti -> SET (borrowed from root) */
        bool more;    /* "moreAvailable" is true (any other value: false) */
} PollResponse;

/* An RFC 8936 §2.3 poll response: a JSON object of at most POLLER_RESPONSE_MAX bytes without
 * duplicate member names, whose "sets" member is an object. 0 and *ret filled, or -EBADMSG
 * (-EFBIG when too large) and *ret untouched. */
int poller_parse_response(const char *body, size_t len, PollResponse *ret);
/* The same by json_loadb() alone: what poller_parse_response() must answer on every input (it
 * reads the common shape itself, see poller.c). */
int poller_parse_response_general(const char *body, size_t len, PollResponse *ret);
void poll_response_done(PollResponse *r);
/* One member of "sets": 0 when jti (1..SET_MAX_JTI bytes, no control characters) names a JSON
 * string of at most JWS_MAX_SIZE bytes, the SET to verify; else -EBADMSG and *ret_why says why,
 * for setErrs (invalid_request). */
int poller_check_entry(const char *jti, json_t *value, const char **ret_why);
