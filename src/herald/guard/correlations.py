"""SMS home routing's correlations in SQLite: they survive a restart of the
proxy and are shared by the proxies of one home network on one machine.

Two tables in ``DATA_DIR/guard-state.db`` (its own file, created readable
by its owner only: herald's store and its console never see it): the
correlations, and the delivery dialogues restored with them (written at the
delivery's TC-BEGIN, deleted after its end at the next ``expire``, kept at
most twice ``dialogue_ttl_s``). Each row is sealed (:mod:`herald.signaling.correlations`):
its key is a keyed hash of the correlation IMSI (of the SMSC's GT and
transaction id for a dialogue), its fields (real IMSI, serving node, SMSC,
answer time) are encrypted and authenticated with a key derived from the
policy's salt; only the deadline is in clear, for the purge. So the file names no subscriber,
node or correlation id to whoever reads it without the policy.

Every call is one statement in its own transaction (autocommit; WAL; a
concurrent writer is waited for up to :data:`BUSY_TIMEOUT_MS`): a correlation
is on disk, and visible to every proxy, before the answer that hands it out
leaves, and ``take`` (``DELETE ... RETURNING``) gives a row to exactly one
taker. ``synchronous=NORMAL``: a committed row survives the process dying, not
necessarily the machine losing power (the SMSC then asks again). WAL
checkpoints, the only writes that wait for the disk, run in ``expire`` (the
proxy's one-second timer), with the purge and the ended dialogues' deletes.

Bounded: rows are numbered as they are added, and a trigger drops every row
more than ``limit`` behind the newest (the oldest); dead rows are purged by
:meth:`SQLiteCorrelations.expire` (the proxy's one-second timer) and never
served before that (``take`` checks the deadline).

Times: the table holds wall-clock seconds (the proxies' monotonic clocks do
not agree); each call converts from and to the caller's clock by the
interval from ``now``.

A PostgreSQL store would keep the same rows (sealed by the same functions)
in a table of herald's database, ``take`` being ``DELETE ... RETURNING`` too.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from herald.signaling.correlations import (
    Correlation,
    RoutedRecord,
    dialogue_row,
    row_key,
    seal,
    seal_blob,
    seal_routed,
    sealing_key,
    unseal,
    unseal_blob,
    unseal_routed,
)

log = logging.getLogger("herald.guard.correlations")

__all__ = ["BUSY_TIMEOUT_MS", "CHANGES_KEPT", "FILE_NAME", "MAX_SNAPSHOTS", "SNAPSHOT_FILE_NAME",
           "SNAPSHOT_MAX_AGE", "SQLiteCorrelations", "SQLiteLookups", "SQLiteSnapshots",
           "lookup_id"]  # fmt: skip

FILE_NAME = "guard-state.db"
SNAPSHOT_FILE_NAME = "guard-snapshots.db"
# How long a call waits for another proxy's write to the same file, ms (each
# write is one short statement: a wait this long means a stuck peer).
BUSY_TIMEOUT_MS = 2_000
_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS home_routing_correlations (
    seq INTEGER PRIMARY KEY,      -- order added: the bound drops the oldest
    id BLOB NOT NULL UNIQUE,      -- keyed hash of the correlation IMSI
    deadline REAL NOT NULL,       -- wall clock, seconds since the epoch
    sealed BLOB NOT NULL          -- nonce, encrypted fields, tag
);
CREATE INDEX IF NOT EXISTS home_routing_correlations_deadline
    ON home_routing_correlations (deadline);
CREATE TABLE IF NOT EXISTS home_routing_settings (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    max_entries INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS home_routing_correlations_bound
AFTER INSERT ON home_routing_correlations BEGIN
    DELETE FROM home_routing_correlations
    WHERE seq <= NEW.seq - (SELECT max_entries FROM home_routing_settings WHERE one = 1);
END;
CREATE TABLE IF NOT EXISTS home_routing_dialogues (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,      -- keyed hash of (SMSC GT, SMSC transaction id)
    deadline REAL NOT NULL,
    sealed BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS home_routing_dialogues_deadline
    ON home_routing_dialogues (deadline);
CREATE TABLE IF NOT EXISTS sms_lookups (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,      -- keyed hash of (SMSC GT, salted hash of the IMSI)
    deadline REAL NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,  -- a delivery followed (find)
    sealed BLOB NOT NULL          -- serving node, when answered
);
CREATE INDEX IF NOT EXISTS sms_lookups_deadline ON sms_lookups (deadline);
CREATE TRIGGER IF NOT EXISTS home_routing_dialogues_bound
AFTER INSERT ON home_routing_dialogues BEGIN
    DELETE FROM home_routing_dialogues
    WHERE seq <= NEW.seq - (SELECT max_entries FROM home_routing_settings WHERE one = 1);
END;
"""
# In a file of their own: writing a snapshot (megabytes) holds its file's
# write lock for tens of milliseconds, which the correlations, committed on the
# event loop at each home-routed answer, must not wait for.
_SNAPSHOT_SCHEMA = """
CREATE TABLE IF NOT EXISTS engine_snapshots (
    proxy TEXT PRIMARY KEY,       -- a random id per proxy process
    written REAL NOT NULL,        -- wall clock
    sealed BLOB NOT NULL          -- the engine's snapshot (JSON), sealed
);
CREATE TABLE IF NOT EXISTS engine_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- order written, never reused
    proxy TEXT NOT NULL,          -- who wrote it (it skips its own)
    written REAL NOT NULL,        -- wall clock
    sealed BLOB NOT NULL          -- what changed in its engine since its last share
);
"""
_TABLES = ("home_routing_correlations", "home_routing_dialogues")

