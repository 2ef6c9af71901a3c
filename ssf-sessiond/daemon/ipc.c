/* SPDX-License-Identifier: MIT */
/*
 * The server side of the local IPC socket (ipc.h): answers pam_ssf.so and ssfctl, deciding
 * what each caller may ask from SO_PEERCRED. Runs in the root daemon: IPC_FRONT_THREADS front
 * threads accept the connections and answer PAM at once, from memory (the level table the
 * engine publishes after each commit), taking no lock a commit holds; each has its own loop, so
 * that a query whose user database lookup is slow (NSS: LDAP, sssd) holds up only its own
 * thread. An ssfctl request is handed to the main loop, which may be busy committing SETs.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include <jansson.h>
#include <systemd/sd-daemon.h>

#include "broker.h"
#include "engine.h"
#include "ipc.h"
#include "subject.h"
#include "users.h"
#include "log.h"
#include "macro.h"
#include "reason-user.h"
#include "ssf-ipc.h"
#include "utf8.h"

/* Connections one unprivileged uid may hold at once; all of them together get at most half
 * of IPC_MAX_CLIENTS. */
#define IPC_MAX_CLIENTS_PER_UID 16u

/* Threads that accept and answer PAM, each on its own loop and all on the listening socket. */
#define IPC_FRONT_THREADS 4u
/* `ssfctl history`: rows read per page, frames' send timeout, listings at once, and N's bound. */
#define HISTORY_PAGE 256u
#define HISTORY_SEND_USEC (5u * 1000000u)
#define HISTORY_MAX_STREAMS 4u
#define HISTORY_LIMIT_MAX 100000000


typedef struct IpcClient IpcClient;

typedef struct IpcFront {
        IpcServer *server;
        sd_event *event;                /* this thread's loop: accept, answer PAM */
        pthread_t thread;
        bool started;
} IpcFront;

struct IpcServer {
        State *state;
        Broker *broker;
        int fd;
        bool activated;
        char *path;
        IpcFront front[IPC_FRONT_THREADS];
        int stop_fd;                    /* eventfd: ends the front threads (never read) */
        sd_event_source *handoff_source; /* on the main loop */
        int handoff_fd;                 /* eventfd: ssfctl requests are queued */

        pthread_mutex_t lock;           /* guards clients, n_clients, handoff */
        IpcClient *clients;
        unsigned n_clients;
        IpcClient *handoff;             /* requests for the main loop, oldest last */
        IpcClient *waiting;             /* main loop only: `ssfctl verify` waiting */
        unsigned streams;               /* history threads running (under lock) */
        pthread_cond_t streams_done;
};

struct IpcClient {
        IpcServer *server;
        IpcClient *next, *prev;         /* all clients (under server->lock) */
        IpcClient *hnext;               /* handoff queue, then the waiting list */
        int fd;
        struct ucred cred;
        sd_event_source *io, *timer;    /* on the loop of the thread that owns the client */
        SsfIpcMsg request;              /* an ssfctl request handed to the main loop */
        bool main_owned;                /* handed over: the main loop's from then on */
        bool streaming;                 /* a history thread's: it frees c when done */
        bool waiting_verify;
        char *verify_state;
        bool waiting_admin;             /* a stream or subjects command: the worker's answer */
        uint64_t admin_id;
        char verify_transmitter[TRANSMITTER_NAME_MAX + 1];
        char admin_transmitter[TRANSMITTER_NAME_MAX + 1];
        char error_text[512]; /* a verb's error message built for this request */
};

/* Called by the thread that owns c (front, or main once handed over). */
static void client_free(IpcClient *c) {
        IpcServer *srv;

        if (!c)
                return;
        srv = c->server;
        pthread_mutex_lock(&srv->lock);
        if (c->prev)
                c->prev->next = c->next;
        else if (srv->clients == c)
                srv->clients = c->next;
        if (c->next)
                c->next->prev = c->prev;
        srv->n_clients--;
        pthread_mutex_unlock(&srv->lock);
        /* Only the main loop's clients can be on its waiting list (the front thread never
         * reads it). */
        for (IpcClient **p = &srv->waiting; c->main_owned && *p; p = &(*p)->hnext)
                if (*p == c) {
                        *p = c->hnext;
                        break;
                }
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        safe_close(c->fd);
        ssf_ipc_msg_done(&c->request);
        free(c->verify_state);
        free(c);
}

static void reply(IpcClient *c, const SsfIpcMsg *msg) {
        int r = ssf_ipc_send(c->fd, msg, ssf_now_usec() + 1000000u);
        if (r < 0)
                log_debug_errno(r, "Cannot answer IPC client pid " PID_FMT ": %m", c->cred.pid);
}

static void reply_error(IpcClient *c, uint16_t type, int error, const char *message) {
        SsfIpcMsg msg = {
                .type = type,
                .has_status = 1,
                .status = -abs(error),
                .message = UNCONST(message),
        };
        if (type == SSF_IPC_PAM_REPLY) {
                msg.has_level = 1;
                msg.level = RISK_NONE;
        }
        reply(c, &msg);
}

/* Root may ask about anyone; others only about their own account. */
static bool may_ask_about(const IpcClient *c, const LocalUser *u) {
        return c->cred.uid == 0 || u->uid == c->cred.uid;
}

static const char *lvl(RiskLevel l) {
        const char *s = risk_level_to_string(l);
        return s ? s : "none";
}

static void handle_pam(IpcClient *c, const SsfIpcMsg *q) {
        State *st = c->server->state;
        char detection[64] = "", reason_user[SSF_REASON_USER_SIZE] = "";
        RiskLevel level = RISK_NONE;
        char message[SSF_IPC_MAX_MESSAGE], why[200];
        SsfIpcMsg a = { .type = SSF_IPC_PAM_REPLY, .has_status = 1, .has_level = 1 };
        const char *protected_why = NULL;
        ConfigHandle *h;
        LocalUser u;
        int r;

        /* An unprivileged caller may only ask about its own account, by the name its uid has
         * (alias names are root's): its uid is looked up, never a name it chose, so that it
         * cannot keep this thread waiting on a slow user database with names of its making. */
        if (c->cred.uid != 0) {
                (void) local_user_from_uid(c->cred.uid, &u);
                if (!q->user || !streq(u.name, q->user)) {
                        reply_error(c, SSF_IPC_PAM_REPLY, EPERM, "may only ask about oneself");
                        return;
                }
                r = 0;
        } else
                /* The name as PAM gave it; the answer is about the account NSS resolves it to. */
                r = local_user_resolve(q->user, &u);
        if (r == -ESRCH || r == -EINVAL) {
                log_info("PAM query from pid " PID_FMT " for unknown user '%s' (service '%s'): "
                         "no such account, level none", c->cred.pid, q->user,
                         strempty(q->service));
                __atomic_add_fetch(&st->counters.pam_queries, 1, __ATOMIC_RELAXED);
                a.status = 0;
                a.level = RISK_NONE;
                reply(c, &a);
                return;
        }
        if (r < 0) {
                reply_error(c, SSF_IPC_PAM_REPLY, -r, "user database unavailable");
                return;
        }
        if (!may_ask_about(c, &u)) {
                reply_error(c, SSF_IPC_PAM_REPLY, EPERM, "may only ask about oneself");
                return;
        }
        h = state_config_ref(st);
        protected_why = local_user_protected(h->config, &u, why, sizeof(why));
        a.dry_run = h->config->dry_run; /* the module admits whom it would refuse */
        state_config_unref(st, h);

        /* From memory: what the last commit published. Never the store, never the lock a
         * commit holds. */
        __atomic_add_fetch(&st->counters.pam_queries, 1, __ATOMIC_RELAXED);
        if (!protected_why &&
            state_levels_lookup(st, u.uid, now_sec(), &level, detection, sizeof(detection),
                                reason_user, sizeof(reason_user)) < 0) {
                /* The store could not be read yet: no answer rather than a wrong one. */
                reply_error(c, SSF_IPC_PAM_REPLY, EAGAIN, "state unavailable");
                return;
        }
        /* Sanitised when stored (at most 800 bytes); never a reply the protocol cannot
         * carry. */
        if (reason_user[0] && strlen(reason_user) <= SSF_IPC_MAX_SHORT)
                a.reason_user = reason_user;
        a.status = 0;
        a.level = (uint8_t) level;
        if (level > RISK_NONE) {
                a.detection = UNCONST(detection);
                (void) snprintf(message, sizeof(message),
                                "Access denied: your account's security risk is %s (%s). Contact "
                                "your administrator.",
                                lvl(level), strempty(detection));
                a.message = message;
        }
        log_debug("PAM query from pid " PID_FMT " for '%s' (uid %u, service '%s'): %s%s%s",
                  c->cred.pid, q->user, (unsigned) u.uid, strempty(q->service), lvl(level),
                  protected_why ? ", " : "", strempty(protected_why));
        reply(c, &a);
}

