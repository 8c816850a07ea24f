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

#define SYSTEMD_UNIT_PREFIX "/org/freedesktop/systemd1/unit"

/* A release and a new launch of the same id can overlap: the old unit is still being collected
 * when the new start arrives (UnitExists). Retry that many times, this far apart. */
#define UNIT_EXISTS_RETRIES    40
#define UNIT_EXISTS_RETRY_USEC (50 * USEC_PER_MSEC)

/* A unit whose child could not enter its cgroup (219/CGROUP: PID 1's own race shortly after a
 * daemon-reexec) never ran its program: it is reset and started again, at most that many times, this
 * long after (unit_result_start_transient()). Not an attempt of the task's. */
#define CGROUP_RELAUNCHES_MAX      3
#define CGROUP_RELAUNCH_DELAY_USEC (1 * USEC_PER_SEC)

typedef enum RunState {
        RUN_STARTING,   /* StartTransientUnit in flight */
        RUN_RECOVERING, /* found at creation, first GetAll in flight; nothing reported yet */
        RUN_RUNNING,    /* started reported */
        RUN_FINISHED,   /* finished reported; unit kept until release() */
        RUN_RELEASING,  /* StopUnit/ResetFailedUnit in flight; invisible to lookups */
} RunState;

typedef struct SystemdExecutor SystemdExecutor;

typedef struct Run {
        SystemdExecutor *x;
        struct Run *prev, *next;
        uint64_t id;
        RunState state;
        char unit[UNIT_NAME_SIZE];
        char *path;

        /* Kept until the program is known to have run (or the run ended), to send again. */
        sd_bus_message *start_msg;
        int stdin_fd; /* the launch's stdin, a sealed memfd, as long; or -1 */
        bool start_msg_sent;
        unsigned start_retries;
        unsigned relaunches;   /* starts again after 219/CGROUP */
        bool start_unanswered; /* PID 1 left the bus before answering a start: the unit may exist */
        sd_event_source *retry_timer;

        BusCall *call;      /* start / stop / reset in flight or queued */
        BusCall *getall;    /* GetAll in flight or queued */
        bool refresh_again; /* something changed while GetAll was in flight */

        char *start_job;           /* object path of the start job */
        char start_job_result[32]; /* from JobRemoved: "done", "failed", ... ("" unknown) */
        bool stop_requested;
        bool stop_sent;
        UnitProps props; /* updated from PropertiesChanged payloads and GetAll replies */
} Run;

struct SystemdExecutor {
        Executor base;
        sd_event *event;
        sd_bus *bus;
        ExecutorEvents events;
        void *userdata;
        sd_bus_slot *job_removed_slot;
        sd_bus_slot *properties_slot;
        BusCall *list_call;
        bool listing;          /* ListUnitsByPatterns not answered yet */
        unsigned n_recovering; /* runs in RUN_RECOVERING */
        bool ready;            /* both done: ready reported */
        BusCallQueue calls;
        Run *runs;
};

static void run_refresh(Run *run);

static Run *run_find(SystemdExecutor *x, uint64_t id) {
        for (Run *run = x->runs; run; run = run->next)
                if (run->id == id && run->state != RUN_RELEASING)
                        return run;
        return NULL;
}

/* Whether an earlier run of id is still being released: its unit, not one of ours, may answer to
 * the name until then. */
static bool run_releasing(SystemdExecutor *x, uint64_t id) {
        for (Run *run = x->runs; run; run = run->next)
                if (run->id == id && run->state == RUN_RELEASING)
                        return true;
        return false;
}

/* The start is answered, or given up: what it took to send it again goes. */
static void run_start_done(Run *run) {
        run->start_msg = sd_bus_message_unref(run->start_msg);
        if (run->stdin_fd >= 0)
                (void) close(run->stdin_fd);
        run->stdin_fd = -1;
}

static Run *run_free(Run *run) {
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
        run_start_done(run);
        free(run->start_job);
        free(run->path);
        free(run);
        return NULL;
}

