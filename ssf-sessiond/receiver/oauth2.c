/* SPDX-License-Identifier: MIT */
/*
 * OAuth 2.0 client credentials (oauth2.h): the access token the worker presents to the
 * transmitter. Runs in the network worker.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "fileio.h"
#include "jws.h"
#include "log.h"
#include "macro.h"
#include "oauth2.h"
#include "secret.h"

#define OAUTH2_TIMEOUT_USEC (15u * 1000000u)
/* After a failed early refresh, the cached token is used this long before the next attempt. */
#define OAUTH2_RETRY_USEC (10u * 1000000u)
#define OAUTH2_FORM_CONTENT_TYPE "application/x-www-form-urlencoded"
/* Longest client_id or secret we encode (each; a secret file holds at most 16 KiB). */
#define OAUTH2_CREDENTIAL_MAX (16u * 1024u)

/* RFC 7523 §2.2 */
#define OAUTH2_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define OAUTH2_PRIVATE_KEY_MAX (64u * 1024u)

struct OAuth2Client {
        char *token_url;
        char *client_id;
        OAuth2ClientAuth auth;  /* how it authenticates to the token endpoint */
        char *secret;           /* basic, post: the client secret (wiped on free) */
        EVP_PKEY *key;          /* private_key_jwt: the signing key */
        char *key_id;           /* private_key_jwt: "kid", or NULL */
        char *scope;

        char *access_token;     /* secret; NULL: none cached */
        uint64_t obtained_usec; /* CLOCK_BOOTTIME when it was requested */
        int64_t expires_in;     /* seconds, -1: not given */
        uint64_t retry_usec;    /* CLOCK_BOOTTIME: no refresh attempt before this */
};

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);

static uint64_t boottime_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_BOOTTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* ---- pure helpers ------------------------------------------------------------------------- */

int oauth2_form_encode(const char *s, char **ret) {
        static const char hex[] = "0123456789ABCDEF";
        size_t n;
        char *out, *p;

        if (!s || !ret)
                return -EINVAL;
        n = strlen(s);
        if (n > OAUTH2_CREDENTIAL_MAX)
                return -E2BIG;
        out = malloc(n * 3 + 1);
        if (!out)
                return -ENOMEM;
        p = out;
        for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
                if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                    strchr("-._~", *c))
                        *p++ = (char) *c;
                else if (*c == ' ')
                        *p++ = '+';
                else {
                        *p++ = '%';
                        *p++ = hex[*c >> 4];
                        *p++ = hex[*c & 0xf];
                }
        }
        *p = 0;
        *ret = out;
        return 0;
}

int oauth2_request_body(const char *scope, char **ret) {
        _cleanup_free_ char *enc = NULL;
        char *b;
        int r;

        if (!ret)
                return -EINVAL;
        if (isempty(scope)) {
                b = strdup("grant_type=client_credentials");
                if (!b)
                        return -ENOMEM;
                *ret = b;
                return 0;
        }
        r = oauth2_form_encode(scope, &enc);
        if (r < 0)
                return r;
        if (asprintf(&b, "grant_type=client_credentials&scope=%s", enc) < 0)
                return -ENOMEM;
        *ret = b;
        return 0;
}

int oauth2_basic_authorization(const char *client_id, const char *secret, char **ret) {
        _cleanup_erase_free_ char *id = NULL, *pw = NULL, *joined = NULL, *b64 = NULL;
        size_t n;
        char *h;
        int r;

        if (isempty(client_id) || !secret || !ret)
                return -EINVAL;
        r = oauth2_form_encode(client_id, &id);
        if (r < 0)
                return r;
        r = oauth2_form_encode(secret, &pw);
        if (r < 0)
                return r;
        if (asprintf(&joined, "%s:%s", id, pw) < 0)
                return -ENOMEM;
        n = strlen(joined);
        /* Both parts are bounded by OAUTH2_CREDENTIAL_MAX * 3: far below INT_MAX. */
        b64 = malloc((n + 2) / 3 * 4 + 1);
        if (!b64)
                return -ENOMEM;
        if (EVP_EncodeBlock((unsigned char *) b64, (const unsigned char *) joined, (int) n) < 0)
                return -EIO;
        if (asprintf(&h, "Basic %s", b64) < 0)
                return -ENOMEM;
        *ret = h;
        return 0;
}

/* RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool is_b64token(const char *s, size_t n) {
        size_t i = 0;

        while (i < n && ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
                         (s[i] >= '0' && s[i] <= '9') || strchr("-._~+/", s[i])))
                i++;
        if (i == 0)
                return false;
        while (i < n && s[i] == '=')
                i++;
        return i == n;
}

/* RFC 6749 §5.2: error and error_description characters. */
static bool is_error_char(char c) {
        return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
}

static int parse_json_object(const char *body, size_t len, json_t **ret) {
        json_error_t e;
        json_t *j;

        if (!body || len == 0)
                return -EBADMSG;
        if (len > OAUTH2_RESPONSE_MAX)
                return -EFBIG;
        j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
        if (!j) {
                log_debug("Invalid JSON: %s at line %d", e.text, e.line);
                return -EBADMSG;
        }
        if (!json_is_object(j)) {
                json_decref(j);
                return -EBADMSG;
        }
        *ret = j;
        return 0;
}

int oauth2_parse_token_response(const char *body, size_t len, char **ret_token, int64_t *ret_expires_in,
                                const char **reterr_why) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        const char *why, *tok;
        int64_t expires_in = -1;
        json_t *v;
        size_t n;
        char *copy;
        int r;

        if (!ret_token || !ret_expires_in)
                return -EINVAL;

        r = parse_json_object(body, len, &j);
        if (r < 0) {
                why = r == -EFBIG ? "the response is too large" : "the response is not a JSON object";
                goto fail;
        }

        v = json_object_get(j, "access_token"); /* borrowed */
        if (!json_is_string(v)) {
                why = "it has no \"access_token\" string";
                r = -EBADMSG;
                goto fail;
        }
        tok = json_string_value(v);
        n = json_string_length(v);
        if (n == 0 || n > OAUTH2_ACCESS_TOKEN_MAX || !is_b64token(tok, n)) {
                why = "its \"access_token\" is not a usable bearer token";
                r = -EBADMSG;
                goto fail;
        }

        /* RFC 6749 §5.1: token_type is required and case-insensitive. */
        v = json_object_get(j, "token_type");
        if (!json_is_string(v)) {
                why = "it has no \"token_type\" string";
                r = -EBADMSG;
                goto fail;
        }
        if (strcasecmp(json_string_value(v), "Bearer") != 0) {
                why = "its \"token_type\" is not \"Bearer\"";
                r = -EPROTONOSUPPORT;
                goto fail;
        }

        v = json_object_get(j, "expires_in");
        if (v) {
                if (!json_is_integer(v) || json_integer_value(v) < 0) {
                        why = "its \"expires_in\" is not a non-negative integer";
                        r = -EBADMSG;
                        goto fail;
                }
                expires_in = MIN((int64_t) json_integer_value(v), (int64_t) OAUTH2_EXPIRES_IN_MAX);
        }

        copy = strndup(tok, n);
        if (!copy)
                return -ENOMEM;
        *ret_token = copy;
        *ret_expires_in = expires_in;
        return 0;

fail:
        if (reterr_why)
                *reterr_why = why;
        return r;
}

int oauth2_parse_error_response(const char *body, size_t len, char **ret_error, char **ret_description) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        _cleanup_free_ char *error = NULL, *desc = NULL;
        const char *s;
        json_t *v;
        int r;

        if (!ret_error || !ret_description)
                return -EINVAL;
        r = parse_json_object(body, len, &j);
        if (r < 0)
                return r;

        s = json_string_value(json_object_get(j, "error"));
        if (isempty(s) || strlen(s) > OAUTH2_ERROR_MAX)
                return -EBADMSG;
        for (const char *p = s; *p; p++)
                if (!is_error_char(*p))
                        return -EBADMSG;
        error = strdup(s);
        if (!error)
                return -ENOMEM;

        v = json_object_get(j, "error_description");
        if (json_is_string(v)) {
                size_t n = MIN(json_string_length(v), (size_t) OAUTH2_DESCRIPTION_MAX);

                desc = strndup(json_string_value(v), n);
                if (!desc)
                        return -ENOMEM;
                for (char *p = desc; *p; p++)
                        if (!is_error_char(*p))
                                *p = '?';
        }

        *ret_error = TAKE_PTR(error);
        *ret_description = TAKE_PTR(desc);
        return 0;
}

