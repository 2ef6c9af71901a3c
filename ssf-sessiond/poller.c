/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "http.h"
#include "link.h"
#include "log.h"
#include "macro.h"
#include "poller.h"
#include "receive.h"
#include "set.h"
#include "stream.h"

#define POLL_RESPONSE_MAX (8u * 1024u * 1024u)
#define POLL_MARGIN_USEC (10u * 1000000u)
#define BACKOFF_MIN_USEC (1u * 1000000u)
#define BACKOFF_MAX_USEC (60u * 1000000u)
#define MAX_PENDING 4096u

DEFINE_TRIVIAL_CLEANUP_FUNC(HttpClient *, http_client_free);

static uint64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static uint64_t wall_sec(void) {
        return (uint64_t) time(NULL);
}

typedef struct Poller {
        Link *link;
        const Config *c;
        HttpClient *http;
        Transmitter t;
        const char *authorization;
        OAuth2Client *oauth2; /* auth = oauth2 */
        bool auth_retried;    /* a 401 made us fetch a new token; the next one backs off */
        bool ready;
        json_t *acks;     /* array of jti */
        json_t *errs;     /* object jti -> {err, description} */
        json_t *counters; /* increments not yet sent to the daemon */
        uint64_t backoff;
} Poller;

static void count(Poller *p, const char *name, uint64_t n) {
        json_t *v = json_object_get(p->counters, name);
        json_object_set_new(p->counters, name,
                            json_integer((v ? json_integer_value(v) : 0) + (json_int_t) n));
}

static json_t *jstr(const char *s) {
        return s ? json_string(s) : json_null();
}

/* Sends the stream facts (when status is not NULL) and the counter increments. */
static void publish(Poller *p, const char *status, const char *error, bool polled) {
        json_t *stream = NULL;

        if (status || error || polled) {
                stream = json_pack("{s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o}",
                                   "stream_id", jstr(p->t.stream_id),
                                   "issuer", jstr(p->t.issuer),
                                   "endpoint_url", jstr(p->t.endpoint_url),
                                   "audience", jstr(p->t.audience),
                                   "verification_endpoint", jstr(p->t.verification_endpoint),
                                   "delivery", "urn:ietf:rfc:8936",
                                   "status", jstr(status),
                                   "last_error", jstr(error));
                if (stream && p->t.stream)
                        json_object_set(stream, "config", p->t.stream);
                if (stream && polled)
                        json_object_set_new(stream, "last_poll", json_integer((json_int_t) wall_sec()));
        }
        link_facts(p->link, stream, json_object_size(p->counters) ? p->counters : NULL);
        json_object_clear(p->counters);
        json_decref(stream);
}

/* auth = oauth2: a new access token when none is cached or it is about to expire. */
static int poller_refresh_token(Poller *p) {
        char *a = NULL;
        int r;

        if (!p->oauth2 || !oauth2_client_needs_refresh(p->oauth2))
                return 0;
        r = oauth2_client_authorization(p->oauth2, p->http, &a);
        if (r < 0)
                return r;
        erase_and_free(p->t.authorization);
        p->t.authorization = a;
        return 0;
}

static int poller_setup(Poller *p) {
        int r = 0;

        transmitter_done(&p->t);
        p->ready = false;

        if (p->authorization) {
                p->t.authorization = strdup(p->authorization);
                if (!p->t.authorization)
                        return -ENOMEM;
        }
        if (p->oauth2)
                r = oauth2_client_authorization(p->oauth2, p->http, &p->t.authorization);
        if (r >= 0)
                r = stream_discover(p->http, p->c, &p->t);
        if (r >= 0)
                r = stream_fetch_jwks(p->http, &p->t);
        if (r >= 0)
                r = stream_ensure(p->http, p->link, p->c, &p->t, NULL);
        if (r == -EACCES && p->oauth2)
                oauth2_client_invalidate(p->oauth2); /* refused: a new token next time */
        if (r < 0) {
                char e[256];
                if (r == -ECANCELED)
                        return r;
                (void) snprintf(e, sizeof(e), "stream setup failed: %s", strerror(-r));
                publish(p, "error", e, false);
                return r;
        }
        p->ready = true;
        publish(p, "enabled", NULL, false);
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

/* Verifies one delivered SET, has the daemon apply it, and adds its jti to acks or errs. */
static void poller_handle(Poller *p, const char *jti, json_t *value) {
        SetError err = {};
        const char *token = json_string_value(value);
        int r;

        count(p, "sets_received", 1);
        if (!token) {
                err.err = "invalid_request";
                (void) snprintf(err.description, sizeof(err.description),
                                "the SET is not a JSON string");
                receive_log_rejected(jti, &err);
                r = -EBADMSG;
        } else
                r = receive_set(p->link, p->http, &p->t, token, strlen(token), jti, &err);

        if (r >= 0 || r == -EALREADY) {
                json_array_append_new(p->acks, json_string(jti));
                return;
        }
        if (err.err) {
                json_object_set_new(p->errs, jti,
                                    json_pack("{s:s, s:s}", "err", err.err, "description",
                                              err.description));
                count(p, "sets_rejected", 1);
        }
        /* Otherwise a local failure: neither ack nor report; the transmitter delivers it
         * again. */
}

static int poller_poll(Poller *p, bool immediately, bool *ret_more) {
        _cleanup_(json_decrefp) json_t *req = NULL, *resp_json = NULL;
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_free_ char *body = NULL;
        json_error_t jerr;
        uint64_t wait = p->c->poll_wait_usec, timeout;
        size_t n_acks, n_errs;
        json_t *sets, *more;
        const char *jti;
        json_t *v;
        int r;

        if (wait == 0)
                immediately = true;
        timeout = immediately ? POLL_MARGIN_USEC + 5000000u : wait + POLL_MARGIN_USEC;

        n_acks = json_array_size(p->acks);
        n_errs = json_object_size(p->errs);
        req = json_pack("{s:I, s:b}", "maxEvents", (json_int_t) p->c->poll_max_events,
                        "returnImmediately", immediately);
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
        count(p, "polls", 1);
        if (r == -ECANCELED) {
                /* Interrupted on purpose (ssfctl verify, stop): poll again unless stopping;
                 * the acknowledgements go with the next request. */
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
        count(p, "sets_acknowledged", n_acks);
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
                if (link_stopping(p->link))
                        break;
                if (json_array_size(p->acks) + json_object_size(p->errs) >= MAX_PENDING)
                        break;
                poller_handle(p, jti, v);
        }
        *ret_more = json_is_true(more) || json_object_size(sets) > 0;
        return 0;
}

/* On shutdown: tell the transmitter what was committed (acknowledge-only request). */
static void poller_flush(Poller *p) {
        _cleanup_(json_decrefp) json_t *req = NULL;
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_(http_client_freep) HttpClient *http = NULL;
        _cleanup_free_ char *body = NULL;
        size_t n = json_array_size(p->acks);
        int r;

        if (!p->ready || (n == 0 && json_object_size(p->errs) == 0))
                return;
        /* A fresh client: the polling one was aborted by the stop request. */
        r = http_client_clone(p->http, &http);
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
                count(p, "sets_acknowledged", n);
        }
}

