/* SPDX-License-Identifier: MIT */
/*
 * The readers of a task's and a command's definition (a file of tasks.d, the commands list): one reader
 * per key, checked in the order the keys are documented in asynctask.json(5). A little over 800 lines
 * because each of the keys a task may have is read and bounded here; the schedule keys, which need
 * the calendar, live in config-schedule.c.
 */
#include <grp.h>
#include <pwd.h>

#include "shared/config-task.h"
#include "shared/json-util.h"
#include "shared/limits.h"
#include "shared/nss.h"

#define TASK_USER_DEFAULT   "nobody"
#define BACKOFF_SEC_DEFAULT 10
#define NICE_MIN            (-20)
#define NICE_MAX            19
#define ID_MAX              4294967294U /* (uid_t) -1 means "no change" to the kernel */

/* Users and groups are both read as uint32_t ids, and allow lists keep them as uid_t and gid_t. */
_Static_assert(__builtin_types_compatible_p(uid_t, uint32_t) &&
                       __builtin_types_compatible_p(gid_t, uint32_t),
               "uid_t and gid_t are uint32_t");

/* ---- users and groups -------------------------------------------------------------------------- */

/* Plain decimal id, as for numeric "user"/"group" values. */
static bool parse_id(const char *s, uint32_t *ret) {
        uint64_t v = 0;

        if (!s[0] || strlen(s) > 10)
                return false;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return false;
                v = v * 10 + (uint64_t) (*p - '0');
        }
        if (v > ID_MAX)
                return false;
        *ret = (uint32_t) v;
        return true;
}

/* Looks up a user (or a group) by name, or by id when name is NULL: its name, its id and (a user's)
 * primary group. 0, -ESRCH if absent, -errno. */
static int get_entry(bool group, const char *name, uint32_t id, char **ret_name, uint32_t *ret_id,
                     gid_t *ret_gid) {
        _cleanup_free_ char *buf = NULL;
        struct passwd pw;
        struct group gr;
        char *n;
        int r;

        r = group ? nss_get_group(name, (gid_t) id, &gr, &buf) : nss_get_passwd(name, (uid_t) id, &pw, &buf);
        if (r < 0)
                return nss_error_means_absent(-r) ? -ESRCH : r;
        n = strdup(group ? gr.gr_name : pw.pw_name);
        if (!n)
                return -ENOMEM;
        *ret_name = n;
        *ret_id = group ? gr.gr_gid : pw.pw_uid;
        *ret_gid = group ? gr.gr_gid : pw.pw_gid;
        return 0;
}

/* A user or group as written: a name, a numeric string, or a JSON integer (spelt out in numbuf). */
static bool get_name_or_id(JsonReader *rd, const cJSON *j, const char *key, char numbuf[static 16],
                           const char **ret) {
        int64_t v;

        if (!cJSON_IsNumber(j))
                return json_reader_get_string(rd, j, key, false, ret);
        if (!json_reader_get_integer(rd, j, key, 0, ID_MAX, &v))
                return false;
        (void) snprintf(numbuf, 16, "%u", (unsigned) v);
        *ret = numbuf;
        return true;
}

/* A user (or a group) given as a name, a numeric string or a JSON integer. A numeric id need not have
 * an entry (then *ret_found is false, the name is the number and a user's primary group is 0). */
static bool resolve_entry(JsonReader *rd, const cJSON *j, const char *key, bool group, uint32_t *ret_id,
                          gid_t *ret_gid, bool *ret_found, char **ret_name) {
        _cleanup_free_ char *name = NULL;
        char numbuf[16];
        const char *s;
        uint32_t id = 0, found_id;
        gid_t gid = 0;
        bool numeric;
        int r;

        if (!get_name_or_id(rd, j, key, numbuf, &s))
                return false;
        numeric = parse_id(s, &id);
        r = numeric ? get_entry(group, NULL, id, &name, &found_id, &gid)
                    : get_entry(group, s, 0, &name, &id, &gid);
        if (r == -ENOMEM) {
                rd->oom = true;
                return false;
        }
        if (r < 0 && !numeric) {
                const char *what = group ? "group" : "user";
                if (r == -ESRCH)
                        json_reader_report(rd, key, "no such %s '%s'", what, s);
                else
                        json_reader_report(rd, key, "cannot look up %s '%s': %s", what, s, strerror(-r));
                return false;
        }
        if (r < 0 && !(name = json_reader_strdup(rd, s)))
                return false;

        *ret_id = id;
        if (ret_gid)
                *ret_gid = gid;
        if (ret_found)
                *ret_found = r >= 0;
        if (ret_name)
                *ret_name = TAKE_PTR(name);
        return true;
}

