/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "front/response.h"
#include "front/service-call.h"
#include "shared/log.h"
#include "shared/util.h"

typedef enum CallKind {
        CALL_WAIT,   /* wait: a ledger watch plus a timeout */
        CALL_STORE,  /* the answer is ready but goes out only once the store committed the change */
        CALL_RELOAD, /* reload op: answered when the reload round it belongs to ends */
        CALL_DRAIN,  /* drain op: answered when this host's runs are over, at undrain, or its timeout */
        CALL_READ,   /* answered when a store read is back, maybe by a call it hands on to */
} CallKind;

struct ServiceCall {
        ServiceCalls *calls;
        CallKind kind;
        ServiceReplyFn reply; /* NULL once the connection went away */
        void *userdata;
        void (*userdata_free)(void *userdata); /* owned until handed to reply: see ServiceAnswer */
        void (*detach)(void *userdata);
        ServiceCall *prev, *next;

        /* CALL_WAIT */
        uint64_t id;
        bool remote;          /* its row is polled (service_call_wait_remote()) */
        bool timed_out;       /* remote: answered with the next poll, whatever the row's state */
        bool polling;         /* remote: its id is in the read in flight */
        TaskState last_state; /* remote: as the last poll read it */
        LedgerWatch *watch;
        sd_event_source *timer; /* and CALL_DRAIN */

        /* CALL_STORE */
        char *line;
        size_t len;
        unsigned outstanding;  /* store writes not completed */
        int error;             /* first failed write */
        uint64_t submitted_id; /* a new submission: undone if its insert fails */

        /* CALL_RELOAD */
        unsigned round;

        /* CALL_READ */
        bool reading;  /* the store holds the call as its read's userdata */
        bool changing; /* its read changes the database: done runs also with nobody to answer */
        ServiceCallReadFn read_fn;
        void *read_userdata;
        void (*read_userdata_free)(void *);
        ServiceCall *inner;                                     /* the call its answer comes from */
        int (*read_again)(ServiceCall *c, void *read_userdata); /* on timer: read once more */
};

/* Calls a shutdown lets finish (store writes, reloads, store reads); waits and drains are answered at
 * once then. */
static bool call_is_pending(CallKind kind) {
        return kind == CALL_STORE || kind == CALL_RELOAD || kind == CALL_READ;
}

static ServiceCall *call_new(ServiceCalls *calls, CallKind kind, const ServiceAnswer *a) {
        ServiceCall *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->calls = calls;
        c->kind = kind;
        c->reply = a->reply;
        c->userdata_free = a->userdata_free;
        c->detach = a->detach;
        c->userdata = a->userdata;
        c->next = calls->head;
        if (c->next)
                c->next->prev = c;
        calls->head = c;
        if (call_is_pending(kind))
                calls->n_pending++;
        return c;
}

static void call_destroy(ServiceCall *c) {
        ServiceCalls *calls = c->calls;

        if (c->prev)
                c->prev->next = c->next;
        else
                calls->head = c->next;
        if (c->next)
                c->next->prev = c->prev;
        if (call_is_pending(c->kind))
                calls->n_pending--;
        c->watch = ledger_watch_free(c->watch);
        c->timer = sd_event_source_disable_unref(c->timer);
        if (c->inner) {
                c->inner->reply = NULL; /* nobody to hand its answer to */
                c->inner = service_call_free(c->inner);
        }
        if (c->read_userdata_free)
                c->read_userdata_free(c->read_userdata);
        if (c->userdata_free)
                c->userdata_free(c->userdata);
        free(c->line);
        free(c);
}

/* Hands the answer to the connection (if it is still there) and ends the call. */
static void call_answer(ServiceCall *c, char *line, size_t len) {
        if (c->reply && line) {
                c->userdata_free = NULL; /* reply owns userdata now */
                c->reply(line, len, c->userdata);
        } else {
                if (c->reply)
                        log_error_errno(ENOMEM, "Cannot build a response: %m");
                free(line);
        }
        call_destroy(c);
}

static void call_answer_error(ServiceCall *c, ErrorCode code, const char *fmt, ...) _printf_(3, 4);

