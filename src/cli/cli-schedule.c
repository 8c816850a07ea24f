/* SPDX-License-Identifier: MIT */
#include <systemd/sd-bus.h>

#include "cli/cli-format.h"
#include "cli/cli-schedule.h"
#include "shared/calendar.h"
#include "shared/json-util.h"
#include "shared/util.h"

#define SLOT_KEY_PREFIX "schedule:"
#define TIMER_SUFFIX    ".timer"

#define SYSTEMD_SERVICE "org.freedesktop.systemd1"
#define SYSTEMD_PATH    "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"
#define SYSTEMD_TIMER   "org.freedesktop.systemd1.Timer"

/* ---- the key of a slot ------------------------------------------------------------------------- */

int cli_slot_key(const char *task, uint64_t slot_usec, char *buf, size_t size) {
        char when[CALENDAR_UTC_BYTES];
        int n;

        if (!task || !buf)
                return -EINVAL;
        n = snprintf(buf, size, SLOT_KEY_PREFIX "%s@%s", task, calendar_format_utc(slot_usec, when));
        return n < 0 || (size_t) n >= size ? -ENOBUFS : 0;
}

/* ---- the list ---------------------------------------------------------------------------------- */

static bool add_time(cJSON *obj, const char *name, uint64_t usec) {
        char iso[64];
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        if (usec == 0 || usec == UINT64_MAX || !gmtime_r(&t, &tm))
                return cJSON_AddNullToObject(obj, name) != NULL;
        (void) snprintf(iso, sizeof(iso), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                        (unsigned) (usec / USEC_PER_MSEC % 1000));
        return cJSON_AddStringToObject(obj, name, iso) != NULL;
}

cJSON *cli_schedule_entry(const char *timer, const char *load_state, const char *active_state,
                          const char *const *calendars, size_t n_calendars, uint64_t next_usec,
                          uint64_t last_usec) {
        _cleanup_(cjson_deletep) cJSON *e = cJSON_CreateObject();
        size_t prefix = strlen(CLI_SCHEDULE_UNIT_PREFIX), len = timer ? strlen(timer) : 0;
        char task[256];
        cJSON *list;

        if (!e || !timer)
                return NULL;
        /* asynctask-schedule-NAME.timer -> NAME */
        if (len > prefix + strlen(TIMER_SUFFIX) && startswith(timer, CLI_SCHEDULE_UNIT_PREFIX) &&
            streq(timer + len - strlen(TIMER_SUFFIX), TIMER_SUFFIX))
                (void) snprintf(task, sizeof(task), "%.*s", (int) (len - prefix - strlen(TIMER_SUFFIX)),
                                timer + prefix);
        else
                (void) snprintf(task, sizeof(task), "%s", timer);

        const char *state = load_state && !streq(load_state, "loaded") ? load_state : active_state;
        if (!cJSON_AddStringToObject(e, "task", task) || !cJSON_AddStringToObject(e, "timer", timer) ||
            !cJSON_AddStringToObject(e, "state", state ? state : "unknown") ||
            !(list = cJSON_AddArrayToObject(e, "schedule")))
                return NULL;
        for (size_t i = 0; i < n_calendars; i++) {
                cJSON *s = cJSON_CreateString(calendars[i]);
                if (!s || !cJSON_AddItemToArray(list, s)) {
                        cJSON_Delete(s);
                        return NULL;
                }
        }
        if (!add_time(e, "next_elapse", next_usec) || !add_time(e, "last_trigger", last_usec))
                return NULL;
        return TAKE_PTR(e);
}

static const char *entry_string(const cJSON *e, const char *name) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, name);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The calendar expressions of an entry, "; " between them. */
static void join_schedule(const cJSON *e, char *buf, size_t size) {
        const cJSON *item;
        size_t len = 0;

        buf[0] = '\0';
        cJSON_ArrayForEach (item, cJSON_GetObjectItemCaseSensitive(e, "schedule"))
                if (cJSON_IsString(item) && len < size)
                        len += (size_t) snprintf(buf + len, size - len, "%s%s", len ? "; " : "",
                                                 item->valuestring);
        if (len == 0)
                (void) snprintf(buf, size, "-");
}

