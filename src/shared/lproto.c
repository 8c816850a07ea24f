/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "shared/base64.h"
#include "shared/limits.h"
#include "shared/lproto.h"
#include "shared/util.h"
#include "shared/json-util.h"

/* Field caps that follow from the types the fields end up in, so nothing is silently truncated:
 * unit names are at most 255 bytes in systemd (UNIT_NAME_MAX 256 with the NUL), the submitter is at
 * most SUBMITTER_BYTES_MAX, results and errors fill RunResult's arrays. Strings are bounded so a
 * compromised front cannot make the launcher hold big blobs beyond what the limits allow. */
#define LMSG_UNIT_BYTES_MAX      255
#define LMSG_SUBMITTER_BYTES_MAX SUBMITTER_BYTES_MAX
#define LMSG_RESULT_BYTES_MAX    (sizeof(((RunResult *) NULL)->result) - 1)
#define LMSG_ERROR_BYTES_MAX     (sizeof(((RunResult *) NULL)->error) - 1)
/* A raw command arrives in one client frame, so it can never be longer than the largest frame. */
#define LMSG_CMD_BYTES_MAX FRAME_BYTES_MAX
/* Messages are flat objects holding at most one array of strings. */
#define LMSG_DEPTH_MAX 2
/* Integers travel as JSON numbers, which are doubles in cJSON: exact below 2^53. Only plain integer
 * literals are accepted (check_raw), so a value that rounds into range cannot sneak in. */
#define LMSG_UINT_MAX ((UINT64_C(1) << 53) - 1)

static const char *const type_names[_LMSG_MAX] = {
        [LMSG_LAUNCH] = "launch",     [LMSG_STOP] = "stop",         [LMSG_ACK] = "ack",
        [LMSG_LIST] = "list",         [LMSG_STARTED] = "started",   [LMSG_FINISHED] = "finished",
        [LMSG_REJECTED] = "rejected", [LMSG_RUNNING] = "running",   [LMSG_LIST_END] = "list_end",
        [LMSG_RELOAD] = "reload",     [LMSG_RELOADED] = "reloaded", [LMSG_PROGRESS] = "progress",
};

const char *lmsg_type_to_string(LauncherMsgType t) {
        return t >= 0 && t < _LMSG_MAX ? type_names[t] : NULL;
}

static LauncherMsgType lmsg_type_from_string(const char *s) {
        for (int i = 0; i < _LMSG_MAX; i++)
                if (streq(type_names[i], s))
                        return (LauncherMsgType) i;
        return _LMSG_INVALID;
}

/* The keys each type carries. Required keys must be present, optional ones may be; nothing else is
 * accepted. "task" and "cmd" are both optional for launch, and exactly one must be present. */
enum {
        K_TYPE = 1u << 0,
        K_ID = 1u << 1,
        K_ATTEMPT = 1u << 2,
        K_TASK = 1u << 3,
        K_CMD = 1u << 4,
        K_ARGS = 1u << 5,
        K_STDIN = 1u << 6,
        K_SUBMITTER = 1u << 7,
        K_UNIT = 1u << 8,
        K_RESULT = 1u << 9,
        K_EXIT_STATUS = 1u << 10,
        K_SIGNAL = 1u << 11,
        K_CPU_USEC = 1u << 12,
        K_MEMORY_PEAK = 1u << 13,
        K_ERROR = 1u << 14,
        K_TEXT = 1u << 15,
};

static const struct {
        const char *name;
        unsigned bit;
} key_names[] = {
        {"type", K_TYPE},
        {"id", K_ID},
        {"attempt", K_ATTEMPT},
        {"task", K_TASK},
        {"cmd", K_CMD},
        {"args", K_ARGS},
        {"stdin", K_STDIN},
        {"submitter", K_SUBMITTER},
        {"unit", K_UNIT},
        {"result", K_RESULT},
        {"exit_status", K_EXIT_STATUS},
        {"signal", K_SIGNAL},
        {"cpu_usec", K_CPU_USEC},
        {"memory_peak", K_MEMORY_PEAK},
        {"error", K_ERROR},
        {"text", K_TEXT},
};

