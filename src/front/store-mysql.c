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
 * is queued) and the schema statements come from store-schema.c. This file holds the loop's side of
 * the writes (queueing, completions) and the open and free; the connection and schema are in
 * store-db.c, the start-time load in store-load.c, the reads in store-read.c and the database thread
 * in store-thread.c, sharing the Store through store-mysql-internal.h.
 */

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "front/store-mysql-internal.h"
#include "shared/log.h"
#include "shared/util.h"

const Mariadb *store_mariadb;

static void op_free(StoreOp *op) {
        if (!op)
                return;
        for (size_t i = 0; i < op->result.n_records; i++)
                task_record_free(op->result.records[i]);
        free(op->result.records);
        for (size_t i = 0; i < op->n_unfinished; i++)
                free(op->unfinished[i].submitter);
        free(op->unfinished);
        free(op->counts_query);
        free(op->query);
        free(op->values);
        free(op);
}

/* An op whose answer the loop will never deliver (the store is going away). A purge step's and a
 * read's owner learn it was cancelled, so they can free what they gave (their userdata); a write's
 * owner keeps its own list of what it waits for. */
static void op_drop(StoreOp *op) {
        if (op->purged)
                op->purged(-ECANCELED, 0, op->userdata);
        if (op->read_done) { /* reads, and work of several statements (store-cluster.c) */
                op->result.error = -ECANCELED;
                op->read_done(&op->result, op->userdata);
        }
        op_free(op);
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

        while ((op = store_op_list_pop(&done))) {
                if (op->read != OP_WRITE) {
                        store_read_completed(s, op);
                        op_free(op);
                        continue;
                }
                if (op->done)
                        op->done(op->error == 0 && op->stale ? -ESTALE : op->error, op->userdata);
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

void store_op_queue(Store *s, StoreOp *op) {
        pthread_mutex_lock(&s->lock);
        store_op_list_push(&s->pending, op);
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
}

static int enqueue(Store *s, StoreSqlKind kind, char *values, StoreDoneFn done, void *userdata) {
        StoreOp *op = op_new(kind, values, userdata);

        if (!op)
                return -ENOMEM;
        op->done = done;
        store_op_queue(s, op);
        return 0;
}

int store_insert(Store *s, const TaskRecord *t, StoreDoneFn done, void *userdata) {
        /* Claimed by this node as it is written, unless it may not run here. */
        bool claim = !s->runs_here || s->runs_here(t, s->runs_here_userdata);

        return enqueue(s, STORE_SQL_INSERT, store_sql_row(t, s->node, claim ? s->lease_sec : 0), done,
                       userdata);
}

void store_set_runs_here(Store *s, bool (*fn)(const TaskRecord *t, void *userdata), void *userdata) {
        s->runs_here = fn;
        s->runs_here_userdata = userdata;
}

/* The last run of an every_host submission to end finishes its parent, in the transaction that
 * writes its result (the statement follows the run's, in the same batch unless the thread took the
 * batch between the two, then in the next). It changes nothing while another run is open, and
 * nothing waits for it. */
static int settle_parent_after(Store *s, const TaskRecord *t, int r) {
        if (r < 0 || t->parent_id == 0 || t->parent_id == t->id || !task_state_is_final(t->state))
                return r;
        if (enqueue(s, STORE_SQL_SETTLE, store_sql_settle_parents(t->parent_id), NULL, NULL) < 0)
                /* The leader's heartbeat finishes the parent instead. */
                log_debug("mysql: cannot queue the finish of parent %llu: out of memory",
                          (unsigned long long) t->parent_id);
        return r;
}

int store_update(Store *s, const TaskRecord *t, StoreDoneFn done, void *userdata) {
        return settle_parent_after(
                s, t, enqueue(s, STORE_SQL_UPDATE, store_sql_row(t, s->node, s->lease_sec), done, userdata));
}

int store_update_run(Store *s, const TaskRecord *t, StoreDoneFn done, void *userdata) {
        return settle_parent_after(s, t,
                                   enqueue(s, STORE_SQL_FENCED_UPDATE,
                                           store_sql_fenced_update(t, s->node, s->lease_sec), done,
                                           userdata));
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

int store_purge(Store *s, uint64_t finished_before, StorePurgeDoneFn done, void *userdata) {
        /* 0 would render as NULL, which no finished_at is below. */
        StoreOp *op =
                op_new(STORE_SQL_PURGE, store_sql_datetime(finished_before ? finished_before : 1), userdata);

        if (!op)
                return -ENOMEM;
        op->purged = done;
        store_op_queue(s, op);
        return 0;
}

bool store_available(Store *s) {
        return s && atomic_load(&s->available);
}

void store_shutdown(Store *s) {
        if (!s)
                return;
        pthread_mutex_lock(&s->lock);
        s->shutting_down = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
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
                store_db_close(s);
        while ((op = store_op_list_pop(&s->pending)))
                op_drop(op);
        while ((op = store_op_list_pop(&s->completed)))
                op_drop(op);
        sd_event_source_disable_unref(s->event_source);
        if (s->event_fd >= 0)
                close(s->event_fd);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->wake);
        free(s->deleted);
        free(s->option_file);
        free(s->group);
        free(s->node);
        free(s);
        return NULL;
}

int store_open(const Config *cfg, sd_event *event, Ledger *l, Store **ret) {
        _cleanup_(store_freep) Store *s = NULL;
        char err[512] = "";
        int r;

        store_mariadb = mariadb_get(err, sizeof(err));
        if (!store_mariadb)
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
        s->node = strdup(cfg->node ? cfg->node : "localhost");
        if (!s->node)
                return -ENOMEM;
        s->lease_sec = (unsigned) cfg->node_timeout_sec;
        s->shared_window = store_cluster_shared_window(cfg->max_running);

        r = store_db_connect(s, err, sizeof(err));
        if (r < 0)
                return log_error_errno(r, "mysql: cannot connect (option file %s, group [%s]): %s",
                                       s->option_file, s->group, err);
        r = store_db_migrate(s, err, sizeof(err));
        if (r < 0)
                return log_error_errno(r, "mysql: %s", err);
        r = store_load_paused(s, l);
        if (r < 0)
                return log_error_errno(r, "mysql: cannot load the paused task names: %s",
                                       s->db ? store_mariadb->mysql_error(s->db) : "connection lost");
        s->ledger = l;
        r = store_cluster_register(s, err, sizeof(err));
        if (r < 0)
                return log_error_errno(r, "mysql: %s", err);
        r = store_load_records(s, l, store_cluster_start_window(s));
        if (r < 0)
                return log_error_errno(r, "mysql: cannot load task records: %s",
                                       s->db ? store_mariadb->mysql_error(s->db) : "connection lost");

        s->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->event_fd < 0)
                return -errno;
        r = sd_event_add_io(event, &s->event_source, s->event_fd, EPOLLIN, on_completed, s);
        if (r < 0)
                return r;
        r = -pthread_create(&s->thread, NULL, store_thread_run, s);
        if (r < 0)
                return r;
        s->thread_started = true;
        *ret = TAKE_PTR(s);
        return 0;
}
