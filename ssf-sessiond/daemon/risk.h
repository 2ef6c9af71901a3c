/* SPDX-License-Identifier: MIT */
#pragma once

/* CAEP/RISC/Okta event -> detection: which detection a validated SET raises or clears, and at
 * what level (PRODUCT.md "Detections"). Pure. Runs in the root daemon, on the event
 * members the network worker handed over (root derives the detection itself). */

#include <stdbool.h>

#include <jansson.h>

#include "config.h"
#include "level.h"
#include "ingest.h"

typedef enum DetectionEffect {
        DETECTION_RAISE,  /* set (user, detection) to level */
        DETECTION_CLEAR,  /* the event reports good standing: delete (user, clears) */
        DETECTION_RECORD, /* level none: history only (session-established, opt-in, …) */
        DETECTION_IGNORE, /* not a subject event we act on (unknown URI; ack and log) */
} DetectionEffect;

typedef struct Detection {
        char name[64];        /* short name, e.g. "device-compliance-change" */
        DetectionEffect effect;
        RiskLevel level;      /* for RAISE */
        bool carries_level;   /* risk-level-change, user-risk-change, device-risk-change:
                                 replaces the stored level up or down. Okta's "secure" and
                                 "none" give effect RAISE with level RISK_NONE: the stored
                                 level of this detection becomes none (the caller may delete
                                 the detection). [detections] overrides do not apply to these
                                 events: the carried level is the point of them. */
        bool defined;         /* named by a [detection NAME] section (its name is in name) */
        bool explicit_only;   /* a detection at level none (configured, or a section's):
                                 recorded, and evaluated only against the rules that name
                                 it in detections */
        char clears[64];      /* for CLEAR: the detection it opposes (and the [detection NAME]
                                 sections of that event) */
        char reason[256];     /* reason_admin (en or first), risk_reason, or "" */
} Detection;

/* Classifies the event: its canonical type URI and its members (event, an object). Levels come
 * from config_detection_level() (overrides, then defaults) or from the carried level (CAEP
 * LOW/MEDIUM/HIGH, Okta lowercase incl. "secure"/"none"). An event that would raise or record
 * at a configured level is then given to the [detection NAME] sections in file order: the
 * first for its type whose claims match names the detection and its level. Returns 0, or
 * -EBADMSG when the event's required members are missing or invalid (e.g. a
 * device-compliance-change without current_status; the SET is then reported invalid_request). */
int risk_classify(const char *event_uri, json_t *event, const Config *c, Detection *ret);

/* Whether every claims term of def matches the event's top-level members: a string member by
 * its value, an integer in decimal, true/false as those words; a missing member, null, a
 * real number, an object or an array matches nothing. Case-sensitive globs (pattern.h). */
bool risk_claims_match(const DetectionDef *def, json_t *event);
