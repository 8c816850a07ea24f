/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "shared/nss.h"
#include "shared/util.h"

/* Entries larger than this are refused (-ERANGE): a sane database has none. */
#define NSS_BUFFER_MAX (1024 * 1024)

typedef enum NssQuery {
        PASSWD_BY_NAME,
        PASSWD_BY_UID,
        GROUP_BY_NAME,
        GROUP_BY_GID,
} NssQuery;

/* One lookup, retried with a buffer twice the size while the entry does not fit. */
static int nss_lookup(NssQuery q, const char *name, unsigned id, void *entry, char **ret_buf) {
        size_t size = 1024;

        for (;;) {
                _cleanup_free_ char *buf = malloc(size);
                struct passwd *pw = NULL;
                struct group *gr = NULL;
                int r;

                if (!buf)
                        return -ENOMEM;
                switch (q) {
                case PASSWD_BY_NAME:
                        r = getpwnam_r(name, entry, buf, size, &pw);
                        break;
                case PASSWD_BY_UID:
                        r = getpwuid_r((uid_t) id, entry, buf, size, &pw);
                        break;
                case GROUP_BY_NAME:
                        r = getgrnam_r(name, entry, buf, size, &gr);
                        break;
                default:
                        r = getgrgid_r((gid_t) id, entry, buf, size, &gr);
                        break;
                }
                if (r == ERANGE && size < NSS_BUFFER_MAX) {
                        size *= 2;
                        continue;
                }
                if (r != 0)
                        return -r;
                if (!pw && !gr)
                        return -ESRCH;
                *ret_buf = TAKE_PTR(buf);
                return 0;
        }
}

int nss_get_passwd(const char *name, uid_t uid, struct passwd *ret_pw, char **ret_buf) {
        return nss_lookup(name ? PASSWD_BY_NAME : PASSWD_BY_UID, name, uid, ret_pw, ret_buf);
}

int nss_get_group(const char *name, gid_t gid, struct group *ret_gr, char **ret_buf) {
        return nss_lookup(name ? GROUP_BY_NAME : GROUP_BY_GID, name, gid, ret_gr, ret_buf);
}

bool nss_error_means_absent(int error) {
        return error == ENOENT || error == ESRCH || error == EBADF || error == EPERM;
}
