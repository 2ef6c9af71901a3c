/* SPDX-License-Identifier: MIT */
/*
 * RFC 8936 poll delivery (poller.h): long-polls, verifies and hands each SET to root,
 * acknowledges what root committed. Runs in the network worker.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "http.h"
#include "jws.h"
#include "ingest.h"
#include "link-client.h"
#include "log.h"
#include "macro.h"
#include "poller.h"
#include "receive.h"
#include "set.h"
#include "ssf-ipc.h"
#include "stream.h"

#define POLL_MARGIN_USEC (10u * 1000000u)
/* A poll that asks the transmitter to return at once (a drain poll) waits for its answer this
 * long. */
#define POLL_IMMEDIATE_TIMEOUT_USEC (POLL_MARGIN_USEC + 5u * 1000000u)
#define MAX_PENDING 4096u
/* SETs kept to be checked again later (receive_set() said -EAGAIN): at most this many; more
 * are left to the transmitter's redelivery. */
#define POLLER_DEFERRED_MAX 64u
/* A poll that brought nothing new and came back sooner than this is followed by a pause of
 * the rest of it, so that a transmitter that ignores long polling cannot make us spin. */
#define POLLER_SPIN_USEC (1u * 1000000u)

DEFINE_TRIVIAL_CLEANUP_FUNC(HttpClient *, http_client_free);

/* A SET that could not be checked yet: kept with its token and tried again at retry_usec. */
typedef struct Deferred {
        char *jti;
        char *token;
        size_t len;
        uint64_t seen_usec;  /* when it first arrived (CLOCK_MONOTONIC) */
        uint64_t retry_usec;
} Deferred;

/* Verified SETs waiting to be handed to root together: root commits them in one transaction,
 * and the poller acknowledges them after it answered. Up to LINK_BATCH_AHEAD batches may be
 * with root (in flight) while the next is verified and, when the transmitter has more, while
 * the next poll is fetched: their acknowledgements then go with the poll after that. */
#define BATCH_MAX_BYTES (LINK_MAX_FRAME - 4096u)

typedef struct Batch {
        /* binary records (ingest_record_put()), back to back; BATCH_BUFFER bytes */
        char *records;
        char *jtis[LINK_BATCH_MAX];  /* the jtis they were delivered under */
        size_t n, bytes;             /* bytes <= BATCH_MAX_BYTES */
} Batch;

#define BATCH_BUFFER BATCH_MAX_BYTES

/* The next drain poll, made by a thread of its own while the poller verifies the SETs of the
 * last one: the transmitter serves it meanwhile, instead of the poller waiting for it after
 * each batch. Only when the last answer said there is more (a backlog); one poll request at a
 * time still, only sent sooner. It acknowledges what was committed when it went out; the
 * acknowledgements that follow go with the poll after it. */
typedef struct Prefetch {
        pthread_t thread;
        bool running;            /* the thread exists */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        HttpClient *http;        /* a clone of the receiver's client, for this thread only */
        Link *link;              /* whose stop aborts http's request */
        /* the request (set by the poller while !busy), and what it carried */
        char *url, *authorization, *body;
        size_t n_acks;           /* the first n_acks of Poller.acks */
        json_t *errs;            /* the Poller.errs entries it reported */
        bool busy;               /* a request is given, its answer not taken */
        bool done;               /* the answer is here */
        bool quit;
        int r;
        HttpResponse resp;
} Prefetch;

typedef struct Poller {
        Receiver rx;
        Prefetch pf;
        /* sent to root (link_ingest_batch_send()), answers not taken yet: a ring, the oldest
         * at in_head; every slot keeps a records buffer (swapped with the batch being filled) */
        Batch inflight[LINK_BATCH_AHEAD];
        size_t in_head, in_n;
        bool auth_retried; /* a 401 made us fetch a new token; the next one backs off */
        json_t *acks;      /* array of jti */
        json_t *errs;      /* object jti -> {err, description} */
        Deferred deferred[POLLER_DEFERRED_MAX];
        size_t n_deferred;
} Poller;

/* What became of one delivered SET. */
typedef enum Outcome {
        OUTCOME_SETTLED,  /* acknowledged or reported in setErrs */
        OUTCOME_DEFERRED, /* cannot be checked yet: kept (or left to redelivery) */
        OUTCOME_SKIPPED,  /* delivered again while deferred here: nothing to do now */
        OUTCOME_FAILED,   /* a local failure (the daemon busy or unreachable) */
} Outcome;

/* ---- the common shape of a poll response, without jansson's lexer --------------------------
 *
 * A poll that drains a backlog brings up to poll_max_events SETs of a kilobyte or more each;
 * jansson's lexer takes each of their characters one at a time, three times over (scan,
 * unescape, copy), which was a sixth of the network worker's CPU during a catch-up. The shape
 * every transmitter sends — an object with "sets", an object whose names and values are
 * printable ASCII strings without escapes (jtis and compact JWS), and an optional boolean
 * "moreAvailable", nothing else — is read here directly into the same jansson values. Anything
 * else (another member, an escape, a byte outside printable ASCII, a duplicate name, a number)
 * is left to json_loadb(), which then decides: the result is the same for every input
 * (tests/fuzz/fuzz-poll-response.c compares both on its corpus). */

