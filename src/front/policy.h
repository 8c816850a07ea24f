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

#include "shared/allow.h"
#include "shared/config.h"
#include "shared/limits.h"

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
        char submitter[SUBMITTER_BYTES_MAX +
                       1]; /* stable owner id stored in records: "uid:33" or "tcp:127.0.0.1" */
} Identity;

/* Fills the identity of the peer of a connected socket. */
int identity_from_socket(int fd, Identity *ret);
void identity_done(Identity *id);
/* For tests and the Accept=yes path: build an identity from raw values. */
int identity_from_ucred(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups, Identity *ret);
int identity_from_sockaddr(const struct sockaddr *sa, socklen_t len, Identity *ret);

bool policy_allows(const Allow *allow, const Identity *id);

/* Whether the peer is one of the configuration's admins (unix peers only). */
bool config_is_admin(const Config *c, const Identity *id);
