"""The store's answer to the signaling guard's platform-egress question.

``herald.signaling.policy.PendingMessages`` asks, for every SRI-SM and
MT-ForwardSM the platform sends from its own global titles: is a customer
message to this number queued and not yet final? ``SQLitePendingMessages``
answers from herald's SQLite store with one indexed lookup
(``messages_pending_to``) on its own read-only connection, so the guard's
synchronous engine can call it without the store's writer or reader threads.

``PostgresPendingMessages`` answers from the PostgreSQL store (several herald
nodes on one database) with one lookup on its index ``messages_pending_to``
(``to_addr, expires_at``: status is read from the rows it finds, so that the
messages' transitions stay HOT updates). asyncpg is asynchronous and the
engine is not: the connection lives on a private event loop in a daemon
thread, and each question waits at most ``ANSWER_TIMEOUT`` for its answer.

Both fail closed: if the database cannot answer (locked past the busy timeout,
missing, corrupt, stopped, unreachable, slower than the bound), the answer is
``False`` and the signaling is blocked; the PostgreSQL one reconnects by
itself in the background. Nothing here reads or returns anything but a yes/no
about a number the platform itself was asked to deliver to.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any, Final

from herald.store._errors import StoreUnavailable
from herald.store._model import Status
from herald.store._pglink import RECONNECT_FIRST, RECONNECT_MAX, PgLink
from herald.store._sqlite_conn import DB_FILENAME

__all__ = ["PostgresPendingMessages", "SQLitePendingMessages"]

log = logging.getLogger("herald.store.pending")

#: Milliseconds a lookup may wait for a writer's lock before failing closed.
BUSY_TIMEOUT_MS: Final = 200

_QUERY: Final = (
    "SELECT 1 FROM messages INDEXED BY messages_pending_to "
    f"WHERE to_addr = ? AND status < {int(Status.DELIVERED)} AND test = 0 AND expires_at > ?"
    " LIMIT 1"
)


class SQLitePendingMessages:
    """``PendingMessages`` over ``<data_dir>/herald.db``. One thread at a time."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / DB_FILENAME
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True,
                                   check_same_thread=False, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn = conn
        return self._conn

    def has_pending(self, msisdn: str, now: float) -> bool:
        """Whether a message to ``msisdn`` (E.164 digits) waits; False if unsure."""
        try:
            row = self._connection().execute(_QUERY, (msisdn.lstrip("+"), now)).fetchone()
        except sqlite3.Error as exc:
            log.warning("platform egress: the store could not answer (%s); failing closed", exc)
            self.close()
            return False
        return row is not None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


#: Seconds a PostgreSQL lookup may take before the answer is "no" (fail closed).
ANSWER_TIMEOUT: Final = BUSY_TIMEOUT_MS / 1000
#: Seconds between two warnings while the database keeps failing to answer.
WARN_EVERY: Final = 60.0
#: What the lookup's connections call themselves in pg_stat_activity.
APPLICATION_NAME: Final = "herald-guard"

# Through messages_pending_to (to_addr, expires_at) WHERE NOT test; status,
# written by every transition, is filtered on the rows found (see _schema.py).
_PG_QUERY: Final = (
    "SELECT 1 FROM messages WHERE to_addr = $1 AND NOT test AND expires_at > $2"
    f" AND status < {int(Status.DELIVERED)} LIMIT 1"
)


class PostgresPendingMessages:
    """``PendingMessages`` over herald's PostgreSQL store at ``url``.

    Call :meth:`open` first (it connects, so that a wrong URL or an unreachable
    server is an error at start), :meth:`has_pending` from one thread at a time,
    :meth:`close` at the end. Between them, one connection on a private event
    loop (:class:`~herald.store._pglink.PgLink`): lost, it is replaced in the
    background while lookups answer ``False``. After a failed lookup the next
    ones answer ``False`` without asking for ``hold`` seconds (doubling with
    each failure, up to ``RECONNECT_MAX``), so an outage costs the caller one
    wait of ``timeout`` a period, not one a call.
    """

    def __init__(
        self, url: str, *, timeout: float = ANSWER_TIMEOUT, hold: float = RECONNECT_FIRST
    ) -> None:
        self._link = PgLink(url, timeout=timeout, thread_name="herald-pending-pg",
                            application_name=APPLICATION_NAME, check=_check_schema)  # fmt: skip
        # The caller's thread only: an outage is logged once a minute, not per lookup.
        self._failing_since: float | None = None
        self._warned_at = 0.0
        self._refused = 0
        self._hold_until = 0.0  # no question asked before then (after a failure)
        self._first_hold = self._hold = hold

    def open(self) -> None:
        """Connect, and check the database holds herald's messages. Raises
        :class:`StoreUnavailable` (unreachable, refused) or ``ValueError`` (no
        herald store there); closes itself then."""
        self._link.open()

    def has_pending(self, msisdn: str, now: float) -> bool:
        """Whether a message to ``msisdn`` (E.164 digits) waits; False if unsure."""
        if self._failing_since is not None and time.monotonic() < self._hold_until:
            return self._fail_closed("held off after a failed lookup", asked=False)
        to, at = msisdn.lstrip("+"), float(now)
        try:
            found = self._link.call(lambda c: c.fetchval(_PG_QUERY, to, at)) is not None
        except StoreUnavailable as exc:  # whatever it is, the answer is "no"
            return self._fail_closed(str(exc))
        if self._failing_since is not None:
            log.warning("platform egress: the store answers again after %.1f s"
                        " (%d lookups failed closed)",
                        time.monotonic() - self._failing_since, self._refused)  # fmt: skip
            self._failing_since, self._refused = None, 0
            self._hold = self._first_hold
        return found

    def close(self) -> None:
        """Close the connection and stop the private loop (idempotent)."""
        self._link.close()

    # -- the caller's thread -------------------------------------------------------

    def _fail_closed(self, why: str, *, asked: bool = True) -> bool:
        now = time.monotonic()
        self._refused += 1
        if self._failing_since is None:
            self._failing_since = now
        if asked:  # the next question waits a while, longer each time
            self._hold_until = now + self._hold
            self._hold = min(self._hold * 2, max(RECONNECT_MAX, self._first_hold))
        if self._refused == 1 or now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning("platform egress: the store could not answer (%s); failing closed"
                        " (%d lookups so far)", why, self._refused)  # fmt: skip
        return False


async def _check_schema(conn: Any, where: str) -> None:
    """``ValueError`` unless the database holds herald's messages and the lookup's index."""
    found = await conn.fetchrow("SELECT to_regclass('messages') IS NOT NULL AS messages,"
                                " to_regclass('messages_pending_to') IS NOT NULL AS index")
    if not (found["messages"] and found["index"]):
        # Without the index every lookup would read the table, past the bound
        # on any real history: all of them would fail closed.
        raise ValueError(
            f"{where} holds no herald store (no messages table: herald db migrate)"
            if not found["messages"] else
            f"{where}: the store's schema predates the guard's lookup index"
            " (messages_pending_to): herald db migrate"
        )  # fmt: skip
