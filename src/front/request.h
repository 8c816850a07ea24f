/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Client requests: one frame in, one validated Request out, or an ErrorReply saying why not.
 * JSON frames are checked strictly (types, unknown keys, ranges, depth); frames that start with
 * "s:" or "O:" are PHP serialize() output from the old clients and go through seed.h.
 * No I/O, no config: mapping task names and PHP classes to definitions is the caller's job.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/protocol.h"

typedef struct Request {
        RequestOp op;

        /* submit: exactly one of task, cmd, php_class is set */
        char *task;      /* task name from tasks.d */
        char *cmd;       /* raw shell command ({"cmd":...} or a seed "s:" frame) */
        char *php_class; /* class of a seed "O:" frame; the whole frame is then in stdin_data */
        char **args;     /* n_args strings, NULL-terminated */
        size_t n_args;
        char *key;        /* idempotency key, or NULL */
        char *stdin_data; /* or NULL; may contain NUL bytes for seed frames */
        size_t stdin_len;
        uint64_t delay_sec; /* 0 = now */
        int priority;       /* higher runs first; default 0 */

        /* status, wait, cancel, retry, forget */
        uint64_t id;
        bool has_id;

        /* wait */
        uint64_t timeout_usec; /* 0 = do not wait, just report */
        bool has_timeout;
        /* "progress_seen": answer also when the task's progress is other than this (NULL: than none) */
        char *progress_seen;
        bool has_progress_seen;

        /* list, retry */
        TaskState state;
        bool has_state;
        unsigned limit;    /* list: default 100 */
        uint64_t after_id; /* list: ids above this one; default 0 */
} Request;

/* Parses one JSON request frame (front/decode.h tells seed frames from JSON). Returns 0 and fills *ret, or
 * returns the negative error -EBADMSG and fills *err (code is bad_frame for unparsable input, bad_request
 * for valid JSON that breaks the schema; -ENOMEM with code internal if memory runs out). max_frame_bytes is
 * not checked here (the reader already did). */
int request_parse(const char *frame, size_t len, Request *ret, ErrorReply *err);

/* A deep copy of src into *ret (for a request that runs again later). -ENOMEM. */
int request_copy(const Request *src, Request *ret);

/* Frees what a Request owns and zeroes it; safe on a zeroed Request. */
void request_done(Request *req);
