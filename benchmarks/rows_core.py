"""The core without IPython: the exec-code functions, redefinition, memory, listing."""

from __future__ import annotations

import gc
import importlib
import itertools
import os
import sys
import tempfile
import tracemalloc
from pathlib import Path
from types import CodeType

from harness import Goal, Row, Settings, best_of, paired
from workloads import ONE_LINE, fresh_name, functions

from ipyexecmod import capi, cells, exec_code_module_object
from ipyexecmod.inspection import list_modules
from ipyexecmod.store import kernel_store


def core_vs_c(settings: Settings) -> list[Row]:
    rows = []
    for label, source in (("1-line module", ONE_LINE), ("100 functions", functions(100))):
        name = fresh_name("core")
        code = compile(source, f"<{name}>", "exec")

        def core(name: str = name, code: CodeType = code) -> None:
            exec_code_module_object(name, code, None, None)

        def c_function(name: str = name, code: CodeType = code) -> None:
            capi.exec_code_module_object(name, code, None, None)

        rows.append(
            Row(
                what=f"core `exec_code_module_object`, {label}",
                candidate="core",
                baseline="C via capi",
                timing=paired(core, c_function, settings.pairs, settings.inner),
                goal=Goal(1.2),
            )
        )
        sys.modules.pop(name, None)
    return rows


def redefine_vs_reload(settings: Settings) -> list[Row]:
    source = functions(10)
    with tempfile.TemporaryDirectory() as directory:
        name = fresh_name("file")
        Path(directory, f"{name}.py").write_text(source)
        sys.path.insert(0, directory)
        try:
            module = importlib.import_module(name)
            cell = fresh_name("cell")
            store = kernel_store()
            cells.define(cell, source, store=store)
            edits = itertools.count()  # a redefinition is of new code: nothing is reused
            timing = paired(
                lambda: cells.define(cell, source + f"_edit = {next(edits)}\n", store=store),
                lambda: importlib.reload(module),
                settings.pairs,
                settings.inner,
            )
        finally:
            sys.path.remove(directory)
    return [
        Row(
            what="redefining a cell module (10 functions) vs `importlib.reload` of a `.py`",
            candidate="cells.define",
            baseline="importlib.reload",
            timing=timing,
            goal=Goal(1.0),
        )
    ]


def lsmod_rows(settings: Settings) -> list[Row]:
    count = max(100, int(10_000 * settings.scale))
    for _ in range(count):
        cells.define(fresh_name("many"), ONE_LINE)
    elapsed = best_of(lambda: list_modules("*", cells_only=True), max(3, settings.inner // 10))
    return [
        Row(
            what=f"`%lsmod --cells` with {count:,} cell modules",
            candidate="list_modules",
            value=elapsed,
            goal=Goal(0.2, "s", "value"),
        )
    ]


def memory_rows(settings: Settings) -> list[Row]:
    """Growth of the process when one module is redefined many times (tracemalloc and
    RSS; the worse of the two is held against the goal)."""
    count = max(200, int(10_000 * settings.scale))
    name = fresh_name("memory")
    store = kernel_store()
    cells.define(name, functions(10), store=store)
    gc.collect()
    rss_before = rss()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for index in range(count):
        cells.define(name, functions(10) + f"VERSION = {index}\n", store=store)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    rss_grown = rss() - rss_before
    files = sum(len(f) for _, _, f in os.walk(store.directory))
    return [
        Row(
            what=f"one module redefined {count:,} times: memory growth",
            candidate="tracemalloc / RSS",
            value=max(grown, rss_grown),
            note=f"tracemalloc {grown / 2**20:.2f} MB, RSS {rss_grown / 2**20:.2f} MB, "
            f"{files} files in the store",
            goal=Goal(2 * 2**20, "B", "value"),
        )
    ]


def rss() -> int:
    """This process's resident set size in bytes (Linux)."""
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
