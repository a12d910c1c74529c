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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import sys
import time
from collections.abc import Callable, Mapping
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


class DeliveryWorker:
    """See the module docstring. ``await start()``, ``wake()``, ``await stop()``."""

    def __init__(
        self,
        config: HeraldConfig,
        on_events: Callable[[frozenset[Channel]], None],
        *,
        log_level: str = "WARNING",
        loop: str = "asyncio",
    ) -> None:
        self._config = config
        self._on_events = on_events
        self._env = {LOG_LEVEL_ENV: log_level.upper(), LOOP_ENV: loop}
        self._proc: asyncio.subprocess.Process | None = None
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
        exits first or does not start within ``timeout`` seconds."""
        await self._spawn()
        try:
            await self._until_ready(timeout)
        except BaseException:
            await self._kill()
            raise
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
        self._binds = None  # its connectors unbound (its last metrics say so)

    # -- the process ------------------------------------------------------------------

    async def _spawn(self) -> asyncio.subprocess.Process:
        ours, theirs = link_pair()
        env = {**os.environ, **self._env, LINK_FD_ENV: str(theirs.fileno()),
               PARENT_ENV: str(os.getpid())}  # fmt: skip
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _CHILD_CODE, stdin=asyncio.subprocess.PIPE,
                pass_fds=(theirs.fileno(),), env=env,
            )  # fmt: skip
        finally:
            theirs.close()
        assert proc.stdin is not None
        proc.stdin.write(pickle.dumps(self._config))
        with contextlib.suppress(ConnectionError):
            await proc.stdin.drain()
        proc.stdin.close()
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