static int run_new(SystemdExecutor *x, uint64_t id, RunState state, Run **ret) {
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

static void run_report_finished(Run *run, const RunResult *result) {
        SystemdExecutor *x = run->x;

        run->state = RUN_FINISHED;
        run->getall = bus_call_free(run->getall);
        run_start_done(run);
        /* The launcher logs the outcome for the task; here only what helps debugging the unit. */
        log_task(LOG_DEBUG, run->id, NULL, run->unit, "%s finished: %s%s%s", run->unit, result->result,
                 result->error[0] ? ", " : "", result->error);
        if (x->events.finished)
                x->events.finished(x->userdata, run->id, result);
}

static void run_report_start_failure(Run *run, const char *message) {
        RunResult result;

        run_start_done(run);
        unit_result_start_failed(run->unit, message, run->stop_requested, &result);
        run_report_finished(run, &result);
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

static int run_relaunch(Run *run);

/* The program is known to have run: the start can never be sent again. */
static void run_forget_start_if_ran(Run *run) {
        if (run->props.active_enter_usec > 0 || streq(run->start_job_result, "done"))
                run_start_done(run);
}

static void run_evaluate(Run *run) {
        SystemdExecutor *x = run->x;
        RunResult result;

        if (run->state == RUN_RECOVERING) {
                x->n_recovering--;
                if (unit_result_props_finished(&run->props)) {
                        unit_result_decode(&run->props, run->start_job_result, false, &result);
                        run_report_finished(run, &result);
                } else {
                        run->state = RUN_RUNNING;
                        log_task(LOG_INFO, run->id, NULL, run->unit, "%s is still running, resuming it",
                                 run->unit);
                        if (x->events.started)
                                x->events.started(x->userdata, run->id, run->unit);
                }
                executor_check_ready(x);
                return;
        }
        if (run->state != RUN_RUNNING)
                return;
        run_forget_start_if_ran(run);
        if (!unit_result_props_finished(&run->props))
                return;
        unit_result_decode(&run->props, run->start_job_result, run->stop_requested, &result);
        if (!run->stop_requested && run->start_msg &&
            unit_result_start_transient(&run->props, run->start_job_result)) {
                if (run->relaunches < CGROUP_RELAUNCHES_MAX && run_relaunch(run) >= 0)
                        return;
                if (run->relaunches > 0) {
                        size_t n = strlen(result.error);
                        snprintf(result.error + n, sizeof(result.error) - n, "; tried %u times",
                                 run->relaunches + 1);
                }
        }
        run_report_finished(run, &result);
}

/* The task's STATUS= (units have NotifyAccess=all), passed on while the run is live. */
static void run_report_progress(Run *run) {
        SystemdExecutor *x = run->x;
        _cleanup_free_ char *text = NULL;

        if (run->state != RUN_RUNNING || !x->events.progress)
                return;
        text = progress_text_clean(run->props.status_text, strlen(run->props.status_text));
        if (text)
                x->events.progress(x->userdata, run->id, text);
}

static int on_getall_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Run *run = userdata;
        const char *e = bus_call_reply_error(m);
        UnitProps fresh;
        int r;

        if (run->state == RUN_FINISHED || run->state == RUN_RELEASING)
                return 0;

        if (e && bus_call_reply_peer_left(m)) {
                /* The change that made us ask may have been the last one: ask again. */
                log_task(LOG_INFO, run->id, NULL, run->unit, "Reading the properties of %s again: %s",
                         run->unit, e);
                run->refresh_again = false;
                run_refresh(run);
                return 0;
        }
        if (e) {
                log_task(LOG_WARNING, run->id, NULL, run->unit, "Failed to read the properties of %s: %s",
                         run->unit, e);
                if (run->state == RUN_RECOVERING) {
                        /* Cannot tell; treat it as running so the next change or a stop settles it. */
                        run->props.job_id = 1;
                        run_evaluate(run);
                }
                return 0;
        }

        fresh = run->props;
        r = unit_result_props_update(&fresh, m);
        if (r < 0) {
                log_task(LOG_WARNING, run->id, NULL, run->unit, "Failed to parse the properties of %s: %s",
                         run->unit, strerror(-r));
                return 0;
        }
        if (streq(fresh.load_state, "not-found")) {
                /* The unit was collected (stopped by us or someone else): a freshly loaded stub says
                 * nothing about the run, what its last signals told us is all there is. */
                run->props.job_id = 0;
                if (!unit_result_props_finished(&run->props))
                        snprintf(run->props.active_state, sizeof(run->props.active_state), "inactive");
        } else
                run->props = fresh;

        if (run->refresh_again) {
                run->refresh_again = false;
                run_refresh(run);
                return 0;
        }
        /* Before the result: the last progress of a run that has just ended belongs before its end. */
        run_report_progress(run);
        run_evaluate(run);
        return 0;
}

/* GetAll of every property of the unit (interface "": all of them). */
static int run_send_getall(Run *run) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(run->x->bus, &m, SYSTEMD_SERVICE, run->path,
                                           "org.freedesktop.DBus.Properties", "GetAll");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", "");
        if (r < 0)
                return r;
        return bus_call_start(&run->x->calls, m, on_getall_reply, run, &run->getall);
}

