"""``herald serve`` on several cores: the front process and the dispatch process.

One Python process runs on one core. ``herald serve`` therefore splits the
platform in two processes over the one store (SQLite in WAL mode lets both
read at once; their writes take turns under the store's write lock):

- the **front** (the process ``herald serve`` starts as): the HTTP API, the
  SMPP listener for customers, the webhook sender and the SMPP notifier,
  i.e. everything a customer talks to;
- **dispatch** (a child the front starts and supervises): the connectors to
  the operators, claims, submits, receipts and MO in, expiry, housekeeping.

They tell each other when there is work over a socket pair
(:mod:`herald.workers._link`); the work itself is always in the store, so a
lost wake-up costs latency, never a message. See ``docs/performance.md`` for
why this split and what it measured.
"""

from herald.workers._link import Link, link_pair
from herald.workers._supervisor import RESTART_MAX, RESTART_MIN, START_TIMEOUT, DispatchWorker

__all__ = ["RESTART_MAX", "RESTART_MIN", "START_TIMEOUT", "DispatchWorker", "Link", "link_pair"]
