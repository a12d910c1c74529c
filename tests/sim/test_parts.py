"""The simulator's pure parts: scheme, ids, bucket, schedule, outcomes, record, config."""

from __future__ import annotations

import ast
import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from herald.sim import (
    BEHAVIOURS,
    Behaviour,
    IdStyle,
    Outcome,
    OutcomeMix,
    ReceiptIdForm,
    RecordContent,
    RecordFormatError,
    SimConfig,
    SimConfigError,
    SubmitRecord,
    parse_delay,
    parse_listen,
    parse_outcomes,
    plan_for,
    read_records,
)
from herald.sim.bucket import TokenBucket
from herald.sim.ids import IdGenerator
from herald.sim.outcomes import Accepted, mo_pdu, receipt_pdu, receipt_text, snippet
from herald.sim.record import RecordWriter, format_record, parse_record
from herald.sim.schedule import Schedule
from herald.smpp.constants import MessageState
from herald.smpp.message_id import IdPolicy, ids_match
from herald.smpp.receipts import Receipt, format_receipt, receipt_of
from herald.smpp.tlv import MESSAGE_PAYLOAD, NETWORK_ERROR_CODE
from herald.text import gsm_encode

SIM = Path(__file__).resolve().parents[2] / "src" / "herald" / "sim"
PURE = ("scheme.py", "ids.py", "bucket.py", "schedule.py", "outcomes.py", "errors.py")
FORBIDDEN = {"asyncio", "socket", "selectors", "ssl", "time", "threading", "subprocess",
             "herald.net"}


