/* SPDX-License-Identifier: MIT */
/*
 * Supervision of the network workers (broker.h), one per poll transmitter and one for all push
 * transmitters (they share the one push listener): starts each, answers their messages on the
 * main loop, and restarts each with its own backoff, so that one poll transmitter's failure
 * never holds up another's. Each transmitter has its own channel, also when it shares its
 * worker: root knows the transmitter of every message by the channel it arrives on, never by
 * the worker's word. Runs in the root daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "killas.h"
#include "engine.h"
#include "ingest.h"
#include "subject.h"
#include "link.h"
#include "log.h"
#include "privsep.h"
#include "macro.h"

#define RESTART_MIN_USEC (1u * 1000000u)
#define RESTART_MAX_USEC (60u * 1000000u)
#define LINK_BUFFER (1024 * 1024)
/* Messages handled per wake-up; then the loop serves everything else before the next batch. */
#define BATCH 16u
/* More messages a second than this is a flood: the real worker waits for each request's reply
 * (a commit, well under 10000 a second; at most LINK_BATCH_AHEAD ingest-batches are sent ahead
 * of their answers)
 * and sends one "facts" per poll or pushed SET. */
#define MAX_MESSAGES_PER_SEC 20000u
/* A worker that closed its channel has this long to exit before it is killed. */
#define LINGER_USEC (3u * 1000000u)
/* Without pidfds (Linux < 5.3), how often an exiting worker is looked for. */
#define REAP_POLL_USEC (100u * 1000u)

typedef struct Worker Worker;
typedef struct Supervisor Supervisor;

/* One transmitter's supervision: its worker (the current one; retiring ones too) is started
 * with the transmitter's name, and every message on that worker's channel is about that
 * transmitter. */
struct Supervisor {
        Broker *broker;
        char name[TRANSMITTER_NAME_MAX + 1];
        sd_event_source *restart_timer;
        uint64_t backoff;
        bool removed;     /* no longer configured: never restarted */
};

/* A worker is on the Broker's list from its start until it is reaped. Its channel may close
 * first (it closed it, or root did); the process is then reaped when it exits — watched
 * through a pidfd, never waited for — and killed when it does not exit in time. */
struct Worker {
        Broker *broker;
        Supervisor *sup;
        Worker *next;
        pid_t pid;       /* 0 once reaped */
        uid_t uid;       /* the user it runs as once it dropped privileges */
        int fd;          /* the channel, -EBADF once closed */
        int pidfd;       /* -EBADF when the kernel has none */
        sd_event_source *io, *child, *kill_timer;
        LinkQueue out;   /* replies and commands the socket did not take yet */
        LinkRate rate;
        bool retiring;   /* asked to stop, or its channel is closed */
        bool killed;
        uint64_t started; /* CLOCK_MONOTONIC µs */
};

struct Broker {
        State *state;
        sd_event *event;
        const char *config_path; /* the daemon's: the worker reads the same file */
        bool foreground;
        Worker *workers;  /* every transmitter's: current ones and retiring ones */
        Supervisor **sups;
        size_t n_sups;
        bool stopping;
        char *buf;        /* one received frame */
};

static Worker *current(Supervisor *sup) {
        for (Worker *w = sup->broker->workers; w; w = w->next)
                if (w->sup == sup && !w->retiring)
                        return w;
        return NULL;
}

static Supervisor *supervisor(Broker *b, const char *name) {
        for (size_t i = 0; name && i < b->n_sups; i++)
                if (!b->sups[i]->removed && streq(b->sups[i]->name, name))
                        return b->sups[i];
        return NULL;
}

static uint64_t mono_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* Closes the channel (the process may still run). */
static void worker_close_channel(Worker *w) {
        w->retiring = true;
        w->io = sd_event_source_disable_unref(w->io);
        w->fd = safe_close(w->fd);
        link_queue_done(&w->out);
}

/* Sends SIGKILL without waiting: through the pidfd, else by pid (the process is not reaped yet,
 * so the pid is still its own), as its user when root lacks CAP_KILL. */
static void worker_kill(Worker *w) {
        int r = -ESRCH;

        if (w->pid <= 0 || w->killed)
                return;
        if (w->pidfd >= 0 && pidfd_send_signal(w->pidfd, SIGKILL, NULL, 0) >= 0)
                r = 0;
        else if (w->pidfd < 0 || errno == EPERM || errno == ENOSYS)
                r = kill_as(w->uid, w->pid, SIGKILL);
        else
                r = -errno;
        if (r < 0 && r != -ESRCH)
                log_error_errno(r, "Cannot kill network worker " PID_FMT ": %m", w->pid);
        else
                w->killed = true;
}

/* Unlinks and frees w; the caller made sure it is reaped (or the daemon exits). */
static void worker_free(Worker *w) {
        Broker *b = w->broker;

        for (Worker **p = &b->workers; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        break;
                }
        worker_close_channel(w);
        w->child = sd_event_source_disable_unref(w->child);
        w->kill_timer = sd_event_source_disable_unref(w->kill_timer);
        w->pidfd = safe_close(w->pidfd);
        free(w);
}

/* Reaps w when it has exited, without waiting. Returns true when it was reaped. */
static bool worker_try_reap(Worker *w) {
        int status;
        pid_t p;

        if (w->pid <= 0)
                return true;
        p = waitpid(w->pid, &status, WNOHANG);
        if (p == 0 || (p < 0 && errno == EINTR))
                return false;
        if (p == w->pid) {
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                        log_debug("Network worker " PID_FMT " exited", w->pid);
                else if (WIFEXITED(status))
                        log_warning("Network worker " PID_FMT " exited with status %d", w->pid,
                                    WEXITSTATUS(status));
                else if (WIFSIGNALED(status) && !(w->killed && WTERMSIG(status) == SIGKILL))
                        log_warning("Network worker " PID_FMT " was killed by signal %d", w->pid,
                                    WTERMSIG(status));
                else if (WIFSIGNALED(status))
                        log_info("Network worker " PID_FMT " was killed", w->pid);
        }
        if (p == w->pid)
                /* The other channels of the same process (push transmitters sharing one
                 * worker): the pid is no longer theirs to signal or wait for. */
                for (Worker *o = w->broker->workers; o; o = o->next)
                        if (o != w && o->pid == w->pid)
                                o->pid = 0;
        w->pid = 0; /* reaped, or not ours to wait for (ECHILD) */
        return true;
}

static void worker_gone(Worker *w, int error, bool kill_it);

/* The worker process exited (its pidfd is readable), or, without pidfds, a periodic look. */
static void worker_exited(Worker *w) {
        if (!worker_try_reap(w))
                return;
        /* Whoever holds its end of the channel now (a child it left behind) is not our worker. */
        if (w->fd >= 0)
                worker_gone(w, -ECONNRESET, false);
        else
                worker_free(w);
}

static int on_child(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        worker_exited(userdata);
        return 0;
}

static int on_reap_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        Worker *w = userdata;

        (void) sd_event_source_set_time(s, usec + REAP_POLL_USEC);
        worker_exited(w);
        return 0;
}

/* Makes sure w is reaped when it exits: its pidfd is watched from the start; without one, a
 * timer looks once its channel is closed. */
