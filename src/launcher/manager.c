/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "launcher/executor.h"
#include "launcher/front-link.h"
#include "launcher/launch-check.h"
#include "launcher/manager.h"
#include "launcher/run-table.h"
#include "shared/limits.h"
#include "shared/log.h"

struct Manager {
        sd_event *event;
        char *config_path;
        Config *config;

        Executor *executor;
        const char *executor_name;
        ExecutorType executor_type;
        /* The executor has reported the runs left from before (or ready_wait_usec passed). Until then
         * the run table may lack some still running: the replay to the front waits. */
        bool executor_ready;
        uint64_t ready_wait_usec;
        sd_event_source *ready_timer;

        RunTable runs;
        FrontLink *front;
        /* Sends progress held back by PROGRESS_INTERVAL_USEC; armed while some is. */
        sd_event_source *progress_timer;
};

void manager_update_status(Manager *m) {
        (void) sd_notifyf(false, "STATUS=%s%zu running, %zu result(s) awaiting acknowledgement, front %s",
                          m->executor_ready ? "" : "Looking for runs left from before; ",
                          run_table_running(&m->runs), run_table_unacknowledged(&m->runs),
                          m->front && front_link_connected(m->front) ? "connected" : "not connected");
}

/* ---- configuration ---- */

typedef struct ConfigErrors {
        unsigned n;
        char first[256];
} ConfigErrors;

static void on_config_error(const char *file, const char *key, const char *message, void *userdata) {
        ConfigErrors *e = userdata;

        log_error("%s: %s%s%s", file, key, key[0] ? ": " : "", message);
        if (e->n++ == 0)
                (void) snprintf(e->first, sizeof(e->first), "%s: %s%s%s", file, key, key[0] ? ": " : "",
                                message);
}

static int load_config(const char *path, ConfigErrors *errors, Config **ret) {
        /* The launcher acts as root on what the config says, so it reads only files that only it can
         * change: root's, or when run as another user for development, that user's. */
        int r = config_load_trusted(path, geteuid(), on_config_error, errors, ret);

        if (r < 0 && errors->n == 0) {
                /* Nothing reported (out of memory, say): say it ourselves. */
                on_config_error(path, "", strerror(-r), errors);
        }
        return r;
}

static ExecutorType effective_executor(ExecutorType t) {
        if (t == EXECUTOR_AUTO)
                return sd_booted() > 0 ? EXECUTOR_SYSTEMD : EXECUTOR_DIRECT;
        return t;
}

/* What follows from the config in effect (at start and after each reload). */
static void apply_config(Manager *m) {
        front_link_resolve_front_user(m->front);
        front_link_set_message_max(m->front, launch_message_bytes_max(m->config));
}

static void swap_config(Manager *m, Config *c) {
        if (effective_executor(c->executor) != m->executor_type)
                log_warning(
                        "The executor setting changed; it takes effect at the next start (still using %s).",
                        m->executor_name);
        if (!streq_ptr(c->launcher_socket, m->config->launcher_socket))
                log_notice("The launcher socket path changed; it takes effect at the next start.");
        /* Runs in progress keep what they were started with: executors copy what they need. */
        config_free(m->config);
        m->config = c;
        apply_config(m);
        log_info("Configuration reloaded: %zu task(s), %zu command(s).", c->n_tasks, c->n_commands);
}

int manager_reload(Manager *m, char *error, size_t error_size) {
        _cleanup_(config_freep) Config *c = NULL;
        ConfigErrors errors = {};
        int r;

        /* First, before any work: systemd on 252 otherwise races ExecReload= against us. */
        (void) sd_notify(false, "RELOADING=1\nSTATUS=Reloading configuration");
        log_info("Reloading configuration from %s.", m->config_path);

        r = load_config(m->config_path, &errors, &c);
        if (r < 0) {
                char more[48] = "";

                log_warning("Keeping the previous configuration: %u problem(s) in the new one.", errors.n);
                if (errors.n > 1)
                        (void) snprintf(more, sizeof(more), " (and %u more)", errors.n - 1);
                /* The count survives even when the first message has to be cut. */
                (void) snprintf(error, error_size, "%.*s%s", (int) (error_size - strlen(more) - 1),
                                errors.first, more);
        } else
                swap_config(m, TAKE_PTR(c));

        (void) sd_notify(false, "READY=1");
        manager_update_status(m);
        return r < 0 ? -EINVAL : 0;
}

