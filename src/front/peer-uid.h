/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The user behind a TCP connection from this host. SO_PEERCRED answers that for unix sockets only,
 * but the kernel also knows which uid created the peer's TCP socket, and tells it over
 * NETLINK_SOCK_DIAG (inet_diag, what ss(8) reads) to any user of the same network namespace, without
 * capabilities. We ask for exactly one socket: our connection seen from the other end, whose local
 * address and port are the peer's and whose remote address and port are ours.
 *
 * Only loopback peers are asked about: 127.0.0.0/8 and ::1 cannot come from another host, while any
 * other address may be another host's, whose sockets this kernel does not know.
 *
 * The uid is the one that created the peer's socket, as SO_PEERCRED gives the one that connected: a
 * process that connects on behalf of others (a port forwarder, a proxy) lends them its own.
 */

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Both ends of one TCP connection. IPv4-mapped IPv6 addresses (a dual-stack listener's view of an
 * IPv4 peer) are folded to AF_INET, the form in which the kernel finds either end. */
typedef struct PeerUidTuple {
        int family;            /* AF_INET or AF_INET6 */
        uint8_t peer_addr[16]; /* network byte order; IPv4 in the first 4 bytes */
        uint8_t local_addr[16];
        uint16_t peer_port; /* host byte order */
        uint16_t local_port;
} PeerUidTuple;

/* One inet_diag request, as sent. */
typedef struct PeerUidRequest {
        struct nlmsghdr header;
        struct inet_diag_req_v2 body;
} PeerUidRequest;

/* Our end (getsockname) and the peer's (getpeername) of a connected TCP socket. -EAFNOSUPPORT for
 * other families, -EINVAL for short or mismatched addresses. */
int peer_uid_tuple_from_sockaddrs(const struct sockaddr *local, socklen_t local_len,
                                  const struct sockaddr *peer, socklen_t peer_len, PeerUidTuple *ret);

/* 127.0.0.0/8 or ::1 (family AF_INET or AF_INET6, addr as in PeerUidTuple). */
bool peer_uid_address_is_loopback(int family, const uint8_t *addr);

/* The request for the peer's own socket of tuple t. */
void peer_uid_request_build(const PeerUidTuple *t, uint32_t seq, PeerUidRequest *ret);

/* The uid in the kernel's answer to request seq about t. -ENOENT when the peer's socket is not open
 * in a process any more (closed, or a left-over of a connection: those report uid 0), or is not the
 * connection's other end; the kernel's own error (-ENOENT: no such socket); -EBADMSG for an answer
 * that is not one. */
int peer_uid_answer_parse(const void *buf, size_t len, const PeerUidTuple *t, uint32_t seq, uid_t *ret_uid);

/* Asks the kernel about t: a netlink socket, one request, one answer (given before sendto() returns,
 * so this never waits). */
int peer_uid_query(const PeerUidTuple *t, uid_t *ret_uid);

/* The uid of the peer of connected TCP socket fd. -EREMOTE when the peer is not on loopback, -ENOENT
 * when its socket is gone (or our end was reset meanwhile), or the query's -errno (-EAFNOSUPPORT when
 * a sandbox forbids AF_NETLINK). */
int peer_uid_of_connection(int fd, uid_t *ret_uid);
