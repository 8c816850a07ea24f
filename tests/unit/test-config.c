/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/limits.h> /* PATH_MAX; <limits.h> would be shadowed by a header of that name under -I */
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "front/policy.h"
#include "shared/config.h"
#include "shared/limits.h"
#include "shared/util.h"

/* ---- fixtures ---------------------------------------------------------------------------------- */

typedef struct Error {
        char *file;
        char *key;
        char *message;
} Error;

typedef struct Errors {
        Error e[CONFIG_ERRORS_MAX + 8];
        size_t n;
        size_t calls;
} Errors;

static void capture(const char *file, const char *key, const char *message, void *userdata) {
        Errors *errs = userdata;

        assert_non_null(file);
        assert_non_null(key);
        assert_non_null(message);
        errs->calls++;
        if (errs->n < ELEMENTSOF(errs->e)) {
                errs->e[errs->n] = (Error){strdup(file), strdup(key), strdup(message)};
                errs->n++;
        }
}

static void errors_clear(Errors *errs) {
        for (size_t i = 0; i < errs->n; i++) {
                free(errs->e[i].file);
                free(errs->e[i].key);
                free(errs->e[i].message);
        }
        errs->n = errs->calls = 0;
}

static void errors_print(const Errors *errs) {
        for (size_t i = 0; i < errs->n; i++)
                print_message("    %s: %s: %s\n", errs->e[i].file, errs->e[i].key, errs->e[i].message);
}

/* The index of the error reported for file + key whose message contains `part`, or -1. */
static ssize_t errors_find(const Errors *errs, const char *file, const char *key, const char *part) {
        for (size_t i = 0; i < errs->n; i++)
                if (streq(errs->e[i].file, file) && streq(errs->e[i].key, key) &&
                    (!part || strstr(errs->e[i].message, part)))
                        return (ssize_t) i;
        return -1;
}

typedef struct Fixture {
        char dir[64];
        char main_path[128];
        char tasks_dir[128];
        Errors errs;
        Config *config;
} Fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        const char *tmp = getenv("TMPDIR");

        assert_non_null(f);
        (void) snprintf(f->dir, sizeof(f->dir), "%s/test-config-XXXXXX",
                        tmp && strlen(tmp) < 32 ? tmp : "/tmp");
        assert_non_null(mkdtemp(f->dir));
        (void) snprintf(f->main_path, sizeof(f->main_path), "%s/asynctask.json", f->dir);
        (void) snprintf(f->tasks_dir, sizeof(f->tasks_dir), "%s/tasks.d", f->dir);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        config_free(f->config);
        errors_clear(&f->errs);
        assert_int_equal(nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
        free(f);
        return 0;
}

/* Empties the fixture directory for the next table case. */
static void reset(Fixture *f) {
        f->config = config_free(f->config);
        errors_clear(&f->errs);
        assert_int_equal(nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
        assert_int_equal(mkdir(f->dir, 0700), 0);
}

static void write_text(const char *path, const char *text, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, len), (ssize_t) len);
        assert_int_equal(close(fd), 0);
}

static void write_main(Fixture *f, const char *json) {
        write_text(f->main_path, json, strlen(json));
}

/* Writes tasks.d/<name>, creating tasks.d. */
static void write_task(Fixture *f, const char *name, const char *json) {
        char path[256];

        if (mkdir(f->tasks_dir, 0755) < 0)
                assert_int_equal(errno, EEXIST);
        (void) snprintf(path, sizeof(path), "%s/%s", f->tasks_dir, name);
        write_text(path, json, strlen(json));
}

static const char *task_path(Fixture *f, const char *name) {
        static char path[256];
        (void) snprintf(path, sizeof(path), "%s/%s", f->tasks_dir, name);
        return path;
}

static int load(Fixture *f) {
        f->config = config_free(f->config);
        errors_clear(&f->errs);
        return config_load(f->main_path, capture, &f->errs, &f->config);
}

static void load_ok(Fixture *f) {
        int r = load(f);
        if (r != 0) {
                errors_print(&f->errs);
                fail_msg("config_load failed: %d", r);
        }
        assert_int_equal(f->errs.calls, 0);
        assert_non_null(f->config);
}

static uid_t uid_of(const char *name) {
        struct passwd *pw = getpwnam(name);
        assert_non_null(pw);
        return pw->pw_uid;
}

static gid_t gid_of(const char *name) {
        struct group *gr = getgrnam(name);
        assert_non_null(gr);
        return gr->gr_gid;
}

static const char *group_name_of(gid_t gid) {
        struct group *gr = getgrgid(gid);
        assert_non_null(gr);
        return gr->gr_name;
}

/* ---- defaults and accepted keys ---------------------------------------------------------------- */

static void test_defaults(void **state) {
        Fixture *f = *state;
        char cwd[PATH_MAX];

        write_main(f, "{}");
        load_ok(f); /* no tasks.d at all is fine */
        Config *c = f->config;

        assert_string_equal(c->path, f->main_path);
        assert_string_equal(c->tasks_dir, f->tasks_dir);
        assert_int_equal(c->store_type, STORE_MEMORY);
        assert_null(c->store_option_file);
        assert_string_equal(c->store_group, "asynctask");
        assert_int_equal(c->retention_days, 7);
        assert_int_equal(c->max_records, 100000);
        assert_string_equal(c->launcher_socket, LAUNCHER_SOCKET_DEFAULT);
        assert_int_equal(c->executor, EXECUTOR_AUTO);
        assert_int_equal(c->max_running, 16);
        assert_int_equal(c->max_frame_bytes, FRAME_BYTES_DEFAULT);
        assert_int_equal(c->max_connections, 1024);
        assert_int_equal(c->idle_exit_sec, 0);
        assert_true(c->admins.present);
        assert_int_equal(c->admins.n_uids, 1);
        assert_int_equal(c->admins.uids[0], 0);
        assert_int_equal(c->admins.n_gids, 0);
        assert_int_equal(c->admins.n_networks, 0);
        assert_int_equal(c->n_tasks, 0);
        assert_int_equal(c->n_commands, 0);
        assert_int_equal(c->n_php_classes, 0);

        /* a relative path: tasks.d is beside it */
        assert_non_null(getcwd(cwd, sizeof(cwd)));
        assert_int_equal(chdir(f->dir), 0);
        Config *rel = NULL;
        assert_int_equal(config_load("asynctask.json", capture, &f->errs, &rel), 0);
        assert_string_equal(rel->tasks_dir, "tasks.d");
        config_free(rel);
        assert_int_equal(chdir(cwd), 0);
}

static void test_task_defaults(void **state) {
        Fixture *f = *state;

        write_main(f, "{}");
        write_task(f, "t.json", "{\"name\": \"t\", \"exec\": [\"/bin/true\"]}");
        load_ok(f);
        assert_int_equal(f->config->n_tasks, 1);
        const TaskDef *t = config_find_task(f->config, "t");
        assert_non_null(t);

        assert_false(t->is_command);
        assert_int_equal(t->n_exec, 1);
        assert_string_equal(t->exec[0], "/bin/true");
        assert_null(t->exec[1]);
        assert_int_equal(t->max_args, 0);
        assert_string_equal(t->user, "nobody");
        assert_int_equal(t->uid, uid_of("nobody"));
        assert_int_equal(t->gid, getpwnam("nobody")->pw_gid);
        assert_string_equal(t->group, group_name_of(t->gid));
        assert_null(t->working_directory);
        assert_int_equal(t->n_environment, 0);
        assert_non_null(t->environment);
        assert_null(t->environment[0]);
        assert_int_equal(t->timeout_sec, 0);
        assert_int_equal(t->memory_max, 0);
        assert_int_equal(t->cpu_quota, 0);
        assert_false(t->has_nice);
        assert_int_equal(t->max_attempts, 1);
        assert_int_equal(t->n_backoff, 1);
        assert_int_equal(t->backoff_sec[0], 10);
        assert_int_equal(t->concurrency, 0);
        assert_false(t->allow.present);
        assert_string_equal(t->sandbox.protect_system, "strict");
        assert_string_equal(t->sandbox.protect_home, "true");
        assert_true(t->sandbox.private_tmp);
        assert_true(t->sandbox.private_devices);
        assert_false(t->sandbox.private_network);
        assert_true(t->sandbox.no_new_privileges);
        assert_int_equal(t->sandbox.n_read_write_paths, 0);
        assert_non_null(t->sandbox.read_write_paths);
        assert_null(t->sandbox.read_write_paths[0]);
        assert_string_equal(t->source, task_path(f, "t.json"));
}

