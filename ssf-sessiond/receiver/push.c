/* SPDX-License-Identifier: MIT */
/*
 * RFC 8935 push delivery (push.h): the HTTPS listener that takes one SET per POST. Parses
 * network bytes. Runs in the network worker.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "jws.h"
#include "log.h"
#include "macro.h"
#include "push.h"
#include "receive.h"
#include "retry-after.h"
#include "ssf-ipc.h"
#include "stream.h"

#define PUSH_LINGER_USEC (2u * 1000000u)       /* reading what the client still sends */
#define PUSH_LINGER_MAX (256u * 1024u)
#define PUSH_BIND_RETRIES 50u
#define PUSH_BIND_RETRY_USEC 100000u                /* 5 s in all */
#define PUSH_TICK_MSEC 250                     /* how soon a stop or verify request is seen */
#define PUSH_ACCEPT_BURST 64u                  /* accept() calls per round, refused ones too */

/* ---- the pure part: HTTP/1.1 request heads and responses ---------------------------------- */

static bool is_tchar(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c != 0 && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_ws(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool name_is(const char *name, size_t len, const char *want) {
        return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

static int bad(unsigned *ret_status, unsigned status) {
        *ret_status = status;
        return -EBADMSG;
}

int push_parse_head(const char *buf, size_t len, PushRequest *ret, unsigned *ret_status) {
        PushRequest req = {};
        size_t scan = MIN(len, (size_t) PUSH_MAX_HEAD), end = 0, i, p, sp;
        unsigned n_host = 0;

        /* Find the empty line; refuse bare CR, bare LF and NUL as soon as they are seen. */
        for (i = 0; i < scan; i++) {
                unsigned char ch = (unsigned char) buf[i];

                if (ch == 0)
                        return bad(ret_status, 400);
                if (ch == '\n' && (i == 0 || buf[i - 1] != '\r'))
                        return bad(ret_status, 400);
                if (ch == '\r' && i + 1 < scan && buf[i + 1] != '\n')
                        return bad(ret_status, 400);
                if (ch == '\n' && i >= 3 && buf[i - 2] == '\n') {
                        end = i + 1;
                        break;
                }
        }
        if (end == 0)
                return len >= PUSH_MAX_HEAD ? bad(ret_status, 431) : -EAGAIN;

        /* Request line: method SP target SP version CRLF */
        for (p = 0; p < end && buf[p] >= 'A' && buf[p] <= 'Z'; p++)
                ;
        if (p == 0 || buf[p] != ' ')
                return bad(ret_status, 400);
        if (p >= sizeof(req.method))
                return bad(ret_status, 400);
        memcpy(req.method, buf, p);
        req.method[p] = 0;
        sp = ++p;
        for (; p < end && buf[p] != ' ' && buf[p] != '\r'; p++)
                if ((unsigned char) buf[p] < 0x21 || (unsigned char) buf[p] > 0x7e)
                        return bad(ret_status, 400);
        if (p == sp || buf[p] != ' ' || buf[sp] != '/')
                return bad(ret_status, 400);
        if (p - sp > PUSH_MAX_TARGET)
                return bad(ret_status, 414);
        req.target = buf + sp;
        req.target_len = p - sp;
        p++;
        if (end - p < 10 || memcmp(buf + p, "HTTP/", 5) != 0)
                return bad(ret_status, 400);
        if (memcmp(buf + p, "HTTP/1.1\r\n", 10) != 0) {
                /* HTTP/x.y with other digits: a version we do not speak. */
                if (end - p >= 10 && buf[p + 5] >= '0' && buf[p + 5] <= '9' && buf[p + 6] == '.' &&
                    buf[p + 7] >= '0' && buf[p + 7] <= '9' && buf[p + 8] == '\r')
                        return bad(ret_status, 505);
                return bad(ret_status, 400);
        }
        p += 10;

        /* Header fields until the empty line. */
        while (p < end - 2) {
                size_t name = p, name_len, value, value_end, eol;

                if (buf[p] == ' ' || buf[p] == '\t')
                        return bad(ret_status, 400); /* obs-fold */
                for (; p < end && is_tchar((unsigned char) buf[p]); p++)
                        ;
                name_len = p - name;
                if (name_len == 0 || buf[p] != ':')
                        return bad(ret_status, 400);
                p++;
                for (eol = p; buf[eol] != '\r'; eol++) {
                        unsigned char ch = (unsigned char) buf[eol];
                        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                                return bad(ret_status, 400);
                }
                value = p;
                while (value < eol && (buf[value] == ' ' || buf[value] == '\t'))
                        value++;
                value_end = eol;
                while (value_end > value && (buf[value_end - 1] == ' ' || buf[value_end - 1] == '\t'))
                        value_end--;
                p = eol + 2;
                if (++req.n_headers > PUSH_MAX_HEADERS)
                        return bad(ret_status, 431);

                if (name_is(buf + name, name_len, "host"))
                        n_host++;
                else if (name_is(buf + name, name_len, "content-length")) {
                        uint64_t v = 0;

                        if (req.has_content_length || value == value_end)
                                return bad(ret_status, 400);
                        for (size_t k = value; k < value_end; k++) {
                                if (buf[k] < '0' || buf[k] > '9')
                                        return bad(ret_status, 400);
                                if (v <= UINT64_MAX / 100)
                                        v = v * 10 + (uint64_t) (buf[k] - '0');
                                /* else: already far beyond any limit; keep it saturated */
                        }
                        req.has_content_length = true;
                        req.content_length = v;
                } else if (name_is(buf + name, name_len, "transfer-encoding"))
                        req.has_transfer_encoding = true;
                else if (name_is(buf + name, name_len, "authorization")) {
                        if (req.authorization)
                                return bad(ret_status, 400);
                        req.authorization = buf + value;
                        req.authorization_len = value_end - value;
                } else if (name_is(buf + name, name_len, "content-type")) {
                        if (req.content_type)
                                return bad(ret_status, 400);
                        req.content_type = buf + value;
                        req.content_type_len = value_end - value;
                } else if (name_is(buf + name, name_len, "connection")) {
                        /* A comma-separated list of options (RFC 9110 §7.6.1): "close" ends
                         * the connection after this request. */
                        for (size_t k = value; k < value_end;) {
                                size_t e = k, t = k, te;

                                while (e < value_end && buf[e] != ',')
                                        e++;
                                while (t < e && (buf[t] == ' ' || buf[t] == '\t'))
                                        t++;
                                te = e;
                                while (te > t && (buf[te - 1] == ' ' || buf[te - 1] == '\t'))
                                        te--;
                                if (name_is(buf + t, te - t, "close"))
                                        req.connection_close = true;
                                k = e + 1;
                        }
                }
        }
        if (n_host != 1)
                return bad(ret_status, 400);
        req.head_len = end;
        *ret = req;
        return 0;
}

unsigned push_check_head(const PushRequest *req, const char *path) {
        if (req->target_len != strlen(path) || memcmp(req->target, path, req->target_len) != 0)
                return 404;
        if (!streq(req->method, "POST"))
                return 405;
        if (req->has_transfer_encoding)
                return 400;
        if (!req->has_content_length)
                return 411;
        if (req->content_length > PUSH_MAX_BODY)
                return 413;
        return 0;
}

bool push_authorized(const PushRequest *req, const char *expected) {
        const char *sp = expected ? strchr(expected, ' ') : NULL;
        const char *a = req->authorization, *cred;
        size_t scheme_len, n, cred_len;

        if (expected && !sp && a) {
                /* A value without a scheme (stream = none): the exact bytes. */
                n = strlen(expected);
                if (req->authorization_len != n) {
                        (void) CRYPTO_memcmp(expected, expected, n);
                        return false;
                }
                return CRYPTO_memcmp(a, expected, n) == 0;
        }
        if (!sp || !a)
                return false;
        scheme_len = (size_t) (sp - expected);
        n = req->authorization_len;
        if (n <= scheme_len || strncasecmp(a, expected, scheme_len) != 0 || a[scheme_len] != ' ')
                return false;
        cred = a + scheme_len;
        cred_len = n - scheme_len;
        while (cred_len > 0 && *cred == ' ') {
                cred++;
                cred_len--;
        }
        sp++;
        if (cred_len != strlen(sp)) {
                (void) CRYPTO_memcmp(sp, sp, strlen(sp)); /* same work either way */
                return false;
        }
        return CRYPTO_memcmp(cred, sp, cred_len) == 0;
}

int push_url_target(const char *url, char **ret) {
        const char *rest = url ? startswith(url, "https://") : NULL;
        size_t n;
        char *t;

        if (!rest || !*rest)
                return -EINVAL;
        rest += strcspn(rest, "/?#");
        n = strcspn(rest, "#");
        if (n > PUSH_MAX_TARGET)
                return -EINVAL;
        if (asprintf(&t, "%s%.*s", *rest == '/' ? "" : "/", (int) n, rest) < 0)
                return -ENOMEM;
        *ret = t;
        return 0;
}

static const char *reason_phrase(unsigned status) {
        switch (status) {
        case 202: return "Accepted";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return NULL;
        }
}

int push_format_response(unsigned status, const char *extra_headers, const char *body,
                         char **ret, size_t *ret_len) {
        return push_format_response_full(status, extra_headers, body, false, ret, ret_len);
}

int push_format_response_full(unsigned status, const char *extra_headers, const char *body,
                              bool keep_alive, char **ret, size_t *ret_len) {
        const char *reason = reason_phrase(status);
        size_t n = extra_headers ? strlen(extra_headers) : 0;
        char *s;
        int l;

        if (!reason)
                return -EINVAL;
        /* extra_headers: whole lines, each ending in CRLF, no empty line, no stray CR/LF. */
        if (n > 0 && (n < 2 || !streq(extra_headers + n - 2, "\r\n")))
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (extra_headers[i] == '\r' &&
                    (extra_headers[i + 1] != '\n' || i == 0 || extra_headers[i - 1] == '\n'))
                        return -EINVAL;
                if (extra_headers[i] == '\n' && (i == 0 || extra_headers[i - 1] != '\r'))
                        return -EINVAL;
        }
        l = asprintf(&s,
                     "HTTP/1.1 %u %s\r\n"
                     "%s"
                     "Content-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n"
                     "%s"
                     "%s"
                     "\r\n"
                     "%s",
                     status, reason, body ? "Content-Type: application/json\r\n" : "",
                     body ? strlen(body) : 0,
                     keep_alive ? "" : "Connection: close\r\n", /* HTTP/1.1 keeps it otherwise */
                     strempty(extra_headers), strempty(body));
        if (l < 0)
                return -ENOMEM;
        *ret = s;
        *ret_len = (size_t) l;
        return 0;
}

char *push_error_body(const SetError *err) {
        json_t *j = json_pack("{s:s, s:s}", "err", err->err ? err->err : "invalid_request",
                              "description", err->description);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

        json_decref(j);
        return s;
}

/* ---- the pure part: peers and log limits ------------------------------------------------- */

void push_peer_from_sockaddr(const struct sockaddr *sa, socklen_t len, PushPeer *ret) {
        static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        PushPeer peer = { .family = AF_UNSPEC };

        if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;

                peer.family = AF_INET;
                memcpy(peer.addr, &in->sin_addr, 4);
        } else if (sa && sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
                const uint8_t *a = ((const struct sockaddr_in6 *) sa)->sin6_addr.s6_addr;

                if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0) {
                        peer.family = AF_INET;
                        memcpy(peer.addr, a + 12, 4);
                } else {
                        peer.family = AF_INET6;
                        memcpy(peer.addr, a, 8); /* the /64 */
                }
        }
        *ret = peer;
}

