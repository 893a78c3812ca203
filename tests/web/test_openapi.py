"""`/openapi.json` documents every route with its bodies, errors and the bearer scheme, in
the shape client generators want: named schemas, shared responses, tags, operation ids."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
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
    ("/healthz", "get"): {200, 500},
    ("/readyz", "get"): {200, 500, 503},
}


@pytest.fixture
async def spec(client: Client) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = await response.get_json()
    return body


OPERATION_IDS = {
    ("/api/login", "post"): "login",
    ("/api/token/refresh", "post"): "refreshToken",
    ("/api/logout", "post"): "logout",
    ("/api/users", "post"): "createUser",
    ("/api/users", "get"): "listUsers",
    ("/api/users/me", "get"): "getCurrentUser",
    ("/api/tasks", "get"): "listTasks",
    ("/api/tasks/sync", "get"): "syncTasks",
    ("/api/tasks", "post"): "createTask",
    ("/api/tasks/batch", "post"): "runBatch",
    ("/api/tasks/{task_id}", "get"): "getTask",
    ("/api/tasks/{task_id}", "put"): "replaceTask",
    ("/api/tasks/{task_id}", "patch"): "patchTask",
    ("/api/tasks/{task_id}", "delete"): "deleteTask",
    ("/api/tasks/events", "get"): "streamTaskEvents",
    ("/api/tasks/ws", "get"): "taskEventsWebSocket",
    ("/healthz", "get"): "checkLiveness",
    ("/readyz", "get"): "checkReadiness",
}


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """`node`, or what its `$ref` points at within `spec`."""
    while "$ref" in node:
        found: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        node = found
    return node


def response(spec: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    return resolve(spec, spec["paths"][path][method]["responses"][status])


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
        if rule.rule.startswith("/api/") or rule.rule in ("/healthz", "/readyz")
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }

    assert served == set(operations(spec))


def test_protected_operations_name_the_bearer_scheme(spec: dict[str, Any]) -> None:
    anonymous = {
        ("/api/login", "post"),
        ("/api/token/refresh", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    }
    for key, operation in operations(spec).items():
        if key in anonymous:
            assert "security" not in operation
        elif key == ("/api/users", "post"):  # open registration takes anonymous callers
            assert operation["security"] == [{"bearer": []}, {}]
        else:
            assert operation["security"] == [{"bearer": []}]


def test_errors_have_the_error_schema(spec: dict[str, Any]) -> None:
    error = response(spec, "/api/tasks/{task_id}", "get", "404")
    schema = resolve(spec, error["content"]["application/json"]["schema"])

    assert schema["properties"]["error"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert set(spec["components"]["schemas"]["ErrorBody"]["required"]) == {"code", "message"}


def test_bodies_query_and_headers_are_described(spec: dict[str, Any]) -> None:
    create = spec["paths"]["/api/tasks"]["post"]
    listing = spec["paths"]["/api/tasks"]["get"]

    body = resolve(spec, create["requestBody"]["content"]["application/json"]["schema"])
    assert body["required"] == ["title"]
    assert body["additionalProperties"] is False
    assert body["properties"]["title"]["maxLength"] == 200
    assert create["requestBody"]["required"] is True
    assert create["responses"]["201"]["headers"]["Location"]["required"] is True
    assert "Link" in listing["responses"]["200"]["headers"]
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
        assert "ETag" in operation["responses"]["200"]["headers"]
    not_modified = task["get"]["responses"]["304"]
    assert not_modified["description"].startswith("Not Modified")
    assert "content" not in not_modified
    assert not_modified["headers"]["ETag"]["required"] is True
    headers = create["responses"]["201"]["headers"]
    assert {"ETag", "Location", "Idempotent-Replayed"} <= set(headers)
    assert headers["Idempotent-Replayed"] == {
        "schema": {"type": "string", "const": "true"},
        "required": False,
        "description": "Present when this answers a retry of an earlier request.",
    }
    listing = spec["paths"]["/api/tasks"]["get"]["responses"]["200"]["content"]
    assert len(resolve(spec, listing["application/json"]["schema"])["anyOf"]) == 2


def test_a_patch_field_is_never_null(spec: dict[str, Any]) -> None:
    patch = spec["paths"]["/api/tasks/{task_id}"]["patch"]["requestBody"]["content"]
    properties = resolve(spec, patch["application/json"]["schema"])["properties"]

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
                answer = resolve(spec, operation["responses"][status])
                assert "Retry-After" in answer["headers"], key


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


def test_operation_ids_read_as_client_methods(spec: dict[str, Any]) -> None:
    ids = {key: operation["operationId"] for key, operation in operations(spec).items()}

    assert ids == OPERATION_IDS


def test_every_operation_is_tagged_by_its_part_of_the_api(spec: dict[str, Any]) -> None:
    tags = {tag["name"] for tag in spec["tags"]}

    assert tags == {"tasks", "live", "auth", "users", "ops"}
    for key, operation in operations(spec).items():
        assert len(operation["tags"]) == 1, key
        assert operation["tags"][0] in tags, key
    assert spec["paths"]["/api/tasks/ws"]["get"]["tags"] == ["live"]
    assert spec["paths"]["/api/token/refresh"]["post"]["tags"] == ["auth"]


def test_every_error_answer_is_a_shared_response(spec: dict[str, Any]) -> None:
    shared = spec["components"]["responses"]
    for key, operation in operations(spec).items():
        for status, answer in operation["responses"].items():
            if key == ("/readyz", "get") and status == "503":
                continue  # not an error body: the readiness report, as for 200
            if int(status) >= 400:
                assert answer == {"$ref": f"#/components/responses/{answer['$ref'].split('/')[-1]}"}
                assert answer["$ref"].split("/")[-1] in shared, (key, status)
    for answer in shared.values():
        schema = answer["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}


def body_schemas(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, schema) of every JSON request and response body, as referenced."""
    found = []
    for (path, method), operation in operations(spec).items():
        media = [operation.get("requestBody", {}).get("content", {}).get("application/json")]
        for answer in operation["responses"].values():
            media.append(resolve(spec, answer).get("content", {}).get("application/json"))
        for entry in media:
            if entry is not None:
                found.append((f"{method.upper()} {path}", entry["schema"]))
    return found


