# SPDX-License-Identifier: MIT
"""Frames of the old PHP clients (serialize() . PHP_EOL) over TCP: s: strings run listed commands,
O: objects run the task mapped in php_classes with the whole frame on stdin. Seed frames get no
answer (the old clients never read one); a refused one is logged and counted in stats."""

import re
import socket

import pytest

from conftest import ALLOW, TASK_USER, Env, _require_binaries, serve_module, standard_config, tag, wait_for

def s_frame(cmd):
    b = cmd.encode() if isinstance(cmd, str) else cmd
    return b's:%d:"%s";' % (len(b), b)


def seed_then_ping(c, *frames):
    """Sends seed frames with a ping behind them on one connection: the ping's answer must be the only
    line that comes back."""
    c.send(b"".join(f + b"\n" for f in frames) + b'{"op":"ping"}\n')
    r = c.recv()
    assert r.get("pong") is True, f"a seed frame was answered: {r}"
    c.expect_silence(0.2)


def seed_refused(env):
    return env.daemons.stats()["seed_refused"]


def records(env, **match):
    """The task records (admin list) whose fields equal match, oldest first."""
    with env.client() as c:
        r = c.call({"op": "list", "limit": 10000})
    assert r["ok"] is True, r
    return [t for t in r["tasks"] if all(t.get(k) == v for k, v in match.items())]


def newest_record(env, timeout=10, **match):
    found = wait_for(lambda: records(env, **match), timeout, what=f"a task record with {match}")
    return found[-1]


def test_seed_string_runs_listed_command(shared):
    refused = seed_refused(shared)
    cmd = f"touch {shared.ev}/seed-ran"
    with shared.client("tcp") as c:
        seed_then_ping(c, s_frame(cmd))
        shared.ev_wait("seed-ran")
        rec = c.wait_final(newest_record(shared, cmd=cmd)["id"])
        assert rec["state"] == "succeeded" and rec["task"] is None and rec["submitter"] == "uid:0", rec
    assert seed_refused(shared) == refused


def test_seed_string_runs_through_shell_pipelined(shared):
    # the listed command itself uses shell syntax; the second frame is not listed: neither is answered
    refused = seed_refused(shared)
    with shared.client("tcp") as c:
        seed_then_ping(c, s_frame(f'echo "hello world" > {shared.ev}/seed-hello'), s_frame("id"))
    shared.ev_wait("seed-hello")
    wait_for(lambda: shared.ev_read("seed-hello") == "hello world\n", what="the command's output")
    assert seed_refused(shared) == refused + 1


def test_seed_string_unlisted_command_refused(shared):
    t = tag()
    refused = seed_refused(shared)
    with shared.client("tcp") as c:
        for cmd in (f"touch {shared.ev}/{t}", f"touch {shared.ev}/seed-ran ", f"touch {shared.ev}/seed-ran; touch {shared.ev}/{t}"):
            seed_then_ping(c, s_frame(cmd))
    assert seed_refused(shared) == refused + 3
    assert not records(shared, cmd=f"touch {shared.ev}/{t}")
    assert not shared.ev_exists(t)


def test_seed_string_wrong_length_is_refused(shared):
    t = tag()
    cmd = f"touch {shared.ev}/{t}".encode()
    frames = (
        b's:%d:"%s";' % (len(cmd) + 1, cmd),
        b's:%d:"%s";' % (len(cmd) - 1, cmd),
        b's:%d:"%s"' % (len(cmd), cmd),  # no ';'
        b"s:x:\"a\";",
        b"s:99999999999999999999:\"a\";",
        b"s:",
    )
    refused = seed_refused(shared)
    with shared.client("tcp") as c:
        seed_then_ping(c, *frames)
    assert seed_refused(shared) == refused + len(frames)
    assert not shared.ev_exists(t)


def test_seed_object_runs_mapped_task_with_frame_on_stdin(shared):
    # a private property's name is "\0Class\0prop", so the frame carries NUL bytes
    frame = b'O:4:"Lamb":2:{s:10:"\x00Lamb\x00name";s:5:"mary\x00";s:6:"\x00*\x00age";i:3;}'
    before = {r["id"] for r in records(shared, task="lamb")}
    with shared.client("tcp") as c:
        seed_then_ping(c, frame)
        rec = wait_for(lambda: [r for r in records(shared, task="lamb") if r["id"] not in before], what="the lamb task")[0]
        rec = c.wait_final(rec["id"])
        assert rec["state"] == "succeeded" and rec["task"] == "lamb", rec
        name = f"lamb.{rec['id']}.stdin"
        shared.ev_wait(name)
        assert shared.ev_read(name, "rb") == frame


