/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "front/cluster.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/message-ids.h"
#include "shared/util.h"

struct Cluster {
        sd_event *event;
        Store *store;
        Ledger *ledger;
        Dispatcher *dispatcher;
        const Config *cfg;

        sd_event_source *timer; /* the heartbeat */
        bool leader;
        uint64_t live_nodes;
        uint64_t beating_since; /* CLOCK_MONOTONIC: the first of the heartbeats written without a gap */
        uint64_t recounted_at;  /* CLOCK_MONOTONIC: the last recount of the quotas' rows was queued */
        struct ClusterRef *beat_ref, *ids_ref; /* the answers in flight (NULL: none) */
        struct CancelRead *cancel_reads;       /* reads of rows to cancel, in flight */
};

/* The store's answers may come after the Cluster is freed; they carry this instead. */
typedef struct ClusterRef {
        Cluster *cluster; /* NULL once it is gone */
} ClusterRef;

static void ids_reserved(int error, uint64_t start, uint64_t end, void *userdata) {
        ClusterRef *ref = userdata;
        Cluster *c = ref->cluster;

        free(ref);
        if (!c)
                return;
        c->ids_ref = NULL;
        if (error < 0) {
                log_warning_errno(error,
                                  "Cannot reserve task ids from the database (tried again at the next "
                                  "heartbeat): %m");
                return;
        }
        ledger_add_id_block(c->ledger, start, end);
        log_debug("Reserved task ids %llu to %llu.", (unsigned long long) start,
                  (unsigned long long) end - 1);
}

static ClusterRef *ref_new(Cluster *c) {
        ClusterRef *ref = calloc(1, sizeof(*ref));

        if (ref)
                ref->cluster = c;
        return ref;
}

static void reserve_ids(Cluster *c) {
        ClusterRef *ref;

        if (c->ids_ref || !ledger_wants_id_block(c->ledger))
                return;
        ref = ref_new(c);
        if (!ref || store_reserve_ids(c->store, ids_reserved, ref) < 0) {
                free(ref);
                return;
        }
        c->ids_ref = ref;
}

static void on_ids_low(void *userdata) {
        reserve_ids(userdata);
}

/* A cancel asked on another node of one of this node's records: a queued one is cancelled as a cancel
 * here would be, a running one's run is stopped through this node's launcher (its outcome then says
 * cancelled, and the fenced write records it). */
static void cancel_asked(Cluster *c, TaskRecord *t) {
        if (t->state == TASK_QUEUED && ledger_cancel(c->ledger, t, now_usec(CLOCK_REALTIME)) >= 0) {
                (void) store_update(c->store, t, NULL, NULL);
                log_task(LOG_INFO, t->id, t->task, NULL,
                         "Task %llu cancelled before it ran, as another node asked.",
                         (unsigned long long) t->id);
                dispatcher_kick(c->dispatcher);
        } else if (t->state == TASK_RUNNING && dispatcher_stop_task(c->dispatcher, t) >= 0)
                log_task(LOG_INFO, t->id, t->task, NULL,
                         "Task %llu stopped: another node asked to cancel it.", (unsigned long long) t->id);
}

/* A read of rows this node holds that memory does not (submissions waiting in the database past the
 * window: dispatcher-refill.c), to cancel them once they are back in the ledger. */
typedef struct CancelRead {
        Cluster *cluster; /* NULL once it is gone */
        struct CancelRead *prev, *next;
} CancelRead;

static void cancel_read_done(StoreRead *result, void *userdata) {
        CancelRead *x = userdata;
        Cluster *c = x->cluster;

        if (c) {
                if (x->prev)
                        x->prev->next = x->next;
                else
                        c->cancel_reads = x->next;
                if (x->next)
                        x->next->prev = x->prev;
        }
        free(x);
        if (!c || result->error == -ECANCELED)
                return;
        if (result->error < 0) {
                log_warning_errno(result->error, "Cannot read the task(s) another node asked to cancel: %m");
                return;
        }
        for (size_t i = 0; i < result->n_records; i++) {
                TaskRecord *t = result->records[i];

                /* Still this node's queued row, and still not in memory (a claim may have brought it). */
                if (!ledger_get(c->ledger, t->id) && t->state == TASK_QUEUED && t->node &&
                    streq(t->node, c->cfg->node) && ledger_adopt(c->ledger, t) >= 0)
                        result->records[i] = NULL;
                t = ledger_get(c->ledger, t->id);
                if (t)
                        cancel_asked(c, t);
        }
}

