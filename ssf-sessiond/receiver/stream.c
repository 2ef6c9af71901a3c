/* SPDX-License-Identifier: MIT */
/*
 * Transmitter discovery, JWKS and stream management (stream.h). Parses network bytes. Runs in
 * the network worker.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "macro.h"
#include "secret.h"
#include "set.h"
#include "link-client.h"
#include "stream.h"
#include "strv.h"

#define METADATA_MAX (256u * 1024u)
#define CRITICAL_MEMBERS_MAX 32u     /* critical_subject_members entries */
#define CRITICAL_MEMBER_NAME_MAX 64u /* bytes per member name */
#define STREAM_MAX (256u * 1024u)
#define MGMT_TIMEOUT_USEC (15u * 1000000u)

json_t *stream_events_requested(char *const *names) {
        json_t *events = json_array();

        for (size_t i = 0; events && i < n_event_types; i++) {
                const EventType *e = &event_types[i];
                bool want = !names;

                for (char *const *n = names; n && *n && !want; n++)
                        want = event_name_covers(*n, e->name);
                if (e->detection && want &&
                    json_array_append_new(events, json_string(e->uri)) < 0) {
                        json_decref(events);
                        return NULL;
                }
        }
        return events;
}

int transmitter_take_verifier(Transmitter *src, Transmitter *ret) {
        Transmitter t = {
                .jwks_fetched_usec = src->jwks_fetched_usec,
                .jwks_attempt_usec = src->jwks_attempt_usec,
        };
        int r = 0;

        t.issuer = src->issuer ? strdup(src->issuer) : NULL;
        t.jwks_uri = src->jwks_uri ? strdup(src->jwks_uri) : NULL;
        t.audience = src->audience ? strdup(src->audience) : NULL;
        if (!t.issuer || !t.jwks_uri || (src->audience && !t.audience))
                r = -ENOMEM;
        for (char **m = src->critical_subject_members; r >= 0 && m && *m; m++)
                r = strv_extend(&t.critical_subject_members, *m);
        if (r < 0) {
                transmitter_done(&t);
                return r;
        }
        t.jwks = TAKE_PTR(src->jwks);
        *ret = t;
        return 0;
}

void transmitter_done(Transmitter *t) {
        if (!t)
                return;
        free(t->issuer);
        free(t->jwks_uri);
        free(t->configuration_endpoint);
        free(t->status_endpoint);
        free(t->verification_endpoint);
        free(t->add_subject_endpoint);
        free(t->remove_subject_endpoint);
        json_decref(t->metadata);
        strv_free(t->critical_subject_members);
        jwks_free(t->jwks);
        erase_and_free(t->authorization);
        free(t->stream_id);
        free(t->endpoint_url);
        free(t->audience);
        json_decref(t->stream);
        memset(t, 0, sizeof(*t));
}

int stream_load_authorization(const TransmitterConfig *c, char **ret) {
        _cleanup_erase_free_ char *token = NULL;
        char *h;
        int r;

        if (c->auth != AUTH_BEARER) {
                /* none; oauth2: the header comes from oauth2_client_authorization(). */
                *ret = NULL;
                return 0;
        }
        r = secret_read_file(c->token_file, "token file", &token);
        if (r < 0)
                return r;
        if (asprintf(&h, "Bearer %s", token) < 0)
                return -ENOMEM;
        *ret = h;
        return 0;
}

static int is_https(const char *url) {
        return url && startswith(url, "https://") && strlen(url) > strlen("https://");
}

int stream_discovery_url(const TransmitterConfig *c, char **ret) {
        const char *rest, *slash;
        _cleanup_free_ char *issuer = NULL;
        size_t l;
        char *u;

        if (c->config_url) {
                u = strdup(c->config_url);
                if (!u)
                        return -ENOMEM;
                *ret = u;
                return 0;
        }
        if (!is_https(c->issuer))
                return -EINVAL;
        issuer = strdup(c->issuer);
        if (!issuer)
                return -ENOMEM;
        l = strlen(issuer);
        if (l > strlen("https://") + 1 && issuer[l - 1] == '/')
                issuer[l - 1] = 0;
        rest = issuer + strlen("https://");
        slash = strchr(rest, '/');
        if (!slash) {
                if (asprintf(&u, "%s/.well-known/ssf-configuration", issuer) < 0)
                        return -ENOMEM;
        } else if (asprintf(&u, "%.*s/.well-known/ssf-configuration%s",
                            (int) (slash - issuer), issuer, slash) < 0)
                return -ENOMEM;
        *ret = u;
        return 0;
}

int stream_parse_json(const char *body, size_t len, bool want_array, json_t **ret) {
        json_error_t e;
        json_t *j;

        if (!body || len == 0 || len > STREAM_MAX)
                return -EBADMSG;
        j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
        if (!j) {
                log_debug("Invalid JSON: %s at line %d", e.text, e.line);
                return -EBADMSG;
        }
        if (want_array ? !json_is_array(j) : !json_is_object(j)) {
                json_decref(j);
                return -EBADMSG;
        }
        *ret = j;
        return 0;
}

