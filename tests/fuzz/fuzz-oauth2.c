/* SPDX-License-Identifier: MIT */
/* OAuth 2.0 token endpoint responses: the success and the error forms. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "oauth2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *token = NULL, *error = NULL, *desc = NULL;
        const char *why = NULL;
        int64_t expires_in = -2;

        if (oauth2_parse_token_response((const char *) data, size, &token, &expires_in, &why) >= 0) {
                /* What goes into the Authorization header: bounded, no blanks or line breaks. */
                if (!token || strlen(token) == 0 || strlen(token) > OAUTH2_ACCESS_TOKEN_MAX ||
                    strpbrk(token, " \t\r\n") || expires_in < -1 || expires_in > OAUTH2_EXPIRES_IN_MAX)
                        abort();
                erase_and_free(token);
        } else if (token || expires_in != -2 || !why)
                abort();

        if (oauth2_parse_error_response((const char *) data, size, &error, &desc) >= 0) {
                if (!error || strlen(error) > OAUTH2_ERROR_MAX || (desc && strlen(desc) > OAUTH2_DESCRIPTION_MAX))
                        abort();
                for (const char *p = error; *p; p++)
                        if (*p < 0x20 || *p > 0x7e)
                                abort();
                for (const char *p = desc; p && *p; p++)
                        if (*p < 0x20 || *p > 0x7e)
                                abort();
                free(error);
                free(desc);
        } else if (error || desc)
                abort();
        return 0;
}
