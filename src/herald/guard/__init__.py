"""The signaling guard's adapters: pcap I/O, audit log, scan and proxy modes, CLI.

The decisions are made by the pure engine in :mod:`herald.signaling.policy`;
this package reads captures and sockets, writes the audit log and prints.
"""
