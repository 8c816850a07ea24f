/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <syslog.h>

#include "generator/generator.h"
#include "shared/config.h"
#include "shared/json-reader.h"
#include "shared/json-util.h"
#include "shared/limits.h"
#include "shared/util.h"

#define WANTS_DIR "timers.target.wants"

_printf_(3, 4) static void say(const Generator *g, int priority, const char *fmt, ...) {
        char message[1024];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
        /* One line per message: what a task file says may have anything in it. */
        for (char *p = message; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
        if (g->log)
                g->log(priority, message, g->userdata);
}

/* ---- unit text --------------------------------------------------------------------------------- */

char *generator_exec_word(const char *s) {
        char *buf = malloc(4 * strlen(s) + 3), *o = buf;

        if (!buf)
                return NULL;
        *o++ = '"';
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '\\' || *p == '"') {
                        *o++ = '\\';
                        *o++ = (char) *p;
                } else if (*p == '%' || *p == '$') {
                        *o++ = (char) *p;
                        *o++ = (char) *p;
                } else if (*p < 0x20 || *p == 0x7f)
                        o += sprintf(o, "\\x%02x", *p);
                else
                        *o++ = (char) *p;
        }
        *o++ = '"';
        *o = '\0';
        return buf;
}

/* A path in a setting where systemd expands specifiers (SourcePath=): '%' doubled. The file names
 * reaching here have no control characters. */
static void put_path(FILE *f, const char *path) {
        for (const char *p = path; *p; p++) {
                if (*p == '%')
                        fputc('%', f);
                fputc(*p, f);
        }
}

static void put_head(FILE *f, const TaskDef *t) {
        fputs("# Written by asynctask-generator from ", f);
        put_path(f, t->source);
        fputs(" at boot and at \"systemctl daemon-reload\":\n"
              "# edit that file, then run \"systemctl daemon-reload\".\n",
              f);
}

static char *finish_text(FILE *f, char **buf) {
        bool ok = !ferror(f);

        if (fclose(f) != 0 || !ok) {
                free(*buf);
                return NULL;
        }
        return *buf;
}

char *generator_timer_text(const TaskDef *t) {
        const TaskSchedule *sch = &t->schedule;
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        put_head(f, t);
        fprintf(f,
                "[Unit]\nDescription=Schedule of asynctask task %s\nDocumentation=man:asynctask.json(5)\n",
                t->name);
        fputs("SourcePath=", f);
        put_path(f, t->source);
        fputs("\n\n[Timer]\n", f);
        for (size_t i = 0; i < sch->n_calendars; i++)
                fprintf(f, "OnCalendar=%s\n", sch->calendars[i]);
        /* Not systemd's default minute: a run must start before the next slot of its schedule. */
        fprintf(f, "AccuracySec=%ds\n", SCHEDULE_ACCURACY_SEC);
        if (sch->randomized_delay_sec > 0)
                fprintf(f, "RandomizedDelaySec=%llu\n", (unsigned long long) sch->randomized_delay_sec);
        if (sch->persistent)
                fputs("Persistent=true\n", f);
        return finish_text(f, &buf);
}

static bool put_word(FILE *f, const char *s) {
        _cleanup_free_ char *w = generator_exec_word(s);

        if (!w)
                return false;
        fprintf(f, " %s", w);
        return true;
}