static bool resolve_user(JsonReader *rd, const cJSON *j, const char *key, uid_t *ret_uid, gid_t *ret_gid,
                         bool *ret_has_pw, char **ret_name) {
        return resolve_entry(rd, j, key, false, ret_uid, ret_gid, ret_has_pw, ret_name);
}

static bool resolve_group(JsonReader *rd, const cJSON *j, const char *key, gid_t *ret_gid, char **ret_name) {
        return resolve_entry(rd, j, key, true, ret_gid, NULL, NULL, ret_name);
}

/* ---- allow ------------------------------------------------------------------------------------- */

static const char *const allow_keys[] = {"users", "groups", "networks", NULL};
static const char *const admins_keys[] = {"users", "groups", NULL};

/* allow.users or allow.groups: each a name or a number. */
static void parse_id_list(JsonReader *rd, const cJSON *obj, const char *path, const char *name, bool group,
                          uint32_t **ret, size_t *ret_n) {
        const cJSON *j = json_reader_member(obj, name), *item;
        JsonKey k = json_reader_key_member(path, name);
        size_t i = 0;

        if (!j || !json_reader_expect_array(rd, j, k.s))
                return;
        *ret = json_reader_new_array(rd, (size_t) cJSON_GetArraySize(j), sizeof(uint32_t));
        cJSON_ArrayForEach (item, j) {
                uint32_t id;
                if (*ret &&
                    resolve_entry(rd, item, json_reader_key_index(k.s, i).s, group, &id, NULL, NULL, NULL))
                        (*ret)[(*ret_n)++] = id;
                i++;
        }
}

static void parse_networks(JsonReader *rd, const cJSON *obj, const char *path, Allow *ret) {
        const cJSON *j = json_reader_member(obj, "networks"), *item;
        JsonKey k = json_reader_key_member(path, "networks");
        size_t i = 0;

        if (!j || !json_reader_expect_array(rd, j, k.s))
                return;
        ret->networks = json_reader_new_array(rd, (size_t) cJSON_GetArraySize(j), sizeof(Network));
        cJSON_ArrayForEach (item, j) {
                JsonKey ki = json_reader_key_index(k.s, i++);
                const char *s;
                Network net;

                if (!json_reader_get_string(rd, item, ki.s, false, &s))
                        continue;
                if (network_parse(s, &net) < 0) {
                        json_reader_report(
                                rd, ki.s,
                                "invalid network '%s': expected ADDRESS or ADDRESS/PREFIX with no "
                                "address bits set past the prefix",
                                s);
                        continue;
                }
                if (ret->networks)
                        ret->networks[ret->n_networks++] = net;
        }
}

void config_task_parse_allow(JsonReader *rd, const cJSON *obj, const char *path, bool with_networks,
                             Allow *ret) {
        allow_done(ret);
        ret->present = true;
        if (!json_reader_expect_object(rd, obj, path))
                return;
        json_reader_check_members(rd, obj, path, with_networks ? allow_keys : admins_keys, NULL);
        parse_id_list(rd, obj, path, "users", false, &ret->uids, &ret->n_uids);
        parse_id_list(rd, obj, path, "groups", true, &ret->gids, &ret->n_gids);
        if (with_networks)
                parse_networks(rd, obj, path, ret);
}

/* ---- sandbox ----------------------------------------------------------------------------------- */

static const char *const sandbox_keys[] = {
        "profile",         "protect_system",    "protect_home",     "private_tmp", "private_devices",
        "private_network", "no_new_privileges", "read_write_paths", NULL,
};
static const char *const sandbox_profiles[] = {"default", "strict", NULL};
static const char *const protect_system_values[] = {"strict", "full", "true", "false", NULL};
static const char *const protect_home_values[] = {"true", "read-only", "tmpfs", "false", NULL};

