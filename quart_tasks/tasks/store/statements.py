"""The hot paths' statements, built once per shape and then only run with new values.

Building a select and working out its cache key cost more CPU than running
it: on a task read, 260 µs of 620. Each shape a request can ask for is built
on first use and kept; its values travel as bound parameters. They select
the table's columns, not the mapped class, so rows come back without the
ORM's identity and loading work.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any
from typing import cast as typed

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Insert,
    Integer,
    Select,
    Subquery,
    Table,
    Text,
    Update,
    bindparam,
    case,
    cast,
    false,
    func,
    insert,
    or_,
    select,
    true,
    union_all,
    update,
)

from quart_tasks.auth.models import User
from quart_tasks.storage.among import among
from quart_tasks.storage.driver import PLANNED_EACH_RUN
from quart_tasks.tasks.models import Task
from quart_tasks.tasks.scope import ListScope
from quart_tasks.tasks.sorting import SORT_ORDERS
from quart_tasks.tasks.store.counts import TaskCount
from quart_tasks.tasks.store.task_json import task_json

TASKS = typed(Table, Task.__table__)
COUNTS = typed(Table, TaskCount.__table__)
TASK_COLUMNS = tuple(TASKS.c)
LIKE_ESCAPE = "/"


@dataclass(frozen=True, slots=True)
class ListShape:
    """What a list statement depends on beyond its values."""

    sort: str
    owner: ListScope
    done: bool | None  # the `done` state it filters on; None for both
    title: bool  # filters on a title fragment


@cache
def fetch(*, any_owner: bool) -> Select[Any]:
    """One task by `task_id`, and only if it is `owner_id`'s unless `any_owner`."""
    statement = select(*TASK_COLUMNS).where(TASKS.c.id == bindparam("task_id"))
    if not any_owner:
        statement = statement.where(TASKS.c.owner_id == bindparam("owner_id"))
    return statement


@cache
def fetch_many() -> Select[Any]:
    """The tasks whose ids are in `task_ids`, whoever owns them (`reads_by_id` checks).

    The ids go as text[], cast here: asyncpg looks a bigint[] up in the
    server's catalog before its first use on each connection."""
    ids = cast(bindparam("task_ids", type_=ARRAY(Text)), ARRAY(BigInteger))
    return select(*TASK_COLUMNS).where(TASKS.c.id == func.any(ids))


@cache
def create() -> Insert:
    """A new task of `owner_id` with `title` and `done`, created and updated `now`
    (SQLite; PostgreSQL's creates are `writes.creations_with_events`)."""
    now = bindparam("now", type_=TASKS.c.created_at.type)
    return (
        insert(TASKS)
        .values(
            owner_id=bindparam("owner_id"),
            title=bindparam("title"),
            done=bindparam("done"),
            version=1,
            created_at=now,
            updated_at=now,
        )
        .returning(*TASK_COLUMNS)
    )


@cache
def task_update(fields: tuple[str, ...], *, any_owner: bool, check_version: bool) -> Update:
    """Set `fields` (each from `new_<field>`) on task `task_id`; only if it is
    `caller_id`'s unless `any_owner`, and only while its version is one of
    `versions` if `check_version`.

    `version` and `updated_at` (to `now`) move only when a value really
    changes, so an ETag changes with every change and only then.
    """
    new = {field: bindparam(f"new_{field}", type_=TASKS.c[field].type) for field in fields}
    changed = or_(*(TASKS.c[field] != value for field, value in new.items()))
    now = bindparam("now", type_=TASKS.c.updated_at.type)
    conditions = [TASKS.c.id == bindparam("task_id")]
    if not any_owner:
        # Not `owner_id`: an UPDATE keeps its columns' names for its SET values.
        conditions.append(TASKS.c.owner_id == bindparam("caller_id"))
    if check_version:
        conditions.append(TASKS.c.version.in_(bindparam("versions", expanding=True)))
    return (
        update(TASKS)
        .where(*conditions)
        .values(
            **new,
            version=case((changed, TASKS.c.version + 1), else_=TASKS.c.version),
            updated_at=case((changed, now), else_=TASKS.c.updated_at),
        )
        .returning(*TASK_COLUMNS)
    )


