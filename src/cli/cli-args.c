/* SPDX-License-Identifier: MIT */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/un.h>

#include "cli/cli-args.h"
#include "cli/cli-format.h"
#include "shared/paths.h"
#include "shared/limits.h"
#include "shared/protocol.h"
#include "shared/util.h"

/* Task ids travel as JSON numbers, which cJSON holds as doubles: beyond 2^53 they would not survive. */
#define CLI_ID_MAX ((1ULL << 53) - 1)

static const char *const command_names[_CLI_COMMAND_MAX] = {
        [CLI_HELP] = "help",       [CLI_VERSION] = "version",     [CLI_SUBMIT] = "submit",
        [CLI_STATUS] = "status",   [CLI_WAIT] = "wait",           [CLI_CANCEL] = "cancel",
        [CLI_LIST] = "list",       [CLI_RETRY] = "retry",         [CLI_FORGET] = "forget",
        [CLI_LOGS] = "logs",       [CLI_STATS] = "stats",         [CLI_PING] = "ping",
        [CLI_RELOAD] = "reload",   [CLI_SCHEDULES] = "schedules", [CLI_PAUSE] = "pause",
        [CLI_RESUME] = "resume",   [CLI_DRAIN] = "drain",         [CLI_UNDRAIN] = "undrain",
        [CLI_METRICS] = "metrics",
};

const char *cli_command_to_string(CliCommand c) {
        return c >= 0 && c < _CLI_COMMAND_MAX ? command_names[c] : NULL;
}

static CliCommand cli_command_from_string(const char *s) {
        /* "version" is only an option (--version): a task or host could be called that. */
        for (int i = 0; i < _CLI_COMMAND_MAX; i++)
                if (i != CLI_VERSION && streq(command_names[i], s))
                        return (CliCommand) i;
        return _CLI_COMMAND_INVALID;
}

typedef enum OptId {
        OPT_SOCKET,
        OPT_TCP,
        OPT_JSON,
        OPT_HELP,
        OPT_VERSION,
        OPT_WAIT,
        OPT_TIMEOUT,
        OPT_KEY,
        OPT_DELAY,
        OPT_PRIORITY,
        OPT_STDIN_FILE,
        OPT_CMD,
        OPT_STATE,
        OPT_LIMIT,
        OPT_AFTER,
        OPT_FAILED,
        OPT_FOLLOW,
        OPT_SLOT_KEY,
        OPT_SLOT_TIME,
        OPT_SLOT_TIMER,
        OPT_PROGRESS,
        OPT_HTTP,
} OptId;

#define FOR(c)     (1u << (c))
#define FOR_GLOBAL UINT_MAX

typedef struct OptSpec {
        const char *name; /* long name without "--" */
        char short_name;  /* or 0 */
        bool has_arg;
        unsigned commands; /* mask of CliCommand bits; FOR_GLOBAL: any position, any command */
        OptId id;
} OptSpec;

static const OptSpec options[] = {
        {"socket", 0, true, FOR_GLOBAL, OPT_SOCKET},
        {"tcp", 0, true, FOR_GLOBAL, OPT_TCP},
        {"json", 0, false, FOR_GLOBAL, OPT_JSON},
        {"help", 'h', false, FOR_GLOBAL, OPT_HELP},
        {"version", 0, false, FOR_GLOBAL, OPT_VERSION},
        {"wait", 0, false, FOR(CLI_SUBMIT), OPT_WAIT},
        {"timeout", 0, true, FOR(CLI_SUBMIT) | FOR(CLI_WAIT) | FOR(CLI_DRAIN), OPT_TIMEOUT},
        {"key", 0, true, FOR(CLI_SUBMIT), OPT_KEY},
        {"delay", 0, true, FOR(CLI_SUBMIT), OPT_DELAY},
        {"priority", 0, true, FOR(CLI_SUBMIT), OPT_PRIORITY},
        {"stdin-file", 0, true, FOR(CLI_SUBMIT), OPT_STDIN_FILE},
        {"cmd", 0, true, FOR(CLI_SUBMIT), OPT_CMD},
        {"state", 0, true, FOR(CLI_LIST), OPT_STATE},
        {"limit", 0, true, FOR(CLI_LIST), OPT_LIMIT},
        {"after", 0, true, FOR(CLI_LIST), OPT_AFTER},
        {"failed", 0, false, FOR(CLI_RETRY), OPT_FAILED},
        {"follow", 'f', false, FOR(CLI_LOGS), OPT_FOLLOW},
        {"slot-key", 0, true, FOR(CLI_SUBMIT), OPT_SLOT_KEY},
        {"slot-time", 0, true, FOR(CLI_SUBMIT), OPT_SLOT_TIME},
        {"slot-timer", 0, true, FOR(CLI_SUBMIT), OPT_SLOT_TIMER},
        {"progress", 0, false, FOR(CLI_WAIT), OPT_PROGRESS},
        {"http", 0, false, FOR(CLI_METRICS), OPT_HTTP},
};

