"""Property-based: any name and any source give a module or a documented error, never a
partial module; and a valid cell runs as C's PyImport_ExecCodeModuleObject runs it."""

from __future__ import annotations

import itertools
import sys
import traceback
import types
from typing import Any

import pytest
from differential import PREFIX
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_properties import identifiers, module_sources

from ipyexecmod import capi
from ipyexecmod.cells import CellModuleFinder, DefinitionError

_serial = itertools.count()

names = st.one_of(
    # Fresh valid names, dotted or not.
    st.lists(identifiers, min_size=1, max_size=3).map(
        lambda parts: PREFIX + "p_" + ".".join(parts)
    ),
    # Any text at all: keywords, digits, dots, spaces, surrogates, names of real modules.
    st.text(max_size=12),
    st.lists(
        st.sampled_from(["", "class", "1x", "ok", "é", "ﬁ", " ", "os", "sys"]), max_size=4
    ).map(".".join),
)
sources = st.one_of(
    module_sources(),
    st.text(max_size=40),  # mostly not Python; null bytes and lone surrogates too
    st.sampled_from(
        ["", "# only a comment\n", "x = (\n", "  x = 1\n", "return 1\n", "yield 1\n", "await f()\n"]
    ),
)

#: What a definition may raise when the name or the text is bad, before any code runs.
REFUSALS = (DefinitionError, SyntaxError, ValueError)


def attributes(module: types.ModuleType) -> dict[str, Any]:
    """The module's names and what they hold (functions called, classes' attribute read)."""
    described: dict[str, Any] = {}
    for key, value in vars(module).items():
        if key.startswith("__") or key.startswith("seen_"):
            continue  # the dunders differ by design: a cell module has a real spec and loader
        if isinstance(value, types.FunctionType):
            value = ("function", value.__qualname__, value())
        elif isinstance(value, type):
            value = ("class", value.__qualname__, vars(value).get("attr"))
        described[key] = value
    return described


@pytest.fixture
def finder():
    """A finder of its own, on sys.meta_path for the test only."""
    finder = CellModuleFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)
        for name, module in list(sys.modules.items()):
            if finder.owns(module):
                del sys.modules[name]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(names, sources)
def test_any_name_and_source_give_a_module_or_a_documented_error(finder, name, source):
    modules, records = dict(sys.modules), finder.records()
    filename = f"ipyexecmod:{name}@"
    try:
        module = finder.define(name, source)
    except BaseException as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        if not any(frame.filename.startswith(filename) for frame in frames):
            # Refused before any code ran: a bad name, or text that is not Python
            # (null bytes are a ValueError on 3.11, lone surrogates a UnicodeEncodeError).
            assert isinstance(exc, REFUSALS), exc
            if type(exc) is ValueError:
                assert "null bytes" in str(exc)
        # Whether refused or raised by the cell's code, nothing of it stays.
        assert dict(sys.modules) == modules
        assert finder.records() == records
        event(f"failed: {type(exc).__name__}")
        return
    assert sys.modules[name] is module and finder.owns(module)
    parts = name.split(".")
    for depth in range(1, len(parts)):
        parent = sys.modules[".".join(parts[:depth])]
        assert finder.owns(parent) and hasattr(parent, "__path__")
        child = ".".join(parts[: depth + 1])
        if depth < len(parts) - 1 and child in modules:
            # A package an earlier example defined is not bound on its parent again, as
            # an import of a submodule does not: the parent's own code may have bound
            # the name to something else since (a `_p_A` whose code says `A = 0`).
            continue
        assert getattr(parent, parts[depth]) is sys.modules[child]
    event("defined" + (" (dotted)" if len(parts) > 1 else ""))
    # Nothing else changed.
    assert {k: v for k, v in sys.modules.items() if k in modules} == modules


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(module_sources())
def test_a_valid_cell_runs_as_c_runs_it(finder, source):
    number = next(_serial)
    cell_name, c_name = f"{PREFIX}cell{number}", f"{PREFIX}c{number}"
    outcomes = []
    for run in (
        lambda: finder.define(cell_name, source),
        lambda: capi.exec_code_module_object(
            c_name, compile(source, "<generated>", "exec", dont_inherit=True)
        ),
    ):
        try:
            module = run()
        except (Exception, SystemExit) as exc:  # both must raise the same
            outcomes.append(("raised", type(exc).__name__, str(exc)))
            continue
        try:
            outcomes.append(("module", attributes(module)))
        except Exception as exc:  # a function of it raised when called (`return inf`)
            outcomes.append(("module", type(exc).__name__, str(exc)))
    sys.modules.pop(c_name, None)
    assert outcomes[0] == outcomes[1]
    assert (cell_name in sys.modules) == (outcomes[0][0] == "module")
