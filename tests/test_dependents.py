"""A redefinition brings its dependents and the notebook's names along, all or nothing."""

from __future__ import annotations

import itertools
import linecache
import os
import random
import signal
import sys
import threading
import types

import pytest
from helpers import HANG_GUARD, define, import_noting_the_wait
from hypothesis import given, settings
from hypothesis import strategies as st

from ipyexecmod import cells
from ipyexecmod.cells.dependents import Rerun, dependents


@pytest.fixture
def log():
    """A list each module of a test appends its name to as its code runs (not a cell module)."""
    module = types.ModuleType("_deps_log")
    module.runs = []  # type: ignore[attr-defined]
    sys.modules["_deps_log"] = module
    yield module.runs  # type: ignore[attr-defined]
    del sys.modules["_deps_log"]


def logged(name: str, body: str) -> str:
    return f"import _deps_log\n_deps_log.runs.append({name!r})\n{body}"


def test_the_issue_example_gives_the_new_version_everywhere(ip, unique, capsys):
    sa, sb = unique("sa"), unique("sb")
    define(ip, sa, "def f(x): return ('v1', x)\nclass C: v = 1\n")
    define(ip, sb, f"from {sa} import f\ndef g(x): return f(x)\n")
    ip.run_cell(f"from {sa} import f as nb_f\nC_alias = {sa}.C\n").raise_error()
    capsys.readouterr()
    define(ip, sa, "def f(x): return ('v2', x)\nclass C: v = 2\n")
    assert sys.modules[sb].g(1) == ("v2", 1)
    assert ip.user_ns["nb_f"](1) == ("v2", 1)
    assert ip.user_ns["C_alias"] is sys.modules[sa].C
    out = capsys.readouterr().out
    assert f"re-ran {sb} (it imports {sa})\n" in out
    assert "rebound in the notebook: nb_f, C_alias\n" in out


def test_a_chain_of_five_runs_again_in_order_each_once(ip, unique, log):
    names = [unique(f"c{i}") for i in range(5)]
    define(ip, names[0], logged(names[0], "V = 1\n"))
    for below, name in itertools.pairwise(names):
        define(ip, name, logged(name, f"from {below} import V as below\nV = below + 1\n"))
    log.clear()
    define(ip, names[0], logged(names[0], "V = 10\n"))
    assert log == names
    assert sys.modules[names[-1]].V == 14
    assert [rerun.name for rerun in cells.finder.get(names[0]).reran] == names[1:]


def test_a_diamond_runs_the_bottom_once_after_both_sides(ip, unique, log):
    top, left, right, bottom = (unique(s) for s in ("top", "left", "right", "bottom"))
    define(ip, top, logged(top, "V = 1\n"))
    define(ip, left, logged(left, f"import {top}\nV = {top}.V * 2\n"))
    define(ip, right, logged(right, f"from {top} import V as t\nV = t * 3\n"))
    define(
        ip,
        bottom,
        logged(bottom, f"from {left} import V as l\nfrom {right} import V as r\nV = l + r\n"),
    )
    log.clear()
    define(ip, top, logged(top, "V = 10\n"))
    assert log == [top, left, right, bottom]
    assert sys.modules[bottom].V == 50
    reran = cells.finder.get(top).reran
    assert reran[-1] == Rerun(bottom, tuple(sorted((left, right))))


def test_relative_imports_in_a_package_bring_their_dependents(ip, unique):
    package = unique("pkg")
    define(ip, f"{package}.base", "X = 1\n")
    define(ip, f"{package}.user", "from .base import X\nY = X * 10\n")
    define(ip, f"{package}.sibling", "from . import base\nZ = base.X + 1\n")
    define(ip, f"{package}.base", "X = 2\n")
    assert sys.modules[f"{package}.user"].Y == 20
    assert sys.modules[f"{package}.sibling"].Z == 3


def test_a_cycle_of_dependents_runs_once_each(ip, unique, log):
    sa, sb, sc = unique("sa"), unique("sb"), unique("sc")
    define(ip, sa, logged(sa, "V = 1\n"))
    define(ip, sb, logged(sb, f"import {sa}\nV = {sa}.V\n"))
    define(ip, sc, logged(sc, f"import {sb}, {sa}\nV = {sa}.V\n"))
    define(
        ip, sb, logged(sb, f"import {sa}, {sc}\nV = {sa}.V\n")
    )  # now sb and sc import each other
    log.clear()
    define(ip, sa, logged(sa, "V = 2\n"))
    assert sorted(log) == sorted([sa, sb, sc]) and log[0] == sa
    assert sys.modules[sb].V == sys.modules[sc].V == 2


