/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "front/conn.h"
#include "front/conn-poll.h"
#include "shared/limits.h"
#include "shared/listen-unix.h"
#include "shared/log.h"
#include "front/server.h"
#include "front/tally.h"
#include "shared/util.h"

typedef struct Listener {
        struct Server *server;
        int fd;
        sd_event_source *io;
        char *unlink_path; /* a unix socket file we created: removed at shutdown */
        char *name;        /* for logs */
} Listener;

typedef struct ConnNode {
        struct Server *server;
        Conn *conn;
        struct ConnNode *prev, *next;
        char owner[SUBMITTER_BYTES_MAX + 1]; /* the peer's uid or address, as counted in per_owner */
        uint64_t awaiting_since;             /* CLOCK_MONOTONIC; 0: not waiting for a frame */
        uint64_t frames_seen;                /* frames received when awaiting_since was set */
} ConnNode;

struct Server {
        sd_event *event;
        Service *service;
        unsigned max_connections;
        unsigned fd_budget; /* connections RLIMIT_NOFILE leaves room for, besides the admin reserve */
        size_t max_frame_bytes;
        ServerEvents events;
        void *userdata;

        Listener *listeners;
        size_t n_listeners;
        bool started;

        int inetd_fd; /* the connection passed to us (Accept=yes), served once started */
        bool inetd;

        ConnPoll *poll; /* the connections' sockets */
        ConnNode *conns;
        unsigned n_conns;
        Tally *per_owner; /* connections per uid (or address, for a TCP peer known only by it) */

        sd_event_source *deadline_timer; /* checks frame_timeout_sec while there are connections */

        sd_event_source *pause_timer; /* accepting paused after EMFILE/ENFILE */

        uint64_t refusal_logged_usec; /* rate limit of the "too many connections" warning */
        uint64_t pause_logged_usec;   /* rate limit of the "cannot accept" warning */
        unsigned refusals_unlogged;
};

static void server_changed(Server *s) {
        if (s->events.changed)
                s->events.changed(s->userdata);
}

static void conn_closed(Conn *c, void *userdata) {
        ConnNode *n = userdata;
        Server *s = n->server;

        if (n->prev)
                n->prev->next = n->next;
        else
                s->conns = n->next;
        if (n->next)
                n->next->prev = n->prev;
        s->n_conns--;
        (void) tally_add(s->per_owner, n->owner, -1, 0);
        conn_free(n->conn);
        free(n);
        server_changed(s);
}

/* The connections we accept: max_connections, unless RLIMIT_NOFILE leaves room for fewer. */
static unsigned server_connection_limit(const Server *s) {
        return s->max_connections < s->fd_budget ? s->max_connections : s->fd_budget;
}

/* Answers a refused peer with one line, then closes our side for writing and reads what it already
 * sent, so that closing does not reset the connection before it has read the answer; at most
 * REFUSED_DRAIN_BYTES, so that a peer that keeps writing cannot hold the accept loop. The caller
 * closes fd. */
static void refuse(Server *s, int fd, const char *why) {
        char line[256];
        char discard[4096];
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        size_t drained = 0;
        ssize_t k;
        int n;

        n = snprintf(line, sizeof(line), "{\"ok\":false,\"code\":\"unavailable\",\"error\":\"%s\"}\n", why);
        if (n > 0 && (size_t) n < sizeof(line))
                (void) send(fd, line, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void) shutdown(fd, SHUT_WR);
        while (drained < REFUSED_DRAIN_BYTES && (k = recv(fd, discard, sizeof(discard), MSG_DONTWAIT)) > 0)
                drained += (size_t) k;

        s->refusals_unlogged++;
        if (now - s->refusal_logged_usec >= STATUS_INTERVAL_USEC || s->refusal_logged_usec == 0) {
                log_warning("Refused %u connection(s), the last one: %s.", s->refusals_unlogged, why);
                s->refusal_logged_usec = now;
                s->refusals_unlogged = 0;
        }
}

static void deadline_timer_arm(Server *s) {
        if (!s->deadline_timer || s->n_conns == 0)
                return;
        if (sd_event_source_get_enabled(s->deadline_timer, NULL) > 0)
                return;
        (void) sd_event_source_set_time_relative(s->deadline_timer, FRAME_TIMEOUT_CHECK_USEC);
        (void) sd_event_source_set_enabled(s->deadline_timer, SD_EVENT_ONESHOT);
}

