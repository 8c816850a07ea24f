/* SPDX-License-Identifier: MIT */
/* The CLI's connection to asynctaskd: connect (unix or TCP) with a deadline, send one request line,
 * read its answer line, and turn a refusal into the exit code and message the user sees. */

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cli/cli-args.h"
#include "cli/cli-format.h"
#include "cli/client.h"
#include "shared/paths.h"
#include "shared/util.h"

/* Largest answer line read: a `list` of LIST_LIMIT_MAX records with long args fits with room to spare;
 * a larger one means something is wrong, and the client must not grow without bound. */
#define CLI_ANSWER_BYTES_MAX (64 * 1024 * 1024)

void client_done(Client *c) {
        if (c->fd >= 0)
                (void) close(c->fd);
        c->fd = -1;
        free(c->buf);
        c->buf = NULL;
        c->len = c->alloc = 0;
}

uint64_t deadline_after(uint64_t sec) {
        return now_usec(CLOCK_MONOTONIC) + sec * USEC_PER_SEC;
}

/* Milliseconds left until deadline for poll(), at least 0, at most INT_MAX. */
static int poll_timeout(uint64_t deadline) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (now >= deadline)
                return 0;
        uint64_t ms = (deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
        return ms > INT32_MAX ? INT32_MAX : (int) ms;
}

static int wait_fd(int fd, short events, uint64_t deadline) {
        for (;;) {
                struct pollfd p = {.fd = fd, .events = events};
                int r = poll(&p, 1, poll_timeout(deadline));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        return -ETIMEDOUT;
                return 0;
        }
}

/* Finishes a non-blocking connect(): waits for it, then reads its outcome. */
static int finish_connect(int fd, uint64_t deadline) {
        int r = wait_fd(fd, POLLOUT, deadline), error = 0;
        socklen_t len = sizeof(error);

        if (r < 0)
                return r;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                return -errno;
        return -error;
}

static int connect_unix(const char *path, uint64_t deadline) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -1;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        for (;;) {
                if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0)
                        return TAKE_FD(fd);
                if (errno == EINTR)
                        continue;
                if (errno == EINPROGRESS) {
                        int r = finish_connect(fd, deadline);
                        return r < 0 ? r : TAKE_FD(fd);
                }
                /* A full listen backlog: the daemon is busy; try again shortly until the deadline. */
                if (errno == EAGAIN && now_usec(CLOCK_MONOTONIC) < deadline) {
                        (void) usleep(20 * 1000);
                        continue;
                }
                return errno == EAGAIN ? -ETIMEDOUT : -errno;
        }
}

static int connect_tcp(const char *host_port, uint64_t deadline) {
        char host[256], port_str[8];
        uint16_t port;
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG};
        struct addrinfo *res = NULL;
        int r, last = -ECONNREFUSED;

        if (cli_parse_host_port(host_port, host, sizeof(host), &port) < 0)
                return -EINVAL;
        (void) snprintf(port_str, sizeof(port_str), "%u", port);
        r = getaddrinfo(host, port_str, &hints, &res);
        if (r != 0)
                return r == EAI_SYSTEM ? -errno : -EHOSTUNREACH;

        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0) {
                        last = -errno;
                        continue;
                }
                r = connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 ? -errno : 0;
                if (r == -EINPROGRESS)
                        r = finish_connect(fd, deadline);
                if (r == 0) {
                        freeaddrinfo(res);
                        return fd;
                }
                last = r;
                (void) close(fd);
        }
        freeaddrinfo(res);
        return last;
}

