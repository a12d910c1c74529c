"""``herald guard ...``: scan captures, run the inline proxy, verify the audit log,
check and record policy changes.

Exit status (all subcommands): 0 success and nothing found; 1 findings (``scan``:
at least one block or alert; ``audit verify``: the log was tampered with;
``policy check``: invalid policy); 2 usage or input errors (unreadable files,
invalid policy for ``scan``/``proxy``).

Secrets never go on the command line (where ``ps`` shows them): the audit
key is read from ``--audit-key-file`` or the ``HERALD_AUDIT_KEY`` environment
variable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
#: ``scan``: part of the capture could not be read (truncated or corrupt), so
#: it was not fully judged; whatever the verdicts on the rest, a gate must fail.
EXIT_INCOMPLETE = 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    guard = subparsers.add_parser(
        "guard",
        help="SS7 signaling guard: scan, proxy, audit, policy",
        description="The SS7/SIGTRAN signaling guard (docs/guard.md).",
    )
    sub = guard.add_subparsers(dest="guard_command", metavar="COMMAND", required=True)

    scan = sub.add_parser("scan", help="judge every message of a pcap/pcapng capture")
    scan.add_argument("capture", type=Path)
    scan.add_argument("--policy", type=Path, required=True)
    scan.add_argument("--format", choices=("table", "json"), default="table")
    scan.add_argument("--audit", type=Path, help="append blocks and alerts to this audit log")
    _key_option(scan)
    pending = scan.add_mutually_exclusive_group()
    pending.add_argument(
        "--pending",
        type=Path,
        help="numbers with a queued customer message, one per line (platform egress)",
    )
    pending.add_argument(
        "--store",
        type=_store_argument,
        metavar="DATA_DIR|URL",
        help="herald's store: its SQLite data directory or its PostgreSQL URL "
        "(postgresql://user@host:port/db): queued customer messages (platform egress)",
    )
    scan.add_argument(
        "--labels",
        type=Path,
        help="JSON lines with each record's scenario label (as the corpus writes them)",
    )
    scan.set_defaults(func=_scan)

    proxy = sub.add_parser("proxy", help="run inline between two M3UA peers")
    proxy.add_argument("--listen", required=True, help="HOST:PORT to accept M3UA on")
    proxy.add_argument("--peer", required=True, help="HOST:PORT of the M3UA peer")
    proxy.add_argument("--policy", type=Path, required=True)
    proxy.add_argument("--audit", type=Path)
    _key_option(proxy)
    proxy.add_argument(
        "--on-block", choices=("drop", "udts"), help="override the policy's [proxy] on_block"
    )
    proxy.add_argument("--transport", choices=("tcp", "sctp"), default="tcp")
    proxy.add_argument(
        "--interconnect",
        choices=("listen", "peer"),
        help="which side faces the interconnect (enables spoofing checks; required by "
        "the policy's [home_routing])",
    )
    pending = proxy.add_mutually_exclusive_group()
    pending.add_argument(
        "--pending", type=Path, help="numbers with a queued customer message, read at start"
    )
    pending.add_argument(
        "--store",
        type=_store_argument,
        metavar="DATA_DIR|URL",
        help="herald's running store, asked at each platform lookup: its SQLite data "
        "directory, or its PostgreSQL URL (postgresql://user@host:port/db; the password "
        "from PGPASSWORD or ~/.pgpass). It also keeps the guard's state, sealed, shared by "
        "every proxy given the same store (an active pair behind a load balancer): "
        "[home_routing]'s correlations (they survive a restart), and, under a fixed "
        "PYTHONHASHSEED (the same on every proxy), the engine's state (saved every 30 s "
        "and at exit, restored at start, its changes exchanged every second); in a data "
        "directory guard-state.db and guard-snapshots.db, on PostgreSQL the guard_* tables",
    )
    proxy.add_argument(
        "--metrics",
        metavar="[HOST:]PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (HOST: 127.0.0.1)",
    )
    proxy.add_argument("--duration", type=float, help="stop after this many seconds")
    proxy.set_defaults(func=_proxy)

    audit = sub.add_parser("audit", help="audit log tools")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    verify = audit_sub.add_parser("verify", help="verify an audit log's hash chain")
    verify.add_argument("file", type=Path)
    _key_option(verify)
    verify.set_defaults(func=_audit_verify)

    policy = sub.add_parser("policy", help="policy file tools")
    policy_sub = policy.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)
    check = policy_sub.add_parser("check", help="validate a policy file")
    check.add_argument("file", type=Path)
    check.set_defaults(func=_policy_check)
    diff = policy_sub.add_parser(
        "diff", help="show (and with --audit, record) the change between two policy files"
    )
    diff.add_argument("old", type=Path)
    diff.add_argument("new", type=Path)
    diff.add_argument("--audit", type=Path, help="record the change in this audit log")
    diff.add_argument("--who", help="who made the change (required with --audit)")
    _key_option(diff)
    diff.set_defaults(func=_policy_diff)


def _key_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--audit-key-file",
        type=Path,
        help="file holding the audit log's HMAC key (default: $HERALD_AUDIT_KEY, else none)",
    )


def _audit_key(args: argparse.Namespace) -> bytes | None:
    if args.audit_key_file is not None:
        return args.audit_key_file.read_bytes().strip() or None
    env = os.environ.get("HERALD_AUDIT_KEY", "")
    return env.encode() or None


def _fail(message: str) -> int:
    print(f"herald guard: {message}", file=sys.stderr)
    return EXIT_ERROR


def _store_argument(text: str) -> Path | str:
    """``--store``: a PostgreSQL URL (kept as text), else a data directory."""
    from herald.store.postgres import is_postgres_url

    return text if is_postgres_url(text) else Path(text)


def _data_dir(args: argparse.Namespace) -> Path | None:
    """The data directory given with ``--store`` (None for none, or a URL)."""
    store = getattr(args, "store", None)
    return store if isinstance(store, Path) else None


def _store_url(args: argparse.Namespace) -> str | None:
    """The PostgreSQL URL given with ``--store`` (None for none, or a directory)."""
    store = getattr(args, "store", None)
    return store if isinstance(store, str) else None


def _read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _store(args: argparse.Namespace, opened: list[Any], *, live: bool = False) -> Any:
    """What the platform egress rule asks: herald's store (``--store``: a data
    directory, or a PostgreSQL URL, connected now and added to ``opened`` for
    the caller to close), a file of numbers read once (``--pending``), or
    nothing (fail closed)."""
    from herald.signaling.policy import InMemoryPendingMessages

    store = getattr(args, "store", None)
    if store is None:
        return InMemoryPendingMessages(
            _read_lines(args.pending) if args.pending is not None else ()
        )
    from herald.guard.egress import LiveStore
    from herald.store import PostgresPendingMessages, SQLitePendingMessages, StoreUnavailable

    pending: Any
    if isinstance(store, Path):
        if not (store / "herald.db").is_file():
            raise ValueError(f"--store: {store} holds no herald store (herald.db)")
        pending = SQLitePendingMessages(store)
    else:
        try:
            pending = PostgresPendingMessages(store)
            pending.open()
        except (StoreUnavailable, ValueError) as exc:
            raise ValueError(f"--store: {exc}") from None
        opened.append(pending)
    # The proxy's clock is the event loop's; the store's times are wall-clock.
    return LiveStore(pending) if live else pending


def _inspector(args: argparse.Namespace, opened: list[Any], *, capture: bool = False) -> Any:
    from herald.guard.audit import AuditLog
    from herald.guard.inspector import Inspector
    from herald.guard.policyfile import load_policy
    from herald.signaling.policy import Engine

    policy = load_policy(args.policy)
    audit = AuditLog(args.audit, key=_audit_key(args)) if args.audit is not None else None
    # A capture may hold one direction only (see Engine).
    engine = Engine(policy, _store(args, opened, live=not capture),
                    answers_may_be_missing=capture)  # fmt: skip
    return Inspector(engine, audit)


def _records(path: Path, damage: list[str]) -> Iterable[tuple[float, bytes]]:
    from herald.guard import pcap

    for record in pcap.read_capture(path, damage):
        yield record.timestamp, record.data


def _labels(path: Path | None) -> Callable[[int], str | None]:
    if path is None:
        return lambda index: None
    scenario: dict[int, str] = {}
    for line in _read_lines(path):
        entry = json.loads(line)
        scenario[int(entry["index"])] = str(entry["scenario"])
    return scenario.get


# ------------------------------------------------------------------- commands


def _scan(args: argparse.Namespace) -> int:
    from herald.guard.audit import AuditError
    from herald.guard.policyfile import PolicyFileError
    from herald.guard.scan import Summary, scan

    opened: list[Any] = []
    try:
        inspector = _inspector(args, opened, capture=True)
        label_of = _labels(args.labels)
    except (PolicyFileError, AuditError, OSError, ValueError, KeyError) as exc:
        for store in opened:
            store.close()
        return _fail(str(exc))
    summary = Summary()
    out = sys.stdout
    damage: list[str] = []
    try:
        for item in scan(
            _records(args.capture, damage), inspector, source=args.capture.name,
            summary=summary,
        ):  # fmt: skip
            scenario = label_of(item.index) if item.index is not None else None
            if scenario is not None:
                summary.scenarios.setdefault(scenario, type(summary.actions)())[
                    item.verdict.action.value
                ] += 1
            if args.format == "json":
                row = item.as_dict()
                if scenario is not None:
                    row["scenario"] = scenario
                out.write(json.dumps(row, separators=(",", ":")) + "\n")
    except (OSError, ValueError) as exc:
        return _fail(f"{args.capture}: {exc}")
    finally:
        if inspector.audit is not None:
            inspector.audit.close()
        for store in opened:
            store.close()
    if args.format == "table":
        _print_summary(summary, args.capture.name)
    engine = inspector.engine
    if engine.unjudged_consistency:
        # Said, not blocked: deliveries with no answer in sight prove nothing.
        why = ("the capture holds no SRI-SM answer (one direction only?)"
               if not engine.answers_seen else "they came before the capture's first SRI-SM answer")
        print(f"herald guard scan: {args.capture}: {engine.unjudged_consistency} MT-ForwardSM "
              f"not judged for SMS consistency: {why}", file=sys.stderr)  # fmt: skip
    if damage:
        # A gate must not pass traffic it did not see: say what was not read.
        for problem in damage:
            print(f"herald guard scan: {args.capture}: {problem}", file=sys.stderr)
        print(f"herald guard scan: {args.capture} was not fully judged"
              f" ({summary.records} records read)", file=sys.stderr)  # fmt: skip
        return EXIT_INCOMPLETE
    return EXIT_FINDINGS if summary.findings else EXIT_OK


def _print_summary(summary: Any, name: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    totals = Table(title=f"herald guard scan: {name}")
    for column in ("records", "judged", "skipped", "allow", "alert", "block"):
        totals.add_column(column, justify="right")
    totals.add_row(
        str(summary.records),
        str(summary.judged),
        str(summary.skipped),
        *(str(summary.actions[a]) for a in ("allow", "alert", "block")),
    )
    console.print(totals)
    if summary.rules:
        rules = Table(title="findings by rule")
        rules.add_column("rule")
        rules.add_column("action")
        rules.add_column("messages", justify="right")
        for (rule, action), count in sorted(summary.rules.items()):
            rules.add_row(rule, action, str(count))
        console.print(rules)
    if summary.scenarios:
        table = Table(title="by scenario")
        for column in ("scenario", "allow", "alert", "block"):
            table.add_column(column, justify="left" if column == "scenario" else "right")
        for scenario, counts in sorted(summary.scenarios.items()):
            table.add_row(scenario, *(str(counts[a]) for a in ("allow", "alert", "block")))
        console.print(table)


def _metrics_address(text: str | None) -> tuple[str, int] | None:
    from herald.guard.metrics import DEFAULT_HOST
    from herald.guard.proxy import parse_address

    if text is None:
        return None
    if text.isdigit():
        text = f"{DEFAULT_HOST}:{text}"
    try:
        return parse_address(text)
    except ValueError:
        raise ValueError(f"--metrics: {text!r} is not PORT or HOST:PORT") from None


def _snapshots(args: argparse.Namespace, policy: Any) -> Any:
    """The engine's snapshot store (``--store``), if the state can be restored
    by a later process: only under a fixed hash seed (the state's keys are the
    interpreter's keyed hashes; see herald.signaling.policy.snapshot)."""
    data_dir = _data_dir(args)
    url = _store_url(args)
    if data_dir is None and url is None:
        return None
    seed = os.environ.get("PYTHONHASHSEED", "")
    if not seed.isdigit() or int(seed) == 0:
        print("herald guard proxy: the engine's state (dialogues, locations, rates, lookups) "
              "is kept in memory only: run with PYTHONHASHSEED set to a fixed secret number "
              "(not 0) to save it in --store and restore it after a restart",
              file=sys.stderr)  # fmt: skip
        return None
    if url is not None:
        from herald.guard.pg_state import BULK_TIMEOUT, PgLink, PostgresSnapshots

        link = PgLink(url, timeout=BULK_TIMEOUT, name="snapshots")
        link.open()
        return PostgresSnapshots(link, policy.salt)
    from herald.guard.correlations import SQLiteSnapshots

    assert data_dir is not None
    return SQLiteSnapshots(data_dir, policy.salt)


def _lookups(data_dir: Path | None, url: str | None, policy: Any) -> Any:
    """Where proxies on the same ``--store`` share SRI-SM answers at once (any
    hash seed: rows are keyed by the policy's salted hashes), or None."""
    limit = policy.limits.correlations
    if url is not None:
        from herald.guard.pg_state import PgLink, PostgresLookups

        link = PgLink(url, name="lookups")
        link.open()
        return PostgresLookups(link, policy.salt, limit)
    if data_dir is not None:
        from herald.guard.correlations import SQLiteLookups

        return SQLiteLookups(data_dir, policy.salt, limit)
    return None


def _proxy(args: argparse.Namespace) -> int:
    from herald.guard.audit import AuditError
    from herald.guard.metrics import MetricsServer, proxy_registry
    from herald.guard.policyfile import PolicyFileError, diff_policies, read_policy
    from herald.guard.proxy import GuardProxy, parse_address
    from herald.signaling.correlations import CorrelationStore
    from herald.signaling.homerouting import HomeRouter
    from herald.signaling.policy import Policy
    from herald.store._errors import StoreUnavailable

    opened: list[Any] = []  # closed at exit
    try:
        listen = parse_address(args.listen)
        peer = parse_address(args.peer)
        metrics_at = _metrics_address(args.metrics)
        inspector = _inspector(args, opened)
        policy_text = [read_policy(args.policy)[1]]  # the text in force, for SIGHUP's diff
    except (PolicyFileError, AuditError, OSError, ValueError) as exc:
        for store in opened:
            store.close()
        return _fail(str(exc))
    policy = inspector.engine.policy
    settings = policy.proxy
    data_dir, url = _data_dir(args), _store_url(args)
    correlation_store: list[Any] = []

    def correlations(p: Policy) -> CorrelationStore | None:
        """Where home routing keeps its correlations: the data directory's or
        the PostgreSQL store's (opened once), else the proxy's memory."""
        if data_dir is None and url is None:
            return None
        if not correlation_store:
            store: Any
            if url is not None:
                from herald.guard.pg_state import PgLink, PostgresCorrelations

                link = PgLink(url, name="correlations")
                link.open()
                store = PostgresCorrelations(link, p.salt, p.home_routing.max_entries)
            else:
                from herald.guard.correlations import SQLiteCorrelations

                assert data_dir is not None
                store = SQLiteCorrelations(data_dir, p.salt, p.home_routing.max_entries)
            correlation_store.append(store)
            opened.append(store)
        return correlation_store[0]  # type: ignore[no-any-return]

    try:
        router = (HomeRouter(policy, correlations=correlations(policy))
                  if policy.home_routing.enabled else None)  # fmt: skip
        snapshots = _snapshots(args, policy)
        if snapshots is not None:
            opened.append(snapshots)
        lookups = _lookups(data_dir, url, policy)
        if lookups is not None:
            opened.append(lookups)
        proxy = GuardProxy(
            inspector,
            peer,
            on_block=args.on_block or settings.on_block,
            return_cause=settings.return_cause,
            transport=args.transport,
            interconnect=args.interconnect,
            home_router=router,
            correlations=correlations,
            snapshots=snapshots,
            lookups=lookups,
        )
    except (OSError, ValueError, sqlite3.Error, StoreUnavailable) as exc:
        for store in opened:
            store.close()
        return _fail(str(exc))

    def reload() -> None:
        """SIGHUP: read the policy file again; apply it whole, or keep the
        policy in force. Either way the audit log says so."""
        audit = inspector.audit
        try:
            new_policy, new_text = read_policy(args.policy)
            proxy.reload(new_policy, on_block=args.on_block)
        except (PolicyFileError, ValueError, OSError, sqlite3.Error, StoreUnavailable) as exc:
            print(f"herald guard proxy: policy reload refused, the previous policy stays: {exc}",
                  file=sys.stderr, flush=True)  # fmt: skip
            if audit is not None:
                audit.append("note", {"event": "policy-reload-refused", "who": "SIGHUP",
                                      "reason": str(exc)})  # fmt: skip
            return
        change = diff_policies(policy_text[0], new_text, "in force", str(args.policy))
        policy_text[0] = new_text
        if audit is not None and change.changed:
            audit.policy_change(
                "SIGHUP", change.diff, change.old_sha256, change.new_sha256, new_policy.name
            )
        print(f"herald guard proxy: policy {new_policy.name!r} reloaded", flush=True)

    async def run() -> None:
        metrics = MetricsServer(proxy_registry(proxy))
        served = ""
        if metrics_at is not None:  # first: a taken port stops the proxy before it listens
            m_host, m_port = await metrics.start(*metrics_at)
            served = f"herald guard proxy: metrics on http://{m_host}:{m_port}/metrics"
        restored = await proxy.restore()
        try:
            host, port = await proxy.start(*listen)
        except BaseException:
            await metrics.close()
            raise
        # Everything built so far (modules, policy, compiled tables) lives as
        # long as the process: out of the collector's sight, so that its full
        # passes only walk what the traffic creates.
        gc.collect()
        gc.freeze()
        if snapshots is not None:
            print(f"herald guard proxy: engine state restored from {restored[0]} snapshot(s),"
                  f" {restored[1]} entries", flush=True)  # fmt: skip
        print(f"herald guard proxy: listening on {host}:{port}, peer {args.peer}", flush=True)
        if served:
            print(served, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.add_signal_handler(signal.SIGHUP, reload)
        try:
            await asyncio.wait_for(stop.wait(), args.duration)
        except TimeoutError:
            pass
        finally:
            await proxy.close()
            await metrics.close()

    try:
        asyncio.run(run())
    except OSError as exc:
        return _fail(str(exc))
    finally:
        if inspector.audit is not None:
            inspector.audit.close()
        for store in opened:
            store.close()
    s = proxy.stats
    print(
        f"connections {s.connections}, forwarded {s.forwarded}, blocked {s.blocked}, "
        f"udts sent {s.udts_sent}, passed through {s.passed_through}, "
        f"framing errors {s.framing_errors}, late alerts {s.late_alerts}"
        + (f", home-routed {s.home_routed}" if proxy.home_router or s.home_routed else "")
    )
    for rule, count in sorted(s.by_rule.items()):
        print(f"  blocked by {rule}: {count}")
    for line in proxy.latency.summary_lines():
        print(line)
    return EXIT_OK


def _audit_verify(args: argparse.Namespace) -> int:
    from herald.guard.audit import AuditError, verify

    try:
        report = verify(args.file, _audit_key(args))
    except (AuditError, OSError) as exc:
        return _fail(str(exc))
    if report.ok:
        print(f"OK: {report.records} records, last seq {report.last_seq}, head {report.head}")
        return EXIT_OK
    print(f"TAMPERED: {args.file}: {len(report.findings)} finding(s)")
    for f in report.findings:
        where = f" (line {f.line})" if f.line is not None else ""
        print(f"  {f.kind}: {f.message}{where}")
    return EXIT_FINDINGS


def _policy_check(args: argparse.Namespace) -> int:
    from herald.guard.policyfile import PolicyFileError, load_policy

    try:
        policy = load_policy(args.file)
    except PolicyFileError as exc:
        print(f"INVALID: {exc}")
        return EXIT_FINDINGS
    print(
        f"OK: policy {policy.name!r}: home {policy.home.mcc}-{policy.home.mnc}, "
        f"{len(policy.partners)} partners, {len(policy.platform_gts)} platform GTs"
    )
    return EXIT_OK


def _policy_diff(args: argparse.Namespace) -> int:
    from herald.guard.audit import AuditError, AuditLog
    from herald.guard.policyfile import PolicyFileError, diff_policies, read_policy

    if args.audit is not None and not args.who:
        return _fail("--who is required with --audit")
    try:
        _, old = read_policy(args.old)
        new_policy, new = read_policy(args.new)
    except PolicyFileError as exc:
        return _fail(str(exc))
    change = diff_policies(old, new, str(args.old), str(args.new))
    sys.stdout.write(change.diff or "no change\n")
    if change.secret_changed:
        print("note: the salt changed; subscriber hashes before and after will not match")
    if args.audit is not None and change.changed:
        try:
            with AuditLog(args.audit, key=_audit_key(args)) as audit:
                record = audit.policy_change(
                    args.who, change.diff, change.old_sha256, change.new_sha256, new_policy.name
                )
        except AuditError as exc:
            return _fail(str(exc))
        print(f"recorded as audit seq {record['seq']}")
    return EXIT_OK
