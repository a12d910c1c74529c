"""Store contract: the chat channels' 24-hour windows (docs/channels.md)."""

from __future__ import annotations

import pytest

from herald.store import Account, InvalidRecord, Store, UnknownAccount

from .conftest import T0


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
