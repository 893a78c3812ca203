"""`/docs` renders Swagger UI in a real browser with every host but the server unreachable."""

import re
import shutil
import subprocess
import tempfile

import pytest

from tests.helpers.support import require

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def render(url: str) -> str:
    """The DOM of `url` after its scripts ran, with DNS answering for no other host."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--virtual-time-budget=15000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=True,
        )
    return result.stdout


def test_swagger_ui_lists_every_operation_offline(live_server: str) -> None:
    require(CHROMIUM is not None, "Chromium is not installed (apt-get install chromium)")

    dom = render(f"{live_server}/docs")

    operations = set(re.findall(r'opblock-summary-method">(\w+)</span>.*?data-path="([^"]+)"', dom))
    assert operations == {
        ("POST", "/api/login"),
        ("POST", "/api/token/refresh"),
        ("POST", "/api/logout"),
        ("POST", "/api/users"),
        ("GET", "/api/users"),
        ("GET", "/api/users/me"),
        ("GET", "/api/tasks"),
        ("POST", "/api/tasks"),
        ("GET", "/api/tasks/sync"),
        ("POST", "/api/tasks/batch"),
        ("GET", "/api/tasks/{task_id}"),
        ("PUT", "/api/tasks/{task_id}"),
        ("PATCH", "/api/tasks/{task_id}"),
        ("DELETE", "/api/tasks/{task_id}"),
        ("GET", "/api/tasks/events"),
        ("GET", "/api/tasks/ws"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
    }
