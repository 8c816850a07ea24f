/* SPDX-License-Identifier: MIT */
#include <signal.h>
#include <string.h>
#include <time.h>

#include "cli/cli-format.h"
#include "shared/timestamp.h"
#include "shared/util.h"

int cli_exit_code_for_error(const char *code) {
        static const char *const refused[] = {
                "forbidden", "unknown_task", "command_not_allowed", "bad_request",
                "not_found", "bad_frame",    "frame_too_large",     "quota_exceeded",
        };

        if (!code)
                return CLI_EXIT_INTERNAL;
        if (streq(code, "unavailable"))
                return CLI_EXIT_UNAVAILABLE;
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                if (streq(code, refused[i]))
                        return CLI_EXIT_REFUSED;
        return CLI_EXIT_INTERNAL; /* "internal" and anything this client does not know */
}

static const char *get_string(const cJSON *obj, const char *name) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* An integral JSON number, or false if absent, null or not integral. */
static bool get_int(const cJSON *obj, const char *name, int64_t *ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= -9.0e15 && v->valuedouble <= 9.0e15) ||
            (double) (int64_t) v->valuedouble != v->valuedouble)
                return false;
        *ret = (int64_t) v->valuedouble;
        return true;
}

int cli_exit_code_for_task(const cJSON *record) {
        const char *state = get_string(record, "state");
        int64_t status;

        if (!state)
                return CLI_EXIT_INTERNAL;
        if (streq(state, "succeeded"))
                return CLI_EXIT_OK;
        if (streq(state, "queued") || streq(state, "running"))
                return CLI_EXIT_TIMEOUT;
        if (!streq(state, "failed") && !streq(state, "cancelled"))
                return CLI_EXIT_INTERNAL;
        if (get_int(record, "exit_status", &status) && status > 0 && status <= 255)
                return (int) status;
        return CLI_EXIT_TASK_FAILED;
}

int cli_parse_timestamp(const char *s, int64_t *ret_usec) {
        int64_t sec, usec = 0;
        const char *p = s;

        if (!s || scan_utc_date_time(&p, 'T', &sec) < 0)
                return -EINVAL;
        if (*p == '.') {
                int64_t scale = 100000;
                unsigned digits = 0;
                for (p++; *p >= '0' && *p <= '9'; p++, digits++)
                        if (digits < 6) {
                                usec += (*p - '0') * scale;
                                scale /= 10;
                        }
                if (digits == 0 || digits > 9)
                        return -EINVAL;
        }
        if (!scan_char(&p, 'Z') || *p != 0)
                return -EINVAL;
        *ret_usec = sec * 1000000 + usec;
        return 0;
}

static void format_usec(int64_t usec, bool with_ms, char *buf, size_t size) {
        int64_t sec = usec / 1000000, rem = usec % 1000000;
        struct tm tm;
        char date[64], zone[32];

        if (rem < 0) {
                rem += 1000000;
                sec--;
        }
        time_t t = (time_t) sec;
        if (!localtime_r(&t, &tm) || strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm) == 0) {
                (void) snprintf(buf, size, "@%lld", (long long) sec);
                return;
        }
        if (!with_ms) {
                (void) snprintf(buf, size, "%s", date);
                return;
        }
        if (strftime(zone, sizeof(zone), "%Z", &tm) == 0)
                zone[0] = 0;
        (void) snprintf(buf, size, "%s.%03d%s%s", date, (int) (rem / 1000), zone[0] ? " " : "", zone);
}

void cli_format_time(const char *iso, bool with_ms, char *buf, size_t size) {
        int64_t usec;

        if (!iso) {
                (void) snprintf(buf, size, "-");
                return;
        }
        if (cli_parse_timestamp(iso, &usec) < 0) {
                (void) snprintf(buf, size, "%s", iso);
                return;
        }
        format_usec(usec, with_ms, buf, size);
}

static bool is_shell_safe(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               strchr("_@%+=:,./-", c) != NULL;
}

static bool is_control(unsigned char c) {
        return c < 0x20 || c == 0x7f;
}

