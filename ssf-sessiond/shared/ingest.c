/* SPDX-License-Identifier: MIT */
/*
 * The record the network worker hands root for one verified SET (ingest.h): its JSON and
 * binary forms on the channel, written by the worker and read, strictly, by root, and the
 * worker's check that root will take it. Linked by both processes.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ingest.h"
#include "log.h"
#include "macro.h"
#include "strv.h"
#include "utf8.h"

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

/* Whether v nests more than levels objects and arrays deep (v itself is one). */
static bool json_deeper(json_t *v, unsigned levels) {
        const char *key;
        json_t *e;
        size_t i;

        if (!json_is_object(v) && !json_is_array(v))
                return false;
        if (levels == 0)
                return true;
        if (json_is_object(v)) {
                json_object_foreach(v, key, e)
                        if (json_deeper(e, levels - 1))
                                return true;
        } else
                json_array_foreach(v, i, e)
                        if (json_deeper(e, levels - 1))
                                return true;
        return false;
}

/* Whether the event's members or the subject (v) are past root's bounds: max bytes of compact
 * JSON, INGEST_MAX_DEPTH levels. */
static bool json_past_bounds(json_t *v, size_t max) {
        return json_larger(v, max) || json_deeper(v, INGEST_MAX_DEPTH);
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

/* What both forms of a record must say, once read: a jti, and a stream-updated's status. */
static int check_members(const IngestRequest *r) {
        if (isempty(r->jti))
                return -EBADMSG;
        if (r->kind == INGEST_STREAM_UPDATED &&
            (!r->status || (!streq(r->status, "enabled") && !streq(r->status, "paused") &&
                            !streq(r->status, "disabled"))))
                return -EBADMSG;
        return 0;
}

/* Whether a critical_subject_members name is within root's bounds: not empty, not too long. */
static bool critical_name_fits(const char *s) {
        return !isempty(s) && strlen(s) <= INGEST_MAX_CRITICAL_NAME;
}

/* One of the transmitter's critical_subject_members names (printable, checked by the caller):
 * -E2BIG when empty or too long. */
static int add_critical(IngestRequest *r, const char *s) {
        if (!critical_name_fits(s))
                return -E2BIG;
        return strv_extend(&r->critical, s);
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
        if ((k = check_members(&r)) < 0)
                goto fail;

        /* The event's members and the subject: objects, and only for subject events. */
        ev = json_object_get(j, "event");
        sub = json_object_get(j, "subject");
        if (r.kind == INGEST_SUBJECT) {
                if (!json_is_object(ev) || (sub && !json_is_null(sub) && !json_is_object(sub))) {
                        k = -EBADMSG;
                        goto fail;
                }
                if (json_past_bounds(ev, INGEST_MAX_EVENT) ||
                    (json_is_object(sub) && json_past_bounds(sub, INGEST_MAX_SUBJECT))) {
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
                if ((k = add_critical(&r, s)) < 0)
                        goto fail;
        }

        *ret = r;
        return 0;
fail:
        ingest_request_done(&r);
        return k;
}

/* ---- the binary record of an ingest-batch frame ------------------------------------------ */

/* The fields of a binary record after its kind, iat and event_time, in this order. */
enum {
        BIN_JTI, BIN_ISS, BIN_TXN, BIN_EVENT_URI, BIN_STREAM_ID, BIN_STATE, BIN_STATUS, BIN_REASON,
        BIN_CLAIMS, BIN_EVENT, BIN_SUBJECT, _BIN_MAX
};
#define BIN_ABSENT UINT32_MAX

typedef struct Slice {
        const char *p; /* NULL: absent */
        size_t len;
} Slice;

static int put_bytes(char *buf, size_t size, size_t *at, const void *p, size_t len) {
        if (len > size - *at)
                return -ENOSPC;
        memcpy(buf + *at, p, len);
        *at += len;
        return 0;
}

static int put_str(char *buf, size_t size, size_t *at, const char *s) {
        size_t l = s ? strlen(s) : 0;
        uint32_t len = s ? (uint32_t) l : BIN_ABSENT;

        if (l >= BIN_ABSENT || put_bytes(buf, size, at, &len, sizeof(len)) < 0)
                return -ENOSPC;
        return s ? put_bytes(buf, size, at, s, len) : 0;
}

/* The tags of a JSON value in a binary record (put_value()). */
enum {
        TAG_OBJECT = 'o', /* u32 count, then each member: u32 key length, key, value */
        TAG_ARRAY = 'a',  /* u32 count, then each value */
        TAG_STRING = 's', /* u32 length, bytes */
        TAG_INTEGER = 'i', /* int64 */
        TAG_REAL = 'r',   /* double */
        TAG_TRUE = 't',
        TAG_FALSE = 'f',
        TAG_NULL = 'n',
};

static int put_tag(char *buf, size_t size, size_t *at, uint8_t tag) {
        return put_bytes(buf, size, at, &tag, 1);
}

static int put_count(char *buf, size_t size, size_t *at, size_t n) {
        uint32_t u = (uint32_t) n;

        return n >= BIN_ABSENT ? -ENOSPC : put_bytes(buf, size, at, &u, sizeof(u));
}

/* v as a tagged value: what root builds the same value from without a JSON parser. -E2BIG
 * past INGEST_MAX_DEPTH levels (ingest_check() refuses those before). */
static int put_value(char *buf, size_t size, size_t *at, json_t *v, unsigned levels) {
        const char *key;
        json_t *e;
        size_t i;
        int k;

        switch (json_typeof(v)) {
        case JSON_OBJECT:
                if (levels == 0)
                        return -E2BIG;
                if ((k = put_tag(buf, size, at, TAG_OBJECT)) < 0 ||
                    (k = put_count(buf, size, at, json_object_size(v))) < 0)
                        return k;
                json_object_foreach(v, key, e)
                        if ((k = put_str(buf, size, at, key)) < 0 ||
                            (k = put_value(buf, size, at, e, levels - 1)) < 0)
                                return k;
                return 0;
        case JSON_ARRAY:
                if (levels == 0)
                        return -E2BIG;
                if ((k = put_tag(buf, size, at, TAG_ARRAY)) < 0 ||
                    (k = put_count(buf, size, at, json_array_size(v))) < 0)
                        return k;
                json_array_foreach(v, i, e)
                        if ((k = put_value(buf, size, at, e, levels - 1)) < 0)
                                return k;
                return 0;
        case JSON_STRING:
                if ((k = put_tag(buf, size, at, TAG_STRING)) < 0 ||
                    (k = put_count(buf, size, at, json_string_length(v))) < 0)
                        return k;
                return put_bytes(buf, size, at, json_string_value(v), json_string_length(v));
        case JSON_INTEGER: {
                int64_t n = json_integer_value(v);

                if ((k = put_tag(buf, size, at, TAG_INTEGER)) < 0)
                        return k;
                return put_bytes(buf, size, at, &n, sizeof(n));
        }
        case JSON_REAL: {
                double d = json_real_value(v);

                if ((k = put_tag(buf, size, at, TAG_REAL)) < 0)
                        return k;
                return put_bytes(buf, size, at, &d, sizeof(d));
        }
        case JSON_TRUE:
                return put_tag(buf, size, at, TAG_TRUE);
        case JSON_FALSE:
                return put_tag(buf, size, at, TAG_FALSE);
        default:
                return put_tag(buf, size, at, TAG_NULL);
        }
}

/* v as a slice holding one tagged value, or absent for NULL. */
static int put_object(char *buf, size_t size, size_t *at, json_t *v) {
        size_t start = *at;
        uint32_t len;
        int k;

        if (!v)
                return put_str(buf, size, at, NULL);
        if (sizeof(len) > size - start)
                return -ENOSPC;
        *at += sizeof(len);
        k = put_value(buf, size, at, v, INGEST_MAX_DEPTH);
        if (k < 0 || *at - start - sizeof(len) >= BIN_ABSENT) {
                *at = start;
                return k < 0 ? k : -ENOSPC;
        }
        len = (uint32_t) (*at - start - sizeof(len));
        memcpy(buf + start, &len, sizeof(len));
        return 0;
}

int ingest_record_put(const IngestRequest *r, char *buf, size_t size, size_t *ret_len) {
        const char *strs[] = {
                [BIN_JTI] = r->jti,       [BIN_ISS] = r->iss,       [BIN_TXN] = r->txn,
                [BIN_EVENT_URI] = r->event_uri, [BIN_STREAM_ID] = r->stream_id,
                [BIN_STATE] = r->state,   [BIN_STATUS] = r->status, [BIN_REASON] = r->reason,
                [BIN_CLAIMS] = r->claims_json,
        };
        uint8_t kind = (uint8_t) r->kind;
        uint32_t n_critical = 0;
        size_t at = 0;
        int k;

        for (char **c = r->critical; c && *c; c++)
                n_critical++;
        if ((k = put_bytes(buf, size, &at, &kind, 1)) < 0 ||
            (k = put_bytes(buf, size, &at, &r->iat, sizeof(r->iat))) < 0 ||
            (k = put_bytes(buf, size, &at, &r->event_time, sizeof(r->event_time))) < 0)
                return k;
        for (size_t i = 0; i <= BIN_CLAIMS; i++)
                if ((k = put_str(buf, size, &at, strs[i])) < 0)
                        return k;
        if ((k = put_object(buf, size, &at, r->event)) < 0 ||
            (k = put_object(buf, size, &at, r->subject)) < 0 ||
            (k = put_bytes(buf, size, &at, &n_critical, sizeof(n_critical))) < 0)
                return k;
        for (char **c = r->critical; c && *c; c++)
                if ((k = put_str(buf, size, &at, *c)) < 0)
                        return k;
        *ret_len = at;
        return 0;
}

static bool take_bytes(const char **p, size_t *left, void *ret, size_t len) {
        if (len > *left)
                return false;
        memcpy(ret, *p, len);
        *p += len;
        *left -= len;
        return true;
}

static bool take_slice(const char **p, size_t *left, Slice *ret) {
        uint32_t len;

        if (!take_bytes(p, left, &len, sizeof(len)))
                return false;
        if (len == BIN_ABSENT) {
                *ret = (Slice) {};
                return true;
        }
        if (len > *left)
                return false;
        *ret = (Slice) { *p, len };
        *p += len;
        *left -= len;
        return true;
}

/* Whether s[0..len) is UTF-8 without NUL: what a JSON string root takes may hold. */
static bool utf8_no_nul(const char *s, size_t len) {
        for (size_t i = 0; i < len;) {
                uint32_t cp;

                if ((unsigned char) s[i] - 1u < 0x7fu) { /* ASCII, not NUL: most of it */
                        i++;
                        continue;
                }
                i += ssf_utf8_decode((const uint8_t *) s + i, len - i, &cp);
                if (cp == SSF_UTF8_INVALID || cp == 0)
                        return false;
        }
        return true;
}

/* What get_str() takes of a JSON member, from a slice. */
static int slice_str(Slice v, bool required, size_t max, bool any_bytes, char **ret) {
        if (!v.p) {
                *ret = NULL;
                return required ? -EBADMSG : 0;
        }
        if (v.len > max || !utf8_no_nul(v.p, v.len))
                return -EBADMSG;
        *ret = strndup(v.p, v.len);
        if (!*ret)
                return -ENOMEM;
        if (!any_bytes && !ingest_printable(*ret))
                return -EBADMSG;
        return 0;
}

/* One tagged value (put_value()) at *p, built with no JSON parser but held to what json_loadb()
 * would take of its JSON text: UTF-8 strings and keys without NUL, no key twice in an object,
 * finite numbers. -EBADMSG, -E2BIG past levels of nesting, -ENOMEM. */
static int take_value(const char **p, size_t *left, unsigned levels, json_t **ret) {
        _cleanup_(json_decrefp) json_t *v = NULL;
        uint8_t tag;
        uint32_t n;
        int k;

        *ret = NULL;
        if (!take_bytes(p, left, &tag, 1))
                return -EBADMSG;
        switch (tag) {
        case TAG_OBJECT:
        case TAG_ARRAY:
                if (levels == 0)
                        return -E2BIG;
                if (!take_bytes(p, left, &n, sizeof(n)))
                        return -EBADMSG;
                v = tag == TAG_OBJECT ? json_object() : json_array();
                if (!v)
                        return -ENOMEM;
                for (uint32_t i = 0; i < n; i++) {
                        Slice key = {};
                        json_t *e;

                        if (tag == TAG_OBJECT &&
                            (!take_slice(p, left, &key) || !key.p || !utf8_no_nul(key.p, key.len) ||
                             json_object_getn(v, key.p, key.len)))
                                return -EBADMSG;
                        if ((k = take_value(p, left, levels - 1, &e)) < 0)
                                return k;
                        if ((tag == TAG_OBJECT ? json_object_setn_new_nocheck(v, key.p, key.len, e)
                                               : json_array_append_new(v, e)) < 0)
                                return -ENOMEM;
                }
                break;
        case TAG_STRING: {
                Slice s;

                if (!take_slice(p, left, &s) || !s.p || !utf8_no_nul(s.p, s.len))
                        return -EBADMSG;
                v = json_stringn_nocheck(s.p, s.len);
                break;
        }
        case TAG_INTEGER: {
                int64_t i;

                if (!take_bytes(p, left, &i, sizeof(i)))
                        return -EBADMSG;
                v = json_integer(i);
                break;
        }
        case TAG_REAL: {
                double d;

                if (!take_bytes(p, left, &d, sizeof(d)) || !isfinite(d))
                        return -EBADMSG;
                v = json_real(d);
                break;
        }
        case TAG_TRUE:
                v = json_true();
                break;
        case TAG_FALSE:
                v = json_false();
                break;
        case TAG_NULL:
                v = json_null();
                break;
        default:
                return -EBADMSG;
        }
        if (!v)
                return -ENOMEM;
        *ret = TAKE_PTR(v);
        return 0;
}

/* A JSON object from a slice holding one tagged value and nothing more (absent: NULL). */
static int slice_object(Slice v, json_t **ret) {
        const char *p = v.p;
        size_t left = v.len;
        json_t *j;
        int k;

        *ret = NULL;
        if (!v.p)
                return 0;
        k = take_value(&p, &left, INGEST_MAX_DEPTH, &j);
        if (k < 0)
                return k;
        if (left != 0 || !json_is_object(j)) {
                json_decref(j);
                return -EBADMSG;
        }
        *ret = j;
        return 0;
}

int ingest_record_take(const char **p, size_t *left, IngestRequest *ret) {
        Slice f[_BIN_MAX], critical[INGEST_MAX_CRITICAL];
        IngestRequest r = {};
        uint32_t n_critical;
        uint8_t kind;
        int k;

        /* Its bytes first, all of them: a record refused for its bounds (-E2BIG) still uses
         * them, and the next one follows. */
        if (!take_bytes(p, left, &kind, 1) || !take_bytes(p, left, &r.iat, sizeof(r.iat)) ||
            !take_bytes(p, left, &r.event_time, sizeof(r.event_time)))
                return -EBADMSG;
        for (size_t i = 0; i < _BIN_MAX; i++)
                if (!take_slice(p, left, &f[i]))
                        return -EBADMSG;
        if (!take_bytes(p, left, &n_critical, sizeof(n_critical)))
                return -EBADMSG;
        for (uint32_t i = 0; i < n_critical; i++) {
                Slice c;

                if (!take_slice(p, left, &c) || !c.p)
                        return -EBADMSG;
                if (i < INGEST_MAX_CRITICAL)
                        critical[i] = c;
        }

        /* Then what ingest_from_json() checks of the same record, in its order. */
        if (kind >= ARRAY_SIZE(kind_names) || r.iat > INT64_MAX || r.event_time > INT64_MAX)
                return -EBADMSG;
        r.kind = (IngestKind) kind;
        if ((k = slice_str(f[BIN_JTI], true, SET_MAX_JTI, false, &r.jti)) < 0 ||
            (k = slice_str(f[BIN_ISS], true, INGEST_MAX_STRING, false, &r.iss)) < 0 ||
            (k = slice_str(f[BIN_TXN], false, INGEST_MAX_STRING, false, &r.txn)) < 0 ||
            (k = slice_str(f[BIN_EVENT_URI], true, INGEST_MAX_STRING, false, &r.event_uri)) < 0 ||
            (k = slice_str(f[BIN_STREAM_ID], false, INGEST_MAX_STRING, false, &r.stream_id)) < 0 ||
            (k = slice_str(f[BIN_STATE], false, INGEST_MAX_STRING, false, &r.state)) < 0 ||
            (k = slice_str(f[BIN_STATUS], false, 64, false, &r.status)) < 0 ||
            (k = slice_str(f[BIN_REASON], false, INGEST_MAX_STRING, false, &r.reason)) < 0 ||
            (k = slice_str(f[BIN_CLAIMS], false, INGEST_MAX_CLAIMS, true, &r.claims_json)) < 0)
                goto fail;
        if ((k = check_members(&r)) < 0)
                goto fail;
        if (r.kind == INGEST_SUBJECT) {
                if (!f[BIN_EVENT].p) {
                        k = -EBADMSG;
                        goto fail;
                }
                if ((k = slice_object(f[BIN_EVENT], &r.event)) < 0 ||
                    (k = slice_object(f[BIN_SUBJECT], &r.subject)) < 0)
                        goto fail;
                if (json_past_bounds(r.event, INGEST_MAX_EVENT) ||
                    (r.subject && json_past_bounds(r.subject, INGEST_MAX_SUBJECT))) {
                        k = -E2BIG;
                        goto fail;
                }
        } else if (f[BIN_EVENT].p || f[BIN_SUBJECT].p) {
                k = -EBADMSG;
                goto fail;
        }
        if (n_critical > INGEST_MAX_CRITICAL) {
                k = -E2BIG;
                goto fail;
        }
        for (uint32_t i = 0; i < n_critical; i++) {
                _cleanup_free_ char *s = NULL;

                if ((k = slice_str(critical[i], true, SIZE_MAX, false, &s)) < 0 ||
                    (k = add_critical(&r, s)) < 0)
                        goto fail;
        }
        *ret = r;
        return 0;
fail:
        ingest_request_done(&r);
        return k;
}

/* ---- the worker's check of a record before it writes it ---------------------------------- */

/* A string member as the readers take it: present unless optional, at most max bytes, UTF-8,
 * and printable unless any_bytes (a C string has no NUL). */
static int check_str(const char *s, bool required, size_t max, bool any_bytes) {
        size_t len;

        if (!s)
                return required ? -EBADMSG : 0;
        len = strlen(s);
        if (len > max || !utf8_no_nul(s, len) || (!any_bytes && !ingest_printable(s)))
                return -EBADMSG;
        return 0;
}

int ingest_check(const IngestRequest *r) {
        size_t n_critical = 0;
        int k;

        if ((unsigned) r->kind >= ARRAY_SIZE(kind_names) || r->iat > INT64_MAX ||
            r->event_time > INT64_MAX)
                return -EBADMSG;
        if ((k = check_str(r->jti, true, SET_MAX_JTI, false)) < 0 ||
            (k = check_str(r->iss, true, INGEST_MAX_STRING, false)) < 0 ||
            (k = check_str(r->txn, false, INGEST_MAX_STRING, false)) < 0 ||
            (k = check_str(r->event_uri, true, INGEST_MAX_STRING, false)) < 0 ||
            (k = check_str(r->stream_id, false, INGEST_MAX_STRING, false)) < 0 ||
            (k = check_str(r->state, false, INGEST_MAX_STRING, false)) < 0 ||
            (k = check_str(r->status, false, 64, false)) < 0 ||
            (k = check_str(r->reason, false, INGEST_MAX_STRING, false)) < 0 ||
            (k = check_str(r->claims_json, false, INGEST_MAX_CLAIMS, true)) < 0 ||
            (k = check_members(r)) < 0)
                return k;
        if (r->kind == INGEST_SUBJECT) {
                if (!json_is_object(r->event) || (r->subject && !json_is_object(r->subject)))
                        return -EBADMSG;
                if (json_past_bounds(r->event, INGEST_MAX_EVENT) ||
                    (r->subject && json_past_bounds(r->subject, INGEST_MAX_SUBJECT)))
                        return -E2BIG;
        } else if (r->event || r->subject)
                return -EBADMSG;
        for (char **c = r->critical; c && *c; c++)
                n_critical++;
        if (n_critical > INGEST_MAX_CRITICAL)
                return -E2BIG;
        for (char **c = r->critical; c && *c; c++) {
                if ((k = check_str(*c, true, SIZE_MAX, false)) < 0)
                        return k;
                if (!critical_name_fits(*c))
                        return -E2BIG;
        }
        return 0;
}
