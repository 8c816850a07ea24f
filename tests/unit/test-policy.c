/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "front/policy.h"
#include "shared/util.h"

/* Parses a literal address into family + 16 bytes (IPv4 in the first 4). */
static int addr_of(const char *s, uint8_t out[16]) {
        memset(out, 0, 16);
        if (inet_pton(AF_INET, s, out) == 1)
                return AF_INET;
        if (inet_pton(AF_INET6, s, out) == 1)
                return AF_INET6;
        fail_msg("bad test address '%s'", s);
        return -1;
}

static void test_network_parse(void **state) {
        static const struct {
                const char *in;
                int family; /* 0: must be rejected */
                unsigned prefix;
                const char *addr;
        } cases[] = {
                {"127.0.0.1/32", AF_INET, 32, "127.0.0.1"},
                {"127.0.0.1", AF_INET, 32, "127.0.0.1"},
                {"10.0.0.0/8", AF_INET, 8, "10.0.0.0"},
                {"0.0.0.0/0", AF_INET, 0, "0.0.0.0"},
                {"192.168.1.0/31", AF_INET, 31, "192.168.1.0"},
                {"192.168.1.2/31", AF_INET, 31, "192.168.1.2"},
                {"255.255.255.255/32", AF_INET, 32, "255.255.255.255"},
                {"::1", AF_INET6, 128, "::1"},
                {"::1/128", AF_INET6, 128, "::1"},
                {"::/0", AF_INET6, 0, "::"},
                {"2001:db8::/32", AF_INET6, 32, "2001:db8::"},
                {"2001:db8:8000::/33", AF_INET6, 33, "2001:db8:8000::"},
                {"fe80::/10", AF_INET6, 10, "fe80::"},
                {"::ffff:10.0.0.0/104", AF_INET6, 104, "::ffff:10.0.0.0"},
                /* host bits set past the prefix */
                {"10.0.0.1/8", 0, 0, NULL},
                {"1.0.0.0/0", 0, 0, NULL},
                {"192.168.1.1/31", 0, 0, NULL},
                {"127.0.0.1/31", 0, 0, NULL},
                {"::1/127", 0, 0, NULL},
                {"::1/0", 0, 0, NULL},
                {"2001:db8::1/64", 0, 0, NULL},
                {"2001:db8:8000::/32", 0, 0, NULL},
                /* prefix out of range or malformed */
                {"10.0.0.0/33", 0, 0, NULL},
                {"::/129", 0, 0, NULL},
                {"::/1280", 0, 0, NULL},
                {"10.0.0.0/", 0, 0, NULL},
                {"10.0.0.0/8x", 0, 0, NULL},
                {"10.0.0.0/+8", 0, 0, NULL},
                {"10.0.0.0/-8", 0, 0, NULL},
                {"10.0.0.0/08", 0, 0, NULL},
                {"10.0.0.0/ 8", 0, 0, NULL},
                {"10.0.0.0/8/8", 0, 0, NULL},
                /* not an address */
                {"", 0, 0, NULL},
                {"/", 0, 0, NULL},
                {"/8", 0, 0, NULL},
                {" 10.0.0.0", 0, 0, NULL},
                {"10.0.0.0 ", 0, 0, NULL},
                {"10.0.0", 0, 0, NULL},
                {"127.1", 0, 0, NULL},
                {"256.0.0.1", 0, 0, NULL},
                {"1.2.3.4.5", 0, 0, NULL},
                {"fe80::1%eth0", 0, 0, NULL},
                {"localhost", 0, 0, NULL},
                {":::1", 0, 0, NULL},
                {"0000:0000:0000:0000:0000:0000:0000:0000:0000/0", 0, 0, NULL},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Network net, untouched;
                int r;

                memset(&net, 0xaa, sizeof(net));
                untouched = net;
                r = network_parse(cases[i].in, &net);
                if (!cases[i].family) {
                        if (r != -EINVAL)
                                fail_msg("'%s' was accepted (r=%d)", cases[i].in, r);
                        assert_memory_equal(&net, &untouched, sizeof(net)); /* ret written only on success */
                        continue;
                }
                if (r != 0)
                        fail_msg("'%s' was rejected (r=%d)", cases[i].in, r);
                uint8_t want[16];
                assert_int_equal(addr_of(cases[i].addr, want), cases[i].family);
                assert_int_equal(net.family, cases[i].family);
                assert_int_equal(net.prefix_len, cases[i].prefix);
                assert_memory_equal(net.addr, want, cases[i].family == AF_INET ? 4 : 16);
        }

        Network net;
        assert_int_equal(network_parse(NULL, &net), -EINVAL);

        char long_input[256];
        memset(long_input, '1', sizeof(long_input) - 1);
        long_input[sizeof(long_input) - 1] = '\0';
        assert_int_equal(network_parse(long_input, &net), -EINVAL);
}

