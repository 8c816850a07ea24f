/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "front/store-sql.h"
#include "shared/json-util.h"
#include "shared/util.h"

#define BUF_CAP_MIN 256
/* The error column holds this many bytes at most (VARCHAR(1024)), NUL not included. */
#define ERROR_COLUMN_BYTES 1023

const char store_sql_row_columns[] =
        "id, task, cmd, args, stdin, idem_key, submitter, priority, state, attempts, max_attempts, unit, "
        "created_at, started_at, finished_at, run_after, result, exit_status, exit_signal, cpu_usec, "
        "memory_peak, error, node, lease_until";

/* Columns a write after the insert may change. A finished row keeps no cancel request (one asked of
 * another node is carried out while the row is queued or running): a retry must not find it. */
#define UPDATE_CLAUSE                                                                                       \
        " ON DUPLICATE KEY UPDATE cancel_requested=IF(VALUES(state) IN ('queued','running'),"               \
        " cancel_requested, 0), state=VALUES(state), attempts=VALUES(attempts),"                            \
        " max_attempts=VALUES(max_attempts), unit=VALUES(unit), started_at=VALUES(started_at),"             \
        " finished_at=VALUES(finished_at), run_after=VALUES(run_after), result=VALUES(result),"             \
        " exit_status=VALUES(exit_status), exit_signal=VALUES(exit_signal), cpu_usec=VALUES(cpu_usec),"     \
        " memory_peak=VALUES(memory_peak), error=VALUES(error), node=VALUES(node),"                         \
        " lease_until=VALUES(lease_until)"

/* --- text buffer --- */

static void buf_reserve(StoreSqlBuf *b, size_t extra) {
        size_t cap;
        char *p;

        if (b->oom || b->len + extra + 1 <= b->cap)
                return;
        cap = b->cap ? b->cap : BUF_CAP_MIN;
        while (cap < b->len + extra + 1)
                cap *= 2;
        p = realloc(b->data, cap);
        if (!p) {
                b->oom = true;
                return;
        }
        b->data = p;
        b->cap = cap;
}

static void buf_add(StoreSqlBuf *b, const char *s, size_t n) {
        buf_reserve(b, n);
        if (b->oom)
                return;
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = 0;
}

static void buf_adds(StoreSqlBuf *b, const char *s) {
        buf_add(b, s, strlen(s));
}

_printf_(2, 3) static void buf_printf(StoreSqlBuf *b, const char *fmt, ...) {
        va_list ap;
        char tmp[128];
        int n;

        va_start(ap, fmt);
        n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        if (n > 0)
                buf_add(b, tmp, (size_t) n < sizeof(tmp) ? (size_t) n : sizeof(tmp) - 1);
}

/* The buffer's text, handed over; NULL (and the buffer freed) when an append failed. */
static char *buf_steal(StoreSqlBuf *b) {
        if (b->oom) {
                free(b->data);
                *b = (StoreSqlBuf){};
                return NULL;
        }
        return TAKE_PTR(b->data);
}

/* --- values --- */

static void buf_hex(StoreSqlBuf *b, const void *data, size_t n) {
        static const char digits[] = "0123456789ABCDEF";
        const unsigned char *p = data;

        if (n == 0) {
                buf_adds(b, "''");
                return;
        }
        buf_reserve(b, 2 * n + 3);
        if (b->oom)
                return;
        b->data[b->len++] = 'X';
        b->data[b->len++] = '\'';
        for (size_t i = 0; i < n; i++) {
                b->data[b->len++] = digits[p[i] >> 4];
                b->data[b->len++] = digits[p[i] & 15];
        }
        b->data[b->len++] = '\'';
        b->data[b->len] = 0;
}

static void buf_str_or_null(StoreSqlBuf *b, const char *s) {
        if (s)
                buf_hex(b, s, strlen(s));
        else
                buf_adds(b, "NULL");
}

