/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The command line of the `asynctask` client: argv in, a validated CliOptions out (or a message
 * saying what is wrong), and the JSON request each subcommand sends. No I/O: the caller reads
 * files and the environment and talks to the daemon.
 */

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/limits.h"

typedef enum CliCommand {
        CLI_HELP, /* --help, "help", or "<command> --help" */
        CLI_VERSION,
        CLI_SUBMIT,
        CLI_STATUS,
        CLI_WAIT,
        CLI_CANCEL,
        CLI_LIST,
        CLI_RETRY,
        CLI_FORGET,
        CLI_LOGS,
        CLI_STATS,
        CLI_PING,
        CLI_RELOAD,
        CLI_SCHEDULES,
        CLI_PAUSE,
        CLI_RESUME,
        CLI_DRAIN,
        CLI_UNDRAIN,
        CLI_METRICS,
        _CLI_COMMAND_MAX,
        _CLI_COMMAND_INVALID = -EINVAL,
} CliCommand;

/* Strings point into argv (or the environment); nothing here is owned. */
typedef struct CliOptions {
        CliCommand command;

        /* global */
        const char *socket_path; /* --socket, else $ASYNCTASK_SOCKET, else FRONT_SOCKET_DEFAULT */
        const char *tcp;         /* --tcp HOST:PORT (checked); when set, socket_path is not used */
        bool json;

        /* submit; pause, resume */
        const char *task;
        char *const *args; /* n_args strings after TASK, taken literally */
        size_t n_args;
        const char *cmd; /* --cmd */
        const char *key;
        uint64_t delay_sec;
        bool has_delay;
        int priority;
        bool has_priority;
        const char *stdin_file; /* --stdin-file F, "-" for standard input */
        bool wait;              /* --wait */
        bool progress;          /* wait --progress: print each change of the task's progress */
        /* --slot-key CALENDAR (repeatable): the key is the task's name and the slot of these calendar
         * expressions that is due (cli-schedule.h); the caller sets key from it. */
        const char *slot_calendars[SCHEDULE_CALENDARS_MAX];
        size_t n_slot_calendars;
        uint64_t slot_time_usec; /* --slot-time: the slot at or before this time, not now */
        bool has_slot_time;
        const char *slot_timer; /* --slot-timer UNIT: the slot of UNIT's last trigger, not now */

        /* submit --wait, wait, drain */
        uint64_t timeout_sec;
        bool has_timeout;

        /* status, wait, cancel, retry, forget, logs */
        uint64_t id;
        bool has_id;

        /* list: one page of limit ids above after_id with --limit; else every page */
        const char *state;
        unsigned limit;
        bool has_limit;
        uint64_t after_id;

        /* retry */
        bool failed; /* --failed */

        /* logs */
        bool follow; /* -f, --follow */

        /* metrics */
        bool http; /* --http: answer the HTTP request on standard input (a socket-activated instance) */
} CliOptions;

/* list without --limit asks for this many tasks a page. */
#define CLI_LIST_PAGE 1000

/* Latest --slot-time @SECONDS: the year 9999, as far as timestamps go. */
#define CLI_SLOT_TIME_SEC_MAX 253402300799ULL

/* Longest --timeout accepted: far beyond any task, small enough that deadlines in usec never overflow. */
#define CLI_TIMEOUT_SEC_MAX (100ULL * 365 * 24 * 3600)

/* Parses argv. env_socket is $ASYNCTASK_SOCKET (or NULL). Returns 0 and fills *ret, or -EINVAL
 * with a one-line explanation in errbuf (a usage error). */
int cli_parse_args(int argc, char *const *argv, const char *env_socket, CliOptions *ret, char *errbuf,
                   size_t errbuf_size);

/* Splits "HOST:PORT" / "[V6ADDR]:PORT" into host (copied to host_buf) and port 1..65535. */
int cli_parse_host_port(const char *s, char *host_buf, size_t host_size, uint16_t *ret_port);

const char *cli_command_to_string(CliCommand c);

/* The request a subcommand sends (for submit, stdin_data/stdin_len is the --stdin-file content,
 * NULL when none; it must not contain NUL bytes). NULL on OOM, or for commands that send nothing
 * (help, version, logs) or whose request is built elsewhere (wait: cli_wait_request(); drain:
 * cli_drain_request()). */
cJSON *cli_build_request(const CliOptions *o, const char *stdin_data, size_t stdin_len);

/* {"op":"wait","id":ID,"timeout":TIMEOUT_SEC}. NULL on OOM. */
cJSON *cli_wait_request(uint64_t id, uint64_t timeout_sec);
/* The same with "progress_seen": also answered when the task's progress is other than seen (NULL:
 * than none). NULL on OOM. */
cJSON *cli_wait_progress_request(uint64_t id, uint64_t timeout_sec, const char *seen);

/* {"op":"drain","timeout":TIMEOUT_SEC}. NULL on OOM. */
cJSON *cli_drain_request(uint64_t timeout_sec);

/* Parses a decimal number with no sign, spaces or trailing junk, in [min, max]. -EINVAL / -ERANGE. */
int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
/* The same with an optional leading '-' or '+'. */
int cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *ret);
