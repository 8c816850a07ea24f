# SPDX-License-Identifier: MIT
"""Several hosts on one database (docs/cluster.md): several front+launcher pairs, each with its own
"node" name, config, sockets and direct executor, on one private MariaDB. Each task writes what it did
to a file of a directory all of them share, named after the node that ran it, so that every run is
counted whichever host made it. ASYNCTASK_CLUSTER_TASKS sets the size of the exactly-once run
(10,000 here)."""

import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time

from conftest import ALLOW, TASK_USER, Client, Daemons, Env, base_main, built_with_asan, needs_mariadb, wait_for

pytestmark = needs_mariadb

# 10,000 as the issue asks; the ASan build's pass (CI runs the suite twice) checks the same with 2,000,
# which its slower daemons take as long as the plain build takes 10,000.
TASKS = int(os.environ.get("ASYNCTASK_CLUSTER_TASKS", "2000" if built_with_asan() else "10000"))
TIMEOUT = 3  # node_timeout_sec of the failover tests
HEARTBEAT = 1

# $1: the run's label (the shared directory's file prefix), $2: seconds to sleep.
RUN_SCRIPT = """echo "$ASYNCTASK_ID $ASYNCTASK_ATTEMPT $(date +%s.%N)" >> "$SHARED/$1.start.$NODE"
sleep "${2:-0}"
echo "$ASYNCTASK_ID $ASYNCTASK_ATTEMPT $(date +%s.%N)" >> "$SHARED/$1.end.$NODE"
[ "$NODE" != "${3:-}" ] || exit 7
"""


class Cluster:
    def __init__(self, db, shared):
        self.db = db
        self.shared = shared
        self.hosts = {}  # node -> (env, daemons)

    def add(self, node, tasks=None, log_level="debug", **main_over):
        env = Env()
        script = env.script("run", f"SHARED='{self.shared}'\n" + RUN_SCRIPT)
        main_over.setdefault("heartbeat_sec", HEARTBEAT)
        main = base_main(env, node=node, **main_over)
        main["store"] = {"type": "mysql", "option_file": self.db.cnf, "group": "asynctask"}

        def task(**kw):
            t = {"exec": [script], "max_args": 3, "user": TASK_USER, "allow": ALLOW,
                 "environment": {"NODE": node}}
            t.update(kw)
            return t

        all_tasks = {"run": task(), "retry": task(max_attempts=3), "fail_lost": task(max_attempts=3, on_lost="fail")}
        for name, kw in (tasks or {}).items():
            all_tasks[name] = task(**kw)
        env.write_config(main, all_tasks)
        d = Daemons(env, log_level=log_level)
        self.hosts[node] = (env, d)
        d.start()
        return env, d

    def client(self, node, **kw):
        return Client(self.hosts[node][0].unix, **kw)

    def log(self, node):
        with open(self.hosts[node][1].front_log, errors="replace") as f:
            return f.read()

    def runs(self, label, kind="start"):
        """{node: [(id, attempt), ...]} from the shared files."""
        out = {}
        for f in os.listdir(self.shared):
            m = re.fullmatch(rf"{re.escape(label)}\.{kind}\.(.+)", f)
            if not m:
                continue
            with open(os.path.join(self.shared, f)) as fh:
                out[m.group(1)] = [(int(a), int(b)) for a, b, *_ in (line.split() for line in fh if line.strip())]
        return out

    def times(self, label, kind):
        """{id: time} of the runs' starts or ends, over every node."""
        out = {}
        for f in os.listdir(self.shared):
            if f.startswith(f"{label}.{kind}."):
                with open(os.path.join(self.shared, f)) as fh:
                    for line in fh:
                        i, _, t = line.split()
                        out[int(i)] = float(t)
        return out

    def stop(self):
        for env, d in self.hosts.values():
            d.kill_all()
            env.cleanup()
        shutil.rmtree(self.shared, ignore_errors=True)


def rows_by_state(db, where="1"):
    return {s: int(n) for s, n in db.sql(f"SELECT state, COUNT(*) FROM tasks WHERE {where} GROUP BY state")}


def make_cluster(db):
    """A fresh database and a directory every task may write (they run as nobody)."""
    db.reset()
    shared = tempfile.mkdtemp(prefix="asynctask-cluster-")
    os.chmod(shared, 0o1777)
    return Cluster(db, shared)


def submit_many(client, task, args_of, n, batch=500):
    """n submissions pipelined in batches; returns their ids."""
    ids = []
    for start in range(0, n, batch):
        k = min(batch, n - start)
        data = b"".join(
            (('{"op":"submit","task":"%s","args":%s}\n' % (task, args_of(start + i))).encode()) for i in range(k))
        client.send(data)
        for _ in range(k):
            r = client.recv(timeout=60)
            assert r["ok"] is True, r
            ids.append(r["id"])
    return ids


def test_exactly_once_round_robin(db):
    """TASKS submissions spread over 3 nodes run exactly once each, on every node; ids are unique."""
    c = make_cluster(db)
    try:
        for node in ("n1", "n2", "n3"):
            c.add(node)
        ids = []
        per = TASKS // 3
        # Each connection opens when its turn comes: one left idle while another node takes its share
        # (over 10 s on a loaded machine) is closed by frame_timeout_sec.
        for k, node in enumerate(("n1", "n2", "n3")):
            with c.client(node, timeout=60) as cl:
                ids += submit_many(cl, "run", lambda i: '["once"]', per + (TASKS % 3 if k == 0 else 0))
        assert len(ids) == TASKS and len(set(ids)) == TASKS, "ids are unique across the nodes"
        wait_for(lambda: rows_by_state(db).get("succeeded", 0) == TASKS, 600, interval=1,
                 what=f"{TASKS} tasks succeeded")
        runs = c.runs("once")
        started = [i for r in runs.values() for i, _ in r]
        assert len(started) == TASKS and set(started) == set(ids), "each ran exactly once"
        assert set(runs) == {"n1", "n2", "n3"}, {n: len(r) for n, r in runs.items()}
        # The rows name the node that ran them, as the runs say.
        by_node = {n: int(k) for n, k in db.sql("SELECT node, COUNT(*) FROM tasks GROUP BY node")}
        assert by_node == {n: len(r) for n, r in runs.items()}, by_node
        print(f"runs per node: { {n: len(r) for n, r in runs.items()} }")
    finally:
        c.stop()


