/* SPDX-License-Identifier: MIT */
/* Decodes arbitrary bytes as an IPC frame; whatever decodes must re-encode to a frame of the
 * same size that decodes again to the same message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ssf-ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int streq0(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SsfIpcMsg m, again;
        uint8_t *buf;
        int n;

        if (ssf_ipc_decode(data, size, &m) < 0)
                return 0;

        buf = malloc(SSF_IPC_MAX_FRAME);
        if (!buf)
                abort();
        n = ssf_ipc_encode(&m, buf, SSF_IPC_MAX_FRAME);
        if (n < 0 || (size_t) n != size)
                abort(); /* a decoded message must encode to a frame of the same size */
        if (ssf_ipc_decode(buf, (size_t) n, &again) < 0)
                abort();
        if (again.type != m.type || again.has_status != m.has_status || again.status != m.status ||
            again.has_level != m.has_level || again.level != m.level || !streq0(again.user, m.user) ||
            !streq0(again.service, m.service) || !streq0(again.rhost, m.rhost) ||
            !streq0(again.tty, m.tty) || !streq0(again.message, m.message) ||
            !streq0(again.detection, m.detection) || !streq0(again.verb, m.verb) ||
            !streq0(again.args, m.args) || !streq0(again.body, m.body) ||
            !streq0(again.reason_user, m.reason_user) || again.dry_run != m.dry_run ||
            again.more != m.more)
                abort();

        ssf_ipc_msg_done(&again);
        ssf_ipc_msg_done(&m);
        free(buf);
        return 0;
}
