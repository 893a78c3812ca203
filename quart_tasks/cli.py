"""`quart-tasks`: serve the API under Hypercorn, and migrate its database."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
from hypercorn.config import Config as HypercornConfig
from hypercorn.run import run as run_hypercorn
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from .config import Config, ConfigError, load_config
from .database import create_engine
from .errors import APIError
from .users import queries
from .users.bootstrap import ensure_bootstrap_admin
from .users.models import Role
from .users.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, Passwords
from .users.schemas import Username

APPLICATION_PATH = "quart_tasks:create_app()"
PASSWORD_VARIABLE = "QUART_TASKS_PASSWORD"
T = TypeVar("T")


def alembic_config_path() -> Path:
    """`alembic.ini` of the working directory, else the one of this checkout."""
    checkout = Path(__file__).resolve().parent.parent
    for candidate in (Path.cwd() / "alembic.ini", checkout / "alembic.ini"):
        if candidate.is_file():
            return candidate
    raise click.ClickException("alembic.ini not found: run from the project's directory")


def checked_config() -> Config:
    try:
        return load_config()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@click.group()
def main() -> None:
    """quart-tasks: an async REST API for tasks."""


@main.command()
@click.option("--revision", default="head", show_default=True, help="Revision to upgrade to.")
def migrate(revision: str) -> None:
    """Upgrade the database named by DATABASE_URL to the latest schema.

    Then create the API_USER admin account if it does not exist.
    """
    from alembic import command
    from alembic.config import Config as AlembicConfig

    config = checked_config()
    command.upgrade(AlembicConfig(str(alembic_config_path())), revision)
    if asyncio.run(_with_engine(config, _bootstrap)):
        click.echo(f"created the admin account {config.API_USER!r}")


@main.command("create-user")
@click.argument("username")
@click.option("--admin", is_flag=True, help="Give the account the admin role.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help=f"Read the password from standard input (or set {PASSWORD_VARIABLE}).",
)
def create_user(username: str, admin: bool, password_stdin: bool) -> None:
    """Create a user account; prompts for its password."""
    config = checked_config()
    try:
        username = TypeAdapter(Username).validate_python(username)
    except ValidationError:
        message = "letters, digits, '.', '_' and '-', at most 64"
        raise click.BadParameter(message, param_hint="USERNAME") from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif os.environ.get(PASSWORD_VARIABLE):
        password = os.environ[PASSWORD_VARIABLE]
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise click.ClickException(
            f"the password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
    role: Role = "admin" if admin else "user"

    async def create(engine: AsyncEngine, hashes: Passwords) -> None:
        password_hash = await hashes.hash(password)
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            await queries.create_user(
                session, username=username, password_hash=password_hash, role=role
            )

    try:
        asyncio.run(_with_engine(config, create))
    except APIError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"created {role} {username!r}")


async def _bootstrap(engine: AsyncEngine, hashes: Passwords) -> bool:
    return await ensure_bootstrap_admin(engine, hashes, checked_config().as_mapping())


async def _with_engine(config: Config, work: Callable[[AsyncEngine, Passwords], Awaitable[T]]) -> T:
    engine = create_engine(config.as_mapping())
    hashes = Passwords(
        time_cost=config.ARGON2_TIME_COST,
        memory_kib=config.ARGON2_MEMORY_KIB,
        parallelism=config.ARGON2_PARALLELISM,
    )
    try:
        return await work(engine, hashes)
    finally:
        hashes.close()
        await engine.dispose()


@main.command()
@click.option("--bind", "-b", "binds", multiple=True, help="Address to listen on [127.0.0.1:8000].")
@click.option("--workers", "-w", type=click.IntRange(min=1), help="Worker processes [1].")
@click.option(
    "--config",
    "-c",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A Hypercorn TOML file; options given here win over it.",
)
def serve(binds: tuple[str, ...], workers: int | None, config_file: Path | None) -> None:
    """Serve the API with Hypercorn."""
    checked_config()
    config = HypercornConfig.from_toml(config_file) if config_file else HypercornConfig()
    if binds:
        config.bind = list(binds)
    elif config_file is None:
        config.bind = ["127.0.0.1:8000"]
    if workers is not None:
        config.workers = workers
    config.application_path = APPLICATION_PATH
    sys.exit(run_hypercorn(config))
