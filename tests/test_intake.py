"""Shared intake validation: each refusal names its field, code and wire statuses."""

from __future__ import annotations

import base64
import random

import phonenumbers
import pytest

from herald.intake import (
    DEFAULT_VALIDITY_PERIOD,
    MAX_E164_DIGITS,
    MAX_VALIDITY_PERIOD,
    MIN_VALIDITY_PERIOD,
    SEND_AT_SKEW,
    EncodingChoice,
    IntakeError,
    IntakePolicy,
    InvalidBody,
    InvalidDestination,
    InvalidField,
    InvalidSchedule,
    InvalidSource,
    InvalidSubmission,
    InvalidValidity,
    Schedule,
    SenderKind,
    TooLong,
    build_message,
    check_callback_url,
    check_reference,
    decode_base64,
    normalize_destination,
    parse_time,
    prepare_binary,
    prepare_encoded,
    prepare_text,
    schedule,
    sender_kind,
    serialize_metadata,
    validate_sender,
)
from herald.smpp.constants import CommandStatus
from herald.store import MAX_BODY_OCTETS, InvalidRecord, Source
from herald.text import Encoding, analyze

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
LENIENT = IntakePolicy(require_valid_number=False)


# -- destination -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "digits"),
    [
        ("+14155552671", "14155552671"),
        ("14155552671", "14155552671"),  # digits alone are read as international
        ("+1 (415) 555-2671", "14155552671"),
        ("+33 6 12 34 56 78", "33612345678"),
        ("+49.1512.3456789", "4915123456789"),
    ],
)
def test_destination_is_normalised_to_e164_digits(given: str, digits: str) -> None:
    assert normalize_destination(given) == digits


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("", "required"),
        ("hello", "not_a_number"),
        ("+1-800-FLOWERS", "not_a_number"),
        ("٤١٥٥٥٥٢٦٧١", "not_a_number"),  # Arabic-Indic digits are not E.164 digits
        ("+1234567890123456", "too_long"),  # 16 digits
        ("1" * 40, "too_long"),  # refused before phonenumbers parses it
        ("+999123456", "invalid_country_code"),
        ("+1415", "too_short"),
        ("+4477009001234", "too_long"),  # too long for the UK plan
        ("+447700900123", "not_valid"),  # Ofcom drama range: possible, never assigned
    ],
)
def test_bad_destination_names_field_and_reason(given: str, code: str) -> None:
    with pytest.raises(InvalidDestination) as caught:
        normalize_destination(given)
    assert caught.value.field == "to"
    assert caught.value.code == code
    assert caught.value.smpp_status is CommandStatus.ESME_RINVDSTADR
    assert caught.value.http_status == 422


