/* SPDX-License-Identifier: MIT */
#pragma once

/* A bounded HTTPS client over libcurl (easy interface; one HttpClient per thread): https only
 * (also for redirects, which are not followed), TLS >= 1.2 with full certificate verification,
 * an optional extra CA file, connect and total timeouts, a response size cap, CURLOPT_NOSIGNAL,
 * no response decompression. The proxy is the one given with http_client_set_proxy() or none:
 * http_proxy/https_proxy/all_proxy/no_proxy in the environment are always ignored (CURLOPT_PROXY
 * "" without one, CURLOPT_NOPROXY "" with one). The trust store is ca_file when given (the
 * SSL_CERT_FILE/CURL_CA_BUNDLE environment variables never override it), else libcurl's default.
 * Requests send "Accept: application/json" and "User-Agent: ssf-sessiond/<version>"; the
 * Authorization value is never logged and is wiped from memory after the request.
 * Runs in the network worker. */

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_BODY_DEFAULT (1024u * 1024u)

typedef struct HttpClient HttpClient;

typedef struct HttpResponse {
        long status;          /* HTTP status code */
        char *body;           /* NUL-terminated, owned; NULL when empty */
        size_t body_len;
        char *content_type;   /* owned; NULL when absent */
        char *www_authenticate;
        char *retry_after;    /* the Retry-After value, owned; NULL when absent or too long */
} HttpResponse;

/* ca_file may be NULL (system trust store); it is read at once, so that a client made before
 * a privilege drop keeps trusting it. Returns 0 or -errno. */
int http_client_new(const char *ca_file, HttpClient **ret);
/* Mutual TLS (RFC 8705): every later request of c presents the PEM certificate (chain) in
 * cert_file and the PEM private key in key_file. Both are read now (before a privilege drop):
 * regular files owned by root, the certificate not writable and the key not accessible by
 * group or others, at most 256 KiB each. Failures are logged; returns 0, -EPERM (unsafe file),
 * -EINVAL (empty), or the read error. */
int http_client_set_client_cert(HttpClient *c, const char *cert_file, const char *key_file);
/* Every later request of c goes through proxy ("http://HOST:PORT" or "https://HOST:PORT",
 * without user information), tunnelled with CONNECT, so TLS to the transmitter is end to end
 * and the Authorization header never reaches the proxy; NULL: no proxy. The environment's proxy
 * variables are never read, with or without one. An https:// proxy is verified with the
 * client's trust anchors. Returns 0, -EINVAL, -EOPNOTSUPP (libcurl without HTTPS-proxy support,
 * logged) or -ENOMEM. */
int http_client_set_proxy(HttpClient *c, const char *proxy);
/* A new client with the same trust anchors, client certificate and proxy as c. */
int http_client_clone(const HttpClient *c, HttpClient **ret);
HttpClient *http_client_free(HttpClient *c);

/* Performs method on url (must be https://). authorization is the whole header value
 * ("Bearer …") or NULL; body is sent as application/json when not NULL. Waits at most
 * timeout_usec in total (must be > 0; connecting takes at most min(10 s, timeout)); a body
 * larger than max_body (0: HTTP_MAX_BODY_DEFAULT) aborts with -EFBIG. Returns 0 when a
 * response arrived (whatever its status: see ret->status), -EINVAL for a non-https URL or bad
 * arguments (method not upper-case letters, CR/LF in authorization, zero timeout), -ETIMEDOUT,
 * -ECONNREFUSED / -EHOSTUNREACH (also name resolution) / -ECONNRESET / -EPROTO (TLS or protocol
 * failure, untrusted certificate, unreadable ca_file), -EFBIG, -ECANCELED, -ENOMEM, -EBUSY
 * (held back by an earlier Retry-After, see http_client_hold_left()). *ret is
 * written only on success. The request can be aborted from another thread with
 * http_client_abort(). */
int http_request(HttpClient *c, const char *method, const char *url, const char *authorization,
                 const char *body, uint64_t timeout_usec, size_t max_body, HttpResponse *ret);
/* Like http_request(), but http_client_interrupt() may end it (a long poll). */
int http_request_interruptible(HttpClient *c, const char *method, const char *url,
                               const char *authorization, const char *body, uint64_t timeout_usec,
                               size_t max_body, HttpResponse *ret);
/* Like http_request(), but body is sent with the given Content-Type value (e.g.
 * "application/x-www-form-urlencoded"; NULL: application/json). content_type must be non-empty
 * and free of CR/LF (-EINVAL otherwise); it is ignored when body is NULL. */
int http_request_full(HttpClient *c, const char *method, const char *url, const char *authorization,
                      const char *body, const char *content_type, uint64_t timeout_usec,
                      size_t max_body, HttpResponse *ret);
/* GET url without Authorization and outside the Retry-After hold below: neither refused by it
 * nor setting it (JWKS fetches, which have a rate limit of their own). Otherwise as
 * http_request(). */
int http_get_unheld(HttpClient *c, const char *url, uint64_t timeout_usec, size_t max_body,
                    HttpResponse *ret);

/* The Retry-After hold: when a response is 429 or 503 with a Retry-After value
 * (retry-after.h: seconds or an HTTP date, at most 5 minutes), every later http_request() of
 * c returns -EBUSY at once, without touching the network, until that time has passed (the
 * response itself is returned as usual). One client talks to one transmitter, so this is
 * "no request to that transmitter until then". The time left, in microseconds (0: none). */
uint64_t http_client_hold_left(const HttpClient *c);
/* Takes other's hold when it ends later: two clients of one transmitter (a clone that made a
 * request for c) keep one hold. */
void http_client_hold_merge(HttpClient *c, const HttpClient *other);

/* Makes a running or the next http_request() of c return -ECANCELED soon (thread-safe). */
void http_client_abort(HttpClient *c);
/* The same for a request made with http_request_interruptible() (a long poll), except that one
 * whose answer's body has begun to arrive is read to its end and returned as usual: gets the
 * caller's attention sooner than a long poll would end, without throwing away SETs the
 * transmitter already handed to it. Any other request (a management call, a JWKS fetch) runs
 * to its end, and the interruption waits for the next interruptible one, which it cancels
 * before it starts (thread-safe). */
void http_client_interrupt(HttpClient *c);
void http_response_done(HttpResponse *r);
