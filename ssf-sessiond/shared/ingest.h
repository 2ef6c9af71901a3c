/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the network worker hands the privileged daemon for one verified SET: the facts the
 * engine needs, already extracted from the network bytes (the worker classified the event and
 * mapped the subject). The daemon never parses a SET; it parses only this record, which it
 * receives from the unprivileged worker and validates strictly (ingest_from_json). Both
 * processes link this; the worker fills the record in receiver/ingest-prepare.c.
 */

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "level.h"

#define SET_MAX_PAYLOAD (48u * 1024u)
#define SET_MAX_JTI 256u

#define INGEST_MAX_USERS 65536u
#define INGEST_MAX_STRING 4096u
#define INGEST_MAX_CLAIMS SET_MAX_PAYLOAD

/* IANA "Security Event Token Error Codes" (RFC 8935 §7.1), for poll setErrs / push replies. */
typedef struct SetError {
        const char *err;       /* "invalid_request", "invalid_key", "invalid_issuer",
                                  "invalid_audience", "authentication_failed",
                                  "access_denied", "invalid_state" (static strings) */
        char description[256]; /* human-readable; never contains the token */
} SetError;

typedef enum DetectionEffect {
        DETECTION_RAISE,  /* set (user, detection) to level */
        DETECTION_CLEAR,  /* the event reports good standing: delete (user, clears) */
        DETECTION_RECORD, /* level none: history only (session-established, opt-in, …) */
        DETECTION_IGNORE, /* not a subject event we act on (unknown URI; ack and log) */
} DetectionEffect;

typedef struct Detection {
        char name[64];        /* short name, e.g. "device-compliance-change" */
        DetectionEffect effect;
        RiskLevel level;      /* for RAISE */
        bool carries_level;   /* risk-level-change, user-risk-change, device-risk-change:
                                 replaces the stored level up or down. Okta's "secure" and
                                 "none" give effect RAISE with level RISK_NONE: the stored
                                 level of this detection becomes none (the caller may delete
                                 the detection). [detections] overrides do not apply to these
                                 events: the carried level is the point of them. */
        char clears[64];      /* for CLEAR: the detection it opposes */
        char reason[256];     /* reason_admin (en or first), risk_reason, or "" */
} Detection;

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

/* Serialisation for the worker channel. ingest_from_json validates every member (types,
 * lengths, enums, user names) and returns -EBADMSG for anything unexpected. */
json_t *ingest_to_json(const IngestRequest *r);
int ingest_from_json(json_t *j, IngestRequest *ret);

void ingest_request_done(IngestRequest *r);

/* Whether s has no control characters (C0 or DEL): what root records must not. */
bool ingest_printable(const char *s);
