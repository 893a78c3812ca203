"""The OpenAPI document: quart-schema's, shaped for client generators (`openapi_shared`):
named schemas, shared error responses, tags and operation ids that read well."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from importlib.metadata import version
from typing import Any, TypeVar

from pydantic import BaseModel
from quart import Quart
from quart_schema import QuartSchema
from quart_schema.openapi import OpenAPIProvider
from quart_schema.validation import (
    QUART_SCHEMA_QUERYSTRING_ATTRIBUTE,
    QUART_SCHEMA_REQUEST_ATTRIBUTE,
)
from werkzeug.routing import Rule
from werkzeug.routing.converters import BaseConverter, IntegerConverter

from quart_tasks.web.access import BEARER_SCHEME, make_public, required_access
from quart_tasks.web.errors import ErrorResponse
from quart_tasks.web.openapi_shared import (
    HEADERS,
    RATE_LIMIT_HEADERS,
    RETRY_AFTER_STATUSES,
    documented_header,
    error_response_ref,
    error_responses,
    header_ref,
    hoisted,
    without_null_defaults,
)

View = TypeVar("View", bound=Callable[..., Any])
OPERATION_ID_ATTRIBUTE = "_quart_tasks_operation_id"
TAGS = {
    "tasks": "Tasks: create, read, change, delete, list, sync and batch them.",
    "live": "Live changes: a Server-Sent Events stream and a WebSocket.",
    "auth": "Log in, refresh and log out.",
    "users": "User accounts.",
    "ops": "Health checks for load balancers and orchestrators.",
}


NOT_MODIFIED = "Not Modified: it still has the ETag sent in If-None-Match. No body."
EVENT_STREAM_ATTRIBUTE = "_quart_tasks_event_stream"
EVENT_STREAM_RESPONSE = {
    "description": "A stream of Server-Sent Events",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}
LAST_EVENT_ID_PARAMETER = {
    "in": "header",
    "name": "Last-Event-ID",
    "required": False,
    "schema": {"type": "string"},
    "description": "Resume after this event id; sent by a reconnecting EventSource.",
}
WEBSOCKET_QUERY_PARAMETERS = [
    ("access_token", {"type": "string"}, "The access token, unless sent as Authorization."),
    ("since", {"type": "integer", "minimum": 0}, "Resume after this event id."),
]


def operation_id(name: str) -> Callable[[View], View]:
    """Name the view's operation (a client's method name) where its function's name, in
    camel case, would not read well."""

    def named(view: View) -> View:
        setattr(view, OPERATION_ID_ATTRIBUTE, name)
        return view

    return named


def event_stream(view: Any) -> Any:
    """Document the view's 200 answer as `text/event-stream`."""
    setattr(view, EVENT_STREAM_ATTRIBUTE, True)
    return view


def _openapi_path(rule: Rule) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)


class NoContent(BaseModel):
    """No content."""


