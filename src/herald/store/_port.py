"""The store port: what the platform needs from a database.

Three small protocols, joined into :class:`Store`. Any implementation (SQLite
today, PostgreSQL later) passes the contract suite in ``tests/store``.

The guarantees every implementation gives:

- **Durable before acknowledged.** A write's coroutine returns only after the
  write is committed. ``accept`` returning means the messages survive a crash
  of the process.
- **Monotonic status.** A status never moves to a smaller :class:`Status`, and a
  final status is never replaced, whatever order updates arrive in. The store
  enforces this itself; callers may send updates in any order.
- **Segments decide.** A message is ``sent`` when all its segments are recorded
  upstream and ``delivered`` when all are delivered; the first segment that
  ends otherwise (undelivered, expired, rejected) ends the message.
- **Receipts are never lost.** A receipt for an upstream id no segment carries
  yet is parked and applied when the segment is recorded.
- **Events are transactional.** Outbox events are written in the same commit as
  the status change or inbound message they report.
- **The store is the queue.** ``claim`` hands each ready message to one caller
  under a lease; an expired lease makes it claimable again.
- **Charges are atomic.** A charged accept takes its price from the balance
  in the transaction that stores the messages, or stores nothing; a refund
  is given once, with the final status that earns it.

Every method may raise :class:`StoreBusy` or :class:`StoreUnavailable` (retry
later; nothing was written) and :class:`StoreClosed`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from decimal import Decimal
from typing import Protocol, runtime_checkable

from herald.store._billing import (
    Balance,
    Cdr,
    Charge,
    MarginRow,
    PriceSide,
    RefundPolicy,
    StoredPriceList,
)
from herald.store._model import (
    Account,
    AccountControls,
    ApiKeyRecord,
    Backlog,
    ChangeResult,
    Channel,
    CheckResult,
    DailyQuota,
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
    ReceiptCheck,
    ReceiptUpdate,
    Replacement,
    Reschedule,
    Segment,
    SegmentRecord,
    SmppCredentialRecord,
    Status,
    StatusUpdate,
)
from herald.store._model_admin import (
    AdminKeyRecord,
    AuditEntry,
    AuditFilter,
    OverviewMinute,
    RecentFilter,
)
from herald.store._model_attempts import Attempt, SubmitFailure, WebhookAnswer
from herald.store._model_chat import (
    ChainChange,
    ChatChain,
    ChatTemplate,
    DueChainTimer,
    LegSubmission,
    NewChain,
    ParkedChatEvent,
    SmsLegStatus,
)
from herald.store._model_fraud import (
    FraudAction,
    FraudDecision,
    FraudOutcome,
    FraudSettings,
    FraudTail,
)
from herald.store._model_limits import TokenGrant
from herald.store._model_routing import (
    ConnectorState,
    DeliveryCounts,
    FinalPart,
    MessageRoute,
    RouteRecord,
    StoredRoutes,
)
from herald.store._model_verify import Verification, VerificationSend
from herald.store._retention import (
    PURGE_BATCH,
    CdrPurge,
    MessagePurge,
    RecordPurge,
    Retained,
    TextErasure,
)

__all__ = [
    "AccountStore", "AdminStore", "AttemptStore", "BillingStore", "ControlStore",
    "MessageStore", "NumberTableStore", "OutboxStore", "RetentionStore", "RoutingStore", "Store",
    "VerifyStore",
]


class AccountStore(Protocol):
    """Accounts and their credentials (hashes only; see :mod:`herald.accounts`)."""

    async def create_account(
        self,
        name: str,
        now: float,
        *,
        rate_limit: float,
        bind_limit: int,
        callback_url: str | None = None,
    ) -> Account:
        """Create an account. Raises :class:`AccountExists` if the name is taken."""
        ...

    async def update_account(self, account: Account) -> None:
        """Write an account's settings (all fields but ``id``, ``name``, ``created_at``).

        Raises :class:`UnknownAccount`.
        """
        ...

    async def get_account(self, account_id: int) -> Account:
        """Raises :class:`UnknownAccount`."""
        ...

    async def get_account_by_name(self, name: str) -> Account:
        """Raises :class:`UnknownAccount`."""
        ...

    async def list_accounts(self) -> tuple[Account, ...]:
        """Every account, oldest first."""
        ...

    async def add_api_key(self, account_id: int, key_id: str, key_hash: str, now: float) -> None:
        """Store a key's hash. Raises :class:`CredentialExists`, :class:`UnknownAccount`."""
        ...

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """The key with this id (revoked or not), or ``None``."""
        ...

    async def list_api_keys(self, account_id: int) -> tuple[ApiKeyRecord, ...]:
        ...

    async def revoke_api_key(self, key_id: str, now: float) -> bool:
        """Revoke a key; ``False`` if no such key or revoked already."""
        ...

    async def add_smpp_credential(
        self, account_id: int, system_id: str, password_hash: str, now: float
    ) -> None:
        """Raises :class:`CredentialExists` (system_id taken), :class:`UnknownAccount`."""
        ...

    async def get_smpp_credential(self, system_id: str) -> SmppCredentialRecord | None:
        ...

    async def list_smpp_credentials(self, account_id: int) -> tuple[SmppCredentialRecord, ...]:
        ...

    async def remove_smpp_credential(self, system_id: str) -> bool:
        """``False`` if there was no such credential."""
        ...


