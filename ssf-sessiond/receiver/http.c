/* SPDX-License-Identifier: MIT */
/*
 * The bounded HTTPS client (http.h) the worker talks to the transmitter with. Runs in the
 * network worker.
 */
#include <errno.h>
#include <unistd.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <inttypes.h>
#include <time.h>

#include <curl/curl.h>

#include "fileio.h"
#include "http.h"
#include "log.h"
#include "macro.h"
#include "retry-after.h"

/* Longest header values we keep; longer ones are dropped (treated as absent). */
#define HTTP_MAX_CONTENT_TYPE 256u
#define HTTP_MAX_WWW_AUTHENTICATE 4096u
/* Upper bound of one curl_multi_poll() wait, so a missed wakeup costs at most this much. */
#define HTTP_POLL_MS 1000
#define HTTP_CONNECT_TIMEOUT_MS 10000L

struct HttpClient {
        CURLM *multi;
        CURL *easy;
        char *ca_file;
        char *ca_blob;   /* the CA file's contents, read when the client is made */
        size_t ca_blob_len;
        char *cert_blob; /* mutual TLS: the client certificate (chain), PEM */
        size_t cert_blob_len;
        char *key_blob;  /*   and its private key, PEM (wiped on free) */
        size_t key_blob_len;
        char *proxy;     /* "http://host:port" / "https://host:port", or NULL: no proxy */
        atomic_bool abort;
        /* http_client_interrupt(): abort unless the answer has begun to arrive. */
        atomic_bool interrupt;
        bool interruptible;     /* the running request may be interrupted (its thread's) */
        atomic_bool answering;
        uint64_t hold_until_usec; /* CLOCK_MONOTONIC: the Retry-After hold ends */
};

/* Per-request state shared with the curl callbacks. */
typedef struct HttpTransfer {
        HttpClient *client;
        char *body;
        size_t body_len, body_alloc, max_body;
        bool too_big;
        char *content_type;
        char *www_authenticate;
        char *retry_after;
} HttpTransfer;


DEFINE_TRIVIAL_CLEANUP_FUNC(HttpClient *, http_client_free);

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init_once(void) {
        curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void http_transfer_done(HttpTransfer *t) {
        free(t->body);
        free(t->content_type);
        free(t->www_authenticate);
        free(t->retry_after);
}

static void curl_slist_free_erasep(struct curl_slist **l) {
        /* The list may hold the Authorization header: wipe every entry before freeing. */
        for (struct curl_slist *i = *l; i; i = i->next)
                if (i->data)
                        explicit_bzero(i->data, strlen(i->data));
        curl_slist_free_all(*l);
}

/* The one place where curl's errors become -errno. */
static int http_curl_error_to_errno(CURLcode code, long os_errno) {
        switch (code) {
        case CURLE_OK:
                return 0;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
        case CURLE_BAD_FUNCTION_ARGUMENT:
                return -EINVAL;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_COULDNT_CONNECT:
                if (os_errno == ENETUNREACH || os_errno == EHOSTUNREACH || os_errno == ECONNRESET)
                        return -(int) os_errno;
                return -ECONNREFUSED;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_FILESIZE_EXCEEDED:
                return -EFBIG;
        case CURLE_ABORTED_BY_CALLBACK:
                return -ECANCELED;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
                return -ECONNRESET;
        case CURLE_TOO_MANY_REDIRECTS:
                return -ELOOP;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_SHUTDOWN_FAILED:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CLIENTCERT:
        case CURLE_USE_SSL_FAILED:
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_PARTIAL_FILE:
        case CURLE_BAD_CONTENT_ENCODING:
        case CURLE_HTTP3:
        case CURLE_QUIC_CONNECT_ERROR:
                return -EPROTO;
        default:
                return -EIO;
        }
}

static size_t http_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) {
        HttpTransfer *t = userdata;
        size_t n = size * nmemb;

        if (n == 0)
                return 0;
        if (n > t->max_body || t->body_len > t->max_body - n) {
                t->too_big = true;
                return 0; /* aborts with CURLE_WRITE_ERROR */
        }
        if (t->body_len + n + 1 > t->body_alloc) {
                size_t a = MAX(t->body_alloc * 2, (size_t) 4096);
                char *p;

                a = MAX(a, t->body_len + n + 1);
                a = MIN(a, t->max_body + 1);
                p = realloc(t->body, a);
                if (!p)
                        return 0;
                t->body = p;
                t->body_alloc = a;
        }
        memcpy(t->body + t->body_len, ptr, n);
        t->body_len += n;
        t->body[t->body_len] = 0;
        return n;
}

