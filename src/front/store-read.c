/* SPDX-License-Identifier: MIT */
/*
 * The MySQL store's reads: what the ledger does not hold (a record, a page of a list, the counts, the
 * next window of the queue, the stdin of records about to be launched) and the retry statement, queued on
 * the loop, run on the database thread outside any transaction, and handed back on the loop without the
 * records deleted in the meantime. Apart from the writes (store-mysql.c, store-thread.c) because a read has
 * its own result, its own row parsing and its own consistency rule (Store.deleted), and touches no
 * transaction.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "front/store-mysql-internal.h"
#include "shared/util.h"

/* --- on the database thread --- */

/* Appends t to the op's records. -ENOMEM (t freed). */
static int read_add_record(StoreOp *op, TaskRecord *t) {
        if (op->result.n_records == op->records_cap) {
                size_t cap = op->records_cap ? op->records_cap * 2 : 16;
                TaskRecord **p = realloc(op->result.records, cap * sizeof(*p));

                if (!p) {
                        task_record_free(t);
                        return -ENOMEM;
                }
                op->result.records = p;
                op->records_cap = cap;
        }
        op->result.records[op->result.n_records++] = t;
        return 0;
}

/* A row (id, stdin) as a record of its id and stdin alone. A row whose stdin is NULL (a row edited by
 * hand, say) comes back with none: the launch goes ahead without. -ENOMEM. */
static int read_stdin_row(StoreOp *op, char *const *row, const unsigned long *lengths) {
        TaskRecord *t = calloc(1, sizeof(TaskRecord));

        if (!t)
                return -ENOMEM;
        t->id = row[0] ? strtoull(row[0], NULL, 10) : 0;
        if (row[1]) {
                t->stdin_data = malloc(lengths[1] + 1);
                if (!t->stdin_data) {
                        free(t);
                        return -ENOMEM;
                }
                memcpy(t->stdin_data, row[1], lengths[1]);
                t->stdin_data[lengths[1]] = 0;
                t->stdin_len = lengths[1];
        }
        return read_add_record(op, t);
}

static int read_rows(Store *s, StoreOp *op) {
        MYSQL_RES *res = store_mariadb->mysql_store_result(s->db);
        MYSQL_ROW row;
        int r = 0;

        if (!res)
                return store_mariadb->mysql_errno(s->db) &&
                                       store_db_is_connection_error(store_mariadb->mysql_errno(s->db))
                               ? -ENOTCONN
                               : -EIO;
        while (r >= 0 && (row = store_mariadb->mysql_fetch_row(res))) {
                TaskRecord *t;
                bool bad_args;

                if (op->read == OP_READ_COUNTS && row[0] && streq(row[0], "oldest_due")) {
                        op->result.has_oldest_due = row[1] != NULL;
                        op->result.oldest_due = row[1] ? strtoull(row[1], NULL, 10) : 0;
                        continue;
                }
                if (op->read == OP_READ_COUNTS) {
                        TaskState state = task_state_from_string(row[0] ? row[0] : "");
                        if (state >= 0 && row[1])
                                op->result.counts[state] = strtoull(row[1], NULL, 10);
                        continue;
                }
                if (op->read == OP_READ_STDIN) {
                        r = read_stdin_row(op, row, store_mariadb->mysql_fetch_lengths(res));
                        continue;
                }
                r = store_sql_record_from_row(row, store_mariadb->mysql_fetch_lengths(res), &t, &bad_args);
                if (r >= 0)
                        r = read_add_record(op, t);
        }
        store_mariadb->mysql_free_result(res);
        return r;
}

/* OP_EXEC_REQUEUE: the rows the statement is about to queue again, per submitter. The thread runs one op at
 * a time, so no write of this front comes between this and the statement. */
