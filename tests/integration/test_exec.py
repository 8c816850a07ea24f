# SPDX-License-Identifier: MIT
"""How tasks run: user and group, literal argv, stdin, environment, output, results, timeouts,
cancelling a running task, the record's fields."""

import os
import time

from conftest import (
    ALLOW,
    LEAK_VAR,
    TASK_USER,
    needs_root,
    parse_iso,
    proc_alive,
    processes_in_group,
    standard_config,
    tag,
    wait_for,
)

RECORD_FIELDS = (
    "id", "task", "cmd", "args", "state", "attempts", "max_attempts", "priority", "key", "submitter", "unit",
    "created_at", "started_at", "finished_at", "run_after", "result", "exit_status", "signal", "error",
)


def assert_gone(pid, what):
    """The process and its whole process group are gone (zombies count as gone)."""
    wait_for(lambda: not proc_alive(pid) and not processes_in_group(pid), 3, what=f"{what} (pid {pid}) and its group to go")


@needs_root
def test_task_runs_as_configured_user(shared):
    c = shared.client()
    t = tag()
    tid = c.submit("whoami_nobody", [t])
    r = c.wait_final(tid)
    assert r["state"] == "succeeded", r
    assert os.stat(shared.ev_path(t + ".file")).st_uid == 65534
    assert shared.ev_read(t + ".uid").strip() == "65534"
    assert shared.ev_read(t + ".gid").strip() == "65534"
    # no supplementary group inherited from the root launcher
    assert "0" not in shared.ev_read(t + ".groups").split()


@needs_root
def test_task_runs_with_configured_group(shared):
    c = shared.client()
    t = tag()
    r = c.wait_final(c.submit("whoami_group", [t]))
    assert r["state"] == "succeeded", r
    st = os.stat(shared.ev_path(t + ".file"))
    assert (st.st_uid, st.st_gid) == (65534, 1)
    assert shared.ev_read(t + ".uid").strip() == "65534"
    assert shared.ev_read(t + ".gid").strip() == "1"
    assert "0" not in shared.ev_read(t + ".groups").split()


METACHAR_ARGS = ["$(touch pwned)", "; rm -rf x", "`id`", "*", "a b", "'q'", "\\n", '"dq"', "|cat", "&& touch pwned2",
                 "-n", "ünï", "$HOME", ">out", "x" * 200]


def _no_pwned(env):
    for d in (env.ev, env.dir, "/", os.getcwd()):
        for name in ("pwned", "pwned2", "out", ">out"):
            assert not os.path.exists(os.path.join(d, name)), f"{name} appeared in {d}: an argument reached a shell"


def test_args_reach_program_literally(shared):
    c = shared.client()
    t = tag()
    args = [t] + METACHAR_ARGS
    r = c.wait_final(c.submit("argv", args))
    assert r["state"] == "succeeded", r
    assert r["args"] == args
    expected = b"".join(a.encode() + b"\0" for a in args)
    assert shared.ev_read("argv-" + t, "rb") == expected
    _no_pwned(shared)


def test_args_beyond_max_args_refused(shared):
    c = shared.client()
    t = tag()
    r = c.call({"op": "submit", "task": "touch", "args": [t, "b", "c"]})  # max_args 2
    assert r["ok"] is False and r["code"] == "bad_request", r
    c.ping()
    # exactly max_args is fine
    assert c.wait_final(c.submit("touch", [t, "b"]))["state"] == "succeeded"


def test_stdin_delivered(shared):
    c = shared.client()
    t = tag()
    data = "line one\nline two\ttab \\ backslash \x01 \u00e9\u4e2d\n" + "y" * 3000
    r = c.wait_final(c.submit("stdin", [t], stdin=data))
    assert r["state"] == "succeeded", r
    assert shared.ev_read(t + ".stdin", "rb") == data.encode()


def test_no_stdin_is_empty(shared):
    c = shared.client()
    t = tag()
    r = c.wait_final(c.submit("stdin", [t]))
    assert r["state"] == "succeeded", r
    assert shared.ev_read(t + ".stdin", "rb") == b""


