"""Signing and verifying webhook requests; the docs' verification snippet against herald."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.webhooks import (
    DEFAULT_TOLERANCE,
    MAX_SIGNATURE_HEADER_LENGTH,
    MalformedSignature,
    SignatureError,
    SignatureMismatch,
    TimestampOutsideTolerance,
    sign,
    signature_header,
    verify_signature,
)

SECRET = "whsec_test-secret"
BODY = b'{"event_id":"evt_x","type":"message.status"}'
T = 1_800_000_000
# Computed independently of Python's hmac module:
#   printf '1800000000.{"event_id":"evt_x","type":"message.status"}' \
#     | openssl dgst -sha256 -hmac 'whsec_test-secret'
OPENSSL_V1 = "dc2848581de94189433998d346ea5587c8490e4f1c1905401047ee04046915ea"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    assert sign(SECRET, T, BODY) == OPENSSL_V1
    assert signature_header(SECRET, T, BODY) == f"t={T},v1={OPENSSL_V1}"


def test_a_signed_request_verifies_and_gives_its_timestamp() -> None:
    header = signature_header(SECRET, T, BODY)
    assert verify_signature(SECRET, header, BODY, now=T + 12) == T


@pytest.mark.parametrize(
    ("secret", "body"),
    [
        (SECRET, BODY.replace(b"status", b"statuS")),  # altered body
        (SECRET, BODY + b" "),  # trailing byte (a re-serialising framework)
        (SECRET, b""),
        ("whsec_another", BODY),  # another account's secret
        (SECRET[:-1], BODY),
    ],
)
def test_an_altered_body_or_another_secret_is_a_mismatch(secret: str, body: bytes) -> None:
    header = signature_header(SECRET, T, BODY)
    with pytest.raises(SignatureMismatch) as info:
        verify_signature(secret, header, body, now=T)
    assert info.value.http_status == 401


@given(st.binary(min_size=1, max_size=200), st.data())
def test_any_single_bit_flip_is_caught(body: bytes, data: st.DataObject) -> None:
    header = signature_header(SECRET, T, body)
    index = data.draw(st.integers(0, len(body) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(body)
    flipped[index] ^= 1 << bit
    with pytest.raises(SignatureMismatch):
        verify_signature(SECRET, header, bytes(flipped), now=T)


@pytest.mark.parametrize("offset", [DEFAULT_TOLERANCE + 1, -(DEFAULT_TOLERANCE + 1), 86400])
def test_a_timestamp_outside_the_tolerance_is_refused(offset: float) -> None:
    header = signature_header(SECRET, T, BODY)
    with pytest.raises(TimestampOutsideTolerance) as info:
        verify_signature(SECRET, header, BODY, now=T + offset)
    assert info.value.age == offset
    assert info.value.http_status == 401


def test_the_tolerance_bound_itself_is_accepted_and_is_configurable() -> None:
    header = signature_header(SECRET, T, BODY)
    assert verify_signature(SECRET, header, BODY, now=T + DEFAULT_TOLERANCE) == T
    assert verify_signature(SECRET, header, BODY, now=T - DEFAULT_TOLERANCE) == T
    with pytest.raises(TimestampOutsideTolerance):
        verify_signature(SECRET, header, BODY, now=T + 31, tolerance=30)
    with pytest.raises(ValueError):
        verify_signature(SECRET, header, BODY, now=T, tolerance=-1)


def test_a_forged_stale_request_is_reported_as_a_mismatch() -> None:
    header = signature_header("whsec_forger", T, BODY)
    with pytest.raises(SignatureMismatch):
        verify_signature(SECRET, header, BODY, now=T + 10 * DEFAULT_TOLERANCE)


V1 = "v1=" + OPENSSL_V1


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"t={T}",  # no signature
        V1,  # no timestamp
        f"t=abc,{V1}",
        f"t=-5,{V1}",
        f"t=1٨00000000,{V1}",  # a non-ASCII digit
        f"t={10**13},{V1}",  # past the digit bound
        f"t={T},t={T},{V1}",
        f"t={T},v1={OPENSSL_V1[:-1]}",  # one digit short
        f"t={T},v1={OPENSSL_V1.upper()}",  # herald sends lower case
        f"t={T},v1={'g' * 64}",
        f"t={T},{V1}," + "x=" + "y" * MAX_SIGNATURE_HEADER_LENGTH,  # too long
    ],
)
def test_a_malformed_header_is_refused_before_any_hmac(header: str | None) -> None:
    with pytest.raises(MalformedSignature) as info:
        verify_signature(SECRET, header, BODY, now=T)
    assert info.value.http_status == 400
    assert isinstance(info.value, SignatureError)


def test_any_matching_v1_passes_and_unknown_schemes_are_ignored() -> None:
    rotated = f"t={T},v1={sign('whsec_old', T, BODY)},{V1},v2=whatever"
    assert verify_signature(SECRET, rotated, BODY, now=T) == T
    spaced = f"t={T}, {V1}"
    assert verify_signature(SECRET, spaced, BODY, now=T) == T


def _docs_verify() -> Callable[..., bool]:
    """The ``verify`` function from docs/webhooks.md, run as a customer would."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    (source,) = [b for b in blocks if "def verify(" in b]
    namespace: dict[str, object] = {}
    exec(compile(source, str(DOCS), "exec"), namespace)
    verify = namespace["verify"]
    assert callable(verify)
    return verify  # type: ignore[no-any-return]


def test_the_documented_snippet_agrees_with_herald() -> None:
    verify = _docs_verify()
    header = signature_header(SECRET, T, BODY)
    assert verify(SECRET, header, BODY, now=T + 5)
    assert not verify(SECRET, header, BODY + b"x", now=T + 5)
    assert not verify("whsec_other", header, BODY, now=T + 5)
    assert not verify(SECRET, header, BODY, now=T + DEFAULT_TOLERANCE + 1)
    assert not verify(SECRET, "garbage", BODY, now=T)
    assert not verify(SECRET, f"v1={OPENSSL_V1}", BODY, now=T)
    rotated = f"t={T},v1={sign('whsec_old', T, BODY)},{V1},v2=x"
    assert verify(SECRET, rotated, BODY, now=T)
