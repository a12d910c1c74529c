"""The SQLite store itself: files, migrations, group commit, back-pressure, shutdown."""

from __future__ import annotations

import asyncio
import fcntl
import sqlite3
import stat
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from herald.ids import SortableIdGenerator
from herald.store import (
    Charge,
    DuplicateMessageId,
    NewMessage,
    PriceEntry,
    PriceKind,
    PriceSide,
    SchemaError,
    Source,
    SQLiteConfig,
    SQLiteStore,
    Status,
    StatusEvents,
    StoreBusy,
    StoreClosed,
    StoredPriceList,
)
from herald.store._schema import _V22_CDR_SUMS, MIGRATIONS, SCHEMA_VERSION
from herald.store._sqlite_conn import migrate
from herald.store._sqlite_margins import apply_margin_update, read_margins
from herald.store.sqlite import WRITE_LOCK_SUFFIX

from .conftest import T0

IDS = SortableIdGenerator()


def new_message(account_id: int, n: int = 0, **fields: object) -> NewMessage:
    values: dict[str, object] = {
        "id": IDS.new_id(T0), "account_id": account_id, "source": Source.HTTP,
        "to": f"+44770{n:07d}", "sender": "ACME", "body": b"hello", "encoding": "gsm7",
        "data_coding": 0, "segments": 1, "accepted_at": T0, "expires_at": T0 + 60,
    }  # fmt: skip
    values.update(fields)
    return NewMessage(**values)  # type: ignore[arg-type]


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    try:
        yield store
    finally:
        await store.aclose()


def _pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as db:
        value = db.execute(f"PRAGMA {name}").fetchone()[0]
    db.close()
    return value


# -- files and migrations ------------------------------------------------------------


async def test_a_fresh_data_dir_is_created_private_and_migrated(tmp_path: Path) -> None:
    data = tmp_path / "nested" / "data"
    store = SQLiteStore.open(SQLiteConfig(data_dir=data))
    account = await store.create_account("acme", T0, rate_limit=1.0, bind_limit=1)
    await store.accept([new_message(account.id)])
    await store.aclose()
    db = data / "herald.db"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert _pragma(db, "user_version") == SCHEMA_VERSION
    assert _pragma(db, "journal_mode") == "wal"


async def test_reopening_keeps_data_and_schema(tmp_path: Path) -> None:
    config = SQLiteConfig(data_dir=tmp_path)
    store = SQLiteStore.open(config)
    account = await store.create_account("acme", T0, rate_limit=1.0, bind_limit=1)
    message = new_message(account.id)
    await store.accept([message])
    await store.aclose()
    store = SQLiteStore.open(config)
    try:
        assert (await store.get_message(message.id)).to == message.to
        assert await store.list_accounts() == (account,)
    finally:
        await store.aclose()
    assert _pragma(tmp_path / "herald.db", "user_version") == SCHEMA_VERSION


def test_migrations_apply_in_order_and_only_once(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    config = SQLiteConfig(data_dir=tmp_path)
    steps = [
        "CREATE TABLE t (a INTEGER);",
        "INSERT INTO t VALUES (1);",
        "ALTER TABLE t ADD COLUMN b TEXT; UPDATE t SET b = 'x';",
    ]
    migrate(path, config, steps[:2])
    assert _pragma(path, "user_version") == 2
    migrate(path, config, steps)  # only the third runs: one row, not two
    migrate(path, config, steps)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT a, b FROM t").fetchall() == [(1, "x")]
    db.close()
    assert _pragma(path, "user_version") == 3


def test_a_failed_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    config = SQLiteConfig(data_dir=tmp_path)
    steps = ["CREATE TABLE t (a INTEGER);", "CREATE TABLE half (x); CREATE TABL oops;"]
    with pytest.raises(SchemaError, match="migration 2"):
        migrate(path, config, steps)
    assert _pragma(path, "user_version") == 1
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert tables == {"t"}


async def test_segments_waiting_for_a_receipt_before_v7_are_checked_an_hour_after(
    tmp_path: Path,
) -> None:
    """An upgrade from schema 6: segments waiting then get a check (3600 s after
    their record), so messages whose receipt was lost before it do not stay sent."""
    path = tmp_path / "herald.db"
    config = SQLiteConfig(data_dir=tmp_path)
    migrate(path, config, MIGRATIONS[:6])
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO accounts (name, created_at, rate_limit, bind_limit)"
                   " VALUES ('acme', 0, 1, 1)")
        for seq, status in ((1, Status.SENT), (2, Status.DELIVERED)):
            db.execute(
                "INSERT INTO messages (seq, id, account_id, source, to_addr, from_addr, body,"
                " encoding, data_coding, udhi, segments, registered_delivery, test, expires_at,"
                " status, accepted_at, sent_at) VALUES (?, ?, 1, 1, '+447700900001', 'ACME',"
                " x'00', 'gsm7', 0, 0, 1, 0, 0, ?, ?, ?, ?)",
                (seq, f"m{seq}", T0 + 86400, status, T0, T0 + 1))
            db.execute("INSERT INTO segments (message_seq, idx, connector, upstream_id,"
                       " upstream_key, status, updated_at) VALUES (?, 0, 'up1', ?, ?, ?, ?)",
                       (seq, f"U{seq}", f"u{seq}", status, T0 + 1))
    db.close()
    store = SQLiteStore.open(config)
    try:
        assert await store.due_receipt_checks(T0 + 3600, limit=10) == ()
        (due,) = await store.due_receipt_checks(T0 + 3601, limit=10)
        assert (due.message_id, due.upstream_id, due.checks) == ("m1", "U1", 0)
    finally:
        await store.aclose()


