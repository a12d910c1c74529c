"""A private PostgreSQL cluster in a temporary directory, for tests and benchmarks.

``PgCluster`` runs Debian's ``initdb`` and ``postgres`` (the newest
``/usr/lib/postgresql/*/bin``, or ``HERALD_PG_BIN``) on a free 127.0.0.1 port
with its unix socket in the same temporary directory, and removes everything
when stopped. No packaged service, no shared state, nothing on another address.

``initdb`` refuses to run as root (CI runs as root): under uid 0 both programs
run as the Debian ``postgres`` user (``subprocess`` switches user before exec,
so the process we hold is the postmaster itself), and the directory is handed
to that user. The postmaster gets SIGQUIT if the process that started it dies,
so a killed test run or benchmark leaves no server behind.

Authentication is ``trust`` for the one superuser ``herald``: the cluster listens
on loopback only and lives as long as one test session.

    with PgCluster.start() as pg:          # PgMissing when PostgreSQL is not installed
        pg.dsn("postgres")                  # postgresql://herald@127.0.0.1:PORT/postgres
        pg.create_database("t1")            # an empty database (or template=...)

Both ``tests/`` (``pg_cluster`` / ``pg_dsn`` fixtures, tests/conftest.py) and
``bench/`` (with ``tests`` on ``sys.path``, as bench/crash.py has it) use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = ["PgCluster", "PgMissing", "PgStartError", "find_bin_dir"]

#: The packaged binaries: /usr/lib/postgresql/<major>/bin (Debian, Ubuntu).
DEBIAN_GLOB = "/usr/lib/postgresql/*/bin"
#: The unprivileged account Debian's postgresql-common creates; used under uid 0.
OS_USER = "postgres"
#: The superuser of a private cluster (trust authentication on loopback only).
DB_USER = "herald"

#: Settings for a throwaway cluster. fsync stays on (so a benchmark measures
#: real commits); everything else is about not touching anything outside the
#: temporary directory.
DEFAULT_SETTINGS: Mapping[str, str] = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "100",
    "shared_buffers": "128MB",
    "logging_collector": "off",
    "log_min_messages": "warning",
    # Files in the data directory rather than /dev/shm, which containers keep
    # small (64 MB under Docker): a parallel query there fails to resize it.
    "dynamic_shared_memory_type": "mmap",
}

START_TIMEOUT = 30.0  # seconds until the server must accept connections
STOP_TIMEOUT = 30.0  # seconds a fast shutdown may take before SIGQUIT
_PORT_TRIES = 5  # another process may take the free port between probe and bind


class PgMissing(RuntimeError):
    """PostgreSQL's server binaries are not installed (run scripts/peers)."""


class PgStartError(RuntimeError):
    """The private cluster did not come up; the message carries its log's tail."""


