/* SPDX-License-Identifier: MIT */
/* Detections derived from event claims (PRODUCT.md "Additions"): the glob matcher
 * (shared/pattern.c), [detection NAME] and device_scope parsing and their errors with
 * FILE:LINE (config.c; log.c's stderr is captured), classification by claims in root
 * (risk.c), and the rules a level-none detection runs (policy.c). */
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
#include <jansson.h>

#include "config.h"
#include "events.h"
#include "log.h"
#include "macro.h"
#include "nss-fixture.h"
#include "pattern.h"
#include "policy.h"
#include "risk.h"
#include "stderr-capture.h"
#include "subject.h"

#define HEAD "[transmitter]\nissuer = https://x\nauth = none\n[subjects]\ndomains = example.com\n"
#define HEAD_LINES 5

static char tmpdir[64] = "/tmp/test-detections-XXXXXX";

static int setup(void **state) {
        if (!mkdtemp(tmpdir))
                return -1;
        return 0;
}

static int teardown(void **state) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

static int load(const char *text, Config **ret, char **ret_err) {
        int r;

        capture_begin(tmpdir);
        r = config_load_buffer("mem", text, strlen(text), ret);
        *ret_err = capture_end();
        return r;
}

/* ---- the matcher ------------------------------------------------------------------------- */

static bool m(const char *p, const char *t) {
        assert_true(pattern_valid(p));
        return pattern_match(p, t, strlen(t));
}

static void test_pattern(void **state) {
        assert_true(m("fido2", "fido2"));
        assert_false(m("fido2", "FIDO2"));     /* case-sensitive */
        assert_false(m("fido2", "fido2-x"));
        assert_true(m("fido2-*", "fido2-"));
        assert_true(m("fido2-*", "fido2-u2f"));
        assert_false(m("fido2-*", "fido2"));
        assert_true(m("*", ""));
        assert_false(m("?", ""));
        assert_true(m("p?one", "phone"));
        assert_true(m("*a*b*c", "xxaxxbxxbxc"));
        assert_false(m("*a*b*c", "xxaxxbxxbx"));
        assert_true(m("a**b", "ab"));
        assert_true(m("[ab]x", "bx"));
        assert_false(m("[!ab]x", "bx"));
        assert_true(m("[^ab]x", "cx"));
        assert_true(m("[a-c]", "b"));
        assert_false(m("[a-c]", "d"));
        assert_true(m("[]]", "]"));
        assert_true(m("[!]]", "a"));
        assert_true(m("\\*", "*"));
        assert_false(m("\\*", "x"));
        assert_true(m("a\\?", "a?"));
        assert_true(m("/x/*", "/x/y/z"));      /* no FNM_PATHNAME: '*' crosses '/' */
        assert_true(m(".*", ".hidden"));       /* no FNM_PERIOD */
        /* Bytes after a NUL are compared too: the length decides. */
        assert_false(pattern_match("a", "a\0b", 3));
        assert_true(pattern_match("a*", "a\0b", 3));

        assert_false(pattern_valid("[ab"));
        assert_false(pattern_valid("[!"));
        assert_false(pattern_valid("[[:alpha:]]"));
        assert_false(pattern_valid("x\\"));
        assert_false(pattern_valid(NULL));
        assert_true(pattern_valid(""));
}

/* Many stars against a long text that almost matches: the matcher never backtracks beyond the
 * last star, so this ends (a backtracking fnmatch() explores about n^k paths). */
static void test_pattern_hostile(void **state) {
        static char text[65537];
        memset(text, 'a', sizeof text - 1);
        assert_false(pattern_match("*a*a*a*a*a*a*a*a*a*a*a*a*b", text, sizeof text - 1));
        text[sizeof text - 2] = 'b';
        assert_true(pattern_match("*a*a*a*a*a*a*a*a*a*a*a*a*b", text, sizeof text - 1));
}

/* ---- configuration ----------------------------------------------------------------------- */

