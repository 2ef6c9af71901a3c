/* SPDX-License-Identifier: MIT */
#pragma once

/* The module's client side: asks ssf-sessiond for a user's risk level over the IPC socket
 * (one request, one reply, one deadline), falls back to the snapshot when the daemon cannot
 * answer, logs every decision and tells the user why access is denied. Returns -errno /
 * verdicts; only pam_ssf.c turns them into PAM_* codes. */

#include <stdbool.h>
#include <stddef.h>
#include <security/pam_modules.h>

#include "args.h"
#include "level.h"
#include "macro.h"
#include "ssf-ipc.h"

typedef enum PamSsfVerdict {
        PAM_SSF_ALLOW,       /* level below deny (or the daemon does not know the user) */
        PAM_SSF_DENY,        /* level at or above deny: the user was told, the decision logged */
        PAM_SSF_UNAVAILABLE, /* daemon unavailable and no snapshot verdict: failmode decides */
        PAM_SSF_BELOW,       /* below= line: the level is below it (or the account protected) */
        PAM_SSF_NOT_BELOW,   /* below= line: the level is at or above it: the next factor */
} PamSsfVerdict;

/* What the denial message may tell the user; pam_ssf.c decides by phase and arguments. */
typedef enum PamSsfTell {
        PAM_SSF_TELL_NOTHING, /* quiet or PAM_SILENT: no message */
        PAM_SSF_TELL_GENERIC, /* auth phase without explain: the user has proved nothing yet, so
                               * PAM_SSF_GENERIC_DENIAL, naming neither level nor detection */
        PAM_SSF_TELL_ALL,     /* the level, the detection and reason_user (pam_ssf_denial_text()) */
} PamSsfTell;

#define PAM_SSF_GENERIC_DENIAL "Access denied. Contact your administrator."

typedef struct PamSsfRequest {
        const char *user;    /* required */
        const char *service; /* optional (NULL), as are the others */
        const char *rhost;
        const char *tty;
} PamSsfRequest;

/* Debug log line, only when the debug argument was given. */
void pam_ssf_debug(pam_handle_t *pamh, const PamSsfArgs *a, const char *format, ...) _printf_(3, 4);

/* One PAM_QUERY/PAM_REPLY exchange with the daemon at a->socket within a->timeout_ms. On
 * success returns 0 and *ret_reply holds a PAM_REPLY with STATUS 0 (caller calls
 * ssf_ipc_msg_done()). Otherwise returns -errno (the daemon's own -errno when it answered
 * with STATUS != 0, -EPERM for an untrusted socket or peer, -ETIMEDOUT, -EBADMSG for a
 * malformed or unexpected reply) and, if ret_stage is not NULL, *ret_stage names the step that
 * failed ("connect", "send", "receive", "reply", "daemon"). */
int pam_ssf_query(const PamSsfArgs *a, const PamSsfRequest *q, SsfIpcMsg *ret_reply,
                  const char **ret_stage);

/* The text shown to a denied user: msg (the daemon's MESSAGE, control characters replaced)
 * when not empty, else a sentence naming the level and, if known, the detection; then, when
 * reason_user (the daemon's REASON_USER) is not empty, a space and reason_user sanitised
 * (ssf_reason_user_sanitize(): the module never trusts the bytes). Always NUL-terminates buf
 * (size > 0); what does not fit is cut on a character boundary. */
void pam_ssf_denial_text(RiskLevel level, const char *detection, const char *msg,
                         const char *reason_user, char *buf, size_t size);

/* The whole check for one PAM call: query, snapshot fallback, logging, the conversation
 * message (as much as tell allows; the log line always names level and detection). Returns a
 * PamSsfVerdict (>= 0), or -EINVAL when user cannot be sent (empty or too long), -ENOMEM. */
int pam_ssf_check(pam_handle_t *pamh, const PamSsfArgs *a, const PamSsfRequest *q, PamSsfTell tell);

/* The check of a below= line: PAM_SSF_BELOW when the user's level (from the daemon, else the
 * snapshot) is below a->below or the account is protected, PAM_SSF_NOT_BELOW when it is not,
 * PAM_SSF_UNAVAILABLE when the level is unknown (failmode decides: closed answers "not below",
 * open "below"). Tells the user nothing; logs the outcome. Returns -EINVAL when user cannot be
 * sent, -ENOMEM. */
int pam_ssf_check_below(pam_handle_t *pamh, const PamSsfArgs *a, const PamSsfRequest *q);
