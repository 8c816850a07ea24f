# SPDX-License-Identifier: MIT
"""max_records with the memory store: past it the oldest finished records are dropped (succeeded and
cancelled before failed, a dropped failed one logged with its id), queued and running ones never,
the front's memory stays flat however many tasks pass through, and the snapshot keeps the same
bound."""

import json
import os
import re

from conftest import ALLOW, TASK_USER, Daemons, base_main, small_asan_quarantine, wait_for

MAX_RECORDS = 20
STDIN = "x" * 16384  # each kept record would hold this: 16 KiB


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def config(env, **over):
    true = env.script("ok", "cat >/dev/null\n")
    fail = env.script("no", "exit 4\n")
    tasks = {
        "ok": {"exec": [true], "user": TASK_USER, "allow": ALLOW},
        "no": {"exec": [fail], "user": TASK_USER, "allow": ALLOW},
    }
    over.setdefault("max_records", MAX_RECORDS)
    main = base_main(env, max_frame_bytes=65536, max_running=32, **over)
    return main, tasks


def run_many(c, n, task="ok", **kw):
    """Submits n tasks, pipelined in bursts, and waits until the last one is final. Returns the ids."""
    ids = []
    for start in range(0, n, 50):
        burst = min(50, n - start)
        for _ in range(burst):
            c.send_obj({"op": "submit", "task": task, **kw})
        for _ in range(burst):
            r = c.recv(30)
            assert r.get("ok") is True, r
            ids.append(r["id"])
    c.wait_final(ids[-1], timeout=120)
    return ids


def settled(c, ids):
    """Whether every id is final or gone (dropped)."""
    for tid in ids:
        r = c.status(tid)
        if r.get("ok") and r["state"] not in ("succeeded", "failed", "cancelled"):
            return False
    return True


def test_oldest_finished_dropped_first_queued_never(env):
    main, tasks = config(env)
    env.write_config(main, tasks)
    state = os.path.join(env.dir, "state")
    os.makedirs(state)
    d = Daemons(env)
    d.daemon_env["STATE_DIRECTORY"] = state
    d.start()
    try:
        with env.client() as c:
            failed = run_many(c, 6, task="no")
            wait_for(lambda: settled(c, failed), 60, what="failed tasks final")
            ok = run_many(c, 3 * MAX_RECORDS, task="ok")
            wait_for(lambda: settled(c, ok), 60, what="tasks final")
            # Queued (delayed) tasks beyond max_records are all kept.
            queued = [c.submit("ok", delay=600) for _ in range(MAX_RECORDS + 20)]

            wait_for(lambda: c.call({"op": "stats"})["succeeded"] == MAX_RECORDS - 6, 10,
                     what="the bound to hold")
            st = c.call({"op": "stats"})
            assert st["failed"] == 6, "failed ones stay while succeeded ones can go"
            assert st["queued"] == MAX_RECORDS + 20
            assert c.status(ok[0])["code"] == "not_found", "the oldest succeeded went first"
            assert c.status(ok[-1])["state"] == "succeeded"
            assert all(c.status(t)["state"] == "failed" for t in failed)
            assert all(c.status(t)["state"] == "queued" for t in queued)

            # Failed records go once only failed ones are left past the bound, oldest first, logged.
            more = run_many(c, 8, task="no")
            wait_for(lambda: settled(c, more), 60, what="more failed tasks final")
            wait_for(lambda: c.call({"op": "stats"})["failed"] == 14, 10, what="succeeded ones dropped")
            last = run_many(c, MAX_RECORDS, task="no")
            # Every one of them final first: runs end out of order, and with one still running the
            # count is already MAX_RECORDS while the last of `more` is still kept.
            wait_for(lambda: settled(c, last), 60, what="the last failed tasks final")
            wait_for(lambda: c.call({"op": "stats"})["failed"] == MAX_RECORDS, 30, what="failed ones dropped")
            assert c.call({"op": "stats"})["succeeded"] == 0
            # 34 failed, the oldest 14 go: the first 6 and the 8 after them.
            assert c.status(failed[0])["code"] == "not_found"
            assert c.status(more[-1])["code"] == "not_found"
            assert all(c.status(t)["state"] == "failed" for t in last)
        with open(d.front_log) as f:
            log = f.read()
        assert re.search(rf"Task {failed[0]} \(failed\) dropped", log), "a dropped failed record is logged with its id"
        assert not re.search(rf"Task {ok[0]} \(.*dropped", log), "succeeded ones go quietly"

        # The snapshot keeps the same bound: finished records at most max_records, every queued one.
        assert d.stop_front() == 0
        with open(os.path.join(state, "ledger.snapshot")) as f:
            lines = f.read().splitlines()[1:]
        assert len(lines) == MAX_RECORDS + len(queued)
        d.start_front()
        with env.client() as c:
            st = c.call({"op": "stats"})
            assert st["queued"] == len(queued) and st["failed"] == MAX_RECORDS
    finally:
        d.stop()


