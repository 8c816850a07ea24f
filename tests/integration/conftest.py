# SPDX-License-Identifier: MIT
"""Fixtures and helpers for the integration tests: they start the real asynctask-launcher and
asynctaskd (direct executor, memory store) in a temporary directory, talk to them over their unix
and TCP sockets, and check what the tasks did through evidence files the task scripts write."""

import datetime
import json
import os
import pwd
import re
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILDDIR = os.environ.get("ASYNCTASK_BUILDDIR") or os.path.join(REPO, "build")
FRONT_BIN = os.path.join(BUILDDIR, "asynctaskd")
LAUNCHER_BIN = os.path.join(BUILDDIR, "asynctask-launcher")
CLI_BIN = os.path.join(BUILDDIR, "asynctask")
# Keys of asynctask.json left out of every main config the tests write (space-separated): to run a
# test's attack against a build that predates those keys and refuses them, with that build's
# defaults. A test must then fail (README.md, "Against an older build").
OMIT_KEYS = frozenset(os.environ.get("ASYNCTASK_TEST_OMIT_KEYS", "").split())

IS_ROOT = os.geteuid() == 0
ME = pwd.getpwuid(os.geteuid()).pw_name
# Tasks run as nobody when the suite runs as root; otherwise the direct executor can only run them
# as the invoking user.
TASK_USER = "nobody" if IS_ROOT else ME
NOBODY_UID = pwd.getpwnam("nobody").pw_uid
NOBODY_GID = pwd.getpwnam("nobody").pw_gid

# Present in the daemons' environment; a task must never see it.
LEAK_VAR = "ASYNCTASK_TEST_DAEMON_ONLY"

FINAL_STATES = ("succeeded", "failed", "cancelled")
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (tasks as other users, peers as nobody)")

# Daemon pairs alive right now, so that a failing test shows their stderr.
_live = []


def tag():
    """A unique name for one test's evidence files."""
    return "t" + uuid.uuid4().hex[:12]


def wait_for(pred, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def built_with_asan():
    """Whether the daemons under test are an AddressSanitizer build (`make SANITIZE=1`): its shadow
    memory and redzones count in RSS, so RSS bounds of the plain build do not apply."""
    try:
        with open(FRONT_BIN, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def small_asan_quarantine(daemons):
    """For a test that measures a daemon's RSS: ASan keeps freed memory in a quarantine of 256 MiB by
    default, which would hide whether memory comes back; a small one keeps RSS meaningful (and
    catches the same use-after-free bugs, over a shorter window). Options already set still win; no
    effect on a build without ASan."""
    daemons.daemon_env["ASAN_OPTIONS"] = ":".join(
        x for x in ("quarantine_size_mb=4", os.environ.get("ASAN_OPTIONS")) if x
    )


def wait_for_count(count, target, stall=60.0, interval=0.1, what="items"):
    """Waits until count() reaches target. A slow machine only makes it slower: it fails when the
    count has not grown for `stall` seconds, and says how far it got."""
    last, last_change = count(), time.monotonic()
    while last < target:
        time.sleep(interval)
        now = count()
        if now != last:
            last, last_change = now, time.monotonic()
        elif time.monotonic() - last_change > stall:
            raise AssertionError(f"{what}: {last} of {target}, no progress for {stall:.0f}s")
    return last


def parse_iso(s):
    assert s is not None and ISO_RE.match(s), f"not an ISO 8601 UTC timestamp with ms: {s!r}"
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, lines=150):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return f"<{e}>"
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------------
# Process inspection


def proc_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rindex(")") + 2] != "Z"


def processes_in_group(pgid):
    """Live (non-zombie) pids whose process group is pgid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rindex(")") + 2 :].split()
        if rest[0] != "Z" and int(rest[2]) == pgid:
            out.append(int(d))
    return out


# ---------------------------------------------------------------------------------------------------
# Client


def recv_before(sock, deadline, what):
    """What sock has (b"" at EOF or reset), waiting until deadline (time.monotonic()) at most;
    TimeoutError(what) if nothing came."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(what)
    r, _, _ = select.select([sock], [], [], remaining)
    if not r:
        raise TimeoutError(what)
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


