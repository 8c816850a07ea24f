/* SPDX-License-Identifier: MIT */
/*
 * asynctask-launcher: the privileged half. It accepts one connection at a time, from the front only
 * (root, its own uid or the "asynctask" user), re-validates every launch against its own copy of the
 * config, runs it through an executor, and keeps each finished result until the front acknowledges
 * it, so results survive a restart of the front. A malformed message costs the connection (the front
 * reconnects), never the launcher.
 *
 * This file is the process: the command line, signals, the service manager's notifications and the
 * listening sockets around one Manager (manager.h), which does the work.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "launcher/listeners.h"
#include "launcher/manager.h"
#include "shared/daemon-cli.h"
#include "shared/log.h"
#include "shared/paths.h"
#include "shared/util.h"

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_info("Received %s, shutting down.", strsignal((int) si->ssi_signo));
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down");
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        char error[256];

        (void) manager_reload(userdata, error, sizeof(error));
        return 0;
}

/* TERM, INT and HUP are handled through the event loop, so they are blocked for normal delivery. CHLD is
 * blocked too, which does not matter to the executors (the direct one watches pidfds) and keeps it from
 * interrupting. Writing to a front that went away must be an error, not death. */
static int setup_signals(Manager *m) {
        sd_event *event = manager_event(m);
        sigset_t ss;
        int r;

        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0)
                return log_error_errno(errno, "Cannot block signals: %m");
        (void) signal(SIGPIPE, SIG_IGN);

        if ((r = sd_event_add_signal(event, NULL, SIGTERM, on_term, m)) < 0 ||
            (r = sd_event_add_signal(event, NULL, SIGINT, on_term, m)) < 0 ||
            (r = sd_event_add_signal(event, NULL, SIGHUP, on_hup, m)) < 0)
                return log_error_errno(r, "Cannot watch signals: %m");
        r = sd_event_set_watchdog(event, true);
        if (r < 0)
                log_warning_errno(r, "Cannot set up the watchdog, ignoring: %m");
        return 0;
}

static void on_accept(void *userdata, int fd) {
        manager_accept(userdata, fd);
}

static int check_config(const char *path) {
        Config *c = NULL;

        if (daemon_check_config_trusted(path, geteuid(), stderr, &c) < 0)
                return EXIT_FAILURE;
        printf("%s: OK, %zu task(s), %zu command(s)\n", path, c->n_tasks, c->n_commands);
        config_free(c);
        return EXIT_SUCCESS;
}

static void help(void) {
        printf("Usage: asynctask-launcher [OPTIONS]\n"
               "\n"
               "The privileged half of asynctask: runs the tasks the front daemon asks for, after checking\n"
               "them against its own configuration.\n"
               "\n"
               "  --config PATH       configuration file (default %s)\n"
               "  --check-config      validate the configuration and tasks.d, then exit\n"
               "  --listen unix:PATH  listen on this unix socket\n"
               "  --log-level LEVEL   debug, info, notice, warning or err (default info)\n"
               "  --help              show this help\n"
               "  --version           show the version\n"
               "\n"
               "Sockets passed by the service manager are used when present; else --listen; else the\n"
               "configuration's \"launcher\" path (default %s).\n",
               CONFIG_PATH_DEFAULT, LAUNCHER_SOCKET_DEFAULT);
}

/* The launcher listens on unix sockets only. */
static int check_args(const DaemonArgs *args) {
        for (size_t i = 0; i < args->n_listen; i++)
                if (!startswith(args->listen[i], "unix:") || args->listen[i][5] != '/') {
                        fprintf(stderr, "asynctask-launcher: --listen takes unix:/ABSOLUTE/PATH, not '%s'\n",
                                args->listen[i]);
                        return -EINVAL;
                }
        return 0;
}

static int start_failed(int r) {
        (void) sd_notifyf(false, "STATUS=Failed to start: %s", strerror(r < 0 ? -r : EINVAL));
        return EXIT_FAILURE;
}

static int run(const DaemonArgs *args) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(listeners_freep) Listeners *ls = NULL;
        int r;

        r = manager_new(args->config_path, &m);
        if (r < 0)
                return start_failed(r);
        r = setup_signals(m);
        if (r < 0)
                return start_failed(r);
        r = manager_start_executor(m);
        if (r < 0)
                return start_failed(r);
        r = listeners_new(manager_event(m), on_accept, m, &ls);
        if (r < 0)
                return start_failed(log_error_errno(r, "Cannot set up the sockets: %m"));
        r = listeners_setup(ls, args->listen, args->n_listen, manager_config(m)->launcher_socket);
        if (r < 0)
                return start_failed(r);

        (void) sd_notify(false, "READY=1");
        manager_update_status(m);
        log_info("asynctask-launcher %s ready (uid %u).", ASYNCTASK_VERSION, (unsigned) geteuid());

        r = sd_event_loop(manager_event(m));
        if (r < 0)
                return start_failed(log_error_errno(r, "Event loop failed: %m"));
        return EXIT_SUCCESS;
}

int main(int argc, char *argv[]) {
        static const DaemonCli cli = {
                .program = "asynctask-launcher",
                .version = ASYNCTASK_VERSION,
                .help = help,
                .check_args = check_args,
                .check_config = check_config,
                .run = run,
        };

        return daemon_main(&cli, argc, argv);
}
