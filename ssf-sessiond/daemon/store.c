/* SPDX-License-Identifier: MIT */
/*
 * The durable state in SQLite. Every value is bound to a prepared statement; the only SQL
 * text built at run time comes from the allow-list of store_count(). The schema version is
 * PRAGMA user_version; migrate() brings an older database up to SCHEMA_VERSION. The WAL is
 * copied back into the database by a thread of its own (checkpoint_thread()), not by the commit
 * that fills it: a commit returns once its own frames are synced. Runs in the root daemon.
 */
#include <errno.h>
#include <pwd.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "macro.h"
#include "replay.h"
#include "store.h"

#define SCHEMA_VERSION 8
#define BUSY_TIMEOUT_MS 5000
#define STORE_LIST_MAX 100000U /* a bound on rows returned by one list call */
/* WAL frames after which the checkpoint thread copies them into the database: SQLite's own
 * auto-checkpoint threshold, which would otherwise run in the committing thread. */
#define CHECKPOINT_FRAMES 1000

enum {
        STMT_BEGIN,
        STMT_COMMIT,
        STMT_ROLLBACK,
        STMT_BEGIN_READ,
        STMT_SAVEPOINT,
        STMT_RELEASE,
        STMT_ROLLBACK_TO,
        STMT_JTI_INSERT,
        STMT_JTI_PRUNE,
        STMT_JTI_ROW,
        STMT_JTI_ALL,
        STMT_DET_GET,
        STMT_DET_PUT,
        STMT_DET_DELETE,
        STMT_USER_RESET,
        STMT_DET_LIST,
        STMT_USER_LEVEL,
        STMT_USERS_LIST,
        STMT_USER_GET,
        STMT_DET_EXPIRE,
        STMT_HIST_ADD,
        STMT_HIST_UPDATE,
        STMT_HIST_LIST_ALL,
        STMT_HIST_LIST_USER,
        STMT_HIST_PAGE_ALL,
        STMT_HIST_PAGE_USER,
        STMT_ACTION_ADD,
        STMT_ACTION_PENDING,
        STMT_ACTION_FINISH,
        STMT_ACTION_FIND_TXN,
        STMT_ACTION_SET_DUE,
        STMT_KV_GET,
        STMT_KV_SET,
        STMT_SET_FIND,
        STMT_SET_ADD,
        STMT_SET_CLAIMS,
        STMT_PRUNE_HIST_AGE,
        STMT_PRUNE_HIST_COUNT,
        STMT_PRUNE_ACTIONS_AGE,
        STMT_PRUNE_ACTIONS_COUNT,
        STMT_PRUNE_SETS,
        STMT_PRUNE_JTI,
        _STMT_MAX,
};

#define DET_COLUMNS "uid, detection, level, since, updated, expires, event_time, jti, reason, reason_user"
#define HIST_COLUMNS                                                                              \
        "id, time, user, jti, event, detection, level_before, level_after, rule, action, result, " \
        "duration_ms, txn, uid, transmitter"
#define ACTION_COLUMNS                                                                              \
        "id, created, user, rule, action, sessions, reset, workflow, jti, event_uri, detection, issuer, " \
        "reason, level_before, level_after, set_id, history_id, txn, uid, warn_usec, due_usec"

static const char *const stmt_sql[_STMT_MAX] = {
        [STMT_BEGIN] = "BEGIN IMMEDIATE",
        [STMT_COMMIT] = "COMMIT",
        [STMT_ROLLBACK] = "ROLLBACK",
        [STMT_BEGIN_READ] = "BEGIN DEFERRED",
        [STMT_SAVEPOINT] = "SAVEPOINT one_set",
        [STMT_RELEASE] = "RELEASE one_set",
        [STMT_ROLLBACK_TO] = "ROLLBACK TO one_set",
        /* Whether the (iss, jti) was seen is asked of the replay index (replay.h) first. */
        [STMT_JTI_INSERT] = "INSERT INTO jti (iss, jti, event_uri, iat, received) "
                            "VALUES (?1, ?2, ?3, ?4, ?5)",
        /* Deletes from jti return what the replay index needs to drop their entries. */
        [STMT_JTI_PRUNE] = "DELETE FROM jti WHERE received < ?1 AND iat < ?1 "
                           "RETURNING rowid, iss, jti",
        [STMT_JTI_ROW] = "SELECT iss, jti FROM jti WHERE rowid = ?1",
        [STMT_JTI_ALL] = "SELECT rowid, iss, jti FROM jti",
        [STMT_DET_GET] = "SELECT " DET_COLUMNS " FROM detections WHERE uid = ?1 AND detection = ?2",
        [STMT_DET_PUT] = "INSERT OR REPLACE INTO detections (" DET_COLUMNS ") "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        [STMT_DET_DELETE] = "DELETE FROM detections WHERE uid = ?1 AND detection = ?2",
        [STMT_USER_RESET] = "DELETE FROM detections WHERE uid = ?1",
        [STMT_DET_LIST] = "SELECT " DET_COLUMNS " FROM detections WHERE uid = ?1 "
                          "AND (expires = 0 OR expires > ?2) ORDER BY level DESC, updated DESC, detection",
        [STMT_USER_LEVEL] = "SELECT level, expires, updated FROM detections WHERE uid = ?1 "
                            "AND (expires = 0 OR expires > ?2)",
        /* One pass over the active detections, grouped by user in store_users_list(). */
        [STMT_USERS_LIST] = "SELECT uid, level, expires, updated, detection, reason_user FROM detections "
                            "WHERE expires = 0 OR expires > ?1 ORDER BY uid",
        /* The same for one user, after a commit that changed their level. */
        [STMT_USER_GET] = "SELECT uid, level, expires, updated, detection, reason_user FROM detections "
                          "WHERE uid = ?1 AND (expires = 0 OR expires > ?2)",
        [STMT_DET_EXPIRE] = "DELETE FROM detections WHERE expires != 0 AND expires <= ?1",
        [STMT_HIST_ADD] = "INSERT INTO history (time, user, jti, event, detection, level_before, "
                          "level_after, rule, action, result, duration_ms, txn, uid, transmitter) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        [STMT_HIST_UPDATE] = "UPDATE history SET result = ?2, duration_ms = ?3 WHERE id = ?1",
        [STMT_HIST_LIST_ALL] = "SELECT " HIST_COLUMNS " FROM history ORDER BY id DESC LIMIT ?1",
        [STMT_HIST_LIST_USER] = "SELECT " HIST_COLUMNS " FROM history WHERE uid = ?2 "
                                "ORDER BY id DESC LIMIT ?1",
        [STMT_HIST_PAGE_ALL] = "SELECT " HIST_COLUMNS " FROM history WHERE id < ?1 AND time >= ?2 "
                               "ORDER BY id DESC LIMIT ?3",
        [STMT_HIST_PAGE_USER] = "SELECT " HIST_COLUMNS " FROM history WHERE uid = ?4 AND id < ?1 "
                                "AND time >= ?2 ORDER BY id DESC LIMIT ?3",
        [STMT_ACTION_ADD] = "INSERT INTO actions (created, state, user, rule, action, sessions, reset, "
                            "workflow, jti, event_uri, detection, issuer, reason, level_before, "
                            "level_after, set_id, history_id, txn, uid, warn_usec) VALUES (?1, 0, ?2, "
                            "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        [STMT_ACTION_PENDING] = "SELECT " ACTION_COLUMNS " FROM actions WHERE state = 0 ORDER BY id",
        [STMT_ACTION_FINISH] = "UPDATE actions SET state = 1, result = ?2 WHERE id = ?1",
        /* Pending, or finished with "ok: …"; a failed action does not count as done. */
        [STMT_ACTION_FIND_TXN] = "SELECT jti FROM actions WHERE issuer = ?1 AND txn = ?2 AND uid = ?3 "
                                 "AND action = ?4 AND (?5 IS NULL OR sessions = ?5) "
                                 "AND (?6 IS NULL OR workflow = ?6) "
                                 "AND (state = 0 OR substr(result, 1, 2) = 'ok') ORDER BY id LIMIT 1",
        /* A warned logout's due time (schema 6), set once: a restart never moves it. */
        [STMT_ACTION_SET_DUE] = "UPDATE actions SET due_usec = ?2 WHERE id = ?1 AND state = 0 "
                                "AND due_usec IS NULL",
        [STMT_KV_GET] = "SELECT value FROM kv WHERE key = ?1",
        [STMT_KV_SET] = "INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)",
        /* The claims of a SET that caused actions, stored once (schema 4). */
        [STMT_SET_FIND] = "SELECT id FROM sets WHERE iss = ?1 AND jti = ?2",
        [STMT_SET_ADD] = "INSERT INTO sets (iss, jti, claims) VALUES (?1, ?2, ?3)",
        [STMT_SET_CLAIMS] = "SELECT claims FROM sets WHERE id = ?1",
        /* Pruning (store_prune), a bounded batch each. The history of a pending action stays:
         * its result is written there when it finishes. Age: among the oldest ?2 rows, those
         * older than ?1 (rows are added in time order, so the scan stops at once when there is
         * nothing to prune). Count: the rows below the newest ?1 ids. */
        [STMT_PRUNE_HIST_AGE] = "DELETE FROM history WHERE id IN (SELECT id FROM (SELECT id, time FROM "
                                "history WHERE id NOT IN (SELECT history_id FROM actions WHERE state = 0) "
                                "ORDER BY id LIMIT ?2) WHERE time < ?1)",
        [STMT_PRUNE_HIST_COUNT] = "DELETE FROM history WHERE id IN (SELECT id FROM history WHERE "
                                  "id <= (SELECT MAX(id) FROM history) - ?1 AND id NOT IN (SELECT "
                                  "history_id FROM actions WHERE state = 0) ORDER BY id LIMIT ?2)",
        [STMT_PRUNE_ACTIONS_AGE] = "DELETE FROM actions WHERE id IN (SELECT id FROM (SELECT id, created "
                                   "FROM actions WHERE state = 1 ORDER BY id LIMIT ?2) WHERE created < ?1)",
        [STMT_PRUNE_ACTIONS_COUNT] = "DELETE FROM actions WHERE id IN (SELECT id FROM actions WHERE "
                                     "state = 1 AND id <= (SELECT MAX(id) FROM actions) - ?1 "
                                     "ORDER BY id LIMIT ?2)",
        /* Claims are for hooks yet to run: kept while a pending action refers to them. */
        [STMT_PRUNE_SETS] = "DELETE FROM sets WHERE id IN (SELECT s.id FROM sets s WHERE NOT EXISTS "
                            "(SELECT 1 FROM actions a WHERE a.set_id = s.id AND a.state = 0) "
                            "ORDER BY s.id LIMIT ?1)",
        /* A jti whose SET was issued before now - max_event_age can go: the SET is refused
         * before the replay check. */
        [STMT_PRUNE_JTI] = "DELETE FROM jti WHERE rowid IN (SELECT rowid FROM jti WHERE received < ?1 "
                           "AND iat < ?1 ORDER BY received LIMIT ?2) RETURNING rowid, iss, jti",
};

