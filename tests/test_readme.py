"""The README's curl walkthrough runs verbatim against a real server."""

import os
import re
import shutil
import subprocess

import pytest

from tests.helpers.servers import CHECKOUT
from tests.helpers.support import require

pytestmark = pytest.mark.slow


def walkthrough() -> str:
    readme = (CHECKOUT / "README.md").read_text()
    match = re.search(r"<!-- walkthrough -->\n```sh\n(.*?)```", readme, re.S)
    assert match, "the README has no walkthrough block"
    return match.group(1)


def test_the_walkthrough_runs_verbatim(live_server: str) -> None:
    require(shutil.which("curl") is not None, "curl is not installed")
    script = walkthrough()
    assert script.startswith("API=${API:-http://127.0.0.1:8000}\n")

    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={"PATH": os.environ["PATH"], "API": live_server},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert "HTTP/1.1 201" in output
    assert re.search(r"(?i)^location: /api/tasks/\d+", output, re.M)
    assert '"title":"Write docs"' in output
    assert '"done":true' in output
    assert "HTTP/1.1 204" in output
    assert output.rstrip().endswith('{"error":{"code":"not_found","message":"Task not found"}}')
