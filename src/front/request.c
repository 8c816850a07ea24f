/* SPDX-License-Identifier: MIT */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/limits.h"
#include "front/request.h"
#include "front/utf8.h"
#include "shared/util.h"

/* Ids travel as JSON numbers (doubles): above 2^53 - 1 two different decimal ids could parse to the
 * same double, so the range stops where every integer is still exact. */
#define REQUEST_ID_MAX 9007199254740991.0

/* How much of a client string an error message quotes. */
#define QUOTE_BYTES_MAX 64

typedef enum RequestKey {
        KEY_OP,
        KEY_TASK,
        KEY_CMD,
        KEY_ARGS,
        KEY_KEY,
        KEY_DELAY,
        KEY_PRIORITY,
        KEY_STDIN,
        KEY_ID,
        KEY_TIMEOUT,
        KEY_STATE,
        KEY_LIMIT,
        KEY_PROGRESS_SEEN,
        KEY_AFTER_ID,
        _KEY_MAX,
} RequestKey;

static const char *const key_names[_KEY_MAX] = {
        [KEY_OP] = "op",
        [KEY_TASK] = "task",
        [KEY_CMD] = "cmd",
        [KEY_ARGS] = "args",
        [KEY_KEY] = "key",
        [KEY_DELAY] = "delay",
        [KEY_PRIORITY] = "priority",
        [KEY_STDIN] = "stdin",
        [KEY_ID] = "id",
        [KEY_TIMEOUT] = "timeout",
        [KEY_STATE] = "state",
        [KEY_LIMIT] = "limit",
        [KEY_PROGRESS_SEEN] = "progress_seen",
        [KEY_AFTER_ID] = "after_id",
};

#define KEY_BIT(k) (1u << (k))

/* Keys each operation accepts; anything else in the object is refused by name. */
static const unsigned op_keys[_OP_MAX] = {
        [OP_SUBMIT] = KEY_BIT(KEY_OP) | KEY_BIT(KEY_TASK) | KEY_BIT(KEY_CMD) | KEY_BIT(KEY_ARGS) |
                      KEY_BIT(KEY_KEY) | KEY_BIT(KEY_DELAY) | KEY_BIT(KEY_PRIORITY) | KEY_BIT(KEY_STDIN),
        [OP_STATUS] = KEY_BIT(KEY_OP) | KEY_BIT(KEY_ID),
        [OP_WAIT] = KEY_BIT(KEY_OP) | KEY_BIT(KEY_ID) | KEY_BIT(KEY_TIMEOUT) | KEY_BIT(KEY_PROGRESS_SEEN),
        [OP_CANCEL] = KEY_BIT(KEY_OP) | KEY_BIT(KEY_ID),
        [OP_RETRY] = KEY_BIT(KEY_OP) | KEY_BIT(KEY_ID) | KEY_BIT(KEY_STATE),
        [OP_FORGET] = KEY_BIT(KEY_OP) | KEY_BIT(KEY_ID),
        [OP_LIST] = KEY_BIT(KEY_OP) | KEY_BIT(KEY_STATE) | KEY_BIT(KEY_LIMIT) | KEY_BIT(KEY_AFTER_ID),
        [OP_STATS] = KEY_BIT(KEY_OP),
        [OP_PING] = KEY_BIT(KEY_OP),
        [OP_RELOAD] = KEY_BIT(KEY_OP),
        [OP_PAUSE] = KEY_BIT(KEY_OP) | KEY_BIT(KEY_TASK),
        [OP_RESUME] = KEY_BIT(KEY_OP) | KEY_BIT(KEY_TASK),
        [OP_DRAIN] = KEY_BIT(KEY_OP) | KEY_BIT(KEY_TIMEOUT),
        [OP_UNDRAIN] = KEY_BIT(KEY_OP),
        [OP_METRICS] = KEY_BIT(KEY_OP),
};

