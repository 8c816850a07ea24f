# SPDX-License-Identifier: MIT
"""Security: what a peer that is not allowed gets for every operation (TCP and unix, JSON and seed
frames); submitters kept apart from each other's records; client arguments never reaching a shell
and no request field reaching the environment or the task's user; tasks running exactly as their
configured user and groups, whoever submitted them; and the launcher, which accepts only the front's
uid and re-checks everything a (possibly forged) front sends against its own configuration and its
limits (max_running, concurrency, max_frame_bytes, held results, message size and values).

test_auth.py has the basic refusals; these tests enumerate every operation and field instead."""

import base64
import glob
import grp
import ipaddress
import json
import os
import pwd
import socket
import stat
import subprocess
import sys
import time

import pytest

from conftest import (
    ALLOW,
    CLI_BIN,
    FRONT_BIN,
    IS_ROOT,
    LAUNCHER_BIN,
    ME,
    NOBODY_UID,
    TASK_USER,
    Client,
    Daemons,
    Env,
    needs_root,
    recv_before,
    run_client_as,
    serve_module,
    standard_config,
    tag,
    wait_for,
)

PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

# A TCP source address no task allows, and two that only the "pair_tcp" task allows. Over loopback
# a TCP peer is also its user (the owner of its socket), so these connect as the users below.
TCP_OUTSIDER = "127.0.0.4"
TCP_PAIR = ("127.0.0.2", "127.0.0.3")
# A unix user no task allows (a web server's user: the typical compromised client).
OUTSIDER = "www-data"
# Two unix users that may both submit "pair_unix" (and nothing of each other's).
PAIR_USERS = ("nobody", "daemon")
# Supplementary groups the launcher runs with (besides root's): no task may inherit them.
LAUNCHER_EXTRA_GROUPS = ("adm", "disk")
# Supplementary groups given to submitting clients: no task may inherit them either.
CLIENT_EXTRA_GROUP = "adm"


def _uid(name):
    return pwd.getpwnam(name).pw_uid


def _gid_of_user(name):
    return pwd.getpwnam(name).pw_gid


def _gid(name):
    return grp.getgrnam(name).gr_gid


def refused(r, code):
    assert r["ok"] is False and r["code"] == code, f"expected {code}, got {r}"


def s_frame(cmd):
    b = cmd.encode() if isinstance(cmd, str) else cmd
    return b's:%d:"%s";' % (len(b), b)


def php_str(b):
    b = b.encode() if isinstance(b, str) else b
    return b's:%d:"%s";' % (len(b), b)


def o_frame(cls, props):
    """A PHP serialize()d object with public string properties."""
    body = b"".join(php_str(k) + php_str(v) for k, v in props)
    c = cls.encode()
    return b'O:%d:"%s":%d:{%s}' % (len(c), c, len(props), body)


def payload(frames):
    return b"".join((f if isinstance(f, bytes) else json.dumps(f).encode()) + b"\n" for f in frames)


def is_seed(frame):
    return isinstance(frame, bytes) and frame.startswith((b"s:", b"O:"))


def n_answered(frames):
    """Seed frames get no answer; every other frame gets one."""
    return sum(1 for f in frames if not is_seed(f))


def seed_refused(env):
    return env.daemons.stats()["seed_refused"]


class SrcClient(Client):
    """A TCP client connecting to the front from a chosen loopback source address."""

    def __init__(self, port, src, timeout=10.0):
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.settimeout(timeout)
            self.sock.bind((src, 0))
            self.sock.connect(("127.0.0.1", port))
        except BaseException:
            self.sock.close()
            raise


def tcp_batch(env, src, frames, timeout=20.0, user=None):
    """Pipelines frames from TCP source address src (as user, if given); returns the responses in order
    (none for seed frames)."""
    if user is not None:
        return run_client_as(_uid(user), _gid_of_user(user), ("127.0.0.1", env.port, src), payload(frames),
                             n_answered(frames))
    with SrcClient(env.port, src) as c:
        c.send(payload(frames))
        rs = [c.recv(timeout) for _ in range(n_answered(frames))]
        c.expect_silence(0.2)
        return rs


def unix_batch(env, user, frames, groups=()):
    """Pipelines frames over the unix socket from a process running as user; returns the responses
    (none for seed frames)."""
    return run_client_as(_uid(user), _gid_of_user(user), env.front_sock, payload(frames), n_answered(frames),
                         groups=[_gid(g) for g in groups])


def user_peer(kind, user, addr=None):
    """A peer as peer_allowed() takes it: ("unix", uid, {gids}) or ("tcp", addr, uid, {gids}), with the
    user's groups as NSS has them (what the daemon reads for TCP peers)."""
    uid, gid = _uid(user), _gid_of_user(user)
    gids = set(os.getgrouplist(user, gid))
    return ("unix", uid, gids) if kind == "unix" else ("tcp", addr, uid, gids)


def peer_allowed(allow, peer):
    """The documented policy, independently: is peer (see user_peer(); a TCP peer's uid is None when
    its user is unknown) matched by a task's allow list (None: root over unix only)?"""
    if allow is None:
        return peer[0] == "unix" and peer[1] == 0
    uid, gids = peer[1:3] if peer[0] == "unix" else peer[2:4]
    if uid is not None:
        uids = {_uid(u) for u in allow.get("users", [])}
        allowed_gids = {_gid(g) for g in allow.get("groups", [])}
        if uid in uids or gids & allowed_gids:
            return True
    if peer[0] != "tcp":
        return False
    addr = ipaddress.ip_address(peer[1])
    return any(addr in ipaddress.ip_network(n) for n in allow.get("networks", []))


def log_size(path):
    return os.path.getsize(path)


def log_since(path, offset):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------------
# The module's daemons: the standard task set plus tasks for two submitters, more task users, and a
# launcher that runs with extra supplementary groups.


class GroupedDaemons(Daemons):
    def _spawn(self, argv, log):
        if argv[0] != LAUNCHER_BIN or not IS_ROOT:
            return super()._spawn(argv, log)
        f = open(log, "ab")
        try:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f, env=self.daemon_env,
                                    cwd=self.env.dir, extra_groups=[0] + [_gid(g) for g in LAUNCHER_EXTRA_GROUPS])
        finally:
            f.close()


WHOAMI_TASKS = {
    # task: (user, group or None for the user's primary group)
    "whoami_nobody": ("nobody", None),
    "whoami_group": ("nobody", "daemon"),
    "whoami_daemon": ("daemon", None),
    "whoami_www_backup": ("www-data", "backup"),
}


# What a task can see of its own privileges: descriptors, ids, capabilities (written as JSON).
PROBE = """#!/usr/bin/python3
import json, os, sys
fds = {}
for f in os.listdir("/proc/self/fd"):
    try:
        fds[f] = os.readlink("/proc/self/fd/" + f)
    except OSError:
        pass
st = {}
with open("/proc/self/status") as f:
    for line in f:
        k, _, v = line.partition(":")
        if k.startswith("Cap") or k in ("Uid", "Gid", "Groups", "NoNewPrivs"):
            st[k] = v.split()
with open(os.path.join(sys.argv[1], sys.argv[2] + ".probe"), "w") as f:
    json.dump({"fds": fds, "status": st}, f)
"""
PROBE_TASKS = {"probe_nobody": ("nobody", None), "probe_www_backup": ("www-data", "backup")}


