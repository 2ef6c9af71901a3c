/* SPDX-License-Identifier: MIT */
/* config.c: every key, the defaults, durations, drop-ins, each validation error with its
 * FILE:LINE (log.c's stderr output is captured), and the permission checks (as root). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "stderr-capture.h"
#include "strv.h"

/* The transmitter single-transmitter configurations describe. */
#define DT(c) config_transmitter_main(c)

#define USEC_PER_SEC UINT64_C(1000000)

static char tmpdir[128];

/* ---- helpers ----------------------------------------------------------------------------- */

static void pathf(char *buf, size_t size, const char *name) {
        int n = snprintf(buf, size, "%s/%s", tmpdir, name);
        assert_true(n > 0 && (size_t) n < size);
}

/* The [subjects] domains every email map needs, appended (so line numbers stay) to a main
 * configuration that does not set them itself. */
#define DOMAINS_TAIL "\n[subjects]\ndomains = example.com\n"

static void write_file(const char *name, mode_t mode, const char *text) {
        char path[256];
        bool tail = strstr(text, "[transmitter]") && !strstr(text, "domains") &&
                    !strstr(text, "map = ");
        int fd;

        pathf(path, sizeof(path), name);
        (void) unlink(path);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        if (tail)
                assert_int_equal(write(fd, DOMAINS_TAIL, strlen(DOMAINS_TAIL)),
                                 (ssize_t) strlen(DOMAINS_TAIL));
        assert_int_equal(fchmod(fd, mode), 0);
        assert_int_equal(close(fd), 0);
}

static size_t count_lines(const char *s, const char *needle) {
        size_t n = 0;
        for (const char *p = s; (p = strstr(p, needle)); p++)
                n++;
        return n;
}

/* Loads text from a file NAME in the temp dir without permission checks; returns r and the
 * captured stderr. */
static int load_text(const char *name, const char *text, Config **ret, char **ret_err) {
        char path[256];
        int r;

        write_file(name, 0644, text);
        pathf(path, sizeof(path), name);
        capture_begin(tmpdir);
        r = config_load(path, false, ret);
        *ret_err = capture_end();
        return r;
}

/* config_reload() of the file NAME in the temp dir (written before) with running in force;
 * returns r and the captured stderr. */
static int reload_file(const char *name, const Config *running, Config **ret, char **ret_err) {
        char path[256];
        int r;

        pathf(path, sizeof(path), name);
        capture_begin(tmpdir);
        r = config_reload(path, false, running, ret);
        *ret_err = capture_end();
        return r;
}

static const char *minimal = "[subjects]\ndomains = example.com\n"
                             "[transmitter]\nissuer = https://idp.example.com\nauth = none\n";

/* ---- tests ------------------------------------------------------------------------------- */

/* [transmitter NAME] sections: each its own keys and defaults; the unnamed one is "default";
 * names are checked; a name twice in one file, or both spellings of default, are errors; the
 * push listener is given once; rules name existing transmitters. */
