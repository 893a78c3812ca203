"""A/B two quart-tasks settings or commits with bench/load.py: alternating runs, medians, ratios.

    .venv/bin/python bench/ab.py --runs 3 --a AUTH_CACHE_SECONDS=0 --b AUTH_CACHE_SECONDS=2
    .venv/bin/python bench/ab.py --runs 3 --a-rev HEAD~1 --b-rev HEAD
    .venv/bin/python bench/ab.py --runs 3 --b-config uvloop.toml
    .venv/bin/python bench/ab.py --runs 5 --scenarios S3 --a-rev main --b-rev HEAD

Each side is a list of `--server-env` settings (repeat --a/--b for several), and
optionally a Hypercorn file and a git revision (checked out in a temporary
worktree and served from there with this checkout's virtualenv). Runs alternate
A, B, A, B... so drift on the shared machine hits both alike; the table shows each scenario's median
requests/s, p99 and server CPU time per request per side, with ratios B/A.
CPU per request moves far less than requests/s when other work shares the cores.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
LOAD = Path("bench") / "load.py"
LINE = re.compile(
    r"^quart-tasks\s+(\S+)\s+rps=\s*([\d.]+)\s.*p99_ms=\s*([\d.]+)"
    r"(?:.*cpu_us_per_req=(\d+))?(?:.*fairness=([\d.]+|inf))?"
)


@dataclass(frozen=True)
class Figures:
    rps: float
    p99_ms: float
    cpu_us: float  # the server's CPU per request; nan from a load.py that does not print it
    fairness: float  # p99 / the mean latency by Little's law (connections / rps); nan likewise


@contextmanager
def worktree(revision: str | None) -> Iterator[Path]:
    """This checkout, or a detached worktree of `revision` for the duration."""
    if revision is None:
        yield CHECKOUT
        return
    with tempfile.TemporaryDirectory(prefix="quart-tasks-ab-") as tmp:
        path = Path(tmp) / "tree"
        git = ["git", "-C", str(CHECKOUT), "worktree"]
        subprocess.run(
            [*git, "add", "--detach", str(path), revision], check=True, capture_output=True
        )
        try:
            yield path
        finally:
            subprocess.run([*git, "remove", "--force", str(path)], check=True, capture_output=True)


def run(
    checkout: Path, settings: list[str], config: Path | None, extra: list[str]
) -> dict[str, Figures]:
    command = [sys.executable, str(checkout / LOAD), *extra]
    if config is not None:
        command += ["--hypercorn-config", str(config.resolve())]
    for setting in settings:
        command += ["--server-env", setting]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return dict(filter(None, map(parse_line, output.splitlines())))


def parse_line(line: str) -> tuple[str, Figures] | None:
    """A quart-tasks line of load.py's output, as its scenario and figures; else None."""
    found = LINE.match(line)
    if found is None:
        return None
    scenario, rps, p99_ms, cpu_us, fairness = found.groups(default="nan")
    return scenario, Figures(float(rps), float(p99_ms), float(cpu_us), float(fairness))


def describe(revision: str | None, settings: list[str], config: Path | None) -> str:
    words = [revision] if revision else []
    return " ".join(words + settings + ([config.name] if config else [])) or "defaults"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--b", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--a-rev", metavar="REVISION", help="serve side A from this commit")
    parser.add_argument("--b-rev", metavar="REVISION", help="serve side B from this commit")
    parser.add_argument("--a-config", type=Path, metavar="TOML", help="side A's Hypercorn file")
    parser.add_argument("--b-config", type=Path, metavar="TOML", help="side B's Hypercorn file")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--scenarios", metavar="S1,S3", help="only these (default: all)")
    args = parser.parse_args()
    extra = ["--duration", str(args.duration)]
    if args.scenarios:
        extra += ["--scenarios", args.scenarios]
    results: dict[str, dict[str, list[Figures]]] = defaultdict(lambda: defaultdict(list))
    with ExitStack() as stack:
        sides = [
            ("A", stack.enter_context(worktree(args.a_rev)), args.a, args.a_config),
            ("B", stack.enter_context(worktree(args.b_rev)), args.b, args.b_config),
        ]
        for n in range(args.runs):
            for side, checkout, settings, config in sides:
                for scenario, figures in run(checkout, settings, config, extra).items():
                    results[scenario][side].append(figures)
                print(f"run {n + 1} {side} done", file=sys.stderr, flush=True)
    print(
        f"A: {describe(args.a_rev, args.a, args.a_config)}   "
        f"B: {describe(args.b_rev, args.b, args.b_config)}   "
        f"medians of {args.runs} alternating runs, {args.duration} s a scenario"
    )
    print(
        f"{'scenario':<16}{'A rps':>8}{'B rps':>8}{'B/A':>7}{'A p99':>9}{'B p99':>9}"
        f"{'A cpu us':>10}{'B cpu us':>10}{'B/A':>7}   requests/s of each run"
    )
    medians = {
        scenario: {side: median_of(runs) for side, runs in by_side.items()}
        for scenario, by_side in results.items()
    }
    for scenario, by_side in results.items():
        a, b = medians[scenario]["A"], medians[scenario]["B"]
        print(
            f"{scenario:<16}{a.rps:>8.0f}{b.rps:>8.0f}{b.rps / a.rps:>7.2f}"
            f"{a.p99_ms:>9.0f}{b.p99_ms:>9.0f}"
            f"{a.cpu_us:>10.0f}{b.cpu_us:>10.0f}{b.cpu_us / a.cpu_us:>7.2f}   "
            + ", ".join(
                f"{side} " + "/".join(f"{f.rps:.0f}" for f in by_side[side]) for side in "AB"
            )
        )
    print("fairness (p99 / Little's-law mean): median, then each run")
    for scenario, by_side in results.items():
        print(
            f"{scenario:<16}"
            + "   ".join(
                f"{side} {medians[scenario][side].fairness:.2f} ("
                + "/".join(f"{f.fairness:.2f}" for f in by_side[side])
                + ")"
                for side in "AB"
            )
        )


def median_of(runs: list[Figures]) -> Figures:
    return Figures(
        statistics.median(f.rps for f in runs),
        statistics.median(f.p99_ms for f in runs),
        statistics.median(f.cpu_us for f in runs),
        statistics.median(f.fairness for f in runs),
    )


if __name__ == "__main__":
    main()
