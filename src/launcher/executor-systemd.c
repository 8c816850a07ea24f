/* SPDX-License-Identifier: MIT */
/*
 * systemd executor: every run is its own transient service "asynctask-<id>.service", created by
 * StartTransientUnit on an asynchronous system-bus connection attached to the launcher's sd-event
 * loop. Every property comes from the task definition and the launch (argv, stdin); nothing else.
 *
 * Completion is read from the unit itself: one PropertiesChanged match for the whole unit namespace
 * (dbus-daemon allows a connection only 512 match rules, so not one per unit) is installed at creation,
 * before any start call on the same connection, so no change can be missed; JobRemoved tells whether
 * the start job itself failed, and a GetAll re-reads ActiveState, Result, ExecMain* and the
 * accounting values whenever anything changes.
 *
 * Units are created with RemainAfterExit=yes: a finished unit stays loaded ("active (exited)" or
 * "failed") with its result until release(), so a result survives a restart of the launcher; at
 * creation the executor lists the asynctask-*.service units left from before and reports them, then
 * tells the launcher it is ready: until then a list of its runs would miss the ones still running.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <linux/limits.h> /* PATH_MAX */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "launcher/executor.h"
#include "shared/exec-hex.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/util.h"

#define SYSTEMD_SERVICE     "org.freedesktop.systemd1"
#define SYSTEMD_PATH        "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER     "org.freedesktop.systemd1.Manager"
#define SYSTEMD_UNIT_PREFIX "/org/freedesktop/systemd1/unit"
#define UNIT_PREFIX         "asynctask-"
#define UNIT_SUFFIX         ".service"
#define TASK_SLICE          "asynctask.slice"

/* dbus-daemon allows a connection 128 pending method calls on the system bus
 * (max_replies_per_connection) and refuses the next with LimitsExceeded: keep well below it and
 * queue the rest, so that any number of launches at once works. */
#define BUS_CALLS_MAX 64
/* PID 1 may be busy (many units starting at once); a start call that gets no answer in this time is
 * reported as "resources" rather than waited for forever. */
#define BUS_CALL_TIMEOUT_USEC (60 * USEC_PER_SEC)
/* A release and a new launch of the same id can overlap: the old unit is still being collected
 * when the new start arrives (UnitExists). Retry that many times, this far apart. */
#define UNIT_EXISTS_RETRIES    40
#define UNIT_EXISTS_RETRY_USEC (50 * USEC_PER_MSEC)

typedef enum RunState {
        RUN_STARTING,   /* StartTransientUnit in flight */
        RUN_RECOVERING, /* found at creation, first GetAll in flight; nothing reported yet */
        RUN_RUNNING,    /* started reported */
        RUN_FINISHED,   /* finished reported; unit kept until release() */
        RUN_RELEASING,  /* StopUnit/ResetFailedUnit in flight; invisible to lookups */
} RunState;

/* What we know of the unit: updated from PropertiesChanged payloads and GetAll replies. */
typedef struct UnitProps {
        char load_state[32];
        char active_state[32];
        char sub_state[32];
        char result[32];
        int32_t exec_main_code; /* CLD_EXITED, CLD_KILLED, CLD_DUMPED or 0 */
        int32_t exec_main_status;
        uint64_t exec_main_exit_usec;
        uint64_t active_enter_usec; /* 0: the unit never became active */
        uint32_t job_id;
        uint64_t cpu_nsec;    /* UINT64_MAX: unknown */
        uint64_t memory_peak; /* UINT64_MAX: unknown or not provided (systemd < 255) */
} UnitProps;

typedef struct SystemdExecutor SystemdExecutor;

/* One method call to PID 1: sent at once while fewer than BUS_CALLS_MAX are in flight, else queued. */
typedef struct Call {
        SystemdExecutor *x;
        struct Call *prev, *next; /* in x->queue while not sent */
        struct Call **owner;      /* the pointer that refers to us, cleared when we are done */
        sd_bus_message *m;
        sd_bus_message_handler_t callback; /* gets NULL as message if the call could not be sent */
        void *userdata;
        sd_bus_slot *slot;
} Call;

typedef struct Run {
        SystemdExecutor *x;
        struct Run *prev, *next;
        uint64_t id;
        RunState state;
        char unit[64];
        char *path;

        sd_bus_message *start_msg; /* kept for UnitExists retries */
        unsigned start_retries;
        bool start_unanswered; /* PID 1 left the bus before answering a start: the unit may exist */
        sd_event_source *retry_timer;

        Call *call;         /* start / stop / reset in flight or queued */
        Call *getall;       /* GetAll in flight or queued */
        bool refresh_again; /* something changed while GetAll was in flight */

        char *start_job;           /* object path of the start job */
        char start_job_result[32]; /* from JobRemoved: "done", "failed", ... ("" unknown) */
        bool stop_requested;
        bool stop_sent;
        UnitProps props;
} Run;

struct SystemdExecutor {
        Executor base;
        sd_event *event;
        sd_bus *bus;
        ExecutorEvents events;
        void *userdata;
        sd_bus_slot *job_removed_slot;
        sd_bus_slot *properties_slot;
        Call *list_call;
        bool listing;          /* ListUnitsByPatterns not answered yet */
        unsigned n_recovering; /* runs in RUN_RECOVERING */
        bool ready;            /* both done: ready reported */
        Call *queue, *queue_tail;
        unsigned n_in_flight;
        Run *runs;
};

static void run_refresh(Run *r);