/* Schema steps: schema[v] migrates version v to v + 1. Never edit a step once released: add
 * one. */
static const char *const schema[SCHEMA_VERSION] = {
        "CREATE TABLE jti ("
        "  iss TEXT NOT NULL,"
        "  jti TEXT NOT NULL,"
        "  event_uri TEXT,"
        "  iat INTEGER NOT NULL DEFAULT 0,"
        "  received INTEGER NOT NULL,"
        "  PRIMARY KEY (iss, jti));"
        "CREATE INDEX jti_received ON jti (received);"
        "CREATE TABLE detections ("
        "  user TEXT NOT NULL,"
        "  detection TEXT NOT NULL,"
        "  level INTEGER NOT NULL,"
        "  since INTEGER NOT NULL,"
        "  updated INTEGER NOT NULL,"
        "  expires INTEGER NOT NULL,"
        "  event_time INTEGER NOT NULL,"
        "  jti TEXT,"
        "  reason TEXT,"
        "  PRIMARY KEY (user, detection));"
        "CREATE TABLE history ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  time INTEGER NOT NULL,"
        "  user TEXT,"
        "  jti TEXT,"
        "  event TEXT,"
        "  detection TEXT,"
        "  level_before INTEGER NOT NULL,"
        "  level_after INTEGER NOT NULL,"
        "  rule TEXT,"
        "  action TEXT,"
        "  result TEXT,"
        "  duration_ms INTEGER NOT NULL DEFAULT -1);"
        "CREATE INDEX history_user ON history (user, id);"
        "CREATE TABLE actions ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  created INTEGER NOT NULL,"
        "  state INTEGER NOT NULL,"
        "  user TEXT NOT NULL,"
        "  rule TEXT,"
        "  action TEXT NOT NULL,"
        "  sessions TEXT,"
        "  reset INTEGER NOT NULL,"
        "  workflow TEXT,"
        "  jti TEXT,"
        "  event_uri TEXT,"
        "  detection TEXT,"
        "  issuer TEXT,"
        "  reason TEXT,"
        "  level_before INTEGER NOT NULL,"
        "  level_after INTEGER NOT NULL,"
        "  claims_json TEXT,"
        "  history_id INTEGER NOT NULL,"
        "  result TEXT);"
        "CREATE INDEX actions_state ON actions (state, id);"
        "CREATE TABLE kv ("
        "  key TEXT PRIMARY KEY,"
        "  value TEXT NOT NULL);",
        /* 1 -> 2: the SET's txn claim (SSF §4.1.9), so that the actions of one transaction at
         * the transmitter run once (store_action_find_txn). Only rows with a txn are indexed. */
        "ALTER TABLE history ADD COLUMN txn TEXT;"
        "ALTER TABLE actions ADD COLUMN txn TEXT;"
        "CREATE INDEX actions_txn ON actions (issuer, txn, user) WHERE txn IS NOT NULL;",
        /* 2 -> 3: users are identified by uid (PRODUCT.md "Subjects, users and who is never
         * acted upon"), so that the names NSS resolves to one account share one level. Names
         * recorded before are resolved once through NSS (ssf_uid(), registered by migrate());
         * detections of names that no longer resolve are dropped, their pending actions fail. */
        "CREATE TABLE detections3 ("
        "  uid INTEGER NOT NULL,"
        "  detection TEXT NOT NULL,"
        "  level INTEGER NOT NULL,"
        "  since INTEGER NOT NULL,"
        "  updated INTEGER NOT NULL,"
        "  expires INTEGER NOT NULL,"
        "  event_time INTEGER NOT NULL,"
        "  jti TEXT,"
        "  reason TEXT,"
        "  PRIMARY KEY (uid, detection));"
        "INSERT OR REPLACE INTO detections3 SELECT ssf_uid(user), detection, level, since, updated,"
        "  expires, event_time, jti, reason FROM detections WHERE ssf_uid(user) IS NOT NULL"
        "  ORDER BY level;"
        "DROP TABLE detections;"
        "ALTER TABLE detections3 RENAME TO detections;"
        "ALTER TABLE history ADD COLUMN uid INTEGER;"
        "UPDATE history SET uid = ssf_uid(user) WHERE user IS NOT NULL;"
        "DROP INDEX history_user;"
        "CREATE INDEX history_uid ON history (uid, id);"
        "ALTER TABLE actions ADD COLUMN uid INTEGER;"
        "UPDATE actions SET uid = ssf_uid(user);"
        "UPDATE actions SET state = 1, result = 'failed: no local user' WHERE state = 0 AND uid IS NULL;"
        "DROP INDEX actions_txn;"
        "CREATE INDEX actions_txn ON actions (issuer, txn, uid) WHERE txn IS NOT NULL;",
        /* 3 -> 4: a SET's claims (for hooks) are stored once in sets, not copied into each of
         * its actions (one SET may name many users); actions refer to them by set_id. */
        "CREATE TABLE sets ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  iss TEXT NOT NULL,"
        "  jti TEXT NOT NULL,"
        "  claims TEXT,"
        "  UNIQUE (iss, jti));"
        "INSERT OR IGNORE INTO sets (iss, jti, claims) SELECT IFNULL(issuer, ''), IFNULL(jti, ''),"
        "  claims_json FROM actions WHERE claims_json IS NOT NULL ORDER BY id;"
        "ALTER TABLE actions ADD COLUMN set_id INTEGER;"
        "UPDATE actions SET set_id = (SELECT s.id FROM sets s WHERE s.iss = IFNULL(actions.issuer, '')"
        "  AND s.jti = IFNULL(actions.jti, '')) WHERE claims_json IS NOT NULL;"
        "ALTER TABLE actions DROP COLUMN claims_json;"
        "CREATE INDEX actions_set ON actions (set_id) WHERE set_id IS NOT NULL;",
        /* 4 -> 5: the CAEP reason_user of the SET that set a detection, for the PAM denial
         * message (PRODUCT.md "Actions"). */
        "ALTER TABLE detections ADD COLUMN reason_user TEXT;",
        /* 5 -> 6: a logout with warn = DURATION (PRODUCT.md "Actions"): the warning time its
         * rule gave, and once the sessions' terminals were warned, the time (CLOCK_REALTIME,
         * microseconds) the logout is due; NULL until then. */
        "ALTER TABLE actions ADD COLUMN warn_usec INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE actions ADD COLUMN due_usec INTEGER;",
        /* 6 -> 7: several transmitters. History entries record the transmitter a SET came
         * from; those of an existing state directory came from its one transmitter, the one
         * now named "default" (its stream id and push secret keep their kv keys). */
        "ALTER TABLE history ADD COLUMN transmitter TEXT;"
        "UPDATE history SET transmitter = 'default' WHERE jti IS NOT NULL;",
        /* 7 -> 8: the replay check asks an index in memory (replay.h), loaded at open: the jti
         * table loses its (iss, jti) key, whose inserts at random places were most of what a
         * commit wrote, and is appended to in arrival order. */
        "CREATE TABLE jti8 ("
        "  iss TEXT NOT NULL,"
        "  jti TEXT NOT NULL,"
        "  event_uri TEXT,"
        "  iat INTEGER NOT NULL DEFAULT 0,"
        "  received INTEGER NOT NULL);"
        "INSERT INTO jti8 (iss, jti, event_uri, iat, received) SELECT iss, jti, event_uri, iat, received"
        "  FROM jti ORDER BY received;"
        "DROP TABLE jti;"
        "ALTER TABLE jti8 RENAME TO jti;"
        "CREATE INDEX jti_received ON jti (received);",
};

