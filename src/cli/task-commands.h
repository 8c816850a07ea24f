/* SPDX-License-Identifier: MIT */
#pragma once

/* The CLI's task commands (task-commands.c). Each returns the process's exit code. */

#include <stddef.h>

#include "cli/cli-args.h"
#include "cli/client.h"

int cmd_submit(Client *c, const CliOptions *o);
int cmd_wait(Client *c, const CliOptions *o);
/* Commands that are one request and one answer. */
int cmd_simple(Client *c, const CliOptions *o);
/* list without --limit: every task, a page at a time (a state may hold millions), each page asking for
 * the ids after the last one of the page before. With --json, one answer line per page. */
int cmd_list_all(Client *c, const CliOptions *o);
/* submit --slot-key: the key of the slot that is due, into buf. 0 or an exit code. */
int slot_key(const CliOptions *o, char *buf, size_t size);
