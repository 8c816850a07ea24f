/* SPDX-License-Identifier: MIT */
/*
 * systemd executor: every run is its own transient service "asynctask-<id>.service", created by
 * StartTransientUnit on an asynchronous system-bus connection attached to the launcher's sd-event
 * loop. Every property comes from the task definition and the launch (argv, stdin); nothing else
 * (unit-properties.c). The launch's stdin reaches PID 1 as a descriptor of a sealed memfd
 * (stdin-memfd.c), never as a property, which every local user could read.
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
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "launcher/bus-call.h"
#include "launcher/exec-helper.h"
#include "launcher/executor.h"
#include "launcher/progress-text.h"
#include "launcher/stdin-memfd.h"
#include "launcher/unit-name.h"
#include "launcher/unit-properties.h"
#include "launcher/unit-result.h"
#include "shared/log.h"
#include "shared/util.h"
#include "launcher/executor-systemd-run.h"

Run *systemd_run_find(SystemdExecutor *x, uint64_t id) {
        for (Run *run = x->runs; run; run = run->next)
                if (run->id == id && run->state != RUN_RELEASING)
                        return run;
        return NULL;
}

/* Whether an earlier run of id is still being released: its unit, not one of ours, may answer to
 * the name until then. */
bool systemd_run_releasing(SystemdExecutor *x, uint64_t id) {
        for (Run *run = x->runs; run; run = run->next)
                if (run->id == id && run->state == RUN_RELEASING)
                        return true;
        return false;
}

/* The start is answered, or given up: what it took to send it again goes. */
void systemd_run_start_done(Run *run) {
        run->start_msg = sd_bus_message_unref(run->start_msg);
        if (run->stdin_fd >= 0)
                (void) close(run->stdin_fd);
        run->stdin_fd = -1;
}

Run *systemd_run_free(Run *run) {
        if (!run)
                return NULL;
        if (run->x) {
                if (run->prev)
                        run->prev->next = run->next;
                else
                        run->x->runs = run->next;
                if (run->next)
                        run->next->prev = run->prev;
        }
        bus_call_free(run->call);
        bus_call_free(run->getall);
        sd_event_source_disable_unref(run->retry_timer);
        systemd_run_start_done(run);
        free(run->start_job);
        free(run->path);
        free(run);
        return NULL;
}

int systemd_run_new(SystemdExecutor *x, uint64_t id, RunState state, Run **ret) {
        Run *run;
        int r;

        run = calloc(1, sizeof(*run));
        if (!run)
                return -ENOMEM;
        run->id = id;
        run->state = state;
        run->stdin_fd = -1;
        unit_result_props_init(&run->props);
        unit_name_from_id(id, run->unit);
        r = sd_bus_path_encode(SYSTEMD_UNIT_PREFIX, run->unit, &run->path);
        if (r < 0) {
                free(run);
                return r;
        }
        run->x = x;
        run->next = x->runs;
        if (x->runs)
                x->runs->prev = run;
        x->runs = run;
        *ret = run;
        return 0;
}

void systemd_run_report_finished(Run *run, const RunResult *result) {
        SystemdExecutor *x = run->x;

        run->state = RUN_FINISHED;
        run->getall = bus_call_free(run->getall);
        systemd_run_start_done(run);
        /* The launcher logs the outcome for the task; here only what helps debugging the unit. */
        log_task(LOG_DEBUG, run->id, NULL, run->unit, "%s finished: %s%s%s", run->unit, result->result,
                 result->error[0] ? ", " : "", result->error);
        if (x->events.finished)
                x->events.finished(x->userdata, run->id, result);
}

void systemd_run_report_start_failure(Run *run, const char *message) {
        RunResult result;

        systemd_run_start_done(run);
        unit_result_start_failed(run->unit, message, run->stop_requested, &result);
        systemd_run_report_finished(run, &result);
}

/* Ready once the listing is answered and every unit it found has been reported. */
void systemd_executor_check_ready(SystemdExecutor *x) {
        if (x->ready || x->listing || x->n_recovering > 0)
                return;
        x->ready = true;
        log_debug("Every asynctask unit left from before has been reported.");
        if (x->events.ready)
                x->events.ready(x->userdata);
}

static int on_list_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SystemdExecutor *x = userdata;
        const char *e = bus_call_reply_error(m);
        const char *name, *desc, *load, *active, *sub, *following, *job_type, *path, *job_path;
        uint32_t job_id;
        unsigned n = 0;
        int r;

        if (e) {
                /* Nothing better to wait for: units still running will be given up by the front. */
                log_error("Failed to list the asynctask units left from before: %s", e);
                goto done;
        }
        r = sd_bus_message_enter_container(m, 'a', "(ssssssouso)");
        if (r < 0)
                goto bad;
        while ((r = sd_bus_message_read(m, "(ssssssouso)", &name, &desc, &load, &active, &sub, &following,
                                        &path, &job_id, &job_type, &job_path)) > 0) {
                uint64_t id;
                Run *run;

                if (unit_name_to_id(name, &id) < 0) {
                        log_debug("Ignoring unit '%s': not a name this executor creates", name);
                        continue;
                }
                if (systemd_run_find(x, id))
                        continue; /* launched since the listing was asked for */
                r = systemd_run_new(x, id, RUN_RECOVERING, &run);
                if (r < 0) {
                        log_error_errno(r, "Failed to watch %s: %m", name);
                        continue;
                }
                snprintf(run->props.active_state, sizeof(run->props.active_state), "%s", active);
                snprintf(run->props.sub_state, sizeof(run->props.sub_state), "%s", sub);
                run->props.job_id = job_id;
                x->n_recovering++;
                systemd_run_refresh(run);
                n++;
        }
        if (r < 0)
                goto bad;
        if (n > 0)
                log_info("Found %u asynctask unit(s) left from before", n);
        goto done;
