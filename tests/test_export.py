"""``ipyexecmod.export(name, to)`` and ``%export_module`` (issue 18, parts 2 and 5): the
version of a cell module that ran, as plain ``.py`` files with a provenance header.

Real files under ``tmp_path``, a real shell, and fresh interpreters (``-I -S``: no
environment, no site-packages, so no ipyexecmod) that import what was exported.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import test_magics_ui
from helpers import HANG_GUARD, define, restored
from IPython.core.error import UsageError

import ipyexecmod
from ipyexecmod import cells
from ipyexecmod.cells.history import Entry
from ipyexecmod.exportfile import parse_header, read_header, render
from ipyexecmod.exports import ExportError, FilesInTheWay, NotExportable
from ipyexecmod.inspection.exports import Exported
from ipyexecmod.inspection.tables import LEFT
from ipyexecmod.magics import ExportMagics

#: What a fresh interpreter prints after importing ``{name}`` with only ``{root}`` added
#: to sys.path: the names asked for, its file, and whether ipyexecmod could be imported.
IMPORT_ALONE = """\
import importlib, importlib.util, json, sys
sys.path.insert(0, {root!r})
module = importlib.import_module({name!r})
print(json.dumps([
    {{each: repr(getattr(module, each, None)) for each in {names!r}}},
    module.__file__,
    importlib.util.find_spec("ipyexecmod") is not None,
]))
"""


def import_alone(root: Path, name: str, *names: str) -> dict[str, str]:
    """The reprs of ``names`` of module ``name`` as a new interpreter imports it from
    ``root``: isolated (``-I``) and without site-packages (``-S``), where ipyexecmod is."""
    code = IMPORT_ALONE.format(root=str(root), name=name, names=list(names))
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        cwd=root,
    )
    assert out.returncode == 0, out.stderr
    values, file, has_ipyexecmod = json.loads(out.stdout)
    assert not has_ipyexecmod and Path(file).is_relative_to(root)
    return values


def cell(ip, name: str, body: str, options: str = "") -> int:
    """Run ``%%as_module name`` as a notebook cell; its ``In[N]``.  Raises what it raises."""
    result = ip.run_cell(f"%%as_module {options} {name}\n{body}", store_history=True)
    result.raise_error()
    return result.execution_count


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (``None``) under ``root``."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes() if path.is_file() else None
        for path in sorted(root.rglob("*"))
    }


def header_of(path: Path) -> list[str]:
    return path.read_text().splitlines()[:2]


def iso(when: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(when))[:-2]
        + ":"
        + (time.strftime("%z", time.localtime(when))[-2:])
    )


# -- a module, and the version that ran ----------------------------------------------------


def test_a_module_is_written_with_its_header_and_source_byte_for_byte(ip, unique, tmp_path):
    name = unique("geo")
    body = '"""Areas."""\n\ndef area(r):\n    return 3 * r * r\n'
    number = cell(ip, name, body)
    entry = cells.finder.get(name).history.latest()
    exported = ipyexecmod.export(name, tmp_path)
    path = tmp_path / f"{name}.py"
    assert isinstance(exported, Exported) and exported.root == tmp_path
    assert [(f.path, f.module, f.version, f.status) for f in exported] == [
        (path, name, 1, "written")
    ]
    assert header_of(path) == [
        f"# ipyexecmod export: module '{name}', version 1 from In[{number}] at {iso(entry.when)}",
        f"# sha256 of the source around this header: {hashlib.sha256(body.encode()).hexdigest()}",
    ]
    data = path.read_bytes()
    assert data.split(b"\n", 2)[2] == body.encode()
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask  # an ordinary file
    assert read_header(str(path)) == (name, 1)
    assert import_alone(tmp_path, name, "__doc__") == {"__doc__": "'Areas.'"}


def test_the_version_that_ran_is_exported_not_a_later_failed_cell(ip, unique, tmp_path):
    name = unique("geo")
    cell(ip, name, "VERSION = 1\n")
    with pytest.raises(ZeroDivisionError):
        cell(ip, name, "VERSION = 2\n1 / 0\n")
    ipyexecmod.export(name, tmp_path)
    assert import_alone(tmp_path, name, "VERSION") == {"VERSION": "1"}
    cells.define(name, "VERSION = 3\n")  # through the API: no cell
    (written,) = ipyexecmod.export(name, tmp_path)
    assert written.status == "replaced" and written.version == 2
    assert "version 2 from no cell (define()) at " in header_of(written.path)[0]
    assert import_alone(tmp_path, name, "VERSION") == {"VERSION": "3"}


def test_a_reverted_version_is_exported_and_its_header_says_so(ip, unique, tmp_path):
    name = unique("geo")
    cell(ip, name, "VERSION = 1\n")
    cell(ip, name, "VERSION = 2\n")
    ip.run_line_magic("revert", f"{name} 1")
    (written,) = ipyexecmod.export(name, tmp_path)
    assert written.version == 3
    assert "version 3 from no cell (revert to 1) at " in header_of(written.path)[0]
    assert import_alone(tmp_path, name, "VERSION") == {"VERSION": "1"}


def test_exporting_the_same_version_again_rewrites_nothing(ip, unique, tmp_path):
    name = unique("geo")
    define(ip, name, "VERSION = 1\n")
    (first,) = ipyexecmod.export(name, tmp_path)
    before = os.stat(first.path)
    (again,) = ipyexecmod.export(name, tmp_path)
    after = os.stat(first.path)
    assert again.status == "unchanged" and (before.st_ino, before.st_mtime_ns) == (
        after.st_ino,
        after.st_mtime_ns,
    )


def test_a_new_version_of_the_same_size_replaces_pythons_cached_bytecode(ip, unique, tmp_path):
    """Python checks a .pyc against its source's mtime (in seconds) and size: a file
    rewritten in the same second with as many bytes would run the old code."""
    name = unique("geo")
    define(ip, name, "VERSION = 1\n")
    (first,) = ipyexecmod.export(name, tmp_path)
    assert import_alone(tmp_path, name, "VERSION") == {"VERSION": "1"}  # writes __pycache__
    was = os.stat(first.path)
    define(ip, name, "VERSION = 2\n")
    (second,) = ipyexecmod.export(name, tmp_path)
    assert os.stat(second.path).st_size == was.st_size
    os.utime(second.path, ns=(was.st_atime_ns, was.st_mtime_ns))  # the same second
    assert not list((tmp_path / "__pycache__").glob(f"{name}.*.pyc"))
    assert import_alone(tmp_path, name, "VERSION") == {"VERSION": "2"}


# -- packages -----------------------------------------------------------------------------


def test_a_package_is_written_with_every_module_below_it(ip, unique, tmp_path):
    top = unique("pkg")
    define(ip, top, "UNIT = 5\n")
    define(ip, f"{top}.shapes.circle", "from .. import UNIT\nR = 2 * UNIT\n")
    define(ip, f"{top}.shapes.square", "from .circle import R\nSIDE = R + 1\n")
    exported = ipyexecmod.export(top, tmp_path)
    assert [(f.path.relative_to(tmp_path).as_posix(), f.version) for f in exported] == [
        (f"{top}/__init__.py", 1),
        (f"{top}/shapes/__init__.py", None),
        (f"{top}/shapes/circle.py", 1),
        (f"{top}/shapes/square.py", 1),
    ]
    implicit = tmp_path / top / "shapes" / "__init__.py"
    assert header_of(implicit) == [
        f"# ipyexecmod export: package '{top}.shapes', made for its modules (no cell of its own)",
        f"# sha256 of the source around this header: {hashlib.sha256(b'').hexdigest()}",
    ]
    assert len(implicit.read_bytes().splitlines()) == 2
    values = import_alone(tmp_path, f"{top}.shapes.square", "SIDE", "R")
    assert values == {"SIDE": "11", "R": "10"}


def test_a_dotted_name_writes_its_parents_init_too(ip, unique, tmp_path):
    top = unique("pkg")
    define(ip, top, "NAME = 'top'\n")
    define(ip, f"{top}.sub", "from . import NAME\n")
    define(ip, f"{top}.other", "X = 1\n")
    exported = ipyexecmod.export(f"{top}.sub", tmp_path)
    assert [f.path.relative_to(tmp_path).as_posix() for f in exported] == [
        f"{top}/__init__.py",
        f"{top}/sub.py",
    ]
    assert import_alone(tmp_path, f"{top}.sub", "NAME") == {"NAME": "'top'"}


def test_files_of_modules_that_no_longer_exist_are_left_and_listed(ip, unique, tmp_path):
    """An earlier kernel exported ``pkg.gone``; this one has no such module."""
    top = unique("pkg")
    define(ip, top, "X = 1\n")
    define(ip, f"{top}.kept", "Y = 1\n")
    gone = tmp_path / top / "gone.py"
    gone.parent.mkdir()
    gone.write_bytes(render(f"{top}.gone", Entry(4, "Z = 1\n", time.time(), 7, "cell"), False))
    data = gone.read_bytes()
    exported = ipyexecmod.export(top, tmp_path)
    assert [(f.path, f.module, f.version, f.status) for f in exported][-1] == (
        gone,
        f"{top}.gone",
        4,
        "left",
    )
    assert gone.read_bytes() == data
    assert "left: no such module now" in repr(exported)


# -- what Python reads at the top of a file -----------------------------------------------


def test_future_imports_a_shebang_and_a_coding_declaration_keep_working(ip, unique, tmp_path):
    name = unique("script")
    body = (
        "#!/usr/bin/env python3\n# -*- coding: latin-1 -*-\n"
        "from __future__ import annotations\nS = 'é'\n"
    )
    define(ip, name, body)
    (exported,) = ipyexecmod.export(name, tmp_path)
    lines = exported.path.read_bytes().splitlines(keepends=True)
    assert lines[:2] == [b"#!/usr/bin/env python3\n", b"# -*- coding: latin-1 -*-\n"]
    assert lines[2].startswith(b"# ipyexecmod export: ") and lines[-1] == "S = 'é'\n".encode(
        "latin-1"
    )
    assert read_header(str(exported.path)) == (name, 1)
    assert import_alone(tmp_path, name, "S", "annotations") == {
        "S": "'é'",
        "annotations": repr(__import__("__future__").annotations),
    }


def test_a_coding_declaration_that_cannot_hold_the_source_is_refused(ip, unique, tmp_path):
    name = unique("bad")
    define(ip, name, "# coding: ascii\nS = 'é'\n")  # the notebook ignores the declaration
    with pytest.raises(NotExportable, match=r"its coding declaration '# coding: ascii' says the"):
        ipyexecmod.export(name, tmp_path)
    define(ip, name, "# coding: nonesuch\nS = 1\n")
    with pytest.raises(
        NotExportable,
        match="Python knows no encoding 'nonesuch' \\(in the notebook it had no effect\\); declare",
    ):
        ipyexecmod.export(name, tmp_path)
    assert tree(tmp_path) == {}


def test_a_header_is_found_only_where_it_was_written_and_with_its_digest():
    data = render("m", Entry(2, "X = 1\n", 0.0, 3, "cell"), False)
    assert parse_header(data) == ("m", 2)
    assert parse_header(data + b"Y = 2\n") is None  # the source edited
    assert parse_header(b"\n\n\n" + data) is None  # not in the first three lines
    assert parse_header(data.replace(b"version 2", b"version 3")) == ("m", 3)


# -- never over the user's files ----------------------------------------------------------


def test_a_file_of_the_users_is_refused_then_moved_aside_with_force(ip, unique, tmp_path):
    top = unique("pkg")
    define(ip, top, "X = 1\n")
    define(ip, f"{top}.sub", "Y = 1\n")
    (tmp_path / top).mkdir()
    mine = {tmp_path / top / "__init__.py": b"mine\n", tmp_path / top / "sub.py": b"mine too\n"}
    for path, data in mine.items():
        path.write_bytes(data)
    (tmp_path / top / "sub.py.orig").write_bytes(b"an older one\n")
    before = tree(tmp_path)
    with pytest.raises(FilesInTheWay) as refused:
        ipyexecmod.export(top, tmp_path)
    init, sub = (str(path) for path in mine)
    assert isinstance(refused.value, FileExistsError)
    assert refused.value.moves == ((init, f"{init}.orig"), (sub, f"{sub}.orig-2"))
    assert f"{init}, {sub} are not ipyexecmod's export (or were edited since)" in str(refused.value)
    assert f"use force (--force) to move {init} to {init}.orig, {sub} to {sub}.orig-2" in str(
        refused.value
    )
    assert tree(tmp_path) == before  # nothing written, nothing left behind
    exported = ipyexecmod.export(top, tmp_path, force=True)
    assert [f.moved_aside for f in exported] == [Path(f"{init}.orig"), Path(f"{sub}.orig-2")]
    assert Path(f"{init}.orig").read_bytes() == b"mine\n"
    assert Path(f"{sub}.orig-2").read_bytes() == b"mine too\n"
    assert (tmp_path / top / "sub.py.orig").read_bytes() == b"an older one\n"
    assert import_alone(tmp_path, f"{top}.sub", "Y") == {"Y": "1"}


def test_an_export_edited_by_hand_is_the_users(ip, unique, tmp_path):
    name = unique("geo")
    define(ip, name, "VERSION = 1\n")
    (exported,) = ipyexecmod.export(name, tmp_path)
    edited = exported.path.read_bytes() + b"EXTRA = 1\n"
    exported.path.write_bytes(edited)
    define(ip, name, "VERSION = 2\n")
    with pytest.raises(
        FilesInTheWay,
        match=re.escape(f"{exported.path} is not ipyexecmod's export (or was edited since)"),
    ):
        ipyexecmod.export(name, tmp_path)
    assert exported.path.read_bytes() == edited


@pytest.mark.parametrize(
    "way",
    ["a folder where the file goes", "a file where a folder goes", "a package the import takes"],
)
def test_folders_and_files_in_the_way_are_refused_and_moved_with_force(ip, unique, tmp_path, way):
    top = unique("pkg")
    define(ip, f"{top}.sub", "Y = 1\n")
    if way == "a folder where the file goes":
        blocking = tmp_path / top / "sub.py"
        blocking.mkdir(parents=True)
    elif way == "a file where a folder goes":
        blocking = tmp_path / top
        blocking.write_text("a file\n")
    else:  # a package folder sub/ with an __init__.py: `import top.sub` would take it
        blocking = tmp_path / top / "sub"
        blocking.mkdir(parents=True)
        (blocking / "__init__.py").write_text("Y = 'theirs'\n")
    before = tree(tmp_path)
    with pytest.raises(FilesInTheWay, match=re.escape(f"move {blocking} to {blocking}.orig")) as e:
        ipyexecmod.export(f"{top}.sub", tmp_path)
    instead = f"Python would import {blocking} instead of the export; nothing was written"
    assert (instead in str(e.value)) == (way == "a package the import takes")
    assert tree(tmp_path) == before
    exported = ipyexecmod.export(f"{top}.sub", tmp_path, force=True)
    assert Path(f"{blocking}.orig").exists()
    assert any(f.moved_aside == Path(f"{blocking}.orig") for f in exported)
    assert import_alone(tmp_path, f"{top}.sub", "Y") == {"Y": "1"}


def test_a_failed_write_leaves_everything_as_it_was(unique, tmp_path):
    """A file-size limit (RLIMIT_FSIZE) makes the second file's write fail, after the
    first was written to its temporary file and a file of the user's moved aside."""
    top = unique("pkg")
    root = tmp_path / "out"
    (root / top).mkdir(parents=True)
    (root / top / "__init__.py").write_bytes(b"mine\n")
    before = tree(tmp_path)
    code = f"""
        import json, resource, signal
        from ipyexecmod import cells, export
        from ipyexecmod.exports import ExportError
        cells.define({top!r}, "X = 1\\n")
        cells.define({top + ".big"!r}, "DATA = " + repr("x" * 20000) + "\\n")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (10000, resource.RLIM_INFINITY))
        try:
            export({top!r}, {str(root)!r}, force=True)
        except ExportError as exc:
            print(json.dumps([type(exc.__cause__).__name__, str(exc)]))
        """
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    assert out.returncode == 0, out.stderr
    cause, message = json.loads(out.stdout)
    assert cause == "OSError" and message.startswith(f"could not export to {root}: ")
    assert tree(tmp_path) == before


