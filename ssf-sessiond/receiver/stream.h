/* SPDX-License-Identifier: MIT */
#pragma once

/* The SSF side of the receiver: transmitter discovery (SSF §7.2), its JWKS, and the stream
 * (SSF §8.1: create, reuse or update a poll or push stream, read it, request verification).
 * Used by the network worker only. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "http.h"
#include "jwks.h"

#define SSF_DELIVERY_POLL "urn:ietf:rfc:8936"
#define SSF_DELIVERY_PUSH "urn:ietf:rfc:8935"

typedef struct Transmitter {
        char *issuer;
        char *jwks_uri;
        char *configuration_endpoint;
        char *status_endpoint;
        char *verification_endpoint;
        char *add_subject_endpoint;    /* SSF §8.1.3.2, NULL when not published */
        char *remove_subject_endpoint; /* SSF §8.1.3.3 */
        json_t *metadata;
        char **critical_subject_members; /* SSF §7.1, NULL when absent or invalid */

        Jwks *jwks;
        uint64_t jwks_fetched_usec; /* CLOCK_MONOTONIC: the last successful fetch */
        uint64_t jwks_attempt_usec; /* CLOCK_MONOTONIC: the last fetch, successful or not */

        char *authorization;        /* "Bearer …" (secret) */

        char *stream_id;
        char *endpoint_url;         /* poll endpoint (used verbatim) or our push_url */
        char *audience;             /* the aud SETs must carry */
        json_t *stream;             /* stream configuration as returned */
        uint64_t min_verification_interval;
        uint64_t inactivity_timeout_usec; /* SSF §8.1.1 inactivity_timeout, 0 when absent */
} Transmitter;

void transmitter_done(Transmitter *t);
/* What verifying SETs needs of src, for another thread: copies of issuer, jwks_uri, audience
 * and critical_subject_members, the JWKS fetch times, and src's JWKS itself (taken: src->jwks
 * is NULL afterwards). 0, or -ENOMEM with src unchanged. */
int transmitter_take_verifier(Transmitter *src, Transmitter *ret);

/* Loads the Authorization header value from config (auth = bearer: token_file; none and
 * oauth2: NULL, see oauth2.h for the latter). */
int stream_load_authorization(const TransmitterConfig *c, char **ret);

/* Builds the discovery URL (issuer with "/.well-known/ssf-configuration" inserted between host
 * and path, trailing '/' removed), or returns config_url. */
int stream_discovery_url(const TransmitterConfig *c, char **ret);

/* ---- what the transmitter sends, parsed and validated without I/O (the HTTP functions below
 * use these; tests/fuzz/fuzz-stream.c feeds them arbitrary bytes) ---------------------------- */

/* Decodes a management response body (at most 256 KiB): a JSON object, or with want_array an
 * array; duplicate member names are refused. 0 with a new reference in *ret, or -EBADMSG. */
int stream_parse_json(const char *body, size_t len, bool want_array, json_t **ret);
/* Validates transmitter metadata (SSF §7.1) and takes it into t: an https "issuer", identical to
 * expected_issuer unless that is NULL (SSF §7.2.4, else -EPROTO); an https "jwks_uri"; optional
 * https configuration_endpoint, status_endpoint and verification_endpoint (null: absent);
 * critical_subject_members (absent, empty or invalid: NULL). Other members
 * (delivery_methods_supported …) are kept in t->metadata but not interpreted. -EBADMSG when
 * unusable; on any failure t is unchanged. */
int stream_parse_metadata(json_t *md, const char *expected_issuer, Transmitter *t);
/* Validates a stream configuration (SSF §8.1.1) against c and t->issuer and takes what we need
 * into t: a stream_id of 1..256 bytes (else -EBADMSG); iss equal to t->issuer; delivery as c
 * asks (poll: the RFC 8936 method URI or a legacy RISC/SSE one; push: the RFC 8935 one or a
 * legacy one, to c->push_url); an https delivery.endpoint_url; an aud (string or array) that,
 * when present, contains c->audience, or without c->audience whose (first) string is taken
 * (else -EPROTO). min_verification_interval and inactivity_timeout: positive integers up to a
 * year, else 0. events_delivered and other members are kept in t->stream, not interpreted. */
int stream_adopt(const TransmitterConfig *c, Transmitter *t, json_t *s);
/* The stream status object (SSF §8.1.2.1): "status" is "enabled", "paused" or "disabled" (else
 * -EBADMSG); "reason" is kept when it is a string of at most 256 bytes without line breaks or
 * tabs. New strings in *ret_status and *ret_reason (NULL when none). */
