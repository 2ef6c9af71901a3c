/* SPDX-License-Identifier: MIT */
/*
 * An event (its type and members, as the worker handed them over) -> the detection it raises,
 * clears or merely records (PRODUCT.md "Detections"), or the [detection NAME] section whose
 * claims its members match. Pure: reads the event's members, the [detections] levels and the
 * [detection NAME] sections, nothing else. Runs in the root daemon.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "config.h"
#include "events.h"
#include "level.h"
#include "log.h"
#include "macro.h"
#include "pattern.h"
#include "risk.h"

/* Copies s into dst (size > 0), replacing control characters with spaces and never cutting a
 * UTF-8 sequence in half. The text comes from the network and ends up in logs and hook
 * environments. */
static void copy_text(char *dst, size_t size, const char *s) {
        size_t o = 0;

        for (size_t i = 0; s && s[i];) {
                unsigned char c = (unsigned char) s[i];
                size_t n = 1;

                if (c >= 0xf0)
                        n = 4;
                else if (c >= 0xe0)
                        n = 3;
                else if (c >= 0xc0)
                        n = 2;
                if (o + n >= size)
                        break;
                if (n == 1) {
                        dst[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char) c;
                        i++;
                        continue;
                }
                for (size_t k = 0; k < n; k++) {
                        if (!s[i + k]) { /* truncated sequence (jansson validated UTF-8) */
                                dst[o] = 0;
                                return;
                        }
                        dst[o++] = s[i + k];
                }
                i += n;
        }
        dst[o] = 0;
}

/* reason_admin.en, else its first string value, else risk_reason, else reason. */
static void pick_reason(json_t *event, char *dst, size_t size) {
        json_t *ra = json_object_get(event, "reason_admin"), *v;
        const char *key;

        dst[0] = 0;
        if (json_is_object(ra)) {
                v = json_object_get(ra, "en");
                if (json_is_string(v)) {
                        copy_text(dst, size, json_string_value(v));
                        return;
                }
                json_object_foreach(ra, key, v)
                        if (json_is_string(v)) {
                                copy_text(dst, size, json_string_value(v));
                                return;
                        }
        }
        v = json_object_get(event, "risk_reason");
        if (json_is_string(v)) {
                copy_text(dst, size, json_string_value(v));
                return;
        }
        v = json_object_get(event, "reason");
        if (json_is_string(v))
                copy_text(dst, size, json_string_value(v));
}

static const char *get_string(json_t *event, const char *name) {
        json_t *v = json_object_get(event, name);
        return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

/* The configured level: raise at it, or record only when it is none. */
static void raise_configured(const Config *c, Detection *d) {
        RiskLevel l = config_detection_level(c, d->name);

        if (l < 0 || l == RISK_NONE) {
                d->effect = DETECTION_RECORD;
                d->level = RISK_NONE;
                d->explicit_only = true;
        } else {
                d->effect = DETECTION_RAISE;
                d->level = l;
        }
}

/* The text a claims pattern is matched against: a string as it is, an integer in decimal,
 * true and false as those words. Anything else (a real number, null, an object, an array, a
 * string holding a NUL byte) has none and matches no pattern. Returns the length, or -1. */
static ssize_t member_text(json_t *v, char *buf, size_t size, const char **ret) {
        int n;

        if (json_is_string(v)) {
                size_t len = json_string_length(v);
                if (strlen(json_string_value(v)) != len)
                        return -1;
                *ret = json_string_value(v);
                return (ssize_t) len;
        }
        if (json_is_integer(v))
                n = snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_boolean(v))
                n = snprintf(buf, size, "%s", json_is_true(v) ? "true" : "false");
        else
                return -1;
        if (n < 0 || (size_t) n >= size)
                return -1;
        *ret = buf;
        return n;
}

bool risk_claims_match(const DetectionDef *def, json_t *event) {
        if (!def || !json_is_object(event) || def->n_claims == 0)
                return false;
        for (size_t i = 0; i < def->n_claims; i++) {
                const ClaimTerm *t = &def->claims[i];
                json_t *v = json_object_get(event, t->member);
                const char *text = NULL;
                char buf[32];
                ssize_t len;
                bool any = false;

                len = v ? member_text(v, buf, sizeof buf, &text) : -1;
                if (len < 0)
                        return false; /* a missing member does not match */
                for (char **p = t->patterns; p && *p && !any; p++)
                        any = pattern_match(*p, text, (size_t) len);
                if (!any)
                        return false;
        }
        return true;
}

