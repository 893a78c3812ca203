"""ETags, `If-None-Match` (304) and `If-Match` (412): no client loses an update."""

from __future__ import annotations

from typing import Any

import pytest

from quart_tasks.tasks.store.fast import FastTaskStore
from quart_tasks.tasks.store.portable import PortableTaskStore
from tests.helpers.support import Client


@pytest.fixture
async def created(client: Client, auth: dict[str, str]) -> Any:
    return await client.post("/api/tasks", json={"title": "versioned"}, headers=auth)


@pytest.fixture
async def task(created: Any) -> dict[str, Any]:
    body: dict[str, Any] = await created.get_json()
    return body


def path(task: dict[str, Any]) -> str:
    return f"/api/tasks/{task['id']}"


async def test_every_single_task_response_has_an_etag(
    client: Client, auth: dict[str, str], created: Any, task: dict[str, Any]
) -> None:
    got = await client.get(path(task), headers=auth)
    put = await client.put(path(task), json={"title": "v2", "done": False}, headers=auth)
    patched = await client.patch(path(task), json={"done": True}, headers=auth)

    tags = [r.headers["ETag"] for r in (created, got, put, patched)]
    assert tags == ['"1"', '"1"', '"2"', '"3"']


async def test_if_none_match_gives_304_with_no_body_while_unchanged(
    client: Client, auth: dict[str, str], created: Any, task: dict[str, Any]
) -> None:
    tag = created.headers["ETag"]

    unchanged = await client.get(path(task), headers={**auth, "If-None-Match": tag})
    await client.patch(path(task), json={"done": True}, headers=auth)
    changed = await client.get(path(task), headers={**auth, "If-None-Match": tag})

    assert unchanged.status_code == 304
    assert await unchanged.get_data() == b""
    assert unchanged.headers["ETag"] == tag
    assert changed.status_code == 200
    assert (await changed.get_json())["done"] is True


@pytest.mark.parametrize("header", ['W/"1"', '"7", "1"', "*"])
async def test_if_none_match_compares_weakly_and_takes_lists_and_star(
    client: Client, auth: dict[str, str], task: dict[str, Any], header: str
) -> None:
    response = await client.get(path(task), headers={**auth, "If-None-Match": header})

    assert response.status_code == 304


@pytest.mark.parametrize(
    ("method", "body"),
    [("PUT", {"title": "x", "done": True}), ("PATCH", {"done": True}), ("DELETE", None)],
)
async def test_a_stale_if_match_is_412_and_changes_nothing(
    client: Client, auth: dict[str, str], task: dict[str, Any], method: str, body: Any
) -> None:
    await client.patch(path(task), json={"title": "moved on"}, headers=auth)
    current = await (await client.get(path(task), headers=auth)).get_json()

    response = await client.open(
        path(task), method=method, json=body, headers={**auth, "If-Match": '"1"'}
    )

    assert response.status_code == 412
    assert response.headers["ETag"] == '"2"'
    assert (await response.get_json())["error"]["code"] == "precondition_failed"
    assert await (await client.get(path(task), headers=auth)).get_json() == current


@pytest.mark.parametrize("header", ['"1"', '"9", "1"', "*"])
async def test_a_matching_if_match_lets_the_change_through(
    client: Client, auth: dict[str, str], task: dict[str, Any], header: str
) -> None:
    response = await client.patch(
        path(task), json={"done": True}, headers={**auth, "If-Match": header}
    )

    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'


async def test_a_weak_tag_never_satisfies_if_match(
    client: Client, auth: dict[str, str], task: dict[str, Any]
) -> None:
    response = await client.patch(
        path(task), json={"done": True}, headers={**auth, "If-Match": 'W/"1"'}
    )

    assert response.status_code == 412


async def test_delete_with_the_current_tag(
    client: Client, auth: dict[str, str], task: dict[str, Any]
) -> None:
    response = await client.delete(path(task), headers={**auth, "If-Match": '"1"'})

    assert response.status_code == 204
    assert (await client.get(path(task), headers=auth)).status_code == 404


async def test_if_match_on_a_missing_task_is_404(client: Client, auth: dict[str, str]) -> None:
    for header in ('"1"', "*"):
        response = await client.patch(
            "/api/tasks/424242", json={"done": True}, headers={**auth, "If-Match": header}
        )
        assert response.status_code == 404


@pytest.mark.parametrize(
    "change",
    [{}, {"done": False}, {"title": "versioned"}, {"title": "  versioned  ", "done": False}],
)
async def test_a_change_to_the_same_values_keeps_the_etag(
    client: Client, auth: dict[str, str], task: dict[str, Any], change: dict[str, Any]
) -> None:
    response = await client.patch(path(task), json=change, headers={**auth, "If-Match": '"1"'})

    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    assert await response.get_json() == task


async def test_a_put_of_the_same_values_keeps_the_etag(
    client: Client, auth: dict[str, str], task: dict[str, Any]
) -> None:
    response = await client.put(
        path(task), json={"title": "versioned", "done": False}, headers=auth
    )

    assert response.headers["ETag"] == '"1"'
    assert (await response.get_json())["updated_at"] == task["updated_at"]


async def test_an_empty_patch_still_checks_if_match(
    client: Client, auth: dict[str, str], task: dict[str, Any]
) -> None:
    response = await client.patch(path(task), json={}, headers={**auth, "If-Match": '"5"'})

    assert response.status_code == 412


async def test_a_change_that_found_no_task_is_404_without_if_match_even_if_it_exists_now(
    client: Client, auth: dict[str, str], task: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write ran before the task was committed (another request was creating it), and
    the task is there by the time the refusal is explained: without a version to check,
    that is not a failed precondition."""

    async def touched_nothing(*_: object) -> None:
        return None

    for store in (PortableTaskStore, FastTaskStore):
        monkeypatch.setattr(store, "apply_update", touched_nothing)

    unconditional = await client.patch(path(task), json={"done": True}, headers=auth)
    conditional = await client.patch(
        path(task), json={"done": True}, headers={**auth, "If-Match": '"7"'}
    )

    assert unconditional.status_code == 404
    assert conditional.status_code == 412
    assert conditional.headers["ETag"] == '"1"'
