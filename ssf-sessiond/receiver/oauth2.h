/* SPDX-License-Identifier: MIT */
#pragma once

/* auth = oauth2: access tokens from an OAuth 2.0 token endpoint with the client credentials
 * grant (RFC 6749 §4.4). The client authenticates as oauth2_client_auth says: HTTP Basic
 * (client_secret_basic, §2.3.1), client_id and client_secret in the form body
 * (client_secret_post, §2.3.1), or a JWT client assertion it signs with its private key
 * (private_key_jwt, RFC 7523 §2.2: RS256 with an RSA key, ES256 with a P-256 key). The client
 * secret or the private key is read from its file when the client is made (in the network
 * worker, before it drops privileges) and kept in memory, wiped when freed; a corrected file is
 * read when the worker starts again (SIGHUP). The access token is cached with its lifetime and
 * fetched again when it is close to expiry (oauth2_refresh_due()) or after the transmitter
 * refused it (oauth2_client_invalidate()). Neither the secret nor a token is ever logged. Not
 * thread-safe: one user (the poller). Runs in the network worker. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "config.h"
#include "http.h"
#include "macro.h"

#define OAUTH2_RESPONSE_MAX (64u * 1024u)         /* token endpoint response body */
#define OAUTH2_ACCESS_TOKEN_MAX (16u * 1024u)
#define OAUTH2_EXPIRES_IN_MAX (365 * 24 * 3600)   /* longer lifetimes are shortened to this */
#define OAUTH2_REFRESH_MARGIN_USEC (60u * 1000000u)
#define OAUTH2_ERROR_MAX 64u                      /* longest "error" code we report */
#define OAUTH2_DESCRIPTION_MAX 200u               /* error_description is cut to this */
#define OAUTH2_ASSERTION_LIFETIME_SEC 120         /* exp - iat of a client assertion */

typedef struct OAuth2Client OAuth2Client;

/* From c's oauth2_token_url (https only), oauth2_client_id, oauth2_client_auth,
 * oauth2_client_secret_file (basic, post: read now, with secret_read_file()'s rules) or
 * oauth2_private_key and oauth2_key_id (private_key_jwt: read now with
 * oauth2_load_private_key()), and oauth2_scope. No token is fetched yet. Returns 0, -EINVAL
 * (not auth = oauth2 settings), -ENOMEM or the reading error (logged). */
