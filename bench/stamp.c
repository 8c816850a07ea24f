/* SPDX-License-Identifier: MIT */
/*
 * A benchmark task that records when it started: appends "<ASYNCTASK_ID> <CLOCK_REALTIME ns>\n" to
 * FILE in one write (O_APPEND, so concurrent tasks do not interleave), then exits 0. The load
 * generator (loadgen --stamps FILE) matches the lines with the times it sent each submission, which
 * gives submit-to-exec latency: everything between the client's write and the task's first
 * instruction (queue, dispatch, launcher, fork/exec or PID 1 and the sandbox).
 *
 *   stamp FILE [ARG...]      (further arguments, e.g. the load generator's padding, are ignored)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char *argv[]) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        const char *id = getenv("ASYNCTASK_ID");
        if (argc < 2 || !id || strspn(id, "0123456789") != strlen(id) || !*id) {
                fprintf(stderr,
                        "usage: stamp FILE [ARG...] (run as an asynctask task: ASYNCTASK_ID must be set)\n");
                return 2;
        }
        char line[64];
        int n = snprintf(line, sizeof(line), "%s %lld\n", id,
                         (long long) ts.tv_sec * 1000000000LL + (long long) ts.tv_nsec);
        int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0 || n <= 0 || n >= (int) sizeof(line) || write(fd, line, (size_t) n) != n) {
                perror(argv[1]);
                return 1;
        }
        return close(fd) < 0 ? 1 : 0;
}