_printf_(3, 4) static int fail(char *errbuf, size_t size, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(errbuf, size, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                unsigned d = (unsigned) (*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *ret) {
        bool negative = false;
        uint64_t mag;
        int64_t v;
        int r;

        if (!s)
                return -EINVAL;
        if (*s == '-' || *s == '+')
                negative = *s++ == '-';
        r = cli_parse_uint(s, 0, negative ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX, &mag);
        if (r < 0)
                return r;
        v = negative ? (mag == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) mag) : (int64_t) mag;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int cli_parse_host_port(const char *s, char *host_buf, size_t host_size, uint16_t *ret_port) {
        const char *host, *colon;
        size_t host_len;
        uint64_t port;

        if (!s)
                return -EINVAL;
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                host = s + 1;
                host_len = (size_t) (close - host);
                colon = close + 1;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                host = s;
                host_len = (size_t) (colon - s);
                /* A bare IPv6 address needs brackets: "::1:9501" is ambiguous. */
                if (memchr(host, ':', host_len))
                        return -EINVAL;
        }
        if (host_len == 0 || host_len >= host_size)
                return -EINVAL;
        if (cli_parse_uint(colon + 1, 1, 65535, &port) < 0)
                return -EINVAL;
        memcpy(host_buf, host, host_len);
        host_buf[host_len] = 0;
        *ret_port = (uint16_t) port;
        return 0;
}

static const OptSpec *find_option(const char *arg, const char **ret_value, bool *ret_has_inline) {
        *ret_value = NULL;
        *ret_has_inline = false;

        if (arg[1] != '-') {
                /* Short options stand alone ("-f", "-h"); no bundling, no attached values. */
                if (arg[2] != 0)
                        return NULL;
                for (size_t i = 0; i < ELEMENTSOF(options); i++)
                        if (options[i].short_name && options[i].short_name == arg[1])
                                return &options[i];
                return NULL;
        }

        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t) (eq - name) : strlen(name);
        for (size_t i = 0; i < ELEMENTSOF(options); i++)
                if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0) {
                        if (eq) {
                                *ret_value = eq + 1;
                                *ret_has_inline = true;
                        }
                        return &options[i];
                }
        return NULL;
}