static int worker_watch_exit(Worker *w) {
        int r;

        if (w->child)
                return 0;
        if (w->pidfd >= 0) {
                r = sd_event_add_io(w->broker->event, &w->child, w->pidfd, EPOLLIN, on_child, w);
                if (r >= 0)
                        /* After the channel: what the worker sent before it exited is read first. */
                        (void) sd_event_source_set_priority(w->child, SD_EVENT_PRIORITY_NORMAL + 2);
                return r;
        }
        if (w->fd >= 0)
                return 0; /* its channel closes when it exits */
        r = sd_event_add_time_relative(w->broker->event, &w->child, CLOCK_MONOTONIC, REAP_POLL_USEC,
                                       0, on_reap_poll, w);
        if (r >= 0)
                (void) sd_event_source_set_enabled(w->child, SD_EVENT_ON);
        return r;
}

static int on_kill_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Worker *w = userdata;

        w->kill_timer = sd_event_source_disable_unref(w->kill_timer);
        if (w->fd >= 0)
                log_warning("Network worker " PID_FMT " did not stop in time, killing it", w->pid);
        else
                log_warning("Network worker " PID_FMT " closed its channel but did not exit, "
                            "killing it", w->pid);
        worker_kill(w);
        return 0;
}

static void worker_arm_kill_timer(Worker *w, uint64_t usec) {
        if (w->kill_timer || w->pid <= 0)
                return;
        if (sd_event_add_time_relative(w->broker->event, &w->kill_timer, CLOCK_MONOTONIC, usec, 0,
                                       on_kill_timer, w) < 0)
                worker_kill(w);
}

/* Sends msg to w without blocking (queued while the socket is full). A worker whose queue
 * overflows does not read what root sends: it is killed. Returns 0, or -ENOBUFS/-errno when
 * w was stopped for it (w may be freed then). */
static int worker_send(Worker *w, json_t *msg) {
        int r;

        if (w->fd < 0)
                return -ENOTCONN;
        r = link_queue_send(&w->out, w->fd, msg);
        if (r == 1 && link_queue_length(&w->out) == 1)
                (void) sd_event_source_set_io_events(w->io, EPOLLIN | EPOLLOUT);
        if (r >= 0 || r == -EMSGSIZE || r == -ENOMEM)
                return r < 0 ? r : 0;
        if (r == -ENOBUFS) {
                log_error("Network worker " PID_FMT " does not read what root sends (%zu "
                          "messages queued): killing it", w->pid, link_queue_length(&w->out));
                worker_gone(w, -EPROTO, true);
        } else if (r == -EPIPE || r == -ECONNRESET)
                worker_gone(w, -ECONNRESET, false);
        else
                worker_gone(w, r, true);
        return r;
}

static int send_stop(Worker *w) {
        json_t *msg = json_pack("{s:s}", "type", "stop");
        int r;

        if (!msg)
                return -ENOMEM;
        r = worker_send(w, msg);
        json_decref(msg);
        return r;
}

/* The reply to request id; NULL when out of memory. */
static json_t *make_reply(json_t *id, int status, const SetError *err, const char *value) {
        json_t *msg = json_pack("{s:s, s:O, s:i}", "type", "reply", "id", id, "status", status);

        if (!msg)
                return NULL;
        if (err && err->err) {
                json_object_set_new(msg, "err", json_string(err->err));
                json_object_set_new(msg, "description", json_string(err->description));
        }
        if (value)
                json_object_set_new(msg, "value", json_string(value));
        return msg;
}

static bool text_ok(const char *s, size_t max) {
        if (!s || strlen(s) > max)
                return false;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

/* Only these facts may be kept for the worker. */
static bool kv_key_ok(const char *key) {
        return streq_ptr(key, "stream_id") || streq_ptr(key, "push_secret");
}

/* The store's key of a worker's fact: the transmitter named default keeps the keys a single
 * transmitter always had (an existing state directory is its state); another's carry its
 * name. */
static int kv_key(const char *transmitter, const char *key, char *buf, size_t size) {
        if (!transmitter || streq(transmitter, "default"))
                (void) snprintf(buf, size, "%s", key);
        else if ((size_t) snprintf(buf, size, "transmitter/%s/%s", transmitter, key) >= size)
                return -ENAMETOOLONG;
        return 0;
}

static void set_fact(char **field, json_t *v, size_t max) {
        const char *s = json_string_value(v);

        if (json_is_null(v)) {
                *field = mfree(*field);
                return;
        }
        if (!text_ok(s, max))
                return;
        free(*field);
        *field = strdup(s);
}

static void handle_facts(State *st, const char *transmitter, json_t *msg) {
        json_t *stream = json_object_get(msg, "stream");
        json_t *counters = json_object_get(msg, "counters");
        static const struct {
                const char *name;
                size_t offset;
        } known[] = {
                { "sets_received", offsetof(Counters, sets_received) },
                { "sets_acknowledged", offsetof(Counters, sets_acknowledged) },
                { "sets_rejected", offsetof(Counters, sets_rejected) },
                { "polls", offsetof(Counters, polls) },
                { "poll_errors", offsetof(Counters, poll_errors) },
        };

        TransmitterState *ts;

        pthread_mutex_lock(&st->lock);
        ts = state_transmitter(st, transmitter);
        if (!ts) {
                pthread_mutex_unlock(&st->lock);
                return;
        }
        if (json_is_object(counters))
                for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
                        json_t *v = json_object_get(counters, known[i].name);
                        if (json_is_integer(v) && json_integer_value(v) > 0 &&
                            json_integer_value(v) < 1000000) {
                                *(uint64_t *) ((uint8_t *) &st->counters + known[i].offset) +=
                                        (uint64_t) json_integer_value(v);
                                *(uint64_t *) ((uint8_t *) &ts->counters + known[i].offset) +=
                                        (uint64_t) json_integer_value(v);
                        }
                }
        if (json_is_object(stream)) {
                const char *status = json_string_value(json_object_get(stream, "status"));
                json_t *cfg = json_object_get(stream, "config");
                json_t *lp = json_object_get(stream, "last_poll");

                set_fact(&ts->stream.stream_id, json_object_get(stream, "stream_id"), 256);
                set_fact(&ts->stream.issuer, json_object_get(stream, "issuer"), 2048);
                set_fact(&ts->stream.endpoint_url, json_object_get(stream, "endpoint_url"), 2048);
                set_fact(&ts->stream.audience, json_object_get(stream, "audience"), 2048);
                set_fact(&ts->stream.delivery, json_object_get(stream, "delivery"), 256);
                set_fact(&ts->stream.verification_endpoint,
                         json_object_get(stream, "verification_endpoint"), 2048);
                if (json_object_get(stream, "last_error"))
                        set_fact(&ts->stream.last_error, json_object_get(stream, "last_error"), 512);
                if (json_is_integer(lp) && json_integer_value(lp) > 0)
                        ts->stream.last_poll = (uint64_t) json_integer_value(lp);
                /* The worker knows whether the transmitter answers; stream-updated events
                 * (applied by the engine) know whether it is paused or disabled. */
                if (streq_ptr(status, "error"))
                        set_fact(&ts->stream.status, json_object_get(stream, "status"), 32);
                else if (streq_ptr(status, "enabled") &&
                         (!ts->stream.status || streq(ts->stream.status, "starting") ||
                          streq(ts->stream.status, "error") || streq(ts->stream.status, "deleted")))
                        set_fact(&ts->stream.status, json_object_get(stream, "status"), 32);
                /* Read from the status endpoint at setup: what the transmitter says now. */
                {
                        const char *tst = json_string_value(json_object_get(stream,
                                                                            "transmitter_status"));
                        if (streq_ptr(tst, "enabled") || streq_ptr(tst, "paused") ||
                            streq_ptr(tst, "disabled"))
                                set_fact(&ts->stream.status,
                                         json_object_get(stream, "transmitter_status"), 32);
                }
                if (json_is_object(cfg)) {
                        char *text = json_dumps(cfg, JSON_COMPACT);
                        if (text && strlen(text) <= 64u * 1024u) {
                                free(ts->stream.config_json);
                                ts->stream.config_json = text;
                                free(ts->stream.events_delivered_json);
                                ts->stream.events_delivered_json =
                                        json_dumps(json_object_get(cfg, "events_delivered"),
                                                   JSON_COMPACT | JSON_ENCODE_ANY);
                        } else
                                free(text);
                }
        }
        pthread_mutex_unlock(&st->lock);
}

