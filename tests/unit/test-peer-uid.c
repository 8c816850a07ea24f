/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <grp.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "front/peer-uid.h"
#include "shared/util.h"

static struct sockaddr_in sin_of(const char *addr, uint16_t port) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
        assert_int_equal(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
        return sin;
}

static struct sockaddr_in6 sin6_of(const char *addr, uint16_t port) {
        struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
        assert_int_equal(inet_pton(AF_INET6, addr, &sin6.sin6_addr), 1);
        return sin6;
}

static void bytes_of(int family, const char *addr, uint8_t out[16]) {
        memset(out, 0, 16);
        assert_int_equal(inet_pton(family, addr, out), 1);
}

static void test_tuple_from_sockaddrs(void **state) {
        PeerUidTuple t;
        uint8_t want[16];

        struct sockaddr_in local4 = sin_of("127.0.0.1", 9501), peer4 = sin_of("127.0.0.5", 40512);
        assert_int_equal(peer_uid_tuple_from_sockaddrs((struct sockaddr *) &local4, sizeof(local4),
                                                       (struct sockaddr *) &peer4, sizeof(peer4), &t),
                         0);
        assert_int_equal(t.family, AF_INET);
        assert_int_equal(t.local_port, 9501);
        assert_int_equal(t.peer_port, 40512);
        bytes_of(AF_INET, "127.0.0.1", want);
        assert_memory_equal(t.local_addr, want, 16);
        bytes_of(AF_INET, "127.0.0.5", want);
        assert_memory_equal(t.peer_addr, want, 16);

        /* a dual-stack listener: both ends IPv4-mapped, folded to IPv4 */
        struct sockaddr_in6 local_m = sin6_of("::ffff:127.0.0.1", 9501),
                            peer_m = sin6_of("::ffff:127.0.0.1", 33000);
        assert_int_equal(peer_uid_tuple_from_sockaddrs((struct sockaddr *) &local_m, sizeof(local_m),
                                                       (struct sockaddr *) &peer_m, sizeof(peer_m), &t),
                         0);
        assert_int_equal(t.family, AF_INET);
        assert_int_equal(t.peer_port, 33000);
        bytes_of(AF_INET, "127.0.0.1", want);
        assert_memory_equal(t.local_addr, want, 16);
        assert_memory_equal(t.peer_addr, want, 16);

        struct sockaddr_in6 local6 = sin6_of("::1", 9501), peer6 = sin6_of("::1", 41000);
        assert_int_equal(peer_uid_tuple_from_sockaddrs((struct sockaddr *) &local6, sizeof(local6),
                                                       (struct sockaddr *) &peer6, sizeof(peer6), &t),
                         0);
        assert_int_equal(t.family, AF_INET6);
        bytes_of(AF_INET6, "::1", want);
        assert_memory_equal(t.peer_addr, want, 16);

        /* ends of different families cannot be one connection */
        assert_int_equal(peer_uid_tuple_from_sockaddrs((struct sockaddr *) &local6, sizeof(local6),
                                                       (struct sockaddr *) &peer_m, sizeof(peer_m), &t),
                         -EINVAL);
        assert_int_equal(peer_uid_tuple_from_sockaddrs((struct sockaddr *) &local4, sizeof(local4),
                                                       (struct sockaddr *) &peer6, sizeof(peer6), &t),
                         -EINVAL);
        /* short, foreign or missing addresses */
        assert_int_equal(peer_uid_tuple_from_sockaddrs((struct sockaddr *) &local4, sizeof(local4) - 1,
                                                       (struct sockaddr *) &peer4, sizeof(peer4), &t),
                         -EINVAL);
        assert_int_equal(peer_uid_tuple_from_sockaddrs((struct sockaddr *) &local6, sizeof(local6),
                                                       (struct sockaddr *) &peer6, sizeof(peer6) - 1, &t),
                         -EINVAL);
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        assert_int_equal(peer_uid_tuple_from_sockaddrs((struct sockaddr *) &sun, sizeof(sun),
                                                       (struct sockaddr *) &sun, sizeof(sun), &t),
                         -EAFNOSUPPORT);
        assert_int_equal(
                peer_uid_tuple_from_sockaddrs(NULL, 0, (struct sockaddr *) &peer4, sizeof(peer4), &t),
                -EINVAL);
        assert_int_equal(peer_uid_tuple_from_sockaddrs((struct sockaddr *) &local4, sizeof(local4),
                                                       (struct sockaddr *) &peer4, sizeof(peer4), NULL),
                         -EINVAL);
}

