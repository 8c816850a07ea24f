/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "shared/log.h"
#include "front/peer-uid.h"
#include "front/policy.h"
#include "front/user-cache.h"
#include "shared/util.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

/* Kernel and glibc both cap supplementary groups at NGROUPS_MAX (65536); a larger answer is bogus. */
#define PEER_GROUPS_MAX 65536

/* The user name of uid, from the user cache: "" when it has none (or the lookup failed). */
static const char *user_name(uid_t uid) {
        const UserInfo *u;

        return user_cache_get(uid, &u) >= 0 ? u->name : "";
}

static void describe_unix(Identity *id, pid_t pid) {
        const char *name = user_name(id->uid);
        size_t len;

        if (name[0])
                len = (size_t) snprintf(id->description, sizeof(id->description), "uid=%u(%s) gid=%u",
                                        (unsigned) id->uid, name, (unsigned) id->gid);
        else
                len = (size_t) snprintf(id->description, sizeof(id->description), "uid=%u gid=%u",
                                        (unsigned) id->uid, (unsigned) id->gid);
        if (pid > 0 && len < sizeof(id->description))
                (void) snprintf(id->description + len, sizeof(id->description) - len, " pid=%d", (int) pid);
        (void) snprintf(id->submitter, sizeof(id->submitter), "uid:%u", (unsigned) id->uid);
}

/* Takes ownership of groups (also on failure). */
static int identity_unix(uid_t uid, gid_t gid, gid_t *groups, size_t n_groups, pid_t pid, Identity *ret) {
        Identity id = {
                .kind = PEER_UNIX,
                .uid_known = true,
                .uid = uid,
                .gid = gid,
                .groups = groups,
                .n_groups = groups ? n_groups : 0,
                .family = AF_UNIX,
        };

        describe_unix(&id, pid);
        *ret = id;
        return 0;
}

int identity_from_ucred(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups, Identity *ret) {
        gid_t *copy = NULL;

        if (!ret || (n_groups > 0 && !groups))
                return -EINVAL;
        if (n_groups > 0) {
                copy = malloc(n_groups * sizeof(gid_t));
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, groups, n_groups * sizeof(gid_t));
        }
        return identity_unix(uid, gid, copy, n_groups, 0, ret);
}

int identity_from_sockaddr(const struct sockaddr *sa, socklen_t len, Identity *ret) {
        Identity id = {.kind = PEER_TCP};
        char text[INET6_ADDRSTRLEN];
        unsigned port;

        if (!sa || !ret)
                return -EINVAL;

        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *sin = (const struct sockaddr_in *) sa;
                if (len < (socklen_t) sizeof(*sin))
                        return -EINVAL;
                id.family = AF_INET;
                memcpy(id.addr, &sin->sin_addr, 4);
                port = ntohs(sin->sin_port);
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) sa;
                if (len < (socklen_t) sizeof(*sin6))
                        return -EINVAL;
                /* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; record them as the IPv4
                 * host so the submitter is the same whichever listener they came through. */
                if (address_is_v4_mapped(sin6->sin6_addr.s6_addr)) {
                        id.family = AF_INET;
                        memcpy(id.addr, sin6->sin6_addr.s6_addr + 12, 4);
                } else {
                        id.family = AF_INET6;
                        memcpy(id.addr, sin6->sin6_addr.s6_addr, 16);
                }
                port = ntohs(sin6->sin6_port);
        } else
                return -EAFNOSUPPORT;

        if (!inet_ntop(id.family, id.addr, text, sizeof(text)))
                return -errno;
        if (id.family == AF_INET)
                (void) snprintf(id.description, sizeof(id.description), "tcp %s:%u", text, port);
        else
                (void) snprintf(id.description, sizeof(id.description), "tcp [%s]:%u", text, port);
        (void) snprintf(id.submitter, sizeof(id.submitter), "tcp:%s", text);

        *ret = id;
        return 0;
}