static int msg_facts(State *st, const char *transmitter, json_t *msg, json_t *id, json_t **ret) {
        json_t *stream = json_object_get(msg, "stream"), *counters = json_object_get(msg, "counters");

        if ((stream && !json_is_object(stream)) || (counters && !json_is_object(counters)))
                return -EPROTO;
        handle_facts(st, transmitter, msg);
        return 0;
}

static int msg_verify_result(State *st, const char *transmitter, json_t *msg, json_t *id,
                             json_t **ret) {
        const char *state = json_string_value(json_object_get(msg, "state"));
        const char *result = json_string_value(json_object_get(msg, "result"));
        TransmitterState *ts;

        if (!state || !result)
                return -EPROTO;
        pthread_mutex_lock(&st->lock);
        ts = state_transmitter(st, transmitter);
        /* A result for a state asked for earlier is a benign race, not a violation. */
        if (ts && ts->stream.verify_state && streq(state, ts->stream.verify_state) &&
            !ts->stream.verify_received && text_ok(result, 256)) {
                free(ts->stream.verify_result);
                ts->stream.verify_result = strdup(result);
        }
        pthread_mutex_unlock(&st->lock);
        state_wake(st);
        return 0;
}

/* The outcome of an administration request (broker_admin()). One for a request never made, or
 * made long ago (its slot reused), is ignored: a compromised worker learns nothing from it and
 * can only mislead an admin about its own calls. */
static int msg_admin_result(State *st, const char *transmitter, json_t *msg, json_t *id,
                            json_t **ret) {
        json_t *rid = json_object_get(msg, "id"), *status = json_object_get(msg, "status");
        const char *text = json_string_value(json_object_get(msg, "message"));
        TransmitterState *ts;
        char k[128];
        uint64_t n;

        if (!json_is_integer(rid) || json_integer_value(rid) <= 0 || !json_is_integer(status) ||
            json_integer_value(status) > 0 || json_integer_value(status) < -4095 ||
            (text && !text_ok(text, 511)))
                return -EPROTO;
        n = (uint64_t) json_integer_value(rid);
        if (kv_key(transmitter, "stream_id", k, sizeof(k)) < 0)
                return -EPROTO;
        pthread_mutex_lock(&st->lock);
        ts = state_transmitter(st, transmitter);
        if (ts && n <= ts->stream.admin_last_id) {
                typeof(ts->stream.admin[0]) *a = &ts->stream.admin[n % ARRAY_SIZE(ts->stream.admin)];

                if (a->id == n && !a->done) {
                        a->done = true;
                        a->status = (int) json_integer_value(status);
                        (void) snprintf(a->message, sizeof(a->message), "%s", strempty(text));
                        if (a->status >= 0 && streq(a->op, "delete")) {
                                /* Forgotten here: the worker stays idle until `ssfctl stream
                                 * create` or a restart of the daemon. */
                                ts->stream.deleted = true;
                                (void) store_kv_set(st->store, k, "");
                                ts->stream.stream_id = mfree(ts->stream.stream_id);
                                ts->stream.config_json = mfree(ts->stream.config_json);
                                ts->stream.events_delivered_json =
                                        mfree(ts->stream.events_delivered_json);
                                free(ts->stream.status);
                                ts->stream.status = strdup("deleted");
                        } else if (a->status >= 0 && streq(a->op, "status")) {
                                json_t *v = json_object_get(msg, "stream_status");
                                const char *sv = json_string_value(v);

                                if (streq_ptr(sv, "enabled") || streq_ptr(sv, "paused") ||
                                    streq_ptr(sv, "disabled"))
                                        set_fact(&ts->stream.status, v, 32);
                        }
                }
        }
        pthread_mutex_unlock(&st->lock);
        state_wake(st);
        return 0;
}

/* subjects = local: the subjects of this host's accounts (subject_local_subjects()), computed
 * here from NSS and the configuration, never taken from the worker; and those handed out last
 * time that are no longer among them (accounts removed or protected since: to be removed from
 * the stream). What is handed out is remembered in the store ("local_subjects", a key the
 * worker cannot read or write). */
static int msg_local_subjects(State *st, const char *transmitter, json_t *msg, json_t *id,
                              json_t **ret) {
        _cleanup_(json_decrefp) json_t *subjects = NULL, *before = NULL, *removed = json_array();
        _cleanup_free_ char *text = NULL, *now = NULL;
        ConfigHandle *h = state_config_ref(st);
        const TransmitterConfig *tc = config_transmitter(h->config, transmitter);
        char error[256] = "", k[128];
        json_t *reply, *v;
        size_t i;
        int r;

        r = tc && tc->subjects_local && kv_key(transmitter, "local_subjects", k, sizeof(k)) >= 0
                ? subject_local_subjects(h->config, &subjects, error, sizeof(error))
                : -EPERM;
        state_config_unref(st, h);
        if (r < 0 && error[0])
                log_error("subjects = local: %s", error);
        if (r >= 0) {
                pthread_mutex_lock(&st->lock);
                if (store_kv_get(st->store, k, &text) >= 0)
                        before = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
                json_array_foreach(before, i, v) {
                        bool kept = false;
                        size_t j;
                        json_t *w;

                        json_array_foreach(subjects, j, w)
                                kept = kept || json_equal(v, w);
                        if (!kept && removed && json_array_size(removed) < LOCAL_SUBJECTS_MAX_USERS)
                                (void) json_array_append(removed, v);
                }
                now = json_dumps(subjects, JSON_COMPACT);
                if (now && store_kv_set(st->store, k, now) < 0)
                        log_warning("subjects = local: cannot remember the subjects handed out");
                pthread_mutex_unlock(&st->lock);
        }
        reply = make_reply(id, r, NULL, NULL);
        if (reply && r >= 0) {
                json_object_set(reply, "subjects", subjects);
                if (json_array_size(removed) > 0)
                        json_object_set(reply, "removed", removed);
        }
        *ret = reply;
        return reply ? 0 : -ENOMEM;
}