bool oauth2_refresh_due(uint64_t obtained_usec, int64_t expires_in, uint64_t now_usec) {
        uint64_t lifetime, margin;

        if (expires_in < 0)
                return false; /* no known expiry: used until the transmitter refuses it */
        lifetime = (uint64_t) expires_in * 1000000u;
        margin = MIN((uint64_t) OAUTH2_REFRESH_MARGIN_USEC, lifetime / 2);
        return now_usec + margin >= obtained_usec + lifetime;
}

int oauth2_form_append(char **body, const char *name, const char *value) {
        _cleanup_erase_free_ char *enc = NULL;
        char *n;
        int r;

        if (!body || !*body || isempty(name) || !value)
                return -EINVAL;
        r = oauth2_form_encode(value, &enc);
        if (r < 0)
                return r;
        if (asprintf(&n, "%s&%s=%s", *body, name, enc) < 0)
                return -ENOMEM;
        erase_and_free(*body); /* it may hold a secret already */
        *body = n;
        return 0;
}

static int oauth2_key_alg(EVP_PKEY *key, const char **ret_alg) {
        char group[64];

        if (EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "RSA-PSS")) {
                if (!EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_get_bits(key) < 2048)
                        return -EKEYREJECTED;
                *ret_alg = "RS256";
                return 0;
        }
        if (EVP_PKEY_is_a(key, "EC")) {
                if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                    sizeof(group), NULL) ||
                    !streq(group, "prime256v1"))
                        return -EKEYREJECTED;
                *ret_alg = "ES256";
                return 0;
        }
        return -EKEYREJECTED;
}

static int no_passphrase(char *buf, int size, int rwflag, void *userdata) {
        return -1;
}

int oauth2_private_key_parse(const char *pem, size_t len, EVP_PKEY **ret) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        const char *alg;
        BIO *bio;

        if (!pem || len == 0 || len > OAUTH2_PRIVATE_KEY_MAX || len > INT_MAX || !ret)
                return -EINVAL;
        bio = BIO_new_mem_buf(pem, (int) len);
        if (!bio)
                return -ENOMEM;
        /* No passphrase: an encrypted key fails here instead of prompting. */
        key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
        BIO_free(bio);
        if (!key) {
                unsigned long e = ERR_peek_last_error();
                char buf[256];

                ERR_error_string_n(e, buf, sizeof(buf));
                log_debug("Cannot parse the private key: %s", buf);
                ERR_clear_error();
                return -EBADMSG;
        }
        if (oauth2_key_alg(key, &alg) < 0)
                return -EKEYREJECTED;
        *ret = TAKE_PTR(key);
        return 0;
}

