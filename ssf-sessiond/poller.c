/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "engine.h"
#include "http.h"
#include "log.h"
#include "macro.h"
#include "poller.h"
#include "set.h"
#include "stream.h"

#define POLL_RESPONSE_MAX (8u * 1024u * 1024u)
#define POLL_MARGIN_USEC (10u * 1000000u)
#define BACKOFF_MIN_USEC (1u * 1000000u)
#define BACKOFF_MAX_USEC (60u * 1000000u)
#define JWKS_REFRESH_MIN_USEC (30u * 1000000u)
#define MAX_PENDING 4096u

DEFINE_TRIVIAL_CLEANUP_FUNC(SsfSet *, ssf_set_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpClient *, http_client_free);

static uint64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

typedef struct Poller {
        Manager *m;
        HttpClient *http;
        Transmitter t;
        bool ready;
        json_t *acks;  /* array of jti */
        json_t *errs;  /* object jti -> {err, description} */
        uint64_t backoff;
} Poller;

static void facts_set(char **field, const char *value) {
        free(*field);
        *field = value ? strdup(value) : NULL;
}

static void publish_stream(Poller *p, const char *status, const char *error) {
        Manager *m = p->m;
        _cleanup_free_ char *cfg = NULL, *ev = NULL;

        if (p->t.stream) {
                cfg = json_dumps(p->t.stream, JSON_COMPACT);
                ev = json_dumps(json_object_get(p->t.stream, "events_delivered"),
                                JSON_COMPACT | JSON_ENCODE_ANY);
        }
        pthread_mutex_lock(&m->lock);
        facts_set(&m->stream.stream_id, p->t.stream_id);
        facts_set(&m->stream.issuer, p->t.issuer);
        facts_set(&m->stream.endpoint_url, p->t.endpoint_url);
        facts_set(&m->stream.audience, p->t.audience);
        facts_set(&m->stream.delivery, "urn:ietf:rfc:8936");
        facts_set(&m->stream.verification_endpoint, p->t.verification_endpoint);
        if (cfg) {
                free(m->stream.config_json);
                m->stream.config_json = TAKE_PTR(cfg);
        }
        if (ev) {
                free(m->stream.events_delivered_json);
                m->stream.events_delivered_json = TAKE_PTR(ev);
        }
        if (status)
                facts_set(&m->stream.status, status);
        facts_set(&m->stream.last_error, error);
        pthread_mutex_unlock(&m->lock);
}

static int poller_setup(Poller *p) {
        ConfigHandle *h = manager_config_ref(p->m);
        const Config *c = h->config;
        int r;

        transmitter_done(&p->t);
        p->ready = false;

        r = stream_load_authorization(c, &p->t.authorization);
        if (r >= 0)
                r = stream_discover(p->http, c, &p->t);
        if (r >= 0)
                r = stream_fetch_jwks(p->http, &p->t);
        if (r >= 0)
                r = stream_ensure(p->http, p->m, c, &p->t);
        manager_config_unref(p->m, h);
        if (r < 0) {
                char e[256];
                (void) snprintf(e, sizeof(e), "stream setup failed: %s", strerror(-r));
                publish_stream(p, "error", e);
                return r;
        }
        p->ready = true;
        publish_stream(p, "enabled", NULL);
        {
                char f_iss[512], f_stream[300], msg[600];

                (void) snprintf(f_iss, sizeof(f_iss), "SSF_ISS=%s", p->t.issuer);
                (void) snprintf(f_stream, sizeof(f_stream), "SSF_STREAM=%s", p->t.stream_id);
                (void) snprintf(msg, sizeof(msg), "Receiving security events from '%s' by polling "
                                "stream '%s'", p->t.issuer, p->t.stream_id);
                log_struct(LOG_INFO, SSF_MESSAGE_STREAM, msg, f_iss, f_stream, NULL);
        }
        return 0;
}

