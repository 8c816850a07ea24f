# SPDX-License-Identifier: MIT
"""Hostile input against the running daemons: garbage, invalid UTF-8, NUL bytes, a 100 MB line,
10,000-deep nesting, a million tiny values in one frame, huge numbers, duplicate keys, args at and
over their limits, lying seed lengths, half frames, a client that never reads, 1,000 idle
connections, clients dribbling one byte per second.

After each case three things must hold (HostileCase.check): a new client is served (ping, and a
submission that runs); the front's memory is back near the baseline measured in the same test; and
nothing accepted before the input is lost (a task that was running and several that were queued
behind it, plus a delayed one, all complete exactly once, in order). A connection opened before the
input (a bystander) must still be served too, and the front's connection count must be back to what
it was: no hostile connection is left behind.

test_framing.py covers the ordinary framing cases (split frames, the max_frame_bytes boundary, a
few garbage and NUL frames); this module pushes each of them to its extreme."""

import json
import os
import random
import re
import resource
import select
import signal
import socket
import threading
import time

import pytest

from conftest import (
    ALLOW,
    CLI_BIN,
    FRONT_BIN,
    LAUNCHER_BIN,
    TASK_USER,
    Env,
    serve_module,
    small_asan_quarantine,
    standard_config,
    tag,
    wait_for,
)

# Limits from src/shared/limits.h.
TASK_ARGS_MAX = 256
TASK_ARG_BYTES_MAX = 4096
CONN_OUTPUT_HIGH_WATER = 256 * 1024

# This module's daemons: frames big enough for 256 arguments of 4096 bytes, and room for 1,000 idle
# connections plus the test's own.
MAX_FRAME = 2 * 1024 * 1024
MAX_CONNS = 1100
HELD = 1000

MiB = 1024 * 1024
KiB = 1024

# How long a task may take to run: generous, the machine may be loaded (never asserted on speed).
WAIT = 60

# Concurrency 1: the first one submitted runs and waits for "$EV/$1.open"; the others queue behind
# it. Bounded (2 minutes or more) so that a failing test leaves no process behind for long.
GATE = (
    'i=0\nwhile [ ! -e "$EV/$1.open" ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i + 1)); done\n'
    'echo "$ASYNCTASK_ID $2" >> "$EV/$1.log"\n'
)


def report(name, **values):
    """One line of measurements per test (shown with pytest -s; collected for docs/reliability.md)."""
    print(f"\nHOSTILE {name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


# ---------------------------------------------------------------------------------------------------
# Process measurements


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    rest = st[st.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def mib(kib):
    return f"{kib / 1024:.1f}"


class RssPeak:
    """Samples a pid's RSS whenever sample() is called, at most every `every` seconds."""

    def __init__(self, pid, every=0.01):
        self.pid = pid
        self.every = every
        self.last = 0.0
        self.peak = rss_kib(pid)
        self.samples = 1

    def sample(self, force=False):
        now = time.monotonic()
        if force or now - self.last >= self.every:
            self.last = now
            self.peak = max(self.peak, rss_kib(self.pid))
            self.samples += 1


# ---------------------------------------------------------------------------------------------------
# Fixture: one daemon pair for the module


def _raise_nofile(want=4096):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))  # root may raise the hard limit
            return want
        except (ValueError, OSError):
            want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


@pytest.fixture(scope="module")
def hd():
    """The daemons for this module, started after raising RLIMIT_NOFILE (they inherit it). Yields the
    Env; env.daemons, env.main and env.tasks are the Daemons and the config."""
    missing = [p for p in (FRONT_BIN, LAUNCHER_BIN, CLI_BIN) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"not built: {', '.join(missing)} (run make, or set ASYNCTASK_BUILDDIR)")
    nofile = _raise_nofile()
    e = Env()
    e.nofile = nofile
    # Its idle and dribbling clients are all root's and hold still on purpose: no per-user cap, no
    # frame deadline (test_limits.py tests those).
    main, tasks = standard_config(e, max_frame_bytes=MAX_FRAME, max_connections=MAX_CONNS, max_running=8,
                                  max_connections_per_user=MAX_CONNS, frame_timeout_sec=0)
    gate = e.script("gate", GATE)
    tasks["gate"] = {"exec": [gate], "max_args": 2, "user": TASK_USER, "allow": ALLOW, "concurrency": 1}
    tasks["many"] = {"exec": [os.path.join(e.bindir, "argv")], "max_args": TASK_ARGS_MAX, "user": TASK_USER,
                     "allow": ALLOW, "working_directory": e.ev}
    # The front's RSS must come back to its baseline.
    yield from serve_module(e, main, tasks, prepare=small_asan_quarantine)


# ---------------------------------------------------------------------------------------------------
# The invariants


class HostileCase:
    """Set up before a hostile input, checked after it.

    Before: warms the front up (so the baseline includes its steady-state buffers), measures the
    front's RSS, opens a bystander connection, and submits tasks that stay accepted but unfinished
    through the input: a gate task that runs until released, four queued behind it (concurrency 1)
    and one delayed by a second.

    check(): (1) a new client is served: ping, and a submission that runs; (2) the front's RSS comes
    back to at most max(baseline + 8 MiB, 1.5 x baseline); (3) the gate is released and every task
    accepted before completes exactly once, the queued ones in order; the bystander is still served
    and the front holds no connection but the bystander and the checking client."""

    N_QUEUED = 4

    def __init__(self, env, warm_up=None):
        self.env = env
        self.d = env.daemons
        self.pid = self.d.front.pid
        self.bystander = None
        self.tag = None
        self._warm_up()
        if warm_up:
            warm_up()
        self.baseline = rss_kib(self.pid)
        self.bystander = env.client("tcp")
        self.bystander.ping()
        self.tag = tag()
        self.ids = []
        with env.client() as c:
            for i in range(1 + self.N_QUEUED):
                self.ids.append(c.submit("gate", [self.tag, str(i)]))
            self.delayed = c.submit("record", [self.tag + "-d", "x"], delay=1)
            c.wait_state(self.ids[0], "running", timeout=WAIT)
            for tid in self.ids[1:]:
                st = c.status(tid)["state"]
                assert st == "queued", f"gate task {tid} should be queued behind the running one: {st}"
            self.connections = c.call({"op": "stats"})["connections"]  # bystander + this one

    def _warm_up(self):
        """The buffers and allocator arenas a normal burst of traffic grows, so that the baseline is
        the front's steady state, not its state just after start."""
        n = self.d.stats()["connections"]
        with self.env.client() as c:
            c.send(b'{"op":"ping"}\n{"op":"stats"}\n' * 300)
            for _ in range(600):
                c.recv()
            c.wait_final(c.submit("touch", [tag()]), timeout=WAIT)
        wait_for(lambda: self.d.stats()["connections"] == n, 30, what="warm-up connection closed")

    def cleanup(self):
        """After the test, passed or failed: release the gate (a gate task still running would hold up
        the next test's) and close the bystander."""
        if self.tag:
            with open(self.env.ev_path(self.tag + ".open"), "w"):
                pass
        if self.bystander:
            self.bystander.close()

    def limit(self):
        return max(self.baseline + 8 * 1024, int(self.baseline * 1.5))

    def check(self):
        """Asserts the invariants; returns a dict of measurements for the report."""
        d, env = self.d, self.env
        assert d.front.poll() is None, f"asynctaskd died (exit {d.front.returncode})"
        assert d.launcher.poll() is None, f"asynctask-launcher died (exit {d.launcher.returncode})"
        # (1) a new client is served
        t = tag()
        with env.client() as c:
            c.ping()
            tid = c.submit("touch", [t])
            assert c.wait_final(tid, timeout=WAIT)["state"] == "succeeded"
        assert env.ev_exists(t), "the new client's task did not run"
        # the bystander lost nothing either
        self.bystander.ping()
        # no hostile connection is left behind
        wait_for(lambda: d.stats()["connections"] == self.connections, 30, 0.1,
                 what=f"the front back to {self.connections} connections")
        # (2) memory back near the baseline
        last = [0]

        def rss_ok():
            last[0] = rss_kib(self.pid)
            return last[0] <= self.limit()

        try:
            wait_for(rss_ok, 15, 0.2)
        except AssertionError:
            raise AssertionError(f"front RSS {mib(last[0])} MiB not back near the baseline {mib(self.baseline)} MiB "
                                 f"(limit {mib(self.limit())} MiB)")
        after = last[0]
        # (3) nothing accepted is lost: release the gate; every task runs once, in order
        with open(env.ev_path(self.tag + ".open"), "w"):
            pass
        with env.client() as c:
            for tid in self.ids:
                r = c.wait_final(tid, timeout=WAIT)
                assert r["state"] == "succeeded" and r["attempts"] == 1, r
            r = c.wait_final(self.delayed, timeout=WAIT)
            assert r["state"] == "succeeded" and r["attempts"] == 1, r
        runs = [int(x.split()[0]) for x in env.ev_lines(self.tag + ".log")]
        assert runs == self.ids, f"accepted tasks {self.ids} ran as {runs}"
        delayed_runs = env.ev_lines(self.tag + "-d.log")
        assert delayed_runs == [f"{self.delayed} x"], delayed_runs
        self.bystander.close()
        return {"rss_baseline_mib": mib(self.baseline), "rss_after_mib": mib(after),
                "accepted_preserved": f"{len(self.ids) + 1}/{len(self.ids) + 1}"}


