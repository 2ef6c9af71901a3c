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
#include "ingest.h"
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

/* One ingest-batch frame of len bytes as link_recv() frames it and broker.c handles it. */
static int ingest_frame(Fixture *f, const char *text, size_t len, json_t **reply) {
        json_t *msg = NULL;
        int r;

        assert_int_equal(link_parse(text, len, &msg), 0);
        *reply = NULL;
        r = broker_ingest_batches(&f->m->state, "default", &msg, 1, reply);
        json_decref(msg);
        return r;
}

/* The binary record (ingest_record_put()) of a JSON record the worker would hand over. */
static size_t put_item(char *buf, size_t size, const char *item) {
        json_t *j = json_loads(item, 0, NULL);
        IngestRequest r = {};
        size_t len = 0;

        assert_non_null(j);
        assert_int_equal(ingest_from_json(j, &r), 0);
        assert_int_equal(ingest_record_put(&r, buf, size, &len), 0);
        ingest_request_done(&r);
        json_decref(j);
        return len;
}

/* An ingest-batch frame: the object head, a NUL, then the binary records of items[0..n).
 * Returns its length. */
static size_t batch_frame(char *buf, size_t size, const char *head, const char *const *items,
                          size_t n) {
        size_t at = (size_t) snprintf(buf, size, "%s", head) + 1;

        assert_true(at < size);
        buf[at - 1] = '\0';
        for (size_t i = 0; i < n; i++)
                at += put_item(buf + at, size - at, items[i]);
        return at;
}

static void expect_batch_violation(Fixture *f, const char *text, size_t len) {
        json_t *reply = NULL;

        assert_int_equal(ingest_frame(f, text, len, &reply), -EPROTO);
        assert_null(reply);
}

static json_int_t result_status(json_t *reply, size_t i) {
        return json_integer_value(json_object_get(json_array_get(json_object_get(reply, "results"), i),
                                                  "status"));
}

/* An ingest-batch: one transaction, one result per record in order; a duplicate inside the batch
 * and a refused record leave the others committed; malformed batches are violations. */
static void test_ingest_batch(void **state) {
        Fixture *f = *state;
        long long now = (long long) time(NULL);
        char a[1024], b[1024], c[1024], d[1024], text[8192];
        const char *items[4] = { a, b, c, d };
        json_t *answer, *results;
        HistoryEntry *h = NULL;
        size_t n = 0, len;
        RiskLevel l;

        snprintf(a, sizeof(a), BATCH_ITEM, "b1", now, now, "alice@example.com");
        snprintf(b, sizeof(b), BATCH_ITEM, "b2", now, now, "bob@example.com");
        snprintf(c, sizeof(c), BATCH_ITEM, "b1", now, now, "alice@example.com");  /* again */
        snprintf(d, sizeof(d), BATCH_ITEM, "b3", now + 86400, now, "carol@example.com"); /* future */
        len = batch_frame(text, sizeof(text), "{\"type\":\"ingest-batch\",\"id\":9,\"records\":4}",
                          items, 4);
        assert_int_equal(ingest_frame(f, text, len, &answer), 0);
        assert_non_null(answer);
        assert_int_equal(json_integer_value(json_object_get(answer, "id")), 9);
        assert_int_equal(json_integer_value(json_object_get(answer, "status")), 0);
        results = json_object_get(answer, "results");
        assert_int_equal(json_array_size(results), 4);
        assert_int_equal(result_status(answer, 0), 0);
        assert_int_equal(result_status(answer, 1), 0);
        assert_int_equal(result_status(answer, 2), -EALREADY);
        assert_int_equal(result_status(answer, 3), -EBADMSG);
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

        /* The same batch again, through the channel's dispatch: every record a duplicate,
         * nothing applied twice. */
        {
                json_t *msg = NULL;

                assert_int_equal(link_parse(text, len, &msg), 0);
                assert_int_equal(broker_handle_message(&f->m->state, "default", msg, &answer), 0);
                json_decref(msg);
        }
        for (size_t i = 0; i < 3; i++)
                assert_int_equal(result_status(answer, i), -EALREADY);
        json_decref(answer);

        /* Malformed frames: no records, a count that is not one, no id, no records at all, a
         * record cut short or missing, a byte left over, more than LINK_BATCH_MAX. */
        static const char *const heads[] = {
                "{\"type\":\"ingest-batch\",\"id\":10,\"records\":0}",
                "{\"type\":\"ingest-batch\",\"id\":11,\"records\":{}}",
                "{\"type\":\"ingest-batch\",\"id\":12}",
                "{\"type\":\"ingest-batch\",\"records\":1}",
                "{\"type\":\"ingest-batch\",\"id\":13,\"records\":2}",
                "{\"type\":\"ingest-batch\",\"id\":14,\"records\":-1}",
                "{\"type\":\"ingest-batch\",\"id\":15,\"records\":257}",
        };
        for (size_t i = 0; i < ARRAY_SIZE(heads); i++) {
                len = batch_frame(text, sizeof(text), heads[i], items, 1);
                expect_batch_violation(f, text, len);
        }
        len = batch_frame(text, sizeof(text), "{\"type\":\"ingest-batch\",\"id\":16,\"records\":1}",
                          items, 1);
        expect_batch_violation(f, text, len - 1);
        text[len] = 'x';
        expect_batch_violation(f, text, len + 1);
        /* Without its records (no NUL, nothing after it). */
        expect_violation(f, "{\"type\":\"ingest-batch\",\"id\":17,\"records\":1}");
        assert_int_equal(store_user_level(f->m->state.store, 2001, 1, &l, NULL), 0);
}

