/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "shared/base64.h"
#include "front/snapshot.h"
#include "shared/util.h"
#include "shared/json-util.h"

/* The first line; bump the version when a field changes meaning. */
#define SNAPSHOT_HEADER "{\"asynctask_snapshot\":1}"
/* A record holds at most one frame of stdin (base64) plus small fields. */
#define SNAPSHOT_LINE_MAX (64 * 1024 * 1024)

static bool add_string(cJSON *o, const char *name, const char *value) {
        return value ? cJSON_AddStringToObject(o, name, value) != NULL : true;
}

/* Integers are written as text by us: cJSON prints doubles and would round large ids and times. */
static bool add_u64(cJSON *o, const char *name, uint64_t value) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%llu", (unsigned long long) value);
        return cJSON_AddRawToObject(o, name, buf) != NULL;
}

static char *record_to_line(const TaskRecord *t) {
        _cleanup_(cjson_deletep) cJSON *o = cJSON_CreateObject();
        _cleanup_free_ char *stdin_b64 = NULL;
        cJSON *args;

        if (!o)
                return NULL;
        if (t->stdin_data) {
                stdin_b64 = base64_encode(t->stdin_data, t->stdin_len);
                if (!stdin_b64)
                        return NULL;
        }
        args = cJSON_AddArrayToObject(o, "args");
        if (!args)
                return NULL;
        for (size_t i = 0; i < t->n_args; i++)
                if (!cJSON_AddItemToArray(args, cJSON_CreateString(t->args[i])))
                        return NULL;
        if (!add_u64(o, "id", t->id) || !add_string(o, "task", t->task) || !add_string(o, "cmd", t->cmd) ||
            !add_string(o, "stdin_b64", stdin_b64) || !add_string(o, "key", t->key) ||
            !add_string(o, "submitter", t->submitter) ||
            !cJSON_AddNumberToObject(o, "priority", t->priority) ||
            !add_string(o, "state", task_state_to_string(t->state)) ||
            !add_u64(o, "attempts", t->attempts) || !add_u64(o, "max_attempts", t->max_attempts) ||
            !add_string(o, "unit", t->unit) || !add_u64(o, "created_at", t->created_at) ||
            !add_u64(o, "started_at", t->started_at) || !add_u64(o, "finished_at", t->finished_at) ||
            !add_u64(o, "run_after", t->run_after))
                return NULL;
        if (t->last.result[0]) {
                if (!add_string(o, "result", t->last.result) ||
                    !add_string(o, "error", task_result_error(&t->last)) ||
                    !cJSON_AddNumberToObject(o, "signal", t->last.signal) ||
                    !add_u64(o, "cpu_usec", t->last.cpu_usec) ||
                    !add_u64(o, "memory_peak", t->last.memory_peak))
                        return NULL;
                if (t->last.has_exit_status &&
                    !cJSON_AddNumberToObject(o, "exit_status", t->last.exit_status))
                        return NULL;
        }
        return cJSON_PrintUnformatted(o);
}

/* A paused task name: {"paused":NAME,"by":WHO,"since":USEC}. A line without "state", which an
 * asynctaskd that knows no pause skips (and counts) when it loads the file. */
static char *paused_to_line(const PausedTask *p) {
        _cleanup_(cjson_deletep) cJSON *o = cJSON_CreateObject();

        if (!o || !add_string(o, "paused", p->task) || !add_string(o, "by", p->by) ||
            !add_u64(o, "since", p->since))
                return NULL;
        return cJSON_PrintUnformatted(o);
}

int snapshot_save(Ledger *l, const char *path) {
        _cleanup_free_ TaskRecord **records = NULL;
        _cleanup_free_ char *tmp = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        LedgerStats st;
        size_t n, cap;
        int fd, r = 0;

        ledger_stats(l, &st);
        cap = st.queued + st.running + st.succeeded + st.failed + st.cancelled;
        records = calloc(cap + 1, sizeof(*records));
        if (!records)
                return -ENOMEM;
        n = ledger_list(l, -1, cap, records);

        if (asprintf(&tmp, "%s.tmp", path) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        f = fdopen(fd, "w");
        if (!f) {
                r = -errno;
                close(fd);
                (void) unlink(tmp);
                return r;
        }
        /* Each write is checked: a failed one (ENOSPC) may empty the stdio buffer, and the fflush()
         * below would then succeed and a truncated file replace the snapshot. */
        if (fputs(SNAPSHOT_HEADER "\n", f) == EOF)
                r = -errno;
        for (size_t i = 0; r == 0 && i < ledger_paused(l)->n; i++) {
                _cleanup_free_ char *line = paused_to_line(&ledger_paused(l)->items[i]);
                if (!line) {
                        r = -ENOMEM;
                        break;
                }
                if (fputs(line, f) == EOF || fputc('\n', f) == EOF)
                        r = -errno;
        }
        for (size_t i = 0; r == 0 && i < n; i++) {
                _cleanup_free_ char *line = record_to_line(records[i]);
                if (!line) {
                        r = -ENOMEM;
                        break;
                }
                if (fputs(line, f) == EOF || fputc('\n', f) == EOF)
                        r = -errno;
        }
        if (r == 0 && (fflush(f) != 0 || fsync(fileno(f)) < 0))
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        return (int) n;
}

static const char *get_string(const cJSON *o, const char *name) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Integers written by add_u64 parse back exactly as long as they are below 2^53, which ids, counts
 * and microsecond times are. */
static uint64_t get_u64(const cJSON *o, const char *name) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
        return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (uint64_t) v->valuedouble : 0;
}

