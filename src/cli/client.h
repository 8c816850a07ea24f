/* SPDX-License-Identifier: MIT */
#pragma once

/* The CLI's connection to asynctaskd: one request line out, one answer line back. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cli/cli-args.h"

/* How long to wait for a connection, and for an answer to anything but "wait" (reload waits for both
 * daemons to load their config, so this is generous). */
#define CLI_CONNECT_TIMEOUT_SEC 10
#define CLI_ANSWER_TIMEOUT_SEC  60

typedef struct Client {
        int fd;
        char peer[300];    /* "unix:/run/asynctask/asynctask.sock" or "tcp:127.0.0.1:9501", for messages */
        const char *where; /* the socket path or HOST:PORT as given */
        bool json;         /* print error answers as they came */
        char *buf;         /* received bytes not yet handed out */
        size_t len, alloc;
} Client;

/* An answer from the daemon: the parsed object and the line exactly as it came. */
typedef struct ClientAnswer {
        cJSON *obj;
        char *raw;
} ClientAnswer;

void client_done(Client *c);
/* CLOCK_MONOTONIC microseconds sec seconds from now. */
uint64_t deadline_after(uint64_t sec);
/* Connects to the socket or TCP address o names; on failure says why and returns the exit code. */
int client_connect(Client *c, const CliOptions *o);
/* Sends req (consumed) and reads its answer. Returns 0 with *ret filled when the daemon said
 * "ok":true (the caller shows it); otherwise reports the problem (the daemon's error, as it came
 * with --json, or why there was no answer) and returns the exit code for it. */
int client_call(Client *c, cJSON *req, uint64_t answer_timeout_sec, ClientAnswer *ret);
void client_answer_done(ClientAnswer *a);

/* Fields of an answer object. A number is read only when integral and exactly representable. */
bool client_answer_u64(const cJSON *obj, const char *name, uint64_t *ret);
const char *client_answer_str(const cJSON *obj, const char *name);
/* Reports an answer that lacks what, and returns the exit code for it. */
int client_bad_answer(const Client *c, const char *what);
