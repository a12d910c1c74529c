"""Operating herald: admin keys, the audit log, and the one service every change goes through.

:class:`Admin` makes the changes operators ask for (accounts, credentials,
number tables, admin keys; price lists and balances: :class:`BillingAdmin`)
and records each in the audit log; the
``herald accounts``/``numbers``/``admin`` commands and the admin API
(``/v1/admin``, :mod:`herald.api`) call it, and nothing else writes those
settings. :class:`AdminKeys` issues and verifies the admin API's keys.
See docs/admin.md.
"""

from herald.admin._billing import (
    REFUND_POLICIES,
    BillingAdmin,
    PriceImport,
    PriceListInfo,
)
from herald.admin._controls import (
    CONTROLS,
    OPT_OUT_CSV_HEADER,
    apply_controls,
    check_numbers,
    describe_controls,
    opt_out_csv,
)
from herald.admin._errors import (
    AdminError,
    Conflict,
    FieldProblem,
    InvalidInput,
    NotFound,
)
from herald.admin._keys import (
    ADMIN_KEY_PREFIX,
    VERIFIED_TTL,
    AdminKeys,
    AdminPrincipal,
    IssuedAdminKey,
    check_key_name,
    looks_like_admin_key,
)
from herald.admin._service import (
    CHANGE_POLL_INTERVAL,
    Admin,
    ChangeFeed,
    RoutesImport,
    TableImport,
    cli_actor,
)
from herald.admin._settings import MAX_BIND_LIMIT, SETTINGS, apply_settings, describe_settings

__all__ = [
    "ADMIN_KEY_PREFIX",
    "CHANGE_POLL_INTERVAL",
    "CONTROLS",
    "MAX_BIND_LIMIT",
    "OPT_OUT_CSV_HEADER",
    "REFUND_POLICIES",
    "SETTINGS",
    "VERIFIED_TTL",
    "Admin",
    "AdminError",
    "AdminKeys",
    "AdminPrincipal",
    "BillingAdmin",
    "ChangeFeed",
    "Conflict",
    "FieldProblem",
    "InvalidInput",
    "IssuedAdminKey",
    "NotFound",
    "PriceImport",
    "PriceListInfo",
    "RoutesImport",
    "TableImport",
    "apply_controls",
    "apply_settings",
    "check_key_name",
    "check_numbers",
    "cli_actor",
    "describe_controls",
    "describe_settings",
    "looks_like_admin_key",
    "opt_out_csv",
]
