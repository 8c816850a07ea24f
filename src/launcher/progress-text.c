/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/progress-text.h"
#include "shared/limits.h"
#include "shared/util.h"

char *progress_text_clean(const char *s, size_t len) {
        char *out;

        /* A NUL ends the text, as it would for the C string systemd keeps. */
        len = strnlen(s, len);
        if (len > PROGRESS_BYTES_MAX) {
                len = PROGRESS_BYTES_MAX;
                /* Back to the first byte of the sequence the limit falls in. */
                while (len > 0 && ((unsigned char) s[len] & 0xC0) == 0x80)
                        len--;
        }
        out = strndup(s, len);
        if (!out)
                return NULL;
        for (char *p = out; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = ' ';
        return out;
}

int progress_text_from_notify(const char *msg, size_t len, char **ret) {
        const char *status = NULL, *end = msg + len;
        size_t status_len = 0;

        /* Assignments one per line; the last STATUS= wins, as it does for the service manager. */
        for (const char *line = msg; line < end;) {
                const char *nl = memchr(line, '\n', (size_t) (end - line));
                size_t n = nl ? (size_t) (nl - line) : (size_t) (end - line);

                if (n >= 7 && memcmp(line, "STATUS=", 7) == 0) {
                        status = line + 7;
                        status_len = n - 7;
                }
                line += n + 1;
        }
        if (!status)
                return 0;
        *ret = progress_text_clean(status, status_len);
        return *ret ? 1 : -ENOMEM;
}
