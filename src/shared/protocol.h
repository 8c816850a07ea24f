/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Vocabulary of the client wire protocol shared by every module: operations, error codes, task states.
 * The strings are part of the public protocol (DESIGN.md); never rename them.
 */

#include <errno.h>
#include <stddef.h>

typedef enum RequestOp {
        OP_SUBMIT,
        OP_STATUS,
        OP_WAIT,
        OP_CANCEL,
        OP_RETRY,
        OP_FORGET,
        OP_LIST,
        OP_STATS,
        OP_PING,
        OP_RELOAD,  /* peers with the daemon's own uid or root: reload config, answer when in effect */
        OP_PAUSE,   /* admins: start no new runs of a task name */
        OP_RESUME,  /* admins: start them again */
        OP_DRAIN,   /* admins: this host starts no new runs; answered when its runs are over */
        OP_UNDRAIN, /* admins: this host takes work again */
        OP_METRICS, /* the Prometheus text of the front's metrics */
        _OP_MAX,
        _OP_INVALID = -EINVAL,
} RequestOp;

typedef enum ErrorCode {
        ERR_NONE = 0,
        ERR_BAD_FRAME,
        ERR_FRAME_TOO_LARGE,
        ERR_BAD_REQUEST,
        ERR_UNKNOWN_TASK,
        ERR_COMMAND_NOT_ALLOWED,
        ERR_FORBIDDEN,
        ERR_NOT_FOUND,
        ERR_UNAVAILABLE,
        ERR_INTERNAL,
        ERR_QUOTA_EXCEEDED, /* the submitter has as many unfinished tasks (or stdin bytes) as allowed */
        _ERR_MAX,
        _ERR_INVALID = -EINVAL,
} ErrorCode;

typedef enum TaskState {
        TASK_QUEUED,
        TASK_RUNNING,
        TASK_SUCCEEDED,
        TASK_FAILED,
        TASK_CANCELLED,
        _TASK_STATE_MAX,
        _TASK_STATE_INVALID = -EINVAL,
} TaskState;

/* An error to answer a client with: a code from the list above and a human message. */
typedef struct ErrorReply {
        ErrorCode code;
        char message[256];
} ErrorReply;

const char *request_op_to_string(RequestOp op);
RequestOp request_op_from_string(const char *s);
const char *error_code_to_string(ErrorCode code);
const char *task_state_to_string(TaskState state);
TaskState task_state_from_string(const char *s);
static inline int task_state_is_final(TaskState s) {
        return s == TASK_SUCCEEDED || s == TASK_FAILED || s == TASK_CANCELLED;
}

/* Fills reply and returns reply->code; message is printf-formatted and truncated to fit. */
ErrorCode error_reply_set(ErrorReply *reply, ErrorCode code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
