"""Bad request bodies get a 4xx JSON error and change nothing."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.helpers.support import Client

JSON = {"Content-Type": "application/json"}
LIMIT = 1024 * 1024

# name -> (raw body, extra headers, status, code)
BAD_BODIES: dict[str, tuple[bytes | None, dict[str, str], int, str]] = {
    "malformed JSON": (b'{"title": ', JSON, 400, "bad_request"),
    "array body": (b'[{"title": "x"}]', JSON, 400, "bad_request"),
    "string body": (b'"x"', JSON, 400, "bad_request"),
    "null body": (b"null", JSON, 400, "bad_request"),
    "empty body": (b"", JSON, 400, "bad_request"),
    "no body at all": (None, {}, 400, "bad_request"),
    "text/plain": (
        b'{"title": "x", "done": true}',
        {"Content-Type": "text/plain"},
        415,
        "unsupported_media_type",
    ),
    "form encoded": (
        b"title=x",
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "unsupported_media_type",
    ),
    "unknown field": (
        b'{"title": "x", "done": true, "owner": "me"}',
        JSON,
        400,
        "validation_error",
    ),
    "title a number": (b'{"title": 5, "done": true}', JSON, 400, "validation_error"),
    "title null": (b'{"title": null, "done": true}', JSON, 400, "validation_error"),
    "done a string": (b'{"title": "x", "done": "yes"}', JSON, 400, "validation_error"),
    "done a number": (b'{"title": "x", "done": 1}', JSON, 400, "validation_error"),
    "blank title": (b'{"title": "   ", "done": true}', JSON, 400, "validation_error"),
    "empty title": (b'{"title": "", "done": true}', JSON, 400, "validation_error"),
    "201-character title": (
        json.dumps({"title": "x" * 201, "done": True}).encode(),
        JSON,
        400,
        "validation_error",
    ),
    "oversized body": (
        json.dumps({"title": "x", "done": True, "pad": "y" * LIMIT}).encode(),
        JSON,
        413,
        "payload_too_large",
    ),
}


async def send(
    client: Client, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> Any:
    # quart.typing leaves out the default of open's `json`, which Quart gives it.
    if body is None:
        return await client.open(path, method=method, headers=headers)  # type: ignore[call-arg]
    return await client.open(path, method=method, data=body, headers=headers)  # type: ignore[call-arg]


async def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status
    body = await response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"), BAD_BODIES.values(), ids=BAD_BODIES.keys()
)
async def test_a_bad_create_writes_nothing(
    client: Client,
    auth: dict[str, str],
    count_tasks: Callable[[], Awaitable[int]],
    body: bytes | None,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = await send(client, "POST", "/api/tasks", body, {**auth, **headers})

    await assert_error(response, status, code)
    assert await count_tasks() == 0


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(
    ("body", "headers", "status", "code"), BAD_BODIES.values(), ids=BAD_BODIES.keys()
)
async def test_a_bad_update_changes_nothing(
    client: Client,
    auth: dict[str, str],
    method: str,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    created = await client.post("/api/tasks", json={"title": "keep me"}, headers=auth)
    task = await created.get_json()
    path = f"/api/tasks/{task['id']}"

    response = await send(client, method, path, body, {**auth, **headers})

    await assert_error(response, status, code)
    assert await (await client.get(path, headers=auth)).get_json() == task


async def test_validation_errors_name_each_field(client: Client, auth: dict[str, str]) -> None:
    response = await client.post("/api/tasks", json={"done": "no", "extra": 1}, headers=auth)

    error = (await response.get_json())["error"]
    assert error["code"] == "validation_error"
    assert sorted(detail["loc"][0] for detail in error["details"]) == ["done", "extra", "title"]
    assert all(detail["message"] for detail in error["details"])


async def test_a_title_of_exactly_200_characters_is_accepted(
    client: Client, auth: dict[str, str]
) -> None:
    response = await client.post("/api/tasks", json={"title": "x" * 200}, headers=auth)

    assert response.status_code == 201


async def test_a_body_just_under_the_limit_is_read(client: Client, auth: dict[str, str]) -> None:
    """The 413 above comes from the limit, not from the body being large in itself."""
    padding = "y" * (LIMIT - 100)
    response = await client.post("/api/tasks", json={"title": "x", "pad": padding}, headers=auth)

    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "validation_error"


async def test_json_with_a_charset_is_json(client: Client, auth: dict[str, str]) -> None:
    response = await client.post(
        "/api/tasks",
        data=b'{"title": "x"}',
        headers={**auth, "Content-Type": "application/json; charset=utf-8"},
    )

    assert response.status_code == 201
