/* SPDX-License-Identifier: MIT */
/*
 * systemd executor: the parts that need no PID 1. Unit name parsing, completion and result mapping,
 * and the StartTransientUnit message built from a task (read back property by property). The bus
 * traffic itself is exercised under a booted systemd by tests/e2e.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <cmocka.h>

/* The executor's internals are static; test them in place. */
#include "launcher/executor-systemd.c"
#include "tmpdir.h"

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

static UnitProps props(const char *active, const char *sub, uint32_t job) {
        UnitProps p;
        unit_props_init(&p);
        snprintf(p.active_state, sizeof(p.active_state), "%s", active);
        snprintf(p.sub_state, sizeof(p.sub_state), "%s", sub);
        p.job_id = job;
        return p;
}

static void test_unit_props_finished(void **state) {
        UnitProps p;

        p = props("inactive", "dead", 0);
        assert_true(unit_props_finished(&p));
        p = props("failed", "failed", 0);
        assert_true(unit_props_finished(&p));
        p = props("active", "exited", 0); /* RemainAfterExit=yes after a successful run */
        assert_true(unit_props_finished(&p));
        /* A pending job (the start job of a unit not yet running) means not yet. */
        p = props("inactive", "dead", 7);
        assert_false(unit_props_finished(&p));
        p = props("active", "exited", 7);
        assert_false(unit_props_finished(&p));
        p = props("active", "running", 0);
        assert_false(unit_props_finished(&p));
        p = props("activating", "start", 0);
        assert_false(unit_props_finished(&p));
        p = props("deactivating", "stop-sigterm", 0); /* timeout: still being killed */
        assert_false(unit_props_finished(&p));
        p = props("", "", 0);
        assert_false(unit_props_finished(&p));
}

static UnitProps ended(const char *result, int code, int status) {
        UnitProps p = props("failed", "failed", 0);
        snprintf(p.result, sizeof(p.result), "%s", result);
        p.exec_main_code = code;
        p.exec_main_status = status;
        return p;
}

static void test_result_mapping(void **state) {
        UnitProps p;
        RunResult r;

        p = props("active", "exited", 0);
        snprintf(p.result, sizeof(p.result), "success");
        p.exec_main_code = CLD_EXITED;
        p.cpu_nsec = 1234567;
        unit_props_to_result(&p, "done", false, &r);
        assert_string_equal(r.result, "success");
        assert_true(r.has_exit_status);
        assert_int_equal(r.exit_status, 0);
        assert_int_equal(r.cpu_usec, 1234);
        assert_int_equal(r.memory_peak, 0); /* not provided by systemd 252 */
        assert_string_equal(r.error, "");

        p = ended("exit-code", CLD_EXITED, 7);
        p.memory_peak = 4096;
        unit_props_to_result(&p, "done", false, &r);
        assert_string_equal(r.result, "exit-code");
        assert_true(r.has_exit_status);
        assert_int_equal(r.exit_status, 7);
        assert_int_equal(r.memory_peak, 4096);
        assert_int_equal(r.cpu_usec, 0);

        p = ended("signal", CLD_KILLED, SIGKILL);
        unit_props_to_result(&p, "done", false, &r);
        assert_string_equal(r.result, "signal");
        assert_false(r.has_exit_status);
        assert_int_equal(r.signal, SIGKILL);

        p = ended("core-dump", CLD_DUMPED, SIGSEGV);
        unit_props_to_result(&p, "", false, &r);
        assert_string_equal(r.result, "core-dump");
        assert_int_equal(r.signal, SIGSEGV);

        p = ended("timeout", CLD_KILLED, SIGTERM);
        unit_props_to_result(&p, "done", false, &r);
        assert_string_equal(r.result, "timeout");
        assert_int_equal(r.signal, SIGTERM);

        p = ended("oom-kill", CLD_KILLED, SIGKILL);
        unit_props_to_result(&p, "done", false, &r);
        assert_string_equal(r.result, "oom-kill");

        /* Other results of systemd pass through under their own name. */
        p = ended("watchdog", CLD_KILLED, SIGABRT);
        unit_props_to_result(&p, "done", false, &r);
        assert_string_equal(r.result, "watchdog");

        /* The start job failed and systemd's own status says why: the program never ran. */
        p = ended("exit-code", CLD_EXITED, 217);
        unit_props_to_result(&p, "failed", false, &r);
        assert_string_equal(r.result, "resources");
        assert_false(r.has_exit_status);
        assert_int_equal(r.exit_status, 0);
        assert_non_null(strstr(r.error, "217/USER"));
        p = ended("exit-code", CLD_EXITED, 203);
        unit_props_to_result(&p, "failed", false, &r);
        assert_string_equal(r.result, "resources");
        assert_non_null(strstr(r.error, "203/EXEC"));
        p = ended("exit-code", CLD_EXITED, 200);
        unit_props_to_result(&p, "failed", false, &r);
        assert_non_null(strstr(r.error, "200/CHDIR"));
        /* ...and when no main process was forked at all. */
        p = ended("resources", 0, 0);
        unit_props_to_result(&p, "dependency", false, &r);
        assert_string_equal(r.result, "resources");
        assert_non_null(strstr(r.error, "dependency"));
        /* A start job known to be done means the exec succeeded: a task may exit 217 by itself. */
        p = ended("exit-code", CLD_EXITED, 217);
        unit_props_to_result(&p, "done", false, &r);
        assert_string_equal(r.result, "exit-code");
        assert_int_equal(r.exit_status, 217);

        /* Stopped on request wins over whatever the stop made of the unit. */
        p = ended("signal", CLD_KILLED, SIGTERM);
        unit_props_to_result(&p, "done", true, &r);
        assert_string_equal(r.result, "cancelled");
        p = ended("exit-code", CLD_EXITED, 217);
        unit_props_to_result(&p, "failed", true, &r);
        assert_string_equal(r.result, "cancelled");

        /* Collected before anything was learnt about it. */
        p = props("inactive", "dead", 0);
        unit_props_to_result(&p, "", false, &r);
        assert_string_equal(r.result, "lost");
}

/* With Type=exec the start job also fails when the program ran and ended before PID 1 saw the exec
 * succeed (a task that exits or is killed at once, on a busy host): systemd's Result says what
 * happened, not "resources". */
