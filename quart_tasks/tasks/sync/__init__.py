"""Incremental sync: every task once, then only what changed (`GET /api/tasks/sync`)."""
