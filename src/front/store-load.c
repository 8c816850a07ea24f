/* SPDX-License-Identifier: MIT */
/*
 * What the MySQL store loads into the ledger at start, before its thread runs (store_open()): the
 * paused task names, the running records, the first window of the queue and the next id. Apart from
 * the thread's reads (store-read.c) because it runs once, blocking, on the loop's thread, and hands
 * the records to the ledger itself rather than to a callback.
 */

#include <errno.h>
#include <stdlib.h>

#include "front/store-mysql-internal.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/util.h"

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

        r = store_db_exec(s, query);
        if (r < 0)
                return r;
        res = store_mariadb->mysql_use_result(s->db);
        if (!res)
                return -EIO;
        while ((row = store_mariadb->mysql_fetch_row(res))) {
                TaskRecord *t;
                bool bad_args;

                r = store_sql_record_from_row(row, store_mariadb->mysql_fetch_lengths(res), &t, &bad_args);
                if (r < 0)
                        break;
                rows++;
                r = adopt_loaded(l, t, bad_args);
                if (r < 0)
                        break;
                r = 0;
        }
        if (r == 0 && store_mariadb->mysql_errno(s->db) != 0)
                r = store_db_is_connection_error(store_mariadb->mysql_errno(s->db)) ? -ENOTCONN : -EIO;
        store_mariadb->mysql_free_result(res);
        if (r < 0)
                return r;
        *ret_rows = rows;
        return 0;
}

/* The per-submitter totals of unfinished rows (the quotas count rows, not what memory holds). */
static int load_unfinished(Store *s, Ledger *l) {
        MYSQL_RES *res;
        MYSQL_ROW row;
        int r = 0;

        res = store_db_result(s, store_sql_unfinished_query, &r);
        if (!res)
                return r;
        while ((row = store_mariadb->mysql_fetch_row(res))) {
                if (!row[0] || !row[1])
                        continue;
                r = ledger_add_unfinished(l, row[0], strtoull(row[1], NULL, 10),
                                          row[2] ? strtoull(row[2], NULL, 10) : 0);
                if (r < 0)
                        break;
                r = 0;
        }
        store_mariadb->mysql_free_result(res);
        return r;
}

/* What the front needs to start: the running records (their runs are the launcher's to report), the
 * first window of the queue (without their stdin), the next id, and each submitter's unfinished rows
 * for the quotas. Finished records stay in the database and are read
 * when asked for: the start does not grow with history. The paused names are loaded first: their rows
 * stay out of the window until a resume. */
int store_load_records(Store *s, Ledger *l, unsigned window) {
        _cleanup_free_ char *running_query = store_sql_running_query(s->node);
        StoreRead claimed = {};
        uint64_t running = 0, start = 0, end = 0;
        int r;

        if (!running_query)
                return -ENOMEM;
        ledger_count_rows(l);
        r = load_unfinished(s, l);
        if (r >= 0)
                r = load_query(s, l, running_query, &running);
        if (r >= 0)
                r = store_cluster_reserve_ids(s, &start, &end);
        if (r >= 0)
                r = store_cluster_claim_now(s, window, ledger_paused(l), &claimed);
        for (size_t i = 0; r >= 0 && i < claimed.n_records; i++) {
                r = adopt_loaded(l, claimed.records[i], false);
                claimed.records[i] = NULL;
        }
        for (size_t i = 0; i < claimed.n_records; i++)
                task_record_free(claimed.records[i]);
        free(claimed.records);
        if (r < 0)
                return r;
        ledger_add_id_block(l, start, end);
        log_info("mysql: node %s loaded %llu running and claimed %zu queued task record(s)%s; its ids start "
                 "at %llu",
                 s->node, (unsigned long long) running, claimed.n_records,
                 claimed.n_records >= window ? " (the first of the queue)" : "", (unsigned long long) start);
        return 0;
}

/* The paused task names, into the ledger. A name the config no longer has stays paused: resume takes
 * it out. */
int store_load_paused(Store *s, Ledger *l) {
        MYSQL_RES *res;
        MYSQL_ROW row;
        int r = 0;

        res = store_db_result(s, store_sql_paused_load_query, &r);
        if (!res)
                return r;
        while ((row = store_mariadb->mysql_fetch_row(res))) {
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
        store_mariadb->mysql_free_result(res);
        return r == -E2BIG ? 0 : r;
}
