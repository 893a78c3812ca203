"""JSON log lines: the time in UTC to the millisecond, the extra fields, any value."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from quart_tasks.logs import LOGGER_NAME, JSONFormatter, utc_time


def json_line(**extra: object) -> dict[str, object]:
    record = logging.makeLogRecord({"name": f"{LOGGER_NAME}.test", "msg": "a line", **extra})
    line: dict[str, object] = json.loads(JSONFormatter().format(record))
    return line


def test_a_json_line_says_when_in_utc_to_the_millisecond() -> None:
    moments = [1_764_603_486.0614, 1_764_603_486.9996, 1_764_603_487.0004, 0.5]
    for created in moments:  # two in one second: the second's text is reused
        record = logging.makeLogRecord({"msg": "a line"})
        record.created, record.msecs = created, int((created - int(created)) * 1000)
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert utc_time(record) == expected.replace("+00:00", "Z")


def test_a_json_line_carries_the_extra_fields_and_any_text() -> None:
    line = json_line(request_id="r-1", title="déjà vu ✓", status=200, skipped=None)
    assert line["message"] == "a line"
    assert (line["request_id"], line["title"], line["status"]) == ("r-1", "déjà vu ✓", 200)
    assert "skipped" not in line


def test_a_json_line_takes_any_value() -> None:
    assert json_line(big=2**70)["big"] == 2**70  # past orjson's 64 bits
    assert str(json_line(thing=object())["thing"]).startswith("<object object")
