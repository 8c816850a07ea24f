/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "launcher/bus-call.h"
#include "launcher/exec-helper.h"
#include "launcher/unit-name.h"
#include "launcher/unit-properties.h"
#include "shared/exec-hex.h"
#include "shared/limits.h"
#include "shared/util.h"

#define STDIN_FD_PROPERTY "StandardInputFileDescriptor"

const char *unit_properties_exec_helper = EXEC_HELPER_COMPILED;

/* Opens the "(sv)" of property name with its variant of type sig, ready for the value. */
static int property_open(sd_bus_message *m, const char *name, const char *sig) {
        int r;

        r = sd_bus_message_open_container(m, 'r', "sv");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", name);
        if (r < 0)
                return r;
        return sd_bus_message_open_container(m, 'v', sig);
}

/* Closes what property_open() opened. */
static int property_close(sd_bus_message *m) {
        int r;

        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

/* An "as" property. */
static int append_strv(sd_bus_message *m, const char *name, char *const *list) {
        int r;

        r = property_open(m, name, "as");
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(m, (char **) list);
        if (r < 0)
                return r;
        return property_close(m);
}

/* A "(bas)" property: an allow list (SystemCallFilter=, RestrictAddressFamilies=). */
static int append_allow_list(sd_bus_message *m, const char *name, char *const *list) {
        int r;

        r = property_open(m, name, "(bas)");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'r', "bas");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "b", 1);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(m, (char **) list);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return property_close(m);
}

char *unit_properties_description(uint64_t id, const char *name) {
        char shown[201];
        size_t n = strnlen(name, sizeof(shown) - 1);
        char *d;

        if (name[n] != 0)
                while (n > 0 && ((unsigned char) name[n] & 0xc0) == 0x80)
                        n--;
        memcpy(shown, name, n);
        shown[n] = 0;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) shown[i] < 0x20 || shown[i] == 0x7f)
                        shown[i] = ' ';
        if (asprintf(&d, "asynctask task %" PRIu64 " (%s%s)", id, shown, name[n] ? "..." : "") < 0)
                return NULL;
        return d;
}

/* systemd names a unit's output in the journal after its ExecStart= program. Through the helper that
 * would be "asynctask-exec": name it after the task's program instead (its file name, with any byte
 * that would not round-trip, and "%", as "_"). */
static int append_syslog_identifier(sd_bus_message *m, const char *program) {
        const char *base = strrchr(program, '/');
        _cleanup_free_ char *ident = NULL;

        base = base ? base + 1 : program;
        if (!base[0])
                return 0;
        ident = strdup(base);
        if (!ident)
                return -ENOMEM;
        for (char *p = ident; *p; p++)
                if (!exec_byte_round_trips((unsigned char) *p) || *p == '%')
                        *p = '_';
        return sd_bus_message_append(m, "(sv)", "SyslogIdentifier", "s", ident);
}

/* The argv ExecStart= gets: argv itself, or the helper followed by every element of argv in hex. */
static char **exec_start_argv(char *const *argv, bool helper) {
        size_t n = 0, k = 0;
        char **out;

        while (argv[n])
                n++;
        out = calloc(n + 2, sizeof(char *));
        if (!out)
                return NULL;
        if (helper && !(out[k++] = strdup(unit_properties_exec_helper)))
                goto oom;
        for (size_t i = 0; i < n; i++)
                if (!(out[k++] = helper ? exec_hex_encode(argv[i]) : strdup(argv[i])))
                        goto oom;
        return out;
oom:
        strv_free(out);
        return NULL;
}

/* ExecStart=: the program and its arguments as they are, unless one holds a byte systemd would not
 * keep (exec_argv_needs_helper()). systemd expands $VAR in ExecStart= at exec time ("$$" is a
 * literal "$"), and 252 also writes a transient unit's ExecStart= into its unit file and reads it
 * back on daemon-reload or daemon-reexec with "$" and ";" turned into "\$" and "\;": a unit whose
 * start job waits at that moment would run with altered arguments, whatever the escaping. (ExecStartEx=
 * with "no-env-expand" is no way out either: 252 writes it in a form its own parser rejects.) So such
 * an argv runs through asynctask-exec, every element in hex, which every systemd keeps; the helper
 * executes the program with the original bytes. Otherwise the arguments stay readable in systemctl
 * status, and contain nothing systemd would expand. Through the helper, also SyslogIdentifier=. */
