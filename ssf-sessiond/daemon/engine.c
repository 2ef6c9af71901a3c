/* SPDX-License-Identifier: MIT */
/*
 * Applying one SET record to the durable state (engine.h): replay check, levels, policy,
 * history and pending actions in one transaction. Runs in the root daemon.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "engine.h"
#include "events.h"
#include "log.h"
#include "macro.h"
#include "ingest.h"
#include "policy.h"
#include "reason-user.h"
#include "risk.h"
#include "strv.h"
#include "subject.h"
#include "users.h"

#define F(buf, ...) (void) snprintf(buf, sizeof(buf), __VA_ARGS__)

/* At most this many local users from one subject (a map_file may name several); the host-wide
 * device rule is bounded by min_uid…max_uid and subject.c's own bound instead. */
#define ENGINE_MAX_USERS 64u

static const char *level_str(RiskLevel l) {
        const char *s = risk_level_to_string(l);
        return s ? s : "none";
}

/* The SET's txn claim (SSF §4.1.9), NULL when it has none; an empty one is none. */
static char *set_txn(const IngestRequest *set) {
        return isempty(set->txn) ? NULL : UNCONST(set->txn);
}

/* The SET's iss must be that of the transmitter whose worker's channel it arrived on, and never
 * another transmitter's configured issuer:
 * - its configured issuer, exactly;
 * - else the issuer its config_url stands for by the SSF well-known rule (config_url_issuer()),
 *   spelt I or I + "/" (the rule removes a terminating '/', so which one the issuer is cannot be
 *   told from the URL). Root derives it itself and does not believe the issuer the worker
 *   reports, so a compromised worker can claim those two spellings of that one issuer only;
 * - else (a vendor's own well-known URL, standing for no issuer) the issuer the worker reported
 *   from discovery for this transmitter; every SET is refused until it has reported one (it
 *   reports the stream, issuer included, before it receives SETs: receiver_setup_finish()).
 * A record without a transmitter (not from a worker channel) is refused.
 * The push transmitters share one worker (the one push listener), with a channel each: the
 * channel still names the transmitter, so a compromised push worker cannot pass one
 * transmitter's record off as another's with its iss; it can fabricate records for any push
 * transmitter it serves (with that one's iss, on that one's channel), as any worker can for its
 * own transmitter: the push transmitters are one trust domain (broker.c). */
static int check_transmitter(State *st, const Config *c, const IngestRequest *set, SetError *err) {
        const TransmitterConfig *tc = config_transmitter(c, set->transmitter);
        _cleanup_free_ char *issuer = NULL;
        int r;

        if (!tc) {
                err->err = "invalid_request";
                F(err->description, "the SET came from no configured transmitter");
                return -EBADMSG;
        }
        if (tc->issuer) {
                if (streq_ptr(set->iss, tc->issuer))
                        return 0;
                goto refuse;
        }
        r = config_url_issuer(tc->config_url, &issuer);
        if (r == -ENOMEM)
                return r;
        if (r >= 0) {
                if (!config_issuer_spelling(issuer, set->iss))
                        goto refuse;
        } else {
                bool match;

                pthread_mutex_lock(&st->lock);
                {
                        TransmitterState *ts = state_transmitter(st, tc->name);
                        match = ts && ts->stream.issuer && streq_ptr(set->iss, ts->stream.issuer);
                }
                pthread_mutex_unlock(&st->lock);
                if (!match)
                        goto refuse;
        }
        for (size_t i = 0; i < c->n_transmitters; i++)
                if (&c->transmitters[i] != tc && streq_ptr(c->transmitters[i].issuer, set->iss))
                        goto refuse;
        return 0;
refuse:
        err->err = "invalid_issuer";
        F(err->description, "the SET's issuer is not transmitter '%s''s", tc->name);
        return -EBADMSG;
}

