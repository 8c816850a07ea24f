/* SPDX-License-Identifier: MIT */
/*
 * Retention: finished records older than retention_days leave the ledger, and their rows the store,
 * shortly after start and then hourly. Separate from the core because it runs on its own timer and
 * touches the queue only through the ledger's and the store's purge calls.
 */
#include <errno.h>
#include <stdlib.h>
#include <systemd/sd-event.h>

#include "front/dispatcher-internal.h"
#include "front/dispatcher.h"
#include "front/store-sql.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/util.h"

/* The store's purge in progress: its steps, and what they deleted. */
typedef struct PurgeRun {
        struct Dispatcher *dispatcher; /* NULL once the dispatcher is gone */
        uint64_t before;
        uint64_t rows;
        unsigned steps;
} PurgeRun;

static void purge_step(Dispatcher *d);

/* A step of the store's purge is committed: another if it deleted a full batch (rows are left). */
static void purge_step_done(int error, uint64_t rows, void *userdata) {
        PurgeRun *p = userdata;
        Dispatcher *d = p->dispatcher;

        if (!d) { /* the dispatcher is gone */
                free(p);
                return;
        }
        d->purge_run = NULL;
        if (error < 0 && error != -ECANCELED) /* cancelled: the store is closing */
                log_warning_errno(error, "Purging old records from the store failed: %m");
        p->rows += rows;
        if (error >= 0 && rows >= STORE_SQL_PURGE_ROWS) {
                d->purge_run = p;
                purge_step(d);
                return;
        }
        if (p->rows > 0)
                log_info("Purged %llu finished row(s) older than %u day(s) from the store, in %u step(s).",
                         (unsigned long long) p->rows, d->cfg->retention_days, p->steps);
        free(p);
}

static void purge_step(Dispatcher *d) {
        PurgeRun *p = d->purge_run;
        int r;

        p->steps++;
        r = store_purge(d->store, p->before, purge_step_done, p);
        if (r < 0) {
                log_warning_errno(r, "Cannot purge old records from the store: %m");
                d->purge_run = NULL;
                free(p);
        }
}

static int on_purge(sd_event_source *s, uint64_t usec, void *userdata) {
        Dispatcher *d = userdata;
        uint64_t now = now_usec(CLOCK_REALTIME);
        uint64_t keep = (uint64_t) d->cfg->retention_days * 24 * 3600 * USEC_PER_SEC;
        uint64_t before = now > keep ? now - keep : 0;
        size_t n;

        n = ledger_purge(d->ledger, before);
        if (n > 0) {
                log_info("Purged %zu finished record(s) older than %u day(s).", n, d->cfg->retention_days);
                dispatcher_changed(d);
        }
        /* In the background, a bounded batch a step; a run still going (a huge backlog) goes on. */
        if (d->store && d->purges_store && !d->purge_run) {
                d->purge_run = calloc(1, sizeof(PurgeRun));
                if (d->purge_run) {
                        d->purge_run->dispatcher = d;
                        d->purge_run->before = before;
                        purge_step(d);
                }
        }

        (void) sd_event_source_set_time_relative(s, PURGE_INTERVAL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

int dispatcher_purge_start(Dispatcher *d) {
        /* First purge shortly after start (a daemon that was down for days catches up), then hourly. */
        return sd_event_add_time_relative(d->event, &d->purge, CLOCK_MONOTONIC, 2 * USEC_PER_SEC,
                                          USEC_PER_SEC, on_purge, d);
}

void dispatcher_purge_stop(Dispatcher *d) {
        if (d->purge_run)
                d->purge_run->dispatcher = NULL;
        d->purge = sd_event_source_disable_unref(d->purge);
}