def test_listed_command_gets_no_stdin(env, start_daemons):
    """A raw command is reviewed as a fixed line; input would be a second, unreviewed program (think
    of a listed "sh" or "php"). stdin with cmd is refused as bad_request and nothing runs."""
    t = tag()
    main, tasks = standard_config(env)
    listed = f"cat > {env.ev}/{t}.stdin"
    main["commands"].append({"cmd": listed, "user": TASK_USER, "allow": ALLOW})
    start_daemons(main, tasks)
    c = env.client()
    for data in ("touch /tmp/pwned\n", ""):
        r = c.call({"op": "submit", "cmd": listed, "stdin": data})
        assert r["ok"] is False and r["code"] == "bad_request", r
        assert "stdin" in r["error"], r
    c.ping()
    time.sleep(0.3)
    assert not env.ev_exists(t + ".stdin")
    # the same command without stdin is accepted, and reads nothing
    r = c.call({"op": "submit", "cmd": listed})
    assert r["ok"] is True, r
    assert c.wait_final(r["id"])["state"] == "succeeded"
    assert env.ev_read(t + ".stdin", "rb") == b""


def test_environment_is_the_tasks(shared):
    c = shared.client()
    t = tag()
    tid = c.submit("env", [t])
    r = c.wait_final(tid)
    assert r["state"] == "succeeded", r
    env = dict(line.split("=", 1) for line in shared.ev_read(t + ".env").splitlines() if "=" in line)
    assert env.get("ASYNCTASK_ID") == str(tid)
    assert env.get("ASYNCTASK_TASK") == "env"
    assert env.get("ASYNCTASK_ATTEMPT") == "1"
    assert env.get("APP_ENV") == "test"
    assert env.get("SPACED") == "a b  c"
    assert LEAK_VAR not in env, "the daemon's environment leaked into the task"


