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
        uint8_t key[KEY_BYTES];
        Entry *slots;
        size_t n_slots; /* a power of two */
        size_t n;
        Journal added;   /* entries the open transaction added, in order */
        Journal removed; /* entries whose rows it deleted */
};

/* ---- SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012) ----------
 * Here, not from OpenSSL: root links no cryptographic library (the network worker alone does). */

#define ROTL(x, b) (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))

typedef struct Sip {
        uint64_t v0, v1, v2, v3;
        uint64_t tail;  /* bytes of the word being filled, little-endian */
        size_t len;     /* bytes taken so far */
} Sip;

static void sip_round(Sip *s) {
        s->v0 += s->v1;
        s->v1 = ROTL(s->v1, 13);
        s->v1 ^= s->v0;
        s->v0 = ROTL(s->v0, 32);
        s->v2 += s->v3;
        s->v3 = ROTL(s->v3, 16);
        s->v3 ^= s->v2;
        s->v0 += s->v3;
        s->v3 = ROTL(s->v3, 21);
        s->v3 ^= s->v0;
        s->v2 += s->v1;
        s->v1 = ROTL(s->v1, 17);
        s->v1 ^= s->v2;
        s->v2 = ROTL(s->v2, 32);
}

static void sip_word(Sip *s, uint64_t m) {
        s->v3 ^= m;
        sip_round(s);
        sip_round(s);
        s->v0 ^= m;
}

static uint64_t le64(const uint8_t *p) {
        uint64_t v = 0;

        for (size_t i = 0; i < 8; i++)
                v |= (uint64_t) p[i] << (8 * i);
        return v;
}

static void sip_init(Sip *s, const uint8_t key[KEY_BYTES]) {
        uint64_t k0 = le64(key), k1 = le64(key + 8);

        *s = (Sip) {
                .v0 = k0 ^ 0x736f6d6570736575ULL,
                .v1 = k1 ^ 0x646f72616e646f6dULL,
                .v2 = k0 ^ 0x6c7967656e657261ULL,
                .v3 = k1 ^ 0x7465646279746573ULL,
        };
}

static void sip_update(Sip *s, const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                s->tail |= (uint64_t) p[i] << (8 * (s->len % 8));
                if (++s->len % 8 == 0) {
                        sip_word(s, s->tail);
                        s->tail = 0;
                }
        }
}

static uint64_t sip_final(Sip *s) {
        sip_word(s, s->tail | (uint64_t) (s->len & 0xff) << 56);
        s->v2 ^= 0xff;
        for (int i = 0; i < 4; i++)
                sip_round(s);
        return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

uint64_t replay_siphash24(const uint8_t key[16], const void *a, size_t na, const void *b,
                          size_t nb) {
        Sip s;

        sip_init(&s, key);
        sip_update(&s, a, na);
        sip_update(&s, b, nb);
        return sip_final(&s);
}

/* ---- the index ----------------------------------------------------------------------------- */

int replay_index_new(ReplayIndex **ret) {
        ReplayIndex *r = calloc(1, sizeof(ReplayIndex));

        if (!r)
                return -ENOMEM;
        if (getrandom(r->key, sizeof(r->key), 0) != (ssize_t) sizeof(r->key)) {
                int k = errno > 0 ? -errno : -EIO;
                free(r);
                return k;
        }
        r->slots = calloc(MIN_SLOTS, sizeof(Entry));
        if (!r->slots) {
                free(r);
                return -ENOMEM;
        }
        r->n_slots = MIN_SLOTS;
        *ret = r;
        return 0;
}

ReplayIndex *replay_index_free(ReplayIndex *r) {
        if (!r)
                return NULL;
        explicit_bzero(r->key, sizeof(r->key));
        free(r->slots);
        free(r->added.e);
        free(r->removed.e);
        free(r);
        return NULL;
}

uint64_t replay_hash(const ReplayIndex *r, const char *iss, const char *jti) {
        iss = iss ? iss : "";
        /* iss with its NUL, which neither string holds: where iss ends is part of the input */
        return replay_siphash24(r->key, iss, strlen(iss) + 1, jti, strlen(jti));
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
