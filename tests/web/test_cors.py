"""CORS: only the configured origins, with the headers clients need exposed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.helpers.apps import serving, settings_for_test
from tests.helpers.support import Client

ORIGIN = "https://app.example.com"


@pytest.fixture
async def cors_client(tmp_path: Path) -> AsyncIterator[Client]:
    config = settings_for_test(tmp_path, CORS_ORIGINS=f"{ORIGIN}, https://other.example.com")
    async with serving(config) as app:
        yield app.test_client()


async def test_a_preflight_from_an_allowed_origin_is_answered(cors_client: Client) -> None:
    response = await cors_client.options(
        "/api/tasks/1",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        },
    )

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "if-match"} <= set(allowed.replace(" ", "").split(","))


async def test_responses_expose_the_headers_clients_read(
    cors_client: Client,
) -> None:
    response = await cors_client.get("/api/tasks", headers={"Origin": ORIGIN})

    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = {
        h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"etag", "location", "link", "x-request-id", "idempotent-replayed"} <= exposed


async def test_another_origin_gets_no_cors_headers(cors_client: Client) -> None:
    response = await cors_client.get("/api/tasks", headers={"Origin": "https://evil.example"})

    assert "Access-Control-Allow-Origin" not in response.headers


async def test_no_origin_is_allowed_by_default(client: Client) -> None:
    response = await client.options(
        "/api/tasks",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )

    assert "Access-Control-Allow-Origin" not in response.headers
