/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Alerts ("on_failure"): when a task fails for good, the front submits the task its config names,
 * through the ledger like any other (so the alert is itself recorded, retried and listed), with the
 * failed record as JSON on its stdin and the failed id as its one argument. What that submission is
 * made of is decided here; the dispatcher submits it.
 */

#include <stddef.h>

#include "front/task-record.h"
#include "shared/config.h"

/* The submitter of every alert. No client is ever named so ("uid:N", "tcp:ADDR"): only admins see
 * alerts, and an alert is known by it. */
#define ON_FAILURE_SUBMITTER "on_failure"

/* The task to submit for failed (of definition def, NULL when its task has left the config), or NULL
 * when none is due: none configured, or failed is itself an alert. Alerts never raise alerts, so a
 * failing alert task cannot loop, nor two tasks alerting each other (A -> B -> A) chain. */
const char *on_failure_task(const Config *cfg, const TaskDef *def, const TaskRecord *failed);

/* The alert's stdin: failed's public record (as status shows it), one line of JSON ending in "\n".
 * malloc'd; NULL on OOM. */
char *on_failure_stdin(const TaskRecord *failed, size_t *ret_len);
