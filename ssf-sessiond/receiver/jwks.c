/* SPDX-License-Identifier: MIT */
/*
 * JWKS (RFC 7517) -> OpenSSL EVP_PKEYs, imported once per fetch. Each key remembers which
 * family of algorithms its kty/crv allows, so a JWS header can never make an RSA key verify an
 * ECDSA signature (or the reverse), and a key's own "alg" pins it further.
 * Runs in the network worker.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "jwks.h"
#include "jws.h"
#include "log.h"
#include "macro.h"

#define JWKS_MAX_ARRAY (JWKS_MAX_KEYS * 4u) /* entries looked at, usable or not */
#define JWKS_MAX_KID 256u
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192

typedef enum KeyKind {
        KEY_RSA,
        KEY_EC_P256,
        KEY_EC_P384,
        KEY_EC_P521,
        KEY_ED25519,
} KeyKind;

typedef struct JwksEntry {
        JwksKey key; /* first member: jwks_find() hands out &entry->key */
        KeyKind kind;
} JwksEntry;

struct Jwks {
        JwksEntry *entries;
        size_t n_entries;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM *, OSSL_PARAM_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free);

static const char *const alg_names[_JWS_ALG_MAX] = {
        [JWS_ALG_RS256] = "RS256", [JWS_ALG_RS384] = "RS384", [JWS_ALG_RS512] = "RS512",
        [JWS_ALG_PS256] = "PS256", [JWS_ALG_PS384] = "PS384", [JWS_ALG_PS512] = "PS512",
        [JWS_ALG_ES256] = "ES256", [JWS_ALG_ES384] = "ES384", [JWS_ALG_ES512] = "ES512",
        [JWS_ALG_EDDSA] = "EdDSA",
};

JwsAlg jws_alg_from_string(const char *s) {
        if (!s)
                return _JWS_ALG_INVALID;
        /* Algorithm names are case-sensitive (RFC 7515 §4.1.1). */
        for (int i = 0; i < _JWS_ALG_MAX; i++)
                if (streq(s, alg_names[i]))
                        return (JwsAlg) i;
        if (streq(s, "Ed25519")) /* RFC 9864 fully-specified name */
                return JWS_ALG_EDDSA;
        return _JWS_ALG_INVALID;
}

const char *jws_alg_to_string(JwsAlg a) {
        if (a < 0 || a >= _JWS_ALG_MAX)
                return NULL;
        return alg_names[a];
}

static bool kind_fits_alg(KeyKind kind, JwsAlg alg) {
        switch (alg) {
        case JWS_ALG_RS256:
        case JWS_ALG_RS384:
        case JWS_ALG_RS512:
        case JWS_ALG_PS256:
        case JWS_ALG_PS384:
        case JWS_ALG_PS512:
                return kind == KEY_RSA;
        case JWS_ALG_ES256:
                return kind == KEY_EC_P256;
        case JWS_ALG_ES384:
                return kind == KEY_EC_P384;
        case JWS_ALG_ES512:
                return kind == KEY_EC_P521;
        case JWS_ALG_EDDSA:
                return kind == KEY_ED25519;
        default:
                return false;
        }
}

static void openssl_debug(const char *what) {
        char buf[256];
        unsigned long e = ERR_peek_last_error();

        if (e != 0) {
                ERR_error_string_n(e, buf, sizeof buf);
                log_debug("JWKS: %s: %s", what, buf);
        } else
                log_debug("JWKS: %s", what);
        ERR_clear_error();
}

/* Decodes a base64url member into bytes. Returns 0, -ENOENT (absent), -EBADMSG. */
static int get_b64(json_t *jwk, const char *name, uint8_t **ret, size_t *ret_len) {
        json_t *v = json_object_get(jwk, name); /* borrowed */
        if (!v)
                return -ENOENT;
        if (!json_is_string(v))
                return -EBADMSG;
        return base64url_decode(json_string_value(v), json_string_length(v), ret, ret_len);
}

