"""SIGTRAN / SS7 codecs: M3UA (RFC 4666), SCCP (Q.713), TCAP (Q.773), MAP (TS 29.002).

Pure core: no I/O, no clock. ``message`` defines the decoded value the policy
engine reads (start there); ``errors`` the typed failures.
"""
