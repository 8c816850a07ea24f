/* SPDX-License-Identifier: MIT */
/*
 * asynctask: the command-line client. Parses the command line (cli-args), sends one JSON request
 * line per step to asynctaskd over its unix socket or TCP, and shows the answers (cli-format).
 * `logs` reads the journal through journalctl instead.
 */

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include "cli/cli-args.h"
#include "cli/cli-format.h"
#include "cli/client.h"
#include "cli/cli-http.h"
#include "cli/cli-schedule.h"
#include "shared/calendar.h"
#include "shared/json-util.h"
#include "shared/paths.h"
#include "shared/limits.h"
#include "shared/util.h"

extern char **environ;

/* A "wait" answer comes when the server's wait times out; allow this much on top before giving up. */
#define CLI_WAIT_SLACK_SEC 30

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static const char usage_text[] =
        "Usage: asynctask [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]\n"
        "\n"
        "Submit and manage tasks of asynctaskd.\n"
        "\n"
        "Commands:\n"
        "  submit [--wait [--timeout S]] [--key K] [--delay S] [--priority P]\n"
        "         [--stdin-file F|-] TASK [ARG...]\n"
        "                          queue a configured task; prints its id on stdout.\n"
        "                          Everything after TASK is passed to the task as is.\n"
        "  submit [--wait ...] --cmd 'COMMAND'\n"
        "                          queue a raw command from the config's commands list\n"
        "  submit --slot-key CALENDAR [--slot-key CALENDAR...]\n"
        "         [--slot-time TIME | --slot-timer UNIT] TASK [ARG...]\n"
        "                          queue the run of the slot of these calendar expressions that\n"
        "                          is due now (or at TIME, 2024-06-06T03:00:00Z or @SECONDS; or\n"
        "                          at the timer UNIT's last elapse), once: the key is TASK and the\n"
        "                          slot's time (what the services of scheduled tasks run)\n"
        "  status ID               show a task's record\n"
        "  wait ID [--timeout S] [--progress]\n"
        "                          wait until the task is final, show its record; --progress prints\n"
        "                          each change of its progress (STATUS=) on a line as it comes\n"
        "  cancel ID               cancel a queued task, or stop a running one\n"
        "  list [--state STATE] [--after ID] [--limit N]\n"
        "                          list tasks by id (admins): all of them, or N after ID\n"
        "  retry ID | retry --failed\n"
        "                          queue a failed or cancelled task again / all failed ones (admins)\n"
        "  forget ID               delete a task's record (admins)\n"
        "  logs ID [-f|--follow]   show the task's output from the journal\n"
        "  stats                   counts of tasks, connections, launcher and store state\n"
        "  ping                    check that asynctaskd answers\n"
        "  reload                  make both daemons reload their configuration (root)\n"
        "  pause TASK | resume TASK\n"
        "                          start no new runs of a task / start them again (admins)\n"
        "  drain [--timeout S]     this host starts no new runs; returns when its running tasks\n"
        "                          are over (admins); until undrain, also across restarts\n"
        "  undrain                 this host takes work again (admins)\n"
        "  schedules               list the scheduled tasks: their timers in systemd\n"
        "  metrics [--http]        the daemon's metrics in the Prometheus text format; with --http,\n"
        "                          answer the HTTP request on standard input with them (what\n"
        "                          asynctask-metrics@.service runs for each connection)\n"
        "\n"
        "Global options (before or after the command):\n"
        "  --socket PATH           unix socket of asynctaskd (default: $ASYNCTASK_SOCKET, else\n"
        "                          /run/asynctask/asynctask.sock)\n"
        "  --tcp HOST:PORT         connect over TCP instead (e.g. 127.0.0.1:9501, [::1]:9501)\n"
        "  --json                  print the daemon's answers as they are, one JSON object per line\n"
        "  -h, --help              show this help\n"
        "  --version               show the version\n"
        "\n"
        "Exit status: 0 success; with --wait and for wait, the task's own exit status (0 when it\n"
        "succeeded, 1 when it failed without one); 124 when --timeout passed first (drain: tasks\n"
        "still run; 1 when an undrain ended the drain first); 2 usage error;\n"
        "3 refused (forbidden, unknown_task, not_found, ...); 4 unavailable or cannot connect;\n"
        "5 internal or protocol error.\n";

