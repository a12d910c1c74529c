"""The engine's state saved and restored (herald.signaling.policy.snapshot):
what one engine learnt is known to the next, as after a restart of the proxy
(same process here: same hash seed), and through the real SQLite store and a
real ``herald guard proxy`` process run twice under one PYTHONHASHSEED."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from herald.guard.correlations import FILE_NAME, SNAPSHOT_FILE_NAME, SQLiteSnapshots
from herald.signaling import decode
from herald.signaling.map_ops import MapAc
from herald.signaling.policy import Action, Engine, Rule
from herald.signaling.policy.facts import ComponentKind, TcapKind
from herald.signaling.policy.snapshot import SnapshotError, encode

from .builders import (
    FAR_VLR,
    FOREIGN,
    HLR,
    HOME_IMSI,
    MSC_HOME,
    NEAR_SMSC,
    NEAR_VLR,
    POLICY_TOML,
    invoke,
    mt_fsm,
    policy,
    sri_sm,
    sri_sm_result,
    update_location,
)
from .test_homerouting import leaked

T = 1000.0


def saved(engine: Engine, now: float) -> bytes:
    return encode(engine.copy_state(now, 1000))


def restarted(data: bytes, now: float, age: float) -> Engine:
    engine = Engine(policy())
    assert engine.restore_state(data, now, age) > 0
    return engine


def test_a_location_survives_so_velocity_holds() -> None:
    first = Engine(policy())
    assert first.inspect(update_location(T, NEAR_VLR)).action is Action.ALLOW
    # 60 s later the proxy has restarted (its clock now reads 5.0): an UL from
    # the far side of the world is impossible, as it was before the restart.
    after = restarted(saved(first, T), 5.0, 59.0)
    verdict = after.inspect(update_location(6.0, FAR_VLR))
    assert (verdict.action, verdict.rule) == (Action.BLOCK, Rule.CAT3_VELOCITY)
    # Without the snapshot, the far UL is the first location seen: allowed.
    assert Engine(policy()).inspect(update_location(6.0, FAR_VLR)).action is Action.ALLOW


def test_an_sms_correlation_survives_so_the_delivery_passes() -> None:
    first = Engine(policy())
    begin = sri_sm(T, NEAR_SMSC)
    first.inspect(begin)
    first.inspect(sri_sm_result(T + 0.1, begin))
    after = restarted(saved(first, T + 0.2), 0.0, 2.0)
    assert after.inspect(mt_fsm(1.0, NEAR_SMSC)).action is Action.ALLOW
    blocked = Engine(policy()).inspect(mt_fsm(1.0, NEAR_SMSC))
    assert (blocked.action, blocked.rule) == (Action.BLOCK, Rule.SMS_CONSISTENCY)
    # ... within its window only: restored 200 s later it has expired.
    late = restarted(saved(first, T + 0.2), 0.0, 200.0)
    assert late.inspect(mt_fsm(1.0, NEAR_SMSC)).rule is Rule.SMS_CONSISTENCY


def test_a_blocked_dialogue_stays_blocked() -> None:
    first = Engine(policy())
    ati = invoke(T, 71, (MapAc.ANY_TIME_INFO_ENQUIRY, 3), FOREIGN, HLR, imsi=HOME_IMSI)
    assert first.inspect(ati).action is Action.BLOCK
    after = restarted(saved(first, T), 0.0, 1.0)
    end = ati._replace(time=1.0, calling_gt=HLR, called_gt=FOREIGN, tcap=TcapKind.END,
                       otid=b"", dtid=ati.otid, component=ComponentKind.RETURN_RESULT_LAST,
                       invokes=())  # fmt: skip
    verdict = after.inspect(end)
    assert (verdict.action, verdict.rule) == (Action.BLOCK, Rule.CAT1)
    assert Engine(policy()).inspect(end).action is Action.ALLOW


def test_rates_survive() -> None:
    tight = policy("[rates]\nper_gt_per_s = 1\nper_gt_burst = 2\n")
    first = Engine(tight)
    for i in range(2):
        assert first.inspect(sri_sm(T, NEAR_SMSC, f"1999555{i:04d}")).action is Action.ALLOW
    after = Engine(tight)
    after.restore_state(saved(first, T), 0.0, 0.0)
    verdict = after.inspect(sri_sm(0.0, NEAR_SMSC, "19995559999"))
    assert (verdict.action, verdict.rule) == (Action.BLOCK, Rule.RATE_LIMIT)


def test_a_snapshot_of_another_hash_seed_or_format_is_refused() -> None:
    first = Engine(policy())
    first.inspect(update_location(T, NEAR_VLR))
    snap = json.loads(saved(first, T))
    snap["fingerprint"] += 1  # as another PYTHONHASHSEED would make it
    engine = Engine(policy())
    with pytest.raises(SnapshotError, match="another hash seed"):
        engine.restore_state(json.dumps(snap).encode(), 0.0)
    with pytest.raises(SnapshotError, match="not a snapshot"):
        engine.restore_state(b"\x00garbage", 0.0)
    assert engine.state_sizes["locations"] == 0


def test_a_snapshot_is_bounded_and_sealed_in_the_store(tmp_path: Path) -> None:
    first = Engine(policy())
    for i in range(50):
        first.inspect(update_location(T + i, NEAR_VLR, f"0010100000001{i:02d}"))
    data = encode(first.copy_state(T + 50, 10))  # the newest 10 per table
    assert len(json.loads(data)["locations"]) == 10
    store = SQLiteSnapshots(tmp_path, policy().salt)
    store.save("proxy-1", data)
    store.save("proxy-1", data)  # replaced, not added
    store.save("proxy-2", data)
    assert [d for _, d in store.load()] == [data, data]
    store.close()
    files = [p for p in tmp_path.iterdir() if p.name.startswith(SNAPSHOT_FILE_NAME)]
    raw = b"".join(p.read_bytes() for p in files)
    assert b"locations" not in raw and leaked(raw, (NEAR_VLR,)) == []
    other = SQLiteSnapshots(tmp_path, b"another-salt-of-16-bytes")
    assert other.load() == []  # sealed under the policy's salt
    other.close()


async def test_the_proxy_restores_its_state_after_a_restart(tmp_path: Path) -> None:
    """``herald guard proxy --store`` twice, under one PYTHONHASHSEED: an
    SRI-SM answered through the first, the MT-ForwardSM through the second is
    delivered (its SMS correlation survived). Without a fixed seed the
    engine's state is not saved, and the delivery is still consistent: the
    SRI-SM answer was also shared as it passed (sealed in guard-state.db,
    keyed by the policy's salted hashes, whatever the seed); with that table
    emptied between the two, it is blocked."""
    from herald.store import SQLiteConfig, SQLiteStore

    from . import m3ua_fixtures as fx
    from .proxy_process import proxy_process
    from .test_homerouting_state import _stop

    data = tmp_path / "data"
    await SQLiteStore.open(SQLiteConfig(data_dir=data)).aclose()
    path = tmp_path / "policy.toml"
    path.write_text(POLICY_TOML)

    async def lookup_then_deliver(seed: str, forget_shared: bool = False) -> str:
        env = {"PYTHONHASHSEED": seed}
        async with proxy_process(path, "--store", str(data), env=env) as first:
            a, b = await first.connect()
            sri, otid = fx.sri_sm(NEAR_SMSC)
            await a.send(sri)
            await b.next()
            await b.send(fx.sri_sm_result(otid, NEAR_SMSC))
            await a.next()
            await _stop(first.process)
        if forget_shared:
            with sqlite3.connect(data / FILE_NAME) as db:
                assert db.execute("DELETE FROM sms_lookups").rowcount == 1
        async with proxy_process(path, "--store", str(data), env=env) as second:
            a, b = await second.connect()
            await a.send(fx.mt_fsm(NEAR_SMSC))
            await a.send(fx.beat(b"a"))
            got = await b.next()
            out = await _stop(second.process)
        if got == fx.beat(b"a"):
            return "blocked: " + out
        assert decode(got).called_digits == MSC_HOME
        return "delivered: " + out

    result = await lookup_then_deliver("4242")
    assert result.startswith("delivered") and "blocked 0" in result
    result = await lookup_then_deliver("random")
    assert result.startswith("delivered") and "blocked 0" in result
    result = await lookup_then_deliver("random", forget_shared=True)
    assert result.startswith("blocked") and "blocked by sms-consistency: 1" in result
    assert os.environ.get("PYTHONHASHSEED") != "4242"  # the test's own process untouched
