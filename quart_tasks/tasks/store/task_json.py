"""A task's JSON written by PostgreSQL, byte for byte as `TaskOut` renders it.

Events store it (`writes`), and a list page is sent as PostgreSQL wrote its
tasks (`statements.page`): the rows need no decoding, validation or
serialising in the worker.
"""

from __future__ import annotations

import functools
import json
import operator
from datetime import datetime
from typing import Any

from pydantic import PlainSerializer
from sqlalchemy import ColumnElement, Text, case, cast, func, literal_column

from quart_tasks.tasks.schemas import TaskOut

TIMESTAMP_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
"""`to_char`'s way to write what `timestamps.format_timestamp` writes for a UTC time."""


def task_json(task: Any) -> ColumnElement[str]:
    """A task row's JSON as PostgreSQL writes it, byte for byte as `TaskOut` renders it.

    Built from `TaskOut`'s own fields, in its order, each written by the SQL for
    its type: a field added to the schema is added here, and a type with no SQL
    below stops the app at start-up rather than leave it out of the events and pages.
    """
    parts: list[ColumnElement[str]] = []
    for position, (name, field) in enumerate(TaskOut.model_fields.items()):
        key = ("{" if position == 0 else ",") + json.dumps(name) + ":"
        parts += [constant_text(key), _json_value(task.c[name], field.annotation, field.metadata)]
    parts.append(constant_text("}"))
    return functools.reduce(operator.add, parts)


def constant_text(text: str) -> ColumnElement[str]:
    """`text` as a string constant in the SQL itself, not a bound parameter: the JSON's
    keys and punctuation are the same on every execution, and each parameter costs
    asyncpg and PostgreSQL a little on every one. Only for the constant text here."""
    return literal_column("'" + text.replace("'", "''") + "'", Text)


def _json_value(column: Any, annotation: Any, metadata: list[Any]) -> ColumnElement[str]:
    """SQL writing `column`'s value as pydantic writes a field of `annotation` in JSON."""
    if any(isinstance(item, PlainSerializer) for item in metadata) and annotation is datetime:
        # `Timestamp`: UTC, microseconds, `Z`.
        utc = func.timezone(constant_text("UTC"), column)
        written = func.to_char(utc, constant_text(TIMESTAMP_FORMAT))
        return constant_text('"') + written + constant_text('"')
    if annotation is bool:
        return case((column, constant_text("true")), else_=constant_text("false"))
    if annotation is int:
        return cast(column, Text)
    if annotation is str:
        # to_json escapes as JSON requires; pydantic escapes no more than that.
        return cast(func.to_json(column), Text)
    raise TypeError(f"no SQL writes a TaskOut field of type {annotation!r} as JSON")
