# SPDX-License-Identifier: MIT
"""The durable ledger against a real MariaDB (a private server started for this module): schema
creation and migration, acknowledge-after-commit, retries and failed tasks, idempotent keys across
restarts, the database going away under load, and reconciliation after crashes."""

import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import (
    CLI_BIN,
    Daemons,
    JournalCapture,
    REPO,
    kill9_front,
    needs_mariadb,
    proc_alive,
    row,
    standard_config,
    tag,
    wait_for,
    wait_for_count,
)

SCHEMA_FILE = os.path.join(REPO, "sql", "asynctask-schema.sql")

pytestmark = needs_mariadb


V1_SCHEMA = """
CREATE TABLE asynctask_schema (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, version INT UNSIGNED NOT NULL) ENGINE=InnoDB;
INSERT INTO asynctask_schema VALUES (1, 1);
CREATE TABLE tasks (
 id BIGINT UNSIGNED NOT NULL PRIMARY KEY, task VARCHAR(64) CHARACTER SET ascii NULL, cmd BLOB NULL,
 args MEDIUMBLOB NOT NULL, stdin MEDIUMBLOB NULL, idem_key VARBINARY(255) NULL,
 submitter VARCHAR(64) CHARACTER SET ascii NOT NULL, priority INT NOT NULL DEFAULT 0,
 state ENUM('queued','running','succeeded','failed','cancelled') NOT NULL,
 attempts INT UNSIGNED NOT NULL DEFAULT 0, max_attempts INT UNSIGNED NOT NULL DEFAULT 1,
 unit VARCHAR(128) CHARACTER SET ascii NULL, created_at DATETIME(6) NOT NULL, started_at DATETIME(6) NULL,
 finished_at DATETIME(6) NULL, run_after DATETIME(6) NOT NULL, result VARCHAR(32) CHARACTER SET ascii NULL,
 exit_status INT NULL, error VARCHAR(1024) NULL,
 UNIQUE KEY tasks_submitter_key (submitter, idem_key), KEY tasks_dispatch (state, priority, run_after),
 KEY tasks_state_id (state, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
"""


def test_schema_is_created_and_matches_the_shipped_file(env, db, mysql_daemons):
    d = mysql_daemons()
    with env.client() as c:
        tid = c.submit("touch", ["created"])
        assert c.wait_final(tid)["state"] == "succeeded"
    assert db.sql("SELECT version FROM asynctask_schema") == [["8"]]
    assert row(db, tid) == ["succeeded", "1", "success", "0"]
    db.sql("DROP DATABASE IF EXISTS shipped; CREATE DATABASE shipped", database="mysql")
    with open(SCHEMA_FILE) as f:
        db.sql(f.read(), database="shipped")
    for table in ("tasks", "paused_tasks", "nodes", "cluster_leader", "task_ids", "task_owners"):
        created = db.sql(f"SHOW CREATE TABLE {table}")[0][1]
        shipped = db.sql(f"SHOW CREATE TABLE {table}", database="shipped")[0][1]
        assert created == shipped, f"the daemon's {table} and sql/asynctask-schema.sql differ"
    assert db.sql("SELECT version FROM asynctask_schema", database="shipped") == [["8"]]
    d.stop()


def test_migration_from_version_1_keeps_and_runs_queued_rows(env, db, mysql_daemons):
    db.reset()
    db.sql(V1_SCHEMA)
    db.sql("INSERT INTO tasks (id, task, args, submitter, state, max_attempts, created_at, run_after) "
           "VALUES (41, 'touch', '[\"migrated\"]', 'uid:0', 'queued', 1, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))")
    # mysql_daemons resets the database; migrate this one instead.
    main, tasks = standard_config(env)
    main["store"] = {"type": "mysql", "option_file": db.cnf, "group": "asynctask"}
    env.write_config(main, tasks)
    d = Daemons(env).start()
    try:
        env.ev_wait("migrated")
        assert db.sql("SELECT version FROM asynctask_schema") == [["8"]]
        assert db.sql("SELECT COUNT(*) FROM paused_tasks") == [["0"]]
        columns = {r[0] for r in db.sql("SHOW COLUMNS FROM tasks")}
        assert {"exit_signal", "cpu_usec", "memory_peak", "node", "lease_until", "cancel_requested", "parent_id"} <= columns
        wait_for(lambda: row(db, 41) == ["succeeded", "1", "success", "0"], 10, what="migrated row finished")
        with env.client() as c:
            assert c.submit("touch", ["after"]) > 41, "ids continue after the loaded rows"
    finally:
        d.stop()