/* A client string made safe to quote in a message: at most QUOTE_BYTES_MAX bytes, cut on a character
 * boundary, control characters shown as '?'. s is valid UTF-8 (checked before parsing). */
static const char *quote(char buf[static QUOTE_BYTES_MAX + 4], const char *s) {
        size_t len = strlen(s), n;

        n = utf8_valid_len(s, len < QUOTE_BYTES_MAX ? len : QUOTE_BYTES_MAX);
        for (size_t i = 0; i < n; i++)
                buf[i] = (unsigned char) s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
        if (n < len) {
                memcpy(buf + n, "...", 3);
                n += 3;
        }
        buf[n] = '\0';
        return buf;
}

static int fail(ErrorReply *err, ErrorCode code, const char *fmt, ...) _printf_(3, 4);
static int fail(ErrorReply *err, ErrorCode code, const char *fmt, ...) {
        va_list ap;

        err->code = code;
        va_start(ap, fmt);
        (void) vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        return -EBADMSG;
}

/* Length of a strict JSON number at p (RFC 8259), or 0. cJSON itself also takes "017" and "1.". */
static size_t json_number_len(const unsigned char *p, const unsigned char *end) {
        const unsigned char *q = p;

#define DIGIT(x) ((x) >= '0' && (x) <= '9')
        if (q < end && *q == '-')
                q++;
        if (q >= end || !DIGIT(*q))
                return 0;
        if (*q == '0')
                q++;
        else
                while (q < end && DIGIT(*q))
                        q++;
        if (q < end && *q == '.') {
                q++;
                if (q >= end || !DIGIT(*q))
                        return 0;
                while (q < end && DIGIT(*q))
                        q++;
        }
        if (q < end && (*q == 'e' || *q == 'E')) {
                q++;
                if (q < end && (*q == '+' || *q == '-'))
                        q++;
                if (q >= end || !DIGIT(*q))
                        return 0;
                while (q < end && DIGIT(*q))
                        q++;
        }
        /* "017" or "1.2.3" would otherwise read as two tokens here and be accepted by cJSON. */
        if (q < end && (DIGIT(*q) || *q == '.' || *q == 'e' || *q == 'E' || *q == '+' || *q == '-'))
                return 0;
#undef DIGIT
        return (size_t) (q - p);
}

/*
 * One pass over the raw bytes before cJSON sees them, for what cJSON does not check or checks too
 * late: nesting depth (its own limit is 1000 and fixed at distro build time), the number of values
 * (cJSON allocates a node of some 64 bytes for each, so a frame of "0,0,0,..." would cost 30 times
 * its size), UTF-8 validity, NUL bytes and "\u0000" (cJSON would silently cut the string there), raw
 * control characters in strings and sloppy numbers (both accepted by cJSON, neither is JSON).
 */
