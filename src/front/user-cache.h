/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The passwd entries (name, primary group) and group lists of the uids that connect, looked up once
 * and kept until the next reload: a client that connects per request (PHP-FPM's pattern) would
 * otherwise cost an NSS lookup per connection (open, read and parse /etc/passwd, or a round trip to
 * a user database service), on the loop. What it holds serves descriptions and, for loopback TCP
 * peers (whose groups the kernel cannot give), group matching: a change to /etc/group is seen at the
 * next reload, as a change to the allow lists is. Unix peers' groups come from the kernel (the
 * connecting process's own), never from here.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Distinct uids kept; one more empties the cache (peers are a few service users, not thousands). */
#define USER_CACHE_MAX 1024

typedef struct UserInfo {
        uid_t uid;
        bool found;     /* false: no passwd entry (kept too) */
        char name[256]; /* empty when not found or longer than this */
        gid_t gid;      /* the primary group, when found */
        gid_t *groups;  /* getgrouplist() of name with groups_gid; NULL until asked */
        size_t n_groups;
        gid_t groups_gid;
} UserInfo;

/* The entry of uid, looked up now if not kept: valid until the next user_cache_clear(). Returns 0
 * with (*ret)->found false when uid has no passwd entry; -ENOMEM or a lookup's error (not kept: the
 * next call asks again). */
int user_cache_get(uid_t uid, const UserInfo **ret);

/* The supplementary groups of uid's user with gid as its group (initgroups() semantics), looked up
 * once for that gid. An empty list when uid has no entry. Valid until the next user_cache_clear(). */
int user_cache_groups(uid_t uid, gid_t gid, const gid_t **ret, size_t *ret_n);

/* Forgets everything: the reload reads users and groups afresh. */
void user_cache_clear(void);