def like_pattern(fragment: str) -> str:
    """The LIKE pattern for titles containing `fragment` literally."""
    escaped = (
        fragment.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


def _owner_conditions(owner: ListScope, table: Table) -> list[ColumnElement[bool]]:
    if owner == "caller":
        return [table.c.owner_id == bindparam("owner_id")]
    if owner == "named":
        named = select(User.id).where(User.username_key == bindparam("owner_key"))
        return [table.c.owner_id == named.scalar_subquery()]
    return []


def _conditions(shape: ListShape) -> list[ColumnElement[bool]]:
    conditions = _owner_conditions(shape.owner, TASKS)
    if shape.title:
        conditions.append(
            TASKS.c.title.ilike(
                bindparam("title_pattern", type_=TASKS.c.title.type), escape=LIKE_ESCAPE
            )
        )
    return conditions


def _done_states(shape: ListShape) -> list[ColumnElement[bool]]:
    """Each `done` state a list reads: the one it filters on, or both.

    Written as constants, not bound: PostgreSQL takes `done = <parameter>` as
    fixing `done`, so a plan made for any values (a kept statement's) dropped
    `done` from the order and walked the primary key, skipping the other
    state's tasks; `done` and `NOT done` it does not take so, and only the
    list's index gives the order (see `_in_index_order`).
    """
    if shape.done is None:
        return [TASKS.c.done == false(), TASKS.c.done == true()]
    return [TASKS.c.done == (true() if shape.done else false())]


def _done_order(shape: ListShape, *, descending: bool) -> ColumnElement[Any]:
    """`done` as the index a branch reads holds it, for a sort `descending` or not: the
    same way as the sort in an owner's index, the opposite way in the all-owners'
    (see `models.LIST_INDEXES`)."""
    all_owners = shape.owner == "everyone"
    return TASKS.c.done.desc() if descending != all_owners else TASKS.c.done.asc()


def _in_index_order(shape: ListShape) -> list[ColumnElement[Any]]:
    """A branch's order (one `done` state): `done`, then the sort's columns.

    That is exactly its index's order, which neither the primary key nor any
    other index gives, so the planner has one plan. Ordered by `id` alone, a
    branch of an owner whose tasks are the oldest was planned as a backward
    walk of the primary key that read every newer task (PostgreSQL does see
    that a boolean column equal to a constant leaves the index's order as is,
    but only for a column the ORDER BY does not name).
    """
    sort = SORT_ORDERS[shape.sort]
    return [_done_order(shape, descending=sort.descending), *sort.order_by()]


def _listed(branches: list[Select[Any]], name: str) -> Subquery:
    """The rows of `branches` (each one `done` state, up to its own limit) as one set."""
    if len(branches) == 1:
        return branches[0].subquery(name)
    return union_all(*(select(*branch.subquery().c) for branch in branches)).subquery(name)


def _in_list_order(columns: Any, shape: ListShape) -> list[ColumnElement[Any]]:
    """The list's order over `columns` (a table's or a subquery's), without `done`:
    the merged branches are sorted again, at most twice a branch's limit."""
    sort = SORT_ORDERS[shape.sort]
    keys = [columns[column.key] for column in sort.columns]
    return [key.desc() if sort.descending else key.asc() for key in keys]


def _planned_for_its_values(shape: ListShape, statement: Select[Any]) -> Select[Any]:
    """A search's statements: whether the trigram index or a walk of the list's index
    serves one depends on how many rows its fragment matches (see `PLANNED_EACH_RUN`)."""
    return statement.execution_options(**{PLANNED_EACH_RUN: True}) if shape.title else statement


@cache
def count(shape: ListShape) -> Select[Any]:
    """How many tasks match: by the owners' kept counts (see `counts`) unless `q` filters.

    With `q`, matches are counted only up to `count_window`: the store reports
    at most one fewer, and whether there were more (see
    `SessionSteps.list_page`). Each `done` state's are read in the id
    order's index; the second state is read only if the first has fewer than the
    window. (Not the title order's index, though its entries hold the title: a
    fragment's titles lie together in it, past every title before them.)
    """
    if not shape.title:
        owners_total = cast(func.coalesce(func.sum(COUNTS.c.total), 0), BigInteger)
        conditions = _owner_conditions(shape.owner, COUNTS)
        if shape.done is not None:
            conditions.append(COUNTS.c.done == (true() if shape.done else false()))
        return select(owners_total).where(*conditions)
    window = bindparam("count_window", type_=Integer())
    by_id = [_done_order(shape, descending=False), TASKS.c.id]
    matches = [
        select(TASKS.c.id).where(*_conditions(shape), state).order_by(*by_id).limit(window)
        for state in _done_states(shape)
    ]
    listed = _listed(matches, "matches")
    counted = select(listed.c.id).limit(window).subquery("counted")
    return _planned_for_its_values(shape, select(func.count()).select_from(counted))


@cache
def page(shape: ListShape, *, rendered: bool = False) -> Select[Any]:
    """A page by `limit` and `offset`, each row with the `total` that match; each row
    its task's columns, or if `rendered` its JSON as `TaskOut` writes it (`json`,
    PostgreSQL only: `task_json`).

    Each `done` state's branch reads its index up to `window` (`offset` +
    `limit`) entries, the sort's columns and ids only, from the index itself
    where the index holds them (an index-only scan); only the page's own rows
    are then read from the table, by id (see `storage.among`). The count rides
    along as a scalar subquery (run once, not per row): one round trip instead
    of two, and the total and the page come from one snapshot. A page past the
    end has no row to carry it; see `count`.
    """
    sort = SORT_ORDERS[shape.sort]
    keys = [TASKS.c[column.key] for column in sort.columns]
    branches = [
        select(*keys)
        .where(*_conditions(shape), state)
        .order_by(*_in_index_order(shape))
        .limit(bindparam("window"))
        for state in _done_states(shape)
    ]
    listed = _listed(branches, "listed")
    on_page = (
        select(listed.c.id)
        .order_by(*_in_list_order(listed.c, shape))
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    total = count(shape).scalar_subquery().label("total")
    columns = [task_json(TASKS).label("json")] if rendered else TASK_COLUMNS
    statement = (
        select(*columns, total)
        .where(among(TASKS.c.id, on_page))
        .order_by(*_in_list_order(TASKS.c, shape))
    )
    return _planned_for_its_values(shape, statement)


@cache
def walk(shape: ListShape, *, after_key: bool) -> Select[Any]:
    """Up to `limit` tasks in order; past the key `SortOrder.key_values` binds when `after_key`."""
    sort = SORT_ORDERS[shape.sort]
    branches = []
    for state in _done_states(shape):
        conditions = [*_conditions(shape), state]
        if after_key:
            conditions.append(sort.after_key())
        branches.append(
            select(*TASK_COLUMNS)
            .where(*conditions)
            .order_by(*_in_index_order(shape))
            .limit(bindparam("limit"))
        )
    listed = _listed(branches, "listed")
    statement = (
        select(*(listed.c[column.key] for column in TASK_COLUMNS))
        .order_by(*_in_list_order(listed.c, shape))
        .limit(bindparam("limit"))
    )
    return _planned_for_its_values(shape, statement)
