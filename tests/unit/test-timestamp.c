/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "shared/timestamp.h"

static void test_reads_and_advances(void **state) {
        const char *s = "2026-11-26T17:00:00.5Z", *p = s;
        int64_t sec;

        assert_int_equal(scan_utc_date_time(&p, 'T', &sec), 0);
        assert_int_equal(sec, 1795712400);
        assert_string_equal(p, ".5Z");

        p = "2024-02-29 23:59:59 UTC";
        assert_int_equal(scan_utc_date_time(&p, ' ', &sec), 0);
        assert_int_equal(sec, 1709251199);
        assert_string_equal(p, " UTC");

        /* The second before the epoch is real, though timegm() answers it with -1. */
        p = "1969-12-31 23:59:59";
        assert_int_equal(scan_utc_date_time(&p, ' ', &sec), 0);
        assert_int_equal(sec, -1);
}

static void test_refuses_what_is_not_a_date(void **state) {
        static const char *const bad[] = {
                "2026-02-31T00:00:00",
                "2025-02-29T00:00:00",
                "2026-13-01T00:00:00",
                "2026-00-10T00:00:00",
                "2026-01-01T24:00:00",
                "2026-01-01T00:60:00",
                "2016-12-31T23:59:60",
                "2026-01-01 00:00:00",
                "2026-1-01T00:00:00",
                "2026-01-01T00:00",
                "",
                "20x6-01-01T00:00:00",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                const char *p = bad[i];
                int64_t sec = 42;
                assert_int_equal(scan_utc_date_time(&p, 'T', &sec), -EINVAL);
                /* Nothing read on failure. */
                assert_ptr_equal(p, bad[i]);
                assert_int_equal(sec, 42);
        }
}

static void test_scanners(void **state) {
        const char *p = "0420x";
        int v = -1;

        assert_false(scan_digits(&p, 5, &v));
        assert_int_equal(v, -1);
        assert_true(scan_digits(&p, 4, &v));
        assert_int_equal(v, 420);
        assert_false(scan_char(&p, 'y'));
        assert_true(scan_char(&p, 'x'));
        assert_false(scan_char(&p, 'x'));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reads_and_advances),
                cmocka_unit_test(test_refuses_what_is_not_a_date),
                cmocka_unit_test(test_scanners),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