static bool has_control(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (is_control(*p))
                        return true;
        return false;
}

char *cli_shell_quote(const char *s) {
        size_t len = strlen(s);
        bool plain = len > 0, control = false;

        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (!is_shell_safe(*p))
                        plain = false;
                if (is_control(*p))
                        control = true;
        }
        if (plain)
                return strdup(s);

        /* Worst case: every byte becomes "\xHH" or "'\''" (4 bytes), plus "$'" "'" and NUL. */
        char *buf = malloc(4 * len + 4), *o = buf;
        if (!buf)
                return NULL;

        if (!control) {
                *o++ = '\'';
                for (const char *p = s; *p; p++) {
                        if (*p == '\'') {
                                memcpy(o, "'\\''", 4);
                                o += 4;
                        } else
                                *o++ = *p;
                }
                *o++ = '\'';
                *o = 0;
                return buf;
        }

        *o++ = '$';
        *o++ = '\'';
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                switch (*p) {
                case '\n':
                        o += sprintf(o, "\\n");
                        break;
                case '\t':
                        o += sprintf(o, "\\t");
                        break;
                case '\r':
                        o += sprintf(o, "\\r");
                        break;
                case '\\':
                        o += sprintf(o, "\\\\");
                        break;
                case '\'':
                        o += sprintf(o, "\\'");
                        break;
                default:
                        if (is_control(*p))
                                o += sprintf(o, "\\x%02x", *p);
                        else
                                *o++ = (char) *p;
                }
        }
        *o++ = '\'';
        *o = 0;
        return buf;
}

/* Strings from records may hold anything a client sent: never let control characters reach a terminal. */
static void put_escaped(FILE *f, const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '\n')
                        fputs("\\n", f);
                else if (*p == '\t')
                        fputs("\\t", f);
                else if (is_control(*p))
                        fprintf(f, "\\x%02x", *p);
                else
                        fputc(*p, f);
        }
}

char *cli_task_command_line(const cJSON *record) {
        const char *task = get_string(record, "task"), *cmd = get_string(record, "cmd");
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;

        if (task) {
                char *q = cli_shell_quote(task);
                if (!q)
                        goto oom;
                fputs(q, f);
                free(q);

                const cJSON *arg, *args = cJSON_GetObjectItemCaseSensitive(record, "args");
                if (!cJSON_IsArray(args))
                        args = NULL;
                cJSON_ArrayForEach (arg, args) {
                        if (!cJSON_IsString(arg))
                                continue;
                        q = cli_shell_quote(arg->valuestring);
                        if (!q)
                                goto oom;
                        fputc(' ', f);
                        fputs(q, f);
                        free(q);
                }
        } else if (cmd) {
                char *q = cli_shell_quote(cmd);
                if (!q)
                        goto oom;
                fputs("sh -c ", f);
                fputs(q, f);
                free(q);
        } else
                fputs("?", f);

        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
oom:
        fclose(f);
        free(buf);
        return NULL;
}

/* "exit status 3", "killed by signal 9 (KILL)", "timed out", or the result word itself. */
static void describe_result(const cJSON *record, char *buf, size_t size) {
        const char *result = get_string(record, "result");
        int64_t v;

        if (!result) {
                (void) snprintf(buf, size, "no result");
                return;
        }
        if (streq(result, "exit-code") && get_int(record, "exit_status", &v))
                (void) snprintf(buf, size, "exit status %lld", (long long) v);
        else if ((streq(result, "signal") || streq(result, "core-dump")) && get_int(record, "signal", &v)) {
                const char *name = v > 0 && v < 65 ? sigabbrev_np((int) v) : NULL;
                (void) snprintf(buf, size, "%s by signal %lld%s%s%s",
                                streq(result, "core-dump") ? "dumped core, killed" : "killed", (long long) v,
                                name ? " (" : "", name ? name : "", name ? ")" : "");
        } else if (streq(result, "timeout"))
                (void) snprintf(buf, size, "timed out");
        else if (streq(result, "oom-kill"))
                (void) snprintf(buf, size, "killed for lack of memory (oom-kill)");
        else
                (void) snprintf(buf, size, "%s", result);
}