/* ---- ssfctl verbs ------------------------------------------------------------------------- */

static json_t *jtime(uint64_t t) {
        char buf[64];
        return t ? json_string(format_rfc3339(t, buf, sizeof(buf))) : json_null();
}

static json_t *jstr(const char *s) {
        return s ? json_string(s) : json_null();
}

static int verb_risk(IpcClient *c, json_t *args, json_t **ret, const char **err) {
        State *st = c->server->state;
        const char *user = json_string_value(json_object_get(args, "user"));
        StoreDetection *d = NULL;
        size_t n = 0;
        json_t *arr;
        LocalUser u;
        int r;

        if (!local_user_name_ok(user)) {
                *err = "missing or invalid user";
                return -EINVAL;
        }
        r = local_user_resolve(user, &u);
        if (r == -ESRCH && c->cred.uid == 0) {
                /* No such account: nothing is known, as PAM answers. */
                *ret = json_pack("{s:s, s:s, s:[]}", "user", user, "level", "none", "detections");
                return *ret ? 0 : -ENOMEM;
        }
        if (r < 0 && r != -ESRCH)
                return r;
        if (r < 0 || !may_ask_about(c, &u)) {
                *err = "permission denied: only root may ask about other users";
                return -EPERM;
        }
        pthread_mutex_lock(&st->lock);
        r = store_detections_list(st->store, u.uid, now_sec(), &d, &n);
        pthread_mutex_unlock(&st->lock);
        if (r < 0)
                return r;
        arr = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o}",
                                                     "detection", d[i].detection,
                                                     "level", lvl(d[i].level),
                                                     "since", jtime(d[i].since),
                                                     "expires", jtime(d[i].expires),
                                                     "jti", jstr(d[i].jti),
                                                     "reason", jstr(d[i].reason),
                                                     "reason_user", jstr(d[i].reason_user)));
        *ret = json_pack("{s:s, s:s, s:o}", "user", u.name, "level",
                         lvl(n > 0 ? d[0].level : RISK_NONE), "detections", arr);
        store_detections_free(d, n);
        return *ret ? 0 : -ENOMEM;
}

/* `ssfctl history` streams: a thread of its own reads the store a page at a time (the state
 * lock is held for one page only) and sends as many CTL_REPLY frames as the answer needs, all
 * but the last with MORE. Neither PAM (front thread) nor ingestion (main loop) waits for it. */
typedef struct HistoryJob {
        IpcClient *client;
        int64_t uid;     /* -1: every user */
        uint64_t since;  /* 0: from the beginning */
        uint64_t limit;
} HistoryJob;

/* One CTL_REPLY frame of a listing: {"entries":[...]}, its entries' JSON written straight into
 * the frame's text, each once. */
typedef struct HistoryFrame {
        char text[SSF_IPC_MAX_JSON];
        size_t len;
        size_t n;        /* entries in it */
} HistoryFrame;

#define HISTORY_FRAME_HEAD "{\"entries\":["
#define HISTORY_FRAME_TAIL "]}"

static void history_frame_reset(HistoryFrame *f) {
        f->len = strlen(HISTORY_FRAME_HEAD);
        memcpy(f->text, HISTORY_FRAME_HEAD, f->len);
        f->n = 0;
}

static int send_part(IpcClient *c, HistoryFrame *f, bool more) {
        SsfIpcMsg a = { .type = SSF_IPC_CTL_REPLY, .has_status = 1, .more = more, .body = f->text };
        int r;

        memcpy(f->text + f->len, HISTORY_FRAME_TAIL, sizeof(HISTORY_FRAME_TAIL)); /* with its NUL */
        /* A client that does not read gets HISTORY_SEND_USEC per frame, then is dropped. */
        r = ssf_ipc_send(c->fd, &a, ssf_now_usec() + HISTORY_SEND_USEC);
        history_frame_reset(f);
        return r;
}

/* Writes into out[*len..size) without ever passing size; *len goes on counting, so that
 * *len > size afterwards says it did not fit. */
static void put_bytes(char *out, size_t size, size_t *len, const char *s, size_t n) {
        if (*len < size)
                memcpy(out + *len, s, MIN(n, size - *len));
        *len += n;
}

/* s as a JSON string (null for NULL): quotes, backslashes and control characters escaped,
 * bytes that are not UTF-8 as U+FFFD (the store's text is the network's: a row is never lost
 * to one bad byte). */
static void put_json_string(char *out, size_t size, size_t *len, const char *s) {
        const uint8_t *p = (const uint8_t *) s;
        size_t n, run = 0;

        if (!s) {
                put_bytes(out, size, len, "null", 4);
                return;
        }
        n = strlen(s);
        put_bytes(out, size, len, "\"", 1);
        for (size_t i = 0; i < n;) {
                uint32_t cp = 0;
                size_t l = p[i] < 0x80 ? 1 : ssf_utf8_decode(p + i, n - i, &cp);
                char esc[8];

                if (p[i] >= 0x20 && p[i] != '"' && p[i] != '\\' && (p[i] < 0x80 || cp != SSF_UTF8_INVALID)) {
                        i += l;
                        continue;
                }
                put_bytes(out, size, len, s + run, i - run);
                if (p[i] == '"' || p[i] == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char) p[i];
                        put_bytes(out, size, len, esc, 2);
                } else if (p[i] < 0x20) {
                        (void) snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
                        put_bytes(out, size, len, esc, 6);
                } else
                        put_bytes(out, size, len, "\\ufffd", 6);
                i += l;
                run = i;
        }
        put_bytes(out, size, len, s + run, n - run);
        put_bytes(out, size, len, "\"", 1);
}

/* Entry h as a JSON object (the keys of `ssfctl history --json`), written straight into
 * out[*len..size): no JSON object built and printed per row. */