def test_imports_inside_functions_are_not_dependencies(ip, unique, log):
    sa, sb = unique("sa"), unique("sb")
    define(ip, sa, "V = 1\n")
    define(ip, sb, logged(sb, f"def late():\n    from {sa} import V\n    return V\n"))
    log.clear()
    define(ip, sa, "V = 2\n")
    assert log == []
    assert sys.modules[sb].late() == 2


def snapshot(names: list[str]) -> dict[str, object]:
    """What must come back after a failed set: objects, namespaces, files, lines."""
    state: dict[str, object] = {}
    for name in names:
        module = sys.modules[name]
        state[name] = (module, dict(vars(module)))
        path = module.__file__
        with open(path, "rb") as file:
            state[f"{name} file"] = file.read()
        state[f"{name} lines"] = list(linecache.getlines(cells.finder.get(name).version.filename))
    return state


def test_a_failing_dependent_puts_the_whole_set_back(ip, unique, capsys):
    sa, sb, sc = unique("sa"), unique("sb"), unique("sc")
    define(ip, sa, "def f(): return 1\n")
    define(ip, sb, f"from {sa} import f\nV = f()\n")
    define(
        ip, sc, f"from {sb} import V\nif V == 2:\n    raise ValueError('sc cannot take 2')\nW = V\n"
    )
    ip.run_cell(f"from {sa} import f as nb_f\n").raise_error()
    before = snapshot([sa, sb, sc])
    nb_f = ip.user_ns["nb_f"]
    capsys.readouterr()
    result = ip.run_cell(f"%%as_module {sa}\ndef f(): return 2\n")
    error = result.error_in_exec
    assert isinstance(error, ValueError) and str(error) == "sc cannot take 2"
    assert error.__notes__ == [
        f"ipyexecmod: this was raised by cell module {sc!r}, run again because it imports "
        f"{sb}; {sa!r} and every module run again for it are back as they were"
    ]
    assert error.__traceback__ is not None  # the dependent's own traceback
    assert snapshot([sa, sb, sc]) == before
    assert ip.user_ns["nb_f"] is nb_f and nb_f() == 1
    assert sys.modules[sa].f() == 1 and sys.modules[sc].W == 1
    assert "re-ran" not in capsys.readouterr().out


def test_ctrl_c_during_a_dependent_puts_the_whole_set_back(ip, unique):
    sa, sb = unique("sa"), unique("sb")
    define(ip, sa, "V = 1\n")
    define(
        ip,
        sb,
        f"import os, signal, time\nfrom {sa} import V\nif V == 2:\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n    time.sleep(600)\nW = V\n",
    )
    before = snapshot([sa, sb])
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            cells.define(sa, "V = 2\n", store=cells.finder.get(sa).version.store)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert snapshot([sa, sb]) == before
    assert sys.modules[sb].W == 1


@pytest.mark.parametrize("how", ["option", "trait"])
def test_no_deps_leaves_the_dependents_as_they_are(ip, unique, capsys, how):
    sa, sb = unique("sa"), unique("sb")
    define(ip, sa, "V = 1\n")
    define(ip, sb, f"from {sa} import V\n")
    capsys.readouterr()
    if how == "option":
        define(ip, sa, "V = 2\n", "--no-deps")
    else:
        ip.run_line_magic("config", "ExecModMagics.rerun_dependents = False")
        define(ip, sa, "V = 2\n")
    assert sys.modules[sb].V == 1
    assert cells.finder.get(sa).reran == ()
    assert "re-ran" not in capsys.readouterr().out


def test_reload_module_runs_the_dependents_again(ip, unique, log, capsys):
    sa, sb = unique("sa"), unique("sb")
    define(ip, sa, logged(sa, "import itertools\nV = next(itertools.count(1))\n"))
    define(ip, sb, logged(sb, f"from {sa} import V\n"))
    log.clear()
    capsys.readouterr()
    ip.run_line_magic("reload_module", sa)
    assert log == [sa, sb]
    assert f"re-ran {sb} (it imports {sa})" in capsys.readouterr().out
    log.clear()
    ip.run_line_magic("reload_module", f"{sa} --no-deps")
    assert log == [sa]


