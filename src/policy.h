/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Who is asking, and may they. Identity comes from the socket (SO_PEERCRED + SO_PEERGROUPS on
 * unix sockets, the peer address on TCP); an Allow list matches users, groups and CIDR networks.
 * No allow list means nobody but root over a unix socket.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

typedef struct Network {
        int family;       /* AF_INET or AF_INET6 */
        uint8_t addr[16]; /* network byte order; IPv4 in the first 4 bytes */
        unsigned prefix_len;
} Network;

typedef struct Allow {
        bool present; /* false: key absent, root over unix only */
        uid_t *uids;
        size_t n_uids;
        gid_t *gids;
        size_t n_gids;
        Network *networks;
        size_t n_networks;
} Allow;

typedef enum PeerKind {
        PEER_UNIX,
        PEER_TCP,
} PeerKind;

typedef struct Identity {
        PeerKind kind;
        uid_t uid; /* PEER_UNIX */
        gid_t gid;
        gid_t *groups; /* supplementary groups, owned */
        size_t n_groups;
        int family; /* PEER_TCP */
        uint8_t addr[16];
        char description[96]; /* for logs: "uid=33(www-data) gid=33" or "tcp 127.0.0.1:40512" */
        char submitter[64];   /* stable owner id stored in records: "uid:33" or "tcp:127.0.0.1" */
} Identity;

/* "127.0.0.1/32", "10.0.0.0/8", "::1/128", "::1" (no prefix = single host). -EINVAL if malformed
 * or if host bits are set beyond the prefix. */
int network_parse(const char *s, Network *ret);

/* family/addr as in struct sockaddr_in(6); IPv4-mapped IPv6 peers (::ffff:a.b.c.d) match IPv4 networks. */
bool network_contains(const Network *net, int family, const void *addr);

/* Fills the identity of the peer of a connected socket. */
int identity_from_socket(int fd, Identity *ret);
void identity_done(Identity *id);
/* For tests and the Accept=yes path: build an identity from raw values. */
int identity_from_ucred(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups, Identity *ret);
int identity_from_sockaddr(const struct sockaddr *sa, socklen_t len, Identity *ret);

bool policy_allows(const Allow *allow, const Identity *id);

void allow_done(Allow *allow);
