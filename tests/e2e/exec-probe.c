/* SPDX-License-Identifier: MIT */
/*
 * exec-probe: drives the systemd executor on its own, without the daemons, inside the booted test
 * container. It launches one or more runs of a task described on the command line and prints every
 * event as one line:
 *   started <id> <unit>
 *   finished <id> <result> exit=<n|-> signal=<n> cpu_usec=<n> memory_peak=<n> error=<text>
 *   ready                      (every unit left from before has been reported)
 * With --recover it launches nothing and prints what the executor finds left from before.
 *
 *   exec-probe [--id N] [--count N] [--user U] [--group G] [--timeout S] [--memory-max BYTES]
 *              [--cpu-quota PCT] [--nice N] [--stdin TEXT] [--env K=V]... [--protect-system V]
 *              [--rw-path P]... [--stop-after-ms MS] [--keep] [--recover MS] -- ARGV...
 * --keep leaves finished units loaded (no release), as after a launcher crash.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-event.h>

#include "launcher/executor.h"
#include "shared/log.h"

static unsigned outstanding;
static bool keep;
static Executor *executor;

static int on_exit_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        return sd_event_exit(userdata, 0);
}

static void on_started(void *userdata, uint64_t id, const char *unit) {
        printf("started %" PRIu64 " %s\n", id, unit);
        fflush(stdout);
}

static void on_finished(void *userdata, uint64_t id, const RunResult *r) {
        char exit_status[16] = "-";

        if (r->has_exit_status)
                snprintf(exit_status, sizeof(exit_status), "%d", r->exit_status);
        printf("finished %" PRIu64 " %s exit=%s signal=%d cpu_usec=%llu memory_peak=%llu error=%s\n", id,
               r->result, exit_status, r->signal, r->cpu_usec, r->memory_peak, r->error);
        fflush(stdout);
        if (!keep)
                (void) executor_release(executor, id);
        /* After the last one, give the releases a moment to reach PID 1 before exiting. */
        if (outstanding > 0 && --outstanding == 0)
                (void) sd_event_add_time_relative(userdata, NULL, CLOCK_MONOTONIC, 500 * 1000, 0,
                                                  on_exit_timer, userdata);
}

static void on_ready(void *userdata) {
        printf("ready\n");
        fflush(stdout);
}

static int on_stop_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        uint64_t *ids = userdata;

        for (uint64_t id = ids[0]; id < ids[0] + ids[1]; id++) {
                int r = executor_stop(executor, id);
                printf("stop %" PRIu64 " -> %d\n", id, r);
        }
        fflush(stdout);
        return 0;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"id", required_argument, NULL, 'i'},
                {"count", required_argument, NULL, 'c'},
                {"user", required_argument, NULL, 'u'},
                {"group", required_argument, NULL, 'g'},
                {"timeout", required_argument, NULL, 't'},
                {"memory-max", required_argument, NULL, 'm'},
                {"cpu-quota", required_argument, NULL, 'q'},
                {"nice", required_argument, NULL, 'n'},
                {"stdin", required_argument, NULL, 's'},
                {"env", required_argument, NULL, 'e'},
                {"protect-system", required_argument, NULL, 'p'},
                {"rw-path", required_argument, NULL, 'w'},
                {"stop-after-ms", required_argument, NULL, 'S'},
                {"keep", no_argument, NULL, 'k'},
                {"recover", required_argument, NULL, 'R'},
                {"name", required_argument, NULL, 'N'},
                {"workdir", required_argument, NULL, 'W'},
                {},
        };
        static char *env[16], *rw[16];
        size_t n_env = 0, n_rw = 0;
        TaskDef def = {
                .name = "probe",
                .user = "nobody",
                .sandbox = {.protect_system = "strict",
                            .protect_home = "true",
                            .private_tmp = true,
                            .private_devices = true,
                            .no_new_privileges = true},
        };
        uint64_t first_id = 1, count = 1, stop_after_ms = 0, recover_ms = 0;
        const char *stdin_data = NULL;
        sd_event *event = NULL;
        ExecutorEvents events = {.started = on_started, .finished = on_finished, .ready = on_ready};
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 'i':
                        first_id = strtoull(optarg, NULL, 10);
                        break;
                case 'c':
                        count = strtoull(optarg, NULL, 10);
                        break;
                case 'u':
                        def.user = optarg;
                        break;
                case 'g':
                        def.group = optarg;
                        break;
                case 't':
                        def.timeout_sec = strtoull(optarg, NULL, 10);
                        break;
                case 'm':
                        def.memory_max = strtoull(optarg, NULL, 10);
                        break;
                case 'q':
                        def.cpu_quota = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'n':
                        def.nice = atoi(optarg), def.has_nice = true;
                        break;
                case 's':
                        stdin_data = optarg;
                        break;
                case 'e':
                        if (n_env < 15)
                                env[n_env++] = optarg;
                        break;
                case 'p':
                        def.sandbox.protect_system = optarg;
                        break;
                case 'w':
                        if (n_rw < 15)
                                rw[n_rw++] = optarg;
                        break;
                case 'S':
                        stop_after_ms = strtoull(optarg, NULL, 10);
                        break;
                case 'k':
                        keep = true;
                        break;
                case 'R':
                        recover_ms = strtoull(optarg, NULL, 10);
                        break;
                case 'N':
                        def.name = optarg;
                        break;
                case 'W':
                        def.working_directory = optarg;
                        break;
                default:
                        return 2;
                }
        }
        def.environment = env;
        def.n_environment = n_env;
        def.sandbox.read_write_paths = rw;
        def.sandbox.n_read_write_paths = n_rw;
        if (!recover_ms && optind >= argc) {
                fprintf(stderr, "exec-probe: no command given\n");
                return 2;
        }
        log_open("exec-probe");

        r = sd_event_default(&event);
        if (r < 0)
                return 1;
        r = executor_systemd_new(event, &events, event, &executor);
        if (r < 0) {
                fprintf(stderr, "exec-probe: executor_systemd_new: %s\n", strerror(-r));
                return 1;
        }

        if (recover_ms) {
                r = sd_event_add_time_relative(event, NULL, CLOCK_MONOTONIC, recover_ms * 1000, 0,
                                               on_exit_timer, event);
        } else {
                for (uint64_t id = first_id; id < first_id + count; id++) {
                        Launch l = {.id = id,
                                    .attempt = 1,
                                    .def = &def,
                                    .argv = argv + optind,
                                    .stdin_data = stdin_data,
                                    .stdin_len = stdin_data ? strlen(stdin_data) : 0,
                                    .submitter = "uid:0"};
                        r = executor_launch(executor, &l);
                        printf("launch %" PRIu64 " -> %d\n", id, r);
                        if (r >= 0)
                                outstanding++;
                }
                fflush(stdout);
                if (outstanding == 0)
                        return 1;
                static uint64_t ids[2];
                ids[0] = first_id, ids[1] = count;
                if (stop_after_ms)
                        (void) sd_event_add_time_relative(event, NULL, CLOCK_MONOTONIC, stop_after_ms * 1000,
                                                          0, on_stop_timer, ids);
        }
        r = sd_event_loop(event);
        /* Let the releases go out. */
        executor = executor_free(executor);
        sd_event_unref(event);
        return r < 0 ? 1 : r;
}