static const char *const okta_mfa =
        HEAD
        "[rule mfa-workflow]\n"
        "detections = mfa-enrolled\n"
        "action = workflow\n"
        "workflow = notify-admin\n"
        "[detection mfa-enrolled]\n"
        "event = credential-change\n"
        "claims = change_type=create credential_type=fido2,fido2-*,phone-voice\n"
        "level = none\n"
        "[detection password-reset]\n"
        "event = credential-change\n"
        "claims = \"change_type=update credential_type=password\"\n"
        "level = low\n";

static void test_config_sections(void **state) {
        _cleanup_free_ char *err = NULL;
        Config *c = NULL;
        const DetectionDef *d;

        assert_int_equal(load(okta_mfa, &c, &err), 0);
        assert_int_equal(c->n_detection_defs, 2);
        d = &c->detection_defs[0];
        assert_string_equal(d->name, "mfa-enrolled");
        assert_string_equal(d->event, "credential-change");
        assert_int_equal(d->level, RISK_NONE);
        assert_int_equal(d->line, HEAD_LINES + 5);
        assert_int_equal(d->n_claims, 2);
        assert_string_equal(d->claims[0].member, "change_type");
        assert_string_equal(d->claims[0].patterns[0], "create");
        assert_null(d->claims[0].patterns[1]);
        assert_string_equal(d->claims[1].member, "credential_type");
        assert_string_equal(d->claims[1].patterns[0], "fido2");
        assert_string_equal(d->claims[1].patterns[1], "fido2-*");
        assert_string_equal(d->claims[1].patterns[2], "phone-voice");
        assert_null(d->claims[1].patterns[3]);
        assert_int_equal(c->detection_defs[1].level, RISK_LOW);
        assert_ptr_equal(config_detection_def(c, "password-reset"), &c->detection_defs[1]);
        assert_null(config_detection_def(c, "credential-change"));
        /* The rule before the section names it: checked once the file is read. */
        assert_string_equal(c->rules[0].detections[0], "mfa-enrolled");
        assert_int_equal(c->device_scope, DEVICE_SCOPE_ANY);
        config_free(c);
}

static const struct {
        const char *text;
        unsigned line; /* after HEAD */
        const char *message;
} errors[] = {
        { "[detection a]\nevent = nope\nclaims = x=y\nlevel = low\n", 2, "unknown event 'nope'" },
        { "[detection a]\nevent = opt-out\nclaims = x=y\nlevel = low\n", 2, "unknown event 'opt-out'" },
        { "[detection a]\nevent = ip-change\nclaims = x=y\nlevel = low\n", 2, "unknown event 'ip-change'" },
        { "[detection a]\nevent = risk-level-change\nclaims = x=y\nlevel = low\n", 2,
          "carries its own level" },
        { "[detection a]\nevent = account-enabled\nclaims = x=y\nlevel = low\n", 2, "only clears" },
        { "[detection a]\nevent = credential-change\nclaims = change_type\nlevel = low\n", 3,
          "invalid term 'change_type'" },
        { "[detection a]\nevent = credential-change\nclaims = =x\nlevel = low\n", 3, "invalid term '=x'" },
        { "[detection a]\nevent = credential-change\nclaims = a/b=x\nlevel = low\n", 3, "invalid term" },
        { "[detection a]\nevent = credential-change\nclaims = a=\nlevel = low\n", 3, "invalid pattern ''" },
        { "[detection a]\nevent = credential-change\nclaims = a=x,,y\nlevel = low\n", 3, "invalid pattern ''" },
        { "[detection a]\nevent = credential-change\nclaims = a=x,\nlevel = low\n", 3, "invalid pattern ''" },
        { "[detection a]\nevent = credential-change\nclaims = a=[x\nlevel = low\n", 3, "invalid pattern '[x'" },
        { "[detection a]\nevent = credential-change\nclaims = a=x a=y\nlevel = low\n", 3, "given twice" },
        { "[detection a]\nevent = credential-change\nclaims =\nlevel = low\n", 3, "must not be empty" },
        { "[detection a]\nevent = credential-change\nclaims = a=x\nlevel = severe\n", 4, "Invalid 'level'" },
        { "[detection a]\nevent = credential-change\nclaims = a=x\nlevel = secure\n", 4, "Invalid 'level'" },
        { "[detection a]\nevent = credential-change\nclaims = a=x\n", 1, "Detection 'a' has no 'level'" },
        { "[detection a]\nclaims = a=x\nlevel = low\n", 1, "Detection 'a' has no 'event'" },
        { "[detection a]\nevent = credential-change\nlevel = low\n", 1, "Detection 'a' has no 'claims'" },
        { "[detection a]\nevent = credential-change\nclaims = a=x\nlevel = low\nwhat = 1\n", 5,
          "Unknown key 'what' in [detection a]" },
        { "[detection a]\nevent = credential-change\nevent = credential-change\n", 3, "Duplicate key 'event'" },
        { "[detection a]\nevent = credential-change\nclaims = a=x\nlevel = low\n[detection a]\n", 5,
          "defined twice" },
        { "[detection]\n", 1, "without a name" },
        { "[detection a b]\n", 1, "Invalid detection name 'a b'" },
        { "[detection -a]\n", 1, "Invalid detection name" },
        { "[detection credential-change]\n", 1, "is a built-in detection name" },
        { "[detection opt-out]\n", 1, "is a built-in detection name" },
        { "[detection manual]\n", 1, "is a built-in detection name" },
        { "[rule r]\naction = logout\ndetections = session-revoked, mfa-enroled\n", 3,
          "unknown detection 'mfa-enroled'" },
        { "[subjects]\ndevice_scope = this-host\n", 2, "needs 'device_id'" },
        { "[subjects]\ndevice_scope = phone\n", 2, "Invalid value for 'device_scope'" },
};