static void test_network_contains(void **state) {
        static const struct {
                const char *net;
                const char *peer;
                bool mapped; /* present an IPv4 peer as ::ffff:a.b.c.d */
                bool want;
        } cases[] = {
                {"10.0.0.0/8", "10.0.0.0", false, true},
                {"10.0.0.0/8", "10.255.255.255", false, true},
                {"10.0.0.0/8", "11.0.0.0", false, false},
                {"10.0.0.0/8", "9.255.255.255", false, false},
                {"0.0.0.0/0", "1.2.3.4", false, true},
                {"0.0.0.0/0", "255.255.255.255", false, true},
                {"127.0.0.1/32", "127.0.0.1", false, true},
                {"127.0.0.1/32", "127.0.0.2", false, false},
                {"127.0.0.1", "127.0.0.1", false, true},
                {"192.168.1.0/31", "192.168.1.0", false, true},
                {"192.168.1.0/31", "192.168.1.1", false, true},
                {"192.168.1.0/31", "192.168.1.2", false, false},
                {"192.168.1.0/31", "192.168.0.255", false, false},
                {"172.16.0.0/12", "172.31.255.255", false, true},
                {"172.16.0.0/12", "172.32.0.0", false, false},
                /* IPv4-mapped peers match IPv4 networks */
                {"10.0.0.0/8", "10.1.2.3", true, true},
                {"10.0.0.0/8", "11.1.2.3", true, false},
                {"127.0.0.1/32", "127.0.0.1", true, true},
                {"0.0.0.0/0", "8.8.8.8", true, true},
                /* families do not mix otherwise */
                {"127.0.0.1/32", "::1", false, false},
                {"0.0.0.0/0", "::1", false, false},
                {"::/0", "1.2.3.4", false, false},
                {"::/0", "1.2.3.4", true, false},
                {"::/0", "2001:db8::1", false, true},
                {"::/0", "::", false, true},
                {"::1/128", "::1", false, true},
                {"::1", "::1", false, true},
                {"::1/128", "::2", false, false},
                {"2001:db8::/32", "2001:db8:ffff:ffff::1", false, true},
                {"2001:db8::/32", "2001:db9::", false, false},
                {"2001:db8::/33", "2001:db8:7fff:ffff::", false, true},
                {"2001:db8::/33", "2001:db8:8000::", false, false},
                /* a network written in the mapped range is the IPv4 network */
                {"::ffff:10.0.0.0/104", "10.2.3.4", false, true},
                {"::ffff:10.0.0.0/104", "10.2.3.4", true, true},
                {"::ffff:10.0.0.0/104", "11.0.0.0", false, false},
                {"::ffff:0:0/96", "8.8.8.8", false, true},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Network net;
                uint8_t addr[16];
                int family;

                assert_int_equal(network_parse(cases[i].net, &net), 0);
                family = addr_of(cases[i].peer, addr);
                if (cases[i].mapped) {
                        assert_int_equal(family, AF_INET);
                        uint8_t v6[16] = {[10] = 0xff, [11] = 0xff};
                        memcpy(v6 + 12, addr, 4);
                        memcpy(addr, v6, 16);
                        family = AF_INET6;
                }
                if (network_contains(&net, family, addr) != cases[i].want)
                        fail_msg("%s contains %s%s: expected %s", cases[i].net,
                                 cases[i].mapped ? "mapped " : "", cases[i].peer,
                                 cases[i].want ? "yes" : "no");
        }

        Network net;
        uint8_t addr[16] = {};
        assert_int_equal(network_parse("0.0.0.0/0", &net), 0);
        assert_false(network_contains(&net, AF_UNIX, addr));
        assert_false(network_contains(NULL, AF_INET, addr));
        assert_false(network_contains(&net, AF_INET, NULL));
}

