/* SPDX-License-Identifier: MIT */
/* Reads arbitrary bytes as a PAM snapshot base file and its journal, the way pam_ssf.so reads
 * them when the daemon is unreachable: the input up to its first NUL byte is the base file, the
 * rest (when there is a NUL) the journal. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "level.h"
#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *p = (const char *) data, *nul = memchr(p, 0, size);
        size_t base_len = nul ? (size_t) (nul - p) : size;
        const char *users[] = { "1000", "0", "alice", "4294967295" };

        for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
                SsfSnapshotPolicy pol = {};
                RiskLevel l = _RISK_INVALID;
                int r = ssf_snapshot_lookup_buffers(p, base_len, nul ? nul + 1 : NULL,
                                                    nul ? size - base_len - 1 : 0, users[i],
                                                    1700000000, &l, &pol);

                if (r == 0 && (l < RISK_NONE || l >= _RISK_MAX))
                        abort();
                if (r > 0 || (r < 0 && r != -ENOENT && r != -EBADMSG && r != -EFBIG))
                        abort();
                if (r == 0 || r == -ENOENT)
                        if (!memchr(pol.protect, 0, sizeof(pol.protect)))
                                abort();
        }
        return 0;
}
