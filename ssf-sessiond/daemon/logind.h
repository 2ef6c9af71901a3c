/* SPDX-License-Identifier: MIT */
#pragma once

/* systemd-logind client on the system bus (DBUS_SYSTEM_BUS_ADDRESS honoured): list a user's
 * sessions (ListSessions + per-session properties: logind 252 has no ListSessionsEx) and
 * terminate those in scope. Every method call is bounded by LOGIND_CALL_TIMEOUT_USEC. Functions
 * log at debug level only; callers log the result.
 *
 * Which sessions count: every session logind lists for the uid, of any class (user, background
 * such as cron, ...) except the display manager's "greeter" and "lock-screen" classes, which are
 * not logins of the user. A property logind does not provide (or that has an unexpected type)
 * stays unknown: NULL strings, remote = -1. An unknown Remote matches neither "remote" nor
 * "local", an unknown Type does not match "graphical"; "all" matches it.
 * Runs in the root daemon. */

#include <stddef.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>

#include "config.h"

#define LOGIND_CALL_TIMEOUT_USEC (5ULL * 1000000ULL)

typedef struct LogindSession {
        char *id;        /* "3" */
        char *path;      /* object path as returned by logind */
        uid_t uid;
        char *user;
        char *type;      /* "tty", "x11", "wayland", "mir", "unspecified" */
        char *service;   /* PAM service: "sshd", "su-l", … */
        char *remote_host;
        int remote;      /* Remote property: 1, 0, or -1 when unknown */
        char *tty;
        char *class;     /* "user", "greeter", "lock-screen", "background", … (NULL: unknown) */
} LogindSession;

typedef struct LogoutResult {
        unsigned matched;    /* sessions of the user in scope */
        unsigned terminated; /* TerminateSession calls that succeeded */
        unsigned failed;
        char summary[512];   /* "terminated 2 of 2 sessions: 3 (sshd from 10.0.0.1), 5 (su-l on pts/1)",
                              * "no remote sessions to terminate", with "; failed: …" when some
                              * TerminateSession calls failed */
} LogoutResult;

/* Opens a connection to the system bus. Returns 0 or -errno. */
int logind_open(sd_bus **ret);

/* Sessions of uid. Caller frees with logind_sessions_free(). */
int logind_list_user_sessions(sd_bus *bus, uid_t uid, LogindSession **ret, size_t *ret_n);
void logind_sessions_free(LogindSession *s, size_t n);

/* Whether session s is in scope: all; remote (Remote=yes); local (Remote=no); graphical
 * (Type x11/wayland/mir). */
int logind_session_in_scope(const LogindSession *s, SessionScope scope);

/* Terminates every session of uid in scope. Returns 0 when every matched session was
 * terminated (also when none matched), -EIO when some failed, or -errno when listing failed;
 * *ret describes what happened in all cases. */
int logind_logout_user(sd_bus *bus, uid_t uid, SessionScope scope, LogoutResult *ret);
/* Locks every session of uid in scope (LockSession: graphical sessions' screen lockers obey it;
 * nothing ends). Same results; the summary says "locked". */
int logind_lock_user(sd_bus *bus, uid_t uid, SessionScope scope, LogoutResult *ret);
