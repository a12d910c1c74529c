"""The message lifecycle table (store/lifecycle.py): its rules, its SQL, and every
store walked through every transition of it."""

from __future__ import annotations

import asyncio
import itertools
import random
import sqlite3

import pytest

from herald.store import (
    Account,
    Channel,
    CheckResult,
    EventKind,
    PriceEntry,
    PriceKind,
    PriceSide,
    ReceiptUpdate,
    RefundPolicy,
    SegmentRecord,
    Source,
    Status,
    StatusEvents,
    StatusUpdate,
    Store,
    StoredPriceList,
)
from herald.store._billing import Charge
from herald.store._sqlite_lifecycle import (
    emit_condition,
    smpp_receipt_condition,
    webhook_condition,
)
from herald.store.lifecycle import (
    TARGET,
    TRANSITIONS,
    Emit,
    Event,
    Transition,
    describe,
    emits,
    rollup,
    smpp_receipt_wanted,
    step,
    webhook_wanted,
)

from .conftest import T0, MessageFactory

# -- the table's rules ----------------------------------------------------------------


def test_statuses_only_grow_and_finals_never_move() -> None:
    for (status, event), t in TRANSITIONS.items():
        assert t.next == TARGET[event] and (t.status, t.event) == (status, event)
        assert not status.final
        assert t.next > status or (event is Event.CLAIMED and t.next == status == Status.QUEUED)
    for status in Status:
        for event in Event:
            if status.final:
                assert step(status, event) is None
    # a cancel comes too late once a part went out; every other event applies
    assert step(Status.SENT, Event.CANCELLED) is None
    assert step(Status.SENT, Event.EXPIRED) is not None
    assert step(Status.SENT, Event.SUBMITTED) is None  # no second "sent"
    assert {t.next for t in TRANSITIONS.values()} == set(Status) - {Status.ACCEPTED}


def test_what_each_step_emits() -> None:
    assert emits(Status.ACCEPTED, Status.QUEUED) == Emit.NONE
    assert emits(Status.QUEUED, Status.SENT) == Emit.WEBHOOK | Emit.BUY_PRICE
    assert emits(Status.SENT, Status.DELIVERED) == Emit.WEBHOOK | Emit.SMPP_RECEIPT
    assert emits(Status.SENT, Status.UNDELIVERED) == (
        Emit.WEBHOOK | Emit.SMPP_RECEIPT | Emit.REFUND)
    # a receipt that comes before "sent" was recorded still prices the message
    assert emits(Status.QUEUED, Status.DELIVERED) == (
        Emit.WEBHOOK | Emit.SMPP_RECEIPT | Emit.BUY_PRICE)
    assert emits(Status.DELIVERED, Status.DELIVERED) == Emit.NONE


def test_parts_roll_up() -> None:
    assert rollup(2, 1, 0, None) is None
    assert rollup(2, 2, 0, None) is Event.SUBMITTED
    assert rollup(2, 2, 1, None) is Event.SUBMITTED
    assert rollup(2, 2, 2, None) is Event.DELIVERED
    assert rollup(3, 1, 1, Status.EXPIRED) is Event.EXPIRED  # one part lost: all lost
    assert rollup(1, 0, 0, Status.REJECTED) is Event.REJECTED


# -- the SQL says what the table says -----------------------------------------------------


def _sql(expression: str, **values: object) -> bool:
    conn = sqlite3.connect(":memory:")
    try:
        text = expression
        for name, value in values.items():
            text = text.replace(name, "NULL" if value is None else repr(value))
        (result,) = conn.execute(f"SELECT coalesce(({text}), 0) <> 0").fetchone()
        return bool(result)
    finally:
        conn.close()


@pytest.mark.parametrize("emit", [Emit.WEBHOOK, Emit.SMPP_RECEIPT, Emit.BUY_PRICE, Emit.REFUND])
def test_each_emit_condition_is_the_tables(emit: Emit) -> None:
    for old, new in itertools.product(Status, Status):
        if new < old:
            continue  # no statement moves a status back (the WHEREs)
        expected = emit in emits(old, new)
        assert _sql(emit_condition(emit, "OLDS", "NEWS"), OLDS=int(old), NEWS=int(new)) \
            == expected, (old, new, emit)


