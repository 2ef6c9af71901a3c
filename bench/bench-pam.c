/* SPDX-License-Identifier: MIT */
/*
 * The cost a login pays for pam_ssf.so, in process: N account checks (pam_start,
 * pam_acct_mgmt, pam_end: libpam loads the stack's modules each time, as sshd does per login)
 * through a service whose account stack is pam_ssf.so, against the same loop through a service
 * whose account stack is pam_permit.so only (baseline). Run under pam_wrapper:
 *
 *   LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=DIR \
 *     bench-pam --ssf SERVICE --permit SERVICE --user NAME[=CODE]... [--rounds R] [--round-ms MS]
 *
 * CODE is the PAM code the ssf service must return for NAME (default 0, PAM_SUCCESS); the
 * benchmark fails if it does not, so a misconfigured stack cannot pass for a fast one.
 *
 * Latency mode (bench-load.py: PAM while the daemon is busy elsewhere):
 *
 *   bench-pam --ssf SERVICE --user NAME[=CODE] --sample-ms MS [--gap-us G]
 *
 * runs one account check of the first user after another (G µs of sleep between two, default
 * 1000, so that the client leaves CPU to the daemon as real logins would) for MS ms or until
 * SIGTERM/SIGINT, and prints one line: "samples N p50_us X p99_us Y max_us Z".
 */
#include <errno.h>
#include <signal.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "bench-util.h"

#define MAX_USERS 8

static int quiet_conv(int n, const struct pam_message **msgs, struct pam_response **ret, void *userdata) {
        struct pam_response *resp = calloc((size_t) n, sizeof(*resp));
        if (!resp)
                return PAM_BUF_ERR;
        *ret = resp; /* messages (the denial text) are dropped */
        return PAM_SUCCESS;
}

static int account_once(const char *service, const char *user) {
        struct pam_conv conv = { .conv = quiet_conv };
        pam_handle_t *pamh = NULL;
        int r;

        r = pam_start(service, user, &conv, &pamh);
        if (r != PAM_SUCCESS)
                return -1000 - r;
        r = pam_acct_mgmt(pamh, 0);
        pam_end(pamh, r);
        return r;
}

static double run_ns(const char *service, const char *user, int want, unsigned n) {
        uint64_t a = bench_now_ns();
        for (unsigned i = 0; i < n; i++) {
                int r = account_once(service, user);
                if (r != want) {
                        fprintf(stderr, "bench-pam: service %s, user %s: got PAM code %d, want %d\n",
                                service, user, r, want);
                        exit(1);
                }
        }
        return (double) (bench_now_ns() - a) / n;
}

static volatile sig_atomic_t stop_sampling;

static void on_stop(int sig) {
        stop_sampling = 1;
}

/* Latency mode: per-login latencies of one user for up to ms, or until SIGTERM/SIGINT. */
static int sample(const char *service, const char *user, int want, double ms, long gap_us) {
        struct sigaction sa = { .sa_handler = on_stop };
        size_t n = 0, cap = 4096;
        double *lat = malloc(cap * sizeof(double));
        uint64_t end = bench_now_ns() + (uint64_t) (ms * 1e6);

        if (!lat)
                return 1;
        (void) sigaction(SIGTERM, &sa, NULL);
        (void) sigaction(SIGINT, &sa, NULL);
        (void) run_ns(service, user, want, 20); /* warm up */
        while (!stop_sampling && bench_now_ns() < end) {
                if (n == cap) {
                        double *m = realloc(lat, 2 * cap * sizeof(double));
                        if (!m)
                                break;
                        lat = m;
                        cap *= 2;
                }
                lat[n++] = run_ns(service, user, want, 1);
                if (gap_us > 0)
                        (void) usleep((useconds_t) gap_us);
        }
        if (n < 2) {
                fprintf(stderr, "bench-pam: only %zu samples\n", n);
                return 1;
        }
        qsort(lat, n, sizeof(double), bench_cmp_double);
        printf("samples %zu p50_us %.1f p99_us %.1f max_us %.1f\n", n, lat[n / 2] / 1e3,
               lat[n * 99 / 100] / 1e3, lat[n - 1] / 1e3);
        free(lat);
        return 0;
}

