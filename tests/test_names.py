"""ipyexecmod.cells.names on its own: which names a cell may take."""

from __future__ import annotations

import sys

import pytest

from ipyexecmod.cells import CellModuleFinder, DefinitionError, check_module_name, names
from ipyexecmod.lasting import LastingStore


@pytest.mark.parametrize(
    ("name", "part"),
    [("1geo", "'1geo'"), ("a..b", "empty part"), ("class", "'class'"), ("ﬁle", "'file'")],
)
def test_bad_names_name_the_bad_part(name, part):
    with pytest.raises(DefinitionError, match=part):
        check_module_name(name)


def test_a_module_of_another_origin_is_refused_forceably():
    with pytest.raises(DefinitionError, match=r"'json' is already imported, from '.*json") as info:
        names.check_available(CellModuleFinder(), "json")
    assert info.value.forceable


def test_a_module_on_sys_path_is_refused_and_one_in_our_store_is_not(tmp_path, monkeypatch):
    (tmp_path / "_names_onpath.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    finder = CellModuleFinder()
    with pytest.raises(DefinitionError, match=r"can be imported from .*_names_onpath\.py"):
        names.check_available(finder, "_names_onpath")
    finder.stores.append(LastingStore(tmp_path))  # a lasting store that did not write it
    with pytest.raises(DefinitionError, match=r"can be imported from .*_names_onpath\.py"):
        names.check_available(finder, "_names_onpath")
    (tmp_path / "_names_onpath.py").unlink()
    finder.stores[0].write("_names_onpath", "X = 1\n", compile("", "", "exec"), is_package=False)
    names.check_available(finder, "_names_onpath")  # a copy of ours: no refusal
    assert "_names_onpath" not in sys.modules


def test_hides_says_where_the_hidden_module_is(tmp_path, monkeypatch):
    finder = CellModuleFinder()
    assert finder.hides("_names_nowhere_at_all") is None
    assert finder.hides("json").endswith("__init__.py")


def test_module_origin_of_a_frozen_module_is_its_file():
    import os

    assert names.module_origin(os) == os.__file__
    assert names.module_origin(sys) == "built-in"
    assert names.module_origin(object()) == ""