static void test_every_key(void **state) {
        Fixture *f = *state;
        char text[4096];

        (void) snprintf(
                text, sizeof(text),
                "{\n"
                "  \"store\": {\"type\": \"mysql\", \"option_file\": \"/etc/asynctask/my.cnf\", "
                "\"group\": \"queue\"},\n"
                "  \"launcher\": \"/run/x/launcher.sock\",\n"
                "  \"executor\": \"direct\",\n"
                "  \"max_running\": 4096,\n"
                "  \"max_frame_bytes\": 1024,\n"
                "  \"max_connections\": 65536,\n"
                "  \"idle_exit_sec\": 60,\n"
                "  \"retention_days\": 30,\n"
                "  \"max_records\": 5000,\n"
                "  \"admins\": {\"users\": [\"root\", \"www-data\", 1000, \"1001\"], \"groups\": [\"adm\", "
                "27]},\n"
                "  \"commands\": [\n"
                "    {\"cmd\": \"echo \\\"hello world\\\"\", \"user\": \"nobody\", "
                "\"allow\": {\"networks\": [\"127.0.0.1/32\"]}},\n"
                "    {\"cmd\": \"php /srv/app/artisan queue:restart\", \"user\": \"www-data\", "
                "\"group\": \"www-data\", \"allow\": {\"users\": [\"www-data\"], \"groups\": [\"adm\"], "
                "\"networks\": [\"10.0.0.0/8\", \"::1\"]}, \"timeout_sec\": 60, \"memory_max\": \"64M\", "
                "\"cpu_quota\": \"25%%\", \"nice\": -5, \"max_attempts\": 2, \"backoff_sec\": [1], "
                "\"concurrency\": 1, \"environment\": {\"HOME\": \"/srv/app\"}, "
                "\"working_directory\": \"/srv/app\", \"sandbox\": {\"private_network\": true}}\n"
                "  ],\n"
                "  \"php_classes\": {\"Lamb\": \"lamb\", \"App\\\\Jobs\\\\SendMail\": \"lamb\"}\n"
                "}\n");
        write_main(f, text);
        write_task(
                f, "resize.json",
                "{\n"
                "  \"name\": \"resize\",\n"
                "  \"exec\": [\"/usr/bin/convert\", \"-strip\", \"\"],\n"
                "  \"max_args\": 4,\n"
                "  \"user\": \"www-data\", \"group\": \"adm\",\n"
                "  \"working_directory\": \"/srv/app\",\n"
                "  \"environment\": {\"APP_ENV\": \"production\", \"_X1\": \"\", \"EQ\": \"a=b\"},\n"
                "  \"timeout_sec\": 300, \"memory_max\": \"512M\", \"cpu_quota\": \"150%\", \"nice\": 10,\n"
                "  \"max_attempts\": 3, \"backoff_sec\": [5, 30, 120],\n"
                "  \"concurrency\": 2,\n"
                "  \"allow\": {\"users\": [\"www-data\"], \"groups\": [], \"networks\": []},\n"
                "  \"sandbox\": {\"protect_system\": \"full\", \"protect_home\": \"tmpfs\", "
                "\"private_tmp\": false,\n"
                "              \"private_devices\": false, \"private_network\": true,\n"
                "              \"no_new_privileges\": false, \"read_write_paths\": [\"/srv/app/storage\", "
                "\"/tmp/x\"]}\n"
                "}\n");
        write_task(f, "lamb.json", "{\"name\": \"lamb\", \"exec\": [\"/usr/bin/asynctask-php-runner\"]}");
        load_ok(f);
        Config *c = f->config;

        assert_int_equal(c->store_type, STORE_MYSQL);
        assert_string_equal(c->store_option_file, "/etc/asynctask/my.cnf");
        assert_string_equal(c->store_group, "queue");
        assert_string_equal(c->launcher_socket, "/run/x/launcher.sock");
        assert_int_equal(c->executor, EXECUTOR_DIRECT);
        assert_int_equal(c->max_running, 4096);
        assert_int_equal(c->max_frame_bytes, 1024);
        assert_int_equal(c->max_connections, 65536);
        assert_int_equal(c->idle_exit_sec, 60);
        assert_int_equal(c->retention_days, 30);
        assert_int_equal(c->max_records, 5000);
        assert_int_equal(c->admins.n_uids, 4);
        assert_int_equal(c->admins.uids[0], 0);
        assert_int_equal(c->admins.uids[1], uid_of("www-data"));
        assert_int_equal(c->admins.uids[2], 1000);
        assert_int_equal(c->admins.uids[3], 1001);
        assert_int_equal(c->admins.n_gids, 2);
        assert_int_equal(c->admins.gids[0], gid_of("adm"));
        assert_int_equal(c->admins.gids[1], 27);

        assert_int_equal(c->n_commands, 2);
        const TaskDef *cmd = config_find_command(c, "echo \"hello world\"");
        assert_ptr_equal(cmd, &c->commands[0]);
        assert_true(cmd->is_command);
        assert_int_equal(cmd->n_exec, 3);
        assert_string_equal(cmd->exec[0], "/bin/sh");
        assert_string_equal(cmd->exec[1], "-c");
        assert_string_equal(cmd->exec[2], "echo \"hello world\"");
        assert_null(cmd->exec[3]);
        assert_string_equal(cmd->user, "nobody");
        assert_true(cmd->allow.present);
        assert_int_equal(cmd->allow.n_networks, 1);
        assert_int_equal(cmd->allow.networks[0].prefix_len, 32);
        assert_string_equal(cmd->source, f->main_path);
        /* byte for byte */
        assert_null(config_find_command(c, "echo \"hello world\" "));
        assert_null(config_find_command(c, "echo 'hello world'"));
        assert_null(config_find_command(c, "ECHO \"hello world\""));

        cmd = &c->commands[1];
        assert_string_equal(cmd->user, "www-data");
        assert_string_equal(cmd->group, "www-data");
        assert_int_equal(cmd->allow.n_uids, 1);
        assert_int_equal(cmd->allow.n_gids, 1);
        assert_int_equal(cmd->allow.n_networks, 2);
        assert_int_equal(cmd->allow.networks[1].family, AF_INET6);
        assert_int_equal(cmd->timeout_sec, 60);
        assert_int_equal(cmd->memory_max, 64 << 20);
        assert_int_equal(cmd->cpu_quota, 25);
        assert_true(cmd->has_nice);
        assert_int_equal(cmd->nice, -5);
        assert_int_equal(cmd->max_attempts, 2);
        assert_int_equal(cmd->n_backoff, 1);
        assert_int_equal(cmd->backoff_sec[0], 1);
        assert_int_equal(cmd->concurrency, 1);
        assert_int_equal(cmd->n_environment, 1);
        assert_string_equal(cmd->environment[0], "HOME=/srv/app");
        assert_string_equal(cmd->working_directory, "/srv/app");
        assert_true(cmd->sandbox.private_network);
        assert_string_equal(cmd->sandbox.protect_system, "strict");

        assert_int_equal(c->n_tasks, 2); /* lamb.json, resize.json */
        const TaskDef *t = config_find_task(c, "resize");
        assert_non_null(t);
        assert_int_equal(t->n_exec, 3);
        assert_string_equal(t->exec[2], "");
        assert_int_equal(t->max_args, 4);
        assert_string_equal(t->user, "www-data");
        assert_int_equal(t->uid, uid_of("www-data"));
        assert_string_equal(t->group, "adm");
        assert_int_equal(t->gid, gid_of("adm"));
        assert_string_equal(t->working_directory, "/srv/app");
        assert_int_equal(t->n_environment, 3);
        assert_string_equal(t->environment[0], "APP_ENV=production");
        assert_string_equal(t->environment[1], "_X1=");
        assert_string_equal(t->environment[2], "EQ=a=b");
        assert_null(t->environment[3]);
        assert_int_equal(t->timeout_sec, 300);
        assert_int_equal(t->memory_max, 512ULL << 20);
        assert_int_equal(t->cpu_quota, 150);
        assert_int_equal(t->nice, 10);
        assert_int_equal(t->max_attempts, 3);
        assert_int_equal(t->n_backoff, 3);
        assert_int_equal(t->backoff_sec[2], 120);
        assert_int_equal(t->concurrency, 2);
        assert_true(t->allow.present);
        assert_int_equal(t->allow.n_uids, 1);
        assert_int_equal(t->allow.n_gids + t->allow.n_networks, 0);
        assert_string_equal(t->sandbox.protect_system, "full");
        assert_string_equal(t->sandbox.protect_home, "tmpfs");
        assert_false(t->sandbox.private_tmp);
        assert_false(t->sandbox.private_devices);
        assert_true(t->sandbox.private_network);
        assert_false(t->sandbox.no_new_privileges);
        assert_int_equal(t->sandbox.n_read_write_paths, 2);
        assert_string_equal(t->sandbox.read_write_paths[1], "/tmp/x");
        assert_null(t->sandbox.read_write_paths[2]);

        assert_int_equal(c->n_php_classes, 2);
        assert_string_equal(config_find_php_class(c, "Lamb"), "lamb");
        assert_string_equal(config_find_php_class(c, "lamb"), "lamb"); /* PHP: case-insensitive */
        assert_string_equal(config_find_php_class(c, "App\\Jobs\\SendMail"), "lamb");
        assert_null(config_find_php_class(c, "Lambda"));
        assert_null(config_find_php_class(c, ""));
        assert_null(config_find_task(c, "Resize"));
        assert_null(config_find_task(c, NULL));
        assert_null(config_find_task(NULL, "resize"));
}

