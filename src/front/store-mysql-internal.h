/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the modules of the MySQL store share, and nobody else sees: the Store itself, the ops the loop
 * queues for the database thread, and the few calls one module makes into another. store.h is the
 * front's view; this header is private to store-mysql.c (queueing, completions, open and free),
 * store-db.c (the connection and the schema), store-load.c (the start-time load), store-read.c (the
 * reads) and store-thread.c (the database thread).
 */

#include <mysql.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "front/mariadb.h"
#include "front/store-sql.h"
#include "front/store.h"

/* The thread's wait between reconnect attempts: store_open() starts it at the minimum, doubling up to
 * the maximum (store-thread.c). */
#define RECONNECT_DELAY_MIN_MS 200
#define RECONNECT_DELAY_MAX_MS 5000

/* What an op is: a write of a batch, or a statement of its own whose result goes back to the loop. */
typedef enum OpRead {
        OP_WRITE,        /* kind and values: joins the batch's transaction */
        OP_READ_RECORDS, /* query: rows of records */
        OP_READ_COUNTS,  /* query: rows (state, count) */
        OP_READ_STDIN,   /* query: rows (id, stdin) */
        OP_EXEC,         /* query: a statement without rows, its affected rows counted */
        OP_EXEC_REQUEUE, /* as OP_EXEC, after counts_query: rows (submitter, rows, stdin bytes) */
        OP_RECOUNT,      /* counts_query alone: its rows replace the quotas' counts */
        OP_CALL,         /* call: work of several statements (a claim, a heartbeat; store-cluster.c) */
} OpRead;

/* A submitter's rows a retry of a state queued again, and their stdin bytes. */
typedef struct StoreUnfinished {
        char *submitter;
        uint64_t tasks, stdin_bytes;
} StoreUnfinished;

/* Runs on the store's thread, with its connection: query and data are what the op was queued with;
 * data may be written here and read by the op's read_done on the loop. Returns 0 or a negative errno
 * (result->error). */
typedef int (*StoreCallFn)(Store *s, const char *query, void *data, StoreRead *result);

typedef struct StoreOp {
        OpRead read;
        char *query;
        char *counts_query; /* OP_EXEC_REQUEUE: the rows it changes, per submitter, into unfinished */
        struct StoreUnfinished *unfinished;
        size_t n_unfinished;
        StoreCallFn call; /* OP_CALL */
        void *call_data;
        bool stale; /* a fenced update that changed no row (done gets -ESTALE) */
        StoreReadFn read_done;
        StoreRead result;
        size_t records_cap;
        size_t deleted_since; /* Store.deleted when queued */
        StoreSqlKind kind;
        char *values; /* as store-sql.h names them for kind */
        StoreDoneFn done;
        StorePurgeDoneFn purged; /* a purge's done */
        void *userdata;
        int error;
        uint64_t rows; /* a purge: rows it deleted */
        struct StoreOp *next;
} StoreOp;

typedef struct OpList {
        StoreOp *head, *tail;
        size_t n;
} OpList;

struct Store {
        pthread_t thread;
        bool thread_started;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        OpList pending;     /* loop -> thread */
        OpList completed;   /* thread -> loop */
        bool stopping;      /* store_free(): write what is pending, then end */
        bool shutting_down; /* store_shutdown(): the daemon flushes before it stops */
        bool shutdown_seen; /* the thread has acted on shutting_down (written under lock by the thread) */
        atomic_bool available;

        int event_fd;
        sd_event_source *event_source;

        MYSQL *db; /* owned by the thread once it runs */
        char *option_file;
        char *group;
        char *node;             /* this front's "node" (docs/cluster.md) */
        unsigned lease_sec;     /* node_timeout_sec: how long a claim lasts without a heartbeat */
        unsigned shared_window; /* the rows a claim takes while other nodes are alive */
        bool (*runs_here)(const TaskRecord *t, void *userdata); /* NULL: every task may */
        void *runs_here_userdata;
        uint64_t reconnect_delay_ms;
        uint64_t reconnect_at_usec; /* CLOCK_REALTIME; the thread's next attempt */
        bool unreachable_warned;    /* said once per outage */
        uint64_t hold_off_ms;
        char last_error[256]; /* of the last failed statement (a ROLLBACK after it clears the handle's) */
        uint64_t hold_until_usec; /* CLOCK_REALTIME; 0: writes go ahead */

        /* The ledger store_open() loaded: a retry of a state adds the rows it queued again to its
         * submitters' unfinished counts (the quotas). */
        Ledger *ledger;

