/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include "shared/calendar.h"
#include "shared/timestamp.h"
#include "shared/util.h"

extern char **environ;

/* systemd-analyze answers in milliseconds; this bounds a stuck one. */
#define ANALYZE_TIMEOUT_USEC (10 * USEC_PER_SEC)
/* Its output for CALENDAR_BATCH elapses is about 6 KiB; more means something else is talking. */
#define ANALYZE_OUTPUT_MAX (64 * 1024)
/* Looking back for the latest elapse: windows of 64 s, 8 times wider each time, up to 2^30 s (34
 * years: a leap day's expression elapses every 4 or 8 years). */
#define LOOKBACK_FIRST_SEC 64ULL
#define LOOKBACK_MAX_SEC   (1ULL << 30)
/* Batches read within one window: an expression elapsing more often than CALENDAR_BATCH times in
 * 64 s needs a few; past this many it elapses many times a second, which a slot (a second) cannot
 * tell apart anyway. */
#define LOOKBACK_BATCHES_MAX 64

/* ---- reading systemd-analyze's text ------------------------------------------------------------ */

/* "Thu 2024-06-06 03:00:00 UTC" (the weekday and the zone as the tool's locale and zone name them):
 * the date and time, as UTC when utc, else only if the zone is UTC by another name (local time is
 * UTC, so there is no "(in UTC)" line). */
static int parse_timestamp(const char *s, bool utc, uint64_t *ret) {
        const char *p = strchr(s, ' ');
        int64_t sec;

        if (!p)
                return -EBADMSG;
        p++;
        if (scan_utc_date_time(&p, ' ', &sec) < 0 || !scan_char(&p, ' '))
                return -EBADMSG;
        if (!utc && !streq(p, "UTC") && !streq(p, "GMT") && !streq(p, "UCT"))
                return -EBADMSG;
        if (utc && !streq(p, "UTC"))
                return -EBADMSG;
        if (sec < 0)
                return -EBADMSG;
        *ret = (uint64_t) sec * USEC_PER_SEC;
        return 0;
}

int calendar_parse_elapses(const char *text, uint64_t *ret, size_t max, size_t *ret_n) {
        /* Each elapse's line as written, then replaced by its "(in UTC)" line when one follows. */
        const char *value[CALENDAR_BATCH];
        size_t value_len[CALENDAR_BATCH];
        bool utc[CALENDAR_BATCH];
        size_t n = 0;
        bool never = false;

        if (!text || !ret || !ret_n)
                return -EINVAL;
        for (const char *line = text; *line;) {
                size_t len = strcspn(line, "\n");
                const char *p = line + strspn(line, " "), *end = line + len;
                const char *colon = memchr(p, ':', (size_t) (end - p));

                line = end + (*end == '\n');
                if (!colon || colon + 1 >= end || colon[1] != ' ')
                        continue;
                size_t field_len = (size_t) (colon - p);
                const char *v = colon + 2;
                bool is_elapse = (field_len == strlen("Next elapse") && startswith(p, "Next elapse")) ||
                                 startswith(p, "Iter. #");
                bool is_utc = field_len == strlen("(in UTC)") && startswith(p, "(in UTC)");

                if (is_elapse && end - v == 5 && startswith(v, "never")) {
                        never = true;
                        continue;
                }
                if (is_elapse) {
                        if (never || n >= ELEMENTSOF(value))
                                return -EBADMSG;
                        value[n] = v;
                        value_len[n] = (size_t) (end - v);
                        utc[n++] = false;
                } else if (is_utc) {
                        if (n == 0 || utc[n - 1])
                                return -EBADMSG;
                        value[n - 1] = v;
                        value_len[n - 1] = (size_t) (end - v);
                        utc[n - 1] = true;
                }
        }
        if (n == 0 && !never)
                return -EBADMSG;

        size_t k = 0;
        for (size_t i = 0; i < n && k < max; i++) {
                char buf[64];
                int r;

                if (value_len[i] >= sizeof(buf))
                        return -EBADMSG;
                memcpy(buf, value[i], value_len[i]);
                buf[value_len[i]] = '\0';
                r = parse_timestamp(buf, utc[i], &ret[k]);
                if (r < 0)
                        return r;
                if (k > 0 && ret[k] < ret[k - 1])
                        return -EBADMSG;
                k++;
        }
        *ret_n = k;
        return 0;
}