def test_unclaimed_rows_go_to_nodes_with_room(db):
    """Rows no node holds (written by another front, or left by one) are claimed by the nodes with
    room, several of them: a node claims a few more than it can run, not the whole queue."""
    c = make_cluster(db)
    try:
        for node in ("a", "b", "c"):
            c.add(node, max_running=2)
        wait_for(lambda: all("3 node(s) alive" in c.log(n) for n in ("a", "b", "c")), 20, what="3 nodes alive")
        # 120 rows of no node, due now, as a node routed elsewhere would leave them.
        db.sql("INSERT INTO tasks (id, task, args, submitter, state, max_attempts, created_at, run_after)"
               " SELECT 900000 + seq, 'run', '[\"free\",\"0.05\"]', 'uid:0', 'queued', 1, UTC_TIMESTAMP(6),"
               " UTC_TIMESTAMP(6) FROM seq_1_to_120")
        wait_for(lambda: rows_by_state(db).get("succeeded", 0) == 120, 120, interval=0.5, what="120 rows run")
        runs = c.runs("free")
        assert sum(len(r) for r in runs.values()) == 120
        assert sorted(i for r in runs.values() for i, _ in r) == list(range(900001, 900121))
        assert len(runs) >= 2, {n: len(r) for n, r in runs.items()}
    finally:
        c.stop()


def lost_setup(c, task, n):
    for node in ("a", "b", "c"):
        c.add(node, node_timeout_sec=TIMEOUT)
    wait_for(lambda: all("3 node(s) alive" in c.log(x) for x in ("a", "b", "c")), 20, what="3 nodes alive")
    with c.client("a") as cl:
        ids = [cl.submit(task, ["lost", "30"]) for _ in range(n)]
    wait_for(lambda: len(c.runs("lost").get("a", [])) == n, 20, what="the runs on a")
    return ids


def test_kill9_of_a_node_runs_its_tasks_again_elsewhere(db):
    """kill -9 of a node's front and launcher while its tasks run: once it is taken for dead, the leader
    queues its runs again (on_lost retry, attempts left) and the other nodes run them."""
    c = make_cluster(db)
    try:
        ids = lost_setup(c, "retry", 4)
        env, d = c.hosts["a"]
        d.kill_all()
        killed = time.monotonic()

        def rerun():
            runs = c.runs("lost")
            return sorted(i for n in ("b", "c") for i, a in runs.get(n, []) if a == 2) == sorted(ids)

        wait_for(rerun, 60, interval=0.2, what="the lost runs started again on b or c")
        failover = time.monotonic() - killed
        print(f"failover: {failover:.1f} s from kill -9 to the last rerun (node_timeout_sec {TIMEOUT})")
        assert failover >= TIMEOUT - 1, "not before the node timed out"
        rows = db.sql(f"SELECT state, attempts, node FROM tasks WHERE id IN ({','.join(map(str, ids))})")
        assert all(r[0] == "running" and r[1] == "2" and r[2] in ("b", "c") for r in rows), rows
        logs = c.log("b") + c.log("c")
        assert re.search(r"Node a is dead \(no heartbeat for 3 s\): 4 of its running task\(s\) queued again", logs), \
            logs[-3000:]
    finally:
        c.stop()


def test_kill9_of_a_node_fails_its_on_lost_fail_tasks(db):
    c = make_cluster(db)
    try:
        ids = lost_setup(c, "fail_lost", 2)
        c.hosts["a"][1].kill_all()
        where = f"id IN ({','.join(map(str, ids))})"
        wait_for(lambda: rows_by_state(db, where) == {"failed": 2}, 60, interval=0.2, what="failed as lost")
        rows = db.sql(f"SELECT result, attempts, error FROM tasks WHERE {where}")
        assert all(r[0] == "lost" and r[1] == "1" and "node a stopped answering" in r[2] for r in rows), rows
        time.sleep(2 * HEARTBEAT + 1)
        assert not any(a == 2 for n in ("b", "c") for _, a in c.runs("lost").get(n, [])), "not run again"
    finally:
        c.stop()


def test_fencing_refuses_the_late_result_of_a_node_taken_for_dead(db):
    """A node's front stopped (SIGSTOP) past node_timeout_sec: its run is queued again and run on
    another node. Continued, its launcher's result of the old run (exit 7 on a) is refused by the fence
    and logged; the row keeps the other node's outcome."""
    c = make_cluster(db)
    try:
        for node in ("a", "b"):
            c.add(node, node_timeout_sec=TIMEOUT)
        wait_for(lambda: all("2 node(s) alive" in c.log(x) for x in ("a", "b")), 20, what="2 nodes alive")
        with c.client("a") as cl:
            tid = cl.submit("retry", ["fence", "4", "a"])
        wait_for(lambda: c.runs("fence").get("a"), 20, what="the run on a")
        front = c.hosts["a"][1].front
        front.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: c.runs("fence").get("b"), 30, interval=0.2, what="the run again on b")
            # a's run ends (exit 7) while its front is stopped: its launcher holds the result.
            wait_for(lambda: c.runs("fence", "end").get("a"), 20, what="a's run ended")
        finally:
            front.send_signal(signal.SIGCONT)
        wait_for(lambda: f"Task {tid} is no longer this node's" in c.log("a"), 20, what="a logs the refused write")
        assert db.sql(f"SELECT node, attempts FROM tasks WHERE id = {tid}") == [["b", "2"]]
        wait_for(lambda: db.sql(f"SELECT state FROM tasks WHERE id = {tid}") == [["succeeded"]], 30,
                 what="b's outcome")
        assert db.sql(f"SELECT node, attempts, result, exit_status FROM tasks WHERE id = {tid}") == \
            [["b", "2", "success", "0"]]
        # a let go of it: its status is read from the database.
        with c.client("a") as cl:
            assert cl.status(tid)["state"] == "succeeded"
    finally:
        c.stop()


