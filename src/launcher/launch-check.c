/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/launch-check.h"
#include "shared/limits.h"
#include "shared/util.h"

/* A string of n bytes as cJSON prints it at worst: every byte as \u00XX, and the quotes. */
#define JSON_STRING_BYTES_MAX(n) (6 * (size_t) (n) + 2)

static int reject(LaunchCheck *lc, const char *fmt, ...) _printf_(2, 3);
static int reject(LaunchCheck *lc, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(lc->reason, sizeof(lc->reason), fmt, ap);
        va_end(ap);
        return 0;
}

/* The config's entry for the task or command asked for. */
static int find_entry(const Config *c, const LauncherMsg *m, LaunchCheck *lc) {
        if (m->task) {
                lc->name = m->task;
                lc->def = config_find_task(c, m->task);
                if (!lc->def)
                        return reject(lc, "no task named '%s' in the launcher's configuration", m->task);
                lc->name = lc->def->name;
                return 1;
        }
        lc->def = config_find_command(c, m->cmd);
        if (!lc->def || !lc->def->is_command) {
                lc->def = NULL;
                return reject(lc, "the command is not on the launcher's commands list");
        }
        lc->name = "command";
        return 1;
}

/* What the message carries, against the entry and the config. */
static int check_payload(const Config *c, const LauncherMsg *m, LaunchCheck *lc) {
        const TaskDef *def = lc->def;

        if (def->is_command && m->n_args > 0)
                return reject(lc, "commands take no arguments");
        /* The front refuses these too; checked here so that a compromised front cannot feed a listed
         * shell command input it was never reviewed with. Empty input is input all the same. */
        if (def->is_command && m->stdin_data)
                return reject(lc, "commands take no standard input");
        if (m->n_args > def->max_args)
                return reject(lc, "task '%s' takes at most %u argument(s), got %zu", lc->name, def->max_args,
                              m->n_args);
        for (size_t i = 0; i < m->n_args; i++)
                if (strlen(m->args[i]) > TASK_ARG_BYTES_MAX)
                        return reject(lc, "argument %zu is longer than %d bytes", i + 1, TASK_ARG_BYTES_MAX);
        /* The front takes stdin from one client frame, so more is not from a working front. */
        if (m->stdin_len > c->max_frame_bytes)
                return reject(lc, "stdin of %zu bytes is over max_frame_bytes (%zu)", m->stdin_len,
                              c->max_frame_bytes);
        if (!def->is_command && (def->n_exec == 0 || !def->exec || !def->exec[0]))
                return reject(lc, "task '%s' has no command line", lc->name);
        return 1;
}

/* Runs at once, of all tasks and of this one, and results held for the front. */
static int check_load(const Config *c, const RunTable *runs, LaunchCheck *lc) {
        const TaskDef *def = lc->def;
        size_t running = run_table_running(runs), max_running = c->max_running, held, held_max;

        if (max_running > RUNNING_MAX)
                max_running = RUNNING_MAX;
        if (running >= max_running)
                return reject(lc, "the launcher already runs %zu task(s), max_running is %zu", running,
                              max_running);
        if (def->concurrency > 0) {
                size_t n = run_table_running_task(runs, def->name, def->is_command);

                if (n >= def->concurrency && def->is_command)
                        return reject(lc, "the command already runs %zu time(s), its concurrency is %u", n,
                                      def->concurrency);
                if (n >= def->concurrency)
                        return reject(lc, "task '%s' already runs %zu time(s), its concurrency is %u",
                                      def->name, n, def->concurrency);
        }
        held = run_table_unacknowledged(runs);
        held_max = launch_unacknowledged_max(c);
        if (held >= held_max)
                return reject(lc, "too many unacknowledged results (%zu, at most %zu)", held, held_max);
        return 1;
}

/* argv comes from the config; client arguments only ever follow it, as separate elements. */
static int build_argv(const LauncherMsg *m, LaunchCheck *lc) {
        const TaskDef *def = lc->def;
        size_t n = 0;

        if (def->is_command) {
                lc->argv = calloc(4, sizeof(char *));
                if (!lc->argv)
                        return -ENOMEM;
                lc->argv[n++] = (char *) "/bin/sh";
                lc->argv[n++] = (char *) "-c";
                lc->argv[n++] = def->name;
        } else {
                lc->argv = calloc(def->n_exec + m->n_args + 1, sizeof(char *));
                if (!lc->argv)
                        return -ENOMEM;
                for (size_t i = 0; i < def->n_exec; i++)
                        lc->argv[n++] = def->exec[i];
                for (size_t i = 0; i < m->n_args; i++)
                        lc->argv[n++] = m->args[i];
        }
        lc->argv[n] = NULL;
        return 1;
}

int launch_check(const Config *c, const RunTable *runs, const LauncherMsg *m, LaunchCheck *ret) {
        LaunchCheck *lc = ret;
        const Run *run;
        int r;

        *lc = (LaunchCheck){};
        if (!c || !runs || !m || m->type != LMSG_LAUNCH || (!m->task == !m->cmd))
                return -EINVAL;

        run = run_table_find(runs, m->id);
        if (run && !run->finished) {
                lc->name = run_log_name(run);
                return reject(lc, "task %" PRIu64 " is already running", m->id);
        }

        r = find_entry(c, m, lc);
        if (r <= 0)
                return r;
        r = check_payload(c, m, lc);
        if (r <= 0)
                return r;
        r = check_load(c, runs, lc);
        if (r <= 0)
                return r;
        return build_argv(m, lc);
}

void launch_check_done(LaunchCheck *lc) {
        if (!lc)
                return;
        free(lc->argv);
        lc->argv = NULL;
}

size_t launch_message_bytes_max(const Config *c) {
        size_t max_args = 0, longest_command = 0, stdin_b64, args, command, total;

        for (size_t i = 0; i < c->n_tasks; i++)
                if (c->tasks[i].max_args > max_args)
                        max_args = c->tasks[i].max_args;
        if (max_args > TASK_ARGS_MAX)
                max_args = TASK_ARGS_MAX;
        for (size_t i = 0; i < c->n_commands; i++) {
                size_t n = c->commands[i].name ? strlen(c->commands[i].name) : 0;
                if (n > longest_command)
                        longest_command = n;
        }

        /* stdin comes from one client frame; a launch has args or a command, never both. */
        stdin_b64 = (c->max_frame_bytes + 2) / 3 * 4;
        args = max_args * (JSON_STRING_BYTES_MAX(TASK_ARG_BYTES_MAX) + 1); /* and a comma each */
        command = JSON_STRING_BYTES_MAX(longest_command);
        total = LAUNCHER_MSG_ENVELOPE_BYTES + stdin_b64 + (args > command ? args : command);
        return total < LAUNCHER_MSG_BYTES_MAX ? total : LAUNCHER_MSG_BYTES_MAX;
}

size_t launch_unacknowledged_max(const Config *c) {
        size_t max_running = c->max_running > 0 ? c->max_running : 1;

        return max_running * UNACKED_RESULTS_PER_RUNNING;
}
