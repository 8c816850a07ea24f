# SPDX-License-Identifier: MIT
"""A private 3-node MariaDB Galera cluster on loopback, for the tests that share one database between
several fronts: three mariadbd, each with its own data directory, unix socket and TCP port under one
temporary directory, replicating through galera-4 (group communication, IST and rsync SST on
loopback ports of their own). The first node bootstraps the cluster (--wsrep-new-cluster), the others
join it by a state transfer. A node can be stopped, killed with SIGKILL and started again: it rejoins
through the nodes still up.

Each node's option file (node.cnf) has a [client] group for root over its socket and an [asynctask]
group for the daemon (user asynctask, database asynctask) over TCP to that node alone."""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PROVIDER = "/usr/lib/galera/libgalera_smm.so"
MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
CLUSTER_NAME = "asynctask-test"
PASSWORD = "test-password"

# Generous: two CPUs shared with other builds and tests; a joiner's state transfer forks rsync and
# waits for the donor to reach a consistent point.
START_TIMEOUT = 180
STOP_TIMEOUT = 120


def missing():
    """Why this machine cannot run the cluster (what to install), or None."""
    if not os.path.exists(MARIADBD):
        return "MariaDB server not installed (apt-get install mariadb-server)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("mysql")
        except KeyError:
            return "no user mysql to run the servers as (mariadb-server creates it)"
    if not os.path.exists(PROVIDER):
        return f"Galera provider {PROVIDER} not installed (apt-get install galera-4)"
    for tool in ("rsync", "wsrep_sst_rsync"):
        if shutil.which(tool) is None:
            return f"{tool} not found: the rsync state transfer needs it (apt-get install rsync mariadb-server)"
    return None


