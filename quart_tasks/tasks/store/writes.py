"""The fast store's single-statement writes: a change, its event and any idempotency
record in one statement, atomic even in autocommit (PostgreSQL only)."""

from __future__ import annotations

import json
import typing
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    DateTime,
    Insert,
    Select,
    Table,
    Text,
    Update,
    bindparam,
    cast,
    func,
    insert,
    literal,
    literal_column,
    select,
)

from quart_tasks.idempotency.models import IdempotencyKey
from quart_tasks.tasks.log.records import EVENTS, insert_rows
from quart_tasks.tasks.store import statements
from quart_tasks.tasks.store.task_json import constant_text, task_json
from quart_tasks.web.conditional import etag

TASK_ID_SEQUENCE = "tasks_id_seq"
"""The sequence PostgreSQL made for `tasks.id` (a BIGSERIAL)."""

KEYS = typing.cast(Table, IdempotencyKey.__table__)
TASKS = statements.TASKS


def creations_with_events(
    owner_ids: list[int], titles: list[str], dones: list[bool], nows: list[datetime]
) -> tuple[Select[Any], dict[str, Any]]:
    """On PostgreSQL, one statement that inserts tasks and their `task.created` events.

    The tasks' insert and their events' are CTEs of one select, the events'
    JSON rendered by PostgreSQL (`_task_json`). Being one statement, it is atomic
    even in autocommit, which spares a create BEGIN and COMMIT. Each row comes
    back with `position`, its place (from 1) in the lists.
    """
    values = {
        "owner_ids": [str(owner_id) for owner_id in owner_ids],
        "titles": titles,
        "dones": ["true" if done else "false" for done in dones],
        "nows": [now.isoformat() for now in nows],
    }
    return _creations_with_events(), values


def keyed_creations_with_events(
    owner_id: int,
    titles: list[str],
    dones: list[bool],
    now: datetime,
    keys: list[str],
    fingerprints: list[str],
    expires_at: datetime,
) -> tuple[Select[Any], dict[str, Any]]:
    """`creations_with_events`, each task also recorded under its idempotency key (a
    batch's create, answered 201 with the task), and each row with `json`: the task's
    JSON as its event and record hold it. A key already taken fails the statement."""
    _, values = creations_with_events([owner_id] * len(titles), titles, dones, [now] * len(titles))
    keyed = {"keys": keys, "fingerprints": fingerprints, "expires_at": expires_at}
    return _creations_with_events(keyed=True), {**values, **keyed}


@cache
def _creations_with_events(*, keyed: bool = False) -> Select[Any]:
    # Every list goes as text[] and is cast here: asyncpg knows text[] at once,
    # but before its first use of bigint[], boolean[] or timestamptz[] on a
    # connection it queries the server's catalog for the type, some 10 ms; on
    # a fresh pool, a burst of creates met it once per connection in turn.
    lists = ["owner_ids", "titles", "dones", "nows", *(["keys", "fingerprints"] if keyed else [])]
    columns = ["owner_id", "title", "done", "now", *(["key", "fingerprint"] if keyed else [])]
    given = (
        func.unnest(*(bindparam(name, type_=ARRAY(Text)) for name in lists))
        .table_valued(*columns, with_ordinality="position")
        .render_derived(name="given")
    )
    # Ids drawn here, in the given order, so that each inserted row can be
    # matched to its place: RETURNING cannot return the ordinality.
    task_id = func.nextval(literal_column(f"'{TASK_ID_SEQUENCE}'::regclass"))
    given_task = select(
        task_id.label("id"),
        cast(given.c.owner_id, TASKS.c.owner_id.type).label("owner_id"),
        given.c.title,
        cast(given.c.done, TASKS.c.done.type).label("done"),
        cast(given.c.now, DateTime(timezone=True)).label("now"),
        given.c.position,
        *([given.c.key, given.c.fingerprint] if keyed else []),
    ).cte("given_task")
    new_task = (
        insert(TASKS)
        .from_select(
            ["id", "owner_id", "title", "done", "version", "created_at", "updated_at"],
            select(
                given_task.c.id,
                given_task.c.owner_id,
                given_task.c.title,
                given_task.c.done,
                literal(1),
                given_task.c.now,
                given_task.c.now,
            ).order_by(given_task.c.position),
        )
        .returning(*statements.TASK_COLUMNS)
        .cte("new_task")
    )
    events = (
        select(
            literal("task.created", EVENTS.c.type.type),
            new_task.c.id,
            new_task.c.owner_id,
            task_json(new_task),
            new_task.c.created_at,
        )
        .select_from(new_task)
        .order_by(new_task.c.id)
    )
    created = select(given_task.c.position, *new_task.c).select_from(
        new_task.join(given_task, new_task.c.id == given_task.c.id)
    )
    if not keyed:
        return created.add_cte(insert_rows(events).cte("new_event"))
    new_event = insert_rows(events).returning(EVENTS.c.task_id, EVENTS.c.payload).cte("new_event")
    return (
        created.add_columns(new_event.c.payload.label("json"))
        .join(new_event, new_event.c.task_id == new_task.c.id)
        .add_cte(_insert_records(given_task, new_event).cte("new_record"))
    )


def _insert_records(given_task: Any, new_event: Any) -> Insert:
    """Each created task's idempotency record: 201, its JSON, and its ETag (version 1).

    Written here, not by `idempotency.store.record_all` (the one writer of every other
    record), because its JSON is the one PostgreSQL writes for the task's event in
    the same statement: a record written after the statement would need the rows
    back first, and a second statement and a transaction around the two, which is
    what this way of creating spares. The row is the one `record_all` writes."""
    headers = constant_text(json.dumps({"ETag": etag(1)}))
    expires_at = bindparam("expires_at", type_=KEYS.c.expires_at.type)
    return insert(KEYS).from_select(
        [
            "owner_id",
            "key",
            "fingerprint",
            "status_code",
            "response_body",
            "response_headers",
            "created_at",
            "expires_at",
        ],
        select(
            given_task.c.owner_id,
            given_task.c.key,
            given_task.c.fingerprint,
            literal(201),
            new_event.c.payload,
            headers,
            given_task.c.now,
            expires_at,
        ).select_from(given_task.join(new_event, new_event.c.task_id == given_task.c.id)),
    )


def update_with_event(change: Update, values: dict[str, Any]) -> tuple[Select[Any], dict[str, Any]]:
    """On PostgreSQL, `change` (`statements.change`, its `values` with `now`) and, if it
    changed a value, the task's `task.updated` event, in one statement: atomic in
    autocommit. The event's id is drawn after the task's row is held, so after the
    id of any change to it that committed first (`log.rounds` relies on it).
    """
    return _update_with_event(change), values


@cache
def _update_with_event(change: Update) -> Select[Any]:
    updated = change.cte("updated")
    now = bindparam("now", type_=EVENTS.c.created_at.type)
    # Only for a task that changed: `updated_at` moves to `now` only then.
    event = select(
        literal("task.updated", EVENTS.c.type.type),
        updated.c.id,
        updated.c.owner_id,
        task_json(updated),
        now,
    ).where(updated.c.updated_at == now)
    return select(*updated.c).add_cte(insert_rows(event).cte("new_event"))
