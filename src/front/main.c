/* SPDX-License-Identifier: MIT */
/*
 * asynctaskd: the front daemon. Takes client connections, authorizes and queues tasks, and hands
 * launches to the privileged launcher. Wires the modules together and owns the process lifecycle:
 * sockets, readiness and status notifications, reload (SIGHUP), shutdown (SIGTERM), idle exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "shared/config.h"
#include "shared/daemon-cli.h"
#include "front/cluster.h"
#include "front/dispatcher.h"
#include "front/launcher-link.h"
#include "front/mariadb.h"
#include "front/schedules.h"
#include "front/ledger.h"
#include "front/metrics.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "front/server.h"
#include "front/service.h"
#include "front/snapshot.h"
#include "front/store.h"
#include "shared/util.h"

#ifndef ASYNCTASK_VERSION
#define ASYNCTASK_VERSION "0.1.0"
#endif

/* In the state directory while this host drains (asynctask drain, until undrain). */
#define DRAIN_MARK_FILE_NAME "draining"

/* While stopping, how often to check whether everything has been flushed. */
#define SHUTDOWN_POLL_USEC (10 * USEC_PER_MSEC)

typedef struct Daemon {
        sd_event *event;
        Ledger *ledger;
        Store *store;
        LauncherLink *link;
        Dispatcher *dispatcher;
        Service *service;
        Server *server;
        Metrics *metrics;
        Cluster *cluster; /* MySQL store: this front as a node of those on the database */

        const char *drain_mark; /* the file that says this host is draining (NULL: no state directory) */
        bool serving;           /* accepting clients; READY=1 sent */
        bool stopping;          /* SIGTERM (or idle exit) began */
        bool had_conn;          /* inetd mode: the connection was set up */

        sd_event_source *startup_timer; /* gives up waiting for the launcher's run list */
        sd_event_source *check;         /* deferred: re-evaluate idle/inetd exit and status */
        sd_event_source *status_timer;  /* STATUS= at most once per STATUS_INTERVAL_USEC */
        uint64_t status_sent_usec;
        char status[160];
        sd_event_source *idle_timer;
        sd_event_source *shutdown_poll;
        uint64_t shutdown_deadline;
} Daemon;

/* --- status and lifecycle checks --- */

static void daemon_changed(void *userdata) {
        Daemon *d = userdata;

        if (d->check)
                (void) sd_event_source_set_enabled(d->check, SD_EVENT_ONESHOT);
}

static void format_status(Daemon *d, char *buf, size_t size) {
        LedgerStats st;

        ledger_stats(d->ledger, &st);
        snprintf(buf, size, "%llu running, %llu queued, %u connection%s, launcher %s%s%s",
                 (unsigned long long) st.running, (unsigned long long) st.queued,
                 server_n_connections(d->server), server_n_connections(d->server) == 1 ? "" : "s",
                 launcher_link_is_connected(d->link) ? "connected" : "disconnected",
                 dispatcher_draining(d->dispatcher) ? ", draining" : "",
                 d->stopping ? ", shutting down" : "");
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        char status[sizeof(d->status)];

        if (!d->serving)
                return 0; /* READY=1 carries the first one */
        format_status(d, status, sizeof(status));
        if (!streq(status, d->status)) {
                memcpy(d->status, status, sizeof(status));
                (void) sd_notifyf(false, "STATUS=%s", status);
        }
        d->status_sent_usec = now_usec(CLOCK_MONOTONIC);
        return 0;
}

static void schedule_status(Daemon *d) {
        int enabled = SD_EVENT_OFF;
        uint64_t at = d->status_sent_usec + STATUS_INTERVAL_USEC;

        (void) sd_event_source_get_enabled(d->status_timer, &enabled);
        if (enabled != SD_EVENT_OFF)
                return;
        (void) sd_event_source_set_time(d->status_timer, at);
        (void) sd_event_source_set_enabled(d->status_timer, SD_EVENT_ONESHOT);
}

static void daemon_begin_shutdown(Daemon *d, const char *why);