/* Copies the value of a "Name: value\r\n" header line if it fits in max bytes. */
static int http_header_value(const char *line, size_t len, size_t name_len, size_t max, char **ret) {
        const char *v = line + name_len, *e = line + len;
        char *copy;

        while (v < e && (*v == ' ' || *v == '\t'))
                v++;
        while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
                e--;
        if ((size_t) (e - v) > max || memchr(v, 0, (size_t) (e - v)))
                return 0; /* oversize or binary: treat as absent */
        copy = strndup(v, (size_t) (e - v));
        if (!copy)
                return -ENOMEM;
        free(*ret);
        *ret = copy;
        return 0;
}

static size_t http_header_cb(char *buffer, size_t size, size_t nitems, void *userdata) {
        static const char ct[] = "content-type:", wa[] = "www-authenticate:", ra[] = "retry-after:";
        HttpTransfer *t = userdata;
        size_t n = size * nitems;

        if (n >= 5 && strncmp(buffer, "HTTP/", 5) == 0) {
                /* The answer is coming (a proxy's answer to CONNECT is not passed here:
                 * CURLOPT_SUPPRESS_CONNECT_HEADERS): an interruption no longer throws it away. */
                atomic_store(&t->client->answering, true);
                /* A new response (e.g. after "100 Continue"): forget the previous headers. */
                free(t->content_type);
                free(t->www_authenticate);
                free(t->retry_after);
                t->content_type = t->www_authenticate = t->retry_after = NULL;
        } else if (n > strlen(ct) && strncasecmp(buffer, ct, strlen(ct)) == 0) {
                if (http_header_value(buffer, n, strlen(ct), HTTP_MAX_CONTENT_TYPE, &t->content_type) < 0)
                        return 0;
        } else if (n > strlen(wa) && strncasecmp(buffer, wa, strlen(wa)) == 0 && !t->www_authenticate) {
                /* Several challenges: keep the first. */
                if (http_header_value(buffer, n, strlen(wa), HTTP_MAX_WWW_AUTHENTICATE,
                                      &t->www_authenticate) < 0)
                        return 0;
        } else if (n > strlen(ra) && strncasecmp(buffer, ra, strlen(ra)) == 0) {
                if (http_header_value(buffer, n, strlen(ra), RETRY_AFTER_MAX_LEN, &t->retry_after) < 0)
                        return 0;
        }
        return n;
}

static int http_xferinfo_cb(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                            curl_off_t ulnow) {
        HttpTransfer *t = clientp;

        /* An interruption is looked at between two curl_multi_perform() calls (http_perform()),
         * once what had arrived was read. */
        return atomic_load(&t->client->abort) ? 1 : 0;
}

#define HTTP_CA_FILE_MAX (1024u * 1024u)
#define HTTP_CLIENT_CERT_MAX (256u * 1024u)

static char *memdup_nul(const char *p, size_t n) {
        char *d = malloc(n + 1);

        if (!d)
                return NULL;
        memcpy(d, p, n);
        d[n] = 0;
        return d;
}

static void erase_blob(char **p, size_t *len) {
        if (*p)
                explicit_bzero(*p, *len);
        *p = mfree(*p);
        *len = 0;
}