/* ---- running it -------------------------------------------------------------------------------- */

/* The environment minus what would change the text (locale, colours), plus LC_ALL=C. TZ stays: it is
 * the time zone of expressions that name none, as for PID 1. Pointers into environ. */
static char **analyze_environment(void) {
        size_t n = 0, k = 0;

        for (char **e = environ; e && *e; e++)
                n++;
        char **env = calloc(n + 3, sizeof(char *));
        if (!env)
                return NULL;
        for (char **e = environ; e && *e; e++)
                if (!startswith(*e, "LC_") && !startswith(*e, "LANG=") && !startswith(*e, "LANGUAGE=") &&
                    !startswith(*e, "SYSTEMD_COLORS="))
                        env[k++] = *e;
        env[k++] = (char *) "LC_ALL=C";
        env[k++] = (char *) "SYSTEMD_COLORS=0";
        return env;
}

typedef struct Capture {
        char *buf;
        size_t len;
} Capture;

/* Reads the child's stdout and stderr to their ends (both, so that neither pipe fills up). */
static int capture_output(int out_fd, int err_fd, Capture *out, Capture *err) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + ANALYZE_TIMEOUT_USEC;
        struct pollfd p[2] = {{.fd = out_fd, .events = POLLIN}, {.fd = err_fd, .events = POLLIN}};
        Capture *c[2] = {out, err};

        out->buf = malloc(ANALYZE_OUTPUT_MAX + 1);
        err->buf = malloc(ANALYZE_OUTPUT_MAX + 1);
        if (!out->buf || !err->buf)
                return -ENOMEM;
        while (p[0].fd >= 0 || p[1].fd >= 0) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline)
                        return -ETIMEDOUT;
                int r = poll(p, 2, (int) ((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                for (size_t i = 0; i < 2; i++) {
                        if (p[i].fd < 0 || !p[i].revents)
                                continue;
                        if (c[i]->len >= ANALYZE_OUTPUT_MAX)
                                return -EFBIG;
                        ssize_t k = read(p[i].fd, c[i]->buf + c[i]->len, ANALYZE_OUTPUT_MAX - c[i]->len);
                        if (k < 0 && errno != EINTR && errno != EAGAIN)
                                return -errno;
                        if (k == 0)
                                p[i].fd = -1;
                        else if (k > 0)
                                c[i]->len += (size_t) k;
                }
        }
        out->buf[out->len] = '\0';
        err->buf[err->len] = '\0';
        return 0;
}

/* Runs argv with stdin from /dev/null and captures its output. Returns its exit status (>= 0, or 128
 * + signal), -ENOENT when the program is not found, -errno. */
static int run_capture(const char *const *argv, Capture *out, Capture *err) {
        _cleanup_free_ char **env = analyze_environment();
        _cleanup_close_ int out_read = -1, err_read = -1;
        int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
        posix_spawn_file_actions_t actions;
        pid_t pid;
        int r, status;

        if (!env)
                return -ENOMEM;
        if (pipe2(out_pipe, O_CLOEXEC) < 0)
                return -errno;
        out_read = out_pipe[0];
        if (pipe2(err_pipe, O_CLOEXEC) < 0) {
                (void) close(out_pipe[1]);
                return -errno;
        }
        err_read = err_pipe[0];

        r = posix_spawn_file_actions_init(&actions);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
        if (r == 0)
                r = posix_spawnp(&pid, argv[0], &actions, NULL, (char *const *) argv, env);
        posix_spawn_file_actions_destroy(&actions);
        (void) close(out_pipe[1]);
        (void) close(err_pipe[1]);
        if (r != 0)
                return -r;

        r = capture_output(out_read, err_read, out, err);
        if (r < 0)
                (void) kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return r < 0 ? r : -errno;
        if (r < 0)
                return r;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The first line of what the tool said, for a message. */
static void first_line(const char *text, char *buf, size_t size) {
        if (!buf || size == 0)
                return;
        (void) snprintf(buf, size, "%.*s", (int) strcspn(text, "\n"), text);
}

int calendar_next_elapses(const char *expr, uint64_t base_usec, size_t n, uint64_t *ret, size_t *ret_n,
                          char *errbuf, size_t errbuf_size) {
        char base[64], iterations[32];
        Capture out = {}, err = {};
        int r;

        if (!expr || !ret || !ret_n || n == 0 || n > CALENDAR_BATCH)
                return -EINVAL;
        /* "@SECONDS.USEC": the base as an exact point in time, whatever the time zone. */
        (void) snprintf(base, sizeof(base), "--base-time=@%llu.%06llu",
                        (unsigned long long) (base_usec / USEC_PER_SEC),
                        (unsigned long long) (base_usec % USEC_PER_SEC));
        (void) snprintf(iterations, sizeof(iterations), "--iterations=%zu", n);
        const char *argv[] = {
                CALENDAR_ANALYZE_PROGRAM, "--no-pager", "calendar", base, iterations, "--", expr, NULL};

        r = run_capture(argv, &out, &err);
        if (r > 0) {
                first_line(err.len ? err.buf : "systemd-analyze calendar failed", errbuf, errbuf_size);
                r = -EINVAL;
        } else if (r == 0)
                r = calendar_parse_elapses(out.buf, ret, n, ret_n);
        free(out.buf);
        free(err.buf);
        return r;
}

/* ---- slots ------------------------------------------------------------------------------------- */

/* The latest elapse of one expression at or before at: back through wider and wider windows, reading
 * each forward in batches. 0 with *ret, -ESRCH, -errno. */
static int latest_elapse_of(const char *expr, uint64_t at, uint64_t *ret) {
        uint64_t v[CALENDAR_BATCH];

        for (uint64_t window = LOOKBACK_FIRST_SEC; window <= LOOKBACK_MAX_SEC; window *= 8) {
                uint64_t w = window * USEC_PER_SEC, base = at > w ? at - w : 0, best = 0;
                bool found = false, done = false;

                for (unsigned batch = 0; batch < LOOKBACK_BATCHES_MAX && !done; batch++) {
                        size_t n, k = 0;
                        int r = calendar_next_elapses(expr, base, CALENDAR_BATCH, v, &n, NULL, 0);
                        if (r < 0)
                                return r;
                        while (k < n && v[k] <= at)
                                k++;
                        if (k > 0) {
                                best = v[k - 1];
                                found = true;
                        }
                        /* A later one, or no more: the last at or before `at` is known. Else read on
                         * after the last one seen (its whole second: times are to the second). */
                        done = k < CALENDAR_BATCH;
                        base = best + USEC_PER_SEC - 1;
                }
                if (!done)
                        return -E2BIG;
                if (found) {
                        *ret = best;
                        return 0;
                }
        }
        return -ESRCH;
}

int calendar_latest_elapse(char *const *exprs, size_t n, uint64_t at_usec, uint64_t *ret) {
        uint64_t latest = 0;
        bool found = false;

        if (!exprs || n == 0 || !ret)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                uint64_t t;
                int r = latest_elapse_of(exprs[i], at_usec, &t);
                if (r == -ESRCH)
                        continue;
                if (r < 0)
                        return r;
                if (!found || t > latest)
                        latest = t;
                found = true;
        }
        if (!found)
                return -ESRCH;
        *ret = latest;
        return 0;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return (x > y) - (x < y);
}

int calendar_shortest_gap(char *const *exprs, size_t n, uint64_t base_usec, uint64_t *ret_usec) {
        _cleanup_free_ uint64_t *all = NULL;
        uint64_t shortest = UINT64_MAX;
        size_t total = 0;

        if (!exprs || !ret_usec)
                return -EINVAL;
        all = calloc(n * CALENDAR_BATCH + 1, sizeof(uint64_t));
        if (!all)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                size_t k;
                int r = calendar_next_elapses(exprs[i], base_usec, CALENDAR_BATCH, all + total, &k, NULL, 0);
                if (r < 0)
                        return r;
                total += k;
        }
        qsort(all, total, sizeof(uint64_t), cmp_u64);
        for (size_t i = 1; i < total; i++)
                if (all[i] != all[i - 1] && all[i] - all[i - 1] < shortest)
                        shortest = all[i] - all[i - 1];
        *ret_usec = shortest;
        return 0;
}

char *calendar_format_utc(uint64_t usec, char buf[static CALENDAR_UTC_BYTES]) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, CALENDAR_UTC_BYTES, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                (void) snprintf(buf, CALENDAR_UTC_BYTES, "@%llu",
                                (unsigned long long) (usec / USEC_PER_SEC));
        return buf;
}
