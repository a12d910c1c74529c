"""The delivery process seen from the front: start it, wake it, restart it, stop it (private).

:class:`DeliveryWorker` spawns :mod:`herald.workers._delivery_process` with
one end of a :func:`~herald.workers._link.link_pair`, hands it the
configuration, and waits (bounded) until it says it started. From then on:

- :meth:`DeliveryWorker.wake` tells it messages were accepted;
- its ``EVENTS_SMPP`` messages become ``on_events(channels)`` calls, as if
  this process's own store had committed those events (receipts and MO for
  the customers' binds, which are here);
- its metrics snapshots are kept for ``/metrics`` (:meth:`metrics_snapshot`),
  and its connectors' bound sessions for ``/healthz`` (:meth:`upstream_binds`);
  both are forgotten when it dies, so that neither shows the binds of a dead
  process;
- if it exits while it should be running (a crash, an OOM kill, SIGKILL),
  it is started again after :data:`RESTART_MIN` seconds, doubling up to
  :data:`RESTART_MAX` while it keeps dying young. Its claimed messages come
  back when their leases end, as after any crash; nothing acknowledged is lost.

:meth:`DeliveryWorker.stop` asks it to stop gracefully (it hands its messages
back and unbinds), waits, and kills it only past ``timeout``.

**Priority.** With ``intake_nice`` (``herald serve`` passes the configuration's;
0, off, by default) the front adds that much to its own nice value once the delivery
process runs. Both processes compete for the same CPUs; when all are busy, the
scheduler then gives the delivery process the larger share, so messages
already accepted go out before more are taken in, instead of a backlog (and
receipt latency) growing for as long as intake outpaces delivery. Measured in
``docs/performance.md``. On Linux a nice value belongs to a thread and a child
starts with its parent thread's, and only a privileged process may lower one:
so the delivery process is always started from :class:`_Spawner`'s thread,
which was created before the front niced itself, and keeps the start-up value
through restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from herald.config import HeraldConfig
from herald.store import Channel
from herald.workers._delivery_process import (
    LINK_FD_ENV,
    LOG_LEVEL_ENV,
    LOOP_ENV,
    METRICS_INTERVAL,
    PARENT_ENV,
)
from herald.workers._link import (
    ACCEPTED,
    EVENTS_SMPP,
    METRICS,
    QUIT,
    READY,
    UPSTREAMS,
    Link,
    link_pair,
)

__all__ = ["RESTART_MAX", "RESTART_MIN", "START_TIMEOUT", "UPSTREAMS_STALE", "DeliveryWorker"]

log = logging.getLogger("herald.workers")

#: Seconds a delivery process may take to start (import, open the store,
#: start the connectors) before ``start`` fails.
START_TIMEOUT: Final = 30.0
#: Seconds before a dead delivery process is started again, doubling while it
#: keeps dying within :data:`_HEALTHY_AFTER` seconds, up to RESTART_MAX.
RESTART_MIN: Final = 0.5
RESTART_MAX: Final = 30.0
_HEALTHY_AFTER: Final = 60.0
#: Seconds after its last report of the upstream binds that the delivery process
#: counts as not reporting (it reports every METRICS_INTERVAL): hung, or stopped.
UPSTREAMS_STALE: Final = 3 * METRICS_INTERVAL
_SMPP_ONLY: Final = frozenset({Channel.SMPP})
_CHILD_CODE: Final = "from herald.workers._delivery_process import main; main()"


class _Child:
    """A started delivery process: :class:`subprocess.Popen` with an awaitable exit
    (a pidfd the loop watches; a thread blocked in ``wait`` where there is none)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self.pid = proc.pid
        loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = loop.create_future()
        try:
            self._fd: int | None = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):  # not Linux 5.3+: a thread waits instead
            self._fd = None
            waiting = loop.run_in_executor(None, proc.wait)
            waiting.add_done_callback(lambda f: self._settle(f.result()))
        else:
            loop.add_reader(self._fd, self._reap)

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    def _reap(self) -> None:
        self._settle(self._proc.wait())  # the pidfd is readable: it has exited

    def _settle(self, code: int) -> None:
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None
        if not self._exited.done():
            self._exited.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def kill(self) -> None:
        if self._proc.returncode is None:
            self._proc.kill()


