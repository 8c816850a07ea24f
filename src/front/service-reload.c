/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "front/schedules.h"
#include "front/service-reload.h"
#include "front/user-cache.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/message-ids.h"
#include "shared/lproto.h"
#include "shared/util.h"

struct ServiceReload {
        sd_event *event;
        LauncherLink *link;
        ServiceCalls *calls;
        ServiceReloadOps ops;
        void *userdata;

        bool active;
        bool again;     /* requested during the round under way */
        bool stopped;   /* the daemon stops: no more rounds */
        unsigned round; /* the round running (or last run) */
        Config *cfg;    /* loaded and valid, waiting for the launcher */
        sd_event_source *timer;
        sd_event_source *request; /* deferred start of a round */
        ErrorReply error;         /* why the current round failed */
        unsigned n_errors;
};

static const Config *current(const ServiceReload *r) {
        return r->ops.current(r->userdata);
}

static void config_error(const char *file, const char *key, const char *message, void *userdata) {
        ServiceReload *r = userdata;

        log_error("%s: %s%s%s", file, key, key[0] ? ": " : "", message);
        if (r->n_errors++ == 0)
                error_reply_set(&r->error, ERR_BAD_REQUEST, "%s: %s%s%s", file, key, key[0] ? ": " : "",
                                message);
}

static void warn_restart_needed(const Config *old, const Config *new) {
        if (!streq_ptr(old->launcher_socket, new->launcher_socket))
                log_warning("\"launcher\" changed to %s; the front keeps using %s until it is restarted.",
                            new->launcher_socket, old->launcher_socket);
        if (old->store_type != new->store_type ||
            !streq_ptr(old->store_option_file, new->store_option_file) ||
            !streq_ptr(old->store_group, new->store_group))
                log_warning("\"store\" changed; the new store settings take effect after a restart.");
}

static void reload_finish(ServiceReload *r, bool ok) {
        unsigned round = r->round;
        const Config *cfg;

        r->timer = sd_event_source_disable_unref(r->timer);
        r->cfg = config_free(r->cfg);
        r->active = false;

        cfg = current(r);
        if (ok)
                log_info("Configuration reloaded from %s: %zu task(s), %zu command(s).", cfg->path,
                         cfg->n_tasks, cfg->n_commands);
        else
                log_event(LOG_ERR, MESSAGE_ID_RELOAD_FAILED,
                          "Reload failed, keeping the previous configuration: %s", r->error.message);
        (void) sd_notifyf(false, "READY=1\nSTATUS=%s", ok ? "Configuration reloaded" : "Reload failed");
        if (r->ops.finished)
                r->ops.finished(ok, r->userdata);

        service_calls_reload_done(r->calls, round, ok ? NULL : &r->error);

        if (r->again && !r->stopped) {
                r->again = false;
                (void) sd_event_source_set_enabled(r->request, SD_EVENT_ONESHOT);
        }
}

static void reload_apply(ServiceReload *r) {
        warn_restart_needed(current(r), r->cfg);
        schedules_log_changes(current(r), r->cfg);
        r->ops.apply(TAKE_PTR(r->cfg), r->userdata);
        reload_finish(r, true);
}

static int on_launcher_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        ServiceReload *r = userdata;

        error_reply_set(&r->error, ERR_UNAVAILABLE,
                        "the launcher did not confirm the reload within %llu s; the old configuration stays",
                        (unsigned long long) (RELOAD_LAUNCHER_TIMEOUT_USEC / USEC_PER_SEC));
        reload_finish(r, false);
        return 0;
}

/* Reads the config file again into r->cfg. On failure r->error says why (the first error, and how many
 * more there were). */
static int reload_read(ServiceReload *r) {
        const char *path = current(r)->path;
        int k;

        /* Users and groups are read afresh at a reload, those of the peers too. */
        user_cache_clear();
        k = config_load(path, config_error, r, &r->cfg);
        if (k >= 0)
                return 0;
        if (r->n_errors == 0)
                error_reply_set(&r->error, ERR_BAD_REQUEST, "cannot load %s: %s", path, strerror(-k));
        else if (r->n_errors > 1) {
                size_t len = strlen(r->error.message);
                snprintf(r->error.message + len, sizeof(r->error.message) - len, " (and %u more)",
                         r->n_errors - 1);
        }
        return k;
}

/* The launcher checks launches against its own copy of the config: make it re-read too, and swap ours
 * only once it has. A launcher that is not connected reads it fresh when it starts. */