int http_client_set_client_cert(HttpClient *c, const char *cert_file, const char *key_file) {
        _cleanup_free_ char *cert = NULL;
        char *key = NULL;
        size_t cert_len = 0, key_len = 0;
        int r;

        if (!c || !cert_file || !key_file)
                return -EINVAL;
        r = read_full_file(cert_file, FILE_NOFOLLOW | FILE_REGULAR | FILE_OWNER | FILE_NO_WRITE,
                           (uid_t) -1, HTTP_CLIENT_CERT_MAX, &cert, &cert_len);
        if (r == -EPERM || r == -EBADFD) {
                log_error("The TLS client certificate '%s' must be a regular file owned by root and "
                          "not writable by group or others, refusing", cert_file);
                return -EPERM;
        }
        if (r < 0)
                return log_error_errno(r, "Cannot read the TLS client certificate '%s': %m", cert_file);
        r = read_full_file(key_file, FILE_NOFOLLOW | FILE_REGULAR | FILE_OWNER | FILE_PRIVATE,
                           (uid_t) -1, HTTP_CLIENT_CERT_MAX, &key, &key_len);
        if (r == -EPERM || r == -EBADFD) {
                log_error("The TLS client key '%s' must be a regular file owned by root and not "
                          "accessible to group or others, refusing", key_file);
                return -EPERM;
        }
        if (r < 0)
                return log_error_errno(r, "Cannot read the TLS client key '%s': %m", key_file);
        if (cert_len == 0 || key_len == 0) {
                erase_blob(&key, &key_len);
                log_error("The TLS client certificate '%s' or its key '%s' is empty", cert_file,
                          key_file);
                return -EINVAL;
        }

        free(c->cert_blob);
        erase_blob(&c->key_blob, &c->key_blob_len);
        c->cert_blob = TAKE_PTR(cert);
        c->cert_blob_len = cert_len;
        c->key_blob = key;
        c->key_blob_len = key_len;
        return 0;
}

int http_client_set_proxy(HttpClient *c, const char *proxy) {
        char *p = NULL;

        if (!c)
                return -EINVAL;
        if (proxy) {
                const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

                if (!startswith(proxy, "http://") && !startswith(proxy, "https://"))
                        return -EINVAL;
                if (strpbrk(proxy, "@ \t\r\n"))
                        return -EINVAL; /* no user information (and nothing a header could carry) */
                if (startswith(proxy, "https://") && !(v->features & CURL_VERSION_HTTPS_PROXY)) {
                        log_error("This libcurl cannot talk TLS to a proxy: use an http:// proxy");
                        return -EOPNOTSUPP;
                }
                p = strdup(proxy);
                if (!p)
                        return -ENOMEM;
        }
        free(c->proxy);
        c->proxy = p;
        return 0;
}

int http_client_clone(const HttpClient *c, HttpClient **ret) {
        _cleanup_(http_client_freep) HttpClient *n = NULL;
        int r;

        r = http_client_new(NULL, &n);
        if (r < 0)
                return r;
        if (c->ca_file) {
                n->ca_file = strdup(c->ca_file);
                n->ca_blob = malloc(MAX(c->ca_blob_len, (size_t) 1));
                if (!n->ca_file || !n->ca_blob)
                        return -ENOMEM;
                memcpy(n->ca_blob, c->ca_blob, c->ca_blob_len);
                n->ca_blob_len = c->ca_blob_len;
        }
        if (c->cert_blob) {
                n->cert_blob = memdup_nul(c->cert_blob, c->cert_blob_len);
                n->cert_blob_len = c->cert_blob_len;
                n->key_blob = memdup_nul(c->key_blob, c->key_blob_len);
                n->key_blob_len = n->key_blob ? c->key_blob_len : 0; /* what free must wipe */
                if (!n->cert_blob || !n->key_blob)
                        return -ENOMEM;
        }
        if (c->proxy) {
                n->proxy = strdup(c->proxy);
                if (!n->proxy)
                        return -ENOMEM;
        }
        n->hold_until_usec = c->hold_until_usec;
        *ret = TAKE_PTR(n);
        return 0;
}

int http_client_new(const char *ca_file, HttpClient **ret) {
        _cleanup_(http_client_freep) HttpClient *c = NULL;

        if (!ret)
                return -EINVAL;

        (void) pthread_once(&curl_once, curl_init_once);
        if (curl_init_result != CURLE_OK)
                return -ENOMEM;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        atomic_init(&c->abort, false);
        atomic_init(&c->interrupt, false);
        atomic_init(&c->answering, false);

        if (ca_file) {
                int r;

                c->ca_file = strdup(ca_file);
                if (!c->ca_file)
                        return -ENOMEM;
                /* Read now: the network worker makes its clients before it drops privileges. */
                r = read_full_file(ca_file, 0, (uid_t) -1, HTTP_CA_FILE_MAX, &c->ca_blob, &c->ca_blob_len);
                if (r < 0)
                        return r;
        }

        c->multi = curl_multi_init();
        if (!c->multi)
                return -ENOMEM;
        c->easy = curl_easy_init();
        if (!c->easy)
                return -ENOMEM;

        *ret = TAKE_PTR(c);
        return 0;
}

