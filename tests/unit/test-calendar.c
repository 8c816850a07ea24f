/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "shared/calendar.h"
#include "shared/util.h"

/* 2023-11-14 22:13:20 UTC, a Tuesday. */
#define BASE_SEC 1700000000ULL
#define SEC(s)   ((uint64_t) (s) *USEC_PER_SEC)

/* ---- the text of systemd-analyze calendar ------------------------------------------------------ */

static void test_parse_elapses(void **state) {
        static const struct {
                const char *text;
                int r;
                size_t n;
                uint64_t first, last;
        } cases[] = {
                /* local time is UTC: no "(in UTC)" lines */
                {"  Original form: *:*:0/10\n"
                 "Normalized form: *-*-* *:*:00/10\n"
                 "    Next elapse: Tue 2023-11-14 22:13:30 UTC\n"
                 "       From now: 3 years 0 months ago\n"
                 "       Iter. #2: Tue 2023-11-14 22:13:40 UTC\n"
                 "       From now: 3 years 0 months ago\n"
                 "       Iter. #3: Tue 2023-11-14 22:13:50 UTC\n"
                 "       From now: 3 years 0 months ago\n",
                 0, 3, SEC(1700000010), SEC(1700000030)},
                /* another zone: the "(in UTC)" line after each counts */
                {"  Original form: Sun 03:00\n"
                 "Normalized form: Sun *-*-* 03:00:00\n"
                 "    Next elapse: Sun 2023-11-19 03:00:00 CET\n"
                 "       (in UTC): Sun 2023-11-19 02:00:00 UTC\n"
                 "       From now: 3 years 0 months ago\n"
                 "       Iter. #2: Sun 2023-11-26 03:00:00 CET\n"
                 "       (in UTC): Sun 2023-11-26 02:00:00 UTC\n"
                 "       From now: 3 years 0 months ago\n",
                 0, 2, SEC(1700359200), SEC(1700964000)},
                /* local time is UTC under another name */
                {"    Next elapse: Wed 2023-11-15 00:00:00 GMT\n", 0, 1, SEC(1700006400), SEC(1700006400)},
                {"  Original form: 2000-01-01\nNormalized form: 2000-01-01 00:00:00\n    Next elapse: "
                 "never\n",
                 0, 0, 0, 0},
                /* a local time without its UTC line cannot be placed */
                {"    Next elapse: Sun 2023-11-19 03:00:00 CET\n", -EBADMSG, 0, 0, 0},
                {"    Next elapse: Sun 2023-11-19 03:00:00 CET\n       (in UTC): Sun 2023-11-19 02:00:00 "
                 "CET\n",
                 -EBADMSG, 0, 0, 0},
                {"       (in UTC): Sun 2023-11-19 02:00:00 UTC\n", -EBADMSG, 0, 0, 0},
                {"    Next elapse: Sun 2023-11-19 3:00:00 UTC\n", -EBADMSG, 0, 0, 0},
                {"    Next elapse: 2023-11-19 03:00:00 UTC\n", -EBADMSG, 0, 0, 0},
                {"    Next elapse: Sun 2023-13-19 03:00:00 UTC\n", -EBADMSG, 0, 0, 0},
                {"    Next elapse: Sun 2023-11-19 03:00:00 UTC\n       Iter. #2: Sat 2023-11-18 03:00:00 "
                 "UTC\n",
                 -EBADMSG, 0, 0, 0},
                {"Failed to parse calendar specification 'x': Invalid argument\n", -EBADMSG, 0, 0, 0},
                {"", -EBADMSG, 0, 0, 0},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v[CALENDAR_BATCH] = {};
                size_t n = 99;
                int r = calendar_parse_elapses(cases[i].text, v, ELEMENTSOF(v), &n);

                if (r != cases[i].r)
                        fail_msg("case %zu: %d, want %d", i, r, cases[i].r);
                if (r < 0)
                        continue;
                assert_int_equal(n, cases[i].n);
                if (n > 0) {
                        assert_int_equal(v[0], cases[i].first);
                        assert_int_equal(v[n - 1], cases[i].last);
                }
        }
}