static int apply_option(CliOptions *o, const OptSpec *spec, const char *opt, const char *value, char *errbuf,
                        size_t size) {
        uint64_t u;
        int64_t i;

        switch (spec->id) {
        case OPT_SOCKET:
                if (!*value)
                        return fail(errbuf, size, "--socket needs a path");
                if (strlen(value) >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                        return fail(errbuf, size, "socket path '%s' is too long", value);
                o->socket_path = value;
                return 0;
        case OPT_TCP: {
                char host[256];
                uint16_t port;
                if (cli_parse_host_port(value, host, sizeof(host), &port) < 0)
                        return fail(errbuf, size, "--tcp wants HOST:PORT (or [IPV6]:PORT), not '%s'", value);
                o->tcp = value;
                return 0;
        }
        case OPT_JSON:
                o->json = true;
                return 0;
        case OPT_HELP:
        case OPT_VERSION:
                return 0; /* handled by the caller */
        case OPT_WAIT:
                o->wait = true;
                return 0;
        case OPT_PROGRESS:
                o->progress = true;
                return 0;
        case OPT_TIMEOUT:
                if (cli_parse_uint(value, 0, CLI_TIMEOUT_SEC_MAX, &u) < 0)
                        return fail(errbuf, size, "%s wants whole seconds (0 or more), not '%s'", opt,
                                    value);
                o->timeout_sec = u;
                o->has_timeout = true;
                return 0;
        case OPT_KEY:
                if (!*value)
                        return fail(errbuf, size, "--key must not be empty");
                o->key = value;
                return 0;
        case OPT_DELAY:
                if (cli_parse_uint(value, 0, DELAY_SEC_MAX, &u) < 0)
                        return fail(errbuf, size, "--delay wants whole seconds from 0 to %d, not '%s'",
                                    DELAY_SEC_MAX, value);
                o->delay_sec = u;
                o->has_delay = true;
                return 0;
        case OPT_PRIORITY:
                if (cli_parse_int(value, INT_MIN, INT_MAX, &i) < 0)
                        return fail(errbuf, size, "--priority wants an integer, not '%s'", value);
                o->priority = (int) i;
                o->has_priority = true;
                return 0;
        case OPT_STDIN_FILE:
                if (!*value)
                        return fail(errbuf, size,
                                    "--stdin-file needs a file name (or - for standard input)");
                o->stdin_file = value;
                return 0;
        case OPT_CMD:
                if (!*value)
                        return fail(errbuf, size, "--cmd must not be empty");
                o->cmd = value;
                return 0;
        case OPT_STATE:
                if (task_state_from_string(value) < 0)
                        return fail(errbuf, size,
                                    "unknown state '%s' (queued, running, succeeded, failed or cancelled)",
                                    value);
                o->state = value;
                return 0;
        case OPT_LIMIT:
                if (cli_parse_uint(value, 1, LIST_LIMIT_MAX, &u) < 0)
                        return fail(errbuf, size, "--limit wants a number from 1 to %d, not '%s'",
                                    LIST_LIMIT_MAX, value);
                o->limit = (unsigned) u;
                o->has_limit = true;
                return 0;
        case OPT_AFTER:
                if (cli_parse_uint(value, 0, CLI_ID_MAX, &u) < 0)
                        return fail(errbuf, size, "--after wants a task id (0 to %llu), not '%s'",
                                    (unsigned long long) CLI_ID_MAX, value);
                o->after_id = u;
                return 0;
        case OPT_FAILED:
                o->failed = true;
                return 0;
        case OPT_FOLLOW:
                o->follow = true;
                return 0;
        case OPT_HTTP:
                o->http = true;
                return 0;
        case OPT_SLOT_KEY:
                if (!*value)
                        return fail(errbuf, size, "--slot-key needs a calendar expression");
                if (o->n_slot_calendars >= ELEMENTSOF(o->slot_calendars))
                        return fail(errbuf, size, "--slot-key may be given at most %zu times",
                                    ELEMENTSOF(o->slot_calendars));
                o->slot_calendars[o->n_slot_calendars++] = value;
                return 0;
        case OPT_SLOT_TIME: {
                int64_t usec;
                if (value[0] == '@' && cli_parse_uint(value + 1, 0, CLI_SLOT_TIME_SEC_MAX, &u) == 0)
                        o->slot_time_usec = u * 1000000;
                else if (cli_parse_timestamp(value, &usec) == 0 && usec >= 0)
                        o->slot_time_usec = (uint64_t) usec;
                else
                        return fail(errbuf, size,
                                    "--slot-time wants a time as 2024-06-06T03:00:00Z (UTC) or @SECONDS, "
                                    "not '%s'",
                                    value);
                o->has_slot_time = true;
                return 0;
        }
        case OPT_SLOT_TIMER: {
                /* A unit name (systemd's characters), not a path or an option. */
                size_t len = strlen(value);
                if (len <= strlen(".timer") || len > 255 ||
                    !streq(value + len - strlen(".timer"), ".timer") ||
                    strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:-_.\\@") !=
                            len)
                        return fail(errbuf, size,
                                    "--slot-timer wants a timer unit such as NAME.timer, not '%s'", value);
                o->slot_timer = value;
                return 0;
        }
        }
        return fail(errbuf, size, "internal error: unhandled option %s", opt);
}

static int parse_id(const char *s, uint64_t *ret, char *errbuf, size_t size) {
        if (cli_parse_uint(s, 1, CLI_ID_MAX, ret) < 0)
                return fail(errbuf, size, "'%s' is not a task id (a positive number)", s);
        return 0;
}

int cli_parse_args(int argc, char *const *argv, const char *env_socket, CliOptions *ret, char *errbuf,
                   size_t errbuf_size) {
        CliOptions o = {.command = _CLI_COMMAND_INVALID};
        const char *positional[2] = {NULL, NULL};
        size_t n_positional = 0;
        bool options_done = false;
        int r;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];

                if (!options_done && streq(a, "--")) {
                        options_done = true;
                        continue;
                }

                if (!options_done && a[0] == '-' && a[1] != 0) {
                        const char *value;
                        bool inline_value;
                        const OptSpec *spec = find_option(a, &value, &inline_value);
                        char optname[64];

                        if (!spec)
                                return fail(errbuf, errbuf_size, "unknown option '%s'", a);
                        (void) snprintf(optname, sizeof(optname), "--%s", spec->name);
                        if (spec->id == OPT_HELP || spec->id == OPT_VERSION) {
                                if (inline_value)
                                        return fail(errbuf, errbuf_size, "%s takes no value", optname);
                                *ret = (CliOptions){.command =
                                                            spec->id == OPT_HELP ? CLI_HELP : CLI_VERSION};
                                return 0;
                        }
                        if (spec->commands != FOR_GLOBAL) {
                                if (o.command < 0)
                                        return fail(errbuf, errbuf_size,
                                                    "%s is not a global option: put it after the command",
                                                    optname);
                                if (!(spec->commands & FOR(o.command)))
                                        return fail(errbuf, errbuf_size, "%s is not an option of '%s'",
                                                    optname, cli_command_to_string(o.command));
                        }
                        if (spec->has_arg && !inline_value) {
                                if (i + 1 >= argc)
                                        return fail(errbuf, errbuf_size, "%s needs a value", optname);
                                value = argv[++i];
                        } else if (!spec->has_arg && inline_value)
                                return fail(errbuf, errbuf_size, "%s takes no value", optname);

                        r = apply_option(&o, spec, optname, value, errbuf, errbuf_size);
                        if (r < 0)
                                return r;
                        continue;
                }

                if (o.command < 0) {
                        o.command = cli_command_from_string(a);
                        if (o.command < 0)
                                return fail(errbuf, errbuf_size, "unknown command '%s'", a);
                        if (o.command == CLI_HELP) {
                                *ret = (CliOptions){.command = CLI_HELP};
                                return 0;
                        }
                        continue;
                }

                if (o.command == CLI_SUBMIT) {
                        /* TASK, then everything after it is an argument of the task, taken literally, even
                         * when it looks like an option: "asynctask submit grep -v x" passes "-v". */
                        o.task = a;
                        o.args = argv + i + 1;
                        o.n_args = (size_t) (argc - i - 1);
                        break;
                }

                if (n_positional >= ELEMENTSOF(positional) - 1)
                        return fail(errbuf, errbuf_size, "unexpected argument '%s'", a);
                positional[n_positional++] = a;
        }

        if (o.command < 0)
                return fail(errbuf, errbuf_size, "no command given");

        switch (o.command) {
        case CLI_SUBMIT:
                if (o.cmd && o.task)
                        return fail(errbuf, errbuf_size, "give either TASK [ARG...] or --cmd, not both");
                if (!o.cmd && !o.task)
                        return fail(errbuf, errbuf_size, "submit needs a TASK (or --cmd 'COMMAND')");
                if (o.task && !*o.task)
                        return fail(errbuf, errbuf_size, "the task name must not be empty");
                if (o.has_timeout && !o.wait)
                        return fail(errbuf, errbuf_size, "--timeout needs --wait");
                if (o.n_slot_calendars > 0 && o.key)
                        return fail(errbuf, errbuf_size, "give either --key or --slot-key, not both");
                if (o.n_slot_calendars > 0 && o.cmd)
                        return fail(errbuf, errbuf_size, "--slot-key is for a TASK, not --cmd");
                if ((o.has_slot_time || o.slot_timer) && o.n_slot_calendars == 0)
                        return fail(errbuf, errbuf_size, "%s needs --slot-key",
                                    o.has_slot_time ? "--slot-time" : "--slot-timer");
                if (o.has_slot_time && o.slot_timer)
                        return fail(errbuf, errbuf_size,
                                    "give either --slot-time or --slot-timer, not both");
                break;
        case CLI_STATUS:
        case CLI_WAIT:
        case CLI_CANCEL:
        case CLI_FORGET:
        case CLI_LOGS:
                if (n_positional != 1)
                        return fail(errbuf, errbuf_size, "'%s' needs a task id",
                                    cli_command_to_string(o.command));
                r = parse_id(positional[0], &o.id, errbuf, errbuf_size);
                if (r < 0)
                        return r;
                o.has_id = true;
                break;
        case CLI_RETRY:
                if (o.failed && n_positional > 0)
                        return fail(errbuf, errbuf_size, "give either a task id or --failed, not both");
                if (o.failed)
                        break;
                if (n_positional != 1)
                        return fail(errbuf, errbuf_size, "'retry' needs a task id (or --failed)");
                r = parse_id(positional[0], &o.id, errbuf, errbuf_size);
                if (r < 0)
                        return r;
                o.has_id = true;
                break;
        case CLI_PAUSE:
        case CLI_RESUME:
                if (n_positional != 1 || !*positional[0])
                        return fail(errbuf, errbuf_size, "'%s' needs a task name",
                                    cli_command_to_string(o.command));
                o.task = positional[0];
                break;
        case CLI_LIST:
        case CLI_STATS:
        case CLI_PING:
        case CLI_RELOAD:
        case CLI_SCHEDULES:
        case CLI_DRAIN:
        case CLI_UNDRAIN:
        case CLI_METRICS:
                if (n_positional > 0)
                        return fail(errbuf, errbuf_size, "unexpected argument '%s'", positional[0]);
                break;
        default:
                break;
        }

        if (o.tcp) {
                if (o.socket_path)
                        return fail(errbuf, errbuf_size, "--socket and --tcp cannot be used together");
        } else if (!o.socket_path) {
                if (env_socket && *env_socket) {
                        if (strlen(env_socket) >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                                return fail(errbuf, errbuf_size, "$ASYNCTASK_SOCKET '%s' is too long",
                                            env_socket);
                        o.socket_path = env_socket;
                } else
                        o.socket_path = FRONT_SOCKET_DEFAULT;
        }

        *ret = o;
        return 0;
}

