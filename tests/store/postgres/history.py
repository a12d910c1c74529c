"""Finished messages in bulk, for tests and benchmarks that need a big history.

One ``INSERT ... SELECT generate_series``: about a million rows in a few
seconds. The rows are delivered messages (no queue rows), accepted before
``t0``, over 50 accounts and the four priority classes; their ids are decimal
strings, which herald's own ids (26 characters of base32hex) never are.
"""

from __future__ import annotations

from typing import Any

from herald.store import Source, Status

__all__ = ["fill_finished"]

_FILL = f"""
INSERT INTO messages (id, account_id, source, to_addr, from_addr, body, encoding,
    data_coding, udhi, segments, registered_delivery, test, expires_at, status,
    accepted_at, sent_at, done_at, priority)
SELECT g::text, 1 + g % 50, {int(Source.HTTP)}, '+447700900000', 'ACME', '', 'gsm7',
    0, false, 1, 0, false, $2 + 3600, {int(Status.DELIVERED)},
    $2 - g, $2 - g, $2 - g, g % 4
FROM generate_series(1, $1::int) AS g
"""


async def fill_finished(conn: Any, count: int, t0: float) -> None:
    """Add ``count`` delivered messages to the ``messages`` table of ``conn``."""
    await conn.execute(_FILL, count, t0)
