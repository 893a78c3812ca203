"""`quart-tasks`: serve the API under Hypercorn, and migrate its database."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
from hypercorn.config import Config as HypercornConfig
from hypercorn.run import run as run_hypercorn
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from quart_tasks.auth.models import Role
from quart_tasks.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, Passwords
from quart_tasks.config import Config, ConfigError, load_config
from quart_tasks.logs import LOGGER_NAME, configure_logging
from quart_tasks.serving.supervisor import Supervisor
from quart_tasks.serving.tuning import ProcessTuning
from quart_tasks.storage.engine import create_engine
from quart_tasks.storage.unit_of_work import unit_of_work
from quart_tasks.users import queries
from quart_tasks.users.bootstrap import ensure_bootstrap_admin
from quart_tasks.users.schemas import Username
from quart_tasks.web.errors import APIError

APPLICATION_PATH = "quart_tasks:create_app()"
SERVER_LOGGER = f"{LOGGER_NAME}.server"
SERVE_DEFAULTS = {
    "bind": ["127.0.0.1:8000"],
    "workers": 1,
    "graceful_timeout": 30,
    "keep_alive_timeout": 75,
    "include_server_header": False,
    "accesslog": None,
    "backlog": 1024,
}
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
        async with (
            async_sessionmaker(engine, expire_on_commit=False)() as session,
            unit_of_work(session) as work,
        ):
            await queries.create_user(
                work.session, username=username, password_hash=password_hash, role=role
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
@click.option(
    "--certfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A PEM certificate (chain): serve HTTPS, HTTP/2 by ALPN. Needs --keyfile.",
)
@click.option(
    "--keyfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The certificate's PEM private key.",
)
def serve(
    binds: tuple[str, ...],
    workers: int | None,
    config_file: Path | None,
    certfile: Path | None,
    keyfile: Path | None,
) -> None:
    """Serve the API with Hypercorn.

    Defaults: 127.0.0.1:8000, one worker, 30 s graceful shutdown, keep-alive
    longer than a load balancer's idle timeout, no `Server` header, no access
    log of Hypercorn's own (the app logs every request). A worker that dies is
    replaced while the others keep serving. HTTP/2 is served over TLS (ALPN, with
    --certfile and --keyfile) and in cleartext to clients that start with it.
    """
    settings = checked_config()
    configure_logging(settings.LOG_LEVEL, settings.as_mapping()["LOG_FORMAT"])
    config = hypercorn_config(config_file)
    if binds:
        config.bind = list(binds)
    if workers is not None:
        config.workers = workers
    if (certfile is None) != (keyfile is None):
        raise click.UsageError("--certfile and --keyfile go together")
    if certfile is not None and keyfile is not None:
        config.certfile, config.keyfile = str(certfile), str(keyfile)
    if config.use_reloader:  # development only: Hypercorn's master watches the files
        sys.exit(run_hypercorn(config))
    on_worker_exit = None
    if settings.METRICS_ENABLED and config.workers > 1:
        share_metrics_between_workers()
        on_worker_exit = forget_dead_worker_metrics
    try:
        tuning = ProcessTuning(gc_gen0_threshold=settings.GC_GEN0_THRESHOLD)
        supervisor = Supervisor(config, tuning=tuning, on_worker_exit=on_worker_exit)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    sys.exit(supervisor.run())


def hypercorn_config(config_file: Path | None) -> HypercornConfig:
    config = HypercornConfig.from_mapping(SERVE_DEFAULTS)
    if config_file is not None:
        overrides = HypercornConfig.from_toml(config_file)
        for key in tomllib.loads(config_file.read_text()):
            setattr(config, key, getattr(overrides, key))
    config.application_path = APPLICATION_PATH
    config.errorlog = logging.getLogger(SERVER_LOGGER)
    return config


def forget_dead_worker_metrics(pid: int) -> None:
    """Drop a dead worker's live gauges (in-flight requests); its counters still count."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def share_metrics_between_workers() -> None:
    """Point every worker at one fresh directory: prometheus_client's multiprocess mode."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
    else:
        directory = tempfile.mkdtemp(prefix="quart-tasks-metrics-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
