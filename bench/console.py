"""How long the console's pages take with a million messages in the store.

Fills a SQLite store with ``--messages`` messages (1,000,000 over the last
hour; spread over 10 accounts, distinct numbers in 4 countries, a reference on
every 1,000th, each charged: a CDR each), the
newest ``--finals`` of them (20,000: the overview reads at most 1,000 a
connector) sent through two connectors with their receipts (9 in 10
delivered), and a guard audit log of ``--guard`` blocks and alerts (100,000);
serves herald's app (admin API and console) with uvicorn on
127.0.0.1, signs in, and times each page over real HTTP: the median, p90 and
worst of ``--rounds`` requests. The peer is the admin API's JSON answer for
the same data (the console renders the same dictionaries: the difference is
the HTML). The guard page's first load (reading and checking the whole log) is
timed apart, then one load after 100 more records. Not a test; asserts nothing.

    .venv/bin/python bench/console.py [--quick] [--messages N] [--finals N] [--guard N]
                                      [--rounds N] [--accounts N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn
from argon2 import PasswordHasher
from prometheus_client import CollectorRegistry

from herald.accounts import Accounts
from herald.admin import Admin, AdminKeys, BillingAdmin
from herald.api import AdminContext, ApiContext, ConnectorState, create_app
from herald.api._admin_views import MAX_SCANNED_ACCOUNTS
from herald.guard.audit import AuditLog
from herald.guard.journal import GuardJournal
from herald.ids import SortableIdGenerator
from herald.metrics import Metrics
from herald.signaling.policy import Category
from herald.signaling.policy.verdict import Action, Origin, Rule, Verdict
from herald.store import (
    AdminScope,
    Charge,
    NewMessage,
    ReceiptUpdate,
    SegmentRecord,
    Source,
    SQLiteConfig,
    SQLiteStore,
    Status,
)

ACCOUNTS = 10
BATCH = 10_000
CONNECTORS = (ConnectorState("eu-1", "127.0.0.1", 2775, "herald", "transceiver", 2, 2, 50.0, 10),
              ConnectorState("eu-2", "127.0.0.1", 2776, "herald", "transceiver", 2, 2, 50.0, 10))
#: Destinations: the UK, Germany, France, Nigeria (the number's country prefix).
PREFIXES = ("4477", "4915", "336", "234803")
COUNTRY = {"44": "44", "49": "49", "33": "33", "23": "234"}


async def fill(store: SQLiteStore, account_ids: list[int], total: int, keep: int
               ) -> tuple[str, str, list[str]]:  # fmt: skip
    """``total`` messages; returns one message id and one number to search for, and
    the ids of the newest ``keep``."""
    ids = SortableIdGenerator()
    now = time.time() - 3600
    some_id = some_number = ""
    newest: list[str] = []
    for start in range(0, total, BATCH):
        batch = []
        for i in range(start, min(total, start + BATCH)):
            number = f"{PREFIXES[i % len(PREFIXES)]}{i:08d}"
            batch.append(NewMessage(
                id=ids.new_id(now), account_id=account_ids[i % len(account_ids)],
                source=Source.HTTP, to=number, sender="HERALD", body=b"hello",
                encoding="gsm7", data_coding=0, segments=1, accepted_at=now + i / 1000,
                expires_at=now + 7 * 86400, reference=f"campaign-{i // 1000}"
                if i % 1000 == 0 else None))  # fmt: skip
        await store.accept(batch, charges=[
            Charge(COUNTRY[m.to[:2]], None, "+" + COUNTRY[m.to[:2]], 40_000) for m in batch])
        if start == total // 2 // BATCH * BATCH:
            some_id, some_number = batch[0].id, batch[0].to
        newest += [m.id for m in batch if m.accepted_at >= now + (total - keep) / 1000]
    return some_id, some_number, newest


async def finish(store: SQLiteStore, ids: list[str]) -> None:
    """Send messages ``ids`` through the connectors over the last hour, with receipts."""
    for start in range(0, len(ids), BATCH):
        base = time.time() - 3000 + start * 2500 / max(1, len(ids))
        segments = [SegmentRecord(m, 0, CONNECTORS[k % 2].name, m, m, base + k * 0.001)
                    for k, m in enumerate(ids[start:start + BATCH])]  # fmt: skip
        await store.record_segments(segments)
        await store.apply_receipts([
            ReceiptUpdate(s.connector, s.upstream_key,
                          Status.UNDELIVERED if k % 10 == 0 else Status.DELIVERED,
                          s.at + 1 + k % 7) for k, s in enumerate(segments)])  # fmt: skip


def guard_log(path: Path, records: int) -> None:
    """A guard audit log of ``records`` blocks and alerts over the last day."""
    now = time.time()
    rules = (Rule.CAT1, Rule.CAT2, Rule.RANGE_SWEEP, Rule.SMS_ORIGIN, Rule.SILENT_SMS)
    ticks = iter(range(records))
    with AuditLog(path, clock=lambda: now - 86_000 + next(ticks) * 86_000 / records) as log:
        for i in range(records):
            rule = rules[i % len(rules)]
            log.verdict(Verdict(Action.ALERT if rule is Rule.SMS_ORIGIN else Action.BLOCK,
                                rule, Category.CAT1, f"{rule.value} reason", now,
                                "anyTimeInterrogation", Origin.FOREIGN, f"{i:019x}a"),
                        mode="proxy", conn=i % 8)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 messages, 10 rounds")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--finals", type=int, default=20_000)
    parser.add_argument("--guard", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--accounts", type=int, default=ACCOUNTS)
    args = parser.parse_args()
    if args.quick:
        args.messages, args.finals, args.guard, args.rounds = 100_000, 5_000, 10_000, 10
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore.open(SQLiteConfig(data_dir=Path(tmp)))
        hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        accounts = Accounts(store, hasher=hasher)
        keys = AdminKeys(store, hasher=hasher)
        admin = Admin(store, accounts, keys)
        key = (await admin.issue_admin_key("bench", "bench", AdminScope.READ)).key
        account_ids = []
        for n in range(args.accounts):
            account, _ = await admin.create_account("bench", f"acct{n}", {},
                                                    allow_private_urls=True)
            account_ids.append(account.id)
            # every message is charged (a CDR each): the billing page sums them
            await BillingAdmin(admin).top_up("bench", f"acct{n}", "1000000")
        started = time.perf_counter()
        message_id, number, newest = await fill(store, account_ids, args.messages, args.finals)
        filled = time.perf_counter() - started
        await finish(store, newest)
        finished = time.perf_counter() - started - filled
        audit = Path(tmp) / "guard-audit.jsonl"
        guard_log(audit, args.guard)
        print(f"{args.messages:,} messages stored in {filled:.1f} s, {len(newest):,} sent"
              f" with receipts in {finished:.1f} s, {args.guard:,} guard records written",
              file=sys.stderr)
        app = create_app(ApiContext(
            store=store, accounts=accounts, ids=SortableIdGenerator(), clock=time.time,
            metrics=Metrics(CollectorRegistry()),
            admin=AdminContext(admin, connectors=lambda: CONNECTORS,
                               guard=GuardJournal(audit))))  # fmt: skip
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                               log_level="warning", lifespan="off"))
        task = asyncio.create_task(server.serve())
        for _ in range(200):  # bounded: 10 s to listen
            if server.started:
                break
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        pages = [
            ("overview", "/console/", "/v1/admin/overview"),
            (f"accounts ({args.accounts})", "/console/accounts", "/v1/admin/accounts"),
            ("account", "/console/accounts/acct3", "/v1/admin/accounts/acct3"),
            ("connectors", "/console/connectors", "/v1/admin/connectors"),
            ("message by id", f"/console/messages/{message_id}",
             f"/v1/admin/messages/{message_id}"),
            ("search: id", f"/console/messages?id={message_id}",
             f"/v1/admin/messages?id={message_id}"),
            ("search: account", "/console/messages?account=acct3",
             "/v1/admin/messages?account=acct3"),
            ("search: account+number", f"/console/messages?account=acct0&to=%2B{number}",
             f"/v1/admin/messages?account=acct0&to=%2B{number}"),
            ("search: number, all accounts", f"/console/messages?to=%2B{number}",
             f"/v1/admin/messages?to=%2B{number}"),
            ("search: reference, all", "/console/messages?reference=campaign-500",
             "/v1/admin/messages?reference=campaign-500"),
            ("search: status, all", "/console/messages?status=accepted",
             "/v1/admin/messages?status=accepted"),
            ("search: a rare status, all", "/console/messages?status=delivered",
             "/v1/admin/messages?status=delivered"),
            ("search: a rare status, account", "/console/messages?account=acct3&status=failed",
             "/v1/admin/messages?account=acct3&status=failed"),
            ("audit", "/console/audit", "/v1/admin/audit"),
            ("overview, live part", "/console/overview/live", "/v1/admin/overview"),
            ("billing", "/console/billing", "/v1/admin/prices"),
            ("billing sums, 1 day (30 s kept)", "/console/billing/margins",
             f"/v1/admin/margins?from={int(time.time()) - 86400}&to={int(time.time()) + 60}"),
            ("fraud", "/console/fraud?account=acct3", "/v1/admin/accounts/acct3/fraud"),
            ("guard", "/console/guard", "/v1/admin/guard"),
            ("guard verdicts", "/console/guard", "/v1/admin/guard/verdicts?limit=500"),
            ("route explainer", f"/console/routes/explain?account=acct3&to=%2B{number}",
             "/v1/admin/connectors"),
        ]
        async with httpx.AsyncClient(base_url=url, timeout=60) as console, \
                httpx.AsyncClient(base_url=url, timeout=60,
                                  headers={"Authorization": f"Bearer {key}"}) as api:
            assert (await console.post("/console/login", data={"key": key})).status_code == 303
            t0 = time.perf_counter()
            answer = await console.get("/console/guard")
            first = (time.perf_counter() - t0) * 1000
            for _ in range(1200):  # bounded: 2 minutes for the log to be read and checked
                if "intact" in answer.text and 'id="guard-checking"' not in answer.text:
                    break
                await asyncio.sleep(0.1)
                answer = await console.get("/console/guard")
            ready = (time.perf_counter() - t0) * 1000
            with AuditLog(audit) as log:
                for i in range(100):
                    log.verdict(Verdict(Action.BLOCK, Rule.CAT1, Category.CAT1, "x",
                                        time.time(), "anyTimeInterrogation", Origin.FOREIGN,
                                        f"{i:019x}b"))  # fmt: skip
            t0 = time.perf_counter()
            answer = await console.get("/console/guard")
            assert "intact" in answer.text and "guard-checking" not in answer.text
            after = (time.perf_counter() - t0) * 1000
            print(f"guard page, {args.guard:,} records: first load {first:.0f} ms (answers"
                  f" 'being read and checked'), read and checked {ready:.0f} ms after it;"
                  f" after 100 more records {after:.0f} ms")
            print(f"{'page':<30} {'console ms p50':>14} {'p90':>7} {'max':>7}"
                  f" {'admin API ms p50':>17} {'p90':>7} {'load':>5}")
            for name, page, endpoint in pages:
                if "all" in name and args.accounts > MAX_SCANNED_ACCOUNTS and "status" not in name:
                    print(f"{name:<30} {'422: more than 200 accounts, name one':>40}")
                    continue
                figures = []
                for client, path in ((console, page), (api, endpoint)):
                    times = []
                    for _ in range(args.rounds):
                        t0 = time.perf_counter()
                        answer = await client.get(path)
                        times.append((time.perf_counter() - t0) * 1000)
                        assert answer.status_code == 200, (path, answer.text[:300])
                    times.sort()
                    figures.append((statistics.median(times), times[int(len(times) * 0.9) - 1],
                                    times[-1]))
                (c50, c90, cmax), (a50, a90, _) = figures
                print(f"{name:<30} {c50:>14.1f} {c90:>7.1f} {cmax:>7.1f} {a50:>17.1f}"
                      f" {a90:>7.1f} {os.getloadavg()[0]:>5.1f}")
        server.should_exit = True
        await task
        keys.close()
        accounts.close()
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main())