class Client:
    """One connection to the front: send raw bytes or JSON requests, read response lines."""

    def __init__(self, addr, timeout=10.0):
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        if addr[0] == "unix":
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(addr[1] if addr[0] == "unix" else (addr[1], addr[2]))
        except BaseException:
            self.sock.close()
            raise

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send_obj(self, obj):
        self.send(json.dumps(obj).encode() + b"\n")

    def _fill(self, deadline):
        chunk = recv_before(self.sock, deadline, "no response line in time")
        if not chunk:
            self.eof = True
        self.buf += chunk

    def readline(self, timeout=None):
        """The next response line without its newline, or None at EOF. TimeoutError if none came."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self.buf:
            if self.eof:
                return None
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def recv(self, timeout=None):
        line = self.readline(timeout)
        assert line is not None, "connection closed instead of a response"
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError(f"response is not JSON: {line!r}")
        assert isinstance(obj, dict) and isinstance(obj.get("ok"), bool), f"not a response object: {line!r}"
        if not obj["ok"]:
            assert isinstance(obj.get("code"), str) and isinstance(obj.get("error"), str), obj
        return obj

    def call(self, req, timeout=None):
        if isinstance(req, (bytes, str)):
            self.send(req)
        else:
            self.send_obj(req)
        return self.recv(timeout)

    def read_until_eof(self, timeout=20.0):
        """All remaining complete lines until the peer closes; a trailing partial line is returned too."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            self._fill(deadline)
        lines = self.buf.split(b"\n")
        self.buf = b""
        if lines and lines[-1] == b"":
            lines.pop()
        return lines

    def expect_silence(self, seconds=0.3):
        """Asserts that no further bytes arrive within `seconds`."""
        r, _, _ = select.select([self.sock], [], [], seconds)
        if r:
            data = self.sock.recv(65536)
            assert not data and not self.buf, f"unexpected extra data: {self.buf + data!r}"
        assert not self.buf, f"unexpected extra data: {self.buf!r}"

    # convenience requests
    def ping(self):
        r = self.call({"op": "ping"})
        assert r.get("ok") is True and r.get("pong") is True, r
        return r

    def submit(self, task, args=(), **kw):
        req = {"op": "submit", "task": task, "args": list(args)}
        req.update(kw)
        r = self.call(req)
        assert r.get("ok") is True, f"submit {task} refused: {r}"
        assert isinstance(r.get("id"), int) and r["id"] > 0, r
        return r["id"]

    def status(self, tid):
        return self.call({"op": "status", "id": tid})

    def wait_final(self, tid, timeout=20.0):
        """Waits (with the wait op, in slices) until the task is final; returns its record."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            slice_ = max(1, min(5, int(left + 0.999)))
            r = self.call({"op": "wait", "id": tid, "timeout": slice_}, timeout=slice_ + 10)
            assert r.get("ok") is True, f"wait {tid}: {r}"
            if r.get("state") in FINAL_STATES:
                return r
            if time.monotonic() > deadline:
                raise AssertionError(f"task {tid} not final after {timeout}s: {r}")

    def wait_state(self, tid, states, timeout=10.0):
        if isinstance(states, str):
            states = (states,)
        last = {}

        def check():
            nonlocal last
            last = self.status(tid)
            return last.get("state") in states

        try:
            wait_for(check, timeout, 0.02, f"task {tid} in {states}")
        except AssertionError:
            raise AssertionError(f"task {tid} never reached {states}; last status {last}")
        return last


def run_client_as(uid, gid, addr, payload, n_responses, groups=()):
    """Connects from a child process running as uid/gid (root only), sends payload, reads n response
    lines and returns them parsed. Used to be a non-root peer. addr is a unix socket's path, or
    (host, port) or (host, port, source address) for TCP."""
    code = (
        "import json,socket,sys\n"
        "a=json.loads(sys.argv[1])\n"
        "if isinstance(a,str):\n"
        "    s=socket.socket(socket.AF_UNIX);s.settimeout(15);s.connect(a)\n"
        "else:\n"
        "    s=socket.socket(socket.AF_INET);s.settimeout(15)\n"
        "    if len(a)>2: s.bind((a[2],0))\n"
        "    s.connect((a[0],a[1]))\n"
        "s.sendall(sys.stdin.buffer.read())\n"
        "n=int(sys.argv[2]);b=b''\n"
        "while b.count(b'\\n')<n:\n"
        "    c=s.recv(65536)\n"
        "    if not c: break\n"
        "    b+=c\n"
        "sys.stdout.buffer.write(b)\n"
    )
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    p = subprocess.run(
        [py, "-c", code, json.dumps(addr), str(n_responses)],
        input=payload,
        user=uid,
        group=gid,
        extra_groups=list(groups),
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=30,
    )
    assert p.returncode == 0, f"client as uid {uid} failed: {p.stderr.decode()}"
    lines = p.stdout.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    assert len(lines) == n_responses, f"expected {n_responses} responses, got {lines!r}"
    return [json.loads(x) for x in lines]


# ---------------------------------------------------------------------------------------------------
# Test environment: a temp dir with config, scripts and a world-writable evidence dir


class Env:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="asynctask-it-")
        # Tasks run as nobody: every directory on the way to the scripts must be traversable.
        os.chmod(self.dir, 0o755)
        self.ev = os.path.join(self.dir, "evidence")
        os.mkdir(self.ev)
        os.chmod(self.ev, 0o1777)
        self.bindir = os.path.join(self.dir, "bin")
        os.mkdir(self.bindir, 0o755)
        self.tasks_dir = os.path.join(self.dir, "tasks.d")
        # The launcher reads only config files no one but their owner may write: modes set explicitly,
        # whatever the umask.
        os.mkdir(self.tasks_dir)
        os.chmod(self.tasks_dir, 0o755)
        self.config_path = os.path.join(self.dir, "asynctask.json")
        self.launcher_sock = os.path.join(self.dir, "launcher.sock")
        self.front_sock = os.path.join(self.dir, "front.sock")
        self.port = free_port()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def script(self, name, body):
        """Writes bin/<name> (a /bin/sh script; $EV is the evidence dir) and returns its path."""
        path = os.path.join(self.bindir, name)
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\nEV='{self.ev}'\n{body}")
        os.chmod(path, 0o755)
        return path

    def ev_path(self, name):
        return os.path.join(self.ev, name)

    def ev_exists(self, name):
        return os.path.exists(self.ev_path(name))

    def ev_read(self, name, mode="r"):
        with open(self.ev_path(name), mode) as f:
            return f.read()

    def ev_wait(self, name, timeout=10.0):
        wait_for(lambda: self.ev_exists(name), timeout, what=f"evidence file {name}")

    def ev_lines(self, name):
        if not self.ev_exists(name):
            return []
        return self.ev_read(name).splitlines()

    def write_config(self, main, tasks):
        """asynctask.json and one tasks.d/<name>.json per task (stale task files removed)."""
        for f in os.listdir(self.tasks_dir):
            os.unlink(os.path.join(self.tasks_dir, f))
        for name, t in tasks.items():
            d = dict(t)
            d.setdefault("name", name)
            with open(os.path.join(self.tasks_dir, f"{name}.json"), "w") as f:
                json.dump(d, f, indent=1)
                os.fchmod(f.fileno(), 0o644)
        self.write_main(main)

    def write_main(self, main):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            os.fchmod(f.fileno(), 0o644)
            if isinstance(main, str):
                f.write(main)
            else:
                json.dump({k: v for k, v in main.items() if k not in OMIT_KEYS}, f, indent=1)
        os.rename(tmp, self.config_path)

    def write_task_file(self, filename, content):
        with open(os.path.join(self.tasks_dir, filename), "w") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(content if isinstance(content, str) else json.dumps(content))

    @property
    def unix(self):
        return ("unix", self.front_sock)

    @property
    def tcp(self):
        return ("tcp", "127.0.0.1", self.port)

    def client(self, kind="unix", **kw):
        return Client(self.unix if kind == "unix" else self.tcp, **kw)

    def cli(self, *args, tcp=False, timeout=60, stdin=subprocess.DEVNULL):
        where = ["--tcp", f"127.0.0.1:{self.port}"] if tcp else ["--socket", self.front_sock]
        return subprocess.run([CLI_BIN, *where, *args], capture_output=True, timeout=timeout, stdin=stdin)


def base_main(env, **over):
    main = {
        "store": {"type": "memory"},
        "launcher": env.launcher_sock,
        "executor": "direct",
        "max_running": 16,
        "max_frame_bytes": 8192,
        "max_connections": 64,
        "admins": {"users": [ME]},
    }
    main.update(over)
    return main


# Allow list of the ordinary test tasks: the invoking user over unix, 127.0.0.1 over TCP.
ALLOW = {"users": [ME], "networks": ["127.0.0.1/32"]}

SCRIPTS = {
    "touch": 'touch "$EV/$1"\n',
    "argv": "printf '%s\\0' \"$@\" > \"$EV/argv-$1\"\n",
    "stdin": 'cat > "$EV/$1.stdin"\n',
    "env": 'env > "$EV/$1.env"\n',
    "exit": 'exit "$1"\n',
    "record": 'echo "$ASYNCTASK_ID $2" >> "$EV/$1.log"\ntouch "$EV/$1.id.$ASYNCTASK_ID"\n',
    "sleeper": 'echo $$ > "$EV/$1.pid.tmp" && mv "$EV/$1.pid.tmp" "$EV/$1.pid"\n'
    'sleep "$2" &\necho $! > "$EV/$1.child.tmp" && mv "$EV/$1.child.tmp" "$EV/$1.child"\n'
    'wait\ntouch "$EV/$1.done"\n',
    "stubborn": "trap '' TERM\n"
    'echo $$ > "$EV/$1.pid.tmp" && mv "$EV/$1.pid.tmp" "$EV/$1.pid"\n'
    'sleep 30 &\necho $! > "$EV/$1.child.tmp" && mv "$EV/$1.child.tmp" "$EV/$1.child"\n'
    'wait\nwait\ntouch "$EV/$1.done"\n',
    "fail": 'echo "$(date +%s.%N) $ASYNCTASK_ATTEMPT" >> "$EV/$1.starts"\nexit 3\n',
    "flaky": 'n=$(cat "$EV/$1.count" 2>/dev/null || echo 0)\nn=$((n + 1))\necho $n > "$EV/$1.count"\n'
    'echo "$ASYNCTASK_ATTEMPT" >> "$EV/$1.attempts"\n[ "$n" -ge 2 ]\n',
    "slot": 'start=$(date +%s.%N)\nif ! mkdir "$EV/$1.lock" 2>/dev/null; then echo "$2" >> "$EV/$1.overlap"; fi\n'
    'sleep "${3:-0.3}"\nrmdir "$EV/$1.lock" 2>/dev/null\n'
    'echo "$start $(date +%s.%N) $2" >> "$EV/$1.slots"\n',
    "out": 'echo "stdout-marker-$1"\necho "stderr-marker-$1" >&2\n',
    "whoami": 'id -u > "$EV/$1.uid"\nid -g > "$EV/$1.gid"\nid -G > "$EV/$1.groups"\ntouch "$EV/$1.file"\n',
    "selfkill": "kill -KILL $$\n",
    "lamb": 'cat > "$EV/lamb.$ASYNCTASK_ID.stdin"\n',
}


def standard_config(env, **main_over):
    """The task set most tests use. Returns (main, tasks)."""
    bins = {name: env.script(name, body) for name, body in SCRIPTS.items()}

    def t(script, max_args=0, **kw):
        d = {"exec": [bins[script]], "max_args": max_args, "user": TASK_USER, "allow": ALLOW}
        d.update(kw)
        return d

    tasks = {
        "touch": t("touch", 2),
        "argv": t("argv", 20, working_directory=env.ev),
        "stdin": t("stdin", 1),
        "env": t("env", 1, environment={"APP_ENV": "test", "SPACED": "a b  c"}),
        "exit": t("exit", 1),
        "record": t("record", 2),
        "everywhere": t("record", 2, on="every_host"),
        "sleeper": t("sleeper", 2),
        "timeout": t("sleeper", 2, timeout_sec=1),
        "stubborn": t("stubborn", 1, timeout_sec=1),
        "fail": t("fail", 1, max_attempts=3, backoff_sec=[1, 2]),
        "flaky": t("flaky", 1, max_attempts=3, backoff_sec=[1]),
        "fail1": t("fail", 1),
        "conc1": t("slot", 3, concurrency=1),
        "parallel": t("slot", 3),
        "out": t("out", 1),
        "selfkill": t("selfkill", 0),
        "whoami_nobody": t("whoami", 1, user="nobody"),
        "whoami_group": t("whoami", 1, user="nobody", group="daemon"),
        "tcp10": t("touch", 2, allow={"networks": ["10.0.0.0/8"]}),
        "noallow": {"exec": [bins["touch"]], "max_args": 2, "user": TASK_USER},
        "rootonly": t("touch", 2, allow={"users": ["root"]}),
        "grp_nogroup": t("touch", 2, allow={"groups": ["nogroup"]}),
        "grp_daemon": t("touch", 2, allow={"groups": ["daemon"]}),
        "lamb": t("lamb", 0),
    }
    main = base_main(env, **main_over)
    main.setdefault(
        "commands",
        [
            {"cmd": f"touch {env.ev}/seed-ran", "user": TASK_USER, "allow": ALLOW},
            {"cmd": f'echo "hello world" > {env.ev}/seed-hello', "user": TASK_USER, "allow": ALLOW},
        ],
    )
    main.setdefault("php_classes", {"Lamb": "lamb"})
    return main, tasks


# ---------------------------------------------------------------------------------------------------
# Daemons


def _terminate(proc, grace=5.0):
    """SIGTERM, then SIGKILL after grace seconds. Returns (returncode, killed)."""
    if proc.poll() is not None:
        return proc.returncode, False
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(grace), False
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(), True


def _journal_fields(data):
    """The fields of one datagram of journald's native protocol: KEY=VALUE lines, or KEY, a newline, a
    64-bit little-endian length and the value (how a value with a newline is sent)."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = nl + 1
        else:
            key, (n,) = line, struct.unpack_from("<Q", data, nl + 1)
            value = data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        fields[key.decode()] = value.decode(errors="replace")
    return fields


