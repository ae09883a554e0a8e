"""What a notebook user sees of the magics: syntax errors, binding, completion, arguments.

In a real InteractiveShell (what IPython prints, through capsys) and in a real kernel
(the messages a notebook gets).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import linecache
import re
import sys
import textwrap

import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.error import UsageError

from ipyexecmod import cells
from ipyexecmod.magics import ExecModMagics, ModuleMagics, ShipMagics

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def shown_lines(text: str) -> list[str]:
    """The non-blank lines of what IPython showed, without colour codes."""
    return [line for line in ANSI.sub("", text).splitlines() if line.strip()]


def run(ip, capsys, cell: str):
    """Run ``cell`` as a notebook cell: its result, and what it printed (stdout + stderr)."""
    capsys.readouterr()
    result = ip.run_cell(cell)
    captured = capsys.readouterr()
    return result, captured.out + captured.err


def define(ip, name: str, body: str, options: str = ""):
    ip.run_cell_magic("as_module", f"{options} {name}".strip(), body)
    return sys.modules[name]


# -- 1. a typo in a %%as_module cell: the short form, with the new line ----------------------


def test_ipython_behaviour_the_short_form_relies_on(ip, capsys):
    """IPython 8.12-9.x: what the display of a %%as_module syntax error builds on.

    A SyntaxError raised while a cell runs is shown with every frame (run_code,
    run_cell_magic, ...); ``showsyntaxerror()`` without ``running_compiled_code``
    shows only the 4-line form; that form reads the failing line from linecache
    (not from the exception) when linecache has the file; and ``run_code`` reads
    ``custom_exceptions`` when the exception reaches it, not when the cell starts.
    """
    result, out = run(ip, capsys, "exec(compile('x = 1\\ny = (\\n', '<pinned>', 'exec'))")
    assert isinstance(result.error_in_exec, SyntaxError)
    assert "run_code" in out and len(shown_lines(out)) > 4
    linecache.cache["<pinned>"] = (9, None, ["x = 1\n", "STALE = 2\n"], "<pinned>")
    try:
        error = SyntaxError("'(' was never closed", ("<pinned>", 2, 5, "y = (\n", 2, 5))
        try:
            raise error
        except SyntaxError:
            ip.showsyntaxerror()
    finally:
        del linecache.cache["<pinned>"]
    lines = shown_lines(capsys.readouterr().out)
    assert len(lines) == 4 and lines[1].strip() == "STALE = 2"
    result, out = run(
        ip,
        capsys,
        "get_ipython().set_custom_exc((KeyError,), lambda *a, **k: print('handled late'))\n"
        "{}['missing']",
    )
    ip.set_custom_exc((), None)
    assert isinstance(result.error_in_exec, KeyError) and "handled late" in out


def plain_cell_form(ip, capsys, body: str) -> list[str]:
    """How IPython shows ``body``'s syntax error as a plain cell."""
    result, out = run(ip, capsys, body)
    assert result.error_before_exec is not None
    return shown_lines(out)


@pytest.mark.parametrize(
    ("body", "error", "line"),
    [
        ("x = 1\ny = 3 +* 4\nz = 2\n", SyntaxError, 2),
        ("x = 1\ny = (\nz = 3 +* 4\n", SyntaxError, 2),
        ("def f():\n        x = 1\n    return x\n", IndentationError, 3),
    ],
)
def test_a_typo_shows_the_plain_cells_short_form(ip, unique, capsys, body, error, line):
    name = unique()
    expected = plain_cell_form(ip, capsys, body)
    result, out = run(ip, capsys, f"%%as_module {name}\n{body}")
    assert type(result.error_in_exec) is error
    lines = shown_lines(out)
    assert len(lines) == len(expected) == 4, lines
    if error is IndentationError and sys.version_info < (3, 12):
        # 3.11: IPython's own tokenizer finds a plain cell's bad unindent and puts the caret
        # at the indentation; compile(), which finds a module's, puts it after the line.
        del lines[2], expected[2]
    assert lines[1:] == expected[1:]  # the line, the caret, the message
    # the cell and the line in it, as a plain cell's (issue 14: no private directory's
    # name; issue 18: the cell's line numbers, its first line being the magic's)
    assert lines[0].strip() == f"Cell In[{result.execution_count}], line {line + 1}"
    assert "run_cell_magic" not in out and "ipyexecmod/magics" not in out
    assert name not in sys.modules