void cli_describe_outcome(const cJSON *record, char *buf, size_t size) {
        const char *state = get_string(record, "state"), *error = get_string(record, "error");
        int64_t attempts = 0, max_attempts = 0;
        char why[160];

        if (!state)
                state = "unknown";
        (void) get_int(record, "attempts", &attempts);
        (void) get_int(record, "max_attempts", &max_attempts);
        describe_result(record, why, sizeof(why));
        if (error && *error && !strstr(why, error)) {
                size_t n = strlen(why);
                (void) snprintf(why + n, sizeof(why) - n, " (%s)", error);
        }

        if (streq(state, "succeeded"))
                (void) snprintf(buf, size, "succeeded");
        else if (streq(state, "failed") && attempts > 1)
                (void) snprintf(buf, size, "failed after %lld attempts: %s", (long long) attempts, why);
        else if (streq(state, "failed"))
                (void) snprintf(buf, size, "failed: %s", why);
        else if (streq(state, "cancelled"))
                (void) snprintf(buf, size, "cancelled");
        else if (streq(state, "running"))
                (void) snprintf(buf, size, "running (attempt %lld of %lld)", (long long) attempts,
                                (long long) max_attempts);
        else if (streq(state, "queued") && get_string(record, "result"))
                (void) snprintf(buf, size, "queued for attempt %lld of %lld (attempt %lld: %s)",
                                (long long) attempts + 1, (long long) max_attempts, (long long) attempts,
                                why);
        else
                (void) snprintf(buf, size, "%s", state);

        /* The outcome may end up on a terminal: no control characters. */
        for (char *p = buf; *p; p++)
                if (is_control((unsigned char) *p))
                        *p = '?';
}

static void print_label(FILE *f, const char *label) {
        fprintf(f, "%-13s ", label);
}

static void print_string_field(FILE *f, const char *label, const cJSON *record, const char *name) {
        const char *v = get_string(record, name);
        print_label(f, label);
        put_escaped(f, v ? v : "-");
        fputc('\n', f);
}

static void print_int_field(FILE *f, const char *label, const cJSON *record, const char *name) {
        int64_t v;
        print_label(f, label);
        if (get_int(record, name, &v))
                fprintf(f, "%lld\n", (long long) v);
        else
                fputs("-\n", f);
}

static void print_time_field(FILE *f, const char *label, const cJSON *record, const char *name) {
        char buf[96];
        const char *v = get_string(record, name);

        cli_format_time(v, true, buf, sizeof(buf));
        print_label(f, label);
        put_escaped(f, buf);
        fputc('\n', f);
}

static void print_scalar(FILE *f, const cJSON *v) {
        if (cJSON_IsString(v))
                put_escaped(f, v->valuestring);
        else if (cJSON_IsNumber(v))
                fprintf(f, "%.17g", v->valuedouble);
        else if (cJSON_IsBool(v))
                fputs(cJSON_IsTrue(v) ? "true" : "false", f);
        else if (cJSON_IsNull(v))
                fputs("-", f);
        else {
                char *s = cJSON_PrintUnformatted(v);
                put_escaped(f, s ? s : "?");
                cJSON_free(s);
        }
}

/* An every_host parent's runs (docs/cluster.md), one line each: "12  web1  succeeded (success)". */
static void print_children(FILE *f, const cJSON *record) {
        const cJSON *child, *children = cJSON_GetObjectItemCaseSensitive(record, "children");
        bool first = true;

        if (!cJSON_IsArray(children))
                return;
        cJSON_ArrayForEach (child, children) {
                const char *node = get_string(child, "node"), *state = get_string(child, "state"),
                           *result = get_string(child, "result");
                int64_t id;

                print_label(f, first ? "children:" : "");
                first = false;
                if (get_int(child, "id", &id))
                        fprintf(f, "%lld", (long long) id);
                else
                        fputc('-', f);
                fputs("  ", f);
                put_escaped(f, node ? node : "-");
                fputs("  ", f);
                put_escaped(f, state ? state : "-");
                if (result) {
                        fputs(" (", f);
                        put_escaped(f, result);
                        fputc(')', f);
                }
                fputc('\n', f);
        }
}