/* Re-reads the unit's properties; at most one call in flight. */
static void run_refresh(Run *run) {
        int r;

        if (run->getall) {
                run->refresh_again = true;
                return;
        }
        r = run_send_getall(run);
        if (r < 0) {
                log_task(LOG_WARNING, run->id, NULL, run->unit, "Failed to query %s: %s", run->unit,
                         strerror(-r));
                if (run->state == RUN_RECOVERING) {
                        /* As when the query fails: running, until a change or a stop settles it. */
                        run->props.job_id = 1;
                        run_evaluate(run);
                }
        }
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SystemdExecutor *x = userdata;
        _cleanup_free_ char *name = NULL;
        const char *iface;
        uint64_t id;
        Run *run;

        /* Every unit's changes arrive here; most are not ours, and are dropped after the path check. */
        if (sd_bus_path_decode(sd_bus_message_get_path(m), SYSTEMD_UNIT_PREFIX, &name) <= 0 ||
            unit_name_to_id(name, &id) < 0)
                return 0;
        run = run_find(x, id);
        if (!run || run->state == RUN_FINISHED)
                return 0;
        if (sd_bus_message_read(m, "s", &iface) >= 0)
                (void) unit_result_props_update(&run->props, m);
        /* Until the start reply arrives, whatever is cached may describe an older unit of that name. */
        if (run->state == RUN_STARTING)
                return 0;
        run_report_progress(run);
        run_refresh(run);
        return 0;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SystemdExecutor *x = userdata;
        const char *job, *unit, *result;
        uint32_t job_id;
        uint64_t id;
        Run *run;

        if (sd_bus_message_read(m, "uoss", &job_id, &job, &unit, &result) < 0)
                return 0;
        if (unit_name_to_id(unit, &id) < 0)
                return 0;
        run = run_find(x, id);
        if (!run || !run->start_job || !streq(run->start_job, job))
                return 0;
        snprintf(run->start_job_result, sizeof(run->start_job_result), "%s", result);
        if (run->state == RUN_RUNNING)
                run_refresh(run);
        return 0;
}

static int run_send_stop(Run *run);

static int on_stop_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Run *run = userdata;
        const char *e = bus_call_reply_error(m);

        if (e && bus_call_reply_peer_left(m) && run->state != RUN_FINISHED) {
                /* A cancel must not be lost to a daemon-reexec: later requests see stop_sent. */
                log_task(LOG_INFO, run->id, NULL, run->unit, "Stopping %s again: %s", run->unit, e);
                (void) run_send_stop(run);
                return 0;
        }
        if (e && !bus_call_reply_has_error(m, "org.freedesktop.systemd1.NoSuchUnit"))
                log_task(LOG_WARNING, run->id, NULL, run->unit, "Failed to stop %s: %s", run->unit, e);
        if (run->state == RUN_RUNNING)
                run_refresh(run);
        return 0;
}

static int run_send_stop(Run *run) {
        int r;

        run->stop_sent = true;
        run->call = bus_call_free(run->call);
        r = bus_call_manager(&run->x->calls, "StopUnit", on_stop_reply, run, &run->call, "ss", run->unit,
                             "replace");
        if (r < 0)
                return log_task_internal(LOG_WARNING, r, run->id, NULL, run->unit, "Failed to stop %s: %m",
                                         run->unit);
        return 0;
}

