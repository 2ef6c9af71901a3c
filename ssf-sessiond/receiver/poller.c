/* SPDX-License-Identifier: MIT */
/*
 * RFC 8936 poll delivery (poller.h): long-polls, verifies and hands each SET to root,
 * acknowledges what root committed. Runs in the network worker.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "http.h"
#include "jws.h"
#include "link-client.h"
#include "log.h"
#include "macro.h"
#include "poller.h"
#include "receive.h"
#include "set.h"
#include "ssf-ipc.h"
#include "stream.h"

#define POLL_MARGIN_USEC (10u * 1000000u)
#define MAX_PENDING 4096u

DEFINE_TRIVIAL_CLEANUP_FUNC(HttpClient *, http_client_free);

typedef struct Poller {
        Receiver rx;
        bool auth_retried; /* a 401 made us fetch a new token; the next one backs off */
        json_t *acks;      /* array of jti */
        json_t *errs;      /* object jti -> {err, description} */
} Poller;

int poller_parse_response(const char *body, size_t len, PollResponse *ret) {
        json_t *root, *sets;

        if (len > POLLER_RESPONSE_MAX)
                return -EFBIG;
        if (!body || len == 0)
                return -EBADMSG;
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(root)) {
                json_decref(root);
                return -EBADMSG;
        }
        sets = json_object_get(root, "sets");
        if (!json_is_object(sets)) {
                json_decref(root);
                return -EBADMSG;
        }
        *ret = (PollResponse) {
                .root = root,
                .sets = sets,
                .more = json_is_true(json_object_get(root, "moreAvailable")),
        };
        return 0;
}

void poll_response_done(PollResponse *r) {
        if (!r)
                return;
        json_decref(r->root);
        *r = (PollResponse) {};
}

int poller_check_entry(const char *jti, json_t *value, const char **ret_why) {
        size_t n = jti ? strlen(jti) : 0;

        if (n == 0 || n > SET_MAX_JTI) {
                *ret_why = "the jti it was delivered under is empty or too long";
                return -EBADMSG;
        }
        /* The daemon keeps no jti with control characters (shared/ingest.c): report it now
         * rather than have it delivered again and again. */
        for (const unsigned char *p = (const unsigned char *) jti; *p; p++)
                if (*p < 0x20 || *p == 0x7f) {
                        *ret_why = "the jti it was delivered under has control characters";
                        return -EBADMSG;
                }
        if (!json_is_string(value)) {
                *ret_why = "the SET is not a JSON string";
                return -EBADMSG;
        }
        if (json_string_length(value) > JWS_MAX_SIZE) {
                *ret_why = "the SET is too large";
                return -EBADMSG;
        }
        return 0;
}

/* Verifies one delivered SET, has the daemon apply it, and adds its jti to acks or errs. */
static void poller_handle(Poller *p, const char *jti, json_t *value) {
        SetError err = {};
        const char *why = NULL;
        int r;

        receiver_count(&p->rx, "sets_received", 1);
        r = poller_check_entry(jti, value, &why);
        if (r < 0) {
                err.err = "invalid_request";
                (void) snprintf(err.description, sizeof(err.description), "%s", why);
                receive_log_rejected(jti, &err);
        } else
                r = receive_set(p->rx.link, p->rx.http, &p->rx.t, json_string_value(value),
                                json_string_length(value), jti, &err);

        if (r >= 0 || r == -EALREADY) {
                json_array_append_new(p->acks, json_string(jti));
                return;
        }
        if (err.err) {
                json_object_set_new(p->errs, jti,
                                    json_pack("{s:s, s:s}", "err", err.err, "description",
                                              err.description));
                receiver_count(&p->rx, "sets_rejected", 1);
        }
        /* Otherwise a local failure: neither ack nor report; the transmitter delivers it
         * again. */
}