static int import_rsa(json_t *jwk, EVP_PKEY **ret) {
        _cleanup_free_ uint8_t *n = NULL, *e = NULL;
        size_t n_len = 0, e_len = 0;
        int r;

        r = get_b64(jwk, "n", &n, &n_len);
        if (r < 0)
                return -EBADMSG;
        r = get_b64(jwk, "e", &e, &e_len);
        if (r < 0)
                return -EBADMSG;

        /* Tolerate (non-canonical) leading zero bytes, then bound the sizes. */
        size_t n_off = 0, e_off = 0;
        while (n_off < n_len && n[n_off] == 0)
                n_off++;
        while (e_off < e_len && e[e_off] == 0)
                e_off++;
        if (n_len - n_off > RSA_MAX_BITS / 8 || e_len - e_off == 0 || e_len - e_off > 8)
                return -EBADMSG;
        if ((e[e_len - 1] & 1) == 0 || (e_len - e_off == 1 && e[e_len - 1] < 3))
                return -EBADMSG; /* e must be odd and >= 3 */

        _cleanup_(BN_freep) BIGNUM *bn_n = BN_bin2bn(n + n_off, (int) (n_len - n_off), NULL);
        _cleanup_(BN_freep) BIGNUM *bn_e = BN_bin2bn(e + e_off, (int) (e_len - e_off), NULL);
        if (!bn_n || !bn_e)
                return -ENOMEM;
        if (BN_num_bits(bn_n) < RSA_MIN_BITS) {
                log_debug("JWKS: RSA key of %d bits rejected (minimum %d)", BN_num_bits(bn_n),
                          RSA_MIN_BITS);
                return -EKEYREJECTED;
        }
        if (!BN_is_odd(bn_n))
                return -EBADMSG;

        _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        if (!bld)
                return -ENOMEM;
        if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) != 1 ||
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) != 1)
                return -ENOMEM;
        _cleanup_(OSSL_PARAM_freep) OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
        if (!params)
                return -ENOMEM;

        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
        if (!ctx)
                return -ENOMEM;
        EVP_PKEY *pkey = NULL;
        if (EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
                openssl_debug("RSA key import failed");
                return -EBADMSG;
        }
        *ret = pkey;
        return 0;
}

static int import_ec(json_t *jwk, KeyKind *ret_kind, EVP_PKEY **ret) {
        static const struct {
                const char *crv, *group;
                size_t size;
                KeyKind kind;
        } curves[] = {
                { "P-256", "prime256v1", 32, KEY_EC_P256 },
                { "P-384", "secp384r1", 48, KEY_EC_P384 },
                { "P-521", "secp521r1", 66, KEY_EC_P521 },
        };
        _cleanup_free_ uint8_t *x = NULL, *y = NULL;
        size_t x_len = 0, y_len = 0;
        const char *crv = json_string_value(json_object_get(jwk, "crv"));
        size_t i;

        if (!crv)
                return -EBADMSG;
        for (i = 0; i < ARRAY_SIZE(curves); i++)
                if (streq(crv, curves[i].crv))
                        break;
        if (i >= ARRAY_SIZE(curves))
                return -EOPNOTSUPP;

        if (get_b64(jwk, "x", &x, &x_len) < 0 || get_b64(jwk, "y", &y, &y_len) < 0)
                return -EBADMSG;
        /* RFC 7518 §6.2.1.2/3: the full coordinate length, not shortened. */
        if (x_len != curves[i].size || y_len != curves[i].size)
                return -EBADMSG;

        uint8_t point[1 + 2 * 66];
        size_t point_len = 1 + 2 * curves[i].size;
        point[0] = 0x04; /* uncompressed */
        memcpy(point + 1, x, x_len);
        memcpy(point + 1 + x_len, y, y_len);

        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *) (uintptr_t) curves[i].group, 0),
                OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, point_len),
                OSSL_PARAM_construct_end(),
        };
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (!ctx)
                return -ENOMEM;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        if (EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
                openssl_debug("EC key import failed");
                return -EBADMSG;
        }

        /* The point must be on the curve and not the identity (invalid-curve attacks). */
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!check)
                return -ENOMEM;
        if (EVP_PKEY_public_check(check) != 1) {
                openssl_debug("EC public key check failed");
                return -EBADMSG;
        }

        *ret_kind = curves[i].kind;
        *ret = TAKE_PTR(pkey);
        return 0;
}