char *generator_service_text(const TaskDef *t, const char *cli_path) {
        const TaskSchedule *sch = &t->schedule;
        char *buf = NULL;
        size_t size = 0;
        bool ok = true;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        put_head(f, t);
        fprintf(f,
                "[Unit]\nDescription=Scheduled run of asynctask task %s\n"
                "Documentation=man:asynctask.json(5) man:asynctask(1)\n",
                t->name);
        fputs("SourcePath=", f);
        put_path(f, t->source);
        fputs("\nWants=asynctask.socket\nAfter=asynctask.socket\n\n[Service]\nType=oneshot\n"
              "# The scheduled time of the slot the timer elapsed for makes the task's key: one task per\n"
              "# slot, however often and on however many hosts sharing a database this runs.\n",
              f);
        fprintf(f, "ExecStart=%s submit", cli_path);
        for (size_t i = 0; i < sch->n_calendars && ok; i++)
                ok = put_word(f, "--slot-key") && put_word(f, sch->calendars[i]);
        /* The slot of the timer's elapse, however late this service starts. */
        char timer[128];
        (void) snprintf(timer, sizeof(timer), GENERATOR_UNIT_PREFIX "%s.timer", t->name);
        ok = ok && put_word(f, "--slot-timer") && put_word(f, timer) && put_word(f, t->name);
        for (size_t i = 0; i < sch->n_args && ok; i++)
                ok = put_word(f, sch->args[i]);
        /* A client, submitting as root (whom the task's "allow" must list, --check-config sees to it),
         * with nothing else of root's. */
        fputs("\nCapabilityBoundingSet=\nNoNewPrivileges=yes\nProtectSystem=strict\nProtectHome=yes\n"
              "PrivateTmp=yes\nPrivateDevices=yes\nProtectKernelTunables=yes\nProtectKernelModules=yes\n"
              "ProtectKernelLogs=yes\nProtectControlGroups=yes\nRestrictAddressFamilies=AF_UNIX\n"
              "RestrictNamespaces=yes\nLockPersonality=yes\nMemoryDenyWriteExecute=yes\n"
              "SystemCallArchitectures=native\n",
              f);
        if (!ok) {
                (void) fclose(f);
                free(buf);
                return NULL;
        }
        return finish_text(f, &buf);
}

/* ---- files ------------------------------------------------------------------------------------- */

/* Creates dir/name with text; an existing file is not replaced (-EEXIST). */
static int write_new_file(int dir_fd, const char *name, const char *text) {
        _cleanup_close_ int fd =
                openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        size_t len = strlen(text);

        if (fd < 0)
                return -errno;
        for (const char *p = text; len > 0;) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;
                        (void) unlinkat(dir_fd, name, 0);
                        return r;
                }
                p += n;
                len -= (size_t) n;
        }
        if (close(TAKE_FD(fd)) < 0) {
                int r = -errno;
                (void) unlinkat(dir_fd, name, 0);
                return r;
        }
        return 0;
}

/* The timer, its service and the timer's wants link. -EEXIST when the task's units are there already
 * (another file defines the same name); what was written is removed on failure. */
static int write_units(const Generator *g, int dir_fd, const TaskDef *t) {
        _cleanup_free_ char *timer_text = generator_timer_text(t),
                            *service_text = generator_service_text(t, g->cli_path);
        char timer[128], service[128], link[192], target[160];
        int r;

        if (!timer_text || !service_text)
                return -ENOMEM;
        (void) snprintf(timer, sizeof(timer), GENERATOR_UNIT_PREFIX "%s.timer", t->name);
        (void) snprintf(service, sizeof(service), GENERATOR_UNIT_PREFIX "%s.service", t->name);
        (void) snprintf(link, sizeof(link), WANTS_DIR "/%s", timer);
        (void) snprintf(target, sizeof(target), "../%s", timer);

        r = write_new_file(dir_fd, timer, timer_text);
        if (r < 0)
                return r;
        r = write_new_file(dir_fd, service, service_text);
        if (r < 0) {
                (void) unlinkat(dir_fd, timer, 0);
                return r;
        }
        /* Other generators write to this directory too: the folder may be there already. */
        if ((mkdirat(dir_fd, WANTS_DIR, 0755) < 0 && errno != EEXIST) ||
            symlinkat(target, dir_fd, link) < 0) {
                r = -errno;
                (void) unlinkat(dir_fd, timer, 0);
                (void) unlinkat(dir_fd, service, 0);
                return r;
        }
        return 0;
}

typedef struct FileProblems {
        const Generator *g;
        unsigned n;
} FileProblems;

