/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <time.h>

#include "shared/timestamp.h"

bool scan_digits(const char **p, unsigned n, int *ret) {
        int v = 0;

        for (unsigned i = 0; i < n; i++) {
                char c = (*p)[i];
                if (c < '0' || c > '9')
                        return false;
                v = v * 10 + (c - '0');
        }
        *p += n;
        *ret = v;
        return true;
}

bool scan_char(const char **p, char c) {
        if (**p != c)
                return false;
        (*p)++;
        return true;
}

int scan_utc_date_time(const char **p, char separator, int64_t *ret_sec) {
        int year, mon, day, hour, min, sec;
        const char *q = *p;

        if (!scan_digits(&q, 4, &year) || !scan_char(&q, '-') || !scan_digits(&q, 2, &mon) ||
            !scan_char(&q, '-') || !scan_digits(&q, 2, &day) || !scan_char(&q, separator) ||
            !scan_digits(&q, 2, &hour) || !scan_char(&q, ':') || !scan_digits(&q, 2, &min) ||
            !scan_char(&q, ':') || !scan_digits(&q, 2, &sec))
                return -EINVAL;
        if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 59)
                return -EINVAL;

        struct tm tm = {
                .tm_year = year - 1900,
                .tm_mon = mon - 1,
                .tm_mday = day,
                .tm_hour = hour,
                .tm_min = min,
                .tm_sec = sec,
        };
        time_t t = timegm(&tm);
        /* -1 is also 1969-12-31 23:59:59, a real second. */
        if (t == (time_t) -1 && !(year == 1969 && mon == 12 && day == 31))
                return -EINVAL;
        /* timegm() normalizes 2026-02-31 to March; a real timestamp never needs that. */
        if (tm.tm_mday != day || tm.tm_mon != mon - 1)
                return -EINVAL;
        *p = q;
        *ret_sec = (int64_t) t;
        return 0;
}
