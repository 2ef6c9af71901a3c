/* SPDX-License-Identifier: MIT */
#pragma once

/* The pure half of ssfctl: command-line parsing into CtlArgs, the CTL_REQUEST each command
 * sends, and the text printed for the daemon's CTL_REPLY. No I/O here, so all of it is
 * unit-tested. Runs in ssfctl. */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CTL_HISTORY_LIMIT_DEFAULT 20u
#define CTL_HISTORY_LIMIT_MAX 100000000u /* any N: the answer is streamed */
#define CTL_REASON_MAX 1024u
/* How long the daemon waits for a verification event, and how long ssfctl waits for the
 * daemon's reply to `verify` (a little longer, so the daemon's answer arrives first). */
#define CTL_VERIFY_TIMEOUT_MS 30000u
#define CTL_VERIFY_DEADLINE_USEC (35u * 1000u * 1000u)
#define CTL_DEADLINE_USEC (10u * 1000u * 1000u)
/* The stream and subjects commands: the daemon waits 30 s for the transmitter's answer. */
#define CTL_ADMIN_DEADLINE_USEC (35u * 1000u * 1000u)
#define CTL_SUBJECT_MAX 4096u

typedef enum CtlVerb {
        CTL_VERB_STATUS,
        CTL_VERB_RISK,
        CTL_VERB_HISTORY,
        CTL_VERB_USERS,
        CTL_VERB_RESET,
        CTL_VERB_SET_RISK,
        CTL_VERB_VERIFY,
        CTL_VERB_STREAM,
        CTL_VERB_METRICS,
        /* stream and subject administration: "stream pause|resume|disable|delete|create",
         * "subjects add|remove" on the command line, these names on the wire */
        CTL_VERB_STREAM_STATUS,   /* stream pause|resume|disable: "stream-status" */
        CTL_VERB_STREAM_DELETE,   /* "stream-delete" */
        CTL_VERB_STREAM_CREATE,   /* "stream-create" */
        CTL_VERB_SUBJECTS_ADD,    /* "subjects-add" */
        CTL_VERB_SUBJECTS_REMOVE, /* "subjects-remove" */
        CTL_VERB_TRANSMITTERS,
        _CTL_VERB_MAX,
        _CTL_VERB_INVALID = -EINVAL,
} CtlVerb;

typedef enum CtlAction {
        CTL_ACTION_RUN,     /* contact the daemon with verb */
        CTL_ACTION_HELP,    /* print ctl_usage() to stdout, exit 0 */
        CTL_ACTION_VERSION, /* print the version, exit 0 */
} CtlAction;

/* Strings are borrowed from argv (level points to a static canonical name). */
typedef struct CtlArgs {
        CtlAction action;
        bool json;
        const char *socket; /* SSF_IPC_DEFAULT_SOCKET unless --socket */
        CtlVerb verb;
        const char *user;   /* risk, reset, set-risk; optional for history */
        const char *level;  /* set-risk: "none", "low", "medium" or "high" */
        const char *reason; /* set-risk, stream pause|resume|disable --reason, or NULL */
        const char *stream_status; /* stream pause|resume|disable: "paused", "enabled", "disabled" */
        const char *subject; /* subjects add|remove: USER or SUBJECT-JSON as given */
        long long since;    /* history --since: epoch seconds; -1 when not given */
        unsigned limit;     /* history -n, CTL_HISTORY_LIMIT_DEFAULT if not given */
        const char *transmitter; /* --transmitter NAME (stream verbs), or NULL */
} CtlArgs;

/* Whether verb is about one transmitter's stream, and so takes --transmitter NAME (sent as the
 * request's "transmitter"; required by the daemon when there are several). */
bool ctl_verb_takes_transmitter(CtlVerb v);

/* The wire name of a verb ("set-risk"), or NULL. */
const char *ctl_verb_to_string(CtlVerb v);
/* The verb a command line's first word names ("stream" and "subjects" take a second word,
 * ctl_parse_args() turns those into the administration verbs). */
CtlVerb ctl_verb_from_string(const char *s);
/* Whether v is one of the stream and subject administration verbs. */
static inline bool ctl_verb_is_admin(CtlVerb v) {
        return v >= CTL_VERB_STREAM_STATUS && v <= CTL_VERB_SUBJECTS_REMOVE;
}

/* The usage text (ends with a newline). */
const char *ctl_usage(void);

/* Parses `ssfctl [--json] [--socket PATH] COMMAND …` (options may also follow the command).
 * Returns 0 and fills *ret; -EINVAL for a usage error (exit 2) with a one-line explanation in
 * *ret_error when ret_error is not NULL (caller frees); -ENOMEM. Never touches the daemon. */
int ctl_parse_args(int argc, char *const *argv, CtlArgs *ret, char **ret_error);

/* The ARGS JSON object text of the CTL_REQUEST for a (action RUN). Returns 0 or -ENOMEM. */
int ctl_build_request(const CtlArgs *a, char **ret_args);

/* Turns a successful CTL_REPLY BODY into what ssfctl prints on stdout (newline-terminated):
 * with json, the body pretty-printed; without, text for people (metrics: the exposition text in
 * both modes). Strings from the daemon are printed with terminal control characters replaced.
 * Returns 0, or 1 when the reply reports that the command did not succeed (verify: no
 * verification event received) but *ret_text is still to be printed; -EBADMSG when body is
 * missing, not JSON, or lacks what the verb needs; -ENOMEM. */
int ctl_format_reply(CtlVerb verb, bool json, const char *body, char **ret_text);

/* "ssfctl: <message>" for a failed CTL_REPLY (status < 0), without a newline: the message, or
 * for -EPERM without one "permission denied", else strerror(-status). Returns NULL on OOM. */
char *ctl_format_error(int status, const char *message);

/* history --since TIME: epoch seconds ("1764950400"), RFC 3339 UTC ("2026-12-01T00:00:00Z"),
 * or a duration before now ("24h", "7d", "30m", "90s"). Returns 0 and the epoch second in
 * *ret, or -EINVAL. */
int ctl_parse_since(const char *s, long long now, long long *ret);

/* Joins one CTL_REPLY frame's body (JSON text, may be NULL) into *joined (a new object on the
 * first call): the "entries" arrays of a streamed answer are concatenated. Returns 0, or
 * -EBADMSG for a body that is not a JSON object or a later part without "entries". */
typedef struct json_t json_t;
int ctl_join_parts(json_t **joined, const char *body);

/* `history`, frame by frame: each CTL_REPLY body's entries are taken as the frame arrives (no
 * joined answer to print, parse again and hold as JSON objects), and ctl_history_put() prints
 * what ctl_format_reply() prints for the joined answer: the table, or with json the answer
 * pretty-printed. ctl_history_add() returns 0, -EBADMSG for a body that is not an object with an
 * "entries" array (of objects, for the table), or -ENOMEM; ctl_history_put() 0 or -ENOMEM. */
typedef struct CtlHistory CtlHistory;
CtlHistory *ctl_history_new(bool json);
CtlHistory *ctl_history_free(CtlHistory *h);
int ctl_history_add(CtlHistory *h, const char *body);
int ctl_history_put(CtlHistory *h, FILE *f);
