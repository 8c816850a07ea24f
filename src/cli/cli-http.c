/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli-http.h"
#include "shared/util.h"

size_t cli_http_head_length(const char *buf, size_t len) {
        /* Lines end in CRLF; a bare LF is accepted too, as most servers do. */
        for (size_t i = 0; i < len; i++) {
                if (buf[i] != '\n')
                        continue;
                if (i + 1 < len && buf[i + 1] == '\n')
                        return i + 2;
                if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
                        return i + 3;
        }
        return 0;
}

static bool path_is_metrics(const char *path, size_t len) {
        size_t n = len;

        /* A query string (?name[]=...) is ignored: there is one set of metrics. */
        for (size_t i = 0; i < len; i++)
                if (path[i] == '?') {
                        n = i;
                        break;
                }
        return (n == 1 && path[0] == '/') || (n == 8 && memcmp(path, "/metrics", 8) == 0);
}

CliHttpRequest cli_http_parse_head(const char *head, size_t len) {
        const char *line_end = memchr(head, '\n', len);
        const char *sp1, *sp2;
        size_t line_len;

        if (!line_end)
                return (CliHttpRequest){.status = 400};
        line_len = (size_t) (line_end - head);
        if (line_len > 0 && head[line_len - 1] == '\r')
                line_len--;
        /* METHOD SP PATH SP HTTP/x.y */
        sp1 = memchr(head, ' ', line_len);
        if (!sp1)
                return (CliHttpRequest){.status = 400};
        sp2 = memchr(sp1 + 1, ' ', line_len - (size_t) (sp1 + 1 - head));
        if (!sp2 || sp2 == sp1 + 1 || (size_t) (head + line_len - (sp2 + 1)) < 8 ||
            memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
                return (CliHttpRequest){.status = 400};

        bool get = sp1 - head == 3 && memcmp(head, "GET", 3) == 0;
        bool head_only = sp1 - head == 4 && memcmp(head, "HEAD", 4) == 0;
        if (!get && !head_only)
                return (CliHttpRequest){.status = 405};
        if (!path_is_metrics(sp1 + 1, (size_t) (sp2 - sp1 - 1)))
                return (CliHttpRequest){.status = 404, .head = head_only};
        return (CliHttpRequest){.status = 200, .head = head_only};
}

static const char *reason(int status) {
        switch (status) {
        case 200:
                return "OK";
        case 400:
                return "Bad Request";
        case 404:
                return "Not Found";
        case 405:
                return "Method Not Allowed";
        default:
                return "Service Unavailable";
        }
}

int cli_http_answer(int status, const char *body, size_t body_len, bool head_only, char **ret,
                    size_t *ret_len) {
        char header[512];
        char *buf;
        int n;

        n = snprintf(
                header, sizeof(header),
                "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
                status, reason(status), status == 200 ? CLI_HTTP_CONTENT_TYPE : "text/plain; charset=utf-8",
                body_len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
        if (n < 0 || (size_t) n >= sizeof(header))
                return -ENOMEM;
        if (head_only)
                body_len = 0;
        buf = malloc((size_t) n + body_len + 1);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, header, (size_t) n);
        if (body_len > 0)
                memcpy(buf + n, body, body_len);
        buf[(size_t) n + body_len] = '\0';
        *ret = buf;
        *ret_len = (size_t) n + body_len;
        return 0;
}

CliHttpRequest cli_http_read_request(int fd_in) {
        char buf[CLI_HTTP_HEAD_BYTES_MAX];
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + CLI_HTTP_READ_TIMEOUT_SEC * USEC_PER_SEC;
        size_t len = 0, head_len;

        while ((head_len = cli_http_head_length(buf, len)) == 0) {
                struct pollfd p = {.fd = fd_in, .events = POLLIN};
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                ssize_t k;

                if (len == sizeof(buf) || now >= deadline)
                        return (CliHttpRequest){.status = 400};
                if (poll(&p, 1, (int) ((deadline - now + 999) / 1000)) <= 0) {
                        if (errno == EINTR)
                                continue;
                        return (CliHttpRequest){.status = 400};
                }
                k = read(fd_in, buf + len, sizeof(buf) - len);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k <= 0)
                        return (CliHttpRequest){.status = 400};
                len += (size_t) k;
        }
        return cli_http_parse_head(buf, head_len);
}

int cli_http_write_all(int fd, const char *buf, size_t len) {
        while (len > 0) {
                ssize_t k = write(fd, buf, len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                buf += k;
                len -= (size_t) k;
        }
        return 0;
}
