"""Tests of herald.smpp (pure core: codec, receipts, session)."""
