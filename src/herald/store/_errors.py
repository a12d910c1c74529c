"""Errors raised by any :class:`~herald.store.Store` implementation.

Every error knows how the layer above should answer its own client, so a store
failure is translated at the boundary and never leaks as a stack trace
(STYLE.md item 5): ``http_status`` for the HTTP API and ``smpp_status`` (the
``command_status`` of the response PDU) for SMPP intake.

Split as the style guide asks:

- *busy / unavailable* (:class:`StoreBusy`, :class:`StoreUnavailable`,
  :class:`StoreClosed`): the store cannot take the request now; the client
  should retry later. Nothing was written.
- *the request names something that is not there, or conflicts with what is*
  (:class:`NotFound`, :class:`Conflict`, :class:`IdempotencyMismatch`), or
  the account cannot pay for it (:class:`InsufficientFunds`): the client's
  request is wrong; answer it and keep serving.
- *our own misuse* (:class:`InvalidRecord`, :class:`SchemaError`): a caller in
  herald built a record the store refuses, or the data directory belongs to a
  newer herald. A bug or an operator error, never the customer's fault.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "AccountExists",
    "Conflict",
    "CredentialExists",
    "DuplicateMessageId",
    "IdempotencyMismatch",
    "InsufficientFunds",
    "InvalidRecord",
    "MessageNotFound",
    "NotFound",
    "QuotaExceeded",
    "SchemaError",
    "SmppStatus",
    "StoreBusy",
    "StoreClosed",
    "StoreError",
    "StoreUnavailable",
    "UnknownAccount",
]


class SmppStatus(IntEnum):
    """The SMPP 3.4 command_status values a store error maps to (§5.1.3)."""

    ESME_ROK = 0x00000000
    ESME_RINVMSGID = 0x0000000C  # message ID is invalid (query_sm / cancel_sm)
    ESME_RBINDFAIL = 0x0000000D  # bind failed
    ESME_RSYSERR = 0x00000008  # system error
    ESME_RMSGQFUL = 0x00000014  # message queue full: the ESME should retry later
    ESME_RTHROTTLED = 0x00000058  # throttling error: the ESME should retry later
    ESME_RSUBMITFAIL = 0x00000045  # submit_sm or submit_multi failed


class StoreError(Exception):
    """Base of every store error. Answer with ``http_status`` / ``smpp_status``."""

    http_status: int = 500
    smpp_status: SmppStatus = SmppStatus.ESME_RSYSERR


# -- the store cannot take the request now: retry later ---------------------------


class StoreBusy(StoreError):
    """Too many writes are waiting for the next commit (``max_pending``).

    Nothing was written. Answer 503 with ``Retry-After`` (HTTP) or
    ESME_RMSGQFUL (SMPP, the ESME retries later) and keep serving.
    """

    http_status = 503
    smpp_status = SmppStatus.ESME_RMSGQFUL


class StoreUnavailable(StoreError):
    """The database refused the write or read (disk full, I/O error, locked, a
    database server out of reach).

    The operation did not take effect. Answer 503 with ``Retry-After`` (HTTP) or
    ESME_RTHROTTLED (SMPP: the one status every ESME takes as "retry later";
    ESME_RSYSERR reads as a failure of the message to many) and keep serving:
    intake resumes by itself when the store answers again. An operator must
    look at the cause (it is in ``__cause__``).
    """

    http_status = 503
    smpp_status = SmppStatus.ESME_RTHROTTLED


class StoreClosed(StoreUnavailable):
    """The store is closed (shutting down). Stop intake; nothing was written."""


# -- the request is wrong ------------------------------------------------------------


class NotFound(StoreError):
    """The record named by the request does not exist (or is not the account's)."""

    http_status = 404


class MessageNotFound(NotFound):
    """No message with this id for this account: 404, or ESME_RINVMSGID for query_sm."""

    smpp_status = SmppStatus.ESME_RINVMSGID


class UnknownAccount(NotFound):
    """No account with this id or name."""

    smpp_status = SmppStatus.ESME_RBINDFAIL


class Conflict(StoreError):
    """The record would replace one that exists: 409. Nothing was written."""

    http_status = 409


class AccountExists(Conflict):
    """An account with this name exists already."""


class CredentialExists(Conflict):
    """An API key id or SMPP system_id is taken already."""


class DuplicateMessageId(Conflict):
    """A message with this public id exists: the id generator repeated itself.

    This is herald's fault, not the customer's: generate a new id and retry.
    """

    http_status = 500


class InsufficientFunds(StoreError):
    """The account's balance and credit limit do not cover the messages' price.

    Nothing was written or charged. Answer 402 (HTTP) or ESME_RSUBMITFAIL
    (SMPP); the account must be topped up (``herald balance top-up``).
    """

    http_status = 402
    smpp_status = SmppStatus.ESME_RSUBMITFAIL


class IdempotencyMismatch(StoreError):
    """The Idempotency-Key was used before with a different request body.

    Answer 422 naming the header; nothing was written.
    """

    http_status = 422


class QuotaExceeded(StoreError):
    """Accepting the messages would take the account over its daily quota.

    Nothing was written and nothing counted. ``limit`` is the quota, ``used``
    what that UTC day had accepted before, ``wanted`` what this accept asked
    for (messages or segments, as the quota counts). Answer 429 with
    Retry-After until the next UTC midnight (HTTP), or ESME_RSUBMITFAIL
    (SMPP): not ESME_RTHROTTLED, which asks the client to retry within
    seconds, and it would be refused until midnight.
    """

    http_status = 429
    smpp_status = SmppStatus.ESME_RSUBMITFAIL

    def __init__(self, limit: int, used: int, wanted: int) -> None:
        super().__init__(
            f"the daily quota of {limit} is used up ({used} used, {wanted} more asked)"
        )
        self.limit = limit
        self.used = used
        self.wanted = wanted


# -- our own misuse ------------------------------------------------------------------


class InvalidRecord(StoreError, ValueError):
    """A record handed to the store breaks one of its limits (see ``field``).

    The API and SMPP layers validate customer input before it reaches the
    store, so this is a bug in the caller: answer 500 / ESME_RSYSERR and log it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class SchemaError(StoreError):
    """The data directory's schema is newer than this herald, or is not herald's.

    Raised at open; nothing was changed. Upgrade herald or point it at
    another ``--data-dir``.
    """
