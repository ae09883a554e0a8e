"""Where the time of an edited ``%%as_module`` 1-function cell goes (cProfile).

    python benchmarks/profile_cell.py [CELLS]

Runs CELLS edited cells through ``shell.run_cell`` as a notebook does, first without a
profiler (the real time per cell, and a plain cell's for scale), then each step on its
own, then under cProfile: the C functions in BUILTINS, IPython's steps in IPYTHON,
ipyexecmod's functions, and the most own time, in µs per cell.  cProfile slows
Python-level calls more than C ones; the profiled total is printed next to the real
one to tell by how much.
"""

from __future__ import annotations

import cProfile
import itertools
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from workloads import forget_inputs, fresh_name, functions, run_cell, shell

from ipyexecmod import cells as cell_modules
from ipyexecmod.store import kernel_store

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

PROFILE = cProfile.Profile()

# The C functions whose time is worth seeing on its own (their names in cProfile).
BUILTINS = [
    "builtins.compile",
    "builtins.exec",
    "posix.replace",
    "posix.open",
    "posix.mkdir",
    "posix.stat",
    "posix.lstat",
    "posix.fsync",
    "posix.unlink",
    "_io.open",
    "marshal.dumps",
    "marshal.loads",
]
# The IPython steps a magic cell goes through (matched by function name in IPython's files).
IPYTHON = [
    "run_cell",
    "transform_cell",
    "should_run_async",
    "store_inputs",
    "run_ast_nodes",
    "run_cell_magic",
    "var_expand",
    "push",
    "trigger",
]
Stats = dict[tuple[str, int, str], tuple[int, int, float, float, object]]


def per_cell(ip: InteractiveShell, run: Callable[[], None], cells: int, on: bool = False) -> float:
    """Seconds per cell over ``cells`` cells, in notebooks of 100 cells (the shell's
    past inputs are forgotten between them, untimed, as the benchmark does); ``on``: profiled."""
    elapsed = 0.0
    for _ in range(max(1, cells // 100)):
        forget_inputs(ip)
        start = time.perf_counter()
        if on:
            PROFILE.enable()
        for _ in range(min(100, cells)):
            run()
        PROFILE.disable()
        elapsed += time.perf_counter() - start
    return elapsed / max(100, cells)


def steps(ip: InteractiveShell) -> None:
    """The steps of an edited cell timed one by one, without a profiler (µs, median)."""
    store = kernel_store()
    edits = itertools.count(10**6)
    name, plain_name, memory_name, written = (fresh_name(stem) for stem in "spmw")
    directory = tempfile.mkdtemp(dir=os.path.dirname(store.directory))

    def replace_file() -> None:  # what a rewrite of one file costs the OS: mkstemp, write, rename
        fd, temporary = tempfile.mkstemp(dir=directory)
        with os.fdopen(fd, "wb") as file:
            file.write(b"def f0(x):\n    return x\n")
        os.replace(temporary, os.path.join(directory, "target.py"))

    def new_file() -> None:  # the same bytes to a file name not used before, no rename
        with open(os.path.join(directory, f"new{next(edits)}.py"), "xb") as file:
            file.write(b"def f0(x):\n    return x\n")

    timed = {
        "compile(1-function source)": lambda: compile(functions(1, next(edits)), "<s>", "exec"),
        "cells.define, edited, in memory only (store=None)": lambda: cell_modules.define(
            memory_name, functions(1, next(edits))
        ),
        "cells.define, edited, with its on-disk copy": lambda: cell_modules.define(
            name, functions(1, next(edits)), store=store
        ),
        "CellStore.write of an edited source + .pyc": lambda: store.write(
            written,
            source := functions(1, next(edits)),
            compile(source, "<s>", "exec"),
            is_package=False,
        ),
        "OS: mkstemp + write + os.replace over a file": replace_file,
        "OS: write a new file (open 'xb')": new_file,
        "shell.run_cell_magic('as_module', ...), edited": lambda: ip.run_cell_magic(
            "as_module", name, functions(1, next(edits))
        ),
        "shell.run_cell_magic('as_module', ...), unchanged": lambda: ip.run_cell_magic(
            "as_module", plain_name, functions(1)
        ),
        "shell.run_cell, an edited %%as_module cell": lambda: run_cell(
            ip, f"%%as_module {name}\n{functions(1, next(edits))}"
        ),
        "shell.run_cell, an edited plain cell": lambda: run_cell(ip, functions(1, next(edits))),
    }
    runs: dict[str, list[float]] = {label: [] for label in timed}
    for _ in range(7):  # round robin, so that a change in the machine's load hits every step
        for label, function in timed.items():
            runs[label].append(per_call(function, 100))
    print("timed directly, µs (median of 7 rounds of the mean of 100 calls):")
    for label, times in runs.items():
        print(f"  {statistics.median(times) * 1e6:8.1f}  {label}")
    shutil.rmtree(directory)


def per_call(function: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls


def main() -> None:
    cells = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    ip = shell()
    name = fresh_name("profiled")
    edits = itertools.count(2)

    def magic() -> None:
        run_cell(ip, f"%%as_module {name}\n{functions(1, next(edits))}")

    def plain() -> None:
        run_cell(ip, functions(1, next(edits)))

    magic()
    real = min(per_cell(ip, magic, cells // 4) for _ in range(4))
    print(f"unprofiled: %%as_module cell {real * 1e6:.0f} µs, ", end="")
    print(f"plain cell {min(per_cell(ip, plain, cells // 4) for _ in range(4)) * 1e6:.0f} µs")
    steps(ip)
    per_cell(ip, magic, cells, on=True)
    stats = pstats.Stats(PROFILE).stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in stats.values()) / cells
    print(f"profiled: {total * 1e6:.0f} µs per cell (x{total / real:.1f} of the real time)\n")
    report(stats, cells)


def report(stats: Stats, cells: int) -> None:
    """Print the profile in µs per cell: C functions, IPython's steps, ipyexecmod's
    functions by cumulative time, and the most own time."""

    def show(title: str, rows: list[tuple[tuple[str, int, str], float]]) -> None:
        print(f"\n{title}, µs per cell:")
        for (path, line, function), seconds in rows:
            calls = stats[path, line, function][1] / cells
            where = f" {path.rsplit('/', 2)[-1]}:{line}" if line else ""
            print(f"  {seconds / cells * 1e6:8.1f}  {calls:5.1f} calls  {function}{where}")

    def cumulative(keys: list[tuple[str, int, str]]) -> list[tuple[tuple[str, int, str], float]]:
        return sorted(((key, stats[key][3]) for key in keys), key=lambda item: -item[1])

    show("C functions (cumulative)", cumulative([k for k in stats if _builtin(k[2])]))
    ipython = [k for k in stats if "/IPython/" in k[0] and k[2] in IPYTHON]
    show("IPython's steps (cumulative)", cumulative(ipython))
    ours = [k for k in stats if "/ipyexecmod/" in k[0]]
    show("ipyexecmod (cumulative, top 20)", cumulative(ours)[:20])
    own = sorted(((key, value[2]) for key, value in stats.items()), key=lambda item: -item[1])
    show("most own time (top 20)", own[:20])


def _builtin(function: str) -> bool:
    return any(function in (f"<built-in method {name}>", f"<method '{name}'") for name in BUILTINS)


if __name__ == "__main__":
    main()