/* The checkpoints, off the commit path: the wal hook of the store's connection says when the
 * WAL holds CHECKPOINT_FRAMES frames; the thread runs a passive checkpoint (it never blocks a
 * writer, nor waits for one) on a connection of its own. */
typedef struct Checkpointer {
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool started;
        bool due;
        bool stopping;
        uint64_t done;      /* checkpoints that ran */
        char *path;
} Checkpointer;

struct Store {
        sqlite3 *db;
        sqlite3_stmt *stmt[_STMT_MAX];
        uint64_t n_jti;     /* replay-cache rows committed */
        int64_t n_jti_txn;  /* rows added (removed) by the open transaction */
        int64_t n_jti_sp;   /* n_jti_txn when the open savepoint was taken */
        ReplayIndex *replay; /* which rows hold an (iss, jti) */
        bool opened;        /* store_open() done: damage found from now on is logged by map_rc() */
        Checkpointer ckpt;
};

/* A SET's claims shared by the actions of one list (store_action_list_pending()). */
typedef struct SharedClaims {
        unsigned n_ref;
        char text[];
} SharedClaims;

static void shared_claims_unref(void *p) {
        SharedClaims *c = p;

        if (c && __atomic_sub_fetch(&c->n_ref, 1, __ATOMIC_ACQ_REL) == 0)
                free(c);
}

/* Counts a change of the replay cache, in the open transaction if there is one. */
static void jti_count_add(Store *s, int64_t n) {
        if (!sqlite3_get_autocommit(s->db))
                s->n_jti_txn += n;
        else if (n < 0 && (uint64_t) -n > s->n_jti)
                s->n_jti = 0;
        else
                s->n_jti = (uint64_t) ((int64_t) s->n_jti + n);
}

static int sql_error(Store *s, const char *what) {
        log_debug("SQLite: %s: %s", what, s->db ? sqlite3_errmsg(s->db) : "no database");
        return -EIO;
}

static const char *db_path(Store *s) {
        const char *p = s->db ? sqlite3_db_filename(s->db, "main") : NULL;

        return p && *p ? p : "state.db";
}

static int map_rc(Store *s, int rc, const char *what) {
        switch (rc) {
        case SQLITE_OK:
        case SQLITE_DONE:
        case SQLITE_ROW:
                return 0;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                (void) sql_error(s, what);
                return -EBUSY;
        case SQLITE_FULL:
                /* Nothing was committed, so nothing is acknowledged: say why at error level. */
                log_error("State database: %s: %s; the file system of the state directory is full, "
                          "SETs stay unacknowledged until space returns",
                          what, s->db ? sqlite3_errmsg(s->db) : "disk full");
                return -ENOSPC;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                if (!s->opened)
                        return sql_error(s, what); /* open_failed() says it */
                /* Found while running (a damaged page the start did not read): nothing of the
                 * transaction was committed, so nothing is acknowledged; the file is never reset
                 * (not -EBADMSG: that would refuse the SET as malformed). */
                log_error("State database '%s' is damaged (%s: %s); it was left as it is, SETs stay "
                          "unacknowledged. Stop ssf-sessiond, move it aside and start again (levels, "
                          "history and pending actions are lost); see ssf-sessiond(8), DIAGNOSTICS.",
                          db_path(s), what, s->db ? sqlite3_errmsg(s->db) : "corrupt");
                return -EUCLEAN;
        case SQLITE_READONLY:
                (void) sql_error(s, what);
                return -EROFS;
        case SQLITE_TOOBIG:
                (void) sql_error(s, what);
                return -E2BIG;
        default:
                return sql_error(s, what);
        }
}

/* Returns the statement, reset and with its bindings cleared. */
/* Makes room for element n of the array *list of *alloc elements of size elem, doubling it (first
 * elements at first). Returns 0, or -ENOMEM with the array as it was. */
static int list_grow(void **list, size_t *alloc, size_t n, size_t elem, size_t first) {
        size_t na;
        void *nl;

        if (n < *alloc)
                return 0;
        na = *alloc ? *alloc * 2 : first;
        nl = reallocarray(*list, na, elem);
        if (!nl)
                return -ENOMEM;
        *list = nl;
        *alloc = na;
        return 0;
}

/* How read_rows() reads one kind of row. */
typedef struct RowReader {
        size_t elem, first;      /* the size of an element; how many the array first holds */
        const char *what;        /* the statement, for the error */
        /* One row into elem. On failure elem holds nothing that needs freeing. */
        int (*read)(Store *s, sqlite3_stmt *st, void *elem, void *userdata);
        void (*free_list)(void *list, size_t n);
} RowReader;

/* The rows st returns, at most STORE_LIST_MAX of them, read by rr into a new array. Resets st.
 * Returns 0 with *ret (NULL when there are none) and *ret_n, or -errno. */
