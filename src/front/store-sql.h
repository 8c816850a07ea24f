/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The MySQL store's SQL text, made without a connection: a record as one row of values, the
 * multi-row statements a batch of writes becomes, and a record from a row the store loads. Values
 * travel as hex literals (X'..'), which need no connection to escape and carry any byte (client args
 * and stdin are not necessarily UTF-8). No I/O, no libmysqlclient: the store's database thread
 * sends what is made here.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "front/paused-tasks.h"
#include "front/task-record.h"

/* A purge deletes at most this many rows a statement: a short lock on `tasks`, repeated until done. */
#define STORE_SQL_PURGE_ROWS 1000

/* One statement stays well below the server's default max_allowed_packet (16 MiB). */
#define STORE_SQL_STATEMENT_BYTES_MAX (4 * 1024 * 1024)

typedef enum StoreSqlKind {
        STORE_SQL_INSERT,        /* values: a row */
        STORE_SQL_UPDATE,        /* values: a row; written over the record's row */
        STORE_SQL_DELETE,        /* values: an id */
        STORE_SQL_PURGE,         /* values: a DATETIME literal; up to STORE_SQL_PURGE_ROWS finished records
                                  * before it go, oldest first */
        STORE_SQL_PAUSE,         /* values: a paused task name's row (store_sql_paused_row()) */
        STORE_SQL_RESUME,        /* values: a task name (store_sql_task_name()); its row goes */
        STORE_SQL_FENCED_UPDATE, /* values: a whole statement (store_sql_fenced_update()), alone; it
                                  * changes no row when the fence holds it back */
        STORE_SQL_SETTLE,        /* values: a whole statement (store_sql_settle_parents()), alone */
        _STORE_SQL_KIND_MAX,
} StoreSqlKind;

/* The columns of a row, in the order of store_sql_row(). */
extern const char store_sql_row_columns[];

/* t's values as one row "(...)" of store_sql_row_columns; node names this host in the row of a
 * record that has run, and in that of a queued or running record it holds, which it claims for
 * lease_sec seconds (lease_until; 0: no claim). NULL when out of memory. */
char *store_sql_row(const TaskRecord *t, const char *node, unsigned lease_sec);

/* Whether a row is held by a live node: a running row by its lease, which its node's heartbeat renews;
 * a queued one by its node alone, as long as that node is registered (the leader removes a node it
 * takes for dead, and lets its queued rows go). A queued row carries no lease: renewing one per row
 * would cost every heartbeat a write of the whole claimed window. */
#define STORE_SQL_HELD                                                                                      \
        "(node IS NOT NULL AND (lease_until >= UTC_TIMESTAMP(6)"                                            \
        " OR (state = 'queued' AND node IN (SELECT name FROM nodes))))"
/* The write of a record this node runs (its start, its outcome), fenced: an UPDATE of t's row that
 * changes nothing unless the row is still node's at t's attempt (docs/cluster.md, "Fencing"). NULL
 * when out of memory. */
char *store_sql_fenced_update(const TaskRecord *t, const char *node, unsigned lease_sec);
/* The node column of an every_host parent: no node may be named so (docs/cluster.md). */
#define STORE_SQL_EVERY_HOST_NODE "*"
/* The result of a parent one of whose runs did not succeed. */
#define STORE_SQL_PARENT_FAILED "runs-failed"
/* A row of an every_host submission, parent or run: store_sql_row() and then parent_id (the columns
 * store_sql_row_columns and parent_id). NULL when out of memory. */
char *store_sql_family_row(const TaskRecord *t, const char *node, unsigned lease_sec, uint64_t parent_id);
/* The UPDATE that finishes the every_host parents (parent_id's alone, when not 0) whose runs are all
 * over: succeeded when every run succeeded, else failed with result STORE_SQL_PARENT_FAILED. It
 * changes nothing while a run is queued or running, and may be run again. NULL when out of memory. */
char *store_sql_settle_parents(uint64_t parent_id);
/* A paused task name's row of paused_tasks: (task, paused_by, paused_at). NULL when out of memory. */
char *store_sql_paused_row(const char *task, const char *by, uint64_t since);
/* A task name as a literal (the values of a resume). NULL when out of memory. */
char *store_sql_task_name(const char *task);
/* The values of a delete: the id. NULL when out of memory. */
char *store_sql_id(uint64_t id);
/* usec (CLOCK_REALTIME) as a DATETIME(6) literal in UTC, or NULL (the SQL word) for 0. NULL when out
 * of memory. */
char *store_sql_datetime(uint64_t usec);

