"""The tutorial's own two tests: logging in, then creating and listing a task."""

from tests.helpers.support import Client


async def test_login_returns_a_bearer_token(client: Client) -> None:
    response = await client.post("/api/login", json={"username": "admin", "password": "admin"})

    assert response.status_code == 200
    body = await response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"].count(".") == 2


async def test_create_then_list(client: Client, auth: dict[str, str]) -> None:
    created = await client.post("/api/tasks", json={"title": "Write docs"}, headers=auth)
    listed = await client.get("/api/tasks", headers=auth)

    assert created.status_code == 201
    task = await created.get_json()
    assert task["title"] == "Write docs"
    assert task["done"] is False
    assert listed.status_code == 200
    assert (await listed.get_json())["items"] == [task]
