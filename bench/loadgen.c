/* SPDX-License-Identifier: MIT */
/*
 * Load generator for the benchmarks: drives asynctask's line protocol or beanstalkd's `put` with the
 * same client pattern, over loopback only. One thread, epoll, N connections, each keeping up to
 * DEPTH requests in flight, optionally closing and reconnecting after K requests (the PHP-FPM
 * pattern: K=1). Every answer is checked: asynctask answers must be {"ok":true...}, beanstalkd answers
 * INSERTED; anything else is counted by its error code. Bounded by a request count and by time.
 *
 *   loadgen --proto asynctask|beanstalk --addr tcp:127.0.0.1:PORT|unix:PATH [options]
 *
 * Prints one JSON object on stdout (the figures) and a one-line summary on stderr. Exit status 0 when
 * every request was acknowledged, 1 when some were not, 2 on usage errors.
 *
 * After the ingest phase, for asynctask only:
 *   --wait-finished  polls {"op":"stats"} until as many tasks as were acknowledged have finished
 *                    (succeeded + failed + cancelled grew by that much) and reports the end-to-end
 *                    rate from the first submission to the last finish;
 *   --starts         asks the status of every acknowledged id and reports the distribution of
 *                    started_at - created_at (queued to dispatched: the record's started_at is set
 *                    when the front hands the task to the launcher; millisecond resolution);
 *   --stamps FILE    with --wait-finished and the bench/stamp task: reads the "ID REALTIME_NS" lines
 *                    the tasks wrote when they started and reports submit-to-exec latency (from the
 *                    moment this client sent the submission to the task's first instruction);
 *   --ids-out FILE   writes the id of every acknowledged submission to FILE, one a line (the soak,
 *                    bench/soak, checks that each of them ran exactly once).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define IN_BUF_BYTES      (256 * 1024)
#define ERROR_KINDS_MAX   32
#define ERROR_CODE_BYTES  40
#define CONNECT_FAILS_MAX 1000
#define IDS_MAX           (4 * 1000 * 1000)
#define HIST_SUB_BITS     6 /* 64 buckets per power of two: about 1.5% resolution */
#define HIST_BUCKETS      (64 << HIST_SUB_BITS)

typedef enum { PROTO_ASYNCTASK, PROTO_BEANSTALK } Proto;

typedef struct Options {
        Proto proto;
        const char *addr;
        unsigned conns;
        unsigned depth;
        uint64_t per_conn; /* requests per connection before reconnecting; 0: never */
        uint64_t count;
        double duration;
        double warmup;
        double timeout; /* after the duration: how long to wait for answers still owed */
        double rate;    /* requests per second overall; 0: as fast as answers allow */
        size_t payload;
        const char *task;
        unsigned delay;
        const char *label;
        bool wait_finished;
        bool starts;
        const char *stamps;
        const char *ids_out;
        double finish_timeout;
} Options;

typedef struct Hist {
        uint64_t b[HIST_BUCKETS];
        uint64_t n, max;
        double sum;
} Hist;

typedef struct Conn {
        int fd;
        bool connecting, open, want_out;
        char *out;
        size_t out_len, out_off, out_cap;
        char *in;
        size_t in_len;
        uint64_t *sent_at; /* ring of send times, one per request in flight */
        unsigned ring_head, inflight;
        uint64_t sent_here, answered_here;
        uint64_t connect_started;
} Conn;

typedef struct ErrorKind {
        char code[ERROR_CODE_BYTES];
        uint64_t n;
} ErrorKind;

