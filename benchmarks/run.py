"""ipyexecmod against the physical limit and against its peers, in one run.

    python benchmarks/run.py            # the full run: a Markdown table, also written to RESULTS.md
    python benchmarks/run.py --quick    # a few repetitions, to check that every row still runs

Every row is a ratio of two things timed side by side in this run, on this machine:
the candidate and its baseline alternate, in pairs, and the row shows the median of
the pairs' ratios with its spread (the 25th to 75th percentile).  A time is the best
of a few calls, which filters out the noise of a shared machine.  Absolute times are
shown for scale only.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ipyexecmod import capi, cells, exec_code_module_object  # noqa: E402
from ipyexecmod.store import kernel_store  # noqa: E402


def functions(count: int) -> str:
    """A cell of ``count`` small functions."""
    return "".join(f"def f{i}(x):\n    return x * {i} + 1\n\n\n" for i in range(count))


ONE_LINE = "x = 1\n"


@dataclass
class Row:
    what: str
    candidate: str
    baseline: str
    ratios: list[float]
    candidate_time: float  # seconds, median
    baseline_time: float
    goal: str
    met: bool | None  # None: no goal on the ratio, or not measured

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    def spread(self) -> str:
        if len(self.ratios) < 2:
            return "n/a"
        low, _, high = statistics.quantiles(self.ratios, n=4)
        return f"{low:.2f}–{high:.2f}"


@dataclass
class Settings:
    pairs: int
    inner: int
    processes: int  # pairs for rows that start interpreters
    scale: float  # 1.0 for the full run, smaller for --quick


def best_of(function: Callable[[], object], inner: int) -> float:
    """The fastest of ``inner`` calls, in seconds."""
    best = float("inf")
    for _ in range(inner):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def paired(
    candidate: Callable[[], object], baseline: Callable[[], object], pairs: int, inner: int
) -> tuple[list[float], float, float]:
    """The ratios candidate/baseline over ``pairs`` alternating pairs, and median times."""
    ratios, candidates, baselines = [], [], []
    for index in range(pairs):
        if index % 2:
            c, b = best_of(candidate, inner), best_of(baseline, inner)
        else:
            b, c = best_of(baseline, inner), best_of(candidate, inner)
        ratios.append(c / b)
        candidates.append(c)
        baselines.append(b)
    return ratios, statistics.median(candidates), statistics.median(baselines)


def row(
    what: str,
    candidate: str,
    baseline: str,
    measured: tuple[list[float], float, float],
    goal: str,
    limit: float | None,
) -> Row:
    ratios, c, b = measured
    met = None if limit is None else statistics.median(ratios) <= limit
    return Row(what, candidate, baseline, ratios, c, b, goal, met)


def fresh_name(stem: str, counter: list[int] = [0]) -> str:  # noqa: B006 - a process-wide count
    counter[0] += 1
    return f"_bench_{stem}_{counter[0]}"


# -- rows --


def core_vs_c(settings: Settings) -> list[Row]:
    rows = []
    for label, source in (("1-line module", ONE_LINE), ("100 functions", functions(100))):
        name = fresh_name("core")
        code = compile(source, f"<{name}>", "exec")

        def core(name: str = name, code: object = code) -> None:
            exec_code_module_object(name, code, None, None)

        def c_function(name: str = name, code: object = code) -> None:
            capi.exec_code_module_object(name, code, None, None)

        measured = paired(core, c_function, settings.pairs, settings.inner)
        rows.append(
            row(
                f"core `exec_code_module_object`, {label}",
                "core",
                "C via capi",
                measured,
                "≤ 1.2×",
                1.2,
            )
        )
        sys.modules.pop(name, None)
    return rows


def shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryAccessor.enabled = False
    ip = InteractiveShell.instance(config=config)
    ip.run_line_magic("load_ext", "ipyexecmod")
    return ip


def compile_exec(name: str, source: str) -> Callable[[], None]:
    """The limit: compile the source and execute it into a fresh module."""

    def run() -> None:
        module = ModuleType(name)
        exec(compile(source, f"<{name}>", "exec", dont_inherit=True), module.__dict__)

    return run


def as_module_rows(settings: Settings) -> list[Row]:
    ip = shell()
    rows = []
    for label, source, goal, limit in (
        ("100 functions", functions(100), "≤ 1.1×", 1.1),
        ("1 line", ONE_LINE, "overhead ≤ 50 µs", None),
    ):
        name = fresh_name("cell")
        edits = iter(range(10**9))

        def same() -> None:
            ip.run_cell_magic("as_module", name, source)

        def edited() -> None:  # a changed cell: its on-disk copy is rewritten
            ip.run_cell_magic("as_module", name, source + f"_edit = {next(edits)}\n")

        same()
        for kind, candidate in (("re-run unchanged", same), ("edited", edited)):
            measured = paired(candidate, compile_exec(name, source), settings.pairs, settings.inner)
            r = row(
                f"`%%as_module` end to end, {label}, {kind} (on-disk copy included)",
                "%%as_module",
                "compile+exec into a fresh module",
                measured,
                goal,
                limit,
            )
            if limit is None:
                overhead = r.candidate_time - r.baseline_time
                r.met = overhead <= 50e-6
                r.goal = f"{goal} (measured {overhead * 1e6:.0f} µs)"
            rows.append(r)
    for label, count, limit in (("1 function", 1, 1.0), ("100 functions", 100, 0.3)):
        name = fresh_name("cell")
        source = functions(count)

        def magic() -> None:
            ip.run_cell_magic("as_module", name, source)

        def plain() -> None:
            ip.run_cell(source, store_history=False)

        rows.append(
            row(
                f"`%%as_module` vs the same code as a plain cell, {label}",
                "%%as_module",
                "run_cell",
                paired(magic, plain, settings.pairs, settings.inner),
                f"≤ {limit}×",
                limit,
            )
        )
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

            def redefine() -> None:
                cells.define(cell, source, store=store)

            def reload() -> None:
                importlib.reload(module)

            measured = paired(redefine, reload, settings.pairs, settings.inner)
        finally:
            sys.path.remove(directory)
    return [
        row(
            "redefining a cell module (10 functions) vs `importlib.reload` of a `.py`",
            "cells.define",
            "importlib.reload",
            measured,
            "≤ 1.0×",
            1.0,
        )
    ]


def lsmod_rows(settings: Settings) -> list[Row]:
    from ipyexecmod.inspection import list_modules

    count = max(100, int(10_000 * settings.scale))
    for index in range(count):
        cells.define(f"_bench_many_{index}", ONE_LINE)
    elapsed = best_of(lambda: list_modules("*", cells_only=True), max(3, settings.inner // 10))
    return [
        Row(
            f"`%lsmod --cells` with {count:,} cell modules",
            "list_modules",
            "",
            [],
            elapsed,
            0.0,
            f"≤ 200 ms (measured {elapsed * 1e3:.0f} ms)",
            elapsed <= 0.2,
        )
    ]


def memory_rows(settings: Settings) -> list[Row]:
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
            f"one module redefined {count:,} times: memory growth",
            "tracemalloc / RSS",
            "",
            [],
            0.0,
            0.0,
            f"≤ 2 MB (tracemalloc {grown / 2**20:.2f} MB, RSS {rss_grown / 2**20:.2f} MB, "
            f"{files} files in the store)",
            grown <= 2 * 2**20 and rss_grown <= 2 * 2**20,
        )
    ]


def rss() -> int:
    """This process's resident set size in bytes (Linux)."""
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- rows that start interpreters --