def submit_and_cancel(c, n, stdin=None):
    """n tasks submitted with a delay and cancelled: finished records without a process each."""
    ids = []
    extra = {"stdin": stdin} if stdin else {}
    for start in range(0, n, 100):
        burst = min(100, n - start)
        for _ in range(burst):
            c.send_obj({"op": "submit", "task": "ok", "delay": 600, **extra})
        page = []
        for _ in range(burst):
            r = c.recv(30)
            assert r.get("ok") is True, r
            page.append(r["id"])
        for tid in page:
            c.send_obj({"op": "cancel", "id": tid})
        for _ in page:
            assert c.recv(30)["state"] == "cancelled"
        ids += page
    return ids


def test_list_pages(env, start_daemons):
    """list after_id/limit pages through a state in id order; the CLI prints every page by default."""
    main, tasks = config(env, max_records=100000)
    start_daemons(main, tasks)
    with env.client() as c:
        cancelled = submit_and_cancel(c, 2300)
        queued = [c.submit("ok", delay=600) for _ in range(5)]
        got, after = [], 0
        while True:
            r = c.call({"op": "list", "state": "cancelled", "after_id": after, "limit": 700})
            assert r["ok"] is True, r
            ids = [t["id"] for t in r["tasks"]]
            assert ids == sorted(ids) and all(i > after for i in ids)
            assert all(t["state"] == "cancelled" for t in r["tasks"])
            got += ids
            if len(ids) < 700:
                break
            after = ids[-1]
        assert got == cancelled
        r = c.call({"op": "list", "after_id": cancelled[-1]})
        assert [t["id"] for t in r["tasks"]] == queued
        r = c.call({"op": "list", "after_id": -1})
        assert r["code"] == "bad_request" and "after_id" in r["error"], r

    p = env.cli("list", "--state", "cancelled")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[0].split()[:2] == ["ID", "STATE"], "one header"
    assert [int(x.split()[0]) for x in lines[1:]] == cancelled, "every page, in order, nothing twice"
    p = env.cli("--json", "list", "--state", "cancelled")
    pages = [json.loads(x) for x in p.stdout.decode().splitlines()]
    assert len(pages) == 3, "a JSON line per page of 1000"
    assert [t["id"] for pg in pages for t in pg["tasks"]] == cancelled
    p = env.cli("--json", "list", "--after", str(cancelled[9]), "--limit", "3")
    assert [t["id"] for t in json.loads(p.stdout)["tasks"]] == cancelled[10:13]
    p = env.cli("list", "--state", "failed")
    assert p.returncode == 0 and p.stdout.decode() == "no tasks\n", p.stdout


def test_memory_flat_past_max_records(env):
    """Thousands of records of 16 KiB of stdin each through a bound of 20 (tasks submitted with a delay
    and cancelled: finished records without a process each): without the bound the front would grow
    by some 16 KiB per task; with it, its RSS after 3,000 more tasks is where it was after the first
    1,000."""
    main, tasks = config(env)
    env.write_config(main, tasks)
    d = Daemons(env)
    small_asan_quarantine(d)
    d.start()

    try:
        with env.client() as c:
            submit_and_cancel(c, 1000, STDIN)
            wait_for(lambda: c.call({"op": "stats"})["cancelled"] == MAX_RECORDS, 30, what="the bound")
            before = rss_kib(d.front.pid)
            submit_and_cancel(c, 3000, STDIN)
            wait_for(lambda: c.call({"op": "stats"})["cancelled"] == MAX_RECORDS, 30, what="the bound")
            after = rss_kib(d.front.pid)
    finally:
        d.stop()
    # 3,000 kept records would be some 48 MiB; allocator noise is well under 4 MiB.
    assert after - before < 4096, f"RSS grew from {before} KiB to {after} KiB"
