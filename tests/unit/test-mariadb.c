/* SPDX-License-Identifier: MIT */
/*
 * The MariaDB client loaded on demand: nothing of it is mapped until the store asks for it, then
 * every function the store calls is there and works; a missing library or function is an error
 * that says which.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "front/mariadb.h"
#include "shared/util.h"

/* Whether a file whose name contains `name` is mapped into this process. */
static bool mapped(const char *name) {
        FILE *f = fopen("/proc/self/maps", "re");
        char line[1024];
        bool found = false;

        assert_non_null(f);
        while (!found && fgets(line, sizeof(line), f))
                found = strstr(line, name) != NULL;
        fclose(f);
        return found;
}

static void test_loaded_on_demand(void **state) {
        char err[256] = "";
        const Mariadb *api;
        MYSQL *m;

        /* This test, as asynctaskd, is not linked with the library. */
        assert_false(mapped("libmariadb"));
        api = mariadb_get(err, sizeof(err));
        if (!api)
                fail_msg("%s", err);
        assert_true(mapped("libmariadb"));
        for (size_t i = 0; i < sizeof(*api) / sizeof(void *); i++)
                assert_non_null(((void *const *) api)[i]);
        /* Called through the table: a handle, and the error of a handle never connected. */
        m = api->mysql_init(NULL);
        assert_non_null(m);
        assert_int_equal(api->mysql_errno(m), 0);
        assert_string_equal(api->mysql_error(m), "");
        api->mysql_close(m);
        /* Loaded once. */
        assert_ptr_equal(mariadb_get(err, sizeof(err)), api);
}

static void test_missing_library(void **state) {
        char err[256] = "";
        Mariadb api;

        assert_int_equal(mariadb_load("libasynctask-no-such-library.so.0", &api, err, sizeof(err)), -ENOENT);
        assert_non_null(strstr(err, "libasynctask-no-such-library.so.0"));
}

static void test_missing_function(void **state) {
        char err[256] = "";
        Mariadb api;

        /* A library that loads, without the client's functions: the first one is named. */
        assert_int_equal(mariadb_load("libc.so.6", &api, err, sizeof(err)), -ENOENT);
        assert_string_equal(err, "libc.so.6: no mysql_init");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_loaded_on_demand),
                cmocka_unit_test(test_missing_library),
                cmocka_unit_test(test_missing_function),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
