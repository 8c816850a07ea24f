/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
/* sd_journal_sendv() would otherwise add CODE_FILE=, CODE_LINE= and CODE_FUNC= of emit() below to
 * every message: the caller's own, added here, are the ones worth having. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "shared/log.h"

static const char *log_identifier = "asynctask";
static int log_max_level = LOG_INFO;
static int log_to_journal = -1; /* decided on first use */

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg",     [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "err",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_open(const char *identifier) {
        log_identifier = identifier;
        log_to_journal = -1;
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_parse_level(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (streq(level_names[i], s))
                        return (int) i;
        if (streq(s, "error"))
                return LOG_ERR;
        return -EINVAL;
}

/* The journal when our stderr is connected to it (systemd sets JOURNAL_STREAM to its device and
 * inode), so that messages carry fields; a terminal or a test harness gets plain lines on stderr. */
static bool want_journal(void) {
        if (log_to_journal < 0) {
                const char *e = getenv("JOURNAL_STREAM");
                struct stat st;
                unsigned long long dev, ino;

                log_to_journal = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 &&
                                 fstat(STDERR_FILENO, &st) == 0 && (unsigned long long) st.st_dev == dev &&
                                 (unsigned long long) st.st_ino == ino;
        }
        return log_to_journal;
}

static int emit(int level, int error, const char *message_id, uint64_t task_id, const char *task_name,
                const char *unit, const char *file, int line, const char *func, const char *fmt,
                va_list ap) {
        char message[2048];
        int saved_errno = errno;

        if (error != 0)
                errno = error < 0 ? -error : error; /* so that %m prints it */
        (void) vsnprintf(message, sizeof(message), fmt, ap);
        errno = saved_errno;

        if (level > log_max_level)
                return error == 0 ? 0 : -(error < 0 ? -error : error);

        if (want_journal()) {
                char fields[10][2200];
                struct iovec iov[10];
                size_t n = 0;

#define ADD_FIELD(...)                                                                                      \
        do {                                                                                                \
                int _l = snprintf(fields[n], sizeof(fields[n]), __VA_ARGS__);                               \
                iov[n].iov_base = fields[n];                                                                \
                iov[n].iov_len = _l < (int) sizeof(fields[n]) ? (size_t) _l : sizeof(fields[n]) - 1;        \
                n++;                                                                                        \
        } while (0)
                ADD_FIELD("MESSAGE=%s", message);
                ADD_FIELD("PRIORITY=%i", level);
                ADD_FIELD("SYSLOG_IDENTIFIER=%s", log_identifier);
                if (message_id)
                        ADD_FIELD("MESSAGE_ID=%s", message_id);
                if (file) {
                        ADD_FIELD("CODE_FILE=%s", file);
                        ADD_FIELD("CODE_LINE=%d", line);
                }
                if (func)
                        ADD_FIELD("CODE_FUNC=%s", func);
                if (task_id)
                        ADD_FIELD("ASYNCTASK_ID=%llu", (unsigned long long) task_id);
                if (task_name)
                        ADD_FIELD("ASYNCTASK_TASK=%s", task_name);
                if (unit)
                        ADD_FIELD("UNIT=%s", unit);
#undef ADD_FIELD
                (void) sd_journal_sendv(iov, (int) n);
        } else {
                if (task_id)
                        fprintf(stderr, "%s[%d]: %s: task %llu: %s\n", log_identifier, (int) getpid(),
                                level_names[level], (unsigned long long) task_id, message);
                else
                        fprintf(stderr, "%s[%d]: %s: %s\n", log_identifier, (int) getpid(),
                                level_names[level], message);
        }
        return error == 0 ? 0 : -(error < 0 ? -error : error);
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = emit(level, error, NULL, 0, NULL, NULL, file, line, func, fmt, ap);
        va_end(ap);
        return r;
}

int log_task_internal(int level, int error, uint64_t task_id, const char *task_name, const char *unit,
                      const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = emit(level, error, NULL, task_id, task_name, unit, NULL, 0, NULL, fmt, ap);
        va_end(ap);
        return r;
}

int log_event_internal(int level, const char *message_id, uint64_t task_id, const char *task_name,
                       const char *unit, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = emit(level, 0, message_id, task_id, task_name, unit, NULL, 0, NULL, fmt, ap);
        va_end(ap);
        return r;
}