/* Strict: "asynctask-<digits>.service", no sign, no leading zero, fits in uint64. */
static int unit_name_to_id(const char *name, uint64_t *ret) {
        const char *p;
        uint64_t id = 0;
        size_t n = 0;

        if (!name || !startswith(name, UNIT_PREFIX))
                return -EINVAL;
        for (p = name + strlen(UNIT_PREFIX); *p >= '0' && *p <= '9'; p++, n++) {
                unsigned d = (unsigned) (*p - '0');
                if (id > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                id = id * 10 + d;
        }
        if (n == 0 || (n > 1 && name[strlen(UNIT_PREFIX)] == '0') || !streq(p, UNIT_SUFFIX))
                return -EINVAL;
        if (id == 0)
                return -EINVAL;
        *ret = id;
        return 0;
}

static void unit_props_init(UnitProps *p) {
        *p = (UnitProps){.cpu_nsec = UINT64_MAX, .memory_peak = UINT64_MAX};
}

/* Finished means: no job pending, and the unit is down (inactive/failed) or, with RemainAfterExit,
 * its main process has exited successfully ("active (exited)"). */
static bool unit_props_finished(const UnitProps *p) {
        if (p->job_id != 0)
                return false;
        if (streq(p->active_state, "inactive") || streq(p->active_state, "failed"))
                return true;
        return streq(p->active_state, "active") && streq(p->sub_state, "exited");
}

/* Names of systemd's own exit statuses (200..243) for a start that failed before the task's
 * program ran (systemd.exec(5), "Process Exit Codes"). */
static const char *systemd_exit_status_name(int status) {
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

static void run_result_set(RunResult *r, const char *result) {
        snprintf(r->result, sizeof(r->result), "%s", result);
}

/* Whether the task's program ran, from the result of the start job ("" when unknown: a unit found
 * at creation, or JobRemoved not seen yet) and the unit's properties.
 * With Type=exec the unit becomes active (start job "done", ActiveEnterTimestamp set) only once the
 * exec has succeeded: then the program ran, whatever its exit status. A failed start job alone does
 * not mean the opposite: it also fails when the program ran and ended (non-zero exit, signal) before
 * PID 1 saw the exec succeed. The program did not run when the main process exited with one of
 * systemd's own statuses, which its child uses when setting up fails before the exec (217/USER,
 * 200/CHDIR, 203/EXEC...), or when the start job failed and no main process ever ended
 * (ExecMainCode 0: none was forked). */
static bool unit_program_ran(const UnitProps *p, const char *start_job_result) {
        bool job_known = start_job_result && start_job_result[0];

        if ((job_known && streq(start_job_result, "done")) || p->active_enter_usec > 0)
                return true;
        if (p->exec_main_code == CLD_EXITED && systemd_exit_status_name(p->exec_main_status))
                return false;
        if (p->exec_main_code == 0 && job_known)
                return false;
        return true;
}

/* Maps what systemd reports about a finished unit onto a RunResult: "resources" when the task's
 * program never ran (user missing, working directory missing, exec failed...; unit_program_ran()),
 * else systemd's Result with the main process' exit status or signal. */
static void unit_props_to_result(const UnitProps *p, const char *start_job_result, bool cancelled,
                                 RunResult *ret) {
        const char *job = start_job_result && start_job_result[0] ? start_job_result : "unknown";
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
                run_result_set(&r, "cancelled");
                snprintf(r.error, sizeof(r.error), "stopped on request");
        } else if (!unit_program_ran(p, start_job_result)) {
                const char *name = r.has_exit_status ? systemd_exit_status_name(r.exit_status) : NULL;

                run_result_set(&r, "resources");
                if (name)
                        snprintf(r.error, sizeof(r.error),
                                 "could not start the task: start job %s (status %d/%s)", job, r.exit_status,
                                 name);
                else
                        snprintf(r.error, sizeof(r.error), "could not start the task: start job %s, unit %s",
                                 job, p->result[0] ? p->result : "unknown");
                r.has_exit_status = 0;
                r.exit_status = 0;
        } else if (streq(p->result, "success") || (p->result[0] == 0 && streq(p->sub_state, "exited"))) {
                run_result_set(&r, "success");
                if (!r.has_exit_status) {
                        r.has_exit_status = 1;
                        r.exit_status = 0;
                }
        } else if (streq(p->result, "exit-code")) {
                run_result_set(&r, "exit-code");
                snprintf(r.error, sizeof(r.error), "exited with status %d", r.exit_status);
        } else if (streq(p->result, "signal") || streq(p->result, "core-dump")) {
                run_result_set(&r, p->result);
                snprintf(r.error, sizeof(r.error), "killed by signal %d (%s)", r.signal,
                         r.signal > 0 ? strsignal(r.signal) : "unknown");
        } else if (streq(p->result, "timeout")) {
                run_result_set(&r, "timeout");
                snprintf(r.error, sizeof(r.error), "ran longer than its timeout_sec");
        } else if (streq(p->result, "oom-kill")) {
                run_result_set(&r, "oom-kill");
                snprintf(r.error, sizeof(r.error), "killed by the OOM killer (memory_max reached)");
        } else if (p->result[0] != 0) {
                /* "resources", "watchdog", "start-limit-hit", "exec-condition", ...: systemd's word. */
                run_result_set(&r, p->result);
                snprintf(r.error, sizeof(r.error), "unit ended with result '%s'", p->result);
        } else {
                run_result_set(&r, "lost");
                snprintf(r.error, sizeof(r.error), "the unit vanished before its result could be read");
        }
        *ret = r;
}

/* Text of a failed reply, or NULL when m is a success. m == NULL: the call could not be sent. */
static const char *reply_error(sd_bus_message *m) {
        const sd_bus_error *e;

        if (!m)
                return "could not send the request to systemd";
        e = sd_bus_message_get_error(m);
        if (!e)
                return NULL;
        return e->message ?: e->name;
}

static bool reply_has_error(sd_bus_message *m, const char *name) {
        return m && sd_bus_message_is_method_error(m, name);
}

/* PID 1 left the bus without answering (systemctl daemon-reexec): dbus-daemon itself says so with
 * NoReply. Not a call that timed out here, which sd-bus reports with the same name but no sender. A
 * call sent again waits in dbus-daemon until PID 1 is back on the bus. */
static bool reply_peer_left(sd_bus_message *m) {
        return reply_has_error(m, "org.freedesktop.DBus.Error.NoReply") &&
               streq_ptr(sd_bus_message_get_sender(m), "org.freedesktop.DBus");
}

static Call *call_free(Call *c) {
        if (!c)
                return NULL;
        if (c->slot) {
                /* Cancelled in flight: dbus-daemon counts it until PID 1 answers, which BUS_CALLS_MAX's
                 * headroom absorbs. */
                c->slot = sd_bus_slot_unref(c->slot);
                c->x->n_in_flight--;
        } else {
                if (c->prev)
                        c->prev->next = c->next;
                else if (c->x->queue == c)
                        c->x->queue = c->next;
                if (c->next)
                        c->next->prev = c->prev;
                else if (c->x->queue_tail == c)
                        c->x->queue_tail = c->prev;
        }
        if (c->owner)
                *c->owner = NULL;
        sd_bus_message_unref(c->m);
        free(c);
        return NULL;
}

static void calls_pump(SystemdExecutor *x);

static int on_call_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        SystemdExecutor *x = c->x;
        sd_bus_message_handler_t callback = c->callback;
        void *data = c->userdata;

        /* Our slot reference is dropped here; sd-bus holds its own while dispatching. */
        c->slot = sd_bus_slot_unref(c->slot);
        x->n_in_flight--;
        if (c->owner)
                *c->owner = NULL;
        c->owner = NULL;
        sd_bus_message_unref(c->m);
        free(c);

        (void) callback(m, data, ret_error);
        calls_pump(x);
        return 0;
}

static int call_send(Call *c) {
        int k = sd_bus_call_async(c->x->bus, &c->slot, c->m, on_call_reply, c, BUS_CALL_TIMEOUT_USEC);
        if (k < 0)
                return k;
        c->x->n_in_flight++;
        return 0;
}

/* Sends what is queued while there is room. A call that cannot be sent gets its callback with NULL. */
static void calls_pump(SystemdExecutor *x) {
        while (x->queue && x->n_in_flight < BUS_CALLS_MAX) {
                Call *c = x->queue;

                x->queue = c->next;
                if (x->queue)
                        x->queue->prev = NULL;
                else
                        x->queue_tail = NULL;
                c->prev = c->next = NULL;
                if (call_send(c) < 0) {
                        sd_bus_message_handler_t callback = c->callback;
                        void *data = c->userdata;

                        if (c->owner)
                                *c->owner = NULL;
                        sd_bus_message_unref(c->m);
                        free(c);
                        (void) callback(NULL, data, NULL);
                }
        }
}

