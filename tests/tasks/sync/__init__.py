"""Tests of `tasks/sync/`: incremental sync."""
