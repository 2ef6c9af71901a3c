/* SPDX-License-Identifier: MIT */
/*
 * What poll and push delivery share (receive.h): the Receiver and one delivered SET,
 * verified, prepared and handed to root. Runs in the network worker.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ingest-prepare.h"
#include "jws.h"
#include "log.h"
#include "macro.h"
#include "receive.h"
#include "ssf-ipc.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(SsfSet *, ssf_set_free);

/* ---- the Receiver ------------------------------------------------------------------------- */

int receiver_init(Receiver *rx, Link *link, HttpClient *http, const char *authorization,
                  OAuth2Client *oauth2, bool push) {
        *rx = (Receiver) {
                .link = link,
                .c = link_transmitter(link),
                .http = http,
                .authorization = authorization,
                .oauth2 = oauth2,
                .push = push,
                .backoff = RECEIVER_BACKOFF_MIN_USEC,
        };
        rx->counters = json_object();
        if (!rx->counters)
                return -ENOMEM;
        link_set_http(link, rx->http);
        return 0;
}

void receiver_done(Receiver *rx) {
        link_set_http(rx->link, NULL);
        rx->http = http_client_free(rx->http);
        transmitter_done(&rx->t);
        rx->status = mfree(rx->status);
        json_decref(rx->counters);
        rx->counters = NULL;
}

void receiver_count(Receiver *rx, const char *name, uint64_t n) {
        json_t *v = json_object_get(rx->counters, name);
        json_object_set_new(rx->counters, name,
                            json_integer((v ? json_integer_value(v) : 0) + (json_int_t) n));
}

static json_t *jstr(const char *s) {
        return s ? json_string(s) : json_null();
}

void receiver_publish(Receiver *rx, const char *status, const char *error, bool polled) {
        json_t *stream = NULL;

        if (status || error || polled) {
                stream = json_pack("{s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o}",
                                   "stream_id", jstr(rx->t.stream_id),
                                   "issuer", jstr(rx->t.issuer),
                                   "endpoint_url", jstr(rx->push ? rx->c->push_url
                                                                 : rx->t.endpoint_url),
                                   "audience", jstr(rx->t.audience),
                                   "verification_endpoint", jstr(rx->t.verification_endpoint),
                                   "delivery", rx->push ? SSF_DELIVERY_PUSH : SSF_DELIVERY_POLL,
                                   "status", jstr(status),
                                   "last_error", jstr(error));
                if (stream && rx->t.stream && rx->push) {
                        json_t *cfg = json_deep_copy(rx->t.stream);
                        (void) json_object_del(json_object_get(cfg, "delivery"),
                                               "authorization_header");
                        if (cfg)
                                json_object_set_new(stream, "config", cfg);
                } else if (stream && rx->t.stream)
                        json_object_set(stream, "config", rx->t.stream);
                if (stream && polled)
                        json_object_set_new(stream, "last_poll", json_integer((json_int_t) time(NULL)));
        }
        if (!rx->push || stream || json_object_size(rx->counters))
                link_facts(rx->link, stream, json_object_size(rx->counters) ? rx->counters : NULL);
        json_object_clear(rx->counters);
        json_decref(stream);
}

int receiver_refresh_token(Receiver *rx) {
        char *a = NULL;
        int r;

        if (!rx->oauth2 || !oauth2_client_needs_refresh(rx->oauth2))
                return 0;
        r = oauth2_client_authorization(rx->oauth2, rx->http, &a);
        if (r < 0)
                return r;
        erase_and_free(rx->t.authorization);
        rx->t.authorization = a;
        return 0;
}

int receiver_setup_begin(Receiver *rx) {
        transmitter_done(&rx->t);
        rx->ready = false;
        rx->status = mfree(rx->status);

        if (rx->authorization) {
                rx->t.authorization = strdup(rx->authorization);
                if (!rx->t.authorization)
                        return -ENOMEM;
        }
        return 0;
}

