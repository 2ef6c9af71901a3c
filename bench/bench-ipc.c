/* SPDX-License-Identifier: MIT */
/*
 * The daemon's side of a login, in process: N PAM_QUERY round trips (ssf_ipc_connect,
 * ssf_ipc_send, ssf_ipc_recv, close: what pam_ssf.so does) against a running ssf-sessiond,
 * against the floor of the same exchange with a trivial SOCK_SEQPACKET server in this program
 * (a thread: accept, recv, send a canned PAM_REPLY, close).
 *
 *   bench-ipc --socket PATH [--user NAME]... [--rounds R] [--round-ms MS]
 *   bench-ipc --socket PATH --wait-ready MS   (start-up: wait for the first answered query)
 *
 * Rows:
 *   raw→echo        socket/connect/send/recv/close, blocking, no checks      (baseline)
 *   ssf→echo        the ssf client code against the same echo server         (client cost)
 *   ssf→daemon U    the ssf client code against ssf-sessiond, for user U      (the real thing)
 * Each round runs every row for about MS ms; ratios are per round against raw→echo, median.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench-util.h"
#include "ssf-ipc.h"

#define MAX_USERS 8
#define TIMEOUT_USEC (2u * 1000u * 1000u)

static char echo_path[108];
static uint8_t canned_reply[256];
static size_t canned_reply_len;
static uint8_t raw_query[512];
static size_t raw_query_len;

static _Noreturn void die(const char *what, int err) {
        fprintf(stderr, "bench-ipc: %s: %s\n", what, strerror(err < 0 ? -err : err));
        exit(1);
}

static void *echo_server(void *arg) {
        int lfd = *(int *) arg;
        uint8_t buf[SSF_IPC_MAX_FRAME];

        for (;;) {
                int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        return NULL;
                }
                if (recv(cfd, buf, sizeof buf, 0) > 0)
                        (void) send(cfd, canned_reply, canned_reply_len, MSG_NOSIGNAL);
                close(cfd);
        }
}

static void start_echo(void) {
        static int lfd;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char dir[] = "/tmp/ssf-bench-ipc-XXXXXX";
        pthread_t t;
        SsfIpcMsg reply = { .type = SSF_IPC_PAM_REPLY, .has_status = 1, .has_level = 1 };
        int n;

        if (!mkdtemp(dir))
                die("mkdtemp", errno);
        snprintf(echo_path, sizeof echo_path, "%s/socket", dir);
        strcpy(sa.sun_path, echo_path);
        lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(lfd, 128) < 0)
                die("echo socket", errno);
        n = ssf_ipc_encode(&reply, canned_reply, sizeof canned_reply);
        if (n < 0)
                die("encode reply", n);
        canned_reply_len = (size_t) n;
        if ((errno = pthread_create(&t, NULL, echo_server, &lfd)) != 0)
                die("pthread_create", errno);
        pthread_detach(t);
}

static void stop_echo(void) {
        char *slash;
        unlink(echo_path);
        slash = strrchr(echo_path, '/');
        *slash = 0;
        rmdir(echo_path);
}

/* The floor: what any client/server pair pays for one SEQPACKET exchange on a new connection. */
static int raw_once(const char *path, const char *user) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        uint8_t buf[1024];
        int fd;
        ssize_t n;

        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
            send(fd, raw_query, raw_query_len, MSG_NOSIGNAL) < 0 || (n = recv(fd, buf, sizeof buf, 0)) <= 0) {
                int e = errno ? errno : EIO;
                close(fd);
                return -e;
        }
        close(fd);
        return 0;
}

/* What pam_ssf.so's client does (pam_ssf/client.c), minus the snapshot fallback. */
static int ssf_once(const char *path, const char *user) {
        uint64_t deadline = ssf_now_usec() + TIMEOUT_USEC;
        SsfIpcMsg q = { .type = SSF_IPC_PAM_QUERY, .user = (char *) user, .service = (char *) "sshd" };
        SsfIpcMsg a = {};
        int fd, r;

        fd = ssf_ipc_connect(path, (uid_t) -1, deadline);
        if (fd < 0)
                return fd;
        r = ssf_ipc_send(fd, &q, deadline);
        if (r >= 0)
                r = ssf_ipc_recv(fd, &a, deadline);
        if (r >= 0 && (a.type != SSF_IPC_PAM_REPLY || !a.has_status || a.status != 0))
                r = -EPROTO;
        ssf_ipc_msg_done(&a);
        close(fd);
        return r;
}

typedef int (*OpFn)(const char *path, const char *user);

/* Runs n ops; when lat is not NULL, appends each op's latency (ns) to it. */
static double run_ns(OpFn fn, const char *path, const char *user, unsigned n, double *lat) {
        uint64_t a = bench_now_ns(), prev = a;
        for (unsigned i = 0; i < n; i++) {
                int r = fn(path, user);
                if (lat) {
                        uint64_t now = bench_now_ns();
                        lat[i] = (double) (now - prev);
                        prev = now;
                }
                if (r < 0) {
                        fprintf(stderr, "bench-ipc: query for '%s' on %s failed: %s\n", user, path,
                                strerror(-r));
                        exit(1);
                }
        }
        return (double) (bench_now_ns() - a) / n;
}

