"""Crash safety of the whole platform: herald SIGKILLed under load, restarted, checked."""