class MessageStore(Protocol):
    """Messages, their segments and receipts, inbound messages, idempotency keys."""

    async def accept(
        self,
        messages: Sequence[NewMessage],
        *,
        idempotency: IdempotencyRecord | None = None,
        quota: DailyQuota | None = None,
        charges: Sequence[Charge] | None = None,
    ) -> IdempotencyRecord | None:
        """Store ``messages`` (all or none) with status ``accepted``; return after commit.

        With ``quota`` (the messages are all of its account): in the same
        transaction, what the account accepted on ``quota.day`` grows by what
        ``messages`` weigh, or, if that would pass ``quota.limit``, nothing is
        stored and :class:`QuotaExceeded` is raised. Concurrent accepts (other
        processes and nodes included) never pass the limit together. A replay
        (``idempotency``) counts nothing.

        With ``charges`` (one per message): each message's CDR is written and
        its price taken from its account's balance in the same transaction,
        all or none; if the balance less the charges would fall below
        ``-credit_limit`` (or the account has no balance), nothing is stored
        and :class:`InsufficientFunds` is raised. Concurrent accepts never
        overdraw. A replay charges nothing.

        With ``idempotency``: if an unexpired record with the same account and
        key exists, nothing is stored and that earlier record is returned
        (replay its answer) — unless its ``request_hash`` differs, which raises
        :class:`IdempotencyMismatch`. Otherwise the record is stored with the
        messages, in the same commit, and ``None`` is returned.
        Raises :class:`DuplicateMessageId` (generate new ids and retry).
        """
        ...

    async def get_message(self, message_id: str, *, account_id: int | None = None) -> Message:
        """Raises :class:`MessageNotFound` (also when it belongs to another account)."""
        ...

    async def get_messages(self, message_ids: Sequence[str]) -> dict[str, Message]:
        """The stored messages among ``message_ids``, by id, in one read.

        Ids with no message (never stored, purged, not an id) are absent from
        the result. For callers that hold many ids at once (the SMPP notifier's
        receipts): one round trip instead of one :meth:`get_message` each.
        """
        ...

    async def list_messages(self, query: MessageFilter, cursor: str | None = None) -> MessagePage:
        """Newest first. Raises :class:`InvalidRecord` for a cursor not from this store."""
        ...

    async def get_segments(self, message_id: str) -> tuple[Segment, ...]:
        """The recorded segments, by index (empty if none or no such message)."""
        ...

    async def get_idempotency(
        self, account_id: int, key: str, now: float
    ) -> IdempotencyRecord | None:
        """The unexpired record for this key, if any (a read-only early check)."""
        ...

    async def claim(
        self, limit: int, now: float, lease: float, *, class_limits: Sequence[int] | None = None
    ) -> tuple[Message, ...]:
        """Hand out up to ``limit`` ready messages: by priority class, fairly by account.

        Ready: ``accepted`` or ``queued``, not a test message, ``send_at``
        (or the last reschedule time) reached, and no unexpired lease.
        Claimed messages become ``queued`` and leased until ``now + lease``;
        their ``attempt`` is incremented (pass it to :meth:`reschedule_many`).
        A ready message whose ``expires_at`` has passed is not handed out: the
        store marks it ``expired`` instead.

        Order: every ready message of a class (:class:`Priority`, smallest
        first) before any of the next. Within a class the accounts that have
        messages ready take turns (deficit round robin over their messages'
        segments: equal shares of parts, not of messages), oldest due first
        within an account, the turn and an account's unused credit carrying
        over from one claim to the next, so one account's backlog never
        starves another's. ``class_limits``, one per class: a message
        of class ``c`` is handed out only while the messages of classes up to
        ``c`` handed out by this call number fewer than ``class_limits[c]``
        (a message waits behind its own and the more urgent classes only, so a
        dispatcher with room for urgent messages only asks for those).
        """
        ...

    async def reschedule_many(self, items: Sequence[Reschedule]) -> None:
        """Give claimed messages back, each claimable again from its ``ready_at``.

        For throttling backoff (ESME_RTHROTTLED, ESME_RMSGQFUL) and for releasing
        work at shutdown (``ready_at = now``). A row is a no-op unless its
        ``attempt`` is the current one and the message is still
        ``accepted``/``queued``: a caller whose lease expired cannot release
        someone else's claim.

        Dispatch also uses it to *extend* the leases of messages it still
        holds (``ready_at = now + lease``): the same rule applies, so a lease
        extension never revives a message that was sent, ended or re-claimed.
        A row ends the claim only with ``release`` (a hand-back; see
        :meth:`cancel`); without it the message stays held until ``ready_at``.
        """
        ...

    async def set_segments(self, message_id: str, attempt: int, segments: int) -> bool:
        """Change how many segments a claimed message needs (a connector re-split it).

        Applies only to the current claim (``attempt``) of a message not yet
        ``sent``; segments recorded at an index ``>= segments`` (an earlier
        split's) are forgotten so that they cannot count towards ``sent`` or
        ``delivered``. Returns whether it applied. Raises :class:`InvalidRecord`
        unless ``1 <= segments <= MAX_SEGMENTS``.
        """
        ...

    async def update_statuses(self, updates: Sequence[StatusUpdate]) -> None:
        """Move messages forward, each to its ``status`` (``queued``, ``sent`` or
        final): the lifecycle's steps (``store/lifecycle.py``) in one write.

        A row is a no-op if its message is at or past ``status`` or already final
        (so callers never need to read first). ``error_code`` and ``permanent``
        are kept with a final status. Raises :class:`InvalidRecord` for ``accepted``.
        """
        ...

    def record_segments(self, segments: Sequence[SegmentRecord]) -> Awaitable[None]:
        """Record segments accepted upstream (``index`` 0-based), in one write.

        Applies any receipt parked for ``(connector, upstream_key)``. Recording
        the same index again (a resend after a crash) replaces the upstream ids
        and ``check_at``, starts its checks over, and keeps the segment's status.
        ``check_at``: when the segment's receipt is overdue if none came
        (:meth:`due_receipt_checks`); ``None``, never.

        A store may queue the write at the call rather than when it is awaited
        (SQLite's does, raising :class:`InvalidRecord` at once): then what one
        loop turn queues commits together, segment records before receipts,
        without a task per write (dispatch answers upstreams from these
        completions).
        """
        ...

    def apply_receipts(self, receipts: Sequence[ReceiptUpdate]) -> Awaitable[None]:
        """Apply final receipts to the segments with these normalised upstream ids.

        If no segment carries one yet (the receipt beat the submit_sm_resp), the
        receipt is parked and applied by :meth:`record_segments`. Non-final
        statuses (ENROUTE, ACCEPTD) change nothing and are not parked. Queued
        as :meth:`record_segments` says.
        """
        ...

    async def expire_unsent(self, now: float, limit: int) -> int:
        """Mark ``expired`` up to ``limit`` unclaimed messages whose validity ended.

        ``claim`` expires the messages it comes across; this finds the others
        (nobody claims while every upstream is down). Messages under a live
        lease and test messages are left alone. Returns how many were expired.
        """
        ...

    async def expire_sent(self, cutoff: float, now: float, limit: int) -> int:
        """Mark ``expired`` up to ``limit`` ``sent`` messages whose ``expires_at`` <= ``cutoff``.

        For messages whose receipt never came; dispatch calls it with
        ``cutoff = now - grace``. Returns how many were expired.
        """
        ...

    async def due_receipt_checks(
        self, now: float, limit: int, *, exclude: Collection[str] = ()
    ) -> tuple[ReceiptCheck, ...]:
        """Up to ``limit`` segments whose receipt is overdue, the longest overdue first.

        Overdue: no final status yet, and the ``check_at`` its record carried
        (or a later :meth:`settle_receipt_checks` set) is at most ``now``.
        Segments of a message that is not ``sent`` yet are left out (its parts
        may still be sent again); those of a message that is final already
        are included (they have nothing left to wait for). So are those of
        the connectors named in ``exclude``.
        """
        ...

    async def settle_receipt_checks(self, results: Sequence[CheckResult]) -> None:
        """Act on receipt checks, in one write.

        A result with a ``status`` ends the segment as a receipt with that
        status would: the message follows by the segment rules (delivered when
        every segment is, ended by the first that ends otherwise; a final
        message never moves). One with ``check_at`` sets the segment's next
        check and counts one more check. Either is a no-op for a segment that
        has a final status already (a receipt came meanwhile) or whose message
        is not ``sent`` yet.
        """
        ...

    async def cancel(self, message_id: str, now: float, *, account_id: int) -> ChangeResult:
        """Cancel the account's message if it has not gone out: it becomes ``cancelled``
        (final; its webhook and SMPP receipt events follow the usual rules).

        Cancellable: ``accepted`` or ``queued``, no segment recorded upstream,
        and no claim holds it (a claim's lease, until the holder hands it back
        or the lease lapses). A claim and a cancel never overlap: whichever
        the store takes first wins. Otherwise nothing changes and the outcome
        says why: ``IN_PROGRESS`` (claimed: dispatch may be submitting it; ask
        again later) or ``TOO_LATE`` (sent, final, or a part went upstream).
        Test messages can be cancelled too (they produce no events).
        Raises :class:`MessageNotFound` (also for another account's message).
        """
        ...

    async def cancel_matching(
        self, account_id: int, now: float, *, limit: int, to: str | None = None,
        sender: str | None = None, reference: str | None = None, tag: str | None = None,
    ) -> tuple[str, ...]:
        """Cancel up to ``limit`` of the account's messages that :meth:`cancel`
        would cancel and that match every filter given (``to``, ``sender``,
        ``reference``, ``tag``; SMPP cancel_sm without a message id, the API by
        reference), oldest first; returns their ids. Messages held by a claim
        or gone out stay as they are. Raises :class:`InvalidRecord` unless
        ``1 <= limit <= 10,000`` and ``to`` or ``reference`` is given."""
        ...

    async def replace(
        self, message_id: str, change: Replacement, now: float, *, account_id: int
    ) -> ChangeResult:
        """Apply ``change`` to the account's message under :meth:`cancel`'s rule
        (SMPP replace_sm): outcome ``APPLIED`` and the message as changed, or
        ``IN_PROGRESS`` / ``TOO_LATE`` and the message unchanged.

        A new ``send_at`` also decides when dispatch may claim it. Raises
        :class:`MessageNotFound`, and :class:`InvalidRecord` (field
        ``expires_at``) when the validity would end before the message may be
        sent (nothing is changed).
        """
        ...

    async def add_inbound(
        self, message: InboundMessage, *, opt_out: OptOutChange | None = None
    ) -> None:
        """Store an inbound message (and its events). Raises :class:`DuplicateMessageId`.

        With ``opt_out`` (the message was a STOP or START keyword), apply that
        change to the message's account's opt-out list in the same transaction.
        """
        ...

    async def get_inbound(self, inbound_id: str) -> InboundMessage:
        """Raises :class:`MessageNotFound`."""
        ...