def security_config(e):
    main, tasks = standard_config(e)
    bins = {os.path.basename(p): p for p in glob.glob(os.path.join(e.bindir, "*"))}
    probe = os.path.join(e.bindir, "probe")
    with open(probe, "w") as f:
        f.write(PROBE)
    os.chmod(probe, 0o755)
    for name, (user, group) in PROBE_TASKS.items():
        t = {"exec": [probe, e.ev], "max_args": 1, "user": user if IS_ROOT else TASK_USER, "allow": ALLOW}
        if group and IS_ROOT:
            t["group"] = group
        tasks[name] = t
    who_allow = {"users": [ME, *PAIR_USERS], "networks": ["127.0.0.1/32"]}
    for name, (user, group) in WHOAMI_TASKS.items():
        t = {"exec": [bins["whoami"]], "max_args": 1, "user": user if IS_ROOT else TASK_USER, "allow": who_allow}
        if group and IS_ROOT:
            t["group"] = group
        tasks[name] = t
    tasks["pair_unix"] = {"exec": [bins["touch"]], "max_args": 2, "user": TASK_USER,
                          "allow": {"users": list(PAIR_USERS)}}
    tasks["pair_tcp"] = {"exec": [bins["touch"]], "max_args": 2, "user": TASK_USER,
                         "allow": {"networks": [f"{a}/32" for a in TCP_PAIR]}}
    return main, tasks


@pytest.fixture(scope="module")
def sec():
    e = Env()
    main, tasks = security_config(e)
    yield from serve_module(e, main, tasks, daemons_cls=GroupedDaemons)


def submitted_total(env):
    return env.daemons.stats()["submitted_total"]


# ---------------------------------------------------------------------------------------------------
# 1. A peer that is not allowed: every operation


def _victims(env):
    """Tasks of the admin (root over unix) in each state a request can meet: returns {name: id}."""
    with env.client() as c:
        done = c.submit("touch", [tag()])
        failed = c.submit("exit", ["3"])
        running = c.submit("sleeper", [tag(), "30"])
        queued = c.submit("touch", [tag()], delay=3600)
        assert c.wait_final(done)["state"] == "succeeded"
        assert c.wait_final(failed)["state"] == "failed"
        c.wait_state(running, "running")
    return {"succeeded": done, "failed": failed, "running": running, "queued": queued}


def _forbidden_frames(env, peer, victims):
    """Every frame a non-allowed peer can send that must be answered forbidden, as (label, frame)."""
    frames = []
    for name in sorted(env.tasks):
        if peer_allowed(env.tasks[name].get("allow"), peer):
            continue
        frames.append((f"submit {name}", {"op": "submit", "task": name, "args": []}))
    # op left out; every optional field; args beyond max_args (refused before they are counted)
    frames.append(("submit touch (op implied)", {"task": "touch", "args": ["x"]}))
    frames.append(("submit touch (all fields)", {"op": "submit", "task": "touch", "args": ["x"], "key": "k",
                                                 "delay": 0, "priority": 5, "stdin": "data"}))
    frames.append(("submit touch (too many args)", {"op": "submit", "task": "touch", "args": ["a", "b", "c"]}))
    for i, cmd in enumerate(env.main["commands"]):
        if not peer_allowed(cmd.get("allow"), peer):
            frames.append((f"submit cmd {i}", {"op": "submit", "cmd": cmd["cmd"]}))
            frames.append((f"seed s: cmd {i}", s_frame(cmd["cmd"])))
    for cls, task in env.main["php_classes"].items():
        if not peer_allowed(env.tasks[task].get("allow"), peer):
            frames.append((f"seed O:{cls}", o_frame(cls, [("name", "mary")])))
    for state, tid in victims.items():
        frames.append((f"status {state}", {"op": "status", "id": tid}))
        frames.append((f"wait {state}", {"op": "wait", "id": tid, "timeout": 1}))
        frames.append((f"wait {state} (no timeout)", {"op": "wait", "id": tid}))
        frames.append((f"cancel {state}", {"op": "cancel", "id": tid}))
        frames.append((f"retry {state}", {"op": "retry", "id": tid}))
        frames.append((f"forget {state}", {"op": "forget", "id": tid}))
    frames.append(("retry state failed", {"op": "retry", "state": "failed"}))
    frames.append(("retry state cancelled", {"op": "retry", "state": "cancelled"}))
    frames.append(("list", {"op": "list"}))
    frames.append(("list state limit", {"op": "list", "state": "queued", "limit": 10000}))
    frames.append(("reload", {"op": "reload"}))
    return frames


def _check_forbidden_peer(env, peer, send, log_needle):
    victims = _victims(env)
    forbidden = _forbidden_frames(env, peer, victims)
    ops_seen = set()
    for label, f in forbidden:
        ops_seen.add(f.get("op", "submit") if isinstance(f, dict) else "seed")
    # every op of the protocol is represented (ping and stats below, allowed to anyone)
    assert ops_seen >= {"submit", "status", "wait", "cancel", "retry", "forget", "list", "reload", "seed"}, ops_seen
    # by design: answered for anyone, or not a refusal at all
    other = [
        ("ping", {"op": "ping"}, None),
        ("stats", {"op": "stats"}, None),
        ("unknown task", {"op": "submit", "task": "no-such-" + tag()}, "unknown_task"),
        ("unlisted command", {"op": "submit", "cmd": f"touch {env.ev}/{tag()}"}, "command_not_allowed"),
        ("unknown id", {"op": "status", "id": 9007199254740991}, "not_found"),
    ]
    # Seed frames get no answer: a refusal is logged and counted instead. (The log is rate-limited to
    # 10 lines per 5 s: these tests stay under that.)
    other_seeds = [("unmapped PHP class", o_frame("Sheep", []))]
    seeds = [(label, f) for label, f in forbidden if is_seed(f)]
    answered = [(label, f) for label, f in forbidden if not is_seed(f)]
    before = submitted_total(env)
    seed_refused_before = seed_refused(env)
    log_at = log_size(env.daemons.front_log)
    frames = [f for _, f in forbidden] + [f for _, f, _ in other] + [f for _, f in other_seeds]
    rs = send(frames)
    assert len(rs) == len(answered) + len(other)
    wrong = [(label, r) for (label, _), r in zip(answered, rs) if not (r["ok"] is False and r["code"] == "forbidden")]
    assert not wrong, f"not forbidden: {wrong}"
    for (label, _, code), r in zip(other, rs[len(answered):]):
        if code is None:
            assert r["ok"] is True, (label, r)
        else:
            refused(r, code)
    assert rs[len(answered)].get("pong") is True
    assert seed_refused(env) == seed_refused_before + len(seeds) + len(other_seeds)
    # nothing was accepted or changed
    assert submitted_total(env) == before
    with env.client() as c:
        for state, tid in victims.items():
            r = c.status(tid)
            assert r["ok"] is True and r["state"] == state and r["attempts"] == (0 if state == "queued" else 1), r
        # every refusal is logged with the peer's identity
        def logged():
            text = log_since(env.daemons.front_log, log_at)
            return sum(1 for line in text.splitlines() if "Refused" in line and log_needle in line)

        # (the unmapped class's refusal is logged too, as any refused seed frame is)
        wait_for(lambda: logged() >= len(forbidden) + len(other_seeds), 5, what="refusals logged")
        assert logged() == len(forbidden) + len(other_seeds)
        text = log_since(env.daemons.front_log, log_at)
        for label, f in seeds:
            assert any("Refused seed frame" in line and log_needle in line and ": forbidden: " in line
                       for line in text.splitlines()), f"{label}: no log line"
        for tid in (victims["running"], victims["queued"]):
            assert c.call({"op": "cancel", "id": tid})["ok"] is True
            assert c.wait_final(tid)["state"] == "cancelled"
    return len(forbidden)


