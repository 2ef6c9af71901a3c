/* SPDX-License-Identifier: MIT */
/*
 * Supervision of the network worker (broker.h): starts it, answers its messages on the main
 * loop, and restarts it with a backoff. Runs in the root daemon.
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
 * (a commit, well under 10000 a second) and sends one "facts" per poll or pushed SET. */
#define MAX_MESSAGES_PER_SEC 20000u
/* A worker that closed its channel has this long to exit before it is killed. */
#define LINGER_USEC (3u * 1000000u)
/* Without pidfds (Linux < 5.3), how often an exiting worker is looked for. */
#define REAP_POLL_USEC (100u * 1000u)

typedef struct Worker Worker;

/* A worker is on the Broker's list from its start until it is reaped. Its channel may close
 * first (it closed it, or root did); the process is then reaped when it exits — watched
 * through a pidfd, never waited for — and killed when it does not exit in time. */
struct Worker {
        Broker *broker;
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
        Worker *workers;  /* the current one first, then retiring ones */
        sd_event_source *restart_timer;
        uint64_t backoff;
        bool stopping;
        char *buf;        /* one received frame */
};

static Worker *current(Broker *b) {
        return b->workers && !b->workers->retiring ? b->workers : NULL;
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

static void handle_facts(State *st, json_t *msg) {
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

        pthread_mutex_lock(&st->lock);
        if (json_is_object(counters))
                for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
                        json_t *v = json_object_get(counters, known[i].name);
                        if (json_is_integer(v) && json_integer_value(v) > 0 &&
                            json_integer_value(v) < 1000000)
                                *(uint64_t *) ((uint8_t *) &st->counters + known[i].offset) +=
                                        (uint64_t) json_integer_value(v);
                }
        if (json_is_object(stream)) {
                const char *status = json_string_value(json_object_get(stream, "status"));
                json_t *cfg = json_object_get(stream, "config");
                json_t *lp = json_object_get(stream, "last_poll");

                set_fact(&st->stream.stream_id, json_object_get(stream, "stream_id"), 256);
                set_fact(&st->stream.issuer, json_object_get(stream, "issuer"), 2048);
                set_fact(&st->stream.endpoint_url, json_object_get(stream, "endpoint_url"), 2048);
                set_fact(&st->stream.audience, json_object_get(stream, "audience"), 2048);
                set_fact(&st->stream.delivery, json_object_get(stream, "delivery"), 256);
                set_fact(&st->stream.verification_endpoint,
                         json_object_get(stream, "verification_endpoint"), 2048);
                if (json_object_get(stream, "last_error"))
                        set_fact(&st->stream.last_error, json_object_get(stream, "last_error"), 512);
                if (json_is_integer(lp) && json_integer_value(lp) > 0)
                        st->stream.last_poll = (uint64_t) json_integer_value(lp);
                /* The worker knows whether the transmitter answers; stream-updated events
                 * (applied by the engine) know whether it is paused or disabled. */
                if (streq_ptr(status, "error"))
                        set_fact(&st->stream.status, json_object_get(stream, "status"), 32);
                else if (streq_ptr(status, "enabled") &&
                         (!st->stream.status || streq(st->stream.status, "starting") ||
                          streq(st->stream.status, "error")))
                        set_fact(&st->stream.status, json_object_get(stream, "status"), 32);
                /* Read from the status endpoint at setup: what the transmitter says now. */
                {
                        const char *ts = json_string_value(json_object_get(stream,
                                                                           "transmitter_status"));
                        if (streq_ptr(ts, "enabled") || streq_ptr(ts, "paused") ||
                            streq_ptr(ts, "disabled"))
                                set_fact(&st->stream.status,
                                         json_object_get(stream, "transmitter_status"), 32);
                }
                if (json_is_object(cfg)) {
                        char *text = json_dumps(cfg, JSON_COMPACT);
                        if (text && strlen(text) <= 64u * 1024u) {
                                free(st->stream.config_json);
                                st->stream.config_json = text;
                                free(st->stream.events_delivered_json);
                                st->stream.events_delivered_json =
                                        json_dumps(json_object_get(cfg, "events_delivered"),
                                                   JSON_COMPACT | JSON_ENCODE_ANY);
                        } else
                                free(text);
                }
        }
        pthread_mutex_unlock(&st->lock);
}