/* Parses a JSON response body: object (or array when want_array). */
static int parse_body(const HttpResponse *resp, bool want_array, json_t **ret) {
        return stream_parse_json(resp->body, resp->body_len, want_array, ret);
}

static int dup_https_member(json_t *o, const char *key, bool required, char **ret) {
        json_t *v = json_object_get(o, key); /* borrowed */
        const char *s;

        if (!v || json_is_null(v)) {
                if (required) {
                        log_error("Transmitter metadata lacks '%s'", key);
                        return -EBADMSG;
                }
                *ret = NULL;
                return 0;
        }
        s = json_string_value(v);
        if (!s || !is_https(s)) {
                log_error("Transmitter metadata member '%s' is not an https URL, refusing", key);
                return -EBADMSG;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

/* critical_subject_members (SSF §7.1): an array of at most CRITICAL_MEMBERS_MAX member names,
 * each 1..CRITICAL_MEMBER_NAME_MAX printable ASCII bytes without blanks. Absent, empty or
 * invalid: *ret = NULL (invalid is logged: the transmitter's critical members are unknown). */
static int parse_critical_members(json_t *md, char ***ret) {
        json_t *a = json_object_get(md, "critical_subject_members"), *e;
        _cleanup_strv_free_ char **l = NULL;
        size_t i;
        int r;

        *ret = NULL;
        if (!a || json_is_null(a))
                return 0;
        if (!json_is_array(a) || json_array_size(a) > CRITICAL_MEMBERS_MAX)
                goto invalid;
        json_array_foreach(a, i, e) {
                const char *s = json_string_value(e);
                size_t n = json_is_string(e) ? json_string_length(e) : 0;

                if (!s || n == 0 || n > CRITICAL_MEMBER_NAME_MAX || strlen(s) != n)
                        goto invalid;
                for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                        if (*p <= 0x20 || *p >= 0x7f)
                                goto invalid;
                if (strv_contains(l, s))
                        continue;
                r = strv_extend(&l, s);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
invalid:
        log_warning("Transmitter metadata member 'critical_subject_members' is not an array of at "
                    "most %u member names, ignoring it", CRITICAL_MEMBERS_MAX);
        return 0;
}

int stream_parse_metadata(json_t *md, const char *expected_issuer, Transmitter *t) {
        _cleanup_free_ char *issuer = NULL, *jwks_uri = NULL, *configuration_endpoint = NULL,
                            *status_endpoint = NULL, *verification_endpoint = NULL,
                            *add_subject_endpoint = NULL, *remove_subject_endpoint = NULL;
        _cleanup_strv_free_ char **critical = NULL;
        const char *iss;
        int r;

        if (!json_is_object(md))
                return -EBADMSG;
        iss = json_string_value(json_object_get(md, "issuer"));
        if (!iss || !is_https(iss)) {
                log_error("Transmitter metadata has no https issuer");
                return -EBADMSG;
        }
        /* SSF §7.2.4: the issuer must be identical to the one we used. */
        if (expected_issuer && !streq(iss, expected_issuer)) {
                log_error("Transmitter metadata issuer '%s' differs from the issuer '%s' (configured, "
                          "or the one config_url stands for), refusing", iss, expected_issuer);
                return -EPROTO;
        }
        issuer = strdup(iss);
        if (!issuer)
                return -ENOMEM;
        r = dup_https_member(md, "jwks_uri", true, &jwks_uri);
        if (r < 0)
                return r;
        r = dup_https_member(md, "configuration_endpoint", false, &configuration_endpoint);
        if (r < 0)
                return r;
        r = dup_https_member(md, "status_endpoint", false, &status_endpoint);
        if (r < 0)
                return r;
        r = dup_https_member(md, "verification_endpoint", false, &verification_endpoint);
        if (r < 0)
                return r;
        r = dup_https_member(md, "add_subject_endpoint", false, &add_subject_endpoint);
        if (r < 0)
                return r;
        r = dup_https_member(md, "remove_subject_endpoint", false, &remove_subject_endpoint);
        if (r < 0)
                return r;
        r = parse_critical_members(md, &critical);
        if (r < 0)
                return r;

        free(t->issuer);
        t->issuer = TAKE_PTR(issuer);
        free(t->jwks_uri);
        t->jwks_uri = TAKE_PTR(jwks_uri);
        free(t->configuration_endpoint);
        t->configuration_endpoint = TAKE_PTR(configuration_endpoint);
        free(t->status_endpoint);
        t->status_endpoint = TAKE_PTR(status_endpoint);
        free(t->verification_endpoint);
        t->verification_endpoint = TAKE_PTR(verification_endpoint);
        free(t->add_subject_endpoint);
        t->add_subject_endpoint = TAKE_PTR(add_subject_endpoint);
        free(t->remove_subject_endpoint);
        t->remove_subject_endpoint = TAKE_PTR(remove_subject_endpoint);
        strv_free(t->critical_subject_members);
        t->critical_subject_members = TAKE_PTR(critical);
        json_decref(t->metadata);
        t->metadata = json_incref(md);
        return 0;
}

int stream_static(const TransmitterConfig *c, Transmitter *t) {
        if (!c->issuer || !c->jwks_uri || !c->audience || !c->push_url)
                return -EINVAL;
        t->issuer = strdup(c->issuer);
        t->jwks_uri = strdup(c->jwks_uri);
        t->audience = strdup(c->audience);
        t->endpoint_url = strdup(c->push_url);
        if (!t->issuer || !t->jwks_uri || !t->audience || !t->endpoint_url)
                return -ENOMEM;
        return 0;
}

int stream_discover(HttpClient *http, const TransmitterConfig *c, Transmitter *t) {
        _cleanup_free_ char *url = NULL, *issuer = NULL;
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_(json_decrefp) json_t *md = NULL;
        int r;

        r = stream_discovery_url(c, &url);
        if (r < 0)
                return log_error_errno(r, "Cannot build the discovery URL from issuer '%s'",
                                       strempty(c->issuer));
        r = http_request(http, "GET", url, NULL, NULL, MGMT_TIMEOUT_USEC, METADATA_MAX, &resp);
        if (r == -ECANCELED)
                return r; /* asked to stop */
        if (r < 0)
                return log_error_errno(r, "Failed to fetch transmitter metadata from '%s': %m",
                                       url);
        if (resp.status != 200) {
                log_error("Transmitter metadata '%s' answered HTTP %ld", url, resp.status);
                return -EPROTO;
        }
        r = parse_body(&resp, false, &md);
        if (r < 0)
                return log_error_errno(r, "Transmitter metadata from '%s' is not a JSON object",
                                       url);
        /* Root accepts no other issuer than the configured one or the one config_url stands for
         * (config_transmitter_issuer(): I, or I + "/", SSF §7.2.4): neither does the worker. A
         * config_url of a vendor's own form stands for no issuer: the metadata's is taken. */
        r = config_transmitter_issuer(c, &issuer);
        if (r == -ENOMEM)
                return r;
        if (r >= 0 && !c->issuer) {
                const char *iss = json_string_value(json_object_get(md, "issuer"));

                if (iss && !config_issuer_spelling(issuer, iss)) {
                        log_error("Transmitter metadata issuer '%s' is neither '%s' nor '%s/', the "
                                  "issuer config_url '%s' stands for, refusing", iss, issuer, issuer,
                                  c->config_url);
                        return -EPROTO;
                }
                if (iss && !streq(iss, issuer)) {
                        free(issuer);
                        issuer = strdup(iss);
                        if (!issuer)
                                return -ENOMEM;
                }
        }
        r = stream_parse_metadata(md, issuer, t);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return log_error_errno(r, "Transmitter metadata from '%s' is unusable", url);
        log_info("Discovered transmitter '%s' (jwks '%s')", t->issuer, t->jwks_uri);
        for (char **m = t->critical_subject_members; m && *m; m++)
                log_info("Transmitter marks complex-subject member '%s' critical", *m);
        return 0;
}

int stream_fetch_jwks(HttpClient *http, Transmitter *t) {
        _cleanup_(http_response_done) HttpResponse resp = {};
        Jwks *j = NULL;
        struct timespec ts;
        int r;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        t->jwks_attempt_usec = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
        /* Not held back by a Retry-After of the transmitter: JWKS fetches have their own rate
         * limit (receive.c). */
        r = http_get_unheld(http, t->jwks_uri, MGMT_TIMEOUT_USEC, JWKS_MAX_SIZE, &resp);
        if (r == -ECANCELED)
                return r;
        if (r < 0)
                return log_error_errno(r, "Failed to fetch JWKS from '%s': %m", t->jwks_uri);
        if (resp.status != 200) {
                log_error("JWKS '%s' answered HTTP %ld", t->jwks_uri, resp.status);
                return -EPROTO;
        }
        r = jwks_parse(resp.body ? resp.body : "", resp.body_len, &j);
        if (r < 0)
                return log_error_errno(r, "JWKS from '%s' is unusable: %m", t->jwks_uri);
        jwks_free(t->jwks);
        t->jwks = j;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t->jwks_fetched_usec = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
        log_info("Loaded %zu signing key(s) from '%s'", jwks_count(j), t->jwks_uri);
        return 0;
}

static bool delivery_is_poll(json_t *stream) {
        const char *m = json_string_value(json_object_get(json_object_get(stream, "delivery"),
                                                          "method"));
        return m && (streq(m, SSF_DELIVERY_POLL) ||
                     streq(m, "https://schemas.openid.net/secevent/risc/delivery-method/poll") ||
                     streq(m, "https://schemas.openid.net/secevent/sse/delivery-method/poll"));
}

static bool delivery_is_push(json_t *stream) {
        const char *m = json_string_value(json_object_get(json_object_get(stream, "delivery"),
                                                          "method"));
        return m && (streq(m, SSF_DELIVERY_PUSH) ||
                     streq(m, "https://schemas.openid.net/secevent/risc/delivery-method/push") ||
                     streq(m, "https://schemas.openid.net/secevent/sse/delivery-method/push"));
}

/* Whether stream delivers the way c asks: poll, or push to our push_url. */
static bool delivery_usable(const TransmitterConfig *c, json_t *stream) {
        const char *url;

        if (c->delivery != DELIVERY_PUSH)
                return delivery_is_poll(stream);
        url = json_string_value(json_object_get(json_object_get(stream, "delivery"),
                                                "endpoint_url"));
        return delivery_is_push(stream) && streq_ptr(url, c->push_url);
}

/* Whether stream certainly carries our delivery: usable, and for push the transmitter shows
 * the authorization_header we registered (one that does not show it is updated, since we
 * cannot know which secret it holds). */
static bool delivery_current(const TransmitterConfig *c, json_t *stream, const char *push_authorization) {
        const char *h;

        if (!delivery_usable(c, stream))
                return false;
        if (c->delivery != DELIVERY_PUSH)
                return true;
        h = json_string_value(json_object_get(json_object_get(stream, "delivery"),
                                              "authorization_header"));
        return push_authorization && streq_ptr(h, push_authorization);
}

/* The delivery object we ask for. The push one carries the secret: never log it. */
static json_t *delivery_wanted(const TransmitterConfig *c, const char *push_authorization) {
        if (c->delivery != DELIVERY_PUSH)
                return json_pack("{s:s}", "method", SSF_DELIVERY_POLL);
        if (!push_authorization)
                return NULL;
        return json_pack("{s:s, s:s, s:s}", "method", SSF_DELIVERY_PUSH, "endpoint_url",
                         c->push_url, "authorization_header", push_authorization);
}

/* A transmitter-supplied number of seconds: a positive integer up to a year, else 0 (absent,
 * or nothing to act on). */
static uint64_t json_seconds(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);

        if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
            json_integer_value(v) > 366 * 24 * 3600)
                return 0;
        return (uint64_t) json_integer_value(v);
}

static bool aud_contains(json_t *aud, const char *want) {
        size_t i;
        json_t *v;

        if (json_is_string(aud))
                return streq(json_string_value(aud), want);
        json_array_foreach(aud, i, v)
                if (json_is_string(v) && streq(json_string_value(v), want))
                        return true;
        return false;
}

int stream_adopt(const TransmitterConfig *c, Transmitter *t, json_t *s) {
        const char *id, *iss, *url;
        json_t *aud;

        id = json_string_value(json_object_get(s, "stream_id"));
        iss = json_string_value(json_object_get(s, "iss"));
        url = json_string_value(json_object_get(json_object_get(s, "delivery"), "endpoint_url"));
        aud = json_object_get(s, "aud");
        if (!json_is_object(s) || isempty(id) || strlen(id) > 256) {
                log_error("Stream configuration has no usable stream_id");
                return -EBADMSG;
        }
        for (const unsigned char *p = (const unsigned char *) id; *p; p++)
                if (*p < 0x20 || *p == 0x7f) {
                        log_error("Stream configuration has a stream_id with control characters");
                        return -EBADMSG;
                }
        if (!iss || !streq_ptr(iss, t->issuer)) {
                log_error("Stream '%s' has iss '%s', expected '%s', refusing", id, strempty(iss),
                          strempty(t->issuer));
                return -EPROTO;
        }
        if (!delivery_usable(c, s)) {
                if (c->delivery == DELIVERY_PUSH)
                        log_error("Stream '%s' does not use push delivery (%s) to '%s'", id,
                                  SSF_DELIVERY_PUSH, c->push_url);
                else
                        log_error("Stream '%s' does not use poll delivery (%s)", id,
                                  SSF_DELIVERY_POLL);
                return -EPROTO;
        }
        if (!is_https(url)) {
                log_error("Stream '%s' has no https endpoint_url, refusing", id);
                return -EPROTO;
        }
        if (c->audience) {
                if (aud && !aud_contains(aud, c->audience)) {
                        log_error("Stream '%s' aud does not contain the configured audience "
                                  "'%s', refusing", id, c->audience);
                        return -EPROTO;
                }
                free(t->audience);
                t->audience = strdup(c->audience);
        } else {
                const char *a = json_is_string(aud) ? json_string_value(aud)
                                                    : json_string_value(json_array_get(aud, 0));
                if (!a) {
                        log_error("Stream '%s' has no aud and no audience is configured", id);
                        return -EPROTO;
                }
                free(t->audience);
                t->audience = strdup(a);
        }
        free(t->stream_id);
        free(t->endpoint_url);
        t->stream_id = strdup(id);
        t->endpoint_url = strdup(url);
        if (!t->stream_id || !t->endpoint_url || !t->audience)
                return -ENOMEM;
        t->min_verification_interval = json_seconds(s, "min_verification_interval");
        t->inactivity_timeout_usec = json_seconds(s, "inactivity_timeout") * 1000000u;
        json_decref(t->stream);
        t->stream = json_incref(s); /* new reference kept in t */
        return 0;
}

static int mgmt_call(HttpClient *http, const Transmitter *t, const char *method, const char *url,
                     json_t *body, HttpResponse *resp) {
        _cleanup_free_ char *text = NULL;

        if (body) {
                text = json_dumps(body, JSON_COMPACT);
                if (!text)
                        return -ENOMEM;
        }
        return http_request(http, method, url, t->authorization, text, MGMT_TIMEOUT_USEC,
                            STREAM_MAX, resp);
}

int stream_id_url(const char *endpoint, const char *id, char **ret) {
        static const char hex[] = "0123456789ABCDEF";
        const char *sep = strchr(endpoint, '?') ? "&" : "?";
        size_t n = strlen(endpoint);
        char *out = malloc(n + strlen("?stream_id=") + strlen(id) * 3 + 1), *o = out;

        if (!out)
                return -ENOMEM;
        o = stpcpy(stpcpy(stpcpy(o, endpoint), sep), "stream_id=");
        for (const unsigned char *p = (const unsigned char *) id; *p; p++)
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || strchr("-._~", *p))
                        *o++ = (char) *p;
                else {
                        *o++ = '%';
                        *o++ = hex[*p >> 4];
                        *o++ = hex[*p & 15];
                }
        *o = 0;
        *ret = out;
        return 0;
}

