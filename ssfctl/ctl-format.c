/* SPDX-License-Identifier: MIT */
/*
 * The pure half of ssfctl (ctl-format.h): argument parsing, requests and the text printed
 * for replies. Runs in ssfctl.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <time.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl-format.h"
#include "level.h"
#include "macro.h"
#include "ssf-ipc.h"
#include "utf8.h"

static const char *const verb_names[_CTL_VERB_MAX] = {
        [CTL_VERB_STATUS] = "status",
        [CTL_VERB_RISK] = "risk",
        [CTL_VERB_HISTORY] = "history",
        [CTL_VERB_USERS] = "users",
        [CTL_VERB_RESET] = "reset",
        [CTL_VERB_SET_RISK] = "set-risk",
        [CTL_VERB_VERIFY] = "verify",
        [CTL_VERB_STREAM] = "stream",
        [CTL_VERB_METRICS] = "metrics",
        [CTL_VERB_STREAM_STATUS] = "stream-status",
        [CTL_VERB_STREAM_DELETE] = "stream-delete",
        [CTL_VERB_STREAM_CREATE] = "stream-create",
        [CTL_VERB_SUBJECTS_ADD] = "subjects-add",
        [CTL_VERB_SUBJECTS_REMOVE] = "subjects-remove",
        [CTL_VERB_TRANSMITTERS] = "transmitters",
};

bool ctl_verb_takes_transmitter(CtlVerb v) {
        switch (v) {
        case CTL_VERB_STREAM:
        case CTL_VERB_VERIFY:
        case CTL_VERB_STREAM_STATUS:
        case CTL_VERB_STREAM_DELETE:
        case CTL_VERB_STREAM_CREATE:
        case CTL_VERB_SUBJECTS_ADD:
        case CTL_VERB_SUBJECTS_REMOVE:
                return true;
        default:
                return false;
        }
}

/* A transmitter's name as [transmitter NAME] sections give it: a-z, 0-9, '-', 1..32. */
static bool transmitter_name_valid(const char *n) {
        size_t len = strlen(n);

        if (len == 0 || len > 32)
                return false;
        for (const char *c = n; *c; c++)
                if (!(*c >= 'a' && *c <= 'z') && !(*c >= '0' && *c <= '9') && *c != '-')
                        return false;
        return true;
}

const char *ctl_verb_to_string(CtlVerb v) {
        if (v < 0 || v >= _CTL_VERB_MAX)
                return NULL;
        return verb_names[v];
}

CtlVerb ctl_verb_from_string(const char *s) {
        if (!s)
                return _CTL_VERB_INVALID;
        for (int i = 0; i < _CTL_VERB_MAX; i++)
                if (!ctl_verb_is_admin((CtlVerb) i) && streq(s, verb_names[i]))
                        return (CtlVerb) i;
        return _CTL_VERB_INVALID;
}

const char *ctl_usage(void) {
        return "Usage: ssfctl [--json] [--socket PATH] COMMAND [ARGS]\n"
               "\n"
               "Commands:\n"
               "  status                      stream status and counters\n"
               "  risk USER                   a user's risk level and active detections\n"
               "  history [USER] [-n N] [--since TIME]\n"
               "                              risk history, newest first (default 20 entries)\n"
               "  users                       users with a risk level above none\n"
               "  reset USER                  clear a user's risk\n"
               "  set-risk USER LEVEL [--reason TEXT]\n"
               "                              set a user's risk (none, low, medium, high)\n"
               "  verify [--transmitter NAME] ask the transmitter for a verification event and wait for it\n"
               "  stream [--transmitter NAME] stream configuration and status\n"
                                             "  stream pause|resume|disable [--reason TEXT]\n"
               "                              ask the transmitter to change the stream's status\n"
               "  stream delete               delete the stream at the transmitter and forget it\n"
               "  stream create               discover the transmitter and create a stream now\n"
               "  subjects add|remove USER|SUBJECT-JSON\n"
               "                              add or remove a local user's subjects, or one subject\n"
               "                              ('{\"format\":...}'), on the stream\n"
               "                              (every stream verb takes --transmitter NAME)\n"
               "  transmitters                the transmitters, their streams and counters\n"
               "  metrics                     metrics in the Prometheus text format\n"
               "\n"
               "Options:\n"
               "  --json                      print the daemon's reply as JSON\n"
               "  --socket PATH               daemon socket (default " SSF_IPC_DEFAULT_SOCKET ")\n"
               "  -h, --help                  show this help\n"
               "  --version                   show the version\n";
}

/* ------------------------------------------------------------------------------------------ */
/* Argument parsing */

_printf_(2, 3) static int usage_error(char **ret_error, const char *fmt, ...) {
        va_list ap;

        if (ret_error) {
                char *s = NULL;
                int n;

                va_start(ap, fmt);
                n = vasprintf(&s, fmt, ap);
                va_end(ap);
                if (n < 0)
                        return -ENOMEM;
                *ret_error = s;
        }
        return -EINVAL;
}

