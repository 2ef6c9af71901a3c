/* SPDX-License-Identifier: MIT */
/* ssfctl: the admin CLI of ssf-sessiond. One CTL_REQUEST, one CTL_REPLY over the daemon's socket.
 * Exit status: 0 success, 1 error, 2 usage. Runs in ssfctl. */
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <jansson.h>

#include "ctl-format.h"
#include "macro.h"
#include "ssf-ipc.h"

#define EXIT_USAGE 2

static int print_error(int status, const char *message) {
        _cleanup_free_ char *s = ctl_format_error(status, message);

        fprintf(stderr, "%s\n", s ?: "ssfctl: out of memory");
        return EXIT_FAILURE;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(CtlHistory *, ctl_history_free)

static int run(const CtlArgs *a) {
        _cleanup_(json_decrefp) json_t *joined = NULL;
        _cleanup_(ctl_history_freep) CtlHistory *history = NULL;
        _cleanup_free_ char *args = NULL, *text = NULL, *verb = NULL, *body = NULL;
        bool more;
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
                   (a->verb == CTL_VERB_VERIFY ? CTL_VERIFY_DEADLINE_USEC
                    : ctl_verb_is_admin(a->verb) ? CTL_ADMIN_DEADLINE_USEC : CTL_DEADLINE_USEC);

        /* A history listing is taken as its frames arrive (up to 100,000,000 rows): not
         * joined, printed again as JSON and parsed again first. */
        if (a->verb == CTL_VERB_HISTORY) {
                /* Each frame's JSON is freed before the next is parsed into the same memory:
                 * keep it rather than give it back to the kernel and fault it in again. */
                (void) mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
                history = ctl_history_new(a->json);
                if (!history)
                        return print_error(-ENOMEM, NULL);
        }

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

        /* A long answer (history) comes in several frames, each with its own deadline; their
         * entries are joined, in order. */
        for (;;) {
                SsfIpcMsg part = {};

                r = ssf_ipc_recv(fd, &part, deadline);
                if (r < 0) {
                        fprintf(stderr, "ssfctl: no reply from ssf-sessiond at %s: %s\n", a->socket,
                                strerror(-r));
                        return EXIT_FAILURE;
                }
                if (part.type != SSF_IPC_CTL_REPLY || !part.has_status) {
                        ssf_ipc_msg_done(&part);
                        fprintf(stderr, "ssfctl: unexpected reply from ssf-sessiond at %s\n", a->socket);
                        return EXIT_FAILURE;
                }
                if (part.status != 0) {
                        r = print_error(part.status < 0 ? part.status : -EIO, part.message);
                        ssf_ipc_msg_done(&part);
                        return r;
                }
                r = history ? ctl_history_add(history, part.body) : ctl_join_parts(&joined, part.body);
                more = part.more;
                ssf_ipc_msg_done(&part);
                if (r == -ENOMEM)
                        return print_error(r, NULL);
                if (r < 0) {
                        fprintf(stderr, "ssfctl: invalid reply from ssf-sessiond at %s\n", a->socket);
                        return EXIT_FAILURE;
                }
                if (!more)
                        break;
                deadline = ssf_now_usec() + CTL_DEADLINE_USEC;
        }
        if (history) {
                r = ctl_history_put(history, stdout);
                if (r < 0)
                        return print_error(r, NULL);
                if (fflush(stdout) != 0 || ferror(stdout)) {
                        fprintf(stderr, "ssfctl: cannot write output: %m\n");
                        return EXIT_FAILURE;
                }
                return EXIT_SUCCESS;
        }
        body = joined ? json_dumps(joined, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (joined && !body)
                return print_error(-ENOMEM, NULL);

        r = ctl_format_reply(a->verb, a->json, body, &text);
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
