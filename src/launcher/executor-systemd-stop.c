/* SPDX-License-Identifier: MIT */
/*
 * systemd executor, ending a unit: stop (StopUnit of a run that is starting or running) and release
 * (StopUnit, then ResetFailedUnit, once its result is taken; then the run is forgotten).
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

static int on_stop_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Run *run = userdata;
        const char *e = bus_call_reply_error(m);

        if (e && bus_call_reply_peer_left(m) && run->state != RUN_FINISHED) {
                /* A cancel must not be lost to a daemon-reexec: later requests see stop_sent. */
                log_task(LOG_INFO, run->id, NULL, run->unit, "Stopping %s again: %s", run->unit, e);
                (void) systemd_run_send_stop(run);
                return 0;
        }
        if (e && !bus_call_reply_has_error(m, "org.freedesktop.systemd1.NoSuchUnit"))
                log_task(LOG_WARNING, run->id, NULL, run->unit, "Failed to stop %s: %s", run->unit, e);
        if (run->state == RUN_RUNNING)
                systemd_run_refresh(run);
        return 0;
}

int systemd_run_send_stop(Run *run) {
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

int systemd_stop(Executor *e, uint64_t id) {
        SystemdExecutor *x = (SystemdExecutor *) e;
        Run *run = systemd_run_find(x, id);

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
                        systemd_run_report_start_failure(run, "stopped");
                }
                return 0; /* sent once the start reply is in */
        }
        return systemd_run_send_stop(run);
}

/* Releasing a unit: StopUnit, then ResetFailedUnit. A call PID 1 left unanswered (daemon-reexec) is
 * sent again, or the unit, kept by RemainAfterExit=, would stay loaded until the launcher restarts. */
static int on_reset_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Run *run = userdata;

        if (bus_call_reply_peer_left(m) &&
            bus_call_manager(&run->x->calls, "ResetFailedUnit", on_reset_reply, run, &run->call, "s",
                             run->unit) >= 0)
                return 0;
        systemd_run_free(run);
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
                systemd_run_free(run);
        return 0;
}

int systemd_release(Executor *e, uint64_t id) {
        SystemdExecutor *x = (SystemdExecutor *) e;
        Run *run = systemd_run_find(x, id);
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
                systemd_run_free(run);
        }
        return 0;
}
