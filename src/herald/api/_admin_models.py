"""The admin API's JSON shapes, for ``/openapi.json`` (and the tests' checks).

Request bodies are checked by :mod:`herald.admin` (the same rules as the
``herald accounts`` command, each problem naming its field); these models
describe them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AdminAccount",
    "AdminAccountCreate",
    "AdminAccountCreated",
    "AdminAccountList",
    "AdminApiKey",
    "AdminAudit",
    "AdminAuditEntry",
    "AdminBalance",
    "AdminBalanceChange",
    "AdminConnector",
    "AdminConnectorList",
    "AdminControls",
    "AdminControlsChange",
    "AdminIssuedKey",
    "AdminIssuedLogin",
    "AdminMargin",
    "AdminMargins",
    "AdminNumberTable",
    "AdminNumbers",
    "AdminOptOut",
    "AdminOptOutChange",
    "AdminOptOutChanged",
    "AdminOptOutImport",
    "AdminOptOutList",
    "AdminPrice",
    "AdminPriceImport",
    "AdminPriceList",
    "AdminPriceListInfo",
    "AdminPriceLists",
    "AdminSettings",
    "AdminSmppLogin",
    "AdminSmppLoginRequest",
    "AdminSmppReset",
    "AdminTableImport",
    "AdminTopUp",
]

_EVENTS: dict[str, Any] = {"anyOf": [
    {"type": "string", "enum": ["all", "final", "none"]},
    {"type": "array", "items": {"type": "string", "enum": [
        "sent", "delivered", "undelivered", "expired", "rejected", "failed", "cancelled"]}},
]}  # fmt: skip


class AdminSettings(BaseModel):
    """An account's settings; in a change, only those given change."""

    model_config = ConfigDict(extra="forbid")

    rate_limit: float | Literal["unlimited"] | None = Field(
        None, description="Messages per second over HTTP and SMPP (default 100).")
    bind_limit: int | None = Field(None, ge=0, le=1000,
                                   description="Simultaneous SMPP binds (default 4).")
    callback_url: str | None = Field(
        None, description="Default webhook URL for status events (and inbound, unless"
        " inbound_url); null removes it.")
    callback_events: Any = Field(
        None, description='Status changes posted: "final" (the default), "all", "none" or a'
        " list of statuses.", json_schema_extra=_EVENTS)
    inbound: bool | None = Field(None, description="Post inbound messages (default true).")
    inbound_url: str | None = Field(None, description="Webhook URL for inbound messages"
                                    " (null: the callback URL).")
    webhook_batch: int | None = Field(None, ge=1, description="Events per POST (default 1).")
    webhook_batch_wait_ms: float | None = Field(
        None, ge=0, description="Milliseconds a batch waits for more events (default 0).")
    priority: Literal["otp", "transactional", "bulk", "marketing"] | None = Field(
        None, description="The class of the account's messages that name none; null: the"
        " default (transactional).")


class AdminAccountCreate(AdminSettings):
    """A new account: its name and any settings (the others take their defaults)."""

    name: str = Field(description="1..64 letters, digits, '.', '_', '-'.")


class AdminApiKey(BaseModel):
    key_id: str
    created_at: str
    revoked_at: str | None


class AdminSmppLogin(BaseModel):
    system_id: str
    created_at: str = Field(description="When its current password was issued.")


class AdminAccount(BaseModel):
    """An account, its settings and credentials (never a secret)."""

    id: int
    name: str
    created_at: str
    disabled: bool
    rate_limit: float | Literal["unlimited"]
    bind_limit: int
    callback_url: str | None
    callback_events: str = Field(description='"final", "all", "none" or statuses, comma'
                                 " separated.")
    inbound: bool
    inbound_url: str | None
    webhook_batch: int
    webhook_batch_wait_ms: float
    priority: str | None = Field(description="null: the default class (transactional).")
    api_keys: list[AdminApiKey]
    smpp_logins: list[AdminSmppLogin]


class AdminAccountList(BaseModel):
    accounts: list[AdminAccount]


class AdminAccountCreated(BaseModel):
    account: AdminAccount
    api_key: str = Field(description="The account's first API key; shown this once.")
    webhook_secret: str | None = Field(description="Its webhook signing secret.")


