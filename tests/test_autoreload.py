"""``%autoreload`` and cell modules: a redefinition's top-level code runs once, ordinary files
are still autoreloaded, and ``%unload_ext ipyexecmod`` gives autoreload back as it was."""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.extensions.autoreload import AutoreloadMagics, ModuleReloader

from ipyexecmod import cells
from ipyexecmod.lasting import LastingStore

MODES = ["2", "3"]  # what the installed IPython has: 'all' and 'complete'


def drop_autoreload(shell) -> None:
    """Take the autoreload extension out of ``shell``: its magics, its two events, its entry
    in the extension manager (autoreload has no unload function; a test needs a fresh one)."""
    manager = shell.magics_manager
    magics = manager.registry.pop("AutoreloadMagics", None)
    for extension in ("autoreload", "IPython.extensions.autoreload"):  # the name it loads by
        shell.extension_manager.loaded.discard(extension)
    if magics is None:
        return
    for kind, table in magics.magics.items():
        for name, method in table.items():
            if manager.magics[kind].get(name) == method:
                del manager.magics[kind][name]
    for event, hook in [
        ("pre_run_cell", magics.pre_run_cell),
        ("post_execute", magics.post_execute_hook),
    ]:
        if hook in shell.events.callbacks[event]:
            shell.events.unregister(event, hook)
    if magics in shell.configurables:
        shell.configurables.remove(magics)


@pytest.fixture
def fresh(shell) -> Iterator:
    """No autoreload in the shell before the test (an earlier test may have left one), and
    none after."""
    drop_autoreload(shell)
    yield
    drop_autoreload(shell)


def cell(ip, code: str) -> None:
    """Run ``code`` as a cell (so the shell's events fire); fail the test if it fails."""
    result = ip.run_cell(code)
    result.raise_error()


def run_log(unique) -> types.ModuleType:
    """A module with no file (so autoreload never reloads it) that counts runs of top-level
    code: ``runs`` is a list that the code under test appends to."""
    log = types.ModuleType(unique("log"))
    log.runs = []  # type: ignore[attr-defined]
    sys.modules[log.__name__] = log
    return log


def counting(log: types.ModuleType, version: int) -> str:
    """A module body whose top-level code notes ``version`` in ``log`` once per run."""
    return (
        f"import {log.__name__}\n"
        f"{log.__name__}.runs.append({version})\n"
        f"def f():\n    return {version}\n"
    )


def newer(path: str) -> None:
    """Give ``path`` an mtime one second later than it has: what autoreload sees of a
    rewrite, whatever the file system's clock granularity."""
    mtime = os.stat(path).st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(mtime, mtime))


def redefine(ip, name: str, body: str) -> types.ModuleType:
    """``%%as_module name`` with ``body``, run as a cell; its on-disk copy made newer."""
    cell(ip, f"%%as_module {name}\n{body}")
    module = sys.modules[name]
    newer(module.__file__)
    return module


# -- a redefinition runs once -----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_autoreload_loaded_first_runs_nothing_twice(ip, fresh, unique, mode):
    log, name = run_log(unique), unique("cm")
    ip.run_line_magic("unload_ext", "ipyexecmod")
    cell(ip, f"%load_ext autoreload\n%autoreload {mode}")
    cell(ip, "%load_ext ipyexecmod")
    redefine(ip, name, counting(log, 1))
    cell(ip, "x = 1")
    module = redefine(ip, name, counting(log, 2))
    cell(ip, "y = 2")
    cell(ip, "z = 3")
    assert log.runs == [1, 2]
    assert module.f() == 2


@pytest.mark.parametrize("mode", MODES)
def test_autoreload_loaded_after_cells_runs_nothing_twice(ip, fresh, unique, mode):
    log, name = run_log(unique), unique("cm")
    redefine(ip, name, counting(log, 1))
    cell(ip, f"%load_ext autoreload\n%autoreload {mode}")
    module = redefine(ip, name, counting(log, 2))
    cell(ip, "y = 2")
    cell(ip, "z = 3")
    assert log.runs == [1, 2]
    assert module.f() == 2


def test_autoreload_now_leaves_cell_modules_alone(ip, fresh, unique):
    log, name = run_log(unique), unique("cm")
    cell(ip, "%load_ext autoreload")
    redefine(ip, name, counting(log, 1))
    redefine(ip, name, counting(log, 2))
    cell(ip, "%autoreload now")
    assert log.runs == [1, 2]


