"""Issue 15's speed goals: a redefinition that re-runs its dependents and rebinds the
notebook's names, against what the same work cost before, or costs done separately."""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import itertools
import statistics
import subprocess
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from before import before_package
from harness import RATIO, Goal, Paired, Row, Settings, paired, skipped
from workloads import fresh_name, functions, notebook_values, shell

from ipyexecmod import cells
from ipyexecmod.binding import rebind
from ipyexecmod.cells.imports import imports_in
from ipyexecmod.cells.stale import outliving
from ipyexecmod.store import kernel_store

#: The code before issue 15 (no dependents, no rebinding): the baseline of "costs what it
#: costs today".
BEFORE = "4b04a6e"
OTHERS = 20
NOTHING_IMPORTS = (
    f"redefining an edited 10-function cell module that none of {OTHERS} other cell modules "
    "imports, against the code before issue 15 in the same process"
)


def unimported_rows(settings: Settings) -> list[Row]:
    """This checkout against the code before issue 15, imported next to it (before.py),
    in alternating pairs in this process: through ``cells.define``, then through the
    ``%%as_module`` method of each one's magics in this run's shell, with its namespace
    as it is, then with 10,000 more names.  Each side has its own registry of
    :data:`OTHERS` modules and redefines a module of its own (run.py runs these rows
    first: the registry holds no module of other rows)."""
    goal = Goal(1.05)
    try:
        with before_package(BEFORE) as before:
            timings = _against_before(before, settings)
    except (OSError, subprocess.CalledProcessError) as exc:
        return [skipped(NOTHING_IMPORTS, f"no checkout of {BEFORE}: {exc}", goal, release=True)]
    return [
        Row(
            what=f"{NOTHING_IMPORTS}: {how}",
            candidate="this checkout",
            baseline=f"before issue 15 ({BEFORE})",
            timing=timing,
            goal=goal,
            release=True,
        )
        for how, timing in timings.items()
    ]


def _against_before(before: ModuleType, settings: Settings) -> dict[str, Paired]:
    """The timings of :func:`unimported_rows`, by what the row says was timed."""
    ip = shell()
    old_magics = importlib.import_module(f"{before.__name__}.magics")
    before.cells.finder.defer_lines = True  # as its %load_ext does
    edits = itertools.count()
    define: dict[str, Callable[[], object]] = {}
    magic: dict[str, Callable[[], object]] = {}
    for stem, package, magics, store in (
        ("new", cells, ip.magics_manager.registry["ExecModMagics"], kernel_store()),
        ("old", before.cells, old_magics.ExecModMagics(shell=ip), before.store.kernel_store()),
    ):
        for index in range(OTHERS):
            package.define(f"_{stem}_other_{index}", _other(stem, index), store=store)
        define[stem] = functools.partial(_redefine, package.define, f"_{stem}_alone", edits, store)
        magic[stem] = functools.partial(_redefine, magics.as_module, f"_{stem}_cell", edits)
    names = len(ip.user_ns)
    timings = {}
    ways = (("`cells.define` (the extension loaded)", define), ("`%%as_module`'s method", magic))
    for how, side in ways:
        side["new"](), side["old"]()  # the first definitions
        timings[f"{how}, {names} names in the notebook"] = paired(
            side["new"], side["old"], settings.pairs, settings.inner
        )
    many = notebook_values(10_000)
    ip.user_ns.update(many)
    try:
        timings[f"`%%as_module`'s method, {names + len(many):,} names in the notebook"] = paired(
            magic["new"], magic["old"], settings.pairs, settings.inner
        )
    finally:
        for key in many:
            del ip.user_ns[key]
    return timings


def _redefine(
    define: Callable[..., object], name: str, edits: Iterator[int], store: object = None
) -> None:
    """Define ``name`` from an edited source (a constant changes), as a user's cell."""
    source = functions(10) + f"_edit = {next(edits)}\n"
    if store is None:
        define(name, source)
    else:
        define(name, source, store=store)


def _other(stem: str, index: int) -> str:
    """The source of the ``index``-th other module: it imports the one before it."""
    head = "import math\n" + (f"from _{stem}_other_{index - 1} import f0\n" if index else "")
    return head + functions(10, index)


def dependents_rows(settings: Settings) -> list[Row]:
    """One redefinition that re-runs 10 dependents, against 11 definitions in a row (the
    bottom module edited, the 10 with their same source), as a notebook does it (the
    extension loaded: each module run again has the notebook's names rebound)."""
    shell()
    store = kernel_store()
    bottom = fresh_name("bottom")
    top = [fresh_name("dependent") for _ in range(10)]
    sources = {
        name: f"from {bottom} import f0, f1\nVALUE = f0(1) + f1(2)\n" + functions(10, index)
        for index, name in enumerate(top)
    }
    edits = itertools.count(2)
    cells.define(bottom, functions(10), store=store)
    for name, source in sources.items():
        cells.define(name, source, store=store)

    def together() -> None:
        cells.define(bottom, functions(10, next(edits)), store=store)

    def separately() -> None:
        cells.define(bottom, functions(10, next(edits)), store=store, rerun_dependents=False)
        for name, source in sources.items():
            cells.define(name, source, store=store, rerun_dependents=False)

    together()
    if cells.finder.modules[bottom].reran[-1].name != top[-1]:
        msg = f"the redefinition of {bottom} did not run its 10 dependents again"
        raise RuntimeError(msg)
    return [
        Row(
            what="redefining an edited 10-function cell module that 10 others import "
            "(`cells.define`, on-disk copies, the extension loaded)",
            candidate="1 definition, 10 re-run",
            baseline="11 definitions",
            timing=paired(together, separately, settings.pairs, settings.inner),
            goal=Goal(1.1),
            release=True,
        )
    ]


