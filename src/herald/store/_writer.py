"""Group commit: one writer thread, one transaction per batch of writes.

Theory of operation
-------------------
Callers on the event loop call :meth:`GroupCommitWriter.submit` with either a
*batched* write (a :class:`Group` and the rows for its statements) or an
*individual* write (a function of the connection, for writes that read or
return something: claims, account creation, idempotent accepts). ``submit``
returns an asyncio future at once.

The writer thread takes the first waiting write, then everything else already
queued (up to ``max_batch`` rows; optionally waiting ``commit_interval``
seconds for more), and runs them in one ``BEGIN IMMEDIATE … COMMIT``:

1. batched writes, grouped by :class:`Group` in a fixed order, each group one
   ``executemany`` per statement (prepared statements are reused from the
   connection's statement cache);
2. individual writes, in arrival order, each in its own ``SAVEPOINT``.

Only after ``COMMIT`` returns does it resolve the futures, with one
``call_soon_threadsafe`` per event loop per batch. A ``before_commit``
callback runs in the transaction just before ``COMMIT`` (the store writes what
the batch's status changes emit there). So an awaited write is
durable, and a crash loses only writes nobody was told about. An
``after_commit`` callback, run in the writer thread after each ``COMMIT``,
returns calls to make on event loops: how the store tells others what the
transaction created (the outbox events that wake the webhook sender and the
SMPP notifier). They ride in the same ``call_soon_threadsafe`` as the
futures, and run before them.

Several processes may write one database (``herald serve`` runs intake and
dispatch apart). SQLite lets one write transaction run at a time and makes
the others wait in its busy handler, which *sleeps* (1, 2, 5, 10 ms...): at
thousands of commits a second that is most of the latency. With
``lock_path``, every transaction is taken under an exclusive ``flock`` of
that file first, so writers of all processes queue in the kernel and the
next one starts the moment the previous commits (two system calls a
transaction).

Running groups in a fixed order rather than arrival order is safe because the
store's statements commute: status updates only move forward and a receipt
that runs before its segment is parked and applied when the segment arrives.
A caller cannot update a message before ``accept`` has returned its id.

If a group's ``executemany`` fails (one bad row: a duplicate id), the group is
rolled back to its savepoint and its writes are retried one by one, so only
the offending caller gets the error. If ``BEGIN`` or ``COMMIT`` fails (disk
full, I/O error), every write of the batch fails with :class:`StoreUnavailable`
and nothing of it is visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from herald.store._errors import StoreBusy, StoreClosed, StoreError, StoreUnavailable

__all__ = ["Group", "GroupCommitWriter"]

log = logging.getLogger("herald.store")

Row = Sequence[object]
#: Something to call on an event loop after a commit (see ``after_commit``).
Note = tuple[asyncio.AbstractEventLoop, Callable[[], None]]
IndividualWrite = Callable[[sqlite3.Connection], object]


@dataclass(frozen=True, slots=True, eq=False)  # identity: a dict key per batch
class Group:
    """A kind of batched write: statements run with ``executemany`` over all rows.

    ``order`` fixes when the group runs inside a batch (lower first).
    ``on_integrity_error`` builds the error a caller gets when its rows break a
    constraint (for example a duplicate public id). ``columns``, if given,
    holds one slice per statement: the part of each row that statement binds
    (a row feeding two tables: a message and its charge). ``then``, if given,
    runs once after the statements with all the rows: what follows from them,
    in a few set-based statements rather than a trigger per row. ``steps``
    False: the group never moves a message's status to "sent" or past it (so a
    transaction of such groups only need not look for steps to emit before its
    ``COMMIT``: an accept's, a completion's).
    """

    name: str
    order: int
    statements: tuple[str, ...]
    on_integrity_error: Callable[[sqlite3.IntegrityError], StoreError]
    columns: tuple[slice, ...] | None = None
    then: Callable[[sqlite3.Connection, Sequence[Row]], None] | None = None
    steps: bool = True

    def run(self, conn: sqlite3.Connection, rows: Sequence[Row]) -> None:
        """Every statement over ``rows``, then ``then``."""
        if self.columns is None:
            for sql in self.statements:
                conn.executemany(sql, rows)
        else:
            for sql, part in zip(self.statements, self.columns, strict=True):
                conn.executemany(sql, [row[part] for row in rows])
        if self.then is not None:
            self.then(conn, rows)


# (group or None, rows or function, future, weight)
_Op = tuple[Group | None, Any, "asyncio.Future[Any]", int]
_Outcome = tuple["asyncio.Future[Any]", object, BaseException | None]
_STOP = object()


def _settle(outcomes: list[_Outcome], notes: Sequence[Callable[[], None]] = ()) -> None:
    for note in notes:  # before the writers resume: they may rely on having been told
        try:
            note()
        except Exception:
            log.exception("a commit notification failed")
    for future, value, error in outcomes:
        if future.done():  # the caller was cancelled; the write happened anyway
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)


def _unavailable(exc: BaseException) -> StoreUnavailable:
    err = StoreUnavailable(f"database error: {exc}")
    err.__cause__ = exc
    return err


class GroupCommitWriter:
    """Owns the one write connection and the thread that uses it."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        max_batch: int,
        max_pending: int,
        commit_interval: float,
        name: str = "herald-store-writer",
        after_commit: Callable[[], Sequence[Note]] | None = None,
        lock_path: Path | None = None,
        before_commit: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self._connect = connect
        self._after_commit = after_commit
        self._before_commit = before_commit
        self._lock_path = lock_path
        self._lock_fd: int | None = None
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._commit_interval = commit_interval
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        self.commits = 0  # transactions committed
        self.writes = 0  # writes they carried
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise _unavailable(self._start_error)

    # -- event-loop side -------------------------------------------------------------

    def submit(self, group: Group | None, payload: Any, weight: int = 1) -> asyncio.Future[Any]:
        """Queue a write; the future resolves after its commit.

        ``group`` with a list of rows, or ``None`` with a function of the
        connection whose return value becomes the future's result.
        Raises :class:`StoreClosed` or :class:`StoreBusy` at once.
        """
        if self._closed:
            raise StoreClosed("the store is closed")
        if self._queue.qsize() >= self._max_pending:
            raise StoreBusy(f"{self._max_pending} writes are waiting for a commit")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put((group, payload, future, weight))
        return future

    async def aclose(self) -> None:
        """Stop taking writes, commit those queued, close the connection."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    def close_blocking(self) -> None:
        """:meth:`aclose` for code outside an event loop (tests, the CLI's error paths)."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()

    # -- writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            if self._lock_path is not None:
                self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            conn = self._connect()
        except BaseException as exc:  # reported to the opener
            self._start_error = exc
            self._started.set()
            return
        self._started.set()
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is _STOP:
                    break
                batch: list[_Op] = [first]  # type: ignore[list-item]
                stopping = self._fill(batch)
                self._execute(conn, batch)
        finally:
            conn.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)

    def _fill(self, batch: list[_Op]) -> bool:
        """Add queued writes to ``batch``; True if the stop marker was reached."""
        weight = batch[0][3]
        deadline: float | None = None
        get = self._queue.get
        while weight < self._max_batch:
            try:
                op = get(block=False)
            except queue.Empty:
                if self._commit_interval <= 0:
                    return False
                if deadline is None:
                    deadline = time.monotonic() + self._commit_interval
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                try:
                    op = get(timeout=remaining)
                except queue.Empty:
                    return False
            if op is _STOP:
                return True
            batch.append(op)  # type: ignore[arg-type]
            weight += op[3]  # type: ignore[index]
        return False

    def _execute(self, conn: sqlite3.Connection, batch: list[_Op]) -> None:
        self._deliver(*self._transaction(conn, batch))

    def _transaction(
        self, conn: sqlite3.Connection, batch: list[_Op]
    ) -> tuple[list[_Outcome], Sequence[Note]]:
        """Run ``batch`` in one transaction: each write's outcome, and the notes of its commit."""
        groups: dict[Group, list[_Op]] = {}
        individual: list[_Op] = []
        for op in batch:
            if op[0] is None:
                individual.append(op)
            else:
                groups.setdefault(op[0], []).append(op)
        outcomes: list[_Outcome] = []
        notes: Sequence[Note] = ()
        try:
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)  # blocks without the GIL
            conn.execute("BEGIN IMMEDIATE")
            try:
                for group in sorted(groups, key=lambda g: g.order):
                    self._run_group(conn, group, groups[group], outcomes)
                for op in individual:
                    self._run_individual(conn, op, outcomes)
                if self._before_commit is not None and (
                        individual or any(group.steps for group in groups)):
                    self._before_commit(conn)
                conn.execute("COMMIT")
                self.commits += 1
                self.writes += len(batch)
                if self._after_commit is not None:
                    notes = self._after_commit()
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        except Exception as exc:
            log.error("store batch of %d writes failed: %s", len(batch), exc)
            outcomes = [(op[2], None, _unavailable(exc)) for op in batch]
        finally:
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        return outcomes, notes

    @staticmethod
    def _run_group(
        conn: sqlite3.Connection, group: Group, ops: list[_Op], outcomes: list[_Outcome]
    ) -> None:
        rows = ops[0][1] if len(ops) == 1 else [row for op in ops for row in op[1]]
        conn.execute("SAVEPOINT grp")
        try:
            group.run(conn, rows)
        except sqlite3.IntegrityError:
            # One caller's rows broke a constraint: find whose, fail only them.
            conn.execute("ROLLBACK TO grp")
            for op in ops:
                conn.execute("SAVEPOINT one")
                try:
                    group.run(conn, op[1])
                except sqlite3.IntegrityError as exc:
                    conn.execute("ROLLBACK TO one")
                    outcomes.append((op[2], None, group.on_integrity_error(exc)))
                else:
                    outcomes.append((op[2], None, None))
                conn.execute("RELEASE one")
        else:
            outcomes.extend((op[2], None, None) for op in ops)
        conn.execute("RELEASE grp")

    @staticmethod
    def _run_individual(conn: sqlite3.Connection, op: _Op, outcomes: list[_Outcome]) -> None:
        conn.execute("SAVEPOINT one")
        try:
            value = op[1](conn)
        except sqlite3.OperationalError:
            raise  # disk, I/O, lock: the whole batch fails
        except Exception as exc:  # this caller's write only
            conn.execute("ROLLBACK TO one")
            error = exc if isinstance(exc, StoreError) else _unavailable(exc)
            outcomes.append((op[2], None, error))
        else:
            outcomes.append((op[2], value, None))
        conn.execute("RELEASE one")

    @staticmethod
    def _deliver(outcomes: list[_Outcome], notes: Sequence[Note] = ()) -> None:
        """Hand each loop its settled futures and notes in one ``call_soon_threadsafe``
        (each call is a write to the loop's wake-up pipe: one per commit, not two)."""
        loops: dict[asyncio.AbstractEventLoop, tuple[list[_Outcome], list[Callable[[], None]]]]
        loops = {}
        for outcome in outcomes:
            loops.setdefault(outcome[0].get_loop(), ([], []))[0].append(outcome)
        for loop, note in notes:
            loops.setdefault(loop, ([], []))[1].append(note)
        for loop, (items, calls) in loops.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, items, calls)


