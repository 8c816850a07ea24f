/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/limits.h> /* PATH_MAX; <limits.h> is shadowed by src/limits.h under -Isrc */
#include <pwd.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cjson/cJSON.h>

#include "shared/config.h"
#include "shared/limits.h"
#include "shared/nss.h"
#include "shared/util.h"
#include "shared/json-util.h"

#define TASK_USER_DEFAULT      "nobody"
#define STORE_GROUP_DEFAULT    "asynctask"
#define RETENTION_DAYS_DEFAULT 7
#define MAX_RUNNING_DEFAULT    16
#define CONNECTIONS_DEFAULT    1024
#define BACKOFF_SEC_DEFAULT    10
#define NICE_MIN               (-20)
#define NICE_MAX               19
#define ID_MAX                 4294967294U /* (uid_t) -1 means "no change" to the kernel */

/* One load: where to report, and what went wrong so far. */
typedef struct Ctx {
        ConfigErrorFn on_error;
        void *userdata;
        const char *file; /* the file being read now */
        unsigned n_errors;
        int io_error; /* first -errno from reading a file, if any */
        bool oom;
} Ctx;

/* A JSON path such as "commands[2].allow.networks[0]"; long paths are cut, which only shortens
 * a message. */
typedef struct Key {
        char s[256];
} Key;

/* Marks a cut path with "..." so a reader knows it is incomplete. */
static Key key_cut(Key k, int written) {
        if (written >= (int) sizeof(k.s))
                memcpy(k.s + sizeof(k.s) - 4, "...", 4);
        return k;
}

static Key key_member(const char *parent, const char *name) {
        Key k;
        if (parent[0])
                return key_cut(k, snprintf(k.s, sizeof(k.s), "%s.%s", parent, name));
        return key_cut(k, snprintf(k.s, sizeof(k.s), "%s", name));
}

static Key key_index(const char *parent, size_t i) {
        Key k;
        return key_cut(k, snprintf(k.s, sizeof(k.s), "%s[%zu]", parent, i));
}

_printf_(3, 4) static void report(Ctx *ctx, const char *key, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        ctx->n_errors++;
        if (!ctx->on_error || ctx->n_errors > CONFIG_ERRORS_MAX + 1)
                return;
        if (ctx->n_errors == CONFIG_ERRORS_MAX + 1) {
                ctx->on_error(ctx->file, "", "too many errors, not reporting more", ctx->userdata);
                return;
        }
        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        ctx->on_error(ctx->file, key, msg, ctx->userdata);
}

static char *dup_str(Ctx *ctx, const char *s) {
        char *p = strdup(s);
        if (!p)
                ctx->oom = true;
        return p;
}

static void *alloc_array(Ctx *ctx, size_t n, size_t size) {
        void *p = calloc(n + 1, size); /* + 1: room for a NULL terminator, and never calloc(0) */
        if (!p)
                ctx->oom = true;
        return p;
}

