/* SPDX-License-Identifier: MIT */
/*
 * The MySQL store's side of "on": "every_host" (docs/cluster.md "One run on every host"), run on the
 * store's thread: a submission becomes, in one transaction, a parent row and one run per live node,
 * each claimed by its node. Apart from the claims and the heartbeat (store-cluster.c) because it is
 * the one write that makes several rows of one submission.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front/ledger.h"
#include "front/store-sql.h"
#include "front/store-mysql-internal.h"
#include "shared/config-task.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/util.h"

typedef struct EveryHostCall {
        TaskRecord *t;   /* the submission (task_record_free_packed()); its fields are set per row */
        char *hosts_sql; /* " AND name IN (...)", or "" */
        StoreEveryHost family;
        StoreEveryHostFn done;
        void *userdata;
} EveryHostCall;

static void every_host_call_free(EveryHostCall *c) {
        task_record_free_packed(c->t);
        free(c->hosts_sql);
        free(c->family.ids);
        strv_free(c->family.nodes);
        free(c);
}

/* Appends t's row, with parent_id, to *values. */
static int add_family_row(char **values, const TaskRecord *t, const char *node, unsigned lease_sec,
                          uint64_t parent_id) {
        _cleanup_free_ char *row = store_sql_family_row(t, node, lease_sec, parent_id);
        char *more = NULL;

        if (!row || asprintf(&more, "%s%s%s", *values ? *values : "", *values ? ",\n" : "", row) < 0)
                return -ENOMEM;
        free(*values);
        *values = more;
        return 0;
}

/* In one transaction: the live nodes (of the task's hosts), one id for the parent and one per node,
 * and their rows. A run is queued and claimed by its node, which its heartbeat renews like any claim
 * of its; the parent is "running" on no node ("*"), which nothing claims, loads or buries. */
static int every_host_once(Store *s, EveryHostCall *c) {
        _cleanup_(strv_freep) char **nodes = NULL;
        _cleanup_free_ char *select = NULL, *values = NULL, *insert = NULL;
        TaskRecord *t = c->t;
        uint64_t start = 0, end = 0;
        size_t n = 0;
        int r;

        if (asprintf(&select,
                     "SELECT name FROM nodes WHERE heartbeat_at >= DATE_SUB(UTC_TIMESTAMP(6), "
                     "INTERVAL %u "
                     "SECOND)%s ORDER BY name",
                     s->lease_sec, c->hosts_sql) < 0)
                return -ENOMEM;
        r = store_conn_exec(s, "START TRANSACTION");
        if (r >= 0)
                r = store_conn_query_strings(s, select, &nodes, &n);
        if (r >= 0 && n == 0)
                r = -EHOSTUNREACH;
        if (r >= 0)
                r = store_cluster_reserve_n_ids(s, n + 1, &start, &end);
        if (r < 0)
                goto fail;

        t->id = start;
        t->state = TASK_RUNNING;
        t->started_at = t->created_at;
        r = add_family_row(&values, t, STORE_SQL_EVERY_HOST_NODE, 0, start);
        t->state = TASK_QUEUED;
        t->started_at = 0;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                t->id = start + 1 + i;
                r = add_family_row(&values, t, nodes[i], s->lease_sec, start);
        }
        if (r >= 0 && asprintf(&insert, "INSERT INTO tasks (%s, parent_id) VALUES %s", store_sql_row_columns,
                               values) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = store_conn_exec(s, insert);
        if (r >= 0)
                r = store_conn_exec(s, "COMMIT");
        if (r < 0)
                goto fail;

        free(c->family.ids);
        strv_free(c->family.nodes);
        c->family.ids = calloc(n, sizeof(uint64_t));
        if (!c->family.ids) {
                c->family.nodes = NULL;
                return -ENOMEM; /* committed: the runs go on, the answer cannot say so */
        }
        for (size_t i = 0; i < n; i++)
                c->family.ids[i] = start + 1 + i;
        c->family.parent_id = start;
        c->family.nodes = TAKE_PTR(nodes);
        c->family.n = n;
        return 0;
fail:
        store_conn_rollback(s);
        return r;
}

static int every_host_run(Store *s, const char *query, void *data, StoreRead *result) {
        EveryHostCall *c = data;
        int r = -EAGAIN;

        for (unsigned i = 0; i < CLAIM_TRIES && r == -EAGAIN; i++)
                r = every_host_once(s, c);
        return r;
}

static void every_host_call_done(StoreRead *result, void *userdata) {
        EveryHostCall *c = userdata;

        c->done(result->error, &c->family, c->userdata);
        every_host_call_free(c);
}

int store_submit_every_host(Store *s, TaskRecord *t, char *const *hosts, size_t n_hosts,
                            StoreEveryHostFn done, void *userdata) {
        EveryHostCall *c = calloc(1, sizeof(*c));
        int r;

        if (!c) {
                task_record_free_packed(t);
                return -ENOMEM;
        }
        c->t = t;
        c->done = done;
        c->userdata = userdata;
        c->hosts_sql = strdup("");
        for (size_t i = 0; c->hosts_sql && i < n_hosts; i++) {
                _cleanup_free_ char *name = store_sql_task_name(hosts[i]);
                char *more = NULL;

                if (!name || asprintf(&more, "%s%s%s%s", c->hosts_sql, i == 0 ? " AND name IN (" : ", ",
                                      name, i + 1 == n_hosts ? ")" : "") < 0)
                        more = NULL;
                free(c->hosts_sql);
                c->hosts_sql = more;
        }
        r = c->hosts_sql ? store_call(s, every_host_run, NULL, c, every_host_call_done, c) : -ENOMEM;
        if (r < 0)
                every_host_call_free(c);
        return r;
}