@pytest.mark.parametrize("options", ["", "--no-persist"])
def test_a_typo_in_a_redefinition_shows_the_new_line_not_the_old_one(ip, unique, capsys, options):
    name = unique()
    module = define(ip, name, "x = 1\ny = 2\nz = 3\n", options)
    old_lines = linecache.getlines(module.__file__)
    result, out = run(ip, capsys, f"%%as_module {options} {name}\nx = 1\ny = (\nz = 3 +* 4\n")
    assert type(result.error_in_exec) is SyntaxError
    lines = shown_lines(out)
    assert len(lines) == 4, lines
    assert lines[1].strip() == "y = (" and "y = 2" not in out
    assert lines[-1] == "SyntaxError: '(' was never closed"
    # nothing changed: the old version, its lines, and IPython's exception handling
    assert sys.modules[name] is module and module.y == 2
    assert linecache.getlines(module.__file__) == old_lines
    assert inspect.getsource(module) == "x = 1\ny = 2\nz = 3\n"
    assert ip.custom_exceptions == ()


def test_an_indentation_error_in_a_redefinition_shows_the_new_line(ip, unique, capsys):
    name = unique()
    define(ip, name, "def f():\n    return 1\n")
    result, out = run(ip, capsys, f"%%as_module {name}\ndef f():\n        x = 1\n    return x\n")
    assert type(result.error_in_exec) is IndentationError
    lines = shown_lines(out)
    assert len(lines) == 4 and lines[1].strip() == "return x", lines
    assert lines[0].strip() == f"Cell In[{result.execution_count}], line 4"  # the cell's line


def test_other_syntax_errors_in_the_same_cell_keep_ipythons_display(ip, unique, capsys):
    """A caught %%as_module error leaves the rest of the cell to IPython as before."""
    name = unique()
    cell = (
        "try:\n"
        f"    get_ipython().run_cell_magic('as_module', '{name}', 'x +* 1\\n')\n"
        "except SyntaxError:\n"
        "    pass\n"
        "exec('1 +')\n"
    )
    result, out = run(ip, capsys, cell)
    assert type(result.error_in_exec) is SyntaxError
    assert "exec('1 +')" in out and "run_code" in out  # the full form, as for any cell
    assert ip.custom_exceptions == ()


def test_an_earlier_custom_exception_handler_still_works(ip, unique, capsys):
    def handler(shell, etype, value, tb, tb_offset=None):
        print(f"custom: {etype.__name__}")

    ip.set_custom_exc((KeyError,), handler)
    try:
        name = unique()
        result, out = run(ip, capsys, f"%%as_module {name}\nx +* 1\n")
        assert type(result.error_in_exec) is SyntaxError and len(shown_lines(out)) == 4
        assert ip.custom_exceptions == (KeyError,)
        result, out = run(ip, capsys, "{}['missing']")
        assert "custom: KeyError" in out
    finally:
        ip.set_custom_exc((), None)


# -- 2. binding never takes IPython's names, builtins, or the notebook's values -----------


@pytest.mark.parametrize("name", ["get_ipython", "display", "In", "exit", "_ii", "_7", "print"])
def test_ipythons_own_names_and_builtins_are_not_bound(ip, capsys, name):
    before = ip.user_ns.get(name, "absent")
    hidden = name in ip.user_ns_hidden
    try:
        result, out = run(ip, capsys, f"%%as_module {name}\nVALUE = 1\n")
        assert result.success, out
        assert sys.modules[name].VALUE == 1  # defined and importable
        assert ip.user_ns.get(name, "absent") is before
        (notice,) = shown_lines(out)
        assert f"module {name!r} is defined but not bound to {name!r}" in notice
        assert f"import {name} as" in notice
        # IPython still works: magics, display, input and output history
        result, out = run(ip, capsys, "%lsmod json\ndisplay('shown')\nprint(len(In) > 0)")
        assert result.success, out
        assert "'shown'" in out and "True" in out
    finally:  # whatever happened, the shell as it was for the other tests
        sys.modules.pop(name, None)
        if before == "absent":
            ip.user_ns.pop(name, None)
        else:
            ip.push({name: before}, interactive=not hidden)


def test_a_notebook_value_under_the_name_is_kept(ip, unique, capsys):
    name = unique("data")
    assert ip.run_cell(f"{name} = [1, 2, 3]").success
    for _ in range(2):  # and again when the cell is run again
        result, out = run(ip, capsys, f"%%as_module {name}\nROWS = 3\n")
        assert result.success, out
        assert ip.user_ns[name] == [1, 2, 3]
        assert sys.modules[name].ROWS == 3
        (notice,) = shown_lines(out)
        assert f"{name!r} holds a list of the notebook" in notice
        assert f"import {name} as" in notice


def test_an_earlier_version_of_the_module_is_replaced_silently(ip, unique, capsys):
    name = unique()
    old = define(ip, name, "X = 1\n")
    del sys.modules[name]  # what %reset --aggressive does; the notebook keeps the old object
    result, out = run(ip, capsys, f"%%as_module {name}\nX = 2\n")
    assert result.success and out == ""
    assert ip.user_ns[name] is sys.modules[name] is not old


