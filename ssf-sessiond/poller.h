/* SPDX-License-Identifier: MIT */
#pragma once

/* RFC 8936 poll delivery, in the unprivileged network worker: sets the stream up (stream.c),
 * long-polls, verifies each SET (set.c), classifies it and maps its subject (ingest.c), has
 * the daemon commit it over the link, reports invalid ones in setErrs, acknowledges what was
 * committed, and flushes pending acknowledgements when asked to stop. */

#include "http.h"
#include "link.h"
#include "oauth2.h"

/* Runs until the link says stop, with http (made before the privilege drop; freed on return).
 * authorization: the Authorization header value, or NULL; oauth2 (auth = oauth2, else NULL):
 * where access tokens come from instead. */
int poller_run(Link *link, HttpClient *http, const char *authorization, OAuth2Client *oauth2);