bad:
        log_error_errno(r, "Failed to parse the list of asynctask units: %m");
done:
        x->listing = false;
        systemd_executor_check_ready(x);
        return 0;
}

static int on_subscribe_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *e = bus_call_reply_error(m);

        if (e && !bus_call_reply_has_error(m, "org.freedesktop.systemd1.AlreadySubscribed"))
                log_warning("Failed to subscribe to systemd's signals, ignoring: %s", e);
        return 0;
}

static Executor *systemd_free(Executor *e) {
        SystemdExecutor *x = (SystemdExecutor *) e;

        if (!x)
                return NULL;
        while (x->runs)
                systemd_run_free(x->runs);
        bus_call_free(x->list_call);
        bus_call_queue_done(&x->calls);
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
        .delivers_credentials = true,
};

/* The signals first, so that no change of a unit started later can be missed; then the listing of
 * the units left from before. */
static int executor_watch_units(SystemdExecutor *x) {
        int r;

        r = sd_bus_match_signal_async(x->bus, &x->job_removed_slot, SYSTEMD_SERVICE, SYSTEMD_PATH,
                                      SYSTEMD_MANAGER, "JobRemoved", systemd_on_job_removed, NULL, x);
        if (r < 0)
                return r;
        r = sd_bus_add_match_async(x->bus, &x->properties_slot,
                                   "type='signal',sender='" SYSTEMD_SERVICE "',"
                                   "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                                   "path_namespace='" SYSTEMD_UNIT_PREFIX "'",
                                   systemd_on_properties_changed, NULL, x);
        if (r < 0)
                return r;
        /* PID 1 emits unit signals on the system bus only while some client is subscribed. */
        r = bus_call_manager(&x->calls, "Subscribe", on_subscribe_reply, NULL, NULL, "");
        if (r < 0)
                return r;
        /* Units are matched by name in the callback; patterns and all states here (an empty list). */
        x->listing = true;
        return bus_call_manager(&x->calls, "ListUnitsByPatterns", on_list_reply, x, &x->list_call, "asas", 0,
                                1, UNIT_NAME_PREFIX "*" UNIT_NAME_SUFFIX);
}

int executor_systemd_new_with_bus(sd_event *event, sd_bus *bus, const ExecutorEvents *events, void *userdata,
                                  Executor **ret) {
        SystemdExecutor *x;
        int r;

        x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->base.ops = &systemd_ops;
        x->event = sd_event_ref(event);
        x->bus = sd_bus_ref(bus);
        x->calls.bus = x->bus;
        if (events)
                x->events = *events;
        x->userdata = userdata;

        r = executor_watch_units(x);
        if (r < 0) {
                systemd_free(&x->base);
                return r;
        }
        *ret = &x->base;
        return 0;
}

/* Points the unit builder at asynctask-exec where it is found (exec-helper.h), once per process. */
static int executor_find_exec_helper(void) {
        static char *helper_found; /* kept for the life of the process, as unit_properties_exec_helper */
        _cleanup_free_ char *self = NULL;

        if (helper_found)
                return 0;
        self = exec_helper_self();
        helper_found = exec_helper_find(self);
        if (!helper_found)
                return -ENOMEM;
        unit_properties_exec_helper = helper_found;
        if (exec_helper_is_executable(helper_found))
                log_debug("Task arguments systemd would alter go through %s.", helper_found);
        else
                log_warning(
                        "%s not found next to %s nor at %s: tasks with '$', ';', '\\' or non-ASCII bytes in "
                        "their arguments will fail to start.",
                        EXEC_HELPER_NAME, self ? self : "this program", EXEC_HELPER_COMPILED);
        return 0;
}

int executor_systemd_new(sd_event *event, const ExecutorEvents *events, void *userdata, Executor **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL; /* executor holds its own ref; never close here */
        int r;

        if (!event || !ret)
                return -EINVAL;
        r = executor_find_exec_helper();
        if (r < 0)
                return r;
        /* Connecting is a local socket; authentication and Hello then run on the event loop. */
        r = sd_bus_open_system_with_description(&bus, "asynctask-launcher");
        if (r < 0)
                return r;
        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;
        /* Without the bus the launcher can neither start nor watch units. It exits (the event loop
         * ends with failure) and systemd restarts it; the units and their results are still there and
         * are found again by the listing at start. */
        r = sd_bus_set_exit_on_disconnect(bus, 1);
        if (r < 0)
                return r;
        return executor_systemd_new_with_bus(event, bus, events, userdata, ret);
}