/* A record that is well-formed but past root's bounds: its SET is refused as invalid_request. */
static void refuse_past_bounds(SetError *err) {
        err->err = "invalid_request";
        (void) snprintf(err->description, sizeof(err->description), "%s", INGEST_PAST_BOUNDS);
        log_warning("Network worker handed over a record past its bounds, refusing the SET");
}

static int msg_ingest(State *st, const char *transmitter, json_t *msg, json_t *id, json_t **ret) {
        _cleanup_(ingest_request_done) IngestRequest req = {};
        SetError err = {};
        int r;

        r = ingest_from_json(json_object_get(msg, "request"), &req);
        if (r == -E2BIG) {
                /* Well-formed, past root's bounds: the SET is refused, the worker may stay. */
                refuse_past_bounds(&err);
                *ret = make_reply(id, -EBADMSG, &err, NULL);
                return 0;
        }
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EPROTO;
        /* Which transmitter the SET came from is root's to say: the channel it arrived on. */
        req.transmitter = transmitter;
        r = engine_apply(st, &req, &err);
        *ret = make_reply(id, r, &err, NULL);
        return 0;
}

static void ingest_request_array_free(IngestRequest *v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                ingest_request_done(&v[i]);
        free(v);
}

/* The records of an ingest-batch frame broker_ingest_batches() checked. */
static size_t frame_records(json_t *msg) {
        return (size_t) json_integer_value(json_object_get(msg, "records"));
}

/* The ingest-batch frames msgs[0..n) (consecutive on the channel) in one transaction: one synced
 * commit, then one answer for each frame with every result of its records, into replies[]. A
 * malformed frame is a protocol violation (-EPROTO), and then none is applied. */
int broker_ingest_batches(State *st, const char *transmitter, json_t *const *msgs, size_t n_msgs,
                          json_t **replies) {
        IngestRequest *reqs = NULL;
        const IngestRequest **ptrs = NULL;
        SetError *errs = NULL;
        int *rs = NULL, r = 0;
        size_t n = 0, i, k = 0, f, at;

        for (f = 0; f < n_msgs; f++) {
                json_t *records = json_object_get(msgs[f], "records");
                json_int_t m = json_integer_value(records);

                replies[f] = NULL;
                if (!json_is_integer(json_object_get(msgs[f], "id")) || !json_is_integer(records) ||
                    m <= 0 || m > (json_int_t) LINK_BATCH_MAX ||
                    !json_is_string(json_object_get(msgs[f], LINK_ATTACHMENT)))
                        return -EPROTO;
                n += (size_t) m;
        }
        reqs = calloc(n, sizeof(*reqs));
        ptrs = calloc(n, sizeof(*ptrs));
        errs = calloc(n, sizeof(*errs));
        rs = calloc(n, sizeof(*rs));
        if (!reqs || !ptrs || !errs || !rs) {
                r = -ENOMEM;
                goto out;
        }
        /* Records past root's bounds are refused one by one; a malformed one is a protocol
         * violation, as for a single ingest. */
        for (f = 0, at = 0; f < n_msgs; f++) {
                /* Its records, one after the other, all of them. */
                json_t *a = json_object_get(msgs[f], LINK_ATTACHMENT);
                const char *att = json_string_value(a);
                size_t att_left = json_string_length(a), m = frame_records(msgs[f]);

                for (i = 0; i < m; i++) {
                        IngestRequest *q = &reqs[at];

                        r = ingest_record_take(&att, &att_left, q);
                        if (r == -E2BIG) {
                                rs[at] = -EBADMSG;
                                refuse_past_bounds(&errs[at]);
                                r = 0;
                                at++;
                                continue;
                        }
                        if (r < 0) {
                                r = r == -ENOMEM ? r : -EPROTO;
                                goto out;
                        }
                        /* Which transmitter: root's to say, from the channel. */
                        q->transmitter = transmitter;
                        ptrs[k++] = q;
                        at++;
                }
                if (att_left > 0) {
                        r = -EPROTO;
                        goto out;
                }
        }
        {
                _cleanup_free_ SetError *kerr = calloc(MAX(k, (size_t) 1), sizeof(SetError));
                _cleanup_free_ int *kr = calloc(MAX(k, (size_t) 1), sizeof(int));

                if (!kerr || !kr) {
                        r = -ENOMEM;
                        goto out;
                }
                engine_apply_batch(st, ptrs, k, kerr, kr);
                /* Back in the order of the frames and their records. */
                for (i = 0, k = 0; i < n; i++) {
                        if (rs[i] == -EBADMSG && errs[i].err)
                                continue;
                        rs[i] = kr[k];
                        errs[i] = kerr[k];
                        k++;
                }
        }
        for (f = 0, at = 0; f < n_msgs; f++) {
                size_t m = frame_records(msgs[f]);
                json_t *results = json_array();

                replies[f] = make_reply(json_object_get(msgs[f], "id"), 0, NULL, NULL);
                if (!replies[f] || !results) {
                        json_decref(results);
                        r = -ENOMEM;
                        goto out;
                }
                for (i = at; i < at + m; i++) {
                        json_t *one = json_pack("{s:i}", "status", rs[i]);

                        if (one && errs[i].err) {
                                json_object_set_new(one, "err", json_string(errs[i].err));
                                json_object_set_new(one, "description",
                                                    json_string(errs[i].description));
                        }
                        if (!one || json_array_append_new(results, one) < 0) {
                                json_decref(results);
                                r = -ENOMEM;
                                goto out;
                        }
                }
                json_object_set_new(replies[f], "results", results);
                at += m;
        }
out:
        if (r < 0)
                for (f = 0; f < n_msgs; f++) {
                        json_decref(replies[f]);
                        replies[f] = NULL;
                }
        ingest_request_array_free(reqs, n);
        free(ptrs);
        free(errs);
        free(rs);
        return r;
}

static int msg_ingest_batch(State *st, const char *transmitter, json_t *msg, json_t *id,
                            json_t **ret) {
        return broker_ingest_batches(st, transmitter, &msg, 1, ret);
}

static int msg_kv_get(State *st, const char *transmitter, json_t *msg, json_t *id, json_t **ret) {
        const char *key = json_string_value(json_object_get(msg, "key"));
        _cleanup_free_ char *value = NULL;
        char k[128];
        int r;

        if (!kv_key_ok(key) || kv_key(transmitter, key, k, sizeof(k)) < 0) {
                *ret = make_reply(id, -EPERM, NULL, NULL);
                return 0;
        }
        pthread_mutex_lock(&st->lock);
        {
                TransmitterState *ts = state_transmitter(st, transmitter);

                if (streq(key, "stream_id") && ts && ts->stream.deleted)
                        r = -ESTALE; /* deleted by the admin: no new stream until asked for */
                else
                        r = store_kv_get(st->store, k, &value);
        }
        pthread_mutex_unlock(&st->lock);
        if (r >= 0 && isempty(value))
                value = mfree(value); /* "" is a forgotten value */
        *ret = make_reply(id, r == -ENOENT ? 0 : r, NULL, value);
        return 0;
}

