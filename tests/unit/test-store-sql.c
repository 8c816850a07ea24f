/* SPDX-License-Identifier: MIT */
/* The MySQL store's SQL text (store-sql.c) and schema steps (store-schema.c), without a database:
 * tables of records, writes and rows, and the exact text each must give. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "front/store-schema.h"
#include "front/store-sql.h"
#include "shared/util.h"

#define T0 1700000000000000ULL /* 2023-11-14 22:13:20 UTC */

/* ---- one record, one row ---- */

typedef struct RowCase {
        const char *name;
        TaskRecord record;
        const char *want;
} RowCase;

static char *args_two[] = {(char *) "a b", (char *) "q\"t", NULL};
static char *args_one[] = {(char *) "in.png", NULL};
static char *args_none[] = {NULL};

static const RowCase row_cases[] = {
        {
                .name = "queued task, never run: no node, no result, run_after from created_at",
                .record = {.id = 17,
                           .task = (char *) "mail",
                           .args = args_two,
                           .n_args = 2,
                           .submitter = (char *) "uid:33",
                           .priority = 5,
                           .state = TASK_QUEUED,
                           .max_attempts = 3,
                           .created_at = T0 + 123456},
                .want = "(17,X'6D61696C',NULL,X'5B22612062222C22715C2274225D',NULL,NULL,X'7569643A3333',5,"
                        "'queued',0,3,NULL,'2023-11-14 22:13:20.123456',NULL,NULL,'2023-11-14 "
                        "22:13:20.123456',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL)",
        },
        {
                .name = "running command: stdin with a NUL byte, key, unit, node",
                .record = {.id = 18,
                           .cmd = (char *) "echo \"hi\"",
                           .args = args_none,
                           .stdin_data = (char *) "x\0y",
                           .stdin_len = 3,
                           .key = (char *) "k-1",
                           .submitter = (char *) "tcp:127.0.0.1",
                           .priority = -2,
                           .state = TASK_RUNNING,
                           .attempts = 1,
                           .max_attempts = 1,
                           .unit = (char *) "asynctask-18.service",
                           .created_at = T0,
                           .started_at = T0 + 1000000,
                           .run_after = T0 + 500000},
                .want = "(18,NULL,X'6563686F2022686922',X'5B5D',X'780079',X'6B2D31',"
                        "X'7463703A3132372E302E302E31',-2,'running',1,1,"
                        "X'6173796E637461736B2D31382E73657276696365','2023-11-14 22:13:20.000000',"
                        "'2023-11-14 22:13:21.000000',NULL,'2023-11-14 22:13:20.500000',NULL,NULL,NULL,NULL,"
                        "NULL,NULL,X'6E6F646531',NULL)",
        },
        {
                .name = "failed: empty stdin, exit status, usage, error text kept printable ASCII",
                .record = {.id = 19,
                           .task = (char *) "resize",
                           .args = args_one,
                           .n_args = 1,
                           .stdin_data = (char *) "",
                           .stdin_len = 0,
                           .submitter = (char *) "uid:0",
                           .state = TASK_FAILED,
                           .attempts = 3,
                           .max_attempts = 3,
                           .unit = (char *) "pid:42",
                           .created_at = T0,
                           .started_at = T0 + 60000001,
                           .finished_at = T0 + 61999999,
                           .run_after = T0 + 50000000,
                           .last = {.error = (char *) "bad\tbyte\xff!",
                                    .cpu_usec = 1234,
                                    .memory_peak = 5678,
                                    .exit_status = 3,
                                    .has_exit_status = true,
                                    .result = "exit-code"}},
                .want = "(19,X'726573697A65',NULL,X'5B22696E2E706E67225D','',NULL,X'7569643A30',0,'failed',"
                        "3,"
                        "3,X'7069643A3432','2023-11-14 22:13:20.000000','2023-11-14 22:14:20.000001',"
                        "'2023-11-14 22:14:21.999999','2023-11-14 22:14:10.000000',X'657869742D636F6465',3,"
                        "NULL,1234,5678,X'6261643F627974653F21',X'6E6F646531',NULL)",
        },
        {
                .name = "cancelled by a signal: no exit status, zero usage written as 0",
                .record = {.id = 20,
                           .task = (char *) "mail",
                           .args = args_none,
                           .submitter = (char *) "uid:33",
                           .state = TASK_CANCELLED,
                           .attempts = 1,
                           .max_attempts = 1,
                           .created_at = 86400000000ULL,
                           .started_at = 86401000000ULL,
                           .finished_at = 86402000000ULL,
                           .run_after = 86400000000ULL,
                           .last = {.signal = 9, .result = "signal"}},
                .want = "(20,X'6D61696C',NULL,X'5B5D',NULL,NULL,X'7569643A3333',0,'cancelled',1,1,NULL,"
                        "'1970-01-02 00:00:00.000000','1970-01-02 00:00:01.000000','1970-01-02 "
                        "00:00:02.000000','1970-01-02 00:00:00.000000',X'7369676E616C',NULL,9,0,0,NULL,"
                        "X'6E6F646531',NULL)",
        },
};