static int read_unfinished(Store *s, StoreOp *op) {
        MYSQL_ROW row;
        int r = 0;
        MYSQL_RES *res = store_db_result(s, op->counts_query, &r);

        if (!res)
                return r;
        while ((row = store_mariadb->mysql_fetch_row(res))) {
                StoreUnfinished *p;

                if (!row[0] || !row[1])
                        continue;
                p = realloc(op->unfinished, (op->n_unfinished + 1) * sizeof(*p));
                if (!p)
                        break;
                op->unfinished = p;
                p = &op->unfinished[op->n_unfinished];
                p->submitter = strdup(row[0]);
                if (!p->submitter)
                        break;
                p->tasks = strtoull(row[1], NULL, 10);
                p->stdin_bytes = row[2] ? strtoull(row[2], NULL, 10) : 0;
                op->n_unfinished++;
        }
        store_mariadb->mysql_free_result(res);
        return 0; /* out of memory: the quotas count fewer rows, the retry goes ahead */
}

/* Runs a read (or a statement of its own) outside any transaction: every write queued before it has
 * committed, so it sees them. */
void store_read_run(Store *s, StoreOp *op) {
        int r;

        if (op->read == OP_CALL) {
                op->result.error = op->call(s, op->query, op->call_data, &op->result);
                return;
        }
        if (op->read == OP_RECOUNT) {
                op->result.error = read_unfinished(s, op);
                return;
        }
        r = op->read == OP_EXEC_REQUEUE ? read_unfinished(s, op) : 0;

        if (r >= 0)
                r = store_db_exec(s, op->query);

        if (r >= 0 && (op->read == OP_EXEC || op->read == OP_EXEC_REQUEUE))
                op->result.rows = (uint64_t) store_mariadb->mysql_affected_rows(s->db);
        else if (r >= 0)
                r = read_rows(s, op);
        op->result.error = r;
}

int store_read_records_now(Store *s, const char *sql, StoreRead *result) {
        StoreOp op = {.read = OP_READ_RECORDS, .result = *result, .records_cap = result->n_records};
        int r;

        r = s->db ? store_db_exec(s, sql) : -ENOTCONN;
        if (r >= 0)
                r = read_rows(s, &op);
        *result = op.result;
        return r;
}

/* --- on the loop --- */

/* Whether id was deleted after the read op was queued. */
static bool deleted_since(const Store *s, const StoreOp *op, uint64_t id) {
        for (size_t i = op->deleted_since; i < s->n_deleted; i++)
                if (s->deleted[i] == id)
                        return true;
        return false;
}

void store_read_completed(Store *s, StoreOp *op) {
        size_t j = 0;

        /* A record deleted since the read was queued is not handed out: it is gone. */
        for (size_t i = 0; i < op->result.n_records; i++) {
                TaskRecord *t = op->result.records[i];

                if (deleted_since(s, op, t->id))
                        task_record_free(t);
                else
                        op->result.records[j++] = t;
        }
        op->result.n_records = j;
        /* A recount replaces the counts (the rows as they were when it read them: changes made
         * meanwhile by this host are off by their number until the next one). Rows queued again count
         * against their submitters' quotas, whoever asked (and whether or not the asker is still there
         * to hear the answer). */
        if (op->read == OP_RECOUNT && op->result.error >= 0)
                ledger_reset_unfinished(s->ledger);
        for (size_t i = 0; op->result.error >= 0 && i < op->n_unfinished; i++)
                (void) ledger_add_unfinished(s->ledger, op->unfinished[i].submitter, op->unfinished[i].tasks,
                                             op->unfinished[i].stdin_bytes);
        if (--s->reads_in_flight == 0)
                s->n_deleted = 0;
        if (op->read_done)
                op->read_done(&op->result, op->userdata);
}

/* Makes a read op of query (and, for OP_EXEC_REQUEUE, counts_query; OP_CALL may have no query); takes
 * both, freed on failure. */