def find_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``postgres``, newest major version first.

    ``HERALD_PG_BIN`` when set (and only it); else Debian's layout, then ``PATH``.
    Raises :class:`PgMissing` when none has both programs.
    """
    override = os.environ.get("HERALD_PG_BIN")
    if override:
        candidates = [Path(override)]
    else:

        def major(path: Path) -> tuple[int, ...]:
            return tuple(int(p) for p in re.findall(r"\d+", path.parent.name))

        candidates = sorted((Path(p) for p in glob.glob(DEBIAN_GLOB)), key=major, reverse=True)
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(Path(on_path).parent)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "postgres").is_file():
            return directory
    raise PgMissing(
        "PostgreSQL server binaries (initdb, postgres) are not installed: "
        "run scripts/peers (Debian package postgresql) or set HERALD_PG_BIN"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class _RunAs:
    """Who runs initdb and postgres: ourselves, or ``postgres`` when we are root."""

    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_current_user(cls) -> _RunAs:
        if os.geteuid() != 0:
            return cls()
        try:
            entry = pwd.getpwnam(OS_USER)
        except KeyError:
            raise PgMissing(
                f"running as root and there is no {OS_USER!r} user to run PostgreSQL as "
                "(initdb refuses root): run scripts/peers (Debian package postgresql)"
            ) from None
        return cls(entry.pw_uid, entry.pw_gid)

    @property
    def extra_groups(self) -> list[int] | None:
        return None if self.uid is None else []  # drop root's supplementary groups


def _temp_parent(run_as: _RunAs) -> str:
    """Where the cluster's directory goes: the usual temporary directory, unless
    the user the server runs as could not reach it (a root-only TMPDIR)."""
    parent = Path(tempfile.gettempdir())
    if run_as.uid is None:
        return str(parent)
    for directory in (parent, *parent.parents):
        if not directory.stat().st_mode & 0o001:  # no search permission for others
            return "/tmp"
    return str(parent)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: SIGQUIT (immediate shutdown) to the server when its starter dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGQUIT)


class PgCluster:
    """One private PostgreSQL server; see the module docstring."""

    def __init__(self, root: Path, bin_dir: Path, run_as: _RunAs) -> None:
        self.root = root  # the temporary directory: data/, socket, log
        self.bin_dir = bin_dir
        self.port = 0
        self._run_as = run_as
        self._proc: subprocess.Popen[bytes] | None = None
        self._settings: Mapping[str, str] = DEFAULT_SETTINGS

    # -- lifecycle -----------------------------------------------------------

    @classmethod
    def start(cls, settings: Mapping[str, str] | None = None) -> PgCluster:
        """Initialise and start a cluster; :class:`PgMissing` or :class:`PgStartError`.

        ``settings`` are ``postgres -c`` options laid over :data:`DEFAULT_SETTINGS`.
        """
        bin_dir = find_bin_dir()
        run_as = _RunAs.for_current_user()
        root = Path(tempfile.mkdtemp(prefix="herald-pg-", dir=_temp_parent(run_as)))
        cluster = cls(root, bin_dir, run_as)
        try:
            cluster._initdb()
            cluster._settings = {**DEFAULT_SETTINGS, **(settings or {})}
            cluster._launch()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _initdb(self) -> None:
        data = self.root / "data"
        if self._run_as.uid is not None:
            os.chown(self.root, self._run_as.uid, self._run_as.gid or -1)
        result = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D", str(data),
                "-U", DB_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",  # a throwaway cluster: its files need not survive a power cut
            ],
            cwd=self.root,
            capture_output=True,
            check=False,
            user=self._run_as.uid,
            group=self._run_as.gid,
            extra_groups=self._run_as.extra_groups,
        )
        if result.returncode != 0:
            raise PgStartError(
                f"initdb failed ({result.returncode}): "
                + (result.stderr or result.stdout).decode(errors="replace")[-2000:]
            )

    def _launch(self, port: int | None = None) -> None:
        """Start the server on ``port`` (a restart: the same one), else on a free one."""
        log_path = self.root / "server.log"
        for _attempt in range(1 if port else _PORT_TRIES):
            self.port = port or free_port()
            args = [str(self.bin_dir / "postgres"), "-D", str(self.root / "data")]
            options = {
                **self._settings,
                "port": str(self.port),
                "unix_socket_directories": str(self.root),
            }
            for name, value in options.items():
                args += ["-c", f"{name}={value}"]
            with open(log_path, "ab") as log:
                self._proc = subprocess.Popen(
                    args,
                    cwd=self.root,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a Ctrl-C at the terminal is the starter's
                    preexec_fn=_die_with_parent,  # prctl only, before exec
                    user=self._run_as.uid,
                    group=self._run_as.gid,
                    extra_groups=self._run_as.extra_groups,
                )
            if self._wait_ready():
                return
            if "could not bind" not in self.log_tail():
                break
        raise PgStartError(f"PostgreSQL did not start; its log ends:\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        """True once the server accepts queries; False if it exited first."""
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                return False
            ready = subprocess.run(
                [str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1",
                 "-p", str(self.port), "-U", DB_USER, "-d", "postgres", "-t", "1"],
                check=False,
            )
            if ready.returncode == 0:
                return True
            time.sleep(0.05)
        raise PgStartError(
            f"PostgreSQL did not accept connections in {START_TIMEOUT:.0f} s; "
            f"its log ends:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Fast shutdown (SIGINT), SIGQUIT if it hangs; then remove the directory."""
        self.shut_down()
        shutil.rmtree(self.root, ignore_errors=True)

    def shut_down(self) -> None:
        """Stop the server and keep its data (:meth:`start_again` brings it back):
        clients see their connections end, as at a database outage."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGQUIT)
                proc.wait(STOP_TIMEOUT)

    def start_again(self) -> None:
        """Start the server shut down by :meth:`shut_down`, on the same port."""
        if self.running:
            raise PgStartError("the server is running")
        self._launch(self.port)

    def __enter__(self) -> PgCluster:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- use -------------------------------------------------------------------

    @property
    def server_pid(self) -> int | None:
        """The postmaster's pid (its children are the backends), None when stopped."""
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def dsn(self, database: str = "postgres") -> str:
        """A libpq URL for ``database`` on this cluster (asyncpg and psycopg take it)."""
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with psql (no Python driver needed); its output, or PgStartError."""
        result = subprocess.run(
            [str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", DB_USER, "-d", database,
             "-c", sql],
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise PgStartError(f"psql {sql!r}: {result.stderr.decode(errors='replace')}")
        return result.stdout.decode()

    def create_database(self, name: str, template: str = "template0") -> str:
        """Create database ``name`` (a copy of ``template``); its DSN."""
        _check_identifier(name)
        _check_identifier(template)
        self.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        _check_identifier(name)
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


def _check_identifier(name: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"not a plain database name: {name!r}")


@contextlib.contextmanager
def running_cluster(settings: Mapping[str, str] | None = None) -> Iterator[PgCluster]:
    """``PgCluster.start(settings)`` as a context manager (stopped on exit)."""
    cluster = PgCluster.start(settings)
    try:
        yield cluster
    finally:
        cluster.stop()
