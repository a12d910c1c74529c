"""DELETE /v1/messages/{id}: a customer cancels a message that has not gone out."""

from __future__ import annotations

from typing import Any

from herald.api._models import CancelledList, MessageView
from herald.store import Channel, Reschedule, Status, StatusUpdate

from .conftest import T0, Api, ApiFactory, message

HOOK = "https://example.test/hook"


async def _scheduled(api: Api, **fields: Any) -> str:
    response = await api.send(message(send_at=T0 + 3600, **fields))
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def test_a_scheduled_message_is_cancelled_and_reported(api: Api) -> None:
    message_id = await _scheduled(api, callback_url=HOOK)
    api.clock.advance(5)
    response = await api.client.delete(f"/v1/messages/{message_id}", headers=api.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    MessageView.model_validate(body)
    assert (body["id"], body["status"], body["error"]) == (message_id, "cancelled", None)
    assert body["timestamps"]["cancelled"] == "2027-01-15T08:00:05.000Z"
    got = (await api.client.get(f"/v1/messages/{message_id}", headers=api.auth)).json()
    assert got["status"] == "cancelled"
    listed = await api.client.get("/v1/messages?status=cancelled", headers=api.auth)
    assert [m["id"] for m in listed.json()["messages"]] == [message_id]
    assert await api.store.claim(10, T0 + 7200, lease=30) == ()  # never goes out
    (event,) = await api.store.claim_outbox(Channel.WEBHOOK, T0 + 10, lease=60, limit=10)
    assert (event.subject_id, event.status, event.url) == (message_id, Status.CANCELLED, HOOK)
    again = await api.client.delete(f"/v1/messages/{message_id}", headers=api.auth)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"  # idempotent


async def test_a_message_being_sent_is_in_progress_then_cancellable_once_handed_back(
    api: Api,
) -> None:
    message_id = (await api.send(message())).json()["id"]
    (claimed,) = await api.store.claim(10, T0, lease=30)
    response = await api.client.delete(f"/v1/messages/{message_id}", headers=api.auth)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["type"], problem["status"]) == ("urn:herald:problem:cancel-in-progress", 409)
    assert (problem["message_status"], problem["title"]) == (
        "queued", "The message is being submitted upstream")
    assert (await api.store.get_message(message_id)).status is Status.QUEUED
    # no connector could take it: dispatch hands it back for a while
    await api.store.reschedule_many([Reschedule(message_id, claimed.attempt, T0 + 60,
                                                release=True)])
    response = await api.client.delete(f"/v1/messages/{message_id}", headers=api.auth)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


async def test_a_sent_or_final_message_is_too_late(api: Api) -> None:
    sent = (await api.send(message())).json()["id"]
    failed = (await api.send(message())).json()["id"]
    await api.store.update_statuses([StatusUpdate(sent, Status.SENT, T0 + 1)])
    await api.store.update_statuses([
        StatusUpdate(failed, Status.FAILED, T0 + 1, error_code=0x10001)])
    for message_id, status, words in ((sent, "sent", "submitted upstream"),
                                      (failed, "failed", "failed already")):
        response = await api.client.delete(f"/v1/messages/{message_id}", headers=api.auth)
        assert response.status_code == 409, response.text
        problem = response.json()
        assert problem["type"] == "urn:herald:problem:cancel-too-late"
        assert (problem["status"], problem["message_status"]) == (409, status)
        assert words in problem["detail"]
        assert (await api.store.get_message(message_id)).status.label == status


async def test_only_the_accounts_own_messages(api: Api, make_api: ApiFactory) -> None:
    other = await make_api(name="other")
    message_id = await _scheduled(api)
    for client, path in ((other, f"/v1/messages/{message_id}"),
                         (api, "/v1/messages/not-an-id"),
                         (api, "/v1/messages/06hhgn2g03575kbrt78uq2gn1c")):
        response = await client.client.delete(path, headers=client.auth)
        assert response.status_code == 404, path
        assert response.json()["type"] == "urn:herald:problem:not-found"
    response = await api.client.delete(f"/v1/messages/{message_id}")
    assert response.status_code == 401
    assert (await api.store.get_message(message_id)).status is Status.ACCEPTED


async def test_delete_is_documented(api: Api) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    delete = doc["paths"]["/v1/messages/{message_id}"]["delete"]
    assert delete["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MessageView"}
    for code in ("401", "404", "409", "429", "503"):
        assert "application/problem+json" in delete["responses"][code]["content"], code
    statuses = doc["components"]["schemas"]["MessageView"]["properties"]["status"]["enum"]
    assert "cancelled" in statuses
    by_reference = doc["paths"]["/v1/messages"]["delete"]
    assert by_reference["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CancelledList"}
    assert [p["name"] for p in by_reference["parameters"]] == ["reference"]


async def test_the_waiting_messages_of_a_reference_are_cancelled_together(
    api: Api, make_api: ApiFactory,
) -> None:
    campaign = [await _scheduled(api, reference="promo-may") for _ in range(3)]
    other = await _scheduled(api, reference="promo-june")
    await api.store.update_statuses([StatusUpdate(campaign[2], Status.SENT, T0 + 1)])
    stranger = await make_api(name="other")
    foreign = await _scheduled(stranger, reference="promo-may")
    response = await api.client.delete("/v1/messages?reference=promo-may", headers=api.auth)
    assert response.status_code == 200, response.text
    assert CancelledList.model_validate(response.json()).cancelled == campaign[:2]
    stored = await api.store.get_messages([*campaign, other, foreign])
    assert [stored[i].status for i in [*campaign, other, foreign]] == [
        Status.CANCELLED, Status.CANCELLED, Status.SENT, Status.ACCEPTED, Status.ACCEPTED]
    again = await api.client.delete("/v1/messages?reference=promo-may", headers=api.auth)
    assert again.json() == {"cancelled": []}
    for query in ("", "?reference=", "?to=%2B14155552671"):  # never "everything"
        refused = await api.client.delete(f"/v1/messages{query}", headers=api.auth)
        assert refused.status_code == 422, query
        assert refused.json()["errors"][0]["field"] == "reference"
    assert (await api.store.get_message(other)).status is Status.ACCEPTED
