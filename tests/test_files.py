"""``ipyexecmod.files(name)``: the on-disk files of a cell module, for engines that take
files (issue 17, part 3).  Real files, a real shell, and fresh interpreters that import
the archive with nothing but it on ``sys.path``, as a Spark worker does with ``addPyFile``.

PySpark, Modal and ipyparallel are not installed: the tests check what each reads (the
zip, ``find_spec(name).origin``, the files relative to ``.root``).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import HANG_GUARD, define, run_python

import ipyexecmod
from ipyexecmod import cells
from ipyexecmod.lasting import lasting_store
from ipyexecmod.modulefiles import ModuleFiles
from ipyexecmod.store import kernel_store

#: What a fresh interpreter prints after importing ``{name}`` from the zip ``{archive}``
#: alone: the module's VERSION, its file, and whether anything of ipyexecmod came along.
IMPORT_FROM_ZIP = """\
import importlib, json, sys
sys.path.insert(0, {archive!r})
module = importlib.import_module({name!r})
print(json.dumps([module.VERSION, module.__file__, [m for m in sys.modules if "ipyexecmod" in m]]))
"""


def in_fresh_python(archive: Path, name: str, cwd: Path) -> tuple[object, str, list[str]]:
    """Import ``name`` in a new interpreter (``-I``: no environment, no user site, no
    current directory on sys.path) with only ``archive`` added to sys.path."""
    out = subprocess.run(
        [sys.executable, "-I", "-c", IMPORT_FROM_ZIP.format(archive=str(archive), name=name)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        cwd=cwd,
    )
    assert out.returncode == 0, out.stderr
    version, file, ours = json.loads(out.stdout)
    return version, file, ours


def relative(found: ModuleFiles) -> list[str]:
    return [path.relative_to(found.root).as_posix() for path in found]


def test_a_module_gives_its_copy_of_the_current_version(ip, unique):
    name = unique("geo")
    define(ip, name, "VERSION = 1\n")
    found = ipyexecmod.files(name)
    assert isinstance(found, ModuleFiles) and found.name == name
    assert relative(found) == [f"{name}.py"] and found[0].read_text() == "VERSION = 1\n"
    # What Modal's add_local_python_source reads, and the store's directory on sys.path
    assert importlib.util.find_spec(name).origin == str(found[0])
    assert str(found.root) in sys.path
    define(ip, name, "VERSION = 2\n")
    assert ipyexecmod.files(name)[0].read_bytes() == b"VERSION = 2\n"


def test_module_files_are_an_immutable_sequence_of_paths(ip, unique):
    name = unique("geo")
    define(ip, name, "VERSION = 1\n")
    found = ipyexecmod.files(name)
    assert list(found) == [found[0]] and len(found) == 1 and found[:1] == (found[0],)
    assert found == ipyexecmod.files(name) and found[0] in found
    with pytest.raises(AttributeError):
        found.root = Path("/")  # type: ignore[misc]


def test_a_package_gives_its_modules_and_a_submodule_its_parents_first(ip, unique):
    top = unique("pkg")
    for name in (top, f"{top}.sub", f"{top}.sub.deep", f"{top}.Zed", f"{top}.alpha"):
        define(ip, name, f"VERSION = {name!r}\n")
    assert relative(ipyexecmod.files(top)) == [
        f"{top}/__init__.py",
        f"{top}/Zed.py",
        f"{top}/alpha.py",
        f"{top}/sub/__init__.py",
        f"{top}/sub/deep.py",
    ]
    assert relative(ipyexecmod.files(f"{top}.sub")) == [
        f"{top}/__init__.py",
        f"{top}/sub/__init__.py",
        f"{top}/sub/deep.py",
    ]
    assert relative(ipyexecmod.files(f"{top}.sub.deep")) == [
        f"{top}/__init__.py",
        f"{top}/sub/__init__.py",
        f"{top}/sub/deep.py",
    ]
    found = ipyexecmod.files(f"{top}.alpha")
    assert [path.read_text() for path in found] == [
        f"VERSION = {top!r}\n",
        f"VERSION = '{top}.alpha'\n",
    ]


def test_the_archive_imports_alone_in_a_fresh_python_and_gives_the_current_version(
    ip, unique, tmp_path
):
    top = unique("pkg")
    define(ip, top, "VERSION = 'top'\n")
    define(ip, f"{top}.sub.helper", "V = 1\n")
    define(ip, f"{top}.sub", "from . import helper\nVERSION = helper.V\n")
    first = ipyexecmod.files(f"{top}.sub").archive()
    assert first.name.startswith(f"{top}.sub-") and first.suffix == ".zip"
    with zipfile.ZipFile(first) as archive:
        assert archive.namelist() == relative(ipyexecmod.files(f"{top}.sub"))
    version, file, ours = in_fresh_python(first, f"{top}.sub", tmp_path)
    assert (version, file, ours) == (1, f"{first}/{top}/sub/__init__.py", [])
    define(ip, f"{top}.sub.helper", "V = 2\n")  # its dependent pkg.sub runs again
    second = ipyexecmod.files(f"{top}.sub").archive()
    assert second != first and first.exists()  # a new name: Spark cannot replace a file
    assert in_fresh_python(second, f"{top}.sub", tmp_path)[0] == 2
    assert in_fresh_python(first, f"{top}.sub", tmp_path)[0] == 1  # untouched


def test_a_lone_module_archives_and_imports_too(ip, unique, tmp_path):
    name = unique("geo")
    define(ip, name, "VERSION = 'one'\n")
    archive = ipyexecmod.files(name).archive(tmp_path / "made" / "here")
    assert archive.parent == tmp_path / "made" / "here"
    assert in_fresh_python(archive, name, tmp_path)[0] == "one"


def test_the_same_sources_give_the_same_archive_name_and_bytes(ip, unique, tmp_path):
    top = unique("pkg")
    define(ip, top, "VERSION = 1\n")
    define(ip, f"{top}.m", "X = 1\n")
    first = ipyexecmod.files(top).archive()
    data = first.read_bytes()
    assert first.parent.name == ".archives"  # in the private directory: cannot be imported
    assert ipyexecmod.files(top).archive() == first and first.read_bytes() == data
    elsewhere = ipyexecmod.files(top).archive(tmp_path)
    assert elsewhere.name == first.name and elsewhere.read_bytes() == data
    define(ip, top, "VERSION = 1\n")  # run again, unchanged: the same archive
    assert ipyexecmod.files(top).archive() == first
    define(ip, f"{top}.m", "X = 2\n")
    changed = ipyexecmod.files(top).archive()
    assert changed.name != first.name
    define(ip, f"{top}.m", "X = 1\n")  # back to the first sources: the first archive
    assert ipyexecmod.files(top).archive() == first and first.read_bytes() == data


def test_the_archive_is_the_same_in_another_process(ip, unique, tmp_path):
    """No date, mode or order of this process in the bytes: another process that defines
    the same sources writes the same archive."""
    top = unique("pkg")
    define(ip, top, "VERSION = 1\n")
    define(ip, f"{top}.m", "X = 1\n")
    here = ipyexecmod.files(top).archive(tmp_path / "here")
    out = run_python(f"""
        import ipyexecmod
        from ipyexecmod import cells
        from ipyexecmod.store import kernel_store
        cells.define({top!r}, "VERSION = 1\\n", store=kernel_store())
        cells.define("{top}.m", "X = 1\\n", store=kernel_store())
        print(ipyexecmod.files({top!r}).archive({str(tmp_path / "there")!r}))
        import sys
        print("IPython" in sys.modules)
        """)
    assert out.returncode == 0, out.stderr
    archived, ipython = out.stdout.split()
    assert ipython == "False"  # files() is the core's: no IPython
    there = Path(archived)
    assert there.name == here.name and there.read_bytes() == here.read_bytes()


def test_a_file_of_the_archive_s_name_that_ipyexecmod_did_not_write_is_kept(ip, unique, tmp_path):
    name = unique("geo")
    define(ip, name, "VERSION = 1\n")
    taken = tmp_path / ipyexecmod.files(name).archive(tmp_path / "probe").name
    taken.write_bytes(b"the user's\n")
    with pytest.raises(FileExistsError, match=r"not the archive .* ipyexecmod would write"):
        ipyexecmod.files(name).archive(tmp_path)
    assert taken.read_bytes() == b"the user's\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["probe", taken.name])


def test_a_module_kept_in_memory_only_has_no_files(ip, unique):
    name = unique("mem")
    define(ip, name, "VERSION = 1\n", "--no-persist")
    with pytest.raises(ValueError, match=r"kept in memory only.*without --no-persist"):
        ipyexecmod.files(name)


def test_a_package_with_a_module_kept_in_memory_only_has_no_files(ip, unique):
    top = unique("pkg")
    define(ip, top, "VERSION = 1\n")
    define(ip, f"{top}.kept", "X = 1\n")
    define(ip, f"{top}.mem", "X = 1\n", "--no-persist")
    assert relative(ipyexecmod.files(f"{top}.kept")) == [f"{top}/__init__.py", f"{top}/kept.py"]
    with pytest.raises(ValueError, match=f"'{top}.mem' is kept in memory only"):
        ipyexecmod.files(top)
    with pytest.raises(ValueError, match=f"'{top}.mem' again without --no-persist"):
        ipyexecmod.files(top)
    with pytest.raises(ValueError, match=r"it is kept in memory only.*it again without"):
        ipyexecmod.files(f"{top}.mem")


def test_a_module_made_a_package_by_a_module_kept_in_memory_moves_its_copy(ip, unique, tmp_path):
    """The copy of ``top`` moves to ``top/__init__.py`` as the kernel's ``top`` becomes a
    package, though its new submodule has no copy: another process imports a package."""
    top = unique("pkg")
    define(ip, top, "VERSION = 1\n")
    define(ip, f"{top}.mem", "X = 1\n", "--no-persist")
    out = run_python(
        f"import sys; sys.path.insert(0, {kernel_store().directory!r}); import {top}; "
        f"print(hasattr({top}, '__path__'))",
        cwd=tmp_path,
    )
    assert out.stdout.strip() == "True", out.stderr


def test_not_a_cell_module(ip, unique):
    name = unique("never")
    with pytest.raises(ValueError, match=f"define it first with %%as_module {name}$"):
        ipyexecmod.files(name)
    with pytest.raises(ValueError, match="'os' is not a cell module: an engine finds an ordinary"):
        ipyexecmod.files("os")
    for other in ("", "a..b"):
        with pytest.raises(ValueError, match=f"{other!r} is not a module name: name a cell"):
            ipyexecmod.files(other)
    for wrong in (None, b"os", sys):
        with pytest.raises(TypeError, match="a module name as a str, not"):
            ipyexecmod.files(wrong)  # type: ignore[arg-type]


def test_restored_modules_give_their_copies(ip, unique, tmp_path, restoring):
    top, lone = unique("pkg"), unique("lone")
    out = run_python(f"""
        from ipyexecmod import cells
        from ipyexecmod.lasting import lasting_store
        store = lasting_store({str(restoring)!r})
        cells.define({top!r}, "VERSION = 'top'\\n", store=store)
        cells.define("{top}.sub", "VERSION = 'sub'\\n", store=store)
        cells.define("{top}.sub.deep", "VERSION = 'deep'\\n", store=store)
        cells.define({lone!r}, "VERSION = 'lone'\\n", store=store)
        """)
    assert out.returncode == 0, out.stderr
    cells.finder.add_store(lasting_store(restoring))  # a new kernel on the same directory
    lone_module, top_module = importlib.import_module(lone), importlib.import_module(top)
    assert cells.finder.is_restored(lone_module) and cells.finder.is_restored(top_module)
    found = ipyexecmod.files(lone)
    assert found.root == restoring and relative(found) == [f"{lone}.py"]
    assert importlib.util.find_spec(lone).origin == str(found[0])
    # The package's copies not imported yet come too: an engine imports them when asked
    assert relative(ipyexecmod.files(top)) == [
        f"{top}/__init__.py",
        f"{top}/sub/__init__.py",
        f"{top}/sub/deep.py",
    ]
    with pytest.raises(ValueError, match=f"has not imported: `import {top}.sub` first"):
        ipyexecmod.files(f"{top}.sub")
    importlib.import_module(f"{top}.sub")
    assert relative(ipyexecmod.files(f"{top}.sub"))[:2] == [
        f"{top}/__init__.py",
        f"{top}/sub/__init__.py",
    ]
    archive = ipyexecmod.files(top).archive(tmp_path / "zips")
    assert in_fresh_python(archive, f"{top}.sub.deep", tmp_path)[0] == "deep"


#: The README's ipyparallel recipe, run as an engine would: the files it receives, written
#: relative to ``.root`` in a directory of its own, then imported.
UNPACK_AND_IMPORT = """\
import importlib, json, os, pickle, sys
def unpack(files, root):
    for relative, data in files.items():
        os.makedirs(os.path.dirname(path := os.path.join(root, relative)), exist_ok=True)
        with open(path, "wb") as file:
            file.write(data)
    if root not in sys.path:
        sys.path.insert(0, root)
    importlib.invalidate_caches()
unpack(pickle.loads(sys.stdin.buffer.read()), {root!r})
module = importlib.import_module({name!r})
print(json.dumps([module.VERSION, module.__file__]))
"""


def test_the_files_import_where_an_engine_writes_them_relative_to_root(ip, unique, tmp_path):
    top = unique("pkg")
    define(ip, top, "VERSION = 'top'\n")
    define(ip, f"{top}.sub", "from . import VERSION as TOP\nVERSION = TOP + ' sub'\n")
    found = ipyexecmod.files(f"{top}.sub")
    payload = {str(path.relative_to(found.root)): path.read_bytes() for path in found}
    code = UNPACK_AND_IMPORT.format(root=str(tmp_path / "engine"), name=f"{top}.sub")
    out = subprocess.run(
        [sys.executable, "-I", "-c", code],
        input=pickle.dumps(payload),
        capture_output=True,
        timeout=HANG_GUARD,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    version, file = json.loads(out.stdout)
    assert (version, file) == ("top sub", str(tmp_path / "engine" / top / "sub.py"))
