/* SPDX-License-Identifier: MIT */
/*
 * What systemd reports about a run's unit and the RunResult it amounts to: completion, the mapping
 * of Result=, ExecMain* and the start job's result, systemd's own exit statuses, and the reading of
 * the property lists PID 1 sends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "launcher/unit-result.h"
#include "shared/util.h"

static UnitProps props(const char *active, const char *sub, uint32_t job) {
        UnitProps p;

        unit_result_props_init(&p);
        snprintf(p.active_state, sizeof(p.active_state), "%s", active);
        snprintf(p.sub_state, sizeof(p.sub_state), "%s", sub);
        p.job_id = job;
        return p;
}

static void test_props_finished(void **state) {
        static const struct {
                const char *active, *sub;
                uint32_t job;
                bool finished;
        } cases[] = {
                {"inactive", "dead", 0, true},
                {"failed", "failed", 0, true},
                {"active", "exited", 0, true}, /* RemainAfterExit=yes after a successful run */
                /* A pending job (the start job of a unit not yet running) means not yet. */
                {"inactive", "dead", 7, false},
                {"active", "exited", 7, false},
                {"active", "running", 0, false},
                {"activating", "start", 0, false},
                {"deactivating", "stop-sigterm", 0, false}, /* timeout: still being killed */
                {"", "", 0, false},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                UnitProps p = props(cases[i].active, cases[i].sub, cases[i].job);
                if (unit_result_props_finished(&p) != cases[i].finished)
                        fail_msg("%s/%s job %u: finished is not %d", cases[i].active, cases[i].sub,
                                 cases[i].job, cases[i].finished);
        }
}

