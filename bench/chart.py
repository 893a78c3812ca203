"""The standing as a chart: requests/s and p99 per scenario, quart-tasks beside the peers.

`load.py --compare --chart bench/standing.svg` draws it from the run it has just
made; the SVG is plain text, so a change to the standing shows in a diff.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

COLOURS = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1")
PANEL_WIDTH, PANEL_HEIGHT = 460, 240
MARGIN_LEFT, MARGIN_TOP, MARGIN_BOTTOM, GAP = 56, 48, 40, 40


@dataclass(frozen=True, slots=True)
class Series:
    """One server's figures, a value per scenario in the chart's order."""

    name: str
    rps: Sequence[float]
    p99_ms: Sequence[float]


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten at or above `value`."""
    if value <= 0:
        return 1.0
    power = 1.0
    while power * 10 <= value:
        power *= 10
    while power > value:
        power /= 10
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _panel(
    title: str,
    unit: str,
    scenarios: Sequence[str],
    series: Sequence[Series],
    values: str,
    left: float,
    *,
    logarithmic: bool = False,
) -> list[str]:
    """One panel; on a logarithmic scale from 1 to a power of ten, a peer's multi-second
    tail does not flatten everyone else's bars."""
    largest = max(max(getattr(s, values)) for s in series)
    top_value = (
        10 ** math.ceil(math.log10(max(largest, 10))) if logarithmic else nice_ceiling(largest)
    )
    ticks = (
        [10**power for power in range(round(math.log10(top_value)) + 1)]
        if logarithmic
        else [top_value * tick / 4 for tick in range(5)]
    )

    def scaled(value: float) -> float:
        """The share of the plot's height that `value` reaches."""
        if logarithmic:
            return math.log10(max(value, 1.0)) / math.log10(top_value)
        return value / top_value

    plot_height = PANEL_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    plot_width = PANEL_WIDTH - MARGIN_LEFT - 10
    group_width = plot_width / len(scenarios)
    bar_width = group_width * 0.8 / len(series)
    base_y = MARGIN_TOP + plot_height
    x0 = left + MARGIN_LEFT
    parts = [
        f'<text x="{left + PANEL_WIDTH / 2:.0f}" y="24" text-anchor="middle" '
        f'font-weight="bold">{escape(title)}</text>',
    ]
    for value in ticks:
        y = base_y - plot_height * scaled(value)
        parts.append(
            f'<line x1="{x0:.0f}" y1="{y:.1f}" x2="{x0 + plot_width:.0f}" y2="{y:.1f}" '
            'stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{x0 - 6:.0f}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{value:,.0f}</text>"
        )
    for index, scenario in enumerate(scenarios):
        group_x = x0 + group_width * index + group_width * 0.1
        for position, server in enumerate(series):
            value = getattr(server, values)[index]
            height = plot_height * scaled(value)
            parts.append(
                f'<rect x="{group_x + bar_width * position:.1f}" y="{base_y - height:.1f}" '
                f'width="{bar_width:.1f}" height="{height:.1f}" '
                f'fill="{COLOURS[position % len(COLOURS)]}">'
                f"<title>{escape(f'{server.name} {scenario} {unit}')}: {value:,.0f}</title></rect>"
            )
        parts.append(
            f'<text x="{x0 + group_width * (index + 0.5):.1f}" y="{base_y + 16:.0f}" '
            f'text-anchor="middle" font-size="12">{escape(scenario)}</text>'
        )
    return parts


def render_chart(scenarios: Sequence[str], series: Sequence[Series], caption: str) -> str:
    """The SVG document: requests/s on the left, p99 on the right, one colour a server."""
    width = 2 * PANEL_WIDTH + GAP
    height = PANEL_HEIGHT + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
        '<rect width="100%" height="100%" fill="white"/>',
        *_panel("requests/s (higher is better)", "requests/s", scenarios, series, "rps", 0),
        *_panel(
            "p99, ms, log scale (lower is better)",
            "p99 ms",
            scenarios,
            series,
            "p99_ms",
            PANEL_WIDTH + GAP,
            logarithmic=True,
        ),
    ]
    legend_y = PANEL_HEIGHT + 4
    for position, server in enumerate(series):
        x = MARGIN_LEFT + 150 * position
        parts.append(
            f'<rect x="{x}" y="{legend_y}" width="12" height="12" '
            f'fill="{COLOURS[position % len(COLOURS)]}"/>'
        )
        parts.append(f'<text x="{x + 18}" y="{legend_y + 11}">{escape(server.name)}</text>')
    parts.append(
        f'<text x="{width - 10}" y="{height - 8}" text-anchor="end" font-size="11" '
        f'fill="#555">{escape(caption)}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_chart(
    path: Path, scenarios: Sequence[str], series: Sequence[Series], caption: str
) -> None:
    path.write_text(render_chart(scenarios, series, caption))
