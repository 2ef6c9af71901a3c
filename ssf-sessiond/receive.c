/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ingest.h"
#include "log.h"
#include "macro.h"
#include "receive.h"

#define JWKS_REFRESH_MIN_USEC (30u * 1000000u)

DEFINE_TRIVIAL_CLEANUP_FUNC(SsfSet *, ssf_set_free);

static uint64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

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

int receive_set(Link *link, HttpClient *http, Transmitter *t, const char *token, size_t len,
                const char *delivered_jti, SetError *err) {
        _cleanup_(ssf_set_freep) SsfSet *set = NULL;
        const Config *c = link_config(link);
        IngestRequest req = {};
        SetExpect expect = {
                .issuer = t->issuer,
                .audience = t->audience,
                .now_sec = (uint64_t) time(NULL),
                .max_skew_sec = c->max_clock_skew_usec / 1000000u,
        };
        int r;

        memset(err, 0, sizeof(*err));
        r = set_verify(token, len, t->jwks, &expect, delivered_jti, &set, err);
        if (r == -ENOKEY && mono_usec() - t->jwks_fetched_usec > JWKS_REFRESH_MIN_USEC) {
                /* Maybe the transmitter rotated its keys: refresh once and retry. */
                log_info("No key for SET '%s', refreshing the JWKS",
                         delivered_jti ? delivered_jti : "(pushed)");
                if (stream_fetch_jwks(http, t) >= 0) {
                        memset(err, 0, sizeof(*err));
                        r = set_verify(token, len, t->jwks, &expect, delivered_jti, &set, err);
                }
        }
        if (r >= 0) {
                memset(err, 0, sizeof(*err));
                r = ingest_prepare(c, set, &req, err);
        }
        if (r >= 0) {
                r = link_ingest(link, &req, err);
                ingest_request_done(&req);
        }
        if (r >= 0 || r == -EALREADY)
                return r;
        if (err->err) {
                /* Only a verified SET's jti is worth logging as its name. */
                receive_log_rejected(delivered_jti ? delivered_jti : set ? set->jti : NULL, err);
                return r;
        }
        log_error_errno(r, "Could not record SET '%s', it will be delivered again: %m",
                        delivered_jti ? delivered_jti : set ? set->jti : "(unknown)");
        return r;
}
