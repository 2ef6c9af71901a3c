/* SPDX-License-Identifier: MIT */
#pragma once

/* Small macros and inline helpers (cleanup attributes, TAKE_PTR, streq, safe_close, ...) in the
 * systemd style. Header only; used in pam_ssf.so, ssf-sessiond and ssfctl alike. */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _public_ __attribute__((visibility("default")))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_ __attribute__((unused))
#define _cleanup_(x) __attribute__((cleanup(x)))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))

#define PID_FMT "%d"
/* Drops const for struct fields that are owned in some uses and borrowed in others. */
#define UNCONST(p) ((char *) (uintptr_t) (const void *) (p))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Hand ownership on: "*ret = TAKE_PTR(p);" leaves p NULL. */
#define TAKE_PTR(p)                                  \
        ({                                           \
                __typeof__(p) _ptr_ = (p);           \
                (p) = NULL;                          \
                _ptr_;                               \
        })
#define TAKE_FD(fd)                                  \
        ({                                           \
                int _fd_ = (fd);                     \
                (fd) = -EBADF;                       \
                _fd_;                                \
        })

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)      \
        static inline void func##p(type *p) {        \
                if (*p)                              \
                        func(*p);                    \
        }

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}
static inline void closep(int *fd) {
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Wipes then frees a NUL-terminated secret. Returns NULL. */
static inline void *erase_and_free(void *p) {
        if (p) {
                explicit_bzero(p, strlen(p));
                free(p);
        }
        return NULL;
}
static inline void erase_and_freep(void *p) {
        erase_and_free(*(void **) p);
}
#define _cleanup_erase_free_ _cleanup_(erase_and_freep)

static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}
#define RET_NERRNO(expr)                             \
        ({                                           \
                long _r_ = (long) (expr);            \
                _r_ < 0 ? negative_errno() : (int) _r_; \
        })

static inline int streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}
static inline int streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
static inline const char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}
static inline const char *strempty(const char *s) {
        return s ? s : "";
}
static inline int isempty(const char *s) {
        return !s || !*s;
}

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}