/* The first [detection NAME] section for this event whose claims match names the detection
 * and sets its level. Only for events classified at a configured level: a clearing event
 * (compliant again, account-enabled) still clears, and an event carrying its level keeps it. */
static void apply_defined(const Config *c, const char *event_name, json_t *ev, Detection *d) {
        for (size_t i = 0; c && i < c->n_detection_defs; i++) {
                const DetectionDef *def = &c->detection_defs[i];

                if (!streq_ptr(def->event, event_name) || !risk_claims_match(def, ev))
                        continue;
                copy_text(d->name, sizeof d->name, def->name);
                d->defined = true;
                if (def->level <= RISK_NONE) {
                        d->effect = DETECTION_RECORD;
                        d->level = RISK_NONE;
                        d->explicit_only = true;
                } else {
                        d->effect = DETECTION_RAISE;
                        d->level = def->level;
                        d->explicit_only = false;
                }
                return;
        }
}

int risk_classify(const char *event_uri, json_t *event, const Config *c, Detection *ret) {
        Detection d = {};
        const EventType *type;
        const char *name, *s;
        json_t *ev;

        if (!event_uri || !ret)
                return -EINVAL;
        ev = event;
        if (!json_is_object(ev))
                return -EBADMSG;

        copy_text(d.name, sizeof d.name, event_short_name(event_uri));
        pick_reason(ev, d.reason, sizeof d.reason);

        /* Stream events (verification, stream-updated) are the manager's; unknown types are
         * acknowledged and ignored (SETs are not commands). */
        type = event_type_by_uri(event_uri);
        if (!type || !type->detection) {
                d.effect = DETECTION_IGNORE;
                d.level = RISK_NONE;
                *ret = d;
                return 0;
        }
        name = type->name;

        if (streq(name, "device-compliance-change")) {
                s = get_string(ev, "current_status");
                if (!s)
                        return -EBADMSG;
                if (strcasecmp(s, "compliant") == 0) {
                        d.effect = DETECTION_CLEAR;
                        d.level = RISK_NONE;
                        copy_text(d.clears, sizeof d.clears, "device-compliance-change");
                } else if (strcasecmp(s, "not-compliant") == 0)
                        raise_configured(c, &d);
                else
                        return -EBADMSG;

        } else if (streq(name, "account-enabled")) {
                d.effect = DETECTION_CLEAR;
                d.level = RISK_NONE;
                copy_text(d.clears, sizeof d.clears, "account-disabled");

        } else if (streq(name, "assurance-level-change")) {
                s = get_string(ev, "change_direction");
                if (s && strcasecmp(s, "decrease") == 0)
                        raise_configured(c, &d);
                else {
                        d.effect = DETECTION_RECORD;
                        d.level = RISK_NONE;
                }

        } else if (streq(name, "credential-change")) {
                if (!get_string(ev, "credential_type") || !get_string(ev, "change_type"))
                        return -EBADMSG;
                raise_configured(c, &d);

        } else if (streq(name, "risk-level-change")) {
                /* CAEP: LOW, MEDIUM, HIGH (accepted in any case). */
                RiskLevel l;

                s = get_string(ev, "current_level");
                if (!s)
                        return -EBADMSG;
                l = risk_level_from_string(s);
                if (l < RISK_LOW)
                        return -EBADMSG;
                d.effect = DETECTION_RAISE;
                d.level = l;
                d.carries_level = true;

        } else if (streq(name, "user-risk-change") || streq(name, "device-risk-change")) {
                /* Okta: low, medium, high, secure, none; secure and none carry level none. */
                RiskLevel l;

                s = get_string(ev, "current_level");
                if (!s)
                        return -EBADMSG;
                l = risk_level_from_string(s);
                if (l < 0)
                        return -EBADMSG;
                d.effect = DETECTION_RAISE;
                d.level = l;
                d.carries_level = true;

        } else
                /* Everything else at its configured level. session-established/-presented,
                 * opt-in and opt-out* default to none and are then only recorded; an override
                 * in [detections] may make them raise. */
                raise_configured(c, &d);

        if ((d.effect == DETECTION_RAISE && !d.carries_level) || d.effect == DETECTION_RECORD)
                apply_defined(c, name, ev, &d);

        log_debug("risk: %s -> %s %s", d.name,
                  d.effect == DETECTION_RAISE   ? "raise"
                  : d.effect == DETECTION_CLEAR ? "clear"
                  : d.effect == DETECTION_RECORD ? "record"
                                                 : "ignore",
                  strempty(risk_level_to_string(d.level)));
        *ret = d;
        return 0;
}
