/* SPDX-License-Identifier: MIT */
/*
 * The ledger's operations: the state machine of its records, their lifetime and their watches. The
 * records (task-record.c), their indexes (task-index.c) and the run queue (run-queue.c) are kept
 * elsewhere; this file decides what changes when, and changes it only once nothing can fail.
 *
 * It is one piece on purpose (some 870 lines): every change of a record's state moves it between the
 * queue, the finished list, the per-submitter tallies, the ids of other nodes and its watches at once,
 * and is the only place the record's fields change (the dispatcher and the service call in here).
 * Split by state, the half-done moves would cross files.
 *
 * A record made by ledger_submit() is one allocation: the TaskRecord, the ledger's bookkeeping
 * (TaskNode) and every string of the submission packed behind it. Records handed over by
 * ledger_adopt() keep the strings the store allocated, and get their TaskNode from a small separate
 * allocation.
 *
 * Behaviour the header leaves open, decided here:
 * - ledger_adopt(): on error the caller still owns t (and frees it with task_record_free()).
 * - ledger_set_next_id() never moves the next id backwards.
 * - ledger_free() fires the watches still pending with forgotten = true, so their owners drop them.
 * - ledger_watch() accepts a task in any state; on a final task it fires when the task is forgotten
 *   (or, after a retry, when it is final again). -ENOENT for a task forgotten from a callback.
 * - State changes from the wrong state return -EINVAL (ledger_cancel: -EBUSY / -EALREADY).
 * - can_start() must not change the ledger.
 * - The QUEUED_MAX admission check is the caller's (ledger_stats() has the count).
 */
#include "front/hash-table.h"
#include "front/ledger.h"
#include "front/paused-tasks.h"
#include "front/run-queue.h"
#include "front/tally.h"
#include "front/task-index.h"
#include "front/task-node.h"
#include "shared/util.h"

struct LedgerWatch {
        LedgerWatch *prev, *next;
        LedgerWatch **head; /* list this watch is on: a record's, or a list being fired */
        LedgerWatchFn fn;
        void *userdata;
        bool firing;   /* its callback runs now; the ledger frees it afterwards */
        bool progress; /* fires on progress changes too */
};

/* Final records in the order they became final (adopted ones: in the order adopted), oldest first. */
typedef struct FinishedList {
        TaskRecord *head, *tail;
} FinishedList;

/* The lists of final records: past max_finished, the first list is emptied before the second. */
enum {
        FINISHED_DROPPABLE, /* succeeded, cancelled */
        FINISHED_FAILED,
        _FINISHED_LISTS,
};

struct Ledger {
        uint64_t next_id;
        /* Ids handed out by a shared counter (several hosts on one database): [next_id, id_end) is
         * this front's, [spare_start, spare_end) the block to go on with (empty: none yet). Without
         * a counter id_end is UINT64_MAX and adopted records move next_id past their ids. */
        uint64_t id_end;
        uint64_t spare_start, spare_end;
        void (*ids_low)(void *userdata);
        void *ids_low_userdata;
        TaskIndex index;
        RunQueue queue;
        FinishedList finished[_FINISHED_LISTS];
        uint64_t max_finished; /* 0: no bound */

        uint64_t by_state[_TASK_STATE_MAX];
        uint64_t submitted_total;
        Tally *unfinished; /* per submitter: records queued or running, and their stdin bytes */
        bool counts_rows;  /* unfinished counts the store's rows: an adopted record is in it already */
        PausedTasks paused;
};

/* ---- records ---- */

static void record_destroy(TaskRecord *t) {
        TaskNode *n = task_node(t);

        if (n->kind == TASK_NODE_ADOPTED) {
                t->priv = NULL;
                free(n);
                task_record_free(t);
                return;
        }
        task_record_free_packed(t);
}

/* Counts t (sign 1) or stops counting it (sign -1) in its submitter's unfinished records, if it is
 * unfinished: every change of state, insertion and removal passes here, so the totals stay exact. */
static int unfinished_count(Ledger *l, const TaskRecord *t, int sign) {
        if (task_state_is_final(t->state))
                return 0;
        return tally_add(l->unfinished, t->submitter, sign, sign * (int64_t) t->stdin_len);
}

static FinishedList *finished_list_of(Ledger *l, TaskState state) {
        return &l->finished[state == TASK_FAILED ? FINISHED_FAILED : FINISHED_DROPPABLE];
}

