/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `asynctask metrics --http`: the HTTP/1.0 side of one scrape, for a socket-activated instance
 * (asynctask-metrics@.service, Accept=yes) whose standard input and output are the connection. Only
 * what a scraper sends is understood: a GET (or HEAD) of /metrics or /; no HTTP server is linked
 * into the daemons. Parsing and the answer are pure; cli_http_serve() does the I/O.
 */

#include <stdbool.h>
#include <stddef.h>

/* The request head read at most (request line and headers): a scraper sends a few hundred bytes. */
#define CLI_HTTP_HEAD_BYTES_MAX 8192
/* How long a client may take to send its request head. */
#define CLI_HTTP_READ_TIMEOUT_SEC 10

#define CLI_HTTP_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* What a request head asks for: an HTTP status (200, 400, 404, 405) and whether it is a HEAD. */
typedef struct CliHttpRequest {
        int status;
        bool head;
} CliHttpRequest;

/* The length of the head at the start of buf (up to and including its empty line), or 0 when buf
 * does not hold a whole head yet. */
size_t cli_http_head_length(const char *buf, size_t len);

/* Judges a whole request head (its request line; headers are ignored). */
CliHttpRequest cli_http_parse_head(const char *head, size_t len);

/* The whole answer: status line, headers, and body unless head_only. Allocated, in *ret; -ENOMEM. */
int cli_http_answer(int status, const char *body, size_t body_len, bool head_only, char **ret,
                    size_t *ret_len);

/* Reads the request head from fd_in within CLI_HTTP_READ_TIMEOUT_SEC. Returns the judged request
 * (status 400 for a head that is too long, cut short, or too slow). */
CliHttpRequest cli_http_read_request(int fd_in);

/* Writes all of buf to fd. -errno. */
int cli_http_write_all(int fd, const char *buf, size_t len);