class JournalCapture:
    """journald as a daemon sees it, for the fields of its messages (MESSAGE_ID=, ASYNCTASK_ID=, ...)
    that its plain stderr lines do not show. wrap(argv) runs the daemon in a mount namespace of its
    own where /run/systemd is this capture's directory, whose journal/socket is a datagram socket the
    test reads, and with JOURNAL_STREAM naming its stderr: the daemon then logs as under systemd.
    Needs root (the namespace) and a /run/systemd to mount over."""

    available = IS_ROOT and os.path.isdir("/run/systemd") and shutil.which("unshare") is not None

    def __init__(self, env):
        self.root = os.path.join(env.dir, "run-systemd")
        os.makedirs(os.path.join(self.root, "journal"))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(os.path.join(self.root, "journal", "socket"))
        self.entries = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except OSError:
                return
            with self.lock:
                self.entries.append(_journal_fields(data))

    def wrap(self, argv):
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$0" /run/systemd && JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) && '
                'export JOURNAL_STREAM && exec "$@"', self.root] + list(argv)

    def find(self, **fields):
        """The entries so far whose fields have these values."""
        with self.lock:
            return [e for e in self.entries if all(e.get(k) == v for k, v in fields.items())]

    def wait(self, timeout=20.0, count=1, **fields):
        """The count-th entry with these fields, waiting up to timeout seconds for it."""
        wait_for(lambda: len(self.find(**fields)) >= count, timeout, what=f"{count} journal entries with {fields}")
        return self.find(**fields)[count - 1]

    def text(self):
        with self.lock:
            return "\n".join(f"{e.get('PRIORITY')} {e.get('MESSAGE_ID', '-')} {e.get('MESSAGE')}" for e in self.entries)

    def close(self):
        self.sock.close()


