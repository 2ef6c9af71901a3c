/* SPDX-License-Identifier: MIT */
#pragma once

/* The replay cache's index, in memory: which rows of the store's jti table hold an (iss, jti)
 * of a given keyed hash. The replay check of a SET (RFC 8417 §2.2 jti, RFC 8936 §2.3
 * redelivery) reads the candidates it names, so that the table needs no (iss, jti) index: an
 * index keyed by random jtis is written at a random page by every SET, and at 100,000 rows those
 * pages were most of a commit's WAL. Runs in the root daemon, under the store (store.c), which
 * owns the transaction: adds show at once and are undone by a rollback; removals wait for the
 * commit of the transaction that deleted the rows.
 *
 * The hash is SipHash-2-4 under a key drawn at start: jtis come from the network (through the
 * worker, which may be compromised), and chosen collisions must not make a probe long. A hash
 * names candidates only; the store compares the row's iss and jti, so a collision never makes a
 * SET a replay. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ReplayIndex ReplayIndex;

int replay_index_new(ReplayIndex **ret);
ReplayIndex *replay_index_free(ReplayIndex *r);

/* The keyed hash of (iss, jti). */
uint64_t replay_hash(const ReplayIndex *r, const char *iss, const char *jti);
/* SipHash-2-4 of the bytes of a, then of b, under key (the hash replay_hash() uses). */
uint64_t replay_siphash24(const uint8_t key[16], const void *a, size_t na, const void *b,
                          size_t nb);

/* The rows whose entries have hash h, one per call: *cursor starts at 0; returns false after the
 * last. Only valid while the index is not changed. */
bool replay_index_next(const ReplayIndex *r, uint64_t h, size_t *cursor, int64_t *rowid);

/* Adds the entry of a row (rowid > 0) the open transaction inserted. -ENOMEM leaves the index
 * as it was. */
int replay_index_add(ReplayIndex *r, uint64_t h, int64_t rowid);
/* The row was deleted by the open transaction: its entry goes at the commit. */
int replay_index_remove_at_commit(ReplayIndex *r, uint64_t h, int64_t rowid);

/* The transaction's end: commit applies the removals; rollback undoes the adds and forgets the
 * removals. A savepoint marks where rollback_savepoint() returns to. Outside a transaction, the
 * store commits after each statement. */
void replay_index_commit(ReplayIndex *r);
void replay_index_rollback(ReplayIndex *r);
void replay_index_savepoint(ReplayIndex *r);
void replay_index_rollback_savepoint(ReplayIndex *r);

/* Entries, the open transaction's adds included. */
size_t replay_index_count(const ReplayIndex *r);
