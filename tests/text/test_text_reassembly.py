"""Reassembly of concatenated inbound messages: order, duplicates, expiry, bounds."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.text import (
    DUPLICATE_WINDOW,
    MAX_PARTS_PER_MESSAGE,
    REASSEMBLY_TIMEOUT,
    UDHI,
    Encoding,
    LocalTextError,
    Method,
    Reassembled,
    Reassembler,
    ReassemblyError,
    ReassemblyFull,
    SmscDefault,
    decode,
    read_message,
    split_text,
)

from .strategies import long_gsm_text, unicode_text

KEY = ("447700900001", "447700900002", 0x2A)


@pytest.mark.parametrize("order", list(itertools.permutations([1, 2, 3])))
def test_any_order_completes_on_the_last_part(order: tuple[int, ...]) -> None:
    r = Reassembler()
    results = [r.feed(KEY, 3, seq, f"p{seq}".encode(), now=10.0 + i) for i, seq in enumerate(order)]
    assert results[:2] == [None, None]
    done = results[2]
    assert done == Reassembled(KEY, (b"p1", b"p2", b"p3"))
    assert done.payload == b"p1p2p3"
    assert len(r) == 0 and r.buffered_octets == 0


def test_single_part_message_is_immediate() -> None:
    r = Reassembler()
    assert r.feed(KEY, 1, 1, b"x", now=0.0) == Reassembled(KEY, (b"x",))
    assert len(r) == 0
    assert r.feed(KEY, 1, 1, b"x", now=1.0) is None  # a resent copy is a duplicate


def test_duplicates_are_ignored() -> None:
    r = Reassembler()
    assert r.feed(KEY, 3, 1, b"a", now=0.0) is None
    assert r.feed(KEY, 3, 1, b"DIFFERENT", now=1.0) is None  # the first copy is kept
    assert r.buffered_octets == 1
    assert r.feed(KEY, 3, 2, b"b", now=2.0) is None
    done = r.feed(KEY, 3, 3, b"c", now=3.0)
    assert done is not None and done.payload == b"abc"


def test_duplicate_after_completion_does_not_start_a_ghost_message() -> None:
    r = Reassembler()
    r.feed(KEY, 2, 1, b"a", now=0.0)
    assert r.feed(KEY, 2, 2, b"b", now=1.0) is not None
    assert r.feed(KEY, 2, 2, b"b", now=1.0 + DUPLICATE_WINDOW - 1) is None
    assert len(r) == 0
    # After the window the same key is a new message.
    assert r.feed(KEY, 2, 1, b"x", now=2.0 + DUPLICATE_WINDOW) is None
    assert len(r) == 1


def test_same_reference_other_total_is_another_message() -> None:
    r = Reassembler()
    r.feed(KEY, 2, 1, b"two-1", now=0.0)
    r.feed(KEY, 3, 1, b"three-1", now=0.0)
    assert len(r) == 2
    done = r.feed(KEY, 2, 2, b"two-2", now=1.0)
    assert done is not None and done.payloads == (b"two-1", b"two-2")


def test_missing_part_expires_with_what_arrived() -> None:
    r = Reassembler(timeout=30.0)
    r.feed(KEY, 3, 3, b"c", now=100.0)
    r.feed(KEY, 3, 1, b"a", now=125.0)  # a later part does not move the deadline
    assert r.next_deadline() == 130.0
    assert r.expire(129.9) == []
    (gone,) = r.expire(130.0)
    assert (gone.key, gone.total, gone.first_seen) == (KEY, 3, 100.0)
    assert gone.received == ((1, b"a"), (3, b"c"))
    assert gone.missing == (2,)
    assert len(r) == 0 and r.buffered_octets == 0 and r.next_deadline() is None
    # The late part now starts a new (incomplete) message instead of completing.
    assert r.feed(KEY, 3, 2, b"b", now=131.0) is None


def test_expiry_is_in_arrival_order_and_partial() -> None:
    r = Reassembler(timeout=10.0)
    for i in range(5):
        r.feed(("m", i), 2, 1, b"x", now=float(i))
    assert [g.key for g in r.expire(12.0)] == [("m", 0), ("m", 1), ("m", 2)]
    assert len(r) == 2


@pytest.mark.parametrize(("total", "seq"), [(0, 1), (256, 1), (3, 0), (3, 4), (1, 2)])
def test_impossible_numbering(total: int, seq: int) -> None:
    with pytest.raises(ReassemblyError):
        Reassembler().feed(KEY, total, seq, b"x", now=0.0)


def test_message_bound_refuses_new_messages_but_not_their_parts() -> None:
    r = Reassembler(max_messages=2)
    r.feed("m1", 2, 1, b"a", now=0.0)
    r.feed("m2", 2, 1, b"a", now=0.0)
    with pytest.raises(ReassemblyFull) as info:
        r.feed("m3", 2, 1, b"a", now=0.0)
    assert info.value.transient and info.value.command_status == 0x14  # ESME_RMSGQFUL
    assert r.feed("m1", 2, 2, b"b", now=1.0) is not None  # pending ones still complete
    assert r.feed("m3", 2, 1, b"a", now=1.0) is None  # and free their slot


def test_octet_bound() -> None:
    r = Reassembler(max_octets=100)
    r.feed("m1", 3, 1, bytes(60), now=0.0)
    with pytest.raises(ReassemblyFull):
        r.feed("m1", 3, 2, bytes(41), now=0.0)
    r.feed("m1", 3, 2, bytes(40), now=0.0)
    assert r.buffered_octets == 100
    assert len(r.expire(REASSEMBLY_TIMEOUT)) == 1
    assert r.buffered_octets == 0


def test_255_parts() -> None:
    r = Reassembler()
    total = MAX_PARTS_PER_MESSAGE
    for seq in range(total, 1, -1):
        assert r.feed(KEY, total, seq, bytes((seq,)), now=0.0) is None
    done = r.feed(KEY, total, 1, b"\x01", now=0.0)
    assert done is not None and done.payload == bytes(range(1, 256))


def test_bad_configuration() -> None:
    with pytest.raises(LocalTextError):
        Reassembler(timeout=0)
    with pytest.raises(LocalTextError):
        Reassembler(max_messages=0)


@settings(max_examples=60)
@given(
    st.lists(st.binary(min_size=1, max_size=20), min_size=1, max_size=6),
    st.lists(st.binary(min_size=1, max_size=20), min_size=2, max_size=6),
    st.randoms(use_true_random=False),
)
def test_interleaved_messages_with_duplicates(
    first: list[bytes], second: list[bytes], rnd: random.Random
) -> None:
    feeds = [("A", len(first), i + 1, p) for i, p in enumerate(first)]
    feeds += [("B", len(second), i + 1, p) for i, p in enumerate(second)]
    feeds += rnd.sample(feeds, k=min(3, len(feeds)))  # duplicates
    rnd.shuffle(feeds)
    r = Reassembler()
    completed: dict[str, bytes] = {}
    for n, (key, total, seq, payload) in enumerate(feeds):
        done = r.feed(key, total, seq, payload, now=float(n))
        if done is not None:
            assert done.key not in completed  # exactly once
            completed[key] = done.payload
    assert completed == {"A": b"".join(first), "B": b"".join(second)}
    assert len(r) == 0 and r.buffered_octets == 0


# --- end to end: split_text -> PDU bodies -> read_message -> Reassembler ------


def _deliver(text: str, method: Method, packed: bool = False) -> str:
    """What a receiving ESME would show for `text` sent by herald, parts shuffled."""
    sent = split_text(text, method=method, reference=0x77, packed=packed)
    r = Reassembler()
    result = None
    for i, part in enumerate(reversed(sent.parts)):
        esm_class = UDHI if part.udhi else 0
        body = read_message(part.short_message, esm_class=esm_class,
                            data_coding=part.data_coding, smsc_default=SmscDefault.GSM7,
                            packed=packed)
        if body.udh is not None and body.udh.concat is not None:
            c = body.udh.concat
        elif part.sar is not None:
            c = part.sar
        else:
            return body.text or ""
        result = r.feed(("src", "dst", c.reference), c.total, c.seq, body.body, now=float(i))
    assert result is not None
    return decode(result.payload, body.coding.encoding)


@settings(max_examples=40)
@given(long_gsm_text, st.sampled_from([Method.UDH8, Method.UDH16, Method.SAR]), st.booleans())
def test_gsm_end_to_end(text: str, method: Method, packed: bool) -> None:
    assert _deliver(text.rstrip("\r"), method, packed) == text.rstrip("\r")


@settings(max_examples=40)
@given(unicode_text.filter(lambda t: len(t) > 70), st.sampled_from([Method.UDH8, Method.SAR]))
def test_ucs2_end_to_end(text: str, method: Method) -> None:
    assert _deliver(text, method) == text


def test_joining_octets_repairs_a_foreign_split_pair() -> None:
    # A sender that cut U+1F600 in two: each part alone is invalid UTF-16.
    r = Reassembler()
    r.feed(KEY, 2, 1, bytes.fromhex("0041D83D"), now=0.0)
    done = r.feed(KEY, 2, 2, bytes.fromhex("DE000042"), now=0.0)
    assert done is not None
    assert decode(done.payload, Encoding.UCS2) == "A😀B"


def test_packed_cr_on_a_full_part_boundary_survives() -> None:
    # Part 1 would hold 153 septets ending in CR, exactly on an octet boundary,
    # which a receiver without a septet count strips as padding. The splitter
    # moves that CR to part 2 instead.
    text = "a" * 152 + "\r" + "b" * 20
    sent = split_text(text, packed=True)
    assert sent.parts[0].units == 152
    assert _deliver(text, Method.UDH8, packed=True) == text
    assert _deliver(text, Method.SAR, packed=True) == text
