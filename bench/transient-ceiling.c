/* SPDX-License-Identifier: MIT */
/*
 * The practical ceiling of launches under systemd: one bus connection pipelining StartTransientUnit
 * calls for /bin/true services, at most WINDOW calls in flight (dbus-daemon allows 128 pending calls
 * per connection), until COUNT units have started and exited. Nothing else: no queue, no checks, no
 * results kept. With -s the units get the same sandbox properties asynctask gives a task by default, so
 * the cost of the sandbox itself can be told apart from asynctask's own.
 *
 *   transient-ceiling [-n COUNT] [-w WINDOW] [-s] [-u USER]
 *
 * Prints one JSON object: count, seconds until the last unit was gone (started, exited and collected),
 * seconds until the last start job finished, and the rates. Needs a booted systemd and root.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#define PREFIX "bench-ceiling-"

typedef struct State {
        sd_bus *bus;
        unsigned long count, window, sent, replied, started, gone, failed;
        bool sandbox;
        const char *user;
        uint64_t start, last_started, last_gone;
        unsigned pid_tag;
} State;

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static bool ours(const char *unit) {
        return unit && strncmp(unit, PREFIX, strlen(PREFIX)) == 0;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *e) {
        State *s = userdata;
        uint32_t id;
        const char *path, *unit, *result;
        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0 || !ours(unit))
                return 0;
        s->started++;
        s->last_started = now_ns();
        if (strcmp(result, "done") != 0)
                s->failed++;
        return 0;
}

static int on_unit_removed(sd_bus_message *m, void *userdata, sd_bus_error *e) {
        State *s = userdata;
        const char *unit, *path;
        if (sd_bus_message_read(m, "so", &unit, &path) < 0 || !ours(unit))
                return 0;
        s->gone++;
        s->last_gone = now_ns();
        return 0;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *e) {
        State *s = userdata;
        s->replied++;
        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *err = sd_bus_message_get_error(m);
                fprintf(stderr, "StartTransientUnit: %s\n", err && err->message ? err->message : "error");
                s->failed++;
                /* a unit never created will neither start nor go */
                s->started++;
                s->gone++;
        }
        return 0;
}

#define APPEND(m, name, sig, ...) sd_bus_message_append(m, "(sv)", name, sig, __VA_ARGS__)

