/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/limits.h"
#include "front/seed.h"
#include "front/utf8.h"
#include "shared/util.h"

/*
 * A strict checker for PHP serialize() output, as a recursive-descent parser over the raw bytes:
 *   N;  b:0|1;  i:<int>;  d:<float>;  s:<len>:"<len bytes>";  S:<len>:"<escaped>";
 *   a:<n>:{<n key/value pairs>}  O:<len>:"<class>":<n>:{<n pairs>}  C:<len>:"<class>":<len>:{<bytes>}
 *   E:<len>:"<class>:<case>";  r:<n>;  R:<n>;
 * Keys are i: or s: (S:). Every length and count must be exact, so a truncated or lying frame is
 * refused here rather than by unserialize() in the task, long after the client was told "queued".
 * Nothing is decoded or copied except the one thing a submission needs.
 */

typedef struct SeedParser {
        const char *base;
        const char *p;
        const char *end;
        unsigned depth;
        uint64_t values; /* values seen so far: the slots r:/R: may refer to */
        const char *top_class;
        size_t top_class_len;
        ErrorReply *err;
} SeedParser;

static int seed_fail(SeedParser *s, const char *fmt, ...) _printf_(2, 3);
static int seed_fail(SeedParser *s, const char *fmt, ...) {
        static const char prefix[] = "seed frame: ";
        va_list ap;

        s->err->code = ERR_BAD_FRAME;
        memcpy(s->err->message, prefix, sizeof(prefix));
        va_start(ap, fmt);
        (void) vsnprintf(s->err->message + sizeof(prefix) - 1, sizeof(s->err->message) - sizeof(prefix) + 1,
                         fmt, ap);
        va_end(ap);
        return -EBADMSG;
}

