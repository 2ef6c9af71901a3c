/* SPDX-License-Identifier: MIT */
/*
 * The record the network worker hands root for one verified SET (ingest.h): its JSON form on
 * the channel, written by the worker and read, strictly, by root. Linked by both processes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ingest.h"
#include "log.h"
#include "macro.h"
#include "strv.h"
#include "utf8.h"

int ingest_from_json_attached(json_t *j, const char **att, size_t *att_left, IngestRequest *ret) {
        IngestRequest r = {};
        json_t *len = json_object_get(j, "claims_len");
        json_int_t l;
        int k;

        /* A record refused for its bounds (-E2BIG) still uses its bytes of the attachment:
         * the next record's follow. */
        k = ingest_from_json(j, &r);
        if ((k < 0 && k != -E2BIG) || !len)
                goto done;
        l = json_integer_value(len);
        if (!json_is_integer(len) || r.claims_json || json_object_get(j, "claims") || !*att ||
            l <= 0 || (uint64_t) l > INGEST_MAX_CLAIMS || (uint64_t) l > *att_left) {
                k = -EBADMSG;
                goto done;
        }
        /* What get_str() takes of a "claims" string: UTF-8, no NUL. */
        for (size_t i = 0; i < (size_t) l;) {
                uint32_t cp;

                i += ssf_utf8_decode((const uint8_t *) *att + i, (size_t) l - i, &cp);
                if (cp == SSF_UTF8_INVALID || cp == 0) {
                        k = -EBADMSG;
                        goto done;
                }
        }
        if (k >= 0) {
                r.claims_json = strndup(*att, (size_t) l);
                if (!r.claims_json) {
                        k = -ENOMEM;
                        goto done;
                }
        }
        *att += l;
        *att_left -= (size_t) l;
done:
        if (k < 0)
                ingest_request_done(&r);
        else
                *ret = r;
        return k;
}

void ingest_request_done(IngestRequest *r) {
        if (!r)
                return;
        free(r->jti);
        free(r->iss);
        free(r->txn);
        free(r->event_uri);
        json_decref(r->event);
        json_decref(r->subject);
        strv_free(r->critical);
        free(r->stream_id);
        free(r->state);
        free(r->status);
        free(r->reason);
        free(r->claims_json);
        json_decref(r->record);
        memset(r, 0, sizeof(*r));
}

