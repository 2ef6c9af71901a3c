/* SPDX-License-Identifier: MIT */
/* policy.c: first match wins, group globs and excludes, levels, detections, and the group
 * database lookup (root is in group root). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "policy.h"
#include "strv.h"

static Config *load(const char *rules) {
        char text[4096];
        Config *c = NULL;

        snprintf(text, sizeof(text), "[subjects]\ndomains = example.com\n"
                 "[transmitter]\nissuer = https://idp.example.com\nauth = none\n%s", rules);
        assert_int_equal(config_load_buffer("policy.conf", text, strlen(text), &c), 0);
        return c;
}

static const char *match(const Config *c, char *const *groups, const char *det, RiskLevel l) {
        const Rule *r = policy_match(c, NULL, "nosuchuser-ssf-test", groups, det, l);
        return r ? r->name : NULL;
}

static void test_first_match_wins(void **state) {
        Config *c = load("[rule a]\nlevels = high\naction = logout\n"
                         "[rule b]\nlevels = high, medium\naction = workflow\nworkflow = w\n"
                         "[rule c]\naction = none\n");
        char *g[] = { (char *) (uintptr_t) "users", NULL };

        assert_string_equal(match(c, g, "session-revoked", RISK_HIGH), "a");
        assert_string_equal(match(c, g, "session-revoked", RISK_MEDIUM), "b");
        assert_string_equal(match(c, g, "session-revoked", RISK_LOW), "c");
        assert_string_equal(match(c, g, "session-revoked", RISK_NONE), "c");
        assert_null(match(c, g, "session-revoked", _RISK_INVALID));
        assert_null(match(c, g, "session-revoked", _RISK_MAX));
        config_free(c);

        /* No rules: nothing matches. */
        c = load("");
        assert_null(match(c, g, "session-revoked", RISK_HIGH));
        config_free(c);
        assert_null(policy_match(NULL, NULL, "x", g, "session-revoked", RISK_HIGH));
}

static void test_levels(void **state) {
        Config *c = load("[rule lo]\nlevels = low none\naction = none\n"
                         "[rule any]\nlevels = *\naction = logout\n");
        char *g[] = { NULL };

        assert_string_equal(match(c, g, "opt-in", RISK_NONE), "lo");
        assert_string_equal(match(c, g, "opt-in", RISK_LOW), "lo");
        assert_string_equal(match(c, g, "opt-in", RISK_MEDIUM), "any");
        assert_string_equal(match(c, g, "opt-in", RISK_HIGH), "any");
        config_free(c);
}

static void test_detections(void **state) {
        Config *c = load("[rule dev]\ndetections = device-compliance-change, credential-compromise\naction = logout\n"
                         "[rule star]\ndetections = *\nlevels = high\naction = none\n");
        char *g[] = { NULL };

        assert_string_equal(match(c, g, "device-compliance-change", RISK_LOW), "dev");
        assert_string_equal(match(c, g, "credential-compromise", RISK_HIGH), "dev");
        assert_string_equal(match(c, g, "session-revoked", RISK_HIGH), "star");
        assert_null(match(c, g, "session-revoked", RISK_MEDIUM));
        assert_null(match(c, g, NULL, RISK_MEDIUM));
        config_free(c);
}

static void test_groups(void **state) {
        Config *c = load("[rule ops]\ngroups = !ops-oncall, ops*\naction = workflow\nworkflow = w\n"
                         "[rule staff]\ngroups = staff wheel\naction = logout\n"
                         "[rule not-admins]\ngroups = !admin?\naction = none\n");
        char *ops[] = { (char *) (uintptr_t) "users", (char *) (uintptr_t) "ops-team", NULL };
        char *oncall[] = { (char *) (uintptr_t) "ops-team", (char *) (uintptr_t) "ops-oncall", NULL };
        char *wheel[] = { (char *) (uintptr_t) "wheel", NULL };
        char *admin[] = { (char *) (uintptr_t) "admin1", (char *) (uintptr_t) "users", NULL };
        char *admin_staff[] = { (char *) (uintptr_t) "staff", (char *) (uintptr_t) "admin1", NULL };
        char *none[] = { NULL };

        assert_string_equal(match(c, ops, "session-revoked", RISK_HIGH), "ops");
        /* Excluded from "ops" even though ops* matches; then no other rule includes it but the
         * exclude-only rule, which matches (not in admin?). */
        assert_string_equal(match(c, oncall, "session-revoked", RISK_HIGH), "not-admins");
        assert_string_equal(match(c, wheel, "session-revoked", RISK_HIGH), "staff");
        assert_null(match(c, admin, "session-revoked", RISK_HIGH));
        assert_string_equal(match(c, admin_staff, "session-revoked", RISK_HIGH), "staff");
        assert_string_equal(match(c, none, "session-revoked", RISK_HIGH), "not-admins");
        config_free(c);

        /* "*" matches a user in no group; an exclude still wins over "*". */
        c = load("[rule r]\ngroups = *, !banned\naction = logout\n");
        assert_string_equal(match(c, none, "opt-in", RISK_LOW), "r");
        {
                char *banned[] = { (char *) (uintptr_t) "banned", NULL };
                assert_null(match(c, banned, "opt-in", RISK_LOW));
        }
        config_free(c);
}

