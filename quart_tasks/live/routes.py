"""`GET /api/tasks/events` (Server-Sent Events) and `WS /api/tasks/ws`: live task changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, g, request, websocket
from quart_schema import validate_querystring

from quart_tasks.auth.caller import POLICY_VIOLATION, Principal, current_principal
from quart_tasks.live.streams import Heartbeat, Subscribed, sse_frames, stream_events, ws_message
from quart_tasks.services import services
from quart_tasks.serving.direct_streams import OUTLET, Outlet
from quart_tasks.storage.ids import MAX_BIG_ID
from quart_tasks.web.access import accepts_query_token, require_auth
from quart_tasks.web.errors import APIError
from quart_tasks.web.openapi import event_stream, operation_id

live = Blueprint("live", __name__)


class StreamQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: int | None = Field(
        default=None,
        ge=0,
        le=MAX_BIG_ID,
        description="Resume after this event id (as `Last-Event-ID` does).",
    )
    access_token: str | None = Field(
        default=None, description="The access token, for clients that cannot send headers."
    )


def resume_after(since: int | None, last_event_id: str | None) -> int | None:
    """Where to resume: `Last-Event-ID` (what a reconnecting EventSource sends) wins."""
    if last_event_id is None or not last_event_id.strip():
        return since
    value = last_event_id.strip()
    too_long = len(value) > len(str(MAX_BIG_ID))  # and int() refuses 4,300+ digits
    if not value.isascii() or not value.isdigit() or too_long or int(value) > MAX_BIG_ID:
        message = "must be an event id"
        raise APIError(
            400,
            "validation_error",
            f"Last-Event-ID: {message}",
            details=[{"loc": ["header", "Last-Event-ID"], "message": message}],
        )
    return int(value)


def subscriber_of(caller: Principal) -> int | None:
    """Whose events the caller gets: their own, or everyone's for an admin."""
    return None if caller.is_admin else caller.user_id


async def release_request_session() -> None:
    """A stream may stay open for hours: it must not hold a pooled connection meanwhile."""
    session = g.pop("db_session", None)
    if session is not None:
        await session.close()


@live.get("/tasks/events")
@operation_id("streamTaskEvents")
@require_auth
@accepts_query_token
@event_stream
@validate_querystring(StreamQuery)
async def task_events(query_args: StreamQuery) -> Response:
    """A stream of the caller's task changes as Server-Sent Events (an admin's: everyone's).

    Events `task.created`, `task.updated` and `task.deleted` carry the event id
    as `id` and the task (`{"id": ...}` for a deletion) as `data`. `Last-Event-ID`
    or `since` resumes after an event; an id the log no longer holds gets a
    `reset` event, after which the client reloads. A comment every 15 s keeps
    idle connections open.
    """
    caller = current_principal()
    resume = resume_after(query_args.since, request.headers.get("Last-Event-ID"))
    await release_request_session()
    broker = services().live.broker
    events = stream_events(
        broker,
        broker.sessions,
        owner_id=subscriber_of(caller),
        resume_after=resume,
        outlet=outlet_of(request.scope),
    )

    async def body() -> AsyncIterator[bytes]:
        async for batch in events:  # the first is the preamble, once subscribed
            yield sse_frames(batch)

    response = Response(
        body(),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.timeout = None  # Quart's response timeout would cut the stream
    return response


@live.websocket("/tasks/ws")
@operation_id("taskEventsWebSocket")
@require_auth
@accepts_query_token
async def task_events_websocket() -> None:
    """The same events as JSON text messages: `{"id", "event", "data"}`, uncompressed.

    The token comes as `Authorization: Bearer` or `access_token`; without a
    valid one the socket is closed with 1008 (policy violation).
    """
    caller = current_principal()
    try:
        since = _websocket_since(websocket.args.get("since"))
        resume = resume_after(since, websocket.headers.get("Last-Event-ID"))
    except APIError as error:
        await websocket.accept()
        await websocket.close(POLICY_VIOLATION, error.message[:120])
        return
    finally:
        await release_request_session()
    outlet = outlet_of(websocket.scope)
    if outlet is not None:
        outlet.decline_extensions()  # uncompressed, its messages can be handed over
    broker = services().live.broker
    async for batch in stream_events(
        broker,
        broker.sessions,
        owner_id=subscriber_of(caller),
        resume_after=resume,
        outlet=outlet,
    ):
        for item in batch:
            if isinstance(item, Subscribed):
                await websocket.accept()
                continue
            if isinstance(item, Heartbeat):
                # No comment frame exists here, and Hypercorn's websocket_ping_interval
                # holds shutdown up for a whole interval: an idle socket gets nothing.
                continue
            await websocket.send(ws_message(item))
    await websocket.close(1000)  # once handed over, the broker closes it: this is not sent


def outlet_of(scope: Any) -> Outlet | None:
    """The connection to hand the stream to, where the server offers it and it is on."""
    if not services().live.direct_writes:
        return None
    outlet = scope.get("extensions", {}).get(OUTLET)
    return outlet if isinstance(outlet, Outlet) else None


def _websocket_since(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return StreamQuery.model_validate({"since": raw}).since
    except ValueError:
        raise APIError(400, "validation_error", "since: must be an event id") from None
