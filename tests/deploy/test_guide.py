"""docs/deployment.md and the files it installs from deploy/ agree with the app."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from dotenv import dotenv_values

from quart_tasks.cli import hypercorn_config
from quart_tasks.config import Config, ConfigError, ProductionConfig
from tests.helpers.servers import CHECKOUT
from tests.helpers.support import require

GUIDE = CHECKOUT / "docs" / "deployment.md"
DEPLOY = CHECKOUT / "deploy"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def guide_command(starts: str) -> str:
    """The guide's shell command that begins with `starts`, continuation lines included."""
    lines = GUIDE.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.lstrip().startswith(starts))
    command = [lines[first]]
    while command[-1].endswith("\\"):
        command.append(lines[first + len(command)])
    return "\n".join(command)


def unit_file() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "quart-tasks.service")
    return unit


def filled_settings(tmp_path: Path) -> Path:
    """deploy/quart-tasks.env filled in by the guide's own commands."""
    script = "\n".join(
        [
            "DB_PASSWORD=db-secret REDIS_PASSWORD=redis-secret",
            guide_command("SECRET_KEY=$("),
            guide_command("API_PASS=$("),
            guide_command('sed -e "s|{{SECRET_KEY}}'),
        ]
    ).replace("/etc/quart-tasks/env", str(tmp_path / "env"))
    subprocess.run(["bash", "-euc", script], cwd=CHECKOUT, check=True)
    return tmp_path / "env"


def test_the_guide_fills_in_every_placeholder_of_the_settings(tmp_path: Path) -> None:
    shipped = (DEPLOY / "quart-tasks.env").read_text()
    assert re.findall(r"{{\w+}}", shipped), "the settings file has no placeholder"

    filled = filled_settings(tmp_path).read_text()

    assert not re.findall(r"{{\w+}}", filled)
    settings = dotenv_values(tmp_path / "env")
    assert settings["DATABASE_URL"] == "postgresql+asyncpg://tasks:db-secret@10.0.0.5:6432/tasks"
    assert settings["REDIS_URL"] == "redis://:redis-secret@10.0.0.5:6379/0"


def test_the_filled_settings_start_in_production_and_name_only_settings(tmp_path: Path) -> None:
    settings = {
        name: value
        for name, value in dotenv_values(filled_settings(tmp_path)).items()
        if value is not None
    }

    assert set(settings) <= set(Config.model_fields), "a variable the app does not read"
    config = ProductionConfig(**settings)  # type: ignore[arg-type]
    assert config.DB_BEHIND_POOLER
    assert config.EVENTS_LISTEN_URL.endswith(":5432/tasks")


def test_the_settings_as_shipped_are_refused_in_production() -> None:
    settings = dotenv_values(DEPLOY / "quart-tasks.env")

    with pytest.raises(ConfigError, match="SECRET_KEY"):
        ProductionConfig(**settings)  # type: ignore[arg-type]


def test_the_guide_sets_hypercorns_workers_to_the_cores(tmp_path: Path) -> None:
    command = guide_command('sed "s/^workers = .*/').replace(
        "/etc/quart-tasks/hypercorn.toml", str(tmp_path / "hypercorn.toml")
    )

    subprocess.run(["bash", "-euc", command], cwd=CHECKOUT, check=True)

    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout
    assert hypercorn_config(tmp_path / "hypercorn.toml").workers == int(nproc)


def test_the_systemd_unit_is_valid(tmp_path: Path) -> None:
    require(
        SYSTEMD_ANALYZE is not None, "systemd-analyze is not installed (apt-get install systemd)"
    )
    assert SYSTEMD_ANALYZE is not None
    # As installed, but with this checkout and virtualenv for /opt/quart-tasks, so that
    # systemd-analyze finds the program it names.
    unit = (DEPLOY / "quart-tasks.service").read_text()
    unit = unit.replace("/opt/quart-tasks/.venv", sys.prefix).replace(
        "/opt/quart-tasks", str(CHECKOUT)
    )
    (tmp_path / "quart-tasks.service").write_text(unit)

    checked = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(tmp_path / "quart-tasks.service")],
        capture_output=True,
        text=True,
    )

    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == "", "systemd-analyze complained"


def test_the_guide_has_systemd_bring_pgbouncer_back_when_it_exits() -> None:
    drop_in = configparser.ConfigParser(interpolation=None)
    drop_in.read(DEPLOY / "pgbouncer-restart.conf")

    assert drop_in["Service"]["Restart"] == "on-failure"
    installed = guide_command("cp deploy/pgbouncer-restart.conf").split()[-1]
    assert installed.startswith("/etc/systemd/system/pgbouncer.service.d/")
    assert installed.endswith(".conf")
    assert guide_command("systemctl daemon-reload")


def test_the_unit_reloads_with_sighup_and_outwaits_the_graceful_timeout() -> None:
    service = unit_file()["Service"]
    hypercorn = tomllib.loads((CHECKOUT / "docs" / "hypercorn.toml").read_text())

    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert int(service["TimeoutStopSec"]) > hypercorn["graceful_timeout"]
    assert service["ExecStart"].endswith("serve --config /etc/quart-tasks/hypercorn.toml")