static const char *skip_ws(const char *p, const char *e) {
        while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
                p++;
        return p;
}

/* After an opening quote at p - 1: the closing quote of a string of printable ASCII without
 * escapes, or NULL for any other string (or none). */
static const char *simple_string_end(const char *p, const char *e) {
        for (; p < e; p++) {
                unsigned char c = (unsigned char) *p;

                if (c == '"')
                        return p;
                if (c < 0x20 || c >= 0x7f || c == '\\')
                        return NULL;
        }
        return NULL;
}

/* A simple string at *p (its opening quote): *ret_s and *ret_len, *p past it; false when
 * there is none. */
static bool simple_string(const char **p, const char *e, const char **ret_s, size_t *ret_len) {
        const char *q;

        if (*p >= e || **p != '"')
                return false;
        q = simple_string_end(*p + 1, e);
        if (!q)
                return false;
        *ret_s = *p + 1;
        *ret_len = (size_t) (q - (*p + 1));
        *p = q + 1;
        return true;
}

/* A member's name and its colon (with the blanks around), *p then at the value. */
static bool member_name(const char **p, const char *e, const char **ret_k, size_t *ret_len) {
        const char *q = *p;

        if (!simple_string(&q, e, ret_k, ret_len))
                return false;
        q = skip_ws(q, e);
        if (q >= e || *q++ != ':')
                return false;
        *p = skip_ws(q, e);
        return true;
}

/* "sets": an object of simple strings, into sets. 1 done (*p past it), 0 another shape,
 * -ENOMEM. */
static int parse_sets_fast(const char **p, const char *e, json_t *sets) {
        const char *q = *p;

        if (q >= e || *q++ != '{')
                return 0;
        q = skip_ws(q, e);
        if (q < e && *q == '}') {
                *p = q + 1;
                return 1;
        }
        for (;;) {
                const char *k, *v;
                size_t kl, vl;
                json_t *s;

                if (!member_name(&q, e, &k, &kl) || !simple_string(&q, e, &v, &vl))
                        return 0;
                if (json_object_getn(sets, k, kl))
                        return 0; /* a duplicate jti: refused by jansson */
                s = json_stringn_nocheck(v, vl);
                if (!s || json_object_setn_new_nocheck(sets, k, kl, s) < 0)
                        return -ENOMEM;
                q = skip_ws(q, e);
                if (q < e && *q == ',') {
                        q = skip_ws(q + 1, e);
                        continue;
                }
                if (q < e && *q == '}') {
                        *p = q + 1;
                        return 1;
                }
                return 0;
        }
}

/* 1 with *ret filled (untouched otherwise), 0 when body has another shape, -ENOMEM. */
static int parse_response_fast(const char *body, size_t len, PollResponse *ret) {
        _cleanup_(json_decrefp) json_t *root = json_object();
        const char *p = body, *e = body + len, *k;
        json_t *sets = NULL, *more = NULL;
        size_t kl;
        int r;

        if (!root)
                return -ENOMEM;
        p = skip_ws(p, e);
        if (p >= e || *p++ != '{')
                return 0;
        for (p = skip_ws(p, e);;) {
                if (!member_name(&p, e, &k, &kl))
                        return 0;
                if (kl == 4 && memcmp(k, "sets", 4) == 0 && !sets) {
                        sets = json_object();
                        if (!sets || json_object_set_new(root, "sets", sets) < 0)
                                return -ENOMEM;
                        r = parse_sets_fast(&p, e, sets);
                        if (r <= 0)
                                return r;
                } else if (kl == 13 && memcmp(k, "moreAvailable", 13) == 0 && !more) {
                        if ((size_t) (e - p) >= 4 && memcmp(p, "true", 4) == 0) {
                                more = json_true();
                                p += 4;
                        } else if ((size_t) (e - p) >= 5 && memcmp(p, "false", 5) == 0) {
                                more = json_false();
                                p += 5;
                        } else
                                return 0;
                        if (json_object_set(root, "moreAvailable", more) < 0)
                                return -ENOMEM;
                } else
                        return 0;
                p = skip_ws(p, e);
                if (p < e && *p == ',') {
                        p = skip_ws(p + 1, e);
                        continue;
                }
                if (p < e && *p == '}')
                        break;
                return 0;
        }
        if (skip_ws(p + 1, e) != e || !sets)
                return 0;
        *ret = (PollResponse) {
                .sets = sets,
                .more = more == json_true(),
        };
        ret->root = TAKE_PTR(root);
        return 1;
}

int poller_parse_response(const char *body, size_t len, PollResponse *ret) {
        int r;

        if (len > POLLER_RESPONSE_MAX)
                return -EFBIG;
        if (!body || len == 0)
                return -EBADMSG;
        /* Out of memory there: jansson may still manage, else it says -EBADMSG. */
        r = parse_response_fast(body, len, ret);
        if (r > 0)
                return 0;
        return poller_parse_response_general(body, len, ret);
}