static int msg_facts(State *st, json_t *msg, json_t *id, json_t **ret) {
        json_t *stream = json_object_get(msg, "stream"), *counters = json_object_get(msg, "counters");

        if ((stream && !json_is_object(stream)) || (counters && !json_is_object(counters)))
                return -EPROTO;
        handle_facts(st, msg);
        return 0;
}

static int msg_verify_result(State *st, json_t *msg, json_t *id, json_t **ret) {
        const char *state = json_string_value(json_object_get(msg, "state"));
        const char *result = json_string_value(json_object_get(msg, "result"));

        if (!state || !result)
                return -EPROTO;
        pthread_mutex_lock(&st->lock);
        /* A result for a state asked for earlier is a benign race, not a violation. */
        if (st->stream.verify_state && streq(state, st->stream.verify_state) &&
            !st->stream.verify_received && text_ok(result, 256)) {
                free(st->stream.verify_result);
                st->stream.verify_result = strdup(result);
        }
        pthread_mutex_unlock(&st->lock);
        state_wake(st);
        return 0;
}

static int msg_ingest(State *st, json_t *msg, json_t *id, json_t **ret) {
        _cleanup_(ingest_request_done) IngestRequest req = {};
        SetError err = {};
        int r;

        r = ingest_from_json(json_object_get(msg, "request"), &req);
        if (r == -E2BIG) {
                /* Well-formed, past root's bounds: the SET is refused, the worker may stay. */
                err.err = "invalid_request";
                (void) snprintf(err.description, sizeof(err.description),
                                "the event or its subject is too large");
                log_warning("Network worker handed over a record past its bounds, refusing the SET");
                *ret = make_reply(id, -EBADMSG, &err, NULL);
                return 0;
        }
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EPROTO;
        r = engine_apply(st, &req, &err);
        *ret = make_reply(id, r, &err, NULL);
        return 0;
}

static void ingest_request_array_free(IngestRequest *v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                ingest_request_done(&v[i]);
        free(v);
}

/* Many SETs in one transaction: one synced commit, then one answer with every result. */
static int msg_ingest_batch(State *st, json_t *msg, json_t *id, json_t **ret) {
        json_t *requests = json_object_get(msg, "requests"), *results, *rq;
        IngestRequest *reqs = NULL;
        const IngestRequest **ptrs = NULL;
        SetError *errs = NULL;
        int *rs = NULL, r = 0;
        size_t n, i, k = 0;

        n = json_array_size(requests);
        if (!json_is_array(requests) || n == 0 || n > LINK_BATCH_MAX)
                return -EPROTO;
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
        json_array_foreach(requests, i, rq) {
                r = ingest_from_json(rq, &reqs[i]);
                if (r == -E2BIG) {
                        rs[i] = -EBADMSG;
                        errs[i].err = "invalid_request";
                        (void) snprintf(errs[i].description, sizeof(errs[i].description),
                                        "the event or its subject is too large");
                        log_warning("Network worker handed over a record past its bounds, "
                                    "refusing the SET");
                        r = 0;
                        continue;
                }
                if (r < 0) {
                        r = r == -ENOMEM ? r : -EPROTO;
                        goto out;
                }
                ptrs[k] = &reqs[i];
                k++;
        }
        {
                _cleanup_free_ SetError *kerr = calloc(MAX(k, (size_t) 1), sizeof(SetError));
                _cleanup_free_ int *kr = calloc(MAX(k, (size_t) 1), sizeof(int));

                if (!kerr || !kr) {
                        r = -ENOMEM;
                        goto out;
                }
                engine_apply_batch(st, ptrs, k, kerr, kr);
                /* Back in the order of the request. */
                for (i = 0, k = 0; i < n; i++) {
                        if (rs[i] == -EBADMSG && errs[i].err)
                                continue;
                        rs[i] = kr[k];
                        errs[i] = kerr[k];
                        k++;
                }
        }
        *ret = make_reply(id, 0, NULL, NULL);
        results = json_array();
        if (!*ret || !results) {
                json_decref(results);
                r = -ENOMEM;
                goto out;
        }
        for (i = 0; i < n; i++) {
                json_t *one = json_pack("{s:i}", "status", rs[i]);

                if (one && errs[i].err) {
                        json_object_set_new(one, "err", json_string(errs[i].err));
                        json_object_set_new(one, "description", json_string(errs[i].description));
                }
                if (!one || json_array_append_new(results, one) < 0) {
                        json_decref(results);
                        r = -ENOMEM;
                        goto out;
                }
        }
        json_object_set_new(*ret, "results", results);
out:
        if (r < 0) {
                json_decref(*ret);
                *ret = NULL;
        }
        ingest_request_array_free(reqs, n);
        free(ptrs);
        free(errs);
        free(rs);
        return r;
}