def test_names_follow_unless_the_trait_is_off_and_a_name_with_no_counterpart_warns(ip, unique):
    sa = unique("sa")
    define(ip, sa, "def f(): return 1\ndef gone(): return 0\nLIMIT = 5\nRATE = 0.25\nT = [1]\n")
    for name in ("gone", "kept"):  # the names are told in the notebook's order: theirs here
        ip.user_ns.pop(name, None)
    ip.run_cell(
        f"from {sa} import *\nmine = 5\nkept = gone\nfrom {sa} import RATE as r, T as t\n"
    ).raise_error()
    with pytest.warns(RuntimeWarning, match=rf"^gone, kept hold what an earlier version of '{sa}'"):
        define(ip, sa, "def f(): return 2\nLIMIT = 6\nRATE = 0.5\nT = [2]\n")
    ns = ip.user_ns
    assert ns["f"]() == 2 and ns["RATE"] == 0.5 and ns["T"] == ns["t"] == [2]
    assert ns["r"] == 0.25  # a number is followed under its own name only
    assert ns["mine"] == 5 and ns["LIMIT"] == 5  # a shared small int: cannot tell, left
    ip.run_line_magic("config", "ExecModMagics.rebind_names = False")
    define(ip, sa, "def f(): return 3\n")
    assert ns["f"]() == 2


def test_the_magics_stop_rebinding_once_unloaded(ip, unique):
    sa = unique("sa")
    define(ip, sa, "def f(): return 1\n")
    ip.run_cell(f"from {sa} import f as nb_f\n").raise_error()
    ip.run_line_magic("unload_ext", "ipyexecmod")
    try:
        assert cells.finder.replacement_listeners == []
        cells.define(sa, "def f(): return 2\n")
        assert ip.user_ns["nb_f"]() == 1
    finally:
        ip.run_line_magic("load_ext", "ipyexecmod")


def test_dependents_are_listed_in_order_from_the_registry():
    def record(source: str) -> cells.CellModule:
        return cells.CellModule(cells.Version.compile("_dep_x", source))

    modules = {
        "a": record("X = 1\n"),
        "b": record("import a\n"),
        "c": record("from b import y\nimport a\n"),
        "d": record("def f():\n    import c\n"),
    }
    assert dependents(modules, "a") == [Rerun("b", ("a",)), Rerun("c", ("a", "b"))]
    assert dependents(modules, "d") == []


def test_a_module_that_nothing_imports_reruns_nothing(ip, unique, capsys):
    sa = unique("sa")
    define(ip, sa, "V = 1\n")
    capsys.readouterr()
    define(ip, sa, "V = 2\n")
    assert cells.finder.get(sa).reran == ()
    assert capsys.readouterr().out == ""
    assert os.path.exists(sys.modules[sa].__file__)


# -- random graphs: the set always ends as defining the latest sources afresh would --

_graphs = itertools.count()


@st.composite
def histories(
    draw: st.DrawFn,
) -> tuple[list[frozenset[int]], list[tuple[int, frozenset[int], int, bool]]]:
    """Modules 0..n-1 whose imports point to lower numbers (a DAG), and a series of
    redefinitions ``(module, imports, version, fails)``; a negative version poisons:
    every module that imports it raises as it runs."""
    count = draw(st.integers(2, 8))

    def imports(module: int) -> st.SearchStrategy[frozenset[int]]:
        return (
            st.frozensets(st.integers(0, module - 1), max_size=3)
            if module
            else st.just(frozenset())
        )

    graph = [draw(imports(module)) for module in range(count)]
    steps = []
    for number in range(1, draw(st.integers(1, 8)) + 1):
        module = draw(st.integers(0, count - 1))
        steps.append(
            (
                module,
                draw(imports(module)),
                -number if draw(st.booleans()) and draw(st.booleans()) else number,
                draw(st.integers(0, 5)) == 0,
            )
        )
    return graph, steps


def graph_source(
    module: int, imports: frozenset[int], version: int, names: list[str], fails: bool
) -> str:
    lines = [f"from {names[j]} import V as v{j}" for j in sorted(imports)]
    needed = ", ".join(f"v{j}" for j in sorted(imports))
    lines.append(f"V = ({module}, {version}, ({needed}{',' if imports else ''}))")
    lines.append(
        "if any(v[1] < 0 for v in V[2]):\n    raise ValueError('imports a poisoned version')"
    )
    if fails:
        lines.append("raise RuntimeError('this version fails')")
    return "\n".join(lines) + "\n"


def fresh_values(graph: list[frozenset[int]], versions: list[int]) -> list[tuple] | None:
    """Every module's V if each were defined afresh in order; ``None`` if one would raise."""
    values: list[tuple] = []
    for module, imports in enumerate(graph):
        needed = tuple(values[j] for j in sorted(imports))
        if any(value[1] < 0 for value in needed):
            return None
        values.append((module, versions[module], needed))
    return values


