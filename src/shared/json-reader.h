/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Strict reading of JSON files written by people (the configuration): a file is one JSON object of
 * at most CONFIG_FILE_BYTES_MAX with no NUL, raw control character or "\u0000" in its strings; the
 * getters take exactly one JSON type, integers only where an integer is meant, within a range; keys
 * that are unknown or given twice are found. Every problem is reported with the file and the key it
 * is about, and reading goes on, so that one pass names them all.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/stat.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "shared/util.h"

/* Called once per problem; key is a JSON path such as "backoff_sec[2]", "" for the file as a whole. */
typedef void (*JsonReaderErrorFn)(const char *file, const char *key, const char *message, void *userdata);

/* One reading pass over one or more files: where to report, and what went wrong so far. */
typedef struct JsonReader {
        JsonReaderErrorFn on_error; /* NULL: count problems without reporting them */
        void *userdata;
        const char *file; /* the file being read now, named in each report */
        unsigned n_errors;
        int io_error; /* the first -errno from reading a file, if any */
        bool oom;
        /* The launcher's reading: each file and directory must be owned by trusted_owner and writable
         * by no one else (json_reader_trusted()). */
        bool trusted_only;
        uid_t trusted_owner;
} JsonReader;

/* A JSON path such as "commands[2].allow.networks[0]"; a path too long for it is cut and ends in
 * "...", which only shortens a message. */
typedef struct JsonKey {
        char s[256];
} JsonKey;

/* "parent.name", or "name" when parent is "" (the top of the file). */
JsonKey json_reader_key_member(const char *parent, const char *name);
/* "parent[i]". */
JsonKey json_reader_key_index(const char *parent, size_t i);

/* Counts a problem and reports it; past CONFIG_ERRORS_MAX only once more, to say that it stops. */
_printf_(3, 4) void json_reader_report(JsonReader *rd, const char *key, const char *fmt, ...);

/* strdup(), and calloc() of n + 1 elements (room for a NULL terminator, and never calloc(0)); both note
 * a failure in rd->oom. */
char *json_reader_strdup(JsonReader *rd, const char *s);
void *json_reader_new_array(JsonReader *rd, size_t n, size_t size);

/* Reads and parses a whole file into its JSON object, reporting every problem. A string cJSON would
 * take in but that is refused here (a raw control character, NUL) is reported and the object still
 * returned, so that its keys are checked too. NULL when there is no object; a failed read (other than
 * a file too large) is then kept in rd->io_error, a failed allocation in rd->oom. */
cJSON *json_reader_load_file(JsonReader *rd, const char *path);

/* With rd->trusted_only: whether a file or directory (its fstat()) may be read. Only its owner may be
 * able to change it, and that must be rd->trusted_owner (root for the launcher in production): whoever
 * can change what a task runs, or as whom, could run anything as root. Reports why not. Without
 * trusted_only, always true. */
bool json_reader_trusted(JsonReader *rd, const struct stat *st);

/* "a string", "a number", "an array", ...: what j is, for messages. */
const char *json_reader_type_name(const cJSON *j);

/* obj's member called name (case matters), or NULL. */
static inline const cJSON *json_reader_member(const cJSON *obj, const char *name) {
        return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* Reports each member of obj (at path) named in neither NULL-terminated list as an unknown key (both
 * NULL: any name is fine), and each name given more than once, which cJSON would silently resolve to
 * the first. */
void json_reader_check_members(JsonReader *rd, const cJSON *obj, const char *path,
                               const char *const *allowed, const char *const *allowed_too);

/* The getters: true with *ret set when j is what is asked for; otherwise false, with the problem
 * reported against key and *ret untouched. A string stays owned by the tree. */
bool json_reader_expect_object(JsonReader *rd, const cJSON *j, const char *key);
bool json_reader_expect_array(JsonReader *rd, const cJSON *j, const char *key);
bool json_reader_get_string(JsonReader *rd, const cJSON *j, const char *key, bool allow_empty,
                            const char **ret);
bool json_reader_get_bool(JsonReader *rd, const cJSON *j, const char *key, bool *ret);
/* A whole number within [min, max]: 16 and 16.0 are the same number in JSON, 16.5 is refused. */
bool json_reader_get_integer(JsonReader *rd, const cJSON *j, const char *key, int64_t min, int64_t max,
                             int64_t *ret);
/* An absolute path shorter than PATH_MAX. */
bool json_reader_get_absolute_path(JsonReader *rd, const cJSON *j, const char *key, const char **ret);
/* A string that is one of the NULL-terminated values: *ret is its index. */
bool json_reader_get_choice(JsonReader *rd, const cJSON *j, const char *key, const char *const *values,
                            size_t *ret);

/* The same for member name of obj (at path), when it is there: absent, nothing is reported and *ret
 * keeps its default. */
void json_reader_member_bool(JsonReader *rd, const cJSON *obj, const char *path, const char *name,
                             bool *ret);
void json_reader_member_unsigned(JsonReader *rd, const cJSON *obj, const char *path, const char *name,
                                 unsigned min, unsigned max, unsigned *ret);
void json_reader_member_u64(JsonReader *rd, const cJSON *obj, const char *path, const char *name,
                            uint64_t min, uint64_t max, uint64_t *ret);