/* Takes a reference to m. *owner (may be NULL) points at the call until it is answered or freed. */
static int call_start(SystemdExecutor *x, sd_bus_message *m, sd_bus_message_handler_t callback,
                      void *userdata, Call **owner) {
        Call *c;
        int k;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (Call){.x = x,
                    .owner = owner,
                    .m = sd_bus_message_ref(m),
                    .callback = callback,
                    .userdata = userdata};
        if (x->n_in_flight < BUS_CALLS_MAX && !x->queue) {
                k = call_send(c);
                if (k < 0) {
                        sd_bus_message_unref(c->m);
                        free(c);
                        return k;
                }
        } else {
                c->prev = x->queue_tail;
                if (x->queue_tail)
                        x->queue_tail->next = c;
                else
                        x->queue = c;
                x->queue_tail = c;
        }
        if (owner)
                *owner = c;
        return 0;
}

/* A method call on PID 1's manager object. */
static int call_manager(SystemdExecutor *x, const char *method, sd_bus_message_handler_t callback,
                        void *userdata, Call **owner, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int k;

        k = sd_bus_message_new_method_call(x->bus, &m, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           method);
        if (k < 0)
                return k;
        va_start(ap, types);
        k = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        if (k < 0)
                return k;
        return call_start(x, m, callback, userdata, owner);
}

static Run *run_find(SystemdExecutor *x, uint64_t id) {
        for (Run *r = x->runs; r; r = r->next)
                if (r->id == id && r->state != RUN_RELEASING)
                        return r;
        return NULL;
}

/* Whether an earlier run of id is still being released: its unit, not one of ours, may answer to
 * the name until then. */
static bool run_releasing(SystemdExecutor *x, uint64_t id) {
        for (Run *r = x->runs; r; r = r->next)
                if (r->id == id && r->state == RUN_RELEASING)
                        return true;
        return false;
}

static Run *run_free(Run *r) {
        if (!r)
                return NULL;
        if (r->x) {
                if (r->prev)
                        r->prev->next = r->next;
                else
                        r->x->runs = r->next;
                if (r->next)
                        r->next->prev = r->prev;
        }
        call_free(r->call);
        call_free(r->getall);
        sd_event_source_disable_unref(r->retry_timer);
        sd_bus_message_unref(r->start_msg);
        free(r->start_job);
        free(r->path);
        free(r);
        return NULL;
}

static int run_new(SystemdExecutor *x, uint64_t id, RunState state, Run **ret) {
        Run *r;
        int k;

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->id = id;
        r->state = state;
        unit_props_init(&r->props);
        snprintf(r->unit, sizeof(r->unit), UNIT_PREFIX "%" PRIu64 UNIT_SUFFIX, id);
        k = sd_bus_path_encode(SYSTEMD_UNIT_PREFIX, r->unit, &r->path);
        if (k < 0) {
                free(r);
                return k;
        }
        r->x = x;
        r->next = x->runs;
        if (x->runs)
                x->runs->prev = r;
        x->runs = r;
        *ret = r;
        return 0;
}

static void run_report_finished(Run *r, const RunResult *result) {
        SystemdExecutor *x = r->x;

        r->state = RUN_FINISHED;
        r->getall = call_free(r->getall);
        /* The launcher logs the outcome for the task; here only what helps debugging the unit. */
        log_task(LOG_DEBUG, r->id, NULL, r->unit, "%s finished: %s%s%s", r->unit, result->result,
                 result->error[0] ? ", " : "", result->error);
        if (x->events.finished)
                x->events.finished(x->userdata, r->id, result);
}

static void run_report_start_failure(Run *r, const char *message) {
        RunResult result = {};

        if (r->stop_requested) {
                run_result_set(&result, "cancelled");
                snprintf(result.error, sizeof(result.error), "stopped before it started");
        } else {
                run_result_set(&result, "resources");
                snprintf(result.error, sizeof(result.error), "could not create %s: %s", r->unit, message);
        }
        run_report_finished(r, &result);
}

/* Reads the properties we care about from an a{sv} (PropertiesChanged payload or GetAll reply). */
static int unit_props_update(UnitProps *p, sd_bus_message *m) {
        int k;

        k = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (k < 0)
                return k;
        for (;;) {
                const char *name, *s;
                char *dest = NULL;
                size_t dest_size = 0;

                k = sd_bus_message_enter_container(m, 'e', "sv");
                if (k < 0)
                        return k;
                if (k == 0)
                        break;
                k = sd_bus_message_read(m, "s", &name);
                if (k < 0)
                        return k;

                if (streq(name, "LoadState"))
                        dest = p->load_state, dest_size = sizeof(p->load_state);
                else if (streq(name, "ActiveState"))
                        dest = p->active_state, dest_size = sizeof(p->active_state);
                else if (streq(name, "SubState"))
                        dest = p->sub_state, dest_size = sizeof(p->sub_state);
                else if (streq(name, "Result"))
                        dest = p->result, dest_size = sizeof(p->result);

                if (dest) {
                        k = sd_bus_message_read(m, "v", "s", &s);
                        if (k >= 0)
                                snprintf(dest, dest_size, "%s", s);
                } else if (streq(name, "ExecMainCode"))
                        k = sd_bus_message_read(m, "v", "i", &p->exec_main_code);
                else if (streq(name, "ExecMainStatus"))
                        k = sd_bus_message_read(m, "v", "i", &p->exec_main_status);
                else if (streq(name, "ExecMainExitTimestamp"))
                        k = sd_bus_message_read(m, "v", "t", &p->exec_main_exit_usec);
                else if (streq(name, "ActiveEnterTimestamp"))
                        k = sd_bus_message_read(m, "v", "t", &p->active_enter_usec);
                else if (streq(name, "CPUUsageNSec"))
                        k = sd_bus_message_read(m, "v", "t", &p->cpu_nsec);
                else if (streq(name, "MemoryPeak"))
                        k = sd_bus_message_read(m, "v", "t", &p->memory_peak);
                else if (streq(name, "Job")) {
                        const char *job_path;
                        k = sd_bus_message_read(m, "v", "(uo)", &p->job_id, &job_path);
                } else
                        k = sd_bus_message_skip(m, "v");
                if (k < 0)
                        return k;
                k = sd_bus_message_exit_container(m);
                if (k < 0)
                        return k;
        }
        return sd_bus_message_exit_container(m);
}

/* Ready once the listing is answered and every unit it found has been reported. */
static void executor_check_ready(SystemdExecutor *x) {
        if (x->ready || x->listing || x->n_recovering > 0)
                return;
        x->ready = true;
        log_debug("Every asynctask unit left from before has been reported.");
        if (x->events.ready)
                x->events.ready(x->userdata);
}