static void test_config_errors(void **state) {
        for (size_t i = 0; i < ARRAY_SIZE(errors); i++) {
                _cleanup_free_ char *text = NULL, *err = NULL;
                char want[64];
                Config *c = NULL;
                int r;

                assert_true(asprintf(&text, HEAD "%s", errors[i].text) > 0);
                r = load(text, &c, &err);
                snprintf(want, sizeof want, "mem:%u: ", HEAD_LINES + errors[i].line);
                if (r != -EINVAL || !strstr(err, want) || !strstr(err, errors[i].message)) {
                        print_error("case %zu: r=%d, wanted '%s' ... '%s', got:\n%s\n", i, r, want,
                                    errors[i].message, err);
                        fail();
                }
                assert_null(c);
        }
}

/* A drop-in redefines a section in place (all its keys) and may define the one a rule of the
 * main file names. */
static void test_config_dropins(void **state) {
        _cleanup_free_ char *err = NULL;
        char path[192], dir[192];
        Config *c = NULL;
        FILE *f;
        int r;

        snprintf(path, sizeof path, "%s/main.conf", tmpdir);
        snprintf(dir, sizeof dir, "%s/main.conf.d", tmpdir);
        assert_int_equal(mkdir(dir, 0755), 0);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs(HEAD "[detection a]\nevent = credential-change\nclaims = change_type=create\nlevel = low\n"
                   "[rule r]\ndetections = b\naction = none\n", f);
        fclose(f);
        snprintf(path, sizeof path, "%s/main.conf.d/10-x.conf", tmpdir);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs("[detection a]\nevent = session-revoked\nclaims = x=1\nlevel = high\n"
              "[detection b]\nevent = opt-in\nclaims = y=2\nlevel = none\n", f);
        fclose(f);
        snprintf(path, sizeof path, "%s/main.conf", tmpdir);
        capture_begin(tmpdir);
        r = config_load(path, false, &c);
        err = capture_end();
        if (r < 0)
                fail_msg("config_load: %d\n%s", r, err);
        assert_int_equal(c->n_detection_defs, 2);
        assert_string_equal(c->detection_defs[0].name, "a");
        assert_string_equal(c->detection_defs[0].event, "session-revoked");
        assert_int_equal(c->detection_defs[0].level, RISK_HIGH);
        assert_string_equal(c->detection_defs[0].claims[0].member, "x");
        assert_string_equal(c->detection_defs[1].name, "b");
        config_free(c);
}

/* ---- classification ---------------------------------------------------------------------- */

static Config *okta_config(void) {
        _cleanup_free_ char *err = NULL;
        Config *c = NULL;

        if (load(okta_mfa, &c, &err) < 0)
                fail_msg("%s", err);
        return c;
}