static int run_send_start(Run *run);

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Run *run = userdata;

        run->retry_timer = sd_event_source_disable_unref(run->retry_timer);
        if (run_send_start(run) < 0)
                run_report_start_failure(run, "could not send the start request");
        return 0;
}

/* The failed unit is reset (the name free again once PID 1 collects it; a start before that meets
 * UnitExists and is retried as usual), then the start is sent again a little later. */
static int on_relaunch_reset_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Run *run = userdata;
        const char *e = bus_call_reply_error(m);
        int r;

        if (bus_call_reply_peer_left(m) &&
            bus_call_manager(&run->x->calls, "ResetFailedUnit", on_relaunch_reset_reply, run, &run->call,
                             "s", run->unit) >= 0)
                return 0;
        if (e)
                log_task(LOG_INFO, run->id, NULL, run->unit, "Failed to reset %s, starting it anyway: %s",
                         run->unit, e);
        if (run->stop_requested) {
                run_report_start_failure(run, "stopped");
                return 0;
        }
        r = sd_event_add_time_relative(run->x->event, &run->retry_timer, CLOCK_MONOTONIC,
                                       CGROUP_RELAUNCH_DELAY_USEC, 0, on_retry_timer, run);
        if (r < 0)
                run_report_start_failure(run, "could not schedule the start");
        return 0;
}

/* The unit failed before its program ran, for a reason of PID 1's own (219/CGROUP): back to
 * starting, as a fresh unit of the same name with the same properties and stdin. The launcher still
 * sees the run as running; a stop meanwhile ends it as cancelled. */
static int run_relaunch(Run *run) {
        int r;

        run->call = bus_call_free(run->call);
        r = bus_call_manager(&run->x->calls, "ResetFailedUnit", on_relaunch_reset_reply, run, &run->call,
                             "s", run->unit);
        if (r < 0)
                return log_task_internal(LOG_WARNING, r, run->id, NULL, run->unit, "Failed to reset %s: %m",
                                         run->unit);
        run->relaunches++;
        log_task(LOG_WARNING, run->id, NULL, run->unit,
                 "%s failed before its program ran (status 219/CGROUP: PID 1 could not place it in its "
                 "cgroup), starting task %" PRIu64 " again (%u of at most %u times)",
                 run->unit, run->id, run->relaunches, CGROUP_RELAUNCHES_MAX);
        run->state = RUN_STARTING;
        run->getall = bus_call_free(run->getall);
        run->refresh_again = false;
        free(run->start_job);
        run->start_job = NULL;
        run->start_job_result[0] = 0;
        run->start_unanswered = false;
        run->start_retries = 0;
        unit_result_props_init(&run->props);
        return 0;
}

/* A start PID 1 refused: sent again a little later when PID 1 was away (daemon-reexec), the name is
 * still taken by an older unit being released, or the bus is busy; else the run did not start. */
static void run_start_failed(Run *run, sd_bus_message *m, const char *e) {
        int r;

        if ((bus_call_reply_has_error(m, "org.freedesktop.systemd1.UnitExists") ||
             bus_call_reply_has_error(m, "org.freedesktop.DBus.Error.LimitsExceeded") ||
             bus_call_reply_peer_left(m)) &&
            !run->stop_requested && run->start_retries < UNIT_EXISTS_RETRIES) {
                run->start_retries++;
                r = sd_event_add_time_relative(run->x->event, &run->retry_timer, CLOCK_MONOTONIC,
                                               UNIT_EXISTS_RETRY_USEC, 0, on_retry_timer, run);
                if (r >= 0)
                        return;
        }
        run_report_start_failure(run, e);
}

/* The unit exists: report the start and watch it. m is the start reply, with the start job's path;
 * adopted: the unit was created by a start whose reply was lost (the job's end may have gone with
 * it; GetAll tells). */
