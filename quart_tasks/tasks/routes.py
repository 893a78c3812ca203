"""`/api/tasks`: list, sync, create, batch, read, replace, patch and delete."""

from __future__ import annotations

from quart import Blueprint, Response, current_app, request, url_for
from quart_schema import (
    document_headers,
    document_response,
    validate_querystring,
    validate_request,
)

from quart_tasks.auth.caller import current_principal
from quart_tasks.idempotency.store import StoredResponse, fingerprint, idempotency_key, run_once
from quart_tasks.services import services
from quart_tasks.storage.unit_of_work import UnitOfWork, unit_of_work
from quart_tasks.tasks.batch.commands import run_batch
from quart_tasks.tasks.batch.schemas import BatchRequest, BatchResult
from quart_tasks.tasks.models import TaskRecord
from quart_tasks.tasks.schemas import (
    CreatedHeaders,
    CreateHeaders,
    ReadHeaders,
    SyncPage,
    SyncQuery,
    TaskCreate,
    TaskCursorPage,
    TaskHeaders,
    TaskListing,
    TaskListQuery,
    TaskOut,
    TaskPage,
    TaskPatch,
    TaskReplace,
    WriteHeaders,
)
from quart_tasks.tasks.sorting import SORT_ORDERS
from quart_tasks.tasks.store.interface import TaskFilter
from quart_tasks.tasks.sync.pages import sync_page
from quart_tasks.web.access import require_auth
from quart_tasks.web.conditional import etag, if_match, not_modified
from quart_tasks.web.errors import ErrorResponse
from quart_tasks.web.openapi import NoContent, operation_id
from quart_tasks.web.pagination import PageHeaders, link_header, next_link, within_reach
from quart_tasks.web.responses import json_response, json_text_response, no_content

tasks = Blueprint("tasks", __name__)

TASK_URL = "/tasks/<int:task_id>"


def task_response(task: TaskRecord, status: int = 200) -> Response:
    return json_response(TaskOut.model_validate(task), status, {"ETag": etag(task.version)})


@tasks.get("/tasks")
@require_auth
@validate_querystring(TaskListQuery)
@document_response(TaskListing, 200, PageHeaders)
@document_response(ErrorResponse, 403)
async def list_tasks(query_args: TaskListQuery) -> Response:
    """List tasks, a page at a time.

    Filter with `done` and `q`, order with `sort`. By `page` (the default) the
    body has `total` and the `Link` header points at the first, previous, next
    and last pages; with `cursor` (keyset mode, for deep or changing lists) it
    has `next_cursor` and a `Link` to the next page only.
    """
    caller = current_principal()
    sort = SORT_ORDERS[query_args.sort]
    store = services().tasks
    filters = TaskFilter(
        done=query_args.done_filter, title_contains=query_args.q, owner=query_args.owner
    )
    if query_args.cursor is not None:
        key = sort.key_from(query_args.cursor) if query_args.cursor else None
        items, more = await store.list_after(caller, filters, sort, key, query_args.page_size)
        next_cursor = sort.cursor_after(items[-1]) if more else None
        walk = TaskCursorPage(
            items=[TaskOut.model_validate(task) for task in items],
            page_size=query_args.page_size,
            next_cursor=next_cursor,
        )
        headers = {}
        if next_cursor is not None:
            params = {**query_args.link_params(), "cursor": next_cursor}
            headers["Link"] = next_link(request.path, params, query_args.page_size)
        return json_response(walk, headers=headers)
    max_offset = current_app.config["LIST_MAX_OFFSET"]
    page = within_reach(query_args.page_request(), max_offset)
    listed = await store.list_rendered(
        caller, filters, sort, page, current_app.config["LIST_SEARCH_TOTAL_LIMIT"]
    )
    body = TaskPage.json_with(listed.items_json, page, listed.total)
    link = link_header(request.path, query_args.link_params(), page, listed.total, max_offset)
    return json_text_response(body, headers={"Link": link})


