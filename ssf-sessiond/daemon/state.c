/* SPDX-License-Identifier: MIT */
/*
 * The root daemon's shared state (state.h): its set-up and tear-down, the reference-counted
 * configuration, the PAM snapshot writer and the wake-ups between the daemon's threads. Runs in
 * the root daemon.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
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
        st->levels = calloc(1, sizeof(LevelTable));
        if (!st->levels) {
                config_free(config);
                return -ENOMEM;
        }
        st->levels->n_ref = 1;
        /* Waits are measured on CLOCK_MONOTONIC: a wall clock stepped back must not stall
         * the poll and action threads. */
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&st->action_cond, &ca);
        pthread_condattr_destroy(&ca);
        st->started = now_sec();
        st->actions_kick = 1; /* run what a previous instance left pending */
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

void state_done(State *st) {
        safe_close(st->wake_fd);
        safe_close(st->cancel_fd);
        store_free(st->store);
        if (st->config)
                config_handle_unref_locked(st->config);
        if (st->levels && --st->levels->n_ref == 0)
                free(st->levels);
        for (size_t i = 0; i < st->n_transmitters; i++)
                stream_facts_done(&st->transmitters[i].stream);
        free(st->transmitters);
        pthread_cond_destroy(&st->action_cond);
        pthread_mutex_destroy(&st->lock);
        pthread_mutex_destroy(&st->config_lock);
        pthread_mutex_destroy(&st->levels_lock);
        *st = (State){ .wake_fd = -EBADF, .cancel_fd = -EBADF };
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

LevelTable *state_levels_ref(State *st) {
        LevelTable *t;

        pthread_mutex_lock(&st->levels_lock);
        t = st->levels;
        t->n_ref++;
        pthread_mutex_unlock(&st->levels_lock);
        return t;
}

void state_levels_unref(State *st, LevelTable *t) {
        bool last;

        if (!t)
                return;
        pthread_mutex_lock(&st->levels_lock);
        last = --t->n_ref == 0;
        pthread_mutex_unlock(&st->levels_lock);
        if (last)
                free(t);
}

const LevelEntry *level_table_find(const LevelTable *t, uid_t uid, uint64_t now) {
        size_t lo = 0, hi = t ? t->n : 0;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                const LevelEntry *e = &t->entries[mid];

                if (e->uid == uid) {
                        if (e->until != 0 && e->until <= now)
                                break; /* lapsed: as the store would answer after expiry */
                        return e;
                }
                if (e->uid < uid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

RiskLevel level_table_lookup(const LevelTable *t, uid_t uid, uint64_t now,
                             const char **ret_detection) {
        const LevelEntry *e = level_table_find(t, uid, now);

        if (ret_detection)
                *ret_detection = e ? e->detection : NULL;
        return e ? e->level : RISK_NONE;
}

/* Makes a table of users (sorted by uid, as store_users_list() returns them) current. */
static int publish_levels(State *st, const StoreUser *users, size_t n) {
        size_t texts = 0;
        LevelTable *t, *old;
        char *p;

        /* One allocation: the entries, then the reason_user texts they point to. */
        for (size_t i = 0; i < n; i++)
                if (users[i].reason_user)
                        texts += strlen(users[i].reason_user) + 1;
        t = malloc(sizeof(LevelTable) + n * sizeof(LevelEntry) + texts);
        if (!t)
                return -ENOMEM;
        t->n_ref = 1;
        t->valid = true;
        t->n = n;
        p = (char *) &t->entries[n];
        for (size_t i = 0; i < n; i++) {
                t->entries[i] = (LevelEntry){ .uid = users[i].uid, .level = users[i].level,
                                              .until = users[i].until };
                memcpy(t->entries[i].detection, users[i].detection, sizeof(t->entries[i].detection));
                if (users[i].reason_user) {
                        size_t l = strlen(users[i].reason_user) + 1;

                        memcpy(p, users[i].reason_user, l);
                        t->entries[i].reason_user = p;
                        p += l;
                }
        }
        pthread_mutex_lock(&st->levels_lock);
        old = st->levels;
        st->levels = t;
        pthread_mutex_unlock(&st->levels_lock);
        state_levels_unref(st, old);
        return 0;
}

void state_kick_actions_locked(State *st) {
        st->actions_kick++;
        pthread_cond_broadcast(&st->action_cond);
}

void state_wake(State *st) {
        uint64_t one = 1;
        if (st->wake_fd >= 0)
                (void) !write(st->wake_fd, &one, sizeof(one));
}

int state_publish_levels_locked(State *st, const Config *c) {
        StoreUser *users = NULL;
        SsfSnapshotEntry *e = NULL;
        SsfSnapshotPolicy policy = { .min_uid = c->min_uid, .max_uid = c->max_uid };
        char (*keys)[24] = NULL;
        size_t n = 0, o = 0;
        int r;

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
        /* First what PAM is answered from, then the file for when the daemon is down. */
        r = publish_levels(st, users, n);
        if (r < 0) {
                store_users_free(users, n);
                return log_warning_errno(r, "Cannot publish the level table: %m");
        }
        e = calloc(MAX(n, (size_t) 1), sizeof(*e));
        keys = calloc(MAX(n, (size_t) 1), sizeof(*keys));
        if (!e || !keys) {
                free(e);
                free(keys);
                store_users_free(users, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                (void) snprintf(keys[i], sizeof(keys[i]), "%u", (unsigned) users[i].uid);
                e[i] = (SsfSnapshotEntry){ keys[i], users[i].level, users[i].until };
        }
        r = ssf_snapshot_write(c->snapshot_path, &policy, e, n);
        if (r < 0)
                log_warning_errno(r, "Cannot write the PAM snapshot '%s': %m", c->snapshot_path);
        free(e);
        free(keys);
        store_users_free(users, n);
        return r;
}