/* GET endpoint?stream_id=id: a JSON object, -ENOENT (404), -EACCES (401/403) or -EPROTO. */
static int stream_get_object(HttpClient *http, const Transmitter *t, const char *endpoint,
                             const char *id, json_t **ret) {
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_free_ char *url = NULL;
        int r;

        r = stream_id_url(endpoint, id, &url);
        if (r < 0)
                return r;
        r = mgmt_call(http, t, "GET", url, NULL, &resp);
        if (r < 0)
                return r;
        if (resp.status == 404)
                return -ENOENT;
        if (resp.status == 401 || resp.status == 403)
                return -EACCES;
        if (resp.status != 200)
                return -EPROTO;
        return parse_body(&resp, false, ret);
}

static int stream_get(HttpClient *http, const Transmitter *t, const char *id, json_t **ret) {
        return stream_get_object(http, t, t->configuration_endpoint, id, ret);
}

int stream_read_config(HttpClient *http, const Transmitter *t) {
        _cleanup_(json_decrefp) json_t *o = NULL;

        if (!t->stream_id)
                return -ENOENT;
        return stream_get(http, t, t->stream_id, &o);
}

int stream_parse_status(json_t *o, char **ret_status, char **ret_reason) {
        const char *status, *reason;

        status = json_string_value(json_object_get(o, "status"));
        reason = json_string_value(json_object_get(o, "reason"));
        if (!status || (!streq(status, "enabled") && !streq(status, "paused") &&
                        !streq(status, "disabled")))
                return -EBADMSG;
        if (reason && (strlen(reason) > 256 || strpbrk(reason, "\r\n\t")))
                reason = NULL; /* not worth refusing the status over */
        *ret_status = strdup(status);
        *ret_reason = reason ? strdup(reason) : NULL;
        if (!*ret_status || (reason && !*ret_reason)) {
                *ret_status = mfree(*ret_status);
                *ret_reason = mfree(*ret_reason);
                return -ENOMEM;
        }
        return 0;
}

