/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <stdio.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "shared/config.h"
#include "shared/json-reader.h"
#include "shared/json-util.h"
#include "shared/limits.h"

#define STORE_GROUP_DEFAULT    "asynctask"
#define RETENTION_DAYS_DEFAULT 7
#define MAX_RUNNING_DEFAULT    16
#define MAX_RECORDS_DEFAULT    100000
#define CONNECTIONS_DEFAULT    1024
/* A quarter of the default max_connections: above the pool of a busy PHP-FPM site (pm.max_children
 * in the low hundreds, each worker holding at most one connection), while four users are needed to
 * fill the front. */
#define CONNECTIONS_PER_USER_DEFAULT 256
/* A client writes its frame right after connect(); ten seconds is ample under any load and short
 * enough that connections left in the middle of a frame do not pile up. */
#define FRAME_TIMEOUT_SEC_DEFAULT 10
/* Ten thousand unfinished tasks and 64 MiB of their stdin per submitter: far above a burst of mail
 * or image jobs, and a hundredth of QUEUED_MAX, so one submitter cannot fill the queue or the front. */
#define QUEUED_PER_SUBMITTER_DEFAULT             10000
#define QUEUED_STDIN_BYTES_PER_SUBMITTER_DEFAULT (64ULL * 1024 * 1024)

/* ---- one name, one definition ------------------------------------------------------------------ */

static int cmp_task_index(const void *a, const void *b, void *userdata) {
        const TaskDef *defs = userdata;
        size_t x = *(const size_t *) a, y = *(const size_t *) b;
        int r = strcmp(defs[x].name, defs[y].name);
        return r != 0 ? r : (x > y) - (x < y);
}

/* A later definition of the name that defs[first] has. */
static void report_duplicate(JsonReader *rd, const TaskDef *defs, size_t first, size_t later,
                             bool commands) {
        const TaskDef *a = &defs[first], *b = &defs[later];

        if (commands) {
                JsonKey k = json_reader_key_member(json_reader_key_index("commands", later).s, "cmd");
                json_reader_report(rd, k.s, "the same command is already listed as commands[%zu]", first);
                return;
        }
        const char *file = rd->file;
        rd->file = b->source ? b->source : file;
        json_reader_report(rd, "name", "task '%s' is already defined in %s", b->name,
                           a->source ? a->source : "another file");
        rd->file = file;
}

/* Each name may be defined once: every later definition is reported against the first. Sorting keeps
 * this O(n log n) however long the commands list is. */
static void report_duplicates(JsonReader *rd, const TaskDef *defs, size_t n, bool commands) {
        _cleanup_free_ size_t *order = NULL;
        size_t m = 0;

        if (n < 2)
                return;
        order = calloc(n, sizeof(size_t));
        if (!order) {
                rd->oom = true;
                return;
        }
        for (size_t i = 0; i < n; i++)
                if (defs[i].name)
                        order[m++] = i;
        qsort_r(order, m, sizeof(size_t), cmp_task_index, (void *) defs);

        for (size_t i = 1, first = 0; i < m; i++) {
                if (!streq(defs[order[first]].name, defs[order[i]].name))
                        first = i;
                else
                        report_duplicate(rd, defs, order[first], order[i], commands);
        }
}

/* ---- php_classes ------------------------------------------------------------------------------- */