def run_python(code: str, *args: str) -> float:
    """Wall time of a fresh interpreter running ``code``."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code, *args],
        check=True,
        cwd=HERE.parent,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return time.perf_counter() - start


STDLIB_50 = [
    "abc", "argparse", "ast", "base64", "bisect", "calendar", "cmd", "codecs", "collections",
    "colorsys", "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib",
    "dis", "email", "enum", "fnmatch", "fractions", "functools", "getopt", "gettext", "glob",
    "gzip", "hashlib", "heapq", "hmac", "html", "http", "inspect", "ipaddress", "json",
    "locale", "logging", "netrc", "numbers", "operator", "optparse", "pathlib", "pickle",
    "pprint", "queue", "random", "shlex", "statistics", "string", "textwrap",
]  # fmt: skip


def startup_rows(settings: Settings) -> list[Row]:
    rows = []
    imports = "; ".join(f"import {name}" for name in STDLIB_50)
    finder_on = "import ipyexecmod.cells as c; c.finder.install(); " + imports
    finder_off = "import ipyexecmod.cells as c; " + imports
    measured = paired(
        lambda: run_python(finder_on), lambda: run_python(finder_off), settings.processes, 1
    )
    rows.append(
        row(
            "importing 50 stdlib modules in a fresh interpreter, the finder installed",
            "finder on",
            "finder off",
            measured,
            "within noise",
            None,
        )
    )
    rows[-1].met = rows[-1].ratio <= 1.0 + spread_width(rows[-1])
    miss = finder_miss_time()
    rows.append(
        Row(
            "the finder's cost per import it does not own (a miss)",
            "find_spec",
            "",
            [],
            miss,
            0.0,
            f"≤ 1 µs (measured {miss * 1e9:.0f} ns)",
            miss <= 1e-6,
        )
    )
    measured = paired(
        lambda: run_python("import ipyexecmod"), lambda: run_python("pass"), settings.processes, 1
    )
    added = measured[1] - measured[2]
    rows.append(
        row(
            "`import ipyexecmod` (no IPython imported): added wall time",
            "import ipyexecmod",
            "empty interpreter",
            measured,
            f"≤ 10 ms (measured {added * 1e3:.1f} ms)",
            None,
        )
    )
    rows[-1].met = added <= 0.010
    shell_setup = (
        "from IPython.core.interactiveshell import InteractiveShell; "
        "ip = InteractiveShell.instance(); "
    )
    measured = paired(
        lambda: run_python(shell_setup + "ip.run_line_magic('load_ext', 'ipyexecmod')"),
        lambda: run_python(shell_setup),
        settings.processes,
        1,
    )
    added = measured[1] - measured[2]
    rows.append(
        row(
            "`%load_ext ipyexecmod` in a new shell: added wall time",
            "shell + %load_ext",
            "shell",
            measured,
            f"≤ 30 ms (measured {added * 1e3:.1f} ms)",
            None,
        )
    )
    rows[-1].met = added <= 0.030
    return rows


def spread_width(r: Row) -> float:
    low, _, high = statistics.quantiles(r.ratios, n=4) if len(r.ratios) > 1 else (1, 1, 1)
    return max(high - low, 0.02)


def finder_miss_time() -> float:
    finder = cells.finder
    names = [f"_no_such_module_{i}" for i in range(1000)]

    def misses() -> None:
        for name in names:
            finder.find_spec(name)

    return best_of(misses, 20) / len(names)


def spawn_rows(settings: Settings) -> list[Row]:
    """A child importing a 5,000-line cell module from its checked-hash .pyc, against the
    same child compiling it from source."""
    source = functions(1250)  # 4 lines each
    store = kernel_store()
    name = fresh_name("big")
    cells.define(name, source, store=store)
    child = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {store.directory!r})
        sys.dont_write_bytecode = True
        if sys.argv[1] == "source":
            sys.pycache_prefix = {tempfile.mkdtemp()!r}  # no .pyc there: compile
        start = time.perf_counter()
        import {name}
        print(time.perf_counter() - start)
        """
    )

    def timed(mode: str) -> float:
        output = subprocess.run(
            [sys.executable, "-c", child, mode], capture_output=True, text=True, check=True
        ).stdout
        return float(output)

    ratios, pyc_times, source_times = [], [], []
    for _ in range(settings.processes):
        from_pyc, from_source = timed("pyc"), timed("source")
        ratios.append(from_source / from_pyc)
        pyc_times.append(from_pyc)
        source_times.append(from_source)
    speedup = statistics.median(ratios)
    return [
        Row(
            "a spawned child importing a 5,000-line cell module: from source ÷ from its `.pyc`",
            "compile from source",
            "checked-hash .pyc",
            ratios,
            statistics.median(source_times),
            statistics.median(pyc_times),
            f"≥ 10× faster (measured {speedup:.1f}×)",
            speedup >= 10,
        )
    ]