static void print_usage_hint(const char *message) {
        fprintf(stderr, "asynctask: %s\nTry 'asynctask --help' for more information.\n", message);
}

static bool get_u64(const cJSON *obj, const char *name, uint64_t *ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
        /* Integral and exactly representable (ids stay below 2^53). */
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 9.0e15) ||
            (double) (uint64_t) v->valuedouble != v->valuedouble)
                return false;
        *ret = (uint64_t) v->valuedouble;
        return true;
}

static const char *get_str(const cJSON *obj, const char *name) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool state_is_final(const char *state) {
        return state && (streq(state, "succeeded") || streq(state, "failed") || streq(state, "cancelled"));
}

static int bad_answer(const Client *c, const char *what) {
        fprintf(stderr, "asynctask: %s sent an answer without %s\n", c->where, what);
        return CLI_EXIT_INTERNAL;
}

/* Waits with the "wait" op until the task is final or timeout_sec (if has_timeout) passed. The
 * server holds a wait for at most WAIT_SEC_MAX, so long waits are a loop of them. Returns 0 with
 * the final record, CLI_EXIT_TIMEOUT with the latest one, or another exit code (reported). Only
 * the last answer is printed with --json. */
/* wait --progress: prints each new progress text of the task, one line each, as it comes ("--json":
 * each answer that brought one). The text seen last goes with the next wait. */
typedef struct ProgressFollow {
        bool on;
        bool json;
        char *seen;        /* NULL before any */
        bool printed_last; /* --json: the last answer was printed for its progress */
} ProgressFollow;

static void progress_follow(ProgressFollow *p, const ClientAnswer *a) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(a->obj, "progress");
        const char *text = cJSON_IsString(v) ? v->valuestring : NULL;
        char *copy;

        p->printed_last = false;
        if (!p->on || !text || streq_ptr(text, p->seen))
                return;
        copy = strdup(text);
        if (!copy)
                return; /* the next answer brings it again */
        free(p->seen);
        p->seen = copy;
        if (p->json) {
                printf("%s\n", a->raw);
                p->printed_last = true;
        } else {
                /* One line per change, whatever the task put in it. */
                for (char *s = copy; *s; s++)
                        putchar((unsigned char) *s < 0x20 || *s == 0x7f ? '?' : *s);
                putchar('\n');
        }
        (void) fflush(stdout);
}

static int wait_for_task_following(Client *c, uint64_t id, bool has_timeout, uint64_t timeout_sec,
                                   ProgressFollow *follow, ClientAnswer *ret) {
        uint64_t deadline = has_timeout ? deadline_after(timeout_sec) : UINT64_MAX;
        ClientAnswer a = {};
        int r;

        for (;;) {
                uint64_t now = now_usec(CLOCK_MONOTONIC), step = WAIT_SEC_MAX;
                if (has_timeout) {
                        uint64_t left = deadline > now ? deadline - now : 0;
                        step = (left + USEC_PER_SEC - 1) / USEC_PER_SEC;
                        if (step > WAIT_SEC_MAX)
                                step = WAIT_SEC_MAX;
                }

                client_answer_done(&a);
                r = client_call(c,
                                follow && follow->on ? cli_wait_progress_request(id, step, follow->seen)
                                                     : cli_wait_request(id, step),
                                step + CLI_WAIT_SLACK_SEC, &a);
                if (r != 0)
                        return r;
                if (follow)
                        progress_follow(follow, &a);

                const char *state = get_str(a.obj, "state");
                if (!state) {
                        client_answer_done(&a);
                        return bad_answer(c, "a state");
                }
                bool final = state_is_final(state);
                uint64_t after = now_usec(CLOCK_MONOTONIC);
                if (final || (has_timeout && after >= deadline)) {
                        if (c->json && !(follow && follow->on))
                                printf("%s\n", a.raw);
                        *ret = a;
                        return final ? 0 : CLI_EXIT_TIMEOUT;
                }
                /* A wait that came back long before its time (the daemon is stopping, say) must not
                 * turn this loop into a busy one; one that brought progress came back for it. */
                if (follow && follow->on)
                        continue;
                if (after - now < step * USEC_PER_SEC / 2)
                        (void) usleep(200 * 1000);
        }
}

