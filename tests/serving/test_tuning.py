"""A serving worker tunes its process; building an app leaves the process alone."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from quart_tasks.serving.tuning import ProcessTuning
from tests.helpers.apps import serving, settings_for_test


@pytest.fixture
def process_restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    srcfile = logging._srcfile
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    logging._srcfile = srcfile
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = True


@pytest.mark.usefixtures("process_restored")
def test_a_worker_raises_the_young_threshold_and_freezes_what_loading_made() -> None:
    gc.unfreeze()
    ProcessTuning(gc_gen0_threshold=50_000).apply()

    assert gc.get_threshold()[0] == 50_000
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("process_restored")
def test_zero_leaves_the_collector_alone() -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    ProcessTuning(gc_gen0_threshold=0).apply()

    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("process_restored")
def test_a_worker_spares_log_records_the_lookups_no_line_shows() -> None:
    ProcessTuning().apply()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[assignment, method-assign]
    logger = logging.getLogger("quart_tasks.test")
    logger.addHandler(handler)
    try:
        logger.warning("a line")
    finally:
        logger.removeHandler(handler)

    [record] = records
    assert (record.funcName, record.lineno) == ("(unknown function)", 0)
    assert record.thread is None
    assert record.process is None


@pytest.mark.usefixtures("process_restored")
async def test_serving_an_app_leaves_the_process_as_it_was(tmp_path: Path) -> None:
    gc.unfreeze()
    threshold, srcfile = gc.get_threshold(), logging._srcfile
    async with serving(settings_for_test(tmp_path, GC_GEN0_THRESHOLD=50_000)):
        during = gc.get_threshold(), gc.get_freeze_count(), logging._srcfile

    assert during == (threshold, 0, srcfile)
