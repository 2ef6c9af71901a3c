/* SPDX-License-Identifier: MIT */
#pragma once

/* What poll delivery (RFC 8936, poller.c) and push delivery (RFC 8935, push.c) share, in the
 * network worker: the Receiver (the transmitter and its stream set up, facts and counters for
 * the daemon, `ssfctl verify`), and one delivered SET, whichever way it came: verified against
 * the transmitter's keys (set.c), classified and mapped (ingest-prepare.c), and handed to the
 * daemon to commit (link-client.c). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "http.h"
#include "link-client.h"
#include "oauth2.h"
#include "set.h"
#include "stream.h"

#define RECEIVER_BACKOFF_MIN_USEC (1u * 1000000u)
#define RECEIVER_BACKOFF_MAX_USEC (60u * 1000000u)
/* How often the stream is checked: half its inactivity_timeout, within these bounds. */
#define RECEIVER_CHECK_MIN_USEC (1u * 1000000u)
#define RECEIVER_CHECK_MAX_USEC (300u * 1000000u)

/* Embedded in Poller and Push. */
typedef struct Receiver {
        Link *link;
        const TransmitterConfig *c; /* the transmitter this worker serves */
        HttpClient *http;           /* owned */
        Transmitter t;
        const char *authorization;  /* the configured Authorization value (secret), or NULL */
        OAuth2Client *oauth2;       /* auth = oauth2, else NULL */
        bool push;                  /* delivery = push, else poll */
        bool ready;                 /* the stream is set up */
        uint64_t backoff;           /* the next wait after a failure */
        uint64_t next_check_usec;   /* CLOCK_MONOTONIC: when receiver_check_stream() is due */
        char *status;               /* the stream status (and reason) last reported */
        bool idle;                  /* `ssfctl stream delete`: no stream, no requests until
                                     * `ssfctl stream create` (or a restart of the daemon) */
        json_int_t create_id;       /* the `ssfctl stream create` the next setup answers, or 0 */
        json_t *counters;           /* increments not yet sent to the daemon */
} Receiver;

/* Fills *rx, takes http (freed by receiver_done(), which is to be called even when this
 * fails) and makes it the client a stop or verify request interrupts. Returns 0 or -ENOMEM. */
int receiver_init(Receiver *rx, Link *link, HttpClient *http, const char *authorization,
                  OAuth2Client *oauth2, bool push);
void receiver_done(Receiver *rx);

/* Adds n to the counter name (sent with the next receiver_publish()). */
void receiver_count(Receiver *rx, const char *name, uint64_t n);
/* Sends the stream facts (when status or error is not NULL, or polled: then with last_poll
 * now) and the counter increments. Push: the stream configuration goes without its
 * authorization_header (our secret), and nothing is sent when there is nothing to send. */
void receiver_publish(Receiver *rx, const char *status, const char *error, bool polled);

/* auth = oauth2: a new access token when none is cached or it is about to expire. */
int receiver_refresh_token(Receiver *rx);

/* Setting the stream up (again), in three steps; push.c loads its secret between the second
 * and the third. receiver_setup_begin() forgets the transmitter (not ready) and copies the
 * configured Authorization value: 0, or -ENOMEM (to be returned as is).
 * receiver_setup_token(): auth = oauth2, an access token; else 0.
 * receiver_setup_finish(): when r (the result so far) is not negative, discovers the
 * transmitter, fetches its JWKS and reuses or creates the stream (push_authorization: NULL for
 * poll, see stream_ensure()); then publishes the stream "enabled", makes rx ready and logs
 * "Receiving security events…", or publishes the failure (not -ECANCELED). With subjects =
 * local, then adds the subjects root computed for this host's users (link_local_subjects()).
 * A pending `ssfctl stream create` is answered with the outcome. When root says the stream was
 * deleted by the admin (-ESTALE from the remembered stream id), rx becomes idle and nothing is
 * created. Returns 0 or the first failure. */