static const char *json_type_name(const cJSON *j) {
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

static const cJSON *member(const cJSON *obj, const char *name) {
        return cJSON_GetObjectItemCaseSensitive(obj, name);
}

static bool str_in(const char *s, const char *const *list) {
        for (; list && *list; list++)
                if (streq(s, *list))
                        return true;
        return false;
}

static int cmp_member_names(const void *a, const void *b) {
        return strcmp((*(const cJSON *const *) a)->string, (*(const cJSON *const *) b)->string);
}

/* Reports keys not in either allowed list (NULL: any key is allowed) and keys given twice, which cJSON
 * would otherwise silently resolve to the first. */
static void check_members(Ctx *ctx, const cJSON *obj, const char *path, const char *const *allowed,
                          const char *const *allowed_too) {
        size_t n = (size_t) cJSON_GetArraySize(obj), i = 0;
        const cJSON *item;

        if (allowed || allowed_too)
                cJSON_ArrayForEach (item, obj) {
                        if (!str_in(item->string, allowed) && !str_in(item->string, allowed_too))
                                report(ctx, key_member(path, item->string).s, "unknown key");
                }

        if (n < 2)
                return;
        _cleanup_free_ const cJSON **sorted = calloc(n, sizeof(cJSON *));
        if (!sorted) {
                ctx->oom = true;
                return;
        }
        cJSON_ArrayForEach (item, obj)
                sorted[i++] = item;
        qsort(sorted, n, sizeof(cJSON *), cmp_member_names);
        for (i = 1; i < n; i++)
                if (streq(sorted[i]->string, sorted[i - 1]->string) &&
                    (i + 1 == n || !streq(sorted[i + 1]->string, sorted[i]->string)))
                        report(ctx, key_member(path, sorted[i]->string).s, "key is given more than once");
}

static bool expect_object(Ctx *ctx, const cJSON *j, const char *key) {
        if (cJSON_IsObject(j))
                return true;
        report(ctx, key, "expected an object, got %s", json_type_name(j));
        return false;
}

static bool expect_array(Ctx *ctx, const cJSON *j, const char *key) {
        if (cJSON_IsArray(j))
                return true;
        report(ctx, key, "expected an array, got %s", json_type_name(j));
        return false;
}

static bool get_string(Ctx *ctx, const cJSON *j, const char *key, bool allow_empty, const char **ret) {
        if (!cJSON_IsString(j) || !j->valuestring) {
                report(ctx, key, "expected a string, got %s", json_type_name(j));
                return false;
        }
        if (!allow_empty && j->valuestring[0] == '\0') {
                report(ctx, key, "must not be empty");
                return false;
        }
        *ret = j->valuestring;
        return true;
}

static bool get_bool(Ctx *ctx, const cJSON *j, const char *key, bool *ret) {
        if (!cJSON_IsBool(j)) {
                report(ctx, key, "expected true or false, got %s", json_type_name(j));
                return false;
        }
        *ret = cJSON_IsTrue(j);
        return true;
}

static bool get_integer(Ctx *ctx, const cJSON *j, const char *key, int64_t min, int64_t max, int64_t *ret) {
        if (!cJSON_IsNumber(j)) {
                report(ctx, key, "expected an integer, got %s", json_type_name(j));
                return false;
        }
        double d = j->valuedouble;
        if (!(d >= (double) min && d <= (double) max)) {
                report(ctx, key, "must be between %lld and %lld", (long long) min, (long long) max);
                return false;
        }
        if (d != (double) (int64_t) d) {
                report(ctx, key, "expected an integer, got %g", d);
                return false;
        }
        *ret = (int64_t) d;
        return true;
}

static void get_unsigned(Ctx *ctx, const cJSON *obj, const char *path, const char *name, uint64_t min,
                         uint64_t max, unsigned *ret) {
        const cJSON *j = member(obj, name);
        int64_t v;
        if (j && get_integer(ctx, j, key_member(path, name).s, (int64_t) min, (int64_t) max, &v))
                *ret = (unsigned) v;
}

static void get_u64(Ctx *ctx, const cJSON *obj, const char *path, const char *name, uint64_t min,
                    uint64_t max, uint64_t *ret) {
        const cJSON *j = member(obj, name);
        int64_t v;
        if (j && get_integer(ctx, j, key_member(path, name).s, (int64_t) min, (int64_t) max, &v))
                *ret = (uint64_t) v;
}

static bool get_absolute_path(Ctx *ctx, const cJSON *j, const char *key, const char **ret) {
        const char *s;

        if (!get_string(ctx, j, key, false, &s))
                return false;
        if (s[0] != '/') {
                report(ctx, key, "'%s' is not an absolute path", s);
                return false;
        }
        if (strlen(s) >= PATH_MAX) {
                report(ctx, key, "path is longer than %d bytes", PATH_MAX - 1);
                return false;
        }
        *ret = s;
        return true;
}

int parse_size(const char *s, uint64_t *ret) {
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

uint64_t task_backoff_sec(const TaskDef *t, unsigned failed_attempts) {
        if (!t || t->n_backoff == 0 || failed_attempts == 0)
                return 0;
        size_t i = failed_attempts - 1;
        if (i >= t->n_backoff)
                i = t->n_backoff - 1;
        return t->backoff_sec[i];
}

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

/* A user (or a group) given as a name, a numeric string or a JSON integer. A numeric id need not have
 * an entry (then *ret_found is false, the name is the number and a user's primary group is 0). */
static bool resolve_entry(Ctx *ctx, const cJSON *j, const char *key, bool group, uint32_t *ret_id,
                          gid_t *ret_gid, bool *ret_found, char **ret_name) {
        const char *what = group ? "group" : "user";
        _cleanup_free_ char *name = NULL;
        char numbuf[16];
        const char *s;
        uint32_t id = 0;
        gid_t gid = 0;
        bool numeric = false;
        int r;

        if (cJSON_IsNumber(j)) {
                int64_t v;
                if (!get_integer(ctx, j, key, 0, ID_MAX, &v))
                        return false;
                (void) snprintf(numbuf, sizeof(numbuf), "%u", (unsigned) v);
                s = numbuf;
        } else if (!get_string(ctx, j, key, false, &s))
                return false;

        if (parse_id(s, &id)) {
                uint32_t found;

                numeric = true;
                r = get_entry(group, NULL, id, &name, &found, &gid);
        } else
                r = get_entry(group, s, 0, &name, &id, &gid);

        if (r == -ENOMEM) {
                ctx->oom = true;
                return false;
        }
        if (r < 0 && !numeric) {
                if (r == -ESRCH)
                        report(ctx, key, "no such %s '%s'", what, s);
                else
                        report(ctx, key, "cannot look up %s '%s': %s", what, s, strerror(-r));
                return false;
        }
        if (r < 0) {
                name = strdup(s);
                if (!name) {
                        ctx->oom = true;
                        return false;
                }
        }

        *ret_id = id;
        if (ret_gid)
                *ret_gid = gid;
        if (ret_found)
                *ret_found = r >= 0;
        if (ret_name)
                *ret_name = TAKE_PTR(name);
        return true;
}

static bool resolve_user(Ctx *ctx, const cJSON *j, const char *key, uid_t *ret_uid, gid_t *ret_gid,
                         bool *ret_has_pw, char **ret_name) {
        uint32_t uid;

        if (!resolve_entry(ctx, j, key, false, &uid, ret_gid, ret_has_pw, ret_name))
                return false;
        *ret_uid = (uid_t) uid;
        return true;
}

static bool resolve_group(Ctx *ctx, const cJSON *j, const char *key, gid_t *ret_gid, char **ret_name) {
        uint32_t gid;

        if (!resolve_entry(ctx, j, key, true, &gid, NULL, NULL, ret_name))
                return false;
        *ret_gid = (gid_t) gid;
        return true;
}

static const char *const allow_keys[] = {"users", "groups", "networks", NULL};
static const char *const admins_keys[] = {"users", "groups", NULL};

/* "allow" of a task or command, or "admins" (with_networks false: TCP peers are never admins). */
static void parse_allow(Ctx *ctx, const cJSON *obj, const char *path, bool with_networks, Allow *ret) {
        const cJSON *j, *item;
        size_t i;

        allow_done(ret);
        ret->present = true;
        if (!expect_object(ctx, obj, path))
                return;
        check_members(ctx, obj, path, with_networks ? allow_keys : admins_keys, NULL);

        j = member(obj, "users");
        if (j && expect_array(ctx, j, key_member(path, "users").s)) {
                Key k = key_member(path, "users");
                ret->uids = alloc_array(ctx, (size_t) cJSON_GetArraySize(j), sizeof(uid_t));
                i = 0;
                cJSON_ArrayForEach (item, j) {
                        uid_t uid;
                        if (ret->uids &&
                            resolve_user(ctx, item, key_index(k.s, i).s, &uid, NULL, NULL, NULL))
                                ret->uids[ret->n_uids++] = uid;
                        i++;
                }
        }

        j = member(obj, "groups");
        if (j && expect_array(ctx, j, key_member(path, "groups").s)) {
                Key k = key_member(path, "groups");
                ret->gids = alloc_array(ctx, (size_t) cJSON_GetArraySize(j), sizeof(gid_t));
                i = 0;
                cJSON_ArrayForEach (item, j) {
                        gid_t gid;
                        if (ret->gids && resolve_group(ctx, item, key_index(k.s, i).s, &gid, NULL))
                                ret->gids[ret->n_gids++] = gid;
                        i++;
                }
        }

        j = with_networks ? member(obj, "networks") : NULL;
        if (j && expect_array(ctx, j, key_member(path, "networks").s)) {
                Key k = key_member(path, "networks");
                ret->networks = alloc_array(ctx, (size_t) cJSON_GetArraySize(j), sizeof(Network));
                i = 0;
                cJSON_ArrayForEach (item, j) {
                        Key ki = key_index(k.s, i++);
                        const char *s;
                        Network net;

                        if (!get_string(ctx, item, ki.s, false, &s))
                                continue;
                        if (network_parse(s, &net) < 0) {
                                report(ctx, ki.s,
                                       "invalid network '%s': expected ADDRESS or ADDRESS/PREFIX with no "
                                       "address bits set past the prefix",
                                       s);
                                continue;
                        }
                        if (ret->networks)
                                ret->networks[ret->n_networks++] = net;
                }
        }
}

static const char *const sandbox_keys[] = {
        "protect_system",  "protect_home",      "private_tmp",      "private_devices",
        "private_network", "no_new_privileges", "read_write_paths", NULL,
};
static const char *const protect_system_values[] = {"strict", "full", "true", "false", NULL};
static const char *const protect_home_values[] = {"true", "read-only", "tmpfs", "false", NULL};

/* A systemd tri-state such as ProtectSystem=: one of `values`, or a JSON boolean for "true"/"false". */
static void get_protect(Ctx *ctx, const cJSON *obj, const char *path, const char *name,
                        const char *const *values, char **ret) {
        const cJSON *j = member(obj, name);
        Key k = key_member(path, name);
        const char *s;

        if (!j)
                return;
        if (cJSON_IsBool(j))
                s = cJSON_IsTrue(j) ? "true" : "false";
        else if (!get_string(ctx, j, k.s, false, &s))
                return;
        else if (!str_in(s, values)) {
                char list[128] = "";
                for (const char *const *v = values; *v; v++) {
                        size_t len = strlen(list);
                        (void) snprintf(list + len, sizeof(list) - len, "%s\"%s\"", len ? ", " : "", *v);
                }
                report(ctx, k.s, "'%s' is not one of %s", s, list);
                return;
        }
        free(*ret);
        *ret = dup_str(ctx, s);
}

static void parse_sandbox(Ctx *ctx, const cJSON *obj, const char *path, Sandbox *sb) {
        const cJSON *j, *item;

        if (!expect_object(ctx, obj, path))
                return;
        check_members(ctx, obj, path, sandbox_keys, NULL);

        get_protect(ctx, obj, path, "protect_system", protect_system_values, &sb->protect_system);
        get_protect(ctx, obj, path, "protect_home", protect_home_values, &sb->protect_home);
        if ((j = member(obj, "private_tmp")))
                (void) get_bool(ctx, j, key_member(path, "private_tmp").s, &sb->private_tmp);
        if ((j = member(obj, "private_devices")))
                (void) get_bool(ctx, j, key_member(path, "private_devices").s, &sb->private_devices);
        if ((j = member(obj, "private_network")))
                (void) get_bool(ctx, j, key_member(path, "private_network").s, &sb->private_network);
        if ((j = member(obj, "no_new_privileges")))
                (void) get_bool(ctx, j, key_member(path, "no_new_privileges").s, &sb->no_new_privileges);

        j = member(obj, "read_write_paths");
        Key k = key_member(path, "read_write_paths");
        if (j && expect_array(ctx, j, k.s)) {
                char **paths = alloc_array(ctx, (size_t) cJSON_GetArraySize(j), sizeof(char *));
                size_t i = 0, n = 0;

                if (!paths)
                        return;
                cJSON_ArrayForEach (item, j) {
                        const char *s;
                        if (get_absolute_path(ctx, item, key_index(k.s, i).s, &s) &&
                            (paths[n] = dup_str(ctx, s)))
                                n++;
                        i++;
                }
                for (i = 0; i < sb->n_read_write_paths; i++)
                        free(sb->read_write_paths[i]);
                free(sb->read_write_paths);
                sb->read_write_paths = paths;
                sb->n_read_write_paths = n;
        }
}

static bool env_name_valid(const char *s) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
                return false;
        for (s++; *s; s++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
                      *s == '_'))
                        return false;
        return true;
}