def test_modules_restored_from_a_copy_are_left_alone(ip, fresh, unique, tmp_path):
    log, name = run_log(unique), unique("kept")
    store = LastingStore(tmp_path / "lasting")  # as an earlier kernel left it
    store.write(name, counting(log, 1), compile(counting(log, 1), name, "exec"), is_package=False)
    cell(ip, f"%config ExecModMagics.persist_dir = {store.directory!r}")
    try:
        cell(ip, f"%load_ext autoreload\n%autoreload 2\nimport {name}")
        module = sys.modules[name]
        assert cells.finder.is_restored(module)
        source = counting(log, 2)  # another kernel's
        path, _ = store.write(name, source, compile(source, name, "exec"), is_package=False)
        newer(path)
        cell(ip, "y = 2")
        assert log.runs == [1] and module.f() == 1
    finally:
        cells.finder.stores.remove(
            next(s for s in cells.finder.stores if s.directory == store.directory)
        )
        sys.path.remove(store.directory)


# -- autoreload keeps working for everything else ----------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_ordinary_files_are_still_autoreloaded(ip, fresh, unique, tmp_path, monkeypatch, mode):
    log, name, cell_module = run_log(unique), unique("plain"), unique("cm")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / f"{name}.py"
    path.write_text(counting(log, 1))
    cell(ip, f"%load_ext autoreload\n%autoreload {mode}")
    redefine(ip, cell_module, "X = 1\n")
    cell(ip, f"import {name}")
    path.write_text(counting(log, 2))
    newer(str(path))
    cell(ip, f"r = {name}.f()")
    assert ip.user_ns["r"] == 2
    assert log.runs == [1, 2]


def test_aimport_marks_still_work(ip, fresh, unique, tmp_path, monkeypatch):
    log, name = run_log(unique), unique("plain")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / f"{name}.py"
    path.write_text(counting(log, 1))
    cell(ip, f"%load_ext autoreload\n%autoreload 2\nimport {name}\n%aimport -{name}")
    cell(ip, "x = 1")  # IPython 9's deduplicating reloader notes the source it reloads from
    path.write_text(counting(log, 2))
    newer(str(path))
    cell(ip, "y = 2")
    assert log.runs == [1]
    cell(ip, f"%aimport {name}")
    cell(ip, "y = 3")
    assert log.runs == [1, 2]


# -- %unload_ext ipyexecmod puts autoreload back ------------------------------------------


def test_unload_gives_autoreload_back(ip, fresh, unique, tmp_path):
    log, name = run_log(unique), unique("cm")
    cell(ip, "%load_ext autoreload\n%autoreload 2\n%aimport -not_a_cell_module")
    reloader = ip.magics_manager.registry["AutoreloadMagics"]._reloader
    redefine(ip, name, counting(log, 1))
    module = redefine(ip, name, counting(log, 2))
    cell(ip, "%unload_ext ipyexecmod")
    assert type(reloader.skip_modules) is dict
    assert reloader.skip_modules == {"not_a_cell_module": True}
    cell(ip, "y = 2")
    assert log.runs == [1, 2]  # no reload for a redefinition that has already run
    # the module is a file like any other now: autoreload's to reload
    Path(module.__file__).write_text(counting(log, 3))
    newer(module.__file__)
    cell(ip, "y = 3")
    assert log.runs == [1, 2, 3] and module.f() == 3
    cell(ip, "%load_ext ipyexecmod")  # the ip fixture unloads it


# -- what this relies on in the installed IPython -----------------------------------------


def test_installed_autoreload_asks_skip_modules_of_each_module_before_its_mtime(
    shell, unique, tmp_path, monkeypatch
):
    """ipyexecmod/magics/autoreload.py replaces ``AutoreloadMagics._reloader.skip_modules``
    by a mapping that answers ``in`` when asked; this pins that IPython asks it, for every
    module, at each check, before reading the file (so before its deduplicating reloader)."""
    assert isinstance(AutoreloadMagics(shell=shell)._reloader, ModuleReloader)
    log, name = run_log(unique), unique("plain")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / f"{name}.py"
    path.write_text(counting(log, 1))
    __import__(name)
    reloader = ModuleReloader()
    reloader.enabled = reloader.check_all = True
    asked = []

    class Asked(dict):
        def __contains__(self, key):
            asked.append(key)
            return key == name

    reloader.skip_modules = Asked()
    path.write_text(counting(log, 2))
    newer(str(path))
    reloader.check()
    assert name in asked and log.runs == [1]
    reloader.skip_modules = {}
    reloader.check()
    assert log.runs == [1, 2]