static void run_started(Run *run, sd_bus_message *m, bool adopted) {
        SystemdExecutor *x = run->x;
        const char *job;

        free(run->start_job);
        run->start_job = NULL;
        if (!adopted && sd_bus_message_read(m, "o", &job) >= 0)
                run->start_job = strdup(job);
        /* Signals seen so far may have described an older unit of the same name. */
        unit_result_props_init(&run->props);
        run->props.job_id = 1; /* the start job, until GetAll says otherwise */
        run->state = RUN_RUNNING;
        log_task(LOG_DEBUG, run->id, NULL, run->unit, "Started %s", run->unit);
        /* A relaunch: the launcher was told when the first unit of that name started. */
        if (run->relaunches == 0 && x->events.started)
                x->events.started(x->userdata, run->id, run->unit);
        /* The callback may have stopped or released us, but never freed a run it did not release. */
        if (run->state != RUN_RUNNING)
                return;
        if (run->stop_requested && !run->stop_sent)
                (void) run_send_stop(run);
        run_refresh(run);
}

static int on_start_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Run *run = userdata;
        const char *e = bus_call_reply_error(m);

        if (!e) {
                run_started(run, m, false);
                return 0;
        }
        if (bus_call_reply_peer_left(m)) {
                log_task(LOG_INFO, run->id, NULL, run->unit, "Starting %s again: %s", run->unit, e);
                run->start_unanswered = true;
        }
        /* The unanswered start created the unit after all: it is ours, watched as from the listing
         * (unless the previous attempt's unit is still being released: then it may be that one). */
        if (run->start_unanswered && bus_call_reply_has_error(m, "org.freedesktop.systemd1.UnitExists") &&
            !run_releasing(run->x, run->id)) {
                log_task(LOG_INFO, run->id, NULL, run->unit, "%s was created by the unanswered start",
                         run->unit);
                run_started(run, m, true);
        } else
                run_start_failed(run, m, e);
        return 0;
}

/* The start call: the first time start_msg itself, again a copy (a sent message is sealed). Each
 * passes the run's stdin through an open file description of its own, at offset 0: a start left
 * unanswered may have created the unit after all, and its task may be reading. */
static int run_send_start(Run *run) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_close_ int stdin_fd = -1;
        int r;

        if (!run->start_msg_sent) {
                run->start_msg_sent = true;
                return bus_call_start(&run->x->calls, run->start_msg, on_start_reply, run, &run->call);
        }
        if (run->stdin_fd >= 0) {
                stdin_fd = stdin_memfd_reopen(run->stdin_fd);
                if (stdin_fd < 0)
                        return stdin_fd;
        }
        r = unit_properties_copy_start(run->x->bus, run->start_msg, stdin_fd, &m);
        if (r < 0)
                return r;
        return bus_call_start(&run->x->calls, m, on_start_reply, run, &run->call);
}

/* The start call of launch l, kept until it is answered, to be sent again. The launch's stdin goes
 * into a sealed memfd, kept as long (each send passes a reopened description of it). */
static int run_build_start(Run *run, const Launch *l) {
        _cleanup_close_ int stdin_fd = -1;
        int r;

        if (l->stdin_data) {
                r = stdin_memfd_new(l->stdin_data, l->stdin_len);
                if (r < 0)
                        return r;
                run->stdin_fd = r;
                stdin_fd = stdin_memfd_reopen(run->stdin_fd);
                if (stdin_fd < 0)
                        return stdin_fd;
        }
        return unit_properties_new_start(run->x->bus, l, stdin_fd, &run->start_msg);
}

static int systemd_launch(Executor *e, const Launch *l) {
        SystemdExecutor *x = (SystemdExecutor *) e;
        Run *run;
        int r;

        if (!l || !l->def || l->id == 0 || !l->argv || !l->argv[0] || (l->stdin_len > 0 && !l->stdin_data))
                return -EINVAL;
        if (run_find(x, l->id))
                return -EEXIST;

        r = run_new(x, l->id, RUN_STARTING, &run);
        if (r < 0)
                return log_task_internal(LOG_ERR, r, l->id, l->def->name, NULL,
                                         "Failed to track task %" PRIu64 ": %m", l->id);
        r = run_build_start(run, l);
        if (r < 0) {
                run_free(run);
                return log_task_internal(LOG_ERR, r, l->id, l->def->name, NULL,
                                         "Failed to build the unit for task %" PRIu64 ": %m", l->id);
        }
        r = run_send_start(run);
        if (r < 0) {
                run_free(run);
                return log_task_internal(LOG_ERR, r, l->id, l->def->name, NULL,
                                         "Failed to start the unit of task %" PRIu64 ": %m", l->id);
        }
        log_task(LOG_DEBUG, l->id, l->def->name, run->unit, "Starting %s", run->unit);
        return 0;
}

