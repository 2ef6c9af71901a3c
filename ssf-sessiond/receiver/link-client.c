/* SPDX-License-Identifier: MIT */
/*
 * The network worker's end of the channel to root (link-client.h): a reader thread that takes
 * root's replies and commands (verify, stop), and the blocking, bounded requests the worker
 * makes. Runs in the unprivileged network worker.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>

#include "link-client.h"
#include "log.h"
#include "macro.h"

#define REPLY_TIMEOUT_SEC 60
/* An ingest-batch frame's object, {"type":"ingest-batch","id":N,"records":K} with N and K of
 * at most 20 digits each, and the NUL after it: at most this many bytes. */
#define BATCH_HEAD_MAX 96u

struct Link {
        int fd;
        Config *config;
        const TransmitterConfig *transmitter; /* points into config */
        pthread_t reader;
        bool reader_started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool stopping;
        bool dead;     /* the channel is closed: no reply will come */
        int sig_fd;
        HttpClient *http;
        HttpClient *http_ahead; /* the poll sent ahead's (a stop aborts it too) */
        char *verify_state;
        json_t *admin;       /* administration requests not taken yet (an array) */
        /* one outstanding request at a time (the poll loop is sequential) */
        pthread_mutex_t request_lock;
        int64_t next_id, waiting_id;
        json_t *reply;
        /* and at most LINK_BATCH_AHEAD ingest-batches sent ahead (link_ingest_batch_send()):
         * a ring, the oldest at batch_head */
        int64_t batch_id[LINK_BATCH_AHEAD];
        json_t *batch_reply[LINK_BATCH_AHEAD];
        size_t batch_head, batch_n;
};

const Config *link_config(Link *l) {
        return l->config;
}

const TransmitterConfig *link_transmitter(Link *l) {
        return l->transmitter;
}

static void link_stop_locked(Link *l) {
        l->stopping = true;
        if (l->http)
                http_client_abort(l->http);
        if (l->http_ahead)
                http_client_abort(l->http_ahead);
        pthread_cond_broadcast(&l->cond);
}

static void *reader_thread(void *userdata) {
        Link *l = userdata;

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = l->fd, .events = POLLIN },
                        { .fd = l->sig_fd, .events = POLLIN },
                };
                json_t *msg = NULL;
                const char *type;
                int r;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        (void) !read(l->sig_fd, &si, sizeof(si));
                        log_debug("Network worker received signal %u, stopping", si.ssi_signo);
                        pthread_mutex_lock(&l->lock);
                        link_stop_locked(l);
                        pthread_mutex_unlock(&l->lock);
                        continue;
                }
                if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;
                r = link_recv(l->fd, &msg);
                if (r == -EAGAIN)
                        continue;
                if (r < 0) {
                        /* The daemon is gone (or spoke nonsense): stop. */
                        if (r != -ECONNRESET)
                                log_error_errno(r, "Bad message from the daemon: %m");
                        break;
                }
                type = json_string_value(json_object_get(msg, "type"));
                pthread_mutex_lock(&l->lock);
                if (streq(type, "reply")) {
                        json_t *id = json_object_get(msg, "id");
                        if (json_is_integer(id) && json_integer_value(id) == l->waiting_id &&
                            !l->reply) {
                                l->reply = json_incref(msg); /* new reference, taken by waiter */
                                pthread_cond_broadcast(&l->cond);
                        } else if (json_is_integer(id))
                                for (size_t i = 0; i < l->batch_n; i++) {
                                        size_t k = (l->batch_head + i) % LINK_BATCH_AHEAD;

                                        if (json_integer_value(id) != l->batch_id[k] ||
                                            l->batch_reply[k])
                                                continue;
                                        l->batch_reply[k] = json_incref(msg);
                                        pthread_cond_broadcast(&l->cond);
                                        break;
                                }
                } else if (streq(type, "verify")) {
                        const char *state = json_string_value(json_object_get(msg, "state"));
                        if (state && strlen(state) <= 256) {
                                free(l->verify_state);
                                l->verify_state = strdup(state);
                                if (l->http)
                                        http_client_interrupt(l->http); /* ask now, not after the long poll */
                        }
                } else if (streq(type, "admin")) {
                        json_t *id = json_object_get(msg, "id");
                        const char *op = json_string_value(json_object_get(msg, "op"));

                        /* Root sends one per ssfctl command; more waiting than this is not
                         * root's doing. */
                        if (json_is_integer(id) && op && json_array_size(l->admin) < LINK_ADMIN_MAX &&
                            json_array_append(l->admin, msg) >= 0) {
                                pthread_cond_broadcast(&l->cond);
                                if (l->http)
                                        http_client_interrupt(l->http); /* now, not after the poll */
                        }
                } else if (streq(type, "stop"))
                        link_stop_locked(l);
                pthread_mutex_unlock(&l->lock);
                json_decref(msg);
        }
        pthread_mutex_lock(&l->lock);
        l->dead = true;
        link_stop_locked(l);
        pthread_mutex_unlock(&l->lock);
        return NULL;
}