int client_connect(Client *c, const CliOptions *o) {
        uint64_t deadline = deadline_after(CLI_CONNECT_TIMEOUT_SEC);
        const char *hint = "";
        int fd;

        *c = (Client){.fd = -1, .json = o->json};
        if (o->tcp) {
                c->where = o->tcp;
                (void) snprintf(c->peer, sizeof(c->peer), "tcp:%s", o->tcp);
                fd = connect_tcp(o->tcp, deadline);
                if (fd == -ECONNREFUSED)
                        hint = " (is asynctaskd listening there?)";
                else if (fd == -EHOSTUNREACH)
                        hint = " (unknown host?)";
        } else {
                c->where = o->socket_path;
                (void) snprintf(c->peer, sizeof(c->peer), "unix:%s", o->socket_path);
                fd = connect_unix(o->socket_path, deadline);
                if (fd == -ENOENT || fd == -ECONNREFUSED)
                        hint = streq(o->socket_path, FRONT_SOCKET_DEFAULT)
                                       ? " (is asynctask.socket running? Try: systemctl start "
                                         "asynctask.socket)"
                                       : " (is asynctaskd running and listening there?)";
                else if (fd == -EACCES)
                        hint = " (this user may not open the socket)";
        }
        if (fd < 0) {
                fprintf(stderr, "asynctask: cannot connect to %s: %s%s\n", c->where,
                        fd == -ETIMEDOUT ? "timed out" : strerror(-fd), hint);
                return CLI_EXIT_UNAVAILABLE;
        }
        c->fd = fd;
        return 0;
}