static void test_identity_from_ucred(void **state) {
        Identity id;
        gid_t groups[] = {4, 27, 100};

        assert_int_equal(identity_from_ucred(0, 0, NULL, 0, &id), 0);
        assert_int_equal(id.kind, PEER_UNIX);
        assert_int_equal(id.uid, 0);
        assert_int_equal(id.gid, 0);
        assert_int_equal(id.n_groups, 0);
        assert_string_equal(id.description, "uid=0(root) gid=0");
        assert_string_equal(id.submitter, "uid:0");
        identity_done(&id);

        assert_int_equal(identity_from_ucred(33, 33, groups, ELEMENTSOF(groups), &id), 0);
        assert_int_equal(id.n_groups, 3);
        assert_ptr_not_equal(id.groups, groups); /* owned copy */
        assert_memory_equal(id.groups, groups, sizeof(groups));
        assert_string_equal(id.description, "uid=33(www-data) gid=33");
        assert_string_equal(id.submitter, "uid:33");
        identity_done(&id);
        assert_null(id.groups);
        identity_done(&id); /* twice is fine */
        identity_done(NULL);

        /* a uid without a passwd entry has no name */
        assert_int_equal(identity_from_ucred(3999999, 5, NULL, 0, &id), 0);
        assert_string_equal(id.description, "uid=3999999 gid=5");
        assert_string_equal(id.submitter, "uid:3999999");
        identity_done(&id);

        assert_int_equal(identity_from_ucred(1, 1, NULL, 2, &id), -EINVAL);
}

static void test_identity_from_sockaddr(void **state) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(40512)};
        struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(9501)};
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        Identity id;
        uint8_t want[16];

        assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr), 1);
        assert_int_equal(identity_from_sockaddr((struct sockaddr *) &sin, sizeof(sin), &id), 0);
        assert_int_equal(id.kind, PEER_TCP);
        assert_int_equal(id.family, AF_INET);
        addr_of("127.0.0.1", want);
        assert_memory_equal(id.addr, want, 4);
        assert_string_equal(id.description, "tcp 127.0.0.1:40512");
        assert_string_equal(id.submitter, "tcp:127.0.0.1");
        identity_done(&id);

        assert_int_equal(inet_pton(AF_INET6, "::1", &sin6.sin6_addr), 1);
        assert_int_equal(identity_from_sockaddr((struct sockaddr *) &sin6, sizeof(sin6), &id), 0);
        assert_int_equal(id.family, AF_INET6);
        assert_string_equal(id.description, "tcp [::1]:9501");
        assert_string_equal(id.submitter, "tcp:::1");
        identity_done(&id);

        /* dual-stack listeners see IPv4 peers as mapped addresses: recorded as IPv4 */
        assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.7", &sin6.sin6_addr), 1);
        assert_int_equal(identity_from_sockaddr((struct sockaddr *) &sin6, sizeof(sin6), &id), 0);
        assert_int_equal(id.family, AF_INET);
        addr_of("192.0.2.7", want);
        assert_memory_equal(id.addr, want, 4);
        assert_string_equal(id.description, "tcp 192.0.2.7:9501");
        assert_string_equal(id.submitter, "tcp:192.0.2.7");
        identity_done(&id);

        assert_int_equal(identity_from_sockaddr((struct sockaddr *) &sun, sizeof(sun), &id), -EAFNOSUPPORT);
        assert_int_equal(identity_from_sockaddr((struct sockaddr *) &sin, sizeof(sin) - 1, &id), -EINVAL);
        assert_int_equal(identity_from_sockaddr((struct sockaddr *) &sin6, sizeof(sin6) - 1, &id), -EINVAL);
        assert_int_equal(identity_from_sockaddr(NULL, 0, &id), -EINVAL);
}

static Identity unix_peer(uid_t uid, gid_t gid, const gid_t *groups, size_t n) {
        Identity id;
        assert_int_equal(identity_from_ucred(uid, gid, groups, n, &id), 0);
        return id;
}

static Identity tcp_peer(const char *addr, bool mapped) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(1234)};
        struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(1234)};
        Identity id;

        if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1 && !mapped)
                assert_int_equal(identity_from_sockaddr((struct sockaddr *) &sin, sizeof(sin), &id), 0);
        else {
                char buf[64];
                (void) snprintf(buf, sizeof(buf), "%s%s", mapped ? "::ffff:" : "", addr);
                assert_int_equal(inet_pton(AF_INET6, buf, &sin6.sin6_addr), 1);
                assert_int_equal(identity_from_sockaddr((struct sockaddr *) &sin6, sizeof(sin6), &id), 0);
        }
        return id;
}