static int systemd_stop(Executor *e, uint64_t id) {
        SystemdExecutor *x = (SystemdExecutor *) e;
        Run *run = run_find(x, id);

        if (!run)
                return -ESRCH;
        if (run->state == RUN_FINISHED)
                return 0; /* it had already ended; its result stands */
        if (run->stop_requested)
                return 0;
        run->stop_requested = true;
        log_task(LOG_INFO, id, NULL, run->unit, "Stopping %s on request", run->unit);
        if (run->state == RUN_STARTING) {
                if (run->retry_timer) {
                        run->retry_timer = sd_event_source_disable_unref(run->retry_timer);
                        run_report_start_failure(run, "stopped");
                }
                return 0; /* sent once the start reply is in */
        }
        return run_send_stop(run);
}

/* Releasing a unit: StopUnit, then ResetFailedUnit. A call PID 1 left unanswered (daemon-reexec) is
 * sent again, or the unit, kept by RemainAfterExit=, would stay loaded until the launcher restarts. */
static int on_reset_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Run *run = userdata;

        if (bus_call_reply_peer_left(m) &&
            bus_call_manager(&run->x->calls, "ResetFailedUnit", on_reset_reply, run, &run->call, "s",
                             run->unit) >= 0)
                return 0;
        run_free(run);
        return 0;
}

static int on_release_stop_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Run *run = userdata;
        int r;

        if (bus_call_reply_peer_left(m))
                r = bus_call_manager(&run->x->calls, "StopUnit", on_release_stop_reply, run, &run->call,
                                     "ss", run->unit, "replace");
        else
                /* A failed unit stays loaded until reset; an inactive one is collected by itself. */
                r = bus_call_manager(&run->x->calls, "ResetFailedUnit", on_reset_reply, run, &run->call, "s",
                                     run->unit);
        if (r < 0)
                run_free(run);
        return 0;
}

static int systemd_release(Executor *e, uint64_t id) {
        SystemdExecutor *x = (SystemdExecutor *) e;
        Run *run = run_find(x, id);
        int r;

        if (!run)
                return -ESRCH;
        if (run->state != RUN_FINISHED)
                return -EBUSY;
        run->state = RUN_RELEASING;
        run->getall = bus_call_free(run->getall);
        run->call = bus_call_free(run->call);
        r = bus_call_manager(&x->calls, "StopUnit", on_release_stop_reply, run, &run->call, "ss", run->unit,
                             "replace");
        if (r < 0) {
                log_task_internal(LOG_WARNING, r, id, NULL, run->unit, "Failed to release %s: %m",
                                  run->unit);
                run_free(run);
        }
        return 0;
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
                if (run_find(x, id))
                        continue; /* launched since the listing was asked for */
                r = run_new(x, id, RUN_RECOVERING, &run);
                if (r < 0) {
                        log_error_errno(r, "Failed to watch %s: %m", name);
                        continue;
                }
                snprintf(run->props.active_state, sizeof(run->props.active_state), "%s", active);
                snprintf(run->props.sub_state, sizeof(run->props.sub_state), "%s", sub);
                run->props.job_id = job_id;
                x->n_recovering++;
                run_refresh(run);
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
        executor_check_ready(x);
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
                run_free(x->runs);
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
                                      SYSTEMD_MANAGER, "JobRemoved", on_job_removed, NULL, x);
        if (r < 0)
                return r;
        r = sd_bus_add_match_async(x->bus, &x->properties_slot,
                                   "type='signal',sender='" SYSTEMD_SERVICE "',"
                                   "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                                   "path_namespace='" SYSTEMD_UNIT_PREFIX "'",
                                   on_properties_changed, NULL, x);
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