/* Verifies one delivered SET and applies it. Adds its jti to acks or errs. */
static void poller_handle(Poller *p, const char *jti, json_t *value) {
        Manager *m = p->m;
        _cleanup_(ssf_set_freep) SsfSet *set = NULL;
        SetError err = {};
        SetExpect expect = {};
        const char *token = json_string_value(value);
        ConfigHandle *h;
        int r;

        h = manager_config_ref(m);
        expect.issuer = p->t.issuer;
        expect.audience = p->t.audience;
        expect.now_sec = now_sec();
        expect.max_skew_sec = h->config->max_clock_skew_usec / 1000000u;
        manager_config_unref(m, h);

        pthread_mutex_lock(&m->lock);
        m->counters.sets_received++;
        pthread_mutex_unlock(&m->lock);

        if (!token) {
                err.err = "invalid_request";
                (void) snprintf(err.description, sizeof(err.description),
                                "the SET is not a JSON string");
                r = -EBADMSG;
        } else {
                r = set_verify(token, strlen(token), p->t.jwks, &expect, jti, &set, &err);
                if (r == -ENOKEY && mono_usec() - p->t.jwks_fetched_usec > JWKS_REFRESH_MIN_USEC) {
                        /* Maybe the transmitter rotated its keys: refresh once and retry. */
                        log_info("No key for SET '%s', refreshing the JWKS", jti);
                        if (stream_fetch_jwks(p->http, &p->t) >= 0) {
                                memset(&err, 0, sizeof(err));
                                r = set_verify(token, strlen(token), p->t.jwks, &expect, jti,
                                               &set, &err);
                        }
                }
        }
        if (r >= 0) {
                memset(&err, 0, sizeof(err));
                r = engine_ingest(m, set, &err);
        }

        if (r >= 0 || r == -EALREADY) {
                json_array_append_new(p->acks, json_string(jti));
                return;
        }
        if (err.err) {
                char field_jti[300], field_err[64], field_desc[300];

                (void) snprintf(field_jti, sizeof(field_jti), "SSF_JTI=%s", jti);
                (void) snprintf(field_err, sizeof(field_err), "SSF_ERROR=%s", err.err);
                (void) snprintf(field_desc, sizeof(field_desc), "SSF_REASON=%s", err.description);
                log_struct(LOG_WARNING, SSF_MESSAGE_SET_REJECTED,
                           "Rejected a security event token", field_jti, field_err, field_desc,
                           NULL);
                json_object_set_new(p->errs, jti,
                                    json_pack("{s:s, s:s}", "err", err.err, "description",
                                              err.description));
                pthread_mutex_lock(&m->lock);
                m->counters.sets_rejected++;
                pthread_mutex_unlock(&m->lock);
                return;
        }
        /* Local failure: neither ack nor report; the transmitter delivers it again. */
        log_error_errno(r, "Could not record SET '%s', it will be delivered again: %m", jti);
}

