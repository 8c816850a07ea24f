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

/* ---- where the values come from ------------------------------------------------------------------ */

/* One run's properties are the table below applied to this: the launch, and the values computed
 * from it once (texts, lists) that the table's entries only point into. */
typedef struct PropertySource {
        const Launch *launch;
        const TaskDef *def;
        const Sandbox *sandbox;
        bool root; /* the task runs as uid 0 (its "user" resolved at load; no user is "nobody") */
        /* Not root, NoNewPrivileges= and so an empty capability bounding set, and the default profile:
         * what such a task cannot do anyway is not fenced off again (docs/systemd.md). */
        bool lean;
        int stdin_fd;
        char *description;
        char **exec_start;       /* ExecStart='s argv: argv itself, or the helper and argv in hex */
        char *syslog_identifier; /* through the helper only */
        char **environment;      /* the task's, then ASYNCTASK_*: borrowed elements but the last ones */
        char *env_id, *env_attempt, *env_task;
        char *log_fields[3]; /* LogExtraFields=: ASYNCTASK_ID=, ASYNCTASK_TASK= (a task), NULL */
} PropertySource;

/* A property's value, of the variant type its table entry names. */
typedef union PropertyValue {
        const char *s;      /* "s" */
        int b;              /* "b" */
        uint64_t t;         /* "t" */
        int32_t i;          /* "i" */
        uint32_t u;         /* "u" */
        int h;              /* "h": a descriptor, which the message copies */
        char *const *strv;  /* "as"; "(bas)" an allow list; "aay" strings as bytes; "a(sasb)" an
                             * ExecStart= argv (its first element the program) */
        const TaskDef *def; /* "a(ss)": the task's credentials */
} PropertyValue;

/* One property: its name, its variant's D-Bus type, and where its value comes from: value(), which
 * returns false to leave the property out, or else the constant. */
typedef struct UnitProperty {
        const char *name;
        const char *type;
        bool (*value)(const PropertySource *src, PropertyValue *ret);
        PropertyValue constant;
} UnitProperty;

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

/* systemd names a unit's output in the journal after its ExecStart= program. Through the helper that
 * would be "asynctask-exec": name it after the task's program instead (its file name, with any byte
 * that would not round-trip, and "%", as "_"). NULL when the program has no file name. */
static int syslog_identifier(const char *program, char **ret) {
        const char *base = strrchr(program, '/');
        char *ident;

        base = base ? base + 1 : program;
        if (!base[0]) {
                *ret = NULL;
                return 0;
        }
        ident = strdup(base);
        if (!ident)
                return -ENOMEM;
        for (char *p = ident; *p; p++)
                if (!exec_byte_round_trips((unsigned char) *p) || *p == '%')
                        *p = '_';
        *ret = ident;
        return 0;
}

static void property_source_done(PropertySource *src) {
        free(src->description);
        strv_free(src->exec_start);
        free(src->syslog_identifier);
        free(src->environment); /* its elements are borrowed or freed below */
        free(src->env_id);
        free(src->env_attempt);
        free(src->env_task);
        free(src->log_fields[0]);
        free(src->log_fields[1]);
}

/* ExecStart=: the program and its arguments as they are, unless one holds a byte systemd would not
 * keep (exec_argv_needs_helper()). systemd expands $VAR in ExecStart= at exec time ("$$" is a
 * literal "$"), and 252 also writes a transient unit's ExecStart= into its unit file and reads it
 * back on daemon-reload or daemon-reexec with "$" and ";" turned into "\$" and "\;": a unit whose
 * start job waits at that moment would run with altered arguments, whatever the escaping. (ExecStartEx=
 * with "no-env-expand" is no way out either: 252 writes it in a form its own parser rejects.) So such
 * an argv runs through asynctask-exec, every element in hex, which every systemd keeps; the helper
 * executes the program with the original bytes. Otherwise the arguments stay readable in systemctl
 * status, and contain nothing systemd would expand. Through the helper, also SyslogIdentifier=.
 *
 * Environment=: the task's environment, then ASYNCTASK_ID, ASYNCTASK_ATTEMPT and (a task, not a raw
 * command) ASYNCTASK_TASK. LogExtraFields=: journalctl ASYNCTASK_ID=<id> (and ASYNCTASK_TASK=<name>)
 * finds the run's output. */
