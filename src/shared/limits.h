/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Every fixed limit, with the reason for its value. Limits an admin may tune
 * are config keys (shared/config.h); these are the ceilings that protect the daemons.
 */

/* Default and ceiling of max_frame_bytes: one frame carries one task's args and stdin. The ceiling
 * bounds the memory one connection can pin (the buffer grows to at most this, once). */
#define FRAME_BYTES_DEFAULT (64 * 1024)
#define FRAME_BYTES_MAX     (16 * 1024 * 1024)

/* JSON requests are flat objects with one array of strings; anything deeper than this is hostile.
 * cJSON's own nesting limit is fixed at distro build time (1000), so we check depth ourselves. */
#define REQUEST_DEPTH_MAX 4

/* JSON values (keys, strings, numbers, literals, objects, arrays) in one request. The largest valid
 * request has about 12 keys, their values and TASK_ARGS_MAX arguments; the parser allocates a node per
 * value, so without this a frame of "[0,0,0,..." would cost some 30 times max_frame_bytes. */
#define REQUEST_VALUES_MAX 1024

/* Nesting of arrays and objects inside a seed (PHP serialize()) frame. The checker recurses once per
 * level, so this bounds its stack; real command objects nest a few levels. */
#define SEED_DEPTH_MAX 64

/* A submitter's stable identity as stored in records and sent to the launcher: "uid:4294967295" or
 * "tcp:" and an IPv6 address fit with room to spare. */
#define SUBMITTER_BYTES_MAX 63

/* A refused seed frame is logged with at most this many of its first bytes (escaped). */
#define SEED_LOG_FRAME_BYTES 64

/* Refused seed frames get no answer, only a log line: at most SEED_REFUSALS_LOGGED_MAX lines per
 * SEED_REFUSAL_LOG_INTERVAL_USEC, then one line that says how many were left out, so that a flood
 * (a client looping on a command that is not listed) cannot fill the journal. stats counts them all. */
#define SEED_REFUSALS_LOGGED_MAX       10
#define SEED_REFUSAL_LOG_INTERVAL_USEC (5 * 1000000ULL)

/* argv handed to a task: count and size of each client argument (execve's own limit is far larger,
 * but a task argument is a file name or an id, not a payload: payloads go through stdin). */
#define TASK_ARGS_MAX       256
#define TASK_ARG_BYTES_MAX  4096
#define TASK_KEY_BYTES_MAX  255
#define TASK_NAME_BYTES_MAX 64

/* Responses queued on one connection before we stop reading its requests (a client that never reads
 * its answers must not make us buffer without bound). */
#define CONN_OUTPUT_HIGH_WATER (256 * 1024)

/* Launcher protocol: one message carries at most one frame's worth of stdin plus args, JSON-escaped
 * (up to 6 bytes per input byte for \u00XX), plus a small envelope. */
#define LAUNCHER_MSG_BYTES_MAX (6 * FRAME_BYTES_MAX + 64 * 1024)

/* JSON values (keys, strings, numbers, literals, objects, arrays) in one launcher message, counted
 * before cJSON allocates a node (some 64 bytes) for each: the largest message, a launch, has 7 keys,
 * their values and up to TASK_ARGS_MAX arguments. Without this a message of "[0,0,0,..." would cost
 * the root launcher some 40 times its size (a 2 MB one took it from 4 MB to 115 MB). */
#define LAUNCHER_MSG_VALUES_MAX (TASK_ARGS_MAX + 32)

/* What a launch message carries besides its stdin, args and command: keys, id, attempt, task name and
 * submitter (each bounded above), with room to spare. The launcher reads messages of at most this plus
 * what its config lets a launch carry (launch_message_bytes_max()), not LAUNCHER_MSG_BYTES_MAX. */
#define LAUNCHER_MSG_ENVELOPE_BYTES (4 * 1024)

/* Finished results the launcher holds for the front, per run max_running allows, before it rejects
 * launches ("too many unacknowledged results"). A working front acks each result once it has recorded
 * it, and records it before the run that takes the freed slot is launched, so it leaves about
 * max_running unacknowledged at most; more is a front that launches without recording (a bug, or not
 * the front), and each held result is memory of the root launcher. */
#define UNACKED_RESULTS_PER_RUNNING 4

/* The largest frame any FrameReader accepts: client frames are held to max_frame_bytes (at most
 * FRAME_BYTES_MAX) by their reader's own limit; launcher messages need up to LAUNCHER_MSG_BYTES_MAX. */
#define FRAME_READER_MAX LAUNCHER_MSG_BYTES_MAX

/* Messages the launcher has queued for the front. Past CONN_OUTPUT_HIGH_WATER it stops reading the
 * front's requests and pauses replaying held results; past this the front is not reading at all and
 * loses the connection (held results are sent again when it reconnects). A result is under 1 KiB. */
#define LAUNCHER_OUTPUT_MAX (16 * CONN_OUTPUT_HIGH_WATER)

