/* SPDX-License-Identifier: MIT */
/* Makes arbitrary bytes printable as hook output is before the journal and the history
 * (ssf_utf8_make_printable() in common/utf8.c, newline and tab kept): the result must be no
 * longer than the input, NUL-terminated at the length returned, valid UTF-8 with no unsafe
 * character (ssf_utf8_unsafe()) but newline and tab, and making it printable again must change
 * nothing. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *buf, *again;
        size_t n, m;

        if (size > 65536)
                return 0;
        buf = malloc(size + 1);
        again = malloc(size + 1);
        if (!buf || !again)
                abort();
        if (size > 0)
                memcpy(buf, data, size);
        n = ssf_utf8_make_printable(buf, size, "\n\t");
        if (n > size || strlen(buf) != n)
                abort();
        for (size_t i = 0; i < n;) {
                uint32_t cp;
                size_t l = ssf_utf8_decode((const uint8_t *) buf + i, n - i, &cp);

                if (ssf_utf8_unsafe(cp) && cp != '\n' && cp != '\t')
                        abort();
                i += l;
        }
        memcpy(again, buf, n + 1);
        m = ssf_utf8_make_printable(again, n, "\n\t");
        if (m != n || memcmp(buf, again, n + 1) != 0)
                abort();
        free(buf);
        free(again);
        return 0;
}
