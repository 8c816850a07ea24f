/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Configuration: the main JSON file plus tasks.d/NAME.json files beside it (read in name order). Both
 * daemons load it with the same code; each error names the file and the key. A Config is
 * immutable once loaded: reload builds a new one and swaps it in only if it is valid.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/allow.h"
#include "shared/config-task.h"
#include "shared/paths.h"
#include "shared/util.h"

typedef enum StoreType {
        STORE_MEMORY,
        STORE_MYSQL,
        _STORE_TYPE_MAX,
        _STORE_TYPE_INVALID = -EINVAL,
} StoreType;

typedef enum ExecutorType {
        EXECUTOR_AUTO,
        EXECUTOR_SYSTEMD,
        EXECUTOR_DIRECT,
        _EXECUTOR_TYPE_MAX,
        _EXECUTOR_TYPE_INVALID = -EINVAL,
} ExecutorType;

typedef struct PhpClass {
        char *class_name;
        char *task;
} PhpClass;

typedef struct Config {
        char *path;      /* main file */
        char *tasks_dir; /* <dirname(path)>/tasks.d */

        StoreType store_type;
        char *store_option_file; /* mysql: MYSQL_READ_DEFAULT_FILE */
        char *store_group;       /* mysql: MYSQL_READ_DEFAULT_GROUP; default "asynctask" */
        unsigned retention_days; /* default 7 */
        uint64_t max_records;    /* finished records kept (memory) or cached (mysql); default 100000 */

        char *launcher_socket; /* default /run/asynctask/launcher.sock */
        ExecutorType executor; /* default auto */

        unsigned max_running;              /* default 16 */
        size_t max_frame_bytes;            /* default 65536 */
        unsigned max_connections;          /* default 1024 */
        unsigned max_connections_per_user; /* default 256: per uid, or per address for a TCP peer
                                            * known only by it; admins over the unix socket are exempt */
        uint64_t frame_timeout_sec;        /* default 10; 0: none */
        unsigned max_queued_per_submitter; /* default 10000 unfinished tasks; admins are exempt */
        uint64_t max_queued_stdin_bytes_per_submitter; /* default 64 MiB */
        uint64_t idle_exit_sec;                        /* default 0: never */

        Allow admins;     /* default: users ["root"] */
        char *on_failure; /* the task submitted when a task without an "on_failure" of its own fails for
                           * good; NULL: none */

        /* Several hosts on one database (MySQL store). */
        char *node;                /* this host's name among them; default: the host name */
        uint64_t heartbeat_sec;    /* default 2 */
        uint64_t node_timeout_sec; /* default 30: a node silent this long is dead */

        TaskDef *tasks; /* from tasks.d, in file name order */
        size_t n_tasks;
        TaskDef *commands; /* from "commands" */
        size_t n_commands;
        PhpClass *php_classes;
        size_t n_php_classes;
} Config;

/* Called once per problem found; file is the path of the offending file, key a JSON path such as
 * "backoff_sec[2]" (or "" for the file as a whole). */
typedef JsonReaderErrorFn ConfigErrorFn;

/* Loads and validates everything. On success returns 0 and *ret. If anything is wrong, reports
 * every problem it can find through on_error (may be NULL) and returns -EINVAL (or -errno for I/O,
 * -ENOMEM); *ret is untouched. */
int config_load(const char *path, ConfigErrorFn on_error, void *userdata, Config **ret);
/* The launcher's load: as config_load(), and the main file, the tasks.d directory and each file in
 * it must be owned by owner (the uid the launcher runs as: root in production) and writable by no one
 * else (no group or other write permission); each that is not is reported and refused. */
int config_load_trusted(const char *path, uid_t owner, ConfigErrorFn on_error, void *userdata, Config **ret);
Config *config_free(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);

/* With rd->trusted_only, whether a tasks.d directory itself is json_reader_trusted(): a missing one is,
 * as it lists nothing. 0, 1 when it is not (reported to rd), or -errno. */
int config_check_tasks_dir(JsonReader *rd, const char *dir);

/* The names of the task files in a tasks.d directory, as config_load() reads them: *.json, not hidden,
 * in bytewise name order. A missing directory is an empty list. *ret is NULL-terminated (strv_free()). */
int config_list_task_files(const char *dir, char ***ret, size_t *ret_n);

const TaskDef *config_find_task(const Config *c, const char *name);
/* The task to submit when one of def's fails for good (its "on_failure", else the main file's), or
 * NULL for none. */
const char *config_on_failure(const Config *c, const TaskDef *def);
/* Whether def's runs may start on node (its "hosts", when it has any, names it). */
bool config_task_runs_on(const TaskDef *def, const char *node);
/* Byte-for-byte match against the commands list. */
const TaskDef *config_find_command(const Config *c, const char *cmd);
/* php_classes lookup: returns the task name mapped to the class, or NULL. */
const char *config_find_php_class(const Config *c, const char *class_name);