static int wait_for_task(Client *c, uint64_t id, bool has_timeout, uint64_t timeout_sec, ClientAnswer *ret) {
        return wait_for_task_following(c, id, has_timeout, timeout_sec, NULL, ret);
}

/* ---- commands -------------------------------------------------------------------------------- */

/* Reads --stdin-file F (or standard input for "-"). The request carries it as a JSON string, so it
 * must not hold NUL bytes; its size is bounded by what any daemon accepts in one frame. */
static int read_stdin_file(const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, alloc = 0;

        if (streq(path, "-"))
                fd = dup(STDIN_FILENO);
        else
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        for (;;) {
                if (alloc - len < 4096) {
                        alloc = alloc ? alloc * 2 : 65536;
                        char *b = realloc(buf, alloc + 1);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                }
                ssize_t n = read(fd, buf + len, alloc - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > FRAME_BYTES_MAX)
                        return -EFBIG;
        }
        if (!buf && !(buf = malloc(1)))
                return -ENOMEM;
        buf[len] = 0;
        if (memchr(buf, 0, len))
                return -EBADMSG;
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static int cmd_submit(Client *c, const CliOptions *o) {
        _cleanup_free_ char *stdin_data = NULL;
        size_t stdin_len = 0;
        ClientAnswer a = {}, w = {};
        uint64_t id;
        int r;

        if (o->stdin_file) {
                r = read_stdin_file(o->stdin_file, &stdin_data, &stdin_len);
                if (r < 0) {
                        const char *name = streq(o->stdin_file, "-") ? "standard input" : o->stdin_file;
                        if (r == -EFBIG)
                                fprintf(stderr, "asynctask: %s is larger than %d bytes\n", name,
                                        FRAME_BYTES_MAX);
                        else if (r == -EBADMSG)
                                fprintf(stderr,
                                        "asynctask: %s contains NUL bytes, which a request cannot carry "
                                        "(encode it, e.g. base64)\n",
                                        name);
                        else
                                fprintf(stderr, "asynctask: cannot read %s: %s\n", name, strerror(-r));
                        return CLI_EXIT_USAGE;
                }
        }

        r = client_call(c, cli_build_request(o, stdin_data, stdin_len), CLI_ANSWER_TIMEOUT_SEC, &a);
        if (r != 0)
                return r;
        if (!get_u64(a.obj, "id", &id)) {
                client_answer_done(&a);
                return bad_answer(c, "a task id");
        }

        if (o->json)
                printf("%s\n", a.raw);
        else {
                const char *state = get_str(a.obj, "state");
                printf("%llu\n", (unsigned long long) id);
                (void) fflush(stdout);
                if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a.obj, "existing")))
                        fprintf(stderr,
                                "task %llu already exists for key '%s' (%s); nothing new was queued\n",
                                (unsigned long long) id, o->key ? o->key : "?", state ? state : "?");
                else
                        fprintf(stderr, "task %llu %s\n", (unsigned long long) id,
                                state ? state : "submitted");
        }
        (void) fflush(stdout);
        client_answer_done(&a);

        if (!o->wait)
                return CLI_EXIT_OK;

        r = wait_for_task(c, id, o->has_timeout, o->timeout_sec, &w);
        if (r != 0 && r != CLI_EXIT_TIMEOUT)
                return r;
        if (!o->json) {
                char outcome[256];
                cli_describe_outcome(w.obj, outcome, sizeof(outcome));
                if (r == CLI_EXIT_TIMEOUT)
                        fprintf(stderr, "asynctask: task %llu is still %s after %llu s (--timeout)\n",
                                (unsigned long long) id, outcome, (unsigned long long) o->timeout_sec);
                else
                        fprintf(stderr, "task %llu %s\n", (unsigned long long) id, outcome);
        }
        if (r == 0)
                r = cli_exit_code_for_task(w.obj);
        client_answer_done(&w);
        return r;
}