static int request_prescan(const char *frame, size_t len, ErrorReply *err) {
        const unsigned char *p = (const unsigned char *) frame, *end = p + len;
        unsigned depth = 0;
        size_t values = 0;

#define COUNT_VALUE()                                                                                       \
        do {                                                                                                \
                if (++values > REQUEST_VALUES_MAX)                                                          \
                        return fail(err, ERR_BAD_REQUEST, "too many values (more than %d)",                 \
                                    REQUEST_VALUES_MAX);                                                    \
        } while (0)

        while (p < end) {
                unsigned char c = *p;

                if (c == '"') {
                        const unsigned char *s = p++;

                        COUNT_VALUE(); /* keys too: each is a string cJSON copies */

                        for (;;) {
                                if (p >= end)
                                        return fail(err, ERR_BAD_FRAME,
                                                    "invalid JSON: unterminated string at byte %zu",
                                                    (size_t) (s - (const unsigned char *) frame));
                                c = *p;
                                if (c == '"') {
                                        p++;
                                        break;
                                }
                                if (c == '\\' && p + 1 < end && p[1] >= 0x20 && p[1] < 0x80) {
                                        if (p[1] == 'u' && end - p >= 6 && memcmp(p + 2, "0000", 4) == 0)
                                                return fail(err, ERR_BAD_REQUEST,
                                                            "strings must not contain \\u0000 (byte %zu)",
                                                            (size_t) (p - (const unsigned char *) frame));
                                        p += 2;
                                        continue;
                                }
                                if (c == 0)
                                        return fail(err, ERR_BAD_FRAME, "NUL byte at byte %zu",
                                                    (size_t) (p - (const unsigned char *) frame));
                                if (c < 0x20)
                                        return fail(err, ERR_BAD_FRAME,
                                                    "invalid JSON: control character in string at byte %zu",
                                                    (size_t) (p - (const unsigned char *) frame));
                                if (c < 0x80) {
                                        p++;
                                        continue;
                                }
                                size_t n = utf8_sequence_len(p, (size_t) (end - p));
                                if (n == 0)
                                        return fail(err, ERR_BAD_FRAME, "invalid UTF-8 at byte %zu",
                                                    (size_t) (p - (const unsigned char *) frame));
                                p += n;
                        }
                        continue;
                }

                switch (c) {
                case '{':
                case '[':
                        COUNT_VALUE();
                        if (++depth > REQUEST_DEPTH_MAX)
                                return fail(err, ERR_BAD_REQUEST, "nesting too deep (more than %d levels)",
                                            REQUEST_DEPTH_MAX);
                        break;
                case '}':
                case ']':
                        if (depth > 0)
                                depth--;
                        break;
                case '-':
                case '0' ... '9': {
                        size_t n = json_number_len(p, end);

                        COUNT_VALUE();
                        if (n == 0)
                                return fail(err, ERR_BAD_FRAME, "invalid JSON: bad number at byte %zu",
                                            (size_t) (p - (const unsigned char *) frame));
                        p += n;
                        continue;
                }
                case 't': /* true, false, null: each has exactly one of these letters */
                case 'f':
                case 'n':
                        COUNT_VALUE();
                        break;
                case 0:
                        return fail(err, ERR_BAD_FRAME, "NUL byte at byte %zu",
                                    (size_t) (p - (const unsigned char *) frame));
                default:
                        if (c >= 0x80)
                                return fail(err, ERR_BAD_FRAME, "%s at byte %zu",
                                            utf8_sequence_len(p, (size_t) (end - p)) ? "invalid JSON"
                                                                                     : "invalid UTF-8",
                                            (size_t) (p - (const unsigned char *) frame));
                        break;
                }
                p++;
        }
#undef COUNT_VALUE
        return 0;
}

static int key_from_string(const char *s) {
        for (int i = 0; i < _KEY_MAX; i++)
                if (streq(key_names[i], s))
                        return i;
        return -1;
}

/* Takes the string out of a cJSON item so it outlives the tree without a copy. cJSON_Delete()
 * skips a NULL valuestring; the default hooks allocate with malloc(), so free() releases it. */
static char *steal_string(cJSON *item) {
        char *s = item->valuestring;
        item->valuestring = NULL;
        return s;
}

/* An integral number in [min, max]. NaN fails every comparison and so the range check. */
static bool json_get_integer(const cJSON *item, double min, double max, int64_t *ret) {
        double d;

        if (!cJSON_IsNumber(item))
                return false;
        d = item->valuedouble;
        if (!(d >= min && d <= max))
                return false;
        if ((double) (int64_t) d != d) /* exact: |d| <= 2^53 here */
                return false;
        *ret = (int64_t) d;
        return true;
}

static bool task_name_valid(const char *s) {
        size_t n = 0;

        for (; s[n]; n++) {
                char c = s[n];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '.' || c == '-'))
                        return false;
        }
        return n >= 1 && n <= TASK_NAME_BYTES_MAX;
}

