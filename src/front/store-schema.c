/* SPDX-License-Identifier: MIT */
#include <stddef.h>

#include "front/store-schema.h"
#include "shared/util.h"

const char store_schema_lock[] = "SELECT GET_LOCK('asynctask_schema', 30)";
const char store_schema_unlock[] = "DO RELEASE_LOCK('asynctask_schema')";

const char store_schema_version_table[] = "CREATE TABLE IF NOT EXISTS asynctask_schema ("
                                          " id TINYINT UNSIGNED NOT NULL PRIMARY KEY,"
                                          " version INT UNSIGNED NOT NULL"
                                          ") ENGINE=InnoDB";

const char store_schema_version_query[] = "SELECT version FROM asynctask_schema WHERE id = 1";

/* 0 -> 1: the first released layout. */
static const char *const schema_v1_steps[] = {
        "CREATE TABLE IF NOT EXISTS tasks ("
        " id BIGINT UNSIGNED NOT NULL PRIMARY KEY,"
        " task VARCHAR(64) CHARACTER SET ascii NULL,"
        " cmd BLOB NULL,"
        " args MEDIUMBLOB NOT NULL,"
        " stdin MEDIUMBLOB NULL,"
        " idem_key VARBINARY(255) NULL,"
        " submitter VARCHAR(64) CHARACTER SET ascii NOT NULL,"
        " priority INT NOT NULL DEFAULT 0,"
        " state ENUM('queued','running','succeeded','failed','cancelled') NOT NULL,"
        " attempts INT UNSIGNED NOT NULL DEFAULT 0,"
        " max_attempts INT UNSIGNED NOT NULL DEFAULT 1,"
        " unit VARCHAR(128) CHARACTER SET ascii NULL,"
        " created_at DATETIME(6) NOT NULL,"
        " started_at DATETIME(6) NULL,"
        " finished_at DATETIME(6) NULL,"
        " run_after DATETIME(6) NOT NULL,"
        " result VARCHAR(32) CHARACTER SET ascii NULL,"
        " exit_status INT NULL,"
        " error VARCHAR(1024) NULL,"
        " UNIQUE KEY tasks_submitter_key (submitter, idem_key),"
        " KEY tasks_dispatch (state, priority, run_after),"
        " KEY tasks_state_id (state, id)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        "INSERT INTO asynctask_schema (id, version) VALUES (1, 1)",
        NULL,
};

/* 1 -> 2: what a run reports beyond its exit status, and what several nodes sharing one database
 * will need (which node runs a task, and until when its claim holds). */
static const char *const schema_v2_steps[] = {
        "ALTER TABLE tasks"
        " ADD COLUMN exit_signal INT NULL AFTER exit_status,"
        " ADD COLUMN cpu_usec BIGINT UNSIGNED NULL AFTER exit_signal,"
        " ADD COLUMN memory_peak BIGINT UNSIGNED NULL AFTER cpu_usec,"
        " ADD COLUMN node VARCHAR(255) NULL,"
        " ADD COLUMN lease_until DATETIME(6) NULL,"
        " ADD KEY tasks_finished (state, finished_at)",
        "UPDATE asynctask_schema SET version = 2 WHERE id = 1",
        NULL,
};

/* 2 -> 3: the task names an admin paused (pause/resume), kept for every host on the database. */
static const char *const schema_v3_steps[] = {
        "CREATE TABLE IF NOT EXISTS paused_tasks ("
        " task VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,"
        " paused_by VARCHAR(64) CHARACTER SET ascii NOT NULL,"
        " paused_at DATETIME(6) NOT NULL"
        ") ENGINE=InnoDB",
        "UPDATE asynctask_schema SET version = 3 WHERE id = 1",
        NULL,
};

/* 3 -> 4: the queued rows in dispatch order (highest priority, then earliest run_after, then id) and
 * in the order they become runnable, so that the front reads the first window of its queue without
 * sorting every queued row. */
static const char *const schema_v4_steps[] = {
        "ALTER TABLE tasks ADD KEY tasks_queue (state, priority DESC, run_after, id),"
        " ADD KEY tasks_due (state, run_after, id)",
        "UPDATE asynctask_schema SET version = 4 WHERE id = 1",
        NULL,
};