/* Appends a final record to its list (the newest finished). */
static void finished_link(Ledger *l, TaskRecord *t) {
        FinishedList *list = finished_list_of(l, t->state);
        TaskNode *n = task_node(t);

        n->finished_next = NULL;
        n->finished_prev = list->tail;
        if (list->tail)
                task_node(list->tail)->finished_next = t;
        else
                list->head = t;
        list->tail = t;
}

static void finished_unlink(Ledger *l, TaskRecord *t) {
        FinishedList *list = finished_list_of(l, t->state);
        TaskNode *n = task_node(t);

        if (n->finished_prev)
                task_node(n->finished_prev)->finished_next = n->finished_next;
        else
                list->head = n->finished_next;
        if (n->finished_next)
                task_node(n->finished_next)->finished_prev = n->finished_prev;
        else
                list->tail = n->finished_prev;
        n->finished_prev = n->finished_next = NULL;
}

static uint64_t finished_count(const Ledger *l) {
        return l->by_state[TASK_SUCCEEDED] + l->by_state[TASK_CANCELLED] + l->by_state[TASK_FAILED];
}

static void set_state(Ledger *l, TaskRecord *t, TaskState state) {
        if (task_state_is_final(t->state))
                finished_unlink(l, t);
        if (task_state_is_final(t->state) != task_state_is_final(state)) {
                /* A retried record's submitter is counted again; ENOMEM leaves it uncounted, which
                 * errs on the side of the submitter. */
                (void) unfinished_count(l, t, -1);
                (void) unfinished_count(
                        l,
                        &(TaskRecord){.state = state, .submitter = t->submitter, .stdin_len = t->stdin_len},
                        1);
        }
        l->by_state[t->state]--;
        l->by_state[state]++;
        t->state = state;
        if (task_state_is_final(state))
                finished_link(l, t);
}

/* Runs and frees every watch on t. Watches are moved to a local list first: a callback may free
 * another watch (it is then unlinked from that list and never fires), add new watches (they wait for
 * the next event), or forget t (t stays allocated until the outermost firing is done). */
static void fire_list(TaskRecord *t, LedgerWatch *pending, bool forgotten);

static void fire_watches(TaskRecord *t, bool forgotten) {
        TaskNode *n = task_node(t);
        LedgerWatch *pending = n->watches;

        if (!pending)
                return;
        n->watches = NULL;
        fire_list(t, pending, forgotten);
}

/* Fires the watches on t that asked for progress changes; the others stay. */
static void fire_progress_watches(TaskRecord *t) {
        TaskNode *n = task_node(t);
        LedgerWatch *pending = NULL, *w, *next;

        for (w = n->watches; w; w = next) {
                next = w->next;
                if (!w->progress)
                        continue;
                if (w->prev)
                        w->prev->next = w->next;
                else
                        n->watches = w->next;
                if (w->next)
                        w->next->prev = w->prev;
                w->prev = NULL;
                w->next = pending;
                if (pending)
                        pending->prev = w;
                pending = w;
        }
        if (pending)
                fire_list(t, pending, false);
}

static void fire_list(TaskRecord *t, LedgerWatch *pending, bool forgotten) {
        TaskNode *n = task_node(t);
        LedgerWatch *w;

        for (w = pending; w; w = w->next)
                w->head = &pending;

        n->firing++;
        while ((w = pending)) {
                pending = w->next;
                if (pending)
                        pending->prev = NULL;
                w->head = NULL;
                w->prev = w->next = NULL;
                w->firing = true;
                w->fn(t, forgotten, w->userdata);
                free(w);
        }
        n->firing--;
}

/* Frees t if it was removed from the ledger and no callback runs for it any more. Returns true if
 * freed. */
static bool record_reap(TaskRecord *t) {
        TaskNode *n = task_node(t);

        if (!n->doomed || n->firing > 0)
                return false;
        record_destroy(t);
        return true;
}

/* Takes t out of every index and the queue, tells its watchers, frees it. */
static void record_remove(Ledger *l, TaskRecord *t) {
        run_queue_remove(&l->queue, t);
        task_index_remove(&l->index, t);
        (void) unfinished_count(l, t, -1);
        if (task_state_is_final(t->state))
                finished_unlink(l, t);
        l->by_state[t->state]--;
        task_node(t)->doomed = true;

        fire_watches(t, true);
        (void) record_reap(t);
}

