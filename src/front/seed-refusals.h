/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Seed frames (the old PHP clients' serialize() lines) get no answer: those clients never read, and an
 * answer left unread in a client's socket makes its kernel reset the connection when it closes, which
 * throws away the frames it has not sent yet. A refused seed frame is logged instead, with the peer,
 * the reason and its first bytes (C-escaped), at most SEED_REFUSALS_LOGGED_MAX lines per
 * SEED_REFUSAL_LOG_INTERVAL_USEC and then one line saying how many were left out, and every refusal
 * is counted ("seed_refused" in stats).
 */

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

typedef struct SeedRefusals SeedRefusals;

int seed_refusals_new(sd_event *event, SeedRefusals **ret);
/* Says how many refusals the current window left out, then frees. */
SeedRefusals *seed_refusals_free(SeedRefusals *r);

void seed_refusals_add(SeedRefusals *r, const char *peer, const char *frame, size_t len, const char *code,
                       const char *message);
uint64_t seed_refusals_count(const SeedRefusals *r);

/* What a seed frame's submission keeps until it is answered: its origin, for the log line if it is
 * refused, and whom to tell that it has settled. */
typedef struct SeedSubmission SeedSubmission;
typedef void (*SeedSettledFn)(void *userdata);

SeedSubmission *seed_submission_new(SeedRefusals *r, const char *peer, const char *frame, size_t len,
                                    SeedSettledFn settled, void *userdata);
/* A ServiceReplyFn for the submission's answer (userdata: the SeedSubmission): nobody is sent it; a
 * refusal is logged and counted; then settled is called and the submission freed. */
void seed_submission_answered(char *line, size_t len, void *userdata);
/* The same for an answer built at once, before anyone waits: settled is not called. */
void seed_submission_answered_at_once(char *line, size_t len, SeedSubmission *submission);
/* Its connection went away: the answer still comes (a refusal is still logged and counted), but
 * settled is not called. */
void seed_submission_detach(void *submission);
/* Frees a submission that will not be answered (its connection went away): settled is not called. */
void seed_submission_free(void *submission);