static int property_source_init(PropertySource *src, const Launch *l, int stdin_fd) {
        const TaskDef *def = l->def;
        size_t n_env = def->environment ? def->n_environment : 0, k = 0;
        bool helper = exec_argv_needs_helper(l->argv);
        int r;

        *src = (PropertySource){
                .launch = l,
                .def = def,
                .sandbox = &def->sandbox,
                .root = def->user && def->uid == 0,
                .lean = !def->sandbox.strict && def->sandbox.no_new_privileges &&
                        !(def->user && def->uid == 0),
                .stdin_fd = stdin_fd,
                .description = unit_properties_description(l->id, def->name ?: ""),
                .exec_start = exec_start_argv(l->argv, helper),
                .environment = calloc(n_env + 4, sizeof(char *)),
        };
        if (!src->description || !src->exec_start || !src->environment)
                return -ENOMEM;
        if (helper) {
                r = syslog_identifier(l->argv[0], &src->syslog_identifier);
                if (r < 0)
                        return r;
        }
        if (asprintf(&src->env_id, "ASYNCTASK_ID=%" PRIu64, l->id) < 0 ||
            asprintf(&src->env_attempt, "ASYNCTASK_ATTEMPT=%u", l->attempt) < 0)
                return -ENOMEM;
        if (!def->is_command && asprintf(&src->env_task, "ASYNCTASK_TASK=%s", def->name) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < n_env && def->environment[i]; i++)
                src->environment[k++] = def->environment[i];
        src->environment[k++] = src->env_id;
        src->environment[k++] = src->env_attempt;
        src->environment[k] = src->env_task;
        /* The journal's fields are the environment's last ones, apart from the attempt. */
        if (!(src->log_fields[0] = strdup(src->env_id)))
                return -ENOMEM;
        if (src->env_task && !(src->log_fields[1] = strdup(src->env_task)))
                return -ENOMEM;
        return 0;
}

/* ---- the values ---------------------------------------------------------------------------------- */

static bool value_description(const PropertySource *src, PropertyValue *ret) {
        ret->s = src->description;
        return true;
}

static bool value_exec_start(const PropertySource *src, PropertyValue *ret) {
        ret->strv = src->exec_start;
        return true;
}

static bool value_syslog_identifier(const PropertySource *src, PropertyValue *ret) {
        ret->s = src->syslog_identifier;
        return ret->s;
}

static bool value_user(const PropertySource *src, PropertyValue *ret) {
        ret->s = src->def->user ?: "nobody";
        return true;
}

static bool value_working_directory(const PropertySource *src, PropertyValue *ret) {
        ret->s = src->def->working_directory ?: "/";
        return true;
}

/* No group: the user's primary group, as systemd picks it. */
static bool value_group(const PropertySource *src, PropertyValue *ret) {
        ret->s = src->def->group;
        return ret->s;
}

static bool value_environment(const PropertySource *src, PropertyValue *ret) {
        ret->strv = src->environment;
        return true;
}

static bool value_log_extra_fields(const PropertySource *src, PropertyValue *ret) {
        ret->strv = src->log_fields;
        return true;
}

/* PID 1 sets up the task's stdin from the descriptor (systemctl show still says StandardInput=null),
 * keeps it across daemon-reload and daemon-reexec, and shows nothing of what it holds. */
static bool value_stdin_fd(const PropertySource *src, PropertyValue *ret) {
        ret->h = src->stdin_fd;
        return ret->h >= 0;
}

/* LoadCredential=: PID 1 reads each file (as root) when the run starts and gives it to the task as
 * $CREDENTIALS_DIRECTORY/<name>, readable by the task's user only; the unit holds only the paths. */
static bool value_credentials(const PropertySource *src, PropertyValue *ret) {
        ret->def = src->def;
        return src->def->n_credentials > 0;
}

/* The task's limits, each only when set. */
static bool value_runtime_max(const PropertySource *src, PropertyValue *ret) {
        ret->t = (uint64_t) src->def->timeout_sec * USEC_PER_SEC;
        return src->def->timeout_sec > 0;
}

