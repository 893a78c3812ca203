"""Tests of `Idempotency-Key`."""