int oauth2_client_new(const TransmitterConfig *c, OAuth2Client **ret);
/* Wipes the secret and the cached token. Returns NULL. */
OAuth2Client *oauth2_client_free(OAuth2Client *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(OAuth2Client *, oauth2_client_free)

/* The Authorization header value "Bearer <access token>" in *ret (free with erase_and_free()):
 * the cached token, or a new one from the token endpoint when none is cached or
 * oauth2_client_needs_refresh(). Failures are logged (an error response with its "error"
 * code) and return -EACCES (the endpoint refused: 4xx, e.g. invalid_client), -EBADMSG /
 * -EPROTONOSUPPORT (unusable response), -EPROTO (other HTTP status) or the http_request()
 * errors (-ECANCELED is not logged). */
int oauth2_client_authorization(OAuth2Client *o, HttpClient *http, char **ret);
/* No token cached, or the cached one is due for refresh now (after a failed refresh, not
 * before 10 s have passed: the old token is used meanwhile). */
bool oauth2_client_needs_refresh(const OAuth2Client *o);
/* Forgets the cached token (the transmitter answered 401 with it). */
void oauth2_client_invalidate(OAuth2Client *o);

/* Pure helpers, no I/O and no logging above debug. */

/* application/x-www-form-urlencoded encoding of s (RFC 6749 Appendix B): ALPHA, DIGIT and
 * "-._~" stay, space becomes '+', every other octet %XX (upper-case hex). */
int oauth2_form_encode(const char *s, char **ret);
/* "grant_type=client_credentials&scope=<encoded scope>" (no scope parameter when scope is
 * NULL or empty). */
int oauth2_request_body(const char *scope, char **ret);
/* Appends "&name=<form_encode(value)>" to the form body *body (replaced; the old buffer is
 * wiped, as it may hold a secret). Returns 0, -EINVAL, -E2BIG or -ENOMEM. */
int oauth2_form_append(char **body, const char *name, const char *value);

/* private_key_jwt (RFC 7523 §2.2, OpenID Connect Core §9): the client assertion, a compact
 * JWS with header {"alg", "typ": "JWT", "kid" (when key_id is not empty)} and claims iss = sub
 * = client_id, aud = audience (the token endpoint URL), jti (128 random bits, base64url), iat
 * = now and exp = now + OAUTH2_ASSERTION_LIFETIME_SEC (seconds since the epoch). RS256 for an
 * RSA key, ES256 (R || S, 64 bytes) for a P-256 key. Returns 0 with *ret (free()), -EINVAL,
 * -EKEYREJECTED (another kind of key), -EIO (OpenSSL failed) or -ENOMEM. */
int oauth2_client_assertion(EVP_PKEY *key, const char *key_id, const char *client_id,
                            const char *audience, int64_t now, char **ret);
/* An unencrypted PEM private key (any PEM form OpenSSL reads) of at most 64 KiB that can sign
 * a client assertion: RSA of at least 2048 bits, or EC on P-256. Returns 0 with *ret,
 * -EBADMSG (not such PEM), -EKEYREJECTED (another kind of key), -EINVAL or -ENOMEM. */
int oauth2_private_key_parse(const char *pem, size_t len, EVP_PKEY **ret);
/* Reads path (regular, owned by root, no access for group or others, at most 64 KiB) and
 * parses it with oauth2_private_key_parse(). Failures are logged. */
int oauth2_load_private_key(const char *path, EVP_PKEY **ret);
/* "Basic " + base64(form_encode(client_id) ":" form_encode(secret)) (RFC 6749 §2.3.1). *ret is
 * secret: free it with erase_and_free(). -EINVAL for an empty client_id, -E2BIG when too long. */
int oauth2_basic_authorization(const char *client_id, const char *secret, char **ret);
/* Parses a successful token response (RFC 6749 §5.1): a JSON object (no duplicate members,
 * body at most OAUTH2_RESPONSE_MAX bytes) with an "access_token" string that is an RFC 6750
 * b64token of at most OAUTH2_ACCESS_TOKEN_MAX bytes, "token_type" "Bearer" (any case), and an
 * optional "expires_in" non-negative integer (capped at OAUTH2_EXPIRES_IN_MAX; -1 when
 * absent). Other members are ignored. Returns 0, -EFBIG, -EBADMSG, or -EPROTONOSUPPORT (not a
 * Bearer token); on failure *reterr_why (optional) says what was wrong, without any of the
 * body. */
int oauth2_parse_token_response(const char *body, size_t len, char **ret_token, int64_t *ret_expires_in,
                                const char **reterr_why);
/* Parses an error response (RFC 6749 §5.2): a JSON object with an "error" string of at most
 * OAUTH2_ERROR_MAX characters from the RFC's set (%x20-21 / %x23-5B / %x5D-7E), and an optional
 * "error_description" string, cut to OAUTH2_DESCRIPTION_MAX with characters outside that set
 * replaced by '?'. *ret_description is NULL when absent. Returns 0 or -EBADMSG / -EFBIG. */
int oauth2_parse_error_response(const char *body, size_t len, char **ret_error, char **ret_description);
/* Whether a token obtained at obtained_usec with lifetime expires_in seconds (-1: unknown, never
 * due) must be replaced at now_usec: when it expires within OAUTH2_REFRESH_MARGIN_USEC, or
 * within half its lifetime for lifetimes under two margins (so a short-lived token is still used
 * for a while instead of being fetched again before every request). */
bool oauth2_refresh_due(uint64_t obtained_usec, int64_t expires_in, uint64_t now_usec);