int oauth2_load_private_key(const char *path, EVP_PKEY **ret) {
        _cleanup_free_ char *pem = NULL;
        size_t len = 0;
        int r;

        if (!path || !ret)
                return -EINVAL;
        r = read_full_file(path, FILE_NOFOLLOW | FILE_REGULAR | FILE_OWNER | FILE_PRIVATE, (uid_t) -1,
                           OAUTH2_PRIVATE_KEY_MAX, &pem, &len);
        if (r == -EPERM || r == -EBADFD) {
                log_error("The OAuth 2.0 private key '%s' must be a regular file owned by root and "
                          "not accessible to group or others, refusing", path);
                return -EPERM;
        }
        if (r == -EFBIG) {
                log_error("The OAuth 2.0 private key '%s' is larger than %u bytes, refusing", path,
                          OAUTH2_PRIVATE_KEY_MAX);
                return r;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to read the OAuth 2.0 private key '%s': %m", path);
        r = oauth2_private_key_parse(pem, len, ret);
        explicit_bzero(pem, len);
        if (r == -EKEYREJECTED)
                log_error("The OAuth 2.0 private key '%s' is neither an RSA key of at least 2048 bits "
                          "(RS256) nor a P-256 key (ES256)", path);
        else if (r < 0 && r != -ENOMEM)
                log_error("The OAuth 2.0 private key '%s' is not an unencrypted PEM private key", path);
        return r;
}

/* base64url(JSON of j, compact, keys in insertion order). */
static int oauth2_b64_json(json_t *j, char **ret) {
        _cleanup_free_ char *text = NULL;

        text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
                return -ENOMEM;
        return base64url_encode((const uint8_t *) text, strlen(text), ret);
}

/* An ECDSA DER signature as JWS wants it: R || S, each 32 bytes (RFC 7518 §3.4). */
static int oauth2_ecdsa_der_to_raw(const unsigned char *der, size_t len, uint8_t raw[64]) {
        const unsigned char *p = der;
        const BIGNUM *r, *s;
        ECDSA_SIG *sig;
        int ok;

        if (len > LONG_MAX)
                return -EBADMSG;
        sig = d2i_ECDSA_SIG(NULL, &p, (long) len);
        if (!sig)
                return -EBADMSG;
        ECDSA_SIG_get0(sig, &r, &s);
        ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
        ECDSA_SIG_free(sig);
        return ok ? 0 : -EBADMSG;
}

int oauth2_client_assertion(EVP_PKEY *key, const char *key_id, const char *client_id,
                            const char *audience, int64_t now, char **ret) {
        _cleanup_(json_decrefp) json_t *header = NULL, *claims = NULL;
        _cleanup_free_ char *h64 = NULL, *c64 = NULL, *jti = NULL, *input = NULL, *s64 = NULL;
        _cleanup_free_ unsigned char *sig = NULL;
        uint8_t nonce[16], raw[64];
        EVP_MD_CTX *md = NULL;
        const char *alg;
        size_t sig_len = 0;
        char *out;
        int r;

        if (!key || isempty(client_id) || isempty(audience) || now < 0 || !ret)
                return -EINVAL;
        r = oauth2_key_alg(key, &alg);
        if (r < 0)
                return r;

        if (RAND_bytes(nonce, sizeof(nonce)) != 1)
                return -EIO;
        r = base64url_encode(nonce, sizeof(nonce), &jti);
        if (r < 0)
                return r;

        header = json_pack("{s:s, s:s}", "alg", alg, "typ", "JWT");
        if (!header)
                return -ENOMEM;
        if (!isempty(key_id) && json_object_set_new(header, "kid", json_string(key_id)) < 0)
                return -ENOMEM;
        claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", client_id, "sub", client_id,
                           "aud", audience, "jti", jti, "iat", (json_int_t) now, "exp",
                           (json_int_t) (now + OAUTH2_ASSERTION_LIFETIME_SEC));
        if (!claims)
                return -EINVAL; /* not UTF-8 */

        r = oauth2_b64_json(header, &h64);
        if (r >= 0)
                r = oauth2_b64_json(claims, &c64);
        if (r < 0)
                return r;
        if (asprintf(&input, "%s.%s", h64, c64) < 0)
                return -ENOMEM;

        md = EVP_MD_CTX_new();
        if (!md)
                return -ENOMEM;
        r = -EIO;
        if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
            EVP_DigestSign(md, NULL, &sig_len, (const unsigned char *) input, strlen(input)) != 1)
                goto out;
        sig = malloc(sig_len);
        if (!sig) {
                r = -ENOMEM;
                goto out;
        }
        if (EVP_DigestSign(md, sig, &sig_len, (const unsigned char *) input, strlen(input)) != 1)
                goto out;
        if (streq(alg, "ES256")) {
                r = oauth2_ecdsa_der_to_raw(sig, sig_len, raw);
                if (r >= 0)
                        r = base64url_encode(raw, sizeof(raw), &s64);
        } else
                r = base64url_encode(sig, sig_len, &s64);
        if (r < 0)
                goto out;
        if (asprintf(&out, "%s.%s", input, s64) < 0) {
                r = -ENOMEM;
                goto out;
        }
        *ret = out;
        r = 0;