int poller_parse_response_general(const char *body, size_t len, PollResponse *ret) {
        json_t *root, *sets;

        if (len > POLLER_RESPONSE_MAX)
                return -EFBIG;
        if (!body || len == 0)
                return -EBADMSG;
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(root)) {
                json_decref(root);
                return -EBADMSG;
        }
        sets = json_object_get(root, "sets");
        if (!json_is_object(sets)) {
                json_decref(root);
                return -EBADMSG;
        }
        *ret = (PollResponse) {
                .root = root,
                .sets = sets,
                .more = json_is_true(json_object_get(root, "moreAvailable")),
        };
        return 0;
}

void poll_response_done(PollResponse *r) {
        if (!r)
                return;
        json_decref(r->root);
        *r = (PollResponse) {};
}

int poller_check_entry(const char *jti, json_t *value, const char **ret_why) {
        size_t n = jti ? strlen(jti) : 0;

        if (n == 0 || n > SET_MAX_JTI) {
                *ret_why = "the jti it was delivered under is empty or too long";
                return -EBADMSG;
        }
        /* The daemon keeps no jti with control characters (shared/ingest.c): report it now
         * rather than have it delivered again and again. */
        for (const unsigned char *p = (const unsigned char *) jti; *p; p++)
                if (*p < 0x20 || *p == 0x7f) {
                        *ret_why = "the jti it was delivered under has control characters";
                        return -EBADMSG;
                }
        if (!json_is_string(value)) {
                *ret_why = "the SET is not a JSON string";
                return -EBADMSG;
        }
        if (json_string_length(value) > JWS_MAX_SIZE) {
                *ret_why = "the SET is too large";
                return -EBADMSG;
        }
        return 0;
}

static Deferred *poller_find_deferred(Poller *p, const char *jti) {
        for (size_t i = 0; i < p->n_deferred; i++)
                if (streq(p->deferred[i].jti, jti))
                        return &p->deferred[i];
        return NULL;
}

static void poller_drop_deferred(Poller *p, Deferred *d) {
        free(d->jti);
        free(d->token);
        *d = p->deferred[--p->n_deferred];
        p->deferred[p->n_deferred] = (Deferred) {};
}

/* The earliest retry of a deferred SET (CLOCK_MONOTONIC), or 0 when none. */
static uint64_t poller_next_retry(const Poller *p) {
        uint64_t t = 0;

        for (size_t i = 0; i < p->n_deferred; i++)
                if (t == 0 || p->deferred[i].retry_usec < t)
                        t = p->deferred[i].retry_usec;
        return t;
}

/* Adds jti to acks or errs after receive_set() returned r; returns what became of it. */
static Outcome poller_settle(Poller *p, const char *jti, int r, const SetError *err) {
        if (r >= 0 || r == -EALREADY) {
                json_array_append_new(p->acks, json_string(jti));
                return OUTCOME_SETTLED;
        }
        if (r == -EAGAIN)
                return OUTCOME_DEFERRED;
        if (err->err) {
                json_object_set_new(p->errs, jti,
                                    json_pack("{s:s, s:s}", "err", err->err, "description",
                                              err->description));
                receiver_count(&p->rx, "sets_rejected", 1);
                return OUTCOME_SETTLED;
        }
        /* Otherwise a local failure: neither ack nor report; the transmitter delivers it
         * again. */
        return OUTCOME_FAILED;
}

static void batch_clear(Batch *b) {
        for (size_t i = 0; i < b->n; i++)
                b->jtis[i] = mfree(b->jtis[i]);
        b->n = b->bytes = 0;
}

/* The SETs with root, answer not taken. */
static size_t poller_inflight_sets(const Poller *p) {
        size_t n = 0;

        for (size_t i = 0; i < p->in_n; i++)
                n += p->inflight[(p->in_head + i) % LINK_BATCH_AHEAD].n;
        return n;
}

/* Waits for root's answer to the oldest batch in flight and settles each of its SETs:
 * acknowledged only now, after root committed them. Returns how many failed locally (they come
 * again). */
static size_t poller_collect_one(Poller *p) {
        _cleanup_free_ SetError *errs = NULL;
        _cleanup_free_ int *rs = NULL;
        Batch *b = &p->inflight[p->in_head];
        size_t failed = 0;
        int r;

        if (p->in_n == 0)
                return 0;
        p->in_head = (p->in_head + 1) % LINK_BATCH_AHEAD;
        p->in_n--;
        errs = calloc(b->n, sizeof(SetError));
        rs = calloc(b->n, sizeof(int));
        /* Without memory for the results, still take the answer: the next batch needs the
         * slot, and none of these is acknowledged. */
        r = link_ingest_batch_wait(p->rx.link, b->n, errs, rs);
        if (r < 0) {
                log_error_errno(r, "Could not record %zu SET(s), they will be delivered again: %m",
                                b->n);
                failed = b->n;
        } else
                for (size_t i = 0; i < b->n; i++) {
                        int k = receive_outcome(b->jtis[i], rs[i], &errs[i]);

                        if (poller_settle(p, b->jtis[i], k, &errs[i]) == OUTCOME_FAILED)
                                failed++;
                }
        batch_clear(b);
        return failed;
}

