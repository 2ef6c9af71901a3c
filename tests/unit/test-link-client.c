/* SPDX-License-Identifier: MIT */
/* The network worker's end of the channel (link-client.h), against a real SOCK_SEQPACKET
 * socketpair with this test playing root: an ingest-batch sent ahead (link_ingest_batch_send(),
 * the frame made around binary records written once, its attachment) is read by root as any
 * frame, is answered while other requests are made, its answer is taken only by
 * link_ingest_batch_wait() and mapped back record by record, up to LINK_BATCH_AHEAD may be
 * outstanding (one more is refused) and their answers, matched by id whatever their order, are
 * taken oldest first, and a channel that closes before the answer says so (nothing is known
 * committed); a stop aborts the HTTP requests of the poll and of the poll sent ahead. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "http.h"
#include "link-client.h"
#include "link.h"
#include "macro.h"

static const char *CONF = "[transmitter]\nissuer = https://idp.example.com\nauth = none\n"
                          "[subjects]\ndomains = example.com\n";

static Link *new_link(int *ret_root_fd) {
        Config *c = NULL;
        Link *l = NULL;
        int sv[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(config_load_buffer("mem", CONF, strlen(CONF), &c), 0);
        assert_int_equal(link_new(sv[1], c, NULL, &l), 0);
        *ret_root_fd = sv[0];
        return l;
}

/* n records as the poller hands them over (bytes this end does not read; they may hold NULs). */
static const char RECS3[] = "rec-a\0rec-b\0rec-c";
static const char RECS2[] = "rec-a\0rec-b";

/* Root's side: the next message, of the expected type. */
static json_t *root_recv(int fd, const char *type) {
        json_t *m = NULL;

        assert_int_equal(link_recv(fd, &m), 0);
        assert_string_equal(json_string_value(json_object_get(m, "type")), type);
        return m;
}

/* Root's side: sends reply (made by the caller, owned here). */
static void root_send(int fd, json_t *reply) {
        assert_non_null(reply);
        assert_int_equal(link_send(fd, reply), 0);
        json_decref(reply);
}

/* The worker sends RECS2's two records as a batch; root reads it into *batch (replacing what
 * was there). */
static void next_batch(Link *l, int fd, json_t **batch) {
        assert_int_equal(link_ingest_batch_send(l, RECS2, sizeof(RECS2), 2), 0);
        json_decref(*batch);
        *batch = root_recv(fd, "ingest-batch");
}

typedef struct KvCall {
        Link *link;
        char *value;
        int r;
} KvCall;

static void *kv_get(void *userdata) {
        KvCall *k = userdata;

        k->r = link_kv_get(k->link, "stream_id", &k->value);
        return NULL;
}

static void test_batch_sent_ahead(void **state) {
        _cleanup_(json_decrefp) json_t *batch = NULL, *kv = NULL;
        json_t *later[LINK_BATCH_AHEAD] = {};
        SetError errs[3] = {};
        int rs[3] = { 99, 99, 99 }, fd;
        Link *l = new_link(&fd);
        KvCall k = { .link = l };
        pthread_t t;

        (void) state;
        for (size_t i = 0; i < LINK_BATCH_AHEAD; i++)
                assert_int_equal(link_ingest_batch_send(l, i == 0 ? RECS3 : RECS2,
                                                        i == 0 ? sizeof(RECS3) : sizeof(RECS2),
                                                        i == 0 ? 3 : 2), 0);
        /* No more than LINK_BATCH_AHEAD ahead. */
        assert_int_equal(link_ingest_batch_send(l, RECS3, sizeof(RECS3), 3), -EBUSY);
        assert_int_equal(link_ingest_batch_send(l, RECS3, LINK_MAX_FRAME - 96, 3), -EMSGSIZE);
        /* Root reads a frame as any other: how many records, the id, and the records as they
         * were written, in the attachment. */
        batch = root_recv(fd, "ingest-batch");
        assert_int_equal(json_integer_value(json_object_get(batch, "records")), 3);
        assert_true(json_is_integer(json_object_get(batch, "id")));
        assert_int_equal(json_string_length(json_object_get(batch, LINK_ATTACHMENT)), sizeof(RECS3));
        assert_memory_equal(json_string_value(json_object_get(batch, LINK_ATTACHMENT)), RECS3,
                            sizeof(RECS3));
        for (size_t i = 1; i < LINK_BATCH_AHEAD; i++) {
                later[i] = root_recv(fd, "ingest-batch");
                assert_int_equal(json_integer_value(json_object_get(later[i], "records")), 2);
        }
        /* Nothing to send, or a frame past the bound: refused, nothing outstanding. */
        assert_int_equal(link_ingest_batch_send(l, RECS3, 0, 0), -EINVAL);

        /* Another request while root commits: answered first, the batch's answer kept. */
        assert_int_equal(pthread_create(&t, NULL, kv_get, &k), 0);
        kv = root_recv(fd, "kv-get");
        root_send(fd, json_pack("{s:s, s:O, s:i, s:s}", "type", "reply", "id",
                                json_object_get(kv, "id"), "status", 0, "value", "s-1"));
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(k.r, 0);
        assert_string_equal(k.value, "s-1");
        free(k.value);

        /* The later batches' answers first (newest first): each is kept for its batch. */
        for (size_t i = LINK_BATCH_AHEAD - 1; i >= 1; i--)
                root_send(fd, json_pack("{s:s, s:O, s:i, s:[{s:i}, {s:i}]}", "type", "reply", "id",
                                        json_object_get(later[i], "id"), "status", 0, "results",
                                        "status", 0, "status", (int) -i));
        root_send(fd, json_pack("{s:s, s:O, s:i, s:[{s:i}, {s:i, s:s, s:s}, {s:i}]}", "type", "reply",
                                "id", json_object_get(batch, "id"), "status", 0, "results",
                                "status", 0, "status", -EBADMSG, "err", "invalid_request",
                                "description", "too large", "status", -EALREADY));
        assert_int_equal(link_ingest_batch_wait(l, 3, errs, rs), 0);
        assert_int_equal(rs[0], 0);
        assert_int_equal(rs[1], -EBADMSG);
        assert_string_equal(errs[1].err, "invalid_request");
        assert_string_equal(errs[1].description, "too large");
        assert_int_equal(rs[2], -EALREADY);
        assert_null(errs[2].err);
        /* Then the later ones, oldest first, each with its own answer. */
        for (size_t i = 1; i < LINK_BATCH_AHEAD; i++) {
                assert_int_equal(link_ingest_batch_wait(l, 2, errs, rs), 0);
                assert_int_equal(rs[0], 0);
                assert_int_equal(rs[1], (int) -i);
                json_decref(later[i]);
        }

        /* Taken: nothing outstanding any more, and a new batch may go. */
        assert_int_equal(link_ingest_batch_wait(l, 3, errs, rs), -ENOENT);
        assert_int_equal(link_ingest_batch_send(l, RECS3, sizeof(RECS3), 3), 0);
        json_decref(root_recv(fd, "ingest-batch"));
        close(fd);
        /* Root gone before answering: none of them is known to be committed. */
        assert_int_equal(link_ingest_batch_wait(l, 3, errs, rs), -ECONNRESET);
        link_free(l);
}

