"""Tests of the signaling guard: policy engine, audit log, scan, proxy, CLI, corpus."""