@needs_root
def test_forbidden_tcp_peer_every_op(sec):
    peer = user_peer("tcp", OUTSIDER, TCP_OUTSIDER)
    n = _check_forbidden_peer(sec, peer, lambda frames: tcp_batch(sec, TCP_OUTSIDER, frames, user=OUTSIDER),
                              f"from tcp {TCP_OUTSIDER}:")
    assert n >= 50


@needs_root
def test_forbidden_unix_peer_every_op(sec):
    uid = _uid(OUTSIDER)
    peer = user_peer("unix", OUTSIDER)
    n = _check_forbidden_peer(sec, peer, lambda frames: unix_batch(sec, OUTSIDER, frames), f"from uid={uid}(")
    assert n >= 50


# ---------------------------------------------------------------------------------------------------
# 2. Submitters cannot touch each other's tasks


def _cross_ops(tid):
    return [
        {"op": "status", "id": tid},
        {"op": "wait", "id": tid, "timeout": 0},
        {"op": "wait", "id": tid, "timeout": 1},
        {"op": "cancel", "id": tid},
        {"op": "retry", "id": tid},
        {"op": "forget", "id": tid},
    ]


def _isolation(env, a, b, send, task, who):
    """a and b (peer handles for send) each submit two tasks of `task` with the same key; then each
    tries every op on the other's. Returns the number of forbidden answers."""
    key = "same-key-" + tag()
    ids = {}
    for p in (a, b):
        r1, r2 = send(p, [{"op": "submit", "task": task, "args": [tag()], "key": key, "delay": 3600},
                          {"op": "submit", "task": task, "args": [tag()]}])
        assert r1["ok"] is True and "existing" not in r1, (p, r1)  # a key is per submitter: no peek at b's
        assert r2["ok"] is True, (p, r2)
        ids[p] = (r1["id"], r2["id"])
    with env.client() as c:
        for p in (a, b):
            assert c.wait_final(ids[p][1])["state"] == "succeeded"
            assert c.status(ids[p][0])["submitter"] == who[p]
    n_forbidden = 0
    for me, other in ((a, b), (b, a)):
        frames = []
        for tid in ids[other]:
            frames += _cross_ops(tid)
        frames += [
            {"op": "list"},
            {"op": "list", "state": "queued"},
            # its own: may read and wait; retry, forget and list are for admins
            {"op": "status", "id": ids[me][0]},
            {"op": "wait", "id": ids[me][1], "timeout": 0},
            {"op": "retry", "id": ids[me][1]},
            {"op": "forget", "id": ids[me][1]},
        ]
        rs = send(me, frames)
        n_cross = 6 * len(ids[other]) + 2
        for f, r in zip(frames[:n_cross], rs[:n_cross]):
            assert r["ok"] is False and r["code"] == "forbidden", (me, f, r)
            assert "submitter" not in r and "args" not in r, r
        n_forbidden += n_cross
        own_status, own_wait, own_retry, own_forget = rs[n_cross:]
        assert own_status["ok"] is True and own_status["state"] == "queued", own_status
        assert own_status["submitter"] == who[me]
        assert own_wait["ok"] is True and own_wait["state"] == "succeeded", own_wait
        refused(own_retry, "forbidden")
        refused(own_forget, "forbidden")
        n_forbidden += 2
    # nothing changed: the other's cancel, retry and forget did nothing
    with env.client() as c:
        for p in (a, b):
            assert c.status(ids[p][0])["state"] == "queued"
            r = c.status(ids[p][1])
            assert r["state"] == "succeeded" and r["attempts"] == 1, r
        # each may cancel its own delayed task
        for p in (a, b):
            r = send(p, [{"op": "cancel", "id": ids[p][0]}])[0]
            assert r == {"ok": True, "id": ids[p][0], "state": "cancelled"}, r
    return n_forbidden


@needs_root
def test_unix_submitters_isolated(sec):
    who = {u: f"uid:{_uid(u)}" for u in PAIR_USERS}
    n = _isolation(sec, *PAIR_USERS, lambda user, frames: unix_batch(sec, user, frames), "pair_unix", who)
    assert n == 2 * (6 * 2 + 2 + 2)


@needs_root
def test_tcp_submitters_isolated(sec):
    """Two users whose addresses pair_tcp allows: the address admits them, each is its own submitter."""
    pairs = tuple(zip(PAIR_USERS, TCP_PAIR))
    who = {p: f"uid:{_uid(p[0])}" for p in pairs}
    n = _isolation(sec, *pairs, lambda p, frames: tcp_batch(sec, p[1], frames, user=p[0]), "pair_tcp", who)
    assert n == 2 * (6 * 2 + 2 + 2)


@needs_root
def test_unix_and_tcp_submitters_isolated(sec):
    """A unix user cannot reach a TCP user's task and the other way round (same task id space)."""
    tcp_user, unix_user = PAIR_USERS[1], PAIR_USERS[0]
    [r] = tcp_batch(sec, TCP_PAIR[0], [{"op": "submit", "task": "pair_tcp", "args": [tag()], "delay": 3600}],
                    user=tcp_user)
    tcp_id = r["id"]
    [r] = unix_batch(sec, unix_user, [{"op": "submit", "task": "pair_unix", "args": [tag()], "delay": 3600}])
    unix_id = r["id"]
    for r in unix_batch(sec, unix_user, _cross_ops(tcp_id)):
        refused(r, "forbidden")
    for r in tcp_batch(sec, TCP_PAIR[0], _cross_ops(unix_id), user=tcp_user):
        refused(r, "forbidden")
    # nor root from 127.0.0.1, which many tasks allow: over TCP root is no admin
    with sec.client("tcp") as c:
        for f in _cross_ops(unix_id) + _cross_ops(tcp_id):
            refused(c.call(f), "forbidden")
    with sec.client() as c:
        for tid in (tcp_id, unix_id):
            assert c.status(tid)["state"] == "queued"
            assert c.call({"op": "cancel", "id": tid})["state"] == "cancelled"


# ---------------------------------------------------------------------------------------------------
# 3. Arguments never reach a shell; no request field reaches the environment


def hostile_args(ev, t):
    p = f"{ev}/pwn-{t}"
    return [
        f"$(touch {p}-1)", f"`touch {p}-2`", f"; touch {p}-3", f"| touch {p}-4", f"&& touch {p}-5",
        f"> {p}-6", f">{p}-7", f"\ntouch {p}-8\n", f"'; touch {p}-9; '", f'"; touch {p}-10; "',
        f"x;touch {p}-11", f"x|touch {p}-12", f"x&&touch {p}-13", f"x||touch {p}-14", f"x&touch {p}-15",
        f"$(touch pwn-rel-{t})", f"`touch pwn-rel2-{t}`", f"${{IFS}}touch${{IFS}}{p}-16", f"x\rtouch {p}-17",
        f"<(touch {p}-18)", "$((1+1))", "${IFS}", "a${IFS}b", "$IFS", "$HOME", "$1", "$@", "$$", "!!",
        "*", "?", "[a-z]*", "{a,b}", "~", "~root", "~/x", "-", "--", "-rf", "--help", "-n", "-e", "--wait",
        "%s%s%s%s%n", "%x%p%d", "100%", "%", "%%", "", " ", "\t", "\\", "\\n", "'", '"', "#x", "&", "(", ")",
        "x\x01y\x1f\x7f", "ünïcödé ✓ 中文", "a b  c", "=", "LD_PRELOAD=/tmp/x.so", "PATH=/tmp",
        "x" * 4096,
    ]


def _no_side_effects(env, t):
    found = []
    for d in (env.ev, env.dir, env.bindir, "/", "/tmp", os.getcwd()):
        found += glob.glob(os.path.join(d, f"pwn-*{t}*"))
    assert not found, f"an argument reached a shell: {found}"


