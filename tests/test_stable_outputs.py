"""What users see stays the same from run to run (issue 14): the line magics and IPython's
tracebacks show the private directory as ``<store>``, while ``__file__``, specs and
``co_filename`` keep the real paths."""

from __future__ import annotations

import os
import re
import sys
import traceback

from helpers import define, run_python
from IPython.core.compilerop import CachingCompiler

from ipyexecmod import cells
from ipyexecmod.inspection import frame_name
from ipyexecmod.lasting import lasting_store
from ipyexecmod.store import display_path, kernel_store

GEO = "def area(r):\n    return 3 * r * r\n\n\ndef fail():\n    raise ValueError('on purpose')\n"


def private_name() -> str:
    """The private directory's random name, which no output may show."""
    return os.path.basename(kernel_store().directory)


def plain(text: str) -> str:
    """``text`` without the ANSI colour codes of IPython's tracebacks."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def shown_forms(ip, value) -> list[str]:
    """``value`` as a terminal shows it and as a notebook does."""
    data, _metadata = ip.display_formatter.format(value)
    return [data["text/plain"], data["text/html"]]


# -- display_path ------------------------------------------------------------------------


def test_display_path_replaces_the_private_directory_only(tmp_path):
    directory = kernel_store().directory
    assert display_path(os.path.join(directory, "geo.py")) == "<store>/geo.py"
    assert display_path(directory) == "<store>"
    text = f"<SourceTextLoader 'geo' from '{directory}/geo.py@2'>"
    assert display_path(text) == "<SourceTextLoader 'geo' from '<store>/geo.py@2'>"
    assert display_path(directory + "x/geo.py") == directory + "x/geo.py"  # another directory
    lasting = lasting_store(tmp_path / "lasting").directory
    assert display_path(os.path.join(lasting, "geo.py")) == os.path.join(lasting, "geo.py")


# -- the line magics ---------------------------------------------------------------------


def test_the_line_magics_show_the_private_directory_as_store(ip, unique):
    name, package = unique("geo"), unique("shapes")
    module = define(ip, name, GEO)
    define(ip, f"{package}.circle", "R = 1\n")
    outputs = {
        "lsmod": ip.run_line_magic("lsmod", "--cells"),
        "modinfo": ip.run_line_magic("modinfo", name),
        "modinfo package": ip.run_line_magic("modinfo", package),
        "pycinfo": ip.run_line_magic("pycinfo", name),
    }
    for magic, value in outputs.items():
        plain, html = shown_forms(ip, value)
        assert private_name() not in plain + html, magic
        assert "<store>/" in plain and "&lt;store&gt;/" in html, magic
    plain = repr(outputs["modinfo"])
    assert f"'<store>/{name}.py@1'" in plain  # the loader's filename, in its repr and spec's
    assert f"<store>/__pycache__/{name}.{sys.implementation.cache_tag}.pyc" in plain
    assert f"<store>/{package}/__init__.py" in repr(outputs["lsmod"])
    # the values keep the real paths: only their display changes
    assert outputs["modinfo"]["__file__"] == module.__file__ == kernel_store().paths(name, False)[0]
    assert outputs["pycinfo"]["file"] == module.__cached__
    assert [row.origin for row in outputs["lsmod"] if row.name == name] == [module.__file__]


def test_a_lasting_directorys_paths_are_shown_as_they_are(ip, unique, tmp_path):
    name = unique()
    module = define(ip, name, "X = 1\n", f"--persist-dir {tmp_path / 'lasting'}")
    plain = repr(ip.run_line_magic("modinfo", name))
    assert module.__file__ in plain and f"'{module.__file__}@1'" in plain
    assert "<store>" not in plain


def test_two_processes_show_the_same_outputs():
    """The same cells in two fresh shells: the same text, to the byte."""
    script = f"""
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config
        config = Config()
        config.HistoryAccessor.enabled = False
        ip = InteractiveShell.instance(config=config)
        ip.run_line_magic("load_ext", "ipyexecmod")
        ip.run_cell_magic("as_module", "geometry", {GEO!r})
        ip.run_cell_magic("as_module", "shapes.circle", "R = 1\\n")
        ip.run_cell_magic("as_module", "geometry", {GEO.replace("3 *", "4 *")!r})
        for line in ("lsmod --cells", "modinfo geometry", "modinfo shapes", "pycinfo geometry"):
            value = ip.run_line_magic(*line.split(" ", 1))
            data, _ = ip.display_formatter.format(value)
            print(data["text/plain"], data["text/html"], sep="\\n")
        ip.run_line_magic("xmode", "Plain")
        ip.run_line_magic("colors", "nocolor")
        ip.run_cell("import geometry; geometry.fail()")
    """
    first, second = run_python(script), run_python(script)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert "<store>/geometry.py" in first.stdout
    assert "Cell module geometry (version 2), line 6 in fail" in first.stdout
    assert "ipyexecmod-" not in first.stdout
    assert first.stdout == second.stdout


# -- tracebacks --------------------------------------------------------------------------


def test_a_traceback_names_a_cell_modules_frame_after_the_module(ip, unique, capsys):
    name = unique("geo")
    module = define(ip, name, GEO)
    define(ip, name, GEO + "\nVERSION = 2\n")
    result = ip.run_cell(f"{name}.fail()")
    assert isinstance(result.error_in_exec, ValueError)
    out = plain(capsys.readouterr().out)
    assert f"Cell module {name} (version 2), line 6, in fail()" in out
    assert "raise ValueError('on purpose')" in out  # the lines, as before
    assert private_name() not in out
    # the real path stays everywhere but in the display
    frame = traceback.extract_tb(result.error_in_exec.__traceback__)[-1]
    assert frame.filename == f"{module.__file__}@2" == module.fail.__code__.co_filename


def test_a_submodule_and_a_package_are_named_by_their_dotted_name(ip, unique, capsys):
    package = unique("shapes")
    # Defined by code, not from a cell of its own: its code has a version's own name.
    magic = f"get_ipython().run_cell_magic('as_module', '{package}.circle', 'R = 1 / 0\\n')"
    result = ip.run_cell(magic)
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert f"Cell module {package}.circle (version 1), line 1" in plain(capsys.readouterr().out)
    directory = kernel_store().directory
    assert frame_name(f"{directory}/{package}/__init__.py@3") == (
        "Cell module",
        f"{package} (version 3)",
    )
    # a file of the private directory that no version is compiled under: its path
    assert frame_name(f"{directory}/{package}/circle.py") == (
        "File",
        f"<store>/{package}/circle.py",
    )
    assert frame_name(f"{directory}/.boot/x.py@1") == ("File", "<store>/.boot/x.py@1")
    assert frame_name("/elsewhere/geo.py@1") is None


def test_a_lasting_directorys_frames_are_named_after_their_module_too(ip, unique, tmp_path, capsys):
    """``PATH@1`` is no file: a frame is named after its module wherever its copy is."""
    name = unique()
    define(ip, name, GEO, f"--persist-dir {tmp_path}")
    ip.run_cell(f"{name}.fail()")
    shown = plain(capsys.readouterr().out)
    assert f"Cell module {name} (version 1), line 6, in fail()" in shown, shown
    assert str(tmp_path) not in shown


def test_unload_ext_gives_ipython_its_own_naming_back(ip, unique, capsys):
    name = unique("geo")
    module = define(ip, name, GEO)
    ip.run_line_magic("unload_ext", "ipyexecmod")
    assert "format_code_name" not in vars(ip.compile)  # the class's method again
    assert ip.compile.format_code_name(f"{module.__file__}@1") is None
    ip.run_cell(f"{name}.fail()")
    assert f"File {module.__file__}@1:6, in fail()" in plain(capsys.readouterr().out)
    ip.run_line_magic("load_ext", "ipyexecmod")
    ip.run_cell(f"{name}.fail()")
    assert f"Cell module {name} (version 1), line 6" in plain(capsys.readouterr().out)


def test_a_wrapper_put_on_top_of_ours_is_left_in_place(ip, unique, capsys):
    """Another extension wraps the same method after us: %unload_ext cannot take ours out
    of its chain, so ours passes every name through until loaded again (once, not twice)."""
    name = unique("geo")
    module = define(ip, name, GEO)
    ours = ip.compile.format_code_name

    def theirs(filename: str) -> tuple[str, str] | None:
        return ("Theirs", "x") if filename == "<theirs>" else ours(filename)

    ip.compile.format_code_name = theirs
    try:
        ip.run_line_magic("unload_ext", "ipyexecmod")
        assert ip.compile.format_code_name is theirs
        assert theirs(f"{module.__file__}@1") is None and theirs("<theirs>") == ("Theirs", "x")
        ip.run_line_magic("load_ext", "ipyexecmod")
        assert ip.compile.format_code_name is theirs  # taken up again, not wrapped twice
        assert theirs(f"{module.__file__}@1") == ("Cell module", f"{name} (version 1)")
    finally:
        ip.compile.format_code_name = ours
    ip.run_line_magic("unload_ext", "ipyexecmod")
    assert "format_code_name" not in vars(ip.compile)
    ip.run_line_magic("load_ext", "ipyexecmod")


def test_pin_ipython_names_a_frame_as_its_compilers_format_code_name_says(shell, capsys):
    """What naming cell modules' frames relies on in the installed IPython: a traceback
    asks ``shell.compile.format_code_name(filename)`` (an instance attribute wins), shows
    ``label name, line N`` for a pair and ``File PATH:N`` for ``None``, which the class's
    method returns for any file that is not a cell."""
    assert isinstance(shell.compile, CachingCompiler)
    assert CachingCompiler.format_code_name(shell.compile, "/pinned/geo.py") is None
    code = compile("def f():\n    return 1 / 0\n", "/pinned/geo.py@7", "exec")
    namespace: dict = {}
    exec(code, namespace)
    shell.user_ns["_pinned_f"] = namespace["f"]
    mode = shell.InteractiveTB.mode
    try:
        shell.run_cell("_pinned_f()")
        assert "File /pinned/geo.py@7:2, in f()" in plain(capsys.readouterr().out)
        shell.compile.format_code_name = lambda f: ("Label", "the name") if "@7" in f else None
        shell.run_cell("_pinned_f()")
        assert "Label the name, line 2, in f()" in plain(capsys.readouterr().out)
        shell.run_line_magic("xmode", "Plain")
        shell.run_cell("_pinned_f()")
        assert "Label the name, line 2 in f" in plain(capsys.readouterr().out)
    finally:
        shell.run_line_magic("xmode", mode)
        del shell.compile.format_code_name
        del shell.user_ns["_pinned_f"]


def test_a_module_kept_in_memory_is_named_the_same_way_in_tracebacks(ip, unique, capsys):
    name = unique()
    define(ip, name, GEO, "--no-persist")
    ip.run_cell(f"{name}.fail()")
    shown = plain(capsys.readouterr().out)
    assert f"Cell module {name} (version 1), line 6, in fail()" in shown, shown
    assert cells.finder.get(name).version.filename == f"ipyexecmod:{name}@1"