static void put_history_entry(char *out, size_t size, size_t *len, const HistoryEntry *h) {
        char t[64], d[32];
        const struct {
                const char *key, *value;
        } fields[] = {
                { "time", h->time ? format_rfc3339(h->time, t, sizeof(t)) : NULL },
                { "user", h->user },
                { "jti", h->jti },
                { "txn", h->txn },
                { "transmitter", h->transmitter },
                { "event", h->event },
                { "detection", h->detection },
                { "level_before", lvl(h->level_before) },
                { "level_after", lvl(h->level_after) },
                { "rule", h->rule },
                { "action", h->action },
                { "result", h->result },
        };

        for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
                put_bytes(out, size, len, i == 0 ? "{" : ",", 1);
                put_json_string(out, size, len, fields[i].key);
                put_bytes(out, size, len, ":", 1);
                put_json_string(out, size, len, fields[i].value);
        }
        put_bytes(out, size, len, ",\"duration_ms\":", strlen(",\"duration_ms\":"));
        if (h->duration_ms >= 0) {
                int k = snprintf(d, sizeof(d), "%" PRIi64, h->duration_ms);

                put_bytes(out, size, len, d, (size_t) k);
        } else
                put_bytes(out, size, len, "null", 4);
        put_bytes(out, size, len, "}", 1);
}

/* Adds entry h to the frame, after sending the frame first when h does not fit in it any more.
 * The room kept free is what the old code kept (256 bytes). */
static int history_frame_add(IpcClient *c, HistoryFrame *f, const HistoryEntry *h) {
        const size_t room = SSF_IPC_MAX_JSON - 256 - sizeof(HISTORY_FRAME_TAIL);
        int r;

        for (;;) {
                size_t len = f->len;

                if (f->n > 0)
                        put_bytes(f->text, room, &len, ",", 1);
                put_history_entry(f->text, room, &len, h);
                if (len <= room) {
                        f->len = len;
                        f->n++;
                        return 0;
                }
                if (f->n == 0)
                        return -E2BIG; /* one entry larger than a frame */
                r = send_part(c, f, true);
                if (r < 0)
                        return r;
        }
}

static void *history_thread(void *userdata) {
        HistoryJob *job = userdata;
        IpcClient *c = job->client;
        IpcServer *srv = c->server;
        State *st = srv->state;
        _cleanup_free_ HistoryFrame *frame = malloc(sizeof(HistoryFrame));
        int64_t before = INT64_MAX;
        uint64_t left = job->limit;
        int r = frame ? 0 : -ENOMEM;

        /* An admin's listing yields the CPU to logins: this thread only, the front thread
         * that answers PAM keeps its priority. */
        (void) prctl(PR_SET_NAME, (unsigned long) "ssf-admin", 0, 0, 0);
        state_thread_background(st, PRIO_ADMIN_NICE);
        if (frame)
                history_frame_reset(frame);

        while (r >= 0 && left > 0) {
                HistoryEntry *h = NULL;
                size_t n = 0;

                pthread_mutex_lock(&st->lock);
                r = store_history_page(st->store, job->uid, job->since, before,
                                       (size_t) MIN(left, (uint64_t) HISTORY_PAGE), &h, &n);
                pthread_mutex_unlock(&st->lock);
                if (r < 0)
                        break;
                for (size_t i = 0; i < n && r >= 0; i++)
                        r = history_frame_add(c, frame, &h[i]);
                left -= MIN(left, (uint64_t) n);
                if (n > 0)
                        before = h[n - 1].id;
                history_entries_free(h, n);
                if (n < HISTORY_PAGE)
                        break; /* no more rows */
        }
        if (r >= 0)
                r = send_part(c, frame, false);
        else if (r != -ETIMEDOUT && r != -EPIPE && r != -ECONNRESET)
                reply_error(c, SSF_IPC_CTL_REPLY, -r, "cannot read the history");
        if (r < 0)
                log_debug_errno(r, "History for IPC client pid " PID_FMT " ended: %m", c->cred.pid);

        client_free(c);
        pthread_mutex_lock(&srv->lock);
        srv->streams--;
        pthread_cond_broadcast(&srv->streams_done);
        pthread_mutex_unlock(&srv->lock);
        free(job);
        return NULL;
}

static int verb_history(IpcClient *c, json_t *args, json_t **ret, const char **err) {
        const char *user = json_string_value(json_object_get(args, "user"));
        json_t *lim = json_object_get(args, "limit"), *since = json_object_get(args, "since");
        IpcServer *srv = c->server;
        HistoryJob *job;
        LocalUser u = {};
        pthread_attr_t attr;
        pthread_t t;
        bool busy;
        int r;

        job = calloc(1, sizeof(*job));
        if (!job)
                return -ENOMEM;
        *job = (HistoryJob){ .client = c, .uid = -1, .limit = 20 };
        if (lim) {
                if (!json_is_integer(lim) || json_integer_value(lim) < 1 ||
                    json_integer_value(lim) > HISTORY_LIMIT_MAX) {
                        free(job);
                        *err = "limit must be an integer from 1 to 100000000";
                        return -EINVAL;
                }
                job->limit = (uint64_t) json_integer_value(lim);
        }
        if (since) {
                if (!json_is_integer(since) || json_integer_value(since) < 0) {
                        free(job);
                        *err = "since must be a time in epoch seconds";
                        return -EINVAL;
                }
                job->since = (uint64_t) json_integer_value(since);
        }
        if (user && !local_user_name_ok(user)) {
                free(job);
                *err = "invalid user";
                return -EINVAL;
        }
        if (user) {
                r = local_user_resolve(user, &u);
                if (r < 0 && r != -ESRCH) {
                        free(job);
                        return r;
                }
                if (r == -ESRCH) {
                        free(job);
                        if (c->cred.uid != 0) {
                                *err = "permission denied: only root may read other users' history";
                                return -EPERM;
                        }
                        *ret = json_pack("{s:[]}", "entries");
                        return *ret ? 0 : -ENOMEM;
                }
                job->uid = u.uid;
        }
        if (c->cred.uid != 0 && (!user || !may_ask_about(c, &u))) {
                free(job);
                *err = "permission denied: only root may read other users' history";
                return -EPERM;
        }

        pthread_mutex_lock(&srv->lock);
        busy = srv->streams >= HISTORY_MAX_STREAMS;
        if (!busy)
                srv->streams++;
        pthread_mutex_unlock(&srv->lock);
        if (busy) {
                free(job);
                *err = "too many history listings at once, try again";
                return -EBUSY;
        }
        /* The client is the history thread's from here on. */
        c->timer = sd_event_source_disable_unref(c->timer);
        c->main_owned = false;
        c->streaming = true;
        (void) pthread_attr_init(&attr);
        (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        r = pthread_create(&t, &attr, history_thread, job);
        (void) pthread_attr_destroy(&attr);
        if (r != 0) {
                c->streaming = false;
                c->main_owned = true;
                pthread_mutex_lock(&srv->lock);
                srv->streams--;
                pthread_mutex_unlock(&srv->lock);
                free(job);
                return -r;
        }
        return 1; /* answered by the thread */
}

static int verb_users(IpcClient *c, json_t **ret) {
        State *st = c->server->state;
        StoreUser *u = NULL;
        size_t n = 0;
        json_t *arr;
        int r;

        pthread_mutex_lock(&st->lock);
        r = store_users_list(st->store, now_sec(), &u, &n);
        pthread_mutex_unlock(&st->lock);
        if (r < 0)
                return r;
        arr = json_array();
        for (size_t i = 0; i < n; i++) {
                LocalUser lu;

                (void) local_user_from_uid(u[i].uid, &lu); /* shown by getpwuid()'s name */
                json_array_append_new(arr, json_pack("{s:s, s:s, s:o}", "user", lu.name,
                                                     "level", lvl(u[i].level), "updated",
                                                     jtime(u[i].updated)));
        }
        store_users_free(u, n);
        *ret = json_pack("{s:o}", "users", arr);
        return *ret ? 0 : -ENOMEM;
}

static int verb_reset_or_set(IpcClient *c, json_t *args, bool reset, json_t **ret,
                             const char **err) {
        State *st = c->server->state;
        const char *user = json_string_value(json_object_get(args, "user"));
        const char *level_s = json_string_value(json_object_get(args, "level"));
        const char *reason = json_string_value(json_object_get(args, "reason"));
        RiskLevel level = RISK_NONE, before, after = RISK_NONE;
        char why[300], prot[200];
        LocalUser u;
        int r;

        if (!local_user_name_ok(user)) {
                *err = "missing or invalid user";
                return -EINVAL;
        }
        r = local_user_resolve(user, &u);
        if (r == -ESRCH) {
                *err = "no such user";
                return -ESRCH;
        }
        if (r < 0)
                return r;
        if (!reset) {
                level = risk_level_from_string(level_s);
                if (level < 0) {
                        *err = "level must be none, low, medium or high";
                        return -EINVAL;
                }
        }
        if (reason && strlen(reason) > 200) {
                *err = "reason is longer than 200 characters";
                return -EINVAL;
        }
        if (!reset) {
                ConfigHandle *h = state_config_ref(st);
                bool prot_refused = local_user_protected(h->config, &u, prot, sizeof(prot));

                state_config_unref(st, h);
                if (prot_refused) {
                        /* "protected: 'root' is in protect" -> the reason, in the error. */
                        (void) snprintf(c->error_text, sizeof(c->error_text),
                                        "refused: '%s' is never acted upon (%s)", u.name, prot);
                        *err = c->error_text;
                        return -EPERM;
                }
        }
        (void) snprintf(why, sizeof(why), "by uid %u%s%s", (unsigned) c->cred.uid,
                        reason ? ": " : "", reason ? reason : "");
        r = reset ? engine_reset_user(st, &u, why, &before)
                  : engine_set_risk(st, &u, level, why, &before);
        if (r < 0)
                return r;
        pthread_mutex_lock(&st->lock);
        (void) store_user_level(st->store, u.uid, now_sec(), &after, NULL);
        pthread_mutex_unlock(&st->lock);
        *ret = json_pack("{s:s, s:s, s:s}", "user", u.name, "level_before", lvl(before),
                         "level_after", lvl(after));
        return *ret ? 0 : -ENOMEM;
}

/* A copy of the counters (call with st->lock held; pam_queries is atomic). */
static Counters counters_copy(State *st) {
        Counters k = {};

        k.sets_received = st->counters.sets_received;
        k.sets_acknowledged = st->counters.sets_acknowledged;
        k.sets_rejected = st->counters.sets_rejected;
        k.sets_duplicate = st->counters.sets_duplicate;
        k.subjects_unmapped = st->counters.subjects_unmapped;
        k.actions_logout = st->counters.actions_logout;
        k.actions_workflow = st->counters.actions_workflow;
        k.actions_failed = st->counters.actions_failed;
        k.polls = st->counters.polls;
        k.poll_errors = st->counters.poll_errors;
        k.pam_queries = __atomic_load_n(&st->counters.pam_queries, __ATOMIC_RELAXED);
        return k;
}

static json_t *counters_json(const Counters *k) {
        return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                         "sets_received", (json_int_t) k->sets_received,
                         "sets_acknowledged", (json_int_t) k->sets_acknowledged,
                         "sets_rejected", (json_int_t) k->sets_rejected,
                         "sets_duplicate", (json_int_t) k->sets_duplicate,
                         "subjects_unmapped", (json_int_t) k->subjects_unmapped,
                         "actions_logout", (json_int_t) k->actions_logout,
                         "actions_workflow", (json_int_t) k->actions_workflow,
                         "actions_failed", (json_int_t) k->actions_failed,
                         "polls", (json_int_t) k->polls,
                         "poll_errors", (json_int_t) k->poll_errors,
                         "pam_queries", (json_int_t) k->pam_queries);
}

