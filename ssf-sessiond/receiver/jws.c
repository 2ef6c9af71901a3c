/* SPDX-License-Identifier: MIT */
/*
 * Compact JWS (RFC 7515 §7.1) with an algorithm allow-list, verified with OpenSSL EVP over the
 * exact bytes received. Never logs above debug: the caller decides what is worth reporting.
 * Runs in the network worker.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "jwks.h"
#include "jws.h"
#include "log.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(ECDSA_SIG *, ECDSA_SIG_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free);

/* The value of each base64url character (RFC 4648 §5), -1 for any other byte. */
static const int8_t b64url_values[256] = {
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1,
        52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
        -1,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
        15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, 63,
        -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
        41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

static int b64url_value(unsigned char c) {
        return b64url_values[c];
}

int base64url_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len) {
        uint8_t *out;
        size_t o = 0, i = 0;
        uint32_t acc = 0;
        unsigned bits = 0;

        if (!in || !ret || !ret_len)
                return -EINVAL;
        if (len % 4 == 1)
                return -EBADMSG; /* cannot be produced by an encoder */
        if (len > SIZE_MAX / 3 - 4)
                return -E2BIG;

        out = malloc(len / 4 * 3 + 3 + 1);
        if (!out)
                return -ENOMEM;

        /* Four characters, three bytes at a time; the rest (two or three) bit by bit. */
        for (; len - i >= 4; i += 4) {
                const unsigned char *q = (const unsigned char *) in + i;
                int a = b64url_value(q[0]), b = b64url_value(q[1]), c = b64url_value(q[2]),
                    d = b64url_value(q[3]);
                uint32_t x;

                if ((a | b | c | d) < 0) {
                        free(out);
                        return -EBADMSG;
                }
                x = (uint32_t) a << 18 | (uint32_t) b << 12 | (uint32_t) c << 6 | (uint32_t) d;
                out[o++] = (uint8_t) (x >> 16);
                out[o++] = (uint8_t) (x >> 8);
                out[o++] = (uint8_t) x;
        }
        for (; i < len; i++) {
                int v = b64url_value((unsigned char) in[i]);
                if (v < 0) {
                        free(out);
                        return -EBADMSG;
                }
                acc = (acc << 6) | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (uint8_t) (acc >> bits);
                        acc &= (1u << bits) - 1;
                }
        }
        /* Leftover bits must be zero: one encoding per byte string (RFC 4648 §3.5). */
        if (acc != 0) {
                free(out);
                return -EBADMSG;
        }
        out[o] = 0;
        *ret = out;
        *ret_len = o;
        return 0;
}