static int parse_id(cJSON *item, Request *req, ErrorReply *err) {
        int64_t v;

        if (!json_get_integer(item, 1, REQUEST_ID_MAX, &v))
                return fail(err, ERR_BAD_REQUEST, "'id' must be an integer from 1 to %.0f", REQUEST_ID_MAX);
        req->id = (uint64_t) v;
        req->has_id = true;
        return 0;
}

static int parse_args(cJSON *item, Request *req, ErrorReply *err) {
        cJSON *e;
        size_t n = 0;

        if (!cJSON_IsArray(item))
                return fail(err, ERR_BAD_REQUEST, "'args' must be an array of strings");
        cJSON_ArrayForEach (e, item) {
                if (++n > TASK_ARGS_MAX)
                        return fail(err, ERR_BAD_REQUEST, "'args' has more than %d elements", TASK_ARGS_MAX);
                if (!cJSON_IsString(e))
                        return fail(err, ERR_BAD_REQUEST, "'args' element %zu must be a string", n - 1);
                if (strlen(e->valuestring) > TASK_ARG_BYTES_MAX)
                        return fail(err, ERR_BAD_REQUEST, "'args' element %zu is longer than %d bytes",
                                    n - 1, TASK_ARG_BYTES_MAX);
        }

        req->args = calloc(n + 1, sizeof(char *));
        if (!req->args) {
                error_reply_set(err, ERR_INTERNAL, "out of memory");
                return -ENOMEM;
        }
        n = 0;
        cJSON_ArrayForEach (e, item)
                req->args[n++] = steal_string(e);
        req->n_args = n;
        return 0;
}

static int parse_submit(cJSON **items, Request *req, ErrorReply *err) {
        char q[QUOTE_BYTES_MAX + 4];
        int64_t v;
        int r;

        if (items[KEY_TASK] && items[KEY_CMD])
                return fail(err, ERR_BAD_REQUEST, "'task' and 'cmd' are mutually exclusive");
        if (!items[KEY_TASK] && !items[KEY_CMD])
                return fail(err, ERR_BAD_REQUEST, "submit needs 'task' or 'cmd'");

        if (items[KEY_TASK]) {
                if (!cJSON_IsString(items[KEY_TASK]))
                        return fail(err, ERR_BAD_REQUEST, "'task' must be a string");
                if (!task_name_valid(items[KEY_TASK]->valuestring))
                        return fail(err, ERR_BAD_REQUEST,
                                    "invalid task name '%s': 1 to %d letters, digits, '_', '.' or '-'",
                                    quote(q, items[KEY_TASK]->valuestring), TASK_NAME_BYTES_MAX);
        } else {
                if (!cJSON_IsString(items[KEY_CMD]))
                        return fail(err, ERR_BAD_REQUEST, "'cmd' must be a string");
                if (items[KEY_CMD]->valuestring[0] == '\0')
                        return fail(err, ERR_BAD_REQUEST, "'cmd' must not be empty");
                if (items[KEY_ARGS])
                        return fail(err, ERR_BAD_REQUEST, "'args' is not allowed with 'cmd'");
                /* A listed command is reviewed as a fixed shell line: input it reads is not part of
                 * that review (a "sh" or "php" on the list would run whatever came in). */
                if (items[KEY_STDIN])
                        return fail(err, ERR_BAD_REQUEST, "'stdin' is not allowed with 'cmd'");
        }

        if (items[KEY_KEY]) {
                size_t n;

                if (!cJSON_IsString(items[KEY_KEY]))
                        return fail(err, ERR_BAD_REQUEST, "'key' must be a string");
                n = strlen(items[KEY_KEY]->valuestring);
                if (n < 1 || n > TASK_KEY_BYTES_MAX)
                        return fail(err, ERR_BAD_REQUEST, "'key' must be 1 to %d bytes", TASK_KEY_BYTES_MAX);
        }
        if (items[KEY_DELAY]) {
                if (!json_get_integer(items[KEY_DELAY], 0, DELAY_SEC_MAX, &v))
                        return fail(err, ERR_BAD_REQUEST, "'delay' must be an integer from 0 to %d",
                                    DELAY_SEC_MAX);
                req->delay_sec = (uint64_t) v;
        }
        if (items[KEY_PRIORITY]) {
                if (!json_get_integer(items[KEY_PRIORITY], -1000, 1000, &v))
                        return fail(err, ERR_BAD_REQUEST,
                                    "'priority' must be an integer from -1000 to 1000");
                req->priority = (int) v;
        }
        if (items[KEY_STDIN] && !cJSON_IsString(items[KEY_STDIN]))
                return fail(err, ERR_BAD_REQUEST, "'stdin' must be a string");

        /* Everything is valid: take the strings. */
        if (items[KEY_ARGS]) {
                r = parse_args(items[KEY_ARGS], req, err);
                if (r < 0)
                        return r;
        }
        if (items[KEY_TASK])
                req->task = steal_string(items[KEY_TASK]);
        else
                req->cmd = steal_string(items[KEY_CMD]);
        if (items[KEY_KEY])
                req->key = steal_string(items[KEY_KEY]);
        if (items[KEY_STDIN]) {
                req->stdin_data = steal_string(items[KEY_STDIN]);
                req->stdin_len = strlen(req->stdin_data);
        }
        return 0;
}