_ADD = """
INSERT INTO home_routing_correlations (id, deadline, sealed) VALUES (?, ?, ?)
ON CONFLICT (id) DO UPDATE SET deadline = excluded.deadline, sealed = excluded.sealed
WHERE home_routing_correlations.deadline <= ?
"""
_TAKE = "DELETE FROM home_routing_correlations WHERE id = ? RETURNING deadline, sealed"
_PUT_DIALOGUE = """
INSERT INTO home_routing_dialogues (id, deadline, sealed) VALUES (?, ?, ?)
ON CONFLICT (id) DO UPDATE SET deadline = excluded.deadline, sealed = excluded.sealed
"""
_FIND_DIALOGUE = "SELECT deadline, sealed FROM home_routing_dialogues WHERE id = ?"
_DROP_DIALOGUE = "DELETE FROM home_routing_dialogues WHERE id = ?"


# Ended dialogues whose rows are dropped in one transaction at most (else at
# the next expire()).
_ENDED_BATCH = 1024



def _connect(
    data_dir: Path, name: str = FILE_NAME, schema: str = _SCHEMA
) -> tuple[Path, sqlite3.Connection]:
    """``data_dir/name``, created owner-only if missing, ``schema`` in place.
    Raises OSError or sqlite3.Error if it cannot be opened or is not the
    guard's state."""
    path = data_dir / name
    # Created owner-only before SQLite opens it (it would use the umask).
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, _SCHEMA_VERSION):
        db.close()
        raise sqlite3.DatabaseError(
            f"{path}: guard state version {version}, this herald knows {_SCHEMA_VERSION}"
        )
    db.executescript("BEGIN IMMEDIATE;" + schema + f"PRAGMA user_version = {_SCHEMA_VERSION};"
                     "COMMIT;")  # fmt: skip
    return path, db


