/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the network worker hands the root daemon for one verified SET: the facts, and no
 * conclusions. The worker verified the signature and the claims; root derives the rest itself —
 * the detection, its level and what it clears from its own event table (daemon/risk.c), the
 * local users through NSS (daemon/subject.c, daemon/users.c) — and checks every fact against its
 * own bounds and clock (daemon/engine.c). The daemon never parses a SET; it parses only this
 * record, strictly (ingest_from_json). Linked by both processes; the worker fills the record in
 * receiver/ingest-prepare.c.
 */

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "level.h"

#define SET_MAX_PAYLOAD (48u * 1024u)
#define SET_MAX_JTI 256u

#define INGEST_MAX_STRING 4096u
#define INGEST_MAX_CLAIMS SET_MAX_PAYLOAD
#define INGEST_MAX_EVENT (16u * 1024u)   /* the event's members, as compact JSON */
#define INGEST_MAX_SUBJECT (4u * 1024u)  /* the subject identifier, as compact JSON */
#define INGEST_MAX_DEPTH 32u             /* levels of objects and arrays in each of the two */
#define INGEST_MAX_CRITICAL 32u          /* critical_subject_members names */
#define INGEST_MAX_CRITICAL_NAME 64u

/* IANA "Security Event Token Error Codes" (RFC 8935 §7.1), for poll setErrs / push replies. */
typedef struct SetError {
        const char *err;       /* "invalid_request", "invalid_key", "invalid_issuer",
                                  "invalid_audience", "authentication_failed",
                                  "access_denied", "invalid_state" (static strings) */
        char description[256]; /* human-readable; never contains the token */
} SetError;

typedef enum IngestKind {
        INGEST_SUBJECT,      /* a risk signal about users */
        INGEST_VERIFICATION, /* SSF verification event */
        INGEST_STREAM_UPDATED,
} IngestKind;

typedef struct IngestRequest {
        IngestKind kind;
        char *jti, *iss, *txn, *event_uri; /* event_uri: canonical (set.c maps legacy URIs) */
        uint64_t iat, event_time;
        /* INGEST_SUBJECT: what root derives the detection and the users from */
        json_t *event;         /* the event's members (an object; owned reference) */
        json_t *subject;       /* the subject identifier (an object), or NULL (owned) */
        char **critical;       /* the transmitter's critical_subject_members, or NULL */
        /* INGEST_VERIFICATION / INGEST_STREAM_UPDATED */
        char *stream_id;       /* the opaque sub_id's id, or NULL */
        char *state;           /* verification state, or NULL */
        char *status, *reason; /* stream-updated */
        char *claims_json;     /* the SET's claims (compact JSON text), for hooks */
        /* Root only, never serialised: the transmitter whose worker's channel the record
         * arrived on (borrowed). */
        const char *transmitter;
} IngestRequest;

/* Serialisation for the worker channel. ingest_from_json validates every member and returns
 * -EBADMSG for anything malformed (a wrong type, a missing member, an unknown kind: a protocol
 * violation), or -E2BIG for members past their bounds (the SET is refused as invalid_request). */
json_t *ingest_to_json(const IngestRequest *r);
int ingest_from_json(json_t *j, IngestRequest *ret);
/* The binary record of an ingest-batch frame (link.h), as root reads it: the worker writes it
 * with ingest_record_put() at buf (size bytes there), *ret_len its length: 0, -ENOSPC when it
 * does not fit, -E2BIG when the event or subject nest deeper than root takes (ingest_check()
 * refuses those first), -ENOMEM. Its layout, in host byte order (both ends are the same program on the
 * same host): kind (1 byte), iat and event_time (8 bytes each), then jti, iss, txn, event_uri,
 * stream_id, state, status, reason, claims, event and subject, each a 4-byte length
 * (UINT32_MAX: absent) and as many bytes, then the number of critical names (4 bytes) and
 * each as a string. The event and the subject are JSON values, tagged (ingest.c): a byte for
 * the type, then an object's or array's 4-byte count and members (a key as a string), a
 * string's length and bytes, an integer's or a real's 8 bytes; root builds them without a
 * JSON parser.
 * ingest_record_take() reads one at *p (*left bytes remain) and moves past it, and checks it
 * as ingest_from_json() checks a JSON record: -EBADMSG for a malformed one (cut short, a
 * string with a NUL or not UTF-8, a key twice in an object, a wrong member…), -E2BIG for one
 * past root's bounds (its bytes are used all the same, so the next record follows). */
int ingest_record_put(const IngestRequest *r, char *buf, size_t size, size_t *ret_len);
int ingest_record_take(const char **p, size_t *left, IngestRequest *ret);
/* The description of the invalid_request a SET gets when its record is past root's bounds
 * (-E2BIG), in the worker's check and in root's readers alike. */
#define INGEST_PAST_BOUNDS "the event or its subject is too large or nested too deep"
/* Whether root takes r as it is, in either form: what the two readers check of a record, on
 * the request the worker is about to write (no serialising). 0, or what they would return:
 * -EBADMSG or -E2BIG. */
int ingest_check(const IngestRequest *r);


void ingest_request_done(IngestRequest *r);

/* Whether s has no control characters (C0 or DEL): what root records must not. */
bool ingest_printable(const char *s);
