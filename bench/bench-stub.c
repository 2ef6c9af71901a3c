/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for ssf-sessiond's PAM front thread that knows nothing: it answers every PAM query
 * on its socket with "level none" at once, one connection at a time, at the priority it was
 * started with. bench-load.py points a pam_ssf.so service at it for a control: what a login
 * that asks another process costs while the real daemon is loaded, when that process does no
 * work at all.
 *
 *   bench-stub SOCKET_PATH    (runs until killed; prints "ready" once it listens)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "level.h"
#include "ssf-ipc.h"

int main(int argc, char **argv) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int lfd;

        if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "usage: bench-stub SOCKET_PATH\n");
                return 2;
        }
        strcpy(sa.sun_path, argv[1]);
        (void) unlink(argv[1]);
        lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0) {
                perror("bench-stub");
                return 1;
        }
        printf("ready\n");
        fflush(stdout);
        for (;;) {
                SsfIpcMsg q = {}, a = { .type = SSF_IPC_PAM_REPLY, .has_status = 1, .status = 0,
                                        .has_level = 1, .level = RISK_NONE };
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        perror("bench-stub: accept");
                        return 1;
                }
                if (ssf_ipc_recv(fd, &q, ssf_now_usec() + 1000000u) == 0 &&
                    q.type == SSF_IPC_PAM_QUERY)
                        (void) ssf_ipc_send(fd, &a, ssf_now_usec() + 1000000u);
                ssf_ipc_msg_done(&q);
                close(fd);
        }
}
