/* SPDX-License-Identifier: MIT */
#pragma once

/* Subject identifier (RFC 9493 + SSF §3) -> local Unix users, per [subjects].
 * Runs in the root daemon. */

#include <stdbool.h>

#include <jansson.h>

#include "config.h"

typedef struct SubjectMatch {
        char **users;      /* NULL-terminated, owned; empty when nothing maps */
        bool host_wide;    /* device-only subject naming this host (device_id): every local
                              user within min_uid…max_uid from the passwd database is
                              in users */
        char *description; /* "email alice@example.com", for logs/history (owned) */
        bool discarded;    /* a complex subject carries a critical member this receiver does
                              not interpret (SSF §3.6): users is empty and description says
                              which; the event must be discarded (acknowledged, not applied) */
        char *not_here;    /* [subjects] device_scope = this-host and the subject names a user
                              and another device: why it does not apply to this host (owned);
                              users still holds the user, for the record. NULL otherwise */
} SubjectMatch;

/* Resolves subject (may be NULL: nothing maps). map_file lines "VALUE LOCAL-USER" win over
 * map; email-localpart/email only map addresses of [subjects] domains (case-insensitive); a
 * mapped name must exist in the passwd database (getpwnam_r), else it is dropped. Supports
 * email, iss_sub, opaque, uri/url/did, phone_number, aliases (each in turn), complex (user
 * member; device-only -> device_id rule; user and device with device_scope = this-host ->
 * not_here unless the device is device_id) and complex subjects without "format" (Okta). Returns
 * 0, or -EBADMSG for a malformed subject, or another -errno when map_file cannot be used
 * (-ENOENT, -EPERM: not root-owned or group/world-writable, -ELOOP: a symlink, -EFBIG: over
 * 1 MiB; nothing is decided then: the caller logs it and should not treat the SET as applied). */
int subject_resolve(const Config *c, json_t *subject, SubjectMatch *ret);
/* The same, honouring the transmitter's critical_subject_members (NULL: none). A complex
 * subject with a member named there that is not interpreted is discarded (ret->discarded)
 * before anything is mapped. Interpreted members: "user" always; "device" only with
 * [subjects] device_id (without it this host cannot tell whether the device is itself). */
int subject_resolve_critical(const Config *c, json_t *subject, char *const *critical,
                             SubjectMatch *ret);
void subject_match_done(SubjectMatch *m);
