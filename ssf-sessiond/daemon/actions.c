/* SPDX-License-Identifier: MIT */
/*
 * The actions (actions.h): a logind lane and a hook lane that run the pending logouts and
 * workflow hooks the engine committed, and record each result. Runs in the root daemon.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <pwd.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "actions.h"
#include "engine.h"
#include "hooks.h"
#include "log.h"
#include "logind.h"
#include "macro.h"
#include "reason-user.h"
#include "ttywarn.h"

#define F(buf, ...) (void) snprintf(buf, sizeof(buf), __VA_ARGS__)

static uint64_t mono_msec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static uint64_t realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static SessionScope scope_from_string(const char *s) {
        if (streq_ptr(s, "remote"))
                return SESSIONS_REMOTE;
        if (streq_ptr(s, "local"))
                return SESSIONS_LOCAL;
        if (streq_ptr(s, "graphical"))
                return SESSIONS_GRAPHICAL;
        return SESSIONS_ALL;
}

/* Appends to a logout's result that it came after a warning. */
static void summary_after_warning(char *result, size_t size, const PendingAction *a) {
        size_t l = strnlen(result, size);

        if (l + 1 < size)
                (void) snprintf(result + l, size - l, " (after a %" PRIu64 " s warning)",
                                (a->warn_usec + 999999u) / 1000000u);
}

/* logout: TerminateSession; lock: LockSession (ends nothing); the sessions of uid in scope.
 * Writes "ok: …" or "failed: …" into result. */
static int ask_logind(sd_bus **bus, uid_t uid, bool lock, SessionScope scope, char *result,
                      size_t size) {
        LogoutResult lr = {};
        int r;

        if (!*bus) {
                r = logind_open(bus);
                if (r < 0) {
                        snprintf(result, size, "failed: cannot connect to the system bus: %s",
                                 strerror(-r));
                        return r;
                }
        }
        r = (lock ? logind_lock_user : logind_logout_user)(*bus, uid, scope, &lr);
        if (r < 0) {
                snprintf(result, size, "failed: %s", lr.summary[0] ? lr.summary : strerror(-r));
                /* A broken connection is reopened next time. */
                *bus = sd_bus_flush_close_unref(*bus);
                return r;
        }
        snprintf(result, size, "ok: %s", lr.summary);
        return 0;
}

static int run_logout(sd_bus **bus, const PendingAction *a, char *result, size_t size) {
        /* uid: the account root resolved when it committed the action. */
        int r = ask_logind(bus, a->uid, streq_ptr(a->action, "lock"), scope_from_string(a->sessions),
                           result, size);

        if (r >= 0 && a->due_usec > 0)
                summary_after_warning(result, size, a);
        return r;
}

static int run_workflow(State *st, const PendingAction *a, char *result, size_t size) {
        ConfigHandle *h = state_config_ref(st);
        const Config *c = h->config;
        HookResult hr = {};
        HookFacts f = {
                .user = a->user,
                .uid = a->uid,
                .risk_level = risk_level_to_string(a->level_after),
                .previous_risk_level = risk_level_to_string(a->level_before),
                .detection = a->detection,
                .event_type = a->event_uri,
                .jti = a->jti,
                .issuer = a->issuer,
                .rule = a->rule,
                .reason = a->reason,
                .txn = a->txn,
                .claims_json = a->claims_json,
        };
        int r;

        r = hooks_check(c->hooks_dir, a->workflow);
        if (r < 0) {
                snprintf(result, size, "failed: hook '%s/%s' is unsafe or missing: %s",
                         c->hooks_dir, strempty(a->workflow), strerror(-r));
                goto out;
        }
        r = hooks_run_cancellable(c->hooks_dir, a->workflow, c->hooks_user, c->hooks_timeout_usec,
                                  st->cancel_fd, &f, &hr);
        if (r < 0) {
                snprintf(result, size, "failed: cannot run hook '%s': %s", a->workflow,
                         strerror(-r));
                goto out;
        }
        if (hr.cancelled) {
                snprintf(result, size, "interrupted by shutdown: %s", hr.summary);
                r = -ECANCELED;
        } else if (hr.exit_status != 0 || hr.timed_out) {
                snprintf(result, size, "failed: %s", hr.summary);
                r = -EIO;
        } else
                snprintf(result, size, "ok: %s", hr.summary);
out:
        state_config_unref(st, h);
        return r;
}