def test_concurrency_holds_across_nodes(db):
    """concurrency 1 with 3 nodes under load: one node owns the name and runs it; no two runs overlap,
    whichever node took the submissions; every one runs once."""
    c = make_cluster(db)
    try:
        for node in ("a", "b", "c"):
            c.add(node, tasks={"one": {"concurrency": 1}})
        wait_for(lambda: all("3 node(s) alive" in c.log(x) for x in ("a", "b", "c")), 20, what="3 nodes alive")
        ids = []
        for k in range(30):
            with c.client("abc"[k % 3]) as cl:
                ids.append(cl.submit("one", ["slot", "0.2"]))
        wait_for(lambda: rows_by_state(db, "task = 'one'").get("succeeded", 0) == 30, 120, interval=0.5,
                 what="30 runs of one")
        starts, ends = c.times("slot", "start"), c.times("slot", "end")
        assert sorted(starts) == sorted(ids) and sorted(ends) == sorted(ids)
        spans = sorted((starts[i], ends[i]) for i in ids)
        overlaps = [(x, y) for x, y in zip(spans, spans[1:]) if y[0] < x[1]]
        assert not overlaps, overlaps
        owners = db.sql("SELECT node FROM task_owners WHERE task = 'one'")
        assert len(owners) == 1 and set(c.runs("slot")) == {owners[0][0]}, (owners, list(c.runs("slot")))
    finally:
        c.stop()


def test_hosts_routing(db):
    """A task whose "hosts" name b runs on b only, also when submitted on a."""
    c = make_cluster(db)
    try:
        for node in ("a", "b"):
            c.add(node, tasks={"only_b": {"hosts": ["b"]}})
        with c.client("a") as cl:
            ids = [cl.submit("only_b", ["routed"]) for _ in range(20)]
        with c.client("b") as cl:
            ids += [cl.submit("only_b", ["routed"]) for _ in range(5)]
        wait_for(lambda: rows_by_state(db).get("succeeded", 0) == 25, 60, interval=0.3, what="25 runs")
        runs = c.runs("routed")
        assert set(runs) == {"b"} and sorted(i for i, _ in runs["b"]) == sorted(ids), runs
        # a let go of the ones it took: their status is the database's.
        with c.client("a") as cl:
            assert [cl.status(i)["state"] for i in ids[:20]] == ["succeeded"] * 20
        assert "is left to the other nodes" in c.log("a")
    finally:
        c.stop()


def two_nodes(c, **tasks):
    for node in ("a", "b"):
        c.add(node, tasks=tasks)
    wait_for(lambda: all("2 node(s) alive" in c.log(n) for n in ("a", "b")), 20, what="2 nodes alive")


def test_status_of_a_task_another_node_runs_is_the_rows(db):
    """a's status of a task b runs comes from the row each time, with its node: no copy kept on a goes
    stale once b has finished it (it used to answer "running" from the copy of its first look)."""
    c = make_cluster(db)
    try:
        two_nodes(c)
        with c.client("b") as cl:
            tid = cl.submit("run", ["seen", "1.5"])
        wait_for(lambda: c.runs("seen").get("b"), 20, what="the run on b")
        with c.client("a") as cl:
            r = cl.status(tid)
            assert r["state"] == "running" and r["node"] == "b", r
            wait_for(lambda: cl.status(tid)["state"] == "succeeded", 30, interval=0.1, what="a sees the end")
            assert cl.status(tid)["node"] == "b"
        with c.client("b") as cl:
            assert cl.status(tid)["node"] == "b"
    finally:
        c.stop()


def test_cancel_on_one_node_stops_the_run_on_another(db):
    """cancel on a of a task running on b: a writes a cancel request on the row ("stopping"), b's next
    heartbeat takes it and stops the run through its own launcher; the row ends cancelled."""
    c = make_cluster(db)
    try:
        two_nodes(c)
        delays = []
        for _ in range(3):
            with c.client("b") as cl:
                tid = cl.submit("run", ["stopme", "60"])
            wait_for(lambda: tid in [i for i, _ in c.runs("stopme").get("b", [])], 20, what="the run on b")
            with c.client("a") as cl:
                asked = time.monotonic()
                r = cl.call({"op": "cancel", "id": tid})
                assert r == {"ok": True, "id": tid, "state": "running", "stopping": True}, r
                wait_for(lambda: db.sql(f"SELECT state FROM tasks WHERE id = {tid}") == [["cancelled"]], 30,
                         interval=0.05, what="the row cancelled")
                delays.append(time.monotonic() - asked)
                assert cl.status(tid)["state"] == "cancelled"
            assert tid not in [i for i, _ in c.runs("stopme", "end").get("b", [])], "the run was stopped"
            assert db.sql(f"SELECT cancel_requested FROM tasks WHERE id = {tid}") == [["0"]]
        print("cancel on a -> row cancelled by b: " + ", ".join(f"{d:.2f} s" for d in delays)
              + f" (heartbeat_sec {HEARTBEAT})")
        # Generous: one heartbeat, the stop and the write, on a loaded machine.
        assert max(delays) < HEARTBEAT + 15, delays
        assert "another node asked to cancel it" in c.log("b")
    finally:
        c.stop()


def test_cancel_retry_forget_of_rows_no_node_holds(db):
    """A queued row nobody has claimed is cancelled by a in the database; a failed row b ran is queued
    again by a (conditionally: a second retry of the queued row is refused) and runs again; a finished
    row is forgotten by a. None of it writes a copy over the row."""
    c = make_cluster(db)
    try:
        two_nodes(c, nowhere={"hosts": ["zz"]})
        with c.client("a") as cl:
            free = cl.submit("nowhere", ["never"])
            assert db.sql(f"SELECT state, node FROM tasks WHERE id = {free}") == [["queued", "NULL"]]
            assert cl.call({"op": "cancel", "id": free}) == {"ok": True, "id": free, "state": "cancelled"}
        assert db.sql(f"SELECT state FROM tasks WHERE id = {free}") == [["cancelled"]]
        # Fails on b (its third argument names the node that exits 7), succeeds anywhere else.
        with c.client("b") as cl:
            tid = cl.submit("run", ["again", "0", "b"])
            assert cl.wait_final(tid)["state"] == "failed"
        assert db.sql(f"SELECT state FROM tasks WHERE id = {tid}") == [["failed"]], "b's result in the row"
        with c.client("a") as cl:
            assert cl.status(tid)["node"] == "b"
            assert cl.call({"op": "retry", "id": tid}) == {"ok": True, "id": tid, "state": "queued"}
            r = cl.call({"op": "retry", "id": tid})
            assert r["ok"] is False, r
            wait_for(lambda: cl.status(tid)["state"] in ("succeeded", "failed"), 30, interval=0.1,
                     what="the retried task ran")
            assert sum(1 for runs in c.runs("again").values() for i, _ in runs if i == tid) == 2
            assert cl.call({"op": "forget", "id": free}) == {"ok": True, "id": free}
            assert db.sql(f"SELECT COUNT(*) FROM tasks WHERE id = {free}") == [["0"]]
            assert cl.status(free)["ok"] is False
    finally:
        c.stop()


