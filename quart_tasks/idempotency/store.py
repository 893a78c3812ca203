"""Run a keyed request's work at most once, and answer its retries from the store.

The key row is inserted first and committed with the work, in one transaction:
a concurrent request with the same key waits on that row's unique index, then
replays the stored response once the first commits, or answers 409 if the
first is still running when its wait runs out. A request that fails stores
nothing, so its retry runs afresh.
"""

from __future__ import annotations

import hashlib
import json
import random
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from quart import Response, current_app, request
from sqlalchemy import Table, bindparam, delete, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quart_tasks.idempotency.models import KEY_MAX_LENGTH, IdempotencyKey
from quart_tasks.storage.base import utcnow
from quart_tasks.storage.dialects import is_postgresql
from quart_tasks.storage.unit_of_work import UnitOfWork, unit_of_work
from quart_tasks.web.errors import APIError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: str
    headers: dict[str, str]

    def to_response(self, *, replayed: bool) -> Response:
        headers = {**self.headers, REPLAYED_HEADER: "true"} if replayed else self.headers
        return Response(
            self.body, status=self.status, headers=headers, content_type="application/json"
        )


def idempotency_key() -> str | None:
    """The request's `Idempotency-Key`: 1-255 visible ASCII characters, or 400."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= KEY_MAX_LENGTH or not all("!" <= c <= "~" for c in key):
        message = f"must be 1 to {KEY_MAX_LENGTH} visible ASCII characters"
        raise APIError(
            400,
            "validation_error",
            f"{HEADER}: {message}",
            details=[{"loc": ["header", HEADER], "message": message}],
        )
    return key


def fingerprint(body: Any) -> str:
    """What makes two requests the same: method, path and the JSON body, whitespace aside."""
    return fingerprint_of([request.method, request.path, body])


def fingerprint_of(content: Any) -> str:
    """A digest of JSON `content` that ignores key order and whitespace."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def expiry() -> datetime:
    """When a key recorded now expires."""
    return utcnow() + timedelta(seconds=current_app.config["IDEMPOTENCY_TTL_SECONDS"])


class KeyTaken(Exception):
    """A key was recorded by another request meanwhile: roll back, and replay it."""


class Recorded(Protocol):
    """A key's record: an `IdempotencyKey`, or a row of its table."""

    @property
    def key(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def status_code(self) -> int: ...
    @property
    def response_body(self) -> str: ...
    @property
    def response_headers(self) -> str: ...


def in_flight() -> APIError:
    return APIError(409, "conflict", f"A request with this {HEADER} is still in progress")


def reused() -> APIError:
    return APIError(
        422,
        "idempotency_key_reused",
        f"This {HEADER} was used with a different request",
    )


async def run_once(
    *,
    owner_id: int,
    key: str,
    request_fingerprint: str,
    perform: Callable[[UnitOfWork], Awaitable[StoredResponse]],
) -> tuple[StoredResponse, bool]:
    """The response to this keyed request, and whether it is a replay of an earlier one.

    `perform` writes in the unit of work it is given, which commits it with the key.
    """

    async def replay_or_perform(work: UnitOfWork) -> tuple[StoredResponse, bool]:
        return await _replay_or_perform(work, owner_id, key, request_fingerprint, perform)

    return await keyed_transaction(replay_or_perform)


async def keyed_transaction(work_with_keys: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """`work_with_keys` in a unit of work, run again if another request recorded one of its
    keys first (the retry then finds and replays it); 409 while that request still runs."""
    for _ in range(3):
        try:
            async with unit_of_work() as work:
                return await work_with_keys(work)
        except (IntegrityError, KeyTaken):  # the other request committed first: replay it
            continue
        except DBAPIError as error:
            if _is_lock_timeout(error):
                raise in_flight() from None
            raise
    raise in_flight()


async def _replay_or_perform(
    work: UnitOfWork,
    owner_id: int,
    key: str,
    request_fingerprint: str,
    perform: Callable[[UnitOfWork], Awaitable[StoredResponse]],
) -> tuple[StoredResponse, bool]:
    config = current_app.config
    session = work.session
    existing = await session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.owner_id == owner_id, IdempotencyKey.key == key)
    )
    if existing is not None:
        if existing.expires_at > utcnow():
            if existing.fingerprint != request_fingerprint:
                raise reused()
            stored = StoredResponse(
                existing.status_code, existing.response_body, json.loads(existing.response_headers)
            )
            return stored, True
        await session.delete(existing)
        await session.flush()  # before the new key's insert, which would collide with it
    record = IdempotencyKey(
        owner_id=owner_id,
        key=key,
        fingerprint=request_fingerprint,
        status_code=0,
        response_body="",
        response_headers="{}",
        expires_at=utcnow() + timedelta(seconds=config["IDEMPOTENCY_TTL_SECONDS"]),
    )
    await _bound_lock_wait(session, config["IDEMPOTENCY_WAIT_MS"])
    session.add(record)
    await session.flush()  # waits here while another request holds this key
    response = await perform(work)
    record.status_code = response.status
    record.response_body = response.body
    record.response_headers = json.dumps(response.headers)
    work.after_commit(
        "purge expired idempotency keys", _purge_some_expired(config["IDEMPOTENCY_PURGE_EVERY"])
    )
    return response, False


