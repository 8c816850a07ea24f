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
 * Values travel as hex literals (X'..'), which need no connection to escape and carry any byte
 * (client args and stdin are not necessarily UTF-8).
 */

#include <errno.h>
#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <cjson/cJSON.h>

#include "shared/log.h"
#include "front/store.h"
#include "shared/util.h"
#include "shared/json-util.h"

/* Schema versions. Version 1 was the first released layout; each step moves one version up. The
 * newest layout is also shipped as sql/asynctask-schema.sql for admins who create tables by hand. */
#define SCHEMA_VERSION 2

static const char *const schema_v1_tasks =
        "CREATE TABLE IF NOT EXISTS tasks ("
        " id BIGINT UNSIGNED NOT NULL PRIMARY KEY,"
        " task VARCHAR(64) CHARACTER SET ascii NULL,"
        " cmd BLOB NULL,"
        " args MEDIUMBLOB NOT NULL,"
        " stdin MEDIUMBLOB NULL,"
        " idem_key VARBINARY(255) NULL,"
        " submitter VARCHAR(64) CHARACTER SET ascii NOT NULL,"
        " priority INT NOT NULL DEFAULT 0,"
        " state ENUM('queued','running','succeeded','failed','cancelled') NOT NULL,"
        " attempts INT UNSIGNED NOT NULL DEFAULT 0,"
        " max_attempts INT UNSIGNED NOT NULL DEFAULT 1,"
        " unit VARCHAR(128) CHARACTER SET ascii NULL,"
        " created_at DATETIME(6) NOT NULL,"
        " started_at DATETIME(6) NULL,"
        " finished_at DATETIME(6) NULL,"
        " run_after DATETIME(6) NOT NULL,"
        " result VARCHAR(32) CHARACTER SET ascii NULL,"
        " exit_status INT NULL,"
        " error VARCHAR(1024) NULL,"
        " UNIQUE KEY tasks_submitter_key (submitter, idem_key),"
        " KEY tasks_dispatch (state, priority, run_after),"
        " KEY tasks_state_id (state, id)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

/* 1 -> 2: what a run reports beyond its exit status, and what several nodes sharing one database
 * will need (which node runs a task, and until when its claim holds). */
static const char *const schema_v2_steps[] = {
        "ALTER TABLE tasks"
        " ADD COLUMN exit_signal INT NULL AFTER exit_status,"
        " ADD COLUMN cpu_usec BIGINT UNSIGNED NULL AFTER exit_signal,"
        " ADD COLUMN memory_peak BIGINT UNSIGNED NULL AFTER cpu_usec,"
        " ADD COLUMN node VARCHAR(255) NULL,"
        " ADD COLUMN lease_until DATETIME(6) NULL,"
        " ADD KEY tasks_finished (state, finished_at)",
        NULL,
};

#define ROW_COLUMNS                                                                                         \
        "id, task, cmd, args, stdin, idem_key, submitter, priority, state, attempts, max_attempts, unit, "  \
        "created_at, started_at, finished_at, run_after, result, exit_status, exit_signal, cpu_usec, "      \
        "memory_peak, error, node"

/* Columns a write after the insert may change. */
#define UPDATE_CLAUSE                                                                                       \
        " ON DUPLICATE KEY UPDATE state=VALUES(state), attempts=VALUES(attempts),"                          \
        " max_attempts=VALUES(max_attempts), unit=VALUES(unit), started_at=VALUES(started_at),"             \
        " finished_at=VALUES(finished_at), run_after=VALUES(run_after), result=VALUES(result),"             \
        " exit_status=VALUES(exit_status), exit_signal=VALUES(exit_signal), cpu_usec=VALUES(cpu_usec),"     \
        " memory_peak=VALUES(memory_peak), error=VALUES(error), node=VALUES(node)"

/* One statement stays well below the server's default max_allowed_packet (16 MiB). */
#define STATEMENT_BYTES_MAX (4 * 1024 * 1024)
/* Ops taken into one transaction at most: bounds the time a batch holds its locks. */
#define BATCH_OPS_MAX          20000
#define RECONNECT_DELAY_MIN_MS 200
#define RECONNECT_DELAY_MAX_MS 5000
/* After the server refused a write for want of a resource (disk full, lock timeout): new tasks are
 * refused and changes held this long before trying again, doubling up to the maximum. */
