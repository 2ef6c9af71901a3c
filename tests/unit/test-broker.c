/* SPDX-License-Identifier: MIT */
/* The daemon's handling of the network worker's messages (broker_handle_message()), against a
 * real store: what it answers, what it keeps, and what it refuses from a worker that may be
 * compromised. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include <cmocka.h>

#include "broker.h"
#include "manager-fixture.h"
#include "link.h"
#include "nss-fixture.h"
#include "log.h"
#include "macro.h"
#include "store.h"

#define ISS "https://i.example"
#define STATE "0123456789abcdef0123456789abcdef"

typedef ManagerFixture Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        if (!f || manager_fixture_new(f, ISS, "[rule logout-high]\nlevels = high\naction = logout\nsessions = all\n") < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        int r = manager_fixture_done(f);

        free(f);
        return r;
}

/* Frames text as link_recv() does and handles it; returns the reply (or NULL), and the result
 * of broker_handle_message() in *ret_r when not NULL (else it must be 0). */
static json_t *handle_r(Fixture *f, const char *text, int *ret_r) {
        json_t *msg = NULL, *answer = NULL;
        int r;

        assert_int_equal(link_parse(text, strlen(text), &msg), 0);
        r = broker_handle_message(&f->m->state, "default", msg, &answer);
        json_decref(msg);
        if (ret_r)
                *ret_r = r;
        else
                assert_int_equal(r, 0);
        return answer;
}

static json_t *handle(Fixture *f, const char *text) {
        return handle_r(f, text, NULL);
}

/* A protocol violation: no reply, and the caller kills the worker. */
static void expect_violation(Fixture *f, const char *text) {
        int r;
        json_t *answer = handle_r(f, text, &r);

        assert_int_equal(r, -EPROTO);
        assert_null(answer);
}

/* Handles text and checks the reply: type, id, status; returns its "value" (new string) or NULL. */
static char *expect_reply(Fixture *f, const char *text, json_int_t id, int status) {
        json_t *answer = handle(f, text);
        const char *v;
        char *value;

        assert_non_null(answer);
        assert_string_equal(json_string_value(json_object_get(answer, "type")), "reply");
        assert_true(json_is_integer(json_object_get(answer, "id")));
        assert_int_equal(json_integer_value(json_object_get(answer, "id")), id);
        assert_int_equal(json_integer_value(json_object_get(answer, "status")), status);
        v = json_string_value(json_object_get(answer, "value"));
        value = v ? strdup(v) : NULL;
        json_decref(answer);
        return value;
}

static void expect_no_reply(Fixture *f, const char *text) {
        json_t *answer = handle(f, text);
        assert_null(answer);
}

static void test_framing(void **state) {
        json_t *msg = NULL;
        char *big;

        assert_int_equal(link_parse("{\"type\":\"facts\"}", 16, &msg), 0);
        json_decref(msg);
        msg = NULL;
        assert_int_equal(link_parse("", 0, &msg), -EBADMSG);
        assert_int_equal(link_parse("[]", 2, &msg), -EBADMSG);
        assert_int_equal(link_parse("{}", 2, &msg), -EBADMSG);
        assert_int_equal(link_parse("{\"type\":1}", 10, &msg), -EBADMSG);
        assert_int_equal(link_parse("{\"type\":\"a\",\"type\":\"b\"}", 23, &msg), -EBADMSG);
        assert_int_equal(link_parse("{\"type\":\"a\"", 11, &msg), -EBADMSG);
        assert_null(msg);

        big = malloc(LINK_MAX_FRAME + 1);
        assert_non_null(big);
        memset(big, ' ', LINK_MAX_FRAME + 1);
        memcpy(big, "{\"type\":\"facts\"}", 16);
        assert_int_equal(link_parse(big, LINK_MAX_FRAME, &msg), 0);
        json_decref(msg);
        msg = NULL;
        assert_int_equal(link_parse(big, LINK_MAX_FRAME + 1, &msg), -EMSGSIZE);
        assert_null(msg);
        free(big);
}

