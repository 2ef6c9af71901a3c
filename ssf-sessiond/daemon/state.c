/* SPDX-License-Identifier: MIT */
/*
 * The root daemon's shared state (state.h): its set-up and tear-down, the reference-counted
 * configuration, the level table PAM is answered from, the PAM snapshot writer (journal and
 * compaction thread) and the wake-ups between the daemon's threads. Runs in
 * the root daemon.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>


#include "log.h"
#include "macro.h"
#include "snapshot.h"
#include "state.h"

uint64_t now_sec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec;
}

const char *format_rfc3339(uint64_t t, char *buf, size_t size) {
        struct tm tm;
        time_t tt = (time_t) t;

        if (t == 0 || !gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                buf[0] = 0;
        return buf;
}

static ConfigHandle *config_handle_new(Config *c) {
        ConfigHandle *h = calloc(1, sizeof(*h));
        if (!h)
                return NULL;
        h->config = c;
        h->n_ref = 1;
        return h;
}

static void config_handle_unref_locked(ConfigHandle *h) {
        if (h && --h->n_ref == 0) {
                config_free(h->config);
                free(h);
        }
}

static void stream_facts_done(StreamFacts *f) {
        free(f->stream_id);
        free(f->issuer);
        free(f->status);
        free(f->endpoint_url);
        free(f->audience);
        free(f->delivery);
        free(f->config_json);
        free(f->events_delivered_json);
        free(f->verification_endpoint);
        free(f->last_error);
        free(f->verify_state);
        free(f->verify_result);
        *f = (StreamFacts){};
}

TransmitterState *state_transmitter(State *st, const char *name) {
        for (size_t i = 0; name && i < st->n_transmitters; i++)
                if (streq(st->transmitters[i].name, name))
                        return &st->transmitters[i];
        return NULL;
}

TransmitterState *state_transmitter_main(State *st) {
        TransmitterState *t = state_transmitter(st, "default");

        if (t)
                return t;
        return st->n_transmitters == 1 ? &st->transmitters[0] : NULL;
}

int state_transmitters_sync_locked(State *st, const Config *c) {
        TransmitterState *n;

        n = calloc(MAX(c->n_transmitters, (size_t) 1), sizeof(TransmitterState));
        if (!n)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_transmitters; i++) {
                TransmitterState *old = state_transmitter(st, c->transmitters[i].name);

                if (old) {
                        n[i] = *old;
                        *old = (TransmitterState){};
                        continue;
                }
                (void) snprintf(n[i].name, sizeof(n[i].name), "%s", c->transmitters[i].name);
                n[i].stream.status = strdup("starting");
        }
        for (size_t i = 0; i < st->n_transmitters; i++)
                stream_facts_done(&st->transmitters[i].stream);
        free(st->transmitters);
        st->transmitters = n;
        st->n_transmitters = c->n_transmitters;
        return 0;
}

int state_init(State *st, Config *config) {
        pthread_condattr_t ca;

        *st = (State){ .wake_fd = -EBADF, .cancel_fd = -EBADF };
        pthread_mutex_init(&st->lock, NULL);
        pthread_mutex_init(&st->config_lock, NULL);
        pthread_mutex_init(&st->levels_lock, NULL);
        errno = 0;
        st->nice = getpriority(PRIO_PROCESS, 0);
        if (st->nice == -1 && errno != 0)
                st->nice = 0;
        pthread_mutex_init(&st->snap.base_lock, NULL);
        pthread_mutex_init(&st->snap.lock, NULL);
        st->snap.journal_fd = -EBADF;
        /* Waits are measured on CLOCK_MONOTONIC: a wall clock stepped back must not stall
         * the poll and action threads. */
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&st->action_cond, &ca);
        pthread_cond_init(&st->lane_cond, &ca);
        pthread_mutex_init(&st->lane_lock, NULL);
        pthread_cond_init(&st->snap.cond, &ca);
        pthread_condattr_destroy(&ca);
        st->started = now_sec();
        st->actions_kick = 1; /* run what a previous instance left pending */
        st->lane_kick = 1;
        st->config = config_handle_new(config);
        if (!st->config) {
                config_free(config);
                return -ENOMEM;
        }
        if (state_transmitters_sync_locked(st, config) < 0)
                return -ENOMEM;
        st->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (st->cancel_fd < 0)
                return -errno;
        return 0;
}