def _oracle(digits: str) -> str | None:
    """What phonenumbers' own parse makes of ``+digits``: E.164 digits, or None if refused."""
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    # herald also refuses numbers only dialable locally (IS_POSSIBLE_LOCAL_ONLY).
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def _example_numbers() -> list[str]:
    found = set()
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in range(12):  # every PhoneNumberType with examples
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                found.add(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        example = phonenumbers.example_number_for_non_geo_entity(code)
        if example is not None:
            found.add(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    return sorted(n[1:] for n in found)


def test_fast_path_agrees_with_phonenumbers_parse_everywhere() -> None:
    # Every region's example numbers, and near misses: a digit changed, one more,
    # one less, a trunk prefix ('0', '8') after the country code.
    rng = random.Random(3)
    samples = []
    for digits in _example_numbers():
        samples.append(digits)
        for _ in range(3):
            i = rng.randrange(len(digits))
            samples.append(digits[:i] + str(rng.randrange(10)) + digits[i + 1 :])
        samples += [digits + "7", digits[:-1]]
        samples += [digits[:k] + p + digits[k:] for k in (1, 2, 3) for p in "08"]
    samples = [s for s in samples if len(s) <= MAX_E164_DIGITS]
    assert len(samples) > 5000
    for digits in samples:
        try:
            ours: str | None = normalize_destination(digits)
        except InvalidDestination:
            ours = None
        assert ours == _oracle(digits), digits


def test_a_trunk_prefix_after_the_country_code_is_dropped() -> None:
    assert normalize_destination("+7 8 912 345 67 89") == "79123456789"
    assert normalize_destination("+49 0 30 123456") == "4930123456"


def test_lenient_policy_accepts_possible_but_unassigned_numbers() -> None:
    assert normalize_destination("+447700900123", policy=LENIENT) == "447700900123"
    with pytest.raises(InvalidDestination, match="too short"):
        normalize_destination("+1415", policy=LENIENT)


def test_operator_test_prefixes_skip_the_numbering_plan() -> None:
    policy = IntakePolicy(test_prefixes=("999",))
    assert normalize_destination("+999 0001", policy=policy) == "9990001"
    with pytest.raises(InvalidDestination) as caught:
        normalize_destination("+999 0001")  # not without the policy
    assert caught.value.code == "invalid_country_code"
    with pytest.raises(InvalidDestination):
        normalize_destination("+999" + "1" * 13, policy=policy)  # still at most 15 digits
    assert normalize_destination("+14155552671", policy=policy) == "14155552671"
    with pytest.raises(ValueError):
        IntakePolicy(test_prefixes=("+999",))


def test_destination_field_name_is_the_callers() -> None:
    with pytest.raises(InvalidDestination) as caught:
        normalize_destination("x", field="destination_addr")
    assert caught.value.field == "destination_addr"
    assert str(caught.value).startswith("destination_addr: ")


# -- sender ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored", "kind"),
    [
        ("ACME", "ACME", SenderKind.ALPHANUMERIC),
        ("Acme Bank", "Acme Bank", SenderKind.ALPHANUMERIC),
        ("ÄÖÜ-shop", "ÄÖÜ-shop", SenderKind.ALPHANUMERIC),
        ("12345", "12345", SenderKind.SHORT_CODE),
        ("555-123", "555123", SenderKind.SHORT_CODE),
        ("+14155552671", "+14155552671", SenderKind.INTERNATIONAL),
        ("14155552671", "+14155552671", SenderKind.INTERNATIONAL),  # > 8 digits: E.164
    ],
)
def test_sender_forms(given: str, stored: str, kind: SenderKind) -> None:
    sender = validate_sender(given)
    assert (sender.value, sender.kind) == (stored, kind)
    assert sender_kind(sender.value) is kind  # the stored form keeps the kind


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("", "required"),
        ("ACME-Bank-Ltd", "too_long"),  # 13 characters
        ("{ACME}{ACME}", "too_long"),
        ("{A}{B}{C}", "too_long"),  # 9 characters, 15 septets: braces count two
        ("Café☃", "invalid_characters"),  # not in the GSM alphabet
        ("AC\nME", "invalid_characters"),
        (" ACME", "invalid_characters"),
        ("12", "too_short"),
        ("+447700900123", "not_valid"),
        ("+12", "too_short"),
    ],
)
def test_bad_sender(given: str, code: str) -> None:
    with pytest.raises(InvalidSource) as caught:
        validate_sender(given)
    assert (caught.value.field, caught.value.code) == ("from", code)
    assert caught.value.smpp_status is CommandStatus.ESME_RINVSRCADR


def test_sender_kind_given_by_smpp_ton() -> None:
    number = validate_sender("14155552671", kind=SenderKind.INTERNATIONAL, field="source_addr")
    assert number.value == "+14155552671"
    with pytest.raises(InvalidSource, match=r"3\.\.8 digits"):
        validate_sender("123456789", kind=SenderKind.SHORT_CODE)
    with pytest.raises(InvalidSource) as caught:
        validate_sender("ACME", kind=SenderKind.SHORT_CODE, field="source_addr")
    assert (caught.value.field, caught.value.code) == ("source_addr", "invalid_characters")
    assert validate_sender("1234", kind=SenderKind.ALPHANUMERIC).kind is SenderKind.ALPHANUMERIC
    assert SenderKind.ALPHANUMERIC.ton == 5 and SenderKind.INTERNATIONAL.npi == 1