/* A loopback TCP peer whose socket the kernel says uid owns. */
static Identity tcp_user_peer(const char *addr, uid_t uid) {
        Identity id = tcp_peer(addr, false);
        assert_int_equal(identity_set_tcp_uid(&id, uid), 0);
        return id;
}

static void test_identity_set_tcp_uid(void **state) {
        Identity id = tcp_peer("127.0.0.1", false);

        assert_false(id.uid_known);
        assert_false(policy_may_look_up(&id));
        assert_false(policy_owns(&id, "tcp:127.0.0.1")); /* an address owns nothing */
        assert_int_equal(identity_set_tcp_uid(&id, 0), 0);
        assert_true(id.uid_known);
        assert_int_equal(id.kind, PEER_TCP);
        assert_int_equal(id.uid, 0);
        assert_int_equal(id.gid, 0);
        assert_string_equal(id.description, "tcp 127.0.0.1:1234 uid=0(root)");
        assert_string_equal(id.submitter, "uid:0");
        /* supplementary groups are left to NSS, asked only when an allow list needs them */
        assert_true(id.groups_from_nss);
        assert_int_equal(id.n_groups, 0);
        assert_true(policy_may_look_up(&id));
        assert_true(policy_owns(&id, "uid:0"));
        assert_false(policy_owns(&id, "uid:33"));
        assert_false(policy_owns(&id, "tcp:127.0.0.1"));
        assert_false(policy_owns(&id, NULL));
        assert_int_equal(identity_set_tcp_uid(&id, 33), -EINVAL); /* once */
        /* admins stay on the unix socket */
        Config bare = {};
        assert_false(config_is_admin(&bare, &id));
        identity_done(&id);

        /* the same user over the unix socket is the same submitter */
        Identity unix_root;
        assert_int_equal(identity_from_ucred(0, 0, NULL, 0, &unix_root), 0);
        assert_true(policy_owns(&unix_root, "uid:0"));
        identity_done(&unix_root);

        /* a uid without a passwd entry: no name, no group */
        id = tcp_peer("::1", false);
        assert_int_equal(identity_set_tcp_uid(&id, 3999999), 0);
        assert_string_equal(id.description, "tcp [::1]:1234 uid=3999999");
        assert_string_equal(id.submitter, "uid:3999999");
        assert_int_equal(id.gid, (gid_t) -1);
        assert_int_equal(id.n_groups, 0);
        assert_false(id.groups_from_nss);
        identity_done(&id);

        Identity unix_peer_id;
        assert_int_equal(identity_from_ucred(33, 33, NULL, 0, &unix_peer_id), 0);
        assert_int_equal(identity_set_tcp_uid(&unix_peer_id, 0), -EINVAL);
        identity_done(&unix_peer_id);
        assert_int_equal(identity_set_tcp_uid(NULL, 0), -EINVAL);
}

/* A TCP peer matched by a supplementary group it has in the group database (not its primary one):
 * any such member of this system's /etc/group will do. */
static void test_policy_allows_tcp_supplementary_group(void **state) {
        struct group *gr;
        bool tried = false;

        setgrent();
        while ((gr = getgrent()) && !tried) {
                for (char **m = gr->gr_mem; *m && !tried; m++) {
                        struct passwd *pw = getpwnam(*m);
                        if (!pw || pw->pw_gid == gr->gr_gid)
                                continue;
                        gid_t gid = gr->gr_gid, other = gr->gr_gid + 1000000;
                        Allow listed = {.present = true, .gids = &gid, .n_gids = 1};
                        Allow unlisted = {.present = true, .gids = &other, .n_gids = 1};
                        Identity id = tcp_user_peer("127.0.0.1", pw->pw_uid);
                        Identity addr_only = tcp_peer("127.0.0.1", false);

                        assert_true(policy_allows(&listed, &id));
                        assert_false(policy_allows(&unlisted, &id));
                        assert_false(policy_allows(&listed, &addr_only));
                        identity_done(&id);
                        identity_done(&addr_only);
                        tried = true;
                }
        }
        endgrent();
        if (!tried)
                skip();
}