static void snapshot_writer_stop(State *st) {
        SnapshotWriter *w = &st->snap;

        if (!w->thread_started)
                return;
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        (void) pthread_join(w->thread, NULL);
        w->thread_started = false;
}

static void table_free(LevelTable *t);

void state_done(State *st) {
        snapshot_writer_stop(st);
        safe_close(st->snap.journal_fd);
        free(st->snap.path);
        table_free(&st->levels);
        for (size_t i = 0; i < st->n_detection_names; i++)
                free(st->detection_names[i]);
        free(st->detection_names);
        pthread_cond_destroy(&st->snap.cond);
        pthread_mutex_destroy(&st->snap.lock);
        pthread_mutex_destroy(&st->snap.base_lock);
        safe_close(st->wake_fd);
        safe_close(st->cancel_fd);
        store_free(st->store);
        if (st->config)
                config_handle_unref_locked(st->config);
        for (size_t i = 0; i < st->n_transmitters; i++)
                stream_facts_done(&st->transmitters[i].stream);
        free(st->transmitters);
        pthread_cond_destroy(&st->action_cond);
        pthread_cond_destroy(&st->lane_cond);
        pthread_mutex_destroy(&st->lane_lock);
        pthread_mutex_destroy(&st->lock);
        pthread_mutex_destroy(&st->config_lock);
        pthread_mutex_destroy(&st->levels_lock);
        *st = (State){ .wake_fd = -EBADF, .cancel_fd = -EBADF };
        st->snap.journal_fd = -EBADF;
}

ConfigHandle *state_config_ref(State *st) {
        ConfigHandle *h;

        pthread_mutex_lock(&st->config_lock);
        h = st->config;
        h->n_ref++;
        pthread_mutex_unlock(&st->config_lock);
        return h;
}

void state_config_unref(State *st, ConfigHandle *h) {
        pthread_mutex_lock(&st->config_lock);
        config_handle_unref_locked(h);
        pthread_mutex_unlock(&st->config_lock);
}

int state_config_replace(State *st, Config *c) {
        ConfigHandle *h = config_handle_new(c);

        if (!h) {
                config_free(c);
                return -ENOMEM;
        }
        pthread_mutex_lock(&st->config_lock);
        config_handle_unref_locked(st->config);
        st->config = h;
        pthread_mutex_unlock(&st->config_lock);
        return 0;
}

/* ---- the level table ------------------------------------------------------------------- */

