/* SPDX-License-Identifier: MIT */
/* Parses arbitrary bytes as ssf-sessiond.conf (config_load_buffer: no drop-ins, no permission
 * checks), checks the invariants of an accepted Config (its [detection NAME] sections too), runs
 * the policy and the claims matcher over it, and parses the input's first line as a duration. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "events.h"
#include "log.h"
#include "pattern.h"
#include "policy.h"
#include "risk.h"
#include "strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const Config *c, json_t *event) {
        static const char *const dets[] = { "session-revoked", "risk-level-change", "opt-in", "nope", NULL };
        char *groups[] = { (char *) (uintptr_t) "users", (char *) (uintptr_t) "wheel", NULL };

        if (c->n_transmitters == 0 || c->n_transmitters > TRANSMITTERS_MAX)
                abort();
        for (size_t i = 0; i < c->n_transmitters; i++) {
                const TransmitterConfig *t = &c->transmitters[i];

                if (!config_transmitter_name_valid(t->name) || config_transmitter(c, t->name) != t)
                        abort();
                if (!t->issuer && !t->config_url)
                        abort();
                if (t->poll_max_events < 1 || t->poll_max_events > 1000)
                        abort();
                if (t->delivery == DELIVERY_PUSH &&
                    (!t->push_url || !t->push_listen || !c->push_listen ||
                     strcmp(t->push_listen, c->push_listen)))
                        abort();
        }
        for (size_t i = 0; i < c->n_rules; i++)
                for (char **n = c->rules[i].transmitters; n && *n; n++)
                        if (!config_transmitter(c, *n))
                                abort();
        if (!c->hooks_dir || !c->hooks_user || !c->state_dir || !c->socket_path || !c->snapshot_path)
                abort();
        for (size_t i = 0; i < c->n_rules; i++) {
                const Rule *r = &c->rules[i];
                if (!r->name || !r->file || r->line == 0 || r->levels > 0xfu ||
                    !rule_action_to_string(r->action) || !session_scope_to_string(r->sessions))
                        abort();
                if (r->action == ACTION_WORKFLOW &&
                    (!r->workflow || strchr(r->workflow, '/') || r->workflow[0] == '.'))
                        abort();
        }
        for (size_t i = 0; i < c->n_detection_levels; i++)
                if (config_detection_level(c, c->detection_levels[i].detection) !=
                    c->detection_levels[i].level)
                        abort();
        for (size_t i = 0; i < c->n_detection_defs; i++) {
                const DetectionDef *d = &c->detection_defs[i];
                const EventType *e = d->event ? event_type_by_name(d->event) : NULL;

                if (!d->name || strlen(d->name) > 63 || !e || e->level == _RISK_INVALID ||
                    d->n_claims == 0 || d->level < RISK_NONE || d->level >= _RISK_MAX ||
                    event_name_is_known(d->name) || config_detection_def(c, d->name) != d)
                        abort();
                for (size_t k = 0; k < d->n_claims; k++)
                        for (char **p = d->claims[k].patterns; p && *p; p++)
                                if (!pattern_valid(*p))
                                        abort();
                /* The matcher on a typical event, and the rules a level-none detection runs. */
                (void) risk_claims_match(d, event);
                for (int l = RISK_NONE; l < _RISK_MAX; l++) {
                        const Rule *r = policy_match_named(c, "default", "fuzz", groups, d->name, (RiskLevel) l);
                        if (r && (r < c->rules || r >= c->rules + c->n_rules ||
                                  !strv_contains(r->detections, d->name)))
                                abort();
                }
        }
        for (size_t i = 0; i < c->n_rules; i++)
                for (char **d = c->rules[i].detections; d && *d; d++)
                        if (!streq(*d, "*") && !event_name_is_known(*d) && !config_detection_def(c, *d))
                                abort(); /* an undefined name is a configuration error */
        for (const char *const *d = dets; *d; d++)
                for (int l = RISK_NONE; l < _RISK_MAX; l++) {
                        const Rule *r = policy_match(c, c->transmitters[0].name, "fuzz", groups, *d,
                                                     (RiskLevel) l);
                        if (r && (r < c->rules || r >= c->rules + c->n_rules))
                                abort();
                }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Config *c = NULL;
        uint64_t usec;
        char line[128];
        size_t n;

        log_set_max_level(LOG_CRIT); /* config errors are expected; keep the output quiet */

        if (config_load_buffer("fuzz.conf", (const char *) data, size, &c) >= 0) {
                json_t *event = json_pack("{s:s, s:s, s:i, s:b, s:n}", "change_type", "create",
                                          "credential_type", "fido2-u2f", "n", 42, "b", 1, "z");
                if (!event)
                        abort();
                check(c, event);
                json_decref(event);
                config_free(c);
        }

        {
                const uint8_t *nl = memchr(data, '\n', size);
                n = nl ? (size_t) (nl - data) : size;
        }
        n = MIN(n, sizeof(line) - 1);
        memcpy(line, data, n);
        line[n] = '\0';
        (void) config_parse_duration(line, &usec);
        return 0;
}
