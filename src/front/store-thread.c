/* SPDX-License-Identifier: MIT */
/*
 * The MySQL store's database thread: it takes what the loop queued, runs the writes as one
 * transaction (the group commit: what piles up while a commit is in flight is the next batch) and a
 * read alone, and posts the completions back through the eventfd. A batch that fails is run op by op,
 * retried, or answered, by what failed: the connection (reconnect, with a growing delay), the server
 * for a while (hold off), or one write (drop it alone). New tasks are refused while the database
 * cannot take them; changes to acknowledged records stay queued. Apart from the queue and the open
 * (store-mysql.c) because this is the only code that runs off the loop.
 */

#include <errno.h>
#include <sys/random.h>
#include <unistd.h>

#include "front/store-mysql-internal.h"
#include "shared/log.h"
#include "shared/message-ids.h"
#include "shared/util.h"

/* Ops taken into one transaction at most: bounds the time a batch holds its locks. */
#define BATCH_OPS_MAX 20000
/* After the server refused a write for want of a resource (disk full, lock timeout): new tasks are
 * refused and changes held this long before trying again, doubling up to the maximum. */
#define HOLD_OFF_MIN_MS 200
#define HOLD_OFF_MAX_MS 2000
/* A transaction rolled back as a deadlock is run again after a pause of about 1, 2, 4, ... ms, at most
 * DEADLOCK_PAUSE_MAX_MS, for DEADLOCK_RETRY_MS in all. On Galera three fronts writing on three nodes
 * of a loaded machine lose a few tries in a row now and then (ten in a row, once in a CI run, when the
 * budget was a third of a second); each pause is drawn between half and all of its length, so that
 * nodes that lost to each other do not try again in step. A transaction that still loses is answered
 * as contended (-EBUSY): its new tasks are refused, its changes written again, and nothing else is
 * held back, since the server does take writes. */
#define DEADLOCK_RETRY_MS     3000U
#define DEADLOCK_PAUSE_MAX_MS 100U

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

/* Ends the statement being built and sends it; purge (a purge is a statement alone) learns how many
 * rows it deleted, a fenced update (alone too) whether the fence held it back. */
static int batch_send(Store *s, StoreSqlStatement *st, StoreOp *purge) {
        const char *sql;
        size_t len;
        int r;

        r = store_sql_statement_end(st, &sql, &len);
        if (r < 0 || len == 0)
                return r;
        r = store_db_query(s, sql, len);
        if (r >= 0 && purge && purge->kind == STORE_SQL_FENCED_UPDATE)
                purge->stale = store_mariadb->mysql_affected_rows(s->db) == 0;
        else if (r >= 0 && purge)
                purge->rows = (uint64_t) store_mariadb->mysql_affected_rows(s->db);
        return r;
}

/* Runs ops (in order) as one transaction. Statements are sent one by one, each multi-row. */
static int batch_run(Store *s, OpList *ops) {
        StoreSqlStatement st = {};
        StoreOp *purge = NULL; /* the purge in st */
        int r;

        r = store_db_exec(s, "START TRANSACTION");
        if (r < 0)
                return r;
        for (StoreOp *op = ops->head; op; op = op->next) {
                if (!store_sql_statement_takes(&st, op->kind)) {
                        r = batch_send(s, &st, purge);
                        if (r < 0)
                                goto fail;
                }
                store_sql_statement_add(&st, op->kind, op->values);
                purge = op->kind == STORE_SQL_PURGE || op->kind == STORE_SQL_FENCED_UPDATE ? op : NULL;
        }
        r = batch_send(s, &st, purge);
        if (r < 0)
                goto fail;
        store_sql_statement_done(&st);
        r = store_db_exec(s, "COMMIT");
        /* MariaDB rolls back a transaction whose COMMIT failed; should one stay open, the next START
         * TRANSACTION would commit it, with submissions already answered "unavailable" in it. */
        if (r < 0 && s->db)
                (void) store_db_exec(s, "ROLLBACK");
        return r;
fail:
        store_sql_statement_done(&st);
        if (s->db)
                (void) store_db_exec(s, "ROLLBACK");
        return r;
}

/* A pause of between half and all of ms milliseconds. */
static void pause_jittered(unsigned ms) {
        unsigned noise = 0;

        if (getrandom(&noise, sizeof(noise), GRND_NONBLOCK) != (ssize_t) sizeof(noise))
                noise = (unsigned) now_usec(CLOCK_MONOTONIC);
        (void) usleep((ms * 1000U / 2) + noise % (ms * 1000U / 2 + 1));
}

/* batch_run(), run again while it is rolled back as a deadlock. On Galera that is how a node reports
 * a certification failure (another node committed a conflicting write first) and how a local
 * transaction is aborted for a replicated one that needs its locks; on one server, an InnoDB
 * deadlock. Nothing of it was written and nothing is wrong with it: run again, it commits. */
