/* SPDX-License-Identifier: MIT */
#pragma once

/* Waiting for a task to become final, optionally printing its progress texts as they come. */

#include <stdbool.h>
#include <stdint.h>

#include "cli/client.h"

/* A "wait" answer comes when the server's wait times out; allow this much on top before giving up. */
#define CLI_WAIT_SLACK_SEC 30

/* wait --progress: prints each new progress text of the task, one line each, as it comes ("--json":
 * each answer that brought one). The text seen last goes with the next wait. */
typedef struct ProgressFollow {
        bool on;
        bool json;
        char *seen;        /* NULL before any */
        bool printed_last; /* --json: the last answer was printed for its progress */
} ProgressFollow;

/* Waits with the "wait" op until the task is final or timeout_sec (if has_timeout) passed. The
 * server holds a wait for at most WAIT_SEC_MAX, so long waits are a loop of them. Returns 0 with
 * the final record, CLI_EXIT_TIMEOUT with the latest one, or another exit code (reported). Only
 * the last answer is printed with --json. */
int wait_for_task_following(Client *c, uint64_t id, bool has_timeout, uint64_t timeout_sec,
                            ProgressFollow *follow, ClientAnswer *ret);
int wait_for_task(Client *c, uint64_t id, bool has_timeout, uint64_t timeout_sec, ClientAnswer *ret);