/* Verification and stream-updated events concern the stream, not a user (SSF §8.1.4-5). */
static int ingest_stream_event(State *st, const IngestRequest *set, SetError *err) {
        const char *short_name = event_short_name(set->event_uri);
        HistoryEntry h = {
                .time = now_sec(),
                .jti = UNCONST(set->jti), .transmitter = UNCONST(set->transmitter),
                .txn = set_txn(set),
                .event = UNCONST(short_name),
                .action = UNCONST("none"),
                .duration_ms = -1,
                .uid = -1,
        };
        char result[256];
        TransmitterState *ts = state_transmitter(st, set->transmitter);
        StreamFacts *sf;

        if (!ts) {
                err->err = "invalid_request";
                F(err->description, "no such transmitter");
                return -EBADMSG;
        }
        sf = &ts->stream;
        if (sf->stream_id && set->stream_id && !streq(set->stream_id, sf->stream_id)) {
                err->err = "invalid_request";
                F(err->description, "%s event for stream '%s', expected '%s'", short_name,
                  set->stream_id, sf->stream_id);
                return -EBADMSG;
        }

        if (set->kind == INGEST_VERIFICATION) {
                bool earlier = false;

                for (size_t i = 0; set->state && i < ARRAY_SIZE(sf->recent_states); i++)
                        if (streq(set->state, sf->recent_states[i]))
                                earlier = true;
                if (set->state && sf->verify_state && streq(set->state, sf->verify_state)) {
                        sf->verify_received = true;
                        sf->last_verified = now_sec();
                        free(sf->verify_result);
                        sf->verify_result = strdup("received");
                        F(result, "ok: verification with the requested state");
                } else if (earlier)
                        F(result, "ok: verification for an earlier request");
                else if (set->state) {
                        /* SSF §8.1.4.2: a state we never asked for. */
                        err->err = "invalid_state";
                        F(err->description, "unexpected verification state");
                        return -EBADMSG;
                } else
                        F(result, "ok: unsolicited verification");
                state_wake(st);
        } else {
                const char *status = set->status, *reason = set->reason;

                free(sf->status);
                sf->status = strdup(status);
                F(result, "stream %s%s%s", status, reason ? ": " : "", reason ? reason : "");
                if (!streq(status, "enabled"))
                        log_warning("Transmitter '%s' reports the stream %s%s%s: events may be held "
                                    "or lost", ts->name, status, reason ? ": " : "", strempty(reason));
                else
                        log_notice("Transmitter '%s' reports the stream enabled again", ts->name);
        }
        h.result = result;
        return store_history_add(st->store, &h, NULL);
}

/* CAEP reason_user (a string, or an object of language tags → strings: "en", else the
 * first string) of the event's members, sanitised into buf (SSF_REASON_USER_SIZE); "" when
 * there is none. */
static void pick_reason_user(json_t *event, char *buf, size_t size) {
        json_t *ru = json_object_get(event, "reason_user"), *v = NULL;
        const char *key;

        buf[0] = 0;
        if (json_is_object(ru)) {
                v = json_object_get(ru, "en");
                if (!json_is_string(v)) {
                        v = NULL;
                        json_object_foreach(ru, key, v)
                                if (json_is_string(v))
                                        break;
                }
        } else
                v = ru;
        if (json_is_string(v))
                (void) ssf_reason_user_sanitize(json_string_value(v), json_string_length(v), buf,
                                                size);
}

/* Applies det to user. Returns 1 when the stored state changed, 0 when the event was stale
 * or changed nothing. */
static int apply_detection(Store *s, const Config *c, const IngestRequest *set, const Detection *det,
                           const char *reason_user, uid_t uid, uint64_t now, const char **ret_note) {
        StoreDetection cur = {}, nd = {};
        const char *name = det->effect == DETECTION_CLEAR ? det->clears : det->name;
        bool have;
        int r;

        *ret_note = NULL;
        r = store_detection_get(s, uid, name, &cur);
        if (r < 0 && r != -ENOENT)
                return r;
        have = r >= 0;

        /* Out-of-order delivery: an event older than what set the stored state loses. */
        if (have && cur.event_time > set->event_time &&
            (det->carries_level || det->effect == DETECTION_CLEAR)) {
                store_detection_done(&cur);
                *ret_note = "stale: older than the recorded event";
                return 0;
        }

        if (det->effect == DETECTION_CLEAR) {
                store_detection_done(&cur);
                if (!have) {
                        *ret_note = "nothing to clear";
                        return 0;
                }
                r = store_detection_delete(s, uid, name);
                return r < 0 ? r : 1;
        }

        if (det->level == RISK_NONE) {
                /* A carried "none" (or a detection configured to none) removes it. */
                store_detection_done(&cur);
                if (!have)
                        return 0;
                r = store_detection_delete(s, uid, name);
                return r < 0 ? r : 1;
        }

        nd.uid = uid;
        nd.detection = UNCONST(name);
        /* Renewal keeps the higher of the two levels unless the event carries its level. */
        nd.level = (have && !det->carries_level) ? MAX(cur.level, det->level) : det->level;
        nd.since = have ? cur.since : now;
        nd.updated = now;
        nd.expires = c->ttl_usec ? now + c->ttl_usec / 1000000u : 0;
        nd.event_time = set->event_time;
        nd.jti = UNCONST(set->jti);
        nd.reason = UNCONST(det->reason);
        /* The words of the SET that set the level: this one's, else (a renewal at the same
         * level without any) those of the SET that set it. */
        nd.reason_user = !isempty(reason_user) ? UNCONST(reason_user)
                         : have && cur.level == nd.level ? cur.reason_user : NULL;
        r = store_detection_put(s, &nd);
        store_detection_done(&cur);
        return r < 0 ? r : 1;
}

/* A clearing event (compliant again, account-enabled) clears the detection it opposes and every
 * [detection NAME] section's detection derived from that detection's event. Returns 1 when
 * any was deleted, 0 with *ret_note when none was. */