HttpClient *http_client_free(HttpClient *c) {
        if (!c)
                return NULL;
        if (c->easy)
                curl_easy_cleanup(c->easy);
        if (c->multi)
                curl_multi_cleanup(c->multi);
        free(c->ca_file);
        free(c->ca_blob);
        free(c->cert_blob);
        erase_blob(&c->key_blob, &c->key_blob_len);
        free(c->proxy);
        free(c);
        return NULL;
}

void http_client_abort(HttpClient *c) {
        if (!c)
                return;
        atomic_store(&c->abort, true);
        if (c->multi)
                (void) curl_multi_wakeup(c->multi); /* thread-safe by contract */
}

void http_client_interrupt(HttpClient *c) {
        if (!c)
                return;
        atomic_store(&c->interrupt, true);
        if (c->multi)
                (void) curl_multi_wakeup(c->multi);
}

void http_response_done(HttpResponse *r) {
        if (!r)
                return;
        free(r->body);
        free(r->content_type);
        free(r->www_authenticate);
        free(r->retry_after);
        *r = (HttpResponse) {};
}

static bool http_method_valid(const char *m) {
        size_t n = strlen(m);

        if (n == 0 || n > 16)
                return false;
        for (size_t i = 0; i < n; i++)
                if (m[i] < 'A' || m[i] > 'Z')
                        return false;
        return true;
}

static bool http_header_value_safe(const char *s) {
        return !strpbrk(s, "\r\n");
}

