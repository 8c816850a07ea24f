# SPDX-License-Identifier: MIT
"""Daemon lifecycle: reload by SIGHUP and by the reload op, SIGTERM with frames in flight,
--check-config, stats, max_connections, a launcher restart under a running front. Each test has
its own daemon pair."""

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import (
    ALLOW,
    FRONT_BIN,
    LAUNCHER_BIN,
    TASK_USER,
    Client,
    base_main,
    standard_config,
    tag,
    wait_for,
)


def add_task(env, tasks, name):
    tasks = dict(tasks)
    tasks[name] = {"exec": [os.path.join(env.bindir, "touch")], "max_args": 2, "user": TASK_USER, "allow": ALLOW}
    return tasks


def submit_result(env, task, args):
    with env.client() as c:
        return c.call({"op": "submit", "task": task, "args": args})


def hup(d):
    d.front.send_signal(signal.SIGHUP)
    d.launcher.send_signal(signal.SIGHUP)


# ---------------------------------------------------------------------------------------------------
# reload


def test_sighup_bad_config_keeps_old_then_good_config_adds_task(env, start_daemons):
    main, tasks = standard_config(env)
    d = start_daemons(main, tasks)

    # a broken main file next to a valid new task: nothing of it may take effect
    env.write_config(main, add_task(env, tasks, "newtask"))
    env.write_main('{"store": {"type": "memory"}, "max_running": ')
    hup(d)
    time.sleep(1.0)
    assert d.front.poll() is None and d.launcher.poll() is None, "a bad config on SIGHUP must not stop a daemon"
    d.wait_ready()
    r = submit_result(env, "newtask", [tag()])
    assert r["ok"] is False and r["code"] == "unknown_task", r
    t = tag()
    with env.client() as c:
        assert c.wait_final(c.submit("touch", [t]))["state"] == "succeeded"  # old config still serves
    assert env.ev_exists(t)

    # semantically invalid (valid JSON) is kept out as well
    env.write_main(json.dumps(dict(main, max_running="many")))
    hup(d)
    time.sleep(1.0)
    assert submit_result(env, "newtask", [tag()])["code"] == "unknown_task"

    # a good config adds the task, in both daemons (the launcher runs it rather than rejecting it)
    env.write_config(main, add_task(env, tasks, "newtask"))
    hup(d)
    t = tag()
    wait_for(lambda: submit_result(env, "newtask", [t]).get("ok"), 10, 0.2, what="newtask accepted after SIGHUP")
    env.ev_wait(t)
    with env.client() as c:
        r = c.call({"op": "list", "limit": 10000})
        recs = [x for x in r["tasks"] if x["task"] == "newtask" and x["args"] == [t]]
        assert recs and c.wait_final(recs[0]["id"])["result"] == "success", recs


def test_sighup_removes_task(env, start_daemons):
    main, tasks = standard_config(env)
    d = start_daemons(main, tasks)
    tasks2 = dict(tasks)
    del tasks2["record"]
    env.write_config(main, tasks2)
    hup(d)
    wait_for(lambda: submit_result(env, "record", [tag(), "x"]).get("code") == "unknown_task", 10, 0.2,
             what="record removed after SIGHUP")
    with env.client() as c:
        c.wait_final(c.submit("touch", [tag()]))


def test_reload_op(env, start_daemons):
    main, tasks = standard_config(env)
    d = start_daemons(main, tasks)
    with env.client() as c:
        # bad config: an error, old config kept
        env.write_config(main, add_task(env, tasks, "newtask"))
        env.write_task_file("zz-broken.json", '{"name": "broken", "exec": ["/bin/true"], "timeout_sec": "soon"}')
        r = c.call({"op": "reload"}, timeout=20)
        assert r["ok"] is False and r["code"] == "bad_request", r
        c.ping()
        r = c.call({"op": "submit", "task": "newtask", "args": [tag()]})
        assert r["ok"] is False and r["code"] == "unknown_task", r
        c.wait_final(c.submit("touch", [tag()]))

        # good config: ok only once the new task is usable in both daemons
        os.unlink(os.path.join(env.tasks_dir, "zz-broken.json"))
        r = c.call({"op": "reload"}, timeout=20)
        assert r == {"ok": True}, r
        t = tag()
        tid = c.submit("newtask", [t])
        rec = c.wait_final(tid)
        assert rec["state"] == "succeeded" and rec["result"] == "success", rec
        assert env.ev_exists(t)
    assert d.front.poll() is None and d.launcher.poll() is None


