"""The store's answer to the signaling guard's platform-egress question.

``herald.signaling.policy.PendingMessages`` asks, for every SRI-SM and
MT-ForwardSM the platform sends from its own global titles: is a customer
message to this number queued and not yet final? ``SQLitePendingMessages``
answers from herald's SQLite store with one indexed lookup
(``messages_pending_to``) on its own read-only connection, so the guard's
synchronous engine can call it without the store's writer or reader threads.

It fails closed: if the database cannot answer (locked past the busy timeout,
missing, corrupt), the answer is ``False`` and the signaling is blocked.
Nothing here reads or returns anything but a yes/no about a number the
platform itself was asked to deliver to.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Final

from herald.store._model import Status
from herald.store._sqlite_conn import DB_FILENAME

__all__ = ["SQLitePendingMessages"]

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
