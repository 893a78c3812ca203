"""`/api/tasks`: list, create, read, replace, patch and delete."""

from __future__ import annotations

from quart import Blueprint, Response, request, url_for
from quart_schema import (
    document_response,
    validate_querystring,
    validate_request,
    validate_response,
)

from ..database import db_session
from ..errors import ErrorResponse
from ..openapi import NoContent
from ..pagination import PageHeaders, link_header
from ..security import current_principal, require_auth
from . import queries
from .schemas import (
    CreatedHeaders,
    TaskCreate,
    TaskListQuery,
    TaskOut,
    TaskPage,
    TaskPatch,
    TaskReplace,
)

tasks = Blueprint("tasks", __name__)

TASK_URL = "/tasks/<int:task_id>"


@tasks.get("/tasks")
@require_auth
@validate_querystring(TaskListQuery)
@validate_response(TaskPage, 200, PageHeaders)
@document_response(ErrorResponse, 403)
async def list_tasks(query_args: TaskListQuery) -> tuple[TaskPage, int, PageHeaders]:
    """List tasks, a page at a time.

    Filter with `done` and `q`, order with `sort`; the `Link` header points
    at the first, previous, next and last pages.
    """
    page = query_args.page_request()
    filters = queries.TaskFilter(
        done=query_args.done_filter, title_contains=query_args.q, owner=query_args.owner
    )
    items, total = await queries.list_tasks(
        db_session(), current_principal(), filters, query_args.sort, page
    )
    body = TaskPage(
        items=[TaskOut.model_validate(task) for task in items],
        page=page.page,
        page_size=page.page_size,
        total=total,
    )
    link = link_header(request.path, query_args.link_params(), page, total)
    return body, 200, PageHeaders(link=link)


@tasks.post("/tasks")
@require_auth
@validate_request(TaskCreate)
@validate_response(TaskOut, 201, CreatedHeaders)
async def create_task(data: TaskCreate) -> tuple[TaskOut, int, CreatedHeaders]:
    """Create a task."""
    task = await queries.create_task(
        db_session(), current_principal(), title=data.title, done=data.done
    )
    location = url_for("tasks.get_task", task_id=task.id)
    return TaskOut.model_validate(task), 201, CreatedHeaders(location=location)


@tasks.get(TASK_URL)
@require_auth
@validate_response(TaskOut)
async def get_task(task_id: int) -> TaskOut:
    """Read a task."""
    return TaskOut.model_validate(
        await queries.fetch_task(db_session(), current_principal(), task_id)
    )


@tasks.put(TASK_URL)
@require_auth
@validate_request(TaskReplace)
@validate_response(TaskOut)
async def replace_task(task_id: int, data: TaskReplace) -> TaskOut:
    """Replace a task: both `title` and `done` are required."""
    task = await queries.update_task(db_session(), current_principal(), task_id, data.model_dump())
    return TaskOut.model_validate(task)


@tasks.patch(TASK_URL)
@require_auth
@validate_request(TaskPatch)
@validate_response(TaskOut)
async def patch_task(task_id: int, data: TaskPatch) -> TaskOut:
    """Change some of a task's fields; `{}` changes nothing."""
    task = await queries.update_task(db_session(), current_principal(), task_id, data.changes())
    return TaskOut.model_validate(task)


@tasks.delete(TASK_URL)
@require_auth
@document_response(NoContent, 204)
async def delete_task(task_id: int) -> Response:
    """Delete a task."""
    await queries.delete_task(db_session(), current_principal(), task_id)
    return Response("", status=204)