void cli_print_schedules(FILE *f, const cJSON *schedules) {
        size_t w_task = strlen("TASK"), w_state = strlen("STATE"), n = 0;
        const cJSON *e;

        cJSON_ArrayForEach (e, schedules) {
                const char *task = entry_string(e, "task"), *state = entry_string(e, "state");
                if (task && strlen(task) > w_task)
                        w_task = strlen(task);
                if (state && strlen(state) > w_state)
                        w_state = strlen(state);
                n++;
        }
        if (n == 0) {
                fputs("no scheduled tasks (no timer " CLI_SCHEDULE_UNIT_PREFIX "*.timer is loaded)\n", f);
                return;
        }
        /* The times are in local time to the second: 19 columns. */
        fprintf(f, "%-*s  %-*s  %-19s  %-19s  %s\n", (int) w_task, "TASK", (int) w_state, "STATE", "NEXT",
                "LAST", "SCHEDULE");
        cJSON_ArrayForEach (e, schedules) {
                const char *task = entry_string(e, "task"), *state = entry_string(e, "state");
                char next[64], last[64], calendars[2048];

                cli_format_time(entry_string(e, "next_elapse"), false, next, sizeof(next));
                cli_format_time(entry_string(e, "last_trigger"), false, last, sizeof(last));
                join_schedule(e, calendars, sizeof(calendars));
                fprintf(f, "%-*s  %-*s  %-19s  %-19s  %s\n", (int) w_task, task ? task : "?", (int) w_state,
                        state ? state : "?", next, last, calendars);
        }
}

/* ---- over D-Bus -------------------------------------------------------------------------------- */

static int bus_error(int r, const sd_bus_error *error, const char *what, char *errbuf, size_t size) {
        (void) snprintf(errbuf, size, "%s: %s", what,
                        error && sd_bus_error_is_set(error) && error->message ? error->message
                                                                              : strerror(-r));
        return r;
}

/* The calendar expressions of a timer, from TimersCalendar (a(sst): base, expression, next elapse),
 * as systemd normalized them. */
static int read_calendars(sd_bus *bus, const char *path, char ***ret, size_t *ret_n, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char **v = NULL;
        size_t n = 0;
        const char *base, *expr;
        uint64_t next;
        int r;

        r = sd_bus_get_property(bus, SYSTEMD_SERVICE, path, SYSTEMD_TIMER, "TimersCalendar", error, &reply,
                                "a(sst)");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(sst)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "(sst)", &base, &expr, &next)) > 0) {
                char **grown = realloc(v, (n + 2) * sizeof(char *));
                if (!grown) {
                        strv_free(v);
                        return -ENOMEM;
                }
                v = grown;
                v[n] = strdup(expr);
                v[n + 1] = NULL;
                if (!v[n]) {
                        strv_free(v);
                        return -ENOMEM;
                }
                n++;
        }
        if (r < 0) {
                strv_free(v);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int read_timer(sd_bus *bus, const char *name, const char *load_state, const char *active_state,
                      const char *path, cJSON **ret, char *errbuf, size_t size) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(strv_freep) char **calendars = NULL;
        uint64_t next = 0, last = 0;
        size_t n = 0;
        int r;

        /* A timer that failed to load (a bad calendar expression) has no Timer interface to read. */
        if (streq(load_state, "loaded")) {
                r = sd_bus_get_property_trivial(bus, SYSTEMD_SERVICE, path, SYSTEMD_TIMER,
                                                "NextElapseUSecRealtime", &error, 't', &next);
                if (r >= 0)
                        r = sd_bus_get_property_trivial(bus, SYSTEMD_SERVICE, path, SYSTEMD_TIMER,
                                                        "LastTriggerUSec", &error, 't', &last);
                if (r >= 0)
                        r = read_calendars(bus, path, &calendars, &n, &error);
                if (r < 0)
                        return bus_error(r, &error, name, errbuf, size);
        }
        *ret = cli_schedule_entry(name, load_state, active_state, (const char *const *) calendars, n, next,
                                  last);
        return *ret ? 0 : -ENOMEM;
}

