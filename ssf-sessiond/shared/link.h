/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The channel between the privileged daemon and its unprivileged network worker
 * (privilege separation, as OpenSSH does it): an AF_UNIX SOCK_SEQPACKET socketpair carrying
 * one JSON object per datagram, at most LINK_MAX_FRAME bytes, parsed strictly on both sides.
 *
 *   worker → daemon   {"type":"ingest","id":N,"request":{…}}   → {"type":"reply","id":N,…}
 *                     {"type":"ingest-batch","id":N,"records":K} NUL records…
 *                                                   → {"type":"reply","id":N,"status":0,
 *                                                      "results":[{"status":S,…},…]}
 *                     {"type":"kv-get","id":N,"key":K}          → {"type":"reply","id":N,"value":V}
 *                     {"type":"kv-set","id":N,"key":K,"value":V}→ {"type":"reply","id":N}
 *                     {"type":"facts", "stream":{…}, "counters":{name: increment}}
 *                     {"type":"verify-result","state":S,"result":R}
 *                     {"type":"admin-result","id":N,"status":S,"message":M,"stream_status"?:T}
 *                     {"type":"local-subjects","id":N}   → {"type":"reply","id":N,"subjects":[…],
 *                                                          "removed"?:[…]}
 *   daemon → worker   {"type":"verify","state":S}  ·  {"type":"stop"}
 *                     {"type":"admin","id":N,"op":"status","status":T,"reason"?:R}
 *                     {"type":"admin","id":N,"op":"delete"|"create"}
 *                     {"type":"admin","id":N,"op":"add-subject"|"remove-subject",
 *                      "subjects":[{…}, …],"verified"?:B}
 *                     (an optional "transmitter":NAME is reserved for several transmitters)
 *
 * A reply carries "status": 0 or a negative errno, and for ingest "err"/"description" when
 * the SET is to be reported in setErrs. An ingest-batch (1 to LINK_BATCH_MAX records, committed
 * in one transaction) is answered with one result per record, in order, each as an ingest
 * reply would have it; its "status" is not 0 only when none was applied. The worker may send
 * up to LINK_BATCH_AHEAD ingest-batches before the first one's reply (it verifies the next SETs
 * while root commits), and other requests while they are outstanding; root answers each in
 * the order read, and commits consecutive ingest-batches it has read together in one
 * transaction (each still gets its own reply).
 *
 * An ingest-batch frame carries its K records (1 to LINK_BATCH_MAX) in its attachment: after
 * the object, one NUL byte, then the records back to back in their binary form
 * (ingest_record_put() in ingest.h), which must use the attachment up exactly. Root reads them
 * with no JSON parser, the event and subject included (parsing whole records as JSON took it
 * ~7 µs a SET, a fifth of its work in a catch-up), and the SETs' claims, most of a record's
 * bytes, are carried as they are, neither escaped by the worker nor unescaped by root.
 *
 * The framing is here, in code both processes link; the worker's end of the channel is
 * receiver/link-client.c, root's the worker supervision in daemon/broker.c.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define LINK_MAX_FRAME (256u * 1024u)
#define LINK_BATCH_MAX 256u
/* ingest-batch frames the worker may have with root before it waits for the oldest answer:
 * root commits the ones it finds waiting together, so a backlog pays one synced commit for
 * several frames. Bounds what the worker can make root hold (with LINK_MAX_FRAME). */
#define LINK_BATCH_AHEAD 3u
#define LINK_FD 3 /* the worker's end, as passed by the daemon */

/* Framing (both sides). send: 0 or -errno. recv: 0 with a new object, -EAGAIN when nothing is
 * there (non-blocking fds), -ECONNRESET at EOF, -EBADMSG/-EMSGSIZE for a bad datagram. */
int link_send(int fd, json_t *msg);
/* The same with a frame already serialised (len bytes of one JSON object, as the sender made
 * it): the receiver parses it as strictly as any other. */
int link_send_text(int fd, const char *text, size_t len);
int link_recv(int fd, json_t **ret);
/* link_recv() into buf, at least LINK_MAX_FRAME + 1 bytes (root reuses one buffer). */
int link_recv_buf(int fd, char *buf, json_t **ret);
/* What link_recv() does with the datagram's len bytes (no I/O): -EMSGSIZE above
 * LINK_MAX_FRAME; -EBADMSG unless a JSON object (duplicate names refused) with a string
 * "type"; else 0 and a new reference in *ret. The attachment of an ingest-batch frame (the
 * bytes after a NUL) is the object's LINK_ATTACHMENT member, a string of those bytes as they
 * are (json_string_length(); it may hold a NUL); a frame of another type with a NUL, or whose
 * object names LINK_ATTACHMENT itself, is -EBADMSG. */
#define LINK_ATTACHMENT "attachment"
int link_parse(const char *buf, size_t len, json_t **ret);

/*
 * Root's end never blocks on the worker: what it sends goes out at once when the socket takes
 * it, else waits in a bounded queue flushed when the socket is writable again (EPOLLOUT). A
 * worker that does not read makes the queue overflow; root kills it then (daemon/broker.c).
 */
#define LINK_QUEUE_MAX_FRAMES 64u
#define LINK_QUEUE_MAX_BYTES (512u * 1024u)

typedef struct LinkQueue {
        char **frames;   /* a ring of frames[cap], head first */
        size_t *lens;
        size_t cap, head, n;
        size_t bytes;    /* queued bytes */
        size_t max_frames, max_bytes; /* 0: the LINK_QUEUE_MAX_* defaults */
} LinkQueue;

/* Sends msg on the non-blocking fd, or queues it behind what is queued. Returns 0 when sent,
 * 1 when queued (flush once fd is writable), -ENOBUFS when the queue would pass its bounds
 * (nothing is queued), -EMSGSIZE above LINK_MAX_FRAME, -ENOMEM, or the socket's -errno. */
int link_queue_send(LinkQueue *q, int fd, json_t *msg);
/* Sends what the socket takes. Returns 0 when the queue is empty, 1 when frames remain, or the
 * socket's -errno. */
int link_queue_flush(LinkQueue *q, int fd);
static inline size_t link_queue_length(const LinkQueue *q) {
        return q->n;
}
void link_queue_done(LinkQueue *q);

/* Counts messages in one-second windows. Returns true when this message is more than max in the
 * window that now_usec (CLOCK_MONOTONIC) falls in. */
typedef struct LinkRate {
        uint64_t window_start;
        unsigned count;
} LinkRate;
bool link_rate_exceeded(LinkRate *r, uint64_t now_usec, unsigned max);