#define SETOPT(h, opt, val)                                          \
        do {                                                         \
                CURLcode _c_ = curl_easy_setopt((h), (opt), (val));  \
                if (_c_ != CURLE_OK) {                               \
                        log_debug("curl_easy_setopt(%s) failed: %s", \
                                  #opt, curl_easy_strerror(_c_));    \
                        return http_curl_error_to_errno(_c_, 0);     \
                }                                                    \
        } while (0)

static int http_setup(HttpClient *c, HttpTransfer *t, const char *method, const char *url,
                      const char *body, long timeout_ms, struct curl_slist *headers, char *errbuf) {
        CURL *h = c->easy;

        curl_easy_reset(h); /* keeps the connection and TLS session caches */

        SETOPT(h, CURLOPT_URL, url);
        SETOPT(h, CURLOPT_PROTOCOLS_STR, "https");
        SETOPT(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
        SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
        SETOPT(h, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
        SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L);
        SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L);
        if (c->ca_blob) {
                struct curl_blob blob = {
                        .data = c->ca_blob,
                        .len = c->ca_blob_len,
                        .flags = CURL_BLOB_COPY,
                };
                SETOPT(h, CURLOPT_CAINFO_BLOB, &blob);
        }
        if (c->cert_blob) {
                /* Mutual TLS (RFC 8705). The blobs live as long as the client: not copied. */
                struct curl_blob cert = {
                        .data = c->cert_blob,
                        .len = c->cert_blob_len,
                        .flags = CURL_BLOB_NOCOPY,
                }, key = {
                        .data = c->key_blob,
                        .len = c->key_blob_len,
                        .flags = CURL_BLOB_NOCOPY,
                };
                SETOPT(h, CURLOPT_SSLCERT_BLOB, &cert);
                SETOPT(h, CURLOPT_SSLCERTTYPE, "PEM");
                SETOPT(h, CURLOPT_SSLKEY_BLOB, &key);
                SETOPT(h, CURLOPT_SSLKEYTYPE, "PEM");
        }
        /* Never pick up http_proxy/https_proxy/all_proxy/no_proxy from the environment: the
         * configured proxy or none, and no host is exempt from it. */
        if (c->proxy) {
                SETOPT(h, CURLOPT_PROXY, c->proxy);
                /* The header callback sees the server's answer only, not the proxy's to CONNECT. */
                SETOPT(h, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
                SETOPT(h, CURLOPT_NOPROXY, "");
                SETOPT(h, CURLOPT_HTTPPROXYTUNNEL, 1L); /* CONNECT: TLS end to end */
                /* Our headers (Authorization) go to the transmitter only, never to the proxy. */
                SETOPT(h, CURLOPT_HEADEROPT, (long) CURLHEADER_SEPARATE);
                if (startswith(c->proxy, "https://")) {
                        SETOPT(h, CURLOPT_PROXY_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
                        SETOPT(h, CURLOPT_PROXY_SSL_VERIFYPEER, 1L);
                        SETOPT(h, CURLOPT_PROXY_SSL_VERIFYHOST, 2L);
                        if (c->ca_blob) {
                                struct curl_blob blob = {
                                        .data = c->ca_blob,
                                        .len = c->ca_blob_len,
                                        .flags = CURL_BLOB_COPY,
                                };
                                SETOPT(h, CURLOPT_PROXY_CAINFO_BLOB, &blob);
                        }
                }
        } else
                SETOPT(h, CURLOPT_PROXY, "");
        SETOPT(h, CURLOPT_NOSIGNAL, 1L);
        SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, MIN(HTTP_CONNECT_TIMEOUT_MS, timeout_ms));
        SETOPT(h, CURLOPT_TIMEOUT_MS, timeout_ms);
        SETOPT(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) MIN(t->max_body, (size_t) INT64_MAX));
        SETOPT(h, CURLOPT_WRITEFUNCTION, http_write_cb);
        SETOPT(h, CURLOPT_WRITEDATA, t);
        SETOPT(h, CURLOPT_HEADERFUNCTION, http_header_cb);
        SETOPT(h, CURLOPT_HEADERDATA, t);
        SETOPT(h, CURLOPT_NOPROGRESS, 0L);
        SETOPT(h, CURLOPT_XFERINFOFUNCTION, http_xferinfo_cb);
        SETOPT(h, CURLOPT_XFERINFODATA, t);
        SETOPT(h, CURLOPT_USERAGENT, "ssf-sessiond/" SSF_VERSION);
        SETOPT(h, CURLOPT_HTTPHEADER, headers);
        SETOPT(h, CURLOPT_ERRORBUFFER, errbuf);

        if (streq(method, "GET"))
                SETOPT(h, CURLOPT_HTTPGET, 1L);
        else {
                if (streq(method, "POST"))
                        SETOPT(h, CURLOPT_POST, 1L);
                else
                        SETOPT(h, CURLOPT_CUSTOMREQUEST, method);
                if (body || streq(method, "POST")) {
                        SETOPT(h, CURLOPT_POSTFIELDS, body ?: "");
                        SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (body ? strlen(body) : 0));
                }
        }

        return 0;
}

/* Runs the transfer on the client's private multi handle, so that http_client_abort() can wake
 * it at once with curl_multi_wakeup(). Returns the transfer's CURLcode. */
