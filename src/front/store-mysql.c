/* SPDX-License-Identifier: MIT */
/*
 * The durable store on MySQL/MariaDB.
 *
 * libmysqlclient blocks, and the front's event loop must not: all database work runs on one
 * dedicated thread that owns the connection. The loop queues writes (rendered to SQL values at once,
 * so the record may change afterwards) and the thread takes everything queued as one batch, runs it
 * in one transaction and posts the completions back through an eventfd. While a commit is in flight
 * new writes pile up and form the next batch: that is the group commit, with no timer and no added
 * latency when the load is light. A thread was chosen over MariaDB's non-blocking API because the
 * latter needs a continuation for every call (connect, query, result rows) and gains nothing here:
 * there is one connection and batches are strictly sequential.
 *
 * Reads (a record the ledger does not hold, a page of a list, the counts, the next window of the
 * queue) go through the same queue: a read runs alone, outside any transaction, after the writes
 * queued before it have committed, so it sees every change the front has made; its rows go back to
 * the loop like a write's completion. A read is one short indexed statement: the loop never waits for
 * it, and a client waits about as long as for a commit.
 *
 * The SQL text is made by store-sql.c (values as hex literals, rendered on the loop thread when a write
 * is queued) and the schema statements come from store-schema.c; this file runs them.
 */

#include <errno.h>
#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>

#include "front/mariadb.h"
#include "front/store-schema.h"
#include "front/store-sql.h"
#include "front/store.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/message-ids.h"
#include "shared/util.h"

/* The client library, loaded by the first store_open() (mariadb.h). */
static const Mariadb *mariadb;

/* Ops taken into one transaction at most: bounds the time a batch holds its locks. */
#define BATCH_OPS_MAX          20000
#define RECONNECT_DELAY_MIN_MS 200
#define RECONNECT_DELAY_MAX_MS 5000
/* After the server refused a write for want of a resource (disk full, lock timeout): new tasks are
 * refused and changes held this long before trying again, doubling up to the maximum. */
#define HOLD_OFF_MIN_MS 200
#define HOLD_OFF_MAX_MS 2000

/* What an op is: a write of a batch, or a statement of its own whose result goes back to the loop. */
typedef enum OpRead {
        OP_WRITE,        /* kind and values: joins the batch's transaction */
        OP_READ_RECORDS, /* query: rows of records */
        OP_READ_COUNTS,  /* query: rows (state, count) */
        OP_EXEC,         /* query: a statement without rows, its affected rows counted */
} OpRead;

typedef struct StoreOp {
        OpRead read;
        char *query;
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
        OpList pending;   /* loop -> thread */
        OpList completed; /* thread -> loop */
        bool stopping;
        atomic_bool available;

        int event_fd;
        sd_event_source *event_source;

        MYSQL *db; /* owned by the thread once it runs */
        char *option_file;
        char *group;
        char node[256];
        uint64_t reconnect_delay_ms;
        uint64_t reconnect_at_usec; /* CLOCK_REALTIME; the thread's next attempt */
        bool unreachable_warned;    /* said once per outage */
        uint64_t hold_off_ms;
        char last_error[256]; /* of the last failed statement (a ROLLBACK after it clears the handle's) */
        uint64_t hold_until_usec; /* CLOCK_REALTIME; 0: writes go ahead */

        /* The loop's side: ids deleted while reads were in flight. A read queued before such a delete
         * may return the row; its record must not come back to the ledger. */
        unsigned reads_in_flight;
        uint64_t *deleted;
        size_t n_deleted, cap_deleted;
};

static void op_list_push(OpList *l, StoreOp *op) {
        op->next = NULL;
        if (l->tail)
                l->tail->next = op;
        else
                l->head = op;
        l->tail = op;
        l->n++;
}