static void test_row(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(row_cases); i++) {
                const RowCase *c = &row_cases[i];
                _cleanup_free_ char *row = store_sql_row(&c->record, "node1", 0);

                print_message("row: %s\n", c->name);
                assert_non_null(row);
                assert_string_equal(row, c->want);
        }
}

/* A queued or running record this node holds is written claimed by it, with a lease; a final one
 * keeps the node of its last run and no lease. */
static void test_row_claimed(void **state) {
        TaskRecord queued = {.id = 7,
                             .task = (char *) "mail",
                             .submitter = (char *) "uid:33",
                             .state = TASK_QUEUED,
                             .max_attempts = 1,
                             .created_at = 86400000000ULL};
        TaskRecord done = queued, running = queued;
        _cleanup_free_ char *held = NULL, *run = NULL, *final = NULL;

        /* A queued row is held by its node alone (STORE_SQL_HELD), a running one with a lease too. */
        held = store_sql_row(&queued, "web1", 30);
        assert_non_null(held);
        assert_non_null(strstr(held, ",X'77656231',NULL)"));
        running.state = TASK_RUNNING;
        running.attempts = 1;
        running.started_at = 86401000000ULL;
        run = store_sql_row(&running, "web1", 30);
        assert_non_null(run);
        assert_non_null(strstr(run, ",X'77656231',DATE_ADD(UTC_TIMESTAMP(6), INTERVAL 30 SECOND))"));
        done.state = TASK_SUCCEEDED;
        done.started_at = done.finished_at = 86401000000ULL;
        final = store_sql_row(&done, "web1", 30);
        assert_non_null(final);
        assert_non_null(strstr(final, ",X'77656231',NULL)"));
}

/* The write of a run is fenced on (id, node, attempt): it changes the row only while it is still this
 * node's at this attempt (or the one before, for the start), or already holds this very outcome. */
static void test_fenced_update(void **state) {
        TaskRecord t = {.id = 42,
                        .task = (char *) "mail",
                        .submitter = (char *) "uid:33",
                        .state = TASK_RUNNING,
                        .attempts = 2,
                        .max_attempts = 3,
                        .created_at = 86400000000ULL,
                        .started_at = 86401000000ULL};
        _cleanup_free_ char *sql = store_sql_fenced_update(&t, "web1", 30);

        assert_non_null(sql);
        assert_true(strncmp(sql, "UPDATE tasks SET state='running', attempts=2, max_attempts=3,", 61) == 0);
        assert_non_null(strstr(
                sql, ", node=X'77656231', lease_until=DATE_ADD(UTC_TIMESTAMP(6), INTERVAL 30 SECOND)"));
        assert_non_null(strstr(sql,
                               " WHERE id = 42 AND node = X'77656231' AND attempts IN (1, 2) AND (state IN "
                               "('queued','running') OR finished_at <=> NULL)"));
}