out:
        if (r == -EIO) {
                log_debug("Signing the client assertion failed: %s",
                          ERR_reason_error_string(ERR_peek_last_error()) ?: "unknown error");
                ERR_clear_error();
        }
        EVP_MD_CTX_free(md);
        return r;
}

/* ---- client ------------------------------------------------------------------------------- */

int oauth2_client_new(const TransmitterConfig *c, OAuth2Client **ret) {
        _cleanup_(oauth2_client_freep) OAuth2Client *o = NULL;
        int r;

        if (!c || !ret)
                return -EINVAL;
        if (isempty(c->oauth2_token_url) || !startswith(c->oauth2_token_url, "https://") ||
            isempty(c->oauth2_client_id) || (unsigned) c->oauth2_client_auth >= _OAUTH2_CLIENT_AUTH_MAX)
                return -EINVAL;
        if (c->oauth2_client_auth == OAUTH2_CLIENT_AUTH_PRIVATE_KEY_JWT ? isempty(c->oauth2_private_key)
                                                                         : isempty(c->oauth2_client_secret_file))
                return -EINVAL;

        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->expires_in = -1;
        o->auth = c->oauth2_client_auth;
        o->token_url = strdup(c->oauth2_token_url);
        o->client_id = strdup(c->oauth2_client_id);
        o->scope = strdup(strempty(c->oauth2_scope));
        if (!o->token_url || !o->client_id || !o->scope)
                return -ENOMEM;
        if (!isempty(c->oauth2_key_id)) {
                o->key_id = strdup(c->oauth2_key_id);
                if (!o->key_id)
                        return -ENOMEM;
        }
        if (o->auth == OAUTH2_CLIENT_AUTH_PRIVATE_KEY_JWT)
                r = oauth2_load_private_key(c->oauth2_private_key, &o->key);
        else
                r = secret_read_file(c->oauth2_client_secret_file, "OAuth 2.0 client secret file",
                                     &o->secret);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

OAuth2Client *oauth2_client_free(OAuth2Client *o) {
        if (!o)
                return NULL;
        oauth2_client_invalidate(o);
        free(o->token_url);
        free(o->client_id);
        erase_and_free(o->secret);
        EVP_PKEY_free(o->key);
        free(o->key_id);
        free(o->scope);
        free(o);
        return NULL;
}

void oauth2_client_invalidate(OAuth2Client *o) {
        if (!o)
                return;
        o->access_token = erase_and_free(o->access_token);
        o->expires_in = -1;
        o->obtained_usec = o->retry_usec = 0;
}

bool oauth2_client_needs_refresh(const OAuth2Client *o) {
        uint64_t now = boottime_usec();

        if (!o || !o->access_token)
                return true;
        if (now < o->retry_usec)
                return false; /* the last early refresh failed: keep using the token for now */
        return oauth2_refresh_due(o->obtained_usec, o->expires_in, now);
}

/* The RFC 7591 name of the method, for messages. */
static const char *oauth2_client_auth_name(OAuth2ClientAuth a) {
        switch (a) {
        case OAUTH2_CLIENT_AUTH_POST:
                return "client_secret_post";
        case OAUTH2_CLIENT_AUTH_PRIVATE_KEY_JWT:
                return "private_key_jwt";
        default:
                return "client_secret_basic";
        }
}

/* A non-200 answer of the token endpoint: log it with its error code when it has one. */
static int oauth2_refused(const OAuth2Client *o, const HttpResponse *resp) {
        _cleanup_free_ char *error = NULL, *desc = NULL;
        int r;

        r = oauth2_parse_error_response(resp->body, resp->body_len, &error, &desc);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                log_error("OAuth 2.0 token endpoint '%s' answered HTTP %ld (client '%s' "
                          "authenticated with %s)", o->token_url, resp->status, o->client_id,
                          oauth2_client_auth_name(o->auth));
                return resp->status == 401 || resp->status == 403 ? -EACCES : -EPROTO;
        }
        log_error("OAuth 2.0 token endpoint '%s' refused the client credentials grant for client '%s' "
                  "authenticated with %s (HTTP %ld): error '%s'%s%s%s", o->token_url, o->client_id,
                  oauth2_client_auth_name(o->auth), resp->status, error, desc ? " ('" : "",
                  strempty(desc), desc ? "')" : "");
        return resp->status >= 400 && resp->status < 500 ? -EACCES : -EPROTO;
}