/* Fields the server may add in a later version: shown rather than dropped. */
static void print_other_fields(FILE *f, const cJSON *obj, const char *const *known, size_t n_known) {
        const cJSON *v;

        cJSON_ArrayForEach (v, obj) {
                bool is_known = false;
                if (!v->string)
                        continue;
                for (size_t i = 0; i < n_known && !is_known; i++)
                        is_known = streq(v->string, known[i]);
                if (is_known)
                        continue;
                char label[64];
                (void) snprintf(label, sizeof(label), "%s:", v->string);
                print_label(f, label);
                print_scalar(f, v);
                fputc('\n', f);
        }
}

void cli_print_record(FILE *f, const cJSON *record) {
        static const char *const known[] = {
                "ok",         "id",           "task",        "cmd",       "args",      "state",
                "attempts",   "max_attempts", "priority",    "key",       "submitter", "unit",
                "created_at", "started_at",   "finished_at", "run_after", "result",    "exit_status",
                "signal",     "error",        "progress",    "children",
        };
        const char *cmd = get_string(record, "cmd");
        int64_t attempts, max_attempts, started, finished, sig;

        print_int_field(f, "id:", record, "id");
        if (cmd && !get_string(record, "task")) {
                print_label(f, "cmd:");
                /* Shown as typed unless it holds control characters: then quoted, on one line. */
                if (has_control(cmd)) {
                        _cleanup_free_ char *q = cli_shell_quote(cmd);
                        fputs(q ? q : "?", f);
                } else
                        fputs(cmd, f);
                fputc('\n', f);
        } else {
                print_string_field(f, "task:", record, "task");
                const cJSON *arg, *args = cJSON_GetObjectItemCaseSensitive(record, "args");
                bool first = true;
                if (!cJSON_IsArray(args))
                        args = NULL;
                print_label(f, "args:");
                cJSON_ArrayForEach (arg, args) {
                        if (!cJSON_IsString(arg))
                                continue;
                        _cleanup_free_ char *q = cli_shell_quote(arg->valuestring);
                        fprintf(f, "%s%s", first ? "" : " ", q ? q : "?");
                        first = false;
                }
                fputs(first ? "-\n" : "\n", f);
        }
        print_string_field(f, "state:", record, "state");
        print_label(f, "attempts:");
        if (get_int(record, "attempts", &attempts) && get_int(record, "max_attempts", &max_attempts))
                fprintf(f, "%lld of %lld\n", (long long) attempts, (long long) max_attempts);
        else if (get_int(record, "attempts", &attempts))
                fprintf(f, "%lld\n", (long long) attempts);
        else
                fputs("-\n", f);
        print_int_field(f, "priority:", record, "priority");
        print_string_field(f, "key:", record, "key");
        print_string_field(f, "submitter:", record, "submitter");
        print_string_field(f, "unit:", record, "unit");
        print_time_field(f, "created_at:", record, "created_at");
        print_time_field(f, "run_after:", record, "run_after");
        print_time_field(f, "started_at:", record, "started_at");
        print_time_field(f, "finished_at:", record, "finished_at");
        if (cli_parse_timestamp(get_string(record, "started_at"), &started) >= 0 &&
            cli_parse_timestamp(get_string(record, "finished_at"), &finished) >= 0 && finished >= started) {
                print_label(f, "duration:");
                fprintf(f, "%.3f s\n", (double) (finished - started) / 1e6);
        }
        print_string_field(f, "result:", record, "result");
        print_int_field(f, "exit_status:", record, "exit_status");
        print_label(f, "signal:");
        if (get_int(record, "signal", &sig)) {
                const char *name = sig > 0 && sig < 65 ? sigabbrev_np((int) sig) : NULL;
                fprintf(f, "%lld%s%s%s\n", (long long) sig, name ? " (SIG" : "", name ? name : "",
                        name ? ")" : "");
        } else
                fputs("-\n", f);
        print_string_field(f, "error:", record, "error");
        print_string_field(f, "progress:", record, "progress");
        print_children(f, record);
        print_other_fields(f, record, known, ELEMENTSOF(known));
}

