"""Issue 18's history: what keeping every version costs in memory through the magic's
path, and how long ``%modhistory`` and ``%moddiff`` take on 100 versions."""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from typing import Any

from harness import Goal, Row, Settings, best_of
from workloads import forget_inputs, fresh_name, functions, run_cell, shell

from ipyexecmod import cells

VERSIONS = 100
FUNCTIONS = 100  # 400 lines


def memory_rows(settings: Settings) -> list[Row]:
    """One module redefined 10,000 times by running its ``%%as_module`` cell (an edit each
    time, an on-disk copy each time), the default limit of 100 versions: the process's
    growth (tracemalloc, after gc.collect()) beyond the 100 sources the history keeps and
    beyond what IPython keeps of every cell (its input history, each cell's lines in
    linecache: about 2.4 kB a cell here), measured on the same cells given to a cell
    magic that does nothing."""
    count = max(200, int(10_000 * settings.scale))
    ip, name = shell(), fresh_name("history_memory")
    ip.register_magic_function(_nothing, "cell", "history_baseline")
    for magic in ("history_baseline", "as_module"):  # warm up: caches, first imports
        _growth(ip, magic, name, 100)
    ipython = _growth(ip, "history_baseline", name, count)
    began = time.perf_counter()
    grown = _growth(ip, "as_module", name, count)
    seconds = time.perf_counter() - began
    del ip.magics_manager.magics["cell"]["history_baseline"]
    history = cells.finder.modules[name].history
    kept = sum(sys.getsizeof(entry.source) for entry in history)
    return [
        Row(
            what=f"one module redefined {count:,} times through %%as_module (limit "
            f"{history.limit}): memory growth beyond the kept sources and IPython's own",
            candidate="tracemalloc",
            value=grown - ipython - kept,
            note=f"grown {grown / 2**20:.2f} MB, IPython's own for as many cells "
            f"{ipython / 2**20:.2f} MB, the {len(history)} sources kept {kept / 2**20:.2f} MB; "
            f"{seconds / count * 1e3:.2f} ms a cell under tracemalloc",
            goal=Goal(2 * 2**20, "B", "value"),
        )
    ]


def _nothing(line: str, cell: str) -> None:
    """A cell magic that does nothing: what IPython keeps of a cell without ipyexecmod."""


def _growth(ip: Any, magic: str, name: str, count: int) -> int:
    """The bytes the process keeps after ``count`` edited cells of ``%%magic name``."""
    forget_inputs(ip)
    gc.collect()
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    for index in range(count):
        run_cell(ip, f"%%{magic} {name}\n{functions(10)}VERSION = {index}\n")
        if index % 100 == 99:
            forget_inputs(ip)  # the notebook's _iN copies of each cell: not kept in a kernel
    forget_inputs(ip)
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - start
    tracemalloc.stop()
    return grown


def display_rows(settings: Settings) -> list[Row]:
    """``%modhistory`` (the table, text and HTML, with the lines added and removed for
    each version) and ``%moddiff`` of the first and last version, on 100 versions of a
    400-line module, each an edit of one function as a notebook's cell gets."""
    ip, name = shell(), fresh_name("history_display")
    base = functions(FUNCTIONS)
    for index in range(VERSIONS):
        edit = f"return x * {index % FUNCTIONS} + 1\n"
        run_cell(ip, f"%%as_module {name}\n" + base.replace(edit, edit[:-2] + f"{index + 2}\n"))
    forget_inputs(ip)
    inner = max(3, settings.inner // 5)

    def history() -> None:
        shown = ip.run_line_magic("modhistory", name)
        repr(shown), shown._repr_html_()

    def diff() -> None:
        shown = ip.run_line_magic("moddiff", f"{name} 1")
        repr(shown), shown._repr_html_()

    what = f"{VERSIONS} versions of a {FUNCTIONS * 4}-line module, one function edited in each"
    return [
        Row(
            what=f"%modhistory, text and HTML: {what}",
            candidate="%modhistory",
            value=best_of(history, inner),
            goal=Goal(0.1, "s", "value"),
        ),
        Row(
            what=f"%moddiff of the first and the last, text and HTML: {what}",
            candidate="%moddiff",
            value=best_of(diff, inner),
            goal=Goal(0.02, "s", "value"),
        ),
    ]
