/* SPDX-License-Identifier: MIT */
/* The unit names of runs: made from an id, and read back only from names the executor makes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "launcher/unit-name.h"
#include "shared/util.h"

static void test_unit_name_to_id(void **state) {
        static const struct {
                const char *name;
                int ret;
                uint64_t id;
        } cases[] = {
                {"asynctask-1.service", 0, 1},
                {"asynctask-17.service", 0, 17},
                {"asynctask-18446744073709551615.service", 0, UINT64_MAX},
                {"asynctask-18446744073709551616.service", -ERANGE, 0},
                {"asynctask-99999999999999999999.service", -ERANGE, 0},
                {"asynctask-0.service", -EINVAL, 0},
                {"asynctask-01.service", -EINVAL, 0},
                {"asynctask-.service", -EINVAL, 0},
                {"asynctask-+1.service", -EINVAL, 0},
                {"asynctask--1.service", -EINVAL, 0},
                {"asynctask-1a.service", -EINVAL, 0},
                {"asynctask-1.service.d", -EINVAL, 0},
                {"asynctask-1.scope", -EINVAL, 0},
                {"asynctask-1", -EINVAL, 0},
                {"asynctask.service", -EINVAL, 0},
                {"asynctask-launcher.service", -EINVAL, 0},
                {"xasynctask-1.service", -EINVAL, 0},
                {"Asynctask-1.service", -EINVAL, 0},
                {"", -EINVAL, 0},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t id = 4242;
                int r = unit_name_to_id(cases[i].name, &id);
                if (r != cases[i].ret)
                        fail_msg("%s: got %d, want %d", cases[i].name, r, cases[i].ret);
                assert_int_equal(id, cases[i].ret == 0 ? cases[i].id : 4242); /* untouched on error */
        }
        assert_int_equal(unit_name_to_id(NULL, &(uint64_t){0}), -EINVAL);
}

static void test_unit_name_round_trip(void **state) {
        static const uint64_t ids[] = {1, 9, 10, 42, 4294967296ULL, UINT64_MAX};

        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                char name[UNIT_NAME_SIZE];
                uint64_t id = 0;

                unit_name_from_id(ids[i], name);
                assert_true(startswith(name, "asynctask-"));
                assert_int_equal(unit_name_to_id(name, &id), 0);
                assert_int_equal(id, ids[i]);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_unit_name_to_id),
                cmocka_unit_test(test_unit_name_round_trip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