def _chunks(seq, n):
    return [seq[i:i + n] for i in range(0, len(seq), n)]


def test_args_reach_argv_byte_for_byte(sec):
    t = tag()
    args = hostile_args(sec.ev, t)
    chunks = _chunks(args, 19)  # the argv task takes 20: a tag, then 19 of these
    ids = []
    with sec.client() as c:
        for i, chunk in enumerate(chunks):
            ids.append((f"{t}-{i}", chunk, c.submit("argv", [f"{t}-{i}", *chunk])))
        for name, chunk, tid in ids:
            r = c.wait_final(tid)
            assert r["state"] == "succeeded", r
            assert r["args"] == [name, *chunk]
            got = sec.ev_read("argv-" + name, "rb")
            assert got == b"".join(a.encode() + b"\0" for a in [name, *chunk]), (name, got)
    _no_side_effects(sec, t)
    sec.hostile_count = len(args)


def test_args_literal_via_cli(sec):
    t = tag()
    args = hostile_args(sec.ev, t)
    for i, chunk in enumerate(_chunks(args, 19)):
        name = f"{t}-c{i}"
        p = sec.cli("submit", "--wait", "argv", name, *chunk)
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert sec.ev_read("argv-" + name, "rb") == b"".join(a.encode() + b"\0" for a in [name, *chunk])
    _no_side_effects(sec, t)


def test_cli_environment_does_not_reach_task(sec):
    t = tag()
    env = {"PATH": "/usr/bin:/bin", "ASYNCTASK_SEC_PROBE": "cli-" + t, "PS4": "$(touch pwn-ps4-" + t + ")"}
    p = subprocess.run([CLI_BIN, "--socket", sec.front_sock, "submit", "--wait", "env", t], env=env,
                       capture_output=True, timeout=60)
    assert p.returncode == 0, (p.stdout, p.stderr)
    text = sec.ev_read(t + ".env")
    assert "ASYNCTASK_SEC_PROBE" not in text and "cli-" + t not in text and "PS4" not in text
    _no_side_effects(sec, t)


def test_seed_frames_never_reach_a_shell(sec):
    t = tag()
    hostile = [a for a in hostile_args(sec.ev, t) if "\n" not in a]
    listed = sec.main["commands"][0]["cmd"]
    before = submitted_total(sec)
    seed_refused_before = seed_refused(sec)
    with sec.client() as c:
        known = {r["id"] for r in c.call({"op": "list", "limit": 10000})["tasks"]}
    with sec.client("tcp") as c:
        # s: frames run only a listed command, byte for byte: anything appended is refused (no answer)
        frames = []
        for a in filter(None, hostile):  # (an empty suffix would be the listed command itself)
            frames += [s_frame(listed + a), s_frame(a)]
        c.send(payload(frames + [{"op": "ping"}]))
        assert c.recv().get("pong") is True
        assert seed_refused(sec) == seed_refused_before + len(frames)
        assert submitted_total(sec) == before
        # O: frames: the strings reach the task's stdin exactly, and nothing else
        frame = o_frame("Lamb", [(f"p{i}", a) for i, a in enumerate(hostile)])
        assert len(frame) < 8192 - 1  # the module's max_frame_bytes
        c.send(payload([frame, {"op": "ping"}]))
        assert c.recv().get("pong") is True
        with sec.client() as admin:
            new = wait_for(lambda: [r for r in admin.call({"op": "list", "limit": 10000})["tasks"]
                                    if r["id"] not in known], 10, what="the seed object's task")
        assert len(new) == 1 and new[0]["task"] == "lamb", new
        rec = c.wait_final(new[0]["id"])
        assert rec["state"] == "succeeded" and rec["args"] == [], rec
        assert sec.ev_read(f"lamb.{rec['id']}.stdin", "rb") == frame
        c.ping()
    _no_side_effects(sec, t)
    sec.seed_count = len(hostile)


# Fields a client might try in order to choose the environment, the program or the identity.
ENV_FIELDS = {
    "env": {"LD_PRELOAD": "/tmp/x.so"}, "environment": {"PATH": "/tmp"}, "environ": ["LD_PRELOAD=/tmp/x.so"],
    "LD_PRELOAD": "/tmp/x.so", "LD_LIBRARY_PATH": "/tmp", "PATH": "/tmp", "BASH_ENV": "/tmp/x",
    "working_directory": "/", "cwd": "/", "exec": ["/bin/sh", "-c", "id"], "program": "/bin/sh",
    "command": "id", "argv": ["/bin/sh"], "argv0": "sh", "shell": True, "nice": -20, "timeout_sec": 0,
    "memory_max": 0, "sandbox": False, "unit": "x.service", "attempt": 2, "max_attempts": 100,
}
USER_FIELDS = {
    "user": "root", "group": "root", "uid": 0, "gid": 0, "groups": ["root"], "run_as": "root",
    "submitter": "uid:0", "owner": "root", "supplementary_groups": [0], "capabilities": ["CAP_SYS_ADMIN"],
}


def _unknown_fields_refused(env, fields, task, t):
    before = submitted_total(env)
    n = 0
    with env.client() as c:
        for k, v in fields.items():
            for req in ({"op": "submit", "task": task, "args": [t], k: v}, {"task": task, "args": [t], k: v},
                        {"op": "status", "id": 1, k: v}, {"op": "ping", k: v}):
                r = c.call(req)
                refused(r, "bad_request")
                assert k in r["error"], r  # the message names the key
                n += 1
        c.ping()
    assert submitted_total(env) == before
    return n


def test_env_fields_refused_and_environment_is_the_tasks(sec):
    t = tag()
    n = _unknown_fields_refused(sec, ENV_FIELDS, "env", t)
    assert n == 4 * len(ENV_FIELDS)
    # a clean run shows none of them took effect, whatever the stdin says
    with sec.client() as c:
        tid = c.submit("env", [t], stdin="LD_PRELOAD=/tmp/x.so\nPATH=/tmp\n")
        assert c.wait_final(tid)["state"] == "succeeded"
    env = dict(line.split("=", 1) for line in sec.ev_read(t + ".env").splitlines() if "=" in line)
    assert "LD_PRELOAD" not in env and "LD_LIBRARY_PATH" not in env and "BASH_ENV" not in env
    assert "/tmp" not in env["PATH"].split(":"), env["PATH"]


# ---------------------------------------------------------------------------------------------------
# 4. Tasks run as their configured user and groups, whoever submits


def _expected_ids(task):
    user, group = WHOAMI_TASKS[task]
    if not IS_ROOT:
        user, group = TASK_USER, None
    pw = pwd.getpwnam(user)
    gid = _gid(group) if group else pw.pw_gid
    return pw.pw_uid, gid, set(os.getgrouplist(user, gid))