static void parse_environment(Ctx *ctx, const cJSON *obj, const char *path, TaskDef *t) {
        const cJSON *item;
        size_t n;

        if (!expect_object(ctx, obj, path))
                return;
        n = (size_t) cJSON_GetArraySize(obj);
        if (n > ENVIRONMENT_MAX) {
                report(ctx, path, "has %zu variables, at most %d are allowed", n, ENVIRONMENT_MAX);
                return;
        }
        check_members(ctx, obj, path, NULL, NULL);
        t->environment = alloc_array(ctx, n, sizeof(char *));
        if (!t->environment)
                return;
        cJSON_ArrayForEach (item, obj) {
                Key k = key_member(path, item->string);
                const char *value;
                char *entry;

                if (!env_name_valid(item->string)) {
                        report(ctx, k.s, "'%s' is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)",
                               item->string);
                        continue;
                }
                if (!get_string(ctx, item, k.s, true, &value))
                        continue;
                if (asprintf(&entry, "%s=%s", item->string, value) < 0) {
                        ctx->oom = true;
                        return;
                }
                t->environment[t->n_environment++] = entry;
        }
}

static void parse_backoff(Ctx *ctx, const cJSON *j, const char *path, TaskDef *t) {
        const cJSON *item;
        size_t n, i = 0;

        if (!expect_array(ctx, j, path))
                return;
        n = (size_t) cJSON_GetArraySize(j);
        if (n > BACKOFF_STEPS_MAX) {
                report(ctx, path, "has %zu entries, at most %d are allowed", n, BACKOFF_STEPS_MAX);
                return;
        }
        uint64_t *v = alloc_array(ctx, n, sizeof(uint64_t));
        if (!v)
                return;
        free(t->backoff_sec);
        t->backoff_sec = v;
        t->n_backoff = 0;
        cJSON_ArrayForEach (item, j) {
                int64_t x;
                if (get_integer(ctx, item, key_index(path, i).s, 0, BACKOFF_SEC_MAX, &x))
                        t->backoff_sec[t->n_backoff++] = (uint64_t) x;
                i++;
        }
}