static int read_rows(Store *s, sqlite3_stmt *st, const RowReader *rr, void *userdata, void **ret,
                     size_t *ret_n) {
        void *list = NULL;
        size_t n = 0, alloc = 0;
        int rc, r = 0;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (n >= STORE_LIST_MAX)
                        break;
                r = list_grow(&list, &alloc, n, rr->elem, rr->first);
                if (r < 0)
                        break;
                r = rr->read(s, st, (char *) list + n * rr->elem, userdata);
                if (r < 0)
                        break;
                n++;
        }
        if (r >= 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
                r = map_rc(s, rc, rr->what);
        (void) sqlite3_reset(st);
        if (r < 0) {
                rr->free_list(list, n);
                return r;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

static sqlite3_stmt *stmt_get(Store *s, int id) {
        sqlite3_stmt *st = s->stmt[id];

        (void) sqlite3_reset(st);
        (void) sqlite3_clear_bindings(st);
        return st;
}

static int64_t u64_to_sql(uint64_t v) {
        return v > (uint64_t) INT64_MAX ? INT64_MAX : (int64_t) v;
}

static uint64_t col_u64(sqlite3_stmt *st, int col) {
        sqlite3_int64 v = sqlite3_column_int64(st, col);
        return v < 0 ? 0 : (uint64_t) v;
}

static RiskLevel col_level(sqlite3_stmt *st, int col) {
        sqlite3_int64 v = sqlite3_column_int64(st, col);
        return v < 0 || v >= _RISK_MAX ? RISK_NONE : (RiskLevel) v;
}

/* A copy of a text column, NULL for SQL NULL. Returns 0 or -ENOMEM. */
static int col_str(sqlite3_stmt *st, int col, char **ret) {
        const unsigned char *t;

        if (sqlite3_column_type(st, col) == SQLITE_NULL) {
                *ret = NULL;
                return 0;
        }
        t = sqlite3_column_text(st, col);
        if (!t)
                return -ENOMEM;
        *ret = strdup((const char *) t);
        return *ret ? 0 : -ENOMEM;
}

static int bind_text(sqlite3_stmt *st, int i, const char *v) {
        return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

static int bind_u64(sqlite3_stmt *st, int i, uint64_t v) {
        return sqlite3_bind_int64(st, i, u64_to_sql(v));
}

static int bind_i64(sqlite3_stmt *st, int i, int64_t v) {
        return sqlite3_bind_int64(st, i, v);
}

/* Runs a statement that returns no rows. */
static int step_done(Store *s, sqlite3_stmt *st, const char *what) {
        int rc = sqlite3_step(st);
        int r = rc == SQLITE_DONE ? 0 : map_rc(s, rc == SQLITE_ROW ? SQLITE_ERROR : rc, what);

        (void) sqlite3_reset(st);
        return r;
}

static bool level_valid(RiskLevel l) {
        return l >= 0 && l < _RISK_MAX;
}

/* ---- open / close ------------------------------------------------------------------------- */

static int exec(Store *s, const char *sql, const char *what) {
        return map_rc(s, sqlite3_exec(s->db, sql, NULL, NULL, NULL), what);
}

static int pragma_int(Store *s, const char *sql, int *ret) {
        sqlite3_stmt *st = NULL;
        int rc, r;

        rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return map_rc(s, rc, sql);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret = sqlite3_column_int(st, 0);
                r = 0;
        } else
                r = map_rc(s, rc == SQLITE_DONE ? SQLITE_ERROR : rc, sql);
        (void) sqlite3_finalize(st);
        return r;
}

/* ssf_uid(name): the uid NSS resolves name to, or NULL. For the 2 -> 3 migration only. */
static void sql_ssf_uid(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
        const char *name = (const char *) sqlite3_value_text(argv[0]);
        struct passwd pw, *res = NULL;
        char buf[4096];

        if (name && getpwnam_r(name, &pw, buf, sizeof(buf), &res) == 0 && res)
                sqlite3_result_int64(ctx, (sqlite3_int64) res->pw_uid);
        else
                sqlite3_result_null(ctx);
}

static int migrate(Store *s) {
        int version = 0, r;

        r = pragma_int(s, "PRAGMA user_version", &version);
        if (r < 0)
                return r;
        if (version > SCHEMA_VERSION) {
                log_error("State database has schema version %d, newer than this version supports (%d)",
                          version, SCHEMA_VERSION);
                return -EPROTONOSUPPORT;
        }
        if (version == SCHEMA_VERSION)
                return 0;

        if (version < 3 && sqlite3_create_function(s->db, "ssf_uid", 1, SQLITE_UTF8, NULL,
                                                   sql_ssf_uid, NULL, NULL) != SQLITE_OK)
                return map_rc(s, SQLITE_ERROR, "register ssf_uid");
        r = exec(s, "BEGIN IMMEDIATE", "begin migration");
        if (r < 0)
                return r;
        for (int v = version; v < SCHEMA_VERSION; v++) {
                r = exec(s, schema[v], "migrate schema");
                if (r < 0)
                        goto fail;
        }
        {
                char sql[64];
                (void) snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
                r = exec(s, sql, "set user_version");
                if (r < 0)
                        goto fail;
        }
        r = exec(s, "COMMIT", "commit migration");
        if (r < 0)
                goto fail;
        return 0;
fail:
        (void) exec(s, "ROLLBACK", "rollback migration");
        return r;
}

/* Logs why the database at path cannot be used. A damaged file is never reset or recreated (its
 * levels are what refuses risky users): the admin moves it aside, as ssf-sessiond(8) says. */
static int open_failed(Store *s, const char *path, const char *what, int r) {
        int code = sqlite3_errcode(s->db);

        if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) {
                log_error("State database '%s' is damaged (%s); it was left as it is. Stop ssf-sessiond, "
                          "move it aside and start again (levels, history and pending actions are lost); "
                          "see ssf-sessiond(8), DIAGNOSTICS.", path, sqlite3_errmsg(s->db));
                return -EBADMSG;
        }
        log_error("%s '%s': %s", what, path, sqlite3_errmsg(s->db));
        return r;
}

/* Called by SQLite in the committing thread after each commit, with the frames in the WAL;
 * replaces SQLite's auto-checkpoint, which would checkpoint (two more fsyncs) right there. */
static int wal_committed(void *userdata, sqlite3 *db, const char *name, int frames) {
        Checkpointer *c = userdata;

        if (frames >= CHECKPOINT_FRAMES) {
                pthread_mutex_lock(&c->lock);
                c->due = true;
                pthread_cond_signal(&c->cond);
                pthread_mutex_unlock(&c->lock);
        }
        return SQLITE_OK;
}

static void *checkpoint_thread(void *userdata) {
        Checkpointer *c = userdata;
        sqlite3 *db = NULL;
        bool warned = false;

        pthread_mutex_lock(&c->lock);
        for (;;) {
                int rc;

                while (!c->due && !c->stopping)
                        pthread_cond_wait(&c->cond, &c->lock);
                if (c->stopping)
                        break;
                c->due = false;
                pthread_mutex_unlock(&c->lock);

                rc = SQLITE_OK;
                if (!db) {
                        rc = sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READWRITE |
                                             SQLITE_OPEN_FULLMUTEX, NULL);
                        /* A first read opens the WAL (a new connection has not looked yet,
                         * and checkpoints nothing until it has); WAL mode is persistent. */
                        if (rc == SQLITE_OK)
                                rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
                        if (rc != SQLITE_OK && !warned) {
                                log_debug("Cannot open the state database '%s' to checkpoint it: %s",
                                            c->path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
                                warned = true;
                        }
                        if (rc != SQLITE_OK)
                                db = (sqlite3_close_v2(db), NULL);
                }
                if (db) {
                        rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
                        /* Busy: another checkpoint runs. Anything else (a full disk) is tried
                         * again after a later commit: the WAL keeps every frame meanwhile. */
                        if (rc != SQLITE_OK && rc != SQLITE_BUSY && !warned) {
                                log_debug("Cannot checkpoint the state database's WAL: %s",
                                            sqlite3_errmsg(db));
                                warned = true;
                        }
                }

                pthread_mutex_lock(&c->lock);
                if (rc == SQLITE_OK) {
                        c->done++;
                        warned = false;
                }
                pthread_cond_broadcast(&c->cond);
        }
        pthread_mutex_unlock(&c->lock);
        if (db)
                (void) sqlite3_close_v2(db);
        return NULL;
}

static int checkpointer_start(Store *s, const char *path) {
        Checkpointer *c = &s->ckpt;
        int r;

        sigset_t all, old;

        c->path = strdup(path);
        if (!c->path)
                return -ENOMEM;
        /* The store is opened before the daemon blocks the signals its event loop reads: the
         * thread must never be the one a SIGHUP or SIGTERM is delivered to. */
        sigfillset(&all);
        (void) pthread_sigmask(SIG_BLOCK, &all, &old);
        r = -pthread_create(&c->thread, NULL, checkpoint_thread, c);
        (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                return log_error_errno(r, "Cannot start the state database's checkpoint thread: %m");
        c->started = true;
        sqlite3_wal_hook(s->db, wal_committed, c);
        return 0;
}

uint64_t store_checkpoints(Store *s) {
        uint64_t n;

        pthread_mutex_lock(&s->ckpt.lock);
        n = s->ckpt.done;
        pthread_mutex_unlock(&s->ckpt.lock);
        return n;
}

/* Process-wide settings, which SQLite takes only before its first use: the first store_open()
 * sets them.
 *
 * Each SET of a batch is applied in a savepoint of its own (engine.c), so every page it changes
 * is first copied into the transaction's statement journal. SQLite keeps that journal in memory
 * only up to 64 KiB by default, then writes it to a temporary file for the rest of the
 * transaction: two pwrite()s per page and SET. A SET changes a dozen pages or so; the journal of
 * a released savepoint is emptied when it is in memory, so a bound of a few hundred pages keeps
 * it there, and a SET that changes more (a host-wide event) still goes to a file.
 *
 * SQLite's memory statistics (nothing here reads them) take a global mutex around every
 * allocation: off. */
#define STMT_JOURNAL_SPILL (1024 * 1024)

static void sqlite_setup(void) {
        int rc = sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, STMT_JOURNAL_SPILL);

        if (rc == SQLITE_OK)
                rc = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        if (rc != SQLITE_OK)
                log_debug("SQLite is in use already, it keeps its default settings: %s",
                          sqlite3_errstr(rc));
}

/* The replay index of the rows the jti table holds. */
static int replay_load(Store *s) {
        sqlite3_stmt *st = stmt_get(s, STMT_JTI_ALL);
        int rc = SQLITE_DONE, r;

        r = replay_index_new(&s->replay);
        if (r < 0)
                return r;
        while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *iss = (const char *) sqlite3_column_text(st, 1);
                const char *jti = (const char *) sqlite3_column_text(st, 2);
                r = !iss || !jti ? -ENOMEM
                                 : replay_index_add(s->replay, replay_hash(s->replay, iss, jti),
                                                    sqlite3_column_int64(st, 0));
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = map_rc(s, rc, "jti load");
        (void) sqlite3_reset(st);
        replay_index_commit(s->replay);
        return r;
}

int store_open(const char *path, Store **ret) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        _cleanup_close_ int fd = -EBADF;
        Store *s;
        struct stat st;
        int rc, r;

        if (!path || !ret)
                return -EINVAL;
        (void) pthread_once(&once, sqlite_setup);

        /* Create the file with mode 0600 ourselves, so SQLite never creates it with the umask. */
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open state database '%s': %m", path);
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode)) {
                log_error("State database '%s' is not a regular file", path);
                return -EINVAL;
        }
        if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0)
                return log_error_errno(errno, "Cannot set the mode of '%s': %m", path);

        s = calloc(1, sizeof(Store));
        if (!s)
                return -ENOMEM;
        (void) pthread_mutex_init(&s->ckpt.lock, NULL);
        (void) pthread_cond_init(&s->ckpt.cond, NULL);

        rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
        if (rc != SQLITE_OK) {
                log_error("Cannot open state database '%s': %s", path,
                          s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
                store_free(s);
                return -EIO;
        }
        (void) sqlite3_extended_result_codes(s->db, 0);
        (void) sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
        (void) sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        (void) sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);

        r = exec(s, "PRAGMA journal_mode = WAL", "journal_mode");
        if (r >= 0)
                r = exec(s, "PRAGMA synchronous = FULL", "synchronous");
        if (r >= 0)
                r = exec(s, "PRAGMA foreign_keys = ON", "foreign_keys");
        if (r >= 0)
                r = migrate(s);
        if (r < 0) {
                if (r != -EPROTONOSUPPORT)
                        r = open_failed(s, path, "Cannot initialise state database", r);
                store_free(s);
                return r;
        }

        for (int i = 0; i < _STMT_MAX; i++) {
                rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                        &s->stmt[i], NULL);
                if (rc != SQLITE_OK) {
                        r = open_failed(s, path, "Cannot prepare a statement on state database", -EIO);
                        store_free(s);
                        return r;
                }
        }

        r = store_count(s, "jti", &s->n_jti);
        if (r >= 0)
                r = replay_load(s);
        if (r < 0) {
                r = open_failed(s, path, "Cannot read state database", r);
                store_free(s);
                return r;
        }

        /* The WAL and shared-memory files inherit the database's mode; keep them private too. */
        for (size_t i = 0; i < 2; i++) {
                char p[PATH_MAX];
                if ((size_t) snprintf(p, sizeof(p), "%s%s", path, i == 0 ? "-wal" : "-shm") < sizeof(p))
                        (void) chmod(p, 0600);
        }

        r = checkpointer_start(s, path);
        if (r < 0) {
                store_free(s);
                return r;
        }

        s->opened = true;
        *ret = s;
        return 0;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        if (s->ckpt.started) {
                pthread_mutex_lock(&s->ckpt.lock);
                s->ckpt.stopping = true;
                pthread_cond_broadcast(&s->ckpt.cond);
                pthread_mutex_unlock(&s->ckpt.lock);
                (void) pthread_join(s->ckpt.thread, NULL);
        }
        if (s->db)
                sqlite3_wal_hook(s->db, NULL, NULL);
        for (int i = 0; i < _STMT_MAX; i++)
                (void) sqlite3_finalize(s->stmt[i]);
        /* The last connection: SQLite checkpoints what is left and removes the WAL. */
        if (s->db)
                (void) sqlite3_close_v2(s->db);
        pthread_cond_destroy(&s->ckpt.cond);
        pthread_mutex_destroy(&s->ckpt.lock);
        free(s->ckpt.path);
        replay_index_free(s->replay);
        free(s);
        return NULL;
}

