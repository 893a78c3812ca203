"""`quart-tasks`: refuses a configuration it cannot run with, plainly."""

import subprocess
import sys
from pathlib import Path

import pytest

from .live import server_environment

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_production_with_default_secrets_refuses_to_start(tmp_path: Path, command: str) -> None:
    env = server_environment(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    env.update(APP_ENV="production", SECRET_KEY="short", API_PASS="admin")

    result = subprocess.run(
        [sys.executable, "-m", "quart_tasks", command],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "refusing to start with APP_ENV=production" in result.stderr
    assert "set SECRET_KEY" in result.stderr
    assert "set API_PASS" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()
