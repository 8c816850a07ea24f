/* SPDX-License-Identifier: MIT */
/*
 * Alerts: a task that failed for good submits its on_failure task (front/on-failure.c says what the
 * alert is made of), counted as one submitter and, with a store, held until its insert commits.
 * Separate from the core, which only calls dispatcher_alert_submit() when a run fails for good.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "front/dispatcher-internal.h"
#include "front/dispatcher.h"
#include "front/on-failure.h"
#include "shared/log.h"
#include "shared/util.h"

/* The alert is durable: it may run. One that did not commit is taken back (nobody would know of it
 * after a restart, and it would run without a record in the store). */
void dispatcher_alert_written(Dispatcher *d, uint64_t id, int error) {
        TaskRecord *t = ledger_get(d->ledger, id);

        if (error < 0 && t && t->state == TASK_QUEUED) {
                log_task(LOG_ERR, id, t->task, NULL, "Alert task %llu could not be stored; dropping it.",
                         (unsigned long long) id);
                (void) ledger_forget(d->ledger, t);
        }
        dispatcher_release(d, id);
        dispatcher_changed(d);
}

/* Queues alert (held until its insert commits, with a store). */
static int alert_persist(Dispatcher *d, TaskRecord *alert) {
        PendingWrite *w;
        int r;

        if (!d->store)
                return 0;
        r = dispatcher_hold(d, alert->id);
        if (r < 0)
                return r;
        w = calloc(1, sizeof(*w));
        if (!w) {
                dispatcher_release(d, alert->id);
                return -ENOMEM;
        }
        w->dispatcher = d;
        w->alert_id = alert->id;
        r = store_insert(d->store, alert, dispatcher_write_done, w);
        if (r < 0) {
                free(w);
                dispatcher_release(d, alert->id);
                return r;
        }
        dispatcher_write_link(d, w);
        return 0;
}

/* failed has failed for good: submits its on_failure task, if it has one. */
void dispatcher_alert_submit(Dispatcher *d, const TaskRecord *failed) {
        const char *name = on_failure_task(d->cfg, dispatcher_record_def(d, failed), failed);
        _cleanup_free_ char *record = NULL;
        const TaskDef *def;
        uint64_t tasks = 0, bytes = 0;
        TaskRecord *alert = NULL;
        bool existing = false;
        char id[24];
        char *args[] = {id, NULL};
        size_t len = 0;
        int r;

        if (!name)
                return;
        def = config_find_task(d->cfg, name);
        if (!def) {
                /* Only a config that --check-config refuses gets here. */
                log_task(LOG_ERR, failed->id, failed->task, failed->unit,
                         "Task %llu failed; its on_failure task '%s' is not configured.",
                         (unsigned long long) failed->id, name);
                return;
        }
        /* A storm of failures must not queue alerts without end: they count as one submitter. */
        ledger_submitter_unfinished(d->ledger, ON_FAILURE_SUBMITTER, &tasks, &bytes);
        if (tasks >= d->cfg->max_queued_per_submitter) {
                log_task(LOG_WARNING, failed->id, failed->task, failed->unit,
                         "Task %llu failed; not submitting its alert '%s': %llu alerts are unfinished "
                         "(max_queued_per_submitter).",
                         (unsigned long long) failed->id, name, (unsigned long long) tasks);
                return;
        }
        record = on_failure_stdin(failed, &len);
        if (!record) {
                log_error_errno(ENOMEM, "Cannot submit the alert for task %llu: %m",
                                (unsigned long long) failed->id);
                return;
        }
        (void) snprintf(id, sizeof(id), "%llu", (unsigned long long) failed->id);
        r = ledger_submit(d->ledger,
                          &(TaskSubmission){.task = name,
                                            .args = args,
                                            .n_args = 1,
                                            .stdin_data = record,
                                            .stdin_len = len,
                                            .submitter = ON_FAILURE_SUBMITTER,
                                            .max_attempts = def->max_attempts},
                          now_usec(CLOCK_REALTIME), &alert, &existing);
        if (r >= 0)
                r = alert_persist(d, alert);
        if (r < 0) {
                log_task_internal(LOG_ERR, r, failed->id, failed->task, failed->unit,
                                  "Cannot submit the alert for task %llu: %m",
                                  (unsigned long long) failed->id);
                if (alert)
                        (void) ledger_forget(d->ledger, alert);
                return;
        }
        log_task(LOG_NOTICE, failed->id, failed->task, failed->unit,
                 "Task %llu failed for good; submitted alert task %llu (%s).",
                 (unsigned long long) failed->id, (unsigned long long) alert->id, name);
}
