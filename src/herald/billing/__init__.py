"""Billing in a running herald: the sell price lists intake charges by.

The rules are pure (:mod:`herald.rating`); the balances, charges, refunds
and CDRs are the store's (:class:`~herald.store.BillingStore`); this package
holds the lists a process rates with (``_lists``) and the ``herald prices``,
``herald balance`` and ``herald cdr`` commands (``cli``). docs/billing.md
describes them for operators.
"""

from herald.billing._lists import CHECK_INTERVAL, PriceLists, Unpriced, no_prices, rate

__all__ = ["CHECK_INTERVAL", "PriceLists", "Unpriced", "no_prices", "rate"]
