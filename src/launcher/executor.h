/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Executors run task launches inside the launcher. Each is asynchronous and driven by the
 * launcher's sd-event loop; results come back through ExecutorEvents. Two exist: "direct"
 * (a child process of the launcher with the same semantics, for hosts without systemd) and "systemd"
 * (one transient unit per run, over D-Bus).
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "shared/config.h"
#include "shared/run-result.h"

typedef struct Launch {
        uint64_t id;
        unsigned attempt;
        const TaskDef *def;     /* validated by the launcher against its own config */
        char *const *argv;      /* def->exec + client args (or /bin/sh -c CMD), NULL-terminated */
        const char *stdin_data; /* or NULL */
        size_t stdin_len;
        const char *submitter;
} Launch;

typedef struct ExecutorEvents {
        /* The run has started; unit is "asynctask-<id>.service" (systemd) or "pid:<pid>" (direct). */
        void (*started)(void *userdata, uint64_t id, const char *unit);
        /* The run has ended (or could not start: result "resources" with error set). */
        void (*finished)(void *userdata, uint64_t id, const RunResult *r);
        /* The run's task reported progress: its STATUS= text (progress-text.h), maybe the same as
         * before. The launcher rate-limits what it passes on. May be NULL. */
        void (*progress)(void *userdata, uint64_t id, const char *text);
        /* Every run left from before has been reported (started or finished), so what the launcher
         * knows of its runs is complete from now on. Called once, from the event loop, by an executor
         * that looks for such runs; see executor_ready(). May be NULL. */
        void (*ready)(void *userdata);
} ExecutorEvents;

typedef struct Executor Executor;

typedef struct ExecutorOps {
        const char *name;
        /* Starts a run. A negative return means nothing was started (no event will follow). */
        int (*launch)(Executor *x, const Launch *l);
        /* Stops a run (cancel): TERM, then KILL after a grace period; finished follows with
         * result "cancelled" unless it had already ended. -ESRCH if unknown. */
        int (*stop)(Executor *x, uint64_t id);
        /* The front recorded the result: drop whatever still holds it (e.g. the unit). */
        int (*release)(Executor *x, uint64_t id);
        Executor *(*free)(Executor *x);
        /* Whether the runs left from before have all been reported (ExecutorEvents.ready). NULL: the
         * executor finds none, so it is ready from creation (direct). */
        bool (*ready)(Executor *x);
        /* Whether it delivers a task's "credentials" privately (systemd: LoadCredential=). */
        bool delivers_credentials;
} ExecutorOps;

struct Executor {
        const ExecutorOps *ops;
};

int executor_direct_new(sd_event *event, const ExecutorEvents *events, void *userdata, Executor **ret);
/* Connects to the system bus; reports runs it finds left from before (asynctask-*.service) through
 * events once the listing completes, then ready. */
int executor_systemd_new(sd_event *event, const ExecutorEvents *events, void *userdata, Executor **ret);
/* The same on a bus the caller connected and attached to event (tests: a fake PID 1). */
int executor_systemd_new_with_bus(sd_event *event, sd_bus *bus, const ExecutorEvents *events, void *userdata,
                                  Executor **ret);

/* A task with credentials is refused (-EOPNOTSUPP) by an executor that cannot deliver them: run
 * without its secrets, it would fail in ways harder to understand, or fall back to worse places. */
static inline int executor_launch(Executor *x, const Launch *l) {
        if (l && l->def && l->def->n_credentials > 0 && !x->ops->delivers_credentials)
                return -EOPNOTSUPP;
        return x->ops->launch(x, l);
}
static inline int executor_stop(Executor *x, uint64_t id) {
        return x->ops->stop(x, id);
}
static inline int executor_release(Executor *x, uint64_t id) {
        return x->ops->release(x, id);
}
static inline bool executor_ready(Executor *x) {
        return !x->ops->ready || x->ops->ready(x);
}
static inline Executor *executor_free(Executor *x) {
        return x ? x->ops->free(x) : NULL;
}