int store_begin(Store *s) {
        s->n_jti_txn = 0;
        if (sqlite3_get_autocommit(s->db))
                replay_index_rollback(s->replay); /* a journal left by an end not seen here */
        return step_done(s, stmt_get(s, STMT_BEGIN), "begin");
}

int store_commit(Store *s) {
        int64_t delta = s->n_jti_txn;
        int r = step_done(s, stmt_get(s, STMT_COMMIT), "commit");

        if (r >= 0 || sqlite3_get_autocommit(s->db)) {
                s->n_jti_txn = 0;
                if (r >= 0) {
                        jti_count_add(s, delta);
                        replay_index_commit(s->replay);
                } else
                        replay_index_rollback(s->replay); /* SQLite rolled it back */
        }
        return r;
}

int store_savepoint(Store *s) {
        s->n_jti_sp = s->n_jti_txn;
        replay_index_savepoint(s->replay);
        return step_done(s, stmt_get(s, STMT_SAVEPOINT), "savepoint");
}

int store_savepoint_release(Store *s) {
        return step_done(s, stmt_get(s, STMT_RELEASE), "release savepoint");
}

int store_savepoint_rollback(Store *s) {
        int r;

        if (sqlite3_get_autocommit(s->db))
                return -EIO; /* SQLite rolled the whole transaction back */
        r = step_done(s, stmt_get(s, STMT_ROLLBACK_TO), "rollback to savepoint");
        if (r >= 0) {
                s->n_jti_txn = s->n_jti_sp;
                replay_index_rollback_savepoint(s->replay);
                r = step_done(s, stmt_get(s, STMT_RELEASE), "release savepoint");
        }
        return r;
}

int store_rollback(Store *s) {
        s->n_jti_txn = 0;
        replay_index_rollback(s->replay);
        if (sqlite3_get_autocommit(s->db))
                return 0; /* nothing open (SQLite may have rolled back already) */
        return step_done(s, stmt_get(s, STMT_ROLLBACK), "rollback");
}

int store_read_begin(Store *s) {
        int r;

        if (!sqlite3_get_autocommit(s->db))
                return 0; /* in a transaction already: its reads are consistent */
        r = step_done(s, stmt_get(s, STMT_BEGIN_READ), "begin read");
        return r < 0 ? r : 1;
}

void store_read_end(Store *s, int began) {
        if (began <= 0 || sqlite3_get_autocommit(s->db))
                return;
        /* Nothing was written: the end of a read transaction cannot lose anything. */
        if (step_done(s, stmt_get(s, STMT_COMMIT), "end read") < 0)
                (void) step_done(s, stmt_get(s, STMT_ROLLBACK), "rollback read");
}

/* ---- replay cache ------------------------------------------------------------------------- */

/* 1 when row rowid of jti holds (iss, jti), 0 when not (a collision of the hash, or an entry left
 * behind: see jti_delete()), or -errno. */
static int jti_row_is(Store *s, int64_t rowid, const char *iss, const char *jti) {
        sqlite3_stmt *st = stmt_get(s, STMT_JTI_ROW);
        int rc, r;

        (void) bind_i64(st, 1, rowid);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const char *i = (const char *) sqlite3_column_text(st, 0);
                const char *j = (const char *) sqlite3_column_text(st, 1);

                r = !i || !j ? -ENOMEM : strcmp(i, iss) == 0 && strcmp(j, jti) == 0;
        } else if (rc == SQLITE_DONE)
                r = 0;
        else
                r = map_rc(s, rc, "jti get");
        (void) sqlite3_reset(st);
        return r;
}

/* Steps a DELETE FROM jti ... RETURNING rowid, iss, jti to its end, handing the rows to the
 * replay index, which drops their entries when the transaction commits. An entry that cannot be
 * handed over (no memory) stays behind: it names a row that is gone, or that a later insert
 * reused, and jti_row_is() skips it, so it costs memory until the next start, never a SET.
 * Returns the rows deleted or -errno. */
static int jti_delete(Store *s, sqlite3_stmt *st, const char *what) {
        int rc, n = 0;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *iss = (const char *) sqlite3_column_text(st, 1);
                const char *jti = (const char *) sqlite3_column_text(st, 2);
                n++;
                if (iss && jti)
                        (void) replay_index_remove_at_commit(s->replay,
                                                             replay_hash(s->replay, iss, jti),
                                                             sqlite3_column_int64(st, 0));
        }
        (void) sqlite3_reset(st);
        if (rc != SQLITE_DONE)
                return map_rc(s, rc, what);
        jti_count_add(s, -(int64_t) n);
        return n;
}

/* The replay index follows transactions only: a call outside one runs in one of its own, which
 * own_transaction_end() commits, or rolls back when r < 0. */
static int own_transaction_end(Store *s, int r) {
        int k = r < 0 ? r : store_commit(s);

        if (k < 0) {
                (void) store_rollback(s);
                return k;
        }
        return r;
}

static int jti_insert(Store *s, const char *jti, const char *iss, const char *event_uri,
                      uint64_t iat, uint64_t now) {
        uint64_t h = replay_hash(s->replay, iss, jti);
        sqlite3_stmt *st;
        size_t cursor = 0;
        int64_t rowid;
        int r;

        while (replay_index_next(s->replay, h, &cursor, &rowid)) {
                r = jti_row_is(s, rowid, iss, jti);
                if (r != 0)
                        return r < 0 ? r : -EALREADY;
        }
        st = stmt_get(s, STMT_JTI_INSERT);
        (void) bind_text(st, 1, iss);
        (void) bind_text(st, 2, jti);
        (void) bind_text(st, 3, event_uri);
        (void) bind_u64(st, 4, iat);
        (void) bind_u64(st, 5, now);
        r = step_done(s, st, "jti insert");
        if (r < 0)
                return r;
        /* On failure the caller rolls back, and the row goes with the transaction. */
        r = replay_index_add(s->replay, h, sqlite3_last_insert_rowid(s->db));
        if (r < 0)
                return r;
        jti_count_add(s, 1);
        return 0;
}

int store_jti_insert(Store *s, const char *jti, const char *iss, const char *event_uri,
                     uint64_t iat, uint64_t now) {
        bool own;
        int r;

        if (!s || isempty(jti))
                return -EINVAL;
        own = sqlite3_get_autocommit(s->db);
        if (own && (r = store_begin(s)) < 0)
                return r;
        r = jti_insert(s, jti, strempty(iss), event_uri, iat, now);
        return own ? own_transaction_end(s, r) : r;
}

static int jti_prune(Store *s, uint64_t cutoff) {
        sqlite3_stmt *st = stmt_get(s, STMT_JTI_PRUNE);

        (void) bind_u64(st, 1, cutoff);
        return jti_delete(s, st, "jti prune");
}

int store_jti_prune(Store *s, uint64_t cutoff) {
        bool own;
        int r;

        if (!s)
                return -EINVAL;
        own = sqlite3_get_autocommit(s->db);
        if (own && (r = store_begin(s)) < 0)
                return r;
        r = jti_prune(s, cutoff);
        return own ? own_transaction_end(s, r) : r;
}

uint64_t store_jti_count(Store *s) {
        int64_t n = (int64_t) s->n_jti + s->n_jti_txn;
        return n < 0 ? 0 : (uint64_t) n;
}

/* ---- detections --------------------------------------------------------------------------- */

void store_detection_done(StoreDetection *d) {
        if (!d)
                return;
        free(d->detection);
        free(d->jti);
        free(d->reason);
        free(d->reason_user);
        *d = (StoreDetection){};
}

void store_detections_free(StoreDetection *d, size_t n) {
        if (!d)
                return;
        for (size_t i = 0; i < n; i++)
                store_detection_done(&d[i]);
        free(d);
}

static int read_detection(sqlite3_stmt *st, StoreDetection *ret) {
        StoreDetection d = {
                .uid = (uid_t) sqlite3_column_int64(st, 0),
                .level = col_level(st, 2),
                .since = col_u64(st, 3),
                .updated = col_u64(st, 4),
                .expires = col_u64(st, 5),
                .event_time = col_u64(st, 6),
        };

        if (col_str(st, 1, &d.detection) < 0 ||
            col_str(st, 7, &d.jti) < 0 || col_str(st, 8, &d.reason) < 0 ||
            col_str(st, 9, &d.reason_user) < 0) {
                store_detection_done(&d);
                return -ENOMEM;
        }
        *ret = d;
        return 0;
}

