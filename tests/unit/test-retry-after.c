/* SPDX-License-Identifier: MIT */
/* The Retry-After field value (retry-after.c): delta-seconds, the three HTTP-date forms, the
 * 5-minute cap, dates in the past, and what is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "retry-after.h"

/* 2024-03-01 12:00:00 UTC (a Friday, in a leap year) */
#define NOW 1709294400u

static int64_t delay(const char *v) {
        uint64_t sec = 12345;
        int r = retry_after_parse(v, NOW, &sec);

        if (r < 0) {
                assert_int_equal(r, -EINVAL);
                assert_int_equal(sec, 12345); /* untouched */
                return -1;
        }
        return (int64_t) sec;
}

static void test_delta_seconds(void **state) {
        assert_int_equal(delay("2"), 2);
        assert_int_equal(delay("0"), 0);
        assert_int_equal(delay("120"), 120);
        assert_int_equal(delay(" 7\t"), 7);
        assert_int_equal(delay("300"), 300);
        assert_int_equal(delay("301"), 300);                    /* capped at 5 minutes */
        assert_int_equal(delay("86400"), 300);
        assert_int_equal(delay("000000000000000000000000000000000000000000000000002"), 2);
        assert_int_equal(delay("99999999999999999999999999999999"), 300); /* no overflow */
}

static void test_dates(void **state) {
        /* The three forms RFC 9110 §5.6.7 makes recipients accept, 30 s ahead. */
        assert_int_equal(delay("Fri, 01 Mar 2024 12:00:30 GMT"), 30);
        assert_int_equal(delay("Friday, 01-Mar-24 12:00:30 GMT"), 30);
        assert_int_equal(delay("Fri Mar  1 12:00:30 2024"), 30);
        assert_int_equal(delay("Fri Mar 01 12:00:30 2024"), 30);
        /* Across a month end in a leap year, and the cap. */
        assert_int_equal(delay("Thu, 29 Feb 2024 23:59:59 GMT"), 0); /* in the past */
        assert_int_equal(delay("Fri, 01 Mar 2024 12:04:59 GMT"), 299);
        assert_int_equal(delay("Fri, 01 Mar 2024 13:00:00 GMT"), 300);
        assert_int_equal(delay("Sat, 01 Jan 2050 00:00:00 GMT"), 300);
        assert_int_equal(delay("Sun, 06 Nov 1994 08:49:37 GMT"), 0);
        assert_int_equal(delay("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
        assert_int_equal(delay("Mon, 01 Jan 1900 00:00:00 GMT"), 0);
        /* RFC 850 two-digit years: more than 50 years ahead means the last century. */
        assert_int_equal(delay("Sunday, 06-Nov-94 08:49:37 GMT"), 0);
        assert_int_equal(delay("Friday, 01-Mar-74 12:00:00 GMT"), 300);
        /* The weekday is not checked against the date. */
        assert_int_equal(delay("Mon, 01 Mar 2024 12:00:10 GMT"), 10);
        /* A leap second. */
        assert_int_equal(delay("Fri, 01 Mar 2024 12:00:60 GMT"), 60);
}

static void test_refused(void **state) {
        static const char *const bad[] = {
                "", " ", "-1", "+5", "1.5", "5s", "0x10", "2 3", "abc",
                "Fri, 01 Mar 2024 12:00:30 UTC",        /* not GMT */
                "Fri, 1 Mar 2024 12:00:30 GMT",         /* one-digit day */
                "fri, 01 Mar 2024 12:00:30 GMT",        /* case */
                "Fri, 01 mar 2024 12:00:30 GMT",
                "Fri, 31 Feb 2024 12:00:30 GMT",        /* no such day */
                "Fri, 00 Mar 2024 12:00:30 GMT",
                "Fri, 29 Feb 2023 12:00:30 GMT",        /* not a leap year */
                "Fri, 01 Mar 2024 24:00:00 GMT",
                "Fri, 01 Mar 2024 12:60:00 GMT",
                "Fri, 01 Mar 2024 12:00:30 GMT ;x",
                "Fri, 01 Mar 2024 12:00:30",
                "Fri, 01 Mar 24 12:00:30 GMT",
                "Friday, 01-Mar-2024 12:00:30 GMT",
                "Fri Mar  1 12:00:30 24",
                "Fri Mar 1 12:00:30 2024",
                "Fryday, 01-Mar-24 12:00:30 GMT",
                "Fri,  01 Mar 2024 12:00:30 GMT",
                "Fri, 01 Mar 2024 12:00:30 GMT\r\n",
                "Fri, 01 Mar 2024 12:0:30 GMT",
        };
        char longv[RETRY_AFTER_MAX_LEN + 2];
        uint64_t sec;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (delay(bad[i]) != -1)
                        fail_msg("accepted '%s'", bad[i]);
        }
        assert_int_equal(retry_after_parse(NULL, NOW, &sec), -EINVAL);
        memset(longv, '1', sizeof(longv) - 1);
        longv[sizeof(longv) - 1] = 0;
        assert_int_equal(delay(longv), -1);
        longv[RETRY_AFTER_MAX_LEN] = 0; /* exactly the limit: taken */
        assert_int_equal(delay(longv), 300);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_delta_seconds),
                cmocka_unit_test(test_dates),
                cmocka_unit_test(test_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