static void test_datetime_and_id(void **state) {
        static const struct {
                uint64_t usec;
                const char *want;
        } cases[] = {
                {0, "NULL"},
                {1, "'1970-01-01 00:00:00.000001'"},
                {951782400000000ULL, "'2000-02-29 00:00:00.000000'"},
                {T0 + 123456, "'2023-11-14 22:13:20.123456'"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s = store_sql_datetime(cases[i].usec);
                assert_string_equal(s, cases[i].want);
        }

        _cleanup_free_ char *id = store_sql_id(UINT64_MAX);
        assert_string_equal(id, "18446744073709551615");
}

/* ---- a batch of writes, its statements ---- */

#define INSERT_HEAD "INSERT INTO tasks (" COLUMNS ") VALUES "
#define COLUMNS                                                                                             \
        "id, task, cmd, args, stdin, idem_key, submitter, priority, state, attempts, max_attempts, unit, "  \
        "created_at, started_at, finished_at, run_after, result, exit_status, exit_signal, cpu_usec, "      \
        "memory_peak, error, node, lease_until"
#define ON_DUPLICATE                                                                                        \
        " ON DUPLICATE KEY UPDATE cancel_requested=IF(VALUES(state) IN ('queued','running'),"               \
        " cancel_requested, 0), state=VALUES(state), attempts=VALUES(attempts),"                            \
        " max_attempts=VALUES(max_attempts), unit=VALUES(unit), started_at=VALUES(started_at),"             \
        " finished_at=VALUES(finished_at), run_after=VALUES(run_after), result=VALUES(result),"             \
        " exit_status=VALUES(exit_status), exit_signal=VALUES(exit_signal), cpu_usec=VALUES(cpu_usec),"     \
        " memory_peak=VALUES(memory_peak), error=VALUES(error), node=VALUES(node),"                         \
        " lease_until=VALUES(lease_until)"
#define PURGE_HEAD "DELETE FROM tasks WHERE state IN ('succeeded','cancelled') AND finished_at < "
#define PURGE_TAIL " ORDER BY state, finished_at, id LIMIT 1000"

typedef struct Write {
        StoreSqlKind kind;
        const char *values; /* NULL ends the list */
} Write;

typedef struct BatchCase {
        const char *name;
        Write writes[6];
        const char *want[6]; /* NULL ends the list */
} BatchCase;

static const BatchCase batch_cases[] = {
        {"one insert", {{STORE_SQL_INSERT, "(1)"}}, {INSERT_HEAD "(1)"}},
        {"inserts join one statement",
         {{STORE_SQL_INSERT, "(1)"}, {STORE_SQL_INSERT, "(2)"}, {STORE_SQL_INSERT, "(3)"}},
         {INSERT_HEAD "(1),\n(2),\n(3)"}},
        {"updates join one upsert",
         {{STORE_SQL_UPDATE, "(1)"}, {STORE_SQL_UPDATE, "(2)"}},
         {INSERT_HEAD "(1),\n(2)" ON_DUPLICATE}},
        {"an insert after updates starts a clean statement",
         {{STORE_SQL_UPDATE, "(1)"}, {STORE_SQL_INSERT, "(2)"}},
         {INSERT_HEAD "(1)" ON_DUPLICATE, INSERT_HEAD "(2)"}},
        {"an update after an insert is an upsert of its own",
         {{STORE_SQL_INSERT, "(1)"}, {STORE_SQL_UPDATE, "(1)"}},
         {INSERT_HEAD "(1)", INSERT_HEAD "(1)" ON_DUPLICATE}},
        {"deletes join one IN list, closed before what follows",
         {{STORE_SQL_DELETE, "4"}, {STORE_SQL_DELETE, "5"}, {STORE_SQL_UPDATE, "(6)"}},
         {"DELETE FROM tasks WHERE id IN (4,5)", INSERT_HEAD "(6)" ON_DUPLICATE}},
        {"a purge is always alone",
         {{STORE_SQL_PURGE, "'2023-11-14 22:13:20.000000'"},
          {STORE_SQL_PURGE, "'2023-11-14 22:13:21.000000'"},
          {STORE_SQL_DELETE, "7"}},
         {PURGE_HEAD "'2023-11-14 22:13:20.000000'" PURGE_TAIL,
          PURGE_HEAD "'2023-11-14 22:13:21.000000'" PURGE_TAIL, "DELETE FROM tasks WHERE id IN (7)"}},
        {"pauses join one insert that keeps the first, resumes one IN list",
         {{STORE_SQL_PAUSE, "(X'61',X'75',1)"},
          {STORE_SQL_PAUSE, "(X'62',X'75',2)"},
          {STORE_SQL_RESUME, "X'61'"},
          {STORE_SQL_RESUME, "X'62'"},
          {STORE_SQL_UPDATE, "(6)"}},
         {"INSERT INTO paused_tasks (task, paused_by, paused_at) VALUES (X'61',X'75',1),\n(X'62',X'75',2)"
          " ON DUPLICATE KEY UPDATE task=task",
          "DELETE FROM paused_tasks WHERE task IN (X'61',X'62')", INSERT_HEAD "(6)" ON_DUPLICATE}},
        {"every kind in turn",
         {{STORE_SQL_INSERT, "(1)"},
          {STORE_SQL_UPDATE, "(2)"},
          {STORE_SQL_DELETE, "3"},
          {STORE_SQL_PURGE, "'x'"},
          {STORE_SQL_INSERT, "(5)"}},
         {INSERT_HEAD "(1)", INSERT_HEAD "(2)" ON_DUPLICATE, "DELETE FROM tasks WHERE id IN (3)",
          PURGE_HEAD "'x'" PURGE_TAIL, INSERT_HEAD "(5)"}},
};

/* Runs writes through a statement as the store's batch does: a write that cannot join is preceded
 * by the end of the statement being built. Returns the statements, NULL-terminated. */
static char **run_batch(const Write *writes, size_t n_writes) {
        StoreSqlStatement st = {};
        char **out = calloc(n_writes + 2, sizeof(char *));
        size_t n = 0;
        const char *sql;
        size_t len;

        assert_non_null(out);
        for (size_t i = 0; i < n_writes && writes[i].values; i++) {
                if (!store_sql_statement_takes(&st, writes[i].kind)) {
                        assert_int_equal(store_sql_statement_end(&st, &sql, &len), 0);
                        assert_non_null(sql);
                        assert_int_equal(len, strlen(sql));
                        out[n++] = strdup(sql);
                }
                store_sql_statement_add(&st, writes[i].kind, writes[i].values);
        }
        assert_int_equal(store_sql_statement_end(&st, &sql, &len), 0);
        if (len > 0)
                out[n++] = strdup(sql);
        /* Ended and empty: nothing more to send. */
        assert_int_equal(store_sql_statement_end(&st, &sql, &len), 0);
        assert_null(sql);
        assert_int_equal(len, 0);
        store_sql_statement_done(&st);
        return out;
}

static void test_batch(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(batch_cases); i++) {
                const BatchCase *c = &batch_cases[i];
                _cleanup_(strv_freep) char **got = run_batch(c->writes, ELEMENTSOF(c->writes));
                size_t n = 0;

                print_message("batch: %s\n", c->name);
                for (; c->want[n]; n++) {
                        assert_non_null(got[n]);
                        assert_string_equal(got[n], c->want[n]);
                }
                assert_null(got[n]);
        }
}

