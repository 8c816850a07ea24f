/* SPDX-License-Identifier: MIT */
/*
 * asynctask-generator: a systemd generator (systemd.generator(7)), run by PID 1 at boot and at every
 * `systemctl daemon-reload`. It turns each scheduled task of SYSCONFDIR/asynctask/tasks.d into a timer
 * and a oneshot service in the directory given as its first argument (generator/generator.h). As a
 * generator must: quick, no network, no user lookups, no daemons, writes nothing but that directory,
 * logs to /dev/kmsg. A bad task file costs its own timer only, and the exit status is 0 so that boot
 * does not wait on us; only an output directory that cannot be written to fails the run.
 */
#include <fcntl.h>
#include <stdio.h>
#include <syslog.h>

#include "generator/generator.h"
#include "shared/util.h"

#define TASKS_DIR SYSCONFDIR "/asynctask/tasks.d"
#define CLI_PATH  BINDIR "/asynctask"

/* "<PRIORITY>asynctask-generator: MESSAGE" to /dev/kmsg, where PID 1's own messages at boot go; stderr
 * when it cannot be opened (a container, a test). userdata is the kmsg fd or -1. */
static void log_kmsg(int priority, const char *message, void *userdata) {
        int fd = *(int *) userdata;
        char line[1200];
        int n = snprintf(line, sizeof(line), "<%d>asynctask-generator: %s\n", priority, message);

        if (fd >= 0 && n > 0 &&
            write(fd, line, (size_t) n < sizeof(line) ? (size_t) n : sizeof(line) - 1) >= 0)
                return;
        fprintf(stderr, "asynctask-generator: %s\n", message);
}

int main(int argc, char **argv) {
        _cleanup_close_ int kmsg = -1;
        int r;

        if (argc != 2 && argc != 4) {
                fprintf(stderr,
                        "Usage: %s NORMAL_DIR [EARLY_DIR LATE_DIR]\n"
                        "A systemd generator: writes a timer and a service for each scheduled task of %s.\n",
                        argv[0], TASKS_DIR);
                return EXIT_FAILURE;
        }
        /* Timers belong to the system that boots from the initrd, not to the initrd. */
        if (streq_ptr(getenv("SYSTEMD_IN_INITRD"), "1"))
                return EXIT_SUCCESS;

        kmsg = open("/dev/kmsg", O_WRONLY | O_NOCTTY | O_CLOEXEC);
        Generator g = {
                .tasks_dir = TASKS_DIR,
                .output_dir = argv[1],
                .cli_path = CLI_PATH,
                .owner = geteuid(),
                .log = log_kmsg,
                .userdata = &kmsg,
        };
        r = generator_run(&g);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