/* Values at the edges of their ranges, and the other accepted spellings. */
static void test_accepted_values(void **state) {
        Fixture *f = *state;
        static const struct {
                const char *main;
                const char *task; /* fields inside a task object, or NULL */
        } cases[] = {
                {"{\"max_running\": 1}", NULL},
                {"{\"max_frame_bytes\": 16777216}", NULL},
                {"{\"max_connections\": 1}", NULL},
                {"{\"idle_exit_sec\": 604800}", NULL},
                {"{\"retention_days\": 1}", NULL},
                {"{\"retention_days\": 3650}", NULL},
                {"{\"max_records\": 1}", NULL},
                {"{\"max_records\": 1000000000}", NULL},
                {"{\"executor\": \"auto\"}", NULL},
                {"{\"executor\": \"systemd\"}", NULL},
                {"{\"store\": {}}", NULL},
                {"{\"store\": {\"type\": \"memory\", \"option_file\": \"/x.cnf\"}}", NULL},
                {"{\"admins\": {}}", NULL},
                {"{\"admins\": {\"users\": [], \"groups\": []}}", NULL},
                {"{\"commands\": []}", NULL},
                {"{\"php_classes\": {}}", NULL},
                {"{\"max_running\": 16.0}", NULL},
                {"{\"max_running\": 1.6e1}", NULL},
                {"{\"store\": {\"group\": \"a\\\\u0000b\"}}", NULL}, /* an escaped backslash, then text */
                {"{\"store\": {\"group\": \"caf\\u00e9 \\\"q\\\" \\n\"}}", NULL},
                {"{}", "\"max_args\": 0"},
                {"{}", "\"max_args\": 256"},
                {"{}", "\"timeout_sec\": 0"},
                {"{}", "\"timeout_sec\": 604800"},
                {"{}", "\"nice\": -20"},
                {"{}", "\"nice\": 19"},
                {"{}", "\"max_attempts\": 1"},
                {"{}", "\"max_attempts\": 100"},
                {"{}", "\"concurrency\": 0"},
                {"{}", "\"concurrency\": 4096"},
                {"{}", "\"backoff_sec\": []"},
                {"{}", "\"backoff_sec\": [0, 86400]"},
                {"{}",
                 "\"backoff_sec\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,"
                 "28,29,30,31,32]"},
                {"{}", "\"cpu_quota\": \"1%\""},
                {"{}", "\"cpu_quota\": \"10000%\""},
                {"{}", "\"memory_max\": \"0\""},
                {"{}", "\"memory_max\": 1048576"},
                {"{}", "\"memory_max\": \"1T\""},
                {"{}", "\"user\": \"root\""},
                {"{}", "\"user\": 0"},
                {"{}", "\"user\": \"3999999\", \"group\": \"nogroup\""},
                {"{}", "\"user\": 3999999, \"group\": 3999999"},
                {"{}", "\"group\": \"0\""},
                {"{}", "\"environment\": {}"},
                {"{}", "\"allow\": {}"},
                {"{}",
                 "\"allow\": {\"users\": [\"nobody\", 0, \"3999999\"], \"groups\": [\"nogroup\", 3999999], "
                 "\"networks\": [\"0.0.0.0/0\", \"::/0\"]}"},
                {"{}", "\"sandbox\": {}"},
                {"{}", "\"sandbox\": {\"protect_system\": true, \"protect_home\": false}"},
                {"{}", "\"sandbox\": {\"protect_system\": \"false\", \"protect_home\": \"read-only\"}"},
                {"{}", "\"sandbox\": {\"read_write_paths\": []}"},
                {"{}", "\"name\": \"x\""},
                {"{}", "\"name\": \"A-z_0.9\""},
                {"{}",
                 "\"name\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""}, /* 64 */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char task[2048];

                reset(f);
                write_main(f, cases[i].main);
                if (cases[i].task) {
                        /* later keys win in the test: "name" given in the case replaces the default */
                        bool has_name = strstr(cases[i].task, "\"name\"") != NULL;
                        (void) snprintf(task, sizeof(task), "{%s\"exec\": [\"/bin/true\"], %s}",
                                        has_name ? "" : "\"name\": \"t\", ", cases[i].task);
                        write_task(f, "t.json", task);
                }
                if (load(f) != 0) {
                        errors_print(&f->errs);
                        fail_msg("case %zu rejected: %s %s", i, cases[i].main, cases[i].task ?: "");
                }
        }
}

/* ---- errors ------------------------------------------------------------------------------------ */

typedef struct ErrorCase {
        const char *main;    /* main file text */
        const char *task;    /* tasks.d/t.json text, or NULL */
        bool in_task;        /* the error is in t.json (else in the main file) */
        const char *key;     /* expected key */
        const char *message; /* a part of the expected message */
} ErrorCase;

#define T0        "{\"name\": \"t\", \"exec\": [\"/bin/true\"]}"
#define T(fields) "{\"name\": \"t\", \"exec\": [\"/bin/true\"], " fields "}"

static const ErrorCase error_cases[] = {
        /* main file: keys, types, ranges */
        {"{\"bogus\": 1}", NULL, false, "bogus", "unknown key"},
        {"{\"max_running\": \"16\"}", NULL, false, "max_running", "expected an integer, got a string"},
        {"{\"max_running\": true}", NULL, false, "max_running", "expected an integer"},
        {"{\"max_running\": 0}", NULL, false, "max_running", "between 1 and 4096"},
        {"{\"max_running\": 4097}", NULL, false, "max_running", "between"},
        {"{\"max_running\": 1.5}", NULL, false, "max_running", "expected an integer"},
        {"{\"max_running\": -1}", NULL, false, "max_running", "between"},
        {"{\"max_running\": 1e300}", NULL, false, "max_running", "between"},
        {"{\"max_running\": 1, \"max_running\": 2}", NULL, false, "max_running", "more than once"},
        {"{\"max_frame_bytes\": 1023}", NULL, false, "max_frame_bytes", "between 1024 and 16777216"},
        {"{\"max_frame_bytes\": 16777217}", NULL, false, "max_frame_bytes", "between"},
        {"{\"max_connections\": 0}", NULL, false, "max_connections", "between 1 and 65536"},
        {"{\"max_connections\": 65537}", NULL, false, "max_connections", "between"},
        {"{\"idle_exit_sec\": -1}", NULL, false, "idle_exit_sec", "between"},
        {"{\"idle_exit_sec\": 604801}", NULL, false, "idle_exit_sec", "between"},
        {"{\"retention_days\": 0}", NULL, false, "retention_days", "between"},
        {"{\"retention_days\": 3651}", NULL, false, "retention_days", "between"},
        {"{\"max_records\": 0}", NULL, false, "max_records", "between"},
        {"{\"max_records\": 1000000001}", NULL, false, "max_records", "between"},
        {"{\"executor\": \"docker\"}", NULL, false, "executor", "not one of"},
        {"{\"executor\": 1}", NULL, false, "executor", "expected a string"},
        {"{\"launcher\": \"run/launcher.sock\"}", NULL, false, "launcher", "absolute"},
        {"{\"launcher\": "
         "\"/run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\"}",
         NULL, false, "launcher", "longer than"},
        {"{\"launcher\": \"\"}", NULL, false, "launcher", "empty"},
        {"{\"store\": \"memory\"}", NULL, false, "store", "expected an object"},
        {"{\"store\": {\"type\": \"redis\"}}", NULL, false, "store.type", "not one of"},
        {"{\"store\": {\"type\": \"mysql\"}}", NULL, false, "store.option_file", "required"},
        {"{\"store\": {\"type\": \"mysql\", \"option_file\": \"my.cnf\"}}", NULL, false, "store.option_file",
         "absolute"},
        {"{\"store\": {\"group\": \"\"}}", NULL, false, "store.group", "empty"},
        {"{\"store\": {\"host\": \"localhost\"}}", NULL, false, "store.host", "unknown key"},
        {"{\"admins\": []}", NULL, false, "admins", "expected an object"},
        {"{\"admins\": {\"users\": [\"root\", \"no-such-user-xyz\"]}}", NULL, false, "admins.users[1]",
         "no such user"},
        {"{\"admins\": {\"groups\": [\"no-such-group-xyz\"]}}", NULL, false, "admins.groups[0]",
         "no such group"},
        {"{\"admins\": {\"users\": \"root\"}}", NULL, false, "admins.users", "expected an array"},
        {"{\"admins\": {\"networks\": [\"127.0.0.1\"]}}", NULL, false, "admins.networks", "unknown key"},
        {"{\"admins\": {\"users\": [-1]}}", NULL, false, "admins.users[0]", "between"},
        {"{\"admins\": {\"users\": [4294967295]}}", NULL, false, "admins.users[0]", "between"},
        {"{\"admins\": {\"users\": [null]}}", NULL, false, "admins.users[0]", "expected a string"},
        /* commands */
        {"{\"commands\": {}}", NULL, false, "commands", "expected an array"},
        {"{\"commands\": [\"echo\"]}", NULL, false, "commands[0]", "expected an object"},
        {"{\"commands\": [{\"user\": \"nobody\"}]}", NULL, false, "commands[0].cmd", "required"},
        {"{\"commands\": [{\"cmd\": \"\"}]}", NULL, false, "commands[0].cmd", "empty"},
        {"{\"commands\": [{\"cmd\": \"a\"}, {\"cmd\": \"b\"}, {\"cmd\": \"a\"}]}", NULL, false,
         "commands[2].cmd", "commands[0]"},
        {"{\"commands\": [{\"cmd\": \"a\", \"exec\": [\"/bin/a\"]}]}", NULL, false, "commands[0].exec",
         "unknown key"},
        {"{\"commands\": [{\"cmd\": \"a\", \"name\": \"a\"}]}", NULL, false, "commands[0].name",
         "unknown key"},
        {"{\"commands\": [{\"cmd\": \"a\"}, {\"cmd\": \"b\"}, {\"cmd\": \"c\", \"allow\": {\"networks\": "
         "[\"10.0.0.1/8\"]}}]}",
         NULL, false, "commands[2].allow.networks[0]", "invalid network"},
        {"{\"commands\": [{\"cmd\": \"a\", \"user\": \"no-such-user-xyz\"}]}", NULL, false,
         "commands[0].user", "no such user"},
        {"{\"commands\": [{\"cmd\": \"a\", \"backoff_sec\": [1, 86401]}]}", NULL, false,
         "commands[0].backoff_sec[1]", "between 0 and 86400"},
        {"{\"commands\": [{\"cmd\": \"a\", \"sandbox\": {\"protect_home\": \"yes\"}}]}", NULL, false,
         "commands[0].sandbox.protect_home", "not one of"},
        {"{\"commands\": [{\"cmd\": \"a\", \"environment\": {\"A B\": \"x\"}}]}", NULL, false,
         "commands[0].environment.A B", "variable name"},
        /* php_classes */
        {"{\"php_classes\": []}", NULL, false, "php_classes", "expected an object"},
        {"{\"php_classes\": {\"Lamb\": \"lamb\"}}", NULL, false, "php_classes.Lamb", "no task named 'lamb'"},
        {"{\"php_classes\": {\"Lamb\": \"t\"}}", T0, false, "php_classes.Lamb", NULL,
         /* t exists: no error */},
        {"{\"php_classes\": {\"Lamb\": 1}}", T0, false, "php_classes.Lamb", "expected a string"},
        {"{\"php_classes\": {\"1Lamb\": \"t\"}}", T0, false, "php_classes.1Lamb", "not a PHP class name"},
        {"{\"php_classes\": {\"\\\\Lamb\": \"t\"}}", T0, false, "php_classes.\\Lamb",
         "not a PHP class name"},
        {"{\"php_classes\": {\"A\\\\\\\\B\": \"t\"}}", T0, false, "php_classes.A\\\\B", "not a PHP class"},
        {"{\"php_classes\": {\"Lamb\": \"t\", \"lamb\": \"t\"}}", T0, false, "php_classes.lamb",
         "case-insensitive"},
        /* a php_classes target takes no client arguments: they would reach its PHP runner */
        {"{\"php_classes\": {\"Lamb\": \"t\"}}", T("\"max_args\": 1"), true, "max_args",
         "must be 0: task 't' runs PHP objects of class 'Lamb'"},
        {"{\"php_classes\": {\"App\\\\Mail\": \"t\"}}", T("\"max_args\": 256"), true, "max_args",
         "class 'App\\Mail'"},
        {"{\"php_classes\": {\"Lamb\": \"t\"}}", T("\"max_args\": 0"), true, "max_args", NULL},
        /* file-level problems of the main file */
        {"{\n  \"max_running\": 1,\n  \"launcher\" \"x\"\n}", NULL, false, "", "invalid JSON at line 3"},
        {"{\"max_running\": 1}\n{}", NULL, false, "", "after the JSON value at line 2"},
        {"[]", NULL, false, "", "expected a JSON object, got an array"},
        {"\"x\"", NULL, false, "", "expected a JSON object"},
        {"", NULL, false, "", "empty"},
        {"  \n", NULL, false, "", "empty"},
        {"{\"store\": {\"group\": \"a\\u0000b\"}}", NULL, false, "", "\\u0000"},
        {"{\"store\": {\"group\": \"a\tb\"}}", NULL, false, "", "control character"},
        {"{\n\n  \"store\": {\"group\": \"a\tb\"}}", NULL, false, "",
         "control character 0x09 in a string at line 3, column 24"},
        {"{\"store\": {\"group\": \"a\nb\"}}", NULL, false, "",
         "line break in a string at line 1, column 23"},
        {"{\n\"launcher\": \"/x\\u0000\"}", NULL, false, "", "(NUL) in a string at line 2, column 16"},
        /* task files */
        {"{}", "{\"exec\": [\"/bin/true\"]}", true, "name", "required"},
        {"{}", "{\"name\": \"bad name\", \"exec\": [\"/bin/true\"]}", true, "name", "not a valid task name"},
        {"{}", "{\"name\": \"\", \"exec\": [\"/bin/true\"]}", true, "name", "not a valid task name"},
        {"{}", "{\"name\": \"a/b\", \"exec\": [\"/bin/true\"]}", true, "name", "not a valid task name"},
        {"{}",
         "{\"name\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", \"exec\": "
         "[\"/bin/true\"]}",
         true, "name", "not a valid task name"}, /* 65 */
        {"{}", "{\"name\": 7, \"exec\": [\"/bin/true\"]}", true, "name", "expected a string"},
        {"{}", "{\"name\": \"t\"}", true, "exec", "required"},
        {"{}", "{\"name\": \"t\", \"exec\": []}", true, "exec", "empty"},
        {"{}", "{\"name\": \"t\", \"exec\": \"/bin/true\"}", true, "exec", "expected an array"},
        {"{}", "{\"name\": \"t\", \"exec\": [\"bin/true\"]}", true, "exec[0]", "absolute"},
        {"{}", "{\"name\": \"t\", \"exec\": [\"\"]}", true, "exec[0]", "empty"},
        {"{}", "{\"name\": \"t\", \"exec\": [\"/bin/true\", 1]}", true, "exec[1]", "expected a string"},
        {"{}", T("\"max_args\": 257"), true, "max_args", "between 0 and 256"},
        {"{}", T("\"max_args\": -1"), true, "max_args", "between"},
        {"{}", T("\"user\": \"no-such-user-xyz\""), true, "user", "no such user"},
        {"{}", T("\"user\": \"\""), true, "user", "empty"},
        {"{}", T("\"user\": \"3999999\""), true, "user", "\"group\" must be set"},
        {"{}", T("\"group\": \"no-such-group-xyz\""), true, "group", "no such group"},
        {"{}", T("\"group\": []"), true, "group", "expected a string"},
        {"{}", T("\"working_directory\": \"srv/app\""), true, "working_directory", "absolute"},
        {"{}", T("\"environment\": []"), true, "environment", "expected an object"},
        {"{}", T("\"environment\": {\"1BAD\": \"x\"}"), true, "environment.1BAD", "variable name"},
        {"{}", T("\"environment\": {\"A-B\": \"x\"}"), true, "environment.A-B", "variable name"},
        {"{}", T("\"environment\": {\"\": \"x\"}"), true, "environment.", "variable name"},
        {"{}", T("\"environment\": {\"A\": 1}"), true, "environment.A", "expected a string"},
        {"{}", T("\"environment\": {\"A\": \"1\", \"A\": \"2\"}"), true, "environment.A", "more than once"},
        {"{}", T("\"environment\": {\"A\": \"x\\u0000y\"}"), true, "", "\\u0000"},
        {"{}", T("\"timeout_sec\": -1"), true, "timeout_sec", "between 0 and 604800"},
        {"{}", T("\"timeout_sec\": 604801"), true, "timeout_sec", "between"},
        {"{}", T("\"timeout_sec\": 1.5"), true, "timeout_sec", "expected an integer"},
        {"{}", T("\"memory_max\": \"12X\""), true, "memory_max", "not a size"},
        {"{}", T("\"memory_max\": \"-1\""), true, "memory_max", "not a size"},
        {"{}", T("\"memory_max\": \"\""), true, "memory_max", "empty"},
        {"{}", T("\"memory_max\": \"99999999999999999999\""), true, "memory_max", "too large"},
        {"{}", T("\"memory_max\": -5"), true, "memory_max", "between"},
        {"{}", T("\"memory_max\": true"), true, "memory_max", "expected a string"},
        {"{}", T("\"cpu_quota\": \"50\""), true, "cpu_quota", "percentage"},
        {"{}", T("\"cpu_quota\": 50"), true, "cpu_quota", "expected a string"},
        {"{}", T("\"cpu_quota\": \"0%\""), true, "cpu_quota", "between 1% and 10000%"},
        {"{}", T("\"cpu_quota\": \"10001%\""), true, "cpu_quota", "between"},
        {"{}", T("\"cpu_quota\": \"abc%\""), true, "cpu_quota", "percentage"},
        {"{}", T("\"cpu_quota\": \"5.5%\""), true, "cpu_quota", "percentage"},
        {"{}", T("\"nice\": -21"), true, "nice", "between -20 and 19"},
        {"{}", T("\"nice\": 20"), true, "nice", "between"},
        {"{}", T("\"max_attempts\": 0"), true, "max_attempts", "between 1 and 100"},
        {"{}", T("\"max_attempts\": 101"), true, "max_attempts", "between"},
        {"{}", T("\"backoff_sec\": 5"), true, "backoff_sec", "expected an array"},
        {"{}",
         T("\"backoff_sec\": "
           "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,"
           "32,33]"),
         true, "backoff_sec", "at most 32"},
        {"{}", T("\"backoff_sec\": [5, 86401]"), true, "backoff_sec[1]", "between 0 and 86400"},
        {"{}", T("\"backoff_sec\": [5, -1]"), true, "backoff_sec[1]", "between"},
        {"{}", T("\"backoff_sec\": [\"5\"]"), true, "backoff_sec[0]", "expected an integer"},
        {"{}", T("\"concurrency\": 4097"), true, "concurrency", "between 0 and 4096"},
        {"{}", T("\"concurrency\": -1"), true, "concurrency", "between"},
        {"{}", T("\"allow\": []"), true, "allow", "expected an object"},
        {"{}", T("\"allow\": {\"users\": \"www-data\"}"), true, "allow.users", "expected an array"},
        {"{}", T("\"allow\": {\"hosts\": []}"), true, "allow.hosts", "unknown key"},
        {"{}", T("\"allow\": {\"users\": [\"no-such-user-xyz\"]}"), true, "allow.users[0]", "no such user"},
        {"{}", T("\"allow\": {\"groups\": [\"adm\", \"no-such-group-xyz\"]}"), true, "allow.groups[1]",
         "no such group"},
        {"{}", T("\"allow\": {\"networks\": [\"garbage\"]}"), true, "allow.networks[0]", "invalid network"},
        {"{}", T("\"allow\": {\"networks\": [\"10.0.0.0/33\"]}"), true, "allow.networks[0]",
         "invalid network"},
        {"{}", T("\"allow\": {\"networks\": [\"::1/129\"]}"), true, "allow.networks[0]", "invalid network"},
        {"{}", T("\"allow\": {\"networks\": [\"127.0.0.1/31\"]}"), true, "allow.networks[0]",
         "invalid network"},
        {"{}", T("\"allow\": {\"networks\": [32]}"), true, "allow.networks[0]", "expected a string"},
        {"{}", T("\"sandbox\": true"), true, "sandbox", "expected an object"},
        {"{}", T("\"sandbox\": {\"protect_system\": \"yes\"}"), true, "sandbox.protect_system",
         "not one of"},
        {"{}", T("\"sandbox\": {\"protect_home\": \"ro\"}"), true, "sandbox.protect_home", "not one of"},
        {"{}", T("\"sandbox\": {\"private_tmp\": \"yes\"}"), true, "sandbox.private_tmp", "true or false"},
        {"{}", T("\"sandbox\": {\"private_devices\": 1}"), true, "sandbox.private_devices", "true or false"},
        {"{}", T("\"sandbox\": {\"private_network\": null}"), true, "sandbox.private_network",
         "true or false"},
        {"{}", T("\"sandbox\": {\"no_new_privileges\": 0}"), true, "sandbox.no_new_privileges",
         "true or false"},
        {"{}", T("\"sandbox\": {\"read_write_paths\": \"/srv\"}"), true, "sandbox.read_write_paths",
         "expected an array"},
        {"{}", T("\"sandbox\": {\"read_write_paths\": [\"/srv\", \"var/lib\"]}"), true,
         "sandbox.read_write_paths[1]", "absolute"},
        {"{}", T("\"sandbox\": {\"bogus\": 1}"), true, "sandbox.bogus", "unknown key"},
        {"{}", T("\"comment\": \"resize images\""), true, "comment", "unknown key"},
        {"{}", T("\"cmd\": \"echo\""), true, "cmd", "unknown key"},
        {"{}", "[{\"name\": \"t\"}]", true, "", "expected a JSON object"},
        {"{}", "{\n\"name\": \"t\",\n\"exec\": [\"/bin/true\",]\n}", true, "", "invalid JSON at line 3"},
        {"{}", "{\"name\": \"t\", \"exec\": [\"/bin/true\"]} x", true, "", "after the JSON value"},
};

static void test_errors(void **state) {
        Fixture *f = *state;

        for (size_t i = 0; i < ELEMENTSOF(error_cases); i++) {
                const ErrorCase *ec = &error_cases[i];
                Config *sentinel = (Config *) (uintptr_t) 0x1234;
                const char *file;
                int r;

                reset(f);
                write_main(f, ec->main);
                if (ec->task)
                        write_task(f, "t.json", ec->task);
                file = ec->in_task ? task_path(f, "t.json") : f->main_path;

                Config *c = sentinel;
                r = config_load(f->main_path, capture, &f->errs, &c);
                if (r == 0)
                        f->config = c; /* freed by reset() */
                if (!ec->message) {    /* a control case: must load */
                        if (r != 0) {
                                errors_print(&f->errs);
                                fail_msg("case %zu: %s: should load", i, ec->main);
                        }
                        continue;
                }
                if (r != -EINVAL || errors_find(&f->errs, file, ec->key, ec->message) < 0) {
                        print_message("case %zu: main=%s task=%s\n  want %s: %s: ...%s...\n  got r=%d:\n", i,
                                      ec->main, ec->task ?: "-", file, ec->key, ec->message, r);
                        errors_print(&f->errs);
                        fail_msg("case %zu failed", i);
                }
                /* *ret untouched on failure */
                assert_ptr_equal(c, sentinel);
        }
}

/* With no callback the result is the same, just silent. */
static void test_errors_without_callback(void **state) {
        Fixture *f = *state;
        Config *c = NULL;

        write_main(f, "{\"max_running\": 0}");
        assert_int_equal(config_load(f->main_path, NULL, NULL, &c), -EINVAL);
        assert_null(c);
        assert_int_equal(config_load(NULL, NULL, NULL, &c), -EINVAL);
        assert_int_equal(config_load(f->main_path, NULL, NULL, NULL), -EINVAL);
}

static void test_all_errors_reported(void **state) {
        Fixture *f = *state;

        write_main(f, "{\n"
                      "  \"max_running\": 0,\n"
                      "  \"executor\": \"podman\",\n"
                      "  \"colour\": \"blue\",\n"
                      "  \"commands\": [{\"cmd\": \"true\", \"allow\": {\"networks\": [\"10.1.0.0/8\"]}}],\n"
                      "  \"php_classes\": {\"Mail\": \"mailer\"}\n"
                      "}\n");
        write_task(f, "a.json", T("\"nice\": 99, \"backoff_sec\": [1, 2, 100000]"));
        write_task(f, "b.json",
                   "{\"name\": \"t\", \"exec\": [\"/bin/true\"], \"user\": \"no-such-user-xyz\"}");
        write_task(f, "c.json", "{ not json");

        assert_int_equal(load(f), -EINVAL);
        const char *a = strdup(task_path(f, "a.json"));
        const char *b = strdup(task_path(f, "b.json"));
        const char *c = strdup(task_path(f, "c.json"));
        struct {
                const char *file, *key;
        } want[] = {
                {f->main_path, "max_running"},
                {f->main_path, "executor"},
                {f->main_path, "colour"},
                {f->main_path, "commands[0].allow.networks[0]"},
                {f->main_path, "php_classes.Mail"},
                {a, "nice"},
                {a, "backoff_sec[2]"},
                {b, "user"},
                {b, "name"}, /* t is also defined in a.json */
                {c, ""},
        };
        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                if (errors_find(&f->errs, want[i].file, want[i].key, NULL) < 0) {
                        errors_print(&f->errs);
                        fail_msg("missing error for %s: %s", want[i].file, want[i].key);
                }
        assert_int_equal(f->errs.calls, ELEMENTSOF(want));
        assert_true(errors_find(&f->errs, b, "name", "already defined in") >= 0);
        assert_non_null(strstr(f->errs.e[errors_find(&f->errs, b, "name", NULL)].message, "a.json"));
        free((void *) a);
        free((void *) b);
        free((void *) c);
}

static void test_error_flood_is_bounded(void **state) {
        Fixture *f = *state;
        size_t cap = 32 + 400 * 16;
        char *text = malloc(cap);
        size_t len = 0;

        assert_non_null(text);
        len += (size_t) snprintf(text + len, cap - len, "{");
        for (int i = 0; i < 400; i++)
                len += (size_t) snprintf(text + len, cap - len, "%s\"k%d\": 1", i ? ", " : "", i);
        len += (size_t) snprintf(text + len, cap - len, "}");
        write_text(f->main_path, text, len);
        free(text);

        assert_int_equal(load(f), -EINVAL);
        assert_int_equal(f->errs.calls, CONFIG_ERRORS_MAX + 1);
        assert_string_equal(f->errs.e[CONFIG_ERRORS_MAX].message, "too many errors, not reporting more");
        assert_string_equal(f->errs.e[0].key, "k0");
}

static void test_file_size_limit(void **state) {
        Fixture *f = *state;
        char *text = malloc(CONFIG_FILE_BYTES_MAX + 2);

        assert_non_null(text);
        /* exactly the limit: a valid object padded with spaces */
        memset(text, ' ', CONFIG_FILE_BYTES_MAX + 1);
        text[0] = '{';
        text[CONFIG_FILE_BYTES_MAX - 1] = '}';
        write_text(f->main_path, text, CONFIG_FILE_BYTES_MAX);
        load_ok(f);

        /* one byte more */
        write_text(f->main_path, text, CONFIG_FILE_BYTES_MAX + 1);
        assert_int_equal(load(f), -EINVAL);
        assert_true(errors_find(&f->errs, f->main_path, "", "larger than") >= 0);

        /* also for a tasks.d file, and the rest is still checked */
        write_main(f, "{\"max_running\": 0}");
        write_task(f, "big.json", "{}");
        write_text(task_path(f, "big.json"), text, CONFIG_FILE_BYTES_MAX + 1);
        assert_int_equal(load(f), -EINVAL);
        assert_true(errors_find(&f->errs, task_path(f, "big.json"), "", "larger than") >= 0);
        assert_true(errors_find(&f->errs, f->main_path, "max_running", NULL) >= 0);
        free(text);
}

static void test_nul_byte(void **state) {
        Fixture *f = *state;
        static const char text[] = "{\n \"launcher\": \"/a\0b\"}";

        write_text(f->main_path, text, sizeof(text) - 1);
        assert_int_equal(load(f), -EINVAL);
        assert_true(errors_find(&f->errs, f->main_path, "", "NUL byte at line 2, column 17") >= 0);
}

static void test_io_errors(void **state) {
        Fixture *f = *state;
        char path[256];

        /* the main file missing: the I/O error is returned and reported */
        assert_int_equal(load(f), -ENOENT);
        assert_int_equal(f->errs.calls, 1);
        assert_string_equal(f->errs.e[0].file, f->main_path);
        assert_string_equal(f->errs.e[0].key, "");
        assert_non_null(strstr(f->errs.e[0].message, "cannot read"));
        assert_null(f->config);

        /* a directory where the main file should be */
        assert_int_equal(mkdir(f->main_path, 0755), 0);
        assert_int_equal(load(f), -EISDIR);
        assert_int_equal(rmdir(f->main_path), 0);

        /* tasks.d is a file */
        write_main(f, "{}");
        write_text(f->tasks_dir, "x", 1);
        assert_true(load(f) < 0);
        assert_true(errors_find(&f->errs, f->tasks_dir, "", "cannot read directory") >= 0);
        assert_int_equal(unlink(f->tasks_dir), 0);

        /* a directory and a FIFO named *.json in tasks.d */
        assert_int_equal(mkdir(f->tasks_dir, 0755), 0);
        (void) snprintf(path, sizeof(path), "%s/dir.json", f->tasks_dir);
        assert_int_equal(mkdir(path, 0755), 0);
        (void) snprintf(path, sizeof(path), "%s/fifo.json", f->tasks_dir);
        assert_int_equal(mkfifo(path, 0644), 0);
        assert_true(load(f) < 0);
        assert_true(errors_find(&f->errs, task_path(f, "dir.json"), "", NULL) >= 0);
        assert_true(errors_find(&f->errs, task_path(f, "fifo.json"), "", "not a regular file") >= 0);
}

/* ---- tasks.d ------------------------------------------------------------------------------------ */

static void test_tasks_dir_order(void **state) {
        Fixture *f = *state;
        char path[256];

        write_main(f, "{}");
        write_task(f, "b.json", "{\"name\": \"b\", \"exec\": [\"/bin/true\"]}");
        write_task(f, "20-second.json", "{\"name\": \"second\", \"exec\": [\"/bin/true\"]}");
        write_task(f, "a.json", "{\"name\": \"a\", \"exec\": [\"/bin/true\"]}");
        write_task(f, "10-first.json", "{\"name\": \"first\", \"exec\": [\"/bin/true\"]}");
        write_task(f, "B.json", "{\"name\": \"upper\", \"exec\": [\"/bin/true\"]}");
        /* not task files: all ignored, even though they are not valid JSON */
        write_task(f, "README", "not json");
        write_task(f, "a.json.bak", "not json");
        write_task(f, "a.json~", "not json");
        write_task(f, "a.JSON", "not json");
        write_task(f, ".hidden.json", "not json");
        write_task(f, ".json", "not json");
        write_task(f, "json", "not json");
        (void) snprintf(path, sizeof(path), "%s/sub", f->tasks_dir);
        assert_int_equal(mkdir(path, 0755), 0);
        (void) snprintf(path, sizeof(path), "%s/sub/c.json", f->tasks_dir);
        write_text(path, "not json", 8);

        load_ok(f);
        static const char *const order[] = {"first", "second", "upper", "a", "b"};
        static const char *const files[] = {"10-first.json", "20-second.json", "B.json", "a.json", "b.json"};
        assert_int_equal(f->config->n_tasks, ELEMENTSOF(order));
        for (size_t i = 0; i < ELEMENTSOF(order); i++) {
                assert_string_equal(f->config->tasks[i].name, order[i]);
                assert_string_equal(f->config->tasks[i].source, task_path(f, files[i]));
        }

        /* an empty tasks.d is fine too */
        reset(f);
        write_main(f, "{}");
        assert_int_equal(mkdir(f->tasks_dir, 0755), 0);
        load_ok(f);
        assert_int_equal(f->config->n_tasks, 0);
}

static void test_duplicate_tasks(void **state) {
        Fixture *f = *state;

        write_main(f, "{}");
        write_task(f, "a.json", "{\"name\": \"same\", \"exec\": [\"/bin/true\"]}");
        write_task(f, "b.json", "{\"name\": \"other\", \"exec\": [\"/bin/true\"]}");
        write_task(f, "c.json", "{\"name\": \"same\", \"exec\": [\"/bin/false\"]}");
        assert_int_equal(load(f), -EINVAL);
        assert_int_equal(f->errs.calls, 1);
        assert_string_equal(f->errs.e[0].file, task_path(f, "c.json"));
        assert_string_equal(f->errs.e[0].key, "name");
        assert_non_null(strstr(f->errs.e[0].message, task_path(f, "a.json")));
}

static void test_user_resolution(void **state) {
        Fixture *f = *state;

        write_main(f, "{}");
        write_task(f, "a.json", T("\"user\": \"www-data\""));
        write_task(f, "b.json", "{\"name\": \"b\", \"exec\": [\"/bin/true\"], \"user\": 33}");
        write_task(f, "c.json", "{\"name\": \"c\", \"exec\": [\"/bin/true\"], \"user\": \"0\"}");
        write_task(f, "d.json",
                   "{\"name\": \"d\", \"exec\": [\"/bin/true\"], \"user\": \"3999999\", "
                   "\"group\": \"3999998\"}");
        write_task(f, "e.json",
                   "{\"name\": \"e\", \"exec\": [\"/bin/true\"], \"user\": \"root\", "
                   "\"group\": \"nogroup\"}");
        load_ok(f);
        const Config *c = f->config;

        const TaskDef *t = config_find_task(c, "t");
        assert_string_equal(t->user, "www-data");
        assert_int_equal(t->uid, uid_of("www-data"));
        assert_int_equal(t->gid, getpwnam("www-data")->pw_gid); /* the user's primary group */
        assert_string_equal(t->group, group_name_of(t->gid));

        t = config_find_task(c, "b"); /* numeric ids with a passwd entry get the name */
        assert_int_equal(t->uid, 33);
        assert_string_equal(t->user, getpwuid(33)->pw_name);

        t = config_find_task(c, "c");
        assert_int_equal(t->uid, 0);
        assert_string_equal(t->user, "root");
        assert_int_equal(t->gid, 0);

        t = config_find_task(c, "d"); /* ids without entries are kept as numbers */
        assert_int_equal(t->uid, 3999999);
        assert_string_equal(t->user, "3999999");
        assert_int_equal(t->gid, 3999998);
        assert_string_equal(t->group, "3999998");

        t = config_find_task(c, "e");
        assert_int_equal(t->uid, 0);
        assert_int_equal(t->gid, gid_of("nogroup"));
        assert_string_equal(t->group, "nogroup");
}

/* ---- shipped files ------------------------------------------------------------------------------ */

/* The source tree: this file is <top>/tests/unit/test-config.c. */
static const char *top_dir(void) {
        static char top[PATH_MAX];
        const char *suffix = "tests/unit/test-config.c";
        size_t n = strlen(__FILE__), s = strlen(suffix);

        assert_true(n >= s && streq(__FILE__ + n - s, suffix));
        if (n == s)
                return ".";
        (void) snprintf(top, sizeof(top), "%.*s", (int) (n - s - 1), __FILE__);
        return top;
}

static void test_shipped_config(void **state) {
        Fixture *f = *state;
        char path[PATH_MAX];
        Config *c = NULL;

        (void) snprintf(path, sizeof(path), "%s/etc/asynctask.json", top_dir());
        if (config_load(path, capture, &f->errs, &c) != 0) {
                errors_print(&f->errs);
                fail_msg("%s does not load", path);
        }
        assert_int_equal(c->store_type, STORE_MEMORY);
        assert_string_equal(c->launcher_socket, "/run/asynctask/launcher.sock");
        assert_int_equal(c->executor, EXECUTOR_AUTO);
        assert_int_equal(c->n_tasks, 0);
        assert_int_equal(c->n_commands, 0);
        assert_int_equal(c->n_php_classes, 0);
        /* Admins may read and cancel everyone's tasks: root only, not the log readers of "adm". */
        assert_true(c->admins.present);
        assert_int_equal(c->admins.n_uids, 1);
        assert_int_equal(c->admins.uids[0], 0);
        assert_int_equal(c->admins.n_gids, 0);
        config_free(c);
}

/* ---- the launcher's load: only files no one but their owner can change ------------------------- */

static int load_trusted(Fixture *f, uid_t owner) {
        f->config = config_free(f->config);
        errors_clear(&f->errs);
        return config_load_trusted(f->main_path, owner, capture, &f->errs, &f->config);
}

/* Refused by the launcher's load, with the message naming the file; read as before by the front's. */
static void expect_untrusted(Fixture *f, uid_t owner, const char *file, const char *message) {
        if (load_trusted(f, owner) != -EINVAL || errors_find(&f->errs, file, "", message) < 0) {
                errors_print(&f->errs);
                fail_msg("want %s: ...%s...", file, message);
        }
        load_ok(f);
}

static void test_trusted_files(void **state) {
        static const struct {
                char which; /* m: the main file, t: tasks.d/t.json, d: tasks.d */
                mode_t mode;
                const char *message;
        } modes[] = {
                {'m', 0664, "file writable by its group (mode 0664): the launcher reads only what"},
                {'m', 0646, "file writable by anyone (mode 0646)"},
                {'m', 0622, "file writable by anyone (mode 0622)"},
                {'t', 0620, "file writable by its group (mode 0620)"},
                {'t', 0666, "file writable by anyone (mode 0666)"},
                {'d', 0775, "directory writable by its group (mode 0775)"},
                {'d', 01777, "directory writable by anyone (mode 1777)"},
        };
        Fixture *f = *state;
        char task[256], *path;
        uid_t me = geteuid();

        write_main(f, "{}");
        write_task(f, "t.json", T0);
        (void) snprintf(task, sizeof(task), "%s", task_path(f, "t.json"));
        assert_int_equal(chmod(f->main_path, 0644), 0);
        assert_int_equal(chmod(f->tasks_dir, 0755), 0);
        assert_int_equal(chmod(task, 0600), 0);
        assert_int_equal(load_trusted(f, me), 0);
        assert_int_equal(f->config->n_tasks, 1);

        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                path = modes[i].which == 'm' ? f->main_path : modes[i].which == 't' ? task : f->tasks_dir;
                assert_int_equal(chmod(path, modes[i].mode), 0);
                expect_untrusted(f, me, path, modes[i].message);
                assert_int_equal(chmod(path, modes[i].which == 'd' ? 0755 : 0644), 0);
        }
        assert_int_equal(load_trusted(f, me), 0);

        /* A launcher run as another user (development) reads only that user's files: neither the main
         * file nor tasks.d (whose files are then not read) are. */
        assert_int_equal(load_trusted(f, me + 1), -EINVAL);
        assert_true(errors_find(&f->errs, f->main_path, "", "the launcher reads only what uid") >= 0);
        assert_true(errors_find(&f->errs, f->tasks_dir, "", "directory owned by uid") >= 0);
        assert_int_equal(f->errs.calls, 2);

        /* Owned by someone else (only root can arrange that here). */
        if (me != 0)
                return;
        assert_int_equal(chown(task, 65534, (gid_t) -1), 0);
        expect_untrusted(f, 0, task, "file owned by uid 65534: the launcher reads only what root owns");
        assert_int_equal(chown(task, 0, (gid_t) -1), 0);
        assert_int_equal(chown(f->tasks_dir, 65534, (gid_t) -1), 0);
        expect_untrusted(f, 0, f->tasks_dir, "directory owned by uid 65534");
        assert_int_equal(chown(f->tasks_dir, 0, (gid_t) -1), 0);
        assert_int_equal(chown(f->main_path, 65534, (gid_t) -1), 0);
        expect_untrusted(f, 0, f->main_path, "file owned by uid 65534");
        assert_int_equal(chown(f->main_path, 0, (gid_t) -1), 0);
        assert_int_equal(load_trusted(f, 0), 0);
}

