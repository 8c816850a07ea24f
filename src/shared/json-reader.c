/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <linux/limits.h> /* PATH_MAX; <limits.h> is shadowed by src/limits.h under -Isrc */
#include <stdarg.h>
#include <sys/stat.h>

#include "shared/json-reader.h"
#include "shared/limits.h"

/* ---- keys and reports -------------------------------------------------------------------------- */

/* Marks a cut path with "..." so a reader knows it is incomplete. */
static JsonKey key_cut(JsonKey k, int written) {
        if (written >= (int) sizeof(k.s))
                memcpy(k.s + sizeof(k.s) - 4, "...", 4);
        return k;
}

JsonKey json_reader_key_member(const char *parent, const char *name) {
        JsonKey k;
        if (parent[0])
                return key_cut(k, snprintf(k.s, sizeof(k.s), "%s.%s", parent, name));
        return key_cut(k, snprintf(k.s, sizeof(k.s), "%s", name));
}

JsonKey json_reader_key_index(const char *parent, size_t i) {
        JsonKey k;
        return key_cut(k, snprintf(k.s, sizeof(k.s), "%s[%zu]", parent, i));
}

void json_reader_report(JsonReader *rd, const char *key, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        rd->n_errors++;
        if (!rd->on_error || rd->n_errors > CONFIG_ERRORS_MAX + 1)
                return;
        if (rd->n_errors == CONFIG_ERRORS_MAX + 1) {
                rd->on_error(rd->file, "", "too many errors, not reporting more", rd->userdata);
                return;
        }
        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        rd->on_error(rd->file, key, msg, rd->userdata);
}

char *json_reader_strdup(JsonReader *rd, const char *s) {
        char *p = strdup(s);
        if (!p)
                rd->oom = true;
        return p;
}

void *json_reader_new_array(JsonReader *rd, size_t n, size_t size) {
        void *p = calloc(n + 1, size);
        if (!p)
                rd->oom = true;
        return p;
}

const char *json_reader_type_name(const cJSON *j) {
        if (cJSON_IsString(j))
                return "a string";
        if (cJSON_IsNumber(j))
                return "a number";
        if (cJSON_IsBool(j))
                return "a boolean";
        if (cJSON_IsNull(j))
                return "null";
        if (cJSON_IsArray(j))
                return "an array";
        if (cJSON_IsObject(j))
                return "an object";
        return "invalid";
}

/* ---- files ------------------------------------------------------------------------------------- */

bool json_reader_trusted(JsonReader *rd, const struct stat *st) {
        const char *what = S_ISDIR(st->st_mode) ? "directory" : "file";
        char owner[32] = "root";

        if (!rd->trusted_only)
                return true;
        if (rd->trusted_owner != 0)
                (void) snprintf(owner, sizeof(owner), "uid %u", (unsigned) rd->trusted_owner);
        if (st->st_uid != rd->trusted_owner) {
                json_reader_report(
                        rd, "",
                        "%s owned by uid %u: the launcher reads only what %s owns and no one else "
                        "may change",
                        what, (unsigned) st->st_uid, owner);
                return false;
        }
        if (st->st_mode & (S_IWGRP | S_IWOTH)) {
                json_reader_report(
                        rd, "",
                        "%s writable by %s (mode %04o): the launcher reads only what %s owns and no "
                        "one else may change",
                        what, st->st_mode & S_IWOTH ? "anyone" : "its group",
                        (unsigned) (st->st_mode & 07777), owner);
                return false;
        }
        return true;
}

/* Reads a whole file, refusing anything but a regular file of at most CONFIG_FILE_BYTES_MAX. *ret_st is
 * its fstat(). */
static int read_bounded_file(const char *path, char **ret, size_t *ret_size, struct stat *ret_st) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t size = 0;

        /* O_NONBLOCK: a FIFO dropped into tasks.d must not hang the daemon in open(). */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (st.st_size > CONFIG_FILE_BYTES_MAX)
                return -EFBIG;

        buf = malloc(CONFIG_FILE_BYTES_MAX + 2);
        if (!buf)
                return -ENOMEM;
        /* Read one byte past the limit, so a file that grew since fstat() is caught too. */
        while (size <= CONFIG_FILE_BYTES_MAX) {
                ssize_t k = read(fd, buf + size, CONFIG_FILE_BYTES_MAX + 1 - size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                size += (size_t) k;
        }
        if (size > CONFIG_FILE_BYTES_MAX)
                return -EFBIG;
        buf[size] = '\0';

        *ret = TAKE_PTR(buf);
        *ret_size = size;
        *ret_st = st;
        return 0;
}

/* read_bounded_file(), with what went wrong reported. */
static int read_file_reporting(JsonReader *rd, const char *path, char **ret, size_t *ret_size,
                               struct stat *ret_st) {
        int r = read_bounded_file(path, ret, ret_size, ret_st);

        if (r == -ENOMEM)
                rd->oom = true;
        else if (r == -EFBIG)
                json_reader_report(rd, "", "file is larger than %d bytes", CONFIG_FILE_BYTES_MAX);
        else if (r == -EBADFD)
                json_reader_report(rd, "", "not a regular file");
        else if (r < 0)
                json_reader_report(rd, "", "cannot read: %s", strerror(-r));
        if (r < 0 && r != -ENOMEM && r != -EFBIG && !rd->io_error)
                rd->io_error = r;
        return r;
}

