"""herald.toml's [channels.*] (docs/channels.md, "Configuration")."""

from __future__ import annotations

from pathlib import Path

import pytest

from herald.config import ConfigError, parse_config

WHATSAPP = {"base_url": "http://127.0.0.1:9", "token_env": "WA_TOKEN",
            "app_secret_env": "WA_SECRET", "senders": {"1065550001": "acme"},
            "prices": {"utility": "0.0085", "authentication": "0.0078"}}
ENV = {"WA_TOKEN": "t", "WA_SECRET": "s", "VB_TOKEN": "v", "VB_SECRET": "w"}


def test_the_documented_example_parses_into_prices_in_micro_units() -> None:
    example = Path(__file__).resolve().parents[2] / "herald.example.toml"
    text = example.read_text()
    start = text.index("# [channels.whatsapp]")
    block = "\n".join(line.removeprefix("# ").removeprefix("#")
                      for line in text[start:].splitlines())
    import tomllib

    channels = tomllib.loads(block)["channels"]
    config = parse_config({"channels": channels}, env={
        "HERALD_WHATSAPP_TOKEN": "tok-123", "HERALD_WHATSAPP_APP_SECRET": "sec-456",
        "HERALD_VIBER_TOKEN": "v", "HERALD_VIBER_SECRET": "w",
        "HERALD_WHATSAPP_VERIFY_TOKEN": "vt-789"})
    settings = config.channels
    assert settings is not None
    assert settings.prices == {("whatsapp", "utility"): 8_500,
                               ("whatsapp", "authentication"): 7_800,
                               ("whatsapp", "marketing"): 25_000, ("viber", "message"): 6_000}
    assert settings.whatsapp_senders == {"1065550001": "acme"}
    assert settings.viber is not None and settings.viber_senders == {"AcmeShop": "acme"}
    assert settings.whatsapp is not None and settings.whatsapp.token == "tok-123"
    assert settings.whatsapp_verify_token == "vt-789"
    assert (settings.viber_pace.rate, settings.viber_pace.burst) == (50, 2)
    assert not {"tok-123", "sec-456", "vt-789"} & set(repr(settings).split("'"))  # never shown


def test_no_channels_means_sms_only() -> None:
    assert parse_config({}).channels is None


@pytest.mark.parametrize(("whatsapp", "path"), [
    ({**WHATSAPP, "prices": {"utility": 0.0085}}, "channels.whatsapp.prices.utility"),
    ({**WHATSAPP, "prices": {"utility": "0.00000001"}}, "channels.whatsapp.prices.utility"),
    ({**WHATSAPP, "prices": {"promo": "0.01"}}, "channels.whatsapp.prices.promo"),
    ({**WHATSAPP, "token_env": "NOT_SET"}, "channels.whatsapp.token_env"),
    ({**WHATSAPP, "senders": {"1065550001": ""}}, "channels.whatsapp.senders.1065550001"),
    ({**WHATSAPP, "colour": "blue"}, "channels.whatsapp.colour"),
])
def test_bad_settings_are_refused_naming_them(whatsapp: dict[str, object], path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"channels": {"whatsapp": whatsapp}}, env=ENV)
    assert str(caught.value).startswith(path), str(caught.value)


def test_whatsapp_pacing_is_configurable_and_below_the_limit_by_default() -> None:
    from herald.channels._pace import PROVIDER_RATE

    default = parse_config({"channels": {"whatsapp": WHATSAPP}}, env=ENV).channels
    assert default is not None and default.whatsapp is not None
    assert default.whatsapp.pace.rate < PROVIDER_RATE and default.whatsapp.pace.burst == 2
    chosen = parse_config({"channels": {"whatsapp": {**WHATSAPP, "rate": 250, "burst": 5}}},
                          env=ENV).channels
    assert chosen is not None and chosen.whatsapp is not None
    assert (chosen.whatsapp.pace.rate, chosen.whatsapp.pace.burst) == (250, 5)
    with pytest.raises(ConfigError, match=r"channels\.whatsapp\.burst"):
        parse_config({"channels": {"whatsapp": {**WHATSAPP, "burst": 0.5}}}, env=ENV)
    with pytest.raises(ConfigError, match=r"channels\.whatsapp\.rate"):
        parse_config({"channels": {"whatsapp": {**WHATSAPP, "rate": "fast"}}}, env=ENV)


async def test_viber_pacing_is_configurable_and_reaches_the_adapter(tmp_path: Path) -> None:
    from herald.channels._pace import DEFAULT_BURST, DEFAULT_RATE
    from herald.channels.clients import ViberClient
    from herald.chat import ChatService
    from herald.store import SQLiteConfig, SQLiteStore

    viber = {"base_url": "http://127.0.0.1:9", "token_env": "VB_TOKEN",
             "secret_env": "VB_SECRET", "senders": {"AcmeShop": "acme"}}
    default = parse_config({"channels": {"viber": viber}}, env=ENV).channels
    assert default is not None
    assert (default.viber_pace.rate, default.viber_pace.burst) == (DEFAULT_RATE, DEFAULT_BURST)
    chosen = parse_config({"channels": {"viber": {**viber, "rate": 20, "burst": 3}}},
                          env=ENV).channels
    assert chosen is not None
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    chat = ChatService(store, chosen)
    try:
        adapter = chat.adapters["viber"]
        assert isinstance(adapter, ViberClient)
        waits = [adapter.pacer.take("AcmeShop", 100.0) for _ in range(4)]
        assert waits[:3] == [0, 0, 0] and waits[3] == pytest.approx(1 / 20)  # burst 3, 20/s
    finally:
        await chat.aclose()
        await store.aclose()
    with pytest.raises(ConfigError, match=r"channels\.viber\.rate"):
        parse_config({"channels": {"viber": {**viber, "rate": 0}}}, env=ENV)
