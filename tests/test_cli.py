"""`quart-tasks`: migrate, create-user, and a plain refusal of an unsafe configuration."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from quart_tasks.cli import hypercorn_config
from quart_tasks.models import User
from tests.helpers.servers import CHECKOUT, fresh_database_url, server_environment

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_production_with_default_secrets_refuses_to_start(tmp_path: Path, command: str) -> None:
    env = server_environment(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    env.update(APP_ENV="production", SECRET_KEY="short", API_PASS="admin")

    result = run_cli(command, env=env, cwd=tmp_path)

    assert result.returncode != 0
    assert "refusing to start with APP_ENV=production" in result.stderr
    assert "set SECRET_KEY" in result.stderr
    assert "set API_PASS" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quart_tasks", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_migrate_creates_the_admin_once_and_create_user_adds_accounts(tmp_path: Path) -> None:
    with fresh_database_url(tmp_path) as url:
        env = server_environment(url)

        first = run_cli("migrate", env=env, cwd=tmp_path)
        again = run_cli("migrate", env=env, cwd=tmp_path)
        by_stdin = run_cli(
            "create-user",
            "Carol",
            "--password-stdin",
            env=env,
            cwd=tmp_path,
            stdin="carols password\n",
        )
        by_env = run_cli(
            "create-user",
            "root2",
            "--admin",
            env={**env, "QUART_TASKS_PASSWORD": "roots password"},
            cwd=tmp_path,
        )
        taken = run_cli(
            "create-user",
            "carol",
            "--password-stdin",
            env=env,
            cwd=tmp_path,
            stdin="another password\n",
        )
        short = run_cli(
            "create-user", "dave", "--password-stdin", env=env, cwd=tmp_path, stdin="short\n"
        )
        bad_name = run_cli(
            "create-user",
            "no spaces",
            "--password-stdin",
            env=env,
            cwd=tmp_path,
            stdin="long enough\n",
        )

        users = asyncio.run(stored_users(url))

    assert "created the admin account 'admin'" in first.stdout
    assert "created the admin account" not in again.stdout
    assert (by_stdin.returncode, by_env.returncode) == (0, 0), by_stdin.stderr + by_env.stderr
    assert taken.returncode != 0
    assert "taken" in taken.stderr
    assert short.returncode != 0
    assert "8 to 1024 characters" in short.stderr
    assert bad_name.returncode != 0
    assert "USERNAME" in bad_name.stderr
    assert users == {("admin", "admin"), ("Carol", "user"), ("root2", "admin")}


async def stored_users(url: str) -> set[tuple[str, str]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(select(User.username, User.role))
            return {(name, role) for name, role in rows}
    finally:
        await engine.dispose()


def test_the_example_hypercorn_file_is_read_and_command_line_options_win() -> None:
    config = hypercorn_config(CHECKOUT / "docs" / "hypercorn.toml")
    defaults = hypercorn_config(None)

    assert (config.bind, config.workers, config.graceful_timeout) == (["0.0.0.0:8000"], 2, 30)
    assert config.include_server_header is False
    assert config.application_path == "quart_tasks:create_app()"
    assert (defaults.bind, defaults.workers, defaults.keep_alive_timeout) == (
        ["127.0.0.1:8000"],
        1,
        75,
    )