/* 4 -> 5: each row's stdin length, kept by the server: the queue's window and the quotas' totals read
 * it without reading the stdin (which stays in the row until the launch). */
static const char *const schema_v5_steps[] = {
        "ALTER TABLE tasks ADD COLUMN stdin_bytes INT UNSIGNED AS (LENGTH(stdin)) STORED",
        "UPDATE asynctask_schema SET version = 5 WHERE id = 1",
        NULL,
};

/* 5 -> 6: several hosts on one database (docs/cluster.md). nodes: each front's heartbeat.
 * cluster_leader: the one row a live node holds, with a lease, to find dead nodes and purge.
 * task_ids: the next free id, which fronts take in blocks. task_owners: the node that runs a task
 * name with a concurrency limit, so that the limit holds across nodes. tasks_node: a node's claimed and
 * running rows, which its heartbeat renews. */
static const char *const schema_v6_steps[] = {
        "CREATE TABLE IF NOT EXISTS nodes ("
        " name VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,"
        " started_at DATETIME(6) NOT NULL,"
        " heartbeat_at DATETIME(6) NOT NULL,"
        " pid INT UNSIGNED NULL,"
        " version VARCHAR(32) CHARACTER SET ascii NULL"
        ") ENGINE=InnoDB",
        "CREATE TABLE IF NOT EXISTS cluster_leader ("
        " id TINYINT UNSIGNED NOT NULL PRIMARY KEY,"
        " holder VARCHAR(64) CHARACTER SET ascii NULL,"
        " lease_until DATETIME(6) NOT NULL"
        ") ENGINE=InnoDB",
        "INSERT IGNORE INTO cluster_leader (id, holder, lease_until) VALUES (1, NULL, '1970-01-02')",
        "CREATE TABLE IF NOT EXISTS task_ids ("
        " id TINYINT UNSIGNED NOT NULL PRIMARY KEY,"
        " next BIGINT UNSIGNED NOT NULL"
        ") ENGINE=InnoDB",
        "INSERT IGNORE INTO task_ids (id, next) SELECT 1, COALESCE(MAX(id), 0) + 1 FROM tasks",
        "CREATE TABLE IF NOT EXISTS task_owners ("
        " task VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,"
        " node VARCHAR(64) CHARACTER SET ascii NOT NULL,"
        " lease_until DATETIME(6) NOT NULL"
        ") ENGINE=InnoDB",
        "ALTER TABLE tasks ADD KEY tasks_node (node, state)",
        "UPDATE asynctask_schema SET version = 6 WHERE id = 1",
        NULL,
};

/* 6 -> 7: cancel_requested: a cancel asked on another node of a row this node holds (queued or
 * running), which its next heartbeat picks up and carries out (docs/cluster.md). */
static const char *const schema_v7_steps[] = {
        "ALTER TABLE tasks ADD COLUMN cancel_requested TINYINT UNSIGNED NOT NULL DEFAULT 0"
        " AFTER lease_until",
        "UPDATE asynctask_schema SET version = 7 WHERE id = 1",
        NULL,
};

/* 7 -> 8: "on": "every_host" (docs/cluster.md). parent_id: the submission a run of every host belongs
 * to; the parent row names itself (parent_id = id), so that one lookup of tasks_parent finds a parent
 * and its children. */
static const char *const schema_v8_steps[] = {
        "ALTER TABLE tasks ADD COLUMN parent_id BIGINT UNSIGNED NULL, ADD KEY tasks_parent (parent_id)",
        "UPDATE asynctask_schema SET version = 8 WHERE id = 1",
        NULL,
};

/* Index: the version a step starts from. */
static const char *const *const schema_steps[] = {
        schema_v1_steps, schema_v2_steps, schema_v3_steps, schema_v4_steps,
        schema_v5_steps, schema_v6_steps, schema_v7_steps, schema_v8_steps,
};

_Static_assert(ELEMENTSOF(schema_steps) == STORE_SCHEMA_VERSION, "one step per schema version");

const char *const *store_schema_step(unsigned from) {
        return from < ELEMENTSOF(schema_steps) ? schema_steps[from] : NULL;
}