/* Why a new connection from this peer is refused, or NULL. Admins over the unix socket may use the
 * reserve past max_connections and have no per-user cap: root must be able to look and reload while
 * someone fills the front. */
static const char *refusal_reason(Server *s, const Identity *id, char *buf, size_t size) {
        const Config *cfg = service_config(s->service);
        uint64_t mine = 0;

        if (config_is_admin(cfg, id))
                return NULL;
        if (s->n_conns >= server_connection_limit(s)) {
                snprintf(buf, size, "too many connections (max %u)", server_connection_limit(s));
                return buf;
        }
        tally_get(s->per_owner, id->submitter, &mine, NULL);
        if (mine >= cfg->max_connections_per_user) {
                snprintf(buf, size, "too many connections from %s (max %u per %s)", id->submitter,
                         cfg->max_connections_per_user, id->uid_known ? "user" : "address");
                return buf;
        }
        return NULL;
}

static int server_add_conn(Server *s, int fd, const struct sockaddr *peer, socklen_t peer_len,
                           bool check_limits) {
        const Identity *id;
        char why[160];
        ConnNode *n;
        int r;

        n = calloc(1, sizeof(*n));
        if (!n) {
                close(fd);
                return -ENOMEM;
        }
        n->server = s;
        r = conn_new(s->poll, s->event, fd, peer, peer_len, s->service, s->max_frame_bytes, conn_closed, n,
                     &n->conn);
        if (r < 0) {
                free(n);
                return r;
        }
        id = conn_identity(n->conn);
        if (check_limits) {
                const char *reason = refusal_reason(s, id, why, sizeof(why));

                if (reason) {
                        refuse(s, conn_fd(n->conn), reason);
                        conn_free(n->conn);
                        free(n);
                        return 0;
                }
        }
        r = tally_add(s->per_owner, id->submitter, 1, 0);
        if (r < 0) {
                conn_free(n->conn);
                free(n);
                return r;
        }
        snprintf(n->owner, sizeof(n->owner), "%s", id->submitter);
        n->awaiting_since = now_usec(CLOCK_MONOTONIC);
        n->next = s->conns;
        if (n->next)
                n->next->prev = n;
        s->conns = n;
        s->n_conns++;
        deadline_timer_arm(s);
        server_changed(s);
        conn_start(n->conn);
        return 0;
}

/* Closes connections that have waited frame_timeout_sec for a frame to be completed (connected and
 * silent, or stopped in the middle of a frame). Connections between frames are left alone: clients
 * keep them open across requests. */
static int on_deadline_check(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;
        uint64_t timeout = service_config(s->service)->frame_timeout_sec * USEC_PER_SEC;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        char line[128];

        snprintf(line, sizeof(line),
                 "{\"ok\":false,\"code\":\"bad_frame\",\"error\":\"no complete frame within %llu s\"}\n",
                 (unsigned long long) (timeout / USEC_PER_SEC));
        for (ConnNode *n = s->conns, *next; n; n = next) {
                uint64_t frames;

                next = n->next; /* n may be freed below */
                if (timeout == 0 || !conn_awaiting_frame(n->conn, &frames)) {
                        n->awaiting_since = 0;
                        continue;
                }
                if (n->awaiting_since == 0 || frames != n->frames_seen) {
                        n->awaiting_since = now;
                        n->frames_seen = frames;
                        continue;
                }
                if (now - n->awaiting_since >= timeout) {
                        log_info("Closing the connection from %s: no complete frame within %llu s.",
                                 conn_description(n->conn), (unsigned long long) (timeout / USEC_PER_SEC));
                        conn_abort(n->conn, line);
                }
        }
        deadline_timer_arm(s);
        return 0;
}

static void listeners_enable(Server *s, int enabled) {
        for (size_t i = 0; i < s->n_listeners; i++)
                (void) sd_event_source_set_enabled(s->listeners[i].io, enabled);
}

static int on_pause_end(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;

        if (s->started)
                listeners_enable(s, SD_EVENT_ON);
        return 0;
}

static void pause_accepting(Server *s, int error) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        /* Pauses repeat every 100 ms while the shortage lasts; say so once a second at most. */
        if (s->pause_logged_usec == 0 || now - s->pause_logged_usec >= STATUS_INTERVAL_USEC) {
                log_warning_errno(error, "Cannot accept connections: %m; pausing for %llu ms.",
                                  (unsigned long long) (ACCEPT_PAUSE_USEC / USEC_PER_MSEC));
                s->pause_logged_usec = now;
        }
        listeners_enable(s, SD_EVENT_OFF);
        (void) sd_event_source_set_time_relative(s->pause_timer, ACCEPT_PAUSE_USEC);
        (void) sd_event_source_set_enabled(s->pause_timer, SD_EVENT_ONESHOT);
}

