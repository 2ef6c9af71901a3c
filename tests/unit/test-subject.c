/* SPDX-License-Identifier: MIT */
/* Subject -> local users. Uses accounts every Debian system has (root, daemon, nobody). */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
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
#include "macro.h"
#include "strv.h"
#include "subject.h"

static char tmpdir[4096];
static char map_path[sizeof tmpdir + 32];
static char *domains[] = { (char *) (uintptr_t) "Example.COM", (char *) (uintptr_t) "corp.example", NULL };

static int setup(void **state) {
        const char *t = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/test-subject-XXXXXX", t ? t : P_tmpdir);
        if (!mkdtemp(tmpdir))
                return -1;
        snprintf(map_path, sizeof map_path, "%s/users.map", tmpdir);
        return 0;
}

static int teardown(void **state) {
        char link[sizeof tmpdir + 32];
        snprintf(link, sizeof link, "%s/link.map", tmpdir);
        (void) unlink(link);
        (void) unlink(map_path);
        (void) rmdir(tmpdir);
        return 0;
}

static Config config(SubjectMap map) {
        return (Config) { .map = map, .domains = domains, .min_uid = 1000, .max_uid = 60000 };
}

static json_t *js(const char *text) {
        json_error_t e;
        json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &e);
        if (!j)
                fail_msg("bad test JSON %s: %s", text, e.text);
        return j;
}

/* Resolves and returns the users joined by ',' ("" when none), or "ERR<n>". */
static char *resolve_str(const Config *c, const char *subject, bool *ret_host_wide, char **ret_desc) {
        _cleanup_(json_decrefp) json_t *s = subject ? js(subject) : NULL;
        SubjectMatch m = {};
        char *out = NULL;
        int r;

        r = subject_resolve(c, s, &m);
        if (r < 0) {
                assert_true(asprintf(&out, "ERR%d", -r) > 0);
                return out;
        }
        assert_non_null(m.users);
        assert_non_null(m.description);
        size_t len = 1;
        for (char **u = m.users; *u; u++)
                len += strlen(*u) + 1;
        out = calloc(1, len);
        assert_non_null(out);
        for (char **u = m.users; *u; u++) {
                if (u != m.users)
                        strcat(out, ",");
                strcat(out, *u);
        }
        if (ret_host_wide)
                *ret_host_wide = m.host_wide;
        if (ret_desc)
                *ret_desc = strdup(m.description);
        subject_match_done(&m);
        assert_null(m.users);
        assert_null(m.description);
        return out;
}

/* "ERR<errno>", as resolve_str() reports failures. */
static const char *errstr(int e) {
        static char buf[4][16];
        static unsigned i;
        char *b = buf[i++ % 4];
        snprintf(b, sizeof buf[0], "ERR%d", e);
        return b;
}
#define ERR(e) errstr(e)

#define check(c, subject, expected)                                                              \
        do {                                                                                     \
                const char *_s = (subject);                                                      \
                _cleanup_free_ char *_got = resolve_str(c, _s, NULL, NULL);                      \
                if (!streq(_got, expected))                                                      \
                        fail_msg("%s: got \"%s\", expected \"%s\"", _s ? _s : "(null)", _got,      \
                                 expected);                                                      \
        } while (0)