/* poller_collect_one() for every batch in flight, oldest first. */
static size_t poller_collect(Poller *p) {
        size_t failed = 0;

        while (p->in_n > 0)
                failed += poller_collect_one(p);
        return failed;
}

/* Hands b to root without waiting for its answer, after settling the oldest batch in flight
 * when LINK_BATCH_AHEAD are (b is empty afterwards; poller_collect() settles it). Returns how
 * many SETs failed locally (they come again). */
static size_t poller_flush_batch(Poller *p, Batch *b) {
        size_t failed = 0, slot;
        Batch t;
        int r;

        if (b->n == 0)
                return 0;
        if (p->in_n == LINK_BATCH_AHEAD)
                failed = poller_collect_one(p);
        r = link_ingest_batch_send(p->rx.link, b->records, b->bytes, b->n);
        if (r < 0) {
                log_error_errno(r, "Could not record %zu SET(s), they will be delivered again: %m",
                                b->n);
                failed += b->n;
                batch_clear(b);
                return failed;
        }
        /* b's records are sent: b becomes the newest batch in flight, the free slot's empty
         * one is b now. */
        slot = (p->in_head + p->in_n++) % LINK_BATCH_AHEAD;
        t = p->inflight[slot];
        p->inflight[slot] = *b;
        *b = t;
        p->inflight[slot].bytes = 0; /* sent: the jtis stay */
        return failed;
}

/* Verifies one delivered SET and adds it to the batch for root (OUTCOME_SETTLED: it is taken,
 * the batch settles it), settles it at once when it is refused, or keeps it for later when it
 * cannot be checked yet. A full batch is handed over first; *failed counts the SETs of batches
 * handed over that root did not take. */
static Outcome poller_handle(Poller *p, Batch *b, const char *jti, json_t *value, size_t *failed) {
        _cleanup_(ingest_request_done) IngestRequest req = {};
        SetError err = {};
        const char *why = NULL;
        uint64_t retry = 0, now = ssf_now_usec();
        size_t size;
        Outcome o;
        int r;

        r = poller_check_entry(jti, value, &why);
        if (r >= 0 && poller_find_deferred(p, jti))
                return OUTCOME_SKIPPED;
        receiver_count(&p->rx, "sets_received", 1);
        if (r < 0) {
                err.err = "invalid_request";
                (void) snprintf(err.description, sizeof(err.description), "%s", why);
                receive_log_rejected(jti, &err);
        } else
                r = receive_prepare(p->rx.link, p->rx.http, &p->rx.t, json_string_value(value),
                                    json_string_length(value), jti, now, &req, &err, &retry);
        if (r >= 0) {
                /* Written once, here, in its binary form (link.h): root reads it with no JSON
                 * parser. A batch that cannot take it is handed over first; a record no frame
                 * can take goes alone, as JSON. */
                if (b->records && b->n == LINK_BATCH_MAX)
                        *failed += poller_flush_batch(p, b);
                r = b->records ? ingest_record_put(&req, b->records + b->bytes,
                                                   BATCH_MAX_BYTES - b->bytes, &size)
                               : -ENOMEM;
                if (r == -ENOSPC && b->n > 0) {
                        *failed += poller_flush_batch(p, b);
                        r = ingest_record_put(&req, b->records, BATCH_MAX_BYTES, &size);
                }
                if (r < 0)
                        /* Alone in a frame of its own (or out of memory: root says). */
                        r = receive_outcome(jti, link_ingest(p->rx.link, &req, &err), &err);
                else {
                        b->jtis[b->n] = strdup(jti);
                        if (!b->jtis[b->n])
                                return OUTCOME_FAILED;
                        b->bytes += size;
                        b->n++;
                        return OUTCOME_SETTLED;
                }
        }

        o = poller_settle(p, jti, r, &err);
        if (o == OUTCOME_DEFERRED && p->n_deferred < POLLER_DEFERRED_MAX) {
                Deferred *d = &p->deferred[p->n_deferred];

                d->jti = strdup(jti);
                d->token = strdup(json_string_value(value));
                if (!d->jti || !d->token) {
                        d->jti = mfree(d->jti);
                        d->token = mfree(d->token);
                        return o; /* left to the transmitter's redelivery */
                }
                d->len = json_string_length(value);
                d->seen_usec = now;
                d->retry_usec = retry;
                p->n_deferred++;
        }
        return o;
}

/* Checks again the deferred SETs that are due. Returns the number settled. */
static size_t poller_retry_deferred(Poller *p) {
        uint64_t now = ssf_now_usec();
        size_t settled = 0;

        for (size_t i = 0; i < p->n_deferred && !link_stopping(p->rx.link);) {
                Deferred *d = &p->deferred[i];
                SetError err = {};
                uint64_t retry = 0;
                Outcome o;
                int r;

                if (d->retry_usec > now) {
                        i++;
                        continue;
                }
                r = receive_set(p->rx.link, p->rx.http, &p->rx.t, d->token, d->len, d->jti,
                                d->seen_usec, &err, &retry);
                o = poller_settle(p, d->jti, r, &err);
                if (o == OUTCOME_DEFERRED) {
                        d->retry_usec = retry;
                        i++;
                        continue;
                }
                if (o == OUTCOME_SETTLED)
                        settled++;
                /* Settled, or failed locally: then the transmitter delivers it again. */
                poller_drop_deferred(p, d);
        }
        return settled;
}

