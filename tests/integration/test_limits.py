# SPDX-License-Identifier: MIT
"""Limits one local user cannot push past to harm the others: connections per user (with a reserve
past max_connections for admins over the unix socket), a deadline for a frame, a bounded drain of a
refused peer, and per-submitter quotas on unfinished tasks and their stdin bytes."""

import contextlib
import os
import socket
import threading
import time

from conftest import (
    NOBODY_GID,
    NOBODY_UID,
    Client,
    needs_root,
    standard_config,
    tag,
    wait_for,
)


@contextlib.contextmanager
def as_nobody():
    """Sockets made and connected inside are nobody's: the kernel takes a unix peer's credentials and
    a TCP socket's owner from the effective ids at socket() and connect()."""
    os.setegid(NOBODY_GID)
    os.seteuid(NOBODY_UID)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def nobody_client(env, kind="unix", **kw):
    with as_nobody():
        return env.client(kind, **kw)


def refused(c):
    """The one line a refused connection gets, then its end."""
    r = c.recv(timeout=10)
    assert c.readline(timeout=10) is None, "a refused connection must be closed"
    return r


def nobody_held(env, kind, limit_error):
    """A connection of nobody's that is served. A connection the test closed just before may not be
    closed in the front yet and still count against max_connections: then try again."""
    for _ in range(100):
        c = nobody_client(env, kind)
        r = c.call({"op": "ping"})
        if r.get("pong") is True:
            return c
        c.close()
        assert r.get("error") == limit_error, r
        time.sleep(0.1)
    raise AssertionError("max_connections stayed reached")


def connections(env):
    return env.daemons.stats()["connections"]


@needs_root
def test_connections_per_user_and_admin_reserve(env, start_daemons):
    """nobody gets max_connections_per_user connections, and the next one is refused with an answer;
    with those the front is full, and still root's ping over the unix socket is answered (the admin
    reserve), while a non-admin (root over TCP is not an admin) is refused."""
    main, tasks = standard_config(env, max_connections=6, max_connections_per_user=6)
    env.daemons = start_daemons(main, tasks)
    held = []
    try:
        for kind in ("unix", "tcp", "unix", "tcp", "unix", "tcp"):
            held.append(nobody_held(env, kind, "too many connections (max 6)"))
        for kind in ("unix", "tcp"):
            with nobody_client(env, kind) as extra:
                r = refused(extra)
                assert r["ok"] is False and r["code"] == "unavailable", r
                assert r["error"] in (f"too many connections from uid:{NOBODY_UID} (max 6 per user)",
                                      "too many connections (max 6)"), r
        t0 = time.monotonic()
        with env.client() as root:
            root.ping()
            assert root.call({"op": "stats"})["connections"] == 7
        assert time.monotonic() - t0 < 10
        with env.client("tcp") as other:
            assert refused(other) == {"ok": False, "code": "unavailable", "error": "too many connections (max 6)"}
    finally:
        for c in held:
            c.close()


@needs_root
def test_per_user_cap_leaves_room_for_others(env, start_daemons):
    """One user at its cap does not keep another user out."""
    main, tasks = standard_config(env, max_connections=20, max_connections_per_user=3)
    env.daemons = start_daemons(main, tasks)
    held = [nobody_client(env, kind) for kind in ("unix", "tcp", "unix")]
    try:
        # Each served before the next connects: the two listeners' accepts come in no fixed order.
        for c in held:
            c.ping()
        with nobody_client(env) as extra:
            assert refused(extra)["error"] == f"too many connections from uid:{NOBODY_UID} (max 3 per user)"
        with env.client("tcp") as other:  # uid:0 over TCP: another user, not an admin
            other.ping()
        held.pop().close()
        wait_for(lambda: connections(env) == 2 + 1, 10, 0.05, what="one of nobody's connections closed")
        with nobody_client(env) as again:
            again.ping()
    finally:
        for c in held:
            c.close()


def test_frame_deadline(env, start_daemons):
    """A connection that stops in the middle of a frame, or connects and never speaks, is answered and
    closed after frame_timeout_sec; one that has finished its frames may stay idle."""
    main, tasks = standard_config(env, frame_timeout_sec=2)
    env.daemons = start_daemons(main, tasks)
    half = env.client(timeout=30)
    silent = env.client("tcp", timeout=30)
    kept = env.client(timeout=30)
    try:
        kept.ping()
        half.send(b'{"op":"pi')
        for c in (half, silent):
            r = c.recv(timeout=30)
            assert r == {"ok": False, "code": "bad_frame", "error": "no complete frame within 2 s"}, r
            assert c.readline(timeout=10) is None
        time.sleep(1)
        kept.ping()  # idle between frames for longer than the deadline: still served
    finally:
        for c in (half, silent, kept):
            c.close()


