/* SPDX-License-Identifier: MIT */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "front/ledger.h"
#include "front/request.h"
#include "front/utf8.h"
#include "front/response.h"
#include "shared/util.h"

cJSON *response_ok(void) {
        cJSON *obj = cJSON_CreateObject();

        if (!obj)
                return NULL;
        if (!cJSON_AddTrueToObject(obj, "ok")) {
                cJSON_Delete(obj);
                return NULL;
        }
        return obj;
}

/* cJSON copies bytes into its output as they are, so a string that is not valid UTF-8 would make the
 * whole line invalid JSON. Client strings were checked on the way in; this keeps anything else (a
 * truncated message, a record read back from the store) from breaking a client's parser. */
static char *utf8_sanitize(const char *s) {
        size_t len = strlen(s), i = 0, o = 0;
        char *out = malloc(len * 3 + 1);

        if (!out)
                return NULL;
        while (i < len) {
                size_t n = utf8_valid_len(s + i, len - i);

                memcpy(out + o, s + i, n);
                o += n;
                i += n;
                if (i < len) {
                        memcpy(out + o, "\xef\xbf\xbd", 3); /* U+FFFD replaces each bad byte */
                        o += 3;
                        i++;
                }
        }
        out[o] = '\0';
        return out;
}

static cJSON *string_item(const char *s) {
        _cleanup_free_ char *clean = NULL;
        size_t len;

        if (!s)
                return cJSON_CreateNull();
        len = strlen(s);
        if (utf8_valid_len(s, len) == len)
                return cJSON_CreateString(s);
        clean = utf8_sanitize(s);
        return clean ? cJSON_CreateString(clean) : NULL;
}

static int add_item(cJSON *obj, const char *name, cJSON *item) {
        if (!item)
                return -ENOMEM;
        if (!cJSON_AddItemToObject(obj, name, item)) {
                cJSON_Delete(item);
                return -ENOMEM;
        }
        return 0;
}

static int add_string(cJSON *obj, const char *name, const char *s) {
        return add_item(obj, name, string_item(s));
}

int response_add_integer(cJSON *obj, const char *name, int64_t value) {
        char buf[24];

        (void) snprintf(buf, sizeof(buf), "%" PRId64, value);
        return add_item(obj, name, cJSON_CreateRaw(buf));
}

/* CLOCK_REALTIME microseconds as ISO 8601 UTC with milliseconds; 0 (never) is null. */
int response_add_time(cJSON *obj, const char *name, uint64_t usec) {
        char buf[64];
        struct tm tm;
        time_t sec;
        size_t n;

        if (usec == 0)
                return add_item(obj, name, cJSON_CreateNull());
        sec = (time_t) (usec / USEC_PER_SEC);
        if (!gmtime_r(&sec, &tm))
                return add_item(obj, name, cJSON_CreateNull());
        n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
        if (n == 0)
                return add_item(obj, name, cJSON_CreateNull());
        (void) snprintf(buf + n, sizeof(buf) - n, ".%03uZ", (unsigned) (usec / USEC_PER_MSEC % 1000));
        return add_item(obj, name, cJSON_CreateString(buf));
}

int response_add_task(cJSON *obj, const struct TaskRecord *t) {
        const TaskResult *last = &t->last;
        cJSON *args;
        int r = 0;

        args = cJSON_CreateArray();
        if (!args)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_args && t->args && t->args[i]; i++) {
                cJSON *a = string_item(t->args[i]);
                if (!a || !cJSON_AddItemToArray(args, a)) {
                        cJSON_Delete(a);
                        cJSON_Delete(args);
                        return -ENOMEM;
                }
        }

        /* The order is the one documented in docs/protocol.md; stdin is never echoed back. */
        if (r >= 0)
                r = response_add_integer(obj, "id", (int64_t) t->id);
        if (r >= 0)
                r = add_string(obj, "task", t->task);
        if (r >= 0)
                r = add_string(obj, "cmd", t->cmd);
        if (r >= 0)
                r = add_item(obj, "args", args);
        else
                cJSON_Delete(args);
        if (r >= 0)
                r = add_string(obj, "state", task_state_to_string(t->state));
        if (r >= 0)
                r = response_add_integer(obj, "attempts", t->attempts);
        if (r >= 0)
                r = response_add_integer(obj, "max_attempts", t->max_attempts);
        if (r >= 0)
                r = response_add_integer(obj, "priority", t->priority);
        if (r >= 0)
                r = add_string(obj, "key", t->key);
        if (r >= 0)
                r = add_string(obj, "submitter", t->submitter);
        if (r >= 0)
                r = add_string(obj, "unit", t->unit);
        if (r >= 0)
                r = response_add_time(obj, "created_at", t->created_at);
        if (r >= 0)
                r = response_add_time(obj, "started_at", t->started_at);
        if (r >= 0)
                r = response_add_time(obj, "finished_at", t->finished_at);
        if (r >= 0)
                r = response_add_time(obj, "run_after", t->run_after);
        if (r >= 0)
                r = add_string(obj, "result", last->result[0] ? last->result : NULL);
        if (r >= 0)
                r = last->has_exit_status ? response_add_integer(obj, "exit_status", last->exit_status)
                                          : add_item(obj, "exit_status", cJSON_CreateNull());
        if (r >= 0)
                r = last->signal > 0 ? response_add_integer(obj, "signal", last->signal)
                                     : add_item(obj, "signal", cJSON_CreateNull());
        if (r >= 0)
                r = add_string(obj, "error", last->error && last->error[0] ? last->error : NULL);
        if (r >= 0)
                r = add_string(obj, "progress", t->progress);
        /* A record read from a row of the MySQL store: the node that holds or ran it. */
        if (r >= 0 && t->node)
                r = add_string(obj, "node", t->node);
        return r;
}

cJSON *response_ok_task(const struct TaskRecord *t) {
        cJSON *obj = response_ok();

        if (obj && response_add_task(obj, t) < 0) {
                cJSON_Delete(obj);
                return NULL;
        }
        return obj;
}

char *response_finish(cJSON *obj, size_t *ret_len) {
        char *s, *line;
        size_t n;

        if (!obj)
                return NULL;
        /* cJSON escapes every control character in strings, so the text holds no raw "\n". */
        s = cJSON_PrintUnformatted(obj);
        cJSON_Delete(obj);
        if (!s)
                return NULL;
        n = strlen(s);
        line = realloc(s, n + 2);
        if (!line) {
                free(s);
                return NULL;
        }
        line[n] = '\n';
        line[n + 1] = '\0';
        if (ret_len)
                *ret_len = n + 1;
        return line;
}

char *response_error(const ErrorReply *reply, size_t *ret_len) {
        char message[sizeof(reply->message)];
        ErrorCode code = reply->code;
        cJSON *obj;

        /* The message may have been cut to fit its buffer; make sure it is terminated. */
        memcpy(message, reply->message, sizeof(message));
        message[sizeof(message) - 1] = '\0';
        if (code == ERR_NONE)
                code = ERR_INTERNAL;

        obj = cJSON_CreateObject();
        if (!obj)
                return NULL;
        if (!cJSON_AddFalseToObject(obj, "ok") || add_string(obj, "code", error_code_to_string(code)) < 0 ||
            add_string(obj, "error", message[0] ? message : error_code_to_string(code)) < 0) {
                cJSON_Delete(obj);
                return NULL;
        }
        return response_finish(obj, ret_len);
}