static void test_address_is_loopback(void **state) {
        static const struct {
                int family;
                const char *addr;
                bool want;
        } cases[] = {
                {AF_INET, "127.0.0.1", true},
                {AF_INET, "127.255.255.254", true},
                {AF_INET, "127.0.0.0", true},
                {AF_INET, "126.255.255.255", false},
                {AF_INET, "128.0.0.1", false},
                {AF_INET, "10.0.0.1", false},
                {AF_INET, "0.0.0.0", false},
                {AF_INET6, "::1", true},
                {AF_INET6, "::2", false},
                {AF_INET6, "::", false},
                {AF_INET6, "::ffff:127.0.0.1", true},
                {AF_INET6, "::ffff:127.1.2.3", true},
                {AF_INET6, "::ffff:10.0.0.1", false},
                {AF_INET6, "::127.0.0.1", false},
                {AF_INET6, "fe80::1", false},
                {AF_INET6, "1::1", false},
        };
        uint8_t a[16];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                bytes_of(cases[i].family, cases[i].addr, a);
                if (peer_uid_address_is_loopback(cases[i].family, a) != cases[i].want)
                        fail_msg("%s: expected %s", cases[i].addr,
                                 cases[i].want ? "loopback" : "not loopback");
        }
        assert_false(peer_uid_address_is_loopback(AF_UNIX, a));
        assert_false(peer_uid_address_is_loopback(AF_INET, NULL));
}

static PeerUidTuple tuple4(const char *peer, uint16_t peer_port, const char *local, uint16_t local_port) {
        PeerUidTuple t = {.family = AF_INET, .peer_port = peer_port, .local_port = local_port};
        bytes_of(AF_INET, peer, t.peer_addr);
        bytes_of(AF_INET, local, t.local_addr);
        return t;
}

static void test_request_build(void **state) {
        PeerUidRequest req;
        uint8_t want[16] = {};

        /* what a dual-stack listener saw as ::ffff:127.0.0.7 asks about an IPv4 socket */
        struct sockaddr_in6 local = sin6_of("::ffff:127.0.0.1", 9501),
                            peer = sin6_of("::ffff:127.0.0.7", 40512);
        PeerUidTuple t;
        assert_int_equal(peer_uid_tuple_from_sockaddrs((struct sockaddr *) &local, sizeof(local),
                                                       (struct sockaddr *) &peer, sizeof(peer), &t),
                         0);
        peer_uid_request_build(&t, 7, &req);
        assert_int_equal(req.header.nlmsg_len, sizeof(req));
        assert_int_equal(req.header.nlmsg_type, SOCK_DIAG_BY_FAMILY);
        assert_int_equal(req.header.nlmsg_flags, NLM_F_REQUEST); /* exactly one socket, no dump */
        assert_int_equal(req.header.nlmsg_seq, 7);
        assert_int_equal(req.body.sdiag_family, AF_INET);
        assert_int_equal(req.body.sdiag_protocol, IPPROTO_TCP);
        /* the peer's own socket: source is the peer, destination is us */
        assert_int_equal(req.body.id.idiag_sport, htons(40512));
        assert_int_equal(req.body.id.idiag_dport, htons(9501));
        bytes_of(AF_INET, "127.0.0.7", want);
        assert_memory_equal(req.body.id.idiag_src, want, 16);
        bytes_of(AF_INET, "127.0.0.1", want);
        assert_memory_equal(req.body.id.idiag_dst, want, 16);
        assert_int_equal(req.body.id.idiag_cookie[0], INET_DIAG_NOCOOKIE);
        assert_int_equal(req.body.id.idiag_cookie[1], INET_DIAG_NOCOOKIE);
        assert_int_equal(req.body.id.idiag_if, 0);

        PeerUidTuple t6 = {.family = AF_INET6, .peer_port = 1, .local_port = 2};
        bytes_of(AF_INET6, "::1", t6.peer_addr);
        bytes_of(AF_INET6, "::1", t6.local_addr);
        peer_uid_request_build(&t6, 1, &req);
        assert_int_equal(req.body.sdiag_family, AF_INET6);
        assert_memory_equal(req.body.id.idiag_src, t6.peer_addr, 16);
        assert_memory_equal(req.body.id.idiag_dst, t6.local_addr, 16);
}