static void test_email_localpart(void **state) {
        Config c = config(SUBJECT_MAP_EMAIL_LOCALPART);

        check(&c, "{\"format\":\"email\",\"email\":\"daemon@example.com\"}", "daemon");
        check(&c, "{\"format\":\"email\",\"email\":\"daemon@EXAMPLE.com\"}", "daemon");
        check(&c, "{\"format\":\"email\",\"email\":\"root@corp.example\"}", "root");
        check(&c, "{\"format\":\"email\",\"email\":\"daemon@other.example\"}", "");
        check(&c, "{\"format\":\"email\",\"email\":\"daemon@example.com.evil\"}", "");
        /* The local part is kept as is; a name that does not exist is dropped. */
        check(&c, "{\"format\":\"email\",\"email\":\"DAEMON@example.com\"}", "");
        check(&c, "{\"format\":\"email\",\"email\":\"no-such-user-4711@example.com\"}", "");
        /* Not valid Unix user names. */
        check(&c, "{\"format\":\"email\",\"email\":\"-daemon@example.com\"}", "");
        check(&c, "{\"format\":\"email\",\"email\":\"../root@example.com\"}", "");
        check(&c, "{\"format\":\"email\",\"email\":\"ro ot@example.com\"}", "");
        check(&c, "{\"format\":\"email\",\"email\":\"0@example.com\"}", "");
        check(&c, "{\"format\":\"email\",\"email\":\"@example.com\"}", "");
        check(&c, "{\"format\":\"email\",\"email\":\"daemon\"}", "");
        /* With no domains configured, every domain maps. */
        c.domains = NULL;
        check(&c, "{\"format\":\"email\",\"email\":\"daemon@other.example\"}", "daemon");
        /* acct: URIs are addresses too. */
        c = config(SUBJECT_MAP_EMAIL_LOCALPART);
        check(&c, "{\"format\":\"account\",\"uri\":\"acct:daemon@example.com\"}", "daemon");
        check(&c, "{\"format\":\"account\",\"uri\":\"acct:daemon@nope.example\"}", "");
        /* Other formats do not map through email-localpart. */
        check(&c, "{\"format\":\"iss_sub\",\"iss\":\"https://idp\",\"sub\":\"root\"}", "");
        check(&c, "{\"format\":\"opaque\",\"id\":\"root\"}", "");
}

static void test_email_full(void **state) {
        Config c = config(SUBJECT_MAP_EMAIL);

        /* The whole address is the user name (fully qualified names, SSSD); none exists here. */
        check(&c, "{\"format\":\"email\",\"email\":\"daemon@example.com\"}", "");
        check(&c, "{\"format\":\"email\",\"email\":\"root@other.example\"}", "");
}

static void test_iss_sub_and_opaque(void **state) {
        Config c = config(SUBJECT_MAP_ISS_SUB);

        check(&c, "{\"format\":\"iss_sub\",\"iss\":\"https://idp\",\"sub\":\"root\"}", "root");
        check(&c, "{\"format\":\"iss-sub\",\"iss\":\"https://idp\",\"sub\":\"root\"}", "root");
        check(&c, "{\"subject_type\":\"iss-sub\",\"iss\":\"https://idp\",\"sub\":\"daemon\"}", "daemon");
        check(&c, "{\"format\":\"iss_sub\",\"iss\":\"https://idp\",\"sub\":\"00u1okta\"}", "");
        check(&c, "{\"format\":\"iss_sub\",\"sub\":\"root\"}", ERR(EBADMSG));
        check(&c, "{\"format\":\"iss_sub\",\"iss\":\"https://idp\",\"sub\":\"\"}", ERR(EBADMSG));
        check(&c, "{\"format\":\"email\",\"email\":\"daemon@example.com\"}", "");

        c = config(SUBJECT_MAP_OPAQUE);
        check(&c, "{\"format\":\"opaque\",\"id\":\"nobody\"}", "nobody");
        check(&c, "{\"format\":\"opaque\",\"id\":42}", ERR(EBADMSG));

        c = config(SUBJECT_MAP_FILE); /* without map_file nothing maps */
        check(&c, "{\"format\":\"opaque\",\"id\":\"nobody\"}", "");
}

static void test_other_formats(void **state) {
        Config c = config(SUBJECT_MAP_EMAIL_LOCALPART);

        check(&c, "{\"format\":\"phone_number\",\"phone_number\":\"+12065550100\"}", "");
        check(&c, "{\"format\":\"phone\",\"phone_number\":\"+12065550100\"}", "");
        check(&c, "{\"format\":\"uri\",\"uri\":\"urn:uuid:4e851e98\"}", "");
        check(&c, "{\"format\":\"did\",\"url\":\"did:example:123\"}", "");
        check(&c, "{\"format\":\"jwt_id\",\"iss\":\"https://idp\",\"jti\":\"x\"}", "");
        check(&c, "{\"format\":\"ip-addresses\",\"ip-addresses\":[\"10.0.0.1\"]}", "");
        check(&c, "{\"format\":\"catalog_item\",\"catalog_id\":\"c0384\"}", "");
        check(&c, NULL, "");
        /* Malformed. */
        check(&c, "{\"format\":\"uri\"}", ERR(EBADMSG));
        check(&c, "{\"format\":\"did\",\"uri\":\"did:x\"}", ERR(EBADMSG));
        check(&c, "{\"format\":\"email\"}", ERR(EBADMSG));
        check(&c, "{\"format\":7,\"email\":\"daemon@example.com\"}", ERR(EBADMSG));
        check(&c, "{\"email\":\"daemon@example.com\"}", ERR(EBADMSG));
        check(&c, "[\"email\",\"daemon@example.com\"]", ERR(EBADMSG));
}