static void parse_cpu_quota(Ctx *ctx, const cJSON *j, const char *key, TaskDef *t) {
        const char *s;
        size_t digits;
        unsigned long v;

        if (!get_string(ctx, j, key, false, &s))
                return;
        digits = strspn(s, "0123456789");
        if (digits == 0 || digits > 5 || !streq(s + digits, "%")) {
                report(ctx, key, "'%s' is not a percentage such as \"50%%\"", s);
                return;
        }
        v = strtoul(s, NULL, 10);
        if (v < 1 || v > CPU_QUOTA_MAX) {
                report(ctx, key, "must be between 1%% and %d%%", CPU_QUOTA_MAX);
                return;
        }
        t->cpu_quota = (unsigned) v;
}

static void parse_memory_max(Ctx *ctx, const cJSON *j, const char *key, TaskDef *t) {
        const char *s;
        uint64_t v;
        int64_t n;

        if (cJSON_IsNumber(j)) {
                if (get_integer(ctx, j, key, 0, INT64_MAX, &n))
                        t->memory_max = (uint64_t) n;
                return;
        }
        if (!get_string(ctx, j, key, false, &s))
                return;
        int r = parse_size(s, &v);
        if (r == -ERANGE)
                report(ctx, key, "'%s' is too large", s);
        else if (r < 0)
                report(ctx, key, "'%s' is not a size such as \"512M\" (K, M, G, T or plain bytes)", s);
        else
                t->memory_max = v;
}

/* Keys shared by tasks.d entries and "commands" entries. */
static const char *const common_task_keys[] = {
        "user",    "group",        "allow",       "timeout_sec", "memory_max",  "cpu_quota",
        "nice",    "max_attempts", "backoff_sec", "concurrency", "environment", "working_directory",
        "sandbox", NULL,
};
static const char *const task_only_keys[] = {"name", "exec", "max_args", NULL};
static const char *const command_only_keys[] = {"cmd", NULL};

static void task_defaults(Ctx *ctx, TaskDef *t) {
        t->max_attempts = 1;
        t->backoff_sec = alloc_array(ctx, 1, sizeof(uint64_t));
        if (t->backoff_sec) {
                t->backoff_sec[0] = BACKOFF_SEC_DEFAULT;
                t->n_backoff = 1;
        }
        t->sandbox = (Sandbox){
                .protect_system = dup_str(ctx, "strict"),
                .protect_home = dup_str(ctx, "true"),
                .private_tmp = true,
                .private_devices = true,
                .private_network = false,
                .no_new_privileges = true,
                .read_write_paths = alloc_array(ctx, 0, sizeof(char *)),
        };
        t->source = dup_str(ctx, ctx->file);
}

static void resolve_identity(Ctx *ctx, const cJSON *obj, const char *path, TaskDef *t) {
        const cJSON *ju = member(obj, "user"), *jg = member(obj, "group");
        Key ku = key_member(path, "user"), kg = key_member(path, "group");
        _cleanup_(cjson_deletep) cJSON *dflt = NULL;
        gid_t primary = 0;
        bool has_pw = false;

        if (!ju) {
                dflt = cJSON_CreateString(TASK_USER_DEFAULT);
                if (!dflt) {
                        ctx->oom = true;
                        return;
                }
                ju = dflt;
        }
        if (!resolve_user(ctx, ju, ku.s, &t->uid, &primary, &has_pw, &t->user))
                return;

        if (jg) {
                (void) resolve_group(ctx, jg, kg.s, &t->gid, &t->group);
                return;
        }
        if (!has_pw) {
                report(ctx, ku.s, "user %s has no passwd entry, so \"group\" must be set", t->user);
                return;
        }
        /* The primary group may have no group entry; then it is known by number only. */
        _cleanup_(cjson_deletep) cJSON *num = cJSON_CreateNumber((double) primary);
        if (!num) {
                ctx->oom = true;
                return;
        }
        (void) resolve_group(ctx, num, kg.s, &t->gid, &t->group);
}

