# SPDX-License-Identifier: MIT
"""The command-line client against the real daemons: exit codes and --json output."""

import json
import os
import subprocess

from conftest import CLI_BIN, tag


def out(p):
    return f"exit {p.returncode}\nstdout: {p.stdout.decode(errors='replace')}\nstderr: {p.stderr.decode(errors='replace')}"


def test_submit_wait_returns_task_exit_status(shared):
    p = shared.cli("submit", "--wait", "exit", "0")
    assert p.returncode == 0, out(p)
    p = shared.cli("submit", "--wait", "exit", "7")
    assert p.returncode == 7, out(p)
    p = shared.cli("submit", "--wait", "exit", "7", tcp=True)
    assert p.returncode == 7, out(p)


def test_submit_wait_killed_by_signal_exits_1(shared):
    p = shared.cli("submit", "--wait", "selfkill")
    assert p.returncode == 1, out(p)


def test_submit_without_wait_prints_id(shared):
    t = tag()
    p = shared.cli("--json", "submit", "touch", t)
    assert p.returncode == 0, out(p)
    r = json.loads(p.stdout.decode().strip().splitlines()[-1])
    assert r["ok"] is True and isinstance(r["id"], int), r
    p = shared.cli("--json", "wait", str(r["id"]), "--timeout", "10")
    assert p.returncode == 0, out(p)
    rec = json.loads(p.stdout.decode().strip().splitlines()[-1])
    assert rec["id"] == r["id"] and rec["state"] == "succeeded", rec
    assert shared.ev_exists(t)
    p = shared.cli("--json", "status", str(r["id"]))
    assert p.returncode == 0 and json.loads(p.stdout.decode())["state"] == "succeeded", out(p)


def test_cli_args_reach_program_literally(shared):
    t = tag()
    args = [t, "$(touch pwned)", "; rm -rf x", "`id`", "*", "a b", "'q'", "\\n", "--wait", "-x"]
    p = shared.cli("submit", "--wait", "argv", *args)
    assert p.returncode == 0, out(p)
    assert shared.ev_read("argv-" + t, "rb") == b"".join(a.encode() + b"\0" for a in args)
    assert not os.path.exists(os.path.join(shared.ev, "pwned"))


def test_key_is_idempotent_via_cli(shared):
    k = "cli-" + tag()
    ids = []
    for _ in range(2):
        p = shared.cli("--json", "submit", "--key", k, "touch", tag())
        assert p.returncode == 0, out(p)
        ids.append(json.loads(p.stdout.decode().strip().splitlines()[-1])["id"])
    assert ids[0] == ids[1]


def test_refused_exits_3(shared):
    p = shared.cli("submit", "no-such-task")
    assert p.returncode == 3, out(p)
    assert p.stderr.strip(), "a refusal should say why on stderr"
    p = shared.cli("submit", "tcp10", "x", tcp=True)  # forbidden for 127.0.0.1
    assert p.returncode == 3, out(p)
    p = shared.cli("submit", "--cmd", "rm -rf /nonexistent-dir")
    assert p.returncode == 3, out(p)
    p = shared.cli("status", "987654321")
    assert p.returncode == 3, out(p)


def test_cannot_connect_exits_4(env):
    p = subprocess.run([CLI_BIN, "--socket", os.path.join(env.dir, "nothing.sock"), "ping"], capture_output=True, timeout=30)
    assert p.returncode == 4, out(p)
    p = subprocess.run([CLI_BIN, "--tcp", f"127.0.0.1:{env.port}", "ping"], capture_output=True, timeout=30)
    assert p.returncode == 4, out(p)


def test_usage_exits_2(shared):
    for argv in (
        [],
        ["frobnicate"],
        ["submit"],
        ["--no-such-option", "ping"],
        ["status"],
        ["status", "notanumber"],
        ["wait", "1", "--timeout", "soon"],
        ["submit", "--delay", "x", "touch"],
    ):
        p = subprocess.run([CLI_BIN, "--socket", shared.front_sock, *argv], capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        assert p.returncode == 2, f"{argv}: {out(p)}"


def test_ping_and_stats(shared):
    p = shared.cli("ping")
    assert p.returncode == 0, out(p)
    p = shared.cli("--json", "ping", tcp=True)
    assert p.returncode == 0, out(p)
    r = json.loads(p.stdout.decode())
    assert r["pong"] is True and r["version"] == "0.1.0", r
    p = shared.cli("--json", "stats")
    assert p.returncode == 0, out(p)
    r = json.loads(p.stdout.decode())
    assert r["launcher"] == "connected" and r["store"] == "memory", r


def test_list_retry_forget(shared):
    p = shared.cli("--json", "submit", "--wait", "fail1", tag())
    assert p.returncode == 3, out(p)  # the task's own exit status
    p = shared.cli("--json", "list", "--state", "failed", "--limit", "10000")
    assert p.returncode == 0, out(p)
    r = json.loads(p.stdout.decode())
    failed = [x["id"] for x in r["tasks"] if x["task"] == "fail1"]
    assert failed, r
    tid = failed[-1]
    p = shared.cli("--json", "retry", str(tid))
    assert p.returncode == 0, out(p)
    assert json.loads(p.stdout.decode())["state"] == "queued"
    p = shared.cli("--json", "wait", str(tid), "--timeout", "10")
    rec = json.loads(p.stdout.decode())
    assert rec["state"] == "failed" and rec["attempts"] == 1, out(p)  # ran again and failed again
    p = shared.cli("forget", str(tid))
    assert p.returncode == 0, out(p)
    p = shared.cli("status", str(tid))
    assert p.returncode == 3, out(p)