static Detection classify(const Config *c, const char *event, const char *json) {
        _cleanup_free_ char *uri = NULL;
        json_error_t jerr;
        json_t *ev = json_loads(json, 0, &jerr);
        Detection d;

        assert_non_null(ev);
        assert_true(asprintf(&uri, "%s%s", CAEP_EVENT_PREFIX, event) > 0);
        memset(&d, 0xaa, sizeof d);
        assert_int_equal(risk_classify(uri, ev, c, &d), 0);
        json_decref(ev);
        return d;
}

static void test_classify_claims(void **state) {
        Config *c = okta_config();
        Detection d;

        d = classify(c, "credential-change", "{\"change_type\":\"create\",\"credential_type\":\"fido2\"}");
        assert_string_equal(d.name, "mfa-enrolled");
        assert_int_equal(d.effect, DETECTION_RECORD);
        assert_int_equal(d.level, RISK_NONE);
        assert_true(d.defined);
        assert_true(d.explicit_only);

        d = classify(c, "credential-change",
                     "{\"change_type\":\"create\",\"credential_type\":\"fido2-u2f\",\"x\":1}");
        assert_string_equal(d.name, "mfa-enrolled");

        /* Not every term matches: the event's own detection at its level. */
        d = classify(c, "credential-change", "{\"change_type\":\"revoke\",\"credential_type\":\"fido2\"}");
        assert_string_equal(d.name, "credential-change");
        assert_int_equal(d.effect, DETECTION_RAISE);
        assert_int_equal(d.level, RISK_MEDIUM);
        assert_false(d.defined);
        assert_false(d.explicit_only);

        /* Case-sensitive. */
        d = classify(c, "credential-change", "{\"change_type\":\"CREATE\",\"credential_type\":\"fido2\"}");
        assert_string_equal(d.name, "credential-change");

        /* The second section, at its own level. */
        d = classify(c, "credential-change", "{\"change_type\":\"update\",\"credential_type\":\"password\"}");
        assert_string_equal(d.name, "password-reset");
        assert_int_equal(d.effect, DETECTION_RAISE);
        assert_int_equal(d.level, RISK_LOW);

        /* Another event type with the same members: its own detection. */
        d = classify(c, "token-claims-change", "{\"change_type\":\"create\",\"credential_type\":\"fido2\"}");
        assert_string_equal(d.name, "token-claims-change");
        config_free(c);
}

static DetectionDef *def_new(const char *name, const char *event, RiskLevel level) {
        DetectionDef *d = calloc(1, sizeof *d);
        assert_non_null(d);
        d->name = strdup(name);
        d->event = strdup(event);
        d->level = level;
        return d;
}

static void def_add_term(DetectionDef *d, const char *member, const char *p1, const char *p2) {
        d->claims = reallocarray(d->claims, d->n_claims + 1, sizeof(ClaimTerm));
        assert_non_null(d->claims);
        d->claims[d->n_claims].member = strdup(member);
        d->claims[d->n_claims].patterns = calloc(3, sizeof(char *));
        d->claims[d->n_claims].patterns[0] = strdup(p1);
        d->claims[d->n_claims].patterns[1] = p2 ? strdup(p2) : NULL;
        d->n_claims++;
}

static void def_free(DetectionDef *d) {
        for (size_t i = 0; i < d->n_claims; i++) {
                free(d->claims[i].member);
                free(d->claims[i].patterns[0]);
                free(d->claims[i].patterns[1]);
                free(d->claims[i].patterns);
        }
        free(d->claims);
        free(d->name);
        free(d->event);
        free(d);
}

static bool matches(const DetectionDef *d, const char *json) {
        json_error_t jerr;
        json_t *ev = json_loads(json, JSON_ALLOW_NUL, &jerr);
        bool r;

        assert_non_null(ev);
        r = risk_claims_match(d, ev);
        json_decref(ev);
        return r;
}