int base64url_encode(const uint8_t *in, size_t len, char **ret) {
        static const char alphabet[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        char *out;
        size_t o = 0, i;

        if ((!in && len > 0) || !ret)
                return -EINVAL;
        if (len > (SIZE_MAX - 4) / 4 * 3)
                return -E2BIG;
        out = malloc(len / 3 * 4 + 4 + 1);
        if (!out)
                return -ENOMEM;

        for (i = 0; i + 3 <= len; i += 3) {
                uint32_t v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
                out[o++] = alphabet[(v >> 18) & 63];
                out[o++] = alphabet[(v >> 12) & 63];
                out[o++] = alphabet[(v >> 6) & 63];
                out[o++] = alphabet[v & 63];
        }
        if (len - i == 1) {
                uint32_t v = (uint32_t) in[i] << 16;
                out[o++] = alphabet[(v >> 18) & 63];
                out[o++] = alphabet[(v >> 12) & 63];
        } else if (len - i == 2) {
                uint32_t v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;
                out[o++] = alphabet[(v >> 18) & 63];
                out[o++] = alphabet[(v >> 12) & 63];
                out[o++] = alphabet[(v >> 6) & 63];
        }
        out[o] = 0;
        *ret = out;
        return 0;
}

Jws *jws_free(Jws *j) {
        if (!j)
                return NULL;
        free(j->kid);
        free(j->typ);
        free(j->payload);
        free(j->signing_input);
        free(j->signature);
        free(j);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Jws *, jws_free);

/* Header members whose meaning we implement or may safely ignore. jku/x5u/jwk/x5c are
 * ignored on purpose: keys come only from the transmitter's jwks_uri, never from the token. */
static int check_header(json_t *h, Jws *j) {
        json_t *v;

        v = json_object_get(h, "alg");
        if (!json_is_string(v))
                return -EBADMSG;
        j->alg = jws_alg_from_string(json_string_value(v));
        if (j->alg < 0) {
                log_debug("JWS: alg not allowed");
                return -EPROTONOSUPPORT;
        }

        /* We implement no extension, so any "crit" makes the JWS invalid (RFC 7515 §4.1.11). */
        if (json_object_get(h, "crit")) {
                log_debug("JWS: crit header present, rejected");
                return -EBADMSG;
        }
        /* RFC 7797 unencoded payloads are not supported. */
        v = json_object_get(h, "b64");
        if (v && !json_is_true(v)) {
                log_debug("JWS: b64 header not true, rejected");
                return -EBADMSG;
        }

        v = json_object_get(h, "kid");
        if (v) {
                if (!json_is_string(v) || json_string_length(v) > JWS_MAX_KID)
                        return -EBADMSG;
                j->kid = strdup(json_string_value(v));
                if (!j->kid)
                        return -ENOMEM;
        }
        v = json_object_get(h, "typ");
        if (v) {
                if (!json_is_string(v) || json_string_length(v) > JWS_MAX_TYP)
                        return -EBADMSG;
                j->typ = strdup(json_string_value(v));
                if (!j->typ)
                        return -ENOMEM;
        }
        return 0;
}

/* The last protected header this thread took, as received (its base64url text) and as
 * check_header() read it. A transmitter signs its SETs with one header, so a backlog's SETs
 * carry the same bytes: they are not decoded and parsed again. Nothing but those bytes
 * decides what the header says, and a header that was refused is never kept. */
typedef struct HeaderSeen {
        char text[512];
        size_t len; /* 0: none */
        JwsAlg alg;
        char kid[JWS_MAX_KID + 1], typ[JWS_MAX_TYP + 1];
        bool has_kid, has_typ;
} HeaderSeen;

static __thread HeaderSeen header_seen;

static int header_from_seen(const HeaderSeen *h, Jws *j) {
        j->alg = h->alg;
        if ((h->has_kid && !(j->kid = strdup(h->kid))) ||
            (h->has_typ && !(j->typ = strdup(h->typ))))
                return -ENOMEM;
        return 0;
}

static void header_remember(HeaderSeen *h, const char *text, size_t len, const Jws *j) {
        h->len = 0;
        if (len > sizeof(h->text))
                return;
        memcpy(h->text, text, len);
        h->alg = j->alg;
        h->has_kid = j->kid;
        h->has_typ = j->typ;
        /* check_header() bounded both. */
        (void) snprintf(h->kid, sizeof(h->kid), "%s", strempty(j->kid));
        (void) snprintf(h->typ, sizeof(h->typ), "%s", strempty(j->typ));
        h->len = len;
}

/* The protected header (text, len: its base64url form): j->alg, kid and typ. */
static int parse_header(const char *text, size_t len, Jws *j) {
        _cleanup_(json_decrefp) json_t *h = NULL;
        _cleanup_free_ uint8_t *hdr = NULL;
        json_error_t jerr;
        size_t hdr_len = 0;
        int r;

        if (header_seen.len == len && memcmp(header_seen.text, text, len) == 0)
                return header_from_seen(&header_seen, j);
        r = base64url_decode(text, len, &hdr, &hdr_len);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        h = json_loadb((const char *) hdr, hdr_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!h) {
                log_debug("JWS: header is not JSON: %s", jerr.text);
                return -EBADMSG;
        }
        if (!json_is_object(h))
                return -EBADMSG;
        r = check_header(h, j);
        if (r < 0)
                return r;
        header_remember(&header_seen, text, len, j);
        return 0;
}

int jws_parse(const char *token, size_t len, Jws **ret) {
        _cleanup_(jws_freep) Jws *j = NULL;
        const char *dot1, *dot2;
        int r;

        if (!token || !ret)
                return -EINVAL;
        if (len > JWS_MAX_SIZE)
                return -E2BIG;
        if (len == 0 || memchr(token, 0, len))
                return -EBADMSG;

        /* Exactly three parts: two dots. Five parts would be JWE, which we do not accept. */
        dot1 = memchr(token, '.', len);
        if (!dot1)
                return -EBADMSG;
        dot2 = memchr(dot1 + 1, '.', len - (size_t) (dot1 + 1 - token));
        if (!dot2)
                return -EBADMSG;
        if (memchr(dot2 + 1, '.', len - (size_t) (dot2 + 1 - token)))
                return -EBADMSG;

        size_t h_len = (size_t) (dot1 - token);
        size_t p_len = (size_t) (dot2 - dot1 - 1);
        size_t s_len = len - (size_t) (dot2 + 1 - token);
        if (h_len == 0)
                return -EBADMSG;

        j = calloc(1, sizeof(Jws));
        if (!j)
                return -ENOMEM;
        j->alg = _JWS_ALG_INVALID;

        r = parse_header(token, h_len, j);
        if (r < 0)
                return r;
        if (s_len == 0)
                return -EBADMSG; /* only "none" has an empty signature */

        r = base64url_decode(dot1 + 1, p_len, &j->payload, &j->payload_len);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        r = base64url_decode(dot2 + 1, s_len, &j->signature, &j->signature_len);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        if (j->signature_len == 0)
                return -EBADMSG;

        j->signing_input_len = (size_t) (dot2 - token);
        j->signing_input = strndup(token, j->signing_input_len);
        if (!j->signing_input)
                return -ENOMEM;

        *ret = TAKE_PTR(j);
        return 0;
}

static const EVP_MD *alg_md(JwsAlg alg) {
        switch (alg) {
        case JWS_ALG_RS256:
        case JWS_ALG_PS256:
        case JWS_ALG_ES256:
                return EVP_sha256();
        case JWS_ALG_RS384:
        case JWS_ALG_PS384:
        case JWS_ALG_ES384:
                return EVP_sha384();
        case JWS_ALG_RS512:
        case JWS_ALG_PS512:
        case JWS_ALG_ES512:
                return EVP_sha512();
        default:
                return NULL; /* EdDSA: no pre-hash */
        }
}

static size_t ec_coordinate_size(JwsAlg alg) {
        switch (alg) {
        case JWS_ALG_ES256:
                return 32;
        case JWS_ALG_ES384:
                return 48;
        case JWS_ALG_ES512:
                return 66;
        default:
                return 0;
        }
}

/* JOSE ECDSA signatures are R||S, each left-padded to the coordinate size (RFC 7518 §3.4);
 * OpenSSL wants DER. */
static int ecdsa_raw_to_der(const uint8_t *sig, size_t sig_len, size_t coord, uint8_t **ret,
                            size_t *ret_len) {
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *es = NULL;
        _cleanup_(BN_freep) BIGNUM *r = NULL, *s = NULL;
        unsigned char *der = NULL;
        int der_len;

        if (coord == 0 || sig_len != 2 * coord)
                return -EKEYREJECTED;
        r = BN_bin2bn(sig, (int) coord, NULL);
        s = BN_bin2bn(sig + coord, (int) coord, NULL);
        if (!r || !s)
                return -ENOMEM;
        if (BN_is_zero(r) || BN_is_zero(s))
                return -EKEYREJECTED;
        es = ECDSA_SIG_new();
        if (!es)
                return -ENOMEM;
        if (ECDSA_SIG_set0(es, r, s) != 1)
                return -ENOMEM;
        r = s = NULL; /* owned by es now */

        der_len = i2d_ECDSA_SIG(es, &der);
        if (der_len <= 0)
                return -ENOMEM;
        *ret = der;
        *ret_len = (size_t) der_len;
        return 0;
}

int jws_verify_init(EVP_MD_CTX *md_ctx, EVP_PKEY *pkey, JwsAlg alg) {
        EVP_PKEY_CTX *pctx = NULL; /* owned by md_ctx */

        if (EVP_DigestVerifyInit(md_ctx, &pctx, alg_md(alg), NULL, pkey) != 1)
                return -EKEYREJECTED;
        switch (alg) {
        case JWS_ALG_RS256:
        case JWS_ALG_RS384:
        case JWS_ALG_RS512:
                if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
                        return -EKEYREJECTED;
                break;
        case JWS_ALG_PS256:
        case JWS_ALG_PS384:
        case JWS_ALG_PS512:
                /* RFC 7518 §3.5: MGF1 with the same hash, salt length = hash length. */
                if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
                    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0 ||
                    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, alg_md(alg)) <= 0)
                        return -EKEYREJECTED;
                break;
        default:
                break;
        }
        /* The context is used once: its final step need not work on a copy of itself. */
        EVP_MD_CTX_set_flags(md_ctx, EVP_MD_CTX_FLAG_FINALISE);
        return 0;
}

