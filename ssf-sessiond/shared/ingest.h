/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the network worker hands the privileged daemon for one verified SET: the facts the
 * engine needs, already extracted from the network bytes (the worker classified the event and
 * mapped the subject). The daemon never parses a SET; it parses only this record, which it
 * receives from the unprivileged worker and validates strictly (ingest_from_json).
 */

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "risk.h"
#include "set.h"

#define INGEST_MAX_USERS 65536u
#define INGEST_MAX_STRING 4096u
#define INGEST_MAX_CLAIMS SET_MAX_PAYLOAD

typedef enum IngestKind {
        INGEST_SUBJECT,      /* a risk signal about users */
        INGEST_VERIFICATION, /* SSF verification event */
        INGEST_STREAM_UPDATED,
} IngestKind;

typedef struct IngestRequest {
        IngestKind kind;
        char *jti, *iss, *txn, *event_uri;
        uint64_t iat, event_time;
        /* INGEST_SUBJECT */
        Detection detection;
        char **users;          /* local users the subject maps to (may be empty) */
        bool host_wide;
        char *subject_desc;    /* "email alice@example.com" */
        /* INGEST_VERIFICATION / INGEST_STREAM_UPDATED */
        char *stream_id;       /* the opaque sub_id's id, or NULL */
        char *state;           /* verification state, or NULL */
        char *status, *reason; /* stream-updated */
        char *claims_json;     /* the SET's claims (compact JSON text), for hooks */
} IngestRequest;

/* Worker side: classifies set and maps its subject per c. critical is the transmitter's
 * critical_subject_members (NULL: none): a subject with a critical member this receiver does
 * not interpret is discarded (SSF §3.6) -- a subject record with no users whose subject_desc
 * says why, so the SET is acknowledged and recorded but applies to nobody. Returns 0, or a
 * negative errno with *err filled when the SET is at fault (invalid_request), or without it
 * for a local failure (then the SET is neither acknowledged nor reported). */
int ingest_prepare(const Config *c, char *const *critical, const SsfSet *set, IngestRequest *ret,
                   SetError *err);

/* Serialisation for the worker channel. ingest_from_json validates every member (types,
 * lengths, enums, user names) and returns -EBADMSG for anything unexpected. */
json_t *ingest_to_json(const IngestRequest *r);
int ingest_from_json(json_t *j, IngestRequest *ret);

void ingest_request_done(IngestRequest *r);