static void *prefetch_thread(void *userdata) {
        Prefetch *f = userdata;

        pthread_mutex_lock(&f->lock);
        for (;;) {
                HttpResponse resp = {};
                int r;

                while (!f->quit && (!f->busy || f->done))
                        pthread_cond_wait(&f->cond, &f->lock);
                if (f->quit)
                        break;
                pthread_mutex_unlock(&f->lock);
                r = http_request(f->http, "POST", f->url, f->authorization, f->body,
                                 POLL_IMMEDIATE_TIMEOUT_USEC, POLLER_RESPONSE_MAX, &resp);
                pthread_mutex_lock(&f->lock);
                f->r = r;
                f->resp = resp;
                f->done = true;
                pthread_cond_broadcast(&f->cond);
        }
        pthread_mutex_unlock(&f->lock);
        return NULL;
}

/* Starts the thread with a clone of http, which a stop of link aborts. A failure only means
 * polls are not sent ahead. */
static void prefetch_init(Prefetch *f, Link *link, const HttpClient *http) {
        if (http_client_clone(http, &f->http) < 0)
                return;
        (void) pthread_mutex_init(&f->lock, NULL);
        (void) pthread_cond_init(&f->cond, NULL);
        f->running = pthread_create(&f->thread, NULL, prefetch_thread, f) == 0;
        if (!f->running) {
                f->http = http_client_free(f->http);
                return;
        }
        f->link = link;
        link_set_http_ahead(link, f->http);
}

/* Frees the request's strings (the thread is idle, or done with them). */
static void prefetch_clear(Prefetch *f) {
        f->url = mfree(f->url);
        f->authorization = erase_and_free(f->authorization); /* a bearer token */
        f->body = mfree(f->body);
        json_decref(f->errs);
        f->errs = NULL;
        f->n_acks = 0;
}

static void prefetch_done(Prefetch *f) {
        if (!f->running)
                return;
        http_client_abort(f->http);
        pthread_mutex_lock(&f->lock);
        f->quit = true;
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
        (void) pthread_join(f->thread, NULL);
        http_response_done(&f->resp);
        prefetch_clear(f);
        link_set_http_ahead(f->link, NULL);
        f->http = http_client_free(f->http);
        pthread_cond_destroy(&f->cond);
        pthread_mutex_destroy(&f->lock);
        f->running = false;
}

/* The drain poll's request body: what to acknowledge and report, as the poll goes out now. */
static char *poll_body(Poller *p, bool immediately) {
        _cleanup_(json_decrefp) json_t *req = json_pack(
                "{s:I, s:b}", "maxEvents", (json_int_t) p->rx.c->poll_max_events,
                "returnImmediately", immediately);

        if (!req)
                return NULL;
        if (json_array_size(p->acks) > 0)
                json_object_set(req, "ack", p->acks);
        if (json_object_size(p->errs) > 0)
                json_object_set(req, "setErrs", p->errs);
        return json_dumps(req, JSON_COMPACT);
}

/* Hands the next drain poll to the prefetch thread. Returns whether it went. */
static bool prefetch_start(Poller *p) {
        Prefetch *f = &p->pf;

        if (!f->running || f->busy || link_stopping(p->rx.link) ||
            http_client_hold_left(p->rx.http) > 0)
                return false;
        http_client_hold_merge(f->http, p->rx.http);
        f->url = strdup(p->rx.t.endpoint_url);
        f->authorization = p->rx.t.authorization ? strdup(p->rx.t.authorization) : NULL;
        f->body = poll_body(p, true);
        f->errs = json_copy(p->errs);
        if (!f->url || (p->rx.t.authorization && !f->authorization) || !f->body || !f->errs) {
                prefetch_clear(f);
                return false;
        }
        f->n_acks = json_array_size(p->acks);
        pthread_mutex_lock(&f->lock);
        f->busy = true;
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
        return true;
}

/* Waits for the prefetched poll's answer (a stop aborts its request: prefetch_init()).
 * Returns what http_request() returned, with *ret its response. */
static int prefetch_take(Poller *p, HttpResponse *ret) {
        Prefetch *f = &p->pf;
        int r;

        pthread_mutex_lock(&f->lock);
        while (!f->done)
                pthread_cond_wait(&f->cond, &f->lock);
        r = f->r;
        *ret = f->resp;
        f->resp = (HttpResponse) {};
        f->busy = f->done = false;
        pthread_mutex_unlock(&f->lock);
        prefetch_clear(f); /* the request's strings: the thread is done with them */
        /* A Retry-After it was answered with holds the poller back too. */
        http_client_hold_merge(p->rx.http, f->http);
        return r;
}