static int batch_run_retrying(Store *s, OpList *ops) {
        uint64_t give_up = now_usec(CLOCK_MONOTONIC) + DEADLOCK_RETRY_MS * USEC_PER_MSEC;
        unsigned pause_ms = 1, attempt = 1;
        int r = batch_run(s, ops);

        while (r == -EDEADLK && s->db && now_usec(CLOCK_MONOTONIC) < give_up) {
                log_debug("mysql: transaction rolled back as a deadlock, running it again (attempt %u)",
                          ++attempt);
                pause_jittered(pause_ms);
                pause_ms = pause_ms * 2 < DEADLOCK_PAUSE_MAX_MS ? pause_ms * 2 : DEADLOCK_PAUSE_MAX_MS;
                r = batch_run(s, ops);
        }
        if (r == -EDEADLK)
                log_warning("mysql: a transaction lost to other writers for %u ms (%u attempts); its new "
                            "tasks are refused, its changes written again.",
                            DEADLOCK_RETRY_MS, attempt);
        return r == -EDEADLK ? -EBUSY : r;
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

        while ((op = store_op_list_pop(ops))) {
                op->error = error;
                if (op->read != OP_WRITE)
                        op->result.error = error;
                store_op_list_push(done, op);
        }
}

/* The batch failed for a reason other than the connection (a constraint, a bad value): run each
 * op alone so one bad write cannot hold back the others. Returns whether one met a transient error. */
static bool run_one_by_one(Store *s, OpList *ops, OpList *done, OpList *retry) {
        bool transient = false;
        StoreOp *op;

        while ((op = store_op_list_pop(ops))) {
                OpList single = {};
                int r;

                store_op_list_push(&single, op);
                r = !s->db ? -ENOTCONN : transient ? -EAGAIN : batch_run_retrying(s, &single);
                if (r == -EAGAIN)
                        transient = true;
                if ((r == -ENOTCONN || r == -EAGAIN || r == -EBUSY) && op->kind != STORE_SQL_INSERT) {
                        store_op_list_push(retry, op);
                        continue;
                }
                if (r < 0 && r != -ENOTCONN && r != -EAGAIN && r != -EBUSY)
                        log_error("mysql: a %s could not be written and is dropped: %s",
                                  op->kind == STORE_SQL_INSERT ? "new task" : "change",
                                  s->db ? s->last_error : "connection lost");
                op->error = r;
                store_op_list_push(done, op);
        }
        return transient;
}

/* Takes every queued insert out of pending and completes it with error: while the database is
 * unreachable new submissions are refused at once (the client retries later), while changes to
 * records already acknowledged stay queued and are written when it is back, so no result is lost.
 * Returns how many changes stay queued. */
static size_t refuse_pending_inserts(Store *s, int error) {
        OpList keep = {}, done = {};
        StoreOp *op;

        pthread_mutex_lock(&s->lock);
        while ((op = store_op_list_pop(&s->pending))) {
                op->error = error;
                op->result.error = error;
                /* Reads are refused too: nothing to answer them from. */
                store_op_list_push(op->read != OP_WRITE || op->kind == STORE_SQL_INSERT ? &done : &keep, op);
        }
        s->pending = keep;
        pthread_mutex_unlock(&s->lock);
        post_completed(s, &done);
        return keep.n;
}

/* A CLOCK_REALTIME deadline in usec, as pthread_cond_timedwait() takes it. */
static struct timespec deadline_timespec(uint64_t deadline_usec) {
        return (struct timespec){
                .tv_sec = (time_t) (deadline_usec / USEC_PER_SEC),
                .tv_nsec = (long) (deadline_usec % USEC_PER_SEC) * 1000,
        };
}

/* Waits until there is work or a stop is requested. */
static void wait_for_work(Store *s) {
        pthread_mutex_lock(&s->lock);
        while (!s->pending.head && !s->stopping)
                pthread_cond_wait(&s->wake, &s->lock);
        pthread_mutex_unlock(&s->lock);
}

/* While the database cannot take the n_held changes still queued: waits until the deadline, a new op
 * (to refuse it if it is a new task), a stop, or the news that the daemon stops. Not until there is
 * work, as wait_for_work() does: the held changes are work, and the thread would spin on them. */
