"""Price lists and balances, changed and recorded: billing's part of the admin service.

``herald prices`` / ``herald balance`` and the admin API (``/v1/admin/prices``,
``/v1/admin/accounts/{name}/balance``) both call :class:`BillingAdmin`, which
checks the input (each problem naming its field), makes the change and then
records it with :meth:`Admin.record <herald.admin.Admin.record>`, as every
operator change is. Amounts are exact: they come in as decimal text and are
kept as micro-units (``docs/billing.md``). A running herald charges by a new
sell list within :data:`herald.billing.CHECK_INTERVAL` seconds (it polls the
store's price-list generation); balances are read by each charge.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from herald.admin._errors import FieldProblem, InvalidInput, NotFound
from herald.admin._service import Admin
from herald.billing import money
from herald.rating import PriceList, parse_amount, parse_price_list, to_micros
from herald.store import Balance, InvalidRecord, PriceSide, RefundPolicy

__all__ = ["REFUND_POLICIES", "BillingAdmin", "PriceImport", "PriceListInfo"]

#: Refund policies by the name operators write (``none``, ``rejected``, ``undelivered``).
REFUND_POLICIES: Final = {p.label: p for p in RefundPolicy}
_SIDE_WORD: Final = {PriceSide.SELL: "sell", PriceSide.BUY: "buy"}


@dataclass(frozen=True, slots=True)
class PriceImport:
    """What an import of a price list stored."""

    side: PriceSide
    entries: int
    generation: int


@dataclass(frozen=True, slots=True)
class PriceListInfo:
    """A stored list in a listing: whose (an account's name for a sell list), its size."""

    side: PriceSide
    owner: str
    entries: int
    imported_at: float


class BillingAdmin:
    """Sell and buy price lists and account balances, changed through ``admin``.

    Errors: :class:`InvalidInput` (422, naming the field), :class:`NotFound`
    (404: no such account or list), :class:`herald.rating.TableFileError`
    from an import (each bad line named; nothing stored); the store's
    busy/unavailable errors pass through.
    """

    def __init__(self, admin: Admin, *, clock: Callable[[], float] = time.time) -> None:
        self.admin = admin
        self.store = admin.store
        self._clock = clock

    async def _owner(self, side: PriceSide, name: str) -> str:
        """The stored owner of ``name``'s list: an account's id, a connector's name."""
        if side is PriceSide.SELL:
            return str((await self.admin.account(name)).id)
        return name

    @staticmethod
    def _target(side: PriceSide, name: str) -> str:
        return f"account:{name}" if side is PriceSide.SELL else f"connector:{name}"

    # -- price lists ---------------------------------------------------------------------

    async def price_list(self, side: PriceSide, name: str) -> tuple[PriceList, float]:
        """``name``'s list and when it was imported. Raises :class:`NotFound`."""
        owner = await self._owner(side, name)
        for stored in await self.store.price_lists(side):
            if stored.owner == owner:
                return PriceList.from_stored(stored), stored.imported_at
        whose = "account" if side is PriceSide.SELL else "connector"
        raise NotFound(f"{whose} {name!r} has no price list")

    async def price_lists(self) -> list[PriceListInfo]:
        """Every list: the sell lists (by account name), then the buy lists."""
        names = {str(a.id): a.name for a in await self.store.list_accounts()}
        out = []
        for side in (PriceSide.SELL, PriceSide.BUY):
            for stored in await self.store.price_lists(side):
                owner = names.get(stored.owner, stored.owner) if side is PriceSide.SELL else (
                    stored.owner)  # fmt: skip
                out.append(PriceListInfo(side, owner, len(stored.entries), stored.imported_at))
        return out

    async def import_price_list(
        self, actor: str, side: PriceSide, name: str, lines: Iterable[str]
    ) -> PriceImport:
        """Replace ``name``'s list with a CSV file's lines (``destination,price``,
        parsed off the loop). Raises :class:`NotFound` (no such account) or
        :class:`~herald.rating.TableFileError` naming the bad lines."""
        owner = await self._owner(side, name)
        prices = await asyncio.to_thread(lambda: parse_price_list(lines))
        generation = await self.store.put_price_list(
            prices.stored(side, owner, self._clock()))
        await self.admin.record(actor, "prices.import", self._target(side, name), {
            "list": _SIDE_WORD[side], "entries": len(prices),
            "generation": generation})  # fmt: skip
        return PriceImport(side, len(prices), generation)

    async def remove_price_list(self, actor: str, side: PriceSide, name: str) -> int:
        """Remove ``name``'s list (an account without one is not charged); the
        generation. Raises :class:`NotFound` (no such account or list)."""
        owner = await self._owner(side, name)
        await self.price_list(side, name)
        generation = await self.store.remove_price_list(side, owner)
        await self.admin.record(actor, "prices.remove", self._target(side, name), {
            "list": _SIDE_WORD[side], "generation": generation})  # fmt: skip
        return generation

    # -- balances ------------------------------------------------------------------------

    async def balance(self, name: str) -> tuple[Balance, bool]:
        """The account's balance (zero, if it never had one) and whether it is
        billed (has a sell list). Raises :class:`NotFound`."""
        account = await self.admin.account(name)
        found = await self.store.get_balance(account.id)
        balance = found if found is not None else Balance(account.id, 0, 0, RefundPolicy.NONE)
        billed = any(s.owner == str(account.id)
                     for s in await self.store.price_lists(PriceSide.SELL))  # fmt: skip
        return balance, billed

    async def top_up(
        self, actor: str, name: str, amount: str, *, allow_negative: bool = False
    ) -> Balance:
        """Add ``amount`` (decimal text, at most 6 places) to the balance;
        a negative one takes away only with ``allow_negative`` (the CLI's
        corrections). Raises :class:`InvalidInput` (``amount``), :class:`NotFound`."""
        value = _amount("amount", amount)
        if value < 0 and not allow_negative:
            raise InvalidInput.one("amount", "out_of_range", "must be more than 0 (a top-up"
                                   " adds; correct a balance with herald balance top-up)")
        if value == 0 and not allow_negative:
            raise InvalidInput.one("amount", "out_of_range", "must be more than 0")
        account = await self.admin.account(name)
        after = await self._adjust(account.id, "amount", add=to_micros(value))
        await self.admin.record(actor, "balance.top_up", f"account:{name}", {
            "add": money(to_micros(value)), "balance": money(after.balance)})  # fmt: skip
        return after

    async def set_balance(
        self, actor: str, name: str, *, credit_limit: str | None = None,
        refund_policy: str | None = None,
    ) -> Balance:  # fmt: skip
        """Set the credit limit (decimal text, not negative) and/or the refund
        policy (``none``, ``rejected``, ``undelivered``). Recorded when
        something changed. Raises :class:`InvalidInput` naming each bad field,
        :class:`NotFound`."""
        problems: list[FieldProblem] = []
        limit = policy = None
        if credit_limit is not None:
            try:
                value = _amount("credit_limit", credit_limit)
                if value < 0:
                    raise InvalidInput.one("credit_limit", "out_of_range",
                                           "must not be negative (0: prepaid only)")
                limit = to_micros(value)
            except InvalidInput as exc:
                problems += exc.problems
        if refund_policy is not None:
            policy = REFUND_POLICIES.get(refund_policy)
            if policy is None:
                problems += InvalidInput.one("refund_policy", "invalid_choice", "must be one"
                                             f" of {', '.join(REFUND_POLICIES)}").problems
        if problems:
            raise InvalidInput(problems)
        before, _ = await self.balance(name)
        if limit is None and policy is None:  # nothing asked: no balance row created either
            return before
        after = await self._adjust(before.account_id, "credit_limit", credit_limit=limit,
                                   refund_policy=policy)  # fmt: skip
        changes: dict[str, object] = {}
        if after.credit_limit != before.credit_limit:
            changes["credit_limit"] = money(after.credit_limit)
        if after.refund_policy is not before.refund_policy:
            changes["refund_policy"] = after.refund_policy.label
        if changes:
            await self.admin.record(actor, "balance.set", f"account:{name}", changes)
        return after

    async def _adjust(
        self, account_id: int, field: str, *, add: int = 0, credit_limit: int | None = None,
        refund_policy: RefundPolicy | None = None,
    ) -> Balance:  # fmt: skip
        try:
            return await self.store.adjust_balance(account_id, add=add,
                                                   credit_limit=credit_limit,
                                                   refund_policy=refund_policy)  # fmt: skip
        except InvalidRecord as exc:  # the balance would leave the store's range
            raise InvalidInput.one(field, "out_of_range", str(exc)) from None


def _amount(field: str, text: str) -> Decimal:
    try:
        return parse_amount(text)
    except ValueError as exc:
        raise InvalidInput.one(field, "not_valid", str(exc)) from None