/* A finished unit (failed/failed unless said otherwise) and what it amounts to. */
static void test_decode(void **state) {
        static const struct {
                const char *what;
                const char *active, *sub, *result;
                int code, status;
                uint64_t active_enter;
                const char *job; /* the start job's result; "" unknown */
                bool cancelled;
                /* expected */
                const char *want;
                int has_exit_status, exit_status, signal;
                const char *error; /* a part of the error text; "" for none at all */
        } cases[] = {
                {"success", "active", "exited", "success", CLD_EXITED, 0, 0, "done", false, "success", 1, 0,
                 0, ""},
                {"success without ExecMain*", "active", "exited", "", 0, 0, 0, "done", false, "success", 1,
                 0, 0, ""},
                {"exit code", NULL, NULL, "exit-code", CLD_EXITED, 7, 0, "done", false, "exit-code", 1, 7, 0,
                 "exited with status 7"},
                {"SIGKILL", NULL, NULL, "signal", CLD_KILLED, SIGKILL, 0, "done", false, "signal", 0, 0,
                 SIGKILL, "killed by signal 9"},
                {"core dump", NULL, NULL, "core-dump", CLD_DUMPED, SIGSEGV, 0, "", false, "core-dump", 0, 0,
                 SIGSEGV, "killed by signal 11"},
                {"timeout", NULL, NULL, "timeout", CLD_KILLED, SIGTERM, 0, "done", false, "timeout", 0, 0,
                 SIGTERM, "timeout_sec"},
                {"oom", NULL, NULL, "oom-kill", CLD_KILLED, SIGKILL, 0, "done", false, "oom-kill", 0, 0,
                 SIGKILL, "memory_max"},
                /* Other results of systemd pass through under their own name. */
                {"watchdog", NULL, NULL, "watchdog", CLD_KILLED, SIGABRT, 0, "done", false, "watchdog", 0, 0,
                 SIGABRT, "unit ended with result 'watchdog'"},
                /* The start job failed and systemd's own status says why: the program never ran. */
                {"217/USER", NULL, NULL, "exit-code", CLD_EXITED, 217, 0, "failed", false, "resources", 0, 0,
                 0, "start job failed (status 217/USER)"},
                {"203/EXEC", NULL, NULL, "exit-code", CLD_EXITED, 203, 0, "failed", false, "resources", 0, 0,
                 0, "203/EXEC"},
                {"200/CHDIR", NULL, NULL, "exit-code", CLD_EXITED, 200, 0, "failed", false, "resources", 0,
                 0, 0, "200/CHDIR"},
                {"243/CREDENTIALS", NULL, NULL, "exit-code", CLD_EXITED, 243, 0, "failed", false,
                 "resources", 0, 0, 0, "243/CREDENTIALS"},
                /* ...and when no main process was forked at all. */
                {"no main process", NULL, NULL, "resources", 0, 0, 0, "dependency", false, "resources", 0, 0,
                 0, "start job dependency, unit resources"},
                /* A start job known to be done means the exec succeeded: a task may exit 217 by itself. */
                {"217 of its own", NULL, NULL, "exit-code", CLD_EXITED, 217, 0, "done", false, "exit-code",
                 1, 217, 0, "exited with status 217"},
                /* With Type=exec the start job also fails when the program ran and ended before PID 1
                 * saw the exec succeed: systemd's Result says what happened, not "resources". */
                {"kill -KILL $$, job failed", NULL, NULL, "signal", CLD_KILLED, SIGKILL, 0, "failed", false,
                 "signal", 0, 0, SIGKILL, "killed by signal"},
                {"exit 3, job failed", NULL, NULL, "exit-code", CLD_EXITED, 3, 0, "failed", false,
                 "exit-code", 1, 3, 0, "status 3"},
                {"abort, job failed", NULL, NULL, "core-dump", CLD_DUMPED, SIGABRT, 0, "failed", false,
                 "core-dump", 0, 0, SIGABRT, "signal 6"},
                /* Boundaries of systemd's own statuses: 199 and 244 (a gap) are the program's. */
                {"199", NULL, NULL, "exit-code", CLD_EXITED, 199, 0, "failed", false, "exit-code", 1, 199, 0,
                 ""},
                {"244", NULL, NULL, "exit-code", CLD_EXITED, 244, 0, "failed", false, "exit-code", 1, 244, 0,
                 ""},
                /* Start job not known (a unit found at start, or JobRemoved not seen yet). */
                {"217, job unknown", NULL, NULL, "exit-code", CLD_EXITED, 217, 0, "", false, "resources", 0,
                 0, 0, "start job unknown (status 217/USER)"},
                {"SIGKILL, job unknown", NULL, NULL, "signal", CLD_KILLED, SIGKILL, 0, "", false, "signal",
                 0, 0, SIGKILL, ""},
                /* ...but a unit that became active had its exec succeed: 217 is the program's own. */
                {"217, became active", NULL, NULL, "exit-code", CLD_EXITED, 217, 1700000000000000ULL, "",
                 false, "exit-code", 1, 217, 0, ""},
                {"217, became active, job failed", NULL, NULL, "exit-code", CLD_EXITED, 217, 1, "failed",
                 false, "exit-code", 1, 217, 0, ""},
                /* No main process ever ended and the start job is not known: nothing to go on but Result. */
                {"resources, job unknown", NULL, NULL, "resources", 0, 0, 0, "", false, "resources", 0, 0, 0,
                 "unit ended with result 'resources'"},
                /* Stopped on request wins over whatever the stop made of the unit. */
                {"cancelled", NULL, NULL, "signal", CLD_KILLED, SIGTERM, 0, "done", true, "cancelled", 0, 0,
                 SIGTERM, "stopped on request"},
                {"cancelled before the exec", NULL, NULL, "exit-code", CLD_EXITED, 217, 0, "failed", true,
                 "cancelled", 1, 217, 0, "stopped on request"},
                {"cancelled, job failed", NULL, NULL, "signal", CLD_KILLED, SIGKILL, 0, "failed", true,
                 "cancelled", 0, 0, SIGKILL, ""},
                /* Collected before anything was learnt about it. */
                {"vanished", "inactive", "dead", "", 0, 0, 0, "", false, "lost", 0, 0, 0, "vanished"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                UnitProps p = props(cases[i].active ?: "failed", cases[i].sub ?: "failed", 0);
                RunResult r;

                snprintf(p.result, sizeof(p.result), "%s", cases[i].result);
                p.exec_main_code = cases[i].code;
                p.exec_main_status = cases[i].status;
                p.active_enter_usec = cases[i].active_enter;
                memset(&r, 0x55, sizeof(r)); /* everything is written */
                unit_result_decode(&p, cases[i].job, cases[i].cancelled, &r);
                if (!streq(r.result, cases[i].want) || r.has_exit_status != cases[i].has_exit_status ||
                    r.exit_status != cases[i].exit_status || r.signal != cases[i].signal)
                        fail_msg("%s: got %s exit %d/%d signal %d, want %s exit %d/%d signal %d",
                                 cases[i].what, r.result, r.has_exit_status, r.exit_status, r.signal,
                                 cases[i].want, cases[i].has_exit_status, cases[i].exit_status,
                                 cases[i].signal);
                if (cases[i].error[0] ? !strstr(r.error, cases[i].error)
                                      : strcmp(cases[i].want, "success") == 0 && r.error[0])
                        fail_msg("%s: error '%s', want '%s'", cases[i].what, r.error, cases[i].error);
                if (strstr(cases[i].want, "resources") == NULL && strstr(r.error, "could not start"))
                        fail_msg("%s: '%s' although the program ran", cases[i].what, r.error);
                assert_int_equal(r.cpu_usec, 0);    /* unknown */
                assert_int_equal(r.memory_peak, 0); /* not provided by systemd 252 */
        }
        /* NULL for the start job is "unknown". */
        UnitProps p = props("failed", "failed", 0);
        RunResult r;
        snprintf(p.result, sizeof(p.result), "exit-code");
        p.exec_main_code = CLD_EXITED;
        p.exec_main_status = 217;
        unit_result_decode(&p, NULL, false, &r);
        assert_string_equal(r.result, "resources");
        assert_non_null(strstr(r.error, "start job unknown"));
}

/* Which units that failed before the program ran are started again: 219/CGROUP only (PID 1's own
 * passing failure), never a status that would fail again, never a program that ran. */
static void test_start_transient(void **state) {
        static const struct {
                const char *what;
                int code, status;
                uint64_t active_enter;
                const char *job;
                bool transient;
        } cases[] = {
                {"219/CGROUP, job failed", CLD_EXITED, 219, 0, "failed", true},
                {"219/CGROUP, job unknown", CLD_EXITED, 219, 0, "", true},
                {"219/CGROUP, job NULL", CLD_EXITED, 219, 0, NULL, true},
                /* The definition's or the host's: the same unit would fail the same way. */
                {"217/USER", CLD_EXITED, 217, 0, "failed", false},
                {"203/EXEC", CLD_EXITED, 203, 0, "failed", false},
                {"200/CHDIR", CLD_EXITED, 200, 0, "failed", false},
                {"220/SETSID", CLD_EXITED, 220, 0, "failed", false},
                /* The program ran: 219 is its own exit status. */
                {"219, job done", CLD_EXITED, 219, 0, "done", false},
                {"219, became active", CLD_EXITED, 219, 1700000000000000ULL, "failed", false},
                {"219, became active, job unknown", CLD_EXITED, 219, 1, "", false},
                /* Not an exit status at all. */
                {"signal 219", CLD_KILLED, 219, 0, "failed", false},
                {"no main process", 0, 0, 0, "failed", false},
                {"success", CLD_EXITED, 0, 0, "done", false},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                UnitProps p = props("failed", "failed", 0);

                snprintf(p.result, sizeof(p.result), "exit-code");
                p.exec_main_code = cases[i].code;
                p.exec_main_status = cases[i].status;
                p.active_enter_usec = cases[i].active_enter;
                if (unit_result_start_transient(&p, cases[i].job) != cases[i].transient)
                        fail_msg("%s: transient is not %d", cases[i].what, cases[i].transient);
        }
}

static void test_decode_accounting(void **state) {
        UnitProps p = props("active", "exited", 0);
        RunResult r;

        snprintf(p.result, sizeof(p.result), "success");
        p.exec_main_code = CLD_EXITED;
        p.cpu_nsec = 1234567;
        p.memory_peak = 4096;
        unit_result_decode(&p, "done", false, &r);
        assert_int_equal(r.cpu_usec, 1234);
        assert_int_equal(r.memory_peak, 4096);
}

static void test_exit_status_names(void **state) {
        static const struct {
                int status;
                const char *name;
        } cases[] = {
                {199, NULL},   {200, "CHDIR"}, {203, "EXEC"},
                {217, "USER"}, {223, NULL},    /* a gap in systemd's list */ {243, "CREDENTIALS"},
                {244, NULL},   {245, "BPF"},   {246, NULL},
                {255, NULL}, /* EXIT_EXCEPTION: not a set-up step */
                {-1, NULL},    {0, NULL},      {1, NULL},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (!streq_ptr(unit_result_exit_status_name(cases[i].status), cases[i].name))
                        fail_msg("%d: got %s, want %s", cases[i].status,
                                 unit_result_exit_status_name(cases[i].status) ?: "NULL",
                                 cases[i].name ?: "NULL");
}

static void test_start_failed(void **state) {
        static const struct {
                bool cancelled;
                const char *result, *error;
        } cases[] = {
                {false, "resources",
                 "could not create asynctask-5.service: Unit asynctask-5.service exists"},
                {true, "cancelled", "stopped before it started"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                RunResult r;

                unit_result_start_failed("asynctask-5.service", "Unit asynctask-5.service exists",
                                         cases[i].cancelled, &r);
                assert_string_equal(r.result, cases[i].result);
                assert_string_equal(r.error, cases[i].error);
                assert_false(r.has_exit_status);
        }
}

/* A message to write property lists into: on a bus that talks to nobody. */
static sd_bus *test_bus(void) {
        int fds[2];
        sd_bus *bus = NULL;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), 0);
        assert_true(sd_bus_new(&bus) >= 0);
        assert_true(sd_bus_set_fd(bus, fds[0], fds[0]) >= 0);
        assert_true(sd_bus_start(bus) >= 0);
        close(fds[1]);
        return bus;
}

static sd_bus_message *sealed(sd_bus_message *m) {
        assert_true(sd_bus_message_seal(m, 1, 0) >= 0);
        assert_true(sd_bus_message_rewind(m, true) >= 0);
        return m;
}

/* A GetAll reply: what is read, and what is skipped (other types, containers, unknown names). */
static void test_props_update(void **state) {
        sd_bus *bus = test_bus();
        sd_bus_message *m = NULL;
        UnitProps p;

        assert_true(sd_bus_message_new_method_call(bus, &m, "x.y", "/x", "x.y", "GetAll") >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 14, "Id", "s", "asynctask-5.service", "LoadState", "s",
                                          "loaded", "ActiveState", "s", "failed", "Names", "as", 2, "a", "b",
                                          "SubState", "s", "failed", "Result", "s", "exit-code",
                                          "ExecMainCode", "i", (int32_t) CLD_EXITED, "ExecMainStatus", "i",
                                          (int32_t) 3, "ExecMainExitTimestamp", "t", (uint64_t) 17,
                                          "ActiveEnterTimestamp", "t", (uint64_t) 0, "CPUUsageNSec", "t",
                                          (uint64_t) 5000, "Job", "(uo)", (uint32_t) 0, "/", "Conditions",
                                          "a(sbbsi)", 0, "MemoryPeak", "t", (uint64_t) 8192) >= 0);
        unit_result_props_init(&p);
        p.job_id = 9;
        assert_int_equal(unit_result_props_update(&p, sealed(m)), 0);
        assert_string_equal(p.load_state, "loaded");
        assert_string_equal(p.active_state, "failed");
        assert_string_equal(p.sub_state, "failed");
        assert_string_equal(p.result, "exit-code");
        assert_int_equal(p.exec_main_code, CLD_EXITED);
        assert_int_equal(p.exec_main_status, 3);
        assert_int_equal(p.exec_main_exit_usec, 17);
        assert_int_equal(p.cpu_nsec, 5000);
        assert_int_equal(p.memory_peak, 8192);
        assert_int_equal(p.job_id, 0);
        assert_true(unit_result_props_finished(&p));
        m = sd_bus_message_unref(m);

        /* A PropertiesChanged payload updates what it names and leaves the rest; a string too long is
         * cut. */
        char longer[100];
        memset(longer, 'x', sizeof(longer) - 1);
        longer[sizeof(longer) - 1] = 0;
        assert_true(sd_bus_message_new_method_call(bus, &m, "x.y", "/x", "x.y", "Changed") >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 2, "ActiveState", "s", "inactive", "SubState", "s",
                                          longer) >= 0);
        assert_int_equal(unit_result_props_update(&p, sealed(m)), 0);
        assert_string_equal(p.active_state, "inactive");
        assert_int_equal(strlen(p.sub_state), sizeof(p.sub_state) - 1);
        assert_string_equal(p.result, "exit-code");
        m = sd_bus_message_unref(m);

        /* A known name with the wrong type is an error. */
        assert_true(sd_bus_message_new_method_call(bus, &m, "x.y", "/x", "x.y", "Changed") >= 0);
        assert_true(sd_bus_message_append(m, "a{sv}", 1, "ExecMainCode", "s", "1") >= 0);
        assert_true(unit_result_props_update(&p, sealed(m)) < 0);
        m = sd_bus_message_unref(m);

        sd_bus_flush_close_unref(bus);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_props_finished),    cmocka_unit_test(test_decode),
                cmocka_unit_test(test_decode_accounting), cmocka_unit_test(test_start_transient),
                cmocka_unit_test(test_exit_status_names), cmocka_unit_test(test_start_failed),
                cmocka_unit_test(test_props_update),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
