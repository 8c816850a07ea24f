/* SPDX-License-Identifier: MIT */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>

#include "launcher/unit-result.h"
#include "shared/util.h"

void unit_result_props_init(UnitProps *p) {
        *p = (UnitProps){.cpu_nsec = UINT64_MAX, .memory_peak = UINT64_MAX};
}

#define FIELD(name, type, member)                                                                           \
        { name, type, offsetof(UnitProps, member), sizeof(((UnitProps *) NULL)->member) }

/* The properties read, by D-Bus type: "s" into a char array, "i" into int32_t, "t" into uint64_t. */
static const struct {
        const char *name;
        char type;
        size_t offset;
        size_t size;
} prop_fields[] = {
        FIELD("LoadState", 's', load_state),
        FIELD("ActiveState", 's', active_state),
        FIELD("SubState", 's', sub_state),
        FIELD("Result", 's', result),
        FIELD("ExecMainCode", 'i', exec_main_code),
        FIELD("ExecMainStatus", 'i', exec_main_status),
        FIELD("ExecMainExitTimestamp", 't', exec_main_exit_usec),
        FIELD("ActiveEnterTimestamp", 't', active_enter_usec),
        FIELD("CPUUsageNSec", 't', cpu_nsec),
        FIELD("MemoryPeak", 't', memory_peak),
        FIELD("StatusText", 's', status_text),
};

/* Reads the variant of one property into p, or skips it. */
static int props_read_value(UnitProps *p, const char *name, sd_bus_message *m) {
        if (streq(name, "Job")) {
                const char *job_path;
                return sd_bus_message_read(m, "v", "(uo)", &p->job_id, &job_path);
        }
        for (size_t i = 0; i < ELEMENTSOF(prop_fields); i++) {
                void *dest = (char *) p + prop_fields[i].offset;
                const char *s;
                int r;

                if (!streq(name, prop_fields[i].name))
                        continue;
                if (prop_fields[i].type != 's')
                        return sd_bus_message_read(m, "v", (char[]){prop_fields[i].type, 0}, dest);
                r = sd_bus_message_read(m, "v", "s", &s);
                if (r >= 0)
                        snprintf(dest, prop_fields[i].size, "%s", s);
                return r;
        }
        return sd_bus_message_skip(m, "v");
}

int unit_result_props_update(UnitProps *p, sd_bus_message *m) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name;

                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        return r;
                r = props_read_value(p, name, m);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 0;
}

bool unit_result_props_finished(const UnitProps *p) {
        if (p->job_id != 0)
                return false;
        if (streq(p->active_state, "inactive") || streq(p->active_state, "failed"))
                return true;
        return streq(p->active_state, "active") && streq(p->sub_state, "exited");
}

/* systemd.exec(5), "Process Exit Codes". */
#define EXIT_STATUS_CGROUP 219

const char *unit_result_exit_status_name(int status) {
        static const char *const names[] = {
                [200 - 200] = "CHDIR",
                [201 - 200] = "NICE",
                [202 - 200] = "FDS",
                [203 - 200] = "EXEC",
                [204 - 200] = "MEMORY",
                [205 - 200] = "LIMITS",
                [206 - 200] = "OOM_ADJUST",
                [207 - 200] = "SIGNAL_MASK",
                [208 - 200] = "STDIN",
                [209 - 200] = "STDOUT",
                [210 - 200] = "CHROOT",
                [211 - 200] = "IOPRIO",
                [212 - 200] = "TIMERSLACK",
                [213 - 200] = "SECUREBITS",
                [214 - 200] = "SETSCHEDULER",
                [215 - 200] = "CPUAFFINITY",
                [216 - 200] = "GROUP",
                [217 - 200] = "USER",
                [218 - 200] = "CAPABILITIES",
                [219 - 200] = "CGROUP",
                [220 - 200] = "SETSID",
                [221 - 200] = "CONFIRM",
                [222 - 200] = "STDERR",
                [224 - 200] = "PAM",
                [225 - 200] = "NETWORK",
                [226 - 200] = "NAMESPACE",
                [227 - 200] = "NO_NEW_PRIVILEGES",
                [228 - 200] = "SECCOMP",
                [229 - 200] = "SELINUX_CONTEXT",
                [230 - 200] = "PERSONALITY",
                [231 - 200] = "APPARMOR",
                [232 - 200] = "ADDRESS_FAMILIES",
                [233 - 200] = "RUNTIME_DIRECTORY",
                [235 - 200] = "CHOWN",
                [236 - 200] = "SMACK_PROCESS_LABEL",
                [237 - 200] = "KEYRING",
                [238 - 200] = "STATE_DIRECTORY",
                [239 - 200] = "CACHE_DIRECTORY",
                [240 - 200] = "LOGS_DIRECTORY",
                [241 - 200] = "CONFIGURATION_DIRECTORY",
                [242 - 200] = "NUMA_POLICY",
                [243 - 200] = "CREDENTIALS",
                [245 - 200] = "BPF",
        };
        if (status < 200 || status - 200 >= (int) ELEMENTSOF(names) || !names[status - 200])
                return NULL;
        return names[status - 200];
}

