/* SPDX-License-Identifier: MIT */
/* store.c against a real SQLite database in a temporary directory. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "nss-fixture.h"
#include <sqlite3.h>

#include "log.h"
#include "macro.h"
#include "store.h"

/* String constants into the structs' char * members (never freed by the store). */
#define S(x) ((char *) (uintptr_t) (x))

typedef struct Fixture {
        char dir[128];
        char db[192];
        Store *s;
} Fixture;

/* The uid of the test accounts (nss-fixture.h); the store keys users by uid. */
static uid_t U(const char *name) {
        static const struct {
                const char *name;
                uid_t uid;
        } ids[] = { { "alice", 2001 }, { "bob", 2002 }, { "carol", 2003 }, { "Dave", 2004 },
                    { "dave", 2005 }, { "erin", 2007 }, { "frank", 2006 },
                    { "nobody", 65534 } };

        for (size_t i = 0; i < ARRAY_SIZE(ids); i++)
                if (streq(ids[i].name, name))
                        return ids[i].uid;
        fail_msg("no test uid for '%s'", name);
        return (uid_t) -1;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        const char *t = getenv("TMPDIR");

        if (!f)
                return -1;
        if (isempty(t) || strlen(t) > 60)
                t = "/tmp";
        snprintf(f->dir, sizeof(f->dir), "%s/ssf-test-store-XXXXXX", t);
        if (!mkdtemp(f->dir)) {
                free(f);
                return -1;
        }
        snprintf(f->db, sizeof(f->db), "%s/state.db", f->dir);
        if (store_open(f->db, &f->s) < 0) {
                free(f);
                return -1;
        }
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char cmd[256];

        store_free(f->s);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        free(f);
        return system(cmd) == 0 ? 0 : -1;
}

static void put(Store *s, const char *user, const char *det, RiskLevel level, uint64_t expires) {
        StoreDetection d = {
                .uid = U(user),
                .detection = S(det),
                .level = level,
                .since = 100,
                .updated = 200,
                .expires = expires,
                .event_time = 150,
                .jti = S("jti-1"),
                .reason = S("because"),
        };
        assert_int_equal(store_detection_put(s, &d), 0);
}

