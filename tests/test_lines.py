"""Every version shows its own lines: tracebacks, %debug, %pdb, inspect and ``??``.

In both modes, on disk (the default) and ``--no-persist``: a failed redefinition's
traceback, and a function kept from a replaced version, read the lines of the version
whose code they are, while ``__file__``, the spec and the ``.pyc`` name the real file.
"""

from __future__ import annotations

import gc
import importlib.util
import inspect
import io
import linecache
import re
import sys
import traceback
from importlib.machinery import SourceFileLoader
from types import CodeType

import pytest
from helpers import define, run_python

from ipyexecmod import cells
from ipyexecmod.pyc import read_header

MODES = ["", "--no-persist"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")

OLD = "def f():\n    return 'old'\n\n\ndef bad():\n    raise KeyError('old bad')\n"
NEW = "X = 1\n\n\ndef g():\n    return 'new'\n\n\nY = 2\n"
FAILING = "X = 1\nY = 2\nraise ValueError('failing edit')\n"


def deepest(tb):
    """The innermost frame's code filename, line number and line as linecache has it."""
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename
    return filename, tb.tb_lineno, linecache.getline(filename, tb.tb_lineno)


def debugger_output(ip, capsys, commands: str, start, *args) -> str:
    """What is printed while ``start(*args)`` runs and starts the debugger, with
    ``commands`` typed at its prompt: pdb reads them from sys.stdin."""
    capsys.readouterr()
    # IPython keeps the Pdb it makes first, which writes to the sys.stdout of then:
    # an earlier test's capture, closed since.
    ip.InteractiveTB.pdb = None
    stdin, sys.stdin = sys.stdin, io.StringIO(commands)
    try:
        start(*args)
    finally:
        sys.stdin = stdin
    return ANSI.sub("", capsys.readouterr().out)


@pytest.mark.parametrize("options", MODES)
def test_after_a_failed_redefinition_pdb_and_debug_show_the_failed_versions_lines(
    ip, unique, capsys, options
):
    name = unique()
    module = define(ip, name, OLD, options)
    ip.call_pdb = True  # %pdb on: the debugger starts as the cell fails
    try:
        cell = f"%%as_module {options} {name}\n{FAILING}"
        out = debugger_output(ip, capsys, "list\nquit\n", ip.run_cell, cell)
    finally:
        ip.call_pdb = False
    assert "raise ValueError('failing edit')" in out.split("ipdb>")[0]  # the traceback
    # The code is the cell's, numbered as the cell is: its first line is the magic's.
    assert f"ipdb>       1 %%as_module {options} {name}\n      2 X = 1" in out
    assert "----> 4 raise ValueError('failing edit')" in out
    filename, lineno, line = deepest(sys.last_traceback)
    assert (lineno, line) == (4, "raise ValueError('failing edit')\n")
    assert linecache.getlines(filename) == cell.splitlines(keepends=True)
    # %debug, after the cell: the version put back has not taken the failed one's lines
    out = debugger_output(ip, capsys, "where\nlist\nquit\n", ip.run_line_magic, "debug", "")
    assert "----> 4 raise ValueError('failing edit')" in out
    assert "return 'old'" not in out
    assert sys.modules[name] is module
    assert inspect.getsource(module.f) == "def f():\n    return 'old'\n"
    assert inspect.getsource(module) == OLD
    assert_names_the_real_file(module, options)


@pytest.mark.parametrize("options", MODES)
def test_a_function_kept_from_a_replaced_version_shows_its_own_source(ip, unique, capsys, options):
    name = unique()
    module = define(ip, name, OLD, options)
    assert ip.run_cell(f"from {name} import f as kept_f, bad as kept_bad").success
    ip.user_ns["callbacks"] = [module.f]
    with pytest.warns(RuntimeWarning, match="kept_f, kept_bad hold what an earlier version"):
        define(ip, name, NEW, options)  # which defines neither f nor bad
    kept = ip.user_ns["kept_f"]
    assert ip.user_ns["callbacks"][0] is kept and kept() == "old"
    assert inspect.getsource(kept) == "def f():\n    return 'old'\n"
    assert inspect.getsourcefile(kept) == kept.__code__.co_filename
    # IPython's inspector (`??`): the source, and the file it came from
    info = ANSI.sub("", ip.object_inspect_mime("kept_f", detail_level=1)["text/plain"])
    assert "return 'old'" in info and "return 'new'" not in info
    capsys.readouterr()
    ip.run_line_magic("pinfo2", "callbacks[0]")
    out = ANSI.sub("", capsys.readouterr().out)
    assert "return 'old'" in out and "return 'new'" not in out
    files = [line for text in (info, out) for line in text.splitlines() if line[:5] == "File:"]
    # its own filename (IPython makes a name that is not a path, --no-persist's, absolute)
    assert len(files) == 2 and all(f.endswith(kept.__code__.co_filename) for f in files)
    # the current version, and the module itself, show theirs
    assert inspect.getsource(module.g) == "def g():\n    return 'new'\n"
    assert inspect.getsource(module) == NEW
    assert_names_the_real_file(module, options)


@pytest.mark.parametrize("options", MODES)
def test_a_kept_functions_traceback_shows_its_own_lines(ip, unique, capsys, options):
    name = unique()
    define(ip, name, OLD, options)
    assert ip.run_cell(f"from {name} import bad as kept_bad").success
    with pytest.warns(RuntimeWarning, match="kept_bad holds what an earlier version"):
        define(ip, name, NEW, options)  # its line 6 is blank
    capsys.readouterr()
    result = ip.run_cell("kept_bad()")
    assert type(result.error_in_exec) is KeyError
    shown = ANSI.sub("", capsys.readouterr().out)
    assert "raise KeyError('old bad')" in shown
    _, lineno, line = deepest(sys.last_traceback)
    assert (lineno, line) == (6, "    raise KeyError('old bad')\n")
    formatted = "".join(traceback.format_tb(sys.last_traceback))
    assert "raise KeyError('old bad')" in formatted
    out = debugger_output(ip, capsys, "list\nquit\n", ip.run_line_magic, "debug", "")
    assert "----> 6     raise KeyError('old bad')" in out


def test_lines_of_replaced_on_disk_versions_go_with_their_code(ip, unique):
    name = unique()
    module = define(ip, name, "def f():\n    return 0\n")
    kept = [module.f]
    for version in range(1, 30):
        define(ip, name, f"def f():\n    return {version}\n")

    def cached() -> list[str]:
        return sorted(key for key in linecache.cache if key.startswith(module.__file__))

    current = cells.finder.modules[name].version.filename
    assert cached() == sorted([kept[0].__code__.co_filename, current, module.__file__])
    source = inspect.getsource(kept[0])
    kept.clear()
    gc.collect()
    assert cached() == sorted([current, module.__file__])
    assert source == "def f():\n    return 0\n"


def code_tree(code: CodeType) -> list[CodeType]:
    tree, pending = [], [code]
    while pending:
        code = pending.pop()
        tree.append(code)
        pending.extend(const for const in code.co_consts if type(const) is CodeType)
    return tree


def test_the_pyc_and_other_processes_name_the_real_file(ip, unique):
    name = unique()
    source = "class C:\n    def m(self):\n        return [1 / x for x in (0,)]\n"
    define(ip, name, "X = 1\n")
    module = define(ip, name, source)  # the second version: its code's name has @2
    # What a process imports: importlib gives the .pyc's code the name of the source beside it.
    loader = SourceFileLoader(name, module.__file__)
    code = loader.get_code(name)
    assert len(code_tree(code)) >= 3
    assert {c.co_filename for c in code_tree(code)} == {module.__file__}
    assert read_header(module.__cached__).for_this_python  # so that .pyc is what it loads
    assert module.C.m.__code__.co_filename == f"{module.__file__}@2"
    out = run_python(
        f"""
        import sys, traceback
        sys.path.insert(0, {cells.finder.modules[name].version.store.directory!r})
        import {name}
        try:
            {name}.C().m()
        except ZeroDivisionError as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            print(frame.filename, frame.lineno, frame.line, sep="|")
            print({name}.__file__)
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"{module.__file__}|3|return [1 / x for x in (0,)]",
        module.__file__,
    ]


def assert_names_the_real_file(module, options: str) -> None:
    """``__file__``, the spec and ``__cached__`` name the on-disk copy (with one)."""
    assert module.__spec__.origin == module.__file__
    if options == "--no-persist":
        assert module.__file__.startswith(f"ipyexecmod:{module.__name__}@")
        return
    assert module.__file__.endswith(f"{module.__name__}.py")
    assert module.__cached__ == module.__spec__.cached
    assert module.__cached__ == importlib.util.cache_from_source(module.__file__)
    with open(module.__file__, encoding="utf-8") as file:
        assert file.read() == inspect.getsource(module)


def test_a_kept_function_shows_its_own_lines_after_linecache_is_cleared(ip, unique):
    name = unique()
    define(ip, name, "def old_name(x):\n    # version one\n    return 1 / x\n")
    ip.run_cell(f"old_f = {name}.old_name").raise_error()
    with pytest.warns(RuntimeWarning):  # old_f's function is no longer defined
        define(ip, name, "# a new first line\n\ndef new_name(x):\n    return 2 / x\n")
    ip.run_cell("import linecache\nlinecache.clearcache()").raise_error()  # as a debugger may
    old_f = ip.user_ns["old_f"]
    assert inspect.getsource(old_f) == "def old_name(x):\n    # version one\n    return 1 / x\n"
