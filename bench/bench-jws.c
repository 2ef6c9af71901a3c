/* SPDX-License-Identifier: MIT */
/*
 * SET verification throughput: set_verify() (jws_parse, typ, jws_verify with a cached JWKS,
 * claims) against the floor any implementation pays, a bare OpenSSL EVP_DigestVerify of the
 * same signing input with the same EVP_PKEY (fresh EVP_MD_CTX per op, signature already
 * decoded, ECDSA signature already in DER).
 *
 *   bench-jws [--data DIR] [--rounds R] [--round-ms MS]      wall clock, paired rounds
 *   bench-jws [--data DIR] --callgrind N                     N ops per case, one callgrind
 *                                                            dump per case (run under
 *                                                            valgrind --tool=callgrind)
 *
 * Wall-clock mode interleaves the two sides in R rounds of about MS ms each and reports the
 * median per-op time of each side and the median of the per-round ratios (paired, so a noisy
 * neighbour slows both sides of a round alike). Fixtures: tests/data/jose (python3-jwcrypto).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <valgrind/callgrind.h>

#include "bench-util.h"
#include "jwks.h"
#include "jws.h"
#include "set.h"

#define IAT 1700000000u

typedef struct Case {
        const char *label;  /* RS256 … */
        const char *file;   /* fixture name */
        char *token;
        size_t token_len;
        const JwksKey *key;
        JwsAlg alg;
        const EVP_MD *md;
        const unsigned char *input; /* signing input, borrowed from token */
        size_t input_len;
        uint8_t *sig;                /* what EVP_DigestVerify takes (DER for ECDSA) */
        size_t sig_len;
        Jws *parsed;                 /* for the jws_verify and claims breakdown */
} Case;

static Case cases[] = {
        { .label = "RS256", .file = "set-ok-rs256.jwt" },
        { .label = "PS256", .file = "set-ok-ps256-pinned.jwt" },
        { .label = "ES256", .file = "set-ok-es256.jwt" },
        { .label = "EdDSA", .file = "set-ok-eddsa.jwt" },
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static const SetExpect expect = {
        .issuer = "https://tr.example.test",
        .audience = "https://host1.example.test/ssf",
        .now_sec = IAT + 10,
        .max_skew_sec = 60,
};

static Jwks *keys;
static volatile int sink;

static _Noreturn void die(const char *what) {
        fprintf(stderr, "bench-jws: %s\n", what);
        exit(1);
}

static char *read_file(const char *dir, const char *name, size_t *ret_len) {
        char path[4096];
        FILE *f;
        char *buf;
        long n;

        snprintf(path, sizeof path, "%s/%s", dir, name);
        f = fopen(path, "re");
        if (!f) {
                fprintf(stderr, "bench-jws: cannot open %s: %s\n", path, strerror(errno));
                exit(1);
        }
        if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0)
                die("cannot size a fixture");
        buf = malloc((size_t) n + 1);
        if (!buf || fread(buf, 1, (size_t) n, f) != (size_t) n)
                die("cannot read a fixture");
        fclose(f);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                n--;
        buf[n] = 0;
        *ret_len = (size_t) n;
        return buf;
}

static const EVP_MD *md_for(JwsAlg a) {
        switch (a) {
        case JWS_ALG_RS256:
        case JWS_ALG_PS256:
        case JWS_ALG_ES256:
                return EVP_sha256();
        default:
                return NULL;
        }
}