int stream_read_status(HttpClient *http, const Transmitter *t, char **ret_status,
                       char **ret_reason) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        int r;

        if (!t->status_endpoint || !t->stream_id)
                return -EOPNOTSUPP;
        r = stream_get_object(http, t, t->status_endpoint, t->stream_id, &o);
        if (r < 0)
                return r;
        return stream_parse_status(o, ret_status, ret_reason);
}

static int remember_stream(Link *m, const char *id) {
        return link_kv_set(m, "stream_id", id);
}

/* Whether stream asks for the events c configures (events_requested, as sets). A stream that
 * does not show what it requested cannot be compared: it is taken as it is. */
static bool events_current(const TransmitterConfig *c, json_t *stream) {
        _cleanup_(json_decrefp) json_t *want = stream_events_requested(c->events);
        json_t *have = json_object_get(stream, "events_requested"), *v;
        size_t i, n = 0;

        if (!want || !json_is_array(have))
                return true;
        json_array_foreach(have, i, v) {
                bool found = false;
                size_t j;
                json_t *w;

                json_array_foreach(want, j, w)
                        if (json_equal(v, w))
                                found = true;
                if (!found)
                        return false;
                n++;
        }
        return n == json_array_size(want);
}

/* Makes the existing stream *s deliver the way we want and ask for the configured events:
 * SSF §8.1.1.3 PATCH with stream_id, delivery and events_requested; a transmitter that does not
 * support PATCH (405, 501) gets the whole receiver-supplied configuration by PUT (SSF §8.1.1.4:
 * delivery, events_requested, description). *s is replaced by the updated configuration. */