class OutboxStore(Protocol):
    """The durable outbox of webhook and SMPP events, and housekeeping."""

    def watch_outbox(self, callback: Callable[[frozenset[Channel]], None]) -> None:
        """After each commit that wrote outbox events, call ``callback`` on the
        caller's event loop with the channels written to. Call from that loop."""
        ...

    def watch_finals(self, callback: Callable[[Mapping[Status, int]], None]) -> None:
        """After each commit that ended messages (test messages aside), call
        ``callback`` on the caller's event loop with the count per final status.
        Call from that loop."""
        ...

    async def claim_outbox(
        self,
        channel: Channel,
        now: float,
        lease: float,
        limit: int,
        *,
        account_id: int | None = None,
    ) -> tuple[OutboxEvent, ...]:
        """Hand out up to ``limit`` due events, oldest due first, leased until ``now + lease``.

        Each claim counts as an attempt. ``account_id`` restricts to one account
        (SMPP receipts go only to accounts that have a receiver bound).
        """
        ...

    async def complete_outbox(
        self, event_ids: Sequence[int], *, answers: Mapping[int, WebhookAnswer] | None = None
    ) -> None:
        """The events were delivered: forget them.

        ``answers``: the successful answers of events among them that failed
        before (a webhook sender passes those of events claimed more than
        once), each recorded as the last of its message's webhook attempts
        (:meth:`AttemptStore.message_attempts`) in the same write.
        """
        ...

    async def retry_outbox(
        self, event_id: int, next_attempt_at: float | None, error: str, *,
        answer: WebhookAnswer | None = None,
    ) -> None:  # fmt: skip
        """Delivery failed: try again at ``next_attempt_at``, or never (``None``: give up).

        Events given up on are kept (with ``error``) until :meth:`purge`.
        ``answer``: how the attempt was answered, recorded (in the same write)
        among the message's webhook attempts if the event is a message's
        webhook and the message has fewer than ``MAX_ATTEMPTS_KEPT`` failed
        attempts recorded. Raises :class:`InvalidRecord` for an empty target
        or answer.
        """
        ...

    async def purge(self, now: float, *, parked_before: float, dead_before: float) -> int:
        """Delete what is no longer needed; returns the number of rows deleted
        or erased.

        That is: idempotency records expired at ``now``; receipts parked before
        ``parked_before`` (their segment never came); events given up on
        (``retry_outbox(..., None, ...)``) that were created before ``dead_before``;
        the text of every final message tagged :data:`VERIFY_TAG` (it
        holds a one-time code: the body becomes empty, the rest stays); and the
        codes the legs of final chains hold (an authentication template's
        ``code`` becomes ``""``; a prepared SMS tagged :data:`VERIFY_TAG` gets
        an empty body), one row per leg; and attempts
        (:class:`AttemptStore`) made before ``dead_before``.
        """
        ...