int link_new(int fd, Config *config, const TransmitterConfig *transmitter, Link **ret) {
        Link *l;
        sigset_t ss;
        int r;

        if (!transmitter)
                transmitter = config_transmitter_main(config);
        if (!transmitter)
                return -EINVAL;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->fd = fd;
        l->config = config;
        l->transmitter = transmitter;
        l->sig_fd = -EBADF;
        l->admin = json_array();
        if (!l->admin) {
                free(l);
                return -ENOMEM;
        }
        pthread_mutex_init(&l->lock, NULL);
        pthread_mutex_init(&l->request_lock, NULL);
        pthread_cond_init(&l->cond, NULL);

        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &ss, NULL);
        sigdelset(&ss, SIGPIPE);
        l->sig_fd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
        if (l->sig_fd < 0) {
                r = -errno;
                link_free(l);
                return r;
        }
        r = pthread_create(&l->reader, NULL, reader_thread, l);
        if (r != 0) {
                link_free(l);
                return -r;
        }
        l->reader_started = true;
        *ret = l;
        return 0;
}

Link *link_free(Link *l) {
        if (!l)
                return NULL;
        if (l->reader_started) {
                /* The reader blocks in poll(): shutting the socket down wakes it. */
                (void) shutdown(l->fd, SHUT_RDWR);
                pthread_join(l->reader, NULL);
        }
        safe_close(l->fd);
        safe_close(l->sig_fd);
        json_decref(l->reply);
        for (size_t i = 0; i < LINK_BATCH_AHEAD; i++)
                json_decref(l->batch_reply[i]);
        free(l->verify_state);
        json_decref(l->admin);
        config_free(l->config);
        pthread_cond_destroy(&l->cond);
        pthread_mutex_destroy(&l->request_lock);
        pthread_mutex_destroy(&l->lock);
        free(l);
        return NULL;
}

/* Sends msg (adding an id) and waits for the daemon's reply. */
static int link_call(Link *l, json_t *msg, json_t **ret) {
        struct timespec ts;
        int64_t id;
        int r;

        pthread_mutex_lock(&l->request_lock);
        pthread_mutex_lock(&l->lock);
        id = ++l->next_id;
        l->waiting_id = id;
        json_decref(l->reply);
        l->reply = NULL;
        pthread_mutex_unlock(&l->lock);

        json_object_set_new(msg, "id", json_integer(id));
        r = link_send(l->fd, msg);
        if (r < 0)
                goto out;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += REPLY_TIMEOUT_SEC;
        pthread_mutex_lock(&l->lock);
        /* Even when stopping, wait for the answer to a request already sent: the daemon
         * answers it (the commit decides whether we may acknowledge). */
        while (!l->reply && r == 0) {
                if (l->dead)
                        r = -ECONNRESET;
                else if (pthread_cond_timedwait(&l->cond, &l->lock, &ts) == ETIMEDOUT)
                        r = -ETIMEDOUT;
        }
        if (l->reply) {
                *ret = l->reply;
                l->reply = NULL;
                r = 0;
        }
        l->waiting_id = 0;
        pthread_mutex_unlock(&l->lock);
out:
        pthread_mutex_unlock(&l->request_lock);
        return r;
}

static int reply_status(json_t *reply) {
        json_t *s = json_object_get(reply, "status");
        if (!json_is_integer(s) || json_integer_value(s) > 0 || json_integer_value(s) < -4095)
                return -EBADMSG;
        return (int) json_integer_value(s);
}

/* Sends msg (taking it; NULL: it could not be made) and waits for the reply. Returns the reply's
 * status with *ret_reply (to be unreferenced), or -errno without it. */
static int link_request(Link *l, json_t *msg, json_t **ret_reply) {
        json_t *reply = NULL;
        int r;

        if (!msg)
                return -ENOMEM;
        r = link_call(l, msg, &reply);
        json_decref(msg);
        if (r < 0)
                return r;
        *ret_reply = reply;
        return reply_status(reply);
}

