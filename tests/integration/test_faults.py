# SPDX-License-Identifier: MIT
"""Faults under a steady load of submissions, with the MySQL store: kill -9 of the front, of the
launcher and of both; MariaDB restarted; MariaDB's data directory filling up; and the memory
store's state directory full at a clean stop.

Each fault runs the same way: client threads submit continuously over unix and TCP and record
every acknowledged id and every error answer; the task records each run (one line at its start,
one at its end, with the time, appended with O_APPEND); the fault happens in the middle of the
load; the daemons are brought back the way systemd would; the load stops; the ledger drains; and
then the counts: every acknowledged task ran, no task ran twice unless it was running at the moment
of the fault (at-least-once), and the only error answers are `unavailable` or a refused or closed
connection while the front was down. The counts of each fault are printed (pytest -s shows them)
for docs/reliability.md."""

import collections
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import ALLOW, Client, Daemons, MariaDB, TASK_USER, standard_config, tail, wait_for, wait_for_count

HAVE_MARIADB = shutil.which("mariadbd") is not None or os.path.exists("/usr/sbin/mariadbd")
needs_mariadb = pytest.mark.skipif(not HAVE_MARIADB, reason="MariaDB server not installed (apt-get install mariadb-server)")

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (mounts a small tmpfs)")

# One line at the start and one at the end of each run. bash's $EPOCHREALTIME needs no fork, so the
# times are those of the run itself; the short sleep keeps a few runs in flight at any moment. $PPID
# is the launcher that started the run (the direct executor forks the task itself): a run that
# starts to write a moment after its launcher was killed was still launched before the fault.
RUN_SCRIPT = """#!/bin/bash
echo "S $ASYNCTASK_ID $EPOCHREALTIME $ASYNCTASK_ATTEMPT $PPID" >> "{log}"
sleep 0.05
echo "E $ASYNCTASK_ID $EPOCHREALTIME $ASYNCTASK_ATTEMPT $PPID" >> "{log}"
"""

# A run that ended this long before the fault may still have had its result in flight (held by the
# launcher, or on its way into the database) when the fault struck: its run is not settled, and
# running it again is the at-least-once case too. Counted and reported apart from runs in progress.
UNSETTLED_SEC = 2.0

# Error answers and connection failures a client may see while the front is down or the store is
# unreachable; anything else is a failure.
ACCEPTABLE_ERRORS = {"unavailable", "refused", "closed"}


@pytest.fixture(scope="module")
def db():
    if not HAVE_MARIADB:
        pytest.skip("MariaDB server not installed (apt-get install mariadb-server)")
    m = MariaDB()
    m.start()
    try:
        yield m
    finally:
        m.stop()
        shutil.rmtree(m.dir, ignore_errors=True)


def config_for(env, store, max_running=32):
    """The standard task set plus `rec` (records each run in evidence/runs.log), with the store."""
    main, tasks = standard_config(env, max_running=max_running, max_connections=256)
    path = os.path.join(env.bindir, "rec")
    with open(path, "w") as f:
        f.write(RUN_SCRIPT.format(log=env.ev_path("runs.log")))
    os.chmod(path, 0o755)
    # Attempts left, so that a run lost with the launcher is run again (and shows up as a duplicate).
    tasks["rec"] = {"exec": [path], "max_args": 1, "user": TASK_USER, "allow": ALLOW, "max_attempts": 3,
                    "backoff_sec": [1]}
    if store is not None:
        main["store"] = {"type": "mysql", "option_file": store.cnf, "group": "asynctask"}
    return main, tasks


def start_daemons_with(env, store, **kw):
    main, tasks = config_for(env, store, **kw)
    env.write_config(main, tasks)
    return Daemons(env).start()


# ---------------------------------------------------------------------------------------------------
# The load