class AttemptStore(Protocol):
    """A message's submit and webhook attempts that did not succeed, for its
    timeline (``store/_model_attempts.py``). Webhook attempts are written by
    :meth:`OutboxStore.retry_outbox` and :meth:`OutboxStore.complete_outbox`."""

    def record_failed_submits(self, failures: Sequence[SubmitFailure]) -> Awaitable[None]:
        """Record submit_sm attempts that the upstream did not accept, numbered
        per part in order, at most ``MAX_ATTEMPTS_KEPT`` failed attempts per
        message (later ones are dropped). Queued as :meth:`MessageStore.record_segments`
        says. Raises :class:`InvalidRecord` (empty connector or answer, a
        negative part)."""
        ...

    async def message_attempts(self, message_id: str) -> tuple[Attempt, ...]:
        """The message's recorded attempts, oldest first (none for an unknown id)."""
        ...


class RetentionStore(Protocol):
    """Message retention (``[store] message_days``, ``cdr_days``): old rows
    deleted a bounded step at a time (see :mod:`herald.store._retention`).

    Call :meth:`BillingStore.margin` (any period) before a pass, so that the
    margin sums are up to date: a message they have not counted yet is kept.
    """

    async def purge_messages(
        self, before: float, *, after: int = 0, limit: int = PURGE_BATCH
    ) -> MessagePurge:
        """Delete, in one transaction, the messages among the ``limit`` (1..10,000)
        next ones after seq ``after`` that are final and ended before
        ``before``, with their segments, receipt checks, routes, conversions,
        attempts and given-up events. Never a message that is not final (queued, in flight,
        awaiting its receipt) nor one with an event still to deliver. Its CDR
        stays, with the message's final status. Resume with ``after=result.after``
        until it is ``None``. Raises :class:`InvalidRecord` for a bad ``limit``."""
        ...

    async def purge_cdrs(
        self, before: float, *, after: tuple[float, str] | None = None,
        limit: int = PURGE_BATCH,
    ) -> CdrPurge:
        """Delete, in one transaction, the CDRs among the ``limit`` (1..10,000)
        oldest accepted before ``before`` (after ``after``'s ``(accepted_at,
        message_id)``) whose message is gone or final, taking them out of the
        margin sums; balances do not move. Resume with ``after=result.after``
        until it is ``None``. Raises :class:`InvalidRecord` for a bad ``limit``."""
        ...


    async def purge_records(
        self, kind: Retained, before: float, *, after: tuple[float, str] | None = None,
        limit: int = PURGE_BATCH,
    ) -> RecordPurge:
        """Delete, in one transaction, of the ``limit`` (1..10,000) next rows of
        ``kind`` after ``after``, those that ended before ``before``
        (:class:`Retained` says what that is for each kind), with their legs or
        sends and their given-up events. Never one still live: a chain not
        final or with a timer set, an inbound message or a decision whose
        event is still to deliver. Resume with ``after=result.after`` until it
        is ``None``. Raises :class:`InvalidRecord` for a bad ``limit``."""
        ...

    async def erase_texts(self, before: float, *, limit: int = PURGE_BATCH) -> TextErasure:
        """Empty, in one transaction, the body of messages final and ended before
        ``before`` (``[store] text_days``): of up to ``limit`` (1..10,000) messages
        read earlier while not final or ended later, and of up to ``limit`` not
        read yet, oldest first. The row stays. Call again while ``result.more``.
        Raises :class:`InvalidRecord` for a bad ``limit``."""
        ...


class NumberTableStore(Protocol):
    """The operator's number tables (numbering plan, ported numbers), each
    replaced whole, and one generation counter that every change increases:
    what running processes read every few seconds to notice a new table."""

    async def put_number_table(self, table: NumberTable) -> int:
        """Store ``table`` in place of the one of its kind; returns the new generation."""
        ...

    async def remove_number_table(self, kind: NumberTableKind) -> int:
        """Remove the table of ``kind``; returns the generation (a new one if
        there was a table to remove)."""
        ...

    async def get_number_table(self, kind: NumberTableKind) -> NumberTable | None:
        """The table of ``kind`` with the generation that wrote it, or ``None``."""
        ...

    async def number_tables_generation(self) -> int:
        """The generation of the last change to the tables (0: none yet). Cheap."""
        ...


