# SPDX-License-Identifier: MIT
"""The wire framing: split frames, pipelining, the max_frame_bytes boundary, CRLF, empty lines,
garbage, half frames, NUL bytes. A bad frame costs only that frame."""

import json
import time

from conftest import tag, wait_for_count

MAX_FRAME = 8192  # standard_config's max_frame_bytes


def ping_frame(length):
    """A valid ping request of exactly `length` bytes (padded with JSON whitespace)."""
    base = b'{"op":"ping"'
    pad = length - len(base) - 1
    assert pad >= 0
    return base + b" " * pad + b"}"


def test_frame_split_byte_by_byte(shared):
    t = tag()
    with shared.client("tcp") as c:
        frame = json.dumps({"op": "submit", "task": "touch", "args": [t]}).encode() + b"\n" + b'{"op":"ping"}\r\n'
        for i in range(len(frame)):
            c.send(frame[i : i + 1])
            time.sleep(0.002)
        r = c.recv()
        assert r["ok"] is True and isinstance(r["id"], int), r
        assert c.recv().get("pong") is True
        c.wait_final(r["id"])
    assert shared.ev_exists(t)


def test_1000_pipelined_submissions(shared):
    t = tag()
    n = 1000
    payload = b"".join(
        json.dumps({"op": "submit", "task": "record", "args": [t, str(i)]}).encode() + b"\n" for i in range(n)
    )
    with shared.client() as c:
        c.send(payload)
        ids = []
        for i in range(n):
            r = c.recv(timeout=30)
            assert r["ok"] is True and r["state"] == "queued", (i, r)
            ids.append(r["id"])
        assert all(a < b for a, b in zip(ids, ids[1:])), "ids not increasing in response order"

        wait_for_count(lambda: len(shared.ev_lines(t + ".log")), n, interval=0.2, what="runs")
        # everything final, then no further run may appear
        for tid in (ids[0], ids[n // 2], ids[-1]):
            assert c.wait_final(tid)["state"] == "succeeded"
        time.sleep(0.5)
    lines = shared.ev_lines(t + ".log")
    assert len(lines) == n, f"{len(lines)} runs for {n} submissions"
    run_ids = [int(x.split()[0]) for x in lines]
    seqs = [int(x.split()[1]) for x in lines]
    assert sorted(run_ids) == ids, "each accepted id must run exactly once"
    assert sorted(seqs) == list(range(n))
    # and each id ran with its own args
    by_id = dict(zip(ids, range(n)))
    assert all(by_id[i] == s for i, s in zip(run_ids, seqs))
    assert all(shared.ev_exists(f"{t}.id.{i}") for i in ids)


def test_max_frame_bytes_boundary(shared):
    with shared.client() as c:
        r = c.call(ping_frame(MAX_FRAME) + b"\n")
        assert r["ok"] is True and r.get("pong") is True, r
        r = c.call(ping_frame(MAX_FRAME + 1) + b"\n")
        assert r["ok"] is False and r["code"] == "frame_too_large", r
        c.ping()
        # N bytes before a CRLF: the \r is not part of the frame
        r = c.call(ping_frame(MAX_FRAME) + b"\r\n")
        assert r.get("pong") is True, r
        # the same with the end of line arriving separately (the daemon holds N or N+1 bytes without
        # a newline and must not judge them too large yet)
        for frame, eol, ok in ((ping_frame(MAX_FRAME), b"\n", True), (ping_frame(MAX_FRAME) + b"\r", b"\n", True),
                               (ping_frame(MAX_FRAME + 1), b"\n", False), (ping_frame(MAX_FRAME + 1) + b"\r", b"\n", False)):
            c.send(frame)
            time.sleep(0.1)
            r = c.call(eol)
            if ok:
                assert r.get("pong") is True, (len(frame), r)
            else:
                assert r["ok"] is False and r["code"] == "frame_too_large", (len(frame), r)
            c.ping()


def test_huge_frame_sent_in_pieces_then_usable(shared):
    t = tag()
    big = json.dumps({"op": "submit", "task": "touch", "args": [t], "stdin": "x" * (MAX_FRAME * 20)}).encode()
    with shared.client("tcp") as c:
        for i in range(0, len(big), 4096):
            c.send(big[i : i + 4096])
        c.send(b"\n")
        r = c.recv()
        assert r["ok"] is False and r["code"] == "frame_too_large", r
        c.expect_silence(0.3)  # exactly one answer for the oversized frame
        c.ping()
        # several oversized frames pipelined with good ones between them
        c.send(big + b"\n" + b'{"op":"ping"}\n' + big + b"\n" + b'{"op":"ping"}\n')
        assert c.recv()["code"] == "frame_too_large"
        assert c.recv().get("pong") is True
        assert c.recv()["code"] == "frame_too_large"
        assert c.recv().get("pong") is True
    time.sleep(0.3)
    assert not shared.ev_exists(t)


def test_crlf_and_empty_lines(shared):
    with shared.client() as c:
        c.send(b'\n\n\r\n{"op":"status","id":999999999}\r\n\r\n\n{"op":"ping"}\n\n')
        r = c.recv()
        assert r["ok"] is False and r["code"] == "not_found", r
        assert c.recv().get("pong") is True
        c.expect_silence(0.3)
        c.ping()


def test_garbage_and_invalid_json(shared):
    with shared.client() as c:
        for frame in (b"hello there", b"{", b'{"op":"ping"', b'{"op":"ping"}}', b"\xff\xfe\xfd", b"[1,2", b'{"op":}'):
            r = c.call(frame + b"\n")
            assert r["ok"] is False and r["code"] == "bad_frame", (frame, r)
            c.ping()


def test_schema_violations_are_bad_request(shared):
    with shared.client() as c:
        for req in (
            {"op": "frobnicate"},
            {"op": "ping", "extra": 1},
            {"op": "submit", "task": "touch", "args": "notalist"},
            {"op": "submit", "task": "touch", "args": [1]},
            {"op": "submit", "task": 5},
            {"op": "submit", "task": "touch", "cmd": "x"},
            {"op": "status"},
            {"op": "status", "id": "7"},
            {"op": "status", "id": -1},
            {"op": "submit", "task": "touch", "delay": -1},
            {"op": "submit", "task": "touch", "args": [["nested"]]},
            [],
            "ping",
        ):
            r = c.call(json.dumps(req).encode() + b"\n")
            assert r["ok"] is False and r["code"] in ("bad_request", "bad_frame"), (req, r)
            if isinstance(req, dict):
                assert r["code"] == "bad_request", (req, r)
            c.ping()


def test_half_frame_then_disconnect_not_run(shared):
    t = tag()
    before = shared.daemons.stats()["submitted_total"]
    c = shared.client()
    c.send(json.dumps({"op": "submit", "task": "touch", "args": [t]}).encode())  # no newline
    time.sleep(0.2)
    c.close()
    time.sleep(1.0)
    assert not shared.ev_exists(t)
    with shared.client() as c2:
        c2.ping()
        assert c2.call({"op": "stats"})["submitted_total"] == before


def test_nul_byte_in_json_frame(shared):
    t = tag()
    with shared.client() as c:
        for frame in (
            b'{"op":"ping"}\x00',
            b'{"op":"pi\x00ng"}',
            b'\x00{"op":"ping"}',
            json.dumps({"op": "submit", "task": "touch", "args": [t]}).encode()[:-1] + b"\x00}",
            b'{"op":"submit","task":"touch","args":["' + t.encode() + b'\x00x"]}',
            # an escaped NUL would silently truncate the argument
            json.dumps({"op": "submit", "task": "touch", "args": [t + "\u0000x"]}).encode(),
        ):
            r = c.call(frame + b"\n")
            assert r["ok"] is False and r["code"] in ("bad_frame", "bad_request"), (frame, r)
            c.ping()
    time.sleep(0.3)
    assert not shared.ev_exists(t)
