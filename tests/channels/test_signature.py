"""Provider webhooks are checked over the raw body before anything is read (test 3, pure half)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from herald.channels import (
    VIBER_DEFAULT_SCHEME,
    WHATSAPP_SCHEME,
    HmacScheme,
    ProviderSignatureError,
    header_value,
)

BODY = b'{"object":"whatsapp_business_account","entry":[]}'
SECRET = "app-secret-1"


def test_whatsapp_signature_is_hmac_sha256_of_the_raw_body_with_the_app_secret() -> None:
    expected = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert WHATSAPP_SCHEME.sign(SECRET, BODY) == expected
    WHATSAPP_SCHEME.verify(SECRET, expected, BODY)


@pytest.mark.parametrize("flip", [0, 10, len(BODY) - 1])
def test_one_flipped_byte_of_the_body_is_refused(flip: int) -> None:
    signature = WHATSAPP_SCHEME.sign(SECRET, BODY)
    altered = bytearray(BODY)
    altered[flip] ^= 0x01
    with pytest.raises(ProviderSignatureError) as caught:
        WHATSAPP_SCHEME.verify(SECRET, signature, bytes(altered))
    assert caught.value.http_status == 401


def test_a_flipped_digit_of_the_signature_and_a_wrong_secret_are_refused() -> None:
    signature = WHATSAPP_SCHEME.sign(SECRET, BODY)
    last = signature[-1]
    forged = signature[:-1] + ("0" if last != "0" else "1")
    for secret, value in ((SECRET, forged), ("another-secret", signature)):
        with pytest.raises(ProviderSignatureError) as caught:
            WHATSAPP_SCHEME.verify(secret, value, BODY)
        assert caught.value.http_status == 401


@pytest.mark.parametrize("value", [None, "", "sha1=abc", "sha256=zz", "sha256=" + "a" * 63,
                                   "sha256=" + "a" * 300])
def test_missing_or_malformed_header_is_a_400(value: str | None) -> None:
    with pytest.raises(ProviderSignatureError) as caught:
        WHATSAPP_SCHEME.verify(SECRET, value, BODY)
    assert caught.value.http_status == 400


def test_a_viber_provider_scheme_is_configurable_header_prefix_and_encoding() -> None:
    scheme = HmacScheme("X-Provider-Sig", prefix="v1,", encoding="base64")
    value = scheme.sign(SECRET, BODY)
    assert value.startswith("v1,") and len(value) == 3 + 44
    scheme.verify(SECRET, value, BODY)
    with pytest.raises(ProviderSignatureError):
        VIBER_DEFAULT_SCHEME.verify(SECRET, value, BODY)
    VIBER_DEFAULT_SCHEME.verify(SECRET, VIBER_DEFAULT_SCHEME.sign(SECRET, BODY), BODY)


def test_a_bad_scheme_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="header"):
        HmacScheme("X-Bad: header")
    with pytest.raises(ValueError, match="encoding"):
        HmacScheme("X-Sig", encoding="base32")  # type: ignore[arg-type]


def test_header_names_are_found_case_insensitively() -> None:
    assert header_value({"x-hub-signature-256": "v"}, "X-Hub-Signature-256") == "v"
    assert header_value({}, "X-Hub-Signature-256") is None
