"""The sender's decisions as data: retry schedule, callback URL rules, blocked addresses."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.config import WebhookConfig
from herald.store import MAX_CALLBACK_URL_LENGTH
from herald.webhooks import (
    JITTER,
    InvalidWebhookUrl,
    RetryPolicy,
    address_allowed,
    blocked_destination,
    check_url,
    endpoint,
    literal_address,
    redact_url,
)

# -- retry schedule ----------------------------------------------------------------


def test_steps_double_from_backoff_min_up_to_backoff_max() -> None:
    policy = RetryPolicy(backoff_min=1.0, backoff_max=600.0, max_attempts=12)
    assert [policy.step(n) for n in range(1, 13)] == [
        1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600,
    ]  # fmt: skip
    assert policy.step(10_000) == 600.0  # no overflow far out


def test_jitter_takes_at_most_half_a_step_and_never_goes_below_backoff_min() -> None:
    policy = RetryPolicy(backoff_min=10.0, backoff_max=80.0, max_attempts=9)
    assert policy.delay(4, 0.0) == 80.0  # no jitter drawn: the whole step
    assert policy.delay(4, 0.5) == 80.0 * (1 - JITTER * 0.5)
    assert policy.delay(1, 0.99) == 10.0  # half of 10 s would be below backoff_min
    assert policy.delay(2, 0.99) == pytest.approx(10.1)


@given(
    st.floats(0.01, 100.0),
    st.floats(1.0, 1000.0),
    st.integers(1, 200),
    st.floats(0.0, 1.0, exclude_max=True),
)
def test_every_delay_lies_within_its_bounds(
    backoff_min: float, factor: float, failures: int, draw: float
) -> None:
    policy = RetryPolicy(backoff_min, backoff_min * factor, max_attempts=100)
    step = min(policy.backoff_max, backoff_min * 2.0 ** min(failures - 1, 60))
    delay = policy.delay(failures, draw)
    assert max(backoff_min, step * (1 - JITTER)) <= delay <= step <= policy.backoff_max


def test_next_attempt_until_max_attempts_and_never_for_hopeless_failures() -> None:
    policy = RetryPolicy.from_config(WebhookConfig(backoff_min=2, backoff_max=8, max_attempts=3))
    assert policy.next_attempt_at(100.0, 1, retryable=True, draw=0.0) == 102.0
    assert policy.next_attempt_at(100.0, 2, retryable=True, draw=0.0) == 104.0
    assert policy.next_attempt_at(100.0, 3, retryable=True, draw=0.0) is None
    assert policy.next_attempt_at(100.0, 7, retryable=True, draw=0.0) is None  # crashes inflate
    assert policy.next_attempt_at(100.0, 1, retryable=False, draw=0.0) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"backoff_min": 0.0},
        {"backoff_min": float("nan")},
        {"backoff_min": 5.0, "backoff_max": 4.0},
        {"backoff_max": float("inf")},
        {"max_attempts": 0},
    ],
)
def test_a_policy_that_cannot_work_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("failures", "draw"), [(0, 0.5), (1, 1.0), (1, -0.1)])
def test_out_of_range_arguments_are_refused(failures: int, draw: float) -> None:
    with pytest.raises(ValueError):
        RetryPolicy().delay(failures, draw)


# -- callback URLs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port"),
    [
        ("https://example.com/hooks/herald", "https", "example.com", 443),
        ("http://Example.COM:8080/h?x=1", "http", "example.com", 8080),
        ("HTTPS://example.com", "https", "example.com", 443),
        ("https://user:pa%40ss@example.com/h", "https", "example.com", 443),
        ("http://[2001:db8::1]:9000/h", "http", "2001:db8::1", 9000),
        ("http://127.0.0.1:5000/h", "http", "127.0.0.1", 5000),
    ],
)
def test_http_and_https_urls_are_accepted(url: str, scheme: str, host: str, port: int) -> None:
    target = check_url(url)
    assert (target.url, target.scheme, target.host, target.port) == (url, scheme, host, port)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "empty"),
        ("ftp://example.com/x", "scheme must be http or https, not 'ftp'"),
        ("file:///etc/passwd", "scheme must be http or https, not 'file'"),
        ("javascript:alert(1)", "scheme must be http or https"),
        ("gopher://example.com:70/", "scheme must be http or https"),
        ("example.com/hook", "scheme must be http or https, not 'none'"),
        ("http:///hook", "names no host"),
        ("https://example.com:0/", "port must be 1..65535"),
        ("https://example.com:70000/", "does not parse"),
        ("https://example.com:http/", "does not parse"),
        ("http://[::1/", "does not parse"),
        ("https://exa mple.com/", "whitespace or control"),
        ("https://example.com/\r\nX-Injected: 1", "whitespace or control"),
        ("https://example.com/" + "a" * MAX_CALLBACK_URL_LENGTH, "longer than"),
    ],
)
def test_other_urls_are_refused_saying_why(url: str, reason: str) -> None:
    with pytest.raises(InvalidWebhookUrl, match="callback URL") as info:
        check_url(url)
    assert reason in str(info.value)
    assert not info.value.retryable


def test_user_info_is_redacted_for_logs() -> None:
    assert redact_url("https://user:secret@example.com:8443/h?q=1") == (
        "https://***@example.com:8443/h?q=1"
    )
    assert redact_url("https://example.com/h") == "https://example.com/h"
    assert redact_url("http://[::1/") == "<unparsable URL>"


def test_an_endpoint_is_the_urls_host_and_port_never_its_secrets() -> None:
    """What a message's timeline names a webhook attempt by: user info, path and
    query may carry a customer's secrets, so none of them."""
    assert endpoint("https://user:secret@Hooks.Example.com:8443/h?token=t") == \
        "hooks.example.com:8443"
    assert endpoint("https://hooks.example.com/h?token=t") == "hooks.example.com"
    assert endpoint("http://[2001:db8::1]:8080/h") == "[2001:db8::1]:8080"
    assert endpoint("mailto:someone") == endpoint("http://host:99999/") == ""