static size_t seed_pos(const SeedParser *s) {
        return (size_t) (s->p - s->base);
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool is_hex(char c) {
        return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int seed_oom(SeedParser *s) {
        error_reply_set(s->err, ERR_INTERNAL, "out of memory");
        return -ENOMEM;
}

static int expect(SeedParser *s, char c) {
        if (s->p >= s->end)
                return seed_fail(s, "truncated at byte %zu, expected '%c'", seed_pos(s), c);
        if (*s->p != c) {
                unsigned char got = (unsigned char) *s->p;
                if (got >= 0x20 && got < 0x7f)
                        return seed_fail(s, "expected '%c' at byte %zu, found '%c'", c, seed_pos(s), got);
                return seed_fail(s, "expected '%c' at byte %zu, found byte 0x%02x", c, seed_pos(s), got);
        }
        s->p++;
        return 0;
}

/* A length or count: decimal digits, no sign, no leading zero. It can never exceed the frame. */
static int parse_length(SeedParser *s, const char *what, size_t *ret) {
        const char *start = s->p;
        size_t v = 0, limit = (size_t) (s->end - s->base);

        while (s->p < s->end && is_digit(*s->p)) {
                v = v * 10 + (size_t) (*s->p - '0');
                s->p++;
                if (v > limit)
                        return seed_fail(s, "%s at byte %zu exceeds the frame", what,
                                         (size_t) (start - s->base));
        }
        if (s->p == start)
                return seed_fail(s, "expected a %s at byte %zu", what, (size_t) (start - s->base));
        if (*start == '0' && s->p - start > 1)
                return seed_fail(s, "%s at byte %zu has a leading zero", what, (size_t) (start - s->base));
        *ret = v;
        return 0;
}

/* i: values and r:/R: slots: [+-]?[0-9]+ within int64, as unserialize() takes them. */
static int parse_int(SeedParser *s, int64_t *ret) {
        const char *start = s->p;
        bool neg = false;
        uint64_t v = 0, limit;

        if (s->p < s->end && (*s->p == '-' || *s->p == '+')) {
                neg = *s->p == '-';
                s->p++;
        }
        limit = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
        if (s->p >= s->end || !is_digit(*s->p))
                return seed_fail(s, "expected an integer at byte %zu", (size_t) (start - s->base));
        while (s->p < s->end && is_digit(*s->p)) {
                unsigned d = (unsigned) (*s->p - '0');
                if (v > (limit - d) / 10)
                        return seed_fail(s, "integer at byte %zu out of range", (size_t) (start - s->base));
                v = v * 10 + d;
                s->p++;
        }
        *ret = neg ? (int64_t) (0 - v) : (int64_t) v;
        return 0;
}

static size_t skip_digits(SeedParser *s) {
        const char *start = s->p;
        while (s->p < s->end && is_digit(*s->p))
                s->p++;
        return (size_t) (s->p - start);
}

/* d: values: NAN, INF, -INF, or [+-]? (digits | digits.digits* | digits*.digits) ([eE][+-]?digits)? */
static int parse_float(SeedParser *s) {
        const char *start = s->p;
        size_t left = (size_t) (s->end - s->p), n;

        if (left >= 3 && memcmp(s->p, "NAN", 3) == 0) {
                s->p += 3;
                return 0;
        }
        if (left >= 3 && memcmp(s->p, "INF", 3) == 0) {
                s->p += 3;
                return 0;
        }
        if (left >= 4 && memcmp(s->p, "-INF", 4) == 0) {
                s->p += 4;
                return 0;
        }
        if (s->p < s->end && (*s->p == '-' || *s->p == '+'))
                s->p++;
        n = skip_digits(s);
        if (s->p < s->end && *s->p == '.') {
                s->p++;
                n += skip_digits(s);
        }
        if (n == 0)
                return seed_fail(s, "expected a number at byte %zu", (size_t) (start - s->base));
        if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
                s->p++;
                if (s->p < s->end && (*s->p == '-' || *s->p == '+'))
                        s->p++;
                if (skip_digits(s) == 0)
                        return seed_fail(s, "bad exponent at byte %zu", seed_pos(s));
        }
        return 0;
}

/* "<n bytes>" after the length prefix n. */
static int parse_quoted(SeedParser *s, size_t n, const char *what, const char **ret) {
        const char *start;
        int r;

        r = expect(s, '"');
        if (r < 0)
                return r;
        start = s->p;
        if ((size_t) (s->end - s->p) <= n || s->p[n] != '"')
                return seed_fail(s, "%s length %zu does not match the data at byte %zu", what, n,
                                 (size_t) (start - 1 - s->base));
        s->p += n + 1;
        if (ret)
                *ret = start;
        return 0;
}

/* S:n:"..." holds n bytes once "\xx" hex escapes are decoded. */
static int parse_escaped(SeedParser *s, size_t n) {
        size_t at, decoded = 0;
        int r;

        r = expect(s, '"');
        if (r < 0)
                return r;
        at = seed_pos(s) - 1;
        while (decoded < n) {
                if (s->p >= s->end)
                        return seed_fail(s, "string length %zu does not match the data at byte %zu", n, at);
                if (*s->p == '\\') {
                        if (s->end - s->p < 3 || !is_hex(s->p[1]) || !is_hex(s->p[2]))
                                return seed_fail(s, "bad escape in string at byte %zu", seed_pos(s));
                        s->p += 3;
                } else
                        s->p++;
                decoded++;
        }
        if (s->p >= s->end || *s->p != '"')
                return seed_fail(s, "string length %zu does not match the data at byte %zu", n, at);
        s->p++;
        return 0;
}

static bool ident_start(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool ident_char(unsigned char c) {
        return ident_start(c) || is_digit((char) c);
}

/* A PHP identifier (namespaced with backslashes if allow_ns), and valid UTF-8 so that it can be
 * quoted in JSON answers and matched against the config. */
static bool php_name_valid(const char *name, size_t len, bool allow_ns) {
        bool segment_start = true;

        if (len == 0 || utf8_valid_len(name, len) != len)
                return false;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) name[i];

                if (c == '\\' && allow_ns) {
                        if (segment_start)
                                return false;
                        segment_start = true;
                        continue;
                }
                if (segment_start ? !ident_start(c) : !ident_char(c))
                        return false;
                segment_start = false;
        }
        return !segment_start;
}

static int parse_class_name(SeedParser *s, const char **ret, size_t *ret_len) {
        const char *name;
        size_t n, at;
        int r;

        at = seed_pos(s);
        r = parse_length(s, "class name length", &n);
        if (r < 0)
                return r;
        r = expect(s, ':');
        if (r < 0)
                return r;
        r = parse_quoted(s, n, "class name", &name);
        if (r < 0)
                return r;
        if (!php_name_valid(name, n, true))
                return seed_fail(s, "invalid class name at byte %zu", at);
        *ret = name;
        *ret_len = n;
        return 0;
}