static void test_policy_allows(void **state) {
        uid_t uids_33[] = {33};
        gid_t gids_adm[] = {4};
        Network nets[2];
        assert_int_equal(network_parse("127.0.0.0/8", &nets[0]), 0);
        assert_int_equal(network_parse("::1/128", &nets[1]), 0);

        const Allow absent = {.present = false};
        const Allow empty = {.present = true};
        const Allow users = {.present = true, .uids = uids_33, .n_uids = 1};
        const Allow groups = {.present = true, .gids = gids_adm, .n_gids = 1};
        const Allow networks = {.present = true, .networks = nets, .n_networks = 2};
        uid_t uids_root[] = {0};
        gid_t gids_root[] = {0};
        const Allow root_user = {.present = true, .uids = uids_root, .n_uids = 1};
        const Allow root_group = {.present = true, .gids = gids_root, .n_gids = 1};
        const Allow everything = {.present = true,
                                  .uids = uids_33,
                                  .n_uids = 1,
                                  .gids = gids_adm,
                                  .n_gids = 1,
                                  .networks = nets,
                                  .n_networks = 2};

        gid_t sup_adm[] = {27, 4, 100};
        gid_t sup_other[] = {27, 100};
        struct {
                const char *what;
                const Allow *allow;
                Identity id;
                bool want;
        } cases[] = {
                {"absent, root over unix", &absent, unix_peer(0, 0, NULL, 0), true},
                {"absent, root with groups", &absent, unix_peer(0, 0, sup_adm, 3), true},
                {"absent, www-data", &absent, unix_peer(33, 33, NULL, 0), false},
                {"absent, gid 0 but not uid 0", &absent, unix_peer(1000, 0, NULL, 0), false},
                {"absent, tcp localhost", &absent, tcp_peer("127.0.0.1", false), false},
                {"empty, root", &empty, unix_peer(0, 0, NULL, 0), false},
                {"empty, tcp", &empty, tcp_peer("127.0.0.1", false), false},
                {"users, listed uid", &users, unix_peer(33, 33, NULL, 0), true},
                {"users, other uid", &users, unix_peer(34, 33, NULL, 0), false},
                {"users, root not listed", &users, unix_peer(0, 0, NULL, 0), false},
                {"users, tcp", &users, tcp_peer("127.0.0.1", false), false},
                {"groups, primary gid", &groups, unix_peer(1000, 4, NULL, 0), true},
                {"groups, supplementary", &groups, unix_peer(1000, 1000, sup_adm, 3), true},
                {"groups, not a member", &groups, unix_peer(1000, 1000, sup_other, 2), false},
                {"groups, uid equal to the gid does not count", &groups, unix_peer(4, 1000, NULL, 0), false},
                {"networks, v4 inside", &networks, tcp_peer("127.0.0.1", false), true},
                {"networks, v4 edge", &networks, tcp_peer("127.255.255.255", false), true},
                {"networks, v4 outside", &networks, tcp_peer("128.0.0.0", false), false},
                {"networks, mapped v4 inside", &networks, tcp_peer("127.0.0.1", true), true},
                {"networks, v6 host", &networks, tcp_peer("::1", false), true},
                {"networks, v6 other", &networks, tcp_peer("::2", false), false},
                {"networks, unix root never matches networks", &networks, unix_peer(0, 0, NULL, 0), false},
                {"everything, unix by uid", &everything, unix_peer(33, 33, NULL, 0), true},
                {"everything, unix by group", &everything, unix_peer(1000, 1000, sup_adm, 3), true},
                {"everything, unix stranger", &everything, unix_peer(1000, 1000, sup_other, 2), false},
                {"everything, tcp inside", &everything, tcp_peer("127.0.0.2", false), true},
                {"everything, tcp outside", &everything, tcp_peer("10.0.0.1", false), false},
                /* TCP peers whose user the kernel named: users and groups apply, networks still do */
                {"users, tcp user listed", &users, tcp_user_peer("127.0.0.1", 33), true},
                {"users, tcp user not listed", &users, tcp_user_peer("127.0.0.1", 34), false},
                {"users, tcp root", &root_user, tcp_user_peer("127.0.0.1", 0), true},
                {"groups, tcp user's primary group from NSS", &root_group, tcp_user_peer("::1", 0), true},
                {"groups, tcp user not a member", &root_group, tcp_user_peer("127.0.0.1", 33), false},
                {"groups, tcp uid without entry", &root_group, tcp_user_peer("127.0.0.1", 3999999), false},
                {"networks, tcp user inside", &networks, tcp_user_peer("127.0.0.1", 34), true},
                {"networks, tcp user outside", &networks, tcp_user_peer("10.0.0.1", 33), false},
                {"absent, tcp root is not root over unix", &absent, tcp_user_peer("127.0.0.1", 0), false},
                {"empty, tcp root", &empty, tcp_user_peer("127.0.0.1", 0), false},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                if (policy_allows(cases[i].allow, &cases[i].id) != cases[i].want)
                        fail_msg("%s (%s): expected %s", cases[i].what, cases[i].id.description,
                                 cases[i].want ? "allowed" : "refused");
                identity_done(&cases[i].id);
        }

        Identity root = unix_peer(0, 0, NULL, 0);
        assert_false(policy_allows(NULL, &root));
        assert_false(policy_allows(&absent, NULL));
        identity_done(&root);
}