class AdminStore(Protocol):
    """Admin keys (hashes only; see :mod:`herald.admin`) and the audit log of changes."""

    async def add_admin_key(self, record: AdminKeyRecord) -> None:
        """Store a new admin key. Raises :class:`CredentialExists` when its id, or
        its name among the keys not revoked, is taken."""
        ...

    async def get_admin_key(self, key_id: str) -> AdminKeyRecord | None:
        """The key with this id (revoked or not), or ``None``."""
        ...

    async def list_admin_keys(self) -> tuple[AdminKeyRecord, ...]:
        """Every admin key, revoked ones too, oldest first."""
        ...

    async def revoke_admin_key(self, key_id: str, now: float) -> bool:
        """Revoke a key; ``False`` if no such key or revoked already."""
        ...

    async def record_audit(self, entry: AuditEntry) -> int:
        """Append ``entry`` (its ``seq`` is ignored); returns the ``seq`` it got,
        larger than every earlier one."""
        ...

    async def recent_messages(self, query: RecentFilter) -> tuple[Message, ...]:
        """The messages ``query`` matches among the store's newest ``query.window``,
        newest first. Reads at most ``window`` messages however few match (an
        index range), so an operator's search by status or time stays fast with
        millions stored; an older message is found by its id, number or reference."""
        ...

    async def list_audit(self, query: AuditFilter) -> tuple[AuditEntry, ...]:
        """Up to ``query.limit`` entries matching ``query``, newest (largest ``seq``) first."""
        ...

    async def last_audit_seq(self) -> int:
        """The ``seq`` of the newest entry (0: none). Cheap: processes poll it to
        notice changes made elsewhere."""
        ...

    async def record_overview_minute(self, minute: OverviewMinute, keep: float) -> None:
        """Keep a point of the console overview's day chart (one a minute while it is
        read; one per ``at``: a later one replaces it) and forget those older than
        ``keep`` seconds before it."""
        ...

    async def overview_minutes(self, since: float) -> tuple[OverviewMinute, ...]:
        """The points kept from ``since`` on (their ``at``), oldest first."""
        ...


class ControlStore(Protocol):
    """Account controls, daily quota counts and opt-out lists (``docs/accounts.md``)."""

    async def get_controls(self, account_id: int) -> AccountControls:
        """The account's controls (:data:`NO_CONTROLS` if never set).
        Raises :class:`UnknownAccount`."""
        ...

    async def set_controls(self, account_id: int, controls: AccountControls) -> None:
        """Replace the account's controls. Raises :class:`UnknownAccount`."""
        ...

    async def daily_usage(self, account_id: int, day: int) -> int:
        """What the account's accepts counted against its quota on ``day``."""
        ...

    async def change_opt_outs(self, account_id: int, changes: Sequence[OptOutChange]) -> int:
        """Apply ``changes`` in order (the last of a number wins), in one transaction;
        how many entries changed state. Raises :class:`UnknownAccount`."""
        ...

    async def list_opt_outs(
        self, account_id: int, *, after: str | None = None, limit: int | None = None
    ) -> tuple[OptOutEntry, ...]:
        """The account's opted-out numbers (not those opted back in), by number:
        those greater than ``after``, at most ``limit`` (every one without)."""
        ...

    async def opt_out_changes(self, after: int, limit: int) -> tuple[OptOutEntry, ...]:
        """Entries of every account whose last change has ``seq > after``, by seq,
        at most ``limit``: how a process keeps its copy of the lists current."""
        ...


class RoutingStore(Protocol):
    """Routing rules, connector states and delivery health (``herald.routes``).

    The rules (with their buy prices) and the connector states share one
    generation counter that every change to either increases: what running
    processes read every few seconds to notice a change.
    """

    async def put_routes(self, routes: StoredRoutes) -> int:
        """Store ``routes`` in place of those in force; returns the new generation."""
        ...

    async def get_routes(self) -> StoredRoutes | None:
        """The routes in force with the generation that wrote them, or ``None``."""
        ...

    async def remove_routes(self) -> int:
        """Remove the routes (the ``[[routes]]`` of herald.toml decide alone);
        returns the generation (a new one if there were routes)."""
        ...

    async def set_connector_state(self, state: ConnectorState) -> int:
        """Record an operator's word on a connector; returns the new generation."""
        ...

    async def connector_states(self) -> tuple[ConnectorState, ...]:
        """Every connector state recorded, by connector name."""
        ...

    async def routing_generation(self) -> int:
        """The generation of the last change to routes or connector states. Cheap."""
        ...

    async def delivery_counts(
        self, connectors: Collection[str], since: float, limit: int
    ) -> dict[str, DeliveryCounts]:
        """For each of ``connectors``: its newest ``limit`` (at most) segments
        that reached a final status at or after ``since``, and how many of
        them were delivered. Read-only; an index range per connector, so the
        cost is bounded by ``limit``, not by the traffic. Connectors with no
        such segment have counts of 0."""
        ...

    async def recent_finals(
        self, connectors: Collection[str], since: float, limit: int
    ) -> list[FinalPart]:
        """For each of ``connectors``: its newest ``limit`` (at most) segments that
        reached a final status at or after ``since`` (the segments of
        :meth:`delivery_counts`), with their message's number and sent time, for
        delivery rates and receipt latency by connector and by country. Read-only;
        bounded by ``limit`` per connector, not by the traffic."""
        ...

    async def record_routes(self, records: Sequence[RouteRecord]) -> None:
        """Remember the rule that routed each message (the last one wins)."""
        ...

    async def get_message_routes(self, message_ids: Sequence[str]) -> dict[str, MessageRoute]:
        """How each of the stored messages among ``message_ids`` went, in one
        read (absent: no such message)."""
        ...