int store_detection_get(Store *s, uid_t uid, const char *detection, StoreDetection *ret) {
        sqlite3_stmt *st;
        int rc, r;

        if (!s || !detection || !ret)
                return -EINVAL;
        st = stmt_get(s, STMT_DET_GET);
        (void) bind_i64(st, 1, uid);
        (void) bind_text(st, 2, detection);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                r = read_detection(st, ret);
        else if (rc == SQLITE_DONE)
                r = -ENOENT;
        else
                r = map_rc(s, rc, "detection get");
        (void) sqlite3_reset(st);
        return r;
}

int store_detection_put(Store *s, const StoreDetection *d) {
        sqlite3_stmt *st;

        if (!s || !d || isempty(d->detection) || !level_valid(d->level))
                return -EINVAL;
        st = stmt_get(s, STMT_DET_PUT);
        (void) bind_i64(st, 1, d->uid);
        (void) bind_text(st, 2, d->detection);
        (void) bind_i64(st, 3, d->level);
        (void) bind_u64(st, 4, d->since);
        (void) bind_u64(st, 5, d->updated);
        (void) bind_u64(st, 6, d->expires);
        (void) bind_u64(st, 7, d->event_time);
        (void) bind_text(st, 8, d->jti);
        (void) bind_text(st, 9, d->reason);
        (void) bind_text(st, 10, isempty(d->reason_user) ? NULL : d->reason_user);
        return step_done(s, st, "detection put");
}

int store_detection_delete(Store *s, uid_t uid, const char *detection) {
        sqlite3_stmt *st;
        int r;

        if (!s || !detection)
                return -EINVAL;
        st = stmt_get(s, STMT_DET_DELETE);
        (void) bind_i64(st, 1, uid);
        (void) bind_text(st, 2, detection);
        r = step_done(s, st, "detection delete");
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) == 0 ? -ENOENT : 0;
}

int store_user_reset(Store *s, uid_t uid) {
        sqlite3_stmt *st;

        if (!s)
                return -EINVAL;
        st = stmt_get(s, STMT_USER_RESET);
        (void) bind_i64(st, 1, uid);
        return step_done(s, st, "user reset");
}

static int read_detection_row(Store *s, sqlite3_stmt *st, void *elem, void *userdata) {
        return read_detection(st, elem);
}

static void detections_free_list(void *list, size_t n) {
        store_detections_free(list, n);
}

int store_detections_list(Store *s, uid_t uid, uint64_t now, StoreDetection **ret,
                          size_t *ret_n) {
        static const RowReader rr = {
                .elem = sizeof(StoreDetection), .first = 8, .what = "detections list",
                .read = read_detection_row, .free_list = detections_free_list,
        };
        sqlite3_stmt *st;

        if (!s || !ret || !ret_n)
                return -EINVAL;
        st = stmt_get(s, STMT_DET_LIST);
        (void) bind_i64(st, 1, uid);
        (void) bind_u64(st, 2, now);
        return read_rows(s, st, &rr, NULL, (void **) ret, ret_n);
}

int store_user_level(Store *s, uid_t uid, uint64_t now, RiskLevel *ret_level,
                     uint64_t *ret_until) {
        RiskLevel top = RISK_NONE;
        uint64_t until = 0;
        bool forever = false, any = false;
        sqlite3_stmt *st;
        int rc, r;

        if (!s)
                return -EINVAL;
        st = stmt_get(s, STMT_USER_LEVEL);
        (void) bind_i64(st, 1, uid);
        (void) bind_u64(st, 2, now);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                RiskLevel l = col_level(st, 0);
                uint64_t e = col_u64(st, 1);

                if (!any || l > top) {
                        top = l;
                        until = 0;
                        forever = false;
                        any = true;
                }
                if (l == top) {
                        if (e == 0)
                                forever = true;
                        else if (e > until)
                                until = e;
                }
        }
        r = rc == SQLITE_DONE ? 0 : map_rc(s, rc, "user level");
        (void) sqlite3_reset(st);
        if (r < 0)
                return r;

        if (ret_level)
                *ret_level = top;
        if (ret_until)
                *ret_until = forever ? 0 : until;
        return 0;
}

void store_users_free(StoreUser *u, size_t n) {
        for (size_t i = 0; u && i < n; i++)
                free(u[i].reason_user);
        free(u);
}

/* Folds one active detection into u, the user's entry: the highest level; among its
 * detections, the latest update and when the level lapses (0: one of them never does).
 * Returns 0 or -ENOMEM. */
static int user_fold(StoreUser *u, bool *forever, RiskLevel l, uint64_t expires,
                     uint64_t updated, const char *detection, const char *reason_user) {
        if (l > u->level) {
                u->level = l;
                u->until = 0;
                u->updated = 0;
                u->detection[0] = 0;
                u->reason_user = mfree(u->reason_user);
                *forever = false;
        }
        if (l != u->level)
                return 0;
        /* The detection PAM names: the latest updated at the top level (then by name), as
         * store_detections_list() orders them; its reason_user goes with it. */
        if (detection && (u->detection[0] == 0 || updated > u->updated ||
                          (updated == u->updated && strcmp(detection, u->detection) < 0))) {
                (void) snprintf(u->detection, sizeof(u->detection), "%s", detection);
                u->reason_user = mfree(u->reason_user);
                if (!isempty(reason_user)) {
                        u->reason_user = strdup(reason_user);
                        if (!u->reason_user)
                                return -ENOMEM;
                }
        }
        if (expires == 0)
                *forever = true;
        else if (expires > u->until)
                u->until = expires;
        if (updated > u->updated)
                u->updated = updated;
        return 0;
}

int store_users_list(Store *s, uint64_t now, StoreUser **ret, size_t *ret_n) {
        StoreUser *list = NULL, cur = { .level = _RISK_INVALID };
        size_t n = 0, alloc = 0;
        bool forever = false, have = false;
        sqlite3_stmt *st;
        int rc, r = 0;

        if (!s || !ret || !ret_n)
                return -EINVAL;

        /* Rows come ordered by uid: each user's detections are folded into cur, which is
         * kept when the user's level is above none. */
        st = stmt_get(s, STMT_USERS_LIST);
        (void) bind_u64(st, 1, now);
        for (;;) {
                uid_t uid = 0;

                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW)
                        uid = (uid_t) sqlite3_column_int64(st, 0);
                if (have && (rc != SQLITE_ROW || uid != cur.uid)) {
                        if (forever)
                                cur.until = 0;
                        /* Every user at risk, whatever their number: PAM is answered from
                         * this list, and one left out would be let in. */
                        if (cur.level > RISK_NONE) {
                                r = list_grow((void **) &list, &alloc, n, sizeof(StoreUser), 8);
                                if (r < 0) {
                                        free(cur.reason_user);
                                        break;
                                }
                                list[n++] = cur;
                        } else
                                free(cur.reason_user);
                        cur = (StoreUser) { .level = _RISK_INVALID };
                        have = false;
                }
                if (rc != SQLITE_ROW)
                        break;
                if (!have) {
                        cur.uid = uid;
                        have = true;
                        forever = false;
                }
                r = user_fold(&cur, &forever, col_level(st, 1), col_u64(st, 2), col_u64(st, 3),
                              (const char *) sqlite3_column_text(st, 4),
                              (const char *) sqlite3_column_text(st, 5));
                if (r < 0) {
                        free(cur.reason_user);
                        break;
                }
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = map_rc(s, rc, "users list");
        (void) sqlite3_reset(st);
        if (r < 0) {
                store_users_free(list, n);
                return r;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

int store_user_get(Store *s, uid_t uid, uint64_t now, StoreUser *ret) {
        StoreUser cur = { .uid = uid, .level = RISK_NONE };
        bool forever = false, any = false;
        sqlite3_stmt *st;
        int rc, r;

        if (!s || !ret)
                return -EINVAL;
        st = stmt_get(s, STMT_USER_GET);
        (void) bind_i64(st, 1, uid);
        (void) bind_u64(st, 2, now);
        r = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (!any)
                        cur.level = _RISK_INVALID; /* the first row sets it, as in the list */
                any = true;
                r = user_fold(&cur, &forever, col_level(st, 1), col_u64(st, 2), col_u64(st, 3),
                              (const char *) sqlite3_column_text(st, 4),
                              (const char *) sqlite3_column_text(st, 5));
                if (r < 0)
                        break;
        }
        if (r >= 0)
                r = rc == SQLITE_DONE ? 0 : map_rc(s, rc, "user get");
        (void) sqlite3_reset(st);
        if (r < 0) {
                free(cur.reason_user);
                return r;
        }
        if (!any || cur.level <= RISK_NONE) {
                free(cur.reason_user);
                cur = (StoreUser) { .uid = uid, .level = RISK_NONE };
        }
        else if (forever)
                cur.until = 0;
        *ret = cur;
        return 0;
}

int store_detections_expire(Store *s, uint64_t now) {
        sqlite3_stmt *st;
        int r;

        if (!s)
                return -EINVAL;
        st = stmt_get(s, STMT_DET_EXPIRE);
        (void) bind_u64(st, 1, now);
        r = step_done(s, st, "detections expire");
        return r < 0 ? r : sqlite3_changes(s->db);
}

/* ---- history ------------------------------------------------------------------------------ */

void history_entry_done(HistoryEntry *h) {
        if (!h)
                return;
        free(h->user);
        free(h->jti);
        free(h->txn);
        free(h->transmitter);
        free(h->event);
        free(h->detection);
        free(h->rule);
        free(h->action);
        free(h->result);
        *h = (HistoryEntry){};
}

void history_entries_free(HistoryEntry *h, size_t n) {
        if (!h)
                return;
        for (size_t i = 0; i < n; i++)
                history_entry_done(&h[i]);
        free(h);
}

int store_history_add(Store *s, const HistoryEntry *h, int64_t *ret_id) {
        sqlite3_stmt *st;
        int r;

        if (!s || !h)
                return -EINVAL;
        st = stmt_get(s, STMT_HIST_ADD);
        (void) bind_u64(st, 1, h->time);
        (void) bind_text(st, 2, h->user);
        (void) bind_text(st, 3, h->jti);
        (void) bind_text(st, 4, h->event);
        (void) bind_text(st, 5, h->detection);
        (void) bind_i64(st, 6, level_valid(h->level_before) ? h->level_before : RISK_NONE);
        (void) bind_i64(st, 7, level_valid(h->level_after) ? h->level_after : RISK_NONE);
        (void) bind_text(st, 8, h->rule);
        (void) bind_text(st, 9, h->action);
        (void) bind_text(st, 10, h->result);
        (void) bind_i64(st, 11, h->duration_ms);
        (void) bind_text(st, 12, h->txn);
        if (h->uid >= 0)
                (void) bind_i64(st, 13, h->uid);
        else
                (void) sqlite3_bind_null(st, 13);
        (void) bind_text(st, 14, h->transmitter);
        r = step_done(s, st, "history add");
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = sqlite3_last_insert_rowid(s->db);
        return 0;
}

int store_history_update_result(Store *s, int64_t id, const char *result, int64_t duration_ms) {
        sqlite3_stmt *st;
        int r;

        if (!s)
                return -EINVAL;
        st = stmt_get(s, STMT_HIST_UPDATE);
        (void) bind_i64(st, 1, id);
        (void) bind_text(st, 2, result);
        (void) bind_i64(st, 3, duration_ms);
        r = step_done(s, st, "history update");
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) == 0 ? -ENOENT : 0;
}