static void record_finalize(TaskRecord *t, uint64_t now) {
        t->finished_at = now;
        fire_watches(t, false);
        (void) record_reap(t);
}

/* After task_index_reserve(). */
static void record_add(Ledger *l, TaskRecord *t) {
        task_index_add(&l->index, t);
        l->by_state[t->state]++;
        if (task_state_is_final(t->state))
                finished_link(l, t);
        /* With blocks of ids, only an id of this front's block moves it on: another host's record
         * says nothing about this host's next id. */
        if (t->id >= l->next_id && (l->id_end == UINT64_MAX || t->id < l->id_end))
                l->next_id = t->id + 1;
}

/* Sets t->run_after and reserves its place in the queue; on failure t->run_after is as it was. */
static int requeue_reserve(Ledger *l, TaskRecord *t, uint64_t run_after, uint64_t now) {
        uint64_t saved = t->run_after;
        int r;

        t->run_after = run_after;
        r = run_queue_reserve(&l->queue, t, now);
        if (r < 0)
                t->run_after = saved;
        return r;
}

/* A record the ledger holds and has not removed: one a caller may change. */
static bool record_alive(const Ledger *l, const TaskRecord *t) {
        return l && t && !task_node(t)->doomed;
}

/* ---- public ---- */

int ledger_new(Ledger **ret) {
        Ledger *l;
        HashKey key;

        if (!ret)
                return -EINVAL;
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        if (tally_new(&l->unfinished) < 0) {
                free(l);
                return -ENOMEM;
        }
        hash_key_init(&key, l);
        task_index_init(&l->index, &key);
        run_queue_init(&l->queue, &key);
        l->next_id = 1;
        l->id_end = UINT64_MAX;
        *ret = l;
        return 0;
}

Ledger *ledger_free(Ledger *l) {
        if (!l)
                return NULL;

        /* Whoever still waits on a record learns that it is gone (and drops its watch pointer). */
        task_index_pin(&l->index);
        for (size_t i = 0; i < task_index_len(&l->index); i++) {
                TaskRecord *t = task_index_at(&l->index, i);
                if (t) {
                        fire_watches(t, true);
                        (void) record_reap(t); /* a callback forgot it */
                }
        }
        for (size_t i = 0; i < task_index_len(&l->index); i++) {
                TaskRecord *t = task_index_at(&l->index, i);
                if (t)
                        record_destroy(t);
        }

        run_queue_done(&l->queue);
        task_index_done(&l->index);
        tally_free(l->unfinished);
        paused_tasks_done(&l->paused);
        free(l);
        return NULL;
}

void ledger_set_next_id(Ledger *l, uint64_t next_id) {
        /* Ids never repeat: never move backwards past what was handed out or adopted. With blocks of
         * ids the counter says what is free, not the ids seen. */
        if (next_id > l->next_id && l->id_end == UINT64_MAX)
                l->next_id = next_id;
}

void ledger_add_id_block(Ledger *l, uint64_t start, uint64_t end) {
        if (start >= end)
                return;
        if (l->id_end == UINT64_MAX || l->next_id >= l->id_end) {
                l->next_id = start;
                l->id_end = end;
        } else {
                l->spare_start = start;
                l->spare_end = end;
        }
}

void ledger_set_ids_low(Ledger *l, void (*fn)(void *userdata), void *userdata) {
        l->ids_low = fn;
        l->ids_low_userdata = userdata;
}

bool ledger_wants_id_block(const Ledger *l) {
        return l->id_end != UINT64_MAX && l->spare_start == l->spare_end &&
               (l->next_id >= l->id_end || l->id_end - l->next_id < LEDGER_ID_BLOCK / 2);
}

/* The next id, from the spare block once the current one is used up. -EAGAIN when both are. */
static int next_id_ready(Ledger *l) {
        if (l->next_id < l->id_end)
                return 0;
        if (l->spare_start == l->spare_end)
                return -EAGAIN;
        l->next_id = l->spare_start;
        l->id_end = l->spare_end;
        l->spare_start = l->spare_end = 0;
        return 0;
}