static unsigned line_of(const char *buf, size_t offset, unsigned *ret_column) {
        unsigned line = 1, column = 1;

        for (size_t i = 0; i < offset; i++) {
                if (buf[i] == '\n') {
                        line++;
                        column = 1;
                } else
                        column++;
        }
        *ret_column = column;
        return line;
}

static bool hex4_is_zero(const char *p, size_t left) {
        return left >= 4 && p[0] == '0' && p[1] == '0' && p[2] == '0' && p[3] == '0';
}

/* cJSON turns "\u0000" into an early end of the string and passes raw control characters and NUL bytes
 * through, so a value could be silently cut short; refuse them, with the line they are on. */
static void check_json_text(JsonReader *rd, const char *buf, size_t len) {
        bool in_string = false;
        unsigned line = 1, col = 0; /* of buf[i], tracked as we go: the file may be large */

        for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char) buf[i];

                col++;
                if (ch == '\0') {
                        json_reader_report(rd, "", "NUL byte at line %u, column %u", line, col);
                        return;
                }
                if (ch == '\n' && in_string) {
                        json_reader_report(rd, "", "line break in a string at line %u, column %u", line,
                                           col);
                        in_string = false; /* an unterminated string: let the parser say more */
                }
                if (ch == '\n') {
                        line++;
                        col = 0;
                        continue;
                }
                if (!in_string) {
                        if (ch == '"')
                                in_string = true;
                        continue;
                }
                if (ch == '"')
                        in_string = false;
                else if (ch < 0x20)
                        json_reader_report(rd, "",
                                           "control character 0x%02x in a string at line %u, column %u", ch,
                                           line, col);
                else if (ch == '\\' && i + 1 < len) {
                        if (buf[i + 1] == 'u' && hex4_is_zero(buf + i + 2, len - i - 2))
                                json_reader_report(rd, "", "\\u0000 (NUL) in a string at line %u, column %u",
                                                   line, col);
                        if (buf[i + 1] != '\n') {
                                i++;
                                col++;
                        }
                }
        }
}

/* Parses buf as exactly one JSON object, with nothing but white space after it. */
static cJSON *parse_one_object(JsonReader *rd, const char *buf, size_t size) {
        const char *end = NULL;
        unsigned line, col;

        cJSON *root = cJSON_ParseWithLengthOpts(buf, size, &end, false);
        if (!root) {
                size_t off = end && end >= buf && end <= buf + size ? (size_t) (end - buf) : size;
                line = line_of(buf, off, &col);
                json_reader_report(rd, "", "invalid JSON at line %u, column %u", line, col);
                return NULL;
        }
        size_t rest = (size_t) (end - buf);
        rest += strspn(end, " \t\r\n");
        if (rest < size) {
                line = line_of(buf, rest, &col);
                json_reader_report(rd, "", "unexpected text after the JSON value at line %u, column %u",
                                   line, col);
                cJSON_Delete(root);
                return NULL;
        }
        if (!cJSON_IsObject(root)) {
                json_reader_report(rd, "", "expected a JSON object, got %s", json_reader_type_name(root));
                cJSON_Delete(root);
                return NULL;
        }
        return root;
}

cJSON *json_reader_load_file(JsonReader *rd, const char *path) {
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t size = 0;

        if (read_file_reporting(rd, path, &buf, &size, &st) < 0)
                return NULL;
        if (!json_reader_trusted(rd, &st))
                return NULL;
        if (size == strspn(buf, " \t\r\n")) {
                json_reader_report(rd, "", "file is empty (expected a JSON object)");
                return NULL;
        }
        check_json_text(rd, buf, size);
        return parse_one_object(rd, buf, size);
}

/* ---- members ----------------------------------------------------------------------------------- */

static bool str_in(const char *s, const char *const *list) {
        for (; list && *list; list++)
                if (streq(s, *list))
                        return true;
        return false;
}

static int cmp_member_names(const void *a, const void *b) {
        return strcmp((*(const cJSON *const *) a)->string, (*(const cJSON *const *) b)->string);
}

/* Sorted, so that finding repeats stays O(n log n) however many keys a file has. */
static void check_repeated_members(JsonReader *rd, const cJSON *obj, const char *path) {
        size_t n = (size_t) cJSON_GetArraySize(obj), i = 0;
        const cJSON *item;

        if (n < 2)
                return;
        _cleanup_free_ const cJSON **sorted = calloc(n, sizeof(cJSON *));
        if (!sorted) {
                rd->oom = true;
                return;
        }
        cJSON_ArrayForEach (item, obj)
                sorted[i++] = item;
        qsort(sorted, n, sizeof(cJSON *), cmp_member_names);
        for (i = 1; i < n; i++)
                if (streq(sorted[i]->string, sorted[i - 1]->string) &&
                    (i + 1 == n || !streq(sorted[i + 1]->string, sorted[i]->string)))
                        json_reader_report(rd, json_reader_key_member(path, sorted[i]->string).s,
                                           "key is given more than once");
}

