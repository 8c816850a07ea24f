/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Answers that come later. An operation of the service either answers at once (a line) or leaves a
 * call, answered exactly once from the event loop:
 * - a wait, when its task reaches a final state, is forgotten, or its timeout passes;
 * - a store call, whose answer is built at once but goes out only when the store has committed what
 *   it reports (a submission that did not commit is taken back, and the answer is "unavailable");
 * - a reload call, when the reload round it belongs to ends;
 * - a drain, when this host's runs are over, the drain ends (undrain), or its timeout passes.
 * A service keeps its calls in one ServiceCalls list: a shutdown answers them, freeing drops them. A
 * call whose connection went away (service_call_free()) is dropped unanswered.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "front/ledger.h"
#include "front/metrics.h"
#include "front/store.h"
#include "shared/protocol.h"

typedef struct ServiceCall ServiceCall;

/* Receives the response: one complete line ending in "\n", malloc'd, ownership passes to the callee. */
typedef void (*ServiceReplyFn)(char *line, size_t len, void *userdata);

/* Where an operation puts its answer: a line now (line, len), or a pending call. */
typedef struct ServiceAnswer {
        ServiceReplyFn reply;
        void *userdata;
        /* If set, a call owns userdata until it hands it to reply, and frees it with this when it ends
         * unanswered (its connection went away, or the daemon stops). */
        void (*userdata_free)(void *userdata);
        /* If set, a store call abandoned by its connection (service_call_free()) still hands its answer
         * to reply once the store is done, after telling userdata with this that nobody waits. */
        void (*detach)(void *userdata);
        /* A seed frame's answer: nobody reads it, and its refusal has its own rate-limited log line. */
        bool quiet;
        /* The error code the answer carries (ERR_NONE: none), for the metrics. */
        ErrorCode refused;
        /* The store was read for this request already (a record not in memory was looked up): what is
         * still not in the ledger does not exist. */
        bool store_read;
        /* With the store read: the record read of a row this host does not hold (another host holds
         * it, or none does), which is answered from but never kept (a copy would go stale); borrowed
         * for the request's handling alone. NULL otherwise. */
        TaskRecord *remote;
        char *line;
        size_t len;
        ServiceCall *call;
} ServiceAnswer;

/* Every store write of a call that reports a new submission has completed: error is the first that
 * failed, or 0. Called before the call is answered (the submission may be taken back meanwhile). */
typedef void (*ServiceCallsSettledFn)(uint64_t submitted_id, int error, void *userdata);

typedef struct ServiceCalls {
        ServiceCall *head;
        unsigned n_pending; /* store and reload calls */

        sd_event *event;
        Ledger *ledger;
        Store *store; /* NULL with the memory store: then nothing waits for writes */
        ServiceCallsSettledFn settled;
        /* The answer to a drain as things are now: a complete line (malloc'd), NULL on OOM. */
        char *(*drain_answer)(size_t *ret_len, void *userdata);
        void *userdata;
        Metrics *metrics; /* late error answers are counted here; NULL: not counted */

        /* Waits for rows this host does not hold: one read of all their rows per tick */
        sd_event_source *remote_timer;
        uint64_t remote_interval; /* the next tick's: doubles while nothing changes */
        bool remote_reading;      /* a read is in flight; its answer sets the next tick */
} ServiceCalls;

/* Drops every call unanswered; the store must be gone already (it calls back for the writes it still
 * holds). */
void service_calls_done(ServiceCalls *calls);

/* Issues the store writes of a store call: each service_call_store_*() adds one the answer waits for.
 * Returns >= 0, or a negative errno when one could not be queued. */
typedef int (*ServiceCallWriteFn)(ServiceCall *c, void *userdata);

/* With a store, the answer already built in a waits (a->call set) for the writes write_fn issues;
 * submitted_id names the submission it reports, 0 for none. Without a store, or when no write could
 * be queued, a->line is the answer to send now (the answer built, or "unavailable" when the writes
 * failed). -ENOMEM. */
int service_call_after_writes(ServiceCalls *calls, ServiceAnswer *a, uint64_t submitted_id,
                              ServiceCallWriteFn write_fn, void *userdata);
int service_call_store_write(ServiceCall *c, int (*write)(Store *, const TaskRecord *, StoreDoneFn, void *),
                             const TaskRecord *t);
