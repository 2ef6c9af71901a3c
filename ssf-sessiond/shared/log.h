/* SPDX-License-Identifier: MIT */
#pragma once

/* Daemon logging: to the journal (structured, with MESSAGE_ID) when not in the foreground or
 * when stderr is the journal, else to stderr as "ssf-sessiond: <level>: <message>".
 * Parsers (jws, jwks, set, ipc) never log above debug; their callers log.
 * Linked by both processes. */

#include <stdbool.h>
#include <syslog.h>

#include "macro.h"

/* MESSAGE_IDs of the structured records (journalctl MESSAGE_ID=…). */
#define SSF_MESSAGE_SET_RECEIVED "5b0e1a1c7d4e4a55a1a6f0f2c3d4e501"
#define SSF_MESSAGE_SET_REJECTED "5b0e1a1c7d4e4a55a1a6f0f2c3d4e502"
#define SSF_MESSAGE_RISK_CHANGED "5b0e1a1c7d4e4a55a1a6f0f2c3d4e503"
#define SSF_MESSAGE_ACTION "5b0e1a1c7d4e4a55a1a6f0f2c3d4e504"
#define SSF_MESSAGE_STREAM "5b0e1a1c7d4e4a55a1a6f0f2c3d4e505"

void log_setup(bool foreground);
void log_set_max_level(int level);
int log_get_max_level(void);
/* "debug", "info", "notice", "warning", "err"/"error", "crit"…; returns -EINVAL if unknown. */
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);

/* Between log_hold() and log_release() (they nest), the lines this thread writes to stderr
 * are kept and written together at the release, with one write(2) per 64 KiB: a batch of SETs
 * then costs one system call for its lines, not one per line. A warning or worse is written at
 * once, with the lines held before it. Without effect on the journal (one datagram a record),
 * on other threads, and on the order of this thread's lines. Lines held when the process dies
 * are lost: hold only around work whose failure is logged at warning or above. */
void log_hold(void);
void log_release(void);

/* Logs at level; when error != 0, "%m" expands to strerror(abs(error)). Returns -abs(error). */
int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) _printf_(6, 7);

/* Structured record: message plus extra "FIELD=value" strings, NULL-terminated. */
void log_struct_internal(int level, const char *message_id, const char *message, ...);
#define log_struct(level, message_id, message, ...) \
        log_struct_internal(level, message_id, message, __VA_ARGS__)

#define log_full_errno(level, error, ...) \
        log_internal(level, error, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_full(level, ...) (void) log_full_errno(level, 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...) log_full_errno(LOG_DEBUG, error, __VA_ARGS__)
#define log_info_errno(error, ...) log_full_errno(LOG_INFO, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, error, __VA_ARGS__)