@pytest.fixture
def case(hd):
    """case(warm_up=None) sets up a HostileCase on the module's daemons (warm_up runs before the
    baseline is measured); it is cleaned up after the test."""
    made = []

    def make(warm_up=None):
        h = HostileCase.__new__(HostileCase)
        made.append(h)  # cleaned up even if setting it up fails half-way
        h.__init__(hd, warm_up)
        return h

    yield make
    for h in made:
        h.cleanup()


# ---------------------------------------------------------------------------------------------------
# Helpers


def expected_answers(payload):
    """How many answers a stream of frames gets: one per non-empty line (after one trailing \\r is
    dropped), but none for a seed frame (one that starts with s: or O:, also when it is too long); a
    longer line than MAX_FRAME gets one (frame_too_large) too."""
    n = 0
    for line in payload.split(b"\n")[:-1]:
        if line.endswith(b"\r"):
            line = line[:-1]
        if line and not line.startswith((b"s:", b"O:")):
            n += 1
    return n


def exchange(sock, payload, n_answers, timeout=60.0, sampler=None):
    """Writes payload while reading answers (so neither side blocks the other) until n_answers lines
    came; returns them. Fails on EOF or timeout."""
    sock.setblocking(False)
    view = memoryview(payload)
    sent = 0
    chunks = []
    got = 0
    deadline = time.monotonic() + timeout
    try:
        while got < n_answers or sent < len(payload):
            left = deadline - time.monotonic()
            assert left > 0, f"timed out: sent {sent} of {len(payload)} bytes, {got} of {n_answers} answers"
            r, w, _ = select.select([sock], [sock] if sent < len(payload) else [], [], min(left, 0.5))
            if w:
                try:
                    sent += sock.send(view[sent : sent + 256 * KiB])
                except BlockingIOError:
                    pass
            if r:
                chunk = sock.recv(1 << 20)
                assert chunk, f"connection closed after {got} of {n_answers} answers"
                chunks.append(chunk)
                got += chunk.count(b"\n")
            if sampler:
                sampler.sample()
    finally:
        sock.setblocking(True)
    data = b"".join(chunks)
    lines = data.split(b"\n")
    assert lines[-1] == b"", "a partial answer line"
    lines.pop()
    assert len(lines) == n_answers, f"{len(lines)} answers for {n_answers} frames"
    return lines


def error_code(line):
    obj = json.loads(line)
    assert obj["ok"] is False and isinstance(obj.get("code"), str) and isinstance(obj.get("error"), str), line
    return obj["code"]


def call_all(c, frames):
    """Sends every frame pipelined on one connection; returns the parsed answers, in order."""
    c.send(b"".join(f + b"\n" for f in frames))
    return [c.recv(timeout=30) for _ in frames]


def submitted_total(env):
    return env.daemons.stats()["submitted_total"]


def seed_refused(env):
    return env.daemons.stats()["seed_refused"]


def send_seeds(c, frames):
    """Seed frames get no answer: sends them with a ping behind, whose answer must be the only one."""
    c.send(b"".join(f + b"\n" for f in frames) + b'{"op":"ping"}\n')
    r = c.recv(timeout=30)
    assert r.get("pong") is True, f"a seed frame was answered: {r}"
    c.expect_silence(0.2)


def new_records(env, known, **match):
    """Records (admin list) not in known (a set of ids) whose fields equal match."""
    with env.client() as c:
        r = c.call({"op": "list", "limit": 10000})
    return [x for x in r["tasks"] if x["id"] not in known and all(x.get(k) == v for k, v in match.items())]


def record_ids(env):
    return {x["id"] for x in new_records(env, set())}


def evidence_with_prefix(env, prefix):
    return [f for f in os.listdir(env.ev) if f.startswith(prefix)]


def submit_frame(task, args, **kw):
    req = {"op": "submit", "task": task, "args": args}
    req.update(kw)
    return json.dumps(req).encode()


# ---------------------------------------------------------------------------------------------------
# The cases


def hold_connections(env, n):
    """n connections to the front, half unix and half TCP; a quarter of them sent half a ping."""
    conns = []
    try:
        for i in range(n):
            c = env.client("unix" if i % 2 else "tcp", timeout=15)
            if i % 4 == 3:
                c.send(b'{"op":"pi')
            conns.append(c)
    except BaseException:
        for c in conns:
            c.close()
        raise
    return conns


def ping_held(conns):
    """Each held connection speaks (completing its half ping) and is answered."""
    for i, c in enumerate(conns):
        c.send(b'ng"}\n' if i % 4 == 3 else b'{"op":"ping"}\n')
    for c in conns:
        assert c.recv().get("pong") is True


