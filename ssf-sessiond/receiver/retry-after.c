/* SPDX-License-Identifier: MIT */
/*
 * The Retry-After header field (retry-after.h): delta-seconds or an HTTP-date, as a capped
 * delay. Parses bytes from the network. Runs in the network worker.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "macro.h"
#include "retry-after.h"

static const char *const wkday[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
static const char *const weekday[] = { "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                       "Saturday", "Sunday" };
static const char *const month[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* A cursor over the field value: every reader checks the bytes left. */
typedef struct Cursor {
        const char *p;
        size_t left;
} Cursor;

static bool take_str(Cursor *c, const char *s) {
        size_t n = strlen(s);

        if (c->left < n || memcmp(c->p, s, n) != 0)
                return false;
        c->p += n;
        c->left -= n;
        return true;
}

static bool take_name(Cursor *c, const char *const *names, size_t n_names, unsigned *ret) {
        for (size_t i = 0; i < n_names; i++)
                if (take_str(c, names[i])) {
                        *ret = (unsigned) i;
                        return true;
                }
        return false;
}

/* Exactly n digits. */
static bool take_digits(Cursor *c, unsigned n, unsigned *ret) {
        unsigned v = 0;

        if (c->left < n)
                return false;
        for (unsigned i = 0; i < n; i++) {
                if (c->p[i] < '0' || c->p[i] > '9')
                        return false;
                v = v * 10 + (unsigned) (c->p[i] - '0');
        }
        c->p += n;
        c->left -= n;
        *ret = v;
        return true;
}

/* "HH:MM:SS" */
static bool take_time(Cursor *c, unsigned *h, unsigned *m, unsigned *s) {
        return take_digits(c, 2, h) && take_str(c, ":") && take_digits(c, 2, m) &&
               take_str(c, ":") && take_digits(c, 2, s) && *h < 24 && *m < 60 && *s < 61;
}

static bool leap(unsigned y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(unsigned y, unsigned mon) {
        static const unsigned d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

        return mon == 1 && leap(y) ? 29 : d[mon];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (y >= 1970; mon 0..11). */
static uint64_t days_from_civil(unsigned y, unsigned mon, unsigned day) {
        uint64_t days = 0;

        for (unsigned i = 1970; i < y; i++)
                days += leap(i) ? 366 : 365;
        for (unsigned i = 0; i < mon; i++)
                days += days_in_month(y, i);
        return days + day - 1;
}

/* The current year (UTC) of now_sec. */
static unsigned year_of(uint64_t now_sec) {
        uint64_t days = now_sec / 86400u;
        unsigned y = 1970;

        while (days >= (leap(y) ? 366u : 365u) && y < 9999) {
                days -= leap(y) ? 366u : 365u;
                y++;
        }
        return y;
}

static int parse_date(Cursor *c, uint64_t now_sec, uint64_t *ret_epoch) {
        unsigned wd, day, mon, year, h, m, s;
        Cursor save = *c;

        if (take_name(c, wkday, ARRAY_SIZE(wkday), &wd) && take_str(c, ", ")) {
                /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
                if (!take_digits(c, 2, &day) || !take_str(c, " ") ||
                    !take_name(c, month, ARRAY_SIZE(month), &mon) || !take_str(c, " ") ||
                    !take_digits(c, 4, &year) || !take_str(c, " ") || !take_time(c, &h, &m, &s) ||
                    !take_str(c, " GMT"))
                        return -EINVAL;
        } else if ((*c = save, take_name(c, weekday, ARRAY_SIZE(weekday), &wd)) &&
                   take_str(c, ", ")) {
                /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
                unsigned yy, cur;

                if (!take_digits(c, 2, &day) || !take_str(c, "-") ||
                    !take_name(c, month, ARRAY_SIZE(month), &mon) || !take_str(c, "-") ||
                    !take_digits(c, 2, &yy) || !take_str(c, " ") || !take_time(c, &h, &m, &s) ||
                    !take_str(c, " GMT"))
                        return -EINVAL;
                /* RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is the
                 * most recent past year with those digits. */
                cur = year_of(now_sec);
                year = cur - cur % 100 + yy;
                if (year > cur + 50)
                        year -= 100;
        } else if ((*c = save, take_name(c, wkday, ARRAY_SIZE(wkday), &wd)) &&
                   take_str(c, " ")) {
                /* asctime: "Sun Nov  6 08:49:37 1994" (day: 2DIGIT or SP 1DIGIT) */
                if (!take_name(c, month, ARRAY_SIZE(month), &mon) || !take_str(c, " "))
                        return -EINVAL;
                if (take_str(c, " ")) {
                        if (!take_digits(c, 1, &day))
                                return -EINVAL;
                } else if (!take_digits(c, 2, &day))
                        return -EINVAL;
                if (!take_str(c, " ") || !take_time(c, &h, &m, &s) || !take_str(c, " ") ||
                    !take_digits(c, 4, &year))
                        return -EINVAL;
        } else
                return -EINVAL;

        if (c->left != 0 || day < 1)
                return -EINVAL;
        if (year < 1970) {
                *ret_epoch = 0; /* long past */
                return 0;
        }
        if (day > days_in_month(year, mon))
                return -EINVAL;
        *ret_epoch = days_from_civil(year, mon, day) * 86400u + h * 3600u + m * 60u + s;
        return 0;
}

int retry_after_parse(const char *value, uint64_t now_sec, uint64_t *ret_sec) {
        Cursor c;
        size_t n;

        if (!value)
                return -EINVAL;
        n = strnlen(value, RETRY_AFTER_MAX_LEN + 1);
        if (n > RETRY_AFTER_MAX_LEN)
                return -EINVAL;
        while (n > 0 && (*value == ' ' || *value == '\t')) {
                value++;
                n--;
        }
        while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
                n--;
        if (n == 0)
                return -EINVAL;

        if (value[0] >= '0' && value[0] <= '9') {
                uint64_t v = 0;

                for (size_t i = 0; i < n; i++) {
                        if (value[i] < '0' || value[i] > '9')
                                return -EINVAL;
                        if (v <= RETRY_AFTER_MAX_SEC)
                                v = v * 10 + (uint64_t) (value[i] - '0');
                }
                *ret_sec = MIN(v, (uint64_t) RETRY_AFTER_MAX_SEC);
                return 0;
        }

        c = (Cursor) { .p = value, .left = n };
        {
                uint64_t when;
                int r = parse_date(&c, now_sec, &when);

                if (r < 0)
                        return r;
                *ret_sec = when <= now_sec ? 0 : MIN(when - now_sec, (uint64_t) RETRY_AFTER_MAX_SEC);
        }
        return 0;
}