/* Error texts come from the launcher and may quote client bytes; the column is utf8mb4, so keep it
 * printable ASCII. */
static void buf_error_text(StoreSqlBuf *b, const char *s) {
        char clean[ERROR_COLUMN_BYTES + 1];
        size_t n = 0;

        if (!s || !*s) {
                buf_adds(b, "NULL");
                return;
        }
        for (; *s && n < sizeof(clean) - 1; s++)
                clean[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
        buf_hex(b, clean, n);
}

static void buf_datetime(StoreSqlBuf *b, uint64_t usec) {
        struct tm tm;
        time_t sec;

        if (usec == 0) {
                buf_adds(b, "NULL");
                return;
        }
        sec = (time_t) (usec / USEC_PER_SEC);
        gmtime_r(&sec, &tm);
        buf_printf(b, "'%04d-%02d-%02d %02d:%02d:%02d.%06llu'", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                   tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned long long) (usec % USEC_PER_SEC));
}

static char *render_args(const TaskRecord *t) {
        _cleanup_(cjson_deletep) cJSON *a = cJSON_CreateArray();

        if (!a)
                return NULL;
        for (size_t i = 0; i < t->n_args; i++) {
                cJSON *s = cJSON_CreateString(t->args[i]);
                if (!s || !cJSON_AddItemToArray(a, s)) {
                        cJSON_Delete(s);
                        return NULL;
                }
        }
        return cJSON_PrintUnformatted(a);
}

/* The columns from result on: what the last run left. */
static void buf_last_run(StoreSqlBuf *b, const TaskResult *r) {
        buf_str_or_null(b, r->result[0] ? r->result : NULL);
        if (r->has_exit_status)
                buf_printf(b, ",%d", r->exit_status);
        else
                buf_adds(b, ",NULL");
        if (r->signal)
                buf_printf(b, ",%d", r->signal);
        else
                buf_adds(b, ",NULL");
        if (r->result[0])
                buf_printf(b, ",%llu,%llu,", r->cpu_usec, r->memory_peak);
        else
                buf_adds(b, ",NULL,NULL,");
        buf_error_text(b, r->error);
}

/* node and lease_until of t's row: a queued or running record this front holds is claimed by it
 * (lease_sec 0: not claimed, as a submission routed to other hosts), a running one with a lease of
 * lease_sec (STORE_SQL_HELD); a record that ran names the node of its last run. */
static void buf_claim(StoreSqlBuf *b, const TaskRecord *t, const char *node, unsigned lease_sec) {
        bool held = lease_sec > 0 && (t->state == TASK_QUEUED || t->state == TASK_RUNNING);

        buf_str_or_null(b, held || t->state == TASK_RUNNING || t->started_at ? node : NULL);
        if (held && t->state == TASK_RUNNING)
                buf_printf(b, ",DATE_ADD(UTC_TIMESTAMP(6), INTERVAL %u SECOND)", lease_sec);
        else
                buf_adds(b, ",NULL");
}

char *store_sql_row(const TaskRecord *t, const char *node, unsigned lease_sec) {
        _cleanup_free_ char *args = render_args(t);
        StoreSqlBuf b = {};

        if (!args)
                return NULL;
        buf_printf(&b, "(%llu,", (unsigned long long) t->id);
        buf_str_or_null(&b, t->task);
        buf_adds(&b, ",");
        buf_str_or_null(&b, t->cmd);
        buf_adds(&b, ",");
        buf_hex(&b, args, strlen(args));
        buf_adds(&b, ",");
        if (t->stdin_data)
                buf_hex(&b, t->stdin_data, t->stdin_len);
        else
                buf_adds(&b, "NULL");
        buf_adds(&b, ",");
        buf_str_or_null(&b, t->key);
        buf_adds(&b, ",");
        buf_str_or_null(&b, t->submitter);
        buf_printf(&b, ",%d,'%s',%u,%u,", t->priority, task_state_to_string(t->state), t->attempts,
                   t->max_attempts);
        buf_str_or_null(&b, t->unit);
        buf_adds(&b, ",");
        buf_datetime(&b, t->created_at);
        buf_adds(&b, ",");
        buf_datetime(&b, t->started_at);
        buf_adds(&b, ",");
        buf_datetime(&b, t->finished_at);
        buf_adds(&b, ",");
        buf_datetime(&b, t->run_after ? t->run_after : t->created_at);
        buf_adds(&b, ",");
        buf_last_run(&b, &t->last);
        buf_adds(&b, ",");
        buf_claim(&b, t, node, lease_sec);
        buf_adds(&b, ")");
        return buf_steal(&b);
}