static int read_history(sqlite3_stmt *st, HistoryEntry *ret) {
        HistoryEntry h = {
                .id = sqlite3_column_int64(st, 0),
                .time = col_u64(st, 1),
                .level_before = col_level(st, 6),
                .level_after = col_level(st, 7),
                .duration_ms = sqlite3_column_int64(st, 11),
                .uid = sqlite3_column_type(st, 13) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 13),
        };

        if (col_str(st, 2, &h.user) < 0 || col_str(st, 3, &h.jti) < 0 || col_str(st, 4, &h.event) < 0 ||
            col_str(st, 5, &h.detection) < 0 || col_str(st, 8, &h.rule) < 0 ||
            col_str(st, 9, &h.action) < 0 || col_str(st, 10, &h.result) < 0 ||
            col_str(st, 12, &h.txn) < 0 || col_str(st, 14, &h.transmitter) < 0) {
                history_entry_done(&h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

static int read_history_row(Store *s, sqlite3_stmt *st, void *elem, void *userdata) {
        return read_history(st, elem);
}

static void history_free_list(void *list, size_t n) {
        history_entries_free(list, n);
}

/* The rows st returns, into a new array (the statement's LIMIT, at most STORE_LIST_MAX, bounds
 * them). */
static int read_history_rows(Store *s, sqlite3_stmt *st, HistoryEntry **ret, size_t *ret_n) {
        static const RowReader rr = {
                .elem = sizeof(HistoryEntry), .first = 16, .what = "history page",
                .read = read_history_row, .free_list = history_free_list,
        };

        return read_rows(s, st, &rr, NULL, (void **) ret, ret_n);
}

int store_history_page(Store *s, int64_t uid, uint64_t since, int64_t before_id, size_t limit,
                       HistoryEntry **ret, size_t *ret_n) {
        sqlite3_stmt *st;

        if (!s || !ret || !ret_n || limit == 0 || limit > STORE_LIST_MAX)
                return -EINVAL;
        st = stmt_get(s, uid >= 0 ? STMT_HIST_PAGE_USER : STMT_HIST_PAGE_ALL);
        (void) bind_i64(st, 1, before_id);
        (void) bind_u64(st, 2, since);
        (void) bind_i64(st, 3, (int64_t) limit);
        if (uid >= 0)
                (void) bind_i64(st, 4, uid);
        return read_history_rows(s, st, ret, ret_n);
}

int store_history_list(Store *s, int64_t uid, size_t limit, HistoryEntry **ret,
                       size_t *ret_n) {
        sqlite3_stmt *st;

        if (!s || !ret || !ret_n)
                return -EINVAL;
        if (limit == 0 || limit > STORE_LIST_MAX)
                limit = STORE_LIST_MAX;
        st = stmt_get(s, uid >= 0 ? STMT_HIST_LIST_USER : STMT_HIST_LIST_ALL);
        (void) bind_i64(st, 1, (int64_t) limit);
        if (uid >= 0)
                (void) bind_i64(st, 2, uid);
        return read_history_rows(s, st, ret, ret_n);
}

/* ---- pending actions ---------------------------------------------------------------------- */

void pending_action_done(PendingAction *a) {
        if (!a)
                return;
        free(a->user);
        free(a->rule);
        free(a->action);
        free(a->sessions);
        free(a->workflow);
        free(a->jti);
        free(a->txn);
        free(a->event_uri);
        free(a->detection);
        free(a->issuer);
        free(a->reason);
        if (a->claims_ref)
                shared_claims_unref(a->claims_ref); /* claims_json points into it */
        else
                free(a->claims_json);
        *a = (PendingAction){};
}

void pending_actions_free(PendingAction *a, size_t n) {
        if (!a)
                return;
        for (size_t i = 0; i < n; i++)
                pending_action_done(&a[i]);
        free(a);
}

/* The id of the SET's row in sets, added with claims when there is none yet. */
static int set_id_get(Store *s, const char *iss, const char *jti, const char *claims, int64_t *ret) {
        sqlite3_stmt *st = stmt_get(s, STMT_SET_FIND);
        int rc, r;

        (void) bind_text(st, 1, strempty(iss));
        (void) bind_text(st, 2, strempty(jti));
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = sqlite3_column_int64(st, 0);
        r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : map_rc(s, rc, "set find");
        (void) sqlite3_reset(st);
        if (r != -ENOENT)
                return r;

        st = stmt_get(s, STMT_SET_ADD);
        (void) bind_text(st, 1, strempty(iss));
        (void) bind_text(st, 2, strempty(jti));
        (void) bind_text(st, 3, claims);
        r = step_done(s, st, "set add");
        if (r < 0)
                return r;
        *ret = sqlite3_last_insert_rowid(s->db);
        return 0;
}

int store_action_add(Store *s, const PendingAction *a, int64_t *ret_id) {
        int64_t set_id = 0;
        sqlite3_stmt *st;
        int r;

        if (!s || !a || isempty(a->user) || isempty(a->action))
                return -EINVAL;
        if (a->claims_json) {
                r = set_id_get(s, a->issuer, a->jti, a->claims_json, &set_id);
                if (r < 0)
                        return r;
        }
        st = stmt_get(s, STMT_ACTION_ADD);
        (void) bind_u64(st, 1, a->created);
        (void) bind_text(st, 2, a->user);
        (void) bind_text(st, 3, a->rule);
        (void) bind_text(st, 4, a->action);
        (void) bind_text(st, 5, a->sessions);
        (void) bind_i64(st, 6, a->reset ? 1 : 0);
        (void) bind_text(st, 7, a->workflow);
        (void) bind_text(st, 8, a->jti);
        (void) bind_text(st, 9, a->event_uri);
        (void) bind_text(st, 10, a->detection);
        (void) bind_text(st, 11, a->issuer);
        (void) bind_text(st, 12, a->reason);
        (void) bind_i64(st, 13, level_valid(a->level_before) ? a->level_before : RISK_NONE);
        (void) bind_i64(st, 14, level_valid(a->level_after) ? a->level_after : RISK_NONE);
        if (a->claims_json)
                (void) bind_i64(st, 15, set_id);
        else
                (void) sqlite3_bind_null(st, 15);
        (void) bind_i64(st, 16, a->history_id);
        (void) bind_text(st, 17, a->txn);
        (void) bind_i64(st, 18, a->uid);
        (void) bind_u64(st, 19, a->warn_usec);
        r = step_done(s, st, "action add");
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = sqlite3_last_insert_rowid(s->db);
        return 0;
}

static int read_action(sqlite3_stmt *st, PendingAction *ret) {
        PendingAction a = {
                .id = sqlite3_column_int64(st, 0),
                .created = col_u64(st, 1),
                .reset = sqlite3_column_int64(st, 6) != 0,
                .level_before = col_level(st, 13),
                .level_after = col_level(st, 14),
                .history_id = sqlite3_column_int64(st, 16),
                .uid = (uid_t) sqlite3_column_int64(st, 18),
                .warn_usec = col_u64(st, 19),
                .due_usec = col_u64(st, 20), /* NULL (not warned yet) reads as 0 */
        };
        static const int cols[] = { 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 17 };
        char **fields[] = { &a.user, &a.rule, &a.action, &a.sessions, &a.workflow, &a.jti, &a.event_uri,
                            &a.detection, &a.issuer, &a.reason, &a.txn };

        for (size_t i = 0; i < ARRAY_SIZE(cols); i++)
                if (col_str(st, cols[i], fields[i]) < 0) {
                        pending_action_done(&a);
                        return -ENOMEM;
                }
        *ret = a;
        return 0;
}

/* The claims of set id, shared with *last (the previous action's) when it is the same SET:
 * the actions of one SET are listed together, and hold one copy. */
static int action_claims(Store *s, int64_t id, int64_t *last_id, SharedClaims **last,
                         PendingAction *a) {
        sqlite3_stmt *st;
        const unsigned char *t;
        SharedClaims *c = NULL;
        int rc, r = 0;

        if (!*last || *last_id != id) {
                st = stmt_get(s, STMT_SET_CLAIMS);
                (void) bind_i64(st, 1, id);
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW && (t = sqlite3_column_text(st, 0))) {
                        size_t len = strlen((const char *) t);

                        c = malloc(sizeof(SharedClaims) + len + 1);
                        if (c) {
                                c->n_ref = 1; /* *last's */
                                memcpy(c->text, t, len + 1);
                        } else
                                r = -ENOMEM;
                } else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                        r = map_rc(s, rc, "set claims");
                (void) sqlite3_reset(st);
                if (r < 0)
                        return r;
                shared_claims_unref(*last);
                *last = c;
                *last_id = id;
        }
        if (*last) {
                __atomic_add_fetch(&(*last)->n_ref, 1, __ATOMIC_RELAXED);
                a->claims_ref = *last;
                a->claims_json = (*last)->text;
        }
        return 0;
}

/* The claims the previous pending action was given, for the next one of the same SET. */
typedef struct LastClaims {
        int64_t id;
        SharedClaims *claims;
} LastClaims;

static int read_action_row(Store *s, sqlite3_stmt *st, void *elem, void *userdata) {
        LastClaims *last = userdata;
        int r;

        r = read_action(st, elem);
        if (r < 0 || sqlite3_column_type(st, 15) == SQLITE_NULL)
                return r;
        r = action_claims(s, sqlite3_column_int64(st, 15), &last->id, &last->claims, elem);
        if (r < 0)
                pending_action_done(elem);
        return r;
}

static void actions_free_list(void *list, size_t n) {
        pending_actions_free(list, n);
}

int store_action_list_pending(Store *s, PendingAction **ret, size_t *ret_n) {
        static const RowReader rr = {
                .elem = sizeof(PendingAction), .first = 8, .what = "actions list",
                .read = read_action_row, .free_list = actions_free_list,
        };
        LastClaims last = {};
        int r;

        if (!s || !ret || !ret_n)
                return -EINVAL;
        r = read_rows(s, stmt_get(s, STMT_ACTION_PENDING), &rr, &last, (void **) ret, ret_n);
        shared_claims_unref(last.claims);
        return r;
}

int store_action_set_due(Store *s, int64_t id, uint64_t due_usec) {
        sqlite3_stmt *st;
        int r;

        if (!s || due_usec == 0)
                return -EINVAL;
        st = stmt_get(s, STMT_ACTION_SET_DUE);
        (void) bind_i64(st, 1, id);
        (void) bind_u64(st, 2, due_usec);
        r = step_done(s, st, "action set due");
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) > 0 ? 0 : -ESRCH;
}

