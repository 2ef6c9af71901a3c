/* SPDX-License-Identifier: MIT */
/* Sanitises arbitrary bytes as CAEP reason_user (common/reason-user.c) into buffers of several
 * sizes: the output must be printable UTF-8 of at most 200 characters within the buffer, with no
 * control byte, no leading, trailing or doubled space, and sanitising it again must change
 * nothing. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reason-user.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count_chars(const char *s, size_t n) {
        size_t c = 0;

        for (size_t i = 0; i < n; i++)
                if (((unsigned char) s[i] & 0xc0) != 0x80)
                        c++;
        return c;
}

static void check(const uint8_t *data, size_t size, size_t bufsize) {
        char *out = malloc(bufsize), *again = malloc(bufsize);
        size_t n, m;

        if (!out || !again)
                abort();
        n = ssf_reason_user_sanitize((const char *) data, size, out, bufsize);
        if (n >= bufsize || strlen(out) != n || count_chars(out, n) > SSF_REASON_USER_MAX_CHARS)
                abort();
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) out[i];
                if (c < 0x20 || c == 0x7f)
                        abort();
                if (c == ' ' && (i == 0 || i + 1 == n || out[i + 1] == ' '))
                        abort();
                /* No C1 control encoded in UTF-8 (U+0080..U+009F is C2 80..C2 9F). */
                if (c == 0xc2 && i + 1 < n && (unsigned char) out[i + 1] <= 0x9f)
                        abort();
        }
        m = ssf_reason_user_sanitize(out, n, again, bufsize);
        if (m != n || memcmp(out, again, n) != 0)
                abort();
        free(out);
        free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const size_t sizes[] = { 1, 2, 5, 64, SSF_REASON_USER_SIZE };

        if (size > 65536)
                return 0;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
                check(data, size, sizes[i]);
        return 0;
}
