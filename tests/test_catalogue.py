"""Every case of the bad-input catalogue, run as a notebook cell in a real InteractiveShell.

A cell that fails must raise exactly the catalogued error with its message, and
change nothing: sys.modules, the user namespace, sys.path, sys.meta_path, the
registry of cell modules, and the good modules (namespace and source lines) stay
as they were.  A cell that works, however odd, must leave the good modules alone.
"""

from __future__ import annotations

import itertools
import linecache
import re
import sys
import warnings
from typing import Any

import pytest
from catalogue import CASES, GOOD, Case

from ipyexecmod import cells

_worlds = itertools.count()


@pytest.fixture(scope="module")
def world(shell):
    """The good modules, defined once; no case may change them."""
    names = {"good": f"_good{next(_worlds)}", "pkg": f"_goodpkg{next(_worlds)}"}
    shell.run_line_magic("load_ext", "ipyexecmod")
    try:
        # What IPython imports the first time it shows each kind of error, imported now.
        for cell in ("1 / 0", "x = = 1", "%lsmod --bogus", "%%as_module ?\n"):
            assert not shell.run_cell(cell).success
        for name, source in GOOD.items():
            result = shell.run_cell(f"%%as_module {name.format(**names)}\n{source}")
            assert result.success, result
    finally:
        shell.run_line_magic("unload_ext", "ipyexecmod")
    return names


def good_modules(names: dict[str, str]) -> list[str]:
    return [name.format(**names) for name in GOOD] + [names["pkg"]]


def snapshot(ip, names: dict[str, str]) -> dict[str, Any]:
    """All that a failed cell must leave as it was."""
    modules = {name: sys.modules[name] for name in good_modules(names)}
    return {
        "sys.modules": dict(sys.modules),
        "user namespace": dict(ip.user_ns),
        "sys.path": (sys.path, list(sys.path)),
        "sys.meta_path": (sys.meta_path, list(sys.meta_path)),
        "registry": [
            (r.name, r.loader, r.implicit, r.redefinitions) for r in cells.finder.records()
        ],
        "good namespaces": {name: dict(vars(module)) for name, module in modules.items()},
        "good lines": {
            name: linecache.getlines(module.__file__) for name, module in modules.items()
        },
    }


def assert_good_modules_intact(names: dict[str, str]) -> None:
    good = sys.modules[names["good"]]
    assert (good.VALUE, good.f()) == ("good", "good")
    assert sys.modules[names["pkg"] + ".sub"].SUB == "good"
    for name in good_modules(names):
        assert cells.finder.owns(sys.modules[name]), name


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_catalogue(ip, world, unique, case: Case):
    names = {**world, "name": unique(case.id.replace("-", "_")[:20])}
    setup, source, check = case.cells(**names)
    for cell in setup:
        assert ip.run_cell(cell).success, cell
    before = snapshot(ip, world)
    before_modules = before["sys.modules"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = ip.run_cell(source)
    error = result.error_before_exec or result.error_in_exec
    if case.error is None:
        assert error is None, error
        assert eval(check, {"sys": sys}, ip.user_ns), check
        if case.warns is not None:
            messages = [str(warning.message) for warning in caught]
            assert any(re.search(case.warns.format(**names), m) for m in messages), messages
    else:
        assert type(error).__name__ == case.error, repr(error)
        assert re.search(case.match.format(**names), str(error)), str(error)
        after = snapshot(ip, world)
        modules = after.pop("sys.modules")
        assert {name: modules[name] for name in before.pop("sys.modules")} == before_modules
        for key, value in before.items():
            assert after[key] == value, key
        # Anything new was imported by IPython to show the error, none of it by the case.
        assert not [n for n in set(modules) - set(before_modules) if n.startswith(names["name"])]
    assert_good_modules_intact(world)


def test_the_catalogue_is_complete():
    failing = [case for case in CASES if case.error is not None]
    assert len(failing) >= 40
    assert {case.error for case in failing} >= {
        "UsageError", "SyntaxError", "SystemExit", "KeyboardInterrupt", "GeneratorExit",
        "ImportError", "ModuleNotFoundError", "IndentationError",
    }  # fmt: skip
