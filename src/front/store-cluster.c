/* SPDX-License-Identifier: MIT */
/*
 * The MySQL store's work for several hosts on one database (docs/cluster.md), run on the store's
 * thread: the node's registration, blocks of ids, claims of queued rows.
 *
 * A claim is one short transaction: SELECT the ids of the first queued rows no live node holds, in
 * dispatch order, FOR UPDATE SKIP LOCKED (rows another node is claiming at that moment are passed
 * over, not waited for), mark them this node's, read their records, COMMIT. A queued row is held by its
 * node while that node lives (STORE_SQL_HELD), a running one by a lease its heartbeat renews. Node names
 * are checked by the config (A-Z a-z 0-9 _ . -) and quoted as they are; task names go as hex.
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

/* --- statements on the thread's connection --- */

int store_conn_exec(Store *s, const char *sql) {
        return s->db ? store_db_exec(s, sql) : -ENOTCONN;
}

static int db_query_u64(Store *s, const char *sql, uint64_t *ret) {
        return s->db ? store_db_query_u64(s, sql, ret) : -ENOTCONN;
}

/* Rows the last statement matched (the connection counts found rows, not changed ones). */
uint64_t store_conn_affected_rows(Store *s) {
        return s->db ? (uint64_t) store_mariadb->mysql_affected_rows(s->db) : 0;
}

void store_conn_rollback(Store *s) {
        if (s->db)
                (void) store_db_exec(s, "ROLLBACK");
}

/* The first column of every row, as a NULL-terminated list (strv_free()). */
int store_conn_query_strings(Store *s, const char *sql, char ***ret, size_t *ret_n) {
        MYSQL_RES *res;
        MYSQL_ROW row;
        char **v = NULL;
        size_t n = 0;
        int r = 0;

        if (!s->db)
                return -ENOTCONN;
        res = store_db_result(s, sql, &r);
        if (!res)
                return r;
        while ((row = store_mariadb->mysql_fetch_row(res))) {
                char **p = realloc(v, (n + 2) * sizeof(*v));

                if (!p || !(p[n] = strdup(row[0] ? row[0] : ""))) {
                        if (p)
                                v = p;
                        strv_free(v);
                        store_mariadb->mysql_free_result(res);
                        return -ENOMEM;
                }
                v = p;
                v[++n] = NULL;
        }
        store_mariadb->mysql_free_result(res);
        *ret = v;
        *ret_n = n;
        return 0;
}

unsigned store_cluster_shared_window(unsigned max_running) {
        unsigned n = 2 * max_running + 16;
        return n < STORE_QUEUE_WINDOW ? n : STORE_QUEUE_WINDOW;
}

/* "10.11.6-MariaDB-0+deb12u1", "8.0.36", "5.5.5-10.3.39-MariaDB" (an old server's prefix). */
static bool server_has_skip_locked(const char *version) {
        unsigned major = 0, minor = 0;

        if (strncmp(version, "5.5.5-", 6) == 0)
                version += 6;
        if (sscanf(version, "%u.%u", &major, &minor) != 2)
                return false;
        if (strstr(version, "MariaDB"))
                return major > 10 || (major == 10 && minor >= 6);
        return major >= 8;
}

