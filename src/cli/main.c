/* SPDX-License-Identifier: MIT */
/*
 * asynctask: the command-line client. Parses the command line (cli-args), sends one JSON request
 * line per step to asynctaskd over its unix socket or TCP, and shows the answers (cli-format).
 * `logs` reads the journal through journalctl instead. This file holds the usage text and the
 * dispatch; the commands are in task-commands.c and admin-commands.c, the wait in task-wait.c.
 */

#include "cli/admin-commands.h"
#include "cli/cli-args.h"
#include "cli/cli-format.h"
#include "cli/client.h"
#include "cli/task-commands.h"
#include "shared/limits.h"
#include "shared/util.h"

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