static StoreOp *read_op_new(OpRead read, char *query, char *counts_query, StoreReadFn done, void *userdata) {
        StoreOp *op;

        if ((!query && read != OP_CALL && read != OP_RECOUNT) ||
            ((read == OP_EXEC_REQUEUE || read == OP_RECOUNT) && !counts_query)) {
                free(query);
                free(counts_query);
                return NULL;
        }
        op = calloc(1, sizeof(*op));
        if (!op) {
                free(query);
                free(counts_query);
                return NULL;
        }
        op->read = read;
        op->query = query;
        op->counts_query = counts_query;
        op->read_done = done;
        op->userdata = userdata;
        return op;
}

static void read_op_queue(Store *s, StoreOp *op) {
        op->deleted_since = s->n_deleted;
        s->reads_in_flight++;
        store_op_queue(s, op);
}

static int enqueue_read_op(Store *s, OpRead read, char *query, char *counts_query, StoreReadFn done,
                           void *userdata) {
        StoreOp *op = read_op_new(read, query, counts_query, done, userdata);

        if (!op)
                return -ENOMEM;
        read_op_queue(s, op);
        return 0;
}

static int enqueue_read(Store *s, OpRead read, char *query, StoreReadFn done, void *userdata) {
        return enqueue_read_op(s, read, query, NULL, done, userdata);
}

int store_release_queued(Store *s, const uint64_t *ids, size_t n) {
        return enqueue_read(s, OP_EXEC, store_sql_release_query(s->node, ids, n), NULL, NULL);
}

int store_recount_unfinished(Store *s, StoreReadFn done, void *userdata) {
        return enqueue_read_op(s, OP_RECOUNT, NULL, strdup(store_sql_unfinished_query), done, userdata);
}

int store_call(Store *s, StoreCallFn call, char *query, void *data, StoreReadFn done, void *userdata) {
        StoreOp *op = read_op_new(OP_CALL, query, NULL, done, userdata);

        if (!op)
                return -ENOMEM;
        /* Whole before it is queued: the thread may take it at once. */
        op->call = call;
        op->call_data = data;
        read_op_queue(s, op);
        return 0;
}

static int sync_run(Store *s, const char *query, void *data, StoreRead *result) {
        return 0;
}

int store_sync(Store *s, StoreReadFn done, void *userdata) {
        return store_call(s, sync_run, NULL, NULL, done, userdata);
}

int store_read_task(Store *s, uint64_t id, StoreReadFn done, void *userdata) {
        return enqueue_read(s, OP_READ_RECORDS, store_sql_id_query(id), done, userdata);
}

int store_read_key(Store *s, const char *submitter, const char *key, StoreReadFn done, void *userdata) {
        return enqueue_read(s, OP_READ_RECORDS, store_sql_key_query(submitter, key), done, userdata);
}

int store_read_page(Store *s, int state, uint64_t after_id, unsigned limit, StoreReadFn done,
                    void *userdata) {
        return enqueue_read(s, OP_READ_RECORDS, store_sql_page_query(state, after_id, limit), done,
                            userdata);
}

int store_read_queue(Store *s, unsigned limit, const PausedTasks *skip, StoreReadFn done, void *userdata) {
        return enqueue_read(s, OP_READ_RECORDS, store_sql_queue_query(limit, skip), done, userdata);
}

int store_read_stdin(Store *s, const uint64_t *ids, size_t n, StoreReadFn done, void *userdata) {
        return enqueue_read(s, OP_READ_STDIN, store_sql_stdin_query(ids, n), done, userdata);
}

int store_read_tasks(Store *s, const uint64_t *ids, size_t n, StoreReadFn done, void *userdata) {
        return enqueue_read(s, OP_READ_RECORDS, store_sql_ids_query(ids, n), done, userdata);
}

int store_read_counts(Store *s, StoreReadFn done, void *userdata) {
        return enqueue_read(s, OP_READ_COUNTS, strdup(store_sql_counts_query), done, userdata);
}

int store_retry_state(Store *s, int state, uint64_t now, StoreReadFn done, void *userdata) {
        return enqueue_read_op(s, OP_EXEC_REQUEUE, store_sql_retry_query(state, now),
                               store_sql_unfinished_of_state_query(state), done, userdata);
}
