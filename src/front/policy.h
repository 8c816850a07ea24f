/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Who is asking, and may they. Identity comes from the socket: SO_PEERCRED + SO_PEERGROUPS on unix
 * sockets; on TCP the peer address, and for a loopback peer also the uid that owns its socket
 * (front/peer-uid.h) with that user's groups. An Allow list matches users, groups and CIDR networks.
 * No allow list means nobody but root over a unix socket.
 *
 * A peer whose user is known owns the tasks it submitted, under "uid:N" whichever socket it used. A
 * TCP peer known only by its address (another host, or a local one whose socket was already closed)
 * shares that address with every user of its host, so it may submit, but never look a task up: no
 * status, wait or cancel, and no idempotency key, which would find another user's task.
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
        bool uid_known; /* always for PEER_UNIX; for PEER_TCP when the kernel named the socket's owner */
        uid_t uid;
        gid_t gid;     /* (gid_t) -1 for a TCP peer whose uid has no passwd entry: never an allowed gid */
        gid_t *groups; /* supplementary groups, owned */
        size_t n_groups;
        /* A TCP peer's supplementary groups are the user's in NSS, looked up only when an allow list
         * needs them: getgrouplist(3) asks every NSS source, and can take hundreds of µs. */
        bool groups_from_nss;
        int family; /* PEER_TCP */
        uint8_t addr[16];
        /* for logs: "uid=33(www-data) gid=33", "tcp 127.0.0.1:40512 uid=33(www-data)" or
         * "tcp 192.0.2.7:40512" */
        char description[128];
        /* stable owner id stored in records: "uid:33" (also over TCP) or "tcp:192.0.2.7" */
        char submitter[SUBMITTER_BYTES_MAX + 1];
} Identity;

/* Fills the identity of the peer of a connected socket. */
int identity_from_socket(int fd, Identity *ret);
void identity_done(Identity *id);
/* For tests and the Accept=yes path: build an identity from raw values. */
int identity_from_ucred(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups, Identity *ret);
int identity_from_sockaddr(const struct sockaddr *sa, socklen_t len, Identity *ret);
/* Makes the TCP peer id user uid, as the kernel reported for a loopback peer: submitter "uid:N",
 * the user's primary group from NSS ((gid_t) -1 if the uid has no entry), its supplementary groups
 * from NSS when needed, the user in the description. */
int identity_set_tcp_uid(Identity *id, uid_t uid);

/* Whether the peer may submit under this allow list: users and groups match a peer whose user is
 * known, networks a TCP peer's address. */
bool policy_allows(const Allow *allow, const Identity *id);

/* Whether the peer may look tasks up at all (status, wait, cancel, keys): only if its user is known. */
bool policy_may_look_up(const Identity *id);
/* Whether records of submitter are the peer's own. */
bool policy_owns(const Identity *id, const char *submitter);

/* Whether the peer is one of the configuration's admins (unix peers only). */
bool config_is_admin(const Config *c, const Identity *id);
