/* SPDX-License-Identifier: MIT */
/*
 * The systemd-logind client (logind.h): lists a user's sessions and terminates those in
 * scope. Runs in the root daemon (the action thread).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>

#include "log.h"
#include "logind.h"
#include "macro.h"

#define LOGIND_SERVICE "org.freedesktop.login1"
#define LOGIND_PATH "/org/freedesktop/login1"
#define LOGIND_MANAGER_IFACE "org.freedesktop.login1.Manager"
#define LOGIND_SESSION_IFACE "org.freedesktop.login1.Session"

/* Upper bound on the sessions we look at for one listing: logind's own default SessionsMax is
 * 8192. */
#define LOGIND_SESSIONS_MAX 8192U

#define _cleanup_bus_error_ _cleanup_(sd_bus_error_free)

/* Calls method on the logind manager with a bounded timeout. Logs only at debug level: callers
 * log. A reply of org.freedesktop.login1.NoSuchSession is returned as -ESRCH, whatever errno
 * libsystemd maps it to. */
static int manager_call(sd_bus *bus, const char *method, sd_bus_message **ret_reply,
                        const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, LOGIND_SERVICE, LOGIND_PATH, LOGIND_MANAGER_IFACE,
                                           method);
        if (r < 0)
                return r;
        if (types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }

        r = sd_bus_call(bus, m, LOGIND_CALL_TIMEOUT_USEC, &error, &reply);
        if (r < 0) {
                log_debug("logind %s failed: %s (%s)", method, strempty(error.name),
                          strempty(error.message));
                if (sd_bus_error_has_name(&error, "org.freedesktop.login1.NoSuchSession"))
                        return -ESRCH;
                return r;
        }
        if (ret_reply)
                *ret_reply = TAKE_PTR(reply);
        return 0;
}

int logind_open(sd_bus **ret) {
        sd_bus *bus = NULL;
        int r;

        if (!ret)
                return -EINVAL;

        /* sd_bus_open_system() honours $DBUS_SYSTEM_BUS_ADDRESS. */
        r = sd_bus_open_system(&bus);
        if (r < 0) {
                log_debug("Failed to connect to the system bus: %s", strerror(-r));
                return r;
        }
        r = sd_bus_set_method_call_timeout(bus, LOGIND_CALL_TIMEOUT_USEC);
        if (r < 0) {
                sd_bus_flush_close_unref(bus);
                return r;
        }
        *ret = bus;
        return 0;
}

static void session_done(LogindSession *s) {
        free(s->id);
        free(s->path);
        free(s->user);
        free(s->type);
        free(s->service);
        free(s->remote_host);
        free(s->tty);
        free(s->class);
}

void logind_sessions_free(LogindSession *s, size_t n) {
        if (!s)
                return;
        for (size_t i = 0; i < n; i++)
                session_done(&s[i]);
        free(s);
}

static int strdup_to(char **dst, const char *s) {
        char *c = strdup(s);

        if (!c)
                return -ENOMEM;
        free(*dst);
        *dst = c;
        return 0;
}

/* Reads one property value from the current position (a variant). Properties with an
 * unexpected type are skipped and stay unknown. */
static int read_session_property(sd_bus_message *m, const char *name, LogindSession *s) {
        static const struct {
                const char *name;
                size_t offset;
        } strings[] = {
                { "Id", offsetof(LogindSession, id) },
                { "Name", offsetof(LogindSession, user) },
                { "Type", offsetof(LogindSession, type) },
                { "Service", offsetof(LogindSession, service) },
                { "RemoteHost", offsetof(LogindSession, remote_host) },
                { "TTY", offsetof(LogindSession, tty) },
                { "Class", offsetof(LogindSession, class) },
        };
        const char *contents = NULL, *str;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (type != SD_BUS_TYPE_VARIANT || !contents)
                return -EBADMSG;

        for (size_t i = 0; i < ARRAY_SIZE(strings); i++) {
                if (!streq(name, strings[i].name))
                        continue;
                if (!streq(contents, "s"))
                        break;
                r = sd_bus_message_read(m, "v", "s", &str);
                if (r < 0)
                        return r;
                return strdup_to((char **) ((uint8_t *) s + strings[i].offset), str);
        }

        if (streq(name, "Remote") && streq(contents, "b")) {
                int b;

                r = sd_bus_message_read(m, "v", "b", &b);
                if (r < 0)
                        return r;
                s->remote = !!b;
                return 0;
        }
        if (streq(name, "User") && streq(contents, "(uo)")) {
                uint32_t uid;
                const char *path;

                r = sd_bus_message_read(m, "v", "(uo)", &uid, &path);
                if (r < 0)
                        return r;
                s->uid = (uid_t) uid;
                return 0;
        }

        return sd_bus_message_skip(m, "v");
}