int receiver_setup_token(Receiver *rx) {
        if (!rx->oauth2)
                return 0;
        return oauth2_client_authorization(rx->oauth2, rx->http, &rx->t.authorization);
}

/* The structured "Receiving security events…" record. */
static void receiver_log_receiving(const Receiver *rx) {
        char f_iss[512], f_stream[300], msg[1400];

        (void) snprintf(f_iss, sizeof(f_iss), "SSF_ISS=%s", rx->t.issuer);
        (void) snprintf(f_stream, sizeof(f_stream), "SSF_STREAM=%s", strempty(rx->t.stream_id));
        if (rx->push && !rx->t.stream_id)
                (void) snprintf(msg, sizeof(msg), "Receiving security events from '%s' by push "
                                "to '%s' (listening on %s), without a stream (stream = none)",
                                rx->t.issuer, rx->c->push_url, rx->c->push_listen);
        else if (rx->push)
                (void) snprintf(msg, sizeof(msg), "Receiving security events from '%s' by push "
                                "to '%s' (listening on %s), stream '%s'", rx->t.issuer,
                                rx->c->push_url, rx->c->push_listen, rx->t.stream_id);
        else
                (void) snprintf(msg, 600, "Receiving security events from '%s' by polling "
                                "stream '%s'", rx->t.issuer, rx->t.stream_id);
        log_struct(LOG_INFO, SSF_MESSAGE_STREAM, msg, f_iss, f_stream, NULL);
}

/* Publishes what the transmitter says of the stream now (SSF §8.1.2.1), and logs it when it
 * changed: a stream paused or disabled while we were away sends no stream-updated event we
 * could see. Returns what stream_read_status() returned. */
static int receiver_report_status(Receiver *rx) {
        _cleanup_free_ char *status = NULL, *reason = NULL, *seen = NULL;
        bool enabled;
        json_t *facts;
        int r;

        r = stream_read_status(rx->http, &rx->t, &status, &reason);
        if (r < 0)
                return r;
        if (asprintf(&seen, "%s%s%s", status, reason ? ": " : "", strempty(reason)) < 0) {
                seen = NULL;
                return -ENOMEM;
        }
        enabled = streq(status, "enabled");
        if (!enabled && !streq_ptr(seen, rx->status))
                log_warning("Transmitter reports stream '%s' %s: events may be held or lost",
                            rx->t.stream_id, seen);
        else if (enabled && rx->status && !startswith(rx->status, "enabled"))
                log_info("Transmitter reports stream '%s' enabled again", rx->t.stream_id);
        facts = json_pack("{s:s, s:o}", "transmitter_status", status, "transmitter_reason",
                          reason ? json_string(reason) : json_null());
        if (facts)
                link_facts(rx->link, facts, NULL);
        json_decref(facts);
        free(rx->status);
        rx->status = TAKE_PTR(seen);
        return 0;
}

static uint64_t receiver_check_interval(const Receiver *rx) {
        uint64_t i = rx->t.inactivity_timeout_usec ? rx->t.inactivity_timeout_usec / 2
                                                   : RECEIVER_CHECK_MAX_USEC;

        return MAX(MIN(i, (uint64_t) RECEIVER_CHECK_MAX_USEC), (uint64_t) RECEIVER_CHECK_MIN_USEC);
}

void receiver_check_stream(Receiver *rx) {
        uint64_t now = ssf_now_usec();
        int r;

        if (!rx->ready || now < rx->next_check_usec || rx->c->stream == STREAM_NONE)
                return;
        rx->next_check_usec = now + receiver_check_interval(rx);
        if (rx->push) {
                r = receiver_refresh_token(rx);
                if (r == -ECANCELED)
                        return;
        }
        r = receiver_report_status(rx);
        /* No status endpoint, or one that does not know the stream: is the stream there? */
        if (r == -EOPNOTSUPP || r == -ENOENT)
                r = stream_read_config(rx->http, &rx->t);
        if (r >= 0 || r == -ECANCELED)
                return;
        if (r == -ENOENT) {
                log_warning("Stream '%s' is gone at the transmitter, setting up a stream again",
                            rx->t.stream_id);
                rx->ready = false;
        } else if (r == -EACCES) {
                log_warning("Transmitter refused our credentials reading stream '%s'",
                            rx->t.stream_id);
                if (rx->oauth2)
                        oauth2_client_invalidate(rx->oauth2); /* a new token next time */
        } else
                log_warning_errno(r, "Cannot read stream '%s' at the transmitter: %m",
                                  rx->t.stream_id);
}