def test_every_acknowledged_submission_survives_kill_9(env, db, mysql_daemons):
    d = mysql_daemons()
    n = 2000
    with env.client(timeout=60) as c:
        # delay keeps them queued, so the kill lands before any has run
        payload = b"".join(b'{"op":"submit","task":"record","args":["acked","x"],"delay":2}\n' for _ in range(n))
        c.send(payload)
        ids = [c.recv(timeout=60) for _ in range(n)]
    assert all(r["ok"] for r in ids), [r for r in ids if not r["ok"]][:3]
    ids = [r["id"] for r in ids]
    kill9_front(d)
    d.start_front()
    wait_for_count(lambda: len(env.ev_lines("acked.log")), n, what="acknowledged tasks run")
    time.sleep(1)
    ran = [int(line.split()[0]) for line in env.ev_lines("acked.log")]
    assert sorted(ran) == sorted(ids), "each acknowledged task runs exactly once"
    d.stop()


def test_failing_task_is_retried_with_backoff_and_kept_failed(env, db, mysql_daemons):
    d = mysql_daemons()
    with env.client() as c:
        tid = c.submit("fail", ["f1"])
        rec = c.wait_final(tid, timeout=30)
    assert rec["state"] == "failed" and rec["attempts"] == 3 and rec["exit_status"] == 3
    starts = [float(line.split()[0]) for line in env.ev_lines("f1.starts")]
    assert len(starts) == 3
    assert starts[1] - starts[0] >= 1.0 and starts[2] - starts[1] >= 2.0, starts
    assert row(db, tid) == ["failed", "3", "exit-code", "3"]
    # Kept across a restart, and listed as failed.
    d.stop()
    d.start()
    with env.client() as c:
        failed = c.call({"op": "list", "state": "failed"})
        assert [t["id"] for t in failed["tasks"]] == [tid]
        assert c.call({"op": "retry", "id": tid})["state"] == "queued"
        assert c.wait_final(tid, timeout=30)["state"] == "failed"
        assert len(env.ev_lines("f1.starts")) == 6, "retry runs all attempts again"
        assert c.call({"op": "forget", "id": tid})["ok"] is True
        assert c.status(tid)["code"] == "not_found"
    wait_for(lambda: row(db, tid) is None, 10, what="forgotten row deleted")
    d.stop()


def test_every_host_alone_is_a_parent_with_one_run(env, db, mysql_daemons):
    """With the MySQL store and one live host, an every_host submission is a parent with one run, on
    this host, so that the answer has the same shape as with several; it takes no key."""
    d = mysql_daemons()
    with env.client() as c:
        r = c.call({"op": "submit", "task": "everywhere", "args": ["alone", "x"]})
        assert r["ok"] is True and r["state"] == "running" and len(r["children"]) == 1, r
        [child] = r["children"]
        done = c.wait_final(r["id"])
        assert done["state"] == "succeeded" and done["children"][0]["id"] == child["id"], done
        refused = c.call({"op": "submit", "task": "everywhere", "args": ["alone", "y"], "key": "k"})
        assert refused["ok"] is False and refused["code"] == "bad_request", refused
    assert env.ev_lines("alone.log") == [f"{child['id']} x"]
    assert db.sql(f"SELECT id, parent_id, state FROM tasks WHERE parent_id = {r['id']} ORDER BY id") == \
        [[str(r["id"]), str(r["id"]), "succeeded"], [str(child["id"]), str(r["id"]), "succeeded"]]
    d.stop()


def test_a_start_the_database_refuses_is_not_launched(env, db, mysql_daemons):
    """A start whose write the database refuses for good (a trigger refuses it, for this task's runs
    only) is not launched, since the row would not know of the run: each attempt ends 'rejected' with
    the reason, the task fails after its attempts, and nothing ran. Other tasks go on."""
    d = mysql_daemons()
    db.sql("DELIMITER //\nCREATE TRIGGER refuse_start BEFORE UPDATE ON tasks FOR EACH ROW"
           " IF NEW.state = 'running' AND NEW.args LIKE '%refused%' THEN"
           " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no start for you'; END IF//")
    try:
        with env.client() as c:
            tid = c.submit("fail", ["refused"])
            other = c.submit("touch", ["started"])
            rec = c.wait_final(tid, timeout=30)
            assert c.wait_final(other)["state"] == "succeeded"
        assert rec["state"] == "failed" and rec["attempts"] == 3, rec
        assert rec["result"] == "rejected" and "could not be recorded" in rec["error"], rec
        assert "no start for you" in open(d.front_log, errors="replace").read(), "the database's reason logged"
        assert env.ev_lines("refused.starts") == [], "never launched"
        assert row(db, tid)[0] == "failed"
    finally:
        db.sql("DROP TRIGGER IF EXISTS refuse_start")
    d.stop()