static void test_named_transmitters(void **state) {
        _cleanup_(config_freep) Config *c = NULL;
        const TransmitterConfig *a, *b;
        char *err = NULL;

        assert_int_equal(load_text("named.conf",
                                   "[subjects]\ndomains = example.com\n"
                                   "[transmitter]\nissuer = https://idp.example.com\nauth = none\n"
                                   "[transmitter mdm-1]\nissuer = https://mdm.example.com\n"
                                   "auth = none\npoll_max_events = 7\n"
                                   "[rule r]\ntransmitters = mdm-1 default\naction = none\n"
                                   "[rule any]\ntransmitters = *\naction = none\n",
                                   &c, &err), 0);
        free(err);
        assert_int_equal(c->n_transmitters, 2);
        a = config_transmitter(c, "default");
        b = config_transmitter(c, "mdm-1");
        assert_non_null(a);
        assert_non_null(b);
        assert_ptr_equal(config_transmitter_main(c), a);
        assert_string_equal(a->issuer, "https://idp.example.com");
        assert_string_equal(b->issuer, "https://mdm.example.com");
        assert_int_equal(a->poll_max_events, 64);
        assert_int_equal(b->poll_max_events, 7);
        assert_string_equal(b->oauth2_scope, "ssf.read ssf.manage");
        assert_null(config_transmitter(c, "other"));
        assert_true(rule_matches_transmitter(&c->rules[0], "mdm-1"));
        assert_true(rule_matches_transmitter(&c->rules[0], "default"));
        assert_true(rule_matches_transmitter(&c->rules[1], "anything"));
        c = config_free(c);

        /* Several, none named default: no single main one. */
        assert_int_equal(load_text("named2.conf",
                                   "[subjects]\ndomains = example.com\n"
                                   "[transmitter x]\nissuer = https://x.example.com\nauth = none\n"
                                   "[transmitter y]\nissuer = https://y.example.com\nauth = none\n",
                                   &c, &err), 0);
        free(err);
        assert_null(config_transmitter_main(c));
        c = config_free(c);

        static const struct {
                const char *text, *message;
        } bad[] = {
                { "[transmitter Okta]\nissuer = https://a.example\nauth = none\n",
                  "Invalid transmitter name 'Okta'" },
                { "[transmitter abcdefghijabcdefghijabcdefghijabc]\nissuer = https://a.example\nauth = none\n",
                  "Invalid transmitter name" },
                { "[transmitter a]\nissuer = https://a.example\nauth = none\n"
                  "[transmitter a]\nauth = none\n",
                  "Transmitter 'a' is defined twice in this file (first at line 3)" },
                { "[transmitter]\nissuer = https://a.example\nauth = none\n"
                  "[transmitter default]\nauth = none\n",
                  "use either [transmitter] or [transmitter default]" },
                { "[transmitter a]\nauth = none\n",
                  "[transmitter a] needs 'issuer' or 'config_url'" },
                { "[transmitter a]\nissuer = https://a.example\nauth = bearer\n",
                  "auth = bearer needs 'token_file'" },
                { "[transmitter a]\nissuer = https://a.example\nauth = none\n"
                  "[rule r]\ntransmitters = b\naction = none\n",
                  "Rule 'r': no transmitter is named 'b'" },
                { "[transmitter a]\nissuer = https://a.example\nauth = none\n"
                  "[rule r]\ntransmitters = a *\naction = none\n",
                  "'*' stands alone" },
                { "[transmitter a]\nissuer = https://a.example\nauth = none\ndelivery = push\n"
                  "push_url = https://h.example/a\n",
                  "delivery = push needs 'push_listen'" },
                { "[push]\npush_listen = 127.0.0.1:8443\npush_cert = /c\npush_key = /k\n"
                  "[transmitter a]\nissuer = https://a.example\nauth = none\ndelivery = push\n"
                  "push_url = https://h.example/ssf\n"
                  "[transmitter b]\nissuer = https://b.example\nauth = none\ndelivery = push\n"
                  "push_url = https://h.example/ssf?x=1\n",
                  "[transmitter b] push_url has the path '/ssf' of [transmitter a]: each push "
                  "transmitter needs its own path" },
                /* The listener's keys in a push transmitter other than the first. */
                { "[transmitter a]\nissuer = https://a.example\nauth = none\ndelivery = push\n"
                  "push_url = https://h.example/a\npush_listen = 127.0.0.1:8443\n"
                  "[transmitter b]\nissuer = https://b.example\nauth = none\ndelivery = push\n"
                  "push_url = https://h.example/b\npush_cert = /c\npush_key = /k\n",
                  "[transmitter b] 'push_cert': the one push listener's keys go in [push] or the "
                  "first push transmitter ([transmitter a])" },
                { "[transmitter a]\nissuer = https://a.example\nstream = none\n",
                  "stream = none needs 'jwks_uri'" },
                { "[transmitter a]\nissuer = https://a.example\nstream = none\n"
                  "jwks_uri = https://a.example/k\naudience = x\npush_authorization_file = /f\n",
                  "stream = none needs 'delivery = push'" },
                { "[transmitter a]\nissuer = https://a.example\nauth = none\n"
                  "jwks_uri = https://a.example/k\n",
                  "'jwks_uri' is only valid with stream = none" },
                { "[transmitter a]\nissuer = https://a.example\nstream = some\n",
                  "Invalid value for 'stream': 'some' (expected managed or none)" },
                { "[transmitter a]\nissuer = https://a.example\nauth = none\ndelivery = push\n"
                  "push_url = https://h.example/a\npush_listen = 127.0.0.1:8443\npush_cert = /c\n"
                  "push_key = /k\n"
                  "[transmitter b]\nissuer = https://b.example\nauth = none\ndelivery = push\n"
                  "push_url = https://h.example/b\npush_listen = 127.0.0.1:9443\n",
                  "[transmitter b] 'push_listen' differs from the one push listener's" },
                { "[transmitter]\nissuer = https://a.example\nauth = none\ndelivery = poll\n"
                  "push_listen = 127.0.0.1:8443\n"
                  "[transmitter b]\nissuer = https://b.example\nauth = none\ndelivery = push\n"
                  "push_url = https://h.example/b\n",
                  "delivery = push needs 'push_listen'" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                char text[2048];

                (void) snprintf(text, sizeof(text), "[subjects]\ndomains = example.com\n%s", bad[i].text);
                assert_int_equal(load_text("bad.conf", text, &c, &err), -EINVAL);
                if (!strstr(err, bad[i].message))
                        fail_msg("case %zu: expected '%s' in: %s", i, bad[i].message, err);
                free(err);
                assert_null(c);
        }

        /* stream = none: push-only, its keys and the Authorization value configured. */
        assert_int_equal(load_text("none.conf",
                                   "[subjects]\ndomains = example.com\n"
                                   "[transmitter okta]\nissuer = https://okta.example\nstream = none\n"
                                   "jwks_uri = https://okta.example/keys\naudience = host1\n"
                                   "delivery = push\npush_url = https://h.example/okta\n"
                                   "push_authorization_file = /etc/ssf/okta-push-auth\n"
                                   "push_listen = 127.0.0.1:8443\npush_cert = /c\npush_key = /k\n",
                                   &c, &err), 0);
        free(err);
        assert_int_equal(config_transmitter(c, "okta")->stream, STREAM_NONE);
        assert_string_equal(config_transmitter(c, "okta")->jwks_uri, "https://okta.example/keys");
        c = config_free(c);

        /* The listener in [push], for the push transmitter; a poll transmitter beside it. */
        assert_int_equal(load_text("push2.conf",
                                   "[subjects]\ndomains = example.com\n"
                                   "[push]\npush_listen = 127.0.0.1:8443\npush_cert = /c\npush_key = /k\n"
                                   "[transmitter a]\nissuer = https://a.example\nauth = none\n"
                                   "delivery = push\npush_url = https://h.example/a\n"
                                   "[transmitter b]\nissuer = https://b.example\nauth = none\n",
                                   &c, &err), 0);
        free(err);
        assert_string_equal(c->push_listen, "127.0.0.1:8443");
        assert_string_equal(config_transmitter(c, "a")->push_listen, "127.0.0.1:8443");
        assert_string_equal(config_transmitter(c, "a")->push_key, "/k");
        assert_null(config_transmitter(c, "b")->push_listen);
        c = config_free(c);

        /* Several push transmitters on the one listener, each with its own path: the listener
         * given in the first push transmitter (a later one may repeat it), a managed stream
         * and a stream = none side by side. */
        assert_int_equal(load_text("push3.conf",
                                   "[subjects]\ndomains = example.com\n"
                                   "[transmitter p]\nissuer = https://p.example\nauth = none\n"
                                   "[transmitter a]\nissuer = https://a.example\nauth = none\n"
                                   "delivery = push\npush_url = https://h.example/ssf/a\n"
                                   "push_listen = 127.0.0.1:8443\npush_cert = /c\npush_key = /k\n"
                                   "[transmitter okta]\nissuer = https://okta.example\nstream = none\n"
                                   "jwks_uri = https://okta.example/keys\naudience = host1\n"
                                   "delivery = push\npush_url = https://h.example/ssf/okta\n"
                                   "push_authorization_file = /etc/ssf/okta-push-auth\n"
                                   "push_listen = 127.0.0.1:8443\n",
                                   &c, &err), 0);
        free(err);
        assert_string_equal(c->push_listen, "127.0.0.1:8443");
        assert_string_equal(c->push_cert, "/c");
        assert_string_equal(config_transmitter(c, "okta")->push_listen, "127.0.0.1:8443");
        assert_string_equal(config_transmitter(c, "okta")->push_key, "/k");
        assert_string_equal(config_transmitter(c, "okta")->push_url, "https://h.example/ssf/okta");
        assert_string_equal(config_transmitter(c, "a")->push_url, "https://h.example/ssf/a");
        assert_null(config_transmitter(c, "p")->push_listen);
        c = config_free(c);

        /* The same with the listener in [push]: then no push transmitter needs its keys. */
        assert_int_equal(load_text("push4.conf",
                                   "[subjects]\ndomains = example.com\n"
                                   "[push]\npush_listen = [::1]:8443\npush_cert = /c\npush_key = /k\n"
                                   "[transmitter a]\nissuer = https://a.example\nauth = none\n"
                                   "delivery = push\npush_url = https://h.example/a\n"
                                   "[transmitter b]\nissuer = https://b.example\nauth = none\n"
                                   "delivery = push\npush_url = https://h.example/b\n",
                                   &c, &err), 0);
        free(err);
        assert_string_equal(config_transmitter(c, "a")->push_listen, "[::1]:8443");
        assert_string_equal(config_transmitter(c, "b")->push_listen, "[::1]:8443");
        assert_string_equal(config_transmitter(c, "b")->push_cert, "/c");
        c = config_free(c);
}

static void test_defaults(void **state) {
        Config *c = NULL;

        assert_int_equal(config_load_buffer("mem", minimal, strlen(minimal), &c), 0);
        assert_non_null(c);
        assert_string_equal(DT(c)->issuer, "https://idp.example.com");
        assert_null(DT(c)->config_url);
        assert_int_equal(DT(c)->auth, AUTH_NONE);
        assert_int_equal(DT(c)->delivery, DELIVERY_POLL);
        assert_int_equal(DT(c)->poll_max_events, 64);
        assert_true(DT(c)->poll_wait_usec == 30 * USEC_PER_SEC);
        assert_true(DT(c)->verify_interval_usec == 3600 * USEC_PER_SEC);
        assert_int_equal(c->map, SUBJECT_MAP_EMAIL_LOCALPART);
        assert_null(DT(c)->events);
        assert_string_equal(c->domains[0], "example.com"); /* required with the email maps */
        assert_null(c->domains[1]);
        assert_int_equal(c->min_uid, 1000);   /* UID_MIN of login.defs, or the default */
        assert_string_equal(c->protect[0], "root");
        assert_true(c->max_event_age_usec == 30 * 86400 * USEC_PER_SEC);
        assert_true(c->ttl_usec == 24 * 3600 * USEC_PER_SEC);
        assert_true(c->max_clock_skew_usec == 300 * USEC_PER_SEC);
        assert_string_equal(c->hooks_dir, "/etc/ssf/hooks.d");
        assert_true(c->hooks_timeout_usec == 30 * USEC_PER_SEC);
        assert_string_equal(c->hooks_user, "root");
        assert_string_equal(c->state_dir, "/var/lib/ssf-sessiond");
        assert_string_equal(c->socket_path, "/run/ssf-sessiond/socket");
        assert_string_equal(c->snapshot_path, "/var/lib/ssf-sessiond/pam-snapshot");
        assert_string_equal(DT(c)->oauth2_scope, "ssf.read ssf.manage");
        assert_int_equal(c->n_rules, 0);
        assert_int_equal(c->n_detection_levels, 0);
        config_free(c);

        /* auth defaults to bearer, which needs a token file. */
        {
                const char *t = "[transmitter]\nissuer = https://idp.example.com\ntoken_file = /etc/ssf/token\n"
                                "[subjects]\ndomains = *\n";
                assert_int_equal(config_load_buffer("mem", t, strlen(t), &c), 0);
                assert_int_equal(DT(c)->auth, AUTH_BEARER);
                config_free(c);
        }
}

static const char *full =
        "# every key\n"
        "[transmitter]\n"
        "issuer = https://idp.example.com/tenant\n"
        "config_url = https://idp.example.com/.well-known/ssf-configuration/tenant\n"
        "audience = https://host1.example.com/ssf\n"
        "auth = oauth2\n"
        "token_file = /etc/ssf/token\n"
        "oauth2_token_url = https://idp.example.com/oauth2/token\n"
        "oauth2_client_id = host1\n"
        "oauth2_client_secret_file = /etc/ssf/client-secret\n"
        "oauth2_scope = \"ssf.read\"\n"
        "ca_file = /etc/ssf/ca.pem\n"
        "delivery = push\n"
        "push_listen = [::1]:8443\n"
        "push_url = https://host1.example.com:8443/ssf/events\n"
        "push_cert = /etc/ssf/push-cert.pem\n"
        "push_key = /etc/ssf/push-key.pem\n"
        "stream_id = f67e39a0a4d34d56b3aa1bc4cff0069f\n"
        "events = session-revoked, credential-change device-compliance-change\n"
        "poll_max_events = 1000\n"
        "poll_wait = 0\n"
        "verify_interval = 2h\n"
        "[subjects]\n"
        "map = file\n"
        "domains = Example.COM, example.org\n"
        "map_file = /etc/ssf/users.map\n"
        "device_id = host1.example.com\n"
        "[risk]\n"
        "ttl = 7d\n"
        "max_clock_skew = 250ms\n"
        "[detections]\n"
        "session-revoked = medium\n"
        "user-risk-change = low\n"
        "[rule r1]\n"
        "groups = wheel, !ops*, staff\n"
        "detections = session-revoked credential-change\n"
        "levels = medium,high\n"
        "action = logout\n"
        "sessions = remote\n"
        "reset = yes\n"
        "[rule r2]\n"
        "action = workflow\n"
        "workflow = notify-admin\n"
        "reset = on\n"
        "[rule r3]\n"
        "action = none\n"
        "levels = *\n"
        "[hooks]\n"
        "dir = /srv/hooks\n"
        "timeout = 5m\n"
        "user = nobody\n"
        "[daemon]\n"
        "state_dir = /srv/state\n"
        "socket = /run/x/socket\n"
        "snapshot = /srv/state/snap\n";

static void test_every_key(void **state) {
        Config *c = NULL;

        assert_int_equal(config_load_buffer("full", full, strlen(full), &c), 0);
        assert_string_equal(DT(c)->issuer, "https://idp.example.com/tenant");
        assert_string_equal(DT(c)->config_url, "https://idp.example.com/.well-known/ssf-configuration/tenant");
        assert_string_equal(DT(c)->audience, "https://host1.example.com/ssf");
        assert_int_equal(DT(c)->auth, AUTH_OAUTH2);
        assert_string_equal(DT(c)->token_file, "/etc/ssf/token");
        assert_string_equal(DT(c)->oauth2_token_url, "https://idp.example.com/oauth2/token");
        assert_string_equal(DT(c)->oauth2_client_id, "host1");
        assert_string_equal(DT(c)->oauth2_client_secret_file, "/etc/ssf/client-secret");
        assert_string_equal(DT(c)->oauth2_scope, "ssf.read");
        assert_string_equal(DT(c)->ca_file, "/etc/ssf/ca.pem");
        assert_int_equal(DT(c)->delivery, DELIVERY_PUSH);
        assert_string_equal(c->push_listen, "[::1]:8443");
        assert_string_equal(DT(c)->push_url, "https://host1.example.com:8443/ssf/events");
        assert_string_equal(c->push_cert, "/etc/ssf/push-cert.pem");
        assert_string_equal(c->push_key, "/etc/ssf/push-key.pem");
        assert_string_equal(DT(c)->stream_id, "f67e39a0a4d34d56b3aa1bc4cff0069f");
        assert_int_equal(strv_length(DT(c)->events), 3);
        assert_string_equal(DT(c)->events[0], "session-revoked");
        assert_string_equal(DT(c)->events[2], "device-compliance-change");
        assert_int_equal(DT(c)->poll_max_events, 1000);
        assert_true(DT(c)->poll_wait_usec == 0);
        assert_true(DT(c)->verify_interval_usec == 7200 * USEC_PER_SEC);
        assert_int_equal(c->map, SUBJECT_MAP_FILE);
        assert_int_equal(strv_length(c->domains), 2);
        assert_string_equal(c->domains[0], "example.com");
        assert_string_equal(c->map_file, "/etc/ssf/users.map");
        assert_string_equal(c->device_id, "host1.example.com");
        assert_true(c->ttl_usec == 7 * 86400 * USEC_PER_SEC);
        assert_true(c->max_clock_skew_usec == 250000);
        assert_int_equal(c->n_detection_levels, 2);
        assert_int_equal(config_detection_level(c, "session-revoked"), RISK_MEDIUM);
        assert_int_equal(config_detection_level(c, "user-risk-change"), RISK_LOW);

        assert_int_equal(c->n_rules, 3);
        assert_string_equal(c->rules[0].name, "r1");
        assert_string_equal(c->rules[0].file, "full");
        assert_int_equal(c->rules[0].line, 34);
        assert_int_equal(strv_length(c->rules[0].groups), 3);
        assert_string_equal(c->rules[0].groups[1], "!ops*");
        assert_int_equal(strv_length(c->rules[0].detections), 2);
        assert_int_equal(c->rules[0].levels, (1u << RISK_MEDIUM) | (1u << RISK_HIGH));
        assert_int_equal(c->rules[0].action, ACTION_LOGOUT);
        assert_int_equal(c->rules[0].sessions, SESSIONS_REMOTE);
        assert_true(c->rules[0].reset);
        assert_null(c->rules[0].workflow);
        assert_string_equal(c->rules[1].name, "r2");
        assert_int_equal(c->rules[1].action, ACTION_WORKFLOW);
        assert_string_equal(c->rules[1].workflow, "notify-admin");
        assert_true(c->rules[1].reset);
        assert_null(c->rules[1].groups); /* omitted: '*' */
        assert_int_equal(c->rules[1].levels, 0xfu);
        assert_int_equal(c->rules[1].sessions, SESSIONS_ALL);
        assert_int_equal(c->rules[2].action, ACTION_NONE);
        assert_int_equal(c->rules[2].levels, 0xfu);
        assert_false(c->rules[2].reset);

        assert_string_equal(c->hooks_dir, "/srv/hooks");
        assert_true(c->hooks_timeout_usec == 300 * USEC_PER_SEC);
        assert_string_equal(c->hooks_user, "nobody");
        assert_string_equal(c->state_dir, "/srv/state");
        assert_string_equal(c->socket_path, "/run/x/socket");
        assert_string_equal(c->snapshot_path, "/srv/state/snap");
        config_free(c);
}

static void test_product_example(void **state) {
        Config *c = NULL;
        char path[512];
        const char *slash = strrchr(__FILE__, '/');

        /* tests/unit/test-config.c -> tests/data/config/product-example.conf */
        assert_non_null(slash);
        snprintf(path, sizeof(path), "%.*s/../data/config/product-example.conf", (int) (slash - __FILE__),
                 __FILE__);
        assert_int_equal(config_load(path, false, &c), 0);
        assert_string_equal(DT(c)->issuer, "https://idp.example.com");
        assert_null(DT(c)->config_url);
        assert_string_equal(DT(c)->audience, "https://host1.example.com/ssf");
        assert_int_equal(DT(c)->auth, AUTH_BEARER);
        assert_string_equal(DT(c)->token_file, "/etc/ssf/token");
        assert_string_equal(DT(c)->ca_file, "/etc/ssf/transmitter-ca.pem");
        assert_int_equal(DT(c)->delivery, DELIVERY_POLL);
        assert_null(DT(c)->stream_id);
        assert_null(DT(c)->events);
        assert_int_equal(DT(c)->poll_max_events, 64);
        assert_true(DT(c)->poll_wait_usec == 30 * USEC_PER_SEC);
        assert_int_equal(c->map, SUBJECT_MAP_EMAIL_LOCALPART);
        assert_string_equal(c->domains[0], "example.com");
        assert_string_equal(c->map_file, "/etc/ssf/users.map");
        assert_int_equal(c->n_detection_levels, 0);
        assert_int_equal(c->n_rules, 2);
        assert_string_equal(c->rules[0].name, "logout-high");
        assert_int_equal(c->rules[0].levels, 1u << RISK_HIGH);
        assert_int_equal(c->rules[0].action, ACTION_LOGOUT);
        assert_int_equal(c->rules[0].sessions, SESSIONS_ALL);
        assert_false(c->rules[0].reset);
        assert_string_equal(c->rules[1].name, "notify-medium");
        assert_int_equal(c->rules[1].levels, 1u << RISK_MEDIUM);
        assert_int_equal(c->rules[1].action, ACTION_WORKFLOW);
        assert_string_equal(c->rules[1].workflow, "notify-admin");
        assert_string_equal(c->hooks_dir, "/etc/ssf/hooks.d");
        assert_string_equal(c->hooks_user, "root");
        config_free(c);
}

/* The annotated example installed to /etc/ssf parses and says what PRODUCT.md says. */
static void test_installed_example(void **state) {
        Config *c = NULL;
        char path[512];
        const char *slash = strrchr(__FILE__, '/');

        assert_non_null(slash);
        snprintf(path, sizeof(path), "%.*s/../../conf/ssf-sessiond.conf", (int) (slash - __FILE__), __FILE__);
        assert_int_equal(config_load(path, false, &c), 0);
        assert_string_equal(DT(c)->issuer, "https://idp.example.com");
        assert_int_equal(DT(c)->auth, AUTH_BEARER);
        assert_int_equal(c->n_rules, 2);
        assert_string_equal(c->rules[0].name, "logout-high");
        assert_int_equal(c->rules[0].action, ACTION_LOGOUT);
        assert_string_equal(c->rules[1].workflow, "notify-admin");
        assert_true(c->ttl_usec == 24 * 3600 * USEC_PER_SEC);
        config_free(c);
}

/* The Okta + Omnissa example parses: two transmitters, rules naming them. */
static void test_pair_example(void **state) {
        Config *c = NULL;
        char path[512];
        const char *slash = strrchr(__FILE__, '/');

        assert_non_null(slash);
        snprintf(path, sizeof(path), "%.*s/../../conf/ssf-sessiond-okta-omnissa.conf",
                 (int) (slash - __FILE__), __FILE__);
        assert_int_equal(config_load(path, false, &c), 0);
        assert_int_equal(c->n_transmitters, 2);
        assert_string_equal(c->transmitters[0].name, "okta");
        assert_int_equal(c->transmitters[0].stream, STREAM_NONE);
        assert_string_equal(c->transmitters[0].push_listen, "0.0.0.0:8443");
        assert_int_equal(c->transmitters[1].delivery, DELIVERY_POLL);
        assert_string_equal(c->transmitters[1].name, "omnissa");
        assert_null(config_transmitter_main(c));
        assert_true(rule_matches_transmitter(&c->rules[0], "omnissa"));
        assert_false(rule_matches_transmitter(&c->rules[0], "okta"));
        config_free(c);
}

static void test_durations(void **state) {
        static const struct {
                const char *s;
                uint64_t usec;
        } ok[] = {
                { "30s", 30 * USEC_PER_SEC },
                { "5m", 300 * USEC_PER_SEC },
                { "24h", 86400 * USEC_PER_SEC },
                { "7d", 7 * 86400 * USEC_PER_SEC },
                { "250ms", 250000 },
                { "45", 45 * USEC_PER_SEC },
                { "0", 0 },
                { "1h 30m", 5400 * USEC_PER_SEC },
                { "2w", 14 * 86400 * USEC_PER_SEC },
                { "10us", 10 },
        };
        static const char *const bad[] = {
                "", " ", "s", "-5s", "5x", "1.5h", "5 s", "30 5m", "h5", "99999999999999999999s",
                "18446744073709551615d", "5s5", "+5",
        };
        uint64_t u;

        for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
                u = UINT64_MAX;
                assert_int_equal(config_parse_duration(ok[i].s, &u), 0);
                assert_true(u == ok[i].usec);
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                u = 4242;
                assert_true(config_parse_duration(bad[i], &u) < 0);
                assert_true(u == 4242); /* untouched on failure */
        }
        assert_int_equal(config_parse_duration("18446744073709551615d", &u), -ERANGE);
        assert_int_equal(config_parse_duration(NULL, &u), -EINVAL);
}

