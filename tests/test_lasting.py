"""A lasting directory never costs the user a file (issue 14): real files, real shells.

Each test here is one of the issue's numbered failures, or a sequence over them, and
failed on the code before it (5baa655).  "Kernels" are the test's InteractiveShell
(the ``ip`` fixture, a live process) and fresh Pythons running an InteractiveShell
(:data:`KERNEL`), which is what a kernel restarted is: another process on the same
directory.  The user's files are compared by :func:`snapshot`: bytes, mode, inode and
mtime, so a file rewritten with the same bytes, or chmod-ed, is caught too.
"""

from __future__ import annotations

import compileall
import concurrent.futures
import contextlib
import importlib.machinery
import importlib.util
import json
import multiprocessing
import os
import py_compile
import re
import socket
import stat
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import HANG_GUARD, define, run_python
from IPython.core.error import UsageError

from ipyexecmod import cells

SPAWN = multiprocessing.get_context("spawn")

#: A fresh Python running an InteractiveShell with the extension loaded, as a kernel of
#: notebook NOTEBOOK (``JPY_SESSION_NAME``, as Jupyter sets it) with ``persist_dir`` in
#: its configuration; what follows it is the "notebook".
KERNEL = """\
import os, sys, warnings
warnings.simplefilter("always")
os.environ["JPY_SESSION_NAME"] = {notebook!r}
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
config = Config()
config.HistoryAccessor.enabled = False
config.ExecModMagics.persist_dir = {lasting!r}
ip = InteractiveShell.instance(config=config)
ip.run_line_magic("load_ext", "ipyexecmod")
print("loaded", flush=True)


def cell(code):
    result = ip.run_cell(code)
    error = result.error_before_exec or result.error_in_exec
    print("ERROR" if error else "OK", type(error).__name__, error, flush=True)
"""

#: The line %%as_module prints for each file of the user's that --force moved aside.
MOVED = re.compile(r"^moved (.+) \(not written by ipyexecmod\) aside to (.+)$", re.MULTILINE)


def kernel(lasting: str | Path, notebook: str, code: str, cwd: Path) -> tuple[str, str]:
    """Run ``code`` in a new "kernel" (:data:`KERNEL`) of ``notebook`` on ``lasting``;
    its stdout (from the line after ``loaded``) and stderr.  It must exit cleanly."""
    out = run_python(KERNEL.format(notebook=notebook, lasting=str(lasting)) + code, cwd=cwd)
    assert out.returncode == 0, out.stderr
    before, _, after = out.stdout.partition("loaded\n")
    return after, before + out.stderr


# -- the user's files -----------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file, link and directory under ``root`` (relative path → what it is): a
    file's bytes, mode, inode and mtime; a link's target; a directory's mode."""
    found: dict[str, tuple] = {}
    for directory, subdirectories, files in os.walk(root):
        for entry in subdirectories + files:
            path = os.path.join(directory, entry)
            relative = os.path.relpath(path, root)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                found[relative] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[relative] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                data = Path(path).read_bytes()
                found[relative] = ("file", data, info.st_mode, info.st_ino, info.st_mtime_ns)
    return found


def assert_untouched(root: Path, before: dict[str, tuple], moved: dict[str, str]) -> None:
    """Each entry of ``before`` is as it was, at its path or (moved aside, or inside a
    directory moved aside: ``moved`` maps absolute paths) at the path announced."""
    after = snapshot(root)
    for relative, was in before.items():
        where = relative
        for path, aside in moved.items():
            start = os.path.relpath(path, root)
            if relative == start or relative.startswith(start + os.sep):
                where = os.path.relpath(aside, root) + relative[len(start) :]
        assert after.get(where) == was, f"{relative} (expected at {where}) changed"


