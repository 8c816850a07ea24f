/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "shared/daemon-cli.h"
#include "shared/log.h"
#include "shared/util.h"

enum {
        ARG_CONFIG = 0x100,
        ARG_CHECK_CONFIG,
        ARG_LISTEN,
        ARG_LOG_LEVEL,
        ARG_VERSION,
        ARG_STATE_DIR,
};

static const struct option options[] = {
        {"config", required_argument, NULL, ARG_CONFIG},
        {"check-config", no_argument, NULL, ARG_CHECK_CONFIG},
        {"listen", required_argument, NULL, ARG_LISTEN},
        {"log-level", required_argument, NULL, ARG_LOG_LEVEL},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, ARG_VERSION},
        {"state-dir", required_argument, NULL, ARG_STATE_DIR}, /* last: left out where not taken */
        {},
};

int daemon_args_parse(const DaemonCli *cli, int argc, char *argv[], DaemonArgs *args) {
        struct option opts[ELEMENTSOF(options)];
        int c;

        *args = (DaemonArgs){.config_path = CONFIG_PATH_DEFAULT, .log_level = -1};
        memcpy(opts, options, sizeof(options));
        if (!cli->state_dir)
                opts[ELEMENTSOF(opts) - 2] = (struct option){};

        optind = 0; /* from the start, also when called again */
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (c) {
                case ARG_CONFIG:
                        args->config_path = optarg;
                        break;
                case ARG_CHECK_CONFIG:
                        args->check_config = true;
                        break;
                case ARG_LISTEN: {
                        char **p = realloc(args->listen, (args->n_listen + 1) * sizeof(*p));
                        if (!p)
                                return -ENOMEM;
                        args->listen = p;
                        args->listen[args->n_listen++] = optarg;
                        break;
                }
                case ARG_LOG_LEVEL:
                        args->log_level = log_parse_level(optarg);
                        if (args->log_level < 0) {
                                fprintf(stderr, "%s: invalid log level '%s'\n", cli->program, optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_STATE_DIR:
                        args->state_dir = optarg;
                        break;
                case 'h':
                        cli->help();
                        return 1;
                case ARG_VERSION:
                        printf("%s %s\n", cli->program, cli->version);
                        return 1;
                default:
                        fprintf(stderr, "Try '%s --help'.\n", cli->program);
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "%s: unexpected argument '%s'\nTry '%s --help'.\n", cli->program,
                        argv[optind], cli->program);
                return -EINVAL;
        }
        return 0;
}

int daemon_main(const DaemonCli *cli, int argc, char *argv[]) {
        DaemonArgs args;
        int r;

        log_open(cli->program);
        r = daemon_args_parse(cli, argc, argv, &args);
        if (r == 0 && cli->check_args)
                r = cli->check_args(&args);
        if (r != 0) {
                daemon_args_done(&args);
                return r > 0 ? EXIT_SUCCESS : 2;
        }
        if (args.log_level >= 0)
                log_set_max_level(args.log_level);

        if (args.check_config)
                r = cli->check_config(args.config_path);
        else
                r = cli->run(&args);
        daemon_args_done(&args);
        return r;
}

void daemon_args_done(DaemonArgs *args) {
        free(args->listen);
        args->listen = NULL;
        args->n_listen = 0;
}

typedef struct Printer {
        FILE *err;
        unsigned n_errors;
} Printer;

static void print_config_error(const char *file, const char *key, const char *message, void *userdata) {
        Printer *p = userdata;

        p->n_errors++;
        fprintf(p->err, "%s: %s: %s\n", file, key, message);
}

static int check_config(const char *path, const uid_t *trusted_owner, FILE *err, Config **ret) {
        Printer p = {.err = err};
        int r;

        if (trusted_owner)
                r = config_load_trusted(path, *trusted_owner, print_config_error, &p, ret);
        else
                r = config_load(path, print_config_error, &p, ret);
        if (r < 0 && p.n_errors == 0)
                /* Nothing said why (no memory, say): say it ourselves. */
                fprintf(err, "%s: : %s\n", path, strerror(-r));
        return r;
}

int daemon_check_config(const char *path, FILE *err, Config **ret) {
        return check_config(path, NULL, err, ret);
}

int daemon_check_config_trusted(const char *path, uid_t owner, FILE *err, Config **ret) {
        return check_config(path, &owner, err, ret);
}