static int dup_field(const cJSON *o, const char *name, char **ret) {
        const char *s = get_string(o, name);

        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int line_to_record(const char *line, TaskRecord **ret) {
        _cleanup_(cjson_deletep) cJSON *o = cJSON_Parse(line);
        TaskRecord *t;
        const cJSON *args, *it;
        const char *state, *b64;
        size_t n = 0;
        int r = 0;

        if (!cJSON_IsObject(o))
                return -EBADMSG;
        state = get_string(o, "state");
        args = cJSON_GetObjectItemCaseSensitive(o, "args");
        if (!state || task_state_from_string(state) < 0 || !cJSON_IsArray(args))
                return -EBADMSG;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->id = get_u64(o, "id");
        t->state = task_state_from_string(state);
        t->priority = (int) cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "priority"));
        t->attempts = (unsigned) get_u64(o, "attempts");
        t->max_attempts = (unsigned) get_u64(o, "max_attempts");
        t->created_at = get_u64(o, "created_at");
        t->started_at = get_u64(o, "started_at");
        t->finished_at = get_u64(o, "finished_at");
        t->run_after = get_u64(o, "run_after");
        if (r >= 0)
                r = dup_field(o, "task", &t->task);
        if (r >= 0)
                r = dup_field(o, "cmd", &t->cmd);
        if (r >= 0)
                r = dup_field(o, "key", &t->key);
        if (r >= 0)
                r = dup_field(o, "submitter", &t->submitter);
        if (r >= 0)
                r = dup_field(o, "unit", &t->unit);
        b64 = get_string(o, "stdin_b64");
        if (r >= 0 && b64)
                r = base64_decode(b64, strlen(b64), &t->stdin_data, &t->stdin_len);
        if (r >= 0) {
                t->args = calloc((size_t) cJSON_GetArraySize(args) + 1, sizeof(char *));
                if (!t->args)
                        r = -ENOMEM;
        }
        cJSON_ArrayForEach (it, args) {
                if (r < 0)
                        break;
                if (!cJSON_IsString(it)) {
                        r = -EBADMSG;
                        break;
                }
                t->args[n] = strdup(it->valuestring);
                if (!t->args[n])
                        r = -ENOMEM;
                else
                        t->n_args = ++n;
        }
        if (r >= 0 && get_string(o, "result")) {
                const cJSON *exit_status = cJSON_GetObjectItemCaseSensitive(o, "exit_status");

                task_result_set_word(&t->last, get_string(o, "result"));
                r = task_result_set_error(&t->last, get_string(o, "error"));
                t->last.signal = (int) cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "signal"));
                t->last.cpu_usec = get_u64(o, "cpu_usec");
                t->last.memory_peak = get_u64(o, "memory_peak");
                if (cJSON_IsNumber(exit_status)) {
                        t->last.has_exit_status = 1;
                        t->last.exit_status = exit_status->valueint;
                }
        }
        if (r < 0) {
                task_record_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

/* A paused task name's line into l: 1 when line was one, 0 when it is not (a record, then). */
static int line_to_paused(const char *line, Ledger *l) {
        _cleanup_(cjson_deletep) cJSON *o = NULL;
        const char *task;
        int r;

        if (!strstr(line, "\"paused\""))
                return 0; /* not worth parsing twice */
        o = cJSON_Parse(line);
        task = get_string(o, "paused");
        if (!task)
                return 0;
        r = ledger_pause(l, task, get_string(o, "by"), get_u64(o, "since"));
        return r == -ENOMEM ? r : 1; /* past PAUSED_TASKS_MAX: dropped, as it could not be paused */
}

int snapshot_load(const char *path, Ledger *l, size_t *ret_skipped) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        size_t cap = 0, skipped = 0;
        ssize_t len;
        int n = 0, r;

        *ret_skipped = 0;
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0 : -errno;

        len = getline(&line, &cap, f);
        if (len < 0 || strncmp(line, SNAPSHOT_HEADER, strlen(SNAPSHOT_HEADER)) != 0)
                return -EBADMSG; /* not ours, or a newer format: leave it for a newer asynctaskd */

        while ((len = getline(&line, &cap, f)) >= 0) {
                TaskRecord *t = NULL;

                if (len > SNAPSHOT_LINE_MAX) {
                        skipped++;
                        continue;
                }
                r = line_to_paused(line, l);
                if (r == -ENOMEM)
                        return r;
                if (r > 0)
                        continue;
                r = line_to_record(line, &t);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        skipped++;
                        continue;
                }
                r = ledger_adopt(l, t);
                if (r == -ENOMEM) {
                        task_record_free(t);
                        return r;
                }
                if (r < 0) {
                        task_record_free(t);
                        skipped++;
                        continue;
                }
                n++;
        }
        /* Loaded once: a crash after this must not bring back records that have moved on since. */
        if (unlink(path) < 0)
                return -errno;
        *ret_skipped = skipped;
        return n;
}