#define HOLD_OFF_MIN_MS 200
#define HOLD_OFF_MAX_MS 2000

typedef enum StoreOpKind {
        STORE_OP_INSERT,
        STORE_OP_UPDATE,
        STORE_OP_DELETE,
        STORE_OP_PURGE,
} StoreOpKind;

typedef struct StoreOp {
        StoreOpKind kind;
        char *values; /* INSERT/UPDATE: "(...)"; DELETE: the id; PURGE: a DATETIME literal */
        StoreDoneFn done;
        void *userdata;
        int error;
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
        uint64_t hold_off_ms;
        char last_error[256]; /* of the last failed statement (a ROLLBACK after it clears the handle's) */
        uint64_t hold_until_usec; /* CLOCK_REALTIME; 0: writes go ahead */
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
        free(op->values);
        free(op);
}

/* --- rendering values (loop thread, no connection needed) --- */

typedef struct Buf {
        char *data;
        size_t len, cap;
        bool oom;
} Buf;

static void buf_reserve(Buf *b, size_t extra) {
        if (b->oom || b->len + extra + 1 <= b->cap)
                return;
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + extra + 1)
                cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
                b->oom = true;
                return;
        }
        b->data = p;
        b->cap = cap;
}

static void buf_add(Buf *b, const char *s, size_t n) {
        buf_reserve(b, n);
        if (b->oom)
                return;
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = 0;
}

static void buf_adds(Buf *b, const char *s) {
        buf_add(b, s, strlen(s));
}

_printf_(2, 3) static void buf_printf(Buf *b, const char *fmt, ...) {
        va_list ap;
        char tmp[128];
        int n;

        va_start(ap, fmt);
        n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        if (n > 0)
                buf_add(b, tmp, (size_t) n < sizeof(tmp) ? (size_t) n : sizeof(tmp) - 1);
}