static const struct {
        unsigned required;
        unsigned optional;
} key_sets[_LMSG_MAX] = {
        [LMSG_LAUNCH] = {K_TYPE | K_ID | K_ATTEMPT | K_ARGS | K_SUBMITTER, K_TASK | K_CMD | K_STDIN},
        [LMSG_STOP] = {K_TYPE | K_ID, 0},
        [LMSG_ACK] = {K_TYPE | K_ID, 0},
        [LMSG_LIST] = {K_TYPE, 0},
        [LMSG_STARTED] = {K_TYPE | K_ID | K_UNIT, 0},
        [LMSG_FINISHED] = {K_TYPE | K_ID | K_RESULT,
                           K_EXIT_STATUS | K_SIGNAL | K_CPU_USEC | K_MEMORY_PEAK | K_ERROR},
        [LMSG_REJECTED] = {K_TYPE | K_ID | K_ERROR, 0},
        [LMSG_RUNNING] = {K_TYPE | K_ID | K_UNIT, 0},
        [LMSG_LIST_END] = {K_TYPE, 0},
        [LMSG_RELOAD] = {K_TYPE, 0},
        [LMSG_RELOADED] = {K_TYPE, K_ERROR},
        [LMSG_PROGRESS] = {K_TYPE | K_ID | K_TEXT, 0},
};

static unsigned key_bit(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(key_names); i++)
                if (streq(key_names[i].name, name))
                        return key_names[i].bit;
        return 0;
}

static bool is_number_char(char c) {
        return (c >= '0' && c <= '9') || c == '-';
}

/* Checks what cJSON does not: no NUL bytes (raw, or escaped as \u0000, which cJSON would decode and
 * then silently cut the string at), nesting no deeper than a flat object with one array, numbers
 * written as plain integers (no fraction or exponent: "1.0000000000000001" would otherwise pass as 1),
 * and no more values than a message can have (LAUNCHER_MSG_VALUES_MAX: cJSON allocates a node for
 * each, before we could look at them). Outside strings a backslash cannot appear in valid JSON, so
 * tracking strings by quotes and escapes is exact; each value starts with a character of its own (a
 * quote, a bracket, a digit or minus sign after none, or the t, f or n of a literal). */
static int check_raw(const char *s, size_t len) {
        bool in_string = false;
        unsigned depth = 0;
        size_t values = 0;

        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                bool starts_value;

                if (c == '\0')
                        return -EBADMSG;
                if (!in_string) {
                        starts_value = c == '"' || c == '{' || c == '[' || c == 't' || c == 'f' ||
                                       c == 'n' ||
                                       (is_number_char(c) && (i == 0 || !is_number_char(s[i - 1])));
                        if (starts_value && ++values > LAUNCHER_MSG_VALUES_MAX)
                                return -EBADMSG;
                }
                if (in_string) {
                        if (c == '"')
                                in_string = false;
                        else if (c == '\\') {
                                if (i + 1 >= len)
                                        return -EBADMSG;
                                if (s[i + 1] == 'u' && i + 5 < len && strncmp(s + i + 2, "0000", 4) == 0)
                                        return -EBADMSG;
                                i++; /* the escaped character */
                        }
                } else if (c == '"')
                        in_string = true;
                else if (c == '.' || ((c == 'e' || c == 'E') && i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9'))
                        return -EBADMSG;
                else if (c == '{' || c == '[') {
                        if (++depth > LMSG_DEPTH_MAX)
                                return -EBADMSG;
                } else if (c == '}' || c == ']') {
                        if (depth > 0)
                                depth--;
                }
        }
        return 0;
}

static int get_uint(const cJSON *j, uint64_t min, uint64_t max, uint64_t *ret) {
        double d;

        if (!cJSON_IsNumber(j))
                return -EBADMSG;
        d = j->valuedouble;
        /* Rejects fractions, NaN and values beyond what a double holds exactly. */
        if (!(d >= (double) min && d <= (double) max) || d != (double) (uint64_t) d)
                return -EBADMSG;
        *ret = (uint64_t) d;
        return 0;
}

static int get_string(const cJSON *j, size_t min_len, size_t max_len, char **ret) {
        size_t n;
        char *s;

        if (!cJSON_IsString(j) || !j->valuestring)
                return -EBADMSG;
        n = strlen(j->valuestring);
        if (n < min_len || n > max_len)
                return -EBADMSG;
        s = strdup(j->valuestring);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Copies a bounded string into a fixed array. */
static int get_string_into(const cJSON *j, size_t min_len, char *buf, size_t size) {
        size_t n;

        if (!cJSON_IsString(j) || !j->valuestring)
                return -EBADMSG;
        n = strlen(j->valuestring);
        if (n < min_len || n >= size)
                return -EBADMSG;
        memcpy(buf, j->valuestring, n + 1);
        return 0;
}

/* A result word in systemd's style ("exit-code", "oom-kill"). The vocabulary is not enumerated here:
 * the systemd executor passes on whatever Result= a unit ends with, and refusing an unfamiliar word
 * would make the front drop the connection and get the same message again on every reconnect. */
static bool result_word_ok(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || *s == '-'))
                        return false;
        return true;
}