static void log_action(const PendingAction *a, const char *result, int r) {
        char msg[2048], f_user[300], f_rule[300], f_action[64], f_jti[300], f_result[1600];

        F(msg, "Rule %s: %s for '%s' %s", a->rule, a->action, a->user, result);
        F(f_user, "SSF_USER=%s", a->user);
        F(f_rule, "SSF_RULE=%s", a->rule);
        F(f_action, "SSF_ACTION=%s", a->action);
        F(f_jti, "SSF_JTI=%s", strempty(a->jti));
        F(f_result, "SSF_RESULT=%s", result);
        log_struct(r < 0 ? LOG_ERR : LOG_NOTICE, SSF_MESSAGE_ACTION, msg, f_user, f_rule,
                   f_action, f_jti, f_result, NULL);
}

typedef struct Unrecorded {
        int64_t id, history_id, duration_ms;
        char *result;
} Unrecorded;

typedef struct HookSlot {
        bool busy;
        int64_t id;
        char *user;
} HookSlot;

struct Actions {
        State *st;
        pthread_t logind_thread;
        bool logind_started;
        pthread_t hook_threads[ACTIONS_HOOK_WORKERS];
        bool hook_running[ACTIONS_HOOK_WORKERS]; /* started and not joined */
        size_t n_hook_threads;

        /* Guarded by st->lock: */
        PendingAction *queue;  /* workflow actions loaded and not started yet, in commit order */
        size_t n_queue;
        uint64_t hook_loaded;  /* the kick the queue was loaded at */
        bool hook_reload;      /* load again (a periodic retry) */
        HookSlot slots[ACTIONS_HOOK_WORKERS];
        /* Finished, but the store refused the result: never run again, recording retried. */
        Unrecorded *unrecorded;
        size_t n_unrecorded;
};

static bool is_hook_action(const PendingAction *a) {
        return streq_ptr(a->action, "workflow");
}

static bool is_unrecorded_locked(const Actions *x, int64_t id) {
        for (size_t i = 0; i < x->n_unrecorded; i++)
                if (x->unrecorded[i].id == id)
                        return true;
        return false;
}

static bool is_running_locked(const Actions *x, int64_t id) {
        for (size_t i = 0; i < ACTIONS_HOOK_WORKERS; i++)
                if (x->slots[i].busy && x->slots[i].id == id)
                        return true;
        return false;
}

/* Writes a finished action's result (with lock held). */
static int record_locked(State *st, int64_t id, int64_t history_id, const char *result,
                         int64_t duration_ms) {
        int r;

        r = store_begin(st->store);
        if (r < 0)
                return r;
        if ((r = store_action_finish(st->store, id, result)) < 0 ||
            (r = store_history_update_result(st->store, history_id, result, duration_ms)) < 0 ||
            (r = store_commit(st->store)) < 0) {
                (void) store_rollback(st->store);
                return r;
        }
        return 0;
}

/* Retries recording what could not be recorded before (with lock held). */
static void record_retry_locked(Actions *x) {
        size_t k = 0;

        for (size_t i = 0; i < x->n_unrecorded; i++) {
                Unrecorded *u = &x->unrecorded[i];

                if (record_locked(x->st, u->id, u->history_id, u->result, u->duration_ms) >= 0) {
                        log_info("Recorded the result of action %" PRIi64 " at last", u->id);
                        free(u->result);
                } else
                        x->unrecorded[k++] = *u;
        }
        x->n_unrecorded = k;
}