class _Spawner:
    """The one thread that starts delivery processes, created before the front
    changes its own nice value, so that every process it starts has the front's
    start-up value (see the module docstring). It lives as long as they may: a
    child's parent-death signal (``PR_SET_PDEATHSIG``) follows the thread that
    started it, so closing it kills what it started."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="herald-spawner")
        self._thread.submit(lambda: None).result()  # the thread exists from now on

    async def start(self, args: list[str], env: Mapping[str, str], fd: int,
                    config: bytes) -> _Child:
        def popen() -> subprocess.Popen[bytes]:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, pass_fds=(fd,), env=env)
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):  # it died at once: _watch sees it
                proc.stdin.write(config)
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            return proc

        proc = await asyncio.get_running_loop().run_in_executor(self._thread, popen)
        return _Child(proc)

    def close(self) -> None:
        self._thread.shutdown(wait=False)


class DeliveryWorker:
    """See the module docstring. ``await start()``, ``wake()``, ``await stop()``."""

    def __init__(
        self,
        config: HeraldConfig,
        on_events: Callable[[frozenset[Channel]], None],
        *,
        log_level: str = "WARNING",
        loop: str = "asyncio",
        intake_nice: int = 0,
    ) -> None:
        self._config = config
        self._intake_nice = intake_nice
        self._spawner: _Spawner | None = None
        self._on_events = on_events
        self._env = {LOG_LEVEL_ENV: log_level.upper(), LOOP_ENV: loop}
        self._proc: _Child | None = None
        self._link: Link | None = None
        self._ready: asyncio.Event = asyncio.Event()
        self._snapshot = b""
        self._binds: dict[str, int] | None = None
        self._binds_at = 0.0
        self._stopping = False
        self._watcher: asyncio.Task[None] | None = None
        self._delay = RESTART_MIN
        self._started_at = 0.0
        self.restarts = 0  # times the process was started again after dying

    @property
    def pid(self) -> int | None:
        """The running delivery process's id (``None`` between a death and its restart)."""
        return None if self._proc is None else self._proc.pid

    def metrics_snapshot(self) -> bytes:
        """The delivery process's latest metrics (Prometheus text; empty before the first)."""
        return self._snapshot

    def upstream_binds(self) -> Mapping[str, int] | None:
        """Bound sessions per connector, as the delivery process last reported them;
        ``None`` if it is not running or has not reported for UPSTREAMS_STALE seconds."""
        if self._binds is None or time.monotonic() - self._binds_at > UPSTREAMS_STALE:
            return None
        return self._binds

    def wake(self) -> None:
        """Messages were accepted: the delivery process claims now."""
        if self._link is not None:
            self._link.send(ACCEPTED)

    async def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the process and wait until it runs; raises :class:`RuntimeError` if it
        exits first or does not start within ``timeout`` seconds; then the front
        (the calling thread) adds ``intake_nice`` to its nice value."""
        self._spawner = _Spawner()
        try:
            await self._spawn()
            await self._until_ready(timeout)
        except BaseException:
            await self._kill()
            self._close_spawner()
            raise
        if self._intake_nice:
            _nicer(self._intake_nice)
        self._watcher = asyncio.create_task(self._watch(), name="dispatch-process")

    async def stop(self, timeout: float = 30.0) -> None:
        """Ask the process to stop gracefully; kill it if it has not within ``timeout``."""
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        proc = self._proc
        if proc is None:
            self._close_spawner()
            return
        if self._link is not None:
            self._link.send_now(QUIT)
        try:
            async with asyncio.timeout(timeout):
                await proc.wait()
        except TimeoutError:
            log.error("delivery process %d did not stop within %g s; killing it",
                      proc.pid, timeout)  # fmt: skip
            await self._kill()
        self._close_link()
        self._close_spawner()  # only now: see _Spawner
        self._binds = None  # its connectors unbound (its last metrics say so)

    def _close_spawner(self) -> None:
        if self._spawner is not None:
            self._spawner.close()
            self._spawner = None

    # -- the process ------------------------------------------------------------------

    async def _spawn(self) -> _Child:
        assert self._spawner is not None
        ours, theirs = link_pair()
        env = {**os.environ, **self._env, LINK_FD_ENV: str(theirs.fileno()),
               PARENT_ENV: str(os.getpid())}  # fmt: skip
        try:
            proc = await self._spawner.start([sys.executable, "-c", _CHILD_CODE], env,
                                             theirs.fileno(), pickle.dumps(self._config))
        finally:
            theirs.close()
        self._proc = proc
        self._ready = asyncio.Event()
        self._link = Link(ours, self._received)
        self._started_at = time.monotonic()
        return proc

    async def _until_ready(self, timeout: float) -> None:
        assert self._proc is not None
        ready = asyncio.create_task(self._ready.wait())
        exited = asyncio.create_task(self._proc.wait())
        try:
            done, _ = await asyncio.wait({ready, exited}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            ready.cancel()
            exited.cancel()
        if exited in done:
            raise RuntimeError(
                f"the delivery process exited while starting (code {self._proc.returncode})"
            )
        if ready not in done:
            raise RuntimeError(f"the delivery process did not start within {timeout:g} s")

    async def _watch(self) -> None:
        """Restart the process whenever it dies while it should run."""
        proc = self._proc
        while proc is not None:
            code = await proc.wait()
            if self.stopping:
                return
            self._close_link()
            self._proc = None
            self._forget_reports()
            if time.monotonic() - self._started_at > _HEALTHY_AFTER:
                self._delay = RESTART_MIN
            log.error("the delivery process %d exited (code %s); starting it again in %.1f s",
                      proc.pid, code, self._delay)  # fmt: skip
            await asyncio.sleep(self._delay)
            self._delay = min(RESTART_MAX, self._delay * 2)
            try:
                proc = await self._spawn()
                await self._until_ready(START_TIMEOUT)
            except (OSError, RuntimeError) as exc:
                log.error("restarting the delivery process failed: %s", exc)
                await self._kill()
                continue  # wait() on the dead one returns at once: retry after a delay
            self.restarts += 1
            log.warning("the delivery process runs again (pid %d)", proc.pid)
            # Whatever was accepted meanwhile waits in the store: claim it now.
            self.wake()

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await proc.wait()
        self._close_link()

    def _close_link(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    def _forget_reports(self) -> None:
        """The process died: its binds went with it, and its counters start again."""
        self._snapshot = b""
        self._binds = None

    def _received(self, kind: bytes, payload: bytes) -> None:
        if kind == EVENTS_SMPP:
            self._on_events(_SMPP_ONLY)
        elif kind == METRICS:
            self._snapshot = payload
        elif kind == UPSTREAMS:
            self._upstreams_report(payload)
        elif kind == READY:
            self._ready.set()

    def _upstreams_report(self, payload: bytes) -> None:
        try:
            binds = json.loads(payload)
        except ValueError:
            binds = None
        if not isinstance(binds, dict) or not all(
            isinstance(k, str) and type(v) is int for k, v in binds.items()
        ):
            log.warning("link: ignoring a malformed upstreams report")
            return
        self._binds = binds
        self._binds_at = time.monotonic()


def _nicer(step: int) -> None:
    """Add ``step`` to the calling thread's nice value (Linux: a thread's own)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) + step)
    except OSError as exc:  # e.g. a seccomp profile that refuses it: run as before
        log.warning("could not lower the intake process's priority: %s", exc)