@settings(max_examples=60)
@given(histories())
def test_random_graphs_end_as_the_latest_sources_defined_afresh_or_as_they_were(history):
    graph, steps = history
    names = [f"_deps_graph{next(_graphs)}_{module}" for module in range(len(graph))]
    versions = [0] * len(graph)
    try:
        for module, imports in enumerate(graph):
            cells.define(names[module], graph_source(module, imports, 0, names, False))
        for module, imports, version, fails in steps:
            before = [(sys.modules[n], dict(vars(sys.modules[n]))) for n in names]
            new_graph = [*graph[:module], imports, *graph[module + 1 :]]
            new_versions = [*versions[:module], version, *versions[module + 1 :]]
            expected = None if fails else fresh_values(new_graph, new_versions)
            try:
                cells.define(names[module], graph_source(module, imports, version, names, fails))
            except (ValueError, RuntimeError):
                assert expected is None
                assert [(sys.modules[n], dict(vars(sys.modules[n]))) for n in names] == before
            else:
                assert expected is not None
                graph, versions = new_graph, new_versions
                assert [sys.modules[n].V for n in names] == expected
    finally:
        for name in names:
            sys.modules.pop(name, None)


def test_an_import_of_a_dependent_waits_for_the_whole_set(unique):
    sa, sb = unique("sa"), unique("sb")
    cells.define(sa, "TAG = 0\n")
    cells.define(sb, f"from {sa} import TAG\n")
    ready, waiting = threading.Event(), threading.Event()
    outcome: list[object] = []

    def importer() -> None:
        ready.wait()
        try:
            outcome.append(import_noting_the_wait(sb, waiting).TAG)  # type: ignore[attr-defined]
        finally:
            waiting.set()  # whatever happened, the definition goes on

    thread = threading.Thread(target=importer)
    thread.start()
    sys.modules["_deps_ready"], sys.modules["_deps_waiting"] = ready, waiting  # type: ignore[assignment]
    try:  # sa's new code runs until the importer of sb is in ipyexecmod's wait (or past it)
        cells.define(
            sa,
            "import sys\nsys.modules['_deps_ready'].set()\n"
            f"sys.modules['_deps_waiting'].wait({HANG_GUARD})\nTAG = 1\n",
        )
    finally:
        del sys.modules["_deps_ready"], sys.modules["_deps_waiting"]
        ready.set()
        thread.join()
    assert outcome == [1]  # not sb's old TAG, read while sa was half way


def test_in_a_real_kernel_the_new_version_is_everywhere_or_nowhere(tmp_path):
    from kernels import execute_text, kernel_running

    cells_in_order = [
        ("%load_ext ipyexecmod", ""),
        ("%%as_module sa\ndef f(x): return ('v1', x)\nclass C: v = 1\n", ""),
        ("%%as_module sb\nfrom sa import f\ndef g(x): return f(x)\n", ""),
        ("from sa import f as nb_f\nprint(sb.g(1), nb_f(1))", "('v1', 1) ('v1', 1)\n"),
        (
            "%%as_module sa\ndef f(x): return ('v2', x)\nclass C: v = 2\n",
            "re-ran sb (it imports sa)\nrebound in the notebook: nb_f\n",
        ),
        ("print(sb.g(1), nb_f(1))", "('v2', 1) ('v2', 1)\n"),
        ("%%as_module sc\nfrom sb import g\nassert g(0)[0] != 'v3', 'sc refuses v3'\n", ""),
    ]
    with kernel_running(tmp_path / "ipython") as (_, client):
        for cell, expected in cells_in_order:
            reply, shown = execute_text(client, cell)
            assert reply["status"] == "ok", (cell, reply)
            assert shown == expected, cell
        reply, shown = execute_text(client, "%%as_module sa\ndef f(x): return ('v3', x)\n")
        assert reply["status"] == "error" and reply["ename"] == "AssertionError"
        assert "sc refuses v3" in shown
        reply, shown = execute_text(
            client,
            "import pathlib\nprint(sb.g(1), nb_f(1), sa.C.v,"
            " 'v2' in pathlib.Path(sa.__file__).read_text())",
        )
        assert shown == "('v2', 1) ('v2', 1) 2 True\n"


SLOW_DEPENDENT = """\
%%as_module kb
from ka import V
W = V
if V > 1:
    print("running", flush=True)
    for i in range(10**9):  # long enough to be interrupted anywhere
        STEP = i
"""


