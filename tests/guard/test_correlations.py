"""SMS home routing's correlation stores: the in-memory table and SQLite (real
files in a temporary data directory), one contract; then what only a stored
one does: survive a restart, serve several proxies, keep its secrets sealed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from herald.guard.correlations import FILE_NAME, SQLiteCorrelations
from herald.signaling import decode
from herald.signaling.correlations import (
    Correlation,
    CorrelationStore,
    MemoryCorrelations,
    RoutedRecord,
    row_key,
    seal,
    sealing_key,
    unseal,
)
from herald.signaling.homerouting import HomeRouter, Outcome
from herald.signaling.map_types import ForwardSmArg, RoutingInfoForSmRes
from herald.signaling.message import ReturnError, ReturnResult

from . import m3ua_fixtures as fx
from .builders import FOREIGN, HOME_IMSI, MSC_HOME, policy
from .test_homerouting import HOME_ROUTING, OTHER_FOREIGN, ROUTER, leaked

SALT = policy().salt
ID = "001019000000001"


class Clock:
    """A wall clock the test moves."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def entry(now: float, ttl: float = 30.0, imsi: str = HOME_IMSI) -> Correlation:
    return Correlation(now + ttl, imsi, MSC_HOME, FOREIGN, FOREIGN, now)


@pytest.fixture(params=["memory", "sqlite"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[CorrelationStore, Clock]]:
    """A store whose clock and ``now`` agree (the contract's view)."""
    clock = Clock()
    if request.param == "memory":
        yield MemoryCorrelations(4), clock
        return
    s = SQLiteCorrelations(tmp_path, SALT, 4, clock)
    yield s, clock
    s.close()


# ------------------------------------------------------------------ contract


def test_a_correlation_is_taken_once(store: tuple[CorrelationStore, Clock]) -> None:
    s, clock = store
    now = clock.t
    assert s.add(ID, entry(now), now)
    assert len(s) == 1
    clock.t += 1
    assert s.take(ID, now + 1) == entry(now)
    assert s.take(ID, now + 1) is None
    assert len(s) == 0


def test_a_live_id_is_not_given_twice(store: tuple[CorrelationStore, Clock]) -> None:
    s, clock = store
    now = clock.t
    assert s.add(ID, entry(now), now)
    assert not s.add(ID, entry(now, imsi="001010000000009"), now)  # the caller draws again
    assert s.take(ID, now) == entry(now)


def test_an_expired_correlation_is_refused_and_its_id_free(
    store: tuple[CorrelationStore, Clock]
) -> None:
    s, clock = store
    now = clock.t
    s.add(ID, entry(now, ttl=30), now)
    clock.t += 30
    assert s.take(ID, now + 30) is None
    s.add(ID, entry(now, ttl=30), now)
    clock.t += 30
    assert s.add(ID, entry(now + 60), now + 60)  # the dead one does not hold its id
    assert s.take(ID, now + 60) == entry(now + 60)


def test_expire_purges_the_dead(store: tuple[CorrelationStore, Clock]) -> None:
    s, clock = store
    now = clock.t
    s.add("001019000000001", entry(now, ttl=10), now)
    s.add("001019000000002", entry(now, ttl=20), now)
    clock.t += 10
    s.expire(now + 10)
    assert len(s) == 1
    assert s.take("001019000000002", now + 10) is not None


def test_the_table_is_bounded_oldest_first(store: tuple[CorrelationStore, Clock]) -> None:
    s, clock = store
    now = clock.t
    ids = [f"00101900000000{i}" for i in range(6)]
    for i in ids:
        assert s.add(i, entry(now), now)
    assert len(s) == 4
    assert s.take(ids[0], now) is None and s.take(ids[1], now) is None
    s.set_limit(2)
    assert len(s) == 2  # cut to the new bound at once (ids 2..5 held, 2 and 3 go)
    assert s.take(ids[5], now) is not None


# ------------------------------------------------------------- SQLite only


def test_two_stores_on_one_directory_share_the_correlations(tmp_path: Path) -> None:
    """Two proxies of one home network: a correlation added by one is taken
    by the other, once."""
    clock = Clock()
    one = SQLiteCorrelations(tmp_path, SALT, 100, clock)
    two = SQLiteCorrelations(tmp_path, SALT, 100, clock)
    try:
        now = clock.t
        assert one.add(ID, entry(now), now)
        assert not two.add(ID, entry(now), now)  # live in the shared table
        assert two.take(ID, now) == entry(now)
        assert one.take(ID, now) is None
    finally:
        one.close()
        two.close()


def test_times_survive_a_change_of_the_callers_clock(tmp_path: Path) -> None:
    """The caller's clock is monotonic (the event loop's): a restarted proxy's
    starts elsewhere. The store carries intervals over the wall clock."""
    wall = Clock()
    first = SQLiteCorrelations(tmp_path, SALT, 100, wall)
    first.add(ID, Correlation(1000.0 + 30, HOME_IMSI, MSC_HOME, FOREIGN, FOREIGN, 1000.0), 1000.0)
    first.close()
    wall.t += 5  # five seconds later, a new process whose clock reads 2.0
    second = SQLiteCorrelations(tmp_path, SALT, 100, wall)
    got = second.take(ID, 2.0)
    second.close()
    assert got is not None
    assert got.deadline == pytest.approx(2.0 + 25) and got.answered == pytest.approx(2.0 - 5)


def test_the_file_names_no_subscriber_node_or_correlation_id(tmp_path: Path) -> None:
    clock = Clock()
    s = SQLiteCorrelations(tmp_path, SALT, 100, clock)
    s.add(ID, entry(clock.t), clock.t)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(FILE_NAME))
    assert leaked(raw, (HOME_IMSI, MSC_HOME, ID, FOREIGN)) == []
    # ... yet it holds them, sealed: the same store gives them back.
    assert s.take(ID, clock.t) == entry(clock.t)
    s.close()
    assert (tmp_path / FILE_NAME).stat().st_mode & 0o077 == 0  # owner only


