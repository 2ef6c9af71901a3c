/* SPDX-License-Identifier: MIT */
/*
 * The replay cache's in-memory index (replay.h): an open-addressing table of (hash, rowid)
 * entries with linear probing and backward-shift deletion (no tombstones, so a table that sees
 * every jti come and go never fills with them), and the open transaction's journal. Runs in the
 * root daemon, called by the store only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "macro.h"
#include "replay.h"

#define MIN_SLOTS 1024u
#define KEY_BYTES 16u
/* Journals larger than this are freed at the end of their transaction (a prune of many rows). */
#define JOURNAL_KEEP 4096u

typedef struct Entry {
        uint64_t h;
        int64_t rowid; /* 0: an empty slot */
} Entry;

typedef struct Journal {
        Entry *e;
        size_t n, cap;
        size_t mark; /* n at the savepoint */
} Journal;

struct ReplayIndex {
        EVP_MAC *mac;
        EVP_MAC_CTX *ctx;
        Entry *slots;
        size_t n_slots; /* a power of two */
        size_t n;
        Journal added;   /* entries the open transaction added, in order */
        Journal removed; /* entries whose rows it deleted */
};

int replay_index_new(ReplayIndex **ret) {
        unsigned char key[KEY_BYTES];
        size_t out = sizeof(uint64_t);
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &out),
                OSSL_PARAM_END,
        };
        ReplayIndex *r;
        int ok;

        if (getrandom(key, sizeof(key), 0) != (ssize_t) sizeof(key))
                return errno > 0 ? -errno : -EIO;
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->slots = calloc(MIN_SLOTS, sizeof(Entry));
        r->n_slots = MIN_SLOTS;
        r->mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
        r->ctx = r->mac ? EVP_MAC_CTX_new(r->mac) : NULL;
        ok = r->slots && r->ctx && EVP_MAC_init(r->ctx, key, sizeof(key), params);
        explicit_bzero(key, sizeof(key));
        if (!ok) {
                bool oom = !r->slots;
                replay_index_free(r);
                return oom ? -ENOMEM : -EIO;
        }
        *ret = r;
        return 0;
}

ReplayIndex *replay_index_free(ReplayIndex *r) {
        if (!r)
                return NULL;
        EVP_MAC_CTX_free(r->ctx);
        EVP_MAC_free(r->mac);
        free(r->slots);
        free(r->added.e);
        free(r->removed.e);
        free(r);
        return NULL;
}

int replay_hash(ReplayIndex *r, const char *iss, const char *jti, uint64_t *ret) {
        static const unsigned char sep = 0; /* neither string holds a NUL */
        unsigned char out[sizeof(uint64_t)];
        size_t n = 0;

        iss = iss ? iss : "";
        /* init without a key: again with the one given at creation */
        if (!EVP_MAC_init(r->ctx, NULL, 0, NULL) ||
            !EVP_MAC_update(r->ctx, (const unsigned char *) iss, strlen(iss)) ||
            !EVP_MAC_update(r->ctx, &sep, 1) ||
            !EVP_MAC_update(r->ctx, (const unsigned char *) jti, strlen(jti)) ||
            !EVP_MAC_final(r->ctx, out, &n, sizeof(out)) || n != sizeof(out))
                return -EIO;
        memcpy(ret, out, sizeof(out));
        return 0;
}

static size_t home(const ReplayIndex *r, uint64_t h) {
        return (size_t) h & (r->n_slots - 1);
}

bool replay_index_next(const ReplayIndex *r, uint64_t h, size_t *cursor, int64_t *rowid) {
        size_t mask = r->n_slots - 1;

        /* *cursor counts the slots probed; the table is never full, so a probe ends */
        for (size_t i = (home(r, h) + *cursor) & mask; r->slots[i].rowid != 0; i = (i + 1) & mask) {
                ++*cursor;
                if (r->slots[i].h == h) {
                        *rowid = r->slots[i].rowid;
                        return true;
                }
        }
        return false;
}

static void place(Entry *slots, size_t n_slots, Entry e) {
        size_t i = (size_t) e.h & (n_slots - 1);

        while (slots[i].rowid != 0)
                i = (i + 1) & (n_slots - 1);
        slots[i] = e;
}

static int resize(ReplayIndex *r, size_t n_slots) {
        Entry *slots = calloc(n_slots, sizeof(Entry));

        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_slots; i++)
                if (r->slots[i].rowid != 0)
                        place(slots, n_slots, r->slots[i]);
        free(r->slots);
        r->slots = slots;
        r->n_slots = n_slots;
        return 0;
}