static bool value_memory_max(const PropertySource *src, PropertyValue *ret) {
        ret->t = src->def->memory_max;
        return ret->t > 0;
}

/* cpu_quota is a percentage of one CPU: 50% = 500 ms of CPU time per second. */
static bool value_cpu_quota(const PropertySource *src, PropertyValue *ret) {
        ret->t = (uint64_t) src->def->cpu_quota * (USEC_PER_SEC / 100);
        return src->def->cpu_quota > 0;
}

static bool value_nice(const PropertySource *src, PropertyValue *ret) {
        ret->i = (int32_t) src->def->nice;
        return src->def->has_nice;
}

/* The part of the sandbox a task's "sandbox" may relax. */
static bool value_protect_system(const PropertySource *src, PropertyValue *ret) {
        ret->s = src->sandbox->protect_system ?: "strict";
        return true;
}

static bool value_protect_home(const PropertySource *src, PropertyValue *ret) {
        ret->s = src->sandbox->protect_home ?: "true";
        return true;
}

static bool value_private_tmp(const PropertySource *src, PropertyValue *ret) {
        ret->b = src->sandbox->private_tmp;
        return true;
}

/* A private /dev costs a mount namespace's worth of work at every start. A lean task cannot create
 * device nodes or use raw I/O, nor open a device its user may not: the device cgroup's closed policy
 * (only /dev/null, zero, full, random, urandom, tty, ptmx) keeps it from the rest, /dev/kmsg
 * included. */
static bool value_private_devices(const PropertySource *src, PropertyValue *ret) {
        ret->b = src->sandbox->private_devices && !src->lean;
        return true;
}

static bool value_device_policy(const PropertySource *src, PropertyValue *ret) {
        ret->s = "closed";
        return src->sandbox->private_devices && src->lean;
}

static bool value_private_network(const PropertySource *src, PropertyValue *ret) {
        ret->b = src->sandbox->private_network;
        return true;
}

static bool value_no_new_privileges(const PropertySource *src, PropertyValue *ret) {
        ret->b = src->sandbox->no_new_privileges;
        return true;
}

/* What only root, or a process with capabilities, could do: load modules (CAP_SYS_MODULE, and
 * init_module() is outside the system call filter), write /proc/sys, /sys or the cgroup tree (owned by
 * root; /proc/sys is not even visible under ProcSubset=pid), read the kernel log (syslog() is outside
 * the filter, /proc/kmsg hidden, /dev/kmsg closed by the device policy). On for every other task. */
static bool value_strict_only(const PropertySource *src, PropertyValue *ret) {
        ret->b = 1;
        return !src->lean;
}

static bool value_read_write_paths(const PropertySource *src, PropertyValue *ret) {
        ret->strv = src->sandbox->read_write_paths;
        return ret->strv && ret->strv[0];
}

/* With no_new_privileges (the default) a task cannot gain privileges through setuid or file
 * capabilities, so a task not running as root never has a capability and none may be in its bounding
 * set. no_new_privileges: false is for tasks that run setuid programs: those keep the bounding set. */
static bool value_no_capabilities(const PropertySource *src, PropertyValue *ret) {
        ret->t = 0;
        return src->sandbox->no_new_privileges && !src->root;
}

/* ---- the table ----------------------------------------------------------------------------------- */

#define VALUE(n, ty, fn)                                                                                    \
        { .name = (n), .type = (ty), .value = (fn) }
#define CONSTANT(n, ty, field, v)                                                                           \
        {                                                                                                   \
                .name = (n), .type = (ty), .constant = {.field = (v) }                                      \
        }
#define ALWAYS_ON(n) CONSTANT(n, "b", b, 1)

static char *const syscalls_allowed[] = {"@system-service", NULL};
static char *const families_allowed[] = {"AF_UNIX", "AF_INET", "AF_INET6", NULL};
static char *const architectures[] = {"native", NULL};