static int on_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Listener *l = userdata;
        Server *s = l->server;

        /* A bounded batch per wakeup keeps a connection storm from starving established clients. */
        for (unsigned i = 0; i < 64; i++) {
                struct sockaddr_storage peer;
                socklen_t peer_len = sizeof(peer);
                int cfd = accept4(fd, (struct sockaddr *) &peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                int r;

                if (cfd < 0) {
                        switch (errno) {
                        case EAGAIN:
                                return 0;
                        case EINTR:
                        case ECONNABORTED:
                        case EPROTO:
                        case EPERM:
                                continue;
                        case EMFILE:
                        case ENFILE:
                        case ENOBUFS:
                        case ENOMEM:
                                pause_accepting(s, errno);
                                return 0;
                        default:
                                log_warning_errno(errno, "accept() on %s failed: %m", l->name);
                                return 0;
                        }
                }

                if (s->n_conns >= server_connection_limit(s) + ADMIN_CONNECTIONS_RESERVE) {
                        char why[64];

                        snprintf(why, sizeof(why), "too many connections (max %u)",
                                 server_connection_limit(s));
                        refuse(s, cfd, why);
                        close(cfd);
                        continue;
                }
                r = server_add_conn(s, cfd, (struct sockaddr *) &peer, peer_len, true);
                if (r < 0)
                        log_warning_errno(r, "Cannot set up a connection on %s: %m", l->name);
        }
        return 0;
}

static int add_listener(Server *s, int fd, const char *name, const char *unlink_path) {
        Listener *p, *l;
        int r;

        p = realloc(s->listeners, (s->n_listeners + 1) * sizeof(*p));
        if (!p)
                return -ENOMEM;
        s->listeners = p;
        l = &s->listeners[s->n_listeners];
        *l = (Listener){.server = s, .fd = fd};
        l->name = strdup(name);
        l->unlink_path = unlink_path ? strdup(unlink_path) : NULL;
        if (!l->name || (unlink_path && !l->unlink_path)) {
                free(l->name);
                free(l->unlink_path);
                return -ENOMEM;
        }
        r = sd_event_add_io(s->event, &l->io, fd, EPOLLIN, on_accept, l);
        if (r < 0) {
                free(l->name);
                free(l->unlink_path);
                return r;
        }
        /* A new connection's first frame is answered from the accept (conn_start()): after whatever the
         * established connections, the launcher and the store have pending in the same wakeup, so that
         * things are handled in the order they happened (a close before the next client's stats). */
        (void) sd_event_source_set_priority(l->io, SD_EVENT_PRIORITY_NORMAL + 10);
        (void) sd_event_source_set_enabled(l->io, s->started ? SD_EVENT_ON : SD_EVENT_OFF);
        s->n_listeners++;
        /* realloc may have moved the array: every source's userdata must follow. */
        for (size_t i = 0; i < s->n_listeners; i++)
                (void) sd_event_source_set_userdata(s->listeners[i].io, &s->listeners[i]);
        return 0;
}

static void listener_done(Listener *l, bool unlink_file) {
        l->io = sd_event_source_disable_unref(l->io);
        if (l->fd >= 0)
                (void) close(l->fd);
        l->fd = -1;
        if (unlink_file && l->unlink_path)
                (void) unlink(l->unlink_path);
        free(l->unlink_path);
        free(l->name);
        l->unlink_path = l->name = NULL;
}

/* Raises the soft RLIMIT_NOFILE to the hard one (the front uses epoll and poll, never select(), so fds
 * past 1024 are fine) and returns how many connections it leaves room for. */
static unsigned fd_budget(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return UINT_MAX;
        if (rl.rlim_cur < rl.rlim_max) {
                struct rlimit raised = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};

                if (setrlimit(RLIMIT_NOFILE, &raised) >= 0)
                        rl = raised;
        }
        if (rl.rlim_cur == RLIM_INFINITY ||
            rl.rlim_cur - FRONT_FIXED_FDS - ADMIN_CONNECTIONS_RESERVE >= UINT_MAX)
                return UINT_MAX;
        if (rl.rlim_cur <= FRONT_FIXED_FDS + ADMIN_CONNECTIONS_RESERVE)
                return 1;
        return (unsigned) (rl.rlim_cur - FRONT_FIXED_FDS - ADMIN_CONNECTIONS_RESERVE);
}

