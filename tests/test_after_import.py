"""Calling back once a package is imported (ipyexecmod._after_import), with real files."""

from __future__ import annotations

import importlib.machinery
import sys

import pytest

from ipyexecmod._after_import import AfterImport


@pytest.fixture
def package(tmp_path, unique):
    """A top-level package on sys.path, not imported yet; its __init__ is ``init``."""
    name = unique("pkg")
    (tmp_path / name).mkdir()
    sys.path.insert(0, str(tmp_path))
    yield name, tmp_path / name / "__init__.py"
    sys.path.remove(str(tmp_path))
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[loaded]


def test_called_once_after_the_package_ran_and_nothing_of_it_stays(package):
    name, init = package
    init.write_text("import sys\nSEEN = [finder for finder in sys.meta_path]\nfrom . import sub\n")
    (init.parent / "sub.py").write_text("X = 1\n")
    hooks, calls = AfterImport(), []
    hooks.call_after(name, lambda: calls.append(sys.modules[name].sub.X))
    assert hooks in sys.meta_path
    module = __import__(name)
    assert calls == [1]  # after __init__ and what it imports
    assert hooks not in sys.meta_path
    assert isinstance(module.__loader__, importlib.machinery.SourceFileLoader)
    assert module.__spec__.loader is module.__loader__
    importlib.reload(module)  # with its own loader
    assert calls == [1]


def test_a_failed_import_calls_nothing_and_the_next_one_calls(package):
    name, init = package
    init.write_text("raise RuntimeError('not yet')\n")
    hooks, calls = AfterImport(), []
    hooks.call_after(name, lambda: calls.append(1))
    with pytest.raises(RuntimeError, match="not yet"):
        __import__(name)
    assert calls == []
    init.write_text("X = 1\n")
    importlib.invalidate_caches()
    __import__(name)
    assert calls == [1]


def test_already_imported_is_called_at_once_and_blocked_never(package, unique):
    name, init = package
    init.write_text("")
    __import__(name)
    hooks, calls = AfterImport(), []
    hooks.call_after(name, lambda: calls.append("now"))
    assert calls == ["now"]
    blocked = unique("blocked")
    sys.modules[blocked] = None  # as if not installed
    try:
        hooks.call_after(blocked, lambda: calls.append("never"))
        assert calls == ["now"]
    finally:
        del sys.modules[blocked]
        hooks.cancel(calls.append)


def test_cancel_and_a_callback_that_fails(package):
    name, init = package
    init.write_text("")
    hooks, calls = AfterImport(), []

    def fails() -> None:
        raise OSError("no")

    hooks.call_after(name, calls.append)
    hooks.cancel(calls.append)
    assert hooks not in sys.meta_path
    hooks.call_after(name, fails)
    with pytest.warns(RuntimeWarning, match=rf"could not prepare {name} for cell modules: no"):
        __import__(name)
    assert calls == []