char *store_sql_family_row(const TaskRecord *t, const char *node, unsigned lease_sec, uint64_t parent_id) {
        _cleanup_free_ char *row = store_sql_row(t, node, lease_sec);
        StoreSqlBuf b = {};

        if (!row)
                return NULL;
        buf_add(&b, row, strlen(row) - 1); /* without its ")" */
        buf_printf(&b, ",%llu)", (unsigned long long) parent_id);
        return buf_steal(&b);
}

char *store_sql_settle_parents(uint64_t parent_id) {
        StoreSqlBuf b = {};

        /* The runs' totals are a derived table with GROUP BY, which the server materializes before
         * the UPDATE (MySQL refuses a subquery on the table it updates otherwise). A parent is
         * succeeded when every run is, else failed; its finished_at is its last run's. p.node makes
         * the server find p by tasks_node: the UPDATE locks the running parents it reads, not every
         * running row. */
        buf_adds(&b, "UPDATE tasks p JOIN (SELECT c.parent_id, SUM(c.state <> 'succeeded') AS bad,"
                     " MAX(c.finished_at) AS last FROM tasks c JOIN tasks q ON q.id = c.parent_id"
                     " WHERE q.node = '" STORE_SQL_EVERY_HOST_NODE
                     "' AND q.state = 'running' AND c.id <> c.parent_id");
        if (parent_id)
                buf_printf(&b, " AND q.id = %llu", (unsigned long long) parent_id);
        buf_adds(&b, " GROUP BY c.parent_id HAVING SUM(c.state IN ('queued','running')) = 0) d"
                     " ON p.id = d.parent_id SET p.state = IF(d.bad > 0, 'failed', 'succeeded'),"
                     " p.result = IF(d.bad > 0, '" STORE_SQL_PARENT_FAILED "', 'success'),"
                     " p.finished_at = COALESCE(d.last, UTC_TIMESTAMP(6)), p.lease_until = NULL"
                     " WHERE p.node = '" STORE_SQL_EVERY_HOST_NODE "' AND p.state = 'running'");
        return buf_steal(&b);
}