static void call_answer_error(ServiceCall *c, ErrorCode code, const char *fmt, ...) {
        ErrorReply e = {.code = code};
        va_list ap;
        char *line;
        size_t len = 0;

        va_start(ap, fmt);
        (void) vsnprintf(e.message, sizeof(e.message), fmt, ap);
        va_end(ap);
        metrics_refused(c->calls->metrics, code);
        line = response_error(&e, &len);
        call_answer(c, line, len);
}

static void call_answer_record(ServiceCall *c, const TaskRecord *t) {
        size_t len = 0;
        char *line = response_finish(response_ok_task(t), &len);

        call_answer(c, line, len);
}

bool service_call_is_store_write(const ServiceCall *c) {
        return c && c->kind == CALL_STORE;
}

ServiceCall *service_call_free(ServiceCall *c) {
        if (!c)
                return NULL;
        if (c->kind == CALL_READ && c->reading) {
                c->reply = NULL; /* ends when the read is back */
                return NULL;
        }
        if (c->kind == CALL_STORE && c->outstanding > 0) {
                /* The store still holds c as its callback's userdata: finish when it reports, quietly
                 * unless the answer's owner asked to see it all the same. */
                if (c->detach)
                        c->detach(c->userdata);
                else
                        c->reply = NULL;
                return NULL;
        }
        call_destroy(c);
        return NULL;
}

void service_calls_done(ServiceCalls *calls) {
        while (calls->head)
                call_destroy(calls->head);
        calls->remote_timer = sd_event_source_disable_unref(calls->remote_timer);
}

/* --- store writes --- */

/* All writes of a store call have completed (or none could start): the service settles the submission
 * it reports (undone when it did not commit, so that "unavailable" means nothing was accepted).
 * Returns the first error. */
static int store_call_settle(ServiceCall *c) {
        ServiceCalls *calls = c->calls;

        if (c->submitted_id != 0 && calls->settled)
                calls->settled(c->submitted_id, c->error, calls->userdata);
        if (c->error < 0)
                log_error_errno(c->error, "Store write failed: %m");
        return c->error;
}

/* A submission that could not be stored was taken back; any other change stands in memory only. */
static const char *store_failed_message(const ServiceCall *c) {
        return c->submitted_id != 0 ? "the store is unavailable; nothing was accepted"
                                    : "the store is unavailable; the change was not recorded";
}

static void store_write_done(int error, void *userdata) {
        ServiceCall *c = userdata;

        if (error < 0 && c->error == 0)
                c->error = error;
        if (--c->outstanding > 0)
                return;
        if (store_call_settle(c) < 0) {
                call_answer_error(c, ERR_UNAVAILABLE, "%s", store_failed_message(c));
                return;
        }
        call_answer(c, TAKE_PTR(c->line), c->len);
}

/* Counts a write that was queued, or keeps the first error of one that was not. */
static int store_call_add(ServiceCall *c, int r) {
        if (r < 0) {
                if (c->error == 0)
                        c->error = r;
                return r;
        }
        c->outstanding++;
        return 0;
}

int service_call_store_write(ServiceCall *c, int (*write)(Store *, const TaskRecord *, StoreDoneFn, void *),
                             const TaskRecord *t) {
        return store_call_add(c, write(c->calls->store, t, store_write_done, c));
}

int service_call_store_delete(ServiceCall *c, uint64_t id) {
        return store_call_add(c, store_delete(c->calls->store, id, store_write_done, c));
}

int service_call_store_pause(ServiceCall *c, const PausedTask *p) {
        return store_call_add(c,
                              store_pause(c->calls->store, p->task, p->by, p->since, store_write_done, c));
}

int service_call_store_resume(ServiceCall *c, const char *task) {
        return store_call_add(c, store_resume(c->calls->store, task, store_write_done, c));
}

