/* SPDX-License-Identifier: MIT */
/* The NSS answers root keeps while it applies batches of SETs (users.h): within a batch a name
 * or uid is asked once (an account, and "no such account"); in the next batch "no such account"
 * is asked again; outside a batch and on
 * another thread NSS is always asked. Under nss_wrapper (nss-fixture.h), whose passwd file the
 * test rewrites between lookups. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nss-fixture.h"
#include "users.h"

/* Replaces the passwd file (a new inode: nss_wrapper reads it again). */
static void write_passwd(const char *text) {
        const char *path = getenv("NSS_WRAPPER_PASSWD");
        char tmp[256];
        FILE *f;

        assert_non_null(path);
        snprintf(tmp, sizeof(tmp), "%s.new", path);
        f = fopen(tmp, "we");
        assert_non_null(f);
        assert_true(fputs(text, f) >= 0);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(rename(tmp, path), 0);
}

static const char *BASE =
        "root:x:0:0:root:/root:/bin/sh\n"
        "alice:x:2001:2001:Alice:/home/alice:/bin/sh\n"
        "bob:x:2002:2002:Bob:/home/bob:/bin/sh\n";
/* alice's account has a new uid, erin is new. */
static const char *CHANGED =
        "root:x:0:0:root:/root:/bin/sh\n"
        "alice:x:2101:2101:Alice:/home/alice:/bin/sh\n"
        "bob:x:2002:2002:Bob:/home/bob:/bin/sh\n"
        "erin:x:2005:2005:Erin:/home/erin:/bin/sh\n";

static void *resolve_alice(void *userdata) {
        LocalUser *u = userdata;

        assert_int_equal(local_user_resolve("alice", u), 0);
        return NULL;
}

static void test_batch_answers(void **state) {
        LocalUser u = {}, other = {};
        pthread_t t;

        (void) state;
        write_passwd(BASE);
        local_user_cache_begin();
        assert_int_equal(local_user_resolve("alice", &u), 0);
        assert_int_equal(u.uid, 2001);
        assert_int_equal(local_user_resolve("erin", &u), -ESRCH);
        write_passwd(CHANGED);
        /* The same batch: one moment of the passwd database. */
        assert_int_equal(local_user_resolve("alice", &u), 0);
        assert_int_equal(u.uid, 2001);
        assert_string_equal(u.name, "alice");
        assert_int_equal(local_user_resolve("erin", &u), -ESRCH);
        /* Another thread asks NSS. */
        assert_int_equal(pthread_create(&t, NULL, resolve_alice, &other), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(other.uid, 2101);
        local_user_cache_end();

        /* Outside a batch, NSS. */
        assert_int_equal(local_user_resolve("alice", &u), 0);
        assert_int_equal(u.uid, 2101);
        assert_int_equal(local_user_resolve("erin", &u), 0);

        /* The next batch: "none" is asked again (an account found may still be answered
         * from memory, for a few seconds: not asserted, the test does not depend on time). */
        local_user_cache_begin();
        assert_int_equal(local_user_resolve("erin", &u), 0);
        assert_int_equal(u.uid, 2005);
        /* bob was never asked: NSS, then kept. */
        assert_int_equal(local_user_resolve("bob", &u), 0);
        assert_int_equal(u.uid, 2002);
        local_user_cache_end();
        write_passwd(BASE);
}

static void test_many_names(void **state) {
        LocalUser u = {};
        char name[32];

        (void) state;
        write_passwd(BASE);
        /* More names than the table keeps: the rest are asked each time, all answered right. */
        local_user_cache_begin();
        for (int round = 0; round < 2; round++)
                for (int i = 0; i < 12000; i++) {
                        snprintf(name, sizeof(name), "nobody%d", i);
                        assert_int_equal(local_user_resolve(name, &u), -ESRCH);
                }
        assert_int_equal(local_user_resolve("bob", &u), 0);
        assert_int_equal(u.uid, 2002);
        local_user_cache_end();
        assert_int_equal(local_user_resolve("-bad", &u), -EINVAL);
}

/* "No such account" expires with its batch, without a rebuild of the table: its slot stays a
 * tombstone the next batches ask through and reuse. A batch fills the table with such answers;
 * in the next, a name asked then is asked again, and names never asked are kept (only if the
 * stale slots are reused: the table is full of them). */
static void test_negative_answers_expire_with_their_batch(void **state) {
        LocalUser u = {};
        char name[32];

        (void) state;
        write_passwd(BASE);
        local_user_cache_begin();
        for (int i = 0; i < 8192; i++) {
                snprintf(name, sizeof(name), "ghost%d", i);
                assert_int_equal(local_user_resolve(name, &u), -ESRCH);
        }
        local_user_cache_end();

        write_passwd("root:x:0:0:root:/root:/bin/sh\n"
                     "ghost17:x:3017:3017::/:/bin/sh\n"
                     "carol:x:2003:2003::/:/bin/sh\n");
        local_user_cache_begin();
        /* The last batch's "none" is not answered any more. */
        assert_int_equal(local_user_resolve("ghost17", &u), 0);
        assert_int_equal(u.uid, 3017);
        assert_int_equal(local_user_resolve("ghost4000", &u), -ESRCH);
        assert_int_equal(local_user_resolve("carol", &u), 0);
        assert_int_equal(u.uid, 2003);
        write_passwd(BASE);
        /* This batch's answers are kept, in the stale slots they took. */
        assert_int_equal(local_user_resolve("ghost17", &u), 0);
        assert_int_equal(u.uid, 3017);
        assert_int_equal(local_user_resolve("carol", &u), 0);
        assert_int_equal(u.uid, 2003);
        assert_int_equal(local_user_resolve("ghost4000", &u), -ESRCH);
        /* Names past the tombstones on their chains are still found: all the stale ones are
         * asked again, and every answer is right. */
        for (int i = 0; i < 8192; i += 7) {
                snprintf(name, sizeof(name), "ghost%d", i);
                assert_int_equal(local_user_resolve(name, &u), -ESRCH);
        }
        assert_int_equal(local_user_resolve("bob", &u), 0);
        assert_int_equal(u.uid, 2002);
        local_user_cache_end();

        /* A "none" answered in a slot it took is kept for its batch only, too. */
        local_user_cache_begin();
        assert_int_equal(local_user_resolve("ghost4000", &u), -ESRCH);
        write_passwd("root:x:0:0:root:/root:/bin/sh\n"
                     "ghost4000:x:3400:3400::/:/bin/sh\n");
        assert_int_equal(local_user_resolve("ghost4000", &u), -ESRCH); /* this batch's answer */
        local_user_cache_end();
        local_user_cache_begin();
        assert_int_equal(local_user_resolve("ghost4000", &u), 0);
        assert_int_equal(u.uid, 3400);
        local_user_cache_end();
        write_passwd(BASE);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_batch_answers),
                cmocka_unit_test(test_many_names),
                cmocka_unit_test(test_negative_answers_expire_with_their_batch),
        };

        (void) argc;
        nss_fixture_exec(argv);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
