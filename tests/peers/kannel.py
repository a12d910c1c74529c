"""Debian Kannel (bearerbox + smsbox) as a real ESME in front of an SMPP server.

Theory of operation. ``Kannel(Smsc(port=..., system_id=..., password=...))``
writes a ``kannel.conf`` into a work directory: a core group (admin and box
ports on 127.0.0.1), one ``smsc = smpp`` group binding transceiver to the server
under test, an smsbox with a sendsms user, and a catch-all ``sms-service`` whose
``get-url`` reports MO messages. A local ``HttpReceiver`` collects every dlr-url
and get-url callback. ``start()`` launches bearerbox and smsbox (own process
groups, output in log files), and waits, bounded, until bearerbox's status page
shows the SMPP connection online and the smsbox attached. ``stop()`` always
terminates both (SIGTERM, then SIGKILL) and removes the temporary directory.

    with Kannel(Smsc(port=server_port, system_id="esme1", password="secret12")) as k:
        ticket = k.send("4915112345", "herald", "Hello €")
        dlr = k.wait_for_dlr(ticket.ref, DlrType.DELIVERED, timeout=5)
        assert dlr.foreign_id == the_id_the_server_gave

From an asyncio test (the server under test on the same loop) use the awaitable
twins: ``async with Kannel(...) as k``, ``await k.asend(...)``,
``await k.await_dlr(...)``, ``await k.await_mo(...)``.

On any failure the error carries the tails of bearerbox, smsbox and SMPP logs;
an exception raised inside ``with Kannel(...)`` gets them attached as a note.
Kannel's quirks (receipt-before-response dropped, DLR address swap, ...) are in
tests/peers/README.md.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from . import SBIN_DIRS, executable
from .base import (
    LOOPBACK,
    POLL_INTERVAL,
    PeerError,
    PeerExited,
    PeerRefused,
    PeerStartError,
    PeerTimeout,
    forbid_event_loop,
    free_ports,
    port_open,
    stop_process,
    tails,
)
from .receiver import Callback, HttpReceiver

__all__ = [
    "ALL_DLR", "Coding", "Dlr", "DlrType", "Kannel", "KannelStatus", "Mo", "SendTicket", "Smsc",
]

# Bound on bearerbox + smsbox start and the first bind (measured: about 1 s here).
STARTUP_TIMEOUT = 15.0
# Startup attempts: a port picked by free_port() may be taken before Kannel binds it.
STARTUP_ATTEMPTS = 3
# Each HTTP request to Kannel (status page, sendsms).
HTTP_TIMEOUT = 5.0
# Seconds Kannel waits before re-connecting to the server under test. Short,
# so a test that restarts the server sees Kannel back quickly.
RECONNECT_DELAY = 1
# The smsc-id in kannel.conf and in every dlr/MO callback.
SMSC_ID = "herald"


class DlrType(enum.IntFlag):
    """Kannel's dlr-mask bits and the ``%d`` value of a dlr-url callback."""

    DELIVERED = 1  # receipt: delivered to the phone
    UNDELIVERED = 2  # receipt: failed
    BUFFERED = 4  # receipt: queued on the SMSC (intermediate)
    SMSC_ACK = 8  # submit_sm_resp with ESME_ROK
    SMSC_NACK = 16  # submit_sm_resp with an error status



# Every report Kannel can send: the default dlr-mask of Kannel.send().
ALL_DLR = DlrType.DELIVERED | DlrType.UNDELIVERED | DlrType.BUFFERED | DlrType.SMSC_ACK \
    | DlrType.SMSC_NACK


class Coding(enum.IntEnum):
    """sendsms ``coding``: how Kannel encodes the text toward the SMSC."""

    GSM7 = 0  # data_coding 0 (GSM 03.38, or alt-charset)
    BINARY = 1  # 8-bit data (data_coding 4, or 0xF4 with message class)
    UCS2 = 2  # data_coding 8, UTF-16BE


@dataclass(frozen=True)
class Smsc:
    """The SMPP server Kannel binds to (the server under test)."""

    port: int
    system_id: str
    password: str
    host: str = LOOPBACK
    system_type: str = ""
    transceiver: bool = True
    # More ``key = value`` lines for the smsc group, e.g. (("msg-id-type", "0x01"),).
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SendTicket:
    """sendsms accepted a message; ``ref`` tags its dlr-url callbacks."""

    ref: str
    http_status: int
    body: str