static int update_stream(HttpClient *http, const TransmitterConfig *c, const Transmitter *t,
                         const char *push_authorization, json_t **s) {
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_(json_decrefp) json_t *req = NULL, *updated = NULL;
        const char *id = json_string_value(json_object_get(*s, "stream_id"));
        const char *method = "PATCH";
        json_t *delivery, *events;
        int r;

        if (isempty(id))
                return -EBADMSG;
        delivery = delivery_wanted(c, push_authorization);
        events = stream_events_requested(c->events);
        if (!delivery || !events) {
                json_decref(delivery);
                json_decref(events);
                return -ENOMEM;
        }
        req = json_pack("{s:s, s:o, s:o}", "stream_id", id, "delivery", delivery,
                        "events_requested", events);
        if (!req)
                return -ENOMEM;
        r = mgmt_call(http, t, method, t->configuration_endpoint, req, &resp);
        if (r >= 0 && (resp.status == 405 || resp.status == 501)) {
                json_t *desc = json_object_get(*s, "description");

                if (json_is_string(desc))
                        (void) json_object_set(req, "description", desc);
                http_response_done(&resp);
                method = "PUT";
                log_info("Transmitter does not support PATCH, replacing the configuration of "
                         "stream '%s' (PUT)", id);
                r = mgmt_call(http, t, method, t->configuration_endpoint, req, &resp);
        }
        if (r == -ECANCELED)
                return r;
        if (r < 0)
                return log_error_errno(r, "Failed to update stream '%s': %m", id);
        if (resp.status == 401 || resp.status == 403) {
                log_error("Transmitter refused our credentials (HTTP %ld) updating stream '%s'",
                          resp.status, id);
                return -EACCES;
        }
        if (resp.status == 202) /* accepted, not yet processed: read it back */
                r = stream_get(http, t, id, &updated);
        else if (resp.status == 200)
                r = parse_body(&resp, false, &updated);
        else {
                char answer[STREAM_ANSWER_EXCERPT + 32];

                stream_describe_answer(&resp, answer, sizeof(answer));
                log_error("Updating stream '%s' (%s) answered %s", id, method, answer);
                return resp.status == 404 ? -ENOENT : -EPROTO;
        }
        if (r < 0)
                return log_error_errno(r, "Cannot read stream '%s' after updating it: %m", id);
        if (!delivery_usable(c, updated)) {
                log_error("Stream '%s' still does not deliver as configured after the update", id);
                return -EPROTO;
        }
        log_info("Updated stream '%s' (%s): %s delivery, the configured events", id, method,
                 c->delivery == DELIVERY_PUSH ? SSF_DELIVERY_PUSH : SSF_DELIVERY_POLL);
        json_decref(*s);
        *s = TAKE_PTR(updated);
        return 0;
}