static int cmd_wait(Client *c, const CliOptions *o) {
        ProgressFollow follow = {.on = o->progress, .json = o->json};
        ClientAnswer w = {};
        int r;

        r = wait_for_task_following(c, o->id, o->has_timeout, o->timeout_sec, &follow, &w);
        free(follow.seen);
        if (r != 0 && r != CLI_EXIT_TIMEOUT)
                return r;
        /* The last answer, the final record (or the one at the timeout), unless it was printed already. */
        if (o->json && o->progress && !follow.printed_last)
                printf("%s\n", w.raw);
        if (!o->json) {
                cli_print_record(stdout, w.obj);
                if (r == CLI_EXIT_TIMEOUT) {
                        char outcome[256];
                        (void) fflush(stdout);
                        cli_describe_outcome(w.obj, outcome, sizeof(outcome));
                        fprintf(stderr, "asynctask: task %llu is still %s after %llu s (--timeout)\n",
                                (unsigned long long) o->id, outcome, (unsigned long long) o->timeout_sec);
                }
        }
        if (r == 0)
                r = cli_exit_code_for_task(w.obj);
        client_answer_done(&w);
        return r;
}

/* Commands that are one request and one answer. */
static int cmd_simple(Client *c, const CliOptions *o) {
        ClientAnswer a = {};
        uint64_t start = now_usec(CLOCK_MONOTONIC), n;
        int r;

        r = client_call(c, cli_build_request(o, NULL, 0), CLI_ANSWER_TIMEOUT_SEC, &a);
        if (r != 0)
                return r;
        if (o->json) {
                printf("%s\n", a.raw);
                client_answer_done(&a);
                return CLI_EXIT_OK;
        }

        const char *state = get_str(a.obj, "state");
        switch (o->command) {
        case CLI_STATUS:
                cli_print_record(stdout, a.obj);
                break;
        case CLI_CANCEL:
                if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a.obj, "stopping")))
                        printf("task %llu is running: stop requested (it becomes cancelled when the run "
                               "ends)\n",
                               (unsigned long long) o->id);
                else if (state && streq(state, "cancelled"))
                        printf("task %llu cancelled\n", (unsigned long long) o->id);
                else
                        printf("task %llu was already %s; nothing to cancel\n", (unsigned long long) o->id,
                               state ? state : "final");
                break;
        case CLI_RETRY:
                if (o->failed) {
                        if (!get_u64(a.obj, "retried", &n)) {
                                r = bad_answer(c, "a count of retried tasks");
                                break;
                        }
                        printf("%llu failed task%s queued again\n", (unsigned long long) n,
                               n == 1 ? "" : "s");
                } else
                        printf("task %llu %s again\n", (unsigned long long) o->id, state ? state : "queued");
                break;
        case CLI_FORGET:
                printf("task %llu forgotten\n", (unsigned long long) o->id);
                break;
        case CLI_LIST: {
                const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(a.obj, "tasks");
                if (!cJSON_IsArray(tasks)) {
                        r = bad_answer(c, "a list of tasks");
                        break;
                }
                cli_print_task_table(stdout, tasks, (int64_t) now_usec(CLOCK_REALTIME), true);
                break;
        }
        case CLI_STATS:
                cli_print_stats(stdout, a.obj);
                break;
        case CLI_PING: {
                const char *version = get_str(a.obj, "version");
                double ms = (double) (now_usec(CLOCK_MONOTONIC) - start) / 1000.0;
                printf("asynctaskd %s answered on %s in %.2f ms\n", version ? version : "(unknown version)",
                       c->peer, ms);
                break;
        }
        case CLI_RELOAD:
                printf("configuration reloaded\n");
                break;
        case CLI_PAUSE:
                printf("task '%s' paused: queued runs wait, running ones finish ('asynctask resume %s' "
                       "ends it)\n",
                       o->task, o->task);
                break;
        case CLI_RESUME:
                printf("task '%s' resumed\n", o->task);
                break;
        case CLI_UNDRAIN:
                printf("this host takes work again\n");
                break;
        case CLI_METRICS: {
                const char *text = get_str(a.obj, "text");
                if (!text) {
                        r = bad_answer(c, "the metrics text");
                        break;
                }
                fputs(text, stdout);
                break;
        }
        default:
                break;
        }
        client_answer_done(&a);
        return r;
}

/* drain: this host starts no new runs; waits (in steps of at most WAIT_SEC_MAX, as wait does) until
 * its running tasks are over, the timeout passes (CLI_EXIT_TIMEOUT), or an undrain ends the drain
 * (CLI_EXIT_TASK_FAILED). */
