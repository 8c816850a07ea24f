# SPDX-License-Identifier: MIT
"""Task progress and alerts with the direct executor, on the memory store and on MySQL: a task's
STATUS= (systemd-notify) reaches the record and `asynctask wait --progress` in order, a task spamming
STATUS= is coalesced, a task failing for good submits its on_failure task once with its record, and
an alert that fails (or two tasks alerting each other) does not loop."""

import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import ALLOW, CLI_BIN, FRONT_BIN, MariaDB, TASK_USER, base_main, wait_for

HAVE_MARIADB = shutil.which("mariadbd") is not None or os.path.exists("/usr/sbin/mariadbd")

# Waits for a gate file (so that the test can be listening first), then three updates, each long
# enough after the last that the launcher's 200 ms rate limit lets every one through.
PROGRESS_SCRIPT = """
i=0
while [ ! -e "$EV/$1.go" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
systemd-notify STATUS="10% one"
sleep 0.6
systemd-notify --status="50% two"
sleep 0.6
systemd-notify READY=1 "STATUS=100% three"
sleep 0.6
"""

# STATUS= as fast as a process can send it, then a last word.
SPAM_SCRIPT = """
exec python3 -c '
import os, socket, sys
addr = os.environ["NOTIFY_SOCKET"]
addr = "\\0" + addr[1:] if addr.startswith("@") else addr
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
n = int(sys.argv[1])
for i in range(n):
    s.sendto(b"STATUS=step %d" % i, addr)
s.sendto(b"STATUS=done %d" % n, addr)
' "$1"
"""

# The alert: what it got, one file per failed id; fails when told to.
ALERT_SCRIPT = """
cat > "$EV/alert.$1.stdin"
echo "$#" > "$EV/alert.$1.argc"
echo "$ASYNCTASK_ID" >> "$EV/alert.runs"
[ -z "$ALERT_FAILS" ]
"""

FAIL_SCRIPT = 'echo "$ASYNCTASK_ID" >> "$EV/$1.runs"\nexit 3\n'


@pytest.fixture(scope="module")
def db():
    if not HAVE_MARIADB:
        yield None
        return
    m = MariaDB()
    m.start()
    try:
        yield m
    finally:
        m.stop()
        shutil.rmtree(m.dir, ignore_errors=True)


@pytest.fixture(params=["memory", "mysql"])
def store(request, db):
    if request.param == "mysql":
        if db is None:
            pytest.skip("MariaDB server not installed (apt-get install mariadb-server)")
        db.reset()
        return {"type": "mysql", "option_file": db.cnf, "group": "asynctask"}
    return {"type": "memory"}


def config(env, store, **main_over):
    bins = {
        "progress": env.script("progress", PROGRESS_SCRIPT),
        "spam": env.script("spam", SPAM_SCRIPT),
        "alert": env.script("alert", ALERT_SCRIPT),
        "fail": env.script("fail", FAIL_SCRIPT),
    }

    def t(script, max_args=1, **kw):
        d = {"exec": [bins[script]], "max_args": max_args, "user": TASK_USER, "allow": ALLOW}
        d.update(kw)
        return d

    tasks = {
        "progress": t("progress"),
        "spam": t("spam"),
        "alert": t("alert", max_attempts=2, backoff_sec=[1]),
        "alert_fails": t("alert", environment={"ALERT_FAILS": "1"}),
        "fail": t("fail", max_attempts=2, backoff_sec=[1], on_failure="alert"),
        "fail_quiet": t("fail"),
        # Each one's alert is the other: A fails, B runs as its alert and fails, and that is all.
        "ping_a": t("fail", on_failure="ping_b"),
        "ping_b": t("fail", on_failure="ping_a"),
    }
    main = base_main(env, store=store, **main_over)
    return main, tasks


def records(env):
    with env.client() as c:
        r = c.call({"op": "list", "limit": 1000})
    assert r["ok"], r
    return r["tasks"]


# ---------------------------------------------------------------------------------------------------
# Progress


