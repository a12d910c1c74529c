"""Each account's controls and opt-out list, as this process last read them.

Theory of operation
-------------------
Every submission is checked against its account's controls
(:class:`~herald.intake.AccountRules`) and opt-out list, thousands of times a
second, so neither is read from the store on the hot path. A
:class:`ControlBook` keeps, in this process's memory:

- each account's rules, read when first needed and again when
  :data:`CONTROLS_TTL` seconds old (the delay with which ``herald accounts
  set`` reaches a running herald, like the rest of an account's settings);
- every account's opt-out list as a set of numbers, read whole once and
  then followed: every :data:`OPT_OUT_REFRESH` seconds at most, one indexed
  read of the entries changed since the last one seen (each change has a
  greater ``seq``). A STOP stored by the delivery process, or a list imported
  with ``herald optouts``, is refused here within that delay.

:meth:`ControlBook.refresh` does the re-reading (callers await it where they
already wait for the store: the HTTP gate's account read, an SMPP bind and
its periodic recheck); :meth:`rules` and :meth:`opted_out` answer at once
from memory. Memory: about 100 octets per opted-out number.

The daily quota is not counted here: the store counts it in the accept's
transaction (``herald.store._sqlite_controls``), so it holds across
processes and nodes; the book only says what the quota is.
"""

from __future__ import annotations

import logging
from collections.abc import Set
from typing import Final

from herald.intake import NO_ACCOUNT_RULES, AccountRules, quota_day
from herald.store import NO_CONTROLS, ControlStore, DailyQuota, StoreError

__all__ = ["CONTROLS_TTL", "OPT_OUT_PAGE", "OPT_OUT_REFRESH", "ControlBook"]

log = logging.getLogger("herald.accounts")

#: Seconds an account's controls are used without a re-read.
CONTROLS_TTL: Final = 5.0
#: Seconds between looks for opt-out changes.
OPT_OUT_REFRESH: Final = 2.0
#: Opt-out entries read per store call while catching up.
OPT_OUT_PAGE: Final = 10_000

_EMPTY: Final[frozenset[str]] = frozenset()


class ControlBook:
    """See the module docstring. Times are epoch seconds (the callers' ``now``)."""

    def __init__(self, store: ControlStore, *, ttl: float = CONTROLS_TTL,
                 opt_out_refresh: float = OPT_OUT_REFRESH) -> None:
        self._store = store
        self._ttl = ttl
        self._opt_out_refresh = opt_out_refresh
        self._rules: dict[int, tuple[AccountRules, float]] = {}
        self._opted_out: dict[int, set[str]] = {}
        self._seq = 0
        self._opt_outs_due = float("-inf")

    def rules(self, account_id: int) -> AccountRules:
        """The account's rules as last read (none before the first :meth:`refresh`)."""
        entry = self._rules.get(account_id)
        return NO_ACCOUNT_RULES if entry is None else entry[0]

    def opted_out(self, account_id: int) -> Set[str]:
        """The numbers (E.164 digits) opted out of the account's messages."""
        return self._opted_out.get(account_id, _EMPTY)

    def quota(self, account_id: int, now: float) -> DailyQuota | None:
        """The quota an accept for the account at ``now`` counts against, if any."""
        rules = self.rules(account_id)
        if rules.daily_quota is None:
            return None
        return DailyQuota(account_id, quota_day(now), rules.daily_quota, rules.quota_segments)

    def current(self, account_id: int, now: float) -> AccountRules | None:
        """The account's rules if nothing is due for a re-read, else ``None``
        (then await :meth:`refresh`): the hot path's cheap, synchronous look."""
        entry = self._rules.get(account_id)
        if entry is None or entry[1] <= now or now >= self._opt_outs_due:
            return None
        return entry[0]

    async def refresh(self, account_id: int, now: float) -> AccountRules:
        """The account's rules, re-read if stale, and the opt-out lists brought up
        to date if due. A store failure keeps what was read before (logged);
        raises :class:`~herald.store.StoreError` only when nothing was ever read
        for the account (the caller answers as for any store failure)."""
        if now >= self._opt_outs_due:
            self._opt_outs_due = now + self._opt_out_refresh
            try:
                await self.sync_opt_outs()
            except StoreError as exc:
                log.warning("could not read opt-out changes (%s); trying again shortly", exc)
        entry = self._rules.get(account_id)
        if entry is not None and entry[1] > now:
            return entry[0]
        try:
            controls = await self._store.get_controls(account_id)
        except StoreError:
            if entry is None:
                raise
            log.warning("could not re-read the controls of account %d; using the last read",
                        account_id)
            return entry[0]
        rules = NO_ACCOUNT_RULES if controls == NO_CONTROLS else AccountRules.parse(controls)
        self._rules[account_id] = (rules, now + self._ttl)
        return rules

    async def sync_opt_outs(self) -> int:
        """Read the opt-out changes since the last read; how many."""
        read = 0
        while True:
            entries = await self._store.opt_out_changes(self._seq, OPT_OUT_PAGE)
            for e in entries:
                numbers = self._opted_out.setdefault(e.account_id, set())
                if e.opted_out:
                    numbers.add(e.number)
                else:
                    numbers.discard(e.number)
                self._seq = max(self._seq, e.seq)
            read += len(entries)
            if len(entries) < OPT_OUT_PAGE:
                return read

    def forget(self, account_id: int) -> None:
        """Re-read the account's rules at the next :meth:`refresh` (after a change here)."""
        self._rules.pop(account_id, None)

    def opt_outs_changed(self) -> None:
        """Bring the opt-out lists up to date at the next :meth:`refresh`, due or not
        (an admin change to one was seen: it applies to the next request)."""
        self._opt_outs_due = float("-inf")