char *store_sql_fenced_update(const TaskRecord *t, const char *node, unsigned lease_sec) {
        const TaskResult *r = &t->last;
        StoreSqlBuf b = {};

        buf_printf(&b, "UPDATE tasks SET state='%s', attempts=%u, max_attempts=%u, unit=",
                   task_state_to_string(t->state), t->attempts, t->max_attempts);
        buf_str_or_null(&b, t->unit);
        buf_adds(&b, ", started_at=");
        buf_datetime(&b, t->started_at);
        buf_adds(&b, ", finished_at=");
        buf_datetime(&b, t->finished_at);
        buf_adds(&b, ", run_after=");
        buf_datetime(&b, t->run_after ? t->run_after : t->created_at);
        buf_adds(&b, ", result=");
        buf_str_or_null(&b, r->result[0] ? r->result : NULL);
        if (r->has_exit_status)
                buf_printf(&b, ", exit_status=%d", r->exit_status);
        else
                buf_adds(&b, ", exit_status=NULL");
        if (r->signal)
                buf_printf(&b, ", exit_signal=%d", r->signal);
        else
                buf_adds(&b, ", exit_signal=NULL");
        if (r->result[0])
                buf_printf(&b, ", cpu_usec=%llu, memory_peak=%llu", r->cpu_usec, r->memory_peak);
        else
                buf_adds(&b, ", cpu_usec=NULL, memory_peak=NULL");
        buf_adds(&b, ", error=");
        buf_error_text(&b, r->error);
        buf_adds(&b, ", node=");
        buf_str_or_null(&b, lease_sec > 0 || t->state == TASK_RUNNING || t->started_at ? node : NULL);
        if (lease_sec > 0 && t->state == TASK_RUNNING)
                buf_printf(&b, ", lease_until=DATE_ADD(UTC_TIMESTAMP(6), INTERVAL %u SECOND)", lease_sec);
        else
                buf_adds(&b, ", lease_until=NULL");
        if (task_state_is_final(t->state))
                buf_adds(&b, ", cancel_requested=0");
        /* The fence: the row is still this node's, at this attempt (or the one before it, for the
         * write that starts it). A write sent again after a lost connection finds its own outcome
         * (the same finished_at) and counts as applied. */
        buf_printf(&b, " WHERE id = %llu AND node = ", (unsigned long long) t->id);
        buf_str_or_null(&b, node);
        buf_printf(&b, " AND attempts IN (%u, %u) AND (state IN ('queued','running') OR finished_at <=> ",
                   t->attempts ? t->attempts - 1 : 0, t->attempts);
        buf_datetime(&b, t->finished_at);
        buf_adds(&b, ")");
        return buf_steal(&b);
}

char *store_sql_paused_row(const char *task, const char *by, uint64_t since) {
        StoreSqlBuf b = {};

        buf_adds(&b, "(");
        buf_str_or_null(&b, task);
        buf_adds(&b, ",");
        buf_hex(&b, by ? by : "", by ? strlen(by) : 0);
        buf_adds(&b, ",");
        buf_datetime(&b, since ? since : 1);
        buf_adds(&b, ")");
        return buf_steal(&b);
}

char *store_sql_task_name(const char *task) {
        StoreSqlBuf b = {};

        buf_str_or_null(&b, task);
        return buf_steal(&b);
}

char *store_sql_id(uint64_t id) {
        StoreSqlBuf b = {};

        buf_printf(&b, "%llu", (unsigned long long) id);
        return buf_steal(&b);
}

char *store_sql_datetime(uint64_t usec) {
        StoreSqlBuf b = {};

        buf_datetime(&b, usec);
        return buf_steal(&b);
}

/* --- statements --- */

bool store_sql_statement_takes(const StoreSqlStatement *st, StoreSqlKind kind) {
        if (st->text.len == 0)
                return true;
        return kind == st->kind && kind != STORE_SQL_PURGE && kind != STORE_SQL_FENCED_UPDATE &&
               kind != STORE_SQL_SETTLE && st->text.len < STORE_SQL_STATEMENT_BYTES_MAX;
}

void store_sql_statement_add(StoreSqlStatement *st, StoreSqlKind kind, const char *values) {
        StoreSqlBuf *b = &st->text;

        if (b->len > 0) {
                buf_adds(b, kind == STORE_SQL_DELETE || kind == STORE_SQL_RESUME ? "," : ",\n");
                buf_adds(b, values);
                return;
        }
        switch (kind) {
        case STORE_SQL_INSERT:
        case STORE_SQL_UPDATE:
                buf_adds(b, "INSERT INTO tasks (");
                buf_adds(b, store_sql_row_columns);
                buf_adds(b, ") VALUES ");
                break;
        case STORE_SQL_DELETE:
                buf_adds(b, "DELETE FROM tasks WHERE id IN (");
                break;
        case STORE_SQL_PURGE:
                buf_adds(b, "DELETE FROM tasks WHERE state IN ('succeeded','cancelled') AND finished_at < ");
                break;
        case STORE_SQL_PAUSE:
                buf_adds(b, "INSERT INTO paused_tasks (task, paused_by, paused_at) VALUES ");
                break;
        case STORE_SQL_RESUME:
                buf_adds(b, "DELETE FROM paused_tasks WHERE task IN (");
                break;
        case STORE_SQL_FENCED_UPDATE: /* values: the whole statement */
        case STORE_SQL_SETTLE:
        case _STORE_SQL_KIND_MAX:
                break;
        }
        buf_adds(b, values);
        st->kind = kind;
}