/* Task output relayed to the launcher's stderr (direct executor without journald) is cut into lines of
 * at most this many bytes, so a task printing without newlines cannot make the launcher buffer it. */
#define TASK_OUTPUT_LINE_MAX 4096

/* A task's progress (its STATUS= text, see docs/operations.md): one line of `asynctask status`. Longer
 * text is cut at a UTF-8 boundary. A task may send STATUS= in a tight loop: the launcher sends the front
 * at most one update per run per PROGRESS_INTERVAL_USEC, always the latest (so a run costs the front at
 * most 5 messages a second however fast it reports). */
#define PROGRESS_BYTES_MAX     256
#define PROGRESS_INTERVAL_USEC (200 * 1000ULL)

/* Upper bounds of config values (defaults live in config.c). */
#define CONNECTIONS_MAX   65536
#define RUNNING_MAX       4096
#define ATTEMPTS_MAX      100
#define BACKOFF_STEPS_MAX 32
#define TIMEOUT_SEC_MAX   (7 * 24 * 3600)
#define DELAY_SEC_MAX     (365 * 24 * 3600)
#define WAIT_SEC_MAX      3600
#define LIST_LIMIT_MAX    10000
#define ENVIRONMENT_MAX   128
/* A task's systemd credentials: a handful of secrets; each is a file PID 1 reads at every start. */
#define CREDENTIALS_MAX 64

/* frame_timeout_sec: an hour to finish one frame is no deadline at all any more. */
#define FRAME_TIMEOUT_SEC_MAX 3600
/* max_queued_stdin_bytes_per_submitter: 1 TiB, i.e. no limit worth having. */
#define QUEUED_STDIN_BYTES_PER_SUBMITTER_MAX (1ULL << 40)

/* Config files: hand-written and read at every start and reload; a file past this size is a mistake
 * (a log or an image copied into tasks.d), not configuration. */
#define CONFIG_FILE_BYTES_MAX (1024 * 1024)
/* Errors reported by one config load: enough for any real mistake, bounded for a broken file. */
#define CONFIG_ERRORS_MAX 200
/* A single retry delay past a day means the task should be rescheduled by hand, not retried. */
#define BACKOFF_SEC_MAX 86400
/* idle_exit_sec: socket activation restarts the daemon on demand, so a week of idling is plenty. */
#define IDLE_EXIT_SEC_MAX (7 * 24 * 3600)
/* retention_days: ten years of finished records; past that, purge by hand. */
#define RETENTION_DAYS_MAX 3650
/* The MySQL store: queued records the front holds in memory, the first of the queue in dispatch
 * order; refilled from the database as they drain. Enough for many seconds of launches at the
 * highest rate a host sustains, small enough to read in well under a second at start. */
#define STORE_QUEUE_WINDOW 10000
/* Several hosts on one database: how often a host reads each submitter's unfinished rows again for
 * the quotas (one GROUP BY over the unfinished rows; a quota may be passed by what the others
 * accepted in the meantime). */
#define QUOTA_RECOUNT_SEC 10

/* max_records: a billion finished records (some 400 GiB in memory) is past any host; bounded so the
 * value is a count and not a typo. */
#define RECORDS_MAX 1000000000ULL
/* cpu_quota in percent: 100 CPUs' worth. */
#define CPU_QUOTA_MAX 10000
/* "schedule": calendar expressions of one task, each an OnCalendar= line of its timer. A real schedule
 * has a few; an expression longer than this is not a calendar but a mistake. */
#define SCHEDULE_CALENDARS_MAX      32
#define SCHEDULE_CALENDAR_BYTES_MAX 256
/* schedule_randomized_delay_sec: a day. It must also be shorter than the time between two slots, which
 * --check-config measures (front/schedules.c). */
#define SCHEDULE_DELAY_SEC_MAX 86400
/* schedule_args, all together: the generator writes them on one ExecStart= line (systemd reads lines of
 * up to 1 MiB; escaped, a byte may take 4), and each run's request must fit a frame. A scheduled run
 * gets names and ids; a payload would come through stdin. */
#define SCHEDULE_ARGS_BYTES_MAX 16384
/* AccuracySec= of the timers the generator writes. systemd's default (a minute) could start a run later
 * than the next slot of a frequent schedule, which would then be taken for that slot; a second costs
 * one wakeup per slot. */
#define SCHEDULE_ACCURACY_SEC 1

/* Grace period between SIGTERM and SIGKILL when a task times out or is cancelled (direct executor). */
#define KILL_GRACE_USEC (5 * 1000000ULL)

/* Tasks queued at once; past this, submissions get "unavailable" (a queue that only grows is an
 * outage in the making, and each record holds memory). */
#define QUEUED_MAX 1000000

/* Task names paused at once (pause): admins pause a few task types; the set is kept sorted and read
 * by the dispatcher for each task name it considers, and a stats answer lists them all. */
#define PAUSED_TASKS_MAX 1024