static int append_exec_start(sd_bus_message *m, char *const *argv) {
        bool helper = exec_argv_needs_helper(argv);
        _cleanup_(strv_freep) char **args = exec_start_argv(argv, helper);
        int r;

        if (!args)
                return -ENOMEM;
        r = property_open(m, "ExecStart", "a(sasb)");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "(sasb)");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'r', "sasb");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", args[0]);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(m, args);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "b", 0); /* a failure is the task's result, not ignored */
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        r = property_close(m);
        if (r < 0)
                return r;
        return helper ? append_syslog_identifier(m, argv[0]) : 0;
}

/* Who runs the task, and where. */
static int append_identity(sd_bus_message *m, const Launch *l) {
        const TaskDef *def = l->def;
        _cleanup_free_ char *description = unit_properties_description(l->id, def->name ?: "");
        int r;

        if (!description)
                return -ENOMEM;
        r = sd_bus_message_append(m, "(sv)(sv)", "Description", "s", description, "Type", "s", "exec");
        if (r < 0)
                return r;
        /* The task reports progress with STATUS= (systemd-notify), from any of its processes. */
        r = sd_bus_message_append(m, "(sv)", "NotifyAccess", "s", "all");
        if (r < 0)
                return r;
        r = append_exec_start(m, l->argv);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "(sv)(sv)", "User", "s", def->user ?: "nobody", "WorkingDirectory", "s",
                                  def->working_directory ?: "/");
        if (r < 0)
                return r;
        return def->group ? sd_bus_message_append(m, "(sv)", "Group", "s", def->group) : 0;
}

/* Environment=: the task's environment, then ASYNCTASK_ID, ASYNCTASK_ATTEMPT and (a task, not a raw
 * command) ASYNCTASK_TASK. */
static int append_environment(sd_bus_message *m, const Launch *l) {
        const TaskDef *def = l->def;
        size_t n = def->environment ? def->n_environment : 0, k = 0;
        _cleanup_free_ char *id = NULL, *attempt = NULL, *task = NULL;
        _cleanup_free_ char **env = calloc(n + 4, sizeof(char *));

        if (!env)
                return -ENOMEM;
        if (asprintf(&id, "ASYNCTASK_ID=%" PRIu64, l->id) < 0 ||
            asprintf(&attempt, "ASYNCTASK_ATTEMPT=%u", l->attempt) < 0)
                return -ENOMEM;
        if (!def->is_command && asprintf(&task, "ASYNCTASK_TASK=%s", def->name) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < n && def->environment[i]; i++)
                env[k++] = def->environment[i];
        env[k++] = id;
        env[k++] = attempt;
        env[k] = task;
        return append_strv(m, "Environment", env);
}

/* LogExtraFields=: journalctl ASYNCTASK_ID=<id> (and ASYNCTASK_TASK=<name>) finds the run's output. */
static int append_log_extra_fields(sd_bus_message *m, const Launch *l) {
        _cleanup_free_ char *id = NULL, *task = NULL;
        int r;

        if (asprintf(&id, "ASYNCTASK_ID=%" PRIu64, l->id) < 0)
                return -ENOMEM;
        if (!l->def->is_command && asprintf(&task, "ASYNCTASK_TASK=%s", l->def->name) < 0)
                return -ENOMEM;
        r = property_open(m, "LogExtraFields", "aay");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "ay");
        if (r < 0)
                return r;
        r = sd_bus_message_append_array(m, 'y', id, strlen(id));
        if (r < 0)
                return r;
        if (task) {
                r = sd_bus_message_append_array(m, 'y', task, strlen(task));
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return property_close(m);
}

/* Output and error to the journal; standard input, when the launch has one, as a descriptor. PID 1
 * then sets up the task's stdin from it (systemctl show still says StandardInput=null), keeps it
 * across daemon-reload and daemon-reexec, and shows nothing of what it holds. */
static int append_stdio(sd_bus_message *m, int stdin_fd) {
        int r;

        r = sd_bus_message_append(m, "(sv)(sv)", "StandardOutput", "s", "journal", "StandardError", "s",
                                  "journal");
        if (r < 0 || stdin_fd < 0)
                return r;
        return sd_bus_message_append(m, "(sv)", STDIN_FD_PROPERTY, "h", stdin_fd);
}

/* LoadCredential=: PID 1 reads each file (as root) when the run starts and gives it to the task as
 * $CREDENTIALS_DIRECTORY/<name>, readable by the task's user only; the unit holds only the paths. */