static void report_problem(const char *file, const char *key, const char *message, void *userdata) {
        FileProblems *p = userdata;

        p->n++;
        say(p->g, LOG_ERR, "%s: %s%s%s", file, key, key[0] ? ": " : "", message);
}

static bool name_is_printable(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

/* One tasks.d file: 1 when a timer was written, 0 when the file has no schedule or was skipped, -errno
 * when the output directory failed. */
static int generate_one(const Generator *g, int dir_fd, const char *name) {
        _cleanup_free_ char *path = NULL;
        _cleanup_(cjson_deletep) cJSON *root = NULL;
        _cleanup_(config_task_freep) TaskDef *t = NULL;
        FileProblems problems = {.g = g};
        JsonReader rd = {
                .on_error = report_problem,
                .userdata = &problems,
                .trusted_only = true,
                .trusted_owner = g->owner,
        };
        int r;

        if (!name_is_printable(name)) {
                say(g, LOG_ERR, "%s: a task file whose name has control characters is skipped",
                    g->tasks_dir);
                return 0;
        }
        if (asprintf(&path, "%s/%s", g->tasks_dir, name) < 0 || !(t = calloc(1, sizeof(TaskDef))))
                return -ENOMEM;
        rd.file = path;
        root = json_reader_load_file(&rd, path);
        if (root)
                config_task_parse_schedule_only(&rd, root, t);
        if (rd.oom)
                return -ENOMEM;
        if (problems.n > 0 || !root) {
                if (problems.n == 0)
                        say(g, LOG_ERR, "%s: cannot read: %s", path, strerror(-rd.io_error));
                say(g, LOG_WARNING,
                    "%s: skipped: no timer for it until it is fixed and \"systemctl "
                    "daemon-reload\" runs",
                    path);
                return 0;
        }
        if (t->schedule.n_calendars == 0)
                return 0;

        r = write_units(g, dir_fd, t);
        if (r == -EEXIST) {
                say(g, LOG_ERR,
                    "%s: task '%s' is defined in an earlier file too; only that one's timer is written",
                    path, t->name);
                return 0;
        }
        if (r < 0) {
                say(g, LOG_ERR, "cannot write the units of task '%s' to %s: %s", t->name, g->output_dir,
                    strerror(-r));
                return r == -ENOMEM ? r : -EIO;
        }
        return 1;
}

int generator_run(const Generator *g) {
        _cleanup_(strv_freep) char **names = NULL;
        _cleanup_close_ int dir_fd = -1;
        size_t n = 0;
        int r, written = 0;

        if (!g || !g->tasks_dir || !g->output_dir || !g->cli_path)
                return -EINVAL;
        dir_fd = open(g->output_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0) {
                r = -errno;
                say(g, LOG_ERR, "cannot open the output directory %s: %s", g->output_dir, strerror(-r));
                return r;
        }
        FileProblems problems = {.g = g};
        JsonReader rd = {
                .on_error = report_problem,
                .userdata = &problems,
                .file = g->tasks_dir,
                .trusted_only = true,
                .trusted_owner = g->owner,
        };
        r = config_check_tasks_dir(&rd, g->tasks_dir);
        if (r > 0) {
                say(g, LOG_WARNING,
                    "%s: skipped: no timers until it is fixed and \"systemctl daemon-reload\" runs",
                    g->tasks_dir);
                return 0;
        }
        if (r >= 0)
                r = config_list_task_files(g->tasks_dir, &names, &n);
        if (r < 0) {
                /* Nothing to generate, and boot goes on: the daemons will say more. */
                say(g, LOG_ERR, "cannot read %s: %s", g->tasks_dir, strerror(-r));
                return r == -ENOMEM ? r : 0;
        }
        for (size_t i = 0; i < n; i++) {
                r = generate_one(g, dir_fd, names[i]);
                if (r < 0)
                        return r;
                written += r;
        }
        return written;
}