int service_call_after_writes(ServiceCalls *calls, ServiceAnswer *a, uint64_t submitted_id,
                              ServiceCallWriteFn write_fn, void *userdata) {
        ErrorReply failed = {.code = ERR_UNAVAILABLE};
        ServiceCall *c;
        int r;

        if (!calls->store)
                return 0;

        c = call_new(calls, CALL_STORE, a);
        if (!c)
                return -ENOMEM;
        c->line = TAKE_PTR(a->line);
        c->len = a->len;
        c->submitted_id = submitted_id;
        r = write_fn(c, userdata);
        if (r < 0 && c->error == 0)
                c->error = r;
        if (c->outstanding > 0) {
                a->call = c;
                return 0;
        }

        /* Nothing to wait for: no write was needed, or none could be queued. */
        if (store_call_settle(c) < 0) {
                snprintf(failed.message, sizeof(failed.message), "%s", store_failed_message(c));
                a->refused = failed.code;
                a->line = response_error(&failed, &a->len);
                r = a->line ? 0 : -ENOMEM;
        } else {
                a->line = TAKE_PTR(c->line);
                r = 0;
        }
        call_destroy(c);
        return r;
}

/* --- waits --- */

static void wait_synced(StoreRead *result, void *userdata) {
        /* Whatever the store says: the answer is what this host knows (a write not made yet is made
         * later, as every change of a record is). */
        store_write_done(0, userdata);
}

static int wait_sync(sd_event_source *s, void *userdata) {
        ServiceCall *c = userdata;

        c->timer = sd_event_source_disable_unref(c->timer);
        if (store_sync(c->calls->store, wait_synced, c) < 0)
                store_write_done(0, c);
        return 0;
}

/* With the store, the answer of a wait whose task has become final goes out once the store has
 * committed the writes queued before it, the task's outcome among them: a client that reads the row
 * next, on any host, finds it final. The outcome's write is queued just after the ledger's change
 * that fires the watch, hence the sync on the loop's next turn. Meanwhile the call is a store call:
 * the answer is ready and waits for the store. Returns false when it cannot be arranged. */
static bool wait_answer_after_sync(ServiceCall *c, const TaskRecord *t) {
        if (!c->calls->store)
                return false;
        c->line = response_finish(response_ok_task(t), &c->len);
        if (!c->line)
                return false;
        c->timer = sd_event_source_disable_unref(c->timer);
        if (sd_event_add_defer(c->calls->event, &c->timer, wait_sync, c) < 0) {
                free(c->line);
                c->line = NULL;
                return false;
        }
        c->kind = CALL_STORE;
        c->calls->n_pending++;
        c->outstanding = 1; /* the sync */
        return true;
}

static void wait_fired(const TaskRecord *t, bool forgotten, void *userdata) {
        ServiceCall *c = userdata;

        c->watch = NULL; /* the ledger frees it after this returns */
        if (forgotten) {
                call_answer_error(c, ERR_NOT_FOUND, "task %llu was forgotten", (unsigned long long) t->id);
                return;
        }
        if (task_state_is_final(t->state) && wait_answer_after_sync(c, t))
                return;
        call_answer_record(c, t);
}

static void wait_answer_now(ServiceCall *c) {
        TaskRecord *t = ledger_get(c->calls->ledger, c->id);

        if (!t) {
                call_answer_error(c, ERR_NOT_FOUND, "no task with id %llu", (unsigned long long) c->id);
                return;
        }
        call_answer_record(c, t);
}

static void remote_poll_soon(ServiceCalls *calls, uint64_t usec);

static int wait_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        ServiceCall *c = userdata;

        /* Not an error: the client gets the current state and decides. A remote row's is read first. */
        if (c->remote) {
                c->timed_out = true;
                remote_poll_soon(c->calls, 0);
                return 0;
        }
        wait_answer_now(c);
        return 0;
}

/* A wait (in memory or of a remote row) is answered with the state it has once timeout_usec passed. */
static int wait_arm_timeout(ServiceCall *c, uint64_t timeout_usec) {
        return sd_event_add_time_relative(c->calls->event, &c->timer, CLOCK_MONOTONIC, timeout_usec,
                                          10 * USEC_PER_MSEC, wait_timeout, c);
}

