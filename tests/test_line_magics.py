"""The line magics, completion and the extension's load/unload, in a real InteractiveShell."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import types

import pytest
from helpers import define
from IPython.core.completer import provisionalcompleter
from IPython.core.error import UsageError

import ipyexecmod
from ipyexecmod import cells
from ipyexecmod.inspection import MagicNumber, ModuleList, module_kind
from ipyexecmod.inspection.tables import LEFT


def formats(ip, value) -> dict:
    data, _metadata = ip.display_formatter.format(value)
    return data


# -- %lsmod ----------------------------------------------------------------------------------


def test_lsmod_lists_matching_modules_sorted_with_their_kind(ip, unique):
    names = [unique("b"), unique("a")]
    for name in names:
        define(ip, name)
    rows = ip.run_line_magic("lsmod", "_cm*")
    assert isinstance(rows, ModuleList)
    assert [row.name for row in rows] == sorted(row.name for row in rows)
    ours = [row for row in rows if row.name in names]
    assert [row.kind for row in ours] == ["cell", "cell"]
    assert [row.loader for row in ours] == ["SourceTextLoader"] * 2
    assert ours[0].origin == sys.modules[ours[0].name].__file__


def test_lsmod_cells_keeps_only_cell_modules(ip, unique):
    name = unique()
    define(ip, name)
    rows = ip.run_line_magic("lsmod", "--cells")
    assert name in [row.name for row in rows]
    assert {row.kind for row in rows} == {"cell"}
    assert "json" not in [row.name for row in rows]
    assert [row.name for row in ip.run_line_magic("lsmod", "json --cells")] == []


def test_kinds_of_modules(ip, tmp_path, monkeypatch, unique):
    import json

    assert module_kind(json) == "source"
    assert module_kind(sys) == "builtin"
    assert module_kind(sys.modules["_frozen_importlib"]) == "frozen"
    # a namespace package, and a module from bytecode only
    namespace, bytecode = unique("ns"), unique("pyc")
    (tmp_path / namespace).mkdir()
    source = tmp_path / f"{bytecode}.py"
    source.write_text("x = 1\n")
    import py_compile

    py_compile.compile(str(source), cfile=str(tmp_path / f"{bytecode}.pyc"))
    source.unlink()
    monkeypatch.syspath_prepend(tmp_path)
    assert module_kind(importlib.import_module(namespace)) == "namespace"
    assert module_kind(importlib.import_module(bytecode)) == "bytecode"
    import _ctypes

    if importlib.util.find_spec("_ctypes").origin.endswith(".so"):
        assert module_kind(_ctypes) == "extension"
    fake = types.ModuleType("fake")
    assert module_kind(fake) == "other"


def test_lsmod_displays_as_text_and_escaped_html(ip, unique):
    name = unique()
    define(ip, name)
    odd = unique("html")
    sys.modules[odd] = module = types.ModuleType(odd)
    module.__file__ = "<b>&x</b>"
    data = formats(ip, ip.run_line_magic("lsmod", "_cm*"))
    text, html = data["text/plain"], data["text/html"]
    assert text.splitlines()[0].split() == ["name", "kind", "origin", "loader"]
    assert any(line.split()[:2] == [name, "cell"] for line in text.splitlines())
    assert "&lt;b&gt;&amp;x&lt;/b&gt;" in html and "<b>&x</b>" not in html
    assert html.startswith("<table>") and f"<td{LEFT}>{name}</td>" in html
    assert f'<th scope="col"{LEFT}>name</th>' in html
    assert formats(ip, ip.run_line_magic("lsmod", "_no_such_*"))["text/plain"] == "no modules match"


def test_an_empty_lsmod_says_so_in_html_too(ip):
    # Not a bare header row, which reads as a table whose rows failed to show.
    html = formats(ip, ip.run_line_magic("lsmod", "_no_such_*"))["text/html"]
    assert html == "<p>no modules match</p>"


def test_html_table_cells_are_left_aligned_inline(ip, unique):
    # JupyterLab 4 right-aligns output table cells; only an inline style survives its
    # sanitizer in a reopened notebook.  Every th and td carries it, and no colour is set.
    define(ip, unique())
    for value in (ip.run_line_magic("lsmod", "_cm*"), ip.run_line_magic("modinfo", "json")):
        html = formats(ip, value)["text/html"]
        cells = re.findall(r"<t[hd][ >][^>]*>", html)
        assert cells and all(cell.endswith(f"{LEFT}>") for cell in cells)
        assert "color" not in html


# -- %modinfo -----------------------------------------------------------------------------


def test_modinfo_of_a_cell_module(ip, unique):
    name = unique("geo")
    first = ip.run_cell(f"%%as_module {name}\ndef f():\n    return 1\n", store_history=True)
    second = ip.run_cell(
        f"%%as_module {name}\ndef f():\n    return 2\n\n\nX = 3\n", store_history=True
    )
    assert second.execution_count == first.execution_count + 1
    module = sys.modules[name]
    info = ip.run_line_magic("modinfo", name)
    assert info["kind"] == "cell"
    assert info["defined in"] == f"In[{second.execution_count}]"
    assert info["redefinitions"] == 1
    assert info["lines"] == 5
    assert info["__file__"] == module.__file__ == info["origin"]
    assert info["__cached__"] == module.__cached__ == module.__spec__.cached
    assert info["loader"] is module.__loader__
    assert info["spec"] is module.__spec__
    text = formats(ip, info)["text/plain"]
    assert f"defined in     In[{second.execution_count}]" in text
    html = formats(ip, info)["text/html"]
    assert "<thead>" not in html  # keys are row headers, beside their values
    assert f'<tr><th scope="row"{LEFT}>lines</th><td{LEFT}>5</td></tr>' in html


def test_modinfo_shows_a_top_level_modules_empty_package_as_the_empty_string(ip, unique):
    name = unique()
    define(ip, name)
    info = ip.run_line_magic("modinfo", name)
    assert info["__package__"] == ""  # the value itself is unchanged
    html = formats(ip, info)["text/html"]
    assert f'<th scope="row"{LEFT}>__package__</th><td{LEFT}>&#x27;&#x27;</td>' in html
    leaf = unique("pkg") + ".leaf"
    define(ip, leaf)
    package = formats(ip, ip.run_line_magic("modinfo", leaf))["text/html"]
    assert f"__package__</th><td{LEFT}>{leaf.split('.')[0]}</td>" in package


def test_modinfo_of_other_modules_and_packages(ip, unique):
    import json

    info = ip.run_line_magic("modinfo", "json")
    assert info["kind"] == "source"
    assert info["__file__"] == json.__file__
    assert info["__path__"] == json.__path__
    assert "defined in" not in info
    package = unique("pkg")
    define(ip, f"{package}.leaf")
    implicit = ip.run_line_magic("modinfo", package)
    assert implicit["defined in"] == "(a parent package, no cell)"
    assert implicit["__path__"] == [os.path.dirname(sys.modules[package].__file__)]
    assert ip.run_line_magic("modinfo", f"{package}.leaf")["defined in"] == "(not from a cell)"


def test_modinfo_of_a_name_not_imported_is_a_usage_error(ip, unique):
    with pytest.raises(UsageError, match="no module named '_nothing_here' is imported"):
        ip.run_line_magic("modinfo", "_nothing_here")
    name = unique()
    define(ip, name)
    del sys.modules[name]
    with pytest.raises(UsageError, match=f"`import {name}` re-creates it"):
        ip.run_line_magic("modinfo", name)


# -- %magic_number and %magic_tag ----------------------------------------------------------


def test_magic_number_is_the_c_value_with_its_forms(ip):
    number = ip.run_line_magic("magic_number", "")
    expected = int.from_bytes(importlib.util.MAGIC_NUMBER, "little")
    assert isinstance(number, int) and number == expected
    assert str(number) == str(expected) and f"{number}" == str(expected)
    assert number.header == importlib.util.MAGIC_NUMBER
    text = formats(ip, number)["text/plain"]
    assert f"{expected} (0x{expected:08x})" in text
    assert importlib.util.MAGIC_NUMBER.hex(" ") in text
    assert f"CPython {sys.version_info.major}.{sys.version_info.minor}" in text
    assert f"<td{LEFT}>{expected & 0xFFFF}</td>" in formats(ip, number)["text/html"]
    assert "interpreter" not in repr(MagicNumber(1))  # a number of no known interpreter


def test_magic_tag_is_the_cache_tag(ip):
    tag = ip.run_line_magic("magic_tag", "")
    assert tag == sys.implementation.cache_tag and isinstance(tag, str)
    data = formats(ip, tag)
    assert data["text/plain"] == repr(sys.implementation.cache_tag)
    assert importlib.util.cache_from_source("spam.py") in data["text/html"]


def test_line_magics_refuse_stray_arguments(ip):
    with pytest.raises(UsageError, match="unrecognized arguments: extra"):
        ip.run_line_magic("magic_number", "extra")
    with pytest.raises(UsageError, match="unrecognized arguments: extra"):
        ip.run_line_magic("magic_tag", "extra")


def test_magics_return_values_to_assignments(ip):
    assert ip.run_cell("n = %magic_number\nt = %magic_tag\nrows = %lsmod json").success
    assert ip.user_ns["n"] == ipyexecmod.get_magic_number()
    assert ip.user_ns["t"] == ipyexecmod.get_magic_tag()
    assert [row.name for row in ip.user_ns["rows"]] == ["json"]


# -- %reload_module -------------------------------------------------------------------------


@pytest.fixture
def tally():
    module = sys.modules["_cm_tally"] = types.ModuleType("_cm_tally")
    module.runs = []
    yield module
    del sys.modules["_cm_tally"]


def test_reload_module_reexecutes_a_cell_modules_latest_source(ip, unique, tally):
    name = unique()
    module = define(ip, name, "import _cm_tally\n_cm_tally.runs.append(1)\nVALUE = 1\n")
    define(ip, name, "import _cm_tally\n_cm_tally.runs.append(2)\nVALUE = 2\n")
    module.VALUE = None
    assert ip.run_line_magic("reload_module", name) is module
    assert tally.runs == [1, 2, 2] and module.VALUE == 2


def test_reload_module_of_a_cell_module_is_a_transaction(ip, unique, tally):
    name = unique()
    body = "import _cm_tally\nif _cm_tally.runs:\n    raise RuntimeError('second run')\n"
    module = define(ip, name, body + "_cm_tally.runs.append(1)\nVALUE = 1\n")
    namespace = dict(vars(module))
    with pytest.raises(RuntimeError, match="second run"):
        ip.run_line_magic("reload_module", name)
    assert sys.modules[name] is module and vars(module) == namespace


def test_reload_module_reloads_other_modules(ip, unique, tmp_path, monkeypatch):
    name = unique("file")
    path = tmp_path / f"{name}.py"
    path.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(tmp_path)
    module = importlib.import_module(name)
    path.write_text("VALUE = 22\n")  # another size: the stale-.pyc check sees it
    assert ip.run_line_magic("reload_module", name) is module
    assert module.VALUE == 22


def test_reload_module_through_another_name(ip, unique, tally):
    name = unique()
    module = define(ip, name, "import _cm_tally\n_cm_tally.runs.append(1)\n")
    sys.modules[f"{name}_alias"] = module
    try:
        assert ip.run_line_magic("reload_module", f"{name}_alias") is module
    finally:
        del sys.modules[f"{name}_alias"]
    assert tally.runs == [1, 1]


def test_reload_module_of_a_name_not_imported_is_a_usage_error(ip):
    with pytest.raises(UsageError, match="no module named '_nothing_here' is imported"):
        ip.run_line_magic("reload_module", "_nothing_here")


# -- completion -----------------------------------------------------------------------------


def complete(ip, line: str) -> list[str]:
    with provisionalcompleter():
        return [c.text for c in ip.Completer.completions(line, len(line))]


@pytest.mark.parametrize("magic", ["%reload_module", "%modinfo", "%lsmod", "%lsmod --cells"])
def test_module_names_complete_after_the_magics(ip, unique, magic):
    name = unique("completion")
    define(ip, name)
    assert complete(ip, f"{magic} {name[:-3]}") == [name]
    assert "json.decoder" in complete(ip, f"{magic} json.")


def test_module_names_complete_in_assignments(ip):
    assert "json.decoder" in complete(ip, "info = %modinfo json.de")


def test_completion_leaves_other_lines_alone(ip, unique):
    name = unique("completion")
    define(ip, name)
    assert name not in complete(ip, f"%time {name[:-3]}x")
    assert "import" in complete(ip, "impo")


# -- the extension ---------------------------------------------------------------------------


def extension_state(shell) -> dict:
    manager = shell.magics_manager
    return {
        "finders": sum(type(f) is cells.CellModuleFinder for f in sys.meta_path),
        "line": sorted(
            n
            for n in ("lsmod", "modinfo", "magic_number", "magic_tag", "pycinfo", "reload_module")
            if n in manager.magics["line"]
        ),
        "cell": "as_module" in manager.magics["cell"],
        "matchers": len(shell.Completer.custom_matchers),
        "configurables": sum(type(c).__name__ == "ExecModMagics" for c in shell.configurables),
        "callbacks": {event: len(callbacks) for event, callbacks in shell.events.callbacks.items()},
    }


def test_load_unload_reload_are_symmetric(shell, unique):
    before = extension_state(shell)
    assert before["finders"] == 0 and not before["cell"]
    shell.run_line_magic("load_ext", "ipyexecmod")
    loaded = extension_state(shell)
    assert loaded["finders"] == 1 and loaded["cell"] and len(loaded["line"]) == 6
    assert loaded["matchers"] == before["matchers"] + 1
    assert loaded["configurables"] == 1
    name = unique()
    module = define(shell, name, "VALUE = 1\n")
    for _ in range(3):
        shell.run_line_magic("reload_ext", "ipyexecmod")
        assert extension_state(shell) == loaded
    ipyexecmod.load_ipython_extension(shell)  # twice without %unload_ext: still one of each
    assert extension_state(shell) == loaded
    assert importlib.reload(module) is module  # the finder still serves it
    shell.run_line_magic("unload_ext", "ipyexecmod")
    assert extension_state(shell) == before
    assert shell.find_cell_magic("as_module") is None
    assert sys.modules[name] is module and module.VALUE == 1  # imported modules stay
    shell.run_line_magic("load_ext", "ipyexecmod")
    try:
        assert importlib.reload(module) is module
        assert define(shell, name, "VALUE = 2\n") is module
    finally:
        shell.run_line_magic("unload_ext", "ipyexecmod")


def test_options_are_traits_configurable_from_a_profile(shell, unique):
    from traitlets.config import Config

    config = Config()
    config.ExecModMagics.bind = False
    shell.config.merge(config)
    try:
        shell.run_line_magic("load_ext", "ipyexecmod")
        magics = shell.magics_manager.registry["ExecModMagics"]
        assert magics.bind is False
        name = unique()
        define(shell, name)
        assert name not in shell.user_ns
        shell.run_line_magic("config", "ExecModMagics.bind = True")
        assert magics.bind is True
        assert "Bind a cell module's name" in magics.class_get_trait_help(magics.traits()["bind"])
    finally:
        shell.run_line_magic("unload_ext", "ipyexecmod")
        shell.config.pop("ExecModMagics", None)


def test_help_names_the_cell_magic(ip):
    doc = ip.find_cell_magic("as_module").__doc__
    usage = " ".join(doc.split())  # argparse wraps the usage line once it is long
    options = "[--no-bind] [--no-persist] [--persist-dir DIR] [--force] [--no-deps]"
    assert f"%as_module {options} [--update-instances] name" in usage
    assert "%%as_module NAME: make the cell a real, importable module" in doc
    assert "--force" in doc and "--no-bind" in doc and "--persist-dir" in doc


def test_core_and_inspection_do_not_import_ipython():
    import subprocess

    code = (
        "import sys, ipyexecmod, ipyexecmod.cells, ipyexecmod.inspection;"
        "ipyexecmod.cells.define('m', 'x = 1');"
        "print(sorted(m for m in ('IPython', 'traitlets', 'ipykernel') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_html_is_escaped_as_the_html_module_escapes_it():
    import html

    from ipyexecmod.inspection.tables import escape

    text = '<a href="x">&\'</a> ünïcode'
    assert escape(text) == html.escape(text)
