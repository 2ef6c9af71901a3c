/* SPDX-License-Identifier: MIT */
/* engine_apply() against a real store and NSS (nss_wrapper): the actions of SETs that share a
 * txn run once; root derives the detection and the users itself, protects system and listed
 * accounts, keys users by uid and checks the record's times. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "engine.h"
#include "manager-fixture.h"
#include "nss-fixture.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "snapshot.h"
#include "store.h"
#include "strv.h"

#define ISS "https://idp.example.com"
#define CAEP "https://schemas.openid.net/secevent/caep/event-type/"
#define RISC "https://schemas.openid.net/secevent/risc/event-type/"
#define ALICE 2001
#define BOB 2002

typedef ManagerFixture Fixture;

/* When set, the transmitter the records "arrive from" whatever their iss. */
static const char *force_transmitter;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        if (!f || manager_fixture_new(f, ISS, "[rule logout-high]\nlevels = high\naction = logout\nsessions = all\n\n"
                                    "[rule notify-medium]\nlevels = medium\naction = workflow\n"
                                    "workflow = notify-admin\n"
                                    "[transmitter other]\nissuer = https://other.example.com\n"
                                    "auth = none\n") < 0)
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

/* One subject SET about subject (an email subject for a bare user name) as the network
 * worker hands it over: the facts, nothing derived. Returns engine_apply()'s result. */
static int apply_full(Fixture *f, const char *iss, const char *jti, const char *txn,
                      const char *uri, const char *event_json, const char *subject,
                      uint64_t iat, uint64_t event_time, SetError *err) {
        char subj[512];
        IngestRequest r = {
                .kind = INGEST_SUBJECT,
                .jti = strdup(jti),
                .iss = strdup(iss),
                .txn = txn ? strdup(txn) : NULL,
                .event_uri = strdup(uri),
                .iat = iat,
                .event_time = event_time,
                .claims_json = strdup("{}"),
        };
        int k;

        assert_non_null(r.jti);
        if (subject && subject[0] != '{')
                snprintf(subj, sizeof(subj), "{\"format\":\"email\",\"email\":\"%s@example.com\"}",
                         subject);
        else
                snprintf(subj, sizeof(subj), "%s", subject ? subject : "null");
        r.event = json_loads(event_json ? event_json : "{}", 0, NULL);
        r.subject = json_loads(subj, JSON_DECODE_ANY, NULL);
        if (json_is_null(r.subject))
                r.subject = (json_decref(r.subject), NULL);
        assert_non_null(r.event);
        /* As the broker says it: the transmitter whose worker's channel it came on. */
        r.transmitter = force_transmitter ? force_transmitter : streq(iss, ISS) ? "default" : "other";
        k = engine_apply(&f->m->state, &r, err);
        ingest_request_done(&r);
        return k;
}

static void apply(Fixture *f, const char *iss, const char *jti, const char *txn, const char *uri,
                  const char *user) {
        SetError err = {};
        uint64_t now = (uint64_t) time(NULL);
        /* The members an event of that type needs (CAEP 1.0 §3.2). */
        const char *ev = strstr(uri, "credential-change")
                                 ? "{\"credential_type\":\"password\",\"change_type\":\"update\"}"
                                 : "{}";

        assert_int_equal(apply_full(f, iss, jti, txn, uri, ev, user, now, now, &err), 0);
}

static RiskLevel level_of(Fixture *f, uid_t uid) {
        RiskLevel l;

        assert_int_equal(store_user_level(f->m->state.store, uid, (uint64_t) time(NULL), &l, NULL), 0);
        return l;
}

/* The newest history entry of user. */
static HistoryEntry newest(Fixture *f, uid_t uid) {
        HistoryEntry *h = NULL, e;
        size_t n = 0;

        assert_int_equal(store_history_list(f->m->state.store, uid, 1, &h, &n), 0);
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

        apply(f, ISS, "j1", "tx-1", CAEP "session-revoked", "alice");
        h = newest(f, ALICE);
        assert_pending(&h, "logout");
        assert_string_equal(h.txn, "tx-1");
        history_entry_done(&h);
        assert_int_equal(n_pending(f), 1);

        apply(f, ISS, "j2", "tx-1", RISC "credential-compromise",
              "alice");
        h = newest(f, ALICE);
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

                assert_int_equal(store_detections_list(f->m->state.store, ALICE, 1, &d, &n), 0);
                assert_int_equal(n, 2);
                store_detections_free(d, n);
        }
        assert_int_equal(store_user_level(f->m->state.store, ALICE, 1, &l, NULL), 0);
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
        apply(f, ISS, "j3", "tx-1", RISC "account-disabled", "alice");
        h = newest(f, ALICE);
        assert_string_equal(h.result, "skipped: already done for txn tx-1 (jti j1)");
        history_entry_done(&h);
        assert_int_equal(n_pending(f), 0);
}