def make_project(root: Path, p: str) -> None:
    """A user's project, every top-level name starting with ``p``: modules, packages with
    subpackages, ``.pyc`` files of every kind, a namespace package, links, data files."""
    root.mkdir(parents=True)
    (root / f"{p}tool.py").write_text("def tool():\n    return 'the user'\n")
    (root / f"{p}runner.py").write_text("#!/usr/bin/env python\nprint('run')\n")
    os.chmod(root / f"{p}runner.py", 0o755)
    package = root / f"{p}pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("WHO = 'the user'\n")
    (package / "core.py").write_text("def core():\n    return 1\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "m1.py").write_text("M = 1\n")
    compileall.compile_dir(package, quiet=1)  # timestamp .pyc files
    py_compile.compile(str(root / f"{p}tool.py"))  # timestamp
    mode = py_compile.PycInvalidationMode
    py_compile.compile(str(root / f"{p}runner.py"), invalidation_mode=mode.UNCHECKED_HASH)
    py_compile.compile(str(package / "core.py"), invalidation_mode=mode.CHECKED_HASH)
    gone = root / f"{p}gone.py"  # an orphan .pyc: its source has gone
    gone.write_text("GONE = 1\n")
    py_compile.compile(str(gone))
    gone.unlink()
    cached = Path(importlib.util.cache_from_source(str(root / f"{p}tool.py")))
    (cached.parent / f"{p}tool.cpython-39.pyc").write_bytes(b"\x61\x0d\x0d\x0a" + bytes(12))
    (root / f"{p}ns").mkdir()  # a namespace package
    (root / f"{p}ns" / "part.py").write_text("PART = 1\n")
    os.symlink(f"{p}tool.py", root / f"{p}link.py")
    os.symlink(f"{p}pkg", root / f"{p}linkedpkg")
    (root / "notes.txt").write_text("mine\n")
    os.chmod(root / "notes.txt", 0o600)
    (root / "data").mkdir(mode=0o750)
    (root / "data" / "table.csv").write_text("a,b\n1,2\n")
    os.chmod(root / "data" / "table.csv", 0o444)
    os.chmod(root / "__pycache__", 0o755)


def moves(printed: str) -> dict[str, str]:
    return dict(MOVED.findall(printed))


def cell_names(ip) -> set[str]:
    return {row.name for row in ip.run_line_magic("lsmod", "--cells")}


# -- 1. a file in the way -------------------------------------------------------------------


def test_a_users_file_in_a_lasting_directory_is_refused_and_force_moves_it_aside(
    ip, unique, tmp_path, capsys
):
    name = unique("helpers")
    lasting = tmp_path / "project"
    lasting.mkdir()
    mine = lasting / f"{name}.py"
    mine.write_text("def helper():\n    return 'hand-written'\n")
    os.chmod(mine, 0o664)
    before = snapshot(lasting)
    ip.run_line_magic("config", f"ExecModMagics.persist_dir = {str(lasting)!r}")
    with pytest.raises(UsageError) as refused:
        define(ip, name, "def helper():\n    return 'the cell'\n")
    message = str(refused.value)
    assert str(mine) in message and "not written by ipyexecmod" in message
    assert f"{mine}.orig" in message and "--force" in message and "another name" in message
    assert name not in sys.modules and cells.finder.get(name) is None
    assert_untouched(lasting, before, {})
    assert snapshot(lasting) == before  # nothing new either

    capsys.readouterr()
    module = define(ip, name, "def helper():\n    return 'the cell'\n", "--force")
    printed = capsys.readouterr().out
    assert moves(printed) == {str(mine): f"{mine}.orig"}
    assert module.helper() == "the cell" and module.__file__ == str(mine)
    assert_untouched(lasting, before, moves(printed))
    assert mine.read_text() == "def helper():\n    return 'the cell'\n"


def test_force_moves_aside_to_a_free_name_and_a_failing_definition_moves_nothing(
    ip, unique, tmp_path, capsys
):
    name = unique("helpers")
    lasting = tmp_path / "project"
    lasting.mkdir()
    mine = lasting / f"{name}.py"
    mine.write_text("HAND = 1\n")
    Path(f"{mine}.orig").write_text("an older one\n")
    before = snapshot(lasting)
    ip.run_line_magic("config", f"ExecModMagics.persist_dir = {str(lasting)!r}")
    with pytest.raises(UsageError, match=re.escape(f"{mine} to {mine}.orig-2")):
        define(ip, name, "X = 1\n")
    with pytest.raises(ZeroDivisionError):
        define(ip, name, "X = 1\n1 / 0\n", "--force")
    assert snapshot(lasting) == before and name not in sys.modules
    capsys.readouterr()
    define(ip, name, "X = 2\n", "--force")
    assert moves(capsys.readouterr().out) == {str(mine): f"{mine}.orig-2"}
    assert_untouched(lasting, before, {str(mine): f"{mine}.orig-2"})


def test_a_lasting_directory_whose_parents_do_not_exist_is_made(ip, unique, tmp_path):
    name = unique()
    lasting = tmp_path / "not" / "yet" / "there"
    ip.run_line_magic("config", f"ExecModMagics.persist_dir = {str(lasting)!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "could not write"
        module = define(ip, name, "X = 1\n")
    assert module.__file__ == str(lasting / f"{name}.py")
    assert (lasting / f"{name}.py").read_text() == "X = 1\n"


# -- 2. a user's project --------------------------------------------------------------------


def test_a_users_project_survives_any_definitions_and_a_new_kernel(ip, unique, tmp_path, capsys):
    p, q = unique("u"), unique("c")
    for top in ("tool", "runner", "pkg", "ns", "gone", "link", "linkedpkg"):
        unique(f"u{top}")  # keep sys.modules clean of the user's names too
    root = tmp_path / "project"
    make_project(root, p)
    before = snapshot(root)
    ip.run_line_magic("config", f"ExecModMagics.persist_dir = {str(root)!r}")
    capsys.readouterr()
    ours = set()

    def attempt(name: str, body: str, options: str = "") -> bool:
        try:
            define(ip, name, body, options)
        except (UsageError, ZeroDivisionError):
            return False
        ours.add(name)
        return True

    assert attempt(f"{q}fresh", "V = 1\n")
    assert attempt(f"{q}fresh", "V = 2\n")
    for user in ("tool", "pkg", "runner", "gone", "link", "linkedpkg", "pkg.extra", "pkg.sub"):
        assert not attempt(f"{p}{user}", "V = 'cell'\n"), user  # each is in the way
    assert_untouched(root, before, {})
    attempt(f"{p}ns", "V = 'cell'\n")  # a namespace package: refused, or a module beside it
    assert attempt(f"{q}shapes", "V = 1\n")
    assert attempt(f"{q}shapes.circle", "R = 1\n")
    assert attempt(f"{q}shapes", "V = 2\n")
    assert not attempt(f"{p}runner", "V = 'cell'\n1 / 0\n", "--force")
    assert_untouched(root, before, {})
    assert attempt(f"{p}tool", "V = 'cell'\n", "--force")
    assert attempt(f"{p}pkg", "V = 'cell'\n", "--force")
    assert attempt(f"{p}tool", "V = 'cell again'\n")  # ours now: no --force needed
    moved = moves(capsys.readouterr().out)
    assert str(root / f"{p}tool.py") in moved and str(root / f"{p}pkg") in moved
    assert_untouched(root, before, moved)
    assert cell_names(ip) & {f"{p}{u}" for u in ("runner", "ns", "gone", "pkg.sub")} == set()
    assert {n for n in cell_names(ip) if n.startswith((p, q))} == ours

    out, err = kernel(  # a new kernel on the directory: lists and repairs only its own
        root,
        "other.ipynb",
        f"""
import importlib
for name in {sorted(ours)!r} + [{p!r} + user for user in ("runner", "ns.part", "linkedpkg")]:
    try:
        importlib.import_module(name)
    except ImportError:
        pass
print(sorted(r.name for r in ip.run_line_magic("lsmod", "--cells")))
""",
        tmp_path,
    )
    listed = set(eval(out.splitlines()[-1]))
    assert listed == ours, err
    assert_untouched(root, before, moved)


def test_a_new_kernel_on_a_users_project_lists_and_repairs_nothing_of_it(unique, tmp_path):
    p = unique("u")
    root = tmp_path / "project"
    make_project(root, p)
    before = snapshot(root)
    out, err = kernel(
        root,
        "a.ipynb",
        f"""
import {p}pkg.sub.m1, {p}pkg.core, {p}tool
print(sorted(r.name for r in ip.run_line_magic("lsmod", "--cells")))
""",
        tmp_path,
    )
    assert out.splitlines() == ["[]"], err
    assert_untouched(root, before, {})


# -- 3. two kernels, one directory ----------------------------------------------------------


def test_another_running_kernels_module_is_refused_and_force_tells_it(ip, unique, tmp_path, capsys):
    assert ip.run_cell("%reset -f").success  # it deletes __main__.__spec__, which spawn needs
    name, other = unique("utils"), unique("mine")
    lasting = tmp_path / "shared"
    ip.run_line_magic("config", f"ExecModMagics.persist_dir = {str(lasting)!r}")
    module = define(ip, name, "def f():\n    return 'A'\n")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=SPAWN) as warm:
        assert warm.submit(module.f).result(HANG_GUARD) == "A"  # its worker has A's copy

        out, err = kernel(
            lasting,
            "b.ipynb",
            f"""
cell("%%as_module {name}\\ndef f():\\n    return 'B'\\n")
cell("%%as_module {other}\\ndef f():\\n    return 'B'\\n")  # another name: no clash
cell("%%as_module --force {name}\\ndef f():\\n    return 'B'\\n")
import {name}
print({name}.f())
""",
            tmp_path,
        )
        refused, coexists, forced, b_runs = out.splitlines()[:4]
        assert refused.startswith("ERROR UsageError"), err
        assert f"pid {os.getpid()}" in refused and "--force" in refused, refused
        assert coexists.startswith("OK") and forced.startswith("OK"), out
        assert b_runs == "B"
        assert (lasting / f"{name}.py").read_text() == "def f():\n    return 'B'\n"

        with pytest.warns(RuntimeWarning) as told:
            assert ip.run_cell("x = 1").success  # A is told at the end of its next cell
        notices = [str(w.message) for w in told if name in str(w.message)]
        assert len(notices) == 1 and "b.ipynb" in notices[0], [str(w.message) for w in told]
        assert module.f() == "A"  # A keeps its own version
        assert warm.submit(module.f).result(HANG_GUARD) == "A"  # the warm worker too
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=SPAWN) as new:
        assert new.submit(module.f).result(HANG_GUARD) == "A"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ip.run_cell("x = 2").success  # told once
    assert (lasting / f"{other}.py").exists()


