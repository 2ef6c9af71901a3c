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
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(int argc, char **argv) {
        const char *ssf = NULL, *permit = NULL, *users[MAX_USERS];
        int codes[MAX_USERS], n_users = 0, rounds = 7, opt;
        double round_ms = 150, slowest, e;
        double tb[BENCH_MAX_ROUNDS], t[MAX_USERS][BENCH_MAX_ROUNDS], ratio[MAX_USERS][BENCH_MAX_ROUNDS];
        unsigned n;
        static const struct option longopts[] = {
                { "ssf", required_argument, NULL, 's' },
                { "permit", required_argument, NULL, 'p' },
                { "user", required_argument, NULL, 'u' },
                { "rounds", required_argument, NULL, 'r' },
                { "round-ms", required_argument, NULL, 'm' },
                {}
        };

        while ((opt = getopt_long(argc, argv, "s:p:u:r:m:", longopts, NULL)) >= 0) {
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
                default:
                        return 2;
                }
        }
        if (!ssf || !permit || n_users == 0 || rounds < 1 || rounds > BENCH_MAX_ROUNDS || round_ms <= 0) {
                fprintf(stderr, "usage: bench-pam --ssf SERVICE --permit SERVICE --user NAME[=CODE]... "
                                "[--rounds R] [--round-ms MS]\n");
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