static int poller_poll(Poller *p, bool immediately, bool *ret_more) {
        _cleanup_(json_decrefp) json_t *req = NULL;
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_(poll_response_done) PollResponse pr = {};
        _cleanup_free_ char *body = NULL;
        uint64_t wait = p->rx.c->poll_wait_usec, timeout;
        size_t n_acks, n_errs;
        const char *jti;
        json_t *v;
        int r;

        if (wait == 0)
                immediately = true;
        timeout = immediately ? POLL_MARGIN_USEC + 5000000u : wait + POLL_MARGIN_USEC;

        n_acks = json_array_size(p->acks);
        n_errs = json_object_size(p->errs);
        req = json_pack("{s:I, s:b}", "maxEvents", (json_int_t) p->rx.c->poll_max_events,
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

        r = http_request(p->rx.http, "POST", p->rx.t.endpoint_url, p->rx.t.authorization, body,
                         timeout, POLLER_RESPONSE_MAX, &resp);
        receiver_count(&p->rx, "polls", 1);
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
                return log_warning_errno(r, "Poll request to '%s' failed: %m",
                                         p->rx.t.endpoint_url);
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
        receiver_count(&p->rx, "sets_acknowledged", n_acks);
        if (n_acks)
                log_debug("Acknowledged %zu SET(s)", n_acks);
        json_array_clear(p->acks);
        json_object_clear(p->errs);

        r = poller_parse_response(resp.body, resp.body_len, &pr);
        if (r < 0) {
                log_warning("Poll response is not a JSON object with a \"sets\" object");
                return -EBADMSG;
        }
        json_object_foreach(pr.sets, jti, v) {
                if (link_stopping(p->rx.link))
                        break;
                if (json_array_size(p->acks) + json_object_size(p->errs) >= MAX_PENDING)
                        break;
                poller_handle(p, jti, v);
        }
        *ret_more = pr.more || json_object_size(pr.sets) > 0;
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

        if (!p->rx.ready || (n == 0 && json_object_size(p->errs) == 0))
                return;
        /* A fresh client: the polling one was aborted by the stop request. */
        r = http_client_clone(p->rx.http, &http);
        if (r < 0)
                return;
        req = json_pack("{s:i, s:b, s:O, s:O}", "maxEvents", 0, "returnImmediately", 1, "ack",
                        p->acks, "setErrs", p->errs);
        body = req ? json_dumps(req, JSON_COMPACT) : NULL;
        if (!body)
                return;
        r = http_request(http, "POST", p->rx.t.endpoint_url, p->rx.t.authorization, body,
                         2000000u, POLLER_RESPONSE_MAX, &resp);
        if (r < 0 || resp.status != 200)
                log_warning("Could not flush %zu acknowledgement(s) on shutdown; the transmitter "
                            "will deliver them again and they will be acknowledged as "
                            "duplicates", n);
        else {
                log_info("Flushed %zu acknowledgement(s)", n);
                receiver_count(&p->rx, "sets_acknowledged", n);
        }
}

int poller_run(Link *link, HttpClient *http, const char *authorization, OAuth2Client *oauth2) {
        Poller p = {};
        bool more = false;
        int r;

        r = receiver_init(&p.rx, link, http, authorization, oauth2, false);
        p.acks = json_array();
        p.errs = json_object();
        if (r < 0 || !p.acks || !p.errs) {
                r = -ENOMEM;
                goto out;
        }

        while (!link_stopping(link)) {
                uint64_t started;

                if (!p.rx.ready) {
                        r = receiver_setup_begin(&p.rx);
                        if (r >= 0)
                                r = receiver_setup_finish(&p.rx, receiver_setup_token(&p.rx), NULL);
                        if (r < 0) {
                                if (receiver_setup_failed(&p.rx, r))
                                        break;
                                continue;
                        }
                }

                r = receiver_refresh_token(&p.rx);
                if (r == -ECANCELED)
                        continue; /* interrupted (stop, `ssfctl verify`) */
                /* Other failures are logged; the current token is used while it lasts. */

                receiver_maybe_verify(&p.rx);
                receiver_check_stream(&p.rx);
                if (!p.rx.ready)
                        continue;

                started = ssf_now_usec();
                r = poller_poll(&p, more, &more);
                if (link_stopping(link))
                        break;
                if (r < 0) {
                        char e[160];

                        receiver_count(&p.rx, "poll_errors", 1);
                        (void) snprintf(e, sizeof(e), "poll failed: %s", strerror(-r));
                        receiver_publish(&p.rx, NULL, e, true);
                        if (r == -EACCES && p.rx.oauth2) {
                                /* The access token expired or was revoked early: fetch a new
                                 * one and poll again at once, once; then back off. */
                                oauth2_client_invalidate(p.rx.oauth2);
                                if (!p.auth_retried) {
                                        p.auth_retried = true;
                                        if (receiver_refresh_token(&p.rx) >= 0)
                                                continue;
                                }
                        }
                        if (r == -ENOENT || r == -EACCES)
                                p.rx.ready = false; /* stream gone or credentials refused: again */
                        more = false;
                        if (receiver_back_off(&p.rx))
                                break;
                        continue;
                }
                p.rx.backoff = RECEIVER_BACKOFF_MIN_USEC;
                p.auth_retried = false;
                receiver_publish(&p.rx, "enabled", NULL, true);
                /* A transmitter that ignores long polling must not make us spin. */
                if (!more && ssf_now_usec() - started < 1000000u &&
                    link_wait_stop(link, 1000000u - (ssf_now_usec() - started)))
                        break;
        }
        r = 0;
        poller_flush(&p);
        receiver_publish(&p.rx, NULL, NULL, false);
out:
        receiver_done(&p.rx);
        json_decref(p.acks);
        json_decref(p.errs);
        return r;
}