def test_a_dotted_name_binds_its_package_under_the_same_rules(ip, unique, capsys):
    package = unique("pkg")
    assert ip.run_cell(f"{package} = 'a string of the notebook'").success
    result, out = run(ip, capsys, f"%%as_module {package}.leaf\nX = 1\n")
    assert result.success
    assert ip.user_ns[package] == "a string of the notebook"
    assert f"not bound to {package!r}: {package!r} holds a str" in out


# -- 3. completion: cell modules first, wherever a module name is taken ----------------------


def complete(ip, line: str) -> list[str]:
    with provisionalcompleter():
        return [c.text for c in ip.Completer.completions(line, len(line))]


def leading_cell_modules(names: list[str]) -> list[str]:
    cell_modules = {record.name for record in cells.finder.records()}
    count = next((i for i, n in enumerate(names) if n not in cell_modules), len(names))
    return names[:count]


@pytest.mark.parametrize(
    "magic", ["%modinfo", "%reload_module", "%lsmod", "%lsmod --cells", "%pycinfo"]
)
def test_cell_modules_complete_first(ip, unique, magic):
    name = unique("completion")
    define(ip, name, "x = 1\n")
    names = complete(ip, f"{magic} ")
    first = leading_cell_modules(names)
    assert name in first and first == sorted(first)
    assert not any(n.startswith("IPython") for n in first)
    assert complete(ip, f"{magic} {name[:-3]}") == [name]
    assert "json.decoder" in complete(ip, f"{magic} json.")


@pytest.mark.parametrize("magic", ["%%as_module", "%%as_module --no-bind", "%ship"])
def test_magics_that_take_only_cell_modules_complete_only_them(ip, unique, magic):
    name = unique("completion")
    define(ip, name, "x = 1\n")
    assert complete(ip, f"{magic} {name[:-3]}") == [name]
    names = complete(ip, f"{magic} ")
    assert name in names and leading_cell_modules(names) == names
    assert complete(ip, f"{magic} jso") == []


def test_pycinfo_completes_paths_after_modules(ip, unique, tmp_path, monkeypatch):
    name = unique("completion")
    define(ip, name, "x = 1\n")
    (tmp_path / f"{name}_copy.pyc").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert complete(ip, f"%pycinfo {name[:-3]}") == [name, f"{name}_copy.pyc"]


@pytest.mark.filterwarnings("ignore:`Completer.complete` is pending deprecation")
def test_the_old_completion_api_puts_cell_modules_first(ip, unique):
    name = unique("completion")
    define(ip, name, "x = 1\n")
    _, matches = ip.complete("", "%modinfo ")
    assert name in leading_cell_modules(list(matches))


# -- 4. arguments and messages --------------------------------------------------------------


def test_a_trailing_comment_on_the_magic_line_is_ignored(ip, unique, capsys):
    name = unique()
    result, out = run(ip, capsys, f"%%as_module {name}  # helpers\nX = 1\n")
    assert result.success, out
    assert ip.user_ns[name].X == 1
    other = unique()
    result, out = run(ip, capsys, f"%%as_module --no-bind {other} # no binding, #2\nX = 1\n")
    assert result.success, out
    assert other not in ip.user_ns and sys.modules[other].X == 1
    assert ip.run_line_magic("modinfo", f"{name}  # which file?")["name"] == name


@pytest.mark.parametrize(
    ("magic", "line"),
    [("as_module", "-x"), ("as_module", "--bogus"), ("modinfo", "-x"), ("pycinfo", "--what")],
)
def test_an_unknown_option_is_named_even_without_a_name(ip, magic, line):
    option = line.split()[0]
    with pytest.raises(UsageError, match=f"unrecognized arguments: {option}$"):
        if magic == "as_module":
            ip.run_cell_magic(magic, line, "X = 1\n")
        else:
            ip.run_line_magic(magic, line)


def test_argparse_messages_that_name_everything_stay(ip, unique):
    with pytest.raises(UsageError, match=r"unrecognized arguments: --bogus other$"):
        ip.run_cell_magic("as_module", f"{unique()} --bogus other", "X = 1\n")
    with pytest.raises(UsageError, match=r"the following arguments are required: name$"):
        ip.run_cell_magic("as_module", "--no-bind  # nothing else", "X = 1\n")


def test_an_unclosed_quotation_is_a_usage_error(ip):
    with pytest.raises(UsageError, match="""arguments '"geo': No closing quotation"""):
        ip.run_cell_magic("as_module", '"geo', "X = 1\n")
    with pytest.raises(UsageError, match="No closing quotation; close the quotation"):
        ip.run_line_magic("pycinfo", "'/tmp/x.pyc")