static CURLcode http_perform(HttpClient *c) {
        CURLcode result = CURLE_OK;
        bool done = false, looked = false;
        CURLMcode mc;

        mc = curl_multi_add_handle(c->multi, c->easy);
        if (mc != CURLM_OK)
                return mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;

        while (!done) {
                CURLMsg *msg;
                int running = 0, left;

                if (atomic_load(&c->abort)) {
                        result = CURLE_ABORTED_BY_CALLBACK;
                        break;
                }

                mc = curl_multi_perform(c->multi, &running);
                if (mc != CURLM_OK) {
                        result = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
                        break;
                }

                while ((msg = curl_multi_info_read(c->multi, &left)))
                        if (msg->msg == CURLMSG_DONE && msg->easy_handle == c->easy) {
                                result = msg->data.result;
                                done = true;
                        }
                if (done)
                        break;
                /* Interrupted: abort unless the answer has begun to arrive. What is already
                 * in the socket counts: curl reads only what its last poll saw, so the first time
                 * one more poll (not waiting) and one more perform go first. */
                if (c->interruptible && atomic_load(&c->interrupt) &&
                    !atomic_load(&c->answering)) {
                        if (!looked) {
                                looked = true;
                                (void) curl_multi_poll(c->multi, NULL, 0, 0, NULL);
                                continue;
                        }
                        result = CURLE_ABORTED_BY_CALLBACK;
                        break;
                }
                if (running == 0) {
                        /* Nothing running and no completion message: should not happen. */
                        result = CURLE_FAILED_INIT;
                        break;
                }

                mc = curl_multi_poll(c->multi, NULL, 0, HTTP_POLL_MS, NULL);
                if (mc != CURLM_OK) {
                        result = CURLE_FAILED_INIT;
                        break;
                }
        }

        (void) curl_multi_remove_handle(c->multi, c->easy);
        return result;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

uint64_t http_client_hold_left(const HttpClient *c) {
        uint64_t now = now_usec();

        return c && c->hold_until_usec > now ? c->hold_until_usec - now : 0;
}

void http_client_hold_merge(HttpClient *c, const HttpClient *other) {
        if (c && other)
                c->hold_until_usec = MAX(c->hold_until_usec, other->hold_until_usec);
}

/* A 429 or 503 with a usable Retry-After starts the hold. */
static void http_maybe_hold(HttpClient *c, const char *url, long status, const char *retry_after) {
        uint64_t sec;

        if ((status != 429 && status != 503) || !retry_after)
                return;
        if (retry_after_parse(retry_after, (uint64_t) time(NULL), &sec) < 0) {
                log_debug("HTTP %ld from %s with an unusable Retry-After, ignored", status, url);
                return;
        }
        c->hold_until_usec = MAX(c->hold_until_usec, now_usec() + sec * 1000000u);
        log_info("Transmitter answered HTTP %ld with Retry-After: %s; no request to it for %" PRIu64
                 " s", status, retry_after, sec);
}

static int http_request_internal(HttpClient *c, const char *method, const char *url,
                                 const char *authorization, const char *body,
                                 const char *content_type, uint64_t timeout_usec, size_t max_body,
                                 bool held, bool interruptible, HttpResponse *ret);

int http_request(HttpClient *c, const char *method, const char *url, const char *authorization,
                 const char *body, uint64_t timeout_usec, size_t max_body, HttpResponse *ret) {
        return http_request_internal(c, method, url, authorization, body, NULL, timeout_usec,
                                     max_body, true, false, ret);
}

int http_request_interruptible(HttpClient *c, const char *method, const char *url,
                               const char *authorization, const char *body, uint64_t timeout_usec,
                               size_t max_body, HttpResponse *ret) {
        return http_request_internal(c, method, url, authorization, body, NULL, timeout_usec,
                                     max_body, true, true, ret);
}

int http_request_full(HttpClient *c, const char *method, const char *url, const char *authorization,
                      const char *body, const char *content_type, uint64_t timeout_usec,
                      size_t max_body, HttpResponse *ret) {
        return http_request_internal(c, method, url, authorization, body, content_type,
                                     timeout_usec, max_body, true, false, ret);
}

int http_get_unheld(HttpClient *c, const char *url, uint64_t timeout_usec, size_t max_body,
                    HttpResponse *ret) {
        return http_request_internal(c, "GET", url, NULL, NULL, NULL, timeout_usec, max_body,
                                     false, false, ret);
}

static int http_request_internal(HttpClient *c, const char *method, const char *url,
                                 const char *authorization, const char *body,
                                 const char *content_type, uint64_t timeout_usec, size_t max_body,
                                 bool held, bool interruptible, HttpResponse *ret) {
        _cleanup_(curl_slist_free_erasep) struct curl_slist *headers = NULL;
        _cleanup_(http_transfer_done) HttpTransfer t = {};
        char errbuf[CURL_ERROR_SIZE] = "";
        long timeout_ms, status = 0, os_errno = 0;
        CURLcode code;
        int r;

        if (!c || !method || !url || !ret)
                return -EINVAL;
        if (strncasecmp(url, "https://", 8) != 0)
                return -EINVAL;
        if (!http_method_valid(method))
                return -EINVAL;
        if (timeout_usec == 0)
                return -EINVAL;
        if (authorization && !http_header_value_safe(authorization))
                return -EINVAL;
        if (content_type && (isempty(content_type) || !http_header_value_safe(content_type)))
                return -EINVAL;

        /* An abort requested while no request ran applies to this one; so does an interruption,
         * to an interruptible one: any other leaves it for the next that is. */
        if (atomic_exchange(&c->abort, false) ||
            (interruptible && atomic_exchange(&c->interrupt, false)))
                return -ECANCELED;
        if (held && http_client_hold_left(c) > 0) {
                log_debug("HTTP %s %s held back: the transmitter asked us to retry later", method,
                          url);
                return -EBUSY;
        }

        timeout_ms = timeout_usec / 1000 + (timeout_usec % 1000 != 0);
        if (timeout_usec / 1000 >= (uint64_t) LONG_MAX)
                timeout_ms = LONG_MAX;

        t.client = c;
        t.max_body = max_body > 0 ? max_body : HTTP_MAX_BODY_DEFAULT;

        {
                struct curl_slist *l;

                l = curl_slist_append(headers, "Accept: application/json");
                if (!l)
                        return -ENOMEM;
                headers = l;
                if (body) {
                        _cleanup_free_ char *h = NULL;

                        if (asprintf(&h, "Content-Type: %s", content_type ?: "application/json") < 0)
                                return -ENOMEM;
                        l = curl_slist_append(headers, h);
                        if (!l)
                                return -ENOMEM;
                        headers = l;
                }
                if (authorization) {
                        _cleanup_erase_free_ char *h = NULL;

                        if (asprintf(&h, "Authorization: %s", authorization) < 0)
                                return -ENOMEM;
                        l = curl_slist_append(headers, h);
                        if (!l)
                                return -ENOMEM;
                        headers = l;
                }
                /* No "Expect: 100-continue" round trip for our small bodies. */
                l = curl_slist_append(headers, "Expect:");
                if (!l)
                        return -ENOMEM;
                headers = l;
        }

        r = http_setup(c, &t, method, url, body, timeout_ms, headers, errbuf);
        if (r < 0)
                return r;

        atomic_store(&c->answering, false);
        c->interruptible = interruptible;
        code = http_perform(c);
        c->interruptible = false;
        /* An interruption that came while the answer arrived was for this request too: the
         * caller looks at what it was for once this returns. */
        if (interruptible)
                atomic_store(&c->interrupt, false);

        /* Don't keep pointers to our stack and list in the handle beyond this call. */
        (void) curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, NULL);
        (void) curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, NULL);
        (void) curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, NULL);

        if (code == CURLE_ABORTED_BY_CALLBACK) {
                atomic_store(&c->abort, false);
                log_debug("HTTP %s %s aborted", method, url);
                return -ECANCELED;
        }
        if (t.too_big || code == CURLE_FILESIZE_EXCEEDED) {
                log_debug("HTTP %s %s: response larger than %zu bytes", method, url, t.max_body);
                return -EFBIG;
        }
        if (code != CURLE_OK) {
                (void) curl_easy_getinfo(c->easy, CURLINFO_OS_ERRNO, &os_errno);
                r = http_curl_error_to_errno(code, os_errno);
                /* What the errno hides matters to the admin when a proxy or a client
                 * certificate is involved, or the peer's TLS alert says what it wanted. */
                log_full(c->proxy || c->cert_blob || strstr(errbuf, " alert ") ? LOG_WARNING : LOG_DEBUG,
                         "HTTP %s %s failed%s%s: %s%s%s%s", method, url,
                         c->proxy ? " through proxy " : "", strempty(c->proxy),
                         curl_easy_strerror(code), errbuf[0] ? ": " : "", errbuf,
                         strstr(errbuf, "certificate required") && !c->cert_blob
                                 ? " (the server wants a TLS client certificate: tls_client_cert, tls_client_key)"
                                 : "");
                return r;
        }

        if (curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status <= 0)
                return -EPROTO;

        if (held)
                http_maybe_hold(c, url, status, t.retry_after);
        *ret = (HttpResponse) {
                .status = status,
                .body = t.body_len > 0 ? TAKE_PTR(t.body) : NULL,
                .body_len = t.body_len,
                .content_type = TAKE_PTR(t.content_type),
                .www_authenticate = TAKE_PTR(t.www_authenticate),
                .retry_after = TAKE_PTR(t.retry_after),
        };
        return 0;
}
