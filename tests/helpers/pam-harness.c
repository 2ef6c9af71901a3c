/* SPDX-License-Identifier: MIT */
/*
 * A small PAM application for the integration tests: runs the given PAM steps for one user
 * and service and records what the modules said through the conversation.
 *
 *   pam-harness [--close-stdio] [--rhost HOST] [--tty TTY] [--answer TEXT] SERVICE USER STEP...
 *
 * STEP is auth, setcred, account, open_session, close_session or chauthtok. Output (on the
 * original stdout, also when --close-stdio closes fds 0-2 before PAM starts), one line each:
 *
 *   msg <style> <hex of the text>     a conversation message (style: error, info, prompt)
 *   result <step> <code>              the PAM return code of the step
 *
 * Prompts are answered with TEXT (--answer), else with an empty string. Exit status 0 unless the harness itself failed.
 * Run it under pam_wrapper (LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1
 * PAM_WRAPPER_SERVICE_DIR=…) so that SERVICE is read from the test's directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <security/pam_appl.h>

static FILE *out;
static const char *answer = "";

static void put_hex(const char *s) {
        if (!s || !*s) {
                fputs("-", out);
                return;
        }
        for (; *s; s++)
                fprintf(out, "%02x", (unsigned char) *s);
}

static int conversation(int n, const struct pam_message **msgs, struct pam_response **ret,
                        void *userdata) {
        struct pam_response *resp;

        if (n <= 0 || n > PAM_MAX_NUM_MSG)
                return PAM_CONV_ERR;
        resp = calloc((size_t) n, sizeof(*resp));
        if (!resp)
                return PAM_BUF_ERR;

        for (int i = 0; i < n; i++) {
                const char *style;

                switch (msgs[i]->msg_style) {
                case PAM_ERROR_MSG:
                        style = "error";
                        break;
                case PAM_TEXT_INFO:
                        style = "info";
                        break;
                default:
                        style = "prompt";
                        resp[i].resp = strdup(answer);
                        if (!resp[i].resp) {
                                for (int j = 0; j < i; j++)
                                        free(resp[j].resp);
                                free(resp);
                                return PAM_BUF_ERR;
                        }
                }
                fprintf(out, "msg %s ", style);
                put_hex(msgs[i]->msg);
                fputc('\n', out);
        }
        fflush(out);
        *ret = resp;
        return PAM_SUCCESS;
}

static int run_step(pam_handle_t *pamh, const char *step, int *ret) {
        if (strcmp(step, "auth") == 0)
                *ret = pam_authenticate(pamh, 0);
        else if (strcmp(step, "setcred") == 0)
                *ret = pam_setcred(pamh, PAM_ESTABLISH_CRED);
        else if (strcmp(step, "account") == 0)
                *ret = pam_acct_mgmt(pamh, 0);
        else if (strcmp(step, "open_session") == 0)
                *ret = pam_open_session(pamh, 0);
        else if (strcmp(step, "close_session") == 0)
                *ret = pam_close_session(pamh, 0);
        else if (strcmp(step, "chauthtok") == 0)
                *ret = pam_chauthtok(pamh, 0);
        else
                return -EINVAL;
        return 0;
}

int main(int argc, char **argv) {
        const char *rhost = NULL, *tty = NULL;
        int close_stdio = 0, i = 1, r, fd;
        struct pam_conv conv = { .conv = conversation };
        pam_handle_t *pamh = NULL;

        for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
                if (strcmp(argv[i], "--close-stdio") == 0)
                        close_stdio = 1;
                else if (strcmp(argv[i], "--rhost") == 0 && i + 1 < argc)
                        rhost = argv[++i];
                else if (strcmp(argv[i], "--tty") == 0 && i + 1 < argc)
                        tty = argv[++i];
                else if (strcmp(argv[i], "--answer") == 0 && i + 1 < argc)
                        answer = argv[++i];
                else {
                        fprintf(stderr, "pam-harness: unknown option '%s'\n", argv[i]);
                        return 2;
                }
        }
        if (argc - i < 3) {
                fprintf(stderr, "usage: pam-harness [--close-stdio] [--rhost H] [--tty T] [--answer A] "
                                "SERVICE USER STEP...\n");
                return 2;
        }

        /* Keep the report channel above 2 so that the module sees fds 0-2 closed. */
        fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 10);
        if (fd < 0 || !(out = fdopen(fd, "w"))) {
                perror("pam-harness: stdout");
                return 1;
        }
        if (close_stdio) {
                close(STDIN_FILENO);
                close(STDOUT_FILENO);
                close(STDERR_FILENO);
        }

        r = pam_start(argv[i], argv[i + 1], &conv, &pamh);
        if (r != PAM_SUCCESS) {
                fprintf(out, "error pam_start %d\n", r);
                fclose(out);
                return 1;
        }
        if (rhost)
                (void) pam_set_item(pamh, PAM_RHOST, rhost);
        if (tty)
                (void) pam_set_item(pamh, PAM_TTY, tty);

        for (i += 2; i < argc; i++) {
                int code;
                if (run_step(pamh, argv[i], &code) < 0) {
                        fprintf(out, "error unknown step %s\n", argv[i]);
                        pam_end(pamh, PAM_ABORT);
                        fclose(out);
                        return 2;
                }
                fprintf(out, "result %s %d\n", argv[i], code);
                fflush(out);
        }

        pam_end(pamh, PAM_SUCCESS);
        fclose(out);
        return 0;
}