static void test_aliases(void **state) {
        Config c = config(SUBJECT_MAP_EMAIL_LOCALPART);

        check(&c,
              "{\"format\":\"aliases\",\"identifiers\":[{\"format\":\"phone_number\",\"phone_number\":\"+1\"},"
              "{\"format\":\"email\",\"email\":\"daemon@example.com\"}]}",
              "daemon");
        /* The first alias that maps decides. */
        check(&c,
              "{\"format\":\"aliases\",\"identifiers\":[{\"format\":\"email\",\"email\":\"root@example.com\"},"
              "{\"format\":\"email\",\"email\":\"daemon@example.com\"}]}",
              "root");
        check(&c, "{\"format\":\"aliases\",\"identifiers\":[]}", ERR(EBADMSG));
        check(&c, "{\"format\":\"aliases\",\"identifiers\":{}}", ERR(EBADMSG));
        check(&c, "{\"format\":\"aliases\",\"identifiers\":[\"daemon@example.com\"]}", ERR(EBADMSG));
        check(&c,
              "{\"format\":\"aliases\",\"identifiers\":[{\"format\":\"aliases\",\"identifiers\":"
              "[{\"format\":\"email\",\"email\":\"daemon@example.com\"}]}]}",
              ERR(EBADMSG));
}

static void test_complex(void **state) {
        Config c = config(SUBJECT_MAP_EMAIL_LOCALPART);
        _cleanup_free_ char *desc = NULL;
        bool host_wide = true;

        c.device_id = (char *) (uintptr_t) "host-1";
        /* A user member applies to that user whatever device it names. */
        _cleanup_free_ char *got = resolve_str(
                &c,
                "{\"format\":\"complex\",\"user\":{\"format\":\"email\",\"email\":\"daemon@example.com\"},"
                "\"device\":{\"format\":\"opaque\",\"id\":\"host-1\"},\"tenant\":{\"format\":\"opaque\",\"id\":\"t\"}}",
                &host_wide, &desc);
        assert_string_equal(got, "daemon");
        assert_false(host_wide);
        assert_non_null(strstr(desc, "email daemon@example.com"));

        /* Okta: complex without "format". */
        check(&c, "{\"user\":{\"format\":\"email\",\"email\":\"root@example.com\"}}", "root");
        check(&c, "{\"format\":\"complex\",\"user\":\"root\"}", ERR(EBADMSG));
        check(&c, "{\"format\":\"complex\",\"session\":{\"format\":\"opaque\",\"id\":\"s\"}}", "");
}

/* Every account the host-wide rule should pick, computed from the passwd database. */
static char *expected_local_users(void) {
        char *out = strdup("");
        struct passwd *pw;

        assert_non_null(out);
        setpwent();
        while ((pw = getpwent())) {
                if (pw->pw_uid < 1000 || pw->pw_uid > 60000)
                        continue;
                char *n = NULL;
                assert_true(asprintf(&n, "%s%s%s", out, *out ? "," : "", pw->pw_name) > 0);
                free(out);
                out = n;
        }
        endpwent();
        return out;
}