static void test_result_start_job_race(void **state) {
        UnitProps p;
        RunResult r;

        /* sh -c 'kill -KILL $$' */
        p = ended("signal", CLD_KILLED, SIGKILL);
        unit_props_to_result(&p, "failed", false, &r);
        assert_string_equal(r.result, "signal");
        assert_false(r.has_exit_status);
        assert_int_equal(r.signal, SIGKILL);
        assert_null(strstr(r.error, "could not start"));

        /* sh -c 'exit 3' */
        p = ended("exit-code", CLD_EXITED, 3);
        unit_props_to_result(&p, "failed", false, &r);
        assert_string_equal(r.result, "exit-code");
        assert_true(r.has_exit_status);
        assert_int_equal(r.exit_status, 3);

        p = ended("core-dump", CLD_DUMPED, SIGABRT);
        unit_props_to_result(&p, "failed", false, &r);
        assert_string_equal(r.result, "core-dump");
        assert_int_equal(r.signal, SIGABRT);

        /* Boundaries of systemd's own statuses: 199 and 244 (a gap) are the program's. */
        p = ended("exit-code", CLD_EXITED, 199);
        unit_props_to_result(&p, "failed", false, &r);
        assert_string_equal(r.result, "exit-code");
        assert_int_equal(r.exit_status, 199);
        p = ended("exit-code", CLD_EXITED, 244);
        unit_props_to_result(&p, "failed", false, &r);
        assert_string_equal(r.result, "exit-code");
        p = ended("exit-code", CLD_EXITED, 243);
        unit_props_to_result(&p, "failed", false, &r);
        assert_string_equal(r.result, "resources");
        assert_non_null(strstr(r.error, "243/CREDENTIALS"));

        /* Start job not known (a unit found at creation, or JobRemoved not seen yet). */
        p = ended("exit-code", CLD_EXITED, 217);
        unit_props_to_result(&p, "", false, &r);
        assert_string_equal(r.result, "resources");
        assert_non_null(strstr(r.error, "start job unknown (status 217/USER)"));
        p = ended("signal", CLD_KILLED, SIGKILL);
        unit_props_to_result(&p, "", false, &r);
        assert_string_equal(r.result, "signal");
        /* ...but a unit that became active had its exec succeed: 217 is the program's own. */
        p = ended("exit-code", CLD_EXITED, 217);
        p.active_enter_usec = 1700000000000000ULL;
        unit_props_to_result(&p, "", false, &r);
        assert_string_equal(r.result, "exit-code");
        assert_int_equal(r.exit_status, 217);
        p = ended("exit-code", CLD_EXITED, 217);
        p.active_enter_usec = 1;
        unit_props_to_result(&p, "failed", false, &r);
        assert_string_equal(r.result, "exit-code");

        /* No main process ever ended and the start job is not known: nothing to go on but Result. */
        p = ended("resources", 0, 0);
        unit_props_to_result(&p, "", false, &r);
        assert_string_equal(r.result, "resources");
        assert_non_null(strstr(r.error, "unit ended with result 'resources'"));

        /* Stopped on request still wins. */
        p = ended("signal", CLD_KILLED, SIGKILL);
        unit_props_to_result(&p, "failed", true, &r);
        assert_string_equal(r.result, "cancelled");
}

static void test_exit_status_names(void **state) {
        assert_null(systemd_exit_status_name(199));
        assert_string_equal(systemd_exit_status_name(200), "CHDIR");
        assert_string_equal(systemd_exit_status_name(217), "USER");
        assert_null(systemd_exit_status_name(223)); /* a gap in systemd's list */
        assert_string_equal(systemd_exit_status_name(243), "CREDENTIALS");
        assert_null(systemd_exit_status_name(244));
        assert_string_equal(systemd_exit_status_name(245), "BPF");
        assert_null(systemd_exit_status_name(246));
        assert_null(systemd_exit_status_name(255)); /* EXIT_EXCEPTION: not a set-up step */
        assert_null(systemd_exit_status_name(-1));
        assert_null(systemd_exit_status_name(0));
}

static void test_description(void **state) {
        char name[256];
        _cleanup_free_ char *d = NULL;

        d = make_description(17, "resize");
        assert_string_equal(d, "asynctask task 17 (resize)");
        free(TAKE_PTR(d));

        /* 200 bytes fit; 201 are cut, with a mark. */
        memset(name, 'a', 200);
        name[200] = 0;
        d = make_description(1, name);
        assert_int_equal(strlen(d), strlen("asynctask task 1 ()") + 200);
        free(TAKE_PTR(d));
        name[200] = 'b';
        name[201] = 0;
        d = make_description(1, name);
        assert_int_equal(strlen(d), strlen("asynctask task 1 (...)") + 200);
        free(TAKE_PTR(d));

        /* The cut never splits a UTF-8 character: D-Bus would refuse the string. */
        memset(name, 'a', 199);
        strcpy(name + 199, "\xc3\xa9xyz"); /* é straddles byte 200 */
        d = make_description(2, name);
        assert_int_equal(strlen(d), strlen("asynctask task 2 (...)") + 199);
        assert_non_null(strstr(d, "a...)"));
        free(TAKE_PTR(d));

        /* A raw command may contain control characters. */
        d = make_description(3, "echo a\nrm -rf x\t;");
        assert_string_equal(d, "asynctask task 3 (echo a rm -rf x ;)");
}

/* ---- the StartTransientUnit message ---- */

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

/* Finds property `name` in the sealed message and leaves the reader inside its variant. Returns
 * false if absent. */
static bool seek_property(sd_bus_message *m, const char *name) {
        const char *unit, *mode, *n;

        assert_true(sd_bus_message_rewind(m, true) >= 0);
        assert_true(sd_bus_message_read(m, "ss", &unit, &mode) >= 0);
        assert_true(sd_bus_message_enter_container(m, 'a', "(sv)") > 0);
        while (sd_bus_message_enter_container(m, 'r', "sv") > 0) {
                assert_true(sd_bus_message_read(m, "s", &n) >= 0);
                if (streq(n, name))
                        return true;
                assert_true(sd_bus_message_skip(m, "v") >= 0);
                assert_true(sd_bus_message_exit_container(m) >= 0);
        }
        return false;
}

static int count_property(sd_bus_message *m, const char *name) {
        const char *unit, *mode, *n;
        int count = 0;

        assert_true(sd_bus_message_rewind(m, true) >= 0);
        assert_true(sd_bus_message_read(m, "ss", &unit, &mode) >= 0);
        assert_true(sd_bus_message_enter_container(m, 'a', "(sv)") > 0);
        while (sd_bus_message_enter_container(m, 'r', "sv") > 0) {
                assert_true(sd_bus_message_read(m, "s", &n) >= 0);
                count += streq(n, name);
                assert_true(sd_bus_message_skip(m, "v") >= 0);
                assert_true(sd_bus_message_exit_container(m) >= 0);
        }
        return count;
}

static const char *prop_s(sd_bus_message *m, const char *name) {
        const char *v;
        if (!seek_property(m, name))
                fail_msg("property %s missing", name);
        assert_true(sd_bus_message_read(m, "v", "s", &v) >= 0);
        return v;
}

static uint64_t prop_t(sd_bus_message *m, const char *name) {
        uint64_t v;
        if (!seek_property(m, name))
                fail_msg("property %s missing", name);
        assert_true(sd_bus_message_read(m, "v", "t", &v) >= 0);
        return v;
}

static int prop_b(sd_bus_message *m, const char *name) {
        int v;
        if (!seek_property(m, name))
                fail_msg("property %s missing", name);
        assert_true(sd_bus_message_read(m, "v", "b", &v) >= 0);
        return v;
}

static char **prop_as(sd_bus_message *m, const char *name) {
        char **v = NULL;
        if (!seek_property(m, name))
                fail_msg("property %s missing", name);
        assert_true(sd_bus_message_enter_container(m, 'v', "as") > 0);
        assert_true(sd_bus_message_read_strv(m, &v) >= 0);
        return v;
}

static bool strv_contains(char **l, const char *s) {
        for (; l && *l; l++)
                if (streq(*l, s))
                        return true;
        return false;
}

static sd_bus_message *build(sd_bus *bus, const Launch *l) {
        sd_bus_message *m = NULL;
        assert_int_equal(build_start_message(bus, l, &m), 0);
        assert_true(sd_bus_message_seal(m, 1, 0) >= 0);
        return m;
}

