"""A claimed message while dispatch holds it (private)."""

from __future__ import annotations

import enum

from herald.smpp.pdus import SubmitSm
from herald.store import Message

__all__ = ["Failing", "Job"]


class Failing(enum.Enum):
    """Why a job is leaving its connector (decided once its parts in flight are answered)."""

    PERMANENT = "permanent"  # the upstream refused a part for good
    TRANSIENT = "transient"  # retries on this connector are used up
    DOWN = "down"  # the connector lost its binds with the job queued
    EXPIRED = "expired"  # the validity ended while the job waited
    LAPSED = "lapsed"  # its claim's lease ended: another node may hold it now


class Job:
    """One claimed message: where it is in its route and what its parts did.

    ``gen`` changes whenever the job moves to another connector (or leaves
    dispatch), so queue entries and responses of an earlier assignment are
    recognised and ignored. ``pdus`` are the current connector's parts;
    ``accepted`` counts those answered ESME_ROK, ``inflight`` those awaiting an
    answer. ``failing`` is set when a part makes the job leave its connector;
    the decision waits until ``inflight`` is 0.
    """

    __slots__ = (
        "accepted",
        "connector",
        "down_seen",
        "failing",
        "failures",
        "gen",
        "inflight",
        "last_status",
        "lease_until",
        "message",
        "pdus",
        "permanent_status",
        "pos",
        "retries",
        "route",
        "segments",
        "sent",
        "throttles",
        "unsendable",
    )

    def __init__(self, message: Message, route: tuple[str, ...], lease_until: float) -> None:
        self.message = message
        self.route = route
        self.pos = -1  # index in route of the current connector
        self.connector: str | None = None
        self.pdus: tuple[SubmitSm, ...] = ()
        self.segments = message.segments  # the count the store holds
        self.gen = 0
        self.accepted = 0
        self.inflight = 0
        self.retries = 0  # transient failures on the current connector
        self.throttles = 0  # throttled answers, for the part's own backoff
        self.failing: Failing | None = None
        self.failures = 0  # failed submits noted for its timeline (bounded)
        self.last_status: int | None = None  # the last error status any upstream gave
        self.permanent_status: int | None = None  # the last permanent refusal
        self.down_seen = False  # a connector of the route was down
        self.unsendable = False  # a connector of the route could not carry the body
        self.sent = False  # a first part went upstream (latency recorded)
        self.lease_until = lease_until

    @property
    def id(self) -> str:
        return self.message.id

    def reset_parts(self, pdus: tuple[SubmitSm, ...]) -> int:
        """Start over on a (new) connector with ``pdus``; returns the new generation."""
        self.gen += 1
        self.pdus = pdus
        self.accepted = 0
        self.retries = 0
        self.throttles = 0
        self.failing = None
        return self.gen

    def retire(self) -> None:
        """The job leaves dispatch: every queued entry of it becomes stale."""
        self.gen += 1
        self.failing = None
        self.connector = None