/* Pending actions of one lane (hooks or not), except those taken already (with lock held). */
static int load_pending_locked(Actions *x, bool hooks, PendingAction **ret, size_t *ret_n) {
        PendingAction *list = NULL;
        size_t n = 0, k = 0;
        int r;

        record_retry_locked(x);
        r = store_action_list_pending(x->st->store, &list, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (is_hook_action(&list[i]) != hooks || is_unrecorded_locked(x, list[i].id) ||
                    (hooks && is_running_locked(x, list[i].id))) {
                        pending_action_done(&list[i]);
                        continue;
                }
                if (k != i)
                        list[k] = list[i];
                k++;
        }
        *ret = list;
        *ret_n = k;
        return 0;
}

/* Runs a and records its result; with early (the logind lane asked logind for a while its
 * commit synced), records that result instead of running it again. */
static void run_one(Actions *x, sd_bus **bus, const PendingAction *a, const EarlyAction *early) {
        State *st = x->st;
        char result[1500];
        uint64_t start = mono_msec();
        int64_t duration;
        int r;

        if (early) {
                snprintf(result, sizeof(result), "%s", early->result);
                r = early->r;
        } else if (is_hook_action(a))
                r = run_workflow(st, a, result, sizeof(result));
        else if (streq_ptr(a->action, "logout") || streq_ptr(a->action, "lock"))
                r = run_logout(bus, a, result, sizeof(result));
        else {
                snprintf(result, sizeof(result), "failed: unknown action '%s'", strempty(a->action));
                r = -EINVAL;
        }
        log_action(a, result, r);
        if (r == -ECANCELED)
                return; /* stays pending: it runs again, whole, at the next start */

        duration = early ? early->duration_ms : (int64_t) (mono_msec() - start);
        pthread_mutex_lock(&st->lock);
        if (record_locked(st, a->id, a->history_id, result, duration) < 0) {
                Unrecorded *u = reallocarray(x->unrecorded, x->n_unrecorded + 1, sizeof(Unrecorded));
                char *copy = strdup(result);

                log_error("Cannot record the result of action %" PRIi64 "; it is not run again, "
                          "recording is retried", a->id);
                if (u)
                        x->unrecorded = u;
                if (u && copy)
                        x->unrecorded[x->n_unrecorded++] = (Unrecorded) {
                                .id = a->id, .history_id = a->history_id,
                                .duration_ms = duration, .result = copy,
                        };
                else
                        free(copy);
        }
        if (r < 0)
                st->counters.actions_failed++;
        else if (streq(a->action, "logout") || streq(a->action, "lock"))
                st->counters.actions_logout++;
        else
                st->counters.actions_workflow++;
        pthread_mutex_unlock(&st->lock);

        /* reset = yes: her risk is cleared once the logout succeeded. */
        if (r >= 0 && a->reset && streq(a->action, "logout")) {
                char why[400];
                F(why, "after logout by rule %s", a->rule);
                LocalUser u;

                (void) local_user_from_uid(a->uid, &u);
                (void) engine_reset_user(st, &u, why, NULL);
        }
}

/* A logout with warn = DURATION whose terminals were not warned yet. */
static bool needs_warning(const PendingAction *a) {
        return streq_ptr(a->action, "logout") && a->warn_usec > 0 && a->due_usec == 0;
}

/* Writes the warning to the terminal of each of a's sessions in scope; sessions without a
 * terminal are skipped. Bounded: one listing through logind (D-Bus call timeouts) and at most
 * TTYWARN_WRITE_TIMEOUT_USEC per terminal. Describes what it did in summary. */