def test_idempotent_key_across_restart_and_kill(env, db, mysql_daemons):
    d = mysql_daemons()
    with env.client() as c:
        first = c.submit("touch", ["keyed"], key="order-42", delay=1)
    d.stop_front()
    d.start_front()
    with env.client() as c:
        again = c.call({"op": "submit", "task": "touch", "args": ["keyed"], "key": "order-42"})
        assert again["id"] == first and again.get("existing") is True
    kill9_front(d)
    d.start_front()
    with env.client() as c:
        assert c.call({"op": "submit", "task": "touch", "args": ["keyed"], "key": "order-42"})["id"] == first
        c.wait_final(first)
    assert db.sql("SELECT COUNT(*) FROM tasks WHERE idem_key = 'order-42'") == [["1"]]
    d.stop()


def test_database_down_refuses_then_resumes_and_loses_nothing(env, db, mysql_daemons):
    d = mysql_daemons()
    acked, refused, other = [], [], []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                with env.client(timeout=20) as c:
                    while not stop.is_set():
                        r = c.call({"op": "submit", "task": "record", "args": ["outage", "x"]})
                        if r["ok"]:
                            acked.append(r["id"])
                        elif r["code"] == "unavailable":
                            refused.append(r)
                            time.sleep(0.02)
                        else:
                            other.append(r)
            except (OSError, TimeoutError, AssertionError) as e:
                other.append(repr(e))
                time.sleep(0.1)

    t = threading.Thread(target=load)
    t.start()
    try:
        wait_for(lambda: len(acked) > 50, 20, what="submissions before the outage")
        db.stop()
        wait_for(lambda: len(refused) > 5, 30, what="unavailable while MariaDB is down")
        before_restart = len(acked)
        time.sleep(1)
        db.start()
        wait_for(lambda: len(acked) > before_restart + 50, 60, what="service to resume without a restart")
    finally:
        stop.set()
        t.join(30)
    assert not other, other[:5]
    assert d.front.poll() is None, "asynctaskd kept running"
    wait_for_count(lambda: len(env.ev_lines("outage.log")), len(acked), what="acknowledged tasks run")
    ran = sorted(int(line.split()[0]) for line in env.ev_lines("outage.log"))
    assert set(acked) <= set(ran), "an acknowledged task was lost"
    ids_in_db = {int(r[0]) for r in db.sql("SELECT id FROM tasks WHERE state = 'succeeded'")}
    wait_for(lambda: set(acked) <= {int(r[0]) for r in db.sql("SELECT id FROM tasks WHERE state = 'succeeded'")},
             30, what="every acknowledged task recorded as succeeded")
    del ids_in_db
    d.stop()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    rest = st[st.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("outage", ["down", "read_only"])
def test_a_change_held_for_a_database_that_cannot_take_it_waits_quietly_and_a_stop_gives_it_up(
        env, db, mysql_daemons, outage):
    """A run ends while the database is down, or up but refusing writes (read_only): its result is
    held until the database takes it, and so is the start of a task that became due meanwhile. The
    front waits for that without spinning, and a stop (SIGTERM) does not wait its flush deadline for
    writes that cannot be made: it tries once more, logs the changes as not written, and exits. Nothing
    is lost: the launcher keeps the unacknowledged result, and the next front records it; the start
    not recorded was not launched, spends no attempt, and the next front runs it."""
    d = mysql_daemons()
    said = "database unreachable" if outage == "down" else "the database refuses writes"
    try:
        with env.client() as c:
            tid = c.submit("sleeper", ["held", "5"])
            due = c.call({"op": "submit", "task": "touch", "args": ["due"], "delay": 3})["id"]
            c.wait_state(tid, "running")
        env.ev_wait("held.pid")
        if outage == "down":
            db.stop()
        else:
            db.sql("SET GLOBAL read_only = 1")
        env.ev_wait("held.done", timeout=10)
        wait_for(lambda: said in open(d.front_log).read(), 30, what=f"the front to log: {said}")
        before, t0 = cpu_seconds(d.front.pid), time.monotonic()
        time.sleep(3)
        used = cpu_seconds(d.front.pid) - before
        assert used < 0.3, f"the front used {used:.2f} s of CPU in {time.monotonic() - t0:.1f} s, waiting"
        t0 = time.monotonic()
        assert d.stop_front() == 0
        took = time.monotonic() - t0
        assert took < 3.5, f"the stop took {took:.1f} s with the database {outage}"  # not its 5 s deadline
        log = open(d.front_log).read()
        assert "changes not written" in log
        assert "could not be recorded" not in log and not os.path.exists(env.ev_path("due")), log[-3000:]
    finally:
        if outage == "down":
            db.start()
        else:
            db.sql("SET GLOBAL read_only = 0")
    d.start_front()
    with env.client() as c:
        for i in (tid, due):
            rec = c.wait_final(i)
            assert rec["state"] == "succeeded" and rec["attempts"] == 1, rec
    assert row(db, tid) == ["succeeded", "1", "success", "0"]
    assert row(db, due) == ["succeeded", "1", "success", "0"]
    d.stop()


STORE_DOWN = "957aa5e3886244629b59db22d99e3dae"  # src/shared/message-ids.h
STORE_UP = "f79e984cf49347e89a5ba84b46c54bc1"


@pytest.mark.skipif(not JournalCapture.available,
                    reason="needs root and /run/systemd (a mount namespace for the journal socket)")
def test_store_outage_and_return_carry_their_message_ids(env, db, mysql_daemons):
    journal = JournalCapture(env)
    try:
        d = mysql_daemons(front_journal=journal)
        with env.client() as c:
            c.wait_final(c.submit("touch", [tag()]))
            db.stop()
            # The front notices at its next write; until the database is back, submissions are refused.
            r = c.call({"op": "submit", "task": "touch", "args": [tag()]}, timeout=30)
            assert r["ok"] is False and r["code"] == "unavailable", r
        e = journal.wait(MESSAGE_ID=STORE_DOWN)
        assert e["PRIORITY"] == "4" and e["MESSAGE"].startswith("mysql: "), e
        assert not journal.find(MESSAGE_ID=STORE_UP)
        db.start()
        e = journal.wait(60, MESSAGE_ID=STORE_UP)
        assert e["PRIORITY"] == "5" and e["MESSAGE"] == "mysql: connected again", e
        with env.client() as c:
            assert c.wait_final(c.submit("touch", [tag()]))["state"] == "succeeded"
        d.stop()
    finally:
        journal.close()


def test_results_of_runs_that_end_while_the_front_is_dead_are_recorded(env, db, mysql_daemons):
    d = mysql_daemons()
    with env.client() as c:
        ids = [c.submit("sleeper", [f"r{i}", "2"]) for i in range(3)]
        for i, tid in enumerate(ids):
            c.wait_state(tid, "running")
            env.ev_wait(f"r{i}.pid")  # really started (running is recorded before the launch)
    kill9_front(d)
    for i in range(3):
        env.ev_wait(f"r{i}.done", timeout=10)
    d.start_front()
    with env.client() as c:
        for tid in ids:
            rec = c.wait_final(tid)
            assert rec["state"] == "succeeded" and rec["attempts"] == 1, rec
    for tid in ids:
        assert row(db, tid) == ["succeeded", "1", "success", "0"]
    d.stop()


def test_a_run_lost_with_both_daemons_is_requeued(env, db, mysql_daemons):
    d = mysql_daemons()
    with env.client() as c:
        tid = c.submit("sleeper", ["gone", "30"])
        c.wait_state(tid, "running")
        env.ev_wait("gone.pid")
    # The state change to running is written behind the launch; kill only once it is committed,
    # else the restarted front (rightly) still sees the task queued and runs it again.
    wait_for(lambda: (row(db, tid) or [""])[0] == "running", 10, what="running committed")
    d.kill_all()
    pid = int(env.ev_read("gone.pid"))
    os.kill(pid, signal.SIGKILL)
    d.start()
    with env.client() as c:
        rec = c.wait_final(tid, timeout=20)
    assert rec["state"] == "failed" and rec["result"] == "lost", rec
    assert row(db, tid)[:3] == ["failed", "1", "lost"]
    d.stop()


def test_purge_removes_old_finished_rows_but_keeps_failed(env, db, mysql_daemons):
    db.reset()
    d = mysql_daemons(retention_days=1)
    d.stop()
    for tid, state in ((101, "succeeded"), (102, "failed"), (103, "cancelled")):
        db.sql("INSERT INTO tasks (id, task, args, submitter, state, attempts, max_attempts, created_at, run_after,"
               f" finished_at) VALUES ({tid}, 'touch', '[]', 'uid:0', '{state}', 1, 1,"
               " UTC_TIMESTAMP(6) - INTERVAL 3 DAY, UTC_TIMESTAMP(6) - INTERVAL 3 DAY,"
               " UTC_TIMESTAMP(6) - INTERVAL 2 DAY)")
    d.start()
    wait_for(lambda: db.sql("SELECT id FROM tasks WHERE id > 100 ORDER BY id") == [["102"]], 20,
             what="purge of old finished rows at start")
    d.stop()


def test_purge_runs_in_bounded_steps(env, db, mysql_daemons):
    """2,600 old succeeded and cancelled rows go in steps of at most 1,000 rows; failed, recent and
    unfinished rows stay."""
    db.reset()
    d = mysql_daemons(retention_days=1)
    d.stop()
    old = "UTC_TIMESTAMP(6) - INTERVAL 3 DAY"
    db.sql("INSERT INTO tasks (id, task, args, submitter, state, attempts, max_attempts, created_at, run_after,"
           f" finished_at) SELECT 1000 + seq, 'touch', '[]', 'uid:0', IF(seq % 2, 'succeeded', 'cancelled'), 1, 1,"
           f" {old}, {old}, {old} + INTERVAL seq SECOND FROM seq_1_to_2600")
    db.sql("INSERT INTO tasks (id, task, args, submitter, state, attempts, max_attempts, created_at, run_after,"
           f" finished_at) VALUES (5001, 'touch', '[]', 'uid:0', 'failed', 1, 1, {old}, {old}, {old}),"
           " (5002, 'touch', '[]', 'uid:0', 'succeeded', 1, 1, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))")
    d.start()
    wait_for(lambda: db.sql("SELECT COUNT(*) FROM tasks WHERE id BETWEEN 1001 AND 3600") == [["0"]], 30,
             what="purge of the old rows")
    assert db.sql("SELECT id FROM tasks WHERE id > 5000 ORDER BY id") == [["5001"], ["5002"]]
    wait_for(lambda: "Purged 2600 finished row(s)" in open(d.front_log).read(), 10, what="the purge's log line")
    with open(d.front_log) as f:
        assert "Purged 2600 finished row(s) older than 1 day(s) from the store, in 3 step(s)." in f.read()
    d.stop()


def stop_process(pid):
    """SIGSTOP, and waits until every thread has stopped: one thread takes the signal first, and on a
    loaded machine the others may go on running (and answering) for a while."""
    os.kill(pid, signal.SIGSTOP)

    def stopped():
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            if st[st.rindex(")") + 2] not in "Tt":
                return False
        return True

    wait_for(stopped, 10, 0.01, what=f"process {pid} to stop")


def test_seed_frames_wait_for_their_commit_unseen(env, db, mysql_daemons):
    """A seed frame's submission waits for its commit like any other, but unseen: a JSON frame behind
    it is answered without waiting for that commit, and the seed frame never gets an answer, also
    when its commit fails (the refusal is then logged and counted)."""
    d = mysql_daemons()
    with open(os.path.join(db.dir, "mysqld.pid")) as f:
        pid = int(f.read())
    cmd = f"touch {env.ev}/seed-ran"
    frame = b's:%d:"%s";\n' % (len(cmd), cmd.encode())

    def seed_then_ping():
        with env.client("tcp") as c:
            started = time.monotonic()
            c.send(frame + b'{"op":"ping"}\n')
            assert c.recv(timeout=10).get("pong") is True
            assert time.monotonic() - started < 3, "the ping waited for the seed frame's commit"
            c.expect_silence(0.3)

    stop_process(pid)
    try:
        seed_then_ping()
        time.sleep(0.5)
        assert not env.ev_exists("seed-ran"), "the seed frame's task ran before it was committed"
    finally:
        os.kill(pid, signal.SIGCONT)
    env.ev_wait("seed-ran", 30)
    assert db.sql(f"SELECT COUNT(*) FROM tasks WHERE cmd = '{cmd}'") == [["1"]]
    assert d.stats()["seed_refused"] == 0

    # The database dies while the seed frame's insert is in flight: refused, logged and counted.
    log_at = os.path.getsize(d.front_log)
    stop_process(pid)
    try:
        seed_then_ping()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.kill(pid, signal.SIGCONT)
    try:
        wait_for(lambda: d.stats()["seed_refused"] == 1, 40, what="the failed commit to count as a refusal")
        with open(d.front_log, "rb") as f:
            f.seek(log_at)
            text = f.read().decode("utf-8", "replace")
        assert [line for line in text.splitlines() if "Refused seed frame from tcp 127.0.0.1:" in line
                and ": unavailable: " in line and cmd in line], text[-3000:]
    finally:
        wait_for(lambda: not proc_alive(pid), 30, what="the killed MariaDB to be gone")
        # (it may linger as a zombie, which the start script would take for a running server)
        os.unlink(os.path.join(db.dir, "mysqld.pid"))
        db.start()
    assert db.sql(f"SELECT COUNT(*) FROM tasks WHERE cmd = '{cmd}'") == [["1"]], \
        "the refused seed frame's row was committed"


def test_pause_is_kept_in_the_database_across_restarts(env, db, mysql_daemons):
    d = mysql_daemons()
    with env.client() as c:
        assert c.call({"op": "pause", "task": "touch"})["paused"] is True
        assert db.sql("SELECT task, paused_by FROM paused_tasks") == [["touch", f"uid:{os.geteuid()}"]]
        queued = c.submit("touch", ["paused-mysql"])
        other = c.submit("record", ["paused-mysql-other", "x"])
        assert c.wait_final(other)["state"] == "succeeded"
    # A crash, not a clean stop: the pause is in the database, not in a file written at exit.
    kill9_front(d)
    d.start_front()
    with env.client() as c:
        assert [p["task"] for p in c.call({"op": "stats"})["paused"]] == ["touch"]
        time.sleep(1.0)
        assert c.status(queued)["state"] == "queued" and c.status(queued)["paused"] is True
        assert not env.ev_exists("paused-mysql")
        assert c.call({"op": "resume", "task": "touch"})["paused"] is False
        assert db.sql("SELECT COUNT(*) FROM paused_tasks") == [["0"]]
        assert c.wait_final(queued)["state"] == "succeeded"
    d.stop_front()
    d.start_front()
    with env.client() as c:
        assert c.call({"op": "stats"})["paused"] == []
    d.stop()


def test_pause_answers_after_the_commit(env, db, mysql_daemons):
    """The answer to a pause means it is stored: with the database stopped it waits, and comes once
    the database is back (like every change of an acknowledged record)."""
    d = mysql_daemons()
    with open(os.path.join(db.dir, "mysqld.pid")) as f:
        pid = int(f.read())
    os.kill(pid, signal.SIGSTOP)
    try:
        with env.client(timeout=30) as c:
            c.send_obj({"op": "pause", "task": "touch"})
            c.expect_silence(1.0)
            os.kill(pid, signal.SIGCONT)
            assert c.recv(30) == {"ok": True, "task": "touch", "paused": True}
        assert db.sql("SELECT task FROM paused_tasks") == [["touch"]]
    finally:
        os.kill(pid, signal.SIGCONT)
    d.stop()


def test_drain_with_the_mysql_store(env, db, mysql_daemons):
    """Draining is this host's and lives outside the database: the rows show the queued task
    untouched until undrain."""
    d = mysql_daemons()
    with env.client() as c:
        long = c.submit("sleeper", ["drain-mysql", "2"])
        c.wait_state(long, "running")
        p = subprocess.Popen([CLI_BIN, "--socket", env.front_sock, "drain", "--timeout", "60"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: c.call({"op": "stats"})["draining"], 10, what="draining")
        queued = c.submit("touch", ["drain-mysql-queued"])
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, (out, err)
        assert env.ev_exists("drain-mysql.done")
        assert row(db, long)[0] == "succeeded"
        time.sleep(0.5)
        assert row(db, queued)[:2] == ["queued", "0"]
        assert c.call({"op": "undrain"})["draining"] is False
        assert c.wait_final(queued)["state"] == "succeeded"
    d.stop()