/* Each case: a config (after the minimal transmitter block unless it starts with '!') and the
 * line number and text the error message must have. */
static const struct {
        const char *text;
        unsigned line;
        const char *message;
} errors[] = {
        { "[transmitter]\nissuer = https://x\nauth = none\nbogus = 1\n", 4, "Unknown key 'bogus'" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[nope]\n", 4, "Unknown section [nope]" },
        { "issuer = https://x\n", 1, "outside of any section" },
        { "[transmitter]\nissuer = http://x\nauth = none\n", 2, "must be an https:// URL" },
        { "[transmitter]\nconfig_url = ftp://x/\nauth = none\n", 2, "must be an https:// URL" },
        { "[transmitter]\nauth = none\n", 1, "needs 'issuer' or 'config_url'" },
        { "[transmitter]\nissuer = https://x\n\nauth = bearer\n", 4, "needs 'token_file'" },
        { "[transmitter]\nissuer = https://x\nauth = oauth2\n", 3, "needs 'oauth2_token_url'" },
        { "[transmitter]\nissuer = https://x\nauth = oauth2\n", 3, "needs 'oauth2_client_id'" },
        { "[transmitter]\nissuer = https://x\nauth = oauth2\n", 3, "needs 'oauth2_client_secret_file'" },
        { "[transmitter]\nissuer = https://x\nauth = kerberos\n", 3, "Invalid value for 'auth'" },
        { "[transmitter]\nissuer = https://x\nauth = none\ndelivery = push\n", 4, "needs 'push_listen'" },
        { "[transmitter]\nissuer = https://x\nauth = none\ndelivery = push\n", 4, "needs 'push_url'" },
        { "[transmitter]\nissuer = https://x\nauth = none\ndelivery = push\n", 4, "needs 'push_cert'" },
        { "[transmitter]\nissuer = https://x\nauth = none\ndelivery = push\n", 4, "needs 'push_key'" },
        { "[transmitter]\nissuer = https://x\nauth = none\npush_listen = nope\n", 4, "Invalid 'push_listen'" },
        { "[transmitter]\nissuer = https://x\nauth = none\npush_listen = 1.2.3.4:99999\n", 4,
          "Invalid 'push_listen'" },
        { "[transmitter]\nissuer = https://x\nauth = none\npoll_max_events = 0\n", 4, "between 1 and 1000" },
        { "[transmitter]\nissuer = https://x\nauth = none\npoll_max_events = 1001\n", 4, "between 1 and 1000" },
        { "[transmitter]\nissuer = https://x\nauth = none\npoll_max_events = ten\n", 4, "Invalid number" },
        { "[transmitter]\nissuer = https://x\nauth = none\npoll_wait = soon\n", 4, "Invalid duration" },
        { "[transmitter]\nissuer = https://x\nauth = none\npoll_wait = 2h\n", 4, "out of range" },
        { "[transmitter]\nissuer = https://x\nauth = none\nevents = all, session-revoked\n", 4,
          "cannot be combined" },
        { "[transmitter]\nissuer = https://x\nauth = none\nevents = session-revoked, nope\n", 4,
          "unknown event 'nope'" },
        { "[transmitter]\nissuer = https://x\nauth = none\ntoken_file = relative/path\n", 4, "absolute path" },
        { "[transmitter]\nissuer = https://x\nauth = none\nissuer = https://y\n", 4, "Duplicate key 'issuer'" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[subjects]\nmap = file\n", 5, "needs 'map_file'" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[subjects]\nmap = ldap\n", 5, "Invalid value for 'map'" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[subjects]\ndomains = a..b\n", 5, "invalid domain" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[risk]\nttl = forever\n", 5, "Invalid duration" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[detections]\nnope = high\n", 5, "Unknown detection 'nope'" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[detections]\nopt-in = severe\n", 5, "Invalid level" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[detections]\nopt-in = low\nopt-in = high\n", 6,
          "Duplicate key 'opt-in'" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\nlevels = high\n", 4, "has no 'action'" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = workflow\n", 5, "needs 'workflow = NAME'" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = workflow\nworkflow = ../x\n", 6,
          "Invalid workflow name" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = workflow\nworkflow = .hidden\n", 6,
          "Invalid workflow name" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = none\nworkflow = x\n", 6,
          "only valid with action = workflow" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = workflow\nworkflow = x\nsessions = all\n",
          7, "only valid with action = logout" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = none\nreset = yes\n", 6,
          "not valid with action = none" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = reboot\n", 5, "Invalid value for 'action'" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = logout\nsessions = some\n", 6,
          "Invalid value for 'sessions'" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = logout\nreset = maybe\n", 6,
          "Invalid boolean" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = logout\nlevels = severe\n", 6,
          "invalid level 'severe'" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = logout\ndetections = x-y\n", 6,
          "unknown detection 'x-y'" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = logout\ngroups = !\n", 6,
          "invalid group pattern" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = logout\naction = none\n", 6,
          "Duplicate key 'action'" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = logout\n[rule a]\n", 6,
          "defined twice" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule]\naction = logout\n", 4, "without a name" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[rule a/b]\naction = logout\n", 4, "Invalid rule name" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[hooks]\ntimeout = 0\n", 5, "out of range" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[hooks]\nuser = -x\n", 5, "Invalid user name" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[hooks]\ndir =\n", 5, "must not be empty" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[daemon]\nstate_dir = var/lib\n", 5, "absolute path" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[daemon\n", 4, "without ']'" },
        { "[transmitter]\nissuer = https://x\nauth = none\n[daemon] x\n", 4, "after the section header" },
        { "[transmitter]\nissuer = https://x\nauth = none\njust words\n", 4, "Expected 'key = value'" },
        { "[transmitter]\nissuer = https://x\nauth = none\naudience = \"unbalanced\n", 4, "Unbalanced quotes" },
        { "[transmitter]\nissuer = https://x\nauth = none\nke y = 1\n", 4, "Invalid key name" },
        { "[transmitter]\nissuer = https://x\nauth = none\naudience = a\x01\n", 4, "control characters" },
};

/* The issuer a config_url stands for (SSF 1.0 §7.2): the well-known name taken out from between
 * the host and the path, spelt with or without a terminating '/'; any other form stands for no
 * issuer, and such a config_url alone is accepted with a warning (the issuer comes from the
 * transmitter's metadata). */
static void test_config_url_issuer(void **state) {
        static const struct {
                const char *url, *issuer;
        } ok[] = {
                { "https://tr.example.com/.well-known/ssf-configuration", "https://tr.example.com" },
                { "https://tr.example.com/.well-known/ssf-configuration/issuer1",
                  "https://tr.example.com/issuer1" },
                { "https://tr.example.com:8443/.well-known/ssf-configuration/a/b",
                  "https://tr.example.com:8443/a/b" },
        };
        static const char *const bad[] = {
                "https://tr.example.com/ssf-configuration",
                "https://tr.example.com/.well-known/risc-configuration",
                "https://tr.example.com/.well-known/ssf-configuration/",
                "https://tr.example.com/.well-known/ssf-configuration/a/",
                "https://tr.example.com/.well-known/ssf-configurationx",
                "https://tr.example.com/.well-known/ssf-configuration?tenant=a",
                "https://tr.example.com/.well-known/ssf-configuration#a",
                "https://tr.example.com/tenant/.well-known/ssf-configuration",
                "https://tr.example.com",
                "http://tr.example.com/.well-known/ssf-configuration",
                "https:///.well-known/ssf-configuration",
                "",
        };
        TransmitterConfig t = {};
        char *issuer;

        for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
                issuer = NULL;
                assert_int_equal(config_url_issuer(ok[i].url, &issuer), 0);
                assert_string_equal(issuer, ok[i].issuer);
                free(issuer);
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                issuer = NULL;
                if (config_url_issuer(bad[i], &issuer) != -EADDRNOTAVAIL) {
                        print_error("'%s' stands for '%s'\n", bad[i], strempty(issuer));
                        fail();
                }
                assert_null(issuer);
        }
        assert_int_equal(config_url_issuer(NULL, &issuer), -EADDRNOTAVAIL);

        /* A configured issuer is the one, whatever config_url says. */
        t.issuer = UNCONST("https://idp.example.com/");
        t.config_url = UNCONST("https://idp.example.com/.well-known/risc-configuration");
        assert_int_equal(config_transmitter_issuer(&t, &issuer), 0);
        assert_string_equal(issuer, "https://idp.example.com/");
        free(issuer);
        t.issuer = NULL;
        assert_int_equal(config_transmitter_issuer(&t, &issuer), -EADDRNOTAVAIL);
        t.config_url = UNCONST("https://idp.example.com/.well-known/ssf-configuration/t");
        assert_int_equal(config_transmitter_issuer(&t, &issuer), 0);
        assert_string_equal(issuer, "https://idp.example.com/t");
        free(issuer);

        /* The two spellings of the issuer a config_url stands for, and nothing else. */
        assert_true(config_issuer_spelling("https://h/p", "https://h/p"));
        assert_true(config_issuer_spelling("https://h/p", "https://h/p/"));
        assert_true(config_issuer_spelling("https://h", "https://h/"));
        assert_false(config_issuer_spelling("https://h/p", "https://h/p//"));
        assert_false(config_issuer_spelling("https://h/p", "https://h/px"));
        assert_false(config_issuer_spelling("https://h/p", "https://h/p/q"));
        assert_false(config_issuer_spelling("https://h/p", "https://h"));
        assert_false(config_issuer_spelling("https://h/p", "https://h/p?"));
        assert_false(config_issuer_spelling("https://h/p", NULL));
        assert_false(config_issuer_spelling(NULL, "https://h/p"));

        /* A config_url of another form (a vendor's SSF Well-Known URL) alone: not an error, a
         * warning that says where the issuer will come from and recommends issuer. */
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                _cleanup_free_ char *err = NULL, *text = NULL;
                char want[512], path[256];
                Config *c = NULL;

                if (!startswith(bad[i], "https://") || streq(bad[i], "https:///.well-known/ssf-configuration"))
                        continue; /* not an https URL with a host: an error of its own */
                assert_true(asprintf(&text, "[subjects]\ndomains = example.com\n[transmitter]\n"
                                     "auth = none\nconfig_url = %s\n", bad[i]) > 0);
                assert_int_equal(load_text("w.conf", text, &c, &err), 0);
                assert_non_null(c);
                assert_null(c->transmitters[0].issuer);
                pathf(path, sizeof(path), "w.conf");
                snprintf(want, sizeof(want), "%s:5: 'config_url' %s is not the SSF well-known URL", path,
                         bad[i]);
                if (!strstr(err, want) || !strstr(err, "the issuer will be taken from the transmitter's "
                                                       "metadata; setting 'issuer'")) {
                        print_error("'%s': wanted '%s', got:\n%s\n", bad[i], want, err);
                        fail();
                }
                config_free(c);
        }
        /* The SSF form gives no warning. */
        {
                _cleanup_free_ char *err = NULL;
                const char *text = "[subjects]\ndomains = example.com\n[transmitter]\nauth = none\n"
                                   "config_url = https://tr.example.com/.well-known/ssf-configuration/t\n";
                Config *c = NULL;

                assert_int_equal(load_text("w.conf", text, &c, &err), 0);
                assert_null(strstr(err, "config_url"));
                config_free(c);
        }

        /* At a reload, not again for the running configuration's transmitter and config_url;
         * again when the config_url changes, or when the running one had an issuer. */
        {
                const char *head = "[subjects]\ndomains = example.com\n[transmitter]\nauth = none\n"
                                   "config_url = https://v.example.com/.well-known/ssf-configuration";
                _cleanup_free_ char *t1 = NULL, *t2 = NULL, *t3 = NULL, *err = NULL;
                _cleanup_(config_freep) Config *c1 = NULL, *c3 = NULL;
                Config *c = NULL;

                assert_true(asprintf(&t1, "%s?t=a\n", head) > 0);
                assert_true(asprintf(&t2, "%s?t=b\n", head) > 0);
                assert_true(asprintf(&t3, "%s?t=a\nissuer = https://v.example.com/\n", head) > 0);
                assert_int_equal(load_text("r.conf", t1, &c1, &err), 0);
                assert_non_null(strstr(err, "?t=a is not the SSF well-known URL"));
                err = mfree(err);

                assert_int_equal(reload_file("r.conf", c1, &c, &err), 0);
                assert_null(strstr(err, "config_url"));
                c = config_free(c);
                err = mfree(err);

                write_file("r.conf", 0644, t2);
                assert_int_equal(reload_file("r.conf", c1, &c, &err), 0);
                assert_non_null(strstr(err, "?t=b is not the SSF well-known URL"));
                c = config_free(c);
                err = mfree(err);

                assert_int_equal(load_text("r3.conf", t3, &c3, &err), 0);
                err = mfree(err);
                write_file("r.conf", 0644, t1);
                assert_int_equal(reload_file("r.conf", c3, &c, &err), 0);
                assert_non_null(strstr(err, "?t=a is not the SSF well-known URL"));
                config_free(c);
        }

        /* Such a config_url with issuer set is the admin's word: accepted. */
        {
                const char *text = "[transmitter]\nissuer = https://accounts.example.com/\n"
                                   "config_url = https://accounts.example.com/.well-known/risc-configuration\n"
                                   "auth = none\n[subjects]\ndomains = example.com\n";
                Config *c = NULL;

                assert_int_equal(config_load_buffer("mem", text, strlen(text), &c), 0);
                config_free(c);
        }
}

