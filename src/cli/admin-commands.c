/* SPDX-License-Identifier: MIT */
/*
 * The CLI's commands for the host's operator rather than for one task: drain (and its wait), logs
 * (the journal through journalctl, no daemon), schedules (the timers on this host, no daemon) and
 * metrics --http (one scrape relayed on standard input and output).
 */

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "cli/admin-commands.h"
#include "cli/cli-format.h"
#include "cli/cli-http.h"
#include "cli/cli-schedule.h"
#include "cli/task-wait.h"
#include "shared/json-util.h"
#include "shared/limits.h"
#include "shared/util.h"

extern char **environ;

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* drain: this host starts no new runs; waits (in steps of at most WAIT_SEC_MAX, as wait does) until
 * its running tasks are over, the timeout passes (CLI_EXIT_TIMEOUT), or an undrain ends the drain
 * (CLI_EXIT_TASK_FAILED). */
int cmd_drain(Client *c, const CliOptions *o) {
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
                if (!cJSON_IsBool(draining) || !client_answer_u64(a.obj, "running", &running)) {
                        client_answer_done(&a);
                        return client_bad_answer(c, "the drain's state");
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

int cmd_logs(const CliOptions *o) {
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

int cmd_schedules(const CliOptions *o) {
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
int cmd_metrics_http(const CliOptions *o) {
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
                body = r == 0 ? client_answer_str(a.obj, "text") : NULL;
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