static void test_batch_answer_mismatch(void **state) {
        _cleanup_(json_decrefp) json_t *batch = NULL;
        SetError errs[2] = {};
        int rs[2], fd;
        Link *l = new_link(&fd);

        (void) state;
        next_batch(l, fd, &batch);
        /* A reply with another id is not this batch's answer; one result for two records is
         * no answer at all. */
        root_send(fd, json_pack("{s:s, s:I, s:i, s:[]}", "type", "reply", "id",
                                json_integer_value(json_object_get(batch, "id")) + 100, "status", 0,
                                "results"));
        root_send(fd, json_pack("{s:s, s:O, s:i, s:[{s:i}]}", "type", "reply", "id",
                                json_object_get(batch, "id"), "status", 0, "results", "status", 0));
        assert_int_equal(link_ingest_batch_wait(l, 2, errs, rs), -EBADMSG);
        /* A failed batch as a whole (root applied none). */
        next_batch(l, fd, &batch);
        root_send(fd, json_pack("{s:s, s:O, s:i}", "type", "reply", "id", json_object_get(batch, "id"),
                                "status", -EIO));
        assert_int_equal(link_ingest_batch_wait(l, 2, errs, rs), -EIO);
        /* No memory for the results: the answer is still taken, nothing is said applied. */
        next_batch(l, fd, &batch);
        root_send(fd, json_pack("{s:s, s:O, s:i, s:[{s:i}, {s:i}]}", "type", "reply", "id",
                                json_object_get(batch, "id"), "status", 0, "results", "status", 0,
                                "status", 0));
        assert_int_equal(link_ingest_batch_wait(l, 2, NULL, NULL), -ENOMEM);
        assert_int_equal(link_ingest_batch_wait(l, 2, errs, rs), -ENOENT);
        close(fd);
        link_free(l);
}

/* A request on c, to a port nothing listens on: -ECANCELED when an abort was waiting for it,
 * else the connection's own error. */
static int try_request(HttpClient *c) {
        HttpResponse resp = {};
        int r = http_request(c, "GET", "https://127.0.0.1:1/", NULL, NULL, 2000000, 0, &resp);

        http_response_done(&resp);
        return r;
}

/* The stop root asks for aborts the poll's client and the one of the poll sent ahead (whose
 * answer the poller waits for without looking for a stop), also when it was registered after
 * the stop; a client unregistered before it is left alone. */
static void test_stop_aborts_http(void **state) {
        HttpClient *poll = NULL, *ahead = NULL, *gone = NULL, *late = NULL;
        int fd, fd2;
        Link *l = new_link(&fd), *l2 = new_link(&fd2);

        (void) state;
        assert_int_equal(http_client_new(NULL, &poll), 0);
        assert_int_equal(http_client_new(NULL, &ahead), 0);
        assert_int_equal(http_client_new(NULL, &gone), 0);
        assert_int_equal(http_client_new(NULL, &late), 0);
        link_set_http(l, poll);
        link_set_http_ahead(l, ahead);
        link_set_http_ahead(l2, gone);
        link_set_http_ahead(l2, NULL);

        link_stop(l);
        link_stop(l2);
        assert_true(link_stopping(l));
        assert_int_equal(try_request(poll), -ECANCELED);
        assert_int_equal(try_request(ahead), -ECANCELED);
        assert_int_not_equal(try_request(gone), -ECANCELED);
        link_set_http_ahead(l2, late);
        assert_int_equal(try_request(late), -ECANCELED);
        /* An abort is taken by one request. */
        assert_int_not_equal(try_request(ahead), -ECANCELED);

        link_set_http(l, NULL);
        link_set_http_ahead(l, NULL);
        link_set_http_ahead(l2, NULL);
        http_client_free(poll);
        http_client_free(ahead);
        http_client_free(gone);
        http_client_free(late);
        close(fd);
        close(fd2);
        link_free(l);
        link_free(l2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_batch_sent_ahead),
                cmocka_unit_test(test_batch_answer_mismatch),
                cmocka_unit_test(test_stop_aborts_http),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