static void test_errors(void **state) {
        for (size_t i = 0; i < ARRAY_SIZE(errors); i++) {
                _cleanup_free_ char *err = NULL;
                char path[256], want[512];
                Config *c = NULL;
                int r;

                r = load_text("err.conf", errors[i].text, &c, &err);
                pathf(path, sizeof(path), "err.conf");
                snprintf(want, sizeof(want), "%s:%u: ", path, errors[i].line);
                if (r != -EINVAL || !strstr(err, want) || !strstr(err, errors[i].message)) {
                        print_error("case %zu: r=%d, wanted '%s' ... '%s', got:\n%s\n", i, r, want,
                                    errors[i].message, err);
                        fail();
                }
                /* The message and its location are on the same line. */
                {
                        const char *at = strstr(err, errors[i].message);
                        const char *bol = at;
                        while (bol > err && bol[-1] != '\n')
                                bol--;
                        assert_non_null(strstr(bol, want));
                        assert_true(strstr(bol, want) < at);
                }
                assert_null(c);
        }
}

/* [rule] warn = DURATION: a logout's warning time, 0 when absent; only with action = logout. */
static void test_rule_warn(void **state) {
        static const struct {
                const char *text;
                unsigned line;
                const char *message;
        } bad[] = {
                { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = lock\nwarn = 1m\n", 6,
                  "'warn' is only valid with action = logout" },
                { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = workflow\n"
                  "workflow = x\nwarn = 0\n", 7, "'warn' is only valid with action = logout" },
                { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\nwarn = 30s\naction = none\n", 5,
                  "'warn' is only valid with action = logout" },
                { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = logout\nwarn = soon\n", 6,
                  "Invalid duration for 'warn'" },
                { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = logout\nwarn = 2h\n", 6,
                  "'warn' is out of range" },
                { "[transmitter]\nissuer = https://x\nauth = none\n[rule a]\naction = logout\nwarn = -5s\n", 6,
                  "Invalid duration for 'warn'" },
        };
        static const char good[] =
                "[subjects]\ndomains = example.com\n"
                "[transmitter]\nissuer = https://x\nauth = none\n"
                "[rule warned]\nlevels = high\naction = logout\nwarn = 1m 30s\n"
                "[rule zero]\naction = logout\nwarn = 0\n"
                "[rule plain]\naction = logout\n";
        Config *c = NULL;

        assert_int_equal(config_load_buffer("mem", good, strlen(good), &c), 0);
        assert_int_equal(c->n_rules, 3);
        assert_true(c->rules[0].warn_usec == 90 * USEC_PER_SEC);
        assert_true(c->rules[1].warn_usec == 0);
        assert_true(c->rules[2].warn_usec == 0);
        config_free(c);

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                _cleanup_free_ char *err = NULL;
                char path[256], want[512];
                int r;

                c = NULL;
                r = load_text("warn.conf", bad[i].text, &c, &err);
                pathf(path, sizeof(path), "warn.conf");
                snprintf(want, sizeof(want), "%s:%u: ", path, bad[i].line);
                if (r != -EINVAL || !err || !strstr(err, want) || !strstr(err, bad[i].message)) {
                        print_error("case %zu: r=%d, wanted '%s' ... '%s', got:\n%s\n", i, r, want,
                                    bad[i].message, strempty(err));
                        fail();
                }
                assert_null(c);
        }
}