/* Integers go out as raw JSON text: cJSON prints a double with 15 significant digits when that
 * reads back "close enough", which would turn id 9007199254740991 into 9.00719925474099e+15. */
static bool add_uint(cJSON *req, const char *name, uint64_t v) {
        char buf[32];
        (void) snprintf(buf, sizeof(buf), "%llu", (unsigned long long) v);
        return cJSON_AddRawToObject(req, name, buf) != NULL;
}

static bool add_int(cJSON *req, const char *name, int64_t v) {
        char buf[32];
        (void) snprintf(buf, sizeof(buf), "%lld", (long long) v);
        return cJSON_AddRawToObject(req, name, buf) != NULL;
}

static bool add_id(cJSON *req, uint64_t id) {
        return add_uint(req, "id", id);
}

cJSON *cli_wait_request(uint64_t id, uint64_t timeout_sec) {
        cJSON *req = cJSON_CreateObject();

        if (!req || !cJSON_AddStringToObject(req, "op", "wait") || !add_id(req, id) ||
            !add_uint(req, "timeout", timeout_sec)) {
                cJSON_Delete(req);
                return NULL;
        }
        return req;
}

cJSON *cli_wait_progress_request(uint64_t id, uint64_t timeout_sec, const char *seen) {
        cJSON *req = cli_wait_request(id, timeout_sec);

        if (req && !(seen ? cJSON_AddStringToObject(req, "progress_seen", seen)
                          : cJSON_AddNullToObject(req, "progress_seen"))) {
                cJSON_Delete(req);
                return NULL;
        }
        return req;
}

