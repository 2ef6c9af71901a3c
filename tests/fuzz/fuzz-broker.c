/* SPDX-License-Identifier: MIT */
/*
 * The privileged daemon's handling of what the network worker sends it (broker.c): a channel
 * datagram is framed as link_recv() does (link_parse()) and handled as the main loop does
 * (broker_handle_message()): ingest requests applied through the engine to a real store, facts
 * kept for the worker, stream facts and counters, verification results. A compromised worker
 * controls these bytes completely; the daemon must survive them and keep its invariants.
 *
 * The Manager is set up once, as tests/unit/test-engine.c does (a store in a temporary
 * directory, removed at exit), and its state carries over from one input to the next, as it
 * does in the daemon.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "broker.h"
#include "config.h"
#include "link.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VERIFY_STATE "0123456789abcdef0123456789abcdef"

static Manager *manager;
static char dir[256];

static void cleanup(void) {
        DIR *d;
        struct dirent *de;

        if (!dir[0])
                return;
        manager = manager_free(manager);
        d = opendir(dir);
        if (d) {
                while ((de = readdir(d)))
                        if (de->d_name[0] != '.')
                                (void) unlinkat(dirfd(d), de->d_name, 0);
                closedir(d);
        }
        (void) rmdir(dir);
        dir[0] = 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const char *t = getenv("TMPDIR");
        char text[1024];
        Config *c = NULL;

        log_set_max_level(LOG_CRIT); /* refusals are logged as errors; keep the output quiet */
        if (!t || !*t || strlen(t) > 128)
                t = "/tmp";
        (void) snprintf(dir, sizeof(dir), "%s/ssf-fuzz-broker-XXXXXX", t);
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                abort();
        }
        atexit(cleanup);
        (void) snprintf(text, sizeof(text),
                        "[transmitter]\nissuer = https://i.example\nauth = none\n\n"
                        "[subjects]\ndomains = *\n\n"
                        "[rule logout-high]\nlevels = high\naction = logout\nsessions = all\n\n"
                        "[rule notify-medium]\nlevels = medium\naction = workflow\n"
                        "workflow = notify-admin\n\n"
                        "[daemon]\nstate_dir = %s\nsnapshot = %s/pam-snapshot\n",
                        dir, dir);
        if (config_load_buffer("fuzz-broker", text, strlen(text), &c) < 0)
                abort();
        /* As the daemon starts, short of its event loop: config, state dir, store. */
        if (manager_new("fuzz-broker.conf", c, &manager) < 0)
                abort();
        /* as after `ssfctl verify` */
        state_transmitter(&manager->state, "default")->stream.verify_state = strdup(VERIFY_STATE);
        if (!state_transmitter(&manager->state, "default")->stream.verify_state)
                abort();
        return 0;
}

/* What the worker may leave in the daemon: bounded text without control characters. */
static void check_text(const char *s, size_t max) {
        if (!s)
                return;
        if (strlen(s) > max)
                abort();
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        abort();
}

static void check_facts(const StreamFacts *f) {
        check_text(f->stream_id, 256);
        check_text(f->issuer, 2048);
        check_text(f->endpoint_url, 2048);
        check_text(f->audience, 2048);
        check_text(f->delivery, 256);
        check_text(f->verification_endpoint, 2048);
        check_text(f->last_error, 512);
        check_text(f->verify_result, 256);
        if (!f->status || (strcmp(f->status, "starting") != 0 && strcmp(f->status, "enabled") != 0 &&
                           strcmp(f->status, "paused") != 0 && strcmp(f->status, "disabled") != 0 &&
                           strcmp(f->status, "error") != 0 && strcmp(f->status, "deleted") != 0))
                abort();
        if (f->config_json && strlen(f->config_json) > 64u * 1024u)
                abort();
        if (!f->verify_state || strcmp(f->verify_state, VERIFY_STATE) != 0)
                abort();
}

/* Whether the request asks for one of the two facts the worker may keep. */
static bool allowed_key(json_t *msg) {
        const char *k = json_string_value(json_object_get(msg, "key"));
        return k && (strcmp(k, "stream_id") == 0 || strcmp(k, "push_secret") == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_t *msg = NULL, *answer;
        const char *type;
        json_int_t status;
        int r;

        r = link_parse((const char *) data, size, &msg);
        if (r < 0) {
                if ((r != -EBADMSG && r != -EMSGSIZE) || msg)
                        abort();
                return 0;
        }
        type = json_string_value(json_object_get(msg, "type"));
        if (!json_is_object(msg) || !type)
                abort();

        r = broker_handle_message(&manager->state, "default", msg, &answer);
        if (r < 0) {
                /* A protocol violation (the caller kills the worker): nothing to answer. */
                if ((r != -EPROTO && r != -ENOMEM) || answer)
                        abort();
        } else if (strcmp(type, "facts") == 0 || strcmp(type, "verify-result") == 0 ||
                   strcmp(type, "admin-result") == 0) {
                if (answer)
                        abort(); /* notifications are not answered */
        } else if (!json_is_integer(json_object_get(msg, "id")) || !answer) {
                abort(); /* a request without an id is a violation; one with an id is answered */
        } else {
                /* A request is answered: its id, 0 or a negative errno, nothing else from us. */
                status = json_integer_value(json_object_get(answer, "status"));
                if (strcmp(json_string_value(json_object_get(answer, "type")), "reply") != 0 ||
                    !json_equal(json_object_get(answer, "id"), json_object_get(msg, "id")) ||
                    !json_is_integer(json_object_get(answer, "status")) || status > 0 ||
                    status < -4095)
                        abort();
                if ((strcmp(type, "kv-get") == 0 || strcmp(type, "kv-set") == 0) &&
                    !allowed_key(msg) && status != -EPERM)
                        abort();
                if (strcmp(type, "kv-get") != 0 && json_object_get(answer, "value"))
                        abort();
                /* subjects = local is off here: no subjects for the worker. */
                if (strcmp(type, "local-subjects") == 0 &&
                    (status != -EPERM || json_object_get(answer, "subjects")))
                        abort();
                if (strcmp(type, "ingest") != 0 && strcmp(type, "ingest-batch") != 0 &&
                    strcmp(type, "kv-get") != 0 &&
                    strcmp(type, "kv-set") != 0 && strcmp(type, "local-subjects") != 0)
                        abort(); /* any other type is a violation, never answered */
                /* Something the worker can send back through link_recv(). */
                {
                        char *text = json_dumps(answer, JSON_COMPACT);
                        json_t *again = NULL;

                        if (!text || link_parse(text, strlen(text), &again) < 0)
                                abort();
                        json_decref(again);
                        free(text);
                }
        }
        json_decref(answer);
        json_decref(msg);

        pthread_mutex_lock(&manager->state.lock);
        check_facts(&state_transmitter(&manager->state, "default")->stream);
        /* Whatever the worker sends, root (protected, and outside min_uid) is never at risk
         * and never has an action queued. */
        {
                RiskLevel l = RISK_HIGH;
                PendingAction *a = NULL;
                size_t n = 0;

                if (store_user_level(manager->state.store, 0, 0, &l, NULL) < 0 || l != RISK_NONE)
                        abort();
                if (store_action_list_pending(manager->state.store, &a, &n) < 0)
                        abort();
                for (size_t i = 0; i < n; i++)
                        if (a[i].uid == 0)
                                abort();
                pending_actions_free(a, n);
        }
        pthread_mutex_unlock(&manager->state.lock);
        return 0;
}