static int append_credentials(sd_bus_message *m, const TaskDef *def) {
        int r;

        if (def->n_credentials == 0)
                return 0;
        r = property_open(m, "LoadCredential", "a(ss)");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "(ss)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < def->n_credentials; i++) {
                r = sd_bus_message_append(m, "(ss)", def->credentials[i].name, def->credentials[i].path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return property_close(m);
}

/* Where the unit lives and how long it stays: RemainAfterExit= keeps the result (and the unit) past
 * the process, and past both daemons, until the front has recorded it; a cancel sends TERM, then
 * KILL after the same grace period as the direct executor. */
static int append_lifecycle(sd_bus_message *m) {
        return sd_bus_message_append(m, "(sv)(sv)(sv)(sv)(sv)", "Slice", "s", UNIT_PROPERTIES_SLICE,
                                     "RemainAfterExit", "b", 1, "TimeoutStopUSec", "t",
                                     (uint64_t) KILL_GRACE_USEC, "CPUAccounting", "b", 1, "MemoryAccounting",
                                     "b", 1);
}

/* The task's limits, each only when set. */
static int append_limits(sd_bus_message *m, const TaskDef *def) {
        int r;

        if (def->timeout_sec > 0) {
                r = sd_bus_message_append(m, "(sv)", "RuntimeMaxUSec", "t",
                                          (uint64_t) def->timeout_sec * USEC_PER_SEC);
                if (r < 0)
                        return r;
        }
        if (def->memory_max > 0) {
                r = sd_bus_message_append(m, "(sv)", "MemoryMax", "t", def->memory_max);
                if (r < 0)
                        return r;
        }
        /* cpu_quota is a percentage of one CPU: 50% = 500 ms of CPU time per second. */
        if (def->cpu_quota > 0) {
                r = sd_bus_message_append(m, "(sv)", "CPUQuotaPerSecUSec", "t",
                                          (uint64_t) def->cpu_quota * (USEC_PER_SEC / 100));
                if (r < 0)
                        return r;
        }
        return def->has_nice ? sd_bus_message_append(m, "(sv)", "Nice", "i", (int32_t) def->nice) : 0;
}

/* The part of the sandbox a task's "sandbox" may relax. */
static int append_sandbox_relaxable(sd_bus_message *m, const Sandbox *s) {
        int r;

        r = sd_bus_message_append(
                m, "(sv)(sv)(sv)(sv)(sv)(sv)", "ProtectSystem", "s", s->protect_system ?: "strict",
                "ProtectHome", "s", s->protect_home ?: "true", "PrivateTmp", "b", (int) s->private_tmp,
                "PrivateDevices", "b", (int) s->private_devices, "PrivateNetwork", "b",
                (int) s->private_network, "NoNewPrivileges", "b", (int) s->no_new_privileges);
        if (r < 0)
                return r;
        if (!s->read_write_paths || !s->read_write_paths[0])
                return 0;
        return append_strv(m, "ReadWritePaths", s->read_write_paths);
}

/* Always on: what a task started by a queue has no business doing. */
static int append_sandbox_fixed(sd_bus_message *m) {
        static const char *const protections[] = {
                "ProtectKernelTunables",
                "ProtectKernelModules",
                "ProtectKernelLogs",
                "ProtectControlGroups",
                "ProtectClock",
                "ProtectHostname",
                "RestrictRealtime",
                "LockPersonality",
                /* No task creates setuid or setgid files (a task running as X could otherwise leave a
                 * setuid-X program for any local user), whether or not it may run such programs. */
                "RestrictSUIDSGID",
        };
        static char *const syscalls[] = {"@system-service", NULL};
        static char *const families[] = {"AF_UNIX", "AF_INET", "AF_INET6", NULL};
        int r;

        for (size_t i = 0; i < ELEMENTSOF(protections); i++) {
                r = sd_bus_message_append(m, "(sv)", protections[i], "b", 1);
                if (r < 0)
                        return r;
        }
        /* The mask of namespaces a task may create: none. */
        r = sd_bus_message_append(m, "(sv)(sv)(sv)", "RestrictNamespaces", "t", (uint64_t) 0,
                                  "SystemCallArchitectures", "as", 1, "native", "UMask", "u",
                                  (uint32_t) 0027);
        if (r < 0)
                return r;
        /* In /proc the task sees the processes of its own user only (not the command lines of the web
         * application's or the daemons' processes), and nothing but processes (no /proc/sys, no
         * /proc/kcore...). Tasks of the same user still see each other: systemd 252 gives a unit no
         * PID namespace of its own. */
        r = sd_bus_message_append(m, "(sv)(sv)", "ProtectProc", "s", "invisible", "ProcSubset", "s", "pid");
        if (r < 0)
                return r;
        /* The system calls of an ordinary service (systemd.exec(5), "@system-service"); anything else
         * (mount, swap, reboot, module, raw I/O, debugging...) fails with EPERM rather than killing
         * the task. Sockets: local, IPv4 and IPv6 only (no netlink, packet, bluetooth...). */
        r = append_allow_list(m, "SystemCallFilter", syscalls);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "(sv)", "SystemCallErrorNumber", "i", (int32_t) EPERM);
        if (r < 0)
                return r;
        return append_allow_list(m, "RestrictAddressFamilies", families);
}

