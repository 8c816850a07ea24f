/* SPDX-License-Identifier: MIT */
/*
 * asynctask-exec HEX-PROGRAM [HEX-ARG...]
 *
 * Runs a task's program with its arguments byte for byte. The systemd executor starts a task unit
 * with this helper as ExecStart= when an argument holds a byte systemd would not keep across a
 * daemon-reload or daemon-reexec ("$", ";", "\" or a byte outside printable ASCII; src/exec-hex.h,
 * docs/systemd.md). Each argument is the lowercase hex of one element of the task's argv, the first
 * being the program's path (also its argv[0]). The helper decodes them and executes the program in
 * place: same process, environment, descriptors and sandbox. No shell; PATH is searched only for a
 * program name without "/" (the configuration only allows absolute paths).
 *
 * Any failure before the program runs (bad encoding, exec failure) is reported on stderr and ends
 * with status 203, systemd's EXIT_EXEC, as a failed exec of ExecStart= itself would.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shared/exec-hex.h"

#define EXIT_EXEC 203

static void free_args(char **args) {
        for (char **p = args; p && *p; p++)
                free(*p);
        free(args);
}

int main(int argc, char *argv[]) {
        char **args;

        if (argc < 2) {
                fprintf(stderr, "asynctask-exec: usage: asynctask-exec HEX-PROGRAM [HEX-ARG...]\n");
                return EXIT_EXEC;
        }
        args = calloc((size_t) argc, sizeof(char *));
        if (!args) {
                fprintf(stderr, "asynctask-exec: out of memory\n");
                return EXIT_EXEC;
        }
        for (int i = 1; i < argc; i++) {
                const char *error = NULL;

                args[i - 1] = exec_hex_decode(argv[i], &error);
                if (!args[i - 1]) {
                        fprintf(stderr, "asynctask-exec: argument %d: %s\n", i, error);
                        free_args(args);
                        return EXIT_EXEC;
                }
        }
        if (!args[0][0]) {
                fprintf(stderr, "asynctask-exec: the program's path is empty\n");
                free_args(args);
                return EXIT_EXEC;
        }
        if (strchr(args[0], '/'))
                execv(args[0], args);
        else
                execvp(args[0], args);
        fprintf(stderr, "asynctask-exec: cannot execute %s: %s\n", args[0], strerror(errno));
        free_args(args);
        return EXIT_EXEC;
}
