"""`POST /api/tasks/batch`: up to 100 writes in one request, each idempotent by its uuid.

A batch is one transaction: it costs one commit, and its events commit
together, in command order, so subscribers get them as single writes would
send them. A failed command needs no savepoint to stay its own: each write is
one guarded statement that either writes or raises before writing (see
`store`). So without `atomic` a failed command leaves the others applied,
and with it the batch rolls back, its failure raised out of the transaction.
Creates in a row go to the database as one statement (`create_many`). On the
fast path a batch of nothing but creates needs no transaction: its records
are read, then its tasks, their events and their records are written by one
statement, which commits by itself (`create_keyed_in_autocommit`).

A command's uuid is an idempotency key of the caller's, as `Idempotency-Key`
is for a single request: its result is recorded with the batch's writes and
replayed (`"replayed": true`) when the uuid comes again with the same
command; with another command, that command fails 422. A failed command
records nothing, so its retry runs afresh.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from quart_tasks.auth.caller import Principal
from quart_tasks.idempotency.store import (
    KEYS_LOOKUP,
    KeyedResult,
    Recorded,
    StoredResponse,
    expiry,
    fingerprint_of,
    keyed_transaction,
    record_all,
    recorded,
    reused,
)
from quart_tasks.storage.base import utcnow
from quart_tasks.storage.unit_of_work import UnitOfWork
from quart_tasks.tasks.batch.schemas import BatchRequest, Command
from quart_tasks.tasks.models import TaskRecord
from quart_tasks.tasks.schemas import TaskCreate, TaskOut, TaskPatch, TaskReplace
from quart_tasks.tasks.store.interface import KeyedCreate, KeyedCreates, TaskStore
from quart_tasks.web.conditional import etag, parse_if_match
from quart_tasks.web.errors import APIError, error_body, validation_error

Args = TypeVar("Args", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    """The batch's answer as JSON (a `BatchResult`), assembled from each command's."""

    results: list[str]
    temp_id_mapping: dict[str, int]

    def json(self) -> str:
        mapping = json.dumps(self.temp_id_mapping, separators=(",", ":"))
        return f'{{"results":[{",".join(self.results)}],"temp_id_mapping":{mapping}}}'


@dataclass(slots=True)
class Outcome:
    """A command's result. Its task's JSON is written once, for the answer and the record
    alike, and a replay's is the record's as it is."""

    status: int
    body: str | None = None
    etag: str | None = None
    error: APIError | None = None
    replayed: bool = False

    @classmethod
    def of(cls, status: int, task: TaskRecord) -> Outcome:
        body = TaskOut.model_validate(task).model_dump_json()
        return cls(status, body=body, etag=etag(task.version))

    def json(self, uuid: str) -> str:
        """As `CommandResult`, without the fields that are absent."""
        parts = [f'"uuid":{json.dumps(uuid)}', f'"status":{self.status}']
        if self.body is not None:
            parts.append(f'"body":{self.body}')
        if self.etag is not None:
            parts.append(f'"etag":{json.dumps(self.etag)}')
        if self.error is not None:
            parts.append(f'"error":{json.dumps(error_body(self.error), separators=(",", ":"))}')
        if self.replayed:
            parts.append('"replayed":true')
        return "{" + ",".join(parts) + "}"


def failure(error: APIError) -> Outcome:
    return Outcome(error.status, error=error)


def not_applied(message: str) -> APIError:
    return APIError(424, "not_applied", message)


class AtomicBatchFailed(Exception):
    """An atomic batch's command failed: raised out of its transaction, which rolls back."""

    def __init__(self, result: BatchAnswer) -> None:
        super().__init__("an atomic batch failed")
        self.result = result


async def run_batch(store: TaskStore, caller: Principal, batch: BatchRequest) -> BatchAnswer:
    async def run(work: UnitOfWork) -> BatchAnswer:
        return await BatchRun(store, caller, batch, work).run()

    try:
        return await keyed_transaction(run)
    except AtomicBatchFailed as failed:
        return failed.result