# A cell module of about 20 names, as ``%%as_module`` leaves them; VERSION changes.
MODULE = """\
import math
from collections import OrderedDict

LIMIT = 1000 + {version}
LABEL = "version {version}"
TABLE = [{version}, 2, 3]


class Model:
    scale = {version}


class Point(Model):
    pass

""" + functions(10).replace("+ 1", "+ {version}")


def rebind_rows(settings: Settings) -> list[Row]:
    """``rebind`` as the magics call it after a redefinition: the old and new namespaces
    of a ~20-name module, four of its objects held by notebook names among 10,000."""
    name = fresh_name("rebound")
    old, new = _namespace(name, 1), _namespace(name, 2)
    held = {"nb_f0": old["f0"], "nb_f1": old["f1"], "Model": old["Model"], "TABLE": old["TABLE"]}
    namespace = {**_ipython_names(), **notebook_values(10_000), **held}
    module = ModuleType(name)
    vars(module).update(new)
    # What the magics get: the old values that something besides the old namespace holds.
    before, after = (cells.Version.compile(name, MODULE.format(version=v)) for v in (1, 2))
    replacements = [cells.Replacement(name, outliving(old), module, before, after)]

    def candidate() -> None:
        namespace.update(held)  # as they were before this redefinition
        rebind(namespace, replacements)

    def baseline() -> None:
        namespace.update(held)
        for _key, _value in namespace.items():
            pass

    candidate()
    if namespace["nb_f0"] is not new["f0"] or namespace["Model"] is not new["Model"]:
        msg = f"rebind did not rebind {list(held)}"
        raise RuntimeError(msg)
    timing = paired(candidate, baseline, settings.pairs, settings.inner)
    return [
        Row(
            what=f"rebinding notebook names: {len(namespace):,} in the namespace, 4 of them "
            "holding objects of a ~20-name module's old version",
            candidate="binding.rebind",
            baseline="a loop over the namespace",
            timing=timing,
            value=statistics.median(timing.candidate),
            note=f"{timing.ratio:.2f}{RATIO} a plain loop over the namespace",
            goal=Goal(1e-3, "s", "value"),
            release=True,
        )
    ]


def _namespace(name: str, version: int) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": name, "__builtins__": builtins}
    exec(compile(MODULE.format(version=version), name, "exec"), namespace)
    return namespace


def _ipython_names() -> dict[str, object]:
    """What IPython puts in a notebook's namespace (history, In/Out)."""
    return {
        "_": None,
        "__": None,
        "___": None,
        "_i": "",
        "_ii": "",
        "_iii": "",
        "In": [],
        "Out": {},
    }


# 100 functions under imports of every form, one in a class body, one in a try block.
IMPORTS = """\
import os
import os.path as osp
import collections.abc
from functools import partial, reduce
from . import sibling
from .sibling import helper
from .. import upper
try:
    import numpy as np
except ImportError:
    np = None


class Config:
    from json import dumps

"""


def scan_rows(settings: Settings) -> list[Row]:
    """Where the dependency information comes from: the compiled code's IMPORT_NAME
    instructions (what ipyexecmod does), or one walk of an AST that is then compiled
    (the alternative the issue named), each against compiling the source."""
    name = "pipeline.stages.features"  # relative imports resolve against pipeline.stages
    source = IMPORTS + functions(100)
    filename = f"<{name}>"
    code = compile(source, filename, "exec", dont_inherit=True)
    expected = {"os", "os.path", "collections.abc", "functools", "numpy", "json"}
    relative = {"pipeline.stages.sibling.helper", "pipeline.upper"}
    if (
        not expected | relative <= imports_in(name, code, False)
        or _ast_imports(ast.parse(source)) != expected
    ):
        msg = "the two scans do not find the imports expected"
        raise RuntimeError(msg)

    def compile_source() -> None:
        compile(source, filename, "exec", dont_inherit=True)

    def scan() -> None:
        imports_in(name, code, False)

    def through_ast() -> None:
        tree = ast.parse(source)
        _ast_imports(tree)
        compile(tree, filename, "exec", dont_inherit=True)

    what = "the modules a 100-function cell imports"
    return [
        Row(
            what=f"{what}: scanning its compiled code (`imports_in`) ÷ compiling it",
            candidate="IMPORT_NAME scan",
            baseline="compile(source)",
            timing=(timing := paired(scan, compile_source, settings.pairs, settings.inner)),
            note=f"{timing.ratio:.3f}{RATIO}",  # near the goal: the digit that decides
            goal=Goal(0.05),
            release=True,
        ),
        Row(
            what=f"{what}, the alternative: parse, one AST walk, compile the tree ÷ compile "
            "the source",
            candidate="ast.parse + walk + compile(tree)",
            baseline="compile(source)",
            timing=paired(through_ast, compile_source, settings.pairs, settings.inner),
            goal=Goal(1.05),
        ),
    ]


def _ast_imports(tree: ast.AST) -> set[str]:
    """The absolute imports outside functions, in one walk (the code before issue 15 did
    this; relative ones are left out here, resolving them costs little)."""
    found: set[str] = set()
    nodes: list[ast.AST] = [tree]
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
        nodes.extend(ast.iter_child_nodes(node))
    return found
