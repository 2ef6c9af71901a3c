/* SPDX-License-Identifier: MIT */
/* The replay cache's index in memory (replay.c): its SipHash-2-4 against the paper's vectors and
 * OpenSSL's, the keyed hash, candidates of one hash, the journal of a transaction (rollback,
 * savepoint, removals at commit), growth and shrinking, and the table against a plain model
 * under many random operations with forced collisions. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "replay.h"

static uint64_t openssl_siphash(const uint8_t key[16], const uint8_t *m, size_t n) {
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
        EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
        size_t size = 8, out_len = 0;
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                OSSL_PARAM_END,
        };
        uint8_t out[8];
        uint64_t v = 0;

        assert_non_null(ctx);
        assert_true(EVP_MAC_init(ctx, key, 16, params));
        assert_true(EVP_MAC_update(ctx, m, n));
        assert_true(EVP_MAC_final(ctx, out, &out_len, sizeof(out)));
        assert_int_equal(out_len, 8);
        for (size_t i = 0; i < 8; i++)
                v |= (uint64_t) out[i] << (8 * i);
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(mac);
        return v;
}

/* The paper's vectors (key 00..0f, message 00..n-1), and OpenSSL's SipHash for every length up
 * to 100, every split of the input in two, under random keys. */
static void test_siphash(void **state) {
        uint8_t key[16], m[100];
        unsigned seed = 7;

        for (size_t i = 0; i < 16; i++)
                key[i] = (uint8_t) i;
        for (size_t i = 0; i < sizeof(m); i++)
                m[i] = (uint8_t) i;
        assert_true(replay_siphash24(key, m, 0, NULL, 0) == 0x726fdb47dd0e0e31ULL);
        assert_true(replay_siphash24(key, m, 1, NULL, 0) == 0x74f839c593dc67fdULL);
        assert_true(replay_siphash24(key, m, 15, NULL, 0) == 0xa129ca6149be45e5ULL);
        assert_true(replay_siphash24(key, m, 8, m + 8, 7) == 0xa129ca6149be45e5ULL);
        for (int round = 0; round < 4; round++) {
                for (size_t n = 0; n <= sizeof(m); n++) {
                        uint64_t want = openssl_siphash(key, m, n);

                        for (size_t cut = 0; cut <= n; cut++)
                                assert_true(replay_siphash24(key, m, cut, m + cut, n - cut) == want);
                }
                for (size_t i = 0; i < 16; i++)
                        key[i] = (uint8_t) rand_r(&seed);
                for (size_t i = 0; i < sizeof(m); i++)
                        m[i] = (uint8_t) rand_r(&seed);
        }
}

static size_t candidates(const ReplayIndex *r, uint64_t h, int64_t *rowids, size_t max) {
        size_t cursor = 0, n = 0;
        int64_t rowid;

        while (replay_index_next(r, h, &cursor, &rowid)) {
                assert_true(n < max);
                rowids[n++] = rowid;
        }
        return n;
}

static bool has(const ReplayIndex *r, uint64_t h, int64_t rowid) {
        int64_t v[1024];
        size_t n = candidates(r, h, v, 1024);

        for (size_t i = 0; i < n; i++)
                if (v[i] == rowid)
                        return true;
        return false;
}

static void test_hash(void **state) {
        ReplayIndex *a = NULL, *b = NULL;
        uint64_t h1, h2, h3, h4;

        assert_int_equal(replay_index_new(&a), 0);
        assert_int_equal(replay_index_new(&b), 0);
        h1 = replay_hash(a, "https://idp", "jti-1");
        h2 = replay_hash(a, "https://idp", "jti-1");
        assert_true(h1 == h2);
        /* where iss ends is part of the input */
        h3 = replay_hash(a, "https://idpj", "ti-1");
        assert_true(h1 != h3);
        /* each index draws its own key */
        h4 = replay_hash(b, "https://idp", "jti-1");
        assert_true(h1 != h4);
        h3 = replay_hash(a, NULL, "jti-1");
        h4 = replay_hash(a, "", "jti-1");
        assert_true(h3 == h4);
        replay_index_free(a);
        assert_null(replay_index_free(b));
}