typedef struct Answer {
        struct nlmsghdr header;
        struct inet_diag_msg msg;
} Answer;

/* The kernel's answer about the peer's socket of t, as it would describe a healthy one. */
static Answer answer_for(const PeerUidTuple *t, uint32_t seq, uint32_t uid) {
        Answer a = {
                .header = {.nlmsg_len = sizeof(Answer), .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_seq = seq},
                .msg =
                        {
                                .idiag_family = (uint8_t) t->family,
                                .idiag_state = TCP_ESTABLISHED,
                                .id = {.idiag_sport = htons(t->peer_port),
                                       .idiag_dport = htons(t->local_port)},
                                .idiag_uid = uid,
                                .idiag_inode = 4242,
                        },
        };
        memcpy(a.msg.id.idiag_src, t->peer_addr, 16);
        memcpy(a.msg.id.idiag_dst, t->local_addr, 16);
        return a;
}

static int parse(const Answer *a, const PeerUidTuple *t, uint32_t seq, uid_t *uid) {
        return peer_uid_answer_parse(a, a->header.nlmsg_len, t, seq, uid);
}

static void test_answer_parse(void **state) {
        PeerUidTuple t = tuple4("127.0.0.1", 40512, "127.0.0.1", 9501);
        Answer a;
        uid_t uid = 1;

        a = answer_for(&t, 3, 33);
        assert_int_equal(parse(&a, &t, 3, &uid), 0);
        assert_int_equal(uid, 33);

        a = answer_for(&t, 3, 0);
        uid = 1;
        assert_int_equal(parse(&a, &t, 3, &uid), 0);
        assert_int_equal(uid, 0);

        /* half-closed by the peer, still held by its process */
        a = answer_for(&t, 3, 33);
        a.msg.idiag_state = TCP_FIN_WAIT2;
        assert_int_equal(parse(&a, &t, 3, &uid), 0);

        /* an IPv6 socket talking IPv4 reports mapped addresses */
        a = answer_for(&t, 3, 44);
        a.msg.idiag_family = AF_INET6;
        bytes_of(AF_INET6, "::ffff:127.0.0.1", (uint8_t *) a.msg.id.idiag_src);
        bytes_of(AF_INET6, "::ffff:127.0.0.1", (uint8_t *) a.msg.id.idiag_dst);
        assert_int_equal(parse(&a, &t, 3, &uid), 0);
        assert_int_equal(uid, 44);

        /* a closed client's TIME_WAIT left-over, reported as FIN_WAIT2 or TIME_WAIT with uid 0 and no
         * inode: never root */
        uid = 1;
        a = answer_for(&t, 3, 0);
        a.msg.idiag_inode = 0;
        a.msg.idiag_state = TCP_FIN_WAIT2;
        assert_int_equal(parse(&a, &t, 3, &uid), -ENOENT);
        a.msg.idiag_state = TCP_TIME_WAIT;
        assert_int_equal(parse(&a, &t, 3, &uid), -ENOENT);
        /* closed but not yet a left-over (an orphan): its owner let go */
        a = answer_for(&t, 3, 33);
        a.msg.idiag_inode = 0;
        assert_int_equal(parse(&a, &t, 3, &uid), -ENOENT);
        /* states a connection to us cannot be in */
        static const uint8_t wrong_states[] = {TCP_SYN_SENT, TCP_SYN_RECV,          TCP_LISTEN,
                                               TCP_CLOSE,    TCP_CLOSE_WAIT,        TCP_LAST_ACK,
                                               TCP_CLOSING,  12 /* NEW_SYN_RECV */, 200};
        for (size_t i = 0; i < ELEMENTSOF(wrong_states); i++) {
                a = answer_for(&t, 3, 33);
                a.msg.idiag_state = wrong_states[i];
                if (parse(&a, &t, 3, &uid) != -ENOENT)
                        fail_msg("state %u accepted", wrong_states[i]);
        }
        assert_int_equal(uid, 1);

        /* a listener on the peer's port, found instead of the connection: not it */
        a = answer_for(&t, 3, 0);
        a.msg.idiag_state = TCP_LISTEN;
        memset(a.msg.id.idiag_dst, 0, 16);
        a.msg.id.idiag_dport = 0;
        assert_int_equal(parse(&a, &t, 3, &uid), -ENOENT);
        /* our own end (ports and addresses the other way round) */
        PeerUidTuple mirrored = tuple4("127.0.0.1", 9501, "127.0.0.1", 40512);
        a = answer_for(&mirrored, 3, 33);
        assert_int_equal(parse(&a, &t, 3, &uid), -ENOENT);
        PeerUidTuple other_host = tuple4("127.0.0.2", 40512, "127.0.0.1", 9501);
        a = answer_for(&other_host, 3, 33);
        assert_int_equal(parse(&a, &t, 3, &uid), -ENOENT);
        a = answer_for(&t, 3, 33);
        a.msg.idiag_family = AF_INET6; /* the same bytes, unmapped, are another address */
        assert_int_equal(parse(&a, &t, 3, &uid), -ENOENT);
        assert_int_equal(uid, 1);

        /* the kernel's error: no such socket */
        struct {
                struct nlmsghdr header;
                struct nlmsgerr err;
        } e = {
                .header = {.nlmsg_len = sizeof(e), .nlmsg_type = NLMSG_ERROR, .nlmsg_seq = 3},
                .err = {.error = -ENOENT},
        };
        assert_int_equal(peer_uid_answer_parse(&e, sizeof(e), &t, 3, &uid), -ENOENT);
        e.err.error = -EPERM;
        assert_int_equal(peer_uid_answer_parse(&e, sizeof(e), &t, 3, &uid), -EPERM);

        /* answers to another request, cut short, or none at all */
        a = answer_for(&t, 4, 33);
        assert_int_equal(parse(&a, &t, 3, &uid), -EBADMSG);
        a = answer_for(&t, 3, 33);
        assert_int_equal(peer_uid_answer_parse(&a, sizeof(a) - 1, &t, 3, &uid), -EBADMSG);
        a.header.nlmsg_len = NLMSG_LENGTH(sizeof(a.msg) - 1);
        assert_int_equal(peer_uid_answer_parse(&a, sizeof(a), &t, 3, &uid), -EBADMSG);
        assert_int_equal(peer_uid_answer_parse(&a, 0, &t, 3, &uid), -EBADMSG);
        struct nlmsghdr done = {.nlmsg_len = sizeof(done), .nlmsg_type = NLMSG_DONE, .nlmsg_seq = 3};
        assert_int_equal(peer_uid_answer_parse(&done, sizeof(done), &t, 3, &uid), -EBADMSG);
        assert_int_equal(uid, 1);
        assert_int_equal(peer_uid_answer_parse(NULL, 0, &t, 3, &uid), -EINVAL);
}