static void test_hand_built_rules(void **state) {
        /* NULL lists and levels 0 mean '*'. */
        Rule rules[] = { { .name = (char *) (uintptr_t) "all", .action = ACTION_NONE } };
        Config c = { .rules = rules, .n_rules = 1 };
        char *g[] = { NULL };

        assert_string_equal(match(&c, g, "whatever", RISK_HIGH), "all");
        assert_string_equal(match(&c, NULL, NULL, RISK_NONE), "all");
}

static void test_user_groups_lookup(void **state) {
        char **g = policy_user_groups("root");
        Config *c;
        const Rule *r;

        assert_non_null(g);
        assert_true(strv_contains(g, "root"));
        strv_free(g);

        errno = 0;
        assert_null(policy_user_groups("nosuchuser-ssf-test"));
        assert_int_equal(errno, ENOENT);
        assert_null(policy_user_groups(""));
        assert_null(policy_user_groups(NULL));

        /* Looked up from the group database when no groups are passed. */
        c = load("[rule not-root]\ngroups = !root\naction = logout\n"
                 "[rule root]\ngroups = ro?t\naction = none\n");
        r = policy_match(c, NULL, "root", NULL, "session-revoked", RISK_HIGH);
        assert_non_null(r);
        assert_string_equal(r->name, "root");
        /* An unknown user is in no group: excluded by nothing, included by no pattern. */
        r = policy_match(c, NULL, "nosuchuser-ssf-test", NULL, "session-revoked", RISK_HIGH);
        assert_non_null(r);
        assert_string_equal(r->name, "not-root");
        config_free(c);
}

/* transmitters = NAME…: a rule matches only SETs from those transmitters. */
static void test_rule_transmitters(void **state) {
        _cleanup_(config_freep) Config *c = NULL;
        static const char text[] =
                "[subjects]\ndomains = example.com\n"
                "[transmitter]\nissuer = https://idp.example.com\nauth = none\n"
                "[transmitter mdm]\nissuer = https://mdm.example.com\nauth = none\n"
                "[rule from-mdm]\ntransmitters = mdm\nlevels = high\naction = logout\n"
                "[rule any]\nlevels = high\naction = none\n";
        char *g[] = { NULL };
        const Rule *r;

        assert_int_equal(config_load_buffer("t.conf", text, sizeof(text) - 1, &c), 0);
        r = policy_match(c, "mdm", "nosuchuser-ssf-test", g, "session-revoked", RISK_HIGH);
        assert_non_null(r);
        assert_string_equal(r->name, "from-mdm");
        r = policy_match(c, "default", "nosuchuser-ssf-test", g, "session-revoked", RISK_HIGH);
        assert_non_null(r);
        assert_string_equal(r->name, "any");
        r = policy_match(c, NULL, "nosuchuser-ssf-test", g, "session-revoked", RISK_HIGH);
        assert_string_equal(r->name, "any");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_first_match_wins),
                cmocka_unit_test(test_rule_transmitters),
                cmocka_unit_test(test_levels),
                cmocka_unit_test(test_detections),
                cmocka_unit_test(test_groups),
                cmocka_unit_test(test_hand_built_rules),
                cmocka_unit_test(test_user_groups_lookup),
        };

        log_setup(true);
        return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
