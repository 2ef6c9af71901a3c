/* SPDX-License-Identifier: MIT */
/* engine_apply() against a real store: the actions of SETs that share a txn run once. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine.h"
#include "manager-fixture.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "store.h"
#include "strv.h"

#define ISS "https://idp.example.com"
#define CAEP "https://schemas.openid.net/secevent/caep/event-type/"
#define RISC "https://schemas.openid.net/secevent/risc/event-type/"

typedef ManagerFixture Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        if (!f || manager_fixture_new(f, ISS, "[rule logout-high]\nlevels = high\naction = logout\nsessions = all\n\n"
                                    "[rule notify-medium]\nlevels = medium\naction = workflow\n"
                                    "workflow = notify-admin\n") < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        int r = manager_fixture_done(f);

        free(f);
        return r;
}

/* One subject SET raising detection to level for user, as the network worker hands it over. */
static void apply(Fixture *f, const char *iss, const char *jti, const char *txn, const char *uri,
                  const char *detection, RiskLevel level, const char *user) {
        IngestRequest r = {
                .kind = INGEST_SUBJECT,
                .jti = strdup(jti),
                .iss = strdup(iss),
                .txn = txn ? strdup(txn) : NULL,
                .event_uri = strdup(uri),
                .iat = 1700000000,
                .event_time = 1700000000,
                .claims_json = strdup("{}"),
        };
        SetError err = {};

        assert_non_null(r.jti);
        assert_int_equal(strv_extend(&r.users, user), 0);
        snprintf(r.detection.name, sizeof(r.detection.name), "%s", detection);
        r.detection.effect = DETECTION_RAISE;
        r.detection.level = level;
        assert_int_equal(engine_apply(&f->m->state, &r, &err), 0);
        ingest_request_done(&r);
}

/* The newest history entry of user. */
static HistoryEntry newest(Fixture *f, const char *user) {
        HistoryEntry *h = NULL, e;
        size_t n = 0;

        assert_int_equal(store_history_list(f->m->state.store, user, 1, &h, &n), 0);
        assert_int_equal(n, 1);
        e = h[0];
        free(h);
        return e;
}

static size_t n_pending(Fixture *f) {
        PendingAction *a = NULL;
        size_t n = 0;

        assert_int_equal(store_action_list_pending(f->m->state.store, &a, &n), 0);
        pending_actions_free(a, n);
        return n;
}

static void assert_pending(const HistoryEntry *h, const char *action) {
        assert_string_equal(h->action, action);
        assert_string_equal(h->result, "pending");
}

static void test_same_txn_logout_once(void **state) {
        Fixture *f = *state;
        HistoryEntry h;
        RiskLevel l;

        apply(f, ISS, "j1", "tx-1", CAEP "session-revoked", "session-revoked", RISK_HIGH, "alice");
        h = newest(f, "alice");
        assert_pending(&h, "logout");
        assert_string_equal(h.txn, "tx-1");
        history_entry_done(&h);
        assert_int_equal(n_pending(f), 1);

        apply(f, ISS, "j2", "tx-1", RISC "credential-compromise", "credential-compromise", RISK_HIGH,
              "alice");
        h = newest(f, "alice");
        assert_string_equal(h.jti, "j2");
        assert_string_equal(h.txn, "tx-1");
        assert_string_equal(h.detection, "credential-compromise");
        assert_string_equal(h.rule, "logout-high");
        assert_string_equal(h.action, "logout");
        assert_string_equal(h.result, "skipped: already done for txn tx-1 (jti j1)");
        assert_int_equal(h.level_after, RISK_HIGH);
        history_entry_done(&h);
        assert_int_equal(n_pending(f), 1); /* no second logout */

        /* The risk change itself is recorded. */
        {
                StoreDetection *d = NULL;
                size_t n = 0;

                assert_int_equal(store_detections_list(f->m->state.store, "alice", 1, &d, &n), 0);
                assert_int_equal(n, 2);
                store_detections_free(d, n);
        }
        assert_int_equal(store_user_level(f->m->state.store, "alice", 1, &l, NULL), 0);
        assert_int_equal(l, RISK_HIGH);

        /* Also once the logout is done, and after a restart. */
        {
                PendingAction *a = NULL;
                size_t n = 0;

                assert_int_equal(store_action_list_pending(f->m->state.store, &a, &n), 0);
                assert_int_equal(n, 1);
                assert_string_equal(a[0].txn, "tx-1");
                assert_int_equal(store_action_finish(f->m->state.store, a[0].id, "ok: terminated 1 of 1 sessions"), 0);
                pending_actions_free(a, n);
        }
        f->m->state.store = store_free(f->m->state.store);
        assert_int_equal(store_open(f->db, &f->m->state.store), 0);
        apply(f, ISS, "j3", "tx-1", RISC "account-disabled", "account-disabled", RISK_HIGH, "alice");
        h = newest(f, "alice");
        assert_string_equal(h.result, "skipped: already done for txn tx-1 (jti j1)");
        history_entry_done(&h);
        assert_int_equal(n_pending(f), 0);
}

