/* SPDX-License-Identifier: MIT */
/* Root's end of the worker channel (link.h): the bounded outgoing queue never blocks, keeps the
 * order of frames, refuses what passes its bounds, and flushes once the peer reads; the rate
 * count of one-second windows. Against a real SOCK_SEQPACKET socketpair. */
#include <errno.h>
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

#include "link.h"
#include "macro.h"

static void pair(int sv[2]) {
        int small = 4096;

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
        (void) setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
}

static json_t *numbered(int i) {
        json_t *m = json_pack("{s:s, s:i, s:s}", "type", "reply", "id", i, "pad",
                              "................................................................");
        assert_non_null(m);
        return m;
}

/* Reads every frame there is from fd, checking they are numbered from *next on. */
static size_t drain(int fd, int *next) {
        size_t n = 0;

        for (;;) {
                json_t *m = NULL;
                int r = link_recv(fd, &m);

                if (r == -EAGAIN)
                        return n;
                assert_int_equal(r, 0);
                assert_int_equal(json_integer_value(json_object_get(m, "id")), *next);
                (*next)++;
                n++;
                json_decref(m);
        }
}

static void test_queue_when_the_peer_does_not_read(void **state) {
        LinkQueue q = { .max_frames = 8 };
        int sv[2], i, r, queued = 0, next = 0;
        size_t got;

        pair(sv);
        /* Sent at once while the socket takes them, then queued, never blocking. */
        for (i = 0; i < 100000; i++) {
                json_t *m = numbered(i);
                r = link_queue_send(&q, sv[0], m);
                json_decref(m);
                if (r == -ENOBUFS)
                        break;
                assert_true(r == 0 || r == 1);
                if (r == 1)
                        queued++;
                else
                        assert_int_equal(queued, 0); /* nothing jumps the queue */
        }
        assert_int_equal(r, -ENOBUFS);
        assert_int_equal(queued, 8);
        assert_int_equal(link_queue_length(&q), 8);
        /* Still full: the refused frame was not queued. */
        assert_int_equal(link_queue_flush(&q, sv[0]), 1);

        /* The peer reads: everything arrives, in order, the refused one excepted. */
        got = 0;
        while (link_queue_length(&q) > 0) {
                got += drain(sv[1], &next);
                r = link_queue_flush(&q, sv[0]);
                assert_true(r == 0 || r == 1);
        }
        got += drain(sv[1], &next);
        assert_int_equal(got, (size_t) i);
        assert_int_equal(q.bytes, 0);

        /* Empty again: the next frame goes out at once. */
        {
                json_t *m = numbered(next);
                assert_int_equal(link_queue_send(&q, sv[0], m), 0);
                json_decref(m);
                assert_int_equal(drain(sv[1], &next), 1);
        }
        link_queue_done(&q);
        safe_close(sv[0]);
        safe_close(sv[1]);
}

static void test_queue_byte_bound(void **state) {
        LinkQueue q = { .max_frames = 1000, .max_bytes = 1000 };
        int sv[2], i, r = 0;

        pair(sv);
        for (i = 0; i < 100000 && r != -ENOBUFS; i++) {
                json_t *m = numbered(i);
                r = link_queue_send(&q, sv[0], m);
                json_decref(m);
        }
        assert_int_equal(r, -ENOBUFS);
        assert_true(q.bytes <= 1000);
        assert_true(link_queue_length(&q) < 1000);
        link_queue_done(&q);
        assert_int_equal(link_queue_length(&q), 0);
        safe_close(sv[0]);
        safe_close(sv[1]);
}

static void test_queue_peer_gone(void **state) {
        LinkQueue q = {};
        json_t *m = numbered(1);
        int sv[2];

        pair(sv);
        safe_close(sv[1]);
        assert_int_equal(link_queue_send(&q, sv[0], m), -EPIPE);
        assert_int_equal(link_queue_length(&q), 0);
        json_decref(m);
        link_queue_done(&q);
        safe_close(sv[0]);
}

static void test_queue_frame_too_large(void **state) {
        LinkQueue q = {};
        char *big = malloc(LINK_MAX_FRAME + 1);
        json_t *m;
        int sv[2];

        assert_non_null(big);
        memset(big, 'x', LINK_MAX_FRAME);
        big[LINK_MAX_FRAME] = 0;
        m = json_pack("{s:s, s:s}", "type", "verify", "state", big);
        pair(sv);
        assert_int_equal(link_queue_send(&q, sv[0], m), -EMSGSIZE);
        json_decref(m);
        free(big);
        link_queue_done(&q);
        safe_close(sv[0]);
        safe_close(sv[1]);
}

static void test_rate(void **state) {
        LinkRate r = {};
        uint64_t t = 5000000;

        for (unsigned i = 0; i < 100; i++)
                assert_false(link_rate_exceeded(&r, t + i, 100));
        assert_true(link_rate_exceeded(&r, t + 999999, 100));
        /* A new window. */
        assert_false(link_rate_exceeded(&r, t + 1000000, 100));
        for (unsigned i = 1; i < 100; i++)
                assert_false(link_rate_exceeded(&r, t + 1000000 + i * 10000, 100));
        assert_true(link_rate_exceeded(&r, t + 1990000, 100));
        /* The clock never goes back, but if it did: a new window, not an overflow. */
        assert_false(link_rate_exceeded(&r, 1, 100));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_queue_when_the_peer_does_not_read),
                cmocka_unit_test(test_queue_byte_bound),
                cmocka_unit_test(test_queue_peer_gone),
                cmocka_unit_test(test_queue_frame_too_large),
                cmocka_unit_test(test_rate),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