def test_modinfo_shows_the_name_asked_for(ip):
    info = ip.run_line_magic("modinfo", "_frozen_importlib")
    assert info["name"] == "_frozen_importlib"
    assert info["__name__"] == "importlib._bootstrap"
    assert "__name__" not in ip.run_line_magic("modinfo", "json")


def test_a_namespace_package_in_the_way_is_named(ip, unique, tmp_path, monkeypatch):
    name = unique("data")
    directory = tmp_path / name
    directory.mkdir()
    (directory / "prices.csv").write_text("day,price\n1,10\n")
    monkeypatch.syspath_prepend(tmp_path)
    where = re.escape(f"{directory} (a namespace package: a directory without __init__.py)")
    with pytest.raises(UsageError, match=f"'{name}': it can be imported from {where} and a"):
        ip.run_cell_magic("as_module", name, "X = 1\n")
    with pytest.raises(UsageError, match=f"its parent '{name}' can be imported from {where}"):
        ip.run_cell_magic("as_module", f"{name}.sub", "X = 1\n")
    assert name not in sys.modules


# -- thin magics ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ExecModMagics, ModuleMagics, ShipMagics])
def test_magic_methods_are_thin(cls):
    """Each magic parses, makes one call into the core and returns: at most 25 lines of body."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    magics = {name for table in cls.magics.values() for name in table}
    assert magics
    for node in tree.body[0].body:  # type: ignore[attr-defined]
        if isinstance(node, ast.FunctionDef) and node.name in magics:
            body = node.body[1:] if ast.get_docstring(node) else node.body
            length = node.end_lineno - body[0].lineno + 1
            assert length <= 25, f"{node.name}: {length} lines"


def test_names_ipython_keeps_for_itself_are_known(ip):
    """The names binding avoids include all IPython put in the user namespace itself."""
    assert {"get_ipython", "In", "Out", "exit", "quit", "_oh", "_dh", "_ih"} <= set(
        ip.user_ns_hidden
    )
    assert "display" in vars(builtins)  # IPython's display is a builtin, not a user_ns name


def test_pycinfo_resolves_its_target_in_the_core(unique):
    import json
    import types

    from ipyexecmod.inspection import PycNotFound, pyc_info_for
    from ipyexecmod.pyc import PycError

    assert pyc_info_for("json")["file"] == json.__cached__
    with pytest.raises(PycNotFound, match="'_nothing_here' is neither a file nor an imported"):
        pyc_info_for("_nothing_here")
    name = unique()
    sys.modules[name] = module = types.ModuleType(name)
    del module.__spec__  # a hand-made module without one
    with pytest.raises(PycNotFound, match=f"module '{name}' has no .pyc file") as caught:
        pyc_info_for(name)
    assert isinstance(caught.value, PycError)


def test_the_new_core_modules_do_not_import_ipython():
    import subprocess

    code = (
        "import sys, ipyexecmod.binding, ipyexecmod.typos;"
        "print(sorted(m for m in ('IPython', 'traitlets', 'ipykernel') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_syntax_error_the_code_raises_as_it_runs_keeps_its_traceback(ip, unique, capsys):
    name = unique()
    result, out = run(ip, capsys, f"%%as_module {name}\nX = 1\nY = eval('1 +')\n")
    assert type(result.error_in_exec) is SyntaxError
    assert "outside a function" not in out  # not taken for a top-level await
    assert "Y = eval('1 +')" in out  # the cell's frame is in the traceback
    assert name not in sys.modules


def test_lines_put_back_after_a_cell_are_those_of_the_version_defined_last(ip, unique):
    name = unique()
    define(ip, name, "def f():\n    return 'v1'\n")
    ip.run_cell(
        "import ipyexecmod.cells as _c, ipyexecmod.store as _s\n"
        "try:\n"
        f"    _c.define({name!r}, \"def f():\\n    return 'v2'\\nraise ValueError\\n\","
        " store=_s.kernel_store())\n"
        "except ValueError:\n"
        "    pass\n"
        f"_c.define({name!r}, \"def f():\\n    return 'v3'\\n\", store=_s.kernel_store())\n"
    )
    module = sys.modules[name]
    assert module.f() == "v3"
    assert inspect.getsource(module.f) == "def f():\n    return 'v3'\n"


def test_a_name_the_shell_put_there_itself_is_named_as_such(ip, unique, capsys):
    import json

    name = unique()
    ip.push({name: json}, interactive=False)  # as %pylab puts numpy's names there
    try:
        result, out = run(ip, capsys, f"%%as_module {name}\nVALUE = 1\n")
        assert result.success and ip.user_ns[name] is json
        assert f"the shell put {name!r} (a module) in the notebook itself, kept as it is" in out
    finally:
        ip.user_ns.pop(name, None)
        ip.user_ns_hidden.pop(name, None)
