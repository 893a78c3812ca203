"""Tests of tasks: the API, both stores, the event log, batches and counts."""