static void run_evaluate(Run *r) {
        SystemdExecutor *x = r->x;
        RunResult result;

        if (r->state == RUN_RECOVERING) {
                x->n_recovering--;
                if (unit_props_finished(&r->props)) {
                        unit_props_to_result(&r->props, r->start_job_result, false, &result);
                        run_report_finished(r, &result);
                } else {
                        r->state = RUN_RUNNING;
                        log_task(LOG_INFO, r->id, NULL, r->unit, "%s is still running, resuming it",
                                 r->unit);
                        if (x->events.started)
                                x->events.started(x->userdata, r->id, r->unit);
                }
                executor_check_ready(x);
                return;
        }
        if (r->state != RUN_RUNNING || !unit_props_finished(&r->props))
                return;
        unit_props_to_result(&r->props, r->start_job_result, r->stop_requested, &result);
        run_report_finished(r, &result);
}

static int on_getall_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Run *r = userdata;
        const char *e = reply_error(m);
        UnitProps fresh;
        int k;

        if (r->state == RUN_FINISHED || r->state == RUN_RELEASING)
                return 0;

        if (e && reply_peer_left(m)) {
                /* The change that made us ask may have been the last one: ask again. */
                log_task(LOG_INFO, r->id, NULL, r->unit, "Reading the properties of %s again: %s", r->unit,
                         e);
                r->refresh_again = false;
                run_refresh(r);
                return 0;
        }
        if (e) {
                log_task(LOG_WARNING, r->id, NULL, r->unit, "Failed to read the properties of %s: %s",
                         r->unit, e);
                if (r->state == RUN_RECOVERING) {
                        /* Cannot tell; treat it as running so the next change or a stop settles it. */
                        r->props.job_id = 1;
                        run_evaluate(r);
                }
                return 0;
        }

        fresh = r->props;
        k = unit_props_update(&fresh, m);
        if (k < 0) {
                log_task(LOG_WARNING, r->id, NULL, r->unit, "Failed to parse the properties of %s: %s",
                         r->unit, strerror(-k));
                return 0;
        }
        if (streq(fresh.load_state, "not-found")) {
                /* The unit was collected (stopped by us or someone else): a freshly loaded stub says
                 * nothing about the run, what its last signals told us is all there is. */
                r->props.job_id = 0;
                if (!unit_props_finished(&r->props))
                        snprintf(r->props.active_state, sizeof(r->props.active_state), "inactive");
        } else
                r->props = fresh;

        if (r->refresh_again) {
                r->refresh_again = false;
                run_refresh(r);
                return 0;
        }
        run_evaluate(r);
        return 0;
}

/* Re-reads every property of the unit (interface "" = all of them); at most one call in flight. */
static void run_refresh(Run *r) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int k;

        if (r->getall) {
                r->refresh_again = true;
                return;
        }
        k = sd_bus_message_new_method_call(r->x->bus, &m, SYSTEMD_SERVICE, r->path,
                                           "org.freedesktop.DBus.Properties", "GetAll");
        if (k >= 0)
                k = sd_bus_message_append(m, "s", "");
        if (k >= 0)
                k = call_start(r->x, m, on_getall_reply, r, &r->getall);
        if (k < 0) {
                log_task(LOG_WARNING, r->id, NULL, r->unit, "Failed to query %s: %s", r->unit, strerror(-k));
                if (r->state == RUN_RECOVERING) {
                        /* As when the query fails: running, until a change or a stop settles it. */
                        r->props.job_id = 1;
                        run_evaluate(r);
                }
        }
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SystemdExecutor *x = userdata;
        _cleanup_free_ char *name = NULL;
        const char *iface;
        uint64_t id;
        Run *r;

        /* Every unit's changes arrive here; most are not ours, and are dropped after the path check. */
        if (sd_bus_path_decode(sd_bus_message_get_path(m), SYSTEMD_UNIT_PREFIX, &name) <= 0 ||
            unit_name_to_id(name, &id) < 0)
                return 0;
        r = run_find(x, id);
        if (!r || r->state == RUN_FINISHED)
                return 0;
        if (sd_bus_message_read(m, "s", &iface) >= 0)
                (void) unit_props_update(&r->props, m);
        /* Until the start reply arrives, whatever is cached may describe an older unit of that name. */
        if (r->state == RUN_STARTING)
                return 0;
        run_refresh(r);
        return 0;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SystemdExecutor *x = userdata;
        const char *job, *unit, *result;
        uint32_t job_id;
        uint64_t id;
        Run *r;

        if (sd_bus_message_read(m, "uoss", &job_id, &job, &unit, &result) < 0)
                return 0;
        if (unit_name_to_id(unit, &id) < 0)
                return 0;
        r = run_find(x, id);
        if (!r || !r->start_job || !streq(r->start_job, job))
                return 0;
        snprintf(r->start_job_result, sizeof(r->start_job_result), "%s", result);
        if (r->state == RUN_RUNNING)
                run_refresh(r);
        return 0;
}

static int run_send_stop(Run *r);

static int on_stop_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Run *r = userdata;
        const char *e = reply_error(m);

        if (e && reply_peer_left(m) && r->state != RUN_FINISHED) {
                /* A cancel must not be lost to a daemon-reexec: later requests see stop_sent. */
                log_task(LOG_INFO, r->id, NULL, r->unit, "Stopping %s again: %s", r->unit, e);
                (void) run_send_stop(r);
                return 0;
        }
        if (e && !reply_has_error(m, "org.freedesktop.systemd1.NoSuchUnit"))
                log_task(LOG_WARNING, r->id, NULL, r->unit, "Failed to stop %s: %s", r->unit, e);
        if (r->state == RUN_RUNNING)
                run_refresh(r);
        return 0;
}

static int run_send_stop(Run *r) {
        int k;

        r->stop_sent = true;
        r->call = call_free(r->call);
        k = call_manager(r->x, "StopUnit", on_stop_reply, r, &r->call, "ss", r->unit, "replace");
        if (k < 0)
                return log_task_internal(LOG_WARNING, k, r->id, NULL, r->unit, "Failed to stop %s: %m",
                                         r->unit);
        return 0;
}

static int run_send_start(Run *r);

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Run *r = userdata;

        r->retry_timer = sd_event_source_disable_unref(r->retry_timer);
        if (run_send_start(r) < 0)
                run_report_start_failure(r, "could not send the start request");
        return 0;
}

