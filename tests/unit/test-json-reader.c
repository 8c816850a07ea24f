/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <linux/limits.h> /* PATH_MAX; <limits.h> would be shadowed by a header of that name under -I */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "shared/json-reader.h"
#include "shared/json-util.h"
#include "shared/limits.h"
#include "shared/util.h"

#include "reports.h"
#include "tmpdir.h"

/* ---- keys and reports -------------------------------------------------------------------------- */

static void test_keys(void **state) {
        char long_name[300];

        assert_string_equal(json_reader_key_member("", "max_running").s, "max_running");
        assert_string_equal(json_reader_key_member("store", "type").s, "store.type");
        assert_string_equal(json_reader_key_member("environment", "").s, "environment.");
        assert_string_equal(json_reader_key_index("exec", 0).s, "exec[0]");
        assert_string_equal(json_reader_key_member(json_reader_key_index("commands", 12).s, "allow").s,
                            "commands[12].allow");

        /* too long: cut, and marked as cut */
        memset(long_name, 'a', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = '\0';
        JsonKey k = json_reader_key_member("x", long_name);
        assert_int_equal(strlen(k.s), sizeof(k.s) - 1);
        assert_string_equal(k.s + sizeof(k.s) - 4, "...");
        assert_memory_equal(k.s, "x.aaa", 5);
        k = json_reader_key_index(long_name, 7);
        assert_string_equal(k.s + sizeof(k.s) - 4, "...");
        /* exactly as long as fits: not cut */
        long_name[sizeof(k.s) - 1 - strlen("[7]")] = '\0';
        k = json_reader_key_index(long_name, 7);
        assert_string_equal(k.s + sizeof(k.s) - 4, "[7]");
}

static void test_report_limit(void **state) {
        Reports reports;
        JsonReader rd = reports_reader(&reports, "f.json");

        for (unsigned i = 0; i < CONFIG_ERRORS_MAX + 10; i++)
                json_reader_report(&rd, "k", "problem %u", i);
        assert_int_equal(rd.n_errors, CONFIG_ERRORS_MAX + 10);
        assert_int_equal(reports.calls, CONFIG_ERRORS_MAX + 1);
        assert_non_null(strstr(reports.text, "k: problem 0\nk: problem 1\n"));
        assert_non_null(strstr(reports.text, "\n: too many errors, not reporting more"));
        assert_null(strstr(reports.text, "problem 200"));

        /* without a callback, problems are only counted */
        JsonReader silent = {.file = "f.json"};
        json_reader_report(&silent, "k", "x");
        assert_int_equal(silent.n_errors, 1);
}

/* ---- typed getters ----------------------------------------------------------------------------- */

typedef enum Getter {
        GET_STRING,
        GET_STRING_OR_EMPTY,
        GET_BOOL,
        GET_INTEGER, /* within -5 .. 10 */
        GET_ABSOLUTE_PATH,
        GET_CHOICE, /* one of "one", "two" */
        EXPECT_OBJECT,
        EXPECT_ARRAY,
} Getter;

/* Runs one getter on j at key "k"; the value it read, as text, goes to buf. */
static bool run_getter(JsonReader *rd, Getter getter, const cJSON *j, char *buf, size_t size) {
        static const char *const choices[] = {"one", "two", NULL};
        const char *s = NULL;
        int64_t v;
        size_t i;
        bool b, ok = false;

        buf[0] = '\0';
        switch (getter) {
        case GET_STRING:
        case GET_STRING_OR_EMPTY:
                if ((ok = json_reader_get_string(rd, j, "k", getter == GET_STRING_OR_EMPTY, &s)))
                        (void) snprintf(buf, size, "%s", s);
                break;
        case GET_BOOL:
                if ((ok = json_reader_get_bool(rd, j, "k", &b)))
                        (void) snprintf(buf, size, "%s", b ? "true" : "false");
                break;
        case GET_INTEGER:
                if ((ok = json_reader_get_integer(rd, j, "k", -5, 10, &v)))
                        (void) snprintf(buf, size, "%lld", (long long) v);
                break;
        case GET_ABSOLUTE_PATH:
                if ((ok = json_reader_get_absolute_path(rd, j, "k", &s)))
                        (void) snprintf(buf, size, "%s", s);
                break;
        case GET_CHOICE:
                if ((ok = json_reader_get_choice(rd, j, "k", choices, &i)))
                        (void) snprintf(buf, size, "%zu", i);
                break;
        case EXPECT_OBJECT:
                ok = json_reader_expect_object(rd, j, "k");
                break;
        case EXPECT_ARRAY:
                ok = json_reader_expect_array(rd, j, "k");
                break;
        }
        return ok;
}

static void test_getters(void **state) {
        static const struct {
                Getter getter;
                const char *json;
                const char *want; /* the value read, as text; or NULL: refused */
                const char *report;
        } cases[] = {
                {GET_STRING, "\"x y\"", "x y", ""},
                {GET_STRING, "\"caf\\u00e9\"", "caf\xc3\xa9", ""},
                {GET_STRING, "\"\"", NULL, "k: must not be empty"},
                {GET_STRING, "1", NULL, "k: expected a string, got a number"},
                {GET_STRING, "true", NULL, "k: expected a string, got a boolean"},
                {GET_STRING, "null", NULL, "k: expected a string, got null"},
                {GET_STRING, "[\"x\"]", NULL, "k: expected a string, got an array"},
                {GET_STRING, "{}", NULL, "k: expected a string, got an object"},
                {GET_STRING_OR_EMPTY, "\"\"", "", ""},
                {GET_STRING_OR_EMPTY, "0", NULL, "k: expected a string, got a number"},
                {GET_BOOL, "true", "true", ""},
                {GET_BOOL, "false", "false", ""},
                {GET_BOOL, "0", NULL, "k: expected true or false, got a number"},
                {GET_BOOL, "\"true\"", NULL, "k: expected true or false, got a string"},
                {GET_BOOL, "null", NULL, "k: expected true or false, got null"},
                {GET_INTEGER, "10", "10", ""},
                {GET_INTEGER, "-5", "-5", ""},
                {GET_INTEGER, "0", "0", ""},
                {GET_INTEGER, "1e1", "10", ""},
                {GET_INTEGER, "7.0", "7", ""},
                {GET_INTEGER, "-0", "0", ""},
                {GET_INTEGER, "11", NULL, "k: must be between -5 and 10"},
                {GET_INTEGER, "-6", NULL, "k: must be between -5 and 10"},
                {GET_INTEGER, "1e300", NULL, "k: must be between -5 and 10"},
                {GET_INTEGER, "1.5", NULL, "k: expected an integer, got 1.5"},
                {GET_INTEGER, "-0.25", NULL, "k: expected an integer, got -0.25"},
                {GET_INTEGER, "\"1\"", NULL, "k: expected an integer, got a string"},
                {GET_INTEGER, "false", NULL, "k: expected an integer, got a boolean"},
                {GET_ABSOLUTE_PATH, "\"/srv/app\"", "/srv/app", ""},
                {GET_ABSOLUTE_PATH, "\"/\"", "/", ""},
                {GET_ABSOLUTE_PATH, "\"srv/app\"", NULL, "k: 'srv/app' is not an absolute path"},
                {GET_ABSOLUTE_PATH, "\"./x\"", NULL, "k: './x' is not an absolute path"},
                {GET_ABSOLUTE_PATH, "\"\"", NULL, "k: must not be empty"},
                {GET_ABSOLUTE_PATH, "[]", NULL, "k: expected a string, got an array"},
                {GET_CHOICE, "\"one\"", "0", ""},
                {GET_CHOICE, "\"two\"", "1", ""},
                {GET_CHOICE, "\"One\"", NULL, "k: 'One' is not one of \"one\", \"two\""},
                {GET_CHOICE, "\"three\"", NULL, "k: 'three' is not one of \"one\", \"two\""},
                {GET_CHOICE, "\"\"", NULL, "k: must not be empty"},
                {GET_CHOICE, "1", NULL, "k: expected a string, got a number"},
                {EXPECT_OBJECT, "{}", "", ""},
                {EXPECT_OBJECT, "[]", NULL, "k: expected an object, got an array"},
                {EXPECT_OBJECT, "\"{}\"", NULL, "k: expected an object, got a string"},
                {EXPECT_ARRAY, "[]", "", ""},
                {EXPECT_ARRAY, "{}", NULL, "k: expected an array, got an object"},
                {EXPECT_ARRAY, "null", NULL, "k: expected an array, got null"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(cjson_deletep) cJSON *j = cJSON_Parse(cases[i].json);
                Reports reports;
                JsonReader rd = reports_reader(&reports, "f.json");
                char got[256];

                assert_non_null(j);
                bool ok = run_getter(&rd, cases[i].getter, j, got, sizeof(got));
                if (ok != !!cases[i].want || (ok && !streq(got, cases[i].want)) ||
                    !streq(reports.text, cases[i].report) || rd.n_errors != (ok ? 0 : 1))
                        fail_msg("case %zu (%s): got %s \"%s\", reported \"%s\"", i, cases[i].json,
                                 ok ? "ok" : "refused", got, reports.text);
        }
}

static void test_absolute_path_length(void **state) {
        _cleanup_free_ char *text = malloc(PATH_MAX + 3);
        Reports reports;
        JsonReader rd = reports_reader(&reports, "f.json");
        const char *s;

        assert_non_null(text);
        memset(text, 'a', PATH_MAX + 2);
        text[0] = '"';
        text[1] = '/';
        text[PATH_MAX] = '"'; /* a path of PATH_MAX - 1 bytes: the longest there is */
        text[PATH_MAX + 1] = '\0';
        _cleanup_(cjson_deletep) cJSON *longest = cJSON_Parse(text);
        assert_true(json_reader_get_absolute_path(&rd, longest, "k", &s));
        assert_int_equal(strlen(s), PATH_MAX - 1);

        text[PATH_MAX] = 'a';
        text[PATH_MAX + 1] = '"';
        text[PATH_MAX + 2] = '\0';
        _cleanup_(cjson_deletep) cJSON *too_long = cJSON_Parse(text);
        assert_false(json_reader_get_absolute_path(&rd, too_long, "k", &s));
        assert_string_equal(reports.text, "k: path is longer than 4095 bytes");
}

/* The member getters: absent leaves the default, present is checked like the value getters. */
static void test_member_getters(void **state) {
        static const struct {
                const char *json;
                const char *want; /* "BOOL UNSIGNED U64" after reading member "m" into each */
                const char *report;
        } cases[] = {
                {"{}", "false 7 7", ""},
                {"{\"other\": \"x\"}", "false 7 7", ""},
                {"{\"m\": 3}", "false 3 3", "p.m: expected true or false, got a number"},
                {"{\"m\": true}", "true 7 7",
                 "p.m: expected an integer, got a boolean\np.m: expected an integer, got a boolean"},
                {"{\"m\": 5}", "false 7 5",
                 "p.m: expected true or false, got a number\np.m: must be between 1 and 4"},
                {"{\"m\": 0.5}", "false 7 7",
                 "p.m: expected true or false, got a number\np.m: must be between 1 and 4\n"
                 "p.m: must be between 1 and 5"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(cjson_deletep) cJSON *obj = cJSON_Parse(cases[i].json);
                Reports reports;
                JsonReader rd = reports_reader(&reports, "f.json");
                bool b = false;
                unsigned u = 7;
                uint64_t u64 = 7;
                char got[64];

                assert_non_null(obj);
                json_reader_member_bool(&rd, obj, "p", "m", &b);
                json_reader_member_unsigned(&rd, obj, "p", "m", 1, 4, &u);
                json_reader_member_u64(&rd, obj, "p", "m", 1, 5, &u64);
                (void) snprintf(got, sizeof(got), "%s %u %llu", b ? "true" : "false", u,
                                (unsigned long long) u64);
                if (!streq(reports.text, cases[i].report) || !streq(got, cases[i].want))
                        fail_msg("case %zu (%s): got \"%s\", reported \"%s\"", i, cases[i].json, got,
                                 reports.text);
        }

        /* at the top of a file the key is the bare name */
        _cleanup_(cjson_deletep) cJSON *top = cJSON_Parse("{\"m\": -1}");
        Reports reports;
        JsonReader rd = reports_reader(&reports, "f.json");
        uint64_t v = 0;
        json_reader_member_u64(&rd, top, "", "m", 0, UINT32_MAX, &v);
        assert_string_equal(reports.text, "m: must be between 0 and 4294967295");
}

/* ---- members ----------------------------------------------------------------------------------- */

static void test_check_members(void **state) {
        static const char *const ab[] = {"a", "b", NULL};
        static const char *const c[] = {"c", NULL};
        static const struct {
                const char *json;
                const char *path;
                const char *const *allowed, *const *allowed_too;
                const char *report;
        } cases[] = {
                {"{}", "", ab, NULL, ""},
                {"{\"a\": 1, \"b\": 2}", "", ab, NULL, ""},
                {"{\"a\": 1, \"c\": 2}", "", ab, c, ""},
                {"{\"c\": 1}", "", ab, NULL, "c: unknown key"},
                {"{\"c\": 1}", "", NULL, c, ""},
                {"{\"A\": 1}", "", ab, NULL, "A: unknown key"},
                {"{\"x\": 1, \"a\": 2, \"y\": 3}", "top", ab, c, "top.x: unknown key\ntop.y: unknown key"},
                {"{\"anything\": 1, \"at\": 2, \"all\": 3}", "env", NULL, NULL, ""},
                /* repeats: once per name, whatever the count, after the unknown keys */
                {"{\"a\": 1, \"a\": 2}", "", ab, NULL, "a: key is given more than once"},
                {"{\"a\": 1, \"a\": 2, \"a\": 3}", "", ab, NULL, "a: key is given more than once"},
                {"{\"b\": 1, \"z\": 0, \"a\": 1, \"b\": 2, \"a\": 3}", "p", ab, NULL,
                 "p.z: unknown key\np.a: key is given more than once\np.b: key is given more than once"},
                {"{\"z\": 1, \"z\": 2}", "", ab, NULL,
                 "z: unknown key\nz: unknown key\nz: key is given more than once"},
                {"{\"k\": 1, \"k\": 2}", "env", NULL, NULL, "env.k: key is given more than once"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(cjson_deletep) cJSON *obj = cJSON_Parse(cases[i].json);
                Reports reports;
                JsonReader rd = reports_reader(&reports, "f.json");

                assert_non_null(obj);
                json_reader_check_members(&rd, obj, cases[i].path, cases[i].allowed, cases[i].allowed_too);
                if (!streq(reports.text, cases[i].report))
                        fail_msg("case %zu (%s): reported \"%s\"", i, cases[i].json, reports.text);
        }
}

/* ---- files ------------------------------------------------------------------------------------- */

static void write_text(const char *path, const char *text, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, len), (ssize_t) len);
        assert_int_equal(close(fd), 0);
}

static void test_load_file(void **state) {
        TmpDir *tmp = *state;
        static const struct {
                const char *text;
                size_t len;  /* 0: strlen(text) */
                bool parsed; /* an object is returned, to check its keys, even if its text was refused */
                const char *report;
        } cases[] = {
                {"{}", 0, true, ""},
                {" \n{\"a\": [1, {\"b\": null}]}\r\n\t", 0, true, ""},
                {"{\"s\": \"tab\\t, quote \\\" and \\\\u0000\"}", 0, true, ""},
                {"", 0, false, ": file is empty (expected a JSON object)"},
                {" \r\n\t", 0, false, ": file is empty (expected a JSON object)"},
                {"[]", 0, false, ": expected a JSON object, got an array"},
                {"\"x\"", 0, false, ": expected a JSON object, got a string"},
                {"17", 0, false, ": expected a JSON object, got a number"},
                {"{} x", 0, false, ": unexpected text after the JSON value at line 1, column 4"},
                {"{}\n\n {}", 0, false, ": unexpected text after the JSON value at line 3, column 2"},
                {"{\n  \"a\": 1,\n  \"b\" 2\n}", 0, false, ": invalid JSON at line 3, column 7"},
                {"{\"a\": 1,}", 0, false, ": invalid JSON at line 1, column 9"},
                {"// comment\n{}", 0, false, ": invalid JSON at line 1, column 1"},
                {"{\"a\": \"x\ty\"}", 0, true, ": control character 0x09 in a string at line 1, column 9"},
                {"{\n\"a\": \"x\ny\"}", 0, true, ": line break in a string at line 2, column 8"},
                {"{\"a\":\n \"\\u0000\"}", 0, true, ": \\u0000 (NUL) in a string at line 2, column 3"},
                {"{\"a\": \"x\0\"}", 11, true, ": NUL byte at line 1, column 9"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Reports reports;
                JsonReader rd = reports_reader(&reports, tmp->path);

                write_text(tmp->path, cases[i].text, cases[i].len ?: strlen(cases[i].text));
                _cleanup_(cjson_deletep) cJSON *root = json_reader_load_file(&rd, tmp->path);
                if (!streq(reports.text, cases[i].report) || !!root != cases[i].parsed || rd.io_error)
                        fail_msg("case %zu (%s): %s, reported \"%s\"", i, cases[i].text,
                                 root ? "parsed" : "refused", reports.text);
        }
}

static void test_load_file_refused(void **state) {
        TmpDir *tmp = *state;
        char *big = malloc(CONFIG_FILE_BYTES_MAX + 1);
        Reports reports;
        JsonReader rd;

        /* missing, a directory, a FIFO: I/O errors, kept in io_error */
        rd = reports_reader(&reports, tmp->path);
        assert_null(json_reader_load_file(&rd, tmp->path));
        assert_string_equal(reports.text, ": cannot read: No such file or directory");
        assert_int_equal(rd.io_error, -ENOENT);

        assert_int_equal(mkdir(tmp->path, 0755), 0);
        rd = reports_reader(&reports, tmp->path);
        assert_null(json_reader_load_file(&rd, tmp->path));
        assert_string_equal(reports.text, ": cannot read: Is a directory");
        assert_int_equal(rd.io_error, -EISDIR);
        assert_int_equal(rmdir(tmp->path), 0);

        assert_int_equal(mkfifo(tmp->path, 0644), 0);
        rd = reports_reader(&reports, tmp->path);
        assert_null(json_reader_load_file(&rd, tmp->path));
        assert_string_equal(reports.text, ": not a regular file");
        assert_int_equal(rd.io_error, -EBADFD);
        assert_int_equal(unlink(tmp->path), 0);

        /* too large: refused, but not an I/O error, and the first error stays */
        assert_non_null(big);
        memset(big, ' ', CONFIG_FILE_BYTES_MAX + 1);
        big[0] = '{';
        big[CONFIG_FILE_BYTES_MAX - 1] = '}';
        write_text(tmp->path, big, CONFIG_FILE_BYTES_MAX + 1);
        rd = reports_reader(&reports, tmp->path);
        rd.io_error = -EIO;
        assert_null(json_reader_load_file(&rd, tmp->path));
        assert_string_equal(reports.text, ": file is larger than 1048576 bytes");
        assert_int_equal(rd.io_error, -EIO);

        /* exactly the limit is fine */
        write_text(tmp->path, big, CONFIG_FILE_BYTES_MAX);
        rd = reports_reader(&reports, tmp->path);
        cJSON *root = json_reader_load_file(&rd, tmp->path);
        assert_non_null(root);
        assert_int_equal(reports.calls, 0);
        cJSON_Delete(root);
        free(big);
}

#define TMPDIR_TEST(t) cmocka_unit_test_setup_teardown(t, tmpdir_setup, tmpdir_teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_keys),           cmocka_unit_test(test_report_limit),
                cmocka_unit_test(test_getters),        cmocka_unit_test(test_absolute_path_length),
                cmocka_unit_test(test_member_getters), cmocka_unit_test(test_check_members),
                TMPDIR_TEST(test_load_file),           TMPDIR_TEST(test_load_file_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
