"""Migrations run on the app's own async engine and metadata."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from sqlalchemy.engine import Connection

from quart_tasks.config import load_config
from quart_tasks.models import Base, compared_on
from quart_tasks.storage.base import UTCDateTime
from quart_tasks.storage.engine import create_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    """`-x database_url=...` or `sqlalchemy.url` when given, the app's DATABASE_URL otherwise."""
    return (
        context.get_x_argument(as_dictionary=True).get("database_url")
        or config.get_main_option("sqlalchemy.url")
        or load_config().DATABASE_URL
    )


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Write the app's column types as the plain SQLAlchemy types they store."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def include_object(item: Any, name: Any, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Compare only what this database is meant to have and can tell (see `compared_on`)."""
    return compared_on(item, reflected, context.get_context().dialect.name)


def configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        render_item=render_item,
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        include_object=include_object,
        literal_binds=connection is None,
    )


def run_migrations(connection: Connection) -> None:
    configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    settings = load_config().as_mapping()
    settings["DATABASE_URL"] = database_url()
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    configure(url=database_url())
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
    else:
        asyncio.run(run_online())
