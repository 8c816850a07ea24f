/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "front/seed-refusals.h"
#include "shared/json-util.h"
#include "shared/limits.h"
#include "shared/log.h"
#include "shared/util.h"

#define FRAME_QUOTE_SIZE (SEED_LOG_FRAME_BYTES * 4 + sizeof("..."))

struct SeedRefusals {
        sd_event *event;
        uint64_t count;
        uint64_t window;   /* CLOCK_MONOTONIC start of the current log window, 0 when none is open */
        unsigned lines;    /* lines logged in it */
        uint64_t left_out; /* refusals in it not logged */
        sd_event_source *window_timer; /* at the window's end: says how many were left out */
};

struct SeedSubmission {
        SeedRefusals *refusals;
        char peer[96];
        char head[SEED_LOG_FRAME_BYTES];
        size_t len; /* of the whole frame */
        SeedSettledFn settled;
        void *userdata;
};

/* The first bytes of a client's frame for a log line: at most SEED_LOG_FRAME_BYTES, printable ASCII as
 * is, everything else as a C escape (the frame may hold NUL bytes or anything but a newline). */
static const char *frame_quote(char buf[static FRAME_QUOTE_SIZE], const char *frame, size_t len) {
        size_t n = len < SEED_LOG_FRAME_BYTES ? len : SEED_LOG_FRAME_BYTES, o = 0;

        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) frame[i];

                if (c == '\\' || c == '"') {
                        buf[o++] = '\\';
                        buf[o++] = (char) c;
                } else if (c == '\t' || c == '\r') {
                        buf[o++] = '\\';
                        buf[o++] = c == '\t' ? 't' : 'r';
                } else if (c < 0x20 || c >= 0x7f)
                        o += (size_t) snprintf(buf + o, FRAME_QUOTE_SIZE - o, "\\x%02x", c);
                else
                        buf[o++] = (char) c;
        }
        if (n < len) {
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o] = '\0';
        return buf;
}

static void window_end(SeedRefusals *r) {
        if (r->left_out > 0)
                log_warning("Suppressed the messages of %" PRIu64 " more refused seed frame(s) in %llu s "
                            "(stats counts them all as seed_refused).",
                            r->left_out,
                            (unsigned long long) (SEED_REFUSAL_LOG_INTERVAL_USEC / USEC_PER_SEC));
        r->window = 0;
        r->lines = 0;
        r->left_out = 0;
        (void) sd_event_source_set_enabled(r->window_timer, SD_EVENT_OFF);
}

static int on_window_end(sd_event_source *source, uint64_t usec, void *userdata) {
        window_end(userdata);
        return 0;
}

int seed_refusals_new(sd_event *event, SeedRefusals **ret) {
        SeedRefusals *r = calloc(1, sizeof(*r));

        if (!r)
                return -ENOMEM;
        r->event = sd_event_ref(event);
        *ret = r;
        return 0;
}

SeedRefusals *seed_refusals_free(SeedRefusals *r) {
        if (!r)
                return NULL;
        window_end(r); /* a count left out is still said */
        sd_event_source_disable_unref(r->window_timer);
        sd_event_unref(r->event);
        free(r);
        return NULL;
}

uint64_t seed_refusals_count(const SeedRefusals *r) {
        return r ? r->count : 0;
}

void seed_refusals_add(SeedRefusals *r, const char *peer, const char *frame, size_t len, const char *code,
                       const char *message) {
        uint64_t now = now_usec(CLOCK_MONOTONIC), end;
        char q[FRAME_QUOTE_SIZE];

        r->count++;
        if (r->window == 0 || now - r->window >= SEED_REFUSAL_LOG_INTERVAL_USEC) {
                window_end(r);
                r->window = now;
        }
        if (r->lines < SEED_REFUSALS_LOGGED_MAX) {
                r->lines++;
                log_warning("Refused seed frame from %s: %s: %s; %zu byte(s): \"%s\"", peer, code, message,
                            len, frame_quote(q, frame, len));
                return;
        }
        if (r->left_out++ > 0)
                return;
        /* The first one left out: say so when the window ends (without the timer, at the next refusal
         * after it, or when the daemon stops). */
        end = r->window + SEED_REFUSAL_LOG_INTERVAL_USEC;
        if (r->window_timer) {
                (void) sd_event_source_set_time(r->window_timer, end);
                (void) sd_event_source_set_enabled(r->window_timer, SD_EVENT_ONESHOT);
        } else if (r->event)
                (void) sd_event_add_time(r->event, &r->window_timer, CLOCK_MONOTONIC, end, 0, on_window_end,
                                         r);
}

SeedSubmission *seed_submission_new(SeedRefusals *r, const char *peer, const char *frame, size_t len,
                                    SeedSettledFn settled, void *userdata) {
        SeedSubmission *x = calloc(1, sizeof(*x));

        if (!x)
                return NULL;
        x->refusals = r;
        (void) snprintf(x->peer, sizeof(x->peer), "%s", peer);
        memcpy(x->head, frame, len < sizeof(x->head) ? len : sizeof(x->head));
        x->len = len;
        x->settled = settled;
        x->userdata = userdata;
        return x;
}

void seed_submission_detach(void *submission) {
        SeedSubmission *x = submission;
        x->settled = NULL;
}

void seed_submission_free(void *submission) {
        free(submission);
}

/* A refusal's code and message from the answer line the service built ({"ok":false,"code":...}). */
static void refusal_of(const char *line, size_t len, char code[static 32], char message[static 256]) {
        _cleanup_(cjson_deletep) cJSON *o = cJSON_ParseWithLength(line, len);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "code");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");

        (void) snprintf(code, 32, "%s", cJSON_IsString(c) ? c->valuestring : "internal");
        (void) snprintf(message, 256, "%s", cJSON_IsString(e) ? e->valuestring : "no message");
}

static void answered(SeedSubmission *x, char *line, size_t len, bool tell) {
        SeedSettledFn settled = tell ? x->settled : NULL;
        void *settled_userdata = x->userdata;
        static const char refused[] = "{\"ok\":false";

        if (!line || (len >= sizeof(refused) - 1 && memcmp(line, refused, sizeof(refused) - 1) == 0)) {
                char code[32] = "internal", message[256] = "out of memory";

                if (line)
                        refusal_of(line, len, code, message);
                seed_refusals_add(x->refusals, x->peer, x->head, x->len, code, message);
        }
        free(line);
        free(x);
        if (settled)
                settled(settled_userdata);
}

void seed_submission_answered(char *line, size_t len, void *userdata) {
        answered(userdata, line, len, true);
}

void seed_submission_answered_at_once(char *line, size_t len, SeedSubmission *x) {
        answered(x, line, len, false);
}
