# SPDX-License-Identifier: MIT
"""The MySQL store on a 3-node MariaDB Galera cluster (the `galera` fixture, galera_cluster.py): one
asynctaskd (direct executor) per database node, each with its own option file naming its node and its
own `node` name, all sharing one queue through the database Galera replicates.

What is tested: the schema is created through a Galera node and replicated (every table with a primary
key); what each front commits is on every node; exactly once across three database nodes (conflicting
claims settled by certification); and what the fronts do when a database node is killed (the front on
it answers `unavailable` and recovers when it rejoins, a front on another node goes on, a front whose
option file names a list of hosts fails over to the next one) or cut off by a partition. The times
are printed (pytest -s) for docs/cluster.md."""

import os
import time

import pytest

from conftest import ALLOW, Client, Daemons, Env, TASK_USER, standard_config, wait_for, wait_for_count
from test_faults import Load, read_runs

# Reads on another node than the one written see the write once it is applied there: Galera is
# synchronous up to certification, not up to apply. wsrep_sync_wait=1 makes a read wait for it.
SYNC_READ = "SET SESSION wsrep_sync_wait = 1; "

REC_SCRIPT = """#!/bin/bash
echo "S $ASYNCTASK_ID $EPOCHREALTIME $ASYNCTASK_ATTEMPT $PPID" >> "{log}"
sleep {seconds}
echo "E $ASYNCTASK_ID $EPOCHREALTIME $ASYNCTASK_ATTEMPT $PPID" >> "{log}"
"""
# Runs that are under way on a front when its database node dies: they outlast the kill.
SLOW_SECONDS = 5


class Host:
    """One front+launcher pair (its own Env) whose store is a Galera node, or a list of them."""

    def __init__(self, option_file, **main_over):
        self.env = Env()
        main, tasks = standard_config(self.env, max_connections=128, **main_over)
        for name, seconds in (("rec", 0.05), ("slow", SLOW_SECONDS)):
            path = self.env.script(name, "")
            with open(path, "w") as f:
                f.write(REC_SCRIPT.format(log=self.env.ev_path("runs.log"), seconds=seconds))
            tasks[name] = {"exec": [path], "max_args": 1, "user": TASK_USER, "allow": ALLOW, "max_attempts": 3,
                           "backoff_sec": [1]}
        # The same run, never run twice: a run its host lost is failed, not queued again.
        tasks["slow_once"] = dict(tasks["slow"], on_lost="fail")
        main["store"] = {"type": "mysql", "option_file": option_file, "group": "asynctask"}
        self.env.write_config(main, tasks)
        self.daemons = Daemons(self.env)

    def start(self):
        self.daemons.start()
        return self

    def client(self, **kw):
        return self.env.client(**kw)

    def close(self, check=True):
        try:
            self.daemons.stop(check=check)
        finally:
            self.daemons.kill_all()
            self.env.cleanup()


@pytest.fixture
def hosts(galera):
    """Factory: hosts(option_file) starts a front+launcher on it; all are stopped (exit 0 checked)
    after the test. The database starts empty."""
    galera.reset()
    started = []

    def start(option_file, **main_over):
        h = Host(option_file, **main_over)
        started.append(h)
        return h.start()

    yield start
    errors = []
    for h in started:
        try:
            h.close()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


def table_names(node):
    return sorted(r[0] for r in node.sql("SELECT table_name FROM information_schema.tables "
                                         "WHERE table_schema = 'asynctask'"))