static void test_all_errors_reported(void **state) {
        _cleanup_free_ char *err = NULL;
        char path[256], want[512];
        Config *c = NULL;

        assert_int_equal(load_text("many.conf",
                                   "[transmitter]\n"         /* 1 */
                                   "issuer = https://x\n"    /* 2 */
                                   "auth = none\n"           /* 3 */
                                   "what = 1\n"              /* 4 */
                                   "[risk]\n"                /* 5 */
                                   "ttl = 1y\n"              /* 6 */
                                   "[rule r]\n"              /* 7 */
                                   "levels = high\n"         /* 8 */
                                   "[hooks]\n"               /* 9 */
                                   "timeout = 0\n",          /* 10 */
                                   &c, &err),
                         -EINVAL);
        assert_null(c);
        pathf(path, sizeof(path), "many.conf");
        for (unsigned l = 4; l <= 10; l += 2) {
                snprintf(want, sizeof(want), "%s:%u: ", path, l == 8 ? 7 : l);
                assert_non_null(strstr(err, want));
        }
        assert_int_equal(count_lines(err, "ssf-sessiond: err: "), 4);
}

static void test_syntax(void **state) {
        _cleanup_free_ char *err = NULL;
        Config *c = NULL;

        assert_int_equal(load_text("syn.conf",
                                   "\xef\xbb\xbf; a comment\r\n"
                                   "# another\n"
                                   "  [transmitter]   ; inline after a header\n"
                                   "issuer=https://idp.example.com/a#frag   # inline\n"
                                   "auth = none;not-a-comment\n"
                                   "audience = \"https://h/ssf ; quoted\"  ; comment\n"
                                   "stream_id =        ; empty\n"
                                   "\t\n"
                                   "oauth2_scope = a b\n",
                                   &c, &err),
                         -EINVAL);
        /* "none;not-a-comment" is the value (';' not preceded by whitespace): invalid. */
        assert_non_null(strstr(err, ":5: Invalid value for 'auth': 'none;not-a-comment'"));

        free(err);
        err = NULL;
        assert_int_equal(load_text("syn.conf",
                                   "\xef\xbb\xbf; a comment\r\n"
                                   "# another\n"
                                   "  [transmitter]   ; inline after a header\n"
                                   "issuer=https://idp.example.com/a#frag   # inline\n"
                                   "auth = none ;a comment\n"
                                   "audience = \"https://h/ssf ; quoted\"  ; comment\n"
                                   "stream_id =        ; empty\n"
                                   "\t\n"
                                   "oauth2_scope = a b\n",
                                   &c, &err),
                         0);
        assert_string_equal(DT(c)->issuer, "https://idp.example.com/a#frag");
        assert_int_equal(DT(c)->auth, AUTH_NONE);
        assert_string_equal(DT(c)->audience, "https://h/ssf ; quoted");
        assert_null(DT(c)->stream_id);
        assert_string_equal(DT(c)->oauth2_scope, "a b");
        config_free(c);
}

