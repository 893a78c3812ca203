"""Incremental sync: every task once, then only what changed, resumed by a signed token.

A sync without a token reads the caller's tasks in id order, a page at a
time, after noting the log's newest position P0. It ends with a token at P0:
every change that the pages may have missed, made while they were read, lies
past P0. A sync from a token at P reads the tasks with events in (P, N],
where N is the newest position when it starts (`changes`), and ends with a
token at N. A task read twice, by the pages and again as changed, comes in
its latest state both times, so the client's copy converges either way.

A token names its caller and whose tasks it syncs: it is refused for
anyone else, or for another `owner`. One older than the log's oldest kept
position answers 410: the events that would say what changed are gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quart_tasks.auth.caller import Principal
from quart_tasks.auth.models import username_key
from quart_tasks.services import services
from quart_tasks.tasks.schemas import SyncPage, TaskOut
from quart_tasks.tasks.scope import EVERY_OWNER, list_scope, scope_values
from quart_tasks.tasks.sorting import SORT_ORDERS
from quart_tasks.tasks.store.interface import TaskFilter, TaskStore
from quart_tasks.tasks.sync import changed_tasks
from quart_tasks.web.errors import APIError
from quart_tasks.web.signed import sign, verify

PURPOSE = b"quart-tasks sync"
BY_ID = SORT_ORDERS["id_asc"]


class InvalidSyncToken(APIError):
    def __init__(self, reason: str) -> None:
        super().__init__(
            400,
            "validation_error",
            f"token: {reason}",
            details=[{"loc": ["query", "token"], "message": reason}],
        )


def sync_token_expired() -> APIError:
    return APIError(
        410,
        "sync_token_expired",
        "The event log no longer reaches back to this token: sync again without one",
    )


@dataclass(frozen=True, slots=True)
class SyncToken:
    """Where a sync stands. `after` None: a full sync, reading tasks as of `upto`.
    `upto` None: at rest, the token to keep; else a sync in progress, past `last_id`."""

    user_id: int
    scope: str
    after: int | None
    upto: int | None
    last_id: int = 0

    def encode(self) -> str:
        fields = {"u": self.user_id, "s": self.scope, "a": self.after, "n": self.upto}
        content: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
        if self.last_id:
            content["k"] = self.last_id
        return sign(content, PURPOSE)

    @classmethod
    def decode(cls, token: str) -> SyncToken:
        content = verify(token, PURPOSE)
        if content is None or not set(content) <= {"u", "s", "a", "n", "k"}:
            raise InvalidSyncToken("not a token this server issued")
        numbers = [content.get(key, 0) for key in ("u", "a", "n", "k")]
        if not all(type(n) is int and n >= 0 for n in numbers) or "u" not in content:
            raise InvalidSyncToken("not a token this server issued")
        scope, after, upto = content.get("s"), content.get("a"), content.get("n")
        if not isinstance(scope, str) or (after is None and upto is None):
            raise InvalidSyncToken("not a token this server issued")
        return cls(content["u"], scope, after, upto, content.get("k", 0))


def _scope_name(owner: str | None) -> str:
    if owner is None:
        return ""
    return EVERY_OWNER if owner == EVERY_OWNER else "user:" + username_key(owner)


async def sync_page(
    store: TaskStore,
    caller: Principal,
    owner: str | None,
    token: str | None,
    page_size: int,
) -> SyncPage:
    """The next page of a sync for `caller` of `owner`'s tasks (as lists read `owner`)."""
    scope = _scope_name(owner)
    given = SyncToken.decode(token) if token is not None else None
    if given is not None and (given.user_id != caller.user_id or given.scope != scope):
        raise InvalidSyncToken("issued for another caller or owner")
    oldest, newest = await store.log_bounds()
    if given is None or given.after is None:
        upto = newest if given is None or given.upto is None else given.upto
        last_id = 0 if given is None else given.last_id
        return await _full_page(store, caller, owner, scope, upto, last_id, page_size)
    if not oldest - 1 <= given.after <= newest:
        raise sync_token_expired()
    if given.upto is None and given.after == newest:
        assert token is not None
        return SyncPage(tasks=[], deleted=[], full_sync=False, has_more=False, next_token=token)
    upto = newest if given.upto is None else given.upto
    values = {
        "after": given.after,
        "upto": upto,
        "last_id": given.last_id,
        "limit": page_size + 1,
        **scope_values(caller, owner),
    }
    postgresql = services().database.is_postgresql
    statement = changed_tasks.changed_tasks(list_scope(caller, owner), postgresql=postgresql)
    rows = await store.read(statement, values)
    page, has_more = rows[:page_size], len(rows) > page_size
    if has_more:
        next_token = SyncToken(caller.user_id, scope, given.after, upto, page[-1].task_id)
    else:
        next_token = SyncToken(caller.user_id, scope, upto, None)
    return SyncPage(
        tasks=[TaskOut.model_validate(row) for row in page if row.id is not None],
        deleted=[row.task_id for row in page if row.id is None],
        full_sync=False,
        has_more=has_more,
        next_token=next_token.encode(),
    )


async def _full_page(
    store: TaskStore,
    caller: Principal,
    owner: str | None,
    scope: str,
    upto: int,
    last_id: int,
    page_size: int,
) -> SyncPage:
    key = [last_id] if last_id else None
    tasks, has_more = await store.list_after(caller, TaskFilter(owner=owner), BY_ID, key, page_size)
    if has_more:
        next_token = SyncToken(caller.user_id, scope, None, upto, tasks[-1].id)
    else:
        next_token = SyncToken(caller.user_id, scope, upto, None)
    return SyncPage(
        tasks=[TaskOut.model_validate(task) for task in tasks],
        deleted=[],
        full_sync=True,
        has_more=has_more,
        next_token=next_token.encode(),
    )
