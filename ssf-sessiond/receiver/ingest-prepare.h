/* SPDX-License-Identifier: MIT */
#pragma once

/* Preparing the record root commits for one verified SET (ingest.h). Runs in the network
 * worker. */

#include "config.h"
#include "ingest.h"
#include "set.h"

/* The record of set for root: its claims, the event's members, the subject and the
 * transmitter's critical_subject_members (critical, NULL: none), which root honours when it maps
 * the subject (SSF §3.6). c is not consulted for conclusions: root derives them. Returns 0,
 * -EBADMSG or -E2BIG with *err filled when the SET is at fault (invalid_request: a
 * stream-updated event without a valid status, a member past root's bounds), or -ENOMEM. */
int ingest_prepare(const Config *c, char *const *critical, const SsfSet *set, IngestRequest *ret,
                   SetError *err);