def test_task_user_and_groups_whoever_submits(sec):
    submitters = [("root", "unix"), ("tcp", "127.0.0.1")]
    if IS_ROOT:
        submitters += [("unix", u) for u in PAIR_USERS]
        launcher_groups = set(int(g) for g in
                              open(f"/proc/{sec.daemons.launcher.pid}/status").read().split("Groups:")[1]
                              .splitlines()[0].split())
        # the launcher really has groups a task could inherit
        assert {0, *(_gid(g) for g in LAUNCHER_EXTRA_GROUPS)} <= launcher_groups, launcher_groups
    runs = []  # (task, tag, id, submitter)
    for kind, who in submitters:
        frames = []
        tags = []
        for task in WHOAMI_TASKS:
            t = tag()
            tags.append((task, t))
            frames.append({"op": "submit", "task": task, "args": [t]})
        if kind == "root":
            with sec.client() as c:
                rs = [c.call(f) for f in frames]
        elif kind == "tcp":
            rs = tcp_batch(sec, who, frames)
        else:
            rs = unix_batch(sec, who, frames, groups=[CLIENT_EXTRA_GROUP])
        for (task, t), r in zip(tags, rs):
            assert r["ok"] is True, (kind, who, task, r)
            runs.append((task, t, r["id"], f"{kind}:{who}"))
    foreign = {0, _gid(CLIENT_EXTRA_GROUP), *(_gid(g) for g in LAUNCHER_EXTRA_GROUPS)} if IS_ROOT else set()
    with sec.client() as c:
        for task, t, tid, by in runs:
            r = c.wait_final(tid)
            assert r["state"] == "succeeded", (task, by, r)
            uid, gid, groups = _expected_ids(task)
            st = os.stat(sec.ev_path(t + ".file"))
            assert (st.st_uid, st.st_gid) == (uid, gid), (task, by)
            assert int(sec.ev_read(t + ".uid")) == uid, (task, by)
            assert int(sec.ev_read(t + ".gid")) == gid, (task, by)
            got = {int(x) for x in sec.ev_read(t + ".groups").split()}
            assert got == groups, (task, by, got, groups)
            assert not (got & foreign - groups), (task, by, got)
    sec.whoami_runs = len(runs)


def test_task_holds_no_privileges_or_launcher_descriptors(sec):
    """The root launcher's sockets and pipes stay with it, and a task keeps no capability and no way
    back to another uid or gid."""
    runs = []
    with sec.client() as c:
        for task in PROBE_TASKS:
            t = tag()
            runs.append((task, t, c.submit(task, [t])))
        for task, t, tid in runs:
            assert c.wait_final(tid)["state"] == "succeeded"
    for task, t, tid in runs:
        p = json.loads(sec.ev_read(t + ".probe"))
        extra = {fd: target for fd, target in p["fds"].items() if fd not in ("0", "1", "2")}
        # the only other descriptor: the directory the probe was listing
        assert all(target.startswith("/proc/") for target in extra.values()), (task, p["fds"])
        assert len(extra) <= 1, (task, p["fds"])
        st = p["status"]
        for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            assert int(st[cap][0], 16) == 0, (task, cap, st[cap])
        user, group = PROBE_TASKS[task]
        if IS_ROOT:
            uid = _uid(user)
            gid = _gid(group) if group else _gid_of_user(user)
            assert st["Uid"] == [str(uid)] * 4, (task, st["Uid"])  # real, effective, saved, filesystem
            assert st["Gid"] == [str(gid)] * 4, (task, st["Gid"])
            assert {int(g) for g in st["Groups"]} == set(os.getgrouplist(user, gid)), (task, st["Groups"])
    sec.probe_runs = len(runs)


def test_user_fields_refused(sec):
    t = tag()
    n = _unknown_fields_refused(sec, USER_FIELDS, "whoami_nobody", t)
    assert n == 4 * len(USER_FIELDS)
    assert not sec.ev_exists(t + ".uid")


# ---------------------------------------------------------------------------------------------------
# 5. The launcher: only the front's uid, and a forged front gets only what the config allows

CONNECT_AS = (
    "import socket,sys\n"
    "p=socket.socket(fileno=int(sys.argv[2]))\n"
    "s=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM)\n"
    "try:\n"
    "    s.connect(sys.argv[1])\n"
    "except OSError as e:\n"
    "    p.sendall(b'E%d' % e.errno)\n"
    "    sys.exit(0)\n"
    "socket.send_fds(p,[b'K'],[s.fileno()])\n"
)


