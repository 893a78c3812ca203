"""Helpers shared by the tests that do not need the app fixture."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from quart_tasks.storage.engine import pooler_options

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or None
TEST_SECRET_KEY = "test-secret-key-long-enough-for-every-hmac-algorithm-0123456789abcdef"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def redis_reachable(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(condition: bool, reason: str) -> None:
    """Skip when `condition` fails, except in CI, where everything must run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


__all__ = [
    "IN_CI",
    "TEST_DATABASE_URL",
    "TEST_SECRET_KEY",
    "Client",
    "redis_reachable",
    "require",
]


def engine_for(database_url: str, **options: Any) -> AsyncEngine:
    """An engine of the tests' own on `database_url`: behind PgBouncer (`DB_BEHIND_POOLER`),
    with the app's statement options, for a statement prepared by name on one server
    connection would stay there for the next client to trip over."""
    if os.environ.get("DB_BEHIND_POOLER") == "true":
        options["connect_args"] = {**options.get("connect_args", {}), **pooler_options()}
    return create_async_engine(database_url, **options)
