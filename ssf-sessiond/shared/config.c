/* SPDX-License-Identifier: MIT */
/*
 * ssf-sessiond.conf: a hand-written INI line parser (the packaged libinih reports no line
 * numbers and truncates lines at 200 bytes), driven by one static table of
 * { section, key, parser, offset, min, max }.
 *
 * Syntax: "[section]" or "[rule NAME]" headers; "key = value" lines; whole-line comments start
 * with ';' or '#'; an inline comment starts with ';' or '#' preceded by whitespace (or right
 * after '='); a value may be enclosed in double quotes. Names are case-sensitive.
 *
 * The main file is read first, then PATH.d/ *.conf in lexical (strcmp) order. A later file
 * overrides the keys it sets; [detections] entries override per detection; a [rule NAME] of a
 * drop-in replaces the rule of that name in place (all its keys: it is defined anew), or is
 * appended after the rules read so far when the name is new. A key given twice in one file
 * (within one section, or one rule) is an error.
 * Linked by both processes.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "events.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "pattern.h"
#include "strv.h"

#define CONFIG_FILE_MAX (1024U * 1024U)
#define CONFIG_LINE_MAX 4096U
#define CONFIG_LIST_MAX 256U
#define CONFIG_ITEM_MAX 255U
#define CONFIG_URL_MAX 2048U
#define CONFIG_RULES_MAX 1000U
#define CONFIG_DROPINS_MAX 1000U
#define RULE_NAME_MAX 64U

#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MINUTE (60 * USEC_PER_SEC)
#define USEC_PER_HOUR (60 * USEC_PER_MINUTE)
#define USEC_PER_DAY (24 * USEC_PER_HOUR)
#define USEC_PER_WEEK (7 * USEC_PER_DAY)

#define USEC_PER_YEAR (365 * USEC_PER_DAY)

#define ALL_LEVELS ((1u << _RISK_MAX) - 1)

bool config_detection_is_known(const char *name) {
        return event_name_is_known(name);
}

/* ---------------------------------------------------------------------------------------- */

typedef struct Loc {
        const char *file; /* points into ParseState.files; NULL: not set */
        unsigned line;
} Loc;

typedef enum SectionKind {
        SECTION_NONE,
        SECTION_TRANSMITTER,
        SECTION_SUBJECTS,
        SECTION_RISK,
        SECTION_DETECTIONS,
        SECTION_RULE,
        SECTION_HOOKS,
        SECTION_DAEMON,
        SECTION_DETECTION, /* [detection NAME] */
        SECTION_PUSH,
        SECTION_BAD, /* an invalid header was reported; ignore its keys */
        _SECTION_MAX,
} SectionKind;

static const char *const section_names[_SECTION_MAX] = {
        [SECTION_TRANSMITTER] = "transmitter",
        [SECTION_SUBJECTS] = "subjects",
        [SECTION_RISK] = "risk",
        [SECTION_DETECTIONS] = "detections",
        [SECTION_RULE] = "rule",
        [SECTION_HOOKS] = "hooks",
        [SECTION_DAEMON] = "daemon",
        [SECTION_DETECTION] = "detection",
        [SECTION_PUSH] = "push",
};

typedef struct ParseState ParseState;
typedef struct ConfigItem ConfigItem;

/* Parsers store the parsed value at data. They report a bad value themselves and return
 * -EINVAL, or -ENOMEM. */
typedef int (*ConfigParser)(ParseState *s, const ConfigItem *item, const char *value, void *data);

struct ConfigItem {
        SectionKind section;
        const char *key;
        ConfigParser parse;
        size_t offset;
        uint64_t min, max;
};

