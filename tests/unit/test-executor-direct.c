/* SPDX-License-Identifier: MIT */
/*
 * The direct executor, driven on a real sd-event loop with real children. Its settings shorten the kill
 * grace period where a test waits for it, and point the journal check elsewhere so task output is
 * relayed to our stderr whether or not this host runs journald.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher/direct-child.h"
#include "launcher/executor-direct.h"
#include "launcher/executor.h"
#include "shared/limits.h"
#include "shared/util.h"

#define NOBODY_UID 65534
#define MAX_EVENTS 16

static const DirectExecutorSettings relay_output = {.journal_socket = "/nonexistent/journal/socket"};

typedef struct Event {
        bool finished;
        bool progress; /* text in unit */
        uint64_t id;
        char unit[64];
        RunResult result;
} Event;

typedef struct Fixture {
        sd_event *event;
        Executor *x;
        Event events[MAX_EVENTS];
        size_t n_events;
        char dir[64];
        int saved_stderr;
        char capture_path[128];
        TaskDef def;
        char *exec[2];
        void (*finished_hook)(struct Fixture *f, uint64_t id);
} Fixture;

static void on_started(void *userdata, uint64_t id, const char *unit) {
        Fixture *f = userdata;

        assert_true(f->n_events < MAX_EVENTS);
        f->events[f->n_events] = (Event){.finished = false, .id = id};
        snprintf(f->events[f->n_events].unit, sizeof(f->events[0].unit), "%s", unit);
        f->n_events++;
}

static void on_finished(void *userdata, uint64_t id, const RunResult *r) {
        Fixture *f = userdata;

        assert_true(f->n_events < MAX_EVENTS);
        f->events[f->n_events++] = (Event){.finished = true, .id = id, .result = *r};
        if (f->finished_hook)
                f->finished_hook(f, id);
}

static void on_progress(void *userdata, uint64_t id, const char *text) {
        Fixture *f = userdata;

        assert_true(f->n_events < MAX_EVENTS);
        f->events[f->n_events] = (Event){.progress = true, .id = id};
        snprintf(f->events[f->n_events].unit, sizeof(f->events[0].unit), "%s", text);
        f->n_events++;
}

static const ExecutorEvents recorder = {
        .started = on_started, .finished = on_finished, .progress = on_progress};

static const Event *find_event(Fixture *f, uint64_t id, bool finished) {
        for (size_t i = 0; i < f->n_events; i++)
                if (f->events[i].id == id && f->events[i].finished == finished && !f->events[i].progress)
                        return &f->events[i];
        return NULL;
}

/* Runs the loop until the run has finished, or fails the test after timeout_sec. */
static const RunResult *wait_finished(Fixture *f, uint64_t id, unsigned timeout_sec) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout_sec * USEC_PER_SEC;

        while (!find_event(f, id, true)) {
                if (now_usec(CLOCK_MONOTONIC) > deadline)
                        fail_msg("run %" PRIu64 " did not finish within %u s", id, timeout_sec);
                assert_true(sd_event_run(f->event, 100 * USEC_PER_MSEC) >= 0);
        }
        return &find_event(f, id, true)->result;
}

static void wait_started(Fixture *f, uint64_t id, unsigned timeout_sec) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout_sec * USEC_PER_SEC;

        while (!find_event(f, id, false)) {
                if (now_usec(CLOCK_MONOTONIC) > deadline)
                        fail_msg("run %" PRIu64 " did not start within %u s", id, timeout_sec);
                assert_true(sd_event_run(f->event, 100 * USEC_PER_MSEC) >= 0);
        }
}