static void test_device_only(void **state) {
        Config c = config(SUBJECT_MAP_EMAIL_LOCALPART);
        _cleanup_free_ char *expected = expected_local_users();
        bool host_wide = false;
        static const char *const devices[] = {
                "{\"format\":\"complex\",\"device\":{\"format\":\"opaque\",\"id\":\"host-1\"}}",
                "{\"format\":\"complex\",\"device\":{\"format\":\"iss_sub\",\"iss\":\"https://idp\",\"sub\":\"host-1\"}}",
                "{\"device\":{\"format\":\"uri\",\"uri\":\"host-1\"}}",
        };

        c.device_id = (char *) (uintptr_t) "host-1";
        for (size_t i = 0; i < ARRAY_SIZE(devices); i++) {
                _cleanup_free_ char *got = resolve_str(&c, devices[i], &host_wide, NULL);
                assert_true(host_wide);
                assert_string_equal(got, expected);
        }

        /* Another device, or no device_id configured: recorded, nobody affected. */
        _cleanup_free_ char *other = resolve_str(
                &c, "{\"format\":\"complex\",\"device\":{\"format\":\"opaque\",\"id\":\"host-2\"}}", &host_wide, NULL);
        assert_string_equal(other, "");
        assert_false(host_wide);
        c.device_id = NULL;
        _cleanup_free_ char *none = resolve_str(&c, devices[0], &host_wide, NULL);
        assert_string_equal(none, "");
        assert_false(host_wide);
}

static void write_map(const char *text, mode_t mode) {
        FILE *f = fopen(map_path, "we");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        assert_int_equal(chmod(map_path, mode), 0);
}

static void test_map_file(void **state) {
        Config c = config(SUBJECT_MAP_EMAIL_LOCALPART);

        if (geteuid() != 0)
                skip(); /* the file must be root-owned */
        c.map_file = map_path;
        write_map("# comment\n"
                  "\n"
                  "daemon@example.com   root\n"
                  "  00u1okta\tnobody   # Okta user id\n"
                  "+12065550100 daemon\n"
                  "urn:uuid:4e851e98 daemon\n"
                  "urn:uuid:4e851e98 nobody\n"
                  "did:example:123 no-such-user-4711\n"
                  "only-one-field\n"
                  "too many fields here\n"
                  "Mixed@Corp.Example daemon\n",
                  0644);

        /* The file wins over map. */
        check(&c, "{\"format\":\"email\",\"email\":\"daemon@example.com\"}", "root");
        /* Domain compared case-insensitively, local part exactly. */
        check(&c, "{\"format\":\"email\",\"email\":\"daemon@EXAMPLE.COM\"}", "root");
        check(&c, "{\"format\":\"email\",\"email\":\"Mixed@corp.example\"}", "daemon");
        check(&c, "{\"format\":\"email\",\"email\":\"mixed@corp.example\"}", "");
        /* Not in the file: map applies. */
        check(&c, "{\"format\":\"email\",\"email\":\"nobody@example.com\"}", "nobody");
        check(&c, "{\"format\":\"iss_sub\",\"iss\":\"https://idp\",\"sub\":\"00u1okta\"}", "nobody");
        check(&c, "{\"user\":{\"format\":\"iss_sub\",\"iss\":\"https://idp\",\"sub\":\"00u1okta\"}}", "nobody");
        check(&c, "{\"format\":\"phone_number\",\"phone_number\":\"+12065550100\"}", "daemon");
        check(&c, "{\"format\":\"uri\",\"uri\":\"urn:uuid:4e851e98\"}", "daemon,nobody");
        /* Listed, but the local user does not exist: dropped, and map is not consulted. */
        check(&c, "{\"format\":\"did\",\"url\":\"did:example:123\"}", "");
        check(&c, "{\"format\":\"opaque\",\"id\":\"too\"}", "");
        check(&c,
              "{\"format\":\"aliases\",\"identifiers\":[{\"format\":\"opaque\",\"id\":\"x\"},"
              "{\"format\":\"iss_sub\",\"iss\":\"https://idp\",\"sub\":\"00u1okta\"}]}",
              "nobody");

        /* map = file: only the file. */
        c.map = SUBJECT_MAP_FILE;
        check(&c, "{\"format\":\"email\",\"email\":\"nobody@example.com\"}", "");
        check(&c, "{\"format\":\"email\",\"email\":\"daemon@example.com\"}", "root");
}