bool ingest_printable(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

/* ---- the channel record -------------------------------------------------------------------- */

static const char *const kind_names[] = {
        [INGEST_SUBJECT] = "subject",
        [INGEST_VERIFICATION] = "verification",
        [INGEST_STREAM_UPDATED] = "stream-updated",
};
/* An optional member: left out when NULL (ingest_from_json() reads a missing one as null), so
 * that root parses no more than the record says. 0, or -ENOMEM (or not UTF-8). */
static int set_optional(json_t *j, const char *key, const char *s) {
        json_t *v;

        if (!s)
                return 0;
        v = json_string(s);
        return v ? json_object_set_new(j, key, v) : -ENOMEM;
}

static int set_optional_object(json_t *j, const char *key, json_t *v) {
        return v ? json_object_set(j, key, v) : 0;
}

json_t *ingest_to_json(const IngestRequest *r) {
        json_t *j, *critical;

        critical = json_array();
        if (!critical)
                return NULL;
        for (char **c = r->critical; c && *c; c++)
                json_array_append_new(critical, json_string(*c));
        j = json_pack("{s:s, s:s?, s:s?, s:s?, s:I, s:I, s:o}",
                      "kind", kind_names[r->kind],
                      "jti", r->jti,
                      "iss", r->iss,
                      "event_uri", r->event_uri,
                      "iat", (json_int_t) r->iat,
                      "event_time", (json_int_t) r->event_time,
                      "critical", critical);
        if (!j)
                return NULL;
        if (set_optional(j, "txn", r->txn) < 0 || set_optional(j, "stream_id", r->stream_id) < 0 ||
            set_optional(j, "state", r->state) < 0 || set_optional(j, "status", r->status) < 0 ||
            set_optional(j, "reason", r->reason) < 0 ||
            set_optional(j, "claims", r->claims_json) < 0 ||
            set_optional_object(j, "event", r->event) < 0 ||
            set_optional_object(j, "subject", r->subject) < 0) {
                json_decref(j);
                return NULL;
        }
        return j;
}

/* At least the compact size of v (a string's byte may take 6 escaped), counted up to past max
 * only: cheaper than serialising v, which json_larger() does only when this says it may be
 * more than max. */
static size_t json_size_bound(json_t *v, size_t max) {
        const char *key;
        json_t *e;
        size_t n = 2, i;

        switch (json_typeof(v)) {
        case JSON_OBJECT:
                json_object_foreach(v, key, e) {
                        n += 6 * strlen(key) + 4 + json_size_bound(e, max);
                        if (n > max)
                                return n;
                }
                return n;
        case JSON_ARRAY:
                json_array_foreach(v, i, e) {
                        n += 1 + json_size_bound(e, max);
                        if (n > max)
                                return n;
                }
                return n;
        case JSON_STRING:
                return 2 + 6 * json_string_length(v);
        default:
                return 32; /* a number, true, false or null */
        }
}

/* Whether the compact size of v is more than max (or it cannot be serialised). */
static bool json_larger(json_t *v, size_t max) {
        size_t n;

        if (json_size_bound(v, max) <= max)
                return false;
        n = json_dumpb(v, NULL, 0, JSON_COMPACT);
        return n == 0 || n > max;
}

/* A string member: required or optional (JSON null), at most max bytes, no control chars
 * unless any_bytes. */
static int get_str(json_t *j, const char *key, bool required, size_t max, bool any_bytes,
                   char **ret) {
        json_t *v = json_object_get(j, key);
        const char *s;

        if (!v || json_is_null(v)) {
                if (required)
                        return -EBADMSG;
                *ret = NULL;
                return 0;
        }
        s = json_string_value(v);
        if (!s || strlen(s) != json_string_length(v) || strlen(s) > max ||
            (!any_bytes && !ingest_printable(s)))
                return -EBADMSG;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int get_u64(json_t *j, const char *key, uint64_t *ret) {
        json_t *v = json_object_get(j, key);

        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EBADMSG;
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

static int lookup_name(const char *const *names, size_t n, const char *s) {
        if (s)
                for (size_t i = 0; i < n; i++)
                        if (names[i] && streq(names[i], s))
                                return (int) i;
        return -EBADMSG;
}

int ingest_from_json(json_t *j, IngestRequest *ret) {
        IngestRequest r = {};
        json_t *critical, *c, *ev, *sub;
        size_t i;
        int k;

        if (!json_is_object(j))
                return -EBADMSG;
        k = lookup_name(kind_names, ARRAY_SIZE(kind_names),
                        json_string_value(json_object_get(j, "kind")));
        if (k < 0)
                return k;
        r.kind = (IngestKind) k;
        if ((k = get_str(j, "jti", true, SET_MAX_JTI, false, &r.jti)) < 0 ||
            (k = get_str(j, "iss", true, INGEST_MAX_STRING, false, &r.iss)) < 0 ||
            (k = get_str(j, "txn", false, INGEST_MAX_STRING, false, &r.txn)) < 0 ||
            (k = get_str(j, "event_uri", true, INGEST_MAX_STRING, false, &r.event_uri)) < 0 ||
            (k = get_u64(j, "iat", &r.iat)) < 0 ||
            (k = get_u64(j, "event_time", &r.event_time)) < 0 ||
            (k = get_str(j, "stream_id", false, INGEST_MAX_STRING, false, &r.stream_id)) < 0 ||
            (k = get_str(j, "state", false, INGEST_MAX_STRING, false, &r.state)) < 0 ||
            (k = get_str(j, "status", false, 64, false, &r.status)) < 0 ||
            (k = get_str(j, "reason", false, INGEST_MAX_STRING, false, &r.reason)) < 0 ||
            (k = get_str(j, "claims", false, INGEST_MAX_CLAIMS, true, &r.claims_json)) < 0)
                goto fail;
        if (isempty(r.jti)) {
                k = -EBADMSG;
                goto fail;
        }
        if (r.kind == INGEST_STREAM_UPDATED &&
            (!r.status || (!streq(r.status, "enabled") && !streq(r.status, "paused") &&
                           !streq(r.status, "disabled")))) {
                k = -EBADMSG;
                goto fail;
        }

        /* The event's members and the subject: objects, and only for subject events. */
        ev = json_object_get(j, "event");
        sub = json_object_get(j, "subject");
        if (r.kind == INGEST_SUBJECT) {
                if (!json_is_object(ev) || (sub && !json_is_null(sub) && !json_is_object(sub))) {
                        k = -EBADMSG;
                        goto fail;
                }
                if (json_larger(ev, INGEST_MAX_EVENT) ||
                    (json_is_object(sub) && json_larger(sub, INGEST_MAX_SUBJECT))) {
                        k = -E2BIG;
                        goto fail;
                }
                r.event = json_incref(ev);
                r.subject = json_is_object(sub) ? json_incref(sub) : NULL;
        } else if ((ev && !json_is_null(ev)) || (sub && !json_is_null(sub))) {
                k = -EBADMSG;
                goto fail;
        }

        critical = json_object_get(j, "critical");
        if (!json_is_array(critical)) {
                k = -EBADMSG;
                goto fail;
        }
        if (json_array_size(critical) > INGEST_MAX_CRITICAL) {
                k = -E2BIG;
                goto fail;
        }
        json_array_foreach(critical, i, c) {
                const char *s = json_string_value(c);

                if (!s || strlen(s) != json_string_length(c) || !ingest_printable(s)) {
                        k = -EBADMSG;
                        goto fail;
                }
                if (isempty(s) || strlen(s) > INGEST_MAX_CRITICAL_NAME) {
                        k = -E2BIG;
                        goto fail;
                }
                if ((k = strv_extend(&r.critical, s)) < 0)
                        goto fail;
        }

        *ret = r;
        return 0;
fail:
        ingest_request_done(&r);
        return k;
}