/* Runs the loop for a while (to see that nothing more happens). */
static void spin(Fixture *f, uint64_t usec) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + usec;

        while (now_usec(CLOCK_MONOTONIC) < deadline)
                assert_true(sd_event_run(f->event, 50 * USEC_PER_MSEC) >= 0);
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        struct passwd *pw = getpwuid(geteuid());

        assert_non_null(f);
        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(executor_direct_new_with_settings(f->event, &recorder, f, &relay_output, &f->x), 0);

        strcpy(f->dir, "/tmp/test-executor-direct-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_int_equal(chmod(f->dir, 0777), 0); /* so that nobody can write there too */
        f->saved_stderr = -1;

        f->exec[0] = "/bin/true";
        f->def = (TaskDef){
                .name = "t",
                .exec = f->exec,
                .n_exec = 1,
                .user = pw ? pw->pw_name : "root",
                .uid = geteuid(),
                .gid = getegid(),
        };
        *state = f;
        return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void capture_stop(Fixture *f);

static int teardown(void **state) {
        Fixture *f = *state;

        capture_stop(f);
        executor_free(f->x);
        sd_event_unref(f->event);
        (void) nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

/* Launches argv (NULL-terminated) with the fixture's TaskDef. */
static int launch(Fixture *f, uint64_t id, char **argv, const char *stdin_data, size_t stdin_len) {
        Launch l = {
                .id = id,
                .attempt = 1,
                .def = &f->def,
                .argv = argv,
                .stdin_data = stdin_data,
                .stdin_len = stdin_len,
                .submitter = "uid:0",
        };
        return executor_launch(f->x, &l);
}

static char *path_in(Fixture *f, const char *name) {
        static char buf[4][256];
        static int i;

        i = (i + 1) % 4;
        snprintf(buf[i], sizeof(buf[i]), "%s/%s", f->dir, name);
        return buf[i];
}

static char *read_file(const char *path, size_t *ret_len) {
        FILE *fp = fopen(path, "rb");
        char *buf;
        size_t n;

        if (!fp)
                return NULL;
        buf = malloc(1 << 20);
        assert_non_null(buf);
        n = fread(buf, 1, (1 << 20) - 1, fp);
        buf[n] = '\0';
        fclose(fp);
        if (ret_len)
                *ret_len = n;
        return buf;
}

/* Sends our stderr (where relayed task output goes) to a file until capture_stop(). */
static void capture_start(Fixture *f) {
        int fd;

        snprintf(f->capture_path, sizeof(f->capture_path), "%s/stderr", f->dir);
        fflush(stderr);
        f->saved_stderr = dup(STDERR_FILENO);
        assert_true(f->saved_stderr >= 0);
        fd = open(f->capture_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
        close(fd);
}

static void capture_stop(Fixture *f) {
        if (f->saved_stderr < 0)
                return;
        fflush(stderr);
        (void) dup2(f->saved_stderr, STDERR_FILENO);
        close(f->saved_stderr);
        f->saved_stderr = -1;
}

/* A process is gone when /proc has no entry or only a zombie (whoever inherited it may not reap). */
static bool proc_gone(pid_t pid) {
        char path[64], buf[512];
        FILE *fp;
        char *p;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        fp = fopen(path, "re");
        if (!fp)
                return true;
        p = fgets(buf, sizeof(buf), fp);
        fclose(fp);
        if (!p)
                return true;
        p = strrchr(buf, ')');
        return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

static void wait_gone(pid_t pid, unsigned timeout_sec) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout_sec * USEC_PER_SEC;

        while (!proc_gone(pid)) {
                if (now_usec(CLOCK_MONOTONIC) > deadline)
                        fail_msg("process %d is still alive", (int) pid);
                usleep(20000);
        }
}

/* The pid a task wrote to path (whole: written elsewhere, then renamed). */
static pid_t wait_pid_file(const char *path, unsigned timeout_sec) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + timeout_sec * USEC_PER_SEC;
        _cleanup_free_ char *text = NULL;

        while (!(text = read_file(path, NULL))) {
                if (now_usec(CLOCK_MONOTONIC) > deadline)
                        fail_msg("no pid in %s", path);
                usleep(20000);
        }
        return (pid_t) atoi(text);
}

static void test_success(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/true", NULL};
        const RunResult *r;
        const Event *started;
        char unit[64];

        assert_int_equal(launch(f, 1, argv, NULL, 0), 0);
        r = wait_finished(f, 1, 10);
        assert_string_equal(r->result, "success");
        assert_true(r->has_exit_status);
        assert_int_equal(r->exit_status, 0);
        assert_int_equal(r->signal, 0);
        assert_string_equal(r->error, "");
        assert_true(r->memory_peak > 0);

        /* started came first, naming the pid. */
        started = find_event(f, 1, false);
        assert_non_null(started);
        assert_true(started < find_event(f, 1, true));
        assert_true(startswith(started->unit, "pid:"));
        assert_true(atoi(started->unit + 4) > 0);
        snprintf(unit, sizeof(unit), "pid:%d", atoi(started->unit + 4));
        assert_string_equal(unit, started->unit);
        assert_int_equal(f->n_events, 2);
}

static void test_exit_code(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sh", "-c", "exit 3", NULL};
        const RunResult *r;

        assert_int_equal(launch(f, 2, argv, NULL, 0), 0);
        r = wait_finished(f, 2, 10);
        assert_string_equal(r->result, "exit-code");
        assert_true(r->has_exit_status);
        assert_int_equal(r->exit_status, 3);
        assert_int_equal(r->signal, 0);
        assert_non_null(find_event(f, 2, false));
}

static void test_killed_by_signal(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sh", "-c", "kill -KILL $$", NULL};
        const RunResult *r;

        assert_int_equal(launch(f, 3, argv, NULL, 0), 0);
        r = wait_finished(f, 3, 10);
        assert_string_equal(r->result, "signal");
        assert_false(r->has_exit_status);
        assert_int_equal(r->signal, SIGKILL);
}

static void test_cpu_usage_reported(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done", NULL};
        const RunResult *r;

        assert_int_equal(launch(f, 4, argv, NULL, 0), 0);
        r = wait_finished(f, 4, 30);
        assert_string_equal(r->result, "success");
        assert_true(r->cpu_usec > 10000); /* the loop burns well over 10 ms */
}

static void test_timeout_terminates(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sh", "-c", "sleep 30", NULL};
        uint64_t t0 = now_usec(CLOCK_MONOTONIC), took;
        const RunResult *r;

        f->def.timeout_sec = 1;
        assert_int_equal(launch(f, 5, argv, NULL, 0), 0);
        r = wait_finished(f, 5, 10);
        took = now_usec(CLOCK_MONOTONIC) - t0;
        assert_string_equal(r->result, "timeout");
        assert_int_equal(r->signal, SIGTERM);
        assert_non_null(strstr(r->error, "timeout_sec=1"));
        assert_true(took >= 1 * USEC_PER_SEC);
        assert_true(took < 4 * USEC_PER_SEC);
}

static void test_timeout_kills_after_grace(void **state) {
        Fixture *f = *state;
        /* Ignores TERM (but notes that it came), keeps a child in its group. */
        char *argv[] = {"/bin/sh",
                        "-c",
                        "trap 'echo term >> \"$0\"' TERM; sleep 60 & echo $! > \"$1\"; "
                        "while :; do sleep 0.1; done",
                        path_in(f, "term"),
                        path_in(f, "child"),
                        NULL};
        uint64_t t0 = now_usec(CLOCK_MONOTONIC), took;
        _cleanup_free_ char *term = NULL, *child = NULL;
        const RunResult *r;
        DirectExecutorSettings short_grace = relay_output;

        short_grace.kill_grace_usec = 1500 * USEC_PER_MSEC;
        f->x = executor_free(f->x);
        assert_int_equal(executor_direct_new_with_settings(f->event, &recorder, f, &short_grace, &f->x), 0);
        f->def.timeout_sec = 1;
        assert_int_equal(launch(f, 6, argv, NULL, 0), 0);
        r = wait_finished(f, 6, 15);
        took = now_usec(CLOCK_MONOTONIC) - t0;

        assert_string_equal(r->result, "timeout");
        assert_int_equal(r->signal, SIGKILL);
        /* TERM at 1 s, KILL 1.5 s later. */
        assert_true(took >= 2500 * USEC_PER_MSEC);
        assert_true(took < 6 * USEC_PER_SEC);
        term = read_file(path_in(f, "term"), NULL);
        assert_non_null(term);
        assert_true(startswith(term, "term\n"));
        child = read_file(path_in(f, "child"), NULL);
        assert_non_null(child);
        wait_gone(atoi(child), 5);
}

static void test_stop_cancels(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sleep", "30", NULL};
        uint64_t t0;
        const RunResult *r;

        assert_int_equal(launch(f, 7, argv, NULL, 0), 0);
        wait_started(f, 7, 10);
        t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(executor_stop(f->x, 7), 0);
        assert_int_equal(executor_stop(f->x, 7), 0); /* a second stop changes nothing */
        r = wait_finished(f, 7, 10);
        assert_string_equal(r->result, "cancelled");
        assert_int_equal(r->signal, SIGTERM);
        assert_true(now_usec(CLOCK_MONOTONIC) - t0 < 3 * USEC_PER_SEC);

        /* Stopping what already ended is no error and reports nothing new. */
        assert_int_equal(executor_stop(f->x, 7), 0);
        spin(f, 200 * USEC_PER_MSEC);
        assert_int_equal(f->n_events, 2);

        assert_int_equal(executor_stop(f->x, 999), -ESRCH);
}

static void test_stop_right_after_launch(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sleep", "30", NULL};
        const RunResult *r;

        /* Before the child has even exec'd: the TERM is held until it unblocks signals, then kills it. */
        assert_int_equal(launch(f, 8, argv, NULL, 0), 0);
        assert_int_equal(executor_stop(f->x, 8), 0);
        r = wait_finished(f, 8, 10);
        assert_string_equal(r->result, "cancelled");
}

static void test_release_and_duplicates(void **state) {
        Fixture *f = *state;
        char *sleeper[] = {"/bin/sleep", "30", NULL};
        char *argv[] = {"/bin/true", NULL};

        assert_int_equal(launch(f, 9, sleeper, NULL, 0), 0);
        assert_int_equal(launch(f, 9, argv, NULL, 0), -EEXIST);
        assert_int_equal(executor_release(f->x, 9), -EBUSY);
        assert_int_equal(executor_stop(f->x, 9), 0);
        wait_finished(f, 9, 10);

        /* Held until released, so the id stays taken. */
        assert_int_equal(launch(f, 9, argv, NULL, 0), -EEXIST);
        assert_int_equal(executor_release(f->x, 9), 0);
        assert_int_equal(executor_release(f->x, 9), -ESRCH);
        assert_int_equal(executor_release(f->x, 12345), -ESRCH);

        /* A released id can run again (a retry). */
        assert_int_equal(launch(f, 9, argv, NULL, 0), 0);
}

static void test_invalid_launch(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/true", NULL};
        char *empty[] = {NULL};
        Launch l = {.id = 0, .attempt = 1, .def = &f->def, .argv = argv};

        assert_int_equal(executor_launch(f->x, &l), -EINVAL);
        l.id = 10;
        l.def = NULL;
        assert_int_equal(executor_launch(f->x, &l), -EINVAL);
        l.def = &f->def;
        l.argv = empty;
        assert_int_equal(executor_launch(f->x, &l), -EINVAL);
        assert_int_equal(f->n_events, 0);
}

static void test_stdin_delivered(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sh", "-c", "cat > \"$0\"", path_in(f, "stdin"), NULL};
        char *argv2[] = {"/bin/sh", "-c", "cat > \"$0\"", path_in(f, "stdin2"), NULL};
        static const char data[] = "O:4:\"Lamb\":1:{s:1:\"x\";N;}\0binary\xff\n";
        _cleanup_free_ char *got = NULL, *got2 = NULL;
        size_t n;

        assert_int_equal(launch(f, 11, argv, data, sizeof(data) - 1), 0);
        assert_string_equal(wait_finished(f, 11, 10)->result, "success");
        got = read_file(path_in(f, "stdin"), &n);
        assert_non_null(got);
        assert_int_equal(n, sizeof(data) - 1);
        assert_memory_equal(got, data, n);

        /* No stdin reads as empty, not as the launcher's stdin. */
        assert_int_equal(launch(f, 12, argv2, NULL, 0), 0);
        assert_string_equal(wait_finished(f, 12, 10)->result, "success");
        got2 = read_file(path_in(f, "stdin2"), &n);
        assert_non_null(got2);
        assert_int_equal(n, 0);
}

static void test_large_stdin(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sh", "-c", "cat > \"$0\"", path_in(f, "big"), NULL};
        size_t size = 1 << 20, n;
        _cleanup_free_ char *data = malloc(size), *got = NULL;

        assert_non_null(data);
        for (size_t i = 0; i < size; i++)
                data[i] = (char) (i * 31 + 7);
        assert_int_equal(launch(f, 13, argv, data, size - 1), 0);
        assert_string_equal(wait_finished(f, 13, 10)->result, "success");
        got = read_file(path_in(f, "big"), &n);
        assert_int_equal(n, size - 1);
        assert_memory_equal(got, data, n);
}