class TasksOpenAPIProvider(OpenAPIProvider):
    def schema(self) -> dict[str, Any]:
        document = super().schema()
        for rule in self._app.url_map.iter_rules():
            if rule.websocket:
                document["paths"][_openapi_path(rule)] = self._websocket_path(rule)
        components = document["components"]
        error_schema = self._hoisted_response(ErrorResponse, components["schemas"])
        components["responses"] = error_responses(error_schema)
        components["headers"] = HEADERS
        document["tags"] = [{"name": name, "description": text} for name, text in TAGS.items()]
        return document

    def operation_id(self, method: str, path: str, func: Any) -> str:
        return getattr(func, OPERATION_ID_ATTRIBUTE, None) or _camel(func.__name__)

    def _hoisted_response(self, model: Any, schemas: dict[str, Any]) -> dict[str, Any]:
        response, definitions = self.build_response_object(model, None)
        schemas.update(definitions)
        return dict(response["content"]["application/json"]["schema"])

    def _websocket_path(self, rule: Rule) -> dict[str, Any]:
        """OpenAPI has no websockets: the route is described as the GET that upgrades."""
        view = self._app.view_functions[rule.endpoint]
        summary, _, description = (inspect.getdoc(view) or "").partition("\n")
        return {
            "get": {
                "summary": summary,
                "description": description.strip(),
                "operationId": self.operation_id("GET", rule.rule, view),
                "tags": [rule.endpoint.partition(".")[0]],
                "security": [{BEARER_SCHEME: []}],
                "parameters": [
                    {"in": "query", "name": name, "schema": schema, "description": text}
                    for name, schema, text in WEBSOCKET_QUERY_PARAMETERS
                ],
                "responses": {
                    "101": {"description": "Switching Protocols: the WebSocket is open"},
                    "400": error_response_ref(400),
                },
            }
        }

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        view = self._app.view_functions[rule.endpoint]
        if getattr(view, EVENT_STREAM_ATTRIBUTE, False):
            for path_item in paths.values():
                path_item["get"]["responses"][200] = EVENT_STREAM_RESPONSE
                path_item["get"]["parameters"].append(LAST_EVENT_ID_PARAMETER)
        blueprint, _, _ = rule.endpoint.rpartition(".")
        limited = required_access(view) != "public"  # RATE_LIMIT counts each caller's requests
        statuses = _error_statuses(rule, view)
        for path_item in paths.values():
            for operation in path_item.values():
                if blueprint in TAGS:
                    operation["tags"] = [blueprint]
                responses = operation["responses"]
                if 304 in responses:
                    responses[304]["description"] = NOT_MODIFIED
                for status, response in list(responses.items()):
                    if _is_error(response):
                        responses[status] = error_response_ref(int(status))
                    elif int(status) in RETRY_AFTER_STATUSES:
                        response.setdefault("headers", {})["Retry-After"] = header_ref(
                            "Retry-After"
                        )
                    elif limited and 200 <= int(status) < 300:
                        headers = response.setdefault("headers", {})
                        headers |= {name: header_ref(name) for name in RATE_LIMIT_HEADERS}
                for status in statuses:
                    responses.setdefault(status, error_response_ref(status))
        return paths, components

    def build_request_body(self, model: Any, source: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        body, definitions = super().build_request_body(model, source)
        for media in body["content"].values():
            media["schema"] = hoisted(media["schema"], definitions)
        body["required"] = True
        return body, definitions

    def build_response_object(
        self, model: Any, headers_model: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if model is NoContent:
            response: dict[str, Any] = {"description": "No Content"}
            definitions: dict[str, Any] = {}
        else:
            response, definitions = super().build_response_object(model, None)
            media = response["content"]["application/json"]
            media["schema"] = hoisted(media["schema"], definitions)
            for schema in definitions.values():
                without_null_defaults(schema)
        if headers_model is not None:
            schema = headers_model.model_json_schema()
            required = set(schema.get("required", ()))
            response["headers"] = dict(
                documented_header(name.replace("_", "-"), field, name in required)
                for name, field in schema["properties"].items()
            )
        return response, definitions

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if isinstance(converter, IntegerConverter):
            if converter.min is not None:
                parameter["schema"]["minimum"] = converter.min
            if converter.max is not None:
                parameter["schema"]["maximum"] = converter.max
        return parameter


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def _is_error(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/ErrorResponse"))


def _error_statuses(rule: Rule, view: Any) -> list[int]:
    statuses = []
    if hasattr(view, QUART_SCHEMA_REQUEST_ATTRIBUTE) or hasattr(
        view, QUART_SCHEMA_QUERYSTRING_ATTRIBUTE
    ):
        statuses.append(400)
    access = required_access(view)
    if access != "public":  # a token, even an optional one, can be refused
        statuses.append(401)
    if access == "admin":
        statuses.append(403)
    if rule.arguments:
        statuses.append(404)
    if hasattr(view, QUART_SCHEMA_REQUEST_ATTRIBUTE):
        statuses += [413, 415]
    if access != "public":  # RATE_LIMIT counts each caller's requests
        statuses.append(429)
    statuses.append(500)
    if not rule.endpoint.startswith("ops."):
        statuses.append(503)  # every API route needs the database
    return statuses


def init_openapi(app: Quart) -> QuartSchema:
    # Swagger UI's assets come from the flask-swagger-ui package, served by the app itself.
    app.config["QUART_SCHEMA_SWAGGER_JS_URL"] = "/docs/assets/swagger-ui-bundle.js"
    app.config["QUART_SCHEMA_SWAGGER_CSS_URL"] = "/docs/assets/swagger-ui.css"
    extension = QuartSchema(
        app,
        info={
            "title": "quart-tasks",
            "version": version("quart-tasks"),
            "description": "An async REST API for tasks.",
        },
        swagger_ui_path="/docs",
        redoc_ui_path=None,
        scalar_ui_path=None,
        security_schemes={
            BEARER_SCHEME: {"type": "http", "scheme": "bearer", "bearer_format": "JWT"}
        },
        openapi_provider_class=TasksOpenAPIProvider,
    )
    make_public(app, "openapi", "swagger_ui")
    return extension