static void wait_for_news(Store *s, uint64_t deadline_usec, size_t n_held) {
        struct timespec ts = deadline_timespec(deadline_usec);

        pthread_mutex_lock(&s->lock);
        while (s->pending.n <= n_held && !s->stopping && s->shutting_down == s->shutdown_seen)
                if (pthread_cond_timedwait(&s->wake, &s->lock, &ts) == ETIMEDOUT)
                        break;
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
        if (store_db_connect(s, err, sizeof(err)) == 0) {
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

/* At a stop, or once the daemon began to stop and one more attempt failed (notice_shutdown()):
 * completes every pending op with -ESHUTDOWN and logs how many changes are lost (`why` says why).
 * Nothing is lost for good: the launcher keeps a result until the front acknowledges it, and the next
 * front writes it; a start not recorded is not launched (the row stays queued). Returns whether the
 * thread is to end. */
static bool stop_with_pending(Store *s, const char *why) {
        OpList done = {};
        bool stopping;

        pthread_mutex_lock(&s->lock);
        stopping = s->stopping;
        if (stopping || s->shutdown_seen) {
                if (s->pending.n > 0)
                        log_error("mysql: %s at shutdown, %zu changes not written", why, s->pending.n);
                complete_all(&s->pending, -ESHUTDOWN, &done);
        }
        pthread_mutex_unlock(&s->lock);
        post_completed(s, &done);
        return stopping;
}

/* Not connected, and reconnect() could not: new tasks are refused until the next attempt. Returns
 * false at a stop. */
static bool while_unreachable(Store *s) {
        size_t n_held = refuse_pending_inserts(s, -ENOTCONN);

        if (stop_with_pending(s, "unreachable"))
                return false;
        wait_for_news(s, s->reconnect_at_usec, s->shutdown_seen ? 0 : n_held);
        return true;
}

/* Writes are held off (hold_off()): new tasks are refused until hold_until_usec. Returns -ESHUTDOWN
 * at a stop, 0 while writes are held, 1 once they may be tried again. */
static int while_held_off(Store *s) {
        size_t n_held;

        if (now_usec(CLOCK_REALTIME) >= s->hold_until_usec) {
                /* Try again; the next batch tells whether the server takes writes now. */
                s->hold_until_usec = 0;
                atomic_store(&s->available, true);
                return 1;
        }
        n_held = refuse_pending_inserts(s, -EAGAIN);
        if (stop_with_pending(s, "the database refuses writes"))
                return -ESHUTDOWN;
        wait_for_news(s, s->hold_until_usec, s->shutdown_seen ? 0 : n_held);
        return 0;
}

/* Waits for work, then takes up to BATCH_OPS_MAX pending ops into batch. Returns whether a stop was
 * requested (ops still pending then are written before the thread ends). */
static bool batch_take(Store *s, OpList *batch) {
        StoreOp *op;
        bool stopping;

        wait_for_work(s);
        pthread_mutex_lock(&s->lock);
        stopping = s->stopping;
        if (s->pending.head && s->pending.head->read != OP_WRITE)
                /* A read goes alone, after the writes queued before it. */
                store_op_list_push(batch, store_op_list_pop(&s->pending));
        else
                while (batch->n < BATCH_OPS_MAX && s->pending.head && s->pending.head->read == OP_WRITE) {
                        op = store_op_list_pop(&s->pending);
                        store_op_list_push(batch, op);
                }
        pthread_mutex_unlock(&s->lock);
        return stopping;
}

/* Completes the ops of a batch that batch_run_retrying() returned r for, or queues them again. */
static void batch_settle(Store *s, OpList *batch, int r) {
        OpList done = {}, retry = {};
        StoreOp *op;

        if (r == 0) {
                complete_all(batch, 0, &done);
                if (s->hold_off_ms != 0)
                        log_event(LOG_NOTICE, MESSAGE_ID_STORE_UP, "mysql: the database takes writes again");
                s->hold_off_ms = 0;
        } else if (r == -ENOTCONN || r == -EAGAIN || r == -EBUSY || !s->db) {
                /* Whether the COMMIT landed is unknown (the connection was lost) or it did not
                 * (refused, or lost to other writers): inserts are reported as not accepted (a client that
                 * retries with its idempotency key is safe either way), other changes are written again,
                 * harmless as they are upserts of whole rows. */
                while ((op = store_op_list_pop(batch))) {
                        if (op->kind == STORE_SQL_INSERT) {
                                op->error = s->db ? r : -ENOTCONN;
                                store_op_list_push(&done, op);
                        } else
                                store_op_list_push(&retry, op);
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

/* The daemon began to stop (store_shutdown()): what the database cannot take now gets one more try at
 * once, not at the end of the wait between attempts; if that fails too, stop_with_pending() gives it
 * up, so that the stop does not wait out its flush deadline for writes that cannot be made. */
static void notice_shutdown(Store *s) {
        bool news;

        pthread_mutex_lock(&s->lock);
        news = s->shutting_down && !s->shutdown_seen;
        s->shutdown_seen = s->shutting_down;
        pthread_mutex_unlock(&s->lock);
        if (!news)
                return;
        s->reconnect_at_usec = 0;
        if (s->hold_until_usec != 0)
                s->hold_until_usec = 1;
}

void *store_thread_run(void *userdata) {
        Store *s = userdata;

        store_mariadb->mysql_thread_init();
        for (;;) {
                OpList batch = {};
                bool stopping;

                notice_shutdown(s);
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
                        store_read_run(s, batch.head);
                        post_completed(s, &batch);
                        continue;
                }
                batch_settle(s, &batch, batch_run_retrying(s, &batch));
        }
        store_db_close(s);
        store_mariadb->mysql_thread_end();
        return NULL;
}