static void test_environment(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sh", "-c", "exec /usr/bin/env > \"$0\"", path_in(f, "env"), NULL};
        char *task_env[] = {"APP_ENV=production", "SPACED=a b  c", "ASYNCTASK_ID=666", NULL};
        static const char *const allowed[] = {
                "PATH=",   "HOME=",         "USER=",           "LOGNAME=",           "APP_ENV=",
                "SPACED=", "ASYNCTASK_ID=", "ASYNCTASK_TASK=", "ASYNCTASK_ATTEMPT=", "NOTIFY_SOCKET=@",
                "PWD=" /* the shell's own */};
        struct passwd *pw = getpwuid(geteuid());
        _cleanup_free_ char *env = NULL;
        char expect[512];

        assert_int_equal(setenv("ASYNCTASK_TEST_LEAK", "launcher-only", 1), 0);
        f->def.name = "envtask";
        f->def.environment = task_env;
        f->def.n_environment = 3;
        assert_int_equal(launch(f, 14, argv, NULL, 0), 0);
        assert_string_equal(wait_finished(f, 14, 10)->result, "success");
        unsetenv("ASYNCTASK_TEST_LEAK");

        env = read_file(path_in(f, "env"), NULL);
        assert_non_null(env);
        assert_null(strstr(env, "ASYNCTASK_TEST_LEAK"));
        assert_non_null(strstr(env, "ASYNCTASK_ID=14\n"));
        assert_null(strstr(env, "666"));
        assert_non_null(strstr(env, "ASYNCTASK_TASK=envtask\n"));
        assert_non_null(strstr(env, "ASYNCTASK_ATTEMPT=1\n"));
        assert_non_null(strstr(env, "APP_ENV=production\n"));
        assert_non_null(strstr(env, "SPACED=a b  c\n"));
        assert_non_null(strstr(env, "PATH=" DIRECT_CHILD_DEFAULT_PATH "\n"));
        snprintf(expect, sizeof(expect), "HOME=%s\n", pw->pw_dir);
        assert_non_null(strstr(env, expect));
        snprintf(expect, sizeof(expect), "USER=%s\n", pw->pw_name);
        assert_non_null(strstr(env, expect));
        snprintf(expect, sizeof(expect), "LOGNAME=%s\n", pw->pw_name);
        assert_non_null(strstr(env, expect));

        /* Nothing else at all. */
        for (char *line = env, *nl; *line; line = nl + 1) {
                bool ok = false;

                nl = strchr(line, '\n');
                assert_non_null(nl);
                *nl = '\0';
                for (size_t i = 0; i < ELEMENTSOF(allowed); i++)
                        ok = ok || startswith(line, allowed[i]);
                if (!ok)
                        fail_msg("unexpected variable in the task's environment: %s", line);
        }
}

