/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front/hash-table.h"
#include "front/metrics.h"
#include "shared/util.h"

/* Histogram buckets, fixed so that recording a value is a short scan and the series never change.
 * Runs last from a fraction of a second to hours; queue waits from milliseconds (an idle queue) to
 * an hour (a backlog). Upper bounds in microseconds, and as printed. */
#define N_BUCKETS 14
static const uint64_t run_bounds_usec[N_BUCKETS] = {
        50000,    100000,   250000,   500000,    1000000,   2500000,    5000000,
        10000000, 30000000, 60000000, 300000000, 600000000, 1800000000, 3600000000,
};
static const char *const run_bounds_text[N_BUCKETS] = {
        "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "300", "600", "1800", "3600",
};
static const uint64_t wait_bounds_usec[N_BUCKETS] = {
        5000,    10000,   25000,    50000,    100000,    250000,    500000,
        1000000, 5000000, 10000000, 60000000, 300000000, 900000000, 3600000000,
};
static const char *const wait_bounds_text[N_BUCKETS] = {
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "5", "10", "60", "300", "900", "3600",
};

/* Distinct result words counted per task; the words are systemd's Result= values and ours (a dozen
 * or so), so more can only come from a newer launcher: those are counted as "other". */
#define RESULTS_PER_TASK_MAX 24
#define RESULT_WORD_BYTES    32

typedef struct Histogram {
        uint64_t buckets[N_BUCKETS]; /* not cumulative: values in (bound[i-1], bound[i]] */
        uint64_t count;
        uint64_t sum_usec;
} Histogram;

typedef struct ResultCount {
        char word[RESULT_WORD_BYTES];
        uint64_t count;
} ResultCount;

typedef struct TaskMetrics {
        uint64_t hash;
        Histogram wait, run;
        ResultCount results[RESULTS_PER_TASK_MAX];
        size_t n_results;
        char name[];
} TaskMetrics;

struct Metrics {
        HashKey key;
        HashTable tasks; /* TaskMetrics by name */
        uint64_t refused[_ERR_MAX];
};

static uint64_t task_metrics_hash(const void *e, const void *userdata) {
        return ((const TaskMetrics *) e)->hash;
}

int metrics_new(Metrics **ret) {
        Metrics *m = calloc(1, sizeof(*m));

        if (!m)
                return -ENOMEM;
        hash_key_init(&m->key, m);
        *ret = m;
        return 0;
}

Metrics *metrics_free(Metrics *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; m->tasks.slots && i <= m->tasks.mask; i++)
                free(m->tasks.slots[i]);
        hash_table_done(&m->tasks);
        free(m);
        return NULL;
}

static TaskMetrics *task_find(const Metrics *m, const char *name, uint64_t h) {
        const HashTable *t = &m->tasks;

        if (!t->slots)
                return NULL;
        for (size_t i = h & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
                TaskMetrics *tm = t->slots[i];
                if (tm->hash == h && streq(tm->name, name))
                        return tm;
        }
        return NULL;
}

/* The series of a task name, made on first use; NULL when out of memory (the event is not counted). */
static TaskMetrics *task_get(Metrics *m, const char *task) {
        const char *name = task ? task : METRICS_COMMAND_LABEL;
        uint64_t h = hash_string(&m->key, name, 0);
        TaskMetrics *tm = task_find(m, name, h);
        size_t len;

        if (tm)
                return tm;
        if (hash_table_reserve(&m->tasks, m->tasks.n + 1, task_metrics_hash, NULL) < 0)
                return NULL;
        len = strlen(name);
        tm = calloc(1, sizeof(*tm) + len + 1);
        if (!tm)
                return NULL;
        tm->hash = h;
        memcpy(tm->name, name, len + 1);
        hash_table_add(&m->tasks, h, tm);
        return tm;
}

int metrics_add_tasks(Metrics *m, const Config *cfg) {
        if (!m || !cfg)
                return 0;
        for (size_t i = 0; i < cfg->n_tasks; i++)
                if (!task_get(m, cfg->tasks[i].name))
                        return -ENOMEM;
        return 0;
}