def test_the_webhook_predicate_is_the_tables() -> None:
    events = (StatusEvents.ALL, StatusEvents.FINAL, StatusEvents.DELIVERED, StatusEvents.NONE)
    for status, url, mask, test in itertools.product(
            Status, ("https://x", None), events, (False, True)):
        expected = webhook_wanted(status, url, mask, test)
        got = _sql(webhook_condition("STATUS", "URL", "EVENTS", "TEST"), STATUS=int(status),
                   URL=url, EVENTS=int(mask), TEST=int(test))
        assert got == expected, (status, url, mask, test)


def test_the_smpp_receipt_predicate_is_the_tables() -> None:
    for status, source, rd, test in itertools.product(
            Status, Source, range(0, 0x20), (False, True)):
        expected = smpp_receipt_wanted(status, source, rd, test)
        got = _sql(smpp_receipt_condition("STATUS", "SOURCE", "RD", "TEST"),
                   STATUS=int(status), SOURCE=int(source), RD=rd, TEST=int(test))
        assert got == expected, (status, source, rd, test)


# -- the same on a real PostgreSQL (store/postgres/_lifecycle.py's conditions) --------------


async def _pg_rows(dsn: str, columns: dict[str, str], rows: list[tuple[object, ...]],
                   condition: str) -> list[bool]:
    """``condition`` evaluated by PostgreSQL over each of ``rows``, whose values
    have the ``columns``' names and types (those of the tables' columns)."""
    from herald.store.postgres import connection

    types = list(columns.values())
    values = ", ".join(
        "(" + ", ".join(f"${i * len(types) + j + 1}::{t}" for j, t in enumerate(types)) + ")"
        for i in range(len(rows)))  # fmt: skip
    async with connection(dsn) as conn:
        got = await conn.fetch(
            f"SELECT coalesce(({condition}), false) AS yes"
            f" FROM (VALUES {values}) AS v({', '.join(columns)})",
            *[value for row in rows for value in row])
    return [r["yes"] for r in got]


@pytest.mark.parametrize("emit", [Emit.WEBHOOK, Emit.SMPP_RECEIPT, Emit.BUY_PRICE, Emit.REFUND])
async def test_each_emit_condition_is_the_tables_on_postgresql(pg_dsn: str, emit: Emit) -> None:
    from herald.store.postgres._lifecycle import emit_condition as pg_emit_condition

    pairs = [(old, new) for old, new in itertools.product(Status, Status) if new >= old]
    got = await _pg_rows(pg_dsn, {"olds": "smallint", "news": "smallint"},
                         [(int(o), int(n)) for o, n in pairs],
                         pg_emit_condition(emit, "v.olds", "v.news"))
    assert got == [emit in emits(old, new) for old, new in pairs]


async def test_the_predicates_are_the_tables_on_postgresql(pg_dsn: str) -> None:
    from herald.store.postgres._lifecycle import smpp_receipt_condition as pg_smpp
    from herald.store.postgres._lifecycle import webhook_condition as pg_webhook

    events = (StatusEvents.ALL, StatusEvents.FINAL, StatusEvents.DELIVERED, StatusEvents.NONE)
    hooks = list(itertools.product(Status, ("https://x", None), events, (False, True)))
    got = await _pg_rows(
        pg_dsn, {"status": "smallint", "url": "text", "events": "integer", "test": "boolean"},
        [(int(s), u, int(e), t) for s, u, e, t in hooks],
        pg_webhook("v.status", "v.url", "v.events", "v.test"))
    assert got == [webhook_wanted(*h) for h in hooks]

    receipts = list(itertools.product(Status, Source, range(0, 0x20), (False, True)))
    got = await _pg_rows(
        pg_dsn, {"status": "smallint", "source": "smallint", "rd": "smallint", "test": "boolean"},
        [(int(s), int(src), rd, t) for s, src, rd, t in receipts],
        pg_smpp("v.status", "v.source", "v.rd", "v.test::int"))  # as the trigger passes it
    assert got == [smpp_receipt_wanted(*r) for r in receipts]


# -- every store, through every transition ------------------------------------------------

_CONNECTOR = "up1"
_BUY_PRICE = 300_000_000  # 0.03 a part, in 10^-10 units
_SELL = 50_000  # micro-units


async def _setup(store: Store, account: Account) -> None:
    await store.put_price_list(StoredPriceList(PriceSide.SELL, str(account.id), (
        PriceEntry(PriceKind.DEFAULT, "", 500_000_000),), T0))  # fmt: skip
    await store.put_price_list(StoredPriceList(PriceSide.BUY, _CONNECTOR, (
        PriceEntry(PriceKind.DEFAULT, "", _BUY_PRICE),), T0))  # fmt: skip
    await store.adjust_balance(account.id, add=10_000_000,
                               refund_policy=RefundPolicy.UNDELIVERED)
    await store.add_smpp_credential(account.id, "acme", "hash", T0)