static int apply_clear(Store *s, const Config *c, const IngestRequest *set, const Detection *det,
                       uid_t uid, uint64_t now, const char **ret_note) {
        const char *note = NULL;
        int r, changed = 0;

        r = apply_detection(s, c, set, det, NULL, uid, now, &note);
        if (r < 0)
                return r;
        changed = r > 0;
        for (size_t i = 0; i < c->n_detection_defs; i++) {
                Detection d = *det;
                const char *n = NULL;

                if (!streq_ptr(c->detection_defs[i].event, det->clears))
                        continue;
                (void) snprintf(d.clears, sizeof d.clears, "%s", c->detection_defs[i].name);
                r = apply_detection(s, c, set, &d, NULL, uid, now, &n);
                if (r < 0)
                        return r;
                if (r > 0)
                        changed = 1;
        }
        *ret_note = changed ? NULL : note;
        return changed;
}

/* SETs of one transaction at the transmitter share their txn (SSF §4.1.9, RFC 8417 §2.2): an
 * action that an earlier SET of the same txn from the same issuer already caused for user —
 * the same kind, and the same sessions scope (logout) or hook (workflow) — is not run again.
 * Returns 1 with *ret_jti the earlier SET's jti (may be NULL), 0 when the action is due, or
 * -errno. */
static int txn_already_done(Store *s, const IngestRequest *set, uid_t uid,
                            const Rule *rule, char **ret_jti) {
        int r;

        *ret_jti = NULL;
        if (isempty(set->txn) || rule->action == ACTION_NONE)
                return 0;
        r = store_action_find_txn(s, set->iss, set->txn, uid, rule_action_to_string(rule->action),
                                  rule->action == ACTION_LOGOUT || rule->action == ACTION_LOCK
                                          ? session_scope_to_string(rule->sessions)
                                                                : NULL,
                                  rule->action == ACTION_WORKFLOW ? rule->workflow : NULL, ret_jti);
        if (r == -ENOENT)
                return 0;
        return r < 0 ? r : 1;
}

static void log_risk(const char *user, const IngestRequest *set, const char *detection,
                     RiskLevel before, RiskLevel after, const Rule *rule, const char *result) {
        char msg[512], f_user[300], f_jti[300], f_event[200], f_det[100], f_lvl[64], f_prev[64],
                f_rule[300], f_action[64], f_iss[512], f_result[600], f_txn[300];
        const char *action = rule ? rule_action_to_string(rule->action) : "none";

        F(msg, "Risk of '%s' %s → %s after %s (rule %s: %s)", user, level_str(before),
          level_str(after), detection, rule ? rule->name : "none", action);
        F(f_user, "SSF_USER=%s", user);
        F(f_jti, "SSF_JTI=%s", set->jti);
        F(f_event, "SSF_EVENT=%s", set->event_uri);
        F(f_det, "SSF_DETECTION=%s", detection);
        F(f_lvl, "SSF_LEVEL=%s", level_str(after));
        F(f_prev, "SSF_PREVIOUS_LEVEL=%s", level_str(before));
        F(f_rule, "SSF_RULE=%s", rule ? rule->name : "");
        F(f_action, "SSF_ACTION=%s", action);
        F(f_iss, "SSF_ISS=%s", set->iss);
        F(f_result, "SSF_RESULT=%s", result);
        F(f_txn, "SSF_TXN=%s", strempty(set->txn));
        /* SSF_TXN last: without a txn the list ends before it. */
        log_struct(after > before ? LOG_NOTICE : LOG_INFO, SSF_MESSAGE_RISK_CHANGED, msg, f_user,
                   f_jti, f_event, f_det, f_lvl, f_prev, f_rule, f_action, f_iss, f_result,
                   isempty(set->txn) ? NULL : f_txn, NULL);
}

/* What the SETs of a batch enqueued: which lanes of the actions to wake after the commit, and
 * the immediate logind actions handed to the logind lane before it (state.h). */
typedef struct Enqueued {
        bool logind, hooks;
        EarlyAction early[EARLY_ACTIONS_MAX];
        size_t n_early;
} Enqueued;

/* Applies det to user. *snapshot_stale is set when the user's level or its lapse time moved
 * (what the level table and the PAM snapshot hold). */
