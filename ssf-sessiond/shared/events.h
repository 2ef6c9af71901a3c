/* SPDX-License-Identifier: MIT */
#pragma once

/* The event vocabulary, in one table: every subject event type this receiver understands
 * (CAEP 1.0, RISC 1.0, Okta), its detection name (the URI's last path segment, the name rules
 * and [detections] use) and its default level (PRODUCT.md "Detections"). Pure.
 * Linked by both processes. */

#include <stdbool.h>
#include <stddef.h>

#include "level.h"

#define SSF_EVENT_VERIFICATION "https://schemas.openid.net/secevent/ssf/event-type/verification"
#define SSF_EVENT_STREAM_UPDATED "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
#define CAEP_EVENT_PREFIX "https://schemas.openid.net/secevent/caep/event-type/"
#define RISC_EVENT_PREFIX "https://schemas.openid.net/secevent/risc/event-type/"
#define OKTA_EVENT_PREFIX "https://schemas.okta.com/secevent/okta/event-type/"

typedef struct EventType {
        const char *name;   /* detection name */
        const char *uri;    /* canonical event type URI */
        RiskLevel level;    /* default level; _RISK_INVALID: the event carries its level */
        bool detection;     /* a detection (asked for with events = all, named in the
                             * configuration); else only recognised in a SET, and ignored */
} EventType;

extern const EventType event_types[];
extern const size_t n_event_types;

/* The entry for a detection name, or for a canonical URI; NULL when unknown. */
const EventType *event_type_by_name(const char *name);
const EventType *event_type_by_uri(const char *uri);

/* A name the configuration may use: a detection name, or "opt-out" (PRODUCT.md's name for
 * RISC's opt-out-initiated, opt-out-cancelled and opt-out-effective together). */
bool event_name_is_known(const char *name);
/* Whether the configured name covers the detection: the same name, or the family. */
bool event_name_covers(const char *name, const char *detection);

/* Last path segment of an event URI ("…/event-type/session-revoked" -> "session-revoked"). */
const char *event_short_name(const char *event_uri);
