/* SPDX-License-Identifier: MIT */
/*
 * RFC 8417 Security Event Tokens under the SSF 1.0 profile: explicit typing, signature, then the
 * claims (iss, aud, iat, jti, events; no sub, no exp), the one logical event and its subject.
 * Pure: no I/O, nothing logged above debug.
 * Runs in the network worker.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "jws.h"
#include "log.h"
#include "macro.h"
#include "set.h"

#define SET_MAX_EVENTS 16u     /* members of "events" */
#define SET_MAX_SUBJECT_DEPTH 4 /* complex -> aliases -> simple */

DEFINE_TRIVIAL_CLEANUP_FUNC(Jws *, jws_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(SsfSet *, ssf_set_free);

/* Legacy URIs (spec digest §9, §8.3 item 38) -> current ones. */
static const struct {
        const char *legacy, *current;
} legacy_events[] = {
        { "https://schemas.openid.net/secevent/risc/event-type/verification", SSF_EVENT_VERIFICATION },
        { "https://schemas.openid.net/secevent/sse/event-type/verification", SSF_EVENT_VERIFICATION },
        { "https://schemas.openid.net/secevent/caep/event-type/verification", SSF_EVENT_VERIFICATION },
        { "https://schemas.openid.net/secevent/risc/event-type/stream-updated", SSF_EVENT_STREAM_UPDATED },
        { "https://schemas.openid.net/secevent/caep/event-type/stream-updated", SSF_EVENT_STREAM_UPDATED },
        { "https://schemas.openid.net/secevent/sse/event-type/stream-updated", SSF_EVENT_STREAM_UPDATED },
        { CAEP_EVENT_PREFIX "token-claims-changed", CAEP_EVENT_PREFIX "token-claims-change" },
};

/* Returns the canonical static URI of a known event, or NULL. */
static const char *canonical_event(const char *uri) {
        const EventType *e;

        for (size_t i = 0; i < ARRAY_SIZE(legacy_events); i++)
                if (streq(uri, legacy_events[i].legacy))
                        return legacy_events[i].current;
        if (streq(uri, SSF_EVENT_VERIFICATION))
                return SSF_EVENT_VERIFICATION;
        if (streq(uri, SSF_EVENT_STREAM_UPDATED))
                return SSF_EVENT_STREAM_UPDATED;
        e = event_type_by_uri(uri);
        return e ? e->uri : NULL;
}

SsfSet *ssf_set_free(SsfSet *s) {
        if (!s)
                return NULL;
        json_decref(s->claims);
        free(s->claims_text);
        free(s);
        return NULL;
}

_printf_(4, 5) static int fail(SetError *err, const char *code, int r, const char *fmt, ...) {
        if (err) {
                va_list ap;

                err->err = code;
                va_start(ap, fmt);
                (void) vsnprintf(err->description, sizeof err->description, fmt, ap);
                va_end(ap);
                log_debug("SET rejected (%s): %s", code, err->description);
        }
        return r;
}

static int fail_invalid(SetError *err, const char *what) {
        return fail(err, "invalid_request", -EBADMSG, "%s", what);
}

/* A NumericDate (RFC 7519 §2): a non-negative number of seconds; fractions are dropped.
 * Returns 0, or -EBADMSG for anything else (negative, huge, not a number). */
static int numeric_date(json_t *v, uint64_t *ret) {
        if (json_is_integer(v)) {
                json_int_t i = json_integer_value(v);
                if (i < 0)
                        return -EBADMSG;
                *ret = (uint64_t) i;
                return 0;
        }
        if (json_is_real(v)) {
                double d = json_real_value(v);
                if (!isfinite(d) || d < 0 || d >= 9007199254740992.0 /* 2^53 */)
                        return -EBADMSG;
                *ret = (uint64_t) d;
                return 0;
        }
        return -EBADMSG;
}

static bool aud_contains(json_t *aud, const char *audience) {
        size_t i;
        json_t *v;

        if (json_is_string(aud))
                return streq(json_string_value(aud), audience);
        if (json_is_array(aud))
                json_array_foreach(aud, i, v)
                        if (json_is_string(v) && streq(json_string_value(v), audience))
                                return true;
        return false;
}

static bool aud_well_formed(json_t *aud) {
        size_t i;
        json_t *v;

        if (json_is_string(aud))
                return true;
        if (!json_is_array(aud) || json_array_size(aud) == 0)
                return false;
        json_array_foreach(aud, i, v)
                if (!json_is_string(v))
                        return false;
        return true;
}

/* Google's RISC transmitter says "subject_type" where RFC 9493 says "format", and older drafts
 * used "iss-sub", "jwt-id", "saml-assertion-id" and "phone". Rewrite them in place (the claims
 * are ours) so that everything downstream, hooks included, sees one spelling. */
static void normalise_subject(json_t *s, unsigned depth, bool *changed) {
        static const struct {
                const char *old, *current;
        } formats[] = {
                { "iss-sub", "iss_sub" },
                { "jwt-id", "jwt_id" },
                { "saml-assertion-id", "saml_assertion_id" },
                { "phone", "phone_number" },
        };
        const char *key;
        json_t *v, *st;

        if (!json_is_object(s) || depth > SET_MAX_SUBJECT_DEPTH)
                return;

        st = json_object_get(s, "subject_type");
        if (!json_object_get(s, "format") && json_is_string(st)) {
                (void) json_object_set(s, "format", st); /* set takes its own reference */
                *changed = true;
        }

        v = json_object_get(s, "format");
        if (json_is_string(v))
                for (size_t i = 0; i < ARRAY_SIZE(formats); i++)
                        if (streq(json_string_value(v), formats[i].old)) {
                                (void) json_object_set_new(s, "format", json_string(formats[i].current));
                                *changed = true;
                                break;
                        }

        v = json_object_get(s, "identifiers");
        if (json_is_array(v)) {
                size_t i;
                json_t *e;
                json_array_foreach(v, i, e)
                        normalise_subject(e, depth + 1, changed);
        }
        json_object_foreach(s, key, v)
                if (json_is_object(v))
                        normalise_subject(v, depth + 1, changed);
}

/* Picks the one logical event. Several members are allowed only when at most one of them is a
 * known event type (the others being extensions) or all known ones are alternative URIs of
 * the same type. */
static int pick_event(json_t *events, const char **ret_uri, json_t **ret_event, SetError *err) {
        const char *key, *picked_uri = NULL, *first_uri = NULL;
        json_t *v, *picked = NULL, *first = NULL;
        size_t n;

        if (!json_is_object(events))
                return fail_invalid(err, "events is not a JSON object");
        n = json_object_size(events);
        if (n == 0)
                return fail_invalid(err, "events is empty");
        if (n > SET_MAX_EVENTS)
                return fail_invalid(err, "too many members in events");

        json_object_foreach(events, key, v) {
                const char *canon;

                if (!json_is_object(v))
                        return fail_invalid(err, "an event payload is not a JSON object");
                if (!first) {
                        first = v;
                        first_uri = key;
                }
                canon = canonical_event(key);
                if (!canon)
                        continue;
                if (picked_uri && !streq(picked_uri, canon))
                        return fail_invalid(err, "events holds more than one logical event");
                /* Prefer the member spelled with the current URI. */
                if (!picked || streq(key, canon)) {
                        picked = v;
                        picked_uri = canon;
                }
        }

        if (!picked) {
                /* Only unknown types: with one member that is the event (acknowledged and
                 * ignored later); with several we cannot tell which is meant. */
                if (n > 1)
                        return fail_invalid(err, "events holds several unknown event types");
                picked = first;
                picked_uri = first_uri;
        }
        *ret_uri = picked_uri;
        *ret_event = picked;
        return 0;
}

int set_validate_claims(const char *payload, size_t len, const SetExpect *expect, SsfSet **ret,
                        SetError *err) {
        _cleanup_(ssf_set_freep) SsfSet *s = NULL;
        json_error_t jerr;
        json_t *v, *events;
        bool normalised = false;
        uint64_t t;
        int r;

        if (!payload || !expect || !ret)
                return -EINVAL;
        if (!expect->issuer)
                return fail(err, "invalid_issuer", -EPROTO, "no issuer configured");
        if (len > SET_MAX_PAYLOAD)
                return fail_invalid(err, "payload too large");

        s = calloc(1, sizeof(SsfSet));
        if (!s)
                return -ENOMEM;

        /* jansson rejects invalid UTF-8 and \u0000 in strings by default. */
        s->claims = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!s->claims)
                return fail(err, "invalid_request", -EBADMSG, "payload is not JSON: %s", jerr.text);
        if (!json_is_object(s->claims))
                return fail_invalid(err, "payload is not a JSON object");

        /* SSF §4.1.2, §4.1.7: a SET must not look like an ID or access token. */
        if (json_object_get(s->claims, "sub"))
                return fail_invalid(err, "sub claim present");
        if (json_object_get(s->claims, "exp"))
                return fail_invalid(err, "exp claim present");

        v = json_object_get(s->claims, "iss");
        if (!json_is_string(v))
                return fail_invalid(err, "iss missing or not a string");
        s->iss = json_string_value(v);
        if (!streq(s->iss, expect->issuer))
                return fail(err, "invalid_issuer", -EPROTO, "iss does not match the transmitter's issuer");

        v = json_object_get(s->claims, "aud");
        if (v && !aud_well_formed(v))
                return fail_invalid(err, "aud is neither a string nor an array of strings");
        if (expect->audience && (!v || !aud_contains(v, expect->audience)))
                return fail(err, "invalid_audience", -EPROTO,
                            "aud does not contain this receiver's audience");

        v = json_object_get(s->claims, "iat");
        if (!v)
                return fail_invalid(err, "iat missing");
        if (numeric_date(v, &s->iat) < 0)
                return fail_invalid(err, "iat is not a valid NumericDate");
        t = expect->now_sec + expect->max_skew_sec;
        if (t < expect->now_sec)
                t = UINT64_MAX;
        if (s->iat > t)
                return fail(err, "invalid_request", -EBADMSG, "iat is %" PRIu64 "s in the future",
                            s->iat - expect->now_sec);

        v = json_object_get(s->claims, "jti");
        if (!json_is_string(v) || json_string_length(v) == 0)
                return fail_invalid(err, "jti missing or empty");
        if (json_string_length(v) > SET_MAX_JTI)
                return fail_invalid(err, "jti too long");
        s->jti = json_string_value(v);

        /* txn is a string (SSF §4.1.9); early examples used a number: ignore those. */
        v = json_object_get(s->claims, "txn");
        if (json_is_string(v))
                s->txn = json_string_value(v);

        events = json_object_get(s->claims, "events");
        if (!events)
                return fail_invalid(err, "events missing");
        r = pick_event(events, &s->event_uri, &s->event, err);
        if (r < 0)
                return r;

        /* Subject: sub_id (SSF §3.1), else the legacy subject inside the event. */
        v = json_object_get(s->claims, "sub_id");
        if (v) {
                if (!json_is_object(v))
                        return fail_invalid(err, "sub_id is not a JSON object");
                s->subject = v;
        } else {
                v = json_object_get(s->event, "subject");
                if (v && !json_is_object(v))
                        return fail_invalid(err, "event subject is not a JSON object");
                s->subject = v;
        }
        normalise_subject(s->subject, 0, &normalised);
        /* Claims as they came, unless rewritten: what ingest_prepare() hands on for hooks, so
         * that they need not be serialised again (a copy only without a NUL byte, which
         * jansson would have refused anyway). */
        if (!normalised) {
                s->claims_text = strndup(payload, len);
                if (s->claims_text && strlen(s->claims_text) != len)
                        s->claims_text = mfree(s->claims_text);
        }

        /* When it happened: event_timestamp (seconds; milliseconds above 1e11, as Okta sends),
         * else toe, else iat. An event cannot have happened after its SET was issued, so later
         * times are capped at iat: a bogus future time could otherwise pin a detection. */
        s->event_time = s->iat;
        v = json_object_get(s->event, "event_timestamp");
        if (v && numeric_date(v, &t) >= 0) {
                if (t > UINT64_C(100000000000))
                        t /= 1000;
                s->event_time = t;
        } else if ((v = json_object_get(s->claims, "toe")) && numeric_date(v, &t) >= 0)
                s->event_time = t;
        if (s->event_time > s->iat)
                s->event_time = s->iat;

        *ret = TAKE_PTR(s);
        return 0;
}

