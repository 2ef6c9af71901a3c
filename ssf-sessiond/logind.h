/* SPDX-License-Identifier: MIT */
#pragma once

/* systemd-logind client on the system bus (DBUS_SYSTEM_BUS_ADDRESS honoured): list a user's
 * sessions (ListSessions + per-session properties: logind 252 has no ListSessionsEx) and
 * terminate those in scope. */

#include <stddef.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>

#include "config.h"

typedef struct LogindSession {
        char *id;        /* "3" */
        char *path;      /* object path as returned by logind */
        uid_t uid;
        char *user;
        char *type;      /* "tty", "x11", "wayland", "mir", "unspecified" */
        char *service;   /* PAM service: "sshd", "su-l", … */
        char *remote_host;
        int remote;      /* Remote property */
        char *tty;
} LogindSession;

typedef struct LogoutResult {
        unsigned matched;    /* sessions of the user in scope */
        unsigned terminated; /* TerminateSession calls that succeeded */
        unsigned failed;
        char summary[512];   /* "terminated 2 of 2 sessions (3 sshd, 4 su-l)" */
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
