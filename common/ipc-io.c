/* SPDX-License-Identifier: MIT */
/*
 * Framed I/O for the ssf IPC protocol on SOCK_SEQPACKET sockets, bounded by one
 * CLOCK_MONOTONIC deadline. Used inside the PAM host process: no signals (MSG_NOSIGNAL), no
 * blocking calls, no logging.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "ssf-ipc.h"

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
/* While the listener's backlog is full (EAGAIN), retry connect() this often. */
#define CONNECT_RETRY_MSEC 10

uint64_t ssf_now_usec(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                return 0;
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000u;
}

/* Milliseconds left until the deadline, rounded up, or -ETIMEDOUT when it has passed. */
static int remaining_msec(uint64_t deadline_usec) {
        uint64_t now = ssf_now_usec(), left;

        if (now >= deadline_usec)
                return -ETIMEDOUT;
        left = (deadline_usec - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
        return left > INT_MAX ? INT_MAX : (int) left;
}

/* Waits for events on fd until the deadline. Returns 0 when ready, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, uint64_t deadline_usec) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                int t = remaining_msec(deadline_usec), n;

                if (t < 0)
                        return t;
                n = poll(&p, 1, t);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        continue; /* remaining_msec() reports the timeout */
                if (p.revents & POLLNVAL)
                        return -EBADF;
                if (p.revents & (events | POLLERR | POLLHUP))
                        return 0;
        }
}

int ssf_ipc_send(int fd, const SsfIpcMsg *m, uint64_t deadline_usec) {
        _cleanup_free_ uint8_t *buf = NULL;
        int n, r;

        if (fd < 0)
                return -EBADF;
        if (!m)
                return -EINVAL;

        buf = malloc(SSF_IPC_MAX_FRAME);
        if (!buf)
                return -ENOMEM;
        n = ssf_ipc_encode(m, buf, SSF_IPC_MAX_FRAME);
        if (n < 0)
                return n;

        for (;;) {
                ssize_t k = send(fd, buf, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k >= 0)
                        return k == n ? 0 : -EIO; /* SOCK_SEQPACKET sends whole records */
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;
                r = wait_fd(fd, POLLOUT, deadline_usec);
                if (r < 0)
                        return r;
        }
}

int ssf_ipc_recv(int fd, SsfIpcMsg *ret, uint64_t deadline_usec) {
        _cleanup_free_ uint8_t *buf = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        *ret = (SsfIpcMsg) {};
        if (fd < 0)
                return -EBADF;

        buf = malloc(SSF_IPC_MAX_FRAME);
        if (!buf)
                return -ENOMEM;

        for (;;) {
                struct iovec iov = { .iov_base = buf, .iov_len = SSF_IPC_MAX_FRAME };
                /* No control buffer: file descriptors a peer might pass are discarded by the
                 * kernel instead of landing in our process. */
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
                ssize_t k;

                /* MSG_TRUNC makes recvmsg() return the datagram's real size. */
                k = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return -errno;
                        r = wait_fd(fd, POLLIN, deadline_usec);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (k == 0)
                        return -ECONNRESET; /* the peer closed without answering */
                if ((size_t) k > SSF_IPC_MAX_FRAME || (mh.msg_flags & MSG_TRUNC))
                        return -EMSGSIZE;
                return ssf_ipc_decode(buf, (size_t) k, ret);
        }
}

/* Moves fd to a number >= 3 (login may call us with 0-2 closed). Takes ownership of fd. */
static int fd_move_above_stdio(int fd) {
        int copy;

        if (fd < 0 || fd > 2)
                return fd;
        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0) {
                int r = -errno;
                safe_close(fd);
                return r;
        }
        safe_close(fd);
        return copy;
}

static int check_owner(uid_t uid, uid_t allowed_uid) {
        if (uid == 0 || (allowed_uid != (uid_t) -1 && uid == allowed_uid))
                return 0;
        return -EPERM;
}

int ssf_ipc_connect(const char *path, uid_t allowed_uid, uint64_t deadline_usec) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct ucred cred = {};
        socklen_t cl = sizeof(cred);
        struct stat st;
        size_t l;
        int r;

        if (isempty(path))
                return -EINVAL;
        l = strlen(path);
        if (l >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, l);

        /* The path must be a socket owned by root or the daemon's user. SO_PEERCRED below
         * authenticates the process that actually answers. */
        if (stat(path, &st) < 0)
                return -errno;
        if (!S_ISSOCK(st.st_mode))
                return -ENOTSOCK;
        r = check_owner(st.st_uid, allowed_uid);
        if (r < 0)
                return r;

        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        fd = fd_move_above_stdio(fd);
        if (fd < 0)
                return fd;

        for (;;) {
                if (connect(fd, (const struct sockaddr *) &sa,
                            (socklen_t) (offsetof(struct sockaddr_un, sun_path) + l + 1)) >= 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN) {
                        /* AF_UNIX: the listener's backlog is full. Retry until the deadline. */
                        int t = remaining_msec(deadline_usec);
                        if (t < 0)
                                return t;
                        (void) poll(NULL, 0, MIN(t, CONNECT_RETRY_MSEC));
                        continue;
                }
                if (errno == EINPROGRESS) {
                        int err = 0;
                        socklen_t el = sizeof(err);

                        r = wait_fd(fd, POLLOUT, deadline_usec);
                        if (r < 0)
                                return r;
                        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
                                return -errno;
                        if (err != 0)
                                return -err;
                        break;
                }
                return -errno;
        }

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0)
                return -errno;
        if (cl != sizeof(cred))
                return -EIO;
        r = check_owner(cred.uid, allowed_uid);
        if (r < 0)
                return r;

        return TAKE_FD(fd);
}
