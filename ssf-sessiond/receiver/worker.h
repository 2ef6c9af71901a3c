/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The network worker: a separate process, started by the daemon as
 * "ssf-sessiond --network-worker" with the channel on fd 3 (link.h). It reads the
 * configuration and the transmitter credentials while still root, then drops to the
 * unprivileged SSF_WORKER_USER (never "nobody": without that user it refuses to run) with no
 * supplementary groups and no_new_privs, applies its seccomp allow-list (sandbox.h), and only
 * then talks to the network: discovery, JWKS,
 * stream, polling, JWS and SET parsing, event classification and subject mapping all happen
 * unprivileged. The daemon receives validated IngestRequests and applies them.
 */

/* The worker process's main(): serves the transmitter named transmitter_name (root passes it
 * as "--transmitter=NAME"; NULL: the only one, or "default"). One worker per transmitter.
 * Returns the exit status. */
int worker_main(const char *config_path, const char *transmitter_name);