/* A systemd tri-state such as ProtectSystem=: one of `values`, or a JSON boolean for "true"/"false". */
static void get_protect(JsonReader *rd, const cJSON *obj, const char *path, const char *name,
                        const char *const *values, char **ret) {
        const cJSON *j = json_reader_member(obj, name);
        const char *s;
        size_t i;

        if (!j)
                return;
        if (cJSON_IsBool(j))
                s = cJSON_IsTrue(j) ? "true" : "false";
        else if (json_reader_get_choice(rd, j, json_reader_key_member(path, name).s, values, &i))
                s = values[i];
        else
                return;
        free(*ret);
        *ret = json_reader_strdup(rd, s);
}

/* NULL-terminated arrays of strings whose length is kept beside them. */
static void strv_free_n(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

static void parse_read_write_paths(JsonReader *rd, const cJSON *j, const char *key, Sandbox *sb) {
        const cJSON *item;
        size_t i = 0, n = 0;

        if (!json_reader_expect_array(rd, j, key))
                return;
        char **paths = json_reader_new_array(rd, (size_t) cJSON_GetArraySize(j), sizeof(char *));
        if (!paths)
                return;
        cJSON_ArrayForEach (item, j) {
                const char *s;
                if (json_reader_get_absolute_path(rd, item, json_reader_key_index(key, i).s, &s) &&
                    (paths[n] = json_reader_strdup(rd, s)))
                        n++;
                i++;
        }
        strv_free_n(sb->read_write_paths, sb->n_read_write_paths);
        sb->read_write_paths = paths;
        sb->n_read_write_paths = n;
}

/* "sandbox": "default" | "strict", or an object with "profile" and the relaxations. */
static void parse_sandbox(JsonReader *rd, const cJSON *obj, const char *path, Sandbox *sb) {
        const cJSON *j;
        size_t i;

        if (cJSON_IsString(obj)) {
                if (json_reader_get_choice(rd, obj, path, sandbox_profiles, &i))
                        sb->strict = i == 1;
                return;
        }
        if (!json_reader_expect_object(rd, obj, path))
                return;
        json_reader_check_members(rd, obj, path, sandbox_keys, NULL);

        if ((j = json_reader_member(obj, "profile")) &&
            json_reader_get_choice(rd, j, json_reader_key_member(path, "profile").s, sandbox_profiles, &i))
                sb->strict = i == 1;
        get_protect(rd, obj, path, "protect_system", protect_system_values, &sb->protect_system);
        get_protect(rd, obj, path, "protect_home", protect_home_values, &sb->protect_home);
        json_reader_member_bool(rd, obj, path, "private_tmp", &sb->private_tmp);
        json_reader_member_bool(rd, obj, path, "private_devices", &sb->private_devices);
        json_reader_member_bool(rd, obj, path, "private_network", &sb->private_network);
        json_reader_member_bool(rd, obj, path, "no_new_privileges", &sb->no_new_privileges);
        if ((j = json_reader_member(obj, "read_write_paths")))
                parse_read_write_paths(rd, j, json_reader_key_member(path, "read_write_paths").s, sb);
}

/* ---- values of their own kind ------------------------------------------------------------------ */

static bool env_name_valid(const char *s) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
                return false;
        for (s++; *s; s++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
                      *s == '_'))
                        return false;
        return true;
}

static void parse_environment(JsonReader *rd, const cJSON *obj, const char *path, TaskDef *t) {
        const cJSON *item;
        size_t n;

        if (!json_reader_expect_object(rd, obj, path))
                return;
        n = (size_t) cJSON_GetArraySize(obj);
        if (n > ENVIRONMENT_MAX) {
                json_reader_report(rd, path, "has %zu variables, at most %d are allowed", n,
                                   ENVIRONMENT_MAX);
                return;
        }
        json_reader_check_members(rd, obj, path, NULL, NULL);
        t->environment = json_reader_new_array(rd, n, sizeof(char *));
        if (!t->environment)
                return;
        cJSON_ArrayForEach (item, obj) {
                JsonKey k = json_reader_key_member(path, item->string);
                const char *value;
                char *entry;

                if (!env_name_valid(item->string)) {
                        json_reader_report(rd, k.s,
                                           "'%s' is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)",
                                           item->string);
                        continue;
                }
                if (!json_reader_get_string(rd, item, k.s, true, &value))
                        continue;
                if (asprintf(&entry, "%s=%s", item->string, value) < 0) {
                        rd->oom = true;
                        return;
                }
                t->environment[t->n_environment++] = entry;
        }
}

