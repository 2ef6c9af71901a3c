/* SPDX-License-Identifier: MIT */
/*
 * The module's client side (client.h): one request to ssf-sessiond, the snapshot fallback,
 * and what the user is told. Runs inside the PAM host process (sshd, login, su, ...).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <pwd.h>
#include <time.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <security/pam_modutil.h>

#include "args.h"
#include "client.h"
#include "level.h"
#include "macro.h"
#include "reason-user.h"
#include "snapshot.h"
#include "ssf-ipc.h"

#define USEC_PER_MSEC UINT64_C(1000)

void pam_ssf_debug(pam_handle_t *pamh, const PamSsfArgs *a, const char *format, ...) {
        va_list ap;

        if (!a || !a->debug)
                return;
        va_start(ap, format);
        pam_vsyslog(pamh, LOG_AUTHPRIV | LOG_DEBUG, format, ap);
        va_end(ap);
}

static void msg_donep(SsfIpcMsg *m) {
        ssf_ipc_msg_done(m);
}

/* Copies an optional request string; values the protocol cannot carry are left out. */
static int copy_optional(const char *s, char **ret) {
        if (!s || strlen(s) > SSF_IPC_MAX_SHORT) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int pam_ssf_query(const PamSsfArgs *a, const PamSsfRequest *q, SsfIpcMsg *ret_reply,
                  const char **ret_stage) {
        _cleanup_(msg_donep) SsfIpcMsg req = { .type = SSF_IPC_PAM_QUERY };
        _cleanup_(msg_donep) SsfIpcMsg reply = {};
        _cleanup_close_ int fd = -EBADF;
        const char *stage = "send";
        uint64_t deadline;
        int r;

        if (!a || !q || !ret_reply)
                return -EINVAL;

        /* One deadline for connect, send and receive. */
        deadline = ssf_now_usec() + (uint64_t) a->timeout_ms * USEC_PER_MSEC;

        if (isempty(q->user) || strlen(q->user) > SSF_IPC_MAX_USER) {
                r = -EINVAL;
                goto fail;
        }
        req.user = strdup(q->user);
        if (!req.user) {
                r = -ENOMEM;
                goto fail;
        }
        r = copy_optional(q->service, &req.service);
        if (r >= 0)
                r = copy_optional(q->rhost, &req.rhost);
        if (r >= 0)
                r = copy_optional(q->tty, &req.tty);
        if (r < 0)
                goto fail;

        stage = "connect";
        fd = ssf_ipc_connect(a->socket, (uid_t) -1, deadline);
        if (fd < 0) {
                r = fd;
                goto fail;
        }

        stage = "send";
        r = ssf_ipc_send(fd, &req, deadline);
        if (r < 0)
                goto fail;

        stage = "receive";
        r = ssf_ipc_recv(fd, &reply, deadline);
        if (r < 0)
                goto fail;

        stage = "reply";
        if (reply.type != SSF_IPC_PAM_REPLY || !reply.has_status || !reply.has_level) {
                r = -EBADMSG;
                goto fail;
        }
        stage = "daemon";
        if (reply.status != 0) {
                r = reply.status < 0 ? reply.status : -EPROTO;
                goto fail;
        }

        *ret_reply = reply;
        reply = (SsfIpcMsg) {};
        return 0;

fail:
        if (ret_stage)
                *ret_stage = stage;
        return r;
}

void pam_ssf_denial_text(RiskLevel level, const char *detection, const char *msg,
                         const char *reason_user, char *buf, size_t size) {
        const char *name = strempty(risk_level_to_string(level));
        size_t o;

        if (!buf || size == 0)
                return;

        if (!isempty(msg))
                snprintf(buf, size, "%s", msg);
        else if (!isempty(detection))
                snprintf(buf, size,
                         "Access denied: your account's security risk is %s (%s). "
                         "Contact your administrator.",
                         name, detection);
        else
                snprintf(buf, size,
                         "Access denied: your account's security risk is %s. Contact your administrator.",
                         name);

        /* The text reaches a terminal: no escape sequences or other control characters. */
        for (char *p = buf; *p; p++)
                if ((unsigned char) *p < ' ' || *p == 0x7f)
                        *p = '?';

        /* The transmitter's words for the user end it: sanitised here again, whatever the
         * daemon did, and cut to what fits. */
        o = strlen(buf);
        if (isempty(reason_user) || size - o < 3)
                return;
        buf[o] = ' ';
        if (ssf_reason_user_sanitize(reason_user, SSF_IPC_MAX_SHORT, buf + o + 1, size - o - 1) == 0)
                buf[o] = 0;
}

static void tell_denied(pam_handle_t *pamh, RiskLevel level, const char *detection, const char *msg,
                        const char *reason_user, PamSsfTell tell) {
        char text[SSF_IPC_MAX_MESSAGE + 1 + SSF_REASON_USER_SIZE];

        if (tell == PAM_SSF_TELL_NOTHING)
                return;
        /* Not even the daemon's text, which names the level and the detection, nor
         * reason_user. */
        if (tell == PAM_SSF_TELL_GENERIC)
                snprintf(text, sizeof(text), "%s", PAM_SSF_GENERIC_DENIAL);
        else
                pam_ssf_denial_text(level, detection, msg, reason_user, text, sizeof(text));
        /* No conversation function (e.g. cron's account check) is not an error. */
        (void) pam_error(pamh, "%s", text);
}

static const char *reason_text(int r, const char *stage, char *buf, size_t size) {
        if (r == -EPERM && streq_ptr(stage, "connect"))
                snprintf(buf, size, "connect: socket or peer not owned by root");
        else if (r == -ETIMEDOUT)
                snprintf(buf, size, "%s: timed out", strempty(stage));
        else if (r == -EBADMSG || r == -EPROTO || r == -EMSGSIZE)
                snprintf(buf, size, "%s: malformed reply (%s)", strempty(stage), strerror(-r));
        else if (streq_ptr(stage, "daemon"))
                snprintf(buf, size, "daemon answered with an error: %s", strerror(-r));
        else
                snprintf(buf, size, "%s: %s", strempty(stage), strerror(-r));
        return buf;
}

/* Whether the snapshot's policy protects pw's account: a uid outside min_uid…max_uid, or a name
 * in protect that NSS resolves to the same account (the daemon decides the same way). */
static bool snapshot_protects(pam_handle_t *pamh, const SsfSnapshotPolicy *pol,
                              const struct passwd *pw) {
        char names[sizeof(pol->protect)], *p, *save = NULL;

        if (ssf_snapshot_policy_protects(pol, pw->pw_uid, pw->pw_name))
                return true;
        if (!pol->have_protect)
                return false;
        memcpy(names, pol->protect, sizeof(names));
        for (p = strtok_r(names, " ", &save); p; p = strtok_r(NULL, " ", &save)) {
                const struct passwd *q = pam_modutil_getpwnam(pamh, p);
                if (q && q->pw_uid == pw->pw_uid)
                        return true;
        }
        return false;
}

/* What the snapshot says of user, keyed by uid (the account NSS resolves PAM's name to).
 * Returns 1 with *ret_uid when the snapshot's policy protects the account, 0 with *ret_level
 * when the snapshot lists it, -ENOENT when it does not or there is no such account, another
 * -errno when the snapshot is unusable. */
static int snapshot_level(pam_handle_t *pamh, const PamSsfArgs *a, const char *user,
                          RiskLevel *ret_level, uid_t *ret_uid) {
        const struct passwd *pw = pam_modutil_getpwnam(pamh, user);
        SsfSnapshotPolicy pol = {};
        RiskLevel level = RISK_NONE;
        time_t now = time(NULL);
        char key[24];
        int r;

        if (!pw)
                return -ENOENT; /* no such account: nothing to look up */
        snprintf(key, sizeof(key), "%u", (unsigned) pw->pw_uid);
        r = ssf_snapshot_lookup(a->snapshot, key, now > 0 ? (uint64_t) now : 0, (uid_t) -1, &level,
                                &pol);
        if ((r >= 0 || r == -ENOENT) && snapshot_protects(pamh, &pol, pw)) {
                *ret_uid = pw->pw_uid;
                return 1;
        }
        if (r >= 0)
                *ret_level = level;
        return r;
}

/* The daemon could not answer: the snapshot, then failmode, decides. */
static int check_unavailable(pam_handle_t *pamh, const PamSsfArgs *a, const PamSsfRequest *q,
                             PamSsfTell tell, int error, const char *stage) {
        char reason[256], snap[320];
        RiskLevel level = RISK_NONE;
        uid_t uid = 0;
        int r;

        reason_text(error, stage, reason, sizeof(reason));

        r = snapshot_level(pamh, a, q->user, &level, &uid);
        if (r > 0) {
                pam_syslog(pamh, LOG_AUTHPRIV | LOG_NOTICE,
                           "ssf-sessiond at '%s' unavailable (%s); user '%s' (uid %u) is "
                           "never acted upon (snapshot '%s': min_uid, max_uid, protect): "
                           "access allowed", a->socket, reason, q->user, (unsigned) uid,
                           a->snapshot);
                return PAM_SSF_ALLOW;
        }
        if (r >= 0 && level >= a->deny) {
                pam_syslog(pamh, LOG_AUTHPRIV | LOG_WARNING,
                           "ssf-sessiond at '%s' unavailable (%s); snapshot '%s' lists user '%s' at risk "
                           "level %s (deny=%s): access denied",
                           a->socket, reason, a->snapshot, q->user, risk_level_to_string(level),
                           risk_level_to_string(a->deny));
                tell_denied(pamh, level, NULL, NULL, NULL, tell);
                return PAM_SSF_DENY;
        }

        if (r >= 0)
                snprintf(snap, sizeof(snap), "snapshot level %s is below deny=%s",
                         risk_level_to_string(level), risk_level_to_string(a->deny));
        else if (r == -ENOENT)
                snprintf(snap, sizeof(snap), "user not in snapshot");
        else if (r == -ENOMEM)
                return r;
        else
                snprintf(snap, sizeof(snap), "snapshot '%s' unusable: %s", a->snapshot,
                         r == -EBADMSG ? "malformed" : strerror(-r));

        pam_syslog(pamh, LOG_AUTHPRIV | LOG_WARNING,
                   "ssf-sessiond at '%s' unavailable (%s), user '%s': %s; failmode=%s: %s",
                   a->socket, reason, q->user, snap, pam_ssf_failmode_to_string(a->failmode),
                   a->failmode == PAM_SSF_FAILMODE_OPEN ? "ignoring this module"
                                                        : "refusing access");
        return PAM_SSF_UNAVAILABLE;
}

int pam_ssf_check(pam_handle_t *pamh, const PamSsfArgs *a, const PamSsfRequest *q, PamSsfTell tell) {
        _cleanup_(msg_donep) SsfIpcMsg reply = {};
        const char *stage = NULL;
        RiskLevel level;
        int r;

        if (!a || !q)
                return -EINVAL;
        if (isempty(q->user) || strlen(q->user) > SSF_IPC_MAX_USER)
                return -EINVAL;

        r = pam_ssf_query(a, q, &reply, &stage);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return check_unavailable(pamh, a, q, tell, r, stage);

        level = (RiskLevel) reply.level;
        pam_ssf_debug(pamh, a, "ssf-sessiond: user '%s' has risk level %s%s%s%s (deny=%s)", q->user,
                      risk_level_to_string(level), reply.detection ? " (detection '" : "",
                      strempty(reply.detection), reply.detection ? "')" : "",
                      risk_level_to_string(a->deny));

        if (level < a->deny)
                return PAM_SSF_ALLOW;

        if (reply.dry_run) {
                /* The daemon is in audit mode ([daemon] dry_run): admit, and say so. */
                pam_syslog(pamh, LOG_AUTHPRIV | LOG_NOTICE,
                           "Dry run: would refuse user '%s': risk level %s%s%s%s is at or above "
                           "deny=%s", q->user, risk_level_to_string(level),
                           reply.detection ? " (detection '" : "", strempty(reply.detection),
                           reply.detection ? "')" : "", risk_level_to_string(a->deny));
                return PAM_SSF_ALLOW;
        }

        pam_syslog(pamh, LOG_AUTHPRIV | LOG_NOTICE,
                   "Access denied for user '%s': risk level %s%s%s%s is at or above deny=%s", q->user,
                   risk_level_to_string(level), reply.detection ? " (detection '" : "",
                   strempty(reply.detection), reply.detection ? "')" : "",
                   risk_level_to_string(a->deny));
        tell_denied(pamh, level, reply.detection, reply.message, reply.reason_user, tell);
        return PAM_SSF_DENY;
}

int pam_ssf_check_below(pam_handle_t *pamh, const PamSsfArgs *a, const PamSsfRequest *q) {
        _cleanup_(msg_donep) SsfIpcMsg reply = {};
        const char *stage = NULL, *below;
        char reason[256], snap[320];
        RiskLevel level = RISK_NONE;
        uid_t uid = 0;
        int r;

        if (!a || !q || a->below <= RISK_NONE)
                return -EINVAL;
        if (isempty(q->user) || strlen(q->user) > SSF_IPC_MAX_USER)
                return -EINVAL;
        below = risk_level_to_string(a->below);

        r = pam_ssf_query(a, q, &reply, &stage);
        if (r == -ENOMEM)
                return r;
        if (r >= 0) {
                /* The daemon answers none for a protected account. Audit mode ([daemon]
                 * dry_run) changes nothing here: a branch refuses nobody. */
                level = (RiskLevel) reply.level;
                if (level < a->below) {
                        pam_ssf_debug(pamh, a, "user '%s' has risk level %s, below %s",
                                      q->user, risk_level_to_string(level), below);
                        return PAM_SSF_BELOW;
                }
                pam_syslog(pamh, LOG_AUTHPRIV | LOG_INFO,
                           "User '%s' has risk level %s%s%s%s, not below %s: the next factor is "
                           "asked", q->user, risk_level_to_string(level),
                           reply.detection ? " (detection '" : "", strempty(reply.detection),
                           reply.detection ? "')" : "", below);
                return PAM_SSF_NOT_BELOW;
        }

        reason_text(r, stage, reason, sizeof(reason));
        r = snapshot_level(pamh, a, q->user, &level, &uid);
        if (r > 0) {
                pam_syslog(pamh, LOG_AUTHPRIV | LOG_NOTICE,
                           "ssf-sessiond at '%s' unavailable (%s); user '%s' (uid %u) is never "
                           "acted upon (snapshot '%s'): below %s", a->socket, reason, q->user,
                           (unsigned) uid, a->snapshot, below);
                return PAM_SSF_BELOW;
        }
        if (r >= 0) {
                pam_syslog(pamh, LOG_AUTHPRIV | LOG_WARNING,
                           "ssf-sessiond at '%s' unavailable (%s); snapshot '%s' lists user '%s' at "
                           "risk level %s: %s %s", a->socket, reason, a->snapshot, q->user,
                           risk_level_to_string(level), level < a->below ? "below" : "not below",
                           below);
                return level < a->below ? PAM_SSF_BELOW : PAM_SSF_NOT_BELOW;
        }
        if (r == -ENOMEM)
                return r;
        if (r == -ENOENT)
                snprintf(snap, sizeof(snap), "user not in snapshot");
        else
                snprintf(snap, sizeof(snap), "snapshot '%s' unusable: %s", a->snapshot,
                         r == -EBADMSG ? "malformed" : strerror(-r));
        pam_syslog(pamh, LOG_AUTHPRIV | LOG_WARNING,
                   "ssf-sessiond at '%s' unavailable (%s), user '%s': %s, level unknown; "
                   "failmode=%s: %s", a->socket, reason, q->user, snap,
                   pam_ssf_failmode_to_string(a->failmode),
                   a->failmode == PAM_SSF_FAILMODE_OPEN ? "answering below" : "answering not below");
        return PAM_SSF_UNAVAILABLE;
}
