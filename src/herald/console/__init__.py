"""The operator console: ``/console`` on herald's HTTP port (docs/console.md).

Server-rendered pages (Jinja2) over the admin API's views, updated in place
by htmx; every asset is shipped inside this package (``static/``), so the
console works on a network without internet. Sign-in with an admin key.
"""

from herald.console._app import CONSOLE_PREFIX, STATIC_DIR, STATIC_PREFIX, install_console
from herald.console._session import COOKIE, SESSION_TTL, Session, SessionCodec, console_key

__all__ = [
    "CONSOLE_PREFIX",
    "COOKIE",
    "SESSION_TTL",
    "STATIC_DIR",
    "STATIC_PREFIX",
    "Session",
    "SessionCodec",
    "console_key",
    "install_console",
]
