/* SPDX-License-Identifier: MIT */
/*
 * The MySQL store's changes of a row this node does not hold (docs/cluster.md "A task another host
 * holds"), run on the store's thread: a cancel written there and then, or asked of the node that
 * holds the row; a retry or a forget conditional on the row being as it was read. Apart from the
 * claims and the heartbeat (store-cluster.c) because nothing here holds a row: each statement is
 * one conditional change, and the answer says what the row is now.
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

static int remote_cancel(Store *s, StoreRemote *c) {
        char sql[512];
        int r;

        /* A queued row no live claim holds is cancelled here... */
        snprintf(sql, sizeof(sql),
                 "UPDATE tasks SET state = 'cancelled', finished_at = UTC_TIMESTAMP(6), lease_until = NULL,"
                 " cancel_requested = 0 WHERE id = %llu AND state = 'queued' AND NOT " STORE_SQL_HELD,
                 (unsigned long long) c->id);
        r = store_conn_exec(s, sql);
        if (r < 0 || store_conn_affected_rows(s) == 1) {
                c->outcome = STORE_REMOTE_DONE;
                return r;
        }
        /* ... one a live node holds, queued or running, is its holder's to stop: at its next heartbeat. */
        snprintf(sql, sizeof(sql),
                 "UPDATE tasks SET cancel_requested = 1 WHERE id = %llu AND state IN ('queued','running')"
                 " AND " STORE_SQL_HELD,
                 (unsigned long long) c->id);
        r = store_conn_exec(s, sql);
        if (r >= 0 && store_conn_affected_rows(s) == 1)
                c->outcome = STORE_REMOTE_REQUESTED;
        return r;
}

/* Each statement is conditional on the row being as the caller read it (state and attempts), or, for
 * a record this node holds, as the node wrote it (its finished_at too: a run another node made since
 * may end with the same state and attempts): a row another node changed meanwhile is left alone, and
 * the answer says what it is now. */
static int remote_run(Store *s, const char *query, void *data, StoreRead *result) {
        StoreRemote *c = data;
        _cleanup_(strv_freep) char **state = NULL;
        const char *was = task_state_to_string(c->state);
        unsigned long long id = c->id;
        bool here = c->change == STORE_REMOTE_RETRY_HERE || c->change == STORE_REMOTE_FORGET_HERE;
        _cleanup_free_ char *finished = here ? store_sql_datetime(c->finished_at) : NULL;
        char sql[512], fence[64] = "";
        size_t n = 0;
        int r = 0;

        if (here && !finished)
                return -ENOMEM;
        if (here)
                snprintf(fence, sizeof(fence), " AND finished_at <=> %s", finished);
        c->outcome = STORE_REMOTE_UNCHANGED;
        switch (c->change) {
        case STORE_REMOTE_CANCEL:
                r = remote_cancel(s, c);
                break;
        case STORE_REMOTE_RETRY:
        case STORE_REMOTE_RETRY_HERE:
                /* A run of every_host stays its node's; a parent is never run again. Queued again from
                 * a record this node holds, the row stays this node's: its ledger queues it too. */
                snprintf(sql, sizeof(sql),
                         "UPDATE tasks SET state = 'queued', attempts = 0, finished_at = NULL,"
                         " node = IF(parent_id IS NULL, %s%s%s, node), lease_until = NULL, cancel_requested "
                         "= "
                         "0,"
                         " run_after = UTC_TIMESTAMP(6) WHERE id = %llu AND state IN ('failed','cancelled')"
                         " AND state = '%s' AND attempts = %u%s AND NOT (parent_id <=> id)",
                         here ? "'" : "", here ? s->node : "NULL", here ? "'" : "", id, was, c->attempts,
                         fence);
                r = store_conn_exec(s, sql);
                if (r >= 0 && store_conn_affected_rows(s) == 1)
                        c->outcome = STORE_REMOTE_DONE;
                break;
        case STORE_REMOTE_FORGET:
        case STORE_REMOTE_FORGET_HERE:
                /* Here: the row of a finished record this node holds, as it holds it; another node
                 * may have run it again since, which the record does not know. */
                snprintf(sql, sizeof(sql),
                         "DELETE FROM tasks WHERE id = %llu AND state <> 'running' AND state = '%s'"
                         " AND attempts = %u%s AND (state <> 'queued' OR NOT " STORE_SQL_HELD ")",
                         id, was, c->attempts, fence);
                r = store_conn_exec(s, sql);
                if (r >= 0 && store_conn_affected_rows(s) == 1)
                        c->outcome = STORE_REMOTE_DONE;
                break;
        }
        if (r < 0)
                return r;
        snprintf(sql, sizeof(sql), "SELECT state FROM tasks WHERE id = %llu", id);
        r = store_conn_query_strings(s, sql, &state, &n);
        c->state_now = r >= 0 && n > 0 ? task_state_from_string(state[0]) : -1;
        return r;
}

int store_change_remote(Store *s, StoreRemote *change, StoreReadFn done, void *userdata) {
        return store_call(s, remote_run, NULL, change, done, userdata);
}