int store_sql_statement_end(StoreSqlStatement *st, const char **ret_sql, size_t *ret_len) {
        StoreSqlBuf *b = &st->text;
        size_t len;

        if (b->len > 0) {
                if (st->kind == STORE_SQL_UPDATE)
                        buf_adds(b, UPDATE_CLAUSE);
                if (st->kind == STORE_SQL_DELETE || st->kind == STORE_SQL_RESUME)
                        buf_adds(b, ")");
                /* Paused already (by another host, say): who paused it first stays. */
                if (st->kind == STORE_SQL_PAUSE)
                        buf_adds(b, " ON DUPLICATE KEY UPDATE task=task");
                /* The order of tasks_finished (state, finished_at, then the primary key): the oldest
                 * rows, read in index order, and the same rows on a replica. */
                if (st->kind == STORE_SQL_PURGE)
                        buf_printf(b, " ORDER BY state, finished_at, id LIMIT %d", STORE_SQL_PURGE_ROWS);
        }
        len = b->len;
        b->len = 0; /* the text stays readable until the next add */
        if (b->oom) {
                b->oom = false;
                return -ENOMEM;
        }
        *ret_sql = len > 0 ? b->data : NULL;
        *ret_len = len;
        return 0;
}

void store_sql_statement_done(StoreSqlStatement *st) {
        free(st->text.data);
        *st = (StoreSqlStatement){};
}

/* --- loading --- */

const char store_sql_paused_load_query[] =
        "SELECT task, paused_by, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', paused_at) FROM paused_tasks";

/* The columns of a read, in the order store_sql_record_from_row() takes them; stdin is the stdin and
 * its length: "NULL, stdin_bytes" (a column the server keeps, schema 5) where a record is read
 * without it (a queued one's stays in the database until its launch, store_sql_stdin_query()),
 * "NULL, NULL" where a read has no use for it. */
#define STDIN_LEFT_OUT "NULL, stdin_bytes"
#define SELECT_COLUMNS(stdin)                                                                               \
        "SELECT id, task, cmd, args, " stdin ", idem_key, submitter, priority, state, attempts,"            \
        " max_attempts, unit,"                                                                              \
        " TIMESTAMPDIFF(MICROSECOND, '1970-01-01', created_at),"                                            \
        " TIMESTAMPDIFF(MICROSECOND, '1970-01-01', started_at),"                                            \
        " TIMESTAMPDIFF(MICROSECOND, '1970-01-01', finished_at),"                                           \
        " TIMESTAMPDIFF(MICROSECOND, '1970-01-01', run_after),"                                             \
        " result, exit_status, exit_signal, cpu_usec, memory_peak, error,"                                  \
        " node, " STORE_SQL_HELD ", parent_id FROM tasks"

const char store_sql_unfinished_query[] =
        "SELECT submitter, COUNT(*), COALESCE(SUM(stdin_bytes), 0) FROM tasks"
        " WHERE state IN ('queued', 'running') GROUP BY submitter";
const char store_sql_select_columns[] = SELECT_COLUMNS(STDIN_LEFT_OUT);