static void test_kv(void **state) {
        Fixture *f = *state;
        char *v;

        /* Nothing kept yet: no value, no error. */
        assert_null(expect_reply(f, "{\"type\":\"kv-get\",\"id\":1,\"key\":\"stream_id\"}", 1, 0));
        assert_null(expect_reply(f, "{\"type\":\"kv-set\",\"id\":2,\"key\":\"stream_id\",\"value\":\"s-1\"}",
                                 2, 0));
        v = expect_reply(f, "{\"type\":\"kv-get\",\"id\":3,\"key\":\"stream_id\"}", 3, 0);
        assert_string_equal(v, "s-1");
        free(v);
        assert_null(expect_reply(f, "{\"type\":\"kv-set\",\"id\":4,\"key\":\"push_secret\",\"value\":\"c2Vj\"}",
                                 4, 0));

        /* Only those two facts, and only short printable values. */
        assert_null(expect_reply(f, "{\"type\":\"kv-get\",\"id\":5,\"key\":\"schema_version\"}", 5, -EPERM));
        assert_null(expect_reply(f, "{\"type\":\"kv-set\",\"id\":6,\"key\":\"x\",\"value\":\"y\"}", 6, -EPERM));
        assert_null(expect_reply(f, "{\"type\":\"kv-get\",\"id\":7}", 7, -EPERM));
        assert_null(expect_reply(f, "{\"type\":\"kv-set\",\"id\":8,\"key\":\"stream_id\",\"value\":\"a\\nb\"}",
                                 8, -EPERM));
        assert_null(expect_reply(f, "{\"type\":\"kv-set\",\"id\":9,\"key\":\"stream_id\",\"value\":5}", 9, -EPERM));
        {
                char text[512];

                snprintf(text, sizeof(text),
                         "{\"type\":\"kv-set\",\"id\":10,\"key\":\"stream_id\",\"value\":\"%0257d\"}", 0);
                assert_null(expect_reply(f, text, 10, -EPERM));
                snprintf(text, sizeof(text),
                         "{\"type\":\"kv-set\",\"id\":11,\"key\":\"stream_id\",\"value\":\"%0256d\"}", 0);
                assert_null(expect_reply(f, text, 11, 0));
        }
        v = NULL;
        assert_int_equal(store_kv_get(f->m->state.store, "x", &v), -ENOENT);
}

static void test_violations(void **state) {
        Fixture *f = *state;

        /* A request needs an integer id, which the reply echoes; anything else kills the
         * worker, as OpenSSH's monitor does for an unpermitted request. */
        expect_violation(f, "{\"type\":\"kv-get\",\"key\":\"stream_id\"}");
        expect_violation(f, "{\"type\":\"kv-get\",\"id\":\"1\",\"key\":\"stream_id\"}");
        expect_violation(f, "{\"type\":\"ingest\",\"id\":1.5}");
        expect_violation(f, "{\"type\":\"exec\",\"id\":9007199254740993}");
        expect_violation(f, "{\"type\":\"reply\",\"id\":-4,\"status\":0}");
        expect_violation(f, "{\"type\":\"ingest\",\"id\":4}");
        expect_violation(f, "{\"type\":\"ingest\",\"id\":5,\"request\":[]}");
        expect_violation(f, "{\"type\":\"facts\",\"stream\":[1]}");
        expect_violation(f, "{\"type\":\"verify-result\",\"state\":7}");
        /* Notifications are not answered. */
        expect_no_reply(f, "{\"type\":\"facts\",\"id\":1}");
}

#define INGEST_SET                                                                                 \
        "{\"type\":\"ingest\",\"id\":%d,\"request\":{\"kind\":\"subject\",\"jti\":\"%s\","         \
        "\"iss\":\"" ISS "\",\"event_uri\":\"https://schemas.openid.net/secevent/caep/"                \
        "event-type/session-revoked\",\"iat\":%lld,\"event_time\":%lld,\"claims\":\"{}\","          \
        "\"event\":{},\"subject\":{\"format\":\"email\",\"email\":\"%s\"},\"critical\":[]}}"

static char *ingest_text(char *buf, size_t size, int id, const char *jti, long long t, const char *email) {
        snprintf(buf, size, INGEST_SET, id, jti, t, t, email);
        return buf;
}