static json_t *parse_or_null(const char *text) {
        json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
        return j ? j : json_null();
}

/* The "stream" object of ssfctl status (call with st->lock held). */
static json_t *stream_facts_json(const StreamFacts *s) {
        return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                         "stream_id", jstr(s->stream_id),
                         "issuer", jstr(s->issuer),
                         "status", jstr(s->status),
                         "delivery", jstr(s->delivery),
                         "endpoint_url", jstr(s->endpoint_url),
                         "audience", jstr(s->audience),
                         "events_delivered", parse_or_null(s->events_delivered_json),
                         "last_poll", jtime(s->last_poll),
                         "last_error", jstr(s->last_error),
                         "last_verified", jtime(s->last_verified),
                         "verification", jstr(s->verify_received ? "received"
                                              : s->verify_result ? s->verify_result
                                              : s->verify_state ? "requested" : NULL));
}

static json_t *transmitter_counters_json(const Counters *k) {
        return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
                         "sets_received", (json_int_t) k->sets_received,
                         "sets_acknowledged", (json_int_t) k->sets_acknowledged,
                         "sets_rejected", (json_int_t) k->sets_rejected,
                         "sets_duplicate", (json_int_t) k->sets_duplicate,
                         "polls", (json_int_t) k->polls,
                         "poll_errors", (json_int_t) k->poll_errors);
}

/* {"transmitters": [{"name", "issuer", "delivery", "stream_id", "status", "counters"}]}'s
 * array: the configured transmitters, in configuration order (call with st->lock held). */
static json_t *transmitters_json(State *st, const Config *cfg) {
        json_t *a = json_array();

        for (size_t i = 0; a && i < cfg->n_transmitters; i++) {
                const TransmitterConfig *tc = &cfg->transmitters[i];
                const TransmitterState *ts = state_transmitter(st, tc->name);
                const StreamFacts *s = ts ? &ts->stream : NULL;
                const char *delivery = s && s->delivery ? s->delivery
                                       : tc->delivery == DELIVERY_PUSH ? "urn:ietf:rfc:8935"
                                                                        : "urn:ietf:rfc:8936";
                Counters none = {};

                if (json_array_append_new(a, json_pack("{s:s, s:o, s:s, s:o, s:o, s:o}",
                                                       "name", tc->name,
                                                       "issuer",
                                                       jstr(s && s->issuer ? s->issuer : tc->issuer),
                                                       "delivery", delivery,
                                                       "stream_id", jstr(s ? s->stream_id : NULL),
                                                       "status", jstr(s ? s->status : NULL),
                                                       "counters",
                                                       transmitter_counters_json(ts ? &ts->counters
                                                                                    : &none))) < 0) {
                        json_decref(a);
                        return NULL;
                }
        }
        return a;
}

/* The transmitter a stream verb is about: args' "transmitter", which must name one; without
 * it, the only one. With several, naming it is required. Returns its name (in the config
 * handle's lifetime) or NULL with *err set (a static or thread-local message). */
static const char *verb_transmitter(const Config *cfg, json_t *args, const char **err, int *ret_r) {
        static __thread char msg[1024];
        json_t *t = json_object_get(args, "transmitter");
        const TransmitterConfig *tc = NULL;
        size_t n = 0;

        *ret_r = -EINVAL;
        if (t && !json_is_string(t)) {
                *err = "transmitter must be a string";
                return NULL;
        }
        if (t)
                tc = config_transmitter(cfg, json_string_value(t));
        else if (cfg->n_transmitters == 1)
                tc = &cfg->transmitters[0];
        if (tc)
                return tc->name;
        n = (size_t) snprintf(msg, sizeof(msg), t ? "no transmitter is named '%.32s'; the "
                              "transmitters are:" : "there are several transmitters: name one "
                              "with --transmitter NAME:", json_string_value(t));
        for (size_t i = 0; i < cfg->n_transmitters && n < sizeof(msg); i++)
                n += (size_t) snprintf(msg + n, sizeof(msg) - n, "%s %s", i ? "," : "",
                                       cfg->transmitters[i].name);
        *err = msg;
        *ret_r = t ? -ESRCH : -EINVAL;
        return NULL;
}

