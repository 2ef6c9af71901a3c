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
#include <openssl/evp.h>

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

struct OAuth2Client {
        char *token_url;
        char *client_id;
        char *secret;           /* the client secret (wiped on free) */
        char *scope;

        char *access_token;     /* secret; NULL: none cached */
        uint64_t obtained_usec; /* CLOCK_BOOTTIME when it was requested */
        int64_t expires_in;     /* seconds, -1: not given */
        uint64_t retry_usec;    /* CLOCK_BOOTTIME: no refresh attempt before this */
};

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

/* ---- client ------------------------------------------------------------------------------- */

int oauth2_client_new(const TransmitterConfig *c, OAuth2Client **ret) {
        _cleanup_(oauth2_client_freep) OAuth2Client *o = NULL;
        int r;

        if (!c || !ret)
                return -EINVAL;
        if (isempty(c->oauth2_token_url) || !startswith(c->oauth2_token_url, "https://") ||
            isempty(c->oauth2_client_id) || isempty(c->oauth2_client_secret_file))
                return -EINVAL;

        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->expires_in = -1;
        o->token_url = strdup(c->oauth2_token_url);
        o->client_id = strdup(c->oauth2_client_id);
        o->scope = strdup(strempty(c->oauth2_scope));
        if (!o->token_url || !o->client_id || !o->scope)
                return -ENOMEM;
        r = secret_read_file(c->oauth2_client_secret_file, "OAuth 2.0 client secret file", &o->secret);
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

/* A non-200 answer of the token endpoint: log it with its error code when it has one. */
static int oauth2_refused(const OAuth2Client *o, const HttpResponse *resp) {
        _cleanup_free_ char *error = NULL, *desc = NULL;
        int r;

        r = oauth2_parse_error_response(resp->body, resp->body_len, &error, &desc);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                log_error("OAuth 2.0 token endpoint '%s' answered HTTP %ld", o->token_url, resp->status);
                return resp->status == 401 || resp->status == 403 ? -EACCES : -EPROTO;
        }
        log_error("OAuth 2.0 token endpoint '%s' refused the client credentials grant for client '%s' "
                  "(HTTP %ld): error '%s'%s%s%s", o->token_url, o->client_id, resp->status, error,
                  desc ? " ('" : "", strempty(desc), desc ? "')" : "");
        return resp->status >= 400 && resp->status < 500 ? -EACCES : -EPROTO;
}

/* Requests a new access token and caches it. */
static int oauth2_fetch_one(OAuth2Client *o, HttpClient *http) {
        _cleanup_erase_free_ char *basic = NULL, *token = NULL;
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_free_ char *body = NULL;
        const char *why = "it is unusable";
        int64_t expires_in = -1;
        uint64_t started;
        int r;

        r = oauth2_basic_authorization(o->client_id, o->secret, &basic);
        if (r < 0)
                return log_error_errno(r, "Cannot encode the OAuth 2.0 client credentials: %m");
        r = oauth2_request_body(o->scope, &body);
        if (r < 0)
                return log_error_errno(r, "Cannot encode the OAuth 2.0 token request: %m");

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
