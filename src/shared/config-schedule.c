/* SPDX-License-Identifier: MIT */
#include "shared/config-schedule.h"
#include "shared/limits.h"

/* The characters of systemd.time(7) calendar expressions and time zone names. Anything else (quotes,
 * backslashes, '%', '$', newlines) is refused: the generator writes each expression into a unit file
 * and onto a command line, where it must mean nothing but itself. systemd judges the syntax
 * (asynctaskd --check-config asks systemd-analyze). */
static bool calendar_chars_valid(const char *s) {
        return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 *-:/.,~+_") ==
               strlen(s);
}

static void parse_calendar(JsonReader *rd, const cJSON *j, const char *key, TaskSchedule *sch) {
        const char *s;

        if (!json_reader_get_string(rd, j, key, false, &s))
                return;
        if (strlen(s) > SCHEDULE_CALENDAR_BYTES_MAX)
                json_reader_report(rd, key, "is longer than %d bytes", SCHEDULE_CALENDAR_BYTES_MAX);
        else if (!calendar_chars_valid(s))
                json_reader_report(rd, key,
                                   "'%s' is not a calendar expression such as \"*-*-* 03:00:00\" (letters, "
                                   "digits, spaces and * - : / . , ~ + _ only)",
                                   s);
        else if ((sch->calendars[sch->n_calendars] = json_reader_strdup(rd, s)))
                sch->n_calendars++;
}

/* "schedule": one calendar expression, or a list of them. */
static void parse_calendars(JsonReader *rd, const cJSON *j, TaskSchedule *sch) {
        const cJSON *item;
        size_t n, i = 0;

        if (!cJSON_IsString(j) && !cJSON_IsArray(j)) {
                json_reader_report(rd, "schedule",
                                   "expected a calendar expression or a list of them, got %s",
                                   json_reader_type_name(j));
                return;
        }
        n = cJSON_IsArray(j) ? (size_t) cJSON_GetArraySize(j) : 1;
        if (n == 0) {
                json_reader_report(rd, "schedule", "must list at least one calendar expression");
                return;
        }
        if (n > SCHEDULE_CALENDARS_MAX) {
                json_reader_report(rd, "schedule", "has %zu entries, at most %d are allowed", n,
                                   SCHEDULE_CALENDARS_MAX);
                return;
        }
        sch->calendars = json_reader_new_array(rd, n, sizeof(char *));
        if (!sch->calendars)
                return;
        if (cJSON_IsString(j)) {
                parse_calendar(rd, j, "schedule", sch);
                return;
        }
        cJSON_ArrayForEach (item, j)
                parse_calendar(rd, item, json_reader_key_index("schedule", i++).s, sch);
}

static void parse_schedule_args(JsonReader *rd, const cJSON *j, unsigned max_args, TaskSchedule *sch) {
        const cJSON *item;
        size_t n, i = 0, bytes = 0;

        if (!json_reader_expect_array(rd, j, "schedule_args"))
                return;
        n = (size_t) cJSON_GetArraySize(j);
        if (n > max_args) {
                json_reader_report(rd, "schedule_args",
                                   "has %zu entries, but the task takes at most %u (max_args)", n, max_args);
                return;
        }
        char **args = json_reader_new_array(rd, n, sizeof(char *));
        if (!args)
                return;
        free(sch->args); /* the empty default */
        sch->args = args;
        cJSON_ArrayForEach (item, j) {
                JsonKey k = json_reader_key_index("schedule_args", i++);
                const char *s;

                if (!json_reader_get_string(rd, item, k.s, true, &s))
                        continue;
                if (strlen(s) > TASK_ARG_BYTES_MAX)
                        json_reader_report(rd, k.s, "is longer than %d bytes", TASK_ARG_BYTES_MAX);
                else if ((sch->args[sch->n_args] = json_reader_strdup(rd, s))) {
                        sch->n_args++;
                        bytes += strlen(s);
                }
        }
        if (bytes > SCHEDULE_ARGS_BYTES_MAX)
                json_reader_report(rd, "schedule_args", "has %zu bytes in all, at most %d are allowed",
                                   bytes, SCHEDULE_ARGS_BYTES_MAX);
}

/* The other keys need "schedule": without it they would say something that never happens. */
void config_schedule_parse(JsonReader *rd, const cJSON *obj, unsigned max_args, TaskSchedule *sch) {
        static const char *const dependent_keys[] = {"schedule_args", "schedule_randomized_delay_sec",
                                                     "schedule_persistent"};
        const cJSON *j = json_reader_member(obj, "schedule");

        if (!j) {
                for (size_t i = 0; i < ELEMENTSOF(dependent_keys); i++)
                        if (json_reader_member(obj, dependent_keys[i]))
                                json_reader_report(rd, dependent_keys[i], "needs \"schedule\"");
                return;
        }
        parse_calendars(rd, j, sch);
        sch->args = json_reader_new_array(rd, 0, sizeof(char *));
        if (sch->args && (j = json_reader_member(obj, "schedule_args")))
                parse_schedule_args(rd, j, max_args, sch);
        json_reader_member_u64(rd, obj, "", "schedule_randomized_delay_sec", 0, SCHEDULE_DELAY_SEC_MAX,
                               &sch->randomized_delay_sec);
        json_reader_member_bool(rd, obj, "", "schedule_persistent", &sch->persistent);
}

static bool strv_equal_n(char *const *a, size_t n_a, char *const *b, size_t n_b) {
        if (n_a != n_b)
                return false;
        for (size_t i = 0; i < n_a; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

bool config_schedule_equal(const TaskSchedule *a, const TaskSchedule *b) {
        if (a->n_calendars == 0 || b->n_calendars == 0)
                return a->n_calendars == b->n_calendars;
        return strv_equal_n(a->calendars, a->n_calendars, b->calendars, b->n_calendars) &&
               strv_equal_n(a->args, a->n_args, b->args, b->n_args) &&
               a->randomized_delay_sec == b->randomized_delay_sec && a->persistent == b->persistent;
}

void config_schedule_done(TaskSchedule *sch) {
        strv_free(sch->calendars);
        strv_free(sch->args);
        *sch = (TaskSchedule){};
}