/* The progress events of run id, in order, joined by "|"; and whether each came before its result. */
static void progress_of(Fixture *f, uint64_t id, char *buf, size_t size) {
        bool finished = false;

        buf[0] = '\0';
        for (size_t i = 0; i < f->n_events; i++) {
                if (f->events[i].id != id)
                        continue;
                if (f->events[i].finished)
                        finished = true;
                if (!f->events[i].progress)
                        continue;
                assert_false(finished);
                if (buf[0])
                        strncat(buf, "|", size - strlen(buf) - 1);
                strncat(buf, f->events[i].unit, size - strlen(buf) - 1);
        }
}

/* STATUS= on the run's own NOTIFY_SOCKET, from the task and from a process it starts, in order; the
 * last one before the result. systemd-notify waits for its message to be read (BARRIER=1). */
static void test_notify_progress(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sh", "-c",
                        "systemd-notify STATUS='10% one' && systemd-notify --status='50% two' && "
                        "systemd-notify READY=1 'STATUS=100% three' && echo \"$NOTIFY_SOCKET\" > \"$0\"",
                        path_in(f, "notify"), NULL};
        _cleanup_free_ char *address = NULL;
        char seen[256];

        assert_int_equal(launch(f, 30, argv, NULL, 0), 0);
        assert_string_equal(wait_finished(f, 30, 20)->result, "success");
        progress_of(f, 30, seen, sizeof(seen));
        assert_string_equal(seen, "10% one|50% two|100% three");
        address = read_file(path_in(f, "notify"), NULL);
        assert_non_null(address);
        assert_true(startswith(address, "@"));
}

