# SPDX-License-Identifier: MIT
"""Refusals: unknown tasks, unlisted commands, peers outside a task's allow list (TCP address, unix
uid and groups), admin-only operations, other submitters' tasks. Every refusal leaves the
connection usable and runs nothing. test_tcp_peer_uid.py has the users behind loopback TCP peers."""

import json
import os
import time

from conftest import NOBODY_GID, NOBODY_UID, needs_root, run_client_as, tag, wait_for


def refused(r, code):
    assert r["ok"] is False and r["code"] == code, f"expected {code}, got {r}"


def test_unknown_task(shared):
    with shared.client() as c:
        refused(c.call({"op": "submit", "task": "no-such-task"}), "unknown_task")
        c.ping()
        refused(c.call({"task": "resze", "args": []}), "unknown_task")  # op may be left out
        c.ping()


def test_unlisted_command(shared):
    t = tag()
    for kind in ("unix", "tcp"):
        with shared.client(kind) as c:
            refused(c.call({"op": "submit", "cmd": f"touch {shared.ev}/{t}"}), "command_not_allowed")
            c.ping()
            refused(c.call({"cmd": f"touch {shared.ev}/seed-ran "}), "command_not_allowed")  # not byte-for-byte
            c.ping()
    time.sleep(0.3)
    assert not shared.ev_exists(t)


def _log_mentions(path, needle, since):
    with open(path, "rb") as f:
        f.seek(since)
        return needle in f.read().decode("utf-8", "replace")


def test_forbidden_tcp_peer(shared):
    t = tag()
    with open(shared.daemons.front_log, "rb") as f:
        log_start = len(f.read())
    with shared.client("tcp") as c:
        # allow lists only 10.0.0.0/8
        refused(c.call({"op": "submit", "task": "tcp10", "args": [t]}), "forbidden")
        c.ping()
        # no allow list: root over unix only
        refused(c.call({"op": "submit", "task": "noallow", "args": [t]}), "forbidden")
        c.ping()
        # allow lists a group the peer's user is not in
        refused(c.call({"op": "submit", "task": "grp_daemon", "args": [t]}), "forbidden")
        c.ping()
        # but a task allowing 127.0.0.1/32 is fine
        c.wait_final(c.submit("touch", [t + "-ok"]))
    time.sleep(0.3)
    assert not shared.ev_exists(t)
    assert shared.ev_exists(t + "-ok")
    # the refusal is logged with the peer
    wait_for(lambda: _log_mentions(shared.daemons.front_log, "127.0.0.1", log_start), 3, what="refusal logged with peer address")


def test_root_over_unix_may_submit_task_without_allow(shared):
    if os.geteuid() != 0:
        # without allow only root over unix may submit
        with shared.client() as c:
            refused(c.call({"op": "submit", "task": "noallow", "args": [tag()]}), "forbidden")
        return
    t = tag()
    with shared.client() as c:
        assert c.wait_final(c.submit("noallow", [t]))["state"] == "succeeded"
    assert shared.ev_exists(t)


@needs_root
def test_forbidden_unix_peer_nobody(shared):
    t = tag()
    frames = [
        {"op": "submit", "task": "noallow", "args": [t]},  # no allow: root only
        {"op": "ping"},
        {"op": "submit", "task": "rootonly", "args": [t]},  # users: root
        {"op": "ping"},
        {"op": "submit", "task": "touch", "args": [t]},  # users: root, networks: 127.0.0.1
        {"op": "ping"},
        {"op": "submit", "task": "grp_daemon", "args": [t]},  # groups: daemon
        {"op": "ping"},
        {"op": "submit", "cmd": f"touch {shared.ev}/seed-ran"},  # listed, but not for nobody
        {"op": "ping"},
        {"op": "submit", "task": "grp_nogroup", "args": [t + "-grp"]},  # groups: nogroup (nobody's)
        {"op": "stats"},
    ]
    payload = b"".join(json.dumps(f).encode() + b"\n" for f in frames)
    rs = run_client_as(NOBODY_UID, NOBODY_GID, shared.front_sock, payload, len(frames))
    for i in range(0, 10, 2):
        refused(rs[i], "forbidden")
        assert rs[i + 1].get("pong") is True, rs[i + 1]
    assert rs[10]["ok"] is True, rs[10]
    assert rs[11]["ok"] is True and "queued" in rs[11], rs[11]
    shared.ev_wait(t + "-grp")
    time.sleep(0.3)
    assert not shared.ev_exists(t)
    with shared.client() as c:
        rec = c.wait_final(rs[10]["id"])
        assert rec["submitter"] == f"uid:{NOBODY_UID}", rec