/* The transmitter has the acknowledgements and errors a poll carried: they are not sent again.
 * n_acks: the first n_acks of p->acks; errs: those entries of p->errs (NULL: all of them). */
static void poller_forget_sent(Poller *p, size_t n_acks, json_t *errs) {
        const char *key;
        json_t *v;

        if (n_acks >= json_array_size(p->acks))
                json_array_clear(p->acks);
        else if (n_acks > 0) {
                json_t *rest = json_array();

                for (size_t i = n_acks; rest && i < json_array_size(p->acks); i++)
                        json_array_append(rest, json_array_get(p->acks, i));
                if (rest) {
                        json_decref(p->acks);
                        p->acks = rest;
                }
        }
        if (!errs)
                json_object_clear(p->errs);
        else
                json_object_foreach(errs, key, v)
                        json_object_del(p->errs, key);
}

/* One poll. drain: ask for what is queued without waiting (the last answer said there is
 * more). *ret_more: there is more to fetch at once; *ret_new: the answer brought a SET we had
 * not seen (or one was deferred here), i.e. it was not empty. Returns 0, or -errno when the
 * poll failed (-EBUSY: 429 or 503; -EACCES, -ENOENT, -EPROTO, -EBADMSG, or the transport's),
 * or -EAGAIN when the daemon took none of the SETs it brought. */
static int poller_poll(Poller *p, bool drain, bool *ret_more, bool *ret_new) {
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_(poll_response_done) PollResponse pr = {};
        _cleanup_(json_decrefp) json_t *sent_errs = NULL;
        _cleanup_free_ char *body = NULL;
        uint64_t wait = p->rx.c->poll_wait_usec, timeout, next;
        bool prefetched = p->pf.busy, immediately = prefetched || drain || wait == 0,
             stalled = false;
        size_t n_acks, n_new = 0, n_sets = 0;
        Batch batch = {};
        const char *jti;
        json_t *v;
        int r;

        timeout = immediately ? POLL_IMMEDIATE_TIMEOUT_USEC : wait + POLL_MARGIN_USEC;
        next = poller_next_retry(p);
        if (!immediately && next > 0) {
                /* A deferred SET is due before the long poll would end: come back for it
                 * (a long poll we end is "nothing arrived"; what the transmitter still puts
                 * in it is delivered again). */
                uint64_t now = ssf_now_usec(), until = next > now ? next - now : 0;

                timeout = MIN(timeout, MAX(until, (uint64_t) POLLER_SPIN_USEC));
        }

        /* A long poll may take a while: root's answer to the batch in flight first, so that
         * its acknowledgements go with it. A drain poll goes out at once, while root commits. */
        if (!immediately)
                (void) poller_collect(p);
        *ret_new = false;
        if (prefetched) {
                /* Sent while the last answer's SETs were verified (prefetch_start()). */
                n_acks = p->pf.n_acks;
                sent_errs = TAKE_PTR(p->pf.errs);
                r = prefetch_take(p, &resp);
        } else {
                n_acks = json_array_size(p->acks);
                body = poll_body(p, immediately);
                if (!body)
                        return -ENOMEM;
                /* Only a long poll may be interrupted (ssfctl verify, an administration
                 * request): one that returns at once gains nothing from it, and an
                 * interruption after the transmitter took SETs for the answer, before its
                 * body arrived, would leave them to its redelivery. */
                r = (immediately ? http_request : http_request_interruptible)(
                        p->rx.http, "POST", p->rx.t.endpoint_url, p->rx.t.authorization, body,
                        timeout, POLLER_RESPONSE_MAX, &resp);
        }
        if (r == -EBUSY)
                return r; /* held back by a Retry-After: no request was made */
        receiver_count(&p->rx, "polls", 1);
        if (r == -ECANCELED) {
                /* Interrupted on purpose (ssfctl verify, stop): poll again unless stopping;
                 * the acknowledgements go with the next request. */
                *ret_more = true;
                return 0;
        }
        if (r == -ETIMEDOUT && !immediately) {
                /* The transmitter held the long poll longer than we wait: nothing arrived. The
                 * acknowledgements may or may not have been seen; send them again. */
                log_debug("Long poll timed out without events");
                *ret_more = false;
                return 0;
        }
        if (r < 0)
                return log_warning_errno(r, "Poll request to '%s' failed: %m",
                                         p->rx.t.endpoint_url);
        if (resp.status == 401 || resp.status == 403) {
                log_warning("Poll endpoint refused our credentials (HTTP %ld)", resp.status);
                return -EACCES;
        }
        if (resp.status == 404) {
                log_warning("Poll endpoint answered 404: the stream is gone");
                return -ENOENT;
        }
        if (resp.status == 429 || resp.status == 503) {
                /* With a Retry-After, http.c now holds every request back until then. */
                log_warning("Poll endpoint answered HTTP %ld%s%s", resp.status,
                            resp.retry_after ? ", Retry-After: " : "", strempty(resp.retry_after));
                return -EBUSY;
        }
        if (resp.status != 200) {
                log_warning("Poll endpoint answered HTTP %ld", resp.status);
                return -EPROTO;
        }

        /* The transmitter has our acks and errors now. */
        receiver_count(&p->rx, "sets_acknowledged", n_acks);
        if (n_acks)
                log_debug("Acknowledged %zu SET(s)", n_acks);
        poller_forget_sent(p, n_acks, prefetched ? sent_errs : NULL);

        r = poller_parse_response(resp.body, resp.body_len, &pr);
        if (r < 0) {
                log_warning("Poll response is not a JSON object with a \"sets\" object");
                return -EBADMSG;
        }
        batch.records = malloc(BATCH_BUFFER);
        if (!batch.records)
                return -ENOMEM;
        /* A backlog: the next poll goes out now, and the transmitter serves it while these are
         * verified. */
        if (pr.more || json_object_size(pr.sets) >= p->rx.c->poll_max_events)
                (void) prefetch_start(p);
        json_object_foreach(pr.sets, jti, v) {
                size_t failed = 0;
                Outcome o;

                if (link_stopping(p->rx.link))
                        break;
                if (json_array_size(p->acks) + json_object_size(p->errs) + batch.n +
                    poller_inflight_sets(p) >= MAX_PENDING) {
                        stalled = true;
                        break;
                }
                n_sets++;
                o = poller_handle(p, &batch, jti, v, &failed);
                if (o != OUTCOME_SKIPPED)
                        n_new++;
                if (o == OUTCOME_FAILED || failed > 0) {
                        /* The daemon did not take it: the rest would fare no better. They are
                         * neither acknowledged nor reported, so they come again. */
                        stalled = true;
                        break;
                }
        }
        /* What is verified goes to root (one transaction), even when a SET after it failed. */
        if (poller_flush_batch(p, &batch) > 0)
                stalled = true;
        free(batch.records);
        *ret_new = n_new > 0;
        *ret_more = !stalled && (pr.more || (n_sets > 0 && n_sets >= p->rx.c->poll_max_events));
        /* The last batch stays with root while the next drain poll is fetched; before anything
         * else, its answer is taken (and a failure in it counts as a stall). */
        if (!*ret_more && poller_collect(p) > 0)
                stalled = true;
        /* Nothing taken at all (the daemon busy or unreachable): back off before the next
         * poll, which would bring the same SETs again. */
        return stalled && n_new > 0 && json_array_size(p->acks) + json_object_size(p->errs) == 0
                ? -EAGAIN : 0;
}