/* Front daemon. One read per wakeup takes at most this much from a client, so one busy connection
 * cannot starve the others. */
#define CONN_READ_BYTES (64 * 1024)

/* Reads of one connection before the others get a turn (each is at most CONN_READ_BYTES). */
#define CONN_READS_PER_RUN 4

/* Requests of one connection whose answers wait for a store commit at once. They let a pipelining
 * client's submissions share a transaction (group commit); the bound keeps one client from holding
 * an unbounded number of records in flight. */
#define CONN_PENDING_MAX 4096

/* Launch messages waiting for the launcher to read them before the dispatcher stops launching (a
 * stuck launcher must not make the front buffer the whole queue). Small control messages (ack,
 * stop, list) are still queued up to LAUNCHER_LINK_OUTPUT_MAX; past that the link is dropped and
 * re-established (the launcher keeps every result until it is acked, so nothing is lost). */
#define LAUNCHER_LINK_OUTPUT_HIGH_WATER (1024 * 1024)
#define LAUNCHER_LINK_OUTPUT_MAX        (LAUNCHER_MSG_BYTES_MAX + 4 * 1024 * 1024)

/* Messages from the launcher to the front carry an id, a unit name and a short error: a line past
 * this is a broken launcher, and costs the connection. */
#define LAUNCHER_REPLY_BYTES_MAX (64 * 1024)

/* Reconnecting to the launcher: quick at first (it may be restarting), then at most every 5 s. */
#define LAUNCHER_RECONNECT_MIN_USEC (100 * 1000ULL)
#define LAUNCHER_RECONNECT_MAX_USEC (5 * 1000000ULL)

/* At start the front waits this long for the launcher's list of live runs before it serves anyway. */
#define LAUNCHER_STARTUP_WAIT_USEC (5 * 1000000ULL)

/* At start the launcher answers the front's "list" only once the executor has reported the runs left
 * from before (a run missing from the list is recorded as lost), or after this long if it has not: a
 * stuck bus must not keep the front from launching for ever. Under a bus call's 60 s timeout. */
#define EXECUTOR_READY_WAIT_USEC (30 * 1000000ULL)

/* A reload waits this long for the launcher to confirm it re-read its config. */
#define RELOAD_LAUNCHER_TIMEOUT_USEC (10 * 1000000ULL)

/* SIGTERM: time to answer what was already received and flush it before exiting anyway. */
#define SHUTDOWN_FLUSH_USEC (5 * 1000000ULL)
/* SIGTERM: a client that has connected but not yet sent its whole frame gets this long to finish it
 * (a one-shot client sends within milliseconds of connect(); under SHUTDOWN_FLUSH_USEC). */
#define SHUTDOWN_FRAME_GRACE_USEC (1000000ULL)

/* Connections accepted past max_connections for admins over the unix socket, so that root can still
 * ping, look and reload while the front is full. A peer is known only after accept(), so every peer
 * up to max_connections + this is accepted, identified and, if not an admin, refused with an answer. */
#define ADMIN_CONNECTIONS_RESERVE 16

/* File descriptors the front needs besides its connections: listeners, the launcher link, the
 * store's connection, sd-event's and sd-notify's own, the state file, stdio. max_connections is held
 * below RLIMIT_NOFILE minus these and ADMIN_CONNECTIONS_RESERVE, so accept() never meets EMFILE. */
#define FRONT_FIXED_FDS 64

/* What a refused connection's peer had already sent is read and dropped (so that closing does not
 * reset the connection before the peer reads its answer), but at most this much: a peer that keeps
 * writing must not hold the accept loop. */
#define REFUSED_DRAIN_BYTES (64 * 1024)

/* How often connections are checked against frame_timeout_sec (a deadline is met to within this). */
#define FRAME_TIMEOUT_CHECK_USEC (1000000ULL)

/* SIGTERM: once a connection's answers are out, the daemon shuts down its sending side and reads on
 * until the client closes too, at most this long (closing while the client still sends would reset the
 * connection, and the client would lose the frames it had not sent yet). */
#define SHUTDOWN_LINGER_USEC (1000000ULL)

/* accept() failed with EMFILE/ENFILE: stop accepting this long so the process can free fds. */
#define ACCEPT_PAUSE_USEC (100 * 1000ULL)

/* STATUS= updates and "too many connections" warnings: at most one per this interval. */
#define STATUS_INTERVAL_USEC (1000000ULL)

/* Finished records are purged (retention_days) this often. */
#define PURGE_INTERVAL_USEC (3600 * 1000000ULL)

/* Several hosts on one database (docs/cluster.md): a node's name, how often it says it is alive, and
 * after how long without a heartbeat it counts as dead. */
#define NODE_NAME_BYTES_MAX      63
#define HEARTBEAT_SEC_DEFAULT    2
#define HEARTBEAT_SEC_MAX        60
#define NODE_TIMEOUT_SEC_DEFAULT 30
#define NODE_TIMEOUT_SEC_MAX     3600
#define TASK_HOSTS_MAX           64
