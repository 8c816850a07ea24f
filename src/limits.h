/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Every fixed limit, with the reason for its value. Limits an admin may tune
 * are config keys (config.h); these are the ceilings that protect the daemons.
 */

/* Default and ceiling of max_frame_bytes: one frame carries one task's args and stdin. The ceiling
 * bounds the memory one connection can pin (the buffer grows to at most this, once). */
#define FRAME_BYTES_DEFAULT (64 * 1024)
#define FRAME_BYTES_MAX     (16 * 1024 * 1024)

/* JSON requests are flat objects with one array of strings; anything deeper than this is hostile.
 * cJSON's own nesting limit is fixed at distro build time (1000), so we check depth ourselves. */
#define REQUEST_DEPTH_MAX 4

/* argv handed to a task: count and size of each client argument (execve's own limit is far larger,
 * but a task argument is a file name or an id, not a payload: payloads go through stdin). */
#define TASK_ARGS_MAX       256
#define TASK_ARG_BYTES_MAX  4096
#define TASK_KEY_BYTES_MAX  255
#define TASK_NAME_BYTES_MAX 64

/* Responses queued on one connection before we stop reading its requests (a client that never reads
 * its answers must not make us buffer without bound). */
#define CONN_OUTPUT_HIGH_WATER (256 * 1024)

/* Launcher protocol: one message carries at most one frame's worth of stdin plus args, JSON-escaped
 * (up to 6 bytes per input byte for \u00XX), plus a small envelope. */
#define LAUNCHER_MSG_BYTES_MAX (6 * FRAME_BYTES_MAX + 64 * 1024)

/* Upper bounds of config values (defaults live in config.c). */
#define CONNECTIONS_MAX    65536
#define RUNNING_MAX        4096
#define ATTEMPTS_MAX       100
#define BACKOFF_STEPS_MAX  32
#define TIMEOUT_SEC_MAX    (7 * 24 * 3600)
#define DELAY_SEC_MAX      (365 * 24 * 3600)
#define WAIT_SEC_MAX       3600
#define LIST_LIMIT_MAX     10000
#define ENVIRONMENT_MAX    128

/* Grace period between SIGTERM and SIGKILL when a task times out or is cancelled (direct executor). */
#define KILL_GRACE_USEC (5 * 1000000ULL)

/* Tasks queued at once; past this, submissions get "unavailable" (a queue that only grows is an
 * outage in the making, and each record holds memory). */
#define QUEUED_MAX 1000000
