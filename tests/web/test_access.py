"""Access is denied by default: every route declares who may call it, and one that
forgets is refused to anonymous callers rather than opened to them."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart, jsonify, websocket
from quart.testing.connections import WebsocketDisconnectError

from quart_tasks import config as settings
from quart_tasks.web.access import view_access
from tests.helpers.apps import ADMIN, bearer, serving

PUBLIC_ENDPOINTS = {
    "auth.login",
    "auth.refresh",
    "docs.swagger_asset",
    "ops.healthz",
    "ops.readyz",
    "ops.metrics",
    "openapi",
    "swagger_ui",
}
"""The routes anyone may call. A new one belongs here only if it must be open to all."""


def declared_access(app: Quart) -> dict[str, str | None]:
    return {
        rule.endpoint: view_access(app.view_functions[rule.endpoint])
        for rule in app.url_map.iter_rules()
    }


def test_every_route_declares_who_may_call_it(app: Quart) -> None:
    undeclared = [endpoint for endpoint, access in declared_access(app).items() if access is None]
    assert undeclared == []


def test_only_the_listed_routes_are_public(app: Quart) -> None:
    public = {endpoint for endpoint, access in declared_access(app).items() if access == "public"}
    assert public == PUBLIC_ENDPOINTS


async def undeclared_view() -> Any:
    return jsonify({"reached": True})


async def undeclared_websocket() -> None:
    await websocket.accept()
    await websocket.send("reached")


@pytest.mark.parametrize("token", [None, "not-a-token"], ids=["no token", "forged token"])
async def test_a_route_that_declares_nothing_is_refused_without_a_valid_token(
    config: settings.TestingConfig, token: str | None
) -> None:
    async with serving(config) as app:
        app.add_url_rule("/api/undeclared", view_func=undeclared_view)
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        response = await app.test_client().get("/api/undeclared", headers=headers)
    assert response.status_code == 401
    assert (await response.get_json())["error"]["code"] == "unauthorized"


async def test_a_route_that_declares_nothing_serves_a_signed_in_caller(
    config: settings.TestingConfig,
) -> None:
    async with serving(config) as app:
        app.add_url_rule("/api/undeclared", view_func=undeclared_view)
        client = app.test_client()
        login = await client.post("/api/login", json=ADMIN)
        response = await client.get("/api/undeclared", headers=bearer(await login.get_json()))
    assert response.status_code == 200
    assert await response.get_json() == {"reached": True}


async def test_a_websocket_that_declares_nothing_is_closed_without_a_token(
    config: settings.TestingConfig,
) -> None:
    async with serving(config) as app:
        app.websocket("/api/undeclared-ws")(undeclared_websocket)
        async with app.test_client().websocket("/api/undeclared-ws") as socket:
            with pytest.raises(WebsocketDisconnectError) as closed:
                await socket.receive()
    assert closed.value.args == (1008,)
