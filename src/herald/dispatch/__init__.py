"""Dispatch: herald as the ESME toward its upstream SMSCs.

:class:`Dispatcher` claims messages from the store (the store is the queue),
routes them (:mod:`herald.routing`), sends them through per-connector pumps
(token bucket shared by the binds, a window per bind, throttling backoff,
failover), records each segment's upstream id, and applies the receipts and
stores the MO messages the upstreams send back. See ``docs/dispatch.md``.

Usage (the service does this)::

    dispatcher = Dispatcher(store, config, metrics, time.time)
    await dispatcher.start()
    ...                     # intake: dispatcher.wake() after each commit
    await dispatcher.stop() # graceful: in-flight work finished or handed back

The pure helpers are public for tests and tools: :func:`build_submits`
(a stored message as one connector's submit_sm PDUs), :func:`classify`
(a submit_sm_resp status's class), :class:`TokenBucket`, :class:`Backoff`,
:func:`receipt_updates`, :func:`query_pdu` and :func:`query_answer` (query_sm
for a part whose receipt is overdue, and what its answer means).
"""

from herald.dispatch._checks import QUERY_STATUS, after_query, query_answer
from herald.dispatch._dispatcher import Dispatcher
from herald.dispatch._errors import (
    PERMANENT_STATUSES,
    THROTTLE_STATUSES,
    ErrorCode,
    Outcome,
    classify,
)
from herald.dispatch._inbox import RECEIPT_STATUS, receipt_error_code, receipt_updates
from herald.dispatch._pace import Backoff, TokenBucket
from herald.dispatch._plan import (
    Unsendable,
    Upstream,
    build_submits,
    query_pdu,
    validity_period,
)
from herald.dispatch._settings import DispatchSettings

__all__ = [
    "PERMANENT_STATUSES",
    "QUERY_STATUS",
    "RECEIPT_STATUS",
    "THROTTLE_STATUSES",
    "Backoff",
    "DispatchSettings",
    "Dispatcher",
    "ErrorCode",
    "Outcome",
    "TokenBucket",
    "Unsendable",
    "Upstream",
    "after_query",
    "build_submits",
    "classify",
    "query_answer",
    "query_pdu",
    "receipt_error_code",
    "receipt_updates",
    "validity_period",
]