static int parse_value(SeedParser *s);

/* An array key: i:<int>; or s:<len>:"...";  (S: too, as unserialize() takes it). */
static int parse_key(SeedParser *s) {
        size_t n;
        int64_t v;
        char t;
        int r;

        if (s->p >= s->end)
                return seed_fail(s, "truncated at byte %zu, expected a key", seed_pos(s));
        t = *s->p;
        if (t != 'i' && t != 's' && t != 'S')
                return seed_fail(s, "expected an i: or s: key at byte %zu", seed_pos(s));
        s->p++;
        r = expect(s, ':');
        if (r < 0)
                return r;
        if (t == 'i')
                r = parse_int(s, &v);
        else {
                r = parse_length(s, "string length", &n);
                if (r >= 0)
                        r = expect(s, ':');
                if (r >= 0)
                        r = t == 's' ? parse_quoted(s, n, "string", NULL) : parse_escaped(s, n);
        }
        if (r < 0)
                return r;
        return expect(s, ';');
}

/* "<count>:{" <count> key/value pairs "}" of an array or an object's properties. */
static int parse_members(SeedParser *s, const char *what) {
        size_t count, at;
        int r;

        r = parse_length(s, "element count", &count);
        if (r < 0)
                return r;
        r = expect(s, ':');
        if (r < 0)
                return r;
        at = seed_pos(s);
        r = expect(s, '{');
        if (r < 0)
                return r;
        if (++s->depth > SEED_DEPTH_MAX)
                return seed_fail(s, "nesting deeper than %d levels at byte %zu", SEED_DEPTH_MAX, at);
        for (size_t i = 0; i < count; i++) {
                if (s->p < s->end && *s->p == '}')
                        return seed_fail(s, "%s at byte %zu claims %zu elements but has %zu", what, at,
                                         count, i);
                r = parse_key(s);
                if (r < 0)
                        return r;
                r = parse_value(s);
                if (r < 0)
                        return r;
        }
        if (s->p < s->end && *s->p != '}')
                return seed_fail(s, "%s at byte %zu claims %zu elements but has more", what, at, count);
        r = expect(s, '}');
        if (r < 0)
                return r;
        s->depth--;
        return 0;
}

static int parse_value(SeedParser *s) {
        const char *name;
        size_t n, at = seed_pos(s);
        int64_t v;
        char t;
        int r;

        if (s->p >= s->end)
                return seed_fail(s, "truncated at byte %zu, expected a value", at);
        t = *s->p++;
        s->values++;

        if (t == 'N')
                return expect(s, ';');

        r = expect(s, ':');
        if (r < 0)
                return r;

        switch (t) {
        case 'b':
                if (s->p >= s->end || (*s->p != '0' && *s->p != '1'))
                        return seed_fail(s, "expected 0 or 1 at byte %zu", seed_pos(s));
                s->p++;
                break;
        case 'i':
                r = parse_int(s, &v);
                break;
        case 'd':
                r = parse_float(s);
                break;
        case 's':
        case 'S':
                r = parse_length(s, "string length", &n);
                if (r >= 0)
                        r = expect(s, ':');
                if (r >= 0)
                        r = t == 's' ? parse_quoted(s, n, "string", NULL) : parse_escaped(s, n);
                break;
        case 'a':
                return parse_members(s, "array");
        case 'O':
                r = parse_class_name(s, &name, &n);
                if (r < 0)
                        return r;
                if (s->depth == 0 && !s->top_class) {
                        s->top_class = name;
                        s->top_class_len = n;
                }
                r = expect(s, ':');
                if (r < 0)
                        return r;
                return parse_members(s, "object");
        case 'C':
                /* Serializable::serialize() output: opaque bytes, only their count is checked. */
                r = parse_class_name(s, &name, &n);
                if (r >= 0)
                        r = expect(s, ':');
                if (r >= 0)
                        r = parse_length(s, "custom data length", &n);
                if (r >= 0)
                        r = expect(s, ':');
                if (r >= 0)
                        r = expect(s, '{');
                if (r < 0)
                        return r;
                if ((size_t) (s->end - s->p) <= n || s->p[n] != '}')
                        return seed_fail(s, "custom data length %zu does not match the data at byte %zu", n,
                                         seed_pos(s) - 1);
                s->p += n + 1;
                return 0;
        case 'E': {
                /* An enum case, "Class:Case". */
                const char *colon;

                r = parse_length(s, "enum name length", &n);
                if (r >= 0)
                        r = expect(s, ':');
                if (r >= 0)
                        r = parse_quoted(s, n, "enum name", &name);
                if (r < 0)
                        return r;
                colon = memchr(name, ':', n);
                if (!colon || !php_name_valid(name, (size_t) (colon - name), true) ||
                    !php_name_valid(colon + 1, n - (size_t) (colon - name) - 1, false))
                        return seed_fail(s, "invalid enum name at byte %zu", at);
                break;
        }
        case 'r':
        case 'R':
                r = parse_int(s, &v);
                if (r >= 0 && (v < 1 || (uint64_t) v >= s->values))
                        return seed_fail(s, "reference %" PRId64 " at byte %zu points to no earlier value",
                                         v, at);
                break;
        default:
                if ((unsigned char) t >= 0x20 && (unsigned char) t < 0x7f)
                        return seed_fail(s, "unknown value type '%c' at byte %zu", t, at);
                return seed_fail(s, "unknown value type 0x%02x at byte %zu", (unsigned char) t, at);
        }
        if (r < 0)
                return r;
        return expect(s, ';');
}