static int on_start_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Run *r = userdata;
        SystemdExecutor *x = r->x;
        const char *e = reply_error(m);
        const char *job;
        bool adopted = false;
        int k;

        if (e && reply_peer_left(m)) {
                log_task(LOG_INFO, r->id, NULL, r->unit, "Starting %s again: %s", r->unit, e);
                r->start_unanswered = true;
        }
        /* The unanswered start created the unit after all: it is ours, watched as from the listing
         * (unless the previous attempt's unit is still being released: then it may be that one). */
        if (e && r->start_unanswered && reply_has_error(m, "org.freedesktop.systemd1.UnitExists") &&
            !run_releasing(x, r->id)) {
                log_task(LOG_INFO, r->id, NULL, r->unit, "%s was created by the unanswered start", r->unit);
                adopted = true;
        } else if (e) {
                if ((reply_has_error(m, "org.freedesktop.systemd1.UnitExists") ||
                     reply_has_error(m, "org.freedesktop.DBus.Error.LimitsExceeded") ||
                     reply_peer_left(m)) &&
                    !r->stop_requested && r->start_retries < UNIT_EXISTS_RETRIES) {
                        r->start_retries++;
                        k = sd_event_add_time_relative(x->event, &r->retry_timer, CLOCK_MONOTONIC,
                                                       UNIT_EXISTS_RETRY_USEC, 0, on_retry_timer, r);
                        if (k >= 0)
                                return 0;
                }
                run_report_start_failure(r, e);
                return 0;
        }
        r->start_msg = sd_bus_message_unref(r->start_msg);
        free(r->start_job);
        r->start_job = NULL;
        /* Adopted: the end of its start job may have gone with the lost reply; GetAll tells. */
        if (!adopted && sd_bus_message_read(m, "o", &job) >= 0)
                r->start_job = strdup(job);
        /* Signals seen so far may have described an older unit of the same name. */
        unit_props_init(&r->props);
        r->props.job_id = 1; /* the start job, until GetAll says otherwise */
        r->state = RUN_RUNNING;
        log_task(LOG_DEBUG, r->id, NULL, r->unit, "Started %s", r->unit);
        if (x->events.started)
                x->events.started(x->userdata, r->id, r->unit);
        /* The callback may have stopped or released us, but never freed a run it did not release. */
        if (r->state != RUN_RUNNING)
                return 0;
        if (r->stop_requested && !r->stop_sent)
                (void) run_send_stop(r);
        run_refresh(r);
        return 0;
}

static int run_send_start(Run *r) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int k;

        if (r->start_retries == 0)
                return call_start(r->x, r->start_msg, on_start_reply, r, &r->call);

        /* A sent message is sealed and cannot be sent again: a retry sends a copy. */
        k = sd_bus_message_new_method_call(r->x->bus, &m, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           "StartTransientUnit");
        if (k < 0)
                return k;
        k = sd_bus_message_rewind(r->start_msg, true);
        if (k < 0)
                return k;
        k = sd_bus_message_copy(m, r->start_msg, true);
        if (k < 0)
                return k;
        return call_start(r->x, m, on_start_reply, r, &r->call);
}

/* (sv) helpers: each appends one property. */
#define APPEND(m, name, sig, ...) sd_bus_message_append(m, "(sv)", name, sig, __VA_ARGS__)

/* The helper that runs a task whose arguments systemd would not keep (src/asynctask-exec.c). The
 * packages and make install put it next to the launcher (LIBEXECDIR/asynctask/), and a build tree
 * has both in one directory: executor_systemd_new() looks for it next to the running program, so a
 * launcher compiled for one LIBEXECDIR and installed in another finds it all the same. The path
 * compiled in is the fallback. A variable so that tests can point it elsewhere. */
#define EXEC_HELPER_NAME     "asynctask-exec"
#define EXEC_HELPER_COMPILED LIBEXECDIR "/asynctask/" EXEC_HELPER_NAME
static const char *exec_helper_path = EXEC_HELPER_COMPILED;