static void result_set(RunResult *r, const char *result) {
        snprintf(r->result, sizeof(r->result), "%s", result);
}

/* Whether the task's program ran. With Type=exec the unit becomes active (start job "done",
 * ActiveEnterTimestamp set) only once the exec has succeeded: then the program ran, whatever its
 * exit status. A failed start job alone does not mean the opposite: it also fails when the program
 * ran and ended (non-zero exit, signal) before PID 1 saw the exec succeed. The program did not run
 * when the main process exited with one of systemd's own statuses, which its child uses when setting
 * up fails before the exec (217/USER, 200/CHDIR, 203/EXEC...), or when the start job failed and no
 * main process ever ended (ExecMainCode 0: none was forked). */
static bool program_ran(const UnitProps *p, const char *start_job_result) {
        bool job_known = start_job_result && start_job_result[0];

        if ((job_known && streq(start_job_result, "done")) || p->active_enter_usec > 0)
                return true;
        if (p->exec_main_code == CLD_EXITED && unit_result_exit_status_name(p->exec_main_status))
                return false;
        if (p->exec_main_code == 0 && job_known)
                return false;
        return true;
}

bool unit_result_start_transient(const UnitProps *p, const char *start_job_result) {
        return p->exec_main_code == CLD_EXITED && p->exec_main_status == EXIT_STATUS_CGROUP &&
               !program_ran(p, start_job_result);
}

/* The program never ran: "resources", with systemd's status name when it says why. */
static void decode_not_started(const UnitProps *p, const char *job, RunResult *r) {
        const char *name = r->has_exit_status ? unit_result_exit_status_name(r->exit_status) : NULL;

        result_set(r, "resources");
        if (name)
                snprintf(r->error, sizeof(r->error), "could not start the task: start job %s (status %d/%s)",
                         job, r->exit_status, name);
        else
                snprintf(r->error, sizeof(r->error), "could not start the task: start job %s, unit %s", job,
                         p->result[0] ? p->result : "unknown");
        r->has_exit_status = 0;
        r->exit_status = 0;
}

/* The program ran: systemd's Result says how it ended. */
static void decode_ended(const UnitProps *p, RunResult *r) {
        if (streq(p->result, "success") || (p->result[0] == 0 && streq(p->sub_state, "exited"))) {
                result_set(r, "success");
                if (!r->has_exit_status) {
                        r->has_exit_status = 1;
                        r->exit_status = 0;
                }
        } else if (streq(p->result, "exit-code")) {
                result_set(r, "exit-code");
                snprintf(r->error, sizeof(r->error), "exited with status %d", r->exit_status);
        } else if (streq(p->result, "signal") || streq(p->result, "core-dump")) {
                result_set(r, p->result);
                snprintf(r->error, sizeof(r->error), "killed by signal %d (%s)", r->signal,
                         r->signal > 0 ? strsignal(r->signal) : "unknown");
        } else if (streq(p->result, "timeout")) {
                result_set(r, "timeout");
                snprintf(r->error, sizeof(r->error), "ran longer than its timeout_sec");
        } else if (streq(p->result, "oom-kill")) {
                result_set(r, "oom-kill");
                snprintf(r->error, sizeof(r->error), "killed by the OOM killer (memory_max reached)");
        } else if (p->result[0] != 0) {
                /* "resources", "watchdog", "start-limit-hit", "exec-condition", ...: systemd's word. */
                result_set(r, p->result);
                snprintf(r->error, sizeof(r->error), "unit ended with result '%s'", p->result);
        } else {
                result_set(r, "lost");
                snprintf(r->error, sizeof(r->error), "the unit vanished before its result could be read");
        }
}

void unit_result_decode(const UnitProps *p, const char *start_job_result, bool cancelled, RunResult *ret) {
        RunResult r = {};

        if (p->exec_main_code == CLD_EXITED) {
                r.has_exit_status = 1;
                r.exit_status = p->exec_main_status;
        } else if (p->exec_main_code == CLD_KILLED || p->exec_main_code == CLD_DUMPED)
                r.signal = p->exec_main_status;
        if (p->cpu_nsec != UINT64_MAX)
                r.cpu_usec = p->cpu_nsec / 1000;
        if (p->memory_peak != UINT64_MAX)
                r.memory_peak = p->memory_peak;

        if (cancelled) {
                result_set(&r, "cancelled");
                snprintf(r.error, sizeof(r.error), "stopped on request");
        } else if (!program_ran(p, start_job_result))
                decode_not_started(p, start_job_result && start_job_result[0] ? start_job_result : "unknown",
                                   &r);
        else
                decode_ended(p, &r);
        *ret = r;
}

void unit_result_start_failed(const char *unit, const char *message, bool cancelled, RunResult *ret) {
        RunResult r = {};

        if (cancelled) {
                result_set(&r, "cancelled");
                snprintf(r.error, sizeof(r.error), "stopped before it started");
        } else {
                result_set(&r, "resources");
                snprintf(r.error, sizeof(r.error), "could not create %s: %s", unit, message);
        }
        *ret = r;
}
