/* SPDX-License-Identifier: MIT */
/*
 * The CLI's task commands, each a request (or a few) to asynctaskd and its answer shown: submit (with
 * its --stdin-file and --slot-key), wait, list, and every one-request command.
 */

#include <fcntl.h>

#include "cli/cli-format.h"
#include "cli/cli-schedule.h"
#include "cli/task-commands.h"
#include "cli/task-wait.h"
#include "shared/calendar.h"
#include "shared/json-util.h"
#include "shared/limits.h"
#include "shared/util.h"

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

int cmd_submit(Client *c, const CliOptions *o) {
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
        if (!client_answer_u64(a.obj, "id", &id)) {
                client_answer_done(&a);
                return client_bad_answer(c, "a task id");
        }

        if (o->json)
                printf("%s\n", a.raw);
        else {
                const char *state = client_answer_str(a.obj, "state");
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

int cmd_wait(Client *c, const CliOptions *o) {
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
int cmd_simple(Client *c, const CliOptions *o) {
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

        const char *state = client_answer_str(a.obj, "state");
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
                        if (!client_answer_u64(a.obj, "retried", &n)) {
                                r = client_bad_answer(c, "a count of retried tasks");
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
                        r = client_bad_answer(c, "a list of tasks");
                        break;
                }
                cli_print_task_table(stdout, tasks, (int64_t) now_usec(CLOCK_REALTIME), true);
                break;
        }
        case CLI_STATS:
                cli_print_stats(stdout, a.obj);
                break;
        case CLI_PING: {
                const char *version = client_answer_str(a.obj, "version");
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
                const char *text = client_answer_str(a.obj, "text");
                if (!text) {
                        r = client_bad_answer(c, "the metrics text");
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

/* list without --limit: every task, a page at a time (a state may hold millions), each page asking for
 * the ids after the last one of the page before. With --json, one answer line per page. */
int cmd_list_all(Client *c, const CliOptions *o) {
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
                        r = client_bad_answer(c, "a list of tasks");
                        client_answer_done(&a);
                        return r;
                }
                cJSON_ArrayForEach (t, tasks) {
                        uint64_t id;

                        if (!client_answer_u64(t, "id", &id) || id <= page.after_id) {
                                r = client_bad_answer(c, "tasks in ascending id order");
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
int slot_key(const CliOptions *o, char *buf, size_t size) {
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