static void test_dropins(void **state) {
        _cleanup_free_ char *err = NULL;
        char path[256], dir[256];
        Config *c = NULL;

        pathf(dir, sizeof(dir), "main.conf.d");
        assert_int_equal(mkdir(dir, 0755), 0);
        write_file("main.conf",
                   0644,
                   "[transmitter]\nissuer = https://idp.example.com\nauth = none\npoll_wait = 10s\n"
                   "[detections]\nopt-in = low\n"
                   "[rule first]\nlevels = high\naction = logout\n"
                   "[rule second]\nlevels = medium\naction = workflow\nworkflow = notify-admin\n");
        /* Lexical order: 10-a before 20-b; 20-b overrides 10-a. */
        write_file("main.conf.d/20-b.conf", 0644,
                   "[transmitter]\npoll_wait = 2s\n[rule first]\naction = none\n[rule third]\naction = none\n");
        write_file("main.conf.d/10-a.conf", 0644,
                   "[transmitter]\npoll_wait = 1s\npoll_max_events = 7\n[detections]\nopt-in = high\n");
        write_file("main.conf.d/30-c.txt", 0644, "this is not read\n");
        write_file("main.conf.d/.hidden.conf", 0644, "this is not read either\n");

        pathf(path, sizeof(path), "main.conf");
        capture_begin(tmpdir);
        assert_int_equal(config_load(path, false, &c), 0);
        err = capture_end();
        assert_true(DT(c)->poll_wait_usec == 2 * USEC_PER_SEC);
        assert_int_equal(DT(c)->poll_max_events, 7);
        assert_int_equal(config_detection_level(c, "opt-in"), RISK_HIGH);
        assert_int_equal(c->n_detection_levels, 1);
        assert_int_equal(c->n_rules, 3);
        /* Redefined in place: a new rule with only the drop-in's keys. */
        assert_string_equal(c->rules[0].name, "first");
        assert_int_equal(c->rules[0].action, ACTION_NONE);
        assert_int_equal(c->rules[0].levels, 0xfu);
        assert_non_null(strstr(c->rules[0].file, "main.conf.d/20-b.conf"));
        assert_int_equal(c->rules[0].line, 3);
        assert_string_equal(c->rules[1].name, "second");
        assert_string_equal(c->rules[2].name, "third");
        config_free(c);
        c = NULL;

        /* An error in a drop-in is reported with the drop-in's name and line. */
        write_file("main.conf.d/40-bad.conf", 0644, "[transmitter]\n\nverify_interval = sometimes\n");
        free(err);
        capture_begin(tmpdir);
        assert_int_equal(config_load(path, false, &c), -EINVAL);
        err = capture_end();
        assert_non_null(strstr(err, "main.conf.d/40-bad.conf:3: Invalid duration"));
        assert_null(c);
        pathf(path, sizeof(path), "main.conf.d/40-bad.conf");
        assert_int_equal(unlink(path), 0);
}

static void test_missing_file(void **state) {
        _cleanup_free_ char *err = NULL;
        char path[256];
        Config *c = NULL;

        pathf(path, sizeof(path), "does-not-exist.conf");
        capture_begin(tmpdir);
        assert_int_equal(config_load(path, false, &c), -ENOENT);
        err = capture_end();
        assert_non_null(strstr(err, "does not exist"));
        assert_null(c);
}