static int poller_poll(Poller *p, bool immediately, bool *ret_more) {
        Manager *m = p->m;
        _cleanup_(json_decrefp) json_t *req = NULL, *resp_json = NULL;
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_free_ char *body = NULL;
        json_error_t jerr;
        ConfigHandle *h;
        unsigned max_events;
        uint64_t wait, timeout;
        size_t n_acks, n_errs;
        json_t *sets, *more;
        const char *jti;
        json_t *v;
        int r;

        h = manager_config_ref(m);
        max_events = h->config->poll_max_events;
        wait = h->config->poll_wait_usec;
        manager_config_unref(m, h);
        if (wait == 0)
                immediately = true;
        timeout = immediately ? POLL_MARGIN_USEC + 5000000u : wait + POLL_MARGIN_USEC;

        n_acks = json_array_size(p->acks);
        n_errs = json_object_size(p->errs);
        req = json_pack("{s:I, s:b}", "maxEvents", (json_int_t) max_events, "returnImmediately",
                        immediately);
        if (!req)
                return -ENOMEM;
        if (n_acks)
                json_object_set(req, "ack", p->acks);
        if (n_errs)
                json_object_set(req, "setErrs", p->errs);
        body = json_dumps(req, JSON_COMPACT);
        if (!body)
                return -ENOMEM;

        r = http_request(p->http, "POST", p->t.endpoint_url, p->t.authorization, body, timeout,
                         POLL_RESPONSE_MAX, &resp);
        pthread_mutex_lock(&m->lock);
        m->counters.polls++;
        m->stream.last_poll = now_sec();
        pthread_mutex_unlock(&m->lock);
        if (r == -ECANCELED && !m->stopping) {
                /* Interrupted on purpose (verification request, reload): poll again. */
                *ret_more = true;
                return 0;
        }
        if (r == -ETIMEDOUT && !immediately) {
                /* The transmitter held the long poll longer than we wait: nothing arrived. The
                 * acknowledgements may or may not have been seen; send them again. */
                log_debug("Long poll timed out without events");
                *ret_more = false;
                return 0;
        }
        if (r < 0)
                return log_warning_errno(r, "Poll request to '%s' failed: %m", p->t.endpoint_url);
        if (resp.status == 401 || resp.status == 403) {
                log_warning("Poll endpoint refused our credentials (HTTP %ld)", resp.status);
                return -EACCES;
        }
        if (resp.status == 404) {
                log_warning("Poll endpoint answered 404: the stream is gone");
                return -ENOENT;
        }
        if (resp.status != 200) {
                log_warning("Poll endpoint answered HTTP %ld", resp.status);
                return -EPROTO;
        }

        /* The transmitter has our acks and errors now. */
        pthread_mutex_lock(&m->lock);
        m->counters.sets_acknowledged += n_acks;
        m->stream.last_ok = now_sec();
        pthread_mutex_unlock(&m->lock);
        if (n_acks)
                log_debug("Acknowledged %zu SET(s)", n_acks);
        json_array_clear(p->acks);
        json_object_clear(p->errs);

        resp_json = resp.body ? json_loadb(resp.body, resp.body_len, JSON_REJECT_DUPLICATES, &jerr)
                              : NULL;
        if (!json_is_object(resp_json)) {
                log_warning("Poll response is not a JSON object");
                return -EBADMSG;
        }
        sets = json_object_get(resp_json, "sets");
        if (!json_is_object(sets)) {
                log_warning("Poll response has no \"sets\" object");
                return -EBADMSG;
        }
        more = json_object_get(resp_json, "moreAvailable");
        json_object_foreach(sets, jti, v) {
                if (p->m->stopping)
                        break;
                if (json_array_size(p->acks) + json_object_size(p->errs) >= MAX_PENDING)
                        break;
                poller_handle(p, jti, v);
        }
        *ret_more = json_is_true(more) || json_object_size(sets) > 0;
        return 0;
}

/* On shutdown: tell the transmitter what we committed (acknowledge-only request). */
static void poller_flush(Poller *p) {
        _cleanup_(json_decrefp) json_t *req = NULL;
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_free_ char *body = NULL;
        size_t n = json_array_size(p->acks);
        int r;

        _cleanup_(http_client_freep) HttpClient *http = NULL;
        ConfigHandle *h;

        if (!p->ready || (n == 0 && json_object_size(p->errs) == 0))
                return;
        /* A fresh client: the polling one was aborted by the stop request. */
        h = manager_config_ref(p->m);
        r = http_client_new(h->config->ca_file, &http);
        manager_config_unref(p->m, h);
        if (r < 0)
                return;
        req = json_pack("{s:i, s:b, s:O, s:O}", "maxEvents", 0, "returnImmediately", 1, "ack",
                        p->acks, "setErrs", p->errs);
        body = req ? json_dumps(req, JSON_COMPACT) : NULL;
        if (!body)
                return;
        r = http_request(http, "POST", p->t.endpoint_url, p->t.authorization, body, 2000000u,
                         POLL_RESPONSE_MAX, &resp);
        if (r < 0 || resp.status != 200)
                log_warning("Could not flush %zu acknowledgement(s) on shutdown; the transmitter "
                            "will deliver them again and they will be acknowledged as "
                            "duplicates", n);
        else {
                log_info("Flushed %zu acknowledgement(s)", n);
                pthread_mutex_lock(&p->m->lock);
                p->m->counters.sets_acknowledged += n;
                pthread_mutex_unlock(&p->m->lock);
        }
}