# -- bad input ----------------------------------------------------------------------------


def test_what_is_not_a_cell_module_of_this_kernel_is_refused(ip, unique, tmp_path, restoring):
    tmp_path = tmp_path / "out"  # beside the lasting directory
    tmp_path.mkdir()
    with pytest.raises(TypeError, match="export\\(\\) takes a module name as a str, not int"):
        ipyexecmod.export(3, tmp_path)  # type: ignore[arg-type]
    with pytest.raises(NotExportable, match="'1x' is not a module name: name a cell module"):
        ipyexecmod.export("1x", tmp_path)
    with pytest.raises(NotExportable, match="'json' is not a cell module: only modules made"):
        ipyexecmod.export("json", tmp_path)
    missing = unique("missing")
    with pytest.raises(NotExportable, match=f"no cell module '{missing}': define it first"):
        ipyexecmod.export(missing, tmp_path)
    old = unique("old")
    restored(old, "X = 1\n", restoring)
    with pytest.raises(NotExportable, match=f"'{old}' came from a copy that an earlier kernel"):
        ipyexecmod.export(old, tmp_path)
    assert tree(tmp_path) == {}
    name = unique("geo")
    define(ip, name)
    (tmp_path / "file").write_text("")
    with pytest.raises(NotExportable, match="file: it is not a directory; give a directory"):
        ipyexecmod.export(name, tmp_path / "file")
    assert isinstance(NotExportable("x"), ValueError | ExportError)


