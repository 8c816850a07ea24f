/* SPDX-License-Identifier: MIT */
/*
 * What naming the user of a loopback TCP peer costs per accepted connection: the sock_diag query
 * alone (peer_uid_of_connection), and the whole identity of a TCP peer (with the user's NSS entry
 * and groups) against a TCP peer's address alone and a unix peer's. Not part of make check. The
 * figures are CPU time (the process's), which other load on the machine disturbs less than the
 * elapsed time would.
 *
 *   make && cc -O2 -std=gnu11 -D_GNU_SOURCE -iquote src -o build/peer-uid-bench bench/peer-uid-bench.c \
 *           build/libfront.a build/libshared.a $(pkg-config --libs libsystemd libcjson)
 *   build/peer-uid-bench [N]      (default 10000)
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "front/peer-uid.h"
#include "front/policy.h"
#include "shared/util.h"

static double us_per(uint64_t start, unsigned n) {
        return (double) (now_usec(CLOCK_PROCESS_CPUTIME_ID) - start) / n;
}

int main(int argc, char *argv[]) {
        unsigned n = argc > 1 ? (unsigned) strtoul(argv[1], NULL, 10) : 10000;
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sin);
        int lfd, cfd, afd, pair[2];
        uint64_t start;
        uid_t uid;

        if (n == 0)
                n = 1;
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &sin, sizeof(sin)) < 0 || listen(lfd, 1) < 0 ||
            getsockname(lfd, (struct sockaddr *) &sin, &len) < 0)
                return perror("listen"), 1;
        cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (cfd < 0 || connect(cfd, (struct sockaddr *) &sin, sizeof(sin)) < 0)
                return perror("connect"), 1;
        afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (afd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
                return perror("accept"), 1;
        if (peer_uid_of_connection(afd, &uid) < 0)
                return fprintf(stderr, "sock_diag does not answer here\n"), 1;

        start = now_usec(CLOCK_PROCESS_CPUTIME_ID);
        for (unsigned i = 0; i < n; i++)
                if (peer_uid_of_connection(afd, &uid) < 0)
                        return fprintf(stderr, "query %u failed\n", i), 1;
        printf("peer_uid_of_connection:           %6.2f us per connection (%u queries)\n", us_per(start, n),
               n);

        start = now_usec(CLOCK_PROCESS_CPUTIME_ID);
        for (unsigned i = 0; i < n; i++) {
                Identity id;
                struct sockaddr_storage ss;
                socklen_t sslen = sizeof(ss);

                if (getpeername(afd, (struct sockaddr *) &ss, &sslen) < 0 ||
                    identity_from_sockaddr((struct sockaddr *) &ss, sslen, &id) < 0)
                        return fprintf(stderr, "address identity failed\n"), 1;
                identity_done(&id);
        }
        printf("TCP identity, address only:       %6.2f us\n", us_per(start, n));

        start = now_usec(CLOCK_PROCESS_CPUTIME_ID);
        for (unsigned i = 0; i < n; i++) {
                Identity id;

                if (identity_from_socket(afd, &id) < 0 || !id.uid_known)
                        return fprintf(stderr, "TCP identity failed\n"), 1;
                identity_done(&id);
        }
        printf("TCP identity, with the user:      %6.2f us\n", us_per(start, n));

        start = now_usec(CLOCK_PROCESS_CPUTIME_ID);
        for (unsigned i = 0; i < n; i++) {
                Identity id;

                if (identity_from_socket(pair[0], &id) < 0)
                        return fprintf(stderr, "unix identity failed\n"), 1;
                identity_done(&id);
        }
        printf("unix identity (SO_PEERCRED etc.): %6.2f us\n", us_per(start, n));

        close(pair[0]);
        close(pair[1]);
        close(afd);
        close(cfd);
        close(lfd);
        return 0;
}
