/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Durable store behind the ledger (MySQL/MariaDB). The rows are the truth; the ledger holds the
 * working set in memory (running records, a window of the queue, recently finished records);
 * the store writes every change through, asynchronously, and reports when it is committed. The
 * front acknowledges a submission only from the insert's completion callback. Writes queued
 * together are committed in one transaction (group commit). With "store": {"type": "memory"} there
 * is no Store at all (NULL) and the front skips these calls.
 *
 * All callbacks run on the front's sd-event loop thread.
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "shared/config.h"
#include "shared/util.h"
#include "front/ledger.h"
#include "front/paused-tasks.h"

typedef struct Store Store;

/* error is 0 when committed, negative (e.g. -ENOTCONN: store unreachable) when not. */
typedef void (*StoreDoneFn)(int error, void *userdata);

/* Connects (credentials from the option file and group in cfg), creates or migrates the schema,
 * loads the running records and the first STORE_QUEUE_WINDOW queued ones (dispatch order) and the
 * paused task names into l, and sets the ledger's next id. Blocking: called once at start, before
 * READY=1. */
int store_open(const Config *cfg, sd_event *event, Ledger *l, Store **ret);
/* The daemon stops soon: changes the database cannot take now (it is unreachable, or refuses writes)
 * get one more try, then are given up rather than held, so the stop is not held up by them. */
void store_shutdown(Store *s);
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);

/* Queue a write of the record's current values (copied now). done may be NULL. A queued or running
 * record is written as claimed by this node (docs/cluster.md), but for a new one that runs_here
 * (store_set_runs_here()) says may not run here: that row is left for the other nodes. */
int store_insert(Store *s, const TaskRecord *t, StoreDoneFn done, void *userdata);
int store_update(Store *s, const TaskRecord *t, StoreDoneFn done, void *userdata);
void store_set_runs_here(Store *s, bool (*fn)(const TaskRecord *t, void *userdata), void *userdata);
/* The write of a run's start or outcome, fenced: done gets -ESTALE when the row is no longer this
 * node's at this attempt (another node has taken the task; the write changed nothing). */
int store_update_run(Store *s, const TaskRecord *t, StoreDoneFn done, void *userdata);
int store_delete(Store *s, uint64_t id, StoreDoneFn done, void *userdata);
/* A task name paused (by the admin `by`, at since) or resumed: a row of paused_tasks, which every
 * front on the database loads at start (store_open() puts it in the ledger). */
int store_pause(Store *s, const char *task, const char *by, uint64_t since, StoreDoneFn done,
                void *userdata);
int store_resume(Store *s, const char *task, StoreDoneFn done, void *userdata);
/* done of a purge step: error as for StoreDoneFn; rows, when committed, how many rows it deleted. */
typedef void (*StorePurgeDoneFn)(int error, uint64_t rows, void *userdata);
/* Queues one step of the retention purge: deletes up to STORE_SQL_PURGE_ROWS (store-sql.h) succeeded
 * and cancelled rows finished before finished_before, oldest first. The caller queues the next step
 * while a step deletes that many, so the purge never holds a long lock on the table. */
int store_purge(Store *s, uint64_t finished_before, StorePurgeDoneFn done, void *userdata);

/*
 * Reads. The rows are the truth; the ledger holds running records, a window of the queue and a cache
 * of finished records (max_records). What is not in memory is read here, on the store's thread, after
 * every write queued before the read has committed, and handed back on the loop. A record deleted
 * through store_delete() after a read was queued is left out of its answer. Records come without
 * their stdin (stdin_data NULL, stdin_len its length): a queued record's stays in the database until
 * its launch reads it (store_read_stdin()).
 */
