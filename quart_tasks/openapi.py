"""The OpenAPI document: quart-schema's, plus the error responses every route can give."""

from __future__ import annotations

from http import HTTPStatus
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

from . import __version__
from .errors import ErrorResponse
from .security import BEARER_SCHEME, view_access

RETRY_AFTER_STATUSES = (429, 503)
RETRY_AFTER_HEADER = {
    "description": "Seconds to wait before retrying.",
    "schema": {"type": "integer", "minimum": 0},
}


class NoContent(BaseModel):
    """No content."""


class TasksOpenAPIProvider(OpenAPIProvider):
    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
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
    access = view_access(view)
    if access is not None:  # a token, even an optional one, can be refused
        statuses.append(401)
    if access == "admin":
        statuses.append(403)
    if rule.arguments:
        statuses.append(404)
    if hasattr(view, QUART_SCHEMA_REQUEST_ATTRIBUTE):
        statuses += [413, 415]
    if access is not None:  # RATE_LIMIT counts each caller's requests
        statuses.append(429)
    statuses += [500, 503]  # every API route needs the database
    return statuses


def init_openapi(app: Quart) -> QuartSchema:
    # Swagger UI's assets come from the flask-swagger-ui package, served by the app itself.
    app.config["QUART_SCHEMA_SWAGGER_JS_URL"] = "/docs/assets/swagger-ui-bundle.js"
    app.config["QUART_SCHEMA_SWAGGER_CSS_URL"] = "/docs/assets/swagger-ui.css"
    return QuartSchema(
        app,
        info={
            "title": "quart-tasks",
            "version": __version__,
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