/* Every property a task's unit may get, in the order sent. */
static const UnitProperty unit_property_table[] = {
        /* Who runs the task, and where. */
        VALUE("Description", "s", value_description),
        CONSTANT("Type", "s", s, "exec"),
        /* The task reports progress with STATUS= (systemd-notify), from any of its processes. */
        CONSTANT("NotifyAccess", "s", s, "all"),
        VALUE("ExecStart", "a(sasb)", value_exec_start),
        VALUE("SyslogIdentifier", "s", value_syslog_identifier),
        VALUE("User", "s", value_user),
        VALUE("WorkingDirectory", "s", value_working_directory),
        VALUE("Group", "s", value_group),
        VALUE("Environment", "as", value_environment),
        VALUE("LogExtraFields", "aay", value_log_extra_fields),
        /* Output and error to the journal; standard input, when the launch has one, as a descriptor. */
        CONSTANT("StandardOutput", "s", s, "journal"),
        CONSTANT("StandardError", "s", s, "journal"),
        VALUE(STDIN_FD_PROPERTY, "h", value_stdin_fd),
        VALUE("LoadCredential", "a(ss)", value_credentials),
        /* Where the unit lives and how long it stays: RemainAfterExit= keeps the result (and the unit)
         * past the process, and past both daemons, until the front has recorded it; a cancel sends
         * TERM, then KILL after the same grace period as the direct executor. */
        CONSTANT("Slice", "s", s, UNIT_PROPERTIES_SLICE),
        CONSTANT("RemainAfterExit", "b", b, 1),
        CONSTANT("TimeoutStopUSec", "t", t, KILL_GRACE_USEC),
        CONSTANT("CPUAccounting", "b", b, 1),
        CONSTANT("MemoryAccounting", "b", b, 1),
        VALUE("RuntimeMaxUSec", "t", value_runtime_max),
        VALUE("MemoryMax", "t", value_memory_max),
        VALUE("CPUQuotaPerSecUSec", "t", value_cpu_quota),
        VALUE("Nice", "i", value_nice),
        /* The sandbox: first what a task's "sandbox" may relax, */
        VALUE("ProtectSystem", "s", value_protect_system),
        VALUE("ProtectHome", "s", value_protect_home),
        VALUE("PrivateTmp", "b", value_private_tmp),
        VALUE("PrivateDevices", "b", value_private_devices),
        VALUE("DevicePolicy", "s", value_device_policy),
        VALUE("PrivateNetwork", "b", value_private_network),
        VALUE("NoNewPrivileges", "b", value_no_new_privileges),
        VALUE("ReadWritePaths", "as", value_read_write_paths),
        /* then what a task started by a queue has no business doing: what it could not do anyway
         * unless it runs as root or keeps capabilities, */
        VALUE("ProtectKernelTunables", "b", value_strict_only),
        VALUE("ProtectKernelModules", "b", value_strict_only),
        VALUE("ProtectKernelLogs", "b", value_strict_only),
        VALUE("ProtectControlGroups", "b", value_strict_only),
        /* and, always on, the rest. */
        ALWAYS_ON("ProtectClock"),
        ALWAYS_ON("ProtectHostname"),
        ALWAYS_ON("RestrictRealtime"),
        ALWAYS_ON("LockPersonality"),
        /* No task creates setuid or setgid files (a task running as X could otherwise leave a setuid-X
         * program for any local user), whether or not it may run such programs. */
        ALWAYS_ON("RestrictSUIDSGID"),
        /* The mask of namespaces a task may create: none. */
        CONSTANT("RestrictNamespaces", "t", t, 0),
        CONSTANT("SystemCallArchitectures", "as", strv, architectures),
        CONSTANT("UMask", "u", u, 0027),
        /* In /proc the task sees the processes of its own user only (not the command lines of the web
         * application's or the daemons' processes), and nothing but processes (no /proc/sys, no
         * /proc/kcore...). Tasks of the same user still see each other: systemd 252 gives a unit no
         * PID namespace of its own. */
        CONSTANT("ProtectProc", "s", s, "invisible"),
        CONSTANT("ProcSubset", "s", s, "pid"),
        /* The system calls of an ordinary service (systemd.exec(5), "@system-service"); anything else
         * (mount, swap, reboot, module, raw I/O, debugging...) fails with EPERM rather than killing the
         * task. Sockets: local, IPv4 and IPv6 only (no netlink, packet, bluetooth...). */
        CONSTANT("SystemCallFilter", "(bas)", strv, syscalls_allowed),
        CONSTANT("SystemCallErrorNumber", "i", i, EPERM),
        CONSTANT("RestrictAddressFamilies", "(bas)", strv, families_allowed),
        VALUE("CapabilityBoundingSet", "t", value_no_capabilities),
        VALUE("AmbientCapabilities", "t", value_no_capabilities),
};