static void poller_maybe_verify(Poller *p) {
        Manager *m = p->m;
        _cleanup_free_ char *state = NULL;
        int r;

        pthread_mutex_lock(&m->lock);
        if (m->stream.verify_state && !m->stream.verify_received && !m->stream.verify_result)
                state = strdup(m->stream.verify_state);
        pthread_mutex_unlock(&m->lock);
        if (!state)
                return;
        r = stream_request_verification(p->http, &p->t, state);
        pthread_mutex_lock(&m->lock);
        if (r < 0) {
                char buf[128];
                (void) snprintf(buf, sizeof(buf), "verification request failed: %s",
                                r == -EBUSY ? "rate limited (429)" : strerror(-r));
                facts_set(&m->stream.verify_result, buf);
        } else
                facts_set(&m->stream.verify_result, "requested");
        pthread_mutex_unlock(&m->lock);
        if (r < 0)
                manager_wake(m);
}

void *poll_thread(void *userdata) {
        Poller p = { .m = userdata, .backoff = BACKOFF_MIN_USEC };
        Manager *m = p.m;
        bool more = false;
        int r;

        p.acks = json_array();
        p.errs = json_object();
        if (!p.acks || !p.errs)
                goto out;

        {
                ConfigHandle *h = manager_config_ref(m);
                r = http_client_new(h->config->ca_file, &p.http);
                manager_config_unref(m, h);
        }
        if (r < 0) {
                log_error_errno(r, "Cannot create the HTTPS client: %m");
                goto out;
        }
        pthread_mutex_lock(&m->lock);
        m->poll_http = p.http;
        pthread_mutex_unlock(&m->lock);

        while (!m->stopping) {
                uint64_t started;

                if (m->restream) {
                        m->restream = 0;
                        p.ready = false;
                }
                if (!p.ready) {
                        r = poller_setup(&p);
                        if (r < 0) {
                                log_warning("Transmitter not usable, retrying in %" PRIu64 " s",
                                            p.backoff / 1000000u);
                                if (manager_wait_stop(m, p.backoff))
                                        break;
                                p.backoff = MIN(p.backoff * 2, (uint64_t) BACKOFF_MAX_USEC);
                                continue;
                        }
                }

                poller_maybe_verify(&p);

                started = mono_usec();
                r = poller_poll(&p, more, &more);
                if (m->stopping)
                        break;
                if (r < 0) {
                        char e[160];

                        pthread_mutex_lock(&m->lock);
                        m->counters.poll_errors++;
                        pthread_mutex_unlock(&m->lock);
                        (void) snprintf(e, sizeof(e), "poll failed: %s", strerror(-r));
                        publish_stream(&p, NULL, e);
                        if (r == -ENOENT || r == -EACCES)
                                p.ready = false; /* stream gone or token changed: set up again */
                        more = false;
                        if (manager_wait_stop(m, p.backoff))
                                break;
                        p.backoff = MIN(p.backoff * 2, (uint64_t) BACKOFF_MAX_USEC);
                        continue;
                }
                p.backoff = BACKOFF_MIN_USEC;
                /* A transmitter that ignores long polling must not make us spin. */
                if (!more && mono_usec() - started < 1000000u &&
                    manager_wait_stop(m, 1000000u - (mono_usec() - started)))
                        break;
        }

        poller_flush(&p);
out:
        pthread_mutex_lock(&m->lock);
        m->poll_http = NULL;
        pthread_mutex_unlock(&m->lock);
        http_client_free(p.http);
        transmitter_done(&p.t);
        json_decref(p.acks);
        json_decref(p.errs);
        return NULL;
}