static bool is_executable_file(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The helper next to program (an absolute path: the running executable) if it is an executable file
 * there and its path is one systemd keeps as it is in ExecStart=; else the path compiled in. NULL
 * only when out of memory. */
static char *exec_helper_find(const char *program) {
        const char *slash = program && program[0] == '/' ? strrchr(program, '/') : NULL;
        _cleanup_free_ char *path = NULL;

        if (slash) {
                if (asprintf(&path, "%.*s/" EXEC_HELPER_NAME, (int) (slash - program), program) < 0)
                        return NULL;
                if (!exec_argv_needs_helper((char *const[]){path, NULL}) && is_executable_file(path))
                        return TAKE_PTR(path);
        }
        return strdup(EXEC_HELPER_COMPILED);
}

/* The running program's path; NULL without /proc. (A path ending in " (deleted)" after the file was
 * replaced still names its directory.) */
static char *self_executable(void) {
        char buf[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

        if (n <= 0)
                return NULL;
        buf[n] = '\0';
        return strdup(buf);
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
        return APPEND(m, "SyslogIdentifier", "s", ident);
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
        int k;

        if ((k = sd_bus_message_open_container(m, 'r', "sv")) < 0 ||
            (k = sd_bus_message_append(m, "s", "ExecStart")) < 0 ||
            (k = sd_bus_message_open_container(m, 'v', "a(sasb)")) < 0 ||
            (k = sd_bus_message_open_container(m, 'a', "(sasb)")) < 0 ||
            (k = sd_bus_message_open_container(m, 'r', "sasb")) < 0 ||
            (k = sd_bus_message_append(m, "s", helper ? exec_helper_path : argv[0])) < 0 ||
            (k = sd_bus_message_open_container(m, 'a', "s")) < 0)
                return k;
        if (helper && (k = sd_bus_message_append(m, "s", exec_helper_path)) < 0)
                return k;
        for (size_t i = 0; argv[i]; i++) {
                _cleanup_free_ char *hex = NULL;
                if (helper && !(hex = exec_hex_encode(argv[i])))
                        return -ENOMEM;
                if ((k = sd_bus_message_append(m, "s", helper ? hex : argv[i])) < 0)
                        return k;
        }
        if ((k = sd_bus_message_close_container(m)) < 0 || (k = sd_bus_message_append(m, "b", 0)) < 0)
                return k;
        for (int i = 0; i < 4; i++)
                if ((k = sd_bus_message_close_container(m)) < 0)
                        return k;
        return helper ? append_syslog_identifier(m, argv[0]) : 0;
}

static int append_environment(sd_bus_message *m, const Launch *l) {
        char buf[64];
        _cleanup_free_ char *task = NULL;
        int k;

        if ((k = sd_bus_message_open_container(m, 'r', "sv")) < 0 ||
            (k = sd_bus_message_append(m, "s", "Environment")) < 0 ||
            (k = sd_bus_message_open_container(m, 'v', "as")) < 0 ||
            (k = sd_bus_message_open_container(m, 'a', "s")) < 0)
                return k;
        for (size_t i = 0; l->def->environment && l->def->environment[i]; i++)
                if ((k = sd_bus_message_append(m, "s", l->def->environment[i])) < 0)
                        return k;
        snprintf(buf, sizeof(buf), "ASYNCTASK_ID=%" PRIu64, l->id);
        if ((k = sd_bus_message_append(m, "s", buf)) < 0)
                return k;
        snprintf(buf, sizeof(buf), "ASYNCTASK_ATTEMPT=%u", l->attempt);
        if ((k = sd_bus_message_append(m, "s", buf)) < 0)
                return k;
        if (!l->def->is_command) {
                if (asprintf(&task, "ASYNCTASK_TASK=%s", l->def->name) < 0)
                        return -ENOMEM;
                if ((k = sd_bus_message_append(m, "s", task)) < 0)
                        return k;
        }
        for (int i = 0; i < 3; i++)
                if ((k = sd_bus_message_close_container(m)) < 0)
                        return k;
        return 0;
}

static int append_log_extra_fields(sd_bus_message *m, const Launch *l) {
        char id[64];
        _cleanup_free_ char *task = NULL;
        int k;

        snprintf(id, sizeof(id), "ASYNCTASK_ID=%" PRIu64, l->id);
        if ((k = sd_bus_message_open_container(m, 'r', "sv")) < 0 ||
            (k = sd_bus_message_append(m, "s", "LogExtraFields")) < 0 ||
            (k = sd_bus_message_open_container(m, 'v', "aay")) < 0 ||
            (k = sd_bus_message_open_container(m, 'a', "ay")) < 0 ||
            (k = sd_bus_message_append_array(m, 'y', id, strlen(id))) < 0)
                return k;
        if (!l->def->is_command) {
                if (asprintf(&task, "ASYNCTASK_TASK=%s", l->def->name) < 0)
                        return -ENOMEM;
                if ((k = sd_bus_message_append_array(m, 'y', task, strlen(task))) < 0)
                        return k;
        }
        for (int i = 0; i < 3; i++)
                if ((k = sd_bus_message_close_container(m)) < 0)
                        return k;
        return 0;
}

/* A "(bas)" property: an allow list (SystemCallFilter=, RestrictAddressFamilies=). */
static int append_allow_list(sd_bus_message *m, const char *name, char *const *list) {
        int k;

        if ((k = sd_bus_message_open_container(m, 'r', "sv")) < 0 ||
            (k = sd_bus_message_append(m, "s", name)) < 0 ||
            (k = sd_bus_message_open_container(m, 'v', "(bas)")) < 0 ||
            (k = sd_bus_message_open_container(m, 'r', "bas")) < 0 ||
            (k = sd_bus_message_append(m, "b", 1)) < 0 ||
            (k = sd_bus_message_append_strv(m, (char **) list)) < 0)
                return k;
        for (int i = 0; i < 3; i++)
                if ((k = sd_bus_message_close_container(m)) < 0)
                        return k;
        return 0;
}

/* root: the task runs as uid 0 (its "user" resolved at load). */
static int append_sandbox(sd_bus_message *m, const Sandbox *s, bool root) {
        static char *const syscalls[] = {"@system-service", NULL};
        static char *const families[] = {"AF_UNIX", "AF_INET", "AF_INET6", NULL};
        int k;

        if ((k = APPEND(m, "ProtectSystem", "s", s->protect_system ?: "strict")) < 0 ||
            (k = APPEND(m, "ProtectHome", "s", s->protect_home ?: "true")) < 0 ||
            (k = APPEND(m, "PrivateTmp", "b", (int) s->private_tmp)) < 0 ||
            (k = APPEND(m, "PrivateDevices", "b", (int) s->private_devices)) < 0 ||
            (k = APPEND(m, "PrivateNetwork", "b", (int) s->private_network)) < 0 ||
            (k = APPEND(m, "NoNewPrivileges", "b", (int) s->no_new_privileges)) < 0)
                return k;
        if (s->read_write_paths && s->read_write_paths[0]) {
                if ((k = sd_bus_message_open_container(m, 'r', "sv")) < 0 ||
                    (k = sd_bus_message_append(m, "s", "ReadWritePaths")) < 0 ||
                    (k = sd_bus_message_open_container(m, 'v', "as")) < 0 ||
                    (k = sd_bus_message_append_strv(m, s->read_write_paths)) < 0 ||
                    (k = sd_bus_message_close_container(m)) < 0 ||
                    (k = sd_bus_message_close_container(m)) < 0)
                        return k;
        }

        /* Always on: what a task started by a queue has no business doing. */
        if ((k = APPEND(m, "ProtectKernelTunables", "b", 1)) < 0 ||
            (k = APPEND(m, "ProtectKernelModules", "b", 1)) < 0 ||
            (k = APPEND(m, "ProtectKernelLogs", "b", 1)) < 0 ||
            (k = APPEND(m, "ProtectControlGroups", "b", 1)) < 0 ||
            (k = APPEND(m, "ProtectClock", "b", 1)) < 0 || (k = APPEND(m, "ProtectHostname", "b", 1)) < 0 ||
            (k = APPEND(m, "RestrictRealtime", "b", 1)) < 0 ||
            (k = APPEND(m, "LockPersonality", "b", 1)) < 0 ||
            /* The mask of namespaces a task may create: none. */
            (k = APPEND(m, "RestrictNamespaces", "t", (uint64_t) 0)) < 0 ||
            (k = APPEND(m, "SystemCallArchitectures", "as", 1, "native")) < 0 ||
            (k = APPEND(m, "UMask", "u", (uint32_t) 0027)) < 0)
                return k;
        /* The system calls of an ordinary service (systemd.exec(5), "@system-service"); anything else
         * (mount, swap, reboot, module, raw I/O, debugging...) fails with EPERM rather than killing
         * the task. Sockets: local, IPv4 and IPv6 only (no netlink, packet, bluetooth...). */
        if ((k = append_allow_list(m, "SystemCallFilter", syscalls)) < 0 ||
            (k = APPEND(m, "SystemCallErrorNumber", "i", (int32_t) EPERM)) < 0 ||
            (k = append_allow_list(m, "RestrictAddressFamilies", families)) < 0)
                return k;
        /* No task creates setuid or setgid files (a task running as X could otherwise leave a
         * setuid-X program for any local user), whether or not it may run such programs. */
        if ((k = APPEND(m, "RestrictSUIDSGID", "b", 1)) < 0)
                return k;
        /* With no_new_privileges (the default) a task cannot gain privileges through setuid or file
         * capabilities, so a task not running as root never has a capability and none may be in
         * its bounding set. no_new_privileges: false is for tasks that run setuid programs: those
         * keep the bounding set. */
        if (s->no_new_privileges && !root &&
            ((k = APPEND(m, "CapabilityBoundingSet", "t", (uint64_t) 0)) < 0 ||
             (k = APPEND(m, "AmbientCapabilities", "t", (uint64_t) 0)) < 0))
                return k;
        return 0;
}

/* "asynctask task <id> (<name>)", with the name cut at a character boundary (D-Bus strings must be
 * valid UTF-8) and control characters (a raw command may hold newlines) shown as spaces. */
static char *make_description(uint64_t id, const char *name) {
        char shown[201];
        size_t n = strnlen(name, sizeof(shown) - 1);

        if (name[n] != 0)
                while (n > 0 && ((unsigned char) name[n] & 0xc0) == 0x80)
                        n--;
        memcpy(shown, name, n);
        shown[n] = 0;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) shown[i] < 0x20 || shown[i] == 0x7f)
                        shown[i] = ' ';
        char *d;
        if (asprintf(&d, "asynctask task %" PRIu64 " (%s%s)", id, shown, name[n] ? "..." : "") < 0)
                return NULL;
        return d;
}