typedef struct StoreRead {
        int error; /* 0, or e.g. -ENOTCONN; -ECANCELED: the store is being freed, and its read's owner
                    * only frees what it gave (its userdata) */
        TaskRecord **records; /* owned by the store: a callee that keeps one sets its slot to NULL */
        size_t n_records;
        uint64_t counts[_TASK_STATE_MAX]; /* store_read_counts() */
        bool has_oldest_due;              /* store_read_counts(): a queued row is due, since: */
        uint64_t oldest_due;
        uint64_t rows; /* store_retry_state(): the rows it changed */
} StoreRead;
typedef void (*StoreReadFn)(StoreRead *result, void *userdata);

/* Reads nothing: done is called once every write queued before it has been committed (or, the
 * database being unreachable, at once with an error). */
int store_sync(Store *s, StoreReadFn done, void *userdata);
/* The record of one id / of a submitter's idempotency key (none or one record). */
int store_read_task(Store *s, uint64_t id, StoreReadFn done, void *userdata);
int store_read_key(Store *s, const char *submitter, const char *key, StoreReadFn done, void *userdata);
/* Up to limit records above after_id, in state (any if < 0), ascending; without stdin (stdin_len 0). */
int store_read_page(Store *s, int state, uint64_t after_id, unsigned limit, StoreReadFn done,
                    void *userdata);
/* The first limit queued records in dispatch order, without those of the task names in skip (the
 * paused ones): to refill the ledger's window of the queue. skip is read before this returns. */
int store_read_queue(Store *s, unsigned limit, const PausedTasks *skip, StoreReadFn done, void *userdata);
/* The stdin of the n ids (records with stdin_len > 0 whose stdin stayed in the database): a record
 * per row found, with its id, stdin_data and stdin_len set and nothing else. */
int store_read_stdin(Store *s, const uint64_t *ids, size_t n, StoreReadFn done, void *userdata);
/* The same as a claim (store-cluster.c): the rows are claimed by this node in the same transaction,
 * and rows another live node has claimed are left out. */
int store_claim_queue(Store *s, unsigned limit, const PausedTasks *skip, StoreReadFn done, void *userdata);
/* The records of the n ids (those found), without their stdin. */
int store_read_tasks(Store *s, const uint64_t *ids, size_t n, StoreReadFn done, void *userdata);
/* Rows per state, and the run_after of the queued row due the longest. */
int store_read_counts(Store *s, StoreReadFn done, void *userdata);
/* Lets go of this node's claim of the queued rows among the n ids (those it holds): any node may
 * claim them then. */
int store_release_queued(Store *s, const uint64_t *ids, size_t n);
/* Reads each submitter's unfinished rows and makes them the ledger's counts for the quotas: with
 * several hosts, rows the others queue, finish or cancel reach this host's counts only so. */
int store_recount_unfinished(Store *s, StoreReadFn done, void *userdata);
/* Every row in state (failed or cancelled) queued again at now; result->rows says how many. */
int store_retry_state(Store *s, int state, uint64_t now, StoreReadFn done, void *userdata);

/*
 * Several hosts on one database (store-cluster.c, docs/cluster.md).
 */
/* At most this many dead nodes are buried by one heartbeat (the rest by the next). */
#define STORE_BEAT_DEAD_MAX 16
/* At most this many cancel requests are taken by one heartbeat (the rest by the next). */
#define STORE_BEAT_CANCELS_MAX 256
typedef struct StoreBeat {
        bool leader;         /* this node holds the leader row */
        uint64_t live_nodes; /* nodes whose heartbeat is recent, this one counted */
        /* The leader's work: the nodes it found dead, and their running rows queued again / failed */
        char *dead_nodes[STORE_BEAT_DEAD_MAX];
        uint64_t requeued[STORE_BEAT_DEAD_MAX], failed[STORE_BEAT_DEAD_MAX];
        size_t n_dead_nodes;
        /* Of the limited names asked about, those this node owns (NULL-terminated; the callee may
         * take it and set it to NULL) */
        char **owned;
        size_t n_owned;
        /* This node's rows (queued or running) that another node asked to cancel */
        uint64_t cancels[STORE_BEAT_CANCELS_MAX];
        size_t n_cancels;
} StoreBeat;
typedef void (*StoreBeatFn)(int error, StoreBeat *beat, void *userdata);
/* The node's heartbeat: its row of nodes, its ownership of the limited task names (those with a
 * concurrency limit: each is run by one node at a time, which takes it when its owner's lease ran
 * out), the lease of its running rows (its claimed queued rows are held by its heartbeat; those of
 * limited names it does not own are let go, for their owner), the leader row; the leader then buries dead
 * nodes, if may_bury (their lost runs fail for the task names in fail_names and are queued again otherwise,
 * while attempts remain). The names are copied now. */
