/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * RFC 8935 push delivery, in the unprivileged network worker: a small HTTPS server (OpenSSL,
 * TLS >= 1.2) on push_listen that accepts one SET per POST to the path of push_url, checks the
 * bearer secret registered as the stream's authorization_header (constant time), verifies the
 * SET as the poller does (receive.c) and answers 202 (committed or duplicate), 400 with
 * {"err","description"} (the SET is invalid), or 503 (not committed: deliver it again).
 *
 * HTTP is parsed strictly and boundedly, by the pure functions below (fuzzed):
 *   - request line "METHOD SP origin-form SP HTTP/1.1 CRLF": method of A-Z (at most 15),
 *     target of visible ASCII starting with '/' (at most PUSH_MAX_TARGET), version exactly
 *     HTTP/1.1 (505 otherwise);
 *   - lines end in CRLF; a bare LF or CR anywhere in the head is 400 (RFC 9112 §2.2 lets a
 *     server accept bare LF; we do not, to leave no room for framing disagreements);
 *   - header fields "name: value": name of token characters directly followed by ':', value
 *     of visible ASCII, SP, HTAB and obs-text, surrounding whitespace trimmed; obs-fold
 *     (continuation lines) is 400;
 *   - the head (request line, fields and the empty line) at most PUSH_MAX_HEAD bytes and at
 *     most PUSH_MAX_HEADERS fields, else 431;
 *   - exactly one Host (400 otherwise); at most one Content-Length, Authorization and
 *     Content-Type (a repeated one is 400, even with the same value); Content-Length only
 *     digits (400), required (411) and at most PUSH_MAX_BODY (413); any Transfer-Encoding is
 *     400 (no chunked bodies);
 *   - Expect is ignored: the body is read without "100 Continue"; a Connection field listing
 *     "close" ends the connection after the response (see below for keep-alive).
 * Then only POST (405 with Allow: POST) to exactly the path (and query) of a push transmitter's
 * push_url (404): one listener serves every push transmitter, routing by that path.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "http.h"
#include "link-client.h"
#include "oauth2.h"
#include "set.h"

#define PUSH_MAX_HEAD (8u * 1024u)
#define PUSH_MAX_HEADERS 64u
#define PUSH_MAX_BODY (64u * 1024u)
#define PUSH_MAX_TARGET 2048u
#define PUSH_SECRET_BYTES 32u

/* Connections. HTTP/1.1 keep-alive: a connection serves up to PUSH_MAX_REQUESTS_PER_CONN
 * requests (the last answer says "Connection: close"), and is closed when idle for
 * PUSH_IDLE_TIMEOUT_USEC between them; answers that end a malformed or refused request close
 * it, so do requests with "Connection: close". At most PUSH_MAX_CONNECTIONS at a time, of which
 * at most PUSH_MAX_PER_PEER from one peer (an IPv4 address, or an IPv6 /64: one host may hold a
 * whole /64); one more from that peer is closed at once, before the TLS handshake. The
 * listener keeps accepting when all slots are taken: a new connection then evicts one that is
 * done (lingering), or else the one that has waited longest, at least PUSH_EVICT_AFTER_USEC,
 * without completing a request (idle between requests, or slow in its handshake or request);
 * when there is none, the new connection is closed. A connection that has not completed its
 * handshake and request within PUSH_IO_TIMEOUT_USEC (or has not taken its response within as
 * long again) is dropped. */
#define PUSH_MAX_CONNECTIONS 32u
#define PUSH_MAX_PER_PEER 8u
#define PUSH_IO_TIMEOUT_USEC (10u * 1000000u)
#define PUSH_IDLE_TIMEOUT_USEC (15u * 1000000u)
#define PUSH_MAX_REQUESTS_PER_CONN 1000u
#define PUSH_EVICT_AFTER_USEC (1u * 1000000u)