def test_1000_idle_connections(hd, case):
    """1,000 connections held open doing nothing (a quarter of them in the middle of a frame): a new
    client is still served, each held one is served when it speaks. Then max_connections is lowered
    to 1000 by a reload: the connection past it gets one clear error line and is closed, while every
    held one keeps working. The warm-up holds and releases 1,000 connections once, so that the
    baseline includes what the allocator keeps of them; the second round must not add to it."""
    if hd.nofile < HELD + 200:
        pytest.skip(f"RLIMIT_NOFILE is {hd.nofile}, need {HELD + 200}")
    first = {}

    def warm_up():
        n = hd.daemons.stats()["connections"]
        first["before"] = rss_kib(hd.daemons.front.pid)
        conns = hold_connections(hd, HELD)
        try:
            wait_for(lambda: hd.daemons.stats()["connections"] == n + HELD, 20, 0.1, what="warm-up connections")
            first["held"] = rss_kib(hd.daemons.front.pid)
            ping_held(conns)
        finally:
            for c in conns:
                c.close()
        wait_for(lambda: hd.daemons.stats()["connections"] == n, 20, 0.1, what="warm-up connections closed")

    h = case(warm_up)
    per_conn = (first["held"] - first["before"]) * KiB / HELD
    conns = []
    refused_line = None
    lowered = False
    try:
        conns = hold_connections(hd, HELD)
        with hd.client() as c:
            wait_for(lambda: c.call({"op": "stats"})["connections"] == HELD + h.connections, 20, 0.1,
                     what=f"{HELD} connections accepted")
        rss_held = rss_kib(h.pid)
        # a new client is served while they are held
        t = tag()
        with hd.client() as c:
            c.ping()
            assert c.wait_final(c.submit("touch", [t]), timeout=WAIT)["state"] == "succeeded"
        ping_held(conns)
        # lower max_connections to 1000 through a reload (sent on a held connection: no room for
        # another), with 1000 held plus the bystander
        ctl = conns[1]  # unix: reload is allowed to root over the unix socket
        hd.write_main(dict(hd.main, max_connections=HELD))
        lowered = True
        assert ctl.call({"op": "reload"}, timeout=30) == {"ok": True}
        assert ctl.call({"op": "stats"})["connections"] == HELD + 1
        with hd.client() as admin:  # root over unix: an admin, let in by the reserve past the limit
            admin.ping()
        wait_for(lambda: ctl.call({"op": "stats"})["connections"] == HELD + 1, 10, 0.05,
                 what="the admin's connection closed")
        for kind in ("tcp", "tcp"):
            extra = hd.client(kind)
            r = extra.recv(timeout=10)
            assert r == {"ok": False, "code": "unavailable", "error": f"too many connections (max {HELD})"}, r
            refused_line = r
            assert extra.readline(timeout=10) is None, "the connection over the limit must be closed"
            extra.close()
        # below the limit again, a new connection is accepted; at it, refused again
        for c in conns[-2:]:
            c.close()
        del conns[-2:]
        wait_for(lambda: ctl.call({"op": "stats"})["connections"] == HELD - 1, 10, 0.05,
                 what="two held connections closed")
        with hd.client("tcp") as c:
            c.ping()
            extra = hd.client("tcp")
            assert extra.recv(timeout=10)["code"] == "unavailable"
            assert extra.readline(timeout=10) is None
            extra.close()
        for c in conns:
            c.ping()  # the held ones are unaffected
        h.bystander.ping()
        hd.write_main(hd.main)
        assert ctl.call({"op": "reload"}, timeout=30) == {"ok": True}
        lowered = False
    finally:
        for c in conns:
            c.close()
        if lowered:  # the test failed half-way: put the module's limit back
            hd.write_main(hd.main)
            hd.daemons.front.send_signal(signal.SIGHUP)
            hd.daemons.launcher.send_signal(signal.SIGHUP)
    with open(hd.daemons.front_log, "rb") as f:
        assert f"too many connections (max {HELD})".encode() in f.read(), "the refusal must be logged"
    m = h.check()
    report("1000_idle_connections", held=HELD, rss_first_round_before_mib=mib(first["before"]),
           rss_first_round_held_mib=mib(first["held"]), per_connection_bytes=int(per_conn),
           rss_second_round_held_mib=mib(rss_held),
           refusal=json.dumps(refused_line), **m)


def test_garbage_bytes(hd, case):
    h = case()
    sampler = RssPeak(h.pid)
    before = submitted_total(hd)
    rng = random.Random(8)
    noise = rng.randbytes(1 * MiB)
    payload = noise + b"\n"
    n = expected_answers(payload)
    with hd.client() as c:
        lines = exchange(c.sock, payload, n, sampler=sampler)
        codes = {}
        for line in lines:
            code = error_code(line)
            codes[code] = codes.get(code, 0) + 1
        # random lines are never requests: at most a JSON scalar ("7") is valid JSON, not an object
        assert set(codes) <= {"bad_frame", "bad_request"}, codes
        c.ping()  # the same connection is still usable
    # well-known junk over TCP: HTTP, a TLS ClientHello, every byte value, control characters
    junk = [
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: x\r\n\r\n",
        bytes.fromhex("160301012c010001280303") + bytes(range(256)) + b"\n",
        bytes(range(256)) * 64 + b"\n",
        b"\x1b[2J\x1b[H\x07\x08\x7f" * 100 + b"\n",
        b"\r" * 5000 + b"\n",  # one frame of 4999 CRs (only the last one is a line ending)
        b"\r\n" * 5000,  # empty lines: no answers
        b"\n" * 20000,
        b"}" * 100000 + b"\n",
        b'"' * 100000 + b"\n",
        b"\xef\xbb\xbf" + b'{"op":"ping"}\n',  # a UTF-8 BOM is not JSON
    ]
    payload = b"".join(junk)
    n_junk = expected_answers(payload)
    with hd.client("tcp") as c:
        lines = exchange(c.sock, payload, n_junk, sampler=sampler)
        for line in lines:
            assert error_code(line) in ("bad_frame", "bad_request"), line
        c.expect_silence(0.3)
        c.ping()
    sampler.sample(force=True)
    assert submitted_total(hd) == before, "garbage was taken as a submission"
    assert sampler.peak <= h.limit(), f"RSS peak {mib(sampler.peak)} MiB while reading garbage"
    m = h.check()
    report("garbage_bytes", frames=n + n_junk, answers=n + n_junk, codes=codes, rss_peak_mib=mib(sampler.peak), **m)


INVALID_UTF8 = [
    b"\x80",  # lone continuation byte
    b"\xbf\xbf",
    b"\xc0\xaf",  # overlong "/"
    b"\xc1\xbf",
    b"\xe0\x80\xaf",  # overlong, 3 bytes
    b"\xf0\x80\x80\xaf",  # overlong, 4 bytes
    b"\xed\xa0\x80",  # UTF-16 surrogate D800
    b"\xed\xbf\xbf",  # surrogate DFFF
    b"\xf4\x90\x80\x80",  # past U+10FFFF
    b"\xf5\x80\x80\x80",
    b"\xf8\x88\x80\x80\x80",  # 5-byte form
    b"\xfe",
    b"\xff",
    b"\xe2\x82",  # truncated 3-byte sequence
    b"\xe2\x82" + b'"',  # truncated right before the closing quote
    b"\xf0\x9f\x98",  # truncated 4-byte sequence
    b"\xc3",  # truncated 2-byte sequence
]