static void test_batch_statement_size(void **state) {
        size_t big = STORE_SQL_STATEMENT_BYTES_MAX / 4 * 3;
        _cleanup_free_ char *values = malloc(big + 1);
        Write writes[3];
        _cleanup_(strv_freep) char **got = NULL;

        assert_non_null(values);
        memset(values, 'v', big);
        values[big] = 0;
        for (size_t i = 0; i < ELEMENTSOF(writes); i++)
                writes[i] = (Write){STORE_SQL_INSERT, values};

        /* The second joins a statement still below the limit; the third would go past it. */
        got = run_batch(writes, ELEMENTSOF(writes));
        assert_non_null(got[0]);
        assert_non_null(got[1]);
        assert_null(got[2]);
        assert_int_equal(strlen(got[0]), strlen(INSERT_HEAD) + 2 * big + 2);
        assert_int_equal(strlen(got[1]), strlen(INSERT_HEAD) + big);
}

/* ---- a loaded row, its record ---- */

#define N_COLUMNS 26

typedef struct LoadCase {
        const char *name;
        const char *fields[N_COLUMNS];
        size_t stdin_len; /* stdin's bytes (it may hold NUL); others are strings */
        bool bad_args;
        TaskRecord want; /* args compared through want_args */
        const char *want_args[4];
} LoadCase;