def test_schema_is_created_through_one_node_and_replicated_with_primary_keys(galera, hosts):
    """The first front creates the schema through node 1 (under its GET_LOCK, which Galera keeps on
    that node alone: fine, since the DDL itself is replicated in total order); every node then has
    the same tables, each InnoDB and with a primary key (Galera needs one to apply rows on the other
    nodes; without one, deletes and updates replicate wrongly or not at all)."""
    n1, n2, n3 = galera.nodes
    hosts(n1.cnf)
    tables = table_names(n1)
    assert {"asynctask_schema", "tasks", "paused_tasks"} <= set(tables), tables
    version = n1.sql("SELECT version FROM asynctask_schema WHERE id = 1")
    for node in (n2, n3):
        assert node.sql(SYNC_READ + "SELECT version FROM asynctask_schema WHERE id = 1") == version
        assert table_names(node) == tables, node.name
    for node in galera.nodes:
        rows = node.sql("SELECT t.table_name, t.engine, "
                        "(SELECT COUNT(*) FROM information_schema.table_constraints c "
                        " WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name "
                        " AND c.constraint_type = 'PRIMARY KEY') "
                        "FROM information_schema.tables t WHERE t.table_schema = 'asynctask'")
        for name, engine, pks in rows:
            assert engine == "InnoDB", f"{node.name}: {name} is {engine}"
            assert pks == "1", f"{node.name}: {name} has no primary key"
    # A second front on another node finds the schema current and migrates nothing.
    h2 = hosts(n2.cnf)
    assert "migrating" not in open(h2.daemons.front_log).read()


def test_what_each_front_commits_is_on_every_node(galera, hosts):
    """A front per node, each submitting 20 tasks: every one runs once, on the front that took it,
    and every node has the same final rows (read with wsrep_sync_wait)."""
    ids = {}
    fronts = []
    for k, node in enumerate(galera.nodes):
        h = hosts(node.cnf, node=f"host{k + 1}")
        fronts.append(h)
        with h.client() as c:
            ids[k] = [c.submit("rec", [f"f{k}-{i}"]) for i in range(20)]
            for tid in ids[k]:
                assert c.wait_final(tid, timeout=60)["state"] == "succeeded"
    everything = sorted(i for v in ids.values() for i in v)
    assert len(set(everything)) == 60
    for k, h in enumerate(fronts):
        runs = read_runs(h.env)
        assert sorted(runs) == sorted(ids[k]), f"front {k} ran other tasks than its own"
        assert all(len(v) == 1 for v in runs.values()), f"front {k} ran a task twice"
    listing = ",".join(map(str, everything))
    want = [[str(i), "succeeded", "1"] for i in everything]
    for node in galera.nodes:
        got = node.sql(SYNC_READ + f"SELECT id, state, attempts FROM tasks WHERE id IN ({listing}) ORDER BY id")
        assert got == want, f"{node.name} has other rows"


def failover_option_file(galera, path, order):
    """An option file whose host is a list ("h:p,h:p"): Connector/C (3.3 and later) tries each in
    turn when it connects, so a reconnect after the first node died goes to the next."""
    hostlist = ",".join(f"127.0.0.1:{galera.nodes[i].port}" for i in order)
    with open(path, "w") as f:
        f.write(f"[asynctask]\nhost={hostlist}\nuser=asynctask\npassword=test-password\ndatabase=asynctask\n")
    os.chmod(path, 0o644)
    return path


def first_error_after(load, kind, t):
    with load.lock:
        times = [x for x in load.error_times.get(kind, []) if x >= t]
    return min(times) if times else None


def acked_between(load, t0, t1):
    with load.lock:
        return [i for i, when in load.acked if t0 <= when < t1]


def longest_gap(load, t0, t1):
    """The longest time without an acknowledgement between t0 and t1 (the load acks many a second)."""
    with load.lock:
        times = sorted(when for _, when in load.acked if t0 <= when <= t1)
    edges = [t0] + times + [t1]
    return max(b - a for a, b in zip(edges, edges[1:]))


def start_loads(fronts, what):
    """A steady load on each front, started and seen acknowledging; ({name: Load}, errors so far)."""
    loads = {name: Load(h.env, clients=2, per_client_rate=15.0) for name, h in fronts.items()}
    for load in loads.values():
        load.__enter__()
    for load in loads.values():
        load.wait_acks(30, 60, f"submissions before the {what}")
    return loads, {name: dict(load.errors) for name, load in loads.items()}


def runs_anywhere(fronts):
    """{id: [run, ...]} over every front's runs.log: with one queue, a task may run on any front."""
    out = {}
    for h in fronts.values():
        for tid, v in read_runs(h.env).items():
            out.setdefault(tid, []).extend(v)
    return out