int cli_timer_last_trigger(const char *timer, uint64_t *ret_usec, char *errbuf, size_t errbuf_size) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *path;
        uint64_t usec = 0;
        int r;

        if (!timer || !ret_usec || !errbuf || errbuf_size == 0)
                return -EINVAL;
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return bus_error(r, NULL, "cannot connect to the system bus", errbuf, errbuf_size);
        /* GetUnit, not LoadUnit: only a timer systemd has is asked about, none is loaded for it. */
        r = sd_bus_call_method(bus, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER, "GetUnit", &error,
                               &reply, "s", timer);
        if (r < 0) {
                if (sd_bus_error_has_name(&error, "org.freedesktop.systemd1.NoSuchUnit"))
                        r = -ENOENT;
                return bus_error(r, &error, timer, errbuf, errbuf_size);
        }
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return bus_error(-EBADMSG, NULL, "unexpected answer from systemd", errbuf, errbuf_size);
        r = sd_bus_get_property_trivial(bus, SYSTEMD_SERVICE, path, SYSTEMD_TIMER, "LastTriggerUSec", &error,
                                        't', &usec);
        if (r < 0)
                return bus_error(r, &error, timer, errbuf, errbuf_size);
        *ret_usec = usec == UINT64_MAX ? 0 : usec;
        return 0;
}

static int cmp_entries(const void *a, const void *b) {
        const cJSON *x = *(const cJSON *const *) a, *y = *(const cJSON *const *) b;
        return strcmp(entry_string(x, "task"), entry_string(y, "task"));
}

/* The entries read so far, to be sorted by task before they make the list. */
typedef struct Entries {
        cJSON **v;
        size_t n, allocated;
} Entries;

static void entries_done(Entries *e) {
        for (size_t i = 0; i < e->n; i++)
                cJSON_Delete(e->v[i]);
        free(e->v);
}

static int entries_add(Entries *e, cJSON *entry) {
        if (e->n == e->allocated) {
                size_t more = e->allocated ? e->allocated * 2 : 16;
                cJSON **grown = realloc(e->v, more * sizeof(cJSON *));
                if (!grown)
                        return -ENOMEM;
                e->v = grown;
                e->allocated = more;
        }
        e->v[e->n++] = entry;
        return 0;
}

static int out_of_memory(char *errbuf, size_t size) {
        (void) snprintf(errbuf, size, "out of memory");
        return -ENOMEM;
}

int cli_schedules_read(cJSON **ret, char *errbuf, size_t errbuf_size) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(entries_done) Entries entries = {};
        _cleanup_(cjson_deletep) cJSON *list = NULL;
        const char *name, *load_state, *active_state, *path;
        int r;

        if (!ret || !errbuf || errbuf_size == 0)
                return -EINVAL;
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return bus_error(r, NULL, "cannot connect to the system bus", errbuf, errbuf_size);
        r = sd_bus_call_method(bus, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER, "ListUnitsByPatterns",
                               &error, &reply, "asas", 0, 1, CLI_SCHEDULE_UNIT_PREFIX "*" TIMER_SUFFIX);
        if (r < 0)
                return bus_error(r, &error, "cannot list the timers of systemd", errbuf, errbuf_size);

        r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(ssssssouso)", &name, NULL, &load_state,
                                                  &active_state, NULL, NULL, &path, NULL, NULL, NULL)) > 0) {
                cJSON *e;

                /* A timer whose file is gone stays loaded a while after it stopped: no schedule now. One
                 * still active is shown, to be stopped. */
                if (streq(load_state, "not-found") && !streq(active_state, "active"))
                        continue;
                r = read_timer(bus, name, load_state, active_state, path, &e, errbuf, errbuf_size);
                if (r == -ENOMEM)
                        return out_of_memory(errbuf, errbuf_size);
                if (r < 0)
                        return r;
                if (entries_add(&entries, e) < 0) {
                        cJSON_Delete(e);
                        return out_of_memory(errbuf, errbuf_size);
                }
        }
        if (r < 0)
                return bus_error(-EBADMSG, NULL, "unexpected answer from systemd", errbuf, errbuf_size);

        qsort(entries.v, entries.n, sizeof(cJSON *), cmp_entries);
        list = cJSON_CreateArray();
        if (!list)
                return out_of_memory(errbuf, errbuf_size);
        for (size_t i = 0; i < entries.n; i++) {
                if (!cJSON_AddItemToArray(list, entries.v[i]))
                        return out_of_memory(errbuf, errbuf_size);
                entries.v[i] = NULL; /* the list has it */
        }
        *ret = TAKE_PTR(list);
        return 0;
}