static const LoadCase load_cases[] = {
        {
                .name = "every column",
                .fields = {"17",
                           "mail",
                           NULL,
                           "[\"a b\",\"c\"]",
                           "in",
                           NULL,
                           "k",
                           "uid:33",
                           "5",
                           "running",
                           "1",
                           "3",
                           "asynctask-17.service",
                           "1700000000123456",
                           "1700000001000000",
                           NULL,
                           "1700000000123456",
                           "exit-code",
                           "3",
                           "9",
                           "1234",
                           "5678",
                           "boom",
                           "web2",
                           "1"},
                .stdin_len = 2,
                .want = {.id = 17,
                         .task = (char *) "mail",
                         .n_args = 2,
                         .stdin_data = (char *) "in",
                         .stdin_len = 2,
                         .key = (char *) "k",
                         .submitter = (char *) "uid:33",
                         .priority = 5,
                         .state = TASK_RUNNING,
                         .attempts = 1,
                         .max_attempts = 3,
                         .unit = (char *) "asynctask-17.service",
                         .created_at = T0 + 123456,
                         .started_at = T0 + 1000000,
                         .run_after = T0 + 123456,
                         .last = {.error = (char *) "boom",
                                  .cpu_usec = 1234,
                                  .memory_peak = 5678,
                                  .exit_status = 3,
                                  .signal = 9,
                                  .has_exit_status = true,
                                  .result = "exit-code"}},
                .want_args = {"a b", "c"},
        },
        {
                .name = "a command with binary stdin; NULLs read as none; an unknown state as failed",
                .fields = {"18", NULL, "echo hi", "[]", "a\0b", NULL, NULL, "tcp:127.0.0.1", NULL,
                           "exploded", NULL, NULL, NULL, "1700000000000000", NULL, NULL, "1700000000000000"},
                .stdin_len = 3,
                .want = {.id = 18,
                         .cmd = (char *) "echo hi",
                         .stdin_data = (char *) "a\0b",
                         .stdin_len = 3,
                         .submitter = (char *) "tcp:127.0.0.1",
                         .state = TASK_FAILED,
                         .created_at = T0,
                         .run_after = T0},
        },
        {
                .name = "a queued record read without its stdin: its length only",
                .fields = {"22", "mail", NULL, "[]", NULL, "16384", NULL, "uid:0", "0", "queued", "0", "1"},
                .want = {.id = 22,
                         .task = (char *) "mail",
                         .stdin_len = 16384,
                         .submitter = (char *) "uid:0",
                         .state = TASK_QUEUED,
                         .max_attempts = 1},
        },
        {
                .name = "args that are not an array load as none",
                .fields = {"19", "mail", NULL, "{\"a\":1}", NULL, NULL, NULL, "uid:0", "0", "queued", "0",
                           "1"},
                .bad_args = true,
                .want = {.id = 19,
                         .task = (char *) "mail",
                         .submitter = (char *) "uid:0",
                         .state = TASK_QUEUED,
                         .max_attempts = 1},
        },
        {
                .name = "args with a non-string load as far as they are strings",
                .fields = {"20", "mail", NULL, "[\"x\",1,\"y\"]", NULL, NULL, NULL, "uid:0", "0",
                           "succeeded", "1", "1"},
                .bad_args = true,
                .want = {.id = 20,
                         .task = (char *) "mail",
                         .n_args = 1,
                         .submitter = (char *) "uid:0",
                         .state = TASK_SUCCEEDED,
                         .attempts = 1,
                         .max_attempts = 1},
                .want_args = {"x"},
        },
        {
                .name = "a result word longer than a record keeps is cut",
                .fields = {"21", "mail", NULL, "[]", NULL, NULL, NULL, "uid:0", "0", "failed", "1", "1",
                           NULL, NULL, NULL, NULL, NULL, "a-result-word-of-thirty-bytes"},
                .want = {.id = 21,
                         .task = (char *) "mail",
                         .submitter = (char *) "uid:0",
                         .state = TASK_FAILED,
                         .attempts = 1,
                         .max_attempts = 1,
                         .last = {.result = "a-result-word-of-thirt"}},
        },
};

