/* SPDX-License-Identifier: MIT */
/*
 * The user cache: an entry is looked up once and kept (the same entry comes back, also for a uid
 * without one), groups once per group id, and a clear makes the next call look up again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "front/user-cache.h"
#include "shared/util.h"

/* A uid no test host has. */
#define NO_SUCH_UID ((uid_t) 3999999999u)

static void test_kept_until_cleared(void **state) {
        const UserInfo *root, *again, *none;

        assert_int_equal(user_cache_get(0, &root), 0);
        assert_true(root->found);
        assert_string_equal(root->name, "root");
        assert_int_equal(root->gid, 0);
        assert_int_equal(user_cache_get(0, &again), 0);
        assert_ptr_equal(again, root);

        assert_int_equal(user_cache_get(NO_SUCH_UID, &none), 0);
        assert_false(none->found);
        assert_string_equal(none->name, "");
        /* Kept too: the entry for root has not moved. */
        assert_int_equal(user_cache_get(NO_SUCH_UID, &again), 0);
        assert_ptr_equal(again, none);
        assert_int_equal(user_cache_get(0, &again), 0);
        assert_ptr_equal(again, root);

        user_cache_clear();
        assert_int_equal(user_cache_get(0, &again), 0);
        assert_true(again->found);
        assert_string_equal(again->name, "root");
        user_cache_clear();
}

static void test_groups(void **state) {
        const gid_t *g, *g2;
        size_t n, n2;
        bool has_own = false;

        assert_int_equal(user_cache_groups(0, 0, &g, &n), 0);
        assert_true(n >= 1);
        for (size_t i = 0; i < n; i++)
                has_own = has_own || g[i] == 0;
        assert_true(has_own);
        assert_int_equal(user_cache_groups(0, 0, &g2, &n2), 0);
        assert_ptr_equal(g2, g);
        /* Another primary group: looked up again, and it is in the list. */
        assert_int_equal(user_cache_groups(0, 12345, &g2, &n2), 0);
        has_own = false;
        for (size_t i = 0; i < n2; i++)
                has_own = has_own || g2[i] == 12345;
        assert_true(has_own);
        /* A uid without an entry has no groups. */
        assert_int_equal(user_cache_groups(NO_SUCH_UID, 1, &g, &n), 0);
        assert_int_equal(n, 0);
        user_cache_clear();
}

/* Past USER_CACHE_MAX distinct uids the cache starts over, and still answers. */
static void test_bounded(void **state) {
        const UserInfo *u;

        for (uid_t i = 0; i < USER_CACHE_MAX + 10; i++)
                assert_int_equal(user_cache_get(NO_SUCH_UID - i, &u), 0);
        assert_int_equal(user_cache_get(0, &u), 0);
        assert_string_equal(u->name, "root");
        user_cache_clear();
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kept_until_cleared),
                cmocka_unit_test(test_groups),
                cmocka_unit_test(test_bounded),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
