"""A message's submit and webhook attempts, for its timeline (values; private).

Only attempts that did not succeed are written, and only by the paths that
handle a failure: a submit_sm answered with an error, a timeout or a lost
session (:meth:`~herald.store.Store.record_failed_submits`); a webhook POST
answered otherwise than 2xx, or not at all (``Store.retry_outbox`` with an
``answer``). The success path writes nothing new: a submit that succeeds is
the message's segment record, and a webhook delivered at its first attempt
leaves no trace (``Store.complete_outbox``). A webhook delivered after a
failure records its success too (``complete_outbox`` with ``answers``), so
that its timeline ends with the answer that ended it.

Nothing here ever names a subscriber's location or identity: a target is a
connector's name or a webhook endpoint's host (never its path, query or user
info, which may carry a customer's secrets); an answer is an SMPP
command_status name, an HTTP status or an error class.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from herald.store._model import Status

__all__ = [
    "MAX_ANSWER_LENGTH",
    "MAX_ATTEMPTS_KEPT",
    "MAX_TARGET_LENGTH",
    "Attempt",
    "AttemptKind",
    "SubmitFailure",
    "WebhookAnswer",
]

#: Failed attempts kept per message, both kinds together: the first ones (the
#: later failures of a message that keeps failing tell nothing new, and an
#: upstream throttling for an hour must not grow the table without bound). A
#: webhook's success after failures is kept beyond it: one per event at most.
MAX_ATTEMPTS_KEPT: Final = 32
#: Longest answer kept ("ESME_RINVOPTPARSTREAM", "HTTP 503", "timeout", ...).
MAX_ANSWER_LENGTH: Final = 64
#: Longest target kept: a connector name, or a host name (RFC 1035: 253) and a port.
MAX_TARGET_LENGTH: Final = 260


class AttemptKind(IntEnum):
    """What an attempt tried."""

    SUBMIT = 1  # a submit_sm of one part to an upstream connector
    WEBHOOK = 2  # a POST of one of the message's webhook (status) events


@dataclass(frozen=True, slots=True)
class SubmitFailure:
    """A submit_sm of part ``part`` (0-based) of a message that ``connector`` did
    not accept: ``answer`` is the command_status name (``ESME_RSYSERR``), or
    what happened instead (``timeout``, ``connection lost``)."""

    message_id: str
    part: int
    at: float
    connector: str
    answer: str


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """How one POST of a webhook event was answered: ``HTTP 500``, ``HTTP 200``,
    or the error class (``timeout``, ``unreachable``, ``blocked``). ``target``
    is the endpoint's host (``host:port`` for a port other than the scheme's)."""

    at: float
    target: str
    answer: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """One recorded attempt, as ``Store.message_attempts`` reads it.

    ``number``: a submit's, counted per part over the message's recorded
    attempts (1 for its first failure); a webhook's, its event's delivery
    attempt (the outbox's claim count). ``ok``: the attempt succeeded (only a
    webhook delivered after failures has one). ``part``: a submit's part index
    (``None`` for a webhook); ``reported``: the status a webhook event reported
    (``None`` for a submit).
    """

    kind: AttemptKind
    at: float
    number: int
    target: str
    answer: str
    ok: bool
    part: int | None
    reported: Status | None
