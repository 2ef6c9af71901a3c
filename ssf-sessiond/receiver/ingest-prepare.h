/* SPDX-License-Identifier: MIT */
#pragma once

/* Preparing the record root commits for one verified SET (ingest.h). Runs in the network
 * worker. Runs in the network worker. */

#include "config.h"
#include "ingest.h"
#include "set.h"

/* Classifies set and maps its subject per c. critical is the transmitter's
 * critical_subject_members (NULL: none): a subject with a critical member this receiver does
 * not interpret is discarded (SSF §3.6) -- a subject record with no users whose subject_desc
 * says why, so the SET is acknowledged and recorded but applies to nobody. Returns 0, or a
 * negative errno with *err filled when the SET is at fault (invalid_request), or without it
 * for a local failure (then the SET is neither acknowledged nor reported). */
int ingest_prepare(const Config *c, char *const *critical, const SsfSet *set, IngestRequest *ret,
                   SetError *err);