/* Serving is independent of the rest of the worker: one thread accepts, reads and parses
 * requests, another per transmitter verifies its SETs and hands them to the daemon, while a
 * main thread per transmitter makes its stream management calls. A SET waits at most PUSH_HANDOVER_USEC for its
 * verification and commit, and at most PUSH_QUEUE_MAX SETs wait: past either, it is answered
 * 503 with a Retry-After (the transmitter delivers it again; a SET committed after such an
 * answer is acknowledged as a duplicate then). A SET that cannot be checked yet (receive.h)
 * gets 503 with a Retry-After of when it can be. */
#define PUSH_HANDOVER_USEC (5u * 1000000u)
#define PUSH_QUEUE_MAX 64u
#define PUSH_RETRY_AFTER_SEC 5u

/* Whether c may be evicted at now (pure; the rules above). */
typedef enum PushConnPhase {
        PUSH_PHASE_WAITING, /* handshake, reading a request, or idle between requests */
        PUSH_PHASE_BUSY,    /* its SET is being verified, or its answer written */
        PUSH_PHASE_DONE,    /* answered, lingering until the close */
} PushConnPhase;
/* The connection to evict, among n (phase and since: when it began waiting for its current
 * request, CLOCK_MONOTONIC), or -1 when none may be. */
int push_pick_victim(const PushConnPhase *phase, const uint64_t *since, unsigned n, uint64_t now);

/* Log lines about refused requests (401, other 4xx answers, failed TLS handshakes, timeouts,
 * connections over PUSH_MAX_PER_PEER) are limited per kind, as anyone who can connect can
 * cause them: at most PUSH_LOG_BURST in PUSH_LOG_INTERVAL_USEC (counted from the first), then
 * one line saying how many more were suppressed once the interval is over. */
#define PUSH_LOG_BURST 10u
#define PUSH_LOG_INTERVAL_USEC (10u * 1000000u)

/* A parsed request head. Pointers point into the parsed buffer (not NUL-terminated: use the
 * lengths); NULL when the field is absent. */
typedef struct PushRequest {
        char method[16];
        const char *target;
        size_t target_len;
        size_t head_len;            /* bytes up to and including the empty line */
        bool has_content_length;
        uint64_t content_length;
        bool has_transfer_encoding;
        const char *authorization;
        size_t authorization_len;
        const char *content_type;
        size_t content_type_len;
        bool connection_close;      /* a Connection field lists "close" */
        unsigned n_headers;
} PushRequest;

/* A peer as the connection limit counts it: an IPv4 address (an IPv4-mapped IPv6 address
 * counts as the IPv4 address), or the first 64 bits of an IPv6 address. */
typedef struct PushPeer {
        int family; /* AF_INET, AF_INET6, or AF_UNSPEC for anything else */
        uint8_t addr[8];
} PushPeer;

/* The peer of a socket address (len bytes). Other families, or a short address, give the
 * one AF_UNSPEC peer. */
void push_peer_from_sockaddr(const struct sockaddr *sa, socklen_t len, PushPeer *ret);
bool push_peer_equal(const PushPeer *a, const PushPeer *b);

/* The state of the log limit of one kind of line. Zero-initialized means no line yet. */
typedef struct PushLogLimit {
        uint64_t begin;      /* when the current interval began (monotonic usec) */
        unsigned logged;     /* lines logged in it; 0: no interval running */
        unsigned suppressed; /* lines refused in it */
} PushLogLimit;

/* Whether one more line may be logged at now (an interval begins with the first line);
 * counts the line either way. When an interval is over, first sets *ret_suppressed to the
 * number of lines suppressed in it (to be reported before this line) and starts afresh;
 * otherwise *ret_suppressed is 0. */
bool push_log_limit_allow(PushLogLimit *l, uint64_t now, unsigned *ret_suppressed);
/* When the interval is over: returns how many lines were suppressed in it and starts afresh;
 * otherwise returns 0 and changes nothing. For a timer, so the count is not held back until
 * the next line. */
