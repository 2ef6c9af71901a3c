/* SPDX-License-Identifier: MIT */
/*
 * pam_ssf.so: refuses a login while the user's risk level, as kept by ssf-sessiond from the
 * organisation's Shared Signals, is at or above deny=; or, on a below= line, branches an auth
 * stack (success: below, ignore: not below, so the next factor is asked). Only the PAM entry
 * points live here; the work is in args.c and client.c. Results become PAM_* codes in one
 * place, errno_to_pam(), which applies failmode=.
 */
#include <errno.h>
#include <stdbool.h>
#include <syslog.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "args.h"
#include "client.h"
#include "macro.h"

typedef enum Phase {
        PHASE_AUTH,
        PHASE_ACCOUNT,
        PHASE_SESSION,
} Phase;

static const char *const phase_names[] = {
        [PHASE_AUTH] = "auth",
        [PHASE_ACCOUNT] = "account",
        [PHASE_SESSION] = "session",
};

static int errno_to_pam(int r, const PamSsfArgs *a, Phase phase) {
        /* A below= line never denies: an unknown level is "not below" (the next factor is
         * asked) with failmode=closed, "below" with failmode=open; so is a user name the
         * daemon cannot be asked about. */
        if (a->below != RISK_NONE)
                switch (r) {
                case PAM_SSF_BELOW:
                        return PAM_SUCCESS;
                case PAM_SSF_NOT_BELOW:
                        return PAM_IGNORE;
                case PAM_SSF_UNAVAILABLE:
                case -EINVAL:
                        return a->failmode == PAM_SSF_FAILMODE_OPEN ? PAM_SUCCESS : PAM_IGNORE;
                case -ENOMEM:
                        return PAM_BUF_ERR;
                default:
                        return PAM_IGNORE;
                }

        switch (r) {
        case PAM_SSF_ALLOW:
                return PAM_SUCCESS;
        case PAM_SSF_DENY:
                return PAM_PERM_DENIED;
        case PAM_SSF_UNAVAILABLE:
                if (a->failmode == PAM_SSF_FAILMODE_OPEN)
                        return PAM_IGNORE;
                return phase == PHASE_SESSION ? PAM_SESSION_ERR : PAM_AUTHINFO_UNAVAIL;
        case -ENOMEM:
                return PAM_BUF_ERR;
        case -EINVAL:
                return PAM_USER_UNKNOWN;
        default:
                return phase == PHASE_SESSION ? PAM_SESSION_ERR : PAM_SERVICE_ERR;
        }
}

static const char *get_item_string(pam_handle_t *pamh, int item) {
        const void *v = NULL;

        if (pam_get_item(pamh, item, &v) != PAM_SUCCESS)
                return NULL;
        return v;
}

static int run(pam_handle_t *pamh, int flags, int argc, const char **argv, Phase phase) {
        const char *bad = NULL, *user = NULL;
        PamSsfTell tell;
        PamSsfArgs a;
        int r;

        r = pam_ssf_args_parse(argc, argv, &a, &bad);
        if (r == -EEXIST) {
                pam_syslog(pamh, LOG_AUTHPRIV | LOG_ERR,
                           "Module arguments below= and deny= exclude each other (a below= line "
                           "only branches, it never denies), at '%s': refusing", bad ? bad : "(null)");
                return PAM_SERVICE_ERR;
        }
        if (r < 0) {
                pam_syslog(pamh, LOG_AUTHPRIV | LOG_ERR, "Unknown or invalid module argument '%s', refusing",
                           bad ? bad : "(null)");
                return PAM_SERVICE_ERR;
        }

        r = pam_get_user(pamh, &user, NULL);
        if (r != PAM_SUCCESS) {
                pam_syslog(pamh, LOG_AUTHPRIV | LOG_ERR, "Failed to get user name: %s",
                           pam_strerror(pamh, r));
                return r == PAM_CONV_AGAIN ? PAM_INCOMPLETE : r;
        }
        if (isempty(user)) {
                pam_syslog(pamh, LOG_AUTHPRIV | LOG_ERR, "Empty user name, refusing");
                return PAM_USER_UNKNOWN;
        }

        pam_ssf_debug(pamh, &a, "%s: checking user '%s' (%s=%s, failmode=%s, timeout=%ums)",
                      phase_names[phase], user, a.below != RISK_NONE ? "below" : "deny",
                      risk_level_to_string(a.below != RISK_NONE ? a.below : a.deny),
                      pam_ssf_failmode_to_string(a.failmode), (unsigned) a.timeout_ms);

        PamSsfRequest q = {
                .user = user,
                .service = get_item_string(pamh, PAM_SERVICE),
                .rhost = get_item_string(pamh, PAM_RHOST),
                .tty = get_item_string(pamh, PAM_TTY),
        };
        if (a.below != RISK_NONE) {
                r = pam_ssf_check_below(pamh, &a, &q);
                if (r == -EINVAL)
                        pam_syslog(pamh, LOG_AUTHPRIV | LOG_WARNING,
                                   "User name too long for ssf-sessiond, level unknown; failmode=%s",
                                   pam_ssf_failmode_to_string(a.failmode));
                r = errno_to_pam(r, &a, phase);
                pam_ssf_debug(pamh, &a, "%s: returning %s", phase_names[phase], pam_strerror(pamh, r));
                return r;
        }
        /* Before the user has proved anything (auth), the message must not tell a client who
         * is at risk, or why: explain opts in. In account and session the user has. */
        if (a.quiet || (flags & PAM_SILENT))
                tell = PAM_SSF_TELL_NOTHING;
        else if (phase == PHASE_AUTH && !a.explain)
                tell = PAM_SSF_TELL_GENERIC;
        else
                tell = PAM_SSF_TELL_ALL;
        r = pam_ssf_check(pamh, &a, &q, tell);
        if (r == -EINVAL)
                pam_syslog(pamh, LOG_AUTHPRIV | LOG_ERR, "User name too long for ssf-sessiond, refusing");
        r = errno_to_pam(r, &a, phase);
        pam_ssf_debug(pamh, &a, "%s: returning %s", phase_names[phase], pam_strerror(pamh, r));
        return r;
}

_public_ int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        return run(pamh, flags, argc, argv, PHASE_AUTH);
}

_public_ int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        PamSsfArgs a;

        /* A below= line ignores setcred, so that a [success=N] jump does not skip the
         * credentials of the factors after it (as pam_succeed_if does). */
        if (pam_ssf_args_parse(argc, argv, &a, NULL) >= 0 && a.below != RISK_NONE)
                return PAM_IGNORE;
        return PAM_SUCCESS;
}

_public_ int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        return run(pamh, flags, argc, argv, PHASE_ACCOUNT);
}

_public_ int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        return run(pamh, flags, argc, argv, PHASE_SESSION);
}

_public_ int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        return PAM_SUCCESS;
}

_public_ int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        /* Password changes are not this module's business. */
        return PAM_IGNORE;
}