static void test_allow_done(void **state) {
        Allow a = {.present = true};

        a.uids = calloc(2, sizeof(uid_t));
        a.n_uids = 2;
        a.gids = calloc(1, sizeof(gid_t));
        a.n_gids = 1;
        a.networks = calloc(3, sizeof(Network));
        a.n_networks = 3;
        assert_non_null(a.uids);
        allow_done(&a);
        assert_false(a.present);
        assert_null(a.uids);
        assert_null(a.gids);
        assert_null(a.networks);
        assert_int_equal(a.n_uids + a.n_gids + a.n_networks, 0);
        allow_done(&a);
        allow_done(NULL);
}

static int cmp_gid(const void *a, const void *b) {
        gid_t x = *(const gid_t *) a, y = *(const gid_t *) b;
        return x < y ? -1 : x > y;
}

static void assert_same_groups(const gid_t *a, size_t na, const gid_t *b, size_t nb) {
        gid_t *sa = calloc(na + 1, sizeof(gid_t)), *sb = calloc(nb + 1, sizeof(gid_t));

        assert_non_null(sa);
        assert_non_null(sb);
        if (na)
                memcpy(sa, a, na * sizeof(gid_t));
        if (nb)
                memcpy(sb, b, nb * sizeof(gid_t));
        qsort(sa, na, sizeof(gid_t), cmp_gid);
        qsort(sb, nb, sizeof(gid_t), cmp_gid);
        assert_int_equal(na, nb);
        assert_memory_equal(sa, sb, na * sizeof(gid_t));
        free(sa);
        free(sb);
}

static void test_identity_from_socketpair(void **state) {
        int fds[2];
        Identity id;
        char want[96];
        gid_t groups[256];
        int n;

        n = getgroups(ELEMENTSOF(groups), groups);
        assert_true(n >= 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);

        assert_int_equal(identity_from_socket(fds[0], &id), 0);
        assert_int_equal(id.kind, PEER_UNIX);
        assert_int_equal(id.uid, geteuid());
        assert_int_equal(id.gid, getegid());
        assert_same_groups(id.groups, id.n_groups, groups, (size_t) n);
        (void) snprintf(want, sizeof(want), "uid:%u", (unsigned) geteuid());
        assert_string_equal(id.submitter, want);
        (void) snprintf(want, sizeof(want), " gid=%u pid=%d", (unsigned) getegid(), (int) getpid());
        assert_non_null(strstr(id.description, want));
        (void) snprintf(want, sizeof(want), "uid=%u", (unsigned) geteuid());
        assert_true(startswith(id.description, want));
        identity_done(&id);

        /* SOCK_SEQPACKET, as the launcher socket may be, works the same */
        close(fds[0]);
        close(fds[1]);
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0);
        assert_int_equal(identity_from_socket(fds[1], &id), 0);
        assert_int_equal(id.uid, geteuid());
        identity_done(&id);
        close(fds[0]);
        close(fds[1]);
}

/* More supplementary groups than the first SO_PEERGROUPS buffer holds: the buffer must grow. Needs
 * CAP_SETGID, so it runs in a child and only as root. */