int store_action_finish(Store *s, int64_t id, const char *result) {
        sqlite3_stmt *st;
        int r;

        if (!s)
                return -EINVAL;
        st = stmt_get(s, STMT_ACTION_FINISH);
        (void) bind_i64(st, 1, id);
        (void) bind_text(st, 2, result);
        r = step_done(s, st, "action finish");
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) == 0 ? -ENOENT : 0;
}

int store_action_find_txn(Store *s, const char *issuer, const char *txn, uid_t uid,
                          const char *action, const char *sessions, const char *workflow,
                          char **ret_jti) {
        sqlite3_stmt *st;
        int rc, r;

        if (!s || isempty(txn) || !action || !ret_jti)
                return -EINVAL;
        st = stmt_get(s, STMT_ACTION_FIND_TXN);
        (void) bind_text(st, 1, issuer);
        (void) bind_text(st, 2, txn);
        (void) bind_i64(st, 3, uid);
        (void) bind_text(st, 4, action);
        (void) bind_text(st, 5, sessions);
        (void) bind_text(st, 6, workflow);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                r = col_str(st, 0, ret_jti);
        else if (rc == SQLITE_DONE)
                r = -ENOENT;
        else
                r = map_rc(s, rc, "action find txn");
        (void) sqlite3_reset(st);
        return r;
}

/* ---- retention ---------------------------------------------------------------------------- */

/* Runs one pruning statement (?1 the bound, ?2 the batch, or ?1 the batch alone). Returns the
 * number of rows deleted or -errno. */
static int prune_step(Store *s, int id, bool bound, uint64_t value, size_t batch) {
        sqlite3_stmt *st = stmt_get(s, id);
        int r;

        if (bound) {
                (void) bind_u64(st, 1, value);
                (void) bind_i64(st, 2, (int64_t) batch);
        } else
                (void) bind_i64(st, 1, (int64_t) batch);
        if (id == STMT_PRUNE_JTI)
                return jti_delete(s, st, "prune");
        r = step_done(s, st, "prune");
        return r < 0 ? r : sqlite3_changes(s->db);
}

int store_prune(Store *s, const StorePruneLimits *l, StorePruneCounts *ret) {
        struct {
                int stmt;
                bool bound;
                uint64_t value;
                unsigned *count;
        } steps[6];
        StorePruneCounts c = {};
        size_t batch, n = 0;
        int r;

        if (!s || !l)
                return -EINVAL;
        batch = l->batch ? MIN(l->batch, (size_t) INT32_MAX) : 1000;
        if (l->history_before > 0) {
                steps[n++] = (typeof(steps[0])) { STMT_PRUNE_HIST_AGE, true, l->history_before, &c.history };
                steps[n++] = (typeof(steps[0])) { STMT_PRUNE_ACTIONS_AGE, true, l->history_before, &c.actions };
        }
        if (l->history_max_rows > 0) {
                steps[n++] = (typeof(steps[0])) { STMT_PRUNE_HIST_COUNT, true, l->history_max_rows, &c.history };
                steps[n++] = (typeof(steps[0])) { STMT_PRUNE_ACTIONS_COUNT, true, l->history_max_rows, &c.actions };
        }
        steps[n++] = (typeof(steps[0])) { STMT_PRUNE_SETS, false, 0, &c.sets };
        if (l->jti_before > 0)
                steps[n++] = (typeof(steps[0])) { STMT_PRUNE_JTI, true, l->jti_before, &c.jti };

        r = store_begin(s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                int k = prune_step(s, steps[i].stmt, steps[i].bound, steps[i].value, batch);

                if (k < 0) {
                        (void) store_rollback(s);
                        return k;
                }
                *steps[i].count += (unsigned) k;
                if ((size_t) k >= batch)
                        c.more = true; /* a full batch: there may be more */
        }
        r = store_commit(s);
        if (r < 0) {
                (void) store_rollback(s);
                return r;
        }
        if (ret)
                *ret = c;
        return 0;
}

/* ---- key/value ---------------------------------------------------------------------------- */

int store_kv_get(Store *s, const char *key, char **ret) {
        sqlite3_stmt *st;
        int rc, r;

        if (!s || !key || !ret)
                return -EINVAL;
        st = stmt_get(s, STMT_KV_GET);
        (void) bind_text(st, 1, key);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                char *v = NULL;
                r = col_str(st, 0, &v);
                if (r >= 0 && !v)
                        r = -ENOENT;
                if (r >= 0)
                        *ret = v;
        } else if (rc == SQLITE_DONE)
                r = -ENOENT;
        else
                r = map_rc(s, rc, "kv get");
        (void) sqlite3_reset(st);
        return r;
}

int store_kv_set(Store *s, const char *key, const char *value) {
        sqlite3_stmt *st;

        if (!s || !key || !value)
                return -EINVAL;
        st = stmt_get(s, STMT_KV_SET);
        (void) bind_text(st, 1, key);
        (void) bind_text(st, 2, value);
        return step_done(s, st, "kv set");
}

/* ---- counts ------------------------------------------------------------------------------- */

int store_count(Store *s, const char *table, uint64_t *ret) {
        /* The allow-list: the only SQL text chosen by an argument. */
        static const struct {
                const char *name;
                const char *sql;
        } counts[] = {
                { "jti", "SELECT COUNT(*) FROM jti" },
                { "detections", "SELECT COUNT(*) FROM detections" },
                { "history", "SELECT COUNT(*) FROM history" },
                { "actions", "SELECT COUNT(*) FROM actions" },
                { "pending_actions", "SELECT COUNT(*) FROM actions WHERE state = 0" },
                { "kv", "SELECT COUNT(*) FROM kv" },
                { "sets", "SELECT COUNT(*) FROM sets" },
                { "users", "SELECT COUNT(DISTINCT uid) FROM detections" },
        };
        sqlite3_stmt *st = NULL;
        const char *sql = NULL;
        int rc, r;

        if (!s || !table || !ret)
                return -EINVAL;
        for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
                if (streq(counts[i].name, table))
                        sql = counts[i].sql;
        if (!sql)
                return -EINVAL;

        rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return map_rc(s, rc, "count");
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret = col_u64(st, 0);
                r = 0;
        } else
                r = map_rc(s, rc == SQLITE_DONE ? SQLITE_ERROR : rc, "count");
        (void) sqlite3_finalize(st);
        return r;
}
