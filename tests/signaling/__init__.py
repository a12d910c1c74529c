"""Tests of the SIGTRAN codecs (herald.signaling)."""