/* A new queued record of sub, not yet in the ledger. */
static int record_new_submitted(const Ledger *l, const TaskSubmission *sub, uint64_t now, TaskRecord **ret) {
        TaskRecord *t;
        int r;

        r = task_record_new_packed(sub, sizeof(TaskNode), &t);
        if (r < 0)
                return r;
        task_node(t)->kind = TASK_NODE_PACKED;
        t->id = l->next_id;
        t->priority = sub->priority;
        t->state = TASK_QUEUED;
        t->max_attempts = sub->max_attempts;
        t->created_at = now;
        t->run_after = sub->run_after ? sub->run_after : now;
        *ret = t;
        return 0;
}

int ledger_submit(Ledger *l, const TaskSubmission *sub, uint64_t now, TaskRecord **ret, bool *ret_existing) {
        TaskRecord *t;
        int r;

        if (!l)
                return -EINVAL;
        r = task_submission_check(sub);
        if (r < 0)
                return r;

        if (sub->key) {
                t = task_index_find_key(&l->index, sub->submitter, sub->key);
                if (t) {
                        if (ret)
                                *ret = t;
                        if (ret_existing)
                                *ret_existing = true;
                        return 0;
                }
        }

        r = next_id_ready(l);
        if (r < 0)
                return r;
        r = record_new_submitted(l, sub, now, &t);
        if (r < 0)
                return r;
        r = task_index_reserve(&l->index, sub->key);
        if (r >= 0)
                r = run_queue_reserve(&l->queue, t, now);
        if (r >= 0)
                r = unfinished_count(l, t, 1);
        if (r < 0) {
                record_destroy(t);
                return r;
        }
        record_add(l, t);
        run_queue_add(&l->queue, t, now);
        l->submitted_total++;
        if (l->ids_low && ledger_wants_id_block(l))
                l->ids_low(l->ids_low_userdata);

        if (ret)
                *ret = t;
        if (ret_existing)
                *ret_existing = false;
        return 0;
}

/* Whether t, loaded by a store, is a record the ledger can hold. */
static int adopted_check(const Ledger *l, const TaskRecord *t) {
        if (!t || t->id == 0 || !t->submitter)
                return -EINVAL;
        if (t->state < 0 || t->state >= _TASK_STATE_MAX)
                return -EINVAL;
        if (!t->task == !t->cmd)
                return -EINVAL;
        if (t->n_args > 0 && !t->args)
                return -EINVAL;
        if (task_index_find_id(&l->index, t->id))
                return -EEXIST;
        if (t->key && task_index_find_key(&l->index, t->submitter, t->key))
                return -EEXIST;
        return 0;
}

int ledger_adopt(Ledger *l, TaskRecord *t) {
        TaskNode *n;
        int r;

        if (!l)
                return -EINVAL;
        r = adopted_check(l, t);
        if (r < 0)
                return r;

        r = task_index_reserve(&l->index, t->key);
        if (r < 0)
                return r;
        if (t->state == TASK_QUEUED) {
                r = run_queue_reserve_delayed(&l->queue);
                if (r < 0)
                        return r;
        }
        if (!t->args) {
                /* Consumers walk args up to its NULL terminator. */
                t->args = calloc(1, sizeof(char *));
                if (!t->args)
                        return -ENOMEM;
        }
        n = calloc(1, sizeof(TaskNode));
        if (!n)
                return -ENOMEM;
        r = l->counts_rows ? 0 : unfinished_count(l, t, 1);
        if (r < 0) {
                free(n);
                return r;
        }
        n->kind = TASK_NODE_ADOPTED;
        t->priv = n;

        record_add(l, t);
        if (t->state == TASK_QUEUED)
                /* Not knowing the time, every queued record waits in the delay heap; the next
                 * ledger_next_runnable() moves the due ones (ledger_next_wakeup() says when). */
                run_queue_add_delayed(&l->queue, t);
        return 0;
}

TaskRecord *ledger_get(Ledger *l, uint64_t id) {
        return l ? task_index_find_id(&l->index, id) : NULL;
}

TaskRecord *ledger_get_by_key(Ledger *l, const char *submitter, const char *key) {
        return l && submitter && key ? task_index_find_key(&l->index, submitter, key) : NULL;
}

TaskRecord *ledger_next_runnable(Ledger *l, uint64_t now, bool (*can_start)(const TaskRecord *t, void *ud),
                                 void *ud) {
        return run_queue_next(&l->queue, now, can_start, ud);
}