/* Only digits, no sign, no blanks, no overflow, within [min, max]. */
static int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret) {
        unsigned long v;
        char *end = NULL;

        if (isempty(s) || s[0] < '0' || s[0] > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || !end || *end != 0)
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

static bool has_control_chars(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return true;
        return false;
}

static int check_user(const char *user, char **ret_error) {
        if (isempty(user))
                return usage_error(ret_error, "empty user name");
        if (strlen(user) >= SSF_IPC_MAX_USER || has_control_chars(user))
                return usage_error(ret_error, "invalid user name");
        return 0;
}

/* "--name VALUE" or "--name=VALUE"; advances *i past the value. Returns 1 if argv[*i] is this
 * option, 0 if not, -EINVAL if its value is missing. */
static int option_value(int argc, char *const *argv, int *i, const char *name, const char **ret) {
        const char *a = argv[*i], *v;

        v = startswith(a, name);
        if (!v)
                return 0;
        if (*v == '=') {
                *ret = v + 1;
                return 1;
        }
        if (*v != 0)
                return 0;
        if (*i + 1 >= argc)
                return -EINVAL;
        *ret = argv[++*i];
        return 1;
}

int ctl_join_parts(json_t **joined, const char *body) {
        _cleanup_(json_decrefp) json_t *part = NULL;
        json_t *entries, *into;

        if (!body)
                return *joined ? -EBADMSG : 0;
        part = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(part))
                return -EBADMSG;
        if (!*joined) {
                *joined = TAKE_PTR(part);
                return 0;
        }
        entries = json_object_get(part, "entries");
        into = json_object_get(*joined, "entries");
        if (!json_is_array(entries) || !json_is_array(into) || json_array_extend(into, entries) < 0)
                return -EBADMSG;
        return 0;
}

int ctl_parse_since(const char *s, long long now, long long *ret) {
        static const struct {
                char suffix;
                long long sec;
        } units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 } };
        size_t n, digits;
        unsigned long long v = 0;
        struct tm tm = {};
        char *end;

        if (isempty(s))
                return -EINVAL;
        n = strlen(s);
        digits = strspn(s, "0123456789");
        if (digits > 0 && digits <= 12 && (digits == n || digits == n - 1)) {
                for (size_t i = 0; i < digits; i++)
                        v = v * 10 + (unsigned long long) (s[i] - '0');
                if (digits == n) {
                        *ret = (long long) v;
                        return 0;
                }
                for (size_t i = 0; i < ARRAY_SIZE(units); i++)
                        if (s[n - 1] == units[i].suffix) {
                                long long ago = (long long) v * units[i].sec;
                                *ret = ago >= now ? 0 : now - ago;
                                return 0;
                        }
                return -EINVAL;
        }
        end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end)
                return -EINVAL;
        *ret = (long long) timegm(&tm);
        return *ret >= 0 ? 0 : -EINVAL;
}

