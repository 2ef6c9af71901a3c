/* SPDX-License-Identifier: MIT */
/* What a logout's warning writes to a terminal (ttywarn.c): the TTY name logind reports and the
 * text made of the event's facts (detection, the user-facing reason). The input, split at the
 * first NUL, is the TTY name and the reason; the text must hold no control byte but its own
 * layout's, no escape sequence, and stay within its bound. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ttywarn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 2), name[80], msg[TTYWARN_MESSAGE_MAX];
        const char *reason;
        size_t l;

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        s[size + 1] = 0;
        reason = s + strlen(s) + 1;

        if (ttywarn_device_name(s, name, sizeof(name)) == 0 &&
            (strstr(name, "..") || name[0] == '/' || strlen(name) > 64))
                abort();

        l = ttywarn_format(msg, sizeof(msg), s, 1796520000ULL * 1000000ULL, reason, 90000000ULL,
                           reason);
        if (l >= sizeof(msg) || msg[l] != '\0' || strlen(msg) != l)
                abort();
        for (size_t i = 0; i < l; i++) {
                unsigned char c = (unsigned char) msg[i];

                if ((c < 0x20 && c != '\r' && c != '\n' && !(c == '\a' && i == 2)) || c == 0x7f)
                        abort();
                if (c == 0xc2 && i + 1 < l && (unsigned char) msg[i + 1] < 0xa0)
                        abort(); /* a C1 control such as CSI */
        }
        free(s);
        return 0;
}
