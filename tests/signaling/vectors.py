"""Annotated byte vectors, written by hand from the specifications.

Each vector is the wire encoding spelled out octet by octet with the spec's
field names, so a test comparing herald's decoder against it checks the codec
against the standard rather than against itself. Numbering is fictional
(E.212 test MCC 001; E.164 numbers in the unassigned +1999 / +2888 ranges).
"""

from __future__ import annotations


def hx(*chunks: str) -> bytes:
    """Concatenate hex chunks (whitespace ignored)."""
    return bytes.fromhex("".join(chunks))


# --- TCAP (Q.773) Begin: updateLocation v3 --------------------------------------
# IMSI 001010123456789 as TBCD (TS 29.002 §17.7.8): digit pairs, low nibble
# first, 1111 filler: 00 01 01 21 43 65 87 f9.
UL_ARGUMENT = hx(
    "30 1a",                              # UpdateLocationArg SEQUENCE, 26 octets
    "04 08 00 01 01 21 43 65 87 f9",      #   imsi IMSI (universal OCTET STRING)
    "81 06 91 82 88 00 10 10",            #   msc-Number [1]: intl E.164, 2888000101
    "04 06 91 82 88 00 10 20",            #   vlr-Number: intl E.164, 2888000102
)
UL_DIALOGUE = hx(
    "6b 1e",                              # dialoguePortion [APPLICATION 11]
    "28 1c",                              #   EXTERNAL
    "06 07 00 11 86 05 01 01 01",         #     direct-reference dialogue-as-id
    "a0 11",                              #     single-ASN1-type [0]
    "60 0f",                              #       AARQ [APPLICATION 0]
    "80 02 07 80",                        #         protocol-version: version1
    "a1 09 06 07 04 00 00 01 00 01 03",   #         AC networkLocUp v3 (0.4.0.0.1.0.1.3)
)
UL_TCAP = hx(
    "62 4c",                              # Begin [APPLICATION 2], 76 octets
    "48 04 00 00 00 01",                  #   otid [APPLICATION 8]
    UL_DIALOGUE.hex(),
    "6c 24",                              #   components [APPLICATION 12]
    "a1 22",                              #     invoke [1]
    "02 01 01",                           #       invokeID 1
    "02 01 02",                           #       opCode local 2 (updateLocation)
    UL_ARGUMENT.hex(),                    #       argument
)

# --- SCCP (Q.713) UDT carrying it -----------------------------------------------
HLR_ADDRESS = hx(
    "12",                                 # AI: RI=GT(0), GTI=4, SSN present, no PC
    "06",                                 # SSN 6 (HLR)
    "00",                                 # translation type 0
    "12",                                 # NP 1 (E.164) | ES 2 (BCD, even)
    "04",                                 # NAI 4 (international)
    "91 99 00 00 10",                     # digits 1999000001
)
VLR_ADDRESS = hx("12 07 00 12 04", "82 88 00 10 20")  # SSN 7 (VLR), 2888000102
UL_UDT = hx(
    "09",                                 # message type UDT
    "80",                                 # protocol class 0, return message on error
    "03 0d 17",                           # pointers: called, calling, data
    "0a", HLR_ADDRESS.hex(),              # called party address (10 octets)
    "0a", VLR_ADDRESS.hex(),              # calling party address (10 octets)
    "4e", UL_TCAP.hex(),                  # data (78 octets)
)

# --- M3UA (RFC 4666) DATA carrying it --------------------------------------------
UL_M3UA = hx(
    "01 00 01 01 00 00 00 8c",            # v1, class 1 transfer, type 1 DATA, 140 octets
    "00 06 00 08 00 00 00 07",            # Routing Context = 7
    "02 10 00 7a",                        # Protocol Data, 122 octets (+2 padding)
    "00 00 12 34",                        #   OPC 0x1234
    "00 00 01 01",                        #   DPC 0x0101
    "03 02 00 0a",                        #   SI 3 (SCCP), NI 2 (national), MP 0, SLS 10
    UL_UDT.hex(),
    "00 00",                              # padding to a 4-octet boundary
)

