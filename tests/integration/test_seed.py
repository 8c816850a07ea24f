# SPDX-License-Identifier: MIT
"""Frames of the old PHP clients (serialize() . PHP_EOL) over TCP: s: strings run listed commands,
O: objects run the task mapped in php_classes with the whole frame on stdin."""

from conftest import tag, wait_for


def s_frame(cmd):
    b = cmd.encode()
    return b's:%d:"%s";' % (len(b), b)


def test_seed_string_runs_listed_command(shared):
    with shared.client("tcp") as c:
        r = c.call(s_frame(f"touch {shared.ev}/seed-ran") + b"\n")
        assert r["ok"] is True and isinstance(r.get("id"), int), r
        shared.ev_wait("seed-ran")
        rec = c.wait_final(r["id"])
        assert rec["state"] == "succeeded" and rec["task"] is None
        assert rec["cmd"] == f"touch {shared.ev}/seed-ran"


def test_seed_string_runs_through_shell_pipelined(shared):
    # the listed command itself uses shell syntax; two seed frames in one write, each answered in order
    with shared.client("tcp") as c:
        c.send(s_frame(f'echo "hello world" > {shared.ev}/seed-hello') + b"\n" + s_frame("id") + b"\n")
        r1, r2 = c.recv(), c.recv()
        assert r1["ok"] is True, r1
        assert r2["ok"] is False and r2["code"] == "command_not_allowed", r2
        c.wait_final(r1["id"])
        assert shared.ev_read("seed-hello") == "hello world\n"


def test_seed_string_unlisted_command_refused(shared):
    t = tag()
    with shared.client("tcp") as c:
        for cmd in (f"touch {shared.ev}/{t}", f"touch {shared.ev}/seed-ran ", f"touch {shared.ev}/seed-ran; touch {shared.ev}/{t}"):
            r = c.call(s_frame(cmd) + b"\n")
            assert r["ok"] is False and r["code"] == "command_not_allowed", (cmd, r)
            c.ping()
    assert not shared.ev_exists(t)


def test_seed_string_wrong_length_is_bad_frame(shared):
    t = tag()
    cmd = f"touch {shared.ev}/{t}".encode()
    with shared.client("tcp") as c:
        for frame in (
            b's:%d:"%s";' % (len(cmd) + 1, cmd),
            b's:%d:"%s";' % (len(cmd) - 1, cmd),
            b's:%d:"%s"' % (len(cmd), cmd),  # no ';'
            b"s:x:\"a\";",
            b"s:99999999999999999999:\"a\";",
            b"s:",
        ):
            r = c.call(frame + b"\n")
            assert r["ok"] is False and r["code"] == "bad_frame", (frame, r)
            c.ping()
    assert not shared.ev_exists(t)


def test_seed_object_runs_mapped_task_with_frame_on_stdin(shared):
    # a private property's name is "\0Class\0prop", so the frame carries NUL bytes
    frame = b'O:4:"Lamb":2:{s:10:"\x00Lamb\x00name";s:5:"mary\x00";s:6:"\x00*\x00age";i:3;}'
    with shared.client("tcp") as c:
        r = c.call(frame + b"\n")
        assert r["ok"] is True and isinstance(r.get("id"), int), r
        rec = c.wait_final(r["id"])
        assert rec["state"] == "succeeded" and rec["task"] == "lamb", rec
        name = f"lamb.{r['id']}.stdin"
        shared.ev_wait(name)
        assert shared.ev_read(name, "rb") == frame
        c.ping()


def test_seed_object_unmapped_class_refused(shared):
    with shared.client("tcp") as c:
        r = c.call(b'O:5:"Sheep":0:{}\n')
        assert r["ok"] is False and r["code"] in ("unknown_task", "command_not_allowed"), r
        c.ping()


def test_seed_object_malformed_is_bad_frame(shared):
    with shared.client("tcp") as c:
        for frame in (
            b'O:5:"Lamb":0:{}',  # class name length lies
            b'O:4:"Lamb":1:{s:4:"name";s:9:"mary";}',  # inner string length lies
            b'O:4:"Lamb":1:{s:4:"name";',  # truncated
            b'O:4:"Lamb":2:{s:4:"name";s:4:"mary";}',  # property count lies
        ):
            r = c.call(frame + b"\n")
            assert r["ok"] is False and r["code"] == "bad_frame", (frame, r)
            c.ping()


def test_seed_string_over_unix(shared):
    # the listed command allows the invoking user over unix too
    with shared.client() as c:
        r = c.call(s_frame(f"touch {shared.ev}/seed-ran") + b"\n")
        assert r["ok"] is True, r
        wait_for(lambda: c.status(r["id"])["state"] == "succeeded", 10, what="seed command over unix")