int jws_verify(const Jws *jws, const Jwks *keys) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md_ctx = NULL;
        const JwksKey *key;
        const uint8_t *sig;
        size_t sig_len;
        uint8_t *der = NULL;
        int r, ok;

        if (!jws || !keys)
                return -EINVAL;

        key = jwks_find(keys, jws->kid, jws->alg);
        if (!key) {
                log_debug("JWS: no key for kid and alg %s", strempty(jws_alg_to_string(jws->alg)));
                return -ENOKEY;
        }

        sig = jws->signature;
        sig_len = jws->signature_len;
        switch (jws->alg) {
        case JWS_ALG_ES256:
        case JWS_ALG_ES384:
        case JWS_ALG_ES512:
                r = ecdsa_raw_to_der(jws->signature, jws->signature_len, ec_coordinate_size(jws->alg),
                                     &der, &sig_len);
                if (r < 0)
                        return r;
                sig = der;
                break;
        case JWS_ALG_EDDSA:
                if (sig_len != 64)
                        return -EKEYREJECTED;
                break;
        default:
                break;
        }

        md_ctx = EVP_MD_CTX_new();
        if (!md_ctx) {
                r = -ENOMEM;
                goto out;
        }
        /* A copy of the key's prepared context, when it has one for this alg: the same state
         * as a new setup, without looking up the algorithm's implementation again. */
        if (key->ready && key->ready_alg == jws->alg) {
                if (EVP_MD_CTX_copy_ex(md_ctx, key->ready) != 1)
                        goto fail;
        } else if (jws_verify_init(md_ctx, key->pkey, jws->alg) < 0)
                goto fail;

        ok = EVP_DigestVerify(md_ctx, sig, sig_len, (const unsigned char *) jws->signing_input,
                              jws->signing_input_len);
        if (ok == 1) {
                r = 0;
                goto out;
        }
        log_debug("JWS: %s signature does not verify", jws_alg_to_string(jws->alg));
        ERR_clear_error();
        r = -EKEYREJECTED;
        goto out;

fail:
        {
                char buf[256];
                ERR_error_string_n(ERR_peek_last_error(), buf, sizeof buf);
                log_debug("JWS: verification setup failed: %s", buf);
                ERR_clear_error();
        }
        r = -EKEYREJECTED;
out:
        OPENSSL_free(der);
        return r;
}