/* Builds the whole StartTransientUnit call from the task definition and the launch. */
static int build_start_message(sd_bus *bus, const Launch *l, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const TaskDef *def = l->def;
        _cleanup_free_ char *description = NULL;
        char unit[64];
        int k;

        snprintf(unit, sizeof(unit), UNIT_PREFIX "%" PRIu64 UNIT_SUFFIX, l->id);
        description = make_description(l->id, def->name ?: "");
        if (!description)
                return -ENOMEM;

        k = sd_bus_message_new_method_call(bus, &m, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           "StartTransientUnit");
        if (k < 0)
                return k;
        if ((k = sd_bus_message_append(m, "ss", unit, "fail")) < 0 ||
            (k = sd_bus_message_open_container(m, 'a', "(sv)")) < 0)
                return k;

        if ((k = APPEND(m, "Description", "s", description)) < 0 ||
            (k = APPEND(m, "Type", "s", "exec")) < 0 || (k = append_exec_start(m, l->argv)) < 0 ||
            (k = APPEND(m, "User", "s", def->user ?: "nobody")) < 0 ||
            (def->group && (k = APPEND(m, "Group", "s", def->group)) < 0) ||
            (k = APPEND(m, "WorkingDirectory", "s", def->working_directory ?: "/")) < 0 ||
            (k = append_environment(m, l)) < 0 || (k = append_log_extra_fields(m, l)) < 0 ||
            (k = APPEND(m, "StandardOutput", "s", "journal")) < 0 ||
            (k = APPEND(m, "StandardError", "s", "journal")) < 0 ||
            (k = APPEND(m, "Slice", "s", TASK_SLICE)) < 0 ||
            /* The result outlives the process (and both daemons) until the front has recorded it. */
            (k = APPEND(m, "RemainAfterExit", "b", 1)) < 0 ||
            /* cancel: TERM, then KILL after the same grace period as the direct executor. */
            (k = APPEND(m, "TimeoutStopUSec", "t", (uint64_t) KILL_GRACE_USEC)) < 0 ||
            (k = APPEND(m, "CPUAccounting", "b", 1)) < 0 || (k = APPEND(m, "MemoryAccounting", "b", 1)) < 0)
                return k;

        if (l->stdin_data) {
                if ((k = APPEND(m, "StandardInput", "s", "data")) < 0 ||
                    (k = sd_bus_message_open_container(m, 'r', "sv")) < 0 ||
                    (k = sd_bus_message_append(m, "s", "StandardInputData")) < 0 ||
                    (k = sd_bus_message_open_container(m, 'v', "ay")) < 0 ||
                    (k = sd_bus_message_append_array(m, 'y', l->stdin_data, l->stdin_len)) < 0 ||
                    (k = sd_bus_message_close_container(m)) < 0 ||
                    (k = sd_bus_message_close_container(m)) < 0)
                        return k;
        }
        if (def->timeout_sec > 0 &&
            (k = APPEND(m, "RuntimeMaxUSec", "t", (uint64_t) def->timeout_sec * USEC_PER_SEC)) < 0)
                return k;
        if (def->memory_max > 0 && (k = APPEND(m, "MemoryMax", "t", def->memory_max)) < 0)
                return k;
        /* cpu_quota is a percentage of one CPU: 50% = 500 ms of CPU time per second. */
        if (def->cpu_quota > 0 &&
            (k = APPEND(m, "CPUQuotaPerSecUSec", "t", (uint64_t) def->cpu_quota * (USEC_PER_SEC / 100))) < 0)
                return k;
        if (def->has_nice && (k = APPEND(m, "Nice", "i", (int32_t) def->nice)) < 0)
                return k;
        /* No user: "nobody" (above). */
        if ((k = append_sandbox(m, &def->sandbox, def->user && def->uid == 0)) < 0)
                return k;

        if ((k = sd_bus_message_close_container(m)) < 0 ||
            (k = sd_bus_message_append(m, "a(sa(sv))", 0)) < 0)
                return k;
        *ret = TAKE_PTR(m);
        return 0;
}

static int systemd_launch(Executor *e, const Launch *l) {
        SystemdExecutor *x = (SystemdExecutor *) e;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        Run *r;
        int k;

        if (!l || !l->def || l->id == 0 || !l->argv || !l->argv[0] || (l->stdin_len > 0 && !l->stdin_data))
                return -EINVAL;
        if (run_find(x, l->id))
                return -EEXIST;

        k = build_start_message(x->bus, l, &m);
        if (k < 0)
                return log_task_internal(LOG_ERR, k, l->id, l->def->name, NULL,
                                         "Failed to build the unit for task %" PRIu64 ": %m", l->id);
        k = run_new(x, l->id, RUN_STARTING, &r);
        if (k < 0)
                return log_task_internal(LOG_ERR, k, l->id, l->def->name, NULL,
                                         "Failed to track task %" PRIu64 ": %m", l->id);
        r->start_msg = TAKE_PTR(m); /* kept: a UnitExists retry sends a copy */
        k = run_send_start(r);
        if (k < 0) {
                run_free(r);
                return log_task_internal(LOG_ERR, k, l->id, l->def->name, NULL,
                                         "Failed to start the unit of task %" PRIu64 ": %m", l->id);
        }
        log_task(LOG_DEBUG, l->id, l->def->name, r->unit, "Starting %s", r->unit);
        return 0;
}

static int systemd_stop(Executor *e, uint64_t id) {
        SystemdExecutor *x = (SystemdExecutor *) e;
        Run *r = run_find(x, id);

        if (!r)
                return -ESRCH;
        if (r->state == RUN_FINISHED)
                return 0; /* it had already ended; its result stands */
        if (r->stop_requested)
                return 0;
        r->stop_requested = true;
        log_task(LOG_INFO, id, NULL, r->unit, "Stopping %s on request", r->unit);
        if (r->state == RUN_STARTING) {
                if (r->retry_timer) {
                        r->retry_timer = sd_event_source_disable_unref(r->retry_timer);
                        run_report_start_failure(r, "stopped");
                }
                return 0; /* sent once the start reply is in */
        }
        return run_send_stop(r);
}

/* Releasing a unit: StopUnit, then ResetFailedUnit. A call PID 1 left unanswered (daemon-reexec) is
 * sent again, or the unit, kept by RemainAfterExit=, would stay loaded until the launcher restarts. */
static int on_reset_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Run *r = userdata;

        if (reply_peer_left(m) &&
            call_manager(r->x, "ResetFailedUnit", on_reset_reply, r, &r->call, "s", r->unit) >= 0)
                return 0;
        run_free(r);
        return 0;
}

static int on_release_stop_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Run *r = userdata;
        int k;

        if (reply_peer_left(m))
                k = call_manager(r->x, "StopUnit", on_release_stop_reply, r, &r->call, "ss", r->unit,
                                 "replace");
        else
                /* A failed unit stays loaded until reset; an inactive one is collected by itself. */
                k = call_manager(r->x, "ResetFailedUnit", on_reset_reply, r, &r->call, "s", r->unit);
        if (k < 0)
                run_free(r);
        return 0;
}

