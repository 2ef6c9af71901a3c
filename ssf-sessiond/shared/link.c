/* SPDX-License-Identifier: MIT */
/*
 * The framing of the channel between root and the network worker (link.h), used by both
 * processes: one JSON object per SOCK_SEQPACKET datagram, bounded and parsed strictly.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "link.h"
#include "macro.h"

int link_send(int fd, json_t *msg) {
        _cleanup_free_ char *text = json_dumps(msg, JSON_COMPACT);

        if (!text)
                return -ENOMEM;
        return link_send_text(fd, text, strlen(text));
}

int link_send_text(int fd, const char *text, size_t len) {
        if (len > LINK_MAX_FRAME)
                return -EMSGSIZE;
        for (;;) {
                ssize_t n = send(fd, text, len, MSG_NOSIGNAL);
                if (n >= 0)
                        return (size_t) n == len ? 0 : -EIO;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN) {
                        struct pollfd p = { .fd = fd, .events = POLLOUT };
                        if (poll(&p, 1, 5000) <= 0)
                                return -ETIMEDOUT;
                        continue;
                }
                return -errno;
        }
}

int link_parse(const char *buf, size_t len, json_t **ret) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        const char *nul;
        size_t text;

        if (len > LINK_MAX_FRAME)
                return -EMSGSIZE;
        if (!buf || len == 0)
                return -EBADMSG;
        /* JSON text never holds a NUL byte: the first one ends the object. */
        nul = memchr(buf, '\0', len);
        text = nul ? (size_t) (nul - buf) : len;
        j = json_loadb(buf, text, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(j) || !json_is_string(json_object_get(j, "type")) ||
            json_object_get(j, LINK_ATTACHMENT))
                return -EBADMSG;
        if (nul) {
                json_t *a;

                if (!streq(json_string_value(json_object_get(j, "type")), "ingest-batch"))
                        return -EBADMSG;
                a = json_stringn_nocheck(nul + 1, len - text - 1);
                if (!a || json_object_set_new(j, LINK_ATTACHMENT, a) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(j);
        return 0;
}

int link_recv(int fd, json_t **ret) {
        _cleanup_free_ char *buf = malloc(LINK_MAX_FRAME + 1);

        if (!buf)
                return -ENOMEM;
        return link_recv_buf(fd, buf, ret);
}

int link_recv_buf(int fd, char *buf, json_t **ret) {
        ssize_t n;

        n = recv(fd, buf, LINK_MAX_FRAME + 1, MSG_TRUNC | MSG_CMSG_CLOEXEC);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
        if (n == 0)
                return -ECONNRESET;
        return link_parse(buf, (size_t) n, ret);
}

/* ---- root's outgoing queue ---------------------------------------------------------------- */

/* One non-blocking send of a whole frame: 0 sent, -EAGAIN when the socket is full, -errno. */
static int send_frame(int fd, const char *text, size_t len) {
        for (;;) {
                ssize_t n = send(fd, text, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n >= 0)
                        return (size_t) n == len ? 0 : -EIO;
                if (errno == EINTR)
                        continue;
                return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
}

int link_queue_send(LinkQueue *q, int fd, json_t *msg) {
        size_t max_frames = q->max_frames ? q->max_frames : LINK_QUEUE_MAX_FRAMES;
        size_t max_bytes = q->max_bytes ? q->max_bytes : LINK_QUEUE_MAX_BYTES;
        _cleanup_free_ char *text = json_dumps(msg, JSON_COMPACT);
        size_t len;
        int r;

        if (!text)
                return -ENOMEM;
        len = strlen(text);
        if (len > LINK_MAX_FRAME)
                return -EMSGSIZE;
        if (q->n == 0) {
                r = send_frame(fd, text, len);
                if (r != -EAGAIN)
                        return r;
        }
        if (q->n + 1 > max_frames || q->bytes + len > max_bytes)
                return -ENOBUFS;
        if (q->n == q->cap) {
                size_t cap = q->cap ? q->cap * 2 : 8;
                char **frames = calloc(cap, sizeof(char *));
                size_t *lens = calloc(cap, sizeof(size_t));

                if (!frames || !lens) {
                        free(frames);
                        free(lens);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < q->n; i++) {
                        frames[i] = q->frames[(q->head + i) % q->cap];
                        lens[i] = q->lens[(q->head + i) % q->cap];
                }
                free(q->frames);
                free(q->lens);
                q->frames = frames;
                q->lens = lens;
                q->cap = cap;
                q->head = 0;
        }
        q->frames[(q->head + q->n) % q->cap] = TAKE_PTR(text);
        q->lens[(q->head + q->n) % q->cap] = len;
        q->n++;
        q->bytes += len;
        return 1;
}

int link_queue_flush(LinkQueue *q, int fd) {
        while (q->n > 0) {
                int r = send_frame(fd, q->frames[q->head], q->lens[q->head]);

                if (r == -EAGAIN)
                        return 1;
                if (r < 0)
                        return r;
                q->bytes -= q->lens[q->head];
                q->frames[q->head] = mfree(q->frames[q->head]);
                q->head = (q->head + 1) % q->cap;
                q->n--;
        }
        return 0;
}

void link_queue_done(LinkQueue *q) {
        for (size_t i = 0; i < q->n; i++)
                free(q->frames[(q->head + i) % q->cap]);
        free(q->frames);
        free(q->lens);
        *q = (LinkQueue) { .max_frames = q->max_frames, .max_bytes = q->max_bytes };
}

bool link_rate_exceeded(LinkRate *r, uint64_t now_usec, unsigned max) {
        if (r->window_start == 0 || now_usec < r->window_start ||
            now_usec - r->window_start >= 1000000u) {
                r->window_start = now_usec ? now_usec : 1;
                r->count = 0;
        }
        return ++r->count > max;
}
