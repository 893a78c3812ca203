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
from ..openapi import NoContent
from ..pagination import PageRequest, link_header
from ..security import require_auth
from . import queries
from .schemas import (
    CreatedHeaders,
    PageHeaders,
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
async def list_tasks(query_args: TaskListQuery) -> tuple[TaskPage, int, PageHeaders]:
    """List tasks, a page at a time.

    Filter with `done` and `q`, order with `sort`; the `Link` header points
    at the first, previous, next and last pages.
    """
    page = PageRequest(page=query_args.page, page_size=query_args.page_size)
    filters = queries.TaskFilter(done=query_args.done_filter, title_contains=query_args.q)
    items, total = await queries.list_tasks(db_session(), filters, query_args.sort, page)
    body = TaskPage(
        items=[TaskOut.model_validate(task) for task in items],
        page=page.page,
        page_size=page.page_size,
        total=total,
    )
    params = query_args.model_dump(exclude_unset=True, exclude={"page", "page_size"})
    return body, 200, PageHeaders(link=link_header(request.path, params, page, total))


@tasks.post("/tasks")
@require_auth
@validate_request(TaskCreate)
@validate_response(TaskOut, 201, CreatedHeaders)
async def create_task(data: TaskCreate) -> tuple[TaskOut, int, CreatedHeaders]:
    """Create a task."""
    task = await queries.create_task(db_session(), title=data.title, done=data.done)
    location = url_for("tasks.get_task", task_id=task.id)
    return TaskOut.model_validate(task), 201, CreatedHeaders(location=location)


@tasks.get(TASK_URL)
@require_auth
@validate_response(TaskOut)
async def get_task(task_id: int) -> TaskOut:
    """Read a task."""
    return TaskOut.model_validate(await queries.fetch_task(db_session(), task_id))


@tasks.put(TASK_URL)
@require_auth
@validate_request(TaskReplace)
@validate_response(TaskOut)
async def replace_task(task_id: int, data: TaskReplace) -> TaskOut:
    """Replace a task: both `title` and `done` are required."""
    task = await queries.update_task(db_session(), task_id, data.model_dump())
    return TaskOut.model_validate(task)


@tasks.patch(TASK_URL)
@require_auth
@validate_request(TaskPatch)
@validate_response(TaskOut)
async def patch_task(task_id: int, data: TaskPatch) -> TaskOut:
    """Change some of a task's fields; `{}` changes nothing."""
    task = await queries.update_task(db_session(), task_id, data.changes())
    return TaskOut.model_validate(task)


@tasks.delete(TASK_URL)
@require_auth
@document_response(NoContent, 204)
async def delete_task(task_id: int) -> Response:
    """Delete a task."""
    await queries.delete_task(db_session(), task_id)
    return Response("", status=204)