static void assert_string_or_null(const char *got, const char *want) {
        if (want)
                assert_string_equal(got, want);
        else
                assert_null(got);
}

static void assert_record(const TaskRecord *t, const LoadCase *c) {
        const TaskRecord *w = &c->want;

        assert_int_equal(t->id, w->id);
        assert_string_or_null(t->task, w->task);
        assert_string_or_null(t->cmd, w->cmd);
        assert_int_equal(t->n_args, w->n_args);
        for (size_t i = 0; i < w->n_args; i++)
                assert_string_equal(t->args[i], c->want_args[i]);
        if (t->args)
                assert_null(t->args[t->n_args]);
        assert_int_equal(t->stdin_len, w->stdin_len);
        if (w->stdin_data)
                assert_memory_equal(t->stdin_data, w->stdin_data, w->stdin_len);
        else
                assert_null(t->stdin_data);
        assert_string_or_null(t->key, w->key);
        assert_string_or_null(t->submitter, w->submitter);
        assert_int_equal(t->priority, w->priority);
        assert_int_equal(t->state, w->state);
        assert_int_equal(t->attempts, w->attempts);
        assert_int_equal(t->max_attempts, w->max_attempts);
        assert_string_or_null(t->unit, w->unit);
        assert_int_equal(t->created_at, w->created_at);
        assert_int_equal(t->started_at, w->started_at);
        assert_int_equal(t->finished_at, w->finished_at);
        assert_int_equal(t->run_after, w->run_after);
        assert_string_equal(t->last.result, w->last.result);
        assert_int_equal(t->last.has_exit_status, w->last.has_exit_status);
        assert_int_equal(t->last.exit_status, w->last.exit_status);
        assert_int_equal(t->last.signal, w->last.signal);
        assert_int_equal(t->last.cpu_usec, w->last.cpu_usec);
        assert_int_equal(t->last.memory_peak, w->last.memory_peak);
        assert_string_or_null(t->last.error, w->last.error);
        assert_false(t->launch_pending);
        assert_null(t->priv);
}

static void test_record_from_row(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(load_cases); i++) {
                const LoadCase *c = &load_cases[i];
                _cleanup_(task_record_freep) TaskRecord *t = NULL;
                unsigned long lengths[N_COLUMNS] = {};
                char *fields[N_COLUMNS];
                bool bad_args = !c->bad_args;

                print_message("load: %s\n", c->name);
                for (size_t k = 0; k < N_COLUMNS; k++) {
                        fields[k] = (char *) c->fields[k];
                        lengths[k] = c->fields[k] ? strlen(c->fields[k]) : 0;
                }
                lengths[4] = c->stdin_len; /* stdin */
                assert_int_equal(store_sql_record_from_row(fields, lengths, &t, &bad_args), 0);
                assert_int_equal(bad_args, c->bad_args);
                assert_record(t, c);
                /* The row's node and whether its lease is live (columns 23 and 24). */
                assert_string_or_null(t->node, c->fields[23]);
                assert_int_equal(t->lease_live, c->fields[24] && streq(c->fields[24], "1"));
        }
}

/* ---- schema ---- */

static void test_paused_values(void **state) {
        _cleanup_free_ char *row = store_sql_paused_row("resize", "uid:0", 1700000000000000ULL);
        _cleanup_free_ char *name = store_sql_task_name("resize");

        assert_string_equal(row, "(X'726573697A65',X'7569643A30','2023-11-14 22:13:20.000000')");
        assert_string_equal(name, "X'726573697A65'");
}

