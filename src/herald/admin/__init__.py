"""Operating herald: admin keys, the audit log, and the one service every change goes through.

:class:`Admin` makes the changes operators ask for (accounts, credentials,
number tables, admin keys) and records each in the audit log; the
``herald accounts``/``numbers``/``admin`` commands and the admin API
(``/v1/admin``, :mod:`herald.api`) call it, and nothing else writes those
settings. :class:`AdminKeys` issues and verifies the admin API's keys.
See docs/admin.md.
"""

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
    "MAX_BIND_LIMIT",
    "SETTINGS",
    "VERIFIED_TTL",
    "Admin",
    "AdminError",
    "AdminKeys",
    "AdminPrincipal",
    "ChangeFeed",
    "Conflict",
    "FieldProblem",
    "InvalidInput",
    "IssuedAdminKey",
    "NotFound",
    "RoutesImport",
    "TableImport",
    "apply_settings",
    "check_key_name",
    "cli_actor",
    "describe_settings",
    "looks_like_admin_key",
]