def test_invalid_utf8(hd, case):
    h = case()
    t = tag()
    before = submitted_total(hd)
    frames = []
    for i, bad in enumerate(INVALID_UTF8):
        arg = t.encode() + b"-" + str(i).encode() + bad
        frames += [
            b'{"op":"submit","task":"touch","args":["' + arg + b'"]}',  # in an argument
            b'{"op":"submit","task":"touch","args":["' + t.encode() + b'"],"key":"' + bad + b'"}',
            b'{"op":"submit","task":"stdin","args":["' + t.encode() + b'"],"stdin":"' + bad + b'"}',
            b'{"op":"submit","task":"tou' + bad + b'ch","args":["' + t.encode() + b'"]}',  # in the task name
            b'{"op":"' + bad + b'"}',
            b'{"' + bad + b'":1}',  # in a key
            b'{"op":"ping"}' + bad,  # after the object
            b'{"op":"submit","cmd":"touch ' + hd.ev.encode() + b"/seed-ran" + bad + b'"}',
        ]
    # escaped lone surrogates decode to invalid UTF-8: refused as well
    for esc in (b"\\ud800", b"\\udc00", b"\\udbff", b"\\ud800\\u0041", b"\\udc00\\ud800", b"\\ud800\\ud800"):
        frames.append(b'{"op":"submit","task":"touch","args":["' + t.encode() + b"-esc" + esc + b'"]}')
    with hd.client() as c:
        answers = call_all(c, frames)
        for f, r in zip(frames, answers):
            assert r["ok"] is False and r["code"] == "bad_frame", (f, r)
        # seed frames must carry UTF-8 too (over TCP, as the old clients do); they get no answer
    refused = seed_refused(hd)
    with hd.client("tcp") as c:
        seeds = []
        for bad in INVALID_UTF8:
            cmd = b"touch " + hd.ev.encode() + b"/" + t.encode() + bad
            seeds.append(b's:%d:"%s";' % (len(cmd), cmd))
            cls = b"La" + bad + b"mb"
            seeds.append(b'O:%d:"%s":0:{}' % (len(cls), cls))
        send_seeds(c, seeds)
    assert seed_refused(hd) == refused + len(seeds)
    # valid UTF-8 at the edges goes through byte for byte: U+0080, U+07FF, U+0800, U+FFFF, U+10000,
    # U+10FFFF, raw and as escapes (a surrogate pair)
    edge = "\u0080\u07ff\u0800\uffff\U00010000\U0010ffff"
    with hd.client() as c:
        raw = b'{"op":"submit","task":"argv","args":["' + t.encode() + b'-ok","' + edge.encode() + b'"]}\n'
        tid_raw = c.call(raw)["id"]
        tid_esc = c.submit("argv", [t + "-esc", edge])  # json.dumps escapes, \udbff\udfff included
        for tid in (tid_raw, tid_esc):
            assert c.wait_final(tid, timeout=WAIT)["state"] == "succeeded"
    assert hd.ev_read(f"argv-{t}-ok", "rb") == (t + "-ok\0" + edge + "\0").encode()
    assert hd.ev_read(f"argv-{t}-esc", "rb") == (t + "-esc\0" + edge + "\0").encode()
    assert submitted_total(hd) == before + 2, "only the two valid submissions may be accepted"
    assert sorted(evidence_with_prefix(hd, t)) == [], "a refused submission ran"
    assert not hd.ev_exists("seed-ran")
    m = h.check()
    report("invalid_utf8", refused=len(frames) + len(seeds), accepted_valid=2, **m)


def test_nul_bytes(hd, case):
    h = case()
    t = tag()
    before = submitted_total(hd)
    ev = hd.ev.encode()
    json_frames = [
        b"\x00" * 60000,  # one frame of NULs
        b"\x00",
        b'{"op":"ping"}\x00\x00\x00',
        b'{"\x00op":"ping"}',
        b'{"op"\x00:"ping"}',
        b'{"op":"submit","task":"touch\x00","args":["' + t.encode() + b'"]}',
        b'{"op":"submit","task":"touch","args":["' + t.encode() + b'"],"key":"k\x00"}',
        b'{"op":"submit","task":"stdin","args":["' + t.encode() + b'"],"stdin":"a\x00b"}',
        b'{"op":"submit","cmd":"touch ' + ev + b'/seed-ran\x00"}',
    ]
    escaped = [  # valid JSON, but a NUL cannot be passed on faithfully: bad_request
        submit_frame("touch", [t + "\u0000"]),
        submit_frame("touch", [t], key="k\u0000"),
        submit_frame("stdin", [t], stdin="a\u0000b"),
        json.dumps({"op": "submit", "cmd": f"touch {hd.ev}/seed-ran\u0000"}).encode(),
        b'{"op\\u0000":"ping"}',
    ]
    seeds = [
        b's:2:"\x00\x00";',
        b's:%d:"touch %s/seed-ran\x00";' % (len(ev) + 16, ev),
        b'O:4:"La\x00b":0:{}',
        b'O:4:"Lamb":1:{s:4:"name";s:3:"foo";}\x00',  # a NUL after the object
    ]
    # not a seed frame (it does not start with O:): a JSON frame, and not valid JSON
    json_frames.append(b"\x00" + b'O:4:"Lamb":1:{s:4:"name";s:3:"foo";}')
    with hd.client() as c:
        for f, r in zip(json_frames, call_all(c, json_frames)):
            assert r["ok"] is False and r["code"] == "bad_frame", (f[:80], r)
        for f, r in zip(escaped, call_all(c, escaped)):
            assert r["ok"] is False and r["code"] == "bad_request", (f, r)
        # 20,000 one-NUL frames pipelined: one bad_frame each, then the connection still works
        payload = b"\x00\n" * 20000 + b'{"op":"ping"}\n'
        lines = exchange(c.sock, payload, 20001)
        assert all(error_code(x) == "bad_frame" for x in lines[:-1])
        assert json.loads(lines[-1]).get("pong") is True
    refused = seed_refused(hd)
    with hd.client("tcp") as c:
        send_seeds(c, seeds)
    assert seed_refused(hd) == refused + len(seeds)
    time.sleep(0.3)
    assert submitted_total(hd) == before, "a frame with a NUL byte was accepted"
    assert not evidence_with_prefix(hd, t) and not hd.ev_exists("seed-ran")
    m = h.check()
    report("nul_bytes", refused=len(json_frames) + len(escaped) + len(seeds) + 20000, **m)


