/* SPDX-License-Identifier: MIT */
/*
 * SET commit throughput: engine_apply() -- replay check, detection upsert, risk recomputation,
 * rule match, history row, one SQLite transaction (WAL, synchronous=FULL), then the changed
 * account in the level table and one line appended to the PAM snapshot's journal (the base
 * file is rewritten off the commit path, by the compaction thread) -- against the bare storage
 * cost ("txn floor"): as many SQLite
 * transactions, on a database opened with the store's settings in the same directory, each
 * inserting one replay-cache row and one history row with prepared statements (BEGIN
 * IMMEDIATE … COMMIT).
 *
 *   bench-engine [--tmp DIR] [--at-risk N,N…] [--rounds R] [--round-ms MS]
 *   bench-engine [--tmp DIR] [--at-risk N,N…] --callgrind K     K ops per case and side, one
 *                                                              callgrind dump each (run under
 *                                                              valgrind --tool=callgrind)
 *
 * Cases, in the order they run:
 *   3a  a SET that raises one user (ssfbench, resolved through NSS as root maps a subject; back
 *       to none after each SET, untimed) to high, matched by an `action = none` rule (no
 *       logout, no hook), no other user at risk;
 *   3b  the same with N users already at risk (seeded through the store), for each N of
 *       --at-risk (default 1000,10000), ascending;
 *   3c  a duplicate jti (replay path: acknowledged, nothing changed), at the largest N.
 * Two informational sides show what a full publish costs at that N (start-up, reload, expiry;
 * no longer on the commit path): the rewrite alone (state_publish_levels_locked) and, within
 * it, the store_users_list() it starts with.
 *
 * In each of R rounds the engine and floor run back to back (alternating which goes first),
 * then the snapshot sides; each side's batch is calibrated to ~MS ms (at least 3 ops). Only
 * engine_apply() is timed: after each SET, untimed, the snapshot (base file and journal, read as
 * pam_ssf.so reads them) is checked to list the user it raised and a seeded user at high, and
 * the user is reset, so every SET of a case finds exactly N users at risk. Reported: medians over rounds, and the median of the per-round ratios. Logging is off
 * (LOG_WARNING): the journal's cost is not the engine's. The state lives in a new directory
 * under --tmp (default $TMPDIR or /tmp; /var/tmp when that is a tmpfs, since the daemon's state
 * is on disk), removed at exit.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/magic.h>
#include <pwd.h>
#include <sqlite3.h>
#include <valgrind/callgrind.h>

#include "bench-util.h"
#include "engine.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "snapshot.h"
#include "store.h"
#include "strv.h"

#define ISS "https://tr.example.test"
#define EVENT_URI "https://schemas.openid.net/secevent/risc/event-type/credential-compromise"
#define DETECTION "credential-compromise"
#define RULE "observe-high"
/* The user every SET raises (and the bench resets after it): it must resolve through NSS, as
 * root maps a SET's subject to a local account (run.sh runs this under nss_wrapper). */
#define BENCH_USER "ssfbench"
/* Users seeded at risk are stored by uid from here on (they need not resolve). */
#define SEED_UID_BASE 200000u
#define MAX_AT_RISK_CASES 8

typedef struct Case {
        const char *id;    /* "3a", "3b", "3c": what the table and the callgrind dumps say */
        const char *label;
        unsigned at_risk;  /* users at risk before each SET */
        bool replay;
} Case;

static char dir[256];
static char db_path[320], floor_path[320], snapshot_path[320];
static Manager *manager;
static const Config *config;
static unsigned seq;       /* SETs committed through the engine: jti e<seq> */
static uid_t bench_uid;    /* BENCH_USER's uid */
static unsigned floor_seq; /* floor transactions: jti f<seq> */
static unsigned seeded;    /* users s<i> at risk */

/* The floor: the store's open sequence and settings, the rows engine_apply writes at least. */
static sqlite3 *fdb;
enum { F_BEGIN, F_JTI, F_HIST, F_COMMIT, _F_MAX };
static sqlite3_stmt *fst[_F_MAX];

