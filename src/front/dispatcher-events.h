/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the dispatcher tells its owner (the daemon). A header of its own so that the dispatcher's
 * private state (front/dispatcher-internal.h) can hold it without including front/dispatcher.h,
 * whose module includes that private header.
 */

typedef struct DispatcherEvents {
        /* Counts of queued/running tasks may have changed (STATUS=, idle exit). */
        void (*changed)(void *userdata);
        /* The launcher's list of live runs after a (re)connect has been applied. */
        void (*reconciled)(void *userdata);
} DispatcherEvents;