void json_reader_check_members(JsonReader *rd, const cJSON *obj, const char *path,
                               const char *const *allowed, const char *const *allowed_too) {
        const cJSON *item;

        if (allowed || allowed_too)
                cJSON_ArrayForEach (item, obj) {
                        if (!str_in(item->string, allowed) && !str_in(item->string, allowed_too))
                                json_reader_report(rd, json_reader_key_member(path, item->string).s,
                                                   "unknown key");
                }
        check_repeated_members(rd, obj, path);
}

/* ---- typed getters ----------------------------------------------------------------------------- */

bool json_reader_expect_object(JsonReader *rd, const cJSON *j, const char *key) {
        if (cJSON_IsObject(j))
                return true;
        json_reader_report(rd, key, "expected an object, got %s", json_reader_type_name(j));
        return false;
}

bool json_reader_expect_array(JsonReader *rd, const cJSON *j, const char *key) {
        if (cJSON_IsArray(j))
                return true;
        json_reader_report(rd, key, "expected an array, got %s", json_reader_type_name(j));
        return false;
}

bool json_reader_get_string(JsonReader *rd, const cJSON *j, const char *key, bool allow_empty,
                            const char **ret) {
        if (!cJSON_IsString(j) || !j->valuestring) {
                json_reader_report(rd, key, "expected a string, got %s", json_reader_type_name(j));
                return false;
        }
        if (!allow_empty && j->valuestring[0] == '\0') {
                json_reader_report(rd, key, "must not be empty");
                return false;
        }
        *ret = j->valuestring;
        return true;
}

bool json_reader_get_bool(JsonReader *rd, const cJSON *j, const char *key, bool *ret) {
        if (!cJSON_IsBool(j)) {
                json_reader_report(rd, key, "expected true or false, got %s", json_reader_type_name(j));
                return false;
        }
        *ret = cJSON_IsTrue(j);
        return true;
}

bool json_reader_get_integer(JsonReader *rd, const cJSON *j, const char *key, int64_t min, int64_t max,
                             int64_t *ret) {
        if (!cJSON_IsNumber(j)) {
                json_reader_report(rd, key, "expected an integer, got %s", json_reader_type_name(j));
                return false;
        }
        double d = j->valuedouble;
        if (!(d >= (double) min && d <= (double) max)) {
                json_reader_report(rd, key, "must be between %lld and %lld", (long long) min,
                                   (long long) max);
                return false;
        }
        if (d != (double) (int64_t) d) {
                json_reader_report(rd, key, "expected an integer, got %g", d);
                return false;
        }
        *ret = (int64_t) d;
        return true;
}

bool json_reader_get_absolute_path(JsonReader *rd, const cJSON *j, const char *key, const char **ret) {
        const char *s;

        if (!json_reader_get_string(rd, j, key, false, &s))
                return false;
        if (s[0] != '/') {
                json_reader_report(rd, key, "'%s' is not an absolute path", s);
                return false;
        }
        if (strlen(s) >= PATH_MAX) {
                json_reader_report(rd, key, "path is longer than %d bytes", PATH_MAX - 1);
                return false;
        }
        *ret = s;
        return true;
}

bool json_reader_get_choice(JsonReader *rd, const cJSON *j, const char *key, const char *const *values,
                            size_t *ret) {
        char list[128] = "";
        const char *s;

        if (!json_reader_get_string(rd, j, key, false, &s))
                return false;
        for (size_t i = 0; values[i]; i++)
                if (streq(s, values[i])) {
                        *ret = i;
                        return true;
                }
        for (const char *const *v = values; *v; v++) {
                size_t len = strlen(list);
                (void) snprintf(list + len, sizeof(list) - len, "%s\"%s\"", len ? ", " : "", *v);
        }
        json_reader_report(rd, key, "'%s' is not one of %s", s, list);
        return false;
}

void json_reader_member_bool(JsonReader *rd, const cJSON *obj, const char *path, const char *name,
                             bool *ret) {
        const cJSON *j = json_reader_member(obj, name);
        if (j)
                (void) json_reader_get_bool(rd, j, json_reader_key_member(path, name).s, ret);
}

void json_reader_member_unsigned(JsonReader *rd, const cJSON *obj, const char *path, const char *name,
                                 unsigned min, unsigned max, unsigned *ret) {
        const cJSON *j = json_reader_member(obj, name);
        int64_t v;
        if (j && json_reader_get_integer(rd, j, json_reader_key_member(path, name).s, min, max, &v))
                *ret = (unsigned) v;
}

void json_reader_member_u64(JsonReader *rd, const cJSON *obj, const char *path, const char *name,
                            uint64_t min, uint64_t max, uint64_t *ret) {
        const cJSON *j = json_reader_member(obj, name);
        int64_t v;
        if (j && json_reader_get_integer(rd, j, json_reader_key_member(path, name).s, (int64_t) min,
                                         (int64_t) max, &v))
                *ret = (uint64_t) v;
}