unsigned push_log_limit_flush(PushLogLimit *l, uint64_t now);

/* Parses the request head at the start of buf (len bytes; what follows the head is the body
 * and is not looked at). Returns 0 with *ret filled, -EAGAIN when the head is not complete yet
 * (fewer than PUSH_MAX_HEAD bytes and no empty line), or -EBADMSG with *ret_status the HTTP
 * status to answer (400, 431, 505). *ret is written only on success. */
int push_parse_head(const char *buf, size_t len, PushRequest *ret, unsigned *ret_status);

/* What a complete head gets before its body is read: 0 (go on), 404 (target is not path),
 * 405 (not POST), 400 (Transfer-Encoding), 411 (no Content-Length), 413 (too large). path is
 * the origin-form of push_url (push_url_target()). */
unsigned push_check_head(const PushRequest *req, const char *path);

/* Whether the Authorization field equals expected ("Bearer <secret>"; the scheme name is
 * compared case-insensitively, the rest in constant time). */
bool push_authorized(const PushRequest *req, const char *expected);

/* The origin-form request target of an https URL: path (default "/") and query, without the
 * fragment. Returns 0 or -EINVAL / -ENOMEM. */
int push_url_target(const char *url, char **ret);

/* A complete response: status line, Content-Type (application/json when body is not NULL),
 * Content-Length, Cache-Control: no-store, Connection: close unless keep_alive, extra_headers
 * (whole lines with CRLF, or NULL), the empty line and body. Returns 0 with a new string in
 * *ret (length in *ret_len), or -ENOMEM / -EINVAL (unknown status, CR/LF misuse in
 * extra_headers). push_format_response() is the one with Connection: close. */
int push_format_response_full(unsigned status, const char *extra_headers, const char *body,
                              bool keep_alive, char **ret, size_t *ret_len);
int push_format_response(unsigned status, const char *extra_headers, const char *body,
                         char **ret, size_t *ret_len);
/* The RFC 8935 §2.3 error body {"err":…,"description":…}, new string or NULL. */
char *push_error_body(const SetError *err);

/* The one listener of every push transmitter (made as root: it reads the configuration's
 * push_cert and push_key and binds push_listen, so that ports below 1024 work and the files
 * may be root-only). */
typedef struct PushServer PushServer;
int push_server_new(const Config *c, PushServer **ret);
PushServer *push_server_free(PushServer *s);

/* One push transmitter this worker serves: its own channel to root (root knows the transmitter
 * by the channel), its HTTPS client (its ca_file, client certificate and proxy: discovery,
 * stream management and JWKS fetches go through it), authorization and oauth2 as for
 * poller_run(); push_authorization: with stream = none, the configured Authorization value its
 * pushes must carry (no stream, no secret of ours), else NULL (the stream's secret, kept by the
 * daemon as "push_secret"). */
typedef struct PushTransmitter {
        Link *link;
        HttpClient *http;
        const char *authorization;
        OAuth2Client *oauth2;
        const char *push_authorization;
} PushTransmitter;

/* Serves the n push transmitters on the one listener until the links say stop (a stop of one
 * stops all: they share this process). A POST is routed by its path to the transmitter whose
 * push_url has it (another path: 404), must carry that transmitter's authorization (401), and
 * its SET is verified against that transmitter's issuer, audience and keys only (another's iss:
 * 400 invalid_issuer), then committed on that transmitter's channel. Each transmitter has its
 * own main thread (stream setup: discovery, JWKS, the stream with push delivery; checks,
 * `ssfctl verify`, stream administration) and ingest thread: one transmitter's slowness never
 * delays another's SETs. Until a transmitter is first set up, its pushes wait for it (at most
 * PUSH_HANDOVER_USEC, then 503 with Retry-After).
 * Takes server and each http (freed on return). */
int push_run(PushServer *server, const PushTransmitter *txs, size_t n);