static int import_okp(json_t *jwk, EVP_PKEY **ret) {
        _cleanup_free_ uint8_t *x = NULL;
        size_t x_len = 0;
        const char *crv = json_string_value(json_object_get(jwk, "crv"));

        if (!crv)
                return -EBADMSG;
        if (!streq(crv, "Ed25519"))
                return -EOPNOTSUPP; /* Ed448, X25519, X448: not signature algs we allow */
        if (get_b64(jwk, "x", &x, &x_len) < 0 || x_len != 32)
                return -EBADMSG;

        EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, x_len);
        if (!pkey) {
                openssl_debug("Ed25519 key import failed");
                return -EBADMSG;
        }
        *ret = pkey;
        return 0;
}

static bool is_signature_key(json_t *jwk) {
        json_t *use = json_object_get(jwk, "use"), *ops = json_object_get(jwk, "key_ops");

        if (use && !(json_is_string(use) && streq(json_string_value(use), "sig")))
                return false;
        if (ops) {
                size_t i;
                json_t *op;
                bool verify = false;

                if (!json_is_array(ops))
                        return false;
                json_array_foreach(ops, i, op)
                        if (json_is_string(op) && streq(json_string_value(op), "verify"))
                                verify = true;
                if (!verify)
                        return false;
        }
        return true;
}

static bool has_private_members(json_t *jwk) {
        static const char *const priv[] = { "d", "p", "q", "dp", "dq", "qi", "oth", "k" };

        for (size_t i = 0; i < ARRAY_SIZE(priv); i++)
                if (json_object_get(jwk, priv[i]))
                        return true;
        return false;
}

/* Imports one JWK. Returns 1 and fills *e for a usable key, 0 to skip it, -ENOMEM. */
static int import_key(json_t *jwk, size_t idx, JwksEntry *e) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        KeyKind kind = KEY_RSA;
        JwsAlg alg = _JWS_ALG_INVALID;
        const char *kty, *kid = NULL;
        json_t *v;
        int r;

        if (!json_is_object(jwk)) {
                log_debug("JWKS: key %zu is not an object, skipped", idx);
                return 0;
        }
        kty = json_string_value(json_object_get(jwk, "kty"));
        if (!kty) {
                log_debug("JWKS: key %zu has no kty, skipped", idx);
                return 0;
        }
        if (!is_signature_key(jwk)) {
                log_debug("JWKS: key %zu is not a signature verification key, skipped", idx);
                return 0;
        }
        if (has_private_members(jwk)) {
                log_debug("JWKS: key %zu carries private or symmetric material, skipped", idx);
                return 0;
        }
        v = json_object_get(jwk, "kid");
        if (v) {
                if (!json_is_string(v) || json_string_length(v) == 0 ||
                    json_string_length(v) > JWKS_MAX_KID) {
                        log_debug("JWKS: key %zu has an invalid kid, skipped", idx);
                        return 0;
                }
                kid = json_string_value(v);
        }
        v = json_object_get(jwk, "alg");
        if (v) {
                alg = jws_alg_from_string(json_string_value(v));
                if (alg < 0) {
                        log_debug("JWKS: key %zu has an alg that is not allowed, skipped", idx);
                        return 0;
                }
        }

        if (streq(kty, "RSA")) {
                kind = KEY_RSA;
                r = import_rsa(jwk, &pkey);
        } else if (streq(kty, "EC"))
                r = import_ec(jwk, &kind, &pkey);
        else if (streq(kty, "OKP")) {
                kind = KEY_ED25519;
                r = import_okp(jwk, &pkey);
        } else {
                log_debug("JWKS: key %zu has unsupported kty, skipped", idx);
                return 0;
        }
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                log_debug("JWKS: key %zu could not be imported (%s), skipped", idx, strerror(-r));
                return 0;
        }
        if (alg >= 0 && !kind_fits_alg(kind, alg)) {
                log_debug("JWKS: key %zu: alg %s does not fit its type, skipped", idx,
                          jws_alg_to_string(alg));
                return 0;
        }

        char *kid_copy = NULL;
        if (kid) {
                kid_copy = strdup(kid);
                if (!kid_copy)
                        return -ENOMEM;
        }
        *e = (JwksEntry) {
                .key = { .kid = kid_copy, .pkey = TAKE_PTR(pkey), .alg = alg },
                .kind = kind,
        };
        /* An RSA key verifies SETs of one alg, RS256 unless it says otherwise (the SSF and
         * RISC profiles' alg): its context is set up here once, not for every SET. Without it
         * (out of memory) each SET sets one up. */
        if (kind == KEY_RSA) {
                JwsAlg ready = alg >= 0 ? alg : JWS_ALG_RS256;

                e->key.ready = EVP_MD_CTX_new();
                if (e->key.ready && jws_verify_init(e->key.ready, e->key.pkey, ready) < 0) {
                        EVP_MD_CTX_free(e->key.ready);
                        e->key.ready = NULL;
                        ERR_clear_error();
                }
                e->key.ready_alg = ready;
        }
        return 1;
}