@dataclass(slots=True)
class BatchRun:
    store: TaskStore
    caller: Principal
    batch: BatchRequest
    work: UnitOfWork
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    temp_ids: dict[str, int] = field(default_factory=dict)
    waiting_creates: list[tuple[int, TaskCreate]] = field(default_factory=list)

    async def run(self) -> BatchAnswer:
        commands = self.batch.commands
        fingerprints = [_fingerprint(command) for command in commands]
        uuids = [command.uuid for command in commands]
        # Nothing but creates: on a store that can, two statements outside any transaction.
        keyed = self.store if isinstance(self.store, KeyedCreates) else None
        found = None
        if (
            keyed is not None
            and commands
            and all(command.type == "create" for command in commands)
            and keyed.writes_creates_in_autocommit(self.work)
        ):
            found = await self.recorded_in_autocommit(keyed, uuids)
        records: Mapping[str, Recorded] = (
            found
            if found is not None
            else await recorded(self.work.session, self.caller.user_id, uuids)
        )
        for n, command in enumerate(commands):
            record = records.get(command.uuid)
            if record is not None:
                self.settle(n, self.replay(command, record, fingerprints[n]))
            else:
                outcome = await self.perform(n, command)
                if outcome is not None:
                    self.settle(n, outcome)
        if keyed is not None and found is not None:
            await self.create_waiting_in_autocommit(keyed, fingerprints)
        else:
            await self.create_waiting()
            fresh = [
                KeyedResult(commands[n].uuid, fingerprints[n], _stored(outcome))
                for n, outcome in sorted(self.outcomes.items())
                if outcome.error is None and not outcome.replayed
            ]
            await record_all(self.work, self.caller.user_id, fresh)
        return BatchAnswer(
            [self.outcomes[n].json(command.uuid) for n, command in enumerate(commands)],
            self.temp_ids,
        )

    async def recorded_in_autocommit(
        self, keyed: KeyedCreates, uuids: list[str]
    ) -> dict[str, Recorded] | None:
        """The uuids' records, read outside the unit of work; None if one has expired
        (the general way deletes it)."""
        rows = await keyed.read_in_autocommit(
            KEYS_LOOKUP, {"owner_id": self.caller.user_id, "keys": uuids}
        )
        now = utcnow()
        if any(row.expires_at <= now for row in rows):
            return None
        return {row.key: row for row in rows}

    def settle(self, n: int, outcome: Outcome) -> None:
        self.outcomes[n] = outcome
        if outcome.error is not None and self.batch.atomic:
            raise AtomicBatchFailed(self.atomic_failure(n, outcome))

    def atomic_failure(self, failed: int, outcome: Outcome) -> BatchAnswer:
        others = failure(
            not_applied(f"Not applied: command {failed} failed, and the batch is atomic")
        )
        return BatchAnswer(
            [
                (outcome if n == failed else others).json(command.uuid)
                for n, command in enumerate(self.batch.commands)
            ],
            {},
        )

    def replay(self, command: Command, record: Recorded, fingerprint: str) -> Outcome:
        if record.fingerprint != fingerprint:
            return failure(reused())
        body = record.response_body or None
        if command.temp_id is not None and body is not None:
            self.temp_ids[command.temp_id] = json.loads(body)["id"]
        tag = json.loads(record.response_headers).get("ETag")
        return Outcome(record.status_code, body=body, etag=tag, replayed=True)

    async def perform(self, n: int, command: Command) -> Outcome | None:
        """The command's outcome; None for a create, which waits to go with the next ones."""
        try:
            if command.type == "create":
                self.waiting_creates.append((n, _args(TaskCreate, command)))
                return None
            await self.create_waiting()
            task_id = self.task_id(command.id)
            expected = parse_if_match(command.if_match) if command.if_match is not None else None
            if command.type == "delete":
                await self.store.delete(self.work, self.caller, task_id, expected)
                return Outcome(204)
            if command.type == "replace":
                changes = _args(TaskReplace, command).model_dump()
            else:
                changes = _args(TaskPatch, command).changes()
            task = await self.store.update(self.work, self.caller, task_id, changes, expected)
            return Outcome.of(200, task)
        except APIError as error:
            return failure(error)

    async def create_waiting(self) -> None:
        if not self.waiting_creates:
            return
        waiting, self.waiting_creates = self.waiting_creates, []
        given = [(data.title, data.done) for _, data in waiting]
        created = await self.store.create_many(self.work, self.caller, given)
        for (n, _), task in zip(waiting, created, strict=True):
            self.created(n, Outcome.of(201, task), task.id)

    async def create_waiting_in_autocommit(
        self, keyed: KeyedCreates, fingerprints: list[str]
    ) -> None:
        waiting, self.waiting_creates = self.waiting_creates, []
        if not waiting:
            return
        commands = self.batch.commands
        given = [
            KeyedCreate(data.title, data.done, commands[n].uuid, fingerprints[n])
            for n, data in waiting
        ]
        created = await keyed.create_keyed_in_autocommit(self.work, self.caller, given, expiry())
        for (n, _), row in zip(waiting, created, strict=True):
            self.created(n, Outcome(201, body=row.json, etag=etag(row.version)), row.id)

    def created(self, n: int, outcome: Outcome, task_id: int) -> None:
        temp_id = self.batch.commands[n].temp_id
        if temp_id is not None:
            self.temp_ids[temp_id] = task_id
        self.settle(n, outcome)

    def task_id(self, given: int | str | None) -> int:
        if isinstance(given, int):
            return given
        assert given is not None  # a command that needs an id has one (`Command`)
        found = self.temp_ids.get(given)
        if found is None:
            raise not_applied(f"Not applied: the create of temp_id {given!r} failed")
        return found


def _args(model: type[Args], command: Command) -> Args:
    try:
        return model.model_validate(command.args)
    except ValidationError as error:
        raise validation_error(error) from None


def _fingerprint(command: Command) -> str:
    return fingerprint_of(
        ["batch", command.type, command.id, command.temp_id, command.if_match, command.args]
    )


def _stored(outcome: Outcome) -> StoredResponse:
    headers = {"ETag": outcome.etag} if outcome.etag is not None else {}
    return StoredResponse(outcome.status, outcome.body or "", headers)
