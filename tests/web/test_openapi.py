"""`/openapi.json` documents every route with its bodies, errors and the bearer scheme."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart

from tests.helpers.support import Client

OPERATIONS = {
    ("/api/login", "post"): {200, 400, 401, 413, 415, 429, 500, 503},
    ("/api/token/refresh", "post"): {200, 400, 401, 413, 415, 500, 503},
    ("/api/logout", "post"): {204, 401, 429, 500, 503},
    ("/api/users", "post"): {201, 400, 401, 403, 409, 413, 415, 429, 500, 503},
    ("/api/users", "get"): {200, 400, 401, 403, 429, 500, 503},
    ("/api/users/me", "get"): {200, 401, 429, 500, 503},
    ("/api/tasks", "get"): {200, 400, 401, 403, 429, 500, 503},
    ("/api/tasks/sync", "get"): {200, 400, 401, 403, 410, 429, 500, 503},
    ("/api/tasks", "post"): {201, 400, 401, 409, 413, 415, 422, 429, 500, 503},
    ("/api/tasks/batch", "post"): {200, 400, 401, 409, 413, 415, 429, 500, 503},
    ("/api/tasks/{task_id}", "get"): {200, 304, 401, 404, 429, 500, 503},
    ("/api/tasks/{task_id}", "put"): {200, 400, 401, 404, 412, 413, 415, 429, 500, 503},
    ("/api/tasks/{task_id}", "patch"): {200, 400, 401, 404, 412, 413, 415, 429, 500, 503},
    ("/api/tasks/{task_id}", "delete"): {204, 401, 404, 412, 429, 500, 503},
    ("/api/tasks/events", "get"): {200, 400, 401, 429, 500, 503},
    ("/api/tasks/ws", "get"): {101, 400},
}


@pytest.fixture
async def spec(client: Client) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = await response.get_json()
    return body


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }


def test_it_is_openapi_3_1_with_a_bearer_scheme(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }


def test_every_api_route_is_documented_with_every_status_it_can_return(
    spec: dict[str, Any],
) -> None:
    documented = {key: set(map(int, op["responses"])) for key, op in operations(spec).items()}

    assert documented == OPERATIONS


def test_the_documented_routes_are_the_apps_routes(app: Quart, spec: dict[str, Any]) -> None:
    served = {
        (rule.rule.replace("<int:task_id>", "{task_id}"), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }

    assert served == set(operations(spec))


def test_protected_operations_name_the_bearer_scheme(spec: dict[str, Any]) -> None:
    anonymous = {("/api/login", "post"), ("/api/token/refresh", "post")}
    for key, operation in operations(spec).items():
        if key in anonymous:
            assert "security" not in operation
        elif key == ("/api/users", "post"):  # open registration takes anonymous callers
            assert operation["security"] == [{"bearer": []}, {}]
        else:
            assert operation["security"] == [{"bearer": []}]


def test_errors_have_the_error_schema(spec: dict[str, Any]) -> None:
    error = spec["paths"]["/api/tasks/{task_id}"]["get"]["responses"]["404"]
    schema = error["content"]["application/json"]["schema"]

    assert schema["properties"]["error"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert set(spec["components"]["schemas"]["ErrorBody"]["required"]) == {"code", "message"}


def test_bodies_query_and_headers_are_described(spec: dict[str, Any]) -> None:
    create = spec["paths"]["/api/tasks"]["post"]
    listing = spec["paths"]["/api/tasks"]["get"]

    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["title"]
    assert body["additionalProperties"] is False
    assert body["properties"]["title"]["maxLength"] == 200
    assert "location" in create["responses"]["201"]["headers"]
    assert "link" in listing["responses"]["200"]["headers"]
    assert {parameter["name"] for parameter in listing["parameters"]} == {
        "page",
        "page_size",
        "done",
        "sort",
        "q",
        "owner",
        "cursor",
    }
    assert "content" not in spec["paths"]["/api/tasks/{task_id}"]["delete"]["responses"]["204"]


def test_conditional_and_idempotency_headers_are_described(spec: dict[str, Any]) -> None:
    task = spec["paths"]["/api/tasks/{task_id}"]
    create = spec["paths"]["/api/tasks"]["post"]

    def header_names(operation: dict[str, Any]) -> set[str]:
        return {p["name"] for p in operation["parameters"] if p["in"] == "header"}

    assert header_names(task["get"]) == {"if-none-match"}
    assert header_names(task["put"]) == header_names(task["patch"]) == {"if-match"}
    assert header_names(task["delete"]) == {"if-match"}
    assert header_names(create) == {"idempotency-key"}
    for operation in (task["get"], task["put"], task["patch"]):
        assert "etag" in operation["responses"]["200"]["headers"]
    assert {"etag", "location", "idempotent-replayed"} <= set(create["responses"]["201"]["headers"])
    listing = spec["paths"]["/api/tasks"]["get"]["responses"]["200"]["content"]
    assert len(listing["application/json"]["schema"]["anyOf"]) == 2


def test_a_patch_field_is_never_null(spec: dict[str, Any]) -> None:
    patch = spec["paths"]["/api/tasks/{task_id}"]["patch"]["requestBody"]["content"]
    properties = patch["application/json"]["schema"]["properties"]

    assert properties["title"]["type"] == "string"
    assert properties["done"]["type"] == "boolean"


async def test_docs_page_loads_its_assets_from_the_app(client: Client) -> None:
    page = await (await client.get("/docs")).get_data(as_text=True)

    assert 'src="/docs/assets/swagger-ui-bundle.js"' in page
    assert 'href="/docs/assets/swagger-ui.css"' in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        response = await client.get(f"/docs/assets/{asset}")
        assert response.status_code == 200
        assert len(await response.get_data()) > 10_000


@pytest.mark.parametrize("name", ["index.html", "..%2Fflask_swagger_ui.py", "nope.js"])
async def test_only_the_listed_assets_are_served(client: Client, name: str) -> None:
    response = await client.get(f"/docs/assets/{name}")

    assert response.status_code == 404


def test_429_and_503_document_their_retry_after_header(spec: dict[str, Any]) -> None:
    for key, operation in operations(spec).items():
        for status in ("429", "503"):
            if status in operation["responses"]:
                assert "Retry-After" in operation["responses"][status]["headers"], key


def test_the_live_routes_are_described(spec: dict[str, Any]) -> None:
    events = spec["paths"]["/api/tasks/events"]["get"]
    assert list(events["responses"]["200"]["content"]) == ["text/event-stream"]
    parameters = {(p["in"], p["name"]) for p in events["parameters"]}
    assert {("query", "since"), ("query", "access_token"), ("header", "Last-Event-ID")} <= (
        parameters
    )
    websocket = spec["paths"]["/api/tasks/ws"]["get"]
    assert "1008" in websocket["description"]
    assert {p["name"] for p in websocket["parameters"]} == {"access_token", "since"}