static int parse_args(const cJSON *j, LauncherMsg *m) {
        size_t n = 0, i = 0;
        const cJSON *item;

        if (!cJSON_IsArray(j))
                return -EBADMSG;
        cJSON_ArrayForEach (item, j)
                n++;
        if (n > TASK_ARGS_MAX)
                return -EBADMSG;

        m->args = calloc(n + 1, sizeof(char *));
        if (!m->args)
                return -ENOMEM;
        cJSON_ArrayForEach (item, j) {
                int r = get_string(item, 0, TASK_ARG_BYTES_MAX, &m->args[i]);
                if (r < 0)
                        return r;
                m->n_args = ++i;
        }
        return 0;
}

static int parse_field(LauncherMsg *m, unsigned bit, const cJSON *j) {
        uint64_t u;
        int r;

        switch (bit) {
        case K_ID:
                /* Ids start at 1; 0 would name no task. */
                return get_uint(j, 1, LMSG_UINT_MAX, &m->id);
        case K_ATTEMPT:
                r = get_uint(j, 1, UINT32_MAX, &u);
                if (r < 0)
                        return r;
                m->attempt = (unsigned) u;
                return 0;
        case K_TASK:
                return get_string(j, 1, TASK_NAME_BYTES_MAX, &m->task);
        case K_CMD:
                return get_string(j, 1, LMSG_CMD_BYTES_MAX, &m->cmd);
        case K_ARGS:
                return parse_args(j, m);
        case K_STDIN:
                if (!cJSON_IsString(j) || !j->valuestring)
                        return -EBADMSG;
                /* Check the encoded size before decoding anything. */
                if (strlen(j->valuestring) > (FRAME_BYTES_MAX + 2) / 3 * 4)
                        return -EBADMSG;
                r = base64_decode(j->valuestring, strlen(j->valuestring), &m->stdin_data, &m->stdin_len);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 || m->stdin_len > FRAME_BYTES_MAX)
                        return -EBADMSG;
                return 0;
        case K_SUBMITTER:
                return get_string(j, 1, LMSG_SUBMITTER_BYTES_MAX, &m->submitter);
        case K_UNIT:
                return get_string(j, 1, LMSG_UNIT_BYTES_MAX, &m->unit);
        case K_RESULT:
                r = get_string_into(j, 1, m->result.result, sizeof(m->result.result));
                if (r < 0)
                        return r;
                return result_word_ok(m->result.result) ? 0 : -EBADMSG;
        case K_EXIT_STATUS:
                r = get_uint(j, 0, 255, &u);
                if (r < 0)
                        return r;
                m->result.exit_status = (int) u;
                m->result.has_exit_status = 1;
                return 0;
        case K_SIGNAL:
                r = get_uint(j, 1, 64, &u);
                if (r < 0)
                        return r;
                m->result.signal = (int) u;
                return 0;
        case K_CPU_USEC:
                r = get_uint(j, 0, LMSG_UINT_MAX, &u);
                if (r < 0)
                        return r;
                m->result.cpu_usec = u;
                return 0;
        case K_MEMORY_PEAK:
                r = get_uint(j, 0, LMSG_UINT_MAX, &u);
                if (r < 0)
                        return r;
                m->result.memory_peak = u;
                return 0;
        case K_ERROR:
                if (m->type == LMSG_FINISHED)
                        return get_string_into(j, 0, m->result.error, sizeof(m->result.error));
                /* rejected must say why; reloaded carries it only on failure. */
                return get_string(j, 1, LMSG_ERROR_BYTES_MAX, &m->error);
        case K_TEXT:
                /* "" is a task clearing its status. */
                return get_string(j, 0, PROGRESS_BYTES_MAX, &m->text);
        default:
                return -EBADMSG;
        }
}