static int verb_status(IpcClient *c, json_t **ret) {
        State *st = c->server->state;
        ConfigHandle *h = state_config_ref(st);
        TransmitterState *main_ts;
        json_t *stream, *transmitters;

        pthread_mutex_lock(&st->lock);
        main_ts = state_transmitter_main(st);
        stream = main_ts ? stream_facts_json(&main_ts->stream) : json_null();
        transmitters = transmitters_json(st, h->config);
        Counters k = counters_copy(st);
        *ret = json_pack("{s:o, s:o, s:o, s:s, s:o}", "stream", stream, "transmitters",
                         transmitters ? transmitters : json_array(), "counters",
                         counters_json(&k), "version", SSF_VERSION, "started",
                         jtime(st->started));
        pthread_mutex_unlock(&st->lock);
        state_config_unref(st, h);
        return *ret ? 0 : -ENOMEM;
}

static int verb_transmitters(IpcClient *c, json_t **ret) {
        State *st = c->server->state;
        ConfigHandle *h = state_config_ref(st);
        json_t *a;

        pthread_mutex_lock(&st->lock);
        a = transmitters_json(st, h->config);
        pthread_mutex_unlock(&st->lock);
        state_config_unref(st, h);
        *ret = a ? json_pack("{s:o}", "transmitters", a) : NULL;
        return *ret ? 0 : -ENOMEM;
}

/* {"transmitter", "stream_id", "status", "configuration": {…}}. */
static int verb_stream(IpcClient *c, json_t *args, json_t **ret, const char **err) {
        State *st = c->server->state;
        ConfigHandle *h = state_config_ref(st);
        const char *name;
        json_t *j = NULL;
        bool deleted = false;
        int r;

        name = verb_transmitter(h->config, args, err, &r);
        if (!name) {
                state_config_unref(st, h);
                return r;
        }
        pthread_mutex_lock(&st->lock);
        {
                TransmitterState *ts = state_transmitter(st, name);
                json_t *cfg = ts && ts->stream.config_json ? json_loads(ts->stream.config_json, 0, NULL)
                                                           : NULL;

                deleted = ts && ts->stream.deleted;
                if (cfg)
                        j = json_pack("{s:s, s:o, s:o, s:o}", "transmitter", name,
                                      "stream_id", jstr(ts->stream.stream_id),
                                      "status", jstr(ts->stream.status), "configuration", cfg);
        }
        pthread_mutex_unlock(&st->lock);
        state_config_unref(st, h);
        if (!j) {
                *err = deleted
                        ? "no stream: it was deleted ('ssfctl stream create' makes a new one)"
                        : "no stream yet: the transmitter has not been reached";
                return -ENOENT;
        }
        *ret = j;
        return 0;
}

static int verb_metrics(IpcClient *c, json_t **ret) {
        State *st = c->server->state;
        StoreUser *u = NULL;
        size_t n = 0;
        unsigned per_level[_RISK_MAX] = {};
        Counters k;
        char *text = NULL;
        size_t size = 0;
        FILE *f;
        bool up;

        pthread_mutex_lock(&st->lock);
        k = counters_copy(st);
        up = st->n_transmitters > 0;
        for (size_t i = 0; i < st->n_transmitters; i++)
                if (!streq_ptr(st->transmitters[i].stream.status, "enabled") ||
                    st->transmitters[i].stream.last_error)
                        up = false;
        if (store_users_list(st->store, now_sec(), &u, &n) >= 0) {
                for (size_t i = 0; i < n; i++)
                        if (u[i].level >= 0 && u[i].level < _RISK_MAX)
                                per_level[u[i].level]++;
                store_users_free(u, n);
        }
        pthread_mutex_unlock(&st->lock);

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
#define COUNTER(name, help, v)                                                               \
        fprintf(f, "# HELP ssf_" name " " help "\n# TYPE ssf_" name " counter\nssf_" name " %llu\n", \
                (unsigned long long) (v))
        COUNTER("sets_received_total", "Security event tokens received.", k.sets_received);
        COUNTER("sets_acknowledged_total", "SETs acknowledged to the transmitter.",
                k.sets_acknowledged);
        COUNTER("sets_rejected_total", "SETs reported invalid in setErrs.", k.sets_rejected);
        COUNTER("sets_duplicate_total", "SETs received again (replayed jti).", k.sets_duplicate);
        COUNTER("subjects_unmapped_total", "SETs whose subject maps to no local user.",
                k.subjects_unmapped);
        COUNTER("actions_logout_total", "Logout actions that succeeded.", k.actions_logout);
        COUNTER("actions_workflow_total", "Workflow hooks that succeeded.", k.actions_workflow);
        COUNTER("actions_failed_total", "Actions that failed.", k.actions_failed);
        COUNTER("polls_total", "Poll requests sent.", k.polls);
        COUNTER("poll_errors_total", "Poll requests that failed.", k.poll_errors);
        COUNTER("pam_queries_total", "Risk queries answered for pam_ssf.", k.pam_queries);
#undef COUNTER
        fprintf(f, "# HELP ssf_users_at_risk Users whose risk level is above none.\n"
                   "# TYPE ssf_users_at_risk gauge\n");
        for (int l = RISK_LOW; l < _RISK_MAX; l++)
                fprintf(f, "ssf_users_at_risk{level=\"%s\"} %u\n", lvl((RiskLevel) l),
                        per_level[l]);
        fprintf(f, "# HELP ssf_stream_up Whether the stream is enabled and the last poll "
                   "succeeded.\n# TYPE ssf_stream_up gauge\nssf_stream_up %d\n", up ? 1 : 0);
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        *ret = json_pack("{s:s}", "text", text);
        free(text);
        return *ret ? 0 : -ENOMEM;
}

static void client_reply_body(IpcClient *c, json_t *body) {
        _cleanup_free_ char *text = NULL;
        /* The lists that can grow: history entries (newest first) and users. */
        json_t *entries = json_object_get(body, "entries");

        if (!entries)
                entries = json_object_get(body, "users");
        SsfIpcMsg a = { .type = SSF_IPC_CTL_REPLY, .has_status = 1 };

        /* Keep the reply within one frame: drop the oldest history entries. */
        for (;;) {
                free(text);
                text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
                if (!text || strlen(text) <= SSF_IPC_MAX_JSON - 64 || json_array_size(entries) == 0)
                        break;
                json_array_remove(entries, json_array_size(entries) - 1);
                json_object_set_new(body, "truncated", json_true());
        }
        if (!text || strlen(text) > SSF_IPC_MAX_JSON) {
                reply_error(c, SSF_IPC_CTL_REPLY, E2BIG, "reply too large");
                return;
        }
        a.body = text;
        reply(c, &a);
}

static int verb_verify(IpcClient *c, json_t *args, const char **err) {
        json_t *t = json_object_get(args, "timeout_ms");
        uint64_t timeout = 30000;
        char state[33];
        int r;

        if (t) {
                if (!json_is_integer(t) || json_integer_value(t) < 100 ||
                    json_integer_value(t) > 120000) {
                        *err = "timeout_ms must be from 100 to 120000";
                        return -EINVAL;
                }
                timeout = (uint64_t) json_integer_value(t);
        }
        {
                ConfigHandle *h = state_config_ref(c->server->state);
                const char *name = verb_transmitter(h->config, args, err, &r);

                if (name)
                        (void) snprintf(c->verify_transmitter, sizeof(c->verify_transmitter), "%s", name);
                state_config_unref(c->server->state, h);
                if (!name)
                        return r;
        }
        r = broker_request_verification(c->server->broker, c->verify_transmitter, state);
        if (r == -ENOENT) {
                *err = "no stream yet: the transmitter has not been reached";
                return r;
        }
        if (r < 0) {
                *err = "the network worker is not running";
                return r;
        }

        c->verify_state = strdup(state);
        if (!c->verify_state)
                return -ENOMEM;
        /* Those still waiting for an older state get their answer now. */
        ipc_server_dispatch_waiting(c->server);
        c->waiting_verify = true;
        (void) sd_event_source_set_time_relative(c->timer, timeout * 1000u);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
        return 1; /* answered later */
}