int store_cluster_register(Store *s, char *errbuf, size_t errlen) {
        _cleanup_(strv_freep) char **version = NULL;
        uint64_t alive = 0;
        char sql[512];
        size_t n = 0;
        int r;

        r = store_conn_query_strings(s, "SELECT VERSION()", &version, &n);
        if (r < 0) {
                snprintf(errbuf, errlen, "cannot read the server's version");
                return r;
        }
        if (n < 1 || !server_has_skip_locked(version[0])) {
                snprintf(
                        errbuf, errlen,
                        "the server (%s) cannot skip locked rows (SELECT ... FOR UPDATE SKIP LOCKED), which "
                        "claims need: MariaDB 10.6 or MySQL 8.0 at least",
                        n >= 1 ? version[0] : "unknown version");
                return -EPROTONOSUPPORT;
        }
        /* Two fronts with one node name would take each other's claims for their own: say so when the
         * name's heartbeat is recent (or this node was restarted at once after a kill). */
        snprintf(sql, sizeof(sql),
                 "SELECT COUNT(*) FROM nodes WHERE name = '%s'"
                 " AND heartbeat_at >= DATE_SUB(UTC_TIMESTAMP(6), INTERVAL %u SECOND)",
                 s->node, s->lease_sec);
        if (db_query_u64(s, sql, &alive) >= 0 && alive > 0)
                log_warning("mysql: node %s has a recent heartbeat in the database: unless this front "
                            "restarted just now, another front uses the same node name, and each would take "
                            "the other's tasks for its own. Give each host its own \"node\".",
                            s->node);
        snprintf(sql, sizeof(sql),
                 "INSERT INTO nodes (name, started_at, heartbeat_at, pid, version)"
                 " VALUES ('%s', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), %ld, '%s')"
                 " ON DUPLICATE KEY UPDATE started_at = VALUES(started_at), heartbeat_at = "
                 "VALUES(heartbeat_at),"
                 " pid = VALUES(pid), version = VALUES(version)",
                 s->node, (long) getpid(), ASYNCTASK_VERSION);
        r = store_conn_exec(s, sql);
        if (r < 0)
                snprintf(errbuf, errlen, "cannot register node %s in the nodes table", s->node);
        return r;
}

unsigned store_cluster_start_window(Store *s) {
        char sql[256];
        uint64_t others = 0;

        snprintf(sql, sizeof(sql),
                 "SELECT COUNT(*) FROM nodes WHERE name <> '%s'"
                 " AND heartbeat_at >= DATE_SUB(UTC_TIMESTAMP(6), INTERVAL %u SECOND)",
                 s->node, s->lease_sec);
        if (db_query_u64(s, sql, &others) < 0 || others == 0)
                return STORE_QUEUE_WINDOW;
        return s->shared_window;
}

/* Reserves n ids from the shared counter: [*ret_start, *ret_end). */
int store_cluster_reserve_n_ids(Store *s, uint64_t n, uint64_t *ret_start, uint64_t *ret_end) {
        char sql[256];
        uint64_t end = 0;
        int r;

        /* One statement, no transaction: the row lock orders the nodes' reservations, and
         * LAST_INSERT_ID(expr) hands this connection the value it set. Rows written without the
         * counter (an older asynctask, by hand) are stepped over by the MAX(id). */
        snprintf(sql, sizeof(sql),
                 "UPDATE task_ids SET next = LAST_INSERT_ID(GREATEST(next, (SELECT COALESCE(MAX(id), 0) + 1 "
                 "FROM tasks)) + %llu) WHERE id = 1",
                 (unsigned long long) n);
        r = store_conn_exec(s, sql);
        if (r >= 0 && store_conn_affected_rows(s) != 1)
                r = -ENOENT;
        if (r >= 0)
                r = db_query_u64(s, "SELECT LAST_INSERT_ID()", &end);
        if (r < 0)
                return r;
        *ret_start = end - n;
        *ret_end = end;
        return 0;
}

int store_cluster_reserve_ids(Store *s, uint64_t *ret_start, uint64_t *ret_end) {
        return store_cluster_reserve_n_ids(s, LEDGER_ID_BLOCK, ret_start, ret_end);
}

/* " AND (task IS NULL OR task NOT IN (...))", or "". NULL when out of memory. */
static char *skip_sql(const PausedTasks *skip) {
        char *text = strdup("");

        for (size_t i = 0; text && skip && i < skip->n; i++) {
                _cleanup_free_ char *name = store_sql_task_name(skip->items[i].task);
                char *more = NULL;

                if (!name || asprintf(&more, "%s%s%s", text,
                                      i == 0 ? " AND (task IS NULL OR task NOT IN (" : ", ", name) < 0)
                        more = NULL;
                free(text);
                text = more;
        }
        if (text && skip && skip->n > 0) {
                char *more = NULL;

                if (asprintf(&more, "%s))", text) < 0)
                        more = NULL;
                free(text);
                text = more;
        }
        return text;
}

