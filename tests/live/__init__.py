"""Tests of live changes: streams, the broker, the listener."""