def test_100mb_line(hd, case):
    """A 100 MB line written as fast as possible: the front answers frame_too_large once it has seen
    more than max_frame_bytes, long before the line ends, skips the rest up to the newline without
    keeping it (RSS stays far below 100 MB), and the connection goes on (docs/protocol.md,
    Framing)."""
    h = case()
    t = tag()
    total = 100 * 1000 * 1000
    head = b'{"op":"submit","task":"touch","args":["' + t.encode() + b'"],"stdin":"'
    body = b"x" * MiB
    sampler = RssPeak(h.pid, every=0)
    error_at = None
    sent = 0
    answers = []
    started = time.monotonic()
    with hd.client() as c:
        s = c.sock
        s.setblocking(False)
        pending = memoryview(head)
        deadline = time.monotonic() + 120
        while sent < total:
            assert time.monotonic() < deadline, f"only {sent} bytes of the line taken in 120 s"
            if not pending:
                pending = memoryview(body[: min(len(body), total - sent)])
            r, w, _ = select.select([s], [s], [], 1.0)
            if w:
                try:
                    n = s.send(pending)
                    sent += n
                    pending = pending[n:]
                except BlockingIOError:
                    pass
            if r:
                chunk = s.recv(65536)
                assert chunk, f"connection closed after {sent} bytes"
                c.buf += chunk
                if error_at is None and b"\n" in c.buf:
                    error_at = sent
            sampler.sample()
        elapsed = time.monotonic() - started
        s.setblocking(True)
        sampler.sample(force=True)
        # the end of the line, then a request on the same connection
        c.send(b'"}\n{"op":"ping"}\n')
        r = c.recv(timeout=30)
        answers.append(r)
        assert r["ok"] is False and r["code"] == "frame_too_large", r
        assert c.recv(timeout=30).get("pong") is True, "the connection must stay usable after the skipped line"
        c.expect_silence(0.3)  # exactly one answer for the whole line
    assert error_at is not None and error_at < total, "frame_too_large must come before the line ends"
    assert error_at > MAX_FRAME, f"frame_too_large after only {error_at} bytes"
    growth = sampler.peak - h.baseline
    assert growth < 16 * 1024 + 2 * MAX_FRAME // KiB, \
        f"front RSS grew by {mib(growth)} MiB while taking a 100 MB line (limit {mib(MAX_FRAME // KiB)} MiB frame)"
    time.sleep(0.3)
    assert not hd.ev_exists(t), "the oversized submission ran"
    m = h.check()
    report("100mb_line", sent_mb=total // 1000000, error_after_bytes=error_at, seconds=f"{elapsed:.2f}",
           rss_peak_mib=mib(sampler.peak), samples=sampler.samples, **m)