def test_a_row_sealed_under_another_salt_or_altered_is_refused(tmp_path: Path) -> None:
    clock = Clock()
    s = SQLiteCorrelations(tmp_path, SALT, 100, clock)
    s.add(ID, entry(clock.t), clock.t)
    s.close()
    other = SQLiteCorrelations(tmp_path, b"another-salt-of-16-bytes", 100, clock)
    assert other.take(ID, clock.t) is None  # its key finds no row; nothing opens
    other.close()
    key = sealing_key(SALT)
    row = row_key(key, ID)
    fields = (HOME_IMSI, MSC_HOME, FOREIGN, FOREIGN, "1.5")
    sealed = seal(key, row, fields)
    assert unseal(key, row, sealed, 5) == fields
    flipped = sealed[:20] + bytes([sealed[20] ^ 1]) + sealed[21:]
    assert unseal(key, row, flipped, 5) is None
    assert unseal(key, row_key(key, "001019000000002"), sealed, 5) is None  # another row's
    assert unseal(sealing_key(b"another-salt-of-16-bytes"), row, sealed, 5) is None
    with pytest.raises(ValueError, match="not a correlation"):
        seal(key, row, ("1" * 300,))


def test_routed_dialogues_are_shared_until_they_end(tmp_path: Path) -> None:
    clock = Clock()
    one = SQLiteCorrelations(tmp_path, SALT, 100, clock)
    two = SQLiteCorrelations(tmp_path, SALT, 100, clock)
    key = (FOREIGN, b"\x01\x02\x03\x04")
    record = RoutedRecord(130.0, MSC_HOME, HOME_IMSI, ID, bytes.fromhex("1208"), (1, 2, 3, 0, 0, 5))
    try:
        one.put_dialogue(key, record, 10.0)
        assert two.find_dialogue((FOREIGN, b"\x01\x02\x03\x05"), 10.0) is None
        assert two.find_dialogue(key, 10.0) == record
        clock.t += 60  # another clock: the deadline moves with it
        assert two.find_dialogue(key, 0.0) == record._replace(deadline=60.0)
        two.drop_dialogue(key)
        assert two.find_dialogue(key, 0.0) is None
        assert one.find_dialogue(key, 0.0) is not None  # dropped at two's next expire()
        two.expire(0.0)
        assert one.find_dialogue(key, 70.0) is None
        one.put_dialogue(key, record, 10.0)
        clock.t += 120
        assert one.find_dialogue(key, 130.0) is None  # past its deadline
        one.expire(130.0)
        raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(FILE_NAME))
        assert leaked(raw, (HOME_IMSI, MSC_HOME, ID, FOREIGN)) == []
    finally:
        one.close()
        two.close()