def test_seed_object_unmapped_class_refused(shared):
    refused = seed_refused(shared)
    with shared.client("tcp") as c:
        seed_then_ping(c, b'O:5:"Sheep":0:{}')
    assert seed_refused(shared) == refused + 1


def test_seed_object_malformed_is_refused(shared):
    frames = (
        b'O:5:"Lamb":0:{}',  # class name length lies
        b'O:4:"Lamb":1:{s:4:"name";s:9:"mary";}',  # inner string length lies
        b'O:4:"Lamb":1:{s:4:"name";',  # truncated
        b'O:4:"Lamb":2:{s:4:"name";s:4:"mary";}',  # property count lies
    )
    lambs = len(records(shared, task="lamb"))
    refused = seed_refused(shared)
    with shared.client("tcp") as c:
        seed_then_ping(c, *frames)
    assert seed_refused(shared) == refused + len(frames)
    assert len(records(shared, task="lamb")) == lambs


def test_seed_string_over_unix(shared):
    # the listed command allows the invoking user over unix too
    cmd = f"touch {shared.ev}/seed-ran"
    before = {r["id"] for r in records(shared, cmd=cmd)}
    with shared.client() as c:
        seed_then_ping(c, s_frame(cmd))
        rec = wait_for(lambda: [r for r in records(shared, cmd=cmd) if r["id"] not in before], what="the command")[0]
        assert c.wait_final(rec["id"])["state"] == "succeeded"
        assert rec["submitter"].startswith("uid:"), rec


def test_seed_and_json_frames_share_a_connection(shared):
    """JSON frames keep exactly one answer each, in order, with seed frames between them: the first
    line a client reads after a seed frame and a JSON frame is the JSON frame's answer."""
    t = tag()
    refused = seed_refused(shared)
    with shared.client("tcp") as c:
        c.send(s_frame(f"touch {shared.ev}/seed-ran") + b"\n" + b'{"op":"submit","task":"touch","args":["%s"]}\n' % t.encode())
        first = c.recv()
        assert first["ok"] is True and first["state"] == "queued", first
        assert c.wait_final(first["id"])["task"] == "touch"
        # JSON, accepted seed, JSON, refused seed, malformed seed, JSON: three answers, in order
        c.send(b'{"op":"status","id":%d}\n' % first["id"] + s_frame(f"touch {shared.ev}/seed-ran") + b"\n"
               + b'{"op":"status","id":9007199254740991}\n' + s_frame("id") + b"\n" + b's:1:"ab";\n'
               + b'{"op":"ping"}\n')
        r1, r2, r3 = c.recv(), c.recv(), c.recv()
        assert r1["ok"] is True and r1["id"] == first["id"], r1
        assert r2["ok"] is False and r2["code"] == "not_found", r2
        assert r3.get("pong") is True, r3
        c.expect_silence(0.3)
    assert shared.ev_exists(t)
    assert seed_refused(shared) == refused + 2


def log_lines(env, needle, start=0):
    with open(env.daemons.front_log, "rb") as f:
        f.seek(start)
        text = f.read().decode("utf-8", "replace")
    return [line for line in text.splitlines() if needle in line]


def test_seed_refusals_logged_and_counted(env, start_daemons):
    """Each kind of refused seed frame is logged with the peer, the reason and the frame's first bytes
    (C escapes, at most 64 bytes), and counted in stats; a flood is logged SEED_REFUSALS_LOGGED_MAX
    times, then one line says how many were left out."""
    main, tasks = standard_config(env)
    main["commands"].append({"cmd": "true", "user": TASK_USER, "allow": {"networks": ["10.0.0.0/8"]}})
    main["php_classes"]["Remote"] = "tcp10"
    tasks["tcp10"] = dict(tasks["tcp10"], max_args=0)  # a php_classes task takes no arguments
    d = start_daemons(main, tasks)
    env.daemons = d
    big = b's:20000:"' + b"x" * 20000 + b'";'  # over max_frame_bytes (8192)
    kinds = [
        (s_frame("id"), "command_not_allowed", r's:2:\"id\";'),
        (b'O:5:"Sheep":0:{}', "unknown_task", r'O:5:\"Sheep\":0:{}'),
        (s_frame("true"), "forbidden", r's:4:\"true\";'),
        (b'O:6:"Remote":0:{}', "forbidden", r'O:6:\"Remote\":0:{}'),
        (b's:3:"id";', "bad_frame", r's:3:\"id\";'),
        (b'O:4:"La\x00b":0:{}', "bad_frame", r'O:4:\"La\x00b\":0:{}'),
        (big, "frame_too_large", r's:20000:\"' + "x" * 55 + "..."),
    ]
    assert seed_refused(env) == 0
    with env.client("tcp") as c:
        seed_then_ping(c, *(f for f, _, _ in kinds))
    assert seed_refused(env) == len(kinds)
    lines = log_lines(env, "Refused seed frame")
    assert len(lines) == len(kinds), lines
    for line, (_, code, quoted) in zip(lines, kinds):
        assert re.search(r"Refused seed frame from tcp 127\.0\.0\.1:\d+(?: uid=\d+\(\w+\))?: " + code + ": ", line), line
        assert line.endswith(f'"{quoted}"'), (line, quoted)
    # a flood: the first lines of the window, then one line with the count of the rest
    flood = 200
    with env.client("tcp") as c:
        seed_then_ping(c, *([s_frame("id")] * flood))
    assert seed_refused(env) == len(kinds) + flood
    logged_max = 10
    suppressed = wait_for(lambda: log_lines(env, "Suppressed the messages of"), 10, what="the suppressed count")
    assert len(log_lines(env, "Refused seed frame")) == logged_max
    left_out = len(kinds) + flood - logged_max
    assert suppressed == [s for s in suppressed if f"of {left_out} more refused seed frame(s)" in s], suppressed
    assert len(suppressed) == 1, suppressed
    # the next window logs again
    with env.client("tcp") as c:
        seed_then_ping(c, s_frame("id"))
    assert len(log_lines(env, "Refused seed frame")) == logged_max + 1


