"""The finder in fresh interpreters and in this one, and a spawned child's import."""

from __future__ import annotations

import compileall
import itertools
import os
import sys
import tempfile
import textwrap

from harness import Goal, Row, Settings, best_of, paired, reported
from workloads import fresh_name, functions, run_python

from ipyexecmod import cells
from ipyexecmod.lasting import LastingStore
from ipyexecmod.store import CellStore, kernel_store

STDLIB_50 = [
    "abc", "argparse", "ast", "base64", "bisect", "calendar", "cmd", "codecs", "collections",
    "colorsys", "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib",
    "dis", "email", "enum", "fnmatch", "fractions", "functools", "getopt", "gettext", "glob",
    "gzip", "hashlib", "heapq", "hmac", "html", "http", "inspect", "ipaddress", "json",
    "locale", "logging", "netrc", "numbers", "operator", "optparse", "pathlib", "pickle",
    "pprint", "queue", "random", "shlex", "statistics", "string", "textwrap",
]  # fmt: skip


def finder_rows(settings: Settings) -> list[Row]:
    imports = "; ".join(f"import {name}" for name in STDLIB_50)
    setup = "import ipyexecmod.cells as c; "
    timing = paired(
        lambda: run_python(setup + "c.finder.install(); " + imports),
        lambda: run_python(setup + imports),
        settings.processes,
        settings.process_inner,
    )
    names = [f"_no_such_module_{i}" for i in range(1000)]
    miss = best_of(lambda: [cells.finder.find_spec(name) for name in names], 20) / len(names)
    return [
        Row(
            what="importing 50 stdlib modules in a fresh interpreter, the finder installed",
            candidate="finder on",
            baseline="finder off",
            timing=timing,
            goal=Goal(1.0, kind="noise"),
        ),
        Row(
            what="the finder's cost per import it does not own (a miss)",
            candidate="find_spec",
            value=miss,
            goal=Goal(1e-6, "s", "value"),
        ),
    ]


def spawn_rows(settings: Settings) -> list[Row]:
    """A child importing a 5,000-line cell module from its checked-hash .pyc, against the
    same child compiling it from source; each child times its own import."""
    store = kernel_store()
    name = fresh_name("big")
    cells.define(name, functions(1250), store=store)  # 4 lines each
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
    return [
        Row(
            what="a spawned child importing a 5,000-line cell module: "
            "from source ÷ from its `.pyc`",
            candidate="compile from source",
            baseline="checked-hash .pyc",
            timing=paired(
                lambda: float(run_python(child, "source")),
                lambda: float(run_python(child, "pyc")),
                settings.processes,
                1,
                timer=reported,
            ),
            goal=Goal(10.0, at_least=True),
        )
    ]


def lasting_rows(settings: Settings) -> list[Row]:
    """What a lasting directory's records of ownership cost: redefining a cell module
    with a copy there, against the same with a copy in a directory of the same file
    system that keeps no records (as the private one); and adding a lasting directory
    that holds a user's project of 150 modules (nothing of it is read or written)."""
    root = tempfile.mkdtemp(prefix="bench-lasting-")
    lasting, plain = LastingStore(f"{root}/lasting"), CellStore(f"{root}/plain")
    names = {lasting: fresh_name("kept"), plain: fresh_name("kept")}
    edits = itertools.count()

    def redefine(store: CellStore) -> None:
        cells.define(names[store], functions(25, next(edits)), store=store)

    timing = paired(
        lambda: redefine(lasting), lambda: redefine(plain), settings.pairs, settings.inner
    )
    project = f"{root}/project"
    for package in range(max(1, round(15 * settings.scale))):
        os.makedirs(f"{project}/analysis/p{package}")
        with open(f"{project}/analysis/p{package}/__init__.py", "w"):
            pass
        for module in range(10):
            with open(f"{project}/analysis/p{package}/m{module}.py", "w") as file:
                file.write(functions(5))
    compileall.compile_dir(project, quiet=1)
    added = best_of(lambda: cells.finder.add_store(LastingStore(project)), settings.inner)
    cells.finder.stores[:] = [s for s in cells.finder.stores if s.directory != project]
    sys.path.remove(project)
    many = LastingStore(f"{root}/many")
    count = max(10, round(1000 * settings.scale))
    for number in range(count):
        many.write(f"m{number}", "X = 1\n", compile("X = 1\n", "m", "exec"), is_package=False)
    many.replaced()  # as after the cell that wrote them
    check = best_of(many.replaced, settings.inner * 20)
    return [
        Row(
            what="redefining a 100-line cell module with a copy in a lasting directory "
            "(records of what it wrote), against a directory without records",
            candidate="lasting",
            baseline="no records",
            timing=timing,
            goal=Goal(1.3),
        ),
        Row(
            what=f"the check before and after each cell for copies another kernel replaced, "
            f"{count:,} modules written in a lasting directory",
            candidate="replaced()",
            value=check,
            goal=Goal(20e-6, "s", "value"),
        ),
        Row(
            what="adding a lasting directory that holds a user's project of 150 modules",
            candidate="add_store",
            value=added,
            goal=Goal(1e-3, "s", "value"),
        ),
    ]