static int send_one(State *s) {
        sd_bus_message *m = NULL;
        char name[96];
        int k;

        snprintf(name, sizeof(name), PREFIX "%u-%lu.service", s->pid_tag, s->sent);
        k = sd_bus_message_new_method_call(s->bus, &m, "org.freedesktop.systemd1",
                                           "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                                           "StartTransientUnit");
        if (k < 0)
                return k;
        if ((k = sd_bus_message_append(m, "ss", name, "fail")) < 0 ||
            (k = sd_bus_message_open_container(m, 'a', "(sv)")) < 0 ||
            (k = APPEND(m, "ExecStart", "a(sasb)", 1, "/bin/true", 1, "/bin/true", 0)) < 0 ||
            (k = APPEND(m, "CollectMode", "s", "inactive-or-failed")) < 0)
                goto out;
        if (s->user && (k = APPEND(m, "User", "s", s->user)) < 0)
                goto out;
        if (s->sandbox &&
            ((k = APPEND(m, "ProtectSystem", "s", "strict")) < 0 ||
             (k = APPEND(m, "ProtectHome", "s", "true")) < 0 || (k = APPEND(m, "PrivateTmp", "b", 1)) < 0 ||
             (k = APPEND(m, "PrivateDevices", "b", 1)) < 0 ||
             (k = APPEND(m, "NoNewPrivileges", "b", 1)) < 0 ||
             (k = APPEND(m, "ProtectKernelTunables", "b", 1)) < 0 ||
             (k = APPEND(m, "ProtectKernelModules", "b", 1)) < 0 ||
             (k = APPEND(m, "ProtectKernelLogs", "b", 1)) < 0 ||
             (k = APPEND(m, "ProtectControlGroups", "b", 1)) < 0 ||
             (k = APPEND(m, "ProtectClock", "b", 1)) < 0 || (k = APPEND(m, "ProtectHostname", "b", 1)) < 0 ||
             (k = APPEND(m, "RestrictSUIDSGID", "b", 1)) < 0 ||
             (k = APPEND(m, "RestrictRealtime", "b", 1)) < 0 ||
             (k = APPEND(m, "LockPersonality", "b", 1)) < 0 ||
             (k = APPEND(m, "RestrictNamespaces", "t", (uint64_t) 0)) < 0 ||
             (k = APPEND(m, "SystemCallArchitectures", "as", 1, "native")) < 0))
                goto out;
        if ((k = sd_bus_message_close_container(m)) < 0 ||
            (k = sd_bus_message_append(m, "a(sa(sv))", 0)) < 0)
                goto out;
        k = sd_bus_call_async(s->bus, NULL, m, on_reply, s, 0);
        if (k >= 0)
                s->sent++;
out:
        sd_bus_message_unref(m);
        return k;
}

int main(int argc, char *argv[]) {
        State s = {.count = 500, .window = 64, .pid_tag = (unsigned) getpid()};
        double limit = 120;
        int c, k;

        while ((c = getopt(argc, argv, "n:w:su:t:h")) >= 0) {
                switch (c) {
                case 'n':
                        s.count = strtoul(optarg, NULL, 10);
                        break;
                case 'w':
                        s.window = strtoul(optarg, NULL, 10);
                        break;
                case 's':
                        s.sandbox = true;
                        break;
                case 'u':
                        s.user = optarg;
                        break;
                case 't':
                        limit = strtod(optarg, NULL);
                        break;
                default:
                        fprintf(stderr, "usage: %s [-n COUNT] [-w WINDOW] [-s] [-u USER] [-t SECONDS]\n",
                                argv[0]);
                        return c == 'h' ? 0 : 2;
                }
        }
        if (s.count == 0 || s.window == 0 || s.window > 120) {
                fprintf(stderr, "%s: COUNT > 0 and 0 < WINDOW <= 120 (dbus-daemon's pending call limit)\n",
                        argv[0]);
                return 2;
        }

        k = sd_bus_open_system(&s.bus);
        if (k < 0) {
                fprintf(stderr, "system bus: %s\n", strerror(-k));
                return 1;
        }
        /* Signals first, then Subscribe: systemd sends JobRemoved and UnitRemoved only to subscribers. */
        k = sd_bus_match_signal(s.bus, NULL, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                "org.freedesktop.systemd1.Manager", "JobRemoved", on_job_removed, &s);
        if (k >= 0)
                k = sd_bus_match_signal(s.bus, NULL, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                        "org.freedesktop.systemd1.Manager", "UnitRemoved", on_unit_removed,
                                        &s);
        if (k >= 0)
                k = sd_bus_call_method(s.bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "Subscribe", NULL, NULL, "");
        if (k < 0) {
                fprintf(stderr, "subscribing to systemd: %s\n", strerror(-k));
                return 1;
        }

        s.start = now_ns();
        uint64_t deadline = s.start + (uint64_t) (limit * 1e9);
        while (s.gone < s.count || s.started < s.count) {
                while (s.sent < s.count && s.sent - s.replied < s.window) {
                        k = send_one(&s);
                        if (k < 0) {
                                fprintf(stderr, "sending StartTransientUnit: %s\n", strerror(-k));
                                return 1;
                        }
                }
                k = sd_bus_process(s.bus, NULL);
                if (k < 0) {
                        fprintf(stderr, "bus: %s\n", strerror(-k));
                        return 1;
                }
                if (k > 0)
                        continue;
                if (now_ns() > deadline) {
                        fprintf(stderr, "timed out: %lu started, %lu gone of %lu\n", s.started, s.gone,
                                s.count);
                        break;
                }
                (void) sd_bus_wait(s.bus, 100 * 1000);
        }
        double gone_s = s.last_gone ? (double) (s.last_gone - s.start) / 1e9 : 0;
        double started_s = s.last_started ? (double) (s.last_started - s.start) / 1e9 : 0;
        printf("{\"count\":%lu,\"window\":%lu,\"sandbox\":%s,\"started\":%lu,\"gone\":%lu,\"failed\":%lu,"
               "\"seconds\":%.4f,\"rate\":%.1f,\"started_seconds\":%.4f,\"start_rate\":%.1f}\n",
               s.count, s.window, s.sandbox ? "true" : "false", s.started, s.gone, s.failed, gone_s,
               gone_s > 0 ? (double) s.gone / gone_s : 0.0, started_s,
               started_s > 0 ? (double) s.started / started_s : 0.0);
        sd_bus_flush_close_unref(s.bus);
        return s.failed || s.gone < s.count ? 1 : 0;
}
