# SPDX-License-Identifier: MIT
"""The metrics op and `asynctask metrics [--http]`: values after a known sequence of submissions, runs,
failures and refusals; the text passes `promtool check metrics`; the HTTP answers of one scrape."""

import json
import re
import shutil
import subprocess
import time

import pytest

from conftest import ALLOW, CLI_BIN, TASK_USER, base_main, tag, wait_for

PROMTOOL = shutil.which("promtool")

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, ((label, value), ...)): float} of every sample; HELP and TYPE lines checked for form."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = LINE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = tuple(sorted(LABEL.findall(m.group(2) or "")))
        key = (m.group(1), labels)
        assert key not in samples, f"sample twice: {line!r}"
        samples[key] = float(m.group(3))
    return samples


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def metrics(env):
    p = env.cli("metrics")
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode()


def promtool_check(text):
    if PROMTOOL is None:
        pytest.fail("promtool is not installed (Debian package prometheus; scripts/install-deps test)")
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
    assert p.returncode == 0, f"promtool check metrics:\n{p.stdout.decode()}{p.stderr.decode()}"


def config(env):
    ok = env.script("ok", "exit 0\n")
    bad = env.script("bad", "exit 3\n")
    hold = env.script("hold", 'while [ ! -e "$EV/$1" ]; do sleep 0.05; done\n')

    def t(path, **kw):
        d = {"exec": [path], "max_args": 1, "user": TASK_USER, "allow": ALLOW}
        d.update(kw)
        return d

    tasks = {
        "ok": t(ok),
        "bad": t(bad, max_attempts=2, backoff_sec=[0]),
        "hold": t(hold, concurrency=1),
        "tcponly": t(ok, allow={"networks": ["10.0.0.0/8"]}),
    }
    return dict(base_main(env), node="metrics-node-1"), tasks


def submit(env, *args):
    p = env.cli("--json", "submit", *args)
    return p.returncode, json.loads(p.stdout.decode().strip().splitlines()[-1]) if p.stdout.strip() else None


def test_metrics_follow_a_known_sequence(start_daemons, env):
    d = start_daemons(*config(env))

    s = parse(metrics(env))
    # Every configured task has its series before its first run, at zero.
    for task in ("ok", "bad", "hold", "tcponly"):
        assert value(s, "asynctask_run_duration_seconds_count", task=task) == 0
        assert value(s, "asynctask_queue_wait_seconds_bucket", task=task, le="+Inf") == 0
    assert value(s, "asynctask_submitted_total") == 0
    assert value(s, "asynctask_store_up") == 1
    assert value(s, "asynctask_launcher_up") == 1
    assert value(s, "asynctask_oldest_queued_age_seconds") == 0
    assert value(s, "asynctask_node_info", node="metrics-node-1") == 1

    # Three successes, one task failing for good after its two attempts.
    for _ in range(3):
        assert env.cli("submit", "--wait", "ok").returncode == 0
    assert env.cli("submit", "--wait", "--timeout", "30", "bad").returncode == 3
    # Refusals: an unknown task, a task this peer may not submit, a frame that is no JSON.
    assert env.cli("submit", "nosuchtask").returncode == 3
    assert env.cli("submit", "tcponly").returncode == 3
    with env.client() as c:
        c.send(b"{not json\n")
        bad_frame = c.recv()
    assert bad_frame["ok"] is False
    # A queue that keeps a task waiting: hold runs one at a time and the first one holds.
    first, second = tag(), tag()
    rc, a = submit(env, "hold", first)
    assert rc == 0
    rc, b = submit(env, "hold", second)
    assert rc == 0
    time.sleep(1.5)

    text = metrics(env)
    promtool_check(text)
    s = parse(text)
    assert value(s, "asynctask_submitted_total") == 3 + 1 + 2
    assert value(s, "asynctask_tasks", state="succeeded") == 3
    assert value(s, "asynctask_tasks", state="failed") == 1
    assert value(s, "asynctask_tasks", state="running") == 1
    assert value(s, "asynctask_tasks", state="queued") == 1
    assert value(s, "asynctask_tasks", state="cancelled") == 0
    assert value(s, "asynctask_runs_finished_total", task="ok", result="success") == 3
    assert value(s, "asynctask_runs_finished_total", task="bad", result="exit-code") == 2
    assert not [k for k in s if k[0] == "asynctask_runs_finished_total" and dict(k[1])["task"] == "hold"]
    assert value(s, "asynctask_run_duration_seconds_count", task="ok") == 3
    assert value(s, "asynctask_run_duration_seconds_bucket", task="ok", le="+Inf") == 3
    assert value(s, "asynctask_run_duration_seconds_count", task="bad") == 2
    assert 0 < value(s, "asynctask_run_duration_seconds_sum", task="ok") < 30
    # Started runs: three ok, two of bad, the first hold (the second is still queued).
    assert value(s, "asynctask_queue_wait_seconds_count", task="ok") == 3
    assert value(s, "asynctask_queue_wait_seconds_count", task="bad") == 2
    assert value(s, "asynctask_queue_wait_seconds_count", task="hold") == 1
    # Buckets are cumulative and end at the count.
    buckets = sorted(
        ((float(dict(k[1])["le"]), v) for k, v in s.items()
         if k[0] == "asynctask_run_duration_seconds_bucket" and dict(k[1])["task"] == "ok"),
        key=lambda x: x[0])
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] == 3
    # The second hold has waited since its submission, at least the 1.5 s slept (generous top).
    age = value(s, "asynctask_oldest_queued_age_seconds")
    assert 1.4 <= age < 60, age
    assert value(s, "asynctask_refused_total", code="unknown_task") == 1
    assert value(s, "asynctask_refused_total", code="forbidden") == 1
    assert value(s, "asynctask_refused_total", code=bad_frame["code"]) == 1
    assert value(s, "asynctask_refused_total", code="not_found") == 0
    # This CLI's connection, at least.
    assert value(s, "asynctask_connections") >= 1

    # Let both holds run; their queue waits are then counted, the second one's about 1.5 s or more.
    open(env.ev_path(first), "w").close()
    open(env.ev_path(second), "w").close()
    for t in (a, b):
        assert env.cli("wait", "--timeout", "30", str(t["id"])).returncode == 0
    s = parse(metrics(env))
    assert value(s, "asynctask_queue_wait_seconds_count", task="hold") == 2
    assert value(s, "asynctask_queue_wait_seconds_sum", task="hold") >= 1.4
    assert value(s, "asynctask_queue_wait_seconds_bucket", task="hold", le="1") == 1
    assert value(s, "asynctask_runs_finished_total", task="hold", result="success") == 2
    assert value(s, "asynctask_oldest_queued_age_seconds") == 0