class BillingStore(Protocol):
    """Price lists (each replaced whole, a generation counter as for number
    tables), balances and CDRs. Charges are written by ``accept``; the sent
    and final statuses complete a CDR (connector, buy price, refund)."""

    async def put_price_list(self, prices: StoredPriceList) -> int:
        """Store ``prices`` in place of the list of its side and owner; returns
        the new generation. A sell list gives its account a balance (0) if it
        had none. Raises :class:`UnknownAccount` (sell list of no account)."""
        ...

    async def remove_price_list(self, side: PriceSide, owner: str) -> int:
        """Remove a list (its account is no longer charged); returns the generation."""
        ...

    async def price_lists(self, side: PriceSide) -> tuple[StoredPriceList, ...]:
        """Every list of ``side``, by owner, entries most specific first."""
        ...

    async def price_lists_generation(self) -> int:
        """The generation of the last change to any price list (0: none yet). Cheap."""
        ...

    async def get_balance(self, account_id: int) -> Balance | None:
        """The account's balance, or ``None`` if it has none (never billed)."""
        ...

    async def adjust_balance(
        self,
        account_id: int,
        *,
        add: int = 0,
        credit_limit: int | None = None,
        refund_policy: RefundPolicy | None = None,
    ) -> Balance:
        """Add ``add`` micro-units (a top-up; negative takes away) and set what
        is given, atomically with concurrent charges; the balance after.
        Creates the balance (0) if the account had none. Raises
        :class:`UnknownAccount` and :class:`InvalidRecord` (out of range)."""
        ...

    async def list_cdrs(
        self,
        since: float,
        until: float,
        *,
        account_id: int | None = None,
        after: tuple[float, str] | None = None,
        limit: int = 1000,
    ) -> tuple[Cdr, ...]:
        """CDRs of messages accepted in ``[since, until)``, oldest first, at most
        ``limit`` (1..10,000); the next page starts ``after`` the last one's
        ``(accepted_at, message_id)``."""
        ...

    async def margin(
        self, since: float, until: float, by: str, *, account_id: int | None = None
    ) -> tuple[MarginRow, ...]:
        """Revenue, cost and margin of the CDRs of ``[since, until)`` grouped
        ``by`` ``account`` (its id), ``connector`` or ``country`` (calling code).
        Raises :class:`InvalidRecord` for another ``by``."""
        ...


class VerifyStore(Protocol):
    """Verifications (docs/verify.md) and conversion feedback on messages."""

    async def start_verification(
        self, verification: Verification, message_id: str, *, window: float, limit: int
    ) -> None:
        """Store a new verification and its first send (``message_id``, at
        ``created_at``). Raises :class:`SendLimitExceeded` when its account
        sent ``limit`` verification SMS to the number in the last ``window``
        seconds, :class:`Conflict` for an id that exists; nothing written."""
        ...

    async def resend_verification(
        self, verification_id: str, account_id: int, *, salt: bytes, code_hash: bytes,
        expires_at: float, message_id: str, now: float, window: float, limit: int,
    ) -> Verification:
        """Replace a pending verification's code and expiry and record the send
        (attempt ``sends + 1``); the verification as it is now. Raises
        :class:`NotFound`, :class:`Conflict` (not pending at ``now``),
        :class:`SendLimitExceeded`; nothing written."""
        ...

    async def undo_verification_send(
        self, verification_id: str, attempt: int, restore: Verification | None
    ) -> None:
        """Take back a send whose message was not accepted: remove the send
        ``attempt``, and the verification (``restore`` ``None``) or put back
        ``restore``'s code, expiry and send count."""
        ...

    async def get_verification(self, verification_id: str, account_id: int) -> Verification:
        """The account's verification; :class:`NotFound` for another's or none."""
        ...

    async def cancel_verification(self, verification_id: str, account_id: int,
                                  now: float) -> Verification:
        """Cancel a verification pending at ``now`` (its code stops working); the
        verification as it is now. :class:`NotFound`, :class:`Conflict` (not pending)."""
        ...

    async def verification_sends(
        self, verification_id: str, account_id: int
    ) -> tuple[VerificationSend, ...]:
        """The verification's sends, first first (none for another account's)."""
        ...

    async def record_check(
        self, verification_id: str, account_id: int, *, sends: int, matched: bool,
        now: float, max_checks: int,
    ) -> Verification:
        """Count one check of the code sent by attempt ``sends``: approved if
        ``matched``; expired (not counted) at or past ``expires_at``. Not counted
        either when the verification is not pending, has ``max_checks`` checks,
        or a resend made ``sends`` stale (the caller hashes again). Returns the
        verification as it is now; :class:`NotFound`."""
        ...

    async def record_conversion(self, message_id: str, account_id: int, at: float) -> float:
        """Record that the message's code was entered at ``at``; the time kept
        (the first one recorded). :class:`MessageNotFound` for another
        account's message or none."""
        ...

    async def get_conversion(self, message_id: str, account_id: int) -> float | None:
        """When the message converted (:meth:`record_conversion`), or ``None``."""
        ...


@runtime_checkable
class TokenLedger(Protocol):
    """Token buckets every node shares, keyed by ``(scope, key)`` (docs/scale-out.md,
    "Limits across nodes"). Not part of :class:`Store`: the PostgreSQL store has
    them; on SQLite (one process) the callers keep their buckets in memory.

    A bucket starts full (``capacity``), refills at ``rate`` per second of the
    callers' ``now`` (epoch seconds; a clock behind the last caller's refills
    nothing), and may go into debt for a take larger than ``capacity``."""

    async def take_tokens(self, scope: str, key: str, rate: float, capacity: float,
                          need: float, want: float, now: float) -> TokenGrant:  # fmt: skip
        """Grant between ``need`` and ``want`` tokens (as many as the bucket holds)
        if it holds at least ``min(need, capacity)``, else none. One statement."""
        ...

    async def settle_tokens(self, scope: str, key: str, give: float,
                            failed_at: float | None = None) -> None:  # fmt: skip
        """Give back ``give`` tokens (not above the capacity) and, with
        ``failed_at``, note a failure of the key then. No bucket: nothing."""
        ...

    async def forget_tokens(self, before: float) -> int:
        """Drop the buckets full again and with no failure since ``before`` (an
        absent bucket is a full one); how many."""
        ...


