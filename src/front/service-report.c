/* SPDX-License-Identifier: MIT */
/*
 * The reads over many tasks: list (a page of records, from the store when there is one), stats and
 * metrics (the counts per state, which the store's rows hold more truly than memory). They change
 * nothing, which sets them apart from the other operations.
 */
#include <errno.h>
#include <stdlib.h>
#include <cjson/cJSON.h>

#include "front/response.h"
#include "front/service-internal.h"
#include "shared/limits.h"
#include "shared/util.h"

/* {"ok":true,"tasks":[...]} of n records. A record read from the store that the ledger holds too is
 * answered as the ledger has it: a running one's progress is kept in memory only. */
static int answer_tasks(Service *s, ServiceAnswer *a, TaskRecord *const *tasks, size_t n) {
        cJSON *obj, *arr;

        obj = response_ok();
        if (!obj)
                return -ENOMEM;
        arr = cJSON_AddArrayToObject(obj, "tasks");
        if (!arr)
                goto oom;
        for (size_t i = 0; i < n; i++) {
                const TaskRecord *held = ledger_get(s->ledger, tasks[i]->id);
                const TaskRecord *t = held ? held : tasks[i];
                cJSON *item = cJSON_CreateObject();

                if (!item)
                        goto oom;
                cJSON_AddItemToArray(arr, item);
                if (response_add_task(item, t) < 0 || service_add_paused_flag(s, item, t) < 0)
                        goto oom;
        }
        return service_answer_obj(a, obj);

oom:
        cJSON_Delete(obj);
        return -ENOMEM;
}