static bool endswith(const char *s, const char *suffix) {
        size_t n = strlen(s), m = strlen(suffix);

        return n >= m && streq(s + n - m, suffix);
}

/* The reads: what they select, and values (keys, submitters) as hex literals. */
static void test_read_queries(void **state) {
        _cleanup_free_ char *page = store_sql_page_query(TASK_FAILED, 41, 50);
        _cleanup_free_ char *any = store_sql_page_query(-1, 0, 7);
        _cleanup_free_ char *id = store_sql_id_query(9007199254740991ULL);
        _cleanup_free_ char *key = store_sql_key_query("uid:33", "k'1");
        _cleanup_free_ char *queue = store_sql_queue_query(10000, NULL);
        _cleanup_free_ char *stdin_of = store_sql_stdin_query((const uint64_t[]){3, UINT64_MAX}, 2);
        _cleanup_free_ char *unfinished_failed = store_sql_unfinished_of_state_query(TASK_FAILED);
        _cleanup_free_ char *retry =
                store_sql_retry_query(TASK_CANCELLED, (uint64_t) 1700000000 * USEC_PER_SEC);
        _cleanup_free_ char *running = store_sql_running_query("web1");

        assert_non_null(page);
        assert_non_null(strstr(page, "SELECT id, task, cmd, args, NULL, NULL, idem_key,"));
        assert_true(endswith(page, " FROM tasks WHERE id > 41 AND state = 'failed' ORDER BY id LIMIT 50"));
        assert_true(endswith(any, " FROM tasks WHERE id > 0 ORDER BY id LIMIT 7"));
        /* A record is read without its stdin, which the launch reads (store_sql_stdin_query()). */
        assert_non_null(strstr(id, "SELECT id, task, cmd, args, NULL, stdin_bytes, idem_key,"));
        assert_non_null(strstr(queue, "SELECT id, task, cmd, args, NULL, stdin_bytes, idem_key,"));
        assert_null(strstr(queue, " stdin,"));
        assert_null(strstr(running, " stdin,"));
        assert_true(endswith(
                running, " WHERE state = 'running' AND (node IS NULL OR node = X'77656231') ORDER BY id"));
        assert_string_equal(stdin_of, "SELECT id, stdin FROM tasks WHERE id IN (3,18446744073709551615)");
        assert_string_equal(unfinished_failed,
                            "SELECT submitter, COUNT(*), COALESCE(SUM(stdin_bytes), 0) "
                            "FROM tasks WHERE state = 'failed' AND NOT (parent_id <=> id) "
                            "GROUP BY submitter");
        assert_true(
                endswith(id, " WHERE id = 9007199254740991 OR parent_id = 9007199254740991 ORDER BY id"));
        assert_true(endswith(key, " WHERE submitter = X'7569643A3333' AND idem_key = X'6B2731'"));
        assert_non_null(strstr(queue,
                               "WHERE state = 'queued' AND run_after <= UTC_TIMESTAMP(6) ORDER BY priority "
                               "DESC, run_after, id LIMIT 10000) UNION ALL ("));
        assert_true(endswith(queue,
                             "WHERE state = 'queued' AND run_after > UTC_TIMESTAMP(6) ORDER BY run_after, "
                             "id LIMIT 10000)"));
        assert_null(strstr(queue, "NOT IN"));

        /* Paused names are left out of both parts; raw commands (task NULL) are not. */
        PausedTasks paused = {};
        assert_int_equal(paused_tasks_add(&paused, "b", "uid:0", 1), 1);
        assert_int_equal(paused_tasks_add(&paused, "a", "uid:0", 1), 1);
        _cleanup_free_ char *skipping = store_sql_queue_query(500, &paused);
        assert_non_null(strstr(skipping, "run_after <= UTC_TIMESTAMP(6) AND (task IS NULL OR task NOT IN "
                                         "(X'61', X'62')) ORDER BY priority DESC, run_after, id LIMIT 500) "
                                         "UNION ALL ("));
        assert_true(endswith(skipping,
                             "run_after > UTC_TIMESTAMP(6) AND (task IS NULL OR task NOT IN (X'61', "
                             "X'62')) ORDER BY run_after, id LIMIT 500)"));
        paused_tasks_done(&paused);
        assert_string_equal(retry, "UPDATE tasks SET state = 'queued', attempts = 0, finished_at = NULL, "
                                   "node = IF(parent_id IS NULL, NULL, node), lease_until = NULL, "
                                   "run_after = '2023-11-14 22:13:20.000000' WHERE "
                                   "state = 'cancelled' AND NOT (parent_id <=> id)");
}