int store_heartbeat(Store *s, char *const *fail_names, size_t n_fail_names, char *const *limited_names,
                    size_t n_limited_names, bool may_bury, StoreBeatFn done, void *userdata);
typedef void (*StoreIdsFn)(int error, uint64_t start, uint64_t end, void *userdata);
/* Reserves the next block of ids (LEDGER_ID_BLOCK) from the shared counter. */
int store_reserve_ids(Store *s, StoreIdsFn done, void *userdata);

/* A change of a row this node does not hold (another node holds it, or none does: docs/cluster.md),
 * made in the database by a statement conditional on the row as it was read (state, attempts), so
 * that it never overwrites what another node wrote since. */
typedef enum StoreRemoteChange {
        STORE_REMOTE_CANCEL,      /* a queued row no live claim holds: cancelled; one a live node holds:
                                   * a cancel request its holder carries out at its next heartbeat */
        STORE_REMOTE_RETRY,       /* a failed or cancelled row queued again, attempts reset, unclaimed */
        STORE_REMOTE_RETRY_HERE,  /* the same, claimed by this node: a record it holds in memory */
        STORE_REMOTE_FORGET,      /* a row deleted that is neither running nor claimed by a live node */
        STORE_REMOTE_FORGET_HERE, /* a finished row deleted: a record this node holds in memory */
} StoreRemoteChange;
typedef enum StoreRemoteOutcome {
        STORE_REMOTE_UNCHANGED, /* the row was no longer as read (or is gone): nothing written */
        STORE_REMOTE_DONE,      /* written */
        STORE_REMOTE_REQUESTED, /* cancel: the request is on the row, for its holder */
} StoreRemoteOutcome;
typedef struct StoreRemote {
        StoreRemoteChange change;
        uint64_t id;
        TaskState state; /* as read */
        unsigned attempts;
        uint64_t finished_at; /* the *_HERE changes: as this node holds it */
        /* Set on the store's thread, read in done: */
        StoreRemoteOutcome outcome;
        int state_now; /* the row's state after it, -1: no row */
} StoreRemote;
/* change is the caller's until done is called (the store's thread fills it in). */
int store_change_remote(Store *s, StoreRemote *change, StoreReadFn done, void *userdata);
/* An every_host submission as written: the parent's id, and each run's id and node. */
typedef struct StoreEveryHost {
        uint64_t parent_id;
        uint64_t *ids;
        char **nodes; /* NULL-terminated */
        size_t n;
} StoreEveryHost;
typedef void (*StoreEveryHostFn)(int error, const StoreEveryHost *family, void *userdata);
/* Writes t (a record of task_record_new_packed(), taken) as an every_host submission, in one
 * transaction: a parent row (state running, node "*") and one queued run per node alive now (of hosts,
 * when n_hosts > 0), claimed by that node, each with parent_id set (docs/cluster.md). -EHOSTUNREACH
 * when no such node is alive. */
int store_submit_every_host(Store *s, TaskRecord *t, char *const *hosts, size_t n_hosts,
                            StoreEveryHostFn done, void *userdata);

/* The claim of a node that is not alone: max_running and as many again (and a few), so that a node
 * takes what it can start soon and leaves the rest to the others. */
unsigned store_cluster_shared_window(unsigned max_running);

/* False while the database is unreachable (submissions then get "unavailable"). */
bool store_available(Store *s);