int receiver_setup_begin(Receiver *rx);
int receiver_setup_token(Receiver *rx);
int receiver_setup_finish(Receiver *rx, int r, const char *push_authorization);
/* After a failed setup (r < 0): returns false at once for -ECANCELED when not stopping
 * (`ssfctl verify` interrupted it: set up again); else logs that the transmitter is not
 * usable and backs off (receiver_back_off(): true when stopping). */
bool receiver_setup_failed(Receiver *rx, int r);
/* Waits rx->backoff or until stop (then returns true), and doubles rx->backoff up to
 * RECEIVER_BACKOFF_MAX_USEC. */
bool receiver_back_off(Receiver *rx);

/* When due (every RECEIVER_CHECK_MAX_USEC, or half the stream's inactivity_timeout when the
 * transmitter sets one, SSF §8.1.1): reads the stream status (or, without a status endpoint,
 * its configuration). That call keeps the stream active; it notices a stream deleted at the
 * transmitter (then rx is not ready: set it up again) and a status change, which is logged and
 * published. A push receiver makes no other call, a poll receiver learns no status otherwise.
 * Push: first a new access token when due. */
void receiver_check_stream(Receiver *rx);

/* `ssfctl verify`: when the daemon asked for it, asks the transmitter for a verification SET
 * and tells the daemon the outcome. Push: first a new access token when due (nothing else
 * refreshes it there). */
void receiver_maybe_verify(Receiver *rx);

/* Stream administration (link.h "admin"): carries out what root asked for, each request in
 * turn, and answers it: the status update (SSF §8.1.2.2), delete (SSF §8.1.1.5; then rx is
 * idle: not ready, and no stream is set up until a "create"), create (ends the idle state: the
 * next setup runs and answers it), add or remove a subject (SSF §8.1.3). Requests need a
 * stream that is set up, else they are answered -ENOENT. */
void receiver_maybe_admin(Receiver *rx);
/* While idle: answers administration requests and waits for the next one (or stop, then
 * true). */
bool receiver_idle_wait(Receiver *rx);

/* Verifies token (len bytes) against t: issuer, audience, the JWKS, then has the daemon commit
 * it. delivered_jti: the jti it was delivered under (poll), or NULL (push: the payload's jti
 * is the only one). seen_usec (CLOCK_MONOTONIC): when the SET first arrived.
 * A kid that is not in the JWKS is looked up again after a fresh fetch of the JWKS, at most
 * one fetch per JWKS_REFRESH_MIN_USEC (anyone who can deliver a SET can name unknown kids);
 * only a kid still unknown in a JWKS fetched after seen_usec makes the SET invalid_key.
 * Returns 0 when committed, -EALREADY for a duplicate jti (both are to be acknowledged),
 * -EAGAIN when the SET cannot be checked yet (fetch refused by the rate limit, or the JWKS
 * endpoint failed), with *ret_retry_usec (CLOCK_MONOTONIC) when to try again and err
 * cleared: neither acknowledge nor report it; or another negative errno: with err->err set
 * when the SET itself is at fault (logged as rejected; to be reported to the transmitter),
 * without it for a local failure, such as the daemon being busy or unreachable (logged; the
 * transmitter is to deliver it again). */
#define JWKS_REFRESH_MIN_USEC (30u * 1000000u)
int receive_set(Link *link, HttpClient *http, Transmitter *t, const char *token, size_t len,
                const char *delivered_jti, uint64_t seen_usec, SetError *err,
                uint64_t *ret_retry_usec);

/* receive_set() in two steps, so that the poller hands many SETs to root at once: verifies
 * and prepares the record (*ret_req, to be released with ingest_request_done()) and returns 0,
 * or what receive_set() would have returned (logged); then, with what root said of the record,
 * receive_outcome() logs and returns what receive_set() would have. */
int receive_prepare(Link *link, HttpClient *http, Transmitter *t, const char *token, size_t len,
                    const char *delivered_jti, uint64_t seen_usec, IngestRequest *ret_req,
                    SetError *err, uint64_t *ret_retry_usec);
int receive_outcome(const char *jti, int r, const SetError *err);

/* The structured "Rejected a security event token" record. jti may be NULL (unknown). */
void receive_log_rejected(const char *jti, const SetError *err);