class FraudStore(Protocol):
    """The live pumping defence (docs/fraud.md, "Live") and Verify texts."""

    async def get_fraud_settings(self, account_id: int) -> FraudSettings:
        """The account's settings (:data:`NO_FRAUD_SETTINGS` if never set);
        :class:`UnknownAccount`."""
        ...

    async def set_fraud_settings(self, account_id: int, settings: FraudSettings) -> None:
        """Replace the account's settings. Raises :class:`UnknownAccount`."""
        ...

    async def record_fraud_decision(self, decision: FraudDecision) -> None:
        """Store a decision; a ``block`` also writes its webhook event (kind
        :attr:`EventKind.FRAUD`, to the account's callback URL if it has one)
        in the same transaction. :class:`Conflict` for an id that exists."""
        ...

    async def record_within_ceiling(self, decision: FraudDecision, ceiling_micros: Decimal,
                                    since: float) -> int | None:  # fmt: skip
        """Store ``decision`` (one that lets an SMS to ``decision.country`` through) as
        :meth:`record_fraud_decision` does, unless :meth:`fraud_spend` of its account
        and country since ``since`` plus its price would pass ``ceiling_micros``:
        then store nothing and return that spend. Atomic across connections and
        nodes: two calls never both take the last of a ceiling."""
        ...

    async def get_fraud_decision(self, decision_id: str, account_id: int) -> FraudDecision:
        """The account's decision; :class:`NotFound` for another's or none."""
        ...

    async def get_fraud_decisions(self, ids: Collection[str]) -> dict[str, FraudDecision]:
        """The decisions of ``ids`` that exist, by id (any account: webhooks)."""
        ...

    async def list_fraud_decisions(
        self, account_id: int, *, since: float | None = None, until: float | None = None,
        action: FraudAction | None = None, verification_id: str | None = None,
        limit: int = 100,
    ) -> tuple[FraudDecision, ...]:  # fmt: skip
        """The account's decisions in ``[since, until)``, newest first, at most ``limit``."""
        ...

    async def fraud_spend(self, account_id: int, country: str, since: float) -> int:
        """Micro-units of money the account's SMS to ``country`` that the defence
        let through (allowed or would_block) since ``since`` cost."""
        ...

    async def fraud_history(self, since: float) -> tuple[FraudDecision, ...]:
        """Every account's engine decisions since ``since``, oldest first (a rebuild)."""
        ...

    async def fraud_outcomes(self, message_ids: Collection[str]) -> tuple[FraudOutcome, ...]:
        """The status (when final) and conversion of each of the messages that exists."""
        ...

    async def fraud_tail(self, cursor: tuple[int, int] | None) -> FraudTail:
        """The engine decisions and conversions committed since ``cursor`` (by any
        process or node), each once, with the next cursor; ``None``: none, only
        the cursor of now (take it before reading :meth:`fraud_history`)."""
        ...

    async def verify_templates(self, account_id: int) -> dict[str, str]:
        """The account's own Verify texts by locale."""
        ...

    async def set_verify_template(self, account_id: int, locale: str, text: str | None) -> None:
        """Set (``None``: remove) the account's text for ``locale``; :class:`UnknownAccount`."""
        ...