void ledger_count_queued(Ledger *l, bool (*can_start)(const TaskRecord *t, void *ud), void *ud,
                         size_t *ret_able, size_t *ret_waiting) {
        run_queue_count(&l->queue, can_start, ud, ret_able, ret_waiting);
}

size_t ledger_queued_of_name(Ledger *l, const TaskRecord *t) {
        return run_queue_group_size(&l->queue, t);
}

/* Records adopted as queued, or whose time came since the last ledger_next_runnable(), may still sit
 * in the delay heap: their run_after (already past) is returned, so the caller wakes up at once. */
uint64_t ledger_next_wakeup(Ledger *l) {
        return run_queue_next_wakeup(&l->queue);
}

int ledger_mark_running(Ledger *l, TaskRecord *t, uint64_t now) {
        if (!record_alive(l, t) || t->state != TASK_QUEUED)
                return -EINVAL;

        run_queue_remove(&l->queue, t);
        set_state(l, t, TASK_RUNNING);
        t->attempts++;
        t->started_at = now;
        free(t->unit);
        t->unit = NULL;
        free(t->progress);
        t->progress = NULL;
        return 0;
}

int ledger_set_progress(Ledger *l, TaskRecord *t, const char *text) {
        char *copy;

        if (!record_alive(l, t) || !text || t->state != TASK_RUNNING)
                return -EINVAL;
        if (streq_ptr(t->progress, text))
                return 0;
        copy = strdup(text);
        if (!copy)
                return -ENOMEM;
        free(t->progress);
        t->progress = copy;
        fire_progress_watches(t);
        return 1;
}

int ledger_mark_launching(Ledger *l, TaskRecord *t) {
        if (!record_alive(l, t) || t->state != TASK_RUNNING)
                return -EINVAL;

        t->launch_pending = true;
        return 0;
}

int ledger_mark_started(Ledger *l, TaskRecord *t, const char *unit) {
        char *u;

        if (!record_alive(l, t) || t->state != TASK_RUNNING)
                return -EINVAL;

        t->launch_pending = false;
        if (!unit || streq_ptr(t->unit, unit))
                return 0;
        u = strdup(unit);
        if (!u)
                return -ENOMEM;
        free(t->unit);
        t->unit = u;
        return 0;
}

int ledger_mark_last_attempt(Ledger *l, TaskRecord *t) {
        if (!record_alive(l, t) || t->state != TASK_RUNNING)
                return -EINVAL;

        t->max_attempts = t->attempts;
        return 0;
}

/* The state a run's result word leads to. The whole word decides (the record keeps it cut to its
 * TaskResult, see task-record.h). */
static TaskState state_after_run(const TaskRecord *t, const RunResult *r) {
        char word[sizeof(r->result)];

        memcpy(word, r->result, sizeof(word) - 1);
        word[sizeof(word) - 1] = 0;

        if (streq(word, "success"))
                return TASK_SUCCEEDED;
        if (streq(word, "cancelled"))
                return TASK_CANCELLED;
        if (t->attempts < t->max_attempts)
                return TASK_QUEUED;
        return TASK_FAILED;
}

/* now + backoff_sec, saturating. */
static uint64_t backoff_until(uint64_t now, uint64_t backoff_sec) {
        uint64_t delay = backoff_sec > UINT64_MAX / USEC_PER_SEC ? UINT64_MAX : backoff_sec * USEC_PER_SEC;

        return now > UINT64_MAX - delay ? UINT64_MAX : now + delay;
}

int ledger_mark_finished(Ledger *l, TaskRecord *t, const RunResult *r, uint64_t now, uint64_t backoff_sec) {
        TaskState next;
        TaskResult res;
        int k;

        if (!record_alive(l, t) || !r || t->state != TASK_RUNNING)
                return -EINVAL;

        next = state_after_run(t, r);
        k = task_result_from_run(&res, r);
        if (k < 0)
                return k;
        if (next == TASK_QUEUED) {
                k = requeue_reserve(l, t, backoff_until(now, backoff_sec), now);
                if (k < 0) {
                        free(res.error);
                        return k;
                }
        }

        free(t->last.error);
        t->last = res;
        t->launch_pending = false;
        set_state(l, t, next);
        if (next == TASK_QUEUED)
                run_queue_add(&l->queue, t, now);
        else
                record_finalize(t, now);
        return 0;
}

