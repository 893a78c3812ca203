"""Migrations own the schema: applied to an empty database they give exactly the models."""

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from quart_tasks.models import Base

from .live import CHECKOUT, fresh_database_url


def alembic_config(url: str) -> Config:
    config = Config(str(CHECKOUT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    return config


def differences(url: str) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
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


def test_downgrade_to_base_removes_every_table(tmp_path: Path) -> None:
    with fresh_database_url(tmp_path) as url:
        config = alembic_config(url)
        command.upgrade(config, "head")
        command.downgrade(config, "base")

        assert table_names(url) == {"alembic_version"}
