/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The MariaDB client library, loaded when the MySQL store is opened rather than at start: with the
 * memory store (the default) asynctaskd never maps libmariadb, nor the TLS libraries it pulls in
 * (about 1 MiB of resident memory, and their relocations at every start). dlopen() of the soname
 * the headers were built for, and one table of the functions the store calls, each with the type
 * the header declares, so a changed signature fails the build. The packages depend on the library
 * by name, since the shared library scanners see no DT_NEEDED for it.
 */

#include <stddef.h>
#include <mysql.h>

#ifndef MARIADB_SONAME
#define MARIADB_SONAME "libmariadb.so.3"
#endif

/* Each member is the library's function of the same name. */
typedef struct Mariadb {
        __typeof__(mysql_init) *mysql_init;
        __typeof__(mysql_optionsv) *mysql_optionsv;
        __typeof__(mysql_real_connect) *mysql_real_connect;
        __typeof__(mysql_real_query) *mysql_real_query;
        __typeof__(mysql_store_result) *mysql_store_result;
        __typeof__(mysql_use_result) *mysql_use_result;
        __typeof__(mysql_fetch_row) *mysql_fetch_row;
        __typeof__(mysql_fetch_lengths) *mysql_fetch_lengths;
        __typeof__(mysql_free_result) *mysql_free_result;
        __typeof__(mysql_errno) *mysql_errno;
        __typeof__(mysql_error) *mysql_error;
        __typeof__(mysql_close) *mysql_close;
        __typeof__(mysql_thread_init) *mysql_thread_init;
        __typeof__(mysql_thread_end) *mysql_thread_end;
        __typeof__(mysql_affected_rows) *mysql_affected_rows;
} Mariadb;

/* Loads soname and every function of Mariadb from it into *ret. The library stays loaded for the
 * life of the process (it keeps per-thread state). On failure, -ENOENT (or -ENOMEM) and the reason
 * (dlerror()) in errbuf. */
int mariadb_load(const char *soname, Mariadb *ret, char *errbuf, size_t errlen);

/* The library at MARIADB_SONAME, loaded at the first call (from one thread: the store opens it before
 * its thread starts); NULL and the reason in errbuf if it cannot be. */
const Mariadb *mariadb_get(char *errbuf, size_t errlen);
