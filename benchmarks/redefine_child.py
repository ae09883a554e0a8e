"""A child interpreter's part of ``rows_dependents.unimported_rows``.

    python benchmarks/redefine_child.py INNER PACKAGE_DIR

Redefines an edited 10-function cell module that no other imports, with 20 other cell
modules defined (a chain of ``from`` imports, as a notebook's pipeline has), with the
``ipyexecmod`` found first on the path (PYTHONPATH names this checkout, or the code
before issue 15); checks that it is the one in PACKAGE_DIR.  Prints, as JSON, the best
of INNER redefinitions (after two untimed ones) in seconds: through ``cells.define``
before the extension is loaded, then through ``%%as_module`` (``run_cell_magic``) with
a fresh notebook namespace, then with 10,000 more names in it.  The same code runs on
both sides; only the package differs.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections.abc import Callable

from workloads import functions, notebook_values, shell

import ipyexecmod
from ipyexecmod import cells
from ipyexecmod.store import kernel_store

OTHERS = 20


def best(redefine: Callable[[str], object], inner: int) -> float:
    """The fastest of ``inner`` redefinitions, each of an edited source (a constant changes)."""
    edits = itertools.count()

    def once() -> float:
        source = functions(10) + f"_edit = {next(edits)}\n"
        start = time.perf_counter()
        redefine(source)
        return time.perf_counter() - start

    for _ in range(3):  # the first definition, then a redefinition's caches warmed
        once()
    return min(once() for _ in range(inner))


def other(index: int) -> str:
    """The source of the ``index``-th other module: it imports the one before it."""
    head = "import math\n" + (f"from _bench_other_{index - 1} import f0\n" if index else "")
    return head + functions(10, index)


def main() -> None:
    inner, package = int(sys.argv[1]), sys.argv[2]
    if os.path.dirname(os.path.abspath(ipyexecmod.__file__)) != os.path.abspath(package):
        sys.exit(f"ipyexecmod imported from {ipyexecmod.__file__}, not from {package}")
    store = kernel_store()
    for index in range(OTHERS):
        cells.define(f"_bench_other_{index}", other(index), store=store)
    times = {
        "define": best(lambda source: cells.define("_bench_alone", source, store=store), inner)
    }
    ip = shell()  # from here on, the extension is loaded

    def magic(source: str) -> None:
        ip.run_cell_magic("as_module", "_bench_alone_cell", source)

    times["magic"] = best(magic, inner)
    ip.user_ns.update(notebook_values(10_000))
    times["magic, 10,000 names"] = best(magic, inner)
    print(json.dumps(times))


if __name__ == "__main__":
    main()