class SQLiteCorrelations:
    """:class:`~herald.signaling.correlations.CorrelationStore` in
    ``data_dir/guard-state.db`` (created if missing), sealed with the key of
    ``salt`` (the policy's), at most ``limit`` rows. ``clock`` is the wall
    clock (tests move it). Raises OSError or sqlite3.Error if the file cannot
    be opened or is not a correlation store."""

    def __init__(
        self,
        data_dir: Path,
        salt: bytes,
        limit: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path, self._db = _connect(Path(data_dir))
        self._clock = clock
        self._key = sealing_key(salt)
        # Checkpoints (the only writes that wait for the disk under WAL and
        # NORMAL) run on the timer, in expire(), not inside a message's commit.
        self._db.execute("PRAGMA wal_autocheckpoint = 0")
        self._ended: set[bytes] = set()  # dialogue rows to drop at the next expire()
        self.set_limit(limit)

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------ CorrelationStore

    def add(self, correlation_id: str, entry: Correlation, now: float) -> bool:
        wall = self._clock()
        row = row_key(self._key, correlation_id)
        sealed = seal(
            self._key,
            row,
            (entry.imsi, entry.node, entry.smsc_gt, entry.service_centre,
             repr(wall + (entry.answered - now))),
        )  # fmt: skip
        cur = self._db.execute(_ADD, (row, wall + (entry.deadline - now), sealed, wall))
        return cur.rowcount > 0

    def take(self, correlation_id: str, now: float) -> Correlation | None:
        row = row_key(self._key, correlation_id)
        found = self._db.execute(_TAKE, (row,)).fetchall()
        if not found:
            return None
        deadline, sealed = found[0]
        wall = self._clock()
        if deadline <= wall:
            return None
        fields = unseal(self._key, row, sealed, 5)
        if fields is None:  # sealed under another salt, or altered: not ours to trust
            return None
        imsi, node, smsc_gt, service_centre, answered = fields
        return Correlation(
            now + (deadline - wall), imsi, node, smsc_gt, service_centre,
            now + (float(answered) - wall),
        )  # fmt: skip

    def expire(self, now: float) -> None:
        wall = self._clock()
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for table in _TABLES:
                db.execute(f"DELETE FROM {table} WHERE deadline <= ?", (wall,))
            db.executemany(_DROP_DIALOGUE, [(row,) for row in self._ended])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._ended.clear()
        db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def set_limit(self, limit: int) -> None:
        db = self._db
        db.execute(
            "INSERT INTO home_routing_settings (one, max_entries) VALUES (1, ?)"
            " ON CONFLICT (one) DO UPDATE SET max_entries = excluded.max_entries",
            (limit,),
        )
        # Cut now to the new bound (the triggers apply it on the next insert).
        for table in _TABLES:
            db.execute(
                f"DELETE FROM {table} WHERE seq <= (SELECT max(seq) FROM {table}) - ?", (limit,)
            )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM home_routing_correlations").fetchone()[0])

    def put_dialogue(self, key: tuple[str, bytes], record: RoutedRecord, now: float) -> None:
        wall = self._clock()
        row = dialogue_row(self._key, *key)
        self._ended.discard(row)  # the SMSC reuses its transaction id
        sealed = seal_routed(self._key, row, record)
        self._db.execute(_PUT_DIALOGUE, (row, wall + (record.deadline - now), sealed))

    def find_dialogue(self, key: tuple[str, bytes], now: float) -> RoutedRecord | None:
        row = dialogue_row(self._key, *key)
        if row in self._ended:
            return None
        found = self._db.execute(_FIND_DIALOGUE, (row,)).fetchone()
        if found is None:
            return None
        deadline, sealed = found
        wall = self._clock()
        if deadline <= wall:
            return None
        return unseal_routed(self._key, row, sealed, now + (deadline - wall))

    def drop_dialogue(self, key: tuple[str, bytes]) -> None:
        # Deferred to the next expire() (one transaction a second for all):
        # an ended dialogue's row serves nothing, and costs a commit per SMS.
        self._ended.add(dialogue_row(self._key, *key))
        if len(self._ended) >= _ENDED_BATCH:
            self.expire(0.0)


def lookup_id(requester: str, subscriber: str) -> str:
    """What a shared SRI-SM answer is found by (then hashed with the key)."""
    return f"lookup {requester} {subscriber}"


class SQLiteLookups:
    """:class:`~herald.signaling.policy.egress.SharedLookups` in
    ``data_dir/guard-state.db``: each SRI-SM answer about a home subscriber
    is committed before the proxy forwards it (:meth:`flush`, one
    transaction for the batch of messages it judged together), so the
    delivery that follows finds it through any proxy of the directory.
    Rows are sealed like the correlations (key: a keyed hash of the SMSC's GT
    and the IMSI's salted hash; fields: serving node and answer time), at
    most ``limit`` (the oldest purged by :meth:`expire`, the proxy's
    one-second timer, with the dead). A database error is logged and
    answered as "none" (the delivery is then judged on this proxy's own)."""

    def __init__(self, data_dir: Path, salt: bytes, limit: int,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.path, self._db = _connect(Path(data_dir))
        self._db.execute("PRAGMA wal_autocheckpoint = 0")  # on the timer (expire)
        self._key = sealing_key(salt)
        self._clock = clock
        self.limit = limit
        self._warned = -60.0
        self._unwritten: list[tuple[bytes, float, bytes]] = []

    def close(self) -> None:
        self.flush()
        self._db.close()

    def _failed(self, exc: sqlite3.Error) -> None:
        if time.monotonic() - self._warned >= 60.0:
            self._warned = time.monotonic()
            log.warning("shared SMS lookups: the store failed (%s)", exc)

    def answered(self, requester: str, subscriber: str, node: str, when: float,
                 until: float) -> None:  # fmt: skip
        """Kept until :meth:`flush` (the proxy's, before it writes out the
        batch of messages that judged this answer): one commit a batch."""
        wall = self._clock()
        row = row_key(self._key, lookup_id(requester, subscriber))
        sealed = seal(self._key, row, (node, repr(wall)))
        self._unwritten.append((row, wall + (until - when), sealed))

    def flush(self) -> None:
        """Commit the answers kept since the last flush, in one transaction."""
        rows, self._unwritten = self._unwritten, []
        if not rows:
            return
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(_PUT_LOOKUP, rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self._failed(exc)

    def find(self, requester: str, subscriber: str, now: float) -> tuple[float, str] | None:
        self.flush()
        row = row_key(self._key, lookup_id(requester, subscriber))
        try:
            found = self._db.execute(_FIND_LOOKUP, (row,)).fetchone()
        except sqlite3.Error as exc:
            self._failed(exc)
            return None
        wall = self._clock()
        if found is None or found[0] <= wall:
            return None
        fields = unseal(self._key, row, found[1], 2)
        if fields is None:
            return None
        node, answered = fields
        return now + (float(answered) - wall), node

    def delivered(self, requester: str, subscriber: str) -> bool:
        row = row_key(self._key, lookup_id(requester, subscriber))
        try:
            found = self._db.execute(_DELIVERED, (row,)).fetchone()
        except sqlite3.Error as exc:
            self._failed(exc)
            return False
        return found is not None and bool(found[0])

    def expire(self) -> None:
        db, wall = self._db, self._clock()
        try:
            db.execute("DELETE FROM sms_lookups WHERE deadline <= ?"
                       " OR seq <= (SELECT max(seq) FROM sms_lookups) - ?",
                       (wall, self.limit))  # fmt: skip
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            self._failed(exc)


_PUT_LOOKUP = """
INSERT INTO sms_lookups (id, deadline, sealed) VALUES (?, ?, ?)
ON CONFLICT (id) DO UPDATE SET deadline = excluded.deadline, sealed = excluded.sealed,
    delivered = 0
"""
_FIND_LOOKUP = "UPDATE sms_lookups SET delivered = 1 WHERE id = ? RETURNING deadline, sealed"
_DELIVERED = "SELECT delivered FROM sms_lookups WHERE id = ?"


#: Seconds a share between proxies is kept (a proxy that falls further behind,
#: or starts, takes the snapshots and what is left).
CHANGES_KEPT = 120.0


def _change_row(key: bytes, proxy: str) -> bytes:
    return row_key(key, f"change {proxy}")


#: A snapshot older than this is not restored (state an hour old does not
#: describe the network now; a restart or a fail-over takes minutes).
SNAPSHOT_MAX_AGE = 3600.0
#: Snapshots kept (one per proxy process; the oldest go first).
MAX_SNAPSHOTS = 16


class SQLiteSnapshots:
    """The policy engines' snapshots (dialogues, locations, rates, SMS
    correlations, lookups, sweeps: :mod:`herald.signaling.policy.snapshot`)
    in ``data_dir/guard-snapshots.db``, one row per proxy process, sealed like
    the correlations. ``clock``: the wall clock."""

    def __init__(self, data_dir: Path, salt: bytes, clock: Callable[[], float] = time.time
                 ) -> None:  # fmt: skip
        self.path, self._db = _connect(Path(data_dir), SNAPSHOT_FILE_NAME, _SNAPSHOT_SCHEMA)
        self._key = sealing_key(salt)
        self._clock = clock

    def close(self) -> None:
        self._db.close()

    def save(self, proxy: str, data: bytes) -> None:
        """Keep ``data`` as ``proxy``'s latest snapshot (replacing its last);
        forget snapshots past :data:`SNAPSHOT_MAX_AGE` or beyond
        :data:`MAX_SNAPSHOTS`."""
        now = self._clock()
        sealed = seal_blob(self._key, row_key(self._key, f"snapshot {proxy}"), data)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT INTO engine_snapshots (proxy, written, sealed) VALUES (?, ?, ?)"
                " ON CONFLICT (proxy) DO UPDATE SET written = excluded.written,"
                " sealed = excluded.sealed",
                (proxy, now, sealed),
            )
            db.execute("DELETE FROM engine_snapshots WHERE written < ? OR proxy NOT IN"
                       " (SELECT proxy FROM engine_snapshots ORDER BY written DESC LIMIT ?)",
                       (now - SNAPSHOT_MAX_AGE, MAX_SNAPSHOTS))  # fmt: skip
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def load(self) -> list[tuple[float, bytes]]:
        """Every snapshot younger than :data:`SNAPSHOT_MAX_AGE` that opens with
        this salt, oldest first, as (age in seconds, data)."""
        now = self._clock()
        rows = self._db.execute(
            "SELECT proxy, written, sealed FROM engine_snapshots WHERE written >= ?"
            " ORDER BY written", (now - SNAPSHOT_MAX_AGE,)
        ).fetchall()
        out = []
        for proxy, written, sealed in rows:
            data = unseal_blob(self._key, row_key(self._key, f"snapshot {proxy}"), sealed)
            if data is not None:
                out.append((max(0.0, now - written), data))
        return out

    def share(self, proxy: str, data: bytes) -> None:
        """Append what changed in ``proxy``'s engine since its last share
        (see :meth:`shared`); forget shares older than :data:`CHANGES_KEPT`."""
        now = self._clock()
        sealed = seal_blob(self._key, _change_row(self._key, proxy), data)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO engine_changes (proxy, written, sealed) VALUES (?, ?, ?)",
                       (proxy, now, sealed))  # fmt: skip
            db.execute("DELETE FROM engine_changes WHERE written < ?", (now - CHANGES_KEPT,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def shared(self, after: int, proxy: str) -> tuple[int, list[tuple[float, bytes]]]:
        """The shares other proxies than ``proxy`` appended after ``after``,
        oldest first, as (age in seconds, data); and the last seq read (pass
        it as ``after`` next time; 0 at first)."""
        now = self._clock()
        rows = self._db.execute(
            "SELECT seq, proxy, written, sealed FROM engine_changes WHERE seq > ? ORDER BY seq",
            (after,),
        ).fetchall()
        out = []
        for seq, writer, written, sealed in rows:
            after = max(after, seq)
            if writer == proxy:
                continue
            data = unseal_blob(self._key, _change_row(self._key, writer), sealed)
            if data is not None:
                out.append((max(0.0, now - written), data))
        return after, out