async def test_an_upgrade_to_v13_keeps_claims_held_and_subscribes_to_cancelled(
    tmp_path: Path,
) -> None:
    """From schema 12: a message queued then counts as held until its due_at (a
    lease, or a backoff: the safe side), and an account that heard of every final
    status hears of ``cancelled`` too; one that chose fewer does not."""
    path = tmp_path / "herald.db"
    config = SQLiteConfig(data_dir=tmp_path)
    migrate(path, config, MIGRATIONS[:12])
    with sqlite3.connect(path) as db:
        for name, events in (("all", 31748), ("final", 31744), ("delivered", 1024)):
            db.execute("INSERT INTO accounts (name, created_at, rate_limit, bind_limit,"
                       " webhook_events) VALUES (?, 0, 1, 1, ?)", (name, events))
        db.execute(
            "INSERT INTO messages (seq, id, account_id, source, to_addr, from_addr, body,"
            " encoding, data_coding, udhi, segments, registered_delivery, test, expires_at,"
            " status, accepted_at, due_at, attempt) VALUES (1, 'm1', 1, 1, '+447700900001',"
            " 'ACME', x'00', 'gsm7', 0, 0, 1, 0, 0, ?, 1, ?, ?, 1)",
            (T0 + 86400, T0, T0 + 30))
    db.close()
    store = SQLiteStore.open(config)
    try:
        events = [a.webhook_events for a in await store.list_accounts()]
        assert events == [StatusEvents.ALL, StatusEvents.FINAL, StatusEvents.DELIVERED]
        assert (await store.cancel("m1", T0 + 29, account_id=1)).outcome.name == "IN_PROGRESS"
        assert (await store.cancel("m1", T0 + 30, account_id=1)).outcome.name == "APPLIED"
    finally:
        await store.aclose()