static int parse_string(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_path(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_path_required(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_https_url(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_auth(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_delivery(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_subjects_mode(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_stream_mode(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_listen(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_events(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_unsigned(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_duration(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_map(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_domains(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_user(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_users(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_groups(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_detections(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_levels(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_action(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_sessions(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_bool(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_workflow(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_device_scope(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_oauth2_client_auth(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_proxy(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_transmitter_names(ParseState *s, const ConfigItem *item, const char *value, void *data);

#define C(f) offsetof(Config, f)
#define R(f) offsetof(Rule, f)
#define T(f) offsetof(TransmitterConfig, f)

/* Every key of ssf-sessiond.conf. tests/check-man-keys.sh reads this table: keep one entry per
 * line, in this form. */
static const ConfigItem config_items[] = {
        { SECTION_TRANSMITTER, "issuer", parse_https_url, T(issuer), 0, 0 },
        { SECTION_TRANSMITTER, "config_url", parse_https_url, T(config_url), 0, 0 },
        { SECTION_TRANSMITTER, "audience", parse_string, T(audience), 0, 0 },
        { SECTION_TRANSMITTER, "stream", parse_stream_mode, T(stream), 0, 0 },
        { SECTION_TRANSMITTER, "jwks_uri", parse_https_url, T(jwks_uri), 0, 0 },
        { SECTION_TRANSMITTER, "push_authorization_file", parse_path, T(push_authorization_file), 0, 0 },
        { SECTION_TRANSMITTER, "auth", parse_auth, T(auth), 0, 0 },
        { SECTION_TRANSMITTER, "token_file", parse_path, T(token_file), 0, 0 },
        { SECTION_TRANSMITTER, "oauth2_token_url", parse_https_url, T(oauth2_token_url), 0, 0 },
        { SECTION_TRANSMITTER, "oauth2_client_id", parse_string, T(oauth2_client_id), 0, 0 },
        { SECTION_TRANSMITTER, "oauth2_client_secret_file", parse_path, T(oauth2_client_secret_file), 0, 0 },
        { SECTION_TRANSMITTER, "oauth2_scope", parse_string, T(oauth2_scope), 0, 0 },
        { SECTION_TRANSMITTER, "oauth2_client_auth", parse_oauth2_client_auth, T(oauth2_client_auth), 0, 0 },
        { SECTION_TRANSMITTER, "oauth2_private_key", parse_path, T(oauth2_private_key), 0, 0 },
        { SECTION_TRANSMITTER, "oauth2_key_id", parse_string, T(oauth2_key_id), 0, 0 },
        { SECTION_TRANSMITTER, "tls_client_cert", parse_path, T(tls_client_cert), 0, 0 },
        { SECTION_TRANSMITTER, "tls_client_key", parse_path, T(tls_client_key), 0, 0 },
        { SECTION_TRANSMITTER, "proxy", parse_proxy, T(proxy), 0, 0 },
        { SECTION_TRANSMITTER, "ca_file", parse_path, T(ca_file), 0, 0 },
        { SECTION_TRANSMITTER, "delivery", parse_delivery, T(delivery), 0, 0 },
        { SECTION_TRANSMITTER, "push_listen", parse_listen, T(push_listen), 0, 0 },
        { SECTION_TRANSMITTER, "push_url", parse_https_url, T(push_url), 0, 0 },
        { SECTION_TRANSMITTER, "push_cert", parse_path, T(push_cert), 0, 0 },
        { SECTION_TRANSMITTER, "push_key", parse_path, T(push_key), 0, 0 },
        { SECTION_TRANSMITTER, "stream_id", parse_string, T(stream_id), 0, 0 },
        { SECTION_TRANSMITTER, "subjects", parse_subjects_mode, T(subjects_local), 0, 0 },
        { SECTION_TRANSMITTER, "events", parse_events, T(events), 0, 0 },
        { SECTION_TRANSMITTER, "poll_max_events", parse_unsigned, T(poll_max_events), 1, 1000 },
        { SECTION_TRANSMITTER, "poll_wait", parse_duration, T(poll_wait_usec), 0, USEC_PER_HOUR },
        { SECTION_TRANSMITTER, "verify_interval", parse_duration, T(verify_interval_usec), 0, USEC_PER_YEAR },
        { SECTION_SUBJECTS, "map", parse_map, C(map), 0, 0 },
        { SECTION_SUBJECTS, "domains", parse_domains, C(domains), 0, 0 },
        { SECTION_SUBJECTS, "map_file", parse_path, C(map_file), 0, 0 },
        { SECTION_SUBJECTS, "device_id", parse_string, C(device_id), 0, 0 },
        { SECTION_SUBJECTS, "min_uid", parse_unsigned, C(min_uid), 0, UINT32_MAX - 1 },
        { SECTION_SUBJECTS, "max_uid", parse_unsigned, C(max_uid), 0, UINT32_MAX - 1 },
        { SECTION_SUBJECTS, "protect", parse_users, C(protect), 0, 0 },
        { SECTION_SUBJECTS, "device_scope", parse_device_scope, C(device_scope), 0, 0 },
        { SECTION_RISK, "ttl", parse_duration, C(ttl_usec), 0, 3650 * USEC_PER_DAY },
        { SECTION_RISK, "max_clock_skew", parse_duration, C(max_clock_skew_usec), 0, USEC_PER_DAY },
        { SECTION_RULE, "groups", parse_groups, R(groups), 0, 0 },
        { SECTION_RULE, "detections", parse_detections, R(detections), 0, 0 },
        { SECTION_RULE, "levels", parse_levels, R(levels), 0, 0 },
        { SECTION_RULE, "action", parse_action, R(action), 0, 0 },
        { SECTION_RULE, "sessions", parse_sessions, R(sessions), 0, 0 },
        { SECTION_RULE, "reset", parse_bool, R(reset), 0, 0 },
        { SECTION_RULE, "workflow", parse_workflow, R(workflow), 0, 0 },
        { SECTION_RULE, "warn", parse_duration, R(warn_usec), 0, USEC_PER_HOUR },
        { SECTION_RULE, "transmitters", parse_transmitter_names, R(transmitters), 0, 0 },
        { SECTION_HOOKS, "dir", parse_path_required, C(hooks_dir), 0, 0 },
        { SECTION_HOOKS, "timeout", parse_duration, C(hooks_timeout_usec), USEC_PER_SEC, USEC_PER_HOUR },
        { SECTION_HOOKS, "user", parse_user, C(hooks_user), 0, 0 },
        { SECTION_DAEMON, "state_dir", parse_path_required, C(state_dir), 0, 0 },
        { SECTION_DAEMON, "socket", parse_path_required, C(socket_path), 0, 0 },
        { SECTION_DAEMON, "snapshot", parse_path_required, C(snapshot_path), 0, 0 },
        { SECTION_DAEMON, "max_event_age", parse_duration, C(max_event_age_usec), USEC_PER_HOUR, 3650 * USEC_PER_DAY },
        { SECTION_DAEMON, "history_retention", parse_duration, C(history_retention_usec), USEC_PER_HOUR, 3650 * USEC_PER_DAY },
        { SECTION_DAEMON, "history_max_rows", parse_unsigned, C(history_max_rows), 10, UINT32_MAX - 1 },
        { SECTION_DAEMON, "replay_cache_max", parse_unsigned, C(replay_cache_max), 10, UINT32_MAX - 1 },
        { SECTION_DAEMON, "dry_run", parse_bool, C(dry_run), 0, 0 },
        { SECTION_PUSH, "push_listen", parse_listen, C(push_listen), 0, 0 },
        { SECTION_PUSH, "push_cert", parse_path, C(push_cert), 0, 0 },
        { SECTION_PUSH, "push_key", parse_path, C(push_key), 0, 0 },
};

#undef C
#undef R
#undef T

#define N_ITEMS ARRAY_SIZE(config_items)

typedef struct RuleMeta {
        Loc section;
        Loc keys[N_ITEMS];
        bool bad[N_ITEMS]; /* an invalid value was reported: skip dependent checks */
} RuleMeta;

/* Per [transmitter NAME]: where its keys were set, parallel to config->transmitters. */
typedef struct TransmitterMeta {
        Loc section;
        Loc keys[N_ITEMS];
        bool bad[N_ITEMS];
        Loc last;            /* its latest header */
        bool unnamed, named; /* "default" was spelled [transmitter] / [transmitter default] */
} TransmitterMeta;

struct ParseState {
        Config *config;
        bool check_perms;
        bool warn_only;        /* report problems as warnings (workflow hooks) */
        const Config *running; /* at a reload, the configuration in force (config_reload()) */
        unsigned n_errors;

        char **files;          /* names of the files read; Loc.file points into it */
        Loc keys[N_ITEMS];     /* where each non-rule key was last set */
        bool bad[N_ITEMS];     /* an invalid value was reported for the key */
        Loc sections[_SECTION_MAX]; /* first header of each section kind */
        Loc main_file;         /* line 0 of the main file */
        RuleMeta *rule_meta;   /* parallel to config->rules */
        TransmitterMeta *transmitter_meta; /* parallel to config->transmitters */
        Loc *detection_locs;   /* parallel to config->detection_levels */
        struct DetectionDefMeta *def_meta; /* parallel to config->detection_defs */

        /* the file being parsed */
        const char *file;
        unsigned line;
        SectionKind section;
        size_t rule;           /* index of the current rule when section == SECTION_RULE */
        size_t def;            /* index of the current [detection NAME] (SECTION_DETECTION) */
        size_t transmitter;    /* ... of the current transmitter when SECTION_TRANSMITTER */
};

static Loc current_loc(const ParseState *s) {
        return (Loc){ s->file, s->line };
}

_printf_(3, 4) static int config_error(ParseState *s, const Loc *loc, const char *format, ...) {
        char buf[1024];
        va_list ap;

        va_start(ap, format);
        (void) vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        if (s->warn_only) {
                log_warning("%s:%u: %s", loc && loc->file ? loc->file : "config", loc ? loc->line : 0, buf);
                return -EINVAL;
        }
        if (loc && loc->file && loc->line > 0)
                log_error("%s:%u: %s", loc->file, loc->line, buf);
        else if (loc && loc->file)
                log_error("%s: %s", loc->file, buf);
        else
                log_error("%s", buf);
        s->n_errors++;
        return -EINVAL;
}

_printf_(3, 4) static void config_warning(ParseState *s, const Loc *loc, const char *format, ...) {
        char buf[1024];
        va_list ap;

        va_start(ap, format);
        (void) vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        if (loc && loc->file && loc->line > 0)
                log_warning("%s:%u: %s", loc->file, loc->line, buf);
        else
                log_warning("%s: %s", loc && loc->file ? loc->file : "config", buf);
}

/* The error location for a check about the setting of item idx: where it was set, else the
 * first header of its section, else the main file. */
static Loc key_loc(const ParseState *s, size_t idx) {
        if (s->keys[idx].file)
                return s->keys[idx];
        if (s->sections[config_items[idx].section].file)
                return s->sections[config_items[idx].section];
        return s->main_file;
}

static ssize_t item_index(SectionKind section, const char *key) {
        for (size_t i = 0; i < N_ITEMS; i++)
                if (config_items[i].section == section && streq(config_items[i].key, key))
                        return (ssize_t) i;
        return -1;
}

static bool has_control(const char *v) {
        for (const unsigned char *p = (const unsigned char *) v; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return true;
        return false;
}

/* ---- value parsers ------------------------------------------------------------------------ */

static int set_string(char **field, const char *value) {
        char *n = NULL;

        if (!isempty(value)) {
                n = strdup(value);
                if (!n)
                        return -ENOMEM;
        }
        free(*field);
        *field = n;
        return 0;
}

static int parse_string(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        Loc l = current_loc(s);

        if (strlen(value) > CONFIG_URL_MAX)
                return config_error(s, &l, "Value of '%s' is too long", item->key);
        if (has_control(value))
                return config_error(s, &l, "Value of '%s' contains control characters", item->key);
        return set_string(data, value);
}

static int check_path(ParseState *s, const ConfigItem *item, const char *value) {
        Loc l = current_loc(s);

        if (value[0] != '/')
                return config_error(s, &l, "'%s' must be an absolute path: '%s'", item->key, value);
        if (strlen(value) >= PATH_MAX)
                return config_error(s, &l, "'%s': path too long", item->key);
        if (has_control(value))
                return config_error(s, &l, "'%s': path contains control characters", item->key);
        return 0;
}

static int parse_path(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        if (!isempty(value) && check_path(s, item, value) < 0)
                return -EINVAL;
        return set_string(data, value);
}

static int parse_path_required(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        Loc l = current_loc(s);

        if (isempty(value))
                return config_error(s, &l, "'%s' must not be empty", item->key);
        return parse_path(s, item, value, data);
}

static bool url_is_https(const char *v) {
        const char *host = startswith(v, "https://");

        if (!host || strlen(v) > CONFIG_URL_MAX)
                return false;
        if (*host == '\0' || *host == '/' || *host == '?' || *host == '#' || *host == ':')
                return false;
        for (const unsigned char *p = (const unsigned char *) v; *p; p++)
                if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '<' || *p == '>')
                        return false;
        return true;
}

static int parse_https_url(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        Loc l = current_loc(s);

        if (!isempty(value) && !url_is_https(value))
                return config_error(s, &l, "'%s' must be an https:// URL: '%s'", item->key, value);
        return set_string(data, value);
}

static int lookup_name(const char *const *names, size_t n, const char *value) {
        for (size_t i = 0; i < n; i++)
                if (names[i] && streq(names[i], value))
                        return (int) i;
        return -1;
}

static const char *const auth_names[] = {
        [AUTH_BEARER] = "bearer",
        [AUTH_OAUTH2] = "oauth2",
        [AUTH_NONE] = "none",
};

static const char *const stream_mode_names[] = {
        [STREAM_MANAGED] = "managed",
        [STREAM_NONE] = "none",
};

static const char *const delivery_names[] = {
        [DELIVERY_POLL] = "poll",
        [DELIVERY_PUSH] = "push",
};

static const char *const map_names[] = {
        [SUBJECT_MAP_EMAIL_LOCALPART] = "email-localpart",
        [SUBJECT_MAP_EMAIL] = "email",
        [SUBJECT_MAP_ISS_SUB] = "iss_sub",
        [SUBJECT_MAP_OPAQUE] = "opaque",
        [SUBJECT_MAP_FILE] = "file",
};

static const char *const action_names[] = {
        [ACTION_NONE] = "none",
        [ACTION_LOGOUT] = "logout",
        [ACTION_WORKFLOW] = "workflow",
        [ACTION_LOCK] = "lock",
};

static const char *const sessions_names[] = {
        [SESSIONS_ALL] = "all",
        [SESSIONS_REMOTE] = "remote",
        [SESSIONS_LOCAL] = "local",
        [SESSIONS_GRAPHICAL] = "graphical",
};

const char *rule_action_to_string(RuleAction a) {
        if ((unsigned) a >= ARRAY_SIZE(action_names))
                return NULL;
        return action_names[a];
}

const char *session_scope_to_string(SessionScope sc) {
        if ((unsigned) sc >= ARRAY_SIZE(sessions_names))
                return NULL;
        return sessions_names[sc];
}

static int parse_enum(ParseState *s, const ConfigItem *item, const char *value, void *data,
                      const char *const *names, size_t n, const char *expected) {
        Loc l = current_loc(s);
        int v = lookup_name(names, n, value);

        if (v < 0)
                return config_error(s, &l, "Invalid value for '%s': '%s' (expected %s)", item->key,
                                    value, expected);
        *(int *) data = v;
        return 0;
}

static int parse_auth(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        return parse_enum(s, item, value, data, auth_names, ARRAY_SIZE(auth_names),
                          "bearer, oauth2 or none");
}

static int parse_stream_mode(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        return parse_enum(s, item, value, data, stream_mode_names, ARRAY_SIZE(stream_mode_names),
                          "managed or none");
}

static int parse_delivery(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        return parse_enum(s, item, value, data, delivery_names, ARRAY_SIZE(delivery_names),
                          "poll or push");
}

/* [transmitter] subjects = all | local: a bool (local). */
static int parse_subjects_mode(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        static const char *const names[] = { "all", "local" };
        int v = 0, r;

        r = parse_enum(s, item, value, &v, names, ARRAY_SIZE(names), "all or local");
        if (r >= 0)
                *(bool *) data = v == 1;
        return r;
}

static int parse_map(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        return parse_enum(s, item, value, data, map_names, ARRAY_SIZE(map_names),
                          "email-localpart, email, iss_sub, opaque or file");
}

static int parse_action(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        return parse_enum(s, item, value, data, action_names, ARRAY_SIZE(action_names),
                          "logout, lock, workflow or none");
}

/* ---- client authentication, mTLS, proxy --------------------------------------------------- */

static const char *const oauth2_client_auth_names[] = {
        [OAUTH2_CLIENT_AUTH_BASIC] = "basic",
        [OAUTH2_CLIENT_AUTH_POST] = "post",
        [OAUTH2_CLIENT_AUTH_PRIVATE_KEY_JWT] = "private_key_jwt",
};

const char *oauth2_client_auth_to_string(OAuth2ClientAuth a) {
        if ((unsigned) a >= ARRAY_SIZE(oauth2_client_auth_names))
                return NULL;
        return oauth2_client_auth_names[a];
}

static int parse_oauth2_client_auth(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        return parse_enum(s, item, value, data, oauth2_client_auth_names,
                          ARRAY_SIZE(oauth2_client_auth_names), "basic, post or private_key_jwt");
}

/* "http://HOST:PORT" or "https://HOST:PORT", an optional "/" after it; HOST a name, an IPv4
 * address or a bracketed IPv6 address; the port is required (libcurl's default, 1080, is
 * nobody's guess). No user information: the configuration file is world-readable, so a proxy
 * password has no place in it. */
static bool proxy_url_valid(const char *v) {
        const char *host, *p, *end;
        unsigned long port;
        char *e;

        host = startswith(v, "http://") ?: startswith(v, "https://");
        if (!host || strlen(v) > CONFIG_URL_MAX)
                return false;
        end = host + strcspn(host, "/");
        if (!streq(end, "") && !streq(end, "/"))
                return false;
        if (*host == '[') {
                p = memchr(host, ']', (size_t) (end - host));
                if (!p || p == host + 1)
                        return false;
                for (const char *q = host + 1; q < p; q++)
                        if (!isxdigit((unsigned char) *q) && *q != ':' && *q != '.')
                                return false;
                p++;
        } else {
                p = host;
                while (p < end && (isalnum((unsigned char) *p) || *p == '-' || *p == '.'))
                        p++;
                if (p == host)
                        return false;
        }
        if (p >= end || *p != ':' || !isdigit((unsigned char) p[1]))
                return false;
        errno = 0;
        port = strtoul(p + 1, &e, 10);
        return errno == 0 && e == end && port >= 1 && port <= 65535;
}

static int parse_proxy(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        Loc l = current_loc(s);

        if (!isempty(value) && !proxy_url_valid(value))
                return config_error(s, &l, "'%s' must be http://HOST:PORT or https://HOST:PORT "
                                    "(no user name or password, no path): '%s'", item->key, value);
        return set_string(data, value);
}

static int parse_sessions(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        return parse_enum(s, item, value, data, sessions_names, ARRAY_SIZE(sessions_names),
                          "all, remote, local or graphical");
}

static int parse_bool_value(const char *v) {
        static const char *const yes[] = { "yes", "true", "1", "on" };
        static const char *const no[] = { "no", "false", "0", "off" };

        for (size_t i = 0; i < ARRAY_SIZE(yes); i++)
                if (strcasecmp(v, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ARRAY_SIZE(no); i++)
                if (strcasecmp(v, no[i]) == 0)
                        return 0;
        return -EINVAL;
}

static int parse_bool(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        Loc l = current_loc(s);
        int b = parse_bool_value(value);

        if (b < 0)
                return config_error(s, &l, "Invalid boolean for '%s': '%s' (expected yes or no)",
                                    item->key, value);
        *(bool *) data = b;
        return 0;
}

static int parse_u64(const char *v, uint64_t *ret) {
        unsigned long long u;
        char *end;

        if (!isdigit((unsigned char) v[0]))
                return -EINVAL;
        errno = 0;
        u = strtoull(v, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end != '\0')
                return -EINVAL;
        *ret = u;
        return 0;
}

static int parse_unsigned(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        Loc l = current_loc(s);
        uint64_t u;

        if (parse_u64(value, &u) < 0)
                return config_error(s, &l, "Invalid number for '%s': '%s'", item->key, value);
        if (u < item->min || u > item->max)
                return config_error(s, &l, "'%s' must be between %" PRIu64 " and %" PRIu64 ": '%s'",
                                    item->key, item->min, item->max, value);
        *(unsigned *) data = (unsigned) u;
        return 0;
}

int config_parse_duration(const char *str, uint64_t *ret_usec) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "us", 1 },
                { "usec", 1 },
                { "ms", USEC_PER_MSEC },
                { "msec", USEC_PER_MSEC },
                { "s", USEC_PER_SEC },
                { "sec", USEC_PER_SEC },
                { "second", USEC_PER_SEC },
                { "seconds", USEC_PER_SEC },
                { "m", USEC_PER_MINUTE },
                { "min", USEC_PER_MINUTE },
                { "minute", USEC_PER_MINUTE },
                { "minutes", USEC_PER_MINUTE },
                { "h", USEC_PER_HOUR },
                { "hr", USEC_PER_HOUR },
                { "hour", USEC_PER_HOUR },
                { "hours", USEC_PER_HOUR },
                { "d", USEC_PER_DAY },
                { "day", USEC_PER_DAY },
                { "days", USEC_PER_DAY },
                { "w", USEC_PER_WEEK },
                { "week", USEC_PER_WEEK },
                { "weeks", USEC_PER_WEEK },
        };
        const char *p = str;
        uint64_t total = 0;
        unsigned n = 0;

        if (!str)
                return -EINVAL;

        for (;;) {
                unsigned long long v;
                uint64_t mult = 0, part;
                char unit[16];
                size_t ul = 0;
                char *end;

                while (*p == ' ' || *p == '\t')
                        p++;
                if (*p == '\0')
                        break;
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                errno = 0;
                v = strtoull(p, &end, 10);
                if (errno == ERANGE)
                        return -ERANGE;
                p = end;
                while (isalpha((unsigned char) *p)) {
                        if (ul >= sizeof(unit) - 1)
                                return -EINVAL;
                        unit[ul++] = *p++;
                }
                unit[ul] = '\0';

                if (ul == 0) {
                        /* A bare number is seconds, and only allowed alone. */
                        while (*p == ' ' || *p == '\t')
                                p++;
                        if (n > 0 || *p != '\0')
                                return -EINVAL;
                        mult = USEC_PER_SEC;
                } else
                        for (size_t i = 0; i < ARRAY_SIZE(units); i++)
                                if (streq(units[i].suffix, unit)) {
                                        mult = units[i].usec;
                                        break;
                                }
                if (mult == 0)
                        return -EINVAL;
                if (__builtin_mul_overflow((uint64_t) v, mult, &part) ||
                    __builtin_add_overflow(total, part, &total))
                        return -ERANGE;
                n++;
        }
        if (n == 0)
                return -EINVAL;

        *ret_usec = total;
        return 0;
}

static int parse_duration(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        Loc l = current_loc(s);
        uint64_t u;
        int r;

        r = config_parse_duration(value, &u);
        if (r < 0)
                return config_error(s, &l, "Invalid duration for '%s': '%s' (e.g. 30s, 5m, 24h, 7d)",
                                    item->key, value);
        if (u < item->min || u > item->max)
                return config_error(s, &l, "'%s' is out of range (%" PRIu64 "s..%" PRIu64 "s): '%s'",
                                    item->key, item->min / USEC_PER_SEC, item->max / USEC_PER_SEC, value);
        *(uint64_t *) data = u;
        return 0;
}

static int parse_listen(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        Loc l = current_loc(s);
        _cleanup_free_ char *host = NULL;
        const char *colon, *port;
        unsigned char addr[16];
        uint64_t p;

        if (isempty(value))
                return set_string(data, NULL);

        if (value[0] == '[') {
                const char *close = strchr(value, ']');
                if (!close || close[1] != ':')
                        goto bad;
                host = strndup(value + 1, (size_t) (close - value - 1));
                if (!host)
                        return -ENOMEM;
                if (inet_pton(AF_INET6, host, addr) != 1)
                        goto bad;
                port = close + 2;
        } else {
                colon = strrchr(value, ':');
                if (!colon || colon == value)
                        goto bad;
                host = strndup(value, (size_t) (colon - value));
                if (!host)
                        return -ENOMEM;
                if (inet_pton(AF_INET, host, addr) != 1) {
                        if (strlen(host) > 253)
                                goto bad;
                        for (const char *c = host; *c; c++)
                                if (!isalnum((unsigned char) *c) && *c != '-' && *c != '.')
                                        goto bad;
                }
                port = colon + 1;
        }
        if (parse_u64(port, &p) < 0 || p < 1 || p > 65535)
                goto bad;
        return set_string(data, value);

bad:
        return config_error(s, &l, "Invalid '%s': '%s' (expected ADDRESS:PORT, [IPv6]:PORT)",
                            item->key, value);
}

/* Splits a comma- and/or whitespace-separated list. Empty items are skipped. */
static int split_list(ParseState *s, const ConfigItem *item, const char *value, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        Loc loc = current_loc(s);
        size_t n = 0;
        int r;

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;

        for (const char *p = value; *p;) {
                size_t len;

                p += strspn(p, ", \t");
                if (*p == '\0')
                        break;
                len = strcspn(p, ", \t");
                if (len > CONFIG_ITEM_MAX)
                        return config_error(s, &loc, "An item of '%s' is too long", item->key);
                if (++n > CONFIG_LIST_MAX)
                        return config_error(s, &loc, "Too many items in '%s' (at most %u)", item->key,
                                            CONFIG_LIST_MAX);
                r = strv_consume(&l, strndup(p, len));
                if (r < 0)
                        return r;
                p += len;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static int parse_events(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        _cleanup_strv_free_ char **l = NULL;
        Loc loc = current_loc(s);
        char ***field = data;
        int r;

        r = split_list(s, item, value, &l);
        if (r < 0)
                return r;
        if (!l[0])
                return config_error(s, &loc, "'%s' must not be empty (use 'all')", item->key);
        if (strv_contains(l, "all")) {
                if (l[1])
                        return config_error(s, &loc, "'%s': 'all' cannot be combined with names",
                                            item->key);
                *field = strv_free(*field);
                return 0;
        }
        for (char **e = l; *e; e++)
                if (!config_detection_is_known(*e))
                        return config_error(s, &loc, "'%s': unknown event '%s'", item->key, *e);
        strv_free(*field);
        *field = TAKE_PTR(l);
        return 0;
}

static bool domain_valid(const char *d) {
        size_t n = strlen(d);

        if (n == 0 || n > 253 || d[0] == '.' || d[0] == '-' || d[n - 1] == '.')
                return false;
        for (const char *c = d; *c; c++)
                if (!isalnum((unsigned char) *c) && *c != '-' && *c != '.')
                        return false;
        return !strstr(d, "..");
}

static int parse_domains(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        _cleanup_strv_free_ char **l = NULL;
        Loc loc = current_loc(s);
        char ***field = data;
        int r;

        r = split_list(s, item, value, &l);
        if (r < 0)
                return r;
        if (strv_length(l) == 1 && streq(l[0], "*")) {
                /* Every domain, said explicitly. */
                strv_free(*field);
                *field = TAKE_PTR(l);
                return 0;
        }
        for (char **d = l; *d; d++) {
                if (streq(*d, "*"))
                        return config_error(s, &loc, "'%s': '*' stands alone (every domain)",
                                            item->key);
                if (!domain_valid(*d))
                        return config_error(s, &loc, "'%s': invalid domain '%s'", item->key, *d);
                for (char *c = *d; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
        }
        strv_free(*field);
        *field = l[0] ? TAKE_PTR(l) : NULL;
        return 0;
}

static bool user_name_valid(const char *u) {
        size_t n = strlen(u);

        if (n == 0 || n > 32 || u[0] == '-' || isdigit((unsigned char) u[0]))
                return false;
        for (const char *c = u; *c; c++)
                if (!isalnum((unsigned char) *c) && *c != '_' && *c != '-' && *c != '.' &&
                    !(*c == '$' && c[1] == '\0'))
                        return false;
        return true;
}

static int parse_user(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        Loc l = current_loc(s);

        if (!user_name_valid(value))
                return config_error(s, &l, "Invalid user name for '%s': '%s'", item->key, value);
        return set_string(data, value);
}

/* A list of user names (protect). */
static int parse_users(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        _cleanup_strv_free_ char **l = NULL;
        Loc loc = current_loc(s);
        char ***field = data;
        int r;

        r = split_list(s, item, value, &l);
        if (r < 0)
                return r;
        for (char **u = l; *u; u++)
                if (!user_name_valid(*u))
                        return config_error(s, &loc, "Invalid user name for '%s': '%s'", item->key,
                                            *u);
        strv_free(*field);
        *field = TAKE_PTR(l);
        return 0;
}

static int parse_groups(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        _cleanup_strv_free_ char **l = NULL;
        Loc loc = current_loc(s);
        char ***field = data;
        int r;

        r = split_list(s, item, value, &l);
        if (r < 0)
                return r;
        if (!l[0])
                return config_error(s, &loc, "'%s' must not be empty (use '*')", item->key);
        for (char **g = l; *g; g++) {
                const char *p = *g[0] == '!' ? *g + 1 : *g;
                if (*p == '\0' || strchr(p, '!') || has_control(p))
                        return config_error(s, &loc, "'%s': invalid group pattern '%s'", item->key, *g);
        }
        strv_free(*field);
        *field = TAKE_PTR(l);
        return 0;
}

static int parse_detections(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        _cleanup_strv_free_ char **l = NULL;
        Loc loc = current_loc(s);
        char ***field = data;
        int r;

        r = split_list(s, item, value, &l);
        if (r < 0)
                return r;
        if (!l[0])
                return config_error(s, &loc, "'%s' must not be empty (use '*')", item->key);
        /* Whether each name is known is checked once every file is read ([detection NAME]
         * sections may come later): validate_detection_defs(). */
        strv_free(*field);
        *field = TAKE_PTR(l);
        return 0;
}

static int parse_levels(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        _cleanup_strv_free_ char **l = NULL;
        Loc loc = current_loc(s);
        unsigned bits = 0;
        int r;

        r = split_list(s, item, value, &l);
        if (r < 0)
                return r;
        if (!l[0])
                return config_error(s, &loc, "'%s' must not be empty (use '*')", item->key);
        for (char **e = l; *e; e++) {
                RiskLevel lv;

                if (streq(*e, "*")) {
                        bits = ALL_LEVELS;
                        continue;
                }
                lv = risk_level_from_string(*e);
                if (lv < 0 || strcasecmp(*e, "secure") == 0)
                        return config_error(s, &loc,
                                            "'%s': invalid level '%s' "
                                            "(expected none, low, medium, high or *)",
                                            item->key, *e);
                bits |= 1u << lv;
        }
        *(unsigned *) data = bits;
        return 0;
}

static bool workflow_name_valid(const char *w) {
        size_t n = strlen(w);

        if (n == 0 || n > CONFIG_ITEM_MAX || w[0] == '.' || w[0] == '-')
                return false;
        for (const char *c = w; *c; c++)
                if (!isalnum((unsigned char) *c) && !strchr("._-+@", *c))
                        return false;
        return true;
}

static int parse_workflow(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        Loc l = current_loc(s);

        if (!workflow_name_valid(value))
                return config_error(s, &l,
                                    "Invalid workflow name '%s' (a file name in the hooks directory: "
                                    "letters, digits, '._-+@', not starting with '.' or '-')",
                                    value);
        return set_string(data, value);
}

/* ---- [detection NAME] sections and [subjects] device_scope -------------------------------- */

/* PRODUCT.md "Detections derived from event claims": a named detection for the events of one
 * type whose members match glob terms, at its own level. Parsed into Config.detection_defs in
 * file order; a drop-in's section of the same name replaces it in place (all its keys), as
 * for rules. Rules may name these detections; whether every name a rule gives is known is
 * checked once all files are read. */

#define DETECTION_DEFS_MAX 1000U
#define DETECTION_NAME_MAX 63U  /* Detection.name holds 64 bytes */
#define CLAIM_TERMS_MAX 32U
#define CLAIM_PATTERNS_MAX 32U
#define CLAIM_MEMBER_MAX 64U

static int parse_detection_event(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_claims(ParseState *s, const ConfigItem *item, const char *value, void *data);
static int parse_detection_def_level(ParseState *s, const ConfigItem *item, const char *value, void *data);

#define D(f) offsetof(DetectionDef, f)

/* The keys of a [detection NAME] section (tests/check-man-keys.sh reads this table too). */
static const ConfigItem detection_items[] = {
        { SECTION_DETECTION, "event", parse_detection_event, D(event), 0, 0 },
        { SECTION_DETECTION, "claims", parse_claims, D(claims), 0, 0 },
        { SECTION_DETECTION, "level", parse_detection_def_level, D(level), 0, 0 },
};

#undef D

#define N_DETECTION_ITEMS ARRAY_SIZE(detection_items)

typedef struct DetectionDefMeta {
        Loc section;
        Loc keys[N_DETECTION_ITEMS];
        bool bad[N_DETECTION_ITEMS];
} DetectionDefMeta;

/* named_section_start() finds a section's Loc at the start of its metadata. */
_Static_assert(offsetof(RuleMeta, section) == 0, "RuleMeta begins with its section");
_Static_assert(offsetof(DetectionDefMeta, section) == 0, "DetectionDefMeta begins with its section");

static const char *const device_scope_names[] = {
        [DEVICE_SCOPE_ANY] = "any",
        [DEVICE_SCOPE_THIS_HOST] = "this-host",
};

static int parse_device_scope(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        return parse_enum(s, item, value, data, device_scope_names, ARRAY_SIZE(device_scope_names),
                          "any or this-host");
}

static void claim_terms_free(ClaimTerm *t, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(t[i].member);
                strv_free(t[i].patterns);
        }
        free(t);
}

static void detection_def_done(DetectionDef *d) {
        free(d->name);
        free(d->event);
        claim_terms_free(d->claims, d->n_claims);
        free(d->file);
        *d = (DetectionDef){};
}

static int detection_def_init(DetectionDef *d, const char *name, const Loc *loc) {
        *d = (DetectionDef){ .level = _RISK_INVALID, .line = loc->line };
        d->name = strdup(name);
        d->file = strdup(loc->file);
        if (!d->name || !d->file) {
                detection_def_done(d);
                return -ENOMEM;
        }
        return 0;
}

/* Letters, digits, '-', '_', '.', starting with a letter or digit, as the built-in names. */
static bool detection_name_valid(const char *n) {
        size_t len = strlen(n);

        if (len == 0 || len > DETECTION_NAME_MAX || !isalnum((unsigned char) n[0]))
                return false;
        for (const char *c = n; *c; c++)
                if (!isalnum((unsigned char) *c) && !strchr("-_.", *c))
                        return false;
        return true;
}

bool config_transmitter_name_valid(const char *n) {
        size_t len = n ? strlen(n) : 0;

        if (len == 0 || len > TRANSMITTER_NAME_MAX)
                return false;
        for (const char *c = n; *c; c++)
                if (!(*c >= 'a' && *c <= 'z') && !(*c >= '0' && *c <= '9') && *c != '-')
                        return false;
        return true;
}

/* Where the entries of one kind of named section ([rule NAME], [detection NAME], [transmitter
 * NAME]) are kept: an array of the Config, whose elements have a char *name at name_offset, and the
 * ParseState's parallel array of where their keys were set. */
typedef struct NamedSections {
        const char *noun;        /* "rule", as the errors name one */
        const char *charset;     /* the valid names, as the error describes them */
        const char *plural;      /* "Too many <plural> (at most <max>)" */
        unsigned name_max, max;
        bool (*valid)(const char *name);
        bool (*reserved)(const char *name); /* optional: names that are not the admin's to take */
        void **items;
        size_t *n_items;
        size_t item_size, name_offset;
        void **meta;
        size_t meta_size;
        /* [rule NAME] and [detection NAME] only (named_section_start()): */
        const char *What;        /* "Rule", as an error begins with one */
        SectionKind kind;
        size_t *current;         /* where the index of the section being read goes */
        int (*init)(void *item, const char *name, const Loc *l);
        void (*done)(void *item);
} NamedSections;

/* The bookkeeping every named section header shares: checks the name (at l), then looks it up.
 * Returns 1 with *ret its index when an entry of that name exists; 0 with *ret = *a->n_items when
 * there is none and both arrays have room for one more (its metadata zeroed): the caller
 * initialises the item and counts it; or -errno after reporting the error (a bad name, too many:
 * the section is then SECTION_BAD). */
static int named_section_lookup(ParseState *s, const NamedSections *a, const char *name, const Loc *l,
                                size_t *ret) {
        size_t n = *a->n_items, i;
        void *p;

        if (!a->valid(name)) {
                s->section = SECTION_BAD;
                return config_error(s, l, "Invalid %s name '%s' (%s, at most %u)", a->noun, name,
                                    a->charset, a->name_max);
        }
        if (a->reserved && a->reserved(name)) {
                s->section = SECTION_BAD;
                return config_error(s, l, "[%s %s]: '%s' is a built-in %s name", a->noun, name, name,
                                    a->noun);
        }
        for (i = 0; i < n; i++) {
                const char *const *in = (const char *const *) ((const char *) *a->items +
                                                               i * a->item_size + a->name_offset);

                if (streq(*in, name)) {
                        *ret = i;
                        return 1;
                }
        }
        if (n >= a->max) {
                s->section = SECTION_BAD;
                return config_error(s, l, "Too many %s (at most %u)", a->plural, a->max);
        }
        p = reallocarray(*a->items, n + 1, a->item_size);
        if (!p)
                return -ENOMEM;
        *a->items = p;
        p = reallocarray(*a->meta, n + 1, a->meta_size);
        if (!p)
                return -ENOMEM;
        *a->meta = p;
        memset((char *) p + n * a->meta_size, 0, a->meta_size);
        *ret = n;
        return 0;
}

/* A name given to two sections of one file: the error, with the line of the first. */
static int named_section_twice(ParseState *s, const Loc *l, const char *what, const char *name,
                               unsigned first_line) {
        return config_error(s, l, "%s '%s' is defined twice in this file (first at line %u)", what, name,
                            first_line);
}

/* The header of a [rule NAME] or [detection NAME] section: a new name adds an entry; a name an
 * earlier file defined is defined again in place, from scratch; a name this file already used
 * is an error, and the keys that follow go on filling that entry (so that a key given in both
 * is reported as a duplicate). The metadata of each kind begins with its section's Loc. */
static int named_section_start(ParseState *s, const NamedSections *a, const char *name) {
        Loc l = current_loc(s), *meta;
        void *item;
        size_t i;
        bool found;
        int r;

        r = named_section_lookup(s, a, name, &l, &i);
        if (r < 0)
                return r;
        found = r > 0;
        item = (char *) *a->items + i * a->item_size;
        meta = (Loc *) (void *) ((char *) *a->meta + i * a->meta_size);
        if (found) {
                if (meta->file == s->file) {
                        s->section = a->kind;
                        *a->current = i;
                        return named_section_twice(s, &l, a->What, name, meta->line);
                }
                a->done(item);
        }
        r = a->init(item, name, &l);
        if (r < 0)
                return r;
        if (!found)
                (*a->n_items)++;
        memset(meta, 0, a->meta_size);
        *meta = l;
        s->section = a->kind;
        *a->current = i;
        return 0;
}

static bool detection_name_reserved(const char *name) {
        /* "manual" is what ssfctl set-risk records. */
        return config_detection_is_known(name) || streq(name, "manual");
}

static int detection_def_init_item(void *d, const char *name, const Loc *l) {
        return detection_def_init(d, name, l);
}

static void detection_def_done_item(void *d) {
        detection_def_done(d);
}

static int start_detection_def(ParseState *s, const char *name) {
        Config *c = s->config;
        const NamedSections a = {
                .noun = "detection",
                .charset = "letters, digits, '-_.', starting with a letter or digit",
                .plural = "[detection NAME] sections",
                .name_max = DETECTION_NAME_MAX,
                .max = DETECTION_DEFS_MAX,
                .valid = detection_name_valid,
                .reserved = detection_name_reserved,
                .items = (void **) &c->detection_defs,
                .n_items = &c->n_detection_defs,
                .item_size = sizeof(DetectionDef),
                .name_offset = offsetof(DetectionDef, name),
                .meta = (void **) &s->def_meta,
                .meta_size = sizeof(DetectionDefMeta),
                .What = "Detection",
                .kind = SECTION_DETECTION,
                .current = &s->def,
                .init = detection_def_init_item,
                .done = detection_def_done_item,
        };

        if (*name == '\0') {
                Loc l = current_loc(s);

                s->section = SECTION_BAD;
                return config_error(s, &l, "Detection section without a name: use [detection NAME]");
        }
        return named_section_start(s, &a, name);
}

static int parse_detection_event(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        const EventType *e = event_type_by_name(value);
        Loc l = current_loc(s);

        if (!e)
                return config_error(s, &l,
                                    "'%s': unknown event '%s' (a built-in detection name such as "
                                    "credential-change)", item->key, value);
        if (e->level == _RISK_INVALID)
                return config_error(s, &l,
                                    "'%s': %s carries its own level: it cannot be classified by claims",
                                    item->key, value);
        if (streq(value, "account-enabled"))
                return config_error(s, &l, "'%s': account-enabled only clears account-disabled",
                                    item->key);
        return set_string(data, value);
}

static bool claim_member_valid(const char *m, size_t len) {
        if (len == 0 || len > CLAIM_MEMBER_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!isalnum((unsigned char) m[i]) && !strchr("_-.:", m[i]))
                        return false;
        return true;
}

/* "NAME=PATTERN[,PATTERN…] …": terms separated by whitespace, patterns by commas. */
static int parse_claims(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        DetectionDef *d = (DetectionDef *) ((uint8_t *) data - offsetof(DetectionDef, claims));
        Loc l = current_loc(s);
        ClaimTerm *terms = NULL;
        size_t n = 0;
        int r = 0;

        for (const char *p = value;;) {
                _cleanup_free_ char *term = NULL;
                _cleanup_strv_free_ char **pats = NULL;
                const char *eq;
                ClaimTerm *nt;
                size_t len;

                p += strspn(p, " \t");
                if (*p == '\0')
                        break;
                len = strcspn(p, " \t");
                term = strndup(p, len);
                if (!term) {
                        r = -ENOMEM;
                        goto fail;
                }
                p += len;
                if (n >= CLAIM_TERMS_MAX) {
                        r = config_error(s, &l, "'%s': too many terms (at most %u)", item->key,
                                         CLAIM_TERMS_MAX);
                        goto fail;
                }
                eq = strchr(term, '=');
                if (!eq || !claim_member_valid(term, (size_t) (eq - term))) {
                        r = config_error(s, &l,
                                         "'%s': invalid term '%s' (expected MEMBER=PATTERN[,PATTERN...], "
                                         "MEMBER of letters, digits, '_-.:')", item->key, term);
                        goto fail;
                }
                for (size_t i = 0; i < n; i++)
                        if (strlen(terms[i].member) == (size_t) (eq - term) &&
                            strncmp(terms[i].member, term, (size_t) (eq - term)) == 0) {
                                r = config_error(s, &l, "'%s': member '%.*s' is given twice",
                                                 item->key, (int) (eq - term), term);
                                goto fail;
                        }
                pats = calloc(1, sizeof(char *));
                if (!pats) {
                        r = -ENOMEM;
                        goto fail;
                }
                for (const char *q = eq + 1;; q++) {
                        size_t plen = strcspn(q, ",");
                        _cleanup_free_ char *pat = strndup(q, plen);

                        if (!pat) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        if (plen == 0 || plen > CONFIG_ITEM_MAX || !pattern_valid(pat)) {
                                r = config_error(s, &l,
                                                 "'%s': invalid pattern '%s' in '%s' (a non-empty "
                                                 "glob: * ? [...] [!...] \\, at most %u bytes)",
                                                 item->key, pat, term, CONFIG_ITEM_MAX);
                                goto fail;
                        }
                        if (strv_length(pats) >= CLAIM_PATTERNS_MAX) {
                                r = config_error(s, &l, "'%s': too many patterns in '%s' (at most %u)",
                                                 item->key, term, CLAIM_PATTERNS_MAX);
                                goto fail;
                        }
                        r = strv_consume(&pats, TAKE_PTR(pat));
                        if (r < 0)
                                goto fail;
                        q += plen;
                        if (*q == '\0')
                                break;
                }
                nt = reallocarray(terms, n + 1, sizeof(ClaimTerm));
                if (!nt) {
                        r = -ENOMEM;
                        goto fail;
                }
                terms = nt;
                terms[n].member = strndup(term, (size_t) (eq - term));
                if (!terms[n].member) {
                        r = -ENOMEM;
                        goto fail;
                }
                terms[n++].patterns = TAKE_PTR(pats);
        }
        if (n == 0) {
                r = config_error(s, &l, "'%s' must not be empty", item->key);
                goto fail;
        }
        claim_terms_free(d->claims, d->n_claims);
        d->claims = terms;
        d->n_claims = n;
        return 0;

fail:
        claim_terms_free(terms, n);
        return r;
}

static int parse_detection_def_level(ParseState *s, const ConfigItem *item, const char *value,
                                     void *data) {
        RiskLevel lv = risk_level_from_string(value);
        Loc l = current_loc(s);

        if (lv < 0 || strcasecmp(value, "secure") == 0)
                return config_error(s, &l, "Invalid '%s': '%s' (expected none, low, medium or high)",
                                    item->key, value);
        *(RiskLevel *) data = lv;
        return 0;
}

static int parse_detection_def_key(ParseState *s, const char *key, const char *value) {
        DetectionDefMeta *m = &s->def_meta[s->def];
        Loc l = current_loc(s);
        size_t idx;
        int r;

        for (idx = 0; idx < N_DETECTION_ITEMS; idx++)
                if (streq(detection_items[idx].key, key))
                        break;
        if (idx == N_DETECTION_ITEMS)
                return config_error(s, &l, "Unknown key '%s' in [detection %s]", key,
                                    s->config->detection_defs[s->def].name);
        if (m->keys[idx].file == s->file)
                return config_error(s, &l, "Duplicate key '%s' (first at line %u)", key,
                                    m->keys[idx].line);
        r = detection_items[idx].parse(s, &detection_items[idx], value,
                                       (uint8_t *) &s->config->detection_defs[s->def] +
                                               detection_items[idx].offset);
        if (r == -EINVAL)
                m->bad[idx] = true;
        if (r < 0)
                return r;
        m->keys[idx] = l;
        m->bad[idx] = false;
        return 0;
}

static bool detection_name_is_defined(const Config *c, const char *name) {
        return config_detection_def(c, name) != NULL;
}

/* Once every file is read: each section has its keys, each name a rule gives is built in or
 * defined, and device_scope = this-host has a device_id to compare with. */
static void validate_detection_defs(ParseState *s) {
        Config *c = s->config;
        ssize_t di = item_index(SECTION_RULE, "detections");
        ssize_t si = item_index(SECTION_SUBJECTS, "device_scope");

        for (size_t i = 0; i < c->n_detection_defs; i++)
                for (size_t k = 0; k < N_DETECTION_ITEMS; k++)
                        if (!s->def_meta[i].keys[k].file && !s->def_meta[i].bad[k])
                                (void) config_error(s, &s->def_meta[i].section,
                                                    "Detection '%s' has no '%s'",
                                                    c->detection_defs[i].name, detection_items[k].key);

        for (size_t i = 0; di >= 0 && i < c->n_rules; i++)
                for (char **d = c->rules[i].detections; d && *d; d++)
                        if (!streq(*d, "*") && !config_detection_is_known(*d) &&
                            !detection_name_is_defined(c, *d))
                                (void) config_error(s, &s->rule_meta[i].keys[di],
                                                    "'detections': unknown detection '%s' (neither "
                                                    "built in nor a [detection NAME] section)", *d);

        if (si >= 0 && c->device_scope == DEVICE_SCOPE_THIS_HOST && !c->device_id &&
            !s->bad[si] && !s->bad[item_index(SECTION_SUBJECTS, "device_id")]) {
                Loc l = key_loc(s, (size_t) si);
                (void) config_error(s, &l, "device_scope = this-host needs 'device_id': this host's "
                                    "device identifier");
        }
}

const DetectionDef *config_detection_def(const Config *c, const char *name) {
        if (!c || !name)
                return NULL;
        for (size_t i = 0; i < c->n_detection_defs; i++)
                if (streq(c->detection_defs[i].name, name))
                        return &c->detection_defs[i];
        return NULL;
}

/* "*" (any transmitter, stored as NULL) or names; whether they exist is checked once every
 * file is read. */
static int parse_transmitter_names(ParseState *s, const ConfigItem *item, const char *value, void *data) {
        _cleanup_strv_free_ char **l = NULL;
        Loc loc = current_loc(s);
        char ***field = data;
        int r;

        r = split_list(s, item, value, &l);
        if (r < 0)
                return r;
        if (!l[0])
                return config_error(s, &loc, "'%s' must not be empty (use '*')", item->key);
        if (strv_contains(l, "*")) {
                if (l[1])
                        return config_error(s, &loc, "'%s': '*' stands alone (every transmitter)",
                                            item->key);
                *field = strv_free(*field);
                return 0;
        }
        for (char **n = l; *n; n++)
                if (!config_transmitter_name_valid(*n))
                        return config_error(s, &loc, "'%s': invalid transmitter name '%s'", item->key,
                                            *n);
        strv_free(*field);
        *field = TAKE_PTR(l);
        return 0;
}

/* ---- sections and lines ------------------------------------------------------------------- */

static void transmitter_done(TransmitterConfig *t) {
        free(t->name);
        free(t->issuer);
        free(t->config_url);
        free(t->audience);
        free(t->jwks_uri);
        free(t->push_authorization_file);
        free(t->token_file);
        free(t->oauth2_token_url);
        free(t->oauth2_client_id);
        free(t->oauth2_client_secret_file);
        free(t->oauth2_scope);
        free(t->oauth2_private_key);
        free(t->oauth2_key_id);
        free(t->tls_client_cert);
        free(t->tls_client_key);
        free(t->proxy);
        free(t->ca_file);
        free(t->push_listen);
        free(t->push_url);
        free(t->push_cert);
        free(t->push_key);
        free(t->stream_id);
        strv_free(t->events);
        *t = (TransmitterConfig){};
}

static int transmitter_init(TransmitterConfig *t, const char *name) {
        *t = (TransmitterConfig){
                .auth = AUTH_BEARER,
                .delivery = DELIVERY_POLL,
                .poll_max_events = 64,
                .poll_wait_usec = 30 * USEC_PER_SEC,
                .verify_interval_usec = USEC_PER_HOUR,
        };
        t->name = strdup(name);
        t->oauth2_scope = strdup("ssf.read ssf.manage");
        if (!t->name || !t->oauth2_scope) {
                transmitter_done(t);
                return -ENOMEM;
        }
        return 0;
}

/* [transmitter] (unnamed: "default") or [transmitter NAME]. A later file's section of the same
 * name sets keys of the same transmitter (as the unnamed one always did); a name given twice in
 * one file, or "default" spelled both ways, is an error. */
static int start_transmitter(ParseState *s, const char *name, bool unnamed) {
        Config *c = s->config;
        Loc l = current_loc(s);
        const NamedSections a = {
                .noun = "transmitter",
                .charset = "a-z, 0-9, '-'",
                .plural = "transmitters",
                .name_max = TRANSMITTER_NAME_MAX,
                .max = TRANSMITTERS_MAX,
                .valid = config_transmitter_name_valid,
                .items = (void **) &c->transmitters,
                .n_items = &c->n_transmitters,
                .item_size = sizeof(TransmitterConfig),
                .name_offset = offsetof(TransmitterConfig, name),
                .meta = (void **) &s->transmitter_meta,
                .meta_size = sizeof(TransmitterMeta),
        };
        TransmitterMeta *m;
        size_t i;
        int r;

        r = named_section_lookup(s, &a, name, &l, &i);
        if (r < 0)
                return r;
        if (r == 0) {
                r = transmitter_init(&c->transmitters[i], name);
                if (r < 0)
                        return r;
                s->transmitter_meta[i] = (TransmitterMeta){ .section = l };
                c->n_transmitters++;
        }
        m = &s->transmitter_meta[i];
        s->section = SECTION_TRANSMITTER;
        s->transmitter = i;
        if ((unnamed && m->named) || (!unnamed && m->unnamed)) {
                r = config_error(s, &l, "[transmitter] is the transmitter named 'default': use either "
                                 "[transmitter] or [transmitter default] (first at %s:%u)",
                                 m->section.file, m->section.line);
                s->section = SECTION_BAD;
                return r;
        }
        if (!unnamed && m->named && m->last.file == s->file) {
                r = named_section_twice(s, &l, "Transmitter", name, m->last.line);
                s->section = SECTION_BAD;
                return r;
        }
        if (unnamed)
                m->unnamed = true;
        else
                m->named = true;
        m->last = l;
        return 0;
}

static void rule_done(Rule *r) {
        free(r->name);
        strv_free(r->groups);
        strv_free(r->detections);
        strv_free(r->transmitters);
        free(r->workflow);
        free(r->file);
        *r = (Rule){};
}

static int rule_init(Rule *r, const char *name, const Loc *loc) {
        *r = (Rule){
                .levels = ALL_LEVELS,
                .action = ACTION_NONE,
                .sessions = SESSIONS_ALL,
                .line = loc->line,
        };
        r->name = strdup(name);
        r->file = strdup(loc->file);
        if (!r->name || !r->file) {
                rule_done(r);
                return -ENOMEM;
        }
        return 0;
}

static bool rule_name_valid(const char *n) {
        size_t len = strlen(n);

        if (len == 0 || len > RULE_NAME_MAX)
                return false;
        for (const char *c = n; *c; c++)
                if (!isalnum((unsigned char) *c) && !strchr("._-:@", *c))
                        return false;
        return true;
}

static int rule_init_item(void *r, const char *name, const Loc *l) {
        return rule_init(r, name, l);
}

static void rule_done_item(void *r) {
        rule_done(r);
}

static int start_rule(ParseState *s, const char *name) {
        Config *c = s->config;
        const NamedSections a = {
                .noun = "rule",
                .charset = "letters, digits, '._-:@'",
                .plural = "rules",
                .name_max = RULE_NAME_MAX,
                .max = CONFIG_RULES_MAX,
                .valid = rule_name_valid,
                .items = (void **) &c->rules,
                .n_items = &c->n_rules,
                .item_size = sizeof(Rule),
                .name_offset = offsetof(Rule, name),
                .meta = (void **) &s->rule_meta,
                .meta_size = sizeof(RuleMeta),
                .What = "Rule",
                .kind = SECTION_RULE,
                .current = &s->rule,
                .init = rule_init_item,
                .done = rule_done_item,
        };

        return named_section_start(s, &a, name);
}

static int parse_section(ParseState *s, const char *name) {
        Loc l = current_loc(s);
        const char *rn;

        rn = startswith(name, "transmitter");
        if (rn && (*rn == ' ' || *rn == '\t' || *rn == '\0')) {
                rn += strspn(rn, " \t");
                if (!s->sections[SECTION_TRANSMITTER].file)
                        s->sections[SECTION_TRANSMITTER] = l;
                return start_transmitter(s, *rn ? rn : "default", *rn == '\0');
        }

        rn = startswith(name, "rule");
        if (rn && (*rn == ' ' || *rn == '\t' || *rn == '\0')) {
                rn += strspn(rn, " \t");
                if (*rn == '\0') {
                        s->section = SECTION_BAD;
                        return config_error(s, &l, "Rule section without a name: use [rule NAME]");
                }
                if (!s->sections[SECTION_RULE].file)
                        s->sections[SECTION_RULE] = l;
                return start_rule(s, rn);
        }

        rn = startswith(name, "detection");
        if (rn && (*rn == ' ' || *rn == '\t' || *rn == '\0'))
                return start_detection_def(s, rn + strspn(rn, " \t"));

        for (int k = 0; k < _SECTION_MAX; k++)
                if (section_names[k] && k != SECTION_RULE && k != SECTION_DETECTION &&
                    k != SECTION_TRANSMITTER && streq(section_names[k], name)) {
                        s->section = (SectionKind) k;
                        if (!s->sections[k].file)
                                s->sections[k] = l;
                        return 0;
                }

        s->section = SECTION_BAD;
        return config_error(s, &l, "Unknown section [%s]", name);
}

static int parse_detection_level(ParseState *s, const char *key, const char *value) {
        Config *c = s->config;
        Loc l = current_loc(s);
        DetectionLevel *nd;
        Loc *nl;
        RiskLevel lv;
        size_t i;

        if (!config_detection_is_known(key))
                return config_error(s, &l, "Unknown detection '%s' in [detections]", key);
        lv = risk_level_from_string(value);
        if (lv < 0 || strcasecmp(value, "secure") == 0)
                return config_error(s, &l,
                                    "Invalid level for '%s': '%s' (expected none, low, medium or high)",
                                    key, value);

        for (i = 0; i < c->n_detection_levels; i++)
                if (streq(c->detection_levels[i].detection, key))
                        break;
        if (i < c->n_detection_levels) {
                if (s->detection_locs[i].file == s->file)
                        return config_error(s, &l, "Duplicate key '%s' in [detections] (first at line %u)",
                                            key, s->detection_locs[i].line);
                c->detection_levels[i].level = lv;
                s->detection_locs[i] = l;
                return 0;
        }

        nd = reallocarray(c->detection_levels, c->n_detection_levels + 1, sizeof(DetectionLevel));
        if (!nd)
                return -ENOMEM;
        c->detection_levels = nd;
        nl = reallocarray(s->detection_locs, c->n_detection_levels + 1, sizeof(Loc));
        if (!nl)
                return -ENOMEM;
        s->detection_locs = nl;
        nd[i].detection = strdup(key);
        if (!nd[i].detection)
                return -ENOMEM;
        nd[i].level = lv;
        nl[i] = l;
        c->n_detection_levels++;
        return 0;
}

static int parse_assignment(ParseState *s, const char *key, const char *value) {
        Loc l = current_loc(s);
        Loc *seen;
        bool *bad;
        ssize_t idx;
        void *base;
        int r;

        switch (s->section) {
        case SECTION_BAD:
                return 0; /* already reported */
        case SECTION_NONE:
                return config_error(s, &l, "'%s' is outside of any section", key);
        case SECTION_DETECTIONS:
                return parse_detection_level(s, key, value);
        case SECTION_DETECTION:
                return parse_detection_def_key(s, key, value);
        default:
                break;
        }

        idx = item_index(s->section, key);
        if (idx < 0)
                return config_error(s, &l, "Unknown key '%s' in [%s]", key, section_names[s->section]);

        if (s->section == SECTION_RULE) {
                seen = &s->rule_meta[s->rule].keys[idx];
                bad = &s->rule_meta[s->rule].bad[idx];
                base = &s->config->rules[s->rule];
        } else if (s->section == SECTION_TRANSMITTER) {
                seen = &s->transmitter_meta[s->transmitter].keys[idx];
                bad = &s->transmitter_meta[s->transmitter].bad[idx];
                base = &s->config->transmitters[s->transmitter];
        } else {
                seen = &s->keys[idx];
                bad = &s->bad[idx];
                base = s->config;
        }
        if (seen->file == s->file)
                return config_error(s, &l, "Duplicate key '%s' (first at line %u)", key, seen->line);

        r = config_items[idx].parse(s, &config_items[idx], value,
                                    (uint8_t *) base + config_items[idx].offset);
        if (r == -EINVAL)
                *bad = true;
        if (r < 0)
                return r;
        *seen = l;
        *bad = false;
        return 0;
}

static char *strip(char *p, char *end) {
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
        *end = '\0';
        return p;
}

/* Cuts an inline comment: ';' or '#' at the start or preceded by whitespace. Honours a
 * double-quoted value. Returns the value or NULL on a quoting error. */
static char *value_unquote(char *v, bool *ret_bad) {
        v += strspn(v, " \t");
        *ret_bad = false;

        if (*v == '"') {
                char *close = strchr(v + 1, '"');
                char *rest;
                if (!close) {
                        *ret_bad = true;
                        return NULL;
                }
                rest = close + 1;
                rest += strspn(rest, " \t");
                if (*rest != '\0' && *rest != ';' && *rest != '#') {
                        *ret_bad = true;
                        return NULL;
                }
                *close = '\0';
                return v + 1;
        }

        for (char *p = v; *p; p++)
                if ((*p == ';' || *p == '#') && (p == v || p[-1] == ' ' || p[-1] == '\t')) {
                        *p = '\0';
                        break;
                }
        return strip(v, v + strlen(v));
}

static bool key_valid(const char *k) {
        if (*k == '\0')
                return false;
        for (const char *c = k; *c; c++)
                if (!isalnum((unsigned char) *c) && *c != '_' && *c != '-')
                        return false;
        return true;
}

static int parse_line(ParseState *s, char *line) {
        Loc l = current_loc(s);
        char *p = line + strspn(line, " \t");
        char *eq, *key, *value;
        bool bad;

        if (*p == '\0' || *p == ';' || *p == '#')
                return 0;

        if (*p == '[') {
                char *close = strchr(p, ']'), *rest;
                if (!close) {
                        s->section = SECTION_BAD;
                        return config_error(s, &l, "Section header without ']'");
                }
                rest = close + 1 + strspn(close + 1, " \t");
                if (*rest != '\0' && *rest != ';' && *rest != '#') {
                        s->section = SECTION_BAD;
                        return config_error(s, &l, "Unexpected text after the section header");
                }
                p++;
                p += strspn(p, " \t");
                return parse_section(s, strip(p, close));
        }

        eq = strchr(p, '=');
        if (!eq)
                return config_error(s, &l, "Expected 'key = value' or '[section]'");
        key = strip(p, eq);
        if (!key_valid(key))
                return config_error(s, &l, "Invalid key name '%s'", key);
        value = value_unquote(eq + 1, &bad);
        if (bad)
                return config_error(s, &l, "Unbalanced quotes in the value of '%s'", key);
        return parse_assignment(s, key, value);
}

static int parse_text(ParseState *s, const char *name, char *text, size_t size) {
        char *p = text, *end = text + size;
        int r;

        r = strv_extend(&s->files, name);
        if (r < 0)
                return r;
        s->file = s->files[strv_length(s->files) - 1];
        s->line = 0;
        s->section = SECTION_NONE;

        if (size >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
                p += 3;

        while (p < end) {
                char *nl = memchr(p, '\n', (size_t) (end - p));
                char *le = nl ? nl : end;
                size_t len;
                Loc l;

                s->line++;
                l = current_loc(s);
                if (le > p && le[-1] == '\r')
                        le--;
                len = (size_t) (le - p);

                if (len > CONFIG_LINE_MAX)
                        (void) config_error(s, &l, "Line too long (at most %u bytes)", CONFIG_LINE_MAX);
                else if (memchr(p, '\0', len))
                        (void) config_error(s, &l, "Line contains a NUL byte");
                else {
                        bool ctl = false;
                        for (size_t i = 0; i < len; i++)
                                if (((unsigned char) p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
                                        ctl = true;
                        if (ctl)
                                (void) config_error(s, &l, "Line contains control characters");
                        else {
                                *le = '\0';
                                r = parse_line(s, p);
                                if (r == -ENOMEM)
                                        return r;
                        }
                }
                if (!nl)
                        break;
                p = nl + 1;
        }
        return 0;
}

/* ---- files -------------------------------------------------------------------------------- */

static void report_open_error(ParseState *s, const Loc *l, const char *what, const char *path, int r) {
        if (r == -ELOOP)
                (void) config_error(s, l, "%s '%s' is a symbolic link, refusing", what, path);
        else if (r == -ENOENT)
                (void) config_error(s, l, "%s '%s' does not exist", what, path);
        else
                (void) config_error(s, l, "Cannot open %s '%s': %s", what, path, strerror(-r));
}

/* Checks an open file or directory: type, root-owned, not group/world-writable, and for
 * secrets not group/world-readable. Reports and returns -EINVAL. */
static int check_stat(ParseState *s, const Loc *l, const char *what, const char *path,
                      const struct stat *st, bool dir, bool secret, bool exec) {
        if (dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
                return config_error(s, l, "%s '%s' is not a %s", what, path,
                                    dir ? "directory" : "regular file");
        if (!s->check_perms)
                return 0;
        if (st->st_uid != 0)
                return config_error(s, l, "%s '%s' is not owned by root (uid %u), refusing", what, path,
                                    (unsigned) st->st_uid);
        if (st->st_mode & (S_IWGRP | S_IWOTH))
                return config_error(s, l, "%s '%s' is writable by group or others (mode %04o), refusing",
                                    what, path, (unsigned) (st->st_mode & 07777));
        if (secret && (st->st_mode & (S_IRGRP | S_IROTH)))
                return config_error(s, l, "%s '%s' is readable by group or others (mode %04o), refusing",
                                    what, path, (unsigned) (st->st_mode & 07777));
        if (exec && !(st->st_mode & S_IXUSR))
                return config_error(s, l, "%s '%s' is not executable", what, path);
        return 0;
}

static int open_flags(const ParseState *s) {
        return O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (s->check_perms ? O_NOFOLLOW : 0);
}

static int load_file_at(ParseState *s, int dirfd, const char *name, const char *display) {
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int fd = -EBADF;
        Loc l = { display, 0 };
        struct stat st;
        size_t size = 0;
        int r;

        fd = openat(dirfd, name, open_flags(s));
        if (fd < 0) {
                r = -errno;
                if (r == -ENOENT && dirfd == AT_FDCWD) {
                        log_error("%s: configuration file does not exist", display);
                        s->n_errors++;
                        return -ENOENT;
                }
                report_open_error(s, &l, "Configuration file", display, r);
                return 0;
        }
        if (fstat(fd, &st) < 0) {
                (void) config_error(s, &l, "Cannot stat: %s", strerror(errno));
                return 0;
        }
        if (check_stat(s, &l, "Configuration file", display, &st, false, false, false) < 0)
                return 0;

        r = read_full_fd(fd, CONFIG_FILE_MAX, &text, &size);
        if (r == -EFBIG) {
                (void) config_error(s, &l, "File too large (at most %u bytes)", CONFIG_FILE_MAX);
                return 0;
        }
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                (void) config_error(s, &l, "Cannot read: %s", strerror(-r));
                return 0;
        }
        return parse_text(s, display, text, size);
}

static int dropin_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int load_dropins(ParseState *s, const char *path) {
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int dfd = -EBADF;
        DIR *d;
        struct stat st;
        struct dirent *de;
        size_t n = 0;
        Loc l;
        int r;

        if (asprintf(&dir, "%s.d", path) < 0)
                return -ENOMEM;
        l = (Loc){ dir, 0 };

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (s->check_perms ? O_NOFOLLOW : 0));
        if (dfd < 0) {
                if (errno == ENOENT)
                        return 0;
                report_open_error(s, &l, "Drop-in directory", dir, -errno);
                return 0;
        }
        if (fstat(dfd, &st) < 0) {
                (void) config_error(s, &l, "Cannot stat: %s", strerror(errno));
                return 0;
        }
        if (check_stat(s, &l, "Drop-in directory", dir, &st, true, false, false) < 0)
                return 0;

        {
                int dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
                if (dup_fd < 0)
                        return -errno;
                d = fdopendir(dup_fd);
                if (!d) {
                        r = -errno;
                        (void) close(dup_fd);
                        return r;
                }
        }

        names = calloc(1, sizeof(char *));
        if (!names) {
                closedir(d);
                return -ENOMEM;
        }
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                if (de->d_name[0] == '.' || len < 6 || !streq(de->d_name + len - 5, ".conf"))
                        continue;
                if (++n > CONFIG_DROPINS_MAX) {
                        (void) config_error(s, &l, "Too many drop-ins (at most %u)", CONFIG_DROPINS_MAX);
                        break;
                }
                r = strv_extend(&names, de->d_name);
                if (r < 0) {
                        closedir(d);
                        return r;
                }
        }
        closedir(d);

        qsort(names, strv_length(names), sizeof(char *), dropin_cmp);
        for (char **nm = names; *nm; nm++) {
                _cleanup_free_ char *display = NULL;

                if (asprintf(&display, "%s/%s", dir, *nm) < 0)
                        return -ENOMEM;
                r = load_file_at(s, dfd, *nm, display);
                if (r == -ENOMEM)
                        return r;
        }
        return 0;
}

/* ---- validation --------------------------------------------------------------------------- */

/* Every directory above path must be searchable by others, or an unprivileged process cannot
 * reach the file. */
static void check_dirs_searchable(ParseState *s, const Loc *l, const char *what, const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        struct stat st;
        char *slash;

        if (!dir)
                return;
        while ((slash = strrchr(dir, '/'))) {
                if (slash == dir)
                        slash[1] = 0; /* "/" itself */
                else
                        *slash = 0;
                if (stat(dir, &st) >= 0 && !(st.st_mode & S_IXOTH)) {
                        (void) config_error(s, l, "%s '%s': directory '%s' is not searchable by "
                                            "others (mode %04o): the network worker could not "
                                            "read it", what, path, dir,
                                            (unsigned) (st.st_mode & 07777));
                        return;
                }
                if (streq(dir, "/"))
                        return;
        }
}

/* secret: not readable by others either; public: readable by others (the unprivileged network
 * worker reads it while running). */
static void check_file_perms_at(ParseState *s, Loc l, bool bad, const char *key, const char *path,
                                bool secret, bool public) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (!path || !s->check_perms || bad)
                return;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
        if (fd < 0) {
                if (errno == ENOENT)
                        (void) config_error(s, &l, "%s '%s' does not exist", key, path);
                else if (errno == ELOOP)
                        (void) config_error(s, &l, "%s '%s' is a symbolic link, refusing",
                                            key, path);
                else
                        (void) config_error(s, &l, "Cannot open %s '%s': %s", key, path,
                                            strerror(errno));
                return;
        }
        if (fstat(fd, &st) < 0) {
                (void) config_error(s, &l, "Cannot stat '%s': %s", path, strerror(errno));
                return;
        }
        if (check_stat(s, &l, key, path, &st, false, secret, false) < 0 ||
            !public)
                return;
        if (!(st.st_mode & S_IROTH)) {
                (void) config_error(s, &l, "%s '%s' must be readable by others (mode 0644): the "
                                    "network worker reads it without privileges",
                                    key, path);
                return;
        }
        check_dirs_searchable(s, &l, key, path);
}

static size_t idx_of(SectionKind section, const char *key) {
        ssize_t i = item_index(section, key);

        return i < 0 ? 0 : (size_t) i;
}

#define IDX(section, key) idx_of(section, key)

static void check_file_perms(ParseState *s, size_t idx, const char *path, bool secret, bool public) {
        check_file_perms_at(s, key_loc(s, idx), s->bad[idx], config_items[idx].key, path, secret,
                            public);
}

/* Where transmitter ti's key was set, else its section header. */
static Loc tkey_loc(const ParseState *s, size_t ti, const char *key) {
        const TransmitterMeta *m = &s->transmitter_meta[ti];
        size_t idx = IDX(SECTION_TRANSMITTER, key);

        return m->keys[idx].file ? m->keys[idx] : m->section;
}

static bool tkey_bad(const ParseState *s, size_t ti, const char *key) {
        return s->transmitter_meta[ti].bad[IDX(SECTION_TRANSMITTER, key)];
}

static void tcheck_file_perms(ParseState *s, size_t ti, const char *key, const char *path, bool secret) {
        check_file_perms_at(s, tkey_loc(s, ti, key), tkey_bad(s, ti, key), key, path, secret, false);
}

static void check_hooks(ParseState *s) {
        Config *c = s->config;
        _cleanup_close_ int dfd = -EBADF;
        size_t dir_idx = IDX(SECTION_HOOKS, "dir");
        Loc dl = key_loc(s, dir_idx);
        bool any_workflow = false;
        struct stat st;

        for (size_t i = 0; i < c->n_rules; i++)
                if (c->rules[i].action == ACTION_WORKFLOW)
                        any_workflow = true;

        if (s->check_perms) {
                struct passwd pw, *res = NULL;
                char buf[4096];
                size_t ui = IDX(SECTION_HOOKS, "user");
                Loc ul = key_loc(s, ui);
                int r = getpwnam_r(c->hooks_user, &pw, buf, sizeof(buf), &res);
                if (r != 0 || !res)
                        (void) config_error(s, &ul, "Hook user '%s' does not exist", c->hooks_user);
        }

        if (!s->check_perms)
                return;

        dfd = open(c->hooks_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dfd < 0) {
                if (errno == ENOENT) {
                        if (any_workflow)
                                config_warning(s, &dl,
                                               "Hooks directory '%s' does not exist; workflow rules will fail",
                                               c->hooks_dir);
                        return;
                }
                report_open_error(s, &dl, "Hooks directory", c->hooks_dir, -errno);
                return;
        }
        if (fstat(dfd, &st) < 0 ||
            check_stat(s, &dl, "Hooks directory", c->hooks_dir, &st, true, false, false) < 0)
                return;

        for (size_t i = 0; i < c->n_rules; i++) {
                const Rule *rule = &c->rules[i];
                size_t wi = IDX(SECTION_RULE, "workflow");
                Loc wl = s->rule_meta[i].keys[wi].file ? s->rule_meta[i].keys[wi] : s->rule_meta[i].section;
                _cleanup_close_ int fd = -EBADF;
                _cleanup_free_ char *display = NULL;

                if (rule->action != ACTION_WORKFLOW || !rule->workflow)
                        continue;
                if (asprintf(&display, "%s/%s", c->hooks_dir, rule->workflow) < 0)
                        return;
                fd = openat(dfd, rule->workflow, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
                /* A missing or unsafe hook fails its rule when it matches (hooks.c checks again
                 * before running it, and --check-config refuses it); it does not stop the
                 * daemon from enforcing everything else. */
                if (fd < 0) {
                        if (errno == ENOENT)
                                config_warning(s, &wl,
                                               "Workflow hook '%s' does not exist; rule '%s' will fail "
                                               "when it matches",
                                               display, rule->name);
                        else {
                                s->warn_only = true;
                                report_open_error(s, &wl, "Workflow hook", display, -errno);
                                s->warn_only = false;
                        }
                        continue;
                }
                if (fstat(fd, &st) < 0)
                        continue;
                s->warn_only = true;
                (void) check_stat(s, &wl, "Workflow hook", display, &st, false, false, true);
                s->warn_only = false;
        }
}

static bool key_bad(const ParseState *s, SectionKind section, const char *key) {
        return s->bad[IDX(section, key)];
}

/* "needs" checks of transmitter ti: report a missing key unless the key or the one requiring
 * it had a bad value (already reported). */
static void require(ParseState *s, size_t ti, const char *need_key, const char *have,
                    const char *because_key, const char *because) {
        Loc l;

        if (have || tkey_bad(s, ti, need_key) || tkey_bad(s, ti, because_key))
                return;
        l = tkey_loc(s, ti, because_key);
        (void) config_error(s, &l, "%s needs '%s'", because, need_key);
}

/* Whether transmitter ti's key was set in a file. */
static bool tkey_set(const ParseState *s, size_t ti, const char *key) {
        return s->transmitter_meta[ti].keys[IDX(SECTION_TRANSMITTER, key)].file != NULL;
}

/* auth = oauth2: what each oauth2_client_auth method of transmitter ti needs. */
static void validate_client_auth(ParseState *s, size_t ti) {
        TransmitterConfig *c = &s->config->transmitters[ti];
        /* Where the method was chosen, else where auth = oauth2 was. */
        Loc ml = tkey_loc(s, ti, tkey_set(s, ti, "oauth2_client_auth") ? "oauth2_client_auth" : "auth");

        if (tkey_bad(s, ti, "oauth2_client_auth") || tkey_bad(s, ti, "auth"))
                return;
        if (c->oauth2_client_auth == OAUTH2_CLIENT_AUTH_PRIVATE_KEY_JWT) {
                if (!c->oauth2_private_key && !tkey_bad(s, ti, "oauth2_private_key"))
                        (void) config_error(s, &ml, "oauth2_client_auth = private_key_jwt needs "
                                            "'oauth2_private_key'");
                tcheck_file_perms(s, ti, "oauth2_private_key", c->oauth2_private_key, true);
                if (c->oauth2_client_secret_file) {
                        Loc l = tkey_loc(s, ti, "oauth2_client_secret_file");
                        config_warning(s, &l, "oauth2_client_secret_file is not used with "
                                       "oauth2_client_auth = private_key_jwt");
                }
                return;
        }
        if (!c->oauth2_client_secret_file && !tkey_bad(s, ti, "oauth2_client_secret_file"))
                (void) config_error(s, &ml, "auth = oauth2 with oauth2_client_auth = %s needs "
                                    "'oauth2_client_secret_file'",
                                    oauth2_client_auth_to_string(c->oauth2_client_auth));
        tcheck_file_perms(s, ti, "oauth2_client_secret_file", c->oauth2_client_secret_file, true);
        for (size_t i = 0; i < 2; i++) {
                const char *key = i == 0 ? "oauth2_private_key" : "oauth2_key_id";
                Loc kl = tkey_loc(s, ti, key);

                if (tkey_set(s, ti, key) && !tkey_bad(s, ti, key) &&
                    (i == 0 ? c->oauth2_private_key : c->oauth2_key_id))
                        (void) config_error(s, &kl, "'%s' is only used with oauth2_client_auth = "
                                            "private_key_jwt", key);
        }
}

/* tls_client_cert and tls_client_key come together (any auth). */
static void validate_tls_client(ParseState *s, size_t ti) {
        TransmitterConfig *c = &s->config->transmitters[ti];

        if (tkey_bad(s, ti, "tls_client_cert") || tkey_bad(s, ti, "tls_client_key"))
                return;
        if (c->tls_client_cert && !c->tls_client_key) {
                Loc l = tkey_loc(s, ti, "tls_client_cert");
                (void) config_error(s, &l, "tls_client_cert needs 'tls_client_key'");
        } else if (c->tls_client_key && !c->tls_client_cert) {
                Loc l = tkey_loc(s, ti, "tls_client_key");
                (void) config_error(s, &l, "tls_client_key needs 'tls_client_cert'");
        }
        tcheck_file_perms(s, ti, "tls_client_cert", c->tls_client_cert, false);
        tcheck_file_perms(s, ti, "tls_client_key", c->tls_client_key, true);
}

/* warn = DURATION: only a logout warns (a lock ends nothing, a workflow has no terminal). */
static void check_rule_warn(ParseState *s, const Rule *r, const RuleMeta *m) {
        const Loc *wl = &m->keys[IDX(SECTION_RULE, "warn")];

        if (wl->file && r->action != ACTION_LOGOUT)
                (void) config_error(s, wl, "Rule '%s': 'warn' is only valid with action = logout",
                                    r->name);
}

/* The path of an https URL ("/" when it has none), without query or fragment, into buf. */
static const char *url_path(const char *url, char *buf, size_t size) {
        const char *p = startswith(url, "https://");
        size_t n;

        p = p ? p + strcspn(p, "/?#") : url;
        n = strcspn(p, "?#");
        if (n == 0 || *p != '/')
                (void) snprintf(buf, size, "/");
        else
                (void) snprintf(buf, size, "%.*s", (int) MIN(n, size - 1), p);
        return buf;
}

/* The one push listener: [push], else the first push transmitter's keys; other push
 * transmitters may repeat them but not differ. Each push transmitter gets the listener's
 * values (the network worker reads them there). */
static void validate_push(ParseState *s) {
        static const char *const keys[] = { "push_listen", "push_cert", "push_key" };
        Config *c = s->config;
        char **global[] = { &c->push_listen, &c->push_cert, &c->push_key };
        ssize_t first = -1;

        for (size_t i = 0; i < c->n_transmitters; i++) {
                TransmitterConfig *t = &c->transmitters[i];
                char **own[] = { &t->push_listen, &t->push_cert, &t->push_key };

                for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
                        Loc l = tkey_loc(s, i, keys[k]);

                        if (!*own[k] || t->delivery != DELIVERY_PUSH)
                                continue;
                        if (!*global[k]) {
                                if (first >= 0 && (size_t) first != i)
                                        (void) config_error(s, &l, "[transmitter %s] '%s': the one push "
                                                            "listener's keys go in [push] or the first "
                                                            "push transmitter ([transmitter %s])",
                                                            t->name, keys[k], c->transmitters[first].name);
                                else if (set_string(global[k], *own[k]) < 0)
                                        s->n_errors++;
                                continue;
                        }
                        if (!streq(*global[k], *own[k]))
                                (void) config_error(s, &l, "[transmitter %s] '%s' differs from the "
                                                    "one push listener's ('%s'): give it once, in "
                                                    "[push] or the first push transmitter",
                                                    t->name, keys[k], *global[k]);
                }
                /* Any number of push transmitters: they share the one listener, which routes
                 * each request by its path (each push_url has its own, below). */
                if (t->delivery == DELIVERY_PUSH && first < 0)
                        first = (ssize_t) i;
        }
        if (first < 0)
                return;

        for (size_t i = 0; i < c->n_transmitters; i++) {
                TransmitterConfig *t = &c->transmitters[i];
                char **own[] = { &t->push_listen, &t->push_cert, &t->push_key };
                char pi[512], pj[512];

                if (t->delivery != DELIVERY_PUSH)
                        continue;
                for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
                        if (!*global[k]) {
                                if (!tkey_bad(s, i, keys[k]) && !key_bad(s, SECTION_PUSH, keys[k]) &&
                                    !tkey_bad(s, i, "delivery")) {
                                        Loc l = tkey_loc(s, i, "delivery");
                                        (void) config_error(s, &l, "delivery = push needs '%s'", keys[k]);
                                }
                                continue;
                        }
                        if (!*own[k] && set_string(own[k], *global[k]) < 0)
                                s->n_errors++;
                }
                require(s, i, "push_url", t->push_url, "delivery", "delivery = push");
                for (size_t j = 0; t->push_url && j < i; j++) {
                        const TransmitterConfig *o = &c->transmitters[j];

                        if (o->delivery != DELIVERY_PUSH || !o->push_url ||
                            !streq(url_path(t->push_url, pi, sizeof(pi)),
                                   url_path(o->push_url, pj, sizeof(pj))))
                                continue;
                        Loc l = tkey_loc(s, i, "push_url");
                        (void) config_error(s, &l, "[transmitter %s] push_url has the path '%s' of "
                                            "[transmitter %s]: each push transmitter needs its own path",
                                            t->name, pi, o->name);
                }
        }
        if (c->push_cert) {
                size_t ci = IDX(SECTION_PUSH, "push_cert");
                Loc l = s->keys[ci].file ? s->keys[ci] : tkey_loc(s, (size_t) first, "push_cert");
                check_file_perms_at(s, l, s->bad[ci], "push_cert", c->push_cert, false, false);
        }
        if (c->push_key) {
                size_t ki = IDX(SECTION_PUSH, "push_key");
                Loc l = s->keys[ki].file ? s->keys[ki] : tkey_loc(s, (size_t) first, "push_key");
                check_file_perms_at(s, l, s->bad[ki], "push_key", c->push_key, true, false);
        }
}

/* Whether the running configuration (at a reload) already had transmitter c's name take its
 * issuer from the metadata of the same config_url, so the warning about it was given. */
static bool issuer_from_metadata_before(const ParseState *s, const TransmitterConfig *c) {
        const TransmitterConfig *o = s->running ? config_transmitter(s->running, c->name) : NULL;
        _cleanup_free_ char *issuer = NULL;

        return o && !o->issuer && streq_ptr(o->config_url, c->config_url) &&
               config_url_issuer(o->config_url, &issuer) == -EADDRNOTAVAIL;
}

static void validate_transmitter(ParseState *s, size_t ti) {
        TransmitterConfig *c = &s->config->transmitters[ti];
        Loc tl = s->transmitter_meta[ti].section;

        if (!c->issuer && !c->config_url && !tkey_bad(s, ti, "issuer") && !tkey_bad(s, ti, "config_url")) {
                if (streq(c->name, "default") && !s->transmitter_meta[ti].named)
                        (void) config_error(s, &tl, "[transmitter] needs 'issuer' or 'config_url'");
                else
                        (void) config_error(s, &tl, "[transmitter %s] needs 'issuer' or 'config_url'",
                                            c->name);
        }
        if (!c->issuer && c->config_url && !tkey_bad(s, ti, "issuer") && !tkey_bad(s, ti, "config_url")) {
                _cleanup_free_ char *issuer = NULL;
                Loc ul = tkey_loc(s, ti, "config_url");

                /* A vendor's own well-known URL: the issuer can only come from the metadata.
                 * Said once: not again at a reload that keeps it (see config_reload()). */
                if (config_url_issuer(c->config_url, &issuer) == -EADDRNOTAVAIL &&
                    !issuer_from_metadata_before(s, c))
                        config_warning(s, &ul, "'config_url' %s is not the SSF well-known URL of an "
                                       "issuer (https://HOST/.well-known/ssf-configuration[/PATH]): "
                                       "the issuer will be taken from the transmitter's metadata; "
                                       "setting 'issuer' to the transmitter's issuer is recommended",
                                       c->config_url);
        }

        if (c->stream == STREAM_NONE) {
                /* No stream API: nothing to discover or learn from; auth is not used. */
                require(s, ti, "issuer", c->issuer, "stream", "stream = none");
                require(s, ti, "jwks_uri", c->jwks_uri, "stream", "stream = none");
                require(s, ti, "audience", c->audience, "stream", "stream = none");
                require(s, ti, "push_authorization_file", c->push_authorization_file, "stream",
                        "stream = none");
                if (c->delivery != DELIVERY_PUSH && !tkey_bad(s, ti, "delivery") &&
                    !tkey_bad(s, ti, "stream")) {
                        Loc l = tkey_loc(s, ti, "stream");
                        (void) config_error(s, &l, "stream = none needs 'delivery = push'");
                }
                tcheck_file_perms(s, ti, "push_authorization_file", c->push_authorization_file, true);
                tcheck_file_perms(s, ti, "ca_file", c->ca_file, false);
                return;
        }
        if (c->jwks_uri || c->push_authorization_file) {
                Loc l = tkey_loc(s, ti, c->jwks_uri ? "jwks_uri" : "push_authorization_file");
                (void) config_error(s, &l, "'%s' is only valid with stream = none",
                                    c->jwks_uri ? "jwks_uri" : "push_authorization_file");
        }

        validate_tls_client(s, ti);
        switch (c->auth) {
        case AUTH_BEARER:
                require(s, ti, "token_file", c->token_file, "auth", "auth = bearer");
                if (!tkey_bad(s, ti, "auth"))
                        tcheck_file_perms(s, ti, "token_file", c->token_file, true);
                break;
        case AUTH_OAUTH2:
                require(s, ti, "oauth2_token_url", c->oauth2_token_url, "auth", "auth = oauth2");
                require(s, ti, "oauth2_client_id", c->oauth2_client_id, "auth", "auth = oauth2");
                validate_client_auth(s, ti);
                break;
        case AUTH_NONE:
                break;
        }
        tcheck_file_perms(s, ti, "ca_file", c->ca_file, false);
}

static void validate(ParseState *s) {
        Config *c = s->config;

        if (c->n_transmitters == 0)
                (void) config_error(s, &s->main_file, "[transmitter] needs 'issuer' or 'config_url'");
        for (size_t i = 0; i < c->n_transmitters; i++)
                validate_transmitter(s, i);
        validate_push(s);

        if (c->map == SUBJECT_MAP_FILE && !c->map_file && !key_bad(s, SECTION_SUBJECTS, "map_file")) {
                Loc ml = key_loc(s, IDX(SECTION_SUBJECTS, "map"));
                (void) config_error(s, &ml, "map = file needs 'map_file'");
        }
        /* The root daemon maps subjects (the worker no longer reads map_file): a root-only
         * file is fine. */
        check_file_perms(s, IDX(SECTION_SUBJECTS, "map_file"), c->map_file, false, false);
        if ((c->map == SUBJECT_MAP_EMAIL || c->map == SUBJECT_MAP_EMAIL_LOCALPART) && !c->domains &&
            !key_bad(s, SECTION_SUBJECTS, "domains") && !key_bad(s, SECTION_SUBJECTS, "map")) {
                Loc ml = s->sections[SECTION_SUBJECTS].file ? key_loc(s, IDX(SECTION_SUBJECTS, "map"))
                                                            : s->main_file;
                if (!ml.file)
                        ml = s->sections[SECTION_SUBJECTS].file ? s->sections[SECTION_SUBJECTS]
                                                                : s->main_file;
                (void) config_error(s, &ml, "[subjects] map = %s needs 'domains': the email domains "
                                    "whose addresses map to local users ('domains = *' for every "
                                    "domain), else an account such as root@attacker.example would "
                                    "map to root",
                                    c->map == SUBJECT_MAP_EMAIL ? "email" : "email-localpart");
        }
        if (c->min_uid > c->max_uid && !key_bad(s, SECTION_SUBJECTS, "min_uid") &&
            !key_bad(s, SECTION_SUBJECTS, "max_uid")) {
                Loc ul = key_loc(s, IDX(SECTION_SUBJECTS, "min_uid"));
                if (!ul.file)
                        ul = key_loc(s, IDX(SECTION_SUBJECTS, "max_uid"));
                (void) config_error(s, &ul, "min_uid (%u) is above max_uid (%u)", c->min_uid,
                                    c->max_uid);
        }

        for (size_t i = 0; i < c->n_rules; i++) {
                const Rule *r = &c->rules[i];
                const RuleMeta *m = &s->rule_meta[i];
                size_t ai = IDX(SECTION_RULE, "action"), wi = IDX(SECTION_RULE, "workflow");
                const Loc *wl = &m->keys[wi];
                const Loc *sl = &m->keys[IDX(SECTION_RULE, "sessions")];
                const Loc *rl = &m->keys[IDX(SECTION_RULE, "reset")];

                if (m->bad[ai])
                        continue;
                if (!m->keys[ai].file) {
                        (void) config_error(s, &m->section, "Rule '%s' has no 'action'", r->name);
                        continue;
                }
                if (r->action == ACTION_WORKFLOW && !r->workflow && !m->bad[wi])
                        (void) config_error(s, &m->keys[ai],
                                            "Rule '%s': action = workflow needs 'workflow = NAME'", r->name);
                if (r->action != ACTION_WORKFLOW && wl->file)
                        (void) config_error(s, wl,
                                            "Rule '%s': 'workflow' is only valid with action = workflow",
                                            r->name);
                if (r->action != ACTION_LOGOUT && r->action != ACTION_LOCK && sl->file)
                        (void) config_error(s, sl,
                                            "Rule '%s': 'sessions' is only valid with action = logout "
                                            "or lock", r->name);
                for (char **n = r->transmitters; n && *n; n++)
                        if (!config_transmitter(c, *n))
                                (void) config_error(s, &m->keys[IDX(SECTION_RULE, "transmitters")],
                                                    "Rule '%s': no transmitter is named '%s'",
                                                    r->name, *n);
                if (r->action == ACTION_NONE && rl->file && r->reset)
                        (void) config_error(s, rl,
                                            "Rule '%s': 'reset = yes' is not valid with action = none",
                                            r->name);
                check_rule_warn(s, r, m);
        }

        validate_detection_defs(s);
        check_hooks(s);
}

/* ---- entry points ------------------------------------------------------------------------- */

/* UID_MIN and UID_MAX from /etc/login.defs, where set (the defaults of min_uid and max_uid). */
static void login_defs_uid_range(unsigned *min, unsigned *max) {
        FILE *f = fopen("/etc/login.defs", "re");
        char line[256];

        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                char key[16];
                unsigned long v;
                char *end;

                if (sscanf(line, " %15s", key) != 1)
                        continue;
                if (!streq(key, "UID_MIN") && !streq(key, "UID_MAX"))
                        continue;
                errno = 0;
                v = strtoul(line + strspn(line, " \t") + strlen(key), &end, 10);
                if (errno != 0 || v >= UINT32_MAX || (*end && !isspace((unsigned char) *end)))
                        continue;
                if (streq(key, "UID_MIN"))
                        *min = (unsigned) v;
                else
                        *max = (unsigned) v;
        }
        fclose(f);
}

static int config_new_defaults(Config **ret) {
        _cleanup_(config_freep) Config *c = NULL;

        c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;
        *c = (Config){
                .map = SUBJECT_MAP_EMAIL_LOCALPART,
                .ttl_usec = 24 * USEC_PER_HOUR,
                .max_clock_skew_usec = 5 * USEC_PER_MINUTE,
                .hooks_timeout_usec = 30 * USEC_PER_SEC,
                .max_event_age_usec = 30 * USEC_PER_DAY,
                .history_retention_usec = 90 * USEC_PER_DAY,
                .history_max_rows = 1000000,
                .replay_cache_max = 1000000,
                .min_uid = 1000,
                .max_uid = 60000,
        };
        login_defs_uid_range(&c->min_uid, &c->max_uid);
        if (strv_extend(&c->protect, "root") < 0)
                return -ENOMEM;
        c->hooks_dir = strdup("/etc/ssf/hooks.d");
        c->hooks_user = strdup("root");
        c->state_dir = strdup("/var/lib/ssf-sessiond");
        c->socket_path = strdup("/run/ssf-sessiond/socket");
        c->snapshot_path = strdup("/var/lib/ssf-sessiond/pam-snapshot");
        if (!c->hooks_dir || !c->hooks_user || !c->state_dir || !c->socket_path ||
            !c->snapshot_path)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

static void parse_state_done(ParseState *s) {
        config_free(s->config);
        strv_free(s->files);
        free(s->rule_meta);
        free(s->transmitter_meta);
        free(s->detection_locs);
        free(s->def_meta);
}

static int finish(ParseState *s, int r, Config **ret) {
        if (r >= 0)
                validate(s);
        if (r >= 0 && s->n_errors > 0)
                r = -EINVAL;
        if (r >= 0)
                *ret = TAKE_PTR(s->config);
        parse_state_done(s);
        return r;
}

int config_load(const char *path, bool check_perms, Config **ret) {
        return config_reload(path, check_perms, NULL, ret);
}

int config_reload(const char *path, bool check_perms, const Config *running, Config **ret) {
        ParseState s = { .check_perms = check_perms, .running = running };
        int r;

        if (!path)
                path = SSF_DEFAULT_CONFIG;
        if (!ret)
                return -EINVAL;

        r = config_new_defaults(&s.config);
        if (r < 0)
                return r;
        r = strv_extend(&s.files, path);
        if (r < 0) {
                parse_state_done(&s);
                return r;
        }
        s.main_file = (Loc){ s.files[0], 0 };

        r = load_file_at(&s, AT_FDCWD, path, s.files[0]);
        if (r >= 0)
                r = load_dropins(&s, path);
        return finish(&s, r, ret);
}

int config_load_buffer(const char *name, const char *data, size_t size, Config **ret) {
        _cleanup_free_ char *text = NULL;
        ParseState s = {};
        int r;

        if (!name || (!data && size > 0) || !ret)
                return -EINVAL;
        if (size > CONFIG_FILE_MAX) {
                log_error("%s: File too large (at most %u bytes)", name, CONFIG_FILE_MAX);
                return -EINVAL;
        }
        text = malloc(size + 1);
        if (!text)
                return -ENOMEM;
        if (size > 0)
                memcpy(text, data, size);
        text[size] = '\0';

        r = config_new_defaults(&s.config);
        if (r < 0)
                return r;
        r = strv_extend(&s.files, name);
        if (r < 0) {
                parse_state_done(&s);
                return r;
        }
        s.main_file = (Loc){ s.files[0], 0 };
        r = parse_text(&s, name, text, size);
        return finish(&s, r, ret);
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_transmitters; i++)
                transmitter_done(&c->transmitters[i]);
        free(c->transmitters);
        free(c->push_listen);
        free(c->push_cert);
        free(c->push_key);
        strv_free(c->domains);
        strv_free(c->protect);
        free(c->map_file);
        free(c->device_id);
        for (size_t i = 0; i < c->n_detection_levels; i++)
                free(c->detection_levels[i].detection);
        free(c->detection_levels);
        for (size_t i = 0; i < c->n_detection_defs; i++)
                detection_def_done(&c->detection_defs[i]);
        free(c->detection_defs);
        for (size_t i = 0; i < c->n_rules; i++)
                rule_done(&c->rules[i]);
        free(c->rules);
        free(c->hooks_dir);
        free(c->hooks_user);
        free(c->state_dir);
        free(c->socket_path);
        free(c->snapshot_path);
        free(c);
        return NULL;
}

RiskLevel config_detection_level(const Config *c, const char *detection) {
        const EventType *e = event_type_by_name(detection);
        RiskLevel family = _RISK_INVALID;

        if (!e)
                return _RISK_INVALID;
        /* Its own line wins over its family's ("opt-out"), wherever they are. */
        if (c)
                for (size_t j = 0; j < c->n_detection_levels; j++) {
                        if (streq(c->detection_levels[j].detection, detection))
                                return c->detection_levels[j].level;
                        if (event_name_covers(c->detection_levels[j].detection, detection))
                                family = c->detection_levels[j].level;
                }
        return family != _RISK_INVALID ? family : e->level;
}

int config_url_issuer(const char *config_url, char **ret) {
        const char *host, *slash, *path;
        char *issuer;

        host = config_url ? startswith(config_url, "https://") : NULL;
        if (!host || strpbrk(config_url, "?#"))
                return -EADDRNOTAVAIL;
        slash = strchr(host, '/');
        if (!slash || slash == host)
                return -EADDRNOTAVAIL;
        path = startswith(slash, "/.well-known/ssf-configuration");
        /* Nothing more, or a path that a terminating '/' was not left on. */
        if (!path || (*path && (path[0] != '/' || path[strlen(path) - 1] == '/')))
                return -EADDRNOTAVAIL;
        if (asprintf(&issuer, "%.*s%s", (int) (slash - config_url), config_url, path) < 0)
                return -ENOMEM;
        *ret = issuer;
        return 0;
}

bool config_issuer_spelling(const char *issuer, const char *iss) {
        const char *rest = issuer && iss ? startswith(iss, issuer) : NULL;

        return rest && (rest[0] == 0 || streq(rest, "/"));
}

int config_transmitter_issuer(const TransmitterConfig *t, char **ret) {
        char *issuer;

        if (!t->issuer)
                return config_url_issuer(t->config_url, ret);
        issuer = strdup(t->issuer);
        if (!issuer)
                return -ENOMEM;
        *ret = issuer;
        return 0;
}

const TransmitterConfig *config_transmitter(const Config *c, const char *name) {
        if (!c || !name)
                return NULL;
        for (size_t i = 0; i < c->n_transmitters; i++)
                if (streq(c->transmitters[i].name, name))
                        return &c->transmitters[i];
        return NULL;
}

const TransmitterConfig *config_transmitter_main(const Config *c) {
        const TransmitterConfig *t = config_transmitter(c, "default");

        if (t)
                return t;
        return c && c->n_transmitters == 1 ? &c->transmitters[0] : NULL;
}

bool rule_matches_transmitter(const Rule *r, const char *transmitter) {
        return !r->transmitters || strv_contains(r->transmitters, strempty(transmitter));
}
