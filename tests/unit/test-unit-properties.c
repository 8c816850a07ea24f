/* SPDX-License-Identifier: MIT */
/*
 * The StartTransientUnit call of a run, built on a bus that talks to nobody and read back property
 * by property: what each task definition and launch turn into, and what is never sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "launcher/stdin-memfd.h"
#include "launcher/unit-properties.h"
#include "shared/exec-hex.h"
#include "shared/util.h"

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

/* The start call of l, sealed to be read back; the launch's stdin, if any, in a memfd. */
static sd_bus_message *build(sd_bus *bus, const Launch *l) {
        _cleanup_close_ int stdin_fd = -1;
        sd_bus_message *m = NULL;

        if (l->stdin_data)
                assert_true((stdin_fd = stdin_memfd_new(l->stdin_data, l->stdin_len)) >= 0);
        assert_int_equal(unit_properties_new_start(bus, l, stdin_fd, &m), 0);
        assert_true(sd_bus_message_seal(m, 1, 0) >= 0);
        return m;
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

static void text_add(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
static void text_add(char *buf, size_t size, const char *fmt, ...) {
        size_t n = strlen(buf);
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(buf + n, size - n, fmt, ap);
        va_end(ap);
}

/* One value at the reader, as text: strings and numbers as they are, booleans "yes"/"no", a
 * descriptor "fd", byte arrays as strings, arrays space-separated, structures ":"-separated, an
 * allow list "(bas)" as "+A B" (or "-A B" for a deny list). */
static void value_text(sd_bus_message *m, char *buf, size_t size) {
        const char *contents;
        char type;

        assert_true(sd_bus_message_peek_type(m, &type, &contents) > 0);
        switch (type) {
        case 's': {
                const char *s;
                assert_true(sd_bus_message_read_basic(m, type, &s) >= 0);
                text_add(buf, size, "%s", s);
                return;
        }
        case 'b': {
                int b;
                assert_true(sd_bus_message_read_basic(m, type, &b) >= 0);
                text_add(buf, size, "%s", b ? "yes" : "no");
                return;
        }
        case 'h': {
                int fd;
                assert_true(sd_bus_message_read_basic(m, type, &fd) >= 0);
                text_add(buf, size, "fd");
                return;
        }
        case 'i': {
                int32_t i;
                assert_true(sd_bus_message_read_basic(m, type, &i) >= 0);
                text_add(buf, size, "%d", i);
                return;
        }
        case 'u': {
                uint32_t u;
                assert_true(sd_bus_message_read_basic(m, type, &u) >= 0);
                text_add(buf, size, "%04o", u);
                return;
        }
        case 't': {
                uint64_t t;
                assert_true(sd_bus_message_read_basic(m, type, &t) >= 0);
                text_add(buf, size, "%llu", (unsigned long long) t);
                return;
        }
        case 'a':
                if (streq(contents, "y")) {
                        const void *p;
                        size_t n;
                        assert_true(sd_bus_message_read_array(m, 'y', &p, &n) >= 0);
                        text_add(buf, size, "%.*s", (int) n, (const char *) p);
                        return;
                }
                assert_true(sd_bus_message_enter_container(m, 'a', contents) > 0);
                for (bool first = true; !sd_bus_message_at_end(m, false); first = false) {
                        if (!first)
                                text_add(buf, size, " ");
                        value_text(m, buf, size);
                }
                assert_true(sd_bus_message_exit_container(m) >= 0);
                return;
        case 'r':
                assert_true(sd_bus_message_enter_container(m, 'r', contents) > 0);
                if (streq(contents, "bas")) {
                        int allow;
                        assert_true(sd_bus_message_read(m, "b", &allow) >= 0);
                        text_add(buf, size, "%s", allow ? "+" : "-");
                        value_text(m, buf, size);
                } else
                        for (bool first = true; !sd_bus_message_at_end(m, false); first = false) {
                                if (!first)
                                        text_add(buf, size, ":");
                                value_text(m, buf, size);
                        }
                assert_true(sd_bus_message_exit_container(m) >= 0);
                return;
        default:
                fail_msg("type %c not expected in a task unit", type);
        }
}

/* Property `name` as text (value_text()), or NULL when the message does not set it. */
static const char *property_text(sd_bus_message *m, const char *name, char *buf, size_t size) {
        const char *contents;
        char type;

        buf[0] = 0;
        if (!seek_property(m, name))
                return NULL;
        assert_true(sd_bus_message_peek_type(m, &type, &contents) > 0);
        assert_true(sd_bus_message_enter_container(m, 'v', contents) > 0);
        value_text(m, buf, size);
        assert_true(sd_bus_message_exit_container(m) >= 0);
        return buf;
}

/* The launches the table below refers to. */
typedef enum Fixture {
        F_FULL,    /* a task with every key set, client args, stdin */
        F_COMMAND, /* a raw command with the defaults */
        F_ROOT,    /* a task running as root */
        F_NO_USER, /* a task whose definition left the user out */
        F_SETUID,  /* no_new_privileges: false */
        F_STRICT,  /* as F_COMMAND's user, with "sandbox": "strict" */
        _F_MAX,
} Fixture;

static char *full_env[] = {"APP_ENV=production", "EMPTY=", NULL};
static char *full_rw[] = {"/srv/app/var", "/srv/app/cache", NULL};
static char *full_argv[] = {"/usr/bin/convert", "a \"HOME\" 100%.png", "b.png", NULL};
static char *command_argv[] = {"/bin/sh", "-c", "echo \"hello world\"", NULL};
static char *true_argv[] = {"/bin/true", NULL};
static const char full_stdin[] = "O:4:\"Lamb\":0:{}\0binary";
static Credential full_credentials[] = {{"smtp", "/etc/asynctask/creds/smtp"}, {"db.pass", "/run/keys/db"}};

static TaskDef fixture_defs[_F_MAX] = {
        [F_FULL] = {.name = "resize",
                    .user = "www-data",
                    .uid = 33,
                    .group = "www-data",
                    .working_directory = "/srv/app",
                    .environment = full_env,
                    .n_environment = 2,
                    .credentials = full_credentials,
                    .n_credentials = 2,
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
                                .read_write_paths = full_rw,
                                .n_read_write_paths = 2}},
        [F_COMMAND] = {.name = "echo \"hello world\"",
                       .is_command = true,
                       .user = "nobody",
                       .uid = 65534,
                       .sandbox = {.private_tmp = true, .private_devices = true, .no_new_privileges = true}},
        [F_ROOT] = {.name = "as-root", .user = "root", .uid = 0, .sandbox = {.no_new_privileges = true}},
        [F_NO_USER] = {.name = "t", .sandbox = {.no_new_privileges = true}},
        [F_STRICT] = {.name = "strict",
                      .user = "nobody",
                      .uid = 65534,
                      .sandbox = {.strict = true,
                                  .private_tmp = true,
                                  .private_devices = true,
                                  .no_new_privileges = true}},
        [F_SETUID] = {.name = "setuid",
                      .user = "www-data",
                      .uid = 33,
                      .sandbox = {.no_new_privileges = false}},
};

static Launch fixture_launch(Fixture f) {
        Launch l = {.id = 42, .attempt = 2, .def = &fixture_defs[f], .argv = true_argv};

        if (f == F_FULL) {
                l.argv = full_argv;
                l.stdin_data = full_stdin;
                l.stdin_len = sizeof(full_stdin) - 1;
        } else if (f == F_COMMAND) {
                l.id = 7;
                l.attempt = 1;
                l.argv = command_argv;
        }
        return l;
}

#define ABSENT NULL

/* Each property of each fixture: its value as property_text() shows it, or ABSENT. */
static const struct {
        Fixture fixture;
        const char *property;
        const char *want;
} property_cases[] = {
        {F_FULL, "Description", "asynctask task 42 (resize)"},
        {F_COMMAND, "Description", "asynctask task 7 (echo \"hello world\")"},
        {F_FULL, "Type", "exec"},
        {F_FULL, "NotifyAccess", "all"},
        {F_COMMAND, "NotifyAccess", "all"},
        {F_FULL, "User", "www-data"},
        {F_NO_USER, "User", "nobody"},
        {F_FULL, "Group", "www-data"},
        {F_COMMAND, "Group", ABSENT}, /* the user's primary group, as systemd picks it */
        {F_FULL, "WorkingDirectory", "/srv/app"},
        {F_COMMAND, "WorkingDirectory", "/"},
        {F_FULL, "Environment",
         "APP_ENV=production EMPTY= ASYNCTASK_ID=42 ASYNCTASK_ATTEMPT=2 ASYNCTASK_TASK=resize"},
        /* A raw command is no task name: no ASYNCTASK_TASK. */
        {F_COMMAND, "Environment", "ASYNCTASK_ID=7 ASYNCTASK_ATTEMPT=1"},
        /* journalctl ASYNCTASK_ID=42 finds the task's output. */
        {F_FULL, "LogExtraFields", "ASYNCTASK_ID=42 ASYNCTASK_TASK=resize"},
        {F_COMMAND, "LogExtraFields", "ASYNCTASK_ID=7"},
        {F_FULL, "StandardOutput", "journal"},
        {F_FULL, "StandardError", "journal"},
        /* stdin never inline: StandardInputData= would be readable by every local user (systemctl
         * show, and the unit's file under /run/systemd/transient/). */
        {F_FULL, "StandardInputData", ABSENT},
        {F_FULL, "StandardInput", ABSENT},
        {F_FULL, "StandardInputFileDescriptor", "fd"}, /* what it reads: test_stdin_fd() */
        {F_COMMAND, "StandardInput", ABSENT},
        {F_COMMAND, "StandardInputData", ABSENT},
        {F_COMMAND, "StandardInputFileDescriptor", ABSENT},
        /* Secrets as credentials: PID 1 reads the files when the run starts; only the paths are in
         * the unit. */
        {F_FULL, "LoadCredential", "smtp:/etc/asynctask/creds/smtp db.pass:/run/keys/db"},
        {F_COMMAND, "LoadCredential", ABSENT},
        {F_FULL, "LoadCredentialEncrypted", ABSENT},
        {F_FULL, "SetCredential", ABSENT},
        {F_FULL, "Slice", "asynctask.slice"},
        {F_FULL, "RemainAfterExit", "yes"},
        {F_FULL, "CollectMode", ABSENT}, /* units stay until released */
        {F_FULL, "TimeoutStopUSec", "5000000"},
        {F_FULL, "CPUAccounting", "yes"},
        {F_FULL, "MemoryAccounting", "yes"},
        /* Limits, and unset limits left out rather than sent as zero. */
        {F_FULL, "RuntimeMaxUSec", "300000000"},
        {F_FULL, "MemoryMax", "536870912"},
        {F_FULL, "CPUQuotaPerSecUSec", "500000"},
        {F_FULL, "Nice", "10"},
        {F_COMMAND, "RuntimeMaxUSec", ABSENT},
        {F_COMMAND, "MemoryMax", ABSENT},
        {F_COMMAND, "CPUQuotaPerSecUSec", ABSENT},
        {F_COMMAND, "Nice", ABSENT},
        /* The sandbox a task may relax, relaxed where it said so, strict defaults where the config
         * left NULL. */
        {F_FULL, "ProtectSystem", "full"},
        {F_COMMAND, "ProtectSystem", "strict"},
        {F_FULL, "ProtectHome", "read-only"},
        {F_COMMAND, "ProtectHome", "true"},
        {F_FULL, "PrivateTmp", "yes"},
        {F_FULL, "PrivateDevices", "no"},
        /* A task that is not root, cannot gain privileges and has no capability: the device cgroup
         * rather than a private /dev; "strict" (and root, and setuid programs) keep the private /dev. */
        {F_COMMAND, "PrivateDevices", "no"},
        {F_COMMAND, "DevicePolicy", "closed"},
        {F_STRICT, "PrivateDevices", "yes"},
        {F_STRICT, "DevicePolicy", ABSENT},
        {F_ROOT, "PrivateDevices", "no"}, /* its definition turned it off */
        {F_FULL, "DevicePolicy", ABSENT}, /* private_devices: false */
        /* For such a task, what it could not do anyway is not fenced off again; for every other, it is. */
        {F_COMMAND, "ProtectKernelTunables", ABSENT},
        {F_COMMAND, "ProtectKernelModules", ABSENT},
        {F_COMMAND, "ProtectKernelLogs", ABSENT},
        {F_COMMAND, "ProtectControlGroups", ABSENT},
        {F_STRICT, "ProtectKernelTunables", "yes"},
        {F_STRICT, "ProtectKernelModules", "yes"},
        {F_STRICT, "ProtectKernelLogs", "yes"},
        {F_STRICT, "ProtectControlGroups", "yes"},
        {F_ROOT, "ProtectKernelModules", "yes"},
        {F_ROOT, "ProtectKernelTunables", "yes"},
        {F_COMMAND, "ProtectClock", "yes"}, /* the rest stays on */
        {F_COMMAND, "ProcSubset", "pid"},
        {F_COMMAND, "SystemCallFilter", "+@system-service"},
        {F_COMMAND, "CapabilityBoundingSet", "0"},
        {F_FULL, "PrivateNetwork", "yes"},
        {F_COMMAND, "PrivateNetwork", "no"},
        {F_FULL, "NoNewPrivileges", "yes"},
        {F_SETUID, "NoNewPrivileges", "no"},
        {F_FULL, "ReadWritePaths", "/srv/app/var /srv/app/cache"},
        {F_COMMAND, "ReadWritePaths", ABSENT},
        /* Always on. */
        {F_SETUID, "ProtectKernelTunables", "yes"},
        {F_SETUID, "ProtectKernelModules", "yes"},
        {F_SETUID, "ProtectKernelLogs", "yes"},
        {F_SETUID, "ProtectControlGroups", "yes"},
        {F_SETUID, "ProtectClock", "yes"},
        {F_SETUID, "ProtectHostname", "yes"},
        {F_SETUID, "RestrictRealtime", "yes"},
        {F_SETUID, "LockPersonality", "yes"},
        {F_SETUID, "RestrictNamespaces", "0"}, /* the mask of namespaces a task may create: none */
        {F_SETUID, "SystemCallArchitectures", "native"},
        {F_SETUID, "UMask", "0027"},
        /* The task sees only its own user's processes in /proc, and nothing else of /proc. */
        {F_SETUID, "ProtectProc", "invisible"},
        {F_SETUID, "ProcSubset", "pid"},
        {F_ROOT, "ProtectProc", "invisible"},
        {F_COMMAND, "ProcSubset", "pid"},
        {F_SETUID, "SystemCallFilter", "+@system-service"},
        {F_SETUID, "SystemCallErrorNumber", "1"}, /* EPERM */
        {F_SETUID, "RestrictAddressFamilies", "+AF_UNIX AF_INET AF_INET6"},
        {F_SETUID, "MemoryDenyWriteExecute", ABSENT}, /* JITs need it */
        /* No task creates setuid files, even one that may run setuid programs. */
        {F_SETUID, "RestrictSUIDSGID", "yes"},
        /* With no_new_privileges, a task not running as root can never gain a capability. */
        {F_FULL, "CapabilityBoundingSet", "0"},
        {F_FULL, "AmbientCapabilities", "0"},
        {F_NO_USER, "CapabilityBoundingSet", "0"}, /* nobody */
        {F_ROOT, "CapabilityBoundingSet", ABSENT},
        {F_ROOT, "AmbientCapabilities", ABSENT},
        {F_SETUID, "CapabilityBoundingSet", ABSENT},
        {F_SETUID, "AmbientCapabilities", ABSENT},
        /* Never an ExecStartEx= (252 writes it in a form its own parser rejects). */
        {F_FULL, "ExecStartEx", ABSENT},
};

static void test_properties(void **state) {
        sd_bus *bus = test_bus();
        sd_bus_message *messages[_F_MAX];

        for (Fixture f = 0; f < _F_MAX; f++) {
                Launch l = fixture_launch(f);
                messages[f] = build(bus, &l);
        }
        for (size_t i = 0; i < ELEMENTSOF(property_cases); i++) {
                sd_bus_message *m = messages[property_cases[i].fixture];
                const char *want = property_cases[i].want;
                char buf[512];
                const char *got = property_text(m, property_cases[i].property, buf, sizeof(buf));

                if (!streq_ptr(got, want))
                        fail_msg("fixture %d, %s: got %s, want %s", property_cases[i].fixture,
                                 property_cases[i].property, got ?: "(absent)", want ?: "(absent)");
                /* Every property appears once at most. */
                if (want && count_property(m, property_cases[i].property) != 1)
                        fail_msg("fixture %d, %s set more than once", property_cases[i].fixture,
                                 property_cases[i].property);
        }
        for (Fixture f = 0; f < _F_MAX; f++)
                sd_bus_message_unref(messages[f]);
        sd_bus_flush_close_unref(bus);
}

/* The call itself: unit name, mode, and no auxiliary units. */
static void test_start_call(void **state) {
        sd_bus *bus = test_bus();
        Launch l = fixture_launch(F_FULL);
        sd_bus_message *m = build(bus, &l);
        const char *unit, *mode;

        assert_string_equal(sd_bus_message_get_member(m), "StartTransientUnit");
        assert_string_equal(sd_bus_message_get_destination(m), "org.freedesktop.systemd1");
        assert_true(sd_bus_message_rewind(m, true) >= 0);
        assert_true(sd_bus_message_read(m, "ss", &unit, &mode) >= 0);
        assert_string_equal(unit, "asynctask-42.service");
        assert_string_equal(mode, "fail");
        assert_true(sd_bus_message_skip(m, "a(sv)") >= 0);
        assert_true(sd_bus_message_enter_container(m, 'a', "(sa(sv))") > 0);
        assert_true(sd_bus_message_at_end(m, false) > 0);
        assert_true(sd_bus_message_exit_container(m) >= 0);
        assert_true(sd_bus_message_at_end(m, true) > 0);
        sd_bus_message_unref(m);
        sd_bus_flush_close_unref(bus);
}

/* The descriptor of property StandardInputFileDescriptor (owned by m). */
static int stdin_fd_of(sd_bus_message *m) {
        int fd = -1;

        assert_true(seek_property(m, "StandardInputFileDescriptor"));
        assert_true(sd_bus_message_read(m, "v", "h", &fd) >= 0);
        assert_true(fd >= 0);
        return fd;
}

static void assert_fd_holds(int fd, const void *data, size_t size) {
        char buf[256];

        assert_true(size < sizeof(buf));
        assert_int_equal(pread(fd, buf, sizeof(buf), 0), (ssize_t) size);
        assert_memory_equal(buf, data, size);
}

/* stdin as a descriptor the message carries, sealed, embedded NUL included; required when the
 * launch has stdin, never an inline copy. */
static void test_stdin_fd(void **state) {
        sd_bus *bus = test_bus();
        Launch l = fixture_launch(F_FULL);
        sd_bus_message *m = build(bus, &l);
        int fd = stdin_fd_of(m);

        assert_fd_holds(fd, full_stdin, sizeof(full_stdin) - 1);
        assert_int_equal(fcntl(fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
        assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
        sd_bus_message_unref(m);

        /* No descriptor for a launch with stdin: refused, not sent inline. */
        sd_bus_message *refused = NULL;
        assert_int_equal(unit_properties_new_start(bus, &l, -1, &refused), -EINVAL);
        assert_null(refused);
        /* An empty stdin is still a stdin. */
        l.stdin_data = "";
        l.stdin_len = 0;
        m = build(bus, &l);
        assert_fd_holds(stdin_fd_of(m), "", 0);
        sd_bus_message_unref(m);
        sd_bus_flush_close_unref(bus);
}

/* The copy sent again: the same call, but for stdin a description of its own. */
static void test_copy_start(void **state) {
        sd_bus *bus = test_bus();
        static const Fixture fixtures[] = {F_FULL, F_COMMAND};

        for (size_t i = 0; i < ELEMENTSOF(fixtures); i++) {
                Launch l = fixture_launch(fixtures[i]);
                _cleanup_close_ int memfd = -1, fresh = -1;
                sd_bus_message *m, *copy = NULL;
                char buf[512], copied[512];

                m = build(bus, &l);
                if (l.stdin_data) {
                        assert_true((memfd = stdin_memfd_new(l.stdin_data, l.stdin_len)) >= 0);
                        assert_true((fresh = stdin_memfd_reopen(memfd)) >= 0);
                }
                assert_int_equal(unit_properties_copy_start(bus, m, fresh, &copy), 0);
                assert_true(sd_bus_message_seal(copy, 2, 0) >= 0);
                assert_string_equal(sd_bus_message_get_member(copy), "StartTransientUnit");
                for (size_t k = 0; k < ELEMENTSOF(property_cases); k++) {
                        const char *name = property_cases[k].property;
                        const char *a = property_text(m, name, buf, sizeof(buf));
                        const char *b = property_text(copy, name, copied, sizeof(copied));
                        if (!streq_ptr(a, b))
                                fail_msg("%s: %s in the copy, %s in the original", name, b ?: "(absent)",
                                         a ?: "(absent)");
                }
                for (size_t k = 0; k < ELEMENTSOF(property_cases); k++)
                        assert_int_equal(count_property(copy, property_cases[k].property),
                                         count_property(m, property_cases[k].property));
                if (l.stdin_data) {
                        char c;
                        int original = stdin_fd_of(m), again = stdin_fd_of(copy);

                        assert_fd_holds(again, full_stdin, sizeof(full_stdin) - 1);
                        /* A reader of the first description does not move the second one's offset. */
                        assert_int_equal(read(original, &c, 1), 1);
                        assert_int_equal(read(again, &c, 1), 1);
                        assert_int_equal(c, full_stdin[0]);
                }
                /* Unit name, mode and the auxiliary units as they were. */
                const char *unit, *mode;
                assert_true(sd_bus_message_rewind(copy, true) >= 0);
                assert_true(sd_bus_message_read(copy, "ss", &unit, &mode) >= 0);
                assert_string_equal(mode, "fail");
                assert_true(sd_bus_message_skip(copy, "a(sv)a(sa(sv))") >= 0);
                assert_true(sd_bus_message_at_end(copy, true) > 0);
                sd_bus_message_unref(copy);
                sd_bus_message_unref(m);
        }
        sd_bus_flush_close_unref(bus);
}

static void test_description(void **state) {
        static const struct {
                const char *name;
                const char *want;
        } cases[] = {
                {"resize", "asynctask task 17 (resize)"},
                {"", "asynctask task 17 ()"},
                /* A raw command may contain control characters. */
                {"echo a\nrm -rf x\t;\x7f", "asynctask task 17 (echo a rm -rf x ; )"},
        };
        char name[256];
        _cleanup_free_ char *d = NULL;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                d = unit_properties_description(17, cases[i].name);
                assert_string_equal(d, cases[i].want);
                free(TAKE_PTR(d));
        }

        /* 200 bytes fit; 201 are cut, with a mark. */
        memset(name, 'a', 200);
        name[200] = 0;
        d = unit_properties_description(1, name);
        assert_int_equal(strlen(d), strlen("asynctask task 1 ()") + 200);
        free(TAKE_PTR(d));
        name[200] = 'b';
        name[201] = 0;
        d = unit_properties_description(1, name);
        assert_int_equal(strlen(d), strlen("asynctask task 1 (...)") + 200);
        free(TAKE_PTR(d));

        /* The cut never splits a UTF-8 character: D-Bus would refuse the string. */
        memset(name, 'a', 199);
        strcpy(name + 199, "\xc3\xa9xyz"); /* é straddles byte 200 */
        d = unit_properties_description(2, name);
        assert_int_equal(strlen(d), strlen("asynctask task 2 (...)") + 199);
        assert_non_null(strstr(d, "a...)"));
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

/* ExecStart= and SyslogIdentifier= for a given argv and helper path. */
static void test_exec_start(void **state) {
        static const struct {
                const char *helper_path;
                char *argv[6];
                const char *path;    /* ExecStart='s program */
                const char *args[7]; /* its argv */
                const char *ident;   /* SyslogIdentifier=, or ABSENT */
        } cases[] = {
                /* Nothing in it that systemd would change: as it is, the journal identity left to
                 * systemd (the program's name). */
                {NULL,
                 {"/usr/bin/convert", "a \"HOME\" 100%.png", "b.png"},
                 "/usr/bin/convert",
                 {"/usr/bin/convert", "a \"HOME\" 100%.png", "b.png"},
                 ABSENT},
                {NULL,
                 {"/usr/bin/php", "run.php", "x:HOME"},
                 "/usr/bin/php",
                 {"/usr/bin/php", "run.php", "x:HOME"},
                 ABSENT},
                /* Through the helper: every element in hex after the helper's path, the journal
                 * identity the program's name. */
                {NULL,
                 {"/usr/bin/php", "run.php", "x;$HOME", "", "\xc3\xa9\\"},
                 LIBEXECDIR "/asynctask/asynctask-exec",
                 {LIBEXECDIR "/asynctask/asynctask-exec", "2f7573722f62696e2f706870", "72756e2e706870",
                  "783b24484f4d45", "", "c3a95c"},
                 "php"},
                /* A program whose own path needs the helper; its name in the journal without those
                 * bytes; and another helper path (tests, or a different LIBEXECDIR). */
                {"/opt/at/asynctask-exec",
                 {"/opt/bin/a$b;c%d"},
                 "/opt/at/asynctask-exec",
                 {"/opt/at/asynctask-exec", "2f6f70742f62696e2f6124623b632564"},
                 "a_b_c_d"},
        };
        sd_bus *bus = test_bus();
        const char *saved = unit_properties_exec_helper;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                TaskDef def = {.name = "report"};
                Launch l = {.id = 9, .attempt = 1, .def = &def, .argv = (char **) cases[i].argv};
                _cleanup_(strv_freep) char **args = NULL;
                sd_bus_message *m;
                char buf[128];
                size_t n = 0;

                if (cases[i].helper_path)
                        unit_properties_exec_helper = cases[i].helper_path;
                m = build(bus, &l);
                unit_properties_exec_helper = saved;
                assert_string_equal(exec_start(m, &args), cases[i].path);
                for (; cases[i].args[n]; n++)
                        assert_string_equal(args[n], cases[i].args[n]);
                assert_null(args[n]);
                /* What the helper decodes is argv, byte for byte. */
                if (!streq(cases[i].path, cases[i].argv[0]))
                        for (size_t k = 0; cases[i].argv[k]; k++) {
                                const char *error = NULL;
                                _cleanup_free_ char *d = exec_hex_decode(args[k + 1], &error);
                                assert_non_null(d);
                                assert_string_equal(d, cases[i].argv[k]);
                        }
                assert_true(
                        streq_ptr(property_text(m, "SyslogIdentifier", buf, sizeof(buf)), cases[i].ident));
                sd_bus_message_unref(m);
        }
        sd_bus_flush_close_unref(bus);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_properties),  cmocka_unit_test(test_start_call),
                cmocka_unit_test(test_stdin_fd),    cmocka_unit_test(test_copy_start),
                cmocka_unit_test(test_description), cmocka_unit_test(test_exec_helper_decision),
                cmocka_unit_test(test_exec_start),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