static size_t slot_of(uid_t uid, size_t cap) {
        return (size_t) (((uint64_t) uid * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (cap - 1);
}

/* The slot holding uid, or the free slot where it would go. cap must be above n. */
static LevelEntry *table_probe(const LevelTable *t, uid_t uid) {
        for (size_t i = slot_of(uid, t->cap);; i = (i + 1) & (t->cap - 1))
                if (!t->slots[i].used || t->slots[i].uid == uid)
                        return &t->slots[i];
}

/* Makes room for n entries: a load factor of at most 3/4 keeps probes short and the table of
 * 100,000 accounts at risk near 11 MiB. */
static int table_reserve(LevelTable *t, size_t n) {
        LevelEntry *slots;
        size_t cap = t->cap ? t->cap : 64;

        while (cap / 4 * 3 < n)
                cap *= 2;
        if (cap == t->cap)
                return 0;
        slots = calloc(cap, sizeof(LevelEntry));
        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; i < t->cap; i++)
                if (t->slots[i].used) {
                        LevelTable nt = { .cap = cap, .slots = slots };
                        *table_probe(&nt, t->slots[i].uid) = t->slots[i];
                }
        free(t->slots);
        t->slots = slots;
        t->cap = cap;
        return 0;
}

/* Removes the entry in slot e, shifting back the ones after it that probed past it. Returns the
 * text the entry owned, for the caller to free (after levels_lock, when t is the published
 * table). */
static char *table_remove(LevelTable *t, LevelEntry *e) {
        size_t i = (size_t) (e - t->slots), j = i;
        char *old = TAKE_PTR(t->slots[i].reason_user);

        t->slots[i].used = false;
        t->n--;
        for (;;) {
                size_t k;

                j = (j + 1) & (t->cap - 1);
                if (!t->slots[j].used)
                        return old;
                k = slot_of(t->slots[j].uid, t->cap);
                /* Leave it when its home slot k lies cyclically in (i, j]. */
                if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                        continue;
                t->slots[i] = t->slots[j];
                t->slots[j] = (LevelEntry){}; /* moved, its text too */
                i = j;
        }
}

/* Frees t's slots and the texts they own. */
static void table_free(LevelTable *t) {
        for (size_t i = 0; i < t->cap; i++)
                if (t->slots[i].used)
                        free(t->slots[i].reason_user);
        free(t->slots);
        t->slots = NULL;
        t->cap = t->n = 0;
}

/* Bounds the names kept: past it (never in practice) an entry names no detection. */
#define DETECTION_NAMES_MAX 4096u

/* name, kept once in st for the life of the daemon; NULL when empty or it cannot be kept. Call
 * with lock held. */
static const char *detection_name(State *st, const char *name) {
        char **v;

        if (isempty(name))
                return NULL;
        for (size_t i = 0; i < st->n_detection_names; i++)
                if (streq(st->detection_names[i], name))
                        return st->detection_names[i];
        if (st->n_detection_names >= DETECTION_NAMES_MAX)
                return NULL;
        v = reallocarray(st->detection_names, st->n_detection_names + 1, sizeof(char *));
        if (!v)
                return NULL;
        st->detection_names = v;
        v[st->n_detection_names] = strndup(name, 63);
        if (!v[st->n_detection_names])
                return NULL;
        return v[st->n_detection_names++];
}

/* What an entry of u holds besides its level: made before levels_lock is taken, so that nothing
 * is allocated or freed while the PAM front thread may wait for that lock. Call with lock held
 * (detection names are kept in st). Without memory for the text the level still holds; the
 * message only lacks it. */
typedef struct EntryText {
        const char *detection;
        char *reason_user;
} EntryText;

static EntryText entry_text(State *st, const StoreUser *u) {
        if (u->level <= RISK_NONE)
                return (EntryText){};
        return (EntryText){ .detection = detection_name(st, u->detection),
                            .reason_user = u->reason_user ? strdup(u->reason_user) : NULL };
}

/* Sets u's entry in t (removes it when u is not at risk), taking x->reason_user. Call with
 * levels_lock held when t is the published table, after table_reserve(t, t->n + 1). Returns
 * the text the slot held before, for the caller to free (after levels_lock). */
static char *table_put(LevelTable *t, const StoreUser *u, EntryText *x) {
        LevelEntry *e = table_probe(t, u->uid);
        char *old = NULL;

        if (u->level <= RISK_NONE)
                return e->used ? table_remove(t, e) : NULL;
        if (e->used)
                old = e->reason_user;
        else
                t->n++;
        *e = (LevelEntry){ .uid = u->uid, .used = true, .level = u->level, .until = u->until,
                           .detection = x->detection, .reason_user = TAKE_PTR(x->reason_user) };
        return old;
}

int state_levels_lookup(State *st, uid_t uid, uint64_t now, RiskLevel *ret_level,
                        char *detection, size_t size, char *reason_user, size_t reason_size) {
        RiskLevel level = RISK_NONE;
        const LevelEntry *e;

        if (detection && size > 0)
                detection[0] = 0;
        if (reason_user && reason_size > 0)
                reason_user[0] = 0;
        pthread_mutex_lock(&st->levels_lock);
        if (!st->levels.valid) {
                pthread_mutex_unlock(&st->levels_lock);
                return -EAGAIN;
        }
        e = st->levels.cap > 0 ? table_probe(&st->levels, uid) : NULL;
        /* A lapsed level is none, as the store would answer after expiry. */
        if (e && e->used && (e->until == 0 || e->until > now)) {
                level = e->level;
                if (detection && size > 0)
                        (void) snprintf(detection, size, "%s", strempty(e->detection));
                if (reason_user && reason_size > 0)
                        (void) snprintf(reason_user, reason_size, "%s", strempty(e->reason_user));
        }
        pthread_mutex_unlock(&st->levels_lock);
        *ret_level = level;
        return 0;
}

/* ---- the snapshot: base file, journal, compaction --------------------------------------- */

/* Threshold of journal entries past which it is compacted: proportional to the accounts at risk,
 * so that the compactions' cost per change stays constant. */
#define JOURNAL_COMPACT_MIN_LINES 4096u
/* "UID LEVEL UNTIL\n": at most 10 + 1 + 6 + 1 + 20 + 1 bytes. */
#define JOURNAL_LINE_MAX 64u
/* A journal is never let grow near the reader's limit. */
#define JOURNAL_MAX_BYTES (SSF_SNAPSHOT_MAX_SIZE / 2)

typedef struct BaseCopy {
        SsfSnapshotEntry *e;
        char (*keys)[16];
        size_t n;
} BaseCopy;

static void base_copy_done(BaseCopy *b) {
        free(b->e);
        free(b->keys);
        *b = (BaseCopy){};
}

/* A copy of the level table as base file entries. Call with nothing changing t: the snapshot
 * writer's lock held for the published table (its writers take it before levels_lock). */
static int base_copy_table(const LevelTable *t, BaseCopy *ret) {
        BaseCopy b = {};

        b.e = calloc(MAX(t->n, (size_t) 1), sizeof(*b.e));
        b.keys = calloc(MAX(t->n, (size_t) 1), sizeof(*b.keys));
        if (!b.e || !b.keys) {
                base_copy_done(&b);
                return -ENOMEM;
        }
        for (size_t i = 0; i < t->cap; i++) {
                const LevelEntry *le = &t->slots[i];

                if (!le->used)
                        continue;
                (void) snprintf(b.keys[b.n], sizeof(b.keys[b.n]), "%u", (unsigned) le->uid);
                b.e[b.n] = (SsfSnapshotEntry){ b.keys[b.n], le->level, le->until };
                b.n++;
        }
        *ret = b;
        return 0;
}

static int journal_tail(int fd, size_t from, size_t to, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t n = to - from, o = 0;

        buf = malloc(MAX(n, (size_t) 1));
        if (!buf)
                return -ENOMEM;
        while (o < n) {
                ssize_t k = pread(fd, buf + o, n - o, (off_t) (from + o));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                o += (size_t) k;
        }
        *ret = TAKE_PTR(buf);
        return 0;
}

/* The writer thread: when the journal has grown past its threshold, writes a new base file from
 * a copy of the level table, then replaces the journal with the lines appended since that copy
 * (snapshot.h says why readers never miss a change). Commits go on appending meanwhile; only
 * the copy of the table and the swap of the journal take the locks they take. */
static void compact(State *st) {
        SnapshotWriter *w = &st->snap;
        BaseCopy b = {};
        SsfSnapshotPolicy policy;
        _cleanup_free_ char *path = NULL, *tail = NULL;
        size_t from, lines_from, n_tail;
        int r, fd;

        pthread_mutex_lock(&w->base_lock);
        pthread_mutex_lock(&w->lock);
        w->compact = false;
        path = w->path ? strdup(w->path) : NULL;
        policy = w->policy;
        from = w->journal_bytes;
        lines_from = w->journal_lines;
        /* Read without levels_lock: every change of the table is made with w->lock held, and
         * the front thread only reads it. A copy of 100,000 entries is no wait for PAM. */
        r = path ? base_copy_table(&st->levels, &b) : -ENOMEM;
        pthread_mutex_unlock(&w->lock);
        if (r < 0)
                goto out;

        r = ssf_snapshot_write(path, &policy, b.e, b.n);
        if (r < 0) {
                log_warning_errno(r, "Cannot compact the PAM snapshot '%s': %m", path);
                goto out;
        }

        pthread_mutex_lock(&w->lock);
        if (!streq_ptr(path, w->path)) {
                /* Published in full meanwhile (a reload that moved it): nothing to swap. */
                pthread_mutex_unlock(&w->lock);
                goto out;
        }
        r = 0;
        n_tail = 0;
        if (w->journal_fd >= 0 && w->journal_bytes > from)
                r = journal_tail(w->journal_fd, from, w->journal_bytes, &tail);
        if (r >= 0) {
                n_tail = w->journal_fd >= 0 ? w->journal_bytes - from : 0;
                fd = ssf_snapshot_journal_install(path, tail, n_tail);
                r = fd;
        }
        if (r >= 0) {
                safe_close(w->journal_fd);
                w->journal_fd = fd;
                w->journal_bytes = strlen(SSF_SNAPSHOT_JOURNAL_HEADER) + 1 + n_tail;
                w->journal_lines -= MIN(lines_from, w->journal_lines);
                w->compactions++;
        }
        pthread_mutex_unlock(&w->lock);
        if (r < 0)
                log_warning_errno(r, "Cannot install a new PAM snapshot journal: %m");
        else
                log_debug("Compacted the PAM snapshot: %zu account(s) at risk, %zu change(s) "
                          "left in the journal", b.n, w->journal_lines);
out:
        pthread_mutex_unlock(&w->base_lock);
        base_copy_done(&b);
}

/* The compaction is background work: it yields the CPU to logins (this thread only). */

static void *snapshot_thread(void *userdata) {
        State *st = userdata;
        SnapshotWriter *w = &st->snap;

        (void) prctl(PR_SET_NAME, (unsigned long) "ssf-snapshot", 0, 0, 0);
        state_thread_background(st, PRIO_ADMIN_NICE);
        for (;;) {
                pthread_mutex_lock(&w->lock);
                while (!w->compact && !w->stop)
                        pthread_cond_wait(&w->cond, &w->lock);
                if (w->stop) {
                        pthread_mutex_unlock(&w->lock);
                        return NULL;
                }
                pthread_mutex_unlock(&w->lock);
                compact(st);
        }
}

uint64_t state_snapshot_compactions(State *st) {
        uint64_t n;

        pthread_mutex_lock(&st->snap.lock);
        n = st->snap.compactions;
        pthread_mutex_unlock(&st->snap.lock);
        return n;
}

void state_kick_actions_locked(State *st, bool logind, bool hooks) {
        if (hooks) {
                st->actions_kick++;
                pthread_cond_broadcast(&st->action_cond);
        }
        if (logind) {
                pthread_mutex_lock(&st->lane_lock);
                st->lane_kick++;
                pthread_cond_signal(&st->lane_cond);
                pthread_mutex_unlock(&st->lane_lock);
        }
}

void state_stop_actions_locked(State *st) {
        st->stopping = 1;
        pthread_cond_broadcast(&st->action_cond);
        pthread_mutex_lock(&st->lane_lock);
        pthread_cond_broadcast(&st->lane_cond);
        pthread_mutex_unlock(&st->lane_lock);
}

size_t state_early_hand_locked(State *st, const EarlyAction *a, size_t n) {
        size_t k;

        pthread_mutex_lock(&st->lane_lock);
        k = MIN(n, EARLY_ACTIONS_MAX - st->n_early);
        for (size_t i = 0; i < k; i++) {
                EarlyAction *e = &st->early[st->n_early++];

                *e = a[i];
                e->outcome = EARLY_COMMITTING;
                e->ran = false;
                e->r = 0;
                e->result[0] = '\0';
        }
        if (k > 0)
                pthread_cond_signal(&st->lane_cond);
        pthread_mutex_unlock(&st->lane_lock);
        return k;
}

void state_early_settle_locked(State *st, bool committed) {
        pthread_mutex_lock(&st->lane_lock);
        /* Commits are made one at a time (lock): the ones still committing are these. */
        for (size_t i = 0; i < st->n_early; i++)
                if (st->early[i].outcome == EARLY_COMMITTING)
                        st->early[i].outcome = committed ? EARLY_COMMITTED : EARLY_ABORTED;
        pthread_cond_signal(&st->lane_cond);
        pthread_mutex_unlock(&st->lane_lock);
}

void state_wake(State *st) {
        uint64_t one = 1;
        if (st->wake_fd >= 0)
                (void) !write(st->wake_fd, &one, sizeof(one));
}

/* ---- thread priorities ------------------------------------------------------------------ */

void state_thread_background(const State *st, int nice_delta) {
        struct sched_param p = {};

        /* On Linux both calls act on the calling thread only (pid 0, a thread id). */
        (void) sched_setscheduler(0, SCHED_BATCH, &p);
        (void) setpriority(PRIO_PROCESS, (id_t) gettid(), MIN(st->nice + nice_delta, 19));
}

/* struct sched_attr of sched_setattr(2) (<linux/sched/types.h> clashes with <sched.h>). */
typedef struct SchedAttr {
        uint32_t size;
        uint32_t sched_policy;
        uint64_t sched_flags;
        int32_t sched_nice;
        uint32_t sched_priority;
        uint64_t sched_runtime;
        uint64_t sched_deadline;
        uint64_t sched_period;
} SchedAttr;

void state_thread_front(const State *st) {
        /* sched_runtime is the requested slice of a SCHED_OTHER thread (the kernel clamps it
         * to 0.1–100 ms); older kernels ignore it. */
        SchedAttr a = {
                .size = sizeof(a),
                .sched_policy = SCHED_OTHER,
                .sched_nice = st->nice,
                .sched_runtime = 100 * 1000,
        };

        if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
                (void) setpriority(PRIO_PROCESS, (id_t) gettid(), st->nice);
}

int state_publish_levels_locked(State *st, const Config *c) {
        SnapshotWriter *w = &st->snap;
        StoreUser *users = NULL;
        LevelTable t = { .valid = true }, old;
        BaseCopy b = {};
        SsfSnapshotPolicy policy = { .min_uid = c->min_uid, .max_uid = c->max_uid };
        size_t n = 0, o = 0;
        int r, fd;

        /* Who is never acted upon goes along, so that pam_ssf.so admits them on its own. */
        for (char **p = c->protect; p && *p; p++) {
                size_t l = strlen(*p);
                if (o + l + 2 > sizeof(policy.protect))
                        break;
                if (o > 0)
                        policy.protect[o++] = ' ';
                memcpy(policy.protect + o, *p, l + 1);
                o += l;
        }
        r = store_users_list(st->store, now_sec(), &users, &n);
        if (r < 0)
                return log_warning_errno(r, "Cannot list users for the PAM snapshot: %m");
        r = table_reserve(&t, n + 1);
        if (r < 0) {
                store_users_free(users, n);
                return log_warning_errno(r, "Cannot publish the level table: %m");
        }
        for (size_t i = 0; i < n; i++) {
                EntryText x = entry_text(st, &users[i]);

                free(table_put(&t, &users[i], &x));
        }
        store_users_free(users, n);

        if (!w->thread_started) {
                r = pthread_create(&w->thread, NULL, snapshot_thread, st);
                if (r != 0) {
                        table_free(&t);
                        return log_warning_errno(-r, "Cannot start the PAM snapshot writer: %m");
                }
                w->thread_started = true;
        }

        /* A compaction in progress finishes first; commits cannot append meanwhile (they hold
         * lock, as the caller does). */
        pthread_mutex_lock(&w->base_lock);
        pthread_mutex_lock(&w->lock);
        /* First what PAM is answered from, then the files for when the daemon is down. */
        /* The copy for the base file is made from t while it is still this thread's own; under
         * levels_lock the tables are only swapped, the old one is freed after it. */
        r = base_copy_table(&t, &b);
        pthread_mutex_lock(&st->levels_lock);
        old = st->levels;
        st->levels = t;
        pthread_mutex_unlock(&st->levels_lock);
        table_free(&old);
        if (r >= 0)
                r = ssf_snapshot_write(c->snapshot_path, &policy, b.e, b.n);
        if (r < 0)
                log_warning_errno(r, "Cannot write the PAM snapshot '%s': %m", c->snapshot_path);
        /* The base file now covers everything: then an empty journal. */
        fd = r >= 0 ? ssf_snapshot_journal_install(c->snapshot_path, NULL, 0) : r;
        if (r >= 0 && fd < 0)
                log_warning_errno(fd, "Cannot create the PAM snapshot journal: %m");
        safe_close(w->journal_fd);
        w->journal_fd = fd >= 0 ? fd : -EBADF;
        w->journal_bytes = strlen(SSF_SNAPSHOT_JOURNAL_HEADER) + 1;
        w->journal_lines = 0;
        w->compact = false;
        w->policy = policy;
        free(w->path);
        w->path = strdup(c->snapshot_path);
        pthread_mutex_unlock(&w->lock);
        pthread_mutex_unlock(&w->base_lock);
        base_copy_done(&b);
        return r < 0 ? r : fd < 0 ? fd : 0;
}

static int levels_changed(State *st, const Config *c, const uid_t *uids, size_t n, StoreUser *u);

int state_levels_changed_locked(State *st, const Config *c, const uid_t *uids, size_t n) {
        StoreUser *u;
        int r;

        if (n == 0)
                return 0;
        u = calloc(n, sizeof(*u));
        if (!u)
                return log_warning_errno(-ENOMEM, "Cannot publish level changes: %m");
        r = levels_changed(st, c, uids, n, u);
        store_users_free(u, n); /* and the reason_user texts store_user_get() gave */
        return r;
}

static int levels_changed(State *st, const Config *c, const uid_t *uids, size_t n, StoreUser *u) {
        SnapshotWriter *w = &st->snap;
        _cleanup_free_ char *lines = NULL;
        _cleanup_free_ EntryText *x = NULL;
        uint64_t now = now_sec();
        size_t len = 0;
        bool full = false;
        int r = 0, began;

        lines = malloc(n * JOURNAL_LINE_MAX);
        if (!lines)
                return log_warning_errno(-ENOMEM, "Cannot publish level changes: %m");
        /* One read transaction for them all, not one per account. */
        began = store_read_begin(st->store);
        for (size_t i = 0; i < n; i++) {
                char key[16];
                int k;

                r = store_user_get(st->store, uids[i], now, &u[i]);
                if (r < 0) {
                        store_read_end(st->store, began);
                        return log_warning_errno(r, "Cannot read the level of uid %u: %m",
                                                 (unsigned) uids[i]);
                }
                (void) snprintf(key, sizeof(key), "%u", (unsigned) uids[i]);
                k = ssf_snapshot_journal_line(&(SsfSnapshotEntry){ key, u[i].level, u[i].until },
                                              lines + len, JOURNAL_LINE_MAX);
                if (k < 0) {
                        store_read_end(st->store, began);
                        return log_warning_errno(k, "Cannot format a snapshot journal line: %m");
                }
                len += (size_t) k;
        }
        store_read_end(st->store, began);

        x = calloc(n, sizeof(*x));
        if (!x)
                return log_warning_errno(-ENOMEM, "Cannot publish level changes: %m");
        for (size_t i = 0; i < n; i++)
                x[i] = entry_text(st, &u[i]);
        pthread_mutex_lock(&w->lock);
        pthread_mutex_lock(&st->levels_lock);
        r = table_reserve(&st->levels, st->levels.n + n);
        if (r >= 0)
                /* What a slot held before goes in its place in x, freed below. */
                for (size_t i = 0; i < n; i++)
                        x[i].reason_user = table_put(&st->levels, &u[i], &x[i]);
        pthread_mutex_unlock(&st->levels_lock);
        for (size_t i = 0; i < n; i++)
                free(x[i].reason_user);
        if (r < 0) {
                /* Not in memory: then everything is read again from the store. */
                pthread_mutex_unlock(&w->lock);
                log_warning_errno(r, "Cannot update the level table: %m");
                return state_publish_levels_locked(st, c);
        }
        if (w->journal_fd < 0 || !streq_ptr(w->path, c->snapshot_path) ||
            w->journal_bytes + len > JOURNAL_MAX_BYTES)
                full = true; /* no usable journal, or the writer fell behind */
        else {
                r = ssf_snapshot_journal_append(w->journal_fd, lines, len);
                if (r < 0) {
                        /* A partial line would make the snapshot unusable: start over. */
                        log_warning_errno(r, "Cannot append to the PAM snapshot journal: %m");
                        full = true;
                } else {
                        w->journal_bytes += len;
                        w->journal_lines += n;
                        if (w->journal_lines >= MAX((size_t) JOURNAL_COMPACT_MIN_LINES, st->levels.n) ||
                            w->journal_bytes >= JOURNAL_MAX_BYTES / 2) {
                                w->compact = true;
                                pthread_cond_signal(&w->cond);
                        }
                }
        }
        pthread_mutex_unlock(&w->lock);
        if (full)
                return state_publish_levels_locked(st, c);
        return 0;
}
