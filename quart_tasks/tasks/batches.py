"""`POST /api/tasks/batch`: up to 100 writes in one request, each idempotent by its uuid.

A batch is one transaction: it costs one commit, and its events commit
together, in command order, so subscribers get them as single writes would
send them. A failed command needs no savepoint to stay its own: each write is
one guarded statement that either writes or raises before writing (see
`store`). So without `atomic` a failed command leaves the others applied,
and with it the batch rolls back, its failure raised out of the transaction.
Creates in a row go to the database as one statement (`create_many`).

A command's uuid is an idempotency key of the caller's, as `Idempotency-Key`
is for a single request: its result is recorded with the batch's writes and
replayed (`"replayed": true`) when the uuid comes again with the same
command; with another command, that command fails 422. A failed command
records nothing, so its retry runs afresh.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from quart_tasks.auth.caller import Principal
from quart_tasks.idempotency.models import IdempotencyKey
from quart_tasks.idempotency.store import (
    KeyedResult,
    StoredResponse,
    fingerprint_of,
    keyed_transaction,
    record_all,
    recorded,
    reused,
)
from quart_tasks.storage.unit_of_work import UnitOfWork
from quart_tasks.tasks.batch_schemas import BatchRequest, BatchResult, Command, CommandResult
from quart_tasks.tasks.models import TaskRecord
from quart_tasks.tasks.schemas import TaskCreate, TaskOut, TaskPatch, TaskReplace
from quart_tasks.tasks.store import PortableTaskStore
from quart_tasks.web.conditional import etag, parse_if_match
from quart_tasks.web.errors import APIError, ErrorBody, validation_error

Args = TypeVar("Args", bound=BaseModel)


@dataclass(slots=True)
class Outcome:
    status: int
    task: TaskOut | None = None
    etag: str | None = None
    error: APIError | None = None
    replayed: bool = False

    @classmethod
    def of(cls, status: int, task: TaskRecord) -> Outcome:
        return cls(status, task=TaskOut.model_validate(task), etag=etag(task.version))

    def result(self, uuid: str) -> CommandResult:
        error = None
        if self.error is not None:
            details = list(self.error.details) if self.error.details is not None else None
            error = ErrorBody.model_validate(
                {"code": self.error.code, "message": self.error.message, "details": details}
            )
        return CommandResult(
            uuid=uuid,
            status=self.status,
            body=self.task,
            etag=self.etag,
            error=error,
            replayed=True if self.replayed else None,
        )


def failure(error: APIError) -> Outcome:
    return Outcome(error.status, error=error)


def not_applied(message: str) -> APIError:
    return APIError(424, "not_applied", message)


class AtomicBatchFailed(Exception):
    """An atomic batch's command failed: raised out of its transaction, which rolls back."""

    def __init__(self, result: BatchResult) -> None:
        super().__init__("an atomic batch failed")
        self.result = result


async def run_batch(
    store: PortableTaskStore, caller: Principal, batch: BatchRequest
) -> BatchResult:
    async def run(work: UnitOfWork) -> BatchResult:
        return await BatchRun(store, caller, batch, work).run()

    try:
        return await keyed_transaction(run)
    except AtomicBatchFailed as failed:
        return failed.result


@dataclass(slots=True)
class BatchRun:
    store: PortableTaskStore
    caller: Principal
    batch: BatchRequest
    work: UnitOfWork
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    temp_ids: dict[str, int] = field(default_factory=dict)
    waiting_creates: list[tuple[int, TaskCreate]] = field(default_factory=list)

    async def run(self) -> BatchResult:
        commands = self.batch.commands
        fingerprints = [_fingerprint(command) for command in commands]
        records = await recorded(
            self.work.session, self.caller.user_id, [command.uuid for command in commands]
        )
        for n, command in enumerate(commands):
            record = records.get(command.uuid)
            if record is not None:
                self.settle(n, self.replay(command, record, fingerprints[n]))
            else:
                outcome = await self.perform(n, command)
                if outcome is not None:
                    self.settle(n, outcome)
        await self.create_waiting()
        fresh = [
            KeyedResult(commands[n].uuid, fingerprints[n], _stored(outcome))
            for n, outcome in sorted(self.outcomes.items())
            if outcome.error is None and not outcome.replayed
        ]
        await record_all(self.work, self.caller.user_id, fresh)
        return BatchResult(
            results=[self.outcomes[n].result(command.uuid) for n, command in enumerate(commands)],
            temp_id_mapping=self.temp_ids,
        )

    def settle(self, n: int, outcome: Outcome) -> None:
        self.outcomes[n] = outcome
        if outcome.error is not None and self.batch.atomic:
            raise AtomicBatchFailed(self.atomic_failure(n, outcome))

    def atomic_failure(self, failed: int, outcome: Outcome) -> BatchResult:
        others = failure(
            not_applied(f"Not applied: command {failed} failed, and the batch is atomic")
        )
        return BatchResult(
            results=[
                (outcome if n == failed else others).result(command.uuid)
                for n, command in enumerate(self.batch.commands)
            ],
            temp_id_mapping={},
        )

    def replay(self, command: Command, record: IdempotencyKey, fingerprint: str) -> Outcome:
        if record.fingerprint != fingerprint:
            return failure(reused())
        task = TaskOut.model_validate_json(record.response_body) if record.response_body else None
        if command.temp_id is not None and task is not None:
            self.temp_ids[command.temp_id] = task.id
        tag = json.loads(record.response_headers).get("ETag")
        return Outcome(record.status_code, task=task, etag=tag, replayed=True)

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
            temp_id = self.batch.commands[n].temp_id
            if temp_id is not None:
                self.temp_ids[temp_id] = task.id
            self.settle(n, Outcome.of(201, task))

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
    if outcome.task is None or outcome.etag is None:
        return StoredResponse(outcome.status, "", {})
    body = outcome.task.model_dump_json()
    return StoredResponse(outcome.status, body, {"ETag": outcome.etag})
