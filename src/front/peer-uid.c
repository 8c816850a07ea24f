/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "front/peer-uid.h"
#include "shared/allow.h"
#include "shared/util.h"

/* Room for one inet_diag answer with the attributes the kernel adds unasked (a few hundred bytes). */
#define PEER_UID_ANSWER_BYTES 8192

/* The states in which the peer's socket is the live end of a connection we have just accepted: open,
 * or half-closed by the peer (shutdown(SHUT_WR)). We have not closed ours, so no other state fits. */
#define PEER_UID_STATES ((1U << TCP_ESTABLISHED) | (1U << TCP_FIN_WAIT1) | (1U << TCP_FIN_WAIT2))

static int end_from_sockaddr(const struct sockaddr *sa, socklen_t len, int *ret_family, uint8_t addr[16],
                             uint16_t *ret_port) {
        if (!sa)
                return -EINVAL;
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *sin = (const struct sockaddr_in *) sa;

                if (len < (socklen_t) sizeof(*sin))
                        return -EINVAL;
                memset(addr, 0, 16);
                memcpy(addr, &sin->sin_addr, 4);
                *ret_family = AF_INET;
                *ret_port = ntohs(sin->sin_port);
                return 0;
        }
        if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) sa;

                if (len < (socklen_t) sizeof(*sin6))
                        return -EINVAL;
                memset(addr, 0, 16);
                if (address_is_v4_mapped(sin6->sin6_addr.s6_addr)) {
                        memcpy(addr, sin6->sin6_addr.s6_addr + 12, 4);
                        *ret_family = AF_INET;
                } else {
                        memcpy(addr, sin6->sin6_addr.s6_addr, 16);
                        *ret_family = AF_INET6;
                }
                *ret_port = ntohs(sin6->sin6_port);
                return 0;
        }
        return -EAFNOSUPPORT;
}

int peer_uid_tuple_from_sockaddrs(const struct sockaddr *local, socklen_t local_len,
                                  const struct sockaddr *peer, socklen_t peer_len, PeerUidTuple *ret) {
        PeerUidTuple t = {};
        int local_family, r;

        if (!ret)
                return -EINVAL;
        r = end_from_sockaddr(local, local_len, &local_family, t.local_addr, &t.local_port);
        if (r < 0)
                return r;
        r = end_from_sockaddr(peer, peer_len, &t.family, t.peer_addr, &t.peer_port);
        if (r < 0)
                return r;
        /* Both ends of one connection are of one family once mapped addresses are folded. */
        if (local_family != t.family)
                return -EINVAL;
        *ret = t;
        return 0;
}

bool peer_uid_address_is_loopback(int family, const uint8_t *addr) {
        static const uint8_t ipv6_loopback[16] = {[15] = 1};

        if (!addr)
                return false;
        if (family == AF_INET)
                return addr[0] == 127;
        if (family == AF_INET6)
                return memcmp(addr, ipv6_loopback, 16) == 0 ||
                       (address_is_v4_mapped(addr) && addr[12] == 127);
        return false;
}

static size_t address_bytes(int family) {
        return family == AF_INET ? 4 : 16;
}

void peer_uid_request_build(const PeerUidTuple *t, uint32_t seq, PeerUidRequest *ret) {
        *ret = (PeerUidRequest){
                .header =
                        {
                                .nlmsg_len = sizeof(PeerUidRequest),
                                .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                                .nlmsg_flags = NLM_F_REQUEST, /* one socket, not a dump */
                                .nlmsg_seq = seq,
                        },
                .body =
                        {
                                .sdiag_family = (uint8_t) t->family,
                                .sdiag_protocol = IPPROTO_TCP,
                                .idiag_states = PEER_UID_STATES,
                                .id =
                                        {
                                                /* The peer's socket: its source is the peer, its
                                                 * destination is us. */
                                                .idiag_sport = htons(t->peer_port),
                                                .idiag_dport = htons(t->local_port),
                                                .idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE},
                                        },
                        },
        };
        memcpy(ret->body.id.idiag_src, t->peer_addr, address_bytes(t->family));
        memcpy(ret->body.id.idiag_dst, t->local_addr, address_bytes(t->family));
}

/* Whether addr (as the kernel reports it for a socket of family) is want (as in PeerUidTuple). An
 * IPv6 socket talking IPv4 reports mapped addresses. */
static bool same_address(int family, const void *addr, int want_family, const uint8_t *want) {
        const uint8_t *a = addr;

        if (family == AF_INET6 && want_family == AF_INET && address_is_v4_mapped(a))
                return memcmp(a + 12, want, 4) == 0;
        return family == want_family && memcmp(a, want, address_bytes(family)) == 0;
}