char *store_sql_running_query(const char *node) {
        StoreSqlBuf b = {};

        /* This node's runs; a row of no node was written before nodes were recorded. */
        buf_adds(&b, SELECT_COLUMNS(STDIN_LEFT_OUT) " WHERE state = 'running' AND (node IS NULL OR node = ");
        buf_str_or_null(&b, node);
        buf_adds(&b, ") ORDER BY id");
        return buf_steal(&b);
}
const char store_sql_max_id_query[] = "SELECT MAX(id) FROM tasks";
const char store_sql_counts_query[] =
        "SELECT state, COUNT(*) FROM tasks GROUP BY state"
        " UNION ALL SELECT 'oldest_due', TIMESTAMPDIFF(MICROSECOND, '1970-01-01', MIN(run_after)) FROM tasks"
        " WHERE state = 'queued' AND run_after <= UTC_TIMESTAMP(6)";

/* " AND (task IS NULL OR task NOT IN (...))": raw commands have no name to pause. */
static void buf_skip_tasks(StoreSqlBuf *b, const PausedTasks *skip) {
        if (!skip || skip->n == 0)
                return;
        buf_adds(b, " AND (task IS NULL OR task NOT IN (");
        for (size_t i = 0; i < skip->n; i++) {
                if (i > 0)
                        buf_adds(b, ", ");
                buf_hex(b, skip->items[i].task, strlen(skip->items[i].task));
        }
        buf_adds(b, "))");
}

char *store_sql_queue_query(unsigned limit, const PausedTasks *skip) {
        StoreSqlBuf b = {};

        /* The runnable rows in dispatch order (tasks_queue: the first rows of the index, no sort), then
         * the rows that become runnable soonest (tasks_due). */
        buf_adds(&b, "(" SELECT_COLUMNS(
                             STDIN_LEFT_OUT) " WHERE state = 'queued' AND run_after <= UTC_TIMESTAMP(6)");
        buf_skip_tasks(&b, skip);
        buf_printf(&b, " ORDER BY priority DESC, run_after, id LIMIT %u) UNION ALL (", limit);
        buf_adds(&b,
                 SELECT_COLUMNS(STDIN_LEFT_OUT) " WHERE state = 'queued' AND run_after > UTC_TIMESTAMP(6)");
        buf_skip_tasks(&b, skip);
        buf_printf(&b, " ORDER BY run_after, id LIMIT %u)", limit);
        return buf_steal(&b);
}

char *store_sql_id_query(uint64_t id) {
        StoreSqlBuf b = {};

        /* An every_host parent comes with its runs (tasks_parent), any other row alone. */
        buf_adds(&b, SELECT_COLUMNS(STDIN_LEFT_OUT));
        buf_printf(&b, " WHERE id = %llu OR parent_id = %llu ORDER BY id", (unsigned long long) id,
                   (unsigned long long) id);
        return buf_steal(&b);
}

char *store_sql_key_query(const char *submitter, const char *key) {
        StoreSqlBuf b = {};

        buf_adds(&b, SELECT_COLUMNS(STDIN_LEFT_OUT) " WHERE submitter = ");
        buf_hex(&b, submitter, strlen(submitter));
        buf_adds(&b, " AND idem_key = ");
        buf_hex(&b, key, strlen(key));
        return buf_steal(&b);
}

char *store_sql_page_query(int state, uint64_t after_id, unsigned limit) {
        StoreSqlBuf b = {};

        buf_adds(&b, SELECT_COLUMNS("NULL, NULL"));
        buf_printf(&b, " WHERE id > %llu", (unsigned long long) after_id);
        if (state >= 0)
                buf_printf(&b, " AND state = '%s'", task_state_to_string((TaskState) state));
        buf_printf(&b, " ORDER BY id LIMIT %u", limit);
        return buf_steal(&b);
}

char *store_sql_stdin_query(const uint64_t *ids, size_t n) {
        StoreSqlBuf b = {};

        buf_adds(&b, "SELECT id, stdin FROM tasks WHERE id IN (");
        for (size_t i = 0; i < n; i++)
                buf_printf(&b, "%s%llu", i > 0 ? "," : "", (unsigned long long) ids[i]);
        buf_adds(&b, ")");
        return buf_steal(&b);
}