static bool daemon_idle(Daemon *d) {
        LedgerStats st;

        ledger_stats(d->ledger, &st);
        return server_n_connections(d->server) == 0 && st.queued == 0 && st.running == 0 &&
               service_n_pending(d->service) == 0 && dispatcher_n_pending_writes(d->dispatcher) == 0;
}

static int on_idle_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;

        if (daemon_idle(d))
                daemon_begin_shutdown(d, "idle");
        return 0;
}

static int on_check(sd_event_source *s, void *userdata) {
        Daemon *d = userdata;
        const Config *cfg = service_config(d->service);
        bool idle;

        schedule_status(d);
        service_running_changed(d->service);
        if (d->stopping || !d->serving)
                return 0;

        idle = daemon_idle(d);

        /* inetd style: the one connection is over and nothing it asked for is still queued or running. */
        if (server_is_inetd(d->server)) {
                if (server_n_connections(d->server) > 0)
                        d->had_conn = true;
                else if (d->had_conn && idle) {
                        daemon_begin_shutdown(d, "connection finished");
                        return 0;
                }
        }

        if (cfg->idle_exit_sec > 0) {
                int enabled = SD_EVENT_OFF;

                (void) sd_event_source_get_enabled(d->idle_timer, &enabled);
                if (idle && enabled == SD_EVENT_OFF) {
                        (void) sd_event_source_set_time_relative(d->idle_timer,
                                                                 cfg->idle_exit_sec * USEC_PER_SEC);
                        (void) sd_event_source_set_enabled(d->idle_timer, SD_EVENT_ONESHOT);
                } else if (!idle)
                        (void) sd_event_source_set_enabled(d->idle_timer, SD_EVENT_OFF);
        } else
                (void) sd_event_source_set_enabled(d->idle_timer, SD_EVENT_OFF);
        return 0;
}

/* --- startup --- */

static void daemon_start_serving(Daemon *d) {
        int r;

        if (d->serving || d->stopping)
                return;
        d->serving = true;
        d->startup_timer = sd_event_source_disable_unref(d->startup_timer);

        r = server_start(d->server);
        if (r < 0) {
                log_error_errno(r, "Cannot start serving: %m");
                (void) sd_event_exit(d->event, EXIT_FAILURE);
                return;
        }
        format_status(d, d->status, sizeof(d->status));
        (void) sd_notifyf(false, "READY=1\nSTATUS=%s", d->status);
        d->status_sent_usec = now_usec(CLOCK_MONOTONIC);
        log_info("asynctaskd %s ready.", ASYNCTASK_VERSION);
        daemon_changed(d);
}

static int on_startup_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;

        log_warning("The launcher has not listed its runs within %llu s; serving anyway.",
                    (unsigned long long) (LAUNCHER_STARTUP_WAIT_USEC / USEC_PER_SEC));
        daemon_start_serving(d);
        return 0;
}

/* --- shutdown --- */

static bool daemon_flushed(Daemon *d) {
        return server_n_connections(d->server) == 0 && service_n_pending(d->service) == 0 &&
               dispatcher_n_pending_writes(d->dispatcher) == 0 && launcher_link_pending_output(d->link) == 0;
}

