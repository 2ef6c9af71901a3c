/* SPDX-License-Identifier: MIT */
#pragma once

/* JWKS (RFC 7517): parsed once per fetch into OpenSSL EVP_PKEYs, each pinned to the algorithms
 * its kty/crv allow. Keys that are not signature keys (use != "sig", key_ops without "verify"),
 * private or symmetric ("oct") keys, or unsupported types are skipped, not fatal.
 * Runs in the network worker. */

#include <stddef.h>

#include <openssl/evp.h>

#define JWKS_MAX_SIZE (256u * 1024u)
#define JWKS_MAX_KEYS 64u

typedef enum JwsAlg {
        JWS_ALG_RS256,
        JWS_ALG_RS384,
        JWS_ALG_RS512,
        JWS_ALG_PS256,
        JWS_ALG_PS384,
        JWS_ALG_PS512,
        JWS_ALG_ES256,
        JWS_ALG_ES384,
        JWS_ALG_ES512,
        JWS_ALG_EDDSA, /* "EdDSA" and "Ed25519" (RFC 9864) */
        _JWS_ALG_MAX,
        _JWS_ALG_INVALID = -22,
} JwsAlg;

/* Returns the alg for an allow-listed name ("none", HS* and unknown names: _JWS_ALG_INVALID). */
JwsAlg jws_alg_from_string(const char *s);
const char *jws_alg_to_string(JwsAlg a);

typedef struct Jwks Jwks;

typedef struct JwksKey {
        char *kid;          /* may be NULL */
        EVP_PKEY *pkey;
        JwsAlg alg;         /* the key's "alg" member, or _JWS_ALG_INVALID when absent */
        /* A verification context set up once for ready_alg (RS256 for an RSA key without
         * "alg"), which jws_verify() copies for each SET; NULL for other kinds of keys. */
        EVP_MD_CTX *ready;
        JwsAlg ready_alg;
} JwksKey;

/* Parses a JWKS document (at most JWKS_MAX_SIZE bytes, JWKS_MAX_KEYS usable keys). Returns 0
 * and a new Jwks (possibly with zero usable keys: -ENOKEY instead), or -EBADMSG / -E2BIG /
 * -ENOMEM. */
int jwks_parse(const char *json, size_t len, Jwks **ret);
Jwks *jwks_free(Jwks *j);
size_t jwks_count(const Jwks *j);

/* Finds the key for a JWS header's kid and alg: the kid must match when given (when kid is
 * NULL and exactly one key can verify alg, that key); the key's type/curve must fit alg, and
 * its own "alg" must equal alg when present. Returns the borrowed key, or NULL. */
const JwksKey *jwks_find(const Jwks *j, const char *kid, JwsAlg alg);