# -- body ----------------------------------------------------------------------------


def test_auto_picks_gsm7_then_ucs2_and_counts_parts_like_herald_text() -> None:
    for text in ("hello", "x" * 160, "x" * 161, "€" * 80, "héllo ☃", "☃" * 71):
        body = prepare_text(text)
        expected = analyze(text)
        assert (body.encoding, body.segments, body.data_coding) == (
            expected.encoding, expected.segments, expected.data_coding,
        )
    assert prepare_text("x" * 161).segments == 2
    assert prepare_text("€" * 80).segments == 1  # 160 septets: the euro sign is two
    assert prepare_text("€" * 81).segments == 2
    assert prepare_text("☃" * 70).encoding is Encoding.UCS2


def test_body_is_stored_encoded_gsm_unpacked_ucs2_big_endian() -> None:
    assert prepare_text("@A{").data == b"\x00A\x1b\x28"
    assert prepare_text("hé☃", EncodingChoice.UCS2).data == "hé☃".encode("utf-16-be")
    long = prepare_text("y" * 500)
    assert long.data == b"y" * 500 and long.segments == 4


def test_forced_gsm7_refuses_characters_it_cannot_carry() -> None:
    with pytest.raises(InvalidBody) as caught:
        prepare_text("snow ☃", EncodingChoice.GSM7)
    assert caught.value.code == "not_encodable" and "U+2603 at position 5" in str(caught.value)


def test_binary_encoding_with_text_is_a_conflict_on_encoding() -> None:
    with pytest.raises(InvalidBody) as caught:
        prepare_text("hi", EncodingChoice.BINARY)
    assert (caught.value.field, caught.value.code) == ("encoding", "conflict")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("☃" * (67 * 255 + 1), "needs 256 parts; at most 255"),
        ("z" * (153 * 255 + 1), "needs 256 parts; at most 255"),  # GSM: 255 x 153 septets
        ("z" * 100_000, "at most 255"),
    ],
)
def test_oversized_text_names_field_and_limit(text: str, needle: str) -> None:
    with pytest.raises(TooLong) as caught:
        prepare_text(text)
    assert (caught.value.field, caught.value.code) == ("text", "too_long")
    assert needle in caught.value.message
    assert caught.value.smpp_status is CommandStatus.ESME_RINVMSGLEN


def test_largest_texts_that_fit() -> None:
    assert prepare_text("☃" * (67 * 255)).segments == 255
    gsm = prepare_text("z" * MAX_BODY_OCTETS)  # the store holds a whole 255-part GSM text
    assert gsm.segments == 255 and len(gsm.data) == MAX_BODY_OCTETS == 153 * 255


def test_policy_can_lower_the_part_limit() -> None:
    with pytest.raises(TooLong, match="at most 3"):
        prepare_text("x" * 500, policy=IntakePolicy(max_parts=3))


def test_empty_text_and_binary_are_refused() -> None:
    with pytest.raises(InvalidBody, match="empty"):
        prepare_text("")
    with pytest.raises(InvalidBody, match="empty"):
        prepare_binary(b"")


def test_binary_body_from_base64() -> None:
    data = bytes(range(256)) * 2
    body = prepare_binary(decode_base64(base64.b64encode(data).decode()))
    assert (body.data, body.encoding, body.data_coding, body.segments) == (
        data, Encoding.BINARY, 0x04, 4,  # 512 octets in parts of 134
    )


@pytest.mark.parametrize("bad", ["not base64!", "AAA", "QUJD\nRA==", "ñ", "QQ=="[:3]])
def test_bad_base64(bad: str) -> None:
    with pytest.raises(InvalidBody) as caught:
        decode_base64(bad)
    assert (caught.value.field, caught.value.code) == ("binary", "invalid_base64")


