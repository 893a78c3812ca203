"""Tests of `/api/users`."""