static void test_detection_levels(void **state) {
        assert_int_equal(config_detection_level(NULL, "session-revoked"), RISK_HIGH);
        assert_int_equal(config_detection_level(NULL, "sessions-revoked"), RISK_HIGH);
        assert_int_equal(config_detection_level(NULL, "device-compliance-change"), RISK_HIGH);
        assert_int_equal(config_detection_level(NULL, "account-disabled"), RISK_HIGH);
        assert_int_equal(config_detection_level(NULL, "account-purged"), RISK_HIGH);
        assert_int_equal(config_detection_level(NULL, "credential-compromise"), RISK_HIGH);
        assert_int_equal(config_detection_level(NULL, "identifier-recycled"), RISK_HIGH);
        assert_int_equal(config_detection_level(NULL, "credential-change"), RISK_MEDIUM);
        assert_int_equal(config_detection_level(NULL, "account-credential-change-required"), RISK_MEDIUM);
        assert_int_equal(config_detection_level(NULL, "assurance-level-change"), RISK_MEDIUM);
        assert_int_equal(config_detection_level(NULL, "token-claims-change"), RISK_MEDIUM);
        assert_int_equal(config_detection_level(NULL, "identifier-changed"), RISK_MEDIUM);
        assert_int_equal(config_detection_level(NULL, "recovery-activated"), RISK_MEDIUM);
        assert_int_equal(config_detection_level(NULL, "recovery-information-changed"), RISK_MEDIUM);
        assert_int_equal(config_detection_level(NULL, "session-established"), RISK_NONE);
        assert_int_equal(config_detection_level(NULL, "session-presented"), RISK_NONE);
        assert_int_equal(config_detection_level(NULL, "opt-in"), RISK_NONE);
        assert_int_equal(config_detection_level(NULL, "opt-out-effective"), RISK_NONE);
        assert_int_equal(config_detection_level(NULL, "risk-level-change"), _RISK_INVALID);
        assert_int_equal(config_detection_level(NULL, "user-risk-change"), _RISK_INVALID);
        assert_int_equal(config_detection_level(NULL, "device-risk-change"), _RISK_INVALID);
        assert_int_equal(config_detection_level(NULL, "no-such-thing"), _RISK_INVALID);
        assert_int_equal(config_detection_level(NULL, NULL), _RISK_INVALID);
        assert_true(config_detection_is_known("account-enabled"));
        assert_false(config_detection_is_known("verification"));

        {
                const char *t = "[transmitter]\nissuer = https://x\nauth = none\n"
                                "[subjects]\ndomains = example.com\n"
                                "[detections]\nrisk-level-change = medium\ncredential-change = none\n";
                Config *c = NULL;
                assert_int_equal(config_load_buffer("mem", t, strlen(t), &c), 0);
                assert_int_equal(config_detection_level(c, "risk-level-change"), RISK_MEDIUM);
                assert_int_equal(config_detection_level(c, "credential-change"), RISK_NONE);
                assert_int_equal(config_detection_level(c, "session-revoked"), RISK_HIGH);
                config_free(c);
        }
}

static void test_to_string(void **state) {
        assert_string_equal(rule_action_to_string(ACTION_LOGOUT), "logout");
        assert_string_equal(rule_action_to_string(ACTION_WORKFLOW), "workflow");
        assert_string_equal(rule_action_to_string(ACTION_NONE), "none");
        assert_null(rule_action_to_string((RuleAction) 42));
        assert_string_equal(session_scope_to_string(SESSIONS_ALL), "all");
        assert_string_equal(session_scope_to_string(SESSIONS_REMOTE), "remote");
        assert_string_equal(session_scope_to_string(SESSIONS_LOCAL), "local");
        assert_string_equal(session_scope_to_string(SESSIONS_GRAPHICAL), "graphical");
        assert_null(session_scope_to_string((SessionScope) -1));
}

static void test_limits(void **state) {
        _cleanup_free_ char *big = NULL, *err = NULL;
        Config *c = NULL;
        size_t n = 8192;

        /* A line over the limit is an error, not a silent truncation. */
        big = malloc(n + 64);
        assert_non_null(big);
        strcpy(big, "[transmitter]\nissuer = https://x\nauth = none\naudience = ");
        memset(big + strlen(big), 'a', n);
        big[strlen("[transmitter]\nissuer = https://x\nauth = none\naudience = ") + n] = '\0';
        assert_int_equal(load_text("long.conf", big, &c, &err), -EINVAL);
        assert_non_null(strstr(err, ":4: Line too long"));

        /* A NUL byte in memory input. */
        assert_int_equal(config_load_buffer("mem", "[risk]\nttl\0 = 1s\n", 17, &c), -EINVAL);
        assert_null(c);
}

/* ---- permissions (root only) ------------------------------------------------------------ */

static bool need_root(void) {
        if (geteuid() == 0)
                return true;
        print_message("not root: skipping permission test\n");
        return false;
}

static int load_perms(const char *name, char **ret_err) {
        char path[256];
        Config *c = NULL;
        int r;

        pathf(path, sizeof(path), name);
        capture_begin(tmpdir);
        r = config_load(path, true, &c);
        *ret_err = capture_end();
        config_free(c);
        return r;
}

static void perms_config(const char *token, const char *extra) {
        char text[2048], hooks[256];

        pathf(hooks, sizeof(hooks), "hooks");
        (void) mkdir(hooks, 0755);
        snprintf(text, sizeof(text),
                 "[transmitter]\nissuer = https://idp.example.com\ntoken_file = %s/%s\n%s"
                 "[hooks]\ndir = %s\n",
                 tmpdir, token, extra, hooks);
        write_file("p.conf", 0644, text);
}

/* oauth2_client_auth, its key, mTLS and proxy: values and what each method needs. */
static void test_client_auth_keys(void **state) {
        static const struct {
                const char *proxy;
                bool ok;
        } proxies[] = {
                { "http://proxy.example.com:3128", true },
                { "https://proxy.example.com:443/", true },
                { "http://127.0.0.1:1", true },
                { "http://[::1]:65535", true },
                { "http://proxy.example.com", false },        /* no port */
                { "http://proxy.example.com:0", false },
                { "http://proxy.example.com:65536", false },
                { "http://proxy.example.com:3128/x", false }, /* a path */
                { "http://u:p@proxy.example.com:3128", false },
                { "http://u@proxy.example.com:3128", false },
                { "socks5://proxy.example.com:1080", false },
                { "proxy.example.com:3128", false },
                { "http://:3128", false },
                { "http://[]:3128", false },
                { "http://[::1:3128", false },
                { "http://a_b:3128", false },
                { "http://proxy.example.com:3128?x", false },
        };
        _cleanup_free_ char *err = NULL;
        char text[1024];
        Config *c = NULL;

        /* Defaults: basic, nothing else. */
        assert_int_equal(load_text("ca.conf", minimal, &c, &err), 0);
        assert_int_equal(c->transmitters[0].oauth2_client_auth, OAUTH2_CLIENT_AUTH_BASIC);
        assert_null(c->transmitters[0].oauth2_private_key);
        assert_null(c->transmitters[0].proxy);
        assert_null(c->transmitters[0].tls_client_cert);
        c = config_free(c);
        err = mfree(err);

        snprintf(text, sizeof(text), "%s"
                 "oauth2_token_url = https://idp.example.com/t\noauth2_client_id = h1\n"
                 "oauth2_client_auth = private_key_jwt\noauth2_private_key = /etc/ssf/k.pem\n"
                 "oauth2_key_id = k1\ntls_client_cert = /etc/ssf/c.pem\n"
                 "tls_client_key = /etc/ssf/c.key\nproxy = http://proxy.example.com:3128\n", minimal);
        /* auth = none: the oauth2 keys are parsed and ignored; then auth = oauth2. */
        assert_int_equal(load_text("ca.conf", text, &c, &err), 0);
        assert_int_equal(c->transmitters[0].oauth2_client_auth, OAUTH2_CLIENT_AUTH_PRIVATE_KEY_JWT);
        assert_string_equal(c->transmitters[0].oauth2_private_key, "/etc/ssf/k.pem");
        assert_string_equal(c->transmitters[0].oauth2_key_id, "k1");
        assert_string_equal(c->transmitters[0].tls_client_cert, "/etc/ssf/c.pem");
        assert_string_equal(c->transmitters[0].tls_client_key, "/etc/ssf/c.key");
        assert_string_equal(c->transmitters[0].proxy, "http://proxy.example.com:3128");
        c = config_free(c);
        err = mfree(err);
        assert_string_equal(oauth2_client_auth_to_string(OAUTH2_CLIENT_AUTH_POST), "post");
        assert_null(oauth2_client_auth_to_string(_OAUTH2_CLIENT_AUTH_MAX));

        /* auth = oauth2 with private_key_jwt needs the key, not a secret. */
        snprintf(text, sizeof(text), "[subjects]\ndomains = example.com\n[transmitter]\n"
                 "issuer = https://idp.example.com\nauth = oauth2\n"
                 "oauth2_token_url = https://idp.example.com/t\noauth2_client_id = h1\n"
                 "oauth2_client_auth = private_key_jwt\n");
        assert_int_equal(load_text("ca.conf", text, &c, &err), -EINVAL);
        assert_non_null(strstr(err, "private_key_jwt needs 'oauth2_private_key'"));
        assert_null(strstr(err, "oauth2_client_secret_file"));
        err = mfree(err);
        strcat(text, "oauth2_private_key = /etc/ssf/k.pem\n");
        assert_int_equal(load_text("ca.conf", text, &c, &err), 0);
        c = config_free(c);
        err = mfree(err);

        /* post needs the secret; a key is then a mistake. */
        snprintf(text, sizeof(text), "[subjects]\ndomains = example.com\n[transmitter]\n"
                 "issuer = https://idp.example.com\nauth = oauth2\n"
                 "oauth2_token_url = https://idp.example.com/t\noauth2_client_id = h1\n"
                 "oauth2_client_auth = post\noauth2_key_id = k1\n");
        assert_int_equal(load_text("ca.conf", text, &c, &err), -EINVAL);
        assert_non_null(strstr(err, "oauth2_client_auth = post needs 'oauth2_client_secret_file'"));
        assert_non_null(strstr(err, "'oauth2_key_id' is only used with oauth2_client_auth = private_key_jwt"));
        err = mfree(err);

        /* Unknown method; a certificate without its key. */
        snprintf(text, sizeof(text), "%soauth2_client_auth = client_secret_jwt\n"
                 "tls_client_cert = /etc/ssf/c.pem\n", minimal);
        assert_int_equal(load_text("ca.conf", text, &c, &err), -EINVAL);
        assert_non_null(strstr(err, "expected basic, post or private_key_jwt"));
        assert_non_null(strstr(err, "tls_client_cert needs 'tls_client_key'"));
        err = mfree(err);

        for (size_t i = 0; i < ARRAY_SIZE(proxies); i++) {
                snprintf(text, sizeof(text), "%sproxy = %s\n", minimal, proxies[i].proxy);
                if (load_text("ca.conf", text, &c, &err) != (proxies[i].ok ? 0 : -EINVAL)) {
                        print_error("proxy '%s': %s\n", proxies[i].proxy, err);
                        fail();
                }
                if (proxies[i].ok)
                        assert_string_equal(c->transmitters[0].proxy, proxies[i].proxy);
                else
                        assert_non_null(strstr(err, "must be http://HOST:PORT or https://HOST:PORT"));
                c = config_free(c);
                err = mfree(err);
        }
}