static void test_ingest(void **state) {
        Fixture *f = *state;
        long long now = (long long) time(NULL);
        char text[2048];
        RiskLevel l;
        json_t *answer;

        assert_null(expect_reply(f, ingest_text(text, sizeof(text), 1, "j1", now, "alice@example.com"), 1, 0));
        assert_int_equal(store_user_level(f->m->state.store, 2001, 1, &l, NULL), 0);
        assert_int_equal(l, RISK_HIGH);
        /* Delivered again: recorded once. */
        assert_null(expect_reply(f, ingest_text(text, sizeof(text), 2, "j1", now, "alice@example.com"), 2,
                                 -EALREADY));

        /* root, whatever the worker hands over: recorded as protected, never acted upon. */
        assert_null(expect_reply(f, ingest_text(text, sizeof(text), 3, "j2", now, "root@example.com"), 3, 0));
        assert_int_equal(store_user_level(f->m->state.store, 0, 1, &l, NULL), 0);
        assert_int_equal(l, RISK_NONE);

        /* Well-formed but wrong: the SET is refused (setErrs), the worker may stay. */
        answer = handle(f, ingest_text(text, sizeof(text), 4, "j3", now + 86400, "bob@example.com"));
        assert_int_equal(json_integer_value(json_object_get(answer, "status")), -EBADMSG);
        assert_string_equal(json_string_value(json_object_get(answer, "err")), "invalid_request");
        json_decref(answer);
        assert_int_equal(store_user_level(f->m->state.store, 2002, 1, &l, NULL), 0);
        assert_int_equal(l, RISK_NONE);
}

#define BATCH_ITEM                                                                                 \
        "{\"kind\":\"subject\",\"jti\":\"%s\",\"iss\":\"" ISS "\",\"event_uri\":"                      \
        "\"https://schemas.openid.net/secevent/caep/event-type/session-revoked\",\"iat\":%lld,"     \
        "\"event_time\":%lld,\"claims\":\"{}\",\"event\":{},\"subject\":{\"format\":\"email\","     \
        "\"email\":\"%s\"},\"critical\":[]}"

/* An ingest-batch: one transaction, one result per record in order; a duplicate inside the batch
 * and a refused record leave the others committed; malformed batches are violations. */
static void test_ingest_batch(void **state) {
        Fixture *f = *state;
        long long now = (long long) time(NULL);
        char a[1024], b[1024], c[1024], d[1024], text[8192];
        json_t *answer, *results;
        HistoryEntry *h = NULL;
        size_t n = 0;
        RiskLevel l;

        snprintf(a, sizeof(a), BATCH_ITEM, "b1", now, now, "alice@example.com");
        snprintf(b, sizeof(b), BATCH_ITEM, "b2", now, now, "bob@example.com");
        snprintf(c, sizeof(c), BATCH_ITEM, "b1", now, now, "alice@example.com");  /* again */
        snprintf(d, sizeof(d), BATCH_ITEM, "b3", now + 86400, now, "carol@example.com"); /* future */
        snprintf(text, sizeof(text), "{\"type\":\"ingest-batch\",\"id\":9,\"requests\":[%s,%s,%s,%s]}",
                 a, b, c, d);
        answer = handle(f, text);
        assert_non_null(answer);
        assert_int_equal(json_integer_value(json_object_get(answer, "id")), 9);
        assert_int_equal(json_integer_value(json_object_get(answer, "status")), 0);
        results = json_object_get(answer, "results");
        assert_int_equal(json_array_size(results), 4);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(results, 0), "status")), 0);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(results, 1), "status")), 0);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(results, 2), "status")),
                         -EALREADY);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(results, 3), "status")),
                         -EBADMSG);
        assert_string_equal(json_string_value(json_object_get(json_array_get(results, 3), "err")),
                            "invalid_request");
        json_decref(answer);

        assert_int_equal(store_user_level(f->m->state.store, 2001, 1, &l, NULL), 0);
        assert_int_equal(l, RISK_HIGH);
        assert_int_equal(store_user_level(f->m->state.store, 2002, 1, &l, NULL), 0);
        assert_int_equal(l, RISK_HIGH);
        assert_int_equal(store_user_level(f->m->state.store, 2003, 1, &l, NULL), 0);
        assert_int_equal(l, RISK_NONE);
        /* Applied once: one history row for alice, one for bob. */
        assert_int_equal(store_history_list(f->m->state.store, 2001, 10, &h, &n), 0);
        assert_int_equal(n, 1);
        history_entries_free(h, n);
        /* PAM's level table follows the batch. */
        assert_int_equal(state_levels_lookup(&f->m->state, 2002, (uint64_t) now, &l, NULL, 0, NULL, 0), 0);
        assert_int_equal(l, RISK_HIGH);

        /* The same batch again: every record a duplicate, nothing applied twice. */
        answer = handle(f, text);
        results = json_object_get(answer, "results");
        for (size_t i = 0; i < 3; i++)
                assert_int_equal(json_integer_value(json_object_get(json_array_get(results, i), "status")),
                                 -EALREADY);
        json_decref(answer);

        expect_violation(f, "{\"type\":\"ingest-batch\",\"id\":10,\"requests\":[]}");
        expect_violation(f, "{\"type\":\"ingest-batch\",\"id\":11,\"requests\":{}}");
        expect_violation(f, "{\"type\":\"ingest-batch\",\"id\":12}");
        expect_violation(f, "{\"type\":\"ingest-batch\",\"requests\":[{}]}");
        expect_violation(f, "{\"type\":\"ingest-batch\",\"id\":13,\"requests\":[{\"kind\":\"subject\"}]}");
}