typedef struct StoreSqlBuf {
        char *data;
        size_t len, cap;
        bool oom; /* an append failed: the text is incomplete */
} StoreSqlBuf;

/* The statement being built from a batch of writes. Writes of one kind in a row join one multi-row
 * statement (inserts and updates: INSERT .. VALUES, updates with ON DUPLICATE KEY UPDATE; deletes:
 * DELETE .. IN; pauses and resumes likewise on paused_tasks) up to STORE_SQL_STATEMENT_BYTES_MAX; a
 * purge is a statement of its own. */
typedef struct StoreSqlStatement {
        StoreSqlBuf text;
        StoreSqlKind kind; /* of the statement in text, while text.len > 0 */
} StoreSqlStatement;

/* Whether values of kind can join the statement being built (always, when none is). Otherwise the
 * statement is ended and sent first. */
bool store_sql_statement_takes(const StoreSqlStatement *st, StoreSqlKind kind);
/* Adds the values of one write; store_sql_statement_takes() said yes. */
void store_sql_statement_add(StoreSqlStatement *st, StoreSqlKind kind, const char *values);
/* Ends the statement: *ret_sql (valid until the next add) is its text, *ret_len its length, both
 * NULL/0 when there was none; the next add starts a new statement. -ENOMEM when an add failed. */
int store_sql_statement_end(StoreSqlStatement *st, const char **ret_sql, size_t *ret_len);
void store_sql_statement_done(StoreSqlStatement *st);

/* The SELECT of the paused task names: task, paused_by, paused_at (usec since the epoch). */
extern const char store_sql_paused_load_query[];

/* Reads: each row is what store_sql_record_from_row() reads, without the stdin (its length only: a
 * queued record's stays in the database until its launch). The queries made for one call are NULL
 * when out of memory. */
/* Every running record of node (or of no node), in id order. */
char *store_sql_running_query(const char *node);
/* "SELECT <the columns of a record> FROM tasks", for a WHERE to follow. */
extern const char store_sql_select_columns[];
/* The queue's window in memory: the first limit runnable queued records in dispatch order (highest
 * priority, earliest run_after, lowest id), then the limit queued records that become runnable
 * soonest. The first part is the order in which a claim of the next runnable rows (SELECT ... FOR
 * UPDATE SKIP LOCKED) would take them when several fronts share a database. Rows of the task names
 * in skip (paused ones; NULL for none) are left out: they cannot start, and must not fill the window. */
char *store_sql_queue_query(unsigned limit, const PausedTasks *skip);
/* The record of one id, or of one (submitter, idempotency key). */
char *store_sql_id_query(uint64_t id);
char *store_sql_key_query(const char *submitter, const char *key);
/* Up to limit records with ids above after_id, in a state (any when state < 0), ascending; without
 * their stdin (the column reads as NULL). */
char *store_sql_page_query(int state, uint64_t after_id, unsigned limit);
/* Rows (id, stdin) of the n ids: the stdin of records about to be launched. */
char *store_sql_stdin_query(const uint64_t *ids, size_t n);
/* The records of the n ids (without their stdin): a poll of the rows waited for on other nodes. */
char *store_sql_ids_query(const uint64_t *ids, size_t n);
/* Lets go of node's claim of those of the ids that are queued rows it holds. */
char *store_sql_release_query(const char *node, const uint64_t *ids, size_t n);
/* Rows (submitter, unfinished rows, their stdin bytes): the per-submitter quotas' totals at start. */
extern const char store_sql_unfinished_query[];
/* The same of the rows in state (failed or cancelled): what a retry of the state queues again. */
char *store_sql_unfinished_of_state_query(int state);
/* One row: the highest id, NULL in an empty table. */
extern const char store_sql_max_id_query[];
/* Rows (state, count), then a row ('oldest_due', the earliest run_after of a queued row that is due, in
 * usec since the epoch; NULL when none is): the queue's oldest may lie outside the window in memory
 * (tasks_due gives it without a scan). */
extern const char store_sql_counts_query[];
/* Every record in state (failed or cancelled) queued again at now, attempts reset: a statement with
 * no rows, its affected rows the count. */
char *store_sql_retry_query(int state, uint64_t now);

/* A record (separately allocated strings, for ledger_adopt()) from one row of a read above:
 * fields[i] is column i's text, NULL for SQL NULL, lengths[i] its bytes. An unknown state loads as
 * failed. Args that are not a JSON array of strings load as far as they could be read, and
 * *ret_bad_args says so. -ENOMEM. */
int store_sql_record_from_row(char *const *fields, const unsigned long *lengths, TaskRecord **ret,
                              bool *ret_bad_args);
