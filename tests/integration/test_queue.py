# SPDX-License-Identifier: MIT
"""The run queue: max_running, per-task concurrency, priority, delay, idempotency keys, cancel of
queued tasks. `serial` is a daemon pair with max_running 1; `shared` has max_running 16."""

import json
import os
import time

from conftest import IS_ROOT, NOBODY_GID, NOBODY_UID, parse_iso, run_client_as, tag, wait_for


def slots(env, t):
    out = []
    for line in env.ev_lines(t + ".slots"):
        a, b, label = line.split()
        out.append((float(a), float(b), label))
    return sorted(out)


def assert_no_overlap(intervals):
    for (s1, e1, l1), (s2, e2, l2) in zip(intervals, intervals[1:]):
        assert s2 >= e1, f"{l2} started at {s2:.3f} before {l1} ended at {e1:.3f}"


def test_max_running_one_runs_one_at_a_time(serial):
    c = serial.client()
    t = tag()
    ids = [c.submit(task, [t, str(i), "0.3"]) for i, task in enumerate(["parallel", "parallel", "conc1", "parallel"])]
    for tid in ids:
        assert c.wait_final(tid)["state"] == "succeeded"
    s = slots(serial, t)
    assert len(s) == 4
    assert_no_overlap(s)
    assert not serial.ev_exists(t + ".overlap")


def test_concurrency_one_while_other_task_runs_in_parallel(shared):
    c = shared.client()
    a, b = tag(), tag()
    ids = [c.submit("conc1", [a, f"c{i}", "0.4"]) for i in range(3)]
    ids.append(c.submit("parallel", [b, "p", "0.8"]))
    for tid in ids:
        assert c.wait_final(tid)["state"] == "succeeded"
    s = slots(shared, a)
    assert len(s) == 3
    assert_no_overlap(s)
    assert not shared.ev_exists(a + ".overlap")
    # the other task was not held back: it ran while conc1 runs were going on
    (ps, pe, _), = slots(shared, b)
    assert any(ps < e and s_ < pe for s_, e, _ in s), f"parallel {ps}-{pe} overlapped no conc1 run {s}"


def _block(env, c, seconds):
    """Occupies the single run slot of `serial` for `seconds`; returns (id, tag)."""
    t = tag()
    tid = c.submit("sleeper", [t, str(seconds)])
    env.ev_wait(t + ".child")
    return tid, t


def test_priority_order(serial):
    c = serial.client()
    blocker, _ = _block(serial, c, 1)
    t = tag()
    order = [("p0", 0), ("p10", 10), ("p5", 5), ("p10b", 10), ("pneg", -3)]
    ids = {label: c.submit("record", [t, label], priority=p) for label, p in order}
    assert c.status(ids["p0"])["state"] == "queued"
    c.wait_final(blocker)
    for tid in ids.values():
        c.wait_final(tid)
    ran = [line.split()[1] for line in serial.ev_lines(t + ".log")]
    assert ran == ["p10", "p10b", "p5", "p0", "pneg"], ran


def test_delay(serial):
    c = serial.client()
    t, t2 = tag(), tag()
    t0 = time.time()
    tid = c.submit("touch", [t], delay=2)
    r = c.status(tid)
    assert r["state"] == "queued" and r["run_after"] is not None, r
    assert parse_iso(r["run_after"]) - parse_iso(r["created_at"]) >= 1.99, r
    # a delayed task does not hold back the queue
    quick = c.submit("touch", [t2])
    assert c.wait_final(quick)["state"] == "succeeded"
    assert not serial.ev_exists(t)
    time.sleep(max(0.0, t0 + 1.7 - time.time()))
    assert not serial.ev_exists(t), "delayed task started early"
    r = c.wait_final(tid, timeout=10)
    assert r["state"] == "succeeded", r
    assert parse_iso(r["started_at"]) - parse_iso(r["created_at"]) >= 1.99, r
    assert os.stat(serial.ev_path(t)).st_mtime >= t0 + 1.95
    assert time.time() - t0 < 6


