"""submit_multi's lists (SMPP 3.4 §4.5): destination addresses and the failed
destinations of its response, as value types and field specs (private; the
value types are re-exported by ``pdus``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from herald.smpp._fields import U8, CString, Field
from herald.smpp._wire import Malformed
from herald.smpp.constants import CommandStatus, DestFlag
from herald.smpp.errors import InvalidField
from herald.smpp.limits import MAX_DESTINATIONS, MAX_UNSUCCESS

__all__ = [
    "DestAddress",
    "DestAddresses",
    "DistributionList",
    "SmeAddress",
    "UnsuccessSme",
    "UnsuccessSmes",
]

S = CommandStatus



@dataclass(frozen=True, slots=True)
class SmeAddress:
    """A submit_multi destination that is an SME address (dest_flag 1)."""

    ton: int = 0
    npi: int = 0
    address: str = ""


@dataclass(frozen=True, slots=True)
class DistributionList:
    """A submit_multi destination that is a distribution list (dest_flag 2)."""

    name: str = ""


DestAddress = SmeAddress | DistributionList


@dataclass(frozen=True, slots=True)
class UnsuccessSme:
    """One failed destination in submit_multi_resp (SMPP 3.4 §4.5.2)."""

    ton: int = 0
    npi: int = 0
    address: str = ""
    error_status_code: int = 0


_ADDR21 = CString(21, S.ESME_RINVDSTADR)
_DL_NAME = CString(21, S.ESME_RINVDLNAME)


def _pull_cstring(spec: CString, name: str, buf: bytes, pos: int, end: int) -> tuple[str, int]:
    i = buf.find(0, pos, end)  # end: these helpers also serve slices of a PDU
    if not 0 <= i - pos < spec.max:
        raise Malformed(spec.status_for(i), name, spec.why(i, pos))
    return buf[pos:i].decode("latin-1"), i + 1


class DestAddresses(Field):
    """number_of_dests then that many dest_address structures (SMPP 3.4
    §4.5.1.1): dest_flag 1 + TON + NPI + address, or dest_flag 2 + dl_name."""

    default = ()
    status = S.ESME_RINVNUMDESTS

    def decode_lines(self, name: str, ref: str) -> list[str]:
        return [f"{name}, pos = {ref}.pull(buf, pos, end)"]

    def pull(self, buf: bytes, pos: int, end: int) -> tuple[tuple[DestAddress, ...], int]:
        if pos >= end:
            raise Malformed(S.ESME_RINVCMDLEN, "number_of_dests", "the PDU ends before it")
        count = buf[pos]
        pos += 1
        if count > MAX_DESTINATIONS:
            raise Malformed(self.status, "number_of_dests", f"{count} > {MAX_DESTINATIONS}")
        out: list[DestAddress] = []
        for _ in range(count):
            if pos >= end:
                raise Malformed(S.ESME_RINVCMDLEN, "dest_flag", "the PDU ends before it")
            flag = buf[pos]
            if flag == DestFlag.SME_ADDRESS:
                if pos + 3 > end:
                    raise Malformed(S.ESME_RINVCMDLEN, "dest_address", "the PDU ends inside it")
                ton, npi = buf[pos + 1], buf[pos + 2]
                address, pos = _pull_cstring(_ADDR21, "destination_addr", buf, pos + 3, end)
                out.append(SmeAddress(ton, npi, address))
            elif flag == DestFlag.DISTRIBUTION_LIST:
                dl_name, pos = _pull_cstring(_DL_NAME, "dl_name", buf, pos + 1, end)
                out.append(DistributionList(dl_name))
            else:
                raise Malformed(S.ESME_RINVDESTFLAG, "dest_flag", f"{flag} is neither 1 nor 2")
        return tuple(out), pos

    def encode_lines(self, name: str, ref: str) -> tuple[list[str], list[str]]:
        return [], [f"{ref}.push({name!r}, o.{name})"]

    def push(self, name: str, dests: tuple[DestAddress, ...]) -> bytes:
        self.check(name, dests)
        parts = [bytes((len(dests),))]
        for dest in dests:
            if isinstance(dest, SmeAddress):
                parts.append(bytes((DestFlag.SME_ADDRESS, dest.ton, dest.npi)))
                parts.append(dest.address.encode("latin-1") + b"\0")
            else:
                parts.append(bytes((DestFlag.DISTRIBUTION_LIST,)))
                parts.append(dest.name.encode("latin-1") + b"\0")
        return b"".join(parts)

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, tuple) or len(value) > MAX_DESTINATIONS:
            raise InvalidField(name, f"a tuple of at most {MAX_DESTINATIONS} addresses",
                               self.status)
        for dest in value:
            if isinstance(dest, SmeAddress):
                U8(S.ESME_RINVDSTTON).check(f"{name}.ton", dest.ton)
                U8(S.ESME_RINVDSTNPI).check(f"{name}.npi", dest.npi)
                _ADDR21.check(f"{name}.address", dest.address)
            elif isinstance(dest, DistributionList):
                _DL_NAME.check(f"{name}.name", dest.name)
            else:
                raise InvalidField(name, f"{dest!r} is not a DestAddress", S.ESME_RINVDESTFLAG)


class UnsuccessSmes(Field):
    """no_unsuccess then that many unsuccess_sme structures (SMPP 3.4 §4.5.2):
    TON, NPI, destination_addr, error_status_code (Integer, 4)."""

    default = ()
    status = S.ESME_RINVNUMDESTS

    def decode_lines(self, name: str, ref: str) -> list[str]:
        return [f"{name}, pos = {ref}.pull(buf, pos, end)"]

    def pull(self, buf: bytes, pos: int, end: int) -> tuple[tuple[UnsuccessSme, ...], int]:
        if pos >= end:
            raise Malformed(S.ESME_RINVCMDLEN, "no_unsuccess", "the PDU ends before it")
        count = buf[pos]
        pos += 1
        if count > MAX_UNSUCCESS:
            raise Malformed(self.status, "no_unsuccess", f"{count} > {MAX_UNSUCCESS}")
        out: list[UnsuccessSme] = []
        for _ in range(count):
            if pos + 2 > end:
                raise Malformed(S.ESME_RINVCMDLEN, "unsuccess_sme", "the PDU ends inside it")
            ton, npi = buf[pos], buf[pos + 1]
            address, pos = _pull_cstring(_ADDR21, "destination_addr", buf, pos + 2, end)
            if pos + 4 > end:
                raise Malformed(S.ESME_RINVCMDLEN, "error_status_code", "the PDU ends inside it")
            error = int.from_bytes(buf[pos:pos + 4], "big")
            pos += 4
            out.append(UnsuccessSme(ton, npi, address, error))
        return tuple(out), pos

    def encode_lines(self, name: str, ref: str) -> tuple[list[str], list[str]]:
        return [], [f"{ref}.push({name!r}, o.{name})"]

    def push(self, name: str, smes: tuple[UnsuccessSme, ...]) -> bytes:
        self.check(name, smes)
        parts = [bytes((len(smes),))]
        for sme in smes:
            parts.append(bytes((sme.ton, sme.npi)))
            parts.append(sme.address.encode("latin-1") + b"\0")
            parts.append(sme.error_status_code.to_bytes(4, "big"))
        return b"".join(parts)

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, tuple) or len(value) > MAX_UNSUCCESS:
            raise InvalidField(name, f"a tuple of at most {MAX_UNSUCCESS} entries", self.status)
        for sme in value:
            if not isinstance(sme, UnsuccessSme):
                raise InvalidField(name, f"{sme!r} is not an UnsuccessSme", self.status)
            U8().check(f"{name}.ton", sme.ton)
            U8().check(f"{name}.npi", sme.npi)
            _ADDR21.check(f"{name}.address", sme.address)
            if not 0 <= sme.error_status_code <= 0xFFFFFFFF:
                raise InvalidField(f"{name}.error_status_code", "not 32 bits", self.status)