def test_a_module_another_kernel_writes_later_can_be_imported(ip, unique, tmp_path):
    """Sharing on purpose: the lasting directory did not exist when this kernel first
    looked for a module on sys.path (the first definition made it); a module another
    kernel writes there afterwards is importable here all the same."""
    mine, theirs = unique("mine"), unique("theirs")
    lasting = tmp_path / "shared"
    ip.run_line_magic("config", f"ExecModMagics.persist_dir = {str(lasting)!r}")
    define(ip, mine, "V = 'A'\n")
    out, err = kernel(
        lasting, "b.ipynb", f"cell('%%as_module {theirs}\\nV = \"B\"\\n')\n", tmp_path
    )
    assert out.splitlines() == ["OK NoneType None"], err
    assert (lasting / f"{theirs}.py").exists()
    assert ip.run_cell(f"import {theirs}").success
    assert sys.modules[theirs].V == "B"


# -- restarts -------------------------------------------------------------------------------


def test_a_restarted_kernel_imports_what_its_notebook_wrote_and_hears_what_another_replaced(
    unique, tmp_path
):
    kept, taken = unique("kept"), unique("taken")
    lasting = tmp_path / "lasting"
    a, b = "nb/a.ipynb", "nb/b.ipynb"
    out, err = kernel(
        lasting,
        a,
        f"""
cell("%%as_module {kept}\\nV = 'a1'\\n")
cell("%%as_module {taken}\\nV = 'a1'\\n")
""",
        tmp_path,
    )
    assert out.splitlines() == ["OK NoneType None"] * 2, err
    out, err = kernel(  # notebook b, while a's kernel is down: a dead writer, warned
        lasting, b, f"cell('%%as_module {taken}\\nV = \"b1\"\\n')\n", tmp_path
    )
    assert out.splitlines() == ["OK NoneType None"], err
    assert "a.ipynb" in err and taken in err and "RuntimeWarning" in err, err
    out, err = kernel(  # notebook a again: told at %load_ext, restores its own
        lasting,
        a,
        f"""
import {kept}, {taken}
print({kept}.V, {taken}.V)
cell("%%as_module {kept}\\nV = 'a2'\\n")
print({kept}.V)
""",
        tmp_path,
    )
    assert out.splitlines() == ["a1 b1", "OK NoneType None", "a2"], err
    loaded_warnings = [line for line in err.splitlines() if "RuntimeWarning" in line]
    assert len(loaded_warnings) == 1 and taken in loaded_warnings[0], err
    assert "b.ipynb" in loaded_warnings[0], err
    assert (lasting / f"{kept}.py").read_text() == "V = 'a2'\n"


