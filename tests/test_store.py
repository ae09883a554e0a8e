"""ipyexecmod.store on its own: where copies go, what a write costs, what is never touched."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from ipyexecmod import _files, cells
from ipyexecmod import store as store_module
from ipyexecmod.cells import Version
from ipyexecmod.lasting import LastingStore, placement
from ipyexecmod.pyc import is_sound_hash_pyc, read_header
from ipyexecmod.store import CellStore, MemoryOnly, StoreError


def test_a_version_is_saved_where_its_code_says(tmp_path):
    store = LastingStore(tmp_path / "s")
    version = Version.compile("_st_geo", "def f():\n    return 1\n", store=store)
    version.save()
    assert version.path == str(tmp_path / "s" / "_st_geo.py")
    assert version.code.co_filename == version.filename == f"{version.path}@1"
    assert Path(version.path).read_bytes() == version.encoded
    assert version.cached is not None and is_sound_hash_pyc(version.cached, version.encoded)
    assert read_header(version.cached).invalidation == "checked hash"
    assert version.spec().cached == version.cached


def test_an_unchanged_save_writes_nothing_and_an_edit_behind_our_back_is_caught(tmp_path):
    store = CellStore(tmp_path / "s")
    first = Version.compile("_st_m", "X = 1\n", store=store)
    first.save()
    stat = os.stat(first.path)
    Version.compile("_st_m", "X = 1\n", store=store).save()
    assert os.stat(first.path).st_ino == stat.st_ino  # not replaced
    Path(first.path).write_text("X = 666\n")
    Version.compile("_st_m", "X = 1\n", store=store).save()
    assert Path(first.path).read_text() == "X = 1\n"


def test_a_lasting_copy_edited_by_hand_is_the_users_and_is_not_written_over(tmp_path):
    store = LastingStore(tmp_path / "s")
    first = Version.compile("_st_m", "X = 1\n", store=store)
    first.save()
    Path(first.path).write_text("X = 666\n")
    with pytest.raises(StoreError, match="not written by ipyexecmod"):
        Version.compile("_st_m", "X = 2\n", store=store).save()
    assert Path(first.path).read_text() == "X = 666\n"
    assert store.module_names() == []
    saved = Version.compile("_st_m", "X = 2\n", store=store).save(force=True)
    assert Path(first.path).read_text() == "X = 2\n"
    assert Path(saved.moved[0][1]).read_text() == "X = 666\n"
    assert store.module_names() == ["_st_m"]


def test_no_temporary_file_is_left_behind(tmp_path):
    store = LastingStore(tmp_path / "s")
    for value in range(5):
        Version.compile("_st_t", f"X = {value}\n", store=store).save()
    leftovers = [p for p in Path(store.directory).rglob(".tmp-*")]
    assert leftovers == []


def test_the_private_directory_is_in_memory_where_there_is_one():
    directory = CellStore.temporary().directory
    expected = "/dev/shm/" if _files.MEMORY_ROOT in _files.private_roots() else "/"
    assert directory.startswith(expected)
    assert os.stat(directory).st_mode & 0o777 == 0o700


def test_without_a_usable_memory_root_the_private_directory_is_on_disk(monkeypatch, tmp_path):
    monkeypatch.setattr(_files, "MEMORY_ROOT", str(tmp_path / "no-such-root"))
    directory = CellStore.temporary().directory
    assert not directory.startswith(str(tmp_path)) and os.path.isdir(directory)


def test_placement_follows_the_settings(tmp_path):
    assert isinstance(placement(persist=False, directory=None), MemoryOnly)
    assert placement(persist=True, directory=None) is store_module.kernel_store()
    lasting = placement(persist=True, directory=str(tmp_path))
    assert lasting.directory == str(tmp_path)


def test_a_private_directory_that_is_a_symbolic_link_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(store_module.StoreError, match="is not a directory"):
        Version.compile("_st_l", "X = 1\n", store=CellStore(tmp_path / "link")).save()
    assert list((tmp_path / "real").iterdir()) == []


def test_a_lasting_directory_given_as_a_symbolic_link_is_the_directory_it_names(tmp_path):
    """`persist_dir = "~/nb"` where ~/nb links to /data/nb: the user's choice, resolved once."""
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    store = LastingStore(tmp_path / "link")
    assert store.directory == str(tmp_path / "real")
    Version.compile("_st_l", "X = 1\n", store=store).save()
    assert (tmp_path / "real" / "_st_l.py").read_text() == "X = 1\n"