static _Noreturn void die(const char *what) {
        fprintf(stderr, "bench-engine: %s\n", what);
        exit(1);
}

static void remove_dir(void) {
        DIR *d;
        struct dirent *de;

        if (!dir[0])
                return;
        d = opendir(dir);
        if (d) {
                while ((de = readdir(d)))
                        if (de->d_name[0] != '.')
                                (void) unlinkat(dirfd(d), de->d_name, 0);
                closedir(d);
        }
        (void) rmdir(dir);
        dir[0] = 0;
}

static void cleanup(void) {
        for (int i = 0; i < _F_MAX; i++)
                (void) sqlite3_finalize(fst[i]);
        if (fdb)
                (void) sqlite3_close_v2(fdb);
        fdb = NULL;
        manager = manager_free(manager);
        remove_dir();
}

static void on_signal(int sig) {
        remove_dir(); /* files of our own directory; the databases need no closing for that */
        _exit(128 + sig);
}

static const char *fs_name(const char *path) {
        struct statfs s;

        if (statfs(path, &s) < 0)
                return "unknown";
        switch ((unsigned long) s.f_type) {
        case EXT4_SUPER_MAGIC:
                return "ext4"; /* ext2/3/4 share it */
        case TMPFS_MAGIC:
                return "tmpfs";
        case XFS_SUPER_MAGIC:
                return "xfs";
        case BTRFS_SUPER_MAGIC:
                return "btrfs";
        case OVERLAYFS_SUPER_MAGIC:
                return "overlay";
        default:
                return "other";
        }
}

/* ---- setup -------------------------------------------------------------------------------- */

static void make_dir(const char *parent, bool explicit) {
        const char *p = parent;

        if (!explicit && streq(fs_name(p), "tmpfs") && !streq(fs_name("/var/tmp"), "tmpfs"))
                p = "/var/tmp"; /* the daemon's state is on disk (/var/lib), not in memory */
        if (strlen(p) > 200)
                die("--tmp is too long");
        (void) snprintf(dir, sizeof(dir), "%s/ssf-bench-engine-XXXXXX", p);
        if (!mkdtemp(dir)) {
                dir[0] = 0;
                die("cannot create the temporary directory");
        }
        atexit(cleanup);
        (void) signal(SIGINT, on_signal);
        (void) signal(SIGTERM, on_signal);
        (void) signal(SIGHUP, on_signal);
        (void) signal(SIGPIPE, on_signal); /* e.g. piped into head */
        (void) snprintf(db_path, sizeof(db_path), "%s/state.db", dir);
        (void) snprintf(floor_path, sizeof(floor_path), "%s/floor.db", dir);
        (void) snprintf(snapshot_path, sizeof(snapshot_path), "%s/pam-snapshot", dir);
}

static void setup_manager(void) {
        char text[2048];
        Config *c = NULL;

        (void) snprintf(text, sizeof(text),
                        "[transmitter]\nissuer = " ISS "\nauth = none\n\n"
                        "[subjects]\nmap = email-localpart\ndomains = example.com\n\n"
                        "[rule " RULE "]\nlevels = high\naction = none\n\n"
                        "[daemon]\nstate_dir = %s\nsnapshot = %s\n",
                        dir, snapshot_path);
        if (config_load_buffer("bench-engine", text, strlen(text), &c) < 0)
                die("the configuration does not load");
        /* As the daemon starts, short of its event loop: config, state dir, store. */
        if (manager_new("bench-engine.conf", c, &manager) < 0)
                die("manager_new failed");
        {
                struct passwd *pw = getpwnam(BENCH_USER);
                if (!pw)
                        die("no user '" BENCH_USER "' (run under nss_wrapper as bench/run.sh does)");
                bench_uid = pw->pw_uid;
        }
        config = c;
}