def test_a_restored_package_stays_a_package(unique, tmp_path):
    shapes = unique("shapes")
    lasting = tmp_path / "lasting"
    out, err = kernel(
        lasting,
        "a.ipynb",
        f"""
cell("%%as_module {shapes}\\nVERSION = 1\\ndef version():\\n    return VERSION\\n")
cell("%%as_module {shapes}.circle\\nR = 1\\n")
""",
        tmp_path,
    )
    assert out.splitlines() == ["OK NoneType None"] * 2, err
    out, err = kernel(  # restarted: only the package's cell, edited
        lasting,
        "a.ipynb",
        f"""
import concurrent.futures, multiprocessing
cell("%%as_module {shapes}\\nVERSION = 2\\ndef version():\\n    return VERSION\\n")
import {shapes}
print(hasattr({shapes}, "__path__"))
import {shapes}.circle
print({shapes}.circle.R)
context = multiprocessing.get_context("spawn")
with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
    print(pool.submit({shapes}.version).result())
""",
        tmp_path,
    )
    assert out.splitlines() == ["OK NoneType None", "True", "1", "2"], err
    assert (lasting / shapes / "__init__.py").read_text().startswith("VERSION = 2\n")
    assert not (lasting / f"{shapes}.py").exists()
    out, err = kernel(
        lasting,
        "a.ipynb",
        f"import {shapes}.circle\nprint({shapes}.VERSION, {shapes}.circle.R)\n",
        tmp_path,
    )
    assert out.splitlines() == ["2 1"], err


# -- packages -------------------------------------------------------------------------------


def test_a_module_that_becomes_a_package_leaves_one_copy(ip, unique, tmp_path):
    name = unique("grows")
    lasting = tmp_path / "lasting"
    ip.run_line_magic("config", f"ExecModMagics.persist_dir = {str(lasting)!r}")
    define(ip, name, "X = 1\n")
    define(ip, f"{name}.sub", "Y = 1\n")
    left = sorted(
        os.path.relpath(os.path.join(d, f), lasting)
        for d, _, files in os.walk(lasting)
        for f in files
        if f.startswith(name) and not d.endswith(".ipyexecmod")
    )
    assert left == [], left  # no NAME.py, and no __pycache__/NAME.<tag>.pyc of it either
    assert (lasting / name / "__init__.py").read_text() == "X = 1\n"