def test_submissions_past_the_window_are_left_to_any_host(db):
    """A front holds a window of the queue, not its backlog: with two nodes alive each claims
    2 x max_running + 16 rows at a time (18 here), and a submission past them leaves its memory once
    its row is written, and its row is let go, for any host with room. A status, a cancel (on either
    host) and a forget reach such a row; once the name is resumed, every other task runs exactly once,
    on both hosts."""
    c = make_cluster(db)
    try:
        for node in ("a", "b"):
            c.add(node, max_running=1)
        wait_for(lambda: all("claims up to 18 queued" in c.log(n) for n in ("a", "b")), 30,
                 what="both nodes sharing the queue")
        for node in ("a", "b"):
            with c.client(node) as cl:
                assert cl.call({"op": "pause", "task": "run"})["ok"] is True
        with c.client("a", timeout=60) as cl:
            ids = submit_many(cl, "run", lambda i: '["spill"]', 300)
            wait_for(lambda: cl.call({"op": "stats"})["in_memory"]["queued"] <= 18, 30, interval=0.1,
                     what="the submissions past the window out of memory")
            st = cl.call({"op": "stats"})
            assert st["queued"] == 300 and st["in_memory"]["queued"] >= 10, st
            wait_for(lambda: dict(db.sql("SELECT IFNULL(node, '-'), COUNT(*) FROM tasks GROUP BY node")) ==
                     {"a": str(st["in_memory"]["queued"]), "-": str(300 - st["in_memory"]["queued"])}, 10,
                     interval=0.1, what="the rows past the window let go")
            assert cl.status(ids[-1])["state"] == "queued"
            assert cl.call({"op": "cancel", "id": ids[-2]}) == {"ok": True, "id": ids[-2], "state": "cancelled"}
            assert cl.call({"op": "forget", "id": ids[-4]}) == {"ok": True, "id": ids[-4]}
        with c.client("b") as cl:
            assert cl.call({"op": "cancel", "id": ids[-3]}) == {"ok": True, "id": ids[-3], "state": "cancelled"}
        for node in ("a", "b"):
            with c.client(node) as cl:
                assert cl.call({"op": "resume", "task": "run"})["ok"] is True
        wait_for(lambda: rows_by_state(db).get("succeeded", 0) == 297, 300, interval=0.5,
                 what="the other 297 tasks run")
        with c.client("a") as cl:
            assert cl.call({"op": "stats"})["in_memory"]["queued"] == 0
        runs = c.runs("spill")
        assert set(runs) == {"a", "b"}, {n: len(r) for n, r in runs.items()}
        started = sorted(i for r in runs.values() for i, _ in r)
        assert started == sorted(set(ids) - {ids[-2], ids[-3], ids[-4]}), "each ran once, but those cancelled or forgotten"
        assert rows_by_state(db) == {"succeeded": 297, "cancelled": 2}
        print(f"runs per node: { {n: len(r) for n, r in runs.items()} }")
    finally:
        c.stop()