cJSON *cli_drain_request(uint64_t timeout_sec) {
        cJSON *req = cJSON_CreateObject();

        if (!req || !cJSON_AddStringToObject(req, "op", "drain") || !add_uint(req, "timeout", timeout_sec)) {
                cJSON_Delete(req);
                return NULL;
        }
        return req;
}

static bool build_submit(cJSON *req, const CliOptions *o, const char *stdin_data, size_t stdin_len) {
        if (o->task) {
                if (!cJSON_AddStringToObject(req, "task", o->task))
                        return false;
                if (o->n_args > 0) {
                        cJSON *args = cJSON_AddArrayToObject(req, "args");
                        if (!args)
                                return false;
                        for (size_t i = 0; i < o->n_args; i++) {
                                cJSON *s = cJSON_CreateString(o->args[i]);
                                if (!s || !cJSON_AddItemToArray(args, s)) {
                                        cJSON_Delete(s);
                                        return false;
                                }
                        }
                }
        } else if (!cJSON_AddStringToObject(req, "cmd", o->cmd))
                return false;

        if (o->key && !cJSON_AddStringToObject(req, "key", o->key))
                return false;
        if (o->has_delay && !add_uint(req, "delay", o->delay_sec))
                return false;
        if (o->has_priority && !add_int(req, "priority", o->priority))
                return false;
        if (stdin_data) {
                /* cJSON strings end at NUL; the caller has checked there is none inside. */
                if (memchr(stdin_data, 0, stdin_len))
                        return false;
                if (!cJSON_AddStringToObject(req, "stdin", stdin_data))
                        return false;
        }
        return true;
}

