"""%%as_module in a real InteractiveShell: what a notebook user does, cell by cell."""

from __future__ import annotations

import gc
import importlib
import importlib.util
import inspect
import linecache
import os
import pickle
import re
import sys
import traceback

import pytest
from helpers import define
from IPython.core.error import UsageError

from ipyexecmod import cells

GEO = """\
'''Geometry, from a cell.'''
VERSION = 1


def area(r):
    return 3 * r * r


class Point:
    def __init__(self, x):
        self.x = x


def fail():
    raise RuntimeError("failing on purpose")
"""


def plain(text: str) -> str:
    """``text`` without the ANSI colour codes of IPython's tracebacks."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# -- names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("1geo", "'1geo' that is not a Python identifier"),
        ("geo-metry", "'geo-metry' that is not a Python identifier"),
        ("a..b", "empty part"),
        (".a", "empty part"),
        ("a.", "empty part"),
        ("class", "'class' that is a Python keyword"),
        ("pkg.def", "'def' that is a Python keyword"),
        ("ﬁle", "Python would import as 'file'"),
        ("'quoted'", "not a Python identifier"),
    ],
)
def test_bad_names_are_refused_naming_the_part(ip, name, message):
    before = set(sys.modules)
    with pytest.raises(UsageError, match=message) as caught:
        ip.run_cell_magic("as_module", name, "x = 1\n")
    assert type(caught.value) is UsageError
    assert set(sys.modules) == before


def test_missing_name_and_unknown_options_are_usage_errors(ip):
    with pytest.raises(UsageError, match="required: name"):
        ip.run_cell_magic("as_module", "", "x = 1\n")
    with pytest.raises(UsageError, match="unrecognized arguments: --bogus"):
        ip.run_cell_magic("as_module", "geo --bogus", "x = 1\n")


def test_empty_cell_is_refused(ip, unique):
    name = unique()
    with pytest.raises(UsageError, match=f"the cell is empty: write the code of module '{name}'"):
        ip.run_cell_magic("as_module", name, "  \n\n")
    assert name not in sys.modules


# -- a cell becomes a module ---------------------------------------------------------------


def test_cell_becomes_an_importable_module(ip, unique):
    name = unique("geo")
    module = define(ip, name, GEO)
    assert sys.modules[name] is module
    assert importlib.import_module(name) is module
    assert module.area(2) == 12
    assert module.__doc__ == "Geometry, from a cell."
    # import in a later cell, and from another module
    assert ip.run_cell(f"import {name} as again\nresult = again.area(3)").success
    assert ip.user_ns["result"] == 27
    other = define(
        ip, unique("user"), f"import {name}\n\ndef twice(r):\n    return 2 * {name}.area(r)\n"
    )
    assert other.twice(1) == 6


def test_find_spec_and_module_attributes(ip, unique):
    name = unique("geo")
    module = define(ip, name, GEO)
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.name == name
    assert spec.loader is module.__loader__ is module.__spec__.loader
    assert spec.origin == module.__file__
    # The code's filename is this version's own, named after the file (see test_lines.py).
    assert module.area.__code__.co_filename == cells.finder.modules[name].version.filename
    assert module.area.__code__.co_filename == f"{module.__file__}@1"
    assert module.__file__.endswith(f"{name}.py")  # the on-disk copy
    assert module.__cached__ == importlib.util.cache_from_source(module.__file__)
    assert module.__package__ == ""
    assert sys.meta_path[0] is cells.finder
    assert cells.finder.find_spec("_not_a_cell_module_at_all") is None


def test_compiled_without_the_notebooks_future_flags(ip, unique):
    assert ip.run_cell("from __future__ import annotations").success
    module = define(ip, unique(), "def f(x: int) -> int:\n    return x\n")
    assert module.f.__annotations__ == {"x": int, "return": int}  # evaluated: no leak in
    define(ip, unique(), "from __future__ import annotations\n\ndef g(x: int): pass\n")
    ip.compile.reset_compiler_flags()
    assert ip.run_cell("def h(x: int): pass").success
    assert ip.user_ns["h"].__annotations__ == {"x": int}  # and no leak out


def test_reload_reexecutes_the_latest_source_in_the_same_object(ip, unique):
    name = unique("geo")
    module = define(ip, name, GEO)
    module.area = None
    assert importlib.reload(module) is module
    assert module.area(1) == 3
    define(ip, name, GEO.replace("3 * r * r", "4 * r * r"))
    assert importlib.reload(module) is module
    assert module.area(1) == 4


def test_getsource_of_function_class_and_module(ip, unique):
    module = define(ip, unique("geo"), GEO)
    assert inspect.getsource(module.area) == "def area(r):\n    return 3 * r * r\n"
    assert inspect.getsource(module.Point).startswith("class Point:\n    def __init__(self, x):")
    assert inspect.getsource(module) == GEO


def test_getsource_survives_clearing_linecache(ip, unique):
    module = define(ip, unique("geo"), GEO)
    linecache.clearcache()
    assert inspect.getsource(module.area) == "def area(r):\n    return 3 * r * r\n"
    assert inspect.getsource(module.Point).startswith("class Point:")


def test_traceback_shows_the_cells_lines(ip, unique, capsys):
    name = unique("geo")
    module = define(ip, name, GEO)
    with pytest.raises(RuntimeError) as caught:
        module.fail()
    frame = traceback.extract_tb(caught.tb)[-1]
    assert (frame.filename, frame.lineno) == (f"{module.__file__}@1", 15)  # the version's own
    assert frame.line == 'raise RuntimeError("failing on purpose")'
    # and as IPython shows it
    result = ip.run_cell(f"{name}.fail()")
    assert isinstance(result.error_in_exec, RuntimeError)
    shown = plain(capsys.readouterr().out)
    assert 'raise RuntimeError("failing on purpose")' in shown
    # the module's version, not its file's path (issue 14: no private directory's name)
    assert f"Cell module {name} (version 1), line 15, in fail()" in shown


def test_functions_and_instances_pickle_by_reference(ip, unique):
    module = define(ip, unique("geo"), GEO)
    assert pickle.loads(pickle.dumps(module.area)) is module.area
    point = pickle.loads(pickle.dumps(module.Point(5)))
    assert type(point) is module.Point and point.x == 5
    assert module.__name__.encode() in pickle.dumps(module.Point(1))  # by reference


# -- binding -------------------------------------------------------------------------


def test_name_is_bound_as_import_binds_it(ip, unique):
    name = unique("geo")
    module = define(ip, name, GEO)
    assert ip.user_ns[name] is module
    package = unique("pkg")
    define(ip, f"{package}.inner", "x = 1\n")
    assert ip.user_ns[package] is sys.modules[package]
    assert f"{package}.inner" not in ip.user_ns


def test_no_bind_option_and_trait(ip, unique):
    name = unique()
    define(ip, name, "x = 1\n", "--no-bind")
    assert name not in ip.user_ns
    ip.run_line_magic("config", "ExecModMagics.bind = False")
    other = unique()
    define(ip, other, "x = 1\n")
    assert other not in ip.user_ns
    assert sys.modules[other].x == 1


# -- running the cell again ----------------------------------------------------------


def test_rerun_updates_the_same_object_for_every_importer(ip, unique):
    name = unique("geo")
    module = define(ip, name, GEO)
    user = define(ip, unique("user"), f"import {name}\n\ndef use():\n    return {name}.area(1)\n")
    assert user.use() == 3
    again = define(ip, name, GEO.replace("3 * r * r", "5 * r * r"))
    assert again is module is sys.modules[name]
    assert user.use() == 5
    assert cells.finder.get(name).redefinitions == 1


def test_rerun_keeps_names_the_new_code_no_longer_defines_as_reload_does(ip, unique):
    name = unique()
    module = define(ip, name, "def old():\n    return 'old'\n\nVALUE = 1\n")
    define(ip, name, "VALUE = 2\n")
    assert module.VALUE == 2 and module.old() == "old"


def test_failed_rerun_restores_the_previous_version(ip, unique, capsys):
    name = unique("geo")
    module = define(ip, name, GEO)
    namespace = dict(vars(module))
    result = ip.run_cell(
        f"%%as_module {name}\nVERSION = 2\narea = None\nraise ValueError('bad edit')\n"
    )
    assert isinstance(result.error_in_exec, ValueError)
    shown = plain(capsys.readouterr().out)
    assert "raise ValueError('bad edit')" in shown  # the failing line, from the new source
    assert sys.modules[name] is module
    assert vars(module) == namespace
    assert module.VERSION == 1 and module.area(1) == 3
    assert inspect.getsource(module.area) == "def area(r):\n    return 3 * r * r\n"
    assert importlib.reload(module).area(2) == 12  # the finder serves the old source again


@pytest.mark.parametrize("raised", ["KeyboardInterrupt", "SystemExit(3)"])
def test_rerun_interrupted_by_base_exceptions_restores(ip, unique, raised):
    name = unique()
    module = define(ip, name, "x = 1\n")
    with pytest.raises(BaseException) as caught:
        ip.run_cell_magic("as_module", name, f"x = 2\nraise {raised}\n")
    assert type(caught.value).__name__ == raised.partition("(")[0]
    assert sys.modules[name] is module and module.x == 1


def test_syntax_error_changes_nothing_and_points_at_the_cell_line(ip, unique):
    name = unique()
    module = define(ip, name, "x = 1\n")
    ours = {key: value for key, value in linecache.cache.items() if name in key}
    cached = set(linecache.cache)
    with pytest.raises(SyntaxError) as caught:
        ip.run_cell_magic("as_module", name, "x = 2\ny = (\nz = 3 +* 4\n")
    assert type(caught.value) is SyntaxError
    assert caught.value.lineno in (2, 3)
    assert name in caught.value.filename
    assert sys.modules[name] is module and module.x == 1
    # Nothing added; lines of earlier tests' replaced versions may go as their code does.
    assert set(linecache.cache) <= cached
    assert {key: value for key, value in linecache.cache.items() if name in key} == ours


def test_failed_first_definition_leaves_nothing_behind(ip, unique):
    name = unique()
    with pytest.raises(ZeroDivisionError):
        ip.run_cell_magic("as_module", name, "x = 1\n1 / 0\n")
    assert name not in sys.modules
    assert name not in cells.finder
    assert name not in ip.user_ns
    assert importlib.util.find_spec(name) is None


def test_failed_first_definition_of_a_dotted_name_removes_created_parents(ip, unique):
    package = unique("pkg")
    with pytest.raises(ZeroDivisionError):
        ip.run_cell_magic("as_module", f"{package}.sub.leaf", "1 / 0\n")
    assert [n for n in sys.modules if n.startswith(package)] == []
    assert package not in cells.finder and f"{package}.sub" not in cells.finder


# -- packages ------------------------------------------------------------------------------


def _copy_directory(package):
    """The ``__path__`` of a cell package with an on-disk copy: the copy's directory, as
    in a worker process that imports the copy."""
    return [os.path.dirname(package.__file__)]


def test_dotted_names_create_packages(ip, unique):
    package = unique("pkg")
    leaf = define(ip, f"{package}.sub.leaf", "x = 1\n")
    parent, middle = sys.modules[package], sys.modules[f"{package}.sub"]
    for module in (parent, middle):
        assert module.__spec__.submodule_search_locations == _copy_directory(module)
        assert module.__path__ == _copy_directory(module)
        assert os.path.isfile(os.path.join(module.__path__[0], "__init__.py"))
    assert middle.leaf is leaf and parent.sub is middle
    assert leaf.__package__ == f"{package}.sub"
    assert importlib.import_module(f"{package}.sub.leaf") is leaf


def test_relative_imports_between_cell_modules(ip, unique):
    package = unique("pkg")
    define(ip, f"{package}.shapes", "def f():\n    return 'f'\n")
    user = define(
        ip,
        f"{package}.user",
        "from . import shapes\nfrom .shapes import f\n\ndef g():\n    return shapes.f() + f()\n",
    )
    assert user.g() == "ff"


def test_a_cell_module_becomes_a_package_when_given_a_submodule(ip, unique):
    name = unique()
    module = define(ip, name, "x = 1\n")
    child = define(ip, f"{name}.child", "from . import x as y\n")
    assert module.__path__ == _copy_directory(module) and module.child is child and child.y == 1
    assert define(ip, name, "x = 2\n") is module  # redefining keeps it a package
    assert module.__path__ == _copy_directory(module) and module.x == 2


def test_parent_package_can_be_given_code_later(ip, unique):
    package = unique("pkg")
    define(ip, f"{package}.sub", "x = 1\n")
    parent = define(ip, package, "from . import sub\nTOTAL = sub.x + 1\n")
    assert parent is sys.modules[package] and parent.TOTAL == 2


@pytest.mark.parametrize("tail", ["types", "io", "json", "logging"])
def test_a_new_package_may_have_children_named_like_top_level_modules(ip, unique, tail):
    package = unique("pkg")
    module = define(ip, f"{package}.{tail}", "X = 1\n")
    assert module.X == 1
    assert sys.modules[package].__path__ == _copy_directory(sys.modules[package])


def test_a_dropped_plain_parent_becomes_a_package_when_given_a_child(ip, unique):
    name = unique()
    define(ip, name, "X = 1\n")
    del sys.modules[name]  # what %reset --aggressive does
    child = define(ip, f"{name}.child", "Y = 2\n")
    parent = sys.modules[name]
    assert parent.__path__ == _copy_directory(parent) and parent.child is child and parent.X == 1
    assert importlib.reload(child) is child


def test_child_of_a_plain_module_is_refused(ip):
    with pytest.raises(UsageError, match=r"'json\.decoder' is a module, not a package"):
        ip.run_cell_magic("as_module", "json.decoder.extra", "x = 1\n")
    with pytest.raises(UsageError, match="'os' is a module, not a package"):
        ip.run_cell_magic("as_module", "os.extra", "x = 1\n")
    assert "os.extra" not in sys.modules


# -- names that belong to others -------------------------------------------------------


@pytest.mark.parametrize("name", ["json", "os", "IPython", "ipyexecmod", "sys"])
def test_names_of_other_modules_are_refused(ip, name):
    importlib.import_module(name)
    module = sys.modules[name]
    with pytest.raises(UsageError, match=f"'{name}' is already imported.*use --force"):
        ip.run_cell_magic("as_module", name, "x = 1\n")
    assert sys.modules[name] is module


def test_names_importable_from_sys_path_are_refused(ip, unique, tmp_path, monkeypatch):
    name = unique("file")
    (tmp_path / f"{name}.py").write_text("ORIGIN = 'file'\n")
    monkeypatch.syspath_prepend(tmp_path)
    with pytest.raises(UsageError, match=f"'{name}'.* can be imported from .*{name}.py"):
        ip.run_cell_magic("as_module", name, "ORIGIN = 'cell'\n")
    with pytest.raises(UsageError, match=f"its parent '{name}' \\(from .*\\) is a module, not a"):
        ip.run_cell_magic("as_module", f"{name}.sub", "x = 1\n")
    package = unique("package")
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    with pytest.raises(
        UsageError, match=f"its parent '{package}' can be imported.*import '{package}"
    ):
        ip.run_cell_magic("as_module", f"{package}.sub", "x = 1\n")
    assert name not in sys.modules and package not in sys.modules


def test_force_defines_over_another_module_and_restores_it_on_failure(ip, unique, tmp_path):
    name = unique("file")
    (tmp_path / f"{name}.py").write_text("ORIGIN = 'file'\n")
    sys.path.insert(0, str(tmp_path))
    try:
        original = importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))
    with pytest.raises(ValueError, match="no"):
        ip.run_cell_magic("as_module", f"--force {name}", "raise ValueError('no')\n")
    assert sys.modules[name] is original
    module = define(ip, name, "ORIGIN = 'cell'\n", "--force")
    assert module is not original and module.ORIGIN == "cell"
    assert define(ip, name, "ORIGIN = 'cell 2'\n") is module  # now it is a cell module


def test_ipythons_own_modules_after_unload_are_still_foreign(ip):
    # the extension's own module is never a cell module
    with pytest.raises(UsageError, match=r"'ipyexecmod\.magics' is already imported"):
        ip.run_cell_magic("as_module", "ipyexecmod.magics", "x = 1\n")


# -- not Python ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("x = 1\n%time y = 2\n", 2),
        ("!ls\n", 1),
        ("x = 1\nfiles = !ls\n", 2),
        ("x = 1\n\nx?\n", 3),
        ("?x\n", 1),
        ("%%time\nx = 1\n", 1),
        ("y = %who_ls\n", 1),
    ],
)
def test_ipython_syntax_is_refused_naming_the_line(ip, unique, body, line):
    name = unique()
    wrong = body.splitlines()[line - 1].strip()
    with pytest.raises(UsageError, match=rf"line {line} is IPython syntax.*{wrong[:3]!r}"[:-1]):
        ip.run_cell_magic("as_module", name, body)
    assert name not in sys.modules


@pytest.mark.parametrize(
    "body",
    [
        "import asyncio\n\nawait asyncio.sleep(0)\n",
        "import asyncio\n\nasync for x in y:\n    pass\n",
        "import asyncio\n\nasync with y:\n    pass\n",
    ],
)
def test_top_level_await_is_refused_naming_the_line(ip, unique, body):
    name = unique()
    with pytest.raises(UsageError, match=r"line 3 uses 'await'.*outside a function"):
        ip.run_cell_magic("as_module", name, body)
    assert name not in sys.modules


def test_indentation_errors_stay_the_pythons_own(ip, unique):
    name = unique()
    with pytest.raises(IndentationError) as caught:
        ip.run_cell_magic("as_module", name, "def f():\n        x = 1\n    return x\n")
    assert re.fullmatch(rf".*/{name}\.py@\d+", caught.value.filename)  # the version's own
    assert caught.value.lineno == 3


def test_plain_python_syntax_errors_stay_syntax_errors(ip, unique):
    with pytest.raises(SyntaxError, match="invalid syntax"):
        ip.run_cell_magic("as_module", unique(), "x = 1\nx +* 2\n")
    with pytest.raises(SyntaxError, match="'return' outside function"):
        ip.run_cell_magic("as_module", unique(), "return 1\n")


# -- alongside other IPython features ----------------------------------------------------


def test_works_alongside_autoreload(ip, unique, capsys):
    name = unique("geo")
    ip.run_line_magic("load_ext", "autoreload")
    try:
        ip.run_line_magic("autoreload", "2")
        assert ip.run_cell(f"%%as_module {name}\ndef f():\n    return 1\n").success
        assert ip.run_cell(f"r1 = {name}.f()").success
        assert ip.run_cell(f"%%as_module {name}\ndef f():\n    return 2\n").success
        assert ip.run_cell(f"r2 = {name}.f()").success
    finally:
        ip.run_line_magic("autoreload", "off")
    assert (ip.user_ns["r1"], ip.user_ns["r2"]) == (1, 2)
    captured = capsys.readouterr()
    assert "Error" not in captured.out + captured.err


def test_works_after_reset(ip, unique):
    name = unique("geo")
    module = define(ip, name, GEO)
    ip.run_line_magic("reset", "-f")
    assert name not in ip.user_ns
    assert ip.run_cell(f"import {name}\nr = {name}.area(1)").success
    assert ip.user_ns["r"] == 3
    assert define(ip, name, GEO.replace("3 * r", "6 * r")) is module
    assert ip.user_ns[name].area(1) == 6


def test_module_dropped_from_sys_modules_is_recreated_by_import(ip, unique):
    name = unique("geo")
    define(ip, name, GEO)
    del sys.modules[name]  # what %reset --aggressive does
    fresh = importlib.import_module(name)
    assert fresh.area(1) == 3
    assert define(ip, name, GEO.replace("3 * r", "7 * r")) is fresh
    assert fresh.area(1) == 7


def test_the_registry_survives_a_fresh_import_of_ipyexecmod(tmp_path):
    # %reset --aggressive drops ipyexecmod's modules from sys.modules; a later import of
    # ipyexecmod.cells must keep the cell modules the installed finder knows.
    script = """
