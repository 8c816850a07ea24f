/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Private to the service's own files (service.c and the service-*.c operations beside it): the
 * Service itself and the few helpers every operation answers and authorizes with. Nothing else in the
 * front includes this; the other modules see only service.h, so that authorization stays in the
 * service's hands (service.c).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>
#include <cjson/cJSON.h>

#include "front/dispatcher.h"
#include "front/launcher-link.h"
#include "front/ledger.h"
#include "front/metrics.h"
#include "front/policy.h"
#include "front/request.h"
#include "front/seed-refusals.h"
#include "front/service-call.h"
#include "front/service-hooks.h"
#include "front/service-reload.h"
#include "front/store.h"
#include "shared/config.h"
#include "shared/util.h"

/* The same type as service.h's, which this header does not include (module circle). */
typedef struct Service Service;

struct Service {
        sd_event *event;
        Config *cfg;
        Ledger *ledger;
        Store *store;
        Dispatcher *dispatcher;
        LauncherLink *link;
        ServiceHooks hooks;
        bool shutting_down;

        ServiceCalls calls;
        ServiceReload *reload;
        SeedRefusals *seed_refusals;
        Metrics *metrics; /* borrowed; NULL: not counted */
};

/* --- service.c: answers --- */

/* Counts may have changed: the hooks' changed(). */
void service_changed(Service *s);
/* a answered with an error line (and counted as refused with code). */
int service_answer_error(ServiceAnswer *a, ErrorCode code, const char *fmt, ...) _printf_(3, 4);
/* a answered with obj (consumed); -ENOMEM when obj is NULL. */
int service_answer_obj(ServiceAnswer *a, cJSON *obj);
/* A later answer that is an error. */
void service_answer_call_error(ServiceCall *c, ErrorCode code, const char *message);
/* {"ok":true,"id":N,"state":"..."}; state < 0: no state. */
cJSON *service_ok_id_state(uint64_t id, TaskState state);
/* "paused": true on a queued record whose task name is paused. */
int service_add_paused_flag(const Service *s, cJSON *obj, const TaskRecord *t);
/* A client string for a message: its valid UTF-8 prefix, cut at 64 bytes, in buf. */
const char *service_quoted(const char *s, char *buf, size_t size);

/* --- service.c: reading a record through the store, and authorization --- */

/* The end of a read call c once the store was asked (r: what asking returned): a->call is set, or, when
 * the store could not be asked, c is dropped and a answered "unavailable". */
int service_read_asked(ServiceAnswer *a, ServiceCall *c, int r);
/* Whether a record that is not in memory must be read from the store before req is answered. */
bool service_must_read_through(const Service *s, const ServiceAnswer *a);
/* Whether t, a finished record of this node's run, may be stale (other nodes alive): read it first. */
bool service_copy_may_be_stale(Service *s, const ServiceAnswer *a, const TaskRecord *t);
/* Reads the record of task_id (or of the peer's key) into the ledger, then runs req again. */
int service_read_through(Service *s, const Identity *id, const Request *req, ServiceAnswer *a,
                         uint64_t task_id, const char *key);
/* The record of task_id: the ledger's, or the one read of a row this host does not hold (a->remote). */
TaskRecord *service_get(Service *s, const ServiceAnswer *a, uint64_t task_id);
bool service_is_admin(const Service *s, const Identity *id);
void service_log_refusal(const Identity *id, RequestOp op, const char *what);
/* Refuses a peer known only by its TCP address what needs a user (lookups, keys). */
int service_refuse_unknown_user(const Identity *id, RequestOp op, const char *what, ServiceAnswer *a);
/* *ret: req->id's record, the peer's own (or the peer an admin); otherwise a is answered. */
int service_lookup_owned(Service *s, const Identity *id, const Request *req, ServiceAnswer *a,
                         TaskRecord **ret);
/* 1 for an admin; otherwise a is answered "forbidden" (0). */
int service_require_admin(Service *s, const Identity *id, const Request *req, ServiceAnswer *a);

/* One operation of the client protocol, as service.c's table calls it: answers a at once, or sets
 * a->call when the answer comes later; a negative errno when no answer could be made (OOM). */
typedef int ServiceOp(Service *s, const Identity *id, const Request *req, ServiceAnswer *a);

/* --- service-submit.c --- */

ServiceOp service_submit_op;
/* ServiceCalls.settled: a submission's store writes completed. */
void service_submit_settled(uint64_t submitted_id, int error, void *userdata);

/* --- service-family.c: an every_host submission's parent (docs/cluster.md) --- */

/* The parent record of req->id in result (a read of req->id brings a parent's runs with it), or NULL
 * when req->id is no parent. */
const TaskRecord *service_family_parent(const Request *req, const StoreRead *result);
/* Answers req about the parent in result through c: status and wait with its runs, other operations
 * refused. Returns 1, unanswered, for a wait whose parent is not final yet and whose time is not
 * over (wait_over): the caller reads again later. -ENOENT when result holds no parent. */
int service_family_answer(Service *s, ServiceCall *c, const Identity *id, const Request *req,
                          const StoreRead *result, bool wait_over);

/* --- service-tasks.c: operations on one task (or one state's tasks) --- */

ServiceOp service_tasks_status;
ServiceOp service_tasks_wait;
ServiceOp service_tasks_cancel;
ServiceOp service_tasks_retry;
ServiceOp service_tasks_forget;

/* --- service-report.c: reads over many tasks --- */

ServiceOp service_report_list;
ServiceOp service_report_stats;
ServiceOp service_report_metrics;

/* --- service-control.c: what an admin tells the host --- */

ServiceOp service_control_pause;
ServiceOp service_control_resume;
ServiceOp service_control_drain;
ServiceOp service_control_undrain;
/* ServiceCalls.drain_answer: {"ok":true,"draining":BOOL,"running":N,"drained":BOOL}. */
char *service_control_drain_answer(size_t *ret_len, void *userdata);
