/* SPDX-License-Identifier: MIT */
/*
 * Task records and their compact results. A submitted record is one allocation (record, the owner's
 * bookkeeping and every string packed behind them): a queue of many small tasks then costs one
 * malloc per task and keeps each task's data together. Only the stdin (which a durable store lets go
 * of once its row holds it, and reads back for the launch), and `unit` and `last.error`, set later,
 * are separate allocations.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "front/task-record.h"
#include "shared/limits.h"

int task_result_set_error(TaskResult *r, const char *error) {
        char *e = NULL;

        if (error && *error) {
                e = strndup(error, TASK_ERROR_BYTES_MAX);
                if (!e)
                        return -ENOMEM;
        }
        free(r->error);
        r->error = e;
        return 0;
}

void task_result_set_word(TaskResult *r, const char *word) {
        size_t n = word ? strnlen(word, sizeof(r->result) - 1) : 0;

        memcpy(r->result, word ? word : "", n);
        r->result[n] = 0;
}

int task_result_from_run(TaskResult *ret, const RunResult *run) {
        TaskResult res = {
                .cpu_usec = run->cpu_usec,
                .memory_peak = run->memory_peak,
                .exit_status = run->exit_status,
                .signal = run->signal,
                .has_exit_status = run->has_exit_status != 0,
        };
        size_t n = strnlen(run->result, sizeof(res.result) - 1); /* res.result is the shorter */
        size_t e = strnlen(run->error, TASK_ERROR_BYTES_MAX);

        memcpy(res.result, run->result, n);
        res.result[n] = 0;
        if (e > 0) {
                /* Copied by length: a RunResult's error fills its buffer and may lack a NUL. */
                res.error = malloc(e + 1);
                if (!res.error)
                        return -ENOMEM;
                memcpy(res.error, run->error, e);
                res.error[e] = 0;
        }
        *ret = res;
        return 0;
}

int task_submission_check(const TaskSubmission *sub) {
        if (!sub || !sub->submitter)
                return -EINVAL;
        if (!sub->task == !sub->cmd) /* exactly one of them */
                return -EINVAL;
        if (sub->n_args > TASK_ARGS_MAX)
                return -E2BIG;
        if (sub->n_args > 0 && !sub->args)
                return -EINVAL;
        for (size_t i = 0; i < sub->n_args; i++)
                if (!sub->args[i])
                        return -EINVAL;
        if (sub->stdin_len > 0 && !sub->stdin_data)
                return -EINVAL;
        return 0;
}

/* Adds len to *size, failing on overflow. */
static bool size_add(size_t *size, size_t len) {
        return !__builtin_add_overflow(*size, len, size);
}

/* Rounds priv_size up so that what follows it (the args array) is aligned for pointers. */
static bool priv_size_aligned(size_t priv_size, size_t *ret) {
        size_t a = _Alignof(char *);

        if (!size_add(&priv_size, a - 1))
                return false;
        *ret = priv_size / a * a;
        return true;
}

/* Bytes of a packed record of sub with priv_size bytes of bookkeeping; false on overflow. */
static bool packed_size(const TaskSubmission *sub, size_t priv_size, size_t *ret) {
        const char *name = sub->task ? sub->task : sub->cmd;
        size_t size = sizeof(TaskRecord);
        bool ok = true;

        ok = ok && size_add(&size, priv_size);
        ok = ok && size_add(&size, (sub->n_args + 1) * sizeof(char *));
        ok = ok && size_add(&size, strlen(name) + 1);
        for (size_t i = 0; i < sub->n_args; i++)
                ok = ok && size_add(&size, strlen(sub->args[i]) + 1);
        if (sub->key)
                ok = ok && size_add(&size, strlen(sub->key) + 1);
        ok = ok && size_add(&size, strlen(sub->submitter) + 1);
        if (ok)
                *ret = size;
        return ok;
}

/* Copies len bytes to *cursor with a NUL after them and moves the cursor past it. */
static char *pack(char **cursor, const void *data, size_t len) {
        char *p = *cursor;

        memcpy(p, data, len);
        p[len] = 0;
        *cursor = p + len + 1;
        return p;
}

int task_record_new_packed(const TaskSubmission *sub, size_t priv_size, TaskRecord **ret) {
        _cleanup_free_ char *in = NULL;
        TaskRecord *t;
        size_t size;
        char *p;

        /* sizeof(TaskRecord) is a multiple of its alignment: priv, right behind it, is aligned too. */
        if (!priv_size_aligned(priv_size, &priv_size) || !packed_size(sub, priv_size, &size))
                return -E2BIG;
        if (sub->stdin_data) {
                if (sub->stdin_len == SIZE_MAX)
                        return -E2BIG;
                in = malloc(sub->stdin_len + 1);
                if (!in)
                        return -ENOMEM;
                memcpy(in, sub->stdin_data, sub->stdin_len);
                in[sub->stdin_len] = 0;
        }
        t = malloc(size);
        if (!t)
                return -ENOMEM;
        memset(t, 0, sizeof(TaskRecord) + priv_size);
        t->priv = priv_size > 0 ? (char *) (t + 1) : NULL;

        t->args = (char **) ((char *) (t + 1) + priv_size);
        p = (char *) (t->args + sub->n_args + 1);
        if (sub->task)
                t->task = pack(&p, sub->task, strlen(sub->task));
        else
                t->cmd = pack(&p, sub->cmd, strlen(sub->cmd));
        for (size_t i = 0; i < sub->n_args; i++)
                t->args[i] = pack(&p, sub->args[i], strlen(sub->args[i]));
        t->args[sub->n_args] = NULL;
        t->n_args = sub->n_args;
        if (sub->key)
                t->key = pack(&p, sub->key, strlen(sub->key));
        t->submitter = pack(&p, sub->submitter, strlen(sub->submitter));
        if (in) {
                t->stdin_data = TAKE_PTR(in);
                t->stdin_len = sub->stdin_len;
        }

        *ret = t;
        return 0;
}

void task_record_free_packed(TaskRecord *t) {
        if (!t)
                return;
        free(t->unit);
        free(t->last.error);
        free(t->progress);
        free(t->stdin_data);
        free(t->node);
        free(t); /* record, priv and packed strings */
}

void task_record_free(TaskRecord *t) {
        if (!t)
                return;
        free(t->task);
        free(t->cmd);
        strv_free(t->args);
        free(t->stdin_data);
        free(t->key);
        free(t->submitter);
        free(t->unit);
        free(t->last.error);
        free(t->progress);
        free(t->node);
        free(t);
}