static void test_start_message(void **state) {
        sd_bus *bus = test_bus();
        char *env[] = {"APP_ENV=production", NULL};
        char *rw[] = {"/srv/app/var", NULL};
        TaskDef def = {
                .name = "resize",
                .user = "www-data",
                .group = "www-data",
                .working_directory = "/srv/app",
                .environment = env,
                .n_environment = 1,
                .timeout_sec = 300,
                .memory_max = 512ULL << 20,
                .cpu_quota = 50,
                .nice = 10,
                .has_nice = true,
                .sandbox = {.protect_system = "full",
                            .protect_home = "read-only",
                            .private_tmp = true,
                            .private_devices = false,
                            .private_network = true,
                            .no_new_privileges = true,
                            .read_write_paths = rw,
                            .n_read_write_paths = 1},
        };
        char *argv[] = {"/usr/bin/convert", "a \"HOME\" 100%.png", "b.png", NULL};
        static const char stdin_data[] = "O:4:\"Lamb\":0:{}\0binary";
        Launch l = {.id = 42,
                    .attempt = 2,
                    .def = &def,
                    .argv = argv,
                    .stdin_data = stdin_data,
                    .stdin_len = sizeof(stdin_data) - 1};
        sd_bus_message *m = build(bus, &l);
        const char *unit, *mode, *path;
        _cleanup_(strv_freep) char **e = NULL, **args = NULL, **paths = NULL, **arch = NULL;

        assert_true(sd_bus_message_rewind(m, true) >= 0);
        assert_true(sd_bus_message_read(m, "ss", &unit, &mode) >= 0);
        assert_string_equal(unit, "asynctask-42.service");
        assert_string_equal(mode, "fail");
        assert_string_equal(sd_bus_message_get_member(m), "StartTransientUnit");

        assert_string_equal(prop_s(m, "Description"), "asynctask task 42 (resize)");
        assert_string_equal(prop_s(m, "Type"), "exec");
        assert_string_equal(prop_s(m, "User"), "www-data");
        assert_string_equal(prop_s(m, "Group"), "www-data");
        assert_string_equal(prop_s(m, "WorkingDirectory"), "/srv/app");
        assert_string_equal(prop_s(m, "Slice"), "asynctask.slice");
        assert_string_equal(prop_s(m, "StandardOutput"), "journal");
        assert_string_equal(prop_s(m, "StandardError"), "journal");
        assert_string_equal(prop_s(m, "StandardInput"), "data");
        assert_true(prop_b(m, "RemainAfterExit"));
        assert_int_equal(count_property(m, "CollectMode"), 0); /* units stay until released */
        assert_int_equal(prop_t(m, "RuntimeMaxUSec"), 300 * USEC_PER_SEC);
        assert_int_equal(prop_t(m, "MemoryMax"), 512ULL << 20);
        assert_int_equal(prop_t(m, "CPUQuotaPerSecUSec"), 500 * USEC_PER_MSEC);
        assert_true(seek_property(m, "Nice"));
        int32_t nice;
        assert_true(sd_bus_message_read(m, "v", "i", &nice) >= 0);
        assert_int_equal(nice, 10);

        /* ExecStart: the path and argv as they are (nothing in them that systemd would change), the
         * journal identity left to systemd (the program's name). */
        assert_int_equal(count_property(m, "ExecStartEx"), 0);
        assert_true(seek_property(m, "ExecStart"));
        assert_true(sd_bus_message_enter_container(m, 'v', "a(sasb)") > 0);
        assert_true(sd_bus_message_enter_container(m, 'a', "(sasb)") > 0);
        assert_true(sd_bus_message_enter_container(m, 'r', "sasb") > 0);
        assert_true(sd_bus_message_read(m, "s", &path) >= 0);
        assert_string_equal(path, "/usr/bin/convert");
        assert_true(sd_bus_message_read_strv(m, &args) >= 0);
        int ignore_failure = 1;
        assert_true(sd_bus_message_read(m, "b", &ignore_failure) >= 0);
        assert_false(ignore_failure);
        assert_string_equal(args[0], "/usr/bin/convert");
        assert_string_equal(args[1], "a \"HOME\" 100%.png");
        assert_string_equal(args[2], "b.png");
        assert_null(args[3]);
        assert_int_equal(count_property(m, "SyslogIdentifier"), 0);

        e = prop_as(m, "Environment");
        assert_true(strv_contains(e, "APP_ENV=production"));
        assert_true(strv_contains(e, "ASYNCTASK_ID=42"));
        assert_true(strv_contains(e, "ASYNCTASK_ATTEMPT=2"));
        assert_true(strv_contains(e, "ASYNCTASK_TASK=resize"));

        /* stdin as bytes, embedded NUL included. */
        const void *data;
        size_t size;
        assert_true(seek_property(m, "StandardInputData"));
        assert_true(sd_bus_message_enter_container(m, 'v', "ay") > 0);
        assert_true(sd_bus_message_read_array(m, 'y', &data, &size) >= 0);
        assert_int_equal(size, sizeof(stdin_data) - 1);
        assert_memory_equal(data, stdin_data, size);

        /* LogExtraFields: journalctl ASYNCTASK_ID=42 finds the task's output. */
        assert_true(seek_property(m, "LogExtraFields"));
        assert_true(sd_bus_message_enter_container(m, 'v', "aay") > 0);
        assert_true(sd_bus_message_enter_container(m, 'a', "ay") > 0);
        assert_true(sd_bus_message_read_array(m, 'y', &data, &size) >= 0);
        assert_int_equal(size, strlen("ASYNCTASK_ID=42"));
        assert_memory_equal(data, "ASYNCTASK_ID=42", size);
        assert_true(sd_bus_message_read_array(m, 'y', &data, &size) >= 0);
        assert_memory_equal(data, "ASYNCTASK_TASK=resize", size);

        /* The task's sandbox, relaxed where it said so, and the always-on part. */
        assert_string_equal(prop_s(m, "ProtectSystem"), "full");
        assert_string_equal(prop_s(m, "ProtectHome"), "read-only");
        assert_true(prop_b(m, "PrivateTmp"));
        assert_false(prop_b(m, "PrivateDevices"));
        assert_true(prop_b(m, "PrivateNetwork"));
        assert_true(prop_b(m, "NoNewPrivileges"));
        paths = prop_as(m, "ReadWritePaths");
        assert_true(strv_contains(paths, "/srv/app/var"));
        static const char *const always[] = {
                "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
                "ProtectControlGroups",  "ProtectClock",         "ProtectHostname",
                "RestrictSUIDSGID",      "RestrictRealtime",     "LockPersonality"};
        for (size_t i = 0; i < ELEMENTSOF(always); i++)
                if (!prop_b(m, always[i]))
                        fail_msg("%s is off", always[i]);
        assert_int_equal(prop_t(m, "RestrictNamespaces"), 0); /* no namespace may be created */
        arch = prop_as(m, "SystemCallArchitectures");
        assert_true(strv_contains(arch, "native"));
        uint32_t umask;
        assert_true(seek_property(m, "UMask"));
        assert_true(sd_bus_message_read(m, "v", "u", &umask) >= 0);
        assert_int_equal(umask, 0027);

        sd_bus_message_unref(m);
        sd_bus_flush_close_unref(bus);
}