/* Fills s from the session object's properties (one GetAll call). A property the object lacks
 * stays unknown (NULL, or remote = -1). */
static int session_read_properties(sd_bus *bus, LogindSession *s) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, LOGIND_SERVICE, s->path,
                                           "org.freedesktop.DBus.Properties", "GetAll");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", LOGIND_SESSION_IFACE);
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, LOGIND_CALL_TIMEOUT_USEC, &error, &reply);
        if (r < 0) {
                log_debug("Failed to read properties of session '%s': %s (%s)", s->id,
                          strempty(error.name), strempty(error.message));
                return r;
        }

        r = sd_bus_message_enter_container(reply, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r < 0)
                return r;
        for (;;) {
                const char *name;

                r = sd_bus_message_enter_container(reply, SD_BUS_TYPE_DICT_ENTRY, "sv");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                r = sd_bus_message_read(reply, "s", &name);
                if (r < 0)
                        return r;
                r = read_session_property(reply, name, s);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_exit_container(reply);
}

int logind_list_user_sessions(sd_bus *bus, uid_t uid, LogindSession **ret, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        LogindSession *sessions = NULL;
        size_t n = 0, allocated = 0;
        int r;

        if (!bus || !ret || !ret_n)
                return -EINVAL;

        r = manager_call(bus, "ListSessions", &reply, NULL);
        if (r < 0)
                return r;

        r = sd_bus_message_enter_container(reply, SD_BUS_TYPE_ARRAY, "(susso)");
        if (r < 0)
                return r;
        for (;;) {
                const char *id, *user, *seat, *path;
                uint32_t suid;

                r = sd_bus_message_read(reply, "(susso)", &id, &suid, &user, &seat, &path);
                if (r < 0)
                        goto fail;
                if (r == 0)
                        break;
                if ((uid_t) suid != uid)
                        continue;
                if (n >= LOGIND_SESSIONS_MAX) {
                        r = -E2BIG;
                        goto fail;
                }
                if (n == allocated) {
                        size_t a = MAX(allocated * 2, (size_t) 4);
                        LogindSession *t = reallocarray(sessions, a, sizeof(LogindSession));

                        if (!t) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        sessions = t;
                        allocated = a;
                }
                sessions[n] = (LogindSession) {
                        .uid = (uid_t) suid,
                        .remote = -1,
                        .id = strdup(id),
                        .path = strdup(path),
                        .user = strdup(user),
                };
                n++;
                if (!sessions[n - 1].id || !sessions[n - 1].path || !sessions[n - 1].user) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        r = sd_bus_message_exit_container(reply);
        if (r < 0)
                goto fail;

        for (size_t i = 0; i < n; i++) {
                r = session_read_properties(bus, &sessions[i]);
                if (r == -ENOMEM)
                        goto fail;
                /* The session may have ended meanwhile, or be served by an incomplete
                 * implementation: keep what ListSessions said and treat the rest as unknown. */
                if (r < 0)
                        log_debug("Properties of session '%s' unavailable, treating them as unknown: %s",
                                  sessions[i].id, strerror(-r));
                /* Never let a property override the identity ListSessions gave. */
                sessions[i].uid = uid;
        }

        *ret = sessions;
        *ret_n = n;
        return 0;

fail:
        logind_sessions_free(sessions, n);
        return r;
}

static const char *scope_name(SessionScope scope) {
        switch (scope) {
        case SESSIONS_ALL:
                return "all";
        case SESSIONS_REMOTE:
                return "remote";
        case SESSIONS_LOCAL:
                return "local";
        case SESSIONS_GRAPHICAL:
                return "graphical";
        }
        return "unknown";
}

static int type_is_graphical(const char *type) {
        return type && (streq(type, "x11") || streq(type, "wayland") || streq(type, "mir"));
}

int logind_session_in_scope(const LogindSession *s, SessionScope scope) {
        if (!s)
                return 0;

        /* The display manager's greeter and lock screens are not logins of the user. */
        if (s->class && (streq(s->class, "greeter") || streq(s->class, "lock-screen")))
                return 0;

        switch (scope) {
        case SESSIONS_ALL:
                return 1;
        case SESSIONS_REMOTE:
                return s->remote > 0;
        case SESSIONS_LOCAL:
                return s->remote == 0;
        case SESSIONS_GRAPHICAL:
                return type_is_graphical(s->type);
        }
        return 0;
}

/* Appends to a fixed buffer; marks truncation with "…" and never overflows. */
static void summary_append(char *buf, size_t size, const char *format, ...) _printf_(3, 4);
static void summary_append(char *buf, size_t size, const char *format, ...) {
        static const char ellipsis[] = "...";
        size_t l = strnlen(buf, size);
        va_list ap;
        int k;

        if (l >= size - 1)
                return;
        va_start(ap, format);
        k = vsnprintf(buf + l, size - l, format, ap);
        va_end(ap);
        if (k >= 0 && (size_t) k < size - l)
                return;
        /* Truncated: end with an ellipsis. */
        if (size > sizeof(ellipsis))
                memcpy(buf + size - sizeof(ellipsis), ellipsis, sizeof(ellipsis));
}

static void describe_session(char *buf, size_t size, const LogindSession *s) {
        summary_append(buf, size, "%s (%s", s->id, isempty(s->service) ? "unknown service" : s->service);
        if (!isempty(s->remote_host))
                summary_append(buf, size, " from %s", s->remote_host);
        else if (!isempty(s->tty))
                summary_append(buf, size, " on %s", s->tty);
        summary_append(buf, size, ")");
}

/* Calls method (TerminateSession or LockSession) for every session of uid in scope; done is
 * what it did ("terminated", "locked"). */
static int act_on_user(sd_bus *bus, uid_t uid, SessionScope scope, const char *method,
                       const char *done_verb, LogoutResult *ret) {
        LogindSession *sessions = NULL;
        LogoutResult result = {};
        size_t n = 0;
        char done[sizeof(result.summary)] = "", failed[sizeof(result.summary)] = "";
        int r;

        if (!bus || !ret)
                return -EINVAL;

        r = logind_list_user_sessions(bus, uid, &sessions, &n);
        if (r < 0) {
                snprintf(result.summary, sizeof(result.summary), "listing sessions failed: %s",
                         strerror(-r));
                *ret = result;
                return r;
        }

        for (size_t i = 0; i < n; i++) {
                const LogindSession *s = &sessions[i];
                int k;

                if (!logind_session_in_scope(s, scope))
                        continue;
                result.matched++;

                /* By the id ListSessions returned for this very uid. */
                k = manager_call(bus, method, NULL, "s", s->id);
                if (k == -ESRCH) {
                        /* It ended between ListSessions and now: that is what we wanted. */
                        log_debug("Session '%s' is already gone", s->id);
                        k = 0;
                }
                if (k < 0) {
                        result.failed++;
                        summary_append(failed, sizeof(failed), "%s", result.failed > 1 ? ", " : "");
                        describe_session(failed, sizeof(failed), s);
                        summary_append(failed, sizeof(failed), ": %s", strerror(-k));
                        log_debug("%s('%s') failed: %s", method, s->id, strerror(-k));
                        continue;
                }
                result.terminated++;
                summary_append(done, sizeof(done), "%s", result.terminated > 1 ? ", " : "");
                describe_session(done, sizeof(done), s);
        }
        logind_sessions_free(sessions, n);

        if (result.matched == 0)
                snprintf(result.summary, sizeof(result.summary), "no %s%ssessions to %s",
                         scope == SESSIONS_ALL ? "" : scope_name(scope), scope == SESSIONS_ALL ? "" : " ",
                         streq(method, "LockSession") ? "lock" : "terminate");
        else {
                summary_append(result.summary, sizeof(result.summary), "%s %u of %u session%s",
                               done_verb, result.terminated, result.matched,
                               result.matched == 1 ? "" : "s");
                if (result.terminated > 0)
                        summary_append(result.summary, sizeof(result.summary), ": %s", done);
                if (result.failed > 0)
                        summary_append(result.summary, sizeof(result.summary), "; failed: %s", failed);
        }

        *ret = result;
        return result.failed > 0 ? -EIO : 0;
}

int logind_logout_user(sd_bus *bus, uid_t uid, SessionScope scope, LogoutResult *ret) {
        return act_on_user(bus, uid, scope, "TerminateSession", "terminated", ret);
}

int logind_lock_user(sd_bus *bus, uid_t uid, SessionScope scope, LogoutResult *ret) {
        /* logind asks each session's screen locker to lock; nothing ends. */
        return act_on_user(bus, uid, scope, "LockSession", "locked", ret);
}
