/* SPDX-License-Identifier: MIT */
#pragma once

/* Subject identifier (RFC 9493 + SSF §3) -> local Unix users, per [subjects].
 * Runs in the root daemon. */

#include <stdbool.h>

#include <jansson.h>

#include "config.h"
#include "users.h"

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

/* The other way (PRODUCT.md "Several transmitters", subjects = local): the subject identifiers
 * that map to the local user u (given: the name it was asked for), appended to the array
 * subjects without duplicates: its map_file entries (each by the shape of its value: email,
 * account, did, phone_number, uri, else opaque), else an email subject USER@DOMAIN for each of
 * [subjects] domains. Returns 0, or -EADDRNOTAVAIL when domains is not an explicit list (then
 * nothing says what its addresses are), or the map_file's -errno; error (size bytes) says why. */
int subject_for_user(const Config *c, const LocalUser *u, const char *given, json_t *subjects,
                     char *error, size_t size);
/* Those of every account of the passwd database (getpwent) that is not protected (uid within
 * min_uid…max_uid, not in protect), at most LOCAL_SUBJECTS_MAX_USERS accounts: a new array in
 * *ret, or the first failure as subject_for_user() reports it. */
#define LOCAL_SUBJECTS_MAX_USERS 2000u
int subject_local_subjects(const Config *c, json_t **ret, char *error, size_t size);

/* A subject identifier an admin gives as JSON text (`ssfctl subjects add '{"format":…}'`): at
 * most SUBJECT_ADMIN_MAX bytes, one JSON object (duplicate names refused) of a known format
 * (RFC 9493 and SSF §3.5: account, email, iss_sub, opaque, phone_number, did, uri, aliases,
 * complex, jwt_id, saml_assertion_id, ip-addresses) with its required members non-empty;
 * aliases and complex hold such identifiers, not nested further. 0 with a new reference, or
 * -EINVAL/-E2BIG with the reason in error (size bytes, no control characters). */
#define SUBJECT_ADMIN_MAX 4096u
int subject_parse_admin(const char *text, size_t len, json_t **ret, char *error, size_t size);