def test_wait_progress_sees_three_updates_in_order(env, start_daemons, store):
    start_daemons(*config(env, store))
    with env.client() as c:
        tid = c.submit("progress", ["p1"])
    waiter = subprocess.Popen([CLI_BIN, "--socket", env.front_sock, "wait", "--progress", str(tid)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with env.client() as c:
            c.wait_state(tid, ["running"])
        time.sleep(0.3)  # the waiter's first wait is in
        open(env.ev_path("p1.go"), "w").close()
        out, err = waiter.communicate(timeout=30)
    finally:
        waiter.kill()
    assert waiter.returncode == 0, err
    lines = out.splitlines()
    assert lines[:3] == ["10% one", "50% two", "100% three"], out
    assert any(line.split() == ["progress:", "100%", "three"] for line in lines[3:]), out

    with env.client() as c:
        rec = c.status(tid)
    assert rec["state"] == "succeeded" and rec["progress"] == "100% three", rec
    listed = [t for t in records(env) if t["id"] == tid]
    assert listed and listed[0]["progress"] == "100% three"


def test_wait_progress_json_and_status_while_running(env, start_daemons, store):
    start_daemons(*config(env, store))
    with env.client() as c:
        tid = c.submit("progress", ["p2"])
        c.wait_state(tid, ["running"])
        assert c.status(tid)["progress"] is None
        open(env.ev_path("p2.go"), "w").close()
        # A wait with what was seen comes back as soon as there is something else.
        r = c.call({"op": "wait", "id": tid, "timeout": 20, "progress_seen": None}, timeout=30)
        assert r["ok"] and r["state"] == "running" and r["progress"] == "10% one", r
        r = c.call({"op": "wait", "id": tid, "timeout": 20, "progress_seen": "10% one"}, timeout=30)
        assert r["progress"] == "50% two", r
        bad = c.call({"op": "wait", "id": tid, "progress_seen": 5})
        assert not bad["ok"] and bad["code"] == "bad_request", bad
    p = subprocess.run([CLI_BIN, "--socket", env.front_sock, "--json", "wait", "--progress", str(tid)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    answers = [json.loads(line) for line in p.stdout.splitlines()]
    assert [a["progress"] for a in answers][0] in ("50% two", "100% three")
    assert answers[-1]["state"] == "succeeded" and answers[-1]["progress"] == "100% three", answers


def test_progress_spam_is_coalesced(env, start_daemons, store):
    start_daemons(*config(env, store))
    with env.client() as c:
        tid = c.submit("spam", ["20000"])
    started = time.monotonic()
    p = subprocess.run([CLI_BIN, "--socket", env.front_sock, "wait", "--progress", str(tid)],
                       capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert p.returncode == 0, p.stderr
    changes = [line for line in p.stdout.splitlines() if line and ":" not in line.split()[0]]
    # The last word arrives, and no more updates than one per 200 ms (with room for the replay and the
    # one sent at once).
    assert changes[-1] == "done 20000", p.stdout
    assert len(changes) <= elapsed / 0.2 + 3, (len(changes), elapsed)
    with env.client() as c:
        assert c.status(tid)["progress"] == "done 20000"


# ---------------------------------------------------------------------------------------------------
# Alerts


def test_on_failure_submits_the_alert_once_with_the_record(env, start_daemons, store):
    start_daemons(*config(env, store))
    with env.client() as c:
        tid = c.submit("fail", ["f1"])
        rec = c.wait_final(tid, timeout=30)
    assert rec["state"] == "failed" and rec["attempts"] == 2

    env.ev_wait(f"alert.{tid}.stdin", timeout=20)
    wait_for(lambda: len(env.ev_lines("alert.runs")) >= 1, what="the alert ran")
    got = json.loads(open(env.ev_path(f"alert.{tid}.stdin")).read())
    assert got["id"] == tid and got["task"] == "fail" and got["args"] == ["f1"], got
    assert got["state"] == "failed" and got["attempts"] == 2, got
    assert got["result"] == "exit-code" and got["exit_status"] == 3, got
    assert open(env.ev_path(f"alert.{tid}.argc")).read().strip() == "1"

    time.sleep(1.5)  # room for a second alert, which must not come
    alerts = [t for t in records(env) if t["submitter"] == "on_failure"]
    assert len(alerts) == 1, alerts
    assert alerts[0]["task"] == "alert" and alerts[0]["args"] == [str(tid)], alerts
    assert alerts[0]["state"] == "succeeded"
    assert len(env.ev_lines("alert.runs")) == 1


def test_failing_alert_does_not_loop(env, start_daemons, store):
    main, tasks = config(env, store)
    main["on_failure"] = "alert_fails"  # the default, for tasks without one of their own
    start_daemons(main, tasks)
    with env.client() as c:
        quiet = c.submit("fail_quiet", ["q"])
        assert c.wait_final(quiet, timeout=30)["state"] == "failed"
        a = c.submit("ping_a", ["a"])
        assert c.wait_final(a, timeout=30)["state"] == "failed"

    # fail_quiet -> alert_fails (fails; no alert for an alert); ping_a -> ping_b (fails; no ping_a).
    wait_for(lambda: env.ev_exists("alert.runs") and env.ev_exists(f"{a}.runs"), timeout=20,
             what="the alerts ran")
    time.sleep(3)
    recs = records(env)
    alerts = [t for t in recs if t["submitter"] == "on_failure"]
    assert sorted(t["task"] for t in alerts) == ["alert_fails", "ping_b"], alerts
    assert all(t["state"] == "failed" for t in alerts), alerts
    assert len(recs) == 4, recs
    assert len(env.ev_lines("alert.runs")) == 1


def test_check_config_rejects_unknown_on_failure(env, store):
    main, tasks = config(env, store)
    tasks["fail"]["on_failure"] = "no_such_task"
    main["on_failure"] = "fail_quiet"  # exists, but there is one more wrong below
    tasks["spam"]["on_failure"] = "progress"
    tasks["progress"]["max_args"] = 0  # an alert passes the failed id: refused
    env.write_config(main, tasks)
    p = subprocess.run([FRONT_BIN, "--config", env.config_path, "--check-config"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 1, p.stderr
    assert "fail.json: on_failure: no task named 'no_such_task'" in p.stderr, p.stderr
    assert "spam.json: on_failure: task 'progress' takes no arguments" in p.stderr, p.stderr
