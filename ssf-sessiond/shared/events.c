/* SPDX-License-Identifier: MIT */
/*
 * The event vocabulary (events.h): event type URIs, detection names and default levels.
 * Pure. Linked by both processes.
 */
#include "events.h"
#include "macro.h"

#define CAEP(n, l) { n, CAEP_EVENT_PREFIX n, l, true }
#define RISC(n, l) { n, RISC_EVENT_PREFIX n, l, true }
#define OKTA(n, l, detection) { n, OKTA_EVENT_PREFIX n, l, detection }

#define OPT_OUT_FAMILY "opt-out"

const EventType event_types[] = {
        /* CAEP 1.0 */
        CAEP("session-revoked", RISK_HIGH),
        CAEP("token-claims-change", RISK_MEDIUM),
        CAEP("credential-change", RISK_MEDIUM),
        CAEP("assurance-level-change", RISK_MEDIUM),
        CAEP("device-compliance-change", RISK_HIGH),
        CAEP("session-established", RISK_NONE),
        CAEP("session-presented", RISK_NONE),
        CAEP("risk-level-change", _RISK_INVALID),
        /* RISC 1.0 */
        RISC("account-disabled", RISK_HIGH),
        RISC("account-enabled", RISK_NONE),
        RISC("account-purged", RISK_HIGH),
        RISC("account-credential-change-required", RISK_MEDIUM),
        RISC("credential-compromise", RISK_HIGH),
        RISC("identifier-changed", RISK_MEDIUM),
        RISC("identifier-recycled", RISK_HIGH),
        RISC("recovery-activated", RISK_MEDIUM),
        RISC("recovery-information-changed", RISK_MEDIUM),
        RISC("opt-in", RISK_NONE),
        RISC("opt-out-initiated", RISK_NONE),
        RISC("opt-out-cancelled", RISK_NONE),
        RISC("opt-out-effective", RISK_NONE),
        RISC("sessions-revoked", RISK_HIGH), /* deprecated for CAEP session-revoked */
        /* Okta */
        OKTA("user-risk-change", _RISK_INVALID, true),
        OKTA("device-risk-change", _RISK_INVALID, true),
        OKTA("ip-change", RISK_NONE, false), /* in Okta's SETs beside others: recognised */
};

const size_t n_event_types = ARRAY_SIZE(event_types);

const EventType *event_type_by_name(const char *name) {
        if (!name)
                return NULL;
        for (size_t i = 0; i < n_event_types; i++)
                if (event_types[i].detection && streq(event_types[i].name, name))
                        return &event_types[i];
        return NULL;
}

const EventType *event_type_by_uri(const char *uri) {
        if (!uri)
                return NULL;
        for (size_t i = 0; i < n_event_types; i++)
                if (streq(event_types[i].uri, uri))
                        return &event_types[i];
        return NULL;
}

bool event_name_is_known(const char *name) {
        return event_type_by_name(name) || streq_ptr(name, OPT_OUT_FAMILY);
}

bool event_name_covers(const char *name, const char *detection) {
        const char *rest;

        if (!name || !detection)
                return false;
        if (streq(name, detection))
                return true;
        rest = startswith(detection, OPT_OUT_FAMILY "-");
        return streq(name, OPT_OUT_FAMILY) && rest && event_type_by_name(detection);
}

const char *event_short_name(const char *event_uri) {
        const char *p;

        if (!event_uri)
                return NULL;
        p = strrchr(event_uri, '/');
        if (p)
                return p[1] ? p + 1 : event_uri;
        p = strrchr(event_uri, ':');
        if (p && p[1])
                return p + 1;
        return event_uri;
}