static int parse_timeout(cJSON *item, Request *req, ErrorReply *err) {
        double d;

        if (!cJSON_IsNumber(item) || !((d = item->valuedouble) >= 0 && d <= WAIT_SEC_MAX))
                return fail(err, ERR_BAD_REQUEST, "'timeout' must be a number from 0 to %d", WAIT_SEC_MAX);
        req->timeout_usec = (uint64_t) (d * (double) USEC_PER_SEC + 0.5);
        req->has_timeout = true;
        return 0;
}

/* pause, resume: the task name, as tasks.d spells names. */
static int parse_task_name(cJSON *item, Request *req, ErrorReply *err) {
        char q[QUOTE_BYTES_MAX + 4];

        if (!cJSON_IsString(item))
                return fail(err, ERR_BAD_REQUEST, "'task' must be a string");
        if (!task_name_valid(item->valuestring))
                return fail(err, ERR_BAD_REQUEST,
                            "invalid task name '%s': 1 to %d letters, digits, '_', '.' or '-'",
                            quote(q, item->valuestring), TASK_NAME_BYTES_MAX);
        req->task = strdup(item->valuestring);
        if (!req->task) {
                error_reply_set(err, ERR_INTERNAL, "out of memory");
                return -ENOMEM;
        }
        return 0;
}

static int parse_state(cJSON *item, Request *req, ErrorReply *err) {
        char q[QUOTE_BYTES_MAX + 4];
        TaskState s;

        if (!cJSON_IsString(item))
                return fail(err, ERR_BAD_REQUEST, "'state' must be a string");
        s = task_state_from_string(item->valuestring);
        if (s < 0)
                return fail(err, ERR_BAD_REQUEST,
                            "unknown state '%s' (queued, running, succeeded, failed or cancelled)",
                            quote(q, item->valuestring));
        if (req->op == OP_RETRY && s != TASK_FAILED && s != TASK_CANCELLED)
                return fail(err, ERR_BAD_REQUEST,
                            "retry takes 'state' \"failed\" or \"cancelled\", not '%s'", item->valuestring);
        req->state = s;
        req->has_state = true;
        return 0;
}

