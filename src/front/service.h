/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Executes one parsed Request for one peer Identity against the config, the ledger and the
 * dispatcher, and produces exactly one response line. Most requests are answered at once; wait,
 * reload and (with a durable store) every write are answered later, through the same callback.
 * Also owns the current Config and the reload procedure (SIGHUP and the reload op).
 */

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "shared/config.h"
#include "front/dispatcher.h"
#include "front/launcher-link.h"
#include "front/ledger.h"
#include "front/metrics.h"
#include "front/policy.h"
#include "front/request.h"
#include "front/service-call.h"
#include "front/service-hooks.h"
#include "front/store.h"
#include "shared/util.h"

typedef struct Service Service;

/* Takes ownership of cfg on success. store may be NULL (memory store). */
int service_new(sd_event *event, Config *cfg, Ledger *ledger, Store *store, Dispatcher *dispatcher,
                LauncherLink *link, const ServiceHooks *hooks, Service **ret);
Service *service_free(Service *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Service *, service_free);

const Config *service_config(const Service *s);

/* Requests refused are counted in m (borrowed; NULL: not counted), and the metrics op answers from it. */
void service_set_metrics(Service *s, Metrics *m);
/* An error answered without the service (a frame that is no request): counted with the others. */
void service_count_refusal(Service *s, ErrorCode code);

/* Answers req for id. Returns 0 when answered already (reply was called before returning), 1 when
 * the answer comes later (*ret_call is set; reply is called exactly once, from the event loop,
 * unless the call is freed first), or a negative errno when no answer could be produced (OOM). */
int service_handle(Service *s, const Identity *id, const Request *req, ServiceReplyFn reply, void *userdata,
                   ServiceCall **ret_call);

/* A pending call is abandoned with service_call_free() and told apart with
 * service_call_is_store_write() (service-call.h). */

/*
 * Seed frames (the old PHP clients' serialize() lines) get no answer (front/seed-refusals.h says why);
 * a refused one is logged, rate-limited, and counted ("seed_refused" in stats).
 */

/* A seed submission is in (or was refused, which has been logged and counted). */
typedef void (*ServiceSettledFn)(void *userdata);

/* Submits the request parsed from a seed frame (the frame is quoted in the log if it is refused).
 * Returns 0 when that is settled already, 1 when the submission waits for a store commit (*ret_call
 * is set; settled is called from the event loop when it is in or refused, unless the call is freed
 * first: the submission then settles all the same, unseen), or a negative errno when it could not
 * be handled (out of memory; logged and counted as refused). */
int service_submit_seed(Service *s, const Identity *id, const Request *req, const char *frame, size_t len,
                        ServiceSettledFn settled, void *userdata, ServiceCall **ret_call);

/* A seed frame refused before it became a request (malformed, too long): logged and counted. */
void service_refuse_seed(Service *s, const Identity *id, const char *frame, size_t len,
                         const ErrorReply *why);

/* The number of running tasks may have changed: drains wait for it to reach 0. */
void service_running_changed(Service *s);
/* At start: the host was draining when the daemon stopped (the hook's mark), so it still is. */
void service_restore_draining(Service *s);

/* SIGHUP: reload the config (and the launcher's) as the reload op does, with nobody to answer. */
void service_reload(Service *s);
/* The launcher's answer to a reload request; error NULL means it reloaded fine. */
void service_launcher_reloaded(Service *s, const char *error);
/* The launcher link dropped: a reload waiting for the launcher proceeds without it. */
void service_launcher_down(Service *s);

/* SIGTERM: pending waits are answered now with the current record, pending reloads are refused, and
 * from now on submissions and reloads get "unavailable". */
void service_shutdown(Service *s);

/* Calls waiting for a store write or a reload (shutdown lets them finish, within its bound). */
unsigned service_n_pending(const Service *s);