static void answer_verify(IpcClient *c, bool timed_out) {
        State *st = c->server->state;
        _cleanup_(json_decrefp) json_t *body = NULL;
        bool mine, received, done;
        char result[256];

        pthread_mutex_lock(&st->lock);
        TransmitterState *ts = state_transmitter(st, c->verify_transmitter);
        StreamFacts none = {}, *sf = ts ? &ts->stream : &none;
        mine = streq_ptr(sf->verify_state, c->verify_state);
        received = mine && sf->verify_received;
        done = !mine || received ||
               (sf->verify_result && !streq(sf->verify_result, "requested"));
        (void) snprintf(result, sizeof(result), "%s",
                        !mine ? "superseded by a newer verification request"
                        : received ? "received"
                        : sf->verify_result ? sf->verify_result : "not requested yet");
        pthread_mutex_unlock(&st->lock);
        if (!done && !timed_out)
                return;
        if (!done)
                (void) snprintf(result, sizeof(result), "timed out waiting for the verification "
                                                        "event");
        body = json_pack("{s:s, s:b, s:b, s:s}", "state", c->verify_state, "requested", 1,
                         "received", received, "result", result);
        c->waiting_verify = false;
        if (body)
                client_reply_body(c, body);
        client_free(c);
}

/* How long a stream or subjects command waits for the worker (a create discovers, fetches the
 * keys and creates: a few management calls of at most 15 s each). */
#define ADMIN_TIMEOUT_USEC (30u * 1000000u)
/* Subjects one `ssfctl subjects add USER` may stand for (the worker's bound too). */
#define ADMIN_SUBJECTS_MAX 64u