static void test_perms(void **state) {
        char *err = NULL;
        char path[256], link[256];

        if (!need_root())
                skip();

        write_file("token", 0600, "secret\n");
        perms_config("token", "");
        assert_int_equal(load_perms("p.conf", &err), 0);
        free(err);

        /* Group-writable config. */
        pathf(path, sizeof(path), "p.conf");
        assert_int_equal(chmod(path, 0664), 0);
        assert_int_equal(load_perms("p.conf", &err), -EINVAL);
        assert_non_null(strstr(err, "writable by group or others"));
        free(err);
        assert_int_equal(chmod(path, 0644), 0);

        /* Not owned by root. */
        assert_int_equal(chown(path, 65534, 65534), 0);
        assert_int_equal(load_perms("p.conf", &err), -EINVAL);
        assert_non_null(strstr(err, "not owned by root"));
        free(err);
        assert_int_equal(chown(path, 0, 0), 0);

        /* A symlink to a good file. */
        pathf(link, sizeof(link), "link.conf");
        (void) unlink(link);
        assert_int_equal(symlink(path, link), 0);
        assert_int_equal(load_perms("link.conf", &err), -EINVAL);
        assert_non_null(strstr(err, "symbolic link"));
        free(err);

        /* Token readable by others; then missing; then not root-owned. */
        write_file("token", 0644, "secret\n");
        assert_int_equal(load_perms("p.conf", &err), -EINVAL);
        assert_non_null(strstr(err, "p.conf:3: token_file"));
        assert_non_null(strstr(err, "readable by group or others"));
        free(err);
        write_file("token", 0600, "secret\n");
        perms_config("no-token", "");
        assert_int_equal(load_perms("p.conf", &err), -EINVAL);
        assert_non_null(strstr(err, "does not exist"));
        free(err);
        perms_config("token", "");
        pathf(path, sizeof(path), "token");
        assert_int_equal(chown(path, 65534, 0), 0);
        assert_int_equal(load_perms("p.conf", &err), -EINVAL);
        assert_non_null(strstr(err, "not owned by root"));
        free(err);
        assert_int_equal(chown(path, 0, 0), 0);

        /* A group-writable drop-in directory, then a world-writable drop-in. */
        pathf(path, sizeof(path), "p.conf.d");
        assert_int_equal(mkdir(path, 0775), 0);
        assert_int_equal(chmod(path, 0775), 0);
        assert_int_equal(load_perms("p.conf", &err), -EINVAL);
        assert_non_null(strstr(err, "Drop-in directory"));
        free(err);
        assert_int_equal(chmod(path, 0755), 0);
        write_file("p.conf.d/50-x.conf", 0646, "[risk]\nttl = 1h\n");
        assert_int_equal(load_perms("p.conf", &err), -EINVAL);
        assert_non_null(strstr(err, "50-x.conf"));
        free(err);
        write_file("p.conf.d/50-x.conf", 0644, "[risk]\nttl = 1h\n");
        assert_int_equal(load_perms("p.conf", &err), 0);
        free(err);

        /* map_file world-writable; oauth2 secret group-readable; a group-writable hooks dir. */
        write_file("users.map", 0666, "a b\n");
        {
                char extra[512];
                snprintf(extra, sizeof(extra), "[subjects]\nmap_file = %s/users.map\n[transmitter]\n", tmpdir);
                perms_config("token", extra);
        }
        assert_int_equal(load_perms("p.conf", &err), -EINVAL);
        assert_non_null(strstr(err, "map_file"));
        free(err);
        /* Root-only is fine, in a directory only root may enter too: the root daemon maps
         * subjects, the network worker never reads the file. */
        write_file("users.map", 0600, "a b\n");
        assert_int_equal(load_perms("p.conf", &err), 0);
        free(err);

        write_file("secret", 0640, "s\n");
        {
                char extra[512];
                snprintf(extra, sizeof(extra),
                         "auth = oauth2\noauth2_token_url = https://idp/t\noauth2_client_id = c\n"
                         "oauth2_client_secret_file = %s/secret\n",
                         tmpdir);
                perms_config("token", extra);
        }
        assert_int_equal(load_perms("p.conf", &err), -EINVAL);
        assert_non_null(strstr(err, "oauth2_client_secret_file"));
        free(err);

        perms_config("token", "");
        pathf(path, sizeof(path), "hooks");
        assert_int_equal(chmod(path, 0777), 0);
        assert_int_equal(load_perms("p.conf", &err), -EINVAL);
        assert_non_null(strstr(err, "Hooks directory"));
        free(err);
        assert_int_equal(chmod(path, 0755), 0);

        /* A missing or group-writable workflow hook is a warning (the rule fails when it
         * matches; --check-config refuses it), not a reason to stop enforcing. */
        {
                char extra[256];
                snprintf(extra, sizeof(extra), "[rule w]\naction = workflow\nworkflow = notify\n[transmitter]\n");
                perms_config("token", extra);
        }
        assert_int_equal(load_perms("p.conf", &err), 0);
        assert_non_null(strstr(err, "warning"));
        free(err);
        write_file("hooks/notify", 0775, "#!/bin/sh\n");
        assert_int_equal(load_perms("p.conf", &err), 0);
        assert_non_null(strstr(err, "warning: "));
        assert_non_null(strstr(err, "p.conf:6: Workflow hook"));
        assert_non_null(strstr(err, "writable by group or others"));
        free(err);
        write_file("hooks/notify", 0755, "#!/bin/sh\n");
        assert_int_equal(load_perms("p.conf", &err), 0);
        assert_null(strstr(err, "Workflow hook"));
        free(err);

        /* The same bad token passes without check_perms. */
        write_file("token", 0644, "secret\n");
        {
                Config *c = NULL;
                pathf(path, sizeof(path), "p.conf");
                assert_int_equal(config_load(path, false, &c), 0);
                config_free(c);
        }
}

static int group_setup(void **state) {
        const char *t = getenv("TMPDIR");

        if (isempty(t) || strlen(t) > 60)
                t = "/tmp";
        snprintf(tmpdir, sizeof(tmpdir), "%s/ssf-test-config-XXXXXX", t);
        if (!mkdtemp(tmpdir))
                return -1;
        unsetenv("JOURNAL_STREAM");
        unsetenv("SSF_LOG_LEVEL");
        log_setup(true);
        log_set_max_level(LOG_INFO);
        return 0;
}

static int group_teardown(void **state) {
        char cmd[256];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_every_key),
                cmocka_unit_test(test_product_example),
                cmocka_unit_test(test_installed_example),
                cmocka_unit_test(test_durations),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_config_url_issuer),
                cmocka_unit_test(test_all_errors_reported),
                cmocka_unit_test(test_rule_warn),
                cmocka_unit_test(test_syntax),
                cmocka_unit_test(test_dropins),
                cmocka_unit_test(test_missing_file),
                cmocka_unit_test(test_detection_levels),
                cmocka_unit_test(test_to_string),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_perms),
                cmocka_unit_test(test_client_auth_keys),
                cmocka_unit_test(test_named_transmitters),
                cmocka_unit_test(test_pair_example),
        };

        return cmocka_run_group_tests_name("config", tests, group_setup, group_teardown);
}