/* The stream we just created answered with a configuration we refuse (stream_adopt()): it is
 * deleted, so that retrying the setup does not leave one unused stream behind per attempt (a
 * transmitter may cap the streams per client). Best effort; s is the create answer. */
static void stream_delete_refused(HttpClient *http, const Transmitter *t, json_t *s) {
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_free_ char *url = NULL;
        const char *id = json_string_value(json_object_get(s, "stream_id"));

        if (isempty(id) || strlen(id) > 256 || stream_id_url(t->configuration_endpoint, id, &url) < 0)
                return;
        if (mgmt_call(http, t, "DELETE", url, NULL, &resp) < 0 ||
            (resp.status != 200 && resp.status != 202 && resp.status != 204))
                log_warning("Could not delete the refused stream at the transmitter (HTTP %ld)",
                            resp.status);
        else
                log_notice("Deleted the refused stream at the transmitter");
}

int stream_ensure(HttpClient *http, Link *m, const TransmitterConfig *c, Transmitter *t,
                  const char *push_authorization) {
        _cleanup_free_ char *remembered = NULL;
        _cleanup_(json_decrefp) json_t *s = NULL, *req = NULL, *events = NULL;
        _cleanup_(http_response_done) HttpResponse resp = {};
        const bool push = c->delivery == DELIVERY_PUSH;
        const char *want, *how = push ? "push" : "poll";
        char host[256] = "", desc[320];
        json_t *delivery;
        int r;

        if (!t->configuration_endpoint) {
                log_error("Transmitter '%s' publishes no configuration_endpoint; set stream_id "
                          "is not enough without it", t->issuer);
                return -EPROTO;
        }
        if (push && !push_authorization)
                return -EINVAL;

        r = link_kv_get(m, "stream_id", &remembered);
        if (r < 0 && r != -ENOENT)
                return r;

        want = c->stream_id ? c->stream_id : remembered;
        if (want) {
                r = stream_get(http, t, want, &s);
                if (r == -ECANCELED)
                        return r;
                if (r == -ENOENT && !c->stream_id) {
                        log_warning("Remembered stream '%s' no longer exists, creating a new one",
                                    want);
                } else if (r < 0)
                        return log_error_errno(r, "Failed to read stream '%s': %m", want);
                else {
                        /* A push stream must carry our endpoint and secret. */
                        if (push && !delivery_current(c, s, push_authorization)) {
                                r = update_stream(http, c, t, push_authorization, &s);
                                if (r < 0 && (c->stream_id || (r != -EPROTO && r != -ENOENT)))
                                        return r;
                        } else if (!events_current(c, s)) {
                                /* Other events configured than the stream asks for: update it,
                                 * else keep it as it is (its events still arrive). */
                                r = update_stream(http, c, t, push_authorization, &s);
                                if (r == -ECANCELED)
                                        return r;
                                if (r < 0)
                                        log_warning("Stream '%s' keeps the events it asked for "
                                                    "before", want);
                                r = 0;
                        } else
                                r = 0;
                        if (r >= 0) {
                                r = stream_adopt(c, t, s);
                                if (r < 0)
                                        return r;
                                log_info("Using stream '%s' (%s endpoint '%s')", t->stream_id,
                                         how, t->endpoint_url);
                                return remember_stream(m, t->stream_id);
                        }
                        log_warning("Stream '%s' cannot be switched to push delivery, creating a "
                                    "new one", want);
                        json_decref(s);
                        s = NULL;
                }
        }

        /* Create a stream asking for the configured events. */
        events = stream_events_requested(c->events);
        if (!events)
                return -ENOMEM;

        (void) gethostname(host, sizeof(host) - 1);
        (void) snprintf(desc, sizeof(desc), "ssf-sessiond on %s", host);
        delivery = delivery_wanted(c, push_authorization);
        if (!delivery)
                return -ENOMEM;
        req = json_pack("{s:o, s:O, s:s}", "delivery", delivery, "events_requested", events,
                        "description", desc);
        if (!req)
                return -ENOMEM;
        r = mgmt_call(http, t, "POST", t->configuration_endpoint, req, &resp);
        if (r == -ECANCELED)
                return r;
        if (r < 0)
                return log_error_errno(r, "Failed to create a stream at '%s': %m",
                                       t->configuration_endpoint);
        if (resp.status == 409) {
                /* One stream per receiver and it exists: list and reuse one that delivers the
                 * way we want (push: after registering our endpoint and secret on it). */
                _cleanup_(http_response_done) HttpResponse list = {};
                _cleanup_(json_decrefp) json_t *arr = NULL;
                size_t i;
                json_t *v;

                r = mgmt_call(http, t, "GET", t->configuration_endpoint, NULL, &list);
                if (r < 0 || list.status != 200 || parse_body(&list, true, &arr) < 0) {
                        log_error("Transmitter refused a new stream (409) and its streams cannot "
                                  "be listed");
                        return -EPROTO;
                }
                json_array_foreach(arr, i, v) {
                        json_t *cand = json_incref(v);

                        if (push && !delivery_current(c, cand, push_authorization) &&
                            update_stream(http, c, t, push_authorization, &cand) < 0) {
                                json_decref(cand);
                                continue;
                        }
                        r = delivery_usable(c, cand) ? stream_adopt(c, t, cand) : -EPROTO;
                        json_decref(cand);
                        if (r >= 0) {
                                log_info("Reusing existing stream '%s'", t->stream_id);
                                return remember_stream(m, t->stream_id);
                        }
                }
                log_error("Transmitter has a stream for us but none with %s delivery", how);
                return -EPROTO;
        }
        if (resp.status == 401 || resp.status == 403) {
                log_error("Transmitter refused our credentials (HTTP %ld) creating a stream",
                          resp.status);
                return -EACCES;
        }
        if (resp.status != 201 && resp.status != 200) {
                log_error("Creating a stream at '%s' answered HTTP %ld",
                          t->configuration_endpoint, resp.status);
                return -EPROTO;
        }
        r = parse_body(&resp, false, &s);
        if (r < 0)
                return log_error_errno(r, "Stream creation answer is not a JSON object");
        r = stream_adopt(c, t, s);
        if (r < 0) {
                stream_delete_refused(http, t, s);
                return r;
        }
        log_info("Created stream '%s' (%s endpoint '%s')", t->stream_id, how, t->endpoint_url);
        return remember_stream(m, t->stream_id);
}

