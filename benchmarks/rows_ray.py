"""Issue 17's Ray goals: a task calling a cell module's function, pickled by value
(:mod:`ipyexecmod.ray`), against the same function defined in a plain cell
(``__main__``, which Ray pickles by value of itself); and what registering the cell
modules with Ray's cloudpickle costs.

One local Ray runtime (2 CPUs, no dashboard) serves both rows; starting it takes
seconds and is not timed.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from harness import Goal, Row, Settings, best_of, paired, skipped, wall
from workloads import fresh_name, functions

import ipyexecmod.ray
from ipyexecmod import cells

WHAT_TASK = (
    "a warm Ray task (local runtime, 2 CPUs) calling a cell module's function: "
    "`ray.get(remote.remote(2))`, against the same function defined in a plain cell"
)
WHAT_ENABLE = (
    "making every cell module of the process available to Ray: "
    "`ipyexecmod.ray.enable()` (at `%load_ext`, or at `import ray`); goal 50 ms a thousand"
)
#: Cell modules defined for the registration row (the full run; --quick scales it).
MODULES = 1000
#: Round trips of each side before timing: both functions exported, workers started.
WARM_UP = 10


def ray_rows(settings: Settings) -> list[Row]:
    try:
        import ray
    except ImportError:
        why = "ray not installed (`.[bench]`)"
        return [
            skipped(WHAT_TASK, why, Goal(1.1)),
            skipped(WHAT_ENABLE, why, Goal(0.05, "s", kind="value")),
        ]
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    try:
        return [_task_row(ray, settings), _enable_row(settings)]
    finally:
        ipyexecmod.ray.disable()
        ray.shutdown()


def _task_row(ray: Any, settings: Settings) -> Row:
    """Warm tasks: one handle each, made once, as a loop over ``remote.remote(x)`` uses."""
    source = functions(20)
    ipyexecmod.ray.enable()
    cell = cells.define(fresh_name("ray"), source)
    plain: dict[str, Any] = {"__name__": "__main__"}  # as a notebook cell's functions are
    exec(compile(source, "<cell>", "exec"), plain)
    on_cell, on_plain = ray.remote(cell.f7), ray.remote(plain["f7"])

    def task(remote: Any) -> Callable[[], object]:
        return lambda: ray.get(remote.remote(2))

    for _ in range(WARM_UP):
        if {task(on_cell)(), task(on_plain)()} != {15}:  # f7(2)
            msg = "the cell module's function and the plain cell's disagree in Ray"
            raise RuntimeError(msg)
    return Row(
        what=WHAT_TASK,
        candidate="cell module",
        baseline="plain cell",
        timing=paired(task(on_cell), task(on_plain), settings.pairs, settings.inner),
        goal=Goal(1.1),
        release=True,
    )


def _enable_row(settings: Settings) -> Row:
    """From nothing registered: ``enable()`` over :data:`MODULES` new cell modules and
    every other this process has (the rows before define thousands), what ``%load_ext``
    or ``import ray`` costs once; the goal grows with the count (50 ms a thousand)."""
    defined = max(int(MODULES * settings.scale), 20)
    for _ in range(defined):
        cells.define(fresh_name("ray_many"), "x = 1\n")

    def enable() -> None:
        ipyexecmod.ray.disable()
        ipyexecmod.ray.enable()

    seconds = best_of(enable, max(settings.inner, 3), wall)
    count = len(ipyexecmod.ray.registered())
    return Row(
        what=WHAT_ENABLE,
        value=seconds,
        note=f"{count:,} top-level cell modules ({defined:,} defined for this row), "
        f"{seconds / count * 1e6:.1f} µs each; {len(sys.modules):,} modules in sys.modules",
        goal=Goal(max(0.05, count * 50e-6), "s", kind="value"),
    )
