/* SPDX-License-Identifier: MIT */
/* ssfctl: the admin CLI of ssf-sessiond. One CTL_REQUEST, one CTL_REPLY over the daemon's socket.
 * Exit status: 0 success, 1 error, 2 usage. Runs in ssfctl. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "ctl-format.h"
#include "macro.h"
#include "ssf-ipc.h"

#define EXIT_USAGE 2

static void ipc_msg_donep(SsfIpcMsg *m) {
        ssf_ipc_msg_done(m);
}

static int print_error(int status, const char *message) {
        _cleanup_free_ char *s = ctl_format_error(status, message);

        fprintf(stderr, "%s\n", s ?: "ssfctl: out of memory");
        return EXIT_FAILURE;
}

static int run(const CtlArgs *a) {
        _cleanup_(ipc_msg_donep) SsfIpcMsg reply = {};
        _cleanup_free_ char *args = NULL, *text = NULL, *verb = NULL;
        _cleanup_close_ int fd = -EBADF;
        uint64_t deadline;
        SsfIpcMsg req;
        int r;

        r = ctl_build_request(a, &args);
        if (r < 0)
                return print_error(r, NULL);
        verb = strdup(ctl_verb_to_string(a->verb));
        if (!verb)
                return print_error(-ENOMEM, NULL);

        deadline = ssf_now_usec() +
                   (a->verb == CTL_VERB_VERIFY ? CTL_VERIFY_DEADLINE_USEC : CTL_DEADLINE_USEC);

        fd = ssf_ipc_connect(a->socket, (uid_t) -1, deadline);
        if (fd < 0) {
                fprintf(stderr, "ssfctl: cannot reach ssf-sessiond at %s: %s\n", a->socket, strerror(-fd));
                return EXIT_FAILURE;
        }

        req = (SsfIpcMsg) {
                .type = SSF_IPC_CTL_REQUEST,
                .verb = verb,
                .args = args,
        };
        r = ssf_ipc_send(fd, &req, deadline);
        if (r < 0) {
                fprintf(stderr, "ssfctl: cannot send to ssf-sessiond at %s: %s\n", a->socket, strerror(-r));
                return EXIT_FAILURE;
        }

        r = ssf_ipc_recv(fd, &reply, deadline);
        if (r < 0) {
                fprintf(stderr, "ssfctl: no reply from ssf-sessiond at %s: %s\n", a->socket, strerror(-r));
                return EXIT_FAILURE;
        }
        if (reply.type != SSF_IPC_CTL_REPLY || !reply.has_status) {
                fprintf(stderr, "ssfctl: unexpected reply from ssf-sessiond at %s\n", a->socket);
                return EXIT_FAILURE;
        }
        if (reply.status != 0)
                return print_error(reply.status < 0 ? reply.status : -EIO, reply.message);

        r = ctl_format_reply(a->verb, a->json, reply.body, &text);
        if (r == -EBADMSG) {
                fprintf(stderr, "ssfctl: invalid reply from ssf-sessiond at %s\n", a->socket);
                return EXIT_FAILURE;
        }
        if (r < 0)
                return print_error(r, NULL);

        fputs(text, stdout);
        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "ssfctl: cannot write output: %m\n");
                return EXIT_FAILURE;
        }
        if (r > 0) {
                /* The daemon answered, but the command did not succeed (verify: nothing arrived). */
                if (a->verb == CTL_VERB_VERIFY)
                        fprintf(stderr, "ssfctl: no verification event received\n");
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}

int main(int argc, char *argv[]) {
        _cleanup_free_ char *error = NULL;
        CtlArgs a;
        int r;

        r = ctl_parse_args(argc, argv, &a, &error);
        if (r == -ENOMEM) {
                fputs("ssfctl: out of memory\n", stderr);
                return EXIT_FAILURE;
        }
        if (r < 0) {
                fprintf(stderr, "ssfctl: %s\n\n%s", error ?: "invalid arguments", ctl_usage());
                return EXIT_USAGE;
        }

        switch (a.action) {
        case CTL_ACTION_HELP:
                fputs(ctl_usage(), stdout);
                return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
        case CTL_ACTION_VERSION:
                puts("ssfctl " SSF_VERSION);
                return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
        default:
                return run(&a);
        }
}