static bool php_class_name_valid(const char *s) {
        /* PHP identifiers (bytes >= 0x80 included), separated by single backslashes for namespaces, as
         * serialize() writes them: "Lamb", "App\Jobs\SendMail". */
        bool at_start = true;

        for (const unsigned char *p = (const unsigned char *) s;; p++) {
                bool letter =
                        (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_' || *p >= 0x80;
                if (at_start) {
                        if (!letter)
                                return false;
                        at_start = false;
                } else if (*p == '\0')
                        return true;
                else if (*p == '\\')
                        at_start = true;
                else if (!letter && !(*p >= '0' && *p <= '9'))
                        return false;
        }
}

static const PhpClass *php_class_lookup(const Config *c, const char *class_name) {
        for (size_t i = 0; i < c->n_php_classes; i++)
                if (strcasecmp(c->php_classes[i].class_name, class_name) == 0)
                        return &c->php_classes[i];
        return NULL;
}

/* Adds class_name -> task unless the class is mapped already. False only when out of memory. */
static bool add_php_class(JsonReader *rd, Config *c, const char *key, const char *class_name,
                          const char *task) {
        /* PHP class names are case-insensitive, so "Lamb" and "lamb" are the same class. */
        const PhpClass *same = php_class_lookup(c, class_name);
        if (same) {
                /* An exact repeat was already reported by json_reader_check_members(). */
                if (!streq(same->class_name, class_name))
                        json_reader_report(rd, key,
                                           "class '%s' is already mapped as '%s' (PHP class names are "
                                           "case-insensitive)",
                                           class_name, same->class_name);
                return true;
        }
        PhpClass *pc = &c->php_classes[c->n_php_classes];
        pc->class_name = json_reader_strdup(rd, class_name);
        pc->task = json_reader_strdup(rd, task);
        if (!pc->class_name || !pc->task) {
                free(pc->class_name);
                free(pc->task);
                *pc = (PhpClass){};
                return false;
        }
        c->n_php_classes++;
        return true;
}

static void parse_php_classes(JsonReader *rd, const cJSON *obj, Config *c) {
        const cJSON *item;

        if (!json_reader_expect_object(rd, obj, "php_classes"))
                return;
        json_reader_check_members(rd, obj, "php_classes", NULL, NULL);
        c->php_classes = json_reader_new_array(rd, (size_t) cJSON_GetArraySize(obj), sizeof(PhpClass));
        if (!c->php_classes)
                return;
        cJSON_ArrayForEach (item, obj) {
                JsonKey k = json_reader_key_member("php_classes", item->string);
                const char *task;

                if (!php_class_name_valid(item->string)) {
                        json_reader_report(rd, k.s, "'%s' is not a PHP class name", item->string);
                        continue;
                }
                if (!json_reader_get_string(rd, item, k.s, false, &task))
                        continue;
                if (!add_php_class(rd, c, k.s, item->string, task))
                        return;
        }
}

/* An "on_failure" must name a task of tasks.d that can take an alert: the failed task's id as its one
 * argument (the record comes on stdin, which every task may get). */
static void check_on_failure_task(JsonReader *rd, const Config *c, const char *file, const char *key,
                                  const char *name) {
        const TaskDef *t = config_find_task(c, name);
        const char *saved = rd->file;

        rd->file = file;
        if (!t)
                json_reader_report(rd, key, "no task named '%s' in %s", name, c->tasks_dir);
        else if (t->max_args < 1)
                json_reader_report(
                        rd, key,
                        "task '%s' takes no arguments (max_args is 0), but an alert passes it the "
                        "failed task's id",
                        name);
        rd->file = saved;
}

static void check_on_failure(JsonReader *rd, const Config *c) {
        if (c->on_failure)
                check_on_failure_task(rd, c, c->path, "on_failure", c->on_failure);
        for (size_t i = 0; i < c->n_tasks; i++)
                if (c->tasks[i].on_failure)
                        check_on_failure_task(rd, c, c->tasks[i].source ? c->tasks[i].source : c->tasks_dir,
                                              "on_failure", c->tasks[i].on_failure);
        for (size_t i = 0; i < c->n_commands; i++)
                if (c->commands[i].on_failure)
                        check_on_failure_task(rd, c, c->path, "commands", c->commands[i].on_failure);
}

bool config_task_runs_on(const TaskDef *def, const char *node) {
        if (!def || def->n_hosts == 0)
                return true;
        for (size_t i = 0; i < def->n_hosts; i++)
                if (streq(def->hosts[i], node))
                        return true;
        return false;
}

const char *config_on_failure(const Config *c, const TaskDef *def) {
        if (def && def->on_failure)
                return def->on_failure;
        return c->on_failure;
}

/* php_classes may only name tasks that exist (the seed's sendTask() would otherwise be accepted and then
 * refused at submit time). */
static void check_php_class_tasks(JsonReader *rd, const Config *c) {
        const char *path = rd->file;

        for (size_t i = 0; i < c->n_php_classes; i++) {
                const PhpClass *pc = &c->php_classes[i];
                const TaskDef *t = config_find_task(c, pc->task);

                if (!t) {
                        json_reader_report(rd, json_reader_key_member("php_classes", pc->class_name).s,
                                           "no task named '%s' in %s", pc->task, c->tasks_dir);
                        continue;
                }
                /* Such a task's program reads a client's object from stdin; arguments would let the
                 * client steer it too (a PHP runner's options choose which file it loads). */
                if (t->max_args > 0) {
                        rd->file = t->source ? t->source : c->tasks_dir;
                        json_reader_report(
                                rd, "max_args",
                                "must be 0: task '%s' runs PHP objects of class '%s' (php_classes "
                                "in %s), and its clients may not pass it arguments",
                                t->name, pc->class_name, path);
                        rd->file = path;
                }
        }
}

/* ---- the main file ----------------------------------------------------------------------------- */

static const char *const store_keys[] = {"type", "option_file", "group", NULL};
static const char *const store_type_names[] = {
        [STORE_MEMORY] = "memory", [STORE_MYSQL] = "mysql", [_STORE_TYPE_MAX] = NULL};
static const char *const executor_names[] = {[EXECUTOR_AUTO] = "auto",
                                             [EXECUTOR_SYSTEMD] = "systemd",
                                             [EXECUTOR_DIRECT] = "direct",
                                             [_EXECUTOR_TYPE_MAX] = NULL};

static void parse_store(JsonReader *rd, const cJSON *obj, Config *c) {
        const cJSON *j;
        const char *s;
        size_t i;

        if (!json_reader_expect_object(rd, obj, "store"))
                return;
        json_reader_check_members(rd, obj, "store", store_keys, NULL);

        if ((j = json_reader_member(obj, "type")) &&
            json_reader_get_choice(rd, j, "store.type", store_type_names, &i))
                c->store_type = (StoreType) i;
        if ((j = json_reader_member(obj, "option_file")) &&
            json_reader_get_absolute_path(rd, j, "store.option_file", &s))
                c->store_option_file = json_reader_strdup(rd, s);
        if ((j = json_reader_member(obj, "group")) &&
            json_reader_get_string(rd, j, "store.group", false, &s))
                c->store_group = json_reader_strdup(rd, s);

        if (c->store_type == STORE_MYSQL && !json_reader_member(obj, "option_file"))
                json_reader_report(rd, "store.option_file", "is required when store.type is \"mysql\"");
}

static void parse_launcher_socket(JsonReader *rd, const cJSON *j, Config *c) {
        const size_t path_max = sizeof(((struct sockaddr_un *) NULL)->sun_path);
        const char *s;

        if (!json_reader_get_absolute_path(rd, j, "launcher", &s))
                return;
        if (strlen(s) >= path_max)
                json_reader_report(rd, "launcher", "socket path is longer than %zu bytes", path_max - 1);
        else
                c->launcher_socket = json_reader_strdup(rd, s);
}

static void parse_commands(JsonReader *rd, const cJSON *j, Config *c) {
        const cJSON *item;
        size_t i = 0;

        if (!json_reader_expect_array(rd, j, "commands"))
                return;
        c->commands = json_reader_new_array(rd, (size_t) cJSON_GetArraySize(j), sizeof(TaskDef));
        if (!c->commands)
                return;
        cJSON_ArrayForEach (item, j)
                config_task_parse_command(rd, item, json_reader_key_index("commands", i++).s,
                                          &c->commands[c->n_commands++]);
        report_duplicates(rd, c->commands, c->n_commands, true);
}

static const char *const main_keys[] = {
        "store",
        "launcher",
        "executor",
        "max_running",
        "max_frame_bytes",
        "max_connections",
        "max_connections_per_user",
        "frame_timeout_sec",
        "max_queued_per_submitter",
        "max_queued_stdin_bytes_per_submitter",
        "idle_exit_sec",
        "retention_days",
        "max_records",
        "admins",
        "commands",
        "php_classes",
        "on_failure",
        "node",
        "heartbeat_sec",
        "node_timeout_sec",
        NULL,
};

/* "node", or the host name (its first label, when it is not a valid name as a whole). */
static void parse_node(JsonReader *rd, const cJSON *root, Config *c) {
        const cJSON *j = json_reader_member(root, "node");
        char host[256] = "";
        const char *s;

        if (j) {
                if (!json_reader_get_string(rd, j, "node", false, &s))
                        return;
                if (!config_node_name_valid(s)) {
                        json_reader_report(rd, "node", "'%s' is not a node name (1-%d of A-Z a-z 0-9 _ . -)",
                                           s, NODE_NAME_BYTES_MAX);
                        return;
                }
                c->node = json_reader_strdup(rd, s);
                return;
        }
        if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
                snprintf(host, sizeof(host), "localhost");
        if (!config_node_name_valid(host))
                host[strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")] = 0;
        if (strlen(host) > NODE_NAME_BYTES_MAX)
                host[NODE_NAME_BYTES_MAX] = 0;
        c->node = json_reader_strdup(rd, host[0] ? host : "localhost");
}

static void check_node_timing(JsonReader *rd, const Config *c) {
        /* A live node must heartbeat a few times within the timeout, or a slow database would make it
         * look dead. */
        if (c->node_timeout_sec < 2 * c->heartbeat_sec)
                json_reader_report(rd, "node_timeout_sec", "must be at least twice heartbeat_sec (%llu)",
                                   (unsigned long long) c->heartbeat_sec);
}

static void parse_main(JsonReader *rd, const cJSON *root, Config *c) {
        const cJSON *j;
        size_t i;

        json_reader_check_members(rd, root, "", main_keys, NULL);

        if ((j = json_reader_member(root, "store")))
                parse_store(rd, j, c);
        if ((j = json_reader_member(root, "launcher")))
                parse_launcher_socket(rd, j, c);
        if ((j = json_reader_member(root, "executor")) &&
            json_reader_get_choice(rd, j, "executor", executor_names, &i))
                c->executor = (ExecutorType) i;

        json_reader_member_unsigned(rd, root, "", "max_running", 1, RUNNING_MAX, &c->max_running);
        uint64_t frame = c->max_frame_bytes;
        json_reader_member_u64(rd, root, "", "max_frame_bytes", 1024, FRAME_BYTES_MAX, &frame);
        c->max_frame_bytes = (size_t) frame;
        json_reader_member_unsigned(rd, root, "", "max_connections", 1, CONNECTIONS_MAX,
                                    &c->max_connections);
        json_reader_member_unsigned(rd, root, "", "max_connections_per_user", 1, CONNECTIONS_MAX,
                                    &c->max_connections_per_user);
        json_reader_member_u64(rd, root, "", "frame_timeout_sec", 0, FRAME_TIMEOUT_SEC_MAX,
                               &c->frame_timeout_sec);
        json_reader_member_unsigned(rd, root, "", "max_queued_per_submitter", 1, QUEUED_MAX,
                                    &c->max_queued_per_submitter);
        json_reader_member_u64(rd, root, "", "max_queued_stdin_bytes_per_submitter", 0,
                               QUEUED_STDIN_BYTES_PER_SUBMITTER_MAX,
                               &c->max_queued_stdin_bytes_per_submitter);
        json_reader_member_u64(rd, root, "", "idle_exit_sec", 0, IDLE_EXIT_SEC_MAX, &c->idle_exit_sec);
        json_reader_member_unsigned(rd, root, "", "retention_days", 1, RETENTION_DAYS_MAX,
                                    &c->retention_days);
        json_reader_member_u64(rd, root, "", "max_records", 1, RECORDS_MAX, &c->max_records);
        parse_node(rd, root, c);
        json_reader_member_u64(rd, root, "", "heartbeat_sec", 1, HEARTBEAT_SEC_MAX, &c->heartbeat_sec);
        json_reader_member_u64(rd, root, "", "node_timeout_sec", 2, NODE_TIMEOUT_SEC_MAX,
                               &c->node_timeout_sec);
        check_node_timing(rd, c);

        if ((j = json_reader_member(root, "admins")))
                config_task_parse_allow(rd, j, "admins", false, &c->admins);
        if ((j = json_reader_member(root, "commands")))
                parse_commands(rd, j, c);
        if ((j = json_reader_member(root, "php_classes")))
                parse_php_classes(rd, j, c);
        if ((j = json_reader_member(root, "on_failure"))) {
                const char *s;

                if (json_reader_get_string(rd, j, "on_failure", false, &s))
                        c->on_failure = json_reader_strdup(rd, s);
        }
}

/* ---- tasks.d ----------------------------------------------------------------------------------- */

static int is_task_file(const struct dirent *de) {
        size_t n = strlen(de->d_name);
        /* Hidden files (editor and package-manager leftovers) are skipped like non-.json ones. */
        return de->d_name[0] != '.' && n > 5 && streq(de->d_name + n - 5, ".json");
}

/* Bytewise, whatever the locale: the order must not change with the environment of the daemon. */
static int cmp_dirent_names(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

int config_check_tasks_dir(JsonReader *rd, const char *dir) {
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (!rd->trusted_only)
                return 0;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        return json_reader_trusted(rd, &st) ? 0 : 1;
}

int config_list_task_files(const char *dir, char ***ret, size_t *ret_n) {
        struct dirent **entries = NULL;
        int n = scandir(dir, &entries, is_task_file, cmp_dirent_names);
        char **names;
        int r = 0;

        if (n < 0 && errno != ENOENT)
                return -errno;
        names = calloc(n < 0 ? 1 : (size_t) n + 1, sizeof(char *));
        for (int i = 0; i < n; i++) {
                if (names && !(names[i] = strdup(entries[i]->d_name)))
                        r = -ENOMEM;
                free(entries[i]);
        }
        free(entries);
        if (!names)
                return -ENOMEM;
        if (r < 0) {
                strv_free(names);
                return r;
        }
        *ret = names;
        *ret_n = n < 0 ? 0 : (size_t) n;
        return 0;
}

static void load_task_file(JsonReader *rd, const char *tasks_dir, const char *name, Config *c) {
        _cleanup_free_ char *path = NULL;
        _cleanup_(cjson_deletep) cJSON *root = NULL;

        if (asprintf(&path, "%s/%s", tasks_dir, name) < 0) {
                path = NULL;
                rd->oom = true;
                return;
        }
        rd->file = path;
        root = json_reader_load_file(rd, path);
        if (root)
                config_task_parse(rd, root, &c->tasks[c->n_tasks++]);
        rd->file = tasks_dir; /* path is freed on return */
}

static void load_tasks(JsonReader *rd, Config *c) {
        _cleanup_(strv_freep) char **names = NULL;
        size_t n = 0;
        int r;

        rd->file = c->tasks_dir;
        r = config_check_tasks_dir(rd, c->tasks_dir);
        if (r > 0)
                return;
        if (r >= 0)
                r = config_list_task_files(c->tasks_dir, &names, &n);
        if (r == -ENOMEM) {
                rd->oom = true;
                return;
        }
        if (r < 0) {
                json_reader_report(rd, "", "cannot read directory: %s", strerror(-r));
                if (!rd->io_error)
                        rd->io_error = r;
                return;
        }

        c->tasks = json_reader_new_array(rd, n, sizeof(TaskDef));
        for (size_t i = 0; i < n && c->tasks && !rd->oom; i++)
                load_task_file(rd, c->tasks_dir, names[i], c);
        if (!rd->oom)
                report_duplicates(rd, c->tasks, c->n_tasks, false);
}

/* ---- loading ----------------------------------------------------------------------------------- */

static char *tasks_dir_of(const char *path) {
        const char *slash = strrchr(path, '/');
        char *dir;

        if (!slash)
                return strdup("tasks.d");
        if (asprintf(&dir, "%.*s/tasks.d", (int) (slash - path), path) < 0)
                return NULL;
        return dir;
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        free(c->path);
        free(c->tasks_dir);
        free(c->store_option_file);
        free(c->store_group);
        free(c->launcher_socket);
        free(c->on_failure);
        free(c->node);
        allow_done(&c->admins);
        for (size_t i = 0; i < c->n_tasks; i++)
                config_task_done(&c->tasks[i]);
        free(c->tasks);
        for (size_t i = 0; i < c->n_commands; i++)
                config_task_done(&c->commands[i]);
        free(c->commands);
        for (size_t i = 0; i < c->n_php_classes; i++) {
                free(c->php_classes[i].class_name);
                free(c->php_classes[i].task);
        }
        free(c->php_classes);
        free(c);
        return NULL;
}

/* A Config with every default that needs no allocation, for the main file to change. */
static Config *config_new(const char *path) {
        _cleanup_(config_freep) Config *c = calloc(1, sizeof(Config));

        if (!c)
                return NULL;
        *c = (Config){
                .store_type = STORE_MEMORY,
                .retention_days = RETENTION_DAYS_DEFAULT,
                .max_records = MAX_RECORDS_DEFAULT,
                .executor = EXECUTOR_AUTO,
                .max_running = MAX_RUNNING_DEFAULT,
                .max_frame_bytes = FRAME_BYTES_DEFAULT,
                .max_connections = CONNECTIONS_DEFAULT,
                .max_connections_per_user = CONNECTIONS_PER_USER_DEFAULT,
                .frame_timeout_sec = FRAME_TIMEOUT_SEC_DEFAULT,
                .max_queued_per_submitter = QUEUED_PER_SUBMITTER_DEFAULT,
                .max_queued_stdin_bytes_per_submitter = QUEUED_STDIN_BYTES_PER_SUBMITTER_DEFAULT,
                .idle_exit_sec = 0,
                .heartbeat_sec = HEARTBEAT_SEC_DEFAULT,
                .node_timeout_sec = NODE_TIMEOUT_SEC_DEFAULT,
        };
        c->path = strdup(path);
        c->tasks_dir = tasks_dir_of(path);
        if (!c->path || !c->tasks_dir)
                return NULL;
        return TAKE_PTR(c);
}

/* The defaults of what the main file left out and that take an allocation. */
static void fill_defaults(JsonReader *rd, Config *c) {
        if (!c->store_group)
                c->store_group = json_reader_strdup(rd, STORE_GROUP_DEFAULT);
        if (!c->launcher_socket)
                c->launcher_socket = json_reader_strdup(rd, LAUNCHER_SOCKET_DEFAULT);
        if (!c->admins.present) {
                _cleanup_(cjson_deletep) cJSON *dflt = cJSON_Parse("{\"users\":[\"root\"]}");
                if (!dflt)
                        rd->oom = true;
                else
                        config_task_parse_allow(rd, dflt, "admins", false, &c->admins);
        }
}

static int load_files(const char *path, bool trusted_only, uid_t owner, ConfigErrorFn on_error,
                      void *userdata, Config **ret) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(cjson_deletep) cJSON *root = NULL;
        JsonReader rd = {.on_error = on_error,
                         .userdata = userdata,
                         .file = path,
                         .trusted_only = trusted_only,
                         .trusted_owner = owner};

        if (!path || !ret)
                return -EINVAL;
        c = config_new(path);
        if (!c)
                return -ENOMEM;

        root = json_reader_load_file(&rd, path);
        if (root)
                parse_main(&rd, root, c);
        else if (rd.io_error && !rd.oom)
                return rd.io_error; /* nothing to check without the main file */

        load_tasks(&rd, c);
        rd.file = path;
        check_php_class_tasks(&rd, c);
        check_on_failure(&rd, c);
        fill_defaults(&rd, c);

        if (rd.oom)
                return -ENOMEM;
        if (rd.n_errors > 0)
                return rd.io_error ? rd.io_error : -EINVAL;
        *ret = TAKE_PTR(c);
        return 0;
}

int config_load(const char *path, ConfigErrorFn on_error, void *userdata, Config **ret) {
        return load_files(path, false, 0, on_error, userdata, ret);
}

int config_load_trusted(const char *path, uid_t owner, ConfigErrorFn on_error, void *userdata,
                        Config **ret) {
        return load_files(path, true, owner, on_error, userdata, ret);
}

/* ---- lookups ----------------------------------------------------------------------------------- */

const TaskDef *config_find_task(const Config *c, const char *name) {
        if (!c || !name)
                return NULL;
        for (size_t i = 0; i < c->n_tasks; i++)
                if (streq_ptr(c->tasks[i].name, name))
                        return &c->tasks[i];
        return NULL;
}

const TaskDef *config_find_command(const Config *c, const char *cmd) {
        if (!c || !cmd)
                return NULL;
        for (size_t i = 0; i < c->n_commands; i++)
                if (streq_ptr(c->commands[i].name, cmd))
                        return &c->commands[i];
        return NULL;
}

const char *config_find_php_class(const Config *c, const char *class_name) {
        if (!c || !class_name)
                return NULL;
        const PhpClass *pc = php_class_lookup(c, class_name);
        return pc ? pc->task : NULL;
}