# -- addresses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("::ffff:8.8.8.8", True),  # IPv4-mapped: judged by the IPv4 address
        ("127.0.0.1", False),  # loopback
        ("127.255.0.9", False),
        ("::1", False),
        ("10.1.2.3", False),  # RFC 1918
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # link-local: cloud metadata services
        ("fe80::1", False),
        ("fc00::1", False),  # RFC 4193 unique local
        ("100.64.0.1", False),  # RFC 6598 shared address space
        ("0.0.0.0", False),
        ("::", False),
        ("224.0.0.1", False),  # multicast
        ("ff02::1", False),
        ("240.0.0.1", False),  # reserved
        ("192.0.2.1", False),  # documentation
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("2002:a00:1::", False),  # 6to4 of 10.0.0.1
    ],
)
def test_only_globally_routable_unicast_addresses_are_allowed(address: str, allowed: bool) -> None:
    assert address_allowed(ipaddress.ip_address(address)) is allowed


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"), ("::1", "::1"), ("[::1]", "::1"),
        # the IPv4 forms C's inet_aton, resolvers and HTTP clients read as addresses
        ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"), ("10.1", "10.0.0.1"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        # names, and numbers no resolver reads as one address
        ("hooks.example.com", None), ("256.1.1.1", None), ("1.2.3.4.5", None), ("0x", None),
        ("1.2.3.99999999", None), ("08.1.1.1", None),
    ],
)
def test_literal_addresses_in_every_form_a_client_reads(host: str, address: str | None) -> None:
    found = literal_address(host)
    assert (None if found is None else str(found)) == address
    if ":" not in host:  # and it reads them as the C library does
        try:
            expected: str | None = socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            expected = None
        assert address == expected


@pytest.mark.parametrize(
    ("url", "blocked"),
    [
        ("http://169.254.169.254/latest/meta-data", True), ("http://localhost:6379/", True),
        ("http://api.localhost/", True), ("http://[::1]:22/", True),
        ("http://0x7f000001/internal-admin", True), ("http://[::ffff:10.0.0.1]/", True),
        ("https://hooks.example.com/h", False), ("http://8.8.8.8/", False),
    ],
)
def test_a_destination_known_blocked_without_resolving(url: str, blocked: bool) -> None:
    reason = blocked_destination(url)
    assert (reason is not None) is blocked, reason


@given(st.text(alphabet="0123456789.xXabcdefABF_+-", min_size=1, max_size=20))
def test_literal_addresses_agree_with_the_c_library(host: str) -> None:
    # A URL host cannot hold whitespace, where inet_aton stops reading.
    try:
        expected: str | None = socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        expected = None
    found = literal_address(host)
    assert (None if found is None else str(found)) == expected