def connect_as(path, uid, gid):
    """A unix stream socket connected to path by a process running as uid/gid (no supplementary
    groups): the peer sees those credentials (SO_PEERCRED is taken at connect time)."""
    if uid == os.geteuid():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        return s
    a, b = socket.socketpair()
    try:
        p = subprocess.run([PY, "-c", CONNECT_AS, path, str(b.fileno())], pass_fds=[b.fileno()], user=uid,
                           group=gid, extra_groups=[], cwd="/", env={"PATH": "/usr/bin:/bin"},
                           capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr.decode()
        b.close()
        msg, fds, _, _ = socket.recv_fds(a, 64, 1)
        if msg.startswith(b"E"):
            err = int(msg[1:])
            raise OSError(err, os.strerror(err))
        assert msg == b"K" and len(fds) == 1, msg
        return socket.socket(fileno=fds[0])
    finally:
        a.close()
        b.close()


class LauncherPeer:
    """One connection to the launcher, speaking its line protocol."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(None)
        self.buf = b""
        self.eof = False
        self.seen = []

    def close(self):
        self.sock.close()

    def send(self, msg):
        data = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
        try:
            self.sock.sendall(data + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            self.eof = True

    def _read(self, deadline):
        chunk = recv_before(self.sock, deadline, "no message from the launcher in time")
        if not chunk:
            self.eof = True
        self.buf += chunk

    def next(self, timeout=15.0):
        """The next message, or None at EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if self.eof:
                return None
            self._read(deadline)
        line, self.buf = self.buf.split(b"\n", 1)
        m = json.loads(line)
        self.seen.append(m)
        return m

    def until(self, pred, timeout=15.0):
        deadline = time.monotonic() + timeout
        while True:
            m = self.next(max(0.1, deadline - time.monotonic()))
            assert m is not None, f"launcher closed the connection; seen {self.seen[-5:]}"
            if pred(m):
                return m

    def sync(self):
        """Drains the replay: list, then everything up to list_end."""
        self.send({"type": "list"})
        self.until(lambda m: m["type"] == "list_end")

    def closed(self, timeout=15.0):
        """True once the launcher closes the connection; the messages before are in self.seen."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            try:
                self._read(deadline)
            except TimeoutError:
                return False
        return True


def launch(id_, task=None, cmd=None, args=(), **extra):
    m = {"type": "launch", "id": id_, "attempt": 1, "args": list(args), "submitter": "uid:0"}
    if task is not None:
        m["task"] = task
    if cmd is not None:
        m["cmd"] = cmd
    m.update(extra)
    return m


def front_uid():
    """The uid a front connects as: the "asynctask" user when it exists (as in production), else root
    (the launcher accepts root, its own uid and that user)."""
    try:
        pw = pwd.getpwnam("asynctask")
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        return os.geteuid(), os.getegid()


def _check_config(binary, env):
    return subprocess.run([binary, "--config", env.config_path, "--check-config"], capture_output=True,
                          timeout=30)


def test_launcher_reads_only_config_no_one_else_may_change(env):
    """The launcher runs tasks as root by what its configuration says: it refuses a main file, a
    tasks.d, or a file in it, that anyone but its owner (root; the uid it runs as when not root) may
    change, and names the file. The front reads them as before."""
    main, tasks = standard_config(env)
    env.write_config(main, tasks)
    assert _check_config(LAUNCHER_BIN, env).returncode == 0
    touch = os.path.join(env.tasks_dir, "touch.json")
    owner = "root" if IS_ROOT else f"uid {os.geteuid()}"
    cases = [
        (touch, 0o664, "file writable by its group (mode 0664)"),
        (touch, 0o646, "file writable by anyone (mode 0646)"),
        (env.config_path, 0o666, "file writable by anyone (mode 0666)"),
        (env.tasks_dir, 0o775, "directory writable by its group (mode 0775)"),
        (env.tasks_dir, 0o1777, "directory writable by anyone (mode 1777)"),
    ]
    for path, mode, message in cases:
        os.chmod(path, mode)
        try:
            p = _check_config(LAUNCHER_BIN, env)
            want = f"{path}: : {message}: the launcher reads only what {owner} owns"
            assert p.returncode == 1 and want in p.stderr.decode(), (want, p.stderr.decode())
            assert _check_config(FRONT_BIN, env).returncode == 0
        finally:
            os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)
    if IS_ROOT:
        os.chown(touch, NOBODY_UID, -1)
        try:
            p = _check_config(LAUNCHER_BIN, env)
            assert p.returncode == 1 and f"{touch}: : file owned by uid {NOBODY_UID}:" in p.stderr.decode(), p.stderr
            assert _check_config(FRONT_BIN, env).returncode == 0
        finally:
            os.chown(touch, 0, -1)
    assert _check_config(LAUNCHER_BIN, env).returncode == 0

    # Nor does it start with such a file.
    os.chmod(touch, 0o666)
    log = os.path.join(env.dir, "launcher.log")
    with open(log, "wb") as f:
        launcher = subprocess.Popen([LAUNCHER_BIN, "--config", env.config_path, "--listen", "unix:" + env.launcher_sock],
                                    stdin=subprocess.DEVNULL, stdout=f, stderr=f)
    try:
        rc = launcher.wait(15)
    except subprocess.TimeoutExpired:
        launcher.kill()
        launcher.wait()
        rc = None
    with open(log, "rb") as f:
        text = f.read().decode()
    assert rc not in (None, 0), f"the launcher ran with {touch} writable by anyone:\n{text}"
    assert f"{touch}: file writable by anyone (mode 0666)" in text, text


@needs_root
def test_launcher_refuses_other_uids(sec):
    path = sec.launcher_sock
    t = tag()
    log_at = log_size(sec.daemons.launcher_log)
    # Created 0600 (no "asynctask" group here) or 0660 for that group: others cannot even connect.
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & 0o007 == 0, oct(mode)
    outsiders = [(OUTSIDER, _uid(OUTSIDER), _gid_of_user(OUTSIDER)), ("nobody", _uid("nobody"), _gid("nogroup")),
                 ("daemon", _uid("daemon"), _gid("daemon"))]
    for name, uid, gid in outsiders:
        with pytest.raises(PermissionError):
            connect_as(path, uid, gid).close()
    # With the file opened up, SO_PEERCRED is what stops them: closed before any message is read.
    os.chmod(path, 0o666)
    results = []
    try:
        for name, uid, gid in outsiders:
            lp = LauncherPeer(connect_as(path, uid, gid))
            lp.send(launch(8_000_001 + uid, task="touch", args=[f"{t}-{name}"]))
            lp.send(launch(8_100_001 + uid, cmd=sec.main["commands"][0]["cmd"]))
            lp.send({"type": "list"})
            assert lp.closed(), f"launcher kept a connection from {name}"
            results.append((name, lp.seen))
            lp.close()
    finally:
        os.chmod(path, mode)
    for name, seen in results:
        assert seen == [], (name, seen)
    time.sleep(0.5)
    assert not glob.glob(os.path.join(sec.ev, f"{t}-*"))
    log = log_since(sec.daemons.launcher_log, log_at)
    for name, uid, gid in outsiders:
        assert f"Refusing connection from uid {uid} " in log, log
    # a refused peer did not displace the real front
    assert "replaces the previous one" not in log, log
    assert sec.daemons.launcher.poll() is None
    assert sec.daemons.stats()["launcher"] == "connected"
    with sec.client() as c:
        assert c.wait_final(c.submit("touch", [t + "-after"]))["state"] == "succeeded"
    assert sec.ev_exists(t + "-after")
    sec.refused_uids = len(outsiders)


def _forged_cases(env, t):
    """(label, message, expectation): "rejected" (answered rejected, connection kept) or "closed"."""
    listed = env.main["commands"][0]["cmd"]
    p = f"{t}-pwn"
    rej = [
        ("task not in config", launch(0, task="no-such-task", args=[p + "1"])),
        ("task name with a path", launch(0, task="../../../bin/sh", args=["-c", f"touch {env.ev}/{p}2"])),
        ("task name of another case", launch(0, task="TOUCH", args=[p + "3"])),
        ("task name with a backslash", launch(0, task="touch\\", args=[p + "4"])),
        ("command not listed", launch(0, cmd=f"touch {env.ev}/{p}5")),
        ("listed command plus a space", launch(0, cmd=listed + " ")),
        ("listed command plus more", launch(0, cmd=listed + f"; touch {env.ev}/{p}6")),
        ("a task name as command", launch(0, cmd="touch")),
        ("listed command with args", launch(0, cmd=listed, args=[f"{env.ev}/{p}7"])),
        ("listed command with stdin", launch(0, cmd=listed, stdin=base64.b64encode(f"touch {env.ev}/{p}7s".encode()).decode())),
        ("listed command with empty stdin", launch(0, cmd=listed, stdin="")),
        ("args beyond max_args", launch(0, task="touch", args=[p + "8", "b", "c"])),
        ("256 args, max_args 2", launch(0, task="touch", args=[p + "9"] + ["a"] * 255)),
        ("args to a task taking none", launch(0, task="lamb", args=[p + "10"])),
    ]
    bad = [
        ("257 args", launch(0, task="touch", args=[p + "11"] + ["a"] * 256)),
        ("an arg of 4097 bytes", launch(0, task="argv", args=[p + "12", "y" * 4097])),
    ]
    for k, v in {**USER_FIELDS, **ENV_FIELDS}.items():
        if k in ("unit", "attempt", "submitter"):
            continue  # keys of the protocol (unit is not a launch key: checked below)
        bad.append((f"field {k}", launch(0, task="whoami_nobody", args=[p + "-" + k], **{k: v})))
    bad += [
        ("unit on a launch", launch(0, task="touch", args=[p + "13"], unit="x.service")),
        ("task and cmd", launch(0, task="touch", cmd=listed, args=[p + "14"])),
        ("neither task nor cmd", launch(0, args=[p + "15"])),
        ("duplicate task key", b'{"type":"launch","id":%d,"attempt":1,"task":"noallow","task":"touch","args":["%s"],'
         b'"submitter":"uid:0"}' % (8_200_000, (p + "16").encode())),
        ("duplicate type key", b'{"type":"stop","type":"launch","id":8200001,"attempt":1,"task":"touch",'
         b'"args":["%s"],"submitter":"uid:0"}' % (p + "17").encode()),
        ("id 0", launch(0, task="touch", args=[p + "18"])),  # id stays 0
        ("negative id", launch(-5, task="touch", args=[p + "19"])),
        ("fractional id", b'{"type":"launch","id":8200002.5,"attempt":1,"task":"touch","args":["%s"],'
         b'"submitter":"uid:0"}' % (p + "20").encode()),
        ("id as string", launch("8200003", task="touch", args=[p + "21"])),
        ("id beyond 2^53", launch(2**53, task="touch", args=[p + "22"])),
        ("attempt 0", launch(0, task="touch", args=[p + "23"], attempt=0)),
        ("no submitter", {k: v for k, v in launch(0, task="touch", args=[p + "24"]).items() if k != "submitter"}),
        ("nested args", launch(0, task="touch", args=[[p + "25"]])),
        ("arg not a string", launch(0, task="touch", args=[25])),
        ("NUL escape in an arg", launch(0, task="touch", args=[p + "26\u0000x"])),
        ("raw NUL byte", b'{"type":"launch","id":8200004,"attempt":1,"task":"touch","args":["%s\x00"],'
         b'"submitter":"uid:0"}' % (p + "27").encode()),
        ("bad base64 stdin", launch(0, task="stdin", args=[p + "28"], stdin="!!!not base64")),
        ("not JSON", b"launch touch " + (p + "29").encode()),
        ("a JSON array", b'["launch"]'),
        ("an empty object", b"{}"),
        ("unknown type", {"type": "exec", "cmd": f"touch {env.ev}/{p}30"}),
        ("a launcher-only type", {"type": "started", "id": 8200005, "unit": "x.service"}),
        ("a launcher-only type (finished)", {"type": "finished", "id": 8200006, "result": "success"}),
        ("trailing garbage", json.dumps(launch(8200007, task="touch", args=[p + "31"])).encode() + b" x"),
        ("invalid UTF-8 framing", b"\xff\xfe{\"type\":\"list\"}"),
    ]
    return rej, bad


@needs_root
def test_forged_front(sec):
    """With the real front stopped, a client with the front's uid speaks the launcher protocol: every
    launch outside the launcher's own config or limits is rejected, every malformed or overreaching
    message costs the connection and never the launcher, and what it does run, it runs as configured.
    Then the real front comes back and works."""
    d = sec.daemons
    path = sec.launcher_sock
    uid, gid = front_uid()
    t = tag()
    ids = iter(range(9_000_001, 9_100_000))
    counts = {"rejected": 0, "closed": 0, "ran": 0}
    d.stop_front()
    try:
        lp = LauncherPeer(connect_as(path, uid, gid))
        lp.sync()
        rej, bad = _forged_cases(sec, t)
        for label, m in rej:
            m["id"] = next(ids)
            lp.send(m)
            r = lp.until(lambda x: x.get("id") == m["id"])
            assert r["type"] == "rejected" and r["error"], (label, r)
            counts["rejected"] += 1
        lp.sync()  # still the same, working connection
        assert not any(x["type"] == "started" for x in lp.seen), lp.seen
        lp.close()

        for label, m in bad:
            lp = LauncherPeer(connect_as(path, uid, gid))
            lp.sync()
            lp.seen.clear()
            if isinstance(m, dict) and m.get("type") == "launch" and m.get("id") == 0 and label != "id 0":
                m["id"] = next(ids)
            lp.send(m)
            assert lp.closed(), f"{label}: the launcher kept the connection; seen {lp.seen}"
            assert not any(x["type"] in ("started", "finished") for x in lp.seen), (label, lp.seen)
            lp.close()
            assert d.launcher.poll() is None, f"launcher died on {label}"
            counts["closed"] += 1

        # What a forged front can get run: a configured task, as the config says.
        lp = LauncherPeer(connect_as(path, uid, gid))
        lp.sync()
        runs = {
            next(ids): launch(0, task="whoami_www_backup", args=[t + "-who"], submitter="uid:0"),
            next(ids): launch(0, task="argv", args=[t + "-max"] + ["z" * 4096] * 19),
            next(ids): launch(0, task="stdin", args=[t + "-in"], stdin=base64.b64encode(b"\x00\xff$(id)\n").decode()),
        }
        for id_, m in runs.items():
            m["id"] = id_
            lp.send(m)
        done = {}
        while len(done) < len(runs):  # they may finish in any order
            x = lp.until(lambda x: x.get("id") in runs and x["type"] in ("finished", "rejected"), 30)
            done[x["id"]] = x
        for id_, fin in done.items():
            assert fin["type"] == "finished" and fin["result"] == "success", fin
            lp.send({"type": "ack", "id": id_})
            counts["ran"] += 1
        uid_w, gid_w, groups_w = _expected_ids("whoami_www_backup")
        assert int(sec.ev_read(t + "-who.uid")) == uid_w and int(sec.ev_read(t + "-who.gid")) == gid_w
        assert {int(x) for x in sec.ev_read(t + "-who.groups").split()} == groups_w
        max_args = [t + "-max"] + ["z" * 4096] * 19
        assert sec.ev_read(f"argv-{t}-max", "rb") == b"".join(a.encode() + b"\0" for a in max_args)
        assert sec.ev_read(t + "-in.stdin", "rb") == b"\x00\xff$(id)\n"
        # the same id twice while it runs: rejected; then stop and ack it
        sid = next(ids)
        lp.send(launch(sid, task="sleeper", args=[t + "-sl", "30"]))
        lp.until(lambda x: x.get("id") == sid and x["type"] == "started")
        lp.send(launch(sid, task="touch", args=[t + "-dup"]))
        r = lp.until(lambda x: x.get("id") == sid and x["type"] in ("rejected", "started", "finished"))
        assert r["type"] == "rejected", r
        counts["rejected"] += 1
        lp.send({"type": "stop", "id": sid})
        fin = lp.until(lambda x: x.get("id") == sid and x["type"] == "finished", 30)
        assert fin["result"] != "success", fin
        lp.send({"type": "ack", "id": sid})
        lp.sync()
        lp.close()
    finally:
        d.start_front()
    assert d.launcher.poll() is None
    time.sleep(0.5)
    assert not glob.glob(os.path.join(sec.ev, f"*{t}-pwn*")), "a rejected launch ran"
    assert not sec.ev_exists(t + "-dup")
    assert not glob.glob(os.path.join(sec.ev, f"argv-{t}-pwn*"))
    # the real front works again
    with sec.client() as c:
        assert c.wait_final(c.submit("touch", [t + "-back"]))["state"] == "succeeded"
    assert sec.ev_exists(t + "-back")
    sec.forged_counts = counts


# ---------------------------------------------------------------------------------------------------
# 6. The launcher holds a forged front to the limits of its own config: max_running, each task's
# concurrency, max_frame_bytes of stdin, a message size that follows from them, JSON values counted
# before parsing, and a bound on results the front has not acknowledged. Only the launcher runs here:
# the test is the front.

LIMITS_MAX_RUNNING = 4
LIMITS_UNACKED_MAX = LIMITS_MAX_RUNNING * 4  # UNACKED_RESULTS_PER_RUNNING
LIMITS_FRAME = 8192  # standard_config's max_frame_bytes


def limits_config(e, wide=False):
    main, tasks = standard_config(e, max_running=LIMITS_MAX_RUNNING)
    if wide:
        # A task taking the most arguments: the launcher's message limit is then a few MB, so what
        # refuses a message of tiny values is the count of its values, not its size.
        tasks["wide"] = {"exec": ["/bin/true"], "max_args": 256, "user": TASK_USER, "allow": ALLOW}
    return main, tasks


def _launcher_only(wide=False):
    e = Env()
    main, tasks = limits_config(e, wide)
    e.write_config(main, tasks)
    e.main, e.tasks = main, tasks
    d = Daemons(e)
    e.daemons = d
    try:
        d.start_launcher()
    except BaseException:
        d.kill_all()
        e.cleanup()
        raise
    return e


@pytest.fixture(scope="module")
def lim():
    e = _launcher_only()
    try:
        yield e
        e.daemons.stop(check=True)
    finally:
        e.daemons.kill_all()
        e.cleanup()


@pytest.fixture
def lim_wide():
    e = _launcher_only(wide=True)
    try:
        yield e
        e.daemons.stop(check=True)
    finally:
        e.daemons.kill_all()
        e.cleanup()


def forged_front(env):
    lp = LauncherPeer(connect_as(env.launcher_sock, *front_uid()))
    lp.sync()
    return lp


def answer(lp, id_, timeout=15.0):
    """The launcher's answer to the launch of id_: started or rejected (seen before, or read now)."""
    for m in lp.seen:
        if m.get("id") == id_ and m["type"] in ("started", "rejected"):
            return m
    return lp.until(lambda m: m.get("id") == id_ and m["type"] in ("started", "rejected"), timeout)


def wait_all(lp, ids, types, timeout=30.0):
    """Waits until each id in ids has had a message of one of types (seen before or read now)."""
    left = set(ids) - {m.get("id") for m in lp.seen if m["type"] in types}
    deadline = time.monotonic() + timeout
    while left:
        m = lp.until(lambda x: x["type"] in types and x.get("id") in left, max(1, deadline - time.monotonic()))
        left.discard(m["id"])


def settle(lp, ids, timeout=30.0):
    """Waits for every id in ids to finish, then acks them."""
    wait_all(lp, ids, ("finished",), timeout)
    for id_ in ids:
        lp.send({"type": "ack", "id": id_})
    lp.sync()


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


@needs_root
def test_launcher_holds_task_concurrency(lim):
    """30 launches of a concurrency-1 task in a row: one runs, 29 are rejected naming the limit, and
    no two runs overlap; once it has finished, the next is accepted."""
    t = tag()
    ids = list(range(9_200_001, 9_200_031))
    lp = forged_front(lim)
    try:
        for i, id_ in enumerate(ids):
            lp.send(launch(id_, task="conc1", args=[t, str(i), "1"]))
        answers = {id_: answer(lp, id_) for id_ in ids}
        started = [i for i, a in answers.items() if a["type"] == "started"]
        rejected = [a for a in answers.values() if a["type"] == "rejected"]
        assert len(started) == 1, f"{len(started)} runs of a concurrency-1 task at once"
        assert len(rejected) == 29 and all("concurrency is 1" in a["error"] for a in rejected), rejected[:3]
        settle(lp, started)
        assert not lim.ev_exists(t + ".overlap")
        nid = 9_200_099
        lp.send(launch(nid, task="conc1", args=[t, "next", "0"]))
        assert answer(lp, nid)["type"] == "started"
        settle(lp, [nid])
    finally:
        lp.close()
    assert len(lim.ev_lines(t + ".slots")) == 2


@needs_root
def test_launcher_holds_max_running(lim):
    t = tag()
    ids = list(range(9_210_001, 9_210_001 + LIMITS_MAX_RUNNING + 3))
    lp = forged_front(lim)
    try:
        for id_ in ids:
            lp.send(launch(id_, task="sleeper", args=[f"{t}-{id_}", "30"]))
        answers = {id_: answer(lp, id_) for id_ in ids}
        started = [i for i, a in answers.items() if a["type"] == "started"]
        rejected = [a for a in answers.values() if a["type"] == "rejected"]
        assert len(started) == LIMITS_MAX_RUNNING, answers
        assert len(rejected) == 3 and all(f"max_running is {LIMITS_MAX_RUNNING}" in a["error"] for a in rejected)
        for id_ in started:
            lp.send({"type": "stop", "id": id_})
        settle(lp, started)
    finally:
        lp.close()


@needs_root
def test_launcher_holds_stdin_to_max_frame_bytes(lim):
    """stdin can only come from one client frame: a launch carrying more than max_frame_bytes of it is
    rejected and nothing runs; exactly max_frame_bytes is delivered."""
    t = tag()
    lp = forged_front(lim)
    try:
        over = os.urandom(LIMITS_FRAME + 1)
        lp.send(launch(9_220_001, task="stdin", args=[t + "-over"], stdin=base64.b64encode(over).decode()))
        a = answer(lp, 9_220_001)
        assert a["type"] == "rejected" and "max_frame_bytes" in a["error"], a
        big = os.urandom(8 * 1024 * 1024)  # what a front once delivered against a 64 KB frame limit
        lp.send(launch(9_220_002, task="stdin", args=[t + "-big"], stdin=base64.b64encode(big).decode()))
        assert lp.closed(), "the launcher kept a connection that sent an 11 MB message"
        lp.close()

        lp = forged_front(lim)
        at = os.urandom(LIMITS_FRAME)
        lp.send(launch(9_220_003, task="stdin", args=[t + "-at"], stdin=base64.b64encode(at).decode()))
        assert answer(lp, 9_220_003)["type"] == "started"
        settle(lp, [9_220_003])
    finally:
        lp.close()
    assert not lim.ev_exists(t + "-over.stdin") and not lim.ev_exists(t + "-big.stdin")
    assert lim.ev_read(t + "-at.stdin", "rb") == at


@needs_root
def test_launcher_message_limit_follows_config(lim):
    """The longest message the launcher reads follows from its config (here about half a MB: 8 KiB of
    stdin and 20 args of 4 KiB, escaped), not a fixed 96 MB: past it the connection is closed at once,
    before the rest is read."""
    log_at = log_size(lim.daemons.launcher_log)
    lp = forged_front(lim)
    try:
        m = json.dumps(launch(9_230_001, task="argv", args=["x" * 4096] * 20)).encode()
        lp.send(m[:-1] + b" " * (1024 * 1024) + b"}")  # valid JSON, over the limit
        assert lp.closed()
    finally:
        lp.close()
    log = log_since(lim.daemons.launcher_log, log_at)
    assert "a message longer than " in log, log
    limit = int(log.split("a message longer than ")[1].split()[0])
    assert 500_000 < limit < 600_000, log
    assert lim.daemons.launcher.poll() is None


@needs_root
def test_launcher_bounds_unacknowledged_results(lim):
    """Results the front does not acknowledge are held for it, up to max_running x 4; past that, launches
    are rejected until it acknowledges some."""
    t = tag()
    lp = forged_front(lim)
    ids = list(range(9_240_001, 9_240_001 + LIMITS_UNACKED_MAX))
    try:
        for chunk in _chunks(ids, LIMITS_MAX_RUNNING):
            for id_ in chunk:
                lp.send(launch(id_, task="touch", args=[f"{t}-{id_}"]))
            wait_all(lp, chunk, ("finished", "rejected"))
        assert not any(m["type"] == "rejected" for m in lp.seen), [m for m in lp.seen if m["type"] == "rejected"]
        over = ids[-1] + 1
        lp.send(launch(over, task="touch", args=[f"{t}-{over}"]))
        a = answer(lp, over)
        assert a["type"] == "rejected" and "too many unacknowledged results" in a["error"], a
        lp.send({"type": "ack", "id": ids[0]})
        lp.send(launch(over + 1, task="touch", args=[f"{t}-{over + 1}"]))
        assert answer(lp, over + 1)["type"] == "started"
        settle(lp, ids[1:] + [over + 1])
    finally:
        lp.close()
    assert not lim.ev_exists(f"{t}-{over}")


@needs_root
def test_launcher_counts_values_before_parsing(lim_wide):
    """A launch of a million tiny JSON values, under the message limit: refused before the parser
    allocates a node for each (it would have cost some 80 MB), so the launcher's peak RSS stays small."""
    pid = lim_wide.daemons.launcher.pid
    lp = forged_front(lim_wide)
    lp.send(launch(9_250_001, task="wide", args=["a"]))
    assert answer(lp, 9_250_001)["type"] == "started"
    settle(lp, [9_250_001])
    base = vm_hwm_kib(pid)
    try:
        for body in (b"[" + b"0," * 999_999 + b"0]",
                     b'{"type":"launch","id":9250002,"attempt":1,"task":"wide","submitter":"uid:0","args":['
                     + b'"",' * 999_999 + b'""]}'):
            t0 = time.monotonic()
            lp.send(body)
            assert lp.closed(), "the launcher kept the connection"
            assert time.monotonic() - t0 < 10
            lp.close()
            lp = forged_front(lim_wide)
    finally:
        lp.close()
    grown = vm_hwm_kib(pid) - base
    assert grown < 16 * 1024, f"peak RSS grew by {grown} KiB (from {base} KiB)"
    assert lim_wide.daemons.launcher.poll() is None