static void test_map_file_safety(void **state) {
        Config c = config(SUBJECT_MAP_EMAIL_LOCALPART);
        char link[sizeof tmpdir + 32];
        const char *subject = "{\"format\":\"email\",\"email\":\"daemon@example.com\"}";

        if (geteuid() != 0)
                skip();
        c.map_file = map_path;

        write_map("daemon@example.com root\n", 0664);
        check(&c, subject, ERR(EPERM)); /* EPERM: group-writable */
        write_map("daemon@example.com root\n", 0646);
        check(&c, subject, ERR(EPERM)); /* world-writable */
        write_map("daemon@example.com root\n", 0644);
        assert_int_equal(chown(map_path, 65534, 0), 0);
        check(&c, subject, ERR(EPERM)); /* not root-owned */
        assert_int_equal(chown(map_path, 0, 0), 0);
        check(&c, subject, "root");

        snprintf(link, sizeof link, "%s/link.map", tmpdir);
        assert_int_equal(symlink(map_path, link), 0);
        c.map_file = link;
        check(&c, subject, ERR(ELOOP)); /* ELOOP: O_NOFOLLOW */
        c.map_file = tmpdir;
        check(&c, subject, ERR(EBADFD)); /* EBADFD: not a regular file */

        c.map_file = map_path;
        FILE *f = fopen(map_path, "we");
        assert_non_null(f);
        for (unsigned i = 0; i < 40000; i++)
                fprintf(f, "user%05u@example.com root\n", i);
        fclose(f);
        check(&c, subject, ERR(EFBIG)); /* EFBIG: over 1 MiB */

        assert_int_equal(unlink(map_path), 0);
        check(&c, subject, ERR(ENOENT)); /* ENOENT */
        /* Subjects that never consult the file are unaffected. */
        check(&c, "{\"format\":\"jwt_id\",\"iss\":\"https://idp\",\"jti\":\"x\"}", "");
}

static void test_description(void **state) {
        Config c = config(SUBJECT_MAP_EMAIL_LOCALPART);
        _cleanup_free_ char *desc = NULL;
        _cleanup_free_ char *got = resolve_str(&c, "{\"format\":\"opaque\",\"id\":\"a\\nb\\u0001c\"}", NULL, &desc);

        assert_string_equal(got, "");
        assert_string_equal(desc, "opaque a?b?c");
}

/* Resolves with critical members; returns the users joined by ',' or "DISCARDED: <desc>". */
static char *resolve_critical(const Config *c, const char *subject, char *const *critical,
                              bool *ret_host_wide) {
        _cleanup_(json_decrefp) json_t *s = js(subject);
        SubjectMatch m = {};
        char *out = NULL;

        assert_int_equal(subject_resolve_critical(c, s, critical, &m), 0);
        assert_non_null(m.users);
        if (m.discarded) {
                assert_null(m.users[0]);
                assert_false(m.host_wide);
                assert_true(asprintf(&out, "DISCARDED: %s", m.description) > 0);
        } else
                out = strdup(m.users[0] ? m.users[0] : "");
        if (ret_host_wide)
                *ret_host_wide = m.host_wide;
        subject_match_done(&m);
        assert_false(m.discarded);
        return out;
}

