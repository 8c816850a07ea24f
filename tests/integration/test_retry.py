# SPDX-License-Identifier: MIT
"""Retries with backoff, admin retry (one and all failed), forget."""

import time

from conftest import tag, wait_for

SLACK = 0.05  # date(1) in the script vs the daemon's timer


def starts(env, t):
    return [(float(a), int(b)) for a, b in (line.split() for line in env.ev_lines(t + ".starts"))]


def test_failing_task_retried_with_backoff_then_failed(shared):
    c = shared.client()
    t = tag()
    tid = c.submit("fail", [t])  # max_attempts 3, backoff_sec [1, 2], exits 3
    # between attempts the task is queued again with run_after set
    wait_for(lambda: len(starts(shared, t)) >= 1, 10, what="first attempt")
    r = c.wait_state(tid, "queued", timeout=1.5)
    assert r["attempts"] == 1 and r["run_after"] is not None, r
    r = c.wait_final(tid, timeout=20)
    assert r["state"] == "failed" and r["attempts"] == 3 and r["max_attempts"] == 3, r
    assert r["result"] == "exit-code" and r["exit_status"] == 3, r
    s = starts(shared, t)
    assert [a for _, a in s] == [1, 2, 3], s
    assert s[1][0] - s[0][0] >= 1 - SLACK, f"backoff before attempt 2 was {s[1][0] - s[0][0]:.3f}s"
    assert s[2][0] - s[1][0] >= 2 - SLACK, f"backoff before attempt 3 was {s[2][0] - s[1][0]:.3f}s"
    assert s[2][0] - s[0][0] < 8, s

    # an admin retry runs it again from attempt 1
    r = c.call({"op": "retry", "id": tid})
    assert r == {"ok": True, "id": tid, "state": "queued"}, r
    wait_for(lambda: len(starts(shared, t)) >= 4, 10, what="run after retry")
    assert starts(shared, t)[3][1] == 1
    r = c.wait_final(tid, timeout=20)
    assert r["state"] == "failed" and r["attempts"] == 3, r
    assert len(starts(shared, t)) == 6

    # retry of a task that is not failed or cancelled is refused
    ok = c.submit("touch", [tag()])
    c.wait_final(ok)
    r = c.call({"op": "retry", "id": ok})
    assert r["ok"] is False, r
    c.ping()

    # forget removes it
    r = c.call({"op": "forget", "id": tid})
    assert r == {"ok": True, "id": tid}, r
    r = c.status(tid)
    assert r["ok"] is False and r["code"] == "not_found", r
    r = c.call({"op": "forget", "id": tid})
    assert r["ok"] is False and r["code"] == "not_found", r
    r = c.call({"op": "retry", "id": tid})
    assert r["ok"] is False and r["code"] == "not_found", r
    time.sleep(0.5)
    assert len(starts(shared, t)) == 6


def test_fail_once_then_succeed(shared):
    c = shared.client()
    t = tag()
    tid = c.submit("flaky", [t])  # max_attempts 3, backoff 1, fails on its first run only
    r = c.wait_final(tid, timeout=20)
    assert r["state"] == "succeeded" and r["attempts"] == 2 and r["result"] == "success", r
    assert shared.ev_lines(t + ".attempts") == ["1", "2"]


def test_retry_all_failed(shared):
    c = shared.client()
    t1, t2 = tag(), tag()
    ids = [c.submit("fail1", [t1]), c.submit("fail1", [t2])]  # one attempt each
    for tid in ids:
        assert c.wait_final(tid)["state"] == "failed"
    r = c.call({"op": "retry", "state": "failed"})
    assert r["ok"] is True and r["retried"] >= 2, r
    for t in (t1, t2):
        wait_for(lambda: len(starts(shared, t)) == 2, 10, what="run after retry of all failed")
    for tid in ids:
        r = c.wait_final(tid)
        assert r["state"] == "failed" and r["attempts"] == 1, r
        assert c.call({"op": "forget", "id": tid})["ok"] is True


def test_forget_running_task_refused(shared):
    c = shared.client()
    t = tag()
    tid = c.submit("sleeper", [t, "30"])
    c.wait_state(tid, "running")
    r = c.call({"op": "forget", "id": tid})
    assert r["ok"] is False, "a running task must not be forgotten"
    c.ping()
    assert c.status(tid)["state"] == "running"
    c.call({"op": "cancel", "id": tid})
    assert c.wait_final(tid)["state"] == "cancelled"
    assert c.call({"op": "forget", "id": tid})["ok"] is True