def peer_rows(settings: Settings) -> list[Row]:
    """The same work, a 10-function module written in a notebook, done the ways users
    would otherwise: ``%%writefile`` + ``importlib.reload``, importnb, ipynb."""
    ip = shell()
    source = functions(10)
    cell = fresh_name("cell")

    def as_module() -> None:
        ip.run_cell_magic("as_module", cell, source)

    rows = []
    directory = tempfile.mkdtemp()
    sys.path.insert(0, directory)
    here = os.getcwd()
    os.chdir(directory)  # ipynb finds notebooks relative to the working directory
    try:
        written = fresh_name("written")
        path = os.path.join(directory, f"{written}.py")
        with contextlib.redirect_stdout(io.StringIO()):
            ip.run_cell_magic("writefile", path, source)
        module = importlib.import_module(written)

        def writefile() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                ip.run_cell_magic("writefile", path, source)
            importlib.reload(module)

        rows.append(
            row(
                "same work: a 10-function module from a notebook",
                "%%as_module",
                "%%writefile + importlib.reload",
                paired(as_module, writefile, settings.pairs, settings.inner),
                "ipyexecmod ahead (< 1×)",
                1.0,
            )
        )
        notebook = fresh_name("notebook")
        write_notebook(os.path.join(directory, f"{notebook}.ipynb"), source)
        try:
            from importnb import Notebook
        except ImportError:
            rows.append(
                skipped("same work: importnb", "importnb not installed (pip install '.[bench]')")
            )
        else:

            def importnb() -> None:
                sys.modules.pop(notebook, None)
                with Notebook():
                    importlib.import_module(notebook)

            rows.append(
                row(
                    "same work: a 10-function module from a notebook",
                    "%%as_module",
                    "importnb import",
                    paired(as_module, importnb, settings.pairs, settings.inner),
                    "ipyexecmod ahead (< 1×)",
                    1.0,
                )
            )
        try:
            importlib.import_module("ipynb.fs.full")
        except ImportError:
            rows.append(skipped("same work: ipynb", "ipynb not installed (`.[bench]`)"))
        else:
            full = f"ipynb.fs.full.{notebook}"

            def ipynb() -> None:
                sys.modules.pop(full, None)
                importlib.import_module(full)

            rows.append(
                row(
                    "same work: a 10-function module from a notebook",
                    "%%as_module",
                    "ipynb import",
                    paired(as_module, ipynb, settings.pairs, settings.inner),
                    "ipyexecmod ahead (< 1×)",
                    1.0,
                )
            )
    finally:
        os.chdir(here)
        sys.path.remove(directory)
    return rows