def test_deep_nesting(hd, case):
    h = case()
    t = tag()
    before = submitted_total(hd)
    deep = 10000
    frames = [
        b"[" * deep + b"]" * deep,
        b'{"a":' * deep + b"1" + b"}" * deep,
        b'[{"a":' * (deep // 2) + b"1" + b"}]" * (deep // 2),
        b"[" * deep,  # never closed
        b'{"a":' * deep,
        b"[" * (1000 * 1000),  # a million, still under max_frame_bytes
        b'{"op":"submit","task":"touch","args":' + b"[" * deep + b"]" * deep + b"}",
        b'{"op":"submit","task":"touch","args":["' + t.encode() + b'"],"stdin":' + b"[" * deep + b"]" * deep + b"}",
        b'{"op":"ping","x":' + b'{"y":' * deep + b"0" + b"}" * deep + b"}",
        b'{"op":"submit","task":"touch","args":[["' + t.encode() + b'"]]}',  # only 2 levels, still no string
    ]
    with hd.client() as c:
        answers = call_all(c, frames)
        for f, r in zip(frames[:-1], answers):
            assert r["ok"] is False and r["code"] == "bad_request" and "nesting" in r["error"], (f[:60], r)
        assert answers[-1]["ok"] is False and answers[-1]["code"] == "bad_request", answers[-1]
        c.ping()
    # seed frames nest up to 64 levels: 10,000 is refused without recursing that deep
    lamb_deep = b'O:4:"Lamb":1:{s:4:"name";' + b"a:1:{i:0;" * deep + b"N;" + b"}" * deep + b"}"
    obj_deep = b'O:4:"Lamb":1:{s:1:"x";' + b'O:4:"Lamb":1:{s:1:"x";' * deep + b"N;" + b"}" * (deep + 1)
    at_limit = b'O:4:"Lamb":1:{s:4:"name";' + b"a:1:{i:0;" * 62 + b"N;" + b"}" * 62 + b"}"
    refused = seed_refused(hd)
    known = record_ids(hd)
    with hd.client("tcp") as c:
        send_seeds(c, [lamb_deep, obj_deep, at_limit])
    assert seed_refused(hd) == refused + 2
    lambs = wait_for(lambda: new_records(hd, known, task="lamb"), 10, what="the seed object within the limit")
    assert len(lambs) == 1, f"a seed object 63 levels deep is within the limit: {lambs}"
    tid = lambs[0]["id"]
    with hd.client() as c:
        assert c.wait_final(tid, timeout=WAIT)["state"] == "succeeded"
    assert hd.ev_read(f"lamb.{tid}.stdin", "rb") == at_limit
    assert submitted_total(hd) == before + 1
    assert not hd.ev_exists(t)
    m = h.check()
    report("deep_nesting", depth=deep, refused=len(frames) + 2, **m)


class RssThread(threading.Thread):
    """Samples a pid's RSS every millisecond in the background; peak is the largest seen."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = rss_kib(pid)
        self.running = True

    def run(self):
        while self.running:
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
            except (OSError, AssertionError):
                return
            time.sleep(0.001)

    def stop(self):
        self.running = False
        self.join()
        return self.peak


def test_many_small_values(hd, case):
    """Frames of a million tiny JSON values ("0,0,0,..." up to max_frame_bytes): the parser would
    build a node of some 64 bytes for each, 30 times the frame, and the allocator keeps much of it
    afterwards (before the fix: +80 MiB for one 2 MiB frame, +650 MiB for a 16 MiB one, held for
    good). They are refused ("too many values") before parsing, and the front's RSS grows by little
    more than the frame itself."""
    h = case()
    t = tag()
    before = submitted_total(hd)
    n = (MAX_FRAME - 100) // 2
    frames = [
        b'{"op":"ping","x":[' + b"0," * (n - 1) + b"0]}",
        b"[" + b"1," * (n - 1) + b"1]",
        b'{"op":"submit","task":"touch","args":["' + t.encode() + b'"' + b',""' * ((MAX_FRAME - 100) // 3) + b"]}",
        b"[" + b"null," * (MAX_FRAME // 5 - 2) + b"null]",
        b"[" + b"[]," * (MAX_FRAME // 3 - 2) + b"[]]",
        b"{" + b'"":0,' * (MAX_FRAME // 5 - 2) + b'"":0}',
    ]
    rss = RssThread(h.pid)
    rss.start()
    try:
        with hd.client() as c:
            for f in frames:
                assert len(f) <= MAX_FRAME
                r = c.call(f + b"\n", timeout=WAIT)
                assert r["ok"] is False and r["code"] == "bad_request" and "too many values" in r["error"], (f[:40], r)
            c.ping()
    finally:
        peak = rss.stop()
    growth = peak - h.baseline
    assert growth < 8 * 1024 + 2 * MAX_FRAME // KiB, \
        f"front RSS grew by {mib(growth)} MiB parsing {len(frames)} frames of many values"
    assert submitted_total(hd) == before and not hd.ev_exists(t)
    m = h.check()
    report("many_small_values", frames=len(frames), values_per_frame=n, rss_peak_mib=mib(peak), **m)


HUGE = [b"1e400", b"-1e400", b"1E+400", b"18446744073709551616", b"18446744073709551615", b"9223372036854775808",
        b"9007199254740992", b"1e308", b"-1e308", b"9" * 5000, b"-" + b"9" * 5000, b"1" + b"0" * 400 + b".5"]


def test_huge_numbers(hd, case):
    h = case()
    t = tag()
    before = submitted_total(hd)
    cases = []  # (frame, key named in the error)
    for num in HUGE + [b"-0", b"0", b"-0.0", b"1e-400", b"0.5", b"-1"]:
        for op in (b"status", b"wait", b"cancel", b"retry", b"forget"):
            cases.append((b'{"op":"' + op + b'","id":' + num + b"}", "id"))
    for num in HUGE + [b"-1", b"31536001", b"0.5", b"1.5"]:
        cases.append((b'{"op":"submit","task":"touch","args":["' + t.encode() + b'"],"delay":' + num + b"}", "delay"))
    for num in HUGE + [b"1001", b"-1001", b"0.5"]:
        cases.append((b'{"op":"submit","task":"touch","args":["' + t.encode() + b'"],"priority":' + num + b"}",
                      "priority"))
    for num in HUGE + [b"-1", b"3600.0000001"]:
        cases.append((b'{"op":"wait","id":1,"timeout":' + num + b"}", "timeout"))
    for num in HUGE + [b"0", b"10001"]:
        cases.append((b'{"op":"list","limit":' + num + b"}", "limit"))
    frames = [f for f, _ in cases]
    with hd.client() as c:
        answers = call_all(c, frames)
        for (f, key), r in zip(cases, answers):
            assert r["ok"] is False and r["code"] == "bad_request" and f"'{key}'" in r["error"], (f[:80], r)
        # the largest id is an id; -0 and -0.0 are the integer 0, a valid delay
        r = c.call(b'{"op":"status","id":9007199254740991}\n')
        assert r["ok"] is False and r["code"] == "not_found", r
        ids = []
        # (as is 1e-400: it underflows to 0, as in any JSON parser using doubles)
        for num in (b"-0", b"-0.0", b"0e400", b"-1e-400", b"1e-400"):
            r = c.call(b'{"op":"submit","task":"record","args":["' + t.encode() + b'","' + num + b'"],"delay":' + num
                       + b',"priority":' + num + b"}\n")
            assert r["ok"] is True, (num, r)
            ids.append(r["id"])
        for tid in ids:
            rec = c.wait_final(tid, timeout=WAIT)
            assert rec["state"] == "succeeded" and rec["priority"] == 0, rec
        # a zero wait timeout, however it is spelled, answers at once
        for num in (b"-0", b"0e400", b"1e-400"):
            start = time.monotonic()
            r = c.call(b'{"op":"wait","id":' + str(ids[0]).encode() + b',"timeout":' + num + b"}\n")
            assert r["ok"] is True and r["id"] == ids[0], r
            assert time.monotonic() - start < 5
    assert sorted(int(x.split()[0]) for x in hd.ev_lines(t + ".log")) == ids
    assert submitted_total(hd) == before + len(ids)
    assert not hd.ev_exists(t), "a submission with an out-of-range number ran"
    m = h.check()
    report("huge_numbers", refused=len(cases), accepted_zero_spellings=len(ids), **m)


def test_duplicate_keys(hd, case):
    h = case()
    t = tag().encode()
    before = submitted_total(hd)
    filler = b"".join(b'"k%d":%d,' % (i, i) for i in range(200))
    cases = [
        (b'{"op":"ping","op":"ping"}', "op"),
        (b'{"op":"ping","op":"list"}', "op"),  # the second would be an admin op
        (b'{"op":"list","op":"ping"}', "op"),
        (b'{"op":"ping","\\u006fp":"ping"}', "op"),  # the same key, spelled with an escape
        (b'{"\\u006f\\u0070":"ping","op":"ping"}', "op"),
        (b'{"task":"touch","task":"rootonly","args":["' + t + b'"]}', "task"),
        (b'{"task":"rootonly","task":"touch","args":["' + t + b'"]}', "task"),
        (b'{"op":"submit","task":"touch","args":["' + t + b'"],"args":["' + t + b'x"]}', "args"),
        (b'{"op":"submit","task":"touch","args":["' + t + b'"],"delay":0,"delay":60}', "delay"),
        (b'{"op":"submit","task":"touch","args":["' + t + b'"],"key":"a","key":"b"}', "key"),
        (b'{"op":"submit","task":"touch","args":["' + t + b'"],"priority":1,"priority":1}', "priority"),
        (b'{"op":"submit","task":"stdin","args":["' + t + b'"],"stdin":"a","stdin":"b"}', "stdin"),
        (b'{"op":"submit","cmd":"x","cmd":"y"}', "cmd"),
        (b'{"op":"status","id":1,"id":2}', "id"),
        (b'{"op":"wait","id":1,"timeout":0,"timeout":1}', "timeout"),
        (b'{"op":"list","limit":1,"limit":2}', "limit"),
        (b'{"op":"ping",' + filler + b'"op":"ping"}', None),  # unknown keys first or duplicate: refused
        (b'{' + b'"op":"ping",' * 500 + b'"op":"ping"}', "op"),
    ]
    with hd.client() as c:
        answers = call_all(c, [f for f, _ in cases])
        for (f, key), r in zip(cases, answers):
            assert r["ok"] is False and r["code"] == "bad_request", (f[:80], r)
            if key:
                assert f"duplicate key '{key}'" in r["error"], (f[:80], r)
        c.ping()
    time.sleep(0.3)
    assert submitted_total(hd) == before
    assert not evidence_with_prefix(hd, t.decode())
    m = h.check()
    report("duplicate_keys", refused=len(cases), **m)


def test_args_over_the_limits(hd, case):
    """TASK_ARGS_MAX arguments of TASK_ARG_BYTES_MAX bytes run, byte for byte; one more argument, or
    one more byte in any argument, is refused. Bytes are counted after JSON unescaping, in UTF-8."""
    h = case()
    t = tag()
    before = submitted_total(hd)
    rng = random.Random(4096)

    def arg(n, seed):
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n - len(seed))) + seed

    full = [t + "-full"] + [arg(TASK_ARG_BYTES_MAX, str(i)) for i in range(1, TASK_ARGS_MAX)]
    two_byte = "\u00e9" * (TASK_ARG_BYTES_MAX // 2)  # 4096 bytes, 2048 characters
    ok_cases = {
        t + "-count": [t + "-count"] + [str(i) for i in range(1, TASK_ARGS_MAX)],
        t + "-bytes": [t + "-bytes", arg(TASK_ARG_BYTES_MAX, "b")],
        t + "-full": full,
        t + "-utf8": [t + "-utf8", two_byte],
        t + "-empty": [t + "-empty"] + [""] * (TASK_ARGS_MAX - 1),
    }
    bad_cases = [
        [t + "-c1"] + [str(i) for i in range(1, TASK_ARGS_MAX + 1)],  # 257
        [t + "-b1", arg(TASK_ARG_BYTES_MAX + 1, "b")],
        [t + "-f1"] + full[1:] + ["x"],  # 257, each at the byte limit
        [t + "-f2"] + full[1:-1] + [full[-1] + "x"],  # 256, the last one byte over
        [t + "-u1", two_byte + "a"],  # 4097 bytes, 2049 characters
        [t + "-u2", "\U0001f600" * (TASK_ARG_BYTES_MAX // 4) + "a"],
        [t + "-big", "x" * (MAX_FRAME - 1000)],
    ]
    with hd.client() as c:
        ids = {}
        for name, args in ok_cases.items():
            r = c.call(submit_frame("many", args) + b"\n")
            assert r["ok"] is True, (name, r)
            ids[name] = r["id"]
        # the escaped form of the 2-byte argument: 6 bytes of JSON per character, 4096 bytes decoded
        escaped = b"\\u00e9" * (TASK_ARG_BYTES_MAX // 2)
        esc = b'{"op":"submit","task":"many","args":["' + t.encode() + b'-esc","' + escaped + b'"]}\n'
        r = c.call(esc)
        assert r["ok"] is True, r
        ids[t + "-esc"] = r["id"]
        ok_cases[t + "-esc"] = [t + "-esc", two_byte]
        for args in bad_cases:
            r = c.call(submit_frame("many", args) + b"\n")
            assert r["ok"] is False and r["code"] == "bad_request" and "args" in r["error"], (args[0], len(args), r)
        esc_over = esc.replace(b'"]}', b'e"]}')
        r = c.call(esc_over)
        assert r["ok"] is False and r["code"] == "bad_request", r
        # a hundred thousand empty strings: refused before they are parsed (test_many_small_values)
        r = c.call(submit_frame("many", [t + "-e1"] + [""] * 100000) + b"\n")
        assert r["ok"] is False and r["code"] == "bad_request" and "too many values" in r["error"], r
        for name, tid in ids.items():
            rec = c.wait_final(tid, timeout=WAIT)
            assert rec["state"] == "succeeded", (name, rec)
            assert rec["args"] == ok_cases[name], f"{name}: the record's args differ"
    for name, args in ok_cases.items():
        got = hd.ev_read(f"argv-{name}", "rb")
        assert got == b"".join(a.encode() + b"\0" for a in args), f"{name}: argv differs"
    assert submitted_total(hd) == before + len(ids)
    assert sorted(evidence_with_prefix(hd, f"argv-{t}")) == sorted(f"argv-{k}" for k in ok_cases), \
        "a refused submission ran"
    m = h.check()
    report("args_over_the_limits", accepted_at_limit=len(ids), refused_over=len(bad_cases) + 2, **m)


LAMB = b'O:4:"Lamb":2:{s:4:"name";s:3:"foo";s:5:"items";a:2:{i:0;s:1:"x";i:1;d:1.5;}}'


def test_seed_truncated_and_lying_lengths(hd, case):
    """Every prefix of a valid seed object, and every length and count in it off by one either way or
    replaced by a huge number, is refused before anything is queued; the connection goes on and the
    intact frame still runs."""
    h = case()
    before = submitted_total(hd)
    lambs_before = {f for f in os.listdir(hd.ev) if f.startswith("lamb.")}
    frames = [LAMB[:i] for i in range(2, len(LAMB))]
    # every number in the frame, changed
    for m in re.finditer(rb"(?<=[sOa]:)\d+|(?<=\":)\d+", LAMB):
        for repl in (int(m.group()) - 1, int(m.group()) + 1, 2 ** 31, 2 ** 63, 2 ** 64, 10 ** 30):
            if repl < 0:
                continue
            f = LAMB[: m.start()] + str(repl).encode() + LAMB[m.end() :]
            frames.append(f)
        for bad in (b"0" + m.group(), b"+" + m.group(), b"-" + m.group(), b" " + m.group(), b""):
            frames.append(LAMB[: m.start()] + bad + LAMB[m.end() :])
    ev = hd.ev.encode()
    cmd = b"touch " + ev + b"/seed-ran"
    frames += [
        b's:%d:"%s";' % (len(cmd) + 1, cmd),
        b's:%d:"%s";' % (len(cmd) - 1, cmd),
        b's:%d:"%s";x' % (len(cmd), cmd),
        b's:%d:"%s"' % (len(cmd), cmd),
        b's:%d:"%s' % (len(cmd), cmd),
        b's:0:"";',
        b's:%d:"' % (MAX_FRAME * 4),
        b's:18446744073709551616:"x";',
        b"s:99999999999999999999999999999999999999:\"x\";",
        b'O:4:"Lamb":1:{s:4:"name";C:3:"Foo":4294967296:{x}}',
        b'O:4:"Lamb":1:{s:4:"name";r:99999;}',
        b'O:4:"Lamb":1:{s:4:"name";R:0;}',
        b'O:4:"Lamb":1:{s:4:"name";S:3:"\\6";}',
        b'O:4:"Lamb":1:{s:4:"name";a:1000000:{' + b"i:0;N;" * 10 + b"}}",
        b'O:4:"Lamb":1000000000:{}',
    ]
    # none of them is a frame the front may accept; a few truncations may still parse as a different
    # valid value (none here: the object's braces are checked). All are seed frames: no answers.
    assert all(f.startswith((b"s:", b"O:")) for f in frames)
    refused = seed_refused(hd)
    known = record_ids(hd)
    with hd.client("tcp") as c:
        send_seeds(c, frames)
        assert seed_refused(hd) == refused + len(frames)
        assert not new_records(hd, known), "a refused seed was accepted"
        send_seeds(c, [LAMB, b's:%d:"%s";' % (len(cmd), cmd)])
    accepted = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(new_records(hd, known)), 10,
                        what="the two intact seed frames")
    good, good_cmd = accepted[0]["id"], accepted[1]["id"]
    assert accepted[0]["task"] == "lamb" and accepted[1]["cmd"] == cmd.decode(), accepted
    with hd.client() as c:
        assert c.wait_final(good, timeout=WAIT)["state"] == "succeeded"
        assert c.wait_final(good_cmd, timeout=WAIT)["state"] == "succeeded"
    assert hd.ev_read(f"lamb.{good}.stdin", "rb") == LAMB
    lambs = {f for f in os.listdir(hd.ev) if f.startswith("lamb.")} - lambs_before
    assert lambs == {f"lamb.{good}.stdin"}, "a refused seed ran"
    assert submitted_total(hd) == before + 2
    os.unlink(hd.ev_path("seed-ran"))
    m = h.check()
    report("seed_truncated_and_lying_lengths", refused=len(frames), intact_ran=2, **m)


def test_half_frames_then_disconnect(hd, case):
    """Clients that send whole submissions followed by half of one, then go away in the ways a client
    can: close, shutdown of the sending side, a TCP reset. The whole ones run exactly once (their
    answers are lost, the submissions stand), no half one ever runs, and the front keeps no
    connection and no memory for them. One of the half frames is almost max_frame_bytes long."""
    h = case()
    t = tag()
    before = submitted_total(hd)
    n_clients = 40
    whole_per_client = 2
    big_half = submit_frame("touch", [t + "-big"], stdin="x" * (MAX_FRAME - 200))[: MAX_FRAME - 100]
    sampler = RssPeak(h.pid)
    for i in range(n_clients):
        kind = ("unix", "tcp", "tcp-rst", "unix-shut")[i % 4]
        c = hd.client("tcp" if kind.startswith("tcp") else "unix")
        whole = b"".join(submit_frame("record", [t, f"{i}.{j}"]) + b"\n" for j in range(whole_per_client))
        half = submit_frame("touch", [f"{t}-half-{i}"])[: 10 + i]
        if i == 0:
            half = big_half
        c.send(whole + half)
        if kind == "unix-shut":
            c.sock.shutdown(socket.SHUT_WR)
            time.sleep(0.01)
        if kind == "tcp-rst":
            time.sleep(0.05)  # let the front read first; a reset may discard unread input
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
        sampler.sample()
    wait_for(lambda: len(hd.ev_lines(t + ".log")) >= n_clients * whole_per_client, 180, 0.1,
             what=f"the {n_clients * whole_per_client} whole submissions to run")
    wait_for(lambda: hd.daemons.stats()["connections"] == h.connections, 15, 0.1,
             what="the disconnected clients' connections closed")
    time.sleep(0.5)
    runs = hd.ev_lines(t + ".log")
    got = sorted(x.split()[1] for x in runs)
    want = sorted(f"{i}.{j}" for i in range(n_clients) for j in range(whole_per_client))
    assert got == want, f"{len(runs)} runs for {len(want)} whole submissions (each must run exactly once)"
    assert not [f for f in evidence_with_prefix(hd, t) if "-half-" in f or "-big" in f], "a half frame ran"
    assert submitted_total(hd) == before + len(want)
    sampler.sample(force=True)
    m = h.check()
    report("half_frames_then_disconnect", clients=n_clients, whole_submitted=len(want), whole_ran=len(runs),
           half_ran=0, rss_peak_mib=mib(sampler.peak), **m)


def test_client_that_never_reads(hd, case):
    """A client pipelines 200,000 stats requests and reads nothing. The front answers until
    CONN_OUTPUT_HIGH_WATER bytes of answers are queued, then stops reading that connection: the client
    can write only a bounded part of its requests, the front's RSS stays bounded (200,000 answers
    would be about 40 MB) and it does not spin. Other clients are served meanwhile. Once the client
    reads, every request is answered, in order, exactly once."""
    h = case()
    n = 200000
    frame = b'{"op":"stats"}\n'
    payload = frame * n
    sampler = RssPeak(h.pid)
    with hd.client() as hog:
        s = hog.sock
        s.setblocking(False)
        sent = 0
        last_progress = time.monotonic()
        deadline = time.monotonic() + 60
        # write without reading until the front has taken nothing for 2 s
        while sent < len(payload) and time.monotonic() - last_progress < 2.0:
            assert time.monotonic() < deadline
            _, w, _ = select.select([], [s], [], 0.2)
            if w:
                try:
                    k = s.send(memoryview(payload)[sent : sent + 64 * KiB])
                    if k:
                        sent += k
                        last_progress = time.monotonic()
                except BlockingIOError:
                    pass
            sampler.sample()
        stalled_at = sent
        assert sent < len(payload) // 4, \
            f"the front kept reading requests ({sent} of {len(payload)} bytes) with nobody reading the answers"
        # stalled: the front spends no CPU on the stuck connection
        cpu0 = cpu_seconds(h.pid)
        time.sleep(2.0)
        cpu = cpu_seconds(h.pid) - cpu0
        sampler.sample(force=True)
        assert cpu < 0.5, f"the front used {cpu:.2f} s of CPU in 2 s with one stalled client"
        # and serves everybody else
        served = 0
        for kind in ("unix", "tcp", "unix"):
            with hd.client(kind) as c:
                c.ping()
                t = tag()
                assert c.wait_final(c.submit("touch", [t]), timeout=WAIT)["state"] == "succeeded"
                served += 1
        h.bystander.ping()
        rss_stalled = rss_kib(h.pid)
        # now read: every request is answered, in order
        s.setblocking(True)
        rest = payload[sent:]
        lines = exchange(s, rest, n, timeout=180, sampler=sampler)
        # the first answers were queued before we read: exchange() counted all n
        for i in (0, n // 2, n - 1):
            obj = json.loads(lines[i])
            assert obj["ok"] is True and "queued" in obj and "connections" in obj, obj
        assert sum(1 for x in lines if x.startswith(b'{"ok":true,')) == n, "an answer is not a stats record"
        hog.ping()
    assert sampler.peak <= h.limit() + CONN_OUTPUT_HIGH_WATER // KiB, \
        f"front RSS peak {mib(sampler.peak)} MiB with one client not reading (baseline {mib(h.baseline)} MiB)"
    m = h.check()
    report("client_that_never_reads", requests=n, bytes_taken_before_stall=stalled_at,
           answers=len(lines), other_clients_served=served, cpu_while_stalled_s=f"{cpu:.2f}",
           rss_stalled_mib=mib(rss_stalled), rss_peak_mib=mib(sampler.peak), **m)


def test_one_byte_per_second(hd, case):
    """Slow clients dribbling frames one byte per second for ~13 s hold nothing up: other clients are
    served at full speed meanwhile, nobody gets an answer before their newline, and each dribbled frame
    is then answered correctly (a submission runs)."""
    h = case()
    t = tag()
    ping = b'{"op":"ping"}\n'
    sub = submit_frame("touch", [t]) + b"\n"
    slow = []
    for i in range(10):
        kind = "tcp" if i % 2 else "unix"
        c = hd.client(kind, timeout=20)
        if i == 0:  # a submission: its head at once, its last bytes dribbled
            c.frame, c.pos = sub, len(sub) - len(ping)
            c.send(sub[: c.pos])
        else:
            c.frame, c.pos = ping, 0
        slow.append(c)
    served = 0
    worst = 0.0
    start = time.monotonic()
    for second in range(len(ping)):
        tick = start + second
        for c in slow:
            c.send(c.frame[c.pos : c.pos + 1])
            c.pos += 1
        if second < len(ping) - 1:  # nobody has an answer before the newline
            for c in slow:
                r, _, _ = select.select([c.sock], [], [], 0)
                assert not r, "an answer to a frame not yet complete"
        # other clients meanwhile, until the next byte is due
        while time.monotonic() < tick + 1.0 - 0.15:
            t0 = time.monotonic()
            with hd.client("tcp" if served % 2 else "unix") as c:
                c.ping()
                if served % 5 == 0:
                    c.submit("touch", [f"{t}-other-{served}"])
            worst = max(worst, time.monotonic() - t0)
            served += 1
            time.sleep(0.05)
        delay = tick + 1.0 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.monotonic() - start
    r = slow[0].recv(timeout=20)
    assert r["ok"] is True and r["state"] == "queued", r
    tid = r["id"]
    for c in slow[1:]:
        assert c.recv(timeout=20) == {"ok": True, "pong": True, "version": "0.1.0"}
    for c in slow:
        c.ping()
        c.close()
    with hd.client() as c:
        assert c.wait_final(tid, timeout=WAIT)["state"] == "succeeded"
    assert hd.ev_exists(t)
    wait_for(lambda: len([f for f in evidence_with_prefix(hd, t) if "-other-" in f]) == (served + 4) // 5, WAIT,
             what="the other clients' tasks")
    m = h.check()
    report("one_byte_per_second", slow_clients=len(slow), dribble_seconds=f"{elapsed:.1f}", others_served=served,
           others_tasks_ran=(served + 4) // 5, worst_other_latency_s=f"{worst:.2f}", **m)