/* "1,2,3" of ids[0..n). NULL when out of memory. */
char *store_conn_id_list(char *const *ids, size_t n) {
        size_t len = 1;
        char *text, *p;

        for (size_t i = 0; i < n; i++)
                len += strlen(ids[i]) + 1;
        text = p = malloc(len);
        if (!text)
                return NULL;
        *p = 0;
        for (size_t i = 0; i < n; i++)
                p += sprintf(p, "%s%s", i > 0 ? "," : "", ids[i]);
        return text;
}

/* Takes the rows of both queries (due, then due soonest) and marks them this node's. */
static int claim_once(Store *s, const char *due_query, const char *later_query, StoreRead *result) {
        _cleanup_(strv_freep) char **due = NULL;
        _cleanup_(strv_freep) char **later = NULL;
        _cleanup_free_ char *ids = NULL, *both = NULL, *sql = NULL;
        size_t n_due = 0, n_later = 0;
        int r;

        r = store_conn_exec(s, "START TRANSACTION");
        if (r >= 0)
                r = store_conn_query_strings(s, due_query, &due, &n_due);
        if (r >= 0)
                r = store_conn_query_strings(s, later_query, &later, &n_later);
        if (r < 0)
                goto fail;
        if (n_due + n_later > 0) {
                _cleanup_free_ char *a = store_conn_id_list(due, n_due),
                                    *b = store_conn_id_list(later, n_later);

                if (!a || !b || asprintf(&ids, "%s%s%s", a, n_due && n_later ? "," : "", b) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
                if (asprintf(&sql, "UPDATE tasks SET node = '%s', lease_until = NULL WHERE id IN (%s)",
                             s->node, ids) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = store_conn_exec(s, sql);
                if (r >= 0 && asprintf(&both, "%s WHERE id IN (%s)", store_sql_select_columns, ids) < 0)
                        r = -ENOMEM;
                if (r >= 0)
                        r = store_read_records_now(s, both, result);
                if (r < 0)
                        goto fail;
        }
        r = store_conn_exec(s, "COMMIT");
        if (r < 0)
                goto fail;
        return 0;
fail:
        store_conn_rollback(s);
        for (size_t i = 0; i < result->n_records; i++)
                task_record_free(result->records[i]);
        result->n_records = 0;
        return r;
}

typedef struct ClaimQueries {
        char *due, *later;
} ClaimQueries;

static int claim_run(Store *s, const char *query, void *data, StoreRead *result) {
        ClaimQueries *q = data;
        int r = -EAGAIN;

        for (unsigned i = 0; i < CLAIM_TRIES && r == -EAGAIN; i++)
                r = claim_once(s, q->due, q->later, result);
        return r;
}

/* The rows a node may claim: queued, not held by another node that is alive (its heartbeat younger
 * than node_timeout_sec: the claim need not wait for the leader to bury a dead one), not a run of
 * every host meant for another node, not of a name in skip;
 * the due ones in dispatch order (tasks_queue), then the ones due soonest (tasks_due). */
static int claim_queries(Store *s, unsigned limit, const PausedTasks *skip, ClaimQueries *ret) {
        static const char claimable[] =
                "SELECT id FROM tasks WHERE state = 'queued' AND run_after %s UTC_TIMESTAMP(6)"
                " AND (node IS NULL OR node = '%s' OR node NOT IN (SELECT name FROM nodes"
                " WHERE heartbeat_at >= DATE_SUB(UTC_TIMESTAMP(6), INTERVAL %u SECOND)))"
                " AND (parent_id IS NULL OR node = '%s')%s"
                " ORDER BY %s LIMIT %u FOR UPDATE SKIP LOCKED";
        _cleanup_free_ char *skip_text = skip_sql(skip);
        const char *node = s->node;

        if (!skip_text)
                return -ENOMEM;
        if (asprintf(&ret->due, claimable, "<=", node, s->lease_sec, node, skip_text,
                     "priority DESC, run_after, id", limit) < 0)
                ret->due = NULL;
        if (asprintf(&ret->later, claimable, ">", node, s->lease_sec, node, skip_text, "run_after, id",
                     limit) < 0)
                ret->later = NULL;
        return ret->due && ret->later ? 0 : -ENOMEM;
}

static void claim_queries_done(ClaimQueries *q) {
        free(q->due);
        free(q->later);
}

int store_cluster_claim_now(Store *s, unsigned limit, const PausedTasks *skip, StoreRead *result) {
        ClaimQueries q = {};
        int r = claim_queries(s, limit, skip, &q);

        if (r >= 0)
                r = claim_run(s, NULL, &q, result);
        claim_queries_done(&q);
        return r;
}

/* The claim queued on the thread; its queries go back with it. */
typedef struct ClaimCall {
        ClaimQueries queries;
        StoreReadFn done;
        void *userdata;
} ClaimCall;

static void claim_call_done(StoreRead *result, void *userdata) {
        ClaimCall *c = userdata;

        c->done(result, c->userdata);
        claim_queries_done(&c->queries);
        free(c);
}

int store_claim_queue(Store *s, unsigned limit, const PausedTasks *skip, StoreReadFn done, void *userdata) {
        ClaimCall *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;
        c->done = done;
        c->userdata = userdata;
        r = claim_queries(s, limit, skip, &c->queries);
        if (r >= 0)
                r = store_call(s, claim_run, NULL, &c->queries, claim_call_done, c);
        if (r < 0) {
                claim_queries_done(&c->queries);
                free(c);
        }
        return r;
}

/* --- heartbeat --- */

typedef struct BeatCall {
        StoreBeat beat;
        char *fail_sql; /* " AND (task IS NULL OR task NOT IN (...))": leaves out the names whose lost
                         * runs fail */
        bool may_bury;
        char **limited; /* hex literals of the limited names */
        size_t n_limited;
        StoreBeatFn done;
        void *userdata;
} BeatCall;

/* Moves the running rows of a dead node to lost, in one transaction with the removal of its row:
 * queued again while attempts remain (on_lost "retry"), else failed; its runs of every_host
 * submissions, queued or running, fail as lost (no other node may run them); and its other queued
 * rows are let go (claims took them already once its heartbeat was old; this tells the readers). */
static int bury_node(Store *s, const char *node, const char *fail_sql, StoreBeat *beat) {
        static const char lost[] =
                "result = 'lost', error = 'its node %s stopped answering', exit_status = NULL,"
                " exit_signal = NULL, lease_until = NULL";
        _cleanup_free_ char *requeue = NULL, *fail = NULL, *forget = NULL, *why = NULL, *let_go = NULL;
        unsigned t = s->lease_sec;
        int r;

        if (asprintf(&why, lost, node) < 0 ||
            asprintf(&requeue,
                     "UPDATE tasks SET state = 'queued', node = NULL, unit = NULL, run_after = "
                     "UTC_TIMESTAMP(6), %s"
                     " WHERE node = '%s' AND state = 'running' AND attempts < max_attempts"
                     " AND parent_id IS NULL%s",
                     why, node, fail_sql) < 0 ||
            asprintf(&fail,
                     "UPDATE tasks SET state = 'failed', finished_at = UTC_TIMESTAMP(6),"
                     " cancel_requested = 0, %s"
                     " WHERE node = '%s' AND (state = 'running' OR (state = 'queued' AND parent_id IS NOT "
                     "NULL))",
                     why, node) < 0 ||
            asprintf(&let_go, "UPDATE tasks SET node = NULL WHERE node = '%s' AND state = 'queued'", node) <
                    0 ||
            asprintf(&forget,
                     "DELETE FROM nodes WHERE name = '%s' AND heartbeat_at < DATE_SUB(UTC_TIMESTAMP(6), "
                     "INTERVAL %u "
                     "SECOND)",
                     node, t) < 0)
                return -ENOMEM;
        r = store_conn_exec(s, "START TRANSACTION");
        if (r >= 0)
                r = store_conn_exec(s, forget);
        /* A node that came back between the SELECT and here keeps its row and its runs. */
        if (r >= 0 && store_conn_affected_rows(s) == 0) {
                store_conn_rollback(s);
                return 0;
        }
        if (r >= 0)
                r = store_conn_exec(s, requeue);
        if (r >= 0) {
                beat->requeued[beat->n_dead_nodes] = store_conn_affected_rows(s);
                r = store_conn_exec(s, fail);
        }
        if (r >= 0) {
                beat->failed[beat->n_dead_nodes] = store_conn_affected_rows(s);
                r = store_conn_exec(s, let_go);
        }
        if (r >= 0) {
                r = store_conn_exec(s, "COMMIT");
        }
        if (r < 0) {
                store_conn_rollback(s);
                return r;
        }
        beat->dead_nodes[beat->n_dead_nodes] = strdup(node);
        if (beat->dead_nodes[beat->n_dead_nodes])
                beat->n_dead_nodes++;
        return 0;
}

/* Takes or keeps each limited name whose owner is this node or whose owner's lease ran out (the
 * assignments of ON DUPLICATE KEY UPDATE are made left to right: lease_until sees the new node), and
 * reads which this node owns. */
static int own_limited(Store *s, BeatCall *c) {
        _cleanup_free_ char *sql = NULL, *rows = strdup(""), *owned_sql = NULL;
        _cleanup_(strv_freep) char **owned = NULL;
        size_t n_owned = 0;
        int r;

        if (c->n_limited == 0)
                return 0;
        for (size_t i = 0; rows && i < c->n_limited; i++) {
                char *more = NULL;

                if (asprintf(&more, "%s%s(%s, '%s', DATE_ADD(UTC_TIMESTAMP(6), INTERVAL %u SECOND))", rows,
                             i ? ", " : "", c->limited[i], s->node, s->lease_sec) < 0)
                        more = NULL;
                free(rows);
                rows = more;
        }
        if (!rows ||
            asprintf(&sql,
                     "INSERT INTO task_owners (task, node, lease_until) VALUES %s ON DUPLICATE KEY UPDATE"
                     " node = IF(node = VALUES(node) OR lease_until < UTC_TIMESTAMP(6), VALUES(node), node),"
                     " lease_until = IF(node = VALUES(node), VALUES(lease_until), lease_until)",
                     rows) < 0 ||
            asprintf(&owned_sql, "SELECT task FROM task_owners WHERE node = '%s'", s->node) < 0)
                return -ENOMEM;
        r = store_conn_exec(s, sql);
        if (r >= 0)
                r = store_conn_query_strings(s, owned_sql, &owned, &n_owned);
        if (r < 0)
                return r;
        c->beat.owned = TAKE_PTR(owned);
        c->beat.n_owned = n_owned;
        return 0;
}

/* The leases of this node's running rows last another timeout (its queued rows need none:
 * STORE_SQL_HELD); its queued rows of limited names another node owns are let go, for the owner to
 * claim. */
static int renew_leases(Store *s, BeatCall *c) {
        _cleanup_free_ char *sql = NULL, *others = strdup("");
        size_t n_others = 0;
        int r;

        for (size_t i = 0; others && i < c->n_limited; i++) {
                _cleanup_free_ char *name = NULL;
                bool mine = false;
                char *more = NULL;

                /* c->limited holds hex literals, beat.owned the names: compare as hex. */
                for (size_t j = 0; j < c->beat.n_owned && !mine; j++) {
                        name = store_sql_task_name(c->beat.owned[j]);
                        mine = name && streq(name, c->limited[i]);
                        free(name);
                        name = NULL;
                }
                if (mine)
                        continue;
                if (asprintf(&more, "%s%s%s", others, n_others++ ? ", " : "", c->limited[i]) < 0)
                        more = NULL;
                free(others);
                others = more;
        }
        if (!others ||
            asprintf(&sql,
                     "UPDATE tasks SET lease_until = DATE_ADD(UTC_TIMESTAMP(6), INTERVAL %u SECOND)"
                     " WHERE node = '%s' AND state = 'running'",
                     s->lease_sec, s->node) < 0)
                return -ENOMEM;
        r = store_conn_exec(s, sql);
        if (r < 0 || n_others == 0)
                return r;
        free(sql);
        if (asprintf(&sql,
                     "UPDATE tasks SET node = NULL WHERE node = '%s' AND state = 'queued' AND task IN (%s)",
                     s->node, others) < 0) {
                sql = NULL;
                return -ENOMEM;
        }
        return store_conn_exec(s, sql);
}

/* The ids of this node's rows that another node asked to cancel; the requests are taken (cleared) as
 * they are read, and the loop carries them out. */
static int take_cancel_requests(Store *s, BeatCall *c) {
        _cleanup_(strv_freep) char **ids = NULL;
        _cleanup_free_ char *list = NULL, *sql = NULL;
        size_t n = 0;
        int r;

        if (asprintf(&sql,
                     "SELECT id FROM tasks WHERE node = '%s' AND cancel_requested = 1"
                     " AND state IN ('queued','running') LIMIT %d",
                     s->node, STORE_BEAT_CANCELS_MAX) < 0)
                return -ENOMEM;
        r = store_conn_query_strings(s, sql, &ids, &n);
        if (r < 0 || n == 0)
                return r;
        list = store_conn_id_list(ids, n);
        free(sql);
        sql = NULL;
        if (!list || asprintf(&sql, "UPDATE tasks SET cancel_requested = 0 WHERE id IN (%s)", list) < 0)
                return -ENOMEM;
        r = store_conn_exec(s, sql);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                c->beat.cancels[c->beat.n_cancels++] = strtoull(ids[i], NULL, 10);
        return 0;
}

/* Finishes the every_host parents whose runs are all over. The host that writes a parent's last
 * result does so in the same transaction; this catches the parents whose last runs were failed as
 * lost above, or ended on two hosts at once (each transaction seeing the other's run still open). */
static int settle_parents(Store *s) {
        _cleanup_free_ char *sql = store_sql_settle_parents(0);

        return sql ? store_conn_exec(s, sql) : -ENOMEM;
}

static int beat_run(Store *s, const char *query, void *data, StoreRead *result) {
        BeatCall *c = data;
        const char *node = s->node;
        unsigned t = s->lease_sec;
        _cleanup_(strv_freep) char **dead = NULL;
        char sql[1024];
        size_t n_dead = 0;
        int r;

        snprintf(sql, sizeof(sql),
                 "INSERT INTO nodes (name, started_at, heartbeat_at, pid, version)"
                 " VALUES ('%s', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), %ld, '%s')"
                 " ON DUPLICATE KEY UPDATE heartbeat_at = VALUES(heartbeat_at), pid = VALUES(pid)",
                 node, (long) getpid(), ASYNCTASK_VERSION);
        r = store_conn_exec(s, sql);
        if (r < 0)
                return r;
        r = own_limited(s, c);
        if (r < 0)
                return r;
        r = renew_leases(s, c);
        if (r < 0)
                return r;
        r = take_cancel_requests(s, c);
        if (r < 0)
                return r;
        snprintf(sql, sizeof(sql),
                 "UPDATE cluster_leader SET holder = '%s', lease_until = DATE_ADD(UTC_TIMESTAMP(6), "
                 "INTERVAL %u SECOND)"
                 " WHERE id = 1 AND (holder = '%s' OR lease_until < UTC_TIMESTAMP(6))",
                 node, t, node);
        r = store_conn_exec(s, sql);
        if (r < 0)
                return r;
        c->beat.leader = store_conn_affected_rows(s) == 1;
        snprintf(sql, sizeof(sql),
                 "SELECT COUNT(*) FROM nodes WHERE heartbeat_at >= DATE_SUB(UTC_TIMESTAMP(6), INTERVAL %u "
                 "SECOND)",
                 t);
        r = db_query_u64(s, sql, &c->beat.live_nodes);
        if (r < 0 || !c->beat.leader)
                return r;
        if (!c->may_bury)
                return settle_parents(s);
        snprintf(sql, sizeof(sql),
                 "SELECT name FROM nodes WHERE heartbeat_at < DATE_SUB(UTC_TIMESTAMP(6), INTERVAL %u SECOND)"
                 " LIMIT %d",
                 t, STORE_BEAT_DEAD_MAX);
        r = store_conn_query_strings(s, sql, &dead, &n_dead);
        for (size_t i = 0; r >= 0 && i < n_dead; i++) {
                /* Names go into bury_node()'s SQL as they are: only one a front could have written. */
                if (!config_node_name_valid(dead[i])) {
                        log_warning("mysql: the nodes table holds a name no node may have; left alone.");
                        continue;
                }
                r = bury_node(s, dead[i], c->fail_sql, &c->beat);
        }
        if (r >= 0)
                r = settle_parents(s);
        return r;
}

static void beat_call_done(StoreRead *result, void *userdata) {
        BeatCall *c = userdata;

        c->done(result->error, &c->beat, c->userdata);
        for (size_t i = 0; i < c->beat.n_dead_nodes; i++)
                free(c->beat.dead_nodes[i]);
        strv_free(c->beat.owned);
        strv_free(c->limited);
        free(c->fail_sql);
        free(c);
}

int store_heartbeat(Store *s, char *const *fail_names, size_t n_fail_names, char *const *limited_names,
                    size_t n_limited_names, bool may_bury, StoreBeatFn done, void *userdata) {
        BeatCall *c = calloc(1, sizeof(*c));
        char *text;
        int r;

        if (!c)
                return -ENOMEM;
        c->may_bury = may_bury;
        c->limited = calloc(n_limited_names + 1, sizeof(char *));
        for (size_t i = 0; c->limited && i < n_limited_names; i++) {
                c->limited[i] = store_sql_task_name(limited_names[i]);
                if (!c->limited[i]) {
                        strv_free(c->limited);
                        c->limited = NULL;
                }
        }
        if (!c->limited) {
                free(c);
                return -ENOMEM;
        }
        c->n_limited = n_limited_names;
        c->done = done;
        c->userdata = userdata;
        text = strdup("");
        for (size_t i = 0; text && i < n_fail_names; i++) {
                _cleanup_free_ char *name = store_sql_task_name(fail_names[i]);
                char *more = NULL;

                if (!name ||
                    asprintf(&more, "%s%s%s%s", text, i == 0 ? " AND (task IS NULL OR task NOT IN (" : ", ",
                             name, i + 1 == n_fail_names ? "))" : "") < 0)
                        more = NULL;
                free(text);
                text = more;
        }
        c->fail_sql = text;
        r = text ? store_call(s, beat_run, NULL, c, beat_call_done, c) : -ENOMEM;
        if (r < 0) {
                strv_free(c->limited);
                free(c->fail_sql);
                free(c);
        }
        return r;
}

/* --- ids --- */

typedef struct IdsCall {
        uint64_t start, end;
        StoreIdsFn done;
        void *userdata;
} IdsCall;

static int ids_run(Store *s, const char *query, void *data, StoreRead *result) {
        IdsCall *c = data;

        return store_cluster_reserve_ids(s, &c->start, &c->end);
}

static void ids_call_done(StoreRead *result, void *userdata) {
        IdsCall *c = userdata;

        c->done(result->error, c->start, c->end, c->userdata);
        free(c);
}

int store_reserve_ids(Store *s, StoreIdsFn done, void *userdata) {
        IdsCall *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;
        c->done = done;
        c->userdata = userdata;
        r = store_call(s, ids_run, NULL, c, ids_call_done, c);
        if (r < 0)
                free(c);
        return r;
}
