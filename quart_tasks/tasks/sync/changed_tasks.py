"""Which tasks changed between two positions of the event log, each once, as they are now.

A sync reads the tasks whose events lie in (`after`, `upto`], a page at a
time in task id order (past `last_id`), each with its current row: a task
whose row is gone was deleted. Paging by task id over a fixed range of
positions is what makes each task come once in a sync, however many events
it had and whatever is written meanwhile: a change made during the sync lies
past `upto` and comes in the next one.

On PostgreSQL the positions are the rounds' (`log.rounds`); on SQLite an
event's position is its id.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import BigInteger, Boolean, TextualSelect, column, text

from quart_tasks.tasks.models import Task
from quart_tasks.tasks.scope import ListScope

_EVENTS_BY_POSITION = {
    "postgresql": """
        SELECT DISTINCT e.task_id
        FROM task_event_rounds r
        CROSS JOIN LATERAL unnest(r.event_ids) WITH ORDINALITY AS o(event_id, n)
        JOIN task_events e ON e.id = o.event_id
        WHERE r.last_position > :after AND r.first_position <= :upto
          AND r.first_position + o.n - 1 > :after AND r.first_position + o.n - 1 <= :upto
          AND e.task_id > :last_id {owner}
        ORDER BY e.task_id LIMIT :limit
    """,
    "sqlite": """
        SELECT DISTINCT e.task_id FROM task_events e
        WHERE e.id > :after AND e.id <= :upto AND e.task_id > :last_id {owner}
        ORDER BY e.task_id LIMIT :limit
    """,
}

_OWNERS = {
    "caller": "AND e.owner_id = :owner_id",
    "named": "AND e.owner_id = (SELECT id FROM users WHERE username_key = :owner_key)",
    "everyone": "",
}

_CHANGED_TASKS = """
    SELECT changed.task_id, t.id, t.owner_id, t.title, t.done, t.version,
           t.created_at, t.updated_at
    FROM ({changed}) AS changed
    LEFT JOIN tasks t ON t.id = changed.task_id
    ORDER BY changed.task_id
"""


@cache
def changed_tasks(owner: ListScope, *, postgresql: bool) -> TextualSelect:
    """Up to `limit` tasks past `last_id` with events in (`after`, `upto`], in id order,
    each with its current columns (NULL once deleted); whose: as `owner` binds it."""
    changed = _EVENTS_BY_POSITION["postgresql" if postgresql else "sqlite"]
    statement = _CHANGED_TASKS.format(changed=changed.format(owner=_OWNERS[owner]))
    columns = Task.__table__.c
    return text(statement).columns(
        column("task_id", BigInteger),
        column("id", BigInteger),
        column("owner_id", BigInteger),
        column("title", columns.title.type),
        column("done", Boolean),
        column("version", columns.version.type),
        column("created_at", columns.created_at.type),
        column("updated_at", columns.updated_at.type),
    )
