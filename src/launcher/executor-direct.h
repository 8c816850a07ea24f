/* SPDX-License-Identifier: MIT */
#pragma once

/* The direct executor's settings (executor.h has executor_direct_new(), which takes the defaults). */

#include <stdint.h>
#include <systemd/sd-event.h>

#include "launcher/executor.h"

typedef struct DirectExecutorSettings {
        uint64_t kill_grace_usec;   /* from SIGTERM to SIGKILL at a timeout or stop; 0: KILL_GRACE_USEC */
        const char *journal_socket; /* journald's socket, whose presence sends task output to the
                                     * journal (else it is relayed to our stderr); NULL: the standard
                                     * path. Must outlive the executor. */
} DirectExecutorSettings;

int executor_direct_new_with_settings(sd_event *event, const ExecutorEvents *events, void *userdata,
                                      const DirectExecutorSettings *settings, Executor **ret);
