"""``herald serve`` on two cores: the front process and the delivery process.

One Python process runs on one core. ``herald serve`` therefore splits the
platform in two processes over the one store (SQLite in WAL mode lets both
read at once; their writes take turns under the store's write lock):

- the **front** (the process ``herald serve`` starts as): the HTTP API, the
  SMPP listener for customers and the SMPP notifier (receipts and MO back on
  the customers' binds, which live here): everything that takes messages in;
- **delivery** (a child the front starts and supervises): the connectors to
  the operators (claims, submits, receipts and MO in, expiry, housekeeping)
  and the webhook sender, whose events the receipts and MO arriving there create.

They tell each other when there is work over a socket pair
(:mod:`herald.workers._link`); the work itself is always in the store, so a
lost wake-up costs latency, never a message. See ``docs/performance.md`` for
why this split and what it measured.
"""

from herald.workers._leases import KEEPER_CONNECTIONS, ServeLeases
from herald.workers._link import Link, link_pair
from herald.workers._supervisor import (
    RESTART_MAX,
    RESTART_MIN,
    START_TIMEOUT,
    UPSTREAMS_STALE,
    DeliveryWorker,
)

__all__ = [
    "KEEPER_CONNECTIONS",
    "RESTART_MAX",
    "RESTART_MIN",
    "START_TIMEOUT",
    "UPSTREAMS_STALE",
    "DeliveryWorker",
    "Link",
    "ServeLeases",
    "link_pair",
]
