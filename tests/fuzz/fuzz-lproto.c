/* SPDX-License-Identifier: MIT */
/* Launcher protocol decoder: whatever a (possibly compromised) front sends must be refused cleanly, and
 * whatever is accepted must survive format -> parse unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/lproto.h"
#include "shared/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int str_equal(const char *a, const char *b) {
        return streq_ptr(a, b);
}

static void compare(const LauncherMsg *a, const LauncherMsg *b) {
        if (a->type != b->type || a->id != b->id || a->attempt != b->attempt ||
            !str_equal(a->task, b->task) || !str_equal(a->cmd, b->cmd) ||
            !str_equal(a->submitter, b->submitter) || !str_equal(a->unit, b->unit) ||
            !str_equal(a->error, b->error) || a->n_args != b->n_args || !!a->stdin_data != !!b->stdin_data ||
            a->stdin_len != b->stdin_len ||
            (a->stdin_len > 0 && memcmp(a->stdin_data, b->stdin_data, a->stdin_len) != 0) ||
            !streq(a->result.result, b->result.result) ||
            a->result.has_exit_status != b->result.has_exit_status ||
            a->result.exit_status != b->result.exit_status || a->result.signal != b->result.signal ||
            a->result.cpu_usec != b->result.cpu_usec || a->result.memory_peak != b->result.memory_peak ||
            !streq(a->result.error, b->result.error))
                abort();
        for (size_t i = 0; i < a->n_args; i++)
                if (!streq(a->args[i], b->args[i]))
                        abort();
        if ((a->args && a->args[a->n_args]) || (b->args && b->args[b->n_args]))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *line = NULL;
        LauncherMsg m, again;
        size_t len;
        int r;

        r = lmsg_parse((const char *) data, size, &m);
        if (r < 0) {
                if (r != -EBADMSG && r != -E2BIG && r != -ENOMEM)
                        abort();
                return 0;
        }

        line = lmsg_format(&m, &len);
        if (!line)
                abort();
        if (len != strlen(line) || len == 0 || line[len - 1] != '\n' || memchr(line, '\n', len - 1))
                abort();
        if (lmsg_parse(line, len, &again) < 0)
                abort();
        compare(&m, &again);

        lmsg_done(&m);
        lmsg_done(&again);
        return 0;
}