cJSON *cli_build_request(const CliOptions *o, const char *stdin_data, size_t stdin_len) {
        const char *op;
        bool ok = true;

        switch (o->command) {
        case CLI_SUBMIT:
        case CLI_STATUS:
        case CLI_CANCEL:
        case CLI_LIST:
        case CLI_RETRY:
        case CLI_FORGET:
        case CLI_STATS:
        case CLI_PING:
        case CLI_RELOAD:
        case CLI_PAUSE:
        case CLI_RESUME:
        case CLI_UNDRAIN:
        case CLI_METRICS:
                op = cli_command_to_string(o->command);
                break;
        default:
                return NULL;
        }

        cJSON *req = cJSON_CreateObject();
        if (!req || !cJSON_AddStringToObject(req, "op", op)) {
                cJSON_Delete(req);
                return NULL;
        }

        switch (o->command) {
        case CLI_SUBMIT:
                ok = build_submit(req, o, stdin_data, stdin_len);
                break;
        case CLI_STATUS:
        case CLI_CANCEL:
        case CLI_FORGET:
                ok = add_id(req, o->id);
                break;
        case CLI_PAUSE:
        case CLI_RESUME:
                ok = cJSON_AddStringToObject(req, "task", o->task) != NULL;
                break;
        case CLI_RETRY:
                ok = o->failed ? cJSON_AddStringToObject(req, "state", "failed") != NULL
                               : add_id(req, o->id);
                break;
        case CLI_LIST:
                if (o->state)
                        ok = cJSON_AddStringToObject(req, "state", o->state) != NULL;
                if (ok && o->has_limit)
                        ok = add_uint(req, "limit", o->limit);
                if (ok && o->after_id > 0)
                        ok = add_uint(req, "after_id", o->after_id);
                break;
        default:
                break;
        }

        if (!ok) {
                cJSON_Delete(req);
                return NULL;
        }
        return req;
}
