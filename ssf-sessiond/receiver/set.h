/* SPDX-License-Identifier: MIT */
#pragma once

/* RFC 8417 Security Event Token claim validation under the SSF 1.0 profile. Pure: no I/O.
 * Runs in the network worker. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "events.h"
#include "ingest.h"
#include "jws.h"


/* What a SET must match. */
typedef struct SetExpect {
        const char *issuer;    /* exact match of "iss" */
        const char *audience;  /* must be in "aud" (string or array); NULL: aud not checked */
        uint64_t now_sec;
        uint64_t max_skew_sec; /* iat may be at most this far in the future */
} SetExpect;


/* A validated SET. Strings point into claims (borrowed, valid while the SsfSet lives). */
typedef struct SsfSet {
        json_t *claims;        /* whole payload (owned) */
        char *claims_text;     /* the payload's text when the claims are as it says (nothing
                                  rewritten, see normalise_subject()), else NULL (owned) */
        const char *jti, *iss, *txn;
        uint64_t iat;
        /* The single logical event: its URI (canonicalised: legacy URIs mapped to current
         * ones, e.g. token-claims-changed -> token-claims-change, risc/sse verification ->
         * ssf verification) and payload object (borrowed). */
        const char *event_uri;
        json_t *event;
        /* Subject: top-level "sub_id", else the legacy "subject" inside the event (Okta), else
         * NULL. Borrowed. */
        json_t *subject;
        /* Time of the event in seconds: event_timestamp (values above 1e11 are taken as
         * milliseconds), else "toe", else iat. */
        uint64_t event_time;
} SsfSet;

/* Full pipeline for one delivered SET: jws_parse, typ check (secevent+jwt, case-insensitive,
 * optional "application/" prefix), jws_verify against keys, claims validation (iss, aud, iat
 * not beyond skew, non-empty string jti of at most SET_MAX_JTI, events object with >= 1 member
 * whose values are objects, no "sub", no "exp"), and extraction into *ret. When delivered_jti
 * is not NULL it must equal the payload jti. On failure fills *err and returns a negative
 * errno: -EBADMSG (invalid_request), -EKEYREJECTED / -ENOKEY (invalid_key), -EPROTO
 * (invalid_issuer or invalid_audience, per err->err). */
int set_verify(const char *token, size_t len, const Jwks *keys, const SetExpect *expect,
               const char *delivered_jti, SsfSet **ret, SetError *err);

/* Claims validation alone, on a payload that was already authenticated. Same contract. */
int set_validate_claims(const char *payload, size_t len, const SetExpect *expect, SsfSet **ret,
                        SetError *err);

SsfSet *ssf_set_free(SsfSet *s);

