"""herald's storage: the :class:`Store` port, its values and errors, and the SQLite store.

The store is also the queue (dispatch claims rows) and the outbox (webhook and
SMPP events are rows written with the change they report). Import what you
need from here; the ``_``-modules are private.

Importing this package loads the port and its values only: the pure core
(:mod:`herald.intake`) builds records from them without pulling in a database
driver. The SQLite adapter (``SQLiteStore``, ``SQLiteConfig``,
``SQLitePendingMessages``) is loaded on first use of one of its names.
"""

from typing import TYPE_CHECKING, Any

from herald.store._errors import (
    AccountExists,
    Conflict,
    CredentialExists,
    DuplicateMessageId,
    IdempotencyMismatch,
    InvalidRecord,
    MessageNotFound,
    NotFound,
    QuotaExceeded,
    SchemaError,
    SmppStatus,
    StoreBusy,
    StoreClosed,
    StoreError,
    StoreUnavailable,
    UnknownAccount,
)
from herald.store._model import (
    DEFAULT_PRIORITY,
    DEFAULT_STATUS_EVENTS,
    FINAL_STATUSES,
    MAX_ADDRESS_LENGTH,
    MAX_BODY_OCTETS,
    MAX_CALLBACK_URL_LENGTH,
    MAX_CONTROL_ENTRIES,
    MAX_CONTROL_ENTRY_LENGTH,
    MAX_ID_LENGTH,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_IDEMPOTENCY_RESPONSE_OCTETS,
    MAX_METADATA_LENGTH,
    MAX_NUMBER_TABLE_OCTETS,
    MAX_PAGE_SIZE,
    MAX_REFERENCE_LENGTH,
    MAX_SEGMENTS,
    MAX_TAG_LENGTH,
    MAX_WEBHOOK_BATCH,
    MAX_WEBHOOK_BATCH_WAIT,
    NO_CONTROLS,
    Account,
    AccountControls,
    ApiKeyRecord,
    Backlog,
    ChangeOutcome,
    ChangeResult,
    Channel,
    CheckResult,
    DailyQuota,
    EventKind,
    IdempotencyRecord,
    InboundMessage,
    Message,
    MessageFilter,
    MessagePage,
    NewMessage,
    NumberTable,
    NumberTableKind,
    OptOutChange,
    OptOutEntry,
    OutboxEvent,
    Priority,
    ReceiptCheck,
    ReceiptUpdate,
    Replacement,
    Reschedule,
    Segment,
    SegmentRecord,
    SmppCredentialRecord,
    Source,
    Status,
    StatusEvents,
    StatusUpdate,
)
from herald.store._model_admin import (
    SECRET_FIELDS,
    SECRET_OUTCOMES,
    AdminKeyRecord,
    AdminScope,
    AuditEntry,
    AuditFilter,
)
from herald.store._model_routing import (
    MAX_ROUTES_OCTETS,
    MAX_RULE_NAME_LENGTH,
    ConnectorState,
    DeliveryCounts,
    MessageRoute,
    RouteRecord,
    StoredRoutes,
)
from herald.store._port import (
    AccountStore,
    AdminStore,
    ControlStore,
    MessageStore,
    NumberTableStore,
    OutboxStore,
    RoutingStore,
    Store,
)

if TYPE_CHECKING:
    from herald.store.pending import SQLitePendingMessages
    from herald.store.sqlite import SQLiteConfig, SQLiteStore

#: The adapter's names and their modules, imported when first asked for.
_ADAPTERS = {
    "SQLiteConfig": "herald.store.sqlite",
    "SQLiteStore": "herald.store.sqlite",
    "SQLitePendingMessages": "herald.store.pending",
}

__all__ = [
    "DEFAULT_PRIORITY",
    "DEFAULT_STATUS_EVENTS",
    "FINAL_STATUSES",
    "MAX_ADDRESS_LENGTH",
    "MAX_BODY_OCTETS",
    "MAX_CALLBACK_URL_LENGTH",
    "MAX_CONTROL_ENTRIES",
    "MAX_CONTROL_ENTRY_LENGTH",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "MAX_IDEMPOTENCY_RESPONSE_OCTETS",
    "MAX_ID_LENGTH",
    "MAX_METADATA_LENGTH",
    "MAX_NUMBER_TABLE_OCTETS",
    "MAX_PAGE_SIZE",
    "MAX_REFERENCE_LENGTH",
    "MAX_ROUTES_OCTETS",
    "MAX_RULE_NAME_LENGTH",
    "MAX_SEGMENTS",
    "MAX_TAG_LENGTH",
    "MAX_WEBHOOK_BATCH",
    "MAX_WEBHOOK_BATCH_WAIT",
    "NO_CONTROLS",
    "SECRET_FIELDS",
    "SECRET_OUTCOMES",
    "Account",
    "AccountControls",
    "AccountExists",
    "AccountStore",
    "AdminKeyRecord",
    "AdminScope",
    "AdminStore",
    "ApiKeyRecord",
    "AuditEntry",
    "AuditFilter",
    "Backlog",
    "ChangeOutcome",
    "ChangeResult",
    "Channel",
    "CheckResult",
    "Conflict",
    "ConnectorState",
    "ControlStore",
    "CredentialExists",
    "DailyQuota",
    "DeliveryCounts",
    "DuplicateMessageId",
    "EventKind",
    "IdempotencyMismatch",
    "IdempotencyRecord",
    "InboundMessage",
    "InvalidRecord",
    "Message",
    "MessageFilter",
    "MessageNotFound",
    "MessagePage",
    "MessageRoute",
    "MessageStore",
    "NewMessage",
    "NotFound",
    "NumberTable",
    "NumberTableKind",
    "NumberTableStore",
    "OptOutChange",
    "OptOutEntry",
    "OutboxEvent",
    "OutboxStore",
    "Priority",
    "QuotaExceeded",
    "ReceiptCheck",
    "ReceiptUpdate",
    "Replacement",
    "Reschedule",
    "RouteRecord",
    "RoutingStore",
    "SQLiteConfig",
    "SQLitePendingMessages",
    "SQLiteStore",
    "SchemaError",
    "Segment",
    "SegmentRecord",
    "SmppCredentialRecord",
    "SmppStatus",
    "Source",
    "Status",
    "StatusEvents",
    "StatusUpdate",
    "Store",
    "StoreBusy",
    "StoreClosed",
    "StoreError",
    "StoreUnavailable",
    "StoredRoutes",
    "UnknownAccount",
]


if not TYPE_CHECKING:  # mypy sees the names above; a typo stays an error there

    def __getattr__(name: str) -> Any:
        module = _ADAPTERS.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later look-ups find it directly
        return value
