/* SPDX-License-Identifier: MIT */
/*
 * systemd executor, watching a unit: its properties re-read (GetAll) whenever PropertiesChanged or
 * JobRemoved says something changed, and the run's state judged from them: progress, finished, or
 * failed before its program ran (then relaunched). Kept apart from starting and stopping, which
 * only ask for a refresh.
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

/* The program is known to have run: the start can never be sent again. */
static void run_forget_start_if_ran(Run *run) {
        if (run->props.active_enter_usec > 0 || streq(run->start_job_result, "done"))
                systemd_run_start_done(run);
}

static void run_evaluate(Run *run) {
        SystemdExecutor *x = run->x;
        RunResult result;

        if (run->state == RUN_RECOVERING) {
                x->n_recovering--;
                if (unit_result_props_finished(&run->props)) {
                        unit_result_decode(&run->props, run->start_job_result, false, &result);
                        systemd_run_report_finished(run, &result);
                } else {
                        run->state = RUN_RUNNING;
                        log_task(LOG_INFO, run->id, NULL, run->unit, "%s is still running, resuming it",
                                 run->unit);
                        if (x->events.started)
                                x->events.started(x->userdata, run->id, run->unit);
                }
                systemd_executor_check_ready(x);
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
                if (run->relaunches < CGROUP_RELAUNCHES_MAX && systemd_run_relaunch(run) >= 0)
                        return;
                if (run->relaunches > 0) {
                        size_t n = strlen(result.error);
                        snprintf(result.error + n, sizeof(result.error) - n, "; tried %u times",
                                 run->relaunches + 1);
                }
        }
        systemd_run_report_finished(run, &result);
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
                systemd_run_refresh(run);
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
                systemd_run_refresh(run);
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
void systemd_run_refresh(Run *run) {
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

int systemd_on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SystemdExecutor *x = userdata;
        _cleanup_free_ char *name = NULL;
        const char *iface;
        uint64_t id;
        Run *run;

        /* Every unit's changes arrive here; most are not ours, and are dropped after the path check. */
        if (sd_bus_path_decode(sd_bus_message_get_path(m), SYSTEMD_UNIT_PREFIX, &name) <= 0 ||
            unit_name_to_id(name, &id) < 0)
                return 0;
        run = systemd_run_find(x, id);
        if (!run || run->state == RUN_FINISHED)
                return 0;
        if (sd_bus_message_read(m, "s", &iface) >= 0)
                (void) unit_result_props_update(&run->props, m);
        /* Until the start reply arrives, whatever is cached may describe an older unit of that name. */
        if (run->state == RUN_STARTING)
                return 0;
        run_report_progress(run);
        systemd_run_refresh(run);
        return 0;
}

int systemd_on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SystemdExecutor *x = userdata;
        const char *job, *unit, *result;
        uint32_t job_id;
        uint64_t id;
        Run *run;

        if (sd_bus_message_read(m, "uoss", &job_id, &job, &unit, &result) < 0)
                return 0;
        if (unit_name_to_id(unit, &id) < 0)
                return 0;
        run = systemd_run_find(x, id);
        if (!run || !run->start_job || !streq(run->start_job, job))
                return 0;
        snprintf(run->start_job_result, sizeof(run->start_job_result), "%s", result);
        if (run->state == RUN_RUNNING)
                systemd_run_refresh(run);
        return 0;
}