/* One management call made again once when it came back cancelled: the daemon's request that
 * led to it may also have aborted the HTTP client (meant for a long poll). */
#define RETRY_CANCELLED(rx, call)                                                             \
        ({                                                                                    \
                int _r = (call);                                                              \
                if (_r == -ECANCELED && !link_stopping((rx)->link))                           \
                        _r = (call);                                                          \
                _r;                                                                           \
        })

/* subjects = local: adds what root computed for this host's users, one call each, and
 * removes the subjects of accounts that are no longer local. */
static void receiver_add_local_subjects(Receiver *rx) {
        _cleanup_(json_decrefp) json_t *subjects = NULL, *removed = NULL;
        unsigned ok = 0, failed = 0;
        char msg[400] = "";
        size_t i;
        json_t *s;
        int r;

        r = link_local_subjects(rx->link, &subjects, &removed);
        if (r < 0) {
                log_error_errno(r, "subjects = local: root gave no subjects to add (see its log): %m");
                return;
        }
        json_array_foreach(subjects, i, s) {
                if (link_stopping(rx->link))
                        return;
                r = RETRY_CANCELLED(rx, stream_subject(rx->http, &rx->t, true, s, 1, msg,
                                                       sizeof(msg)));
                if (r >= 0) {
                        ok++;
                        continue;
                }
                failed++;
                log_warning("subjects = local: adding a subject to stream '%s' failed: %s",
                            rx->t.stream_id, msg);
                if (r == -EOPNOTSUPP)
                        break; /* no add_subject_endpoint: the rest would fail alike */
        }
        log_info("subjects = local: added %u subject(s) of local users to stream '%s'%s", ok,
                 rx->t.stream_id, failed ? ", some failed" : "");
        ok = 0;
        json_array_foreach(removed, i, s) {
                if (link_stopping(rx->link) || !json_is_object(s))
                        return;
                r = RETRY_CANCELLED(rx, stream_subject(rx->http, &rx->t, false, s, -1, msg,
                                                       sizeof(msg)));
                if (r >= 0)
                        ok++;
                else
                        log_warning("subjects = local: removing the subject of a former local "
                                    "account from stream '%s' failed: %s", rx->t.stream_id, msg);
        }
        if (ok > 0)
                log_info("subjects = local: removed %u subject(s) of former local accounts from "
                         "stream '%s'", ok, rx->t.stream_id);
}

static bool status_value_ok(const char *s) {
        return streq_ptr(s, "enabled") || streq_ptr(s, "paused") || streq_ptr(s, "disabled");
}