int stream_request_verification(HttpClient *http, const Transmitter *t, const char *state) {
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_(json_decrefp) json_t *req = NULL;
        int r;

        if (!t->verification_endpoint)
                return -EOPNOTSUPP;
        req = json_pack("{s:s, s:s}", "stream_id", t->stream_id, "state", state);
        if (!req)
                return -ENOMEM;
        r = mgmt_call(http, t, "POST", t->verification_endpoint, req, &resp);
        if (r < 0)
                return r;
        if (resp.status == 429)
                return -EBUSY;
        if (resp.status == 401 || resp.status == 403)
                return -EACCES;
        if (resp.status != 204 && resp.status != 200 && resp.status != 202)
                return -EPROTO;
        return 0;
}

/* ---- administration (ssfctl stream …, ssfctl subjects …) ------------------------------------ */

void stream_describe_answer(const HttpResponse *resp, char *buf, size_t size) {
        size_t n = 0, len = resp->body ? resp->body_len : 0;
        char excerpt[STREAM_ANSWER_EXCERPT + 4];

        /* The body as text, bounded, control characters (and what is not ASCII) replaced. */
        for (size_t i = 0; i < len && n < STREAM_ANSWER_EXCERPT; i++) {
                unsigned char ch = (unsigned char) resp->body[i];

                excerpt[n++] = ch == '\n' || ch == '\r' || ch == '\t' ? ' '
                               : ch < 0x20 || ch >= 0x7f ? '?' : (char) ch;
        }
        if (len > STREAM_ANSWER_EXCERPT) {
                memcpy(excerpt + n, "...", 3);
                n += 3;
        }
        excerpt[n] = 0;
        (void) snprintf(buf, size, "HTTP %ld%s%s", resp->status, n ? ": " : "", excerpt);
}