def test_idempotency_key(serial):
    c = serial.client()
    t = tag()
    k = "key-" + t
    r1 = c.call({"op": "submit", "task": "record", "args": [t, "first"], "key": k})
    assert r1["ok"] is True and not r1.get("existing"), r1
    r2 = c.call({"op": "submit", "task": "record", "args": [t, "second"], "key": k})
    assert r2["ok"] is True and r2["id"] == r1["id"] and r2.get("existing") is True, r2
    # still the same after it ran
    c.wait_final(r1["id"])
    r3 = c.call({"op": "submit", "task": "record", "args": [t, "third"], "key": k})
    assert r3["id"] == r1["id"] and r3.get("existing") is True, r3
    # another key is another task
    r4 = c.call({"op": "submit", "task": "record", "args": [t, "other-key"], "key": k + "x"})
    assert r4["ok"] is True and r4["id"] != r1["id"], r4
    want = ["first", "other-key"]
    # the same user over loopback TCP is the same submitter
    with serial.client("tcp") as ct:
        r5 = ct.call({"op": "submit", "task": "record", "args": [t, "same-user"], "key": k})
        assert r5["id"] == r1["id"] and r5.get("existing") is True, r5
    # the same key from another submitter (nobody, over TCP) is another task
    if IS_ROOT:
        frame = json.dumps({"op": "submit", "task": "record", "args": [t, "other-submitter"], "key": k})
        [r6] = run_client_as(NOBODY_UID, NOBODY_GID, ("127.0.0.1", serial.port), frame.encode() + b"\n", 1)
        assert r6["ok"] is True and r6["id"] not in (r1["id"], r4["id"]) and not r6.get("existing"), r6
        c.wait_final(r6["id"])
        want.append("other-submitter")
    c.wait_final(r4["id"])
    time.sleep(0.3)
    ran = sorted(line.split()[1] for line in serial.ev_lines(t + ".log"))
    assert ran == want, ran


def test_every_host_is_one_run_with_the_memory_store(serial):
    """The memory store is one host: an every_host submission is a task like any other, run once."""
    c = serial.client()
    t = tag()
    r = c.call({"op": "submit", "task": "everywhere", "args": [t, "here"]})
    assert r["ok"] is True and r["state"] == "queued" and "children" not in r, r
    done = c.wait_final(r["id"])
    assert done["state"] == "succeeded" and "children" not in done, done
    time.sleep(0.3)
    assert serial.ev_lines(t + ".log") == [f"{r['id']} here"]


def test_cancel_queued_task(serial):
    c = serial.client()
    blocker, _ = _block(serial, c, 1)
    t = tag()
    tid = c.submit("touch", [t])
    assert c.status(tid)["state"] == "queued"
    r = c.call({"op": "cancel", "id": tid})
    assert r == {"ok": True, "id": tid, "state": "cancelled"}, r
    r = c.status(tid)
    assert r["state"] == "cancelled" and r["attempts"] == 0 and r["started_at"] is None, r
    c.wait_final(blocker)
    after = c.submit("touch", [tag()])  # the queue moves on past the cancelled task
    c.wait_final(after)
    time.sleep(0.3)
    assert not serial.ev_exists(t), "a cancelled queued task ran"
    r = c.call({"op": "cancel", "id": tid})
    assert r["ok"] is True and r["state"] == "cancelled", r


def test_cancel_delayed_task(serial):
    c = serial.client()
    t = tag()
    tid = c.submit("touch", [t], delay=1)
    assert c.call({"op": "cancel", "id": tid})["state"] == "cancelled"
    time.sleep(1.5)
    assert not serial.ev_exists(t)
    assert c.status(tid)["state"] == "cancelled"


def test_wait_on_queued_task_answers_when_final(serial):
    c = serial.client()
    blocker, _ = _block(serial, c, 1)
    tid = c.submit("touch", [tag()])
    t0 = time.monotonic()
    r = c.call({"op": "wait", "id": tid, "timeout": 20}, timeout=25)
    assert r["ok"] is True and r["state"] == "succeeded", r
    assert time.monotonic() - t0 < 5
    wait_for(lambda: c.status(blocker)["state"] == "succeeded", 5, what="blocker done")
