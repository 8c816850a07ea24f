/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The launcher's decision on a launch from the front, which it must assume compromised: the task (or
 * listed command) must be in the launcher's own config, the message must fit that entry's limits and
 * the config's (max_args, max_frame_bytes of stdin), the runs must stay within max_running and the
 * task's concurrency, and the launcher must not be holding too many results the front has not
 * acknowledged. The front keeps to the same limits, so a launch over one of them is a front that does
 * not (a bug, or not the front). The argv is built
 * here from the config, client arguments only ever appended as separate elements. Pure: no I/O, no
 * logging; the caller answers and logs.
 */

#include <stdbool.h>
#include <stddef.h>

#include "launcher/run-table.h"
#include "shared/config.h"
#include "shared/lproto.h"

typedef struct LaunchCheck {
        const TaskDef *def; /* accepted: the config's entry (valid as long as that config) */
        const char *name;   /* for logs: the task's name, "command", or the name asked for (may be NULL) */
        char **argv;        /* accepted: NULL-terminated; the array is ours, its strings def's and m's */
        char reason[256];   /* rejected: why, in words for the front and the log */
} LaunchCheck;

/* Decides on the launch m (type LMSG_LAUNCH) given the config and the runs in the table. Returns 1
 * (accepted: def, name and argv set), 0 (rejected: reason set) or -ENOMEM. Free with
 * launch_check_done() in every case. */
int launch_check(const Config *c, const RunTable *runs, const LauncherMsg *m, LaunchCheck *ret);
void launch_check_done(LaunchCheck *lc);

/* The longest message a front following this config can send: a launch with max_frame_bytes of stdin
 * (base64) and the most arguments of the longest size any task takes, or the longest listed command,
 * each string escaped as JSON at its worst, in an envelope. At most LAUNCHER_MSG_BYTES_MAX. */
size_t launch_message_bytes_max(const Config *c);

/* Results held for the front (finished, not acknowledged) at which launches are rejected:
 * max_running x UNACKED_RESULTS_PER_RUNNING. */
size_t launch_unacknowledged_max(const Config *c);