static int parse_object(const cJSON *root, LauncherMsg *m) {
        const cJSON *type = NULL, *item;
        unsigned seen = 0;
        int r;

        if (!cJSON_IsObject(root))
                return -EBADMSG;

        /* First pass: the type decides which keys are allowed. */
        cJSON_ArrayForEach (item, root) {
                if (!item->string)
                        return -EBADMSG;
                if (streq(item->string, "type")) {
                        if (type)
                                return -EBADMSG;
                        type = item;
                }
        }
        if (!cJSON_IsString(type) || !type->valuestring)
                return -EBADMSG;
        m->type = lmsg_type_from_string(type->valuestring);
        if (m->type < 0)
                return -EBADMSG;

        cJSON_ArrayForEach (item, root) {
                unsigned bit = key_bit(item->string);

                if (bit == 0 || (seen & bit))
                        return -EBADMSG; /* unknown or duplicate key */
                if (!((key_sets[m->type].required | key_sets[m->type].optional) & bit))
                        return -EBADMSG; /* known key, but not of this type */
                seen |= bit;
                if (bit == K_TYPE)
                        continue;
                r = parse_field(m, bit, item);
                if (r < 0)
                        return r;
        }

        if ((seen & key_sets[m->type].required) != key_sets[m->type].required)
                return -EBADMSG;
        if (m->type == LMSG_LAUNCH && !!(seen & K_TASK) == !!(seen & K_CMD))
                return -EBADMSG; /* exactly one of task and cmd */
        if (m->type == LMSG_FINISHED) {
                /* A signal belongs to signal deaths and an exit status to exits; a result is never both. */
                if ((seen & K_EXIT_STATUS) && (seen & K_SIGNAL))
                        return -EBADMSG;
        }
        return 0;
}

int lmsg_parse(const char *line, size_t len, LauncherMsg *ret) {
        _cleanup_(cjson_deletep) cJSON *root = NULL;
        LauncherMsg m = {};
        const char *end = NULL;
        int r;

        *ret = (LauncherMsg){};

        /* Accept the line with or without its terminating newline. */
        if (len > 0 && line[len - 1] == '\n')
                len--;
        if (len > LAUNCHER_MSG_BYTES_MAX)
                return -E2BIG;
        if (len == 0)
                return -EBADMSG;

        r = check_raw(line, len);
        if (r < 0)
                return r;

        root = cJSON_ParseWithLengthOpts(line, len, &end, false);
        if (!root || !end || end < line || end > line + len)
                return -EBADMSG;
        for (; end < line + len; end++) /* only whitespace may follow the object */
                if (!strchr(" \t\r\n", *end))
                        return -EBADMSG;

        r = parse_object(root, &m);
        if (r < 0) {
                lmsg_done(&m);
                /* Out of memory while decoding is reported as such, not as the peer's fault. */
                return r == -ENOMEM ? -ENOMEM : -EBADMSG;
        }
        *ret = m;
        return 0;
}

void lmsg_done(LauncherMsg *m) {
        if (!m)
                return;
        free(m->task);
        free(m->cmd);
        strv_free(m->args);
        free(m->stdin_data);
        free(m->submitter);
        free(m->unit);
        free(m->error);
        free(m->text);
        *m = (LauncherMsg){};
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t max) {
        size_t n = strlen(s);

        if (n <= max)
                return n;
        n = max;
        while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
                n--;
        return n;
}

static bool add_string(cJSON *o, const char *key, const char *value, size_t max) {
        _cleanup_free_ char *copy = NULL;
        size_t n = utf8_cut(value, max);

        copy = strndup(value, n);
        return copy && cJSON_AddStringToObject(o, key, copy);
}

