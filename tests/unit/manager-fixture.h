/* SPDX-License-Identifier: MIT */
#pragma once

/* A Manager as ssf-sessiond starts it (configuration, state directory, store; no event loop),
 * for the tests that drive the root daemon's code (engine, broker) directly. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "macro.h"
#include "manager.h"

typedef struct ManagerFixture {
        char dir[128];   /* its state directory, a new temporary one */
        char db[192];    /* dir/state.db */
        Manager *m;
} ManagerFixture;

/* issuer: the [transmitter] issuer; rules: INI text that follows (rules, sections). */
static inline int manager_fixture_new(ManagerFixture *f, const char *issuer, const char *rules) {
        const char *t = getenv("TMPDIR");
        char text[4096];
        Config *c = NULL;

        if (isempty(t) || strlen(t) > 60)
                t = "/tmp";
        snprintf(f->dir, sizeof(f->dir), "%s/ssf-test-manager-XXXXXX", t);
        if (!mkdtemp(f->dir))
                return -1;
        snprintf(f->db, sizeof(f->db), "%s/state.db", f->dir);
        snprintf(text, sizeof(text),
                 "[transmitter]\nissuer = %s\nauth = none\n\n[subjects]\ndomains = example.com\n\n%s\n"
                 "[daemon]\nstate_dir = %s\nsnapshot = %s/pam-snapshot\n",
                 issuer, rules, f->dir, f->dir);
        if (config_load_buffer("test.conf", text, strlen(text), &c) < 0)
                return -1;
        return manager_new("test.conf", c, &f->m) < 0 ? -1 : 0;
}

/* Frees the Manager and removes its state directory. */
static inline int manager_fixture_done(ManagerFixture *f) {
        char cmd[256];

        f->m = manager_free(f->m);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        return system(cmd) == 0 ? 0 : -1;
}