async def _bound_lock_wait(session: AsyncSession, wait_ms: int) -> None:
    if is_postgresql(session):
        await session.execute(text(f"SET LOCAL lock_timeout = {int(wait_ms)}"))


def _is_lock_timeout(error: DBAPIError) -> bool:
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return code == "55P03" or "database is locked" in str(error.orig)


def _purge_some_expired(every: int) -> Callable[[AsyncSession], Awaitable[None]]:
    """Now and then, delete a batch of expired keys: no separate daemon needed."""

    async def purge(session: AsyncSession) -> None:
        if every <= 0 or random.randrange(every) != 0:
            return
        expired = select(IdempotencyKey.id).where(IdempotencyKey.expires_at <= utcnow())
        await session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.id.in_(expired.limit(1000)))
        )

    return purge


@dataclass(frozen=True, slots=True)
class KeyedResult:
    """A keyed piece of work's outcome, to record with its key."""

    key: str
    fingerprint: str
    response: StoredResponse


async def recorded(
    session: AsyncSession, owner_id: int, keys: list[str]
) -> dict[str, IdempotencyKey]:
    """The unexpired records of `keys`, by key; expired ones are deleted, so the keys are free
    to record again in this transaction."""
    if not keys:
        return {}
    statement = _KEYS_BY_LOOKUP if is_postgresql(session) else _KEYS_IN
    found = await session.scalars(statement, {"owner_id": owner_id, "keys": keys})
    now, live, expired = utcnow(), {}, []
    for record in found:
        if record.expires_at > now:
            live[record.key] = record
        else:
            expired.append(record.id)
    if expired:
        await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id.in_(expired)))
    return live


_KEYS_IN = select(IdempotencyKey).where(
    IdempotencyKey.owner_id == bindparam("owner_id"),
    IdempotencyKey.key.in_(bindparam("keys", expanding=True)),
)
# One index lookup per key, whatever the planner believes: as `key IN (...)`, a table
# not yet analyzed was read by owner alone, every key of the owner's (2 ms at 10,000
# keys and growing). OFFSET 0 keeps PostgreSQL from flattening the lookup into a join.
KEYS_LOOKUP = text(
    "SELECT found.* FROM unnest(CAST(:keys AS text[])) AS wanted(key) "
    "CROSS JOIN LATERAL (SELECT * FROM idempotency_keys "
    "WHERE owner_id = :owner_id AND key = wanted.key OFFSET 0) AS found"
)
"""On PostgreSQL, the records of `keys` of `owner_id`'s, whoever runs it."""
_KEYS_BY_LOOKUP = select(IdempotencyKey).from_statement(KEYS_LOOKUP)


async def record_all(work: UnitOfWork, owner_id: int, results: list[KeyedResult]) -> None:
    """Record every result with its key, in one statement, committed with the work.

    A key another transaction holds uncommitted is waited for (`IDEMPOTENCY_WAIT_MS`, then
    409), then fails the insert with IntegrityError: roll back, and the retry replays it.
    """
    if not results:
        return
    config = current_app.config
    expires_at = expiry()
    await _bound_lock_wait(work.session, config["IDEMPOTENCY_WAIT_MS"])
    values = {"owner_id": owner_id, "now": utcnow(), "expires_at": expires_at}
    if is_postgresql(work.session):
        columns = {
            "keys": [result.key for result in results],
            "fingerprints": [result.fingerprint for result in results],
            "statuses": [str(result.response.status) for result in results],
            "bodies": [result.response.body for result in results],
            "headers": [json.dumps(result.response.headers) for result in results],
        }
        await work.session.execute(_INSERT_KEYS, {**values, **columns})
    else:
        rows = [
            {
                **values,
                "key": result.key,
                "fingerprint": result.fingerprint,
                "status_code": result.response.status,
                "response_body": result.response.body,
                "response_headers": json.dumps(result.response.headers),
            }
            for result in results
        ]
        await work.session.execute(_INSERT_KEY, rows)
    work.after_commit(
        "purge expired idempotency keys", _purge_some_expired(config["IDEMPOTENCY_PURGE_EVERY"])
    )


_KEYS = typing.cast(Table, IdempotencyKey.__table__)
_INSERT_KEY = insert(_KEYS).values(
    owner_id=bindparam("owner_id"),
    key=bindparam("key"),
    fingerprint=bindparam("fingerprint"),
    status_code=bindparam("status_code"),
    response_body=bindparam("response_body"),
    response_headers=bindparam("response_headers"),
    created_at=bindparam("now"),
    expires_at=bindparam("expires_at"),
)
# On PostgreSQL, every key in one statement of a few parameters: the lists go as text[]
# (which asyncpg knows without asking the server's catalog) and are unnested there.
_INSERT_KEYS = text(
    "INSERT INTO idempotency_keys (owner_id, key, fingerprint, status_code, response_body, "
    "response_headers, created_at, expires_at) "
    "SELECT :owner_id, given.key, given.fingerprint, CAST(given.status AS integer), given.body, "
    "given.headers, :now, :expires_at "
    "FROM unnest(CAST(:keys AS text[]), CAST(:fingerprints AS text[]), "
    "CAST(:statuses AS text[]), CAST(:bodies AS text[]), CAST(:headers AS text[])) "
    "AS given(key, fingerprint, status, body, headers)"
).bindparams(
    bindparam("now", type_=_KEYS.c.created_at.type),
    bindparam("expires_at", type_=_KEYS.c.expires_at.type),
)