static int ingest_user(State *st, const Config *c, const IngestRequest *set, const Detection *det,
                       const char *reason_user, char *const *groups, const LocalUser *lu,
                       uint64_t now, bool *snapshot_stale, Enqueued *q) {
        const char *user = lu->name;
        RiskLevel before, after;
        uint64_t until_before, until_after;
        const Rule *rule = NULL;
        const char *note = NULL;
        _cleanup_free_ char *done_jti = NULL;
        char result[512];
        HistoryEntry h = {};
        bool skip = false;
        int64_t hid;
        int r, changed;

        r = store_user_level(st->store, lu->uid, now, &before, &until_before);
        if (r < 0)
                return r;
        changed = 0;
        if (det->effect == DETECTION_RAISE || det->effect == DETECTION_CLEAR) {
                changed = det->effect == DETECTION_CLEAR
                        ? apply_clear(st->store, c, set, det, lu->uid, now, &note)
                        : apply_detection(st->store, c, set, det, reason_user, lu->uid, now,
                                          &note);
                if (changed < 0)
                        return changed;
        }
        /* PAM's level table carries reason_user too. */
        if (changed > 0 && !isempty(reason_user))
                *snapshot_stale = true;
        r = store_user_level(st->store, lu->uid, now, &after, &until_after);
        if (r < 0)
                return r;
        if (after != before || (after > RISK_NONE && until_after != until_before))
                *snapshot_stale = true;

        /* The policy acts on risk signals: events that raise or set a level. A detection at
         * level none runs only the rules that name it (a workflow after a routine event). */
        if (det->effect == DETECTION_RAISE && changed > 0)
                rule = policy_match(c, set->transmitter, user, groups, det->name, after);
        else if (det->effect == DETECTION_RECORD && det->explicit_only)
                rule = policy_match_named(c, set->transmitter, user, groups, det->name, after);
        if (rule) {
                r = txn_already_done(st->store, set, lu->uid, rule, &done_jti);
                if (r < 0)
                        return r;
                skip = r > 0;
        }

        if (note)
                F(result, "%s", note);
        else if (!rule || rule->action == ACTION_NONE)
                F(result, "recorded");
        else if (skip)
                F(result, "skipped: already done for txn %s (jti %s)", set->txn,
                  done_jti ?: "unknown");
        else if (c->dry_run) {
                /* Audit mode: the decision is recorded, nothing is done. */
                if (rule->action == ACTION_WORKFLOW)
                        F(result, "dry run: would run %s", rule->workflow);
                else
                        F(result, "dry run: would %s", rule_action_to_string(rule->action));
                skip = true;
        } else
                F(result, "pending");

        h.time = now;
        h.user = UNCONST(user);
        h.uid = lu->uid;
        h.jti = UNCONST(set->jti);
        h.transmitter = UNCONST(set->transmitter);
        h.txn = set_txn(set);
        h.event = UNCONST(event_short_name(set->event_uri));
        h.detection = UNCONST(det->effect == DETECTION_CLEAR ? det->clears : det->name);
        h.level_before = before;
        h.level_after = after;
        h.rule = rule ? rule->name : NULL;
        h.action = UNCONST(rule ? rule_action_to_string(rule->action) : "none");
        h.result = result;
        h.duration_ms = -1;
        r = store_history_add(st->store, &h, &hid);
        if (r < 0)
                return r;

        if (rule && rule->action != ACTION_NONE && !skip) {
                PendingAction a = {
                        .created = now,
                        .uid = lu->uid,
                        .user = UNCONST(user),
                        .rule = rule->name,
                        .action = UNCONST(rule_action_to_string(rule->action)),
                        .sessions = UNCONST(session_scope_to_string(rule->sessions)),
                        .reset = rule->reset,
                        .workflow = rule->workflow,
                        .jti = UNCONST(set->jti),
                        .txn = set_txn(set),
                        .event_uri = UNCONST(set->event_uri),
                        .detection = h.detection,
                        .issuer = UNCONST(set->iss),
                        .reason = UNCONST(det->reason),
                        .level_before = before,
                        .level_after = after,
                        .claims_json = set->claims_json,
                        .history_id = hid,
                        .warn_usec = rule->action == ACTION_LOGOUT ? rule->warn_usec : 0,
                };

                int64_t id;

                r = store_action_add(st->store, &a, &id);
                if (r < 0)
                        return r;
                if (rule->action == ACTION_WORKFLOW)
                        q->hooks = true;
                else
                        q->logind = true;
                /* Immediate: logind may be asked before the commit is durable. */
                if ((rule->action == ACTION_LOGOUT || rule->action == ACTION_LOCK) &&
                    a.warn_usec == 0 && q->n_early < EARLY_ACTIONS_MAX)
                        q->early[q->n_early++] = (EarlyAction) {
                                .id = id,
                                .uid = lu->uid,
                                .lock = rule->action == ACTION_LOCK,
                                .scope = rule->sessions,
                        };
        }
        log_risk(user, set, h.detection, before, after, rule, result);
        if (skip)
                log_info("Rule %s: %s for '%s' %s", rule->name, h.action, user, result);
        return 0;
}

static bool rules_need_groups(const Config *c) {
        for (size_t i = 0; i < c->n_rules; i++)
                for (char **g = c->rules[i].groups; g && *g; g++)
                        if (!streq(*g, "*"))
                                return true;
        return false;
}

/* Whether a rule names the detection in its detections (what a detection at level none runs). */
static bool rules_name(const Config *c, const char *detection) {
        for (size_t i = 0; i < c->n_rules; i++)
                for (char **d = c->rules[i].detections; d && *d; d++)
                        if (event_name_covers(*d, detection))
                                return true;
        return false;
}

/* One local user a SET applies to, as root derived it. */
typedef struct Target {
        LocalUser user;
        const char *protected_why; /* points into why when the account is never acted upon */
        char why[200];
        char **groups;             /* for rules with groups; NULL otherwise */
        bool stale;                /* its level or lapse time moved: PAM's copies must follow */
} Target;

/* What root derives from a subject record: the detection, from its own event table, and the
 * local users, through NSS. */