int ctl_parse_args(int argc, char *const *argv, CtlArgs *ret, char **ret_error) {
        CtlArgs a = {
                .action = CTL_ACTION_RUN,
                .socket = SSF_IPC_DEFAULT_SOCKET,
                .verb = _CTL_VERB_INVALID,
                .limit = CTL_HISTORY_LIMIT_DEFAULT,
                .since = -1,
        };
        const char *positional[4];
        const char *limit_arg = NULL, *reason = NULL, *since_arg = NULL, *v;
        size_t n_positional = 0;
        bool options_done = false;
        int r;

        if (!ret)
                return -EINVAL;
        if (ret_error)
                *ret_error = NULL;

        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i];

                if (!arg)
                        break;

                if (options_done || arg[0] != '-' || streq(arg, "-")) {
                        if (n_positional >= ARRAY_SIZE(positional))
                                return usage_error(ret_error, "too many arguments");
                        positional[n_positional++] = arg;
                        continue;
                }

                if (streq(arg, "--")) {
                        options_done = true;
                        continue;
                }
                if (streq(arg, "-h") || streq(arg, "--help")) {
                        *ret = (CtlArgs) { .action = CTL_ACTION_HELP };
                        return 0;
                }
                if (streq(arg, "--version")) {
                        *ret = (CtlArgs) { .action = CTL_ACTION_VERSION };
                        return 0;
                }
                if (streq(arg, "--json")) {
                        a.json = true;
                        continue;
                }

                r = option_value(argc, argv, &i, "--socket", &v);
                if (r < 0)
                        return usage_error(ret_error, "option --socket needs a PATH");
                if (r > 0) {
                        if (isempty(v))
                                return usage_error(ret_error, "option --socket needs a PATH");
                        a.socket = v;
                        continue;
                }

                r = option_value(argc, argv, &i, "--reason", &v);
                if (r < 0)
                        return usage_error(ret_error, "option --reason needs a TEXT");
                if (r > 0) {
                        reason = v;
                        continue;
                }

                r = option_value(argc, argv, &i, "--transmitter", &v);
                if (r < 0)
                        return usage_error(ret_error, "option --transmitter needs a NAME");
                if (r > 0) {
                        if (!transmitter_name_valid(v))
                                return usage_error(ret_error, "invalid transmitter name '%s' (a-z, "
                                                   "0-9, '-', at most 32)", v);
                        a.transmitter = v;
                        continue;
                }

                r = option_value(argc, argv, &i, "--since", &v);
                if (r < 0)
                        return usage_error(ret_error, "option --since needs a TIME");
                if (r > 0) {
                        since_arg = v;
                        continue;
                }

                if (streq(arg, "-n")) {
                        if (i + 1 >= argc)
                                return usage_error(ret_error, "option -n needs a number");
                        limit_arg = argv[++i];
                        continue;
                }
                if (startswith(arg, "-n")) {
                        limit_arg = arg + 2;
                        continue;
                }

                return usage_error(ret_error, "unknown option '%s'", arg);
        }

        if (n_positional == 0)
                return usage_error(ret_error, "missing COMMAND");

        a.verb = ctl_verb_from_string(positional[0]);
        if (streq(positional[0], "subjects")) {
                if (n_positional < 2 || (!streq(positional[1], "add") && !streq(positional[1], "remove")))
                        return usage_error(ret_error, "subjects needs add or remove");
                if (n_positional != 3)
                        return usage_error(ret_error, "subjects %s needs one USER or SUBJECT-JSON",
                                           positional[1]);
                a.verb = streq(positional[1], "add") ? CTL_VERB_SUBJECTS_ADD : CTL_VERB_SUBJECTS_REMOVE;
                a.subject = positional[2];
                if (isempty(a.subject) || strlen(a.subject) > CTL_SUBJECT_MAX)
                        return usage_error(ret_error, "the USER or SUBJECT-JSON must be 1 to %u bytes",
                                           CTL_SUBJECT_MAX);
                {
                        json_t *t = json_string(a.subject);

                        if (!t)
                                return usage_error(ret_error, "the USER or SUBJECT-JSON is not UTF-8");
                        json_decref(t);
                }
                n_positional = 1;
        } else if (a.verb == CTL_VERB_STREAM && n_positional >= 2) {
                static const struct {
                        const char *word, *status;
                        CtlVerb verb;
                } words[] = {
                        { "pause", "paused", CTL_VERB_STREAM_STATUS },
                        { "resume", "enabled", CTL_VERB_STREAM_STATUS },
                        { "disable", "disabled", CTL_VERB_STREAM_STATUS },
                        { "delete", NULL, CTL_VERB_STREAM_DELETE },
                        { "create", NULL, CTL_VERB_STREAM_CREATE },
                };
                size_t k;

                for (k = 0; k < ARRAY_SIZE(words); k++)
                        if (streq(positional[1], words[k].word))
                                break;
                if (k == ARRAY_SIZE(words))
                        return usage_error(ret_error, "unknown stream command '%s' (pause, resume, "
                                           "disable, delete, create)", positional[1]);
                if (n_positional > 2)
                        return usage_error(ret_error, "too many arguments for stream %s",
                                           positional[1]);
                a.verb = words[k].verb;
                a.stream_status = words[k].status;
                n_positional = 1;
        }
        if (a.verb < 0)
                return usage_error(ret_error, "unknown command '%s'", positional[0]);

        if (limit_arg && a.verb != CTL_VERB_HISTORY)
                return usage_error(ret_error, "option -n is only valid with history");
        if (since_arg && a.verb != CTL_VERB_HISTORY)
                return usage_error(ret_error, "option --since is only valid with history");
        if (since_arg && ctl_parse_since(since_arg, (long long) time(NULL), &a.since) < 0)
                return usage_error(ret_error,
                                   "--since needs epoch seconds, an RFC 3339 UTC time "
                                   "(2026-12-01T00:00:00Z) or a duration (24h, 7d), not '%s'",
                                   since_arg);
        if (a.transmitter && !ctl_verb_takes_transmitter(a.verb))
                return usage_error(ret_error, "option --transmitter is not valid with %s",
                                   positional[0]);
        if (reason && a.verb != CTL_VERB_SET_RISK && a.verb != CTL_VERB_STREAM_STATUS)
                return usage_error(ret_error, "option --reason is only valid with set-risk and "
                                   "stream pause|resume|disable");
        if (reason && a.verb == CTL_VERB_STREAM_STATUS) {
                if (strlen(reason) > CTL_REASON_MAX)
                        return usage_error(ret_error, "--reason is longer than %u bytes",
                                           CTL_REASON_MAX);
                if (has_control_chars(reason))
                        return usage_error(ret_error, "--reason must not contain control characters");
                a.reason = reason;
        }

        switch (a.verb) {
        case CTL_VERB_RISK:
        case CTL_VERB_RESET:
                if (n_positional < 2)
                        return usage_error(ret_error, "%s needs a USER", positional[0]);
                if (n_positional > 2)
                        return usage_error(ret_error, "too many arguments for %s", positional[0]);
                a.user = positional[1];
                break;

        case CTL_VERB_HISTORY:
                if (n_positional > 2)
                        return usage_error(ret_error, "too many arguments for %s", positional[0]);
                if (n_positional == 2)
                        a.user = positional[1];
                if (limit_arg) {
                        r = parse_unsigned(limit_arg, 1, CTL_HISTORY_LIMIT_MAX, &a.limit);
                        if (r < 0)
                                return usage_error(ret_error,
                                                   "-n needs a whole number from 1 to %u, not '%s'",
                                                   CTL_HISTORY_LIMIT_MAX, limit_arg);
                }
                break;

        case CTL_VERB_SET_RISK: {
                RiskLevel l;

                if (n_positional < 3)
                        return usage_error(ret_error, "set-risk needs a USER and a LEVEL");
                if (n_positional > 3)
                        return usage_error(ret_error, "too many arguments for %s", positional[0]);
                a.user = positional[1];
                l = risk_level_from_string(positional[2]);
                if (l < 0)
                        return usage_error(ret_error, "invalid risk level '%s' (none, low, medium, high)",
                                           positional[2]);
                a.level = risk_level_to_string(l);
                if (reason) {
                        if (strlen(reason) > CTL_REASON_MAX)
                                return usage_error(ret_error, "--reason is longer than %u bytes",
                                                   CTL_REASON_MAX);
                        if (has_control_chars(reason))
                                return usage_error(ret_error,
                                                   "--reason must not contain control characters");
                }
                a.reason = reason;
                break;
        }

        default:
                if (n_positional > 1)
                        return usage_error(ret_error, "too many arguments for %s", positional[0]);
        }

        if (a.user) {
                r = check_user(a.user, ret_error);
                if (r < 0)
                        return r;
        }

        *ret = a;
        return 0;
}