/* How members of each JSON type compare. */
static void test_claims_member_types(void **state) {
        DetectionDef *d = def_new("x", "credential-change", RISK_LOW);

        def_add_term(d, "n", "4*", NULL);
        assert_true(matches(d, "{\"n\":42}"));
        assert_true(matches(d, "{\"n\":\"42\"}"));
        assert_false(matches(d, "{\"n\":-42}"));
        assert_false(matches(d, "{\"n\":4.5}"));      /* real numbers never match */
        assert_false(matches(d, "{\"n\":null}"));
        assert_false(matches(d, "{\"n\":[\"42\"]}"));
        assert_false(matches(d, "{\"n\":{\"v\":\"42\"}}"));
        assert_false(matches(d, "{}"));                /* missing */
        assert_false(matches(d, "{\"N\":42}"));        /* member names are case-sensitive too */
        assert_false(matches(d, "{\"n\":\"4\\u0000x\"}")); /* a NUL inside: no text */
        def_free(d);

        d = def_new("x", "credential-change", RISK_LOW);
        def_add_term(d, "b", "true", "1");
        assert_true(matches(d, "{\"b\":true}"));
        assert_false(matches(d, "{\"b\":false}"));
        assert_true(matches(d, "{\"b\":1}"));
        /* Every term must match; either pattern of a term may. */
        def_add_term(d, "t", "a*", "b*");
        assert_true(matches(d, "{\"b\":true,\"t\":\"bz\"}"));
        assert_false(matches(d, "{\"b\":true,\"t\":\"cz\"}"));
        assert_false(matches(d, "{\"b\":false,\"t\":\"az\"}"));
        assert_false(matches(d, "[1]"));
        def_free(d);
}

/* Sections for device-compliance-change name the not-compliant events only: a compliant one
 * still clears; events carrying a level keep it; the first matching section wins. */
static void test_classify_scope(void **state) {
        _cleanup_free_ char *err = NULL;
        Config *c = NULL;
        Detection d;

        assert_int_equal(load(HEAD
                              "[detection any-status]\nevent = device-compliance-change\n"
                              "claims = current_status=*\nlevel = low\n"
                              "[detection later]\nevent = device-compliance-change\n"
                              "claims = current_status=not-compliant\nlevel = high\n",
                              &c, &err), 0);
        d = classify(c, "device-compliance-change", "{\"current_status\":\"compliant\"}");
        assert_int_equal(d.effect, DETECTION_CLEAR);
        assert_string_equal(d.clears, "device-compliance-change");
        d = classify(c, "device-compliance-change", "{\"current_status\":\"not-compliant\"}");
        assert_string_equal(d.name, "any-status"); /* first in file order */
        assert_int_equal(d.effect, DETECTION_RAISE);
        assert_int_equal(d.level, RISK_LOW);
        d = classify(c, "risk-level-change", "{\"current_level\":\"HIGH\",\"current_status\":\"x\"}");
        assert_string_equal(d.name, "risk-level-change");
        assert_true(d.carries_level);
        /* Without sections a configured-none detection is explicit_only, a non-signal is not. */
        d = classify(c, "session-established", "{}");
        assert_int_equal(d.effect, DETECTION_RECORD);
        assert_true(d.explicit_only);
        d = classify(c, "assurance-level-change", "{\"change_direction\":\"increase\"}");
        assert_int_equal(d.effect, DETECTION_RECORD);
        assert_false(d.explicit_only);
        config_free(c);
}

/* ---- policy ------------------------------------------------------------------------------ */

static void test_policy_named(void **state) {
        _cleanup_free_ char *err = NULL;
        char *groups[] = { NULL };
        Config *c = NULL;
        const Rule *r;

        assert_int_equal(load(HEAD
                              "[detection mfa-enrolled]\nevent = credential-change\n"
                              "claims = change_type=create\nlevel = none\n"
                              "[rule everything]\ndetections = *\naction = logout\n"
                              "[rule no-detections]\naction = logout\n"
                              "[rule high-only]\ndetections = mfa-enrolled\nlevels = high\naction = none\n"
                              "[rule mfa]\ndetections = session-revoked, mfa-enrolled\n"
                              "action = workflow\nworkflow = notify-admin\n",
                              &c, &err), 0);
        /* "*" and rules without detections run for every risk signal ... */
        r = policy_match(c, NULL, "alice", groups, "mfa-enrolled", RISK_NONE);
        assert_non_null(r);
        assert_string_equal(r->name, "everything");
        /* ... but a detection at level none runs only the rules that name it, at the user's level. */
        r = policy_match_named(c, NULL, "alice", groups, "mfa-enrolled", RISK_NONE);
        assert_non_null(r);
        assert_string_equal(r->name, "mfa");
        r = policy_match_named(c, NULL, "alice", groups, "mfa-enrolled", RISK_HIGH);
        assert_non_null(r);
        assert_string_equal(r->name, "high-only");
        assert_null(policy_match_named(c, NULL, "alice", groups, "session-established", RISK_NONE));
        config_free(c);
}

