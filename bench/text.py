"""herald.text throughput against independent implementations, measured in one run.

Peers: smpplib 2.2.4 (`smpplib.gsm`: GSM encode + split, as used by its
client) and pycrate 0.8 (`pycrate_mobile.TS23038`: 7-bit packing with fill
bits). Prints one table; nothing is asserted.

    .venv/bin/python bench/text.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable

from pycrate_mobile import TS23038
from smpplib import consts as smpplib_consts
from smpplib import gsm as smpplib_gsm

from herald.text import (
    Encoding,
    Method,
    Reassembler,
    analyze,
    decode,
    encode,
    gsm_decode,
    gsm_encode,
    split_text,
)

OTP = "Your verification code is 482913. It expires in 10 minutes. Do not share it. {ref}"
GSM_160 = (OTP * 3)[:160]
GSM_612 = ("Reminder: your appointment is on Monday at 10:30 [room 4]. " * 11)[:612]
UCS2_200 = ("Ваш код подтверждения 482913 😀 " * 8)[:200]
PACKED_160 = encode(GSM_160, Encoding.GSM7, packed=True)
UNPACKED_160 = gsm_encode(GSM_160)
LONG_GSM = ("x" * 152 + "€") * 60  # ~9 200 septets, 61 parts


def _feed_three() -> None:
    r = Reassembler()
    r.feed("k", 3, 2, b"b" * 153, now=0.0)
    r.feed("k", 3, 3, b"c" * 10, now=0.0)
    r.feed("k", 3, 1, b"a" * 153, now=0.0)


Case = tuple[str, Callable[[], object], str, Callable[[], object] | None]

CASES: list[Case] = [
    ("GSM encode, 160 chars", lambda: gsm_encode(GSM_160),
     "smpplib gsm_encode", lambda: smpplib_gsm.gsm_encode(GSM_160)),
    ("GSM encode+split, 612 chars (4 parts)", lambda: split_text(GSM_612),
     "smpplib make_parts", lambda: smpplib_gsm.make_parts(GSM_612)),
    ("UCS-2 encode+split, 200 chars (3 parts)", lambda: split_text(UCS2_200),
     "smpplib make_parts", lambda: smpplib_gsm.make_parts(
         UCS2_200, smpplib_consts.SMPP_ENCODING_ISO10646)),
    ("GSM encode packed, 160 chars", lambda: encode(GSM_160, Encoding.GSM7, packed=True),
     "pycrate encode_7b", lambda: TS23038.encode_7b(GSM_160)),
    ("GSM decode packed, 140 octets", lambda: decode(PACKED_160, Encoding.GSM7, packed=True),
     "pycrate decode_7b", lambda: TS23038.decode_7b(PACKED_160)),
    ("GSM split packed, 9200 septets (61 parts)",
     lambda: split_text(LONG_GSM, packed=True),
     "pycrate encode_7b (whole)", lambda: TS23038.encode_7b(LONG_GSM)),
    ("GSM decode unpacked, 160 septets", lambda: gsm_decode(UNPACKED_160), "-", None),
    ("analyze, 612 chars", lambda: analyze(GSM_612, method=Method.UDH8), "-", None),
    ("Reassembler, 3 parts", _feed_three, "-", None),
]


def _per_call(fn: Callable[[], object], budget: float) -> float:
    """Median seconds per call over 5 timed runs of about `budget`/5 seconds each."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()  # bounded: stops once a run takes >= 0.2 s
    number = max(1, int(number * budget / 5 / 0.2))
    runs = timer.repeat(repeat=5, number=number)
    return statistics.median(runs) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, noisier figures")
    args = parser.parse_args()
    budget = 0.5 if args.quick else 2.0
    header = (f"{'operation':44} {'herald µs':>10} {'msg/s':>10}   "
              f"{'peer':26} {'peer µs':>9} {'peer/herald':>11}")
    print(header)
    print("-" * len(header))
    for name, ours, peer_name, peer in CASES:
        t_ours = _per_call(ours, budget)
        line = f"{name:44} {t_ours * 1e6:10.2f} {1 / t_ours:10.0f}   {peer_name:26}"
        if peer is not None:
            t_peer = _per_call(peer, budget)
            line += f" {t_peer * 1e6:9.2f} {t_peer / t_ours:10.1f}x"
        print(line)


if __name__ == "__main__":
    main()
