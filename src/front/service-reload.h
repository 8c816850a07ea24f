/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Reloading the configuration (SIGHUP and the reload op), one round at a time: RELOADING=1, read and
 * check the config file again, have the launcher re-read its copy, and only then put the new config in
 * effect; READY=1 at the end either way. A request during a round is served by the next round. The
 * reload calls of a round (service-call.h) are answered when it ends.
 */

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "front/launcher-link.h"
#include "front/service-call.h"
#include "shared/config.h"

typedef struct ServiceReload ServiceReload;

typedef struct ServiceReloadOps {
        /* The config in effect: its file is read again, and the new one compared with it. */
        const Config *(*current)(void *userdata);
        /* A new config, valid and read by the launcher too: ownership passes, the callee puts it in
         * effect (current() returns it from now on). */
        void (*apply)(Config *cfg, void *userdata);
        /* A round ended and READY=1 is sent; its calls are answered right after. ok: the new config
         * is in effect. */
        void (*finished)(bool ok, void *userdata);
} ServiceReloadOps;

/* calls is where the reload calls wait; it outlives the ServiceReload. */
int service_reload_new(sd_event *event, LauncherLink *link, ServiceCalls *calls, const ServiceReloadOps *ops,
                       void *userdata, ServiceReload **ret);
ServiceReload *service_reload_free(ServiceReload *r);

/* Asks for a round: started from the event loop (never inside the request that asked), or after the
 * one under way. Nothing after service_reload_shutdown(). */
void service_reload_request(ServiceReload *r);
/* The round a reload call made now belongs to. */
unsigned service_reload_next_round(const ServiceReload *r);

/* The launcher's answer to its reload; error NULL means it reloaded fine. */
void service_reload_launcher_answered(ServiceReload *r, const char *error);
/* The launcher link dropped: a round waiting for the launcher goes on without it. */
void service_reload_launcher_down(ServiceReload *r);

/* The daemon stops: a round under way fails, and no other starts. */
void service_reload_shutdown(ServiceReload *r);