static int msg_kv_set(State *st, const char *transmitter, json_t *msg, json_t *id, json_t **ret) {
        const char *key = json_string_value(json_object_get(msg, "key"));
        const char *value = json_string_value(json_object_get(msg, "value"));
        char k[128];
        int r;

        if (!kv_key_ok(key) || !text_ok(value, 256) || kv_key(transmitter, key, k, sizeof(k)) < 0) {
                *ret = make_reply(id, -EPERM, NULL, NULL);
                return 0;
        }
        pthread_mutex_lock(&st->lock);
        r = store_kv_set(st->store, k, value);
        pthread_mutex_unlock(&st->lock);
        *ret = make_reply(id, r, NULL, NULL);
        return 0;
}

/* Every message the worker may send (link.h), as OpenSSH's monitor has its table: whether it is
 * a request (carries an integer "id" and gets a reply) and its handler. A type not listed, a
 * request without an id, or a malformed message of a listed type is a protocol violation. */
static const struct {
        const char *type;
        bool request;
        int (*handle)(State *st, const char *transmitter, json_t *msg, json_t *id, json_t **ret);
} worker_messages[] = {
        { "facts", false, msg_facts },
        { "verify-result", false, msg_verify_result },
        { "admin-result", false, msg_admin_result },
        { "local-subjects", true, msg_local_subjects },
        { "ingest", true, msg_ingest },
        { "ingest-batch", true, msg_ingest_batch },
        { "kv-get", true, msg_kv_get },
        { "kv-set", true, msg_kv_set },
};

int broker_handle_message(State *st, const char *transmitter, json_t *msg, json_t **ret_reply) {
        const char *type = json_string_value(json_object_get(msg, "type"));
        json_t *id = json_object_get(msg, "id");

        *ret_reply = NULL;
        for (size_t i = 0; type && i < ARRAY_SIZE(worker_messages); i++) {
                if (!streq(type, worker_messages[i].type))
                        continue;
                if (worker_messages[i].request && !json_is_integer(id))
                        return -EPROTO;
                return worker_messages[i].handle(st, transmitter, msg, id, ret_reply);
        }
        return -EPROTO;
}

/* Sends answer (taken; NULL: none). An answer too large or without memory for it is dropped
 * (the worker's wait for it times out); returns 0, or < 0 when the worker was stopped. */
static int send_answer(Worker *w, json_t *answer) {
        int r = answer ? worker_send(w, answer) : 0;

        json_decref(answer);
        return r == -EMSGSIZE || r == -ENOMEM ? 0 : r;
}

/* Returns 0, or < 0 when the worker was stopped for msg (w may be freed then). */
static int handle(Worker *w, json_t *msg) {
        json_t *answer = NULL;
        int r = broker_handle_message(w->broker->state, w->sup->name, msg, &answer);

        if (r == -EPROTO) {
                const char *type = json_string_value(json_object_get(msg, "type"));
                log_error("Network worker " PID_FMT " broke the protocol (a '%.64s' message "
                          "that is unknown, not allowed now or malformed): killing it",
                          w->pid, type ? type : "(none)");
                worker_gone(w, -EPROTO, true);
                return -EPROTO;
        }
        return send_answer(w, answer);
}

static int broker_spawn(Supervisor *sup);

static int on_restart(sd_event_source *s, uint64_t usec, void *userdata) {
        Supervisor *sup = userdata;

        sup->restart_timer = sd_event_source_disable_unref(sup->restart_timer);
        if (!sup->broker->stopping && !sup->removed && !current(sup) && broker_spawn(sup) < 0)
                log_error("Cannot start the network worker of transmitter '%s'", sup->name);
        return 0;
}

static void schedule_restart(Supervisor *sup) {
        Broker *b = sup->broker;

        if (b->stopping || sup->removed || sup->restart_timer)
                return;
        log_warning("Restarting the network worker of transmitter '%s' in %llu s", sup->name,
                    (unsigned long long) (sup->backoff / 1000000u));
        (void) sd_event_add_time_relative(b->event, &sup->restart_timer, CLOCK_MONOTONIC,
                                          sup->backoff, 0, on_restart, sup);
        sup->backoff = MIN(sup->backoff * 2, (uint64_t) RESTART_MAX_USEC);
}

/* The channel is over: a protocol violation or a flood (kill_it), or the worker closed it
 * (then it has LINGER_USEC to exit). A current worker is restarted with the backoff. w is
 * freed when it was reaped already. */
static void worker_gone(Worker *w, int error, bool kill_it) {
        Broker *b = w->broker;
        Supervisor *sup = w->sup;
        bool was_current = !w->retiring;
        uint64_t started = w->started;
        pid_t pid = w->pid;

        if (error < 0 && error != -ECONNRESET && error != -EPROTO)
                log_error_errno(error, "Bad message from the network worker, stopping it: %m");
        worker_close_channel(w);
        if (kill_it)
                worker_kill(w);
        else
                worker_arm_kill_timer(w, LINGER_USEC);
        if (w->pid <= 0)
                worker_free(w);
        else if (worker_watch_exit(w) < 0) {
                log_error("Cannot watch network worker " PID_FMT ", killing it", w->pid);
                worker_kill(w);
        }
        if (!was_current)
                return;
        /* One process serving several push transmitters: when one channel is over, so are the
         * others (the process is killed or exits), and all start again together. w may be
         * freed: only its copied fields are used from here on. */
        for (bool again = pid > 0; again;) {
                again = false;
                for (Worker *o = b->workers; o; o = o->next)
                        if (o->pid == pid && !o->retiring) {
                                worker_gone(o, -ECONNRESET, kill_it);
                                again = true; /* the list may have changed */
                                break;
                        }
        }
        /* A worker that ran well for a while earns a fresh start: the delay grows only while
         * workers keep dying young. */
        if (started > 0 && mono_usec() - started >= RESTART_MAX_USEC)
                sup->backoff = RESTART_MIN_USEC;
        pthread_mutex_lock(&b->state->lock);
        {
                TransmitterState *ts = state_transmitter(b->state, sup->name);
                if (ts) {
                        free(ts->stream.status);
                        ts->stream.status = strdup("error");
                }
        }
        pthread_mutex_unlock(&b->state->lock);
        schedule_restart(sup);
}

/* One message of the channel into *ret: 0, -EAGAIN when none is waiting, or < 0 when the worker
 * was stopped for it (w may be freed then). */
static int worker_read_one(Worker *w, json_t **ret) {
        int r = link_recv_buf(w->fd, w->broker->buf, ret);

        if (r == -EAGAIN)
                return r;
        if (r < 0) {
                worker_gone(w, r, r != -ECONNRESET);
                return r;
        }
        if (link_rate_exceeded(&w->rate, mono_usec(), MAX_MESSAGES_PER_SEC)) {
                json_decref(*ret);
                *ret = NULL;
                log_error("Network worker " PID_FMT " floods its channel (more than %u "
                          "messages a second): killing it", w->pid, MAX_MESSAGES_PER_SEC);
                worker_gone(w, -EPROTO, true);
                return -EPROTO;
        }
        return 0;
}

static bool is_ingest_batch(json_t *msg) {
        return streq_ptr(json_string_value(json_object_get(msg, "type")), "ingest-batch");
}

