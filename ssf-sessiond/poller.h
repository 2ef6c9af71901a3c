/* SPDX-License-Identifier: MIT */
#pragma once

/* The poll thread: RFC 8936 poll delivery. Sets the stream up (stream.c), long-polls,
 * verifies each SET, hands valid ones to engine_ingest(), reports invalid ones in setErrs,
 * acknowledges what was committed, and flushes pending acknowledgements on shutdown. */

#include "manager.h"

void *poll_thread(void *userdata);
