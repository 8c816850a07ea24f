/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the service tells its owner (the daemon's main loop): counts changed, a config took effect,
 * draining began or ended. Apart from service.h so that the service's private header
 * (service-internal.h) can hold the hooks without including the public header it serves.
 */

#include <stdbool.h>

#include "shared/config.h"

typedef struct ServiceHooks {
        /* Open client connections (stats). */
        unsigned (*n_connections)(void *userdata);
        /* A reloaded config is now in effect; the previous one is freed after this returns. */
        void (*config_changed)(const Config *cfg, void *userdata);
        /* Counts may have changed (a submission): refresh STATUS=, re-check idle exit. */
        void (*changed)(void *userdata);
        /* A reload round ended (READY=1 has been sent); ok says whether the new config is in effect. */
        void (*reloaded)(bool ok, void *userdata);
        /* An admin began (drain) or ended (undrain) draining this host: keep it across a restart. */
        void (*draining_changed)(bool draining, void *userdata);
        void *userdata;
} ServiceHooks;