static void test_identity_many_groups(void **state) {
        if (geteuid() != 0) {
                skip();
                return;
        }
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                gid_t groups[300];
                int fds[2];
                Identity id;

                for (size_t i = 0; i < ELEMENTSOF(groups); i++)
                        groups[i] = (gid_t) (50000 + i);
                if (setgroups(ELEMENTSOF(groups), groups) < 0)
                        _exit(2);
                if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
                        _exit(3);
                if (identity_from_socket(fds[0], &id) < 0)
                        _exit(4);
                if (id.n_groups != ELEMENTSOF(groups))
                        _exit(5);
                for (size_t i = 0; i < ELEMENTSOF(groups); i++)
                        if (id.groups[i] != groups[i])
                                _exit(6);
                Allow a = {.present = true, .gids = &groups[299], .n_gids = 1};
                if (!policy_allows(&a, &id))
                        _exit(7);
                identity_done(&id);
                _exit(0);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* Connects over loopback and checks the accepted socket's identity: the user owning the client's
 * socket, or, with close_first, its address alone (the client is gone before we ask). */
static void tcp_roundtrip(int family, const char *listen_addr, const char *connect_addr,
                          const char *want_peer, int want_family, bool close_first) {
        struct sockaddr_storage ss = {};
        socklen_t len;
        int lfd, cfd, afd;
        Identity id;
        char want[160], name[64] = "";
        unsigned port;

        lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(lfd >= 0);
        if (family == AF_INET6) {
                int off = 0;
                assert_int_equal(setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)), 0);
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;
                s6->sin6_family = AF_INET6;
                assert_int_equal(inet_pton(AF_INET6, listen_addr, &s6->sin6_addr), 1);
                len = sizeof(*s6);
        } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;
                s4->sin_family = AF_INET;
                assert_int_equal(inet_pton(AF_INET, listen_addr, &s4->sin_addr), 1);
                len = sizeof(*s4);
        }
        assert_int_equal(bind(lfd, (struct sockaddr *) &ss, len), 0);
        assert_int_equal(listen(lfd, 4), 0);
        len = sizeof(ss);
        assert_int_equal(getsockname(lfd, (struct sockaddr *) &ss, &len), 0);
        port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                                        : ((struct sockaddr_in *) &ss)->sin_port);

        /* connect from connect_addr's family to the listener's port */
        struct sockaddr_storage cs = {};
        int cfamily = strchr(connect_addr, ':') ? AF_INET6 : AF_INET;
        if (cfamily == AF_INET6) {
                struct sockaddr_in6 *c6 = (struct sockaddr_in6 *) &cs;
                c6->sin6_family = AF_INET6;
                c6->sin6_port = htons(port);
                assert_int_equal(inet_pton(AF_INET6, connect_addr, &c6->sin6_addr), 1);
                len = sizeof(*c6);
        } else {
                struct sockaddr_in *c4 = (struct sockaddr_in *) &cs;
                c4->sin_family = AF_INET;
                c4->sin_port = htons(port);
                assert_int_equal(inet_pton(AF_INET, connect_addr, &c4->sin_addr), 1);
                len = sizeof(*c4);
        }
        cfd = socket(cfamily, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(cfd >= 0);
        assert_int_equal(connect(cfd, (struct sockaddr *) &cs, len), 0);
        afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(afd >= 0);

        /* the client's own port, as the server sees it */
        struct sockaddr_storage me = {};
        len = sizeof(me);
        assert_int_equal(getsockname(cfd, (struct sockaddr *) &me, &len), 0);
        unsigned cport = ntohs(cfamily == AF_INET6 ? ((struct sockaddr_in6 *) &me)->sin6_port
                                                   : ((struct sockaddr_in *) &me)->sin_port);

        if (close_first) {
                /* Closed: by now a TIME_WAIT left-over, which the kernel reports as uid 0. */
                close(cfd);
                cfd = -1;
                usleep(20 * 1000);
        }

        assert_int_equal(identity_from_socket(afd, &id), 0);
        assert_int_equal(id.kind, PEER_TCP);
        assert_int_equal(id.family, want_family);
        uint8_t addr[16];
        addr_of(want_peer, addr);
        assert_memory_equal(id.addr, addr, want_family == AF_INET ? 4 : 16);
        if (want_family == AF_INET)
                (void) snprintf(want, sizeof(want), "tcp %s:%u", want_peer, cport);
        else
                (void) snprintf(want, sizeof(want), "tcp [%s]:%u", want_peer, cport);
        assert_true(startswith(id.description, want));
        if (close_first) {
                assert_false(id.uid_known);
                assert_string_equal(id.description + strlen(want), " (user unknown)");
                (void) snprintf(want, sizeof(want), "tcp:%s", want_peer);
                assert_string_equal(id.submitter, want);
                assert_false(policy_may_look_up(&id));
                assert_false(policy_owns(&id, want));
        } else {
                struct passwd *pw = getpwuid(geteuid());
                if (pw)
                        (void) snprintf(name, sizeof(name), "(%s)", pw->pw_name);
                assert_true(id.uid_known);
                assert_int_equal(id.uid, geteuid());
                (void) snprintf(want, sizeof(want), " uid=%u%s", (unsigned) geteuid(), name);
                assert_string_equal(id.description + strlen(id.description) - strlen(want), want);
                (void) snprintf(want, sizeof(want), "uid:%u", (unsigned) geteuid());
                assert_string_equal(id.submitter, want);
                assert_true(policy_owns(&id, want));

                /* allow.users applies over TCP, and without a network */
                uid_t euid = geteuid();
                Allow users = {.present = true, .uids = &euid, .n_uids = 1};
                assert_true(policy_allows(&users, &id));
        }

        Network lo;
        assert_int_equal(network_parse(want_family == AF_INET ? "127.0.0.0/8" : "::1/128", &lo), 0);
        Allow a = {.present = true, .networks = &lo, .n_networks = 1};
        assert_true(policy_allows(&a, &id));
        identity_done(&id);

        close(afd);
        if (cfd >= 0)
                close(cfd);
        close(lfd);
}

