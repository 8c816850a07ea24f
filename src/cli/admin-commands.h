/* SPDX-License-Identifier: MIT */
#pragma once

/* The CLI's commands for the host's operator (admin-commands.c). Each returns the exit code. */

#include "cli/cli-args.h"
#include "cli/client.h"

/* drain: this host starts no new runs; waits (in steps of at most WAIT_SEC_MAX, as wait does) until
 * its running tasks are over, the timeout passes (CLI_EXIT_TIMEOUT), or an undrain ends the drain
 * (CLI_EXIT_TASK_FAILED). */
int cmd_drain(Client *c, const CliOptions *o);
int cmd_logs(const CliOptions *o);
int cmd_schedules(const CliOptions *o);
/* One scrape on standard input and output. Exits 0 once an answer is written, whatever its status (a
 * daemon that is down is a 503 for the scraper to see, not a failed unit per connection). */
int cmd_metrics_http(const CliOptions *o);