static int cmd_drain(Client *c, const CliOptions *o) {
        uint64_t deadline = o->has_timeout ? deadline_after(o->timeout_sec) : UINT64_MAX;
        ClientAnswer a = {};
        uint64_t running = 0;
        int r;

        for (;;) {
                uint64_t now = now_usec(CLOCK_MONOTONIC), step = WAIT_SEC_MAX, after;
                if (o->has_timeout) {
                        uint64_t left = deadline > now ? deadline - now : 0;
                        step = (left + USEC_PER_SEC - 1) / USEC_PER_SEC;
                        if (step > WAIT_SEC_MAX)
                                step = WAIT_SEC_MAX;
                }

                client_answer_done(&a);
                r = client_call(c, cli_drain_request(step), step + CLI_WAIT_SLACK_SEC, &a);
                if (r != 0)
                        return r;
                const cJSON *draining = cJSON_GetObjectItemCaseSensitive(a.obj, "draining");
                if (!cJSON_IsBool(draining) || !get_u64(a.obj, "running", &running)) {
                        client_answer_done(&a);
                        return bad_answer(c, "the drain's state");
                }
                after = now_usec(CLOCK_MONOTONIC);
                if (running == 0 || !cJSON_IsTrue(draining) || (o->has_timeout && after >= deadline))
                        break;
                if (after - now < step * USEC_PER_SEC / 2)
                        (void) usleep(200 * 1000);
        }

        if (o->json)
                printf("%s\n", a.raw);
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a.obj, "draining"))) {
                fprintf(stderr, "asynctask: the drain was ended (undrain) while %llu task(s) still ran\n",
                        (unsigned long long) running);
                r = CLI_EXIT_TASK_FAILED;
        } else if (running > 0) {
                fprintf(stderr,
                        "asynctask: %llu task(s) still running after %llu s (--timeout); this host stays "
                        "draining\n",
                        (unsigned long long) running, (unsigned long long) o->timeout_sec);
                r = CLI_EXIT_TIMEOUT;
        } else {
                if (!o->json)
                        printf("this host is drained: nothing runs, and no new run starts until 'asynctask "
                               "undrain'\n");
                r = CLI_EXIT_OK;
        }
        client_answer_done(&a);
        return r;
}

/* list without --limit: every task, a page at a time (a state may hold millions), each page asking for
 * the ids after the last one of the page before. With --json, one answer line per page. */
static int cmd_list_all(Client *c, const CliOptions *o) {
        CliOptions page = *o;
        bool first = true;

        page.has_limit = true;
        page.limit = CLI_LIST_PAGE;
        for (;;) {
                ClientAnswer a = {};
                const cJSON *tasks, *t;
                size_t n = 0;
                int r;

                r = client_call(c, cli_build_request(&page, NULL, 0), CLI_ANSWER_TIMEOUT_SEC, &a);
                if (r != 0)
                        return r;
                tasks = cJSON_GetObjectItemCaseSensitive(a.obj, "tasks");
                if (!cJSON_IsArray(tasks)) {
                        r = bad_answer(c, "a list of tasks");
                        client_answer_done(&a);
                        return r;
                }
                cJSON_ArrayForEach (t, tasks) {
                        uint64_t id;

                        if (!get_u64(t, "id", &id) || id <= page.after_id) {
                                r = bad_answer(c, "tasks in ascending id order");
                                client_answer_done(&a);
                                return r;
                        }
                        page.after_id = id;
                        n++;
                }
                if (o->json) {
                        if (first || n > 0)
                                printf("%s\n", a.raw);
                } else
                        cli_print_task_table(stdout, tasks, (int64_t) now_usec(CLOCK_REALTIME), first);
                client_answer_done(&a);
                first = false;
                if (n < page.limit)
                        return CLI_EXIT_OK;
        }
}

/* ---- logs ------------------------------------------------------------------------------------ */