static int on_shutdown_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;

        if (daemon_flushed(d)) {
                log_info("Stopped.");
                (void) sd_event_exit(d->event, EXIT_SUCCESS);
                return 0;
        }
        if (now_usec(CLOCK_MONOTONIC) >= d->shutdown_deadline) {
                log_warning(
                        "Exiting with work unflushed after %llu s: %u connection(s), %u pending answer(s), "
                        "%u store write(s), %zu byte(s) to the launcher.",
                        (unsigned long long) (SHUTDOWN_FLUSH_USEC / USEC_PER_SEC),
                        server_n_connections(d->server), service_n_pending(d->service),
                        dispatcher_n_pending_writes(d->dispatcher), launcher_link_pending_output(d->link));
                (void) sd_event_exit(d->event, EXIT_SUCCESS);
                return 0;
        }
        (void) sd_event_source_set_time_relative(s, SHUTDOWN_POLL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static void daemon_begin_shutdown(Daemon *d, const char *why) {
        int r;

        if (d->stopping)
                return;
        d->stopping = true;
        log_info("Shutting down (%s).", why);
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down");

        /* Stop taking new clients; answer what the current ones already sent; running tasks live on
         * in their own units (or in the launcher) and are reported when we are back. */
        service_shutdown(d->service);
        server_shutdown(d->server);
        store_shutdown(d->store);
        launcher_link_stop_reconnecting(d->link);
        d->startup_timer = sd_event_source_disable_unref(d->startup_timer);
        (void) sd_event_source_set_enabled(d->idle_timer, SD_EVENT_OFF);

        d->shutdown_deadline = now_usec(CLOCK_MONOTONIC) + SHUTDOWN_FLUSH_USEC;
        r = sd_event_add_time_relative(d->event, &d->shutdown_poll, CLOCK_MONOTONIC, 0, 0, on_shutdown_poll,
                                       d);
        if (r < 0) {
                log_error_errno(r, "Cannot arm the shutdown timer, exiting now: %m");
                (void) sd_event_exit(d->event, EXIT_SUCCESS);
        }
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;

        switch (si->ssi_signo) {
        case SIGHUP:
                service_reload(d->service);
                break;
        case SIGTERM:
        case SIGINT:
                daemon_begin_shutdown(d, si->ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                break;
        }
        return 0;
}

/* --- wiring --- */

static void on_link_connected(void *userdata) {
        Daemon *d = userdata;

        dispatcher_link_up(d->dispatcher);
        daemon_changed(d);
}

static void on_link_disconnected(void *userdata) {
        Daemon *d = userdata;

        dispatcher_link_down(d->dispatcher);
        service_launcher_down(d->service);
        /* Lost it before it listed its runs: serve now rather than after the startup wait. */
        daemon_start_serving(d);
        daemon_changed(d);
}

static void on_link_message(const LauncherMsg *m, void *userdata) {
        Daemon *d = userdata;

        if (m->type == LMSG_RELOADED)
                service_launcher_reloaded(d->service, m->error);
        else
                dispatcher_handle_message(d->dispatcher, m);
}

static void on_link_drained(void *userdata) {
        Daemon *d = userdata;

        dispatcher_kick(d->dispatcher);
}

static void on_reconciled(void *userdata) {
        daemon_start_serving(userdata);
}

static unsigned hook_n_connections(void *userdata) {
        Daemon *d = userdata;

        return d->server ? server_n_connections(d->server) : 0;
}

static void hook_reloaded(bool ok, void *userdata) {
        Daemon *d = userdata;

        d->status[0] = '\0'; /* the reload replaced STATUS=: send the counts again */
        daemon_changed(d);
}

/* Draining outlives a restart of the daemon (and a reboot): an admin who drained a host for a deploy
 * does not want a restart in the middle of it to start work again behind their back. */
static void hook_draining_changed(bool draining, void *userdata) {
        Daemon *d = userdata;
        int r = 0;

        if (!d->drain_mark) {
                log_warning("No state directory: %s lasts only until asynctaskd stops.",
                            draining ? "draining" : "the end of draining");
                return;
        }
        if (draining) {
                _cleanup_close_ int fd = open(d->drain_mark, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || fsync(fd) < 0)
                        r = -errno;
        } else if (unlink(d->drain_mark) < 0 && errno != ENOENT)
                r = -errno;
        if (r < 0)
                log_warning_errno(r, "Cannot %s %s, a restart will %s: %m", draining ? "create" : "remove",
                                  d->drain_mark, draining ? "take work again" : "drain again");
}

static void hook_config_changed(const Config *cfg, void *userdata) {
        Daemon *d = userdata;

        dispatcher_set_config(d->dispatcher, cfg);
        cluster_set_config(d->cluster, cfg);
        if (metrics_add_tasks(d->metrics, cfg) < 0)
                log_warning("Out of memory: the metrics of new tasks appear at their first run.");
        server_set_limits(d->server, cfg->max_connections, cfg->max_frame_bytes);
        daemon_changed(d);
}

/* --- command line --- */

/* userdata counts the errors reported, so that a failure reported by none (no memory) is still said. */
static void log_config_error(const char *file, const char *key, const char *message, void *userdata) {
        (*(unsigned *) userdata)++;
        log_error("%s: %s%s%s", file, key, key[0] ? ": " : "", message);
}

static void print_schedule_error(const char *file, const char *key, const char *message, void *userdata) {
        fprintf(stderr, "%s: %s: %s\n", file, key, message);
}

static int check_config(const char *path) {
        _cleanup_(config_freep) Config *cfg = NULL;
        int r;

        if (daemon_check_config(path, stderr, &cfg) < 0)
                return EXIT_FAILURE;
        /* The client library is loaded only for this store: a host without it learns so here. */
        if (cfg->store_type == STORE_MYSQL) {
                char err[256] = "";

                if (!mariadb_get(err, sizeof(err))) {
                        fprintf(stderr, "%s: store: the MySQL store needs the MariaDB client library: %s\n",
                                path, err);
                        return EXIT_FAILURE;
                }
        }
        /* Here, not at every load: the daemon's sandbox need not allow running systemd-analyze, and
         * ExecReload= runs --check-config before the reload. */
        r = schedules_check(cfg, now_usec(CLOCK_REALTIME), print_schedule_error, NULL);
        if (r > 0)
                return EXIT_FAILURE;
        if (r < 0)
                fprintf(stderr,
                        "%s: note: cannot run systemd-analyze (%s): the calendar expressions of "
                        "\"schedule\" "
                        "were checked for their characters only\n",
                        path, strerror(-r));
        printf("%s: OK, %zu task(s), %zu command(s), %zu PHP class mapping(s)\n", path, cfg->n_tasks,
               cfg->n_commands, cfg->n_php_classes);
        return EXIT_SUCCESS;
}

static void help(void) {
        printf("Usage: asynctaskd [OPTIONS]\n"
               "\n"
               "The asynctask front daemon: accepts task submissions on a local socket and runs them\n"
               "through the asynctask launcher.\n"
               "\n"
               "  --config PATH          configuration file (default %s)\n"
               "  --check-config         validate the configuration and tasks.d, then exit\n"
               "  --listen unix:PATH     listen on a unix socket (repeatable)\n"
               "  --listen tcp:HOST:PORT listen on TCP, e.g. tcp:127.0.0.1:9501 or tcp:[::1]:9501\n"
               "  --state-dir DIR        memory store: keep the ledger here across a clean restart\n"
               "                         (default: $STATE_DIRECTORY, set by the service manager)\n"
               "  --log-level LEVEL      debug, info, notice, warning or err (default info)\n"
               "  --help                 show this help\n"
               "  --version              show the version\n"
               "\n"
               "Sockets passed by the service manager are used when present; else the --listen\n"
               "addresses; else unix:%s.\n",
               CONFIG_PATH_DEFAULT, FRONT_SOCKET_DEFAULT);
}

/* --- main --- */

static int daemon_setup_sockets(Daemon *d, const DaemonArgs *args) {
        int r;

        r = server_take_activation_fds(d->server);
        if (r < 0)
                return log_error_errno(r, "Cannot use the sockets passed by the service manager: %m");
        if (r > 0) {
                if (server_n_listeners(d->server) == 0 && !server_is_inetd(d->server))
                        return log_error_errno(EBADF, "None of the passed sockets can be served.");
                if (args->n_listen > 0)
                        log_notice("Using the sockets passed by the service manager; ignoring --listen.");
                return 0;
        }

        for (size_t i = 0; i < args->n_listen; i++) {
                r = server_listen(d->server, args->listen[i]);
                if (r < 0)
                        return r;
        }
        if (args->n_listen == 0)
                return server_listen(d->server, "unix:" FRONT_SOCKET_DEFAULT);
        return 0;
}

static void daemon_done(Daemon *d) {
        /* Order matters: connections hold service calls; the store is stopped before the service and
         * dispatcher let go of the callbacks it might still make; the ledger goes last. */
        d->server = server_free(d->server);
        d->cluster = cluster_free(d->cluster);
        d->store = store_free(d->store);
        d->service = service_free(d->service);
        d->dispatcher = dispatcher_free(d->dispatcher);
        d->link = launcher_link_free(d->link);
        d->ledger = ledger_free(d->ledger);
        d->metrics = metrics_free(d->metrics);
        sd_event_source_disable_unref(d->startup_timer);
        sd_event_source_disable_unref(d->check);
        sd_event_source_disable_unref(d->status_timer);
        sd_event_source_disable_unref(d->idle_timer);
        sd_event_source_disable_unref(d->shutdown_poll);
        d->event = sd_event_unref(d->event);
}

/* A file of the state directory (the memory store's snapshot, the drain mark): in --state-dir, else in
 * the service manager's StateDirectory= (the first one of $STATE_DIRECTORY), else none. */
static char *state_path_for(const DaemonArgs *args, const char *name) {
        const char *dir = args->state_dir;
        _cleanup_free_ char *first = NULL;
        char *path;

        if (!dir) {
                const char *env = getenv("STATE_DIRECTORY");
                if (!env || !*env)
                        return NULL;
                first = strndup(env, strcspn(env, ":"));
                if (!first)
                        return NULL;
                dir = first;
        }
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return NULL;
        return path;
}

static int daemon_run(const DaemonArgs *args) {
        _cleanup_free_ char *snapshot_path = state_path_for(args, SNAPSHOT_FILE_NAME);
        _cleanup_free_ char *drain_mark = state_path_for(args, DRAIN_MARK_FILE_NAME);
        Daemon d = {.drain_mark = drain_mark};
        Config *cfg = NULL;
        unsigned n_errors = 0;
        sigset_t mask;
        int r;

        r = config_load(args->config_path, log_config_error, &n_errors, &cfg);
        if (r < 0) {
                if (n_errors == 0)
                        log_error_errno(r, "Cannot load %s: %m", args->config_path);
                log_error("Not starting: the configuration is invalid.");
                return EXIT_FAILURE;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
                log_error_errno(errno, "Cannot block signals: %m");
                config_free(cfg);
                return EXIT_FAILURE;
        }
        /* Writes to a vanished peer must fail with EPIPE, not kill us (send() uses MSG_NOSIGNAL too). */
        (void) signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&d.event);
        if (r < 0) {
                log_error_errno(r, "Cannot create the event loop: %m");
                config_free(cfg);
                return EXIT_FAILURE;
        }
        (void) sd_event_set_watchdog(d.event, true);
        r = sd_event_add_signal(d.event, NULL, SIGTERM, on_signal, &d);
        if (r >= 0)
                r = sd_event_add_signal(d.event, NULL, SIGINT, on_signal, &d);
        if (r >= 0)
                r = sd_event_add_signal(d.event, NULL, SIGHUP, on_signal, &d);
        if (r < 0) {
                log_error_errno(r, "Cannot watch signals: %m");
                config_free(cfg);
                goto fail;
        }

        r = ledger_new(&d.ledger);
#ifndef BENCH_WITHOUT_METRICS
        /* Only the benchmarks build a front without (bench/run, figure 1m: what collecting them costs);
         * every user of the metrics takes NULL for "not counted". */
        if (r >= 0)
                r = metrics_new(&d.metrics);
#endif
        if (r >= 0)
                r = metrics_add_tasks(d.metrics, cfg);
        if (r < 0) {
                log_error_errno(r, "Cannot create the ledger: %m");
                config_free(cfg);
                goto fail;
        }
        if (cfg->store_type == STORE_MEMORY && snapshot_path) {
                size_t skipped = 0;

                r = snapshot_load(snapshot_path, d.ledger, &skipped);
                if (r < 0) {
                        log_error_errno(r, "Cannot load the ledger saved at the last stop, %s: %m",
                                        snapshot_path);
                        config_free(cfg);
                        goto fail;
                }
                if (r > 0 || skipped > 0)
                        log_info("Loaded %d task record(s) saved at the last stop%s.", r,
                                 skipped > 0 ? " (some unreadable ones skipped)" : "");
        }
        if (cfg->store_type == STORE_MYSQL) {
                r = store_open(cfg, d.event, d.ledger, &d.store);
                if (r < 0) {
                        log_error_errno(r, "Cannot open the MySQL store: %m");
                        config_free(cfg);
                        goto fail;
                }
        }

        r = launcher_link_new(d.event, cfg->launcher_socket,
                              &(LauncherLinkEvents){
                                      .connected = on_link_connected,
                                      .disconnected = on_link_disconnected,
                                      .message = on_link_message,
                                      .drained = on_link_drained,
                              },
                              &d, &d.link);
        if (r >= 0)
                r = dispatcher_new(
                        d.event, d.ledger, d.store, d.link, cfg,
                        &(DispatcherEvents){.changed = daemon_changed, .reconciled = on_reconciled}, &d,
                        &d.dispatcher);
        if (r >= 0 && d.store)
                r = cluster_new(d.event, d.store, d.ledger, d.dispatcher, cfg, &d.cluster);
        if (r < 0) {
                log_error_errno(r, "Cannot set up the dispatcher: %m");
                config_free(cfg);
                goto fail;
        }
        r = service_new(d.event, cfg, d.ledger, d.store, d.dispatcher, d.link,
                        &(ServiceHooks){
                                .n_connections = hook_n_connections,
                                .config_changed = hook_config_changed,
                                .changed = daemon_changed,
                                .reloaded = hook_reloaded,
                                .draining_changed = hook_draining_changed,
                                .userdata = &d,
                        },
                        &d.service);
        if (r < 0) {
                log_error_errno(r, "Cannot set up the service: %m");
                config_free(cfg);
                goto fail;
        }
        cfg = NULL; /* the service owns it now */
        if (d.drain_mark && access(d.drain_mark, F_OK) == 0)
                service_restore_draining(d.service);
        dispatcher_set_metrics(d.dispatcher, d.metrics);
        service_set_metrics(d.service, d.metrics);

        r = server_new(d.event, d.service, service_config(d.service)->max_connections,
                       service_config(d.service)->max_frame_bytes,
                       &(ServerEvents){.changed = daemon_changed}, &d, &d.server);
        if (r < 0) {
                log_error_errno(r, "Cannot set up the server: %m");
                goto fail;
        }
        r = daemon_setup_sockets(&d, args);
        if (r < 0)
                goto fail;

        r = sd_event_add_defer(d.event, &d.check, on_check, &d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d.check, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(d.event, &d.status_timer, CLOCK_MONOTONIC, 0, 0, on_status_timer, &d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d.status_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(d.event, &d.idle_timer, CLOCK_MONOTONIC, 0, 0, on_idle_timer, &d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d.idle_timer, SD_EVENT_OFF);
        if (r < 0) {
                log_error_errno(r, "Cannot set up timers: %m");
                goto fail;
        }

        /* Serve once the launcher's live runs are known (so ids and running counts are right), or at once
         * if it cannot be reached: then submissions get "unavailable" until it is back. */
        r = launcher_link_start(d.link);
        if (r == 0) {
                r = sd_event_add_time_relative(d.event, &d.startup_timer, CLOCK_MONOTONIC,
                                               LAUNCHER_STARTUP_WAIT_USEC, 0, on_startup_timeout, &d);
                if (r < 0)
                        daemon_start_serving(&d);
        } else
                daemon_start_serving(&d);

        r = sd_event_loop(d.event);
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                r = EXIT_FAILURE;
        } else if (snapshot_path && !d.store) {
                int k;

                dispatcher_trim(d.dispatcher); /* the snapshot keeps the same bound */
                k = snapshot_save(d.ledger, snapshot_path);
                /* A failed save exits non-zero, so that the service manager shows the stop as failed
                 * and the admin learns of the lost tasks from systemctl status, not only the log. */
                if (k < 0) {
                        log_error_errno(k, "Cannot save the ledger to %s, queued tasks are lost: %m",
                                        snapshot_path);
                        r = EXIT_FAILURE;
                } else
                        log_info("Saved %d task record(s) for the next start.", k);
        }
        daemon_done(&d);
        return r;

fail:
        (void) sd_notifyf(false, "STATUS=Failed to start: %s", strerror(-r));
        daemon_done(&d);
        return EXIT_FAILURE;
}

int main(int argc, char *argv[]) {
        static const DaemonCli cli = {
                .program = "asynctaskd",
                .version = ASYNCTASK_VERSION,
                .help = help,
                .state_dir = true,
                .check_config = check_config,
                .run = daemon_run,
        };

        return daemon_main(&cli, argc, argv);
}
