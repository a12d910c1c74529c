"""Hypothesis strategies shared by the herald.text tests."""

from __future__ import annotations

from hypothesis import strategies as st

from herald.text import BASIC_TABLE, EXTENSION_TABLE

GSM_BASIC = [c for c in BASIC_TABLE if c != "\x1b"]
GSM_EXTENSION = sorted(EXTENSION_TABLE.values())
GSM_CHARS = GSM_BASIC + GSM_EXTENSION

# Weighted towards extension characters so escape pairs land on part boundaries.
gsm_char = st.one_of(st.sampled_from(GSM_BASIC), st.sampled_from(GSM_EXTENSION))
gsm_text = st.text(alphabet=gsm_char, max_size=700)
long_gsm_text = st.text(alphabet=gsm_char, min_size=150, max_size=1200)

# Any Unicode scalar value (Hypothesis excludes lone surrogates by default),
# with astral characters frequent so surrogate pairs meet part boundaries.
astral = st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF)
any_char = st.one_of(st.characters(codec="utf-8"), astral, st.sampled_from(["a", "€", "é"]))
unicode_text = st.text(alphabet=any_char, max_size=400)
latin1_text = st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=600)
ascii_text = st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=600)
