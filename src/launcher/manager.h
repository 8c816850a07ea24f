/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The launcher's state and what it does with it: its config (loaded at start, swapped on reload only
 * when the new one is valid), the executor, the table of runs in flight and results held until the
 * front acknowledges them, and the front link. It answers the front's launches (after launch_check()),
 * stops, acks and reloads, and reports the executor's events to the front. main.c owns one, and adds
 * the signals, the listening sockets and the service manager's notifications.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "shared/config.h"
#include "shared/util.h"

typedef struct Manager Manager;

/* Loads the config from config_path, logging every problem; sets up the event loop (sd_event_default())
 * and the front link. Returns 0 and *ret, or -EINVAL (bad config), -errno. */
int manager_new(const char *config_path, Manager **ret);
/* Sends what it can to the front without blocking, then frees everything. Runs still going are left
 * alone (units keep running; the direct executor's children are orphaned, and that is logged). */
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

sd_event *manager_event(Manager *m);
const Config *manager_config(Manager *m);

/* How long the replay to the front waits for the executor to report the runs left from before
 * (default EXECUTOR_READY_WAIT_USEC). Before manager_start_executor(). */
void manager_set_executor_ready_wait(Manager *m, uint64_t usec);
/* Starts the executor the config asks for ("auto": systemd where it is PID 1, else direct). Logs. */
int manager_start_executor(Manager *m);
/* The executor has reported the runs left from before (or the wait for it has passed). */
bool manager_executor_ready(const Manager *m);

/* An accepted connection on a listening socket (takes fd): see front_link_accept(). */
void manager_accept(Manager *m, int fd);

/* Re-reads the config (SIGHUP, or the front's "reload"). Returns 0, or -EINVAL with error describing
 * the first problem and the count of the others; the old config then stays in effect. */
int manager_reload(Manager *m, char *error, size_t error_size);

/* STATUS= for the service manager: runs, held results, the front. */
void manager_update_status(Manager *m);