typedef struct State {
        Options o;
        struct sockaddr_storage sa;
        socklen_t sa_len;
        int ep;
        Conn *conns;
        char *frame;
        size_t frame_len;
        uint64_t issued, acked, failed;
        uint64_t warm_acked, warm_failed, warm_at;
        uint64_t connects, connect_fails, consecutive_connect_fails;
        uint64_t start, last_answer;
        bool stop_issuing;
        ErrorKind errors[ERROR_KINDS_MAX];
        unsigned n_errors;
        Hist lat;
        uint64_t *ids;
        uint64_t *id_sent; /* CLOCK_REALTIME ns at which the submission of ids[i] was sent */
        size_t n_ids;
        int64_t realtime_offset; /* CLOCK_REALTIME - CLOCK_MONOTONIC, ns */
} State;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
        interrupted = 1;
}

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static unsigned hist_index(uint64_t v) {
        if (v < (1ULL << HIST_SUB_BITS))
                return (unsigned) v;
        unsigned msb = 63 - (unsigned) __builtin_clzll(v);
        unsigned shift = msb - HIST_SUB_BITS;
        unsigned sub = (unsigned) (v >> shift) & ((1U << HIST_SUB_BITS) - 1);
        unsigned idx = ((shift + 1) << HIST_SUB_BITS) + sub;
        return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

static uint64_t hist_value(unsigned idx) {
        if (idx < (1U << HIST_SUB_BITS))
                return idx;
        unsigned shift = (idx >> HIST_SUB_BITS) - 1;
        uint64_t sub = idx & ((1U << HIST_SUB_BITS) - 1);
        /* middle of the bucket */
        return (((1ULL << HIST_SUB_BITS) | sub) << shift) + ((1ULL << shift) >> 1);
}

static void hist_add(Hist *h, uint64_t v) {
        h->b[hist_index(v)]++;
        h->n++;
        h->sum += (double) v;
        if (v > h->max)
                h->max = v;
}

static uint64_t hist_quantile(const Hist *h, double q) {
        if (h->n == 0)
                return 0;
        uint64_t want = (uint64_t) ceil(q * (double) h->n), seen = 0;
        if (want == 0)
                want = 1;
        for (unsigned i = 0; i < HIST_BUCKETS; i++) {
                seen += h->b[i];
                if (seen >= want)
                        return hist_value(i) < h->max ? hist_value(i) : h->max;
        }
        return h->max;
}

static void count_error(State *s, const char *code, size_t len) {
        if (len >= ERROR_CODE_BYTES)
                len = ERROR_CODE_BYTES - 1;
        s->failed++;
        for (unsigned i = 0; i < s->n_errors; i++)
                if (strlen(s->errors[i].code) == len && memcmp(s->errors[i].code, code, len) == 0) {
                        s->errors[i].n++;
                        return;
                }
        ErrorKind *e =
                s->n_errors < ERROR_KINDS_MAX ? &s->errors[s->n_errors++] : &s->errors[ERROR_KINDS_MAX - 1];
        if (e->n == 0) {
                memcpy(e->code, code, len);
                e->code[len] = '\0';
        }
        e->n++;
}

static void count_error_str(State *s, const char *code) {
        count_error(s, code, strlen(code));
}

/* ---- addresses: loopback only ---- */

static int parse_addr(State *s, const char *addr) {
        memset(&s->sa, 0, sizeof(s->sa));
        if (strncmp(addr, "unix:", 5) == 0) {
                struct sockaddr_un *un = (struct sockaddr_un *) &s->sa;
                const char *p = addr + 5;
                if (*p == '\0' || strlen(p) >= sizeof(un->sun_path))
                        return -EINVAL;
                un->sun_family = AF_UNIX;
                strcpy(un->sun_path, p);
                s->sa_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(p) + 1);
                return 0;
        }
        if (strncmp(addr, "tcp:", 4) == 0) {
                char host[64];
                const char *h = addr + 4, *colon = strrchr(h, ':');
                if (!colon || (size_t) (colon - h) >= sizeof(host))
                        return -EINVAL;
                memcpy(host, h, (size_t) (colon - h));
                host[colon - h] = '\0';
                char *end;
                unsigned long port = strtoul(colon + 1, &end, 10);
                if (*end || port == 0 || port > 65535)
                        return -EINVAL;
                struct sockaddr_in *in = (struct sockaddr_in *) &s->sa;
                if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
                        return -EINVAL;
                /* A load generator must never be pointed at someone else's machine. */
                if ((ntohl(in->sin_addr.s_addr) >> 24) != 127)
                        return -EPERM;
                in->sin_family = AF_INET;
                in->sin_port = htons((uint16_t) port);
                s->sa_len = sizeof(*in);
                return 0;
        }
        return -EINVAL;
}

/* ---- request frames ---- */

static int build_frame(State *s) {
        const Options *o = &s->o;
        if (o->proto == PROTO_BEANSTALK) {
                char head[64];
                int n = snprintf(head, sizeof(head), "put 0 %u 60 %zu\r\n", o->delay, o->payload);
                s->frame_len = (size_t) n + o->payload + 2;
                s->frame = malloc(s->frame_len);
                if (!s->frame)
                        return -ENOMEM;
                memcpy(s->frame, head, (size_t) n);
                memset(s->frame + n, 'x', o->payload);
                memcpy(s->frame + n + o->payload, "\r\n", 2);
                return 0;
        }
        /* {"op":"submit","task":T,"args":["xxx"],"delay":D}\n padded to exactly payload bytes */
        char head[256], tail[64];
        int hn = snprintf(head, sizeof(head), "{\"op\":\"submit\",\"task\":\"%s\",\"args\":[\"", o->task);
        int tn = o->delay ? snprintf(tail, sizeof(tail), "\"],\"delay\":%u}\n", o->delay)
                          : snprintf(tail, sizeof(tail), "\"]}\n");
        if (hn < 0 || (size_t) hn >= sizeof(head))
                return -EINVAL;
        size_t fixed = (size_t) hn + (size_t) tn;
        size_t pad = o->payload > fixed ? o->payload - fixed : 1;
        s->frame_len = fixed + pad;
        s->frame = malloc(s->frame_len);
        if (!s->frame)
                return -ENOMEM;
        memcpy(s->frame, head, (size_t) hn);
        memset(s->frame + hn, 'x', pad);
        memcpy(s->frame + hn + pad, tail, (size_t) tn);
        return 0;
}

/* ---- connections ---- */

static void conn_close(State *s, Conn *c, const char *why) {
        if (c->fd < 0)
                return;
        (void) epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        c->open = c->connecting = c->want_out = false;
        c->out_len = c->out_off = c->in_len = 0;
        /* Requests still owed an answer on a dropped connection are lost. */
        for (; c->inflight > 0; c->inflight--)
                count_error_str(s, why ? why : "lost");
}