def write_notebook(path: str, source: str) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {
        "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"},
        "language_info": {"name": "python"},
    }
    notebook.cells.append(nbformat.v4.new_code_cell(source))
    nbformat.write(notebook, path)


def dask_rows(settings: Settings) -> list[Row]:
    """What a task carries: a cell-module function by reference, against the same
    function by value (cloudpickle), as Dask's own serializer makes them."""
    try:
        import cloudpickle
        from distributed.protocol import pickle as dask_pickle
    except ImportError:
        return [skipped("Dask: pickled size of a task's function", "distributed not installed")]
    name = fresh_name("dask")
    module = cells.define(name, functions(20), store=kernel_store())
    task = (module.f7, (1,), {})
    by_reference = len(dask_pickle.dumps(task))
    cloudpickle.register_pickle_by_value(module)
    try:
        by_value = len(cloudpickle.dumps(task))
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    ratio = by_reference / by_value
    return [
        Row(
            "Dask: pickled size of a task calling a cell-module function",
            "by reference (shipped)",
            "cloudpickle by value",
            [ratio],
            0.0,
            0.0,
            f"by reference ≤ 1/10 ({by_reference} vs {by_value} bytes)",
            ratio <= 0.1,
        )
    ]


def skipped(what: str, why: str) -> Row:
    return Row(what, "", "", [], 0.0, 0.0, f"not measured: {why}", None)


# -- the table --


def table(rows: list[Row], settings: Settings, seconds: float) -> str:
    lines = [
        "| what | candidate ÷ baseline | ratio (median) | spread (IQR) | candidate | baseline "
        "| goal | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r.ratio:.2f}×" if r.ratios else "—"
        met = {True: "yes", False: "**no**", None: "—"}[r.met]
        lines.append(
            f"| {r.what} | {r.candidate} ÷ {r.baseline or '—'} | {ratio} | {r.spread()} "
            f"| {format_time(r.candidate_time)} | {format_time(r.baseline_time)} | {r.goal} "
            f"| {met} |"
        )
    header = (
        f"Measured {time.strftime('%Y-%m-%d')} on CPython {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{settings.pairs} pairs of best-of-{settings.inner} for in-process rows, "
        f"{settings.processes} pairs for rows that start interpreters; {seconds:.0f} s in all."
    )
    return header + "\n\n" + "\n".join(lines) + "\n"


def format_time(seconds: float) -> str:
    if not seconds:
        return "—"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


ROWS = [
    core_vs_c,
    as_module_rows,
    redefine_vs_reload,
    peer_rows,
    startup_rows,
    spawn_rows,
    memory_rows,
    lsmod_rows,
    dask_rows,
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few repetitions only")
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"), help="where the table goes")
    args = parser.parse_args(argv)
    settings = (
        Settings(pairs=3, inner=3, processes=2, scale=0.02)
        if args.quick
        else Settings(pairs=21, inner=25, processes=11, scale=1.0)
    )
    started = time.perf_counter()
    rows: list[Row] = []
    for make in ROWS:
        rows += make(settings)
        print(f"measured: {make.__name__}", file=sys.stderr)
    text = table(rows, settings, time.perf_counter() - started)
    print(text)
    Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