const Config *manager_config(Manager *m) {
        return m->config;
}

sd_event *manager_event(Manager *m) {
        return m->event;
}

/* ---- the front's messages ---- */

static void send_rejected(Manager *m, uint64_t id, const char *name, const char *fmt, ...) _printf_(4, 5);
static void send_rejected(Manager *m, uint64_t id, const char *name, const char *fmt, ...) {
        char error[256];
        LauncherMsg msg = {.type = LMSG_REJECTED, .id = id, .error = error};
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(error, sizeof(error), fmt, ap);
        va_end(ap);
        log_task(LOG_WARNING, id, name, NULL, "Rejecting launch of task %" PRIu64 ": %s", id, error);
        (void) front_link_send(m->front, &msg);
}

/* A new attempt means the front has recorded the previous result. */
static void drop_previous_result(Manager *m, uint64_t id) {
        Run *run = run_table_find(&m->runs, id);

        if (!run || !run->finished)
                return;
        log_debug("Task %" PRIu64 " launched again; dropping its previous, unacknowledged result.", id);
        (void) executor_release(m->executor, id);
        run_table_remove(&m->runs, id);
}

static int start_run(Manager *m, const LauncherMsg *msg, const LaunchCheck *lc) {
        const Launch launch = {
                .id = msg->id,
                .attempt = msg->attempt,
                .def = lc->def,
                .argv = lc->argv,
                .stdin_data = msg->stdin_data,
                .stdin_len = msg->stdin_len,
                .submitter = msg->submitter,
        };
        Run *run;
        int r;

        /* In the table before the executor runs: it may report the start before returning. */
        r = run_table_add(&m->runs, msg->id, lc->def->name, lc->def->is_command, &run);
        if (r < 0)
                return r;
        r = executor_launch(m->executor, &launch);
        if (r < 0)
                run_table_remove(&m->runs, msg->id);
        return r;
}

static void reject_start_failure(Manager *m, uint64_t id, const LaunchCheck *lc, int error) {
        const TaskDef *def = lc->def;

        if (error == -EPERM && geteuid() != 0 && def->uid != geteuid())
                send_rejected(m, id, lc->name, "launcher runs as uid %u and cannot switch to user %s",
                              (unsigned) geteuid(), def->user ? def->user : "?");
        else if (error == -EPERM && geteuid() != 0)
                send_rejected(m, id, lc->name, "launcher runs as gid %u and cannot switch to group %s",
                              (unsigned) getegid(), def->group ? def->group : "?");
        else if (error == -EOPNOTSUPP && def->n_credentials > 0)
                send_rejected(
                        m, id, lc->name,
                        "cannot start: the %s executor cannot deliver the task's credentials privately "
                        "(the systemd executor can)",
                        m->executor->ops->name);
        else
                send_rejected(m, id, lc->name, "cannot start: %s", strerror(-error));
}

static void handle_launch(Manager *m, const LauncherMsg *msg) {
        _cleanup_(launch_check_done) LaunchCheck lc = {};
        int r;

        drop_previous_result(m, msg->id);
        r = launch_check(m->config, &m->runs, msg, &lc);
        if (r < 0) {
                send_rejected(m, msg->id, lc.name, "cannot check the launch: %s", strerror(-r));
                return;
        }
        if (r == 0) {
                send_rejected(m, msg->id, lc.name, "%s", lc.reason);
                return;
        }
        r = start_run(m, msg, &lc);
        if (r < 0) {
                reject_start_failure(m, msg->id, &lc, r);
                return;
        }
        log_task(LOG_INFO, msg->id, lc.name, NULL, "Launching task %" PRIu64 " (%s), attempt %u, for %s.",
                 msg->id, lc.name, msg->attempt, msg->submitter);
        manager_update_status(m);
}

