"""Log records skip the lookups no line shows (caller, thread, process): they cost every request."""

from __future__ import annotations

import logging

from quart_tasks.logs import LOGGER_NAME, configure_logging


def test_records_are_not_made_to_find_their_caller() -> None:
    configure_logging("INFO", "json")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(f"{LOGGER_NAME}.test")
    logger.addHandler(handler)
    try:
        logger.info("a line")
    finally:
        logger.removeHandler(handler)
    [record] = records
    assert (record.funcName, record.lineno) == ("(unknown function)", 0)
    assert record.thread is None
    assert record.process is None