/* Cancels asked on other nodes of this node's rows; those memory does not hold are read first. */
static void carry_out_cancels(Cluster *c, const StoreBeat *beat) {
        _cleanup_free_ uint64_t *absent = NULL;
        CancelRead *x;
        size_t n_absent = 0;

        for (size_t i = 0; i < beat->n_cancels; i++) {
                TaskRecord *t = ledger_get(c->ledger, beat->cancels[i]);

                if (t)
                        cancel_asked(c, t);
                else {
                        if (!absent)
                                absent = calloc(beat->n_cancels, sizeof(uint64_t));
                        if (absent)
                                absent[n_absent++] = beat->cancels[i];
                }
        }
        if (n_absent == 0)
                return;
        x = calloc(1, sizeof(*x));
        if (!x || store_read_tasks(c->store, absent, n_absent, cancel_read_done, x) < 0) {
                free(x);
                log_warning("Cannot read the %zu task(s) another node asked to cancel.", n_absent);
                return;
        }
        x->cluster = c;
        x->next = c->cancel_reads;
        if (x->next)
                x->next->prev = x;
        c->cancel_reads = x;
}

/* With other hosts alive, a submitter's unfinished rows change by their doing too (a row they queue
 * for it, finish or cancel): this host's counts are the rows read again every QUOTA_RECOUNT_SEC, so
 * that a quota holds over the database, not per host. One host alone counts every change itself. */
static void recount_quotas(Cluster *c) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        if (c->live_nodes < 2 || now - c->recounted_at < QUOTA_RECOUNT_SEC * USEC_PER_SEC)
                return;
        if (store_recount_unfinished(c->store, NULL, NULL) >= 0)
                c->recounted_at = now;
}

static void beat_done(int error, StoreBeat *beat, void *userdata) {
        ClusterRef *ref = userdata;
        Cluster *c = ref->cluster;
        unsigned window;

        free(ref);
        if (!c)
                return;
        c->beat_ref = NULL;
        if (error < 0) {
                log_debug("Heartbeat not written: %s", strerror(-error));
                c->beating_since = 0;
                return;
        }
        if (c->beating_since == 0)
                c->beating_since = now_usec(CLOCK_MONOTONIC);
        if (beat->leader != c->leader)
                log_info("Node %s %s the leader of the nodes on the database.", c->cfg->node,
                         beat->leader ? "is now" : "is no longer");
        if (beat->live_nodes != c->live_nodes)
                log_info("%llu node(s) alive on the database.", (unsigned long long) beat->live_nodes);
        c->leader = beat->leader;
        c->live_nodes = beat->live_nodes;
        for (size_t i = 0; i < beat->n_dead_nodes; i++)
                log_event(LOG_WARNING, MESSAGE_ID_NODE_DEAD,
                          "Node %s is dead (no heartbeat for %llu s): %llu of its running task(s) queued "
                          "again, %llu failed as lost.",
                          beat->dead_nodes[i], (unsigned long long) c->cfg->node_timeout_sec,
                          (unsigned long long) beat->requeued[i], (unsigned long long) beat->failed[i]);
        carry_out_cancels(c, beat);
        dispatcher_set_owned(c->dispatcher, beat->owned, beat->n_owned);
        beat->owned = NULL; /* the dispatcher's now */
        beat->n_owned = 0;
        window =
                beat->live_nodes > 1 ? store_cluster_shared_window(c->cfg->max_running) : STORE_QUEUE_WINDOW;
        dispatcher_set_cluster(c->dispatcher, c->leader, beat->live_nodes > 1, window);
        if (beat->n_dead_nodes > 0)
                dispatcher_queue_grew(c->dispatcher);
        else
                dispatcher_poll_claims(c->dispatcher);
        reserve_ids(c);
        recount_quotas(c);
}