static void handle_ack(Manager *m, const LauncherMsg *msg) {
        Run *run = run_table_find(&m->runs, msg->id);
        int r;

        if (!run) {
                log_debug("Front acknowledged task %" PRIu64 ", which holds no result here; ignoring.",
                          msg->id);
                return;
        }
        if (!run->finished) {
                log_debug("Front acknowledged task %" PRIu64 ", which is still running; ignoring.", msg->id);
                return;
        }
        r = executor_release(m->executor, msg->id);
        if (r < 0 && r != -ESRCH)
                log_warning_errno(r, "Cannot release task %" PRIu64 ": %m", msg->id);
        run_table_remove(&m->runs, msg->id);
        manager_update_status(m);
}

static void handle_stop(Manager *m, const LauncherMsg *msg) {
        Run *run = run_table_find(&m->runs, msg->id);
        int r;

        if (!run || run->finished) {
                log_debug("Front asked to stop task %" PRIu64 ", which is not running; ignoring.", msg->id);
                return;
        }
        log_task(LOG_INFO, msg->id, run_log_name(run), run->unit, "Stopping task %" PRIu64 ".", msg->id);
        r = executor_stop(m->executor, msg->id);
        if (r == -ESRCH)
                log_debug("The executor does not know task %" PRIu64 "; ignoring the stop.", msg->id);
        else if (r < 0)
                log_warning_errno(r, "Cannot stop task %" PRIu64 ": %m", msg->id);
}

static void handle_reload(Manager *m) {
        char error[256] = "";
        LauncherMsg reply = {.type = LMSG_RELOADED};

        if (manager_reload(m, error, sizeof(error)) < 0)
                reply.error = error[0] ? error : (char *) "invalid configuration";
        (void) front_link_send(m->front, &reply);
}

static void on_front_message(void *userdata, const LauncherMsg *msg) {
        Manager *m = userdata;

        switch (msg->type) {
        case LMSG_LAUNCH:
                handle_launch(m, msg);
                break;
        case LMSG_STOP:
                handle_stop(m, msg);
                break;
        case LMSG_ACK:
                handle_ack(m, msg);
                break;
        case LMSG_RELOAD:
                handle_reload(m);
                break;
        default:
                /* The front link passes on nothing else. */
                break;
        }
}

static void on_front_changed(void *userdata) {
        manager_update_status(userdata);
}

void manager_accept(Manager *m, int fd) {
        front_link_accept(m->front, fd);
}

/* ---- executor events ---- */

/* The run with this id, added if the executor found it left from before us. */
static Run *run_for_event(Manager *m, uint64_t id) {
        Run *run = run_table_find(&m->runs, id);

        if (!run && run_table_add(&m->runs, id, NULL, false, &run) < 0)
                return NULL;
        return run;
}

static void on_run_started(void *userdata, uint64_t id, const char *unit) {
        Manager *m = userdata;
        LauncherMsg msg = {.type = LMSG_STARTED, .id = id, .unit = (char *) unit};
        Run *run = run_for_event(m, id);

        if (!run) {
                log_error_errno(ENOMEM, "Cannot track task %" PRIu64 ": %m", id);
                return;
        }
        (void) run_table_set_unit(run, unit); /* without memory the unit stays unknown: logs only */
        log_task(LOG_INFO, id, run_log_name(run), unit, "Task %" PRIu64 " started as %s.", id, unit);
        (void) front_link_send(m->front, &msg);
        manager_update_status(m);
}

/* ---- progress: at most one message per run per PROGRESS_INTERVAL_USEC, always the latest ---- */

static void send_progress(Manager *m, Run *run, uint64_t now) {
        LauncherMsg msg = {.type = LMSG_PROGRESS, .id = run->id, .text = run->progress};

        run->progress_pending = false;
        run->progress_sent_usec = now;
        /* Without a front it is lost: the replay to the next one sends the latest with the run. */
        (void) front_link_send(m->front, &msg);
}

static void arm_progress_timer(Manager *m, uint64_t at) {
        int enabled = SD_EVENT_OFF;
        uint64_t armed = 0;

        (void) sd_event_source_get_enabled(m->progress_timer, &enabled);
        if (enabled != SD_EVENT_OFF && sd_event_source_get_time(m->progress_timer, &armed) >= 0 &&
            armed <= at)
                return;
        if (sd_event_source_set_time(m->progress_timer, at) < 0 ||
            sd_event_source_set_enabled(m->progress_timer, SD_EVENT_ONESHOT) < 0)
                log_warning(
                        "Cannot arm the progress timer; held-back progress goes out with the next update.");
}

