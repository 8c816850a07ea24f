/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The dispatcher's private state and the helpers its modules share. The dispatcher is one object
 * kept in six files, one concern each: dispatcher.c (the queue pass, launches, finished runs, store
 * writes), dispatcher-link.c (the launcher's messages and the reconciliation after a connect),
 * dispatcher-refill.c (the queue's window read from the store), dispatcher-stdin.c (queued tasks'
 * stdin left in the store until the launch), dispatcher-purge.c (retention) and dispatcher-alert.c
 * (the on_failure alerts). Only these files include this header; everyone else
 * goes through front/dispatcher.h. It does not include front/dispatcher.h (the dispatcher module
 * includes it, and a module circle is refused): the files that also call the public functions
 * include both.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "front/dispatcher-events.h"
#include "front/launcher-link.h"
#include "front/ledger.h"
#include "front/metrics.h"
#include "front/paused-tasks.h"
#include "front/store.h"
#include "shared/config.h"
#include "shared/lproto.h"
#include "shared/util.h"

/* The same type front/dispatcher.h declares (C11 allows the repeat). */
typedef struct Dispatcher Dispatcher;

/* Runs of one task name (or raw command) in state running, for its "concurrency" limit. */
typedef struct RunCount {
        char *key;
        unsigned n;
} RunCount;

/* A stop the launcher must get for a running task (cancel). sent is cleared when the link drops, so
 * a restarted launcher is asked again. */
typedef struct StopRequest {
        uint64_t id;
        bool sent;
} StopRequest;

/* A store write whose completion still has work to do (the ack of a finished run). Kept in a list so
 * the dispatcher can let go of them if it is freed first. */
typedef struct PendingWrite {
        struct Dispatcher *dispatcher; /* NULL once the dispatcher is gone */
        uint64_t id;                   /* the record written */
        uint64_t ack_id;               /* 0: nothing to ack */
        uint64_t launch_id;            /* 0: nothing to launch once written */
        uint64_t alert_id;             /* 0: no alert waits for its insert to commit */
        struct PendingWrite *prev, *next;
} PendingWrite;

struct Dispatcher {
        sd_event *event;
        Ledger *ledger;
        Store *store;
        LauncherLink *link;
        const Config *cfg;
        DispatcherEvents events;
        void *userdata;

        sd_event_source *pass;   /* deferred, coalesced queue pass */
        sd_event_source *wakeup; /* CLOCK_REALTIME: the next delayed or backed-off task */
        sd_event_source *purge;  /* retention, hourly */

        unsigned n_running;
        RunCount *counts;
        size_t n_counts;

        bool draining;      /* this host starts no new runs (drain) */
        bool reconciling;   /* list sent after a connect; list_end not seen yet */
        bool ready;         /* connected and reconciled: launches may go out */
        uint64_t *reported; /* ids the launcher listed as running during reconciliation */
        size_t n_reported, cap_reported;

        StopRequest *stops;
        size_t n_stops;

        uint64_t *held; /* submitted, store insert not committed yet: do not start */
        size_t n_held;

        PendingWrite *writes;
        unsigned n_writes;

        Metrics *metrics; /* borrowed; NULL: not counted */

        struct PurgeRun *purge_run; /* a step queued in the store */

        bool queue_more;    /* the store may hold queued rows the ledger has not */
        bool refill_forced; /* refill however full the window is */
        bool refill_idle;   /* the last read brought nothing new: wait for a launch */
        bool spilled;       /* a submission left memory since the last read was sent */
        /* The database holds queued rows past the window: the last read was full, or a submission
         * left memory since. Unlike queue_more (which any hint of new rows sets, and which asks for
         * a read), what decides whether a new submission waits in the database. */
        bool queue_beyond;
        PausedTasks window_skip;       /* names the last read left out (paused, at their limit) */
        struct Refill *refill;         /* a read of the queue in flight */
        sd_event_source *refill_retry; /* after a failed read */

        uint64_t *stdin_batch; /* held this pass: their stdin is read when the pass ends */
        size_t n_stdin_batch, cap_stdin_batch;
        unsigned n_stdin_reading;      /* held for a stdin read (in a batch, in flight, or retried) */
        struct StdinRead *stdin_reads; /* in flight, or waiting to retry */
        uint64_t *stdin_stored;        /* submissions whose insert committed: drop their stdin (or all) */
        size_t n_stdin_stored, cap_stdin_stored;
        unsigned window; /* the queued rows a read (a claim) takes */
        char **owned;    /* limited task names this node owns (NULL-terminated) */
        size_t n_owned;
        bool purges_store; /* the leader of the nodes on the database purges its rows */
        bool shared_queue; /* other nodes are alive: rows past the window are let go for them */
};
/* ---- dispatcher.c: the core, for the other modules ---- */

/* Tells the daemon that counts of queued/running tasks may have changed. */
void dispatcher_changed(Dispatcher *d);

/* What a record is named in logs ("command" for a raw command), and its definition in the config
 * (NULL: no longer configured). */
const char *dispatcher_record_name(const TaskRecord *t);
const TaskDef *dispatcher_record_def(const Dispatcher *d, const TaskRecord *t);

/* Whether t's task name lets a run of it start now (userdata: the Dispatcher). */
bool dispatcher_name_can_start(const TaskRecord *t, void *userdata);

/* Whether task id is held (dispatcher_hold(): its insert has not committed, or its stdin is being
 * read for its launch). */
bool dispatcher_holds(const Dispatcher *d, uint64_t id);
/* Counts t as running against max_running and its concurrency. */
int dispatcher_running_add(Dispatcher *d, const TaskRecord *t);

/* The stop a cancel asked for the run of task id, or NULL. */
StopRequest *dispatcher_stop_find(Dispatcher *d, uint64_t id);

/* Tells the launcher it may drop the result of task id. */
void dispatcher_send_ack(Dispatcher *d, uint64_t id);

/* A store write listed until the store answers it; dispatcher_write_done() is the store's callback
 * (userdata: the PendingWrite). */
void dispatcher_write_link(Dispatcher *d, PendingWrite *w);
void dispatcher_write_done(int error, void *userdata);
bool dispatcher_launch_waits_for_write(const Dispatcher *d, uint64_t id);

/* Writes t through the store; then acks ack_id (0: none) to the launcher. */
void dispatcher_persist(Dispatcher *d, const TaskRecord *t, uint64_t ack_id);

/* running -> finished (or queued again for another attempt). ack: the launcher holds this result.
 * _without_run: a result made here (lost, rejected, cancelled), never acked. */
void dispatcher_finish_run(Dispatcher *d, TaskRecord *t, const RunResult *result, bool ack);
void dispatcher_finish_without_run(Dispatcher *d, TaskRecord *t, const char *result, const char *fmt, ...)
        _printf_(4, 5);

/* ---- dispatcher-alert.c ---- */

/* failed has failed for good: submits its on_failure task, if it has one. */
void dispatcher_alert_submit(Dispatcher *d, const TaskRecord *failed);
/* The store answered the insert of alert task id. */
void dispatcher_alert_written(Dispatcher *d, uint64_t id, int error);

/* ---- dispatcher-refill.c ---- */

/* Reads the queue's window from the store when it has drained (every pass calls it). */
void dispatcher_refill_queue(Dispatcher *d);
/* t left the queue for a run. */
void dispatcher_refill_took(Dispatcher *d, const TaskRecord *t);
/* t, a submission whose insert has committed, leaves memory if the window is full (see there).
 * Returns whether it went. */
bool dispatcher_refill_spill(Dispatcher *d, TaskRecord *t, uint64_t now);
/* Lets go of a read in flight and the retry timer (dispatcher_free()). */
void dispatcher_refill_stop(Dispatcher *d);

/* ---- dispatcher-stdin.c ---- */

/* Whether t's stdin must be read before its launch; if so, t is held and joins this pass's read. */
bool dispatcher_stdin_wanted(Dispatcher *d, TaskRecord *t);
/* Queues the read of this pass's batch (the end of every pass). */
void dispatcher_stdin_read(Dispatcher *d);
/* Drops the stdin of the submissions stored since the last pass that this pass did not launch, or the
 * whole record past the window (dispatcher_refill_spill()). */
void dispatcher_stdin_drop_stored(Dispatcher *d);
/* The launcher has t's launch: its stdin goes (the store keeps it). */
void dispatcher_stdin_launched(Dispatcher *d, TaskRecord *t);
/* Lets go of the reads in flight and their retries (dispatcher_free()). */
void dispatcher_stdin_stop(Dispatcher *d);

/* ---- dispatcher-purge.c ---- */

/* Arms the retention timer: shortly after start, then hourly. */
int dispatcher_purge_start(Dispatcher *d);
/* Lets go of a purge step in flight and the timer (dispatcher_free()). */
void dispatcher_purge_stop(Dispatcher *d);