static int msg_kv_get(State *st, json_t *msg, json_t *id, json_t **ret) {
        const char *key = json_string_value(json_object_get(msg, "key"));
        _cleanup_free_ char *value = NULL;
        int r;

        if (!kv_key_ok(key)) {
                *ret = make_reply(id, -EPERM, NULL, NULL);
                return 0;
        }
        pthread_mutex_lock(&st->lock);
        r = store_kv_get(st->store, key, &value);
        pthread_mutex_unlock(&st->lock);
        *ret = make_reply(id, r == -ENOENT ? 0 : r, NULL, value);
        return 0;
}

static int msg_kv_set(State *st, json_t *msg, json_t *id, json_t **ret) {
        const char *key = json_string_value(json_object_get(msg, "key"));
        const char *value = json_string_value(json_object_get(msg, "value"));
        int r;

        if (!kv_key_ok(key) || !text_ok(value, 256)) {
                *ret = make_reply(id, -EPERM, NULL, NULL);
                return 0;
        }
        pthread_mutex_lock(&st->lock);
        r = store_kv_set(st->store, key, value);
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
        int (*handle)(State *st, json_t *msg, json_t *id, json_t **ret);
} worker_messages[] = {
        { "facts", false, msg_facts },
        { "verify-result", false, msg_verify_result },
        { "ingest", true, msg_ingest },
        { "ingest-batch", true, msg_ingest_batch },
        { "kv-get", true, msg_kv_get },
        { "kv-set", true, msg_kv_set },
};

int broker_handle_message(State *st, json_t *msg, json_t **ret_reply) {
        const char *type = json_string_value(json_object_get(msg, "type"));
        json_t *id = json_object_get(msg, "id");

        *ret_reply = NULL;
        for (size_t i = 0; type && i < ARRAY_SIZE(worker_messages); i++) {
                if (!streq(type, worker_messages[i].type))
                        continue;
                if (worker_messages[i].request && !json_is_integer(id))
                        return -EPROTO;
                return worker_messages[i].handle(st, msg, id, ret_reply);
        }
        return -EPROTO;
}

/* Returns 0, or < 0 when the worker was stopped for msg (w may be freed then). */
static int handle(Worker *w, json_t *msg) {
        json_t *answer = NULL;
        int r = broker_handle_message(w->broker->state, msg, &answer);

        if (r == -EPROTO) {
                const char *type = json_string_value(json_object_get(msg, "type"));
                log_error("Network worker " PID_FMT " broke the protocol (a '%.64s' message "
                          "that is unknown, not allowed now or malformed): killing it",
                          w->pid, type ? type : "(none)");
                worker_gone(w, -EPROTO, true);
                return -EPROTO;
        }
        r = answer ? worker_send(w, answer) : 0;
        json_decref(answer);
        return r == -EMSGSIZE || r == -ENOMEM ? 0 : r;
}

static int broker_spawn(Broker *b);

