"""A cell module run from its own cell has the cell's lines (issue 18, part 4).

Its code is named as IPython names a plain cell's (``shell.compile.get_code_name``: in
ipykernel, the file the JupyterLab debugger sets a cell's breakpoints in) and numbered
as the cell is, the ``%%as_module`` line being line 1: tracebacks say ``Cell In[N], line
L``, ``inspect`` and ``??`` read the cell's lines, while ``__file__``, the on-disk copy and
its ``.pyc`` keep the module's own (``test_debugger.py`` drives the debugger itself).
"""

from __future__ import annotations

import gc
import inspect
import linecache
import re
import sys
import traceback

import pytest
from helpers import define, run_python

from ipyexecmod import cells

ANSI = re.compile(r"\x1b\[[0-9;]*m")
GEO = (
    "import math\n\n\ndef area(r):\n    return math.pi * r * r\n\n\n"
    "def fail():\n    raise ValueError('on purpose')\n"
)
FAIL_LINE = 9  # in the module; 10 in the cell


def run(ip, capsys, cell: str):
    """Run ``cell``; its result, and what it printed, without colours."""
    capsys.readouterr()
    result = ip.run_cell(cell)
    return result, ANSI.sub("", capsys.readouterr().out)


def innermost(error: BaseException) -> traceback.FrameSummary:
    return traceback.extract_tb(error.__traceback__)[-1]


def test_a_traceback_shows_the_cells_line(ip, unique, capsys):
    name = unique("geo")
    defined, _ = run(ip, capsys, f"%%as_module {name}\n{GEO}")
    assert defined.success
    module = sys.modules[name]
    code_name = module.fail.__code__.co_filename  # the cell's, as IPython names it
    assert ip.compile.format_code_name(code_name) == ("Cell", f"In[{defined.execution_count}]")
    result, out = run(ip, capsys, f"import {name}\n{name}.fail()")
    assert isinstance(result.error_in_exec, ValueError)
    assert f"Cell In[{defined.execution_count}], line {FAIL_LINE + 1}, in fail()" in out
    assert f"-> {FAIL_LINE + 1}     raise ValueError('on purpose')" in out
    frame = innermost(result.error_in_exec)
    assert (frame.filename, frame.lineno) == (code_name, FAIL_LINE + 1)
    assert frame.line == "raise ValueError('on purpose')"
    # linecache holds the cell as it is, the magic's line first
    assert linecache.getlines(code_name) == f"%%as_module {name}\n{GEO}".splitlines(True)
    # %modinfo shows the loader: the cell's file without its directory (in ipykernel, one
    # named after the kernel's process id), so that a saved output stays the same
    assert repr(module.__loader__) == f"<SourceTextLoader {name!r} from cell {code_name!r}>"


def test_the_module_the_functions_and_the_inspector_read_their_own_lines(ip, unique, capsys):
    name = unique("geo")
    body = GEO + "\n\nclass Point:\n    x = 1\n"
    assert ip.run_cell(f"%%as_module {name}\n{body}").success
    module = sys.modules[name]
    assert inspect.getsource(module.area) == "def area(r):\n    return math.pi * r * r\n"
    assert inspect.getsource(module.Point) == "class Point:\n    x = 1\n"
    assert inspect.getsource(module) == body  # __file__: the on-disk copy, its own lines
    assert module.__file__ == cells.finder.get(name).version.path
    assert module.area.__code__.co_firstlineno == 5  # the cell's line
    info = ANSI.sub("", ip.object_inspect_mime(f"{name}.area", detail_level=1)["text/plain"])
    assert "return math.pi * r * r" in info and "%%as_module" not in info


def test_a_replaced_versions_function_keeps_its_cells_lines(ip, unique, capsys):
    name = unique("geo")
    assert ip.run_cell(f"%%as_module {name}\n{GEO}").success
    kept = sys.modules[name].fail
    new = "\n\n# a new first line\n" + GEO.replace("on purpose", "new")
    assert ip.run_cell(f"%%as_module {name}\n{new}").success
    gc.collect()
    assert inspect.getsource(kept) == "def fail():\n    raise ValueError('on purpose')\n"
    ip.user_ns["kept_fail"] = kept
    result, out = run(ip, capsys, "kept_fail()")
    del ip.user_ns["kept_fail"]  # the shell is shared: a name left would change others' order
    assert f"line {FAIL_LINE + 1}, in fail()" in out and "'on purpose'" in out
    assert innermost(result.error_in_exec).lineno == FAIL_LINE + 1
    current = sys.modules[name].fail
    assert inspect.getsource(current) == "def fail():\n    raise ValueError('new')\n"
    assert current.__code__.co_firstlineno == FAIL_LINE + 3
    assert inspect.getsource(sys.modules[name]) == new


