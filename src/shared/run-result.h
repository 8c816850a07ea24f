/* SPDX-License-Identifier: MIT */
#pragma once

/* Result of one run of a task, in systemd's vocabulary (a unit's Result= property) so that both
 * executors report alike: "success", "exit-code", "signal", "core-dump", "timeout", "oom-kill",
 * "resources" (could not be started), plus ours: "rejected" (the launcher refused the launch),
 * "lost" (the run vanished with a crashed launcher), "cancelled". */
typedef struct RunResult {
        char result[32];
        int exit_status; /* valid when has_exit_status: the exit code */
        int has_exit_status;
        int signal;                     /* for "signal" / "core-dump": the signal number */
        unsigned long long cpu_usec;    /* 0 when unknown */
        unsigned long long memory_peak; /* bytes, 0 when unknown */
        char error[256];                /* human explanation, "" when none */
} RunResult;