/* Reads ExecStart's path and argv (the caller frees args). */
static const char *exec_start(sd_bus_message *m, char ***args) {
        const char *path;
        int ignore_failure = 1;

        assert_int_equal(count_property(m, "ExecStart"), 1);
        assert_true(seek_property(m, "ExecStart"));
        assert_true(sd_bus_message_enter_container(m, 'v', "a(sasb)") > 0);
        assert_true(sd_bus_message_enter_container(m, 'a', "(sasb)") > 0);
        assert_true(sd_bus_message_enter_container(m, 'r', "sasb") > 0);
        assert_true(sd_bus_message_read(m, "s", &path) >= 0);
        assert_true(sd_bus_message_read_strv(m, args) >= 0);
        assert_true(sd_bus_message_read(m, "b", &ignore_failure) >= 0);
        assert_false(ignore_failure);
        return path;
}

/* Which argv goes through asynctask-exec: any element (the program's too) with a byte systemd 252
 * does not keep in a transient unit's file ("$", ";", "\\", outside printable ASCII). */
static void test_exec_helper_decision(void **state) {
        static const char *const plain[] = {
                "", "a b", "100%", "\"quoted\" 'single'", "!#&()*+,-./:<=>?@[]^_`{|}~", "%n %i %%"};
        static const char *const helper[] = {"x;$HOME", "$", ";",    "a\\b", "tab\there", "new\nline",
                                             "\x7f",    "é", "\x01", "${X}", "a\rb"};

        for (size_t i = 0; i < ELEMENTSOF(plain); i++) {
                char *argv[] = {"/bin/echo", (char *) plain[i], NULL};
                if (exec_argv_needs_helper(argv))
                        fail_msg("'%s' would go through the helper", plain[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(helper); i++) {
                char *argv[] = {"/bin/echo", "ok", (char *) helper[i], NULL};
                char *prog[] = {(char *) helper[i], NULL};
                if (!exec_argv_needs_helper(argv) || !exec_argv_needs_helper(prog))
                        fail_msg("'%s' would not go through the helper", helper[i]);
        }
        /* Every byte: exactly the printable ASCII but "$", ";" and "\\" round-trip. */
        for (int c = 1; c < 256; c++) {
                bool expected = c >= 0x20 && c <= 0x7e && c != '$' && c != ';' && c != '\\';
                if (exec_byte_round_trips((unsigned char) c) != expected)
                        fail_msg("byte 0x%02x", c);
        }
}

/* The StartTransientUnit call through the helper: every element in hex after the helper's path, the
 * journal identity the program's name. */
static void test_start_message_exec_helper(void **state) {
        sd_bus *bus = test_bus();
        TaskDef def = {.name = "report"};
        char *argv[] = {"/usr/bin/php", "run.php", "x;$HOME", "", "\xc3\xa9\\", NULL};
        Launch l = {.id = 9, .attempt = 1, .def = &def, .argv = argv};
        sd_bus_message *m = build(bus, &l);
        char **args = NULL;

        assert_string_equal(exec_start(m, &args), LIBEXECDIR "/asynctask/asynctask-exec");
        assert_string_equal(args[0], LIBEXECDIR "/asynctask/asynctask-exec");
        assert_string_equal(args[1], "2f7573722f62696e2f706870"); /* /usr/bin/php */
        assert_string_equal(args[2], "72756e2e706870");           /* run.php */
        assert_string_equal(args[3], "783b24484f4d45");           /* x;$HOME */
        assert_string_equal(args[4], "");
        assert_string_equal(args[5], "c3a95c");
        assert_null(args[6]);
        /* What the helper decodes is argv, byte for byte. */
        for (size_t i = 0; argv[i]; i++) {
                const char *error = NULL;
                _cleanup_free_ char *d = exec_hex_decode(args[i + 1], &error);
                assert_non_null(d);
                assert_string_equal(d, argv[i]);
        }
        strv_free(TAKE_PTR(args));
        assert_string_equal(prop_s(m, "SyslogIdentifier"), "php");
        sd_bus_message_unref(m);

        /* A program whose own path needs the helper; its name in the journal without those bytes; and
         * another helper path (tests, or a different LIBEXECDIR). */
        const char *saved = exec_helper_path;
        exec_helper_path = "/opt/at/asynctask-exec";
        char *argv2[] = {"/opt/bin/a$b;c%d", NULL};
        l.argv = argv2;
        m = build(bus, &l);
        assert_string_equal(exec_start(m, &args), "/opt/at/asynctask-exec");
        assert_string_equal(args[0], "/opt/at/asynctask-exec");
        assert_string_equal(args[1], "2f6f70742f62696e2f6124623b632564");
        assert_null(args[2]);
        strv_free(TAKE_PTR(args));
        assert_string_equal(prop_s(m, "SyslogIdentifier"), "a_b_c_d");
        sd_bus_message_unref(m);
        exec_helper_path = saved;

        /* Without such a byte: the program itself, no identifier set. */
        char *argv3[] = {"/usr/bin/php", "run.php", "x:HOME", NULL};
        l.argv = argv3;
        m = build(bus, &l);
        assert_string_equal(exec_start(m, &args), "/usr/bin/php");
        assert_string_equal(args[0], "/usr/bin/php");
        assert_string_equal(args[2], "x:HOME");
        strv_free(TAKE_PTR(args));
        assert_int_equal(count_property(m, "SyslogIdentifier"), 0);
        sd_bus_message_unref(m);
        sd_bus_flush_close_unref(bus);
}

static size_t strv_len(char **l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

/* Reads a "(bas)" allow list. */
static bool prop_allow_list(sd_bus_message *m, const char *name, char ***ret) {
        int allow = 0;
        if (!seek_property(m, name))
                fail_msg("property %s missing", name);
        assert_true(sd_bus_message_enter_container(m, 'v', "(bas)") > 0);
        assert_true(sd_bus_message_enter_container(m, 'r', "bas") > 0);
        assert_true(sd_bus_message_read(m, "b", &allow) >= 0);
        assert_true(sd_bus_message_read_strv(m, ret) >= 0);
        return allow;
}

/* The hardening every task gets, and what depends on its user and on no_new_privileges. */
static void make_file(const char *path, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        assert_true(fd >= 0);
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

/* Where the launcher finds asynctask-exec: next to itself, wherever it was installed, else at the
 * path compiled in (LIBEXECDIR). */
static void test_exec_helper_find(void **state) {
        TmpDir *t = *state;
        char dir[256], program[512], helper[512];
        char *found;

        /* As make install and the packages lay them out, in any LIBEXECDIR. */
        (void) snprintf(dir, sizeof(dir), "%s/libexec", t->dir);
        assert_int_equal(mkdir(dir, 0755), 0);
        (void) snprintf(dir, sizeof(dir), "%s/libexec/asynctask", t->dir);
        assert_int_equal(mkdir(dir, 0755), 0);
        (void) snprintf(program, sizeof(program), "%s/asynctask-launcher", dir);
        (void) snprintf(helper, sizeof(helper), "%s/asynctask-exec", dir);
        make_file(program, 0755);

        /* Not there (a launcher copied on its own), or there but not executable: the compiled path. */
        found = exec_helper_find(program);
        assert_string_equal(found, LIBEXECDIR "/asynctask/asynctask-exec");
        free(found);
        make_file(helper, 0644);
        found = exec_helper_find(program);
        assert_string_equal(found, LIBEXECDIR "/asynctask/asynctask-exec");
        free(found);

        make_file(helper, 0755);
        found = exec_helper_find(program);
        assert_string_equal(found, helper);
        free(found);

        /* /proc/self/exe of a launcher whose file an upgrade replaced: still its directory. */
        (void) snprintf(program, sizeof(program), "%s/asynctask-launcher (deleted)", dir);
        found = exec_helper_find(program);
        assert_string_equal(found, helper);
        free(found);

        /* A directory named asynctask-exec is not the helper. */
        (void) snprintf(dir, sizeof(dir), "%s/other", t->dir);
        assert_int_equal(mkdir(dir, 0755), 0);
        (void) snprintf(helper, sizeof(helper), "%s/asynctask-exec", dir);
        assert_int_equal(mkdir(helper, 0755), 0);
        (void) snprintf(program, sizeof(program), "%s/asynctask-launcher", dir);
        found = exec_helper_find(program);
        assert_string_equal(found, LIBEXECDIR "/asynctask/asynctask-exec");
        free(found);

        /* A directory systemd would not keep as it is in ExecStart= (here ";"): the compiled path. */
        (void) snprintf(dir, sizeof(dir), "%s/a;b", t->dir);
        assert_int_equal(mkdir(dir, 0755), 0);
        (void) snprintf(helper, sizeof(helper), "%s/asynctask-exec", dir);
        make_file(helper, 0755);
        (void) snprintf(program, sizeof(program), "%s/asynctask-launcher", dir);
        found = exec_helper_find(program);
        assert_string_equal(found, LIBEXECDIR "/asynctask/asynctask-exec");
        free(found);

        /* No /proc, or not an absolute path. */
        found = exec_helper_find(NULL);
        assert_string_equal(found, LIBEXECDIR "/asynctask/asynctask-exec");
        free(found);
        found = exec_helper_find("asynctask-launcher");
        assert_string_equal(found, LIBEXECDIR "/asynctask/asynctask-exec");
        free(found);
}

/* In a build tree the helper is built next to the programs (and next to this test). */
static void test_exec_helper_find_build_tree(void **state) {
        _cleanup_free_ char *self = self_executable();
        _cleanup_free_ char *found = NULL, *want = NULL;

        assert_non_null(self);
        assert_true(asprintf(&want, "%.*s/asynctask-exec", (int) (strrchr(self, '/') - self), self) > 0);
        found = exec_helper_find(self);
        assert_string_equal(found, want);
}

static void test_start_message_hardening(void **state) {
        sd_bus *bus = test_bus();
        static const struct {
                const char *user;
                uid_t uid;
                bool no_new_privileges;
                bool no_caps; /* empty CapabilityBoundingSet= and AmbientCapabilities= */
        } cases[] = {
                {"nobody", 65534, true, true},  {NULL, 0, true, true}, /* no user: nobody */
                {"www-data", 33, false, false}, {"root", 0, true, false},
                {"toor", 0, true, false}, /* another name for uid 0 */
                {"root", 0, false, false},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                TaskDef def = {.name = "t",
                               .user = (char *) cases[i].user,
                               .uid = cases[i].uid,
                               .sandbox = {.no_new_privileges = cases[i].no_new_privileges}};
                char *argv[] = {"/bin/true", NULL};
                Launch l = {.id = 3, .attempt = 1, .def = &def, .argv = argv};
                sd_bus_message *m = build(bus, &l);
                char **list = NULL;
                int32_t errno_number = 0;

                assert_true(prop_allow_list(m, "SystemCallFilter", &list));
                assert_int_equal(strv_len(list), 1);
                assert_string_equal(list[0], "@system-service");
                strv_free(TAKE_PTR(list));
                assert_true(seek_property(m, "SystemCallErrorNumber"));
                assert_true(sd_bus_message_read(m, "v", "i", &errno_number) >= 0);
                assert_int_equal(errno_number, EPERM);
                assert_true(prop_allow_list(m, "RestrictAddressFamilies", &list));
                assert_int_equal(strv_len(list), 3);
                assert_true(strv_contains(list, "AF_UNIX") && strv_contains(list, "AF_INET") &&
                            strv_contains(list, "AF_INET6"));
                strv_free(TAKE_PTR(list));
                assert_int_equal(count_property(m, "MemoryDenyWriteExecute"), 0); /* JITs need it */

                /* RestrictSUIDSGID stays even with no_new_privileges: false. */
                assert_int_equal(count_property(m, "RestrictSUIDSGID"), 1);
                assert_true(prop_b(m, "RestrictSUIDSGID"));
                assert_int_equal(count_property(m, "CapabilityBoundingSet"), cases[i].no_caps);
                assert_int_equal(count_property(m, "AmbientCapabilities"), cases[i].no_caps);
                if (cases[i].no_caps) {
                        assert_int_equal(prop_t(m, "CapabilityBoundingSet"), 0);
                        assert_int_equal(prop_t(m, "AmbientCapabilities"), 0);
                }
                sd_bus_message_unref(m);
        }
        sd_bus_flush_close_unref(bus);
}

static void test_start_message_minimal(void **state) {
        sd_bus *bus = test_bus();
        TaskDef def = {
                .name = "echo \"hello world\"",
                .is_command = true,
                .user = "nobody",
                .sandbox = {.private_tmp = true, .private_devices = true, .no_new_privileges = true},
        };
        char *argv[] = {"/bin/sh", "-c", "echo \"hello world\"", NULL};
        Launch l = {.id = 7, .attempt = 1, .def = &def, .argv = argv};
        sd_bus_message *m = build(bus, &l);
        _cleanup_(strv_freep) char **e = NULL;

        /* Unset limits and stdin are left out, not sent as zero. */
        static const char *const absent[] = {"RuntimeMaxUSec", "MemoryMax",     "CPUQuotaPerSecUSec",
                                             "Nice",           "StandardInput", "StandardInputData",
                                             "Group",          "ReadWritePaths"};
        for (size_t i = 0; i < ELEMENTSOF(absent); i++)
                if (count_property(m, absent[i]) != 0)
                        fail_msg("%s set for a task without it", absent[i]);
        assert_string_equal(prop_s(m, "WorkingDirectory"), "/");
        assert_string_equal(prop_s(m, "ProtectSystem"), "strict"); /* defaults when the config left NULL */
        assert_string_equal(prop_s(m, "ProtectHome"), "true");
        /* A raw command is no task name: no ASYNCTASK_TASK. */
        e = prop_as(m, "Environment");
        assert_true(strv_contains(e, "ASYNCTASK_ID=7"));
        for (char **p = e; *p; p++)
                assert_false(startswith(*p, "ASYNCTASK_TASK="));
        assert_string_equal(prop_s(m, "Description"), "asynctask task 7 (echo \"hello world\")");

        /* Every property appears once. */
        static const char *const once[] = {"Type",  "ExecStart",       "User",           "Environment",
                                           "Slice", "RemainAfterExit", "LogExtraFields", "ProtectSystem"};
        for (size_t i = 0; i < ELEMENTSOF(once); i++)
                assert_int_equal(count_property(m, once[i]), 1);

        sd_bus_message_unref(m);
        sd_bus_flush_close_unref(bus);
}

static void test_launch_rejects(void **state) {
        /* Checks that come before any bus traffic. */
        SystemdExecutor x = {.base.ops = &systemd_ops};
        TaskDef def = {.name = "t", .user = "nobody"};
        char *argv[] = {"/bin/true", NULL};
        char *empty[] = {NULL};
        Launch ok = {.id = 1, .def = &def, .argv = argv};
        Launch l;

        l = ok, l.id = 0;
        assert_int_equal(executor_launch(&x.base, &l), -EINVAL);
        l = ok, l.def = NULL;
        assert_int_equal(executor_launch(&x.base, &l), -EINVAL);
        l = ok, l.argv = NULL;
        assert_int_equal(executor_launch(&x.base, &l), -EINVAL);
        l = ok, l.argv = empty;
        assert_int_equal(executor_launch(&x.base, &l), -EINVAL);
        l = ok, l.stdin_len = 3;
        assert_int_equal(executor_launch(&x.base, &l), -EINVAL);
        assert_int_equal(executor_launch(&x.base, NULL), -EINVAL);

        /* Unknown ids. */
        assert_int_equal(executor_stop(&x.base, 5), -ESRCH);
        assert_int_equal(executor_release(&x.base, 5), -ESRCH);
        assert_null(executor_free(NULL));
}

/* ---- units left from before, and ready: against a fake PID 1 on a socket pair ---- */

typedef struct FakePid1 {
        sd_bus *bus;               /* the server end */
        sd_bus_message *list;      /* ListUnitsByPatterns, held until the test answers */
        sd_bus_message *getall[4]; /* GetAll calls held, in arrival order */
        size_t n_getall;
        sd_bus_message *start[4]; /* StartTransientUnit calls held, in arrival order */
        size_t n_start;
        sd_bus_message *stop[4]; /* StopUnit calls held, in arrival order */
        size_t n_stop;
        sd_bus_message *reset[4]; /* ResetFailedUnit calls held, in arrival order */
        size_t n_reset;
        unsigned n_subscribe;
} FakePid1;

typedef struct Recorded {
        char log[512]; /* "started 5;finished 6 exit-code;ready;" */
        Executor *x;
        bool ready_when_reported; /* executor_ready() from inside the ready event */
} Recorded;

static void record(Recorded *rec, const char *fmt, ...) _printf_(2, 3);
static void record(Recorded *rec, const char *fmt, ...) {
        size_t n = strlen(rec->log);
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(rec->log + n, sizeof(rec->log) - n, fmt, ap);
        va_end(ap);
}

static void rec_started(void *userdata, uint64_t id, const char *unit) {
        record(userdata, "started %" PRIu64 " %s;", id, unit);
}

static void rec_finished(void *userdata, uint64_t id, const RunResult *r) {
        record(userdata, "finished %" PRIu64 " %s;", id, r->result);
}

static void rec_ready(void *userdata) {
        Recorded *rec = userdata;

        rec->ready_when_reported = executor_ready(rec->x);
        record(rec, "ready;");
}

static const ExecutorEvents recording_events = {
        .started = rec_started, .finished = rec_finished, .ready = rec_ready};

static int fake_filter(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        FakePid1 *f = userdata;
        const char *member = sd_bus_message_get_member(m);

        if (!sd_bus_message_is_method_call(m, NULL, NULL) || !member)
                return 0;
        if (streq(member, "Subscribe")) {
                f->n_subscribe++;
                assert_true(sd_bus_reply_method_return(m, NULL) >= 0);
        } else if (streq(member, "ListUnitsByPatterns")) {
                assert_null(f->list);
                f->list = sd_bus_message_ref(m);
        } else if (streq(member, "GetAll")) {
                assert_true(f->n_getall < ELEMENTSOF(f->getall));
                f->getall[f->n_getall++] = sd_bus_message_ref(m);
        } else if (streq(member, "StartTransientUnit")) {
                assert_true(f->n_start < ELEMENTSOF(f->start));
                f->start[f->n_start++] = sd_bus_message_ref(m);
        } else if (streq(member, "StopUnit")) {
                assert_true(f->n_stop < ELEMENTSOF(f->stop));
                f->stop[f->n_stop++] = sd_bus_message_ref(m);
        } else if (streq(member, "ResetFailedUnit")) {
                assert_true(f->n_reset < ELEMENTSOF(f->reset));
                f->reset[f->n_reset++] = sd_bus_message_ref(m);
        } else
                fail_msg("unexpected call %s", member);
        return 1;
}

static void fake_start(sd_event *event, FakePid1 *f, sd_bus **ret_client) {
        sd_bus *client = NULL;
        sd_id128_t id;
        int fds[2];

        *f = (FakePid1){};
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), 0);
        assert_true(sd_id128_randomize(&id) >= 0);
        assert_true(sd_bus_new(&f->bus) >= 0);
        assert_true(sd_bus_set_fd(f->bus, fds[1], fds[1]) >= 0);
        assert_true(sd_bus_set_server(f->bus, 1, id) >= 0);
        assert_true(sd_bus_add_filter(f->bus, NULL, fake_filter, f) >= 0);
        assert_true(sd_bus_start(f->bus) >= 0);
        assert_true(sd_bus_attach_event(f->bus, event, 0) >= 0);

        assert_true(sd_bus_new(&client) >= 0);
        assert_true(sd_bus_set_fd(client, fds[0], fds[0]) >= 0);
        assert_true(sd_bus_start(client) >= 0);
        assert_true(sd_bus_attach_event(client, event, 0) >= 0);
        *ret_client = client;
}

static void fake_stop(FakePid1 *f) {
        sd_bus_message_unref(f->list);
        for (size_t i = 0; i < f->n_getall; i++)
                sd_bus_message_unref(f->getall[i]);
        for (size_t i = 0; i < f->n_start; i++)
                sd_bus_message_unref(f->start[i]);
        for (size_t i = 0; i < f->n_stop; i++)
                sd_bus_message_unref(f->stop[i]);
        for (size_t i = 0; i < f->n_reset; i++)
                sd_bus_message_unref(f->reset[i]);
        sd_bus_flush_close_unref(f->bus);
}

/* Runs the loop until cond holds (or fails after about 5 s). */
#define RUN_UNTIL(event, cond)                                                                              \
        do {                                                                                                \
                for (unsigned _i = 0; !(cond); _i++) {                                                      \
                        if (_i >= 500)                                                                      \
                                fail_msg("timed out waiting for %s", #cond);                                \
                        assert_true(sd_event_run(event, 10 * USEC_PER_MSEC) >= 0);                          \
                }                                                                                           \
        } while (0)

/* A few more turns of the loop, for what must not happen. */
static void run_idle(sd_event *event) {
        for (int i = 0; i < 20; i++)
                assert_true(sd_event_run(event, 2 * USEC_PER_MSEC) >= 0);
}

static void list_entry(sd_bus_message *m, const char *name, const char *active, const char *sub) {
        assert_true(sd_bus_message_append(m, "(ssssssouso)", name, "", "loaded", active, sub, "",
                                          "/org/freedesktop/systemd1/unit/x", (uint32_t) 0, "", "/") >= 0);
}

static void answer_getall(FakePid1 *f, const char *unit, const char *active, const char *sub,
                          const char *result, int32_t code, int32_t status) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *name = NULL;
        sd_bus_message *call = NULL;

        for (size_t i = 0; i < f->n_getall && !call; i++) {
                free(TAKE_PTR(name));
                assert_true(sd_bus_path_decode(sd_bus_message_get_path(f->getall[i]), SYSTEMD_UNIT_PREFIX,
                                               &name) > 0);
                if (streq(name, unit))
                        call = f->getall[i];
        }
        if (!call)
                fail_msg("no GetAll for %s", unit);
        assert_true(sd_bus_message_new_method_return(call, &reply) >= 0);
        assert_true(sd_bus_message_append(reply, "a{sv}", 7, "LoadState", "s", "loaded", "ActiveState", "s",
                                          active, "SubState", "s", sub, "Result", "s", result,
                                          "ExecMainCode", "i", code, "ExecMainStatus", "i", status, "Job",
                                          "(uo)", (uint32_t) 0, "/") >= 0);
        assert_true(sd_bus_send(f->bus, reply, NULL) >= 0);
}

static void test_ready_after_recovery(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Recorded rec = {};
        sd_bus *client;
        FakePid1 f;

        assert_true(sd_event_new(&event) >= 0);
        fake_start(event, &f, &client);
        assert_int_equal(executor_systemd_new_with_bus(event, client, &recording_events, &rec, &rec.x), 0);
        sd_bus_unref(client); /* the executor holds its own reference */
        assert_false(executor_ready(rec.x));

        RUN_UNTIL(event, f.list);
        assert_int_equal(f.n_subscribe, 1);
        run_idle(event);
        assert_false(executor_ready(rec.x));

        /* Two units of ours and one that is not. */
        assert_true(sd_bus_message_new_method_return(f.list, &reply) >= 0);
        assert_true(sd_bus_message_open_container(reply, 'a', "(ssssssouso)") >= 0);
        list_entry(reply, "asynctask-5.service", "active", "running");
        list_entry(reply, "asynctask-launcher.service", "active", "running");
        list_entry(reply, "asynctask-6.service", "failed", "failed");
        assert_true(sd_bus_message_close_container(reply) >= 0);
        assert_true(sd_bus_send(f.bus, reply, NULL) >= 0);

        /* Listed, but nothing is known of the units yet: not ready. */
        RUN_UNTIL(event, f.n_getall == 2);
        run_idle(event);
        assert_string_equal(rec.log, "");
        assert_false(executor_ready(rec.x));

        answer_getall(&f, "asynctask-6.service", "failed", "failed", "exit-code", CLD_EXITED, 3);
        RUN_UNTIL(event, rec.log[0]);
        run_idle(event);
        assert_string_equal(rec.log, "finished 6 exit-code;");
        assert_false(executor_ready(rec.x));

        /* The last one reported: ready, once, after it. */
        answer_getall(&f, "asynctask-5.service", "active", "running", "success", 0, 0);
        RUN_UNTIL(event, executor_ready(rec.x));
        run_idle(event);
        assert_string_equal(rec.log, "finished 6 exit-code;started 5 asynctask-5.service;ready;");
        assert_true(rec.ready_when_reported);

        executor_free(rec.x);
        fake_stop(&f);
}

static void test_ready_without_units(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Recorded rec = {};
        sd_bus *client;
        FakePid1 f;

        /* An empty list: ready as soon as it is in. */
        assert_true(sd_event_new(&event) >= 0);
        fake_start(event, &f, &client);
        assert_int_equal(executor_systemd_new_with_bus(event, client, &recording_events, &rec, &rec.x), 0);
        sd_bus_unref(client);
        RUN_UNTIL(event, f.list);
        assert_false(executor_ready(rec.x));
        assert_true(sd_bus_message_new_method_return(f.list, &reply) >= 0);
        assert_true(sd_bus_message_append(reply, "a(ssssssouso)", 0) >= 0);
        assert_true(sd_bus_send(f.bus, reply, NULL) >= 0);
        RUN_UNTIL(event, executor_ready(rec.x));
        run_idle(event);
        assert_string_equal(rec.log, "ready;");
        executor_free(rec.x);
        fake_stop(&f);

        /* A failed listing: nothing better will come, so ready too (the error is logged). */
        rec = (Recorded){};
        fake_start(event, &f, &client);
        assert_int_equal(executor_systemd_new_with_bus(event, client, &recording_events, &rec, &rec.x), 0);
        sd_bus_unref(client);
        RUN_UNTIL(event, f.list);
        log_set_max_level(LOG_CRIT); /* the error it logs is expected */
        assert_true(sd_bus_reply_method_errorf(f.list, SD_BUS_ERROR_ACCESS_DENIED, "no") >= 0);
        RUN_UNTIL(event, executor_ready(rec.x));
        log_set_max_level(LOG_ERR);
        run_idle(event);
        assert_string_equal(rec.log, "ready;");
        executor_free(rec.x);
        fake_stop(&f);
}

/* Answers a held call with an error; from_driver: as dbus-daemon does (sender org.freedesktop.DBus). */
static void answer_error(FakePid1 *f, sd_bus_message *call, const char *name, const char *text,
                         bool from_driver) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        assert_true(sd_bus_message_new_method_errorf(call, &reply, name, "%s", text) >= 0);
        if (from_driver)
                assert_true(sd_bus_message_set_sender(reply, "org.freedesktop.DBus") >= 0);
        assert_true(sd_bus_send(f->bus, reply, NULL) >= 0);
}

/* What dbus-daemon says of a call whose recipient left the bus (PID 1 re-executing). */
#define PID1_LEFT "Message recipient disconnected from message bus without replying"

/* An executor on the fake PID 1 that found no units of ours at start: ready. */
static void start_without_units(sd_event *event, FakePid1 *f, Recorded *rec) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus *client;

        fake_start(event, f, &client);
        assert_int_equal(executor_systemd_new_with_bus(event, client, &recording_events, rec, &rec->x), 0);
        sd_bus_unref(client);
        RUN_UNTIL(event, f->list);
        assert_true(sd_bus_message_new_method_return(f->list, &reply) >= 0);
        assert_true(sd_bus_message_append(reply, "a(ssssssouso)", 0) >= 0);
        assert_true(sd_bus_send(f->bus, reply, NULL) >= 0);
        RUN_UNTIL(event, executor_ready(rec->x));
}