/* Display width of UTF-8 text: one column per code point (good enough for a table of commands). */
static size_t text_width(const char *s) {
        size_t w = 0;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if ((*p & 0xc0) != 0x80)
                        w++;
        return w;
}

/* Cuts s in place to at most max columns, ending in "..." when cut, never inside a UTF-8 sequence. */
static void truncate_text(char *s, size_t max) {
        size_t w = 0;

        if (text_width(s) <= max)
                return;
        for (unsigned char *p = (unsigned char *) s; *p; p++) {
                if ((*p & 0xc0) != 0x80) {
                        if (w == max - 3) {
                                strcpy((char *) p, "...");
                                return;
                        }
                        w++;
                }
        }
}

enum { COL_ID, COL_STATE, COL_ATTEMPTS, COL_COMMAND, COL_CREATED, COL_RESULT, _COL_MAX };

static void result_cell(const cJSON *record, int64_t now_usec, char *buf, size_t size) {
        const char *state = get_string(record, "state");
        int64_t run_after;
        size_t n;

        if (get_string(record, "result"))
                describe_result(record, buf, size);
        else
                (void) snprintf(buf, size, "-");

        /* A running task's last result is an earlier attempt's: what it says of itself now is news. */
        if (state && streq(state, "running") && get_string(record, "progress") &&
            get_string(record, "progress")[0])
                (void) snprintf(buf, size, "%s", get_string(record, "progress"));
        if (state && streq(state, "queued") &&
            cli_parse_timestamp(get_string(record, "run_after"), &run_after) >= 0 && run_after > now_usec) {
                char when[64];
                format_usec(run_after, false, when, sizeof(when));
                /* Only the time of day: it is soon, and the date is in the CREATED column. */
                const char *hms = strchr(when, ' ');
                if (streq(buf, "-"))
                        buf[0] = 0;
                n = strlen(buf);
                (void) snprintf(buf + n, size - n, "%sruns at %s", n ? ", " : "", hms ? hms + 1 : when);
        }
        for (char *p = buf; *p; p++)
                if (is_control((unsigned char) *p))
                        *p = '?';
}