int ctl_build_request(const CtlArgs *a, char **ret_args) {
        json_auto_t *o = NULL;
        char *s;
        int r = 0;

        if (!a || !ret_args || a->verb < 0 || a->verb >= _CTL_VERB_MAX)
                return -EINVAL;

        o = json_object();
        if (!o)
                return -ENOMEM;

        switch (a->verb) {
        case CTL_VERB_RISK:
        case CTL_VERB_RESET:
                r = json_object_set_new(o, "user", json_string(a->user));
                break;
        case CTL_VERB_HISTORY:
                if (a->user)
                        r = json_object_set_new(o, "user", json_string(a->user));
                if (r == 0)
                        r = json_object_set_new(o, "limit", json_integer(a->limit));
                if (r == 0 && a->since >= 0)
                        r = json_object_set_new(o, "since", json_integer(a->since));
                break;
        case CTL_VERB_SET_RISK:
                r = json_object_set_new(o, "user", json_string(a->user));
                if (r == 0)
                        r = json_object_set_new(o, "level", json_string(a->level));
                if (r == 0)
                        r = json_object_set_new(o, "reason",
                                                a->reason ? json_string(a->reason) : json_null());
                break;
        case CTL_VERB_VERIFY:
                r = json_object_set_new(o, "timeout_ms", json_integer(CTL_VERIFY_TIMEOUT_MS));
                break;
        case CTL_VERB_STREAM_STATUS:
                r = json_object_set_new(o, "status", json_string(a->stream_status));
                if (r == 0 && a->reason)
                        r = json_object_set_new(o, "reason", json_string(a->reason));
                break;
        case CTL_VERB_SUBJECTS_ADD:
        case CTL_VERB_SUBJECTS_REMOVE:
                /* json_string() refuses what is not UTF-8. */
                r = json_object_set_new(o, "subject", json_string(a->subject));
                break;
        default:
                break;
        }
        if (r == 0 && a->transmitter)
                r = json_object_set_new(o, "transmitter", json_string(a->transmitter));
        if (r < 0)
                return -ENOMEM;

        s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!s)
                return -ENOMEM;
        *ret_args = s;
        return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Reply formatting */

/* Writes s with what must not reach a terminal as it is (ssf_utf8_unsafe(): controls but those
 * of keep, C1, bidirectional and other invisible format characters, invalid bytes) replaced by
 * one '?' each, so that data from the network can neither drive the terminal nor disguise
 * itself. The runs between them go out in one write each. */
static void put_clean(FILE *f, const char *s, const char *keep) {
        const uint8_t *p = (const uint8_t *) s, *run = p, *end = p + strlen(s);

        while (p < end) {
                uint32_t cp;
                size_t len;

                if (*p >= 0x20 && *p < 0x7f) { /* printable ASCII: most of it */
                        p++;
                        continue;
                }
                len = ssf_utf8_decode(p, (size_t) (end - p), &cp);
                if (ssf_utf8_unsafe(cp) && !(cp < 0x80 && keep && strchr(keep, (int) cp))) {
                        (void) fwrite(run, 1, (size_t) (p - run), f);
                        fputc('?', f);
                        run = p + len;
                }
                p += len;
        }
        (void) fwrite(run, 1, (size_t) (p - run), f);
}

/* Columns taken by a UTF-8 string (one per code point; good enough for names and times). */
static size_t utf8_width(const char *s) {
        size_t w = 0;

        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if ((*p & 0xc0) != 0x80)
                        w++;
        return w;
}

static void put_spaces(FILE *f, size_t n) {
        static const char spaces[] = "                                                                ";

        for (size_t k; n > 0; n -= k) {
                k = MIN(n, sizeof(spaces) - 1);
                (void) fwrite(spaces, 1, k, f);
        }
}

static void put_padded(FILE *f, const char *s, size_t width) {
        size_t w = utf8_width(s);

        put_clean(f, s, NULL);
        if (w < width)
                put_spaces(f, width - w);
}

/* The last path segment of an event type URI ("…/caep/event-type/session-revoked"). */
static const char *short_event_name(const char *uri) {
        const char *slash;

        if (!uri)
                return NULL;
        slash = strrchr(uri, '/');
        return slash && slash[1] ? slash + 1 : uri;
}

/* A scalar as text, in a newly allocated string; "-" for null or absent. Arrays become their
 * elements joined with ", "; objects their compact JSON. Returns NULL on OOM. */