static int systemd_release(Executor *e, uint64_t id) {
        SystemdExecutor *x = (SystemdExecutor *) e;
        Run *r = run_find(x, id);
        int k;

        if (!r)
                return -ESRCH;
        if (r->state != RUN_FINISHED)
                return -EBUSY;
        r->state = RUN_RELEASING;
        r->getall = call_free(r->getall);
        r->call = call_free(r->call);
        k = call_manager(x, "StopUnit", on_release_stop_reply, r, &r->call, "ss", r->unit, "replace");
        if (k < 0) {
                log_task_internal(LOG_WARNING, k, id, NULL, r->unit, "Failed to release %s: %m", r->unit);
                run_free(r);
        }
        return 0;
}

static int on_list_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SystemdExecutor *x = userdata;
        const char *e = reply_error(m);
        const char *name, *desc, *load, *active, *sub, *following, *job_type, *path, *job_path;
        uint32_t job_id;
        unsigned n = 0;
        int k;

        if (e) {
                /* Nothing better to wait for: units still running will be given up by the front. */
                log_error("Failed to list the asynctask units left from before: %s", e);
                goto done;
        }
        k = sd_bus_message_enter_container(m, 'a', "(ssssssouso)");
        if (k < 0)
                goto bad;
        while ((k = sd_bus_message_read(m, "(ssssssouso)", &name, &desc, &load, &active, &sub, &following,
                                        &path, &job_id, &job_type, &job_path)) > 0) {
                uint64_t id;
                Run *r;

                if (unit_name_to_id(name, &id) < 0) {
                        log_debug("Ignoring unit '%s': not a name this executor creates", name);
                        continue;
                }
                if (run_find(x, id))
                        continue; /* launched since the listing was asked for */
                k = run_new(x, id, RUN_RECOVERING, &r);
                if (k < 0) {
                        log_error_errno(k, "Failed to watch %s: %m", name);
                        continue;
                }
                snprintf(r->props.active_state, sizeof(r->props.active_state), "%s", active);
                snprintf(r->props.sub_state, sizeof(r->props.sub_state), "%s", sub);
                r->props.job_id = job_id;
                x->n_recovering++;
                run_refresh(r);
                n++;
        }
        if (k < 0)
                goto bad;
        if (n > 0)
                log_info("Found %u asynctask unit(s) left from before", n);
        goto done;
bad:
        log_error_errno(k, "Failed to parse the list of asynctask units: %m");
done:
        x->listing = false;
        executor_check_ready(x);
        return 0;
}

static int on_subscribe_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *e = reply_error(m);

        if (e && !reply_has_error(m, "org.freedesktop.systemd1.AlreadySubscribed"))
                log_warning("Failed to subscribe to systemd's signals, ignoring: %s", e);
        return 0;
}

static Executor *systemd_free(Executor *e) {
        SystemdExecutor *x = (SystemdExecutor *) e;

        if (!x)
                return NULL;
        while (x->runs)
                run_free(x->runs);
        call_free(x->list_call);
        while (x->queue)
                call_free(x->queue);
        sd_bus_slot_unref(x->job_removed_slot);
        sd_bus_slot_unref(x->properties_slot);
        /* Flush writes out what is queued (a release's StopUnit); it does not wait for replies. */
        sd_bus_flush_close_unref(x->bus);
        sd_event_unref(x->event);
        free(x);
        return NULL;
}

static bool systemd_ready(Executor *e) {
        return ((SystemdExecutor *) e)->ready;
}

static const ExecutorOps systemd_ops = {
        .name = "systemd",
        .launch = systemd_launch,
        .stop = systemd_stop,
        .release = systemd_release,
        .free = systemd_free,
        .ready = systemd_ready,
};

/* Everything after the connection: signals, listing. Split out so that tests can hand in a bus. */
static int executor_systemd_new_with_bus(sd_event *event, sd_bus *bus, const ExecutorEvents *events,
                                         void *userdata, Executor **ret) {
        SystemdExecutor *x;
        int k;

        x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->base.ops = &systemd_ops;
        x->event = sd_event_ref(event);
        x->bus = sd_bus_ref(bus);
        if (events)
                x->events = *events;
        x->userdata = userdata;

        k = sd_bus_match_signal_async(bus, &x->job_removed_slot, SYSTEMD_SERVICE, SYSTEMD_PATH,
                                      SYSTEMD_MANAGER, "JobRemoved", on_job_removed, NULL, x);
        if (k >= 0)
                k = sd_bus_add_match_async(
                        bus, &x->properties_slot,
                        "type='signal',sender='" SYSTEMD_SERVICE "',"
                        "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                        "path_namespace='" SYSTEMD_UNIT_PREFIX "'",
                        on_properties_changed, NULL, x);
        /* PID 1 emits unit signals on the system bus only while some client is subscribed. */
        if (k >= 0)
                k = call_manager(x, "Subscribe", on_subscribe_reply, NULL, NULL, "");
        /* Units are matched by name in the callback; patterns and all states here (an empty list). */
        x->listing = true;
        if (k >= 0)
                k = call_manager(x, "ListUnitsByPatterns", on_list_reply, x, &x->list_call, "asas", 0, 1,
                                 UNIT_PREFIX "*" UNIT_SUFFIX);
        if (k < 0) {
                systemd_free(&x->base);
                return k;
        }
        *ret = &x->base;
        return 0;
}

int executor_systemd_new(sd_event *event, const ExecutorEvents *events, void *userdata, Executor **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL; /* executor holds its own ref; never close here */
        static char *helper_found; /* kept for the life of the process, as exec_helper_path */
        int k;

        if (!event || !ret)
                return -EINVAL;
        if (!helper_found) {
                _cleanup_free_ char *self = self_executable();

                helper_found = exec_helper_find(self);
                if (!helper_found)
                        return -ENOMEM;
                exec_helper_path = helper_found;
                if (is_executable_file(exec_helper_path))
                        log_debug("Task arguments systemd would alter go through %s.", exec_helper_path);
                else
                        log_warning(
                                "%s not found next to %s nor at %s: tasks with '$', ';', '\\' or non-ASCII "
                                "bytes in their arguments will fail to start.",
                                EXEC_HELPER_NAME, self ? self : "this program", EXEC_HELPER_COMPILED);
        }
        /* Connecting is a local socket; authentication and Hello then run on the event loop. */
        k = sd_bus_open_system_with_description(&bus, "asynctask-launcher");
        if (k < 0)
                return k;
        k = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (k < 0)
                return k;
        /* Without the bus the launcher can neither start nor watch units. It exits (the event loop
         * ends with failure) and systemd restarts it; the units and their results are still there and
         * are found again by the listing at start. */
        k = sd_bus_set_exit_on_disconnect(bus, 1);
        if (k < 0)
                return k;
        return executor_systemd_new_with_bus(event, bus, events, userdata, ret);
}