def test_reload_op_refused_over_tcp(env, start_daemons):
    start_daemons()
    with env.client("tcp") as c:
        r = c.call({"op": "reload"})
        assert r["ok"] is False and r["code"] == "forbidden", r
        c.ping()


# ---------------------------------------------------------------------------------------------------
# SIGTERM


def test_sigterm_answers_frames_in_flight(env, start_daemons):
    d = start_daemons()
    n = 200
    # ~120 KB: still being read by the daemon when the signal arrives, yet small enough to sit in
    # the socket buffer, so every frame has been sent before SIGTERM
    payload = b"".join(
        json.dumps({"op": "submit", "task": "record", "args": [tag(), str(i)], "stdin": "x" * 500}).encode() + b"\n"
        for i in range(n)
    )
    pings = b'{"op":"ping"}\n' * 50
    c1 = env.client()
    c2 = env.client("tcp")
    c1.ping()
    c2.ping()
    c1.send(payload)
    c2.send(pings)
    d.front.send_signal(signal.SIGTERM)
    lines1 = c1.read_until_eof(20)
    lines2 = c2.read_until_eof(20)
    for lines, count in ((lines1, n), (lines2, 50)):
        assert len(lines) == count, f"{len(lines)} responses for {count} frames sent before SIGTERM"
        for line in lines:
            obj = json.loads(line)  # every response a complete JSON line
            assert isinstance(obj, dict) and "ok" in obj, line
    assert all(json.loads(x).get("pong") for x in lines2)
    rc = d.front.wait(10)
    assert rc == 0, f"asynctaskd exit status {rc} on SIGTERM"
    # it stopped listening
    with pytest.raises(OSError):
        Client(env.unix, timeout=2).ping()


def test_sigterm_lets_a_client_finish_the_frame_it_is_sending(env, start_daemons):
    """A one-shot client that connected just before SIGTERM (or is in the middle of a frame) gets
    its answer, not a closed connection; a silent one is closed after the grace period."""
    d = start_daemons()
    fresh = env.client()  # connected, nothing sent yet
    half = env.client("tcp")
    half.send(b'{"op":"pi')
    idle = env.client()
    idle.ping()  # between frames: nothing in flight
    silent = env.client()  # connects and never says anything
    # The stats caller is one more connection: all four are accepted before the signal.
    wait_for(lambda: d.stats()["connections"] == 5, what="4 connections accepted")
    d.front.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    fresh.send(b'{"op":"ping"}\n')
    half.send(b'ng"}\n')
    for c in (fresh, half):
        lines = c.read_until_eof(10)
        assert len(lines) == 1 and json.loads(lines[0]).get("pong") is True, lines
    assert idle.read_until_eof(10) == []
    started = time.monotonic()
    assert silent.read_until_eof(10) == []
    assert time.monotonic() - started < 5, "the silent connection held the shutdown"
    assert d.front.wait(10) == 0