static void test_shipped_examples(void **state) {
        Fixture *f = *state;
        static const char *const examples[] = {"resize.json", "artisan-invoices.json", "deploy.json",
                                               "php-serialized.json", "alert-mail.json"};
        char path[PATH_MAX];

        write_main(f, "{\"php_classes\": {\"Lamb\": \"lamb\"}, \"on_failure\": \"alert-mail\"}");
        for (size_t i = 0; i < ELEMENTSOF(examples); i++) {
                FILE *in;
                char buf[8192];
                size_t n;

                (void) snprintf(path, sizeof(path), "%s/etc/examples/tasks.d/%s", top_dir(), examples[i]);
                in = fopen(path, "re");
                if (!in)
                        fail_msg("cannot open %s", path);
                n = fread(buf, 1, sizeof(buf) - 1, in);
                fclose(in);
                buf[n] = '\0';
                write_task(f, examples[i], buf);
        }
        load_ok(f);
        assert_int_equal(f->config->n_tasks, ELEMENTSOF(examples));
        const TaskDef *t = config_find_task(f->config, "resize");
        assert_non_null(t);
        assert_string_equal(t->exec[0], "/usr/bin/convert");
        assert_string_equal(config_find_php_class(f->config, "Lamb"), "lamb");
        assert_non_null(config_find_task(f->config, "deploy"));
        assert_non_null(config_find_task(f->config, "invoices-generate"));
        /* The alert example takes the failed id, and is every task's alert by default. */
        assert_string_equal(config_on_failure(f->config, t), "alert-mail");
        assert_int_equal(config_find_task(f->config, "alert-mail")->max_args, 1);
}

