"""Issue 18's history: what keeping every version costs in memory through the magic's
path, and how long ``%modhistory`` and ``%moddiff`` take on 100 versions."""

from __future__ import annotations

import gc
import os
import sys
import time
import tracemalloc

from harness import Goal, Row, Settings, best_of
from workloads import forget_inputs, fresh_name, functions, run_cell, shell

import ipyexecmod
from ipyexecmod import cells

VERSIONS = 100
FUNCTIONS = 100  # 400 lines


def memory_rows(settings: Settings) -> list[Row]:
    """One module redefined 10,000 times by running its ``%%as_module`` cell (an edit each
    time, an on-disk copy each time), the default limit of 100 versions: what stays of
    the memory that ipyexecmod's code allocated (tracemalloc, after gc.collect(): the
    blocks allocated with a frame of ipyexecmod on the stack).

    Not the process's whole growth: IPython keeps about 2 kB of every cell (its input
    history, the cell's lines in linecache), give or take 150 bytes from one run of
    cells to the next, which would hide ipyexecmod's share.  The kept sources are the
    cells' text, which IPython allocated: counted in the whole growth only."""
    count = max(200, int(10_000 * settings.scale))
    ip, name = shell(), fresh_name("history_memory")
    run_cell(ip, f"%%as_module {name}\n{functions(10)}")
    forget_inputs(ip)
    gc.collect()
    tracemalloc.start(_DEPTH)
    before = tracemalloc.take_snapshot()
    began = time.perf_counter()
    for index in range(count):
        run_cell(ip, f"%%as_module {name}\n{functions(10)}VERSION = {index}\n")
        if index % 100 == 99:
            forget_inputs(ip)  # the notebook's _iN copies of each cell: IPython's
    seconds = time.perf_counter() - began
    forget_inputs(ip)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    changes = after.compare_to(before, "traceback")
    ours = sum(change.size_diff for change in changes if _ours(change.traceback))
    grown = sum(change.size_diff for change in changes)
    history = cells.finder.modules[name].history
    kept = sum(sys.getsizeof(entry.source) for entry in history)
    return [
        Row(
            what=f"one module redefined {count:,} times through %%as_module (limit "
            f"{history.limit}): the memory ipyexecmod's code allocated that stays",
            candidate="tracemalloc",
            value=ours,
            note=f"the process grew {grown / 2**20:.2f} MB in all, IPython's copies of the "
            f"cells included; the {len(history)} sources kept are {kept / 2**20:.2f} MB; "
            f"{seconds / count * 1e3:.2f} ms a cell under tracemalloc",
            goal=Goal(2 * 2**20, "B", "value"),
        )
    ]


# Deep enough to reach ipyexecmod from what a definition allocates (the module's code, the
# standard library); deeper costs time: each frame is recorded for each block.
_DEPTH = 8
_PACKAGE = os.path.dirname(ipyexecmod.__file__) + os.sep


def _ours(traceback: tracemalloc.Traceback) -> bool:
    return any(frame.filename.startswith(_PACKAGE) for frame in traceback)


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
