# SPDX-License-Identifier: MIT
"""Loopback TCP peers are the users that own their sockets (the kernel's sock_diag answer), not one
shared address: root and nobody connecting to 127.0.0.1 are two submitters, each seeing only its
own tasks and keys, and allow.users and allow.groups apply to them as over the unix socket. A peer
whose user cannot be known (its socket closed before the daemon accepted) may only submit."""

import grp
import json
import os
import pwd
import signal
import socket
import time

import pytest

from conftest import (
    serve_module,
    ALLOW,
    NOBODY_GID,
    NOBODY_UID,
    Env,
    needs_root,
    run_client_as,
    standard_config,
    tag,
    wait_for,
)

pytestmark = needs_root


def supplementary_member():
    """A (user, group) of this system where the user is in the group by /etc/group (or NSS) only, not
    as its primary group; None if there is none."""
    for g in grp.getgrall():
        for m in g.gr_mem:
            try:
                pw = pwd.getpwnam(m)
            except KeyError:
                continue
            if pw.pw_gid != g.gr_gid and pw.pw_uid != NOBODY_UID:
                return m, g.gr_name
    return None


SUPPLEMENTARY = supplementary_member()


def refused(r, code):
    assert r["ok"] is False and r["code"] == code, f"expected {code}, got {r}"


def payload(frames):
    return b"".join(json.dumps(f).encode() + b"\n" for f in frames)


def log_size(env):
    return os.path.getsize(env.daemons.front_log)