static int parse_object(cJSON *root, Request *req, ErrorReply *err) {
        char q[QUOTE_BYTES_MAX + 4];
        cJSON *items[_KEY_MAX] = {};
        cJSON *item;
        unsigned seen = 0, allowed;
        int64_t v;

        if (!cJSON_IsObject(root))
                return fail(err, ERR_BAD_REQUEST, "a request must be a JSON object");

        cJSON_ArrayForEach (item, root) {
                int k = key_from_string(item->string);

                if (k < 0)
                        return fail(err, ERR_BAD_REQUEST, "unknown key '%s'", quote(q, item->string));
                if (seen & KEY_BIT(k))
                        return fail(err, ERR_BAD_REQUEST, "duplicate key '%s'", key_names[k]);
                seen |= KEY_BIT(k);
                items[k] = item;
        }

        if (items[KEY_OP]) {
                if (!cJSON_IsString(items[KEY_OP]))
                        return fail(err, ERR_BAD_REQUEST, "'op' must be a string");
                req->op = request_op_from_string(items[KEY_OP]->valuestring);
                if (req->op < 0)
                        return fail(err, ERR_BAD_REQUEST, "unknown op '%s'",
                                    quote(q, items[KEY_OP]->valuestring));
        } else if (items[KEY_TASK] || items[KEY_CMD])
                req->op = OP_SUBMIT;
        else
                return fail(err, ERR_BAD_REQUEST, "missing 'op'");

        allowed = op_keys[req->op];
        for (int k = 0; k < _KEY_MAX; k++)
                if ((seen & KEY_BIT(k)) && !(allowed & KEY_BIT(k)))
                        return fail(err, ERR_BAD_REQUEST, "'%s' is not allowed with op '%s'", key_names[k],
                                    request_op_to_string(req->op));

        switch (req->op) {
        case OP_SUBMIT:
                return parse_submit(items, req, err);

        case OP_STATUS:
        case OP_WAIT:
        case OP_CANCEL:
        case OP_FORGET:
                if (!items[KEY_ID])
                        return fail(err, ERR_BAD_REQUEST, "op '%s' needs 'id'",
                                    request_op_to_string(req->op));
                if (parse_id(items[KEY_ID], req, err) < 0)
                        return -EBADMSG;
                if (items[KEY_TIMEOUT] && parse_timeout(items[KEY_TIMEOUT], req, err) < 0)
                        return -EBADMSG;
                if (items[KEY_PROGRESS_SEEN]) {
                        const cJSON *p = items[KEY_PROGRESS_SEEN];

                        /* A client only has what a record showed it: never longer than that. */
                        if (!cJSON_IsNull(p) &&
                            (!cJSON_IsString(p) || strlen(p->valuestring) > PROGRESS_BYTES_MAX))
                                return fail(err, ERR_BAD_REQUEST,
                                            "'progress_seen' must be null or a string of at most %d bytes",
                                            PROGRESS_BYTES_MAX);
                        if (cJSON_IsString(p)) {
                                req->progress_seen = strdup(p->valuestring);
                                if (!req->progress_seen)
                                        return fail(err, ERR_INTERNAL, "out of memory");
                        }
                        req->has_progress_seen = true;
                }
                return 0;

        case OP_PAUSE:
        case OP_RESUME:
                if (!items[KEY_TASK])
                        return fail(err, ERR_BAD_REQUEST, "op '%s' needs 'task'",
                                    request_op_to_string(req->op));
                return parse_task_name(items[KEY_TASK], req, err);

        case OP_DRAIN:
                return items[KEY_TIMEOUT] ? parse_timeout(items[KEY_TIMEOUT], req, err) : 0;

        case OP_RETRY:
                if (items[KEY_ID] && items[KEY_STATE])
                        return fail(err, ERR_BAD_REQUEST, "retry takes 'id' or 'state', not both");
                if (items[KEY_ID])
                        return parse_id(items[KEY_ID], req, err);
                if (items[KEY_STATE])
                        return parse_state(items[KEY_STATE], req, err);
                return fail(err, ERR_BAD_REQUEST, "retry needs 'id' or 'state'");

        case OP_LIST:
                req->limit = 100;
                if (items[KEY_STATE] && parse_state(items[KEY_STATE], req, err) < 0)
                        return -EBADMSG;
                if (items[KEY_LIMIT]) {
                        if (!json_get_integer(items[KEY_LIMIT], 1, LIST_LIMIT_MAX, &v))
                                return fail(err, ERR_BAD_REQUEST, "'limit' must be an integer from 1 to %d",
                                            LIST_LIMIT_MAX);
                        req->limit = (unsigned) v;
                }
                if (items[KEY_AFTER_ID]) {
                        if (!json_get_integer(items[KEY_AFTER_ID], 0, REQUEST_ID_MAX, &v))
                                return fail(err, ERR_BAD_REQUEST,
                                            "'after_id' must be an integer from 0 to %.0f", REQUEST_ID_MAX);
                        req->after_id = (uint64_t) v;
                }
                return 0;

        default: /* stats, ping, reload, undrain, metrics: nothing but "op" (checked above) */
                return 0;
        }
}

