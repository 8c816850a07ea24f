# SPDX-License-Identifier: MIT
"""Several hosts on one database (docs/cluster.md): several front+launcher pairs, each with its own
"node" name, config, sockets and direct executor, on one private MariaDB. Each task writes what it did
to a file of a directory all of them share, named after the node that ran it, so that every run is
counted whichever host made it. ASYNCTASK_CLUSTER_TASKS sets the size of the exactly-once run
(10,000 here)."""

import os
import re
import shutil
import signal
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

    def add(self, node, tasks=None, **main_over):
        env = Env()
        script = env.script("run", f"SHARED='{self.shared}'\n" + RUN_SCRIPT)
        main = base_main(env, node=node, heartbeat_sec=HEARTBEAT, **main_over)
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
        d = Daemons(env, log_level="debug")
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
        clients = [c.client(n, timeout=60) for n in ("n1", "n2", "n3")]
        ids = []
        per = TASKS // 3
        for k, cl in enumerate(clients):
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
        for cl in clients:
            cl.close()
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


BENCH_ROWS = int(os.environ.get("ASYNCTASK_CLUSTER_BENCH_ROWS", "0"))


def test_claims_per_second(db):
    """bench/cluster-claims: BENCH_ROWS unclaimed due rows of a /bin/true task, taken and run by 1, 2
    and 3 nodes (max_running 16 each, direct executor); the time from the insert until the last row
    is final. Skipped unless ASYNCTASK_CLUSTER_BENCH_ROWS is set."""
    import pytest

    if BENCH_ROWS <= 0:
        pytest.skip("a benchmark: set ASYNCTASK_CLUSTER_BENCH_ROWS (bench/cluster-claims)")
    results = {}
    for n in (1, 2, 3):
        c = make_cluster(db)
        try:
            names = [f"n{i}" for i in range(1, n + 1)]
            for node in names:
                c.add(node, tasks={"true": {"exec": ["/bin/true"], "max_args": 0}})
            wait_for(lambda: all(f"{n} node(s) alive" in c.log(x) for x in names), 20, what="nodes alive")
            start = time.monotonic()
            db.sql("INSERT INTO tasks (id, task, args, submitter, state, max_attempts, created_at, run_after)"
                   f" SELECT 5000000 + seq, 'true', '[]', 'uid:0', 'queued', 1, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)"
                   f" FROM seq_1_to_{BENCH_ROWS}")
            wait_for(lambda: rows_by_state(db).get("succeeded", 0) == BENCH_ROWS, 600, interval=0.1,
                     what="every row run")
            elapsed = time.monotonic() - start
            by_node = {k: int(v) for k, v in db.sql("SELECT node, COUNT(*) FROM tasks GROUP BY node")}
            results[n] = {"seconds": round(elapsed, 2), "per_second": round(BENCH_ROWS / elapsed, 1),
                          "by_node": by_node}
            print(f"{n} node(s): {BENCH_ROWS} rows in {elapsed:.2f} s, {BENCH_ROWS / elapsed:.0f}/s, {by_node}")
        finally:
            c.stop()
    with open("/proc/loadavg") as f:
        results["loadavg"] = f.read().split()[:3]
    if os.environ.get("ASYNCTASK_BENCH_OUT"):
        import json

        with open(os.environ["ASYNCTASK_BENCH_OUT"], "w") as f:
            json.dump(results, f, indent=1)