def test_a_newer_foreign_or_missing_database_is_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer"
    SQLiteStore.open(SQLiteConfig(data_dir=newer)).close()
    with sqlite3.connect(newer / "herald.db") as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(SchemaError, match="schema version"):
        SQLiteStore.open(SQLiteConfig(data_dir=newer))

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "herald.db").write_bytes(b"this is not a database, it is a text file" * 100)
    with pytest.raises(SchemaError, match="not a herald database"):
        SQLiteStore.open(SQLiteConfig(data_dir=foreign))

    with pytest.raises(SchemaError, match="no herald database"):
        SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "missing", create=False))
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(("mode", "code"), [("NORMAL", 1), ("FULL", 2)])
async def test_the_synchronous_mode_is_what_the_config_says(
    tmp_path: Path, mode: str, code: int
) -> None:
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path, synchronous=mode))  # type: ignore[arg-type]
    try:
        got = await store._write(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
        assert got == code
    finally:
        await store.aclose()


def test_bad_settings_are_refused() -> None:
    for bad in (
        {"synchronous": "OFF"}, {"commit_interval": -1.0}, {"max_batch": 0},
        {"max_pending": 0}, {"readers": 0}, {"busy_timeout": -1.0},
        {"quiet_interval": -0.1}, {"quiet_interval": 2.0}, {"quiet_rate": -1.0},
    ):  # fmt: skip
        with pytest.raises(ValueError):
            SQLiteConfig(**bad)


# -- group commit --------------------------------------------------------------------


class _Gate:
    """Holds the writer thread inside a transaction until opened."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, conn: sqlite3.Connection) -> None:
        self.entered.set()
        self.release.wait(10)

    async def close_on(self, store: SQLiteStore) -> asyncio.Future[object]:
        future = store._writer.submit(None, self)
        assert await asyncio.to_thread(self.entered.wait, 10)
        return future


async def test_an_acknowledged_write_is_already_committed(opened: SQLiteStore) -> None:
    """Another connection sees each write the moment its writer is answered."""
    account = await opened.create_account("acme", T0, rate_limit=1.0, bind_limit=1)
    raw = sqlite3.connect(opened.config.path, check_same_thread=False)

    async def accept_then_look(n: int) -> bool:
        message = new_message(account.id, n)
        await opened.accept([message])
        row = raw.execute("SELECT status FROM messages WHERE id = ?", (message.id,)).fetchone()
        return bool(row == (Status.ACCEPTED,))

    try:
        assert all(await asyncio.gather(*(accept_then_look(n) for n in range(300))))
    finally:
        raw.close()
    assert opened.commits < opened.writes  # and they did share transactions


async def test_writes_queued_together_commit_together(opened: SQLiteStore) -> None:
    account = await opened.create_account("acme", T0, rate_limit=1.0, bind_limit=1)
    gate = _Gate()
    held = await gate.close_on(opened)
    tasks = [asyncio.create_task(opened.accept([new_message(account.id, n)])) for n in range(50)]
    await asyncio.sleep(0.05)
    assert not any(t.done() for t in tasks)  # nobody is told before the commit
    commits = opened.commits
    gate.release.set()
    await held
    await asyncio.gather(*tasks)
    assert opened.commits == commits + 2  # the gate's transaction, then all fifty in one


async def test_a_bad_write_fails_only_its_own_caller(opened: SQLiteStore) -> None:
    account = await opened.create_account("acme", T0, rate_limit=1.0, bind_limit=1)
    taken = new_message(account.id)
    await opened.accept([taken])
    gate = _Gate()
    held = await gate.close_on(opened)
    good = [new_message(account.id, n) for n in range(5)]
    tasks = [asyncio.create_task(opened.accept([m])) for m in good[:2]]
    tasks.append(asyncio.create_task(opened.accept([new_message(account.id, id=taken.id)])))
    tasks += [asyncio.create_task(opened.accept([m])) for m in good[2:]]
    await asyncio.sleep(0.01)
    gate.release.set()
    await held
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(r) for r in results] == [type(None)] * 2 + [DuplicateMessageId] + [type(None)] * 3
    for m in good:
        assert (await opened.get_message(m.id)).id == m.id


async def test_the_writer_pushes_back_when_too_much_is_queued(tmp_path: Path) -> None:
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path, max_pending=3))
    try:
        account = await store.create_account("acme", T0, rate_limit=1.0, bind_limit=1)
        gate = _Gate()
        held = await gate.close_on(store)
        queued = [asyncio.create_task(store.accept([new_message(account.id, n)])) for n in range(3)]
        await asyncio.sleep(0.01)
        with pytest.raises(StoreBusy):
            await store.accept([new_message(account.id, 9)])
        gate.release.set()
        await held
        await asyncio.gather(*queued)
        await store.accept([new_message(account.id, 10)])  # room again
    finally:
        await store.aclose()


async def test_closing_commits_what_was_queued_then_refuses(tmp_path: Path) -> None:
    config = SQLiteConfig(data_dir=tmp_path)
    store = SQLiteStore.open(config)
    account = await store.create_account("acme", T0, rate_limit=1.0, bind_limit=1)
    messages = [new_message(account.id, n) for n in range(40)]
    tasks = [asyncio.create_task(store.accept([m])) for m in messages]
    await asyncio.sleep(0)  # every task has queued its write
    await store.aclose()
    await asyncio.gather(*tasks)
    with pytest.raises(StoreClosed):
        await store.accept([new_message(account.id)])
    store = SQLiteStore.open(config)
    try:
        for m in messages:
            assert (await store.get_message(m.id)).id == m.id
    finally:
        await store.aclose()


async def test_a_commit_interval_gathers_writes_into_fewer_transactions(tmp_path: Path) -> None:
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path, commit_interval=0.05))
    try:
        account = await store.create_account("acme", T0, rate_limit=1.0, bind_limit=1)
        before = store.commits
        await asyncio.gather(*(store.accept([new_message(account.id, n)]) for n in range(100)))
        assert store.commits - before <= 3
    finally:
        await store.aclose()


async def test_reads_after_close_raise_store_closed(tmp_path: Path) -> None:
    from herald.store import StoreClosed

    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "closed"))
    await store.aclose()
    with pytest.raises(StoreClosed):
        await store.get_message("nope")


async def test_writers_of_every_process_queue_on_the_write_lock(tmp_path: Path) -> None:
    """A transaction starts only under the database's write lock, so writers in
    several processes (intake and dispatch) take turns in the kernel's queue
    instead of SQLite's sleeping busy handler."""
    config = SQLiteConfig(data_dir=tmp_path / "data")
    first, second = SQLiteStore.open(config), SQLiteStore.open(config)  # two writers, one file
    lock_path = config.path.with_name(config.path.name + WRITE_LOCK_SUFFIX)
    try:
        # Another writer holds the lock: this process's write must wait for it...
        with lock_path.open("a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            create = first.create_account("a", T0, rate_limit=1, bind_limit=1)
            waiting = asyncio.ensure_future(create)
            await asyncio.sleep(0.2)
            assert not waiting.done()
            fcntl.flock(held, fcntl.LOCK_UN)
            async with asyncio.timeout(5):
                await waiting  # ...and go on the moment it is released
        # Two writers at once: every write lands, none is refused as busy.
        async with asyncio.timeout(30):
            await asyncio.gather(*(
                (first if n % 2 else second).create_account(f"n{n}", T0, rate_limit=1,
                                                            bind_limit=1)
                for n in range(200)
            ))  # fmt: skip
        assert len(await first.list_accounts()) == 201
    finally:
        await first.aclose()
        await second.aclose()


async def test_the_loop_writer_commits_one_turns_writes_together(tmp_path: Path) -> None:
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data", writer="loop"))
    try:
        account = await store.create_account("acme", T0, rate_limit=1.0, bind_limit=1)
        before = store.commits
        messages = [new_message(account.id, n) for n in range(50)]
        # Fifty writers in one loop turn: one transaction, every one answered after it.
        await asyncio.gather(*(store.accept([m]) for m in messages))
        assert store.commits == before + 1 and store.writes >= 51
        with sqlite3.connect(store.config.path) as raw:
            assert raw.execute("SELECT count(*) FROM messages").fetchone() == (50,)
        raw.close()
        # Closing commits what is queued, then refuses.
        late = asyncio.ensure_future(store.accept([new_message(account.id, 99)]))
        await asyncio.sleep(0)  # submitted, not yet flushed
        await store.aclose()
        await late
        with pytest.raises(StoreClosed):
            await store.accept([new_message(account.id, 100)])
    finally:
        await store.aclose()


async def test_the_loop_writer_waits_for_company_only_while_writes_are_rare(
    tmp_path: Path,
) -> None:
    # The delivery process's setting (docs/performance.md): under quiet_rate writes
    # a second, a write waits quiet_interval for others to share its transaction;
    # above it, it commits in the next loop turn.
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data", writer="loop",
                                          quiet_interval=0.2, quiet_rate=1000))
    try:
        account = await store.create_account("acme", T0, rate_limit=1.0, bind_limit=1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        first = asyncio.ensure_future(store.accept([new_message(account.id, 0)]))
        await asyncio.sleep(0.05)
        assert not first.done()  # quiet: waiting for company
        second = asyncio.ensure_future(store.accept([new_message(account.id, 1)]))
        before = store.commits
        await asyncio.gather(first, second)
        assert store.commits == before + 1  # one transaction for both
        assert loop.time() - started >= 0.2
        # Busy: 2,000 writes a second over the last window (over quiet_rate)
        # commit at once.
        writer = store._writer
        writer._rate_since, writer._rate_count = loop.time() - 0.1, 200
        third = asyncio.ensure_future(store.accept([new_message(account.id, 2)]))
        for _ in range(5):
            await asyncio.sleep(0)
        assert third.done()
    finally:
        await store.aclose()


async def test_margin_sums_are_made_at_upgrade_and_stored_once(tmp_path: Path) -> None:
    # CDRs stored before the rollups existed: the upgrade sums them (no read has to
    # catch up); two reads of one state both answer right, and only one stores its sums.
    config = SQLiteConfig(data_dir=tmp_path)
    store = SQLiteStore.open(config)
    account = await store.create_account("acme", T0, rate_limit=10.0, bind_limit=1)
    await store.put_price_list(StoredPriceList(PriceSide.SELL, str(account.id), (
        PriceEntry(PriceKind.DEFAULT, "", 1_000_000),), T0))  # fmt: skip
    await store.adjust_balance(account.id, add=10**9)
    ids = SortableIdGenerator()

    def message(at: float) -> NewMessage:
        return NewMessage(id=ids.new_id(at), account_id=account.id, source=Source.HTTP,
                          to="447700900123", sender="HERALD", body=b"hi", encoding="gsm7",
                          data_coding=0, segments=1, accepted_at=at, expires_at=at + 86400)

    for k in range(5):
        await store.accept([message(T0 + k)], charges=[Charge("44", None, "+44", 100)])
    await store.aclose()
    with sqlite3.connect(tmp_path / "herald.db") as conn:  # back to before the rollups
        conn.executescript("DROP TABLE cdr_sums; DROP TABLE cdr_sums_pending;"
                           " DROP TABLE cdr_sums_mark")
    conn.close()
    with sqlite3.connect(tmp_path / "herald.db") as conn:  # the upgrade, on these CDRs
        conn.executescript(_V22_CDR_SUMS)
    conn.close()
    store = SQLiteStore.open(config)
    try:
        with sqlite3.connect(tmp_path / "herald.db") as conn:
            assert conn.execute("SELECT last_seq, version FROM cdr_sums_mark").fetchone() == (5, 0)
            assert conn.execute("SELECT count(*) FROM cdr_sums_pending").fetchone() == (5,)
            assert conn.execute("SELECT sum(messages), sum(revenue) FROM cdr_sums"
                                ).fetchone() == (5, 500)  # fmt: skip
        await store.accept([message(T0 + 10)], charges=[Charge("44", None, "+44", 100)])
        with sqlite3.connect(tmp_path / "herald.db", isolation_level=None) as conn:
            first = read_margins(conn, T0, T0 + 60, None)
            second = read_margins(conn, T0, T0 + 60, None)
            assert first[0] == second[0] == {(account.id, "", "44"): [6, 600, 0, 0]}
            assert first[1] is not None and second[1] is not None
            conn.execute("BEGIN IMMEDIATE")
            assert apply_margin_update(conn, first[1])
            assert not apply_margin_update(conn, second[1])  # the sums moved on: not twice
            conn.execute("COMMIT")
            assert read_margins(conn, T0, T0 + 60, None) == (first[0], None)
        (row,) = await store.margin(T0, T0 + 60, "account")
        assert (row.key, row.messages, row.revenue) == (str(account.id), 6, 600)
    finally:
        await store.aclose()


def test_groups_said_not_to_step_change_no_status() -> None:
    """A transaction of ``steps=False`` groups only writes nothing a status change
    emits (the writer skips looking): none of them may update a status."""
    import re

    from herald.store import _sqlite_attempts, _sqlite_billing, _sqlite_sql
    from herald.store._writer import Group

    quiet = [g for module in (_sqlite_sql, _sqlite_attempts, _sqlite_billing)
             for g in vars(module).values() if isinstance(g, Group) and not g.steps]
    assert {g.name for g in quiet} >= {"accept", "accept-billed", "queued", "outbox-done"}
    for group in quiet:
        for sql in group.statements:
            sets_status = re.search(r"UPDATE\s+messages\s+SET\b.*\bstatus\s*=\s*(\d+|\?)", sql)
            if sets_status is not None:  # only to queued, which emits nothing
                assert sets_status.group(1) == str(int(Status.QUEUED)), (group.name, sql)
        # what runs after the statements: reviewed here (it deletes outbox rows)
        assert group.then in (None, _sqlite_sql._outbox_done), group.name


async def test_lifecycle_triggers_of_earlier_versions_are_dropped_at_open(tmp_path: Path) -> None:
    from herald.store._sqlite_lifecycle import RETIRED

    config = SQLiteConfig(data_dir=tmp_path)
    SQLiteStore.open(config).close()
    with sqlite3.connect(tmp_path / "herald.db") as conn:  # as an earlier version left it
        for name in RETIRED:
            conn.execute(f"CREATE TRIGGER {name} AFTER UPDATE OF status ON messages"
                         " BEGIN SELECT 1; END")
    conn.close()
    store = SQLiteStore.open(config)
    try:
        with sqlite3.connect(tmp_path / "herald.db") as conn:
            names = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        conn.close()
        assert not names & set(RETIRED)
        assert "inbound_events" in names
    finally:
        await store.aclose()