/* Carries out one administration request m (link.h "admin") and answers it. */
static void receiver_admin(Receiver *rx, json_t *m) {
        json_int_t id = json_integer_value(json_object_get(m, "id"));
        const char *op = json_string_value(json_object_get(m, "op"));
        _cleanup_free_ char *now = NULL;
        char msg[512] = "";
        bool retried = false;
        int r;

        if (streq(op, "create")) {
                if (rx->ready) {
                        link_admin_result(rx->link, id, -EEXIST, "a stream is set up already "
                                          "('ssfctl stream delete' it first)", NULL);
                        return;
                }
                /* The setup (poller.c, push.c) runs next and answers it. */
                if (rx->create_id)
                        link_admin_result(rx->link, rx->create_id, -ECANCELED,
                                          "superseded by a newer create request", NULL);
                rx->idle = false;
                rx->create_id = id;
                rx->backoff = RECEIVER_BACKOFF_MIN_USEC;
                return;
        }
        if (!rx->ready) {
                link_admin_result(rx->link, id, -ENOENT, rx->idle
                                  ? "no stream: it was deleted ('ssfctl stream create' makes one)"
                                  : "no stream yet: the transmitter has not been reached", NULL);
                return;
        }
        r = RETRY_CANCELLED(rx, receiver_refresh_token(rx));
        if (r < 0)
                log_debug_errno(r, "Cannot refresh the access token, using the current one: %m");

again:
        if (streq(op, "status")) {
                const char *status = json_string_value(json_object_get(m, "status"));
                json_t *jr = json_object_get(m, "reason");
                const char *reason = json_string_value(jr);

                if (!status_value_ok(status) || (jr && !reason) ||
                    (reason && strlen(reason) > 1024)) {
                        link_admin_result(rx->link, id, -EINVAL, "invalid status request", NULL);
                        return;
                }
                r = RETRY_CANCELLED(rx, stream_update_status(rx->http, &rx->t, status, reason,
                                                             &now, msg, sizeof(msg)));
                if (r >= 0) {
                        const char *in_force = now ? now : status;

                        log_info("Stream '%s': status update to %s: %s", rx->t.stream_id,
                                 status, msg);
                        free(rx->status);
                        rx->status = strdup(in_force); /* not a change to warn about later */
                        link_admin_result(rx->link, id, 0, msg, in_force);
                        return;
                }
        } else if (streq(op, "delete")) {
                r = RETRY_CANCELLED(rx, stream_delete(rx->http, &rx->t, msg, sizeof(msg)));
                if (r >= 0) {
                        log_info("Deleted stream '%s' at the transmitter (ssfctl); no new stream "
                                 "until 'ssfctl stream create' or a restart of the daemon",
                                 rx->t.stream_id);
                        rx->ready = false;
                        rx->idle = true;
                        rx->t.stream_id = mfree(rx->t.stream_id);
                        link_admin_result(rx->link, id, 0, msg, NULL);
                        return;
                }
        } else if (streq(op, "add-subject") || streq(op, "remove-subject")) {
                json_t *subjects = json_object_get(m, "subjects"), *subject;
                json_t *verified = json_object_get(m, "verified");
                bool add = streq(op, "add-subject");
                size_t i;

                if (!json_is_array(subjects) || json_array_size(subjects) == 0 ||
                    json_array_size(subjects) > LINK_ADMIN_SUBJECTS_MAX ||
                    (verified && !json_is_boolean(verified))) {
                        link_admin_result(rx->link, id, -EINVAL, "invalid subject request", NULL);
                        return;
                }
                /* One call per subject; the first refusal ends it (and is what is reported). */
                json_array_foreach(subjects, i, subject) {
                        r = json_is_object(subject)
                                ? RETRY_CANCELLED(rx, stream_subject(rx->http, &rx->t, add, subject,
                                                                     verified ? json_is_true(verified) : -1,
                                                                     msg, sizeof(msg)))
                                : -EINVAL;
                        if (r < 0)
                                break;
                }
                if (r >= 0) {
                        (void) snprintf(msg, sizeof(msg), "%s %zu subject(s)",
                                        add ? "added" : "removed", json_array_size(subjects));
                        log_info("Stream '%s': %s (ssfctl)", rx->t.stream_id, msg);
                        link_admin_result(rx->link, id, 0, msg, NULL);
                        return;
                }
        } else {
                link_admin_result(rx->link, id, -EOPNOTSUPP, "unknown request", NULL);
                return;
        }
        if (r == -EACCES && rx->oauth2) {
                /* The token may have expired before the expires_in it came with (RFC 6750
                 * §3.1 invalid_token): a new one, and the request once more with it. */
                oauth2_client_invalidate(rx->oauth2);
                if (!retried) {
                        int q = RETRY_CANCELLED(rx, receiver_refresh_token(rx));

                        retried = true;
                        if (q >= 0) {
                                log_info("Stream '%s': %s refused with our access token, "
                                         "retrying with a new one", strempty(rx->t.stream_id), op);
                                msg[0] = 0;
                                now = mfree(now);
                                goto again;
                        }
                }
        }
        log_warning("Stream '%s': %s failed: %s", strempty(rx->t.stream_id), op, msg);
        link_admin_result(rx->link, id, r, msg, NULL);
}

