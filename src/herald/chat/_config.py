"""herald.toml's ``[channels.whatsapp]`` and ``[channels.viber]`` (docs/channels.md).

Secrets come from the environment or inline (``token_env`` / ``token``, the
same for ``app_secret`` and ``secret``), as connectors' passwords do. Prices
are decimal strings in the account's currency, kept as integer micro-units.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from herald.channels import HmacScheme, ViberSettings
from herald.channels._pace import DEFAULT_BURST, DEFAULT_RATE, PaceSettings
from herald.channels.clients import WhatsAppSettings
from herald.chat._service import ChatSettings
from herald.config import ConfigError, _Table

__all__ = ["parse_channels"]

_MICROS = Decimal(1_000_000)
_WHATSAPP_CATEGORIES = ("marketing", "utility", "authentication", "service")


def _secret(t: _Table, key: str, env: Mapping[str, str]) -> str:
    inline = t.get(key, str, None)
    var = t.get(f"{key}_env", str, None)
    if (inline is None) == (var is None):
        raise ConfigError(t.at(key), f"give exactly one of {key} or {key}_env")
    if var is not None:
        if var not in env:
            raise ConfigError(t.at(f"{key}_env"), f"environment variable {var} is not set")
        return env[var]
    return str(inline)


def _micros(t: _Table, key: str, value: object) -> int:
    try:
        amount = Decimal(str(value)) * _MICROS
    except InvalidOperation:
        raise ConfigError(t.at(key), f"must be a decimal price, got {value!r}") from None
    if not isinstance(value, str) or amount != amount.to_integral_value() or amount < 0:
        raise ConfigError(t.at(key), "must be a decimal string of at most 6 decimals, e.g."
                          " \"0.0085\"")
    return int(amount)


def _senders(t: _Table) -> dict[str, str]:
    senders = t.get("senders", dict, {})
    for sender, account in senders.items():
        if not isinstance(account, str) or not account:
            raise ConfigError(f"{t.at('senders')}.{sender}", "must name an account")
    return dict(senders)


def _pace(t: _Table) -> PaceSettings:
    """``rate`` (sends a second per sending number) and ``burst``."""
    return PaceSettings(t.number("rate", DEFAULT_RATE, 0.1, 10_000.0),
                        t.number("burst", DEFAULT_BURST, 1.0, 10_000.0))


def parse_channels(data: Any, env: Mapping[str, str]) -> ChatSettings | None:
    """The ``[channels]`` table (None: no chat channels)."""
    if data is None:
        return None
    top = _Table(data, "channels")
    prices: dict[tuple[str, str], int] = {}
    whatsapp = viber = None
    viber_pace = PaceSettings()
    verify_token: str | None = None
    wa_senders: dict[str, str] = {}
    vb_senders: dict[str, str] = {}
    raw = top.get("whatsapp", dict, None)
    if raw is not None:
        t = _Table(raw, "channels.whatsapp")
        token, app_secret = _secret(t, "token", env), _secret(t, "app_secret", env)
        # Pacing per phone number id (docs/channels.md, "Pacing"): below the
        # provider's 80/s by default, so sends that arrive bunched still fit.
        pace = _pace(t)
        try:
            whatsapp = WhatsAppSettings(
                t.get("base_url", str, "https://graph.facebook.com"), token, app_secret,
                t.get("api_version", str, "v23.0"), pace=pace,
                business_account_id=t.get("business_account_id", str, None))
        except ValueError as exc:
            raise ConfigError("channels.whatsapp", str(exc)) from None
        wa_senders = _senders(t)
        verify_token = (_secret(t, "verify_token", env)
                        if "verify_token" in t.data or "verify_token_env" in t.data else None)
        for category, price in t.get("prices", dict, {}).items():
            if category not in _WHATSAPP_CATEGORIES:
                raise ConfigError(f"{t.at('prices')}.{category}",
                                  f"one of {', '.join(_WHATSAPP_CATEGORIES)}")
            prices[("whatsapp", category)] = _micros(t, f"prices.{category}", price)
        t.finish()
    raw = top.get("viber", dict, None)
    if raw is not None:
        t = _Table(raw, "channels.viber")
        token, secret = _secret(t, "token", env), _secret(t, "secret", env)
        try:
            viber = ViberSettings(
                t.required("base_url", str), token, secret,
                send_path=t.get("send_path", str, "/messages"),
                scheme=HmacScheme(t.get("signature_header", str, "X-Viber-Content-Signature")))
        except ValueError as exc:
            raise ConfigError("channels.viber", str(exc)) from None
        viber_pace = _pace(t)  # per sender name, at the provider's contracted rate
        vb_senders = _senders(t)
        price = t.get("price", str, None)
        if price is not None:
            prices[("viber", "message")] = _micros(t, "price", price)
        t.finish()
    poll = top.number("poll_interval", 0.2, 0.01, 10.0)
    top.finish()
    return ChatSettings(whatsapp, wa_senders, viber, vb_senders, prices, poll_interval=poll,
                        whatsapp_verify_token=verify_token, viber_pace=viber_pace)
