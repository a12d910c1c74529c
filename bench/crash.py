"""The long crash run: herald SIGKILLed many times under HTTP and SMPP load.

    .venv/bin/python bench/crash.py                 # 20 kills, about 4 minutes
    .venv/bin/python bench/crash.py --quick         # 5 kills
    .venv/bin/python bench/crash.py --kills 40 --smpp-rate 1000 --seed 7

The same run as the CI test (``tests/crash``, whose harness this imports),
longer and harder: ``herald serve`` (subprocess, SQLite store in a temporary
data dir) with one connector to ``herald sim --record`` (subprocess), loaded
by HTTP clients (single POSTs, every 5th request a batch of 10, each with a
webhook URL) and SMPP transceiver binds (submit_sm with a receipt
requested), every message with a unique text. herald is SIGKILLed at random
moments (after 2-6 s of load), restarted on the same data dir and ports, and
loaded again. At the end the load stops and the run waits until every
stored message is final and (unlike CI) until every SMPP-acknowledged
message's receipt and every HTTP-acknowledged message's final webhook has
arrived (those claimed by a killed herald wait for their leases: 60 s for
receipts, webhook timeout + 30 s for webhooks).

The table: kills; what the customers were told (acknowledged, refused,
unknown = connection lost before an answer, unsent = never reached herald);
what the store holds (stored, of which unacknowledged, final statuses by
kind, lost, not final); duplicates upstream (extra submits of one text in the
sim's record) in total and per kill against binds x window; restart time
(process start to listening) and recovery (kill to the first new
acknowledgement). It is a correctness run that prints figures, not a
throughput benchmark, so no peer is measured beside it: no other SMPP
platform here can be killed and checked this way (Kannel loses receipts
that beat their submit_sm_resp, tests/peers/README.md). Nothing is asserted;
the exit status is 1 when the run found a problem (loss, a message not final,
conflicting statuses, duplicates over the bound).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from crash.run import CrashPlan, crash_run  # noqa: E402
from crash.verify import Report  # noqa: E402


def _row(name: str, value: object) -> str:
    return f"| {name:<44} | {value!s:>28} |"


def table(report: Report, plan: CrashPlan, elapsed: float) -> str:
    o = report.outcomes
    lines = [
        f"| {'crash run':<44} | {'':>28} |",
        f"|{'-' * 46}|{'-' * 30}|",
        _row("kills (SIGKILL at random moments)", report.kills),
        _row("run time, s", f"{elapsed:.0f}"),
        _row("HTTP attempts: acked / refused / unknown / unsent",
             f"{o[('http', 'acked')]} / {o[('http', 'refused')]} / {o[('http', 'unknown')]}"
             f" / {o[('http', 'unsent')]}"),
        _row("SMPP attempts: acked / refused / unknown / unsent",
             f"{o[('smpp', 'acked')]} / {o[('smpp', 'refused')]} / {o[('smpp', 'unknown')]}"
             f" / {o[('smpp', 'unsent')]}"),
        _row("acknowledged (HTTP 202 ids + submit_sm_resp ids)", report.acked),
        _row("stored (of which never acknowledged)",
             f"{report.stored} ({report.stored_unacked})"),
        _row("final statuses", ", ".join(f"{k} {v}" for k, v in sorted(report.finals.items()))),
        _row("acknowledged but lost", len(report.lost)),
        _row("stored but not final", len(report.not_final)),
        _row("conflicting final statuses reported", len(report.conflicts)),
        _row("SMPP acked with a receipt at the customer",
             f"{report.receipts} / {report.smpp_acked}"),
        _row("HTTP acked with a final webhook", f"{report.webhooks} / {report.http_acked}"),
        _row("submits upstream (sim record, our texts)", report.submits_upstream),
        _row("duplicates upstream, total", report.duplicates),
        _row("duplicates per kill: max / bound (binds x window)",
             f"{report.max_duplicates_per_kill} / {plan.bound}"),
        _row("duplicates per kill: mean", f"{statistics.fmean(report.duplicates_per_kill):.1f}"
             if report.duplicates_per_kill else "-"),
        _row("duplicates with no kill between copies", report.duplicates_without_kill),
    ]
    for name, values in (("restart (start -> listening), s", report.restart_seconds),
                         ("recovery (kill -> first new ack), s", report.recovery_seconds)):
        if values:
            lines.append(_row(f"{name}: median / max",
                              f"{statistics.median(values):.2f} / {max(values):.2f}"))
    return "\n".join(lines)


def per_kill(report: Report) -> str:
    """Each kill's duplicates and how far back before the kill their first copies go."""
    lines = [f"| {'kill':>4} | {'duplicates':>10} | {'first copy up to ms before the kill':>36} |",
             f"|{'-' * 6}|{'-' * 12}|{'-' * 38}|"]
    for n, (dups, reach) in enumerate(zip(report.duplicates_per_kill, report.duplicate_reach,
                                          strict=True), start=1):
        lines.append(f"| {n:>4} | {dups:>10} | {reach * 1000:>36.1f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 kills instead of 20")
    parser.add_argument("--kills", type=int)
    parser.add_argument("--http-rate", type=float, default=300.0, help="messages/s (default 300)")
    parser.add_argument("--smpp-rate", type=float, default=600.0, help="messages/s (default 600)")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--targets", default="serve,delivery",
                        help="what the kills hit, in turn: serve (herald serve, restarted by"
                        " this script), delivery (its delivery process, restarted by herald)"
                        " (default serve,delivery)")
    parser.add_argument("--processes", type=int, default=2, choices=(1, 2))
    args = parser.parse_args()
    targets = tuple(args.targets.split(","))
    if args.processes == 1 and "delivery" in targets:
        parser.error("--processes 1 has no delivery process to kill: --targets serve")
    kills = args.kills or (5 if args.quick else 20)
    plan = CrashPlan(
        kills=kills, load_before_kill=(2.0, 6.0), downtime=(0.0, 1.0), load_after=5.0,
        http_rate=args.http_rate, http_workers=8, smpp_rate=args.smpp_rate, smpp_binds=2,
        smpp_window=16, receipt_delay="0.1:1.0", await_notifications=True,
        drain_timeout=300.0, notify_timeout=300.0, seed=args.seed, targets=targets,
        processes=args.processes)
    logging.basicConfig(level=logging.ERROR)  # the customers' reconnect warnings are expected
    print(f"# bench/crash.py: {kills} kills of {'/'.join(targets)} in turn ({args.processes}"
          f" processes), HTTP {args.http_rate:g}/s, SMPP "
          f"{args.smpp_rate:g}/s, upstream {plan.upstream_binds} binds x window "
          f"{plan.upstream_window}, seed {args.seed}; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="herald-crash-"))
    began = time.monotonic()
    report = asyncio.run(crash_run(workdir, plan, log=lambda line: print("#", line, flush=True)))
    elapsed = time.monotonic() - began
    print(table(report, plan, elapsed))
    print()
    print(per_kill(report))
    print(f"# load average at the end: {os.getloadavg()[0]:.2f}")
    problems = report.problems()
    for problem in problems:
        print("PROBLEM:", problem)
    if args.keep or problems:
        print(f"# work directory kept: {workdir}")
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