/* Frames read one after the other from the channel as broker.c reads them. */
static int ingest_frames(Fixture *f, const char *const *texts, size_t n, json_t **replies) {
        json_t *msgs[LINK_BATCH_AHEAD] = {};
        int r;

        assert_true(n <= LINK_BATCH_AHEAD);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(link_parse(texts[i], strlen(texts[i]), &msgs[i]), 0);
        r = broker_ingest_batches(&f->m->state, "default", msgs, n, replies);
        for (size_t i = 0; i < n; i++)
                json_decref(msgs[i]);
        return r;
}

static json_int_t result_status(json_t *reply, size_t i) {
        return json_integer_value(json_object_get(json_array_get(json_object_get(reply, "results"), i),
                                                  "status"));
}

/* ingest-batch frames waiting together are committed together: each frame gets its own answer
 * (its id, its records' results in order; a duplicate across frames is one); one malformed
 * frame among them breaks the protocol and none of them is applied. */
static void test_ingest_batches_together(void **state) {
        Fixture *f = *state;
        long long now = (long long) time(NULL);
        char a[1024], b[1024], c[1024], d[1024], f1[4096], f2[4096];
        const char *texts[2] = { f1, f2 }, *bad[2] = { f1, "{\"type\":\"ingest-batch\",\"id\":32,"
                                                                "\"requests\":[{\"kind\":1}]}" };
        json_t *replies[LINK_BATCH_AHEAD] = {};
        RiskLevel l;

        snprintf(a, sizeof(a), BATCH_ITEM, "m1", now, now, "alice@example.com");
        snprintf(b, sizeof(b), BATCH_ITEM, "m2", now, now, "bob@example.com");
        snprintf(c, sizeof(c), BATCH_ITEM, "m1", now, now, "alice@example.com"); /* again */
        snprintf(d, sizeof(d), BATCH_ITEM, "m3", now, now, "carol@example.com");

        /* A malformed second frame: nothing of the first is applied either. */
        snprintf(f1, sizeof(f1), "{\"type\":\"ingest-batch\",\"id\":31,\"requests\":[%s]}", d);
        assert_int_equal(ingest_frames(f, bad, 2, replies), -EPROTO);
        assert_null(replies[0]);
        assert_null(replies[1]);
        assert_int_equal(store_user_level(f->m->state.store, 2003, 1, &l, NULL), 0);
        assert_int_equal(l, RISK_NONE);

        snprintf(f1, sizeof(f1), "{\"type\":\"ingest-batch\",\"id\":21,\"requests\":[%s,%s]}", a, b);
        snprintf(f2, sizeof(f2), "{\"type\":\"ingest-batch\",\"id\":22,\"requests\":[%s,%s]}", c, d);
        assert_int_equal(ingest_frames(f, texts, 2, replies), 0);
        assert_int_equal(json_integer_value(json_object_get(replies[0], "id")), 21);
        assert_int_equal(json_integer_value(json_object_get(replies[1], "id")), 22);
        assert_int_equal(json_array_size(json_object_get(replies[0], "results")), 2);
        assert_int_equal(json_array_size(json_object_get(replies[1], "results")), 2);
        assert_int_equal(result_status(replies[0], 0), 0);
        assert_int_equal(result_status(replies[0], 1), 0);
        assert_int_equal(result_status(replies[1], 0), -EALREADY);
        assert_int_equal(result_status(replies[1], 1), 0);
        json_decref(replies[0]);
        json_decref(replies[1]);
        for (uid_t u = 2001; u <= 2003; u++) {
                assert_int_equal(store_user_level(f->m->state.store, u, 1, &l, NULL), 0);
                assert_int_equal(l, RISK_HIGH);
        }
}

#define ATT_ITEM                                                                                   \
        "{\"kind\":\"subject\",\"jti\":\"%s\",\"iss\":\"" ISS "\",\"event_uri\":"                      \
        "\"https://schemas.openid.net/secevent/caep/event-type/session-revoked\",\"iat\":%lld,"     \
        "\"event_time\":%lld,\"claims_len\":%d,\"event\":{},\"subject\":{\"format\":\"email\","    \
        "\"email\":\"%s\"},\"critical\":[]}"

