/* SPDX-License-Identifier: MIT */
/*
 * The root daemon's main loop (manager.h): signals, reload, timers, the IPC server, the
 * worker's supervision and the action thread. Runs in the root daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <systemd/sd-daemon.h>

#include "actions.h"
#include "broker.h"
#include "ipc.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "snapshot.h"

#define EXPIRY_INTERVAL_USEC (60u * 1000000u)
#define VERIFY_CHECK_USEC (1u * 1000000u)
#define VERIFY_GRACE_SEC 300u
#define STOP_GRACE_USEC (4u * 1000000u)

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        uint64_t v;

        (void) !read(fd, &v, sizeof(v));
        ipc_server_dispatch_waiting(m->ipc);
        return 0;
}

/* [transmitter] verify_interval: ask each transmitter for a verification event now and then
 * (never more often than its min_verification_interval) and say so when none arrives. */
static void verify_check(Manager *m, const TransmitterConfig *tc) {
        uint64_t interval = tc->verify_interval_usec / 1000000u, now = now_sec(), min = 0;
        bool due, overdue = false;
        char state[33], f_tr[64];
        StreamFacts *sf;

        if (interval == 0)
                return;
        pthread_mutex_lock(&m->state.lock);
        {
                TransmitterState *ts = state_transmitter(&m->state, tc->name);
                if (!ts) {
                        pthread_mutex_unlock(&m->state.lock);
                        return;
                }
                sf = &ts->stream;
        }
        if (sf->config_json && now >= sf->verify_requested + interval) {
                json_t *cfg = json_loads(sf->config_json, 0, NULL);
                json_t *v = json_object_get(cfg, "min_verification_interval");
                if (json_is_integer(v) && json_integer_value(v) > 0)
                        min = (uint64_t) json_integer_value(v);
                json_decref(cfg);
        }
        interval = MAX(interval, min);
        /* Not while the previous request may still be answered. */
        due = sf->stream_id && now >= sf->verify_requested + interval &&
              (!sf->verify_state || sf->verify_received ||
               now >= sf->verify_requested + VERIFY_GRACE_SEC);
        if (sf->verify_state && !sf->verify_received && !sf->verify_warned &&
            sf->verify_requested && now >= sf->verify_requested + VERIFY_GRACE_SEC) {
                sf->verify_warned = true;
                overdue = true;
        }
        pthread_mutex_unlock(&m->state.lock);

        (void) snprintf(f_tr, sizeof(f_tr), "SSF_TRANSMITTER=%s", tc->name);
        if (overdue)
                log_struct(LOG_WARNING, SSF_MESSAGE_STREAM,
                           "No verification event arrived for the last verification request: "
                           "events may not be flowing", "SSF_VERIFICATION=missing", f_tr, NULL);
        if (due && broker_request_verification(m->broker, tc->name, state) >= 0)
                log_debug("Requested stream verification from transmitter '%s'", tc->name);
}

static int on_verify_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        ConfigHandle *h = state_config_ref(&m->state);

        (void) sd_event_source_set_time(s, usec + VERIFY_CHECK_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        for (size_t i = 0; i < h->config->n_transmitters; i++)
                verify_check(m, &h->config->transmitters[i]);
        state_config_unref(&m->state, h);
        return 0;
}

/* Expiry and retention. Pruning takes one bounded batch of each kind per run (the lock is
 * held only for that); while a batch was full, the next run comes soon instead of after
 * EXPIRY_INTERVAL_USEC. Never on the PAM path. */
#define PRUNE_BATCH 1000u
#define PRUNE_AGAIN_USEC (200u * 1000u)

