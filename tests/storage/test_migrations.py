"""Migrations own the schema: applied to an empty database they give exactly the models."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from quart_tasks.models import ORDERED_INDEXES, Base, compared_on
from quart_tasks.tasks.log import reads
from tests.helpers.servers import CHECKOUT, fresh_database_url


def alembic_config(url: str) -> Config:
    config = Config(str(CHECKOUT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    return config


def differences(url: str) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        def include_object(item: Any, _name: Any, _type: str, reflected: bool, _to: Any) -> bool:
            return compared_on(item, reflected, connection.dialect.name)

        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": include_object}
        )
        return list(compare_metadata(context, Base.metadata))

    return asyncio.run(_on_connection(url, compare))


def table_names(url: str) -> set[str]:
    return asyncio.run(_on_connection(url, lambda c: set(inspect(c).get_table_names())))


async def _on_connection(url: str, work: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


def test_upgrade_to_head_matches_the_models(tmp_path: Path) -> None:
    with fresh_database_url(tmp_path) as url:
        command.upgrade(alembic_config(url), "head")

        assert differences(url) == []


def test_the_all_owners_list_indexes_hold_done_descending(tmp_path: Path) -> None:
    """What the comparison cannot see on SQLite (see `compared_on`), read from the
    database itself: each index's columns and which of them descend."""
    with fresh_database_url(tmp_path) as url:
        command.upgrade(alembic_config(url), "head")
        found = asyncio.run(_on_connection(url, _ordered_index_columns))

    assert found == {
        "ix_tasks_done_desc_id": [("done", True), ("id", False)],
        "ix_tasks_done_desc_created_at_id": [("done", True), ("created_at", False), ("id", False)],
        "ix_tasks_done_desc_updated_at_id": [("done", True), ("updated_at", False), ("id", False)],
        "ix_tasks_done_desc_title_id": [("done", True), ("title", False), ("id", False)],
    }
    assert set(found) == ORDERED_INDEXES


def _ordered_index_columns(connection: Connection) -> dict[str, list[tuple[str, bool]]]:
    found = {}
    for name in ORDERED_INDEXES:
        if connection.dialect.name == "sqlite":
            listed = connection.exec_driver_sql(f"PRAGMA index_xinfo({name})").mappings()
            found[name] = [(row["name"], bool(row["desc"])) for row in listed if row["key"]]
        else:
            rows = connection.execute(
                text(
                    "SELECT a.attname, i.indoption[k.n] & 1 = 1 "
                    "FROM pg_index i CROSS JOIN generate_subscripts(i.indkey, 1) AS k(n) "
                    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k.n] "
                    "WHERE i.indexrelid = CAST(:name AS regclass) ORDER BY k.n"
                ),
                {"name": name},
            )
            found[name] = [(column, bool(descending)) for column, descending in rows]
    return found


def test_downgrade_to_base_removes_every_table(tmp_path: Path) -> None:
    with fresh_database_url(tmp_path) as url:
        config = alembic_config(url)
        command.upgrade(config, "head")
        command.downgrade(config, "base")

        assert table_names(url) == {"alembic_version"}


def test_tasks_from_before_users_are_given_to_the_bootstrap_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_USER", "boss")
    monkeypatch.setenv("API_PASS", "boss password")
    monkeypatch.setenv("ARGON2_MEMORY_KIB", "8")
    with fresh_database_url(tmp_path) as url:
        config = alembic_config(url)
        command.upgrade(config, "0001")
        asyncio.run(_on_connection(url, _insert_an_old_task))

        command.upgrade(config, "head")

        owners = asyncio.run(_on_connection(url, _task_owners))
    assert owners == [("an old task", "boss", "admin")]


def _insert_an_old_task(connection: Connection) -> None:
    now = datetime.now(UTC)
    stamp = now.replace(tzinfo=None) if connection.dialect.name == "sqlite" else now
    connection.execute(
        text(
            "INSERT INTO tasks (title, done, created_at, updated_at) "
            "VALUES ('an old task', false, :now, :now)"
        ),
        {"now": stamp},
    )
    connection.commit()


def _task_owners(connection: Connection) -> list[tuple[str, str, str]]:
    rows = connection.execute(
        text("SELECT t.title, u.username, u.role FROM tasks t JOIN users u ON u.id = t.owner_id")
    )
    return [tuple(row) for row in rows]