static void test_critical_members(void **state) {
        Config c = config(SUBJECT_MAP_EMAIL_LOCALPART);
        static char *tenant[] = { (char *) (uintptr_t) "tenant", NULL };
        static char *user[] = { (char *) (uintptr_t) "user", NULL };
        static char *device[] = { (char *) (uintptr_t) "user", (char *) (uintptr_t) "device", NULL };
        static char *session[] = { (char *) (uintptr_t) "session", NULL };
        static char *none[] = { NULL };
        const char *with_tenant = "{\"format\":\"complex\",\"user\":{\"format\":\"email\",\"email\":\"daemon@example.com\"},"
                                  "\"tenant\":{\"format\":\"opaque\",\"id\":\"t1\"}}";
        const char *with_device = "{\"format\":\"complex\",\"user\":{\"format\":\"email\",\"email\":\"daemon@example.com\"},"
                                  "\"device\":{\"format\":\"opaque\",\"id\":\"host-1\"}}";
        const char *device_only = "{\"format\":\"complex\",\"device\":{\"format\":\"opaque\",\"id\":\"host-1\"}}";
        bool host_wide = true;

#define CHECK_CRIT(subject, critical, expected)                                                   \
        do {                                                                                     \
                _cleanup_free_ char *_got = resolve_critical(&c, subject, critical, NULL);       \
                if (!streq(_got, expected))                                                      \
                        fail_msg("%s: got \"%s\", expected \"%s\"", subject, _got, expected);    \
        } while (0)

        /* A critical member we do not interpret: discarded, whatever the user member says. */
        CHECK_CRIT(with_tenant, tenant, "DISCARDED: discarded: critical subject member 'tenant' not understood");
        /* Okta's complex subjects without "format" too. */
        CHECK_CRIT("{\"user\":{\"format\":\"email\",\"email\":\"daemon@example.com\"},"
                   "\"session\":{\"format\":\"opaque\",\"id\":\"s1\"}}",
                   session, "DISCARDED: discarded: critical subject member 'session' not understood");
        /* Critical members we interpret, or critical members the subject does not carry. */
        CHECK_CRIT(with_tenant, user, "daemon");
        CHECK_CRIT(with_tenant, session, "daemon");
        CHECK_CRIT(with_tenant, none, "daemon");
        CHECK_CRIT(with_tenant, NULL, "daemon");
        /* The rule is about complex subjects: a simple subject's members are its own. */
        CHECK_CRIT("{\"format\":\"opaque\",\"id\":\"daemon\",\"tenant\":{\"format\":\"opaque\",\"id\":\"t1\"}}",
                   tenant, "");
        /* device is interpreted only with device_id: without it, a critical device member
         * cannot be processed and the event is discarded. */
        CHECK_CRIT(with_device, device, "DISCARDED: discarded: critical subject member 'device' not understood");
        CHECK_CRIT(device_only, device, "DISCARDED: discarded: critical subject member 'device' not understood");
        c.device_id = (char *) (uintptr_t) "host-1";
        CHECK_CRIT(with_device, device, "daemon");
        _cleanup_free_ char *got = resolve_critical(&c, device_only, device, &host_wide);
        assert_true(host_wide);
        assert_true(strlen(got) > 0);
        assert_false(startswith(got, "DISCARDED"));
        /* A malformed subject stays malformed, critical members or not. */
        _cleanup_(json_decrefp) json_t *bad = js("{\"format\":\"complex\",\"user\":\"daemon\"}");
        SubjectMatch m = {};
        assert_int_equal(subject_resolve_critical(&c, bad, user, &m), -EBADMSG);
#undef CHECK_CRIT
}

/* A subject an admin gives as JSON (subject_parse_admin()). */
static void test_parse_admin(void **state) {
        static const char *const good[] = {
                "{\"format\":\"email\",\"email\":\"a@example.com\"}",
                "{\"format\":\"iss_sub\",\"iss\":\"https://idp\",\"sub\":\"1\"}",
                "{\"format\":\"opaque\",\"id\":\"x\"}",
                "{\"format\":\"ip-addresses\",\"ip-addresses\":[\"10.0.0.1\"]}",
                "{\"format\":\"aliases\",\"identifiers\":[{\"format\":\"opaque\",\"id\":\"x\"}]}",
                "{\"format\":\"complex\",\"user\":{\"format\":\"email\",\"email\":\"a@b\"}}",
        };
        static const struct {
                const char *text, *why;
        } bad[] = {
                { "[1]", "JSON object" },
                { "{\"id\":\"x\"}", "string \"format\"" },
                { "{\"format\":\"nope\"}", "unknown subject format \"nope\"" },
                { "{\"format\":\"email\",\"email\":\"\"}", "non-empty string \"email\"" },
                { "{\"format\":\"iss_sub\",\"iss\":\"https://idp\"}", "\"sub\"" },
                { "{\"format\":\"ip-addresses\",\"ip-addresses\":[]}", "non-empty array" },
                { "{\"format\":\"aliases\",\"identifiers\":[]}", "1 to 32" },
                { "{\"format\":\"aliases\",\"identifiers\":[{\"format\":\"aliases\","
                  "\"identifiers\":[{\"format\":\"opaque\",\"id\":\"x\"}]}]}", "do not nest" },
                { "{\"format\":\"complex\"}", "needs a member" },
                { "{\"format\":\"opaque\",\"id\":\"x\",\"id\":\"y\"}", "not valid JSON" },
                { "{\"format\":\"x\\u001b\"}", "unknown subject format \"x?\"" },
        };
        char error[256], big[SUBJECT_ADMIN_MAX + 64];
        json_t *j;

        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                error[0] = 0;
                if (subject_parse_admin(good[i], strlen(good[i]), &j, error, sizeof(error)) < 0)
                        fail_msg("%s refused: %s", good[i], error);
                assert_true(json_is_object(j));
                json_decref(j);
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                error[0] = 0;
                assert_int_equal(subject_parse_admin(bad[i].text, strlen(bad[i].text), &j, error,
                                                     sizeof(error)), -EINVAL);
                if (!strstr(error, bad[i].why))
                        fail_msg("%s: '%s' does not say '%s'", bad[i].text, error, bad[i].why);
        }
        snprintf(big, sizeof(big), "{\"format\":\"opaque\",\"id\":\"%0*d\"}",
                 (int) SUBJECT_ADMIN_MAX, 0);
        assert_int_equal(subject_parse_admin(big, strlen(big), &j, error, sizeof(error)), -E2BIG);
}

