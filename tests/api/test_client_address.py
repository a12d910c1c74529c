"""The client's address the pumping defence sees (docs/fraud.md, "Live"): the
peer's, or X-Forwarded-For's from the reverse proxies ``[http] trusted_proxies``
names; the engine's address-block cell then closes a pumping client."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from herald.api._client import client_address
from herald.config import ConfigError, HttpConfig, parse_config
from herald.defence import LiveDefence
from herald.fraud import AddressTypes
from herald.ids import SortableIdGenerator
from herald.rating import parse_price_list
from herald.store import SQLiteStore

from .conftest import ApiFactory
from .test_fraud import _billed
from .test_verify import _check, _code

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32"))


def _scope(peer: str | None, *forwarded: str) -> dict[str, Any]:
    return {"client": None if peer is None else (peer, 40000),
            "headers": [(b"x-forwarded-for", f.encode()) for f in forwarded]}


@pytest.mark.parametrize(("peer", "forwarded", "proxies", "expected"), [
    ("192.0.2.7", (), PROXIES, "192.0.2.7"),  # no header: the peer
    ("192.0.2.7", ("203.0.113.9",), PROXIES, "192.0.2.7"),  # an untrusted peer's header
    ("10.1.2.3", ("203.0.113.9",), (), "10.1.2.3"),  # no proxy trusted at all
    ("10.1.2.3", ("203.0.113.9",), PROXIES, "203.0.113.9"),
    # read from the right, past the trusted hops; what the client wrote is left of it
    ("10.1.2.3", ("198.51.100.1, 203.0.113.9, 10.9.9.9",), PROXIES, "203.0.113.9"),
    ("10.1.2.3", ("198.51.100.1", "203.0.113.9"), PROXIES, "203.0.113.9"),  # two headers
    ("10.1.2.3", ("10.7.7.7, 10.9.9.9",), PROXIES, "10.7.7.7"),  # proxies all the way
    ("10.1.2.3", ("203.0.113.9, nonsense",), PROXIES, "10.1.2.3"),  # a bad entry stops it
    ("2001:db8::1", ("2001:0db8:0000::5, 2a00:1450::8",), PROXIES, "2a00:1450::8"),
    ("testclient", ("203.0.113.9",), PROXIES, None),  # a peer that is no address
    (None, (), PROXIES, None),
])  # fmt: skip
def test_the_client_address(peer: str | None, forwarded: tuple[str, ...],
                            proxies: tuple[Any, ...], expected: str | None) -> None:
    assert client_address(_scope(peer, *forwarded), proxies) == expected


def test_trusted_proxies_are_read_from_the_config_and_checked() -> None:
    config = parse_config({"http": {"trusted_proxies": ["10.0.0.0/8", "192.0.2.1"]}})
    assert config.http.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"),
                                           ipaddress.ip_network("192.0.2.1/32"))
    with pytest.raises(ConfigError, match=r"trusted_proxies\[1\].*'10.0.0.300'"):
        parse_config({"http": {"trusted_proxies": ["10.0.0.0/8", "10.0.0.300"]}})


GB = parse_price_list(["destination,price\n", "+44,0.50\n"])


async def test_a_pumping_client_behind_a_trusted_proxy_is_closed_by_its_address(
    make_api: ApiFactory, store: SQLiteStore,
) -> None:
    defence = LiveDefence(store, SortableIdGenerator())
    api = await _billed(make_api, GB, client="10.1.2.3", defence=defence,
                        config=HttpConfig(trusted_proxies=PROXIES[:1]))
    # The account's users in the UK, from their own addresses, type their codes.
    for n in range(120):
        to = f"+4478{n % 90 + 10:02d}{n * 7919 % 10**6:06d}"
        screening = await defence.screen(
            account_id=api.account.id, to=to, use_case="other", message_id=f"h{n}",
            rating=GB.rate(to.removeprefix("+"), None, 1), now=api.clock(),
            hints={"ip": f"192.0.{n % 200}.{n % 250 + 1}"})
        assert not screening.refuse
        api.clock.advance(20)
        defence.converted(f"h{n}", api.clock())
    # A bot behind the proxy asks for codes to a new range each time, typing none.
    answers = []
    for n in range(40):  # bounded: it is closed long before
        answer = await api.client.post(
            "/v1/verifications", json={"to": f"+4479{10 + n:02d}{n:06d}"},
            headers={**api.auth, "X-Forwarded-For": "198.51.100.1, 203.0.113.9"})
        answers.append(answer)
        api.clock.advance(30)
        if answer.status_code == 403:
            break
    assert [a.status_code for a in answers[:-1]] == [201] * (len(answers) - 1)
    decision = answers[-1].json()["decision"]
    assert decision["reasons"][-1]["cell"].startswith("ip_block:?|203.0.113")
    stored = await store.get_fraud_decision(decision["id"], api.account.id)
    assert stored.request["ip"] == "203.0.113.9"  # what the engine was asked
    # A user of the account elsewhere (another address) is not refused.
    other = await api.client.post("/v1/verifications", json={"to": "+447955123456"},
                                  headers={**api.auth, "X-Forwarded-For": "192.0.2.200"})
    assert other.status_code == 201, other.text


async def test_the_header_of_an_untrusted_peer_is_not_believed(make_api: ApiFactory) -> None:
    api = await _billed(make_api, GB, client="192.0.2.7")
    answer = await api.client.post("/v1/verifications", json={"to": "+447911123456"},
                                   headers={**api.auth, "X-Forwarded-For": "203.0.113.9"})
    assert answer.status_code == 201, answer.text
    stored = await api.store.get_fraud_decision(answer.json()["fraud"]["id"], api.account.id)
    assert stored.request["ip"] == "192.0.2.7"
    # The body's own hint (the end user's address) wins over the request's.
    hinted = await api.client.post("/v1/verifications", headers=api.auth,
                                   json={"to": "+447911123457", "ip": "198.51.100.4"})
    stored = await api.store.get_fraud_decision(hinted.json()["fraud"]["id"], api.account.id)
    assert stored.request["ip"] == "198.51.100.4"


@pytest.mark.parametrize("fast_send", [True, False])
async def test_otp_messages_are_screened_with_the_client_address(make_api: ApiFactory,
                                                                 fast_send: bool) -> None:
    api = await _billed(make_api, GB, client="10.1.2.3", fast_send=fast_send,
                        config=HttpConfig(trusted_proxies=PROXIES[:1]))
    await api.client.patch("/v1/fraud/settings", json={"otp_messages": True}, headers=api.auth)
    otp = {"to": "+447911123456", "from": "ACME", "text": "Your code is 4711", "priority": "otp"}
    sent = await api.send(otp, **{"X-Forwarded-For": "203.0.113.9"})
    batch = await api.client.post("/v1/messages/batch", json={"messages": [otp]},
                                  headers={**api.auth, "X-Forwarded-For": "203.0.113.10"})
    assert (sent.status_code, batch.status_code) == (202, 202), (sent.text, batch.text)
    decisions = await api.store.list_fraud_decisions(api.account.id)
    assert [d.request["ip"] for d in decisions] == ["203.0.113.10", "203.0.113.9"]


async def test_the_address_type_comes_from_the_hint_else_the_configured_tables(
    make_api: ApiFactory, store: SQLiteStore,
) -> None:
    types = AddressTypes({"hosting": ["203.0.113.0/24"]}, {"vpn": ["AS9009"]})
    defence = LiveDefence(store, SortableIdGenerator(), addresses=types)
    api = await _billed(make_api, GB, client="192.0.2.50", defence=defence)

    async def asked(n: int, **hints: str) -> dict[str, str]:
        answer = await api.client.post("/v1/verifications",
                                       json={"to": f"+4479{10 + n:02d}{n:06d}", **hints},
                                       headers=api.auth)  # fmt: skip
        assert answer.status_code == 201, answer.text
        api.clock.advance(600)  # nobody types: far apart, so few codes are in flight at once
        return (await store.get_fraud_decision(answer.json()["fraud"]["id"],
                                               api.account.id)).request  # fmt: skip

    assert (await asked(0, ip="203.0.113.9"))["ip_type"] == "hosting"  # a configured range
    assert (await asked(1, ip="198.51.100.1", asn="as9009"))["ip_type"] == "vpn"  # its ASN
    hinted = await asked(2, ip="203.0.113.9", ip_type="mobile", asn="9009")
    assert (hinted["ip_type"], hinted["asn"]) == ("mobile", "AS9009")  # the client knows best
    assert "ip_type" not in await asked(3, ip="198.51.100.1")  # unknown: no type (fail open)
    # No address hint: the request's own address, which the user's ip_type does not describe.
    own = await asked(4, ip_type="mobile")
    assert own["ip"] == "192.0.2.50" and "ip_type" not in own


async def test_a_pumping_client_is_closed_by_its_typed_address_block(
    make_api: ApiFactory, store: SQLiteStore,
) -> None:
    types = AddressTypes({"hosting": ["203.0.113.0/24"]})
    defence = LiveDefence(store, SortableIdGenerator(), addresses=types)
    api = await _billed(make_api, GB, defence=defence)
    for n in range(60):  # the account's users, typing their codes (stored: a restart sees them)
        created = await api.client.post("/v1/verifications", json={
            "to": f"+4478{n % 90 + 10:02d}{n * 7919 % 10**6:06d}",
            "ip": f"192.0.{n % 200}.{n % 250 + 1}"}, headers=api.auth)
        assert created.status_code == 201, created.text
        api.clock.advance(20)
        checked = await _check(api, created.json()["id"], _code(api))
        assert checked.json()["status"] == "approved"
    answers = []
    for n in range(40):  # bounded: it is closed long before
        answer = await api.client.post(
            "/v1/verifications", json={"to": f"+4479{10 + n:02d}{n:06d}", "ip": "203.0.113.9"},
            headers=api.auth)
        answers.append(answer)
        api.clock.advance(30)
        if answer.status_code == 403:
            break
    decision = answers[-1].json()["decision"]
    assert decision["reasons"][-1]["cell"].startswith("ip_block:hosting|203.0.113")
    # A restart rebuilds the engine with the types stored with the decisions (not
    # looked up again): the block is still keyed, and held, as it was.
    restarted = LiveDefence(store, SortableIdGenerator(), addresses=types)
    again = await restarted.screen(
        account_id=api.account.id, to="+447988123456", use_case="other", message_id="m1",
        rating=GB.rate("447988123456", None, 1), now=api.clock(), hints={"ip": "203.0.113.9"})
    assert again.refuse
    assert again.decision.reasons[-1].cell.startswith("ip_block:hosting|203.0.113")