/* "paused": [{"task":..,"by":..,"since":..}], by name. */
static int add_paused_list(cJSON *obj, const PausedTasks *paused) {
        cJSON *arr = cJSON_AddArrayToObject(obj, "paused");

        if (!arr)
                return -ENOMEM;
        for (size_t i = 0; i < paused->n; i++) {
                cJSON *item = cJSON_CreateObject();

                if (!item)
                        return -ENOMEM;
                cJSON_AddItemToArray(arr, item);
                if (!cJSON_AddStringToObject(item, "task", paused->items[i].task) ||
                    !cJSON_AddStringToObject(item, "by", paused->items[i].by) ||
                    response_add_time(item, "since", paused->items[i].since) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static void list_read_done(ServiceCall *c, StoreRead *result, void *userdata) {
        ServiceAnswer a = {};

        if (result->error < 0) {
                service_answer_call_error(c, ERR_UNAVAILABLE, "the store is unavailable; cannot list tasks");
                return;
        }
        (void) answer_tasks(userdata, &a, result->records, result->n_records);
        service_call_answer(c, a.line, a.len);
}

int service_report_list(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        _cleanup_free_ TaskRecord **tasks = NULL;
        unsigned limit = req->limit > 0 ? req->limit : 100;
        int state = req->has_state ? (int) req->state : -1;
        ServiceCall *c;
        size_t n;
        int r = service_require_admin(s, id, req, a);

        if (r <= 0)
                return r;
        if (limit > LIST_LIMIT_MAX)
                limit = LIST_LIMIT_MAX;
        if (s->store) {
                /* The rows are the truth: every write queued before this read is in them. */
                c = service_call_read(&s->calls, a, list_read_done, s, NULL);
                if (!c)
                        return -ENOMEM;
                r = store_read_page(s->store, state, req->after_id, limit, service_call_read_done, c);
                return service_read_asked(a, c, r);
        }
        tasks = calloc(limit, sizeof(*tasks));
        if (!tasks)
                return -ENOMEM;
        n = ledger_list_after(s->ledger, state, req->after_id, limit, tasks);
        return answer_tasks(s, a, tasks, n);
}

/* "in_memory": the records the front holds, per kind (with the MySQL store, a window of the queue, the
 * running ones and a cache of finished ones; with the memory store, every record). */
static int add_in_memory(Service *s, cJSON *obj) {
        cJSON *m = cJSON_AddObjectToObject(obj, "in_memory");
        LedgerStats st;

        ledger_stats(s->ledger, &st);
        if (!m || !cJSON_AddNumberToObject(m, "queued", (double) st.queued) ||
            !cJSON_AddNumberToObject(m, "running", (double) st.running) ||
            !cJSON_AddNumberToObject(m, "finished", (double) (st.succeeded + st.failed + st.cancelled)))
                return -ENOMEM;
        return 0;
}

static int answer_stats(Service *s, ServiceAnswer *a, const LedgerStats *st) {
        unsigned conns = s->hooks.n_connections ? s->hooks.n_connections(s->hooks.userdata) : 0;
        cJSON *obj;

        obj = response_ok();
        if (!obj)
                return -ENOMEM;
        if (!cJSON_AddNumberToObject(obj, "queued", (double) st->queued) ||
            !cJSON_AddNumberToObject(obj, "running", (double) st->running) ||
            !cJSON_AddNumberToObject(obj, "succeeded", (double) st->succeeded) ||
            !cJSON_AddNumberToObject(obj, "failed", (double) st->failed) ||
            !cJSON_AddNumberToObject(obj, "cancelled", (double) st->cancelled) ||
            !cJSON_AddNumberToObject(obj, "submitted_total", (double) st->submitted_total) ||
            !cJSON_AddNumberToObject(obj, "seed_refused", (double) seed_refusals_count(s->seed_refusals)) ||
            !cJSON_AddNumberToObject(obj, "connections", (double) conns) ||
            !cJSON_AddStringToObject(obj, "launcher",
                                     launcher_link_is_connected(s->link) ? "connected" : "disconnected") ||
            !cJSON_AddStringToObject(obj, "store", s->store ? "mysql" : "memory") ||
            !cJSON_AddBoolToObject(obj, "draining", dispatcher_draining(s->dispatcher)) ||
            add_paused_list(obj, ledger_paused(s->ledger)) < 0 || add_in_memory(s, obj) < 0) {
                cJSON_Delete(obj);
                return -ENOMEM;
        }
        return service_answer_obj(a, obj);
}

/* The ledger's figures with the counts of the rows, which are the truth with a database (running ones
 * are all in memory either way); without its answer, what memory holds. */
static void stats_with_rows(Service *s, const StoreRead *result, LedgerStats *st) {
        ledger_stats(s->ledger, st);
        if (result->error < 0)
                return;
        st->queued = result->counts[TASK_QUEUED];
        st->running = result->counts[TASK_RUNNING];
        st->succeeded = result->counts[TASK_SUCCEEDED];
        st->failed = result->counts[TASK_FAILED];
        st->cancelled = result->counts[TASK_CANCELLED];
}

/* Asks the store for the row counts, answered later through done: true when asked (a->call set),
 * false when there is no store to ask and the caller answers from memory. */
static bool read_row_counts(Service *s, ServiceAnswer *a, ServiceCallReadFn done) {
        ServiceCall *c;

        if (!s->store || !store_available(s->store))
                return false;
        c = service_call_read(&s->calls, a, done, s, NULL);
        if (!c)
                return false;
        if (store_read_counts(s->store, service_call_read_done, c) < 0) {
                service_call_read_abandon(c);
                return false;
        }
        a->call = c;
        return true;
}

static void stats_read_done(ServiceCall *c, StoreRead *result, void *userdata) {
        Service *s = userdata;
        ServiceAnswer a = {};
        LedgerStats st;

        stats_with_rows(s, result, &st);
        (void) answer_stats(s, &a, &st);
        service_call_answer(c, a.line, a.len);
}

int service_report_stats(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        LedgerStats st;

        if (read_row_counts(s, a, stats_read_done))
                return 0;
        ledger_stats(s->ledger, &st);
        return answer_stats(s, a, &st);
}

/* The metrics answer from st (counts per state) and the queue's oldest due run_after (UINT64_MAX:
 * none is due), as of now. */
static int answer_metrics(Service *s, ServiceAnswer *a, const LedgerStats *st, uint64_t oldest_due,
                          uint64_t now) {
        MetricsGauges g = {
                .oldest_queued_age_usec = oldest_due < now ? now - oldest_due : 0,
                .store_up = !s->store || store_available(s->store),
                .launcher_up = launcher_link_is_connected(s->link),
                .connections = s->hooks.n_connections ? s->hooks.n_connections(s->hooks.userdata) : 0,
                .node = s->cfg->node,
        };
        _cleanup_free_ char *text = NULL;
        size_t len;
        cJSON *obj;
        int r;

        g.tasks[TASK_QUEUED] = st->queued;
        g.tasks[TASK_RUNNING] = st->running;
        g.tasks[TASK_SUCCEEDED] = st->succeeded;
        g.tasks[TASK_FAILED] = st->failed;
        g.tasks[TASK_CANCELLED] = st->cancelled;
        g.submitted_total = st->submitted_total;
        r = metrics_format(s->metrics, &g, &text, &len);
        if (r < 0)
                return r;
        obj = response_ok();
        if (obj && !cJSON_AddStringToObject(obj, "text", text)) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        return service_answer_obj(a, obj);
}

/* The run_after of the queued record in the ledger due the longest, UINT64_MAX when none is due. */
static uint64_t oldest_due_in_memory(Service *s, uint64_t now) {
        uint64_t age = ledger_oldest_queued_age(s->ledger, now);

        return age > 0 ? now - age : UINT64_MAX;
}

static void metrics_read_done(ServiceCall *c, StoreRead *result, void *userdata) {
        Service *s = userdata;
        uint64_t now = now_usec(CLOCK_REALTIME);
        uint64_t oldest_due = oldest_due_in_memory(s, now);
        ServiceAnswer a = {};
        LedgerStats st;

        stats_with_rows(s, result, &st);
        /* The oldest due row too: it may be outside the window of the queue in memory. */
        if (result->error >= 0 && result->has_oldest_due && result->oldest_due < oldest_due)
                oldest_due = result->oldest_due;
        (void) answer_metrics(s, &a, &st, oldest_due, now);
        service_call_answer(c, a.line, a.len);
}

/* The Prometheus text of the metrics, for anyone who may ask for stats: the task names it shows are
 * those of the configuration files, which every local user can read. */
int service_report_metrics(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        uint64_t now = now_usec(CLOCK_REALTIME);
        LedgerStats st;

        if (read_row_counts(s, a, metrics_read_done))
                return 0;
        ledger_stats(s->ledger, &st);
        return answer_metrics(s, a, &st, oldest_due_in_memory(s, now), now);
}