/* One management call whose outcome an admin reads: 0 when the answer is one of ok (a
 * 0-terminated list of statuses), else -EACCES (401/403), -ENOENT (404), -EBUSY (429),
 * -EOPNOTSUPP (405/501) or -EPROTO, with what the transmitter answered in msg; or the
 * transport's -errno (msg says so). *resp keeps the answer. */
static int admin_call(HttpClient *http, const Transmitter *t, const char *method,
                      const char *url, json_t *body, const long *ok, HttpResponse *resp,
                      char *msg, size_t size) {
        int r;

        r = mgmt_call(http, t, method, url, body, resp);
        if (r == -EBUSY) {
                (void) snprintf(msg, size, "not sent: the transmitter asked us to retry later "
                                "(Retry-After), %llu s from now",
                                (unsigned long long) ((http_client_hold_left(http) + 999999u) / 1000000u));
                return r;
        }
        if (r < 0) {
                (void) snprintf(msg, size, "%s %s failed: %s", method, url, strerror(-r));
                return r;
        }
        for (const long *o = ok; *o; o++)
                if (resp->status == *o) {
                        stream_describe_answer(resp, msg, size);
                        return 0;
                }
        {
                char answer[STREAM_ANSWER_EXCERPT + 32];

                stream_describe_answer(resp, answer, sizeof(answer));
                (void) snprintf(msg, size, "the transmitter answered %s", answer);
        }
        switch (resp->status) {
        case 401:
        case 403:
                return -EACCES;
        case 404:
                return -ENOENT;
        case 429:
                return -EBUSY;
        case 405:
        case 501:
                return -EOPNOTSUPP;
        default:
                return -EPROTO;
        }
}

int stream_update_status(HttpClient *http, const Transmitter *t, const char *status,
                         const char *reason, char **ret_status, char *msg, size_t size) {
        static const long ok[] = { 200, 202, 204, 0 };
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_(json_decrefp) json_t *req = NULL, *o = NULL;
        _cleanup_free_ char *reason_now = NULL;
        int r;

        *ret_status = NULL;
        if (!t->status_endpoint) {
                (void) snprintf(msg, size, "the transmitter publishes no status_endpoint");
                return -EOPNOTSUPP;
        }
        req = json_pack("{s:s, s:s}", "stream_id", t->stream_id, "status", status);
        if (!req || (reason && json_object_set_new(req, "reason", json_string(reason)) < 0))
                return -ENOMEM;
        r = admin_call(http, t, "POST", t->status_endpoint, req, ok, &resp, msg, size);
        if (r < 0)
                return r;
        /* 200 carries the status now in force (SSF §8.1.2.2); 202/204: as asked, not yet. */
        if (resp.status == 200 && parse_body(&resp, false, &o) >= 0 &&
            stream_parse_status(o, ret_status, &reason_now) >= 0)
                (void) snprintf(msg, size, "the transmitter reports the stream %s", *ret_status);
        else
                (void) snprintf(msg, size, "the transmitter accepted the status %s (HTTP %ld)",
                                status, resp.status);
        return 0;
}

int stream_delete(HttpClient *http, const Transmitter *t, char *msg, size_t size) {
        static const long ok[] = { 200, 202, 204, 0 };
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_free_ char *url = NULL;
        int r;

        if (!t->configuration_endpoint || !t->stream_id) {
                (void) snprintf(msg, size, "no stream to delete");
                return -ENOENT;
        }
        r = stream_id_url(t->configuration_endpoint, t->stream_id, &url);
        if (r < 0)
                return r;
        r = admin_call(http, t, "DELETE", url, NULL, ok, &resp, msg, size);
        if (r < 0)
                return r;
        (void) snprintf(msg, size, "deleted stream %s at the transmitter", t->stream_id);
        return 0;
}

int stream_subject(HttpClient *http, const Transmitter *t, bool add, json_t *subject,
                   int verified, char *msg, size_t size) {
        static const long ok[] = { 200, 202, 204, 0 };
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_(json_decrefp) json_t *req = NULL;
        const char *url = add ? t->add_subject_endpoint : t->remove_subject_endpoint;
        int r;

        if (!url) {
                (void) snprintf(msg, size, "the transmitter publishes no %s_subject_endpoint",
                                add ? "add" : "remove");
                return -EOPNOTSUPP;
        }
        if (!t->stream_id) {
                (void) snprintf(msg, size, "no stream");
                return -ENOENT;
        }
        req = json_pack("{s:s, s:O}", "stream_id", t->stream_id, "subject", subject);
        if (!req || (add && verified >= 0 &&
                     json_object_set_new(req, "verified", json_boolean(verified)) < 0))
                return -ENOMEM;
        r = admin_call(http, t, "POST", url, req, ok, &resp, msg, size);
        if (r < 0)
                return r;
        (void) snprintf(msg, size, "%s (HTTP %ld)", add ? "added" : "removed", resp.status);
        return 0;
}