/* ---- backoff -------------------------------------------------------------------------------------- */

static void test_backoff_from_config(void **state) {
        Fixture *f = *state;

        write_main(f, "{}");
        write_task(f, "a.json", "{\"name\": \"empty\", \"exec\": [\"/bin/true\"], \"backoff_sec\": []}");
        write_task(f, "b.json", "{\"name\": \"dflt\", \"exec\": [\"/bin/true\"]}");
        write_task(f, "c.json", "{\"name\": \"list\", \"exec\": [\"/bin/true\"], \"backoff_sec\": [1, 2]}");
        load_ok(f);
        assert_int_equal(config_task_backoff_sec(config_find_task(f->config, "empty"), 1), 0);
        assert_int_equal(config_task_backoff_sec(config_find_task(f->config, "dflt"), 1), 10);
        assert_int_equal(config_task_backoff_sec(config_find_task(f->config, "dflt"), 3), 10);
        assert_int_equal(config_task_backoff_sec(config_find_task(f->config, "list"), 1), 1);
        assert_int_equal(config_task_backoff_sec(config_find_task(f->config, "list"), 2), 2);
        assert_int_equal(config_task_backoff_sec(config_find_task(f->config, "list"), 3), 2);
}

static Identity unix_id(uid_t uid, gid_t gid, const gid_t *groups, size_t n) {
        Identity id;
        assert_int_equal(identity_from_ucred(uid, gid, groups, n, &id), 0);
        return id;
}

