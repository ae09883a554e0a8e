"""The benchmark harness: paired timing, goals, rows and the Markdown table.

A row compares a candidate with its baseline, timed side by side in one run: they
alternate, in pairs (which one goes first alternates too), so that a change in the
machine's load hits both.  A time is the best of a few calls.  The row's figure is
the median over the pairs of the pair's ratio (or, for an overhead, its difference),
with the spread from the 25th to the 75th percentile.  A :class:`Goal` is written
once, as a number, and gives both the text in the table and the verdict.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

#: What a goal bounds: the median ratio, the median added time (candidate - baseline),
#: a single measured value, or the ratio allowing for the noise (its IQR width).
Kind = Literal["ratio", "overhead", "value", "noise"]
RATIO = "×"


@dataclass(frozen=True)
class Settings:
    pairs: int  # pairs for in-process rows
    inner: int  # each time is the best of this many calls
    processes: int  # pairs for rows that start interpreters
    process_inner: int
    scale: float  # sizes: 1.0 for the full run, smaller for --quick


FULL = Settings(pairs=21, inner=25, processes=11, process_inner=3, scale=1.0)
QUICK = Settings(pairs=3, inner=3, processes=2, process_inner=1, scale=0.02)


@dataclass(frozen=True)
class Goal:
    """``limit`` in ``unit`` (``RATIO``, ``"s"`` or ``"B"``) on the quantity ``kind`` names."""

    limit: float
    unit: str = RATIO
    kind: Kind = "ratio"
    at_least: bool = False

    @property
    def text(self) -> str:
        bound = f"{'≥' if self.at_least else '≤'} {quantity(self.limit, self.unit, short=True)}"
        return {"overhead": f"{bound} added", "noise": f"{bound} within noise (IQR)"}.get(
            self.kind, bound
        )

    def measure(self, row: Row) -> float | None:
        if self.kind == "value":
            return row.value
        if row.timing is None:
            return None
        return row.timing.difference if self.kind == "overhead" else row.timing.ratio

    def met(self, row: Row) -> bool | None:
        measured = self.measure(row)
        if measured is None:
            return None
        limit = self.limit
        if self.kind == "noise" and row.timing is not None:
            low, high = iqr(row.timing.ratios) or (1.0, 1.0)
            limit += max(high - low, 0.02)
        return measured >= limit if self.at_least else measured <= limit


@dataclass(frozen=True)
class Paired:
    """Per-pair times in seconds, candidate and baseline."""

    candidate: list[float]
    baseline: list[float]

    @property
    def ratios(self) -> list[float]:
        return [c / b for c, b in zip(self.candidate, self.baseline, strict=True)]

    @property
    def differences(self) -> list[float]:
        return [c - b for c, b in zip(self.candidate, self.baseline, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def difference(self) -> float:
        return statistics.median(self.differences)


@dataclass(frozen=True, kw_only=True)
class Row:
    what: str
    goal: Goal
    candidate: str = ""
    baseline: str = ""
    timing: Paired | None = None
    value: float | None = None  # for a goal of kind "value"
    note: str = ""
    release: bool = False  # one of the rows the next release is judged on


def skipped(what: str, why: str, goal: Goal, *, release: bool = False) -> Row:
    return Row(what=what, goal=goal, note=f"not measured: {why}", release=release)


def wall(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def reported(function: Callable[[], float]) -> float:
    """For a callable that measures itself (a child process timing its own import)."""
    return function()


def best_of(
    function: Callable[[], object], inner: int, timer: Callable[..., float] = wall
) -> float:
    """The fastest of ``inner`` calls, in seconds."""
    return min(timer(function) for _ in range(inner))


def paired(
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    pairs: int,
    inner: int,
    timer: Callable[..., float] = wall,
    setup: Callable[[], object] = lambda: None,
) -> Paired:
    """Time ``candidate`` and ``baseline`` in ``pairs`` alternating pairs; ``setup``
    runs, untimed, before each best-of."""

    def best(function: Callable[[], object]) -> float:
        setup()
        return best_of(function, inner, timer)

    candidates, baselines = [], []
    for index in range(pairs):
        if index % 2:
            c, b = best(candidate), best(baseline)
        else:
            b, c = best(baseline), best(candidate)
        candidates.append(c)
        baselines.append(b)
    return Paired(candidates, baselines)


def iqr(values: list[float]) -> tuple[float, float] | None:
    if len(values) < 2:
        return None
    low, _, high = statistics.quantiles(values, n=4)
    return low, high


def quantity(value: float, unit: str, *, short: bool = False) -> str:
    """``value`` in ``unit`` for the table; ``short``: as few digits as it needs (a goal)."""
    scale, unit = _scaled(value, unit)
    scaled = value * scale
    digits = 2 if unit in (RATIO, "MB") or abs(scaled) < 10 else 1
    number = f"{scaled:.3g}" if short else f"{scaled:.{digits}f}"
    if short and unit == RATIO and "." not in number:
        number += ".0"
    return f"{number}{unit}" if unit == RATIO else f"{number} {unit}"


def _scaled(value: float, unit: str) -> tuple[float, str]:
    if unit == "B":
        return 2**-20, "MB"
    if unit != "s":
        return 1.0, unit
    for scale, name in ((1.0, "s"), (1e3, "ms"), (1e6, "µs")):
        if abs(value) * scale >= 1:
            return scale, name
    return 1e9, "ns"


# -- the table --

HEAD = (
    "| what | candidate ÷ baseline | candidate | baseline | measured (median) | spread (IQR) "
    "| goal | met |\n|---|---|---|---|---|---|---|---|"
)


def table(rows: list[Row], settings: Settings, header: str) -> str:
    """``header``, then the release rows and the others, each in a Markdown table."""
    pairs = (
        f"In-process rows: {settings.pairs} pairs of best-of-{settings.inner}; rows that start "
        f"interpreters: {settings.processes} pairs of best-of-{settings.process_inner}. "
        "The median is over the pairs' ratios (or, for an added time, differences)."
    )
    parts = [header, pairs]
    for title, release in (("The rows the next release is judged on", True), ("Others", False)):
        lines = [_line(r) for r in rows if r.release == release]
        parts += [f"## {title}", "\n".join([HEAD, *lines])] if lines else []
    return "\n\n".join(parts) + "\n"


def _line(r: Row) -> str:
    value = r.goal.measure(r)
    measured = "—" if value is None else quantity(value, r.goal.unit)
    if r.goal.kind == "overhead" and r.timing is not None:
        measured += f" added ({r.timing.ratio:.2f}{RATIO})"
    measured += f"; {r.note}" if r.note else ""
    met = {True: "yes", False: "**no**", None: "—"}[r.goal.met(r)]
    compared = f"{r.candidate} ÷ {r.baseline}" if r.baseline else r.candidate or "—"
    cells = [r.what, compared, *_times(r), measured, _spread(r), r.goal.text, met]
    return f"| {' | '.join(cells)} |"


def _times(r: Row) -> list[str]:
    if r.timing is None:
        return ["—", "—"]
    return [quantity(statistics.median(t), "s") for t in (r.timing.candidate, r.timing.baseline)]


def _spread(r: Row) -> str:
    overhead = r.goal.kind == "overhead"
    bounds = r.timing and iqr(r.timing.differences if overhead else r.timing.ratios)
    if not bounds:
        return "n/a"
    unit = "s" if overhead else RATIO
    return f"{quantity(bounds[0], unit)} – {quantity(bounds[1], unit)}"
