"""The local TimescaleDB: PostgreSQL 15 with the timescaledb extension, on 127.0.0.1 only.

PostgreSQL refuses to run as root, so when we are root the cluster runs as the
`postgres` user, which must own (and be able to reach) its directories. If the
state directory sits where `postgres` cannot traverse (e.g. under /root or a 0700
temporary folder), the cluster lives under /var/lib/citywatch instead, and a marker in
the state directory says where, so `remove` finds it wherever it had to live.

`stop` is PostgreSQL's fast shutdown (SIGINT: open sessions are ended), never the smart
one that waits for every client to leave. A `postmaster.pid` left by an unclean stop is
recovered at start when no PostgreSQL runs on that data directory any more.
Durability is traded for speed (fsync off): this is the laptop/CI database;
production uses a real server.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from citywatch.infra.process import Daemon, InfraError, port_in_use, wait_until

PG_MAJOR = 15
PG_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
EXTENSION_CONTROL = Path(f"/usr/share/postgresql/{PG_MAJOR}/extension/timescaledb.control")
DATABASE = "citywatch"
RELOCATED = Path("/var/lib/citywatch")
SUPERUSER = "postgres"


@dataclass(frozen=True)
class LocalTimescale:
    state_dir: Path
    host: str
    port: int

    @property
    def daemon(self) -> Daemon:
        return Daemon("timescaledb", self.state_dir / "timescaledb.pid",
                      self.state_dir / "logs" / "timescaledb.log")

    @property
    def dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{DATABASE}"

    @property
    def run_as(self) -> str | None:
        return SUPERUSER if os.geteuid() == 0 else None

    @property
    def marker(self) -> Path:
        return self.state_dir / "timescaledb.cluster"

    def cluster_dir(self) -> Path:
        local = self.state_dir.resolve() / "pg"
        if self.run_as is None or _user_can_reach(self.run_as, self.state_dir.resolve()):
            return local
        digest = hashlib.sha1(str(local).encode()).hexdigest()[:12]  # noqa: S324 - a name, not security
        return RELOCATED / digest / "pg"

    def _pg(self, tool: str) -> str:
        path = PG_BIN / tool
        if not path.exists():
            raise InfraError(f"{path} not found: PostgreSQL {PG_MAJOR} is not installed (run the set-up)")
        return str(path)

    def healthy(self) -> bool:
        if self.daemon.pid() is None:
            return False
        result = subprocess.run(
            [self._pg("pg_isready"), "-q", "-h", self.host, "-p", str(self.port), "-d", "postgres"],
            check=False, capture_output=True,
        )
        return result.returncode == 0

    def start(self, timeout: float = 60.0) -> None:
        if self.healthy():
            return
        if not EXTENSION_CONTROL.exists():
            raise InfraError("the timescaledb extension is not installed; run scripts/setup.sh")
        if port_in_use(self.host, self.port):
            raise InfraError(
                f"port {self.host}:{self.port} for TimescaleDB is already in use by another program;"
                " stop it or set infra.db_port")
        root = self.cluster_dir()
        data, sockets = root / "data", root / "sockets"
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.write_text(f"{root}\n")
        self._prepare(root, data, sockets)
        for lock in (data / "postmaster.pid", *sockets.glob(".s.PGSQL.*.lock")):
            _clear_stale_lock(lock)
        self.daemon.start([
            self._pg("postgres"), "-D", str(data), "-p", str(self.port),
            "-c", f"listen_addresses={self.host}",
            "-c", f"unix_socket_directories={sockets}",
            "-c", "shared_preload_libraries=timescaledb",
            "-c", "timescaledb.telemetry_level=off",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ], user=self.run_as, cwd=root)
        wait_until(self.healthy, timeout, "timescaledb", self.daemon)
        self._create_database()

    def _prepare(self, root: Path, data: Path, sockets: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        sockets.mkdir(exist_ok=True)
        self.daemon.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.daemon.log_file.touch()
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            for path in (root, sockets, self.daemon.log_file):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            if data.exists():
                shutil.chown(data, self.run_as, self.run_as)
        if not (data / "PG_VERSION").exists():
            command = [self._pg("initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
                       "-E", "UTF8", "--locale=C"]
            if self.run_as is not None:
                command = ["runuser", "-u", self.run_as, "--", *command]
            result = subprocess.run(command, check=False, capture_output=True, text=True, cwd=root)
            if result.returncode != 0:
                raise InfraError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def _psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            ["psql", "-h", self.host, "-p", str(self.port), "-U", SUPERUSER, "-d", database,
             "-v", "ON_ERROR_STOP=1", "-tAc", sql],
            check=False, capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise InfraError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def _create_database(self) -> None:
        if self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'") != "1":
            self._psql(f"CREATE DATABASE {DATABASE}")
        self._psql("CREATE EXTENSION IF NOT EXISTS timescaledb", database=DATABASE)

    def stop(self) -> bool:
        """Fast shutdown: open client sessions are ended, not waited for."""
        return self.daemon.stop(timeout=15, first_signal=signal.SIGINT)

    def remove(self) -> bool:
        """Delete the cluster (stopped first), wherever it lives; True if there was one."""
        self.stop()
        root = Path(self.marker.read_text().strip()) if self.marker.exists() else self.cluster_dir()
        existed = root.exists()
        shutil.rmtree(root, ignore_errors=True)
        if root.parent.parent == RELOCATED:  # /var/lib/citywatch/<hash>/pg: the <hash> folder too
            with contextlib.suppress(OSError):
                root.parent.rmdir()
        self.marker.unlink(missing_ok=True)
        return existed


def _user_can_reach(user: str, path: Path) -> bool:
    result = subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(path)],
                            check=False, capture_output=True)
    return result.returncode == 0


def _clear_stale_lock(lock: Path) -> None:
    """Remove a lock file (`postmaster.pid`, a socket's `.lock`) whose PostgreSQL is gone (a
    kill -9, a reboot). PostgreSQL refuses to start while the pid in it belongs to any
    running process, and after a reboot that number is often some other program's."""
    try:
        pid = int(lock.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        command = []
    if command and Path(command[0].decode(errors="replace")).name in ("postgres", "postmaster"):
        return  # a live server on this data directory: not ours to touch
    lock.unlink(missing_ok=True)
