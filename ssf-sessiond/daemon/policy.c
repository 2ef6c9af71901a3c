/* SPDX-License-Identifier: MIT */
/*
 * The entity risk policy (policy.h): ordered rules, first match wins. Pure. Runs in the root
 * daemon.
 */
#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "events.h"
#include "policy.h"

#define NSS_BUFFER_MAX (1024U * 1024U)
#define GROUPS_MAX 65536

/* getpwnam_r/getgrgid_r with a growing buffer. Each returns 0, -ENOENT or -errno; *buf is
 * (re)allocated and owned by the caller. */
static int lookup_passwd(const char *user, struct passwd *pw, char **buf) {
        for (size_t size = 1024;; size *= 2) {
                struct passwd *res = NULL;
                char *nb;
                int r;

                if (size > NSS_BUFFER_MAX)
                        return -ERANGE;
                nb = realloc(*buf, size);
                if (!nb)
                        return -ENOMEM;
                *buf = nb;
                r = getpwnam_r(user, pw, *buf, size, &res);
                if (r == ERANGE)
                        continue;
                if (r != 0)
                        return -r;
                return res ? 0 : -ENOENT;
        }
}

static int lookup_group(gid_t gid, struct group *gr, char **buf) {
        for (size_t size = 1024;; size *= 2) {
                struct group *res = NULL;
                char *nb;
                int r;

                if (size > NSS_BUFFER_MAX)
                        return -ERANGE;
                nb = realloc(*buf, size);
                if (!nb)
                        return -ENOMEM;
                *buf = nb;
                r = getgrgid_r(gid, gr, *buf, size, &res);
                if (r == ERANGE)
                        continue;
                if (r != 0)
                        return -r;
                return res ? 0 : -ENOENT;
        }
}

char **policy_user_groups(const char *user) {
        _cleanup_free_ char *pwbuf = NULL, *grbuf = NULL;
        _cleanup_free_ gid_t *gids = NULL;
        _cleanup_strv_free_ char **l = NULL;
        struct passwd pw;
        int ngroups = 64, r;

        if (isempty(user)) {
                errno = EINVAL;
                return NULL;
        }
        r = lookup_passwd(user, &pw, &pwbuf);
        if (r < 0) {
                errno = -r;
                return NULL;
        }

        for (;;) {
                int n = ngroups;
                gid_t *ng = reallocarray(gids, (size_t) n, sizeof(gid_t));

                if (!ng) {
                        errno = ENOMEM;
                        return NULL;
                }
                gids = ng;
                if (getgrouplist(pw.pw_name, pw.pw_gid, gids, &n) >= 0) {
                        ngroups = n;
                        break;
                }
                /* n now holds the needed count (glibc); grow at least twofold otherwise. */
                if (n <= ngroups)
                        n = ngroups * 2;
                if (n > GROUPS_MAX) {
                        errno = E2BIG;
                        return NULL;
                }
                ngroups = n;
        }

        l = calloc(1, sizeof(char *));
        if (!l) {
                errno = ENOMEM;
                return NULL;
        }
        for (int i = 0; i < ngroups; i++) {
                struct group gr;

                r = lookup_group(gids[i], &gr, &grbuf);
                if (r == -ENOENT)
                        continue; /* a gid without a name matches no pattern */
                if (r < 0) {
                        errno = -r;
                        return NULL;
                }
                if (strv_contains(l, gr.gr_name))
                        continue;
                if (strv_extend(&l, gr.gr_name) < 0) {
                        errno = ENOMEM;
                        return NULL;
                }
        }
        return TAKE_PTR(l);
}

static bool any_group_matches(const char *pattern, char *const *groups) {
        if (groups)
                for (char *const *g = groups; *g; g++)
                        if (fnmatch(pattern, *g, 0) == 0)
                                return true;
        return false;
}

/* An empty or NULL list, or one of only '!' excludes, includes every user; "*" includes users
 * with no groups at all. Excludes win over includes. */
static bool groups_match(char *const *patterns, char *const *groups) {
        bool have_include = false, included = false;

        if (!patterns || !patterns[0])
                return true;

        for (char *const *p = patterns; *p; p++) {
                if ((*p)[0] == '!') {
                        if (any_group_matches(*p + 1, groups))
                                return false;
                        continue;
                }
                have_include = true;
                if (streq(*p, "*") || any_group_matches(*p, groups))
                        included = true;
        }
        return !have_include || included;
}

static bool rule_needs_groups(const Rule *r) {
        if (!r->groups)
                return false;
        for (char **p = r->groups; *p; p++)
                if (!streq(*p, "*"))
                        return true;
        return false;
}

static bool detections_match(char *const *patterns, const char *detection) {
        if (!patterns || !patterns[0])
                return true;
        for (char *const *p = patterns; *p; p++)
                if (streq(*p, "*") || event_name_covers(*p, detection))
                        return true;
        return false;
}

static bool level_matches(unsigned levels, RiskLevel l) {
        if (l < 0 || l >= _RISK_MAX)
                return false;
        return levels == 0 || (levels & (1u << l));
}

/* A rule that names the detection itself (not "*", not by omitting detections). */
static bool detections_name(char *const *patterns, const char *detection) {
        for (char *const *p = patterns; p && *p; p++)
                if (event_name_covers(*p, detection))
                        return true;
        return false;
}

static const Rule *match(const Config *c, const char *transmitter, const char *user,
                         char *const *user_groups, const char *detection, RiskLevel new_level,
                         bool named_only) {
        _cleanup_strv_free_ char **looked_up = NULL;
        bool have_groups = user_groups != NULL;

        if (!c)
                return NULL;

        for (size_t i = 0; i < c->n_rules; i++) {
                const Rule *r = &c->rules[i];

                if (!level_matches(r->levels, new_level))
                        continue;
                if (!rule_matches_transmitter(r, transmitter))
                        continue;
                if (named_only ? !detections_name(r->detections, detection)
                               : !detections_match(r->detections, detection))
                        continue;
                if (rule_needs_groups(r) && !have_groups) {
                        /* Looked up once, only when a rule needs it. A user the group database
                         * does not know is in no group. */
                        looked_up = user ? policy_user_groups(user) : NULL;
                        user_groups = looked_up;
                        have_groups = true;
                }
                if (!groups_match(r->groups, user_groups))
                        continue;
                return r;
        }
        return NULL;
}

const Rule *policy_match(const Config *c, const char *transmitter, const char *user,
                         char *const *user_groups, const char *detection, RiskLevel new_level) {
        return match(c, transmitter, user, user_groups, detection, new_level, false);
}

const Rule *policy_match_named(const Config *c, const char *transmitter, const char *user,
                               char *const *user_groups, const char *detection, RiskLevel level) {
        return match(c, transmitter, user, user_groups, detection, level, true);
}