static int call_wait(ServiceCalls *calls, TaskRecord *t, uint64_t timeout_usec, bool progress,
                     ServiceAnswer *a) {
        ServiceCall *c;
        int r;

        c = call_new(calls, CALL_WAIT, a);
        if (!c)
                return -ENOMEM;
        c->id = t->id;
        r = progress ? ledger_watch_progress(calls->ledger, t, wait_fired, c, &c->watch)
                     : ledger_watch(calls->ledger, t, wait_fired, c, &c->watch);
        if (r >= 0)
                r = wait_arm_timeout(c, timeout_usec);
        if (r < 0) {
                call_destroy(c);
                return r;
        }
        a->call = c;
        return 0;
}

int service_call_wait(ServiceCalls *calls, TaskRecord *t, uint64_t timeout_usec, ServiceAnswer *a) {
        return call_wait(calls, t, timeout_usec, false, a);
}

/* --- waits for rows this host does not hold ---
 *
 * Another host runs the task (or will): nothing here sees it change, so its row is read again. One
 * read takes the rows of every such wait together, first 50 ms after a new wait, then at twice the
 * interval while nothing changes, up to a second; a change (a state moved, a wait answered or added)
 * starts again at 50 ms. */

#define REMOTE_POLL_FIRST_USEC (50 * USEC_PER_MSEC)
#define REMOTE_POLL_MAX_USEC   USEC_PER_SEC

static void remote_polled(StoreRead *result, void *userdata);

static int remote_poll(sd_event_source *source, uint64_t usec, void *userdata) {
        ServiceCalls *calls = userdata;
        _cleanup_free_ uint64_t *ids = NULL;
        size_t n = 0, cap = 0;

        for (ServiceCall *c = calls->head; c; c = c->next) {
                if (c->kind != CALL_WAIT || !c->remote)
                        continue;
                if (n == cap) {
                        uint64_t *p = realloc(ids, (cap = cap ? 2 * cap : 16) * sizeof(*ids));
                        if (!p)
                                break;
                        ids = p;
                }
                ids[n++] = c->id;
                c->polling = true;
        }
        if (n == 0)
                return 0;
        if (store_read_tasks(calls->store, ids, n, remote_polled, calls) < 0) {
                remote_poll_soon(calls, REMOTE_POLL_MAX_USEC);
                return 0;
        }
        calls->remote_reading = true;
        return 0;
}

static void remote_poll_soon(ServiceCalls *calls, uint64_t usec) {
        if (calls->remote_reading)
                return; /* the read in flight sets the next tick */
        if (!calls->remote_timer) {
                if (sd_event_add_time_relative(calls->event, &calls->remote_timer, CLOCK_MONOTONIC, usec,
                                               USEC_PER_MSEC, remote_poll, calls) < 0)
                        log_warning("Cannot poll the rows waited for on other nodes.");
                (void) sd_event_source_set_enabled(calls->remote_timer, SD_EVENT_ONESHOT);
                return;
        }
        (void) sd_event_source_set_time_relative(calls->remote_timer, usec);
        (void) sd_event_source_set_enabled(calls->remote_timer, SD_EVENT_ONESHOT);
}

static const TaskRecord *find_record(const StoreRead *result, uint64_t id) {
        for (size_t i = 0; i < result->n_records; i++)
                if (result->records[i]->id == id)
                        return result->records[i];
        return NULL;
}

/* Handles one wait the read was for; true when it was answered (and other calls may be gone with it). */
static bool remote_wait_polled(ServiceCall *c, const StoreRead *result, bool *changed, bool *left) {
        const TaskRecord *t;

        c->polling = false;
        if (result->error < 0) {
                if (!c->timed_out) {
                        *left = true;
                        return false;
                }
                call_answer_error(c, ERR_UNAVAILABLE, "the store is unavailable; cannot look task %llu up",
                                  (unsigned long long) c->id);
                return true;
        }
        t = find_record(result, c->id);
        if (!t) {
                call_answer_error(c, ERR_NOT_FOUND, "task %llu was forgotten", (unsigned long long) c->id);
                *changed = true;
                return true;
        }
        if (task_state_is_final(t->state) || c->timed_out) {
                call_answer_record(c, t);
                *changed = true;
                return true;
        }
        *changed = *changed || t->state != c->last_state;
        c->last_state = t->state;
        *left = true;
        return false;
}