static StoreOp *op_list_pop(OpList *l) {
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

/* Puts a whole list back in front of l, keeping order (failed batch retried first). */
static void op_list_prepend(OpList *l, OpList *front) {
        if (!front->head)
                return;
        front->tail->next = l->head;
        if (!l->tail)
                l->tail = front->tail;
        l->head = front->head;
        l->n += front->n;
        *front = (OpList){};
}

static void op_free(StoreOp *op) {
        if (!op)
                return;
        for (size_t i = 0; i < op->result.n_records; i++)
                task_record_free(op->result.records[i]);
        free(op->result.records);
        free(op->query);
        free(op->values);
        free(op);
}

/* An op whose answer the loop will never deliver (the store is going away). A purge step's owner
 * learns it was cancelled, so it can free what it gave; the other ops' owners are gone or wait for
 * nothing at this point. */
static void op_drop(StoreOp *op) {
        if (op->purged)
                op->purged(-ECANCELED, 0, op->userdata);
        op_free(op);
}

/* --- the database thread --- */

static bool is_connection_error(unsigned e) {
        return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST || e == CR_CONNECTION_ERROR ||
               e == CR_CONN_HOST_ERROR || e == ER_CONNECTION_KILLED || e == ER_SERVER_SHUTDOWN ||
               e == CR_UNKNOWN_HOST || e == CR_COMMANDS_OUT_OF_SYNC;
}

/* Server errors that mean "not now" rather than "never": the disk or a table is full, memory or locks
 * ran out, the server is read-only for a while. A change that meets one is written again later and a
 * new task is refused, as when the connection is lost: neither is dropped. */
static bool is_transient_error(unsigned e) {
        return e == ER_RECORD_FILE_FULL || e == ER_DISK_FULL || e == ER_ERROR_ON_WRITE ||
               e == ER_OUTOFMEMORY || e == ER_OUT_OF_RESOURCES || e == ER_LOCK_WAIT_TIMEOUT ||
               e == ER_LOCK_TABLE_FULL || e == ER_LOCK_DEADLOCK || e == ER_OPTION_PREVENTS_STATEMENT;
}

static void db_close(Store *s) {
        if (s->db) {
                mariadb->mysql_close(s->db);
                s->db = NULL;
        }
        atomic_store(&s->available, false);
}

static int db_query(Store *s, const char *sql, size_t len) {
        if (mariadb->mysql_real_query(s->db, sql, len) != 0) {
                unsigned e = mariadb->mysql_errno(s->db);
                log_debug("mysql: %s (%u) in: %.200s", mariadb->mysql_error(s->db), e, sql);
                snprintf(s->last_error, sizeof(s->last_error), "%s", mariadb->mysql_error(s->db));
                if (is_connection_error(e)) {
                        log_event(LOG_WARNING, MESSAGE_ID_STORE_DOWN, "mysql: connection lost: %s",
                                  mariadb->mysql_error(s->db));
                        db_close(s);
                        return -ENOTCONN;
                }
                if (is_transient_error(e))
                        return -EAGAIN;
                return e == ER_DUP_ENTRY ? -EEXIST : -EIO;
        }
        /* Statements that return rows are read by their callers; others have none. */
        return 0;
}

static int db_exec(Store *s, const char *sql) {
        return db_query(s, sql, strlen(sql));
}

static int db_connect(Store *s, char *errbuf, size_t errlen) {
        unsigned timeout_connect = 5, timeout_rw = 30;
        MYSQL *m;

        db_close(s);
        m = mariadb->mysql_init(NULL);
        if (!m)
                return -ENOMEM;
        (void) mariadb->mysql_optionsv(m, MYSQL_READ_DEFAULT_FILE, s->option_file);
        (void) mariadb->mysql_optionsv(m, MYSQL_READ_DEFAULT_GROUP, s->group);
        (void) mariadb->mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_connect);
        (void) mariadb->mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &timeout_rw);
        (void) mariadb->mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &timeout_rw);
        (void) mariadb->mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
        if (!mariadb->mysql_real_connect(m, NULL, NULL, NULL, NULL, 0, NULL, 0)) {
                snprintf(errbuf, errlen, "%s", mariadb->mysql_error(m));
                mariadb->mysql_close(m);
                return -ECONNREFUSED;
        }
        s->db = m;
        if (db_exec(s, "SET SESSION time_zone = '+00:00', SESSION sql_mode = 'STRICT_ALL_TABLES,"
                       "NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION', SESSION autocommit = 1") < 0) {
                snprintf(errbuf, errlen, "cannot set session: %s",
                         s->db ? mariadb->mysql_error(s->db) : "lost");
                db_close(s);
                return -EIO;
        }
        atomic_store(&s->available, true);
        return 0;
}

/* Runs a statement that returns one integer (or none): *ret = value, or -ENOENT for no row. */
static int db_query_u64(Store *s, const char *sql, uint64_t *ret) {
        MYSQL_RES *res;
        MYSQL_ROW row;
        int r;

        r = db_exec(s, sql);
        if (r < 0)
                return r;
        res = mariadb->mysql_store_result(s->db);
        if (!res)
                return -EIO;
        row = mariadb->mysql_fetch_row(res);
        if (!row || !row[0]) {
                mariadb->mysql_free_result(res);
                return -ENOENT;
        }
        *ret = strtoull(row[0], NULL, 10);
        mariadb->mysql_free_result(res);
        return 0;
}

