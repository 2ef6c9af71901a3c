/* SPDX-License-Identifier: MIT */
/*
 * Logging (log.h): the journal, structured, or stderr in the foreground. Linked by both
 * processes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "log.h"

static int max_level = LOG_INFO;
static bool to_journal = false;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* The lines this thread holds (log_hold()): LOG_HELD_MAX bytes while it holds, else NULL. */
#define LOG_HELD_MAX (64u * 1024u)
static __thread char *held;
static __thread size_t held_len;
static __thread unsigned held_depth;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg",   [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit",
        [LOG_ERR] = "err",       [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",     [LOG_DEBUG] = "debug",
};

static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_setup(bool foreground) {
        const char *e = getenv("SSF_LOG_LEVEL");
        int l;

        to_journal = !foreground || stderr_is_journal();
        if (e && (l = log_level_from_string(e)) >= 0)
                max_level = l;
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

const char *log_level_to_string(int level) {
        return level_names[level & 7];
}

int log_level_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        if (strcasecmp(s, "error") == 0)
                return LOG_ERR;
        if (strcasecmp(s, "warn") == 0)
                return LOG_WARNING;
        for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
                if (strcasecmp(s, level_names[i]) == 0)
                        return (int) i;
        return -EINVAL;
}

/* The whole of p to stderr, retried after a signal or a short write; a failure drops the rest
 * (there is nowhere to say so). */
static void write_all(const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(STDERR_FILENO, p, n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return;
                p += k;
                n -= (size_t) k;
        }
}

static void held_flush(void) {
        if (held_len == 0)
                return;
        pthread_mutex_lock(&log_lock);
        write_all(held, held_len);
        pthread_mutex_unlock(&log_lock);
        held_len = 0;
}

/* "ssf-sessiond: <level>: <text>" as one line on stderr: with one write(2) of its own (under
 * the lock, so that threads' lines never interleave), or, while this thread holds its lines,
 * after those it holds. A warning or worse is written at once, with the lines held before it. */
static void stderr_line(int level, const char *text) {
        char line[4200];
        int n = snprintf(line, sizeof(line), "ssf-sessiond: %s: %s\n", level_names[level & 7],
                         text);

        if (n < 0)
                return;
        if ((size_t) n >= sizeof(line)) {
                n = (int) sizeof(line) - 1;
                line[n - 1] = '\n';
        }
        if (held) {
                if (held_len + (size_t) n > LOG_HELD_MAX)
                        held_flush();
                memcpy(held + held_len, line, (size_t) n);
                held_len += (size_t) n;
                if (level <= LOG_WARNING)
                        held_flush();
                return;
        }
        pthread_mutex_lock(&log_lock);
        write_all(line, (size_t) n);
        pthread_mutex_unlock(&log_lock);
}

void log_hold(void) {
        if (held_depth++ > 0 || to_journal)
                return;
        held = malloc(LOG_HELD_MAX); /* without memory, each line is written at once */
        held_len = 0;
}

void log_release(void) {
        if (held_depth == 0 || --held_depth > 0)
                return;
        if (held) {
                held_flush();
                free(held);
                held = NULL;
        }
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;

        if (level > max_level)
                return -abs(error);

        errno = abs(error);
        va_start(ap, format);
        (void) vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        if (to_journal) {
                char cfile[256], cline[32];
                (void) snprintf(cfile, sizeof(cfile), "CODE_FILE=%s", file);
                (void) snprintf(cline, sizeof(cline), "CODE_LINE=%d", line);
                (void) sd_journal_send_with_location(cfile, cline, func, "MESSAGE=%s", buf,
                                                     "PRIORITY=%i", level,
                                                     "SYSLOG_IDENTIFIER=ssf-sessiond",
                                                     error ? "ERRNO=%i" : NULL, abs(error), NULL);
        } else
                stderr_line(level, buf);
        errno = saved;
        return -abs(error);
}

void log_struct_internal(int level, const char *message_id, const char *message, ...) {
        struct iovec iov[24];
        size_t n = 0;
        va_list ap;
        const char *f;
        char mbuf[2048], prio[32], mid[64];

        if (level > max_level)
                return;

        if (!to_journal) {
                /* Plain text: the message, then the fields in brackets. */
                char line[4096];
                size_t off = 0;
                off += (size_t) snprintf(line + off, sizeof(line) - off, "%s", message);
                va_start(ap, message);
                while ((f = va_arg(ap, const char *)) && off < sizeof(line))
                        off += (size_t) snprintf(line + off, sizeof(line) - off, " [%s]", f);
                va_end(ap);
                stderr_line(level, line);
                return;
        }

        (void) snprintf(mbuf, sizeof(mbuf), "MESSAGE=%s", message);
        (void) snprintf(prio, sizeof(prio), "PRIORITY=%i", level);
        (void) snprintf(mid, sizeof(mid), "MESSAGE_ID=%s", message_id);
        iov[n++] = (struct iovec){ mbuf, strlen(mbuf) };
        iov[n++] = (struct iovec){ prio, strlen(prio) };
        iov[n++] = (struct iovec){ mid, strlen(mid) };
        iov[n++] = (struct iovec){ UNCONST("SYSLOG_IDENTIFIER=ssf-sessiond"),
                                   strlen("SYSLOG_IDENTIFIER=ssf-sessiond") };
        va_start(ap, message);
        while ((f = va_arg(ap, const char *)) && n < ARRAY_SIZE(iov))
                iov[n++] = (struct iovec){ UNCONST(f), strlen(f) };
        va_end(ap);
        (void) sd_journal_sendv(iov, (int) n);
}