static void explain_output_location(uint64_t id, bool have_journalctl, bool journald) {
        unsigned long long n = (unsigned long long) id;

        if (!journald)
                fprintf(stderr,
                        "asynctask: journald is not running on this host, so task output is not in the "
                        "journal.\n"
                        "The direct executor wrote the output of task %llu to asynctask-launcher's "
                        "standard\n"
                        "error, each line prefixed '[task %llu] ' (look wherever the launcher's stderr "
                        "goes:\n"
                        "its terminal or the file it was redirected to).\n",
                        n, n);
        else if (!have_journalctl)
                fprintf(stderr,
                        "asynctask: journalctl is not installed. Task output is in the journal: with the\n"
                        "systemd executor as unit asynctask-%llu.service, with the direct executor under "
                        "the\n"
                        "identifier asynctask-%llu; fields ASYNCTASK_ID=%llu mark the daemons' messages.\n",
                        n, n, n);
        else
                fprintf(stderr,
                        "asynctask: no journal entries for task %llu (checked ASYNCTASK_ID=%llu and the "
                        "identifier\n"
                        "asynctask-%llu). The task may not have run yet, its entries may have been rotated "
                        "away,\n"
                        "or this user may not read them (root or the groups adm / systemd-journal can).\n"
                        "Without journald, the direct executor writes task output to asynctask-launcher's\n"
                        "standard error instead, each line prefixed '[task %llu] '.\n",
                        n, n, n, n);
}

static int cmd_logs(const CliOptions *o) {
        char id_match[64], ident_match[64];
        bool journald = access(JOURNAL_SOCKET, F_OK) == 0;
        const char *argv[16];
        size_t n = 0;
        int r;

        /* Task output carries ASYNCTASK_ID= (systemd executor: LogExtraFields=) or, from the direct
         * executor, the identifier asynctask-ID; either one belongs to the task. */
        (void) snprintf(id_match, sizeof(id_match), "ASYNCTASK_ID=%llu", (unsigned long long) o->id);
        (void) snprintf(ident_match, sizeof(ident_match), "SYSLOG_IDENTIFIER=asynctask-%llu",
                        (unsigned long long) o->id);
        argv[n++] = "journalctl";
        argv[n++] = "--no-pager";
        argv[n++] = "--quiet";
        argv[n++] = "--output=cat";
        if (o->follow)
                argv[n++] = "--follow";
        argv[n++] = id_match;
        argv[n++] = "+";
        argv[n++] = ident_match;
        argv[n] = NULL;

        if (o->follow) {
                if (!journald) {
                        explain_output_location(o->id, true, false);
                        return CLI_EXIT_TASK_FAILED;
                }
                (void) fflush(stdout);
                execvp(argv[0], (char *const *) argv);
                if (errno != ENOENT) {
                        fprintf(stderr, "asynctask: cannot run journalctl: %m\n");
                        return CLI_EXIT_INTERNAL;
                }
                explain_output_location(o->id, false, journald);
                return CLI_EXIT_TASK_FAILED;
        }

        /* Pass the output through, counting it, to say something useful when there is none. */
        int pipefd[2];
        posix_spawn_file_actions_t actions;
        pid_t pid;

        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                fprintf(stderr, "asynctask: pipe: %m\n");
                return CLI_EXIT_INTERNAL;
        }
        if (posix_spawn_file_actions_init(&actions) != 0 ||
            posix_spawn_file_actions_adddup2(&actions, pipefd[1], STDOUT_FILENO) != 0) {
                fprintf(stderr, "asynctask: out of memory\n");
                return CLI_EXIT_INTERNAL;
        }
        r = posix_spawnp(&pid, argv[0], &actions, NULL, (char *const *) argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        (void) close(pipefd[1]);
        if (r != 0) {
                (void) close(pipefd[0]);
                if (r != ENOENT) {
                        fprintf(stderr, "asynctask: cannot run journalctl: %s\n", strerror(r));
                        return CLI_EXIT_INTERNAL;
                }
                explain_output_location(o->id, false, journald);
                return CLI_EXIT_TASK_FAILED;
        }

        size_t total = 0;
        char buf[16384];
        for (;;) {
                ssize_t k = read(pipefd[0], buf, sizeof(buf));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                total += (size_t) k;
                if (fwrite(buf, 1, (size_t) k, stdout) != (size_t) k)
                        break;
        }
        (void) close(pipefd[0]);
        (void) fflush(stdout);

        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (total == 0) {
                explain_output_location(o->id, true, journald);
                return CLI_EXIT_TASK_FAILED;
        }
        return CLI_EXIT_OK;
}