class Daemons:
    """The launcher and the front of one Env. With front_journal (a JournalCapture), the front logs
    to it instead of its stderr file."""

    def __init__(self, env, log_level="debug", front_journal=None):
        self.env = env
        self.log_level = log_level
        self.front_journal = front_journal
        self.launcher = None
        self.front = None
        self.launcher_log = os.path.join(env.dir, "launcher.stderr")
        self.front_log = os.path.join(env.dir, "front.stderr")
        self.daemon_env = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "JOURNAL_STREAM", "WATCHDOG_USEC"):
            self.daemon_env.pop(k, None)
        self.daemon_env[LEAK_VAR] = "leaked"

    def _spawn(self, argv, log):
        f = open(log, "ab")
        try:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f, env=self.daemon_env, cwd=self.env.dir)
        finally:
            f.close()

    def start_launcher(self, wait=True):
        assert self.launcher is None or self.launcher.poll() is not None
        self.launcher = self._spawn(
            [LAUNCHER_BIN, "--config", self.env.config_path, "--listen", f"unix:{self.env.launcher_sock}",
             "--log-level", self.log_level],
            self.launcher_log,
        )
        if wait:
            def up():
                assert self.launcher.poll() is None, f"launcher exited ({self.launcher.returncode}):\n{tail(self.launcher_log)}"
                return os.path.exists(self.env.launcher_sock)
            wait_for(up, 10, what="launcher socket")

    def start_front(self, wait=True):
        assert self.front is None or self.front.poll() is not None
        argv = [FRONT_BIN, "--config", self.env.config_path, "--listen", f"unix:{self.env.front_sock}",
                "--listen", f"tcp:127.0.0.1:{self.env.port}", "--log-level", self.log_level]
        if self.front_journal:
            argv = self.front_journal.wrap(argv)
        self.front = self._spawn(argv, self.front_log)
        if wait:
            self.wait_ready()

    def start(self):
        if self not in _live:
            _live.append(self)
        self.start_launcher()
        self.start_front()
        return self

    def ping_ok(self):
        assert self.front.poll() is None, f"asynctaskd exited ({self.front.returncode}):\n{tail(self.front_log)}"
        try:
            with Client(self.env.unix, timeout=2) as c:
                return c.call({"op": "ping"}).get("pong") is True
        except (OSError, TimeoutError):
            return False

    def stats(self, timeout=5):
        with Client(self.env.unix, timeout=timeout) as c:
            return c.call({"op": "stats"})

    def wait_ready(self, timeout=15, stats_timeout=5):
        wait_for(self.ping_ok, timeout, what="asynctaskd to answer ping")
        wait_for(lambda: self.stats(stats_timeout).get("launcher") == "connected", timeout,
                 what="front connected to launcher")

    def stop_front(self):
        if self.front is None:
            return None
        rc, killed = _terminate(self.front)
        assert not killed, f"asynctaskd did not exit within 5 s of SIGTERM:\n{tail(self.front_log)}"
        return rc

    def stop_launcher(self):
        if self.launcher is None:
            return None
        rc, killed = _terminate(self.launcher)
        assert not killed, f"asynctask-launcher did not exit within 5 s of SIGTERM:\n{tail(self.launcher_log)}"
        return rc

    def stop(self, check=True):
        """Stops both (front first); with check, asserts both exited 0 on SIGTERM."""
        try:
            rf = self.stop_front()
        finally:
            rl = self.stop_launcher()
            if self in _live:
                _live.remove(self)
        if check:
            assert rf in (None, 0), f"asynctaskd exit status {rf}:\n{tail(self.front_log)}"
            assert rl in (None, 0), f"asynctask-launcher exit status {rl}:\n{tail(self.launcher_log)}"

    def kill_all(self):
        for p in (self.front, self.launcher):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        if self in _live:
            _live.remove(self)