static int send_all(int fd, const char *data, size_t len, uint64_t deadline) {
        while (len > 0) {
                ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                int r = wait_fd(fd, POLLOUT, deadline);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        return -errno;
                }
                data += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Reads the next non-empty line (without "\n" and a "\r" before it) into a malloc'd string. */
static int read_line(Client *c, uint64_t deadline, char **ret_line, size_t *ret_len) {
        size_t scanned = 0;

        for (;;) {
                char *nl = c->len > scanned ? memchr(c->buf + scanned, '\n', c->len - scanned) : NULL;
                if (nl) {
                        size_t n = (size_t) (nl - c->buf), consumed = n + 1;
                        if (n > 0 && c->buf[n - 1] == '\r')
                                n--;
                        if (n == 0) { /* empty lines carry nothing */
                                memmove(c->buf, c->buf + consumed, c->len - consumed);
                                c->len -= consumed;
                                scanned = 0;
                                continue;
                        }
                        char *line = malloc(n + 1);
                        if (!line)
                                return -ENOMEM;
                        memcpy(line, c->buf, n);
                        line[n] = 0;
                        memmove(c->buf, c->buf + consumed, c->len - consumed);
                        c->len -= consumed;
                        *ret_line = line;
                        *ret_len = n;
                        return 0;
                }
                scanned = c->len;

                if (c->len >= CLI_ANSWER_BYTES_MAX)
                        return -E2BIG;
                if (c->alloc - c->len < 4096) {
                        size_t alloc = c->alloc ? c->alloc * 2 : 16384;
                        if (alloc > CLI_ANSWER_BYTES_MAX)
                                alloc = CLI_ANSWER_BYTES_MAX;
                        char *b = realloc(c->buf, alloc);
                        if (!b)
                                return -ENOMEM;
                        c->buf = b;
                        c->alloc = alloc;
                }

                ssize_t n = recv(c->fd, c->buf + c->len, c->alloc - c->len, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                int r = wait_fd(c->fd, POLLIN, deadline);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        return -errno;
                }
                if (n == 0)
                        return -ECONNRESET;
                c->len += (size_t) n;
        }
}

void client_answer_done(ClientAnswer *a) {
        cJSON_Delete(a->obj);
        free(a->raw);
        *a = (ClientAnswer){};
}

/* Sends req (consumed) and reads its answer. Returns 0 with *ret filled when the daemon said
 * "ok":true (the caller shows it); otherwise reports the problem (the daemon's error, as it came
 * with --json, or why there was no answer) and returns the exit code for it. */
int client_call(Client *c, cJSON *req, uint64_t answer_timeout_sec, ClientAnswer *ret) {
        _cleanup_free_ char *line = NULL, *raw = NULL;
        uint64_t deadline;
        size_t len;
        int r;

        if (!req) {
                fprintf(stderr, "asynctask: out of memory\n");
                return CLI_EXIT_INTERNAL;
        }
        line = cJSON_PrintUnformatted(req);
        cJSON_Delete(req);
        if (!line) {
                fprintf(stderr, "asynctask: out of memory\n");
                return CLI_EXIT_INTERNAL;
        }
        len = strlen(line);
        char *framed = realloc(line, len + 2);
        if (!framed) {
                fprintf(stderr, "asynctask: out of memory\n");
                return CLI_EXIT_INTERNAL;
        }
        line = framed;
        memcpy(line + len, "\n", 2);

        r = send_all(c->fd, line, len + 1, deadline_after(CLI_ANSWER_TIMEOUT_SEC));
        if (r < 0) {
                fprintf(stderr, "asynctask: cannot send to %s: %s\n", c->where,
                        r == -ETIMEDOUT ? "timed out" : strerror(-r));
                return CLI_EXIT_UNAVAILABLE;
        }

        deadline = deadline_after(answer_timeout_sec);
        r = read_line(c, deadline, &raw, &len);
        if (r == -ETIMEDOUT) {
                fprintf(stderr, "asynctask: no answer from %s within %llu s\n", c->where,
                        (unsigned long long) answer_timeout_sec);
                return CLI_EXIT_UNAVAILABLE;
        }
        if (r == -ECONNRESET) {
                fprintf(stderr, "asynctask: %s closed the connection without answering (is it stopping?)\n",
                        c->where);
                return CLI_EXIT_UNAVAILABLE;
        }
        if (r == -E2BIG) {
                fprintf(stderr, "asynctask: the answer from %s is larger than %d bytes\n", c->where,
                        CLI_ANSWER_BYTES_MAX);
                return CLI_EXIT_INTERNAL;
        }
        if (r < 0) {
                fprintf(stderr, "asynctask: cannot read from %s: %s\n", c->where, strerror(-r));
                return r == -ENOMEM ? CLI_EXIT_INTERNAL : CLI_EXIT_UNAVAILABLE;
        }

        const char *end = NULL;
        cJSON *obj = cJSON_ParseWithLengthOpts(raw, len, &end, false);
        const cJSON *ok = cJSON_GetObjectItemCaseSensitive(obj, "ok");
        if (!obj || end != raw + len || !cJSON_IsObject(obj) || !cJSON_IsBool(ok)) {
                cJSON_Delete(obj);
                fprintf(stderr, "asynctask: %s sent an answer this client does not understand: %.200s%s\n",
                        c->where, raw, len > 200 ? "..." : "");
                return CLI_EXIT_INTERNAL;
        }

        if (!cJSON_IsTrue(ok)) {
                if (c->json)
                        printf("%s\n", raw);
                const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
                const cJSON *error = cJSON_GetObjectItemCaseSensitive(obj, "error");
                const char *code_s = cJSON_IsString(code) ? code->valuestring : NULL;
                if (!c->json)
                        fprintf(stderr, "asynctask: %s: %s\n", code_s ? code_s : "error",
                                cJSON_IsString(error) ? error->valuestring : "(no message)");
                r = cli_exit_code_for_error(code_s);
                cJSON_Delete(obj);
                return r;
        }

        *ret = (ClientAnswer){.obj = obj, .raw = TAKE_PTR(raw)};
        return 0;
}

bool client_answer_u64(const cJSON *obj, const char *name, uint64_t *ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
        /* Integral and exactly representable (ids stay below 2^53). */
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 9.0e15) ||
            (double) (uint64_t) v->valuedouble != v->valuedouble)
                return false;
        *ret = (uint64_t) v->valuedouble;
        return true;
}

const char *client_answer_str(const cJSON *obj, const char *name) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

int client_bad_answer(const Client *c, const char *what) {
        fprintf(stderr, "asynctask: %s sent an answer without %s\n", c->where, what);
        return CLI_EXIT_INTERNAL;
}