static void test_collisions_and_journal(void **state) {
        ReplayIndex *r = NULL;
        int64_t v[8];

        assert_int_equal(replay_index_new(&r), 0);
        assert_int_equal(replay_index_add(r, 7, 0), -EINVAL);
        /* three rows of one hash, one of another that shares its home slot */
        assert_int_equal(replay_index_add(r, 7, 1), 0);
        assert_int_equal(replay_index_add(r, 7, 2), 0);
        assert_int_equal(replay_index_add(r, 7 + 1024 * 5, 3), 0);
        assert_int_equal(replay_index_add(r, 7, 4), 0);
        replay_index_commit(r);
        assert_int_equal(candidates(r, 7, v, 8), 3);
        assert_true(has(r, 7, 1) && has(r, 7, 2) && has(r, 7, 4));
        assert_int_equal(candidates(r, 7 + 1024 * 5, v, 8), 1);
        assert_int_equal(candidates(r, 8, v, 8), 0);

        /* a rolled back transaction: its adds go, its removals never happen */
        assert_int_equal(replay_index_add(r, 9, 5), 0);
        assert_true(has(r, 9, 5)); /* seen at once, inside the transaction */
        assert_int_equal(replay_index_remove_at_commit(r, 7, 2), 0);
        assert_true(has(r, 7, 2)); /* removed at the commit only */
        replay_index_rollback(r);
        assert_false(has(r, 9, 5));
        assert_true(has(r, 7, 2));
        assert_int_equal(replay_index_count(r), 4);
        replay_index_commit(r);
        assert_true(has(r, 7, 2));

        /* a savepoint: what came after it is undone, what came before stays */
        assert_int_equal(replay_index_add(r, 10, 6), 0);
        assert_int_equal(replay_index_remove_at_commit(r, 7, 1), 0);
        replay_index_savepoint(r);
        assert_int_equal(replay_index_add(r, 11, 7), 0);
        assert_int_equal(replay_index_remove_at_commit(r, 7, 4), 0);
        replay_index_rollback_savepoint(r);
        assert_false(has(r, 11, 7));
        assert_true(has(r, 10, 6));
        replay_index_commit(r);
        assert_false(has(r, 7, 1)); /* before the savepoint: removed */
        assert_true(has(r, 7, 4));  /* after it: not */
        assert_true(has(r, 7, 2) && has(r, 7 + 1024 * 5, 3));
        assert_int_equal(replay_index_count(r), 4);
        /* removing what is not there changes nothing */
        assert_int_equal(replay_index_remove_at_commit(r, 7, 99), 0);
        replay_index_commit(r);
        assert_int_equal(replay_index_count(r), 4);
        replay_index_free(r);
}

/* The table against a list, under adds and removals whose hashes fall into few home slots (long
 * clusters, wrapping at the end of the table), across growth and shrinking. */
static void test_against_model(void **state) {
        enum { N = 20000 };
        uint64_t *h = calloc(N + 1, sizeof(uint64_t));
        bool *live = calloc(N + 1, sizeof(bool));
        ReplayIndex *r = NULL;
        size_t n_live = 0;
        unsigned seed = 12345;

        assert_non_null(h);
        assert_non_null(live);
        assert_int_equal(replay_index_new(&r), 0);
        for (int64_t id = 1; id <= N; id++) {
                /* a few hashes of many rows, and homes next to the table's last slot */
                h[id] = (uint64_t) (rand_r(&seed) % 64) * 0x10001u + (uint64_t) -(rand_r(&seed) % 8);
                assert_int_equal(replay_index_add(r, h[id], id), 0);
                live[id] = true;
                n_live++;
                if (id % 3 == 0) { /* remove a random live one, in the same transaction at times */
                        int64_t k = 1 + rand_r(&seed) % id;
                        if (live[k]) {
                                assert_int_equal(replay_index_remove_at_commit(r, h[k], k), 0);
                                live[k] = false;
                                n_live--;
                        }
                }
                if (id % 7 == 0)
                        replay_index_commit(r);
        }
        replay_index_commit(r);
        assert_int_equal(replay_index_count(r), n_live);
        for (int64_t id = 1; id <= N; id++)
                assert_int_equal(has(r, h[id], id), live[id]);

        /* everything goes, and the table shrinks back */
        for (int64_t id = 1; id <= N; id++)
                if (live[id])
                        assert_int_equal(replay_index_remove_at_commit(r, h[id], id), 0);
        replay_index_commit(r);
        assert_int_equal(replay_index_count(r), 0);
        for (int64_t id = 1; id <= N; id += 97)
                assert_false(has(r, h[id], id));
        assert_int_equal(replay_index_add(r, h[1], 1), 0);
        replay_index_commit(r);
        assert_true(has(r, h[1], 1));
        replay_index_free(r);
        free(h);
        free(live);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_siphash),
                cmocka_unit_test(test_hash),
                cmocka_unit_test(test_collisions_and_journal),
                cmocka_unit_test(test_against_model),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
