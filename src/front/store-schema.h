/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The MySQL store's schema: the statements that create its tables and migrate them from one layout
 * to the next. Text only; the store runs them (store-mysql.c), under the schema lock so that two
 * daemons starting against one database do not both create or migrate.
 */

/* Schema versions. Version 1 was the first released layout; each step moves one version up. The
 * newest layout is also shipped as sql/asynctask-schema.sql for admins who create tables by hand. */
#define STORE_SCHEMA_VERSION 8

/* Takes the schema lock (a row of 1 when taken, waiting up to 30 s), and gives it back. */
extern const char store_schema_lock[];
extern const char store_schema_unlock[];
/* Creates the table that holds the version, when missing. */
extern const char store_schema_version_table[];
/* The version: one row, none in a database without our tables. */
extern const char store_schema_version_query[];

/* The statements that take a database from version `from` to from + 1, in order, NULL-terminated;
 * the last one records the new version. from = 0 is a database without our tables (the version
 * table created, empty). NULL when from >= STORE_SCHEMA_VERSION. */
const char *const *store_schema_step(unsigned from);
