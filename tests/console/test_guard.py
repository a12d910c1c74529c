"""The signaling guard in the admin API and on the console's Guard page: counts by
rule, the latest blocks and alerts, the audit chain's check, and the red line (no
IMSI, node address, cell id or location, whatever the log carries)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from herald.api._admin_guard import GuardViews
from herald.guard.audit import AuditLog
from herald.guard.journal import GuardJournal
from herald.signaling.policy import Category
from herald.signaling.policy.verdict import Action, Origin, Rule, Verdict

from .conftest import Console

HASH = "3f9a0c1be2d4f5a6b7c8"
#: What a guard record must never show, planted in a log (as a forged or foreign
#: writer could): an IMSI, an MSISDN, an MSC and a VLR address, a cell id, a location.
SECRETS = ("234150999999999", "447700900123", "447700900999", "447700900888",
           "23415-1234-56789", "56789", "51.5072", "0.1276", "Leeds")


def _admin(console: Console, key: str | None = None) -> httpx.AsyncClient:
    return console.client(Authorization=f"Bearer {key or console.write_key}")


def _write(console: Console, *, planted: bool = False) -> None:
    now = time.time()
    with AuditLog(console.guard_log) as log:
        for rule, action in ((Rule.CAT1, Action.BLOCK), (Rule.CAT1, Action.BLOCK),
                             (Rule.RANGE_SWEEP, Action.ALERT)):  # fmt: skip
            log.verdict(Verdict(action, rule, Category.CAT1, f"{rule.value} reason", now,
                                "anyTimeInterrogation", Origin.FOREIGN, HASH),
                        mode="proxy", conn=1)
        if planted:
            log.append("verdict", {
                "time": now, "action": "block", "rule": "cat1", "category": "cat1",
                "operation": "provideSubscriberLocation", "origin": "foreign",
                "reason": "PSL for 234150999999999 served by MSC 447700900999 in cell"
                          " 23415-1234-56789 at 51.5072,-0.1276",
                "subscriber": "234150999999999", "sender": "447700900123", "late": False,
                "imsi": "234150999999999", "msc": "447700900999", "vlr": "447700900888",
                "cell_id": "56789", "location": {"lat": 51.5072, "lon": -0.1276,
                                                 "town": "Leeds"}})  # fmt: skip
        log.policy_change("alice", "-x\n+y\n", "a" * 64, "b" * 64, "/etc/herald/policy.toml")


async def test_the_api_counts_blocks_and_alerts_by_rule_and_checks_the_chain(
    console: Console,
) -> None:
    client = _admin(console, console.read_key)  # reading needs no write scope
    empty = (await client.get("/v1/admin/guard")).json()
    assert empty["present"] is False and empty["records"] == 0 and empty["verification"] is None
    _write(console)
    answer = await client.get("/v1/admin/guard", params={"hours": 2})
    assert answer.status_code == 200, answer.text
    g = answer.json()
    assert g["present"] is True and g["records"] == 4 and g["totals"] == {"block": 2, "alert": 1}
    assert g["by_rule"] == [{"rule": "cat1", "block": 2, "alert": 0},
                            {"rule": "range-sweep", "block": 0, "alert": 1}]
    assert len(g["series"]) == 2 and g["series"][-1]["counts"] == {"cat1": 2, "range-sweep": 1}
    assert g["verification"]["ok"] is True and g["verification"]["last_seq"] == 4
    assert g["policy_changes"][0]["who"] == "alice"
    assert g["policy_changes"][0]["policy"] == "policy.toml"  # not the path
    found = (await client.get("/v1/admin/guard/verdicts", params={"action": "alert"})).json()
    assert [(v["rule"], v["subscriber"]) for v in found["verdicts"]] == [("range-sweep", HASH)]
    for query, name in (({"hours": "0"}, "hours"), ({"action": "allow"}, "action"),
                        ({"rule": "gps"}, "rule"), ({"limit": "501"}, "limit")):
        path = "/v1/admin/guard" if name == "hours" else "/v1/admin/guard/verdicts"
        refused = await client.get(path, params=query)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == name
    assert (await console.client().get("/v1/admin/guard")).status_code == 401


async def test_the_guard_page_shows_what_the_api_answers(console: Console) -> None:
    _write(console)
    client, _ = await console.signed_in(console.read_key)
    page = await client.get("/console/guard")
    assert page.status_code == 200
    assert 'id="guard-chain"' in page.text and "intact" in page.text
    assert "<td>cat1</td><td class=\"num\">2</td>" in page.text
    assert "range-sweep" in page.text and HASH in page.text and "alice" in page.text
    # a log edited afterwards: the page says the chain is broken and why
    lines = console.guard_log.read_text().splitlines()
    console.guard_log.write_text("\n".join([lines[0], lines[2], lines[3]]) + "\n")
    page = await client.get("/console/guard")
    assert "broken" in page.text and "record seq 2 deleted" in page.text


async def test_no_imsi_node_address_cell_or_location_reaches_the_page_or_the_api(
    console: Console,
) -> None:
    _write(console, planted=True)
    client, _ = await console.signed_in(console.write_key)
    page = await client.get("/console/guard")
    assert page.status_code == 200 and "withheld" in page.text  # the planted record is shown
    api = _admin(console)
    answers = [(await api.get("/v1/admin/guard")).text,
               (await api.get("/v1/admin/guard/verdicts")).text]
    for text in (page.text, *answers):
        for secret in SECRETS:
            assert secret not in text, secret
    assert "provideSubscriberLocation" in page.text  # the operation's name is not a location


async def test_a_large_log_is_read_in_the_background_and_the_answer_says_so(
    tmp_path: Path,
) -> None:
    path = tmp_path / "guard-audit.jsonl"
    now = time.time()
    with AuditLog(path) as log:
        for _ in range(1_000):  # some 30 ms to read and check: not within 0 s
            log.verdict(Verdict(Action.BLOCK, Rule.CAT1, Category.CAT1, "r", now,
                                "anyTimeInterrogation", Origin.FOREIGN, HASH))
    journal = GuardJournal(path, fresh_within=0.0)
    views = GuardViews(journal)
    first = await views.summary()
    assert first["checking"] is True  # answered at once, the refresh under way
    journal.fresh_within = 20.0
    again = await views.summary()  # waits for the refresh under way
    assert again["checking"] is False and again["records"] == 1_000
    assert again["verification"]["ok"] is True and again["totals"]["block"] == 1_000