/* `ssfctl subjects add|remove USER|SUBJECT-JSON`: the subjects as an array in *ret. */
static int admin_subjects(IpcClient *c, const char *arg, json_t **ret, const char **err) {
        _cleanup_(json_decrefp) json_t *a = NULL;
        ConfigHandle *h;
        LocalUser u;
        char why[256];
        int r;

        if (!arg) {
                *err = "a USER or a SUBJECT-JSON is needed";
                return -EINVAL;
        }
        if (arg[strspn(arg, " \t\n")] == '{') {
                json_t *s = NULL;

                r = subject_parse_admin(arg, strlen(arg), &s, c->error_text, sizeof(c->error_text));
                if (r < 0) {
                        *err = c->error_text;
                        return r;
                }
                a = json_array();
                if (!a || json_array_append_new(a, s) < 0) {
                        json_decref(s);
                        return -ENOMEM;
                }
                *ret = TAKE_PTR(a);
                return 0;
        }
        r = local_user_resolve(arg, &u);
        if (r == -ESRCH || r == -EINVAL) {
                *err = "no such user (a SUBJECT-JSON starts with '{')";
                return -ESRCH;
        }
        if (r < 0) {
                *err = "cannot look the user up";
                return r;
        }
        a = json_array();
        if (!a)
                return -ENOMEM;
        h = state_config_ref(c->server->state);
        if (local_user_protected(h->config, &u, why, sizeof(why))) {
                (void) snprintf(c->error_text, sizeof(c->error_text), "user '%.128s' is never acted "
                                "upon (%.200s): its subjects are not added", u.name, why);
                r = -EPERM;
        } else {
                r = subject_for_user(h->config, &u, arg, a, c->error_text, sizeof(c->error_text));
                if (r >= 0 && json_array_size(a) > ADMIN_SUBJECTS_MAX) {
                        (void) snprintf(c->error_text, sizeof(c->error_text), "user '%.128s' stands "
                                        "for more than %u subjects", u.name, ADMIN_SUBJECTS_MAX);
                        r = -E2BIG;
                }
        }
        state_config_unref(c->server->state, h);
        if (r < 0) {
                *err = c->error_text;
                return r;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

/* `ssfctl stream pause|resume|disable|delete|create`, `ssfctl subjects add|remove`: asks the
 * worker (broker_admin()) and answers once it has (answer_admin()). Returns 1 (answered later)
 * or -errno with *err. */
static int verb_admin(IpcClient *c, const char *verb, json_t *args, const char **err) {
        _cleanup_(json_decrefp) json_t *req = NULL;
        State *st = c->server->state;
        const TransmitterConfig *tc;
        ConfigHandle *h;
        const char *name;
        bool configured = false, streamless = false;
        int r;

        /* Which transmitter: --transmitter NAME, or the only one. */
        h = state_config_ref(st);
        name = verb_transmitter(h->config, args, err, &r);
        tc = name ? config_transmitter(h->config, name) : NULL;
        if (tc) {
                (void) snprintf(c->admin_transmitter, sizeof(c->admin_transmitter), "%s", name);
                configured = tc->stream_id != NULL;
                streamless = tc->stream == STREAM_NONE;
        }
        state_config_unref(st, h);
        if (!tc)
                return r;
        if (streamless) {
                (void) snprintf(c->error_text, sizeof(c->error_text), "transmitter '%s' has stream = "
                                "none: there is no stream to manage", c->admin_transmitter);
                *err = c->error_text;
                return -EOPNOTSUPP;
        }
        if (streq(verb, "stream-status")) {
                const char *status = json_string_value(json_object_get(args, "status"));
                json_t *reason = json_object_get(args, "reason");

                if (!streq_ptr(status, "enabled") && !streq_ptr(status, "paused") &&
                    !streq_ptr(status, "disabled")) {
                        *err = "status must be enabled, paused or disabled";
                        return -EINVAL;
                }
                if (reason && !json_is_null(reason) &&
                    (!json_is_string(reason) || json_string_length(reason) > 1024 ||
                     strlen(json_string_value(reason)) != json_string_length(reason))) {
                        *err = "reason must be a text of at most 1024 bytes";
                        return -EINVAL;
                }
                req = json_pack("{s:s, s:s}", "op", "status", "status", status);
                if (req && json_is_string(reason))
                        json_object_set(req, "reason", reason);
        } else if (streq(verb, "stream-delete") || streq(verb, "stream-create")) {
                if (configured && streq(verb, "stream-delete")) {
                        *err = "stream_id is set in the configuration: remove it first, or the "
                               "daemon would look for the deleted stream";
                        return -EINVAL;
                }
                req = json_pack("{s:s}", "op", streq(verb, "stream-delete") ? "delete" : "create");
        } else {
                json_t *subjects = NULL;
                bool user;
                const char *arg = json_string_value(json_object_get(args, "subject"));

                r = admin_subjects(c, arg, &subjects, err);
                if (r < 0)
                        return r;
                user = arg[strspn(arg, " \t\n")] != '{';
                req = json_pack("{s:s, s:o}", "op",
                                streq(verb, "subjects-add") ? "add-subject" : "remove-subject",
                                "subjects", subjects);
                /* The subjects of a local user are verified (SSF §8.1.3.2): this host knows
                 * the account; a subject given as JSON is passed on as the admin gave it. */
                if (req && user && streq(verb, "subjects-add"))
                        json_object_set_new(req, "verified", json_true());
        }
        if (!req)
                return -ENOMEM;
        r = broker_admin(c->server->broker, c->admin_transmitter, req, &c->admin_id);
        if (r < 0) {
                *err = "the network worker is not running";
                return r;
        }
        c->waiting_admin = true;
        (void) sd_event_source_set_time_relative(c->timer, ADMIN_TIMEOUT_USEC);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
        return 1;
}

static void answer_admin(IpcClient *c, bool timed_out) {
        _cleanup_(json_decrefp) json_t *body = NULL;
        char message[512];
        int status = 0, r;

        r = broker_admin_result(c->server->state, c->admin_transmitter, c->admin_id, &status, message,
                                sizeof(message));
        if (r == -EAGAIN && !timed_out)
                return;
        c->waiting_admin = false;
        if (r == -EAGAIN)
                reply_error(c, SSF_IPC_CTL_REPLY, ETIMEDOUT, "timed out waiting for the network "
                            "worker (the transmitter may still carry the request out)");
        else if (r < 0)
                reply_error(c, SSF_IPC_CTL_REPLY, ESTALE, "the answer was lost (too many "
                            "requests at once)");
        else if (status < 0)
                reply_error(c, SSF_IPC_CTL_REPLY, -status, message[0] ? message : strerror(-status));
        else {
                body = json_pack("{s:s, s:s}", "transmitter", c->admin_transmitter, "result", message);
                if (body)
                        client_reply_body(c, body);
        }
        client_free(c);
}

static void handle_ctl(IpcClient *c, const SsfIpcMsg *q) {
        _cleanup_(json_decrefp) json_t *args = NULL, *body = NULL;
        const char *verb = q->verb, *err = NULL;
        bool admin = c->cred.uid == 0;
        int r;

        if (q->args) {
                args = json_loads(q->args, JSON_REJECT_DUPLICATES, NULL);
                if (!json_is_object(args)) {
                        reply_error(c, SSF_IPC_CTL_REPLY, EINVAL, "ARGS is not a JSON object");
                        return;
                }
        } else
                args = json_object();

        if (streq(verb, "risk"))
                r = verb_risk(c, args, &body, &err);
        else if (streq(verb, "history")) {
                r = verb_history(c, args, &body, &err);
                if (r > 0)
                        return; /* streamed by its own thread, which owns c now */
        }
        else if (!admin && (streq(verb, "status") || streq(verb, "users") ||
                            streq(verb, "reset") || streq(verb, "set-risk") ||
                            streq(verb, "verify") || streq(verb, "stream") ||
                            streq(verb, "metrics") || streq(verb, "transmitters") ||
                            startswith(verb, "stream-") || startswith(verb, "subjects-"))) {
                r = -EPERM;
                err = "permission denied: only root may use this command";
        } else if (streq(verb, "status"))
                r = verb_status(c, &body);
        else if (streq(verb, "users"))
                r = verb_users(c, &body);
        else if (streq(verb, "reset"))
                r = verb_reset_or_set(c, args, true, &body, &err);
        else if (streq(verb, "set-risk"))
                r = verb_reset_or_set(c, args, false, &body, &err);
        else if (streq(verb, "stream"))
                r = verb_stream(c, args, &body, &err);
        else if (streq(verb, "transmitters"))
                r = verb_transmitters(c, &body);
        else if (streq(verb, "metrics"))
                r = verb_metrics(c, &body);
        else if (streq(verb, "verify")) {
                r = verb_verify(c, args, &err);
                if (r > 0)
                        return;
        } else if (streq(verb, "stream-status") || streq(verb, "stream-delete") ||
                   streq(verb, "stream-create") || streq(verb, "subjects-add") ||
                   streq(verb, "subjects-remove")) {
                r = verb_admin(c, verb, args, &err);
                if (r > 0)
                        return;
        } else {
                r = -EOPNOTSUPP;
                err = "unknown command";
        }
        if (r < 0) {
                reply_error(c, SSF_IPC_CTL_REPLY, -r, err ? err : strerror(-r));
                return;
        }
        client_reply_body(c, body);
}

/* ---- the front threads: accept, read the request, answer PAM, hand ssfctl over ------------ */

static int on_client_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        IpcClient *c = userdata;

        if (c->waiting_verify)
                answer_verify(c, true); /* main loop */
        else if (c->waiting_admin)
                answer_admin(c, true);  /* main loop */
        else
                client_free(c);         /* front: a client that sent nothing in time */
        return 0;
}

/* Queues c's ssfctl request for the main loop. c belongs to the main loop from here on. */
static void hand_over(IpcClient *c, SsfIpcMsg *q) {
        IpcServer *srv = c->server;
        uint64_t one = 1;

        c->io = sd_event_source_disable_unref(c->io);
        c->timer = sd_event_source_disable_unref(c->timer);
        c->request = *q;
        *q = (SsfIpcMsg){};
        pthread_mutex_lock(&srv->lock);
        c->hnext = srv->handoff;
        srv->handoff = c;
        pthread_mutex_unlock(&srv->lock);
        (void) !write(srv->handoff_fd, &one, sizeof(one));
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        IpcClient *c = userdata;
        SsfIpcMsg q = {};
        int r;

        r = ssf_ipc_recv(fd, &q, ssf_now_usec() + 100000u);
        if (r == -EAGAIN || r == -ETIMEDOUT)
                return 0;
        if (r < 0) {
                log_debug_errno(r, "Dropping IPC client pid " PID_FMT ": %m", c->cred.pid);
                client_free(c);
                return 0;
        }
        if (q.type == SSF_IPC_CTL_REQUEST) {
                hand_over(c, &q);
                return 0;
        }
        if (q.type == SSF_IPC_PAM_QUERY)
                handle_pam(c, &q);
        else
                log_debug("Unexpected IPC message type %u", q.type);
        ssf_ipc_msg_done(&q);
        client_free(c);
        return 0;
}

static unsigned clients_of_uid(const IpcServer *s, uid_t uid) {
        unsigned n = 0;

        for (const IpcClient *c = s->clients; c; c = c->next)
                if (c->cred.uid == uid)
                        n++;
        return n;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        IpcServer *srv = userdata;
        _cleanup_close_ int cfd = -EBADF;
        socklen_t len = sizeof(struct ucred);
        IpcClient *c;
        bool full;
        int r;

        cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        log_debug_errno(errno, "accept: %m");
                return 0;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return 0;
        c->server = srv;
        c->fd = TAKE_FD(cfd);
        if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
                safe_close(c->fd);
                free(c);
                return 0;
        }
        pthread_mutex_lock(&srv->lock);
        /* The socket is open to everyone: unprivileged users holding idle connections must not
         * use up the slots that logins (root) need. */
        full = srv->n_clients >= IPC_MAX_CLIENTS ||
               (c->cred.uid != 0 && (srv->n_clients >= IPC_MAX_CLIENTS / 2 ||
                                     clients_of_uid(srv, c->cred.uid) >= IPC_MAX_CLIENTS_PER_UID));
        if (!full) {
                c->next = srv->clients;
                if (srv->clients)
                        srv->clients->prev = c;
                srv->clients = c;
                srv->n_clients++;
        }
        pthread_mutex_unlock(&srv->lock);
        if (full) {
                if (c->cred.uid != 0)
                        log_warning("Too many IPC clients of uid %u, refusing one",
                                    (unsigned) c->cred.uid);
                else
                        log_warning("Too many IPC clients, refusing one");
                safe_close(c->fd);
                free(c);
                return 0;
        }
        r = sd_event_add_io(sd_event_source_get_event(s), &c->io, c->fd, EPOLLIN, on_client_io, c);
        if (r >= 0)
                r = sd_event_add_time_relative(sd_event_source_get_event(s), &c->timer,
                                               CLOCK_MONOTONIC, IPC_CLIENT_TIMEOUT_USEC, 0,
                                               on_client_timeout, c);
        if (r < 0)
                client_free(c);
        return 0;
}