static void poller_maybe_verify(Poller *p) {
        _cleanup_free_ char *state = link_take_verify(p->link);
        char buf[160];
        int r;

        if (!state)
                return;
        r = stream_request_verification(p->http, &p->t, state);
        if (r == -ECANCELED && !link_stopping(p->link))
                /* The abort meant for the long poll hit this request instead. */
                r = stream_request_verification(p->http, &p->t, state);
        if (r < 0)
                (void) snprintf(buf, sizeof(buf), "verification request failed: %s",
                                r == -EBUSY ? "rate limited (429)"
                                : r == -EOPNOTSUPP ? "the transmitter has no verification_endpoint"
                                                   : strerror(-r));
        else
                (void) snprintf(buf, sizeof(buf), "requested");
        link_verify_result(p->link, state, buf);
}

int poller_run(Link *link, HttpClient *http, const char *authorization, OAuth2Client *oauth2) {
        Poller p = {
                .link = link,
                .c = link_config(link),
                .http = http,
                .authorization = authorization,
                .oauth2 = oauth2,
                .backoff = BACKOFF_MIN_USEC,
        };
        bool more = false;
        int r;

        p.acks = json_array();
        p.errs = json_object();
        p.counters = json_object();
        if (!p.acks || !p.errs || !p.counters) {
                r = -ENOMEM;
                goto out;
        }
        link_set_http(link, p.http);

        while (!link_stopping(link)) {
                uint64_t started;

                if (!p.ready) {
                        r = poller_setup(&p);
                        if (r == -ECANCELED && !link_stopping(link))
                                continue; /* `ssfctl verify` interrupted it */
                        if (r < 0) {
                                log_warning("Transmitter not usable, retrying in %" PRIu64 " s",
                                            p.backoff / 1000000u);
                                if (link_wait_stop(link, p.backoff))
                                        break;
                                p.backoff = MIN(p.backoff * 2, (uint64_t) BACKOFF_MAX_USEC);
                                continue;
                        }
                }

                r = poller_refresh_token(&p);
                if (r == -ECANCELED)
                        continue; /* interrupted (stop, `ssfctl verify`) */
                /* Other failures are logged; the current token is used while it lasts. */

                poller_maybe_verify(&p);

                started = mono_usec();
                r = poller_poll(&p, more, &more);
                if (link_stopping(link))
                        break;
                if (r < 0) {
                        char e[160];

                        count(&p, "poll_errors", 1);
                        (void) snprintf(e, sizeof(e), "poll failed: %s", strerror(-r));
                        publish(&p, NULL, e, true);
                        if (r == -EACCES && p.oauth2) {
                                /* The access token expired or was revoked early: fetch a new
                                 * one and poll again at once, once; then back off. */
                                oauth2_client_invalidate(p.oauth2);
                                if (!p.auth_retried) {
                                        p.auth_retried = true;
                                        if (poller_refresh_token(&p) >= 0)
                                                continue;
                                }
                        }
                        if (r == -ENOENT || r == -EACCES)
                                p.ready = false; /* stream gone or credentials refused: again */
                        more = false;
                        if (link_wait_stop(link, p.backoff))
                                break;
                        p.backoff = MIN(p.backoff * 2, (uint64_t) BACKOFF_MAX_USEC);
                        continue;
                }
                p.backoff = BACKOFF_MIN_USEC;
                p.auth_retried = false;
                publish(&p, "enabled", NULL, true);
                /* A transmitter that ignores long polling must not make us spin. */
                if (!more && mono_usec() - started < 1000000u &&
                    link_wait_stop(link, 1000000u - (mono_usec() - started)))
                        break;
        }
        r = 0;
        poller_flush(&p);
        publish(&p, NULL, NULL, false);
out:
        link_set_http(link, NULL);
        http_client_free(p.http);
        transmitter_done(&p.t);
        json_decref(p.acks);
        json_decref(p.errs);
        json_decref(p.counters);
        return r;
}
