"""Dispatch against `herald sim`, the SMSC simulator, with its behaviours by destination."""

from __future__ import annotations

from dataclasses import replace

from herald.config import InboundConfig
from herald.sim import IdStyle, OutcomeMix, ReceiptIdForm, SimConfig, Simulator
from herald.smpp.constants import CommandStatus
from herald.smpp.message_id import IdPolicy
from herald.store import Status

from .conftest import FAST, Rig, connector, eventually
from .test_inbound import _inbound_rows

S = CommandStatus


async def _sim(**fields: object) -> Simulator:
    values: dict[str, object] = {"port": 0, "receipt_delay": (0.0, 0.05), "seed": 7}
    values.update(fields)
    sim = Simulator(SimConfig(**values))  # type: ignore[arg-type]
    await sim.start()
    return sim


async def test_the_simulators_behaviours_end_where_they_should(rig: Rig) -> None:
    primary = await _sim(id_style=IdStyle.HEX, receipt_id=ReceiptIdForm.DECIMAL)
    backup = await rig.upstream()  # accepts everything: the simulator's refusals fail over
    try:
        await rig.dispatcher(
            [
                connector("primary", primary.port, receipt_id_policy=IdPolicy.HEX_TO_DEC,
                          response_timeout=0.3),
                connector("backup", backup.server.port),  # type: ignore[union-attr]
            ],
            settings=FAST,
        )
        ok = await rig.send(20, to_prefix="4477009")
        undelivered = await rig.send(2, to_prefix="999070")
        expired = await rig.send(2, to_prefix="999080")
        early = await rig.send(3, to_prefix="999100")  # receipt before submit_sm_resp
        reordered = await rig.send(3, to_prefix="999110")  # DELIVRD, then ENROUTE
        refused = await rig.send(2, to_prefix="999060")  # ESME_RINVDSTADR: to the backup
        swallowed = await rig.send(1, to_prefix="999020")  # no answer: retried, then backup
        await rig.wait_all(ok + early + reordered + refused + swallowed, Status.DELIVERED)
        await rig.wait_all(undelivered, Status.UNDELIVERED)
        await rig.wait_all(expired, Status.EXPIRED)
        for message_id in refused + swallowed:
            (segment,) = await rig.store.get_segments(message_id)
            assert segment.connector == "backup"
        assert primary.counters.statuses.get(S.ESME_RINVDSTADR) == 2
        assert primary.counters.swallowed == 1 + FAST.retries_per_connector
        (segment,) = await rig.store.get_segments(ok[0])
        assert segment.connector == "primary"
        assert segment.upstream_key == str(int(segment.upstream_id, 16))
        assert len(backup.submits) == len(refused + swallowed)
    finally:
        await primary.stop(1)


async def test_a_rate_limited_simulator_slows_dispatch_but_loses_nothing(rig: Rig) -> None:
    """The simulator allows 100/s; herald's connector is configured for 400/s."""
    sim = await _sim(tps=100.0, tps_burst=5.0)
    try:
        await rig.dispatcher([connector("a", sim.port, tps=400.0)],
                             settings=replace(FAST, max_claim=50))
        ids = await rig.send(150)
        await rig.wait_all(ids, Status.DELIVERED, timeout=20)
        assert sim.counters.throttled > 0
        assert sim.counters.accepted == 150
    finally:
        await sim.stop(1)


async def test_mo_echo_reaches_the_owning_account(rig: Rig) -> None:
    sim = await _sim(outcomes=OutcomeMix())
    try:
        await rig.dispatcher(
            [connector("a", sim.port)],
            inbound=(InboundConfig(account="acme", prefix=""),),
        )
        ids = await rig.send(1, to_prefix="999090", sender="12345", body=b"ping")
        await rig.wait_all(ids, Status.DELIVERED)
        await eventually(_mo_acked(sim))
        # The echo comes from the destination back to the sender, as a phone's reply.
        assert _inbound_rows(rig) == [
            (rig.account.id, "12345", "99909000000", b"ping", "gsm7", 0, "a")]
    finally:
        await sim.stop(1)


def _mo_acked(sim: Simulator):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return sim.counters.mo_acked >= 1

    return check


async def test_a_transmitter_connector_gets_its_receipts_on_an_extra_receiver_bind(
    rig: Rig,
) -> None:
    sim = await _sim()
    try:
        d = await rig.dispatcher([connector("a", sim.port, bind_type="transmitter", binds=2)])
        ids = await rig.send(10)
        await rig.wait_all(ids, Status.DELIVERED)
        assert sim.counters.binds == 3  # two transmitters and the receiver herald added
        assert d.connectors["a"].bound == 2  # only the transmitters submit
    finally:
        await sim.stop(1)