static void parse_task_common(Ctx *ctx, const cJSON *obj, const char *path, TaskDef *t) {
        const cJSON *j;
        const char *s;
        int64_t v;

        resolve_identity(ctx, obj, path, t);

        if ((j = member(obj, "working_directory")) &&
            get_absolute_path(ctx, j, key_member(path, "working_directory").s, &s))
                t->working_directory = dup_str(ctx, s);
        if ((j = member(obj, "environment")))
                parse_environment(ctx, j, key_member(path, "environment").s, t);
        else
                t->environment = alloc_array(ctx, 0, sizeof(char *));

        get_u64(ctx, obj, path, "timeout_sec", 0, TIMEOUT_SEC_MAX, &t->timeout_sec);
        if ((j = member(obj, "memory_max")))
                parse_memory_max(ctx, j, key_member(path, "memory_max").s, t);
        if ((j = member(obj, "cpu_quota")))
                parse_cpu_quota(ctx, j, key_member(path, "cpu_quota").s, t);
        if ((j = member(obj, "nice")) &&
            get_integer(ctx, j, key_member(path, "nice").s, NICE_MIN, NICE_MAX, &v)) {
                t->nice = (int) v;
                t->has_nice = true;
        }
        get_unsigned(ctx, obj, path, "max_attempts", 1, ATTEMPTS_MAX, &t->max_attempts);
        if ((j = member(obj, "backoff_sec")))
                parse_backoff(ctx, j, key_member(path, "backoff_sec").s, t);
        get_unsigned(ctx, obj, path, "concurrency", 0, RUNNING_MAX, &t->concurrency);
        if ((j = member(obj, "allow")))
                parse_allow(ctx, j, key_member(path, "allow").s, true, &t->allow);
        if ((j = member(obj, "sandbox")))
                parse_sandbox(ctx, j, key_member(path, "sandbox").s, &t->sandbox);
}

