"""The cluster tests' runs, longer, with their figures printed (issue 10).

    .venv/bin/python bench/cluster_faults.py                     # nodes come and go, 30 s phases
    .venv/bin/python bench/cluster_faults.py --restart           # a PostgreSQL restart
    .venv/bin/python bench/cluster_faults.py --quick             # 4 s phases (what CI runs)
    .venv/bin/python bench/cluster_faults.py --phase 10 --tps 150 --window 10

``herald serve`` nodes (``processes = 1``) on one private PostgreSQL with one
connector to the simulator, under HTTP and SMPP load (``tests/nodes/harness.py``):
1, 2 and 3 nodes, then ``kill -9`` of one and another joining; or three nodes
and a PostgreSQL stop and start. The table: the simulator's submit rate per
window against the connector's ``tps``, the most sessions bound at once, each
kill's slots, how soon they were held again and its duplicates upstream, and
what the customers and the store say (acknowledged, lost, not final). Nothing
is asserted; the exit status is 1 when the run found a problem (more binds than
configured, a loss, a message not final, duplicates over the bound). A
correctness run that prints figures, like ``crash.py``: no other SMPP platform
here runs as N nodes on one database, so no peer is measured beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from nodes.harness import (  # noqa: E402
    ClusterPlan,
    Report,
    database_restarts,
    nodes_come_and_go,
)
from peers.postgres import PgCluster  # noqa: E402


def _log(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)


async def _scenario(args: argparse.Namespace, plan: ClusterPlan, workdir: Path) -> Report:
    if args.restart:
        return await database_restarts(workdir, plan, args.phase, args.down, _log)
    server = await asyncio.to_thread(PgCluster.start)
    try:
        dsn = await asyncio.to_thread(server.create_database, "herald")
        return await nodes_come_and_go(workdir, dsn, plan, args.phase, _log)
    finally:
        await asyncio.to_thread(server.stop)


async def _run(args: argparse.Namespace) -> int:
    plan = ClusterPlan(tps=args.tps, binds=args.binds, window=args.window, lease=args.lease,
                       margin=args.margin, renew_every=args.renew_every,
                       claim_lease=args.claim_lease, http_rate=args.http_rate,
                       smpp_rate=args.smpp_rate, seed=args.seed,
                       drain_timeout=args.drain_timeout)
    began = time.monotonic()
    if args.keep:
        tmp = tempfile.mkdtemp(prefix="herald-cluster-", dir=args.workdir)
        print(f"the nodes' logs: {tmp}", file=sys.stderr)
        report = await _scenario(args, plan, Path(tmp))
    else:
        with tempfile.TemporaryDirectory(prefix="herald-cluster-", dir=args.workdir) as tmp:
            report = await _scenario(args, plan, Path(tmp))
    print(report.table())
    print(f"\n{time.monotonic() - began:.0f} s; {' '.join(sys.argv)}")
    for problem in report.problems():
        print(f"PROBLEM: {problem}")
    return 1 if report.problems() else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restart", action="store_true", help="a PostgreSQL restart instead")
    parser.add_argument("--phase", type=float, default=30.0, help="seconds per window")
    parser.add_argument("--quick", action="store_true", help="4 s windows (as the CI tests)")
    parser.add_argument("--down", type=float, default=1.0, help="seconds PostgreSQL stays down")
    parser.add_argument("--tps", type=float, default=100.0)
    parser.add_argument("--binds", type=int, default=3)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--margin", type=float, default=0.5)
    parser.add_argument("--renew-every", type=float, default=0.5)
    parser.add_argument("--claim-lease", type=float, default=6.0)
    parser.add_argument("--http-rate", type=float, default=20.0, help="per node")
    parser.add_argument("--smpp-rate", type=float, default=20.0, help="per node")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drain-timeout", type=float, default=90.0)
    parser.add_argument("--workdir", help="where the nodes' logs go (default: a temporary dir)")
    parser.add_argument("--keep", action="store_true", help="keep the nodes' logs")
    args = parser.parse_args()
    if args.quick:
        args.phase = 4.0
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