int ledger_cancel(Ledger *l, TaskRecord *t, uint64_t now) {
        if (!record_alive(l, t))
                return -EINVAL;
        if (t->state == TASK_RUNNING)
                return -EBUSY;
        if (task_state_is_final(t->state))
                return -EALREADY;

        run_queue_remove(&l->queue, t);
        set_state(l, t, TASK_CANCELLED);
        record_finalize(t, now);
        return 0;
}

int ledger_retry(Ledger *l, TaskRecord *t, uint64_t now) {
        int r;

        if (!record_alive(l, t))
                return -EINVAL;
        if (t->state != TASK_FAILED && t->state != TASK_CANCELLED)
                return -EINVAL;

        r = requeue_reserve(l, t, now, now);
        if (r < 0)
                return r;
        /* t->last stays: it explains the previous failure until the next run ends. */
        t->attempts = 0;
        t->finished_at = 0;
        set_state(l, t, TASK_QUEUED);
        run_queue_add(&l->queue, t, now);
        return 0;
}

int ledger_forget(Ledger *l, TaskRecord *t) {
        if (!l || !t)
                return -EINVAL;
        if (task_node(t)->doomed)
                return -ENOENT;
        if (t->state == TASK_RUNNING)
                return -EBUSY;

        record_remove(l, t);
        return 0;
}

int ledger_unload(Ledger *l, TaskRecord *t) {
        if (!l || !t)
                return -EINVAL;
        if (task_node(t)->doomed)
                return -ENOENT;
        if (t->state != TASK_QUEUED || task_node(t)->watches || task_node(t)->firing > 0)
                return -EBUSY;
        /* As record_remove(), but its row stays unfinished: its submitter's count keeps it. */
        run_queue_remove(&l->queue, t);
        task_index_remove(&l->index, t);
        l->by_state[t->state]--;
        task_node(t)->doomed = true;
        (void) record_reap(t);
        return 0;
}

int ledger_drop(Ledger *l, TaskRecord *t) {
        if (!l || !t)
                return -EINVAL;
        if (task_node(t)->doomed)
                return -ENOENT;
        record_remove(l, t);
        return 0;
}

size_t ledger_list_after(Ledger *l, int state, uint64_t after_id, size_t limit, TaskRecord **out) {
        size_t n = 0;

        if (!l || limit == 0 || state >= _TASK_STATE_MAX)
                return 0;
        task_index_sort(&l->index);

        for (size_t i = task_index_after(&l->index, after_id); i < task_index_len(&l->index) && n < limit;
             i++) {
                TaskRecord *t = task_index_at(&l->index, i);

                if (t && (state < 0 || (int) t->state == state))
                        out[n++] = t;
        }
        return n;
}

size_t ledger_list(Ledger *l, int state, size_t limit, TaskRecord **out) {
        return ledger_list_after(l, state, 0, limit, out);
}

size_t ledger_purge(Ledger *l, uint64_t before) {
        size_t n = 0;

        if (!l)
                return 0;

        /* Watch callbacks run while we walk: entries must not move until we are done. */
        task_index_pin(&l->index);
        for (size_t i = 0; i < task_index_len(&l->index); i++) {
                TaskRecord *t = task_index_at(&l->index, i);

                if (!t || (t->state != TASK_SUCCEEDED && t->state != TASK_CANCELLED))
                        continue;
                if (t->finished_at >= before)
                        continue;
                record_remove(l, t);
                n++;
        }
        task_index_unpin(&l->index);
        return n;
}

uint64_t ledger_oldest_queued_age(Ledger *l, uint64_t now) {
        uint64_t oldest = l ? run_queue_oldest_due(&l->queue, now) : UINT64_MAX;

        return oldest < now ? now - oldest : 0;
}

void ledger_set_max_finished(Ledger *l, uint64_t max_finished) {
        l->max_finished = max_finished;
}

size_t ledger_trim(Ledger *l, LedgerDroppedFn dropped, void *userdata) {
        size_t n = 0;

        if (!l)
                return 0;
        while (l->max_finished > 0 && finished_count(l) > l->max_finished) {
                TaskRecord *t = l->finished[FINISHED_DROPPABLE].head;

                if (!t)
                        t = l->finished[FINISHED_FAILED].head;
                if (dropped)
                        dropped(t, userdata);
                /* Its watchers (none wait for a final record but to see it forgotten) are told. */
                record_remove(l, t);
                n++;
        }
        return n;
}