class ChatStore(Protocol):
    """The chat channels' customer-service windows (docs/channels.md)."""

    async def record_chat_inbound(self, account_id: int, channel: str, sender: str, user: str,
                                  at: float) -> None:
        """``user`` wrote to the account's ``sender`` on ``channel`` at ``at``: the
        window's start moves to ``at`` unless a later message is already recorded.
        Raises :class:`UnknownAccount`."""
        ...

    async def chat_window_opened(self, account_id: int, channel: str, sender: str,
                                 user: str) -> float | None:
        """When ``user`` last wrote to the account's ``sender`` on ``channel``
        (None: never)."""
        ...

    # -- chains (herald.store._model_chat; docs/channels.md, "Chains") ----------------

    async def accept_chain(self, chain: NewChain, *,
                           idempotency: IdempotencyRecord | None = None,
                           quota: DailyQuota | None = None) -> IdempotencyRecord | None:
        """Store a chain and its legs, its first leg started (``pending``; an SMS
        first leg's message stored and charged), all or nothing; idempotency and
        ``quota`` as :meth:`MessageStore.accept` (a chain weighs one message, or
        its SMS's parts for a quota that counts parts). Raises
        :class:`DuplicateMessageId`, :class:`InsufficientFunds`,
        :class:`IdempotencyMismatch`, :class:`QuotaExceeded`."""
        ...

    async def get_chain(self, chain_id: str, *, account_id: int | None = None) -> ChatChain:
        """Raises :class:`MessageNotFound` (also when it belongs to another account)."""
        ...

    async def list_chains(self, query: MessageFilter,
                          cursor: str | None = None) -> tuple[tuple[ChatChain, ...], str | None]:
        """The account's chains, newest first, filtered as :meth:`list_messages`
        filters messages (``since``/``until`` on the chain's creation), and the
        cursor of the next page (None: the last). Raises :class:`InvalidRecord`
        (field ``cursor``) for a cursor that is not one of the account's chains."""
        ...

    async def get_chains(self, chain_ids: Sequence[str]) -> dict[str, ChatChain]:
        """The stored chains among ``chain_ids`` (at most 10,000), by id."""
        ...

    async def chains_to_cancel(self, account_id: int, reference: str, *,
                               limit: int) -> tuple[str, ...]:
        """The ids of up to ``limit`` of the account's chains sent with
        ``reference`` that are neither final nor cancelled yet, oldest first
        (``DELETE /v1/messages?reference=``). Raises :class:`InvalidRecord`
        unless ``1 <= limit <= 10,000``."""
        ...

    async def chain_leg_sms(self, chain_id: str, leg: int) -> NewMessage | None:
        """The SMS an SMS leg of the chain sends when it starts, as intake stored it
        (None: no such chain or leg, or not an SMS leg)."""
        ...

    async def chain_leg_content(self, chain_id: str, leg: int) -> str | None:
        """What a chat leg of the chain sends, as intake stored it (``content``
        of :class:`NewChatLeg`; an authentication template's code erased by
        :meth:`purge` once the chain is final). None: no such chain or leg, or
        an SMS leg."""
        ...

    async def chain_of_provider_id(self, channel: str,
                                   provider_id: str) -> tuple[str, int] | None:
        """The chain and leg whose provider id on ``channel`` this is, or None."""
        ...

    async def change_chain(self, change: ChainChange) -> bool:
        """Apply ``change`` if the chain is still at ``change.version`` (then its
        version grows by one) and return True; else change nothing and return
        False (the caller reads the chain again and decides again).

        A leg priced for the first time is charged its price from the account's
        balance (if it has one) in the same transaction; a leg priced already
        keeps its price. Starting an SMS leg stores its message (claimable at
        once) and charges it (:class:`InsufficientFunds`: nothing is changed).
        ``notify`` writes one webhook event (kind :attr:`EventKind.CHAIN`) to the
        chain's or account's callback URL, if there is one."""
        ...

    async def claim_chat_legs(self, now: float, lease: float,
                              limit: int) -> tuple[LegSubmission, ...]:
        """Chat legs to send to their provider: ``pending`` ones, and ``submitted``
        ones whose claim lapsed (``resumed``: the request may have gone out).
        Each becomes ``submitted``, leased until ``now + lease``."""
        ...

    async def claim_chain_timers(self, now: float, lease: float,
                                 limit: int) -> tuple[DueChainTimer, ...]:
        """Timers due at ``now`` and not under a live lease, leased until ``now +
        lease``, most overdue first. A timer stays until a change consumes it
        (:attr:`ChainChange.timer`): one whose claimer died is handed out again."""
        ...

    async def next_chain_timer(self) -> float | None:
        """The earliest due time of any timer (None: none)."""
        ...

    async def sms_leg_changes(self, limit: int) -> tuple[SmsLegStatus, ...]:
        """Started SMS legs whose message's status is past what the leg records
        (:attr:`LegUpdate.sms_status`), at most ``limit``."""
        ...

    async def park_chat_events(self, events: Sequence[ParkedChatEvent], now: float) -> None:
        """Keep provider statuses whose provider id no leg carries yet."""
        ...

    async def parked_chat_events(self, limit: int) -> tuple[ParkedChatEvent, ...]:
        """Parked statuses whose provider id a leg now carries, oldest first."""
        ...

    async def drop_parked_chat_events(self, ids: Sequence[int], *,
                                      received_before: float | None = None) -> int:
        """Forget parked statuses: those of ``ids``, and all received before
        ``received_before``; how many were forgotten."""
        ...

    # -- WhatsApp templates (docs/channels.md, "Templates") ----------------------------

    async def add_chat_template(self, template: ChatTemplate) -> None:
        """Store a template an account submitted. Raises :class:`Conflict` when
        its name and language are taken (by any account: they share the
        business account), :class:`UnknownAccount`."""
        ...

    async def get_chat_template(self, name: str, language: str) -> ChatTemplate | None:
        ...

    async def list_chat_templates(self, account_id: int | None = None
                                  ) -> tuple[ChatTemplate, ...]:  # fmt: skip
        """The account's templates (every account's with None), by name and language."""
        ...

    async def set_chat_template_status(self, name: str, language: str, status: str,
                                       at: float, *, provider_id: str | None = None,
                                       reason: str | None = None) -> bool:
        """Record the provider's word on a template at ``at``; older news than
        what is recorded changes nothing. Whether anything changed."""
        ...

    async def remove_chat_template(self, name: str, language: str) -> bool:
        """Forget a template (its submission failed, or it was deleted); whether
        there was one."""
        ...

    async def revise_chat_template(self, name: str, language: str, category: str, body: str,
                                   status: str, at: float) -> bool:
        """Record new content of a template (an edit the provider took) with the
        ``status`` it is in again (``pending``: reviewed again) at ``at``; the
        provider's reason is cleared. Older than what is recorded: nothing
        changes. Whether there was such a template to change."""
        ...


class Store(
    AccountStore, MessageStore, OutboxStore, AttemptStore, NumberTableStore, AdminStore,
    ControlStore, RoutingStore, BillingStore, VerifyStore, FraudStore, ChatStore, RetentionStore,
    Protocol,
):
    """Everything the platform stores. Close with :meth:`aclose`."""

    async def failed_deliveries(
        self, message_id: str, account_id: int, channel: Channel = Channel.WEBHOOK
    ) -> tuple[OutboxEvent, ...]:
        """The message's events on ``channel`` whose delivery failed at least once
        and that are still kept: being retried (``next_attempt_at`` set) or given
        up (``None``; kept until :meth:`purge`). Oldest first; ``subject`` unset.
        Delivered events are forgotten, so they are not among them. Another
        account's message has none."""
        ...

    async def backlog(self, now: float) -> Backlog:
        """How many messages and outbox events wait at ``now`` (see :class:`Backlog`).

        Counts, so the cost grows with the backlog (SQLite: index counts, about
        25 ms per million rows waiting, on a reader): callers cache the answer.
        """
        ...

    async def aclose(self) -> None:
        """Commit what is pending, then close. Later calls raise :class:`StoreClosed`."""
        ...