/* A local user -> its subjects (subject_for_user()). */
static void test_subjects_for_user(void **state) {
        Config c = config(SUBJECT_MAP_EMAIL_LOCALPART);
        LocalUser u = { .uid = 2001 };
        char error[256] = "", *star[] = { (char *) (uintptr_t) "*", NULL };
        _cleanup_(json_decrefp) json_t *a = json_array(), *want = NULL;

        snprintf(u.name, sizeof(u.name), "alice");
        assert_int_equal(subject_for_user(&c, &u, "alice", a, error, sizeof(error)), 0);
        want = js("[{\"format\":\"email\",\"email\":\"alice@Example.COM\"},"
                  "{\"format\":\"email\",\"email\":\"alice@corp.example\"}]");
        assert_true(json_equal(a, want));
        /* Again: no duplicates. */
        assert_int_equal(subject_for_user(&c, &u, "alice", a, error, sizeof(error)), 0);
        assert_int_equal(json_array_size(a), 2);

        c.domains = star;
        assert_int_equal(subject_for_user(&c, &u, "alice", a, error, sizeof(error)), -EADDRNOTAVAIL);
        assert_non_null(strstr(error, "domains"));
        c.domains = NULL;
        assert_int_equal(subject_for_user(&c, &u, "alice", a, error, sizeof(error)), -EADDRNOTAVAIL);

        if (geteuid() != 0)
                return; /* map_file must be root-owned */
        json_array_clear(a);
        c.map_file = map_path;
        write_map("alice@corp.example alice\nacct:al@x alice\n+4930123 alice\ndid:ex:1 alice\n"
                  "urn:uuid:1 alice\n00u1 alice\nother@x bob\n# alice@y alice\n", 0644);
        assert_int_equal(subject_for_user(&c, &u, "alice", a, error, sizeof(error)), 0);
        json_decref(want);
        want = js("[{\"format\":\"email\",\"email\":\"alice@corp.example\"},"
                  "{\"format\":\"account\",\"uri\":\"acct:al@x\"},"
                  "{\"format\":\"phone_number\",\"phone_number\":\"+4930123\"},"
                  "{\"format\":\"did\",\"url\":\"did:ex:1\"},"
                  "{\"format\":\"uri\",\"uri\":\"urn:uuid:1\"},"
                  "{\"format\":\"opaque\",\"id\":\"00u1\"}]");
        if (!json_equal(a, want))
                fail_msg("got %s", json_dumps(a, JSON_COMPACT));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_admin),
                cmocka_unit_test(test_subjects_for_user),
                cmocka_unit_test(test_email_localpart),
                cmocka_unit_test(test_email_full),
                cmocka_unit_test(test_iss_sub_and_opaque),
                cmocka_unit_test(test_other_formats),
                cmocka_unit_test(test_aliases),
                cmocka_unit_test(test_complex),
                cmocka_unit_test(test_device_only),
                cmocka_unit_test(test_map_file),
                cmocka_unit_test(test_map_file_safety),
                cmocka_unit_test(test_description),
                cmocka_unit_test(test_critical_members),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