/* The ingest-batch frames msgs[0..n) in one transaction, each answered in order. Returns 0, or
 * < 0 when the worker was stopped for them (w may be freed then). The lines the SETs log
 * (two or three each) are written together after the commit (log_hold()). */
static int handle_batches(Worker *w, json_t *const *msgs, size_t n) {
        json_t *replies[LINK_BATCH_AHEAD] = {};
        int r;

        log_hold();
        r = broker_ingest_batches(w->broker->state, w->sup->name, msgs, n, replies);
        log_release();

        if (r == -EPROTO) {
                log_error("Network worker " PID_FMT " broke the protocol (a malformed "
                          "'ingest-batch' message): killing it", w->pid);
                worker_gone(w, -EPROTO, true);
                return -EPROTO;
        }
        /* On failure there are none (broker_ingest_batches()). */
        for (size_t i = 0; i < n; i++) {
                int q = send_answer(w, TAKE_PTR(replies[i]));

                if (q < 0) {
                        for (size_t j = i + 1; j < n; j++)
                                json_decref(replies[j]);
                        return q;
                }
        }
        return 0;
}

/* Reads at most BATCH messages: the event loop serves everything else before the next ones
 * (the channel stays readable, so it is dispatched again). ingest-batch frames waiting one
 * after the other (up to LINK_BATCH_AHEAD) are committed together. */
static void worker_read(Worker *w) {
        json_t *next = NULL;

        for (unsigned i = 0; i < BATCH; i++) {
                json_t *msg = TAKE_PTR(next), *batches[LINK_BATCH_AHEAD];
                size_t n = 0;
                int r;

                if (!msg && worker_read_one(w, &msg) < 0)
                        return; /* nothing waiting, or w is stopped, maybe freed */
                if (!is_ingest_batch(msg)) {
                        r = handle(w, msg);
                        json_decref(msg);
                        if (r < 0)
                                return; /* w is stopped, maybe freed */
                        continue;
                }
                batches[n++] = msg;
                while (n < LINK_BATCH_AHEAD) {
                        r = worker_read_one(w, &next);
                        if (r == -EAGAIN)
                                break;
                        if (r < 0) {
                                while (n > 0)
                                        json_decref(batches[--n]);
                                return; /* w is stopped, maybe freed */
                        }
                        if (!is_ingest_batch(next))
                                break; /* handled next, after these */
                        batches[n++] = TAKE_PTR(next);
                }
                r = handle_batches(w, batches, n);
                while (n > 0)
                        json_decref(batches[--n]);
                if (r < 0) {
                        json_decref(next);
                        return; /* w is stopped, maybe freed */
                }
        }
        if (next) {
                /* Read while gathering frames: never dropped. */
                (void) handle(w, next);
                json_decref(next);
        }
}

static int on_worker_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;

        if (revents & EPOLLOUT) {
                int r = link_queue_flush(&w->out, w->fd);

                if (r == 0)
                        (void) sd_event_source_set_io_events(w->io, EPOLLIN);
                else if (r < 0) {
                        worker_gone(w, r == -EPIPE ? -ECONNRESET : r, r != -EPIPE);
                        return 0;
                }
        }
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                worker_read(w);
        return 0;
}

/* Asks w to stop; it flushes its acknowledgements, and its last requests are still served. */
static void worker_retire(Worker *w, uint64_t timeout_usec) {
        w->retiring = true;
        if (send_stop(w) < 0)
                return; /* stopped already */
        worker_arm_kill_timer(w, timeout_usec);
}

/* The worker is this very binary, run again. Test builds only (never installed: make tests
 * builds build/helpers/ssf-sessiond-test) may run a stand-in named by $SSF_TEST_WORKER
 * instead, so that the tests can play a compromised worker against the real root daemon. */
static const char *worker_program(void) {
#ifdef SSF_TEST_BUILD
        const char *p = getenv("SSF_TEST_WORKER");
        if (p && *p)
                return p;
#endif
        return "/proc/self/exe";
}

/* Whether sup's transmitter uses push delivery (in the configuration in force). */
static bool sup_is_push(Supervisor *sup) {
        ConfigHandle *h = state_config_ref(sup->broker->state);
        const TransmitterConfig *t = config_transmitter(h->config, sup->name);
        bool push = t && t->delivery == DELIVERY_PUSH;

        state_config_unref(sup->broker->state, h);
        return push;
}

/* Starts the worker of sup: a poll transmitter's alone; a push transmitter's is the one worker
 * of every push transmitter without a current worker (they share the one listener, which
 * routes by path), with a channel each, so that every message still names its transmitter by
 * the channel it arrives on. */