static void buf_hex(Buf *b, const void *data, size_t n) {
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

static void buf_str_or_null(Buf *b, const char *s) {
        if (s)
                buf_hex(b, s, strlen(s));
        else
                buf_adds(b, "NULL");
}

/* Error texts come from the launcher and may quote client bytes; the column is utf8mb4, so keep it
 * printable ASCII. */
static void buf_error_text(Buf *b, const char *s) {
        char clean[1024];
        size_t n = 0;

        if (!s || !*s) {
                buf_adds(b, "NULL");
                return;
        }
        for (; *s && n < sizeof(clean) - 1; s++)
                clean[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
        buf_hex(b, clean, n);
}

static void buf_datetime(Buf *b, uint64_t usec) {
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

static char *render_row(const Store *s, const TaskRecord *t) {
        _cleanup_free_ char *args = render_args(t);
        const TaskResult *r = &t->last;
        Buf b = {};

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
        buf_str_or_null(&b, r->result[0] ? r->result : NULL);
        if (r->has_exit_status)
                buf_printf(&b, ",%d", r->exit_status);
        else
                buf_adds(&b, ",NULL");
        if (r->signal)
                buf_printf(&b, ",%d", r->signal);
        else
                buf_adds(&b, ",NULL");
        if (r->result[0])
                buf_printf(&b, ",%llu,%llu,", r->cpu_usec, r->memory_peak);
        else
                buf_adds(&b, ",NULL,NULL,");
        buf_error_text(&b, r->error);
        buf_adds(&b, ",");
        buf_str_or_null(&b, t->state == TASK_RUNNING || t->started_at ? s->node : NULL);
        buf_adds(&b, ")");
        if (b.oom) {
                free(b.data);
                return NULL;
        }
        return b.data;
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
                mysql_close(s->db);
                s->db = NULL;
        }
        atomic_store(&s->available, false);
}

static int db_query(Store *s, const char *sql, size_t len) {
        if (mysql_real_query(s->db, sql, len) != 0) {
                unsigned e = mysql_errno(s->db);
                log_debug("mysql: %s (%u) in: %.200s", mysql_error(s->db), e, sql);
                snprintf(s->last_error, sizeof(s->last_error), "%s", mysql_error(s->db));
                if (is_connection_error(e)) {
                        log_warning("mysql: connection lost: %s", mysql_error(s->db));
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
        m = mysql_init(NULL);
        if (!m)
                return -ENOMEM;
        (void) mysql_optionsv(m, MYSQL_READ_DEFAULT_FILE, s->option_file);
        (void) mysql_optionsv(m, MYSQL_READ_DEFAULT_GROUP, s->group);
        (void) mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_connect);
        (void) mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &timeout_rw);
        (void) mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &timeout_rw);
        (void) mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
        if (!mysql_real_connect(m, NULL, NULL, NULL, NULL, 0, NULL, 0)) {
                snprintf(errbuf, errlen, "%s", mysql_error(m));
                mysql_close(m);
                return -ECONNREFUSED;
        }
        s->db = m;
        if (db_exec(s, "SET SESSION time_zone = '+00:00', SESSION sql_mode = 'STRICT_ALL_TABLES,"
                       "NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION', SESSION autocommit = 1") < 0) {
                snprintf(errbuf, errlen, "cannot set session: %s", s->db ? mysql_error(s->db) : "lost");
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
        res = mysql_store_result(s->db);
        if (!res)
                return -EIO;
        row = mysql_fetch_row(res);
        if (!row || !row[0]) {
                mysql_free_result(res);
                return -ENOENT;
        }
        *ret = strtoull(row[0], NULL, 10);
        mysql_free_result(res);
        return 0;
}

static int schema_migrate(Store *s, char *errbuf, size_t errlen) {
        uint64_t version = 0, locked = 0;
        int r;

        /* Two daemons starting against one database must not both create or migrate. */
        r = db_query_u64(s, "SELECT GET_LOCK('asynctask_schema', 30)", &locked);
        if (r < 0 || locked != 1) {
                snprintf(errbuf, errlen, "cannot take the schema lock: %s",
                         s->db ? mysql_error(s->db) : "lost");
                return r < 0 ? r : -EBUSY;
        }

        r = db_exec(s, "CREATE TABLE IF NOT EXISTS asynctask_schema ("
                       " id TINYINT UNSIGNED NOT NULL PRIMARY KEY,"
                       " version INT UNSIGNED NOT NULL"
                       ") ENGINE=InnoDB");
        if (r < 0)
                goto fail;
        r = db_query_u64(s, "SELECT version FROM asynctask_schema WHERE id = 1", &version);
        if (r == -ENOENT) {
                /* A new database: create the first layout, then migrate like any other. */
                r = db_exec(s, schema_v1_tasks);
                if (r < 0)
                        goto fail;
                r = db_exec(s, "INSERT INTO asynctask_schema (id, version) VALUES (1, 1)");
                if (r < 0)
                        goto fail;
                version = 1;
        } else if (r < 0)
                goto fail;

        if (version > SCHEMA_VERSION) {
                snprintf(errbuf, errlen,
                         "the database has schema version %llu, newer than this asynctask knows (%d)",
                         (unsigned long long) version, SCHEMA_VERSION);
                r = -EPROTONOSUPPORT;
                goto unlock;
        }
        if (version < 2) {
                log_notice("mysql: migrating schema from version %llu to 2", (unsigned long long) version);
                for (size_t i = 0; schema_v2_steps[i]; i++) {
                        r = db_exec(s, schema_v2_steps[i]);
                        if (r < 0)
                                goto fail;
                }
                r = db_exec(s, "UPDATE asynctask_schema SET version = 2 WHERE id = 1");
                if (r < 0)
                        goto fail;
        }
        r = 0;
        goto unlock;
fail:
        snprintf(errbuf, errlen, "schema: %s", s->db ? mysql_error(s->db) : "connection lost");
unlock:
        if (s->db)
                (void) db_exec(s, "DO RELEASE_LOCK('asynctask_schema')");
        return r;
}

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

#define LOAD_COLUMNS                                                                                        \
        "id, task, cmd, args, stdin, idem_key, submitter, priority, state, attempts, max_attempts, unit,"   \
        " TIMESTAMPDIFF(MICROSECOND, '1970-01-01', created_at),"                                            \
        " TIMESTAMPDIFF(MICROSECOND, '1970-01-01', started_at),"                                            \
        " TIMESTAMPDIFF(MICROSECOND, '1970-01-01', finished_at),"                                           \
        " TIMESTAMPDIFF(MICROSECOND, '1970-01-01', run_after),"                                             \
        " result, exit_status, exit_signal, cpu_usec, memory_peak, error"

static int load_records(Store *s, Ledger *l) {
        MYSQL_RES *res;
        MYSQL_ROW row;
        uint64_t max_id = 0, n = 0;
        int r;

        r = db_exec(s, "SELECT " LOAD_COLUMNS " FROM tasks ORDER BY id");
        if (r < 0)
                return r;
        res = mysql_use_result(s->db);
        if (!res)
                return -EIO;
        while ((row = mysql_fetch_row(res))) {
                unsigned long *len = mysql_fetch_lengths(res);
                TaskRecord *t = calloc(1, sizeof(*t));
                TaskState state;

                if (!t) {
                        r = -ENOMEM;
                        break;
                }
                t->id = field_u64(row[0]);
                t->task = field_dup(row[1], len[1]);
                t->cmd = field_dup(row[2], len[2]);
                r = parse_args_json(row[3], len[3], t);
                if (r < 0) {
                        log_warning("mysql: task %llu has unreadable args, loading it without",
                                    (unsigned long long) t->id);
                        r = 0;
                }
                if (row[4]) {
                        t->stdin_data = field_dup(row[4], len[4]);
                        t->stdin_len = len[4];
                }
                t->key = field_dup(row[5], len[5]);
                t->submitter = field_dup(row[6], len[6]);
                t->priority = row[7] ? atoi(row[7]) : 0;
                state = task_state_from_string(row[8] ? row[8] : "");
                t->state = state < 0 ? TASK_FAILED : state;
                t->attempts = (unsigned) field_u64(row[9]);
                t->max_attempts = (unsigned) field_u64(row[10]);
                t->unit = field_dup(row[11], len[11]);
                t->created_at = field_u64(row[12]);
                t->started_at = field_u64(row[13]);
                t->finished_at = field_u64(row[14]);
                t->run_after = field_u64(row[15]);
                if (row[16])
                        task_result_set_word(&t->last, row[16]);
                if (row[17]) {
                        t->last.has_exit_status = 1;
                        t->last.exit_status = atoi(row[17]);
                }
                t->last.signal = row[18] ? atoi(row[18]) : 0;
                t->last.cpu_usec = field_u64(row[19]);
                t->last.memory_peak = field_u64(row[20]);
                if (row[21] && task_result_set_error(&t->last, row[21]) < 0) {
                        task_record_free(t);
                        r = -ENOMEM;
                        break;
                }
                if (!t->submitter || (row[1] && !t->task) || (row[2] && !t->cmd)) {
                        task_record_free(t);
                        r = -ENOMEM;
                        break;
                }
                if (t->id > max_id)
                        max_id = t->id;
                r = ledger_adopt(l, t);
                if (r == -ENOMEM) {
                        task_record_free(t);
                        break;
                }
                if (r < 0) {
                        /* One damaged row (edited by hand, say) must not keep every other task from
                         * running: leave it in the table for the admin and go on. */
                        log_warning("mysql: task %llu cannot be loaded (%s), skipping it",
                                    (unsigned long long) t->id, strerror(-r));
                        task_record_free(t);
                        r = 0;
                        continue;
                }
                n++;
        }
        if (r == 0 && mysql_errno(s->db) != 0)
                r = is_connection_error(mysql_errno(s->db)) ? -ENOTCONN : -EIO;
        mysql_free_result(res);
        if (r < 0)
                return r;
        ledger_set_next_id(l, max_id + 1);
        log_info("mysql: loaded %llu task records", (unsigned long long) n);
        return 0;
}

static void batch_close(Buf *sql, StoreOpKind open_kind) {
        if (sql->len == 0)
                return;
        if (open_kind == STORE_OP_UPDATE)
                buf_adds(sql, UPDATE_CLAUSE);
        if (open_kind == STORE_OP_DELETE)
                buf_adds(sql, ")");
}

/* Appends op's statement text to sql: runs of one kind become one multi-row statement. */
static void batch_append(Buf *sql, StoreOp *op, StoreOpKind *open_kind) {
        bool continues = *open_kind == op->kind && sql->len > 0 && sql->len < STATEMENT_BYTES_MAX &&
                         op->kind != STORE_OP_PURGE;

        if (continues) {
                buf_adds(sql, op->kind == STORE_OP_DELETE ? "," : ",\n");
                buf_adds(sql, op->values);
                return;
        }
        /* A statement still open is closed first; after batch_run() sent one, sql is empty and
         * open_kind still names the kind of the statement sent, which must not be closed twice. */
        if (sql->len > 0) {
                batch_close(sql, *open_kind);
                buf_adds(sql, ";\n");
        }
        switch (op->kind) {
        case STORE_OP_INSERT:
        case STORE_OP_UPDATE:
                buf_adds(sql, "INSERT INTO tasks (" ROW_COLUMNS ") VALUES ");
                buf_adds(sql, op->values);
                break;
        case STORE_OP_DELETE:
                buf_adds(sql, "DELETE FROM tasks WHERE id IN (");
                buf_adds(sql, op->values);
                break;
        case STORE_OP_PURGE:
                buf_adds(sql,
                         "DELETE FROM tasks WHERE state IN ('succeeded','cancelled') AND finished_at < ");
                buf_adds(sql, op->values);
                break;
        }
        *open_kind = op->kind;
}

/* Runs ops (in order) as one transaction. Statements are sent one by one, each multi-row. */
static int batch_run(Store *s, OpList *ops) {
        StoreOpKind open_kind = STORE_OP_INSERT;
        Buf sql = {};
        int r;

        r = db_exec(s, "START TRANSACTION");
        if (r < 0)
                return r;
        for (StoreOp *op = ops->head; op; op = op->next) {
                bool flush = sql.len > 0 && (op->kind != open_kind || sql.len >= STATEMENT_BYTES_MAX ||
                                             op->kind == STORE_OP_PURGE);
                if (flush) {
                        batch_close(&sql, open_kind);
                        if (sql.oom) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        r = db_query(s, sql.data, sql.len);
                        if (r < 0)
                                goto fail;
                        sql.len = 0;
                }
                batch_append(&sql, op, &open_kind);
        }
        batch_close(&sql, open_kind);
        if (sql.oom) {
                r = -ENOMEM;
                goto fail;
        }
        if (sql.len > 0) {
                r = db_query(s, sql.data, sql.len);
                if (r < 0)
                        goto fail;
        }
        free(sql.data);
        r = db_exec(s, "COMMIT");
        /* MariaDB rolls back a transaction whose COMMIT failed; should one stay open, the next START
         * TRANSACTION would commit it, with submissions already answered "unavailable" in it. */
        if (r < 0 && s->db)
                (void) db_exec(s, "ROLLBACK");
        return r;
fail:
        free(sql.data);
        if (s->db)
                (void) db_exec(s, "ROLLBACK");
        return r;
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
                if ((r == -ENOTCONN || r == -EAGAIN) && op->kind != STORE_OP_INSERT) {
                        op_list_push(retry, op);
                        continue;
                }
                if (r < 0 && r != -ENOTCONN && r != -EAGAIN)
                        log_error("mysql: a %s could not be written and is dropped: %s",
                                  op->kind == STORE_OP_INSERT ? "new task" : "change",
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
                op_list_push(op->kind == STORE_OP_INSERT ? &done : &keep, op);
        }
        s->pending = keep;
        pthread_mutex_unlock(&s->lock);
        post_completed(s, &done);
}

/* Waits until there is work, stop is requested, or (when deadline_usec != 0) the deadline passes. */
/* A CLOCK_REALTIME deadline in usec, as pthread_cond_timedwait() takes it. */
static struct timespec deadline_timespec(uint64_t deadline_usec) {
        return (struct timespec){
                .tv_sec = (time_t) (deadline_usec / USEC_PER_SEC),
                .tv_nsec = (long) (deadline_usec % USEC_PER_SEC) * 1000,
        };
}

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
                log_warning("mysql: the database refuses writes (%s); submissions are refused and changes "
                            "held until it takes them",
                            s->last_error);
        s->hold_off_ms = s->hold_off_ms == 0                    ? HOLD_OFF_MIN_MS
                         : s->hold_off_ms * 2 > HOLD_OFF_MAX_MS ? HOLD_OFF_MAX_MS
                                                                : s->hold_off_ms * 2;
        s->hold_until_usec = now_usec(CLOCK_REALTIME) + s->hold_off_ms * USEC_PER_MSEC;
        atomic_store(&s->available, false);
}

static bool reconnect(Store *s, uint64_t *next_attempt_usec, bool *warned) {
        char err[512];
        uint64_t now = now_usec(CLOCK_REALTIME);

        if (now < *next_attempt_usec)
                return false;
        if (db_connect(s, err, sizeof(err)) == 0) {
                log_notice("mysql: connected");
                s->reconnect_delay_ms = RECONNECT_DELAY_MIN_MS;
                *warned = false;
                return true;
        }
        if (!*warned)
                log_warning("mysql: database unreachable, submissions are refused until it is back: %s",
                            err);
        else
                log_debug("mysql: still unreachable: %s", err);
        *warned = true;
        *next_attempt_usec = now + s->reconnect_delay_ms * USEC_PER_MSEC;
        s->reconnect_delay_ms = s->reconnect_delay_ms * 2 > RECONNECT_DELAY_MAX_MS
                                        ? RECONNECT_DELAY_MAX_MS
                                        : s->reconnect_delay_ms * 2;
        return false;
}

static void *store_thread(void *userdata) {
        Store *s = userdata;
        uint64_t next_attempt_usec = 0;
        bool warned = false;

        mysql_thread_init();
        for (;;) {
                OpList batch = {}, done = {}, retry = {};
                StoreOp *op;
                bool stopping;
                int r;

                if (!s->db && !reconnect(s, &next_attempt_usec, &warned)) {
                        refuse_pending_inserts(s, -ENOTCONN);
                        pthread_mutex_lock(&s->lock);
                        stopping = s->stopping;
                        pthread_mutex_unlock(&s->lock);
                        if (stopping) {
                                pthread_mutex_lock(&s->lock);
                                if (s->pending.n > 0)
                                        log_error("mysql: unreachable at shutdown, %zu changes not written",
                                                  s->pending.n);
                                complete_all(&s->pending, -ENOTCONN, &done);
                                pthread_mutex_unlock(&s->lock);
                                post_completed(s, &done);
                                break;
                        }
                        wait_for_work(s, next_attempt_usec);
                        continue;
                }

                if (s->hold_until_usec != 0) {
                        pthread_mutex_lock(&s->lock);
                        stopping = s->stopping;
                        if (stopping) {
                                if (s->pending.n > 0)
                                        log_error("mysql: the database refuses writes at shutdown, %zu "
                                                  "changes not written",
                                                  s->pending.n);
                                complete_all(&s->pending, -EAGAIN, &done);
                        }
                        pthread_mutex_unlock(&s->lock);
                        if (stopping) {
                                post_completed(s, &done);
                                break;
                        }
                        if (now_usec(CLOCK_REALTIME) < s->hold_until_usec) {
                                refuse_pending_inserts(s, -EAGAIN);
                                wait_until(s, s->hold_until_usec);
                                continue;
                        }
                        /* Try again; the next batch tells whether the server takes writes now. */
                        s->hold_until_usec = 0;
                        atomic_store(&s->available, true);
                }

                wait_for_work(s, 0);
                pthread_mutex_lock(&s->lock);
                stopping = s->stopping;
                while (batch.n < BATCH_OPS_MAX && (op = op_list_pop(&s->pending)))
                        op_list_push(&batch, op);
                pthread_mutex_unlock(&s->lock);
                if (!batch.head) {
                        if (stopping)
                                break;
                        continue;
                }

                r = batch_run(s, &batch);
                if (r == 0) {
                        complete_all(&batch, 0, &done);
                        if (s->hold_off_ms != 0)
                                log_notice("mysql: the database takes writes again");
                        s->hold_off_ms = 0;
                } else if (r == -ENOTCONN || r == -EAGAIN || !s->db) {
                        /* Whether the COMMIT landed is unknown (the connection was lost) or it did not
                         * (refused): inserts are reported as not accepted (a client that retries with
                         * its idempotency key is safe either way), other changes are written again,
                         * harmless as they are upserts of whole rows. */
                        while ((op = op_list_pop(&batch))) {
                                if (op->kind == STORE_OP_INSERT) {
                                        op->error = s->db ? r : -ENOTCONN;
                                        op_list_push(&done, op);
                                } else
                                        op_list_push(&retry, op);
                        }
                        if (r == -EAGAIN && s->db)
                                hold_off(s);
                } else if (run_one_by_one(s, &batch, &done, &retry) && s->db)
                        hold_off(s);

                post_completed(s, &done);
                if (retry.head) {
                        pthread_mutex_lock(&s->lock);
                        op_list_prepend(&s->pending, &retry);
                        pthread_mutex_unlock(&s->lock);
                }
        }
        db_close(s);
        mysql_thread_end();
        return NULL;
}

/* --- the loop side --- */

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
                if (op->done)
                        op->done(op->error, op->userdata);
                op_free(op);
        }
        return 0;
}