void receiver_maybe_admin(Receiver *rx) {
        json_t *m;

        while ((m = link_take_admin(rx->link))) {
                receiver_admin(rx, m);
                json_decref(m);
                if (link_stopping(rx->link))
                        break;
        }
}

bool receiver_idle_wait(Receiver *rx) {
        receiver_maybe_admin(rx);
        if (!rx->idle)
                return link_stopping(rx->link);
        return link_wait_stop(rx->link, RECEIVER_CHECK_MAX_USEC);
}

int receiver_setup_finish(Receiver *rx, int r, const char *push_authorization) {
        bool managed = rx->c->stream != STREAM_NONE;

        if (r >= 0)
                r = managed ? stream_discover(rx->http, rx->c, &rx->t) : stream_static(rx->c, &rx->t);
        if (r >= 0)
                r = stream_fetch_jwks(rx->http, &rx->t);
        if (r >= 0 && managed)
                r = stream_ensure(rx->http, rx->link, rx->c, &rx->t, push_authorization);
        if (r == -EACCES && rx->oauth2)
                oauth2_client_invalidate(rx->oauth2); /* refused: a new token next time */
        if (r == -ESTALE) {
                /* Deleted by the admin: wait for `ssfctl stream create`. */
                if (!rx->idle)
                        log_info("The stream was deleted with ssfctl; no new stream until "
                                 "'ssfctl stream create' or a restart of the daemon");
                rx->idle = true;
                return r;
        }
        if (r < 0) {
                char e[256];
                if (r == -ECANCELED)
                        return r;
                (void) snprintf(e, sizeof(e), "stream setup failed: %s", strerror(-r));
                receiver_publish(rx, "error", e, false);
                if (rx->create_id) {
                        link_admin_result(rx->link, rx->create_id, r, e, NULL);
                        rx->create_id = 0;
                }
                return r;
        }
        rx->ready = true;
        receiver_publish(rx, "enabled", NULL, false);
        receiver_log_receiving(rx);
        if (!managed)
                return 0; /* no status endpoint, nothing to check */
        r = receiver_report_status(rx);
        if (r < 0 && r != -EOPNOTSUPP)
                log_debug_errno(r, "Cannot read the stream status: %m");
        rx->next_check_usec = ssf_now_usec() + receiver_check_interval(rx);
        if (rx->create_id) {
                char m[400];

                (void) snprintf(m, sizeof(m), "stream %s set up", rx->t.stream_id);
                link_admin_result(rx->link, rx->create_id, 0, m, NULL);
                rx->create_id = 0;
        }
        if (rx->c->subjects_local)
                receiver_add_local_subjects(rx);
        return 0;
}

bool receiver_setup_failed(Receiver *rx, int r) {
        if ((r == -ECANCELED || rx->idle) && !link_stopping(rx->link))
                return false; /* interrupted, or idle after a delete (receiver_idle_wait()) */
        log_warning("Transmitter not usable, retrying in %" PRIu64 " s", rx->backoff / 1000000u);
        return receiver_back_off(rx);
}

bool receiver_back_off(Receiver *rx) {
        if (link_wait_stop(rx->link, rx->backoff))
                return true;
        rx->backoff = MIN(rx->backoff * 2, (uint64_t) RECEIVER_BACKOFF_MAX_USEC);
        return false;
}