bool push_peer_equal(const PushPeer *a, const PushPeer *b) {
        return a->family == b->family && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

unsigned push_log_limit_flush(PushLogLimit *l, uint64_t now) {
        unsigned n;

        if (l->logged == 0 || now - l->begin < PUSH_LOG_INTERVAL_USEC)
                return 0;
        n = l->suppressed;
        *l = (PushLogLimit) {};
        return n;
}

bool push_log_limit_allow(PushLogLimit *l, uint64_t now, unsigned *ret_suppressed) {
        *ret_suppressed = push_log_limit_flush(l, now);
        if (l->logged == 0)
                l->begin = now;
        if (l->logged < PUSH_LOG_BURST) {
                l->logged++;
                return true;
        }
        if (l->suppressed < UINT_MAX)
                l->suppressed++;
        return false;
}

/* ---- the listener ------------------------------------------------------------------------- */

struct PushServer {
        int fd;
        SSL_CTX *ctx;
};

static int log_ssl_error(const char *what) {
        char buf[256] = "unknown error";
        unsigned long e = ERR_get_error();

        if (e)
                ERR_error_string_n(e, buf, sizeof(buf));
        ERR_clear_error();
        log_error("%s: %s", what, buf);
        return -EPROTO;
}

PushServer *push_server_free(PushServer *s) {
        if (!s)
                return NULL;
        safe_close(s->fd);
        SSL_CTX_free(s->ctx);
        free(s);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(PushServer *, push_server_free);

static int push_listen_socket(const char *listen_on, int *ret) {
        _cleanup_free_ char *host = NULL;
        struct addrinfo hints = {
                .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                .ai_socktype = SOCK_STREAM,
        }, *ai = NULL;
        const char *port;
        int fd, r, one = 1;

        if (listen_on[0] == '[') {
                const char *close = strchr(listen_on, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                host = strndup(listen_on + 1, (size_t) (close - listen_on - 1));
                port = close + 2;
                hints.ai_family = AF_INET6;
        } else {
                const char *colon = strrchr(listen_on, ':');
                if (!colon)
                        return -EINVAL;
                host = strndup(listen_on, (size_t) (colon - listen_on));
                port = colon + 1;
        }
        if (!host)
                return -ENOMEM;
        r = getaddrinfo(host, port, &hints, &ai);
        if (r != 0 || !ai) {
                log_error("Cannot resolve push_listen '%s': %s", listen_on, gai_strerror(r));
                return -EADDRNOTAVAIL;
        }
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                r = -errno;
                freeaddrinfo(ai);
                return r;
        }
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6)
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        /* After SIGHUP the old worker may still hold the port for a moment while it stops. */
        for (unsigned i = 0;; i++) {
                r = bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ? -errno : 0;
                if (r != -EADDRINUSE || i >= PUSH_BIND_RETRIES)
                        break;
                (void) usleep(PUSH_BIND_RETRY_USEC);
        }
        if (r >= 0 && listen(fd, 64) < 0)
                r = -errno;
        if (r < 0) {
                freeaddrinfo(ai);
                safe_close(fd);
                return log_error_errno(r, "Cannot listen on push_listen '%s': %m", listen_on);
        }
        freeaddrinfo(ai);
        *ret = fd;
        return 0;
}

int push_server_new(const Config *c, PushServer **ret) {
        _cleanup_(push_server_freep) PushServer *s = NULL;
        int r;

        if (!c->push_listen || !c->push_cert || !c->push_key)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->fd = -EBADF;

        ERR_clear_error();
        s->ctx = SSL_CTX_new(TLS_server_method());
        if (!s->ctx)
                return log_ssl_error("Cannot create the TLS server context");
        if (SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION) != 1 ||
            SSL_CTX_set_cipher_list(s->ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL") != 1)
                return log_ssl_error("Cannot configure TLS");
        SSL_CTX_set_options(s->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                    SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
        SSL_CTX_set_session_cache_mode(s->ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_mode(s->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
        /* Read now, as root: the files may be readable by root only. */
        if (SSL_CTX_use_certificate_chain_file(s->ctx, c->push_cert) != 1) {
                log_ssl_error("Cannot load push_cert");
                return log_error_errno(EINVAL, "push_cert '%s' is not a usable PEM certificate "
                                       "chain", c->push_cert);
        }
        if (SSL_CTX_use_PrivateKey_file(s->ctx, c->push_key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(s->ctx) != 1) {
                log_ssl_error("Cannot load push_key");
                return log_error_errno(EINVAL, "push_key '%s' is not the PEM private key of "
                                       "push_cert", c->push_key);
        }
        r = push_listen_socket(c->push_listen, &s->fd);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

/* ---- connections -------------------------------------------------------------------------- */

int push_pick_victim(const PushConnPhase *phase, const uint64_t *since, unsigned n, uint64_t now) {
        int best = -1;

        for (unsigned i = 0; i < n; i++)
                if (phase[i] == PUSH_PHASE_DONE)
                        return (int) i;
        for (unsigned i = 0; i < n; i++) {
                if (phase[i] != PUSH_PHASE_WAITING || since[i] > now ||
                    now - since[i] < PUSH_EVICT_AFTER_USEC)
                        continue;
                if (best < 0 || since[i] < since[best])
                        best = (int) i;
        }
        return best;
}

typedef enum ConnState {
        CONN_HANDSHAKE,
        CONN_READ,
        CONN_VERIFY, /* its SET is with the ingest thread (Conn.job) */
        CONN_WRITE,
        CONN_LINGER,
        CONN_DONE,
} ConnState;

typedef struct PushJob PushJob;
typedef struct PushTx PushTx;

typedef struct Conn {
        int fd;
        SSL *ssl;
        ConnState state;
        short events;
        uint64_t deadline;
        uint64_t since;                   /* began waiting for its current request */
        unsigned n_requests;              /* answered on this connection */
        bool keep_alive;                  /* after the answer being written */
        PushPeer peer_key;                /* for PUSH_MAX_PER_PEER */
        char peer[INET6_ADDRSTRLEN + 8];  /* for log lines */
        char *buf;
        size_t len, alloc;
        bool have_head;
        PushRequest req;
        PushJob *job;
        char *out;
        size_t out_len, out_off, drained;
} Conn;

/* A SET handed from the listener thread to the ingest thread, and its outcome back. */
struct PushJob {
        PushJob *next;
        PushTx *tx;          /* whose SET it is */
        Conn *conn;          /* NULL: the listener stopped waiting for it (answered 503) */
        bool started;        /* the ingest thread took it */
        char *token;
        size_t len;
        uint64_t seen_usec;
        int r;
        SetError err;
        uint64_t retry_usec;
};

/* The kinds of log lines that clients can cause, each limited on its own (PUSH_LOG_BURST). */
typedef enum PushLogKind {
        PUSH_LOG_UNAUTHORIZED, /* 401 */
        PUSH_LOG_REFUSED,      /* every 4xx answer */
        PUSH_LOG_HANDSHAKE,    /* failed TLS handshakes */
        PUSH_LOG_TIMEOUT,      /* connections dropped when late */
        PUSH_LOG_PEER_LIMIT,   /* connections over PUSH_MAX_PER_PEER */
        PUSH_LOG_EVICTED,      /* connections closed or refused when all slots were taken */
        _PUSH_LOG_KIND_MAX,
} PushLogKind;

static const struct {
        int level;
        const char *what; /* "<n> more <what> suppressed" */
} push_log_kinds[_PUSH_LOG_KIND_MAX] = {
        [PUSH_LOG_UNAUTHORIZED] = { LOG_WARNING,
                                    "push requests without the stream's authorization" },
        [PUSH_LOG_REFUSED] = { LOG_DEBUG, "refused push requests" },
        [PUSH_LOG_HANDSHAKE] = { LOG_DEBUG, "failed TLS handshakes on the push listener" },
        [PUSH_LOG_TIMEOUT] = { LOG_DEBUG, "timed out push connections" },
        [PUSH_LOG_PEER_LIMIT] = { LOG_WARNING, "push connections over the per-peer limit" },
        [PUSH_LOG_EVICTED] = { LOG_INFO, "push connections evicted or refused when full" },
};

/* The listener, shared by every push transmitter of this worker: one thread accepts, reads and
 * parses requests, and hands each SET to the transmitter whose push_url path the request names
 * (PushTx). Nothing here waits for the network or for a transmitter. */
typedef struct Push {
        PushServer *server;
        PushTx **txs;             /* the routes: each transmitter's path */
        size_t n_txs;
        /* the listener thread's */
        Conn *conns[PUSH_MAX_CONNECTIONS];
        unsigned n_conns;
        PushLogLimit log_limits[_PUSH_LOG_KIND_MAX];
        /* shared, under lock */
        pthread_mutex_t lock;
        PushJob *done;            /* outcomes from the transmitters' ingest threads */
        bool quit;
        int wake_fd;              /* eventfd: an ingest thread finished a job */
        pthread_t listener;
        bool listener_started;
} Push;

/* One push transmitter: its stream (the main thread of its own, push_tx_main()), its
 * verification context (issuer, audience, JWKS fetched through its own HTTP settings) and its
 * ingest thread, so that one transmitter's slow JWKS endpoint or slow stream API never holds up
 * another's SETs. */
struct PushTx {
        Receiver rx;
        Push *listener;
        char *path;               /* origin-form of its push_url: its route */
        /* the ingest thread's */
        HttpClient *ingest_http;  /* JWKS refreshes */
        Transmitter vt;           /* what verifying needs (transmitter_take_verifier()) */
        json_t *counters;
        /* shared, under lock */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        char *push_authorization; /* what pushes must carry: never logged */
        bool serving;             /* set up once: its SETs are verified (until then they wait) */
        PushJob *todo, **todo_tail;
        unsigned n_todo;
        Transmitter next_vt;      /* a newer verifier from the main thread, when has_next_vt */
        bool has_next_vt;
        bool quit;
        pthread_t main, ingester;
        bool main_started, ingester_started;
};

static void push_log_suppressed(PushLogKind kind, unsigned n) {
        if (n > 0)
                log_full(push_log_kinds[kind].level, "%u more %s suppressed", n,
                         push_log_kinds[kind].what);
}

/* Whether to log one line of this kind now; first reports what an interval now over has
 * suppressed. */
static bool push_log_ok(Push *p, PushLogKind kind) {
        unsigned suppressed;
        bool ok = push_log_limit_allow(&p->log_limits[kind], ssf_now_usec(), &suppressed);

        push_log_suppressed(kind, suppressed);
        return ok;
}

/* Reports what the intervals now over have suppressed. */
static void push_log_flush(Push *p, uint64_t now) {
        for (unsigned k = 0; k < _PUSH_LOG_KIND_MAX; k++)
                push_log_suppressed((PushLogKind) k, push_log_limit_flush(&p->log_limits[k], now));
}

static void conn_free(Conn *c) {
        if (!c)
                return;
        SSL_free(c->ssl);
        safe_close(c->fd);
        free(c->buf);
        free(c->out);
        free(c);
}

static int conn_ssl_wait(Conn *c, int r) {
        int e = SSL_get_error(c->ssl, r);

        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ) {
                c->events = POLLIN;
                return 0;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
                c->events = POLLOUT;
                return 0;
        }
        return -ECONNRESET;
}

static void job_free(PushJob *j) {
        if (!j)
                return;
        free(j->token);
        free(j);
}

/* Queues the response; extra: header lines or NULL; body: JSON or NULL; keep_alive: the
 * connection may serve another request afterwards (when the client and our limits allow). */
static void conn_respond_full(Push *p, Conn *c, unsigned status, const char *extra,
                              const char *body, bool keep_alive) {
        int r;

        if (status < 400 || status >= 500 || push_log_ok(p, PUSH_LOG_REFUSED))
                log_debug("Push request from %s: HTTP %u", c->peer, status);
        c->n_requests++;
        c->keep_alive = keep_alive && c->have_head && !c->req.connection_close &&
                        c->n_requests < PUSH_MAX_REQUESTS_PER_CONN;
        c->out = mfree(c->out);
        r = push_format_response_full(status, extra, body, c->keep_alive, &c->out, &c->out_len);
        if (r < 0) {
                c->state = CONN_DONE;
                return;
        }
        c->out_off = 0;
        c->state = CONN_WRITE;
        c->events = POLLOUT;
        c->deadline = ssf_now_usec() + PUSH_IO_TIMEOUT_USEC;
}

/* Answers that end the connection: the request was refused or not understood. */
static void conn_respond(Push *p, Conn *c, unsigned status, const char *extra, const char *body) {
        conn_respond_full(p, c, status, extra, body, false);
}

static void conn_respond_invalid(Push *p, Conn *c, unsigned status, const char *description) {
        SetError e = { .err = "invalid_request" };
        _cleanup_free_ char *body = NULL;

        (void) snprintf(e.description, sizeof(e.description), "%s", description);
        body = push_error_body(&e);
        conn_respond(p, c, status, NULL, body);
}

static void conn_respond_retry(Push *p, Conn *c, uint64_t sec) {
        char extra[48];

        sec = MAX(MIN(sec, (uint64_t) RETRY_AFTER_MAX_SEC), (uint64_t) 1);
        (void) snprintf(extra, sizeof(extra), "Retry-After: %" PRIu64 "\r\n", sec);
        conn_respond_full(p, c, 503, extra, NULL, true);
}

/* The whole request is in: hand the SET to the ingest thread, or answer 503 at once when too
 * many are waiting. */
static void conn_handle(Push *p, Conn *c, PushTx *tx) {
        char *token = c->buf + c->req.head_len;
        size_t n = (size_t) c->req.content_length, ct_len = c->req.content_type_len;
        const char *semi;
        PushJob *j;
        bool full;

        /* Tolerate whitespace around the compact SET (a trailing newline, say). */
        while (n > 0 && is_ws(token[n - 1]))
                n--;
        while (n > 0 && is_ws(*token)) {
                token++;
                n--;
        }
        semi = c->req.content_type ? memchr(c->req.content_type, ';', ct_len) : NULL;
        if (semi)
                ct_len = (size_t) (semi - c->req.content_type);
        while (ct_len > 0 && is_ws(c->req.content_type[ct_len - 1]))
                ct_len--;
        if (!c->req.content_type ||
            !name_is(c->req.content_type, ct_len, "application/secevent+jwt"))
                log_debug("Push request from %s without Content-Type application/secevent+jwt, "
                          "accepting it anyway", c->peer);

        j = calloc(1, sizeof(*j));
        if (j)
                j->token = strndup(token, n);
        if (!j || !j->token) {
                job_free(j);
                conn_respond_retry(p, c, PUSH_RETRY_AFTER_SEC);
                return;
        }
        j->len = n;
        j->seen_usec = ssf_now_usec();
        j->conn = c;
        j->tx = tx;

        pthread_mutex_lock(&tx->lock);
        full = tx->n_todo >= PUSH_QUEUE_MAX;
        if (!full) {
                *tx->todo_tail = j;
                tx->todo_tail = &j->next;
                tx->n_todo++;
                pthread_cond_signal(&tx->cond);
        }
        pthread_mutex_unlock(&tx->lock);
        if (full) {
                job_free(j);
                log_debug("Push request from %s: %u SETs are waiting already, answering 503",
                          c->peer, PUSH_QUEUE_MAX);
                conn_respond_retry(p, c, PUSH_RETRY_AFTER_SEC);
                return;
        }
        c->job = j;
        c->state = CONN_VERIFY;
        c->events = 0;
        c->deadline = ssf_now_usec() + PUSH_HANDOVER_USEC;
}

/* The listener stops waiting for c's SET (a late hand-over, or c goes): the ingest thread
 * drops a job it has not started and forgets the connection of one it has. */
static void conn_abandon_job(Push *p, Conn *c) {
        PushJob *j = c->job;
        PushTx *tx;

        if (!j)
                return;
        c->job = NULL;
        tx = j->tx;
        pthread_mutex_lock(&tx->lock);
        if (!j->started) {
                for (PushJob **i = &tx->todo; *i; i = &(*i)->next)
                        if (*i == j) {
                                *i = j->next;
                                if (tx->todo_tail == &j->next)
                                        tx->todo_tail = i;
                                tx->n_todo--;
                                break;
                        }
                job_free(j);
        } else
                j->conn = NULL; /* freed by the ingest thread */
        pthread_mutex_unlock(&tx->lock);
}

/* The ingest thread's outcome for c's SET. */
static void conn_finish_job(Push *p, Conn *c, PushJob *j) {
        _cleanup_free_ char *body = NULL;

        c->job = NULL;
        if (j->r >= 0 || j->r == -EALREADY)
                conn_respond_full(p, c, 202, NULL, NULL, true);
        else if (j->r == -EAGAIN) {
                uint64_t now = ssf_now_usec();

                conn_respond_retry(p, c, j->retry_usec > now
                                                 ? (j->retry_usec - now + 999999u) / 1000000u : 1);
        } else if (j->err.err) {
                body = push_error_body(&j->err);
                conn_respond_full(p, c, 400, NULL, body, true);
        } else
                /* Not committed (the daemon busy or unreachable): deliver it again. */
                conn_respond_retry(p, c, PUSH_RETRY_AFTER_SEC);
}

/* The transmitter whose push_url has the request's target as its path (and query), or NULL.
 * Every path is the one route of one transmitter (the configuration refuses a path twice). */
static PushTx *push_route(Push *p, const PushRequest *req) {
        for (size_t i = 0; i < p->n_txs; i++) {
                PushTx *tx = p->txs[i];

                if (req->target_len == strlen(tx->path) &&
                    memcmp(req->target, tx->path, req->target_len) == 0)
                        return tx;
        }
        return NULL;
}

/* Reads what is there; answers as soon as the head or the whole request allows. */
static void conn_read(Push *p, Conn *c) {
        PushTx *tx = c->have_head ? push_route(p, &c->req) : NULL;

        for (;;) {
                size_t target = c->have_head ? c->req.head_len + (size_t) c->req.content_length
                                             : PUSH_MAX_HEAD;
                unsigned status = 0;
                int n, r;

                if (!c->have_head && c->len > 0) {
                        r = push_parse_head(c->buf, c->len, &c->req, &status);
                        if (r < 0 && r != -EAGAIN) {
                                conn_respond_invalid(p, c, status, "malformed HTTP request");
                                return;
                        }
                        if (r >= 0) {
                                bool serving = false, authorized = false;

                                c->have_head = true;
                                /* The route: the transmitter whose push_url has this path. */
                                tx = push_route(p, &c->req);
                                status = tx ? push_check_head(&c->req, tx->path) : 404;
                                if (status == 0) {
                                        pthread_mutex_lock(&tx->lock);
                                        serving = tx->serving;
                                        authorized = push_authorized(&c->req, tx->push_authorization);
                                        pthread_mutex_unlock(&tx->lock);
                                }
                                if (status == 405)
                                        conn_respond(p, c, 405, "Allow: POST\r\n", NULL);
                                else if (status == 400)
                                        conn_respond_invalid(p, c, 400,
                                                             "Transfer-Encoding is not supported");
                                else if (status != 0)
                                        conn_respond(p, c, status, NULL, NULL);
                                else if (!authorized) {
                                        if (push_log_ok(p, PUSH_LOG_UNAUTHORIZED))
                                                log_warning("Push request from %s for transmitter "
                                                            "'%s' without the stream's "
                                                            "authorization, refused",
                                                            c->peer, tx->rx.c->name);
                                        conn_respond(p, c, 401, "WWW-Authenticate: Bearer\r\n",
                                                     NULL);
                                } else if (!serving)
                                        /* Its stream is being set up (a transmitter may push
                                         * as soon as it created the stream): the SET waits for
                                         * it, at most PUSH_HANDOVER_USEC like any other. */
                                        log_debug("Push request from %s for transmitter '%s', "
                                                  "which is not set up yet: waiting for it",
                                                  c->peer, tx->rx.c->name);
                                if (c->state != CONN_READ)
                                        return;
                                continue;
                        }
                }
                if (c->have_head && c->len >= target)
                        break;
                if (c->alloc < target + 1) {
                        char *b = realloc(c->buf, target + 1);
                        if (!b) {
                                c->state = CONN_DONE;
                                return;
                        }
                        c->buf = b;
                        c->alloc = target + 1;
                }
                if (c->len >= target) {
                        /* No empty line within PUSH_MAX_HEAD bytes (parsed above as 431). */
                        c->state = CONN_DONE;
                        return;
                }
                ERR_clear_error();
                n = SSL_read(c->ssl, c->buf + c->len, (int) (target - c->len));
                if (n <= 0) {
                        if (conn_ssl_wait(c, n) < 0)
                                c->state = CONN_DONE; /* closed or broken before a request */
                        return;
                }
                if (c->len == 0 && c->n_requests > 0)
                        /* The next request of a kept connection begins: it has as long as a
                         * first one. */
                        c->deadline = ssf_now_usec() + PUSH_IO_TIMEOUT_USEC;
                c->len += (size_t) n; /* a head is parsed at the top of the loop */
        }
        if (!tx) {
                c->state = CONN_DONE; /* cannot be: the head was routed */
                return;
        }
        conn_handle(p, c, tx);
}

/* After an answer on a kept connection: what followed the request stays (a pipelined request),
 * and the connection waits for the next one. */
static void conn_next_request(Push *p, Conn *c) {
        size_t used = c->req.head_len + (size_t) c->req.content_length;

        if (used < c->len) {
                memmove(c->buf, c->buf + used, c->len - used);
                c->len -= used;
        } else
                c->len = 0;
        c->have_head = false;
        c->req = (PushRequest) {};
        c->out = mfree(c->out);
        c->out_len = c->out_off = 0;
        c->state = CONN_READ;
        c->events = POLLIN;
        c->since = ssf_now_usec();
        c->deadline = c->since + PUSH_IDLE_TIMEOUT_USEC;
        conn_read(p, c); /* data may be buffered already, here or in the TLS layer */
}

static void conn_write(Push *p, Conn *c) {
        while (c->out_off < c->out_len) {
                int n;

                ERR_clear_error();
                n = SSL_write(c->ssl, c->out + c->out_off, (int) (c->out_len - c->out_off));
                if (n <= 0) {
                        if (conn_ssl_wait(c, n) < 0)
                                c->state = CONN_DONE;
                        return;
                }
                c->out_off += (size_t) n;
        }
        if (c->keep_alive) {
                conn_next_request(p, c);
                return;
        }
        /* Done: close_notify, then read what the client still sends for a moment, so that
         * closing does not reset the connection before it has read our answer. */
        ERR_clear_error();
        (void) SSL_shutdown(c->ssl);
        ERR_clear_error();
        (void) shutdown(c->fd, SHUT_WR);
        c->state = CONN_LINGER;
        c->events = POLLIN;
        c->deadline = ssf_now_usec() + PUSH_LINGER_USEC;
}

static void conn_linger(Conn *c) {
        char buf[4096];

        for (;;) {
                ssize_t n = read(c->fd, buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0 || (c->drained += (size_t) n) > PUSH_LINGER_MAX) {
                        c->state = CONN_DONE;
                        return;
                }
        }
}

static void conn_step(Push *p, Conn *c) {
        int r;

        if (c->state == CONN_HANDSHAKE) {
                ERR_clear_error();
                r = SSL_accept(c->ssl);
                if (r != 1) {
                        if (conn_ssl_wait(c, r) < 0) {
                                if (push_log_ok(p, PUSH_LOG_HANDSHAKE))
                                        log_debug("TLS handshake with %s failed", c->peer);
                                c->state = CONN_DONE;
                        }
                        return;
                }
                c->state = CONN_READ;
        }
        if (c->state == CONN_READ)
                conn_read(p, c);
        if (c->state == CONN_WRITE)
                conn_write(p, c);
        if (c->state == CONN_LINGER)
                conn_linger(c);
}

static unsigned push_peer_conns(const Push *p, const PushPeer *peer) {
        unsigned n = 0;

        for (unsigned i = 0; i < p->n_conns; i++) {
                const Conn *c = p->conns[i];

                if (c->state != CONN_DONE && c->state != CONN_LINGER &&
                    push_peer_equal(&c->peer_key, peer))
                        n++;
        }
        return n;
}

static PushConnPhase conn_phase(const Conn *c) {
        switch (c->state) {
        case CONN_HANDSHAKE:
        case CONN_READ:
                return PUSH_PHASE_WAITING;
        case CONN_VERIFY:
        case CONN_WRITE:
                return PUSH_PHASE_BUSY;
        default:
                return PUSH_PHASE_DONE;
        }
}

static void push_remove_conn(Push *p, unsigned i) {
        Conn *c = p->conns[i];

        conn_abandon_job(p, c);
        conn_free(c);
        p->conns[i] = p->conns[--p->n_conns];
}

/* All slots taken: frees one for a new connection (push.h), or returns false. */
static bool push_evict(Push *p) {
        PushConnPhase phase[PUSH_MAX_CONNECTIONS];
        uint64_t since[PUSH_MAX_CONNECTIONS];
        int v;

        for (unsigned i = 0; i < p->n_conns; i++) {
                phase[i] = conn_phase(p->conns[i]);
                since[i] = p->conns[i]->since;
        }
        v = push_pick_victim(phase, since, p->n_conns, ssf_now_usec());
        if (v < 0)
                return false;
        if (phase[v] != PUSH_PHASE_DONE && push_log_ok(p, PUSH_LOG_EVICTED))
                log_info("Push listener full: closed the connection from %s, which had not "
                         "completed a request for %" PRIu64 " ms", p->conns[v]->peer,
                         (ssf_now_usec() - since[v]) / 1000u);
        push_remove_conn(p, (unsigned) v);
        return true;
}

static void push_accept(Push *p) {
        for (unsigned tries = 0; tries < PUSH_ACCEPT_BURST; tries++) {
                struct sockaddr_storage sa;
                socklen_t salen = sizeof(sa);
                char addr[INET6_ADDRSTRLEN] = "?";
                PushPeer peer;
                Conn *c;
                int fd;

                fd = accept4(p->server->fd, (struct sockaddr *) &sa, &salen,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno != EAGAIN)
                                log_warning_errno(errno, "accept() on the push listener: %m");
                        return;
                }
                if (sa.ss_family == AF_INET)
                        (void) inet_ntop(AF_INET, &((struct sockaddr_in *) &sa)->sin_addr, addr,
                                         sizeof(addr));
                else if (sa.ss_family == AF_INET6)
                        (void) inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &sa)->sin6_addr, addr,
                                         sizeof(addr));
                push_peer_from_sockaddr((struct sockaddr *) &sa, salen, &peer);
                /* Before any TLS work: one peer may not hold the slots the transmitter needs. */
                if (push_peer_conns(p, &peer) >= PUSH_MAX_PER_PEER) {
                        if (push_log_ok(p, PUSH_LOG_PEER_LIMIT))
                                log_warning("Push connection from %s refused: %u connections "
                                            "from that peer are open already", addr,
                                            PUSH_MAX_PER_PEER);
                        safe_close(fd);
                        continue;
                }
                if (p->n_conns >= PUSH_MAX_CONNECTIONS && !push_evict(p)) {
                        if (push_log_ok(p, PUSH_LOG_EVICTED))
                                log_warning("Push connection from %s refused: all %u slots are "
                                            "busy with requests in progress", addr,
                                            PUSH_MAX_CONNECTIONS);
                        safe_close(fd);
                        continue;
                }
                c = calloc(1, sizeof(*c));
                if (c)
                        c->ssl = SSL_new(p->server->ctx);
                if (!c || !c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
                        ERR_clear_error();
                        if (c)
                                SSL_free(c->ssl);
                        free(c);
                        safe_close(fd);
                        return;
                }
                SSL_set_accept_state(c->ssl);
                c->fd = fd;
                c->state = CONN_HANDSHAKE;
                c->events = POLLIN;
                c->since = ssf_now_usec();
                c->deadline = c->since + PUSH_IO_TIMEOUT_USEC;
                c->peer_key = peer;
                (void) snprintf(c->peer, sizeof(c->peer), "%s", addr);
                p->conns[p->n_conns++] = c;
                conn_step(p, c); /* the ClientHello is often there already */
        }
}

/* Takes the ingest thread's outcomes and answers their connections. */
static void push_collect(Push *p) {
        PushJob *done;
        uint64_t v;

        (void) !read(p->wake_fd, &v, sizeof(v));
        pthread_mutex_lock(&p->lock);
        done = TAKE_PTR(p->done);
        pthread_mutex_unlock(&p->lock);
        while (done) {
                PushJob *j = done;

                done = j->next;
                /* j->conn is set: a connection that goes first abandons its job. */
                if (j->conn && j->conn->job == j && j->conn->state == CONN_VERIFY) {
                        Conn *c = j->conn;

                        conn_finish_job(p, c, j);
                        conn_step(p, c);
                }
                job_free(j);
        }
}

/* One round of the listener thread: waits up to PUSH_TICK_MSEC for the listener, the
 * connections and the ingest thread, serves them. */
static void push_serve(Push *p) {
        struct pollfd pfd[PUSH_MAX_CONNECTIONS + 2];
        Conn *polled[PUSH_MAX_CONNECTIONS];
        unsigned n = 0, k = 0, i;
        uint64_t now = ssf_now_usec();
        int timeout = PUSH_TICK_MSEC;

        pfd[n++] = (struct pollfd) { .fd = p->server->fd, .events = POLLIN };
        pfd[n++] = (struct pollfd) { .fd = p->wake_fd, .events = POLLIN };
        for (i = 0; i < p->n_conns; i++) {
                Conn *c = p->conns[i];
                uint64_t left = c->deadline > now ? c->deadline - now : 0;

                timeout = MIN(timeout, (int) ((left + 999) / 1000));
                polled[k++] = c;
                pfd[n++] = (struct pollfd) { .fd = c->fd, .events = c->events };
        }
        if (poll(pfd, n, timeout) < 0 && errno != EINTR) {
                log_warning_errno(errno, "poll() on the push listener: %m");
                (void) usleep(100000u);
                return;
        }
        if (pfd[1].revents & POLLIN)
                push_collect(p);
        for (i = 0; i < k; i++)
                if (pfd[i + 2].revents && polled[i]->state != CONN_VERIFY)
                        conn_step(p, polled[i]);
        if (pfd[0].revents & POLLIN)
                push_accept(p);

        /* Drop what is done or late (a late client learns nothing; it may retry). */
        now = ssf_now_usec();
        for (i = 0; i < p->n_conns;) {
                Conn *c = p->conns[i];

                if (c->state == CONN_VERIFY && now >= c->deadline) {
                        /* The SET is still being verified or committed (the daemon is busy,
                         * say): answer now rather than leave the transmitter hanging. */
                        log_info("Push request from %s: not committed within %u s, answering "
                                 "503", c->peer, PUSH_HANDOVER_USEC / 1000000u);
                        conn_abandon_job(p, c);
                        conn_respond_retry(p, c, PUSH_RETRY_AFTER_SEC);
                        conn_step(p, c);
                } else if (c->state != CONN_DONE && now >= c->deadline) {
                        if (c->state != CONN_LINGER && push_log_ok(p, PUSH_LOG_TIMEOUT))
                                log_debug("Push connection from %s timed out", c->peer);
                        c->state = CONN_DONE;
                }
                if (c->state == CONN_DONE)
                        push_remove_conn(p, i);
                else
                        i++;
        }
        push_log_flush(p, now);
}

static void *push_listener_thread(void *userdata) {
        Push *p = userdata;

        for (;;) {
                bool quit;

                pthread_mutex_lock(&p->lock);
                quit = p->quit;
                pthread_mutex_unlock(&p->lock);
                if (quit || link_stopping(p->txs[0]->rx.link))
                        break;
                push_serve(p);
        }
        return NULL;
}

/* ---- the ingest threads: verify pushed SETs and hand them to the daemon -------------------- */

/* One per transmitter: a JWKS refresh that hangs holds up that transmitter's SETs only. */
static void *push_ingest_thread(void *userdata) {
        PushTx *tx = userdata;
        Push *p = tx->listener;

        pthread_mutex_lock(&tx->lock);
        for (;;) {
                uint64_t one = 1;
                PushJob *j;

                /* Nothing is verified before the first setup gave the verifier. */
                while (!tx->quit && (!tx->todo || !tx->serving))
                        pthread_cond_wait(&tx->cond, &tx->lock);
                if (tx->quit)
                        break;
                j = tx->todo;
                tx->todo = j->next;
                if (!tx->todo)
                        tx->todo_tail = &tx->todo;
                tx->n_todo--;
                j->next = NULL;
                j->started = true;
                if (tx->has_next_vt) {
                        transmitter_done(&tx->vt);
                        tx->vt = tx->next_vt;
                        tx->next_vt = (Transmitter) {};
                        tx->has_next_vt = false;
                }
                pthread_mutex_unlock(&tx->lock);

                json_object_set_new(tx->counters, "sets_received", json_integer(1));
                /* Verified against this transmitter's issuer, audience and keys only: a SET
                 * posted to its path with another's iss is invalid_issuer. */
                j->r = receive_set(tx->rx.link, tx->ingest_http, &tx->vt, j->token, j->len, NULL,
                                   j->seen_usec, &j->err, &j->retry_usec);
                if (j->r >= 0 || j->r == -EALREADY)
                        json_object_set_new(tx->counters, "sets_acknowledged", json_integer(1));
                else if (j->r != -EAGAIN && j->err.err)
                        json_object_set_new(tx->counters, "sets_rejected", json_integer(1));
                link_facts(tx->rx.link, NULL, tx->counters);
                json_object_clear(tx->counters);

                pthread_mutex_lock(&tx->lock);
                if (j->conn) {
                        pthread_mutex_lock(&p->lock);
                        j->next = p->done;
                        p->done = j;
                        (void) !write(p->wake_fd, &one, sizeof(one));
                        pthread_mutex_unlock(&p->lock);
                } else
                        job_free(j); /* answered 503 already */
        }
        pthread_mutex_unlock(&tx->lock);
        return NULL;
}

/* Gives the ingest thread what the last setup learnt (issuer, audience, the JWKS); from now on
 * the listener takes the transmitter's SETs. */
static int push_publish_verifier(PushTx *tx) {
        Transmitter vt;
        int r;

        r = transmitter_take_verifier(&tx->rx.t, &vt);
        if (r < 0)
                return r;
        pthread_mutex_lock(&tx->lock);
        if (tx->has_next_vt)
                transmitter_done(&tx->next_vt);
        tx->next_vt = vt;
        tx->has_next_vt = true;
        tx->serving = true;
        pthread_cond_broadcast(&tx->cond);
        pthread_mutex_unlock(&tx->lock);
        return 0;
}

/* ---- the stream and each transmitter's main loop ------------------------------------------ */

/* The bearer secret: the one the daemon keeps, or a new one (32 random bytes, base64url). */
static int push_load_secret(PushTx *tx) {
        _cleanup_erase_free_ char *secret = NULL;
        char *authorization = NULL;
        uint8_t raw[PUSH_SECRET_BYTES];
        bool fresh = false;
        int r;

        r = link_kv_get(tx->rx.link, "push_secret", &secret);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Cannot read the push secret from the daemon: %m");
        if (secret && strlen(secret) != (PUSH_SECRET_BYTES * 4 + 2) / 3)
                secret = erase_and_free(secret); /* not one of ours: make a new one */
        if (!secret) {
                if (RAND_bytes(raw, sizeof(raw)) != 1) {
                        ERR_clear_error();
                        return -EIO;
                }
                r = base64url_encode(raw, sizeof(raw), &secret);
                explicit_bzero(raw, sizeof(raw));
                if (r < 0)
                        return r;
                r = link_kv_set(tx->rx.link, "push_secret", secret);
                if (r < 0)
                        return log_error_errno(r, "Cannot keep the push secret: %m");
                fresh = true;
        }
        if (asprintf(&authorization, "Bearer %s", secret) < 0)
                return -ENOMEM;
        pthread_mutex_lock(&tx->lock);
        erase_and_free(tx->push_authorization);
        tx->push_authorization = authorization;
        pthread_mutex_unlock(&tx->lock);
        if (fresh)
                log_info("Generated a new push authorization secret for transmitter '%s'",
                         tx->rx.c->name);
        return 0;
}

/* Sets the stream up with push delivery: as the poller does, with the secret (loaded once) for
 * the stream's authorization_header. */
static int push_setup(PushTx *tx) {
        bool have;
        int r;

        r = receiver_setup_begin(&tx->rx);
        if (r < 0)
                return r;
        r = receiver_setup_token(&tx->rx);
        pthread_mutex_lock(&tx->lock);
        have = tx->push_authorization;
        pthread_mutex_unlock(&tx->lock);
        if (r >= 0 && !have)
                r = push_load_secret(tx);
        /* Only this thread writes it: reading it unlocked here is safe. */
        return receiver_setup_finish(&tx->rx, r, tx->push_authorization);
}

/* Stops every transmitter of this worker: they share one process and one listener, and root
 * restarts them together (broker.c). */
static void push_stop_all(Push *p) {
        for (size_t i = 0; i < p->n_txs; i++)
                link_stop(p->txs[i]->rx.link);
}

/* A transmitter's main thread: sets its stream up, keeps it checked and answers `ssfctl verify`
 * and stream administration; the listener and its ingest thread serve pushes meanwhile,
 * whatever these calls wait for. */
static void *push_tx_main(void *userdata) {
        PushTx *tx = userdata;
        Link *link = tx->rx.link;
        int r;

        while (!link_stopping(link)) {
                uint64_t hold = http_client_hold_left(tx->rx.http);

                if (hold > 0) {
                        /* The transmitter said when to come back (Retry-After): no request to
                         * it until then. Pushes are still served. */
                        receiver_maybe_verify(&tx->rx); /* answered at once: held back */
                        receiver_maybe_admin(&tx->rx);  /* likewise */
                        if (link_wait_stop(link, MIN(hold, (uint64_t) PUSH_TICK_MSEC * 1000u)))
                                break;
                        continue;
                }
                if (tx->rx.idle) {
                        /* The stream was deleted (ssfctl): no request to the transmitter until
                         * `ssfctl stream create`. */
                        if (receiver_idle_wait(&tx->rx))
                                break;
                        continue;
                }
                /* Answered before a setup, which may fail again and again: a request left
                 * waiting would cut every backoff short. A create is taken up by the setup. */
                if (!tx->rx.ready)
                        receiver_maybe_admin(&tx->rx);
                if (!tx->rx.ready) {
                        r = push_setup(tx);
                        if (r >= 0)
                                r = push_publish_verifier(tx);
                        if (r < 0) {
                                if (r == -EBUSY && http_client_hold_left(tx->rx.http) > 0)
                                        continue;
                                tx->rx.ready = false;
                                if (receiver_setup_failed(&tx->rx, r))
                                        break;
                                continue;
                        }
                        tx->rx.backoff = RECEIVER_BACKOFF_MIN_USEC;
                }
                receiver_maybe_verify(&tx->rx); /* the verification SET arrives by push */
                receiver_maybe_admin(&tx->rx);
                receiver_check_stream(&tx->rx);
                if (!tx->rx.ready)
                        continue;
                if (link_wait_stop(link, (uint64_t) PUSH_TICK_MSEC * 1000u))
                        break;
        }
        push_stop_all(tx->listener);
        return NULL;
}

static void push_tx_free(PushTx *tx) {
        if (!tx)
                return;
        if (tx->ingester_started) {
                pthread_mutex_lock(&tx->lock);
                tx->quit = true;
                pthread_cond_broadcast(&tx->cond);
                pthread_mutex_unlock(&tx->lock);
                http_client_abort(tx->ingest_http); /* a JWKS refresh in progress */
                (void) pthread_join(tx->ingester, NULL);
        }
        receiver_publish(&tx->rx, NULL, NULL, false);
        while (tx->todo) {
                PushJob *j = tx->todo;
                tx->todo = j->next;
                job_free(j);
        }
        transmitter_done(&tx->vt);
        transmitter_done(&tx->next_vt);
        http_client_free(tx->ingest_http);
        json_decref(tx->counters);
        receiver_done(&tx->rx);
        free(tx->path);
        erase_and_free(tx->push_authorization);
        pthread_cond_destroy(&tx->cond);
        pthread_mutex_destroy(&tx->lock);
        free(tx);
}

static int push_tx_new(Push *p, const PushTransmitter *a, PushTx **ret) {
        PushTx *tx;
        int r;

        tx = calloc(1, sizeof(*tx));
        if (!tx) {
                http_client_free(a->http);
                return -ENOMEM;
        }
        pthread_mutex_init(&tx->lock, NULL);
        pthread_cond_init(&tx->cond, NULL);
        tx->todo_tail = &tx->todo;
        tx->listener = p;
        r = receiver_init(&tx->rx, a->link, a->http, a->authorization, a->oauth2, true);
        if (r >= 0)
                r = push_url_target(tx->rx.c->push_url, &tx->path);
        if (r >= 0 && a->push_authorization) {
                tx->push_authorization = strdup(a->push_authorization);
                if (!tx->push_authorization)
                        r = -ENOMEM;
        }
        if (r >= 0) {
                tx->counters = json_object();
                if (!tx->counters)
                        r = -ENOMEM;
        }
        if (r >= 0)
                r = http_client_clone(tx->rx.http, &tx->ingest_http);
        if (r >= 0) {
                r = -pthread_create(&tx->ingester, NULL, push_ingest_thread, tx);
                tx->ingester_started = r == 0;
        }
        if (r < 0) {
                push_tx_free(tx);
                return r;
        }
        *ret = tx;
        return 0;
}

int push_run(PushServer *server, const PushTransmitter *txs, size_t n) {
        Push p = {
                .server = server,
                .wake_fd = -EBADF,
        };
        int r = 0;

        pthread_mutex_init(&p.lock, NULL);
        p.txs = calloc(MAX(n, (size_t) 1), sizeof(PushTx *));
        if (!p.txs) {
                for (size_t i = 0; i < n; i++)
                        http_client_free(txs[i].http);
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                int k = r < 0 ? -ECANCELED : push_tx_new(&p, &txs[i], &p.txs[p.n_txs]);

                if (k >= 0)
                        p.n_txs++;
                else {
                        if (k == -ECANCELED)
                                http_client_free(txs[i].http);
                        r = r < 0 ? r : k;
                }
        }
        if (r >= 0 && p.n_txs == 0)
                r = -EINVAL;
        if (r >= 0) {
                p.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (p.wake_fd < 0)
                        r = -errno;
        }
        if (r >= 0) {
                r = -pthread_create(&p.listener, NULL, push_listener_thread, &p);
                p.listener_started = r == 0;
        }
        for (size_t i = 0; r >= 0 && i < p.n_txs; i++) {
                r = -pthread_create(&p.txs[i]->main, NULL, push_tx_main, p.txs[i]);
                p.txs[i]->main_started = r == 0;
        }
        if (r < 0) {
                log_error_errno(r, "Cannot start serving pushes: %m");
                push_stop_all(&p);
        }
        for (size_t i = 0; i < p.n_txs; i++)
                if (p.txs[i]->main_started)
                        (void) pthread_join(p.txs[i]->main, NULL);
out:
        if (p.listener_started) {
                pthread_mutex_lock(&p.lock);
                p.quit = true;
                pthread_mutex_unlock(&p.lock);
                (void) pthread_join(p.listener, NULL);
        }
        /* The listener is gone: the connections (and their jobs) first, then the transmitters. */
        for (unsigned i = 0; i < p.n_conns; i++) {
                conn_abandon_job(&p, p.conns[i]);
                conn_free(p.conns[i]);
        }
        for (size_t i = 0; i < p.n_txs; i++)
                push_tx_free(p.txs[i]);
        while (p.done) {
                PushJob *j = p.done;
                p.done = j->next;
                job_free(j);
        }
        free(p.txs);
        safe_close(p.wake_fd);
        push_server_free(p.server);
        pthread_mutex_destroy(&p.lock);
        return r < 0 ? r : 0;
}