# ---------------------------------------------------------------------------------------------------
# The old clients' pattern: one write per frame, never a read, then close


OLD_FRAMES_PER_RUN = 3000
OLD_RUNS = 3
OLD_CONNECTIONS = 1000


def _old_count_cmd(env, mark):
    return f"echo {mark} >> {env.ev}/old-client.runs"


@pytest.fixture(scope="module")
def old():
    """Daemons with two listed commands and a PHP class that each append one line per run (s, c and
    o), so that runs can be counted; max_connections at its default."""
    _require_binaries()
    e = Env()
    main, tasks = standard_config(e, max_connections=1024)
    for mark in ("s", "c"):
        main["commands"].append({"cmd": _old_count_cmd(e, mark), "user": TASK_USER, "allow": ALLOW})
    main["php_classes"]["OldCounter"] = "old_counter"
    tasks["old_counter"] = {"exec": [e.script("old_counter", 'cat > /dev/null\necho o >> "$EV/old-client.runs"\n')],
                            "user": TASK_USER, "allow": ALLOW}
    yield from serve_module(e, main, tasks)


def old_client(env, frames):
    """What the old package's CommonSender does: connect over TCP (Nagle on, the default), one send()
    per serialize($x) . PHP_EOL, never read, close."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.connect(("127.0.0.1", env.port))
        for f in frames:
            s.sendall(f)
    finally:
        s.close()


def _runs(env):
    lines = env.ev_lines("old-client.runs")
    return {mark: lines.count(mark) for mark in ("s", "o", "c")}


def _settled(env, submitted, expected, timeout):
    """Waits until every expected run is in, or the front has stopped taking frames and has nothing
    queued or running; returns (frames accepted, runs by mark)."""
    last = [None]

    def done():
        st = env.daemons.stats()
        now = (st["submitted_total"] - submitted, _runs(env))
        idle = now == last[0] and st["queued"] == 0 and st["running"] == 0
        last[0] = now
        return idle or now[1] == expected

    wait_for(done, timeout, 1.0, what="the old client's tasks to run")
    return last[0]


def test_old_client_pattern_loses_no_frame(old):
    """3 connections of 3,000 s: frames and one O: frame each, then 1,000 connections of one s:
    frame: the old clients never read, so an answer would make their kernel reset the connection at
    close and drop the frames not yet sent. Every frame must be accepted and run exactly once."""
    submitted = old.daemons.stats()["submitted_total"]
    s = s_frame(_old_count_cmd(old, "s")) + b"\n"
    o = b'O:10:"OldCounter":1:{s:4:"name";s:4:"mary";}\n'
    for _ in range(OLD_RUNS):
        old_client(old, [s] * OLD_FRAMES_PER_RUN + [o])
    c = s_frame(_old_count_cmd(old, "c")) + b"\n"
    for _ in range(OLD_CONNECTIONS):
        old_client(old, [c])
    want = {"s": OLD_RUNS * OLD_FRAMES_PER_RUN, "o": OLD_RUNS, "c": OLD_CONNECTIONS}
    accepted, runs = _settled(old, submitted, want, 900)
    assert (accepted, runs) == (sum(want.values()), want), \
        f"accepted {accepted} of {sum(want.values())} frames; runs {runs}, expected {want}"
    st = old.daemons.stats()
    assert st["failed"] == 0, st