def log_since(env, offset):
    with open(env.daemons.front_log, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def tcp():
    e = Env()
    main, tasks = standard_config(e)
    touch = tasks["touch"]["exec"]
    # users and groups only: no network, so over TCP only the peer's user can let it in
    tasks["nobody_only"] = {**tasks["touch"], "exec": touch, "allow": {"users": ["nobody"]}}
    if SUPPLEMENTARY:
        tasks["supplementary"] = {**tasks["touch"], "exec": touch, "allow": {"groups": [SUPPLEMENTARY[1]]}}
    yield from serve_module(e, main, tasks)


def as_nobody(env, frames):
    """Frames pipelined over loopback TCP from a process running as nobody; the answers."""
    return run_client_as(NOBODY_UID, NOBODY_GID, ("127.0.0.1", env.port), payload(frames), len(frames))


def as_root(env, frames):
    with env.client("tcp") as c:
        c.send(payload(frames))
        return [c.recv(20) for _ in frames]


def admin_status(env, tid):
    with env.client() as c:
        return c.status(tid)


def test_tcp_peers_are_their_users(tcp):
    [rn] = as_nobody(tcp, [{"op": "submit", "task": "touch", "args": [tag()], "delay": 3600}])
    [rr] = as_root(tcp, [{"op": "submit", "task": "touch", "args": [tag()], "delay": 3600}])
    assert rn["ok"] is True and rr["ok"] is True, (rn, rr)
    assert admin_status(tcp, rn["id"])["submitter"] == f"uid:{NOBODY_UID}"
    assert admin_status(tcp, rr["id"])["submitter"] == "uid:0"
    with tcp.client() as c:
        for tid in (rn["id"], rr["id"]):
            assert c.call({"op": "cancel", "id": tid})["state"] == "cancelled"


def test_other_user_over_tcp_cannot_read_wait_or_cancel(tcp):
    secret = "secret-" + tag()
    [r] = as_root(tcp, [{"op": "submit", "task": "sleeper", "args": [secret, "30"]}])
    tid = r["id"]
    with tcp.client("tcp") as c:
        c.wait_state(tid, "running")
    log_at = log_size(tcp)
    frames = [
        {"op": "status", "id": tid},
        {"op": "wait", "id": tid, "timeout": 1},
        {"op": "wait", "id": tid, "timeout": 0},
        {"op": "cancel", "id": tid},
        {"op": "ping"},
    ]
    rs = as_nobody(tcp, frames)
    for f, r in zip(frames[:-1], rs[:-1]):
        refused(r, "forbidden")
        assert secret not in json.dumps(r), (f, r)
    assert rs[-1].get("pong") is True
    # the refusals name the peer by address and user
    text = log_since(tcp, log_at)
    assert f"from tcp 127.0.0.1:" in text and f"uid={NOBODY_UID}(nobody)" in text, text
    # the owner, over TCP too, still may; and its task was not cancelled
    with tcp.client("tcp") as c:
        r = c.status(tid)
        assert r["ok"] is True and r["state"] == "running" and r["args"] == [secret, "30"], r
        assert c.call({"op": "cancel", "id": tid})["ok"] is True
        assert c.wait_final(tid)["state"] == "cancelled"


def test_idempotency_key_is_per_user_over_tcp(tcp):
    key = "order-" + tag()
    sub = {"op": "submit", "task": "touch", "args": [tag()], "key": key, "delay": 3600}
    [first] = as_root(tcp, [sub])
    assert first["ok"] is True and "existing" not in first, first
    # nobody takes the same key: its own new task, not root's
    [theirs] = as_nobody(tcp, [sub])
    assert theirs["ok"] is True and "existing" not in theirs and theirs["id"] != first["id"], theirs
    # and root's submission again finds root's task, not nobody's
    [again] = as_root(tcp, [sub])
    assert again == {"ok": True, "id": first["id"], "state": "queued", "existing": True}, again
    [again] = as_nobody(tcp, [sub])
    assert again == {"ok": True, "id": theirs["id"], "state": "queued", "existing": True}, again
    assert admin_status(tcp, theirs["id"])["submitter"] == f"uid:{NOBODY_UID}"
    with tcp.client() as c:
        for tid in (first["id"], theirs["id"]):
            assert c.call({"op": "cancel", "id": tid})["state"] == "cancelled"


def test_allow_users_and_groups_apply_over_tcp(tcp):
    t = tag()
    # nobody_only: users nobody; rootonly: users root; grp_nogroup: groups nogroup (nobody's, from NSS)
    rn = as_nobody(tcp, [
        {"op": "submit", "task": "nobody_only", "args": [t + "-n1"]},
        {"op": "submit", "task": "grp_nogroup", "args": [t + "-n2"]},
        {"op": "submit", "task": "rootonly", "args": [t + "-n3"]},
    ])
    rr = as_root(tcp, [
        {"op": "submit", "task": "rootonly", "args": [t + "-r1"]},
        {"op": "submit", "task": "nobody_only", "args": [t + "-r2"]},
    ])
    assert rn[0]["ok"] is True and rn[1]["ok"] is True, rn
    refused(rn[2], "forbidden")
    assert rr[0]["ok"] is True, rr
    refused(rr[1], "forbidden")
    for name in ("-n1", "-n2", "-r1"):
        tcp.ev_wait(t + name)
    time.sleep(0.3)
    assert not tcp.ev_exists(t + "-n3") and not tcp.ev_exists(t + "-r2")
    # still no admin over TCP, and no task without an allow list
    refused(as_root(tcp, [{"op": "list"}])[0], "forbidden")
    refused(as_root(tcp, [{"op": "submit", "task": "noallow", "args": [t]}])[0], "forbidden")


@pytest.mark.skipif(not SUPPLEMENTARY, reason="no user here is in a group other than its primary one")
def test_allow_groups_match_supplementary_groups_over_tcp(tcp):
    """A TCP peer's groups are its user's in the group database, looked up when an allow list needs them."""
    user, group = SUPPLEMENTARY
    pw = pwd.getpwnam(user)
    t = tag()
    [r] = run_client_as(pw.pw_uid, pw.pw_gid, ("127.0.0.1", tcp.port),
                        payload([{"op": "submit", "task": "supplementary", "args": [t]}]), 1)
    assert r["ok"] is True, (user, group, r)
    tcp.ev_wait(t)
    assert admin_status(tcp, r["id"])["submitter"] == f"uid:{pw.pw_uid}"
    refused(as_nobody(tcp, [{"op": "submit", "task": "supplementary", "args": [t + "-n"]}])[0], "forbidden")


def test_networks_still_admit_every_local_user(tcp):
    """allow.networks 127.0.0.1/32 keeps admitting any local user over loopback TCP; each as itself."""
    assert "127.0.0.1/32" in ALLOW["networks"] and "nobody" not in ALLOW["users"]
    t = tag()
    [r] = as_nobody(tcp, [{"op": "submit", "task": "touch", "args": [t]}])
    assert r["ok"] is True, r
    tcp.ev_wait(t)
    assert admin_status(tcp, r["id"])["submitter"] == f"uid:{NOBODY_UID}"


def test_same_user_over_unix_and_tcp(tcp):
    [r] = run_client_as(NOBODY_UID, NOBODY_GID, tcp.front_sock,
                        payload([{"op": "submit", "task": "nobody_only", "args": [tag()], "delay": 3600}]), 1)
    tid = r["id"]
    status, cancel = as_nobody(tcp, [{"op": "status", "id": tid}, {"op": "cancel", "id": tid}])
    assert status["ok"] is True and status["submitter"] == f"uid:{NOBODY_UID}", status
    assert cancel == {"ok": True, "id": tid, "state": "cancelled"}, cancel


def test_peer_gone_before_accept_may_only_submit(tcp):
    """A client that has closed its socket by the time the daemon accepts (a fire-and-forget one)
    cannot be named by the kernel: it stays 127.0.0.1, may submit where networks allow, and its
    lookups and keys are refused."""
    t = tag()
    with tcp.client() as c:
        victim = c.submit("touch", [tag()], key="victim-" + t, delay=3600)
    frames = [
        {"op": "submit", "task": "touch", "args": [t + "-plain"]},
        {"op": "submit", "task": "touch", "args": [t + "-keyed"], "key": "victim-" + t},
        {"op": "status", "id": victim},
        {"op": "cancel", "id": victim},
        {"op": "submit", "task": "rootonly", "args": [t + "-root"]},
    ]
    log_at = log_size(tcp)
    front = tcp.daemons.front
    front.send_signal(signal.SIGSTOP)
    try:
        s = socket.create_connection(("127.0.0.1", tcp.port), timeout=5)
        s.sendall(payload(frames))
        s.close()
        time.sleep(0.2)
    finally:
        front.send_signal(signal.SIGCONT)
    tcp.ev_wait(t + "-plain")

    def refusals():
        return [line for line in log_since(tcp, log_at).splitlines()
                if "Refused" in line and "from tcp 127.0.0.1:" in line and "(user unknown)" in line]

    wait_for(lambda: len(refusals()) >= 4, 5, what="the refusals logged")
    text = "\n".join(refusals())
    assert "Refused submit of task 'touch' with a key" in text, text
    assert f"Refused status of task {victim}" in text and f"Refused cancel of task {victim}" in text, text
    assert "Refused submit of task 'rootonly'" in text, text
    time.sleep(0.3)
    assert not tcp.ev_exists(t + "-keyed") and not tcp.ev_exists(t + "-root")
    with tcp.client() as c:
        r = c.call({"op": "list", "limit": 10000})
        mine = [x for x in r["tasks"] if x["args"] == [t + "-plain"]]
        assert len(mine) == 1 and mine[0]["submitter"] == "tcp:127.0.0.1", mine
        r = c.status(victim)
        assert r["state"] == "queued", r
        assert c.call({"op": "cancel", "id": victim})["state"] == "cancelled"