def test_every_body_is_a_named_schema(spec: dict[str, Any]) -> None:
    for where, schema in body_schemas(spec):
        assert set(schema) == {"$ref"}, where
        assert schema["$ref"].startswith("#/components/schemas/"), where


def test_every_body_has_an_example_that_its_schema_accepts(spec: dict[str, Any]) -> None:
    checked = set()
    for where, schema in body_schemas(spec):
        named = resolve(spec, schema)
        alternatives = [resolve(spec, branch) for branch in named.get("anyOf", [named])]
        for alternative in alternatives:
            assert alternative.get("examples"), f"{where}: {alternative['title']} has no example"
            validator = Draft202012Validator({**schema, "components": spec["components"]})
            for example in alternative["examples"]:
                validator.validate(example)
            checked.add(alternative["title"])

    assert {"TaskOut", "TaskPage", "TaskCursorPage", "ErrorResponse", "BatchRequest"} <= checked


def test_answers_to_callers_with_tokens_name_the_rate_limit_headers(spec: dict[str, Any]) -> None:
    task = spec["paths"]["/api/tasks/{task_id}"]["get"]["responses"]["200"]
    login = spec["paths"]["/api/login"]["post"]["responses"]["200"]

    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(task["headers"])
    assert "RateLimit-Limit" not in login.get("headers", {}), "login is public: not counted"
    limited = resolve(spec, spec["paths"]["/api/tasks"]["post"]["responses"]["429"])
    assert "RateLimit-Reset" in limited["headers"]