static int conn_start(State *s, Conn *c) {
        int fd = socket(s->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (s->sa.ss_family == AF_INET) {
                int one = 1;
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        c->connect_started = now_ns();
        s->connects++;
        if (connect(fd, (struct sockaddr *) &s->sa, s->sa_len) < 0 && errno != EINPROGRESS) {
                int e = errno;
                close(fd);
                return -e;
        }
        c->fd = fd;
        c->connecting = true;
        c->open = false;
        c->sent_here = c->answered_here = 0;
        c->ring_head = 0;
        c->in_len = c->out_len = c->out_off = 0;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
                int e = errno;
                close(fd);
                c->fd = -1;
                return -e;
        }
        c->want_out = true;
        return 0;
}

static void conn_set_out(State *s, Conn *c, bool want) {
        if (c->want_out == want || c->fd < 0)
                return;
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        if (epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
                c->want_out = want;
}

static bool may_issue(State *s, uint64_t t) {
        if (s->stop_issuing || s->issued >= s->o.count)
                return false;
        if (s->o.rate > 0) {
                double allowed = (double) (t - s->start) / 1e9 * s->o.rate + 1;
                if ((double) s->issued >= allowed)
                        return false;
        }
        return true;
}

static void conn_flush(State *s, Conn *c) {
        while (c->out_off < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        conn_close(s, c, "send_failed");
                        return;
                }
                c->out_off += (size_t) n;
        }
        if (c->out_off == c->out_len)
                c->out_off = c->out_len = 0;
        conn_set_out(s, c, c->out_len > 0);
}

/* Queues new requests up to the depth (and the per-connection quota), then writes what it can. */
static void conn_fill(State *s, Conn *c, uint64_t t) {
        if (!c->open)
                return;
        bool added = false;
        while (c->inflight < s->o.depth && (s->o.per_conn == 0 || c->sent_here < s->o.per_conn) &&
               may_issue(s, t)) {
                if (c->out_len + s->frame_len > c->out_cap) {
                        /* compact: keep only the unsent bytes */
                        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
                        c->out_len -= c->out_off;
                        c->out_off = 0;
                        if (c->out_len + s->frame_len > c->out_cap)
                                break;
                }
                memcpy(c->out + c->out_len, s->frame, s->frame_len);
                c->out_len += s->frame_len;
                unsigned slot = (c->ring_head + c->inflight) % s->o.depth;
                /* The first request of a fresh connection is timed from the connect() call, as a
                 * client that connects per submission sees it. */
                c->sent_at[slot] = (s->o.per_conn && c->sent_here == 0) ? c->connect_started : t;
                c->inflight++;
                c->sent_here++;
                s->issued++;
                added = true;
        }
        if (added || c->out_len > 0)
                conn_flush(s, c);
}

static void parse_id(State *s, const char *line, size_t len, uint64_t sent) {
        if (!s->ids || s->n_ids >= IDS_MAX || s->n_ids >= s->o.count)
                return;
        const char *p = memmem(line, len, "\"id\":", 5);
        if (!p)
                return;
        s->ids[s->n_ids] = strtoull(p + 5, NULL, 10);
        s->id_sent[s->n_ids] = (uint64_t) ((int64_t) sent + s->realtime_offset);
        s->n_ids++;
}

static void handle_answer(State *s, Conn *c, const char *line, size_t len, uint64_t t) {
        if (c->inflight == 0) {
                count_error_str(s, "unsolicited");
                return;
        }
        uint64_t sent = c->sent_at[c->ring_head];
        c->ring_head = (c->ring_head + 1) % s->o.depth;
        c->inflight--;
        c->answered_here++;
        s->last_answer = t;
        hist_add(&s->lat, (t - sent) / 1000);

        if (s->o.proto == PROTO_ASYNCTASK) {
                static const char ok[] = "{\"ok\":true";
                if (len >= sizeof(ok) - 1 && memcmp(line, ok, sizeof(ok) - 1) == 0) {
                        s->acked++;
                        parse_id(s, line, len, sent);
                        return;
                }
                const char *p = memmem(line, len, "\"code\":\"", 8);
                if (!p) {
                        count_error_str(s, "unparsable_answer");
                        return;
                }
                p += 8;
                const char *q = memchr(p, '"', len - (size_t) (p - line));
                count_error(s, p, q ? (size_t) (q - p) : 0);
                return;
        }
        if (len > 9 && memcmp(line, "INSERTED ", 9) == 0) {
                s->acked++;
                return;
        }
        const char *sp = memchr(line, ' ', len);
        count_error(s, line, sp ? (size_t) (sp - line) : len);
}

static void conn_read(State *s, Conn *c, uint64_t t) {
        for (;;) {
                if (c->in_len == IN_BUF_BYTES) {
                        count_error_str(s, "answer_too_long");
                        conn_close(s, c, "lost");
                        return;
                }
                ssize_t n = recv(c->fd, c->in + c->in_len, IN_BUF_BYTES - c->in_len, 0);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        conn_close(s, c, "recv_failed");
                        return;
                }
                if (n == 0) {
                        conn_close(s, c, "closed_by_server");
                        return;
                }
                c->in_len += (size_t) n;
                size_t off = 0;
                for (;;) {
                        char *nl = memchr(c->in + off, '\n', c->in_len - off);
                        if (!nl)
                                break;
                        size_t len = (size_t) (nl - (c->in + off));
                        if (s->o.proto == PROTO_BEANSTALK && len > 0 && c->in[off + len - 1] == '\r')
                                len--;
                        handle_answer(s, c, c->in + off, len, t);
                        off = (size_t) (nl - c->in) + 1;
                }
                memmove(c->in, c->in + off, c->in_len - off);
                c->in_len -= off;
                if ((size_t) n < IN_BUF_BYTES / 2)
                        break;
        }
}

