"""The same work done the ways users would otherwise: a 10-function module written in a
notebook, as ``%%writefile`` + ``importlib.reload``, an importnb import, an ipynb import."""

from __future__ import annotations

import contextlib
import importlib
import io
import itertools
import os
import sys
import tempfile
from collections.abc import Callable, Iterator

from harness import Goal, Row, Settings, paired, skipped
from workloads import fresh_name, functions, shell

WHAT = "same work: a 10-function module from a notebook"
AHEAD = Goal(1.0)  # ipyexecmod ahead


def peer_rows(settings: Settings) -> list[Row]:
    ip = shell()
    source = functions(10)
    cell = fresh_name("cell")
    edits = itertools.count()

    def as_module() -> None:  # edited each time: a cell run again unchanged compiles nothing
        ip.run_cell_magic("as_module", cell, source + f"_edit = {next(edits)}\n")

    rows = []
    with _notebook_directory() as directory:
        for baseline, make in (
            ("%%writefile + importlib.reload", _writefile),
            ("importnb import", _importnb),
            ("ipynb import", _ipynb),
        ):
            try:
                peer = make(directory, source)
            except ImportError as exc:
                rows.append(
                    skipped(f"{WHAT}: {baseline}", f"{exc.name} not installed (`.[bench]`)", AHEAD)
                )
                continue
            timing = paired(as_module, peer, settings.pairs, settings.inner)
            rows.append(
                Row(
                    what=WHAT, candidate="%%as_module", baseline=baseline, timing=timing, goal=AHEAD
                )
            )
    return rows


@contextlib.contextmanager
def _notebook_directory() -> Iterator[str]:
    """A directory on sys.path, and the working directory (ipynb finds notebooks there)."""
    directory = tempfile.mkdtemp()
    sys.path.insert(0, directory)
    here = os.getcwd()
    os.chdir(directory)
    try:
        yield directory
    finally:
        os.chdir(here)
        sys.path.remove(directory)


def _writefile(directory: str, source: str) -> Callable[[], None]:
    ip = shell()
    written = fresh_name("written")
    path = os.path.join(directory, f"{written}.py")

    def writefile() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            ip.run_cell_magic("writefile", path, source)

    writefile()
    module = importlib.import_module(written)

    def write_and_reload() -> None:
        writefile()
        importlib.reload(module)

    return write_and_reload


def _importnb(directory: str, source: str) -> Callable[[], None]:
    from importnb import Notebook

    name = _write_notebook(directory, source)

    def load() -> None:
        sys.modules.pop(name, None)
        with Notebook():
            importlib.import_module(name)

    return load


def _ipynb(directory: str, source: str) -> Callable[[], None]:
    importlib.import_module("ipynb.fs.full")
    full = f"ipynb.fs.full.{_write_notebook(directory, source)}"

    def load() -> None:
        sys.modules.pop(full, None)
        importlib.import_module(full)

    return load


def _write_notebook(directory: str, source: str) -> str:
    """A one-cell notebook of ``source`` in ``directory``; return its module name."""
    import nbformat

    name = fresh_name("notebook")
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {
        "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"},
        "language_info": {"name": "python"},
    }
    notebook.cells.append(nbformat.v4.new_code_cell(source))
    nbformat.write(notebook, os.path.join(directory, f"{name}.ipynb"))
    return name