/* On shutdown: tell the transmitter what was committed (acknowledge-only request). */
static void poller_flush(Poller *p) {
        _cleanup_(json_decrefp) json_t *req = NULL;
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_(http_client_freep) HttpClient *http = NULL;
        _cleanup_free_ char *body = NULL;
        size_t n = json_array_size(p->acks);
        int r;

        if (!p->rx.ready || (n == 0 && json_object_size(p->errs) == 0))
                return;
        /* A fresh client: the polling one was aborted by the stop request. */
        r = http_client_clone(p->rx.http, &http);
        if (r < 0)
                return;
        req = json_pack("{s:i, s:b, s:O, s:O}", "maxEvents", 0, "returnImmediately", 1, "ack",
                        p->acks, "setErrs", p->errs);
        body = req ? json_dumps(req, JSON_COMPACT) : NULL;
        if (!body)
                return;
        r = http_request(http, "POST", p->rx.t.endpoint_url, p->rx.t.authorization, body,
                         2000000u, POLLER_RESPONSE_MAX, &resp);
        if (r < 0 || resp.status != 200)
                log_warning("Could not flush %zu acknowledgement(s) on shutdown; the transmitter "
                            "will deliver them again and they will be acknowledged as "
                            "duplicates", n);
        else {
                log_info("Flushed %zu acknowledgement(s)", n);
                receiver_count(&p->rx, "sets_acknowledged", n);
        }
}

