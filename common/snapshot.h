/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The PAM snapshot: the daemon's last known risk levels, read by pam_ssf.so only when the
 * daemon cannot be reached. Written atomically (temporary file + rename), mode 0600, root-owned.
 *
 *   # ssf-sessiond pam-snapshot v1
 *   USER LEVEL UNTIL
 *
 * One line per user whose level is above none. LEVEL is none|low|medium|high; UNTIL is the
 * epoch second at which that level lapses unless renewed (0: no expiry). Lines are at most
 * SSF_SNAPSHOT_MAX_LINE bytes; the file at most SSF_SNAPSHOT_MAX_SIZE.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "level.h"

#define SSF_SNAPSHOT_HEADER "# ssf-sessiond pam-snapshot v1"
#define SSF_SNAPSHOT_MAX_LINE 512u
#define SSF_SNAPSHOT_MAX_SIZE (8u * 1024u * 1024u)

typedef struct SsfSnapshotEntry {
        const char *user;
        RiskLevel level;
        uint64_t until;
} SsfSnapshotEntry;

/* Pure parser of one line (without its newline). Returns 1 and fills *ret (pointers into a
 * copy in linebuf, which must be len+1 bytes) when the line is an entry, 0 for a comment or
 * blank line, -EBADMSG when malformed. */
int ssf_snapshot_parse_line(const char *line, size_t len, char *linebuf, SsfSnapshotEntry *ret);

/* Looks user up in the snapshot at path. The file must be a regular file owned by root (or
 * owner_uid), not group- or world-writable, opened O_NOFOLLOW. Returns 0 with *ret_level (none
 * when the entry's UNTIL has passed at now_sec), -ENOENT when the user is not listed, or
 * -errno / -EBADMSG. */
int ssf_snapshot_lookup(const char *path, const char *user, uint64_t now_sec, uid_t owner_uid,
                        RiskLevel *ret_level);

/* Writes entries atomically to path (mode 0600). Returns 0 or -errno. */
int ssf_snapshot_write(const char *path, const SsfSnapshotEntry *entries, size_t n);
