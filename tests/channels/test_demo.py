"""``herald serve --demo`` with its WhatsApp fake (docs/channels.md, "Try it"):
docs/channels.md's curl examples, as HTTP calls against a real demo on
loopback, and the fake's misbehaviour on command (``--whatsapp-*``)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.service.test_serve import HERALD, free_port

from herald.cli import main

#: The demo's recipient with no WhatsApp (herald.sim.chat.demo), and one made
#: to misbehave on the command line: its sends refused with 132001.
NOT_ON_WHATSAPP, REFUSED = "+447911123450", "+447911123458"
ORDER = {"channel": "whatsapp", "success": "read", "within": 60,
         "template": {"name": "order_update", "language": "en_US", "parameters": ["A-1042"]}}


def _chains_to(client: httpx.Client, *numbers: str) -> list[dict[str, Any]]:
    """docs/channels.md's first example to each number, once their chains are final."""
    ids = []
    for to in numbers:
        sent = client.post("/v1/messages", json={
            "to": to, "from": "herald", "text": "Your order A-1042 has shipped",
            "channels": [ORDER, {"channel": "sms"}]})
        assert sent.status_code == 202, sent.text
        assert (sent.json()["type"], sent.json()["status"]) == ("chain", "queued")
        assert sent.headers["location"] == f"/v1/messages/{sent.json()['id']}"
        ids.append(sent.json()["id"])
    deadline = time.monotonic() + 30  # statuses every 1 s; SMS receipts in 0.5-2 s
    while True:
        views: list[dict[str, Any]] = [client.get(f"/v1/messages/{i}").json() for i in ids]
        if all(v["done_at"] is not None for v in views):
            return views
        assert time.monotonic() < deadline, views
        time.sleep(0.2)


def test_the_demo_runs_the_docs_examples_and_its_fake_misbehaves_on_command(
        tmp_path: Path) -> None:
    http, smpp = free_port(), free_port()
    server = subprocess.Popen(
        [*HERALD, "serve", "--demo", "--http", f"127.0.0.1:{http}", "--smpp",
         f"127.0.0.1:{smpp}", "--whatsapp-reject", f"{REFUSED}:132001",
         "--whatsapp-duplicates", "2"],
        cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        banner = ""
        assert server.stdout is not None
        deadline = time.monotonic() + 60
        while "Stop with Ctrl+C" not in banner:
            assert time.monotonic() < deadline and server.poll() is None, banner
            banner += server.stdout.readline()
        env = dict(line.split("=", 1) for line in
                   (tmp_path / "herald-data" / "demo.env").read_text().splitlines()
                   if "=" in line and not line.startswith("#"))
        with httpx.Client(base_url=env["HERALD_API"], timeout=10, headers={
                "Authorization": f"Bearer {env['HERALD_API_KEY']}"}) as client:
            # WhatsApp, read: no SMS; no WhatsApp: the SMS delivers; --whatsapp-reject: too
            read, fallback, refused = _chains_to(client, "+447911123456", NOT_ON_WHATSAPP,
                                                 REFUSED)
            assert (read["status"], read["delivered_by"]) == ("delivered", 0)
            assert [leg["status"] for leg in read["legs"]] == ["read", "not_started"]
            assert read["legs"][0]["price"] == {"amount": "0.022000", "category": "utility"}
            assert (fallback["status"], fallback["delivered_by"]) == ("delivered", 1)
            assert fallback["legs"][0]["error"] == {
                "code": 0x20002, "name": "not_on_channel", "provider_code": "131026"}
            assert fallback["legs"][1]["status"] == "delivered"
            assert fallback["legs"][1]["message_id"] is not None
            assert (refused["status"], refused["delivered_by"]) == ("delivered", 1)
            assert refused["legs"][0]["error"]["provider_code"] == "132001"
            free_form = client.post("/v1/messages", json={
                "to": "+447911123456", "channels": [{"channel": "whatsapp", "text": "hi"}]})
            assert free_form.status_code == 422
            (error,) = free_form.json()["errors"]
            assert (error["field"], error["code"]) == ("channels[0].text", "window_closed")
            assert error["detail"].endswith("send an approved template instead")
            _templates_in_the_demo(client)
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=30)
    assert server.returncode == 0, out


def _templates_in_the_demo(client: httpx.Client) -> None:
    """docs/channels.md, "Templates": create (the demo approves at once), list,
    edit (reviewed again: pending), delete."""
    body = {"name": "order_update", "language": "en_US", "category": "utility",
            "body": "Your order {{1}} has shipped", "examples": ["A-1042"]}
    created = client.post("/v1/templates", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "approved" and created.json()["provider_id"]
    listed = client.get("/v1/templates").json()["templates"]
    assert [(t["name"], t["status"], t["reason"]) for t in listed] == [
        ("order_update", "approved", None)]
    edited = client.put("/v1/templates/order_update", json={
        "language": "en_US", "category": "utility", "body": "Your order {{1}} is on its way",
        "examples": ["A-1042"]})
    assert edited.status_code == 200 and edited.json()["status"] == "pending", edited.text
    assert client.delete("/v1/templates/order_update").status_code == 204
    assert client.get("/v1/templates").json()["templates"] == []


@pytest.mark.parametrize(("args", "complaint"), [
    (["--whatsapp-throttle", "1"], "need --demo"),
    (["--demo", "--whatsapp-duplicates", "0"], "--whatsapp-duplicates: must be 1..10"),
    (["--demo", "--whatsapp-reject", "+447911123458"], "--whatsapp-reject: NUMBER:CODE"),
])
def test_the_fakes_misbehaviour_options_are_checked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
        complaint: str) -> None:
    config = tmp_path / "herald.toml"
    config.write_text("")  # a deployment's file: its channels are its own
    assert main(["serve", "--config", str(config), "--data-dir", str(tmp_path / "d"),
                 *args]) == 2
    assert complaint in capsys.readouterr().err
