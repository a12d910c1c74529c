"""npm ``smpp`` 0.5.1 (node) as an SMPP client and as an SMPP server.

Client: ``tests/peers/node/client.js`` runs once per call. It binds, submits
the given messages (at most ``window`` in flight), answers every deliver_sm,
waits for ``expect_deliver`` of them, unbinds and exits; every step is one JSON
line, parsed here into a ``NodeClientRun``.

    run = run_node_client(port, "esme1", "secret12", [
        NodeMessage("4915112345", text="Hello {world}", registered_delivery=1),
        NodeMessage("4915112345", text="Grüße 😀"),          # node picks UCS-2
    ], expect_deliver=1)
    run.submit_resps[0].message_id, run.delivered[0].receipted_message_id

From a coroutine (server under test on the same loop): ``await
run_node_client_async(...)``. With ``check=True`` (default) a run that did not
finish raises: ``PeerRefused`` (bind refused, ``.status``), ``PeerTimeout``,
``PeerExited`` (connection lost) or ``PeerError``, each with the event log.

Server: ``tests/peers/node/server.js`` as an SMSC for herald's client (or Kannel):

    with NodeSmppServer(accounts={"esme1": "secret12"}) as smsc:
        ... connect to smsc.port ...
        (sub,) = smsc.submits(timeout=5)
        smsc.deliver("4900000", text="MO text", source_addr="4915112345")

How node-smpp encodes text (data_coding 1 for GSM!) and its other quirks are in
tests/peers/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import subprocess
import tempfile
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from . import executable, node_smpp_dir
from .base import (
    LOOPBACK,
    PeerError,
    PeerExited,
    PeerRefused,
    PeerStartError,
    PeerTimeout,
    Recorder,
    SmPdu,
    SubmitResp,
    forbid_event_loop,
    stop_process,
    tail,
)

__all__ = [
    "NodeChange", "NodeClientRun", "NodeMessage", "NodeSmppServer", "NodeSubmit", "run_node_client",
    "run_node_client_async",
]

# Extra seconds the Python side waits beyond the script's own timeout, for node's
# startup (about 50 ms here) and the last lines to drain.
NODE_GRACE = 5.0
# Bound on the server script printing its port.
SERVER_START_TIMEOUT = 10.0
# Exit codes of client.js.
EXIT_DONE, EXIT_BIND_REFUSED, EXIT_TIMEOUT, EXIT_CLOSED = 0, 2, 3, 4
# Lines of the event log quoted in an error.
EVENT_TAIL = 12


@dataclass(frozen=True)
class NodeMessage:
    """One submit_sm for client.js.

    ``text`` goes through node-smpp's own encoder: with ``data_coding=None`` it
    picks GSM 03.38 (sent as data_coding **1**), Latin-1 (3) or UCS-2 (8).
    ``octets`` are sent verbatim (set ``data_coding``). ``udh`` is prepended
    and sets esm_class 0x40; ``payload=True`` uses message_payload instead of
    short_message; ``tlvs`` are more node-smpp fields by name (``sar_msg_ref_num``,
    ``sar_total_segments``, ``sar_segment_seqnum``, ...).
    """

    destination_addr: str
    text: str | None = None
    octets: bytes | None = None
    source_addr: str = ""
    data_coding: int | None = None
    esm_class: int = 0
    registered_delivery: int = 0
    udh: bytes | None = None
    payload: bool = False
    tlvs: tuple[tuple[str, int | str], ...] = ()

    def __post_init__(self) -> None:
        if (self.text is None) == (self.octets is None):
            raise ValueError("NodeMessage needs exactly one of text and octets")

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "destination_addr": self.destination_addr, "source_addr": self.source_addr,
            "esm_class": self.esm_class, "registered_delivery": self.registered_delivery,
        }
        if self.text is not None:
            spec["text"] = self.text
        if self.octets is not None:
            spec["hex"] = self.octets.hex()
        if self.data_coding is not None:
            spec["data_coding"] = self.data_coding
        if self.udh is not None:
            spec["udh_hex"] = self.udh.hex()
        if self.payload:
            spec["payload"] = True
        spec.update(dict(self.tlvs))
        return spec


@dataclass(frozen=True)
class NodeChange:
    """One cancel_sm or replace_sm for client.js, sent after every submit is
    answered. ``message`` is the index of a submitted message whose id it names
    (``None``: an empty message_id); ``fields`` are more node-smpp fields by
    name (``source_addr``, ``destination_addr``, ``validity_period``, ...);
    ``short_message`` is sent verbatim (replace_sm)."""

    command: str  # "cancel_sm" | "replace_sm"
    message: int | None = None
    fields: tuple[tuple[str, int | str], ...] = ()
    short_message: bytes | None = None

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"command": self.command, "message": self.message,
                                "fields": dict(self.fields)}
        if self.short_message is not None:
            spec["short_message_hex"] = self.short_message.hex()
        return spec


def sm_from_event(event: Mapping[str, Any]) -> SmPdu:
    """The SmPdu of a submit_sm / deliver_sm event line (octets parsed by common.js)."""
    return SmPdu(
        source_addr=event["source_addr"], destination_addr=event["destination_addr"],
        esm_class=event["esm_class"], data_coding=event["data_coding"],
        short_message=bytes.fromhex(event["short_message_hex"]),
        tlvs=tuple((int(tag), bytes.fromhex(value)) for tag, value in event["tlvs"]),
        registered_delivery=event["registered_delivery"],
        source_addr_ton=event["source_addr_ton"], source_addr_npi=event["source_addr_npi"],
        dest_addr_ton=event["dest_addr_ton"], dest_addr_npi=event["dest_addr_npi"],
        protocol_id=event["protocol_id"], service_type=event["service_type"],
        sequence_number=event["sequence_number"], text=event.get("text"),
        raw=bytes.fromhex(event["pdu_hex"]) if event.get("pdu_hex") else None,
    )


@dataclass(frozen=True)
class NodeClientRun:
    """Everything one client.js run did, in order."""

    returncode: int
    events: tuple[dict[str, Any], ...]
    stderr: str

    def of(self, kind: str) -> tuple[dict[str, Any], ...]:
        return tuple(e for e in self.events if e.get("event") == kind)

    @property
    def bind_status(self) -> int | None:
        binds = self.of("bind_resp")
        return int(binds[0]["command_status"]) if binds else None

    @property
    def sent(self) -> tuple[SmPdu, ...]:
        """The submit_sm PDUs as node-smpp encoded them, in submission order."""
        ordered = sorted(self.of("submit_sm"), key=lambda e: e["index"])
        return tuple(sm_from_event(e) for e in ordered)

    @property
    def submit_resps(self) -> tuple[SubmitResp, ...]:
        """One per message, in submission order (``index``)."""
        resps = sorted(self.of("submit_sm_resp"), key=lambda e: e["index"])
        return tuple(
            SubmitResp(e["command_status"], e.get("message_id"), e["sequence_number"], e["index"])
            for e in resps
        )

    @property
    def change_statuses(self) -> tuple[int, ...]:
        """The command_status of each cancel_sm / replace_sm response, in order."""
        return tuple(int(e["command_status"])
                     for e in sorted(self.of("change_resp"), key=lambda e: e["index"]))

    @property
    def delivered(self) -> tuple[SmPdu, ...]:
        return tuple(sm_from_event(e) for e in self.of("deliver_sm"))

    def event_log(self) -> str:
        lines = [json.dumps(e, ensure_ascii=False)[:300] for e in self.events[-EVENT_TAIL:]]
        return "\n".join(["==> client.js events (last lines)", *lines,
                          "==> client.js stderr", self.stderr.strip()[-2000:]])

    def check(self) -> NodeClientRun:
        """Raise unless the run finished (bound, all answered, all awaited deliver_sm)."""
        if self.returncode == EXIT_DONE:
            return self
        logs = self.event_log()
        if self.returncode == EXIT_BIND_REFUSED:
            status = self.bind_status if self.bind_status is not None else -1
            raise PeerRefused(f"npm smpp client: bind refused with 0x{status:08X}",
                              status=status, logs=logs)
        if self.returncode == EXIT_TIMEOUT:
            raise PeerTimeout("npm smpp client: timed out before finishing", logs=logs)
        if self.returncode == EXIT_CLOSED:
            raise PeerExited("npm smpp client: connection closed before finishing", logs=logs)
        raise PeerError(f"npm smpp client exited with {self.returncode}", logs=logs)


def _client_config(
    host: str, port: int, system_id: str, password: str, messages: Sequence[NodeMessage],
    expect_deliver: int, bind: str, window: int, timeout: float, deliver_status: int,
    interface_version: int | None, system_type: str, linger: float,
    changes: Sequence[NodeChange] = (),
) -> str:
    config: dict[str, Any] = {
        "host": host, "port": port, "system_id": system_id, "password": password,
        "system_type": system_type, "bind": bind, "window": window,
        "messages": [m.spec() for m in messages], "expect_deliver": expect_deliver,
        "deliver_status": deliver_status, "timeout_ms": int(timeout * 1000),
        "linger_ms": int(linger * 1000), "changes": [c.spec() for c in changes],
    }
    if interface_version is not None:
        config["interface_version"] = interface_version
    return json.dumps(config)


def _parse(returncode: int, stdout: bytes, stderr: bytes) -> NodeClientRun:
    events: list[dict[str, Any]] = []
    for line in stdout.decode("utf-8", "replace").splitlines():
        if line.strip():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                events.append({"event": "unparsed", "line": line})
    return NodeClientRun(returncode, tuple(events), stderr.decode("utf-8", "replace"))


def run_node_client(
    port: int, system_id: str, password: str, messages: Sequence[NodeMessage] = (), *,
    host: str = LOOPBACK, expect_deliver: int = 0, bind: str = "transceiver", window: int = 10,
    timeout: float = 10.0, deliver_status: int = 0, interface_version: int | None = None,
    system_type: str = "", linger: float = 0.0, check: bool = True,
    changes: Sequence[NodeChange] = (),
) -> NodeClientRun:
    """Run client.js once (blocking); see the module docstring."""
    forbid_event_loop("run_node_client")
    node, cwd = executable("node"), node_smpp_dir()
    config = _client_config(host, port, system_id, password, messages, expect_deliver, bind,
                            window, timeout, deliver_status, interface_version, system_type,
                            linger, changes)
    try:
        done = subprocess.run(
            [node, "client.js", "-"], cwd=cwd, input=config.encode(), capture_output=True,
            timeout=timeout + NODE_GRACE, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PeerTimeout(
            f"npm smpp client did not exit within {timeout + NODE_GRACE:.0f}s",
            logs=_parse(-1, exc.stdout or b"", exc.stderr or b"").event_log(),
        ) from exc
    run = _parse(done.returncode, done.stdout, done.stderr)
    return run.check() if check else run


async def run_node_client_async(
    port: int, system_id: str, password: str, messages: Sequence[NodeMessage] = (), *,
    host: str = LOOPBACK, expect_deliver: int = 0, bind: str = "transceiver", window: int = 10,
    timeout: float = 10.0, deliver_status: int = 0, interface_version: int | None = None,
    system_type: str = "", linger: float = 0.0, check: bool = True,
    changes: Sequence[NodeChange] = (),
) -> NodeClientRun:
    """``run_node_client`` without blocking the event loop."""
    node, cwd = executable("node"), node_smpp_dir()
    config = _client_config(host, port, system_id, password, messages, expect_deliver, bind,
                            window, timeout, deliver_status, interface_version, system_type,
                            linger, changes)
    proc = await asyncio.create_subprocess_exec(
        node, "client.js", "-", cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(config.encode()),
                                                timeout + NODE_GRACE)
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise PeerTimeout(
            f"npm smpp client did not exit within {timeout + NODE_GRACE:.0f}s"
        ) from exc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    run = _parse(proc.returncode, stdout, stderr)
    return run.check() if check else run


# ---- server ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeSubmit:
    """A submit_sm server.js received, and the id it answered with."""

    session: str
    message_id: str
    pdu: SmPdu
    system_id: str = field(default="")


class NodeSmppServer:
    """server.js on 127.0.0.1 and an ephemeral port; see the module docstring.

    ``accounts`` limits binds to those credentials (anything else gets
    ESME_RBINDFAIL); ``None`` accepts every bind. Receipts follow each
    submit_sm_resp by ``receipt_delay`` when registered_delivery asks for one;
    ``receipt_before_resp`` sends them first instead (``True``, or only for the
    given destination numbers). Every event line is in ``events``; ``binds()``,
    ``submits()``, ``delivered()`` give views of them.
    """

    count: ClassVar[int] = 0

    def __init__(
        self, *, accounts: Mapping[str, str] | None = None, submit_status: int = 0,
        message_id_prefix: str = "", receipts: bool = True, receipt_delay: float = 0.02,
        receipt_before_resp: bool | Collection[str] = False, receipt_stat: str = "DELIVRD",
    ) -> None:
        self.config: dict[str, Any] = {
            "submit_status": submit_status, "message_id_prefix": message_id_prefix,
            "receipts": receipts, "receipt_delay_ms": int(receipt_delay * 1000),
            "receipt_before_resp": receipt_before_resp if isinstance(receipt_before_resp, bool)
            else sorted(receipt_before_resp),
            "receipt_stat": receipt_stat,
        }
        if accounts is not None:
            self.config["accounts"] = dict(accounts)
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._stderr: Path | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.events: Recorder[dict[str, Any]] = Recorder("npm smpp server", self.log_tail)
        self._write_lock = threading.Lock()
        self._tags = itertools.count(1)

    def log_tail(self) -> str:
        lines = [json.dumps(e)[:300] for e in self.events.items()[-EVENT_TAIL:]]
        text = "\n".join(["==> server.js events (last lines)", *lines])
        if self._stderr is not None and self._stderr.exists():
            text += "\n" + tail(self._stderr)
        return text

    def start(self) -> NodeSmppServer:
        forbid_event_loop("NodeSmppServer.start")
        node, cwd = executable("node"), node_smpp_dir()
        self._tmp = tempfile.TemporaryDirectory(prefix="herald-node-smsc-")
        self._stderr = Path(self._tmp.name) / "server.stderr"
        with open(self._stderr, "wb") as err:
            self._proc = subprocess.Popen(
                [node, "server.js", json.dumps(self.config)], cwd=cwd, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=err, start_new_session=True,
            )
        NodeSmppServer.count += 1
        self._reader = threading.Thread(target=self._read, args=(self._proc,), daemon=True,
                                        name=f"node-smsc-{NodeSmppServer.count}")
        self._reader.start()
        try:
            (listening,) = self.events.wait_for(
                lambda e: e.get("event") == "listening", timeout=SERVER_START_TIMEOUT,
                what="listening line",
            )
        except PeerTimeout as exc:
            self.stop()
            raise PeerStartError(f"npm smpp server did not start: {exc}",
                                 logs=self.log_tail()) from None
        self.port = int(listening["port"])
        return self

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                self.events.append(json.loads(raw))
            except json.JSONDecodeError:
                self.events.append({"event": "unparsed", "line": raw.decode("utf-8", "replace")})
        self.events.close(f"server.js exited ({proc.wait()})")

    def _command(self, command: Mapping[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None or proc.stdin is None:
            raise PeerExited("npm smpp server is not running", logs=self.log_tail())
        with self._write_lock:
            proc.stdin.write(json.dumps(command).encode() + b"\n")
            proc.stdin.flush()

    def deliver(
        self, destination_addr: str, *, text: str | None = None, octets: bytes | None = None,
        source_addr: str = "", data_coding: int | None = None, esm_class: int = 0,
        session: str | None = None, tag: str | None = None,
        tlvs: tuple[tuple[str, int | str], ...] = (),
    ) -> str:
        """Send a deliver_sm (an MO) to ``session`` (default: the latest bound).

        Returns the tag to wait for: ``delivered(tag)`` / the deliver_sm_resp event.
        """
        message = NodeMessage(destination_addr, text=text, octets=octets,
                              source_addr=source_addr, data_coding=data_coding,
                              esm_class=esm_class, tlvs=tlvs)
        tag = tag or f"mo-{next(self._tags)}"
        command = {"op": "deliver", **message.spec(), "tag": tag}
        if session is not None:
            command["session"] = session
        self._command(command)
        return tag

    # ---- typed views and waits -------------------------------------------------------

    @staticmethod
    def _is(kind: str) -> Callable[[dict[str, Any]], bool]:
        return lambda e: e.get("event") == kind

    def binds(self) -> tuple[dict[str, Any], ...]:
        return tuple(e for e in self.events.items() if e.get("event") == "bind")

    def _system_ids(self) -> dict[str, str]:
        return {e["session"]: e["system_id"] for e in self.binds() if e.get("accepted")}

    def _submit(self, event: dict[str, Any]) -> NodeSubmit:
        return NodeSubmit(event["session"], event["message_id"], sm_from_event(event),
                          self._system_ids().get(event["session"], ""))

    def submits(self, count: int = 0, *, timeout: float = 5.0) -> tuple[NodeSubmit, ...]:
        """Submits so far; with ``count``, block until at least that many arrived."""
        if count:
            self.events.wait_for(self._is("submit_sm"), timeout=timeout, count=count,
                                 what="submit_sm")
        return tuple(self._submit(e) for e in self.events.items() if e.get("event") == "submit_sm")

    async def await_submits(self, count: int, *, timeout: float = 5.0) -> tuple[NodeSubmit, ...]:
        await self.events.await_for(self._is("submit_sm"), timeout=timeout, count=count,
                                    what="submit_sm")
        return tuple(self._submit(e) for e in self.events.items() if e.get("event") == "submit_sm")

    def delivered(self, tag: str | None = None) -> tuple[dict[str, Any], ...]:
        """deliver_sm_resp events (``command_status``), for ``tag`` only when given."""
        return tuple(e for e in self.events.items() if e.get("event") == "deliver_sm_resp"
                     and (tag is None or e.get("tag") == tag))

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], *,
                 timeout: float = 5.0) -> dict[str, Any]:
        (event,) = self.events.wait_for(predicate, timeout=timeout)
        return event

    async def await_for(self, predicate: Callable[[dict[str, Any]], bool], *,
                        timeout: float = 5.0) -> dict[str, Any]:
        (event,) = await self.events.await_for(predicate, timeout=timeout)
        return event

    # ---- lifecycle -------------------------------------------------------------------

    def stop(self) -> None:
        """Ask server.js to stop (closing stdin), then terminate/kill it; bounded."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                stop_process(proc)
        if self._reader is not None:
            self._reader.join(timeout=5)  # it ends at the pipe's EOF
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> NodeSmppServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and not isinstance(exc, PeerError):
            exc.add_note("npm smpp server at failure:\n" + self.log_tail())
        self.stop()

    async def __aenter__(self) -> NodeSmppServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and not isinstance(exc, PeerError):
            exc.add_note("npm smpp server at failure:\n" + self.log_tail())
        await asyncio.to_thread(self.stop)