void ledger_stats(Ledger *l, LedgerStats *ret) {
        *ret = (LedgerStats){
                .queued = l->by_state[TASK_QUEUED],
                .running = l->by_state[TASK_RUNNING],
                .succeeded = l->by_state[TASK_SUCCEEDED],
                .failed = l->by_state[TASK_FAILED],
                .cancelled = l->by_state[TASK_CANCELLED],
                .submitted_total = l->submitted_total,
        };
}

void ledger_drop_stdin(Ledger *l, TaskRecord *t) {
        free(t->stdin_data);
        t->stdin_data = NULL;
}

void ledger_set_stdin(Ledger *l, TaskRecord *t, char *data, size_t len) {
        if (len != t->stdin_len) {
                (void) unfinished_count(l, t, -1);
                t->stdin_len = len;
                (void) unfinished_count(l, t, 1);
        }
        free(t->stdin_data);
        t->stdin_data = data;
}

void ledger_count_rows(Ledger *l) {
        l->counts_rows = true;
}

void ledger_reset_unfinished(Ledger *l) {
        Tally *fresh = NULL;

        if (tally_new(&fresh) < 0)
                return;
        tally_free(l->unfinished);
        l->unfinished = fresh;
}

int ledger_add_unfinished(Ledger *l, const char *submitter, uint64_t tasks, uint64_t stdin_bytes) {
        if (tasks > INT64_MAX || stdin_bytes > INT64_MAX)
                return -ERANGE;
        return tally_add(l->unfinished, submitter, (int64_t) tasks, (int64_t) stdin_bytes);
}

void ledger_row_unfinished(Ledger *l, const char *submitter, int delta, uint64_t stdin_bytes) {
        int64_t bytes = stdin_bytes > INT64_MAX ? INT64_MAX : (int64_t) stdin_bytes;

        /* Only when out of memory does the count stay as it was: a quota checked a little high. */
        (void) tally_add(l->unfinished, submitter, delta, delta < 0 ? -bytes : bytes);
}

void ledger_submitter_unfinished(Ledger *l, const char *submitter, uint64_t *ret_tasks,
                                 uint64_t *ret_stdin_bytes) {
        tally_get(l->unfinished, submitter, ret_tasks, ret_stdin_bytes);
}

static int watch_add(Ledger *l, TaskRecord *t, LedgerWatchFn fn, void *userdata, bool progress,
                     LedgerWatch **ret) {
        TaskNode *n;
        LedgerWatch *w;

        if (!l || !t || !fn)
                return -EINVAL;
        n = task_node(t);
        if (n->doomed)
                return -ENOENT;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->fn = fn;
        w->userdata = userdata;
        w->progress = progress;
        w->head = &n->watches;
        w->next = n->watches;
        if (w->next)
                w->next->prev = w;
        n->watches = w;

        if (ret)
                *ret = w;
        return 0;
}

int ledger_watch(Ledger *l, TaskRecord *t, LedgerWatchFn fn, void *userdata, LedgerWatch **ret) {
        return watch_add(l, t, fn, userdata, false, ret);
}

int ledger_watch_progress(Ledger *l, TaskRecord *t, LedgerWatchFn fn, void *userdata, LedgerWatch **ret) {
        return watch_add(l, t, fn, userdata, true, ret);
}

LedgerWatch *ledger_watch_free(LedgerWatch *w) {
        if (!w)
                return NULL;
        if (w->firing)
                return NULL; /* its own callback runs: the ledger frees it right after */

        if (w->prev)
                w->prev->next = w->next;
        else
                *w->head = w->next;
        if (w->next)
                w->next->prev = w->prev;
        free(w);
        return NULL;
}

/* ---- paused task names ---- */

int ledger_pause(Ledger *l, const char *task, const char *by, uint64_t since) {
        return paused_tasks_add(&l->paused, task, by, since);
}

bool ledger_resume(Ledger *l, const char *task) {
        return paused_tasks_remove(&l->paused, task);
}

bool ledger_task_paused(const Ledger *l, const char *task) {
        return task && l->paused.n > 0 && paused_tasks_find(&l->paused, task);
}

const PausedTasks *ledger_paused(const Ledger *l) {
        return &l->paused;
}