int jwks_parse(const char *json, size_t len, Jwks **ret) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        json_error_t jerr;
        json_t *keys, *jwk;
        size_t i;
        int r;

        if (!json || !ret)
                return -EINVAL;
        if (len > JWKS_MAX_SIZE)
                return -E2BIG;

        root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                log_debug("JWKS: not JSON: %s (line %d)", jerr.text, jerr.line);
                return -EBADMSG;
        }
        if (!json_is_object(root))
                return -EBADMSG;
        keys = json_object_get(root, "keys"); /* borrowed */
        if (!json_is_array(keys))
                return -EBADMSG;
        if (json_array_size(keys) > JWKS_MAX_ARRAY)
                return -E2BIG;

        Jwks *j = calloc(1, sizeof(Jwks));
        if (!j)
                return -ENOMEM;
        j->entries = calloc(MAX(json_array_size(keys), (size_t) 1), sizeof(JwksEntry));
        if (!j->entries) {
                jwks_free(j);
                return -ENOMEM;
        }

        json_array_foreach(keys, i, jwk) {
                JwksEntry e;

                r = import_key(jwk, i, &e);
                if (r < 0) {
                        jwks_free(j);
                        return r;
                }
                if (r == 0)
                        continue;
                if (j->n_entries >= JWKS_MAX_KEYS) {
                        free(e.key.kid);
                        EVP_MD_CTX_free(e.key.ready);
                        EVP_PKEY_free(e.key.pkey);
                        jwks_free(j);
                        return -E2BIG;
                }
                j->entries[j->n_entries++] = e;
        }

        log_debug("JWKS: %zu usable key(s) of %zu", j->n_entries, json_array_size(keys));
        if (j->n_entries == 0) {
                jwks_free(j);
                return -ENOKEY;
        }
        *ret = j;
        return 0;
}

Jwks *jwks_free(Jwks *j) {
        if (!j)
                return NULL;
        for (size_t i = 0; i < j->n_entries; i++) {
                free(j->entries[i].key.kid);
                EVP_MD_CTX_free(j->entries[i].key.ready);
                EVP_PKEY_free(j->entries[i].key.pkey);
        }
        free(j->entries);
        free(j);
        return NULL;
}

size_t jwks_count(const Jwks *j) {
        return j ? j->n_entries : 0;
}

static bool entry_fits(const JwksEntry *e, JwsAlg alg) {
        if (!kind_fits_alg(e->kind, alg))
                return false;
        /* The key's own "alg" pins it (key/alg confusion defence). */
        if (e->key.alg >= 0 && e->key.alg != alg)
                return false;
        return true;
}

const JwksKey *jwks_find(const Jwks *j, const char *kid, JwsAlg alg) {
        const JwksEntry *found = NULL;

        if (!j || alg < 0 || alg >= _JWS_ALG_MAX)
                return NULL;

        if (kid) {
                for (size_t i = 0; i < j->n_entries; i++) {
                        const JwksEntry *e = &j->entries[i];
                        if (e->key.kid && streq(e->key.kid, kid) && entry_fits(e, alg))
                                return &e->key;
                }
                return NULL;
        }

        /* No kid: only an unambiguous key will do. */
        for (size_t i = 0; i < j->n_entries; i++) {
                const JwksEntry *e = &j->entries[i];
                if (!entry_fits(e, alg))
                        continue;
                if (found)
                        return NULL;
                found = e;
        }
        return found ? &found->key : NULL;
}