@dataclass(frozen=True)
class Dlr:
    """A dlr-url callback from smsbox.

    Kannel reports a receipt with the addresses of the receipt itself:
    ``sender`` is the original destination and ``receiver`` the original sender.
    """

    ref: str
    type: DlrType
    smsc_id: str
    foreign_id: str  # %F: the message id the SMSC gave, as Kannel stored it
    reply: str  # %A: "ACK/" / "NACK/<status>/..." for 8/16, the receipt text for 1/2/4
    sender: str
    receiver: str
    callback: Callback


@dataclass(frozen=True)
class Mo:
    """A get-url callback: an MO message Kannel received as deliver_sm."""

    sender: str
    receiver: str
    text: str  # %a decoded with %C (Kannel passes UCS-2 on as UTF-16BE octets)
    raw: bytes  # %b, the message octets
    coding: int  # %c: 0 GSM/7-bit, 1 8-bit, 2 UCS-2
    charset: str  # %C: "UTF-8" for 7-bit text, "UTF-16BE" for UCS-2
    udh: bytes  # %u
    smsc_id: str
    callback: Callback


@dataclass(frozen=True)
class KannelStatus:
    """The parts of bearerbox's status.xml the tests read."""

    smsc_status: str  # "online 12s", "connecting", "re-connecting", "dead", ...
    smsc_sent: int
    smsc_received: int
    smsc_failed: int
    smsc_queued: int
    dlr_received: int
    dlr_sent: int
    smsboxes_online: int

    @property
    def online(self) -> bool:
        return self.smsc_status.startswith("online")


def _conf_value(key: str, value: str) -> str:
    if any(c in value for c in '"\\\n\r'):
        raise ValueError(f"kannel.conf {key}: value {value!r} has a quote, backslash or newline")
    return f'{key} = "{value}"'


def _int(node: ET.Element | None, path: str) -> int:
    found = node.findtext(path) if node is not None else None
    try:
        return int(found) if found else 0
    except ValueError:
        return 0