/* PID 1 leaving the bus to re-execute (daemon-reexec) leaves its calls unanswered, and dbus-daemon
 * answers them NoReply. A start is sent again, and UnitExists then means that PID 1 had created the
 * unit: the run is watched as usual. A GetAll is sent again. A NoReply of our own (a timeout: no
 * sender) still fails the start. */
static void test_pid1_left_unanswered(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        TaskDef def = {.name = "t", .user = "nobody"};
        char *argv[] = {"/bin/true", NULL};
        Launch l = {.id = 7, .attempt = 1, .def = &def, .argv = argv};
        Recorded rec = {};
        FakePid1 f;

        assert_true(sd_event_new(&event) >= 0);
        start_without_units(event, &f, &rec);

        assert_int_equal(executor_launch(rec.x, &l), 0);
        RUN_UNTIL(event, f.n_start == 1);
        answer_error(&f, f.start[0], SD_BUS_ERROR_NO_REPLY, PID1_LEFT, true);
        RUN_UNTIL(event, f.n_start == 2);
        assert_string_equal(rec.log, "ready;");
        answer_error(&f, f.start[1], "org.freedesktop.systemd1.UnitExists",
                     "Unit asynctask-7.service already exists.", false);
        RUN_UNTIL(event, f.n_getall == 1);
        assert_string_equal(rec.log, "ready;started 7 asynctask-7.service;");

        /* Its GetAll is left unanswered too: asked again, and the end is reported. */
        answer_error(&f, f.getall[0], SD_BUS_ERROR_NO_REPLY, PID1_LEFT, true);
        sd_bus_message_unref(f.getall[0]);
        f.n_getall = 0;
        RUN_UNTIL(event, f.n_getall == 1);
        answer_getall(&f, "asynctask-7.service", "active", "exited", "success", CLD_EXITED, 0);
        RUN_UNTIL(event, strstr(rec.log, "finished"));
        assert_string_equal(rec.log, "ready;started 7 asynctask-7.service;finished 7 success;");

        /* Releasing it: the StopUnit and then the ResetFailedUnit left unanswered are sent again. */
        assert_int_equal(executor_release(rec.x, 7), 0);
        RUN_UNTIL(event, f.n_stop == 1);
        answer_error(&f, f.stop[0], SD_BUS_ERROR_NO_REPLY, PID1_LEFT, true);
        RUN_UNTIL(event, f.n_stop == 2);
        assert_true(sd_bus_reply_method_return(f.stop[1], "o", "/org/freedesktop/systemd1/job/2") >= 0);
        RUN_UNTIL(event, f.n_reset == 1);
        answer_error(&f, f.reset[0], SD_BUS_ERROR_NO_REPLY, PID1_LEFT, true);
        RUN_UNTIL(event, f.n_reset == 2);
        assert_true(sd_bus_reply_method_return(f.reset[1], NULL) >= 0);
        run_idle(event);
        assert_int_equal(f.n_stop, 2);
        assert_int_equal(f.n_reset, 2);
        assert_int_equal(executor_release(rec.x, 7), -ESRCH); /* released */

        /* A start that timed out here is not sent again. */
        l.id = 8;
        assert_int_equal(executor_launch(rec.x, &l), 0);
        RUN_UNTIL(event, f.n_start == 3);
        log_set_max_level(LOG_CRIT);
        answer_error(&f, f.start[2], SD_BUS_ERROR_NO_REPLY, "Method call timed out", false);
        RUN_UNTIL(event, strstr(rec.log, "finished 8"));
        log_set_max_level(LOG_ERR);
        run_idle(event);
        assert_int_equal(f.n_start, 3);
        assert_string_equal(rec.log,
                            "ready;started 7 asynctask-7.service;finished 7 success;finished 8 resources;");

        /* A cancel whose StopUnit is left unanswered is sent again, not forgotten. */
        l.id = 9;
        assert_int_equal(executor_launch(rec.x, &l), 0);
        RUN_UNTIL(event, f.n_start == 4);
        assert_true(sd_bus_reply_method_return(f.start[3], "o", "/org/freedesktop/systemd1/job/9") >= 0);
        RUN_UNTIL(event, strstr(rec.log, "started 9"));
        assert_int_equal(executor_stop(rec.x, 9), 0);
        RUN_UNTIL(event, f.n_stop == 3);
        answer_error(&f, f.stop[2], SD_BUS_ERROR_NO_REPLY, PID1_LEFT, true);
        RUN_UNTIL(event, f.n_stop == 4);

        executor_free(rec.x);
        fake_stop(&f);
}

