"""Fixtures for the magics: a real InteractiveShell with the extension loaded."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

_names = itertools.count()

# Hypothesis's time limits (a 200 ms deadline per example, the too_slow health check) fail
# a test when the machine is busy with other work, not when the code is wrong: off for all.
settings.register_profile("ipyexecmod", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ipyexecmod")


@pytest.fixture(scope="session", autouse=True)
def private_jedi_cache(tmp_path_factory) -> Iterator:
    """jedi (IPython's completer) writes its cache of parsed files in place, under
    ~/.cache/jedi: a test run that reads a file another run is writing gets no completions
    at all.  This run's cache is its own."""
    import jedi

    shared = jedi.settings.cache_directory
    jedi.settings.cache_directory = str(tmp_path_factory.mktemp("jedi-cache"))
    yield
    jedi.settings.cache_directory = shared


@pytest.fixture(scope="session")
def shell():
    """The process's one InteractiveShell (IPython allows no second), history off."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryAccessor.enabled = False
    shell = InteractiveShell.instance(config=config)
    yield shell
    shell.run_line_magic("unload_ext", "ipyexecmod")


@pytest.fixture
def ip(shell) -> Iterator:
    """The shell with ``%load_ext ipyexecmod`` done, unloaded again after the test."""
    shell.run_line_magic("load_ext", "ipyexecmod")
    yield shell
    shell.run_line_magic("unload_ext", "ipyexecmod")
    shell.config.pop("ExecModMagics", None)  # what %config or a test put there


@pytest.fixture
def unique() -> Iterator:
    """A factory of module names no other test uses; their modules are removed afterwards."""
    made: list[str] = []

    def make(stem: str = "m") -> str:
        name = f"_cm{next(_names)}_{stem}"
        made.append(name)
        return name

    yield make
    for name in list(sys.modules):
        if any(name == top or name.startswith(top + ".") for top in made):
            del sys.modules[name]


@pytest.fixture
def restoring(tmp_path) -> Iterator:
    """A lasting directory that an earlier kernel (a process that has exited) wrote, and
    that this process's finder restores from; forgotten again after the test."""
    from ipyexecmod import cells
    from ipyexecmod.lasting import lasting_store

    lasting = tmp_path / "lasting"
    yield lasting
    store = lasting_store(lasting)
    if store in cells.finder.stores:
        cells.finder.stores.remove(store)
    if store.directory in sys.path:
        sys.path.remove(store.directory)
