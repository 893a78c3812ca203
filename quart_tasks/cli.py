"""`quart-tasks`: serve the API under Hypercorn, and migrate its database."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from hypercorn.config import Config as HypercornConfig
from hypercorn.run import run as run_hypercorn

from .config import ConfigError, load_config

APPLICATION_PATH = "quart_tasks:create_app()"


def alembic_config_path() -> Path:
    """`alembic.ini` of the working directory, else the one of this checkout."""
    checkout = Path(__file__).resolve().parent.parent
    for candidate in (Path.cwd() / "alembic.ini", checkout / "alembic.ini"):
        if candidate.is_file():
            return candidate
    raise click.ClickException("alembic.ini not found: run from the project's directory")


def check_config() -> None:
    try:
        load_config()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@click.group()
def main() -> None:
    """quart-tasks: an async REST API for tasks."""


@main.command()
@click.option("--revision", default="head", show_default=True, help="Revision to upgrade to.")
def migrate(revision: str) -> None:
    """Upgrade the database named by DATABASE_URL to the latest schema."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    check_config()
    command.upgrade(AlembicConfig(str(alembic_config_path())), revision)


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
    check_config()
    config = HypercornConfig.from_toml(config_file) if config_file else HypercornConfig()
    if binds:
        config.bind = list(binds)
    elif config_file is None:
        config.bind = ["127.0.0.1:8000"]
    if workers is not None:
        config.workers = workers
    config.application_path = APPLICATION_PATH
    sys.exit(run_hypercorn(config))