/* A listener on listen_addr and a client from connect_addr (its family from the text), connected. */
static void connect_pair(int family, const char *listen_addr, const char *connect_addr, int *ret_listener,
                         int *ret_client, int *ret_accepted) {
        struct sockaddr_storage ss = {};
        socklen_t len;
        int lfd, cfd, off = 0;
        uint16_t port;

        lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(lfd >= 0);
        if (family == AF_INET6) {
                assert_int_equal(setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)), 0);
                *(struct sockaddr_in6 *) &ss = sin6_of(listen_addr, 0);
                len = sizeof(struct sockaddr_in6);
        } else {
                *(struct sockaddr_in *) &ss = sin_of(listen_addr, 0);
                len = sizeof(struct sockaddr_in);
        }
        assert_int_equal(bind(lfd, (struct sockaddr *) &ss, len), 0);
        assert_int_equal(listen(lfd, 4), 0);
        len = sizeof(ss);
        assert_int_equal(getsockname(lfd, (struct sockaddr *) &ss, &len), 0);
        port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                                        : ((struct sockaddr_in *) &ss)->sin_port);

        if (strchr(connect_addr, ':')) {
                *(struct sockaddr_in6 *) &ss = sin6_of(connect_addr, port);
                len = sizeof(struct sockaddr_in6);
        } else {
                *(struct sockaddr_in *) &ss = sin_of(connect_addr, port);
                len = sizeof(struct sockaddr_in);
        }
        cfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(cfd >= 0);
        assert_int_equal(connect(cfd, (struct sockaddr *) &ss, len), 0);
        *ret_accepted = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(*ret_accepted >= 0);
        *ret_listener = lfd;
        *ret_client = cfd;
}

