/* SPDX-License-Identifier: MIT */
/* Splits arbitrary bytes at newlines into a module argv (an argument ends at its first NUL)
 * and parses it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *argv[MAX_ARGS];
        const char *bad = NULL;
        PamSsfArgs a;
        int argc = 0, r;
        char *copy;

        if (size > 65536)
                return 0;
        copy = malloc(size + 1);
        if (!copy)
                abort();
        memcpy(copy, data, size);
        copy[size] = 0;

        for (char *p = copy; argc < MAX_ARGS;) {
                char *sep = p + strcspn(p, "\n");
                argv[argc++] = p;
                if (!*sep)
                        break;
                *sep = 0;
                p = sep + 1;
        }

        r = pam_ssf_args_parse(argc, argv, &a, &bad);
        if (r < 0) {
                if (!bad)
                        abort();
        } else if (a.timeout_ms == 0 || a.timeout_ms > PAM_SSF_MAX_TIMEOUT_MS || a.deny <= RISK_NONE ||
                   a.deny >= _RISK_MAX || a.below < RISK_NONE || a.below >= _RISK_MAX || !a.socket || a.socket[0] != '/' || !a.snapshot ||
                   a.snapshot[0] != '/')
                abort();

        free(copy);
        return 0;
}