typedef struct Derived {
        Detection det;
        char reason_user[SSF_REASON_USER_SIZE]; /* sanitised, "" when none */
        Target *targets;
        size_t n_targets;
        char *subject_desc; /* "email alice@example.com", or why nothing maps */
        char *not_here;     /* device_scope = this-host: why the subject is not this host's */
} Derived;

static void derived_done(Derived *d) {
        for (size_t i = 0; i < d->n_targets; i++)
                strv_free(d->targets[i].groups);
        free(d->targets);
        free(d->subject_desc);
        free(d->not_here);
        *d = (Derived){};
}

static int refuse(SetError *err, const char *fmt, ...) _printf_(2, 3);
static int refuse(SetError *err, const char *fmt, ...) {
        va_list ap;

        err->err = "invalid_request";
        va_start(ap, fmt);
        (void) vsnprintf(err->description, sizeof(err->description), fmt, ap);
        va_end(ap);
        return -EBADMSG;
}

/* The record's times against root's own clock and limits (PRODUCT.md "Limits"): nothing from
 * the future beyond max_clock_skew (an event_time there would make every later event stale), and
 * no SET older than max_event_age (its jti may be gone from the replay cache). Checked before
 * the replay check. */
static int check_times(const Config *c, const IngestRequest *set, uint64_t now, SetError *err) {
        uint64_t skew = c->max_clock_skew_usec / 1000000u, age = c->max_event_age_usec / 1000000u;

        if (set->iat > now + skew)
                return refuse(err, "iat is in the future beyond max_clock_skew");
        if (set->event_time > now + skew)
                return refuse(err, "the event time is in the future beyond max_clock_skew");
        if (age > 0 && set->iat + age < now)
                return refuse(err, "the SET was issued more than max_event_age ago");
        return 0;
}

/* Classifies the event and maps the subject to local users, canonical and deduplicated by uid,
 * each marked protected or not. NSS (and LDAP or sssd behind it) is asked here, before the lock
 * PAM waits on. Returns 0, -EBADMSG with *err filled when the SET is at fault, or another
 * -errno for a local failure (the SET is delivered again). */
static int derive(const Config *c, const IngestRequest *set, Derived *ret, SetError *err) {
        _cleanup_(subject_match_done) SubjectMatch m = {};
        Derived d = {};
        size_t n;
        int r;

        r = risk_classify(set->event_uri, set->event, c, &d.det);
        if (r < 0)
                return refuse(err, "the %s event payload is invalid", event_short_name(set->event_uri));
        pick_reason_user(set->event, d.reason_user, sizeof(d.reason_user));
        if (d.det.effect == DETECTION_IGNORE) {
                *ret = d;
                return 0;
        }

        r = subject_resolve_critical(c, set->subject, set->critical, &m);
        if (r == -EBADMSG)
                return refuse(err, "the subject identifier is invalid");
        if (r < 0)
                return log_error_errno(r, "Cannot map the subject of SET '%s': %m", set->jti);
        if (m.discarded)
                log_warning("SET '%s' is discarded, not applied: %s (SSF 1.0 §3.6)", set->jti,
                            m.description);
        n = strv_length(m.users);
        if (n > ENGINE_MAX_USERS && !m.host_wide)
                return refuse(err, "the subject maps to %zu local users, more than %u", n,
                              ENGINE_MAX_USERS);

        d.targets = calloc(MAX(n, (size_t) 1), sizeof(Target));
        if (!d.targets)
                return -ENOMEM;
        for (char **u = m.users; u && *u; u++) {
                Target t = {};
                bool dup = false;

                r = local_user_resolve(*u, &t.user);
                if (r == -ESRCH || r == -EINVAL) {
                        log_debug("SET '%s': no local user '%s' any more, skipped", set->jti, *u);
                        continue;
                }
                if (r < 0) {
                        derived_done(&d);
                        return log_error_errno(r, "Cannot look up user '%s': %m", *u);
                }
                for (size_t i = 0; i < d.n_targets; i++)
                        if (d.targets[i].user.uid == t.user.uid)
                                dup = true;
                if (dup)
                        continue;
                t.protected_why = local_user_protected(c, &t.user, t.why, sizeof(t.why));
                /* Group lookups may go to LDAP or sssd: never while holding the lock PAM
                 * waits on. */
                if (!t.protected_why && !m.not_here &&
                    (d.det.effect == DETECTION_RAISE ||
                     (d.det.explicit_only && rules_name(c, d.det.name))) &&
                    rules_need_groups(c)) {
                        t.groups = policy_user_groups(t.user.name);
                        if (!t.groups)
                                t.groups = calloc(1, sizeof(char *)); /* unknown: no groups */
                        if (!t.groups) {
                                derived_done(&d);
                                return -ENOMEM;
                        }
                }
                d.targets[d.n_targets] = t;
                /* protected_why points into why: into the copy's own, now. */
                if (t.protected_why)
                        d.targets[d.n_targets].protected_why = d.targets[d.n_targets].why;
                d.n_targets++;
        }
        d.subject_desc = TAKE_PTR(m.description);
        d.not_here = TAKE_PTR(m.not_here);
        *ret = d;
        return 0;
}

