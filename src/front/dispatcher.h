/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The dispatcher runs the queue: it starts runnable tasks within max_running and each task's
 * concurrency by sending launch messages to the launcher, applies the launcher's results to the
 * ledger (and the store), arms the timer for delayed and backed-off tasks, reconciles runs after
 * the launcher link comes back, purges old finished records once an hour, keeps at most
 * max_records finished records in memory, and (MySQL store) refills the ledger's window of the queue
 * from the database as it drains. Its code is in dispatcher.c and the dispatcher-*.c files, one
 * concern each (front/dispatcher-internal.h).
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "shared/config.h"
#include "front/dispatcher-events.h"
#include "front/launcher-link.h"
#include "front/ledger.h"
#include "front/metrics.h"
#include "shared/lproto.h"
#include "front/store.h"

typedef struct Dispatcher Dispatcher;

/* store may be NULL (memory store). cfg is borrowed: dispatcher_set_config() replaces it. */
int dispatcher_new(sd_event *event, Ledger *ledger, Store *store, LauncherLink *link, const Config *cfg,
                   const DispatcherEvents *events, void *userdata, Dispatcher **ret);
Dispatcher *dispatcher_free(Dispatcher *d);

void dispatcher_set_config(Dispatcher *d, const Config *cfg);
/* Runs started and finished are counted in m (borrowed; NULL: not counted). */
void dispatcher_set_metrics(Dispatcher *d, Metrics *m);

/* Something may have become runnable: schedule a pass (coalesced, runs from the event loop). */
void dispatcher_kick(Dispatcher *d);

/* The launcher link state and its messages. */
void dispatcher_link_up(Dispatcher *d);
void dispatcher_link_down(Dispatcher *d);
void dispatcher_handle_message(Dispatcher *d, const LauncherMsg *m);

/* Whether the link is connected and the launcher's live runs are known (launches may go out). */
bool dispatcher_link_ready(const Dispatcher *d);

/* Cancel of a running task: asks the launcher to stop its run (now, or once the link is back).
 * The record becomes cancelled when the run's result comes in. */
int dispatcher_stop_task(Dispatcher *d, TaskRecord *t);

/* A submitted record whose store insert has not committed yet must not start; release() lets it. */
int dispatcher_hold(Dispatcher *d, uint64_t id);
/* A new submission (MySQL store): whether it leaves memory once its insert commits, because the
 * queue's window is full or the database holds rows before it (dispatcher-refill.c). */
void dispatcher_submitted(Dispatcher *d, TaskRecord *t);
void dispatcher_release(Dispatcher *d, uint64_t id);
/* The insert of submitted record id has committed: with a store, its stdin leaves memory after the
 * next pass unless that pass launches it (the launch reads it back from the row). */
void dispatcher_stdin_stored(Dispatcher *d, uint64_t id);

/* Draining: no new run starts on this host (queued records stay queued; running ones finish and are
 * recorded as always). Off again: the queue is taken up at once. */
void dispatcher_set_draining(Dispatcher *d, bool draining);
bool dispatcher_draining(const Dispatcher *d);

/* Drops the oldest finished records past max_records from memory (every pass does it too); with the
 * MySQL store their rows stay. */
void dispatcher_trim(Dispatcher *d);

/* The store holds queued rows the ledger may not have (they were queued again in the database): the
 * window of the queue is refilled. */
void dispatcher_queue_grew(Dispatcher *d);

/* A task name was paused or resumed: the window of the queue is read again (MySQL store), since it
 * leaves paused names' rows out. */
void dispatcher_paused_changed(Dispatcher *d);

/* Several nodes on one database (cluster.c): whether this node leads (it purges the store's old rows),
 * whether others are alive (shared: its submissions past the window are let go for them to claim)
 * and how many queued rows a claim takes (the whole window while it is alone). */
void dispatcher_set_cluster(Dispatcher *d, bool leader, bool shared, unsigned window);
/* Whether other nodes are alive on the database: a record this node finished may have been run again
 * by one of them since. */
bool dispatcher_shares_queue(const Dispatcher *d);
/* The task names with a concurrency limit this node owns (owned is taken; NULL-terminated): only
 * their owner starts runs of such a name, so that the limit holds across nodes. With the MySQL store a
 * limited name this node does not own cannot start here. */
void dispatcher_set_owned(Dispatcher *d, char **owned, size_t n_owned);
bool dispatcher_owns(const Dispatcher *d, const char *task);
/* Whether t may run on this node (MySQL store): its "hosts" name it, and a limited name is owned here.
 * A new record that may not is written unclaimed, for the other nodes. */
bool dispatcher_runs_here(const Dispatcher *d, const TaskRecord *t);
/* A heartbeat: with room for runs and nothing in memory that could start, claim again (other nodes'
 * rows, lost runs queued again, rows routed here). */
void dispatcher_poll_claims(Dispatcher *d);

/* Tasks in state running (launched and not finished). */
unsigned dispatcher_n_running(const Dispatcher *d);

/* Store writes started by the dispatcher that have not completed (shutdown waits for them). */
unsigned dispatcher_n_pending_writes(const Dispatcher *d);