/* Everything the baseline should not pay for: key lookup, base64url, R||S -> DER. */
static void prepare(Case *c, const char *dir) {
        Jws *j = NULL;
        SsfSet *s = NULL;
        SetError err;
        int r;

        c->token = read_file(dir, c->file, &c->token_len);
        r = jws_parse(c->token, c->token_len, &j);
        if (r < 0)
                die("fixture does not parse");
        c->alg = j->alg;
        c->md = md_for(j->alg);
        c->key = jwks_find(keys, j->kid, j->alg);
        if (!c->key)
                die("no key for a fixture");
        c->input = (const unsigned char *) c->token;
        c->input_len = j->signing_input_len;

        if (c->alg == JWS_ALG_ES256) {
                ECDSA_SIG *es = ECDSA_SIG_new();
                BIGNUM *br = BN_bin2bn(j->signature, 32, NULL), *bs = BN_bin2bn(j->signature + 32, 32, NULL);
                unsigned char *der = NULL;
                int n;

                if (!es || !br || !bs || j->signature_len != 64 || ECDSA_SIG_set0(es, br, bs) != 1)
                        die("ECDSA signature");
                n = i2d_ECDSA_SIG(es, &der);
                if (n <= 0)
                        die("ECDSA DER");
                c->sig = malloc((size_t) n);
                if (!c->sig)
                        die("out of memory");
                memcpy(c->sig, der, (size_t) n);
                c->sig_len = (size_t) n;
                OPENSSL_free(der);
                ECDSA_SIG_free(es);
        } else {
                c->sig = malloc(j->signature_len);
                if (!c->sig)
                        die("out of memory");
                memcpy(c->sig, j->signature, j->signature_len);
                c->sig_len = j->signature_len;
        }
        c->parsed = j;

        r = set_verify(c->token, c->token_len, keys, &expect, NULL, &s, &err);
        if (r < 0) {
                fprintf(stderr, "bench-jws: %s: set_verify failed: %s\n", c->file, err.description);
                exit(1);
        }
        ssf_set_free(s);
}

static int baseline_once(const Case *c) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        int ok;

        if (!ctx || EVP_DigestVerifyInit(ctx, &pctx, c->md, NULL, c->key->pkey) != 1)
                die("EVP_DigestVerifyInit");
        if (c->alg == JWS_ALG_PS256 &&
            (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0))
                die("PSS setup");
        ok = EVP_DigestVerify(ctx, c->sig, c->sig_len, c->input, c->input_len);
        EVP_MD_CTX_free(ctx);
        return ok;
}

static int set_verify_once(const Case *c) {
        SsfSet *s = NULL;
        SetError err;
        int r = set_verify(c->token, c->token_len, keys, &expect, NULL, &s, &err);
        ssf_set_free(s);
        return r;
}

static int parse_once(const Case *c) {
        Jws *j = NULL;
        int r = jws_parse(c->token, c->token_len, &j);
        jws_free(j);
        return r;
}

static int jws_verify_once(const Case *c) {
        return jws_verify(c->parsed, keys);
}

static int claims_once(const Case *c) {
        SsfSet *s = NULL;
        SetError err;
        int r = set_validate_claims((const char *) c->parsed->payload, c->parsed->payload_len,
                                    &expect, &s, &err);
        ssf_set_free(s);
        return r;
}

typedef int (*OpFn)(const Case *c);

/* Runs n ops, returns ns per op. Fails the benchmark if an op fails. */
static double run_ns(OpFn fn, const Case *c, unsigned n, int want) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (unsigned i = 0; i < n; i++) {
                int r = fn(c);
                if (r != want) {
                        fprintf(stderr, "bench-jws: %s: an op returned %d\n", c->label, r);
                        exit(1);
                }
                sink += r;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        return ((double) (b.tv_sec - a.tv_sec) * 1e9 + (double) (b.tv_nsec - a.tv_nsec)) / n;
}

