"""ipyexecmod's warnings name the user's cell (or the core API's caller), not an ipyexecmod
line, and are shown each time, under the default filters (issue 14)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import pytest

import ipyexecmod
from ipyexecmod import cells
from ipyexecmod._warnings import warn
from ipyexecmod.lasting import lasting_store

PACKAGE = os.path.dirname(ipyexecmod.__file__)


@pytest.fixture
def default_filters() -> Iterator[list[warnings.WarningMessage]]:
    """Python's own filters (pytest's "always" would show a warning each time anyway),
    the warnings shown recorded."""
    with warnings.catch_warnings(record=True) as shown:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        yield shown


@pytest.fixture
def unwritable(tmp_path) -> str:
    """A lasting directory that cannot be made, even by root: a file is in its way."""
    (tmp_path / "a-file").write_text("")
    return str(tmp_path / "a-file" / "store")


def line_of(marker: str) -> int:
    """The line of this file that holds ``marker``."""
    with open(__file__, encoding="utf-8") as file:
        lines = file.read().splitlines()
    return 1 + next(i for i, line in enumerate(lines) if marker in line and "line_of" not in line)


def test_a_write_that_fails_twice_warns_twice_at_the_users_cell(
    ip, unique, unwritable, default_filters
):
    name = unique()
    for _ in range(2):
        result = ip.run_cell(f"%%as_module --persist-dir {unwritable} {name}\nX = 1\n")
        assert result.success
    could_not = [w for w in default_filters if "could not write" in str(w.message)]
    assert len(could_not) == 2, [str(w.message) for w in default_filters]
    for shown in could_not:
        assert shown.category is RuntimeWarning
        assert f"module {name!r} works in this process only" in str(shown.message)
        assert not shown.filename.startswith(PACKAGE)
        assert ip.compile.format_code_name(shown.filename)[0] == "Cell"  # the cell's In[N]


def test_from_the_core_api_the_warning_names_the_caller(unique, unwritable, default_filters):
    name = unique()
    store = lasting_store(unwritable)
    cells.finder.define(name, "X = 1\n", store=store)  # the line warned at
    cells.finder.define(name, "X = 2\n", store=store)
    lines = [(w.filename, w.lineno) for w in default_filters if "could not write" in str(w.message)]
    assert lines == [(__file__, line_of("the line warned at")), (__file__, line_of("X = 2"))]


def test_the_users_filters_still_apply(unique, unwritable):
    name = unique()
    store = lasting_store(unwritable)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("ignore")
        module = cells.finder.define(name, "X = 1\n", store=store)
    assert shown == [] and module.X == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # -W error
        with pytest.raises(RuntimeWarning, match="could not write"):
            cells.finder.define(name, "X = 2\n", store=store)


def test_a_failing_listener_warns_each_time_at_the_caller(unique, default_filters):
    name = unique()
    cells.finder.define(name, "def f():\n    pass\n")

    def failing(_name: str) -> None:
        raise LookupError("listener broke")

    cells.finder.listeners.append(failing)
    try:
        cells.finder.define(name, "def f():\n    return 2\n")  # first failing
        cells.finder.define(name, "def f():\n    return 3\n")
    finally:
        cells.finder.listeners.remove(failing)
    failed = [w for w in default_filters if "listener broke" in str(w.message)]
    assert [(w.filename, w.lineno) for w in failed] == [
        (__file__, line_of("first failing")),
        (__file__, line_of("return 3")),
    ]


def test_a_warning_from_the_machinery_alone_names_the_first_other_frame(default_filters):
    def from_contextlib() -> None:
        with warnings.catch_warnings():  # contextlib is not the user's code, this test is
            pass
        warn("plain", UserWarning)

    from_contextlib()
    from_contextlib()
    assert [(w.filename, w.lineno) for w in default_filters] == [
        (__file__, line_of('warn("plain"'))
    ] * 2


def test_a_definition_a_cell_module_makes_warns_at_the_cell(
    ip, unique, unwritable, default_filters
):
    """The copy of a module that a cell module's code defines is written when the outer
    definition commits: the warning names the cell that ran it."""
    inner, outer = unique("inner"), unique("outer")
    result = ip.run_cell(
        f"%%as_module {outer}\n"
        "from ipyexecmod import cells, lasting\n"
        f"cells.finder.define({inner!r}, 'X = 1\\n', store=lasting.lasting_store({unwritable!r}))\n"
    )
    assert result.success
    (shown,) = [w for w in default_filters if "could not write" in str(w.message)]
    assert f"module {inner!r}" in str(shown.message)
    assert ip.compile.format_code_name(shown.filename)[0] == "Cell"


def test_a_name_left_stale_is_warned_of_at_the_cell_each_time(ip, unique, default_filters):
    name = unique("sa")
    define_cell = f"%%as_module {name}\ndef f():\n    return 1\n\n\ndef gone():\n    return 0\n"
    ip.run_cell(define_cell).raise_error()
    ip.run_cell(f"from {name} import gone").raise_error()
    for body in ("def f():\n    return 2\n", "def f():\n    return 3\n"):
        ip.run_cell(f"%%as_module {name}\n{body}").raise_error()
    left = [w for w in default_filters if "what an earlier version" in str(w.message)]
    assert len(left) == 2, [str(w.message) for w in default_filters]
    assert all(ip.compile.format_code_name(w.filename)[0] == "Cell" for w in left)