/* One ingest-batch frame of len bytes (it may hold a NUL) as link_recv() frames it and broker.c
 * handles it. */
static int ingest_frame(Fixture *f, const char *text, size_t len, json_t **reply) {
        json_t *msg = NULL;
        int r;

        assert_int_equal(link_parse(text, len, &msg), 0);
        *reply = NULL;
        r = broker_ingest_batches(&f->m->state, "default", &msg, 1, reply);
        json_decref(msg);
        return r;
}

/* An ingest-batch whose claims travel in its attachment (link.h): each record takes its bytes in
 * order, and an attachment not used up exactly, or claims that are not UTF-8 without NUL, break
 * the protocol; an attachment on another frame, or an object naming it, is malformed. */
static void test_ingest_batch_attachment(void **state) {
        Fixture *f = *state;
        long long now = (long long) time(NULL);
        char a[1024], b[1024], frame[4096];
        json_t *reply = NULL, *msg = NULL;
        RiskLevel l;
        size_t n;
        static const struct {
                int len_a, len_b;
                const char *att;
                size_t att_len;
        } bad[] = {
                { 9, 2, "{\"x\":\"1\"}{}!", 12 },   /* a byte left over */
                { 9, 4, "{\"x\":\"1\"}{}", 11 },    /* past the end */
                { 9, 2, "{\"x\":\"\0\"}{}", 11 },  /* a NUL */
                { 9, 2, "{\"x\":\"\xc0\"}{}", 11 }, /* not UTF-8 */
                { 0, 11, "{\"x\":\"1\"}{}", 11 },   /* none */
        };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                snprintf(a, sizeof(a), ATT_ITEM, "t1", now, now, bad[i].len_a, "alice@example.com");
                snprintf(b, sizeof(b), ATT_ITEM, "t2", now, now, bad[i].len_b, "bob@example.com");
                n = (size_t) snprintf(frame, sizeof(frame),
                                      "{\"type\":\"ingest-batch\",\"id\":41,\"requests\":[%s,%s]}", a, b);
                memcpy(frame + n + 1, bad[i].att, bad[i].att_len);
                assert_int_equal(ingest_frame(f, frame, n + 1 + bad[i].att_len, &reply), -EPROTO);
                assert_null(reply);
        }
        assert_int_equal(store_user_level(f->m->state.store, 2001, 1, &l, NULL), 0);
        assert_int_equal(l, RISK_NONE);

        snprintf(a, sizeof(a), ATT_ITEM, "t1", now, now, 9, "alice@example.com");
        snprintf(b, sizeof(b), ATT_ITEM, "t2", now, now, 2, "bob@example.com");
        n = (size_t) snprintf(frame, sizeof(frame),
                              "{\"type\":\"ingest-batch\",\"id\":42,\"requests\":[%s,%s]}", a, b);
        memcpy(frame + n + 1, "{\"x\":\"1\"}{}", 11);
        assert_int_equal(ingest_frame(f, frame, n + 12, &reply), 0);
        assert_int_equal(json_integer_value(json_object_get(reply, "id")), 42);
        assert_int_equal(result_status(reply, 0), 0);
        assert_int_equal(result_status(reply, 1), 0);
        json_decref(reply);
        for (uid_t u = 2001; u <= 2002; u++) {
                assert_int_equal(store_user_level(f->m->state.store, u, 1, &l, NULL), 0);
                assert_int_equal(l, RISK_HIGH);
        }

        /* Only an ingest-batch has an attachment; no frame names it itself. */
        assert_int_equal(link_parse("{\"type\":\"ingest\"}\0{}", 20, &msg), -EBADMSG);
        static const char named[] = "{\"type\":\"ingest-batch\",\"attachment\":\"\"}";
        assert_int_equal(link_parse(named, strlen(named), &msg), -EBADMSG);
        assert_int_equal(link_parse("{\"type\":\"ingest-batch\"}\0", 24, &msg), 0);
        assert_int_equal(json_string_length(json_object_get(msg, LINK_ATTACHMENT)), 0);
        json_decref(msg);
}