static char *value_text(json_t *v, bool shorten_uris) {
        char *s = NULL;

        if (!v || json_is_null(v))
                return strdup("-");
        switch (json_typeof(v)) {
        case JSON_STRING:
                return strdup(shorten_uris ? short_event_name(json_string_value(v)) : json_string_value(v));
        case JSON_INTEGER:
                if (asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
                        return NULL;
                return s;
        case JSON_REAL:
                if (asprintf(&s, "%g", json_real_value(v)) < 0)
                        return NULL;
                return s;
        case JSON_TRUE:
                return strdup("yes");
        case JSON_FALSE:
                return strdup("no");
        case JSON_ARRAY: {
                size_t len = 0, i;
                json_t *e;
                FILE *f;

                f = open_memstream(&s, &len);
                if (!f)
                        return NULL;
                json_array_foreach(v, i, e) {
                        _cleanup_free_ char *t = value_text(e, shorten_uris);

                        if (!t) {
                                fclose(f);
                                free(s);
                                return NULL;
                        }
                        fprintf(f, "%s%s", i > 0 ? ", " : "", t);
                }
                if (fclose(f) != 0) {
                        free(s);
                        return NULL;
                }
                return s;
        }
        default:
                return json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
        }
}

static const char *string_or_dash(json_t *o, const char *key) {
        const char *s = json_string_value(json_object_get(o, key));
        return s ?: "-";
}

static void put_key_value(FILE *f, const char *prefix, const char *key, json_t *v, bool shorten) {
        _cleanup_free_ char *t = value_text(v, shorten);

        if (prefix) {
                put_clean(f, prefix, NULL);
                fputc('.', f);
        }
        put_clean(f, key, NULL);
        fputs(": ", f);
        put_clean(f, t ?: "?", NULL);
        fputc('\n', f);
}

/* "key: value" lines for the members of o; nested objects are flattened to "outer.inner". */
static void put_object_lines(FILE *f, const char *prefix, json_t *o) {
        const char *key;
        json_t *v;

        json_object_foreach(o, key, v) {
                if (json_is_object(v)) {
                        _cleanup_free_ char *p = NULL;

                        if (asprintf(&p, "%s%s%s", strempty(prefix), prefix ? "." : "", key) < 0)
                                continue;
                        put_object_lines(f, p, v);
                } else
                        put_key_value(f, prefix, key, v, false);
        }
}

/* One line per transmitter: its name, then "key: value" pairs (the counters' too). */
static int put_transmitters(FILE *f, json_t *a) {
        size_t i;
        json_t *t;

        if (a && !json_is_array(a))
                return -EBADMSG;
        json_array_foreach(a, i, t) {
                _cleanup_free_ char *p = NULL;
                const char *name = json_string_value(json_object_get(t, "name"));
                const char *key;
                json_t *v;

                if (!json_is_object(t) || !name)
                        return -EBADMSG;
                if (asprintf(&p, "transmitter.%s", name) < 0)
                        return -ENOMEM;
                json_object_foreach(t, key, v) {
                        _cleanup_free_ char *sub = NULL;

                        if (streq(key, "name"))
                                continue;
                        if (!json_is_object(v)) {
                                put_key_value(f, p, key, v, false);
                                continue;
                        }
                        if (asprintf(&sub, "%s.%s", p, key) < 0)
                                return -ENOMEM;
                        put_object_lines(f, sub, v);
                }
        }
        return 0;
}

static int format_transmitters(FILE *f, json_t *body) {
        json_t *a = json_object_get(body, "transmitters");

        if (!json_is_array(a))
                return -EBADMSG;
        return put_transmitters(f, a);
}

static int format_status(FILE *f, json_t *body) {
        json_t *stream = json_object_get(body, "stream"), *counters = json_object_get(body, "counters");
        const char *key;
        json_t *v;
        int r;

        /* stream: null when there are several transmitters and none is named default. */
        if ((!json_is_object(stream) && !json_is_null(stream)) || !json_is_object(counters))
                return -EBADMSG;

        /* Top-level scalars (version, started, …), then the stream, then the counters. */
        json_object_foreach(body, key, v)
                if (!json_is_object(v) && !streq(key, "transmitters") && !streq(key, "stream"))
                        put_key_value(f, NULL, key, v, false);
        json_object_foreach(stream, key, v) {
                if (json_is_object(v))
                        put_object_lines(f, key, v);
                else
                        put_key_value(f, NULL, key, v, streq(key, "events_delivered"));
        }
        json_object_foreach(counters, key, v)
                put_key_value(f, NULL, key, v, false);
        r = put_transmitters(f, json_object_get(body, "transmitters"));
        if (r < 0)
                return r;
        /* Any other sections a newer daemon adds. */
        json_object_foreach(body, key, v)
                if (json_is_object(v) && !streq(key, "stream") && !streq(key, "counters"))
                        put_object_lines(f, key, v);
        return 0;
}

static int format_risk(FILE *f, json_t *body) {
        json_t *detections = json_object_get(body, "detections"), *d;
        const char *user = json_string_value(json_object_get(body, "user"));
        const char *level = json_string_value(json_object_get(body, "level"));
        size_t i, wd = 0, wl = 0;

        if (!user || !level)
                return -EBADMSG;
        if (detections && !json_is_array(detections) && !json_is_null(detections))
                return -EBADMSG;

        put_clean(f, user, NULL);
        fputs(": ", f);
        put_clean(f, level, NULL);
        fputc('\n', f);

        json_array_foreach(detections, i, d) {
                if (!json_is_object(d))
                        return -EBADMSG;
                wd = MAX(wd, utf8_width(string_or_dash(d, "detection")));
                wl = MAX(wl, utf8_width(string_or_dash(d, "level")));
        }
        json_array_foreach(detections, i, d) {
                const char *reason = json_string_value(json_object_get(d, "reason"));
                const char *reason_user = json_string_value(json_object_get(d, "reason_user"));

                fputs("  ", f);
                put_padded(f, string_or_dash(d, "detection"), wd);
                fputs("  ", f);
                put_padded(f, string_or_dash(d, "level"), wl);
                fputs("  since ", f);
                put_clean(f, string_or_dash(d, "since"), NULL);
                fputs("  expires ", f);
                put_clean(f, string_or_dash(d, "expires"), NULL);
                fputs("  jti ", f);
                put_clean(f, string_or_dash(d, "jti"), NULL);
                if (!isempty(reason)) {
                        fputs("  reason ", f);
                        put_clean(f, reason, NULL);
                }
                if (!isempty(reason_user)) {
                        fputs("  reason_user ", f);
                        put_clean(f, reason_user, NULL);
                }
                fputc('\n', f);
        }
        return 0;
}

/* A table: a header row and rows of cells, columns separated by two spaces, the last one not
 * padded. cells holds n_rows * n_cols strings. */
static void put_table(FILE *f, const char *const *header, char **cells, size_t n_rows, size_t n_cols) {
        size_t width[16] = {};

        assert(n_cols <= ARRAY_SIZE(width));
        for (size_t c = 0; c < n_cols; c++) {
                width[c] = utf8_width(header[c]);
                for (size_t r = 0; r < n_rows; r++)
                        width[c] = MAX(width[c], utf8_width(cells[r * n_cols + c]));
        }
        for (size_t r = 0; r <= n_rows; r++) {
                for (size_t c = 0; c < n_cols; c++) {
                        const char *s = r == 0 ? header[c] : cells[(r - 1) * n_cols + c];

                        if (c + 1 < n_cols) {
                                put_padded(f, s, width[c]);
                                fputs("  ", f);
                        } else
                                put_clean(f, s, NULL);
                }
                fputc('\n', f);
        }
}

static void free_cells(char **cells, size_t n) {
        if (!cells)
                return;
        for (size_t i = 0; i < n; i++)
                free(cells[i]);
        free(cells);
}

/* Prints the array rows as a table under header, one row per object, whose n_cols cells fill()
 * makes (NULL where out of memory); empty is printed instead when there are none. */
static int format_table(FILE *f, json_t *rows, const char *const *header, size_t n_cols, const char *empty,
                        void (*fill)(json_t *o, char **row)) {
        json_t *e;
        size_t n, i;
        char **cells;

        if (!json_is_array(rows))
                return -EBADMSG;
        n = json_array_size(rows);
        if (n == 0) {
                fputs(empty, f);
                return 0;
        }

        cells = calloc(n * n_cols, sizeof(char *));
        if (!cells)
                return -ENOMEM;
        json_array_foreach(rows, i, e) {
                char **row = cells + i * n_cols;

                if (!json_is_object(e)) {
                        free_cells(cells, n * n_cols);
                        return -EBADMSG;
                }
                fill(e, row);
                for (size_t c = 0; c < n_cols; c++)
                        if (!row[c]) {
                                free_cells(cells, n * n_cols);
                                return -ENOMEM;
                        }
        }
        put_table(f, header, cells, n, n_cols);
        free_cells(cells, n * n_cols);
        return 0;
}

/* The rows of a table collected before it is printed (its widths need every row): the cells'
 * strings one after another in one buffer, their offsets in another; no allocation per cell. */
#define CTL_TABLE_MAX_COLS 16u

typedef struct CtlTable {
        const char *const *header;
        size_t n_cols, n_rows, n_cells;
        char *text;        /* the cells' strings, each NUL-terminated */
        size_t text_len, text_size;
        size_t *cell;      /* n_rows * n_cols offsets into text */
        size_t cell_size;  /* offsets allocated */
        size_t width[CTL_TABLE_MAX_COLS];
} CtlTable;

static void table_init(CtlTable *t, const char *const *header, size_t n_cols) {
        assert(n_cols <= CTL_TABLE_MAX_COLS);
        *t = (CtlTable) { .header = header, .n_cols = n_cols };
        for (size_t c = 0; c < n_cols; c++)
                t->width[c] = utf8_width(header[c]);
}

static void table_done(CtlTable *t) {
        free(t->text);
        free(t->cell);
        *t = (CtlTable) {};
}

/* Grows *buf (of *size elements of elsize bytes) to hold at least need of them. */
static int grow(void **buf, size_t *size, size_t need, size_t elsize) {
        size_t n = MAX(*size, (size_t) 1024);
        void *p;

        if (need <= *size)
                return 0;
        while (n < need) {
                if (n > SIZE_MAX / 2 / elsize)
                        return -ENOMEM;
                n *= 2;
        }
        p = realloc(*buf, n * elsize);
        if (!p)
                return -ENOMEM;
        *buf = p;
        *size = n;
        return 0;
}

/* Appends the next cell: the concatenation of the n strings parts (NULL ones skipped). */
static int table_add_cell(CtlTable *t, const char *const *parts, size_t n) {
        size_t len = 0, start = t->text_len, col = t->n_cells % t->n_cols;

        for (size_t i = 0; i < n; i++)
                len += parts[i] ? strlen(parts[i]) : 0;
        if (grow((void **) &t->text, &t->text_size, start + len + 1, 1) < 0 ||
            grow((void **) &t->cell, &t->cell_size, t->n_cells + 1, sizeof(size_t)) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (parts[i]) {
                        size_t l = strlen(parts[i]);

                        memcpy(t->text + t->text_len, parts[i], l);
                        t->text_len += l;
                }
        t->text[t->text_len++] = 0;
        t->cell[t->n_cells++] = start;
        t->width[col] = MAX(t->width[col], utf8_width(t->text + start));
        if (col + 1 == t->n_cols)
                t->n_rows++;
        return 0;
}

/* A cell holding value_text(v): strings as they are, without a copy of their own. */
static int table_add_value(CtlTable *t, json_t *v, bool shorten_uris) {
        _cleanup_free_ char *s = NULL;
        const char *text;

        if (json_is_string(v))
                text = shorten_uris ? short_event_name(json_string_value(v)) : json_string_value(v);
        else {
                s = value_text(v, shorten_uris);
                if (!s)
                        return -ENOMEM;
                text = s;
        }
        return table_add_cell(t, &text, 1);
}

static void table_put(FILE *f, const CtlTable *t) {
        for (size_t r = 0; r <= t->n_rows; r++) {
                for (size_t c = 0; c < t->n_cols; c++) {
                        const char *s = r == 0 ? t->header[c] : t->text + t->cell[(r - 1) * t->n_cols + c];

                        if (c + 1 < t->n_cols) {
                                put_padded(f, s, t->width[c]);
                                fputs("  ", f);
                        } else
                                put_clean(f, s, NULL);
                }
                fputc('\n', f);
        }
}

static const char *const history_header[] = {
        "TIME", "USER", "EVENT", "DETECTION", "LEVEL", "RULE", "ACTION", "RESULT",
};

struct CtlHistory {
        bool json;
        CtlTable table;  /* without json */
        FILE *text;      /* with json: the entries printed so far */
        char *buf;
        size_t len, n;
};

/* Adds the rows of the array entries. */
static int history_add_entries(CtlTable *t, json_t *entries) {
        size_t i;
        json_t *e;
        int r = 0;

        if (!json_is_array(entries))
                return -EBADMSG;
        json_array_foreach(entries, i, e) {
                const char *level[3];

                if (!json_is_object(e))
                        return -EBADMSG;
                level[0] = string_or_dash(e, "level_before");
                level[1] = "→";
                level[2] = string_or_dash(e, "level_after");
                if ((r = table_add_value(t, json_object_get(e, "time"), false)) < 0 ||
                    (r = table_add_value(t, json_object_get(e, "user"), false)) < 0 ||
                    (r = table_add_value(t, json_object_get(e, "event"), true)) < 0 ||
                    (r = table_add_value(t, json_object_get(e, "detection"), false)) < 0 ||
                    (r = table_add_cell(t, level, ARRAY_SIZE(level))) < 0 ||
                    (r = table_add_value(t, json_object_get(e, "rule"), false)) < 0 ||
                    (r = table_add_value(t, json_object_get(e, "action"), false)) < 0 ||
                    (r = table_add_value(t, json_object_get(e, "result"), false)) < 0)
                        return r;
        }
        return 0;
}

static void history_put(FILE *f, const CtlTable *t) {
        if (t->n_rows == 0)
                fputs("No history.\n", f);
        else
                table_put(f, t);
}

static int format_history(FILE *f, json_t *body) {
        CtlTable t;
        int r;

        table_init(&t, history_header, ARRAY_SIZE(history_header));
        r = history_add_entries(&t, json_object_get(body, "entries"));
        if (r >= 0)
                history_put(f, &t);
        table_done(&t);
        return r;
}

CtlHistory *ctl_history_new(bool json) {
        CtlHistory *h = calloc(1, sizeof(*h));

        if (!h)
                return NULL;
        h->json = json;
        table_init(&h->table, history_header, ARRAY_SIZE(history_header));
        if (json) {
                h->text = open_memstream(&h->buf, &h->len);
                if (!h->text)
                        return mfree(h);
        }
        return h;
}

CtlHistory *ctl_history_free(CtlHistory *h) {
        if (h) {
                table_done(&h->table);
                if (h->text)
                        fclose(h->text);
                free(h->buf);
                free(h);
        }
        return NULL;
}

/* With json: each entry as ctl_format_reply() prints it inside the joined answer (JSON_INDENT(2)
 * at depth 2: each of its lines 4 columns further in). */
static int history_add_json(CtlHistory *h, json_t *entries) {
        size_t i;
        json_t *e;

        json_array_foreach(entries, i, e) {
                _cleanup_free_ char *s = json_dumps(e, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                                               JSON_ENCODE_ANY);

                if (!s)
                        return -ENOMEM;
                fputs(h->n++ > 0 ? ",\n    " : "\n    ", h->text);
                for (const char *p = s, *nl; *p; p = nl + 1) {
                        nl = strchrnul(p, '\n');
                        (void) fwrite(p, 1, (size_t) (nl - p), h->text);
                        if (!*nl)
                                break;
                        fputs("\n    ", h->text);
                }
        }
        return ferror(h->text) ? -ENOMEM : 0;
}

int ctl_history_add(CtlHistory *h, const char *body) {
        _cleanup_(json_decrefp) json_t *part = NULL;
        json_t *entries;

        if (!h || !body)
                return -EBADMSG;
        part = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(part))
                return -EBADMSG;
        entries = json_object_get(part, "entries");
        if (h->json)
                return json_is_array(entries) ? history_add_json(h, entries) : -EBADMSG;
        return history_add_entries(&h->table, entries);
}

int ctl_history_put(CtlHistory *h, FILE *f) {
        if (!h->json) {
                history_put(f, &h->table);
                return 0;
        }
        if (fflush(h->text) != 0)
                return -ENOMEM;
        if (h->n == 0)
                fputs("{\n  \"entries\": []\n}\n", f);
        else {
                fputs("{\n  \"entries\": [", f);
                (void) fwrite(h->buf, 1, h->len, f);
                fputs("\n  ]\n}\n", f);
        }
        return 0;
}

static void users_row(json_t *u, char **row) {
        row[0] = value_text(json_object_get(u, "user"), false);
        row[1] = value_text(json_object_get(u, "level"), false);
        row[2] = value_text(json_object_get(u, "updated"), false);
}

static int format_users(FILE *f, json_t *body) {
        static const char *const header[] = { "USER", "LEVEL", "UPDATED" };

        return format_table(f, json_object_get(body, "users"), header, ARRAY_SIZE(header),
                            "No users with a risk level above none.\n", users_row);
}

/* reset, set-risk: "alice: high → none". */
static int format_change(FILE *f, json_t *body) {
        const char *user = json_string_value(json_object_get(body, "user"));

        if (!user)
                return -EBADMSG;
        put_clean(f, user, NULL);
        fputs(": ", f);
        put_clean(f, string_or_dash(body, "level_before"), NULL);
        fputs(" → ", f);
        put_clean(f, string_or_dash(body, "level_after"), NULL);
        fputc('\n', f);
        return 0;
}

static int format_verify(FILE *f, json_t *body) {
        json_t *received = json_object_get(body, "received");

        if (!json_is_boolean(received))
                return -EBADMSG;
        put_object_lines(f, NULL, body);
        return json_is_true(received) ? 0 : 1;
}

static int format_stream(FILE *f, json_t *body) {
        put_object_lines(f, NULL, body);
        return 0;
}

static int format_metrics(FILE *f, json_t *body) {
        const char *text = json_string_value(json_object_get(body, "text"));
        size_t l;

        if (!text)
                return -EBADMSG;
        put_clean(f, text, "\n\t");
        l = strlen(text);
        if (l == 0 || text[l - 1] != '\n')
                fputc('\n', f);
        return 0;
}

int ctl_format_reply(CtlVerb verb, bool json, const char *body, char **ret_text) {
        json_auto_t *j = NULL;
        char *text = NULL;
        size_t len = 0;
        FILE *f;
        int r;

        if (!ret_text || verb < 0 || verb >= _CTL_VERB_MAX)
                return -EINVAL;
        if (!body)
                return -EBADMSG;

        /* One frame's body, or the frames of a streamed answer joined (ctl_join_parts()). */
        j = json_loadb(body, strlen(body), JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(j))
                return -EBADMSG;

        if (json && verb != CTL_VERB_METRICS) {
                char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

                if (!s)
                        return -ENOMEM;
                text = NULL;
                if (asprintf(&text, "%s\n", s) < 0) {
                        free(s);
                        return -ENOMEM;
                }
                free(s);
                /* verify's outcome still decides the exit status. */
                r = verb == CTL_VERB_VERIFY && !json_is_true(json_object_get(j, "received")) ? 1 : 0;
                *ret_text = text;
                return r;
        }

        f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;

        switch (verb) {
        case CTL_VERB_STATUS:
                r = format_status(f, j);
                break;
        case CTL_VERB_RISK:
                r = format_risk(f, j);
                break;
        case CTL_VERB_HISTORY:
                r = format_history(f, j);
                break;
        case CTL_VERB_USERS:
                r = format_users(f, j);
                break;
        case CTL_VERB_RESET:
        case CTL_VERB_SET_RISK:
                r = format_change(f, j);
                break;
        case CTL_VERB_VERIFY:
                r = format_verify(f, j);
                break;
        case CTL_VERB_STREAM:
                r = format_stream(f, j);
                break;
        case CTL_VERB_METRICS:
                r = format_metrics(f, j);
                break;
        case CTL_VERB_STREAM_STATUS:
        case CTL_VERB_STREAM_DELETE:
        case CTL_VERB_STREAM_CREATE:
        case CTL_VERB_SUBJECTS_ADD:
        case CTL_VERB_SUBJECTS_REMOVE: {
                const char *res = json_string_value(json_object_get(j, "result"));

                if (!res) {
                        r = -EBADMSG;
                        break;
                }
                put_clean(f, res, NULL);
                fputc('\n', f);
                r = 0;
                break;
        }
        case CTL_VERB_TRANSMITTERS:
                r = format_transmitters(f, j);
                break;
        default:
                r = -EINVAL;
        }

        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(text);
                return r;
        }
        *ret_text = text;
        return r;
}

char *ctl_format_error(int status, const char *message) {
        char *s = NULL, *clean = NULL;
        size_t len = 0;
        FILE *f;

        if (isempty(message)) {
                if (status == -EPERM || status == -EACCES)
                        message = "permission denied";
                else
                        message = strerror(status < 0 ? -status : EIO);
        }

        f = open_memstream(&clean, &len);
        if (!f)
                return NULL;
        put_clean(f, message, NULL);
        if (fclose(f) != 0) {
                free(clean);
                return NULL;
        }
        if (asprintf(&s, "ssfctl: %s", clean) < 0)
                s = NULL;
        free(clean);
        return s;
}