def test_force_moves_a_users_parent_package_init_aside(ip, unique, tmp_path, capsys):
    """ISSUE14 item 2: a parent's ``__init__.py`` that is not ours is in the way."""
    name = unique("theirs")
    lasting = tmp_path / "project"
    (lasting / name).mkdir(parents=True)
    init = lasting / name / "__init__.py"
    init.write_text("WHO = 'the user'\n")
    before = snapshot(lasting)
    ip.run_line_magic("config", f"ExecModMagics.persist_dir = {str(lasting)!r}")
    with pytest.raises(UsageError, match=re.escape(str(init))):
        define(ip, f"{name}.extra", "X = 1\n")
    assert snapshot(lasting) == before
    capsys.readouterr()
    define(ip, f"{name}.extra", "X = 1\n", "--force")
    moved = moves(capsys.readouterr().out)
    assert moved == {str(init): f"{init}.orig"}, moved
    assert_untouched(lasting, before, moved)


# -- any sequence ---------------------------------------------------------------------------

from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ipyexecmod.cells import CellModuleFinder, DefinitionError  # noqa: E402
from ipyexecmod.lasting import LastingStore  # noqa: E402

_examples = iter(range(10**9))


def steps(stores: list[int]) -> st.SearchStrategy[list[tuple]]:
    """Sequences of ("define", name, store, force, fails) and ("restart",)."""
    define = st.tuples(
        st.just("define"),
        st.sampled_from(["a", "b", "p", "p.s"]),
        st.sampled_from(stores),
        st.booleans(),
        st.booleans(),
    )
    return st.lists(st.one_of(define, st.just(("restart",))), max_size=8)


class Life:
    """One kernel's life in this process: a finder of its own, and the two stores."""

    def __init__(self, directories: list[Path]) -> None:
        self.finder = CellModuleFinder()
        sys.meta_path.insert(0, self.finder)
        self.stores = [LastingStore(d) for d in directories]
        for store in self.stores:
            self.finder.add_store(store)

    def end(self, prefix: str) -> None:
        sys.meta_path.remove(self.finder)
        for name in [n for n in sys.modules if n.startswith(prefix)]:
            del sys.modules[name]
        for store in self.stores:
            while store.directory in sys.path:
                sys.path.remove(store.directory)
            sys.path_importer_cache.pop(store.directory, None)
        importlib.invalidate_caches()


@settings(max_examples=30, deadline=None)
@given(steps([0]))
@example([("define", "p", 0, False, False), ("restart",), ("define", "p.s", 0, False, False)])
def test_any_sequence_keeps_the_users_files_and_imports_the_latest_version(
    tmp_path_factory, sequence
):
    """Modules in one lasting directory (the user's module in the other, on sys.path)."""
    check_sequence(tmp_path_factory, sequence)


@settings(max_examples=30, deadline=None)
@given(steps([0, 1]))
@example([("define", "p", 1, False, False), ("define", "p", 0, False, False), ("restart",)] * 2)
@example([("define", "p", 1, False, False), ("define", "p.s", 0, False, False)] * 2)
def test_modules_moving_between_lasting_directories_keep_the_latest_version(
    tmp_path_factory, sequence
):
    """As above, each definition into either directory (a module moves between them)."""
    check_sequence(tmp_path_factory, sequence)


def check_sequence(tmp_path_factory, sequence: list[tuple]) -> None:
    """Run ``sequence``: the user's files (one in each directory, ``b`` with a timestamp
    ``.pyc``) stay as they are or where --force announced; each definition is refused
    exactly when it should be; the kernel imports each module's latest version."""
    prefix = f"_lh{next(_examples)}_"
    root = tmp_path_factory.mktemp("seq")
    directories = [root / "s0", root / "s1"]
    for directory in directories:
        directory.mkdir()
    user = {0: directories[0] / f"{prefix}b.py", 1: directories[1] / f"{prefix}a.py"}
    for path in user.values():
        path.write_text("USER = True\n")
    py_compile.compile(str(user[0]))
    before = [snapshot(d) for d in directories]
    moved: dict[str, str] = {}
    latest: dict[str, str] = {}
    where: dict[str, int] = {}  # the store of each module's latest version
    life = Life(directories)
    restarted = False
    try:
        for number, step in enumerate(sequence):
            if step[0] == "restart":
                life.end(prefix)
                life = Life(directories)
                restarted = True
                continue
            _, short, index, force, fails = step
            name, version = prefix + short, f"{short}-{number}"
            source = f"V = {version!r}\n" + ("1 / 0\n" if fails else "")
            # The user's module of that name, not moved aside: in the store it goes to (the
            # store refuses), or in the other (on sys.path: refused unless already a cell module).
            theirs = {i for i, p in user.items() if p.stem == name and str(p) not in moved}
            # A package's modules are kept in one directory: a submodule goes where its
            # package is, and a package stays where its submodules are.
            split = (short == "p.s" and where.get("p", index) != index) or (
                short == "p" and where.get("p.s", index) != index
            )
            try:
                life.finder.define(name, source, store=life.stores[index], force=force)
            except DefinitionError:
                assert split or (not force and theirs), step
            except ZeroDivisionError:
                assert fails, step
            else:
                assert not fails and not split and (force or index not in theirs), step
                latest[name] = version
                where[short] = index
                if short == "p.s":
                    where.setdefault("p", index)  # its package, made for it there
                record = life.finder.get(name)
                assert record is not None
                moved.update(record.moved_aside)
            for i, directory in enumerate(directories):
                assert_untouched(directory, before[i], moved)
            for known, value in latest.items():
                if restarted and any(
                    p.stem == known and str(p) not in moved for p in user.values()
                ):
                    continue  # forced over a user's module elsewhere: after a restart, the user's
                assert importlib.import_module(known).V == value, (known, sequence)
    finally:
        life.end(prefix)