/* A subject event for a protected account: recorded, never acted upon. */
static int record_protected(State *st, const IngestRequest *set, const Detection *det,
                            const Target *t, uint64_t now) {
        HistoryEntry h = {
                .time = now,
                .user = UNCONST(t->user.name),
                .uid = t->user.uid,
                .jti = UNCONST(set->jti), .transmitter = UNCONST(set->transmitter),
                .txn = set_txn(set),
                .event = UNCONST(event_short_name(set->event_uri)),
                .detection = UNCONST(det->effect == DETECTION_CLEAR ? det->clears : det->name),
                .level_before = RISK_NONE,
                .level_after = RISK_NONE,
                .action = UNCONST("none"),
                .result = UNCONST(t->protected_why),
                .duration_ms = -1,
        };

        log_notice("SET '%s' (%s) names '%s', which is never acted upon: %s", set->jti,
                   h.detection, t->user.name, t->protected_why);
        return store_history_add(st->store, &h, NULL);
}

/* [subjects] device_scope = this-host and a subject naming the user with another device: recorded
 * as not applying to this host, the user's level as it is. */
static int record_not_here(State *st, const IngestRequest *set, const Detection *det,
                           const Target *t, const char *why, uint64_t now) {
        RiskLevel level;
        char result[600];
        int r;

        r = store_user_level(st->store, t->user.uid, now, &level, NULL);
        if (r < 0)
                return r;
        F(result, "not this host: %s", why);
        HistoryEntry h = {
                .time = now,
                .user = UNCONST(t->user.name),
                .uid = t->user.uid,
                .jti = UNCONST(set->jti),
                .txn = set_txn(set),
                .event = UNCONST(event_short_name(set->event_uri)),
                .detection = UNCONST(det->effect == DETECTION_CLEAR ? det->clears : det->name),
                .level_before = level,
                .level_after = level,
                .action = UNCONST("none"),
                .result = result,
                .duration_ms = -1,
        };

        log_info("SET '%s' (%s) for '%s' does not apply to this host: %s", set->jti, h.detection,
                 t->user.name, why);
        return store_history_add(st->store, &h, NULL);
}

/* The replay cache keeps every jti younger than max_event_age, so a flood of distinct jtis could
 * grow it without end: past replay_cache_max, a new SET is deferred (a local failure: the worker
 * leaves it unacknowledged, push answers 503) until older jtis age out, never dropped. Logged
 * once a minute. Call with lock held, after the SET's jti was added. */
#define DEFER_LOG_INTERVAL_SEC 60u

static int replay_cache_full(State *st, const Config *c, uint64_t now) {
        static uint64_t warned, deferred;
        uint64_t n = store_jti_count(st->store);

        if (c->replay_cache_max == 0 || n <= c->replay_cache_max)
                return 0;
        deferred++;
        if (warned == 0 || now >= warned + DEFER_LOG_INTERVAL_SEC || now < warned) {
                log_warning("The replay cache holds %" PRIu64 " jtis, more than replay_cache_max "
                            "(%u): deferring new SETs (%" PRIu64 " so far) until jtis older than "
                            "max_event_age can be dropped", n - 1, c->replay_cache_max, deferred);
                warned = now;
        }
        return -EBUSY;
}

/* After the commit: what PAM is answered from, for the targets whose level moved. */
static int publish_changed(State *st, const Config *c, const Derived *d, size_t n_d) {
        _cleanup_free_ uid_t *uids = NULL;
        size_t n = 0;

        for (size_t k = 0; k < n_d; k++)
                for (size_t i = 0; i < d[k].n_targets; i++)
                        if (d[k].targets[i].stale)
                                n++;
        if (n == 0)
                return 0;
        uids = calloc(n, sizeof(uid_t));
        if (!uids)
                return -ENOMEM;
        n = 0;
        for (size_t k = 0; k < n_d; k++)
                for (size_t i = 0; i < d[k].n_targets; i++)
                        if (d[k].targets[i].stale)
                                uids[n++] = d[k].targets[i].user.uid;
        return state_levels_changed_locked(st, c, uids, n);
}

/* The checks and derivations done before taking the lock: logs the SET's arrival. Returns 0 with
 * *d filled (for a subject SET), or the error engine_apply() returns. */
static int prepare(State *st, const Config *c, const IngestRequest *set, uint64_t now, Derived *d,
                   SetError *err) {
        char f_jti[300], f_event[200], f_iss[512], msg[600];
        int r;

        F(f_jti, "SSF_JTI=%s", set->jti);
        F(f_event, "SSF_EVENT=%s", set->event_uri);
        F(f_iss, "SSF_ISS=%s", set->iss);
        F(msg, "Received %s (jti %s) from '%s'", event_short_name(set->event_uri), set->jti,
          set->iss);
        log_struct(LOG_INFO, SSF_MESSAGE_SET_RECEIVED, msg, f_jti, f_event, f_iss, NULL);

        r = check_transmitter(st, c, set, err);
        if (r >= 0)
                r = check_times(c, set, now, err);
        if (r >= 0 && set->kind == INGEST_SUBJECT)
                r = derive(c, set, d, err);
        if (r == -EBADMSG)
                log_warning("SET '%s' refused: %s", set->jti, err->description);
        return r;
}