class Kannel:
    """Kannel bearerbox + smsbox bound to ``smsc``; see the module docstring."""

    def __init__(
        self, smsc: Smsc, *, workdir: Path | None = None,
        startup_timeout: float = STARTUP_TIMEOUT, log_level: int = 0,
    ) -> None:
        self.smsc = smsc
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        self._own_workdir = workdir is None
        self._workdir_arg = workdir
        self.workdir: Path | None = None
        self.receiver = HttpReceiver()
        self.admin_password = secrets.token_hex(8)
        self.sendsms_user = "herald-tests"
        self.sendsms_password = secrets.token_hex(8)
        self.admin_port = self.box_port = self.sendsms_port = 0
        self._bearerbox: subprocess.Popen[bytes] | None = None
        self._smsbox: subprocess.Popen[bytes] | None = None
        self._refs = itertools.count(1)
        self._log_text: str = ""

    # ---- lifecycle ---------------------------------------------------------------

    @property
    def log_files(self) -> tuple[Path, ...]:
        if self.workdir is None:
            return ()
        names = ("bearerbox.log", "smsc.log", "smsbox.log", "bearerbox.out", "smsbox.out")
        return tuple(self.workdir / n for n in names)

    def log_tails(self, lines: int = 30) -> str:
        """The last lines of every Kannel log (kept after ``stop()`` removed them)."""
        if self.workdir is not None and self.workdir.exists():
            return tails(self.log_files, lines)
        return self._log_text

    def start(self) -> Kannel:
        """Start both boxes and wait until the SMPP bind is online.

        Raises ``PeerStartError`` (with log tails) when Kannel does not come up:
        the server under test refused the bind, or was not listening, or a box
        died. Skips (fails under CI) when Kannel is not installed.
        """
        forbid_event_loop("Kannel.start")
        bearerbox = executable("bearerbox", *SBIN_DIRS)
        smsbox = executable("smsbox", *SBIN_DIRS)
        if self._workdir_arg is not None:
            self.workdir = self._workdir_arg
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="herald-kannel-"))
        try:
            self.receiver.start()
            for attempt in range(1, STARTUP_ATTEMPTS + 1):
                try:
                    self._launch(bearerbox, smsbox)
                    return self
                except PeerStartError:
                    self._stop_boxes()
                    if attempt == STARTUP_ATTEMPTS or not self._port_clash():
                        raise
        except BaseException:
            self.stop()
            raise
        raise AssertionError("unreachable")

    def _port_clash(self) -> bool:
        logs = self.log_tails(200)
        return "Address already in use" in logs or "Could not open" in logs

    def _launch(self, bearerbox: str, smsbox: str) -> None:
        assert self.workdir is not None
        self.admin_port, self.box_port, self.sendsms_port = free_ports(3)
        for log in self.log_files:  # a retry reads only its own attempt's logs
            log.unlink(missing_ok=True)
        conf = self.workdir / "kannel.conf"
        conf.write_text(self._config())
        deadline = time.monotonic() + self.startup_timeout
        self._bearerbox = self._spawn(bearerbox, conf, "bearerbox.out")
        # smsbox gives up at once when bearerbox's box port is not open yet.
        self._wait_startup(deadline, "bearerbox to open its box port",
                           lambda: port_open(self.box_port))
        self._smsbox = self._spawn(smsbox, conf, "smsbox.out")
        self._wait_startup(deadline, "the SMPP bind and the smsbox to be online", self._ready)

    def _spawn(self, program: str, conf: Path, out: str) -> subprocess.Popen[bytes]:
        assert self.workdir is not None
        with open(self.workdir / out, "wb") as sink:
            return subprocess.Popen(
                [program, str(conf)], cwd=self.workdir, stdin=subprocess.DEVNULL,
                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def _wait_startup(self, deadline: float, what: str, ready: Callable[[], bool]) -> None:
        while True:
            for name, proc in (("bearerbox", self._bearerbox), ("smsbox", self._smsbox)):
                if proc is not None and proc.poll() is not None:
                    raise PeerStartError(
                        f"Kannel {name} exited with {proc.returncode} while waiting for {what}",
                        logs=self.log_tails(),
                    )
            if ready():
                return
            if time.monotonic() >= deadline:
                raise PeerStartError(
                    f"Kannel: no {what} within {self.startup_timeout:.1f}s (SMPP server "
                    f"{self.smsc.host}:{self.smsc.port}, status: {self._status_or_error()})",
                    logs=self.log_tails(),
                )
            time.sleep(POLL_INTERVAL * 5)

    def _ready(self) -> bool:
        try:
            status = self._fetch_status()
        except (OSError, PeerError):
            return False
        return status.online and status.smsboxes_online > 0 and port_open(self.sendsms_port)

    def stop(self) -> None:
        """Stop both boxes (always: SIGTERM, then SIGKILL), the receiver, the temp dir."""
        self._stop_boxes()
        self.receiver.close()
        if self.workdir is not None and self.workdir.exists():
            self._log_text = tails(self.log_files)
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def _stop_boxes(self) -> None:
        # smsbox first: bearerbox waits for its boxes before it exits.
        for attr in ("_smsbox", "_bearerbox"):
            proc = getattr(self, attr)
            if proc is not None:
                stop_process(proc)
                setattr(self, attr, None)

    def __enter__(self) -> Kannel:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and not isinstance(exc, PeerError):
            exc.add_note("Kannel logs at failure:\n" + self.log_tails())
        self.stop()

    async def astart(self) -> Kannel:
        return await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    async def __aenter__(self) -> Kannel:
        return await self.astart()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and not isinstance(exc, PeerError):
            exc.add_note("Kannel logs at failure:\n" + self.log_tails())
        await self.astop()

    def _check_alive(self) -> None:
        for name, proc in (("bearerbox", self._bearerbox), ("smsbox", self._smsbox)):
            if proc is None:
                raise PeerExited(f"Kannel {name} is not running (start() first)")
            if proc.poll() is not None:
                raise PeerExited(f"Kannel {name} exited with {proc.returncode}",
                                 logs=self.log_tails())

    # ---- configuration -------------------------------------------------------------

    def _config(self) -> str:
        assert self.workdir is not None
        smsc, work = self.smsc, self.workdir
        mo = self.receiver.url(
            "/mo?from=%p&to=%P&text=%a&bin=%b&coding=%c&charset=%C&udh=%u&smsc=%i"
        )
        lines = [
            "group = core",
            f"admin-port = {self.admin_port}",
            f"admin-interface = {LOOPBACK}",
            _conf_value("admin-password", self.admin_password),
            _conf_value("status-password", self.admin_password),
            _conf_value("admin-allow-ip", LOOPBACK),
            f"smsbox-port = {self.box_port}",
            f"smsbox-interface = {LOOPBACK}",
            _conf_value("box-allow-ip", LOOPBACK),
            _conf_value("log-file", str(work / "bearerbox.log")),
            f"log-level = {self.log_level}",
            "dlr-storage = internal",
            "",
            "group = smsc",
            "smsc = smpp",
            f"smsc-id = {SMSC_ID}",
            f"host = {smsc.host}",
            f"port = {smsc.port}",
            f"transceiver-mode = {'true' if smsc.transceiver else 'false'}",
            *([] if smsc.transceiver else [f"receive-port = {smsc.port}"]),
            _conf_value("smsc-username", smsc.system_id),
            _conf_value("smsc-password", smsc.password),
            _conf_value("system-type", smsc.system_type),
            f"reconnect-delay = {RECONNECT_DELAY}",
            _conf_value("log-file", str(work / "smsc.log")),
            f"log-level = {self.log_level}",
            *(_conf_value(key, value) for key, value in smsc.extra),
            "",
            "group = smsbox",
            f"bearerbox-host = {LOOPBACK}",
            f"bearerbox-port = {self.box_port}",
            f"sendsms-port = {self.sendsms_port}",
            f"sendsms-interface = {LOOPBACK}",
            _conf_value("log-file", str(work / "smsbox.log")),
            f"log-level = {self.log_level}",
            "",
            "group = sendsms-user",
            _conf_value("username", self.sendsms_user),
            _conf_value("password", self.sendsms_password),
            "concatenation = true",
            "max-messages = 10",
            "",
            "group = sms-service",
            "keyword = default",
            "catch-all = true",
            # No reply SMS: the service only reports what arrived.
            "max-messages = 0",
            _conf_value("get-url", mo),
            "",
        ]
        return "\n".join(lines)

    # ---- status --------------------------------------------------------------------

    def _fetch_status(self) -> KannelStatus:
        query = urllib.parse.urlencode({"password": self.admin_password})
        url = f"http://{LOOPBACK}:{self.admin_port}/status.xml?{query}"
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:
            body = response.read()
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            raise PeerError(f"Kannel status.xml is not XML: {exc}: {body[:200]!r}") from exc
        smsc = next((s for s in root.iter("smsc") if s.findtext("id") == SMSC_ID), None)
        boxes = sum(
            1 for b in root.iter("box")
            if b.findtext("type") == "smsbox" and (b.findtext("status") or "").startswith("on-line")
        )
        return KannelStatus(
            smsc_status=(smsc.findtext("status") or "") if smsc is not None else "absent",
            smsc_sent=_int(smsc, "sms/sent"),
            smsc_received=_int(smsc, "sms/received"),
            smsc_failed=_int(smsc, "failed"),
            smsc_queued=_int(smsc, "queued"),
            dlr_received=_int(smsc, "dlr/received"),
            dlr_sent=_int(smsc, "dlr/sent"),
            smsboxes_online=boxes,
        )

    def _status_or_error(self) -> str:
        try:
            return repr(self._fetch_status())
        except (OSError, PeerError) as exc:
            return f"unavailable ({exc})"

    def status(self) -> KannelStatus:
        """bearerbox's view of the SMPP connection and its counters."""
        forbid_event_loop("Kannel.status")
        self._check_alive()
        return self._fetch_status()

    async def astatus(self) -> KannelStatus:
        return await asyncio.to_thread(self.status)

    def wait_online(self, timeout: float = STARTUP_TIMEOUT) -> KannelStatus:
        """Block until the SMPP connection is online again (after a server restart)."""
        forbid_event_loop("Kannel.wait_online")
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                status = self._fetch_status()
                if status.online:
                    return status
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise PeerTimeout(
                    f"Kannel: SMPP connection not online within {timeout:.1f}s "
                    f"({self._status_or_error()})", logs=self.log_tails(),
                )
            time.sleep(POLL_INTERVAL * 5)

    async def await_online(self, timeout: float = STARTUP_TIMEOUT) -> KannelStatus:
        return await asyncio.to_thread(self.wait_online, timeout)

    # ---- sending -------------------------------------------------------------------

    def send(
        self, to: str, from_: str, text: str | bytes, *, coding: Coding | None = None,
        dlr_mask: DlrType | None = ALL_DLR, dlr_url: str | None = None,
        udh: bytes | None = None, extra: Mapping[str, str] | None = None,
    ) -> SendTicket:
        """Submit one message through smsbox's ``/cgi-bin/sendsms``.

        ``text`` as ``str`` goes as UTF-8 (``charset=UTF-8``) and Kannel encodes
        it for ``coding`` (default: GSM 7-bit when it fits, which Kannel decides);
        ``bytes`` go verbatim (use ``coding=Coding.BINARY``, or ``Coding.UCS2``
        with UTF-16BE octets). ``dlr_url`` defaults to this harness's receiver,
        tagged with the returned ticket's ``ref``; pass ``dlr_mask=None`` to
        request no receipt. Raises ``PeerRefused`` when sendsms answers an error.
        """
        forbid_event_loop("Kannel.send")
        self._check_alive()
        ref = f"r{next(self._refs)}"
        params: list[tuple[str, str | bytes]] = [
            ("username", self.sendsms_user), ("password", self.sendsms_password),
            ("to", to), ("from", from_),
        ]
        if isinstance(text, str):
            params += [("text", text.encode("utf-8")), ("charset", "UTF-8")]
        else:
            params.append(("text", text))
        if coding is not None:
            params.append(("coding", str(int(coding))))
        if udh is not None:
            params.append(("udh", udh))
        if dlr_mask is not None:
            params.append(("dlr-mask", str(int(dlr_mask))))
            params.append(("dlr-url", dlr_url or self.dlr_url(ref)))
        params += list((extra or {}).items())
        query = urllib.parse.urlencode(params)
        url = f"http://{LOOPBACK}:{self.sendsms_port}/cgi-bin/sendsms?{query}"
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:
                return SendTicket(ref, response.status, response.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read().decode("utf-8", "replace")
            raise PeerRefused(f"Kannel sendsms answered {exc.code}: {body.strip()}",
                              status=exc.code, logs=self.log_tails()) from exc

    async def asend(
        self, to: str, from_: str, text: str | bytes, *, coding: Coding | None = None,
        dlr_mask: DlrType | None = ALL_DLR, dlr_url: str | None = None,
        udh: bytes | None = None, extra: Mapping[str, str] | None = None,
    ) -> SendTicket:
        return await asyncio.to_thread(
            lambda: self.send(to, from_, text, coding=coding, dlr_mask=dlr_mask,
                              dlr_url=dlr_url, udh=udh, extra=extra)
        )

    def dlr_url(self, ref: str) -> str:
        """The receiver URL for ``ref``'s receipts, with Kannel's escapes to fill in."""
        return self.receiver.url(
            f"/dlr?ref={urllib.parse.quote(ref)}&type=%d&smsc=%i&fid=%F&reply=%A&from=%p&to=%P"
        )

    # ---- callbacks -----------------------------------------------------------------

    @staticmethod
    def _dlr(call: Callback) -> Dlr | None:
        if call.path != "/dlr":
            return None
        p = call.params()
        return Dlr(
            ref=p.get("ref", ""), type=DlrType(int(p.get("type") or 0)),
            smsc_id=p.get("smsc", ""), foreign_id=p.get("fid", ""), reply=p.get("reply", ""),
            sender=p.get("from", ""), receiver=p.get("to", ""), callback=call,
        )

    @staticmethod
    def _mo(call: Callback) -> Mo | None:
        if call.path != "/mo":
            return None
        p = call.params()
        charset = p.get("charset") or "UTF-8"
        try:
            text = (call.param_bytes("text") or b"").decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know: keep Kannel's octets
            text = p.get("text", "")
        return Mo(
            sender=p.get("from", ""), receiver=p.get("to", ""), text=text,
            raw=call.param_bytes("bin") or b"", coding=int(p.get("coding") or 0),
            charset=p.get("charset", ""), udh=call.param_bytes("udh") or b"",
            smsc_id=p.get("smsc", ""), callback=call,
        )

    def dlrs(self, ref: str | None = None) -> tuple[Dlr, ...]:
        """Every dlr-url callback so far (for ``ref`` only, when given), in arrival order."""
        found = (self._dlr(c) for c in self.receiver.calls.items())
        return tuple(d for d in found if d is not None and (ref is None or d.ref == ref))

    def mos(self) -> tuple[Mo, ...]:
        found = (self._mo(c) for c in self.receiver.calls.items())
        return tuple(m for m in found if m is not None)

    def _dlr_matcher(self, ref: str, types: DlrType) -> Callable[[Callback], bool]:
        def match(call: Callback) -> bool:
            dlr = self._dlr(call)
            return dlr is not None and dlr.ref == ref and bool(dlr.type & types)
        return match

    def _mo_matcher(self, predicate: Callable[[Mo], bool] | None) -> Callable[[Callback], bool]:
        def match(call: Callback) -> bool:
            mo = self._mo(call)
            return mo is not None and (predicate is None or predicate(mo))
        return match

    def _with_logs(self, exc: PeerTimeout) -> PeerTimeout:
        return PeerTimeout(str(exc), logs=self.log_tails())

    def wait_for_dlr(
        self, ref: str, types: DlrType = DlrType.DELIVERED | DlrType.UNDELIVERED, *,
        timeout: float = 5.0,
    ) -> Dlr:
        """Block until a dlr-url callback for ``ref`` with a type in ``types`` arrives."""
        try:
            (call,) = self.receiver.calls.wait_for(
                self._dlr_matcher(ref, types), timeout=timeout, what=f"dlr {types!r} for {ref}"
            )
        except PeerTimeout as exc:
            raise self._with_logs(exc) from None
        dlr = self._dlr(call)
        assert dlr is not None
        return dlr

    async def await_dlr(
        self, ref: str, types: DlrType = DlrType.DELIVERED | DlrType.UNDELIVERED, *,
        timeout: float = 5.0,
    ) -> Dlr:
        try:
            (call,) = await self.receiver.calls.await_for(
                self._dlr_matcher(ref, types), timeout=timeout, what=f"dlr {types!r} for {ref}"
            )
        except PeerTimeout as exc:
            raise self._with_logs(exc) from None
        dlr = self._dlr(call)
        assert dlr is not None
        return dlr

    def wait_for_mo(
        self, predicate: Callable[[Mo], bool] | None = None, *, timeout: float = 5.0,
    ) -> Mo:
        """Block until an MO (get-url callback) matching ``predicate`` arrives."""
        try:
            (call,) = self.receiver.calls.wait_for(
                self._mo_matcher(predicate), timeout=timeout, what="MO get-url callback"
            )
        except PeerTimeout as exc:
            raise self._with_logs(exc) from None
        mo = self._mo(call)
        assert mo is not None
        return mo

    async def await_mo(
        self, predicate: Callable[[Mo], bool] | None = None, *, timeout: float = 5.0,
    ) -> Mo:
        try:
            (call,) = await self.receiver.calls.await_for(
                self._mo_matcher(predicate), timeout=timeout, what="MO get-url callback"
            )
        except PeerTimeout as exc:
            raise self._with_logs(exc) from None
        mo = self._mo(call)
        assert mo is not None
        return mo

    def wait_for(self, predicate: Callable[[Callback], bool], *, timeout: float = 5.0) -> Callback:
        """Block until any receiver callback matches ``predicate``."""
        try:
            (call,) = self.receiver.calls.wait_for(predicate, timeout=timeout)
        except PeerTimeout as exc:
            raise self._with_logs(exc) from None
        return call

    async def await_for(
        self, predicate: Callable[[Callback], bool], *, timeout: float = 5.0,
    ) -> Callback:
        try:
            (call,) = await self.receiver.calls.await_for(predicate, timeout=timeout)
        except PeerTimeout as exc:
            raise self._with_logs(exc) from None
        return call