def test_ipyexecmod_export_stays_a_function_and_import_stays_light(tmp_path):
    """``import ipyexecmod`` imports no export machinery, and an export no IPython; the
    module ``ipyexecmod.exports``, once imported, does not hide the function."""
    code = (
        "import sys, ipyexecmod; print('ipyexecmod.exports' in sys.modules);"
        "from ipyexecmod import cells; cells.define('m', 'X = 1\\n');"
        f"ipyexecmod.export('m', {str(tmp_path)!r});"
        "print(callable(ipyexecmod.export), 'IPython' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "False"]


# -- the magic ----------------------------------------------------------------------------


def test_the_magic_exports_under_the_current_directory_or_to(ip, unique, tmp_path, monkeypatch):
    name = unique("geo")
    define(ip, name, "VERSION = 1\n")
    monkeypatch.chdir(tmp_path)
    exported = ip.run_line_magic("export_module", name)
    assert exported.written == (tmp_path / f"{name}.py",)
    html = exported._repr_html_()
    assert (
        f"<td{LEFT}>{name}.py</td><td{LEFT}>{name}</td><td{LEFT}>1</td><td{LEFT}>written</td>"
        in html
    )
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    exported = ip.run_line_magic("export_module", f"{name} --to ~/lib")
    assert exported.written == (tmp_path / "home" / "lib" / f"{name}.py",)
    assert repr(exported).splitlines() == [
        f"{name} exported to {tmp_path / 'home' / 'lib'}:",
        "file" + " " * (len(name) + 1) + "module" + " " * (len(name) - 4) + "version  what",
        f"{name}.py  {name}  1        written",
    ]


def test_the_magics_errors_are_usage_errors_with_the_same_message(ip, unique, tmp_path):
    name = unique("geo")
    define(ip, name)
    (tmp_path / f"{name}.py").write_text("mine\n")
    with pytest.raises(
        UsageError, match=re.escape(f"{tmp_path / name}.py to {tmp_path / name}.py.orig")
    ):
        ip.run_line_magic("export_module", f"{name} --to {tmp_path}")
    with pytest.raises(UsageError, match="there is no cell module 'nothing_here': define it"):
        ip.run_line_magic("export_module", "nothing_here")
    with pytest.raises(UsageError, match="unrecognized arguments: --overwrite"):
        ip.run_line_magic("export_module", f"{name} --overwrite")
    exported = ip.run_line_magic("export_module", f"{name} --to {tmp_path} --force")
    assert exported[0].moved_aside == tmp_path / f"{name}.py.orig"


def test_cell_modules_complete_after_export_module(ip, unique):
    from IPython.core.completer import provisionalcompleter

    name = unique("completion")
    define(ip, name)
    line = f"%export_module {name[:-3]}"
    with provisionalcompleter():
        assert [c.text for c in ip.Completer.completions(line, len(line))] == [name]


def test_the_magic_goes_with_the_extension(shell):
    shell.run_line_magic("load_ext", "ipyexecmod")
    assert shell.find_line_magic("export_module") is not None
    shell.run_line_magic("unload_ext", "ipyexecmod")
    assert shell.find_line_magic("export_module") is None


def test_the_export_magic_is_thin():
    test_magics_ui.test_magic_methods_are_thin(ExportMagics)


# -- in a real kernel ---------------------------------------------------------------------


def test_export_module_in_a_kernel(tmp_path):
    pytest.importorskip("jupyter_client")
    from kernels import execute, kernel_running, outputs

    out = tmp_path / "lib"
    with kernel_running(tmp_path / "ipython") as (_, client):
        execute(client, "%load_ext ipyexecmod")
        defined, _ = execute(client, "%%as_module kexport\nVERSION = 1\n")
        execute(client, "%%as_module kexport\nVERSION = 2\nraise RuntimeError('not this one')\n")
        reply, messages = execute(client, f"%export_module kexport --to {out}")
        assert reply["status"] == "ok"
        (result,) = outputs(messages, "execute_result")
        assert (
            f"<td{LEFT}>kexport.py</td><td{LEFT}>kexport</td><td{LEFT}>1</td><td{LEFT}>written</td>"
            in (result["data"]["text/html"])
        )
        assert result["data"]["text/plain"].splitlines()[0] == f"kexport exported to {out}:"
        header = (out / "kexport.py").read_text().splitlines()[0]
        assert f"version 1 from In[{defined['execution_count']}] at " in header
        assert import_alone(out, "kexport", "VERSION") == {"VERSION": "1"}
        (out / "kexport.py").write_text("VERSION = 'mine'\n")
        reply, _ = execute(client, f"%export_module kexport --to {out}")
        assert reply["status"] == "error" and reply["ename"] == "UsageError"
        assert f"{out}/kexport.py to {out}/kexport.py.orig" in reply["evalue"]
    assert import_alone(out, "kexport", "VERSION") == {"VERSION": "'mine'"}