static int on_progress_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        uint64_t next = UINT64_MAX;

        for (Run *run = run_table_next_after(&m->runs, 0); run;
             run = run_table_next_after(&m->runs, run->id)) {
                uint64_t due = run->progress_sent_usec + PROGRESS_INTERVAL_USEC;

                if (!run->progress_pending || run->finished)
                        continue;
                if (due <= usec)
                        send_progress(m, run, usec);
                else if (due < next)
                        next = due;
        }
        if (next != UINT64_MAX)
                arm_progress_timer(m, next);
        return 0;
}

static void on_run_progress(void *userdata, uint64_t id, const char *text) {
        Manager *m = userdata;
        Run *run = run_table_find(&m->runs, id);
        char *copy;
        uint64_t now;

        if (!run || run->finished || (!run->progress && !text[0]))
                return; /* an empty status before any is no news */
        copy = strdup(text);
        if (!copy || run_table_set_progress(run, copy) == 0)
                return; /* unchanged; or without memory, this update is skipped */
        log_task(LOG_DEBUG, id, run_log_name(run), run->unit, "Task %" PRIu64 " progress: %s", id, text);
        now = now_usec(CLOCK_MONOTONIC);
        if (run->progress_sent_usec == 0 || now >= run->progress_sent_usec + PROGRESS_INTERVAL_USEC)
                send_progress(m, run, now);
        else
                arm_progress_timer(m, run->progress_sent_usec + PROGRESS_INTERVAL_USEC);
}

static void log_run_finished(const Run *run, const RunResult *result) {
        const char *sep = result->error[0] ? ", " : "";

        if (result->has_exit_status)
                log_task(LOG_INFO, run->id, run_log_name(run), run->unit,
                         "Task %" PRIu64 " finished: %s, exit status %d%s%s", run->id, result->result,
                         result->exit_status, sep, result->error);
        else if (result->signal > 0)
                log_task(LOG_INFO, run->id, run_log_name(run), run->unit,
                         "Task %" PRIu64 " finished: %s, signal %s%s%s", run->id, result->result,
                         strsignal(result->signal), sep, result->error);
        else
                log_task(LOG_INFO, run->id, run_log_name(run), run->unit,
                         "Task %" PRIu64 " finished: %s%s%s", run->id, result->result, sep, result->error);
}

static void on_run_finished(void *userdata, uint64_t id, const RunResult *result) {
        Manager *m = userdata;
        LauncherMsg msg = {.type = LMSG_FINISHED, .id = id, .result = *result};
        Run *run = run_for_event(m, id);

        if (!run) {
                log_error_errno(ENOMEM, "Cannot keep the result of task %" PRIu64 ": %m", id);
                return;
        }
        /* Its last word on progress goes before its result (the rate limit held it back). */
        if (run->progress_pending)
                send_progress(m, run, now_usec(CLOCK_MONOTONIC));
        run_table_finish(&m->runs, run, result);
        log_run_finished(run, result);

        /* Kept until the front acknowledges it; without a front it is sent on reconnect. */
        (void) front_link_send(m->front, &msg);
        manager_update_status(m);
}

/* From now on the run table is complete: answer what the front asked meanwhile. */
static void set_executor_ready(Manager *m) {
        m->executor_ready = true;
        m->ready_timer = sd_event_source_disable_unref(m->ready_timer);
        front_link_set_runs_complete(m->front, true);
        manager_update_status(m);
}

static void on_executor_ready(void *userdata) {
        Manager *m = userdata;

        if (m->executor_ready) {
                log_info("The %s executor has now reported the runs left from before.", m->executor_name);
                return;
        }
        log_debug("The %s executor has reported the runs left from before.", m->executor_name);
        set_executor_ready(m);
}

static int on_executor_ready_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        log_warning("The %s executor has not reported the runs left from before within %.1f s; answering "
                    "the front anyway (a run it reports later is sent as it comes).",
                    m->executor_name, (double) m->ready_wait_usec / USEC_PER_SEC);
        set_executor_ready(m);
        return 0;
}

