"""A node's identity on PostgreSQL: one name per process life (private).

One name serves every row a node owns: its registration and bind slots
(:class:`~herald.cluster.LeaseKeeper`) and its dispatch claims (the store's
``dispatch_queue.owner``). The leader requeues the claims of a node whose
registration ended under that same name (``herald.workers._leases``), so the
two must agree: both take :func:`node_id` unless told otherwise.
"""

from __future__ import annotations

import os
import secrets
import socket

__all__ = ["new_node_id", "node_id"]

_current: tuple[int, str] | None = None  # (pid, name): a forked child makes its own


def new_node_id() -> str:
    """A fresh name: host, pid and a random part, so a restarted process never
    takes the slots or claims its previous life held for its own."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def node_id() -> str:
    """This process's name (the same at every call in one process life)."""
    global _current
    if _current is None or _current[0] != os.getpid():
        _current = (os.getpid(), new_node_id())
    return _current[1]