@pytest.mark.parametrize("name", PURE)
def test_pure_parts_import_no_io_and_no_clock(name: str) -> None:
    tree = ast.parse((SIM / name).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    bad = {m for m in imported if m.split(".")[0] in FORBIDDEN or m.startswith("herald.net")}
    assert not bad, f"{name} imports {sorted(bad)}"


# ------------------------------------------------------------------ scheme


@pytest.mark.parametrize(("destination", "behaviour", "delay"), [
    ("447700900123", Behaviour.NORMAL, None),
    ("9990", Behaviour.NORMAL, None),  # too short for a code
    ("99900123", Behaviour.NORMAL, None),  # 00 is not a code
    ("99999123", Behaviour.NORMAL, None),
    ("1999021234", Behaviour.NORMAL, None),  # 999 must lead
    ("9990107", Behaviour.DELAY, 7.0),
    ("99901991234", Behaviour.DELAY, 99.0),
    ("999015", Behaviour.DELAY, 0.0),  # one digit: not a delay, so none
    ("9990202", Behaviour.NO_RESPONSE, None),
    ("+99903", Behaviour.SUBMIT_FAIL, None),
    ("99904", Behaviour.THROTTLED, None),
    ("99905", Behaviour.QUEUE_FULL, None),
    ("99906", Behaviour.INVALID_DESTINATION, None),
    ("99907000001", Behaviour.UNDELIVERED, None),
    ("99908", Behaviour.EXPIRED, None),
    ("99909", Behaviour.MO_ECHO, None),
    ("99910", Behaviour.RECEIPT_FIRST, None),
    ("99911", Behaviour.OUT_OF_ORDER, None),
    ("99912", Behaviour.ACCEPT_ONCE, None),
    ("99913", Behaviour.NO_RECEIPT, None),
    ("99901\u00b2\u00b2", Behaviour.DELAY, 0.0),  # superscript digits are not seconds
])
def test_destination_picks_the_behaviour(destination: str, behaviour: Behaviour,
                                         delay: float | None) -> None:
    plan = plan_for(destination)
    assert plan.behaviour is behaviour
    assert plan.delay == delay


def test_every_behaviour_but_normal_is_in_the_documented_table() -> None:
    documented = {b for b, _, _ in BEHAVIOURS}
    assert documented == set(Behaviour) - {Behaviour.NORMAL}
    for behaviour, example, _ in BEHAVIOURS:
        assert example.startswith("999" + behaviour.value)
        assert plan_for(example.rstrip(".").replace("DD", "03")).behaviour is behaviour


# --------------------------------------------------------------------- ids


@pytest.mark.parametrize(("style", "form", "policy"), [
    (IdStyle.HEX, ReceiptIdForm.SAME, IdPolicy.AS_IS),
    (IdStyle.HEX, ReceiptIdForm.DECIMAL, IdPolicy.HEX_TO_DEC),
    (IdStyle.DECIMAL, ReceiptIdForm.HEX, IdPolicy.DEC_TO_HEX),
    (IdStyle.DECIMAL, ReceiptIdForm.PADDED, IdPolicy.NORMALIZED),
    (IdStyle.HEX, ReceiptIdForm.UPPER, IdPolicy.CASE_INSENSITIVE),
    (IdStyle.UUID, ReceiptIdForm.HEX, IdPolicy.NORMALIZED),
])
def test_each_id_pairing_matches_under_its_policy_and_not_as_is(
        style: IdStyle, form: ReceiptIdForm, policy: IdPolicy) -> None:
    ids = IdGenerator(style, form, random.Random(7))
    pairs = [ids.next() for _ in range(50)]
    assert len({resp for resp, _ in pairs}) == 50
    for resp, receipt in pairs:
        assert ids_match(resp, receipt, policy)
    if form is not ReceiptIdForm.SAME:
        assert any(resp != receipt for resp, receipt in pairs)
        assert not all(ids_match(resp, receipt, IdPolicy.AS_IS) for resp, receipt in pairs)
    # another message's receipt never matches
    assert not ids_match(pairs[0][0], pairs[1][1], policy)


def test_id_forms_look_like_their_names() -> None:
    resp, receipt = IdGenerator(IdStyle.DECIMAL, ReceiptIdForm.PADDED, random.Random(1)).next()
    assert resp.isdigit() and receipt == resp.zfill(10)
    resp, receipt = IdGenerator(IdStyle.UUID, ReceiptIdForm.SAME, random.Random(1)).next()
    assert len(resp) == 36 and resp[14] == "4" and resp == receipt
    hex_ids = [IdGenerator(IdStyle.HEX, ReceiptIdForm.SAME, random.Random(s)).next()[0]
               for s in range(20)]
    assert all(int(h, 16) for h in hex_ids) and any(not h.isdigit() for h in hex_ids)


def test_ids_are_reproducible_from_the_seed() -> None:
    def run(seed: int) -> list[tuple[str, str]]:
        ids = IdGenerator(IdStyle.UUID, ReceiptIdForm.HEX, random.Random(seed))
        return [ids.next() for _ in range(5)]
    assert run(3) == run(3)
    assert run(3) != run(4)


# ------------------------------------------------------------------- bucket


def test_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=10, burst=5, now=100.0)
    assert [bucket.take(100.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert not bucket.take(100.05)  # half a token
    assert bucket.take(100.1)  # one token after 0.1 s
    assert not bucket.take(100.1)
    assert [bucket.take(200.0) for _ in range(6)] == [True] * 5 + [False]  # capped at burst
    assert not bucket.take(150.0)  # a clock stepping back adds nothing


def test_bucket_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0, 1, 0.0)
    with pytest.raises(ValueError):
        TokenBucket(1, 0.5, 0.0)


# ----------------------------------------------------------------- schedule


def test_schedule_pops_due_items_in_order_with_slack_and_limit() -> None:
    sched: Schedule[str] = Schedule()
    for due, item in [(3.0, "c"), (1.0, "a"), (2.0, "b1"), (2.0, "b2"), (2.004, "b3")]:
        sched.push(due, item)
    assert sched.next_due() == 1.0
    assert sched.pop_due(0.5) == []
    assert sched.pop_due(2.0, slack=0.005, limit=3) == ["a", "b1", "b2"]
    assert sched.pop_due(2.0, slack=0.005) == ["b3"]
    assert len(sched) == 1 and sched.clear() == ["c"] and sched.next_due() is None


# ----------------------------------------------------------------- outcomes


def _message(**kw: object) -> Accepted:
    fields: dict[str, object] = dict(
        system_id="acme", message_id="1a2b", receipt_id="6699", source_ton=5, source_npi=0,
        source_addr="HERALD", dest_ton=1, dest_npi=1, dest_addr="447700900123",
        submitted=1_800_000_000.0, snippet="hello")
    fields.update(kw)
    return Accepted(**fields)  # type: ignore[arg-type]


def test_receipt_text_is_the_appendix_b_layout_herald_formats_too() -> None:
    submitted, done = 1_800_000_000.0, 1_800_000_125.0
    text = receipt_text("6699", MessageState.DELIVERED, "DELIVRD", 0, submitted, done, "hello")
    expected = format_receipt(Receipt(
        message_id="6699", stat="DELIVRD", state=MessageState.DELIVERED, sub=1, dlvrd=1,
        submit_date=datetime.fromtimestamp(submitted, UTC).replace(tzinfo=None),
        done_date=datetime.fromtimestamp(done, UTC).replace(tzinfo=None),
        err="000", text="hello"))
    assert text == expected


@pytest.mark.parametrize("outcome", list(Outcome))
def test_receipt_pdu_carries_text_and_tlvs_that_agree(outcome: Outcome) -> None:
    pdu = receipt_pdu(_message(), outcome, 1_800_000_060.0)
    assert pdu.esm_class == 0x04
    assert (pdu.source_addr, pdu.destination_addr) == ("447700900123", "HERALD")
    assert (pdu.source_addr_ton, pdu.dest_addr_ton) == (1, 5)
    receipt = receipt_of(pdu)
    assert receipt.message_id == "6699"
    assert receipt.state is outcome.state and receipt.stat == outcome.stat
    assert receipt.err == f"{outcome.error:03d}" and receipt.text == "hello"
    nec = pdu.tlv(NETWORK_ERROR_CODE)
    assert nec is not None and (nec.network_type, nec.error_code) == (3, outcome.error)
    assert receipt.dlvrd == (1 if outcome is Outcome.DELIVERED else 0)
    assert receipt.done_date == datetime(2027, 1, 15, 8, 1)


def test_an_enroute_receipt_after_the_final_one() -> None:
    pdu = receipt_pdu(_message(), Outcome.DELIVERED, 1_800_000_060.0,
                      state=MessageState.ENROUTE)
    receipt = receipt_of(pdu)
    assert receipt.state is MessageState.ENROUTE and receipt.stat == "ENROUTE"


def test_mo_echo_goes_back_with_the_body_and_coding() -> None:
    body = "Grüße 😀".encode("utf-16-be")
    pdu = mo_pdu(_message(data_coding=8, body=body))
    assert (pdu.source_addr, pdu.destination_addr) == ("447700900123", "HERALD")
    assert pdu.short_message == body and pdu.data_coding == 8 and pdu.esm_class == 0
    long = mo_pdu(_message(body=b"x" * 300, udhi=True))
    assert long.short_message == b"" and long.tlv(MESSAGE_PAYLOAD) == b"x" * 300
    assert long.esm_class == 0x40


@pytest.mark.parametrize(("body", "coding", "esm", "expected"), [
    (b"Your code is 123456, valid 5 min", 1, 0, "Your code is 123456,"),
    ("café\n".encode("latin-1"), 3, 0, "caf??"),
    (gsm_encode("@$_ {€}"), 0, 0, "@$_ {?}"),  # escapes decoded, euro not ASCII
    (gsm_encode("Ä ok"), 0, 0, "? ok"),
    ("Grüße 😀".encode("utf-16-be"), 8, 0, "Gr??e ?"),
    (bytes.fromhex("050003010201") + b"part one", 1, 0x40, "part one"),
    (b"\x00\x01\x02", 4, 0, ""),  # binary
    (b"\xd8", 8, 0, "?"),  # a broken UCS-2 body decodes leniently
])
def test_snippet_is_the_first_twenty_characters_in_ascii(
        body: bytes, coding: int, esm: int, expected: str) -> None:
    assert snippet(body, coding, esm) == expected


def test_outcome_mix_picks_by_weight_and_is_reproducible() -> None:
    mix = parse_outcomes("delivered=0.9, undelivered=0.05,expired=0.05")
    assert str(mix) == "delivered=0.9,undelivered=0.05,expired=0.05"
    rng = random.Random(11)
    counts = Counter(mix.pick(rng.random()) for _ in range(20_000))
    assert set(counts) == {Outcome.DELIVERED, Outcome.UNDELIVERED, Outcome.EXPIRED}
    assert 0.88 < counts[Outcome.DELIVERED] / 20_000 < 0.92
    assert mix.pick(0.0) is Outcome.DELIVERED and mix.pick(0.999999) is Outcome.EXPIRED
    only = OutcomeMix(((Outcome.DELIVERED, 0.0), (Outcome.REJECTED, 3.0)))
    assert {only.pick(u / 10) for u in range(10)} == {Outcome.REJECTED}
    assert only.share(Outcome.REJECTED) == 1.0


@pytest.mark.parametrize(("text", "complaint"), [
    ("delivered", "OUTCOME=WEIGHT"),
    ("lost=1", "unknown outcome"),
    ("delivered=x", "not a number"),
    ("delivered=-1", ">= 0"),
    ("delivered=nan", ">= 0"),
    ("delivered=0", "add up to 0"),
    ("delivered=1,delivered=2", "twice"),
])
def test_bad_outcome_mixes_are_refused_by_name(text: str, complaint: str) -> None:
    with pytest.raises(SimConfigError, match=complaint) as info:
        parse_outcomes(text)
    assert info.value.setting == "outcomes"


# ------------------------------------------------------------------- config


def test_listen_and_delay_parsing() -> None:
    assert parse_listen("127.0.0.1:2776") == ("127.0.0.1", 2776)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert parse_listen(":2777") == ("127.0.0.1", 2777)
    assert parse_delay("0.5") == (0.5, 0.5)
    assert parse_delay("1:3") == (1.0, 3.0)


@pytest.mark.parametrize(("call", "setting"), [
    (lambda: parse_listen("localhost"), "listen"),
    (lambda: parse_listen("h:70000"), "listen"),
    (lambda: parse_delay("soon"), "receipt-delay"),
    (lambda: parse_delay("3:1"), "receipt-delay"),
    (lambda: parse_delay("-1"), "receipt-delay"),
    (lambda: SimConfig(receipt_delay=(0, 1e9)), "receipt-delay"),
    (lambda: SimConfig(system_id="acme"), "system-id"),
    (lambda: SimConfig(system_id="x" * 16, password="p"), "system-id"),
    (lambda: SimConfig(system_id="a", password="p" * 65), "password"),
    (lambda: SimConfig(tps=0), "tps"),
    (lambda: SimConfig(tps_burst=5), "tps-burst"),
    (lambda: SimConfig(tps=10, tps_burst=0.5), "tps-burst"),
    (lambda: SimConfig(window=0), "window"),
    (lambda: SimConfig(max_held_receipts=0), "max-held-receipts"),
    (lambda: SimConfig(port=70000), "port"),
])
def test_bad_settings_name_the_setting(call: object, setting: str) -> None:
    with pytest.raises(SimConfigError) as info:
        call()  # type: ignore[operator]
    assert info.value.setting == setting
    assert isinstance(info.value, ValueError)


def test_burst_defaults_to_one_second_of_tps() -> None:
    assert SimConfig(tps=250).burst == 250
    assert SimConfig(tps=0.5).burst == 1
    assert SimConfig(tps=250, tps_burst=10).burst == 10
    assert SimConfig().burst is None


# ------------------------------------------------------------------- record


def test_records_round_trip_through_a_file_with_awkward_text(tmp_path: Path) -> None:
    path = tmp_path / "rec.tsv"
    records = [
        SubmitRecord(1_800_000_000.123456, "acme", "submit_sm", "447700900123", 0, 0,
                     "sha256:00ff", "1a2b", 0),
        SubmitRecord(1_800_000_001.0, "tab\tand%", "data_sm", "+44 7700\n", 8, 64,
                     "hex:0102", "", None),
        SubmitRecord(1_800_000_002.0, "ümlaut", "submit_multi", "", 3, 3, "hex:", "", 0x58),
    ]
    writer = RecordWriter(path, RecordContent.HEX)
    for record in records:
        writer.write(record)
    writer.close()
    assert path.read_text().count("\n") == 4  # header + one line each
    assert read_records(path) == records
    writer = RecordWriter(path)  # appends, no second header
    writer.write(records[0])
    writer.close()
    assert read_records(path) == [*records, records[0]]
    assert path.read_text().count("#") == 1


def test_a_torn_last_line_is_an_error_unless_lenient(tmp_path: Path) -> None:
    path = tmp_path / "rec.tsv"
    line = format_record(SubmitRecord(1.0, "a", "submit_sm", "1", 0, 0, "hex:", "x", 0))
    path.write_text(line + line[:10])
    with pytest.raises(RecordFormatError) as info:
        read_records(path)
    assert info.value.line == 2
    assert len(read_records(path, strict=False)) == 1
    with pytest.raises(RecordFormatError, match="invalid literal"):
        parse_record(line.replace("\t0\t0\t", "\tzero\t0\t"), 9)