class LoopCommitWriter(GroupCommitWriter):
    """Group commit on the event loop's own thread: the writes of one loop turn, one transaction.

    :meth:`submit` queues the write and, once per loop turn, schedules
    :meth:`_flush`, which runs everything queued as one transaction (in
    ``max_batch`` slices) and resolves the futures directly. Why, when the
    thread lets SQLite's C code run beside the loop: under load the loop
    thread holds the GIL, and the writer thread needs it back after every
    statement it runs (``sqlite3_step`` releases it), so a transaction of a
    few statements waited for several of the loop's turns. Measured in ``herald
    serve`` at 8 requests in flight (``bench/vs_kannel.py --only closed8``,
    docs/performance.md): an accept's commit took 1.2 ms (p50) through the
    thread, of which the transaction itself was 0.14 ms; the rest was waking the
    thread, the GIL and waking the loop back. Here a commit costs the
    transaction only, and blocks the loop for exactly that long (a 10,000
    message batch: tens of milliseconds). ``commit_interval`` > 0 delays the
    flush by that many seconds, gathering more writes into it.

    The write lock (``lock_path``) is taken on this thread too: another
    process's transaction in progress blocks the loop until it commits (its
    own transactions are as short, for the same reason).

    ``quiet_interval`` > 0 waits that long instead while the writes of the
    last tenth of a second came at under ``quiet_rate`` a second (see
    :class:`~herald.store.SQLiteConfig`).
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        max_batch: int,
        max_pending: int,
        commit_interval: float,
        after_commit: Callable[[], Sequence[Note]] | None = None,
        lock_path: Path | None = None,
        quiet_interval: float = 0.0,
        quiet_rate: float = 0.0,
        before_commit: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self._after_commit = after_commit
        self._before_commit = before_commit
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._commit_interval = commit_interval
        self._quiet_interval = quiet_interval
        self._quiet_rate = quiet_rate
        self._rate_since = 0.0  # loop time the current window of counting began
        self._rate_count = 0  # rows written since then
        self._rate = 0.0  # rows a second over the last full window
        self._closed = False
        self.commits = 0
        self.writes = 0
        self._pending: list[_Op] = []
        self._scheduled = False
        self._lock_fd = None
        try:
            if lock_path is not None:
                self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._conn = connect()
        except Exception as exc:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
            raise _unavailable(exc) from exc

    def submit(self, group: Group | None, payload: Any, weight: int = 1) -> asyncio.Future[Any]:
        if self._closed:
            raise StoreClosed("the store is closed")
        if len(self._pending) >= self._max_pending:
            raise StoreBusy(f"{self._max_pending} writes are waiting for a commit")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((group, payload, future, weight))
        if self._quiet_interval > 0:
            self._rate_count += weight
        if not self._scheduled:
            self._scheduled = True
            interval = self._commit_interval
            if self._quiet_interval > 0 and self._quiet(loop.time()):
                interval = max(interval, self._quiet_interval)
            if interval > 0:
                loop.call_later(interval, self._flush)
            else:
                loop.call_soon(self._flush)
        return future

    def _quiet(self, now: float) -> bool:
        """Whether the writes of the last tenth of a second (or more) came at under
        ``quiet_rate`` a second. A tenth, not a second: a burst after a quiet
        spell should stop waiting within a few hundred messages."""
        elapsed = now - self._rate_since
        if elapsed >= _RATE_WINDOW:
            self._rate = self._rate_count / elapsed
            self._rate_since, self._rate_count = now, 0
        return self._rate < self._quiet_rate

    async def aclose(self) -> None:
        self.close_blocking()

    def close_blocking(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._flush()
        self._conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        start = 0
        while start < len(pending):
            end, weight = start, 0
            while end < len(pending) and (end == start or weight < self._max_batch):
                weight += pending[end][3]
                end += 1
            batch, start = pending[start:end], end
            outcomes, notes = self._transaction(self._conn, batch)
            here = asyncio.get_running_loop() if _in_loop() else None
            own = [call for loop, call in notes if loop is here]
            others = [(loop, call) for loop, call in notes if loop is not here]
            if others:
                self._deliver([], others)
            _settle(outcomes, own)


#: Seconds over which :class:`LoopCommitWriter` measures its write rate.
_RATE_WINDOW: Final = 0.1


def _in_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