def test_huge_base64_is_refused_before_decoding() -> None:
    with pytest.raises(TooLong):
        decode_base64("A" * (MAX_BODY_OCTETS * 2))


def test_encoded_body_from_smpp() -> None:
    gsm = prepare_encoded(b"hello" * 40, 0)
    assert (gsm.encoding, gsm.data_coding, gsm.segments) == (Encoding.GSM7, 0, 2)
    ucs2 = prepare_encoded("☃".encode("utf-16-be") * 71, 8)
    assert (ucs2.encoding, ucs2.segments) == (Encoding.UCS2, 2)
    latin = prepare_encoded("café".encode("latin-1"), 3)
    assert latin.encoding is Encoding.LATIN1 and latin.data == b"caf\xe9"
    assert prepare_encoded(b"\xff" * 300, 4).segments == 3
    with pytest.raises(InvalidBody) as caught:
        prepare_encoded(b"\xd8\x00", 8)  # a lone high surrogate
    assert caught.value.code == "not_decodable"
    with pytest.raises(InvalidBody) as caught:
        prepare_encoded(b"\x80", 0)  # not a GSM 7-bit septet
    assert caught.value.code == "not_decodable"
    with pytest.raises(InvalidBody) as caught:
        prepare_encoded(b"x", 0x05)  # JIS: herald does not carry it as text
    assert (caught.value.field, caught.value.code) == ("data_coding", "invalid_data_coding")


# -- schedule ----------------------------------------------------------------------


def test_default_validity_counts_from_when_the_message_is_due() -> None:
    assert schedule(T0) == Schedule(None, T0 + DEFAULT_VALIDITY_PERIOD)
    later = T0 + 5 * 86400
    assert schedule(T0, send_at=later) == Schedule(later, later + DEFAULT_VALIDITY_PERIOD)


def test_explicit_validity_counts_from_acceptance() -> None:
    assert schedule(T0, validity_period=600) == Schedule(None, T0 + 600)
    assert schedule(T0, validity_period=600, send_at=T0 + 60) == Schedule(T0 + 60, T0 + 600)
    with pytest.raises(InvalidSchedule) as caught:
        schedule(T0, validity_period=600, send_at=T0 + 600)
    assert (caught.value.field, caught.value.code) == ("send_at", "after_expiry")


@pytest.mark.parametrize(
    "period", [0, MIN_VALIDITY_PERIOD - 1, MAX_VALIDITY_PERIOD + 1, float("inf"), -5]
)
def test_validity_out_of_range(period: float) -> None:
    with pytest.raises(InvalidValidity) as caught:
        schedule(T0, validity_period=period)
    assert (caught.value.field, caught.value.code) == ("validity_period", "out_of_range")
    assert caught.value.smpp_status is CommandStatus.ESME_RINVEXPIRY


@pytest.mark.parametrize("period", ["3600", True, [1]])
def test_validity_of_wrong_type(period: object) -> None:
    with pytest.raises(InvalidValidity, match="number of seconds"):
        schedule(T0, validity_period=period)


def test_send_at_forms_and_limits() -> None:
    assert schedule(T0, send_at="2027-01-15T09:00:00Z").send_at == T0 + 3600
    assert schedule(T0, send_at="2027-01-15T10:00:00+01:00").send_at == T0 + 3600
    assert schedule(T0, send_at=T0 + 3600.5).send_at == T0 + 3600.5
    assert schedule(T0, send_at=T0 - SEND_AT_SKEW).send_at is None  # within skew: now
    for value, code in [
        (T0 - SEND_AT_SKEW - 1, "in_the_past"),
        (T0 + 31 * 86400, "too_far"),
        ("2027-01-15T09:00:00", "invalid_time"),  # no offset (RFC 3339 §5.6 requires one)
        ("tomorrow", "invalid_time"),
        ("2027-02-30T09:00:00Z", "invalid_time"),
        (True, "invalid_time"),
        (float("nan"), "invalid_time"),
    ]:
        with pytest.raises(InvalidSchedule) as caught:
            schedule(T0, send_at=value)
        assert (caught.value.code, caught.value.field) == (code, "send_at"), value
        assert caught.value.smpp_status is CommandStatus.ESME_RINVSCHED