@pytest.mark.parametrize(
    ("name", "is_package", "source", "imports"),
    [
        ("a", False, "import x.y as z\nfrom w import v\n", {"x", "x.y", "w", "w.v"}),
        ("p.q", False, "from . import r\nfrom .s import t\n", {"p", "p.r", "p.s", "p.s.t"}),
        ("p", True, "from . import r\nfrom .s import t\n", {"p.r", "p.s", "p.s.t"}),
        ("p.q", False, "from .s import t\nimport p.q\n", {"p", "p.s", "p.s.t"}),
        ("a", False, "from .. import up\nfrom w import *\n", {"w"}),
        ("a", False, "if 1:\n    import i\nclass C:\n    import c\n", {"i", "c"}),
        ("a", False, "def f():\n    import inside\nlambda: __import__('no')\n", set()),
        ("a", False, "try:\n    import t\nexcept ImportError:\n    import u\n", {"t", "u"}),
    ],
)
def test_a_version_knows_what_it_imports_at_module_level(name, is_package, source, imports):
    version = Version.compile(name, source, is_package=is_package)
    assert version.imports == frozenset(imports)


def test_dead_processes_directories_go_but_not_those_of_another_pid_namespace(tmp_path):
    import subprocess
    import sys
    import tempfile

    gone = int(
        subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    ours = _files._pid_namespace()
    root = Path(tempfile.gettempdir())
    theirs = root / f"ipyexecmod-{gone:07d}-n1-abcdefgh"  # a container's: its pid is not ours
    dead = root / f"ipyexecmod-{gone:07d}-{ours + '-' if ours else ''}abcdefgh"
    for directory in (theirs, dead):
        directory.mkdir(mode=0o700)
    try:
        _files.new_private_directory()
        assert theirs.exists()
        assert not dead.exists()
    finally:
        for directory in (theirs, dead):
            shutil.rmtree(directory, ignore_errors=True)


def test_a_define_with_a_store_of_the_wrong_type_is_refused():
    from ipyexecmod import cells

    with pytest.raises(TypeError, match="store must be a CellStore, a MemoryOnly or None, not str"):
        cells.define("_st_wrong_store", "X = 1\n", store="/tmp/somewhere")


def test_a_module_is_in_one_form_on_disk_and_a_users_directory_stays(tmp_path):
    store = LastingStore(tmp_path / "deep" / "er" / "s")  # parents are created
    code = compile("", "", "exec")
    store.write("_st_form", "X = 1\n", code, is_package=True)
    store.write("_st_form", "X = 2\n", code, is_package=False)
    assert sorted(os.listdir(store.directory)) == [".ipyexecmod", "__pycache__", "_st_form.py"]
    store.write("_st_form", "X = 3\n", code, is_package=True)
    assert not os.path.exists(os.path.join(store.directory, "_st_form.py"))
    mine = tmp_path / "deep" / "er" / "s" / "_st_empty"
    mine.mkdir()  # the user's, empty: never removed
    store.write("_st_empty", "X = 1\n", code, is_package=False)
    assert mine.is_dir()


def test_modinfo_names_the_kernel_that_wrote_a_restored_copy(ip, tmp_path):
    from helpers import run_python

    lasting = tmp_path / "lasting"
    writer = run_python(
        f"""
        import os
        os.environ["JPY_SESSION_NAME"] = "/work/elsewhere.ipynb"
        from ipyexecmod import cells
        from ipyexecmod.lasting import lasting_store
        cells.define("_st_shared", "X = 1\\n", store=lasting_store({str(lasting)!r}))
        """
    )
    assert writer.returncode == 0, writer.stderr
    ip.run_line_magic("config", f"ExecModMagics.persist_dir = {str(lasting)!r}")
    try:
        ip.run_cell("import _st_shared", store_history=False).raise_error()
        info = ip.run_line_magic("modinfo", "_st_shared")
        assert info["kind"] == "restored"
        assert "notebook '/work/elsewhere.ipynb' (pid" in info["copy written by"]
    finally:
        ip.run_line_magic("config", "ExecModMagics.persist_dir = ''")
        sys.modules.pop("_st_shared", None)
        cells.finder.stores[:] = [s for s in cells.finder.stores if s.directory != str(lasting)]
        sys.path.remove(str(lasting))


def test_a_lasting_directory_that_cannot_be_used_leaves_other_definitions_alone(tmp_path):
    from ipyexecmod.cells import CellModuleFinder

    finder = CellModuleFinder()
    bad, good = LastingStore("/dev/null/x"), LastingStore(tmp_path / "good")
    with pytest.warns(RuntimeWarning, match="could not write '_st_bad'"):
        finder.define("_st_bad", "X = 1\n", store=bad)
    try:
        module = finder.define("_st_good", "X = 2\n", store=good)  # forget() asks `bad` too
        assert module.X == 2 and good.module_names() == ["_st_good"]
    finally:
        for name in ("_st_bad", "_st_good"):
            sys.modules.pop(name, None)
        for store in (bad, good):
            while store.directory in sys.path:
                sys.path.remove(store.directory)