/* A process of the same user outside the task's process group is not heard. */
static void test_notify_from_outside_ignored(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sh", "-c",
                        "echo \"$NOTIFY_SOCKET\" > \"$0.tmp\" && mv \"$0.tmp\" \"$0\" && sleep 1.5 && "
                        "systemd-notify STATUS=inside",
                        path_in(f, "addr"), NULL};
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + 10 * USEC_PER_SEC;
        _cleanup_free_ char *address = NULL;
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t n;
        char seen[256];

        assert_int_equal(launch(f, 31, argv, NULL, 0), 0);
        while (!(address = read_file(path_in(f, "addr"), NULL))) {
                assert_true(now_usec(CLOCK_MONOTONIC) < deadline);
                assert_true(sd_event_run(f->event, 20 * USEC_PER_MSEC) >= 0);
        }
        n = strcspn(address, "\n");
        assert_true(n > 1 && address[0] == '@');
        memcpy(sa.sun_path + 1, address + 1, n - 1);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(sendto(fd, "STATUS=outside", 14, 0, (struct sockaddr *) &sa,
                                (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n)),
                         14);

        assert_string_equal(wait_finished(f, 31, 20)->result, "success");
        progress_of(f, 31, seen, sizeof(seen));
        assert_string_equal(seen, "inside");
}

static void test_environment_overrides_and_command(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sh", "-c", "exec /usr/bin/env > \"$0\"", path_in(f, "env"), NULL};
        char *task_env[] = {"PATH=/opt/bin:/bin", "HOME=/srv/app", NULL};
        _cleanup_free_ char *env = NULL;

        f->def.is_command = true;
        f->def.environment = task_env;
        f->def.n_environment = 2;
        assert_int_equal(launch(f, 15, argv, NULL, 0), 0);
        assert_string_equal(wait_finished(f, 15, 10)->result, "success");
        env = read_file(path_in(f, "env"), NULL);
        assert_non_null(strstr(env, "PATH=/opt/bin:/bin\n"));
        assert_null(strstr(env, "PATH=" DIRECT_CHILD_DEFAULT_PATH));
        assert_non_null(strstr(env, "HOME=/srv/app\n"));
        assert_non_null(strstr(env, "ASYNCTASK_TASK=command\n"));
}

static void test_working_directory(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sh", "-c", "pwd > \"$0\"", path_in(f, "pwd"), NULL};
        char *argv2[] = {"/bin/sh", "-c", "pwd > \"$0\"", path_in(f, "pwd2"), NULL};
        _cleanup_free_ char *pwd = NULL, *pwd2 = NULL;
        char expect[128];
        const RunResult *r;

        f->def.working_directory = f->dir;
        assert_int_equal(launch(f, 16, argv, NULL, 0), 0);
        assert_string_equal(wait_finished(f, 16, 10)->result, "success");
        pwd = read_file(path_in(f, "pwd"), NULL);
        snprintf(expect, sizeof(expect), "%s\n", f->dir);
        assert_string_equal(pwd, expect);

        /* The default is /. */
        f->def.working_directory = NULL;
        assert_int_equal(launch(f, 17, argv2, NULL, 0), 0);
        assert_string_equal(wait_finished(f, 17, 10)->result, "success");
        pwd2 = read_file(path_in(f, "pwd2"), NULL);
        assert_string_equal(pwd2, "/\n");

        /* A missing directory means the task cannot start. */
        f->def.working_directory = "/nonexistent/dir";
        assert_int_equal(launch(f, 18, argv, NULL, 0), 0);
        r = wait_finished(f, 18, 10);
        assert_string_equal(r->result, "resources");
        assert_string_equal(r->error, "chdir(/nonexistent/dir): No such file or directory");
        assert_null(find_event(f, 18, false));
}

