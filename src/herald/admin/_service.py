"""The admin service: every change an operator makes goes through here, and is recorded.

Theory of operation
-------------------
``herald accounts``, ``herald numbers import-*``, ``herald admin`` and the
admin API (``/v1/admin``) all call :class:`Admin`; none writes those
settings to the store itself. Each method checks its input (naming the
field of each problem: :class:`InvalidInput`), makes the change, then
appends one :class:`~herald.store.AuditEntry` (who: ``key:<name>`` for an
admin key, ``cli:<os user>`` for the shell; when; what: the action, its
target and the fields changed, a secret only as ``issued``/``reset``...).
The record follows the change's commit: a crash between the two (a window
of one commit) leaves the change unrecorded, never a record of a change
that did not happen.

Every entry is also told to :attr:`Admin.feed` (a :class:`ChangeFeed`),
whose listeners drop what this process cached about the target: a key
revoked or an account disabled here applies to the next request. Other
processes (the CLI's changes, another node's) are noticed by
:meth:`ChangeFeed.run` polling the log's last ``seq`` (see
:data:`CHANGE_POLL_INTERVAL`).

New kinds of change (routes, price lists, balances...) add a method that
makes the change and then calls :meth:`Admin.record`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import logging
import os
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from herald.accounts import (
    DEFAULT_BIND_LIMIT,
    DEFAULT_RATE_LIMIT,
    DEFAULT_SMPP_PASSWORD_LENGTH,
    MAX_SMPP_PASSWORD_LENGTH,
    Accounts,
    InvalidName,
    IssuedApiKey,
    IssuedSmppPassword,
    check_account_name,
    webhook_secret,
)
from herald.admin._controls import apply_controls
from herald.admin._errors import Conflict, FieldProblem, InvalidInput, NotFound
from herald.admin._keys import AdminKeys, IssuedAdminKey, check_key_name
from herald.admin._settings import apply_settings, describe_settings
from herald.intake import parse_plan, parse_ported
from herald.routes import parse_stored
from herald.routing import RoutesFileError
from herald.store import (
    Account,
    AccountControls,
    AccountExists,
    AdminScope,
    AuditEntry,
    AuditFilter,
    ChangeOutcome,
    ChangeResult,
    ConnectorState,
    CredentialExists,
    FraudDecision,
    FraudSettings,
    InvalidRecord,
    MessageNotFound,
    NumberTable,
    NumberTableKind,
    OptOutChange,
    OptOutEntry,
    Store,
    StoreBusy,
    StoreClosed,
    StoredRoutes,
    StoreUnavailable,
    UnknownAccount,
)

__all__ = [
    "CHANGE_POLL_INTERVAL", "Admin", "ChangeFeed", "RoutesImport", "TableImport", "cli_actor",
]

log = logging.getLogger("herald.admin")

#: Seconds between looks at the audit log for changes other processes made:
#: how long a change made with the CLI takes to reach a running herald's
#: caches (one one-row read each time).
CHANGE_POLL_INTERVAL: Final = 1.0
#: Entries read per look (more are read in further pages).
_FEED_PAGE: Final = 500


def cli_actor() -> str:
    """Who a change made from the shell is recorded as: ``cli:<os user>``."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (a container)
        user = f"uid{os.getuid()}"
    return f"cli:{user}"


