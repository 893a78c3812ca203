"""bench/ab.py reads back the lines bench/load.py prints: the two must agree."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import ab
import load


def s4_result(rps: float, p99_ms: float) -> load.Result:
    return load.Result(
        scenario="S4_get_512conn",
        rps=rps,
        p50_ms=100.0,
        p99_ms=p99_ms,
        non2xx=0,
        errors=0,
        connections=512,
        server_cpu_us=388.0,
        database_cpu_us=4.0,
    )


def test_fairness_is_p99_over_the_mean_littles_law_gives() -> None:
    result = s4_result(rps=5120, p99_ms=120.0)  # 512 connections at 5,120/s: 100 ms each

    assert result.little_mean_ms == pytest.approx(100.0)
    assert result.fairness == pytest.approx(1.2)


def test_ab_reads_back_what_load_prints() -> None:
    line = load.result_line("quart-tasks", s4_result(rps=4814, p99_ms=128.3), rss_mib=98)

    parsed = ab.parse_line(line)

    assert parsed is not None
    scenario, figures = parsed
    assert scenario == "S4_get_512conn"
    assert (figures.rps, figures.p99_ms, figures.cpu_us) == (4814, 128.3, 388)
    assert figures.fairness == pytest.approx(1.21)


def test_a_line_from_a_load_py_before_cpu_and_fairness_reads_as_nan() -> None:
    parsed = ab.parse_line("quart-tasks  S1_get  rps=   4726 p50_ms=   13.2 p99_ms=   25.4")

    assert parsed is not None
    _, figures = parsed
    assert (figures.rps, figures.p99_ms) == (4726, 25.4)
    assert math.isnan(figures.cpu_us)
    assert math.isnan(figures.fairness)


def test_a_peer_line_is_not_read_as_quart_tasks() -> None:
    line = load.result_line("flask_seed", s4_result(rps=1632, p99_ms=368.3), rss_mib=63)

    assert ab.parse_line(line) is None