static int on_restart(sd_event_source *s, uint64_t usec, void *userdata) {
        Broker *b = userdata;

        b->restart_timer = sd_event_source_disable_unref(b->restart_timer);
        if (!b->stopping && !current(b) && broker_spawn(b) < 0)
                log_error("Cannot start the network worker");
        return 0;
}

static void schedule_restart(Broker *b) {
        if (b->stopping || b->restart_timer)
                return;
        log_warning("Restarting the network worker in %llu s",
                    (unsigned long long) (b->backoff / 1000000u));
        (void) sd_event_add_time_relative(b->event, &b->restart_timer, CLOCK_MONOTONIC,
                                          b->backoff, 0, on_restart, b);
        b->backoff = MIN(b->backoff * 2, (uint64_t) RESTART_MAX_USEC);
}

/* The channel is over: a protocol violation or a flood (kill_it), or the worker closed it
 * (then it has LINGER_USEC to exit). A current worker is restarted with the backoff. w is
 * freed when it was reaped already. */
static void worker_gone(Worker *w, int error, bool kill_it) {
        Broker *b = w->broker;
        bool was_current = !w->retiring;

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
        /* A worker that ran well for a while earns a fresh start: the delay grows only while
         * workers keep dying young. */
        if (w->started > 0 && mono_usec() - w->started >= RESTART_MAX_USEC)
                b->backoff = RESTART_MIN_USEC;
        pthread_mutex_lock(&b->state->lock);
        free(b->state->stream.status);
        b->state->stream.status = strdup("error");
        pthread_mutex_unlock(&b->state->lock);
        schedule_restart(b);
}

/* Reads at most BATCH messages: the event loop serves everything else before the next ones
 * (the channel stays readable, so it is dispatched again). */
static void worker_read(Worker *w) {
        for (unsigned i = 0; i < BATCH; i++) {
                json_t *msg = NULL;
                int r = link_recv_buf(w->fd, w->broker->buf, &msg);

                if (r == -EAGAIN)
                        return;
                if (r < 0) {
                        worker_gone(w, r, r != -ECONNRESET);
                        return;
                }
                if (link_rate_exceeded(&w->rate, mono_usec(), MAX_MESSAGES_PER_SEC)) {
                        json_decref(msg);
                        log_error("Network worker " PID_FMT " floods its channel (more than %u "
                                  "messages a second): killing it", w->pid, MAX_MESSAGES_PER_SEC);
                        worker_gone(w, -EPROTO, true);
                        return;
                }
                r = handle(w, msg);
                json_decref(msg);
                if (r < 0)
                        return; /* w is stopped, maybe freed */
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

static int broker_spawn(Broker *b) {
        char level[16], *argv[8];
        int sv[2], buf = LINK_BUFFER, r;
        char **envp = NULL;
        size_t n = 0;
        Worker *w;
        pid_t pid;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->broker = b;
        w->fd = -EBADF;
        w->pidfd = -EBADF;
        {
                gid_t gid;

                if (geteuid() != 0 || worker_user(&w->uid, &gid) < 0)
                        w->uid = geteuid();
        }
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
                free(w);
                return log_error_errno(errno, "socketpair: %m");
        }
        for (int i = 0; i < 2; i++) {
                (void) setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
                (void) setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
        }
        /* The worker's end blocks; ours is non-blocking on the event loop. */
        (void) fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) & ~O_NONBLOCK);

        /* Everything the child needs is prepared before fork(): between fork and exec only
         * async-signal-safe calls. */
        (void) snprintf(level, sizeof(level), "%s", log_level_to_string(log_get_max_level()));
        argv[0] = UNCONST("ssf-sessiond");
        argv[1] = UNCONST("--network-worker");
        argv[2] = UNCONST("--config");
        argv[3] = UNCONST(b->config_path);
        argv[4] = UNCONST("--log-level");
        argv[5] = level;
        argv[6] = UNCONST(b->foreground ? "--foreground" : NULL);
        argv[7] = NULL;
        for (char **e = environ; e && *e; e++)
                n++;
        envp = calloc(n + 1, sizeof(char *));
        if (!envp) {
                safe_close(sv[0]);
                safe_close(sv[1]);
                free(w);
                return -ENOMEM;
        }
        n = 0;
        for (char **e = environ; e && *e; e++)
                if (!startswith(*e, "NOTIFY_SOCKET=") && !startswith(*e, "LISTEN_") &&
                    !startswith(*e, "WATCHDOG_"))
                        envp[n++] = *e;

        pid = fork();
        if (pid < 0) {
                r = -errno;
                free(envp);
                safe_close(sv[0]);
                safe_close(sv[1]);
                free(w);
                return log_error_errno(r, "fork: %m");
        }
        if (pid == 0) {
                sigset_t ss;

                sigemptyset(&ss);
                (void) sigprocmask(SIG_SETMASK, &ss, NULL);
                if (dup2(sv[1], LINK_FD) < 0)
                        _exit(127);
                (void) close_range(LINK_FD + 1, ~0U, 0);
                execve(worker_program(), argv, envp);
                _exit(127);
        }
        free(envp);
        safe_close(sv[1]);
        w->fd = sv[0];
        w->pid = pid;
        w->next = b->workers;
        b->workers = w;
        /* Our child, not reaped yet: the pid cannot be anyone else's. */
        w->pidfd = pidfd_open(pid, 0);
        if (w->pidfd < 0 && errno != ENOSYS)
                log_debug_errno(errno, "pidfd_open: %m");
        r = sd_event_add_io(b->event, &w->io, w->fd, EPOLLIN, on_worker_io, w);
        if (r >= 0)
                /* PAM and ssfctl first when both are ready. */
                r = sd_event_source_set_priority(w->io, SD_EVENT_PRIORITY_NORMAL + 1);
        if (r >= 0)
                r = worker_watch_exit(w);
        if (r < 0) {
                log_error_errno(r, "Cannot watch the network worker: %m");
                worker_close_channel(w);
                worker_kill(w);
                /* Just killed: this wait is short. */
                (void) waitpid(w->pid, NULL, 0);
                w->pid = 0;
                worker_free(w);
                return r;
        }
        w->started = mono_usec();
        log_debug("Started network worker " PID_FMT, pid);
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
        b->backoff = RESTART_MIN_USEC;
        *ret = b;
        return 0;
}

