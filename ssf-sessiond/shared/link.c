/* SPDX-License-Identifier: MIT */
/*
 * The framing of the channel between root and the network worker (link.h), used by both
 * processes: one JSON object per SOCK_SEQPACKET datagram, bounded and parsed strictly.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "link.h"
#include "macro.h"

int link_send(int fd, json_t *msg) {
        _cleanup_free_ char *text = json_dumps(msg, JSON_COMPACT);
        size_t len;

        if (!text)
                return -ENOMEM;
        len = strlen(text);
        if (len > LINK_MAX_FRAME)
                return -EMSGSIZE;
        for (;;) {
                ssize_t n = send(fd, text, len, MSG_NOSIGNAL);
                if (n >= 0)
                        return (size_t) n == len ? 0 : -EIO;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN) {
                        struct pollfd p = { .fd = fd, .events = POLLOUT };
                        if (poll(&p, 1, 5000) <= 0)
                                return -ETIMEDOUT;
                        continue;
                }
                return -errno;
        }
}

int link_parse(const char *buf, size_t len, json_t **ret) {
        json_t *j;

        if (len > LINK_MAX_FRAME)
                return -EMSGSIZE;
        if (!buf || len == 0)
                return -EBADMSG;
        j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(j) || !json_is_string(json_object_get(j, "type"))) {
                json_decref(j);
                return -EBADMSG;
        }
        *ret = j;
        return 0;
}

int link_recv(int fd, json_t **ret) {
        _cleanup_free_ char *buf = malloc(LINK_MAX_FRAME + 1);
        ssize_t n;

        if (!buf)
                return -ENOMEM;
        n = recv(fd, buf, LINK_MAX_FRAME + 1, MSG_TRUNC | MSG_CMSG_CLOEXEC);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
        if (n == 0)
                return -ECONNRESET;
        return link_parse(buf, (size_t) n, ret);
}
