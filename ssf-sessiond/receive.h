/* SPDX-License-Identifier: MIT */
#pragma once

/* One delivered SET, whichever way it came (poll, RFC 8936, or push, RFC 8935): verified
 * against the transmitter's keys (set.c), classified and mapped (ingest.c), and handed to the
 * daemon to commit (link.c). Shared by poller.c and push.c; runs in the network worker. */

#include <stddef.h>

#include "http.h"
#include "link.h"
#include "set.h"
#include "stream.h"

/* Verifies token (len bytes) against t: issuer, audience, the JWKS (refreshed once through
 * http when no key matches and the last fetch is older than 30 s), then has the daemon commit
 * it. delivered_jti: the jti it was delivered under (poll), or NULL (push: the payload's jti
 * is the only one). Returns 0 when committed, -EALREADY for a duplicate jti (both are to be
 * acknowledged), or a negative errno: with err->err set when the SET itself is at fault
 * (logged as rejected; to be reported to the transmitter), without it for a local failure
 * (logged; the transmitter is to deliver it again). */
int receive_set(Link *link, HttpClient *http, Transmitter *t, const char *token, size_t len,
                const char *delivered_jti, SetError *err);

/* The structured "Rejected a security event token" record. jti may be NULL (unknown). */
void receive_log_rejected(const char *jti, const SetError *err);