void cli_print_task_table(FILE *f, const cJSON *tasks, int64_t now_usec, bool header_line) {
        static const char *const header[_COL_MAX] = {"ID",       "STATE",   "ATTEMPTS",
                                                     "TASK/CMD", "CREATED", "RESULT"};
        size_t width[_COL_MAX], n = 0, row = 0;
        const cJSON *t;

        cJSON_ArrayForEach (t, tasks)
                n++;
        if (n == 0) {
                if (header_line)
                        fputs("no tasks\n", f);
                return;
        }

        char *(*cells)[_COL_MAX] = calloc(n, sizeof(*cells));
        if (!cells) {
                fputs("asynctask: out of memory\n", stderr);
                return;
        }

        for (size_t c = 0; c < _COL_MAX; c++)
                width[c] = strlen(header[c]);

        cJSON_ArrayForEach (t, tasks) {
                char buf[256];
                int64_t id = 0, attempts = 0, max_attempts = 0;
                const char *state = get_string(t, "state");

                (void) get_int(t, "id", &id);
                (void) get_int(t, "attempts", &attempts);
                (void) get_int(t, "max_attempts", &max_attempts);

                (void) snprintf(buf, sizeof(buf), "%lld", (long long) id);
                cells[row][COL_ID] = strdup(buf);
                /* A queued run of a paused task waits for a resume, not for its turn. */
                cells[row][COL_STATE] = strdup(!state ? "?"
                                               : cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "paused"))
                                                       ? "queued (paused)"
                                                       : state);
                (void) snprintf(buf, sizeof(buf), "%lld/%lld", (long long) attempts,
                                (long long) max_attempts);
                cells[row][COL_ATTEMPTS] = strdup(buf);
                cells[row][COL_COMMAND] = cli_task_command_line(t);
                if (cells[row][COL_COMMAND])
                        truncate_text(cells[row][COL_COMMAND], CLI_LIST_COMMAND_WIDTH);
                cli_format_time(get_string(t, "created_at"), false, buf, sizeof(buf));
                cells[row][COL_CREATED] = strdup(buf);
                result_cell(t, now_usec, buf, sizeof(buf));
                cells[row][COL_RESULT] = strdup(buf);

                for (size_t c = 0; c < _COL_MAX; c++) {
                        if (!cells[row][c])
                                continue;
                        /* The state could be anything a future server sends: keep the table on one line. */
                        for (char *p = cells[row][c]; *p; p++)
                                if (is_control((unsigned char) *p))
                                        *p = '?';
                        size_t w = text_width(cells[row][c]);
                        if (w > width[c])
                                width[c] = w;
                }
                row++;
        }

        for (size_t r = header_line ? 0 : 1; r <= n; r++)
                for (size_t c = 0; c < _COL_MAX; c++) {
                        const char *s = r == 0 ? header[c] : cells[r - 1][c] ? cells[r - 1][c] : "?";
                        if (c == _COL_MAX - 1)
                                fprintf(f, "%s\n", s);
                        else if (c == COL_ID)
                                /* numbers right-aligned */
                                fprintf(f, "%*s  ", (int) width[c], s);
                        else
                                fprintf(f, "%s%*s  ", s, (int) (width[c] - text_width(s)), "");
                }

        for (size_t r = 0; r < n; r++)
                for (size_t c = 0; c < _COL_MAX; c++)
                        free(cells[r][c]);
        free(cells);
}

void cli_print_stats(FILE *f, const cJSON *stats) {
        static const char *const known[] = {
                "ok",          "queued",   "running", "succeeded", "failed", "cancelled", "submitted_total",
                "connections", "launcher", "store",   "draining",  "paused",
        };
        const cJSON *paused = cJSON_GetObjectItemCaseSensitive(stats, "paused"), *p;
        int64_t q = 0, r = 0, s = 0, fl = 0, c = 0, total;

        (void) get_int(stats, "queued", &q);
        (void) get_int(stats, "running", &r);
        (void) get_int(stats, "succeeded", &s);
        (void) get_int(stats, "failed", &fl);
        (void) get_int(stats, "cancelled", &c);
        print_label(f, "tasks:");
        fprintf(f, "%lld queued, %lld running, %lld succeeded, %lld failed, %lld cancelled\n", (long long) q,
                (long long) r, (long long) s, (long long) fl, (long long) c);
        if (get_int(stats, "submitted_total", &total)) {
                print_label(f, "submitted:");
                fprintf(f, "%lld since the daemon started\n", (long long) total);
        }
        print_int_field(f, "connections:", stats, "connections");
        print_string_field(f, "launcher:", stats, "launcher");
        print_string_field(f, "store:", stats, "store");
        if (cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(stats, "draining"))) {
                print_label(f, "draining:");
                fputs(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(stats, "draining"))
                              ? "yes: this host starts no new runs (asynctask undrain)\n"
                              : "no\n",
                      f);
        }
        if (cJSON_IsArray(paused)) {
                print_label(f, "paused:");
                if (cJSON_GetArraySize(paused) == 0)
                        fputs("none", f);
                cJSON_ArrayForEach (p, paused) {
                        char since[64];
                        cli_format_time(get_string(p, "since"), false, since, sizeof(since));
                        if (p != paused->child)
                                fputs(", ", f);
                        put_escaped(f, get_string(p, "task") ? get_string(p, "task") : "?");
                        fputs(" (by ", f);
                        put_escaped(f, get_string(p, "by") ? get_string(p, "by") : "?");
                        fprintf(f, " since %s)", since);
                }
                fputc('\n', f);
        }
        print_other_fields(f, stats, known, ELEMENTSOF(known));
}