/* The supplementary groups of the user, for kernels without SO_PEERGROUPS (before 4.13). This is
 * the user's configured membership, not the peer process's actual list, which is the best we have. */
static int groups_of_user(uid_t uid, gid_t gid, gid_t **ret, size_t *ret_n) {
        const gid_t *groups;
        gid_t *copy = NULL;
        size_t n;
        int r;

        r = user_cache_groups(uid, gid, &groups, &n);
        if (r < 0)
                return r;
        if (n > 0) {
                copy = malloc(n * sizeof(gid_t));
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, groups, n * sizeof(gid_t));
        }
        *ret = copy;
        *ret_n = n;
        return 0;
}

int identity_set_tcp_uid(Identity *id, uid_t uid) {
        const UserInfo *u = NULL;
        gid_t gid = (gid_t) -1;
        const char *name = "";
        size_t len;
        int r;

        if (!id || id->kind != PEER_TCP || id->uid_known)
                return -EINVAL;

        /* SO_PEERGROUPS has no TCP counterpart: the user's entry stands for the peer's groups. Without
         * one (or with NSS failing) the peer is matched by its uid alone; groups only ever add
         * rights, so missing ones let nobody in. */
        r = user_cache_get(uid, &u);
        if (r == -ENOMEM)
                return r;
        if (r >= 0 && u->found) {
                name = u->name;
                gid = u->gid;
        }

        len = strlen(id->description);
        if (len < sizeof(id->description))
                (void) snprintf(id->description + len, sizeof(id->description) - len,
                                name[0] ? " uid=%u(%s)" : " uid=%u", (unsigned) uid, name);
        (void) snprintf(id->submitter, sizeof(id->submitter), "uid:%u", (unsigned) uid);
        id->uid_known = true;
        id->uid = uid;
        id->gid = gid;
        id->groups_from_nss = r >= 0 && u->found;
        return 0;
}

static int peer_groups(int fd, uid_t uid, gid_t gid, gid_t **ret, size_t *ret_n) {
        size_t cap = 64;

        for (;;) {
                _cleanup_free_ gid_t *buf = malloc(cap * sizeof(gid_t));
                socklen_t len = (socklen_t) (cap * sizeof(gid_t));

                if (!buf)
                        return -ENOMEM;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, buf, &len) >= 0) {
                        *ret_n = len / sizeof(gid_t);
                        *ret = TAKE_PTR(buf);
                        return 0;
                }
                if (errno == ENOPROTOOPT)
                        return groups_of_user(uid, gid, ret, ret_n);
                if (errno != ERANGE)
                        return -errno;
                /* The kernel tells us the size it needs in len; groups may change between calls,
                 * so grow to at least that and try again. */
                size_t need = len / sizeof(gid_t);
                if (cap >= PEER_GROUPS_MAX)
                        return -E2BIG;
                cap = need > cap ? need : cap * 2;
                if (cap > PEER_GROUPS_MAX)
                        cap = PEER_GROUPS_MAX;
        }
}

/* A loopback TCP peer becomes its user, when the kernel can say which; else it stays its address. */
static int identify_tcp_user(int fd, Identity *id) {
        static bool warned = false;
        size_t len;
        uid_t uid;
        int r;

        r = peer_uid_of_connection(fd, &uid);
        if (r >= 0)
                return identity_set_tcp_uid(id, uid);
        if (r == -EREMOTE)
                return 0; /* another host's address: nothing to ask */

        /* A loopback peer left unknown: say so where its refusals are logged. -ENOENT is a client that
         * closed before we accepted (a fire-and-forget one); anything else is this host's setup. */
        len = strlen(id->description);
        if (len < sizeof(id->description))
                (void) snprintf(id->description + len, sizeof(id->description) - len, " (user unknown)");
        if (r != -ENOENT && !warned) {
                warned = true;
                log_warning_errno(
                        r, "Cannot ask the kernel which user is behind a loopback TCP connection: %m. "
                           "Such peers are known by their address only, and may submit but not look "
                           "tasks up.");
        }
        return 0;
}

