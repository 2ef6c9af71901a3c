/* SPDX-License-Identifier: MIT */
/* The push listener's HTTP/1.1 request head parser (push_parse_head), the checks made before
 * a body is read (push_check_head, push_authorized) and the response it would format. The
 * input is what a client sends on a connection, bytes as they come. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "push.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool inside(const char *p, size_t n, const char *buf, size_t len) {
        return p >= buf && p + n <= buf + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *buf = (const char *) data;
        PushRequest req;
        unsigned status = 0;
        char *out = NULL;
        size_t out_len = 0;
        int r;

        r = push_parse_head(buf, size, &req, &status);
        if (r == -EAGAIN) {
                if (size >= PUSH_MAX_HEAD)
                        abort(); /* must have been refused as too large */
                return 0;
        }
        if (r < 0) {
                if (r != -EBADMSG || (status != 400 && status != 414 && status != 431 &&
                                      status != 505))
                        abort();
        } else {
                if (req.head_len > size || req.head_len > PUSH_MAX_HEAD || req.head_len < 4 ||
                    memcmp(buf + req.head_len - 4, "\r\n\r\n", 4) != 0)
                        abort();
                if (req.n_headers > PUSH_MAX_HEADERS || !req.method[0])
                        abort();
                if (!inside(req.target, req.target_len, buf, req.head_len) ||
                    req.target_len == 0 || req.target[0] != '/' || req.target_len > PUSH_MAX_TARGET)
                        abort();
                if (req.authorization &&
                    !inside(req.authorization, req.authorization_len, buf, req.head_len))
                        abort();
                if (req.content_type &&
                    !inside(req.content_type, req.content_type_len, buf, req.head_len))
                        abort();
                status = push_check_head(&req, "/ssf/events");
                if (status == 0 && (!req.has_content_length || req.content_length > PUSH_MAX_BODY ||
                                    req.has_transfer_encoding || strcmp(req.method, "POST") != 0))
                        abort();
                if (status == 0 && push_authorized(&req, "Bearer c2VjcmV0") &&
                    req.authorization_len < strlen("Bearer c2VjcmV0"))
                        abort();
                if (status == 0)
                        status = 202;
        }
        if (push_format_response(status, NULL, NULL, &out, &out_len) < 0)
                abort();
        if (out_len != strlen(out) || memcmp(out, "HTTP/1.1 ", 9) != 0 ||
            !strstr(out, "\r\nConnection: close\r\n") || memcmp(out + out_len - 4, "\r\n\r\n", 4))
                abort();
        free(out);
        return 0;
}
