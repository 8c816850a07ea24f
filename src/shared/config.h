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
#include "shared/paths.h"

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

/* How a task's unit is sandboxed (systemd executor). Defaults are strict; a task relaxes what it
 * needs with "sandbox": {...}. The direct executor cannot apply these and says so at start. */
typedef struct Sandbox {
        char *protect_system;    /* "strict" (default), "full", "true", "false" */
        char *protect_home;      /* "true" (default), "read-only", "tmpfs", "false" */
        bool private_tmp;        /* default true */
        bool private_devices;    /* default true */
        bool private_network;    /* default false */
        bool no_new_privileges;  /* default true */
        char **read_write_paths; /* NULL-terminated, may be empty */
        size_t n_read_write_paths;
} Sandbox;

typedef struct TaskDef {
        char *name;      /* tasks.d: "name"; commands: the command string itself */
        bool is_command; /* from "commands": exec is /bin/sh -c <name> */
        char **exec;     /* NULL-terminated argv prefix */
        size_t n_exec;
        unsigned max_args;       /* client args allowed; default 0 */
        char *user;              /* default "nobody" */
        uid_t uid;               /* resolved at load */
        char *group;             /* default: the user's primary group */
        gid_t gid;               /* resolved at load */
        char *working_directory; /* NULL: "/" */
        char **environment;      /* "KEY=value", NULL-terminated */
        size_t n_environment;
        uint64_t timeout_sec; /* 0: none */
        uint64_t memory_max;  /* bytes; 0: none. Config accepts "512M", "1G", "65536" */
        unsigned cpu_quota;   /* percent, may exceed 100; 0: none. Config: "50%" */
        int nice;
        bool has_nice;
        unsigned max_attempts; /* default 1 */
        uint64_t *backoff_sec; /* delay before attempt 2, 3, ...; the last repeats. Default {10} */
        size_t n_backoff;
        unsigned concurrency; /* 0: unlimited (max_running still applies) */
        Allow allow;
        Sandbox sandbox;
        char *source; /* file it came from, for messages */
} TaskDef;

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

        char *launcher_socket; /* default /run/asynctask/launcher.sock */
        ExecutorType executor; /* default auto */

        unsigned max_running;     /* default 16 */
        size_t max_frame_bytes;   /* default 65536 */
        unsigned max_connections; /* default 1024 */
        uint64_t idle_exit_sec;   /* default 0: never */

        Allow admins; /* default: users ["root"] */

        TaskDef *tasks; /* from tasks.d, in file name order */
        size_t n_tasks;
        TaskDef *commands; /* from "commands" */
        size_t n_commands;
        PhpClass *php_classes;
        size_t n_php_classes;
} Config;

/* Called once per problem found; file is the path of the offending file, key a JSON path such as
 * "tasks.d/resize.json" / "backoff_sec[2]" (or "" for the file as a whole). */
typedef void (*ConfigErrorFn)(const char *file, const char *key, const char *message, void *userdata);

/* Loads and validates everything. On success returns 0 and *ret. If anything is wrong, reports
 * every problem it can find through on_error (may be NULL) and returns -EINVAL (or -errno for I/O,
 * -ENOMEM); *ret is untouched. */
int config_load(const char *path, ConfigErrorFn on_error, void *userdata, Config **ret);
Config *config_free(Config *c);

const TaskDef *config_find_task(const Config *c, const char *name);
/* Byte-for-byte match against the commands list. */
const TaskDef *config_find_command(const Config *c, const char *cmd);
/* php_classes lookup: returns the task name mapped to the class, or NULL. */
const char *config_find_php_class(const Config *c, const char *class_name);

/* "512M" -> 536870912 (K, M, G, T are powers of 1024; a plain number is bytes). */
int parse_size(const char *s, uint64_t *ret);

/* Seconds to wait before the next attempt after `failed_attempts` failures (1-based), using the
 * task's backoff_sec list (its last value repeats). */
uint64_t task_backoff_sec(const TaskDef *t, unsigned failed_attempts);
