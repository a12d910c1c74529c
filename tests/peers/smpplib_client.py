"""PyPI ``smpplib`` 2.2.4 (pure Python) as an ESME, with a background reader.

    with SmpplibClient(port, "esme1", "secret12") as esme:     # binds transceiver
        seqs = esme.send_text("4915112345", "Grüße 😀" * 20, registered_delivery=1)
        resps = esme.wait_resps(seqs, timeout=5)                # one per part
        (rcpt,) = esme.delivered.wait_for(lambda d: d.is_receipt, timeout=5)

Connect and bind happen on the calling thread (smpplib's own ``bind_transceiver``);
then one reader thread reads every PDU with smpplib's decoder, answers
deliver_sm and enquire_link, and records submit_sm_resp (``submit_resps``) and
deliver_sm (``delivered``). Sends take a lock, so the test thread and the reader
never interleave bytes on the socket. From a coroutine use ``aconnect``,
``asend_text``, ``await_resps`` and ``aclose`` (the bind waits for the server).

Long text is split by ``smpplib.gsm.make_parts``: UDH (8-bit reference) by
default, or SAR TLVs (``long="sar"``), or one message_payload (``long="payload"``).
smpplib 2.2.4 truncates system_id to 15 and password to 8 characters; this
wrapper refuses longer credentials (``CredentialsTooLong``) unless
``allow_truncation=True``, so a bind failure is never a silent truncation.
Its other quirks are in tests/peers/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import select
import struct
import threading
from collections.abc import Sequence
from types import ModuleType, TracebackType
from typing import Any, Literal

from . import missing
from .base import (
    LOOPBACK,
    POLL_INTERVAL,
    PeerError,
    PeerRefused,
    Recorder,
    SmPdu,
    SubmitResp,
    forbid_event_loop,
)

__all__ = ["CredentialsTooLong", "SmpplibClient"]

# smpplib 2.2.4 Param(max=16) / Param(max=9) keep max - 1 characters.
SMPPLIB_MAX_SYSTEM_ID = 15
SMPPLIB_MAX_PASSWORD = 8
# Socket timeout for connect, bind and reading the rest of a started PDU.
IO_TIMEOUT = 5.0
# The largest PDU the reader accepts before declaring the stream corrupt.
MAX_PDU = 64 * 1024
# SMPP 3.4 §2.2.1: the 16-octet header.
HEADER = 16
# Bound on the unbind handshake at close.
UNBIND_TIMEOUT = 2.0
# sar_msg_ref_num values are 16 bits (SMPP 3.4 §5.3.2.22).
SAR_REF_MODULO = 1 << 16

Long = Literal["udh", "sar", "payload"]


class CredentialsTooLong(PeerError, ValueError):
    """smpplib would silently truncate these credentials."""


def _smpplib() -> ModuleType:
    try:
        import smpplib.client  # type: ignore[import-untyped]
        import smpplib.consts  # type: ignore[import-untyped]
        import smpplib.exceptions  # type: ignore[import-untyped]
        import smpplib.gsm  # type: ignore[import-untyped]
        import smpplib.smpp  # type: ignore[import-untyped]
    except ImportError:
        missing("smpplib (PyPI)", "scripts/bootstrap")
    module: ModuleType = smpplib
    return module


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


class SmpplibClient:
    """smpplib's Client bound transceiver to ``host:port``; see the module docstring."""

    def __init__(
        self, port: int, system_id: str, password: str, *, host: str = LOOPBACK,
        system_type: str = "", allow_truncation: bool = False,
    ) -> None:
        if not allow_truncation and (
            len(system_id) > SMPPLIB_MAX_SYSTEM_ID or len(password) > SMPPLIB_MAX_PASSWORD
        ):
            raise CredentialsTooLong(
                f"smpplib 2.2.4 sends at most {SMPPLIB_MAX_SYSTEM_ID} characters of system_id "
                f"and {SMPPLIB_MAX_PASSWORD} of password (got {len(system_id)} and "
                f"{len(password)}); use shorter credentials or allow_truncation=True"
            )
        self.host, self.port = host, port
        self.system_id, self.password, self.system_type = system_id, password, system_type
        self.submit_resps: Recorder[SubmitResp] = Recorder("smpplib submit_sm_resp")
        self.delivered: Recorder[SmPdu] = Recorder("smpplib deliver_sm")
        self.unhandled: Recorder[str] = Recorder("smpplib other PDUs")
        self._client: Any = None
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._unbound = threading.Event()
        self._reader: threading.Thread | None = None
        self._sar_refs = itertools.count(1)
        self.reader_error: BaseException | None = None

    # ---- lifecycle -------------------------------------------------------------------

    def connect(self) -> SmpplibClient:
        """Connect and bind transceiver; raises ``PeerRefused`` (``.status``) on refusal."""
        forbid_event_loop("SmpplibClient.connect")
        smpplib = _smpplib()
        client = smpplib.client.Client(self.host, self.port, timeout=IO_TIMEOUT,
                                       allow_unknown_opt_params=True)
        try:
            client.connect()
            client.bind_transceiver(system_id=self.system_id, password=self.password,
                                    system_type=self.system_type)
        except smpplib.exceptions.PDUError as exc:
            client.disconnect()
            status = exc.args[1] if len(exc.args) > 1 else -1
            raise PeerRefused(f"smpplib bind refused: {exc.args[0]}", status=status) from exc
        except smpplib.exceptions.ConnectionError as exc:
            client.disconnect()
            raise PeerError(f"smpplib could not bind to {self.host}:{self.port}: {exc!r}") from exc
        self._client = client
        self._reader = threading.Thread(target=self._read_loop, daemon=True,
                                        name=f"smpplib-reader-{self.port}")
        self._reader.start()
        return self

    def close(self) -> None:
        """Unbind (bounded), stop the reader, close the socket; safe to call twice."""
        client, self._client = self._client, None
        if client is None:
            return
        smpplib = _smpplib()
        if self._reader is not None and self._reader.is_alive():
            with contextlib.suppress(smpplib.exceptions.PDUError,
                                     smpplib.exceptions.ConnectionError, OSError):
                self._send(client, smpplib.smpp.make_pdu("unbind", client=client))
                self._unbound.wait(UNBIND_TIMEOUT)
        self._stop.set()
        if self._reader is not None:
            self._reader.join(timeout=IO_TIMEOUT + 1)
        client.disconnect()
        for recorder in (self.submit_resps, self.delivered, self.unhandled):
            recorder.close("smpplib client closed")

    def __enter__(self) -> SmpplibClient:
        return self.connect()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def aconnect(self) -> SmpplibClient:
        return await asyncio.to_thread(self.connect)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> SmpplibClient:
        return await self.aconnect()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ---- reader ----------------------------------------------------------------------

    def _send(self, client: Any, pdu: Any) -> None:
        with self._send_lock:
            client.send_pdu(pdu)

    def _read_pdu(self, client: Any) -> tuple[bytes, Any]:
        """One PDU through smpplib's decoder, keeping its octets (smpplib's read_pdu
        logs them but does not keep them)."""
        smpplib = _smpplib()
        head = client._recv_exact(4)
        (length,) = struct.unpack(">L", head)
        if not HEADER <= length <= MAX_PDU:
            raise PeerError(f"smpplib reader: command_length {length} out of range")
        raw = head + client._recv_exact(length - 4)
        pdu = smpplib.smpp.parse_pdu(raw, client=client, allow_unknown_opt_params=True)
        if not pdu.is_error() and pdu.command in smpplib.consts.STATE_SETTERS:
            client.state = smpplib.consts.STATE_SETTERS[pdu.command]
        return raw, pdu

    def _read_loop(self) -> None:
        smpplib = _smpplib()
        client = self._client
        reason = "reader stopped"
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([client._socket], [], [], POLL_INTERVAL * 5)
                if not readable:
                    continue
                raw, pdu = self._read_pdu(client)
                self._dispatch(client, raw, pdu)
        except smpplib.exceptions.ConnectionError:
            reason = "connection closed by the server"
        except BaseException as exc:  # kept for the test to see, never silently lost
            self.reader_error = exc
            reason = f"reader failed: {exc!r}"
        finally:
            for recorder in (self.submit_resps, self.delivered, self.unhandled):
                recorder.close(reason)

    def _dispatch(self, client: Any, raw: bytes, pdu: Any) -> None:
        smpplib = _smpplib()
        command = pdu.command
        if command in ("submit_sm_resp", "generic_nack"):
            message_id = getattr(pdu, "message_id", None)
            self.submit_resps.append(SubmitResp(
                int(pdu.status), _text(message_id) if message_id is not None else None,
                int(pdu.sequence)))
        elif command == "deliver_sm":
            self.delivered.append(self._sm(pdu, raw))
            resp = smpplib.smpp.make_pdu("deliver_sm_resp", client=client)
            resp.sequence = pdu.sequence
            self._send(client, resp)
        elif command == "enquire_link":
            resp = smpplib.smpp.make_pdu("enquire_link_resp", client=client)
            resp.sequence = pdu.sequence
            self._send(client, resp)
        elif command == "unbind_resp":
            self._unbound.set()
        elif command == "unbind":
            resp = smpplib.smpp.make_pdu("unbind_resp", client=client)
            resp.sequence = pdu.sequence
            self._send(client, resp)
            self.unhandled.append("unbind")
        else:
            self.unhandled.append(command)

    @staticmethod
    def _sm(pdu: Any, raw: bytes) -> SmPdu:
        """The deliver_sm as smpplib decoded it; TLVs smpplib recognised, re-packed."""
        smpplib = _smpplib()
        tlvs: list[tuple[int, bytes]] = []
        for name, tag in smpplib.consts.OPTIONAL_PARAMS.items():
            value = getattr(pdu, name, None)
            param = pdu.params.get(name)
            if value is None or param is None:
                continue
            if isinstance(value, int):
                tlvs.append((tag, value.to_bytes(getattr(param, "size", 1), "big")))
            else:
                tlvs.append((tag, bytes(value)))
        return SmPdu(
            source_addr=_text(pdu.source_addr), destination_addr=_text(pdu.destination_addr),
            esm_class=int(pdu.esm_class or 0), data_coding=int(pdu.data_coding or 0),
            short_message=bytes(pdu.short_message or b""), tlvs=tuple(tlvs),
            registered_delivery=int(pdu.registered_delivery or 0),
            source_addr_ton=int(pdu.source_addr_ton or 0),
            source_addr_npi=int(pdu.source_addr_npi or 0),
            dest_addr_ton=int(pdu.dest_addr_ton or 0), dest_addr_npi=int(pdu.dest_addr_npi or 0),
            protocol_id=int(pdu.protocol_id or 0), service_type=_text(pdu.service_type),
            sequence_number=int(pdu.sequence), raw=raw,
        )

    # ---- sending ---------------------------------------------------------------------

    def _require(self) -> Any:
        if self._client is None:
            raise PeerError("smpplib client: connect() first")
        if self._reader is not None and not self._reader.is_alive():
            raise PeerError(f"smpplib client: the reader has stopped ({self.reader_error!r})")
        return self._client

    def submit(
        self, destination_addr: str, short_message: bytes = b"", *, source_addr: str = "",
        data_coding: int = 0, esm_class: int = 0, registered_delivery: int = 0,
        **tlvs: int | bytes,
    ) -> int:
        """One submit_sm (octets as given; optional params by smpplib name); its sequence."""
        client = self._require()
        smpplib = _smpplib()
        pdu = smpplib.smpp.make_pdu(
            "submit_sm", client=client, source_addr=source_addr,
            destination_addr=destination_addr, short_message=short_message,
            data_coding=data_coding, esm_class=esm_class,
            registered_delivery=registered_delivery, **tlvs,
        )
        self._send(client, pdu)
        return int(pdu.sequence)

    def send_text(
        self, destination_addr: str, text: str, *, source_addr: str = "",
        registered_delivery: int = 0, long: Long = "udh", encoding: int | None = None,
    ) -> tuple[int, ...]:
        """Encode and split ``text`` with smpplib.gsm.make_parts (GSM 03.38 when it
        fits, else UCS-2) and submit every part; returns their sequence numbers."""
        smpplib = _smpplib()
        chosen = smpplib.consts.SMPP_ENCODING_DEFAULT if encoding is None else encoding
        parts, coding, esm_class = smpplib.gsm.make_parts(text, chosen, use_udhi=long == "udh")
        if long == "payload" and len(parts) > 1:
            return (self.submit(destination_addr, b"", source_addr=source_addr,
                                data_coding=coding, registered_delivery=registered_delivery,
                                message_payload=b"".join(parts)),)
        if long == "sar" and len(parts) > 1:
            ref = next(self._sar_refs) % SAR_REF_MODULO
            return tuple(
                self.submit(destination_addr, part, source_addr=source_addr, data_coding=coding,
                            registered_delivery=registered_delivery, sar_msg_ref_num=ref,
                            sar_total_segments=len(parts), sar_segment_seqnum=n)
                for n, part in enumerate(parts, start=1)
            )
        return tuple(
            self.submit(destination_addr, part, source_addr=source_addr, data_coding=coding,
                        esm_class=esm_class, registered_delivery=registered_delivery)
            for part in parts
        )

    async def asend_text(
        self, destination_addr: str, text: str, *, source_addr: str = "",
        registered_delivery: int = 0, long: Long = "udh", encoding: int | None = None,
    ) -> tuple[int, ...]:
        return await asyncio.to_thread(
            lambda: self.send_text(destination_addr, text, source_addr=source_addr,
                                   registered_delivery=registered_delivery, long=long,
                                   encoding=encoding)
        )

    def wait_resps(self, sequences: Sequence[int], *, timeout: float = 5.0
                   ) -> tuple[SubmitResp, ...]:
        """Block until every sequence has its submit_sm_resp; in ``sequences`` order."""
        wanted = set(sequences)
        found = self.submit_resps.wait_for(
            lambda r: r.sequence_number in wanted, timeout=timeout, count=len(wanted),
            what=f"submit_sm_resp for sequences {sorted(wanted)}",
        )
        by_seq = {r.sequence_number: r for r in found}
        return tuple(by_seq[s] for s in sequences)

    async def await_resps(self, sequences: Sequence[int], *, timeout: float = 5.0
                          ) -> tuple[SubmitResp, ...]:
        wanted = set(sequences)
        found = await self.submit_resps.await_for(
            lambda r: r.sequence_number in wanted, timeout=timeout, count=len(wanted),
            what=f"submit_sm_resp for sequences {sorted(wanted)}",
        )
        by_seq = {r.sequence_number: r for r in found}
        return tuple(by_seq[s] for s in sequences)