static void warn_terminals(State *st, sd_bus **bus, const PendingAction *a, char *summary,
                           size_t size) {
        /* The CAEP reason_user of the SET that set the user's level ends the warning
         * (PRODUCT.md "Actions"): from the published level table, as PAM's denial has it. */
        char reason_user[SSF_REASON_USER_SIZE] = "";
        LogindSession *sessions = NULL;
        char msg[TTYWARN_MESSAGE_MAX], host[256] = "", done[300] = "", failed[300] = "";
        unsigned matched = 0, warned = 0, no_tty = 0, n_failed = 0;
        size_t n = 0, len;
        int r;

        if (!*bus && (r = logind_open(bus)) < 0) {
                snprintf(summary, size, "no warning: cannot connect to the system bus: %s", strerror(-r));
                return;
        }
        r = logind_list_user_sessions(*bus, a->uid, &sessions, &n);
        if (r < 0) {
                snprintf(summary, size, "no warning: listing sessions failed: %s", strerror(-r));
                *bus = sd_bus_flush_close_unref(*bus);
                return;
        }
        if (gethostname(host, sizeof(host) - 1) < 0)
                host[0] = '\0';
        {
                RiskLevel level;

                (void) state_levels_lookup(st, a->uid, realtime_usec() / 1000000u, &level, NULL, 0,
                                           reason_user, sizeof(reason_user));
        }
        len = ttywarn_format(msg, sizeof(msg), host, realtime_usec(), a->detection, a->warn_usec,
                             reason_user[0] ? reason_user : NULL);

        for (size_t i = 0; i < n; i++) {
                const LogindSession *s = &sessions[i];
                char *list;
                size_t l;

                if (!logind_session_in_scope(s, scope_from_string(a->sessions)))
                        continue;
                matched++;
                if (isempty(s->tty)) {
                        no_tty++;
                        continue;
                }
                r = ttywarn_write(s->tty, a->uid, msg, len, TTYWARN_WRITE_TIMEOUT_USEC);
                if (r < 0) {
                        n_failed++;
                        log_debug("Cannot warn session '%s' on '%s': %s", s->id, s->tty, strerror(-r));
                }
                list = r < 0 ? failed : done;
                l = strlen(list);
                if (l + 1 < sizeof(done))
                        (void) snprintf(list + l, sizeof(done) - l, "%s%s (%s%s%s)", l ? ", " : "",
                                        s->id, s->tty, r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
                if (r >= 0)
                        warned++;
        }
        logind_sessions_free(sessions, n);

        snprintf(summary, size, "warned %u of %u session%s%s%s", warned, matched, matched == 1 ? "" : "s",
                 warned ? ": " : "", done);
        len = strlen(summary);
        if (no_tty && len + 1 < size)
                len += (size_t) snprintf(summary + len, size - len, "; %u without a terminal", no_tty);
        len = strnlen(summary, size);
        if (n_failed && len + 1 < size)
                (void) snprintf(summary + len, size - len, "; not written: %s", failed);
}

/* Warns a's terminals and records when its logout is due: the due time first (so that a restart
 * during the wait neither warns again nor logs out early), then the warning. Returns 0, or
 * -errno when the due time could not be recorded (nothing written then: tried again later). */
static int warn_before_logout(Actions *x, sd_bus **bus, PendingAction *a) {
        State *st = x->st;
        uint64_t due = realtime_usec() + a->warn_usec;
        char summary[700], result[900], f_user[300], f_rule[300], f_result[1000], msg[1200];
        time_t t = (time_t) (due / 1000000u);
        char when[64] = "";
        struct tm tm;
        int r;

        pthread_mutex_lock(&st->lock);
        r = store_action_set_due(st->store, a->id, due);
        pthread_mutex_unlock(&st->lock);
        if (r < 0) {
                log_error("Rule %s: cannot record the warned logout of '%s': %s; warning later",
                          a->rule, a->user, strerror(-r));
                return r;
        }
        a->due_usec = due;

        warn_terminals(st, bus, a, summary, sizeof(summary));

        if (gmtime_r(&t, &tm))
                (void) strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
        F(result, "pending: %s; logout due at %s", summary, when);
        F(msg, "Rule %s: logout of '%s' in %" PRIu64 " s: %s", a->rule, a->user,
          (a->warn_usec + 999999u) / 1000000u, summary);
        F(f_user, "SSF_USER=%s", a->user);
        F(f_rule, "SSF_RULE=%s", a->rule);
        F(f_result, "SSF_RESULT=%s", result);
        log_struct(LOG_NOTICE, SSF_MESSAGE_ACTION, msg, f_user, f_rule, "SSF_ACTION=warn", f_result, NULL);

        /* What ssfctl history shows during the wait (the final result replaces it). */
        pthread_mutex_lock(&st->lock);
        if (store_history_update_result(st->store, a->history_id, result, -1) < 0)
                log_debug("Cannot record the warning of action %" PRIi64 " in the history", a->id);
        pthread_mutex_unlock(&st->lock);
        return 0;
}

static void timed_wait_locked(State *st, unsigned sec, bool *ret_timed_out) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts); /* the clock of action_cond */
        ts.tv_sec += sec;
        if (pthread_cond_timedwait(&st->action_cond, &st->lock, &ts) == ETIMEDOUT && ret_timed_out)
                *ret_timed_out = true;
}