static void fexec(const char *sql) {
        if (sqlite3_exec(fdb, sql, NULL, NULL, NULL) != SQLITE_OK) {
                fprintf(stderr, "bench-engine: floor: %s: %s\n", sql, sqlite3_errmsg(fdb));
                exit(1);
        }
}

static void setup_floor(void) {
        static const char *const sql[_F_MAX] = {
                [F_BEGIN] = "BEGIN IMMEDIATE",
                [F_JTI] = "INSERT INTO jti (iss, jti, event_uri, iat, received) "
                          "VALUES (?1, ?2, ?3, ?4, ?5)",
                [F_HIST] = "INSERT INTO history (time, user, jti, event, detection, level_before, "
                           "level_after, rule, action, result, duration_ms, txn) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                [F_COMMIT] = "COMMIT",
        };

        /* As store_open(): same open flags, busy timeout and PRAGMAs. */
        if (sqlite3_open_v2(floor_path, &fdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                                      SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK)
                die("floor: cannot open the database");
        (void) sqlite3_busy_timeout(fdb, 5000);
        fexec("PRAGMA journal_mode = WAL");
        fexec("PRAGMA synchronous = FULL");
        fexec("PRAGMA foreign_keys = ON");
        /* The two tables as store.c's schema has them (indexes included). */
        fexec("CREATE TABLE jti (iss TEXT NOT NULL, jti TEXT NOT NULL, event_uri TEXT,"
              " iat INTEGER NOT NULL DEFAULT 0, received INTEGER NOT NULL);"
              "CREATE INDEX jti_received ON jti (received);"
              "CREATE TABLE history (id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL,"
              " user TEXT, jti TEXT, event TEXT, detection TEXT, level_before INTEGER NOT NULL,"
              " level_after INTEGER NOT NULL, rule TEXT, action TEXT, result TEXT,"
              " duration_ms INTEGER NOT NULL DEFAULT -1, txn TEXT);"
              "CREATE INDEX history_user ON history (user, id);");
        for (int i = 0; i < _F_MAX; i++)
                if (sqlite3_prepare_v3(fdb, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &fst[i], NULL) !=
                    SQLITE_OK)
                        die("floor: cannot prepare a statement");
}

/* ---- the sides: floor, snapshot, engine, users list --------------------------------------- */

static sqlite3_stmt *fget(int i) {
        (void) sqlite3_reset(fst[i]);
        (void) sqlite3_clear_bindings(fst[i]);
        return fst[i];
}

static void fstep(sqlite3_stmt *st) {
        if (sqlite3_step(st) != SQLITE_DONE) {
                fprintf(stderr, "bench-engine: floor: %s\n", sqlite3_errmsg(fdb));
                exit(1);
        }
        (void) sqlite3_reset(st);
}

/* One transaction: a replay-cache row and a history row, as engine_apply writes for a SET. */
static void floor_once(void) {
        char jti[32], user[32];
        uint64_t now = now_sec();
        sqlite3_stmt *st;

        floor_seq++;
        (void) snprintf(jti, sizeof(jti), "f%08u", floor_seq);
        (void) snprintf(user, sizeof(user), "f%08u", floor_seq);
        fstep(fget(F_BEGIN));
        st = fget(F_JTI);
        (void) sqlite3_bind_text(st, 1, ISS, -1, SQLITE_TRANSIENT);
        (void) sqlite3_bind_text(st, 2, jti, -1, SQLITE_TRANSIENT);
        (void) sqlite3_bind_text(st, 3, EVENT_URI, -1, SQLITE_TRANSIENT);
        (void) sqlite3_bind_int64(st, 4, 1700000000);
        (void) sqlite3_bind_int64(st, 5, (sqlite3_int64) now);
        fstep(st);
        if (sqlite3_changes(fdb) != 1)
                die("floor: the jti row was not inserted");
        st = fget(F_HIST);
        (void) sqlite3_bind_int64(st, 1, (sqlite3_int64) now);
        (void) sqlite3_bind_text(st, 2, user, -1, SQLITE_TRANSIENT);
        (void) sqlite3_bind_text(st, 3, jti, -1, SQLITE_TRANSIENT);
        (void) sqlite3_bind_text(st, 4, DETECTION, -1, SQLITE_TRANSIENT);
        (void) sqlite3_bind_text(st, 5, DETECTION, -1, SQLITE_TRANSIENT);
        (void) sqlite3_bind_int64(st, 6, RISK_NONE);
        (void) sqlite3_bind_int64(st, 7, RISK_HIGH);
        (void) sqlite3_bind_text(st, 8, RULE, -1, SQLITE_TRANSIENT);
        (void) sqlite3_bind_text(st, 9, "none", -1, SQLITE_TRANSIENT);
        (void) sqlite3_bind_text(st, 10, "recorded", -1, SQLITE_TRANSIENT);
        (void) sqlite3_bind_int64(st, 11, -1);
        (void) sqlite3_bind_null(st, 12);
        fstep(st);
        fstep(fget(F_COMMIT));
}

static double run_floor(unsigned n) {
        uint64_t a = bench_now_ns();
        for (unsigned i = 0; i < n; i++)
                floor_once();
        return (double) (bench_now_ns() - a) / n;
}

static void snapshot_once(void) {
        int r;

        pthread_mutex_lock(&manager->state.lock);
        r = state_publish_levels_locked(&manager->state, config);
        pthread_mutex_unlock(&manager->state.lock);
        if (r < 0)
                die("manager_write_snapshot_locked failed");
}

static double run_snapshot(unsigned n) {
        uint64_t a = bench_now_ns();
        for (unsigned i = 0; i < n; i++)
                snapshot_once();
        return (double) (bench_now_ns() - a) / n;
}

/* n SETs as the network worker hands them over (built before the clock starts): each raises
 * BENCH_USER (at none again before each, see check_and_reset()) to high, or, for replay, the
 * jti of an already committed SET. */
static IngestRequest *build_sets(unsigned n, bool replay) {
        IngestRequest *v = calloc(n, sizeof(IngestRequest));
        uint64_t now = now_sec();
        char jti[32];

        if (!v)
                die("out of memory");
        if (replay && seq == 0)
                die("nothing committed to replay");
        for (unsigned i = 0; i < n; i++) {
                unsigned k = replay ? 1 + (unsigned) (((uint64_t) i * 7919u) % seq) : ++seq;

                (void) snprintf(jti, sizeof(jti), "e%08u", k);
                v[i] = (IngestRequest) {
                        .kind = INGEST_SUBJECT,
                        .jti = strdup(jti),
                        .iss = strdup(ISS),
                        .transmitter = "default", /* root takes it from the worker's channel */
                        .event_uri = strdup(EVENT_URI),
                        .iat = now,
                        .event_time = now,
                        .event = json_object(),
                        .subject = json_pack("{s:s, s:s}", "format", "email", "email",
                                             BENCH_USER "@example.com"),
                        .claims_json = strdup("{}"),
                };
                if (!v[i].jti || !v[i].iss || !v[i].event_uri || !v[i].claims_json || !v[i].event ||
                    !v[i].subject)
                        die("out of memory");
        }
        return v;
}

/* Entry lines of the PAM snapshot (v2: "UID LEVEL UNTIL", one per user at risk; the header
 * and the policy lines do not start with a digit). */
static unsigned snapshot_entries(void) {
        FILE *f = fopen(snapshot_path, "re");
        unsigned n = 0;
        int c, prev = '\n';

        if (!f)
                die("no PAM snapshot");
        while ((c = getc(f)) != EOF) {
                n += prev == '\n' && c >= '0' && c <= '9';
                prev = c;
        }
        fclose(f);
        return n;
}

/* uid's level in the snapshot as pam_ssf.so reads it (base file and journal). */
static RiskLevel snapshot_level(uid_t uid) {
        char key[16];
        RiskLevel l = RISK_NONE;
        int r;

        (void) snprintf(key, sizeof(key), "%u", (unsigned) uid);
        r = ssf_snapshot_lookup(snapshot_path, key, now_sec(), (uid_t) -1, &l, NULL);
        if (r < 0 && r != -ENOENT)
                die("the PAM snapshot cannot be read");
        return r == -ENOENT ? RISK_NONE : l;
}

/* Untimed, after a SET that raised user: the snapshot lists user and a seeded user at high;
 * then user goes back to none (in the store, the level table and the journal), so that every
 * SET of a case finds the same number of users at risk. */
static void check_and_reset(const Case *c) {
        if (snapshot_level(bench_uid) != RISK_HIGH ||
            (c->at_risk > 0 && snapshot_level(SEED_UID_BASE) != RISK_HIGH)) {
                fprintf(stderr, "bench-engine: the snapshot does not list the users at risk\n");
                exit(1);
        }
        pthread_mutex_lock(&manager->state.lock);
        if (store_begin(manager->state.store) < 0 || store_user_reset(manager->state.store, bench_uid) < 0 ||
            store_commit(manager->state.store) < 0 ||
            state_levels_changed_locked(&manager->state, config, &bench_uid, 1) < 0)
                die("cannot reset a user");
        pthread_mutex_unlock(&manager->state.lock);
}

/* Runs the SETs of v, returns ns per SET: engine_apply() alone is timed (and, under callgrind,
 * counted). */
static double apply_sets(const IngestRequest *v, unsigned n, const Case *c, bool cg) {
        uint64_t t = 0;

        for (unsigned i = 0; i < n; i++) {
                SetError err = {};
                uint64_t a = bench_now_ns();
                int r = engine_apply(&manager->state, &v[i], &err);

                t += bench_now_ns() - a;
                if (r != (c->replay ? -EALREADY : 0)) {
                        fprintf(stderr, "bench-engine: engine_apply(%s) returned %d (%s)\n",
                                v[i].jti, r, err.description);
                        exit(1);
                }
                if (!c->replay) {
                        if (cg)
                                CALLGRIND_TOGGLE_COLLECT;
                        check_and_reset(c);
                        if (cg)
                                CALLGRIND_TOGGLE_COLLECT;
                }
        }
        return (double) t / n;
}

static void free_sets(IngestRequest *v, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                ingest_request_done(&v[i]);
        free(v);
}

static double run_engine(unsigned n, const Case *c) {
        IngestRequest *v = build_sets(n, c->replay);
        double t = apply_sets(v, n, c, false);

        free_sets(v, n);
        return t;
}

/* What the snapshot rewrite starts with: the users at risk and their levels, from SQLite. */
static double run_list(unsigned n) {
        uint64_t a = bench_now_ns();

        for (unsigned i = 0; i < n; i++) {
                StoreUser *u = NULL;
                size_t k = 0;
                int r;

                pthread_mutex_lock(&manager->state.lock);
                r = store_users_list(manager->state.store, now_sec(), &u, &k);
                pthread_mutex_unlock(&manager->state.lock);
                if (r < 0)
                        die("store_users_list failed");
                store_users_free(u, k);
        }
        return (double) (bench_now_ns() - a) / n;
}

/* Untimed: brings the users at risk up to target (only ever grows), in one transaction. */
static void seed_to(unsigned target) {
        uint64_t now = now_sec(), users = 0;

        if (target > seeded) {
                if (store_begin(manager->state.store) < 0)
                        die("store_begin");
                for (; seeded < target; seeded++) {
                        StoreDetection d = {
                                .uid = SEED_UID_BASE + seeded,
                                .detection = UNCONST(DETECTION),
                                .level = RISK_HIGH,
                                .since = now,
                                .updated = now,
                                .expires = now + config->ttl_usec / 1000000u,
                                .event_time = now,
                                .reason = UNCONST("seeded by bench-engine"),
                        };
                        if (store_detection_put(manager->state.store, &d) < 0)
                                die("store_detection_put");
                }
                if (store_commit(manager->state.store) < 0)
                        die("store_commit");
        }
        if (store_count(manager->state.store, "users", &users) < 0 || users != target)
                die("unexpected number of users at risk");
        snapshot_once();
        if (snapshot_entries() != target)
                die("the snapshot does not list every user at risk");
}

/* ---- modes -------------------------------------------------------------------------------- */

/* Ops per round for a side that takes est ns per op: ~round_ms, at least 3. */
static unsigned batch(double round_ms, double est) {
        double n = round_ms * 1e6 / est;

        return n < 3 ? 3 : n > 100000 ? 100000 : (unsigned) n;
}

static void wallclock(const Case *cases, size_t n_cases, int rounds, double round_ms) {
        printf("SET commits (µs/SET, median of %d paired rounds of ~%.0f ms per side; "
               "state on %s in %s)\n", rounds, round_ms, fs_name(dir), dir);
        printf("%-4s %-25s %7s %10s %8s %10s %7s | %10s %6s %10s %6s\n", "case", "", "at risk",
               "engine", "SETs/s", "txn floor", "ratio", "snapshot", "share", "users list",
               "batch");
        fflush(stdout);
        for (size_t k = 0; k < n_cases; k++) {
                const Case *c = &cases[k];
                double t_eng[BENCH_MAX_ROUNDS], t_floor[BENCH_MAX_ROUNDS], t_snap[BENCH_MAX_ROUNDS],
                        t_list[BENCH_MAX_ROUNDS], ratio[BENCH_MAX_ROUNDS], share[BENCH_MAX_ROUNDS],
                        eng;
                unsigned n_eng, n_floor, n_snap;

                seed_to(c->at_risk);
                /* Warm up (caches, WAL), then size each side's batch to ~round_ms. */
                (void) run_engine(2, c);
                (void) run_floor(2);
                n_eng = batch(round_ms, run_engine(3, c));
                n_floor = batch(round_ms, run_floor(3));
                n_snap = c->replay ? 0 : batch(round_ms, run_snapshot(2));

                for (int r = 0; r < rounds; r++) {
                        /* Engine and floor back to back, alternating which goes first. */
                        if (r % 2 == 0) {
                                t_floor[r] = run_floor(n_floor);
                                t_eng[r] = run_engine(n_eng, c);
                        } else {
                                t_eng[r] = run_engine(n_eng, c);
                                t_floor[r] = run_floor(n_floor);
                        }
                        t_snap[r] = c->replay ? 0 : run_snapshot(n_snap);
                        t_list[r] = c->replay ? 0 : run_list(n_snap);
                        ratio[r] = t_eng[r] / t_floor[r];
                        share[r] = t_snap[r] / t_eng[r];
                }
                eng = bench_median(t_eng, rounds);
                printf("%-4s %-25s %7u %10.1f %8.0f %10.1f %7.3f | ", c->id, c->label, c->at_risk,
                       eng / 1e3, 1e9 / eng, bench_median(t_floor, rounds) / 1e3,
                       bench_median(ratio, rounds));
                if (c->replay)
                        printf("%10s %6s %10s %6u\n", "-", "-", "-", n_eng);
                else
                        printf("%10.1f %5.0f%% %10.1f %6u\n", bench_median(t_snap, rounds) / 1e3,
                               100 * bench_median(share, rounds),
                               bench_median(t_list, rounds) / 1e3, n_eng);
                fflush(stdout);
        }
}

/* One callgrind dump per (case, side), named "<id>:<at risk>:<side>"; the checks and resets
 * between SETs are not counted. */
static void callgrind(const Case *cases, size_t n_cases, unsigned n) {
        char name[96];

        for (size_t k = 0; k < n_cases; k++) {
                const Case *c = &cases[k];
                IngestRequest *v;

                seed_to(c->at_risk);
                (void) run_engine(2, c);
                (void) run_floor(2);

                v = build_sets(n, c->replay);
                CALLGRIND_ZERO_STATS;
                (void) apply_sets(v, n, c, true);
                (void) snprintf(name, sizeof(name), "%s:%u:engine", c->id, c->at_risk);
                CALLGRIND_DUMP_STATS_AT(name);
                free_sets(v, n);

                CALLGRIND_ZERO_STATS;
                (void) run_floor(n);
                (void) snprintf(name, sizeof(name), "%s:%u:floor", c->id, c->at_risk);
                CALLGRIND_DUMP_STATS_AT(name);

                if (!c->replay) {
                        CALLGRIND_ZERO_STATS;
                        (void) run_snapshot(n);
                        (void) snprintf(name, sizeof(name), "%s:%u:snapshot", c->id, c->at_risk);
                        CALLGRIND_DUMP_STATS_AT(name);
                        CALLGRIND_ZERO_STATS;
                        (void) run_list(n);
                        (void) snprintf(name, sizeof(name), "%s:%u:list", c->id, c->at_risk);
                        CALLGRIND_DUMP_STATS_AT(name);
                }
        }
}

/* "1000,10000" -> ascending, distinct, non-zero values. */
static size_t parse_at_risk(const char *s, unsigned *v, size_t max) {
        size_t n = 0;
        char *end;

        while (*s) {
                unsigned long x = strtoul(s, &end, 10);

                if (end == s || x == 0 || x > 1000000 || n == max || (n > 0 && x <= v[n - 1]))
                        die("bad --at-risk (ascending positive numbers, comma-separated)");
                v[n++] = (unsigned) x;
                s = *end == ',' ? end + 1 : end;
                if (*end && *end != ',')
                        die("bad --at-risk");
        }
        return n;
}

int main(int argc, char **argv) {
        const char *parent = getenv("TMPDIR");
        bool explicit_dir = false;
        int rounds = 9, opt;
        double round_ms = 150;
        unsigned cg = 0, at_risk[MAX_AT_RISK_CASES] = { 1000, 10000 };
        size_t n_at_risk = 2, n_cases = 0;
        Case cases[MAX_AT_RISK_CASES + 2];
        static const struct option longopts[] = {
                { "tmp", required_argument, NULL, 't' },
                { "at-risk", required_argument, NULL, 'n' },
                { "rounds", required_argument, NULL, 'r' },
                { "round-ms", required_argument, NULL, 'm' },
                { "callgrind", required_argument, NULL, 'c' },
                {}
        };

        while ((opt = getopt_long(argc, argv, "t:n:r:m:c:", longopts, NULL)) >= 0) {
                switch (opt) {
                case 't':
                        parent = optarg;
                        explicit_dir = true;
                        break;
                case 'n':
                        n_at_risk = parse_at_risk(optarg, at_risk, MAX_AT_RISK_CASES);
                        break;
                case 'r':
                        rounds = atoi(optarg);
                        break;
                case 'm':
                        round_ms = atof(optarg);
                        break;
                case 'c':
                        cg = (unsigned) atoi(optarg);
                        break;
                default:
                        return 2;
                }
        }
        if (rounds < 1 || rounds > BENCH_MAX_ROUNDS || round_ms <= 0)
                die("bad --rounds or --round-ms");
        if (isempty(parent))
                parent = "/tmp";

        log_set_max_level(LOG_WARNING);
        make_dir(parent, explicit_dir);
        setup_manager();
        setup_floor();

        cases[n_cases++] = (Case) { .id = "3a", .label = "user none -> high" };
        for (size_t i = 0; i < n_at_risk; i++) {
                cases[n_cases++] = (Case) { .id = "3b", .label = "user none -> high",
                                            .at_risk = at_risk[i] };
        }
        cases[n_cases++] = (Case) { .id = "3c", .label = "duplicate jti (replay)",
                                    .at_risk = n_at_risk ? at_risk[n_at_risk - 1] : 0,
                                    .replay = true };

        if (cg)
                callgrind(cases, n_cases, cg);
        else
                wallclock(cases, n_cases, rounds, round_ms);
        return 0;
}