import importlib, sys
import ipyexecmod.cells
ipyexecmod.cells.define("first", "X = 1")
del sys.modules["first"]
for name in [n for n in sys.modules if n.startswith("ipyexecmod")]:
    del sys.modules[name]
import ipyexecmod.cells as again
again.define("second", "Y = 2")
import first, second
print(first.X, second.Y, sum(type(f).__name__ == "CellModuleFinder" for f in sys.meta_path))
"""
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.split() == ["1", "2", "1"]


# -- memory ----------------------------------------------------------------------------


def test_replaced_versions_do_not_pile_up_in_linecache(ip, unique):
    name = unique()

    def cached() -> list[str]:
        return sorted(key for key in linecache.cache if key.startswith(f"ipyexecmod:{name}@"))

    module = define(ip, name, "def f():\n    return 0\n", "--no-persist")
    kept = [module.f]  # a function of version 1 that outlives its version
    for version in range(1, 30):
        define(ip, name, f"def f():\n    return {version}\n", "--no-persist")
    assert cached() == sorted([kept[0].__code__.co_filename, module.__file__])
    source = inspect.getsource(kept[0])
    kept.clear()
    gc.collect()
    assert cached() == [module.__file__]
    assert source == "def f():\n    return 0\n"


# -- the Python API ----------------------------------------------------------------------


def test_define_without_ipython_checks_its_arguments():
    with pytest.raises(cells.DefinitionError, match="a module name is required"):
        cells.define("", "x = 1\n")
    with pytest.raises(TypeError, match="a module name must be a str, not int"):
        cells.define(1, "x = 1\n")
    with pytest.raises(TypeError, match="source must be a str, not bytes"):
        cells.define("_cm_bytes", b"x = 1\n")
    assert "_cm_bytes" not in sys.modules
