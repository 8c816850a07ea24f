/* SPDX-License-Identifier: MIT */
/*
 * The wait and its progress follower, shared by `wait`, `submit --wait` and `drain`: a loop of the
 * daemon's bounded "wait" op until the task is final or the caller's timeout passed.
 */

#include <unistd.h>

#include "cli/cli-format.h"
#include "cli/task-wait.h"
#include "shared/limits.h"
#include "shared/util.h"

static bool state_is_final(const char *state) {
        return state && (streq(state, "succeeded") || streq(state, "failed") || streq(state, "cancelled"));
}

static void progress_follow(ProgressFollow *p, const ClientAnswer *a) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(a->obj, "progress");
        const char *text = cJSON_IsString(v) ? v->valuestring : NULL;
        char *copy;

        p->printed_last = false;
        if (!p->on || !text || streq_ptr(text, p->seen))
                return;
        copy = strdup(text);
        if (!copy)
                return; /* the next answer brings it again */
        free(p->seen);
        p->seen = copy;
        if (p->json) {
                printf("%s\n", a->raw);
                p->printed_last = true;
        } else {
                /* One line per change, whatever the task put in it. */
                for (char *s = copy; *s; s++)
                        putchar((unsigned char) *s < 0x20 || *s == 0x7f ? '?' : *s);
                putchar('\n');
        }
        (void) fflush(stdout);
}

int wait_for_task_following(Client *c, uint64_t id, bool has_timeout, uint64_t timeout_sec,
                            ProgressFollow *follow, ClientAnswer *ret) {
        uint64_t deadline = has_timeout ? deadline_after(timeout_sec) : UINT64_MAX;
        ClientAnswer a = {};
        int r;

        for (;;) {
                uint64_t now = now_usec(CLOCK_MONOTONIC), step = WAIT_SEC_MAX;
                if (has_timeout) {
                        uint64_t left = deadline > now ? deadline - now : 0;
                        step = (left + USEC_PER_SEC - 1) / USEC_PER_SEC;
                        if (step > WAIT_SEC_MAX)
                                step = WAIT_SEC_MAX;
                }

                client_answer_done(&a);
                r = client_call(c,
                                follow && follow->on ? cli_wait_progress_request(id, step, follow->seen)
                                                     : cli_wait_request(id, step),
                                step + CLI_WAIT_SLACK_SEC, &a);
                if (r != 0)
                        return r;
                if (follow)
                        progress_follow(follow, &a);

                const char *state = client_answer_str(a.obj, "state");
                if (!state) {
                        client_answer_done(&a);
                        return client_bad_answer(c, "a state");
                }
                bool final = state_is_final(state);
                uint64_t after = now_usec(CLOCK_MONOTONIC);
                if (final || (has_timeout && after >= deadline)) {
                        if (c->json && !(follow && follow->on))
                                printf("%s\n", a.raw);
                        *ret = a;
                        return final ? 0 : CLI_EXIT_TIMEOUT;
                }
                /* A wait that came back long before its time (the daemon is stopping, say) must not
                 * turn this loop into a busy one; one that brought progress came back for it. */
                if (follow && follow->on)
                        continue;
                if (after - now < step * USEC_PER_SEC / 2)
                        (void) usleep(200 * 1000);
        }
}

int wait_for_task(Client *c, uint64_t id, bool has_timeout, uint64_t timeout_sec, ClientAnswer *ret) {
        return wait_for_task_following(c, id, has_timeout, timeout_sec, NULL, ret);
}
