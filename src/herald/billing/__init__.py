"""Billing in a running herald: the sell price lists intake charges by.

The rules are pure (:mod:`herald.rating`); the balances, charges, refunds
and CDRs are the store's (:class:`~herald.store.BillingStore`); this package
holds the lists a process rates with (``_lists``), the rows of CDR exports
and margin reports (``_reports``, shared with the admin API) and the
``herald prices``, ``herald balance`` and ``herald cdr`` commands (``cli``).
Changes to lists and balances go through :class:`herald.admin.BillingAdmin`.
docs/billing.md describes them for operators.
"""

from herald.billing._lists import CHECK_INTERVAL, PriceLists, Unpriced, no_prices, rate
from herald.billing._reports import (
    CDR_COLUMNS,
    CDR_PAGE,
    MARGIN_GROUPS,
    cdr_row,
    margin_key,
    margin_percent,
    money,
    parse_when,
    utc_text,
)

__all__ = [
    "CDR_COLUMNS",
    "CDR_PAGE",
    "CHECK_INTERVAL",
    "MARGIN_GROUPS",
    "PriceLists",
    "Unpriced",
    "cdr_row",
    "margin_key",
    "margin_percent",
    "money",
    "no_prices",
    "parse_when",
    "rate",
    "utc_text",
]
