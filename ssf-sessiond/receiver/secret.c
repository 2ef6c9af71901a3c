/* SPDX-License-Identifier: MIT */
/*
 * Secrets kept in files (secret.h): the bearer token and the OAuth 2.0 client secret, read
 * before the worker drops privileges. Runs in the network worker.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "secret.h"

static bool header_value_ok(const char *v) {
        if (v[0] == ' ')
                return false;
        for (const unsigned char *c = (const unsigned char *) v; *c; c++)
                if (*c < 0x20 || *c > 0x7e || (*c == ' ' && c[1] == ' '))
                        return false;
        return true;
}

/* header: an HTTP header value (printable ASCII, single spaces inside), else one token. */
static int read_secret(const char *path, const char *what, bool header, char **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_erase_free_ char *buf = NULL;
        size_t len;
        int r;

        if (!path || !what || !ret)
                return -EINVAL;

        fd = open_checked(path, FILE_NOFOLLOW | FILE_REGULAR | FILE_OWNER | FILE_PRIVATE, (uid_t) -1,
                          SECRET_FILE_MAX);
        if (fd == -EBADFD || fd == -EPERM) {
                log_error("The %s '%s' must be a regular file owned by root and not accessible to "
                          "group or others, refusing", what, path);
                return -EPERM;
        }
        if (fd == -EFBIG)
                goto too_large;
        if (fd < 0)
                return log_error_errno(fd, "Failed to open %s '%s': %m", what, path);

        r = read_full_fd(fd, SECRET_FILE_MAX, &buf, &len);
        if (r == -EFBIG)
                goto too_large; /* it grew after fstat() */
        if (r < 0)
                return log_error_errno(r, "Failed to read '%s': %m", path);

        while (len > 0 && buf[len - 1] != 0 && strchr(" \t\r\n", buf[len - 1]))
                buf[--len] = 0;
        if (len == 0 || strlen(buf) != len || strpbrk(buf, header ? "\t\r\n" : " \t\r\n") ||
            (header && (!header_value_ok(buf)))) {
                explicit_bzero(buf, len); /* erase_and_free() stops at a NUL byte */
                log_error("The %s '%s' must hold one secret on one line, refusing", what, path);
                return -EINVAL;
        }
        *ret = TAKE_PTR(buf);
        return 0;

too_large:
        log_error("The %s '%s' is larger than %u bytes, refusing", what, path, SECRET_FILE_MAX);
        return -EFBIG;
}

int secret_read_file(const char *path, const char *what, char **ret) {
        return read_secret(path, what, false, ret);
}

int secret_read_header_file(const char *path, const char *what, char **ret) {
        return read_secret(path, what, true, ret);
}