def http(env, request, socket=None):
    where = ["--socket", socket or env.front_sock]
    p = subprocess.run([CLI_BIN, *where, "metrics", "--http"], input=request, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return lines[0], headers, body


def test_metrics_over_http(start_daemons, env):
    d = start_daemons(*config(env))
    assert env.cli("submit", "--wait", "ok").returncode == 0

    status, headers, body = http(env, b"GET /metrics HTTP/1.1\r\nHost: localhost:9502\r\nAccept: */*\r\n\r\n")
    assert status == "HTTP/1.0 200 OK"
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert int(headers["Content-Length"]) == len(body)
    s = parse(body.decode())
    assert value(s, "asynctask_runs_finished_total", task="ok", result="success") == 1
    promtool_check(body.decode())

    status, headers, body = http(env, b"HEAD / HTTP/1.0\r\n\r\n")
    assert status == "HTTP/1.0 200 OK" and body == b"" and int(headers["Content-Length"]) > 0
    status, _, _ = http(env, b"GET /other HTTP/1.1\r\n\r\n")
    assert status == "HTTP/1.0 404 Not Found"
    status, headers, _ = http(env, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
    assert status == "HTTP/1.0 405 Method Not Allowed" and headers["Allow"] == "GET, HEAD"
    status, _, _ = http(env, b"GET /metrics\r\n\r\n")
    assert status == "HTTP/1.0 400 Bad Request"
    # A request cut short (the client closed before its empty line).
    status, _, _ = http(env, b"GET /metrics HTTP/1.1\r\n")
    assert status == "HTTP/1.0 400 Bad Request"
    # The daemon does not answer: the scraper gets a 503, and the unit does not fail.
    status, _, body = http(env, b"GET /metrics HTTP/1.1\r\n\r\n", socket=env.dir + "/nothing.sock")
    assert status == "HTTP/1.0 503 Service Unavailable", body

    # Every refusal above was the HTTP side's: the daemon refused nothing.
    s = parse(metrics(env))
    assert all(v == 0 for k, v in s.items() if k[0] == "asynctask_refused_total")