# ---------------------------------------------------------------------------------------------------
# MariaDB: a private server per test module that asks for the db fixture

SERVER = os.path.join(REPO, "tests", "lib", "mariadb-server")
needs_mariadb = pytest.mark.skipif(shutil.which("mariadbd") is None and not os.path.exists("/usr/sbin/mariadbd"),
                                reason="MariaDB server not installed (apt-get install mariadb-server)")


class MariaDB:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="asynctask-mariadb-")
        os.chmod(self.dir, 0o755)
        self.cnf = os.path.join(self.dir, "my.cnf")

    def start(self):
        subprocess.run([SERVER, "start", self.dir], check=True, timeout=120)

    def stop(self):
        subprocess.run([SERVER, "stop", self.dir], check=True, timeout=120)

    def sql(self, statement, database="asynctask"):
        """Runs SQL as root; returns the rows as lists of strings (tab-separated output)."""
        p = subprocess.run(["mariadb", f"--defaults-file={self.cnf}", "-N", "-B", database, "-e", statement],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, f"SQL failed: {statement}\n{p.stderr}"
        return [line.split("\t") for line in p.stdout.splitlines()]

    def reset(self):
        self.sql("DROP DATABASE IF EXISTS asynctask; CREATE DATABASE asynctask", database="mysql")


@pytest.fixture(scope="module")
def db():
    m = MariaDB()
    m.start()
    try:
        yield m
    finally:
        m.stop()
        shutil.rmtree(m.dir, ignore_errors=True)


@pytest.fixture
def mysql_daemons(env, db):
    """Starts both daemons with the MySQL store on a fresh database; returns the Daemons."""
    db.reset()
    started = []

    def start(front_journal=None, **main_over):
        main, tasks = standard_config(env, **main_over)
        main["store"] = {"type": "mysql", "option_file": db.cnf, "group": "asynctask"}
        env.write_config(main, tasks)
        d = Daemons(env, front_journal=front_journal)
        started.append(d)
        return d.start()

    yield start
    for d in started:
        d.kill_all()



@pytest.fixture(scope="module")
def galera():
    """A private 3-node Galera cluster (galera_cluster.py) for a test module, all nodes synced.
    Skipped where galera-4 or the server is not installed; in CI (CI set) that is a failure instead,
    as the CI run installs both."""
    import galera_cluster

    why = galera_cluster.missing()
    if why and os.environ.get("CI"):
        pytest.fail(f"CI must run the Galera tests: {why}")
    if why:
        pytest.skip(why)
    c = galera_cluster.GaleraCluster()
    try:
        c.start()
        print(f"\nGALERA 3 nodes synced in {c.start_seconds:.1f} s")
        yield c
    finally:
        c.cleanup()

def kill9_front(d):
    d.front.send_signal(signal.SIGKILL)
    d.front.wait()
    d.front = None


def row(db, tid, columns="state, attempts, result, exit_status"):
    rows = db.sql(f"SELECT {columns} FROM tasks WHERE id = {tid}")
    return rows[0] if rows else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for d in list(_live):
            rep.sections.append((f"asynctaskd stderr ({d.env.dir})", tail(d.front_log)))
            if d.front_journal:
                rep.sections.append((f"asynctaskd journal ({d.env.dir})", d.front_journal.text()[-20000:]))
            rep.sections.append((f"asynctask-launcher stderr ({d.env.dir})", tail(d.launcher_log)))


def _require_binaries():
    missing = [p for p in (FRONT_BIN, LAUNCHER_BIN, CLI_BIN) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"not built: {', '.join(missing)} (run make, or set ASYNCTASK_BUILDDIR)")


@pytest.fixture
def env():
    e = Env()
    yield e
    e.cleanup()


@pytest.fixture
def start_daemons(env):
    """Factory: start_daemons(main, tasks) writes the config and starts both daemons; they are
    stopped after the test and must exit 0 on SIGTERM."""
    _require_binaries()
    started = []

    def start(main=None, tasks=None):
        if main is None:
            main, tasks = standard_config(env)
        env.write_config(main, tasks or {})
        d = Daemons(env)
        started.append(d)
        return d.start()

    yield start
    errors = []
    for d in started:
        try:
            d.stop(check=True)
        except AssertionError as e:
            errors.append(str(e))
        finally:
            d.kill_all()
    assert not errors, "\n".join(errors)


def _module_daemons(**main_over):
    _require_binaries()
    e = Env()
    main, tasks = standard_config(e, **main_over)
    e.write_config(main, tasks)
    d = Daemons(e)
    try:
        d.start()
    except BaseException:
        d.kill_all()
        e.cleanup()
        raise
    return e, d


def serve_module(e, main, tasks, daemons_cls=None, prepare=None):
    """For a module-scoped fixture: writes main and tasks, starts the daemons (prepare(daemons) first,
    when given), yields the Env (with env.daemons, env.main and env.tasks set), then stops them,
    checking how they ended, and cleans up."""
    e.write_config(main, tasks)
    e.main, e.tasks = main, tasks
    d = (daemons_cls or Daemons)(e)
    if prepare:
        prepare(d)
    e.daemons = d
    try:
        d.start()
        yield e
        d.stop(check=True)
    finally:
        d.kill_all()
        e.cleanup()


@pytest.fixture(scope="module")
def shared():
    """One daemon pair with the standard task set for a whole test module. Yields the Env; the
    Daemons object is env.daemons."""
    e, d = _module_daemons()
    e.daemons = d
    try:
        yield e
        d.stop(check=True)
    finally:
        d.kill_all()
        e.cleanup()


@pytest.fixture(scope="module")
def serial():
    """Like shared, with max_running 1."""
    e, d = _module_daemons(max_running=1)
    e.daemons = d
    try:
        yield e
        d.stop(check=True)
    finally:
        d.kill_all()
        e.cleanup()