int broker_start(Broker *b) {
        return broker_spawn(b);
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
        b->restart_timer = sd_event_source_disable_unref(b->restart_timer);
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
        Worker *w;

        if (!b)
                return -ENOENT;
        w = current(b);
        if (w)
                worker_retire(w, 5000000u);
        b->restart_timer = sd_event_source_disable_unref(b->restart_timer);
        b->backoff = RESTART_MIN_USEC;
        return broker_spawn(b);
}

static int request_verify(Broker *b, const char *state) {
        Worker *w = b ? current(b) : NULL;
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

int broker_request_verification(Broker *b, char state[static 33]) {
        State *st = b->state;
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

        pthread_mutex_lock(&st->lock);
        if (!st->stream.stream_id) {
                pthread_mutex_unlock(&st->lock);
                return -ENOENT;
        }
        if (st->stream.verify_state) {
                memmove(st->stream.recent_states[1], st->stream.recent_states[0],
                        sizeof(st->stream.recent_states) - sizeof(st->stream.recent_states[0]));
                (void) snprintf(st->stream.recent_states[0], sizeof(st->stream.recent_states[0]),
                                "%s", st->stream.verify_state);
        }
        free(st->stream.verify_state);
        free(st->stream.verify_result);
        st->stream.verify_state = strdup(state);
        st->stream.verify_result = NULL;
        st->stream.verify_received = false;
        st->stream.verify_requested = now_sec();
        st->stream.verify_warned = false;
        pthread_mutex_unlock(&st->lock);
        return request_verify(b, state);
}

Broker *broker_free(Broker *b) {
        if (!b)
                return NULL;
        b->restart_timer = sd_event_source_disable_unref(b->restart_timer);
        kill_all(b);
        free(b->buf);
        free(b);
        return NULL;
}
