/* SPDX-License-Identifier: MIT */
/* The Retry-After field value of a transmitter's 429/503 answer (retry-after.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "retry-after.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* 2024-03-01 12:00:00 UTC, and a time far ahead, as "now". */
        static const uint64_t nows[] = { 1709294400u, 253402300799u };
        char *s = malloc(size + 1);

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        for (size_t i = 0; i < sizeof(nows) / sizeof(nows[0]); i++) {
                uint64_t sec = UINT64_MAX;

                if (retry_after_parse(s, nows[i], &sec) == 0 && sec > RETRY_AFTER_MAX_SEC)
                        abort();
        }
        free(s);
        return 0;
}
