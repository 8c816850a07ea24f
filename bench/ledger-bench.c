/* SPDX-License-Identifier: MIT */
/*
 * Micro-benchmark of the in-memory ledger: submit, next_runnable, mark_running, mark_finished and
 * purge, in batches (the queue holds up to one batch). Not part of make check. The per-call figures
 * include one clock_gettime() each (~20 ns); "drain" is timed as a whole, without that overhead.
 *
 *   cc -O2 -std=gnu11 -D_GNU_SOURCE -iquote src -o build/ledger-bench bench/ledger-bench.c \
 *           src/front/ledger.c src/front/task-record.c src/front/task-index.c src/front/run-queue.c \
 *           src/front/task-heap.c src/front/hash-table.c src/shared/protocol.c
 *   build/ledger-bench [TOTAL [BATCH [GROUPS]]]      (defaults: 1000000 100000 16)
 */
#include <inttypes.h>

#include "front/ledger.h"
#include "shared/util.h"

static bool allow_all(const TaskRecord *t, void *ud) {
        return true;
}

static double ns_per(uint64_t usec, uint64_t n) {
        return n ? (double) usec * 1000.0 / (double) n : 0.0;
}

int main(int argc, char *argv[]) {
        uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
        uint64_t batch = argc > 2 ? strtoull(argv[2], NULL, 10) : 100000;
        unsigned groups = argc > 3 ? (unsigned) strtoul(argv[3], NULL, 10) : 16;
        uint64_t t_submit = 0, t_next = 0, t_running = 0, t_finished = 0, t_drain = 0, t_purge = 0, done = 0;
        uint64_t now = 1700000000ULL * USEC_PER_SEC, timed = 0;
        char a0[] = "in.png", a1[] = "out.png";
        char *args[] = {a0, a1};
        char **names;
        RunResult ok = {.result = "success"};
        Ledger *l = NULL;
        int r;

        if (total == 0 || batch == 0 || groups == 0) {
                fprintf(stderr, "usage: %s [TOTAL [BATCH [GROUPS]]] (all > 0)\n", argv[0]);
                return 2;
        }
        names = calloc(groups, sizeof(char *));
        if (!names)
                return 1;
        for (unsigned g = 0; g < groups; g++)
                if (asprintf(&names[g], "task-%u", g) < 0)
                        return 1;

        r = ledger_new(&l);
        if (r < 0) {
                fprintf(stderr, "ledger_new: %s\n", strerror(-r));
                return 1;
        }

        while (done < total) {
                uint64_t n = total - done < batch ? total - done : batch, t0;

                t0 = now_usec(CLOCK_MONOTONIC);
                for (uint64_t i = 0; i < n; i++) {
                        TaskSubmission sub = {
                                .task = names[(done + i) % groups],
                                .args = args,
                                .n_args = 2,
                                .submitter = "uid:33",
                                .priority = (int) ((done + i) % 7),
                                .max_attempts = 1,
                        };
                        r = ledger_submit(l, &sub, now, NULL, NULL);
                        if (r < 0) {
                                fprintf(stderr, "ledger_submit: %s\n", strerror(-r));
                                return 1;
                        }
                }
                t_submit += now_usec(CLOCK_MONOTONIC) - t0;

                /* Half the batch timed call by call, the other half as a whole. */
                for (uint64_t i = 0; i < n / 2; i++) {
                        TaskRecord *t;

                        t0 = now_usec(CLOCK_MONOTONIC);
                        t = ledger_next_runnable(l, now, allow_all, NULL);
                        t_next += now_usec(CLOCK_MONOTONIC) - t0;
                        if (!t) {
                                fprintf(stderr, "queue ran dry after %" PRIu64 " of %" PRIu64 "\n", i, n);
                                return 1;
                        }
                        t0 = now_usec(CLOCK_MONOTONIC);
                        (void) ledger_mark_running(l, t, now);
                        t_running += now_usec(CLOCK_MONOTONIC) - t0;
                        t0 = now_usec(CLOCK_MONOTONIC);
                        (void) ledger_mark_finished(l, t, &ok, now, 0);
                        t_finished += now_usec(CLOCK_MONOTONIC) - t0;
                }
                t0 = now_usec(CLOCK_MONOTONIC);
                for (uint64_t i = n / 2; i < n; i++) {
                        TaskRecord *t = ledger_next_runnable(l, now, allow_all, NULL);

                        if (!t) {
                                fprintf(stderr, "queue ran dry after %" PRIu64 " of %" PRIu64 "\n", i, n);
                                return 1;
                        }
                        (void) ledger_mark_running(l, t, now);
                        (void) ledger_mark_finished(l, t, &ok, now, 0);
                }
                t_drain += now_usec(CLOCK_MONOTONIC) - t0;
                timed += n / 2;

                now += USEC_PER_SEC;
                t0 = now_usec(CLOCK_MONOTONIC);
                (void) ledger_purge(l, now);
                t_purge += now_usec(CLOCK_MONOTONIC) - t0;
                done += n;
        }

        printf("%" PRIu64 " tasks in batches of %" PRIu64 ", %u task names\n", total, batch, groups);
        printf("  submit         %8.1f ns/op\n", ns_per(t_submit, total));
        printf("  next_runnable  %8.1f ns/op\n", ns_per(t_next, timed));
        printf("  mark_running   %8.1f ns/op\n", ns_per(t_running, timed));
        printf("  mark_finished  %8.1f ns/op\n", ns_per(t_finished, timed));
        printf("  drain          %8.1f ns/task (next_runnable + mark_running + mark_finished)\n",
               ns_per(t_drain, total - timed));
        printf("  purge          %8.1f ns/record\n", ns_per(t_purge, total));

        ledger_free(l);
        for (unsigned g = 0; g < groups; g++)
                free(names[g]);
        free(names);
        return 0;
}