static bool ipv6_loopback_works(void) {
        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok = fd >= 0 && bind(fd, (struct sockaddr *) &s6, sizeof(s6)) == 0;
        if (fd >= 0)
                close(fd);
        return ok;
}

static void test_identity_from_tcp(void **state) {
        tcp_roundtrip(AF_INET, "127.0.0.1", "127.0.0.1", "127.0.0.1", AF_INET, false);
        tcp_roundtrip(AF_INET, "127.0.0.1", "127.0.0.1", "127.0.0.1", AF_INET, true);
}

static void test_identity_from_tcp6(void **state) {
        if (!ipv6_loopback_works()) {
                skip();
                return;
        }
        tcp_roundtrip(AF_INET6, "::1", "::1", "::1", AF_INET6, false);
        tcp_roundtrip(AF_INET6, "::1", "::1", "::1", AF_INET6, true);
        /* dual-stack listener, IPv4 client: the peer is recorded as IPv4, and found as its user */
        tcp_roundtrip(AF_INET6, "::", "127.0.0.1", "127.0.0.1", AF_INET, false);
        tcp_roundtrip(AF_INET6, "::", "127.0.0.1", "127.0.0.1", AF_INET, true);
        /* dual-stack client too: an IPv6 socket talking to ::ffff:127.0.0.1 */
        tcp_roundtrip(AF_INET6, "::", "::ffff:127.0.0.1", "127.0.0.1", AF_INET, false);
}

static void test_identity_from_socket_errors(void **state) {
        int p[2];
        Identity id;

        assert_int_equal(pipe(p), 0);
        assert_int_equal(identity_from_socket(p[0], &id), -ENOTSOCK);
        close(p[0]);
        close(p[1]);
        assert_int_equal(identity_from_socket(-1, &id), -EINVAL);

        /* not connected */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(identity_from_socket(fd, &id), -ENOTCONN);
        close(fd);

        /* a datagram socket of another family */
        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
                assert_int_equal(identity_from_socket(fd, &id), -EAFNOSUPPORT);
                close(fd);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_network_parse),
                cmocka_unit_test(test_network_contains),
                cmocka_unit_test(test_identity_from_ucred),
                cmocka_unit_test(test_identity_from_sockaddr),
                cmocka_unit_test(test_identity_set_tcp_uid),
                cmocka_unit_test(test_policy_allows),
                cmocka_unit_test(test_policy_allows_tcp_supplementary_group),
                cmocka_unit_test(test_allow_done),
                cmocka_unit_test(test_identity_from_socketpair),
                cmocka_unit_test(test_identity_many_groups),
                cmocka_unit_test(test_identity_from_tcp),
                cmocka_unit_test(test_identity_from_tcp6),
                cmocka_unit_test(test_identity_from_socket_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
