"""Token buckets every node shares (the :class:`~herald.store.TokenLedger` of
:class:`~herald.store.postgres.PostgresStore`; private).

One row per ``(scope, key)``: an account's message rate, a client address's
failed logins. A take is one upsert that refills the row to ``now``, decides
and subtracts under the row's lock, so takes from every node on one bucket
take turns and never grant more than it holds. ``granted`` keeps what the last
take granted, only to return it (``RETURNING`` sees the new row). The rows are
updated in place, no indexed column changing: HOT updates on pages kept
partly free.
"""

from __future__ import annotations

from typing import Any

from herald.store._model_limits import TokenGrant
from herald.store.postgres._part import StorePart

__all__ = ["PostgresLimits"]

# $1 scope, $2 key, $3 rate, $4 capacity, $5 need, $6 want, $7 now; a new row
# starts full, so its first take is granted (computed in the VALUES).
_TAKE = """
INSERT INTO token_buckets AS b (scope, key, rate, capacity, stamp, tokens, granted)
SELECT $1, $2, $3::float8, $4::float8, $7::float8, $4::float8 - g, g
FROM (SELECT greatest($5::float8, least($6::float8, $4::float8)) AS g) first
ON CONFLICT (scope, key) DO UPDATE SET (rate, capacity, stamp, tokens, granted) = (
    SELECT excluded.rate, excluded.capacity, greatest(b.stamp, excluded.stamp), avail - g, g
    FROM (SELECT avail, CASE WHEN avail >= least($5::float8, excluded.capacity)
                             THEN greatest($5::float8, least($6::float8, avail))
                             ELSE 0 END AS g
          FROM (SELECT least(excluded.capacity, b.tokens + greatest(0, excluded.stamp - b.stamp)
                             * excluded.rate) AS avail) refilled) decided)
RETURNING granted, tokens, failed_at
"""
_SETTLE = """
UPDATE token_buckets SET tokens = least(capacity, tokens + $3::float8),
    failed_at = CASE WHEN $4::float8 IS NULL THEN failed_at
                     ELSE greatest(coalesce(failed_at, $4::float8), $4::float8) END
WHERE scope = $1 AND key = $2
"""
_FORGET = """
DELETE FROM token_buckets WHERE tokens + greatest(0, $1::float8 - stamp) * rate >= capacity
    AND coalesce(failed_at, stamp) < $1::float8
"""


class PostgresLimits(StorePart):
    """The shared token buckets of :class:`~herald.store.postgres.PostgresStore`."""

    async def take_tokens(self, scope: str, key: str, rate: float, capacity: float,
                          need: float, want: float, now: float) -> TokenGrant:  # fmt: skip
        if not (rate > 0 and capacity > 0 and 0 <= need <= want):
            raise ValueError("need 0 <= need <= want, and a positive rate and capacity")
        r: Any = await self._one(lambda c: c.fetchrow(_TAKE, scope, key, rate, capacity,
                                                      need, want, now))  # fmt: skip
        return TokenGrant(r["granted"], r["tokens"], r["failed_at"])

    async def settle_tokens(self, scope: str, key: str, give: float,
                            failed_at: float | None = None) -> None:  # fmt: skip
        await self._one(lambda c: c.execute(_SETTLE, scope, key, give, failed_at))

    async def forget_tokens(self, before: float) -> int:
        status: str = await self._one(lambda c: c.execute(_FORGET, before))
        return int(status.rpartition(" ")[2])