static void histogram_add(Histogram *hist, const uint64_t bounds[N_BUCKETS], uint64_t usec) {
        for (size_t i = 0; i < N_BUCKETS; i++)
                if (usec <= bounds[i]) {
                        hist->buckets[i]++;
                        break;
                }
        hist->count++;
        hist->sum_usec += usec;
}

void metrics_run_started(Metrics *m, const char *task, uint64_t wait_usec) {
        TaskMetrics *tm;

        if (!m || !(tm = task_get(m, task)))
                return;
        histogram_add(&tm->wait, wait_bounds_usec, wait_usec);
}

static void result_add(TaskMetrics *tm, const char *word) {
        size_t i;

        if (!word || !word[0])
                word = "unknown";
        for (i = 0; i < tm->n_results; i++)
                if (strncmp(tm->results[i].word, word, RESULT_WORD_BYTES - 1) == 0)
                        break;
        if (i == tm->n_results) {
                if (tm->n_results >= RESULTS_PER_TASK_MAX - 1)
                        word = "other"; /* the last slot is kept for it */
                for (i = 0; i < tm->n_results; i++)
                        if (streq(tm->results[i].word, word))
                                break;
                if (i == tm->n_results) {
                        (void) snprintf(tm->results[i].word, RESULT_WORD_BYTES, "%s", word);
                        tm->n_results++;
                }
        }
        tm->results[i].count++;
}

void metrics_run_finished(Metrics *m, const char *task, const char *result, uint64_t duration_usec) {
        TaskMetrics *tm;

        if (!m || !(tm = task_get(m, task)))
                return;
        histogram_add(&tm->run, run_bounds_usec, duration_usec);
        result_add(tm, result);
}

void metrics_refused(Metrics *m, ErrorCode code) {
        if (m && code > ERR_NONE && code < _ERR_MAX)
                m->refused[code]++;
}

/* --- the text format --- */

/* A label value as the text format wants it: backslash, double quote and newline escaped. */
static void put_label_value(FILE *f, const char *s) {
        for (; *s; s++) {
                if (*s == '\\' || *s == '"')
                        fputc('\\', f);
                if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        }
}