static int parse_diag_msg(const struct nlmsghdr *h, const PeerUidTuple *t, uid_t *ret_uid) {
        const struct inet_diag_msg *m = NLMSG_DATA(h);

        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
                return -EBADMSG;
        if (m->id.idiag_sport != htons(t->peer_port) || m->id.idiag_dport != htons(t->local_port) ||
            !same_address(m->idiag_family, m->id.idiag_src, t->family, t->peer_addr) ||
            !same_address(m->idiag_family, m->id.idiag_dst, t->family, t->local_addr))
                return -ENOENT; /* a listener on the peer's port, say: not the connection */
        /* A closed socket lingering as TIME_WAIT (reported with state FIN_WAIT2 or TIME_WAIT), a
         * half-open request, an orphan: none has an owner any more, and the kernel reports uid 0 for
         * some of them. Only a socket some process still holds (an inode) names a user. */
        if (m->idiag_state >= 32 || !(PEER_UID_STATES & (1U << m->idiag_state)) || m->idiag_inode == 0)
                return -ENOENT;
        *ret_uid = (uid_t) m->idiag_uid;
        return 0;
}

int peer_uid_answer_parse(const void *buf, size_t len, const PeerUidTuple *t, uint32_t seq, uid_t *ret_uid) {
        int left = len > INT32_MAX ? INT32_MAX : (int) len;

        if (!buf || !t || !ret_uid)
                return -EINVAL;
        for (const struct nlmsghdr *h = buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
                if (h->nlmsg_seq != seq)
                        continue;
                if (h->nlmsg_type == NLMSG_ERROR) {
                        const struct nlmsgerr *e = NLMSG_DATA(h);

                        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
                                return -EBADMSG;
                        if (e->error < 0)
                                return e->error;
                        continue; /* an acknowledgement */
                }
                if (h->nlmsg_type == NLMSG_DONE)
                        break;
                if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY)
                        return parse_diag_msg(h, t, ret_uid);
        }
        return -EBADMSG;
}

int peer_uid_query(const PeerUidTuple *t, uid_t *ret_uid) {
        static const struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
        _cleanup_close_ int fd = -1;
        union {
                struct nlmsghdr header; /* for alignment */
                uint8_t bytes[PEER_UID_ANSWER_BYTES];
        } answer;
        PeerUidRequest req;
        ssize_t n;

        if (!t || !ret_uid)
                return -EINVAL;
        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0)
                return -errno;
        peer_uid_request_build(t, 1, &req);
        if (sendto(fd, &req, sizeof(req), 0, (const struct sockaddr *) &kernel, sizeof(kernel)) < 0)
                return -errno;
        /* The kernel answers within sendto(); the front must never block, so do not wait for more. */
        n = recv(fd, &answer, sizeof(answer), MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0)
                return -errno;
        if ((size_t) n > sizeof(answer))
                return -EMSGSIZE;
        return peer_uid_answer_parse(&answer, (size_t) n, t, 1, ret_uid);
}

/* Whether our end of the connection is still the connection (not reset). */
static int still_connected(int fd) {
        struct tcp_info info = {};
        socklen_t len = sizeof(info);

        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0)
                return -errno;
        return info.tcpi_state == TCP_ESTABLISHED || info.tcpi_state == TCP_CLOSE_WAIT;
}

int peer_uid_of_connection(int fd, uid_t *ret_uid) {
        struct sockaddr_storage local, peer;
        socklen_t local_len = sizeof(local), peer_len = sizeof(peer);
        PeerUidTuple t;
        uid_t uid;
        int r;

        if (fd < 0 || !ret_uid)
                return -EINVAL;
        if (getpeername(fd, (struct sockaddr *) &peer, &peer_len) < 0)
                return -errno;
        if (getsockname(fd, (struct sockaddr *) &local, &local_len) < 0)
                return -errno;
        r = peer_uid_tuple_from_sockaddrs((struct sockaddr *) &local, local_len, (struct sockaddr *) &peer,
                                          peer_len, &t);
        if (r < 0)
                return r;
        if (!peer_uid_address_is_loopback(t.family, t.peer_addr))
                return -EREMOTE;

        r = peer_uid_query(&t, &uid);
        if (r < 0)
                return r;
        /* Had our end been reset before the kernel answered, the same addresses and ports could have
         * been taken by a new connection of someone else by then. Still connected after the answer
         * means the answer was about our peer. */
        r = still_connected(fd);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        *ret_uid = uid;
        return 0;
}
