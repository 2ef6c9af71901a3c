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

/* The worker process's main(): serves the transmitters named in names (root passes each as
 * "--transmitter=NAME", with its channel on fd LINK_FD + i in that order; none: the only one,
 * or "default"). A poll transmitter has a worker of its own; the push transmitters share one
 * worker, which owns the one push listener and routes each request by its path (push.h).
 * Returns the exit status. */
int worker_main(const char *config_path, char *const *names, size_t n_names);