class Load:
    """Client threads submitting `rec` continuously (half over unix, half over TCP), each at a
    bounded pace. Records acknowledged ids, error answers by code, and connection failures."""

    def __init__(self, env, clients=4, per_client_rate=60.0):
        self.env = env
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.acked = []  # (id, time)
        self.errors = collections.Counter()
        self.samples = {}  # an example of each kind
        self.error_times = collections.defaultdict(list)
        self.interval = 1.0 / per_client_rate
        self.threads = [threading.Thread(target=self._run, args=("unix" if i % 2 == 0 else "tcp", i), daemon=True)
                        for i in range(clients)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(60)
        assert not any(t.is_alive() for t in self.threads), "a load client hung"

    def _error(self, kind, sample):
        with self.lock:
            self.errors[kind] += 1
            self.samples.setdefault(kind, sample)
            self.error_times[kind].append(time.time())

    def _run(self, kind, n):
        addr = self.env.unix if kind == "unix" else self.env.tcp
        seq = 0
        while not self.stop_event.is_set():
            try:
                c = Client(addr, timeout=5)
            except (ConnectionRefusedError, ConnectionResetError, FileNotFoundError) as e:
                # A reset: the listener went away (kill -9) while this connect was under way.
                self._error("refused", repr(e))
                time.sleep(0.05)
                continue
            except OSError as e:
                self._error("connect:" + type(e).__name__, repr(e))
                time.sleep(0.05)
                continue
            try:
                while not self.stop_event.is_set():
                    t0 = time.monotonic()
                    seq += 1
                    try:
                        # Answers wait at most for the store's read timeout (30 s) plus slack.
                        r = c.call({"op": "submit", "task": "rec", "args": [f"c{n}-{seq}"]}, timeout=45)
                    except (BrokenPipeError, ConnectionResetError) as e:
                        self._error("closed", repr(e))
                        break
                    except AssertionError as e:  # EOF instead of an answer
                        if c.eof:
                            self._error("closed", str(e))
                            break
                        raise
                    except TimeoutError as e:
                        self._error("timeout", repr(e))
                        break
                    if r["ok"]:
                        with self.lock:
                            self.acked.append((r["id"], time.time()))
                    else:
                        self._error(r["code"], r["error"])
                        if r["code"] == "unavailable":
                            time.sleep(0.05)
                    left = self.interval - (time.monotonic() - t0)
                    if left > 0:
                        time.sleep(left)
            except Exception as e:  # noqa: BLE001 - any other failure is recorded and fails the test
                self._error("exception:" + type(e).__name__, repr(e))
                time.sleep(0.05)
            finally:
                c.close()

    def n_acked(self):
        with self.lock:
            return len(self.acked)

    def acked_ids(self):
        with self.lock:
            return [i for i, _ in self.acked]

    def n_errors(self, kind):
        with self.lock:
            return self.errors[kind]

    def wait_acks(self, more, timeout, what):
        base = self.n_acked()
        wait_for(lambda: self.n_acked() >= base + more, timeout, what=what)
        return time.time()


# ---------------------------------------------------------------------------------------------------
# Evidence


def read_runs(env):
    """{id: [[start, end or None, attempt, launcher pid], ...]} from runs.log."""
    runs = collections.defaultdict(list)
    for line in env.ev_lines("runs.log"):
        parts = line.split()
        if len(parts) != 5:
            continue
        kind, tid, when, attempt, ppid = parts[0], int(parts[1]), float(parts[2]), parts[3], int(parts[4])
        if kind == "S":
            runs[tid].append([when, None, attempt, ppid])
        else:
            for r in runs[tid]:
                if r[2] == attempt and r[1] is None:
                    r[1] = when
                    break
    return runs


def wait_drained(env, d, acked, stall=90):
    """Waits until every acknowledged id has ended a run and the front has nothing queued or running.
    A slow machine only makes it slower: it fails when no acknowledged task has ended a run for
    `stall` seconds."""
    acked = set(acked)

    def ended():
        runs = read_runs(env)
        return sum(1 for i in acked if any(r[1] is not None for r in runs.get(i, [])))

    wait_for_count(ended, len(acked), stall=stall, interval=0.2, what="acknowledged tasks that ended a run")

    def idle():
        st = d.stats()
        return st.get("queued", 1) == 0 and st.get("running", 1) == 0

    wait_for(idle, stall, 0.2, what="nothing queued or running")


class Report:
    """The counts of one fault, checked and printed."""

    def __init__(self, name, tried):
        self.name = name
        self.tried = tried
        self.fault = None  # (start, end) wall-clock times of the fault
        self.recovery = {}
        # When the launcher is killed, a run started by any launcher but the ones started after the
        # fault (its parent is then the killed launcher, or init once it is gone) predates the fault.
        self.launcher_killed = False
        self.new_launchers = set()

    def mark_fault(self, start, end=None):
        self.fault = (start, end if end is not None else time.time())

    def evaluate(self, env, load):
        """Counts, then asserts: every acknowledged task ran, duplicates only at the fault, errors
        only of the acceptable kinds."""
        runs = read_runs(env)
        acked = load.acked_ids()
        acked_set = set(acked)
        f0, f1 = self.fault
        self.acked = len(acked)
        self.completed = sum(1 for i in acked_set if any(r[1] is not None for r in runs.get(i, [])))
        self.runs = sum(len(v) for v in runs.values())
        self.unacked_runs = sum(len(v) for i, v in runs.items() if i not in acked_set)
        dups = {i: v for i, v in runs.items() if len(v) > 1}
        self.dup_running, self.dup_unsettled, self.dup_other = [], [], []
        def launched_before(r):
            return r[0] <= f1 or (self.launcher_killed and r[3] not in self.new_launchers)

        for i, v in sorted(dups.items()):
            first = min(v, key=lambda r: r[0])
            if launched_before(first) and (first[1] is None or first[1] >= f0):
                self.dup_running.append(i)
            elif launched_before(first) and first[1] >= f0 - UNSETTLED_SEC:
                self.dup_unsettled.append(i)
                self.unsettled_gap = max(getattr(self, "unsettled_gap", 0.0), f0 - first[1])
            else:
                self.dup_other.append(i)
        self.errors = dict(load.errors)
        self.missing = sorted(acked_set - set(runs))
        # A run cut short (its end line missing) is acceptable only if it was in progress at the fault.
        self.cut = sorted(i for i, v in runs.items() for r in v if r[1] is None and not launched_before(r))
        print(f"\nFAULT {self.row()}")
        assert len(acked_set) == len(acked), "an id was acknowledged twice"
        assert not self.missing, f"acknowledged tasks that never ran: {self.missing[:20]}"
        assert self.completed == len(acked_set), "an acknowledged task never finished a run"
        assert not self.cut, f"runs cut short that were not in flight at the fault: {self.cut[:10]}"
        assert not self.dup_other, (f"tasks run twice that were not in flight at the fault: {self.dup_other[:10]}"
                                    f" runs {[runs[i] for i in self.dup_other[:3]]} fault {self.fault}")
        bad = {k: n for k, n in self.errors.items() if k not in ACCEPTABLE_ERRORS}
        assert not bad, f"unexpected errors: {bad}, e.g. {[load.samples[k] for k in bad]}"

    def row(self):
        errs = ", ".join(f"{k} {n}" for k, n in sorted(self.errors.items())) or "none"
        dup = len(self.dup_running) + len(self.dup_unsettled) + len(self.dup_other)
        rec = ", ".join(f"{k} {v:.1f} s" for k, v in self.recovery.items()) or "-"
        return (f"{self.name} | {self.tried} | acked {self.acked}, completed {self.completed}, runs {self.runs}"
                f" (of unacknowledged submissions: {self.unacked_runs}), duplicates {dup}"
                f" ({len(self.dup_running)} running at the fault, {len(self.dup_unsettled)} ended"
                f" {getattr(self, 'unsettled_gap', 0.0) * 1000:.0f} ms or less before it with the result in flight,"
                f" {len(self.dup_other)} other) | errors: {errs} | {rec}")


def first_run_after(env, t):
    runs = read_runs(env)
    starts = [r[0] for v in runs.values() for r in v if r[0] > t]
    return min(starts) if starts else None


def row_states(store, ids):
    """{id: state} for the given ids in the database."""
    out = {}
    ids = sorted(ids)
    for k in range(0, len(ids), 1000):
        chunk = ",".join(str(i) for i in ids[k:k + 1000])
        for tid, state, result in store.sql(f"SELECT id, state, result FROM tasks WHERE id IN ({chunk})"):
            out[int(tid)] = (state, result)
    return out


def check_database(store, report, load):
    """Every acknowledged task has a final row: succeeded, or (if it was in flight at the fault and
    ran out of attempts) failed as lost."""
    states = row_states(store, load.acked_ids())
    not_final = {i: s for i, s in states.items() if s[0] not in ("succeeded", "failed")}
    assert len(states) == report.acked, f"{report.acked - len(states)} acknowledged tasks have no row"
    assert not not_final, f"rows not final after the drain: {list(not_final.items())[:10]}"
    failed = {i: s for i, s in states.items() if s[0] == "failed"}
    assert all(s[1] == "lost" for s in failed.values()), f"failed rows: {list(failed.items())[:10]}"
    report.failed_lost = len(failed)


# ---------------------------------------------------------------------------------------------------
# Kill -9 of the daemons


@pytest.fixture
def faulty(env, db):
    """Fresh database, both daemons started with the MySQL store; killed at the end if still alive."""
    db.reset()
    started = []

    def start():
        d = start_daemons_with(env, db)
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill_all()


def kill9(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()


RESTART_SEC = 1.0  # RestartSec= of both units


def run_kill_fault(env, db, d, name, tried, victims):
    rep = Report(name, tried)
    with Load(env) as load:
        load.wait_acks(200, 30, "submissions before the fault")
        t0 = time.time()
        if "front" in victims:
            kill9(d.front)
        if "launcher" in victims:
            rep.launcher_killed = True
            kill9(d.launcher)
        rep.mark_fault(t0)
        time.sleep(RESTART_SEC)
        if "launcher" in victims:
            d.launcher = None
            d.start_launcher()
            rep.new_launchers.add(d.launcher.pid)
        if "front" in victims:
            d.front = None
            d.start_front(wait=False)
        back = load.wait_acks(1, 30, "acknowledgements after the restart")
        rep.recovery["first ack after the kill"] = back - t0
        wait_for(lambda: first_run_after(env, t0 + RESTART_SEC), 30, what="runs after the restart")
        rep.recovery["first run after the kill"] = first_run_after(env, t0 + RESTART_SEC) - t0
        load.wait_acks(200, 30, "submissions after the recovery")
    wait_drained(env, d, load.acked_ids())
    rep.evaluate(env, load)
    wait_database(db, rep, load, 30)
    # Refused and closed connections only while the front was down: from the kill to its first answer
    # (with slack: a client thread may note the time of its failure a moment late).
    late = [t for k in ("refused", "closed") for t in load.error_times[k] if not t0 <= t <= back + 2]
    assert not late, f"connections refused or closed outside the front's downtime, at {late[:5]}"
    if "front" not in victims:
        # The front refuses submissions while it has no launcher ("unavailable"), and nothing else.
        assert set(load.errors) <= {"unavailable"}, f"the front stayed up: {dict(load.errors)}"
    d.stop()
    return rep


def test_kill_9_of_the_front_under_load(env, db, faulty):
    d = faulty()
    rep = run_kill_fault(env, db, d, "kill -9 of asynctaskd",
                         "4 clients (unix + TCP) submitting; SIGKILL the front, restart it 1 s later", {"front"})
    assert not rep.dup_running and not rep.dup_unsettled, "the launcher kept every run: none may run twice"


def test_kill_9_of_the_launcher_under_load(env, db, faulty):
    run_kill_fault(env, db, faulty(), "kill -9 of asynctask-launcher",
                   "4 clients submitting; SIGKILL the launcher, restart it 1 s later", {"launcher"})


def test_kill_9_of_both_daemons_at_once_under_load(env, db, faulty):
    run_kill_fault(env, db, faulty(), "kill -9 of both daemons",
                   "4 clients submitting; SIGKILL front and launcher together, restart both 1 s later",
                   {"front", "launcher"})


# ---------------------------------------------------------------------------------------------------
# MariaDB restarted


def test_mariadb_restarted_under_load(env, db, faulty):
    d = faulty()
    rep = Report("MariaDB restarted", "4 clients submitting; stop MariaDB (clean shutdown), 3 s, start it")
    with Load(env) as load:
        load.wait_acks(200, 30, "submissions before the fault")
        t0 = time.time()
        db.stop()
        wait_for(lambda: load.n_errors("unavailable") > 0, 30, what="unavailable while MariaDB is down")
        time.sleep(3)
        t1 = time.time()
        db.start()
        rep.mark_fault(t0, time.time())
        back = load.wait_acks(1, 60, "acknowledgements once MariaDB is back")
        rep.recovery["first ack after MariaDB started"] = back - t1
        load.wait_acks(200, 30, "submissions after the recovery")
    assert d.front.poll() is None and d.launcher.poll() is None, "both daemons kept running"
    wait_drained(env, d, load.acked_ids())
    rep.evaluate(env, load)
    assert not rep.dup_running and not rep.dup_unsettled and not rep.dup_other
    assert load.errors.get("unavailable"), "submissions while MariaDB was down were refused"
    assert set(load.errors) <= {"unavailable"}, dict(load.errors)
    wait_database(db, rep, load, 30)
    d.stop()


def test_mariadb_read_only_under_load(env, db, faulty):
    """A server that refuses writes for a while (read_only, as in a failover or maintenance) but keeps
    the connection: the same path as a full disk without MariaDB aborting. New tasks get
    `unavailable`; the results of runs are held and written once it takes writes again, none dropped."""
    d = faulty()
    rep = Report("MariaDB read-only", "4 clients submitting; SET GLOBAL read_only = 1 for 3 s, then 0")
    try:
        with Load(env) as load:
            load.wait_acks(200, 30, "submissions before the fault")
            t0 = time.time()
            db.sql("SET GLOBAL read_only = 1")
            wait_for(lambda: load.n_errors("unavailable") > 0, 30, what="unavailable while read-only")
            r, took = timed_call(env, {"op": "status", "id": load.acked_ids()[0]})
            assert r["ok"] is True, r
            time.sleep(3)
            t1 = time.time()
            db.sql("SET GLOBAL read_only = 0")
            rep.mark_fault(t0, time.time())
            back = load.wait_acks(1, 30, "acknowledgements once writes are taken again")
            rep.recovery["first ack after read_only = 0"] = back - t1
            load.wait_acks(200, 30, "submissions after the recovery")
    finally:
        db.sql("SET GLOBAL read_only = 0")
    wait_drained(env, d, load.acked_ids())
    rep.evaluate(env, load)
    assert not rep.dup_running and not rep.dup_unsettled and not rep.dup_other
    assert set(load.errors) == {"unavailable"}, dict(load.errors)
    wait_database(db, rep, load, 30)
    log = tail(d.front_log, 100000)
    assert "could not be written and is dropped" not in log
    d.stop()


def test_mariadb_stalled_under_load(env, db, faulty):
    """A server that stops answering without closing the connection -- what a MariaDB waiting for
    disk space (Aria, binary logs) looks like to a client -- stopped here with SIGSTOP. Submissions
    in flight wait for the connection's read timeout (30 s), then get `unavailable`, as do later ones
    until the server answers again; every other op is served meanwhile; nothing acknowledged is lost."""
    d = faulty()
    rep = Report("MariaDB stalled", "4 clients submitting; SIGSTOP mariadbd until submissions are refused, then SIGCONT")
    with open(os.path.join(db.dir, "mysqld.pid")) as f:
        pid = int(f.read())
    try:
        with Load(env) as load:
            load.wait_acks(200, 30, "submissions before the fault")
            t0 = time.time()
            os.kill(pid, signal.SIGSTOP)
            slowest = 0.0
            while load.n_errors("unavailable") == 0:
                assert time.time() - t0 < 60, "no answer to submissions 60 s into the stall"
                r, took = timed_call(env, {"op": "status", "id": load.acked_ids()[0]})
                assert r["ok"] is True, r
                slowest = max(slowest, took)
                time.sleep(0.5)
            rep.recovery["first unavailable after the stall began"] = time.time() - t0
            time.sleep(1)
            t1 = time.time()
            os.kill(pid, signal.SIGCONT)
            rep.mark_fault(t0, time.time())
            during = [i for i, t in load.acked if t0 + 1 < t < t1]
            back = load.wait_acks(1, 30, "acknowledgements once MariaDB answers again")
            rep.recovery["first ack after SIGCONT"] = back - t1
            load.wait_acks(200, 30, "submissions after the recovery")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert slowest < 5, f"a status took {slowest:.1f} s while the database stalled"
    print(f"STALL acked during the stall: {during}")
    assert not during, "acknowledged while the database could not commit"
    wait_drained(env, d, load.acked_ids())
    rep.evaluate(env, load)
    assert not rep.dup_running and not rep.dup_unsettled and not rep.dup_other
    assert set(load.errors) == {"unavailable"}, dict(load.errors)
    wait_database(db, rep, load, 30)
    d.stop()


def wait_database(store, rep, load, timeout):
    """Waits until check_database passes (results are written behind the runs); else its failure."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check_database(store, rep, load)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------------------
# The disk full
#
# With the MySQL store, the state that matters is MariaDB's data directory: the front writes no file
# of its own. A full disk there makes InnoDB fail the statement ("The table 'tasks' is full", error
# 1114) -- or, when a rollback itself needs space, abort the server. Either way asynctask must answer
# `unavailable` rather than acknowledge what was not committed, keep serving every other op, keep the
# results of runs until they are written, and recover once space is freed (and MariaDB restarted by
# its service manager if it aborted).


class SmallDiskMariaDB(MariaDB):
    """A private MariaDB whose data directory is a tmpfs of its own, to be filled up."""

    def __init__(self, size_mb):
        super().__init__()
        self.data = os.path.join(self.dir, "data")
        os.mkdir(self.data, 0o700)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", self.data],
                       check=True, timeout=30)
        self.filler = os.path.join(self.data, "filler")

    def running(self):
        try:
            with open(os.path.join(self.dir, "mysqld.pid")) as f:
                pid = int(f.read())
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, ValueError):
            return False

    def fill(self, leave_bytes):
        """Takes all free space but leave_bytes with one file."""
        st = os.statvfs(self.data)
        size = st.f_bavail * st.f_frsize - leave_bytes
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, max(size, 4096))
        finally:
            os.close(fd)

    def free_bytes(self):
        st = os.statvfs(self.data)
        return st.f_bavail * st.f_frsize

    def unfill(self):
        if os.path.exists(self.filler):
            os.unlink(self.filler)

    def destroy(self):
        try:
            self.unfill()
            self.stop()
        finally:
            subprocess.run(["umount", "-l", self.data], timeout=30)
            shutil.rmtree(self.dir, ignore_errors=True)


def timed_call(env, req, timeout=10):
    t0 = time.monotonic()
    with Client(env.unix, timeout=timeout) as c:
        r = c.call(req, timeout=timeout)
    return r, time.monotonic() - t0


@needs_root
@needs_mariadb
def test_mariadb_data_directory_full_under_load(env):
    # MariaDB's files take about 95 MiB at start (a 64 MiB redo log, 12 MiB each of system and
    # temporary tablespace); the rest of the 200 MiB is filled to a few pages in the test.
    store = SmallDiskMariaDB(200)
    try:
        store.start()
        run_disk_full(env, store)
    finally:
        store.destroy()


def run_disk_full(env, store):
    d = start_daemons_with(env, store)
    rep = Report("MariaDB data directory full",
                 "4 clients submitting; the datadir (a 200 MiB tmpfs) filled to the last 64 KiB, held full, then freed")
    notes = {}
    try:
        with Load(env) as load:
            load.wait_acks(200, 30, "submissions before the fault")
            t0 = time.time()
            store.fill(64 * 1024)
            wait_for(lambda: load.n_errors("unavailable") > 0, 90, 0.1, what="unavailable once the disk is full")
            t_refused = time.time()
            notes["first unavailable after the fill"] = t_refused - t0
            # Other ops are served meanwhile, and promptly.
            slowest = 0.0
            acked_at_full = load.n_acked()
            for _ in range(10):
                r, took = timed_call(env, {"op": "ping"})
                assert r["ok"] is True
                tid = load.acked_ids()[0]
                r2, took2 = timed_call(env, {"op": "status", "id": tid})
                assert r2["ok"] is True and r2["state"] == "succeeded", r2
                slowest = max(slowest, took, took2)
                time.sleep(0.3)
            notes["slowest ping/status while full"] = slowest
            notes["acked while full"] = load.n_acked() - acked_at_full
            notes["mariadbd aborted"] = not store.running()
            rep.tried += ("; MariaDB aborted (InnoDB: out of disk space in a rollback) and was started again"
                          if notes["mariadbd aborted"] else "; MariaDB failed the writes (table full, 1114)")
            t1 = time.time()
            store.unfill()
            if not store.running():
                # InnoDB aborts when a rollback finds no space; its service manager would restart it.
                time.sleep(RESTART_SEC)
                store.start()
            rep.mark_fault(t0, time.time())
            back = load.wait_acks(1, 90, "acknowledgements once space is freed")
            rep.recovery["first ack after space freed"] = back - t1
            load.wait_acks(200, 60, "submissions after the recovery")
        assert d.front.poll() is None and d.launcher.poll() is None, "both daemons kept running"
        wait_drained(env, d, load.acked_ids())
        rep.evaluate(env, load)
        print(f"DISKFULL {notes}")
        assert load.errors.get("unavailable"), "submissions were refused while the disk was full"
        assert set(load.errors) <= {"unavailable"}, dict(load.errors)
        assert not rep.dup_running and not rep.dup_unsettled and not rep.dup_other
        wait_database(store, rep, load, 30)
        # The database agrees with what ran: a clean restart of the front runs nothing again.
        runs_before = sum(len(v) for v in read_runs(env).values())
        d.stop_front()
        d.front = None
        d.start_front()
        time.sleep(2)
        assert sum(len(v) for v in read_runs(env).values()) == runs_before, "a task ran again after a restart"
        d.stop()
    finally:
        d.kill_all()


# ---------------------------------------------------------------------------------------------------
# The memory store's state directory full
#
# The memory store is not durable: the front writes its ledger to its state directory only at a clean
# stop (ledger.snapshot, through a temporary file renamed into place) and reads it back, once, at the
# next start. A full disk at that stop cannot keep the queued tasks; what it must do is say so clearly,
# leave no partial file that a start would take for a snapshot, leave any snapshot already there
# byte for byte, and work again once there is room.


def submit_delayed(env, n, tag):
    payload = b"".join(b'{"op":"submit","task":"rec","args":["%s-%d"],"delay":3600}\n' % (tag.encode(), i)
                       for i in range(n))
    with env.client(timeout=60) as c:
        c.send(payload)
        answers = [c.recv(timeout=60) for _ in range(n)]
    assert all(a["ok"] for a in answers), [a for a in answers if not a["ok"]][:3]
    return [a["id"] for a in answers]


@needs_root
def test_memory_store_snapshot_on_a_full_state_directory(env):
    state = os.path.join(env.dir, "state")
    os.mkdir(state)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", state], check=True, timeout=30)
    snapshot = os.path.join(state, "ledger.snapshot")
    filler = os.path.join(state, "filler")
    d = None
    try:
        main, tasks = config_for(env, None)
        env.write_config(main, tasks)
        d = Daemons(env)
        d.daemon_env["STATE_DIRECTORY"] = state
        d.start()
        # With room: a clean stop saves the ledger. That file is the "previous snapshot".
        first = submit_delayed(env, 1000, "first")
        assert d.stop_front() == 0
        with open(snapshot, "rb") as f:
            previous = f.read()
        assert previous.count(b"\n") == 1 + len(first)
        d.front = None
        d.start_front()
        assert not os.path.exists(snapshot), "the snapshot is loaded once"
        second = submit_delayed(env, 1000, "second")
        # A snapshot in place (restored by an admin, say) while the disk fills up: a save that cannot
        # finish must leave it alone.
        with open(snapshot, "wb") as f:
            f.write(previous)
        st = os.statvfs(state)
        leave = 64 * 1024  # less than the ledger needs (about 2 x len(previous)): a partial write
        with open(filler, "wb") as f:
            os.posix_fallocate(f.fileno(), 0, st.f_bavail * st.f_frsize - leave)
        rc = d.stop_front()
        assert rc == 1, f"a stop that lost the queued tasks exited {rc}"
        log = tail(d.front_log, 200)
        said = [line for line in log.splitlines() if "Cannot save the ledger" in line]
        assert said and "No space left on device" in said[-1] and "queued tasks are lost" in said[-1], log[-3000:]
        assert not os.path.exists(snapshot + ".tmp"), "a partial snapshot was left behind"
        with open(snapshot, "rb") as f:
            assert f.read() == previous, "the snapshot in place was changed by a save that failed"
        print(f"\nFAULT memory store state directory full | a 2 MiB tmpfs state directory, filled to its last"
              f" {leave // 1024} KiB, at a clean stop with {len(first) + len(second)} queued tasks (the save needs"
              f" about {2 * len(previous) // 1024} KiB) | exit status {rc}; logged: {said[-1].split(': ', 1)[-1]};"
              f" no partial file; the snapshot in place ({len(previous) // 1024} KiB) unchanged | -")
        # The disk still full: a start reads the snapshot (and frees its space by removing it).
        d.front = None
        d.start_front()
        with env.client() as c:
            assert c.status(first[0])["state"] == "queued"
            assert c.status(second[0])["code"] == "not_found", "the tasks of the failed save are gone"
        # Room again: a clean stop saves everything, a start brings it back.
        os.unlink(filler)
        assert d.stop_front() == 0
        d.front = None
        d.start_front()
        with env.client() as c:
            assert c.status(first[-1])["state"] == "queued"
        d.stop()
    finally:
        if d is not None:
            d.kill_all()
        subprocess.run(["umount", "-l", state], timeout=30)