static void remote_polled(StoreRead *result, void *userdata) {
        ServiceCalls *calls = userdata;
        bool changed = false, left = false, answered = true;

        calls->remote_reading = false;
        if (result->error == -ECANCELED)
                return; /* the store is going away */
        /* A wait that came after the read was sent is read at the next tick, soon. */
        for (ServiceCall *c = calls->head; c; c = c->next)
                if (c->kind == CALL_WAIT && c->remote && !c->polling)
                        changed = left = true;
        /* An answer may end other calls (the read-through call it answers through is the next in the
         * list), so the walk starts again after each one; a wait is handled once (polling cleared). */
        while (answered) {
                answered = false;
                for (ServiceCall *c = calls->head; c && !answered; c = answered ? NULL : c->next)
                        if (c->kind == CALL_WAIT && c->remote && c->polling)
                                answered = remote_wait_polled(c, result, &changed, &left);
        }
        if (result->error < 0)
                calls->remote_interval = REMOTE_POLL_MAX_USEC;
        else if (changed)
                calls->remote_interval = REMOTE_POLL_FIRST_USEC;
        else
                calls->remote_interval = 2 * calls->remote_interval < REMOTE_POLL_MAX_USEC
                                                 ? 2 * calls->remote_interval
                                                 : REMOTE_POLL_MAX_USEC;
        if (left)
                remote_poll_soon(calls, calls->remote_interval);
}

int service_call_wait_remote(ServiceCalls *calls, const TaskRecord *t, uint64_t timeout_usec,
                             ServiceAnswer *a) {
        ServiceCall *c = call_new(calls, CALL_WAIT, a);
        int r;

        if (!c)
                return -ENOMEM;
        c->id = t->id;
        c->remote = true;
        c->last_state = t->state;
        r = wait_arm_timeout(c, timeout_usec);
        if (r < 0) {
                call_destroy(c);
                return r;
        }
        calls->remote_interval = REMOTE_POLL_FIRST_USEC;
        remote_poll_soon(calls, REMOTE_POLL_FIRST_USEC);
        a->call = c;
        return 0;
}

int service_call_wait_progress(ServiceCalls *calls, TaskRecord *t, uint64_t timeout_usec, ServiceAnswer *a) {
        return call_wait(calls, t, timeout_usec, true, a);
}

/* --- store reads --- */

ServiceCall *service_call_read(ServiceCalls *calls, const ServiceAnswer *a, ServiceCallReadFn done,
                               void *userdata, void (*userdata_free)(void *)) {
        ServiceCall *c = call_new(calls, CALL_READ, a);

        if (!c) {
                if (userdata_free)
                        userdata_free(userdata);
                return NULL;
        }
        c->reading = true;
        c->read_fn = done;
        c->read_userdata = userdata;
        c->read_userdata_free = userdata_free;
        return c;
}

void service_call_read_done(StoreRead *result, void *call) {
        ServiceCall *c = call;

        c->reading = false;
        if (!c->reply && !c->changing) { /* its connection went away */
                call_destroy(c);
                return;
        }
        c->read_fn(c, result, c->read_userdata);
}

/* The read of service_call_read_later() is due (or the daemon stops: it goes now, and is answered
 * from what it finds). */
static void read_again_now(ServiceCall *c) {
        int r;

        c->timer = sd_event_source_disable_unref(c->timer);
        c->reading = true;
        r = c->read_again(c, c->read_userdata);
        if (r < 0) {
                c->reading = false;
                call_answer_error(c, ERR_UNAVAILABLE, "the store is unavailable: %s", strerror(-r));
        }
}

static int read_again_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        read_again_now(userdata);
        return 0;
}

int service_call_read_later(ServiceCall *c, uint64_t delay_usec,
                            int (*again)(ServiceCall *c, void *userdata)) {
        c->read_again = again;
        return sd_event_add_time_relative(c->calls->event, &c->timer, CLOCK_MONOTONIC, delay_usec,
                                          10 * USEC_PER_MSEC, read_again_timer, c);
}