static int on_expiry(sd_event_source *s, uint64_t usec, void *userdata) {
        static bool pruning; /* this run continues the previous one's pruning */
        Manager *m = userdata;
        ConfigHandle *h = state_config_ref(&m->state);
        const Config *c = h->config;
        uint64_t now = now_sec(), next = 0;
        uint64_t retention = c->history_retention_usec / 1000000u, age = c->max_event_age_usec / 1000000u;
        StorePruneLimits lim = {
                .history_before = now > retention ? now - retention : 0,
                .history_max_rows = c->history_max_rows,
                /* Kept at least max_event_age: an older SET is refused before the replay check. */
                .jti_before = now > age ? now - age : 0,
                .batch = PRUNE_BATCH,
        };
        StorePruneCounts pc = {};
        int n = 0, r;

        pthread_mutex_lock(&m->state.lock);
        if (!pruning)
                n = store_detections_expire(m->state.store, now);
        if (n > 0) {
                log_info("%d detection(s) expired", n);
                (void) state_publish_levels_locked(&m->state, c);
        }
        r = store_prune(m->state.store, &lim, &pc);
        pthread_mutex_unlock(&m->state.lock);
        state_config_unref(&m->state, h);
        if (r < 0)
                log_warning_errno(r, "Cannot prune the state database: %m");
        else if (pc.history + pc.actions + pc.sets + pc.jti > 0)
                log_debug("Pruned %u history row(s), %u action(s), %u SET claim(s), %u jti(s)%s",
                          pc.history, pc.actions, pc.sets, pc.jti, pc.more ? ", more to do" : "");
        pruning = r >= 0 && pc.more;
        (void) sd_event_now(sd_event_source_get_event(s), CLOCK_MONOTONIC, &next);
        (void) sd_event_source_set_time(s, pruning ? next + PRUNE_AGAIN_USEC
                                                   : usec + EXPIRY_INTERVAL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        Config *c = NULL;
        const Config *old;
        int r;

        (void) sd_notify(false, "RELOADING=1");
        log_info("Reloading configuration from '%s'", m->config_path);
        {
                ConfigHandle *oh = state_config_ref(&m->state);

                /* The running configuration: what it was already warned about is not again. */
                old = oh->config;
                r = config_reload(m->config_path, true, old, &c);
                if (r >= 0 && (!streq_ptr(old->socket_path, c->socket_path) ||
                               !streq_ptr(old->state_dir, c->state_dir)))
                        log_warning("socket and state_dir changes take effect after a restart");
                state_config_unref(&m->state, oh);
        }
        if (r < 0) {
                log_error("New configuration is invalid, keeping the running one");
                (void) sd_notify(false, "READY=1\nSTATUS=Reload failed, running configuration kept");
                return 0;
        }
        r = state_config_replace(&m->state, c);
        if (r >= 0) {
                pthread_mutex_lock(&m->state.lock);
                r = state_transmitters_sync_locked(&m->state, c);
                (void) state_publish_levels_locked(&m->state, c);
                pthread_mutex_unlock(&m->state.lock);
        }
        if (r < 0) {
                log_error("Out of memory, keeping the running configuration");
                (void) sd_notify(false, "READY=1\nSTATUS=Reload failed, running configuration kept");
                return 0;
        }
        /* The worker classifies events and maps subjects with the configuration too: start a
         * new one (the old one flushes its acknowledgements first). */
        if (broker_restart(m->broker) < 0)
                log_error("Cannot restart the network worker after the reload");
        log_info("Configuration reloaded");
        (void) sd_notify(false, "READY=1\nSTATUS=Running");
        return 0;
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_info("Received %s, stopping", strsignal((int) si->ssi_signo));
        (void) sd_notify(false, "STOPPING=1");
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

int manager_new(const char *config_path, Config *config, Manager **ret) {
        _cleanup_free_ char *db = NULL;
        Manager *m;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m) {
                config_free(config);
                return -ENOMEM;
        }
        r = state_init(&m->state, config);
        if (r < 0)
                goto fail;
        m->config_path = strdup(config_path);
        if (!m->config_path) {
                r = -ENOMEM;
                goto fail;
        }

        if (mkdir(config->state_dir, 0700) < 0 && errno != EEXIST) {
                r = log_error_errno(errno, "Cannot create state directory '%s': %m",
                                    config->state_dir);
                goto fail;
        }
        if (asprintf(&db, "%s/state.db", config->state_dir) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        r = store_open(db, &m->state.store);
        if (r < 0) {
                log_error_errno(r, "Cannot open the state database '%s': %m", db);
                goto fail;
        }
        *ret = m;
        return 0;
fail:
        manager_free(m);
        return r;
}

Manager *manager_free(Manager *m) {
        if (!m || m->threads_alive)
                return NULL; /* the process exits: the running thread still uses m */
        m->broker = broker_free(m->broker);
        ipc_server_free(m->ipc);
        sd_event_source_unref(m->wake_source);
        sd_event_unref(m->event);
        state_done(&m->state);
        free(m->config_path);
        free(m);
        return NULL;
}

/* Waits for the actions' threads until STOP_GRACE_USEC after started (CLOCK_REALTIME, the
 * clock of pthread_timedjoin_np()). */
static void join_threads(Manager *m, const struct timespec *started) {
        struct timespec ts = *started;

        ts.tv_sec += STOP_GRACE_USEC / 1000000u;
        if (!actions_join(m->actions, &ts)) {
                m->threads_alive = true;
                log_warning("An action is still running at shutdown; it stays pending and runs "
                            "again at the next start");
        } else
                m->actions = actions_free(m->actions);
}

int manager_run(Manager *m) {
        struct timespec stop_started;
        ConfigHandle *h;
        sigset_t ss;
        uint64_t now;
        int r;

        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Cannot create the event loop: %m");

        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGPIPE);
        /* Block before creating threads so they inherit the mask. */
        pthread_sigmask(SIG_BLOCK, &ss, NULL);
        r = sd_event_add_signal(m->event, NULL, SIGTERM, on_sigterm, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, on_sigterm, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGHUP, on_sighup, m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch signals: %m");

        m->state.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->state.wake_fd < 0)
                return log_error_errno(errno, "eventfd: %m");
        r = sd_event_add_io(m->event, &m->wake_source, m->state.wake_fd, EPOLLIN, on_wake, m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the wake-up fd: %m");

        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        r = sd_event_add_time(m->event, NULL, CLOCK_MONOTONIC, now + EXPIRY_INTERVAL_USEC,
                              1000000u, on_expiry, m);
        if (r < 0)
                return log_error_errno(r, "Cannot add the expiry timer: %m");
        r = sd_event_add_time(m->event, NULL, CLOCK_MONOTONIC, now + VERIFY_CHECK_USEC, 1000000u,
                              on_verify_timer, m);
        if (r < 0)
                return log_error_errno(r, "Cannot add the verification timer: %m");
        (void) sd_event_set_watchdog(m->event, true);

        r = broker_new(&m->state, m->event, m->config_path, m->foreground, &m->broker);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the network worker's supervision: %m");
        h = state_config_ref(&m->state);
        /* What PAM is answered from is in memory before the first query can arrive. */
        pthread_mutex_lock(&m->state.lock);
        (void) store_detections_expire(m->state.store, now_sec());
        r = state_publish_levels_locked(&m->state, h->config);
        pthread_mutex_unlock(&m->state.lock);
        if (r < 0)
                log_warning_errno(r, "The PAM snapshot could not be written: %m");
        r = ipc_server_new(&m->state, m->event, m->broker, h->config->socket_path, &m->ipc);
        state_config_unref(&m->state, h);
        if (r < 0)
                return r;

        r = actions_start(&m->state, &m->actions);
        if (r < 0)
                return log_error_errno(r, "Cannot start the action threads: %m");
        /* The front thread (PAM) and the action lanes exist: from here on the main loop —
         * commits, ssfctl, supervision — runs below them, and so does the network worker it
         * forks (nice and policy are inherited), restarts included. */
        state_thread_background(&m->state, PRIO_MAIN_NICE);
        r = broker_start(m->broker);
        if (r < 0) {
                pthread_mutex_lock(&m->state.lock);
                state_stop_actions_locked(&m->state);
                pthread_mutex_unlock(&m->state.lock);
                clock_gettime(CLOCK_REALTIME, &stop_started);
                join_threads(m, &stop_started);
                return log_error_errno(r, "Cannot start the network worker: %m");
        }

        (void) sd_notify(false, "READY=1\nSTATUS=Running");
        log_info("ssf-sessiond " SSF_VERSION " running");
        r = sd_event_loop(m->event);

        /* One budget for the whole shutdown (SIGTERM must end within 5 s): the actions' threads
         * learn at once, and waits for them count from here. */
        clock_gettime(CLOCK_REALTIME, &stop_started);
        pthread_mutex_lock(&m->state.lock);
        state_stop_actions_locked(&m->state);
        pthread_mutex_unlock(&m->state.lock);
        /* A running hook is stopped; its action stays pending for the next start. */
        if (m->state.cancel_fd >= 0)
                (void) !write(m->state.cancel_fd, &(uint64_t){ 1 }, sizeof(uint64_t));
        /* The worker flushes its acknowledgements; what it still sends is committed. */
        broker_stop(m->broker, STOP_GRACE_USEC - 1000000u);
        join_threads(m, &stop_started);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        log_info("Stopped");
        return 0;
}
