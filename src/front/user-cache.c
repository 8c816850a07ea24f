/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>

#include "front/user-cache.h"
#include "shared/nss.h"
#include "shared/util.h"

/* Kernel and glibc both cap supplementary groups at NGROUPS_MAX (65536); a larger answer is bogus. */
#define USER_GROUPS_MAX 65536

static UserInfo *entries;
static size_t n_entries;

void user_cache_clear(void) {
        for (size_t i = 0; i < n_entries; i++)
                free(entries[i].groups);
        free(entries);
        entries = NULL;
        n_entries = 0;
}

static UserInfo *find(uid_t uid) {
        for (size_t i = 0; i < n_entries; i++)
                if (entries[i].uid == uid)
                        return &entries[i];
        return NULL;
}

static int add(uid_t uid, UserInfo **ret) {
        _cleanup_free_ char *buf = NULL;
        UserInfo e = {.uid = uid};
        struct passwd pw;
        int r;

        r = nss_get_passwd(NULL, uid, &pw, &buf);
        if (r == -ENOMEM || (r < 0 && r != -ESRCH && !nss_error_means_absent(-r)))
                return r;
        if (r >= 0) {
                e.found = true;
                e.gid = pw.pw_gid;
                if (strlen(pw.pw_name) < sizeof(e.name))
                        strcpy(e.name, pw.pw_name);
        }
        if (n_entries >= USER_CACHE_MAX)
                user_cache_clear();
        if (n_entries % 16 == 0) {
                UserInfo *n = realloc(entries, (n_entries + 16) * sizeof(UserInfo));

                if (!n)
                        return -ENOMEM;
                entries = n;
        }
        entries[n_entries] = e;
        *ret = &entries[n_entries++];
        return 0;
}

int user_cache_get(uid_t uid, const UserInfo **ret) {
        UserInfo *e = find(uid);
        int r;

        if (!e) {
                r = add(uid, &e);
                if (r < 0)
                        return r;
        }
        *ret = e;
        return 0;
}

int user_cache_groups(uid_t uid, gid_t gid, const gid_t **ret, size_t *ret_n) {
        UserInfo *e = find(uid);
        int n = 32, r;

        if (!e) {
                r = add(uid, &e);
                if (r < 0)
                        return r;
        }
        if (!e->found) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (e->groups && e->groups_gid == gid) {
                *ret = e->groups;
                *ret_n = e->n_groups;
                return 0;
        }
        if (!e->name[0])
                return -ENAMETOOLONG;
        for (;;) {
                _cleanup_free_ gid_t *buf = malloc((size_t) n * sizeof(gid_t));
                int want = n;

                if (!buf)
                        return -ENOMEM;
                if (getgrouplist(e->name, gid, buf, &want) >= 0) {
                        free(e->groups);
                        e->groups = TAKE_PTR(buf);
                        e->n_groups = (size_t) want;
                        e->groups_gid = gid;
                        *ret = e->groups;
                        *ret_n = e->n_groups;
                        return 0;
                }
                if (want <= n || want > USER_GROUPS_MAX)
                        return -EIO;
                n = want;
        }
}
