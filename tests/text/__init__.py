"""Tests of herald.text (pure core: encoding, segmentation, UDH, reassembly)."""