def test_refused_peer_that_keeps_writing(env, start_daemons):
    """A refused peer that writes without pause gets its answer and is closed; it does not hold the
    accept loop, so the front keeps serving everyone else."""
    main, tasks = standard_config(env, max_connections=2)
    env.daemons = start_daemons(main, tasks)
    stop = threading.Event()
    result = {}

    def flood():
        s = socket.create_connection(("127.0.0.1", env.port))
        chunk = b"x" * 65536
        sent = 0
        try:
            while not stop.is_set() and sent < 4 << 30:
                sent += s.send(chunk)
        except OSError as e:
            result["error"] = e
        result["sent"] = sent
        s.close()

    held = [env.client("tcp", timeout=60), env.client("tcp", timeout=60)]
    threads = [threading.Thread(target=flood, daemon=True) for _ in range(2)]
    try:
        for c in held:  # both accepted and served before the flood (a loaded machine may be slow)
            c.ping()
        for t in threads:
            t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        with env.client(timeout=10) as root:  # the admin reserve
            root.ping()
        for c in held:
            c.ping()
        assert time.monotonic() - t0 < 10, "the front stalled behind a refused peer"
        for t in threads:
            t.join(timeout=20)
            assert not t.is_alive(), "a refused peer was never closed"
        assert "error" in result, result
    finally:
        stop.set()
        for c in held:
            c.close()


def submit_raw(c, task, **kw):
    return c.call(dict({"op": "submit", "task": task, "args": [tag()]}, **kw))


@needs_root
def test_queued_tasks_quota(env, start_daemons):
    """A submitter at max_queued_per_submitter unfinished tasks gets quota_exceeded and nothing is
    accepted; another submitter is unaffected; once its tasks have finished it may submit again."""
    main, tasks = standard_config(env, max_queued_per_submitter=3)
    env.daemons = start_daemons(main, tasks)
    with nobody_client(env, "tcp") as c, env.client() as admin, env.client("tcp") as other:
        ids = [c.submit("touch", [tag()], delay=3600) for _ in range(3)]
        before = admin.call({"op": "stats"})["queued"]
        r = submit_raw(c, "touch", delay=3600)
        assert r["ok"] is False and r["code"] == "quota_exceeded", r
        assert f"uid:{NOBODY_UID} has 3 unfinished tasks" in r["error"], r
        assert admin.call({"op": "stats"})["queued"] == before, "a refused submission was queued"
        other_id = other.submit("touch", [tag()], delay=3600)  # uid:0 over TCP: not an admin
        for _ in range(4):  # admins are exempt
            admin.submit("touch", [tag()], delay=3600)
        for tid in ids:
            assert admin.call({"op": "cancel", "id": tid})["ok"] is True
        t = tag()
        tid = c.submit("touch", [t])
        assert admin.wait_final(tid, timeout=60)["state"] == "succeeded"
        assert os.path.exists(os.path.join(env.ev, t))
        assert admin.call({"op": "cancel", "id": other_id})["ok"] is True


@needs_root
def test_queued_stdin_quota(env, start_daemons):
    """max_queued_stdin_bytes_per_submitter likewise, counted on the stdin of unfinished tasks."""
    main, tasks = standard_config(env, max_queued_stdin_bytes_per_submitter=1000)
    env.daemons = start_daemons(main, tasks)
    with nobody_client(env, "tcp") as c, env.client() as admin:
        first = c.submit("stdin", [tag()], delay=3600, stdin="a" * 600)
        r = submit_raw(c, "stdin", delay=3600, stdin="b" * 600)
        assert r["ok"] is False and r["code"] == "quota_exceeded", r
        c.submit("stdin", [tag()], delay=3600, stdin="c" * 400)  # exactly at the quota
        r = submit_raw(c, "stdin", delay=3600, stdin="d")
        assert r["code"] == "quota_exceeded", r
        assert admin.call({"op": "cancel", "id": first})["ok"] is True
        c.submit("stdin", [tag()], delay=3600, stdin="e" * 600)
