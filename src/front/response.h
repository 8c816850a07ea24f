/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Building response lines: {"ok":true,...} or {"ok":false,"code":...,"error":...}, one line each,
 * terminated by "\n". The caller adds its fields to the cJSON object from response_ok().
 */

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/protocol.h"

struct TaskRecord;

cJSON *response_ok(void); /* {"ok":true}; NULL on OOM */

/* Adds an integer exactly. cJSON prints a number with more than 15 significant digits in exponent
 * form with digits lost (an id near 2^53, a byte count), so use this for ids and counters.
 * Returns 0 or -ENOMEM. */
int response_add_integer(cJSON *obj, const char *name, int64_t value);

/* Adds CLOCK_REALTIME usec as ISO 8601 UTC with milliseconds ("2024-06-06T03:00:00.000Z"); 0 is null.
 * Returns 0 or -ENOMEM. */
int response_add_time(cJSON *obj, const char *name, uint64_t usec);

/* Adds the full public record of a task (DESIGN.md: id, task, args, state, attempts, ...). */
int response_add_task(cJSON *obj, const struct TaskRecord *t);
/* {"ok":true} with the full public record of t; NULL on OOM. */
cJSON *response_ok_task(const struct TaskRecord *t);

/* Serializes obj as one line ending in "\n", frees obj. NULL on OOM. *ret_len excludes the NUL. */
char *response_finish(cJSON *obj, size_t *ret_len);

/* A complete error line for reply (or for code + message). */
char *response_error(const ErrorReply *reply, size_t *ret_len);