@needs_root
def test_nobody_is_not_admin_and_cannot_see_others_tasks(shared):
    with shared.client() as c:
        tid = c.submit("touch", [tag()])
        c.wait_final(tid)
    frames = [
        {"op": "list"},
        {"op": "retry", "id": tid},
        {"op": "retry", "state": "failed"},
        {"op": "forget", "id": tid},
        {"op": "status", "id": tid},
        {"op": "wait", "id": tid, "timeout": 1},
        {"op": "cancel", "id": tid},
        {"op": "ping"},
    ]
    payload = b"".join(json.dumps(f).encode() + b"\n" for f in frames)
    rs = run_client_as(NOBODY_UID, NOBODY_GID, shared.front_sock, payload, len(frames))
    for r in rs[:-1]:
        refused(r, "forbidden")
    assert rs[-1].get("pong") is True
    with shared.client() as c:
        assert c.status(tid)["state"] == "succeeded"  # not forgotten


def test_non_admin_list_retry_forget_forbidden(shared):
    with shared.client() as c:
        tid = c.submit("exit", ["1"])
        assert c.wait_final(tid)["state"] == "failed"
    with shared.client("tcp") as c:
        refused(c.call({"op": "list"}), "forbidden")
        c.ping()
        refused(c.call({"op": "list", "state": "failed", "limit": 5}), "forbidden")
        c.ping()
        refused(c.call({"op": "retry", "id": tid}), "forbidden")
        c.ping()
        refused(c.call({"op": "retry", "state": "failed"}), "forbidden")
        c.ping()
        refused(c.call({"op": "forget", "id": tid}), "forbidden")
        c.ping()
    with shared.client() as c:
        r = c.status(tid)
        assert r["ok"] is True and r["state"] == "failed" and r["attempts"] == 1, r  # neither retried nor forgotten
        # the admin may
        r = c.call({"op": "list", "state": "failed", "limit": 10000})
        assert r["ok"] is True and tid in [x["id"] for x in r["tasks"]], r
        assert all(x["state"] == "failed" for x in r["tasks"])
        assert c.call({"op": "forget", "id": tid}) == {"ok": True, "id": tid}
        refused(c.status(tid), "not_found")


@needs_root
def test_other_submitters_task_forbidden(shared):
    """Over loopback TCP another user (nobody) cannot reach root's task, but may its own."""
    addr = ("127.0.0.1", shared.port)
    with shared.client() as cu:
        tid = cu.submit("sleeper", [tag(), "30"])
        frames = [
            {"op": "status", "id": tid},
            {"op": "wait", "id": tid, "timeout": 1},
            {"op": "cancel", "id": tid},
            {"op": "submit", "task": "touch", "args": [tag()], "delay": 3600},
        ]
        rs = run_client_as(NOBODY_UID, NOBODY_GID, addr, b"".join(json.dumps(f).encode() + b"\n" for f in frames),
                           len(frames))
        for r in rs[:3]:
            refused(r, "forbidden")
        assert rs[3]["ok"] is True, rs[3]
        own = rs[3]["id"]
        # its own task it may query and cancel
        frames = [{"op": "status", "id": own}, {"op": "cancel", "id": own}]
        rs = run_client_as(NOBODY_UID, NOBODY_GID, addr, b"".join(json.dumps(f).encode() + b"\n" for f in frames),
                           len(frames))
        assert rs[0]["ok"] is True and rs[0]["state"] == "queued", rs[0]
        assert rs[1] == {"ok": True, "id": own, "state": "cancelled"}, rs[1]
        # the admin may see the TCP client's task, which carries its user
        assert cu.status(own)["submitter"] == f"uid:{NOBODY_UID}"
        assert cu.status(tid)["state"] in ("queued", "running")  # the forbidden cancel did nothing
        assert cu.call({"op": "cancel", "id": tid})["ok"] is True
        assert cu.wait_final(tid)["state"] == "cancelled"


def test_stats_and_ping_allowed_for_anyone(shared):
    with shared.client("tcp") as c:
        c.ping()
        r = c.call({"op": "stats"})
        assert r["ok"] is True and r["store"] == "memory" and r["launcher"] == "connected", r