void receiver_maybe_verify(Receiver *rx) {
        _cleanup_free_ char *state = link_take_verify(rx->link);
        char buf[160];
        int r;

        if (!state)
                return;
        /* The daemon's request also aborted the HTTP client (meant for a long poll): the first
         * call may come back cancelled. */
        if (rx->push) {
                r = receiver_refresh_token(rx);
                if (r == -ECANCELED && !link_stopping(rx->link))
                        (void) receiver_refresh_token(rx);
        }
        r = stream_request_verification(rx->http, &rx->t, state);
        if (r == -ECANCELED && !link_stopping(rx->link))
                r = stream_request_verification(rx->http, &rx->t, state);
        if (r == -EACCES && rx->oauth2) {
                /* The access token expired early (RFC 6750 §3.1): a new one, then once more. */
                oauth2_client_invalidate(rx->oauth2);
                if (RETRY_CANCELLED(rx, receiver_refresh_token(rx)) >= 0)
                        r = RETRY_CANCELLED(rx, stream_request_verification(rx->http, &rx->t, state));
        }
        if (r < 0)
                (void) snprintf(buf, sizeof(buf), "verification request failed: %s",
                                r == -EBUSY ? "rate limited (429)"
                                : r == -EOPNOTSUPP ? "the transmitter has no verification_endpoint"
                                                   : strerror(-r));
        else
                (void) snprintf(buf, sizeof(buf), "requested");
        link_verify_result(rx->link, state, buf);
}

/* ---- one delivered SET -------------------------------------------------------------------- */

void receive_log_rejected(const char *jti, const SetError *err) {
        char field_jti[300], field_err[64], field_desc[300];

        (void) snprintf(field_jti, sizeof(field_jti), "SSF_JTI=%s", jti ? jti : "");
        (void) snprintf(field_err, sizeof(field_err), "SSF_ERROR=%s", strempty(err->err));
        (void) snprintf(field_desc, sizeof(field_desc), "SSF_REASON=%s", err->description);
        if (jti)
                log_struct(LOG_WARNING, SSF_MESSAGE_SET_REJECTED, "Rejected a security event token",
                           field_jti, field_err, field_desc, NULL);
        else
                log_struct(LOG_WARNING, SSF_MESSAGE_SET_REJECTED, "Rejected a security event token",
                           field_err, field_desc, NULL);
}

/* The SET's kid is not in the JWKS we have (r == -ENOKEY, err says invalid_key). Returns
 * -ENOKEY when the JWKS was fetched after the SET arrived (then the kid is truly unknown),
 * -EAGAIN with *ret_retry_usec when it cannot be checked yet, or 0 when a fresh JWKS has been
 * fetched now (verify again). */
static int receive_refresh_jwks(HttpClient *http, Transmitter *t, const char *name,
                                uint64_t seen_usec, uint64_t *ret_retry_usec) {
        uint64_t now = ssf_now_usec(), allowed = t->jwks_attempt_usec + JWKS_REFRESH_MIN_USEC;
        int r;

        if (t->jwks_fetched_usec >= seen_usec)
                return -ENOKEY;
        if (t->jwks_attempt_usec != 0 && now < allowed) {
                /* Rate-limited (anyone who can deliver a SET can name unknown kids): the
                 * transmitter may have rotated its keys since our last fetch. Defer it. */
                log_info("No key for SET '%s' yet; the JWKS may be fetched again in %" PRIu64
                         " s, deferring it", name, (allowed - now + 999999u) / 1000000u);
                *ret_retry_usec = allowed;
                return -EAGAIN;
        }
        log_info("No key for SET '%s', refreshing the JWKS", name);
        r = stream_fetch_jwks(http, t);
        if (r < 0) {
                /* The JWKS endpoint is down or unreachable: nothing says the SET is wrong. */
                log_warning_errno(r, "Cannot refresh the JWKS, deferring SET '%s': %m", name);
                *ret_retry_usec = t->jwks_attempt_usec + JWKS_REFRESH_MIN_USEC;
                return -EAGAIN;
        }
        return 0;
}

