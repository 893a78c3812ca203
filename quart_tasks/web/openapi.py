"""The OpenAPI document: quart-schema's, plus the error responses every route can give."""

from __future__ import annotations

import inspect
import re
from http import HTTPStatus
from importlib.metadata import version
from typing import Any

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

RETRY_AFTER_STATUSES = (429, 503)
RETRY_AFTER_HEADER = {
    "description": "Seconds to wait before retrying.",
    "schema": {"type": "integer", "minimum": 0},
}


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
        return document

    def _websocket_path(self, rule: Rule) -> dict[str, Any]:
        """OpenAPI has no websockets: the route is described as the GET that upgrades."""
        view = self._app.view_functions[rule.endpoint]
        summary, _, description = (inspect.getdoc(view) or "").partition("\n")
        error_response, _ = self.build_response_object(ErrorResponse, None)
        return {
            "get": {
                "summary": summary,
                "description": description.strip(),
                "operationId": f"websocket_{rule.endpoint.rpartition('.')[2]}",
                "security": [{BEARER_SCHEME: []}],
                "parameters": [
                    {"in": "query", "name": name, "schema": schema, "description": text}
                    for name, schema, text in WEBSOCKET_QUERY_PARAMETERS
                ],
                "responses": {
                    "101": {"description": "Switching Protocols: the WebSocket is open"},
                    "400": {**error_response, "description": "Not a WebSocket handshake"},
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
        statuses = _error_statuses(rule, self._app.view_functions[rule.endpoint])
        error_response, error_components = self.build_response_object(ErrorResponse, None)
        components.update(error_components)
        for path_item in paths.values():
            for operation in path_item.values():
                responses = operation["responses"]
                for status in statuses:
                    responses.setdefault(
                        status, {**error_response, "description": HTTPStatus(status).phrase}
                    )
                for status, response in responses.items():
                    if int(status) in RETRY_AFTER_STATUSES:
                        response.setdefault("headers", {})["Retry-After"] = RETRY_AFTER_HEADER
        return paths, components

    def build_response_object(
        self, model: Any, headers_model: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if model is NoContent:
            return {"description": "No Content"}, {}
        response, definitions = super().build_response_object(model, headers_model)
        # quart-schema nests response headers under "content"; OpenAPI wants them beside it.
        headers = response["content"].pop("headers", None)
        if headers is not None:
            response["headers"] = headers
        return response, definitions

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if isinstance(converter, IntegerConverter):
            if converter.min is not None:
                parameter["schema"]["minimum"] = converter.min
            if converter.max is not None:
                parameter["schema"]["maximum"] = converter.max
        return parameter


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
    statuses += [500, 503]  # every API route needs the database
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
