/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Allow lists, as the configuration states them: users, groups and CIDR networks. Both daemons
 * read them (the launcher re-checks a task's configuration); only the front matches peers against
 * them (front/policy.h).
 */

#include <stdbool.h>
#include <stdint.h>
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

/* "127.0.0.1/32", "10.0.0.0/8", "::1/128", "::1" (no prefix = single host). -EINVAL if malformed
 * or if host bits are set beyond the prefix. */
int network_parse(const char *s, Network *ret);

/* family/addr as in struct sockaddr_in(6); IPv4-mapped IPv6 peers (::ffff:a.b.c.d) match IPv4 networks. */
bool network_contains(const Network *net, int family, const void *addr);

/* Whether a 16-byte IPv6 address is IPv4-mapped (::ffff:a.b.c.d), the form a dual-stack listener
 * gives IPv4 peers. */
bool address_is_v4_mapped(const uint8_t *addr);

void allow_done(Allow *allow);