/* Asks logind for the first immediate action handed over whose commit did not fail and that
 * was not asked for yet, and drops those whose commit failed (with lane_lock held; dropped
 * while asking). Returns whether there was one. */
static bool run_early_lane_locked(State *st, sd_bus **bus) {
        EarlyAction a;
        uint64_t start;
        size_t i, k = 0;
        int r;

        for (i = 0; i < st->n_early; i++) {
                const EarlyAction *e = &st->early[i];

                if (e->outcome != EARLY_ABORTED) {
                        st->early[k++] = *e;
                        continue;
                }
                /* Rare (a full or damaged disk): said here, since nothing records it. */
                if (e->ran)
                        log_notice("The %s of uid %u was asked of logind before its commit "
                                   "failed (%s); it is asked again when its SET comes again",
                                   e->lock ? "lock" : "logout", (unsigned) e->uid, e->result);
        }
        st->n_early = k;
        for (i = 0; i < st->n_early; i++)
                if (!st->early[i].ran)
                        break;
        if (i == st->n_early)
                return false;
        a = st->early[i];
        pthread_mutex_unlock(&st->lane_lock);

        start = mono_msec();
        r = ask_logind(bus, a.uid, a.lock, a.scope, a.result, sizeof(a.result));

        pthread_mutex_lock(&st->lane_lock);
        /* Only this thread removes entries; meanwhile the engine may have appended some and
         * settled outcomes: the first one not run with this id is the one asked for. */
        for (i = 0; i < st->n_early; i++)
                if (!st->early[i].ran && st->early[i].id == a.id && st->early[i].uid == a.uid)
                        break;
        if (i < st->n_early) {
                EarlyAction *e = &st->early[i];

                e->ran = true;
                e->r = r;
                e->duration_ms = (int64_t) (mono_msec() - start);
                memcpy(e->result, a.result, sizeof(e->result));
        }
        return true;
}

/* The immediate action committed as action id for uid (with lane_lock held): taken out of the
 * list into *ret (ret->ran: logind was asked already). Returns false when there is none. */
static bool take_early_locked(State *st, int64_t id, uid_t uid, EarlyAction *ret) {
        for (size_t i = 0; i < st->n_early; i++) {
                EarlyAction *e = &st->early[i];

                if (e->outcome != EARLY_COMMITTED || e->id != id || e->uid != uid)
                        continue;
                *ret = *e;
                memmove(e, e + 1, (st->n_early - i - 1) * sizeof(*e));
                st->n_early--;
                return true;
        }
        return false;
}

/* Waits on lane_cond (with lane_lock) until deadline (CLOCK_MONOTONIC µs); sets *ret_timed_out
 * when it passed. */
static void lane_wait_until_locked(State *st, uint64_t deadline, bool *ret_timed_out) {
        struct timespec ts = {
                .tv_sec = (time_t) (deadline / 1000000u),
                .tv_nsec = (long) (deadline % 1000000u) * 1000,
        };

        if (pthread_cond_timedwait(&st->lane_cond, &st->lane_lock, &ts) == ETIMEDOUT && ret_timed_out)
                *ret_timed_out = true;
}

/* Whether the lane has something to do now (with lane_lock held): an immediate action handed
 * over and not asked for yet, one whose commit failed (to drop), or a kick. */