static int broker_spawn(Supervisor *sup) {
        Broker *b = sup->broker;
        Supervisor *group[TRANSMITTERS_MAX];
        Worker *ws[TRANSMITTERS_MAX] = {};
        int ours[TRANSMITTERS_MAX], theirs[TRANSMITTERS_MAX];
        char level[16], tnames[TRANSMITTERS_MAX][32 + TRANSMITTER_NAME_MAX];
        char *argv[8 + TRANSMITTERS_MAX];
        int buf = LINK_BUFFER, r = 0;
        char **envp = NULL;
        size_t n = 0, k = 0, a = 0;
        uid_t uid;
        pid_t pid;

        group[n++] = sup;
        if (sup_is_push(sup))
                for (size_t i = 0; i < b->n_sups && n < TRANSMITTERS_MAX; i++) {
                        Supervisor *o = b->sups[i];

                        if (o != sup && !o->removed && !current(o) && sup_is_push(o))
                                group[n++] = o;
                }
        {
                gid_t gid;

                if (geteuid() != 0 || worker_user(&uid, &gid) < 0)
                        uid = geteuid();
        }
        for (k = 0; k < n; k++) {
                int sv[2];

                if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
                        r = log_error_errno(errno, "socketpair: %m");
                        break;
                }
                for (int i = 0; i < 2; i++) {
                        (void) setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
                        (void) setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
                }
                /* The worker's end blocks; ours is non-blocking on the event loop. */
                (void) fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) & ~O_NONBLOCK);
                /* Above the channel numbers the child gets (LINK_FD + i), so that moving one
                 * into place never overwrites another. */
                if (sv[1] < LINK_FD + (int) n) {
                        int fd = fcntl(sv[1], F_DUPFD_CLOEXEC, LINK_FD + (int) n);

                        safe_close(sv[1]);
                        sv[1] = fd;
                        if (fd < 0) {
                                r = -errno;
                                safe_close(sv[0]);
                                break;
                        }
                }
                ours[k] = sv[0];
                theirs[k] = sv[1];
        }
        if (r >= 0)
                for (size_t i = 0; i < n; i++) {
                        ws[i] = calloc(1, sizeof(*ws[i]));
                        if (!ws[i])
                                r = -ENOMEM;
                }
        if (r >= 0) {
                size_t m = 0;

                for (char **e = environ; e && *e; e++)
                        m++;
                envp = calloc(m + 1, sizeof(char *));
                if (!envp)
                        r = -ENOMEM;
        }
        if (r < 0) {
                for (size_t i = 0; i < k; i++) {
                        safe_close(ours[i]);
                        safe_close(theirs[i]);
                }
                for (size_t i = 0; i < n; i++)
                        free(ws[i]);
                return r;
        }

        /* Everything the child needs is prepared before fork(): between fork and exec only
         * async-signal-safe calls. */
        (void) snprintf(level, sizeof(level), "%s", log_level_to_string(log_get_max_level()));
        argv[a++] = UNCONST("ssf-sessiond");
        argv[a++] = UNCONST("--network-worker");
        for (size_t i = 0; i < n; i++) {
                /* One argument, "--transmitter=NAME": a name can never be taken for an option.
                 * Channel i is on LINK_FD + i. */
                (void) snprintf(tnames[i], sizeof(tnames[i]), "--transmitter=%s", group[i]->name);
                argv[a++] = tnames[i];
        }
        argv[a++] = UNCONST("--config");
        argv[a++] = UNCONST(b->config_path);
        argv[a++] = UNCONST("--log-level");
        argv[a++] = level;
        argv[a++] = UNCONST(b->foreground ? "--foreground" : NULL);
        argv[a] = NULL;
        {
                size_t m = 0;

                for (char **e = environ; e && *e; e++)
                        if (!startswith(*e, "NOTIFY_SOCKET=") && !startswith(*e, "LISTEN_") &&
                            !startswith(*e, "WATCHDOG_"))
                                envp[m++] = *e;
        }

        pid = fork();
        if (pid < 0) {
                r = -errno;
                free(envp);
                for (size_t i = 0; i < n; i++) {
                        safe_close(ours[i]);
                        safe_close(theirs[i]);
                        free(ws[i]);
                }
                return log_error_errno(r, "fork: %m");
        }
        if (pid == 0) {
                sigset_t ss;

                sigemptyset(&ss);
                (void) sigprocmask(SIG_SETMASK, &ss, NULL);
                for (size_t i = 0; i < n; i++)
                        if (dup2(theirs[i], LINK_FD + (int) i) < 0)
                                _exit(127);
                (void) close_range(LINK_FD + (unsigned) n, ~0U, 0);
                execve(worker_program(), argv, envp);
                _exit(127);
        }
        free(envp);
        for (size_t i = 0; i < n; i++) {
                Worker *w = ws[i];

                safe_close(theirs[i]);
                w->broker = b;
                w->sup = group[i];
                w->uid = uid;
                w->fd = ours[i];
                w->pid = pid;
                w->next = b->workers;
                b->workers = w;
                /* Our child, not reaped yet: the pid cannot be anyone else's. Each channel's
                 * Worker watches the process on its own pidfd. */
                w->pidfd = pidfd_open(pid, 0);
                if (w->pidfd < 0 && errno != ENOSYS)
                        log_debug_errno(errno, "pidfd_open: %m");
                r = sd_event_add_io(b->event, &w->io, w->fd, EPOLLIN, on_worker_io, w);
                if (r >= 0)
                        /* PAM and ssfctl first when both are ready. */
                        r = sd_event_source_set_priority(w->io, SD_EVENT_PRIORITY_NORMAL + 1);
                if (r >= 0)
                        r = worker_watch_exit(w);
                if (r < 0)
                        break;
                w->started = mono_usec();
        }
        if (r < 0) {
                log_error_errno(r, "Cannot watch the network worker: %m");
                for (size_t i = 0; i < n; i++) {
                        Worker *w = ws[i];

                        if (!w->broker) { /* not linked yet */
                                safe_close(ours[i]);
                                safe_close(theirs[i]);
                                free(w);
                                continue;
                        }
                        worker_close_channel(w);
                        worker_kill(w);
                }
                /* Just killed: this wait is short. */
                (void) waitpid(pid, NULL, 0);
                for (size_t i = 0; i < n; i++)
                        if (ws[i]->broker) {
                                ws[i]->pid = 0;
                                worker_free(ws[i]);
                        }
                return r;
        }
        for (size_t i = 0; i < n; i++)
                log_debug("Started network worker " PID_FMT " for transmitter '%s'%s", pid,
                          group[i]->name, n > 1 ? " (with the other push transmitters)" : "");
        return 0;
}

int broker_new(State *st, sd_event *event, const char *config_path, bool foreground,
               Broker **ret) {
        Broker *b;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->buf = malloc(LINK_MAX_FRAME + 1);
        if (!b->buf) {
                free(b);
                return -ENOMEM;
        }
        b->state = st;
        b->event = event;
        b->config_path = config_path;
        b->foreground = foreground;
        *ret = b;
        return 0;
}

/* Makes the supervisors follow the configured transmitters: new ones get one, those no longer
 * configured are marked removed (their workers retire and are not restarted). */
static int sync_supervisors(Broker *b) {
        ConfigHandle *h = state_config_ref(b->state);
        const Config *c = h->config;
        int r = 0;

        for (size_t i = 0; i < b->n_sups; i++)
                if (!config_transmitter(c, b->sups[i]->name))
                        b->sups[i]->removed = true;
        for (size_t i = 0; i < c->n_transmitters; i++) {
                Supervisor **n, *sup;

                if (supervisor(b, c->transmitters[i].name))
                        continue;
                sup = calloc(1, sizeof(*sup));
                n = sup ? reallocarray(b->sups, b->n_sups + 1, sizeof(*n)) : NULL;
                if (!n) {
                        free(sup);
                        r = -ENOMEM;
                        break;
                }
                b->sups = n;
                sup->broker = b;
                sup->backoff = RESTART_MIN_USEC;
                (void) snprintf(sup->name, sizeof(sup->name), "%s", c->transmitters[i].name);
                b->sups[b->n_sups++] = sup;
        }
        state_config_unref(b->state, h);
        return r;
}

int broker_start(Broker *b) {
        int r = sync_supervisors(b);

        for (size_t i = 0; r >= 0 && i < b->n_sups; i++)
                if (!b->sups[i]->removed && !current(b->sups[i])) {
                        int k = broker_spawn(b->sups[i]);
                        /* One transmitter's worker that cannot start does not stop the others. */
                        if (k < 0)
                                schedule_restart(b->sups[i]);
                }
        return r;
}

/* At exit: kills what still runs and reaps it if it is gone within a short while (a process
 * left behind would be reaped by init anyway). */
static void kill_all(Broker *b) {
        uint64_t end = mono_usec() + 1000000u;

        for (Worker *w = b->workers; w; w = w->next) {
                worker_close_channel(w);
                worker_kill(w);
        }
        while (b->workers) {
                Worker *w = b->workers;

                if (!worker_try_reap(w) && mono_usec() < end) {
                        (void) poll(NULL, 0, 10);
                        continue;
                }
                worker_free(w);
        }
}