/* At most max elapses are taken, and a line too many is refused. */
static void test_parse_elapses_counts(void **state) {
        char text[8192];
        uint64_t v[CALENDAR_BATCH];
        size_t len = 0, n;

        for (unsigned i = 0; i <= CALENDAR_BATCH; i++)
                len += (size_t) snprintf(text + len, sizeof(text) - len,
                                         "%s: Tue 2023-11-14 22:%02u:00 UTC\n",
                                         i == 0 ? "    Next elapse" : "       Iter. #2", i);
        assert_int_equal(calendar_parse_elapses(text, v, 2, &n), -EBADMSG);
        *strrchr(text, 'I') = '\0'; /* CALENDAR_BATCH lines */
        assert_int_equal(calendar_parse_elapses(text, v, 2, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(v[1], SEC(1699999260));
        assert_int_equal(calendar_parse_elapses(text, v, CALENDAR_BATCH, &n), 0);
        assert_int_equal(n, CALENDAR_BATCH);
}

static void test_format_utc(void **state) {
        char buf[CALENDAR_UTC_BYTES];

        assert_string_equal(calendar_format_utc(SEC(BASE_SEC), buf), "2023-11-14T22:13:20Z");
        assert_string_equal(calendar_format_utc(SEC(BASE_SEC) + 999999, buf), "2023-11-14T22:13:20Z");
        assert_string_equal(calendar_format_utc(0, buf), "1970-01-01T00:00:00Z");
}

/* ---- with systemd-analyze ---------------------------------------------------------------------- */

static bool have_analyze(void) {
        uint64_t v[1];
        size_t n;
        return calendar_next_elapses("daily", SEC(BASE_SEC), 1, v, &n, NULL, 0) != -ENOENT;
}

static int setup_tz(void **state) {
        /* Expressions without a zone are in local time: each test sets the zone it means. */
        return setenv("TZ", "UTC", 1);
}

static void test_next_elapses(void **state) {
        uint64_t v[CALENDAR_BATCH];
        char err[256] = "";
        size_t n;

        if (!have_analyze())
                skip();
        assert_int_equal(calendar_next_elapses("*:*:0/10", SEC(BASE_SEC), 3, v, &n, err, sizeof(err)), 0);
        assert_int_equal(n, 3);
        /* strictly after the base */
        assert_int_equal(v[0], SEC(BASE_SEC + 10));
        assert_int_equal(v[2], SEC(BASE_SEC + 30));
        assert_int_equal(calendar_next_elapses("*:*:0/10", SEC(BASE_SEC) - 1, 1, v, &n, err, sizeof(err)),
                         0);
        assert_int_equal(v[0], SEC(BASE_SEC));

        /* The zone of the expression, or else of TZ (as PID 1's, from /etc/localtime). */
        assert_int_equal(calendar_next_elapses("*-*-* 03:00:00 Europe/Berlin", SEC(BASE_SEC), 1, v, &n, err,
                                               sizeof(err)),
                         0);
        assert_int_equal(v[0], SEC(1700013600)); /* 2023-11-15 02:00 UTC */
        assert_int_equal(setenv("TZ", "Europe/Berlin", 1), 0);
        assert_int_equal(calendar_next_elapses("*-*-* 03:00:00", SEC(BASE_SEC), 1, v, &n, err, sizeof(err)),
                         0);
        assert_int_equal(v[0], SEC(1700013600));
        assert_int_equal(setenv("TZ", "UTC", 1), 0);
        assert_int_equal(calendar_next_elapses("*-*-* 03:00:00", SEC(BASE_SEC), 1, v, &n, err, sizeof(err)),
                         0);
        assert_int_equal(v[0], SEC(1700017200));

        assert_int_equal(calendar_next_elapses("2000-01-01", SEC(BASE_SEC), 5, v, &n, err, sizeof(err)), 0);
        assert_int_equal(n, 0);

        assert_int_equal(calendar_next_elapses("bogus", SEC(BASE_SEC), 1, v, &n, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "Failed to parse calendar specification 'bogus': Invalid argument");
        /* an expression that looks like an option is still an expression */
        assert_int_equal(calendar_next_elapses("--help", SEC(BASE_SEC), 1, v, &n, err, sizeof(err)),
                         -EINVAL);
}

static void test_latest_elapse(void **state) {
        static const struct {
                const char *expr[3];
                uint64_t at;
                int r;
                uint64_t want;
        } cases[] = {
                /* the elapse itself, and any time until the next */
                {{"*:*:0/10"}, SEC(BASE_SEC), 0, SEC(BASE_SEC)},
                {{"*:*:0/10"}, SEC(BASE_SEC) + 1, 0, SEC(BASE_SEC)},
                {{"*:*:0/10"}, SEC(BASE_SEC + 9) + 999999, 0, SEC(BASE_SEC)},
                {{"*:*:0/10"}, SEC(BASE_SEC + 10), 0, SEC(BASE_SEC + 10)},
                /* every second: more elapses in the first window than one batch */
                {{"*:*:*"}, SEC(BASE_SEC + 5) + 500000, 0, SEC(BASE_SEC + 5)},
                /* a day back, a month back, years back */
                {{"*-*-* 03:00:00"}, SEC(BASE_SEC), 0, SEC(1699930800)},
                {{"*-*-01 00:00:00"}, SEC(BASE_SEC), 0, SEC(1698796800)},
                {{"*-02-29 12:00:00"}, SEC(BASE_SEC), 0, SEC(1582977600)},
                /* the latest of a list */
                {{"*-*-* 03:00:00", "*-*-* 22:00:00", "Mon 12:00"}, SEC(BASE_SEC), 0, SEC(1699999200)},
                {{"*-*-* 03:00:00", "2000-01-01 00:00:00"}, SEC(BASE_SEC), 0, SEC(1699930800)},
                /* none in 34 years */
                {{"2099-01-01 00:00:00"}, SEC(BASE_SEC), -ESRCH, 0},
                {{"bogus"}, SEC(BASE_SEC), -EINVAL, 0},
        };

        if (!have_analyze())
                skip();
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t n = 0;
                uint64_t got = 0;

                while (n < ELEMENTSOF(cases[i].expr) && cases[i].expr[n])
                        n++;
                int r = calendar_latest_elapse((char *const *) cases[i].expr, n, cases[i].at, &got);
                if (r != cases[i].r || (r == 0 && got != cases[i].want))
                        fail_msg("case %zu (%s): %d, %llu; want %d, %llu", i, cases[i].expr[0], r,
                                 (unsigned long long) got, cases[i].r, (unsigned long long) cases[i].want);
        }
}

static void test_shortest_gap(void **state) {
        static const struct {
                const char *expr[3];
                uint64_t want;
        } cases[] = {
                {{"*:*:0/10"}, SEC(10)},
                {{"hourly"}, SEC(3600)},
                {{"*-*-* 03:00:00", "*-*-* 03:30:00"}, SEC(1800)},
                /* the same slot twice is one slot */
                {{"daily", "*-*-* 00:00:00"}, SEC(86400)},
                {{"Mon,Tue 12:00"}, SEC(86400)},
                {{"2000-01-01"}, UINT64_MAX},
                {{"2030-01-01"}, UINT64_MAX},
        };

        if (!have_analyze())
                skip();
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t n = 0;
                uint64_t got = 0;

                while (n < ELEMENTSOF(cases[i].expr) && cases[i].expr[n])
                        n++;
                assert_int_equal(
                        calendar_shortest_gap((char *const *) cases[i].expr, n, SEC(BASE_SEC), &got), 0);
                if (got != cases[i].want)
                        fail_msg("case %zu (%s): %llu, want %llu", i, cases[i].expr[0],
                                 (unsigned long long) got, (unsigned long long) cases[i].want);
        }
}

/* Without systemd-analyze, nothing can be computed, and the caller is told so. */
static void test_without_analyze(void **state) {
        const char *path = getenv("PATH");
        char *saved = path ? strdup(path) : NULL;
        uint64_t v[1];
        size_t n;

        assert_int_equal(setenv("PATH", "/nonexistent", 1), 0);
        assert_int_equal(calendar_next_elapses("daily", SEC(BASE_SEC), 1, v, &n, NULL, 0), -ENOENT);
        assert_int_equal(calendar_latest_elapse((char *const[]){(char *) "daily"}, 1, SEC(BASE_SEC), v),
                         -ENOENT);
        if (saved)
                assert_int_equal(setenv("PATH", saved, 1), 0);
        free(saved);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_elapses),
                cmocka_unit_test(test_parse_elapses_counts),
                cmocka_unit_test(test_format_utc),
                cmocka_unit_test_setup(test_next_elapses, setup_tz),
                cmocka_unit_test_setup(test_latest_elapse, setup_tz),
                cmocka_unit_test_setup(test_shortest_gap, setup_tz),
                cmocka_unit_test(test_without_analyze),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