/* The next attempt of a task whose previous unit is still being released: a UnitExists after its
 * unanswered start may be the old unit, so it is not taken over; the start is tried again. */
static void test_unanswered_start_while_releasing(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        TaskDef def = {.name = "t", .user = "nobody"};
        char *argv[] = {"/bin/true", NULL};
        Launch l = {.id = 7, .attempt = 1, .def = &def, .argv = argv};
        Recorded rec = {};
        FakePid1 f;

        assert_true(sd_event_new(&event) >= 0);
        start_without_units(event, &f, &rec);

        /* Attempt 1 runs and fails; its release is in flight (StopUnit unanswered). */
        assert_int_equal(executor_launch(rec.x, &l), 0);
        RUN_UNTIL(event, f.n_start == 1);
        assert_true(sd_bus_reply_method_return(f.start[0], "o", "/org/freedesktop/systemd1/job/1") >= 0);
        RUN_UNTIL(event, f.n_getall == 1);
        answer_getall(&f, "asynctask-7.service", "failed", "failed", "exit-code", CLD_EXITED, 1);
        RUN_UNTIL(event, strstr(rec.log, "finished 7"));
        assert_int_equal(executor_release(rec.x, 7), 0);
        RUN_UNTIL(event, f.n_stop == 1);

        /* Attempt 2: its start is left unanswered, the resent one finds the old unit. */
        l.attempt = 2;
        assert_int_equal(executor_launch(rec.x, &l), 0);
        RUN_UNTIL(event, f.n_start == 2);
        answer_error(&f, f.start[1], SD_BUS_ERROR_NO_REPLY, PID1_LEFT, true);
        RUN_UNTIL(event, f.n_start == 3);
        answer_error(&f, f.start[2], "org.freedesktop.systemd1.UnitExists",
                     "Unit asynctask-7.service already exists.", false);
        /* Not taken over: once the old unit is released, the start is sent once more. */
        assert_true(sd_bus_reply_method_return(f.stop[0], "o", "/org/freedesktop/systemd1/job/2") >= 0);
        RUN_UNTIL(event, f.n_reset == 1);
        assert_true(sd_bus_reply_method_return(f.reset[0], NULL) >= 0);
        RUN_UNTIL(event, f.n_start == 4);
        assert_int_equal(f.n_getall, 1);
        assert_true(sd_bus_reply_method_return(f.start[3], "o", "/org/freedesktop/systemd1/job/3") >= 0);
        RUN_UNTIL(event, strstr(strstr(rec.log, "finished 7") + 1, "started 7"));

        executor_free(rec.x);
        fake_stop(&f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_unit_name_to_id),
                cmocka_unit_test(test_unit_props_finished),
                cmocka_unit_test(test_result_mapping),
                cmocka_unit_test(test_result_start_job_race),
                cmocka_unit_test(test_exit_status_names),
                cmocka_unit_test(test_description),
                cmocka_unit_test(test_start_message),
                cmocka_unit_test(test_start_message_minimal),
                cmocka_unit_test(test_exec_helper_decision),
                cmocka_unit_test(test_start_message_exec_helper),
                cmocka_unit_test_setup_teardown(test_exec_helper_find, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test(test_exec_helper_find_build_tree),
                cmocka_unit_test(test_start_message_hardening),
                cmocka_unit_test(test_launch_rejects),
                cmocka_unit_test(test_ready_after_recovery),
                cmocka_unit_test(test_ready_without_units),
                cmocka_unit_test(test_pid1_left_unanswered),
                cmocka_unit_test(test_unanswered_start_while_releasing),
        };
        log_set_max_level(LOG_ERR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
