"""Tests of tasks: the API, both stores, the event log, the batch endpoint, sync and counts."""
