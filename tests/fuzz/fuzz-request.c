/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the client trust boundary: bytes as a socket would deliver them, in a few reads,
 * through the frame reader and the request parser, with a response line rendered for every frame.
 * Besides crashes, it aborts on broken promises: a response that is not exactly one line of valid
 * UTF-8 JSON, or a parsed request that breaks its own invariants.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/frame.h"
#include "front/ledger.h"
#include "shared/limits.h"
#include "front/decode.h"
#include "front/request.h"
#include "front/utf8.h"
#include "front/response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* len is read through a pointer: the call that makes line writes it, in the same argument list. */
static void check_line(char *line, const size_t *lenp) {
        size_t len = *lenp;
        cJSON *j;

        if (!line)
                return; /* out of memory */
        if (len == 0 || line[len - 1] != '\n' || memchr(line, '\n', len - 1) || strlen(line) != len)
                abort();
        if (utf8_valid_len(line, len) != len)
                abort();
        j = cJSON_ParseWithLength(line, len);
        if (!j || !cJSON_IsObject(j))
                abort();
        cJSON_Delete(j);
        free(line);
}

static void check_request(const Request *req) {
        if (req->op < 0 || req->op >= _OP_MAX)
                abort();
        if (req->op == OP_SUBMIT) {
                if (!!req->task + !!req->cmd + !!req->php_class != 1)
                        abort();
                if (req->n_args > TASK_ARGS_MAX || (req->args && req->args[req->n_args]))
                        abort();
                if (req->task && (strlen(req->task) == 0 || strlen(req->task) > TASK_NAME_BYTES_MAX))
                        abort();
                if (req->key && (strlen(req->key) == 0 || strlen(req->key) > TASK_KEY_BYTES_MAX))
                        abort();
                if (req->priority < -1000 || req->priority > 1000 || req->delay_sec > DELAY_SEC_MAX)
                        abort();
        } else if (req->op == OP_PAUSE || req->op == OP_RESUME) {
                /* A task name and nothing else. */
                if (!req->task || strlen(req->task) == 0 || strlen(req->task) > TASK_NAME_BYTES_MAX)
                        abort();
                if (req->cmd || req->php_class || req->args || req->stdin_data)
                        abort();
        } else if (req->task || req->cmd || req->php_class || req->args || req->stdin_data)
                abort();
        if (req->has_id && (req->id < 1 || req->id > (1ULL << 53)))
                abort();
        if (req->timeout_usec > WAIT_SEC_MAX * 1000000ULL)
                abort();
}

static void handle_frame(const char *frame, size_t len) {
        Request req = {};
        ErrorReply err = {};
        size_t out_len = 0;

        if (decode_frame(frame, len, &req, &err) < 0) {
                if (err.code == ERR_NONE || req.task || req.cmd || req.args || req.stdin_data)
                        abort();
                check_line(response_error(&err, &out_len), &out_len);
                return;
        }
        check_request(&req);

        /* Render what a status answer for this submission would look like. */
        TaskRecord t = {
                .id = req.has_id ? req.id : 1,
                .task = req.task ? req.task : req.php_class,
                .cmd = req.cmd,
                .args = req.args,
                .n_args = req.n_args,
                .stdin_data = req.stdin_data,
                .stdin_len = req.stdin_len,
                .key = req.key,
                .submitter = (char *) "uid:1000",
                .priority = req.priority,
                .state = req.has_state ? req.state : TASK_QUEUED,
                .created_at = 1795712400123456ULL,
                .run_after = 1795712400123456ULL + req.delay_sec * 1000000ULL,
        };
        cJSON *o = response_ok();
        if (o && response_add_task(o, &t) < 0) {
                cJSON_Delete(o);
                o = NULL;
        }
        check_line(response_finish(o, &out_len), &out_len);
        request_done(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const size_t chunk_sizes[] = {1, 3, 17, 251, 4096, 65536};
        FrameReader *r = NULL;
        size_t chunk, off = 0;

        if (frame_reader_new(64 * 1024, &r) < 0)
                return 0;
        /* The first byte picks how the input is split into reads (it is still part of the input). */
        chunk = size > 0 ? chunk_sizes[data[0] % (sizeof(chunk_sizes) / sizeof(chunk_sizes[0]))] : 1;
        while (off < size) {
                size_t n = size - off < chunk ? size - off : chunk;
                const char *line;
                size_t len;
                FrameEvent ev;

                if (frame_reader_feed(r, data + off, n) < 0)
                        break;
                off += n;
                /* Some inputs also change the limit on the way, as a config reload would. */
                if (size > 1 && (data[1] & 0x80) && off >= size / 2)
                        frame_reader_set_max(r, 64 + data[1]);
                while ((ev = frame_reader_next(r, &line, &len)) != FRAME_NONE) {
                        if (ev == FRAME_LINE) {
                                if (len == 0 || line[len] != '\0')
                                        abort();
                                handle_frame(line, len);
                        } else {
                                ErrorReply err = {.code = ERR_FRAME_TOO_LARGE};
                                size_t out_len = 0;
                                check_line(response_error(&err, &out_len), &out_len);
                        }
                }
                if (frame_reader_pending(r) > 64 * 1024 + 1)
                        abort();
        }
        frame_reader_free(r);
        return 0;
}
