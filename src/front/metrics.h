/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The front's metrics: counters and histograms kept as things happen (runs started and finished per
 * task name, requests refused per error code), and the Prometheus text exposition of them together
 * with the gauges read at scrape time (tasks per state, oldest queued task, store, launcher,
 * connections). Memory only; each event costs a hash lookup and a few additions, so that keeping
 * them costs nothing measurable. Every function accepts a NULL Metrics and then does nothing.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/config.h"
#include "shared/protocol.h"
#include "shared/util.h"

/* The label value of raw commands, which have no task name (no task name can contain parentheses). */
#define METRICS_COMMAND_LABEL "(command)"

typedef struct Metrics Metrics;

int metrics_new(Metrics **ret);
Metrics *metrics_free(Metrics *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Metrics *, metrics_free);

/* Every task of cfg gets its series now, at zero, so that a rate over them is defined before its
 * first run. Series of tasks a reload removed stay (counters since start do not go back). -ENOMEM. */
int metrics_add_tasks(Metrics *m, const Config *cfg);

/* A run starts; task NULL for a raw command. wait_usec: how long it was queued and due. */
void metrics_run_started(Metrics *m, const char *task, uint64_t wait_usec);
/* A run ended with the result word (success, exit-code, lost, ...); duration_usec since it started. */
void metrics_run_finished(Metrics *m, const char *task, const char *result, uint64_t duration_usec);
/* A request was answered with an error. */
void metrics_refused(Metrics *m, ErrorCode code);

/* What is read at scrape time rather than counted. */
typedef struct MetricsGauges {
        uint64_t tasks[_TASK_STATE_MAX]; /* records in the ledger, by state */
        uint64_t submitted_total;        /* tasks accepted since start */
        uint64_t oldest_queued_age_usec; /* 0 when nothing queued is due */
        bool store_up, launcher_up;
        unsigned connections;
        const char *node; /* the config's node name: asynctask_node_info{node} */
} MetricsGauges;

/* The Prometheus text exposition format (version 0.0.4) of m and g, NUL-terminated, in *ret (the
 * caller frees it) with its length. -ENOMEM. */
int metrics_format(const Metrics *m, const MetricsGauges *g, char **ret, size_t *ret_len);
