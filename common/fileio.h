/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Bounded, checked reading of small files: configuration the daemon trusts (the subject map,
 * secrets, the CA bundle) and the PAM snapshot. Linked into pam_ssf.so too: libc only, no
 * logging (callers log), no global state.
 */

#include <stddef.h>
#include <sys/types.h>

typedef enum FileFlags {
        FILE_NOFOLLOW = 1 << 0, /* open with O_NOFOLLOW: a symbolic link fails with -ELOOP */
        FILE_NONBLOCK = 1 << 1, /* open with O_NONBLOCK, so that a FIFO cannot block the open */
        FILE_REGULAR = 1 << 2,  /* -EBADFD unless a regular file */
        FILE_OWNER = 1 << 3,    /* -EPERM unless owned by root or by owner_uid */
        FILE_NO_WRITE = 1 << 4, /* -EPERM when group or others may write to it */
        FILE_PRIVATE = 1 << 5,  /* -EPERM when group or others have any access to it */
} FileFlags;

/* read() that retries EINTR. Returns the number of bytes read (0 at the end) or -errno. */
ssize_t read_eintr(int fd, void *buf, size_t n);

/* Opens path with O_RDONLY|O_CLOEXEC|O_NOCTTY (plus O_NOFOLLOW/O_NONBLOCK as flags ask),
 * fstat()s it and applies the checks in flags, in this order: -EBADFD (not regular), -EPERM
 * (owner, then mode). owner_uid is the one owner allowed besides root, (uid_t) -1 for none. A
 * regular file larger than max_size (0: no limit) fails with -EFBIG. Returns the fd or -errno. */
int open_checked(const char *path, FileFlags flags, uid_t owner_uid, size_t max_size);

/* Reads fd to its end into a NUL-terminated buffer: at most max_size bytes, -EFBIG when there
 * are more. Every buffer it lets go of is wiped first, so it may read secrets. Returns 0 with
 * *ret (to be freed) and *ret_len (may be NULL), or -errno. */
int read_full_fd(int fd, size_t max_size, char **ret, size_t *ret_len);

/* open_checked() and read_full_fd(): the whole file, at most max_size bytes. */
int read_full_file(const char *path, FileFlags flags, uid_t owner_uid, size_t max_size, char **ret,
                   size_t *ret_len);