int identity_from_socket(int fd, Identity *ret) {
        int domain, r;
        socklen_t len = sizeof(domain);

        if (fd < 0 || !ret)
                return -EINVAL;
        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
                return -errno;

        if (domain == AF_UNIX) {
                struct ucred cred;
                gid_t *groups = NULL;
                size_t n_groups = 0;

                len = sizeof(cred);
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                        return -errno;
                if (len != sizeof(cred))
                        return -EIO;
                r = peer_groups(fd, cred.uid, cred.gid, &groups, &n_groups);
                if (r < 0)
                        return r;
                return identity_unix(cred.uid, cred.gid, groups, n_groups, cred.pid, ret);
        }

        if (domain == AF_INET || domain == AF_INET6) {
                struct sockaddr_storage ss;
                socklen_t sslen = sizeof(ss);

                if (getpeername(fd, (struct sockaddr *) &ss, &sslen) < 0)
                        return -errno;
                r = identity_from_sockaddr((struct sockaddr *) &ss, sslen, ret);
                if (r < 0)
                        return r;
                return identify_tcp_user(fd, ret);
        }

        return -EAFNOSUPPORT;
}

void identity_done(Identity *id) {
        if (!id)
                return;
        free(id->groups);
        id->groups = NULL;
        id->n_groups = 0;
}

static bool uid_listed(const Allow *a, uid_t uid) {
        for (size_t i = 0; i < a->n_uids; i++)
                if (a->uids[i] == uid)
                        return true;
        return false;
}

static bool gid_listed(const Allow *a, gid_t gid) {
        for (size_t i = 0; i < a->n_gids; i++)
                if (a->gids[i] == gid)
                        return true;
        return false;
}

/* A TCP peer's groups, from NSS now: only here are they needed. A failed lookup adds no group. */
static bool nss_group_listed(const Allow *a, const Identity *id) {
        _cleanup_free_ gid_t *groups = NULL;
        size_t n = 0;

        if (groups_of_user(id->uid, id->gid, &groups, &n) < 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (gid_listed(a, groups[i]))
                        return true;
        return false;
}

static bool user_listed(const Allow *a, const Identity *id) {
        if (uid_listed(a, id->uid) || gid_listed(a, id->gid))
                return true;
        for (size_t i = 0; i < id->n_groups; i++)
                if (gid_listed(a, id->groups[i]))
                        return true;
        return id->groups_from_nss && a->n_gids > 0 && nss_group_listed(a, id);
}

static bool network_listed(const Allow *a, const Identity *id) {
        for (size_t i = 0; i < a->n_networks; i++)
                if (network_contains(&a->networks[i], id->family, id->addr))
                        return true;
        return false;
}

bool policy_allows(const Allow *allow, const Identity *id) {
        if (!allow || !id)
                return false;

        /* No allow list: the task is for the admin only, and only over the local socket. */
        if (!allow->present)
                return id->kind == PEER_UNIX && id->uid == 0;

        if (id->uid_known && user_listed(allow, id))
                return true;
        /* An allowed network admits every user there, known or not: what the admin listed. */
        return id->kind == PEER_TCP && network_listed(allow, id);
}

bool policy_may_look_up(const Identity *id) {
        return id && id->uid_known;
}

bool policy_owns(const Identity *id, const char *submitter) {
        return policy_may_look_up(id) && submitter && streq(submitter, id->submitter);
}

bool config_is_admin(const Config *c, const Identity *id) {
        if (!c || !id || id->kind != PEER_UNIX)
                return false;
        /* Same matching as an allow list (admins has no networks). A Config not made by config_load()
         * may leave admins absent, which policy_allows() reads as the default: root only. */
        return policy_allows(&c->admins, id);
}
