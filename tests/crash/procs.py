"""herald and ``herald sim`` as subprocesses, the way an operator runs them.

``HeraldProcess`` runs ``herald serve --config FILE`` on a data directory and
fixed loopback ports (chosen free once, kept across restarts, so customers
reconnect to the same address), with its output in one log file per start.
``SimProcess`` runs ``herald sim --record FILE``. Both are asyncio
subprocesses; every wait is bounded and a failure quotes the log's tail.

Used by the crash test (``tests/crash``) and by ``bench/crash.py`` and
``bench/e2e.py``, which put ``tests`` on ``sys.path`` and import ``crash.procs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from herald.accounts import Accounts
from herald.store import SQLiteConfig, SQLiteStore

__all__ = [
    "HERALD",
    "Credentials",
    "HeraldProcess",
    "SimProcess",
    "cpu_seconds",
    "create_account",
    "free_port",
    "herald_config",
]

HERALD: Final = (sys.executable, "-m", "herald")
#: Seconds for a process to import, open its store and listen (a loaded 2-core
#: machine takes 2-3 s; the bound is generous, it is never waited out normally).
START_TIMEOUT: Final = 90.0
#: Seconds a SIGTERM-ed herald gets to finish in-flight work and exit.
STOP_TIMEOUT: Final = 60.0
#: Polling period of the start waits.
POLL: Final = 0.05
#: Lines of a log quoted in an error.
TAIL_LINES: Final = 40
CLOCK_TICK: Final = os.sysconf("SC_CLK_TCK")
READY_LINE: Final = "herald: HTTP API on"
SIM_READY: Final = "herald sim listening on"


class ProcessError(RuntimeError):
    """A process did not start, died, or did not stop in time."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process so far (/proc/PID/stat fields 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


@dataclass(frozen=True)
class Credentials:
    account: str
    api_key: str = field(repr=False)
    system_id: str
    password: str = field(repr=False)


async def create_account(data_dir: Path, name: str, *, rate_limit: float = 1e6,
                         bind_limit: int = 16) -> Credentials:
    """An account with an API key and an SMPP login, written to the data
    directory before herald starts (what ``herald accounts create`` and
    ``add-smpp`` do)."""
    store = SQLiteStore.open(SQLiteConfig(data_dir=data_dir))
    accounts = Accounts(store)
    try:
        now = time.time()
        account, key = await accounts.create(name, now, rate_limit=rate_limit,
                                             bind_limit=bind_limit)
        smpp = await accounts.add_smpp(account.id, name, now)
    finally:
        accounts.close()
        await store.aclose()
    return Credentials(name, key.key, name, smpp.password)


def herald_config(data_dir: Path, http_port: int, smpp_port: int, sim_port: int, *,
                  binds: int, window: int, tps: float, customer_window: int = 64,
                  http_rate: float = 100_000, processes: int | None = None,
                  loop: str | None = None, connector_extra: str = "") -> str:
    """A herald.toml: loopback listeners, one connector to the simulator (plus the
    ``connector_extra`` lines), a catch-all route; ``processes`` and ``loop`` as
    given (else herald's defaults)."""
    top = "" if processes is None else f"processes = {processes}\n"
    top += "" if loop is None else f'loop = "{loop}"\n'
    return f"""\
data_dir = "{data_dir}"
{top}
[http]
listen = "127.0.0.1:{http_port}"
default_account_rate = {http_rate}

[smpp]
listen = "127.0.0.1:{smpp_port}"
window = {customer_window}

[webhooks]
backoff_min = 0.2
backoff_max = 2
block_private_addresses = false  # the receivers are on 127.0.0.1

[[connectors]]
name = "sim"
host = "127.0.0.1"
port = {sim_port}
system_id = "herald"
password = "simpass"
binds = {binds}
window = {window}
tps = {tps}
reconnect_min = 0.1
reconnect_max = 1
{connector_extra}
[[routes]]
prefix = ""
connectors = ["sim"]
"""