def test_sigterm_reads_an_old_client_to_its_end(env, start_daemons):
    """An old client (one send per frame, never a read) is in the middle of its frames when SIGTERM
    comes. The front takes what has arrived, then shuts down its side and reads on until the client
    closes: the frames sent after the signal are refused (the daemon is stopping) and logged, not
    lost to a reset. Every frame is accounted for in the log: accepted, or refused."""
    main, tasks = standard_config(env)
    cmd = f"touch {env.ev}/{tag()}"
    main["commands"].append({"cmd": cmd, "user": TASK_USER, "allow": ALLOW})
    d = start_daemons(main, tasks)
    frame = b's:%d:"%s";\n' % (len(cmd), cmd.encode())
    before, after = 1000, 1000
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(("127.0.0.1", env.port))
    try:
        for _ in range(before):
            s.sendall(frame)
        wait_for(lambda: log_count(d, "Accepted task") == before, 30, what="the frames before the signal")
        d.front.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # the client goes on with its work, then sends more
        for _ in range(after):
            s.sendall(frame)
        assert s.recv(1) == b"", "an answer to a seed frame, or no end from the daemon"
    finally:
        s.close()
    assert d.front.wait(10) == 0
    with open(d.front_log, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    refused = len(re.findall(r"Refused seed frame from tcp 127\.0\.0\.1:\d+(?: uid=\d+\(\w+\))?: unavailable: the daemon is shutting "
                             r"down", text))
    refused += sum(int(n) for n in re.findall(r"Suppressed the messages of (\d+) more refused seed frame", text))
    assert (log_count(d, "Accepted task"), refused) == (before, after)


def test_frames_of_a_connection_reset_before_accept_are_handled(env, start_daemons):
    """A TCP client that sends its frames and resets the connection before the front has accepted it
    (the front is stopped meanwhile): what it sent is still in the socket, and is handled."""
    d = start_daemons()
    t = tag()
    cmd = f"touch {env.ev}/seed-ran"
    d.front.send_signal(signal.SIGSTOP)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(("127.0.0.1", env.port))  # the kernel completes the handshake: accept() comes later
        s.sendall(json.dumps({"op": "submit", "task": "touch", "args": [t]}).encode() + b"\n"
                  + b's:%d:"%s";\n' % (len(cmd), cmd.encode()))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # a reset
    finally:
        d.front.send_signal(signal.SIGCONT)
    env.ev_wait(t, 30)
    env.ev_wait("seed-ran", 30)
    assert d.stats()["submitted_total"] == 2


def log_count(d, needle):
    with open(d.front_log, "rb") as f:
        return f.read().decode("utf-8", "replace").count(needle)


def test_sigterm_idle_exits_zero(env, start_daemons):
    d = start_daemons()
    assert d.stop_front() == 0
    assert d.stop_launcher() == 0


# ---------------------------------------------------------------------------------------------------
# --check-config

ERR_LINE = re.compile(r"^(?P<file>[^:]+): (?P<key>[^:]*): (?P<msg>.+)$")


@pytest.mark.parametrize("binary", [FRONT_BIN, LAUNCHER_BIN], ids=["asynctaskd", "asynctask-launcher"])
def test_check_config_good(env, binary):
    main, tasks = standard_config(env)
    env.write_config(main, tasks)
    p = subprocess.run([binary, "--config", env.config_path, "--check-config"], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    assert len(p.stdout.decode().strip().splitlines()) == 1, p.stdout


@pytest.mark.parametrize("binary", [FRONT_BIN, LAUNCHER_BIN], ids=["asynctaskd", "asynctask-launcher"])
def test_check_config_bad(env, binary):
    main, tasks = standard_config(env)
    main["bogus_key"] = 1
    main["max_running"] = "many"
    env.write_config(main, tasks)
    env.write_task_file("bad.json", {"name": "bad", "exec": ["/bin/true"], "timeout_sec": "soon", "frobs": 2})
    p = subprocess.run([binary, "--config", env.config_path, "--check-config"], capture_output=True, timeout=30)
    assert p.returncode == 1, (p.returncode, p.stderr.decode())
    lines = p.stderr.decode().strip().splitlines()
    parsed = [ERR_LINE.match(x) for x in lines]
    assert all(parsed), f"not FILE: KEY: MESSAGE: {lines}"
    found = {(os.path.basename(m["file"]), m["key"]) for m in parsed}
    for want in (("asynctask.json", "bogus_key"), ("asynctask.json", "max_running"), ("bad.json", "timeout_sec"),
                 ("bad.json", "frobs")):
        assert want in found, f"{want} not reported: {lines}"


@pytest.mark.parametrize("binary", [FRONT_BIN, LAUNCHER_BIN], ids=["asynctaskd", "asynctask-launcher"])
def test_check_config_unparsable(env, binary):
    env.write_config(base_main(env), {})
    env.write_task_file("broken.json", '{"name": "broken", ')
    p = subprocess.run([binary, "--config", env.config_path, "--check-config"], capture_output=True, timeout=30)
    assert p.returncode == 1, p
    assert any(line.startswith(os.path.join(env.tasks_dir, "broken.json") + ": ") for line in p.stderr.decode().splitlines()), p.stderr


def test_daemon_refuses_to_start_with_bad_config(env):
    env.write_main('{"max_running": 0, "launcher": 5}')
    for binary in (FRONT_BIN, LAUNCHER_BIN):
        p = subprocess.run([binary, "--config", env.config_path, "--listen", f"unix:{env.dir}/x.sock"],
                           capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
        assert p.returncode != 0, f"{binary} started with a bad config"


# ---------------------------------------------------------------------------------------------------
# stats, ping, max_connections


def test_ping(env, start_daemons):
    start_daemons()
    for kind in ("unix", "tcp"):
        with env.client(kind) as c:
            assert c.call({"op": "ping"}) == {"ok": True, "pong": True, "version": "0.1.0"}


def test_stats_counts(env, start_daemons):
    start_daemons()
    c = env.client()
    s = c.call({"op": "stats"})
    want = {"ok": True, "queued": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0,
            "submitted_total": 0, "connections": 1, "launcher": "connected", "store": "memory"}
    assert {k: s.get(k) for k in want} == want, s
    for _ in range(2):
        c.wait_final(c.submit("touch", [tag()]))
    c.wait_final(c.submit("exit", ["1"]))
    cancelled = c.submit("touch", [tag()], delay=60)
    c.call({"op": "cancel", "id": cancelled})
    c.submit("touch", [tag()], delay=60)
    running = c.submit("sleeper", [tag(), "30"])
    c.wait_state(running, "running")
    c2 = env.client("tcp")
    c2.ping()
    s = c.call({"op": "stats"})
    assert {k: s[k] for k in ("queued", "running", "succeeded", "failed", "cancelled", "submitted_total", "connections")} == {
        "queued": 1, "running": 1, "succeeded": 2, "failed": 1, "cancelled": 1, "submitted_total": 6, "connections": 2}, s
    c2.close()
    wait_for(lambda: c.call({"op": "stats"})["connections"] == 1, 5, what="connection count to drop")
    c.call({"op": "cancel", "id": running})
    c.wait_final(running)
    s = c.call({"op": "stats"})
    assert (s["running"], s["cancelled"]) == (0, 2), s


def test_max_connections(env, start_daemons):
    main, tasks = standard_config(env)
    main["max_connections"] = 5
    d = start_daemons(main, tasks)
    # wait_ready's own connections are closed; make sure the daemon saw that
    wait_for(lambda: d.stats()["connections"] == 1, 5, what="idle daemon")
    conns = []
    for i in range(5):
        c = env.client("unix" if i % 2 else "tcp")
        c.ping()
        conns.append(c)
    extra = env.client("tcp")  # not an admin: root over the unix socket would get the admin reserve
    r = extra.recv(timeout=5)  # answered without asking, then closed
    assert r["ok"] is False and r["code"] == "unavailable", r
    assert extra.readline(timeout=5) is None, "the connection over the limit must be closed"
    extra.close()
    for c in conns:
        c.ping()  # the others are unaffected
    conns.pop().close()

    def served():
        try:
            with env.client() as c:
                return c.call({"op": "ping"}).get("pong") is True
        except (OSError, AssertionError):
            return False

    wait_for(served, 5, 0.1, what="a new connection served after one closed")
    for c in conns:
        c.close()


# ---------------------------------------------------------------------------------------------------
# launcher restart


def test_launcher_restart(env, start_daemons):
    d = start_daemons()
    c = env.client()
    t = tag()
    running = c.submit("sleeper", [t, "2"])
    env.ev_wait(t + ".child")
    assert d.stop_launcher() == 0, "launcher exit status on SIGTERM"
    wait_for(lambda: c.call({"op": "stats"})["launcher"] == "disconnected", 10, what="front to notice the launcher is gone")
    r = c.call({"op": "submit", "task": "touch", "args": [tag()]})
    assert r["ok"] is False and r["code"] == "unavailable", r
    c.ping()
    d.start_launcher()
    wait_for(lambda: c.call({"op": "stats"})["launcher"] == "connected", 15, 0.1, what="front to reconnect")
    t2 = tag()
    rec = c.wait_final(c.submit("touch", [t2]))
    assert rec["state"] == "succeeded", rec
    assert env.ev_exists(t2)
    # the run that was going on when the launcher stopped does not stay "running" for ever
    rec = c.wait_final(running, timeout=20)
    assert rec["state"] in ("succeeded", "failed"), rec


def test_front_restart_keeps_launcher(env, start_daemons):
    d = start_daemons()
    assert d.stop_front() == 0
    d.start_front()
    with env.client() as c:
        assert c.wait_final(c.submit("touch", [tag()]))["state"] == "succeeded"