/* Whether token's (unverified) payload names an iss other than issuer. Only ever used to
 * refuse: a SET whose kid is unknown and which says it is another transmitter's (pushed to
 * this one's path, say) is invalid_issuer at once, without a JWKS fetch it could not pass. */
static bool claims_foreign_issuer(const char *token, size_t len, const char *issuer) {
        json_t *claims;
        Jws *jws = NULL;
        const char *iss;
        bool foreign;

        if (!issuer || jws_parse(token, len, &jws) < 0)
                return false;
        claims = json_loadb((const char *) jws->payload, jws->payload_len, JSON_REJECT_DUPLICATES,
                            NULL);
        jws_free(jws);
        iss = json_string_value(json_object_get(claims, "iss"));
        foreign = iss && !streq(iss, issuer);
        json_decref(claims);
        return foreign;
}

int receive_prepare(Link *link, HttpClient *http, Transmitter *t, const char *token, size_t len,
                    const char *delivered_jti, uint64_t seen_usec, IngestRequest *ret_req,
                    SetError *err, uint64_t *ret_retry_usec) {
        _cleanup_(ssf_set_freep) SsfSet *set = NULL;
        const Config *c = link_config(link);
        const char *name = delivered_jti ? delivered_jti : "(pushed)";
        SetExpect expect = {
                .issuer = t->issuer,
                .audience = t->audience,
                .now_sec = (uint64_t) time(NULL),
                .max_skew_sec = c->max_clock_skew_usec / 1000000u,
        };
        int r;

        memset(err, 0, sizeof(*err));
        *ret_req = (IngestRequest){};
        r = set_verify(token, len, t->jwks, &expect, delivered_jti, &set, err);
        if (r == -ENOKEY && claims_foreign_issuer(token, len, t->issuer)) {
                memset(err, 0, sizeof(*err));
                err->err = "invalid_issuer";
                (void) snprintf(err->description, sizeof(err->description),
                                "iss does not match the transmitter's issuer");
                r = -EPROTO;
        }
        if (r == -ENOKEY) {
                uint64_t retry = 0;
                int q = receive_refresh_jwks(http, t, name, seen_usec, &retry);

                if (q == -EAGAIN) {
                        memset(err, 0, sizeof(*err));
                        *ret_retry_usec = retry;
                        return -EAGAIN;
                }
                if (q >= 0) {
                        /* Verified against a JWKS fetched just now: an unknown kid is final. */
                        memset(err, 0, sizeof(*err));
                        r = set_verify(token, len, t->jwks, &expect, delivered_jti, &set, err);
                }
        }
        if (r >= 0) {
                memset(err, 0, sizeof(*err));
                r = ingest_prepare(c, t->critical_subject_members, set, ret_req, err);
        }
        if (r >= 0)
                return 0;
        return receive_outcome(delivered_jti ? delivered_jti : set ? set->jti : NULL, r, err);
}

int receive_outcome(const char *jti, int r, const SetError *err) {
        if (r >= 0 || r == -EALREADY)
                return r;
        if (err->err) {
                /* Only a verified SET's jti is worth logging as its name. */
                receive_log_rejected(jti, err);
                return r;
        }
        log_error_errno(r, "Could not record SET '%s', it will be delivered again: %m",
                        jti ? jti : "(unknown)");
        return r == -EAGAIN ? -EIO : r; /* -EAGAIN means deferred, in receive_prepare() */
}

int receive_set(Link *link, HttpClient *http, Transmitter *t, const char *token, size_t len,
                const char *delivered_jti, uint64_t seen_usec, SetError *err,
                uint64_t *ret_retry_usec) {
        _cleanup_(ingest_request_done) IngestRequest req = {};
        int r;

        r = receive_prepare(link, http, t, token, len, delivered_jti, seen_usec, &req, err,
                            ret_retry_usec);
        if (r < 0)
                return r;
        r = link_ingest(link, &req, err);
        return receive_outcome(delivered_jti ? delivered_jti : req.jti, r, err);
}
