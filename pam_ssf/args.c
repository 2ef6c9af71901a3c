/* SPDX-License-Identifier: MIT */
/*
 * The module's arguments (args.h): parsed without logging or allocation. Runs inside the PAM
 * host process (sshd, login, su, ...).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/un.h>

#include "args.h"
#include "macro.h"
#include "ssf-ipc.h"

/* Decimal digits only: no sign, no blanks, no hex, no trailing bytes. -ERANGE on overflow. */
static int safe_atou32(const char *s, uint32_t *ret) {
        uint32_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (; *s; s++) {
                uint32_t d;
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                d = (uint32_t) (*s - '0');
                if (v > (UINT32_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

static int parse_path(const char *v, size_t max, const char **ret) {
        size_t l;

        if (!v || v[0] != '/')
                return -EINVAL;
        l = strnlen(v, max);
        if (l >= max)
                return -EINVAL;
        for (size_t i = 0; i < l; i++)
                if ((unsigned char) v[i] < ' ' || v[i] == 0x7f)
                        return -EINVAL;
        *ret = v;
        return 0;
}

/* Exactly the lower-case names; "none" would deny everybody (deny=) or nobody (below=). */
static int parse_level(const char *v, RiskLevel *ret) {
        if (streq(v, "low"))
                *ret = RISK_LOW;
        else if (streq(v, "medium"))
                *ret = RISK_MEDIUM;
        else if (streq(v, "high"))
                *ret = RISK_HIGH;
        else
                return -EINVAL;
        return 0;
}

static int parse_one(const char *arg, PamSsfArgs *a, bool *ret_deny) {
        const char *v;
        int r;

        if ((v = startswith(arg, "deny="))) {
                r = parse_level(v, &a->deny);
                if (r < 0)
                        return r;
                *ret_deny = true;
        } else if ((v = startswith(arg, "below=")))
                return parse_level(v, &a->below);
        else if ((v = startswith(arg, "failmode="))) {
                if (streq(v, "open"))
                        a->failmode = PAM_SSF_FAILMODE_OPEN;
                else if (streq(v, "closed"))
                        a->failmode = PAM_SSF_FAILMODE_CLOSED;
                else
                        return -EINVAL;
        } else if ((v = startswith(arg, "timeout="))) {
                uint32_t ms;

                r = safe_atou32(v, &ms);
                if (r < 0)
                        return r;
                if (ms == 0)
                        return -ERANGE;
                a->timeout_ms = MIN(ms, PAM_SSF_MAX_TIMEOUT_MS);
        } else if ((v = startswith(arg, "socket=")))
                return parse_path(v, sizeof(((struct sockaddr_un *) NULL)->sun_path), &a->socket);
        else if ((v = startswith(arg, "snapshot=")))
                return parse_path(v, PATH_MAX, &a->snapshot);
        else if (streq(arg, "quiet"))
                a->quiet = true;
        else if (streq(arg, "explain"))
                a->explain = true;
        else if (streq(arg, "debug"))
                a->debug = true;
        else
                return -EINVAL;

        return 0;
}

int pam_ssf_args_parse(int argc, const char **argv, PamSsfArgs *ret, const char **ret_bad) {
        PamSsfArgs a = {
                .deny = PAM_SSF_DEFAULT_DENY,
                .failmode = PAM_SSF_FAILMODE_OPEN,
                .timeout_ms = PAM_SSF_DEFAULT_TIMEOUT_MS,
                .socket = SSF_IPC_DEFAULT_SOCKET,
                .snapshot = SSF_IPC_DEFAULT_SNAPSHOT,
        };
        bool deny = false;
        int r;

        if (!ret || argc < 0 || (argc > 0 && !argv))
                return -EINVAL;

        for (int i = 0; i < argc; i++) {
                r = argv[i] ? parse_one(argv[i], &a, &deny) : -EINVAL;
                /* A branch line never denies: deny= there would be a misunderstanding. */
                if (r >= 0 && deny && a.below != RISK_NONE)
                        r = -EEXIST;
                if (r < 0) {
                        if (ret_bad)
                                *ret_bad = argv[i];
                        return r;
                }
        }

        *ret = a;
        return 0;
}

const char *pam_ssf_failmode_to_string(PamSsfFailMode m) {
        return m == PAM_SSF_FAILMODE_CLOSED ? "closed" : "open";
}
