"""Accounts and their credentials: API keys and SMPP logins, hashed with argon2id.

:class:`Accounts` issues credentials (shown once, stored only as hashes) and
verifies them behind a short-lived cache (see ``_service`` for the trade-off).
:class:`ControlBook` keeps each account's controls and opt-out list in memory
for the intake checks. Webhook signing secrets are derived from a master key, not stored
(:func:`webhook_secret`). The ``herald accounts`` commands are in
:mod:`herald.accounts.cli`.
"""

from herald.accounts._controls import CONTROLS_TTL, OPT_OUT_REFRESH, ControlBook
from herald.accounts._credentials import (
    API_KEY_PREFIX,
    DEFAULT_SMPP_PASSWORD_LENGTH,
    MAX_API_KEY_LENGTH,
    MAX_SMPP_PASSWORD_LENGTH,
    MAX_SYSTEM_ID_LENGTH,
    AccountsError,
    InvalidCredentials,
    InvalidName,
    IssuedApiKey,
    IssuedSmppPassword,
    Principal,
    SmppBindStatus,
    check_account_name,
    check_system_id,
    parse_api_key,
)
from herald.accounts._service import (
    DEFAULT_BIND_LIMIT,
    DEFAULT_CACHE_TTL,
    DEFAULT_RATE_LIMIT,
    HASH_THREADS,
    MAX_CACHE_ENTRIES,
    Accounts,
)
from herald.accounts._throttle import (
    SUSPECT_SECONDS,
    FailedLogins,
    HashLanes,
    LoginsBusy,
    RecentKeys,
)
from herald.accounts._webhook import MASTER_KEY_FILENAME, load_master_key, webhook_secret

__all__ = [
    "API_KEY_PREFIX",
    "CONTROLS_TTL",
    "DEFAULT_BIND_LIMIT",
    "DEFAULT_CACHE_TTL",
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_SMPP_PASSWORD_LENGTH",
    "HASH_THREADS",
    "MASTER_KEY_FILENAME",
    "MAX_API_KEY_LENGTH",
    "MAX_CACHE_ENTRIES",
    "MAX_SMPP_PASSWORD_LENGTH",
    "MAX_SYSTEM_ID_LENGTH",
    "OPT_OUT_REFRESH",
    "SUSPECT_SECONDS",
    "Accounts",
    "AccountsError",
    "ControlBook",
    "FailedLogins",
    "HashLanes",
    "InvalidCredentials",
    "InvalidName",
    "IssuedApiKey",
    "IssuedSmppPassword",
    "LoginsBusy",
    "Principal",
    "RecentKeys",
    "SmppBindStatus",
    "check_account_name",
    "check_system_id",
    "load_master_key",
    "parse_api_key",
    "webhook_secret",
]