/* A reply's err and description into *err, when err is one that setErrs knows. */
static void reply_set_error(json_t *reply, SetError *err) {
        const char *e = json_string_value(json_object_get(reply, "err"));
        const char *d = json_string_value(json_object_get(reply, "description"));
        static const char *const codes[] = { "invalid_request", "invalid_key",
                                             "invalid_issuer", "invalid_audience",
                                             "authentication_failed", "access_denied",
                                             "invalid_state" };

        for (size_t i = 0; e && i < ARRAY_SIZE(codes); i++)
                if (streq(e, codes[i])) {
                        err->err = codes[i];
                        (void) snprintf(err->description, sizeof(err->description), "%s",
                                        strempty(d));
                }
}

int link_ingest(Link *l, const IngestRequest *req, SetError *err) {
        json_t *reply = NULL, *body;
        int r;

        body = ingest_to_json(req);
        if (!body)
                return -ENOMEM;
        r = link_request(l, json_pack("{s:s, s:o}", "type", "ingest", "request", body), &reply);
        if (r < 0 && reply)
                reply_set_error(reply, err);
        json_decref(reply);
        return r;
}

/* The results of an ingest-batch reply (taken) into errs and ret. */
static int batch_results(json_t *reply, size_t n, SetError *errs, int *ret) {
        json_t *results;
        int r = reply_status(reply);

        if (r < 0) {
                json_decref(reply);
                return r;
        }
        results = json_object_get(reply, "results");
        if (json_array_size(results) != n) {
                json_decref(reply);
                return -EBADMSG;
        }
        for (size_t i = 0; i < n; i++) {
                json_t *one = json_array_get(results, i);

                memset(&errs[i], 0, sizeof(errs[i]));
                ret[i] = reply_status(one);
                if (ret[i] < 0)
                        reply_set_error(one, &errs[i]);
        }
        json_decref(reply);
        return 0;
}

int link_ingest_batch_send(Link *l, const char *records, size_t len, size_t n) {
        _cleanup_free_ char *frame = NULL;
        int64_t id;
        size_t m, k;
        int r;

        if (n == 0 || n > LINK_BATCH_MAX || len == 0)
                return -EINVAL;
        /* the object, a NUL and the records */
        if (len > LINK_MAX_FRAME - BATCH_HEAD_MAX - 1)
                return -EMSGSIZE;
        frame = malloc(BATCH_HEAD_MAX + 1 + len);
        if (!frame)
                return -ENOMEM;
        pthread_mutex_lock(&l->request_lock);
        pthread_mutex_lock(&l->lock);
        if (l->batch_n == LINK_BATCH_AHEAD) {
                pthread_mutex_unlock(&l->lock);
                pthread_mutex_unlock(&l->request_lock);
                return -EBUSY;
        }
        id = ++l->next_id;
        k = (l->batch_head + l->batch_n++) % LINK_BATCH_AHEAD;
        l->batch_id[k] = id;
        json_decref(l->batch_reply[k]);
        l->batch_reply[k] = NULL;
        pthread_mutex_unlock(&l->lock);
        m = (size_t) snprintf(frame, BATCH_HEAD_MAX, "{\"type\":\"ingest-batch\",\"id\":%" PRId64
                              ",\"records\":%zu}", id, n);
        frame[m++] = '\0';
        memcpy(frame + m, records, len);
        m += len;
        r = link_send_text(l->fd, frame, m);
        if (r < 0) {
                /* Never sent: the slot is the newest (request_lock: no other send between). */
                pthread_mutex_lock(&l->lock);
                l->batch_id[k] = 0;
                l->batch_n--;
                pthread_mutex_unlock(&l->lock);
        }
        pthread_mutex_unlock(&l->request_lock);
        return r;
}

int link_ingest_batch_wait(Link *l, size_t n, SetError *errs, int *ret) {
        json_t *reply = NULL;
        struct timespec ts;
        size_t k;
        int r = 0;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += REPLY_TIMEOUT_SEC;
        pthread_mutex_lock(&l->lock);
        k = l->batch_head;
        if (l->batch_n == 0)
                r = -ENOENT;
        /* Even when stopping: the answer says what we may acknowledge. */
        while (r == 0 && !l->batch_reply[k]) {
                if (l->dead)
                        r = -ECONNRESET;
                else if (pthread_cond_timedwait(&l->cond, &l->lock, &ts) == ETIMEDOUT)
                        r = -ETIMEDOUT;
        }
        if (l->batch_n > 0) {
                /* Taken, answered or not: the next batch is the oldest now. */
                if (l->batch_reply[k]) {
                        reply = TAKE_PTR(l->batch_reply[k]);
                        r = 0;
                }
                l->batch_id[k] = 0;
                l->batch_head = (k + 1) % LINK_BATCH_AHEAD;
                l->batch_n--;
        }
        pthread_mutex_unlock(&l->lock);
        if (r < 0)
                return r;
        if (!errs || !ret) {
                json_decref(reply); /* taken, so that the next batch may go; nothing known */
                return -ENOMEM;
        }
        return batch_results(reply, n, errs, ret);
}