static void reload_ask_launcher(ServiceReload *r) {
        LauncherMsg m = {.type = LMSG_RELOAD};
        int k;

        if (!launcher_link_is_connected(r->link)) {
                log_info("Launcher not connected; it reads the new configuration when it connects.");
                reload_apply(r);
                return;
        }
        k = launcher_link_send(r->link, &m);
        if (k < 0) {
                if (!launcher_link_is_connected(r->link)) {
                        reload_apply(r);
                        return;
                }
                error_reply_set(&r->error, ERR_INTERNAL, "cannot ask the launcher to reload: %s",
                                strerror(-k));
                reload_finish(r, false);
                return;
        }
        k = sd_event_add_time_relative(r->event, &r->timer, CLOCK_MONOTONIC, RELOAD_LAUNCHER_TIMEOUT_USEC, 0,
                                       on_launcher_timeout, r);
        if (k < 0) {
                error_reply_set(&r->error, ERR_INTERNAL, "cannot arm the reload timer: %s", strerror(-k));
                reload_finish(r, false);
        }
}

static void reload_start(ServiceReload *r) {
        /* First, so that the service manager knows a reload is under way before anything can fail. */
        (void) sd_notifyf(false, "RELOADING=1\nSTATUS=Reloading configuration\nMONOTONIC_USEC=%llu",
                          (unsigned long long) now_usec(CLOCK_MONOTONIC));
        r->active = true;
        r->round++;
        r->n_errors = 0;
        r->error = (ErrorReply){.code = ERR_BAD_REQUEST};
        log_info("Reloading configuration from %s.", current(r)->path);

        if (reload_read(r) < 0) {
                reload_finish(r, false);
                return;
        }
        reload_ask_launcher(r);
}

static int on_request(sd_event_source *source, void *userdata) {
        ServiceReload *r = userdata;

        if (!r->active && !r->stopped)
                reload_start(r);
        return 0;
}

int service_reload_new(sd_event *event, LauncherLink *link, ServiceCalls *calls, const ServiceReloadOps *ops,
                       void *userdata, ServiceReload **ret) {
        ServiceReload *r = calloc(1, sizeof(*r));
        int k;

        if (!r)
                return -ENOMEM;
        r->event = sd_event_ref(event);
        r->link = link;
        r->calls = calls;
        r->ops = *ops;
        r->userdata = userdata;
        k = sd_event_add_defer(event, &r->request, on_request, r);
        if (k >= 0)
                k = sd_event_source_set_enabled(r->request, SD_EVENT_OFF);
        if (k < 0) {
                service_reload_free(r);
                return k;
        }
        *ret = r;
        return 0;
}

ServiceReload *service_reload_free(ServiceReload *r) {
        if (!r)
                return NULL;
        sd_event_source_disable_unref(r->timer);
        sd_event_source_disable_unref(r->request);
        config_free(r->cfg);
        sd_event_unref(r->event);
        free(r);
        return NULL;
}

void service_reload_request(ServiceReload *r) {
        if (r->stopped)
                return;
        if (r->active) {
                r->again = true;
                return;
        }
        /* From the event loop, never inside the request that asked: a reload that fails at once must
         * still answer its callers asynchronously, as service_handle() promised. */
        (void) sd_event_source_set_enabled(r->request, SD_EVENT_ONESHOT);
}

unsigned service_reload_next_round(const ServiceReload *r) {
        return r->round + 1;
}

void service_reload_launcher_answered(ServiceReload *r, const char *error) {
        if (!r->active || !r->cfg) {
                log_debug("Launcher reports a reload nobody asked for; ignoring.");
                return;
        }
        if (error) {
                error_reply_set(&r->error, ERR_BAD_REQUEST, "the launcher refused the new configuration: %s",
                                error);
                reload_finish(r, false);
                return;
        }
        reload_apply(r);
}

void service_reload_launcher_down(ServiceReload *r) {
        /* It re-reads the config when it starts again, so the reload stands. */
        if (r->active && r->cfg) {
                log_info("Launcher disconnected during the reload; it reads the new configuration when it "
                         "connects.");
                reload_apply(r);
        }
}

void service_reload_shutdown(ServiceReload *r) {
        r->stopped = true;
        r->again = false;
        if (r->active) {
                error_reply_set(&r->error, ERR_UNAVAILABLE, "the daemon is shutting down");
                reload_finish(r, false);
        }
}