/* The sandbox. root: the task runs as uid 0 (its "user" resolved at load). */
static int append_sandbox(sd_bus_message *m, const Sandbox *s, bool root) {
        int r;

        r = append_sandbox_relaxable(m, s);
        if (r < 0)
                return r;
        r = append_sandbox_fixed(m);
        if (r < 0)
                return r;
        /* With no_new_privileges (the default) a task cannot gain privileges through setuid or file
         * capabilities, so a task not running as root never has a capability and none may be in
         * its bounding set. no_new_privileges: false is for tasks that run setuid programs: those
         * keep the bounding set. */
        if (!s->no_new_privileges || root)
                return 0;
        return sd_bus_message_append(m, "(sv)(sv)", "CapabilityBoundingSet", "t", (uint64_t) 0,
                                     "AmbientCapabilities", "t", (uint64_t) 0);
}

int unit_properties_append(sd_bus_message *m, const Launch *l, int stdin_fd) {
        const TaskDef *def = l->def;
        int r;

        /* Never inline: StandardInputData= is readable by every local user. */
        if (l->stdin_data && stdin_fd < 0)
                return -EINVAL;
        r = append_identity(m, l);
        if (r < 0)
                return r;
        r = append_environment(m, l);
        if (r < 0)
                return r;
        r = append_log_extra_fields(m, l);
        if (r < 0)
                return r;
        r = append_stdio(m, stdin_fd);
        if (r < 0)
                return r;
        r = append_credentials(m, def);
        if (r < 0)
                return r;
        r = append_lifecycle(m);
        if (r < 0)
                return r;
        r = append_limits(m, def);
        if (r < 0)
                return r;
        /* No user: "nobody" (append_identity()). */
        return append_sandbox(m, &def->sandbox, def->user && def->uid == 0);
}

int unit_properties_new_start(sd_bus *bus, const Launch *l, int stdin_fd, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        char unit[UNIT_NAME_SIZE];
        int r;

        unit_name_from_id(l->id, unit);
        r = sd_bus_message_new_method_call(bus, &m, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           "StartTransientUnit");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "ss", unit, "fail");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r < 0)
                return r;
        r = unit_properties_append(m, l, stdin_fd);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "a(sa(sv))", 0); /* no auxiliary units */
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

/* Copies property name, its variant at the reader of start, into m. */
static int copy_property(sd_bus_message *m, sd_bus_message *start, const char *name) {
        int r;

        r = sd_bus_message_open_container(m, 'r', "sv");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", name);
        if (r < 0)
                return r;
        r = sd_bus_message_copy(m, start, false); /* the variant, whole */
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

/* The standard input's property, its variant at the reader of start, with stdin_fd instead. */
static int replace_stdin_fd(sd_bus_message *m, sd_bus_message *start, int stdin_fd) {
        int r;

        r = sd_bus_message_skip(start, "v");
        if (r < 0)
                return r;
        return sd_bus_message_append(m, "(sv)", STDIN_FD_PROPERTY, "h", stdin_fd);
}

/* Copies the "a(sv)" at the reader of start into m, the standard input's descriptor replaced. */
static int copy_properties(sd_bus_message *m, sd_bus_message *start, int stdin_fd) {
        const char *name;
        int r;

        r = sd_bus_message_enter_container(start, 'a', "(sv)");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(start, 'r', "sv")) > 0) {
                r = sd_bus_message_read(start, "s", &name);
                if (r < 0)
                        return r;
                r = streq(name, STDIN_FD_PROPERTY) ? replace_stdin_fd(m, start, stdin_fd)
                                                   : copy_property(m, start, name);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(start);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(start);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

int unit_properties_copy_start(sd_bus *bus, sd_bus_message *start, int stdin_fd, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const char *unit, *mode;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           "StartTransientUnit");
        if (r < 0)
                return r;
        r = sd_bus_message_rewind(start, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(start, "ss", &unit, &mode);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "ss", unit, mode);
        if (r < 0)
                return r;
        r = copy_properties(m, start, stdin_fd);
        if (r < 0)
                return r;
        r = sd_bus_message_copy(m, start, true); /* the auxiliary units */
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}