def test_absolute_expiry_for_smpp() -> None:
    assert schedule(T0, expires_at=T0 + 3600).expires_at == T0 + 3600
    with pytest.raises(InvalidValidity):
        schedule(T0, expires_at=T0 - 1)
    with pytest.raises(ValueError, match="not both"):
        schedule(T0, expires_at=T0 + 3600, validity_period=60)


def test_parse_time_epoch_and_rfc3339_agree() -> None:
    assert parse_time("2027-01-15T08:00:00.250Z") == T0 + 0.25
    assert parse_time(T0) == T0


# -- other fields and the record -------------------------------------------------------


def test_reference_metadata_and_callback_url() -> None:
    assert check_reference("order-42") == "order-42"
    assert serialize_metadata({"b": [1, 2], "é": None}) == '{"b":[1,2],"é":null}'
    assert check_callback_url("https://hooks.example.com/herald?x=1") is not None
    for fn, value, code in [
        (check_reference, "", "empty"),
        (check_reference, "r" * 129, "too_long"),
        (check_reference, "a\nb", "invalid_characters"),
        (serialize_metadata, [1, 2], "wrong_type"),
        (serialize_metadata, {"x": "y" * 5000}, "too_long"),
        (serialize_metadata, {"x": float("nan")}, "wrong_type"),
        (check_callback_url, "ftp://example.com/", "invalid_url"),
        (check_callback_url, "/relative", "invalid_url"),
        (check_callback_url, "https://user:pw@example.com/", "invalid_url"),
        (check_callback_url, "https://example.com:99999/", "invalid_url"),
        (check_callback_url, "https://exa mple.com/", "invalid_url"),
        (check_callback_url, "https://e.com/" + "x" * 2048, "too_long"),
    ]:
        with pytest.raises(InvalidField) as caught:
            fn(value)
        assert caught.value.code == code, (fn.__name__, value)


def test_build_message_makes_a_store_record() -> None:
    message = build_message(
        message_id="06h11qous77dhhpl8rp6cclmqg",
        account_id=7,
        source=Source.SMPP,
        to=normalize_destination("+14155552671"),
        sender=validate_sender("ACME"),
        body=prepare_text("hello"),
        schedule=schedule(T0, validity_period=3600),
        now=T0,
        registered_delivery=1,
    )
    assert (message.to, message.sender, message.body, message.encoding) == (
        "14155552671", "ACME", b"hello", "gsm7",
    )
    assert (message.expires_at, message.registered_delivery) == (T0 + 3600, 1)


def test_the_store_refuses_what_intake_would_never_build() -> None:
    # The intake's limits are the store's, so a record that passed intake is never refused;
    # this shows the store would catch one that skipped it.
    with pytest.raises(InvalidRecord):
        build_message(
            message_id="x", account_id=1, source=Source.HTTP, to="1" * 21,
            sender=validate_sender("ACME"), body=prepare_text("hi"), schedule=schedule(T0),
            now=T0,
        )  # fmt: skip


def test_invalid_submission_carries_every_error_and_the_first_wire_status() -> None:
    errors: tuple[IntakeError, ...] = (
        InvalidSource("from", "bad", "too_long"),
        InvalidDestination("to", "bad", "not_valid"),
    )
    combined = InvalidSubmission(errors)
    assert combined.errors == errors
    assert (combined.field, combined.code) == ("from", "too_long")
    assert combined.smpp_status is CommandStatus.ESME_RINVSRCADR
    with pytest.raises(ValueError):
        InvalidSubmission(())


def test_policy_rejects_incoherent_settings() -> None:
    with pytest.raises(ValueError):
        IntakePolicy(min_validity=100, default_validity=50)
    with pytest.raises(ValueError):
        IntakePolicy(max_parts=256)