# -- found by review and a user's trial -------------------------------------------------------


def test_force_moves_every_file_of_the_users_in_the_way_a_package_and_a_module_beside_it(
    ip, unique, tmp_path, capsys
):
    """helpers/ (a package) and helpers.py, both the user's: --force moves both, and
    overwrites neither."""
    name = unique("both")
    lasting = tmp_path / "project"
    (lasting / name).mkdir(parents=True)
    (lasting / name / "__init__.py").write_text("PACKAGE = 'the user'\n")
    (lasting / f"{name}.py").write_text("MODULE = 'the user'\n")
    py_compile.compile(str(lasting / f"{name}.py"))
    before = snapshot(lasting)
    ip.run_line_magic("config", f"ExecModMagics.persist_dir = {str(lasting)!r}")
    with pytest.raises(UsageError, match=re.escape(f"{lasting / name}.py")):
        define(ip, name, "X = 1\n")
    capsys.readouterr()
    define(ip, name, "X = 1\n", "--force")
    moved = moves(capsys.readouterr().out)
    assert set(moved) >= {str(lasting / name), f"{lasting / name}.py"}, moved
    assert_untouched(lasting, before, moved)


def test_a_parents_pyc_of_the_users_goes_aside_with_its_init(ip, unique, tmp_path, capsys):
    name = unique("parent")
    lasting = tmp_path / "project"
    (lasting / name).mkdir(parents=True)
    (lasting / name / "__init__.py").write_text("WHO = 'the user'\n")
    py_compile.compile(str(lasting / name / "__init__.py"))
    before = snapshot(lasting)
    ip.run_line_magic("config", f"ExecModMagics.persist_dir = {str(lasting)!r}")
    define(ip, f"{name}.extra", "X = 1\n", "--force")
    moved = moves(capsys.readouterr().out)
    define(ip, name, "Y = 2\n")  # the parent's own cell: writes its __init__ and .pyc
    assert_untouched(lasting, before, moved)


@pytest.mark.parametrize("kind", ["extension", "sourceless-package"])
def test_what_the_import_system_would_take_instead_is_in_the_way(
    ip, unique, tmp_path, capsys, kind
):
    """An extension module (NAME.<suffix>.so) or a sourceless package (NAME/__init__.pyc)
    of the user's would be imported instead of the copy by a new kernel."""
    name = unique("fast")
    lasting = tmp_path / "project"
    lasting.mkdir()
    if kind == "extension":
        theirs = lasting / (name + importlib.machinery.EXTENSION_SUFFIXES[0])
        theirs.write_bytes(b"\x7fELF not really")
    else:
        (lasting / name).mkdir()
        theirs = lasting / name
        (theirs / "__init__.pyc").write_bytes(b"\x00" * 16)
    before = snapshot(lasting)
    ip.run_line_magic("config", f"ExecModMagics.persist_dir = {str(lasting)!r}")
    with pytest.raises(UsageError, match=re.escape(str(theirs))):
        define(ip, name, "X = 1\n")
    assert snapshot(lasting) == before
    capsys.readouterr()
    define(ip, name, "X = 1\n", "--force")  # moved aside: a new kernel imports the copy
    moved = moves(capsys.readouterr().out)
    assert str(theirs) in moved, moved
    assert_untouched(lasting, before, moved)


