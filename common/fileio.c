/* SPDX-License-Identifier: MIT */
/*
 * Bounded, checked reading of small files (fileio.h). Linked into pam_ssf.so, ssf-sessiond
 * and ssfctl.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"

#define READ_CHUNK_MIN 4096u

ssize_t read_eintr(int fd, void *buf, size_t n) {
        for (;;) {
                ssize_t k = read(fd, buf, n);
                if (k >= 0)
                        return k;
                if (errno != EINTR)
                        return -errno;
        }
}

int open_checked(const char *path, FileFlags flags, uid_t owner_uid, size_t max_size) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (!path)
                return -EINVAL;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | ((flags & FILE_NOFOLLOW) ? O_NOFOLLOW : 0) |
                                ((flags & FILE_NONBLOCK) ? O_NONBLOCK : 0));
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if ((flags & FILE_REGULAR) && !S_ISREG(st.st_mode))
                return -EBADFD;
        if ((flags & FILE_OWNER) && st.st_uid != 0 && (owner_uid == (uid_t) -1 || st.st_uid != owner_uid))
                return -EPERM;
        if ((flags & FILE_NO_WRITE) && (st.st_mode & (S_IWGRP | S_IWOTH)))
                return -EPERM;
        if ((flags & FILE_PRIVATE) && (st.st_mode & (S_IRWXG | S_IRWXO)))
                return -EPERM;
        if (max_size > 0 && S_ISREG(st.st_mode) && (uint64_t) st.st_size > max_size)
                return -EFBIG;
        return TAKE_FD(fd);
}

/* Wipes the first n bytes of p, then frees it. Returns NULL. */
static char *wipe_and_free(char *p, size_t n) {
        if (p) {
                explicit_bzero(p, n);
                free(p);
        }
        return NULL;
}

int read_full_fd(int fd, size_t max_size, char **ret, size_t *ret_len) {
        char *buf = NULL;
        size_t len = 0, size = 0, cap, hint;
        struct stat st;
        int r;

        if (fd < 0 || !ret || max_size >= SIZE_MAX / 2)
                return -EINVAL;

        /* One byte more than allowed shows that there is more. A regular file says how large it
         * is, so that one allocation suffices unless it grows while we read it. */
        cap = max_size + 1;
        hint = MIN((size_t) READ_CHUNK_MIN, cap);
        if (fstat(fd, &st) >= 0 && S_ISREG(st.st_mode) && st.st_size > 0)
                hint = (uint64_t) st.st_size < max_size ? (size_t) st.st_size + 1 : cap;

        for (;;) {
                ssize_t k;

                if (len == size) {
                        size_t n = size == 0 ? hint : MIN(size * 2, cap);
                        char *nb;

                        /* Copied rather than realloc()ed, so that no unwiped copy is left behind. */
                        nb = malloc(n + 1);
                        if (!nb) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        if (len > 0)
                                memcpy(nb, buf, len);
                        wipe_and_free(buf, len);
                        buf = nb;
                        size = n;
                }

                k = read_eintr(fd, buf + len, size - len);
                if (k < 0) {
                        r = (int) k;
                        goto fail;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
                if (len > max_size) {
                        r = -EFBIG;
                        goto fail;
                }
        }

        buf[len] = 0;
        *ret = buf;
        if (ret_len)
                *ret_len = len;
        return 0;

fail:
        wipe_and_free(buf, len);
        return r;
}

int read_full_file(const char *path, FileFlags flags, uid_t owner_uid, size_t max_size, char **ret,
                   size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;

        if (!ret)
                return -EINVAL;

        fd = open_checked(path, flags, owner_uid, max_size);
        if (fd < 0)
                return fd;
        return read_full_fd(fd, max_size, ret, ret_len);
}
