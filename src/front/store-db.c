/* SPDX-License-Identifier: MIT */
/*
 * The MySQL store's connection: connecting with the session settings the SQL text relies on, running
 * a statement and sorting its error into "connection lost", "not now" and "never", and creating or
 * migrating the schema under its lock. Apart from the thread (store-thread.c) and the queue
 * (store-mysql.c) because it is what a second connection (another host) would reuse as it is; it
 * knows the Store only for its handle, its credentials and its last error.
 */

#include <errno.h>
#include <errmsg.h>
#include <mysqld_error.h>

#include "front/store-mysql-internal.h"
#include "front/store-schema.h"
#include "shared/log.h"
#include "shared/message-ids.h"
#include "shared/util.h"

bool store_db_is_connection_error(unsigned e) {
        return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST || e == CR_CONNECTION_ERROR ||
               e == CR_CONN_HOST_ERROR || e == ER_CONNECTION_KILLED || e == ER_SERVER_SHUTDOWN ||
               e == CR_UNKNOWN_HOST || e == CR_COMMANDS_OUT_OF_SYNC;
}

/* Server errors that mean "not now" rather than "never": the disk or a table is full, memory or locks
 * ran out, the server is read-only for a while, or a Galera node is not (or no longer) part of the
 * primary component: a node that is joining, or cut off from the others, answers every statement with
 * ER_UNKNOWN_COM_ERROR ("WSREP has not yet prepared node for application use") until it is synced. A
 * change that meets one is written again later and a new task is refused, as when the connection is
 * lost: neither is dropped. (A deadlock is apart: -EDEADLK, run again at once by the store's thread.) */
static bool is_transient_error(unsigned e) {
        return e == ER_RECORD_FILE_FULL || e == ER_DISK_FULL || e == ER_ERROR_ON_WRITE ||
               e == ER_OUTOFMEMORY || e == ER_OUT_OF_RESOURCES || e == ER_LOCK_WAIT_TIMEOUT ||
               e == ER_LOCK_TABLE_FULL || e == ER_OPTION_PREVENTS_STATEMENT || e == ER_UNKNOWN_COM_ERROR;
}

void store_db_close(Store *s) {
        if (s->db) {
                store_mariadb->mysql_close(s->db);
                s->db = NULL;
        }
        atomic_store(&s->available, false);
}

int store_db_query(Store *s, const char *sql, size_t len) {
        if (store_mariadb->mysql_real_query(s->db, sql, len) != 0) {
                unsigned e = store_mariadb->mysql_errno(s->db);
                log_debug("mysql: %s (%u) in: %.200s", store_mariadb->mysql_error(s->db), e, sql);
                snprintf(s->last_error, sizeof(s->last_error), "%s", store_mariadb->mysql_error(s->db));
                if (store_db_is_connection_error(e)) {
                        log_event(LOG_WARNING, MESSAGE_ID_STORE_DOWN, "mysql: connection lost: %s",
                                  store_mariadb->mysql_error(s->db));
                        store_db_close(s);
                        return -ENOTCONN;
                }
                if (e == ER_LOCK_DEADLOCK)
                        return -EDEADLK;
                if (is_transient_error(e))
                        return -EAGAIN;
                return e == ER_DUP_ENTRY ? -EEXIST : -EIO;
        }
        /* Statements that return rows are read by their callers; others have none. */
        return 0;
}

int store_db_exec(Store *s, const char *sql) {
        return store_db_query(s, sql, strlen(sql));
}

MYSQL_RES *store_db_result(Store *s, const char *sql, int *ret_error) {
        MYSQL_RES *res;
        int r = store_db_exec(s, sql);

        if (r < 0) {
                *ret_error = r;
                return NULL;
        }
        res = store_mariadb->mysql_store_result(s->db);
        if (!res)
                *ret_error = -EIO;
        return res;
}

