/* SPDX-License-Identifier: MIT */
/* Parses arbitrary bytes as ssf-sessiond.conf (config_load_buffer: no drop-ins, no permission
 * checks), checks the invariants of an accepted Config, runs the policy over it, and parses
 * the input's first line as a duration. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "policy.h"
#include "strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const Config *c) {
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
                check(c);
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
