/* SPDX-License-Identifier: MIT */
#pragma once

/* Compact JWS (RFC 7515) parsing and signature verification with OpenSSL EVP. Pure: no I/O,
 * no logging above debug. Runs in the network worker. */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "jwks.h"

#define JWS_MAX_SIZE (64u * 1024u) /* a whole compact SET */
#define JWS_MAX_KID 256u           /* the header's kid and typ, in bytes */
#define JWS_MAX_TYP 256u

typedef struct Jws {
        JwsAlg alg;
        char *kid;              /* NULL when absent */
        char *typ;              /* NULL when absent */
        uint8_t *payload;       /* decoded payload bytes, NUL-terminated for convenience */
        size_t payload_len;
        char *signing_input;    /* "b64header.b64payload", as received */
        size_t signing_input_len;
        uint8_t *signature;
        size_t signature_len;
} Jws;

/* Splits and decodes token (exactly three base64url parts, no padding, no whitespace). Rejects
 * "none", HS*, unknown algs, a "crit" header (none supported), "b64": false, a header that is
 * not a JSON object, and duplicate header members. Returns 0 or -EBADMSG (malformed),
 * -EPROTONOSUPPORT (alg not allowed), -E2BIG (over JWS_MAX_SIZE). */
int jws_parse(const char *token, size_t len, Jws **ret);
Jws *jws_free(Jws *j);

/* Verifies the signature with the matching key of keys (jwks_find with jws->kid and alg).
 * ES* signatures are raw R||S of the curve's size and are converted to DER. Returns 0,
 * -ENOKEY (no usable key for kid/alg), -EKEYREJECTED (bad signature). */
int jws_verify(const Jws *jws, const Jwks *keys);

/* Sets md_ctx up to verify one alg signature with pkey (the hash, and the padding of RSA
 * algs): what jws_verify() does per SET, or copies from the key's prepared context
 * (JwksKey.ready). Returns 0 or -EKEYREJECTED. */
int jws_verify_init(EVP_MD_CTX *md_ctx, EVP_PKEY *pkey, JwsAlg alg);

/* base64url without padding (RFC 7515 §2). decode rejects '=', '+', '/', whitespace and
 * non-canonical trailing bits. Return 0 or -EBADMSG/-ENOMEM; *ret is NUL-terminated. */
int base64url_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len);
int base64url_encode(const uint8_t *in, size_t len, char **ret);