int store_db_connect(Store *s, char *errbuf, size_t errlen) {
        unsigned timeout_connect = 5, timeout_rw = 30;
        MYSQL *m;

        store_db_close(s);
        m = store_mariadb->mysql_init(NULL);
        if (!m)
                return -ENOMEM;
        (void) store_mariadb->mysql_optionsv(m, MYSQL_READ_DEFAULT_FILE, s->option_file);
        (void) store_mariadb->mysql_optionsv(m, MYSQL_READ_DEFAULT_GROUP, s->group);
        (void) store_mariadb->mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_connect);
        (void) store_mariadb->mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &timeout_rw);
        (void) store_mariadb->mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &timeout_rw);
        (void) store_mariadb->mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
        if (!store_mariadb->mysql_real_connect(m, NULL, NULL, NULL, NULL, 0, NULL, CLIENT_FOUND_ROWS)) {
                snprintf(errbuf, errlen, "%s", store_mariadb->mysql_error(m));
                store_mariadb->mysql_close(m);
                return -ECONNREFUSED;
        }
        s->db = m;
        if (store_db_exec(s, "SET SESSION time_zone = '+00:00', SESSION sql_mode = 'STRICT_ALL_TABLES,"
                             "NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION', SESSION autocommit = 1") < 0) {
                snprintf(errbuf, errlen, "cannot set session: %s",
                         s->db ? store_mariadb->mysql_error(s->db) : "lost");
                store_db_close(s);
                return -EIO;
        }
        atomic_store(&s->available, true);
        return 0;
}

/* Runs a statement that returns one integer (or none): *ret = value, or -ENOENT for no row. */
int store_db_query_u64(Store *s, const char *sql, uint64_t *ret) {
        MYSQL_RES *res;
        MYSQL_ROW row;
        int r;

        r = store_db_exec(s, sql);
        if (r < 0)
                return r;
        res = store_mariadb->mysql_store_result(s->db);
        if (!res)
                return -EIO;
        row = store_mariadb->mysql_fetch_row(res);
        if (!row || !row[0]) {
                store_mariadb->mysql_free_result(res);
                return -ENOENT;
        }
        *ret = strtoull(row[0], NULL, 10);
        store_mariadb->mysql_free_result(res);
        return 0;
}

/* Runs a NULL-terminated list of statements, stopping at the first that fails. */
static int db_exec_all(Store *s, const char *const *statements) {
        for (size_t i = 0; statements[i]; i++) {
                int r = store_db_exec(s, statements[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Creates or migrates the schema up to STORE_SCHEMA_VERSION; the caller holds the schema lock. */
static int schema_upgrade(Store *s, char *errbuf, size_t errlen) {
        uint64_t version = 0;
        int r;

        r = store_db_exec(s, store_schema_version_table);
        if (r >= 0) {
                r = store_db_query_u64(s, store_schema_version_query, &version);
                if (r == -ENOENT) {
                        /* A new database: create the first layout, then migrate like any other. */
                        version = 0;
                        r = 0;
                }
        }
        if (r >= 0 && version > STORE_SCHEMA_VERSION) {
                snprintf(errbuf, errlen,
                         "the database has schema version %llu, newer than this asynctask knows (%d)",
                         (unsigned long long) version, STORE_SCHEMA_VERSION);
                return -EPROTONOSUPPORT;
        }
        for (; r >= 0 && version < STORE_SCHEMA_VERSION; version++) {
                if (version > 0)
                        log_notice("mysql: migrating schema from version %llu to %llu",
                                   (unsigned long long) version, (unsigned long long) version + 1);
                r = db_exec_all(s, store_schema_step((unsigned) version));
        }
        if (r < 0)
                snprintf(errbuf, errlen, "schema: %s",
                         s->db ? store_mariadb->mysql_error(s->db) : "connection lost");
        return r;
}

int store_db_migrate(Store *s, char *errbuf, size_t errlen) {
        uint64_t locked = 0;
        int r;

        r = store_db_query_u64(s, store_schema_lock, &locked);
        if (r < 0 || locked != 1) {
                snprintf(errbuf, errlen, "cannot take the schema lock: %s",
                         s->db ? store_mariadb->mysql_error(s->db) : "lost");
                return r < 0 ? r : -EBUSY;
        }
        r = schema_upgrade(s, errbuf, errlen);
        if (s->db)
                (void) store_db_exec(s, store_schema_unlock);
        return r;
}
