/* SPDX-License-Identifier: MIT */
#include "front/schedules.h"
#include "shared/calendar.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/util.h"

/* The units asynctask-generator writes for a task (generator/generator.h). */
#define GENERATED_UNIT_PREFIX "asynctask-schedule-"

_printf_(5, 6) static void report(ConfigErrorFn on_error, void *userdata, const TaskDef *t, const char *key,
                                  const char *fmt, ...) {
        char message[768];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
        if (on_error)
                on_error(t->source ? t->source : t->name, key, message, userdata);
}

static bool cannot_run(int r) {
        return r == -ENOENT || r == -EACCES || r == -EPERM;
}

/* 0 or the number of problems of one task; -errno when systemd-analyze failed. */
static int check_task(const TaskDef *t, uint64_t now_usec, ConfigErrorFn on_error, void *userdata) {
        const TaskSchedule *sch = &t->schedule;
        int n_problems = 0, r;

        for (size_t i = 0; i < sch->n_calendars; i++) {
                char key[32], why[512] = "";
                uint64_t next;
                size_t n;

                r = calendar_next_elapses(sch->calendars[i], now_usec, 1, &next, &n, why, sizeof(why));
                if (r == -EINVAL) {
                        if (sch->n_calendars == 1)
                                (void) snprintf(key, sizeof(key), "schedule");
                        else
                                (void) snprintf(key, sizeof(key), "schedule[%zu]", i);
                        report(on_error, userdata, t, key,
                               "'%s' is not a calendar expression systemd accepts (systemd.time(7)): %s",
                               sch->calendars[i], why);
                        n_problems++;
                } else if (r < 0)
                        return r;
        }
        if (n_problems > 0 || sch->randomized_delay_sec == 0)
                return n_problems;

        uint64_t gap;
        r = calendar_shortest_gap(sch->calendars, sch->n_calendars, now_usec, &gap);
        if (r < 0)
                return r;
        uint64_t late = (sch->randomized_delay_sec + SCHEDULE_ACCURACY_SEC) * USEC_PER_SEC;
        if (gap != UINT64_MAX && late >= gap) {
                report(on_error, userdata, t, "schedule_randomized_delay_sec",
                       "%llu s, plus the timer's accuracy of %d s, is not shorter than the %llu s between "
                       "two "
                       "slots of \"schedule\": a run that late would be taken for the next slot's",
                       (unsigned long long) sch->randomized_delay_sec, SCHEDULE_ACCURACY_SEC,
                       (unsigned long long) (gap / USEC_PER_SEC));
                n_problems++;
        }
        return n_problems;
}

int schedules_check(const Config *c, uint64_t now_usec, ConfigErrorFn on_error, void *userdata) {
        int n_problems = 0;

        if (!c)
                return -EINVAL;
        for (size_t i = 0; i < c->n_tasks; i++) {
                if (c->tasks[i].schedule.n_calendars == 0)
                        continue;
                int r = check_task(&c->tasks[i], now_usec, on_error, userdata);
                if (cannot_run(r))
                        return r;
                if (r < 0) {
                        report(on_error, userdata, &c->tasks[i], "schedule",
                               "cannot check the calendar expressions with systemd-analyze: %s",
                               strerror(-r));
                        r = 1;
                }
                n_problems += r;
        }
        return n_problems;
}

size_t schedules_diff(const Config *old, const Config *new, SchedulesChangedFn changed, void *userdata) {
        static const TaskSchedule unscheduled = {};
        size_t n = 0;

        for (size_t i = 0; i < new->n_tasks; i++) {
                const TaskDef *t = &new->tasks[i], *was_task = config_find_task(old, t->name);
                const TaskSchedule *was = was_task ? &was_task->schedule : &unscheduled;

                if (config_schedule_equal(&t->schedule, was))
                        continue;
                changed(t,
                        was->n_calendars == 0          ? SCHEDULE_ADDED
                        : t->schedule.n_calendars == 0 ? SCHEDULE_REMOVED
                                                       : SCHEDULE_CHANGED,
                        userdata);
                n++;
        }
        for (size_t i = 0; i < old->n_tasks; i++) {
                const TaskDef *was = &old->tasks[i];
                if (was->schedule.n_calendars > 0 && !config_find_task(new, was->name)) {
                        changed(was, SCHEDULE_REMOVED, userdata);
                        n++;
                }
        }
        return n;
}

static void log_change(const TaskDef *t, ScheduleChange change, void *userdata) {
        switch (change) {
        case SCHEDULE_ADDED:
                log_warning(
                        "Task '%s' is scheduled now (%s): its timer comes with \"systemctl daemon-reload\" "
                        "and then \"systemctl start timers.target\".",
                        t->name, t->source ? t->source : "tasks.d");
                break;
        case SCHEDULE_CHANGED:
                log_warning("The schedule of task '%s' changed (%s): its timer follows after \"systemctl "
                            "daemon-reload\".",
                            t->name, t->source ? t->source : "tasks.d");
                break;
        case SCHEDULE_REMOVED:
                log_warning("Task '%s' is no longer scheduled: its timer stops at \"systemctl "
                            "daemon-reload\", and "
                            "shows as failed until \"systemctl reset-failed " GENERATED_UNIT_PREFIX
                            "%s.timer\".",
                            t->name, t->name);
                break;
        }
}

void schedules_log_changes(const Config *old, const Config *new) {
        if (schedules_diff(old, new, log_change, NULL) > 0)
                log_notice("Timers of scheduled tasks are written by asynctask-generator at boot and at "
                           "\"systemctl daemon-reload\", which asynctaskd, unprivileged, cannot run.");
}