def test_a_file_of_another_version_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(sqlite3.DatabaseError, match="version 99"):
        SQLiteCorrelations(tmp_path, SALT, 100)


# ------------------------------------------- the router over a restart


Route = Callable[[bytes, bool, float], Outcome | None]


def _router(tmp_path: Path, clock: Clock) -> tuple[HomeRouter, SQLiteCorrelations]:
    p = policy(HOME_ROUTING)
    store = SQLiteCorrelations(tmp_path, p.salt, p.home_routing.max_entries, clock)
    return HomeRouter(p, correlations=store), store


def _answered(router: HomeRouter, now: float) -> str:
    """A lookup from FOREIGN and the HLR's answer through ``router``: the
    correlation IMSI the SMSC got."""
    sri, otid = fx.sri_sm(FOREIGN)
    assert router.from_interconnect(decode(sri), now) is None
    out = router.to_interconnect(decode(fx.sri_sm_result(otid, FOREIGN)), now)
    assert out is not None and out.forward is not None
    (result,) = out.forward.tcap.components
    assert isinstance(result, ReturnResult) and isinstance(result.result, RoutingInfoForSmRes)
    return result.result.imsi


def _delivery(router: HomeRouter, smsc: str, correlation: str, now: float) -> Outcome:
    mt, _ = fx.mt_fsm_begin(smsc, imsi=correlation, called=ROUTER)
    out = router.from_interconnect(decode(mt), now)
    assert out is not None
    return out


def test_a_delivery_after_a_restart_is_restored(tmp_path: Path) -> None:
    clock = Clock()
    before, store = _router(tmp_path, clock)
    correlation = _answered(before, 500.0)
    store.close()  # the proxy stops; a new one starts, its own clock at 3.0
    clock.t += 4
    after, store = _router(tmp_path, clock)
    out = _delivery(after, FOREIGN, correlation, 3.0)
    store.close()
    assert out.refusal == "" and out.forward is not None
    assert out.forward.called_digits == MSC_HOME
    arg = out.forward.argument
    assert isinstance(arg, ForwardSmArg) and arg.da.imsi == HOME_IMSI
    assert out.lookup is not None and out.lookup.answered == pytest.approx(3.0 - 4)


@pytest.mark.parametrize(
    ("smsc", "wait", "replay", "reason"),
    [
        (FOREIGN, 30.0, False, "unknown, expired or used"),  # expired while down
        (OTHER_FOREIGN, 1.0, False, "issued to another SMSC"),  # foreign
        (FOREIGN, 1.0, True, "unknown, expired or used"),  # replayed across the restart
    ],
    ids=["expired", "foreign", "replayed"],
)
def test_a_bad_correlation_id_is_refused_after_a_restart(
    tmp_path: Path, smsc: str, wait: float, replay: bool, reason: str
) -> None:
    clock = Clock()
    before, store = _router(tmp_path, clock)
    correlation = _answered(before, 500.0)
    if replay:
        assert _delivery(before, FOREIGN, correlation, 500.5).refusal == ""
    store.close()
    clock.t += wait
    after, store = _router(tmp_path, clock)
    out = _delivery(after, smsc, correlation, 1.0)
    store.close()
    assert out.forward is None and reason in out.refusal
    assert out.answer is not None
    assert out.answer.tcap.components == (ReturnError(1, 5),)  # unidentifiedSubscriber