        /* The loop's side: ids deleted while reads were in flight. A read queued before such a delete
         * may return the row; its record must not come back to the ledger. */
        unsigned reads_in_flight;
        uint64_t *deleted;
        size_t n_deleted, cap_deleted;
};

/* The client library, loaded by the first store_open() (mariadb.h). */
extern const Mariadb *store_mariadb;

static inline void store_op_list_push(OpList *l, StoreOp *op) {
        op->next = NULL;
        if (l->tail)
                l->tail->next = op;
        else
                l->head = op;
        l->tail = op;
        l->n++;
}

static inline StoreOp *store_op_list_pop(OpList *l) {
        StoreOp *op = l->head;

        if (!op)
                return NULL;
        l->head = op->next;
        if (!l->head)
                l->tail = NULL;
        l->n--;
        op->next = NULL;
        return op;
}

/* store-mysql.c: hands op to the database thread. */
void store_op_queue(Store *s, StoreOp *op);

/* store-db.c: the connection (owned by the thread once it runs) and the schema. The statement calls
 * return 0, -ENOTCONN (the connection is lost and closed), -EAGAIN (a transient server error, see
 * store-db.c), -EEXIST (a duplicate key) or -EIO; the text of the error is kept in s->last_error. */
bool store_db_is_connection_error(unsigned e);
void store_db_close(Store *s);
int store_db_connect(Store *s, char *errbuf, size_t errlen);
int store_db_query(Store *s, const char *sql, size_t len);
int store_db_exec(Store *s, const char *sql);
/* Runs sql and returns its whole result (mysql_free_result() it), or NULL with *ret_error set. */
MYSQL_RES *store_db_result(Store *s, const char *sql, int *ret_error);
/* Runs a statement that returns one integer (or none): *ret = value, or -ENOENT for no row. */
int store_db_query_u64(Store *s, const char *sql, uint64_t *ret);
/* Takes the schema lock, creates or migrates the schema up to STORE_SCHEMA_VERSION, lets it go. */
int store_db_migrate(Store *s, char *errbuf, size_t errlen);

/* store-load.c: what store_open() puts into the ledger before the thread starts; the records are this
 * node's running ones and a claim of up to window queued ones. */
int store_load_paused(Store *s, Ledger *l);
int store_load_records(Store *s, Ledger *l, unsigned window);

/* store-cluster.c: several nodes on one database. At store_open(), before the thread starts: refuses a
 * server without SKIP LOCKED and registers the node; says how many queued rows the first claim takes
 * (a whole window while no other node is alive); reserves a block of ids. A claim of up to limit due
 * rows and limit rows due soonest, leaving out the names in skip, appends their records to result. */
/* A claim (or an every_host submission) that met a deadlock (Galera's certification, or two claims
 * crossing) is tried again. */
#define CLAIM_TRIES 3

/* store-cluster.c: statements on the thread's connection (-ENOTCONN without one), shared with
 * store-remote.c and store-every-host.c. */
int store_conn_exec(Store *s, const char *sql);
/* Rows the last statement matched (the connection counts found rows, not changed ones). */
uint64_t store_conn_affected_rows(Store *s);
void store_conn_rollback(Store *s);
/* The first column of every row, as a NULL-terminated list (strv_free()). */
int store_conn_query_strings(Store *s, const char *sql, char ***ret, size_t *ret_n);
/* "1,2,3" from n id strings; NULL when out of memory. */
char *store_conn_id_list(char *const *ids, size_t n);
/* Reserves n ids from the shared counter: [*ret_start, *ret_end). */
int store_cluster_reserve_n_ids(Store *s, uint64_t n, uint64_t *ret_start, uint64_t *ret_end);
int store_cluster_register(Store *s, char *errbuf, size_t errlen);
unsigned store_cluster_start_window(Store *s);
int store_cluster_reserve_ids(Store *s, uint64_t *ret_start, uint64_t *ret_end);
int store_cluster_claim_now(Store *s, unsigned limit, const PausedTasks *skip, StoreRead *result);

/* store-read.c: queues work of several statements on the thread (query taken, may be NULL), answered
 * like a read; and appends the records a SELECT of store_sql_select_columns returns. */
int store_call(Store *s, StoreCallFn call, char *query, void *data, StoreReadFn done, void *userdata);
int store_read_records_now(Store *s, const char *sql, StoreRead *result);

/* store-read.c: runs a read op on the thread (its result in op->result), and hands its answer to its
 * owner on the loop. */
void store_read_run(Store *s, StoreOp *op);
void store_read_completed(Store *s, StoreOp *op);

/* store-thread.c: the database thread (pthread_create()'s start routine; userdata is the Store). */
void *store_thread_run(void *userdata);