/* At most 3/4 full, so that probes stay short. */
static int reserve_slot(ReplayIndex *r) {
        if ((r->n + 1) * 4 <= r->n_slots * 3)
                return 0;
        if (r->n_slots > SIZE_MAX / 2 / sizeof(Entry))
                return -ENOMEM;
        return resize(r, r->n_slots * 2);
}

/* After removals: a table less than 1/8 full is halved (to at most 3/8 full), down to
 * MIN_SLOTS. Best effort. */
static void maybe_shrink(ReplayIndex *r) {
        size_t n_slots = r->n_slots;

        while (n_slots > MIN_SLOTS && r->n * 8 < n_slots / 2 * 3)
                n_slots /= 2;
        if (n_slots < r->n_slots && r->n * 8 < r->n_slots)
                (void) resize(r, n_slots);
}

static bool remove_entry(ReplayIndex *r, uint64_t h, int64_t rowid) {
        size_t mask = r->n_slots - 1, i;

        for (i = home(r, h); r->slots[i].rowid != 0; i = (i + 1) & mask)
                if (r->slots[i].h == h && r->slots[i].rowid == rowid)
                        break;
        if (r->slots[i].rowid == 0)
                return false;
        /* Backward shift: an entry after the hole moves into it unless the hole lies before its
         * home slot (it would then not be found from there). */
        for (size_t j = (i + 1) & mask; r->slots[j].rowid != 0; j = (j + 1) & mask) {
                size_t k = home(r, r->slots[j].h);

                if (((i - k) & mask) < ((j - k) & mask)) {
                        r->slots[i] = r->slots[j];
                        i = j;
                }
        }
        r->slots[i] = (Entry) {};
        r->n--;
        return true;
}

static int journal_reserve(Journal *j) {
        size_t cap;
        Entry *e;

        if (j->n < j->cap)
                return 0;
        cap = j->cap ? j->cap * 2 : 64;
        if (cap > SIZE_MAX / sizeof(Entry))
                return -ENOMEM;
        e = realloc(j->e, cap * sizeof(Entry));
        if (!e)
                return -ENOMEM;
        j->e = e;
        j->cap = cap;
        return 0;
}

static void journal_reset(Journal *j) {
        j->n = j->mark = 0;
        if (j->cap > JOURNAL_KEEP) {
                j->e = mfree(j->e);
                j->cap = 0;
        }
}

int replay_index_add(ReplayIndex *r, uint64_t h, int64_t rowid) {
        int k;

        if (rowid <= 0)
                return -EINVAL;
        k = journal_reserve(&r->added);
        if (k >= 0)
                k = reserve_slot(r);
        if (k < 0)
                return k;
        place(r->slots, r->n_slots, (Entry) { h, rowid });
        r->n++;
        r->added.e[r->added.n++] = (Entry) { h, rowid };
        return 0;
}

int replay_index_remove_at_commit(ReplayIndex *r, uint64_t h, int64_t rowid) {
        int k = journal_reserve(&r->removed);

        if (k < 0)
                return k;
        r->removed.e[r->removed.n++] = (Entry) { h, rowid };
        return 0;
}

void replay_index_commit(ReplayIndex *r) {
        for (size_t i = 0; i < r->removed.n; i++)
                (void) remove_entry(r, r->removed.e[i].h, r->removed.e[i].rowid);
        if (r->removed.n > 0)
                maybe_shrink(r);
        journal_reset(&r->added);
        journal_reset(&r->removed);
}

static void undo_to(ReplayIndex *r, size_t added, size_t removed) {
        while (r->added.n > added) {
                Entry e = r->added.e[--r->added.n];
                (void) remove_entry(r, e.h, e.rowid);
        }
        r->removed.n = MIN(r->removed.n, removed);
}

void replay_index_rollback(ReplayIndex *r) {
        undo_to(r, 0, 0);
        maybe_shrink(r);
        journal_reset(&r->added);
        journal_reset(&r->removed);
}

void replay_index_savepoint(ReplayIndex *r) {
        r->added.mark = r->added.n;
        r->removed.mark = r->removed.n;
}

void replay_index_rollback_savepoint(ReplayIndex *r) {
        undo_to(r, r->added.mark, r->removed.mark);
}

size_t replay_index_count(const ReplayIndex *r) {
        return r->n;
}