/* Printed by hand: cJSON prints large doubles with 15 significant digits and would round them. */
static bool add_uint(cJSON *o, const char *key, uint64_t v) {
        char buf[32];

        if (v > LMSG_UINT_MAX)
                v = LMSG_UINT_MAX;
        (void) snprintf(buf, sizeof(buf), "%" PRIu64, v);
        return cJSON_AddRawToObject(o, key, buf);
}

static bool format_fields(cJSON *o, const LauncherMsg *m) {
        if (!cJSON_AddStringToObject(o, "type", lmsg_type_to_string(m->type)))
                return false;

        switch (m->type) {
        case LMSG_LAUNCH: {
                cJSON *args;

                if (!add_uint(o, "id", m->id) || !add_uint(o, "attempt", m->attempt))
                        return false;
                if (m->task && !cJSON_AddStringToObject(o, "task", m->task))
                        return false;
                if (m->cmd && !cJSON_AddStringToObject(o, "cmd", m->cmd))
                        return false;
                args = cJSON_AddArrayToObject(o, "args");
                if (!args)
                        return false;
                for (size_t i = 0; i < m->n_args && m->args && m->args[i]; i++) {
                        cJSON *s = cJSON_CreateString(m->args[i]);
                        if (!s || !cJSON_AddItemToArray(args, s)) {
                                cJSON_Delete(s);
                                return false;
                        }
                }
                if (m->stdin_data) {
                        _cleanup_free_ char *b64 = base64_encode(m->stdin_data, m->stdin_len);
                        if (!b64 || !cJSON_AddStringToObject(o, "stdin", b64))
                                return false;
                }
                return cJSON_AddStringToObject(o, "submitter", m->submitter ? m->submitter : "");
        }
        case LMSG_STOP:
        case LMSG_ACK:
                return add_uint(o, "id", m->id);
        case LMSG_STARTED:
        case LMSG_RUNNING:
                return add_uint(o, "id", m->id) &&
                       cJSON_AddStringToObject(o, "unit", m->unit ? m->unit : "");
        case LMSG_FINISHED: {
                const RunResult *r = &m->result;

                if (!add_uint(o, "id", m->id) || !cJSON_AddStringToObject(o, "result", r->result))
                        return false;
                if (r->has_exit_status && !add_uint(o, "exit_status", (uint64_t) r->exit_status & 0xff))
                        return false;
                if (!r->has_exit_status && r->signal > 0 && !add_uint(o, "signal", (uint64_t) r->signal))
                        return false;
                if (r->cpu_usec > 0 && !add_uint(o, "cpu_usec", r->cpu_usec))
                        return false;
                if (r->memory_peak > 0 && !add_uint(o, "memory_peak", r->memory_peak))
                        return false;
                if (r->error[0] && !add_string(o, "error", r->error, LMSG_ERROR_BYTES_MAX))
                        return false;
                return true;
        }
        case LMSG_REJECTED:
                return add_uint(o, "id", m->id) &&
                       add_string(o, "error", m->error && m->error[0] ? m->error : "rejected",
                                  LMSG_ERROR_BYTES_MAX);
        case LMSG_PROGRESS:
                return add_uint(o, "id", m->id) &&
                       add_string(o, "text", m->text ? m->text : "", PROGRESS_BYTES_MAX);
        case LMSG_RELOADED:
                if (m->error && m->error[0])
                        return add_string(o, "error", m->error, LMSG_ERROR_BYTES_MAX);
                return true;
        case LMSG_LIST:
        case LMSG_LIST_END:
        case LMSG_RELOAD:
                return true;
        default:
                return false;
        }
}

char *lmsg_format(const LauncherMsg *m, size_t *ret_len) {
        _cleanup_(cjson_deletep) cJSON *o = NULL;
        _cleanup_free_ char *s = NULL;
        char *line;
        size_t n;

        if (!m || m->type < 0 || m->type >= _LMSG_MAX)
                return NULL;
        o = cJSON_CreateObject();
        if (!o || !format_fields(o, m))
                return NULL;
        s = cJSON_PrintUnformatted(o);
        if (!s)
                return NULL;

        n = strlen(s);
        line = realloc(s, n + 2);
        if (!line)
                return NULL;
        s = NULL;
        line[n] = '\n';
        line[n + 1] = '\0';
        if (ret_len)
                *ret_len = n + 1;
        return line;
}
