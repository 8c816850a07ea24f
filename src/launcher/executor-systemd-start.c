/* SPDX-License-Identifier: MIT */
/*
 * systemd executor, starting a unit: the StartTransientUnit call built from the launch, kept and sent
 * again while PID 1 was away or the name still taken, and the relaunch of a unit that failed before
 * its program ran (219/CGROUP).
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

static int run_send_start(Run *run);

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Run *run = userdata;

        run->retry_timer = sd_event_source_disable_unref(run->retry_timer);
        if (run_send_start(run) < 0)
                systemd_run_report_start_failure(run, "could not send the start request");
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
                systemd_run_report_start_failure(run, "stopped");
                return 0;
        }
        r = sd_event_add_time_relative(run->x->event, &run->retry_timer, CLOCK_MONOTONIC,
                                       CGROUP_RELAUNCH_DELAY_USEC, 0, on_retry_timer, run);
        if (r < 0)
                systemd_run_report_start_failure(run, "could not schedule the start");
        return 0;
}

/* The unit failed before its program ran, for a reason of PID 1's own (219/CGROUP): back to
 * starting, as a fresh unit of the same name with the same properties and stdin. The launcher still
 * sees the run as running; a stop meanwhile ends it as cancelled. */
int systemd_run_relaunch(Run *run) {
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
        systemd_run_report_start_failure(run, e);
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
                (void) systemd_run_send_stop(run);
        systemd_run_refresh(run);
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
            !systemd_run_releasing(run->x, run->id)) {
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

int systemd_launch(Executor *e, const Launch *l) {
        SystemdExecutor *x = (SystemdExecutor *) e;
        Run *run;
        int r;

        if (!l || !l->def || l->id == 0 || !l->argv || !l->argv[0] || (l->stdin_len > 0 && !l->stdin_data))
                return -EINVAL;
        if (systemd_run_find(x, l->id))
                return -EEXIST;

        r = systemd_run_new(x, l->id, RUN_STARTING, &run);
        if (r < 0)
                return log_task_internal(LOG_ERR, r, l->id, l->def->name, NULL,
                                         "Failed to track task %" PRIu64 ": %m", l->id);
        r = run_build_start(run, l);
        if (r < 0) {
                systemd_run_free(run);
                return log_task_internal(LOG_ERR, r, l->id, l->def->name, NULL,
                                         "Failed to build the unit for task %" PRIu64 ": %m", l->id);
        }
        r = run_send_start(run);
        if (r < 0) {
                systemd_run_free(run);
                return log_task_internal(LOG_ERR, r, l->id, l->def->name, NULL,
                                         "Failed to start the unit of task %" PRIu64 ": %m", l->id);
        }
        log_task(LOG_DEBUG, l->id, l->def->name, run->unit, "Starting %s", run->unit);
        return 0;
}
