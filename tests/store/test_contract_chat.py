"""Store contract: the chat channels' 24-hour windows (docs/channels.md)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from herald.store import (
    VERIFY_TAG,
    Account,
    ChainChange,
    Channel,
    Charge,
    ChatTemplate,
    Conflict,
    DailyQuota,
    EventKind,
    IdempotencyMismatch,
    IdempotencyRecord,
    InsufficientFunds,
    InvalidRecord,
    LegUpdate,
    MessageFilter,
    MessageNotFound,
    NewChain,
    NewChatLeg,
    ParkedChatEvent,
    QuotaExceeded,
    Status,
    StatusEvents,
    StatusUpdate,
    Store,
    UnknownAccount,
)

from .conftest import T0, MessageFactory


async def test_a_window_opens_at_the_users_latest_message(store: Store, account: Account) -> None:
    args = (account.id, "whatsapp", "1065550001", "447700900123")
    assert await store.chat_window_opened(*args) is None
    await store.record_chat_inbound(*args, T0)
    assert await store.chat_window_opened(*args) == T0
    await store.record_chat_inbound(*args, T0 + 60)
    await store.record_chat_inbound(*args, T0 + 30)  # arrived late: does not shorten the window
    assert await store.chat_window_opened(*args) == T0 + 60


async def test_windows_are_per_account_channel_sender_and_user(store: Store,
                                                               account: Account) -> None:
    other = await store.create_account("other", T0, rate_limit=100.0, bind_limit=2)
    await store.record_chat_inbound(account.id, "whatsapp", "1065550001", "447700900123", T0)
    for key in ((other.id, "whatsapp", "1065550001", "447700900123"),
                (account.id, "viber", "1065550001", "447700900123"),
                (account.id, "whatsapp", "1065550002", "447700900123"),
                (account.id, "whatsapp", "1065550001", "447700900124")):
        assert await store.chat_window_opened(*key) is None


async def test_bad_records_are_refused(store: Store, account: Account) -> None:
    with pytest.raises(UnknownAccount):
        await store.record_chat_inbound(9999, "whatsapp", "1", "2", T0)
    with pytest.raises(InvalidRecord):
        await store.record_chat_inbound(account.id, "whatsapp", "", "2", T0)
    with pytest.raises(InvalidRecord):
        await store.record_chat_inbound(account.id, "whatsapp", "1", "9" * 65, T0)


# -- chains (docs/channels.md, "Chains") ---------------------------------------------

def _chain(account: Account, make_message: MessageFactory, *, sms_first: bool = False,
           chain_id: str = "c" * 26) -> NewChain:
    wa = NewChatLeg("whatsapp", "1065550001", '{"template":"t","language":"en","parameters":[]}',
                    "read", 60.0)
    sms = NewChatLeg("sms", "ACME", sms=make_message(callback_events=StatusEvents.NONE))
    legs = (sms,) if sms_first else (wa, sms)
    return NewChain(chain_id, account.id, "+447700900123", legs, T0)


async def test_a_chain_is_stored_with_its_first_leg_started(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    new = _chain(account, make_message)
    await store.accept_chain(new)
    chain = await store.get_chain("c" * 26, account_id=account.id)
    assert chain.status is Status.QUEUED and chain.version == 0
    assert [leg.state for leg in chain.legs] == ["pending", None]
    assert chain.legs[1].message_id is None  # the SMS is stored only when its leg starts
    assert [leg.template for leg in chain.legs] == [("t", "en"), None]
    # what the SMS leg sends when it starts, as intake made it
    assert await store.chain_leg_sms("c" * 26, 1) == new.legs[1].sms
    assert await store.chain_leg_sms("c" * 26, 0) is None  # a WhatsApp leg
    assert await store.chain_leg_sms("d" * 26, 1) is None
    with pytest.raises(MessageNotFound):
        await store.get_chain("c" * 26, account_id=account.id + 1)
    claimed = await store.claim_chat_legs(T0, 60.0, 10)
    assert [(c.chain_id, c.leg, c.resumed) for c in claimed] == [("c" * 26, 0, False)]
    assert await store.claim_chat_legs(T0 + 1, 60.0, 10) == ()  # leased
    again = await store.claim_chat_legs(T0 + 61, 60.0, 10)  # the claimer died mid-request
    assert [(c.leg, c.resumed) for c in again] == [(0, True)]


async def test_a_change_applies_only_at_the_version_it_was_decided_on(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    await store.accept_chain(_chain(account, make_message))
    accepted = ChainChange("c" * 26, 0, T0 + 1, Status.SENT,
                           legs={0: LegUpdate("accepted", provider_id="wamid.1")},
                           arm={0: T0 + 61})
    assert await store.change_chain(accepted)
    assert not await store.change_chain(accepted)  # version 0 is gone: decide again
    chain = await store.get_chain("c" * 26)
    assert chain.version == 1 and chain.timers == {0: T0 + 61}
    assert await store.chain_of_provider_id("whatsapp", "wamid.1") == ("c" * 26, 0)
    assert await store.chain_of_provider_id("viber", "wamid.1") is None


async def test_a_timer_fires_once_even_when_its_claimer_dies(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    await store.accept_chain(_chain(account, make_message))
    assert await store.change_chain(ChainChange("c" * 26, 0, T0, Status.SENT, arm={0: T0 + 60}))
    assert await store.claim_chain_timers(T0 + 59, 30.0, 10) == ()  # not due
    assert await store.next_chain_timer() == T0 + 60
    first = await store.claim_chain_timers(T0 + 60, 30.0, 10)
    assert [(t.chain_id, t.leg) for t in first] == [("c" * 26, 0)]
    assert await store.claim_chain_timers(T0 + 61, 30.0, 10) == ()  # leased
    again = await store.claim_chain_timers(T0 + 91, 30.0, 10)  # its claimer died
    assert [(t.chain_id, t.leg) for t in again] == [("c" * 26, 0)]
    fired = ChainChange("c" * 26, 1, T0 + 91, Status.SENT,
                        legs={0: LegUpdate("accepted")}, start=(1,), timer=0)
    assert await store.change_chain(fired)
    assert await store.claim_chain_timers(T0 + 200, 30.0, 10) == ()  # consumed: never again
    chain = await store.get_chain("c" * 26)
    assert chain.legs[1].state == "pending" and chain.legs[1].message_id is not None
    sms = await store.get_message(chain.legs[1].message_id)
    assert sms.status is Status.ACCEPTED  # in the SMS pipeline: dispatch claims it
    claimed = await store.claim(10, T0 + 92, 30.0)
    assert [m.id for m in claimed] == [sms.id]
    assert [(c.leg, c.status) for c in await store.sms_leg_changes(10)] == [(1, Status.QUEUED)]


async def test_the_sms_leg_is_charged_when_it_starts_and_a_chat_leg_once_when_priced(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    await store.adjust_balance(account.id, add=1_000_000)
    charge = Charge("44", None, "+44", 40_000)
    sms = NewChatLeg("sms", "ACME", sms=make_message(), charge=charge)
    wa = NewChatLeg("whatsapp", "1065550001", '{"text":"hi"}')
    await store.accept_chain(NewChain("c" * 26, account.id, "+447700900123", (wa, sms), T0))
    assert (await store.get_balance(account.id)).balance == 1_000_000  # nothing charged yet
    priced = LegUpdate("sent", price_micros=8_000, price_category="utility")
    assert await store.change_chain(ChainChange("c" * 26, 0, T0, Status.SENT, legs={0: priced}))
    assert await store.change_chain(ChainChange("c" * 26, 1, T0, Status.SENT, legs={0: priced}))
    assert (await store.get_balance(account.id)).balance == 992_000  # priced once
    assert await store.change_chain(ChainChange("c" * 26, 2, T0, Status.SENT,
                                                legs={0: LegUpdate("failed")}, start=(1,)))
    assert (await store.get_balance(account.id)).balance == 952_000
    chain = await store.get_chain("c" * 26)
    assert [(leg.price_micros, leg.price_category) for leg in chain.legs] == [
        (8_000, "utility"), (40_000, "sms")]


async def test_an_sms_leg_that_cannot_be_paid_changes_nothing(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    await store.adjust_balance(account.id, add=10)
    sms = NewChatLeg("sms", "ACME", sms=make_message(), charge=Charge("44", None, "+44", 40_000))
    wa = NewChatLeg("whatsapp", "1065550001", '{"text":"hi"}')
    await store.accept_chain(NewChain("c" * 26, account.id, "+447700900123", (wa, sms), T0))
    with pytest.raises(InsufficientFunds):
        await store.change_chain(ChainChange("c" * 26, 0, T0, Status.SENT, start=(1,)))
    chain = await store.get_chain("c" * 26)
    assert chain.version == 0 and chain.legs[1].state is None


async def test_the_final_change_writes_one_webhook_event(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    await store.accept_chain(_chain(account, make_message))
    await store.change_chain(ChainChange("c" * 26, 0, T0, Status.DELIVERED, delivered_by=0,
                                         legs={0: LegUpdate("read")}, notify=True))
    assert await store.claim_outbox(Channel.WEBHOOK, T0, 30.0, 10) == ()  # no callback URL
    other = NewChain("d" * 26, account.id, "+447700900123",
                     _chain(account, make_message).legs, T0, callback_url="https://example.com/h")
    await store.accept_chain(other)
    await store.change_chain(ChainChange("d" * 26, 0, T0, Status.DELIVERED, delivered_by=0,
                                         legs={0: LegUpdate("read")}, notify=True))
    events = await store.claim_outbox(Channel.WEBHOOK, T0, 30.0, 10)
    assert [(e.kind, e.subject_id, e.status, e.url) for e in events] == [
        (EventKind.CHAIN, "d" * 26, Status.DELIVERED, "https://example.com/h")]


async def test_the_purge_erases_the_codes_of_final_chains(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    """A WhatsApp-first verification's legs hold its code (the authentication
    template's, the prepared SMS's text): once the chain is final nothing needs
    them, and the purge empties them (nothing else of the chain changes)."""
    auth = '{"template":"login_code","language":"en","code":"123456"}'
    plain = '{"template":"t","language":"en","parameters":["A-1"]}'

    def verify_chain(chain_id: str, content: str = auth, tag: str = VERIFY_TAG) -> NewChain:
        sms = make_message(tag=tag, body=b"Your code is 123456",
                           callback_events=StatusEvents.NONE)
        return NewChain(chain_id, account.id, "+447700900123", (
            NewChatLeg("whatsapp", "1065550001", content, "delivered", 30.0),
            NewChatLeg("sms", "ACME", sms=sms)), T0)

    done, waiting, other = (verify_chain("c" * 26), verify_chain("d" * 26),
                            verify_chain("e" * 26, plain, "otp"))
    for new in (done, waiting, other):
        await store.accept_chain(new)
        assert await store.change_chain(ChainChange(new.id, 0, T0 + 1, Status.SENT,
                                                    legs={0: LegUpdate("accepted")}))
    for new in (done, other):
        assert await store.change_chain(ChainChange(new.id, 1, T0 + 2, Status.DELIVERED,
                                                    delivered_by=0,
                                                    legs={0: LegUpdate("delivered")}))
    before = await store.get_chain(done.id)
    assert await store.purge(T0 + 3, parked_before=T0, dead_before=T0) == 2  # its two legs
    assert await store.get_chain(done.id) == before
    erased = json.loads(await store.chain_leg_content(done.id, 0) or "")
    assert erased == {"template": "login_code", "language": "en", "code": ""}
    sms = await store.chain_leg_sms(done.id, 1)
    assert sms is not None and sms.body == b"" and sms.tag == VERIFY_TAG
    assert sms == replace(done.legs[1].sms, body=b"")  # type: ignore[arg-type]
    # still to send: kept; a plain template and an SMS not tagged verify: kept
    assert await store.chain_leg_content(waiting.id, 0) == auth
    assert await store.chain_leg_sms(waiting.id, 1) == waiting.legs[1].sms
    assert await store.chain_leg_content(other.id, 0) == plain
    assert await store.chain_leg_sms(other.id, 1) == other.legs[1].sms
    assert await store.chain_leg_content(done.id, 1) is None  # an SMS leg
    assert await store.chain_leg_content("f" * 26, 0) is None
    assert await store.purge(T0 + 4, parked_before=T0, dead_before=T0) == 0  # once


async def test_statuses_are_parked_until_a_leg_carries_their_provider_id(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    await store.accept_chain(_chain(account, make_message))
    await store.park_chat_events([ParkedChatEvent(0, "whatsapp", "wamid.1", "read", T0, None,
                                                  None, "utility", True)], T0)
    assert await store.parked_chat_events(10) == ()
    await store.change_chain(ChainChange("c" * 26, 0, T0, Status.SENT,
                                         legs={0: LegUpdate("accepted", provider_id="wamid.1")}))
    parked = await store.parked_chat_events(10)
    assert [(p.provider_id, p.event, p.category, p.billable) for p in parked] == [
        ("wamid.1", "read", "utility", True)]
    assert await store.drop_parked_chat_events([p.id for p in parked]) == 1
    assert await store.parked_chat_events(10) == ()


async def test_an_sms_legs_status_is_reported_until_the_leg_records_it(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    await store.accept_chain(_chain(account, make_message, sms_first=True))
    sms_id = (await store.get_chain("c" * 26)).legs[0].message_id
    assert sms_id is not None
    assert await store.sms_leg_changes(10) == ()  # accepted: nothing to tell yet
    await store.update_statuses([StatusUpdate(sms_id, Status.SENT, T0 + 1)])
    assert [(c.chain_id, c.leg, c.status) for c in await store.sms_leg_changes(10)] == [
        ("c" * 26, 0, Status.SENT)]
    seen = LegUpdate("accepted", sms_status=int(Status.SENT))
    assert await store.change_chain(ChainChange("c" * 26, 0, T0 + 1, Status.SENT, legs={0: seen}))
    assert await store.sms_leg_changes(10) == ()  # recorded: told once
    await store.update_statuses([StatusUpdate(sms_id, Status.UNDELIVERED, T0 + 2, 0x0B)])
    assert [(c.leg, c.status, c.error_code) for c in await store.sms_leg_changes(10)] == [
        (0, Status.UNDELIVERED, 0x0B)]
    ended = LegUpdate("failed", sms_status=int(Status.UNDELIVERED))
    assert await store.change_chain(ChainChange("c" * 26, 1, T0 + 2, Status.UNDELIVERED,
                                                legs={0: ended}))
    assert await store.sms_leg_changes(10) == ()
    with pytest.raises(InvalidRecord):
        await store.sms_leg_changes(0)


async def test_a_leg_claim_moves_its_chain_to_the_next_version(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    await store.accept_chain(_chain(account, make_message))
    decided_before = ChainChange("c" * 26, 0, T0, Status.SENT, legs={0: LegUpdate("failed")})
    claimed = await store.claim_chat_legs(T0, 60.0, 10)
    assert [(c.channel, c.sender, c.to, c.account_id) for c in claimed] == [
        ("whatsapp", "1065550001", "+447700900123", account.id)]
    assert not await store.change_chain(decided_before)  # the claim came in between
    chain = await store.get_chain("c" * 26)
    assert chain.version == 1 and chain.legs[0].state == "submitted"


async def test_a_change_naming_a_leg_the_chain_lacks_changes_nothing(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    await store.accept_chain(_chain(account, make_message))
    with pytest.raises(InvalidRecord) as refused:
        await store.change_chain(ChainChange("c" * 26, 0, T0, Status.SENT,
                                             legs={0: LegUpdate("sent"), 7: LegUpdate("sent")}))
    assert refused.value.field == "leg"
    chain = await store.get_chain("c" * 26)
    assert chain.version == 0 and chain.legs[0].state == "pending"


async def test_a_rearmed_timer_is_due_at_its_new_time_and_a_cancelled_one_never(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    await store.accept_chain(_chain(account, make_message))
    assert await store.next_chain_timer() is None
    assert await store.change_chain(ChainChange("c" * 26, 0, T0, Status.SENT,
                                                arm={0: T0 + 60, 1: T0 + 70}))
    assert [t.leg for t in await store.claim_chain_timers(T0 + 60, 30.0, 10)] == [0]
    assert await store.change_chain(ChainChange("c" * 26, 1, T0 + 61, Status.SENT,
                                                arm={0: T0 + 65}, cancel=(1,)))
    assert (await store.get_chain("c" * 26)).timers == {0: T0 + 65}
    assert await store.next_chain_timer() == T0 + 65
    due = await store.claim_chain_timers(T0 + 80, 30.0, 10)  # re-armed: no longer leased
    assert [(t.leg, t.due_at) for t in due] == [(0, T0 + 65)]


async def test_chains_are_read_many_at_once(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    for chain_id in ("a" * 26, "b" * 26):
        await store.accept_chain(_chain(account, make_message, chain_id=chain_id))
    got = await store.get_chains(["b" * 26, "x" * 26, "a" * 26, "b" * 26])
    assert sorted(got) == ["a" * 26, "b" * 26]
    assert [leg.channel for leg in got["a" * 26].legs] == ["whatsapp", "sms"]
    assert await store.get_chains([]) == {}


async def test_parked_statuses_are_forgotten_by_id_or_by_age(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    await store.accept_chain(_chain(account, make_message))
    await store.change_chain(ChainChange("c" * 26, 0, T0, Status.SENT,
                                         legs={0: LegUpdate("accepted", provider_id="wamid.1")}))
    for n, event in enumerate(("sent", "delivered", "read")):
        await store.park_chat_events([ParkedChatEvent(0, "whatsapp", "wamid.1", event, T0, None,
                                                      None, None, False)], T0 + 10 * n)
    first, *_rest = await store.parked_chat_events(10)
    assert await store.drop_parked_chat_events([first.id], received_before=T0 + 15) == 2
    assert [p.event for p in await store.parked_chat_events(10)] == ["read"]
    assert await store.drop_parked_chat_events([]) == 0


# -- WhatsApp templates ----------------------------------------------------------------

async def test_a_template_has_one_owner_and_keeps_the_providers_latest_word(
        store: Store, account: Account) -> None:
    other = await store.create_account("other", T0, rate_limit=100.0, bind_limit=2)
    t = ChatTemplate(account.id, "order_update", "en_US", "utility", "Order {{1}} shipped",
                     "submitting", None, None, T0, T0)
    await store.add_chat_template(t)
    with pytest.raises(Conflict):
        await store.add_chat_template(replace(t, account_id=other.id))
    with pytest.raises(UnknownAccount):
        await store.add_chat_template(replace(t, account_id=9999, name="x"))
    assert await store.set_chat_template_status("order_update", "en_US", "pending", T0 + 1,
                                                provider_id="594425479261596")
    assert await store.set_chat_template_status("order_update", "en_US", "approved", T0 + 5)
    assert not await store.set_chat_template_status("order_update", "en_US", "approved", T0 + 6)
    assert not await store.set_chat_template_status("order_update", "en_US", "rejected",
                                                    T0 + 2)  # older news than what is known
    got = await store.get_chat_template("order_update", "en_US")
    assert got is not None
    assert (got.status, got.provider_id, got.updated_at) == ("approved", "594425479261596", T0 + 5)
    assert await store.list_chat_templates(other.id) == ()
    assert [x.name for x in await store.list_chat_templates(account.id)] == ["order_update"]
    assert [x.account_id for x in await store.list_chat_templates()] == [account.id]
    assert await store.remove_chat_template("order_update", "en_US")
    assert await store.get_chat_template("order_update", "en_US") is None


async def test_an_edit_records_new_content_reviewed_again(store: Store,
                                                          account: Account) -> None:
    t = ChatTemplate(account.id, "order_update", "en_US", "utility", "Order {{1}} shipped",
                     "approved", "594425479261596", "NONE", T0, T0 + 5)
    await store.add_chat_template(t)
    assert not await store.revise_chat_template("order_update", "en_US", "utility", "Old",
                                                "pending", T0 + 4)  # older than what is known
    assert await store.revise_chat_template("order_update", "en_US", "marketing",
                                            "Order {{1}} is on its way", "pending", T0 + 9)
    got = await store.get_chat_template("order_update", "en_US")
    assert got == replace(t, category="marketing", body="Order {{1}} is on its way",
                          status="pending", reason=None, updated_at=T0 + 9)
    assert not await store.set_chat_template_status("order_update", "en_US", "approved",
                                                    T0 + 8)  # a review of the old content
    assert not await store.revise_chat_template("no_such", "en_US", "utility", "x", "pending",
                                                T0 + 9)


async def test_a_chain_counts_once_against_the_daily_quota(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    quota = DailyQuota(account.id, 20_000, 2)
    await store.accept_chain(_chain(account, make_message, chain_id="a" * 26), quota=quota)
    wa = NewChatLeg("whatsapp", "1065550001", '{"text":"hi"}')  # no SMS leg: one message
    await store.accept_chain(NewChain("b" * 26, account.id, "447700900123", (wa,), T0),
                             quota=quota)
    with pytest.raises(QuotaExceeded):
        await store.accept_chain(_chain(account, make_message, chain_id="d" * 26), quota=quota)
    with pytest.raises(MessageNotFound):
        await store.get_chain("d" * 26)  # nothing of it was kept
    assert await store.daily_usage(account.id, 20_000) == 2


async def test_an_idempotency_key_replays_the_first_chain(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    def record(body: bytes, at: float = T0) -> IdempotencyRecord:
        return IdempotencyRecord(account.id, "k1", b"h:" + body, 202, b"{}", at, at + 86_400)

    assert await store.accept_chain(_chain(account, make_message, chain_id="a" * 26),
                                    idempotency=record(b"A")) is None
    replay = await store.accept_chain(_chain(account, make_message, chain_id="b" * 26),
                                      idempotency=record(b"A", T0 + 60))
    assert replay is not None and replay.created_at == T0
    with pytest.raises(MessageNotFound):
        await store.get_chain("b" * 26)  # the replay stored nothing
    with pytest.raises(IdempotencyMismatch):
        await store.accept_chain(_chain(account, make_message, chain_id="d" * 26),
                                 idempotency=record(b"B", T0 + 61))
    assert (await store.get_idempotency(account.id, "k1", T0 + 61)) == replay


async def test_a_cancel_is_kept_from_the_first_change_that_says_so(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    await store.accept_chain(_chain(account, make_message))
    assert (await store.get_chain("c" * 26)).cancelled_at is None
    assert await store.change_chain(ChainChange("c" * 26, 0, T0 + 5, Status.SENT,
                                                cancel_chain=True))
    assert await store.change_chain(ChainChange("c" * 26, 1, T0 + 9, Status.SENT,
                                                cancel_chain=True))
    assert await store.change_chain(ChainChange("c" * 26, 2, T0 + 12, Status.CANCELLED))
    chain = await store.get_chain("c" * 26)
    assert chain.cancelled_at == T0 + 5 and chain.status is Status.CANCELLED


async def test_chains_are_listed_newest_first_a_page_at_a_time(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    for n in range(3):
        await store.accept_chain(replace(_chain(account, make_message, chain_id=f"{n}" * 26),
                                         created_at=T0 + n))
    chains, cursor = await store.list_chains(MessageFilter(account.id, limit=2))
    assert [c.id for c in chains] == ["2" * 26, "1" * 26] and cursor == "1" * 26
    chains, cursor = await store.list_chains(MessageFilter(account.id, limit=2), cursor)
    assert [c.id for c in chains] == ["0" * 26] and cursor is None
    since = await store.list_chains(MessageFilter(account.id, since=T0 + 1, until=T0 + 2))
    assert [c.id for c in since[0]] == ["1" * 26]
    assert await store.list_chains(MessageFilter(account.id + 1)) == ((), None)
    with pytest.raises(InvalidRecord):
        await store.list_chains(MessageFilter(account.id), "9" * 26)


async def test_the_chains_a_cancel_by_reference_would_cancel(
        store: Store, account: Account, make_message: MessageFactory) -> None:
    other = await store.create_account("other", T0, rate_limit=100.0, bind_limit=2)

    async def chain(n: int, owner: Account = account, reference: str = "spring") -> str:
        base = _chain(owner, make_message, chain_id=f"{n:026d}")
        await store.accept_chain(replace(base, account_id=owner.id, reference=reference))
        return base.id

    waiting, done, cancelled, newer = [await chain(n) for n in range(4)]
    await chain(4, reference="autumn")
    await chain(5, other)
    assert await store.change_chain(ChainChange(done, 0, T0, Status.DELIVERED, delivered_by=0,
                                                legs={0: LegUpdate("read")}))
    assert await store.change_chain(ChainChange(cancelled, 0, T0, Status.SENT,
                                                cancel_chain=True))
    assert await store.chains_to_cancel(account.id, "spring", limit=10) == (waiting, newer)
    assert await store.chains_to_cancel(account.id, "spring", limit=1) == (waiting,)
    assert await store.chains_to_cancel(account.id, "winter", limit=10) == ()
    with pytest.raises(InvalidRecord):
        await store.chains_to_cancel(account.id, "spring", limit=0)
