# SPDX-License-Identifier: MIT
"""submit --slot-key, what the services of scheduled tasks run: one task per slot of the schedule,
however often and wherever the slot is submitted (the timers of several hosts sharing one database,
the service started by hand). Needs systemd-analyze, which computes the slots."""

import datetime
import json
import os
import shutil
import subprocess

import pytest

from conftest import CLI_BIN, tag

pytestmark = pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")

# A slot of "*:*:0/10": 2023-11-14 22:13:20 UTC.
SLOT = 1700000000


def submit_slot(env, calendars, *args, at_usec=None):
    """submit --slot-key, as the service of a timer elapsing at at_usec runs it (default: now)."""
    slot_args = [a for c in calendars for a in ("--slot-key", c)]
    if at_usec is not None:
        at = datetime.datetime.fromtimestamp(at_usec // 10**6, datetime.timezone.utc)
        slot_args += ["--slot-time", at.strftime("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % (at_usec % 10**6)]
    return subprocess.run([CLI_BIN, "--socket", env.front_sock, "--json", "submit", *slot_args, *args],
                          capture_output=True, timeout=60, env=dict(os.environ, TZ="UTC"))


def answer(p):
    assert p.returncode == 0, f"exit {p.returncode}: {p.stderr.decode(errors='replace')}"
    return json.loads(p.stdout.decode().strip().splitlines()[-1])


def test_one_task_per_slot(shared):
    t = tag()
    every10 = ["*:*:0/10"]
    # The timer of one host elapsed right at the slot, another's after its randomized delay.
    first = answer(submit_slot(shared, every10, "touch", t, at_usec=SLOT * 10**6 + 200000))
    assert first.get("existing") is not True, first
    for late in (0, 9 * 10**6 + 999999, 5 * 10**6):
        again = answer(submit_slot(shared, every10, "touch", t, at_usec=SLOT * 10**6 + late))
        assert again["id"] == first["id"] and again.get("existing") is True, (late, again)
    # The next slot is another run; so is the same slot of another task.
    following = answer(submit_slot(shared, every10, "touch", t, at_usec=(SLOT + 10) * 10**6))
    assert following["id"] != first["id"] and following.get("existing") is not True, following
    other = answer(submit_slot(shared, every10, "argv", t, at_usec=SLOT * 10**6 + 1))
    assert other["id"] not in (first["id"], following["id"]), other
    # Several expressions: the latest slot of any of them.
    both = answer(submit_slot(shared, ["hourly", "*:*:0/10"], "touch", t, at_usec=(SLOT + 10) * 10**6 + 3))
    assert both["id"] == following["id"], both


def test_started_by_hand_is_the_current_slot(shared):
    # No trigger time: now, whose slot of a yearly expression is the same for both.
    t = tag()
    a = answer(submit_slot(shared, ["*-01-01 00:00:00"], "touch", t))
    b = answer(submit_slot(shared, ["*-01-01 00:00:00"], "touch", t))
    assert a["id"] == b["id"] and b.get("existing") is True, (a, b)


def test_refused_expressions(shared):
    p = submit_slot(shared, ["bogus"], "touch", tag())
    assert p.returncode == 2, p
    assert b"'bogus'" in p.stderr, p.stderr
    p = submit_slot(shared, ["2099-01-01"], "touch", tag())
    assert p.returncode == 2 and b"no slot at or before" in p.stderr, p
    p = subprocess.run([CLI_BIN, "--socket", shared.front_sock, "submit", "--key", "k", "--slot-key", "daily",
                        "touch"], capture_output=True, timeout=30)
    assert p.returncode == 2, p
