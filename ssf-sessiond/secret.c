/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "secret.h"

int secret_read_file(const char *path, const char *what, char **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_erase_free_ char *buf = NULL;
        struct stat st;
        ssize_t n;
        size_t len;

        if (!path || !what || !ret)
                return -EINVAL;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return log_error_errno(errno, "Failed to open %s '%s': %m", what, path);
        if (fstat(fd, &st) < 0)
                return log_error_errno(errno, "Failed to stat '%s': %m", path);
        if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077)) {
                log_error("The %s '%s' must be a regular file owned by root and not accessible to "
                          "group or others, refusing", what, path);
                return -EPERM;
        }
        if ((size_t) st.st_size > SECRET_FILE_MAX) {
                log_error("The %s '%s' is larger than %u bytes, refusing", what, path, SECRET_FILE_MAX);
                return -EFBIG;
        }
        buf = calloc(1, SECRET_FILE_MAX + 1);
        if (!buf)
                return -ENOMEM;
        n = read(fd, buf, SECRET_FILE_MAX);
        if (n < 0)
                return log_error_errno(errno, "Failed to read '%s': %m", path);
        len = (size_t) n;
        while (len > 0 && buf[len - 1] != 0 && strchr(" \t\r\n", buf[len - 1]))
                buf[--len] = 0;
        if (len == 0 || strlen(buf) != len || strpbrk(buf, " \t\r\n")) {
                log_error("The %s '%s' must hold one secret on one line, refusing", what, path);
                return -EINVAL;
        }
        *ret = TAKE_PTR(buf);
        return 0;
}