static bool ipv6_loopback_works(void) {
        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok = fd >= 0 && bind(fd, (struct sockaddr *) &s6, sizeof(s6)) == 0;
        if (fd >= 0)
                close(fd);
        return ok;
}

static void check_live(int family, const char *listen_addr, const char *connect_addr) {
        int l, c, a;
        uid_t uid = 1;

        connect_pair(family, listen_addr, connect_addr, &l, &c, &a);
        assert_int_equal(peer_uid_of_connection(a, &uid), 0);
        assert_int_equal(uid, geteuid());
        /* half-closed by the client: still its socket */
        assert_int_equal(shutdown(c, SHUT_WR), 0);
        usleep(10 * 1000);
        uid = 1;
        assert_int_equal(peer_uid_of_connection(a, &uid), 0);
        assert_int_equal(uid, geteuid());
        /* closed: only a left-over remains, which names nobody */
        close(c);
        usleep(10 * 1000);
        uid = 1;
        assert_int_equal(peer_uid_of_connection(a, &uid), -ENOENT);
        assert_int_equal(uid, 1);
        close(a);
        close(l);
}

static void test_of_connection(void **state) {
        check_live(AF_INET, "127.0.0.1", "127.0.0.1");
        check_live(AF_INET, "0.0.0.0", "127.0.0.3");
        if (!ipv6_loopback_works())
                return;
        check_live(AF_INET6, "::1", "::1");
        check_live(AF_INET6, "::", "127.0.0.1");        /* dual-stack listener, IPv4 client */
        check_live(AF_INET6, "::", "::ffff:127.0.0.1"); /* and an IPv6 client talking IPv4 */
}

static void test_of_connection_errors(void **state) {
        int fds[2], l, c, a;
        uid_t uid = 1;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        assert_int_equal(peer_uid_of_connection(fds[0], &uid), -EAFNOSUPPORT);
        close(fds[0]);
        close(fds[1]);
        assert_int_equal(peer_uid_of_connection(-1, &uid), -EINVAL);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(peer_uid_of_connection(fd, &uid), -ENOTCONN);
        close(fd);

        /* the client resets the connection: our end no longer names anyone */
        connect_pair(AF_INET, "127.0.0.1", "127.0.0.1", &l, &c, &a);
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        assert_int_equal(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
        close(c);
        usleep(10 * 1000);
        assert_true(peer_uid_of_connection(a, &uid) < 0);
        assert_int_equal(uid, 1);
        close(a);
        close(l);
}

/* The front runs as its own user without capabilities: the kernel still names the owner of another
 * user's socket. Needs root to be two users. */
static void test_unprivileged_other_user(void **state) {
        int l, c, a, status;
        pid_t pid;

        if (geteuid() != 0) {
                skip();
                return;
        }
        connect_pair(AF_INET, "127.0.0.1", "127.0.0.1", &l, &c, &a);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                uid_t uid = 1;
                /* nobody, no groups, no capabilities left */
                if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(2);
                if (peer_uid_of_connection(a, &uid) < 0)
                        _exit(3);
                _exit(uid == 0 ? 0 : 4);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        close(a);
        close(c);
        close(l);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tuple_from_sockaddrs),    cmocka_unit_test(test_address_is_loopback),
                cmocka_unit_test(test_request_build),           cmocka_unit_test(test_answer_parse),
                cmocka_unit_test(test_of_connection),           cmocka_unit_test(test_of_connection_errors),
                cmocka_unit_test(test_unprivileged_other_user),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
