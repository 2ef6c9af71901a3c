/* SPDX-License-Identifier: MIT */
/*
 * The action thread (actions.h): runs the pending logouts and workflow hooks that the engine
 * committed, in order, and records each result. Runs in the root daemon.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>

#include "actions.h"
#include "engine.h"
#include "hooks.h"
#include "log.h"
#include "logind.h"
#include "macro.h"

#define F(buf, ...) (void) snprintf(buf, sizeof(buf), __VA_ARGS__)

static uint64_t mono_msec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
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

static int run_logout(sd_bus **bus, const PendingAction *a, char *result, size_t size) {
        LogoutResult lr = {};
        uid_t uid = a->uid; /* the account root resolved when it committed the action */
        int r;

        if (!*bus) {
                r = logind_open(bus);
                if (r < 0) {
                        snprintf(result, size, "failed: cannot connect to the system bus: %s",
                                 strerror(-r));
                        return r;
                }
        }
        r = logind_logout_user(*bus, uid, scope_from_string(a->sessions), &lr);
        if (r < 0) {
                snprintf(result, size, "failed: %s", lr.summary[0] ? lr.summary : strerror(-r));
                /* A broken connection is reopened next time. */
                *bus = sd_bus_flush_close_unref(*bus);
                return r;
        }
        snprintf(result, size, "ok: %s", lr.summary);
        return 0;
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

static void run_one(State *st, sd_bus **bus, const PendingAction *a) {
        char result[1500];
        uint64_t start = mono_msec();
        int r;

        if (streq_ptr(a->action, "logout"))
                r = run_logout(bus, a, result, sizeof(result));
        else if (streq_ptr(a->action, "workflow"))
                r = run_workflow(st, a, result, sizeof(result));
        else {
                snprintf(result, sizeof(result), "failed: unknown action '%s'", strempty(a->action));
                r = -EINVAL;
        }
        log_action(a, result, r);
        if (r == -ECANCELED)
                return; /* stays pending: it runs again, whole, at the next start */

        pthread_mutex_lock(&st->lock);
        if (store_begin(st->store) >= 0 &&
            store_action_finish(st->store, a->id, result) >= 0 &&
            store_history_update_result(st->store, a->history_id, result,
                                        (int64_t) (mono_msec() - start)) >= 0)
                (void) store_commit(st->store);
        else
                (void) store_rollback(st->store);
        if (r < 0)
                st->counters.actions_failed++;
        else if (streq(a->action, "logout"))
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

void *actions_thread(void *userdata) {
        State *st = userdata;
        sd_bus *bus = NULL;

        while (!st->stopping) {
                PendingAction *list = NULL;
                size_t n = 0;
                int r;

                pthread_mutex_lock(&st->lock);
                while (!st->actions_kick && !st->stopping) {
                        struct timespec ts;
                        clock_gettime(CLOCK_MONOTONIC, &ts); /* the clock of action_cond */
                        ts.tv_sec += 30; /* also retries leftovers now and then */
                        if (pthread_cond_timedwait(&st->action_cond, &st->lock, &ts) == ETIMEDOUT)
                                break;
                }
                st->actions_kick = false;
                r = st->stopping ? -ECANCELED : store_action_list_pending(st->store, &list, &n);
                pthread_mutex_unlock(&st->lock);
                if (r < 0)
                        continue;

                for (size_t i = 0; i < n && !st->stopping; i++)
                        run_one(st, &bus, &list[i]);
                pending_actions_free(list, n);
        }
        sd_bus_flush_close_unref(bus);
        return NULL;
}
