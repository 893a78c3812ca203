"""What `POST /api/tasks/batch` accepts and returns."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from quart_tasks.idempotency.models import KEY_MAX_LENGTH
from quart_tasks.tasks.schemas import TASK, Strict, TaskOut
from quart_tasks.web.errors import ErrorBody

MAX_COMMANDS = 100

Key = Annotated[
    str, StringConstraints(min_length=1, max_length=KEY_MAX_LENGTH, pattern=r"^[!-~]+$")
]
"""1-255 visible ASCII characters, as an `Idempotency-Key`."""

CommandType = Literal["create", "replace", "patch", "delete"]


class Command(Strict):
    """One write: what its single-task route would do, with `args` as that route's body."""

    type: CommandType
    uuid: Key = Field(description="Makes the command idempotent, as an `Idempotency-Key`.")
    temp_id: Key | None = Field(
        default=None, description="On a create: a name later commands may use as its `id`."
    )
    id: StrictInt | Key | None = Field(
        default=None,
        description="The task: its id, or the `temp_id` of an earlier create in the batch.",
    )
    if_match: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        default=None, description="As the `If-Match` header: the change happens only then."
    )
    args: dict[str, Any] | None = Field(
        default=None, description="The body of the route: a create's, a replace's or a patch's."
    )

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> Command:
        if self.type == "create":
            if self.id is not None or self.if_match is not None:
                raise ValueError("a create takes no id or if_match")
        else:
            if self.temp_id is not None:
                raise ValueError("temp_id is only for a create")
            if self.id is None:
                raise ValueError(f"a {self.type} needs an id")
        if self.type == "delete" and self.args is not None:
            raise ValueError("a delete takes no args")
        if self.type != "delete" and self.args is None:
            raise ValueError(f"a {self.type} needs args")
        return self


class BatchRequest(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "commands": [
                        {
                            "type": "create",
                            "uuid": "5b0c1e4e-create",
                            "temp_id": "new-1",
                            "args": {"title": "Write the docs"},
                        },
                        {
                            "type": "patch",
                            "uuid": "5b0c1e4e-patch",
                            "id": "new-1",
                            "args": {"done": True},
                        },
                    ]
                }
            ]
        }
    )

    commands: list[Command] = Field(max_length=MAX_COMMANDS, description="Run in order.")
    atomic: StrictBool = Field(
        default=False,
        description="All or nothing: on a failure, nothing is applied and the other commands "
        "answer 424 `not_applied`. Otherwise a failed command leaves the others applied.",
    )

    @model_validator(mode="after")
    def _references(self) -> BatchRequest:
        """Every uuid and temp_id once; a temp_id used only after the create that makes it."""
        uuids: set[str] = set()
        temp_ids: set[str] = set()
        for n, command in enumerate(self.commands):
            if command.uuid in uuids:
                raise ValueError(f"commands[{n}].uuid: used twice in this batch")
            uuids.add(command.uuid)
            if isinstance(command.id, str) and command.id not in temp_ids:
                raise ValueError(
                    f"commands[{n}].id: {command.id!r} is no task id, nor the temp_id of "
                    "an earlier create in this batch"
                )
            if command.temp_id is not None:
                if command.temp_id in temp_ids:
                    raise ValueError(f"commands[{n}].temp_id: used twice in this batch")
                temp_ids.add(command.temp_id)
        return self


class CommandResult(BaseModel):
    """What the command's route would have answered: its status, and its body or error."""

    uuid: str
    status: int
    body: TaskOut | None = None
    etag: str | None = Field(default=None, description="The task's ETag after the command.")
    error: ErrorBody | None = None
    replayed: Literal[True] | None = Field(
        default=None, description="Present when the uuid had run before: its first result."
    )


class BatchResult(BaseModel):
    """One result per command, in order, and the ids the batch's temp_ids stand for."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {"uuid": "5b0c1e4e-create", "status": 201, "body": TASK, "etag": '"1"'},
                        {
                            "uuid": "5b0c1e4e-patch",
                            "status": 200,
                            "body": {**TASK, "done": True},
                            "etag": '"2"',
                        },
                    ],
                    "temp_id_mapping": {"new-1": 42},
                }
            ]
        }
    )

    results: list[CommandResult]
    temp_id_mapping: dict[str, int]