def test_a_wait_is_answered_once_the_row_has_the_outcome(db):
    """A wait is answered once the store has committed the task's outcome, not as the run ends in
    memory: while another transaction holds the row (so that the outcome's write waits), no answer
    comes; once it lets go, the answer does, and the row read right after it (directly, as another
    host would) is final."""
    c = make_cluster(db)
    locker = None
    try:
        c.add("a")
        with c.client("a", timeout=60) as cl:
            tid = cl.submit("run", ["ryw", "1"])
            wait_for(lambda: db.sql(f"SELECT state FROM tasks WHERE id = {tid}") == [["running"]], 20,
                     interval=0.05, what="the run's start in the row")
            locker = subprocess.Popen(["mariadb", f"--defaults-file={db.cnf}", "-N", "-B", "-n", "asynctask"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            locker.stdin.write(f"BEGIN; SELECT id FROM tasks WHERE id = {tid} FOR UPDATE;\n")
            locker.stdin.flush()
            assert select.select([locker.stdout], [], [], 20)[0], "the lock taken"
            assert locker.stdout.readline().strip() == str(tid)
            cl.send_obj({"op": "wait", "id": tid, "timeout": 30})
            wait_for(lambda: c.runs("ryw", "end").get("a"), 20, interval=0.05, what="the run's end")
            cl.expect_silence(1.5)
            locker.stdin.write("COMMIT;\n")
            locker.stdin.close()
            assert locker.wait(10) == 0
            r = cl.recv(timeout=20)
            assert r["ok"] is True and r["state"] == "succeeded", r
            assert db.sql(f"SELECT state FROM tasks WHERE id = {tid}") == [["succeeded"]]
    finally:
        if locker and locker.poll() is None:
            locker.kill()
        c.stop()


def test_quotas_count_the_rows_of_every_host(db):
    """A submitter's quota counts its unfinished rows on the database, not what one host holds: rows
    written through b for no host of the two (so that neither holds them) count on a and on b once
    their next recount (every 10 s while other hosts are alive) has read them, and the submitter is
    refused on both; once the rows are cancelled, a recount lets it in again."""
    c = make_cluster(db)
    try:
        for node in ("a", "b"):
            c.add(node, tasks={"nowhere": {"hosts": ["zz"]}}, max_queued_per_submitter=5)
        wait_for(lambda: all("2 node(s) alive" in c.log(n) for n in ("a", "b")), 20, what="2 nodes alive")
        # Over TCP the same user is no admin: the quotas apply.
        with Client(c.hosts["b"][0].tcp) as cl:
            ids = [cl.submit("nowhere", [str(i)]) for i in range(5)]

        def refused(node):
            with Client(c.hosts[node][0].tcp) as cl:
                r = cl.call({"op": "submit", "task": "nowhere", "args": ["over"]})
            if r["ok"]:
                with c.client(node) as admin:  # taken back, so that the count stays at 5
                    assert admin.call({"op": "cancel", "id": r["id"]})["ok"] is True
                return False
            assert r["code"] == "quota_exceeded", r
            return True

        wait_for(lambda: refused("a") and refused("b"), 30, interval=1, what="both hosts counting b's rows")
        with c.client("a") as admin:
            for i in ids:
                assert admin.call({"op": "cancel", "id": i})["state"] == "cancelled"
        wait_for(lambda: not refused("b"), 30, interval=1, what="b counting the rows a cancelled")
    finally:
        c.stop()


def test_a_claim_replaces_a_finished_copy(db):
    """a ran a task that failed (its finished record is in a's memory); b queues the row again; a, the
    only node it may run on, claims the row and runs it (a kept its copy and never ran it before)."""
    c = make_cluster(db)
    try:
        two_nodes(c, only_a={"hosts": ["a"]})
        with c.client("a") as cl:
            tid = cl.submit("only_a", ["copy", "0", "a"])
            assert cl.wait_final(tid)["state"] == "failed"
        # a answers the wait once the row has the outcome: b, reading the row next, may retry it.
        with c.client("b") as cl:
            assert cl.call({"op": "retry", "id": tid}) == {"ok": True, "id": tid, "state": "queued"}
        wait_for(lambda: len(c.runs("copy").get("a", [])) == 2, 30, interval=0.1, what="the second run on a")
        with c.client("a") as cl:
            assert cl.wait_final(tid)["state"] == "failed"
    finally:
        c.stop()


def run_again_on_b(c, tid):
    """a stops claiming rows of `run`; b queues tid's row again and runs it to success."""
    with c.client("a") as cl:
        assert cl.call({"op": "pause", "task": "run"})["ok"] is True
    with c.client("b") as cl:
        assert cl.call({"op": "retry", "id": tid}) == {"ok": True, "id": tid, "state": "queued"}
        wait_for(lambda: cl.status(tid)["state"] == "succeeded", 30, interval=0.1, what="b running it")


def test_a_retry_of_a_finished_copy_another_host_changed_is_refused(db):
    """a keeps the record of a run of its own that failed; b queues the row again and runs it. a's copy
    is stale now: a retry on a is written only on the condition that the row is as the copy has it, so
    it is refused, saying what the row is now, and a lets go of the copy (its status reads the row).
    Before, a wrote its copy over the row, queued again. A retry on a of a copy still true works."""
    c = make_cluster(db)
    try:
        two_nodes(c)
        with c.client("a") as cl:
            own = cl.submit("run", ["own", "0", "a"])
            assert cl.wait_final(own)["state"] == "failed"
            assert cl.call({"op": "retry", "id": own}) == {"ok": True, "id": own, "state": "queued"}
            assert cl.wait_final(own)["state"] == "failed"
            tid = cl.submit("run", ["stale", "0", "a"])
            assert cl.wait_final(tid)["state"] == "failed"
        run_again_on_b(c, tid)
        with c.client("a") as cl:
            r = cl.call({"op": "retry", "id": tid})
            assert r["ok"] is False and r["code"] == "bad_request" and "succeeded now" in r["error"], r
            st = cl.status(tid)
            assert st["state"] == "succeeded" and st["node"] == "b", st
        assert db.sql(f"SELECT state, attempts, node FROM tasks WHERE id = {tid}") == [["succeeded", "1", "b"]]
        runs = c.runs("stale")
        assert len(runs.get("a", [])) == 1 and len(runs.get("b", [])) == 1, runs
        assert len(c.runs("own").get("a", [])) == 2
    finally:
        c.stop()


def test_a_finished_copy_another_host_ran_again_answers_from_the_row(db):
    """a keeps the record of a run of its own that failed; b queues the row again and runs it to success.
    With other hosts alive, a's status and wait of that task read the row: succeeded on b, not the
    failure a remembers. Once b forgets the task, a finds no task either. Before, a answered from its
    copy until its retention dropped it."""
    c = make_cluster(db)
    try:
        two_nodes(c)
        with c.client("a") as cl:
            tid = cl.submit("run", ["copied", "0", "a"])
            assert cl.wait_final(tid)["state"] == "failed"
            kept = cl.submit("run", ["kept", "0", "a"])
            assert cl.wait_final(kept)["state"] == "failed"
        run_again_on_b(c, tid)
        with c.client("a") as cl:
            st = cl.status(tid)
            assert st["state"] == "succeeded" and st["node"] == "b" and st["attempts"] == 1, st
            r = cl.call({"op": "wait", "id": tid, "timeout": 5})
            assert r["ok"] is True and r["state"] == "succeeded" and r["node"] == "b", r
            # A copy the row agrees with is still a's own.
            st = cl.status(kept)
            assert st["state"] == "failed" and st["node"] == "a", st
        with c.client("b") as cl:
            assert cl.call({"op": "forget", "id": tid})["ok"] is True
        with c.client("a") as cl:
            r = cl.call({"op": "status", "id": tid})
            assert r["ok"] is False and r["code"] == "not_found", r
    finally:
        c.stop()


def test_a_forget_of_a_finished_copy_deletes_only_the_row_it_copies(db):
    """a keeps the records of runs of its own that failed; b queues two of the rows again and runs
    them, one to success and one to the same failure (state and attempts as a's copy has them, but
    another run), then stops: a is alone again, and answers from memory. A forget on a of a stale copy
    deletes the row only if the row is as the copy has it (its finished_at too): both are refused,
    saying what the row is now, the copies are let go, and b's outcomes stay. Before, a deleted the
    rows b had run since. A forget of a copy still true deletes its row, also when the client does not
    stay for the answer."""
    c = make_cluster(db)
    try:
        for node in ("a", "b"):
            # "twice" fails on any host (each sees NODE=both).
            c.add(node, node_timeout_sec=TIMEOUT, tasks={"twice": {"environment": {"NODE": "both"}}})
        wait_for(lambda: all("2 node(s) alive" in c.log(n) for n in ("a", "b")), 20, what="2 nodes alive")
        with c.client("a") as cl:
            tid = cl.submit("run", ["copied", "0", "a"])
            same = cl.submit("twice", ["twice", "0", "both"])
            kept = cl.submit("run", ["kept", "0", "a"])
            gone = cl.submit("run", ["gone", "0", "a"])
            for i in (tid, same, kept, gone):
                assert cl.wait_final(i)["state"] == "failed"
            assert cl.call({"op": "pause", "task": "twice"})["ok"] is True
        run_again_on_b(c, tid)
        with c.client("b") as cl:
            assert cl.call({"op": "retry", "id": same}) == {"ok": True, "id": same, "state": "queued"}
            wait_for(lambda: cl.status(same)["state"] == "failed", 30, interval=0.1, what="b running it")
        seen = len(c.log("a"))
        c.hosts["b"][1].stop()
        wait_for(lambda: "1 node(s) alive" in c.log("a")[seen:], 30, what="a alone again")
        with c.client("a") as cl:
            for i, now in ((tid, "succeeded"), (same, "failed")):
                r = cl.call({"op": "forget", "id": i})
                assert r["ok"] is False and r["code"] == "bad_request" and f"{now} now" in r["error"], r
                st = cl.status(i)
                assert st["state"] == now and st["node"] == "b", st
            assert cl.call({"op": "forget", "id": kept}) == {"ok": True, "id": kept}
            r = cl.call({"op": "status", "id": kept})
            assert r["ok"] is False and r["code"] == "not_found", r
        # A client that does not stay for the answer: the row is deleted, and a lets go of its record.
        with c.client("a") as cl:
            cl.send_obj({"op": "forget", "id": gone})
        wait_for(lambda: db.sql(f"SELECT COUNT(*) FROM tasks WHERE id = {gone}") == [["0"]], 10,
                 what="the row forgotten")
        with c.client("a") as cl:
            r = cl.call({"op": "status", "id": gone})
            assert r["ok"] is False and r["code"] == "not_found", r
        assert db.sql(f"SELECT state, attempts, node FROM tasks WHERE id IN ({tid}, {same}) ORDER BY id") == \
            [["succeeded", "1", "b"], ["failed", "1", "b"]]
        assert db.sql(f"SELECT COUNT(*) FROM tasks WHERE id = {kept}") == [["0"]]
    finally:
        c.stop()


def test_wait_on_one_node_for_a_task_another_runs(db):
    """wait on a for tasks b runs is answered once b has finished them: the delay from the run's end
    on b (its script's last line) to the answer on a."""
    c = make_cluster(db)
    try:
        two_nodes(c)
        delays = []
        for k in range(5):
            with c.client("b") as cl:
                tid = cl.submit("run", ["waited", str(0.5 + 0.4 * k)])
            with c.client("a", timeout=60) as cl:
                r = cl.call({"op": "wait", "id": tid, "timeout": 30}, timeout=60)
                answered = time.time()
            assert r["ok"] is True and r["state"] == "succeeded" and r["node"] == "b", r
            delays.append(answered - c.times("waited", "end")[tid])
        # Several waits on a at once, polled together.
        with c.client("b") as cl:
            ids = [cl.submit("run", ["many", "1"]) for _ in range(6)]
        clients = [c.client("a", timeout=60) for _ in ids]
        for cl, tid in zip(clients, ids):
            cl.send_obj({"op": "wait", "id": tid, "timeout": 30})
        for cl, tid in zip(clients, ids):
            r = cl.recv(timeout=60)
            assert r["ok"] is True and r["id"] == tid and r["state"] == "succeeded", r
            cl.close()
        print("end on b -> wait answered on a: " + ", ".join(f"{d:.2f} s" for d in sorted(delays)))
        assert max(delays) < 5, delays  # the poll backs off to 1 s; generous for a loaded machine
        # A wait with a timeout for a row still running elsewhere gets its state then.
        with c.client("b") as cl:
            tid = cl.submit("run", ["long", "30"])
        wait_for(lambda: c.runs("long").get("b"), 20, what="the long run on b")
        with c.client("a") as cl:
            r = cl.call({"op": "wait", "id": tid, "timeout": 0.5}, timeout=30)
            assert r["ok"] is True and r["state"] == "running" and r["node"] == "b", r
    finally:
        c.stop()


def every_host_cluster(c, nodes, **main_over):
    for node in nodes:
        c.add(node, tasks={"everywhere": {"on": "every_host"}}, **main_over)
    n = len(nodes)
    wait_for(lambda: all(f"{n} node(s) alive" in c.log(x) for x in nodes), 20, what=f"{n} nodes alive")


def test_every_host_runs_once_on_each_node(db):
    """An every_host task submitted to one of 3 nodes: one run on each, as children of a parent whose
    status and wait (on any node) give all three; the parent fails when one run fails."""
    c = make_cluster(db)
    try:
        every_host_cluster(c, ("a", "b", "c"))
        submitted = time.time()
        with c.client("b") as cl:
            r = cl.call({"op": "submit", "task": "everywhere", "args": ["every", "0.3"]})
        assert r["ok"] is True and r["state"] == "running", r
        parent = r["id"]
        children = {x["node"]: x["id"] for x in r["children"]}
        assert sorted(children) == ["a", "b", "c"], r
        with c.client("c") as cl:
            done = cl.wait_final(parent, timeout=60)
        answered = time.time()
        assert done["state"] == "succeeded" and done["result"] == "success", done
        starts, ends = c.times("every", "start"), c.times("every", "end")
        print("every_host: start after the submission " +
              ", ".join(f"{n} {starts[i] - submitted:.2f} s" for n, i in sorted(children.items())) +
              f"; wait answered {answered - max(ends.values()):.2f} s after the last run's end")
        assert sorted((x["node"], x["id"], x["state"], x["result"]) for x in done["children"]) == \
            sorted((n, i, "succeeded", "success") for n, i in children.items()), done
        runs = c.runs("every")
        assert {n: [i for i, _ in r] for n, r in runs.items()} == {n: [i] for n, i in children.items()}, runs
        with c.client("a") as cl:
            st = cl.status(parent)
        assert st["state"] == "succeeded" and len(st["children"]) == 3, st
        assert db.sql(f"SELECT state, node FROM tasks WHERE id = {parent}") == [["succeeded", "*"]]

        # One run fails (exit 7 on c): the parent fails, and says which run did.
        with c.client("a") as cl:
            r = cl.call({"op": "submit", "task": "everywhere", "args": ["everyfail", "0", "c"]})
            assert r["ok"] is True, r
            done = cl.wait_final(r["id"], timeout=60)
        assert done["state"] == "failed" and done["result"] == "runs-failed", done
        states = {x["node"]: (x["state"], x.get("result")) for x in done["children"]}
        assert states == {"a": ("succeeded", "success"), "b": ("succeeded", "success"),
                          "c": ("failed", "exit-code")}, states
        # A parent is neither cancelled nor retried itself.
        with c.client("a") as cl:
            refused = cl.call({"op": "cancel", "id": r["id"]})
        assert refused["ok"] is False and refused["code"] == "bad_request", refused
    finally:
        c.stop()


def test_every_host_parent_finishes_with_its_last_run(db):
    """The host that writes the last run's result finishes the parent in that transaction: with
    heartbeats 10 s apart, the leader's sweep (at a heartbeat) cannot be what finished it."""
    c = make_cluster(db)
    try:
        every_host_cluster(c, ("a", "b"), heartbeat_sec=10)
        with c.client("a") as cl:
            r = cl.call({"op": "submit", "task": "everywhere", "args": ["last"]})
            assert r["ok"] is True and len(r["children"]) == 2, r
            done = cl.wait_final(r["id"], timeout=60)
        answered = time.time()
        assert done["state"] == "succeeded", done
        late = answered - max(c.times("last", "end").values())
        print(f"every_host: parent final {late:.2f} s after its last run ended (heartbeat_sec 10)")
        assert late < 5, late
    finally:
        c.stop()


def test_every_host_leaves_out_a_dead_node(db):
    """With one node killed (-9) past node_timeout_sec before the submission, only the live ones get a
    run."""
    c = make_cluster(db)
    try:
        every_host_cluster(c, ("a", "b", "c"), node_timeout_sec=TIMEOUT)
        c.hosts["c"][1].kill_all()
        time.sleep(TIMEOUT + 1)
        with c.client("a") as cl:
            r = cl.call({"op": "submit", "task": "everywhere", "args": ["alive"]})
            assert r["ok"] is True, r
            assert sorted(x["node"] for x in r["children"]) == ["a", "b"], r
            done = cl.wait_final(r["id"], timeout=60)
        assert done["state"] == "succeeded" and len(done["children"]) == 2, done
        assert sorted(c.runs("alive")) == ["a", "b"]
    finally:
        c.stop()


def test_every_host_run_of_a_node_killed_after_submission_is_lost(db):
    """A node killed (-9) while its run of an every_host task goes on: once it is taken for dead, the
    leader fails that run with result lost (no other node may run it), the others finish, and the
    parent fails."""
    c = make_cluster(db)
    try:
        every_host_cluster(c, ("a", "b", "c"), node_timeout_sec=TIMEOUT)
        with c.client("a") as cl:
            r = cl.call({"op": "submit", "task": "everywhere", "args": ["everylost", "4"]})
        assert r["ok"] is True, r
        parent = r["id"]
        wait_for(lambda: "c" in c.runs("everylost"), 20, what="c's run started")
        c.hosts["c"][1].kill_all()
        with c.client("b") as cl:
            done = cl.wait_final(parent, timeout=60)
        assert done["state"] == "failed" and done["result"] == "runs-failed", done
        states = {x["node"]: (x["state"], x.get("result")) for x in done["children"]}
        assert states == {"a": ("succeeded", "success"), "b": ("succeeded", "success"),
                          "c": ("failed", "lost")}, states
        time.sleep(2 * HEARTBEAT + 1)
        assert sorted(c.runs("everylost")) == ["a", "b", "c"] and len(c.runs("everylost")["c"]) == 1, \
            "c's run is not run again elsewhere"
    finally:
        c.stop()


# bench/cluster-scaling: the rows of each case (0: skipped, as in the suite) and the rounds.
BENCH_ROWS = int(os.environ.get("ASYNCTASK_CLUSTER_BENCH_ROWS", "0"))
BENCH_SLEEP_ROWS = int(os.environ.get("ASYNCTASK_CLUSTER_BENCH_SLEEP_ROWS", "0"))
BENCH_ROUNDS = int(os.environ.get("ASYNCTASK_CLUSTER_BENCH_ROUNDS", "1"))
BENCH_ONLY = os.environ.get("ASYNCTASK_CLUSTER_BENCH_CASES", "").split()
# The cases: what the database and the claim path sustain when every node shares the same CPUs
# (/bin/true, CPU-bound), and nodes each limited by something of their own rather than the CPU (4
# runs at a time, each sleeping: as a host's PID 1 start rate or its cores would limit it), where n
# nodes can reach n times one if claims do not serialize them. With runs of 50 ms a node may do 80
# a second, and three 240, more than the shared CPUs sustain (the first case); with runs of 200 ms,
# 20 and 60, well under it.
BENCH_CASES = {
    "true": {"task": {"exec": ["/bin/true"], "max_args": 0}, "max_running": 16, "rows": BENCH_ROWS},
    "sleep50ms": {"task": {"exec": ["/bin/sleep", "0.05"], "max_args": 0}, "max_running": 4,
                  "rows": BENCH_SLEEP_ROWS},
    "sleep200ms": {"task": {"exec": ["/bin/sleep", "0.2"], "max_args": 0}, "max_running": 4,
                   "rows": BENCH_SLEEP_ROWS // 3},
}
# "true-capped": the CPU-bound case again, each node (its front, its launcher and every run they start)
# held to BENCH_CPU_QUOTA of a CPU by a cgroup of its own, as if each were a machine with that much
# CPU: 3 nodes take 3 times a node's CPU, the database takes the rest. What it measures is whether the
# shared queue lets n such hosts do n times the work of one. Needs root and a cpu controller (cgroup v1's
# cpu hierarchy, or v2's cpu.max; bench/cluster-scaling sets it when it can).
BENCH_CPU_QUOTA = float(os.environ.get("ASYNCTASK_CLUSTER_BENCH_CPU_QUOTA", "0"))
if BENCH_CPU_QUOTA > 0:
    BENCH_CASES["true-capped"] = {"task": {"exec": ["/bin/true"], "max_args": 0}, "max_running": 16,
                                  "rows": BENCH_ROWS // 3, "cpu_quota": BENCH_CPU_QUOTA}


class CpuCap:
    """A cpu cgroup per node, each with a quota of `quota` CPUs; removed on exit."""

    V1 = "/sys/fs/cgroup/cpu"
    V2 = "/sys/fs/cgroup"

    def __init__(self, quota):
        self.quota = quota
        self.groups = []
        self.root = self.V1 if os.path.isdir(self.V1) else self.V2

    def cap(self, node, pids):
        path = os.path.join(self.root, f"asynctask-bench-{os.getpid()}-{node}")
        os.makedirs(path, exist_ok=True)
        self.groups.append(path)
        if self.root == self.V1:
            with open(os.path.join(path, "cpu.cfs_period_us"), "w") as f:
                f.write("100000")
            with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as f:
                f.write(str(int(self.quota * 100000)))
        else:
            with open(os.path.join(self.root, "cgroup.subtree_control"), "w") as f:
                f.write("+cpu")
            with open(os.path.join(path, "cpu.max"), "w") as f:
                f.write(f"{int(self.quota * 100000)} 100000")
        for pid in pids:
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(pid))

    def throttled(self):
        """{group: seconds throttled} (what the cap took away)."""
        out = {}
        for path in self.groups:
            with open(os.path.join(path, "cpu.stat")) as f:
                stat = dict(line.split() for line in f)
            usec = int(stat["throttled_usec"]) if "throttled_usec" in stat else int(stat.get("throttled_time", 0)) // 1000
            out[os.path.basename(path)] = round(usec / 1e6, 1)
        return out

    def close(self):
        for path in self.groups:
            try:
                with open(os.path.join(path, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        with open(os.path.join(self.root, "cgroup.procs"), "w") as g:
                            g.write(pid)
                os.rmdir(path)
            except OSError:
                pass


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def claim_rows(db, case, n):
    """Starts n nodes, inserts the case's rows unclaimed and due, and times until the last is final."""
    spec = BENCH_CASES[case]
    rows = spec["rows"]
    c = make_cluster(db)
    caps = CpuCap(spec["cpu_quota"]) if spec.get("cpu_quota") else None
    try:
        names = [f"n{i}" for i in range(1, n + 1)]
        for node in names:
            _, d = c.add(node, tasks={case: spec["task"]}, log_level="info", max_running=spec["max_running"])
            if caps:
                caps.cap(node, [d.front.pid, d.launcher.pid])
        wait_for(lambda: all(f"{n} node(s) alive" in c.log(x) for x in names), 30, what="nodes alive")
        load_before = loadavg()
        start = time.monotonic()
        db.sql("INSERT INTO tasks (id, task, args, submitter, state, max_attempts, created_at, run_after)"
               f" SELECT 5000000 + seq, '{case}', '[]', 'uid:0', 'queued', 1, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)"
               f" FROM seq_1_to_{rows}")
        wait_for(lambda: rows_by_state(db).get("succeeded", 0) == rows, 900, interval=0.25, what="every row run")
        elapsed = time.monotonic() - start
        by_node = {k: int(v) for k, v in db.sql("SELECT node, COUNT(*) FROM tasks GROUP BY node")}
        again = int(db.sql("SELECT COUNT(*) FROM tasks WHERE attempts != 1")[0][0])
        assert again == 0, f"{again} rows were run more than once"
        out = {"nodes": n, "rows": rows, "seconds": round(elapsed, 2), "per_second": round(rows / elapsed, 1),
               "by_node": by_node, "loadavg_before": load_before, "loadavg_after": loadavg()}
        if caps:
            out["cpu_quota"] = caps.quota
            out["throttled_seconds"] = caps.throttled()
        return out
    finally:
        c.stop()
        if caps:
            caps.close()


def test_claims_scaling(db):
    """bench/cluster-scaling: for each case, 1, 2 and 3 nodes (front, launcher, direct executor) take
    and run the case's unclaimed due rows; rows per second, the ratios to one node and the load
    average, all in one run. Skipped unless ASYNCTASK_CLUSTER_BENCH_ROWS is set."""
    import json

    import pytest

    if BENCH_ROWS <= 0:
        pytest.skip("a benchmark: set ASYNCTASK_CLUSTER_BENCH_ROWS (bench/cluster-scaling)")
    results = {"cpus": os.cpu_count(), "loadavg_start": loadavg(), "runs": []}
    for rnd in range(BENCH_ROUNDS):
        for case, spec in BENCH_CASES.items():
            if spec["rows"] <= 0 or (BENCH_ONLY and case not in BENCH_ONLY):
                continue
            for n in (1, 2, 3):
                r = claim_rows(db, case, n)
                r.update(case=case, round=rnd + 1)
                results["runs"].append(r)
                print(f"round {rnd + 1} {case}: {n} node(s), {r['rows']} rows in {r['seconds']:.2f} s, "
                      f"{r['per_second']:.0f}/s, {r['by_node']}, load {r['loadavg_before']}")
    results["loadavg_end"] = loadavg()
    ratios = {}
    for r in results["runs"]:
        one = next(x for x in results["runs"] if (x["case"], x["round"], x["nodes"]) == (r["case"], r["round"], 1))
        ratios.setdefault(r["case"], {}).setdefault(str(r["nodes"]), []).append(
            round(r["per_second"] / one["per_second"], 2))
    results["ratio_to_one_node"] = ratios
    print(f"ratios to one node: {ratios}; load {results['loadavg_start']} -> {results['loadavg_end']}")
    if os.environ.get("ASYNCTASK_BENCH_OUT"):
        with open(os.environ["ASYNCTASK_BENCH_OUT"], "w") as f:
            json.dump(results, f, indent=1)