/* Frames read one after the other from the channel as broker.c reads them. */
static int ingest_frames(Fixture *f, const char *const *texts, const size_t *lens, size_t n,
                         json_t **replies) {
        json_t *msgs[LINK_BATCH_AHEAD] = {};
        int r;

        assert_true(n <= LINK_BATCH_AHEAD);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(link_parse(texts[i], lens[i], &msgs[i]), 0);
        r = broker_ingest_batches(&f->m->state, "default", msgs, n, replies);
        for (size_t i = 0; i < n; i++)
                json_decref(msgs[i]);
        return r;
}

/* ingest-batch frames waiting together are committed together: each frame gets its own answer
 * (its id, its records' results in order; a duplicate across frames is one); one malformed
 * frame among them breaks the protocol and none of them is applied. */
static void test_ingest_batches_together(void **state) {
        Fixture *f = *state;
        long long now = (long long) time(NULL);
        char a[1024], b[1024], c[1024], d[1024], f1[4096], f2[4096];
        const char *texts[2] = { f1, f2 }, *ab[2] = { a, b }, *cd[2] = { c, d };
        json_t *replies[LINK_BATCH_AHEAD] = {};
        size_t lens[2], at;
        RiskLevel l;

        snprintf(a, sizeof(a), BATCH_ITEM, "m1", now, now, "alice@example.com");
        snprintf(b, sizeof(b), BATCH_ITEM, "m2", now, now, "bob@example.com");
        snprintf(c, sizeof(c), BATCH_ITEM, "m1", now, now, "alice@example.com"); /* again */
        snprintf(d, sizeof(d), BATCH_ITEM, "m3", now, now, "carol@example.com");

        /* A malformed second frame (a record of no kind there is): nothing of the first is
         * applied either. */
        lens[0] = batch_frame(f1, sizeof(f1), "{\"type\":\"ingest-batch\",\"id\":31,\"records\":1}",
                              &cd[1], 1);
        lens[1] = batch_frame(f2, sizeof(f2), "{\"type\":\"ingest-batch\",\"id\":32,\"records\":1}",
                              &ab[0], 1);
        at = strlen(f2) + 1;
        f2[at] = 7; /* the record's kind */
        assert_int_equal(ingest_frames(f, texts, lens, 2, replies), -EPROTO);
        assert_null(replies[0]);
        assert_null(replies[1]);
        assert_int_equal(store_user_level(f->m->state.store, 2003, 1, &l, NULL), 0);
        assert_int_equal(l, RISK_NONE);

        lens[0] = batch_frame(f1, sizeof(f1), "{\"type\":\"ingest-batch\",\"id\":21,\"records\":2}",
                              ab, 2);
        lens[1] = batch_frame(f2, sizeof(f2), "{\"type\":\"ingest-batch\",\"id\":22,\"records\":2}",
                              cd, 2);
        assert_int_equal(ingest_frames(f, texts, lens, 2, replies), 0);
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

/* A frame of one record, r, after the record good (so that what r does to the frame shows):
 * the frame's result. */
static int frame_with(Fixture *f, const IngestRequest *good, const IngestRequest *r,
                      void (*mangle)(char *rec, size_t len), json_t **reply) {
        char text[65536];
        size_t at = (size_t) snprintf(text, sizeof(text),
                                      "{\"type\":\"ingest-batch\",\"id\":40,\"records\":2}") + 1;
        size_t len;

        text[at - 1] = '\0';
        assert_int_equal(ingest_record_put(good, text + at, sizeof(text) - at, &len), 0);
        at += len;
        assert_int_equal(ingest_record_put(r, text + at, sizeof(text) - at, &len), 0);
        if (mangle)
                mangle(text + at, len);
        return ingest_frame(f, text, at + len, reply);
}

static void nul_in_jti(char *rec, size_t len) {
        assert_true(len > 22);
        rec[1 + 8 + 8 + 4] = '\0'; /* kind, iat, event_time, the jti's length, then the jti */
}

static void huge_length(char *rec, size_t len) {
        uint32_t l = UINT32_MAX - 1;

        assert_true(len > 21);
        memcpy(rec + 1 + 8 + 8, &l, sizeof(l));
}

/* The binary records (ingest.h) root reads from a frame's attachment, against what a hostile
 * worker may write: cut short anywhere, a NUL or bytes that are not UTF-8 in a string, a
 * control character, no event for a subject SET, an event for another kind, a length past the
 * end: each breaks the protocol and nothing of the frame is applied. A record past root's
 * bounds is refused alone (invalid_request) and the next one follows. */
static void test_ingest_batch_records(void **state) {
        Fixture *f = *state;
        long long now = (long long) time(NULL);
        char item[1024], text[8192];
        const char *items[1] = { item };
        json_t *reply = NULL, *j;
        IngestRequest good = {}, r = {};
        size_t len, head;
        RiskLevel l;

        snprintf(item, sizeof(item), BATCH_ITEM, "r1", now, now, "alice@example.com");
        len = batch_frame(text, sizeof(text), "{\"type\":\"ingest-batch\",\"id\":41,\"records\":1}",
                          items, 1);
        head = strlen(text) + 1;
        for (size_t cut = head; cut < len; cut++)
                expect_batch_violation(f, text, cut);

        j = json_loads(item, 0, NULL);
        assert_int_equal(ingest_from_json(j, &good), 0);
        json_decref(j);
        snprintf(item, sizeof(item), BATCH_ITEM, "r2", now, now, "bob@example.com");
        j = json_loads(item, 0, NULL);
        assert_int_equal(ingest_from_json(j, &r), 0);
        json_decref(j);

        assert_int_equal(frame_with(f, &good, &r, nul_in_jti, &reply), -EPROTO);
        assert_int_equal(frame_with(f, &good, &r, huge_length, &reply), -EPROTO);
        {
                char *saved = r.claims_json;

                r.claims_json = UNCONST("{\"x\":\"\xc0\"}"); /* not UTF-8 */
                assert_int_equal(frame_with(f, &good, &r, NULL, &reply), -EPROTO);
                r.claims_json = saved;
        }
        {
                char *saved = r.iss;

                r.iss = UNCONST(ISS "\x1b[2J"); /* a control character */
                assert_int_equal(frame_with(f, &good, &r, NULL, &reply), -EPROTO);
                r.iss = saved;
        }
        {
                json_t *saved = r.event;

                r.event = NULL; /* a subject SET without its event */
                assert_int_equal(frame_with(f, &good, &r, NULL, &reply), -EPROTO);
                r.kind = INGEST_VERIFICATION; /* another kind with one */
                r.event = saved;
                assert_int_equal(frame_with(f, &good, &r, NULL, &reply), -EPROTO);
                r.kind = INGEST_SUBJECT;
        }
        assert_null(reply);
        assert_int_equal(store_user_level(f->m->state.store, 2001, 1, &l, NULL), 0);
        assert_int_equal(l, RISK_NONE);

        /* Past root's bounds (an event larger than INGEST_MAX_EVENT): refused alone. */
        {
                json_t *saved = r.event;
                char *big = malloc(INGEST_MAX_EVENT + 1);

                assert_non_null(big);
                memset(big, 'x', INGEST_MAX_EVENT);
                big[INGEST_MAX_EVENT] = '\0';
                r.event = json_pack("{s:s}", "reason_admin", big);
                free(big);
                assert_int_equal(frame_with(f, &good, &r, NULL, &reply), 0);
                assert_int_equal(result_status(reply, 0), 0);
                assert_int_equal(result_status(reply, 1), -EBADMSG);
                assert_string_equal(json_string_value(json_object_get(
                        json_array_get(json_object_get(reply, "results"), 1), "err")),
                        "invalid_request");
                json_decref(reply);
                json_decref(r.event);
                r.event = saved;
        }
        assert_int_equal(store_user_level(f->m->state.store, 2001, 1, &l, NULL), 0);
        assert_int_equal(l, RISK_HIGH);
        ingest_request_done(&good);
        ingest_request_done(&r);

        /* Only an ingest-batch has an attachment; no frame names it itself. */
        {
                json_t *msg = NULL;
                static const char named[] = "{\"type\":\"ingest-batch\",\"attachment\":\"\"}";

                assert_int_equal(link_parse("{\"type\":\"ingest\"}\0{}", 20, &msg), -EBADMSG);
                assert_int_equal(link_parse(named, strlen(named), &msg), -EBADMSG);
                assert_int_equal(link_parse("{\"type\":\"ingest-batch\"}\0", 24, &msg), 0);
                assert_int_equal(json_string_length(json_object_get(msg, LINK_ATTACHMENT)), 0);
                json_decref(msg);
        }
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
                cmocka_unit_test_setup_teardown(test_ingest_batch_records, setup, teardown),
                cmocka_unit_test_setup_teardown(test_facts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_result, setup, teardown),
        };

        nss_fixture_exec(argv);
        log_set_max_level(LOG_CRIT);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
