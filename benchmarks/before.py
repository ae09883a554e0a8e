"""The package as it was at an earlier commit, imported next to this checkout's under
another name, so that the two can be timed side by side in one process.

Its modules import one another by relative imports, so ``ipyexecmod_before`` is a
package of its own: its own registry and finder (:func:`is_cell_finder` tells the
two apart by module name), its own store, its own magics (not registered with the
shell: a row calls their methods).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from workloads import ROOT

NAME = "ipyexecmod_before"


@contextlib.contextmanager
def before_package(commit: str) -> Iterator[ModuleType]:
    """``ipyexecmod`` at ``commit``, imported as :data:`NAME` (with its ``cells`` and
    ``store``; import its ``magics`` when needed); on leaving, its finder, cell
    modules and stores are taken off ``sys.meta_path``, ``sys.modules`` and ``sys.path``.

    Raises CalledProcessError (not a git checkout, or no such commit) or OSError (no git).
    """
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit, "ipyexecmod"],
        capture_output=True,
        check=True,
    ).stdout
    directory = tempfile.mkdtemp(prefix="ipyexecmod-before-")
    # At exit, after the package's own exit handlers (registered later, run first).
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    Path(directory, "ipyexecmod").rename(Path(directory, NAME))
    sys.path.insert(0, directory)
    try:
        package = importlib.import_module(NAME)
        for part in ("cells", "store"):  # what the rows use, imported as `ipyexecmod`'s are
            importlib.import_module(f"{NAME}.{part}")
    finally:
        sys.path.remove(directory)
    try:
        yield package
    finally:
        _forget(package)


def _forget(package: ModuleType) -> None:
    finder = package.cells.finder
    finder.uninstall()
    for name in finder.modules:
        sys.modules.pop(name, None)
    for store in finder.stores:
        with contextlib.suppress(ValueError):
            sys.path.remove(store.directory)
