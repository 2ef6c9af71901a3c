/* SPDX-License-Identifier: MIT */
/*
 * Terminal warnings before a logout (ttywarn.h): which TTY names are terminals, the bounded
 * non-blocking write that never follows a symlink, and the wall-style text. Runs in the root
 * daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "ttywarn.h"
#include "utf8.h"

/* The group the terminal is opened with: the overflow group ("nogroup"), which owns no
 * terminal. */
#define TTYWARN_NO_GID ((gid_t) 65534)

#define TTY_OPEN_FLAGS (O_WRONLY | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC)

static bool all_digits(const char *s) {
        if (*s == '\0')
                return false;
        for (; *s; s++)
                if (*s < '0' || *s > '9')
                        return false;
        return true;
}

static bool all_alnum(const char *s) {
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
                        return false;
        return true;
}

int ttywarn_device_name(const char *tty, char *ret, size_t size) {
        const char *name, *p;
        size_t l;

        if (isempty(tty) || !ret || size == 0)
                return -EINVAL;
        /* logind strips "/dev/" (pam_systemd); a service may have given the full path. */
        name = startswith(tty, "/dev/") ?: tty;
        if ((p = startswith(name, "pts/"))) {
                if (!all_digits(p))
                        return -EINVAL;
        } else if ((p = startswith(name, "tty"))) {
                if (!all_alnum(p))
                        return -EINVAL;
        } else
                return -EINVAL;
        l = strlen(name);
        if (l >= size || l > 64)
                return -ENAMETOOLONG;
        memcpy(ret, name, l + 1);
        return 0;
}

/* Opens /dev/name for writing without following any symlink on the way: openat2() with
 * RESOLVE_NO_SYMLINKS below /dev; where openat2() is unavailable (old kernel, a seccomp filter),
 * O_NOFOLLOW on the last component and a check that the only directory on the way (pts) is
 * one. */
static int open_terminal(const char *name) {
        _cleanup_close_ int dfd = -EBADF;
        struct open_how how = {
                .flags = TTY_OPEN_FLAGS,
                .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH,
        };
        int fd;

        dfd = open("/dev", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        fd = (int) syscall(SYS_openat2, dfd, name, &how, sizeof(how));
        if (fd >= 0)
                return fd;
        if (errno != ENOSYS && errno != EPERM && errno != E2BIG)
                return -errno;

        if (strchr(name, '/')) {
                struct stat st;

                if (fstatat(dfd, "pts", &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (!S_ISDIR(st.st_mode))
                        return -ELOOP;
        }
        fd = openat(dfd, name, TTY_OPEN_FLAGS);
        return fd < 0 ? -errno : fd;
}

/* Opens /dev/name with the file system identity of owner and no group's (setfsuid() and
 * setfsgid(), which are per thread): the terminal is opened only through its owner's
 * permission, without CAP_DAC_OVERRIDE (which the unit does not grant anyway) and never through
 * a group's. Without CAP_SETUID/CAP_SETGID the open is done as the daemon is; the caller checks
 * the owner in both cases. */
static int open_terminal_as(const char *name, uid_t owner) {
        gid_t old_gid = (gid_t) setfsgid(TTYWARN_NO_GID);
        uid_t old_uid = (uid_t) setfsuid(owner);
        int fd;

        fd = open_terminal(name);
        (void) setfsuid(old_uid);
        (void) setfsgid(old_gid);
        return fd;
}

static uint64_t mono_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

int ttywarn_write(const char *tty, uid_t owner, const char *msg, size_t len, uint64_t timeout_usec) {
        _cleanup_close_ int fd = -EBADF;
        char name[80];
        struct stat st;
        uint64_t deadline = mono_usec() + timeout_usec;
        size_t done = 0;
        int r;

        if (!msg)
                return -EINVAL;
        r = ttywarn_device_name(tty, name, sizeof(name));
        if (r < 0)
                return r;
        fd = open_terminal_as(name, owner);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISCHR(st.st_mode) || !isatty(fd))
                return -ENOTTY;
        if (st.st_uid != owner)
                return -EPERM; /* not the session user's terminal (any more) */

        while (done < len) {
                ssize_t k = write(fd, msg + done, len - done);
                uint64_t now;
                struct pollfd p = { .fd = fd, .events = POLLOUT };

                if (k > 0) {
                        done += (size_t) k;
                        continue;
                }
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno != EAGAIN)
                        return -errno;
                /* Full: wait for room, until the deadline. */
                now = mono_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int) MAX((deadline - now + 999) / 1000, (uint64_t) 1));
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
                if (r > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)))
                        return -EIO;
        }
        return 0;
}

/* Appends src to buf[*pos..size), printable only: invalid UTF-8 and every unsafe character
 * (ssf_utf8_unsafe(): C0 and C1 controls, DEL, bidirectional and invisible ones) become '?', so
 * no escape sequence reaches the terminal; at most max_chars characters, then
 * "...". Always leaves buf NUL-terminated. */
static void append_printable(char *buf, size_t size, size_t *pos, const char *src, size_t max_chars) {
        const uint8_t *s = (const uint8_t *) strempty(src);
        size_t n = strlen((const char *) s), chars = 0;

        while (n > 0 && *pos + 1 < size) {
                uint32_t cp;
                size_t len;

                if (chars == max_chars) {
                        for (const char *e = "..."; *e && *pos + 1 < size; e++)
                                buf[(*pos)++] = *e;
                        break;
                }
                len = ssf_utf8_decode(s, n, &cp);
                if (ssf_utf8_unsafe(cp))
                        buf[(*pos)++] = '?';
                else if (*pos + len + 1 > size)
                        break;
                else {
                        memcpy(buf + *pos, s, len);
                        *pos += len;
                }
                s += len;
                n -= len;
                chars++;
        }
        buf[*pos] = '\0';
}

static void append_text(char *buf, size_t size, size_t *pos, const char *text) {
        size_t l = strlen(text);

        if (*pos + 1 >= size)
                return;
        l = MIN(l, size - 1 - *pos);
        memcpy(buf + *pos, text, l);
        *pos += l;
        buf[*pos] = '\0';
}

size_t ttywarn_format(char *buf, size_t size, const char *host, uint64_t now_usec,
                      const char *detection, uint64_t warn_usec, const char *reason_user) {
        time_t t = (time_t) (now_usec / 1000000u);
        uint64_t seconds = (warn_usec + 999999u) / 1000000u;
        char when[64] = "", line[128];
        struct tm tm;
        size_t pos = 0;

        if (!buf || size == 0)
                return 0;
        buf[0] = '\0';
        if (gmtime_r(&t, &tm))
                (void) strftime(when, sizeof(when), "%a %Y-%m-%d %H:%M:%S UTC", &tm);

        append_text(buf, size, &pos, "\r\n\aBroadcast message from ssf-sessiond@");
        append_printable(buf, size, &pos, isempty(host) ? "localhost" : host, 64);
        append_text(buf, size, &pos, " (");
        append_text(buf, size, &pos, when);
        append_text(buf, size, &pos, "):\r\n\r\nssf: ");
        append_printable(buf, size, &pos, isempty(detection) ? "risk" : detection, 64);
        (void) snprintf(line, sizeof(line), " -- you will be logged out in %llu second%s.\r\n",
                        (unsigned long long) seconds, seconds == 1 ? "" : "s");
        append_text(buf, size, &pos, line);
        if (!isempty(reason_user)) {
                append_printable(buf, size, &pos, reason_user, TTYWARN_REASON_MAX);
                append_text(buf, size, &pos, "\r\n");
        }
        append_text(buf, size, &pos, "\r\n");
        return pos;
}