int main(int argc, char **argv) {
        const char *ssf = NULL, *permit = NULL, *users[MAX_USERS];
        int codes[MAX_USERS], n_users = 0, rounds = 7, opt;
        double round_ms = 150, sample_ms = 0, slowest, e;
        long gap_us = 1000;
        double tb[BENCH_MAX_ROUNDS], t[MAX_USERS][BENCH_MAX_ROUNDS], ratio[MAX_USERS][BENCH_MAX_ROUNDS];
        unsigned n;
        static const struct option longopts[] = {
                { "ssf", required_argument, NULL, 's' },
                { "permit", required_argument, NULL, 'p' },
                { "user", required_argument, NULL, 'u' },
                { "rounds", required_argument, NULL, 'r' },
                { "round-ms", required_argument, NULL, 'm' },
                { "sample-ms", required_argument, NULL, 'S' },
                { "gap-us", required_argument, NULL, 'g' },
                {}
        };

        while ((opt = getopt_long(argc, argv, "s:p:u:r:m:S:g:", longopts, NULL)) >= 0) {
                switch (opt) {
                case 's':
                        ssf = optarg;
                        break;
                case 'p':
                        permit = optarg;
                        break;
                case 'u': {
                        char *eq = strchr(optarg, '=');
                        if (n_users == MAX_USERS)
                                return 2;
                        codes[n_users] = eq ? atoi(eq + 1) : PAM_SUCCESS;
                        if (eq)
                                *eq = 0;
                        users[n_users++] = optarg;
                        break;
                }
                case 'r':
                        rounds = atoi(optarg);
                        break;
                case 'm':
                        round_ms = atof(optarg);
                        break;
                case 'S':
                        sample_ms = atof(optarg);
                        break;
                case 'g':
                        gap_us = atol(optarg);
                        break;
                default:
                        return 2;
                }
        }
        if (sample_ms > 0 && ssf && n_users > 0)
                return sample(ssf, users[0], codes[0], sample_ms, gap_us);
        if (!ssf || !permit || n_users == 0 || rounds < 1 || rounds > BENCH_MAX_ROUNDS || round_ms <= 0) {
                fprintf(stderr, "usage: bench-pam --ssf SERVICE --permit SERVICE --user NAME[=CODE]... "
                                "[--rounds R] [--round-ms MS]\n"
                                "       bench-pam --ssf SERVICE --user NAME[=CODE] --sample-ms MS "
                                "[--gap-us G]\n");
                return 2;
        }

        slowest = run_ns(permit, users[0], PAM_SUCCESS, 50);
        for (int u = 0; u < n_users; u++) {
                e = run_ns(ssf, users[u], codes[u], 50);
                if (e > slowest)
                        slowest = e;
        }
        n = (unsigned) (round_ms * 1e6 / slowest);
        if (n < 20)
                n = 20;

        for (int r = 0; r < rounds; r++) {
                tb[r] = run_ns(permit, users[0], PAM_SUCCESS, n);
                for (int u = 0; u < n_users; u++) {
                        t[u][r] = run_ns(ssf, users[u], codes[u], n);
                        ratio[u][r] = t[u][r] / tb[r];
                }
        }

        printf("PAM account checks in process (µs/login, median of %d rounds of %u logins per row)\n",
               rounds, n);
        printf("%-28s %10s %8s\n", "", "µs/login", "ratio");
        printf("%-28s %10.1f %8.2f\n", "pam_permit.so (baseline)", bench_median(tb, rounds) / 1e3, 1.0);
        for (int u = 0; u < n_users; u++) {
                char label[64];
                snprintf(label, sizeof label, "pam_ssf.so %s (%s)", users[u],
                         codes[u] == PAM_SUCCESS ? "allowed" : "denied");
                printf("%-28s %10.1f %8.2f\n", label, bench_median(t[u], rounds) / 1e3,
                       bench_median(ratio[u], rounds));
        }
        return 0;
}
