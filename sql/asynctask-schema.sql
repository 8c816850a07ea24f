-- asynctask ledger schema, version 8.
-- asynctaskd creates and migrates this schema by itself at start (it needs CREATE and ALTER on its
-- database for that). Admins who prefer to create it by hand, and grant asynctask only
-- SELECT, INSERT, UPDATE, DELETE, load this file into the database named in the option file:
--     mariadb asynctask < /usr/share/asynctask/asynctask-schema.sql

CREATE TABLE IF NOT EXISTS asynctask_schema (
  id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
  version INT UNSIGNED NOT NULL
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS tasks (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  task VARCHAR(64) CHARACTER SET ascii NULL,          -- task name; NULL for a raw command
  cmd BLOB NULL,                                       -- raw command; NULL for a task
  args MEDIUMBLOB NOT NULL,                            -- JSON array of strings
  stdin MEDIUMBLOB NULL,
  idem_key VARBINARY(255) NULL,                        -- the submitter's idempotency key
  submitter VARCHAR(64) CHARACTER SET ascii NOT NULL,  -- "uid:33" or "tcp:127.0.0.1"
  priority INT NOT NULL DEFAULT 0,
  state ENUM('queued','running','succeeded','failed','cancelled') NOT NULL,
  attempts INT UNSIGNED NOT NULL DEFAULT 0,
  max_attempts INT UNSIGNED NOT NULL DEFAULT 1,
  unit VARCHAR(128) CHARACTER SET ascii NULL,
  created_at DATETIME(6) NOT NULL,                     -- all times are UTC
  started_at DATETIME(6) NULL,
  finished_at DATETIME(6) NULL,
  run_after DATETIME(6) NOT NULL,
  result VARCHAR(32) CHARACTER SET ascii NULL,         -- systemd's Result= vocabulary
  exit_status INT NULL,
  exit_signal INT NULL,
  cpu_usec BIGINT UNSIGNED NULL,
  memory_peak BIGINT UNSIGNED NULL,
  error VARCHAR(1024) NULL,
  node VARCHAR(255) NULL,                              -- the node that holds it, or ran it last
  lease_until DATETIME(6) NULL,                        -- a running row's claim lasts until then
  cancel_requested TINYINT UNSIGNED NOT NULL DEFAULT 0, -- asked on another node; the holder's heartbeat stops it
  stdin_bytes INT UNSIGNED AS (LENGTH(stdin)) STORED,  -- read without reading the stdin
  parent_id BIGINT UNSIGNED NULL,                      -- "every_host": the parent (a parent names itself)
  UNIQUE KEY tasks_submitter_key (submitter, idem_key),
  KEY tasks_dispatch (state, priority, run_after),
  KEY tasks_state_id (state, id),
  KEY tasks_finished (state, finished_at),
  KEY tasks_queue (state, priority DESC, run_after, id),    -- the queue in dispatch order
  KEY tasks_due (state, run_after, id),                     -- ... and in the order it becomes runnable
  KEY tasks_node (node, state),                             -- a node's claimed and running rows
  KEY tasks_parent (parent_id)                              -- an every_host parent and its runs
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Task names an admin paused (asynctask pause): no run of them starts until asynctask resume.
CREATE TABLE IF NOT EXISTS paused_tasks (
  task VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  paused_by VARCHAR(64) CHARACTER SET ascii NOT NULL,  -- the admin, as a submitter ("uid:0")
  paused_at DATETIME(6) NOT NULL
) ENGINE=InnoDB;

-- Several hosts on one database (docs/cluster.md): each front's heartbeat ...
CREATE TABLE IF NOT EXISTS nodes (
  name VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  started_at DATETIME(6) NOT NULL,
  heartbeat_at DATETIME(6) NOT NULL,
  pid INT UNSIGNED NULL,
  version VARCHAR(32) CHARACTER SET ascii NULL
) ENGINE=InnoDB;
-- ... the one row a live node holds to bury dead nodes and purge old rows ...
CREATE TABLE IF NOT EXISTS cluster_leader (
  id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
  holder VARCHAR(64) CHARACTER SET ascii NULL,
  lease_until DATETIME(6) NOT NULL
) ENGINE=InnoDB;
INSERT IGNORE INTO cluster_leader (id, holder, lease_until) VALUES (1, NULL, '1970-01-02');
-- ... and the next free task id, which the fronts take in blocks.
CREATE TABLE IF NOT EXISTS task_ids (
  id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
  next BIGINT UNSIGNED NOT NULL
) ENGINE=InnoDB;
INSERT IGNORE INTO task_ids (id, next) SELECT 1, COALESCE(MAX(id), 0) + 1 FROM tasks;
-- The node that runs a task name with a concurrency limit, while its lease lasts.
CREATE TABLE IF NOT EXISTS task_owners (
  task VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  node VARCHAR(64) CHARACTER SET ascii NOT NULL,
  lease_until DATETIME(6) NOT NULL
) ENGINE=InnoDB;
INSERT IGNORE INTO asynctask_schema (id, version) VALUES (1, 8);