/* ---- schedules ------------------------------------------------------------------------------- */

/* The time whose slot is submitted: --slot-time; else the last trigger of --slot-timer, which a
 * service started by its timer was started for, however late it starts (and, started by hand, the
 * slot the timer is in); else now. */
static uint64_t slot_time(const CliOptions *o) {
        uint64_t now = now_usec(CLOCK_REALTIME), last;
        char err[512] = "";
        int r;

        if (o->has_slot_time)
                return o->slot_time_usec;
        if (!o->slot_timer)
                return now;
        r = cli_timer_last_trigger(o->slot_timer, &last, err, sizeof(err));
        if (r < 0)
                fprintf(stderr, "asynctask: --slot-timer: %s; taking the slot due now\n", err);
        else if (last == 0)
                fprintf(stderr, "asynctask: --slot-timer: %s has not elapsed yet; taking the slot due now\n",
                        o->slot_timer);
        return r < 0 || last == 0 || last > now ? now : last;
}

/* submit --slot-key: the key of the slot that is due, into buf. 0 or an exit code. */
static int slot_key(const CliOptions *o, char *buf, size_t size) {
        uint64_t at = slot_time(o), slot;
        char when[CALENDAR_UTC_BYTES];
        int r;

        r = calendar_latest_elapse((char *const *) o->slot_calendars, o->n_slot_calendars, at, &slot);
        if (r == -EINVAL) {
                /* Say which expression, in systemd-analyze's words. */
                for (size_t i = 0; i < o->n_slot_calendars; i++) {
                        uint64_t next;
                        size_t n;
                        char why[512] = "";
                        if (calendar_next_elapses(o->slot_calendars[i], at, 1, &next, &n, why,
                                                  sizeof(why)) == -EINVAL) {
                                fprintf(stderr, "asynctask: --slot-key '%s': %s\n", o->slot_calendars[i],
                                        why);
                                return CLI_EXIT_USAGE;
                        }
                }
        }
        if (r == -ESRCH) {
                fprintf(stderr, "asynctask: --slot-key: no slot at or before %s\n",
                        calendar_format_utc(at, when));
                return CLI_EXIT_USAGE;
        }
        if (r == -ENOENT) {
                fprintf(stderr,
                        "asynctask: --slot-key needs systemd-analyze (systemd), which is not installed\n");
                return CLI_EXIT_INTERNAL;
        }
        if (r < 0) {
                fprintf(stderr, "asynctask: --slot-key: cannot compute the slot with systemd-analyze: %s\n",
                        strerror(-r));
                return CLI_EXIT_INTERNAL;
        }
        r = cli_slot_key(o->task, slot, buf, size);
        if (r < 0) {
                fprintf(stderr, "asynctask: --slot-key: the key for task '%s' is too long\n", o->task);
                return CLI_EXIT_USAGE;
        }
        return CLI_EXIT_OK;
}

static int cmd_schedules(const CliOptions *o) {
        _cleanup_(cjson_deletep) cJSON *list = NULL;
        char err[512] = "";
        int r;

        r = cli_schedules_read(&list, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "asynctask: %s\n", err);
                return r == -ENOMEM || r == -EBADMSG ? CLI_EXIT_INTERNAL : CLI_EXIT_UNAVAILABLE;
        }
        if (o->json) {
                _cleanup_(cjson_deletep) cJSON *answer = cJSON_CreateObject();
                _cleanup_free_ char *text = NULL;
                if (!answer || !cJSON_AddItemToObject(answer, "schedules", list)) {
                        fprintf(stderr, "asynctask: out of memory\n");
                        return CLI_EXIT_INTERNAL;
                }
                list = NULL; /* answer has it */
                text = cJSON_PrintUnformatted(answer);
                if (!text) {
                        fprintf(stderr, "asynctask: out of memory\n");
                        return CLI_EXIT_INTERNAL;
                }
                printf("%s\n", text);
        } else
                cli_print_schedules(stdout, list);
        return CLI_EXIT_OK;
}

/* ---- metrics --http --------------------------------------------------------------------------- */