static void test_other_txn_or_none_acts(void **state) {
        Fixture *f = *state;
        HistoryEntry h;

        apply(f, ISS, "j1", "tx-1", CAEP "session-revoked", "alice");
        apply(f, ISS, "j2", "tx-2", RISC "credential-compromise",
              "alice");
        h = newest(f, ALICE);
        assert_pending(&h, "logout");
        history_entry_done(&h);
        assert_int_equal(n_pending(f), 2);

        /* Without a txn nothing is correlated. */
        apply(f, ISS, "j3", NULL, RISC "account-disabled", "alice");
        apply(f, ISS, "j4", "", RISC "account-purged", "alice");
        h = newest(f, ALICE);
        assert_pending(&h, "logout");
        assert_null(h.txn);
        history_entry_done(&h);
        assert_int_equal(n_pending(f), 4);

        /* The same txn for another user, or from another issuer, is another transaction's. */
        apply(f, ISS, "j5", "tx-1", CAEP "session-revoked", "bob");
        apply(f, "https://other.example.com", "j6", "tx-1", RISC "credential-compromise", "bob");
        h = newest(f, BOB);
        assert_pending(&h, "logout");
        history_entry_done(&h);
        assert_int_equal(n_pending(f), 6);
}

static void test_different_actions_in_one_txn(void **state) {
        Fixture *f = *state;
        HistoryEntry h;

        /* medium: the workflow; then high: the logout. Both belong to the transaction. */
        apply(f, ISS, "j1", "tx-1", CAEP "credential-change", "alice");
        h = newest(f, ALICE);
        assert_pending(&h, "workflow");
        history_entry_done(&h);
        apply(f, ISS, "j2", "tx-1", CAEP "session-revoked", "alice");
        h = newest(f, ALICE);
        assert_pending(&h, "logout");
        history_entry_done(&h);
        assert_int_equal(n_pending(f), 2);
}