void broker_stop(Broker *b, uint64_t timeout_usec) {
        uint64_t end = mono_usec() + timeout_usec;

        if (!b)
                return;
        b->stopping = true;
        for (size_t i = 0; i < b->n_sups; i++)
                b->sups[i]->restart_timer = sd_event_source_disable_unref(b->sups[i]->restart_timer);
again:
        for (Worker *w = b->workers; w; w = w->next)
                if (w->fd >= 0 && !w->retiring) {
                        w->retiring = true;
                        /* On failure it is stopped already (and maybe freed): start over. */
                        if (send_stop(w) < 0)
                                goto again;
                }
        /* The event loop is over: serve the workers' last requests (commits of SETs in
         * flight) here until they exit. */
        while (b->workers) {
                struct pollfd p[32];
                Worker *ws[32];
                nfds_t n = 0;
                uint64_t now = mono_usec();

                if (now >= end)
                        break;
                for (Worker *w = b->workers; w && n + 2 <= ARRAY_SIZE(p); w = w->next) {
                        if (w->fd >= 0) {
                                p[n] = (struct pollfd){ .fd = w->fd, .events = POLLIN };
                                if (link_queue_length(&w->out) > 0)
                                        p[n].events |= POLLOUT;
                                ws[n++] = w;
                        }
                        if (w->pidfd >= 0) {
                                p[n] = (struct pollfd){ .fd = w->pidfd, .events = POLLIN };
                                ws[n++] = w;
                        }
                }
                if (n == 0) {
                        /* No pidfds: look for the exited ones now and then. */
                        for (Worker *w = b->workers, *next; w; w = next) {
                                next = w->next;
                                if (worker_try_reap(w))
                                        worker_free(w);
                        }
                        (void) poll(NULL, 0, 10);
                        continue;
                }
                if (poll(p, n, (int) ((end - now) / 1000u) + 1) <= 0)
                        continue;
                /* One event per round: handling it may free workers. */
                for (nfds_t i = 0; i < n; i++) {
                        Worker *w = ws[i];

                        if (!p[i].revents)
                                continue;
                        if (p[i].fd == w->pidfd)
                                worker_exited(w);
                        else if (p[i].revents & POLLOUT) {
                                int r = link_queue_flush(&w->out, w->fd);
                                if (r < 0)
                                        worker_gone(w, -ECONNRESET, false);
                                else if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
                                        worker_read(w);
                        } else
                                worker_read(w);
                        break;
                }
        }
        for (Worker *w = b->workers; w; w = w->next)
                if (w->pid > 0 && !w->killed)
                        log_warning("Network worker " PID_FMT " did not stop in time, killing it",
                                    w->pid);
        kill_all(b);
}

int broker_restart(Broker *b) {
        int r;

        if (!b)
                return -ENOENT;
        r = sync_supervisors(b);
        if (r < 0)
                return r;
        for (size_t i = 0; i < b->n_sups; i++) {
                Supervisor *sup = b->sups[i];
                Worker *w = current(sup);

                if (w)
                        worker_retire(w, 5000000u);
                sup->restart_timer = sd_event_source_disable_unref(sup->restart_timer);
                sup->backoff = RESTART_MIN_USEC;
        }
        return broker_start(b);
}

static int request_verify(Supervisor *sup, const char *state) {
        Worker *w = sup ? current(sup) : NULL;
        json_t *msg;
        int r;

        if (!w)
                return -ENOTCONN;
        msg = json_pack("{s:s, s:s}", "type", "verify", "state", state);
        if (!msg)
                return -ENOMEM;
        r = worker_send(w, msg);
        json_decref(msg);
        return r;
}

int broker_request_verification(Broker *b, const char *transmitter, char state[static 33]) {
        Supervisor *sup = supervisor(b, transmitter);
        State *st = b->state;
        TransmitterState *ts;
        uint8_t rnd[16];
        int fd, r;

        if (!sup)
                return -ESRCH;
        fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = (int) read(fd, rnd, sizeof(rnd));
        safe_close(fd);
        if (r != (int) sizeof(rnd))
                return -EIO;
        for (size_t i = 0; i < sizeof(rnd); i++)
                (void) snprintf(state + 2 * i, 3, "%02x", rnd[i]);

        pthread_mutex_lock(&st->lock);
        ts = state_transmitter(st, transmitter);
        if (!ts || !ts->stream.stream_id) {
                pthread_mutex_unlock(&st->lock);
                return -ENOENT;
        }
        if (ts->stream.verify_state) {
                memmove(ts->stream.recent_states[1], ts->stream.recent_states[0],
                        sizeof(ts->stream.recent_states) - sizeof(ts->stream.recent_states[0]));
                (void) snprintf(ts->stream.recent_states[0], sizeof(ts->stream.recent_states[0]),
                                "%s", ts->stream.verify_state);
        }
        free(ts->stream.verify_state);
        free(ts->stream.verify_result);
        ts->stream.verify_state = strdup(state);
        ts->stream.verify_result = NULL;
        ts->stream.verify_received = false;
        ts->stream.verify_requested = now_sec();
        ts->stream.verify_warned = false;
        pthread_mutex_unlock(&st->lock);
        return request_verify(sup, state);
}

int broker_admin(Broker *b, const char *transmitter, json_t *request, uint64_t *ret_id) {
        Supervisor *sup = supervisor(b, transmitter);
        State *st = b->state;
        Worker *w = sup ? current(sup) : NULL;
        const char *op = json_string_value(json_object_get(request, "op"));
        _cleanup_(json_decrefp) json_t *msg = NULL;
        TransmitterState *ts;
        uint64_t id;
        int r;

        if (!sup)
                return -ESRCH;
        if (!op || strlen(op) >= sizeof(ts->stream.admin[0].op))
                return -EINVAL;
        if (!w)
                return -ENOTCONN;
        pthread_mutex_lock(&st->lock);
        ts = state_transmitter(st, transmitter);
        if (!ts) {
                pthread_mutex_unlock(&st->lock);
                return -ESRCH;
        }
        if (streq(op, "create"))
                ts->stream.deleted = false; /* the worker's next kv-get may create one */
        id = ++ts->stream.admin_last_id;
        {
                typeof(ts->stream.admin[0]) *a = &ts->stream.admin[id % ARRAY_SIZE(ts->stream.admin)];

                *a = (typeof(*a)) { .id = id };
                (void) snprintf(a->op, sizeof(a->op), "%s", op);
        }
        pthread_mutex_unlock(&st->lock);
        msg = json_deep_copy(request);
        if (!msg || json_object_set_new(msg, "type", json_string("admin")) < 0 ||
            json_object_set_new(msg, "id", json_integer((json_int_t) id)) < 0)
                return -ENOMEM;
        r = worker_send(w, msg);
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

int broker_admin_result(State *st, const char *transmitter, uint64_t id, int *ret_status,
                        char *message, size_t size) {
        TransmitterState *ts;
        int r = -EAGAIN;

        pthread_mutex_lock(&st->lock);
        ts = state_transmitter(st, transmitter);
        if (!ts)
                r = -ESTALE; /* removed by a reload meanwhile */
        else {
                typeof(ts->stream.admin[0]) *a = &ts->stream.admin[id % ARRAY_SIZE(ts->stream.admin)];

                if (a->id != id)
                        r = -ESTALE;
                else if (a->done) {
                        *ret_status = a->status;
                        (void) snprintf(message, size, "%s", a->message);
                        r = 0;
                }
        }
        pthread_mutex_unlock(&st->lock);
        return r;
}

Broker *broker_free(Broker *b) {
        if (!b)
                return NULL;
        kill_all(b);
        for (size_t i = 0; i < b->n_sups; i++) {
                b->sups[i]->restart_timer = sd_event_source_disable_unref(b->sups[i]->restart_timer);
                free(b->sups[i]);
        }
        free(b->sups);
        free(b->buf);
        free(b);
        return NULL;
}