/* One scrape on standard input and output. Exits 0 once an answer is written, whatever its status (a
 * daemon that is down is a 503 for the scraper to see, not a failed unit per connection). */
static int cmd_metrics_http(const CliOptions *o) {
        static const char unavailable[] = "asynctaskd did not answer; see the journal of this unit\n";
        CliHttpRequest req = cli_http_read_request(STDIN_FILENO);
        _cleanup_free_ char *answer = NULL;
        const char *body = "";
        size_t body_len = 0, len;
        ClientAnswer a = {};
        Client c = {.fd = -1};
        int status = req.status, r;

        if (status == 200) {
                r = client_connect(&c, o);
                if (r == 0)
                        r = client_call(&c, cli_build_request(o, NULL, 0), CLI_ANSWER_TIMEOUT_SEC, &a);
                body = r == 0 ? get_str(a.obj, "text") : NULL;
                if (!body) {
                        status = 503;
                        body = unavailable;
                }
                body_len = strlen(body);
        } else {
                body = status == 404   ? "try /metrics\n"
                       : status == 405 ? "GET or HEAD only\n"
                                       : "bad request\n";
                body_len = strlen(body);
        }
        r = cli_http_answer(status, body, body_len, req.head, &answer, &len);
        client_answer_done(&a);
        client_done(&c);
        if (r < 0) {
                fprintf(stderr, "asynctask: out of memory\n");
                return CLI_EXIT_INTERNAL;
        }
        r = cli_http_write_all(STDOUT_FILENO, answer, len);
        if (r < 0) {
                fprintf(stderr, "asynctask: cannot write the HTTP answer: %s\n", strerror(-r));
                return CLI_EXIT_INTERNAL;
        }
        return CLI_EXIT_OK;
}

/* ---- main ------------------------------------------------------------------------------------ */

static int run(int argc, char **argv) {
        CliOptions o;
        Client c = {.fd = -1};
        char err[512];
        int r;

        r = cli_parse_args(argc, argv, getenv("ASYNCTASK_SOCKET"), &o, err, sizeof(err));
        if (r < 0) {
                if (argc <= 1) {
                        fputs(usage_text, stderr);
                        return CLI_EXIT_USAGE;
                }
                print_usage_hint(err);
                return CLI_EXIT_USAGE;
        }

        switch (o.command) {
        case CLI_HELP:
                fputs(usage_text, stdout);
                return CLI_EXIT_OK;
        case CLI_VERSION:
                printf("asynctask %s\n", ASYNCTASK_VERSION);
                return CLI_EXIT_OK;
        case CLI_LOGS:
                return cmd_logs(&o);
        case CLI_SCHEDULES:
                return cmd_schedules(&o);
        case CLI_METRICS:
                if (o.http)
                        return cmd_metrics_http(&o);
                break;
        default:
                break;
        }

        /* Before connecting: systemd-analyze takes a moment, and a bad expression needs no daemon. */
        char key[TASK_KEY_BYTES_MAX + 1];
        if (o.command == CLI_SUBMIT && o.n_slot_calendars > 0) {
                r = slot_key(&o, key, sizeof(key));
                if (r != CLI_EXIT_OK)
                        return r;
                o.key = key;
        }

        r = client_connect(&c, &o);
        if (r != 0)
                return r;

        switch (o.command) {
        case CLI_SUBMIT:
                r = cmd_submit(&c, &o);
                break;
        case CLI_WAIT:
                r = cmd_wait(&c, &o);
                break;
        case CLI_DRAIN:
                r = cmd_drain(&c, &o);
                break;
        case CLI_LIST:
                r = o.has_limit ? cmd_simple(&c, &o) : cmd_list_all(&c, &o);
                break;
        default:
                r = cmd_simple(&c, &o);
                break;
        }
        client_done(&c);
        return r;
}

int main(int argc, char **argv) {
        int r = run(argc, argv);

        /* A full disk or a closed pipe must not pass for success. */
        if (fflush(stdout) != 0 || ferror(stdout)) {
                if (errno != EPIPE)
                        fprintf(stderr, "asynctask: cannot write output: %m\n");
                if (r == CLI_EXIT_OK)
                        r = CLI_EXIT_INTERNAL;
        }
        return r;
}