# --- SRI-SM v3 Begin with sm-deliveryNotIntended (TS 29.002 §10.5.6) ---------------
SRI_SM_ARGUMENT = hx(
    "30 13",                              # RoutingInfoForSM-Arg
    "80 06 91 91 99 00 00 f5",            #   msisdn [0]: 199900005 (odd: 1111 filler)
    "81 01 ff",                           #   sm-RP-PRI [1] TRUE
    "82 03 91 82 f8",                     #   serviceCentreAddress [2]: 288
    "8a 01 00",                           #   sm-deliveryNotIntended [10] onlyIMSI-requested
)

# --- MT-ForwardSM v3 argument with a silent SMS-DELIVER (TS 23.040 §9.2.2.1) -------
SILENT_TPDU = hx(
    "04",                                 # MTI 00 SMS-DELIVER, MMS (no more messages)
    "0a 91 99 19 00 00 10",               # TP-OA: 10 semi-octets, intl E.164, 9991000001
    "40",                                 # TP-PID 0x40: Short Message Type 0
    "00",                                 # TP-DCS: GSM 7-bit default alphabet
    "52 10 10 21 43 00 00",               # TP-SCTS
    "00",                                 # TP-UDL 0
)
MT_FSM_ARGUMENT = hx(
    "30 24",                              # MT-ForwardSM-Arg (36 octets)
    "80 08 00 01 01 21 43 65 87 f9",      #   sm-RP-DA imsi [0]
    "84 04 91 82 88 f0",                  #   sm-RP-OA serviceCentreAddressOA [4]: 28880
    "04 12", SILENT_TPDU.hex(),           #   sm-RP-UI (18 octets)
)

# --- Other M3UA messages -----------------------------------------------------------
ASPUP = hx("01 00 03 01 00 00 00 10", "00 11 00 08 00 00 00 2a")        # ASP Identifier 42
BEAT = hx("01 00 03 03 00 00 00 14", "00 09 00 09 68 65 72 61 6c 00 00 00")  # "heral" + pad
NTFY = hx("01 00 00 01 00 00 00 18",
          "00 0d 00 08 00 01 00 03",      # Status: type 1 (AS state change), info 3 (AS-ACTIVE)
          "00 06 00 08 00 00 00 07")      # Routing Context 7
ERR = hx("01 00 00 00 00 00 00 10", "00 0c 00 08 00 00 00 19")          # Invalid Routing Context
DUNA = hx("01 00 02 01 00 00 00 10", "00 12 00 08 00 00 12 34")         # affected PC 0x1234
ASPAC = hx("01 00 04 01 00 00 00 18",
           "00 0b 00 08 00 00 00 02",     # Traffic Mode Type 2 (loadshare)
           "00 06 00 08 00 00 00 07")     # Routing Context 7

# --- XUDT with an optional part and UDTS (Q.713 §4.18, §4.11) ----------------------
XUDT = hx(
    "11",                                 # XUDT
    "01",                                 # protocol class 1, no return option
    "0f",                                 # hop counter 15
    "04 06 08 0b",                        # pointers: called, calling, data, optional
    "02 42 08",                           # called: AI RI=SSN, SSN present; SSN 8 (MSC)
    "02 42 06",                           # calling: SSN 6 (HLR)
    "03 aa bb cc",                        # data (3 octets, not TCAP: SCCP-only vector)
    "12 01 04",                           # optional: importance 4
    "00",                                 # end of optional parameters
)
UDTS = hx(
    "0a",                                 # UDTS
    "01",                                 # return cause 1: no translation for this address
    "03 07 09",                           # pointers: called, calling, data
    "04 43 01 01 08",                     # called: RI=SSN, PC 0x0101 (LSB first), SSN 8
    "02 42 06",                           # calling: RI=SSN, SSN 6
    "02 aa bb",                           # data: the returned user data
)