int service_call_store_delete(ServiceCall *c, uint64_t id);
int service_call_store_pause(ServiceCall *c, const PausedTask *p);
int service_call_store_resume(ServiceCall *c, const char *task);

/* Waits for t to reach a final state, at most timeout_usec; a->call is set. Answered with the record
 * (as it is at the timeout), or not_found if it is forgotten meanwhile. */
int service_call_wait(ServiceCalls *calls, TaskRecord *t, uint64_t timeout_usec, ServiceAnswer *a);
/* The same for the record of a row this host does not hold (another host runs it, or will): its row is
 * read again, together with the rows of every other such wait, until it is final or the timeout
 * passes. */
int service_call_wait_remote(ServiceCalls *calls, const TaskRecord *t, uint64_t timeout_usec,
                             ServiceAnswer *a);
/* The same, answered also when t's progress changes (wait --progress). */
int service_call_wait_progress(ServiceCalls *calls, TaskRecord *t, uint64_t timeout_usec, ServiceAnswer *a);

/* A call answered once a store read is back (store.h): done gets the read's result and answers c with
 * service_call_answer(), or hands it on with service_call_forward(). Give the store
 * service_call_read_done as its callback and the call as its userdata. userdata_free (may be NULL)
 * frees userdata when the call ends. Returns NULL when out of memory. Until the read is back the
 * connection holds its later requests (as for a wait). */
typedef void (*ServiceCallReadFn)(ServiceCall *c, StoreRead *result, void *userdata);
ServiceCall *service_call_read(ServiceCalls *calls, const ServiceAnswer *a, ServiceCallReadFn done,
                               void *userdata, void (*userdata_free)(void *));
void service_call_read_done(StoreRead *result, void *call);
/* The read changes the database (a cancel, retry or forget): its done runs also when the client has
 * gone, so that what this host holds follows the change; its answer then goes nowhere. */
void service_call_read_changes(ServiceCall *c);
/* Instead of an answer: the read call reads again after delay_usec (at once when the daemon stops),
 * again(c, userdata) queueing the read as the first did, and its done gets that read's result. For
 * waits that poll the database (an every_host parent, docs/cluster.md). < 0 when the timer cannot be
 * set: the call is still to be answered. */
int service_call_read_later(ServiceCall *c, uint64_t delay_usec,
                            int (*again)(ServiceCall *c, void *userdata));
/* A read call whose read could not be queued: ended without an answer. */
void service_call_read_abandon(ServiceCall *c);
/* The answer of a read call: a line (consumed; NULL when out of memory). */
void service_call_answer(ServiceCall *c, char *line, size_t len);
/* The ServiceAnswer for the operation a read call runs once its record is in memory: answered at once
 * (then pass a->line to service_call_answer()) or by a call of its own (a->call), whose answer this
 * call then gives. */
ServiceAnswer service_call_forward_answer(ServiceCall *c);
void service_call_forward(ServiceCall *c, ServiceCall *inner);

/* A reload request, answered when reload round `round` (or a later one) ends; a->call is set. */
int service_call_reload(ServiceCalls *calls, unsigned round, ServiceAnswer *a);
/* Reload round `round` ended: answers its calls (and earlier rounds'), ok when error is NULL. */
void service_calls_reload_done(ServiceCalls *calls, unsigned round, const ErrorReply *error);

/* A drain, answered with drain_answer() when service_calls_drain_done() says so or after timeout_usec;
 * a->call is set. Like a wait, it holds its connection and a shutdown does not wait for it. */
int service_call_drain(ServiceCalls *calls, uint64_t timeout_usec, ServiceAnswer *a);
/* This host's runs are over, or the drain ended: every drain is answered now. */
void service_calls_drain_done(ServiceCalls *calls);

/* The daemon stops: waits are answered now with their task as it is, reload and drain calls are
 * refused. Store calls stay: they are answered when the store is done. */
void service_calls_shutdown(ServiceCalls *calls);

/* True for a call that only waits for a store commit: later requests of the same connection may be
 * handled meanwhile (their answers still go out in order). Waits and reloads hold the connection. */
bool service_call_is_store_write(const ServiceCall *c);

/* Abandons a pending call without answering (its connection went away). */
ServiceCall *service_call_free(ServiceCall *c);
