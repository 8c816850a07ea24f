/* SPDX-License-Identifier: MIT */
/* What executor.h decides for every executor: who may run a task with credentials. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "launcher/executor.h"
#include "shared/util.h"

static void test_credentials_refused_by_direct(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        Credential credentials[] = {{"smtp", "/etc/asynctask/creds/smtp"}};
        TaskDef def = {.name = "t", .credentials = credentials, .n_credentials = 1};
        char *argv[] = {"/bin/true", NULL};
        Launch l = {.id = 1, .attempt = 1, .def = &def, .argv = argv, .submitter = "test"};
        Executor *x = NULL;

        assert_true(sd_event_new(&event) >= 0);
        assert_int_equal(executor_direct_new(event, &(ExecutorEvents){}, NULL, &x), 0);
        /* Refused before anything runs: the direct executor has no private place for them. */
        assert_int_equal(executor_launch(x, &l), -EOPNOTSUPP);
        assert_int_equal(executor_stop(x, 1), -ESRCH);
        executor_free(x);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_credentials_refused_by_direct),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
