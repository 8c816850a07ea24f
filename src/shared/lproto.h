/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The launcher protocol between asynctaskd (front) and asynctask-launcher, over one unix stream
 * socket: one JSON object per line, at most LAUNCHER_MSG_BYTES_MAX bytes. The decoder is strict
 * (exact types, no unknown keys, sizes checked against asynctask-limits.h) because the launcher is the
 * trust boundary: it runs as root and must assume the front may be compromised.
 *
 * front -> launcher:  launch {id, attempt, task | cmd, args, stdin (base64), submitter}
 *                     stop {id}        ack {id}        list {}
 *                     reload {}        (re-read the launcher's own config from disk)
 * launcher -> front:  started {id, unit}
 *                     finished {id, result, exit_status?, signal?, cpu_usec?, memory_peak?, error?}
 *                     rejected {id, error}     (launch refused; nothing ran)
 *                     running {id, unit}       (answer to list, one per live run)
 *                     list_end {}
 *                     reloaded {error?}        (answer to reload; error set if the new config was bad)
 *                     progress {id, text}      (a live run's latest STATUS= text; coalesced)
 * Finished results are kept by the launcher and sent again on every (re)connect until acked.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/run-result.h"

typedef enum LauncherMsgType {
        LMSG_LAUNCH,
        LMSG_STOP,
        LMSG_ACK,
        LMSG_LIST,
        LMSG_STARTED,
        LMSG_FINISHED,
        LMSG_REJECTED,
        LMSG_RUNNING,
        LMSG_LIST_END,
        LMSG_RELOAD,
        LMSG_RELOADED,
        LMSG_PROGRESS,
        _LMSG_MAX,
        _LMSG_INVALID = -EINVAL,
} LauncherMsgType;

typedef struct LauncherMsg {
        LauncherMsgType type;
        uint64_t id;
        unsigned attempt; /* launch */
        char *task;       /* launch: task name, or NULL with cmd */
        char *cmd;        /* launch: raw command */
        char **args;      /* launch: NULL-terminated */
        size_t n_args;
        char *stdin_data; /* launch: decoded bytes or NULL */
        size_t stdin_len;
        char *submitter;  /* launch */
        char *unit;       /* started, running */
        RunResult result; /* finished */
        char *error;      /* rejected; reloaded (NULL = success) */
        char *text;       /* progress: at most PROGRESS_BYTES_MAX bytes, may be "" */
} LauncherMsg;

const char *lmsg_type_to_string(LauncherMsgType t);

/* Strict decoder. Returns 0, or -EBADMSG / -E2BIG with *ret zeroed. */
int lmsg_parse(const char *line, size_t len, LauncherMsg *ret);

/* Encodes as one line ending in "\n" (malloc'd, *ret_len excludes the NUL); NULL on OOM. */
char *lmsg_format(const LauncherMsg *m, size_t *ret_len);

void lmsg_done(LauncherMsg *m);