static void check_fd_budget(const Server *s) {
        if (s->max_connections > s->fd_budget)
                log_warning(
                        "max_connections is %u, but the file descriptor limit (RLIMIT_NOFILE) leaves room "
                        "for %u connections besides the %u reserved for admins; accepting %u.",
                        s->max_connections, s->fd_budget, ADMIN_CONNECTIONS_RESERVE, s->fd_budget);
}

int server_new(sd_event *event, Service *service, unsigned max_connections, size_t max_frame_bytes,
               const ServerEvents *events, void *userdata, Server **ret) {
        Server *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->service = service;
        s->max_connections = max_connections;
        s->max_frame_bytes = max_frame_bytes;
        s->fd_budget = fd_budget();
        s->inetd_fd = -1;
        if (events)
                s->events = *events;
        s->userdata = userdata;

        r = sd_event_add_time_relative(event, &s->pause_timer, CLOCK_MONOTONIC, ACCEPT_PAUSE_USEC, 0,
                                       on_pause_end, s);
        if (r < 0) {
                server_free(s);
                return r;
        }
        (void) sd_event_source_set_enabled(s->pause_timer, SD_EVENT_OFF);
        r = tally_new(&s->per_owner);
        if (r >= 0)
                r = conn_poll_new(event, &s->poll);
        if (r >= 0)
                r = sd_event_add_time_relative(event, &s->deadline_timer, CLOCK_MONOTONIC,
                                               FRAME_TIMEOUT_CHECK_USEC, 0, on_deadline_check, s);
        if (r < 0) {
                server_free(s);
                return r;
        }
        (void) sd_event_source_set_enabled(s->deadline_timer, SD_EVENT_OFF);
        check_fd_budget(s);
        *ret = s;
        return 0;
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;
        while (s->conns) {
                ConnNode *n = s->conns;

                s->conns = n->next;
                conn_free(n->conn);
                free(n);
        }
        for (size_t i = 0; i < s->n_listeners; i++)
                listener_done(&s->listeners[i], true);
        free(s->listeners);
        if (s->inetd_fd >= 0)
                (void) close(s->inetd_fd);
        sd_event_source_disable_unref(s->pause_timer);
        sd_event_source_disable_unref(s->deadline_timer);
        conn_poll_free(s->poll);
        tally_free(s->per_owner);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

int server_take_activation_fds(Server *s) {
        int n = sd_listen_fds(true), n_connected = 0, connected_fd = -1, r;

        if (n <= 0)
                return n < 0 ? n : 0;

        for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
                char name[32];

                if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) > 0) {
                        r = fd_nonblock(fd);
                        if (r >= 0) {
                                snprintf(name, sizeof(name), "fd %d", fd);
                                r = add_listener(s, fd, name, NULL);
                        }
                        if (r < 0)
                                return log_error_errno(r, "Cannot listen on passed fd %d: %m", fd);
                        continue;
                }
                if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 0) > 0) {
                        n_connected++;
                        if (connected_fd < 0) {
                                connected_fd = fd;
                                continue;
                        }
                }
                log_warning("Passed fd %d is not a stream socket we can serve; closing it.", fd);
                (void) close(fd);
        }

        if (connected_fd >= 0) {
                if (n_connected == 1 && s->n_listeners == 0) {
                        r = fd_nonblock(connected_fd);
                        if (r < 0)
                                return log_error_errno(r, "Cannot use passed connection fd %d: %m",
                                                       connected_fd);
                        s->inetd_fd = connected_fd;
                        s->inetd = true;
                } else {
                        log_warning("Passed fd %d is a connection, but %s; closing it.", connected_fd,
                                    s->n_listeners > 0 ? "listening sockets were passed too"
                                                       : "more than one connection was passed");
                        (void) close(connected_fd);
                }
        }
        return n;
}

static int server_listen_unix(Server *s, const char *spec, const char *path) {
        int fd = -1, r;

        /* 0666: anyone may connect; who may do what is decided per request from SO_PEERCRED. */
        r = listen_unix(path, 0666, &fd);
        if (r == -EINVAL)
                return log_error_errno(r, "Invalid unix socket path in '%s'.", spec);
        if (r == -EADDRINUSE)
                return log_error_errno(r, "%s: another process is listening there.", path);
        if (r == -EEXIST)
                return log_error_errno(r, "%s: cannot replace the existing file: %m", path);
        if (r < 0)
                return log_error_errno(r, "Cannot listen on %s: %m", path);
        r = add_listener(s, fd, spec, path);
        if (r < 0) {
                close(fd);
                (void) unlink(path);
                return log_error_errno(r, "Cannot watch %s: %m", path);
        }
        log_info("Listening on %s.", spec);
        return 0;
}