static void test_schema_steps(void **state) {
        char joined[8192] = "";

        for (unsigned v = 0; v < STORE_SCHEMA_VERSION; v++) {
                const char *const *step = store_schema_step(v);
                char version[32];
                size_t n = 0;

                assert_non_null(step);
                for (; step[n]; n++) {
                        assert_true(strlen(joined) + strlen(step[n]) + 2 < sizeof(joined));
                        strcat(joined, step[n]);
                        strcat(joined, "\n");
                }
                /* Its last statement records the version it reaches. */
                assert_true(n >= 2);
                assert_non_null(strstr(step[n - 1], "asynctask_schema"));
                snprintf(version, sizeof(version), "%u", v + 1);
                assert_non_null(strstr(step[n - 1], version));
        }
        assert_null(store_schema_step(STORE_SCHEMA_VERSION));
        assert_null(store_schema_step(STORE_SCHEMA_VERSION + 1));

        /* Every column the store writes exists once every step ran. */
        _cleanup_free_ char *columns = strdup(store_sql_row_columns);
        for (char *save = NULL, *c = strtok_r(columns, ", ", &save); c; c = strtok_r(NULL, ", ", &save)) {
                char as_created[64], as_added[64];

                snprintf(as_created, sizeof(as_created), " %s ", c);
                snprintf(as_added, sizeof(as_added), "ADD COLUMN %s ", c);
                print_message("column %s\n", c);
                assert_true(strstr(joined, as_created) || strstr(joined, as_added));
        }
}

/* An every_host row is a row with its parent_id after it; the parents' UPDATE is one parent's or all. */
static void test_every_host_sql(void **state) {
        const TaskRecord t = {.id = 7,
                              .task = (char *) "clear",
                              .args = (char *[]){NULL},
                              .submitter = (char *) "uid:0",
                              .state = TASK_QUEUED,
                              .max_attempts = 1,
                              .created_at = 86400000000ULL};
        _cleanup_free_ char *plain = store_sql_row(&t, "web1", 30);
        _cleanup_free_ char *family = store_sql_family_row(&t, "web1", 30, 6);
        _cleanup_free_ char *one = store_sql_settle_parents(6);
        _cleanup_free_ char *all = store_sql_settle_parents(0);

        assert_non_null(plain);
        assert_non_null(family);
        assert_int_equal(strlen(family), strlen(plain) + 2);
        assert_memory_equal(family, plain, strlen(plain) - 1);
        assert_true(endswith(family, ",6)"));
        assert_non_null(strstr(one, " AND q.id = 6 GROUP BY c.parent_id"));
        assert_null(strstr(all, " AND q.id = "));
        /* Nothing finishes while a run is open; only running parents change. */
        for (const char *sql = one; sql; sql = sql == one ? all : NULL) {
                assert_non_null(strstr(sql, "HAVING SUM(c.state IN ('queued','running')) = 0"));
                assert_true(endswith(sql, " WHERE p.node = '*' AND p.state = 'running'"));
                assert_non_null(strstr(sql, "q.node = '*'"));
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_row),
                cmocka_unit_test(test_row_claimed),
                cmocka_unit_test(test_fenced_update),
                cmocka_unit_test(test_datetime_and_id),
                cmocka_unit_test(test_batch),
                cmocka_unit_test(test_batch_statement_size),
                cmocka_unit_test(test_record_from_row),
                cmocka_unit_test(test_paused_values),
                cmocka_unit_test(test_read_queries),
                cmocka_unit_test(test_schema_steps),
                cmocka_unit_test(test_every_host_sql),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
