/* SPDX-License-Identifier: MIT */
/*
 * What an admin tells the host rather than a task: pause and resume a task name, drain and undrain
 * (start no new runs), and the drain's bookkeeping that service.h offers the front
 * (service_running_changed(), service_restore_draining()).
 */
#include <errno.h>
#include <cjson/cJSON.h>

#include "front/response.h"
#include "front/service-internal.h"
#include "front/service.h"
#include "shared/log.h"
#include "shared/util.h"

/* {"ok":true,"task":NAME,"paused":BOOL} */
static cJSON *ok_paused(const char *task, bool paused) {
        cJSON *obj = response_ok();

        if (obj &&
            (!cJSON_AddStringToObject(obj, "task", task) || !cJSON_AddBoolToObject(obj, "paused", paused))) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        return obj;
}

static int write_pause(ServiceCall *c, void *ud) {
        return service_call_store_pause(c, ud);
}

static int write_resume(ServiceCall *c, void *ud) {
        return service_call_store_resume(c, ud);
}

int service_control_pause(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        const PausedTask *p;
        char q[80];
        int r = service_require_admin(s, id, req, a);

        if (r <= 0)
                return r;
        /* Only a configured name: a typo must not look like a pause that holds. */
        if (!config_find_task(s->cfg, req->task))
                return service_answer_error(a, ERR_UNKNOWN_TASK, "no task named '%s'",
                                            service_quoted(req->task, q, sizeof(q)));
        r = ledger_pause(s->ledger, req->task, id->submitter, now_usec(CLOCK_REALTIME));
        if (r == -E2BIG)
                return service_answer_error(a, ERR_BAD_REQUEST,
                                            "%d task names are paused already, the most there may be",
                                            PAUSED_TASKS_MAX);
        if (r < 0)
                return r;
        if (r > 0) {
                log_info("Task '%s' paused by %s: queued runs wait, running ones finish.", req->task,
                         id->submitter);
                dispatcher_paused_changed(s->dispatcher);
                service_changed(s);
        }
        r = service_answer_obj(a, ok_paused(req->task, true));
        if (r < 0)
                return r;
        /* Written again when it was paused already: harmless, and it heals a write that failed. */
        p = paused_tasks_find(ledger_paused(s->ledger), req->task);
        return service_call_after_writes(&s->calls, a, 0, write_pause, (void *) p);
}

int service_control_resume(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        int r = service_require_admin(s, id, req, a);

        if (r <= 0)
                return r;
        /* Any name: one the config no longer has may still be paused. */
        if (ledger_resume(s->ledger, req->task)) {
                log_info("Task '%s' resumed by %s.", req->task, id->submitter);
                dispatcher_paused_changed(s->dispatcher);
                service_changed(s);
        }
        r = service_answer_obj(a, ok_paused(req->task, false));
        if (r < 0)
                return r;
        return service_call_after_writes(&s->calls, a, 0, write_resume, req->task);
}

/* {"ok":true,"draining":BOOL,"running":N,"drained":BOOL}: drained when draining and nothing runs. */
char *service_control_drain_answer(size_t *ret_len, void *userdata) {
        Service *s = userdata;
        bool draining = dispatcher_draining(s->dispatcher);
        unsigned running = dispatcher_n_running(s->dispatcher);
        cJSON *obj = response_ok();

        if (obj && (!cJSON_AddBoolToObject(obj, "draining", draining) ||
                    !cJSON_AddNumberToObject(obj, "running", running) ||
                    !cJSON_AddBoolToObject(obj, "drained", draining && running == 0))) {
                cJSON_Delete(obj);
                obj = NULL;
        }
        return obj ? response_finish(obj, ret_len) : NULL;
}

static void set_draining(Service *s, const Identity *id, bool draining) {
        if (dispatcher_draining(s->dispatcher) == draining)
                return;
        dispatcher_set_draining(s->dispatcher, draining);
        if (draining)
                log_notice("Draining, by %s: this host starts no new runs until 'asynctask undrain'.",
                           id->submitter);
        else
                log_notice("Drain ended by %s: this host takes work again.", id->submitter);
        if (s->hooks.draining_changed)
                s->hooks.draining_changed(draining, s->hooks.userdata);
        service_changed(s);
}

int service_control_drain(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        int r = service_require_admin(s, id, req, a);

        if (r <= 0)
                return r;
        if (s->shutting_down)
                return service_answer_error(a, ERR_UNAVAILABLE, "the daemon is shutting down");
        set_draining(s, id, true);
        if (dispatcher_n_running(s->dispatcher) == 0 || !req->has_timeout || req->timeout_usec == 0) {
                a->line = service_control_drain_answer(&a->len, s);
                return a->line ? 0 : -ENOMEM;
        }
        return service_call_drain(&s->calls, req->timeout_usec, a);
}

int service_control_undrain(Service *s, const Identity *id, const Request *req, ServiceAnswer *a) {
        int r = service_require_admin(s, id, req, a);

        if (r <= 0)
                return r;
        set_draining(s, id, false);
        /* Whoever waits for the drain learns that it ended. */
        service_calls_drain_done(&s->calls);
        a->line = service_control_drain_answer(&a->len, s);
        return a->line ? 0 : -ENOMEM;
}

void service_running_changed(Service *s) {
        if (dispatcher_draining(s->dispatcher) && dispatcher_n_running(s->dispatcher) == 0)
                service_calls_drain_done(&s->calls);
}

void service_restore_draining(Service *s) {
        dispatcher_set_draining(s->dispatcher, true);
        log_notice("This host was draining when asynctaskd stopped, and still is: no new runs start until "
                   "'asynctask undrain'.");
}