/* The names whose lost runs fail rather than run again (limited false), or the names with a
 * concurrency limit that this node may run (limited true). Borrowed from cfg. */
static char **task_names(const Config *cfg, bool limited, size_t *ret_n) {
        char **v = calloc(cfg->n_tasks + 1, sizeof(char *));
        size_t n = 0;

        if (!v)
                return NULL;
        for (size_t i = 0; i < cfg->n_tasks; i++) {
                const TaskDef *t = &cfg->tasks[i];

                if (limited ? t->concurrency > 0 && config_task_runs_on(t, cfg->node) : t->on_lost_fail)
                        v[n++] = t->name;
        }
        *ret_n = n;
        return v;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Cluster *c = userdata;

        if (!c->beat_ref) {
                _cleanup_free_ char **names = NULL, **limited = NULL;
                ClusterRef *ref = ref_new(c);
                size_t n = 0, n_limited = 0;

                /* Only a node that has written its heartbeat for a whole timeout buries others: after
                 * the database (or this node's way to it) was down, the others get as long to come
                 * back as the timeout gives them. */
                bool may_bury = c->beating_since != 0 && now_usec(CLOCK_MONOTONIC) - c->beating_since >=
                                                                 c->cfg->node_timeout_sec * USEC_PER_SEC;

                names = task_names(c->cfg, false, &n);
                limited = task_names(c->cfg, true, &n_limited);
                if (ref && names && limited &&
                    store_heartbeat(c->store, names, n, limited, n_limited, may_bury, beat_done, ref) >= 0) {
                        c->beat_ref = ref;
                } else
                        free(ref);
        }
        (void) sd_event_source_set_time_relative(s, c->cfg->heartbeat_sec * USEC_PER_SEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

static bool runs_here(const TaskRecord *t, void *userdata) {
        Cluster *c = userdata;

        return dispatcher_runs_here(c->dispatcher, t);
}

int cluster_new(sd_event *event, Store *store, Ledger *ledger, Dispatcher *dispatcher, const Config *cfg,
                Cluster **ret) {
        _cleanup_(cluster_freep) Cluster *c = calloc(1, sizeof(Cluster));
        int r;

        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(event);
        c->store = store;
        c->ledger = ledger;
        c->dispatcher = dispatcher;
        c->cfg = cfg;
        /* The first heartbeat at once: it says whether other nodes are alive. */
        r = sd_event_add_time_relative(event, &c->timer, CLOCK_MONOTONIC, 0, 10 * USEC_PER_MSEC, on_timer,
                                       c);
        if (r < 0)
                return r;
        ledger_set_ids_low(ledger, on_ids_low, c);
        store_set_runs_here(store, runs_here, c);
        log_info("Node %s: heartbeat every %llu s, taken for dead after %llu s without one.", cfg->node,
                 (unsigned long long) cfg->heartbeat_sec, (unsigned long long) cfg->node_timeout_sec);
        *ret = TAKE_PTR(c);
        return 0;
}

void cluster_set_config(Cluster *c, const Config *cfg) {
        if (c)
                c->cfg = cfg;
}

Cluster *cluster_free(Cluster *c) {
        if (!c)
                return NULL;
        /* Answers still in flight find no Cluster and only free their ref. */
        if (c->beat_ref)
                c->beat_ref->cluster = NULL;
        if (c->ids_ref)
                c->ids_ref->cluster = NULL;
        for (CancelRead *x = c->cancel_reads; x; x = x->next)
                x->cluster = NULL;
        if (c->ledger)
                ledger_set_ids_low(c->ledger, NULL, NULL);
        if (c->store)
                store_set_runs_here(c->store, NULL, NULL);
        sd_event_source_disable_unref(c->timer);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}