/* Everything one SET changes in the open transaction. On failure the caller undoes it. Call
 * with lock held. */
static int apply_locked(State *st, const Config *c, const IngestRequest *set, Derived *d,
                        uint64_t now, SetError *err, Enqueued *q) {
        bool stream_event = set->kind != INGEST_SUBJECT;
        int r;

        r = store_jti_insert(st->store, set->jti, set->iss, set->event_uri, set->iat, now);
        if (r == -EALREADY) {
                st->counters.sets_duplicate++;
                {
                        TransmitterState *ts = state_transmitter(st, set->transmitter);
                        if (ts)
                                ts->counters.sets_duplicate++;
                }
                log_info("SET '%s' was received before, acknowledging it again", set->jti);
                return r;
        }
        if (r < 0)
                return r;
        r = replay_cache_full(st, c, now);
        if (r < 0)
                return r;

        if (stream_event)
                return ingest_stream_event(st, set, err);
        if (d->det.effect == DETECTION_IGNORE) {
                HistoryEntry hh = {
                        .time = now, .jti = UNCONST(set->jti), .txn = set_txn(set),
                        .transmitter = UNCONST(set->transmitter),
                        .event = UNCONST(event_short_name(set->event_uri)),
                        .action = UNCONST("none"), .result = UNCONST("ignored: not a risk signal"),
                        .duration_ms = -1, .uid = -1,
                };
                return store_history_add(st->store, &hh, NULL);
        }
        if (d->n_targets == 0) {
                char res[512];
                HistoryEntry hh = {
                        .time = now, .jti = UNCONST(set->jti), .txn = set_txn(set),
                        .transmitter = UNCONST(set->transmitter),
                        .event = UNCONST(event_short_name(set->event_uri)),
                        .detection = UNCONST(d->det.name), .action = UNCONST("none"), .result = res,
                        .duration_ms = -1, .uid = -1,
                };

                F(res, "unmapped: %s", d->subject_desc ? d->subject_desc : "no subject");
                st->counters.subjects_unmapped++;
                log_info("SET '%s' names no local user (%s), recorded only", set->jti,
                         d->subject_desc ? d->subject_desc : "no subject");
                return store_history_add(st->store, &hh, NULL);
        }
        r = 0;
        for (size_t i = 0; i < d->n_targets && r >= 0; i++)
                r = d->targets[i].protected_why
                        ? record_protected(st, set, &d->det, &d->targets[i], now)
                        : d->not_here
                        ? record_not_here(st, set, &d->det, &d->targets[i], d->not_here, now)
                        : ingest_user(st, c, set, &d->det, d->reason_user, d->targets[i].groups,
                                      &d->targets[i].user, now, &d->targets[i].stale, q);
        return r;
}

int engine_apply(State *st, const IngestRequest *set, SetError *err) {
        int r;

        engine_apply_batch(st, &set, 1, err, &r);
        return r;
}