def test_ctrl_c_during_a_dependent_in_a_real_kernel_puts_the_whole_set_back(tmp_path):
    from kernels import execute, kernel_running, run_and_interrupt, stream

    random.seed(15)
    with kernel_running(tmp_path / "ipython") as (manager, client):
        for cell in ("%load_ext ipyexecmod", "%%as_module ka\nV = 1\n", SLOW_DEPENDENT):
            assert execute(client, cell)[0]["status"] == "ok"
        for attempt in range(4):
            code = f"%%as_module ka\nV = {2 + attempt}\n"
            reply = run_and_interrupt(manager, client, code, random.uniform(0, 0.2))
            assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply
            reply, messages = execute(
                client,
                "import pathlib\nprint(ka.V, kb.V, kb.W, hasattr(kb, 'STEP'),"
                " pathlib.Path(ka.__file__).read_text())",
            )
            assert stream(messages) == "1 1 1 False V = 1\n\n", (attempt, reply)


def test_rebind_tells_apart_values_of_the_same_name_in_two_modules():
    from ipyexecmod.binding import rebind

    a, b = types.ModuleType("a"), types.ModuleType("b")
    a.RATE, b.RATE = float("0.5"), float("0.875")  # type: ignore[attr-defined]
    old_a, old_b = {"RATE": float("0.25")}, {"RATE": float("0.75")}
    namespace = {"RATE": old_a["RATE"]}
    replacements = []
    for module, old in ((a, old_a), (b, old_b)):
        version = cells.Version.compile(module.__name__, "RATE = 0.5\n")
        replacements.append(cells.Replacement(module.__name__, old, module, version, version))
    assert rebind(namespace, replacements) == (["RATE"], [])
    assert namespace["RATE"] == 0.5


def test_a_cycle_is_broken_at_the_member_that_imports_the_redefined_module(ip, unique):
    base, cy1, cy2 = unique("base"), unique("cy1"), unique("cy2")
    define(ip, base, "V = 1\n")
    define(ip, cy1, f"from {base} import V\n")
    define(ip, cy2, f"from {cy1} import V as W\n")
    define(ip, cy1, f"from {base} import V\nimport {cy2}\n")  # now cy1 and cy2 import each other
    define(ip, base, "V = 5\n")
    assert [rerun.name for rerun in cells.finder.get(base).reran] == [cy1, cy2]
    assert sys.modules[cy1].V == sys.modules[cy2].W == 5


def test_a_submodules_relative_import_does_not_make_it_depend_on_its_package(ip, unique, log):
    package = unique("pkg")
    define(ip, f"{package}.a", "def f():\n    return 'a'\n")
    define(ip, f"{package}.b", logged(f"{package}.b", "from .a import f\n"))
    log.clear()
    define(ip, package, "from .a import f\n")  # the package itself gets a cell
    assert log == []
    assert cells.finder.get(package).reran == ()


def test_the_notebooks_own_imports_are_not_rebound(ip, unique):
    sa = unique("sa")
    ip.run_cell("from math import sqrt, pi\nimport collections\nOD = collections.OrderedDict\n")
    define(ip, sa, "from math import sqrt as root, pi\nfrom collections import OrderedDict as M\n")
    define(ip, sa, "from math import cbrt as root\npi = 3.0\nM = dict\n")
    ns = ip.user_ns
    assert ns["sqrt"](16) == 4.0 and ns["pi"] > 3.14 and ns["OD"].__name__ == "OrderedDict"


def test_names_from_versions_before_the_previous_one_follow_too(ip, unique):
    sa = unique("sa")
    define(ip, sa, "def f():\n    return 1\n\n\nclass C:\n    pass\n")
    ip.run_cell(f"from {sa} import f\nC0 = {sa}.C\n").raise_error()
    ip.run_line_magic("config", "ExecModMagics.rebind_names = False")
    define(ip, sa, "def f():\n    return 2\n\n\nclass C:\n    pass\n")
    ip.run_line_magic("config", "ExecModMagics.rebind_names = True")
    define(ip, sa, "def f():\n    return 3\n\n\nclass C:\n    pass\n")
    assert ip.user_ns["f"]() == 3 and ip.user_ns["C0"] is sys.modules[sa].C


def test_a_definition_by_cells_define_in_a_cell_says_what_it_rebound_at_once(ip, unique, capsys):
    sa, sb = unique("sa"), unique("sb")
    define(ip, sa, "def f():\n    return 1\n")
    ip.run_cell(f"from {sa} import f as nb_f\n").raise_error()
    capsys.readouterr()
    ip.run_cell(f"import ipyexecmod.cells as c\n_m = c.define({sa!r}, 'def f(): return 2')")
    assert capsys.readouterr().out == "rebound in the notebook: nb_f\n"
    define(ip, sb, "X = 1\n")  # a later, unrelated cell reports nothing of it
    assert capsys.readouterr().out == ""