static void test_exec_failure_is_resources(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/nonexistent/program", "arg", NULL};
        char *noexec[] = {f->dir, NULL}; /* a directory */
        const RunResult *r;

        assert_int_equal(launch(f, 19, argv, NULL, 0), 0);
        r = wait_finished(f, 19, 10);
        assert_string_equal(r->result, "resources");
        assert_string_equal(r->error, "execv(/nonexistent/program): No such file or directory");
        assert_false(r->has_exit_status); /* not a silent 127 */
        /* It never started. */
        assert_null(find_event(f, 19, false));
        assert_int_equal(f->n_events, 1);

        assert_int_equal(launch(f, 20, noexec, NULL, 0), 0);
        r = wait_finished(f, 20, 10);
        assert_string_equal(r->result, "resources");
        assert_true(startswith(r->error, "execv("));
        assert_non_null(strstr(r->error, "Permission denied"));
}

static void test_args_reach_program_literally(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/usr/bin/printf", "<%s>\\n", "$(touch x)", "; rm", "*",
                        "`touch y`",       "a b",     "",           NULL};
        _cleanup_free_ char *out = NULL;
        struct stat st;

        f->def.working_directory = f->dir;
        capture_start(f);
        assert_int_equal(launch(f, 21, argv, NULL, 0), 0);
        assert_string_equal(wait_finished(f, 21, 10)->result, "success");
        capture_stop(f);

        out = read_file(f->capture_path, NULL);
        assert_non_null(out);
        assert_non_null(strstr(out, "[task 21] <$(touch x)>\n"));
        assert_non_null(strstr(out, "[task 21] <; rm>\n"));
        assert_non_null(strstr(out, "[task 21] <*>\n"));
        assert_non_null(strstr(out, "[task 21] <`touch y`>\n"));
        assert_non_null(strstr(out, "[task 21] <a b>\n"));
        assert_non_null(strstr(out, "[task 21] <>\n"));
        assert_int_equal(stat(path_in(f, "x"), &st), -1);
        assert_int_equal(stat(path_in(f, "y"), &st), -1);
}

/* The task has stdin, stdout and stderr, and nothing else of the launcher's (ls shows its own
 * directory as 3). */
static void test_only_stdio_inherited(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/ls", "/proc/self/fd", NULL};
        _cleanup_close_ int held = open("/dev/null", O_RDONLY); /* a descriptor without close-on-exec */
        _cleanup_free_ char *out = NULL;

        assert_true(held >= 0);
        capture_start(f);
        assert_int_equal(launch(f, 22, argv, NULL, 0), 0);
        assert_string_equal(wait_finished(f, 22, 10)->result, "success");
        capture_stop(f);
        out = read_file(f->capture_path, NULL);
        assert_non_null(out);
        assert_string_equal(out, "[task 22] 0\n[task 22] 1\n[task 22] 2\n[task 22] 3\n");
}

static void test_output_relay(void **state) {
        Fixture *f = *state;
        /* stdout and stderr, a partial last line, and a line longer than the cap. */
        char *argv[] = {"/bin/sh", "-c",
                        "echo out-line; echo err-line >&2; head -c 5000 /dev/zero | tr '\\0' z; echo; "
                        "printf 'no newline at end'",
                        NULL};
        _cleanup_free_ char *out = NULL;
        char expect[TASK_OUTPUT_LINE_MAX + 32];

        capture_start(f);
        assert_int_equal(launch(f, 22, argv, NULL, 0), 0);
        assert_string_equal(wait_finished(f, 22, 10)->result, "success");
        capture_stop(f);

        out = read_file(f->capture_path, NULL);
        assert_non_null(strstr(out, "[task 22] out-line\n"));
        assert_non_null(strstr(out, "[task 22] err-line\n"));
        assert_non_null(strstr(out, "[task 22] no newline at end\n"));
        /* 5000 z's: one full line of the cap, then the rest. */
        strcpy(expect, "[task 22] ");
        memset(expect + 10, 'z', TASK_OUTPUT_LINE_MAX);
        strcpy(expect + 10 + TASK_OUTPUT_LINE_MAX, "\n[task 22] ");
        assert_non_null(strstr(out, expect));
        memset(expect, 'z', 5000 - TASK_OUTPUT_LINE_MAX);
        strcpy(expect + 5000 - TASK_OUTPUT_LINE_MAX, "\n");
        assert_non_null(strstr(out, expect));
        assert_null(strstr(out, "zzzzzzzzzz\n[task 22] zzzzzzzzzzz\n")); /* exactly one split */
}

static void test_leftover_processes_killed(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sh", "-c", "sleep 60 & echo $! > \"$0\"; exit 0", path_in(f, "bg"), NULL};
        _cleanup_free_ char *bg = NULL;

        assert_int_equal(launch(f, 23, argv, NULL, 0), 0);
        assert_string_equal(wait_finished(f, 23, 10)->result, "success");
        bg = read_file(path_in(f, "bg"), NULL);
        assert_non_null(bg);
        wait_gone(atoi(bg), 5);
}