static void conn_event(State *s, Conn *c, uint32_t events, uint64_t t) {
        if (c->connecting) {
                int err = 0;
                socklen_t l = sizeof(err);
                (void) getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
                if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
                        close(c->fd);
                        (void) epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
                        c->fd = -1;
                        c->connecting = false;
                        s->connect_fails++;
                        s->consecutive_connect_fails++;
                        char code[ERROR_CODE_BYTES];
                        snprintf(code, sizeof(code), "connect_%s", strerrorname_np(err ? err : ECONNRESET));
                        count_error_str(s, code);
                        s->issued++; /* the request this connection was for is lost */
                        return;
                }
                c->connecting = false;
                c->open = true;
                s->consecutive_connect_fails = 0;
                conn_set_out(s, c, false);
                conn_fill(s, c, t);
                return;
        }
        if (events & EPOLLIN)
                conn_read(s, c, t);
        if (c->fd >= 0 && (events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
                conn_close(s, c, "hangup");
                return;
        }
        if (c->fd >= 0 && (events & EPOLLOUT))
                conn_flush(s, c);
}

/* Gives every idle slot work: reconnects finished connections, tops up open ones. */
static void service_conns(State *s, uint64_t t) {
        for (unsigned i = 0; i < s->o.conns; i++) {
                Conn *c = &s->conns[i];
                if (c->fd >= 0 && c->open && s->o.per_conn && c->sent_here >= s->o.per_conn &&
                    c->inflight == 0) {
                        /* quota done: the client closes, as a PHP-FPM worker does after its request */
                        close(c->fd);
                        (void) epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
                        c->fd = -1;
                        c->open = false;
                }
                if (c->fd < 0) {
                        if (!may_issue(s, t) || s->consecutive_connect_fails >= CONNECT_FAILS_MAX)
                                continue;
                        int r = conn_start(s, c);
                        if (r < 0) {
                                char code[ERROR_CODE_BYTES];
                                snprintf(code, sizeof(code), "connect_%s", strerrorname_np(-r));
                                count_error_str(s, code);
                                s->issued++;
                                s->connect_fails++;
                                s->consecutive_connect_fails++;
                        }
                        continue;
                }
                if (c->open)
                        conn_fill(s, c, t);
        }
}

static uint64_t total_inflight(const State *s) {
        uint64_t n = 0;
        for (unsigned i = 0; i < s->o.conns; i++)
                n += s->conns[i].inflight + (s->conns[i].connecting ? 1 : 0);
        return n;
}

static int run_load(State *s) {
        struct epoll_event evs[256];
        uint64_t dur_ns = (uint64_t) (s->o.duration * 1e9), warm_ns = (uint64_t) (s->o.warmup * 1e9);
        uint64_t hard_ns = dur_ns + (uint64_t) (s->o.timeout * 1e9);
        bool warmed = s->o.warmup <= 0;

        s->start = s->last_answer = now_ns();
        s->warm_at = s->start;
        service_conns(s, s->start);
        for (;;) {
                uint64_t t = now_ns();
                if (!warmed && t - s->start >= warm_ns) {
                        warmed = true;
                        s->warm_acked = s->acked;
                        s->warm_failed = s->failed;
                        s->warm_at = t;
                        memset(&s->lat, 0, sizeof(s->lat));
                }
                if (!s->stop_issuing && (t - s->start >= dur_ns || interrupted))
                        s->stop_issuing = true;
                uint64_t pending = total_inflight(s);
                if (pending == 0 && (s->stop_issuing || s->issued >= s->o.count))
                        break;
                if (s->consecutive_connect_fails >= CONNECT_FAILS_MAX && pending == 0) {
                        fprintf(stderr, "loadgen: giving up after %d failed connects in a row\n",
                                CONNECT_FAILS_MAX);
                        break;
                }
                if (t - s->start >= hard_ns || interrupted > 1) {
                        for (unsigned i = 0; i < s->o.conns; i++)
                                conn_close(s, &s->conns[i], "timeout");
                        break;
                }
                int timeout_ms = s->o.rate > 0 ? 1 : 100;
                int n = epoll_wait(s->ep, evs, (int) (sizeof(evs) / sizeof(evs[0])), timeout_ms);
                if (n < 0 && errno != EINTR)
                        return -errno;
                t = now_ns();
                for (int i = 0; i < n; i++)
                        conn_event(s, evs[i].data.ptr, evs[i].events, t);
                service_conns(s, t);
        }
        return 0;
}