def wait_every_task_ran(fronts, ids):
    """Waits until each of ids has ended a run on some front and every front is idle and alive."""
    wait_for_count(lambda: sum(1 for i in ids if any(r[1] is not None for r in runs_anywhere(fronts).get(i, []))),
                   len(ids), stall=90, interval=0.5, what="acknowledged tasks that ended a run")
    for name, h in fronts.items():
        assert h.daemons.front.poll() is None, f"front {name} exited"
        wait_for(lambda: h.daemons.stats().get("queued", 1) == 0 and h.daemons.stats().get("running", 1) == 0,
                 90, 0.5, what=f"front {name} idle")


def wait_final_everywhere(galera, ids):
    """Waits until every node of the cluster has each of ids final."""
    listing = ",".join(map(str, ids))

    def final_everywhere():
        for node in galera.nodes:
            rows = node.sql(SYNC_READ + f"SELECT COUNT(*) FROM tasks WHERE id IN ({listing}) "
                            "AND state IN ('succeeded', 'failed')")
            if int(rows[0][0]) != len(ids):
                return False
        return True

    wait_for(final_everywhere, 60, 0.5, what="every acknowledged task final on every node")


def test_a_database_node_killed_under_load(galera, hosts):
    """Three fronts under a steady load: A on node 1 alone, B on node 2 alone, C with the host list
    node 1, node 3. Node 1 is killed with SIGKILL, then, once the others' leader has taken A for dead,
    started again, and it rejoins.

    A answers `unavailable` within seconds (no hang, no crash, no other error), and takes submissions
    again once node 1 is back; what it acknowledged before is on the other nodes. B goes on, after a
    pause while the cluster has not yet excluded node 1 (Galera's evs.suspect_timeout). C reconnects
    to node 3 and goes on. Every acknowledged task runs, and each node ends with the same rows.

    A's database is gone for longer than node_timeout_sec, so the others' leader takes A for dead:
    the slow runs under way on A at the kill run again, on any host (on_lost retry), or fail as lost
    (on_lost fail), and A's late results are refused by the fence. Each task of the stream runs once,
    or twice when its run on A was lost so (each run an attempt of its row)."""
    n1, n2, n3 = galera.nodes
    # Each front its own node name: fronts sharing one would take each other's claims as their own.
    a = hosts(n1.cnf, node="A")
    b = hosts(n2.cnf, node="B")
    c = hosts(failover_option_file(galera, os.path.join(galera.dir, "failover.cnf"), [0, 2]), node="C")
    fronts = {"A": a, "B": b, "C": c}
    loads, times = {}, {}
    try:
        loads, before = start_loads(fronts, "fault")
        for load in loads.values():
            load.acked_before_kill = len(load.acked_ids())
        # Runs under way on A when its node dies: they end while A cannot write their results.
        with a.client() as cl:
            in_flight = {cl.submit("slow", ["retry"]): "retry", cl.submit("slow", ["retry"]): "retry",
                         cl.submit("slow_once", ["fail"]): "fail"}
        wait_for(lambda: set(in_flight) <= set(read_runs(a.env)), 60, 0.1, what="A running the slow tasks")
        t_kill = time.time()
        n1.kill9()
        t_a_refused = wait_for(lambda: first_error_after(loads["A"], "unavailable", t_kill), 60, 0.05,
                               what="front A answering unavailable")
        times["A: first unavailable after the kill"] = t_a_refused - t_kill
        for name in ("B", "C"):
            t = loads[name].wait_acks(20, 120, f"front {name} acknowledging after the kill")
            times[f"{name}: 20 acks after the kill"] = t - t_kill
        galera.wait_size(2)
        times["cluster of 2 (node 1 excluded)"] = time.time() - t_kill
        acked_a_before = [i for i in loads["A"].acked_ids()]
        listing = ",".join(map(str, acked_a_before))
        on_n2 = {int(r[0]) for r in n2.sql(SYNC_READ + f"SELECT id FROM tasks WHERE id IN ({listing})")}
        assert on_n2 == set(acked_a_before), "what A acknowledged before the kill is on node 2"
        # Node 1 stays down until the others' leader has taken A for dead: no heartbeat of A's for
        # node_timeout_sec (30), counted from when the cluster took commits again (the view change
        # held B's and C's writes too). On a quiet machine node 1 would be back before that.
        def others_log():
            return "".join(open(h.daemons.front_log, errors="replace").read() for h in (b, c))

        wait_for(lambda: "Node A is dead" in others_log(), 180, 0.5, what="the leader taking A for dead")
        times["A taken for dead"] = time.time() - t_kill
        t_start = time.time()
        rejoin = galera.rejoin(n1)
        times["node 1 start to synced in 3"] = rejoin
        t_synced = time.time()
        t_a_back = loads["A"].wait_acks(1, 120, "front A acknowledging once node 1 is back")
        times["A: first ack after node 1 started"] = t_a_back - t_start
        times["A: first ack after node 1 synced"] = t_a_back - t_synced
        times["A: unavailable for"] = t_a_back - t_a_refused
        for load in loads.values():
            load.wait_acks(20, 60, "submissions after the recovery")
    finally:
        for load in loads.values():
            load.stop()
    times["B: longest time without an ack around the kill"] = longest_gap(loads["B"], t_kill - 1, t_kill + 60)
    times["C: longest time without an ack around the kill"] = longest_gap(loads["C"], t_kill - 1, t_kill + 60)
    print("\nGALERA node 1 killed: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    print("GALERA errors: " + "; ".join(f"{n} {dict(load.errors)}" for n, load in loads.items()))
    for name, h in fronts.items():
        with open(h.daemons.front_log, errors="replace") as f:
            said = [line.rstrip() for line in f if "mysql:" in line and "debug:" not in line]
        print(f"GALERA front {name} said:\n  " + "\n  ".join(said[-12:]))

    # Three fronts writing at once on three nodes: Galera aborts some of their transactions as
    # deadlocks (certification, or a local one in the way of a replicated one); run again, they
    # commit. A client may meet `unavailable` only when one loses for 3 s in a row, which a loaded
    # machine sees now and then: at most 2% of the submissions (without the retry it was most of them).
    for name, errors in before.items():
        assert set(errors) <= {"unavailable"}, f"errors before the kill: {before}"
        assert errors.get("unavailable", 0) <= 0.02 * loads[name].acked_before_kill, \
            f"errors before the kill: {before}, acknowledged {loads[name].acked_before_kill}"
    assert set(loads["A"].errors) == {"unavailable"}, dict(loads["A"].errors)
    assert not acked_between(loads["A"], t_a_refused + 1, t_start), "A acknowledged while node 1 was down"
    for name in ("B", "C"):
        assert set(loads[name].errors) <= {"unavailable"}, (name, dict(loads[name].errors))
    # One queue: a front cut off from the database for longer than node_timeout_sec (A, while node 1
    # was down and then syncing) is taken for dead by the others, whose leader queues its runs again
    # for them; so an acknowledged task may end its run on any front. Count every front's runs.
    everything = sorted(i for load in loads.values() for i in load.acked_ids())
    wait_every_task_ran(fronts, everything)
    moved = {name: sum(1 for i in loads[name].acked_ids() if i not in read_runs(h.env)) for name, h in fronts.items()}
    print(f"GALERA acknowledged tasks run by another front than the one that took them: {moved}")

    # A's database was gone for longer than node_timeout_sec: the leader took A for dead, queued
    # its running tasks again (on_lost retry) or failed them (on_lost fail), and the others claimed
    # A's queued ones. A's own late results were refused by the fence when its node came back.
    a_log = open(a.daemons.front_log, errors="replace").read()

    def final_slow_rows():
        return {int(r[0]): r[1:] for r in n2.sql(
            SYNC_READ + "SELECT id, state, result, attempts, node FROM tasks "
            f"WHERE id IN ({','.join(map(str, in_flight))}) AND state IN ('succeeded', 'failed')")}

    wait_for(lambda: len(final_slow_rows()) == len(in_flight), 120, 0.5, what="the slow tasks final")
    slow_rows = final_slow_rows()
    print(f"GALERA runs under way on A at the kill: {slow_rows}")
    for tid, on_lost in in_flight.items():
        assert f"Task {tid} is no longer this node's" in a_log, f"A's late result of {tid} was not fenced"
        if on_lost == "retry":
            # Run again by whichever host claimed the queued row first: A too, once it was back.
            assert slow_rows[tid][:3] == ["succeeded", "success", "2"], f"{tid}: {slow_rows[tid]}"
            assert sorted(r[2] for r in runs_anywhere(fronts)[tid]) == ["1", "2"], runs_anywhere(fronts)[tid]
        else:
            assert slow_rows[tid][:3] == ["failed", "lost", "1"], f"{tid} (on_lost fail): {slow_rows[tid]}"
            assert len(runs_anywhere(fronts)[tid]) == 1, f"{tid} (on_lost fail) ran again"

    wait_final_everywhere(galera, everything)

    # Exactly once for the stream: a task acknowledged anywhere ran once, unless its run was under
    # way on A when A was taken for dead (at least once with on_lost retry): then its row counts
    # both runs as attempts and A logged its late result as fenced.
    runs = runs_anywhere(fronts)
    twice = {i: runs[i] for i in everything if len(runs[i]) > 1}
    print(f"GALERA acknowledged tasks run twice (under way on A at the kill): {len(twice)} of {len(everything)}")
    for tid, v in twice.items():
        assert len(v) == 2 and min(r[0] for r in v) < t_kill + 1, f"{tid} ran twice, not from a run lost with A: {v}"
        assert f"Task {tid} is no longer this node's" in a_log, f"{tid} ran twice without A's result fenced"
    listing = ",".join(map(str, everything))
    attempts = {int(i): int(n)
                for i, n in n2.sql(SYNC_READ + f"SELECT id, attempts FROM tasks WHERE id IN ({listing})")}
    counted = {i: n for i, n in attempts.items() if n != len(runs[i])}
    assert not counted, f"rows whose attempts are not their runs: {list(counted.items())[:5]}"


def test_a_database_node_cut_off_by_a_partition(galera, hosts):
    """Node 1 is cut off from the other two (Galera's gmcast.isolate: it closes its links to them and
    takes none) while it stays up and takes connections: a partition, not a crash. A on node 1 and B
    on node 2 are under a steady load.

    Node 1 falls out of the primary component and answers every statement with "WSREP has not yet
    prepared node for application use": A answers `unavailable` within seconds (no hang, no other
    error) and takes submissions again once node 1 is back in the cluster and synced; B goes on. What
    A acknowledged before the cut is on node 2, every acknowledged task runs, and each node ends with
    the same rows. A task runs twice only if A was taken for dead meanwhile (its run lost, run again
    elsewhere, A's late result fenced). (A host list would not move A: node 1 still takes
    connections; docs/cluster.md says so.)"""
    n1, n2, _ = galera.nodes
    a = hosts(n1.cnf, node="A")
    b = hosts(n2.cnf, node="B")
    fronts = {"A": a, "B": b}
    loads, times = {}, {}
    try:
        loads, before = start_loads(fronts, "partition")
        acked_before = {name: len(load.acked_ids()) for name, load in loads.items()}
        t_cut = time.time()
        n1.sql("SET GLOBAL wsrep_provider_options = 'gmcast.isolate=1'", database="mysql")
        t_a_refused = wait_for(lambda: first_error_after(loads["A"], "unavailable", t_cut), 60, 0.05,
                               what="front A answering unavailable")
        times["A: first unavailable after the cut"] = t_a_refused - t_cut
        assert n1.status("wsrep_cluster_status") != "Primary", "node 1 is still in the primary component"
        acked_a = loads["A"].acked_ids()
        t = loads["B"].wait_acks(20, 120, "front B acknowledging after the cut")
        times["B: 20 acks after the cut"] = t - t_cut
        galera.nodes[1].wait_synced(2)
        times["cluster of 2 (node 1 excluded)"] = time.time() - t_cut
        listing = ",".join(map(str, acked_a))
        on_n2 = {int(r[0]) for r in n2.sql(SYNC_READ + f"SELECT id FROM tasks WHERE id IN ({listing})")}
        assert on_n2 == set(acked_a), "what A acknowledged before the cut is on node 2"
        t_heal = time.time()
        n1.sql("SET GLOBAL wsrep_provider_options = 'gmcast.isolate=0'", database="mysql")
        galera.wait_size(3)
        times["node 1 back and synced in 3"] = time.time() - t_heal
        t_a_back = loads["A"].wait_acks(1, 120, "front A acknowledging once node 1 is back")
        times["A: first ack after the partition healed"] = t_a_back - t_heal
        times["A: unavailable for"] = t_a_back - t_a_refused
        for load in loads.values():
            load.wait_acks(20, 60, "submissions after the partition")
    finally:
        for load in loads.values():
            load.stop()
        if n1.running():
            n1.sql("SET GLOBAL wsrep_provider_options = 'gmcast.isolate=0'", database="mysql")
    times["B: longest time without an ack, the cut to the heal"] = longest_gap(loads["B"], t_cut - 1, t_heal)
    print("\nGALERA node 1 cut off: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    print("GALERA errors: " + "; ".join(f"{n} {dict(load.errors)}" for n, load in loads.items()))

    for name, errors in before.items():
        assert set(errors) <= {"unavailable"}, f"errors before the cut: {before}"
        assert errors.get("unavailable", 0) <= 0.02 * acked_before[name], f"errors before the cut: {before}"
    assert set(loads["A"].errors) == {"unavailable"}, dict(loads["A"].errors)
    assert not acked_between(loads["A"], t_a_refused + 1, t_heal), "A acknowledged while node 1 was cut off"
    assert set(loads["B"].errors) <= {"unavailable"}, dict(loads["B"].errors)
    everything = sorted(i for load in loads.values() for i in load.acked_ids())
    wait_every_task_ran(fronts, everything)
    wait_final_everywhere(galera, everything)
    a_log = open(a.daemons.front_log, errors="replace").read()
    runs = runs_anywhere(fronts)
    for tid in everything:
        if len(runs[tid]) > 1:
            assert len(runs[tid]) == 2 and f"Task {tid} is no longer this node's" in a_log, \
                f"{tid} ran twice without A's run fenced: {runs[tid]}"


def test_exactly_once_across_three_database_nodes(galera, hosts):
    """The exactly-once check on Galera: 3 fronts, each on its own database node and with its own
    `node` name, 600 tasks submitted round-robin; each runs exactly once, and on more than one host.
    Conflicting claims on different database nodes are settled by Galera's certification (a
    deadlock error at commit, retried)."""
    fronts = [hosts(node.cnf, node=f"host{k + 1}") for k, node in enumerate(galera.nodes)]
    clients = [h.client() for h in fronts]
    ids = []
    try:
        for i in range(600):
            ids.append(clients[i % 3].submit("rec", [f"r{i}"]))
    finally:
        for cl in clients:
            cl.close()
    assert len(set(ids)) == len(ids), "ids are unique across hosts"

    def runs_by_id():
        out = {}
        for k, h in enumerate(fronts):
            for tid, v in read_runs(h.env).items():
                out.setdefault(tid, []).extend((k, r) for r in v)
        return out

    wait_for(lambda: len(runs_by_id()) >= len(ids), 300, 0.5, what="every task run")
    for h in fronts:
        wait_for(lambda: h.daemons.stats().get("queued", 1) == 0 and h.daemons.stats().get("running", 1) == 0,
                 120, 0.5, what="the fronts idle")
    runs = runs_by_id()
    assert set(runs) == set(ids)
    twice = {tid: v for tid, v in runs.items() if len(v) != 1}
    assert not twice, f"tasks run more than once: {list(twice.items())[:5]}"
    assert len({k for v in runs.values() for k, _ in v}) > 1, "the tasks ran on more than one host"