static const ExecutorEvents executor_events = {
        .started = on_run_started,
        .finished = on_run_finished,
        .progress = on_run_progress,
        .ready = on_executor_ready,
};

/* ---- life cycle ---- */

void manager_set_executor_ready_wait(Manager *m, uint64_t usec) {
        m->ready_wait_usec = usec;
}

bool manager_executor_ready(const Manager *m) {
        return m->executor_ready;
}

static int create_executor(Manager *m) {
        ExecutorType configured = m->config->executor;
        int r;

        m->executor_type = effective_executor(configured);
        if (m->executor_type == EXECUTOR_SYSTEMD) {
                m->executor_name = "systemd";
                r = executor_systemd_new(m->event, &executor_events, m, &m->executor);
                if (r < 0)
                        return log_error_errno(
                                r, "Cannot use the systemd executor%s: %m",
                                configured == EXECUTOR_AUTO ? " (chosen because systemd is running)" : "");
        } else {
                m->executor_name = "direct";
                r = executor_direct_new(m->event, &executor_events, m, &m->executor);
                if (r < 0)
                        return log_error_errno(r, "Cannot set up the direct executor: %m");
        }
        log_info("Using the %s executor%s.", m->executor_name,
                 configured == EXECUTOR_AUTO
                         ? (m->executor_type == EXECUTOR_SYSTEMD ? " (auto: systemd is running)"
                                                                 : " (auto: systemd is not running)")
                         : "");
        return 0;
}

int manager_start_executor(Manager *m) {
        int r;

        r = create_executor(m);
        if (r < 0)
                return r;
        if (executor_ready(m->executor))
                set_executor_ready(m);
        else {
                r = sd_event_add_time_relative(m->event, &m->ready_timer, CLOCK_MONOTONIC,
                                               m->ready_wait_usec, 0, on_executor_ready_timeout, m);
                if (r < 0)
                        return log_error_errno(r, "Cannot set up a timer: %m");
        }
        if (m->executor_type == EXECUTOR_DIRECT)
                log_notice("The direct executor does not apply sandbox settings or cpu_quota; memory_max is "
                           "applied as an address-space limit.");
        if (geteuid() != 0)
                log_notice("Not running as root: tasks can only run as uid %u; launches for other users are "
                           "rejected.",
                           (unsigned) geteuid());
        return 0;
}

int manager_new(const char *config_path, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        static const FrontLinkEvents front_events = {
                .message = on_front_message,
                .changed = on_front_changed,
        };
        ConfigErrors errors = {};
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return log_error_errno(ENOMEM, "Cannot start: %m");
        m->ready_wait_usec = EXECUTOR_READY_WAIT_USEC;
        m->config_path = strdup(config_path);
        if (!m->config_path)
                return log_error_errno(ENOMEM, "Cannot start: %m");

        r = load_config(config_path, &errors, &m->config);
        if (r < 0) {
                log_error("Cannot start with this configuration (%u problem(s)).", errors.n);
                return -EINVAL;
        }
        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Cannot create the event loop: %m");
        r = front_link_new(m->event, &m->runs, launch_message_bytes_max(m->config), &front_events, m,
                           &m->front);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the front link: %m");
        r = sd_event_add_time(m->event, &m->progress_timer, CLOCK_MONOTONIC, 0, 10 * USEC_PER_MSEC,
                              on_progress_timer, m);
        if (r < 0)
                return log_error_errno(r, "Cannot set up a timer: %m");
        (void) sd_event_source_set_enabled(m->progress_timer, SD_EVENT_OFF);
        apply_config(m);
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        size_t running;

        if (!m)
                return NULL;
        running = run_table_running(&m->runs);
        if (running > 0 && m->executor && m->executor_type == EXECUTOR_DIRECT)
                log_warning("%zu task(s) still running are left alone; their results will not be reported.",
                            running);

        if (m->front) {
                /* Answer what we can without blocking. */
                front_link_flush(m->front);
                front_link_free(m->front);
        }
        executor_free(m->executor);
        sd_event_source_disable_unref(m->ready_timer);
        sd_event_source_disable_unref(m->progress_timer);
        run_table_done(&m->runs);
        config_free(m->config);
        free(m->config_path);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}