def test_a_cells_lines_give_way_to_ipythons_when_its_code_is_gone_and_come_back_after_clearing(
    ip, unique
):
    """IPython keeps an entry of every cell for the session: once a version's code is gone,
    its entry is IPython's again (the cell's lines of ours would pile up, 10,000 cells
    holding megabytes); a debugger's ``clearcache`` takes the lines of code still alive,
    until the next cell puts them back."""
    name = unique("geo")
    assert ip.run_cell(f"%%as_module {name}\n{GEO}").success
    first = sys.modules[name].fail.__code__.co_filename
    assert linecache.getlines(first)[0] == f"%%as_module {name}\n"
    assert ip.run_cell(f"%%as_module {name}\n{GEO}X = 2\n").success
    gc.collect()  # the first version's code is gone
    (ipythons,) = linecache.getlines(first)
    assert ipythons.startswith(f"get_ipython().run_cell_magic('as_module', '{name}'")
    kept = sys.modules[name].fail
    linecache.clearcache()
    ip.run_cell("pass")
    assert inspect.getsource(kept) == "def fail():\n    raise ValueError('on purpose')\n"


def test_leading_blank_lines_count(ip, unique, capsys):
    name = unique("geo")
    defined, _ = run(ip, capsys, f"\n \n%%as_module {name}\n{GEO}")
    assert defined.success
    result, out = run(ip, capsys, f"{name}.fail()")
    assert innermost(result.error_in_exec).lineno == FAIL_LINE + 3
    assert f"Cell In[{defined.execution_count}], line {FAIL_LINE + 3}" in out


def test_a_cell_without_a_final_newline(ip, unique, capsys):
    name = unique("geo")
    assert ip.run_cell(f"%%as_module {name}\n{GEO.rstrip()}").success
    result, _ = run(ip, capsys, f"{name}.fail()")
    assert innermost(result.error_in_exec).lineno == FAIL_LINE + 1


def test_memory_only_the_module_reads_its_own_lines(ip, unique, capsys):
    name = unique("geo")
    assert ip.run_cell(f"%%as_module --no-persist {name}\n{GEO}").success
    module = sys.modules[name]
    assert module.__file__ == f"ipyexecmod:{name}"
    assert inspect.getsource(module) == GEO
    assert ip.run_cell(f"%%as_module --no-persist {name}\n{GEO}X = 2\n").success
    assert inspect.getsource(module) == GEO + "X = 2\n"
    result, _ = run(ip, capsys, f"{name}.fail()")
    assert innermost(result.error_in_exec).lineno == FAIL_LINE + 1


def test_run_again_unchanged_compiles_nothing(ip, unique):
    name = unique("geo")
    cell = f"%%as_module {name}\n{GEO}"
    assert ip.run_cell(cell).success
    version = cells.finder.get(name).version
    assert ip.run_cell(cell).success
    assert cells.finder.get(name).version.code is version.code


def test_defined_by_code_first_then_from_its_cell_it_is_named_after_the_cell(ip, unique):
    """The same source, defined by code (a version's own name) then from its cell: compiled
    again, under the cell's name, or a breakpoint set in the cell would not stop."""
    name = unique("geo")
    module = define(ip, name, GEO)
    assert module.fail.__code__.co_filename.endswith("@1")
    assert ip.run_cell(f"%%as_module {name}\n{GEO}").success
    assert module.fail.__code__.co_firstlineno == FAIL_LINE  # its def's line in the cell
    assert not module.fail.__code__.co_filename.endswith(".py@1")
    assert ip.compile.format_code_name(module.fail.__code__.co_filename)[0] == "Cell"


@pytest.mark.parametrize(
    "cell",
    [
        "%%time\n%%as_module {name}\nX = 1\n",  # under another cell magic
        "get_ipython().run_cell_magic('as_module', '{name}', 'X = 1\\n')",  # by code
    ],
)
def test_not_from_its_own_cell_it_keeps_a_versions_own_name(ip, unique, capsys, cell):
    name = unique("geo")
    assert ip.run_cell(cell.format(name=name)).success
    filename = cells.finder.get(name).version.filename
    assert filename == f"{sys.modules[name].__file__}@1"


