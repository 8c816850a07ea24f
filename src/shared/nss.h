/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * User and group database lookups (getpwnam_r(3) and relatives) with a buffer that grows until the
 * entry fits, for entries of any size. Nothing is cached, and a lookup may block (NSS may ask the
 * network): daemons look up at start and on reload, never per request unless they must.
 */

#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <sys/types.h>

/* The entry for name, or for uid when name is NULL. On success *ret_pw's strings point into *ret_buf,
 * which the caller frees. Returns 0, -ESRCH when there is no such entry, -ENOMEM, or the lookup's
 * own -errno (see nss_error_means_absent()). */
int nss_get_passwd(const char *name, uid_t uid, struct passwd *ret_pw, char **ret_buf);

/* The same for groups: by name, or by gid when name is NULL. */
int nss_get_group(const char *name, gid_t gid, struct group *ret_gr, char **ret_buf);

/* Depending on the NSS module, "no such entry" may also come back as ENOENT, ESRCH, EBADF or EPERM
 * (getpwnam_r(3)). Takes a positive errno. */
bool nss_error_means_absent(int error);