def _free_ports(n):
    """n distinct free loopback TCP ports (held open together, so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class GaleraNode:
    def __init__(self, cluster, index, ports):
        self.cluster = cluster
        self.index = index
        self.name = f"node{index + 1}"
        self.dir = os.path.join(cluster.dir, self.name)
        self.data = os.path.join(self.dir, "data")
        self.tmp = os.path.join(self.dir, "tmp")
        self.sock = os.path.join(self.dir, "mysqld.sock")
        self.pidfile = os.path.join(self.dir, "mysqld.pid")
        self.error_log = os.path.join(self.dir, "error.log")
        self.cnf = os.path.join(self.dir, "node.cnf")
        self.port, self.gcomm_port, self.ist_port, self.sst_port = ports
        self.proc = None
        os.makedirs(self.tmp)
        os.chmod(self.dir, 0o755)
        # Everything the server writes (socket, pid file, logs, data) is its user's.
        for d in (self.dir, self.tmp):
            os.chown(d, cluster.uid, cluster.gid)

    def argv(self, bootstrap):
        c = self.cluster
        members = ",".join(f"127.0.0.1:{n.gcomm_port}" for n in c.nodes)
        provider_options = ";".join([
            f"gmcast.listen_addr=tcp://127.0.0.1:{self.gcomm_port}",
            f"ist.recv_addr=127.0.0.1:{self.ist_port}",
            "gcache.size=64M",
            # A loaded machine must not take a slow node for a dead one (the defaults are 5 s).
            "evs.suspect_timeout=PT15S",
            "evs.inactive_timeout=PT30S",
            "evs.install_timeout=PT30S",
        ])
        argv = [
            MARIADBD, "--no-defaults", f"--datadir={self.data}", f"--socket={self.sock}",
            f"--pid-file={self.pidfile}", f"--tmpdir={self.tmp}", f"--log-error={self.error_log}",
            f"--port={self.port}", "--bind-address=127.0.0.1", f"--user={c.user}",
            "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=48M", "--max-connections=200",
            # What Galera requires: row-based replication, InnoDB, interleaved auto-increment locks.
            "--binlog-format=ROW", "--default-storage-engine=InnoDB", "--innodb-autoinc-lock-mode=2",
            "--wsrep-on=ON", f"--wsrep-provider={PROVIDER}", f"--wsrep-cluster-name={CLUSTER_NAME}",
            f"--wsrep-cluster-address=gcomm://{members}", f"--wsrep-node-name={self.name}",
            "--wsrep-node-address=127.0.0.1", f"--wsrep-node-incoming-address=127.0.0.1:{self.port}",
            f"--wsrep-provider-options={provider_options}", "--wsrep-sst-method=rsync",
            f"--wsrep-sst-receive-address=127.0.0.1:{self.sst_port}",
        ]
        if bootstrap:
            argv.append("--wsrep-new-cluster")
        return argv

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, bootstrap=False):
        assert not self.running(), f"{self.name} already runs"
        if not os.path.isdir(os.path.join(self.data, "mysql")):
            # A joiner gets its data by state transfer; only the first node needs the system tables,
            # but an installed datadir lets every node start the same way.
            p = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.data}",
                                "--auth-root-authentication-method=socket", f"--tmpdir={self.tmp}",
                                "--skip-test-db", f"--user={self.cluster.user}"],
                               capture_output=True, text=True, timeout=START_TIMEOUT)
            assert p.returncode == 0, f"mariadb-install-db for {self.name} failed:\n{p.stdout}\n{p.stderr}"
        with open(os.path.join(self.dir, "stdout.log"), "ab") as out:
            self.proc = subprocess.Popen(self.argv(bootstrap), stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.write_option_file()

    def write_option_file(self):
        with open(self.cnf, "w") as f:
            f.write(f"[client]\nsocket={self.sock}\nuser=root\n\n"
                    f"[asynctask]\nhost=127.0.0.1\nport={self.port}\nuser=asynctask\n"
                    f"password={PASSWORD}\ndatabase=asynctask\n")
        os.chmod(self.cnf, 0o644)

    def status(self, variable):
        """A wsrep status variable, or None while the node does not answer."""
        p = subprocess.run(["mariadb", "--no-defaults", "-S", self.sock, "-u", "root", "-N", "-B", "-e",
                            f"SHOW GLOBAL STATUS LIKE '{variable}'"],
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0 or not p.stdout.strip():
            return None
        return p.stdout.strip().split("\t")[1]

    def synced(self, size):
        """Whether this node is ready for clients, synced, in a primary component of size nodes."""
        return (self.status("wsrep_ready") == "ON" and self.status("wsrep_local_state_comment") == "Synced"
                and self.status("wsrep_cluster_size") == str(size)
                and self.status("wsrep_cluster_status") == "Primary")

    def wait_synced(self, size, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not self.synced(size):
            if not self.running():
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not synced in a cluster of {size} after {timeout} s "
                                     f"(ready {self.status('wsrep_ready')}, size "
                                     f"{self.status('wsrep_cluster_size')}):\n{self.log_tail()}")
            time.sleep(0.2)

    def kill9(self):
        """SIGKILL: the node vanishes without leaving the cluster, as at a power loss."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        """A clean shutdown: the node leaves the cluster."""
        if not self.running():
            return
        self.proc.terminate()
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill9()

    def sql(self, statement, database="asynctask"):
        """Runs SQL as root on this node; the rows as lists of strings."""
        p = subprocess.run(["mariadb", f"--defaults-file={self.cnf}", "-N", "-B", database, "-e", statement],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, f"SQL on {self.name} failed: {statement}\n{p.stderr}"
        return [line.split("\t") for line in p.stdout.splitlines()]

    def log_tail(self, lines=40):
        try:
            with open(self.error_log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError as e:
            return f"<{e}>"


class GaleraCluster:
    def __init__(self, size=3):
        self.dir = tempfile.mkdtemp(prefix="asynctask-galera-")
        os.chmod(self.dir, 0o755)
        # As root the servers run as mysql, as a packaged server does: the joiner's rsync daemon,
        # started as root, would switch to nobody and could not write the data directory.
        self.user = "mysql" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        pw = pwd.getpwnam(self.user)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        ports = _free_ports(4 * size)
        self.nodes = [GaleraNode(self, i, ports[4 * i:4 * i + 4]) for i in range(size)]
        self.start_seconds = None

    def start(self):
        """Bootstraps the first node, creates the asynctask database and user, and joins the others
        one at a time (each join is a full state transfer from a donor)."""
        t0 = time.monotonic()
        first = self.nodes[0]
        first.start(bootstrap=True)
        first.wait_synced(1)
        first.sql(f"""CREATE DATABASE IF NOT EXISTS asynctask;
                      CREATE USER IF NOT EXISTS 'asynctask'@'localhost' IDENTIFIED BY '{PASSWORD}';
                      CREATE USER IF NOT EXISTS 'asynctask'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';
                      GRANT ALL PRIVILEGES ON asynctask.* TO 'asynctask'@'localhost';
                      GRANT ALL PRIVILEGES ON asynctask.* TO 'asynctask'@'127.0.0.1';""", database="mysql")
        for i, node in enumerate(self.nodes[1:], start=2):
            node.start()
            node.wait_synced(i)
        self.wait_size(len(self.nodes))
        self.start_seconds = time.monotonic() - t0

    def wait_size(self, size, timeout=START_TIMEOUT):
        """Waits until every running node is synced in a primary component of size nodes."""
        for node in self.nodes:
            if node.running():
                node.wait_synced(size, timeout)

    def up(self):
        return [n for n in self.nodes if n.running()]

    def rejoin(self, node, timeout=START_TIMEOUT):
        """Starts a stopped or killed node again (never bootstrapping: the others hold the cluster)
        and waits until every node is synced in the full cluster. Returns the seconds it took."""
        t0 = time.monotonic()
        node.start()
        self.wait_size(len(self.up()), timeout)
        return time.monotonic() - t0

    def stop(self):
        # The last one stopped is the one whose state is newest; no matter here, the data is removed.
        for node in reversed(self.nodes):
            node.stop()

    def reset(self):
        """An empty asynctask database (the DDL replicates to every node)."""
        self.up()[0].sql("DROP DATABASE IF EXISTS asynctask; CREATE DATABASE asynctask", database="mysql")

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
