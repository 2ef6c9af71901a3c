/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The channel between the privileged daemon and its unprivileged network worker
 * (privilege separation, as OpenSSH does it): an AF_UNIX SOCK_SEQPACKET socketpair carrying
 * one JSON object per datagram, at most LINK_MAX_FRAME bytes, parsed strictly on both sides.
 *
 *   worker → daemon   {"type":"ingest","id":N,"request":{…}}   → {"type":"reply","id":N,…}
 *                     {"type":"kv-get","id":N,"key":K}          → {"type":"reply","id":N,"value":V}
 *                     {"type":"kv-set","id":N,"key":K,"value":V}→ {"type":"reply","id":N}
 *                     {"type":"facts", "stream":{…}, "counters":{name: increment}}
 *                     {"type":"verify-result","state":S,"result":R}
 *   daemon → worker   {"type":"verify","state":S}  ·  {"type":"stop"}
 *
 * A reply carries "status": 0 or a negative errno, and for ingest "err"/"description" when
 * the SET is to be reported in setErrs.
 *
 * The framing is here, in code both processes link; the worker's end of the channel is
 * receiver/link-client.c, root's the worker supervision in daemon/broker.c.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define LINK_MAX_FRAME (256u * 1024u)
#define LINK_FD 3 /* the worker's end, as passed by the daemon */

/* Framing (both sides). send: 0 or -errno. recv: 0 with a new object, -EAGAIN when nothing is
 * there (non-blocking fds), -ECONNRESET at EOF, -EBADMSG/-EMSGSIZE for a bad datagram. */
int link_send(int fd, json_t *msg);
int link_recv(int fd, json_t **ret);
/* What link_recv() does with the datagram's len bytes (no I/O): -EMSGSIZE above
 * LINK_MAX_FRAME; -EBADMSG unless a JSON object (duplicate names refused) with a string
 * "type"; else 0 and a new reference in *ret. */
int link_parse(const char *buf, size_t len, json_t **ret);
