"""The list's sort orders, each a column tuple ending in `id` so every order is total."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from quart_tasks.tasks.models import Task, TaskRecord
from quart_tasks.web.cursors import InvalidCursor, decode_cursor, encode_cursor


@dataclass(frozen=True, slots=True)
class SortOrder:
    name: str
    columns: tuple[InstrumentedAttribute[Any], ...]
    descending: bool

    def order_by(self) -> list[ColumnElement[Any]]:
        return [column.desc() if self.descending else column.asc() for column in self.columns]

    def after_key(self) -> ColumnElement[bool]:
        """Rows past the key bound as `key_0`, `key_1`…, in one row-value comparison (indexable)."""
        row = tuple_(*self.columns)
        bound = tuple_(
            *(bindparam(f"key_{n}", type_=column.type) for n, column in enumerate(self.columns))
        )
        return row < bound if self.descending else row > bound

    @staticmethod
    def key_values(key: list[Any]) -> dict[str, Any]:
        """The values `after_key` binds."""
        return {f"key_{n}": value for n, value in enumerate(key)}

    def cursor_after(self, task: TaskRecord) -> str:
        key = [getattr(task, column.key) for column in self.columns]
        return encode_cursor(
            {
                "sort": self.name,
                "key": [v.isoformat() if isinstance(v, datetime) else v for v in key],
            }
        )

    def key_from(self, cursor: str) -> list[Any]:
        """The position a cursor of this order stands at; 400 for any other cursor."""
        content = decode_cursor(cursor)
        raw = content.get("key")
        if (
            content.get("sort") != self.name
            or not isinstance(raw, list)
            or len(raw) != len(self.columns)
        ):
            raise InvalidCursor()
        try:
            return [_typed(column, value) for column, value in zip(self.columns, raw, strict=True)]
        except (TypeError, ValueError):
            raise InvalidCursor() from None


def _typed(column: InstrumentedAttribute[Any], value: Any) -> Any:
    python_type = column.type.python_type
    if python_type is datetime:
        return datetime.fromisoformat(value)
    if not isinstance(value, python_type) or isinstance(value, bool):
        raise TypeError(f"{column.key} must be a {python_type.__name__}")
    return value


SORT_ORDERS = {
    order.name: order
    for order in (
        SortOrder("id_desc", (Task.id,), descending=True),
        SortOrder("id_asc", (Task.id,), descending=False),
        SortOrder("created_desc", (Task.created_at, Task.id), descending=True),
        SortOrder("created_asc", (Task.created_at, Task.id), descending=False),
        SortOrder("updated_desc", (Task.updated_at, Task.id), descending=True),
        SortOrder("title_asc", (Task.title, Task.id), descending=False),
    )
}