static bool lane_has_work_locked(const State *st, uint64_t seen) {
        if (st->lane_kick != seen)
                return true;
        for (size_t i = 0; i < st->n_early; i++)
                if (!st->early[i].ran || st->early[i].outcome == EARLY_ABORTED)
                        return true;
        return false;
}

/* The logind lane: every pending action that is not a hook, in commit order. A logout with
 * warn = DURATION warns its terminals when first taken and runs once due; meanwhile the lane
 * goes on with the others and wakes for the earliest due time (the store keeps it, so a
 * restart keeps it too). An immediate logout or lock is handed to the lane before its commit
 * syncs (state.h, EarlyAction): the lane asks logind at once, ahead of what is pending, and
 * records the result once the commit is durable and the action is pending in the store. */
static void *logind_lane(void *userdata) {
        Actions *x = userdata;
        State *st = x->st;
        uint64_t seen = 0, next_due = UINT64_MAX;
        sd_bus *bus = NULL;

        pthread_mutex_lock(&st->lane_lock);
        while (!st->stopping) {
                PendingAction *list = NULL;
                size_t n = 0;
                bool retry = false;
                uint64_t wait_usec = 30 * 1000000ULL, now = realtime_usec(); /* also retries now and then */
                int r;

                if (run_early_lane_locked(st, &bus))
                        continue;
                if (next_due != UINT64_MAX)
                        wait_usec = next_due > now ? MIN(next_due - now, wait_usec) : 0;
                if (wait_usec == 0)
                        retry = true;
                else {
                        uint64_t deadline = mono_msec() * 1000u + wait_usec;
                        while (!lane_has_work_locked(st, seen) && !st->stopping && !retry)
                                lane_wait_until_locked(st, deadline, &retry);
                }
                if (st->stopping)
                        break;
                if (st->lane_kick == seen && !retry)
                        continue; /* an immediate action to ask for (or to drop) first */
                seen = st->lane_kick;
                pthread_mutex_unlock(&st->lane_lock);

                pthread_mutex_lock(&st->lock);
                r = load_pending_locked(x, false, &list, &n);
                pthread_mutex_unlock(&st->lock);
                if (r < 0) {
                        next_due = realtime_usec() + 5 * 1000000ULL; /* the store: again soon */
                        pthread_mutex_lock(&st->lane_lock);
                        continue;
                }

                next_due = UINT64_MAX;
                for (size_t i = 0; i < n && !st->stopping; i++) {
                        PendingAction *a = &list[i];
                        EarlyAction early;
                        bool taken;

                        pthread_mutex_lock(&st->lane_lock);
                        taken = take_early_locked(st, a->id, a->uid, &early);
                        pthread_mutex_unlock(&st->lane_lock);
                        /* An immediate action (no warning, due now) was asked for already, or
                         * was handed over after this lane last looked: then it runs here, as
                         * any pending action. */
                        if (!taken && needs_warning(a) && warn_before_logout(x, &bus, a) < 0) {
                                next_due = MIN(next_due, realtime_usec() + 5 * 1000000ULL);
                                continue;
                        }
                        if (!taken && a->due_usec > realtime_usec()) {
                                next_due = MIN(next_due, a->due_usec);
                                continue; /* not due yet: the others go ahead */
                        }
                        run_one(x, &bus, a, taken && early.ran ? &early : NULL);
                }
                pending_actions_free(list, n);
                pthread_mutex_lock(&st->lane_lock);
        }
        pthread_mutex_unlock(&st->lane_lock);
        sd_bus_flush_close_unref(bus);
        return NULL;
}

/* The first queued hook whose user has none running (with lock held); -1 when there is none. */
static ssize_t hook_pick_locked(const Actions *x) {
        for (size_t i = 0; i < x->n_queue; i++) {
                bool busy = false;

                /* Only a running hook can hold a user back: an earlier queued entry of the same
                 * user would have been picked first. */
                for (size_t s = 0; s < ACTIONS_HOOK_WORKERS && !busy; s++)
                        busy = x->slots[s].busy && streq_ptr(x->slots[s].user, x->queue[i].user);
                if (!busy)
                        return (ssize_t) i;
        }
        return -1;
}