static void wallclock(int rounds, double round_ms) {
        printf("SET verification (µs/op, median of %d paired rounds of ~%.0f ms per side)\n",
               rounds, round_ms);
        printf("%-6s %11s %11s %7s | %10s %10s %10s\n", "alg", "set_verify", "EVP floor",
               "ratio", "jws_parse", "jws_verify", "claims");
        for (size_t k = 0; k < N_CASES; k++) {
                Case *c = &cases[k];
                double t_set[BENCH_MAX_ROUNDS], t_base[BENCH_MAX_ROUNDS], ratio[BENCH_MAX_ROUNDS], t_parse[BENCH_MAX_ROUNDS],
                       t_ver[BENCH_MAX_ROUNDS], t_claims[BENCH_MAX_ROUNDS];
                unsigned n;
                double est;

                /* Warm up and size a round from the baseline's speed. */
                (void) run_ns(set_verify_once, c, 20, 0);
                est = run_ns(baseline_once, c, 50, 1);
                n = (unsigned) (round_ms * 1e6 / est);
                if (n < 10)
                        n = 10;
                for (int r = 0; r < rounds; r++) {
                        if (r % 2) {
                                t_set[r] = run_ns(set_verify_once, c, n, 0);
                                t_base[r] = run_ns(baseline_once, c, n, 1);
                        } else {
                                t_base[r] = run_ns(baseline_once, c, n, 1);
                                t_set[r] = run_ns(set_verify_once, c, n, 0);
                        }
                        ratio[r] = t_set[r] / t_base[r];
                }
                /* Breakdown (informational, not paired): the parts set_verify is made of. */
                for (int r = 0; r < rounds; r++) {
                        t_parse[r] = run_ns(parse_once, c, n, 0);
                        t_ver[r] = run_ns(jws_verify_once, c, n / 2 + 1, 0);
                        t_claims[r] = run_ns(claims_once, c, n, 0);
                }
                printf("%-6s %11.1f %11.1f %7.3f | %10.2f %10.1f %10.2f\n", c->label,
                       bench_median(t_set, rounds) / 1e3, bench_median(t_base, rounds) / 1e3,
                       bench_median(ratio, rounds), bench_median(t_parse, rounds) / 1e3,
                       bench_median(t_ver, rounds) / 1e3, bench_median(t_claims, rounds) / 1e3);
                fflush(stdout);
        }
}

/* One callgrind dump per (case, side); the driver reads each dump's totals. */
static void callgrind(unsigned n) {
        char name[64];
        for (size_t k = 0; k < N_CASES; k++) {
                Case *c = &cases[k];
                (void) run_ns(set_verify_once, c, 3, 0);
                (void) run_ns(baseline_once, c, 3, 1);
                CALLGRIND_ZERO_STATS;
                (void) run_ns(set_verify_once, c, n, 0);
                snprintf(name, sizeof name, "%s-set", c->label);
                CALLGRIND_DUMP_STATS_AT(name);
                (void) run_ns(baseline_once, c, n, 1);
                snprintf(name, sizeof name, "%s-base", c->label);
                CALLGRIND_DUMP_STATS_AT(name);
                (void) run_ns(parse_once, c, n, 0);
                snprintf(name, sizeof name, "%s-parse", c->label);
                CALLGRIND_DUMP_STATS_AT(name);
                (void) run_ns(jws_verify_once, c, n, 0);
                snprintf(name, sizeof name, "%s-jws_verify", c->label);
                CALLGRIND_DUMP_STATS_AT(name);
                (void) run_ns(claims_once, c, n, 0);
                snprintf(name, sizeof name, "%s-claims", c->label);
                CALLGRIND_DUMP_STATS_AT(name);
        }
}

int main(int argc, char **argv) {
        const char *dir = "tests/data/jose";
        int rounds = 9, opt;
        double round_ms = 150;
        unsigned cg = 0;
        static const struct option longopts[] = {
                { "data", required_argument, NULL, 'd' },
                { "rounds", required_argument, NULL, 'r' },
                { "round-ms", required_argument, NULL, 'm' },
                { "callgrind", required_argument, NULL, 'c' },
                {}
        };
        char *jwks_text;
        size_t jwks_len;

        while ((opt = getopt_long(argc, argv, "d:r:m:c:", longopts, NULL)) >= 0) {
                switch (opt) {
                case 'd':
                        dir = optarg;
                        break;
                case 'r':
                        rounds = atoi(optarg);
                        break;
                case 'm':
                        round_ms = atof(optarg);
                        break;
                case 'c':
                        cg = (unsigned) atoi(optarg);
                        break;
                default:
                        return 2;
                }
        }
        if (rounds < 1 || rounds > BENCH_MAX_ROUNDS || round_ms <= 0)
                die("bad --rounds or --round-ms");

        jwks_text = read_file(dir, "jwks.json", &jwks_len);
        if (jwks_parse(jwks_text, jwks_len, &keys) < 0)
                die("jwks.json does not parse");
        for (size_t k = 0; k < N_CASES; k++)
                prepare(&cases[k], dir);

        if (cg)
                callgrind(cg);
        else
                wallclock(rounds, round_ms);

        for (size_t k = 0; k < N_CASES; k++) {
                free(cases[k].token);
                free(cases[k].sig);
                jws_free(cases[k].parsed);
        }
        jwks_free(keys);
        free(jwks_text);
        return 0;
}