static int enqueue(Store *s, StoreOpKind kind, char *values, StoreDoneFn done, void *userdata) {
        StoreOp *op;

        if (!values)
                return -ENOMEM;
        op = calloc(1, sizeof(*op));
        if (!op) {
                free(values);
                return -ENOMEM;
        }
        op->kind = kind;
        op->values = values;
        op->done = done;
        op->userdata = userdata;
        pthread_mutex_lock(&s->lock);
        op_list_push(&s->pending, op);
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        return 0;
}

int store_insert(Store *s, const TaskRecord *t, StoreDoneFn done, void *userdata) {
        return enqueue(s, STORE_OP_INSERT, render_row(s, t), done, userdata);
}

int store_update(Store *s, const TaskRecord *t, StoreDoneFn done, void *userdata) {
        return enqueue(s, STORE_OP_UPDATE, render_row(s, t), done, userdata);
}

int store_delete(Store *s, uint64_t id, StoreDoneFn done, void *userdata) {
        char *v;

        if (asprintf(&v, "%llu", (unsigned long long) id) < 0)
                return -ENOMEM;
        return enqueue(s, STORE_OP_DELETE, v, done, userdata);
}

int store_purge(Store *s, uint64_t finished_before, StoreDoneFn done, void *userdata) {
        Buf b = {};

        buf_datetime(&b, finished_before ? finished_before : 1);
        if (b.oom) {
                free(b.data);
                return -ENOMEM;
        }
        return enqueue(s, STORE_OP_PURGE, b.data, done, userdata);
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
                op_free(op);
        while ((op = op_list_pop(&s->completed)))
                op_free(op);
        sd_event_source_disable_unref(s->event_source);
        if (s->event_fd >= 0)
                close(s->event_fd);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->wake);
        free(s->option_file);
        free(s->group);
        free(s);
        return NULL;
}

static void store_freep(Store **s) {
        store_free(*s);
}

int store_open(const Config *cfg, sd_event *event, Ledger *l, Store **ret) {
        _cleanup_(store_freep) Store *s = NULL;
        char err[512] = "";
        int r;

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
        r = load_records(s, l);
        if (r < 0)
                return log_error_errno(r, "mysql: cannot load task records: %s",
                                       s->db ? mysql_error(s->db) : "connection lost");

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