static void test_open_mode(void **state) {
        Fixture *f = *state;
        struct stat st;
        Store *s2 = NULL;

        assert_int_equal(stat(f->db, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        /* A second handle to the same database opens (schema already present). */
        assert_int_equal(store_open(f->db, &s2), 0);
        store_free(s2);
        assert_null(store_free(NULL));
        assert_true(store_open(f->dir, &s2) < 0); /* a directory */
}

static void test_jti_replay(void **state) {
        Fixture *f = *state;
        uint64_t n = 0;

        assert_int_equal(store_jti_insert(f->s, "j1", "https://iss", "uri", 10, 1000), 0);
        assert_int_equal(store_jti_insert(f->s, "j1", "https://iss", "uri", 10, 1001), -EALREADY);
        /* Another issuer's jti with the same value is not a replay. */
        assert_int_equal(store_jti_insert(f->s, "j1", "https://other", "uri", 10, 1002), 0);
        assert_int_equal(store_jti_insert(f->s, "j2", "https://iss", NULL, 10, 2000), 0);
        assert_int_equal(store_jti_insert(f->s, "", "https://iss", NULL, 10, 2000), -EINVAL);
        assert_int_equal(store_count(f->s, "jti", &n), 0);
        assert_true(n == 3);
        /* Prune rows received before 1500: the two first. */
        assert_int_equal(store_jti_prune(f->s, 1500), 2);
        assert_int_equal(store_count(f->s, "jti", &n), 0);
        assert_true(n == 1);
        assert_int_equal(store_jti_insert(f->s, "j1", "https://iss", "uri", 10, 3000), 0);
}

/* The replay check follows the transaction (its index is in memory, replay.h): a jti is a replay
 * as soon as it is inserted, no longer once its insert is rolled back (whole or to the
 * savepoint), and a pruned jti is a replay again when the prune is rolled back. */
static void test_jti_replay_transactions(void **state) {
        Fixture *f = *state;

        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(store_jti_insert(f->s, "a", "i", NULL, 10, 100), 0);
        assert_int_equal(store_jti_insert(f->s, "a", "i", NULL, 10, 100), -EALREADY);
        assert_int_equal(store_savepoint(f->s), 0);
        assert_int_equal(store_jti_insert(f->s, "b", "i", NULL, 10, 100), 0);
        assert_int_equal(store_savepoint_rollback(f->s), 0);
        assert_int_equal(store_jti_insert(f->s, "a", "i", NULL, 10, 100), -EALREADY);
        assert_int_equal(store_jti_insert(f->s, "b", "i", NULL, 10, 100), 0);
        assert_int_equal(store_savepoint(f->s), 0);
        assert_int_equal(store_savepoint_release(f->s), 0);
        assert_int_equal(store_rollback(f->s), 0);
        assert_true(store_jti_count(f->s) == 0);
        assert_int_equal(store_jti_insert(f->s, "a", "i", NULL, 10, 100), 0);
        assert_int_equal(store_jti_insert(f->s, "b", "i", NULL, 10, 200), 0);

        /* a prune rolled back: the rows and their replay check come back (the transaction
         * itself sees its own deletes) */
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(store_jti_prune(f->s, 1000), 2);
        assert_int_equal(store_jti_insert(f->s, "a", "i", NULL, 10, 100), 0);
        assert_int_equal(store_jti_insert(f->s, "a", "i", NULL, 10, 100), -EALREADY);
        assert_int_equal(store_rollback(f->s), 0);
        assert_int_equal(store_jti_insert(f->s, "a", "i", NULL, 10, 100), -EALREADY);
        assert_int_equal(store_jti_insert(f->s, "b", "i", NULL, 10, 100), -EALREADY);
        assert_true(store_jti_count(f->s) == 2);

        /* committed: gone */
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(store_jti_prune(f->s, 150), 1);
        assert_int_equal(store_commit(f->s), 0);
        assert_int_equal(store_jti_insert(f->s, "b", "i", NULL, 10, 300), -EALREADY);
        assert_int_equal(store_jti_insert(f->s, "a", "i", NULL, 10, 300), 0);

        /* and what is kept is loaded again at the next open */
        f->s = store_free(f->s);
        assert_int_equal(store_open(f->db, &f->s), 0);
        assert_true(store_jti_count(f->s) == 2);
        assert_int_equal(store_jti_insert(f->s, "a", "i", NULL, 10, 400), -EALREADY);
        assert_int_equal(store_jti_insert(f->s, "b", "i", NULL, 10, 400), -EALREADY);
        assert_int_equal(store_jti_insert(f->s, "c", "i", NULL, 10, 400), 0);
}

static void test_detection_roundtrip(void **state) {
        Fixture *f = *state;
        StoreDetection d = {};

        assert_int_equal(store_detection_get(f->s, U("alice"), "session-revoked", &d), -ENOENT);
        put(f->s, "alice", "session-revoked", RISK_HIGH, 5000);
        assert_int_equal(store_detection_get(f->s, U("alice"), "session-revoked", &d), 0);
        assert_int_equal(d.uid, U("alice"));
        assert_string_equal(d.detection, "session-revoked");
        assert_int_equal(d.level, RISK_HIGH);
        assert_true(d.since == 100 && d.updated == 200 && d.expires == 5000 && d.event_time == 150);
        assert_string_equal(d.jti, "jti-1");
        assert_string_equal(d.reason, "because");
        store_detection_done(&d);

        /* Replace: the same key, new values; NULL strings stay NULL. */
        {
                StoreDetection n = { .uid = U("alice"), .detection = S("session-revoked"),
                                     .level = RISK_LOW, .since = 1, .updated = 2, .expires = 0 };
                assert_int_equal(store_detection_put(f->s, &n), 0);
        }
        assert_int_equal(store_detection_get(f->s, U("alice"), "session-revoked", &d), 0);
        assert_int_equal(d.level, RISK_LOW);
        assert_true(d.expires == 0);
        assert_null(d.jti);
        assert_null(d.reason);
        store_detection_done(&d);

        {
                StoreDetection bad = { .uid = U("alice"), .detection = S("x"), .level = _RISK_MAX };
                assert_int_equal(store_detection_put(f->s, &bad), -EINVAL);
        }

        assert_int_equal(store_detection_delete(f->s, U("alice"), "session-revoked"), 0);
        assert_int_equal(store_detection_delete(f->s, U("alice"), "session-revoked"), -ENOENT);
        assert_int_equal(store_detection_get(f->s, U("alice"), "session-revoked", &d), -ENOENT);
}

static void test_levels_and_expiry(void **state) {
        Fixture *f = *state;
        StoreDetection *list = NULL;
        RiskLevel l = _RISK_INVALID;
        uint64_t until = 4242;
        size_t n = 0;

        /* Unknown user: none, until 0. */
        assert_int_equal(store_user_level(f->s, U("nobody"), 1000, &l, &until), 0);
        assert_int_equal(l, RISK_NONE);
        assert_true(until == 0);

        put(f->s, "bob", "credential-change", RISK_MEDIUM, 0);     /* never expires */
        put(f->s, "bob", "session-revoked", RISK_HIGH, 2000);
        put(f->s, "bob", "account-disabled", RISK_HIGH, 3000);
        put(f->s, "bob", "opt-in", RISK_LOW, 1500);

        assert_int_equal(store_user_level(f->s, U("bob"), 1000, &l, &until), 0);
        assert_int_equal(l, RISK_HIGH);
        assert_true(until == 3000); /* the latest expiry at the top level */

        /* Only the top level counts for until; at now=2500 one high remains. */
        assert_int_equal(store_user_level(f->s, U("bob"), 2500, &l, &until), 0);
        assert_int_equal(l, RISK_HIGH);
        assert_true(until == 3000);

        /* expires == now is expired. Then the never-expiring medium is the top: until 0. */
        assert_int_equal(store_user_level(f->s, U("bob"), 3000, &l, &until), 0);
        assert_int_equal(l, RISK_MEDIUM);
        assert_true(until == 0);
        assert_int_equal(store_user_level(f->s, U("bob"), 3000, &l, NULL), 0);

        /* A second high without expiry makes until 0 while high. */
        put(f->s, "bob", "credential-compromise", RISK_HIGH, 0);
        assert_int_equal(store_user_level(f->s, U("bob"), 1000, &l, &until), 0);
        assert_int_equal(l, RISK_HIGH);
        assert_true(until == 0);
        assert_int_equal(store_detection_delete(f->s, U("bob"), "credential-compromise"), 0);

        /* Active detections, highest first. */
        assert_int_equal(store_detections_list(f->s, U("bob"), 1000, &list, &n), 0);
        assert_int_equal(n, 4);
        assert_int_equal(list[0].level, RISK_HIGH);
        assert_int_equal(list[1].level, RISK_HIGH);
        assert_int_equal(list[2].level, RISK_MEDIUM);
        assert_int_equal(list[3].level, RISK_LOW);
        store_detections_free(list, n);
        assert_int_equal(store_detections_list(f->s, U("bob"), 2000, &list, &n), 0);
        assert_int_equal(n, 2);
        store_detections_free(list, n);

        /* Expire: rows with expires <= now and != 0. */
        assert_int_equal(store_detections_expire(f->s, 2000), 2);
        assert_int_equal(store_detections_expire(f->s, 2000), 0);
        assert_int_equal(store_detections_list(f->s, U("bob"), 0, &list, &n), 0);
        assert_int_equal(n, 2);
        store_detections_free(list, n);

        assert_int_equal(store_user_reset(f->s, U("bob")), 0);
        assert_int_equal(store_user_level(f->s, U("bob"), 0, &l, &until), 0);
        assert_int_equal(l, RISK_NONE);
}

static void test_users_list(void **state) {
        Fixture *f = *state;
        StoreUser *u = NULL;
        size_t n = 99;

        assert_int_equal(store_users_list(f->s, 1000, &u, &n), 0);
        assert_int_equal(n, 0);
        store_users_free(u, n);

        put(f->s, "carol", "session-revoked", RISK_HIGH, 5000);
        put(f->s, "carol", "credential-change", RISK_MEDIUM, 0);
        put(f->s, "alice", "credential-change", RISK_MEDIUM, 1500);
        put(f->s, "dave", "opt-in", RISK_NONE, 0);        /* level none: not listed */
        put(f->s, "erin", "session-revoked", RISK_HIGH, 500); /* expired at 1000 */
        /* Two detections at her top level: one that never lapses keeps it. */
        put(f->s, "frank", "account-disabled", RISK_HIGH, 0);
        put(f->s, "frank", "session-revoked", RISK_HIGH, 3000);
        put(f->s, "frank", "opt-in", RISK_NONE, 9000);

        assert_int_equal(store_users_list(f->s, 1000, &u, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(u[2].uid, U("frank"));
        assert_int_equal(u[2].level, RISK_HIGH);
        assert_true(u[2].until == 0);
        assert_true(u[2].updated == 200);
        /* Both high detections were updated at once: the first by name, as PAM names it. */
        assert_string_equal(u[2].detection, "account-disabled");
        assert_string_equal(u[1].detection, "session-revoked");
        assert_int_equal(u[0].uid, U("alice"));
        assert_int_equal(u[0].level, RISK_MEDIUM);
        assert_true(u[0].until == 1500);
        assert_true(u[0].updated == 200);
        assert_int_equal(u[1].uid, U("carol"));
        assert_int_equal(u[1].level, RISK_HIGH);
        assert_true(u[1].until == 5000);
        store_users_free(u, n);
        store_users_free(NULL, 0);
}

static void test_history(void **state) {
        Fixture *f = *state;
        HistoryEntry *h = NULL;
        int64_t ids[5];
        size_t n = 0;

        for (int i = 0; i < 5; i++) {
                HistoryEntry e = {
                        .time = 1000 + (uint64_t) i,
                        .user = S((i % 2 ? "alice" : "bob")),
                        .uid = U(i % 2 ? "alice" : "bob"),
                        .jti = S("j"),
                        .event = S("session-revoked"),
                        .detection = S("session-revoked"),
                        .level_before = RISK_NONE,
                        .level_after = RISK_HIGH,
                        .rule = i == 0 ? NULL : S("logout-high"),
                        .action = S("logout"),
                        .result = S("pending"),
                        .duration_ms = -1,
                };
                assert_int_equal(store_history_add(f->s, &e, &ids[i]), 0);
                if (i > 0)
                        assert_true(ids[i] > ids[i - 1]);
        }
        {
                HistoryEntry e = { .time = 2000, .event = S("stream-updated"), .txn = S("tx-9"),
                                   .duration_ms = -1 };
                assert_int_equal(store_history_add(f->s, &e, NULL), 0); /* user NULL */
        }

        assert_int_equal(store_history_update_result(f->s, ids[1], "ok", 42), 0);
        assert_int_equal(store_history_update_result(f->s, 999999, "ok", 1), -ENOENT);

        /* All users, newest first, limited. */
        assert_int_equal(store_history_list(f->s, -1, 3, &h, &n), 0);
        assert_int_equal(n, 3);
        assert_null(h[0].user);
        assert_string_equal(h[0].event, "stream-updated");
        assert_string_equal(h[0].txn, "tx-9");
        assert_null(h[1].txn);
        assert_true(h[1].id == ids[4]);
        assert_true(h[2].id == ids[3]);
        history_entries_free(h, n);

        /* One user. */
        assert_int_equal(store_history_list(f->s, U("alice"), 10, &h, &n), 0);
        assert_int_equal(n, 2);
        assert_true(h[0].id == ids[3]);
        assert_true(h[1].id == ids[1]);
        assert_string_equal(h[1].result, "ok");
        assert_true(h[1].duration_ms == 42);
        assert_true(h[1].time == 1001);
        assert_int_equal(h[1].level_after, RISK_HIGH);
        assert_string_equal(h[1].rule, "logout-high");
        history_entries_free(h, n);

        assert_int_equal(store_history_list(f->s, U("bob"), 10, &h, &n), 0);
        assert_int_equal(n, 3);
        assert_null(h[2].rule);
        assert_true(h[2].duration_ms == -1);
        history_entries_free(h, n);

        assert_int_equal(store_history_list(f->s, U("nobody"), 10, &h, &n), 0);
        assert_int_equal(n, 0);
        history_entries_free(h, n);
}

static void test_actions(void **state) {
        Fixture *f = *state;
        PendingAction *a = NULL;
        int64_t id1 = 0, id2 = 0;
        uint64_t count = 0;
        size_t n = 0;

        PendingAction p = {
                .created = 1234,
                .user = S("alice"),
                .rule = S("logout-high"),
                .action = S("logout"),
                .sessions = S("remote"),
                .reset = true,
                .jti = S("j1"),
                .event_uri = S("https://schemas.openid.net/secevent/caep/event-type/session-revoked"),
                .detection = S("session-revoked"),
                .issuer = S("https://idp"),
                .reason = S("r"),
                .level_before = RISK_LOW,
                .level_after = RISK_HIGH,
                .claims_json = S("{\"a\":1}"),
                .history_id = 77,
        };
        assert_int_equal(store_action_add(f->s, &p, &id1), 0);
        p.action = S("workflow");
        p.workflow = S("notify-admin");
        p.sessions = NULL;
        p.reset = false;
        assert_int_equal(store_action_add(f->s, &p, &id2), 0);
        p.user = NULL;
        assert_int_equal(store_action_add(f->s, &p, NULL), -EINVAL);

        assert_int_equal(store_action_list_pending(f->s, &a, &n), 0);
        assert_int_equal(n, 2);
        assert_true(a[0].id == id1);
        assert_true(a[0].created == 1234);
        assert_string_equal(a[0].user, "alice");
        assert_string_equal(a[0].rule, "logout-high");
        assert_string_equal(a[0].action, "logout");
        assert_string_equal(a[0].sessions, "remote");
        assert_true(a[0].reset);
        assert_null(a[0].workflow);
        assert_string_equal(a[0].jti, "j1");
        assert_string_equal(a[0].detection, "session-revoked");
        assert_string_equal(a[0].issuer, "https://idp");
        assert_string_equal(a[0].reason, "r");
        assert_int_equal(a[0].level_before, RISK_LOW);
        assert_int_equal(a[0].level_after, RISK_HIGH);
        assert_string_equal(a[0].claims_json, "{\"a\":1}");
        assert_true(a[0].history_id == 77);
        assert_string_equal(a[1].workflow, "notify-admin");
        assert_null(a[1].sessions);
        assert_false(a[1].reset);
        pending_actions_free(a, n);

        assert_int_equal(store_count(f->s, "pending_actions", &count), 0);
        assert_true(count == 2);
        assert_int_equal(store_action_finish(f->s, id1, "ok"), 0);
        assert_int_equal(store_action_finish(f->s, 424242, "ok"), -ENOENT);
        assert_int_equal(store_action_list_pending(f->s, &a, &n), 0);
        assert_int_equal(n, 1);
        assert_true(a[0].id == id2);
        pending_actions_free(a, n);
        assert_int_equal(store_count(f->s, "actions", &count), 0);
        assert_true(count == 2);
        assert_int_equal(store_count(f->s, "pending_actions", &count), 0);
        assert_true(count == 1);
}

/* A logout with warn: its warning time is kept, and its due time is set once (a restart during
 * the wait must neither move it nor warn again), then kept until the action finishes. */
static void test_action_due(void **state) {
        Fixture *f = *state;
        PendingAction *a = NULL;
        int64_t id = 0, plain = 0;
        size_t n = 0;
        PendingAction p = {
                .created = 1000,
                .uid = 2001,
                .user = S("alice"),
                .rule = S("warned"),
                .action = S("logout"),
                .sessions = S("all"),
                .history_id = 1,
                .warn_usec = 90000000ULL,
        };

        assert_int_equal(store_action_add(f->s, &p, &id), 0);
        p.warn_usec = 0;
        assert_int_equal(store_action_add(f->s, &p, &plain), 0);
        assert_int_equal(store_action_list_pending(f->s, &a, &n), 0);
        assert_int_equal(n, 2);
        assert_true(a[0].warn_usec == 90000000ULL);
        assert_true(a[0].due_usec == 0);
        assert_true(a[1].warn_usec == 0 && a[1].due_usec == 0);
        pending_actions_free(a, n);

        assert_int_equal(store_action_set_due(f->s, id, 1700000000123456ULL), 0);
        assert_int_equal(store_action_set_due(f->s, id, 1800000000000000ULL), -ESRCH); /* once */
        assert_int_equal(store_action_set_due(f->s, 424242, 1800000000000000ULL), -ESRCH);
        assert_int_equal(store_action_set_due(f->s, id, 0), -EINVAL);
        assert_int_equal(store_action_list_pending(f->s, &a, &n), 0);
        assert_int_equal(n, 2);
        assert_true(a[0].id == id && a[0].due_usec == 1700000000123456ULL);
        assert_true(a[1].due_usec == 0);
        pending_actions_free(a, n);

        /* Kept across a reopen (a restart), gone with the action once finished. */
        f->s = store_free(f->s);
        assert_int_equal(store_open(f->db, &f->s), 0);
        assert_int_equal(store_action_list_pending(f->s, &a, &n), 0);
        assert_true(n == 2 && a[0].due_usec == 1700000000123456ULL);
        pending_actions_free(a, n);
        assert_int_equal(store_action_finish(f->s, id, "ok"), 0);
        assert_int_equal(store_action_set_due(f->s, plain, 5), 0);
        assert_int_equal(store_action_finish(f->s, plain, "ok"), 0);
        assert_int_equal(store_action_set_due(f->s, id, 7), -ESRCH);
}

static int64_t add_txn_action(Store *s, const char *iss, const char *txn, const char *user,
                               const char *action, const char *sessions, const char *workflow,
                               const char *jti) {
        PendingAction p = {
                .created = 1000,
                .uid = U(user),
                .user = S(user),
                .rule = S("r"),
                .action = S(action),
                .sessions = S(sessions),
                .workflow = S(workflow),
                .jti = S(jti),
                .issuer = S(iss),
                .txn = S(txn),
                .history_id = 1,
        };
        int64_t id = 0;

        assert_int_equal(store_action_add(s, &p, &id), 0);
        return id;
}

/* Expects the earlier action of the transaction to be found, with its jti, or not (NULL). */
static void find_txn(Store *s, const char *iss, const char *txn, const char *user,
                     const char *action, const char *sessions, const char *workflow,
                     const char *expect_jti) {
        char *jti = NULL;
        int r = store_action_find_txn(s, iss, txn, U(user), action, sessions, workflow, &jti);

        if (!expect_jti) {
                assert_int_equal(r, -ENOENT);
                assert_null(jti);
                return;
        }
        assert_int_equal(r, 0);
        assert_non_null(jti);
        assert_string_equal(jti, expect_jti);
        free(jti);
}

static void test_action_find_txn(void **state) {
        Fixture *f = *state;
        PendingAction *a = NULL;
        char *jti = NULL;
        int64_t id1, id2, id3;
        size_t n = 0;

        find_txn(f->s, "https://idp", "t1", "alice", "logout", "all", NULL, NULL);
        id1 = add_txn_action(f->s, "https://idp", "t1", "alice", "logout", "all", NULL, "j1");
        id2 = add_txn_action(f->s, "https://idp", "t1", "alice", "workflow", "all", "notify", "j2");
        id3 = add_txn_action(f->s, "https://idp", NULL, "bob", "logout", "all", NULL, "j3");

        /* Pending counts as done: the second SET of a transaction may come before the action of
         * the first ran. The txn is kept with the action. */
        find_txn(f->s, "https://idp", "t1", "alice", "logout", "all", NULL, "j1");
        find_txn(f->s, "https://idp", "t1", "alice", "logout", NULL, NULL, "j1");
        find_txn(f->s, "https://idp", "t1", "alice", "workflow", NULL, "notify", "j2");
        assert_int_equal(store_action_list_pending(f->s, &a, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(a[0].txn, "t1");
        assert_null(a[2].txn);
        pending_actions_free(a, n);

        /* Every part of the key matters. */
        find_txn(f->s, "https://other", "t1", "alice", "logout", "all", NULL, NULL);
        find_txn(f->s, "https://idp", "t2", "alice", "logout", "all", NULL, NULL);
        find_txn(f->s, "https://idp", "T1", "alice", "logout", "all", NULL, NULL);
        find_txn(f->s, "https://idp", "t1", "bob", "logout", "all", NULL, NULL);
        find_txn(f->s, "https://idp", "t1", "alice", "logout", "remote", NULL, NULL);
        find_txn(f->s, "https://idp", "t1", "alice", "workflow", NULL, "other-hook", NULL);
        /* An action without a txn correlates with nothing; there is no empty txn to look up. */
        find_txn(f->s, "https://idp", "t1", "bob", "logout", "all", NULL, NULL);
        assert_int_equal(store_action_find_txn(f->s, "https://idp", "", U("bob"), "logout", NULL, NULL,
                                               &jti), -EINVAL);
        assert_int_equal(store_action_find_txn(f->s, "https://idp", NULL, U("bob"), "logout", NULL,
                                               NULL, &jti), -EINVAL);

        /* Done and successful still counts; a failed one does not (the next SET may retry). */
        assert_int_equal(store_action_finish(f->s, id1, "ok: terminated 1 of 1 sessions"), 0);
        find_txn(f->s, "https://idp", "t1", "alice", "logout", "all", NULL, "j1");
        assert_int_equal(store_action_finish(f->s, id2, "failed: exit 1 in 3 ms"), 0);
        find_txn(f->s, "https://idp", "t1", "alice", "workflow", NULL, "notify", NULL);
        /* ... and when there are several, the first that counts is named. */
        add_txn_action(f->s, "https://idp", "t1", "alice", "workflow", "all", "notify", "j4");
        add_txn_action(f->s, "https://idp", "t1", "alice", "workflow", "all", "notify", "j5");
        find_txn(f->s, "https://idp", "t1", "alice", "workflow", NULL, "notify", "j4");
        assert_int_equal(store_action_finish(f->s, id3, "ok"), 0);

        /* It survives a restart. */
        f->s = store_free(f->s);
        assert_int_equal(store_open(f->db, &f->s), 0);
        find_txn(f->s, "https://idp", "t1", "alice", "logout", "all", NULL, "j1");
        find_txn(f->s, "https://idp", "t1", "alice", "workflow", NULL, "notify", "j4");
}

static void test_kv_and_count(void **state) {
        Fixture *f = *state;
        char *v = NULL;
        uint64_t n = 0;

        assert_int_equal(store_kv_get(f->s, "stream_id", &v), -ENOENT);
        assert_int_equal(store_kv_set(f->s, "stream_id", "abc"), 0);
        assert_int_equal(store_kv_get(f->s, "stream_id", &v), 0);
        assert_string_equal(v, "abc");
        free(v);
        assert_int_equal(store_kv_set(f->s, "stream_id", "x'); DROP TABLE kv; --"), 0);
        assert_int_equal(store_kv_get(f->s, "stream_id", &v), 0);
        assert_string_equal(v, "x'); DROP TABLE kv; --");
        free(v);

        assert_int_equal(store_count(f->s, "kv", &n), 0);
        assert_true(n == 1);
        assert_int_equal(store_count(f->s, "history", &n), 0);
        assert_true(n == 0);
        assert_int_equal(store_count(f->s, "detections", &n), 0);
        assert_int_equal(store_count(f->s, "users", &n), 0);
        assert_int_equal(store_count(f->s, "sqlite_master", &n), -EINVAL);
        assert_int_equal(store_count(f->s, "kv; DROP TABLE kv", &n), -EINVAL);
}

static void test_transactions(void **state) {
        Fixture *f = *state;
        StoreDetection d = {};
        char *v = NULL;

        assert_int_equal(store_begin(f->s), 0);
        put(f->s, "alice", "session-revoked", RISK_HIGH, 0);
        assert_int_equal(store_kv_set(f->s, "k", "v"), 0);
        assert_int_equal(store_rollback(f->s), 0);
        assert_int_equal(store_detection_get(f->s, U("alice"), "session-revoked", &d), -ENOENT);
        assert_int_equal(store_kv_get(f->s, "k", &v), -ENOENT);

        assert_int_equal(store_begin(f->s), 0);
        put(f->s, "alice", "session-revoked", RISK_HIGH, 0);
        assert_int_equal(store_commit(f->s), 0);
        assert_int_equal(store_detection_get(f->s, U("alice"), "session-revoked", &d), 0);
        store_detection_done(&d);

        /* Nothing open: rollback is harmless, commit is an error. */
        assert_int_equal(store_rollback(f->s), 0);
        assert_true(store_commit(f->s) < 0);
}

static off_t file_size(const char *path) {
        struct stat st;

        assert_int_equal(stat(path, &st), 0);
        return st.st_size;
}

/* The WAL is checkpointed into the database by the store's own thread once it holds 1,000
 * frames, while the store stays open (the commits do not wait for it), and nothing is lost. */
static void test_checkpoint_thread(void **state) {
        Fixture *f = *state;
        off_t before = file_size(f->db);
        char jti[80];
        int t;

        assert_int_equal(store_checkpoints(f->s), 0);
        for (t = 0; t < 400 && store_checkpoints(f->s) == 0; t++) {
                assert_int_equal(store_begin(f->s), 0);
                for (int i = 0; i < 100; i++) {
                        snprintf(jti, sizeof(jti), "checkpoint-%04d-%03d-%032d", t, i, 0);
                        assert_int_equal(store_jti_insert(f->s, jti, "https://iss", "uri", 10, 1000), 0);
                }
                assert_int_equal(store_commit(f->s), 0);
        }
        /* Wait for it (bounded): the thread runs on its own. */
        for (int i = 0; i < 2000 && store_checkpoints(f->s) == 0; i++)
                usleep(10000);
        assert_true(store_checkpoints(f->s) > 0);
        assert_true(file_size(f->db) > before);
        assert_int_equal(store_jti_count(f->s), (uint64_t) t * 100);
        assert_int_equal(store_jti_insert(f->s, "checkpoint-0000-000-00000000000000000000000000000000",
                                          "https://iss", "uri", 10, 1001), -EALREADY);
}

static void test_reopen(void **state) {
        Fixture *f = *state;
        HistoryEntry *h = NULL;
        RiskLevel l;
        size_t n = 0;
        char *v = NULL;

        put(f->s, "alice", "session-revoked", RISK_HIGH, 0);
        assert_int_equal(store_kv_set(f->s, "stream_id", "s1"), 0);
        assert_int_equal(store_jti_insert(f->s, "j", "i", NULL, 0, 1), 0);
        {
                HistoryEntry e = { .time = 1, .user = S("alice"), .uid = U("alice"), .event = S("reset"),
                                   .duration_ms = -1 };
                assert_int_equal(store_history_add(f->s, &e, NULL), 0);
        }
        f->s = store_free(f->s);

        assert_int_equal(store_open(f->db, &f->s), 0);
        assert_int_equal(store_user_level(f->s, U("alice"), 10, &l, NULL), 0);
        assert_int_equal(l, RISK_HIGH);
        assert_int_equal(store_kv_get(f->s, "stream_id", &v), 0);
        assert_string_equal(v, "s1");
        free(v);
        assert_int_equal(store_jti_insert(f->s, "j", "i", NULL, 0, 2), -EALREADY);
        assert_int_equal(store_history_list(f->s, U("alice"), 0, &h, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(h[0].event, "reset");
        history_entries_free(h, n);
}

/* One SET naming many users: its claims are stored once, and a listing holds one copy. */
static void test_claims_stored_once(void **state) {
        Fixture *f = *state;
        PendingAction *a = NULL;
        char claims[4096];
        uint64_t count = 0;
        size_t n = 0;
        StorePruneCounts pc = {};
        StorePruneLimits none = { .batch = 100 };

        memset(claims, 0, sizeof(claims));
        snprintf(claims, sizeof(claims), "{\"jti\":\"big\",\"pad\":\"");
        memset(claims + strlen(claims), 'x', 3000);
        strcat(claims, "\"}");

        assert_int_equal(store_begin(f->s), 0);
        for (int i = 0; i < 200; i++) {
                PendingAction p = {
                        .created = 10, .uid = (uid_t) (3000 + i), .user = S("u"), .rule = S("r"),
                        .action = S("workflow"), .workflow = S("notify"), .jti = S("big"),
                        .issuer = S("https://idp"), .claims_json = claims, .history_id = 1,
                };
                assert_int_equal(store_action_add(f->s, &p, NULL), 0);
        }
        /* Another SET, and an action without claims. */
        {
                PendingAction p = {
                        .created = 11, .uid = 2001, .user = S("alice"), .action = S("workflow"),
                        .workflow = S("notify"), .jti = S("small"), .issuer = S("https://idp"),
                        .claims_json = S("{\"jti\":\"small\"}"), .history_id = 2,
                };
                assert_int_equal(store_action_add(f->s, &p, NULL), 0);
                p.claims_json = NULL;
                p.jti = S("none");
                assert_int_equal(store_action_add(f->s, &p, NULL), 0);
        }
        assert_int_equal(store_commit(f->s), 0);
        assert_int_equal(store_count(f->s, "sets", &count), 0);
        assert_true(count == 2);
        {
                /* The database holds the claims once, not 200 times. */
                sqlite3 *db = NULL;
                sqlite3_stmt *st = NULL;

                assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
                assert_int_equal(sqlite3_prepare_v2(db, "SELECT SUM(LENGTH(claims)) FROM sets", -1,
                                                    &st, NULL), SQLITE_OK);
                assert_int_equal(sqlite3_step(st), SQLITE_ROW);
                assert_true(sqlite3_column_int64(st, 0) < 2 * (sqlite3_int64) sizeof(claims));
                assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
                assert_int_equal(sqlite3_close(db), SQLITE_OK);
        }

        assert_int_equal(store_action_list_pending(f->s, &a, &n), 0);
        assert_int_equal(n, 202);
        for (size_t i = 0; i < 200; i++) {
                assert_string_equal(a[i].claims_json, claims);
                assert_ptr_equal(a[i].claims_json, a[0].claims_json); /* one copy */
        }
        assert_string_equal(a[200].claims_json, "{\"jti\":\"small\"}");
        assert_null(a[201].claims_json);
        /* Released in any order (the hook lane takes them one by one). */
        for (size_t i = 0; i < n; i += 2)
                pending_action_done(&a[i]);
        assert_string_equal(a[199].claims_json, claims);
        for (size_t i = 1; i < n; i += 2)
                pending_action_done(&a[i]);
        free(a);

        /* Kept while an action is pending; gone once none refers to them. */
        assert_int_equal(store_prune(f->s, &none, &pc), 0);
        assert_int_equal(pc.sets, 0);
        assert_int_equal(store_action_list_pending(f->s, &a, &n), 0);
        for (size_t i = 0; i < n; i++)
                if (i != 200)
                        assert_int_equal(store_action_finish(f->s, a[i].id, "ok"), 0);
        pending_actions_free(a, n);
        assert_int_equal(store_prune(f->s, &none, &pc), 0);
        assert_int_equal(pc.sets, 1);
        assert_int_equal(store_action_list_pending(f->s, &a, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(a[0].claims_json, "{\"jti\":\"small\"}");
        pending_actions_free(a, n);
}

static int64_t add_history(Store *s, uint64_t time) {
        HistoryEntry e = { .time = time, .user = S("alice"), .uid = 2001, .event = S("reset"),
                           .duration_ms = -1 };
        int64_t id = 0;

        assert_int_equal(store_history_add(s, &e, &id), 0);
        return id;
}

static int64_t add_action(Store *s, uint64_t created, int64_t history_id, bool finished) {
        PendingAction p = {
                .created = created, .uid = 2001, .user = S("alice"), .action = S("logout"),
                .sessions = S("all"), .jti = S("j"), .history_id = history_id,
        };
        int64_t id = 0;

        assert_int_equal(store_action_add(s, &p, &id), 0);
        if (finished)
                assert_int_equal(store_action_finish(s, id, "ok"), 0);
        return id;
}

static uint64_t count(Store *s, const char *table) {
        uint64_t n = 0;

        assert_int_equal(store_count(s, table, &n), 0);
        return n;
}

/* Prunes until nothing is left to do; returns the number of runs. */
static unsigned prune_all(Store *s, const StorePruneLimits *l, StorePruneCounts *total) {
        StorePruneCounts pc;
        unsigned runs = 0;

        *total = (StorePruneCounts) {};
        do {
                assert_int_equal(store_prune(s, l, &pc), 0);
                total->history += pc.history;
                total->actions += pc.actions;
                total->sets += pc.sets;
                total->jti += pc.jti;
                runs++;
                assert_true(runs < 1000);
        } while (pc.more);
        return runs;
}

static void test_prune_by_age(void **state) {
        Fixture *f = *state;
        StorePruneCounts pc;
        StorePruneLimits l = { .history_before = 1000, .batch = 7 };
        int64_t pending_hist = 0, pending_action;
        HistoryEntry *h = NULL;
        size_t n = 0;

        /* 40 old rows (one is a pending action's), then 10 young ones. */
        for (int i = 0; i < 40; i++) {
                int64_t id = add_history(f->s, 100 + (uint64_t) i);
                if (i == 3)
                        pending_hist = id;
                add_action(f->s, 100 + (uint64_t) i, id, true);
        }
        pending_action = add_action(f->s, 100, pending_hist, false);
        for (int i = 0; i < 10; i++)
                add_action(f->s, 2000, add_history(f->s, 2000 + (uint64_t) i), true);
        assert_true(count(f->s, "history") == 50);
        assert_true(count(f->s, "actions") == 51);

        /* In batches of 7: several runs, none deleting more than a batch of each kind. */
        assert_true(prune_all(f->s, &l, &pc) >= 40 / 7);
        assert_int_equal(pc.history, 39);
        assert_int_equal(pc.actions, 40);
        assert_true(count(f->s, "history") == 11);
        assert_true(count(f->s, "actions") == 11);
        /* The pending action and its history row stay: its result is still to be written. */
        assert_true(count(f->s, "pending_actions") == 1);
        assert_int_equal(store_history_update_result(f->s, pending_hist, "ok", 1), 0);
        assert_int_equal(store_action_finish(f->s, pending_action, "ok"), 0);
        assert_int_equal(store_history_list(f->s, -1, 0, &h, &n), 0);
        assert_int_equal(n, 11);
        for (size_t i = 0; i < n; i++)
                assert_true(h[i].time >= 2000 || h[i].id == pending_hist);
        history_entries_free(h, n);

        /* Finished now: it goes at the next run; the young rows stay. */
        prune_all(f->s, &l, &pc);
        assert_int_equal(pc.history, 1);
        assert_int_equal(pc.actions, 1);
        assert_true(count(f->s, "history") == 10);
        assert_true(count(f->s, "actions") == 10);
        prune_all(f->s, &l, &pc);
        assert_int_equal(pc.history + pc.actions, 0);
}

static void test_prune_by_count(void **state) {
        Fixture *f = *state;
        StorePruneCounts pc;
        StorePruneLimits l = { .history_max_rows = 10, .batch = 4 };
        HistoryEntry *h = NULL;
        int64_t last = 0, pending;
        size_t n = 0;

        for (int i = 0; i < 30; i++) {
                last = add_history(f->s, 5000);
                add_action(f->s, 5000, last, true);
        }
        pending = add_action(f->s, 5000, 1, false); /* refers to the oldest history row */
        prune_all(f->s, &l, &pc);
        /* The newest 10 of each stay, and the pending action with its history row. */
        assert_int_equal(pc.history, 19);
        assert_int_equal(pc.actions, 21);
        assert_true(count(f->s, "history") == 11);
        assert_true(count(f->s, "actions") == 10);
        assert_int_equal(store_history_list(f->s, -1, 0, &h, &n), 0);
        assert_int_equal(n, 11);
        assert_true(h[0].id == last && h[9].id == last - 9 && h[10].id == 1);
        history_entries_free(h, n);
        assert_int_equal(store_action_finish(f->s, pending, "ok"), 0);
        prune_all(f->s, &l, &pc);
        assert_true(count(f->s, "history") == 10);
        assert_true(count(f->s, "actions") == 10);
}

static void test_jti_count_and_prune(void **state) {
        Fixture *f = *state;
        StorePruneCounts pc;
        StorePruneLimits l = { .jti_before = 1000, .batch = 3 };
        char name[32];

        assert_true(store_jti_count(f->s) == 0);
        for (int i = 0; i < 10; i++) {
                snprintf(name, sizeof(name), "old-%d", i);
                assert_int_equal(store_jti_insert(f->s, name, "i", NULL, 500, 600), 0);
        }
        /* Received long ago but issued recently (a clock ahead): kept until its iat is old. */
        assert_int_equal(store_jti_insert(f->s, "skewed", "i", NULL, 1100, 900), 0);
        for (int i = 0; i < 5; i++) {
                snprintf(name, sizeof(name), "new-%d", i);
                assert_int_equal(store_jti_insert(f->s, name, "i", NULL, 1500, 1500), 0);
        }
        assert_int_equal(store_jti_insert(f->s, "new-0", "i", NULL, 1500, 1500), -EALREADY);
        assert_true(store_jti_count(f->s) == 16);

        /* Counted in the transaction, undone with it. */
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(store_jti_insert(f->s, "rolled-back", "i", NULL, 1500, 1500), 0);
        assert_true(store_jti_count(f->s) == 17);
        assert_int_equal(store_rollback(f->s), 0);
        assert_true(store_jti_count(f->s) == 16);
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(store_jti_insert(f->s, "committed", "i", NULL, 1500, 1500), 0);
        assert_int_equal(store_commit(f->s), 0);
        assert_true(store_jti_count(f->s) == 17);

        assert_true(prune_all(f->s, &l, &pc) >= 4);
        assert_int_equal(pc.jti, 10);
        assert_true(store_jti_count(f->s) == 7);
        assert_true(count(f->s, "jti") == 7);
        /* The young ones are still refused as replays. */
        assert_int_equal(store_jti_insert(f->s, "new-1", "i", NULL, 1500, 1600), -EALREADY);
        assert_int_equal(store_jti_insert(f->s, "skewed", "i", NULL, 1100, 1600), -EALREADY);

        /* The count survives a restart. */
        f->s = store_free(f->s);
        assert_int_equal(store_open(f->db, &f->s), 0);
        assert_true(store_jti_count(f->s) == 7);
}

/* The schema of version 0.1.0 (user_version 1), as it created the database. */
static const char schema_v1[] =
        "CREATE TABLE jti (iss TEXT NOT NULL, jti TEXT NOT NULL, event_uri TEXT,"
        "  iat INTEGER NOT NULL DEFAULT 0, received INTEGER NOT NULL, PRIMARY KEY (iss, jti));"
        "CREATE INDEX jti_received ON jti (received);"
        "CREATE TABLE detections (user TEXT NOT NULL, detection TEXT NOT NULL,"
        "  level INTEGER NOT NULL, since INTEGER NOT NULL, updated INTEGER NOT NULL,"
        "  expires INTEGER NOT NULL, event_time INTEGER NOT NULL, jti TEXT, reason TEXT,"
        "  PRIMARY KEY (user, detection));"
        "CREATE TABLE history (id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL,"
        "  user TEXT, jti TEXT, event TEXT, detection TEXT, level_before INTEGER NOT NULL,"
        "  level_after INTEGER NOT NULL, rule TEXT, action TEXT, result TEXT,"
        "  duration_ms INTEGER NOT NULL DEFAULT -1);"
        "CREATE INDEX history_user ON history (user, id);"
        "CREATE TABLE actions (id INTEGER PRIMARY KEY AUTOINCREMENT, created INTEGER NOT NULL,"
        "  state INTEGER NOT NULL, user TEXT NOT NULL, rule TEXT, action TEXT NOT NULL,"
        "  sessions TEXT, reset INTEGER NOT NULL, workflow TEXT, jti TEXT, event_uri TEXT,"
        "  detection TEXT, issuer TEXT, reason TEXT, level_before INTEGER NOT NULL,"
        "  level_after INTEGER NOT NULL, claims_json TEXT, history_id INTEGER NOT NULL,"
        "  result TEXT);"
        "CREATE INDEX actions_state ON actions (state, id);"
        "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO history (time, user, jti, event, level_before, level_after, action, result)"
        "  VALUES (5, 'alice', 'old-jti', 'session-revoked', 0, 3, 'logout', 'pending');"
        "INSERT INTO actions (created, state, user, action, sessions, reset, jti, issuer,"
        "  level_before, level_after, history_id) VALUES (5, 0, 'alice', 'logout', 'all', 0,"
        "  'old-jti', 'https://idp', 0, 3, 1);"
        /* Before schema 4 each action carried its SET's claims: two SETs, one of them twice. */
        "INSERT INTO actions (created, state, user, action, workflow, reset, jti, issuer,"
        "  level_before, level_after, history_id, claims_json) VALUES (6, 0, 'alice', 'workflow',"
        "  'notify', 0, 'set-a', 'https://idp', 0, 3, 1, '{\"jti\":\"set-a\"}');"
        "INSERT INTO actions (created, state, user, action, workflow, reset, jti, issuer,"
        "  level_before, level_after, history_id, claims_json) VALUES (6, 0, 'alias', 'workflow',"
        "  'notify', 0, 'set-a', 'https://idp', 0, 3, 1, '{\"jti\":\"set-a\"}');"
        "INSERT INTO actions (created, state, user, action, workflow, reset, jti, issuer,"
        "  level_before, level_after, history_id, claims_json) VALUES (7, 1, 'alice', 'workflow',"
        "  'notify', 0, 'set-b', 'https://idp', 0, 3, 1, '{\"jti\":\"set-b\"}');"
        "INSERT INTO detections VALUES ('alias', 'session-revoked', 3, 5, 5, 0, 5, 'old-jti', '');"
        "INSERT INTO detections VALUES ('ghost', 'session-revoked', 3, 5, 5, 0, 5, 'old-jti', '');"
        "INSERT INTO jti VALUES ('https://idp', 'old-jti', 'uri', 5, 5);"
        "INSERT INTO jti VALUES ('https://idp', 'set-a', 'uri', 6, 6);"
        "PRAGMA user_version = 1;";

static void test_migrate_v1(void **state) {
        Fixture *f = *state;
        PendingAction *a = NULL;
        HistoryEntry *h = NULL;
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        size_t n = 0;

        /* Start over with a database as 0.1.0 left it. */
        f->s = store_free(f->s);
        for (size_t i = 0; i < 3; i++) {
                char p[256];

                snprintf(p, sizeof(p), "%s%s", f->db, (const char *[]) { "", "-wal", "-shm" }[i]);
                (void) unlink(p);
        }
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, schema_v1, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        /* Opening migrates: the rows stay, without a txn; users become uids through NSS (the
         * alias's detection is alice's account's), and a name that no longer resolves goes. */
        assert_int_equal(store_open(f->db, &f->s), 0);
        {
                RiskLevel l;
                uint64_t users = 0;

                assert_int_equal(store_user_level(f->s, U("alice"), 10, &l, NULL), 0);
                assert_int_equal(l, RISK_HIGH);
                assert_int_equal(store_count(f->s, "users", &users), 0);
                assert_true(users == 1);
        }
        assert_int_equal(store_history_list(f->s, U("alice"), 0, &h, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(h[0].jti, "old-jti");
        assert_null(h[0].txn);
        /* A SET's entry of a single-transmitter state directory is the default transmitter's. */
        assert_string_equal(h[0].transmitter, "default");
        history_entries_free(h, n);
        assert_int_equal(store_action_list_pending(f->s, &a, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(a[0].jti, "old-jti");
        assert_null(a[0].txn);
        assert_null(a[0].claims_json);
        /* The claims moved to one row per SET, and the actions find them there. */
        assert_string_equal(a[1].claims_json, "{\"jti\":\"set-a\"}");
        assert_string_equal(a[2].claims_json, "{\"jti\":\"set-a\"}");
        assert_ptr_equal(a[1].claims_json, a[2].claims_json);
        /* Schema 5: actions from before warn nothing and have no due time. */
        assert_true(a[0].warn_usec == 0 && a[0].due_usec == 0);
        pending_actions_free(a, n);
        {
                uint64_t sets = 0;

                assert_int_equal(store_count(f->s, "sets", &sets), 0);
                assert_true(sets == 2);
        }
        find_txn(f->s, "https://idp", "t1", "alice", "logout", "all", NULL, NULL);
        add_txn_action(f->s, "https://idp", "t1", "alice", "logout", "all", NULL, "new-jti");
        find_txn(f->s, "https://idp", "t1", "alice", "logout", "all", NULL, "new-jti");
        /* Schema 8: the jtis kept are still replays (the index in memory was loaded), and new
         * ones are not. */
        assert_true(store_jti_count(f->s) == 2);
        assert_int_equal(store_jti_insert(f->s, "old-jti", "https://idp", "uri", 5, 100), -EALREADY);
        assert_int_equal(store_jti_insert(f->s, "set-a", "https://idp", "uri", 6, 100), -EALREADY);
        assert_int_equal(store_jti_insert(f->s, "set-b", "https://idp", "uri", 7, 100), 0);
        f->s = store_free(f->s);

        /* At the current version, and the lookup is answered from the (partial) index. */
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(st, 0), 8);
        assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
        /* Schema 8: jti has no (iss, jti) index, only the one of the prune. */
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT group_concat(name) FROM sqlite_master "
                                            "WHERE type = 'index' AND tbl_name = 'jti'", -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *) sqlite3_column_text(st, 0), "jti_received");
        assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
        /* Schema 5: reason_user, none for the rows from before. */
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM detections WHERE reason_user IS NULL",
                                            -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(st, 0), 1);
        assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
        /* The copies are gone with their column. */
        assert_int_not_equal(sqlite3_prepare_v2(db, "SELECT claims_json FROM actions", -1, &st, NULL),
                             SQLITE_OK);
        assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN SELECT jti FROM actions "
                                            "WHERE issuer = ?1 AND txn = ?2 AND uid = ?3",
                                            -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_non_null(strstr((const char *) sqlite3_column_text(st, 3), "actions_txn"));
        assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
        assert_int_equal(store_open(f->db, &f->s), 0);
}

static void test_newer_schema_refused(void **state) {
        Fixture *f = *state;
        sqlite3 *db = NULL;
        Store *s2 = NULL;

        f->s = store_free(f->s);
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);

        assert_int_equal(store_open(f->db, &s2), -EPROTONOSUPPORT);
        assert_null(s2);
}

/* reason_user is kept with the detection, and the users list carries that of the detection
 * PAM names (the top level's latest). */
static void test_reason_user(void **state) {
        Fixture *f = *state;
        StoreDetection d = {
                .uid = U("alice"), .detection = S("session-revoked"), .level = RISK_HIGH,
                .since = 100, .updated = 300, .event_time = 150, .jti = S("j1"),
                .reason_user = S("Your session was revoked."),
        }, got = {};
        StoreUser *u = NULL;
        size_t n = 0;

        assert_int_equal(store_detection_put(f->s, &d), 0);
        assert_int_equal(store_detection_get(f->s, U("alice"), "session-revoked", &got), 0);
        assert_string_equal(got.reason_user, "Your session was revoked.");
        store_detection_done(&got);
        put(f->s, "alice", "credential-change", RISK_MEDIUM, 0);   /* lower: not named */
        put(f->s, "bob", "credential-change", RISK_MEDIUM, 0);     /* none: NULL */
        d.uid = U("carol");
        d.reason_user = S(""); /* empty is stored as none */
        assert_int_equal(store_detection_put(f->s, &d), 0);

        assert_int_equal(store_users_list(f->s, 1000, &u, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(u[0].uid, U("alice"));
        assert_string_equal(u[0].reason_user, "Your session was revoked.");
        assert_null(u[1].reason_user);
        assert_null(u[2].reason_user);
        store_users_free(u, n);

        /* A later detection at the same level is the one named, with its reason_user (or
         * none). */
        d.uid = U("alice");
        d.detection = S("account-disabled");
        d.updated = 400;
        d.reason_user = NULL;
        assert_int_equal(store_detection_put(f->s, &d), 0);
        assert_int_equal(store_users_list(f->s, 1000, &u, &n), 0);
        assert_string_equal(u[0].detection, "account-disabled");
        assert_null(u[0].reason_user);
        store_users_free(u, n);
        d.reason_user = S("Disabled by HR.");
        assert_int_equal(store_detection_put(f->s, &d), 0);
        assert_int_equal(store_users_list(f->s, 1000, &u, &n), 0);
        assert_string_equal(u[0].reason_user, "Disabled by HR.");
        store_users_free(u, n);
}

/* PAM's level table is built from this list: every user at risk, however many. */
static void test_users_list_unbounded(void **state) {
        Fixture *f = *state;
        StoreUser *u = NULL;
        size_t n = 0;

        assert_int_equal(store_begin(f->s), 0);
        for (uid_t uid = 10000; uid < 10000 + 100005; uid++) {
                StoreDetection d = { .uid = uid, .detection = (char *) (uintptr_t) "session-revoked",
                                     .level = RISK_HIGH, .since = 1, .updated = 1 };
                assert_int_equal(store_detection_put(f->s, &d), 0);
        }
        assert_int_equal(store_commit(f->s), 0);
        assert_int_equal(store_users_list(f->s, 2, &u, &n), 0);
        assert_int_equal(n, 100005);
        assert_int_equal(u[n - 1].uid, 10000 + 100004);
        store_users_free(u, n);
}

int main(int argc, char *argv[]) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open_mode, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jti_replay, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jti_replay_transactions, setup, teardown),
                cmocka_unit_test_setup_teardown(test_detection_roundtrip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_levels_and_expiry, setup, teardown),
                cmocka_unit_test_setup_teardown(test_users_list, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reason_user, setup, teardown),
                cmocka_unit_test_setup_teardown(test_action_due, setup, teardown),
                cmocka_unit_test_setup_teardown(test_history, setup, teardown),
                cmocka_unit_test_setup_teardown(test_actions, setup, teardown),
                cmocka_unit_test_setup_teardown(test_action_find_txn, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kv_and_count, setup, teardown),
                cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
                cmocka_unit_test_setup_teardown(test_claims_stored_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prune_by_age, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prune_by_count, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jti_count_and_prune, setup, teardown),
                cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
                cmocka_unit_test_setup_teardown(test_users_list_unbounded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_checkpoint_thread, setup, teardown),
        };

        nss_fixture_exec(argv);
        log_setup(true);
        return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