static void hook_queue_free_locked(Actions *x) {
        pending_actions_free(x->queue, x->n_queue);
        x->queue = NULL;
        x->n_queue = 0;
}

/* A worker of the hook lane: takes the next hook that may run now, runs it, and again. */
static void *hook_lane(void *userdata) {
        Actions *x = userdata;
        State *st = x->st;

        /* Hooks are the admin's background work: below logins and logouts, as are their
         * processes (they inherit it). */
        state_thread_background(st, PRIO_HOOK_NICE);
        pthread_mutex_lock(&st->lock);
        while (!st->stopping) {
                PendingAction a;
                HookSlot *slot = NULL;
                ssize_t i;

                if (x->hook_loaded != st->actions_kick || x->hook_reload) {
                        PendingAction *list = NULL;
                        size_t n = 0;

                        x->hook_loaded = st->actions_kick;
                        x->hook_reload = false;
                        if (load_pending_locked(x, true, &list, &n) >= 0) {
                                hook_queue_free_locked(x);
                                x->queue = list;
                                x->n_queue = n;
                        }
                }

                i = hook_pick_locked(x);
                for (size_t s = 0; s < ACTIONS_HOOK_WORKERS && !slot; s++)
                        if (!x->slots[s].busy)
                                slot = &x->slots[s];
                if (i < 0 || !slot) {
                        bool retry = false;

                        timed_wait_locked(st, 30, &retry);
                        if (retry)
                                x->hook_reload = true;
                        continue;
                }

                a = x->queue[i];
                memmove(x->queue + i, x->queue + i + 1, (x->n_queue - (size_t) i - 1) * sizeof(*x->queue));
                x->n_queue--;
                slot->busy = true;
                slot->id = a.id;
                slot->user = a.user;
                pthread_mutex_unlock(&st->lock);

                run_one(x, NULL, &a, NULL);

                pthread_mutex_lock(&st->lock);
                slot->busy = false;
                slot->user = NULL;
                pending_action_done(&a);
                /* The user's next hook may run now, in any worker. */
                pthread_cond_broadcast(&st->action_cond);
        }
        pthread_mutex_unlock(&st->lock);
        return NULL;
}

int actions_start(State *st, Actions **ret) {
        Actions *x;
        int r;

        x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->st = st;
        r = pthread_create(&x->logind_thread, NULL, logind_lane, x);
        if (r != 0)
                goto fail;
        x->logind_started = true;
        for (size_t i = 0; i < ACTIONS_HOOK_WORKERS; i++) {
                r = pthread_create(&x->hook_threads[i], NULL, hook_lane, x);
                if (r != 0)
                        goto fail;
                x->hook_running[i] = true;
                x->n_hook_threads++;
        }
        *ret = x;
        return 0;
fail:
        pthread_mutex_lock(&st->lock);
        state_stop_actions_locked(st);
        pthread_mutex_unlock(&st->lock);
        if (x->logind_started)
                (void) pthread_join(x->logind_thread, NULL);
        for (size_t i = 0; i < x->n_hook_threads; i++)
                (void) pthread_join(x->hook_threads[i], NULL);
        free(x);
        return -r;
}

bool actions_join(Actions *a, const struct timespec *deadline) {
        bool all = true;

        if (!a)
                return true;
        if (a->logind_started) {
                if (pthread_timedjoin_np(a->logind_thread, NULL, deadline) == 0)
                        a->logind_started = false;
                else
                        all = false;
        }
        for (size_t i = 0; i < a->n_hook_threads; i++) {
                if (!a->hook_running[i])
                        continue;
                if (pthread_timedjoin_np(a->hook_threads[i], NULL, deadline) == 0)
                        a->hook_running[i] = false;
                else
                        all = false;
        }
        return all;
}

Actions *actions_free(Actions *a) {
        if (!a)
                return NULL;
        pending_actions_free(a->queue, a->n_queue);
        for (size_t i = 0; i < a->n_unrecorded; i++)
                free(a->unrecorded[i].result);
        free(a->unrecorded);
        free(a);
        return NULL;
}