def test_ipython_syntax_is_reported_at_the_cells_line(ip, unique):
    name = unique()
    result = ip.run_cell(f"%%as_module {name}\nx = 1\n!ls\n")
    assert "line 3 is IPython syntax" in str(result.error_in_exec)
    assert name not in sys.modules
    result = ip.run_cell(f"%%as_module {name}\nx = 1\nawait f()\n")
    assert "line 3 uses 'await'" in str(result.error_in_exec)
    assert "'await f()'" in str(result.error_in_exec)


def test_the_pyc_holds_the_modules_own_lines(ip, unique, tmp_path):
    """A process that imports the on-disk copy runs its ``.pyc``: its tracebacks show
    ``NAME.py``'s lines, whose numbers are the module's, not the cell's."""
    name = unique("geo")
    assert ip.run_cell(f"%%as_module {name}\n{GEO}").success
    module = sys.modules[name]
    directory = cells.finder.get(name).version.store.directory
    child = run_python(
        f"""
        import sys, traceback
        from importlib.machinery import SourceFileLoader

        def refuse(*args, **kwargs):
            raise AssertionError("compiled from the source, not read from the .pyc")

        SourceFileLoader.source_to_code = refuse
        sys.path.insert(0, {directory!r})
        import {name} as module
        print(module.area.__code__.co_firstlineno)
        try:
            module.fail()
        except ValueError as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            print(frame.filename, frame.lineno, frame.line, sep="|")
        """
    )
    assert child.returncode == 0, child.stderr
    firstlineno, frame = child.stdout.splitlines()
    assert firstlineno == "4"
    assert frame == f"{module.__file__}|{FAIL_LINE}|raise ValueError('on purpose')"


def _nested(code):
    for const in code.co_consts:
        if isinstance(const, type(code)):
            yield const
            yield from _nested(const)


@pytest.mark.parametrize(
    "source",
    [
        GEO,
        "",
        "x = 1",
        '"""Doc."""\nfrom __future__ import annotations\nclass A:\n    def m(self):\n'
        "        return [i for i in range(3)]\n",
        "# a comment\n\n\n" + "y = 2\n" * 3 + "async def f():\n    await g()\n",
    ],
    ids=["module", "empty", "one-line", "class", "comment-first"],
)
@pytest.mark.parametrize("lead", [1, 3, 70])
def test_renumbered_code_is_the_code_of_the_cell_compiled_whole(source, lead):
    from ipyexecmod._renumber import renumbered

    own = compile(source, "copy.py", "exec", dont_inherit=True)
    cell = compile("\n" * lead + source, "cell.py", "exec", dont_inherit=True)
    moved = renumbered(own, "cell.py", lead)
    # Every module's code starts at line 1 (IPython counts a module frame's excerpt from it).
    assert moved.co_firstlineno == cell.co_firstlineno == 1
    # Each instruction's position is the cell's, but the first (RESUME, at line 0 in a cell).
    expected = [p if p[0] != 0 else None for p in cell.co_positions()]
    positions = zip(moved.co_positions(), expected, strict=True)
    got = [p if e is not None else None for p, e in positions]
    assert got == expected
    for mine, theirs in zip(_nested(moved), _nested(cell), strict=True):
        assert mine.co_filename == "cell.py"
        assert (mine.co_firstlineno, mine.co_linetable) == (
            theirs.co_firstlineno,
            theirs.co_linetable,
        )


def test_a_line_table_whose_first_entry_is_short_moves_as_a_long_one():
    from ipyexecmod._renumber import renumbered

    functions = [c for c in _nested(compile(GEO, "copy.py", "exec")) if c.co_name == "area"]
    (area,) = functions  # a function's table starts with a short or one-line entry
    assert (area.co_linetable[0] >> 3) & 15 < 13
    moved = renumbered(area, "cell.py", 5)  # as a module's own code: the table moves
    assert moved.co_firstlineno == area.co_firstlineno
    assert list(moved.co_positions()) == list(
        area.replace(co_firstlineno=area.co_firstlineno + 5).co_positions()
    )