void service_call_read_changes(ServiceCall *c) {
        c->changing = true;
}

void service_call_read_abandon(ServiceCall *c) {
        c->reply = NULL;
        c->userdata_free = NULL; /* the caller still answers through its ServiceAnswer */
        call_destroy(c);
}

void service_call_answer(ServiceCall *c, char *line, size_t len) {
        call_answer(c, line, len);
}

static void forward_reply(char *line, size_t len, void *userdata) {
        ServiceCall *c = userdata;

        c->inner = NULL; /* it ends after this returns */
        call_answer(c, line, len);
}

ServiceAnswer service_call_forward_answer(ServiceCall *c) {
        return (ServiceAnswer){.reply = forward_reply, .userdata = c, .store_read = true};
}

void service_call_forward(ServiceCall *c, ServiceCall *inner) {
        c->inner = inner;
}

/* --- reloads and shutdown --- */

int service_call_reload(ServiceCalls *calls, unsigned round, ServiceAnswer *a) {
        ServiceCall *c = call_new(calls, CALL_RELOAD, a);

        if (!c)
                return -ENOMEM;
        c->round = round;
        a->call = c;
        return 0;
}

void service_calls_reload_done(ServiceCalls *calls, unsigned round, const ErrorReply *error) {
        for (ServiceCall *c = calls->head, *next; c; c = next) {
                next = c->next;
                if (c->kind != CALL_RELOAD || c->round > round)
                        continue;
                if (!error) {
                        size_t len = 0;
                        char *line = response_finish(response_ok(), &len);
                        call_answer(c, line, len);
                } else
                        call_answer_error(c, error->code, "%s", error->message);
        }
}

/* Ends c for the shutdown, or starts its last read; false when c is left to finish. */
static bool shutdown_one(ServiceCall *c) {
        if (c->kind == CALL_WAIT && c->remote)
                call_answer_error(c, ERR_UNAVAILABLE, "the daemon is shutting down");
        else if (c->kind == CALL_WAIT)
                wait_answer_now(c);
        else if (c->kind == CALL_READ && c->timer)
                read_again_now(c);
        else if (c->kind == CALL_RELOAD)
                call_answer_error(c, ERR_UNAVAILABLE, "the daemon is shutting down");
        else if (c->kind == CALL_DRAIN)
                call_answer_error(c, ERR_UNAVAILABLE,
                                  "the daemon is shutting down; this host stays draining");
        else
                return false;
        return true;
}

void service_calls_shutdown(ServiceCalls *calls) {
        bool again = true;

        /* Ending a call may end others (the read-through call it answers through is the next in the
         * list), so the walk starts again after each call it handles; a handled call is gone, or no
         * longer matches (its read started). */
        while (again) {
                again = false;
                for (ServiceCall *c = calls->head; c && !again; c = again ? NULL : c->next)
                        again = shutdown_one(c);
        }
}

/* --- drains --- */

static void drain_answer_now(ServiceCall *c) {
        size_t len = 0;
        char *line = c->calls->drain_answer(&len, c->calls->userdata);

        call_answer(c, line, len);
}

static int drain_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        /* Not an error: the answer says how many runs are left, and the client decides. */
        drain_answer_now(userdata);
        return 0;
}

int service_call_drain(ServiceCalls *calls, uint64_t timeout_usec, ServiceAnswer *a) {
        ServiceCall *c = call_new(calls, CALL_DRAIN, a);
        int r;

        if (!c)
                return -ENOMEM;
        r = sd_event_add_time_relative(calls->event, &c->timer, CLOCK_MONOTONIC, timeout_usec,
                                       10 * USEC_PER_MSEC, drain_timeout, c);
        if (r < 0) {
                call_destroy(c);
                return r;
        }
        a->call = c;
        return 0;
}

void service_calls_drain_done(ServiceCalls *calls) {
        for (ServiceCall *c = calls->head, *next; c; c = next) {
                next = c->next;
                if (c->kind == CALL_DRAIN)
                        drain_answer_now(c);
        }
}