/* ---- after the load: a blocking control connection for stats and status ---- */

static int ctl_connect(State *s) {
        int fd = socket(s->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        struct timeval tv = {.tv_sec = 10};
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *) &s->sa, s->sa_len) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        return fd;
}

static int send_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += w;
                n -= (size_t) w;
        }
        return 0;
}

typedef struct LineReader {
        int fd;
        char buf[IN_BUF_BYTES];
        size_t len, off;
} LineReader;

/* Next line (NUL-terminated in place, without the newline) or NULL on EOF/timeout. */
static char *read_line(LineReader *lr) {
        for (;;) {
                char *nl = memchr(lr->buf + lr->off, '\n', lr->len - lr->off);
                if (nl) {
                        *nl = '\0';
                        char *line = lr->buf + lr->off;
                        lr->off = (size_t) (nl - lr->buf) + 1;
                        return line;
                }
                memmove(lr->buf, lr->buf + lr->off, lr->len - lr->off);
                lr->len -= lr->off;
                lr->off = 0;
                if (lr->len == sizeof(lr->buf))
                        return NULL;
                ssize_t n = recv(lr->fd, lr->buf + lr->len, sizeof(lr->buf) - lr->len, 0);
                if (n <= 0)
                        return NULL;
                lr->len += (size_t) n;
        }
}

