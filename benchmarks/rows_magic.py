"""``%%as_module`` end to end, in an InteractiveShell, on-disk copy included.

An edited cell really differs each time (a counter in a constant), so that no
cache serves it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

from harness import Goal, Row, Settings, paired
from workloads import (
    ONE_LINE,
    compile_exec,
    forget_inputs,
    fresh_name,
    functions,
    run_cell,
    shell,
)

Call = Callable[[], object]


def as_module_rows(settings: Settings) -> list[Row]:
    """``run_cell_magic`` re-running a cell, or an edited one, against compile+exec."""
    ip = shell()
    rows = []
    for label, source, goal in (
        ("100 functions", functions(100), Goal(1.1)),
        ("1 line", ONE_LINE, Goal(50e-6, "s", "overhead")),
    ):
        name = fresh_name("cell")
        edits = itertools.count()

        def same(name: str = name, source: str = source) -> None:
            ip.run_cell_magic("as_module", name, source)

        def edited(name: str = name, source: str = source, edits: Iterator[int] = edits) -> None:
            ip.run_cell_magic("as_module", name, source + f"_edit = {next(edits)}\n")

        same()
        for kind, candidate in (("re-run unchanged", same), ("edited", edited)):
            rows.append(
                Row(
                    what=f"`%%as_module` end to end (`run_cell_magic`), {label}, {kind}",
                    candidate="%%as_module",
                    baseline="compile+exec into a fresh module",
                    timing=paired(
                        candidate, compile_exec(name, source), settings.pairs, settings.inner
                    ),
                    goal=goal,
                    release=kind == "re-run unchanged",
                )
            )
    return rows


def magic_vs_plain_rows(settings: Settings) -> list[Row]:
    """The magic alone (``run_cell_magic``) against a whole plain cell (``run_cell``)."""
    ip = shell()
    rows = []
    for label, count, limit in (("1 function", 1, 1.0), ("100 functions", 100, 0.3)):
        name = fresh_name("cell")
        source = functions(count)

        def magic(name: str = name, source: str = source) -> None:
            ip.run_cell_magic("as_module", name, source)

        def plain(source: str = source) -> None:
            ip.run_cell(source, store_history=False)

        rows.append(
            Row(
                what=f"`%%as_module` (`run_cell_magic`) vs the same code as a plain cell, {label}",
                candidate="%%as_module",
                baseline="run_cell",
                timing=paired(magic, plain, settings.pairs, settings.inner),
                goal=Goal(limit),
            )
        )
    return rows


def edited_cell_rows(settings: Settings) -> list[Row]:
    """An edited 1-function cell through ``shell.run_cell``, as a notebook runs it:
    ``%%as_module`` against the same code as a plain cell, in alternating pairs, and
    in runs of cells back to back (work a cell leaves for later lands inside the run).
    Before each best-of, the shell forgets its past inputs (see ``forget_inputs``).
    """
    ip = shell()
    name = fresh_name("edited")
    edits = itertools.count(2)

    def magic() -> None:
        run_cell(ip, f"%%as_module {name}\n{functions(1, next(edits))}")

    def plain() -> None:
        run_cell(ip, functions(1, next(edits)))

    def noop() -> None:  # a cell magic that does nothing: IPython's floor for any of them
        run_cell(ip, f"%%_bench_noop\n{functions(1, next(edits))}")

    def forget() -> None:
        forget_inputs(ip)

    ip.register_magic_function(lambda line, cell: None, "cell", "_bench_noop")
    magic()
    run = max(5, round(50 * settings.scale))
    what = "an edited 1-function cell through `shell.run_cell`: `%%as_module` vs a plain cell"
    rows = [
        Row(
            what=f"{what}, alternating pairs",
            candidate="%%as_module cell",
            baseline="plain cell",
            timing=paired(magic, plain, settings.pairs, settings.inner, setup=forget),
            goal=Goal(1.0),
            release=True,
        ),
        Row(
            what=f"{what}, {run} cells back to back",
            candidate=f"{run} %%as_module cells",
            baseline=f"{run} plain cells",
            timing=paired(
                repeated(magic, run), repeated(plain, run), settings.pairs, 3, setup=forget
            ),
            goal=Goal(1.0),
            release=True,
        ),
        Row(
            what="IPython's floor: an edited cell under a cell magic that does nothing "
            "vs a plain cell, through `shell.run_cell` (no ipyexecmod code runs)",
            candidate="no-op cell magic",
            baseline="plain cell",
            timing=paired(noop, plain, settings.pairs, settings.inner, setup=forget),
            goal=Goal(1.0),
        ),
    ]
    forget()
    return rows


def repeated(function: Call, times: int) -> Call:
    def run() -> None:
        for _ in range(times):
            function()

    return run