/* A systemd credential name (systemd allows more: printable ASCII but "/" and ":"), kept to the
 * characters that survive the unit file PID 1 writes for a transient unit and that need no quoting
 * in $CREDENTIALS_DIRECTORY/NAME. */
static bool credential_name_valid(const char *s) {
        size_t n = strlen(s);
        return n >= 1 && n <= 255 && !streq(s, ".") && !streq(s, "..") &&
               strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* An absolute path with no "." or ".." component, no "//", no trailing "/", and no whitespace or
 * control character (PID 1 writes it into the unit's file and reads it back on daemon-reload). */
static bool credential_path_valid(const char *s) {
        for (const char *p = s; *p; p++) {
                if ((unsigned char) *p <= ' ' || *p == 0x7f)
                        return false;
                if (*p == '/' && (p[1] == '/' || p[1] == 0 || (p[1] == '.' && (p[2] == '/' || p[2] == 0)) ||
                                  (p[1] == '.' && p[2] == '.' && (p[3] == '/' || p[3] == 0))))
                        return false;
        }
        return true;
}

static void parse_credentials(JsonReader *rd, const cJSON *obj, const char *path, TaskDef *t) {
        const cJSON *item;
        size_t n;

        if (!json_reader_expect_object(rd, obj, path))
                return;
        n = (size_t) cJSON_GetArraySize(obj);
        if (n > CREDENTIALS_MAX) {
                json_reader_report(rd, path, "has %zu credentials, at most %d are allowed", n,
                                   CREDENTIALS_MAX);
                return;
        }
        json_reader_check_members(rd, obj, path, NULL, NULL);
        t->credentials = json_reader_new_array(rd, n, sizeof(Credential));
        if (!t->credentials)
                return;
        cJSON_ArrayForEach (item, obj) {
                JsonKey k = json_reader_key_member(path, item->string);
                Credential *cred = &t->credentials[t->n_credentials];
                const char *file;

                if (!credential_name_valid(item->string)) {
                        json_reader_report(
                                rd, k.s,
                                "'%s' is not a valid credential name (1 to 255 of A-Z a-z 0-9 _ . -)",
                                item->string);
                        continue;
                }
                if (!json_reader_get_absolute_path(rd, item, k.s, &file))
                        continue;
                if (!credential_path_valid(file)) {
                        json_reader_report(rd, k.s, "'%s' is not a normalized path without spaces", file);
                        continue;
                }
                cred->name = json_reader_strdup(rd, item->string);
                cred->path = json_reader_strdup(rd, file);
                t->n_credentials++;
        }
}

static void parse_backoff(JsonReader *rd, const cJSON *j, const char *path, TaskDef *t) {
        const cJSON *item;
        size_t n, i = 0;

        if (!json_reader_expect_array(rd, j, path))
                return;
        n = (size_t) cJSON_GetArraySize(j);
        if (n > BACKOFF_STEPS_MAX) {
                json_reader_report(rd, path, "has %zu entries, at most %d are allowed", n,
                                   BACKOFF_STEPS_MAX);
                return;
        }
        uint64_t *v = json_reader_new_array(rd, n, sizeof(uint64_t));
        if (!v)
                return;
        free(t->backoff_sec);
        t->backoff_sec = v;
        t->n_backoff = 0;
        cJSON_ArrayForEach (item, j) {
                int64_t x;
                if (json_reader_get_integer(rd, item, json_reader_key_index(path, i).s, 0, BACKOFF_SEC_MAX,
                                            &x))
                        t->backoff_sec[t->n_backoff++] = (uint64_t) x;
                i++;
        }
}

static void parse_cpu_quota(JsonReader *rd, const cJSON *j, const char *key, TaskDef *t) {
        const char *s;
        size_t digits;
        unsigned long v;

        if (!json_reader_get_string(rd, j, key, false, &s))
                return;
        digits = strspn(s, "0123456789");
        if (digits == 0 || digits > 5 || !streq(s + digits, "%")) {
                json_reader_report(rd, key, "'%s' is not a percentage such as \"50%%\"", s);
                return;
        }
        v = strtoul(s, NULL, 10);
        if (v < 1 || v > CPU_QUOTA_MAX) {
                json_reader_report(rd, key, "must be between 1%% and %d%%", CPU_QUOTA_MAX);
                return;
        }
        t->cpu_quota = (unsigned) v;
}

int config_task_parse_size(const char *s, uint64_t *ret) {
        uint64_t v = 0, mult = 1;
        const char *p = s;

        if (!s || !ret || *s < '0' || *s > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                unsigned digit = (unsigned) (*p - '0');
                if (v > (UINT64_MAX - digit) / 10)
                        return -ERANGE;
                v = v * 10 + digit;
        }
        switch (*p) {
        case '\0':
                break;
        case 'K':
                mult = 1ULL << 10;
                break;
        case 'M':
                mult = 1ULL << 20;
                break;
        case 'G':
                mult = 1ULL << 30;
                break;
        case 'T':
                mult = 1ULL << 40;
                break;
        default:
                return -EINVAL;
        }
        if (*p && p[1] != '\0')
                return -EINVAL;
        if (v > UINT64_MAX / mult)
                return -ERANGE;
        *ret = v * mult;
        return 0;
}

static void parse_memory_max(JsonReader *rd, const cJSON *j, const char *key, TaskDef *t) {
        const char *s;
        uint64_t v;
        int64_t n;

        if (cJSON_IsNumber(j)) {
                if (json_reader_get_integer(rd, j, key, 0, INT64_MAX, &n))
                        t->memory_max = (uint64_t) n;
                return;
        }
        if (!json_reader_get_string(rd, j, key, false, &s))
                return;
        int r = config_task_parse_size(s, &v);
        if (r == -ERANGE)
                json_reader_report(rd, key, "'%s' is too large", s);
        else if (r < 0)
                json_reader_report(rd, key,
                                   "'%s' is not a size such as \"512M\" (K, M, G, T or plain bytes)", s);
        else
                t->memory_max = v;
}

/* ---- schedule ---------------------------------------------------------------------------------- */

/* A scheduled run is submitted by root over the unix socket (the timer's service), so an allow list
 * must let root submit; without one, root alone may. */
static void check_schedule_allowed(JsonReader *rd, const TaskDef *t) {
        if (t->schedule.n_calendars == 0 || !t->allow.present)
                return;
        for (size_t i = 0; i < t->allow.n_uids; i++)
                if (t->allow.uids[i] == 0)
                        return;
        for (size_t i = 0; i < t->allow.n_gids; i++)
                if (t->allow.gids[i] == 0)
                        return;
        json_reader_report(
                rd, "allow",
                "does not allow root, who submits the scheduled runs: add \"root\" to allow.users");
}

/* ---- tasks and commands ------------------------------------------------------------------------ */

bool config_node_name_valid(const char *s) {
        size_t n = strlen(s);
        return n >= 1 && n <= NODE_NAME_BYTES_MAX &&
               strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static const char *const on_lost_names[] = {"retry", "fail", NULL};

static void parse_hosts(JsonReader *rd, const cJSON *arr, const char *path, TaskDef *t) {
        const cJSON *item;
        size_t n;

        if (!json_reader_expect_array(rd, arr, path))
                return;
        n = (size_t) cJSON_GetArraySize(arr);
        if (n == 0 || n > TASK_HOSTS_MAX) {
                json_reader_report(rd, path, "must list 1 to %d node names", TASK_HOSTS_MAX);
                return;
        }
        t->hosts = json_reader_new_array(rd, n + 1, sizeof(char *));
        if (!t->hosts)
                return;
        cJSON_ArrayForEach (item, arr) {
                JsonKey k = json_reader_key_index(path, t->n_hosts);
                const char *s;

                if (!json_reader_get_string(rd, item, k.s, false, &s))
                        return;
                if (!config_node_name_valid(s)) {
                        json_reader_report(rd, k.s, "'%s' is not a node name", s);
                        return;
                }
                t->hosts[t->n_hosts] = json_reader_strdup(rd, s);
                if (!t->hosts[t->n_hosts])
                        return;
                t->n_hosts++;
        }
}

/* The keys of several hosts on one database. */
static void parse_cluster_keys(JsonReader *rd, const cJSON *obj, const char *path, TaskDef *t) {
        static const char *const on_names[] = {"any_host", "every_host", NULL};
        const cJSON *j;
        size_t i;

        if ((j = json_reader_member(obj, "on_lost")) &&
            json_reader_get_choice(rd, j, json_reader_key_member(path, "on_lost").s, on_lost_names, &i))
                t->on_lost_fail = i == 1;
        if ((j = json_reader_member(obj, "hosts")))
                parse_hosts(rd, j, json_reader_key_member(path, "hosts").s, t);
        if ((j = json_reader_member(obj, "on")) &&
            json_reader_get_choice(rd, j, json_reader_key_member(path, "on").s, on_names, &i))
                t->every_host = i == 1;
        /* A limited name runs only on its owner (docs/cluster.md): the other hosts' runs would never
         * start. */
        if (t->every_host && t->concurrency > 0)
                json_reader_report(rd, json_reader_key_member(path, "on").s,
                                   "\"every_host\" cannot be combined with \"concurrency\" (a limited task "
                                   "runs on one host only)");
}

/* Keys shared by tasks.d entries and "commands" entries. */
static const char *const common_task_keys[] = {
        "user",    "group",        "allow",       "timeout_sec", "memory_max",  "cpu_quota",
        "nice",    "max_attempts", "backoff_sec", "concurrency", "environment", "working_directory",
        "sandbox", "credentials",  "on_failure",  "on_lost",     "hosts",       "on",
        NULL,
};
static const char *const task_only_keys[] = {
        "name",
        "exec",
        "max_args",
        "schedule",
        "schedule_args",
        "schedule_randomized_delay_sec",
        "schedule_persistent",
        NULL,
};
static const char *const command_only_keys[] = {"cmd", NULL};

static void task_defaults(JsonReader *rd, TaskDef *t) {
        t->max_attempts = 1;
        t->backoff_sec = json_reader_new_array(rd, 1, sizeof(uint64_t));
        if (t->backoff_sec) {
                t->backoff_sec[0] = BACKOFF_SEC_DEFAULT;
                t->n_backoff = 1;
        }
        t->sandbox = (Sandbox){
                .protect_system = json_reader_strdup(rd, "strict"),
                .protect_home = json_reader_strdup(rd, "true"),
                .private_tmp = true,
                .private_devices = true,
                .private_network = false,
                .no_new_privileges = true,
                .read_write_paths = json_reader_new_array(rd, 0, sizeof(char *)),
        };
        t->source = json_reader_strdup(rd, rd->file);
}

/* "group", or else the primary group of "user" (default "nobody"). */
static void resolve_identity(JsonReader *rd, const cJSON *obj, const char *path, TaskDef *t) {
        const cJSON *ju = json_reader_member(obj, "user"), *jg = json_reader_member(obj, "group");
        JsonKey ku = json_reader_key_member(path, "user"), kg = json_reader_key_member(path, "group");
        _cleanup_(cjson_deletep) cJSON *dflt = NULL;
        gid_t primary = 0;
        bool has_pw = false;

        if (!ju) {
                dflt = cJSON_CreateString(TASK_USER_DEFAULT);
                if (!dflt) {
                        rd->oom = true;
                        return;
                }
                ju = dflt;
        }
        if (!resolve_user(rd, ju, ku.s, &t->uid, &primary, &has_pw, &t->user))
                return;

        if (jg) {
                (void) resolve_group(rd, jg, kg.s, &t->gid, &t->group);
                return;
        }
        if (!has_pw) {
                json_reader_report(rd, ku.s, "user %s has no passwd entry, so \"group\" must be set",
                                   t->user);
                return;
        }
        /* The primary group may have no group entry; then it is known by number only. */
        _cleanup_(cjson_deletep) cJSON *num = cJSON_CreateNumber((double) primary);
        if (!num) {
                rd->oom = true;
                return;
        }
        (void) resolve_group(rd, num, kg.s, &t->gid, &t->group);
}

static void parse_task_common(JsonReader *rd, const cJSON *obj, const char *path, TaskDef *t) {
        const cJSON *j;
        const char *s;
        int64_t v;

        resolve_identity(rd, obj, path, t);

        if ((j = json_reader_member(obj, "working_directory")) &&
            json_reader_get_absolute_path(rd, j, json_reader_key_member(path, "working_directory").s, &s))
                t->working_directory = json_reader_strdup(rd, s);
        if ((j = json_reader_member(obj, "environment")))
                parse_environment(rd, j, json_reader_key_member(path, "environment").s, t);
        else
                t->environment = json_reader_new_array(rd, 0, sizeof(char *));

        json_reader_member_u64(rd, obj, path, "timeout_sec", 0, TIMEOUT_SEC_MAX, &t->timeout_sec);
        /* Whether it names a task that can take an alert is checked once every task is read. */
        if ((j = json_reader_member(obj, "on_failure")) &&
            json_reader_get_string(rd, j, json_reader_key_member(path, "on_failure").s, false, &s))
                t->on_failure = json_reader_strdup(rd, s);
        if ((j = json_reader_member(obj, "memory_max")))
                parse_memory_max(rd, j, json_reader_key_member(path, "memory_max").s, t);
        if ((j = json_reader_member(obj, "cpu_quota")))
                parse_cpu_quota(rd, j, json_reader_key_member(path, "cpu_quota").s, t);
        if ((j = json_reader_member(obj, "nice")) &&
            json_reader_get_integer(rd, j, json_reader_key_member(path, "nice").s, NICE_MIN, NICE_MAX, &v)) {
                t->nice = (int) v;
                t->has_nice = true;
        }
        json_reader_member_unsigned(rd, obj, path, "max_attempts", 1, ATTEMPTS_MAX, &t->max_attempts);
        if ((j = json_reader_member(obj, "backoff_sec")))
                parse_backoff(rd, j, json_reader_key_member(path, "backoff_sec").s, t);
        json_reader_member_unsigned(rd, obj, path, "concurrency", 0, RUNNING_MAX, &t->concurrency);
        if ((j = json_reader_member(obj, "allow")))
                config_task_parse_allow(rd, j, json_reader_key_member(path, "allow").s, true, &t->allow);
        if ((j = json_reader_member(obj, "sandbox")))
                parse_sandbox(rd, j, json_reader_key_member(path, "sandbox").s, &t->sandbox);
        if ((j = json_reader_member(obj, "credentials")))
                parse_credentials(rd, j, json_reader_key_member(path, "credentials").s, t);
        parse_cluster_keys(rd, obj, path, t);
}

static bool task_name_valid(const char *s) {
        size_t n = strlen(s);
        return n >= 1 && n <= TASK_NAME_BYTES_MAX &&
               strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static void parse_task_name(JsonReader *rd, const cJSON *obj, TaskDef *t) {
        const cJSON *j = json_reader_member(obj, "name");
        const char *s;

        if (!j)
                json_reader_report(rd, "name", "is required");
        else if (!json_reader_get_string(rd, j, "name", true, &s))
                return;
        else if (!task_name_valid(s))
                json_reader_report(rd, "name",
                                   "'%s' is not a valid task name (1 to %d of A-Z a-z 0-9 _ . -)", s,
                                   TASK_NAME_BYTES_MAX);
        else
                t->name = json_reader_strdup(rd, s);
}

/* "exec": the program, an absolute path, and its fixed arguments. */
static void parse_exec(JsonReader *rd, const cJSON *obj, TaskDef *t) {
        const cJSON *j = json_reader_member(obj, "exec"), *item;
        size_t n, i = 0;

        if (!j) {
                json_reader_report(rd, "exec", "is required");
                return;
        }
        if (!json_reader_expect_array(rd, j, "exec"))
                return;
        n = (size_t) cJSON_GetArraySize(j);
        if (n == 0)
                json_reader_report(rd, "exec", "must not be empty");
        else if (n > TASK_ARGS_MAX)
                json_reader_report(rd, "exec", "has %zu entries, at most %d are allowed", n, TASK_ARGS_MAX);
        else if ((t->exec = json_reader_new_array(rd, n, sizeof(char *))))
                cJSON_ArrayForEach (item, j) {
                        JsonKey k = json_reader_key_index("exec", i);
                        const char *s;
                        bool ok = i == 0 ? json_reader_get_absolute_path(rd, item, k.s, &s)
                                         : json_reader_get_string(rd, item, k.s, true, &s);
                        if (ok && (t->exec[t->n_exec] = json_reader_strdup(rd, s)))
                                t->n_exec++;
                        i++;
                }
}

void config_task_parse(JsonReader *rd, const cJSON *obj, TaskDef *t) {
        task_defaults(rd, t);
        json_reader_check_members(rd, obj, "", common_task_keys, task_only_keys);
        parse_task_name(rd, obj, t);
        parse_exec(rd, obj, t);
        json_reader_member_unsigned(rd, obj, "", "max_args", 0, TASK_ARGS_MAX, &t->max_args);
        config_schedule_parse(rd, obj, t->max_args, &t->schedule);
        parse_task_common(rd, obj, "", t);
        check_schedule_allowed(rd, t);
}

void config_task_parse_schedule_only(JsonReader *rd, const cJSON *obj, TaskDef *t) {
        t->source = json_reader_strdup(rd, rd->file);
        parse_task_name(rd, obj, t);
        json_reader_member_unsigned(rd, obj, "", "max_args", 0, TASK_ARGS_MAX, &t->max_args);
        config_schedule_parse(rd, obj, t->max_args, &t->schedule);
}

void config_task_parse_command(JsonReader *rd, const cJSON *obj, const char *path, TaskDef *t) {
        const cJSON *j;
        const char *s;

        task_defaults(rd, t);
        t->is_command = true;
        if (!json_reader_expect_object(rd, obj, path))
                return;
        json_reader_check_members(rd, obj, path, common_task_keys, command_only_keys);

        j = json_reader_member(obj, "cmd");
        JsonKey k = json_reader_key_member(path, "cmd");
        if (!j)
                json_reader_report(rd, k.s, "is required");
        else if (json_reader_get_string(rd, j, k.s, false, &s)) {
                t->name = json_reader_strdup(rd, s);
                t->exec = json_reader_new_array(rd, 3, sizeof(char *));
                if (t->exec) {
                        t->exec[0] = json_reader_strdup(rd, "/bin/sh");
                        t->exec[1] = json_reader_strdup(rd, "-c");
                        t->exec[2] = json_reader_strdup(rd, s);
                        t->n_exec = 3;
                }
        }
        parse_task_common(rd, obj, path, t);
}

void config_task_done(TaskDef *t) {
        free(t->name);
        strv_free_n(t->exec, t->n_exec);
        free(t->on_failure);
        strv_free_n(t->hosts, t->n_hosts);
        free(t->user);
        free(t->group);
        free(t->working_directory);
        strv_free_n(t->environment, t->n_environment);
        for (size_t i = 0; i < t->n_credentials; i++) {
                free(t->credentials[i].name);
                free(t->credentials[i].path);
        }
        free(t->credentials);
        free(t->backoff_sec);
        allow_done(&t->allow);
        free(t->sandbox.protect_system);
        free(t->sandbox.protect_home);
        strv_free_n(t->sandbox.read_write_paths, t->sandbox.n_read_write_paths);
        config_schedule_done(&t->schedule);
        free(t->source);
}

TaskDef *config_task_free(TaskDef *t) {
        if (!t)
                return NULL;
        config_task_done(t);
        free(t);
        return NULL;
}

uint64_t config_task_backoff_sec(const TaskDef *t, unsigned failed_attempts) {
        if (!t || t->n_backoff == 0 || failed_attempts == 0)
                return 0;
        size_t i = failed_attempts - 1;
        if (i >= t->n_backoff)
                i = t->n_backoff - 1;
        return t->backoff_sec[i];
}