bool seed_frame_detect(const char *frame, size_t len) {
        return len >= 2 && (frame[0] == 's' || frame[0] == 'O') && frame[1] == ':';
}

static int seed_parse_string(SeedParser *s, Request *ret) {
        const char *data;
        size_t n;
        char *cmd;
        int r;

        s->p += 2; /* "s:" */
        r = parse_length(s, "string length", &n);
        if (r >= 0)
                r = expect(s, ':');
        if (r >= 0)
                r = parse_quoted(s, n, "string", &data);
        if (r >= 0)
                r = expect(s, ';');
        if (r < 0)
                return r;
        if (s->p != s->end)
                return seed_fail(s, "unexpected bytes after the string at byte %zu", seed_pos(s));
        if (n == 0)
                return seed_fail(s, "empty command");
        if (memchr(data, '\0', n))
                return seed_fail(s, "command contains a NUL byte");
        if (utf8_valid_len(data, n) != n)
                return seed_fail(s, "command is not valid UTF-8");

        cmd = strndup(data, n);
        if (!cmd)
                return seed_oom(s);
        *ret = (Request){
                .op = OP_SUBMIT,
                .cmd = cmd,
        };
        return 0;
}

static int seed_parse_object(SeedParser *s, Request *ret) {
        _cleanup_free_ char *class = NULL;
        char *data;
        size_t len;
        int r;

        r = parse_value(s);
        if (r < 0)
                return r;
        if (s->p != s->end)
                return seed_fail(s, "unexpected bytes after the object at byte %zu", seed_pos(s));

        /* The frame buffer belongs to the reader: the task's stdin needs its own copy. */
        len = (size_t) (s->end - s->base);
        class = strndup(s->top_class, s->top_class_len);
        data = malloc(len + 1);
        if (!class || !data) {
                free(data);
                return seed_oom(s);
        }
        memcpy(data, s->base, len);
        data[len] = '\0';

        *ret = (Request){
                .op = OP_SUBMIT,
                .php_class = TAKE_PTR(class),
                .stdin_data = data,
                .stdin_len = len,
        };
        return 0;
}

int seed_parse(const char *frame, size_t len, Request *ret, ErrorReply *err) {
        SeedParser s = {
                .base = frame,
                .p = frame,
                .end = frame + len,
                .err = err,
        };

        if (!seed_frame_detect(frame, len)) {
                error_reply_set(err, ERR_BAD_FRAME, "seed frame: must start with s: or O:");
                return -EBADMSG;
        }
        return frame[0] == 's' ? seed_parse_string(&s, ret) : seed_parse_object(&s, ret);
}