def _find_line(log: Path, marker: str) -> str | None:
    with contextlib.suppress(FileNotFoundError):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith(marker):
                return line
    return None


async def _wait_for_line(proc: asyncio.subprocess.Process, log: Path, marker: str,
                         timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        line = _find_line(log, marker)
        if line is not None:
            return line
        if proc.returncode is not None:
            raise ProcessError(f"{log.name}: exited with {proc.returncode}\n{tail(log)}")
        if time.monotonic() > deadline:
            raise ProcessError(f"{log.name}: not ready after {timeout:.0f} s\n{tail(log)}")
        await asyncio.sleep(POLL)


class HeraldProcess:
    """``herald serve --config FILE``, started, killed and restarted on one data dir."""

    def __init__(self, workdir: Path, config: str, *, python: tuple[str, ...] = HERALD,
                 env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.config_path = workdir / "herald.toml"
        self.config_path.write_text(config)
        self.command = (*python, "serve", "--config", str(self.config_path))
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.log = workdir / "herald-0.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self, timeout: float = START_TIMEOUT) -> float:
        """Start and wait until it listens; returns the seconds that took."""
        self.starts += 1
        self.log = self.workdir / f"herald-{self.starts}.log"
        began = time.monotonic()
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command, cwd=self.workdir, env=self.env, stdin=asyncio.subprocess.DEVNULL,
                stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        await _wait_for_line(self.proc, self.log, READY_LINE, timeout)
        return time.monotonic() - began

    def delivery_pid(self) -> int | None:
        """The pid of herald's delivery process (a child of ``herald serve``), if one runs."""
        if not self.running:
            return None
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            if ppid == self.pid and b"_delivery_process" in cmdline:
                return int(entry.name)
        return None

    async def kill_delivery(self, timeout: float = START_TIMEOUT) -> float:
        """SIGKILL the delivery process only; returns the seconds until ``herald
        serve`` runs a new one (it restarts it by itself)."""
        began = time.monotonic()
        old = self.delivery_pid()
        if old is None:
            raise ProcessError(f"herald runs no delivery process\n{tail(self.log)}")
        os.kill(old, signal.SIGKILL)
        while time.monotonic() - began < timeout:
            new = self.delivery_pid()
            if new is not None and new != old and "runs again" in self.log.read_text():
                return time.monotonic() - began
            await asyncio.sleep(POLL)
        raise ProcessError(f"no new delivery process within {timeout:.0f} s\n{tail(self.log)}")

    async def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, no graceful anything."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM (graceful stop) and wait; SIGKILL and raise if it takes too long."""
        proc = self.proc
        assert proc is not None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise ProcessError(f"herald did not stop within {timeout:.0f} s\n"
                                   f"{tail(self.log)}") from None
        assert proc.returncode is not None
        return proc.returncode

    async def ensure_dead(self) -> None:
        """For cleanup paths: kill if still running."""
        if self.running:
            await self.kill()


class SimProcess:
    """``herald sim`` with a record file, on a free port (printed on its first line)."""

    def __init__(self, workdir: Path, *, record: Path | None, receipt_delay: str,
                 seed: int, extra: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.record = record
        self.log = workdir / "sim.log"
        args = ["sim", "--listen", "127.0.0.1:0", "--receipt-delay", receipt_delay,
                "--seed", str(seed), "--system-id", "herald", "--password", "simpass", *extra]
        if record is not None:
            args += ["--record", str(record)]
        self.command = (*HERALD, *args)
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float = START_TIMEOUT) -> int:
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command, cwd=self.workdir, stdin=asyncio.subprocess.DEVNULL,
                stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        line = await _wait_for_line(self.proc, self.log, SIM_READY, timeout)
        self.port = int(line.split()[4].rsplit(":", 1)[1])
        return self.port

    async def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM: it unbinds and flushes the record."""
        proc = self.proc
        if proc is None:
            return 0
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise ProcessError(f"herald sim did not stop\n{tail(self.log)}") from None
        assert proc.returncode is not None
        return proc.returncode