int request_parse(const char *frame, size_t len, Request *ret, ErrorReply *err) {
        Request req = {};
        const char *end = NULL;
        cJSON *root;
        int r;

        r = request_prescan(frame, len, err);
        if (r < 0)
                return r;

        root = cJSON_ParseWithLengthOpts(frame, len, &end, false);
        if (!root) {
                /* cJSON reports where it stopped; it cannot tell a syntax error from a failed malloc,
                 * and after the prescan the former is by far the likelier. */
                size_t at = end && end >= frame && end <= frame + len ? (size_t) (end - frame) : 0;
                return fail(err, ERR_BAD_FRAME, "invalid JSON at byte %zu", at);
        }
        while (end < frame + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
                end++;
        if (end != frame + len) {
                cJSON_Delete(root);
                return fail(err, ERR_BAD_FRAME, "invalid JSON: trailing data at byte %zu",
                            (size_t) (end - frame));
        }

        r = parse_object(root, &req, err);
        cJSON_Delete(root);
        if (r < 0) {
                request_done(&req);
                return r;
        }
        *ret = req;
        return 0;
}

void request_done(Request *req) {
        if (!req)
                return;
        free(req->task);
        free(req->cmd);
        free(req->php_class);
        if (req->args)
                for (size_t i = 0; i < req->n_args; i++)
                        free(req->args[i]);
        free(req->args);
        free(req->key);
        free(req->stdin_data);
        free(req->progress_seen);
        *req = (Request){};
}

/* A copy of n bytes of p (NULL stays NULL), NUL-terminated. */
static int dup_bytes(const char *p, size_t n, char **ret) {
        char *q;

        *ret = NULL;
        if (!p)
                return 0;
        q = malloc(n + 1);
        if (!q)
                return -ENOMEM;
        memcpy(q, p, n);
        q[n] = 0;
        *ret = q;
        return 0;
}

int request_copy(const Request *src, Request *ret) {
        Request r = *src;
        int k = 0;

        r.task = r.cmd = r.php_class = r.key = r.stdin_data = NULL;
        r.args = NULL;
        r.n_args = 0;
        if (src->args) {
                r.args = calloc(src->n_args + 1, sizeof(char *));
                if (!r.args)
                        return -ENOMEM;
                for (; r.n_args < src->n_args && k >= 0; r.n_args++)
                        k = dup_bytes(src->args[r.n_args], strlen(src->args[r.n_args]), &r.args[r.n_args]);
        }
        if (k >= 0 && src->task)
                k = dup_bytes(src->task, strlen(src->task), &r.task);
        if (k >= 0 && src->cmd)
                k = dup_bytes(src->cmd, strlen(src->cmd), &r.cmd);
        if (k >= 0 && src->php_class)
                k = dup_bytes(src->php_class, strlen(src->php_class), &r.php_class);
        if (k >= 0 && src->key)
                k = dup_bytes(src->key, strlen(src->key), &r.key);
        if (k >= 0)
                k = dup_bytes(src->stdin_data, src->stdin_len, &r.stdin_data);
        if (k < 0) {
                request_done(&r);
                return k;
        }
        *ret = r;
        return 0;
}