static void test_other_txn_or_none_acts(void **state) {
        Fixture *f = *state;
        HistoryEntry h;

        apply(f, ISS, "j1", "tx-1", CAEP "session-revoked", "session-revoked", RISK_HIGH, "alice");
        apply(f, ISS, "j2", "tx-2", RISC "credential-compromise", "credential-compromise", RISK_HIGH,
              "alice");
        h = newest(f, "alice");
        assert_pending(&h, "logout");
        history_entry_done(&h);
        assert_int_equal(n_pending(f), 2);

        /* Without a txn nothing is correlated. */
        apply(f, ISS, "j3", NULL, RISC "account-disabled", "account-disabled", RISK_HIGH, "alice");
        apply(f, ISS, "j4", "", RISC "account-purged", "account-purged", RISK_HIGH, "alice");
        h = newest(f, "alice");
        assert_pending(&h, "logout");
        assert_null(h.txn);
        history_entry_done(&h);
        assert_int_equal(n_pending(f), 4);

        /* The same txn for another user, or from another issuer, is another transaction's. */
        apply(f, ISS, "j5", "tx-1", CAEP "session-revoked", "session-revoked", RISK_HIGH, "bob");
        apply(f, "https://other.example.com", "j6", "tx-1", RISC "credential-compromise",
              "credential-compromise", RISK_HIGH, "bob");
        h = newest(f, "bob");
        assert_pending(&h, "logout");
        history_entry_done(&h);
        assert_int_equal(n_pending(f), 6);
}

static void test_different_actions_in_one_txn(void **state) {
        Fixture *f = *state;
        HistoryEntry h;

        /* medium: the workflow; then high: the logout. Both belong to the transaction. */
        apply(f, ISS, "j1", "tx-1", CAEP "credential-change", "credential-change", RISK_MEDIUM, "alice");
        h = newest(f, "alice");
        assert_pending(&h, "workflow");
        history_entry_done(&h);
        apply(f, ISS, "j2", "tx-1", CAEP "session-revoked", "session-revoked", RISK_HIGH, "alice");
        h = newest(f, "alice");
        assert_pending(&h, "logout");
        history_entry_done(&h);
        assert_int_equal(n_pending(f), 2);
}

static void test_failed_action_is_not_done(void **state) {
        Fixture *f = *state;
        PendingAction *a = NULL;
        HistoryEntry h;
        size_t n = 0;

        apply(f, ISS, "j1", "tx-1", CAEP "session-revoked", "session-revoked", RISK_HIGH, "alice");
        assert_int_equal(store_action_list_pending(f->m->state.store, &a, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(store_action_finish(f->m->state.store, a[0].id, "failed: no local user 'alice'"), 0);
        pending_actions_free(a, n);

        apply(f, ISS, "j2", "tx-1", RISC "credential-compromise", "credential-compromise", RISK_HIGH,
              "alice");
        h = newest(f, "alice");
        assert_pending(&h, "logout");
        history_entry_done(&h);
        assert_int_equal(n_pending(f), 1);
}

/* The PAM snapshot is rewritten in full, so only when a level (or its lapse time) moved. */
static void test_snapshot_only_when_levels_move(void **state) {
        Fixture *f = *state;
        char path[256], *text = NULL;
        size_t len = 0;

        snprintf(path, sizeof(path), "%s/pam-snapshot", f->dir);
        apply(f, ISS, "s1", NULL, CAEP "session-revoked", "session-revoked", RISK_HIGH, "alice");
        assert_int_equal(access(path, F_OK), 0);
        assert_int_equal(unlink(path), 0);

        /* A lower detection leaves her level and its lapse time as they were. */
        apply(f, ISS, "s2", NULL, CAEP "credential-change", "credential-change", RISK_MEDIUM,
              "alice");
        assert_int_equal(access(path, F_OK), -1);

        apply(f, ISS, "s3", NULL, CAEP "session-revoked", "session-revoked", RISK_HIGH, "bob");
        assert_int_equal(read_full_file(path, 0, (uid_t) -1, 65536, &text, &len), 0);
        assert_non_null(strstr(text, "alice"));
        assert_non_null(strstr(text, "bob"));
        free(text);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_same_txn_logout_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_other_txn_or_none_acts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_different_actions_in_one_txn, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failed_action_is_not_done, setup, teardown),
                cmocka_unit_test_setup_teardown(test_snapshot_only_when_levels_move, setup,
                                                teardown),
        };

        log_set_max_level(LOG_WARNING);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
