"""`POST /api/tasks/batch`: commands in order, idempotent by uuid, temp ids, atomic or not."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import update

from quart_tasks.idempotency.models import IdempotencyKey
from quart_tasks.services import services_of
from quart_tasks.storage.base import utcnow
from quart_tasks.tasks.batch.schemas import BatchResult
from quart_tasks.tasks.log import reads
from tests.helpers.apps import bearer, position_events
from tests.helpers.support import Client

BATCH = "/api/tasks/batch"
CountTasks = Callable[[], Awaitable[int]]


def create(uuid: str, title: str, temp_id: str | None = None, **args: Any) -> dict[str, Any]:
    command = {"type": "create", "uuid": uuid, "args": {"title": title, **args}}
    return {**command, "temp_id": temp_id} if temp_id else command


def patch(uuid: str, task_id: int | str, **args: Any) -> dict[str, Any]:
    return {"type": "patch", "uuid": uuid, "id": task_id, "args": args}


async def post_batch(
    client: Client, auth: dict[str, str], commands: list[dict[str, Any]], **options: Any
) -> dict[str, Any]:
    response = await client.post(BATCH, json={"commands": commands, **options}, headers=auth)
    assert response.status_code == 200, await response.get_data()
    body: dict[str, Any] = await response.get_json()
    BatchResult.model_validate(body)  # the answer is what the OpenAPI document says
    return body


async def titles(client: Client, auth: dict[str, str]) -> list[str]:
    response = await client.get("/api/tasks", query_string={"sort": "id_asc"}, headers=auth)
    return [task["title"] for task in (await response.get_json())["items"]]


async def test_commands_run_in_order_and_temp_ids_stand_for_new_tasks(
    client: Client, auth: dict[str, str]
) -> None:
    body = await post_batch(
        client,
        auth,
        [
            create("u1", "first", "a"),
            create("u2", "second", "b"),
            patch("u3", "a", done=True),
            {"type": "replace", "uuid": "u4", "id": "b", "args": {"title": "2nd", "done": False}},
            create("u5", "third"),
            {"type": "delete", "uuid": "u6", "id": "b"},
        ],
    )

    results = body["results"]
    assert [r["uuid"] for r in results] == ["u1", "u2", "u3", "u4", "u5", "u6"]
    assert [r["status"] for r in results] == [201, 201, 200, 200, 201, 204]
    mapping = body["temp_id_mapping"]
    assert mapping == {"a": results[0]["body"]["id"], "b": results[1]["body"]["id"]}
    assert results[2]["body"]["id"] == mapping["a"]
    assert results[2]["body"]["done"] is True
    assert results[3]["body"]["title"] == "2nd"
    assert "body" not in results[5]
    assert "error" not in results[0]
    assert "replayed" not in results[0]
    current = await client.get(f"/api/tasks/{mapping['a']}", headers=auth)
    assert results[2]["etag"] == current.headers["ETag"]
    assert await current.get_json() == results[2]["body"]
    assert await titles(client, auth) == ["first", "third"]


@pytest.mark.parametrize(
    "commands",
    [
        # On PostgreSQL's fast path, creates alone are recorded by SQL of their own.
        [create("c1", "one", "t"), create("c2", "two")],
        [create("c1", "one", "t"), patch("c2", "t", title="one, renamed")],
    ],
    ids=["creates only", "create and patch"],
)
async def test_a_batch_sent_again_is_replayed_and_applies_nothing_twice(
    client: Client, auth: dict[str, str], count_tasks: CountTasks, commands: list[dict[str, Any]]
) -> None:
    # The caller's session checked and remembered first: a request that checks it opens
    # its transaction, and a batch of creates then goes the general way, not alone.
    assert (await client.get("/api/users/me", headers=auth)).status_code == 200
    first = await post_batch(client, auth, commands)

    again = await post_batch(client, auth, commands)

    assert await count_tasks() == sum(command["type"] == "create" for command in commands)
    assert again["temp_id_mapping"] == first["temp_id_mapping"]
    for before, replay in zip(first["results"], again["results"], strict=True):
        assert replay == {**before, "replayed": True}


async def test_a_replayed_create_and_new_commands_mix_in_one_batch(
    client: Client, auth: dict[str, str]
) -> None:
    first = await post_batch(client, auth, [create("m1", "kept", "t")])

    mixed = await post_batch(client, auth, [create("m1", "kept", "t"), patch("m2", "t", done=True)])

    task_id = first["results"][0]["body"]["id"]
    assert mixed["results"][0]["replayed"] is True
    assert mixed["results"][1]["status"] == 200
    assert mixed["results"][1]["body"]["id"] == task_id
    assert mixed["temp_id_mapping"] == {"t": task_id}


async def test_a_uuid_reused_for_another_command_fails_that_command_only(
    client: Client, auth: dict[str, str]
) -> None:
    await post_batch(client, auth, [create("same", "original")])

    body = await post_batch(client, auth, [create("same", "different"), create("new", "fresh")])

    reused, fresh = body["results"]
    assert reused["status"] == 422
    assert reused["error"]["code"] == "idempotency_key_reused"
    assert fresh["status"] == 201
    assert await titles(client, auth) == ["original", "fresh"]


async def test_without_atomic_a_failed_command_leaves_the_others_applied(
    client: Client, auth: dict[str, str]
) -> None:
    made = await post_batch(client, auth, [create("x1", "target")])
    task_id = made["results"][0]["body"]["id"]

    body = await post_batch(
        client,
        auth,
        [
            create("x2", "before"),
            patch("x3", 999_999, title="nobody"),
            {**patch("x4", task_id, title="guarded"), "if_match": '"41"'},
            create("x5", "", "bad"),  # an empty title: the create route's 400
            patch("x6", "bad", done=True),
            create("x7", "after"),
        ],
    )

    statuses = [(r["status"], r.get("error", {}).get("code")) for r in body["results"]]
    assert statuses == [
        (201, None),
        (404, "not_found"),
        (412, "precondition_failed"),
        (400, "validation_error"),
        (424, "not_applied"),
        (201, None),
    ]
    assert body["results"][3]["error"]["details"][0]["loc"] == ["title"]
    assert body["temp_id_mapping"] == {}
    assert await titles(client, auth) == ["target", "before", "after"]


async def test_a_failed_command_records_nothing_so_its_retry_runs_afresh(
    client: Client, auth: dict[str, str]
) -> None:
    made = await post_batch(client, auth, [create("r1", "task")])
    task_id = made["results"][0]["body"]["id"]
    guarded = {**patch("r2", task_id, title="changed"), "if_match": '"2"'}

    failed = await post_batch(client, auth, [guarded])
    await client.patch(f"/api/tasks/{task_id}", json={"done": True}, headers=auth)  # version 2
    retried = await post_batch(client, auth, [guarded])

    assert failed["results"][0]["status"] == 412
    assert retried["results"][0]["status"] == 200
    assert "replayed" not in retried["results"][0]
    assert retried["results"][0]["body"]["title"] == "changed"


async def test_an_atomic_batch_with_a_failure_applies_nothing(
    client: Client, auth: dict[str, str], count_tasks: CountTasks
) -> None:
    made = await post_batch(client, auth, [create("a0", "untouched")])
    task_id = made["results"][0]["body"]["id"]

    body = await post_batch(
        client,
        auth,
        [
            create("a1", "new", "n"),
            patch("a2", task_id, title="changed"),
            {"type": "delete", "uuid": "a3", "id": 999_999},
            create("a4", "later"),
        ],
        atomic=True,
    )

    statuses = [(r["status"], r["error"]["code"]) for r in body["results"]]
    assert statuses == [
        (424, "not_applied"),
        (424, "not_applied"),
        (404, "not_found"),
        (424, "not_applied"),
    ]
    assert body["temp_id_mapping"] == {}
    assert await count_tasks() == 1
    assert await titles(client, auth) == ["untouched"]
    retry = await post_batch(client, auth, [create("a1", "new", "n")], atomic=True)
    assert "replayed" not in retry["results"][0]  # the rolled-back command recorded nothing


async def test_an_atomic_batch_that_succeeds_applies_everything(
    client: Client, auth: dict[str, str]
) -> None:
    body = await post_batch(
        client, auth, [create("s1", "a", "t"), patch("s2", "t", done=True)], atomic=True
    )

    assert [r["status"] for r in body["results"]] == [201, 200]
    assert await titles(client, auth) == ["a"]


async def test_commands_reach_only_the_callers_tasks(
    client: Client, auth: dict[str, str], make_user: Any
) -> None:
    bob = bearer(await make_user("bob"))
    bobs = await post_batch(client, bob, [create("b1", "bob's")])
    task_id = bobs["results"][0]["body"]["id"]

    body = await post_batch(
        client,
        auth,
        [patch("p1", task_id, title="mine now"), {"type": "delete", "uuid": "p2", "id": task_id}],
    )

    assert [r["status"] for r in body["results"]] == [404, 404]
    assert await titles(client, bob) == ["bob's"]


async def test_a_batchs_events_follow_its_commands_in_order(
    client: Client, app: Quart, auth: dict[str, str]
) -> None:
    await post_batch(
        client,
        auth,
        [
            create("e1", "a", "a"),
            patch("e2", "a", done=True),
            create("e3", "b", "b"),
            create("e4", "c"),
            {"type": "delete", "uuid": "e5", "id": "a"},
        ],
    )
    await position_events(app)

    database = services_of(app).database
    assert database.sessionmaker is not None
    async with database.sessionmaker() as session:
        page = await reads.read_after(session, 0, owner_id=None, limit=100)
    assert [event.type for event in page.events] == [
        "task.created",
        "task.updated",
        "task.created",
        "task.created",
        "task.deleted",
    ]
    positions = [event.position for event in page.events]
    assert positions == sorted(positions)


async def test_the_same_batch_sent_twice_at_once_applies_once(
    client: Client, auth: dict[str, str], count_tasks: CountTasks
) -> None:
    commands = [create(f"c{n}", f"task {n}") for n in range(20)]
    assert (await client.get("/api/users/me", headers=auth)).status_code == 200  # as above

    first, second = await asyncio.gather(
        post_batch(client, auth, commands), post_batch(client, auth, commands)
    )

    assert await count_tasks() == 20
    ids = [[r["body"]["id"] for r in body["results"]] for body in (first, second)]
    assert ids[0] == ids[1]


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({"commands": [{"type": "archive", "uuid": "u", "id": 1}]}, "commands.0.type"),
        ({"commands": [create(f"u{n}", "t") for n in range(101)]}, "commands"),
        (
            {"commands": [patch("u1", "later", done=True), create("u2", "t", "later")]},
            "commands[0].id",
        ),
        ({"commands": [create("u1", "a"), create("u1", "b")]}, "commands[1].uuid"),
        ({"commands": [create("u1", "a", "t"), create("u2", "b", "t")]}, "commands[1].temp_id"),
        ({"commands": [{**patch("u1", 1, done=True), "temp_id": "t"}]}, "temp_id is only"),
        ({"commands": [{"type": "patch", "uuid": "u1", "args": {}}]}, "needs an id"),
        ({"commands": [{"type": "create", "uuid": "u1"}]}, "needs args"),
        ({"commands": [{**create("u1", "a"), "if_match": "*"}]}, "no id or if_match"),
        ({"commands": [create("", "a")]}, "commands.0.uuid"),
        ({"commands": [create("u1", "a")], "extra": 1}, "extra"),
        ({"commands": "all of them"}, "commands"),
    ],
)
async def test_a_malformed_batch_is_refused_whole_and_writes_nothing(
    client: Client,
    auth: dict[str, str],
    count_tasks: CountTasks,
    batch: dict[str, Any],
    message: str,
) -> None:
    response = await client.post(BATCH, json=batch, headers=auth)

    assert response.status_code == 400
    error = (await response.get_json())["error"]
    assert error["code"] == "validation_error"
    assert message in error["message"]
    assert await count_tasks() == 0


async def test_a_batch_over_the_body_limit_is_refused(
    client: Client, app: Quart, auth: dict[str, str]
) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    batch = {"commands": [create("u", "t", note="x" * limit)]}

    response = await client.post(BATCH, json=batch, headers=auth)

    assert response.status_code == 413
    assert (await response.get_json())["error"]["code"] == "payload_too_large"


async def test_an_empty_batch_answers_no_results(client: Client, auth: dict[str, str]) -> None:
    assert await post_batch(client, auth, []) == {"results": [], "temp_id_mapping": {}}


async def test_an_expired_uuid_runs_again(
    client: Client, app: Quart, auth: dict[str, str], count_tasks: CountTasks
) -> None:
    commands = [create("old", "first time")]
    await post_batch(client, auth, commands)
    database = services_of(app).database
    assert database.sessionmaker is not None
    async with database.sessionmaker() as session, session.begin():
        await session.execute(
            update(IdempotencyKey).values(expires_at=utcnow() - timedelta(seconds=1))
        )

    again = await post_batch(client, auth, commands)
    replayed = await post_batch(client, auth, commands)

    assert again["results"][0]["status"] == 201
    assert "replayed" not in again["results"][0]
    assert replayed["results"][0]["replayed"] is True
    assert await count_tasks() == 2