/* --wait-ready: queries the daemon every 200 µs until one is answered, then prints the
 * CLOCK_MONOTONIC time of that answer (bench-load.py compares it with the daemon's exec). */
static int wait_ready(const char *path, double timeout_ms) {
        uint64_t end = bench_now_ns() + (uint64_t) (timeout_ms * 1e6);

        while (bench_now_ns() < end) {
                if (ssf_once(path, "bob") == 0) {
                        printf("ready_ns %llu\n", (unsigned long long) bench_now_ns());
                        return 0;
                }
                (void) usleep(200);
        }
        fprintf(stderr, "bench-ipc: %s answered no PAM query within %.0f ms\n", path, timeout_ms);
        return 1;
}

int main(int argc, char **argv) {
        const char *daemon_socket = NULL, *users[MAX_USERS];
        int n_users = 0, rounds = 7, opt;
        double round_ms = 150, wait_ms = 0;
        static const struct option longopts[] = {
                { "wait-ready", required_argument, NULL, 'w' },
                { "socket", required_argument, NULL, 's' },
                { "user", required_argument, NULL, 'u' },
                { "rounds", required_argument, NULL, 'r' },
                { "round-ms", required_argument, NULL, 'm' },
                {}
        };
        int n_rows;
        double t[2 + MAX_USERS][BENCH_MAX_ROUNDS], ratio[2 + MAX_USERS][BENCH_MAX_ROUNDS];
        unsigned n;
        double *lat[2 + MAX_USERS];
        SsfIpcMsg q = { .type = SSF_IPC_PAM_QUERY, .user = (char *) "bob", .service = (char *) "sshd" };
        int k;

        while ((opt = getopt_long(argc, argv, "s:u:r:m:w:", longopts, NULL)) >= 0) {
                switch (opt) {
                case 's':
                        daemon_socket = optarg;
                        break;
                case 'u':
                        if (n_users == MAX_USERS)
                                die("too many --user", E2BIG);
                        users[n_users++] = optarg;
                        break;
                case 'r':
                        rounds = atoi(optarg);
                        break;
                case 'm':
                        round_ms = atof(optarg);
                        break;
                case 'w':
                        wait_ms = atof(optarg);
                        break;
                default:
                        return 2;
                }
        }
        if (daemon_socket && wait_ms > 0)
                return wait_ready(daemon_socket, wait_ms);
        if (!daemon_socket || rounds < 1 || rounds > BENCH_MAX_ROUNDS || round_ms <= 0) {
                fprintf(stderr, "usage: bench-ipc --socket PATH [--user NAME]... [--rounds R] [--round-ms MS]\n"
                                "       bench-ipc --socket PATH --wait-ready MS\n");
                return 2;
        }
        if (n_users == 0)
                users[n_users++] = "bob";
        n_rows = 2 + n_users;

        k = ssf_ipc_encode(&q, raw_query, sizeof raw_query);
        if (k < 0)
                die("encode query", k);
        raw_query_len = (size_t) k;
        start_echo();

        /* Warm up every path, then size a round from the slowest row. */
        double slowest = run_ns(raw_once, echo_path, "bob", 200, NULL);
        double e = run_ns(ssf_once, echo_path, "bob", 200, NULL);
        if (e > slowest)
                slowest = e;
        for (int u = 0; u < n_users; u++) {
                e = run_ns(ssf_once, daemon_socket, users[u], 100, NULL);
                if (e > slowest)
                        slowest = e;
        }
        n = (unsigned) (round_ms * 1e6 / slowest);
        if (n < 20)
                n = 20;
        for (int i = 0; i < n_rows; i++) {
                lat[i] = calloc((size_t) n * (size_t) rounds, sizeof(double));
                if (!lat[i])
                        die("calloc", ENOMEM);
        }

        for (int r = 0; r < rounds; r++) {
                size_t off = (size_t) r * n;
                t[0][r] = run_ns(raw_once, echo_path, "bob", n, lat[0] + off);
                t[1][r] = run_ns(ssf_once, echo_path, "bob", n, lat[1] + off);
                for (int u = 0; u < n_users; u++)
                        t[2 + u][r] = run_ns(ssf_once, daemon_socket, users[u], n, lat[2 + u] + off);
                for (int i = 0; i < n_rows; i++)
                        ratio[i][r] = t[i][r] / t[0][r];
        }

        printf("PAM query round trips (µs/query, median of %d rounds of %u queries per row)\n", rounds, n);
        printf("%-26s %10s %8s %10s %10s\n", "", "µs/query", "ratio", "p99 µs", "max µs");
        for (int i = 0; i < n_rows; i++) {
                char label[64];
                if (i == 0)
                        snprintf(label, sizeof label, "raw→echo (baseline)");
                else if (i == 1)
                        snprintf(label, sizeof label, "ssf client→echo");
                else
                        snprintf(label, sizeof label, "ssf client→daemon %s", users[i - 2]);
                size_t total = (size_t) n * (size_t) rounds;
                qsort(lat[i], total, sizeof(double), bench_cmp_double);
                printf("%-26s %10.1f %8.2f %10.1f %10.1f\n", label, bench_median(t[i], rounds) / 1e3,
                       bench_median(ratio[i], rounds), lat[i][total * 99 / 100] / 1e3,
                       lat[i][total - 1] / 1e3);
                free(lat[i]);
        }
        stop_echo();
        return 0;
}