def test_output_goes_to_launcher_stderr_with_prefix(shared):
    if os.path.exists("/run/systemd/journal/socket"):
        import pytest

        pytest.skip("journald is reachable: output goes to the journal")
    c = shared.client()
    t = tag()
    tid = c.submit("out", [t])
    assert c.wait_final(tid)["state"] == "succeeded"

    def logged():
        with open(shared.daemons.launcher_log, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        return f"[task {tid}] stdout-marker-{t}" in log and f"[task {tid}] stderr-marker-{t}" in log

    wait_for(logged, 5, what="task output in the launcher's stderr")


def test_record_fields_and_success(shared):
    c = shared.client()
    t = tag()
    before = time.time()
    tid = c.submit("touch", [t], key="k-" + t, priority=3)
    r = c.wait_final(tid)
    for f in RECORD_FIELDS:
        assert f in r, f"record lacks {f}: {r}"
    assert r["id"] == tid and r["task"] == "touch" and r["cmd"] is None
    assert r["args"] == [t] and r["key"] == "k-" + t and r["priority"] == 3
    assert r["state"] == "succeeded" and r["result"] == "success" and r["exit_status"] == 0
    assert r["signal"] is None and r["error"] is None
    assert r["attempts"] == 1 and r["max_attempts"] == 1
    assert r["submitter"] == f"uid:{os.geteuid()}"
    assert isinstance(r["unit"], str) and r["unit"]
    created, started, finished = parse_iso(r["created_at"]), parse_iso(r["started_at"]), parse_iso(r["finished_at"])
    assert before - 1 <= created <= started <= finished <= time.time() + 1
    assert shared.ev_exists(t)

    # the same over loopback TCP: the submitter is the user owning the peer's socket
    with shared.client("tcp") as ct:
        r = ct.wait_final(ct.submit("touch", [tag()]))
        assert r["submitter"] == f"uid:{os.geteuid()}" and r["state"] == "succeeded"


def test_exit_code_and_signal_results(shared):
    c = shared.client()
    r = c.wait_final(c.submit("exit", ["5"]))
    assert (r["state"], r["result"], r["exit_status"]) == ("failed", "exit-code", 5), r
    r = c.wait_final(c.submit("selfkill"))
    assert (r["state"], r["result"], r["signal"]) == ("failed", "signal", 9), r


def test_wait_timeout_returns_current_state(shared):
    c = shared.client()
    t = tag()
    tid = c.submit("sleeper", [t, "30"])
    shared.ev_wait(t + ".child")
    t0 = time.monotonic()
    r = c.call({"op": "wait", "id": tid, "timeout": 1}, timeout=10)
    took = time.monotonic() - t0
    assert r["ok"] is True and r["state"] == "running", r
    assert 0.8 <= took < 5, took
    assert c.call({"op": "cancel", "id": tid})["ok"] is True
    assert c.wait_final(tid)["state"] == "cancelled"


def test_timeout_kills_process_group(shared):
    c = shared.client()
    t = tag()
    t0 = time.monotonic()
    tid = c.submit("timeout", [t, "30"])  # timeout_sec 1
    r = c.wait_final(tid, timeout=15)
    took = time.monotonic() - t0
    assert r["state"] == "failed" and r["result"] == "timeout", r
    assert 0.9 <= took < 10, f"timeout took {took:.1f}s"
    pid = int(shared.ev_read(t + ".pid"))
    child = int(shared.ev_read(t + ".child"))
    assert r["unit"] == f"pid:{pid}", r
    assert not shared.ev_exists(t + ".done")
    assert_gone(pid, "timed-out task")
    assert not proc_alive(child), "the task's child survived the timeout"


def test_timeout_kills_task_that_ignores_sigterm(shared):
    c = shared.client()
    t = tag()
    t0 = time.monotonic()
    tid = c.submit("stubborn", [t])  # timeout_sec 1, traps TERM; KILL follows after the grace period
    r = c.wait_final(tid, timeout=20)
    took = time.monotonic() - t0
    assert r["state"] == "failed" and r["result"] == "timeout", r
    assert took < 15, f"took {took:.1f}s"
    pid = int(shared.ev_read(t + ".pid"))
    child = int(shared.ev_read(t + ".child"))
    assert_gone(pid, "TERM-ignoring task")
    assert not proc_alive(child)
    assert not shared.ev_exists(t + ".done")


def test_cancel_running_task(shared):
    c = shared.client()
    t = tag()
    tid = c.submit("sleeper", [t, "30"])
    shared.ev_wait(t + ".child")
    c.wait_state(tid, "running")
    pid = int(shared.ev_read(t + ".pid"))
    child = int(shared.ev_read(t + ".child"))
    assert proc_alive(pid) and proc_alive(child)
    r = c.call({"op": "cancel", "id": tid})
    assert r == {"ok": True, "id": tid, "state": "running", "stopping": True}, r
    t0 = time.monotonic()
    r = c.wait_final(tid, timeout=15)
    assert r["state"] == "cancelled" and r["result"] == "cancelled", r
    assert time.monotonic() - t0 < 4, "a TERM-able task should stop at once"
    assert_gone(pid, "cancelled task")
    assert not proc_alive(child)
    assert not shared.ev_exists(t + ".done")
    # cancelling a final task answers ok with its state
    r = c.call({"op": "cancel", "id": tid})
    assert r["ok"] is True and r["state"] == "cancelled", r


def test_status_unknown_id_not_found(shared):
    c = shared.client()
    r = c.call({"op": "status", "id": 987654321})
    assert r["ok"] is False and r["code"] == "not_found", r
    r = c.call({"op": "cancel", "id": 987654321})
    assert r["ok"] is False and r["code"] == "not_found", r
    c.ping()



def test_credentials_refused_by_direct_executor(env, start_daemons):
    """The direct executor has no private place for a task's credentials: it refuses the run, before
    anything of it runs, rather than run the task without its secrets."""
    main, tasks = standard_config(env)
    secret = os.path.join(env.dir, "smtp-secret")
    with open(secret, "w") as f:
        f.write("not for the task\n")
    tasks["creds"] = dict(tasks["touch"], credentials={"smtp": secret})
    start_daemons(main, tasks)
    t = tag()
    with env.client() as c:
        tid = c.submit("creds", [t])
        r = c.wait_final(tid)
        assert r["state"] == "failed" and r["result"] == "rejected", r
        assert "cannot deliver the task's credentials" in r["error"], r
        # the same task without credentials runs
        tid = c.submit("touch", [t])
        assert c.wait_final(tid)["state"] == "succeeded"
    assert env.ev_exists(t)