int link_kv_get(Link *l, const char *key, char **ret) {
        json_t *reply = NULL;
        const char *v;
        int r;

        r = link_request(l, json_pack("{s:s, s:s}", "type", "kv-get", "key", key), &reply);
        if (r >= 0) {
                v = json_string_value(json_object_get(reply, "value"));
                if (!v)
                        r = -ENOENT;
                else if (!(*ret = strdup(v)))
                        r = -ENOMEM;
        }
        json_decref(reply);
        return r;
}

int link_kv_set(Link *l, const char *key, const char *value) {
        json_t *reply = NULL;
        int r;

        r = link_request(l, json_pack("{s:s, s:s, s:s}", "type", "kv-set", "key", key, "value", value),
                         &reply);
        json_decref(reply);
        return r;
}

void link_facts(Link *l, json_t *stream, json_t *counters) {
        json_t *msg = json_pack("{s:s}", "type", "facts");

        if (!msg)
                return;
        if (stream)
                json_object_set(msg, "stream", stream);
        if (counters)
                json_object_set(msg, "counters", counters);
        (void) link_send(l->fd, msg);
        json_decref(msg);
}

void link_verify_result(Link *l, const char *state, const char *result) {
        json_t *msg = json_pack("{s:s, s:s, s:s}", "type", "verify-result", "state", state,
                                "result", result);
        if (msg)
                (void) link_send(l->fd, msg);
        json_decref(msg);
}

json_t *link_take_admin(Link *l) {
        json_t *m = NULL;

        pthread_mutex_lock(&l->lock);
        if (json_array_size(l->admin) > 0) {
                m = json_incref(json_array_get(l->admin, 0));
                (void) json_array_remove(l->admin, 0);
        }
        pthread_mutex_unlock(&l->lock);
        return m;
}

void link_admin_result(Link *l, json_int_t id, int status, const char *message,
                       const char *stream_status) {
        json_t *msg = json_pack("{s:s, s:I, s:i, s:s}", "type", "admin-result", "id", id,
                                "status", status, "message", strempty(message));

        if (msg && stream_status)
                (void) json_object_set_new(msg, "stream_status", json_string(stream_status));
        if (msg)
                (void) link_send(l->fd, msg);
        json_decref(msg);
}

int link_local_subjects(Link *l, json_t **ret, json_t **ret_removed) {
        json_t *reply = NULL, *a, *removed;
        int r;

        r = link_request(l, json_pack("{s:s}", "type", "local-subjects"), &reply);
        if (r >= 0) {
                a = json_object_get(reply, "subjects");
                removed = json_object_get(reply, "removed");
                if (!json_is_array(a) || (removed && !json_is_array(removed)))
                        r = -EBADMSG;
                else {
                        *ret = json_incref(a);
                        *ret_removed = removed ? json_incref(removed) : json_array();
                }
        }
        json_decref(reply);
        return r;
}

char *link_take_verify(Link *l) {
        char *s;

        pthread_mutex_lock(&l->lock);
        s = TAKE_PTR(l->verify_state);
        pthread_mutex_unlock(&l->lock);
        return s;
}

/* Sets *slot, a client a stop aborts: at once when the stop came first. */
static void set_client(Link *l, HttpClient **slot, HttpClient *http) {
        pthread_mutex_lock(&l->lock);
        *slot = http;
        if (http && l->stopping)
                http_client_abort(http);
        pthread_mutex_unlock(&l->lock);
}

void link_set_http(Link *l, HttpClient *http) {
        set_client(l, &l->http, http);
}

void link_set_http_ahead(Link *l, HttpClient *http) {
        set_client(l, &l->http_ahead, http);
}

void link_stop(Link *l) {
        pthread_mutex_lock(&l->lock);
        link_stop_locked(l);
        pthread_mutex_unlock(&l->lock);
}

bool link_stopping(Link *l) {
        bool s;

        pthread_mutex_lock(&l->lock);
        s = l->stopping;
        pthread_mutex_unlock(&l->lock);
        return s;
}

bool link_wait_stop(Link *l, uint64_t usec) {
        struct timespec ts;
        bool s;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t) (usec / 1000000u);
        ts.tv_nsec += (long) (usec % 1000000u) * 1000;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&l->lock);
        while (!l->stopping && !l->verify_state && json_array_size(l->admin) == 0)
                if (pthread_cond_timedwait(&l->cond, &l->lock, &ts) == ETIMEDOUT)
                        break;
        s = l->stopping;
        pthread_mutex_unlock(&l->lock);
        return s;
}
