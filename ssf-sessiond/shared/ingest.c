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

void ingest_request_done(IngestRequest *r) {
        if (!r)
                return;
        free(r->jti);
        free(r->iss);
        free(r->txn);
        free(r->event_uri);
        strv_free(r->users);
        free(r->subject_desc);
        free(r->stream_id);
        free(r->state);
        free(r->status);
        free(r->reason);
        free(r->claims_json);
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
static const char *const effect_names[] = {
        [DETECTION_RAISE] = "raise",
        [DETECTION_CLEAR] = "clear",
        [DETECTION_RECORD] = "record",
        [DETECTION_IGNORE] = "ignore",
};

static json_t *jstr_or_null(const char *s) {
        return s ? json_string(s) : json_null();
}

json_t *ingest_to_json(const IngestRequest *r) {
        json_t *j, *users;

        users = json_array();
        if (!users)
                return NULL;
        for (char **u = r->users; u && *u; u++)
                json_array_append_new(users, json_string(*u));
        j = json_pack("{s:s, s:o, s:o, s:o, s:o, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                      "kind", kind_names[r->kind],
                      "jti", jstr_or_null(r->jti),
                      "iss", jstr_or_null(r->iss),
                      "txn", jstr_or_null(r->txn),
                      "event_uri", jstr_or_null(r->event_uri),
                      "iat", (json_int_t) r->iat,
                      "event_time", (json_int_t) r->event_time,
                      "stream_id", jstr_or_null(r->stream_id),
                      "state", jstr_or_null(r->state),
                      "status", jstr_or_null(r->status),
                      "reason", jstr_or_null(r->reason),
                      "claims", jstr_or_null(r->claims_json),
                      "users", users,
                      "subject", jstr_or_null(r->subject_desc));
        if (!j)
                return NULL;
        if (r->kind == INGEST_SUBJECT) {
                json_t *d = json_pack("{s:s, s:s, s:i, s:b, s:s, s:s}",
                                      "name", r->detection.name,
                                      "effect", effect_names[r->detection.effect],
                                      "level", (int) r->detection.level,
                                      "carries_level", r->detection.carries_level,
                                      "clears", r->detection.clears,
                                      "reason", r->detection.reason);
                if (!d || json_object_set_new(j, "detection", d) < 0 ||
                    json_object_set_new(j, "host_wide", json_boolean(r->host_wide)) < 0) {
                        json_decref(j);
                        return NULL;
                }
        }
        return j;
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

static int get_fixed(json_t *j, const char *key, char *buf, size_t size) {
        const char *s = json_string_value(json_object_get(j, key));

        if (!s || strlen(s) >= size || !ingest_printable(s))
                return -EBADMSG;
        strcpy(buf, s);
        return 0;
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

static bool user_name_ok(const char *s) {
        if (isempty(s) || strlen(s) > 256 || s[0] == '-')
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || strchr("_.-@$", *p)))
                        return false;
        return true;
}

int ingest_from_json(json_t *j, IngestRequest *ret) {
        IngestRequest r = {};
        json_t *users, *u, *d;
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
            (k = get_str(j, "claims", false, INGEST_MAX_CLAIMS, true, &r.claims_json)) < 0 ||
            (k = get_str(j, "subject", false, INGEST_MAX_STRING, false, &r.subject_desc)) < 0)
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

        users = json_object_get(j, "users");
        if (!json_is_array(users) || json_array_size(users) > INGEST_MAX_USERS) {
                k = -EBADMSG;
                goto fail;
        }
        r.users = calloc(1, sizeof(char *));
        if (!r.users) {
                k = -ENOMEM;
                goto fail;
        }
        json_array_foreach(users, i, u) {
                const char *s = json_string_value(u);
                if (!user_name_ok(s)) {
                        k = -EBADMSG;
                        goto fail;
                }
                if ((k = strv_extend(&r.users, s)) < 0)
                        goto fail;
        }

        if (r.kind == INGEST_SUBJECT) {
                json_t *lv, *carries;

                d = json_object_get(j, "detection");
                if (!json_is_object(d)) {
                        k = -EBADMSG;
                        goto fail;
                }
                if ((k = get_fixed(d, "name", r.detection.name, sizeof(r.detection.name))) < 0 ||
                    (k = get_fixed(d, "clears", r.detection.clears,
                                   sizeof(r.detection.clears))) < 0 ||
                    (k = get_fixed(d, "reason", r.detection.reason,
                                   sizeof(r.detection.reason))) < 0)
                        goto fail;
                k = lookup_name(effect_names, ARRAY_SIZE(effect_names),
                                json_string_value(json_object_get(d, "effect")));
                if (k < 0)
                        goto fail;
                r.detection.effect = (DetectionEffect) k;
                lv = json_object_get(d, "level");
                carries = json_object_get(d, "carries_level");
                if (!json_is_integer(lv) || json_integer_value(lv) < RISK_NONE ||
                    json_integer_value(lv) >= _RISK_MAX || !json_is_boolean(carries)) {
                        k = -EBADMSG;
                        goto fail;
                }
                r.detection.level = (RiskLevel) json_integer_value(lv);
                r.detection.carries_level = json_is_true(carries);
                r.host_wide = json_is_true(json_object_get(j, "host_wide"));
                if ((r.detection.effect == DETECTION_RAISE && isempty(r.detection.name)) ||
                    (r.detection.effect == DETECTION_CLEAR && isempty(r.detection.clears))) {
                        k = -EBADMSG;
                        goto fail;
                }
        }
        *ret = r;
        return 0;
fail:
        ingest_request_done(&r);
        return k;
}