def test_task_counts_start_from_the_existing_tasks_and_follow_new_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARGON2_MEMORY_KIB", "8")
    with fresh_database_url(tmp_path) as url:
        config = alembic_config(url)
        command.upgrade(config, "0001")
        for _ in range(3):
            asyncio.run(_on_connection(url, _insert_an_old_task))
        command.upgrade(config, "head")
        assert asyncio.run(_on_connection(url, _counted_and_held)) == (3, 3)

        asyncio.run(_on_connection(url, _insert_and_delete))

        assert asyncio.run(_on_connection(url, _counted_and_held)) == (2, 2)


def _insert_and_delete(connection: Connection) -> None:
    """One task in, two out: 3 + 1 - 2."""
    connection.execute(
        text(
            "INSERT INTO tasks (owner_id, title, done, version, created_at, updated_at) "
            "SELECT min(id), 'a new task', false, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP "
            "FROM users"
        )
    )
    connection.execute(text("DELETE FROM tasks WHERE id IN (SELECT id FROM tasks LIMIT 2)"))
    connection.commit()


def _counted_and_held(connection: Connection) -> tuple[int, int]:
    counted = connection.execute(text("SELECT sum(total) FROM task_counts")).scalar()
    held = connection.execute(text("SELECT count(*) FROM tasks")).scalar()
    return int(counted or 0), int(held or 0)


def test_a_downgraded_database_upgrades_again(tmp_path: Path) -> None:
    with fresh_database_url(tmp_path) as url:
        config = alembic_config(url)
        command.upgrade(config, "head")
        command.downgrade(config, "0004")
        command.upgrade(config, "head")

        assert differences(url) == []


def test_migrations_make_the_count_triggers_the_models_make(tmp_path: Path) -> None:
    """Migration 0007 keeps its own copy of `tasks.store.counts`' trigger statements: the two
    must agree for as long as no later migration changes the triggers."""
    (tmp_path / "migrated").mkdir()
    (tmp_path / "created").mkdir()
    with (
        fresh_database_url(tmp_path / "migrated") as migrated,
        fresh_database_url(tmp_path / "created") as created,
    ):
        command.upgrade(alembic_config(migrated), "head")
        asyncio.run(_on_connection(created, _create_all))

        from_migrations = asyncio.run(_on_connection(migrated, _trigger_definitions))
        from_models = asyncio.run(_on_connection(created, _trigger_definitions))

    assert {name for name, _ in from_models} >= {
        "task_counts_added",
        "task_counts_removed",
        "task_counts_moved",
    }
    assert from_migrations == from_models


def _create_all(connection: Connection) -> None:
    Base.metadata.create_all(connection)
    connection.commit()


def _trigger_definitions(connection: Connection) -> list[tuple[str, str]]:
    """Every trigger (and, on PostgreSQL, trigger function) by name, whitespace folded."""
    if connection.dialect.name == "postgresql":
        query = (
            "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal "
            "UNION ALL SELECT p.proname, p.prosrc FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' AND p.prorettype = 'trigger'::regtype"
        )
    else:
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
    rows = connection.execute(text(query)).all()
    return sorted((name, " ".join(definition.split())) for name, definition in rows)


def test_events_logged_before_positions_are_older_than_the_log_on_postgresql(
    tmp_path: Path,
) -> None:
    """Ids given to clients before 0006 resume correctly (SQLite: the id is the position)
    or are older than the log, so the client gets `reset` (PostgreSQL)."""
    with fresh_database_url(tmp_path) as url:
        config = alembic_config(url)
        command.upgrade(config, "0005")
        asyncio.run(_on_connection(url, _log_three_old_events))
        command.upgrade(config, "head")
        oldest, newest, kept = asyncio.run(_bounds_and_events(url))

    if url.startswith("postgresql"):
        assert (oldest, newest, kept) == (5, 4, 0)
        assert oldest - 1 > 3, "a client resuming after the newest old id gets reset"
    else:
        assert (oldest, newest, kept) == (1, 3, 3)


def _log_three_old_events(connection: Connection) -> None:
    now = datetime.now(UTC)
    stamp = now.replace(tzinfo=None) if connection.dialect.name == "sqlite" else now
    for task_id in (1, 2, 3):
        connection.execute(
            text(
                "INSERT INTO task_events (type, task_id, owner_id, payload, created_at) "
                "VALUES ('task.deleted', :task_id, 1, '{}', :now)"
            ),
            {"task_id": task_id, "now": stamp},
        )
    connection.commit()


async def _bounds_and_events(url: str) -> tuple[int, int, int]:
    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine) as session:
            oldest, newest = await reads.bounds(session)
            kept = await session.scalar(text("SELECT count(*) FROM task_events"))
    finally:
        await engine.dispose()
    return oldest, newest, int(kept or 0)
