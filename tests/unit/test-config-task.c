/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "shared/config-task.h"
#include "shared/json-util.h"
#include "shared/limits.h"
#include "shared/util.h"

#include "reports.h"

#define FILE_NAME "t.json"
#define TASK_HEAD "\"name\": \"t\", \"exec\": [\"/bin/true\"]"

/* Reads text as one tasks.d file, or (command) as commands[0] of the main file. */
static TaskDef *parse_text(const char *text, bool command, Reports *reports) {
        _cleanup_(cjson_deletep) cJSON *obj = cJSON_Parse(text);
        JsonReader rd = reports_reader(reports, FILE_NAME);
        TaskDef *t = calloc(1, sizeof(TaskDef));

        if (!obj)
                fail_msg("not JSON: %s", text);
        assert_non_null(t);
        if (command)
                config_task_parse_command(&rd, obj, "commands[0]", t);
        else
                config_task_parse(&rd, obj, t);
        assert_false(rd.oom);
        assert_int_equal(rd.n_errors, reports->calls);
        return t;
}

/* A task, or a command, with the required keys and then fields. */
static TaskDef *parse_fields(const char *fields, bool command, Reports *reports) {
        char text[8192];

        if (command)
                (void) snprintf(text, sizeof(text), "{\"cmd\": \"true\"%s%s}", fields[0] ? ", " : "",
                                fields);
        else
                (void) snprintf(text, sizeof(text), "{" TASK_HEAD "%s%s}", fields[0] ? ", " : "", fields);
        return parse_text(text, command, reports);
}

/* The report lines of a task, as a command states them: every key under "commands[0]". */
static void command_report(const char *task_report, char *buf, size_t size) {
        size_t len = 0;

        buf[0] = '\0';
        for (const char *line = task_report; *line;) {
                size_t n = strcspn(line, "\n");
                len += (size_t) snprintf(buf + len, size - len, "%scommands[0].%.*s", len ? "\n" : "",
                                         (int) n, line);
                assert_true(len < size);
                line += n + (line[n] == '\n');
        }
}

/* ---- the keys tasks and commands share --------------------------------------------------------- */

typedef enum Field {
        NO_FIELD,
        UID,
        GID,
        WORKING_DIRECTORY_SET,
        N_ENVIRONMENT,
        TIMEOUT_SEC,
        MEMORY_MAX,
        CPU_QUOTA,
        NICE,
        MAX_ATTEMPTS,
        N_BACKOFF,
        LAST_BACKOFF,
        CONCURRENCY,
        ALLOW_ENTRIES, /* uids + gids + networks, or -1 when absent */
        PROTECT_SYSTEM_IS_FULL,
        PROTECT_HOME_IS_FALSE,
        SANDBOX_FLAGS, /* private_tmp, private_devices, private_network, no_new_privileges: bits 3..0 */
        N_READ_WRITE_PATHS,
        SANDBOX_STRICT,
        N_CREDENTIALS,
        EVERY_HOST,
} Field;

static int64_t field_of(const TaskDef *t, Field field) {
        switch (field) {
        case NO_FIELD:
                return 0;
        case UID:
                return t->uid;
        case GID:
                return t->gid;
        case WORKING_DIRECTORY_SET:
                return t->working_directory != NULL;
        case N_ENVIRONMENT:
                return (int64_t) t->n_environment;
        case TIMEOUT_SEC:
                return (int64_t) t->timeout_sec;
        case MEMORY_MAX:
                return (int64_t) t->memory_max;
        case CPU_QUOTA:
                return t->cpu_quota;
        case NICE:
                return t->has_nice ? t->nice : 100;
        case MAX_ATTEMPTS:
                return t->max_attempts;
        case N_BACKOFF:
                return (int64_t) t->n_backoff;
        case LAST_BACKOFF:
                return t->n_backoff ? (int64_t) t->backoff_sec[t->n_backoff - 1] : -1;
        case CONCURRENCY:
                return t->concurrency;
        case ALLOW_ENTRIES:
                return t->allow.present ? (int64_t) (t->allow.n_uids + t->allow.n_gids + t->allow.n_networks)
                                        : -1;
        case PROTECT_SYSTEM_IS_FULL:
                return streq(t->sandbox.protect_system, "full");
        case PROTECT_HOME_IS_FALSE:
                return streq(t->sandbox.protect_home, "false");
        case SANDBOX_FLAGS:
                return t->sandbox.private_tmp << 3 | t->sandbox.private_devices << 2 |
                       t->sandbox.private_network << 1 | t->sandbox.no_new_privileges;
        case N_READ_WRITE_PATHS:
                return (int64_t) t->sandbox.n_read_write_paths;
        case SANDBOX_STRICT:
                return t->sandbox.strict;
        case N_CREDENTIALS:
                return (int64_t) t->n_credentials;
        case EVERY_HOST:
                return t->every_host;
        }
        return -1;
}