static bool task_name_valid(const char *s) {
        size_t n = strlen(s);
        return n >= 1 && n <= TASK_NAME_BYTES_MAX &&
               strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* One tasks.d file. */
static void parse_task(Ctx *ctx, const cJSON *obj, TaskDef *t) {
        const cJSON *j, *item;
        const char *s;

        task_defaults(ctx, t);
        check_members(ctx, obj, "", common_task_keys, task_only_keys);

        j = member(obj, "name");
        if (!j)
                report(ctx, "name", "is required");
        else if (get_string(ctx, j, "name", true, &s)) {
                if (!task_name_valid(s))
                        report(ctx, "name", "'%s' is not a valid task name (1 to %d of A-Z a-z 0-9 _ . -)",
                               s, TASK_NAME_BYTES_MAX);
                else
                        t->name = dup_str(ctx, s);
        }

        j = member(obj, "exec");
        if (!j)
                report(ctx, "exec", "is required");
        else if (expect_array(ctx, j, "exec")) {
                size_t n = (size_t) cJSON_GetArraySize(j), i = 0;

                if (n == 0)
                        report(ctx, "exec", "must not be empty");
                else if (n > TASK_ARGS_MAX)
                        report(ctx, "exec", "has %zu entries, at most %d are allowed", n, TASK_ARGS_MAX);
                else if ((t->exec = alloc_array(ctx, n, sizeof(char *))))
                        cJSON_ArrayForEach (item, j) {
                                Key k = key_index("exec", i);
                                bool ok = i == 0 ? get_absolute_path(ctx, item, k.s, &s)
                                                 : get_string(ctx, item, k.s, true, &s);
                                if (ok && (t->exec[t->n_exec] = dup_str(ctx, s)))
                                        t->n_exec++;
                                i++;
                        }
        }

        get_unsigned(ctx, obj, "", "max_args", 0, TASK_ARGS_MAX, &t->max_args);
        parse_task_common(ctx, obj, "", t);
}

static void parse_command(Ctx *ctx, const cJSON *obj, const char *path, TaskDef *t) {
        const cJSON *j;
        const char *s;

        task_defaults(ctx, t);
        t->is_command = true;
        if (!expect_object(ctx, obj, path))
                return;
        check_members(ctx, obj, path, common_task_keys, command_only_keys);

        j = member(obj, "cmd");
        Key k = key_member(path, "cmd");
        if (!j)
                report(ctx, k.s, "is required");
        else if (get_string(ctx, j, k.s, false, &s)) {
                t->name = dup_str(ctx, s);
                t->exec = alloc_array(ctx, 3, sizeof(char *));
                if (t->exec) {
                        t->exec[0] = dup_str(ctx, "/bin/sh");
                        t->exec[1] = dup_str(ctx, "-c");
                        t->exec[2] = dup_str(ctx, s);
                        t->n_exec = 3;
                }
        }
        parse_task_common(ctx, obj, path, t);
}

static void task_def_done(TaskDef *t) {
        free(t->name);
        for (size_t i = 0; t->exec && t->exec[i]; i++)
                free(t->exec[i]);
        free(t->exec);
        free(t->user);
        free(t->group);
        free(t->working_directory);
        for (size_t i = 0; i < t->n_environment; i++)
                free(t->environment[i]);
        free(t->environment);
        free(t->backoff_sec);
        allow_done(&t->allow);
        free(t->sandbox.protect_system);
        free(t->sandbox.protect_home);
        for (size_t i = 0; i < t->sandbox.n_read_write_paths; i++)
                free(t->sandbox.read_write_paths[i]);
        free(t->sandbox.read_write_paths);
        free(t->source);
}

static int cmp_task_index(const void *a, const void *b, void *userdata) {
        const TaskDef *defs = userdata;
        size_t x = *(const size_t *) a, y = *(const size_t *) b;
        int r = strcmp(defs[x].name, defs[y].name);
        return r != 0 ? r : (x > y) - (x < y);
}

/* Each name may be defined once: every later definition is reported against the first. Sorting keeps
 * this O(n log n) however long the commands list is. */
static void report_duplicates(Ctx *ctx, const TaskDef *defs, size_t n, bool commands) {
        _cleanup_free_ size_t *order = NULL;
        size_t m = 0;

        if (n < 2)
                return;
        order = calloc(n, sizeof(size_t));
        if (!order) {
                ctx->oom = true;
                return;
        }
        for (size_t i = 0; i < n; i++)
                if (defs[i].name)
                        order[m++] = i;
        qsort_r(order, m, sizeof(size_t), cmp_task_index, (void *) defs);

        for (size_t i = 1, first = 0; i < m; i++) {
                const TaskDef *a = &defs[order[first]], *b = &defs[order[i]];

                if (!streq(a->name, b->name)) {
                        first = i;
                        continue;
                }
                if (commands) {
                        Key k = key_member(key_index("commands", order[i]).s, "cmd");
                        report(ctx, k.s, "the same command is already listed as commands[%zu]",
                               order[first]);
                } else {
                        const char *file = ctx->file;
                        ctx->file = b->source ? b->source : file;
                        report(ctx, "name", "task '%s' is already defined in %s", b->name,
                               a->source ? a->source : "another file");
                        ctx->file = file;
                }
        }
}

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

static void parse_php_classes(Ctx *ctx, const cJSON *obj, Config *c) {
        const cJSON *item;
        size_t n;

        if (!expect_object(ctx, obj, "php_classes"))
                return;
        check_members(ctx, obj, "php_classes", NULL, NULL);
        n = (size_t) cJSON_GetArraySize(obj);
        c->php_classes = alloc_array(ctx, n, sizeof(PhpClass));
        if (!c->php_classes)
                return;
        cJSON_ArrayForEach (item, obj) {
                Key k = key_member("php_classes", item->string);
                const char *task;

                if (!php_class_name_valid(item->string)) {
                        report(ctx, k.s, "'%s' is not a PHP class name", item->string);
                        continue;
                }
                if (!get_string(ctx, item, k.s, false, &task))
                        continue;
                /* PHP class names are case-insensitive, so "Lamb" and "lamb" are the same class. */
                const PhpClass *same = php_class_lookup(c, item->string);
                if (same) {
                        /* An exact repeat was already reported by check_members(). */
                        if (!streq(same->class_name, item->string))
                                report(ctx, k.s,
                                       "class '%s' is already mapped as '%s' (PHP class names are "
                                       "case-insensitive)",
                                       item->string, same->class_name);
                        continue;
                }
                PhpClass *pc = &c->php_classes[c->n_php_classes];
                pc->class_name = dup_str(ctx, item->string);
                pc->task = dup_str(ctx, task);
                if (!pc->class_name || !pc->task) {
                        free(pc->class_name);
                        free(pc->task);
                        *pc = (PhpClass){};
                        return;
                }
                c->n_php_classes++;
        }
}

static const char *const store_keys[] = {"type", "option_file", "group", NULL};

static void parse_store(Ctx *ctx, const cJSON *obj, Config *c) {
        const cJSON *j;
        const char *s;

        if (!expect_object(ctx, obj, "store"))
                return;
        check_members(ctx, obj, "store", store_keys, NULL);

        if ((j = member(obj, "type")) && get_string(ctx, j, "store.type", false, &s)) {
                if (streq(s, "memory"))
                        c->store_type = STORE_MEMORY;
                else if (streq(s, "mysql"))
                        c->store_type = STORE_MYSQL;
                else
                        report(ctx, "store.type", "'%s' is not one of \"memory\", \"mysql\"", s);
        }
        if ((j = member(obj, "option_file")) && get_absolute_path(ctx, j, "store.option_file", &s))
                c->store_option_file = dup_str(ctx, s);
        if ((j = member(obj, "group")) && get_string(ctx, j, "store.group", false, &s))
                c->store_group = dup_str(ctx, s);

        if (c->store_type == STORE_MYSQL && !member(obj, "option_file"))
                report(ctx, "store.option_file", "is required when store.type is \"mysql\"");
}

static const char *const main_keys[] = {
        "store",         "launcher",       "executor", "max_running", "max_frame_bytes", "max_connections",
        "idle_exit_sec", "retention_days", "admins",   "commands",    "php_classes",     NULL,
};

static void parse_main(Ctx *ctx, const cJSON *root, Config *c) {
        const cJSON *j, *item;
        const char *s;

        check_members(ctx, root, "", main_keys, NULL);

        if ((j = member(root, "store")))
                parse_store(ctx, j, c);
        if ((j = member(root, "launcher")) && get_absolute_path(ctx, j, "launcher", &s)) {
                if (strlen(s) >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                        report(ctx, "launcher", "socket path is longer than %zu bytes",
                               sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1);
                else
                        c->launcher_socket = dup_str(ctx, s);
        }
        if ((j = member(root, "executor")) && get_string(ctx, j, "executor", false, &s)) {
                if (streq(s, "auto"))
                        c->executor = EXECUTOR_AUTO;
                else if (streq(s, "systemd"))
                        c->executor = EXECUTOR_SYSTEMD;
                else if (streq(s, "direct"))
                        c->executor = EXECUTOR_DIRECT;
                else
                        report(ctx, "executor", "'%s' is not one of \"auto\", \"systemd\", \"direct\"", s);
        }

        get_unsigned(ctx, root, "", "max_running", 1, RUNNING_MAX, &c->max_running);
        uint64_t frame = c->max_frame_bytes;
        get_u64(ctx, root, "", "max_frame_bytes", 1024, FRAME_BYTES_MAX, &frame);
        c->max_frame_bytes = (size_t) frame;
        get_unsigned(ctx, root, "", "max_connections", 1, CONNECTIONS_MAX, &c->max_connections);
        get_u64(ctx, root, "", "idle_exit_sec", 0, IDLE_EXIT_SEC_MAX, &c->idle_exit_sec);
        get_unsigned(ctx, root, "", "retention_days", 1, RETENTION_DAYS_MAX, &c->retention_days);

        if ((j = member(root, "admins")))
                parse_allow(ctx, j, "admins", false, &c->admins);

        if ((j = member(root, "commands")) && expect_array(ctx, j, "commands")) {
                size_t n = (size_t) cJSON_GetArraySize(j), i = 0;

                c->commands = alloc_array(ctx, n, sizeof(TaskDef));
                if (c->commands)
                        cJSON_ArrayForEach (item, j) {
                                Key k = key_index("commands", i++);
                                TaskDef *t = &c->commands[c->n_commands++];

                                parse_command(ctx, item, k.s, t);
                        }
                if (c->commands)
                        report_duplicates(ctx, c->commands, c->n_commands, true);
        }

        if ((j = member(root, "php_classes")))
                parse_php_classes(ctx, j, c);
}

/* Reads a whole config file, refusing anything but a regular file of at most CONFIG_FILE_BYTES_MAX. */
static int read_config_file(const char *path, char **ret, size_t *ret_size) {
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
        return 0;
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
static void check_json_text(Ctx *ctx, const char *buf, size_t len) {
        bool in_string = false;
        unsigned line = 1, col = 0; /* of buf[i], tracked as we go: the file may be large */

        for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char) buf[i];

                col++;
                if (ch == '\0') {
                        report(ctx, "", "NUL byte at line %u, column %u", line, col);
                        return;
                }
                if (ch == '\n' && in_string) {
                        report(ctx, "", "line break in a string at line %u, column %u", line, col);
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
                        report(ctx, "", "control character 0x%02x in a string at line %u, column %u", ch,
                               line, col);
                else if (ch == '\\' && i + 1 < len) {
                        if (buf[i + 1] == 'u' && hex4_is_zero(buf + i + 2, len - i - 2))
                                report(ctx, "", "\\u0000 (NUL) in a string at line %u, column %u", line,
                                       col);
                        if (buf[i + 1] != '\n') {
                                i++;
                                col++;
                        }
                }
        }
}

/* Reads and parses one file into a JSON object; every problem is reported. */
static cJSON *load_json(Ctx *ctx, const char *path) {
        _cleanup_free_ char *buf = NULL;
        const char *end = NULL;
        size_t size = 0;
        unsigned line, col;
        int r;

        r = read_config_file(path, &buf, &size);
        if (r == -ENOMEM) {
                ctx->oom = true;
                return NULL;
        }
        if (r < 0) {
                if (r == -EFBIG)
                        report(ctx, "", "file is larger than %d bytes", CONFIG_FILE_BYTES_MAX);
                else if (r == -EBADFD)
                        report(ctx, "", "not a regular file");
                else
                        report(ctx, "", "cannot read: %s", strerror(-r));
                if (!ctx->io_error && r != -EFBIG)
                        ctx->io_error = r;
                return NULL;
        }

        if (size == strspn(buf, " \t\r\n")) {
                report(ctx, "", "file is empty (expected a JSON object)");
                return NULL;
        }
        check_json_text(ctx, buf, size);

        cJSON *root = cJSON_ParseWithLengthOpts(buf, size, &end, false);
        if (!root) {
                size_t off = end && end >= buf && end <= buf + size ? (size_t) (end - buf) : size;
                line = line_of(buf, off, &col);
                report(ctx, "", "invalid JSON at line %u, column %u", line, col);
                return NULL;
        }
        size_t rest = (size_t) (end - buf);
        rest += strspn(end, " \t\r\n");
        if (rest < size) {
                line = line_of(buf, rest, &col);
                report(ctx, "", "unexpected text after the JSON value at line %u, column %u", line, col);
                cJSON_Delete(root);
                return NULL;
        }
        if (!cJSON_IsObject(root)) {
                report(ctx, "", "expected a JSON object, got %s", json_type_name(root));
                cJSON_Delete(root);
                return NULL;
        }
        return root;
}

static int cmp_strings(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool is_task_file_name(const char *name) {
        size_t n = strlen(name);
        /* Hidden files (editor and package-manager leftovers) are skipped like non-.json ones. */
        return name[0] != '.' && n > 5 && streq(name + n - 5, ".json");
}

static void free_strv(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* The *.json names in dir, sorted bytewise; a missing dir is an empty list. */
static int list_task_files(const char *dir, char ***ret, size_t *ret_n) {
        DIR *d;
        struct dirent *de;
        char **names = NULL;
        size_t n = 0, cap = 0;
        int r = 0;

        d = opendir(dir);
        if (!d) {
                if (errno == ENOENT) {
                        *ret = NULL;
                        *ret_n = 0;
                        return 0;
                }
                return -errno;
        }
        for (;;) {
                errno = 0;
                de = readdir(d);
                if (!de) {
                        r = -errno;
                        break;
                }
                if (!is_task_file_name(de->d_name))
                        continue;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        char **p = realloc(names, ncap * sizeof(char *));
                        if (!p) {
                                r = -ENOMEM;
                                break;
                        }
                        names = p;
                        cap = ncap;
                }
                if (!(names[n] = strdup(de->d_name))) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        if (r < 0) {
                free_strv(names, n);
                return r;
        }
        if (n > 1)
                qsort(names, n, sizeof(char *), cmp_strings);
        *ret = names;
        *ret_n = n;
        return 0;
}

static void load_tasks(Ctx *ctx, Config *c) {
        char **names = NULL;
        size_t n = 0, cap = 0;
        int r;

        ctx->file = c->tasks_dir;
        r = list_task_files(c->tasks_dir, &names, &n);
        if (r == -ENOMEM) {
                ctx->oom = true;
                return;
        }
        if (r < 0) {
                report(ctx, "", "cannot read directory: %s", strerror(-r));
                if (!ctx->io_error)
                        ctx->io_error = r;
                return;
        }

        for (size_t i = 0; i < n && !ctx->oom; i++) {
                _cleanup_free_ char *path = NULL;
                _cleanup_(cjson_deletep) cJSON *root = NULL;

                if (asprintf(&path, "%s/%s", c->tasks_dir, names[i]) < 0) {
                        path = NULL;
                        ctx->oom = true;
                        break;
                }
                ctx->file = path;
                root = load_json(ctx, path);
                if (!root)
                        continue;

                if (c->n_tasks == cap) {
                        size_t ncap = cap ? cap * 2 : 8;
                        TaskDef *p = realloc(c->tasks, ncap * sizeof(TaskDef));
                        if (!p) {
                                ctx->oom = true;
                                break;
                        }
                        c->tasks = p;
                        cap = ncap;
                }
                TaskDef *t = &c->tasks[c->n_tasks++];
                *t = (TaskDef){};
                parse_task(ctx, root, t);
        }
        free_strv(names, n);
        if (!ctx->oom)
                report_duplicates(ctx, c->tasks, c->n_tasks, false);
}

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
        allow_done(&c->admins);
        for (size_t i = 0; i < c->n_tasks; i++)
                task_def_done(&c->tasks[i]);
        free(c->tasks);
        for (size_t i = 0; i < c->n_commands; i++)
                task_def_done(&c->commands[i]);
        free(c->commands);
        for (size_t i = 0; i < c->n_php_classes; i++) {
                free(c->php_classes[i].class_name);
                free(c->php_classes[i].task);
        }
        free(c->php_classes);
        free(c);
        return NULL;
}

static void config_freep(Config **c) {
        config_free(*c);
}

int config_load(const char *path, ConfigErrorFn on_error, void *userdata, Config **ret) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(cjson_deletep) cJSON *root = NULL;
        Ctx ctx = {.on_error = on_error, .userdata = userdata, .file = path};

        if (!path || !ret)
                return -EINVAL;

        c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;
        *c = (Config){
                .store_type = STORE_MEMORY,
                .retention_days = RETENTION_DAYS_DEFAULT,
                .executor = EXECUTOR_AUTO,
                .max_running = MAX_RUNNING_DEFAULT,
                .max_frame_bytes = FRAME_BYTES_DEFAULT,
                .max_connections = CONNECTIONS_DEFAULT,
                .idle_exit_sec = 0,
        };
        c->path = strdup(path);
        c->tasks_dir = tasks_dir_of(path);
        if (!c->path || !c->tasks_dir)
                return -ENOMEM;

        root = load_json(&ctx, path);
        if (root)
                parse_main(&ctx, root, c);
        else if (ctx.io_error && !ctx.oom)
                return ctx.io_error; /* nothing to check without the main file */

        load_tasks(&ctx, c);

        /* php_classes may only name tasks that exist (the seed's sendTask() would otherwise be accepted
         * and then refused at submit time). */
        ctx.file = path;
        for (size_t i = 0; i < c->n_php_classes; i++)
                if (!config_find_task(c, c->php_classes[i].task))
                        report(&ctx, key_member("php_classes", c->php_classes[i].class_name).s,
                               "no task named '%s' in %s", c->php_classes[i].task, c->tasks_dir);

        if (!c->store_group)
                c->store_group = dup_str(&ctx, STORE_GROUP_DEFAULT);
        if (!c->launcher_socket)
                c->launcher_socket = dup_str(&ctx, LAUNCHER_SOCKET_DEFAULT);
        if (!c->admins.present) {
                _cleanup_(cjson_deletep) cJSON *dflt = cJSON_Parse("{\"users\":[\"root\"]}");
                if (!dflt)
                        ctx.oom = true;
                else
                        parse_allow(&ctx, dflt, "admins", false, &c->admins);
        }

        if (ctx.oom)
                return -ENOMEM;
        if (ctx.n_errors > 0)
                return ctx.io_error ? ctx.io_error : -EINVAL;

        *ret = TAKE_PTR(c);
        return 0;
}

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
