"""A serving process collects young objects less often and freezes what start-up made."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import serving, settings_for_test


@pytest.fixture
def collector_restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector_restored")
async def test_serving_raises_the_young_threshold_and_freezes_start_up(tmp_path: Path) -> None:
    gc.unfreeze()
    async with serving(settings_for_test(tmp_path, GC_GEN0_THRESHOLD=50_000)):
        threshold, frozen = gc.get_threshold(), gc.get_freeze_count()

    assert threshold[0] == 50_000
    assert frozen > 0


@pytest.mark.usefixtures("collector_restored")
async def test_zero_leaves_the_collector_alone(tmp_path: Path) -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    async with serving(settings_for_test(tmp_path, GC_GEN0_THRESHOLD=0)):
        threshold, frozen = gc.get_threshold(), gc.get_freeze_count()

    assert threshold == before
    assert frozen == 0