/* Runs a NULL-terminated list of statements, stopping at the first that fails. */
static int db_exec_all(Store *s, const char *const *statements) {
        for (size_t i = 0; statements[i]; i++) {
                int r = db_exec(s, statements[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Creates or migrates the schema up to STORE_SCHEMA_VERSION; the caller holds the schema lock. */
static int schema_upgrade(Store *s, char *errbuf, size_t errlen) {
        uint64_t version = 0;
        int r;

        r = db_exec(s, store_schema_version_table);
        if (r >= 0) {
                r = db_query_u64(s, store_schema_version_query, &version);
                if (r == -ENOENT) {
                        /* A new database: create the first layout, then migrate like any other. */
                        version = 0;
                        r = 0;
                }
        }
        if (r >= 0 && version > STORE_SCHEMA_VERSION) {
                snprintf(errbuf, errlen,
                         "the database has schema version %llu, newer than this asynctask knows (%d)",
                         (unsigned long long) version, STORE_SCHEMA_VERSION);
                return -EPROTONOSUPPORT;
        }
        for (; r >= 0 && version < STORE_SCHEMA_VERSION; version++) {
                if (version > 0)
                        log_notice("mysql: migrating schema from version %llu to %llu",
                                   (unsigned long long) version, (unsigned long long) version + 1);
                r = db_exec_all(s, store_schema_step((unsigned) version));
        }
        if (r < 0)
                snprintf(errbuf, errlen, "schema: %s",
                         s->db ? mariadb->mysql_error(s->db) : "connection lost");
        return r;
}

static int schema_migrate(Store *s, char *errbuf, size_t errlen) {
        uint64_t locked = 0;
        int r;

        r = db_query_u64(s, store_schema_lock, &locked);
        if (r < 0 || locked != 1) {
                snprintf(errbuf, errlen, "cannot take the schema lock: %s",
                         s->db ? mariadb->mysql_error(s->db) : "lost");
                return r < 0 ? r : -EBUSY;
        }
        r = schema_upgrade(s, errbuf, errlen);
        if (s->db)
                (void) db_exec(s, store_schema_unlock);
        return r;
}

/* Hands a loaded record to the ledger. A damaged row (edited by hand, say) is skipped with a
 * warning: it must not keep every other task from running. -ENOMEM. */
static int adopt_loaded(Ledger *l, TaskRecord *t, bool bad_args) {
        uint64_t id = t->id;
        int r;

        if (bad_args)
                log_warning("mysql: task %llu has unreadable args, loading it without",
                            (unsigned long long) id);
        r = ledger_adopt(l, t);
        if (r < 0)
                task_record_free(t);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                log_warning("mysql: task %llu cannot be loaded (%s), skipping it", (unsigned long long) id,
                            strerror(-r));
                return 0;
        }
        return 1;
}

/* Adopts every record a query returns. Returns how many rows it read, or a negative errno. */
static int load_query(Store *s, Ledger *l, const char *query, uint64_t *ret_rows) {
        MYSQL_RES *res;
        MYSQL_ROW row;
        uint64_t rows = 0;
        int r;

        r = db_exec(s, query);
        if (r < 0)
                return r;
        res = mariadb->mysql_use_result(s->db);
        if (!res)
                return -EIO;
        while ((row = mariadb->mysql_fetch_row(res))) {
                TaskRecord *t;
                bool bad_args;

                r = store_sql_record_from_row(row, mariadb->mysql_fetch_lengths(res), &t, &bad_args);
                if (r < 0)
                        break;
                rows++;
                r = adopt_loaded(l, t, bad_args);
                if (r < 0)
                        break;
                r = 0;
        }
        if (r == 0 && mariadb->mysql_errno(s->db) != 0)
                r = is_connection_error(mariadb->mysql_errno(s->db)) ? -ENOTCONN : -EIO;
        mariadb->mysql_free_result(res);
        if (r < 0)
                return r;
        *ret_rows = rows;
        return 0;
}

/* What the front needs to start: the running records (their runs are the launcher's to report), the
 * first window of the queue, and the next id. Finished records stay in the database and are read
 * when asked for: the start does not grow with history. The paused names are loaded first: their rows
 * stay out of the window until a resume. */
static int load_records(Store *s, Ledger *l) {
        _cleanup_free_ char *queue = store_sql_queue_query(STORE_QUEUE_WINDOW, ledger_paused(l));
        uint64_t running = 0, queued = 0, max_id = 0;
        int r;

        if (!queue)
                return -ENOMEM;
        r = load_query(s, l, store_sql_running_query, &running);
        if (r >= 0)
                r = load_query(s, l, queue, &queued);
        if (r >= 0) {
                r = db_query_u64(s, store_sql_max_id_query, &max_id);
                if (r == -ENOENT)
                        r = 0; /* an empty table */
        }
        if (r < 0)
                return r;
        ledger_set_next_id(l, max_id + 1);
        log_info("mysql: loaded %llu running and %llu queued task record(s)%s; the next id is %llu",
                 (unsigned long long) running, (unsigned long long) queued,
                 queued >= STORE_QUEUE_WINDOW ? " (the first of the queue)" : "",
                 (unsigned long long) max_id + 1);
        return 0;
}

/* The paused task names, into the ledger. A name the config no longer has stays paused: resume takes
 * it out. */
static int load_paused(Store *s, Ledger *l) {
        MYSQL_RES *res;
        MYSQL_ROW row;
        int r;

        r = db_exec(s, store_sql_paused_load_query);
        if (r < 0)
                return r;
        res = mariadb->mysql_store_result(s->db);
        if (!res)
                return -EIO;
        while ((row = mariadb->mysql_fetch_row(res))) {
                if (!row[0])
                        continue;
                r = ledger_pause(l, row[0], row[1], row[2] ? strtoull(row[2], NULL, 10) : 0);
                if (r == -E2BIG) {
                        log_warning("mysql: more than %d paused task names; '%s' and later ones are ignored",
                                    PAUSED_TASKS_MAX, row[0]);
                        break;
                }
                if (r < 0)
                        break;
                log_notice(
                        "Task '%s' is paused (by %s): none of its runs start until 'asynctask resume %s'.",
                        row[0], row[1] ? row[1] : "?", row[0]);
                r = 0;
        }
        mariadb->mysql_free_result(res);
        return r == -E2BIG ? 0 : r;
}

/* Ends the statement being built and sends it; purge (a purge is a statement alone) learns how many
 * rows it deleted. */
static int batch_send(Store *s, StoreSqlStatement *st, StoreOp *purge) {
        const char *sql;
        size_t len;
        int r;

        r = store_sql_statement_end(st, &sql, &len);
        if (r < 0 || len == 0)
                return r;
        r = db_query(s, sql, len);
        if (r >= 0 && purge)
                purge->rows = (uint64_t) mariadb->mysql_affected_rows(s->db);
        return r;
}

/* Runs ops (in order) as one transaction. Statements are sent one by one, each multi-row. */
static int batch_run(Store *s, OpList *ops) {
        StoreSqlStatement st = {};
        StoreOp *purge = NULL; /* the purge in st */
        int r;

        r = db_exec(s, "START TRANSACTION");
        if (r < 0)
                return r;
        for (StoreOp *op = ops->head; op; op = op->next) {
                if (!store_sql_statement_takes(&st, op->kind)) {
                        r = batch_send(s, &st, purge);
                        if (r < 0)
                                goto fail;
                }
                store_sql_statement_add(&st, op->kind, op->values);
                purge = op->kind == STORE_SQL_PURGE ? op : NULL;
        }
        r = batch_send(s, &st, purge);
        if (r < 0)
                goto fail;
        store_sql_statement_done(&st);
        r = db_exec(s, "COMMIT");
        /* MariaDB rolls back a transaction whose COMMIT failed; should one stay open, the next START
         * TRANSACTION would commit it, with submissions already answered "unavailable" in it. */
        if (r < 0 && s->db)
                (void) db_exec(s, "ROLLBACK");
        return r;
fail:
        store_sql_statement_done(&st);
        if (s->db)
                (void) db_exec(s, "ROLLBACK");
        return r;
}

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

static int read_rows(Store *s, StoreOp *op) {
        MYSQL_RES *res = mariadb->mysql_store_result(s->db);
        MYSQL_ROW row;
        int r = 0;

        if (!res)
                return mariadb->mysql_errno(s->db) && is_connection_error(mariadb->mysql_errno(s->db))
                               ? -ENOTCONN
                               : -EIO;
        while (r >= 0 && (row = mariadb->mysql_fetch_row(res))) {
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
                r = store_sql_record_from_row(row, mariadb->mysql_fetch_lengths(res), &t, &bad_args);
                if (r >= 0)
                        r = read_add_record(op, t);
        }
        mariadb->mysql_free_result(res);
        return r;
}

/* Runs a read (or a statement of its own) outside any transaction: every write queued before it has
 * committed, so it sees them. */
static void read_run(Store *s, StoreOp *op) {
        int r = db_exec(s, op->query);

        if (r >= 0 && op->read == OP_EXEC)
                op->result.rows = (uint64_t) mariadb->mysql_affected_rows(s->db);
        else if (r >= 0)
                r = read_rows(s, op);
        op->result.error = r;
}

static void post_completed(Store *s, OpList *done) {
        uint64_t one = 1;

        if (!done->head)
                return;
        pthread_mutex_lock(&s->lock);
        if (s->completed.tail)
                s->completed.tail->next = done->head;
        else
                s->completed.head = done->head;
        s->completed.tail = done->tail;
        s->completed.n += done->n;
        pthread_mutex_unlock(&s->lock);
        *done = (OpList){};
        if (write(s->event_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                log_debug("mysql: eventfd write: %m");
}

static void complete_all(OpList *ops, int error, OpList *done) {
        StoreOp *op;

        while ((op = op_list_pop(ops))) {
                op->error = error;
                if (op->read != OP_WRITE)
                        op->result.error = error;
                op_list_push(done, op);
        }
}

/* The batch failed for a reason other than the connection (a constraint, a bad value): run each
 * op alone so one bad write cannot hold back the others. Returns whether one met a transient error. */
static bool run_one_by_one(Store *s, OpList *ops, OpList *done, OpList *retry) {
        bool transient = false;
        StoreOp *op;

        while ((op = op_list_pop(ops))) {
                OpList single = {};
                int r;

                op_list_push(&single, op);
                r = !s->db ? -ENOTCONN : transient ? -EAGAIN : batch_run(s, &single);
                if (r == -EAGAIN)
                        transient = true;
                if ((r == -ENOTCONN || r == -EAGAIN) && op->kind != STORE_SQL_INSERT) {
                        op_list_push(retry, op);
                        continue;
                }
                if (r < 0 && r != -ENOTCONN && r != -EAGAIN)
                        log_error("mysql: a %s could not be written and is dropped: %s",
                                  op->kind == STORE_SQL_INSERT ? "new task" : "change",
                                  s->db ? s->last_error : "connection lost");
                op->error = r;
                op_list_push(done, op);
        }
        return transient;
}

/* Takes every queued insert out of pending and completes it with error: while the database is
 * unreachable new submissions are refused at once (the client retries later), while changes to
 * records already acknowledged stay queued and are written when it is back, so no result is lost. */
static void refuse_pending_inserts(Store *s, int error) {
        OpList keep = {}, done = {};
        StoreOp *op;

        pthread_mutex_lock(&s->lock);
        while ((op = op_list_pop(&s->pending))) {
                op->error = error;
                op->result.error = error;
                /* Reads are refused too: nothing to answer them from. */
                op_list_push(op->read != OP_WRITE || op->kind == STORE_SQL_INSERT ? &done : &keep, op);
        }
        s->pending = keep;
        pthread_mutex_unlock(&s->lock);
        post_completed(s, &done);
}

/* A CLOCK_REALTIME deadline in usec, as pthread_cond_timedwait() takes it. */
static struct timespec deadline_timespec(uint64_t deadline_usec) {
        return (struct timespec){
                .tv_sec = (time_t) (deadline_usec / USEC_PER_SEC),
                .tv_nsec = (long) (deadline_usec % USEC_PER_SEC) * 1000,
        };
}

/* Waits until there is work, stop is requested, or (when deadline_usec != 0) the deadline passes. */
static void wait_for_work(Store *s, uint64_t deadline_usec) {
        pthread_mutex_lock(&s->lock);
        while (!s->pending.head && !s->stopping) {
                if (deadline_usec) {
                        struct timespec ts = deadline_timespec(deadline_usec);
                        if (pthread_cond_timedwait(&s->wake, &s->lock, &ts) == ETIMEDOUT)
                                break;
                } else
                        pthread_cond_wait(&s->wake, &s->lock);
        }
        pthread_mutex_unlock(&s->lock);
}

/* Waits until the deadline, a stop request or a new op (to refuse it if it is a new task). */
static void wait_until(Store *s, uint64_t deadline_usec) {
        struct timespec ts = deadline_timespec(deadline_usec);

        pthread_mutex_lock(&s->lock);
        if (!s->stopping)
                (void) pthread_cond_timedwait(&s->wake, &s->lock, &ts);
        pthread_mutex_unlock(&s->lock);
}

/* The server refused a write for want of a resource: refuse new tasks for a while, then try again. */
static void hold_off(Store *s) {
        if (s->hold_off_ms == 0)
                log_event(LOG_WARNING, MESSAGE_ID_STORE_DOWN,
                          "mysql: the database refuses writes (%s); submissions are refused and changes "
                          "held until it takes them",
                          s->last_error);
        s->hold_off_ms = s->hold_off_ms == 0                    ? HOLD_OFF_MIN_MS
                         : s->hold_off_ms * 2 > HOLD_OFF_MAX_MS ? HOLD_OFF_MAX_MS
                                                                : s->hold_off_ms * 2;
        s->hold_until_usec = now_usec(CLOCK_REALTIME) + s->hold_off_ms * USEC_PER_MSEC;
        atomic_store(&s->available, false);
}

static bool reconnect(Store *s) {
        char err[512];
        uint64_t now = now_usec(CLOCK_REALTIME);

        if (now < s->reconnect_at_usec)
                return false;
        if (db_connect(s, err, sizeof(err)) == 0) {
                log_event(LOG_NOTICE, MESSAGE_ID_STORE_UP, "mysql: connected again");
                s->reconnect_delay_ms = RECONNECT_DELAY_MIN_MS;
                s->unreachable_warned = false;
                return true;
        }
        if (!s->unreachable_warned)
                log_event(LOG_WARNING, MESSAGE_ID_STORE_DOWN,
                          "mysql: database unreachable, submissions are refused until it is back: %s", err);
        else
                log_debug("mysql: still unreachable: %s", err);
        s->unreachable_warned = true;
        s->reconnect_at_usec = now + s->reconnect_delay_ms * USEC_PER_MSEC;
        s->reconnect_delay_ms = s->reconnect_delay_ms * 2 > RECONNECT_DELAY_MAX_MS
                                        ? RECONNECT_DELAY_MAX_MS
                                        : s->reconnect_delay_ms * 2;
        return false;
}

/* If a stop was requested: completes every pending op with error, logs how many changes are lost
 * (`why` says why), and returns true. */
static bool stop_with_pending(Store *s, int error, const char *why) {
        OpList done = {};
        bool stopping;

        pthread_mutex_lock(&s->lock);
        stopping = s->stopping;
        if (stopping) {
                if (s->pending.n > 0)
                        log_error("mysql: %s at shutdown, %zu changes not written", why, s->pending.n);
                complete_all(&s->pending, error, &done);
        }
        pthread_mutex_unlock(&s->lock);
        post_completed(s, &done);
        return stopping;
}

/* Not connected, and reconnect() could not: new tasks are refused until the next attempt. Returns
 * false at a stop. */
static bool while_unreachable(Store *s) {
        refuse_pending_inserts(s, -ENOTCONN);
        if (stop_with_pending(s, -ENOTCONN, "unreachable"))
                return false;
        wait_for_work(s, s->reconnect_at_usec);
        return true;
}

/* Writes are held off (hold_off()): new tasks are refused until hold_until_usec. Returns -ESHUTDOWN
 * at a stop, 0 while writes are held, 1 once they may be tried again. */
static int while_held_off(Store *s) {
        if (stop_with_pending(s, -EAGAIN, "the database refuses writes"))
                return -ESHUTDOWN;
        if (now_usec(CLOCK_REALTIME) < s->hold_until_usec) {
                refuse_pending_inserts(s, -EAGAIN);
                wait_until(s, s->hold_until_usec);
                return 0;
        }
        /* Try again; the next batch tells whether the server takes writes now. */
        s->hold_until_usec = 0;
        atomic_store(&s->available, true);
        return 1;
}

/* Waits for work, then takes up to BATCH_OPS_MAX pending ops into batch. Returns whether a stop was
 * requested (ops still pending then are written before the thread ends). */
static bool batch_take(Store *s, OpList *batch) {
        StoreOp *op;
        bool stopping;

        wait_for_work(s, 0);
        pthread_mutex_lock(&s->lock);
        stopping = s->stopping;
        if (s->pending.head && s->pending.head->read != OP_WRITE)
                /* A read goes alone, after the writes queued before it. */
                op_list_push(batch, op_list_pop(&s->pending));
        else
                while (batch->n < BATCH_OPS_MAX && s->pending.head && s->pending.head->read == OP_WRITE) {
                        op = op_list_pop(&s->pending);
                        op_list_push(batch, op);
                }
        pthread_mutex_unlock(&s->lock);
        return stopping;
}

/* Completes the ops of a batch that batch_run() returned r for, or queues them again. */
static void batch_settle(Store *s, OpList *batch, int r) {
        OpList done = {}, retry = {};
        StoreOp *op;

        if (r == 0) {
                complete_all(batch, 0, &done);
                if (s->hold_off_ms != 0)
                        log_event(LOG_NOTICE, MESSAGE_ID_STORE_UP, "mysql: the database takes writes again");
                s->hold_off_ms = 0;
        } else if (r == -ENOTCONN || r == -EAGAIN || !s->db) {
                /* Whether the COMMIT landed is unknown (the connection was lost) or it did not
                 * (refused): inserts are reported as not accepted (a client that retries with its
                 * idempotency key is safe either way), other changes are written again, harmless as
                 * they are upserts of whole rows. */
                while ((op = op_list_pop(batch))) {
                        if (op->kind == STORE_SQL_INSERT) {
                                op->error = s->db ? r : -ENOTCONN;
                                op_list_push(&done, op);
                        } else
                                op_list_push(&retry, op);
                }
                if (r == -EAGAIN && s->db)
                        hold_off(s);
        } else if (run_one_by_one(s, batch, &done, &retry) && s->db)
                hold_off(s);

        post_completed(s, &done);
        if (retry.head) {
                pthread_mutex_lock(&s->lock);
                op_list_prepend(&s->pending, &retry);
                pthread_mutex_unlock(&s->lock);
        }
}

static void *store_thread(void *userdata) {
        Store *s = userdata;

        mariadb->mysql_thread_init();
        for (;;) {
                OpList batch = {};
                bool stopping;

                if (!s->db && !reconnect(s)) {
                        if (!while_unreachable(s))
                                break;
                        continue;
                }
                if (s->hold_until_usec != 0) {
                        int k = while_held_off(s);
                        if (k < 0)
                                break;
                        if (k == 0)
                                continue;
                }
                stopping = batch_take(s, &batch);
                if (!batch.head) {
                        if (stopping)
                                break;
                        continue;
                }
                if (batch.head->read != OP_WRITE) {
                        read_run(s, batch.head);
                        post_completed(s, &batch);
                        continue;
                }
                batch_settle(s, &batch, batch_run(s, &batch));
        }
        db_close(s);
        mariadb->mysql_thread_end();
        return NULL;
}

/* --- the loop side --- */

/* Whether id was deleted after the read op was queued. */
static bool deleted_since(const Store *s, const StoreOp *op, uint64_t id) {
        for (size_t i = op->deleted_since; i < s->n_deleted; i++)
                if (s->deleted[i] == id)
                        return true;
        return false;
}

static void read_completed(Store *s, StoreOp *op) {
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
        if (--s->reads_in_flight == 0)
                s->n_deleted = 0;
        if (op->read_done)
                op->read_done(&op->result, op->userdata);
}

static int on_completed(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Store *s = userdata;
        OpList done;
        uint64_t counter;
        StoreOp *op;

        if (read(fd, &counter, sizeof(counter)) < 0 && errno != EAGAIN)
                return 0;
        pthread_mutex_lock(&s->lock);
        done = s->completed;
        s->completed = (OpList){};
        pthread_mutex_unlock(&s->lock);

        while ((op = op_list_pop(&done))) {
                if (op->read != OP_WRITE) {
                        read_completed(s, op);
                        op_free(op);
                        continue;
                }
                if (op->done)
                        op->done(op->error, op->userdata);
                if (op->purged)
                        op->purged(op->error, op->error < 0 ? 0 : op->rows, op->userdata);
                op_free(op);
        }
        return 0;
}

/* Makes an op of values (taken, even on failure). NULL when out of memory. */
static StoreOp *op_new(StoreSqlKind kind, char *values, void *userdata) {
        StoreOp *op;

        if (!values)
                return NULL;
        op = calloc(1, sizeof(*op));
        if (!op) {
                free(values);
                return NULL;
        }
        op->kind = kind;
        op->values = values;
        op->userdata = userdata;
        return op;
}

static void op_queue(Store *s, StoreOp *op) {
        pthread_mutex_lock(&s->lock);
        op_list_push(&s->pending, op);
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
}

static int enqueue(Store *s, StoreSqlKind kind, char *values, StoreDoneFn done, void *userdata) {
        StoreOp *op = op_new(kind, values, userdata);

        if (!op)
                return -ENOMEM;
        op->done = done;
        op_queue(s, op);
        return 0;
}

int store_insert(Store *s, const TaskRecord *t, StoreDoneFn done, void *userdata) {
        return enqueue(s, STORE_SQL_INSERT, store_sql_row(t, s->node), done, userdata);
}

int store_update(Store *s, const TaskRecord *t, StoreDoneFn done, void *userdata) {
        return enqueue(s, STORE_SQL_UPDATE, store_sql_row(t, s->node), done, userdata);
}

int store_pause(Store *s, const char *task, const char *by, uint64_t since, StoreDoneFn done,
                void *userdata) {
        return enqueue(s, STORE_SQL_PAUSE, store_sql_paused_row(task, by, since), done, userdata);
}

int store_resume(Store *s, const char *task, StoreDoneFn done, void *userdata) {
        return enqueue(s, STORE_SQL_RESUME, store_sql_task_name(task), done, userdata);
}

int store_delete(Store *s, uint64_t id, StoreDoneFn done, void *userdata) {
        int r;

        if (s->reads_in_flight > 0) {
                if (s->n_deleted == s->cap_deleted) {
                        size_t cap = s->cap_deleted ? s->cap_deleted * 2 : 16;
                        uint64_t *p = realloc(s->deleted, cap * sizeof(*p));

                        if (!p)
                                return -ENOMEM;
                        s->deleted = p;
                        s->cap_deleted = cap;
                }
                s->deleted[s->n_deleted] = id;
        }
        r = enqueue(s, STORE_SQL_DELETE, store_sql_id(id), done, userdata);
        if (r >= 0 && s->reads_in_flight > 0)
                s->n_deleted++;
        return r;
}

static int enqueue_read(Store *s, OpRead read, char *query, StoreReadFn done, void *userdata) {
        StoreOp *op;

        if (!query)
                return -ENOMEM;
        op = calloc(1, sizeof(*op));
        if (!op) {
                free(query);
                return -ENOMEM;
        }
        op->read = read;
        op->query = query;
        op->read_done = done;
        op->userdata = userdata;
        op->deleted_since = s->n_deleted;
        s->reads_in_flight++;
        op_queue(s, op);
        return 0;
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

int store_read_counts(Store *s, StoreReadFn done, void *userdata) {
        return enqueue_read(s, OP_READ_COUNTS, strdup(store_sql_counts_query), done, userdata);
}

int store_retry_state(Store *s, int state, uint64_t now, StoreReadFn done, void *userdata) {
        return enqueue_read(s, OP_EXEC, store_sql_retry_query(state, now), done, userdata);
}

int store_purge(Store *s, uint64_t finished_before, StorePurgeDoneFn done, void *userdata) {
        /* 0 would render as NULL, which no finished_at is below. */
        StoreOp *op =
                op_new(STORE_SQL_PURGE, store_sql_datetime(finished_before ? finished_before : 1), userdata);

        if (!op)
                return -ENOMEM;
        op->purged = done;
        op_queue(s, op);
        return 0;
}

bool store_available(Store *s) {
        return s && atomic_load(&s->available);
}

Store *store_free(Store *s) {
        StoreOp *op;

        if (!s)
                return NULL;
        if (s->thread_started) {
                /* The thread writes out what is pending (results of finished runs) before it ends. */
                pthread_mutex_lock(&s->lock);
                s->stopping = true;
                pthread_cond_signal(&s->wake);
                pthread_mutex_unlock(&s->lock);
                pthread_join(s->thread, NULL);
        } else
                db_close(s);
        while ((op = op_list_pop(&s->pending)))
                op_drop(op);
        while ((op = op_list_pop(&s->completed)))
                op_drop(op);
        sd_event_source_disable_unref(s->event_source);
        if (s->event_fd >= 0)
                close(s->event_fd);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->wake);
        free(s->deleted);
        free(s->option_file);
        free(s->group);
        free(s);
        return NULL;
}

int store_open(const Config *cfg, sd_event *event, Ledger *l, Store **ret) {
        _cleanup_(store_freep) Store *s = NULL;
        char err[512] = "";
        int r;

        mariadb = mariadb_get(err, sizeof(err));
        if (!mariadb)
                return log_error_errno(-ENOENT, "mysql: cannot load the client library: %s", err);
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->event_fd = -1;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->wake, NULL);
        s->reconnect_delay_ms = RECONNECT_DELAY_MIN_MS;
        s->option_file = strdup(cfg->store_option_file ? cfg->store_option_file : "");
        s->group = strdup(cfg->store_group ? cfg->store_group : "asynctask");
        if (!s->option_file || !s->group)
                return -ENOMEM;
        if (gethostname(s->node, sizeof(s->node) - 1) < 0)
                snprintf(s->node, sizeof(s->node), "localhost");

        r = db_connect(s, err, sizeof(err));
        if (r < 0)
                return log_error_errno(r, "mysql: cannot connect (option file %s, group [%s]): %s",
                                       s->option_file, s->group, err);
        r = schema_migrate(s, err, sizeof(err));
        if (r < 0)
                return log_error_errno(r, "mysql: %s", err);
        r = load_paused(s, l);
        if (r < 0)
                return log_error_errno(r, "mysql: cannot load the paused task names: %s",
                                       s->db ? mariadb->mysql_error(s->db) : "connection lost");
        r = load_records(s, l);
        if (r < 0)
                return log_error_errno(r, "mysql: cannot load task records: %s",
                                       s->db ? mariadb->mysql_error(s->db) : "connection lost");

        s->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->event_fd < 0)
                return -errno;
        r = sd_event_add_io(event, &s->event_source, s->event_fd, EPOLLIN, on_completed, s);
        if (r < 0)
                return r;
        r = -pthread_create(&s->thread, NULL, store_thread, s);
        if (r < 0)
                return r;
        s->thread_started = true;
        *ret = TAKE_PTR(s);
        return 0;
}