char *store_sql_ids_query(const uint64_t *ids, size_t n) {
        StoreSqlBuf b = {};

        buf_adds(&b, SELECT_COLUMNS("NULL, NULL") " WHERE id IN (");
        for (size_t i = 0; i < n; i++)
                buf_printf(&b, "%s%llu", i > 0 ? "," : "", (unsigned long long) ids[i]);
        buf_adds(&b, ")");
        return buf_steal(&b);
}

char *store_sql_release_query(const char *node, const uint64_t *ids, size_t n) {
        StoreSqlBuf b = {};

        buf_adds(&b, "UPDATE tasks SET node = NULL WHERE state = 'queued' AND node = ");
        buf_str_or_null(&b, node);
        buf_adds(&b, " AND id IN (");
        for (size_t i = 0; i < n; i++)
                buf_printf(&b, "%s%llu", i > 0 ? "," : "", (unsigned long long) ids[i]);
        buf_adds(&b, ")");
        return buf_steal(&b);
}

char *store_sql_unfinished_of_state_query(int state) {
        StoreSqlBuf b = {};

        buf_printf(&b,
                   "SELECT submitter, COUNT(*), COALESCE(SUM(stdin_bytes), 0) FROM tasks WHERE state = '%s'",
                   task_state_to_string((TaskState) state));
        buf_adds(&b, " AND NOT (parent_id <=> id) GROUP BY submitter");
        return buf_steal(&b);
}

char *store_sql_retry_query(int state, uint64_t now) {
        StoreSqlBuf b = {};

        /* Unclaimed: any node may take them (an every_host run: its own node still). An every_host
         * parent is never run: it keeps its outcome, its runs are retried. */
        buf_adds(&b, "UPDATE tasks SET state = 'queued', attempts = 0, finished_at = NULL,"
                     " node = IF(parent_id IS NULL, NULL, node), lease_until = NULL, run_after = ");
        buf_datetime(&b, now);
        buf_printf(&b, " WHERE state = '%s'", task_state_to_string((TaskState) state));
        buf_adds(&b, " AND NOT (parent_id <=> id)");
        return buf_steal(&b);
}

/* Columns of SELECT_COLUMNS. */
enum {
        COL_ID,
        COL_TASK,
        COL_CMD,
        COL_ARGS,
        COL_STDIN,
        COL_STDIN_LENGTH,
        COL_KEY,
        COL_SUBMITTER,
        COL_PRIORITY,
        COL_STATE,
        COL_ATTEMPTS,
        COL_MAX_ATTEMPTS,
        COL_UNIT,
        COL_CREATED_AT,
        COL_STARTED_AT,
        COL_FINISHED_AT,
        COL_RUN_AFTER,
        COL_RESULT,
        COL_EXIT_STATUS,
        COL_EXIT_SIGNAL,
        COL_CPU_USEC,
        COL_MEMORY_PEAK,
        COL_ERROR,
        COL_NODE,
        COL_LEASE_LIVE,
        COL_PARENT_ID,
};

static uint64_t field_u64(const char *v) {
        return v ? strtoull(v, NULL, 10) : 0;
}

static char *field_dup(const char *v, unsigned long len) {
        char *p;

        if (!v)
                return NULL;
        p = malloc(len + 1);
        if (!p)
                return NULL;
        memcpy(p, v, len);
        p[len] = 0;
        return p;
}

