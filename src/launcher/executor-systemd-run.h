/* SPDX-License-Identifier: MIT */
#pragma once

/* The systemd executor's run record and the calls between its files: executor-systemd.c (the run
 * list, the listing at creation, the executor's ops), executor-systemd-watch.c (reading a unit's
 * state), executor-systemd-start.c (starting and relaunching) and executor-systemd-stop.c (stopping
 * and releasing). Not for use outside them. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "launcher/bus-call.h"
#include "launcher/executor.h"
#include "launcher/unit-name.h"
#include "launcher/unit-properties.h"

#define SYSTEMD_UNIT_PREFIX "/org/freedesktop/systemd1/unit"

/* A release and a new launch of the same id can overlap: the old unit is still being collected
 * when the new start arrives (UnitExists). Retry that many times, this far apart. */
#define UNIT_EXISTS_RETRIES    40
#define UNIT_EXISTS_RETRY_USEC (50 * USEC_PER_MSEC)

/* A unit whose child could not enter its cgroup (219/CGROUP: PID 1's own race shortly after a
 * daemon-reexec) never ran its program: it is reset and started again, at most that many times, this
 * long after (unit_result_start_transient()). Not an attempt of the task's. */
#define CGROUP_RELAUNCHES_MAX      3
#define CGROUP_RELAUNCH_DELAY_USEC (1 * USEC_PER_SEC)

typedef enum RunState {
        RUN_STARTING,   /* StartTransientUnit in flight */
        RUN_RECOVERING, /* found at creation, first GetAll in flight; nothing reported yet */
        RUN_RUNNING,    /* started reported */
        RUN_FINISHED,   /* finished reported; unit kept until release() */
        RUN_RELEASING,  /* StopUnit/ResetFailedUnit in flight; invisible to lookups */
} RunState;

typedef struct SystemdExecutor SystemdExecutor;

typedef struct Run {
        SystemdExecutor *x;
        struct Run *prev, *next;
        uint64_t id;
        RunState state;
        char unit[UNIT_NAME_SIZE];
        char *path;

        /* Kept until the program is known to have run (or the run ended), to send again. */
        sd_bus_message *start_msg;
        int stdin_fd; /* the launch's stdin, a sealed memfd, as long; or -1 */
        bool start_msg_sent;
        unsigned start_retries;
        unsigned relaunches;   /* starts again after 219/CGROUP */
        bool start_unanswered; /* PID 1 left the bus before answering a start: the unit may exist */
        sd_event_source *retry_timer;

        BusCall *call;      /* start / stop / reset in flight or queued */
        BusCall *getall;    /* GetAll in flight or queued */
        bool refresh_again; /* something changed while GetAll was in flight */

        char *start_job;           /* object path of the start job */
        char start_job_result[32]; /* from JobRemoved: "done", "failed", ... ("" unknown) */
        bool stop_requested;
        bool stop_sent;
        UnitProps props; /* updated from PropertiesChanged payloads and GetAll replies */
} Run;

struct SystemdExecutor {
        Executor base;
        sd_event *event;
        sd_bus *bus;
        ExecutorEvents events;
        void *userdata;
        sd_bus_slot *job_removed_slot;
        sd_bus_slot *properties_slot;
        BusCall *list_call;
        bool listing;          /* ListUnitsByPatterns not answered yet */
        unsigned n_recovering; /* runs in RUN_RECOVERING */
        bool ready;            /* both done: ready reported */
        BusCallQueue calls;
        Run *runs;
};

Run *systemd_run_find(SystemdExecutor *x, uint64_t id);
/* Whether an earlier run of id is still being released: its unit, not one of ours, may answer to
 * the name until then. */
bool systemd_run_releasing(SystemdExecutor *x, uint64_t id);
/* The start is answered, or given up: what it took to send it again goes. */
void systemd_run_start_done(Run *run);
Run *systemd_run_free(Run *run);
int systemd_run_new(SystemdExecutor *x, uint64_t id, RunState state, Run **ret);
void systemd_run_report_finished(Run *run, const RunResult *result);
void systemd_run_report_start_failure(Run *run, const char *message);
/* Ready once the listing is answered and every unit it found has been reported. */
void systemd_executor_check_ready(SystemdExecutor *x);

/* executor-systemd-watch.c */
/* Re-reads the unit's properties; at most one call in flight. */
void systemd_run_refresh(Run *run);
int systemd_on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
int systemd_on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

/* executor-systemd-start.c */
/* The unit failed before its program ran, for a reason of PID 1's own (219/CGROUP): back to
 * starting, as a fresh unit of the same name with the same properties and stdin. The launcher still
 * sees the run as running; a stop meanwhile ends it as cancelled. */
int systemd_run_relaunch(Run *run);
int systemd_launch(Executor *e, const Launch *l);

/* executor-systemd-stop.c */
int systemd_run_send_stop(Run *run);
int systemd_stop(Executor *e, uint64_t id);
int systemd_release(Executor *e, uint64_t id);
