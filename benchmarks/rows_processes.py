"""The finder in fresh interpreters and in this one, and a spawned child's import."""

from __future__ import annotations

import tempfile
import textwrap

from harness import Goal, Row, Settings, best_of, paired, reported
from workloads import fresh_name, functions, run_python

from ipyexecmod import cells
from ipyexecmod.store import kernel_store

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