static int listen_tcp(Server *s, const char *spec, const char *hostport) {
        _cleanup_free_ char *host = NULL;
        const char *port;
        struct addrinfo hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
                .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
        };
        struct addrinfo *res = NULL;
        int fd = -1, r, one = 1;

        if (hostport[0] == '[') {
                const char *end = strchr(hostport, ']');

                if (!end || end[1] != ':')
                        return log_error_errno(EINVAL, "Invalid address in '%s' (expected tcp:[ADDR]:PORT).",
                                               spec);
                host = strndup(hostport + 1, (size_t) (end - hostport - 1));
                port = end + 2;
        } else {
                const char *colon = strrchr(hostport, ':');

                if (!colon || colon == hostport)
                        return log_error_errno(EINVAL, "Invalid address in '%s' (expected tcp:HOST:PORT).",
                                               spec);
                if (memchr(hostport, ':', (size_t) (colon - hostport)))
                        return log_error_errno(
                                EINVAL, "Invalid address in '%s' (write IPv6 as tcp:[ADDR]:PORT).", spec);
                host = strndup(hostport, (size_t) (colon - hostport));
                port = colon + 1;
        }
        if (!host)
                return log_error_errno(ENOMEM, "Out of memory.");
        if (port[0] == '\0' || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 ||
            atoi(port) > 65535)
                return log_error_errno(EINVAL, "Invalid port in '%s'.", spec);

        r = getaddrinfo(host, port, &hints, &res);
        if (r != 0)
                return log_error_errno(EINVAL, "Cannot resolve '%s': %s", host, gai_strerror(r));

        /* The first address the host resolves to (a numeric address is exactly one). */
        fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, res->ai_protocol);
        if (fd < 0) {
                r = -errno;
                goto fail;
        }
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (res->ai_family == AF_INET6)
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                goto fail;
        }
        freeaddrinfo(res);
        res = NULL;

        r = add_listener(s, fd, spec, NULL);
        if (r < 0)
                goto fail;
        log_info("Listening on %s.", spec);
        return 0;

fail:
        if (res)
                freeaddrinfo(res);
        if (fd >= 0)
                close(fd);
        return log_error_errno(r, "Cannot listen on %s: %m", spec);
}

int server_listen(Server *s, const char *spec) {
        if (startswith(spec, "unix:"))
                return server_listen_unix(s, spec, spec + 5);
        if (startswith(spec, "tcp:"))
                return listen_tcp(s, spec, spec + 4);
        return log_error_errno(EINVAL, "Invalid listen address '%s' (expected unix:PATH or tcp:HOST:PORT).",
                               spec);
}

int server_start(Server *s) {
        int fd;

        if (s->started)
                return 0;
        s->started = true;
        listeners_enable(s, SD_EVENT_ON);
        if (s->inetd_fd >= 0) {
                fd = TAKE_FD(s->inetd_fd);
                return server_add_conn(s, fd, NULL, 0, false);
        }
        return 0;
}

void server_set_limits(Server *s, unsigned max_connections, size_t max_frame_bytes) {
        s->max_connections = max_connections;
        s->max_frame_bytes = max_frame_bytes;
        check_fd_budget(s);
        for (ConnNode *n = s->conns; n; n = n->next)
                conn_set_max_frame(n->conn, max_frame_bytes);
}

unsigned server_n_connections(const Server *s) {
        return s->n_conns;
}

unsigned server_n_listeners(const Server *s) {
        return (unsigned) s->n_listeners;
}

bool server_is_inetd(const Server *s) {
        return s->inetd;
}

void server_shutdown(Server *s) {
        for (size_t i = 0; i < s->n_listeners; i++)
                listener_done(&s->listeners[i], true);
        s->n_listeners = 0;
        (void) sd_event_source_set_enabled(s->pause_timer, SD_EVENT_OFF);
        if (s->inetd_fd >= 0) {
                (void) close(s->inetd_fd);
                s->inetd_fd = -1;
        }
        for (ConnNode *n = s->conns; n; n = n->next)
                conn_shutdown(n->conn);
}