static void test_nice_and_memory_limit(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sh", "-c", "{ nice; ulimit -v; } > \"$0\"", path_in(f, "limits"), NULL};
        _cleanup_free_ char *limits = NULL;

        f->def.has_nice = true;
        f->def.nice = 7;
        f->def.memory_max = 256ULL << 20;
        assert_int_equal(launch(f, 24, argv, NULL, 0), 0);
        assert_string_equal(wait_finished(f, 24, 10)->result, "success");
        limits = read_file(path_in(f, "limits"), NULL);
        assert_string_equal(limits, "7\n262144\n");
}

static void test_runs_as_nobody(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sh",
                        "-c",
                        "touch \"$0\"; { id -u; id -g; id -G; } > \"$1\"",
                        path_in(f, "owned"),
                        path_in(f, "ids"),
                        NULL};
        _cleanup_free_ char *ids = NULL;
        struct stat st;

        if (geteuid() != 0)
                skip();

        f->def.user = "nobody";
        f->def.uid = NOBODY_UID;
        f->def.gid = getpwuid(NOBODY_UID)->pw_gid;
        assert_int_equal(launch(f, 25, argv, NULL, 0), 0);
        wait_finished(f, 25, 10);

        assert_int_equal(stat(path_in(f, "owned"), &st), 0);
        assert_int_equal(st.st_uid, NOBODY_UID);
        assert_int_equal(st.st_gid, f->def.gid);
        ids = read_file(path_in(f, "ids"), NULL);
        assert_non_null(ids);
        {
                char expect[64];
                snprintf(expect, sizeof(expect), "%u\n%u\n%u\n", NOBODY_UID, (unsigned) f->def.gid,
                         (unsigned) f->def.gid);
                /* No supplementary groups of root (0) remain. */
                assert_string_equal(ids, expect);
        }
}

static void test_runs_as_configured_group(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sh", "-c", "touch \"$0\"", path_in(f, "grp"), NULL};
        struct stat st;

        if (geteuid() != 0)
                skip();

        /* nobody with another primary group than its own. */
        f->def.user = "nobody";
        f->def.uid = NOBODY_UID;
        f->def.gid = 1; /* daemon */
        assert_int_equal(launch(f, 26, argv, NULL, 0), 0);
        assert_string_equal(wait_finished(f, 26, 10)->result, "success");
        assert_int_equal(stat(path_in(f, "grp"), &st), 0);
        assert_int_equal(st.st_uid, NOBODY_UID);
        assert_int_equal(st.st_gid, 1);
}

/* Without root, another user is refused before anything is forked. Run in a child that drops to nobody
 * when we are root, so this is checked either way. */
