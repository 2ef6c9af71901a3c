/* SPDX-License-Identifier: MIT */
/* Parses arbitrary bytes as snapshot lines, the way ssf_snapshot_lookup() splits a file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "level.h"
#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *p = (const char *) data, *end = p + size;

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t len = nl ? (size_t) (nl - p) : (size_t) (end - p);
                char *linebuf = malloc(len + 1);
                SsfSnapshotEntry e;
                int r;

                if (!linebuf)
                        abort();
                r = ssf_snapshot_parse_line(p, len, linebuf, &e);
                if (r > 0) {
                        /* An entry points into linebuf and holds a valid level. */
                        if (e.user < linebuf || e.user > linebuf + len || e.level < RISK_NONE ||
                            e.level >= _RISK_MAX || strlen(e.user) == 0)
                                abort();
                } else if (r < 0 && len == 0)
                        abort(); /* an empty line is never malformed */
                free(linebuf);
                p += len + 1;
        }
        return 0;
}