class AdminIssuedKey(BaseModel):
    key_id: str
    api_key: str = Field(description="Shown this once; herald keeps only a hash.")


class AdminSmppLoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system_id: str = Field(description="1..15 printable ASCII characters, no spaces.")
    password_length: int = Field(8, ge=8, le=64, description="Default 8: SMPP 3.4's limit,"
                                 " which many clients enforce.")


class AdminSmppReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password_length: int = Field(8, ge=8, le=64)


class AdminIssuedLogin(BaseModel):
    system_id: str
    password: str = Field(description="Shown this once; herald keeps only a hash.")


class AdminConnector(BaseModel):
    """An upstream connector: its configuration (no password) and its binds now."""

    name: str
    host: str
    port: int
    system_id: str
    bind_type: str
    binds: int = Field(description="Binds configured (that may submit).")
    bound: int | None = Field(description="Binds up now; null when dispatch is not reporting.")
    tps: float | Literal["unlimited"]
    window: int
    state: Literal["up", "partial", "down", "unknown"]


class AdminConnectorList(BaseModel):
    connectors: list[AdminConnector]
    reporting: bool = Field(description="Whether dispatch reports its binds (false: its"
                            " process is not running or not reporting).")


class AdminConnectorState(BaseModel):
    """An operator's word on routing to a connector (docs/routing.md)."""

    connector: str
    disabled: bool = Field(description="No rule or route sends new messages to it.")
    reason: str | None
    changed_at: str
    generation: int | None = Field(None, description="The routing generation of the change"
                                   " (answers to disable and enable).")


class AdminConnectorStateChange(BaseModel):
    reason: str | None = Field(None, max_length=500, description="Why, for whoever looks next.")


class AdminRoutesImport(BaseModel):
    """A routes file (the format of `herald routes import`). Buy prices are
    each connector's buy list (`herald prices import --connector`): a body
    with `prices` is refused (422 naming it)."""

    routes: str = Field(description="The routes file, TOML (docs/routing.md).")
    source: str | None = Field(None, max_length=200, description="A name for where they came"
                               " from (default: api).")


class AdminRoutesImported(BaseModel):
    rules: int
    generation: int


class AdminRouting(BaseModel):
    generation: int = Field(description="Of the last change to routes or connector states.")
    source: str | None = Field(description="null: no rules; the [[routes]] of herald.toml"
                               " decide.")
    imported_at: str | None
    rules: list[str] = Field(description="The rules' names, in the order they are tried.")
    connectors: list[AdminConnectorState] = Field(description="Connector states recorded.")


class AdminNumberTable(BaseModel):
    table: Literal["plan", "ported"]
    entries: int
    octets: int
    imported_at: str
    generation: int


class AdminNumbers(BaseModel):
    generation: int = Field(description="Of the last change to the tables.")
    in_use: int | None = Field(description="The generation this herald process checks"
                               " destinations against (it catches up within 2 s).")
    tables: list[AdminNumberTable]


class AdminTableImport(BaseModel):
    table: Literal["plan", "ported"]
    entries: int
    networks: int
    octets: int
    generation: int


class AdminAuditEntry(BaseModel):
    seq: int
    at: str
    actor: str = Field(description="key:<admin key name> or cli:<os user>.")
    action: str = Field(examples=["account.update"])
    target: str = Field(examples=["account:acme"])
    changes: dict[str, Any] = Field(description="The fields changed, with their new values;"
                                    " a secret only as issued/reset/revoked/removed.")


class AdminAudit(BaseModel):
    entries: list[AdminAuditEntry] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as cursor for older entries.")


_LIST = "a list given replaces the list; an empty list restricts nothing"


class AdminControlsChange(BaseModel):
    """Controls to change (docs/accounts.md); those not given stay."""

    model_config = ConfigDict(extra="forbid")

    daily_quota: int | None = Field(None, ge=0, description="Messages (or segments) accepted"
                                    " per UTC day; null: no quota.")
    quota_unit: Literal["messages", "segments"] | None = Field(
        None, description="What the daily quota counts (default messages).")
    senders: list[str] | None = Field(None, description="Sender ids the account may use, exact"
                                      " or a prefix ending in '*'; " + _LIST + ".")
    sender_rules: list[str] | None = Field(None, description="COUNTRY:KIND entries (KIND:"
                                           " alphanumeric, numeric, short_code, international,"
                                           " registered); " + _LIST + ".")
    countries: list[str] | None = Field(None, description="Destination countries allowed"
                                        " (ISO 3166-1 alpha-2); " + _LIST + ".")
    api_allow: list[str] | None = Field(None, description="Client networks (CIDR) the"
                                        " account's API keys may be used from; " + _LIST + ".")
    smpp_allow: list[str] | None = Field(None, description="Client networks (CIDR) its SMPP"
                                         " logins may bind from; " + _LIST + ".")