void engine_apply_batch(State *st, const IngestRequest *const *sets, size_t n, SetError *errs,
                        int *ret) {
        ConfigHandle *h;
        const Config *c;
        _cleanup_free_ Derived *d = NULL;
        _cleanup_free_ Enqueued *q = NULL;
        uint64_t now = now_sec();
        size_t pending = 0, early = 0;
        int r;

        if (n == 0)
                return;
        h = state_config_ref(st);
        c = h->config;
        d = calloc(n, sizeof(Derived));
        q = calloc(1, sizeof(Enqueued));
        /* The batch is one moment of the passwd database: each account NSS is asked about once
         * (subject mapping, target, protect list), not once per SET and step. */
        local_user_cache_begin();
        for (size_t i = 0; i < n; i++) {
                memset(&errs[i], 0, sizeof(errs[i]));
                ret[i] = d && q ? prepare(st, c, sets[i], now, &d[i], &errs[i]) : -ENOMEM;
                if (ret[i] >= 0) {
                        ret[i] = 1; /* to be applied */
                        pending++;
                }
        }
        local_user_cache_end();
        if (pending == 0)
                goto out;

        /* One transaction, so one synced commit, for the whole batch; each SET in a savepoint of
         * its own, so that one that fails leaves the others. None is acknowledged before the
         * commit: the caller answers after this returns. */
        pthread_mutex_lock(&st->lock);
        r = store_begin(st->store);
        for (size_t i = 0; i < n && r >= 0; i++) {
                size_t early_before = q->n_early;
                int k;

                if (ret[i] != 1)
                        continue;
                r = n > 1 ? store_savepoint(st->store) : 0;
                if (r < 0)
                        break;
                k = apply_locked(st, c, sets[i], &d[i], now, &errs[i], q);
                if (k < 0)
                        q->n_early = early_before; /* undone with the SET */
                if (k < 0 && n > 1)
                        r = store_savepoint_rollback(st->store);
                else if (n > 1)
                        r = store_savepoint_release(st->store);
                ret[i] = k < 0 ? k : 2; /* 2: committed with the batch */
                if (k < 0)
                        for (size_t j = 0; j < d[i].n_targets; j++)
                                d[i].targets[j].stale = false;
        }
        if (r >= 0 && n == 1 && ret[0] < 0)
                r = ret[0]; /* a single SET: nothing to commit */
        /* The immediate logouts go to logind while the commit syncs. Only the commit's outcome
         * lets the lane record them: the SETs are acknowledged after it, as before. */
        if (r >= 0)
                early = state_early_hand_locked(st, q->early, q->n_early);
        if (r >= 0)
                r = store_commit(st->store);
        if (early > 0)
                state_early_settle_locked(st, r >= 0);
        if (r < 0) {
                (void) store_rollback(st->store);
                for (size_t i = 0; i < n; i++)
                        if (ret[i] == 1 || ret[i] == 2)
                                ret[i] = r;
        } else {
                /* Only the accounts whose level or lapse time moved: not for repeats, stream
                 * events, unmapped subjects or records without risk. */
                (void) publish_changed(st, c, d, n);
                state_kick_actions_locked(st, q->logind, q->hooks);
        }
        pthread_mutex_unlock(&st->lock);
        for (size_t i = 0; i < n; i++)
                if (ret[i] == 1 || ret[i] == 2)
                        ret[i] = 0;

out:
        for (size_t i = 0; d && i < n; i++)
                derived_done(&d[i]);
        state_config_unref(st, h);
}

static int admin_change(State *st, const LocalUser *lu, bool reset, RiskLevel level,
                        const char *reason, RiskLevel *ret_before) {
        const char *user = lu->name;
        ConfigHandle *h = state_config_ref(st);
        uint64_t now = now_sec();
        RiskLevel before, after;
        char result[300];
        int r;

        pthread_mutex_lock(&st->lock);
        r = store_begin(st->store);
        if (r < 0)
                goto out;
        r = store_user_level(st->store, lu->uid, now, &before, NULL);
        if (r >= 0)
                r = store_user_reset(st->store, lu->uid);
        if (r >= 0 && !reset && level > RISK_NONE) {
                StoreDetection d = {
                        .uid = lu->uid,
                        .detection = UNCONST("manual"),
                        .level = level,
                        .since = now,
                        .updated = now,
                        .expires = h->config->ttl_usec ? now + h->config->ttl_usec / 1000000u : 0,
                        .event_time = now,
                        .reason = UNCONST(reason),
                };
                r = store_detection_put(st->store, &d);
        }
        if (r >= 0)
                r = store_user_level(st->store, lu->uid, now, &after, NULL);
        if (r >= 0) {
                HistoryEntry e = {
                        .time = now,
                        .user = UNCONST(user),
                        .uid = lu->uid,
                        .event = UNCONST(reset ? "reset" : "set-risk"),
                        .detection = UNCONST(reset ? NULL : "manual"),
                        .level_before = before,
                        .level_after = after,
                        .action = UNCONST(reset ? "reset" : "set-risk"),
                        .result = result,
                        .duration_ms = -1,
                };
                F(result, "ok%s%s", reason ? ": " : "", reason ? reason : "");
                r = store_history_add(st->store, &e, NULL);
        }
        if (r >= 0)
                r = store_commit(st->store);
        if (r < 0) {
                (void) store_rollback(st->store);
                goto out;
        }
        (void) state_levels_changed_locked(st, h->config, &lu->uid, 1);
        {
                char msg[400], f_user[300], f_lvl[64], f_prev[64], f_action[64];
                F(msg, "Risk of '%s' %s → %s by %s", user, level_str(before), level_str(after),
                  reset ? "ssfctl reset" : "ssfctl set-risk");
                F(f_user, "SSF_USER=%s", user);
                F(f_lvl, "SSF_LEVEL=%s", level_str(after));
                F(f_prev, "SSF_PREVIOUS_LEVEL=%s", level_str(before));
                F(f_action, "SSF_ACTION=%s", reset ? "reset" : "set-risk");
                log_struct(LOG_NOTICE, SSF_MESSAGE_RISK_CHANGED, msg, f_user, f_lvl, f_prev,
                           f_action, NULL);
        }
        if (ret_before)
                *ret_before = before;
out:
        pthread_mutex_unlock(&st->lock);
        state_config_unref(st, h);
        return r;
}

int engine_reset_user(State *st, const LocalUser *user, const char *why, RiskLevel *ret_before) {
        return admin_change(st, user, true, RISK_NONE, why, ret_before);
}

int engine_set_risk(State *st, const LocalUser *user, RiskLevel level, const char *reason,
                    RiskLevel *ret_before) {
        return admin_change(st, user, false, level, reason, ret_before);
}