static void test_facts(void **state) {
        Fixture *f = *state;
        StreamFacts *s = &state_transmitter(&f->m->state, "default")->stream;

        expect_no_reply(f, "{\"type\":\"facts\",\"stream\":{\"stream_id\":\"s-1\",\"issuer\":\"" ISS "\","
                           "\"endpoint_url\":\"" ISS "/poll\",\"delivery\":\"urn:ietf:rfc:8936\","
                           "\"status\":\"enabled\",\"last_poll\":1700000000,"
                           "\"config\":{\"stream_id\":\"s-1\",\"events_delivered\":[\"e1\"]}},"
                           "\"counters\":{\"polls\":3,\"sets_received\":2}}");
        assert_string_equal(s->stream_id, "s-1");
        assert_string_equal(s->issuer, ISS);
        assert_string_equal(s->endpoint_url, ISS "/poll");
        assert_string_equal(s->status, "enabled");
        assert_int_equal(s->last_poll, 1700000000);
        assert_string_equal(s->events_delivered_json, "[\"e1\"]");
        assert_non_null(strstr(s->config_json, "\"stream_id\":\"s-1\""));
        assert_int_equal(f->m->state.counters.polls, 3);
        assert_int_equal(f->m->state.counters.sets_received, 2);

        /* Control characters, over-long values, wrong types, out-of-range counters: ignored. */
        expect_no_reply(f, "{\"type\":\"facts\",\"stream\":{\"stream_id\":\"a\\nb\",\"issuer\":7,"
                           "\"status\":\"bogus\",\"last_poll\":-1,\"config\":[1]},"
                           "\"counters\":{\"polls\":1000000,\"sets_received\":-1,\"poll_errors\":\"1\"}}");
        assert_string_equal(s->stream_id, "s-1");
        assert_string_equal(s->issuer, ISS);
        assert_string_equal(s->status, "enabled");
        assert_int_equal(s->last_poll, 1700000000);
        assert_int_equal(f->m->state.counters.polls, 3);
        assert_int_equal(f->m->state.counters.sets_received, 2);
        assert_int_equal(f->m->state.counters.poll_errors, 0);

        /* What the transmitter says wins over what the worker saw; null clears a fact. */
        expect_no_reply(f, "{\"type\":\"facts\",\"stream\":{\"transmitter_status\":\"paused\","
                           "\"stream_id\":null,\"last_error\":\"poll failed\"}}");
        assert_string_equal(s->status, "paused");
        assert_null(s->stream_id);
        assert_string_equal(s->last_error, "poll failed");
        /* "enabled" from the worker does not end a pause; "error" does. */
        expect_no_reply(f, "{\"type\":\"facts\",\"stream\":{\"status\":\"enabled\"}}");
        assert_string_equal(s->status, "paused");
        expect_no_reply(f, "{\"type\":\"facts\",\"stream\":{\"status\":\"error\",\"last_error\":null}}");
        assert_string_equal(s->status, "error");
        assert_null(s->last_error);
        expect_no_reply(f, "{\"type\":\"facts\",\"stream\":{\"transmitter_status\":\"gone\"}}");
        assert_string_equal(s->status, "error");
}

static void test_verify_result(void **state) {
        Fixture *f = *state;
        StreamFacts *s = &state_transmitter(&f->m->state, "default")->stream;

        /* Nothing asked for: ignored. */
        expect_no_reply(f, "{\"type\":\"verify-result\",\"state\":\"" STATE "\",\"result\":\"requested\"}");
        assert_null(s->verify_result);

        s->verify_state = strdup(STATE);
        assert_non_null(s->verify_state);
        expect_no_reply(f, "{\"type\":\"verify-result\",\"state\":\"other\",\"result\":\"requested\"}");
        assert_null(s->verify_result);
        expect_no_reply(f, "{\"type\":\"verify-result\",\"state\":\"" STATE "\",\"result\":\"a\\tb\"}");
        assert_null(s->verify_result);
        expect_no_reply(f, "{\"type\":\"verify-result\",\"state\":\"" STATE "\",\"result\":\"requested\"}");
        assert_string_equal(s->verify_result, "requested");
        /* Once the event arrived, the worker's word no longer counts. */
        s->verify_received = true;
        expect_no_reply(f, "{\"type\":\"verify-result\",\"state\":\"" STATE "\",\"result\":\"failed\"}");
        assert_string_equal(s->verify_result, "requested");
}

int main(int argc, char *argv[]) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_framing),
                cmocka_unit_test_setup_teardown(test_kv, setup, teardown),
                cmocka_unit_test_setup_teardown(test_violations, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ingest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ingest_batch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ingest_batches_together, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ingest_batch_attachment, setup, teardown),
                cmocka_unit_test_setup_teardown(test_facts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_result, setup, teardown),
        };

        nss_fixture_exec(argv);
        log_set_max_level(LOG_CRIT);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