static bool typ_ok(const char *typ) {
        const char *t;

        if (!typ)
                return false;
        t = typ;
        if (strncasecmp(t, "application/", 12) == 0)
                t += 12;
        return strcasecmp(t, "secevent+jwt") == 0;
}

int set_verify(const char *token, size_t len, const Jwks *keys, const SetExpect *expect,
               const char *delivered_jti, SsfSet **ret, SetError *err) {
        _cleanup_(jws_freep) Jws *jws = NULL;
        _cleanup_(ssf_set_freep) SsfSet *s = NULL;
        int r;

        if (!token || !keys || !expect || !ret)
                return -EINVAL;

        r = jws_parse(token, len, &jws);
        switch (r) {
        case 0:
                break;
        case -ENOMEM:
                return r;
        case -EPROTONOSUPPORT:
                return fail(err, "invalid_key", -EKEYREJECTED, "signature algorithm not accepted");
        case -E2BIG:
                return fail_invalid(err, "token too large");
        default:
                return fail_invalid(err, "malformed JWS");
        }

        if (!typ_ok(jws->typ))
                return fail_invalid(err, "typ header is not secevent+jwt");

        r = jws_verify(jws, keys);
        switch (r) {
        case 0:
                break;
        case -ENOMEM:
                return r;
        case -ENOKEY:
                return fail(err, "invalid_key", -ENOKEY,
                            "no key in the transmitter's JWKS for kid and alg %s",
                            jws_alg_to_string(jws->alg));
        default:
                return fail(err, "invalid_key", -EKEYREJECTED, "signature does not verify");
        }

        r = set_validate_claims((const char *) jws->payload, jws->payload_len, expect, &s, err);
        if (r < 0)
                return r;

        if (delivered_jti && !streq(delivered_jti, s->jti))
                return fail_invalid(err, "jti differs from the jti it was delivered under");

        *ret = TAKE_PTR(s);
        return 0;
}