static void test_common_keys_accepted(void **state) {
        static const struct {
                const char *fields;
                Field field;
                int64_t want;
        } cases[] = {
                {"", NO_FIELD, 0},
                {"", EVERY_HOST, 0},
                {"\"on\": \"any_host\"", EVERY_HOST, 0},
                {"\"on\": \"every_host\"", EVERY_HOST, 1},
                {"\"on\": \"every_host\", \"hosts\": [\"web1\", \"web2\"]", EVERY_HOST, 1},
                {"\"user\": \"root\"", UID, 0},
                {"\"user\": 0", UID, 0},
                {"\"user\": \"0\"", GID, 0},
                {"\"user\": 3999999, \"group\": 3999998", UID, 3999999},
                {"\"user\": \"3999999\", \"group\": \"3999998\"", GID, 3999998},
                {"\"user\": 4294967294, \"group\": 0", UID, 4294967294},
                {"\"group\": \"0\"", GID, 0},
                {"\"working_directory\": \"/srv/app\"", WORKING_DIRECTORY_SET, 1},
                {"\"environment\": {}", N_ENVIRONMENT, 0},
                {"\"environment\": {\"A\": \"\", \"_b9\": \"x=y\"}", N_ENVIRONMENT, 2},
                {"\"timeout_sec\": 0", TIMEOUT_SEC, 0},
                {"\"timeout_sec\": 604800", TIMEOUT_SEC, 604800},
                {"\"timeout_sec\": 6.048e5", TIMEOUT_SEC, 604800},
                {"\"memory_max\": \"0\"", MEMORY_MAX, 0},
                {"\"memory_max\": \"65536\"", MEMORY_MAX, 65536},
                {"\"memory_max\": \"512M\"", MEMORY_MAX, 512LL << 20},
                {"\"memory_max\": \"1T\"", MEMORY_MAX, 1LL << 40},
                {"\"memory_max\": 1048576", MEMORY_MAX, 1048576},
                {"\"cpu_quota\": \"1%\"", CPU_QUOTA, 1},
                {"\"cpu_quota\": \"10000%\"", CPU_QUOTA, 10000},
                {"\"cpu_quota\": \"050%\"", CPU_QUOTA, 50},
                {"\"nice\": -20", NICE, -20},
                {"\"nice\": 19", NICE, 19},
                {"\"nice\": 0", NICE, 0},
                {"\"max_attempts\": 1", MAX_ATTEMPTS, 1},
                {"\"max_attempts\": 100", MAX_ATTEMPTS, 100},
                {"\"backoff_sec\": []", N_BACKOFF, 0},
                {"\"backoff_sec\": [0, 86400]", LAST_BACKOFF, 86400},
                {"\"concurrency\": 0", CONCURRENCY, 0},
                {"\"concurrency\": 4096", CONCURRENCY, 4096},
                {"\"allow\": {}", ALLOW_ENTRIES, 0},
                {"\"allow\": {\"users\": [], \"groups\": [], \"networks\": []}", ALLOW_ENTRIES, 0},
                {"\"allow\": {\"users\": [\"nobody\", 0, \"3999999\"], \"groups\": [\"nogroup\", 3999999], "
                 "\"networks\": [\"0.0.0.0/0\", \"::/0\", \"127.0.0.1\", \"fe80::/10\"]}",
                 ALLOW_ENTRIES, 9},
                {"\"sandbox\": {}", SANDBOX_FLAGS, 0xd},
                {"\"sandbox\": {\"protect_system\": \"full\"}", PROTECT_SYSTEM_IS_FULL, 1},
                {"\"sandbox\": {\"protect_home\": false}", PROTECT_HOME_IS_FALSE, 1},
                {"\"sandbox\": {\"protect_home\": \"false\"}", PROTECT_HOME_IS_FALSE, 1},
                {"\"sandbox\": {\"private_tmp\": false, \"private_devices\": false, \"private_network\": "
                 "true, "
                 "\"no_new_privileges\": false}",
                 SANDBOX_FLAGS, 0x2},
                {"\"sandbox\": {\"read_write_paths\": [\"/srv/a\", \"/srv/b\"]}", N_READ_WRITE_PATHS, 2},
                /* The profile: default unless said, as a string or inside the object. */
                {"\"sandbox\": {}", SANDBOX_STRICT, 0},
                {"\"sandbox\": \"strict\"", SANDBOX_STRICT, 1},
                {"\"sandbox\": \"default\"", SANDBOX_STRICT, 0},
                {"\"sandbox\": \"strict\"", SANDBOX_FLAGS, 0xd}, /* and the strict relaxable defaults */
                {"\"sandbox\": {\"profile\": \"strict\", \"private_tmp\": false}", SANDBOX_STRICT, 1},
                {"\"sandbox\": {\"profile\": \"default\"}", SANDBOX_STRICT, 0},
                {"", N_CREDENTIALS, 0},
                {"\"credentials\": {}", N_CREDENTIALS, 0},
                {"\"credentials\": {\"smtp\": \"/etc/asynctask/creds/smtp\", \"db.pass-2_X\": "
                 "\"/run/keys/db\"}",
                 N_CREDENTIALS, 2},
                {"\"credentials\": {\"a\": \"/x\", \"b\": \"/x\"}", N_CREDENTIALS,
                 2}, /* a file, two names */
                {"\"credentials\": {\"x..y\": \"/etc/caf\u00e9\"}", N_CREDENTIALS, 1},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                for (int command = 0; command <= 1; command++) {
                        Reports reports;
                        _cleanup_(config_task_freep) TaskDef *t =
                                parse_fields(cases[i].fields, command, &reports);

                        if (reports.calls != 0 || field_of(t, cases[i].field) != cases[i].want)
                                fail_msg("case %zu (%s) as a %s: %lld, reported \"%s\"", i, cases[i].fields,
                                         command ? "command" : "task",
                                         (long long) field_of(t, cases[i].field), reports.text);
                }
}

static void test_common_keys_refused(void **state) {
        static const struct {
                const char *fields;
                const char *report; /* as a task; a command says "commands[0].KEY" */
        } cases[] = {
                {"\"user\": \"no-such-user-xyz\"", "user: no such user 'no-such-user-xyz'"},
                {"\"user\": \"\"", "user: must not be empty"},
                {"\"user\": true", "user: expected a string, got a boolean"},
                {"\"user\": -1", "user: must be between 0 and 4294967294"},
                {"\"user\": 4294967295", "user: must be between 0 and 4294967294"},
                {"\"user\": 1.5", "user: expected an integer, got 1.5"},
                {"\"user\": \"3999999\"",
                 "user: user 3999999 has no passwd entry, so \"group\" must be set"},
                {"\"group\": \"no-such-group-xyz\"", "group: no such group 'no-such-group-xyz'"},
                {"\"group\": []", "group: expected a string, got an array"},
                {"\"working_directory\": \"srv/app\"",
                 "working_directory: 'srv/app' is not an absolute path"},
                {"\"working_directory\": \"\"", "working_directory: must not be empty"},
                {"\"working_directory\": 1", "working_directory: expected a string, got a number"},
                {"\"environment\": []", "environment: expected an object, got an array"},
                {"\"environment\": {\"1BAD\": \"x\"}",
                 "environment.1BAD: '1BAD' is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)"},
                {"\"environment\": {\"A-B\": \"x\", \"C\": \"y\"}",
                 "environment.A-B: 'A-B' is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)"},
                {"\"environment\": {\"\": \"x\"}",
                 "environment.: '' is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)"},
                {"\"environment\": {\"A\": 1}", "environment.A: expected a string, got a number"},
                {"\"environment\": {\"A\": \"1\", \"A\": \"2\"}",
                 "environment.A: key is given more than once"},
                {"\"timeout_sec\": -1", "timeout_sec: must be between 0 and 604800"},
                {"\"timeout_sec\": 604801", "timeout_sec: must be between 0 and 604800"},
                {"\"timeout_sec\": 1.5", "timeout_sec: expected an integer, got 1.5"},
                {"\"timeout_sec\": \"60\"", "timeout_sec: expected an integer, got a string"},
                {"\"memory_max\": \"12X\"",
                 "memory_max: '12X' is not a size such as \"512M\" (K, M, G, T or plain bytes)"},
                {"\"memory_max\": \"1k\"",
                 "memory_max: '1k' is not a size such as \"512M\" (K, M, G, T or plain bytes)"},
                {"\"memory_max\": \"-1\"",
                 "memory_max: '-1' is not a size such as \"512M\" (K, M, G, T or plain bytes)"},
                {"\"memory_max\": \"99999999999999999999\"",
                 "memory_max: '99999999999999999999' is too large"},
                {"\"memory_max\": \"16777216T\"", "memory_max: '16777216T' is too large"},
                {"\"memory_max\": \"\"", "memory_max: must not be empty"},
                {"\"memory_max\": -5", "memory_max: must be between 0 and 9223372036854775807"},
                {"\"memory_max\": 1.5", "memory_max: expected an integer, got 1.5"},
                {"\"memory_max\": true", "memory_max: expected a string, got a boolean"},
                {"\"cpu_quota\": \"50\"", "cpu_quota: '50' is not a percentage such as \"50%\""},
                {"\"cpu_quota\": \"5.5%\"", "cpu_quota: '5.5%' is not a percentage such as \"50%\""},
                {"\"cpu_quota\": \"%\"", "cpu_quota: '%' is not a percentage such as \"50%\""},
                {"\"cpu_quota\": \"123456%\"", "cpu_quota: '123456%' is not a percentage such as \"50%\""},
                {"\"cpu_quota\": \"50%%\"", "cpu_quota: '50%%' is not a percentage such as \"50%\""},
                {"\"cpu_quota\": \"0%\"", "cpu_quota: must be between 1% and 10000%"},
                {"\"cpu_quota\": \"10001%\"", "cpu_quota: must be between 1% and 10000%"},
                {"\"cpu_quota\": 50", "cpu_quota: expected a string, got a number"},
                {"\"cpu_quota\": \"\"", "cpu_quota: must not be empty"},
                {"\"nice\": -21", "nice: must be between -20 and 19"},
                {"\"nice\": 20", "nice: must be between -20 and 19"},
                {"\"nice\": \"5\"", "nice: expected an integer, got a string"},
                {"\"max_attempts\": 0", "max_attempts: must be between 1 and 100"},
                {"\"max_attempts\": 101", "max_attempts: must be between 1 and 100"},
                {"\"backoff_sec\": 5", "backoff_sec: expected an array, got a number"},
                {"\"backoff_sec\": [5, 86401]", "backoff_sec[1]: must be between 0 and 86400"},
                {"\"backoff_sec\": [-1, 5, \"5\"]",
                 "backoff_sec[0]: must be between 0 and 86400\nbackoff_sec[2]: expected an integer, got a "
                 "string"},
                {"\"on\": \"every_host\", \"concurrency\": 1",
                 "on: \"every_host\" cannot be combined with \"concurrency\" (a limited task runs on one "
                 "host only)"},
                {"\"on\": \"each_host\"", "on: 'each_host' is not one of \"any_host\", \"every_host\""},
                {"\"concurrency\": 4097", "concurrency: must be between 0 and 4096"},
                {"\"concurrency\": -1", "concurrency: must be between 0 and 4096"},
                {"\"allow\": []", "allow: expected an object, got an array"},
                {"\"allow\": {\"hosts\": []}", "allow.hosts: unknown key"},
                {"\"allow\": {\"users\": \"www-data\"}", "allow.users: expected an array, got a string"},
                {"\"allow\": {\"users\": [\"no-such-user-xyz\"]}",
                 "allow.users[0]: no such user 'no-such-user-xyz'"},
                {"\"allow\": {\"users\": [null]}", "allow.users[0]: expected a string, got null"},
                {"\"allow\": {\"groups\": [\"adm\", \"no-such-group-xyz\"]}",
                 "allow.groups[1]: no such group 'no-such-group-xyz'"},
                {"\"allow\": {\"groups\": [-1]}", "allow.groups[0]: must be between 0 and 4294967294"},
                {"\"allow\": {\"networks\": [\"127.0.0.1/32\", \"10.0.0.1/8\"]}",
                 "allow.networks[1]: invalid network '10.0.0.1/8': expected ADDRESS or ADDRESS/PREFIX with "
                 "no "
                 "address bits set past the prefix"},
                {"\"allow\": {\"networks\": [\"::1/129\"]}",
                 "allow.networks[0]: invalid network '::1/129': expected ADDRESS or ADDRESS/PREFIX with no "
                 "address bits set past the prefix"},
                {"\"allow\": {\"networks\": [32]}", "allow.networks[0]: expected a string, got a number"},
                {"\"allow\": {\"networks\": [\"\"]}", "allow.networks[0]: must not be empty"},
                {"\"sandbox\": true", "sandbox: expected an object, got a boolean"},
                {"\"sandbox\": \"lax\"", "sandbox: 'lax' is not one of \"default\", \"strict\""},
                {"\"sandbox\": {\"profile\": \"none\"}",
                 "sandbox.profile: 'none' is not one of \"default\", \"strict\""},
                {"\"sandbox\": {\"bogus\": 1}", "sandbox.bogus: unknown key"},
                {"\"sandbox\": {\"protect_system\": \"yes\"}",
                 "sandbox.protect_system: 'yes' is not one of \"strict\", \"full\", \"true\", \"false\""},
                {"\"sandbox\": {\"protect_system\": 1}",
                 "sandbox.protect_system: expected a string, got a number"},
                {"\"sandbox\": {\"protect_home\": \"ro\"}",
                 "sandbox.protect_home: 'ro' is not one of \"true\", \"read-only\", \"tmpfs\", \"false\""},
                {"\"sandbox\": {\"protect_home\": \"\"}", "sandbox.protect_home: must not be empty"},
                {"\"sandbox\": {\"private_tmp\": \"yes\"}",
                 "sandbox.private_tmp: expected true or false, got a string"},
                {"\"sandbox\": {\"private_devices\": 1}",
                 "sandbox.private_devices: expected true or false, got a number"},
                {"\"sandbox\": {\"private_network\": null}",
                 "sandbox.private_network: expected true or false, got null"},
                {"\"sandbox\": {\"no_new_privileges\": 0}",
                 "sandbox.no_new_privileges: expected true or false, got a number"},
                {"\"sandbox\": {\"read_write_paths\": \"/srv\"}",
                 "sandbox.read_write_paths: expected an array, got a string"},
                {"\"sandbox\": {\"read_write_paths\": [\"/srv\", \"var/lib\"]}",
                 "sandbox.read_write_paths[1]: 'var/lib' is not an absolute path"},
                {"\"credentials\": []", "credentials: expected an object, got an array"},
                {"\"credentials\": {\"smtp\": 1}", "credentials.smtp: expected a string, got a number"},
                {"\"credentials\": {\"smtp\": \"creds/smtp\"}",
                 "credentials.smtp: 'creds/smtp' is not an absolute path"},
                {"\"credentials\": {\"smtp\": \"\"}", "credentials.smtp: must not be empty"},
                {"\"credentials\": {\"smtp\": \"/etc/creds/\"}",
                 "credentials.smtp: '/etc/creds/' is not a normalized path without spaces"},
                {"\"credentials\": {\"smtp\": \"/\"}",
                 "credentials.smtp: '/' is not a normalized path without spaces"},
                {"\"credentials\": {\"smtp\": \"/etc//smtp\"}",
                 "credentials.smtp: '/etc//smtp' is not a normalized path without spaces"},
                {"\"credentials\": {\"smtp\": \"/etc/./smtp\"}",
                 "credentials.smtp: '/etc/./smtp' is not a normalized path without spaces"},
                {"\"credentials\": {\"smtp\": \"/etc/../smtp\"}",
                 "credentials.smtp: '/etc/../smtp' is not a normalized path without spaces"},
                {"\"credentials\": {\"smtp\": \"/etc/..\"}",
                 "credentials.smtp: '/etc/..' is not a normalized path without spaces"},
                {"\"credentials\": {\"smtp\": \"/etc/my creds\"}",
                 "credentials.smtp: '/etc/my creds' is not a normalized path without spaces"},
                {"\"credentials\": {\"\": \"/x\"}",
                 "credentials.: '' is not a valid credential name (1 to 255 of A-Z a-z 0-9 _ . -)"},
                {"\"credentials\": {\".\": \"/x\"}",
                 "credentials..: '.' is not a valid credential name (1 to 255 of A-Z a-z 0-9 _ . -)"},
                {"\"credentials\": {\"..\": \"/x\"}",
                 "credentials...: '..' is not a valid credential name (1 to 255 of A-Z a-z 0-9 _ . -)"},
                {"\"credentials\": {\"a/b\": \"/x\"}",
                 "credentials.a/b: 'a/b' is not a valid credential name (1 to 255 of A-Z a-z 0-9 _ . -)"},
                {"\"credentials\": {\"a:b\": \"/x\"}",
                 "credentials.a:b: 'a:b' is not a valid credential name (1 to 255 of A-Z a-z 0-9 _ . -)"},
                {"\"credentials\": {\"a b\": \"/x\"}",
                 "credentials.a b: 'a b' is not a valid credential name (1 to 255 of A-Z a-z 0-9 _ . -)"},
                {"\"credentials\": {\"a\": \"/x\", \"a\": \"/y\"}",
                 "credentials.a: key is given more than once"},
                {"\"comment\": \"resize images\"", "comment: unknown key"},
                {"\"nice\": 1, \"nice\": 2", "nice: key is given more than once"},
                /* every problem of an entry is reported, in the order of the keys read */
                {"\"nice\": 99, \"timeout_sec\": -1, \"colour\": \"blue\"",
                 "colour: unknown key\ntimeout_sec: must be between 0 and 604800\nnice: must be between -20 "
                 "and "
                 "19"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                for (int command = 0; command <= 1; command++) {
                        Reports reports;
                        _cleanup_(config_task_freep) TaskDef *t =
                                parse_fields(cases[i].fields, command, &reports);
                        char want[1024];

                        if (command)
                                command_report(cases[i].report, want, sizeof(want));
                        else
                                (void) snprintf(want, sizeof(want), "%s", cases[i].report);
                        if (!streq(reports.text, want))
                                fail_msg("case %zu (%s) as a %s:\n  want \"%s\"\n  got  \"%s\"", i,
                                         cases[i].fields, command ? "command" : "task", want, reports.text);
                }
}

/* The counted limits, with entries written out by the test. */
static void test_common_limits(void **state) {
        static const struct {
                const char *key;
                const char *value; /* entries "V<k>": value in an object; NULL: k in an array */
                unsigned most;
                const char *report; /* at most + 1 entries */
        } cases[] = {
                {"environment", "x", ENVIRONMENT_MAX,
                 "environment: has 129 variables, at most 128 are allowed"},
                {"credentials", "/x", CREDENTIALS_MAX,
                 "credentials: has 65 credentials, at most 64 are allowed"},
                {"backoff_sec", NULL, BACKOFF_STEPS_MAX,
                 "backoff_sec: has 33 entries, at most 32 are allowed"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                for (unsigned n = cases[i].most; n <= cases[i].most + 1; n++) {
                        char fields[8192];
                        bool object = cases[i].value != NULL;
                        size_t len = (size_t) snprintf(fields, sizeof(fields), "\"%s\": %c", cases[i].key,
                                                       object ? '{' : '[');
                        Reports reports;

                        for (unsigned k = 0; k < n; k++)
                                len += (size_t) (object ? snprintf(fields + len, sizeof(fields) - len,
                                                                   "%s\"V%u\": \"%s\"", k ? ", " : "", k,
                                                                   cases[i].value)
                                                        : snprintf(fields + len, sizeof(fields) - len,
                                                                   "%s%u", k ? ", " : "", k));
                        (void) snprintf(fields + len, sizeof(fields) - len, "%c", object ? '}' : ']');
                        _cleanup_(config_task_freep) TaskDef *t = parse_fields(fields, false, &reports);
                        assert_string_equal(reports.text, n == cases[i].most ? "" : cases[i].report);
                }
}

/* ---- tasks.d files and commands ---------------------------------------------------------------- */

/* The keys of one kind of entry only: name, exec and max_args of a tasks.d file, cmd of a command. */
static void test_entry_keys(void **state) {
        static const struct {
                bool command;
                const char *text;
                const char *report;
        } cases[] = {
                {false, "{" TASK_HEAD "}", ""},
                {false, "{" TASK_HEAD ", \"max_args\": 0}", ""},
                {false, "{" TASK_HEAD ", \"max_args\": 256}", ""},
                {false, "{\"name\": \"A-z_0.9\", \"exec\": [\"/bin/true\"]}", ""},
                {false, "{\"name\": \"t\", \"exec\": [\"/usr/bin/env\", \"\", \"-i\"]}", ""},
                {false, "{\"exec\": [\"/bin/true\"]}", "name: is required"},
                {false, "{\"name\": \"t\"}", "exec: is required"},
                {false, "{}", "name: is required\nexec: is required"},
                {false, "{\"name\": \"bad name\", \"exec\": [\"/bin/true\"]}",
                 "name: 'bad name' is not a valid task name (1 to 64 of A-Z a-z 0-9 _ . -)"},
                {false, "{\"name\": \"\", \"exec\": [\"/bin/true\"]}",
                 "name: '' is not a valid task name (1 to 64 of A-Z a-z 0-9 _ . -)"},
                {false, "{\"name\": \"a/b\", \"exec\": [\"/bin/true\"]}",
                 "name: 'a/b' is not a valid task name (1 to 64 of A-Z a-z 0-9 _ . -)"},
                {false, "{\"name\": 7, \"exec\": [\"/bin/true\"]}", "name: expected a string, got a number"},
                {false, "{\"name\": \"t\", \"exec\": []}", "exec: must not be empty"},
                {false, "{\"name\": \"t\", \"exec\": \"/bin/true\"}",
                 "exec: expected an array, got a string"},
                {false, "{\"name\": \"t\", \"exec\": [\"bin/true\"]}",
                 "exec[0]: 'bin/true' is not an absolute path"},
                {false, "{\"name\": \"t\", \"exec\": [\"\"]}", "exec[0]: must not be empty"},
                {false, "{\"name\": \"t\", \"exec\": [\"/bin/true\", 1, null]}",
                 "exec[1]: expected a string, got a number\nexec[2]: expected a string, got null"},
                {false, "{" TASK_HEAD ", \"max_args\": 257}", "max_args: must be between 0 and 256"},
                {false, "{" TASK_HEAD ", \"max_args\": -1}", "max_args: must be between 0 and 256"},
                {false, "{" TASK_HEAD ", \"max_args\": \"4\"}",
                 "max_args: expected an integer, got a string"},
                {false, "{" TASK_HEAD ", \"cmd\": \"echo\"}", "cmd: unknown key"},
                {true, "{\"cmd\": \"echo \\\"hello world\\\"\"}", ""},
                {true, "{\"cmd\": \" \"}", ""},
                {true, "{\"user\": \"nobody\"}", "commands[0].cmd: is required"},
                {true, "{\"cmd\": \"\"}", "commands[0].cmd: must not be empty"},
                {true, "{\"cmd\": [\"echo\"]}", "commands[0].cmd: expected a string, got an array"},
                {true, "{\"cmd\": \"a\", \"exec\": [\"/bin/a\"]}", "commands[0].exec: unknown key"},
                {true, "{\"cmd\": \"a\", \"name\": \"a\"}", "commands[0].name: unknown key"},
                {true, "{\"cmd\": \"a\", \"max_args\": 1}", "commands[0].max_args: unknown key"},
                {true, "\"echo\"", "commands[0]: expected an object, got a string"},
                {true, "[]", "commands[0]: expected an object, got an array"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Reports reports;
                _cleanup_(config_task_freep) TaskDef *t =
                        parse_text(cases[i].text, cases[i].command, &reports);

                if (!streq(reports.text, cases[i].report))
                        fail_msg("case %zu (%s):\n  want \"%s\"\n  got  \"%s\"", i, cases[i].text,
                                 cases[i].report, reports.text);
                assert_int_equal(t->is_command, cases[i].command);
                assert_string_equal(t->source, FILE_NAME);
        }
}

static void test_exec_limit(void **state) {
        for (unsigned n = TASK_ARGS_MAX; n <= TASK_ARGS_MAX + 1; n++) {
                char text[8192];
                size_t len =
                        (size_t) snprintf(text, sizeof(text), "{\"name\": \"t\", \"exec\": [\"/bin/true\"");
                Reports reports;

                for (unsigned k = 1; k < n; k++)
                        len += (size_t) snprintf(text + len, sizeof(text) - len, ", \"a\"");
                (void) snprintf(text + len, sizeof(text) - len, "]}");
                _cleanup_(config_task_freep) TaskDef *t = parse_text(text, false, &reports);
                assert_string_equal(reports.text,
                                    n == TASK_ARGS_MAX ? ""
                                                       : "exec: has 257 entries, at most 256 are allowed");
                assert_int_equal(t->n_exec, n == TASK_ARGS_MAX ? n : 0);
        }
}

/* A command is its own name, and the shell runs it. */
static void test_command_runs_in_a_shell(void **state) {
        Reports reports;
        _cleanup_(config_task_freep) TaskDef *t = parse_text("{\"cmd\": \"echo 'x'\"}", true, &reports);
        assert_string_equal(t->name, "echo 'x'");
        assert_int_equal(t->n_exec, 3);
        assert_string_equal(t->exec[0], "/bin/sh");
        assert_string_equal(t->exec[1], "-c");
        assert_string_equal(t->exec[2], "echo 'x'");
        assert_null(t->exec[3]);
        assert_int_equal(t->max_args, 0);
}

/* "admins" is an allow list without networks: TCP peers are never admins. */
static void test_admins(void **state) {
        static const struct {
                const char *json;
                const char *report;
                size_t n_uids, n_gids;
        } cases[] = {
                {"{}", "", 0, 0},
                {"{\"users\": [\"root\", 1000, \"1001\"], \"groups\": [\"adm\", 27]}", "", 3, 2},
                {"{\"networks\": [\"127.0.0.1\"]}", "admins.networks: unknown key", 0, 0},
                {"{\"users\": [\"root\", \"no-such-user-xyz\"]}",
                 "admins.users[1]: no such user 'no-such-user-xyz'", 1, 0},
                {"[]", "admins: expected an object, got an array", 0, 0},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(cjson_deletep) cJSON *obj = cJSON_Parse(cases[i].json);
                Reports reports;
                JsonReader rd = reports_reader(&reports, FILE_NAME);
                Allow allow = {};

                assert_non_null(obj);
                config_task_parse_allow(&rd, obj, "admins", false, &allow);
                if (!streq(reports.text, cases[i].report) || allow.n_uids != cases[i].n_uids ||
                    allow.n_gids != cases[i].n_gids || !allow.present || allow.n_networks != 0)
                        fail_msg("case %zu (%s): %zu users, %zu groups, reported \"%s\"", i, cases[i].json,
                                 allow.n_uids, allow.n_gids, reports.text);
                allow_done(&allow);
        }
}

/* ---- schedule ---------------------------------------------------------------------------------- */

/* A schedule on one line: "[CAL|CAL] args [A|B] delay N persistent B", "-" when not scheduled. */
static void describe_schedule(const TaskSchedule *sch, char *buf, size_t size) {
        size_t len = 0;

        if (sch->n_calendars == 0) {
                (void) snprintf(buf, size, "-");
                return;
        }
        for (size_t i = 0; i < sch->n_calendars; i++)
                len += (size_t) snprintf(buf + len, size - len, "%s%s", i ? "|" : "[", sch->calendars[i]);
        len += (size_t) snprintf(buf + len, size - len, "] args [");
        for (size_t i = 0; i < sch->n_args; i++)
                len += (size_t) snprintf(buf + len, size - len, "%s%s", i ? "|" : "", sch->args[i]);
        (void) snprintf(buf + len, size - len, "] delay %llu persistent %d",
                        (unsigned long long) sch->randomized_delay_sec, sch->persistent);
        assert_null(sch->calendars[sch->n_calendars]);
        assert_true(sch->args && !sch->args[sch->n_args]);
}

static void test_schedule_keys(void **state) {
        static const struct {
                const char *fields;
                const char *want;   /* describe_schedule() */
                const char *report; /* "" when accepted */
        } cases[] = {
                {"", "-", ""},
                {"\"schedule\": \"*-*-* 03:00:00\"", "[*-*-* 03:00:00] args [] delay 0 persistent 0", ""},
                {"\"schedule\": \"daily\", \"schedule_args\": []", "[daily] args [] delay 0 persistent 0",
                 ""},
                {"\"schedule\": [\"Mon..Fri 08:00\", \"Sat,Sun 10:00 Europe/Berlin\", \"*-*~01\"]",
                 "[Mon..Fri 08:00|Sat,Sun 10:00 Europe/Berlin|*-*~01] args [] delay 0 persistent 0", ""},
                {"\"schedule\": \"*:*:0/10\", \"max_args\": 2, \"schedule_args\": [\"a b\", \"\"]",
                 "[*:*:0/10] args [a b|] delay 0 persistent 0", ""},
                {"\"schedule\": \"hourly\", \"max_args\": 1, \"schedule_args\": [\"$x;%n \\\"q\\\" "
                 "\\\\\\n\"]",
                 "[hourly] args [$x;%n \"q\" \\\n] delay 0 persistent 0", ""},
                {"\"schedule\": \"weekly\", \"schedule_randomized_delay_sec\": 3600, "
                 "\"schedule_persistent\": true",
                 "[weekly] args [] delay 3600 persistent 1", ""},
                {"\"schedule\": \"weekly\", \"schedule_randomized_delay_sec\": 86400, "
                 "\"schedule_persistent\": false",
                 "[weekly] args [] delay 86400 persistent 0", ""},
                {"\"schedule\": \"daily\", \"allow\": {\"users\": [\"root\", \"nobody\"]}",
                 "[daily] args [] delay 0 persistent 0", ""},
                {"\"schedule\": \"daily\", \"allow\": {\"groups\": [0]}",
                 "[daily] args [] delay 0 persistent 0", ""},
                /* refused */
                {"\"schedule\": \"\"", "-", "schedule: must not be empty"},
                {"\"schedule\": []", "-", "schedule: must list at least one calendar expression"},
                {"\"schedule\": 3", "-",
                 "schedule: expected a calendar expression or a list of them, got a number"},
                {"\"schedule\": {\"at\": \"daily\"}", "-",
                 "schedule: expected a calendar expression or a list of them, got an object"},
                {"\"schedule\": [\"daily\", 1, null]", "[daily] args [] delay 0 persistent 0",
                 "schedule[1]: expected a string, got a number\nschedule[2]: expected a string, got null"},
                {"\"schedule\": \"daily\\n[Service]\"", "-",
                 "schedule: 'daily\n[Service]' is not a calendar expression such as \"*-*-* 03:00:00\" "
                 "(letters, "
                 "digits, spaces and * - : / . , ~ + _ only)"},
                {"\"schedule\": [\"daily\", \"%H:00\"]", "[daily] args [] delay 0 persistent 0",
                 "schedule[1]: '%H:00' is not a calendar expression such as \"*-*-* 03:00:00\" (letters, "
                 "digits, spaces and * - : / . , ~ + _ only)"},
                {"\"schedule\": \"'daily'\"", "-",
                 "schedule: ''daily'' is not a calendar expression such as \"*-*-* 03:00:00\" (letters, "
                 "digits, spaces and * - : / . , ~ + _ only)"},
                {"\"schedule\": \"daily\", \"schedule_args\": [\"a\"]",
                 "[daily] args [] delay 0 persistent 0",
                 "schedule_args: has 1 entries, but the task takes at most 0 (max_args)"},
                {"\"schedule\": \"daily\", \"max_args\": 2, \"schedule_args\": [\"a\", \"b\", \"c\"]",
                 "[daily] args [] delay 0 persistent 0",
                 "schedule_args: has 3 entries, but the task takes at most 2 (max_args)"},
                {"\"schedule\": \"daily\", \"max_args\": 2, \"schedule_args\": \"a\"",
                 "[daily] args [] delay 0 persistent 0", "schedule_args: expected an array, got a string"},
                {"\"schedule\": \"daily\", \"max_args\": 2, \"schedule_args\": [\"a\", 2]",
                 "[daily] args [a] delay 0 persistent 0",
                 "schedule_args[1]: expected a string, got a number"},
                {"\"schedule\": \"daily\", \"schedule_randomized_delay_sec\": 86401",
                 "[daily] args [] delay 0 persistent 0",
                 "schedule_randomized_delay_sec: must be between 0 and 86400"},
                {"\"schedule\": \"daily\", \"schedule_randomized_delay_sec\": \"5m\"",
                 "[daily] args [] delay 0 persistent 0",
                 "schedule_randomized_delay_sec: expected an integer, got a string"},
                {"\"schedule\": \"daily\", \"schedule_persistent\": \"yes\"",
                 "[daily] args [] delay 0 persistent 0",
                 "schedule_persistent: expected true or false, got a string"},
                {"\"max_args\": 1, \"schedule_args\": [\"a\"], \"schedule_persistent\": true", "-",
                 "schedule_args: needs \"schedule\"\nschedule_persistent: needs \"schedule\""},
                {"\"schedule_randomized_delay_sec\": 5", "-",
                 "schedule_randomized_delay_sec: needs \"schedule\""},
                {"\"schedule\": \"daily\", \"allow\": {\"users\": [\"nobody\"], \"networks\": [\"::1\"]}",
                 "[daily] args [] delay 0 persistent 0",
                 "allow: does not allow root, who submits the scheduled runs: add \"root\" to allow.users"},
                {"\"schedule\": \"daily\", \"allow\": {}", "[daily] args [] delay 0 persistent 0",
                 "allow: does not allow root, who submits the scheduled runs: add \"root\" to allow.users"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Reports reports;
                _cleanup_(config_task_freep) TaskDef *t = parse_fields(cases[i].fields, false, &reports);
                char got[1024];

                describe_schedule(&t->schedule, got, sizeof(got));
                if (!streq(reports.text, cases[i].report) || !streq(got, cases[i].want))
                        fail_msg("case %zu (%s):\n  want \"%s\", \"%s\"\n  got  \"%s\", \"%s\"", i,
                                 cases[i].fields, cases[i].want, cases[i].report, got, reports.text);
        }
}

/* The counted limits of a schedule. */
static void test_schedule_limits(void **state) {
        char fields[65536];

        for (unsigned n = SCHEDULE_CALENDARS_MAX; n <= SCHEDULE_CALENDARS_MAX + 1; n++) {
                size_t len = (size_t) snprintf(fields, sizeof(fields), "\"schedule\": [");
                Reports reports;

                for (unsigned k = 0; k < n; k++)
                        len += (size_t) snprintf(fields + len, sizeof(fields) - len, "%s\"*-*-* %02u:00\"",
                                                 k ? ", " : "", k % 24);
                (void) snprintf(fields + len, sizeof(fields) - len, "]");
                _cleanup_(config_task_freep) TaskDef *t = parse_fields(fields, false, &reports);
                assert_string_equal(reports.text,
                                    n == SCHEDULE_CALENDARS_MAX
                                            ? ""
                                            : "schedule: has 33 entries, at most 32 are allowed");
                assert_int_equal(t->schedule.n_calendars, n == SCHEDULE_CALENDARS_MAX ? n : 0);
        }
        for (unsigned n = SCHEDULE_CALENDAR_BYTES_MAX; n <= SCHEDULE_CALENDAR_BYTES_MAX + 1; n++) {
                Reports reports;
                (void) snprintf(fields, sizeof(fields), "\"schedule\": \"%*s\"", (int) n, "daily");
                _cleanup_(config_task_freep) TaskDef *t = parse_fields(fields, false, &reports);
                assert_string_equal(reports.text, n == SCHEDULE_CALENDAR_BYTES_MAX
                                                          ? ""
                                                          : "schedule: is longer than 256 bytes");
        }
        for (unsigned n = TASK_ARG_BYTES_MAX; n <= TASK_ARG_BYTES_MAX + 1; n++) {
                Reports reports;
                (void) snprintf(fields, sizeof(fields),
                                "\"schedule\": \"daily\", \"max_args\": 1, \"schedule_args\": [\"%0*d\"]",
                                (int) n, 0);
                _cleanup_(config_task_freep) TaskDef *t = parse_fields(fields, false, &reports);
                assert_string_equal(reports.text, n == TASK_ARG_BYTES_MAX
                                                          ? ""
                                                          : "schedule_args[0]: is longer than 4096 bytes");
        }
}

/* All schedule_args together, at most SCHEDULE_ARGS_BYTES_MAX bytes. */
static void test_schedule_args_bytes(void **state) {
        for (unsigned extra = 0; extra <= 1; extra++) {
                char fields[32768];
                size_t len = (size_t) snprintf(fields, sizeof(fields),
                                               "{" TASK_HEAD ", \"schedule\": \"daily\", \"max_args\": 5, "
                                               "\"schedule_args\": [");
                Reports reports;

                for (unsigned k = 0; k < 4; k++)
                        len += (size_t) snprintf(fields + len, sizeof(fields) - len, "%s\"%0*d\"",
                                                 k ? ", " : "", TASK_ARG_BYTES_MAX, 0);
                (void) snprintf(fields + len, sizeof(fields) - len, "%s]}", extra ? ", \"x\"" : "");
                _cleanup_(config_task_freep) TaskDef *t = parse_text(fields, false, &reports);
                assert_string_equal(
                        reports.text,
                        extra ? "schedule_args: has 16385 bytes in all, at most 16384 are allowed" : "");
        }
}

/* The schedule keys belong to tasks.d files: the main file's commands are not scheduled. */
static void test_schedule_not_for_commands(void **state) {
        Reports reports;
        _cleanup_(config_task_freep) TaskDef *t =
                parse_fields("\"schedule\": \"daily\", \"schedule_persistent\": true", true, &reports);

        assert_string_equal(
                reports.text,
                "commands[0].schedule: unknown key\ncommands[0].schedule_persistent: unknown key");
        assert_int_equal(t->schedule.n_calendars, 0);
}

/* What the generator reads: name, max_args and the schedule; no user is looked up, and other keys are
 * neither read nor checked. */
static void test_schedule_only(void **state) {
        static const struct {
                const char *text;
                const char *want;
                const char *report;
        } cases[] = {
                {"{\"name\": \"t\", \"schedule\": \"daily\", \"max_args\": 1, \"schedule_args\": [\"x\"], "
                 "\"user\": \"no-such-user-xyz\", \"allow\": {\"users\": [\"no-such-user-xyz\"]}, "
                 "\"colour\": 1}",
                 "[daily] args [x] delay 0 persistent 0", ""},
                {"{\"name\": \"t\"}", "-", ""},
                {"{\"schedule\": \"daily\"}", "[daily] args [] delay 0 persistent 0", "name: is required"},
                {"{\"name\": \"t\", \"schedule\": \"daily\", \"schedule_args\": [\"x\"]}",
                 "[daily] args [] delay 0 persistent 0",
                 "schedule_args: has 1 entries, but the task takes at most 0 (max_args)"},
                {"{\"name\": \"t\", \"schedule\": \"daily\", \"max_args\": -1}",
                 "[daily] args [] delay 0 persistent 0", "max_args: must be between 0 and 256"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(cjson_deletep) cJSON *obj = cJSON_Parse(cases[i].text);
                _cleanup_(config_task_freep) TaskDef *t = calloc(1, sizeof(TaskDef));
                Reports reports;
                JsonReader rd = reports_reader(&reports, FILE_NAME);
                char got[1024];

                assert_non_null(obj);
                assert_non_null(t);
                config_task_parse_schedule_only(&rd, obj, t);
                describe_schedule(&t->schedule, got, sizeof(got));
                if (!streq(reports.text, cases[i].report) || !streq(got, cases[i].want))
                        fail_msg("case %zu (%s):\n  want \"%s\", \"%s\"\n  got  \"%s\", \"%s\"", i,
                                 cases[i].text, cases[i].want, cases[i].report, got, reports.text);
                assert_string_equal(t->source, FILE_NAME);
                assert_null(t->user);
        }
}

static void test_schedule_equal(void **state) {
        static const char *const variants[] = {
                "",
                "\"schedule\": \"daily\"",
                "\"schedule\": [\"daily\"], \"schedule_args\": []",
                "\"schedule\": [\"daily\", \"weekly\"]",
                "\"schedule\": [\"weekly\", \"daily\"]",
                "\"schedule\": \"daily\", \"max_args\": 1, \"schedule_args\": [\"a\"]",
                "\"schedule\": \"daily\", \"max_args\": 1, \"schedule_args\": [\"b\"]",
                "\"schedule\": \"daily\", \"schedule_randomized_delay_sec\": 5",
                "\"schedule\": \"daily\", \"schedule_persistent\": true",
        };
        /* Which variants are the same schedule: 1 and 2 are ("daily" alone, as a string or a list). */
        static const int same_as[] = {0, 1, 1, 3, 4, 5, 6, 7, 8};

        for (size_t i = 0; i < ELEMENTSOF(variants); i++)
                for (size_t j = 0; j < ELEMENTSOF(variants); j++) {
                        Reports ri, rj;
                        _cleanup_(config_task_freep) TaskDef *a = parse_fields(variants[i], false, &ri);
                        _cleanup_(config_task_freep) TaskDef *b = parse_fields(variants[j], false, &rj);

                        assert_int_equal(ri.calls + rj.calls, 0);
                        if (config_schedule_equal(&a->schedule, &b->schedule) != (same_as[i] == same_as[j]))
                                fail_msg("(%s) and (%s): %s", variants[i], variants[j],
                                         same_as[i] == same_as[j] ? "differ" : "are the same");
                }
}

/* ---- values ------------------------------------------------------------------------------------ */

static void test_parse_size(void **state) {
        static const struct {
                const char *in;
                int r;
                uint64_t want;
        } cases[] = {
                {"0", 0, 0},
                {"1", 0, 1},
                {"65536", 0, 65536},
                {"1K", 0, 1024},
                {"512M", 0, 536870912},
                {"1G", 0, 1073741824},
                {"2T", 0, 2199023255552ULL},
                {"0T", 0, 0},
                {"007", 0, 7},
                {"18446744073709551615", 0, UINT64_MAX},
                {"16777215T", 0, 16777215ULL << 40},
                {"18446744073709551616", -ERANGE, 0},
                {"99999999999999999999999", -ERANGE, 0},
                {"16777216T", -ERANGE, 0},
                {"17179869184G", -ERANGE, 0},
                {"", -EINVAL, 0},
                {"K", -EINVAL, 0},
                {"1k", -EINVAL, 0},
                {"1KB", -EINVAL, 0},
                {"1KK", -EINVAL, 0},
                {"1.5G", -EINVAL, 0},
                {"-1", -EINVAL, 0},
                {"+1", -EINVAL, 0},
                {" 1", -EINVAL, 0},
                {"1 ", -EINVAL, 0},
                {"1 M", -EINVAL, 0},
                {"0x10", -EINVAL, 0},
                {"1P", -EINVAL, 0},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 0xdeadbeef;
                int r = config_task_parse_size(cases[i].in, &v);
                if (r != cases[i].r)
                        fail_msg("config_task_parse_size(\"%s\") = %d, want %d", cases[i].in, r, cases[i].r);
                assert_int_equal(v, r == 0 ? cases[i].want : 0xdeadbeef);
        }
        uint64_t v;
        assert_int_equal(config_task_parse_size(NULL, &v), -EINVAL);
}

static void test_backoff(void **state) {
        uint64_t steps[] = {5, 30, 120}, one[] = {10};
        const TaskDef three = {.backoff_sec = steps, .n_backoff = 3},
                      single = {.backoff_sec = one, .n_backoff = 1}, none = {.n_backoff = 0};
        const struct {
                const TaskDef *def;
                unsigned failed;
                uint64_t want;
        } cases[] = {
                {&three, 0, 0},
                {&three, 1, 5},
                {&three, 2, 30},
                {&three, 3, 120},
                {&three, 4, 120},
                {&three, 100, 120},
                {&three, UINT32_MAX, 120},
                {&single, 1, 10},
                {&single, 7, 10},
                {&none, 1, 0},
                {&none, 5, 0},
                {NULL, 1, 0},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t got = config_task_backoff_sec(cases[i].def, cases[i].failed);
                if (got != cases[i].want)
                        fail_msg("case %zu, after %u failures: %llu, want %llu", i, cases[i].failed,
                                 (unsigned long long) got, (unsigned long long) cases[i].want);
        }
}

static void test_defaults(void **state) {
        Reports reports;
        _cleanup_(config_task_freep) TaskDef *t = parse_fields("", false, &reports);
        struct passwd *nobody = getpwnam("nobody");

        assert_non_null(nobody);
        assert_string_equal(t->name, "t");
        assert_string_equal(t->user, "nobody");
        assert_int_equal(t->uid, nobody->pw_uid);
        assert_int_equal(t->gid, nobody->pw_gid);
        assert_int_equal(t->max_attempts, 1);
        assert_int_equal(t->n_backoff, 1);
        assert_int_equal(t->backoff_sec[0], 10);
        assert_false(t->allow.present);
        assert_string_equal(t->sandbox.protect_system, "strict");
        assert_string_equal(t->sandbox.protect_home, "true");
        assert_non_null(t->environment);
        assert_non_null(t->sandbox.read_write_paths);
        assert_null(config_task_free(NULL));
}

/* What a task and a command keep of their credentials, in order. */
static void test_credentials(void **state) {
        for (int command = 0; command <= 1; command++) {
                Reports reports;
                _cleanup_(config_task_freep) TaskDef *t =
                        parse_fields("\"credentials\": {\"smtp\": \"/etc/asynctask/creds/smtp\", \"db\": "
                                     "\"/run/keys/db\"}",
                                     command, &reports);

                assert_string_equal(reports.text, "");
                assert_int_equal(t->n_credentials, 2);
                assert_string_equal(t->credentials[0].name, "smtp");
                assert_string_equal(t->credentials[0].path, "/etc/asynctask/creds/smtp");
                assert_string_equal(t->credentials[1].name, "db");
                assert_string_equal(t->credentials[1].path, "/run/keys/db");
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_common_keys_accepted),
                cmocka_unit_test(test_common_keys_refused),
                cmocka_unit_test(test_common_limits),
                cmocka_unit_test(test_credentials),
                cmocka_unit_test(test_entry_keys),
                cmocka_unit_test(test_exec_limit),
                cmocka_unit_test(test_command_runs_in_a_shell),
                cmocka_unit_test(test_admins),
                cmocka_unit_test(test_schedule_keys),
                cmocka_unit_test(test_schedule_limits),
                cmocka_unit_test(test_schedule_args_bytes),
                cmocka_unit_test(test_schedule_not_for_commands),
                cmocka_unit_test(test_schedule_only),
                cmocka_unit_test(test_schedule_equal),
                cmocka_unit_test(test_parse_size),
                cmocka_unit_test(test_backoff),
                cmocka_unit_test(test_defaults),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