static void put_header(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_seconds(FILE *f, uint64_t usec) {
        fprintf(f, "%llu.%06llu", (unsigned long long) (usec / USEC_PER_SEC),
                (unsigned long long) (usec % USEC_PER_SEC));
}

static void put_histogram(FILE *f, const char *name, const TaskMetrics *tm, const Histogram *hist,
                          const char *const bounds_text[N_BUCKETS]) {
        uint64_t cumulative = 0;

        for (size_t i = 0; i < N_BUCKETS; i++) {
                cumulative += hist->buckets[i];
                fprintf(f, "%s_bucket{task=\"", name);
                put_label_value(f, tm->name);
                fprintf(f, "\",le=\"%s\"} %llu\n", bounds_text[i], (unsigned long long) cumulative);
        }
        fprintf(f, "%s_bucket{task=\"", name);
        put_label_value(f, tm->name);
        fprintf(f, "\",le=\"+Inf\"} %llu\n", (unsigned long long) hist->count);
        fprintf(f, "%s_sum{task=\"", name);
        put_label_value(f, tm->name);
        fputs("\"} ", f);
        put_seconds(f, hist->sum_usec);
        fprintf(f, "\n%s_count{task=\"", name);
        put_label_value(f, tm->name);
        fprintf(f, "\"} %llu\n", (unsigned long long) hist->count);
}

static int cmp_task_name(const void *a, const void *b) {
        return strcmp((*(TaskMetrics *const *) a)->name, (*(TaskMetrics *const *) b)->name);
}

int metrics_format(const Metrics *m, const MetricsGauges *g, char **ret, size_t *ret_len) {
        _cleanup_free_ TaskMetrics **tasks = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t n_tasks = 0, len = 0;
        FILE *f;

        if (m && m->tasks.n > 0) {
                tasks = calloc(m->tasks.n, sizeof(*tasks));
                if (!tasks)
                        return -ENOMEM;
                for (size_t i = 0; i <= m->tasks.mask; i++)
                        if (m->tasks.slots[i])
                                tasks[n_tasks++] = m->tasks.slots[i];
                qsort(tasks, n_tasks, sizeof(*tasks), cmp_task_name);
        }

        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;

        put_header(f, "asynctask_tasks", "gauge", "Task records in the ledger, by state.");
        for (int s = 0; s < _TASK_STATE_MAX; s++)
                fprintf(f, "asynctask_tasks{state=\"%s\"} %llu\n", task_state_to_string(s),
                        (unsigned long long) g->tasks[s]);

        put_header(f, "asynctask_submitted_total", "counter", "Tasks accepted since the daemon started.");
        fprintf(f, "asynctask_submitted_total %llu\n", (unsigned long long) g->submitted_total);

        put_header(f, "asynctask_runs_finished_total", "counter",
                   "Runs that ended since the daemon started, by task and result (success, exit-code, "
                   "signal, timeout, lost, rejected, cancelled, ...).");
        for (size_t i = 0; i < n_tasks; i++)
                for (size_t k = 0; k < tasks[i]->n_results; k++) {
                        fputs("asynctask_runs_finished_total{task=\"", f);
                        put_label_value(f, tasks[i]->name);
                        fputs("\",result=\"", f);
                        put_label_value(f, tasks[i]->results[k].word);
                        fprintf(f, "\"} %llu\n", (unsigned long long) tasks[i]->results[k].count);
                }

        put_header(f, "asynctask_run_duration_seconds", "histogram",
                   "How long runs took, from their start to their result, by task.");
        for (size_t i = 0; i < n_tasks; i++)
                put_histogram(f, "asynctask_run_duration_seconds", tasks[i], &tasks[i]->run,
                              run_bounds_text);

        put_header(f, "asynctask_queue_wait_seconds", "histogram",
                   "How long tasks waited in the queue, from due (submitted, or retry time) to started, by "
                   "task.");
        for (size_t i = 0; i < n_tasks; i++)
                put_histogram(f, "asynctask_queue_wait_seconds", tasks[i], &tasks[i]->wait,
                              wait_bounds_text);

        put_header(f, "asynctask_oldest_queued_age_seconds", "gauge",
                   "How long the longest-waiting due task has been queued; 0 when none is.");
        fputs("asynctask_oldest_queued_age_seconds ", f);
        put_seconds(f, g->oldest_queued_age_usec);
        fputc('\n', f);

        /* An info series rather than a node label on every series: the counters are this host's
         * anyway (Prometheus tells hosts apart by instance), and a query joins the name where it
         * wants it (`* on(instance) group_left(node) asynctask_node_info`). */
        if (g->node) {
                put_header(f, "asynctask_node_info", "gauge",
                           "Always 1: this daemon's node name (the config key node).");
                fputs("asynctask_node_info{node=\"", f);
                put_label_value(f, g->node);
                fputs("\"} 1\n", f);
        }

        put_header(f, "asynctask_store_up", "gauge", "1 when the store takes writes (always, in memory).");
        fprintf(f, "asynctask_store_up %d\n", g->store_up);
        put_header(f, "asynctask_launcher_up", "gauge", "1 when the launcher is connected.");
        fprintf(f, "asynctask_launcher_up %d\n", g->launcher_up);
        put_header(f, "asynctask_connections", "gauge", "Open client connections.");
        fprintf(f, "asynctask_connections %u\n", g->connections);

        put_header(f, "asynctask_refused_total", "counter",
                   "Requests answered with an error since the daemon started, by error code.");
        for (int c = ERR_NONE + 1; c < _ERR_MAX; c++)
                fprintf(f, "asynctask_refused_total{code=\"%s\"} %llu\n", error_code_to_string(c),
                        (unsigned long long) (m ? m->refused[c] : 0));

        if (fclose(f) != 0)
                return -ENOMEM;
        *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}