static void test_failed_action_is_not_done(void **state) {
        Fixture *f = *state;
        PendingAction *a = NULL;
        HistoryEntry h;
        size_t n = 0;

        apply(f, ISS, "j1", "tx-1", CAEP "session-revoked", "alice");
        assert_int_equal(store_action_list_pending(f->m->state.store, &a, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(store_action_finish(f->m->state.store, a[0].id, "failed: no local user 'alice'"), 0);
        pending_actions_free(a, n);

        apply(f, ISS, "j2", "tx-1", RISC "credential-compromise",
              "alice");
        h = newest(f, ALICE);
        assert_pending(&h, "logout");
        history_entry_done(&h);
        assert_int_equal(n_pending(f), 1);
}

static size_t file_size(const char *path) {
        struct stat stt;

        assert_int_equal(stat(path, &stt), 0);
        return (size_t) stt.st_size;
}

static RiskLevel snapshot_level(const char *path, const char *uid) {
        RiskLevel l = RISK_NONE;
        int r = ssf_snapshot_lookup(path, uid, (uint64_t) time(NULL), (uid_t) -1, &l, NULL);

        assert_true(r == 0 || r == -ENOENT);
        return r == -ENOENT ? RISK_NONE : l;
}

/* A commit publishes only the accounts whose level (or its lapse time) moved: in the level table
 * and as a line appended to the snapshot's journal, never by rewriting the base file. */
static void test_snapshot_only_when_levels_move(void **state) {
        Fixture *f = *state;
        char path[256], jpath[300], *text = NULL;
        RiskLevel l;
        size_t len = 0, before;

        snprintf(path, sizeof(path), "%s/pam-snapshot", f->dir);
        snprintf(jpath, sizeof(jpath), "%s.journal", path);
        apply(f, ISS, "s1", NULL, CAEP "session-revoked", "alice");
        assert_int_equal(access(path, F_OK), 0);
        before = file_size(jpath);
        assert_int_equal(unlink(path), 0);

        /* A lower detection leaves her level and its lapse time as they were. */
        apply(f, ISS, "s2", NULL, CAEP "credential-change",
              "alice");
        assert_int_equal(file_size(jpath), before);

        apply(f, ISS, "s3", NULL, CAEP "session-revoked", "bob");
        /* Appended to the journal; the base file is not rewritten. */
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(read_full_file(jpath, 0, (uid_t) -1, 65536, &text, &len), 0);
        assert_true(strncmp(text, SSF_SNAPSHOT_JOURNAL_HEADER "\n",
                            strlen(SSF_SNAPSHOT_JOURNAL_HEADER) + 1) == 0);
        assert_non_null(strstr(text, "\n2002 high "));
        assert_null(strstr(text, "\n2001 "));
        free(text);

        /* The level table PAM is answered from follows at once. */
        assert_int_equal(state_levels_lookup(&f->m->state, BOB, (uint64_t) time(NULL), &l, NULL, 0,
                                             NULL, 0), 0);
        assert_int_equal(l, RISK_HIGH);
        assert_int_equal(state_levels_lookup(&f->m->state, 4242, (uint64_t) time(NULL), &l, NULL, 0,
                                             NULL, 0), 0);
        assert_int_equal(l, RISK_NONE);

        /* A full publish writes the base file, keyed by uid, with who is never acted upon, and
         * starts an empty journal. */
        pthread_mutex_lock(&f->m->state.lock);
        assert_int_equal(state_publish_levels_locked(&f->m->state, f->m->state.config->config), 0);
        pthread_mutex_unlock(&f->m->state.lock);
        assert_int_equal(read_full_file(path, 0, (uid_t) -1, 65536, &text, &len), 0);
        assert_non_null(strstr(text, "\n2001 high "));
        assert_non_null(strstr(text, "\n2002 high "));
        assert_non_null(strstr(text, "\nmin_uid 1000\n"));
        assert_non_null(strstr(text, "\nprotect root\n"));
        free(text);
        assert_int_equal(file_size(jpath), strlen(SSF_SNAPSHOT_JOURNAL_HEADER) + 1);
}

/* Many level changes: the journal is compacted into a new base file by the writer thread, and
 * what pam_ssf.so reads (base file and journal) says the right level for each account at
 * every point where the test looks. */
static void test_snapshot_journal_compaction(void **state) {
        Fixture *f = *state;
        LocalUser alice, bob;
        char path[256];
        uint64_t c0;

        snprintf(path, sizeof(path), "%s/pam-snapshot", f->dir);
        assert_int_equal(local_user_resolve("alice", &alice), 0);
        assert_int_equal(local_user_resolve("bob", &bob), 0);
        c0 = state_snapshot_compactions(&f->m->state);
        /* Past the compaction threshold (4096 journal entries). */
        for (unsigned i = 0; i < 2200; i++) {
                assert_int_equal(engine_set_risk(&f->m->state, &alice, RISK_HIGH, "t", NULL), 0);
                assert_int_equal(engine_reset_user(&f->m->state, &alice, "t", NULL), 0);
                assert_int_equal(snapshot_level(path, "2001"), RISK_NONE);
                if (i % 500 == 0) {
                        assert_int_equal(engine_set_risk(&f->m->state, &bob, (RiskLevel) (1 + i % 3),
                                                         "t", NULL), 0);
                        assert_int_equal(snapshot_level(path, "2002"), (RiskLevel) (1 + i % 3));
                }
        }
        assert_int_equal(engine_set_risk(&f->m->state, &alice, RISK_MEDIUM, "t", NULL), 0);
        /* The compaction runs on its own thread: wait for it (no clock involved). */
        while (state_snapshot_compactions(&f->m->state) == c0)
                usleep(1000);
        assert_int_equal(snapshot_level(path, "2001"), RISK_MEDIUM);
        assert_int_equal(snapshot_level(path, "2002"), RISK_HIGH); /* i = 2000: 1 + 2000 % 3 */
        assert_int_equal(engine_reset_user(&f->m->state, &bob, "t", NULL), 0);
        assert_int_equal(snapshot_level(path, "2002"), RISK_NONE);
        assert_int_equal(snapshot_level(path, "2001"), RISK_MEDIUM);
}

/* The level table PAM is answered from, updated in place: after many accounts are raised and
 * a scattered part of them lowered again (removals inside probe chains), every lookup agrees
 * with the store. */
static void test_level_table_follows_store(void **state) {
        Fixture *f = *state;
        State *st = &f->m->state;
        uint64_t now = (uint64_t) time(NULL);
        enum { N = 5000, BASE = 100000 };
        uid_t uids[N];

        for (unsigned i = 0; i < N; i++) {
                StoreDetection d = {
                        .uid = BASE + i * 7, /* spread, so that probe chains mix */
                        .detection = UNCONST("manual"),
                        .level = (RiskLevel) (1 + i % 3),
                        .since = now,
                        .updated = now,
                        .event_time = now,
                };
                uids[i] = d.uid;
                pthread_mutex_lock(&st->lock);
                assert_int_equal(store_begin(st->store), 0);
                assert_int_equal(store_detection_put(st->store, &d), 0);
                assert_int_equal(store_commit(st->store), 0);
                pthread_mutex_unlock(&st->lock);
        }
        pthread_mutex_lock(&st->lock);
        assert_int_equal(state_levels_changed_locked(st, st->config->config, uids, N), 0);
        pthread_mutex_unlock(&st->lock);
        for (unsigned round = 0; round < 3; round++) {
                for (unsigned i = round; i < N; i += 3 + round) {
                        pthread_mutex_lock(&st->lock);
                        assert_int_equal(store_begin(st->store), 0);
                        assert_int_equal(store_user_reset(st->store, uids[i]), 0);
                        assert_int_equal(store_commit(st->store), 0);
                        assert_int_equal(state_levels_changed_locked(st, st->config->config, &uids[i], 1), 0);
                        pthread_mutex_unlock(&st->lock);
                }
                for (unsigned i = 0; i < N; i++) {
                        RiskLevel want, got;

                        assert_int_equal(store_user_level(st->store, uids[i], now, &want, NULL), 0);
                        assert_int_equal(state_levels_lookup(st, uids[i], now, &got, NULL, 0, NULL, 0), 0);
                        assert_int_equal(got, want);
                        assert_int_equal(state_levels_lookup(st, uids[i] + 1, now, &got, NULL, 0, NULL, 0), 0);
                        assert_int_equal(got, RISK_NONE);
                }
        }
}

/* alice's reason_user in the published level table (what PAM is answered from), or NULL. */
static const char *published_reason_user(Fixture *f, uid_t uid, char *buf, size_t size) {
        RiskLevel level;

        assert_int_equal(state_levels_lookup(&f->m->state, uid, (uint64_t) time(NULL), &level, NULL,
                                             0, buf, size), 0);
        return buf[0] ? buf : NULL;
}

static void rlc(Fixture *f, const char *jti, const char *level, const char *reason_user_json) {
        char ev[1024];
        SetError err = {};
        uint64_t now = (uint64_t) time(NULL);

        snprintf(ev, sizeof(ev), "{\"principal\":\"USER\",\"current_level\":\"%s\"%s%s}", level,
                 reason_user_json ? ",\"reason_user\":" : "", reason_user_json ? reason_user_json : "");
        assert_int_equal(apply_full(f, ISS, jti, NULL, CAEP "risk-level-change", ev, "alice", now,
                                    now, &err), 0);
}

/* CAEP reason_user: "en" (else the first language, or a plain string), sanitised by root, kept
 * with the level that SET set, published for PAM. */
static void test_reason_user(void **state) {
        Fixture *f = *state;
        char buf[1024];
        StoreDetection d = {};

        rlc(f, "r1", "HIGH", "{\"fr\":\"Bonjour\",\"en\":\"Line\\none \\u001b[31mred\\u202e!\"}");
        assert_string_equal(published_reason_user(f, ALICE, buf, sizeof(buf)), "Line one red!");
        assert_int_equal(store_detection_get(f->m->state.store, ALICE, "risk-level-change", &d), 0);
        assert_string_equal(d.reason_user, "Line one red!"); /* stored sanitised */
        store_detection_done(&d);

        /* Renewed at the same level without one: the words of the SET that set the level stay. */
        rlc(f, "r2", "HIGH", NULL);
        assert_string_equal(published_reason_user(f, ALICE, buf, sizeof(buf)), "Line one red!");
        /* A new one replaces them, at the same level too (the table is published again). */
        rlc(f, "r3", "HIGH", "{\"de\":\"Erste\",\"fr\":\"Seconde\"}");
        assert_string_equal(published_reason_user(f, ALICE, buf, sizeof(buf)), "Erste");
        rlc(f, "r4", "HIGH", "\"  plain\\ttext  \"");
        assert_string_equal(published_reason_user(f, ALICE, buf, sizeof(buf)), "plain text");
        /* Another level without one: none. Not a string, or nothing printable: none. */
        rlc(f, "r5", "MEDIUM", NULL);
        assert_null(published_reason_user(f, ALICE, buf, sizeof(buf)));
        rlc(f, "r6", "MEDIUM", "42");
        assert_null(published_reason_user(f, ALICE, buf, sizeof(buf)));
        rlc(f, "r7", "MEDIUM", "{\"en\":7,\"fr\":[\"x\"]}");
        assert_null(published_reason_user(f, ALICE, buf, sizeof(buf)));
        rlc(f, "r8", "MEDIUM", "\"\\u001b[2J\\n\\t\"");
        assert_null(published_reason_user(f, ALICE, buf, sizeof(buf)));
        assert_int_equal(level_of(f, ALICE), RISK_MEDIUM);
}

/* Root's own conclusions: protected accounts are recorded, never acted upon. */
static void test_protected_accounts(void **state) {
        Fixture *f = *state;
        PendingAction *a = NULL;
        HistoryEntry h;
        size_t n = 0;

        apply(f, ISS, "p1", NULL, RISC "credential-compromise", "root");   /* protect = root */
        apply(f, ISS, "p2", NULL, RISC "credential-compromise", "daemon"); /* uid 1 < min_uid */
        apply(f, ISS, "p3", NULL, RISC "credential-compromise", "nobody"); /* above max_uid */
        assert_int_equal(level_of(f, 0), RISK_NONE);
        assert_int_equal(level_of(f, 1), RISK_NONE);
        assert_int_equal(level_of(f, 65534), RISK_NONE);
        assert_int_equal(store_action_list_pending(f->m->state.store, &a, &n), 0);
        assert_int_equal(n, 0);
        pending_actions_free(a, n);
        h = newest(f, 0);
        assert_string_equal(h.user, "root");
        assert_string_equal(h.action, "none");
        assert_true(strncmp(h.result, "protected: ", 11) == 0);
        history_entry_done(&h);
        h = newest(f, 1);
        assert_non_null(strstr(h.result, "outside min_uid"));
        history_entry_done(&h);

        /* An ordinary user in the same deployment is acted upon. */
        apply(f, ISS, "p4", NULL, RISC "credential-compromise", "alice");
        assert_int_equal(level_of(f, ALICE), RISK_HIGH);
}

/* Two names of one account share one level, shown by the account's own name. */
static void test_aliases_share_one_uid(void **state) {
        Fixture *f = *state;
        HistoryEntry h;

        apply(f, ISS, "a1", NULL, RISC "credential-compromise", "alias");
        assert_int_equal(level_of(f, ALICE), RISK_HIGH);
        h = newest(f, ALICE);
        assert_string_equal(h.user, "alice");
        assert_int_equal(h.uid, ALICE);
        history_entry_done(&h);

        /* Both names in one subject (aliases) are one account: one entry, one action. */
        apply(f, ISS, "a2", NULL, CAEP "session-revoked",
              "{\"format\":\"aliases\",\"identifiers\":[{\"format\":\"email\","
              "\"email\":\"alice@example.com\"},{\"format\":\"email\",\"email\":\"alias@example.com\"}]}");
        assert_int_equal(n_pending(f), 2);
}

/* The record's times are checked against root's own clock and max_event_age. */
static void test_times_checked(void **state) {
        Fixture *f = *state;
        uint64_t now = (uint64_t) time(NULL);
        SetError err = {};

        assert_int_equal(apply_full(f, ISS, "t1", NULL, RISC "credential-compromise", NULL, "alice",
                                    now + 3600, now, &err), -EBADMSG);
        assert_string_equal(err.err, "invalid_request");
        assert_non_null(strstr(err.description, "iat"));
        /* A far-future event time would make every later event "stale". */
        assert_int_equal(apply_full(f, ISS, "t2", NULL, RISC "credential-compromise", NULL, "alice",
                                    now, 4000000000u, &err), -EBADMSG);
        assert_non_null(strstr(err.description, "event time"));
        /* Older than max_event_age (30 days): refused before the replay check. */
        assert_int_equal(apply_full(f, ISS, "t3", NULL, RISC "credential-compromise", NULL, "alice",
                                    now - 31u * 86400u, now - 31u * 86400u, &err), -EBADMSG);
        assert_non_null(strstr(err.description, "max_event_age"));
        assert_int_equal(level_of(f, ALICE), RISK_NONE);
        /* Nothing was recorded: the same jti with good times is applied. */
        assert_int_equal(apply_full(f, ISS, "t1", NULL, RISC "credential-compromise", NULL, "alice",
                                    now, now, &err), 0);
        assert_int_equal(level_of(f, ALICE), RISK_HIGH);
}

/* What an event raises or clears is root's own table's: a compliant device event clears the
 * device detection, never an admin's manual level; a malformed payload is refused; an unknown
 * event type is recorded and ignored. */
static void test_detection_derived_by_root(void **state) {
        Fixture *f = *state;
        uint64_t now = (uint64_t) time(NULL);
        LocalUser alice = { .uid = ALICE, .name = "alice" };
        SetError err = {};
        HistoryEntry h;

        assert_int_equal(engine_set_risk(&f->m->state, &alice, RISK_HIGH, "by hand", NULL), 0);
        assert_int_equal(apply_full(f, ISS, "d1", NULL, CAEP "device-compliance-change",
                                    "{\"current_status\":\"compliant\",\"previous_status\":\"not-compliant\"}",
                                    "alice", now, now, &err), 0);
        assert_int_equal(level_of(f, ALICE), RISK_HIGH);
        h = newest(f, ALICE);
        assert_string_equal(h.detection, "device-compliance-change");
        history_entry_done(&h);

        assert_int_equal(apply_full(f, ISS, "d2", NULL, CAEP "device-compliance-change",
                                    "{\"previous_status\":\"compliant\"}", "bob", now, now, &err),
                         -EBADMSG);
        assert_string_equal(err.err, "invalid_request");
        assert_int_equal(level_of(f, BOB), RISK_NONE);

        assert_int_equal(apply_full(f, ISS, "d3", NULL, "https://example.com/event-type/reboot-all",
                                    "{}", "bob", now, now, &err), 0);
        assert_int_equal(level_of(f, BOB), RISK_NONE);
}

/* Past replay_cache_max jtis, a new SET is deferred — a local failure, not an error of the SET,
 * so the worker does not acknowledge it — and applied once older jtis were dropped; a replay of
 * a recorded one is still recognised. */
static void test_replay_cache_bound(void **state) {
        Fixture *f = *state;
        Store *s = f->m->state.store;
        uint64_t now = (uint64_t) time(NULL), n = 0;
        SetError err = {};
        char jti[32];

        f->m->state.config->config->replay_cache_max = 10;
        for (int i = 0; i < 10; i++) {
                snprintf(jti, sizeof(jti), "j-%d", i);
                apply(f, ISS, jti, NULL, CAEP "session-revoked", "bob");
        }
        assert_int_equal(store_count(s, "history", &n), 0);
        assert_true(n == 10);
        assert_int_equal(apply_full(f, ISS, "over", NULL, CAEP "session-revoked", "{}", "alice", now,
                                    now, &err), -EBUSY);
        assert_null(err.err);
        assert_int_equal(level_of(f, ALICE), RISK_NONE);
        assert_true(store_jti_count(s) == 10);
        assert_int_equal(store_count(s, "history", &n), 0);
        assert_true(n == 10);
        assert_int_equal(apply_full(f, ISS, "j-3", NULL, CAEP "session-revoked", "{}", "bob", now, now,
                                    &err), -EALREADY);

        /* The old jtis age out (pruned as on_expiry does once max_event_age passed). Not
         * now + 1: on a loaded machine the SETs above may have been recorded a second later. */
        assert_int_equal(store_jti_prune(s, (uint64_t) time(NULL) + 1), 10);
        assert_int_equal(apply_full(f, ISS, "over", NULL, CAEP "session-revoked", "{}", "alice", now,
                                    now, &err), 0);
        assert_int_equal(level_of(f, ALICE), RISK_HIGH);
        assert_true(store_jti_count(s) == 1);
}

/* Root knows a record's transmitter by its channel: an iss that is not that transmitter's is
 * refused (invalid_issuer), however valid the SET, and nothing is recorded. */
static void test_issuer_of_channel(void **state) {
        Fixture *f = *state;
        SetError err = {};

        force_transmitter = "other";
        assert_int_equal(apply_full(f, ISS, "x1", NULL, CAEP "session-revoked", NULL, "alice",
                                    (uint64_t) time(NULL), 0, &err), -EBADMSG);
        assert_string_equal(err.err, "invalid_issuer");
        err = (SetError){};
        force_transmitter = "default";
        assert_int_equal(apply_full(f, "https://other.example.com", "x2", NULL, CAEP "session-revoked",
                                    NULL, "alice", (uint64_t) time(NULL), 0, &err), -EBADMSG);
        assert_string_equal(err.err, "invalid_issuer");
        err = (SetError){};
        force_transmitter = "nosuch";
        assert_int_equal(apply_full(f, ISS, "x3", NULL, CAEP "session-revoked", NULL, "alice",
                                    (uint64_t) time(NULL), 0, &err), -EBADMSG);
        force_transmitter = NULL;
        assert_int_equal(store_jti_count(f->m->state.store), 0);
        /* Its own issuer, from its own channel: applied. */
        err = (SetError){};
        assert_int_equal(apply_full(f, "https://other.example.com", "x4", NULL, CAEP "session-revoked",
                                    NULL, "alice", (uint64_t) time(NULL), 0, &err), 0);
        assert_int_equal(store_jti_count(f->m->state.store), 1);
        /* Delivered again: counted as a duplicate of that transmitter's, not default's. */
        err = (SetError){};
        assert_int_equal(apply_full(f, "https://other.example.com", "x4", NULL, CAEP "session-revoked",
                                    NULL, "alice", (uint64_t) time(NULL), 0, &err), -EALREADY);
        assert_true(state_transmitter(&f->m->state, "other")->counters.sets_duplicate == 1);
        assert_true(state_transmitter(&f->m->state, "default")->counters.sets_duplicate == 0);
}

/* A transmitter configured with config_url alone: root derives its issuer from the URL (the
 * SSF well-known rule) and believes no issuer its worker reports, so a compromised worker can
 * claim that one issuer and no other. */
static int setup_config_url(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        if (!f || manager_fixture_new(f, ISS, "[rule logout-high]\nlevels = high\naction = logout\n"
                                    "[transmitter wk]\n"
                                    "config_url = https://wk.example.com/.well-known/ssf-configuration/t1\n"
                                    "auth = none\n") < 0)
                return -1;
        *state = f;
        return 0;
}

static void test_issuer_from_config_url(void **state) {
        static const char *const refused[] = {
                "https://reported.example.com",   /* what the worker says discovery gave */
                "https://wk.example.com/t1//",    /* not a spelling of the one issuer */
                "https://wk.example.com/t1x",
                "https://wk.example.com",
                "https://wk.example.com/.well-known/ssf-configuration/t1",
                ISS,                              /* another transmitter's */
        };
        Fixture *f = *state;
        TransmitterState *ts = state_transmitter(&f->m->state, "wk");
        SetError err;
        char jti[32];

        /* The worker reported a stream whose issuer is another: not believed. */
        assert_non_null(ts);
        free(ts->stream.issuer);
        ts->stream.issuer = strdup("https://reported.example.com");
        assert_non_null(ts->stream.issuer);

        force_transmitter = "wk";
        for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
                err = (SetError){};
                snprintf(jti, sizeof(jti), "r%zu", i);
                assert_int_equal(apply_full(f, refused[i], jti, NULL, CAEP "session-revoked", NULL,
                                            "alice", (uint64_t) time(NULL), 0, &err), -EBADMSG);
                assert_string_equal(err.err, "invalid_issuer");
        }
        assert_int_equal(store_jti_count(f->m->state.store), 0);

        err = (SetError){};
        assert_int_equal(apply_full(f, "https://wk.example.com/t1", "ok1", NULL, CAEP "session-revoked",
                                    NULL, "alice", (uint64_t) time(NULL), 0, &err), 0);
        assert_int_equal(store_jti_count(f->m->state.store), 1);
        assert_int_equal(level_of(f, ALICE), RISK_HIGH);
        /* The other spelling: the rule removed a terminating '/', if there was one. */
        err = (SetError){};
        assert_int_equal(apply_full(f, "https://wk.example.com/t1/", "ok2", NULL, CAEP "session-revoked",
                                    NULL, "bob", (uint64_t) time(NULL), 0, &err), 0);
        assert_int_equal(store_jti_count(f->m->state.store), 2);

        /* Nothing reported at all (before the stream is set up): still only that issuer. */
        free(ts->stream.issuer);
        ts->stream.issuer = NULL;
        err = (SetError){};
        assert_int_equal(apply_full(f, "https://anything.example.com", "r-none", NULL,
                                    CAEP "session-revoked", NULL, "bob", (uint64_t) time(NULL), 0, &err),
                         -EBADMSG);
        assert_string_equal(err.err, "invalid_issuer");
        force_transmitter = NULL;
}

/* A transmitter configured with a vendor's own well-known URL alone (it stands for no issuer):
 * root takes the issuer the worker reported from discovery, refuses every SET until one is
 * reported, and never accepts another transmitter's configured issuer. */
static int setup_vendor_url(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        if (!f || manager_fixture_new(f, ISS, "[rule logout-high]\nlevels = high\naction = logout\n"
                                    "[transmitter risc]\n"
                                    "config_url = https://risc.example.com/.well-known/risc-configuration\n"
                                    "auth = none\n") < 0)
                return -1;
        *state = f;
        return 0;
}

static void test_issuer_reported_for_vendor_url(void **state) {
        Fixture *f = *state;
        TransmitterState *ts = state_transmitter(&f->m->state, "risc");
        SetError err;

        assert_non_null(ts);
        force_transmitter = "risc";
        /* Nothing reported yet: refused, whatever the iss. */
        free(ts->stream.issuer);
        ts->stream.issuer = NULL;
        err = (SetError){};
        assert_int_equal(apply_full(f, "https://risc.example.com/", "n1", NULL, CAEP "session-revoked",
                                    NULL, "alice", (uint64_t) time(NULL), 0, &err), -EBADMSG);
        assert_string_equal(err.err, "invalid_issuer");

        ts->stream.issuer = strdup("https://risc.example.com/");
        assert_non_null(ts->stream.issuer);
        err = (SetError){};
        assert_int_equal(apply_full(f, "https://risc.example.com", "n2", NULL, CAEP "session-revoked",
                                    NULL, "alice", (uint64_t) time(NULL), 0, &err), -EBADMSG);
        assert_string_equal(err.err, "invalid_issuer");
        err = (SetError){};
        assert_int_equal(apply_full(f, ISS, "n3", NULL, CAEP "session-revoked", NULL, "alice",
                                    (uint64_t) time(NULL), 0, &err), -EBADMSG);
        assert_string_equal(err.err, "invalid_issuer");
        assert_int_equal(store_jti_count(f->m->state.store), 0);

        err = (SetError){};
        assert_int_equal(apply_full(f, "https://risc.example.com/", "ok1", NULL, CAEP "session-revoked",
                                    NULL, "alice", (uint64_t) time(NULL), 0, &err), 0);
        assert_int_equal(store_jti_count(f->m->state.store), 1);
        assert_int_equal(level_of(f, ALICE), RISK_HIGH);

        /* A worker that reports another transmitter's configured issuer gains nothing. */
        free(ts->stream.issuer);
        ts->stream.issuer = strdup(ISS);
        assert_non_null(ts->stream.issuer);
        err = (SetError){};
        assert_int_equal(apply_full(f, ISS, "n4", NULL, CAEP "session-revoked", NULL, "bob",
                                    (uint64_t) time(NULL), 0, &err), -EBADMSG);
        assert_string_equal(err.err, "invalid_issuer");
        assert_int_equal(store_jti_count(f->m->state.store), 1);
        force_transmitter = NULL;
}

int main(int argc, char *argv[]) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_same_txn_logout_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_issuer_of_channel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_issuer_from_config_url, setup_config_url, teardown),
                cmocka_unit_test_setup_teardown(test_issuer_reported_for_vendor_url, setup_vendor_url,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_other_txn_or_none_acts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_different_actions_in_one_txn, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failed_action_is_not_done, setup, teardown),
                cmocka_unit_test_setup_teardown(test_snapshot_only_when_levels_move, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_reason_user, setup, teardown),
                cmocka_unit_test_setup_teardown(test_snapshot_journal_compaction, setup, teardown),
                cmocka_unit_test_setup_teardown(test_level_table_follows_store, setup, teardown),
                cmocka_unit_test_setup_teardown(test_protected_accounts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_aliases_share_one_uid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_times_checked, setup, teardown),
                cmocka_unit_test_setup_teardown(test_detection_derived_by_root, setup, teardown),
                cmocka_unit_test_setup_teardown(test_replay_cache_bound, setup, teardown),
        };

        nss_fixture_exec(argv);
        log_set_max_level(LOG_ERR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
