/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the two daemons' command lines share: the options --config PATH, --check-config,
 * --listen ADDRESS (repeatable), --log-level LEVEL, --help and --version (asynctaskd also takes
 * --state-dir DIR), with the same messages for bad usage, and --check-config's listing of the
 * configuration's problems. Each daemon keeps its help text, what it accepts as a --listen address, and
 * its one-line summary of a valid configuration.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "shared/config.h"

typedef struct DaemonArgs {
        const char *config_path; /* default CONFIG_PATH_DEFAULT */
        bool check_config;
        char **listen; /* the --listen values in order, pointing into argv */
        size_t n_listen;
        int log_level;         /* -1: not given */
        const char *state_dir; /* --state-dir, where the program takes it; else NULL */
} DaemonArgs;

typedef struct DaemonCli {
        const char *program; /* for messages and the log: "asynctaskd" */
        const char *version; /* for --version */
        void (*help)(void);  /* prints the usage to stdout */
        bool state_dir;      /* accepts --state-dir */
        /* Optional: the program's own checks of the parsed arguments; a negative errno is a usage error
         * (explained on stderr). */
        int (*check_args)(const DaemonArgs *args);
        /* --check-config: returns the exit status. */
        int (*check_config)(const char *path);
        /* Otherwise: runs the daemon, returns the exit status. */
        int (*run)(const DaemonArgs *args);
} DaemonCli;

/* The daemons' main(): opens the log as cli->program, parses the command line (exit status 2 for a
 * usage error, 0 after --help or --version), applies --log-level, then calls check_config() or
 * run(). */
int daemon_main(const DaemonCli *cli, int argc, char *argv[]);

/* Parses argv into *args (which it initializes); cli->check_args is not called. Returns 0 to go on; 1 when
 * the program should exit successfully (--help or --version, already printed); or -EINVAL for a usage error
 * (explained on stderr; exit status 2), -ENOMEM. Free args with daemon_args_done() in every case. */
int daemon_args_parse(const DaemonCli *cli, int argc, char *argv[], DaemonArgs *args);
void daemon_args_done(DaemonArgs *args);

/* --check-config: loads path as config_load() does, printing each problem to err as
 * "FILE: KEY: MESSAGE" (a failure with no problem reported, such as running out of memory, as
 * "PATH: : MESSAGE"). Returns 0 and *ret, or config_load()'s error. */
int daemon_check_config(const char *path, FILE *err, Config **ret);
/* The same with config_load_trusted(). */
int daemon_check_config_trusted(const char *path, uid_t owner, FILE *err, Config **ret);