int poller_run(Link *link, HttpClient *http, const char *authorization, OAuth2Client *oauth2) {
        Poller p = {};
        /* The first poll returns at once: what was queued while we were away comes in a request
         * that nothing interrupts (a long poll may be cut short by the stream verification that
         * follows a start, after the transmitter took SETs for it). */
        bool more = true;
        int r;

        r = receiver_init(&p.rx, link, http, authorization, oauth2, false);
        if (r >= 0)
                prefetch_init(&p.pf, link, http);
        p.acks = json_array();
        p.errs = json_object();
        for (size_t i = 0; i < LINK_BATCH_AHEAD; i++)
                if (!(p.inflight[i].records = malloc(BATCH_BUFFER)))
                        r = -ENOMEM;
        if (r < 0 || !p.acks || !p.errs) {
                r = -ENOMEM;
                goto out;
        }

        while (!link_stopping(link)) {
                uint64_t started, hold;
                bool fresh = false, drain;

                /* Only a drain poll goes out with a batch still with root (poller_poll()). */
                if (!more)
                        (void) poller_collect(&p);

                /* The transmitter said when to come back (Retry-After): no request to it until
                 * then. Deferred SETs need only the JWKS and the daemon, so they go on. */
                hold = http_client_hold_left(p.rx.http);
                if (hold > 0) {
                        uint64_t next = poller_next_retry(&p), now = ssf_now_usec();

                        receiver_maybe_verify(&p.rx); /* answered at once: held back */
                        receiver_maybe_admin(&p.rx);  /* likewise */
                        (void) poller_retry_deferred(&p);
                        if (next > now)
                                hold = MIN(hold, next - now);
                        if (link_wait_stop(link, MAX(hold, (uint64_t) 10000u)))
                                break;
                        continue;
                }

                if (p.rx.idle) {
                        /* The stream was deleted (ssfctl): no request to the transmitter until
                         * `ssfctl stream create`; SETs already deferred go on. */
                        (void) poller_retry_deferred(&p);
                        if (receiver_idle_wait(&p.rx))
                                break;
                        continue;
                }
                /* Answered before a setup, which may fail again and again: a request left
                 * waiting would cut every backoff short. A create is taken up by the setup. */
                if (!p.rx.ready)
                        receiver_maybe_admin(&p.rx);
                if (!p.rx.ready) {
                        r = receiver_setup_begin(&p.rx);
                        if (r >= 0)
                                r = receiver_setup_finish(&p.rx, receiver_setup_token(&p.rx), NULL);
                        if (r < 0) {
                                if (r == -EBUSY && http_client_hold_left(p.rx.http) > 0)
                                        continue; /* wait for the Retry-After above */
                                if (receiver_setup_failed(&p.rx, r))
                                        break;
                                continue;
                        }
                }

                r = receiver_refresh_token(&p.rx);
                if (r == -ECANCELED)
                        continue; /* interrupted (stop, `ssfctl verify`) */
                /* Other failures are logged; the current token is used while it lasts. */

                receiver_maybe_verify(&p.rx);
                receiver_maybe_admin(&p.rx);
                receiver_check_stream(&p.rx);
                if (!p.rx.ready)
                        continue;
                (void) poller_retry_deferred(&p);

                started = ssf_now_usec();
                drain = more;
                r = poller_poll(&p, drain, &more, &fresh);
                if (link_stopping(link))
                        break;
                if (r == -EBUSY && http_client_hold_left(p.rx.http) > 0) {
                        /* 429/503 with Retry-After: wait exactly that long (above). */
                        receiver_count(&p.rx, "poll_errors", 1);
                        receiver_publish(&p.rx, NULL, "poll failed: the transmitter asked us to "
                                         "retry later (Retry-After)", true);
                        more = false;
                        continue;
                }
                if (r == -EAGAIN) {
                        log_warning("The daemon recorded none of the SETs delivered, retrying "
                                    "in %" PRIu64 " s", p.rx.backoff / 1000000u);
                        more = false;
                        if (receiver_back_off(&p.rx))
                                break;
                        continue;
                }
                if (r < 0) {
                        char e[160];

                        receiver_count(&p.rx, "poll_errors", 1);
                        (void) snprintf(e, sizeof(e), "poll failed: %s", strerror(-r));
                        receiver_publish(&p.rx, NULL, e, true);
                        if (r == -EACCES && p.rx.oauth2) {
                                /* The access token expired or was revoked early: fetch a new
                                 * one and poll again at once, once; then back off. */
                                oauth2_client_invalidate(p.rx.oauth2);
                                if (!p.auth_retried) {
                                        p.auth_retried = true;
                                        if (receiver_refresh_token(&p.rx) >= 0)
                                                continue;
                                }
                        }
                        if (r == -ENOENT || r == -EACCES)
                                p.rx.ready = false; /* stream gone or credentials refused: again */
                        more = false;
                        if (receiver_back_off(&p.rx))
                                break;
                        continue;
                }
                p.rx.backoff = RECEIVER_BACKOFF_MIN_USEC;
                p.auth_retried = false;
                receiver_publish(&p.rx, "enabled", NULL, true);
                /* A transmitter that ignores long polling must not make us spin: an answer
                 * that brought nothing new, and came quickly, is followed by a pause. An
                 * answer with SETs is work, not spinning, and the drain poll after it is
                 * empty by design: neither pauses, so a SET that arrives right after the
                 * previous one is fetched at once. */
                if (!drain && !fresh && !more && ssf_now_usec() - started < POLLER_SPIN_USEC &&
                    link_wait_stop(link, POLLER_SPIN_USEC - (ssf_now_usec() - started)))
                        break;
        }
        r = 0;
        (void) poller_collect(&p); /* committed or not: root says, then we may acknowledge */
        poller_flush(&p);
        receiver_publish(&p.rx, NULL, NULL, false);
out:
        /* A poll sent ahead and not taken: its SETs come again (not acknowledged). */
        prefetch_done(&p.pf);
        receiver_done(&p.rx);
        for (size_t i = 0; i < LINK_BATCH_AHEAD; i++) {
                batch_clear(&p.inflight[i]);
                free(p.inflight[i].records);
        }
        json_decref(p.acks);
        json_decref(p.errs);
        for (size_t i = 0; i < p.n_deferred; i++) {
                free(p.deferred[i].jti);
                free(p.deferred[i].token);
        }
        return r;
}
