"""The README's curl walkthrough runs verbatim against a real server."""

import json
import os
import re
import shutil
import subprocess
from typing import Any

import pytest

from tests.helpers.servers import CHECKOUT
from tests.helpers.support import require

pytestmark = pytest.mark.slow


def walkthrough(name: str = "walkthrough") -> str:
    readme = (CHECKOUT / "README.md").read_text()
    match = re.search(rf"<!-- {name} -->\n```sh\n(.*?)```", readme, re.S)
    assert match, f"the README has no {name} block"
    return match.group(1)


def run_verbatim(script: str, api: str) -> str:
    require(shutil.which("curl") is not None, "curl is not installed")
    assert script.startswith("API=${API:-http://127.0.0.1:8000}\n")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={"PATH": os.environ["PATH"], "API": api},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def json_documents(output: str) -> list[Any]:
    """The JSON bodies curl printed one after another."""
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(output):
        document, at = decoder.raw_decode(output, at)
        documents.append(document)
        while at < len(output) and output[at].isspace():
            at += 1
    return documents


def test_the_walkthrough_runs_verbatim(live_server: str) -> None:
    output = run_verbatim(walkthrough(), live_server)

    assert "HTTP/1.1 201" in output
    assert re.search(r"(?i)^location: /api/tasks/\d+", output, re.M)
    assert '"title":"Write docs"' in output
    assert '"done":true' in output
    assert "HTTP/1.1 204" in output
    assert output.rstrip().endswith('{"error":{"code":"not_found","message":"Task not found"}}')


def test_the_sync_walkthrough_runs_verbatim(live_server: str) -> None:
    batch, replayed, sync = json_documents(
        run_verbatim(walkthrough("sync walkthrough"), live_server)
    )

    assert [result["status"] for result in batch["results"]] == [201, 201, 200]
    milk = batch["temp_id_mapping"]["milk"]
    assert batch["results"][0]["body"]["id"] == milk
    patched = batch["results"][2]["body"]
    assert (patched["id"], patched["title"], patched["done"]) == (milk, "Buy milk", True)
    assert replayed["results"] == [{**result, "replayed": True} for result in batch["results"]]
    assert sync["full_sync"] is False
    changed = {task["id"]: task for task in sync["tasks"]}
    assert changed[milk]["done"] is True
    assert {task["title"] for task in sync["tasks"]} >= {"Buy milk", "Call Ann"}