static void test_not_root_refuses_other_user(void **state) {
        Fixture *f = *state;
        pid_t pid;
        int status;

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char *argv[] = {"/bin/true", NULL};
                sd_event *e = NULL;
                Executor *x = NULL;
                Launch l = {.id = 1, .attempt = 1, .def = &f->def, .argv = argv};
                int k;

                if (geteuid() == 0) {
                        if (setgroups(0, NULL) < 0 || setgid(NOBODY_UID) < 0 || setuid(NOBODY_UID) < 0)
                                _exit(10);
                }
                if (sd_event_new(&e) < 0 || executor_direct_new(e, &recorder, f, &x) < 0)
                        _exit(11);
                f->x = x;
                f->n_events = 0;

                /* Some other user, e.g. root. */
                f->def.uid = geteuid() == 0 ? 1 : 0;
                f->def.gid = getegid();
                k = executor_launch(x, &l);
                if (k != -EPERM)
                        _exit(12);
                /* Our own uid but another group is refused as well. */
                f->def.uid = geteuid();
                f->def.gid = getegid() == 0 ? 1 : 0;
                if (executor_launch(x, &l) != -EPERM)
                        _exit(13);
                if (f->n_events != 0)
                        _exit(14);
                /* Our own user works. */
                f->def.gid = getegid();
                if (executor_launch(x, &l) != 0)
                        _exit(15);
                for (int i = 0; i < 100 && f->n_events < 2; i++)
                        (void) sd_event_run(e, 100 * USEC_PER_MSEC);
                if (f->n_events != 2 || !streq(f->events[1].result.result, "success"))
                        _exit(16);
                _exit(0);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* A run whose exit status someone else collected (here: SIGCHLD ignored, so the kernel reaps it) is
 * reported as lost, not as a success. In a child process, to keep our own SIGCHLD disposition. */
static void test_exit_status_lost(void **state) {
        Fixture *f = *state;
        pid_t pid;
        int status;

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char *argv[] = {"/bin/sh", "-c", "sleep 0.2; exit 3", NULL};
                sd_event *e = NULL;
                Executor *x = NULL;
                Launch l = {.id = 1, .attempt = 1, .def = &f->def, .argv = argv};
                const Event *ev;
                int k;

                if (signal(SIGCHLD, SIG_IGN) == SIG_ERR)
                        _exit(10);
                if (sd_event_new(&e) < 0 ||
                    executor_direct_new_with_settings(e, &recorder, f, &relay_output, &x) < 0)
                        _exit(11);
                f->x = x;
                f->n_events = 0;
                /* With SIGCHLD ignored nothing keeps the pid for pidfd_open() once the task ended: on a
                 * very slow machine the task may be gone before, and the launch fails with ESRCH. */
                while ((k = executor_launch(x, &l)) == -ESRCH && l.id < 5)
                        l.id++;
                if (k != 0)
                        _exit(12);
                for (int i = 0; i < 100 && f->n_events < 2; i++)
                        (void) sd_event_run(e, 100 * USEC_PER_MSEC);
                ev = find_event(f, l.id, true);
                if (!ev)
                        _exit(13);
                if (!streq(ev->result.result, "lost") || ev->result.has_exit_status ||
                    ev->result.signal != 0)
                        _exit(14);
                if (!startswith(ev->result.error, "cannot collect the exit status: "))
                        _exit(15);
                _exit(0);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* From inside the finished handler: release the run and start the next one (a retry). Both new runs
 * end before the handler returns, so their exits and pipe EOFs all reach the loop in one wakeup, as on
 * a loaded machine: then every fd the loop watches is ready at once (which once lost the exits). */
static void relaunch_hook(Fixture *f, uint64_t id) {
        /* Each run leaves its pid in a file ($0), so that we can wait here until it is gone. */
        const char *script = "echo $$ > \"$0.tmp\" && mv \"$0.tmp\" \"$0\"; exit 4";
        char *argv31[] = {"/bin/sh", "-c", (char *) script, path_in(f, "pid31"), NULL};
        char *argv30[] = {"/bin/sh", "-c", (char *) script, path_in(f, "pid30"), NULL};

        if (id != 30)
                return;
        assert_int_equal(executor_release(f->x, 30), 0);
        assert_int_equal(launch(f, 31, argv31, NULL, 0), 0);
        assert_int_equal(launch(f, 30, argv30, NULL, 0), 0);
        wait_gone(wait_pid_file(argv31[3], 10), 10);
        wait_gone(wait_pid_file(argv30[3], 10), 10);
}

static void test_reentrant_handlers(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/true", NULL};

        f->finished_hook = relaunch_hook;
        assert_int_equal(launch(f, 30, argv, NULL, 0), 0);
        assert_string_equal(wait_finished(f, 30, 10)->result, "success");
        f->finished_hook = NULL;
        assert_int_equal(wait_finished(f, 31, 10)->exit_status, 4);
        /* The second run of 30 reports too, with its own result. */
        for (uint64_t deadline = now_usec(CLOCK_MONOTONIC) + 10 * USEC_PER_SEC; f->n_events < 6;) {
                assert_true(now_usec(CLOCK_MONOTONIC) < deadline);
                assert_true(sd_event_run(f->event, 100 * USEC_PER_MSEC) >= 0);
        }
        {
                unsigned n = 0;

                for (size_t i = 0; i < f->n_events; i++)
                        if (f->events[i].finished && f->events[i].id == 30) {
                                assert_string_equal(f->events[i].result.result,
                                                    n == 0 ? "success" : "exit-code");
                                n++;
                        }
                assert_int_equal(n, 2);
        }
}

static void test_many_parallel(void **state) {
        Fixture *f = *state;
        char *argv[] = {"/bin/sh", "-c", "sleep 0.2; exit $((ASYNCTASK_ID % 7))", NULL};

        for (uint64_t id = 100; id < 108; id++)
                assert_int_equal(launch(f, id, argv, NULL, 0), 0);
        for (uint64_t id = 100; id < 108; id++) {
                const RunResult *r = wait_finished(f, id, 10);
                assert_int_equal(r->exit_status, (int) (id % 7));
                assert_string_equal(r->result, id % 7 == 0 ? "success" : "exit-code");
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_success, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exit_code, setup, teardown),
                cmocka_unit_test_setup_teardown(test_killed_by_signal, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cpu_usage_reported, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timeout_terminates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timeout_kills_after_grace, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stop_cancels, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stop_right_after_launch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_release_and_duplicates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invalid_launch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stdin_delivered, setup, teardown),
                cmocka_unit_test_setup_teardown(test_large_stdin, setup, teardown),
                cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
                cmocka_unit_test_setup_teardown(test_notify_progress, setup, teardown),
                cmocka_unit_test_setup_teardown(test_notify_from_outside_ignored, setup, teardown),
                cmocka_unit_test_setup_teardown(test_environment_overrides_and_command, setup, teardown),
                cmocka_unit_test_setup_teardown(test_working_directory, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exec_failure_is_resources, setup, teardown),
                cmocka_unit_test_setup_teardown(test_args_reach_program_literally, setup, teardown),
                cmocka_unit_test_setup_teardown(test_only_stdio_inherited, setup, teardown),
                cmocka_unit_test_setup_teardown(test_output_relay, setup, teardown),
                cmocka_unit_test_setup_teardown(test_leftover_processes_killed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_nice_and_memory_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runs_as_nobody, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runs_as_configured_group, setup, teardown),
                cmocka_unit_test_setup_teardown(test_not_root_refuses_other_user, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exit_status_lost, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reentrant_handlers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_many_parallel, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