static int parse_args_json(const char *v, unsigned long len, TaskRecord *t) {
        _cleanup_(cjson_deletep) cJSON *a = cJSON_ParseWithLength(v, len);
        const cJSON *it;
        size_t n = 0;

        if (!a || !cJSON_IsArray(a))
                return -EBADMSG;
        t->args = calloc((size_t) cJSON_GetArraySize(a) + 1, sizeof(char *));
        if (!t->args)
                return -ENOMEM;
        cJSON_ArrayForEach (it, a) {
                if (!cJSON_IsString(it))
                        return -EBADMSG;
                t->args[n] = strdup(it->valuestring);
                if (!t->args[n])
                        return -ENOMEM;
                t->n_args = ++n;
        }
        return 0;
}

/* The columns from result on: what the last run left. */
static int last_run_from_row(TaskResult *r, char *const *f) {
        if (f[COL_RESULT])
                task_result_set_word(r, f[COL_RESULT]);
        if (f[COL_EXIT_STATUS]) {
                r->has_exit_status = 1;
                r->exit_status = atoi(f[COL_EXIT_STATUS]);
        }
        r->signal = f[COL_EXIT_SIGNAL] ? atoi(f[COL_EXIT_SIGNAL]) : 0;
        r->cpu_usec = field_u64(f[COL_CPU_USEC]);
        r->memory_peak = field_u64(f[COL_MEMORY_PEAK]);
        if (f[COL_ERROR])
                return task_result_set_error(r, f[COL_ERROR]);
        return 0;
}

int store_sql_record_from_row(char *const *fields, const unsigned long *lengths, TaskRecord **ret,
                              bool *ret_bad_args) {
        _cleanup_(task_record_freep) TaskRecord *t = calloc(1, sizeof(TaskRecord));
        char *const *f = fields;
        const unsigned long *len = lengths;
        TaskState state;
        bool bad_args;

        if (!t)
                return -ENOMEM;
        t->id = field_u64(f[COL_ID]);
        t->task = field_dup(f[COL_TASK], len[COL_TASK]);
        t->cmd = field_dup(f[COL_CMD], len[COL_CMD]);
        /* A JSON array of strings when we wrote it; another value (edited by hand, say) must not keep
         * the record from loading. */
        bad_args = parse_args_json(f[COL_ARGS], len[COL_ARGS], t) < 0;
        if (f[COL_STDIN]) {
                t->stdin_data = field_dup(f[COL_STDIN], len[COL_STDIN]);
                t->stdin_len = len[COL_STDIN];
        } else
                t->stdin_len = (size_t) field_u64(f[COL_STDIN_LENGTH]);
        t->key = field_dup(f[COL_KEY], len[COL_KEY]);
        t->submitter = field_dup(f[COL_SUBMITTER], len[COL_SUBMITTER]);
        t->priority = f[COL_PRIORITY] ? atoi(f[COL_PRIORITY]) : 0;
        state = task_state_from_string(f[COL_STATE] ? f[COL_STATE] : "");
        t->state = state < 0 ? TASK_FAILED : state;
        t->attempts = (unsigned) field_u64(f[COL_ATTEMPTS]);
        t->max_attempts = (unsigned) field_u64(f[COL_MAX_ATTEMPTS]);
        t->unit = field_dup(f[COL_UNIT], len[COL_UNIT]);
        t->created_at = field_u64(f[COL_CREATED_AT]);
        t->started_at = field_u64(f[COL_STARTED_AT]);
        t->finished_at = field_u64(f[COL_FINISHED_AT]);
        t->run_after = field_u64(f[COL_RUN_AFTER]);
        t->parent_id = field_u64(f[COL_PARENT_ID]);
        if (last_run_from_row(&t->last, f) < 0)
                return -ENOMEM;
        t->node = field_dup(f[COL_NODE], len[COL_NODE]);
        t->lease_live = field_u64(f[COL_LEASE_LIVE]) != 0;
        if ((f[COL_NODE] && !t->node) || !t->submitter || (f[COL_TASK] && !t->task) ||
            (f[COL_CMD] && !t->cmd))
                return -ENOMEM;

        *ret = TAKE_PTR(t);
        *ret_bad_args = bad_args;
        return 0;
}
