/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the `asynctask` client shows people: task records, the task table, stats, outcomes, and
 * the exit code each answer maps to. Pure functions over the daemon's JSON answers; the only
 * I/O is writing to the FILE given.
 */

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes of the client (docs/cli.md). A task's own exit status is passed through as is. */
#define CLI_EXIT_OK          0
#define CLI_EXIT_TASK_FAILED 1   /* the task failed without an exit status (signal, timeout, ...) */
#define CLI_EXIT_USAGE       2   /* bad command line */
#define CLI_EXIT_REFUSED     3   /* forbidden, unknown_task, not_found, bad_request, ... */
#define CLI_EXIT_UNAVAILABLE 4   /* unavailable, or the daemon cannot be reached */
#define CLI_EXIT_INTERNAL    5   /* internal error or a broken answer */
#define CLI_EXIT_TIMEOUT     124 /* --timeout passed before the task was final (as timeout(1)) */

/* Widest TASK/CMD cell in the `list` table; longer ones are cut with "...". */
#define CLI_LIST_COMMAND_WIDTH 48

/* The exit code for an error answer's "code". */
int cli_exit_code_for_error(const char *code);

/* The exit code for a final task record: 0 if succeeded, its exit status if it exited non-zero,
 * else 1. A record that is not final maps to CLI_EXIT_TIMEOUT. */
int cli_exit_code_for_task(const cJSON *record);

/* "2026-11-26T17:00:00.123Z" -> microseconds since the epoch. -EINVAL if malformed. */
int cli_parse_timestamp(const char *s, int64_t *ret_usec);

/* A timestamp from a record in local time: "2026-11-26 18:00:00.123 CET" (with_ms) or
 * "2026-11-26 18:00:00" (list table). Unparsable input is copied as is. */
void cli_format_time(const char *iso, bool with_ms, char *buf, size_t size);

/* Quotes s for a POSIX shell only where needed: plain words stay as they are, others get single
 * quotes; control characters use bash's $'...' form so that the result stays on one line.
 * Returns a malloc'd string or NULL on OOM. */
char *cli_shell_quote(const char *s);

/* What a task runs, on one line: "NAME ARG..." with args quoted, or "sh -c 'CMD'". */
char *cli_task_command_line(const cJSON *record);

/* One line saying how a record ended or stands: "succeeded", "failed: exit status 3",
 * "failed: killed by signal 9 (KILL)", "cancelled", "running (attempt 1 of 3)", ... */
void cli_describe_outcome(const cJSON *record, char *buf, size_t size);

/* `status`: one "field: value" line per record field (times in local time, "-" for null). */
void cli_print_record(FILE *f, const cJSON *record);

/* `list`: a table ID STATE ATTEMPTS TASK/CMD CREATED RESULT, one row per record of the array.
 * now_usec (CLOCK_REALTIME) decides whether a queued task's run_after is still ahead. */
void cli_print_task_table(FILE *f, const cJSON *tasks, int64_t now_usec, bool header_line);

/* `stats`: a short summary of a stats answer. */
void cli_print_stats(FILE *f, const cJSON *stats);
