"""bench/chart.py draws the standing: a bar per server and scenario, heights in proportion."""

from __future__ import annotations

import math
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import chart

SVG = "{http://www.w3.org/2000/svg}"
PLOT_HEIGHT = chart.PANEL_HEIGHT - chart.MARGIN_TOP - chart.MARGIN_BOTTOM


def bars(document: str) -> dict[str, float]:
    """Each bar's height, by its tooltip ("server scenario: value")."""
    root = ElementTree.fromstring(document)
    found = {}
    for rect in root.iter(f"{SVG}rect"):
        title = rect.find(f"{SVG}title")
        if title is not None and title.text:
            found[title.text.split(":")[0]] = float(rect.attrib["height"])
    return found


def test_every_server_and_scenario_has_a_bar_of_its_value() -> None:
    series = [
        chart.Series("quart-tasks", rps=[4000, 1800], p99_ms=[25, 50]),
        chart.Series("Flask (gunicorn)", rps=[2000, 900], p99_ms=[50, 100]),
    ]
    document = chart.render_chart(["S1", "S2"], series, "caption & <more>")
    heights = bars(document)

    assert len(heights) == 8  # two servers, two scenarios, two panels
    assert heights["quart-tasks S1 requests/s"] == pytest.approx(
        2 * heights["Flask (gunicorn) S1 requests/s"], abs=0.1
    )
    assert heights["quart-tasks S2 requests/s"] == pytest.approx(
        2 * heights["Flask (gunicorn) S2 requests/s"], abs=0.1
    )
    # p99 on a log scale from 1 to 100 ms: 100 ms reaches the top, 50 ms log(50)/log(100) of it.
    assert heights["Flask (gunicorn) S2 p99 ms"] == pytest.approx(PLOT_HEIGHT, abs=0.1)
    assert heights["quart-tasks S2 p99 ms"] == pytest.approx(
        PLOT_HEIGHT * math.log10(50) / 2, abs=0.1
    )
    assert "caption &amp; &lt;more&gt;" in document


def test_the_scale_ends_on_a_round_number_above_the_tallest_bar() -> None:
    assert [chart.nice_ceiling(v) for v in (0, 3, 4716, 5000, 5001, 87)] == [
        1.0,
        5.0,
        5000.0,
        5000.0,
        10000.0,
        100.0,
    ]
