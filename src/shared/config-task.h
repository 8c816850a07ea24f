/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One task definition, from a tasks.d file or an entry of the main file's "commands": its program,
 * user and group (resolved when read), limits, retries, environment, allow list and sandbox. Both
 * daemons read tasks with this code, so they agree on what a task is.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "shared/allow.h"
#include "shared/config-schedule.h"
#include "shared/json-reader.h"
#include "shared/util.h"

/* How a task's unit is sandboxed (systemd executor). Defaults are strict; a task relaxes what it
 * needs with "sandbox": {...}. The direct executor cannot apply these and says so at start. */
typedef struct Sandbox {
        /* "profile": "strict" (or "sandbox": "strict"): every protection, also those a non-root task
         * without capabilities gains nothing from (docs/systemd.md, "What the sandbox costs"). */
        bool strict;
        char *protect_system;    /* "strict" (default), "full", "true", "false" */
        char *protect_home;      /* "true" (default), "read-only", "tmpfs", "false" */
        bool private_tmp;        /* default true */
        bool private_devices;    /* default true */
        bool private_network;    /* default false */
        bool no_new_privileges;  /* default true */
        char **read_write_paths; /* NULL-terminated, may be empty */
        size_t n_read_write_paths;
} Sandbox;

/* A systemd credential of a task: PID 1 reads the file at path (as root) when a run starts and gives it
 * to the task as $CREDENTIALS_DIRECTORY/<name>, readable by the task's user only (LoadCredential=). */
typedef struct Credential {
        char *name; /* 1-255 of A-Z a-z 0-9 _ . -, not "." or ".." */
        char *path; /* absolute and normalized */
} Credential;

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
        char **environment;      /* "KEY=value", NULL-terminated; not secret (systemctl show) */
        size_t n_environment;
        Credential *credentials; /* "credentials": secrets, delivered by the systemd executor only */
        size_t n_credentials;
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
        TaskSchedule schedule;
        /* "on_failure": the task submitted when one of this one's fails for good (docs/operations.md,
         * "Alerts"); NULL: the main file's "on_failure", if any. */
        char *on_failure;
        /* Several hosts on one database (docs/cluster.md). "on_lost": a run whose node died is queued
         * again (while attempts remain) or failed with result "lost". "hosts": the nodes that may run
         * it (none: any). "on": "every_host" makes each submission a parent with one child per live
         * node (of "hosts", if given); "any_host" (default) one run anywhere. */
        bool on_lost_fail;
        bool every_host;
        char **hosts; /* NULL-terminated, may be NULL */
        size_t n_hosts;
        char *source; /* file it came from, for messages */
} TaskDef;

/* Reads the object of one tasks.d file (rd->file) into *t, which the caller has zeroed. Every
 * problem is reported to rd; whatever could be read is in *t either way, for config_task_done(). */
void config_task_parse(JsonReader *rd, const cJSON *obj, TaskDef *t);
/* Reads only what a task's timer is made of: "name", "max_args" and the schedule keys, and checks
 * nothing else of the file. For asynctask-generator, which runs at boot, before users and groups
 * can be looked up; the daemons read the whole file with config_task_parse(). */
void config_task_parse_schedule_only(JsonReader *rd, const cJSON *obj, TaskDef *t);

/* The same for the "commands" entry at path ("commands[2]"): the command string is the task's name,
 * run by /bin/sh -c. */
void config_task_parse_command(JsonReader *rd, const cJSON *obj, const char *path, TaskDef *t);

/* A task's or command's "allow" at path; with_networks false reads the main file's "admins" (TCP
 * peers are never admins, so it has no networks). Users and groups are looked up now. */
void config_task_parse_allow(JsonReader *rd, const cJSON *obj, const char *path, bool with_networks,
                             Allow *ret);

/* Frees what *t holds (a TaskDef in an array); config_task_free() also frees t itself. */
void config_task_done(TaskDef *t);
TaskDef *config_task_free(TaskDef *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(TaskDef *, config_task_free);

/* Whether a node name ("node", an entry of "hosts") is valid: 1-NODE_NAME_BYTES_MAX of
 * A-Z a-z 0-9 _ . - */
bool config_node_name_valid(const char *s);

/* "512M" -> 536870912 (K, M, G, T are powers of 1024; a plain number is bytes). */
int config_task_parse_size(const char *s, uint64_t *ret);

/* Seconds to wait before the next attempt after `failed_attempts` failures (1-based), using the
 * task's backoff_sec list (its last value repeats). */
uint64_t config_task_backoff_sec(const TaskDef *t, unsigned failed_attempts);
