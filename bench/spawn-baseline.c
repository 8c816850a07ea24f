/* SPDX-License-Identifier: MIT */
/*
 * Baseline for the direct executor's launch rate: how many programs per second this machine starts
 * and reaps with nothing in between, posix_spawn() + waitpid() in a loop. With -j J it keeps J
 * children running at once (the launcher runs up to max_running tasks at once).
 *
 *   spawn-baseline [-n COUNT] [-j PARALLEL] [-t SECONDS] [--] [PROGRAM [ARG...]]
 *
 * PROGRAM defaults to /bin/true. Its stdin, stdout and stderr are /dev/null. Prints one JSON object:
 * {"count":N,"parallel":J,"seconds":S,"rate":R,"failed":F}. Exit status 1 if any child failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

int main(int argc, char *argv[]) {
        static char *default_argv[] = {"/bin/true", NULL};
        unsigned long count = 2000, parallel = 1;
        double limit = 60;
        int c;

        while ((c = getopt(argc, argv, "n:j:t:h")) >= 0) {
                switch (c) {
                case 'n':
                        count = strtoul(optarg, NULL, 10);
                        break;
                case 'j':
                        parallel = strtoul(optarg, NULL, 10);
                        break;
                case 't':
                        limit = strtod(optarg, NULL);
                        break;
                default:
                        fprintf(stderr,
                                "usage: %s [-n COUNT] [-j PARALLEL] [-t SECONDS] [--] [PROGRAM [ARG...]]\n",
                                argv[0]);
                        return c == 'h' ? 0 : 2;
                }
        }
        if (count == 0 || parallel == 0 || parallel > 4096 || limit <= 0) {
                fprintf(stderr, "%s: COUNT, PARALLEL and SECONDS must be positive (PARALLEL at most 4096)\n",
                        argv[0]);
                return 2;
        }
        char **child_argv = optind < argc ? argv + optind : default_argv;

        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);

        uint64_t start = now_ns(), deadline = start + (uint64_t) (limit * 1e9);
        unsigned long started = 0, done = 0, failed = 0, running = 0;
        while (done < count) {
                while (running < parallel && started < count && now_ns() < deadline) {
                        pid_t pid;
                        int r = posix_spawn(&pid, child_argv[0], &fa, NULL, child_argv, environ);
                        if (r != 0) {
                                fprintf(stderr, "posix_spawn %s: %s\n", child_argv[0], strerror(r));
                                failed++;
                                started++;
                                done++;
                                continue;
                        }
                        started++;
                        running++;
                }
                if (running == 0)
                        break;
                int status;
                pid_t pid = waitpid(-1, &status, 0);
                if (pid < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("waitpid");
                        return 1;
                }
                running--;
                done++;
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        failed++;
        }
        double secs = (double) (now_ns() - start) / 1e9;
        printf("{\"program\":\"%s\",\"count\":%lu,\"parallel\":%lu,\"seconds\":%.4f,\"rate\":%.1f,"
               "\"failed\":%lu}\n",
               child_argv[0], done, parallel, secs, secs > 0 ? (double) done / secs : 0.0, failed);
        posix_spawn_file_actions_destroy(&fa);
        return failed ? 1 : 0;
}