/* ---- device_scope ------------------------------------------------------------------------ */

static SubjectMatch resolve(const Config *c, const char *json, int expect) {
        json_error_t jerr;
        json_t *subject = json_loads(json, 0, &jerr);
        SubjectMatch m = {};

        assert_non_null(subject);
        assert_int_equal(subject_resolve(c, subject, &m), expect);
        json_decref(subject);
        return m;
}

static void test_device_scope(void **state) {
        char *domains[] = { (char *) (uintptr_t) "example.com", NULL };
        Config c = {
                .map = SUBJECT_MAP_EMAIL_LOCALPART,
                .domains = domains,
                .device_id = (char *) (uintptr_t) "host-1",
                .min_uid = 1000,
                .max_uid = 60000,
                .device_scope = DEVICE_SCOPE_THIS_HOST,
        };
        const char *phone = "{\"format\":\"complex\",\"user\":{\"format\":\"email\","
                            "\"email\":\"alice@example.com\"},\"device\":{\"format\":\"opaque\","
                            "\"id\":\"phone-9\"}}";
        const char *host = "{\"user\":{\"format\":\"email\",\"email\":\"alice@example.com\"},"
                           "\"device\":{\"format\":\"iss_sub\",\"iss\":\"https://x\",\"sub\":\"host-1\"}}";
        const char *no_id = "{\"user\":{\"format\":\"email\",\"email\":\"alice@example.com\"},"
                            "\"device\":{\"format\":\"opaque\"}}";
        SubjectMatch m;

        /* Another device: the user is still named (for the record), with the reason. */
        m = resolve(&c, phone, 0);
        assert_string_equal(m.users[0], "alice");
        assert_null(m.users[1]);
        assert_non_null(m.not_here);
        assert_non_null(strstr(m.not_here, "device 'phone-9' is not this host (device_id 'host-1')"));
        subject_match_done(&m);
        assert_null(m.not_here);

        m = resolve(&c, host, 0);
        assert_string_equal(m.users[0], "alice");
        assert_null(m.not_here);
        subject_match_done(&m);

        m = resolve(&c, no_id, 0);
        assert_non_null(m.not_here);
        assert_non_null(strstr(m.not_here, "no identifier"));
        subject_match_done(&m);

        /* A user alone is not about a device: it applies. */
        m = resolve(&c, "{\"user\":{\"format\":\"email\",\"email\":\"alice@example.com\"}}", 0);
        assert_string_equal(m.users[0], "alice");
        assert_null(m.not_here);
        subject_match_done(&m);

        m = resolve(&c, "{\"user\":{\"format\":\"email\",\"email\":\"alice@example.com\"},"
                        "\"device\":\"phone-9\"}", -EBADMSG);

        /* device_scope = any: the user, whatever the device (as before). */
        c.device_scope = DEVICE_SCOPE_ANY;
        m = resolve(&c, phone, 0);
        assert_string_equal(m.users[0], "alice");
        assert_null(m.not_here);
        subject_match_done(&m);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pattern),
                cmocka_unit_test(test_pattern_hostile),
                cmocka_unit_test(test_config_sections),
                cmocka_unit_test(test_config_errors),
                cmocka_unit_test(test_config_dropins),
                cmocka_unit_test(test_classify_claims),
                cmocka_unit_test(test_claims_member_types),
                cmocka_unit_test(test_classify_scope),
                cmocka_unit_test(test_policy_named),
                cmocka_unit_test(test_device_scope),
        };

        (void) argc;
        nss_fixture_exec(argv);

        log_set_max_level(LOG_INFO);
        return cmocka_run_group_tests(tests, setup, teardown);
}