/* Requests a new access token and caches it. */
static int oauth2_fetch_one(OAuth2Client *o, HttpClient *http) {
        _cleanup_erase_free_ char *basic = NULL, *token = NULL, *body = NULL;
        _cleanup_(http_response_done) HttpResponse resp = {};
        const char *why = "it is unusable";
        int64_t expires_in = -1;
        uint64_t started;
        int r;

        r = oauth2_request_body(o->scope, &body);
        if (r < 0)
                return log_error_errno(r, "Cannot encode the OAuth 2.0 token request: %m");
        switch (o->auth) {
        case OAUTH2_CLIENT_AUTH_BASIC:
                r = oauth2_basic_authorization(o->client_id, o->secret, &basic);
                break;
        case OAUTH2_CLIENT_AUTH_POST: /* RFC 6749 §2.3.1 */
                r = oauth2_form_append(&body, "client_id", o->client_id);
                if (r >= 0)
                        r = oauth2_form_append(&body, "client_secret", o->secret);
                break;
        case OAUTH2_CLIENT_AUTH_PRIVATE_KEY_JWT: { /* RFC 7523 §2.2 */
                _cleanup_free_ char *assertion = NULL;

                r = oauth2_client_assertion(o->key, o->key_id, o->client_id, o->token_url,
                                            (int64_t) time(NULL), &assertion);
                if (r >= 0)
                        r = oauth2_form_append(&body, "client_assertion_type", OAUTH2_ASSERTION_TYPE);
                if (r >= 0)
                        r = oauth2_form_append(&body, "client_assertion", assertion);
                break;
        }
        default:
                r = -EINVAL;
        }
        if (r < 0)
                return log_error_errno(r, "Cannot encode the OAuth 2.0 client credentials (%s): %m",
                                       oauth2_client_auth_name(o->auth));

        started = boottime_usec();
        r = http_request_full(http, "POST", o->token_url, basic, body, OAUTH2_FORM_CONTENT_TYPE,
                              OAUTH2_TIMEOUT_USEC, OAUTH2_RESPONSE_MAX, &resp);
        if (r == -ECANCELED)
                return r; /* stopping or reloading: not an error */
        if (r < 0)
                return log_error_errno(r, "OAuth 2.0 token request to '%s' failed: %m", o->token_url);
        if (resp.status != 200)
                return oauth2_refused(o, &resp);

        r = oauth2_parse_token_response(resp.body, resp.body_len, &token, &expires_in, &why);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                log_error("OAuth 2.0 token endpoint '%s' sent a token response that cannot be used: %s",
                          o->token_url, why);
                return r;
        }

        erase_and_free(o->access_token);
        o->access_token = TAKE_PTR(token);
        o->obtained_usec = started;
        o->expires_in = expires_in;
        o->retry_usec = 0;
        if (expires_in >= 0)
                log_info("Obtained an OAuth 2.0 access token from '%s', valid for %" PRIi64 " s",
                         o->token_url, expires_in);
        else
                log_info("Obtained an OAuth 2.0 access token from '%s' (no lifetime given)", o->token_url);
        return 0;
}

/* On failure the cached token, if any, stays (the caller may still use it while it lasts), and
 * the next attempt waits OAUTH2_RETRY_USEC. */
static int oauth2_fetch(OAuth2Client *o, HttpClient *http) {
        int r;

        r = oauth2_fetch_one(o, http);
        if (r < 0 && r != -ECANCELED && o->access_token)
                o->retry_usec = boottime_usec() + OAUTH2_RETRY_USEC;
        return r;
}

int oauth2_client_authorization(OAuth2Client *o, HttpClient *http, char **ret) {
        char *h;
        int r;

        if (!o || !http || !ret)
                return -EINVAL;
        if (oauth2_client_needs_refresh(o)) {
                r = oauth2_fetch(o, http);
                if (r < 0)
                        return r;
        }
        if (asprintf(&h, "Bearer %s", o->access_token) < 0)
                return -ENOMEM;
        *ret = h;
        return 0;
}