class ChangeFeed:
    """Tells listeners of each recorded change: this process's at once, other
    processes' when :meth:`run` finds them in the log."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[AuditEntry], None]] = []
        self.seen = -1  # the last seq looked at by run(); -1: not started

    def watch(self, listener: Callable[[AuditEntry], None]) -> None:
        """Call ``listener`` with every change; it must not block or raise."""
        self._listeners.append(listener)

    def publish(self, entry: AuditEntry) -> None:
        for listener in self._listeners:
            try:
                listener(entry)
            except Exception:  # one listener's bug must not hide the change from others
                log.exception("a change listener failed on %s %s", entry.action, entry.target)

    async def poll(self, store: Store) -> int:
        """Publish the entries recorded since the last poll; how many."""
        last = await store.last_audit_seq()
        if self.seen < 0:  # the first look: only later changes matter
            self.seen = last
            return 0
        fresh: list[AuditEntry] = []
        before: int | None = None
        while last > self.seen:
            page = await store.list_audit(AuditFilter(before=before, limit=_FEED_PAGE))
            fresh.extend(e for e in page if e.seq > self.seen)
            if len(page) < _FEED_PAGE or page[-1].seq <= self.seen:
                break
            before = page[-1].seq
        for entry in sorted(fresh, key=lambda e: e.seq):
            self.publish(entry)
        self.seen = max(self.seen, last)
        return len(fresh)

    async def run(self, store: Store, interval: float = CHANGE_POLL_INTERVAL) -> None:
        """Poll every ``interval`` seconds until cancelled or the store closes."""
        while True:
            try:
                await self.poll(store)
            except StoreClosed:
                return
            except (StoreBusy, StoreUnavailable) as exc:  # e.g. PostgreSQL away: next time
                log.warning("reading the audit log for changes failed: %s", exc)
            except Exception:  # caches then expire on their own (their TTLs)
                log.exception("reading the audit log for changes failed")
            await asyncio.sleep(interval)


@dataclass(frozen=True, slots=True)
class RoutesImport:
    """What an import of routing rules stored."""

    rules: int
    generation: int


@dataclass(frozen=True, slots=True)
class TableImport:
    """What an import of a number table stored."""

    kind: NumberTableKind
    entries: int
    networks: int
    octets: int
    generation: int


#: Opt-out changes written per transaction (an import may hold millions).
OPT_OUT_CHUNK: Final = 5_000


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def _account_target(name: str) -> str:
    return f"account:{name}"


class Admin:
    """Accounts, credentials, number tables and admin keys, changed and recorded.

    ``master_key`` (``<data-dir>/master.key``) lets :meth:`create_account`
    return the webhook signing secret; ``clock`` gives epoch seconds.
    Errors: :class:`InvalidInput` (422), :class:`NotFound` (404),
    :class:`Conflict` (409); the store's busy/unavailable errors pass through.
    """

    def __init__(
        self,
        store: Store,
        accounts: Accounts,
        keys: AdminKeys,
        *,
        master_key: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.accounts = accounts
        self.keys = keys
        self.feed = ChangeFeed()
        self.feed.watch(self._forget_credential)
        self._master_key = master_key
        self._clock = clock

    def _forget_credential(self, entry: AuditEntry) -> None:
        # A key or login changed, maybe by another process: this one's cache must
        # not keep accepting it until the entry expires (60 s).
        for field in ("key_id", "system_id"):
            credential = entry.changes.get(field)
            if isinstance(credential, str) and not entry.action.endswith(".issue"):
                self.accounts.forget(credential)

    # -- the record ----------------------------------------------------------------------

    async def record(
        self, actor: str, action: str, target: str, changes: Mapping[str, Any] | None = None
    ) -> AuditEntry:
        """Append a change to the audit log and tell the feed. Call after the change."""
        entry = AuditEntry(self._clock(), actor, action, target, dict(changes or {}))
        seq = await self.store.record_audit(entry)
        recorded = AuditEntry(entry.at, actor, action, target, entry.changes, seq)
        log.info("admin change %d by %s: %s %s", seq, actor, action, target)
        self.feed.publish(recorded)
        return recorded

    async def audit(self, query: AuditFilter) -> tuple[AuditEntry, ...]:
        return await self.store.list_audit(query)

    # -- accounts ------------------------------------------------------------------------

    async def account(self, name: str) -> Account:
        """Raises :class:`NotFound`."""
        try:
            return await self.store.get_account_by_name(name)
        except UnknownAccount:
            raise NotFound(f"no account named {name!r}") from None

    def signing_secret(self, account: Account) -> str | None:
        """The account's current webhook signing secret (``None`` without a master key)."""
        if self._master_key is None:
            return None
        return webhook_secret(self._master_key, account.id, account.webhook_secret_version)

    async def create_account(
        self, actor: str, name: str, settings: Mapping[str, Any], *, allow_private_urls: bool
    ) -> tuple[Account, IssuedApiKey]:
        """A new account with the settings given (the others: defaults) and its first key."""
        problems: list[FieldProblem] = []
        try:
            check_account_name(name)
        except InvalidName as exc:
            problems.append(FieldProblem("name", "not_valid", str(exc)))
        now = self._clock()
        draft = Account(0, name, now, DEFAULT_RATE_LIMIT, DEFAULT_BIND_LIMIT, None, 1)
        try:
            wanted, _ = apply_settings(draft, settings, allow_private_urls=allow_private_urls)
        except InvalidInput as exc:
            problems += exc.problems  # every refused field at once, the name's too
        if problems:
            raise InvalidInput(problems)
        try:
            account, key = await self.accounts.create(
                name, now, rate_limit=wanted.rate_limit, bind_limit=wanted.bind_limit,
                callback_url=wanted.callback_url)  # fmt: skip
        except AccountExists:
            raise Conflict(f"an account named {name!r} exists") from None
        configured = dataclasses.replace(wanted, id=account.id, created_at=account.created_at)
        if configured != account:
            await self.store.update_account(configured)
            account = configured
        await self.record(actor, "account.create", _account_target(name), {
            "id": account.id, **describe_settings(account), "key_id": key.key_id,
            "api_key": "issued"})  # fmt: skip
        return account, key

    async def update_account(
        self, actor: str, name: str, settings: Mapping[str, Any], *, allow_private_urls: bool
    ) -> Account:
        """Change the settings given; the others stay. Recorded when something changed."""
        account = await self.account(name)
        changed, changes = apply_settings(account, settings, allow_private_urls=allow_private_urls)
        if changes:
            await self.store.update_account(changed)
            await self.record(actor, "account.update", _account_target(name), changes)
        return changed

    async def set_controls(
        self, actor: str, name: str, controls: AccountControls
    ) -> AccountControls:
        """Replace the account's controls (``docs/accounts.md``; the caller checked
        them with ``AccountRules.parse``). Recorded when something changed: the
        fields changed, as they now are."""
        account = await self.account(name)
        before = await self.store.get_controls(account.id)
        if controls != before:
            await self.store.set_controls(account.id, controls)
            changes = {f.name: _plain(getattr(controls, f.name))
                       for f in dataclasses.fields(controls)
                       if getattr(controls, f.name) != getattr(before, f.name)}
            await self.record(actor, "account.controls", _account_target(name), changes)
        return controls

    async def controls(self, name: str) -> AccountControls:
        """The account's controls. Raises :class:`NotFound`."""
        return await self.store.get_controls((await self.account(name)).id)

    async def fraud_settings(self, name: str) -> FraudSettings:
        """The account's pumping-defence settings (docs/fraud.md). :class:`NotFound`."""
        return await self.store.get_fraud_settings((await self.account(name)).id)

    async def set_fraud_settings(self, actor: str, name: str,
                                 settings: FraudSettings) -> FraudSettings:
        """Replace the account's pumping-defence settings; recorded (the fields
        changed, as they now are) when something changed. :class:`NotFound`."""
        account = await self.account(name)
        before = await self.store.get_fraud_settings(account.id)
        if settings != before:
            await self.store.set_fraud_settings(account.id, settings)
            plain = {"mode": settings.mode.value, "otp_messages": settings.otp_messages,
                     "allow": list(settings.allow), "deny": list(settings.deny),
                     "country_caps": {c: str(a) for c, a in settings.country_caps.items()}}
            changes = {key: value for key, value in plain.items()
                       if getattr(settings, key) != getattr(before, key)}
            await self.record(actor, "account.fraud", _account_target(name), changes)
        return settings

    async def fraud_decisions(self, name: str, limit: int) -> tuple[FraudDecision, ...]:
        """The account's last ``limit`` decisions, newest first. :class:`NotFound`."""
        return await self.store.list_fraud_decisions((await self.account(name)).id,
                                                     limit=limit)

    async def update_controls(
        self, actor: str, name: str, changes: Mapping[str, Any]
    ) -> AccountControls:
        """Change the controls given (``herald.admin.CONTROLS`` names: a list given
        replaces the list); the others stay. Raises :class:`InvalidInput` naming
        every refused field and entry (nothing changes then), :class:`NotFound`."""
        account = await self.account(name)
        wanted = apply_controls(await self.store.get_controls(account.id), changes)
        return await self.set_controls(actor, name, wanted)

    async def change_opt_outs(
        self, actor: str, name: str, numbers: list[str], opted_out: bool, source: str
    ) -> int:
        """Opt ``numbers`` (E.164 digits) out of the account's messages, or back in;
        how many changed. Recorded, when something changed, with the counts (the
        numbers stay in the list)."""
        account = await self.account(name)
        now = self._clock()
        changed = 0
        for start in range(0, len(numbers), OPT_OUT_CHUNK):
            changed += await self.store.change_opt_outs(account.id, [
                OptOutChange(n, opted_out, now, source)
                for n in numbers[start:start + OPT_OUT_CHUNK]])  # fmt: skip
        if changed:
            await self.record(actor, "account.opt_outs", _account_target(name), {
                "opted_out" if opted_out else "opted_in": len(numbers), "changed": changed,
                "source": source})  # fmt: skip
        return changed

    async def opt_outs(
        self, name: str, *, after: str | None = None, limit: int | None = None
    ) -> tuple[OptOutEntry, ...]:
        """The account's opted-out numbers by number: those after ``after``, at most
        ``limit`` (all without). Raises :class:`NotFound`."""
        account = await self.account(name)
        return await self.store.list_opt_outs(account.id, after=after, limit=limit)

    async def set_disabled(self, actor: str, name: str, disabled: bool) -> Account:
        """Disable (refuse its keys and logins, close its binds) or enable an account."""
        account = await self.account(name)
        if account.disabled != disabled:
            account = dataclasses.replace(account, disabled=disabled)
            await self.store.update_account(account)
            await self.record(actor, "account.disable" if disabled else "account.enable",
                              _account_target(name), {"disabled": disabled})
        return account

    # -- credentials ---------------------------------------------------------------------

    async def issue_api_key(self, actor: str, name: str) -> tuple[Account, IssuedApiKey]:
        account = await self.account(name)
        key = await self.accounts.issue_api_key(account.id, self._clock())
        await self.record(actor, "api_key.issue", _account_target(name),
                          {"key_id": key.key_id, "api_key": "issued"})
        return account, key

    async def revoke_api_key(
        self, actor: str, key_id: str, *, account_name: str | None = None
    ) -> Account:
        """Revoke an active key (of ``account_name``, when given). Raises :class:`NotFound`."""
        record = await self.store.get_api_key(key_id)
        account = None if record is None else await self.store.get_account(record.account_id)
        if (record is None or record.revoked or account is None
                or account_name not in (None, account.name)):
            raise NotFound(f"no active API key {key_id!r}"
                           + (f" of account {account_name!r}" if account_name else ""))
        if not await self.accounts.revoke_api_key(key_id, self._clock()):
            raise NotFound(f"no active API key {key_id!r}")  # revoked meanwhile
        await self.record(actor, "api_key.revoke", _account_target(account.name),
                          {"key_id": key_id, "api_key": "revoked"})
        return account

    async def add_smpp(
        self, actor: str, name: str, system_id: str,
        password_length: int = DEFAULT_SMPP_PASSWORD_LENGTH,
    ) -> tuple[Account, IssuedSmppPassword]:  # fmt: skip
        """A new SMPP login. Raises :class:`InvalidInput` (system_id,
        password_length), :class:`Conflict` (system_id taken), :class:`NotFound`."""
        account = await self.account(name)
        issued = await self._add_smpp(account, system_id, password_length)
        await self.record(actor, "smpp.add", _account_target(name),
                          {"system_id": system_id, "password": "issued"})
        return account, issued

    async def _add_smpp(
        self, account: Account, system_id: str, password_length: int
    ) -> IssuedSmppPassword:
        try:
            return await self.accounts.add_smpp(account.id, system_id, self._clock(),
                                                password_length=password_length)  # fmt: skip
        except InvalidName as exc:
            field = "password_length" if "password length" in str(exc) else "system_id"
            raise InvalidInput.one(field, "not_valid", str(exc)) from None
        except CredentialExists:
            raise Conflict(f"system_id {system_id!r} is taken") from None

    async def _login(self, system_id: str, account_name: str | None) -> Account:
        record = await self.store.get_smpp_credential(system_id)
        account = None if record is None else await self.store.get_account(record.account_id)
        if account is None or account_name not in (None, account.name):
            raise NotFound(f"no SMPP login {system_id!r}"
                           + (f" of account {account_name!r}" if account_name else ""))
        return account

    async def reset_smpp(
        self, actor: str, system_id: str, password_length: int = DEFAULT_SMPP_PASSWORD_LENGTH,
        *, account_name: str | None = None,
    ) -> tuple[Account, IssuedSmppPassword]:  # fmt: skip
        """A new password for a login; its open binds are closed (within seconds)."""
        account = await self._login(system_id, account_name)
        if not DEFAULT_SMPP_PASSWORD_LENGTH <= password_length <= MAX_SMPP_PASSWORD_LENGTH:
            raise InvalidInput.one("password_length", "out_of_range",
                                   f"must be {DEFAULT_SMPP_PASSWORD_LENGTH}"
                                   f"..{MAX_SMPP_PASSWORD_LENGTH}")
        await self.accounts.remove_smpp(system_id)
        issued = await self._add_smpp(account, system_id, password_length)
        await self.record(actor, "smpp.reset", _account_target(account.name),
                          {"system_id": system_id, "password": "reset"})
        return account, issued

    async def remove_smpp(
        self, actor: str, system_id: str, *, account_name: str | None = None
    ) -> Account:
        account = await self._login(system_id, account_name)
        if not await self.accounts.remove_smpp(system_id):
            raise NotFound(f"no SMPP login {system_id!r}")
        await self.record(actor, "smpp.remove", _account_target(account.name),
                          {"system_id": system_id, "password": "removed"})
        return account

    # -- number tables -------------------------------------------------------------------

    async def import_number_table(
        self, actor: str, kind: NumberTableKind, lines: Iterable[str]
    ) -> TableImport:
        """Replace the table of ``kind`` with a CSV file's lines (parsed off the loop).

        Raises :class:`~herald.intake.TableFileError` naming the bad lines
        (nothing is stored then).
        """
        parse = parse_plan if kind is NumberTableKind.PLAN else parse_ported
        table = await asyncio.to_thread(lambda: parse(lines))
        data = table.to_bytes()
        generation = await self.store.put_number_table(
            NumberTable(kind, data, len(table), self._clock()))
        result = TableImport(kind, len(table), len(table.networks), len(data), generation)
        await self.record(actor, "numbers.import", f"numbers:{kind.value}", {
            "entries": result.entries, "networks": result.networks,
            "generation": generation})  # fmt: skip
        return result

    async def clear_number_table(self, actor: str, kind: NumberTableKind) -> bool:
        """Remove the table of ``kind``; whether there was one."""
        had = await self.store.get_number_table(kind) is not None
        generation = await self.store.remove_number_table(kind)
        if had:
            await self.record(actor, "numbers.clear", f"numbers:{kind.value}",
                              {"generation": generation})
        return had

    # -- routing -------------------------------------------------------------------------

    async def import_routes(self, actor: str, routes: StoredRoutes,
                            known: Collection[str] = ()) -> RoutesImport:
        """Replace the routing rules with ``routes``.

        Raises :class:`~herald.routing.RoutesFileError` naming every problem;
        nothing is stored then. With ``known`` (herald.toml's connectors), a
        rule naming another connector is a problem too: dispatch would refuse
        the whole file and keep the rules in force.
        """
        plan = parse_stored(routes)
        if known:
            unknown = [f"rule[{n}]: names connectors herald.toml does not have: "
                       + ", ".join(sorted(set(r.action.names) - set(known)))
                       for n, r in enumerate(plan.rules)
                       if not set(r.action.names) <= set(known)]  # fmt: skip
            if unknown:
                raise RoutesFileError(unknown)
        generation = await self.store.put_routes(routes)
        done = RoutesImport(len(plan.rules), generation)
        await self.record(actor, "routes.import", "routes", {
            "source": routes.source, "rules": done.rules, "generation": generation})
        return done

    async def clear_routes(self, actor: str) -> bool:
        """Remove the routing rules (the ``[[routes]]`` decide alone); whether there were any."""
        had = await self.store.get_routes() is not None
        generation = await self.store.remove_routes()
        if had:
            await self.record(actor, "routes.clear", "routes", {"generation": generation})
        return had

    async def set_connector_state(
        self, actor: str, connector: str, *, disabled: bool, reason: str | None = None
    ) -> int:
        """Disable or enable routing to ``connector``; returns the routing generation.
        Raises :class:`InvalidInput` for a name or reason the store refuses."""
        try:
            state = ConnectorState(connector, disabled, reason, self._clock())
        except InvalidRecord as exc:
            raise InvalidInput.one(exc.field, "not_valid", str(exc)) from None
        generation = await self.store.set_connector_state(state)
        await self.record(actor, "connector.disable" if disabled else "connector.enable",
                          f"connector:{connector}", {"reason": reason, "generation": generation})
        return generation

    # -- messages ------------------------------------------------------------------------

    async def cancel_message(self, actor: str, message_id: str) -> ChangeResult:
        """Cancel a message that has not gone out (``Store.cancel``'s rule), whichever
        account's; recorded as ``message.cancel`` when it was cancelled now.
        Raises :class:`NotFound`."""
        try:
            message = await self.store.get_message(message_id)
            result = await self.store.cancel(message_id, self._clock(),
                                             account_id=message.account_id)
        except MessageNotFound:
            raise NotFound(f"no message {message_id!r}") from None
        if result.outcome is ChangeOutcome.APPLIED:
            account = await self.store.get_account(message.account_id)
            await self.record(actor, "message.cancel", f"message:{message_id}",
                              {"account": account.name, "status": "cancelled"})
        return result

    # -- admin keys ----------------------------------------------------------------------

    async def issue_admin_key(self, actor: str, name: str, scope: AdminScope) -> IssuedAdminKey:
        try:
            check_key_name(name)
            issued = await self.keys.issue(name, scope, self._clock())
        except ValueError as exc:
            raise InvalidInput.one("name", "not_valid", str(exc)) from None
        except CredentialExists:
            raise Conflict(f"an admin key named {name!r} is active; revoke it first") from None
        await self.record(actor, "admin_key.issue", f"admin_key:{name}",
                          {"key_id": issued.key_id, "scope": scope.value, "key": "issued"})
        return issued

    async def revoke_admin_key(self, actor: str, name: str) -> None:
        """Revoke the active admin key named ``name``; it is refused from its next request."""
        record = await self.keys.active(name)
        if record is None or not await self.store.revoke_admin_key(record.key_id, self._clock()):
            raise NotFound(f"no active admin key named {name!r}")
        await self.record(actor, "admin_key.revoke", f"admin_key:{name}",
                          {"key_id": record.key_id, "key": "revoked"})
