"""The pumping defence, live (docs/fraud.md, "Live"): :class:`LiveDefence` asks
the engine (:mod:`herald.fraud`) about every verification and, when enabled,
every OTP message, records each decision, and feeds the engine receipts and
conversions; rebuilt from the store after a restart."""

from herald.defence._live import (
    HISTORY,
    POLL_INTERVAL,
    SETTINGS_TTL,
    SPEND_WINDOW,
    LiveDefence,
    Screening,
    country_of,
)

__all__ = ["HISTORY", "POLL_INTERVAL", "SETTINGS_TTL", "SPEND_WINDOW", "LiveDefence",
           "Screening", "country_of"]
