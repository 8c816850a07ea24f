/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "launcher/listeners.h"
#include "shared/listen-unix.h"
#include "shared/log.h"
#include "shared/paths.h"

typedef struct Listener {
        int fd;
        sd_event_source *source;
        char *created_path; /* a socket file we made (and remove at exit) */
} Listener;

struct Listeners {
        sd_event *event;
        ListenersAcceptFn on_accept;
        void *userdata;
        Listener *items;
        size_t n_items;
};

static int on_listener(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Listeners *ls = userdata;

        for (;;) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (cfd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno != EAGAIN)
                                log_warning_errno(errno, "accept() failed: %m");
                        return 0;
                }
                ls->on_accept(ls->userdata, cfd);
        }
}

/* Watches fd (taken only on success). */
static int add_listener(Listeners *ls, int fd, const char *created_path) {
        _cleanup_free_ char *path = NULL;
        Listener *p = realloc(ls->items, (ls->n_items + 1) * sizeof(*p));
        Listener *li;
        int r;

        if (!p)
                return -ENOMEM;
        ls->items = p;
        if (created_path) {
                path = strdup(created_path);
                if (!path)
                        return -ENOMEM;
        }
        li = &ls->items[ls->n_items];
        *li = (Listener){.fd = fd};
        r = sd_event_add_io(ls->event, &li->source, fd, EPOLLIN, on_listener, ls);
        if (r < 0)
                return r;
        li->created_path = TAKE_PTR(path);
        ls->n_items++;
        return 0;
}

/* Opens the socket file to the front's group (never to others), when that group exists. */
static bool open_to_front_group(const char *path) {
        struct group *gr = getgrnam(FRONT_USER);

        if (!gr)
                return false;
        /* NOFOLLOW: should the path have been swapped for a symlink since bind(), the link's target must
         * not be the file opened up. */
        if (fchownat(AT_FDCWD, path, (uid_t) -1, gr->gr_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
            fchmodat(AT_FDCWD, path, 0660, AT_SYMLINK_NOFOLLOW) < 0)
                log_warning_errno(errno, "Cannot give group %s access to %s, keeping it 0600: %m",
                                  FRONT_USER, path);
        return true;
}

static int listen_on_path(Listeners *ls, const char *path) {
        _cleanup_close_ int fd = -1;
        bool group;
        int r;

        /* Created 0600 so that there is no moment where others could connect; opened up to the group
         * below. */
        r = path[0] == '/' ? listen_unix(path, 0600, &fd) : -EINVAL;
        if (r == -EINVAL)
                return log_error_errno(r,
                                       "Invalid socket path '%s': must be absolute and shorter than %zu "
                                       "bytes.",
                                       path, sizeof(((struct sockaddr_un){}).sun_path));
        if (r == -EADDRINUSE)
                return log_error_errno(r, "%s: another launcher is listening there.", path);
        if (r == -EEXIST)
                return log_error_errno(r, "%s exists and is not a socket; not replacing it.", path);
        if (r < 0)
                return log_error_errno(r, "Cannot listen on %s: %m", path);

        group = open_to_front_group(path);
        r = add_listener(ls, fd, path);
        if (r < 0) {
                (void) unlink(path);
                return log_error_errno(r, "Cannot watch %s: %m", path);
        }
        TAKE_FD(fd);
        log_info("Listening on unix:%s%s.", path, group ? "" : " (mode 0600: no group " FRONT_USER ")");
        return 0;
}

/* The sockets passed by the service manager. Returns how many were passed, or -errno. */
static int add_passed_sockets(Listeners *ls) {
        int n = sd_listen_fds(true), r;

        if (n < 0)
                return log_error_errno(n, "Cannot read the sockets passed by the service manager: %m");
        for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
                if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
                        log_warning("Passed fd %d is not a listening unix stream socket; closing it.", fd);
                        (void) close(fd);
                        continue;
                }
                /* sd_listen_fds() made it close-on-exec. */
                r = fd_nonblock(fd);
                if (r < 0)
                        log_warning_errno(r, "Cannot make passed fd %d non-blocking, ignoring: %m", fd);
                r = add_listener(ls, fd, NULL);
                if (r < 0)
                        return log_error_errno(r, "Cannot watch passed fd %d: %m", fd);
                log_info("Listening on a socket passed by the service manager (fd %d).", fd);
        }
        if (n > 0 && ls->n_items == 0)
                return log_error_errno(EBADF, "None of the passed sockets is usable.");
        return n;
}

int listeners_setup(Listeners *ls, char *const *listen, size_t n_listen, const char *default_path) {
        int r;

        r = add_passed_sockets(ls);
        if (r != 0)
                return r < 0 ? r : 0;

        for (size_t i = 0; i < n_listen; i++) {
                if (!startswith(listen[i], "unix:"))
                        return log_error_errno(
                                EINVAL,
                                "Unsupported --listen '%s': the launcher listens on unix:PATH "
                                "only.",
                                listen[i]);
                r = listen_on_path(ls, listen[i] + 5);
                if (r < 0)
                        return r;
        }
        if (n_listen > 0)
                return 0;
        return listen_on_path(ls, default_path ? default_path : LAUNCHER_SOCKET_DEFAULT);
}

int listeners_new(sd_event *event, ListenersAcceptFn on_accept, void *userdata, Listeners **ret) {
        Listeners *ls;

        if (!event || !on_accept || !ret)
                return -EINVAL;
        ls = calloc(1, sizeof(*ls));
        if (!ls)
                return -ENOMEM;
        ls->event = sd_event_ref(event);
        ls->on_accept = on_accept;
        ls->userdata = userdata;
        *ret = ls;
        return 0;
}

Listeners *listeners_free(Listeners *ls) {
        if (!ls)
                return NULL;
        for (size_t i = 0; i < ls->n_items; i++) {
                Listener *li = &ls->items[i];

                sd_event_source_disable_unref(li->source);
                (void) close(li->fd);
                if (li->created_path) {
                        (void) unlink(li->created_path);
                        free(li->created_path);
                }
        }
        free(ls->items);
        sd_event_unref(ls->event);
        free(ls);
        return NULL;
}