async def _to(store: Store, message_id: str, status: Status, at: float) -> None:
    """Drive a fresh message (accepted, part 0 of 2 recorded) to ``status``."""
    if status >= Status.QUEUED:
        await store.update_statuses([StatusUpdate(message_id, Status.QUEUED, at)])
    if status >= Status.SENT:
        await store.update_statuses([StatusUpdate(message_id, Status.SENT, at)])


async def _apply(store: Store, account: Account, message_id: str, event: Event,
                 at: float) -> None:
    if event is Event.CANCELLED:
        await store.cancel(message_id, at, account_id=account.id)
    else:
        await store.update_statuses([StatusUpdate(message_id, TARGET[event], at)])


@pytest.mark.parametrize("transition", list(TRANSITIONS.values()),
                         ids=lambda t: f"{t.status.label}-{t.event.value}")
async def test_each_store_makes_each_transition_and_emits_what_the_table_says(
    store: Store, account: Account, make_message: MessageFactory, transition: object,
) -> None:
    assert isinstance(transition, Transition)
    await _setup(store, account)
    # An SMPP message that asks for every receipt, with its own webhook URL,
    # charged, in two parts: the first recorded upstream unless the step is a
    # cancel (which no part may have preceded).
    m = make_message(source=Source.SMPP, registered_delivery=1, segments=2,
                     callback_url="https://hooks.example/x", callback_events=StatusEvents.ALL)
    await store.accept([m], charges=[Charge("44", None, "default", _SELL)])
    part_out = transition.event is not Event.CANCELLED
    if part_out:
        await store.record_segments([SegmentRecord(m.id, 0, _CONNECTOR, "u-0", "u-0", T0)])
    await _to(store, m.id, transition.status, T0 + 1)
    before = {e.id for c in Channel for e in await store.claim_outbox(c, T0 + 10, 1, 100)}

    await _apply(store, account, m.id, transition.event, T0 + 2)

    got = await store.get_message(m.id)
    assert got.status == transition.next
    events = [e for c in Channel for e in await store.claim_outbox(c, T0 + 100, 1, 100)
              if e.id not in before and e.kind == EventKind.STATUS]
    hooks = [e.status for e in events if e.channel == Channel.WEBHOOK]
    receipts = [e.status for e in events if e.channel == Channel.SMPP]
    assert hooks == ([transition.next] if Emit.WEBHOOK in transition.emits else [])
    assert receipts == ([transition.next] if Emit.SMPP_RECEIPT in transition.emits else [])
    (cdr,) = await store.list_cdrs(T0 - 1, T0 + 10, account_id=account.id)
    # priced by this step, or by the step to "sent" that set it up
    priced = part_out and (Emit.BUY_PRICE in transition.emits
                           or Emit.BUY_PRICE in emits(Status.ACCEPTED, transition.status))
    assert (cdr.connector, cdr.buy) == (
        (_CONNECTOR, 2 * _BUY_PRICE // 10_000) if priced else (None, None))
    refunded = Emit.REFUND in transition.emits  # the policy refunds every loss
    assert cdr.refunded == (_SELL if refunded else 0)


# -- parts roll up to the message, in any order of records and receipts ---------------------


def _model(parts: int, steps: list[tuple[str, int, Status]]) -> Status:
    """The message status the lifecycle table gives for ``steps`` (``record`` part i,
    or ``receipt`` for part i with a status), parking receipts that come first."""
    recorded: set[int] = set()
    part_status: dict[int, Status] = {}
    parked: dict[int, Status] = {}
    status = Status.ACCEPTED
    for kind, part, receipt in steps:
        if kind == "record":
            if part in recorded:
                continue
            recorded.add(part)
            part_status[part] = Status.SENT
            changed = [part]
            # the first parked receipt applies once the part is recorded; the
            # "sent" roll-up comes first (lifecycle.py)
            event = rollup(parts, len(recorded), 0, None)
            if event is not None and (t := step(status, event)) is not None:
                status = t.next
            if part in parked:
                part_status[part] = parked.pop(part)
        else:
            if part not in recorded:
                parked.setdefault(part, receipt)  # the first one parked wins
                continue
            if part_status[part].final:
                continue
            part_status[part] = receipt
            changed = [part]
        for p in changed:
            ended = part_status[p] if part_status[p] != Status.DELIVERED else None
            delivered = sum(1 for s in part_status.values() if s == Status.DELIVERED)
            event = rollup(parts, len(recorded), delivered, ended)
            if event is not None and (t := step(status, event)) is not None:
                status = t.next
    return status


async def test_parts_roll_up_in_the_store_as_in_the_table(
    store: Store, account: Account, make_message: MessageFactory,
) -> None:
    rng = random.Random(7)
    receipts = (Status.DELIVERED, Status.DELIVERED, Status.UNDELIVERED, Status.EXPIRED,
                Status.REJECTED)
    cases = []
    for n in range(60):
        parts = rng.randint(1, 3)
        steps: list[tuple[str, int, Status]] = [("record", p, Status.SENT) for p in range(parts)]
        steps += [("receipt", p, rng.choice(receipts)) for p in range(parts)
                  for _ in range(rng.randint(0, 2))]
        rng.shuffle(steps)
        m = make_message(segments=parts)
        await store.accept([m])
        for i, (kind, part, receipt) in enumerate(steps):  # one statement per step
            key = f"k{n}-{part}"
            at = T0 + 1 + i
            if kind == "record":
                await store.record_segments([SegmentRecord(m.id, part, _CONNECTOR, key, key, at)])
            else:
                await store.apply_receipts([ReceiptUpdate(_CONNECTOR, key, receipt, at)])
        cases.append((m.id, parts, steps))
    for message_id, parts, steps in cases:
        got = await store.get_message(message_id)
        assert got.status == _model(parts, steps), (parts, steps)


# -- many parts and receipts in one transaction (the SQLite store rolls them up once
#    per batch, not by a trigger per row: every message of the batch must move) ------


async def test_a_batch_of_records_and_receipts_moves_every_message_it_touches(
    store: Store, account: Account, make_message: MessageFactory,
) -> None:
    await store.add_smpp_credential(account.id, "acme", "hash", T0)
    n = 24
    # single parts: receipt in the same batch as the record (half of them queued
    # before the record, as an early receipt read first), or parked a batch before
    hooks_to = {"callback_url": "https://hooks.example/x", "callback_events": StatusEvents.FINAL}
    single = [make_message(**hooks_to) for _ in range(n)]
    # three parts, SMPP, every receipt asked for: delivered over two batches, or
    # one part undelivered while the others are delivered
    multi = [make_message(segments=3, source=Source.SMPP, registered_delivery=1, **hooks_to)
             for _ in range(6)]
    # every status change heard: "sent" and "delivered" in one transaction, in that order
    chatty = [make_message(callback_url="https://hooks.example/y",
                           callback_events=StatusEvents.ALL) for _ in range(4)]
    await store.accept([*single, *multi, *chatty])

    def record(m_id: str, part: int, at: float) -> SegmentRecord:
        return SegmentRecord(m_id, part, _CONNECTOR, f"u-{m_id}-{part}", f"k-{m_id}-{part}", at)

    def receipt(m_id: str, part: int, status: Status, at: float,
                error: int | None = None) -> ReceiptUpdate:
        return ReceiptUpdate(_CONNECTOR, f"k-{m_id}-{part}", status, at, error)

    parked = [m.id for m in single[: n // 3]]
    await store.apply_receipts([receipt(i, 0, Status.DELIVERED, T0 + 5) for i in parked])
    # a receipt nobody's part has: stays parked, touches nothing
    await store.apply_receipts([ReceiptUpdate(_CONNECTOR, "nobody", Status.DELIVERED, T0 + 5)])

    # batch 1: queued in one loop turn (one transaction where the store batches)
    writes = []
    done_at = {}
    for k, m in enumerate(single):
        early = k % 2 == 0 and m.id not in parked
        done_at[m.id] = T0 + 5 if m.id in parked else T0 + 7 if early else T0 + 8
        if early:
            writes.append(store.apply_receipts([receipt(m.id, 0, Status.DELIVERED, T0 + 7)]))
        writes.append(store.record_segments([record(m.id, 0, T0 + 6)]))
        if not early and m.id not in parked:
            writes.append(store.apply_receipts([receipt(m.id, 0, Status.DELIVERED, T0 + 8)]))
    for k, m in enumerate(multi):
        writes.append(store.record_segments([record(m.id, p, T0 + 6 + p) for p in range(3)]))
        if k % 2 == 0:
            writes.append(store.apply_receipts([receipt(m.id, p, Status.DELIVERED, T0 + 9)
                                                for p in (0, 1)]))
        else:
            writes.append(store.apply_receipts([
                receipt(m.id, 0, Status.DELIVERED, T0 + 9),
                receipt(m.id, 1, Status.UNDELIVERED, T0 + 9, 0x0B)]))
    for m in chatty:
        writes.append(store.record_segments([record(m.id, 0, T0 + 6)]))
        writes.append(store.apply_receipts([receipt(m.id, 0, Status.DELIVERED, T0 + 8)]))
    await asyncio.gather(*writes)

    got = await store.get_messages([m.id for m in (*single, *multi)])
    for m in single:
        assert got[m.id].status is Status.DELIVERED, m.id
        assert got[m.id].sent_at == T0 + 6
        assert got[m.id].done_at == done_at[m.id], m.id
    for k, m in enumerate(multi):
        if k % 2 == 0:
            assert got[m.id].status is Status.SENT, m.id  # one part still out
            assert got[m.id].sent_at == T0 + 8
        else:
            assert (got[m.id].status, got[m.id].error_code) == (Status.UNDELIVERED, 0x0B)
            assert got[m.id].done_at == T0 + 9

    # batch 2: the last parts of the delivered ones, and a late receipt for an ended one
    writes = [store.apply_receipts([receipt(m.id, 2, Status.DELIVERED, T0 + 10)])
              for m in multi]
    await asyncio.gather(*writes)
    got = await store.get_messages([m.id for m in multi])
    for k, m in enumerate(multi):
        want = Status.DELIVERED if k % 2 == 0 else Status.UNDELIVERED
        assert got[m.id].status is want, m.id
        assert got[m.id].done_at == (T0 + 10 if k % 2 == 0 else T0 + 9)

    # one webhook event (final only, the default) per message, one SMPP receipt
    # per SMPP message, each with the message's final status
    events = [e for c in Channel for e in await store.claim_outbox(c, T0 + 100, 1, 1000)
              if e.kind == EventKind.STATUS]
    finals = {i: m.status for i, m in
              (await store.get_messages([m.id for m in (*single, *multi)])).items()}
    heard = {m.id for m in chatty}
    hooks = sorted((e.subject_id, e.status) for e in events
                   if e.channel == Channel.WEBHOOK and e.subject_id not in heard)
    receipts = sorted((e.subject_id, e.status) for e in events if e.channel == Channel.SMPP)
    assert hooks == sorted(finals.items())
    for m in chatty:  # both steps, in their order, each at its own time
        assert [(e.status, e.created_at) for e in sorted(events, key=lambda e: e.id)
                if e.subject_id == m.id] == [(Status.SENT, T0 + 6), (Status.DELIVERED, T0 + 8)]
    assert receipts == sorted((m.id, finals[m.id]) for m in multi)


async def test_receipt_checks_ending_several_parts_at_once_roll_up(
    store: Store, account: Account, make_message: MessageFactory,
) -> None:
    ms = [make_message(segments=2) for _ in range(4)]
    await store.accept(ms)
    await store.record_segments([SegmentRecord(m.id, p, _CONNECTOR, f"u{m.id}{p}",
                                               f"k{m.id}{p}", T0 + 1, check_at=T0 + 2)
                                 for m in ms for p in (0, 1)])
    await store.settle_receipt_checks(
        [CheckResult(ms[0].id, p, T0 + 3, Status.DELIVERED) for p in (0, 1)]
        + [CheckResult(ms[1].id, 0, T0 + 3, Status.DELIVERED),
           CheckResult(ms[1].id, 1, T0 + 3, check_at=T0 + 60),
           CheckResult(ms[2].id, 1, T0 + 4, Status.EXPIRED),
           CheckResult(ms[3].id, 0, T0 + 3, Status.DELIVERED),
           CheckResult(ms[3].id, 1, T0 + 3, Status.DELIVERED)])
    got = await store.get_messages([m.id for m in ms])
    assert [(got[m.id].status, got[m.id].done_at) for m in ms] == [
        (Status.DELIVERED, T0 + 3), (Status.SENT, None), (Status.EXPIRED, T0 + 4),
        (Status.DELIVERED, T0 + 3)]


def test_the_docs_show_the_table_as_it_is() -> None:
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "dispatch.md").read_text()
    assert describe() in docs