/* ---- the writer ---------------------------------------------------------------------------------- */

/* The value v of variant type `type` at m, inside the open variant. */
static int append_value(sd_bus_message *m, const char *type, const PropertyValue *v) {
        int r;

        if (streq(type, "as"))
                return sd_bus_message_append_strv(m, (char **) v->strv);
        if (streq(type, "(bas)")) { /* an allow list: SystemCallFilter=, RestrictAddressFamilies= */
                r = sd_bus_message_open_container(m, 'r', "bas");
                if (r >= 0)
                        r = sd_bus_message_append(m, "b", 1);
                if (r >= 0)
                        r = sd_bus_message_append_strv(m, (char **) v->strv);
                return r < 0 ? r : sd_bus_message_close_container(m);
        }
        if (streq(type, "aay")) {
                r = sd_bus_message_open_container(m, 'a', "ay");
                for (char *const *p = v->strv; r >= 0 && *p; p++)
                        r = sd_bus_message_append_array(m, 'y', *p, strlen(*p));
                return r < 0 ? r : sd_bus_message_close_container(m);
        }
        if (streq(type, "a(ss)")) {
                r = sd_bus_message_open_container(m, 'a', "(ss)");
                for (size_t i = 0; r >= 0 && i < v->def->n_credentials; i++)
                        r = sd_bus_message_append(m, "(ss)", v->def->credentials[i].name,
                                                  v->def->credentials[i].path);
                return r < 0 ? r : sd_bus_message_close_container(m);
        }
        if (streq(type, "a(sasb)")) { /* one command, whose failure is the task's result, not ignored */
                r = sd_bus_message_open_container(m, 'a', "(sasb)");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'r', "sasb");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", v->strv[0]);
                if (r >= 0)
                        r = sd_bus_message_append_strv(m, (char **) v->strv);
                if (r >= 0)
                        r = sd_bus_message_append(m, "b", 0);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                return r < 0 ? r : sd_bus_message_close_container(m);
        }
        switch (type[0]) {
        case 's':
                return sd_bus_message_append_basic(m, 's', v->s);
        case 'b':
                return sd_bus_message_append_basic(m, 'b', &v->b);
        case 't':
                return sd_bus_message_append_basic(m, 't', &v->t);
        case 'i':
                return sd_bus_message_append_basic(m, 'i', &v->i);
        case 'u':
                return sd_bus_message_append_basic(m, 'u', &v->u);
        case 'h':
                return sd_bus_message_append_basic(m, 'h', &v->h);
        }
        return -EINVAL;
}

/* Property p of src as an "(sv)", unless its value says to leave it out. */
static int append_property(sd_bus_message *m, const UnitProperty *p, const PropertySource *src) {
        PropertyValue v = p->constant;
        int r;

        if (p->value && !p->value(src, &v))
                return 0;
        r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append_basic(m, 's', p->name);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', p->type);
        if (r >= 0)
                r = append_value(m, p->type, &v);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r < 0 ? r : sd_bus_message_close_container(m);
}

int unit_properties_append(sd_bus_message *m, const Launch *l, int stdin_fd) {
        _cleanup_(property_source_done) PropertySource src = {};
        int r;

        /* Never inline: StandardInputData= is readable by every local user. */
        if (l->stdin_data && stdin_fd < 0)
                return -EINVAL;
        r = property_source_init(&src, l, stdin_fd);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(unit_property_table); i++) {
                r = append_property(m, &unit_property_table[i], &src);
                if (r < 0)
                        return r;
        }
        return 0;
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
