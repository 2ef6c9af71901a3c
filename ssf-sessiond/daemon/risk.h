/* SPDX-License-Identifier: MIT */
#pragma once

/* CAEP/RISC/Okta event -> detection: which detection a validated SET raises or clears, and at
 * what level (PRODUCT.md "Detections"). Pure; runs in the network worker. */

#include <stdbool.h>

#include "config.h"
#include "level.h"
#include "ingest.h"
#include "set.h"


/* Classifies set. Levels come from config_detection_level() (overrides, then defaults) or from
 * the carried level (CAEP LOW/MEDIUM/HIGH, Okta lowercase incl. "secure"/"none"). Returns 0,
 * or -EBADMSG when the event's required members are missing or invalid (e.g. a
 * device-compliance-change without current_status; the SET is then reported invalid_request). */
int risk_classify(const SsfSet *set, const Config *c, Detection *ret);
