"""The API over real HTTP, served by Hypercorn through `quart-tasks serve`."""

import httpx
import pytest

pytestmark = pytest.mark.slow


async def test_login_create_and_list_over_http(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as http:
        login = await http.post("/api/login", json={"username": "admin", "password": "admin"})
        assert login.status_code == 200
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}

        created = await http.post("/api/tasks", json={"title": "over the wire"}, headers=auth)
        assert created.status_code == 201
        task = created.json()
        assert created.headers["Location"] == f"/api/tasks/{task['id']}"

        listed = await http.get("/api/tasks", params={"q": "WIRE"}, headers=auth)
        assert listed.status_code == 200
        assert task in listed.json()["items"]
        assert listed.headers["X-Request-ID"]