class AdminControls(BaseModel):
    """An account's controls (docs/accounts.md); an empty list restricts nothing."""

    daily_quota: int | None
    quota_unit: Literal["messages", "segments"]
    senders: list[str]
    sender_rules: list[str]
    countries: list[str]
    api_allow: list[str]
    smpp_allow: list[str]


class AdminOptOut(BaseModel):
    number: str = Field(examples=["+4917012345678"])
    opted_out_at: str
    source: str = Field(description="keyword (a STOP from the handset), import, cli or api.")


class AdminOptOutList(BaseModel):
    opt_outs: list[AdminOptOut] = Field(description="By number.")
    next_cursor: str | None = Field(description="Pass as cursor for the next page.")


class AdminOptOutChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    numbers: list[str] = Field(description="E.164 numbers ('+' and spaces are ignored).")


class AdminOptOutChanged(BaseModel):
    numbers: int = Field(description="Numbers given.")
    changed: int = Field(description="Of them, those that were not opted out before.")


class AdminOptOutImport(BaseModel):
    imported: int = Field(description="Numbers in the file.")
    changed: int = Field(description="Of them, those newly opted out.")


# -- billing (docs/billing.md): money is a string of a decimal, kept exact -----------------


class AdminPriceListInfo(BaseModel):
    side: Literal["sell", "buy"] = Field(description="sell: an account's; buy: a connector's.")
    owner: str = Field(description="The account's or the connector's name.")
    entries: int
    imported_at: str


class AdminPriceLists(BaseModel):
    generation: int = Field(description="Of the last change to any price list.")
    price_lists: list[AdminPriceListInfo]


class AdminPrice(BaseModel):
    destination: str = Field(description="MCC/MNC (26201), country code (+49) or default.")
    price: str = Field(description="Per segment, a decimal of up to 10 places.",
                       examples=["0.0425"])


class AdminPriceList(BaseModel):
    side: Literal["sell", "buy"]
    owner: str
    imported_at: str
    entries: list[AdminPrice] = Field(description="Networks, countries, then the default.")


class AdminPriceImport(BaseModel):
    side: Literal["sell", "buy"]
    owner: str
    entries: int
    generation: int


class AdminBalance(BaseModel):
    """An account's money, in the price lists' currency, 6 decimal places."""

    account: str
    balance: str = Field(examples=["12.500000"])
    credit_limit: str = Field(description="How far below zero the balance may go.")
    available: str = Field(description="balance + credit_limit: what it may still spend.")
    refund_policy: Literal["none", "rejected", "undelivered"]
    billed: bool = Field(description="Whether it has a sell list (else it is not charged).")


class AdminTopUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: str = Field(description="A decimal > 0 of at most 6 places, as a JSON string"
                        " (a JSON number is refused: it is not exact).", examples=["100.50"])


class AdminBalanceChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credit_limit: str | None = Field(None, description="A decimal >= 0 of at most 6 places,"
                                     " as a JSON string; 0: prepaid only.")
    refund_policy: Literal["none", "rejected", "undelivered"] | None = Field(
        None, description="Which failed messages are refunded (docs/billing.md).")


class AdminMargin(BaseModel):
    key: str = Field(description="The account, connector ((not sent) for messages never"
                     " sent) or country code (+49); total in `total`.")
    messages: int
    revenue: str = Field(description="Sell less refunds.")
    cost: str = Field(description="From the buy lists; known costs only.")
    margin: str
    margin_percent: str | None = Field(description="Of revenue, one place; null without"
                                       " revenue.")
    unpriced: int = Field(description="Messages sent through a connector without a buy price.")


class AdminMargins(BaseModel):
    by: Literal["account", "connector", "country"]
    from_: str = Field(alias="from")
    to: str
    rows: list[AdminMargin]
    total: AdminMargin
