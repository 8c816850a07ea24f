/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "shared/allow.h"
#include "shared/util.h"

static unsigned family_bits(int family) {
        return family == AF_INET ? 32 : 128;
}

/* True if the first `prefix` bits of a and b are equal. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix) {
        unsigned bytes = prefix / 8, rest = prefix % 8;

        if (memcmp(a, b, bytes) != 0)
                return false;
        if (rest == 0)
                return true;
        uint8_t mask = (uint8_t) (0xff << (8 - rest));
        return (a[bytes] & mask) == (b[bytes] & mask);
}

static bool host_bits_clear(const uint8_t *addr, unsigned prefix, unsigned bits) {
        for (unsigned i = prefix; i < bits; i++)
                if (addr[i / 8] & (0x80 >> (i % 8)))
                        return false;
        return true;
}

bool address_is_v4_mapped(const uint8_t *a) {
        static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return memcmp(a, mapped_prefix, sizeof(mapped_prefix)) == 0;
}

int network_parse(const char *s, Network *ret) {
        char buf[INET6_ADDRSTRLEN];
        Network n = {};
        unsigned bits, prefix;

        if (!s)
                return -EINVAL;

        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t) (slash - s) : strlen(s);
        if (len == 0 || len >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, len);
        buf[len] = '\0';

        /* inet_pton() is strict: dotted quads only (no "127.1"), no scope ids, no spaces. */
        if (inet_pton(AF_INET, buf, n.addr) == 1)
                n.family = AF_INET;
        else if (inet_pton(AF_INET6, buf, n.addr) == 1)
                n.family = AF_INET6;
        else
                return -EINVAL;
        bits = family_bits(n.family);

        if (slash) {
                const char *p = slash + 1;
                size_t digits = strspn(p, "0123456789");

                /* Plain decimal only: no sign, no spaces, no leading zeros, no trailing garbage. */
                if (digits == 0 || digits > 3 || p[digits] != '\0' || (p[0] == '0' && digits > 1))
                        return -EINVAL;
                prefix = (unsigned) atoi(p);
                if (prefix > bits)
                        return -EINVAL;
        } else
                prefix = bits;

        if (!host_bits_clear(n.addr, prefix, bits))
                return -EINVAL;

        n.prefix_len = prefix;
        *ret = n;
        return 0;
}

bool network_contains(const Network *net, int family, const void *addr) {
        uint8_t peer[16] = {}, netaddr[16];
        int peer_family, net_family;
        unsigned prefix;

        if (!net || !addr)
                return false;

        /* Compare in one family: an IPv4-mapped IPv6 peer (dual-stack listener) is the IPv4 host it
         * stands for, and a network written inside ::ffff:0:0/96 is the IPv4 network it stands for. */
        if (family == AF_INET) {
                peer_family = AF_INET;
                memcpy(peer, addr, 4);
        } else if (family == AF_INET6) {
                const uint8_t *a = addr;
                if (address_is_v4_mapped(a)) {
                        peer_family = AF_INET;
                        memcpy(peer, a + 12, 4);
                } else {
                        peer_family = AF_INET6;
                        memcpy(peer, a, 16);
                }
        } else
                return false;

        net_family = net->family;
        prefix = net->prefix_len;
        memcpy(netaddr, net->addr, sizeof(netaddr));
        if (net_family == AF_INET6 && prefix >= 96 && address_is_v4_mapped(net->addr)) {
                net_family = AF_INET;
                prefix -= 96;
                memmove(netaddr, net->addr + 12, 4);
        }

        if (net_family != peer_family || prefix > family_bits(net_family))
                return false;
        return prefix_equal(peer, netaddr, prefix);
}

void allow_done(Allow *allow) {
        if (!allow)
                return;
        free(allow->uids);
        free(allow->gids);
        free(allow->networks);
        *allow = (Allow){};
}