@contextlib.contextmanager
def kernel_kept_running(lasting: Path, notebook: str, setup: str, cwd: Path) -> Iterator[list[str]]:
    """A "kernel" (:data:`KERNEL`) of ``notebook`` on ``lasting`` that runs ``setup``, then
    waits while the body of the ``with`` runs; then it runs one more cell, and the list
    it gave holds what it was told there (its warnings' messages, on one line)."""
    code = (
        KERNEL.format(notebook=notebook, lasting=str(lasting))
        + setup
        + (
            'print("ready", flush=True)\nsys.stdin.readline()\n'
            "with warnings.catch_warnings(record=True) as caught:\n"
            '    warnings.simplefilter("always")\n'
            '    cell("x = 1")\n'
            'print("told:", [str(w.message) for w in caught])\n'
        )
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    told: list[str] = []
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "loaded\n"
        for line in iter(process.stdout.readline, "ready\n"):
            assert line.startswith("OK"), line  # setup's cells; "" (exited) fails too
        yield told
    finally:
        out, _ = process.communicate("go\n", timeout=HANG_GUARD)
    told.append(out.splitlines()[-1])


def test_a_restarted_kernel_keeps_what_its_notebook_wrote_from_other_kernels(tmp_path):
    """nb1 writes utils and exits; nb1 restarts and imports it (restored): nb2 is refused
    it while nb1 runs, and with --force nb1 is told, at its next cell."""
    lasting = tmp_path / "shared"
    nb1, nb2 = str(tmp_path / "nb1.ipynb"), str(tmp_path / "nb2.ipynb")
    kernel(lasting, nb1, 'cell("%%as_module utils\\nWHO = \\"nb1\\"\\n")', tmp_path)
    with kernel_kept_running(lasting, nb1, 'cell("import utils")\n', tmp_path) as told:
        refused, _ = kernel(
            lasting, nb2, 'cell("%%as_module utils\\nWHO = \\"nb2\\"\\n")', tmp_path
        )
        assert refused.startswith("ERROR UsageError") and nb1 in refused, refused
        forced, _ = kernel(
            lasting, nb2, 'cell("%%as_module utils --force\\nWHO = \\"nb2\\"\\n")', tmp_path
        )
        assert forced.startswith("OK"), forced
    assert "'utils'" in told[0] and nb2 in told[0] and "%reload_module utils" in told[0], told


def test_every_notebook_a_copy_replaced_is_told_not_only_the_last(tmp_path):
    lasting = tmp_path / "shared"
    nbs = [str(tmp_path / f"nb{i}.ipynb") for i in (1, 2, 3)]
    for nb in nbs:
        out, _ = kernel(lasting, nb, f'cell("%%as_module utils\\nWHO = {nb!r}\\n")', tmp_path)
        assert out.startswith("OK"), out
    _, shown = kernel(lasting, nbs[0], 'cell("x = 1")', tmp_path)
    assert "'utils'" in shown and nbs[2] in shown, shown


def test_a_kernel_of_no_known_notebook_never_removes_a_notebooks_copy(tmp_path):
    lasting, nb1 = tmp_path / "shared", str(tmp_path / "nb1.ipynb")
    kernel(lasting, nb1, 'cell("%%as_module utils\\nWHO = 1\\n")', tmp_path)
    out, _ = kernel(lasting, "", 'cell("%%as_module utils --no-persist\\nWHO = 2\\n")', tmp_path)
    assert out.startswith("OK"), out
    assert (lasting / "utils.py").read_text() == "WHO = 1\n"


@pytest.mark.parametrize(
    "bad",
    [
        b"not json",
        b'{"format": 1, "name": "m", "is_package": false, "files": null}',
        b'{"format": 1, "name": "m", "is_package": false, "files": {}, "writer": {"pid": "1"}}',
        b'{"format": 99, "name": "m"}',
        b'{"format": 1, "name": "m", "is_package": false, "files": {"m.py": []}, '
        b'"writer": {"pid": 18446744073709551616, "started": null, "host": "HOST", '
        b'"notebook": null, "at": 0}}',
        b'{"format": 1, "name": "m", "is_package": false, "files": {"m.py": []}, '
        b'"writer": {"pid": 1, "started": null, "host": "HOST", "notebook": null, "at": 1e300}}',
        b"[]",
    ],
)
def test_a_record_that_is_not_one_makes_its_file_the_users(ip, unique, tmp_path, bad):
    lasting = tmp_path / "project"
    (lasting / ".ipyexecmod").mkdir(parents=True)
    (lasting / "m.py").write_text("M = 'the user'\n")
    host = socket.gethostname().encode()
    (lasting / ".ipyexecmod" / "m.json").write_bytes(bad.replace(b"HOST", host))
    assert LastingStore(lasting).open() == []  # no crash: a kernel starting on it
    ip.run_line_magic("config", f"ExecModMagics.persist_dir = {str(lasting)!r}")
    assert ip.run_line_magic("lsmod", "--cells") is not None
    with pytest.raises(UsageError, match="not written by ipyexecmod"):
        define(ip, "m", "X = 1\n")
    assert (lasting / "m.py").read_text() == "M = 'the user'\n"


def test_a_record_of_a_later_version_with_more_fields_is_read(tmp_path):
    from ipyexecmod.ownership import Record, Writer

    record = Record("m", False, {"m.py": ("d",)}, Writer(1, None, "h", None, 0.0))
    raw = json.loads(record.to_json())
    raw["writer"]["python"] = "3.14"
    raw["signed"] = True
    assert Record.from_json(json.dumps(raw).encode()) == record


def test_no_file_is_written_without_its_record(ip, unique, tmp_path):
    """The record goes first: where it cannot be written, neither is the copy."""
    name = unique("norecord")
    lasting = tmp_path / "project"
    lasting.mkdir()
    (lasting / ".ipyexecmod").write_text("a file where the records go\n")
    ip.run_line_magic("config", f"ExecModMagics.persist_dir = {str(lasting)!r}")
    with pytest.warns(RuntimeWarning, match=f"module {name!r} works in this process only"):
        define(ip, name, "X = 1\n")
    assert sorted(os.listdir(lasting)) == [".ipyexecmod"]


def test_a_notice_from_a_kernel_starting_waits_for_its_first_cell(tmp_path):
    """With persist_dir in the profile, the extension loads before any cell: what it must
    say (another notebook replaced this one's copy) is shown at the first cell."""
    lasting, nb1, nb2 = (
        tmp_path / "shared",
        str(tmp_path / "nb1.ipynb"),
        str(tmp_path / "nb2.ipynb"),
    )
    kernel(lasting, nb1, 'cell("%%as_module utils\\nWHO = 1\\n")', tmp_path)
    kernel(lasting, nb2, 'cell("%%as_module utils\\nWHO = 2\\n")', tmp_path)
    out, shown = kernel(
        lasting,
        nb1,
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    cell('x = 1')\n"
        "print([str(w.message) for w in caught])\n",
        tmp_path,
    )
    assert "'utils'" not in shown  # not at load, when no cell would show it
    assert "'utils'" in out.splitlines()[-1] and nb2 in out.splitlines()[-1], out


def test_modinfo_of_a_restored_module_is_the_same_at_each_run(tmp_path):
    """No object address, no private directory: a saved output does not change."""
    lasting, nb = tmp_path / "shared", str(tmp_path / "nb.ipynb")
    kernel(lasting, nb, 'cell("%%as_module kept\\nX = 1\\n")', tmp_path)
    show = 'import kept\nprint(ip.run_line_magic("modinfo", "kept"))\n'
    runs = [kernel(lasting, nb, show, tmp_path)[0] for _ in range(2)]
    assert "0x" not in runs[0] and "ipyexecmod-" not in runs[0], runs[0]
    assert "CopyLoader 'kept'" in runs[0], runs[0]
    assert runs[0] == runs[1]


def test_a_copy_that_cannot_be_written_elsewhere_leaves_the_old_one(ip, unique, tmp_path):
    """Moving a module to a directory that cannot take it keeps its copy where it was."""
    name = unique("kept")
    first, blocked = tmp_path / "first", tmp_path / "a-file"
    blocked.write_text("not a directory\n")
    define(ip, name, "X = 1\n", f"--persist-dir {first}")
    with pytest.warns(RuntimeWarning, match="works in this process only"):
        define(ip, name, "X = 2\n", f"--persist-dir {blocked / 'cells'}")
    assert (first / f"{name}.py").read_text() == "X = 1\n"


def test_a_packages_modules_stay_in_one_directory_and_the_error_says_where(ip, unique, tmp_path):
    package = unique("pkg")
    first, second = tmp_path / "first", tmp_path / "second"
    define(ip, package, "P = 1\n", f"--persist-dir {first}")
    with pytest.raises(UsageError) as split:
        define(ip, f"{package}.sub", "S = 1\n", f"--persist-dir {second}")
    assert f"its package {package!r}" in str(split.value)
    assert f"is kept in {first}" in str(split.value), split.value
    define(ip, f"{package}.sub", "S = 1\n", f"--persist-dir {first}")
    with pytest.raises(UsageError) as leaving:
        define(ip, package, "P = 2\n", f"--persist-dir {second}")
    assert f"cannot move {package!r} out of {first}" in str(leaving.value)
    assert f"'{package}.sub'" in str(leaving.value), leaving.value
    assert not second.exists() or not any(second.iterdir())


def test_a_copy_taken_over_and_not_imported_then_replaced_says_what_import_gives(tmp_path):
    lasting = tmp_path / "shared"
    nb1, nb2 = str(tmp_path / "nb1.ipynb"), str(tmp_path / "nb2.ipynb")
    kernel(lasting, nb1, 'cell("%%as_module utils\\nWHO = 1\\n")', tmp_path)
    with kernel_kept_running(lasting, nb1, "", tmp_path) as told:  # takes utils over
        forced, _ = kernel(lasting, nb2, 'cell("%%as_module utils --force\\nWHO = 2\\n")', tmp_path)
        assert forced.startswith("OK"), forced
    assert "`import utils` now gives that version" in told[0] and nb2 in told[0], told