static int on_stop(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void *front_thread(void *userdata) {
        IpcFront *f = userdata;
        int r;

        /* The only threads at the daemon's own priority (see state_thread_background()). */
        (void) prctl(PR_SET_NAME, (unsigned long) "ssf-pam-front", 0, 0, 0);
        state_thread_front(f->server->state);
        r = sd_event_loop(f->event);

        if (r < 0)
                log_error_errno(r, "The IPC front loop failed: %m");
        return NULL;
}

/* ---- the main loop: ssfctl requests ---------------------------------------------------------- */

/* A client the main loop now owns went away while waiting. */
static int on_waiting_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        if (revents & (EPOLLHUP | EPOLLERR))
                client_free(userdata);
        return 0;
}

static int on_handoff(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        IpcServer *srv = userdata;
        IpcClient *list, *next, *rev = NULL;
        uint64_t v;

        (void) !read(fd, &v, sizeof(v));
        pthread_mutex_lock(&srv->lock);
        list = srv->handoff;
        srv->handoff = NULL;
        pthread_mutex_unlock(&srv->lock);
        for (IpcClient *c = list; c; c = next) { /* oldest first */
                next = c->hnext;
                c->hnext = rev;
                rev = c;
        }
        for (IpcClient *c = rev; c; c = next) {
                sd_event *e = sd_event_source_get_event(s);

                next = c->hnext;
                c->hnext = NULL;
                c->main_owned = true;
                /* A disabled timer, which `ssfctl verify` arms while it waits. */
                if (sd_event_add_time_relative(e, &c->timer, CLOCK_MONOTONIC,
                                               IPC_CLIENT_TIMEOUT_USEC, 0, on_client_timeout,
                                               c) < 0) {
                        client_free(c);
                        continue;
                }
                (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
                handle_ctl(c, &c->request);
                if (c->streaming)
                        continue; /* a history thread's now */
                if (!c->waiting_verify && !c->waiting_admin) {
                        client_free(c);
                        continue;
                }
                c->hnext = srv->waiting;
                srv->waiting = c;
                if (sd_event_add_io(e, &c->io, c->fd, EPOLLHUP | EPOLLERR, on_waiting_io, c) < 0)
                        client_free(c);
        }
        return 0;
}

void ipc_server_dispatch_waiting(IpcServer *s) {
        IpcClient *w[IPC_MAX_CLIENTS];
        size_t n = 0;

        if (!s)
                return;
        for (IpcClient *c = s->waiting; c && n < ARRAY_SIZE(w); c = c->hnext)
                w[n++] = c;
        for (size_t i = 0; i < n; i++)
                if (w[i]->waiting_admin)
                        answer_admin(w[i], false); /* may free it */
                else
                        answer_verify(w[i], false);
}

static int listen_on(const char *path, int *ret) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_free_ char *dir = NULL;
        char *slash;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = 0;
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return -errno;
        }
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        if (chmod(path, 0666) < 0)
                return -errno;
        if (listen(fd, 64) < 0)
                return -errno;
        *ret = TAKE_FD(fd);
        return 0;
}

int ipc_server_new(State *st, sd_event *event, Broker *broker, const char *path,
                   IpcServer **ret) {
        IpcServer *s;
        int n, r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->state = st;
        s->broker = broker;
        s->fd = s->stop_fd = s->handoff_fd = -EBADF;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->streams_done, NULL);

        n = sd_listen_fds(true);
        if (n > 1) {
                log_error("Received %d sockets from socket activation, expected one", n);
                ipc_server_free(s);
                return -EINVAL;
        }
        if (n == 1) {
                if (sd_is_socket(SD_LISTEN_FDS_START, AF_UNIX, SOCK_SEQPACKET, 1) <= 0) {
                        log_error("The activated socket is not a listening AF_UNIX "
                                  "SOCK_SEQPACKET socket");
                        ipc_server_free(s);
                        return -EINVAL;
                }
                s->fd = SD_LISTEN_FDS_START;
                s->activated = true;
                (void) fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
                log_info("Listening on the activated socket");
        } else {
                r = listen_on(path, &s->fd);
                if (r < 0) {
                        ipc_server_free(s);
                        return log_error_errno(r, "Cannot listen on '%s': %m", path);
                }
                s->path = strdup(path);
                log_info("Listening on '%s'", path);
        }

        /* ssfctl requests come to the main loop through handoff_fd. */
        s->handoff_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->handoff_fd < 0 || s->stop_fd < 0) {
                r = -errno;
                ipc_server_free(s);
                return log_error_errno(r, "eventfd: %m");
        }
        r = sd_event_add_io(event, &s->handoff_source, s->handoff_fd, EPOLLIN, on_handoff, s);
        /* Each front thread's own loop: the listening socket (non-blocking: the threads that
         * lose the race for a connection get EAGAIN), its PAM clients, the stop signal. */
        for (unsigned i = 0; r >= 0 && i < IPC_FRONT_THREADS; i++) {
                IpcFront *f = &s->front[i];

                f->server = s;
                r = sd_event_new(&f->event);
                if (r >= 0)
                        r = sd_event_add_io(f->event, NULL, s->fd, EPOLLIN, on_accept, s);
                if (r >= 0)
                        r = sd_event_add_io(f->event, NULL, s->stop_fd, EPOLLIN, on_stop, s);
        }
        if (r < 0) {
                ipc_server_free(s);
                return log_error_errno(r, "Cannot watch the IPC socket: %m");
        }
        for (unsigned i = 0; i < IPC_FRONT_THREADS; i++) {
                IpcFront *f = &s->front[i];

                r = pthread_create(&f->thread, NULL, front_thread, f);
                if (r != 0) {
                        ipc_server_free(s);
                        return log_error_errno(r, "Cannot start the IPC threads: %m");
                }
                f->started = true;
        }
        *ret = s;
        return 0;
}

IpcServer *ipc_server_free(IpcServer *s) {
        if (!s)
                return NULL;
        if (s->stop_fd >= 0) {
                uint64_t one = 1;

                /* Level-triggered and never read: every front loop sees it. */
                (void) !write(s->stop_fd, &one, sizeof(one));
        }
        for (unsigned i = 0; i < IPC_FRONT_THREADS; i++)
                if (s->front[i].started)
                        (void) pthread_join(s->front[i].thread, NULL);
        /* History listings still running are cut short, and waited for. */
        pthread_mutex_lock(&s->lock);
        for (IpcClient *c = s->clients; c; c = c->next)
                if (c->streaming)
                        (void) shutdown(c->fd, SHUT_RDWR);
        while (s->streams > 0) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 2;
                if (pthread_cond_timedwait(&s->streams_done, &s->lock, &ts) != 0)
                        break;
        }
        if (s->streams > 0) {
                pthread_mutex_unlock(&s->lock);
                log_warning("A history listing did not end in time");
                return NULL; /* the process exits: the thread still uses s */
        }
        pthread_mutex_unlock(&s->lock);
        /* Every client is the main thread's now: the front loops are over. */
        while (s->clients)
                client_free(s->clients);
        sd_event_source_disable_unref(s->handoff_source);
        for (unsigned i = 0; i < IPC_FRONT_THREADS; i++)
                sd_event_unref(s->front[i].event);
        safe_close(s->stop_fd);
        safe_close(s->handoff_fd);
        safe_close(s->fd);
        if (s->path)
                (void) unlink(s->path);
        free(s->path);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->streams_done);
        free(s);
        return NULL;
}