int stream_parse_status(json_t *o, char **ret_status, char **ret_reason);

/* ---- HTTP ---------------------------------------------------------------------------------- */

/* endpoint with "stream_id=<id>" added to its query, id percent-encoded (RFC 3986 §2.1:
 * stream ids SHOULD be unreserved characters, SSF §8.1.1, but need not be). */
int stream_id_url(const char *endpoint, const char *id, char **ret);

/* GET the metadata and validate it (stream_parse_metadata()). */
int stream_discover(HttpClient *http, const TransmitterConfig *c, Transmitter *t);
/* stream = none: t as the configuration says it (issuer, jwks_uri, audience, push_url as
 * the endpoint), without a stream API. Returns 0 or -ENOMEM/-EINVAL. */
int stream_static(const TransmitterConfig *c, Transmitter *t);
/* GET jwks_uri (not held back by a Retry-After, see http_get_unheld()) and replace t->jwks;
 * the attempt is noted in t->jwks_attempt_usec whatever its outcome. */
int stream_fetch_jwks(HttpClient *http, Transmitter *t);
/* Reuses the configured or remembered stream, or an existing stream with the configured
 * delivery, or creates one; validates iss/delivery/aud; remembers the stream id through the
 * daemon (link). delivery = poll: push_authorization is NULL. delivery = push: it is the
 * "Bearer …" value the transmitter must send (secret, never logged); a reused stream that
 * does not show push delivery to push_url with exactly this value is updated (PATCH), and
 * one that cannot be is replaced by a new stream (unless stream_id is configured). */
typedef struct Link Link;
int stream_ensure(HttpClient *http, Link *link, const TransmitterConfig *c, Transmitter *t,
                  const char *push_authorization);
/* POST verification_endpoint {stream_id, state}: 0, -EBUSY (429), -EACCES (401/403), -EPROTO. */
int stream_request_verification(HttpClient *http, const Transmitter *t, const char *state);
/* GET status_endpoint (SSF §8.1.2.1): "enabled", "paused" or "disabled" and the reason (may be
 * NULL) as new strings. -EOPNOTSUPP when the transmitter publishes no status endpoint. */
int stream_read_status(HttpClient *http, const Transmitter *t, char **ret_status,
                       char **ret_reason);
/* GET the stream's configuration (SSF §8.1.1.2): 0 when it is there, -ENOENT when the
 * transmitter no longer knows it, -EACCES when it refused our credentials, or another
 * failure. For a transmitter without a status endpoint. */
int stream_read_config(HttpClient *http, const Transmitter *t);

/* The events_requested array for the configured event names (events =; NULL: all): the URIs
 * of the detections they cover. NULL when out of memory. */
json_t *stream_events_requested(char *const *names);

/* ---- administration (`ssfctl stream pause|resume|disable|delete`, `ssfctl subjects`) -------
 * Each returns 0 or -errno with, in msg (size bytes), what happened for the admin to read:
 * on a refusal "the transmitter answered HTTP <status>: <body excerpt>" (at most
 * STREAM_ANSWER_EXCERPT bytes of the body, control characters replaced). Refusals: -EACCES
 * (401/403), -ENOENT (404), -EBUSY (429), -EOPNOTSUPP (405/501, or no such endpoint), -EPROTO. */
#define STREAM_ANSWER_EXCERPT 200u
/* "HTTP <status>: <body excerpt>" into buf. */
void stream_describe_answer(const HttpResponse *resp, char *buf, size_t size);
/* POST status_endpoint {stream_id, status, reason} (SSF §8.1.2.2): the receiver's status update
 * ("enabled", "paused", "disabled"). *ret_status: the status the transmitter answered (new
 * string), or NULL when it did not say (202/204). */
int stream_update_status(HttpClient *http, const Transmitter *t, const char *status,
                         const char *reason, char **ret_status, char *msg, size_t size);
/* DELETE configuration_endpoint?stream_id= (SSF §8.1.1.5). */
int stream_delete(HttpClient *http, const Transmitter *t, char *msg, size_t size);
/* POST add_subject_endpoint {stream_id, subject, verified} (add; verified < 0: not sent) or
 * remove_subject_endpoint {stream_id, subject} (SSF §8.1.3.2, §8.1.3.3). */
int stream_subject(HttpClient *http, const Transmitter *t, bool add, json_t *subject,
                   int verified, char *msg, size_t size);