static void test_is_admin(void **state) {
        Fixture *f = *state;
        struct sockaddr_in sin = {
                .sin_family = AF_INET, .sin_port = htons(1), .sin_addr = {htonl(0x7f000001)}};
        Identity tcp;
        gid_t adm = gid_of("adm");
        gid_t with_adm[] = {100, adm};
        gid_t without_adm[] = {100};

        assert_int_equal(identity_from_sockaddr((struct sockaddr *) &sin, sizeof(sin), &tcp), 0);

        /* default: root only */
        write_main(f, "{}");
        load_ok(f);
        struct {
                Identity id;
                bool want_default, want_configured;
        } cases[] = {
                {unix_id(0, 0, NULL, 0), true, false},
                {unix_id(uid_of("www-data"), 33, NULL, 0), false, true},
                {unix_id(1000, 1000, with_adm, 2), false, true},
                {unix_id(1000, adm, NULL, 0), false, true},
                {unix_id(1000, 1000, without_adm, 1), false, false},
                {tcp, false, false},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (config_is_admin(f->config, &cases[i].id) != cases[i].want_default)
                        fail_msg("default admins, %s", cases[i].id.description);

        write_main(f, "{\"admins\": {\"users\": [\"www-data\"], \"groups\": [\"adm\"]}}");
        load_ok(f);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (config_is_admin(f->config, &cases[i].id) != cases[i].want_configured)
                        fail_msg("configured admins, %s", cases[i].id.description);

        /* a Config built by hand with no admins gets the default */
        Config bare = {};
        assert_true(config_is_admin(&bare, &cases[0].id));
        assert_false(config_is_admin(&bare, &cases[1].id));
        assert_false(config_is_admin(&bare, &tcp));

        /* a TCP peer is never an admin, whatever it claims */
        tcp.uid = 0;
        assert_false(config_is_admin(f->config, &tcp));
        assert_false(config_is_admin(NULL, &cases[0].id));
        assert_false(config_is_admin(f->config, NULL));

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                identity_done(&cases[i].id);
}

static void test_config_free_null(void **state) {
        assert_null(config_free(NULL));
}

#define FIXTURE_TEST(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                FIXTURE_TEST(test_defaults),
                FIXTURE_TEST(test_task_defaults),
                FIXTURE_TEST(test_every_key),
                FIXTURE_TEST(test_accepted_values),
                FIXTURE_TEST(test_errors),
                FIXTURE_TEST(test_errors_without_callback),
                FIXTURE_TEST(test_all_errors_reported),
                FIXTURE_TEST(test_error_flood_is_bounded),
                FIXTURE_TEST(test_file_size_limit),
                FIXTURE_TEST(test_nul_byte),
                FIXTURE_TEST(test_io_errors),
                FIXTURE_TEST(test_tasks_dir_order),
                FIXTURE_TEST(test_duplicate_tasks),
                FIXTURE_TEST(test_user_resolution),
                FIXTURE_TEST(test_shipped_config),
                FIXTURE_TEST(test_shipped_examples),
                FIXTURE_TEST(test_trusted_files),
                FIXTURE_TEST(test_backoff_from_config),
                FIXTURE_TEST(test_is_admin),
                cmocka_unit_test(test_config_free_null),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