static int64_t json_int(const char *line, const char *key) {
        char pat[64];
        snprintf(pat, sizeof(pat), "\"%s\":", key);
        const char *p = strstr(line, pat);
        return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

static int64_t finished_count(LineReader *lr) {
        static const char req[] = "{\"op\":\"stats\"}\n";
        if (send_all(lr->fd, req, sizeof(req) - 1) < 0)
                return -1;
        char *line = read_line(lr);
        if (!line || strncmp(line, "{\"ok\":true", 10) != 0)
                return -1;
        int64_t a = json_int(line, "succeeded"), b = json_int(line, "failed"),
                c = json_int(line, "cancelled");
        if (a < 0 || b < 0 || c < 0)
                return -1;
        return a + b + c;
}

/* "2026-11-26T17:00:00.123Z" -> milliseconds since the epoch, or -1 (null or malformed). */
static int64_t json_time_ms(const char *line, const char *key) {
        char pat[64];
        snprintf(pat, sizeof(pat), "\"%s\":\"", key);
        const char *p = strstr(line, pat);
        if (!p)
                return -1;
        struct tm tm = {0};
        int ms = 0;
        if (sscanf(p + strlen(pat), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
                return -1;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        return (int64_t) timegm(&tm) * 1000 + ms;
}

static void print_hist_ms(const char *name, const Hist *h, bool comma) {
        printf("\"%s\":{\"n\":%" PRIu64 ",\"p50\":%" PRIu64 ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64
               ",\"max\":%" PRIu64 ",\"mean\":%.2f}%s",
               name, h->n, hist_quantile(h, 0.5), hist_quantile(h, 0.9), hist_quantile(h, 0.99), h->max,
               h->n ? h->sum / (double) h->n : 0.0, comma ? "," : "");
}

static void usage(FILE *f) {
        fprintf(f,
                "usage: loadgen --proto asynctask|beanstalk --addr tcp:127.x.x.x:PORT|unix:PATH [options]\n"
                "  --conns N          concurrent connections (default 1)\n"
                "  --depth D          requests in flight per connection (default 1)\n"
                "  --per-conn K       requests per connection, then close and reconnect (0: never; default "
                "0)\n"
                "  --count N          requests in all (default 100000)\n"
                "  --duration S       stop issuing after S seconds (default 10)\n"
                "  --warmup S         answers in the first S seconds are not counted (default 0)\n"
                "  --timeout S        wait at most S more seconds for answers still owed (default 10)\n"
                "  --rate R           at most R requests per second in all (default: unpaced)\n"
                "  --payload BYTES    asynctask: frame length; beanstalk: job body length (default 256)\n"
                "  --task NAME        asynctask task to submit (default bench)\n"
                "  --delay S          submit with this delay (asynctask delay, beanstalk put delay; default "
                "0)\n"
                "  --label TEXT       copied into the JSON output\n"
                "  --wait-finished    asynctask: then wait until the acknowledged tasks have finished\n"
                "  --finish-timeout S how long --wait-finished may wait (default 120)\n"
                "  --starts           asynctask: then report started_at - created_at of every task\n"
                "  --stamps FILE      asynctask, with --wait-finished: submit-to-exec latency from the "
                "lines\n"
                "                     the bench/stamp task wrote to FILE\n"
                "  --ids-out FILE     asynctask: write the id of every acknowledged submission to FILE\n");
}

static int parse_options(int argc, char *argv[], Options *o) {
        enum {
                O_PROTO = 256,
                O_ADDR,
                O_CONNS,
                O_DEPTH,
                O_PER_CONN,
                O_COUNT,
                O_DURATION,
                O_WARMUP,
                O_TIMEOUT,
                O_RATE,
                O_PAYLOAD,
                O_TASK,
                O_DELAY,
                O_LABEL,
                O_WAIT_FINISHED,
                O_FINISH_TIMEOUT,
                O_STARTS,
                O_STAMPS,
                O_IDS_OUT,
        };
        static const struct option opts[] = {
                {"proto", required_argument, NULL, O_PROTO},
                {"addr", required_argument, NULL, O_ADDR},
                {"conns", required_argument, NULL, O_CONNS},
                {"depth", required_argument, NULL, O_DEPTH},
                {"per-conn", required_argument, NULL, O_PER_CONN},
                {"count", required_argument, NULL, O_COUNT},
                {"duration", required_argument, NULL, O_DURATION},
                {"warmup", required_argument, NULL, O_WARMUP},
                {"timeout", required_argument, NULL, O_TIMEOUT},
                {"rate", required_argument, NULL, O_RATE},
                {"payload", required_argument, NULL, O_PAYLOAD},
                {"task", required_argument, NULL, O_TASK},
                {"delay", required_argument, NULL, O_DELAY},
                {"label", required_argument, NULL, O_LABEL},
                {"wait-finished", no_argument, NULL, O_WAIT_FINISHED},
                {"finish-timeout", required_argument, NULL, O_FINISH_TIMEOUT},
                {"starts", no_argument, NULL, O_STARTS},
                {"stamps", required_argument, NULL, O_STAMPS},
                {"ids-out", required_argument, NULL, O_IDS_OUT},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        *o = (Options){.conns = 1,
                       .depth = 1,
                       .count = 100000,
                       .duration = 10,
                       .timeout = 10,
                       .payload = 256,
                       .task = "bench",
                       .label = "",
                       .finish_timeout = 120};
        bool have_proto = false;
        int c;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                char *end = NULL;
                errno = 0;
                switch (c) {
                case O_PROTO:
                        if (strcmp(optarg, "asynctask") == 0)
                                o->proto = PROTO_ASYNCTASK;
                        else if (strcmp(optarg, "beanstalk") == 0)
                                o->proto = PROTO_BEANSTALK;
                        else
                                return -EINVAL;
                        have_proto = true;
                        break;
                case O_ADDR:
                        o->addr = optarg;
                        break;
                case O_CONNS:
                        o->conns = (unsigned) strtoul(optarg, &end, 10);
                        break;
                case O_DEPTH:
                        o->depth = (unsigned) strtoul(optarg, &end, 10);
                        break;
                case O_PER_CONN:
                        o->per_conn = strtoull(optarg, &end, 10);
                        break;
                case O_COUNT:
                        o->count = strtoull(optarg, &end, 10);
                        break;
                case O_DURATION:
                        o->duration = strtod(optarg, &end);
                        break;
                case O_WARMUP:
                        o->warmup = strtod(optarg, &end);
                        break;
                case O_TIMEOUT:
                        o->timeout = strtod(optarg, &end);
                        break;
                case O_RATE:
                        o->rate = strtod(optarg, &end);
                        break;
                case O_PAYLOAD:
                        o->payload = strtoul(optarg, &end, 10);
                        break;
                case O_TASK:
                        o->task = optarg;
                        break;
                case O_DELAY:
                        o->delay = (unsigned) strtoul(optarg, &end, 10);
                        break;
                case O_LABEL:
                        o->label = optarg;
                        break;
                case O_WAIT_FINISHED:
                        o->wait_finished = true;
                        break;
                case O_FINISH_TIMEOUT:
                        o->finish_timeout = strtod(optarg, &end);
                        break;
                case O_STARTS:
                        o->starts = true;
                        break;
                case O_STAMPS:
                        o->stamps = optarg;
                        break;
                case O_IDS_OUT:
                        o->ids_out = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        exit(0);
                default:
                        return -EINVAL;
                }
                if (end && (*end || errno))
                        return -EINVAL;
        }
        if (optind != argc || !have_proto || !o->addr || o->conns == 0 || o->conns > 10000 ||
            o->depth == 0 || o->depth > 100000 || o->count == 0 || o->duration <= 0 || o->payload == 0 ||
            o->payload > 1024 * 1024 || strlen(o->task) > 64 || strpbrk(o->task, "\"\\"))
                return -EINVAL;
        if (o->proto == PROTO_BEANSTALK && (o->wait_finished || o->starts || o->stamps))
                return -EINVAL;
        if (o->stamps && !o->wait_finished)
                return -EINVAL;
        return 0;
}

/* Polls stats until `want` more tasks have finished than at `base`. Returns the time of the poll
 * that saw it, 0 on timeout or error. */
static uint64_t wait_finished(State *s, LineReader *lr, int64_t base, uint64_t want) {
        uint64_t deadline = now_ns() + (uint64_t) (s->o.finish_timeout * 1e9);
        for (;;) {
                int64_t f = finished_count(lr);
                uint64_t t = now_ns();
                if (f < 0)
                        return 0;
                if ((uint64_t) (f - base) >= want)
                        return t;
                if (t >= deadline || interrupted)
                        return 0;
                struct timespec ts = {.tv_nsec = 2 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
}

/* Status of every acknowledged id, pipelined in batches: submit-to-running and run times. */
static int collect_starts(State *s, LineReader *lr, Hist *start_ms, Hist *run_ms, uint64_t *not_started) {
        const size_t batch = 256;
        char *req = malloc(batch * 48);
        if (!req)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_ids; i += batch) {
                size_t n = s->n_ids - i < batch ? s->n_ids - i : batch, len = 0;
                for (size_t j = 0; j < n; j++)
                        len += (size_t) sprintf(req + len, "{\"op\":\"status\",\"id\":%" PRIu64 "}\n",
                                                s->ids[i + j]);
                if (send_all(lr->fd, req, len) < 0) {
                        free(req);
                        return -EIO;
                }
                for (size_t j = 0; j < n; j++) {
                        char *line = read_line(lr);
                        if (!line) {
                                free(req);
                                return -EIO;
                        }
                        int64_t c = json_time_ms(line, "created_at"), st = json_time_ms(line, "started_at"),
                                f = json_time_ms(line, "finished_at");
                        if (c < 0 || st < 0) {
                                (*not_started)++;
                                continue;
                        }
                        hist_add(start_ms, (uint64_t) (st > c ? st - c : 0));
                        if (f >= st)
                                hist_add(run_ms, (uint64_t) (f - st));
                }
        }
        free(req);
        return 0;
}

typedef struct IdTime {
        uint64_t id, sent;
} IdTime;

static int cmp_id(const void *a, const void *b) {
        uint64_t x = ((const IdTime *) a)->id, y = ((const IdTime *) b)->id;
        return x < y ? -1 : x > y;
}

/* Matches the stamp lines with the send times: submit-to-exec latency in microseconds. */
static int read_stamps(State *s, Hist *exec_us, uint64_t *matched, uint64_t *unmatched) {
        IdTime *v = malloc((s->n_ids ? s->n_ids : 1) * sizeof(IdTime));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_ids; i++)
                v[i] = (IdTime){s->ids[i], s->id_sent[i]};
        qsort(v, s->n_ids, sizeof(IdTime), cmp_id);
        FILE *f = fopen(s->o.stamps, "re");
        if (!f) {
                int e = errno;
                free(v);
                return -e;
        }
        unsigned long long id, ns;
        while (fscanf(f, "%llu %llu", &id, &ns) == 2) {
                IdTime key = {.id = id}, *hit = bsearch(&key, v, s->n_ids, sizeof(IdTime), cmp_id);
                if (!hit) {
                        (*unmatched)++;
                        continue;
                }
                hist_add(exec_us, ns > hit->sent ? (ns - hit->sent) / 1000 : 0);
                (*matched)++;
        }
        fclose(f);
        free(v);
        return 0;
}

int main(int argc, char *argv[]) {
        static State st;
        State *s = &st;
        int r;

        r = parse_options(argc, argv, &s->o);
        if (r < 0) {
                usage(stderr);
                return 2;
        }
        r = parse_addr(s, s->o.addr);
        if (r < 0) {
                fprintf(stderr, "loadgen: %s: %s\n", s->o.addr,
                        r == -EPERM ? "only loopback addresses (127.0.0.0/8) may be loaded"
                                    : "not tcp:127.x.x.x:PORT or unix:PATH");
                return 2;
        }
        if (build_frame(s) < 0) {
                fprintf(stderr, "loadgen: cannot build the request frame\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);

        s->ep = epoll_create1(EPOLL_CLOEXEC);
        s->conns = calloc(s->o.conns, sizeof(Conn));
        if (s->ep < 0 || !s->conns)
                return 1;
        for (unsigned i = 0; i < s->o.conns; i++) {
                Conn *c = &s->conns[i];
                c->fd = -1;
                c->out_cap = (size_t) s->o.depth * s->frame_len;
                c->out = malloc(c->out_cap);
                c->in = malloc(IN_BUF_BYTES);
                c->sent_at = calloc(s->o.depth, sizeof(uint64_t));
                if (!c->out || !c->in || !c->sent_at)
                        return 1;
        }
        if (s->o.starts || s->o.stamps || s->o.ids_out) {
                size_t n = s->o.count < IDS_MAX ? s->o.count : IDS_MAX;
                s->ids = malloc(n * sizeof(uint64_t));
                s->id_sent = malloc(n * sizeof(uint64_t));
                if (!s->ids || !s->id_sent)
                        return 1;
                struct timespec rt;
                clock_gettime(CLOCK_REALTIME, &rt);
                s->realtime_offset =
                        (int64_t) ((uint64_t) rt.tv_sec * 1000000000ULL + (uint64_t) rt.tv_nsec) -
                        (int64_t) now_ns();
        }

        LineReader *lr = NULL;
        int64_t base_finished = 0;
        if (s->o.wait_finished || s->o.starts) {
                lr = calloc(1, sizeof(*lr));
                if (!lr)
                        return 1;
                lr->fd = ctl_connect(s);
                if (lr->fd < 0) {
                        fprintf(stderr, "loadgen: cannot connect to %s: %s\n", s->o.addr, strerror(-lr->fd));
                        return 1;
                }
                base_finished = finished_count(lr);
                if (base_finished < 0) {
                        fprintf(stderr, "loadgen: stats request failed\n");
                        return 1;
                }
        }

        r = run_load(s);
        if (r < 0) {
                fprintf(stderr, "loadgen: epoll: %s\n", strerror(-r));
                return 1;
        }
        uint64_t end = s->last_answer > s->warm_at ? s->last_answer : now_ns();
        double secs = (double) (end - s->warm_at) / 1e9;
        uint64_t acked = s->acked - s->warm_acked, failed = s->failed - s->warm_failed;
        double rate = secs > 0 ? (double) acked / secs : 0;

        uint64_t finished_at = 0, not_started = 0;
        static Hist start_ms, run_ms;
        if (lr && s->o.wait_finished)
                finished_at = wait_finished(s, lr, base_finished, s->acked);
        if (lr && s->o.starts && collect_starts(s, lr, &start_ms, &run_ms, &not_started) < 0)
                fprintf(stderr, "loadgen: status queries failed\n");
        bool ids_written = true;
        if (s->o.ids_out) {
                FILE *f = fopen(s->o.ids_out, "we");
                for (size_t i = 0; f && i < s->n_ids; i++)
                        fprintf(f, "%" PRIu64 "\n", s->ids[i]);
                if (!f || fclose(f) != 0) {
                        fprintf(stderr, "loadgen: %s: %s\n", s->o.ids_out, strerror(errno));
                        ids_written = false;
                }
        }
        static Hist exec_us;
        uint64_t stamped = 0, stamps_unmatched = 0;
        if (s->o.stamps && finished_at) {
                r = read_stamps(s, &exec_us, &stamped, &stamps_unmatched);
                if (r < 0)
                        fprintf(stderr, "loadgen: %s: %s\n", s->o.stamps, strerror(-r));
        }

        printf("{\"label\":\"%s\",\"proto\":\"%s\",\"addr\":\"%s\",\"conns\":%u,\"depth\":%u,\"per_conn\":"
               "%" PRIu64 ",\"payload\":%zu,\"frame_bytes\":%zu,\"delay\":%u,\"rate_limit\":%.0f,",
               s->o.label, s->o.proto == PROTO_ASYNCTASK ? "asynctask" : "beanstalk", s->o.addr, s->o.conns,
               s->o.depth, s->o.per_conn, s->o.payload, s->frame_len, s->o.delay, s->o.rate);
        printf("\"issued\":%" PRIu64 ",\"acked_total\":%" PRIu64 ",\"errors_total\":%" PRIu64
               ",\"acked\":%" PRIu64 ",\"errors\":%" PRIu64
               ",\"seconds\":%.4f,\"rate\":%.1f,\"connects\":%" PRIu64 ",\"connect_fails\":%" PRIu64 ",",
               s->issued, s->acked, s->failed, acked, failed, secs, rate, s->connects, s->connect_fails);
        printf("\"error_codes\":{");
        for (unsigned i = 0; i < s->n_errors; i++)
                printf("%s\"%s\":%" PRIu64, i ? "," : "", s->errors[i].code, s->errors[i].n);
        printf("},");
        print_hist_ms("latency_us", &s->lat, true);
        if (s->o.wait_finished) {
                double fsecs = finished_at ? (double) (finished_at - s->start) / 1e9 : 0;
                printf("\"finished\":%s,\"finish_seconds\":%.4f,\"finish_rate\":%.1f,",
                       finished_at ? "true" : "false", fsecs, fsecs > 0 ? (double) s->acked / fsecs : 0.0);
        }
        if (s->o.starts) {
                printf("\"not_started\":%" PRIu64 ",", not_started);
                print_hist_ms("start_ms", &start_ms, true);
                print_hist_ms("run_ms", &run_ms, true);
        }
        if (s->o.stamps) {
                printf("\"stamped\":%" PRIu64 ",\"stamps_unmatched\":%" PRIu64 ",", stamped,
                       stamps_unmatched);
                print_hist_ms("exec_us", &exec_us, true);
        }
        if (s->o.ids_out)
                printf("\"ids_written\":%zu,", ids_written ? s->n_ids : 0);
        bool ok = failed == 0 && s->acked > 0 && (!s->o.wait_finished || finished_at) && ids_written;
        printf("\"ok\":%s}\n", ok ? "true" : "false");
        fprintf(stderr,
                "loadgen %s %s: %" PRIu64 " acked, %" PRIu64
                " errors in %.3f s = %.0f/s, latency p50 %" PRIu64 " us p99 %" PRIu64 " us\n",
                s->o.label, s->o.proto == PROTO_ASYNCTASK ? "asynctask" : "beanstalk", acked, failed, secs,
                rate, hist_quantile(&s->lat, 0.5), hist_quantile(&s->lat, 0.99));

        for (unsigned i = 0; i < s->o.conns; i++) {
                if (s->conns[i].fd >= 0)
                        close(s->conns[i].fd);
                free(s->conns[i].out);
                free(s->conns[i].in);
                free(s->conns[i].sent_at);
        }
        free(s->conns);
        if (lr) {
                close(lr->fd);
                free(lr);
        }
        free(s->ids);
        free(s->id_sent);
        free(s->frame);
        close(s->ep);
        return ok ? 0 : 1;
}
