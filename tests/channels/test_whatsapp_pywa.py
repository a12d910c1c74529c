"""pywa, an independent Cloud API client, against the same fake (issue 14 test 1).

The fake is only as good as its schema: pywa (PyPI, not herald's code) sends
the same three messages, and must pass the same check and get the same
answers as herald's adapter; its request bodies and herald's say the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

# pywa is a dev dependency (pyproject.toml): issue 14's test 1 needs it, so its
# absence fails here rather than skipping the test.
import pywa
from pywa.errors import WhatsAppError
from pywa.types.templates import TemplateLanguage

from herald.channels import (
    Accepted,
    AuthTemplateContent,
    Rejected,
    Submission,
    TemplateContent,
    TemplateSpec,
    TemplateState,
    TextContent,
)
from herald.channels._pace import PaceSettings
from herald.channels.clients import WhatsAppClient, WhatsAppSettings
from herald.sim.chat import FakeWhatsApp, FakeWhatsAppConfig, serve_app

TOKEN, SECRET, NUMBER_ID, TO = "EAAtest-token", "app-secret-1", "1065550001", "447700900123"
CODE = "493817"
#: The three messages, as pywa's send calls take them.
PYWA_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("send_message", {"text": "Your parcel is on its way"}),
    ("send_template", {"name": "order_update", "language": TemplateLanguage.ENGLISH_US,
                       "params": [{"type": "body", "parameters": [
                           {"type": "text", "text": "A-1042"}, {"type": "text", "text": "Tue"}]}]}),
    ("send_template", {"name": "login_code", "language": TemplateLanguage.ENGLISH_US, "params": [
        {"type": "body", "parameters": [{"type": "text", "text": CODE}]},
        {"type": "button", "sub_type": "url", "index": "0",
         "parameters": [{"type": "text", "text": CODE}]}]}),
]
HERALD_CONTENTS = [TextContent("Your parcel is on its way"),
                   TemplateContent("order_update", "en_US", ("A-1042", "Tue")),
                   AuthTemplateContent("login_code", "en_US", CODE)]


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeWhatsApp, str]]:
    fake = FakeWhatsApp(FakeWhatsAppConfig(token=TOKEN, app_secret=SECRET, rate=10_000,
                                           burst=100))
    fake.open_window(TO)
    async with serve_app(fake.app) as port:
        yield fake, f"http://127.0.0.1:{port}"


def _pywa_sends(base: str, calls: list[tuple[str, dict[str, Any]]], to: str) -> list[object]:
    session = httpx.Client(trust_env=False, timeout=10)
    try:
        client = pywa.WhatsApp(phone_id=NUMBER_ID, token=TOKEN, api_version=23.0, session=session)
        # pywa always targets graph.facebook.com; point its session at the fake on loopback.
        client.api._session.base_url = f"{base}/v23.0"
        answers: list[object] = []
        for method, kwargs in calls:
            try:
                answers.append(getattr(client, method)(to=to, **kwargs).id)
            except WhatsAppError as exc:
                answers.append(exc.code)
        return answers
    finally:
        session.close()


def _without_policy(body: Any) -> Any:
    """herald names the language policy (``deterministic``, the only one); pywa leaves it out."""
    if isinstance(body, dict):
        return {k: _without_policy(v) for k, v in body.items() if k != "policy"}
    if isinstance(body, list):
        return [_without_policy(v) for v in body]
    return body


async def test_pywa_passes_the_same_schema_check_and_gets_the_same_answers(
        fake: tuple[FakeWhatsApp, str]) -> None:
    server, base = fake
    pywa_answers = await asyncio.to_thread(_pywa_sends, base, PYWA_CALLS, TO)
    assert server.schema_failures == []
    assert all(isinstance(a, str) and a.startswith("wamid.") for a in pywa_answers)
    pywa_bodies = [server.sent[str(a)].body for a in pywa_answers]

    herald = WhatsAppClient(WhatsAppSettings(base, TOKEN, SECRET, pace=PaceSettings(rate=1000)))
    try:
        results = [await herald.submit(Submission(f"l{i}", NUMBER_ID, TO, c))
                   for i, c in enumerate(HERALD_CONTENTS)]
    finally:
        await herald.aclose()
    assert server.schema_failures == []
    assert all(isinstance(r, Accepted) for r in results)
    herald_bodies = [server.sent[r.provider_id].body for r in results if isinstance(r, Accepted)]
    assert [_without_policy(b) for b in herald_bodies] == pywa_bodies


async def test_pywa_and_herald_get_the_same_refusal_outside_the_window(
        fake: tuple[FakeWhatsApp, str]) -> None:
    _, base = fake
    closed = "447700900999"
    pywa_answers = await asyncio.to_thread(_pywa_sends, base, PYWA_CALLS[:1], closed)
    herald = WhatsAppClient(WhatsAppSettings(base, TOKEN, SECRET))
    try:
        result = await herald.submit(Submission("l1", NUMBER_ID, closed, HERALD_CONTENTS[0]))
    finally:
        await herald.aclose()
    assert isinstance(result, Rejected)
    assert pywa_answers == [result.provider_code] == [131047]


WABA = "102290129340398"


def _pywa_manages_templates(base: str) -> dict[str, Any]:
    from pywa.types import templates as t

    session = httpx.Client(trust_env=False, timeout=10)
    try:
        client = pywa.WhatsApp(phone_id=NUMBER_ID, token=TOKEN, api_version=23.0,
                               session=session, waba_id=WABA)
        client.api._session.base_url = f"{base}/v23.0"
        order = client.create_template(t.Template(
            name="order_update", category=t.TemplateCategory.UTILITY,
            language=t.TemplateLanguage.ENGLISH_US, parameter_format=t.ParamFormat.POSITIONAL,
            components=[t.BodyText("Your order {{1}} has shipped", "A-1042")]))
        login = client.create_template(t.Template(
            name="login_code", category=t.TemplateCategory.AUTHENTICATION,
            language=t.TemplateLanguage.ENGLISH_US,
            components=[t.AuthenticationBody(add_security_recommendation=True),
                        t.AuthenticationFooter(code_expiration_minutes=10),
                        t.Buttons(buttons=[t.CopyCodeOTPButton()])]))
        listed = client.api.get_templates(
            waba_id=WABA, fields=("name", "status"), filters={"status": "PENDING"},
            summary_fields=("total_count",), pagination={"limit": "100"})
        edited = client.update_template(order.id, new_components=[
            t.BodyText("Your order {{1}} is on its way", "A-1042")])
        deleted = client.delete_template("login_code", template_id=login.id)
        return {"listed": listed["data"], "edited": edited.success, "deleted": deleted.success}
    finally:
        session.close()


async def test_pywa_manages_templates_through_the_same_check(
        fake: tuple[FakeWhatsApp, str]) -> None:
    """pywa's template calls (create, list, edit, delete) pass the fake's
    template checks, and its template body is herald's."""
    server, base = fake
    done = await asyncio.to_thread(_pywa_manages_templates, base)
    assert server.schema_failures == []
    assert {t["name"] for t in done["listed"]} == {"order_update", "login_code"}
    assert done["edited"] and done["deleted"]
    assert set(server.templates) == {("order_update", "en_US")}
    pywa_edit = server.templates[("order_update", "en_US")]["components"]
    herald = WhatsAppClient(WhatsAppSettings(base, TOKEN, SECRET, business_account_id=WABA))
    try:
        created = await herald.create_template(TemplateSpec(
            "order_news", "en_US", "utility", "Your order {{1}} is on its way", ("A-1042",)))
    finally:
        await herald.aclose()
    assert isinstance(created, TemplateState) and server.schema_failures == []
    assert server.templates[("order_news", "en_US")]["components"] == pywa_edit
