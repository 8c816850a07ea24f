/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>

#include "shared/protocol.h"
#include "shared/util.h"

static const char *const op_names[_OP_MAX] = {
        [OP_SUBMIT] = "submit", [OP_STATUS] = "status",   [OP_WAIT] = "wait",       [OP_CANCEL] = "cancel",
        [OP_RETRY] = "retry",   [OP_FORGET] = "forget",   [OP_LIST] = "list",       [OP_STATS] = "stats",
        [OP_PING] = "ping",     [OP_RELOAD] = "reload",   [OP_PAUSE] = "pause",     [OP_RESUME] = "resume",
        [OP_DRAIN] = "drain",   [OP_UNDRAIN] = "undrain", [OP_METRICS] = "metrics",
};

static const char *const error_names[_ERR_MAX] = {
        [ERR_NONE] = "ok",
        [ERR_BAD_FRAME] = "bad_frame",
        [ERR_FRAME_TOO_LARGE] = "frame_too_large",
        [ERR_BAD_REQUEST] = "bad_request",
        [ERR_UNKNOWN_TASK] = "unknown_task",
        [ERR_COMMAND_NOT_ALLOWED] = "command_not_allowed",
        [ERR_FORBIDDEN] = "forbidden",
        [ERR_NOT_FOUND] = "not_found",
        [ERR_UNAVAILABLE] = "unavailable",
        [ERR_INTERNAL] = "internal",
        [ERR_QUOTA_EXCEEDED] = "quota_exceeded",
};

static const char *const state_names[_TASK_STATE_MAX] = {
        [TASK_QUEUED] = "queued", [TASK_RUNNING] = "running",     [TASK_SUCCEEDED] = "succeeded",
        [TASK_FAILED] = "failed", [TASK_CANCELLED] = "cancelled",
};

const char *request_op_to_string(RequestOp op) {
        return op >= 0 && op < _OP_MAX ? op_names[op] : NULL;
}

RequestOp request_op_from_string(const char *s) {
        for (int i = 0; i < _OP_MAX; i++)
                if (streq(op_names[i], s))
                        return (RequestOp) i;
        return _OP_INVALID;
}

const char *error_code_to_string(ErrorCode code) {
        return code >= 0 && code < _ERR_MAX ? error_names[code] : "internal";
}

const char *task_state_to_string(TaskState state) {
        return state >= 0 && state < _TASK_STATE_MAX ? state_names[state] : NULL;
}

TaskState task_state_from_string(const char *s) {
        for (int i = 0; i < _TASK_STATE_MAX; i++)
                if (streq(state_names[i], s))
                        return (TaskState) i;
        return _TASK_STATE_INVALID;
}

ErrorCode error_reply_set(ErrorReply *reply, ErrorCode code, const char *fmt, ...) {
        va_list ap;

        reply->code = code;
        va_start(ap, fmt);
        (void) vsnprintf(reply->message, sizeof(reply->message), fmt, ap);
        va_end(ap);
        return code;
}