@tasks.get("/tasks/sync")
@require_auth
@validate_querystring(SyncQuery)
@document_response(SyncPage, 200)
@document_response(ErrorResponse, 403)
@document_response(ErrorResponse, 410)
async def sync_tasks(query_args: SyncQuery) -> Response:
    """Everything changed since a token, for clients that keep a copy of their tasks.

    Without `token`, every task (`full_sync`); with one, each task created or
    changed since, once and in its latest state, and the ids of tasks deleted
    since. Follow `next_token` while `has_more`, and keep the last one for the
    next sync. 410 `sync_token_expired`: the token is older than the event
    log reaches, so sync again without one.
    """
    page = await sync_page(
        services().tasks,
        current_principal(),
        query_args.owner,
        query_args.token,
        query_args.page_size,
    )
    return json_response(page)


@tasks.post("/tasks")
@require_auth
@validate_request(TaskCreate)
@document_headers(CreateHeaders)
@document_response(TaskOut, 201, CreatedHeaders)
@document_response(ErrorResponse, 409)
@document_response(ErrorResponse, 422)
async def create_task(data: TaskCreate) -> Response:
    """Create a task.

    With an `Idempotency-Key`, a retry of the same request gets the first
    response again (with `Idempotent-Replayed: true`) and creates nothing.
    """
    caller, key = current_principal(), idempotency_key()

    async def perform(work: UnitOfWork) -> StoredResponse:
        task = await services().tasks.create(work, caller, title=data.title, done=data.done)
        location = url_for("tasks.get_task", task_id=task.id)
        body = TaskOut.model_validate(task).model_dump_json()
        return StoredResponse(201, body, {"Location": location, "ETag": etag(task.version)})

    if key is None:
        async with unit_of_work() as work:
            stored, replayed = await perform(work), False
    else:
        stored, replayed = await run_once(
            owner_id=caller.user_id,
            key=key,
            request_fingerprint=fingerprint(await request.get_json()),
            perform=perform,
        )
    return stored.to_response(replayed=replayed)


@tasks.post("/tasks/batch")
@operation_id("runBatch")
@require_auth
@validate_request(BatchRequest)
@document_response(BatchResult, 200)
@document_response(ErrorResponse, 409)
async def run_commands(data: BatchRequest) -> Response:
    """Up to 100 writes (create, replace, patch, delete) in order, in one request.

    Each command answers what its route would (`status`, `body` or `error`).
    Its `uuid` works as an `Idempotency-Key`: sent again, the command is not
    run again and its first result comes back with `replayed`. A create's
    `temp_id` may stand for its id in the commands after it. A failed command
    leaves the others applied, unless `atomic`: then nothing is applied, and
    the other commands answer 424 `not_applied`.
    """
    answer = await run_batch(services().tasks, current_principal(), data)
    return Response(answer.json(), content_type="application/json")


@tasks.get(TASK_URL)
@require_auth
@document_headers(ReadHeaders)
@document_response(TaskOut, 200, TaskHeaders)
@document_response(NoContent, 304, TaskHeaders)
async def get_task(task_id: int) -> Response:
    """Read a task; 304 with no body while `If-None-Match` names its ETag."""
    task = await services().tasks.fetch(current_principal(), task_id)
    if (held := not_modified(task.version)) is not None:
        return Response(b"", status=304, headers={"ETag": held})
    return task_response(task)


@tasks.put(TASK_URL)
@require_auth
@validate_request(TaskReplace)
@document_headers(WriteHeaders)
@document_response(TaskOut, 200, TaskHeaders)
@document_response(ErrorResponse, 412)
async def replace_task(task_id: int, data: TaskReplace) -> Response:
    """Replace a task: both `title` and `done` are required."""
    async with unit_of_work() as work:
        task = await services().tasks.update(
            work, current_principal(), task_id, data.model_dump(), if_match()
        )
    return task_response(task)


@tasks.patch(TASK_URL)
@require_auth
@validate_request(TaskPatch)
@document_headers(WriteHeaders)
@document_response(TaskOut, 200, TaskHeaders)
@document_response(ErrorResponse, 412)
async def patch_task(task_id: int, data: TaskPatch) -> Response:
    """Change some of a task's fields; `{}` changes nothing."""
    async with unit_of_work() as work:
        task = await services().tasks.update(
            work, current_principal(), task_id, data.changes(), if_match()
        )
    return task_response(task)


@tasks.delete(TASK_URL)
@require_auth
@document_headers(WriteHeaders)
@document_response(NoContent, 204)
@document_response(ErrorResponse, 412)
async def delete_task(task_id: int) -> Response:
    """Delete a task."""
    async with unit_of_work() as work:
        await services().tasks.delete(work, current_principal(), task_id, if_match())
    return no_content()
