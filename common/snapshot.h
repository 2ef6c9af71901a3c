/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The PAM snapshot: the daemon's last known risk levels, read by pam_ssf.so only when the
 * daemon cannot be reached. Written atomically (temporary file + rename), mode 0600, root-owned.
 *
 *   # ssf-sessiond pam-snapshot v2
 *   min_uid UID
 *   max_uid UID
 *   protect NAME…
 *   UID LEVEL UNTIL
 *
 * One entry line per user whose level is above none, keyed by uid (decimal): every name NSS
 * resolves to that account shares its level. LEVEL is none|low|medium|high; UNTIL is the epoch
 * second at which that level lapses unless renewed (0: no expiry). min_uid, max_uid and protect
 * are the daemon's [subjects] settings: pam_ssf.so admits the accounts they protect on its own
 * when the daemon is unreachable. Lines are at most SSF_SNAPSHOT_MAX_LINE bytes; the file at
 * most SSF_SNAPSHOT_MAX_SIZE.
 *
 * The journal, PATH.journal next to the base file PATH (same ownership and mode rules), holds
 * the changes since the base file was written, one line per change, appended as they commit:
 *
 *   # ssf-sessiond pam-journal v1
 *   UID LEVEL UNTIL
 *
 * Each line is the account's whole state after that change (LEVEL none: no longer at risk), so
 * the last line for a uid wins over earlier lines and over the base file. A journal line that
 * is malformed, a policy line, or a last line without its newline (a torn append) makes the
 * whole snapshot unusable, like a malformed base file. No journal: the base file alone.
 *
 * So that a change is never missed, the daemon (1) writes every change to the journal before
 * it is acknowledged, (2) replaces the journal (with the lines the new base file does not
 * cover) only after renaming in a base file that covers everything the old journal said, and
 * the reader (3) opens the journal before the base file. Each line records a whole state, so
 * a base file newer than some journal lines is still read right: those lines are followed by
 * the user's later ones.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "level.h"

#define SSF_SNAPSHOT_HEADER "# ssf-sessiond pam-snapshot v2"
#define SSF_SNAPSHOT_MAX_LINE 512u
#define SSF_SNAPSHOT_MAX_SIZE (8u * 1024u * 1024u)
#define SSF_SNAPSHOT_JOURNAL_HEADER "# ssf-sessiond pam-journal v1"
#define SSF_SNAPSHOT_JOURNAL_SUFFIX ".journal"

typedef struct SsfSnapshotEntry {
        const char *user;    /* the key: the account's uid in decimal */
        RiskLevel level;
        uint64_t until;
} SsfSnapshotEntry;

/* Who is never acted upon, as the daemon was configured when it wrote the file. */
typedef struct SsfSnapshotPolicy {
        bool have_min, have_max, have_protect;
        uint32_t min_uid, max_uid;
        char protect[SSF_SNAPSHOT_MAX_LINE]; /* names, separated by single spaces */
} SsfSnapshotPolicy;

/* Pure parser of one line (without its newline). Returns 1 and fills *ret (pointers into a
 * copy in linebuf, which must be len+1 bytes) when the line is an entry, 2 and fills *policy
 * (when not NULL) for a min_uid, max_uid or protect line, 0 for a comment or blank line,
 * -EBADMSG when malformed. */
int ssf_snapshot_parse_line_policy(const char *line, size_t len, char *linebuf,
                                   SsfSnapshotEntry *ret, SsfSnapshotPolicy *policy);
/* The same for entries, comments and blank lines; a policy line returns 2. */
int ssf_snapshot_parse_line(const char *line, size_t len, char *linebuf, SsfSnapshotEntry *ret);

/* Looks the key user (a uid in decimal) up in the snapshot at path. The file must be a regular
 * file owned by root (or owner_uid), not group- or world-writable, opened O_NOFOLLOW. Returns
 * 0 with *ret_level (none when the entry's UNTIL has passed at now_sec), -ENOENT when the user
 * is not listed, or -errno / -EBADMSG. With 0 and -ENOENT, *ret_policy (when not NULL) holds
 * the file's policy lines. */
int ssf_snapshot_lookup(const char *path, const char *user, uint64_t now_sec, uid_t owner_uid,
                        RiskLevel *ret_level, SsfSnapshotPolicy *ret_policy);

/* The same over the contents of a base file and of its journal (may be NULL: none), in
 * memory. Pure; for tests and fuzzing. */
int ssf_snapshot_lookup_buffers(const char *base, size_t base_len, const char *journal,
                                size_t journal_len, const char *user, uint64_t now_sec,
                                RiskLevel *ret_level, SsfSnapshotPolicy *ret_policy);

/* The journal's path for the base file at path, into buf. Returns 0 or -ENAMETOOLONG. */
int ssf_snapshot_journal_path(const char *path, char *buf, size_t size);

/* Whether policy protects the account uid, whose name is name: a uid outside min_uid…max_uid,
 * or name itself in protect. (A name in protect that is an alias of uid is the caller's to
 * resolve: the module does it through PAM's NSS helpers.) */
bool ssf_snapshot_policy_protects(const SsfSnapshotPolicy *policy, uid_t uid, const char *name);

/* Writes policy (may be NULL) and entries atomically to path (mode 0600). Returns 0 or
 * -errno. */
int ssf_snapshot_write(const char *path, const SsfSnapshotPolicy *policy,
                       const SsfSnapshotEntry *entries, size_t n);

/* Formats e as one journal line (with its newline) into buf. Returns its length or -EINVAL. */
int ssf_snapshot_journal_line(const SsfSnapshotEntry *e, char *buf, size_t size);
/* Installs a new journal for the base file at path (atomically, mode 0600, synced): the header,
 * then tail (whole lines, may be empty). Returns a descriptor open for appending to it, or
 * -errno. */
int ssf_snapshot_journal_install(const char *path, const char *tail, size_t tail_len);
/* Appends len bytes of whole lines to the journal at fd in one write. Returns 0 or -errno. */
int ssf_snapshot_journal_append(int fd, const char *lines, size_t len);
