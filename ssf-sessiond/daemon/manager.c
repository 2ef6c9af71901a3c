/* SPDX-License-Identifier: MIT */
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

ConfigHandle *manager_config_ref(Manager *m) {
        ConfigHandle *h;

        pthread_mutex_lock(&m->lock);
        h = m->config;
        h->n_ref++;
        pthread_mutex_unlock(&m->lock);
        return h;
}

static void config_handle_unref_locked(ConfigHandle *h) {
        if (h && --h->n_ref == 0) {
                config_free(h->config);
                free(h);
        }
}

void manager_config_unref(Manager *m, ConfigHandle *h) {
        pthread_mutex_lock(&m->lock);
        config_handle_unref_locked(h);
        pthread_mutex_unlock(&m->lock);
}

void manager_kick_actions_locked(Manager *m) {
        m->actions_kick = true;
        pthread_cond_broadcast(&m->action_cond);
}

void manager_wake(Manager *m) {
        uint64_t one = 1;
        if (m->wake_fd >= 0)
                (void) !write(m->wake_fd, &one, sizeof(one));
}

int manager_write_snapshot_locked(Manager *m, const Config *c) {
        StoreUser *users = NULL;
        SsfSnapshotEntry *e = NULL;
        size_t n = 0;
        int r;

        r = store_users_list(m->store, now_sec(), &users, &n);
        if (r < 0)
                return log_warning_errno(r, "Cannot list users for the PAM snapshot: %m");
        e = calloc(MAX(n, (size_t) 1), sizeof(*e));
        if (!e) {
                store_users_free(users, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                e[i] = (SsfSnapshotEntry){ users[i].user, users[i].level, users[i].until };
        r = ssf_snapshot_write(c->snapshot_path, e, n);
        if (r < 0)
                log_warning_errno(r, "Cannot write the PAM snapshot '%s': %m", c->snapshot_path);
        free(e);
        store_users_free(users, n);
        return r;
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        uint64_t v;

        (void) !read(fd, &v, sizeof(v));
        ipc_server_dispatch_waiting(m->ipc);
        return 0;
}

int manager_request_verification(Manager *m, char state[static 33]) {
        uint8_t rnd[16];
        int fd, r;

        fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = (int) read(fd, rnd, sizeof(rnd));
        safe_close(fd);
        if (r != (int) sizeof(rnd))
                return -EIO;
        for (size_t i = 0; i < sizeof(rnd); i++)
                (void) snprintf(state + 2 * i, 3, "%02x", rnd[i]);

        pthread_mutex_lock(&m->lock);
        if (!m->stream.stream_id) {
                pthread_mutex_unlock(&m->lock);
                return -ENOENT;
        }
        if (m->stream.verify_state) {
                memmove(m->stream.recent_states[1], m->stream.recent_states[0],
                        sizeof(m->stream.recent_states) - sizeof(m->stream.recent_states[0]));
                (void) snprintf(m->stream.recent_states[0], sizeof(m->stream.recent_states[0]),
                                "%s", m->stream.verify_state);
        }
        free(m->stream.verify_state);
        free(m->stream.verify_result);
        m->stream.verify_state = strdup(state);
        m->stream.verify_result = NULL;
        m->stream.verify_received = false;
        m->stream.verify_requested = now_sec();
        m->stream.verify_warned = false;
        pthread_mutex_unlock(&m->lock);
        return broker_request_verify(m, state);
}

/* [transmitter] verify_interval: ask the transmitter for a verification event now and then
 * (never more often than its min_verification_interval) and say so when none arrives. */
static int on_verify_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        ConfigHandle *h = manager_config_ref(m);
        uint64_t interval = h->config->verify_interval_usec / 1000000u, now = now_sec(), min = 0;
        bool due, overdue = false;
        char state[33];

        manager_config_unref(m, h);
        (void) sd_event_source_set_time(s, usec + VERIFY_CHECK_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        if (interval == 0)
                return 0;

        pthread_mutex_lock(&m->lock);
        if (m->stream.config_json && now >= m->stream.verify_requested + interval) {
                json_t *cfg = json_loads(m->stream.config_json, 0, NULL);
                json_t *v = json_object_get(cfg, "min_verification_interval");
                if (json_is_integer(v) && json_integer_value(v) > 0)
                        min = (uint64_t) json_integer_value(v);
                json_decref(cfg);
        }
        interval = MAX(interval, min);
        /* Not while the previous request may still be answered. */
        due = m->stream.stream_id && now >= m->stream.verify_requested + interval &&
              (!m->stream.verify_state || m->stream.verify_received ||
               now >= m->stream.verify_requested + VERIFY_GRACE_SEC);
        if (m->stream.verify_state && !m->stream.verify_received && !m->stream.verify_warned &&
            m->stream.verify_requested && now >= m->stream.verify_requested + VERIFY_GRACE_SEC) {
                m->stream.verify_warned = true;
                overdue = true;
        }
        pthread_mutex_unlock(&m->lock);

        if (overdue)
                log_struct(LOG_WARNING, SSF_MESSAGE_STREAM,
                           "No verification event arrived for the last verification request: "
                           "events may not be flowing", "SSF_VERIFICATION=missing", NULL);
        if (due && manager_request_verification(m, state) >= 0)
                log_debug("Requested stream verification");
        return 0;
}

static int on_expiry(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        ConfigHandle *h = manager_config_ref(m);
        int n;

        pthread_mutex_lock(&m->lock);
        n = store_detections_expire(m->store, now_sec());
        if (n > 0) {
                log_info("%d detection(s) expired", n);
                (void) manager_write_snapshot_locked(m, h->config);
        }
        (void) store_jti_prune(m->store, now_sec() - 30u * 24u * 3600u);
        pthread_mutex_unlock(&m->lock);
        manager_config_unref(m, h);
        (void) sd_event_source_set_time(s, usec + EXPIRY_INTERVAL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        Config *c = NULL;
        ConfigHandle *h, *old;
        int r;

        (void) sd_notify(false, "RELOADING=1");
        log_info("Reloading configuration from '%s'", m->config_path);
        r = config_load(m->config_path, true, &c);
        if (r < 0) {
                log_error("New configuration is invalid, keeping the running one");
                (void) sd_notify(false, "READY=1\nSTATUS=Reload failed, running configuration kept");
                return 0;
        }
        h = config_handle_new(c);
        if (!h) {
                config_free(c);
                log_error("Out of memory, keeping the running configuration");
                (void) sd_notify(false, "READY=1\nSTATUS=Reload failed, running configuration kept");
                return 0;
        }
        pthread_mutex_lock(&m->lock);
        old = m->config;
        if (!streq_ptr(old->config->socket_path, c->socket_path) ||
            !streq_ptr(old->config->state_dir, c->state_dir))
                log_warning("socket and state_dir changes take effect after a restart");
        m->config = h;
        config_handle_unref_locked(old);
        (void) manager_write_snapshot_locked(m, c);
        pthread_mutex_unlock(&m->lock);
        /* The worker classifies events and maps subjects with the configuration too: start a
         * new one (the old one flushes its acknowledgements first). */
        if (broker_restart(m) < 0)
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
        pthread_condattr_t ca;
        Manager *m;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        pthread_mutex_init(&m->lock, NULL);
        /* Waits are measured on CLOCK_MONOTONIC: a wall clock stepped back must not stall
         * the poll and action threads. */
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&m->action_cond, &ca);
        pthread_condattr_destroy(&ca);
        m->wake_fd = -EBADF;
        m->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->cancel_fd < 0) {
                r = -errno;
                goto fail;
        }
        m->started = now_sec();
        m->actions_kick = true; /* run what a previous instance left pending */
        m->config_path = strdup(config_path);
        m->config = config_handle_new(config);
        if (!m->config_path || !m->config) {
                if (!m->config)
                        config_free(config);
                manager_free(m);
                return -ENOMEM;
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
        r = store_open(db, &m->store);
        if (r < 0) {
                log_error_errno(r, "Cannot open the state database '%s': %m", db);
                goto fail;
        }
        m->stream.status = strdup("starting");
        *ret = m;
        return 0;
fail:
        manager_free(m);
        return r;
}

Manager *manager_free(Manager *m) {
        if (!m || m->threads_alive)
                return NULL; /* the process exits: the running thread still uses m */
        broker_free(m);
        ipc_server_free(m->ipc);
        sd_event_source_unref(m->wake_source);
        safe_close(m->wake_fd);
        safe_close(m->cancel_fd);
        sd_event_unref(m->event);
        store_free(m->store);
        if (m->config)
                config_handle_unref_locked(m->config);
        free(m->config_path);
        free(m->stream.stream_id);
        free(m->stream.issuer);
        free(m->stream.status);
        free(m->stream.endpoint_url);
        free(m->stream.audience);
        free(m->stream.delivery);
        free(m->stream.config_json);
        free(m->stream.events_delivered_json);
        free(m->stream.verification_endpoint);
        free(m->stream.last_error);
        free(m->stream.verify_state);
        free(m->stream.verify_result);
        pthread_cond_destroy(&m->action_cond);
        pthread_mutex_destroy(&m->lock);
        free(m);
        return NULL;
}

/* Waits for the action thread until STOP_GRACE_USEC after started (CLOCK_REALTIME, the clock
 * of pthread_timedjoin_np()). */
static void join_threads(Manager *m, const struct timespec *started) {
        struct timespec ts = *started;

        ts.tv_sec += STOP_GRACE_USEC / 1000000u;
        if (m->action_thread_started && pthread_timedjoin_np(m->action_thread, NULL, &ts) != 0) {
                m->threads_alive = true;
                log_warning("An action is still running at shutdown; it stays pending and runs "
                            "again at the next start");
        }
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

        m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->wake_fd < 0)
                return log_error_errno(errno, "eventfd: %m");
        r = sd_event_add_io(m->event, &m->wake_source, m->wake_fd, EPOLLIN, on_wake, m);
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

        h = manager_config_ref(m);
        r = ipc_server_new(m, h->config->socket_path, &m->ipc);
        if (r >= 0) {
                pthread_mutex_lock(&m->lock);
                (void) store_detections_expire(m->store, now_sec());
                (void) manager_write_snapshot_locked(m, h->config);
                pthread_mutex_unlock(&m->lock);
        }
        manager_config_unref(m, h);
        if (r < 0)
                return r;

        r = pthread_create(&m->action_thread, NULL, actions_thread, m);
        if (r != 0)
                return log_error_errno(r, "Cannot start the action thread: %m");
        m->action_thread_started = true;
        r = broker_start(m);
        if (r < 0) {
                pthread_mutex_lock(&m->lock);
                m->stopping = 1;
                pthread_cond_broadcast(&m->action_cond);
                pthread_mutex_unlock(&m->lock);
                clock_gettime(CLOCK_REALTIME, &stop_started);
                join_threads(m, &stop_started);
                return log_error_errno(r, "Cannot start the network worker: %m");
        }

        (void) sd_notify(false, "READY=1\nSTATUS=Running");
        log_info("ssf-sessiond " SSF_VERSION " running");
        r = sd_event_loop(m->event);

        /* One budget for the whole shutdown (SIGTERM must end within 5 s): the action thread
         * learns at once, and waits for it count from here. */
        clock_gettime(CLOCK_REALTIME, &stop_started);
        pthread_mutex_lock(&m->lock);
        m->stopping = 1;
        pthread_cond_broadcast(&m->action_cond);
        pthread_mutex_unlock(&m->lock);
        /* A running hook is stopped; its action stays pending for the next start. */
        if (m->cancel_fd >= 0)
                (void) !write(m->cancel_fd, &(uint64_t){ 1 }, sizeof(uint64_t));
        /* The worker flushes its acknowledgements; what it still sends is committed. */
        broker_stop(m, STOP_GRACE_USEC - 1000000u);
        join_threads(m, &stop_started);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        log_info("Stopped");
        return 0;
}
